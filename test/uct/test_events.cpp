// SPDX-License-Identifier: BSD-2-Clause
//
// Sleeping on the interface's event fd: uct_iface_event_arm, then a
// blocking poll() that an arriving message (UCT_EVENT_RECV) or a finished
// operation (UCT_EVENT_SEND_COMP) ends; arm says UCS_ERR_BUSY while work
// is already waiting. A lost wake-up shows as a poll() that times out.
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "target.hpp"

using namespace uctest;

namespace {

constexpr int deadline_ms = 30000;

// Progresses and sleeps on the event fd until done(); false if a poll()
// found nothing for deadline_ms or arm failed. *sleeps counts the polls.
template <class F> bool sleep_until(node &n, unsigned events, F done, int *sleeps = nullptr)
{
    int fd = -1;
    if (uct_iface_event_fd_get(n.iface(), &fd) != UCS_OK)
        return false;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
    while (!done()) {
        if (std::chrono::steady_clock::now() >= end)
            return false;
        ucs_status_t s = uct_iface_event_arm(n.iface(), events);
        if (s == UCS_ERR_BUSY) {  // something to do first
            n.progress();
            continue;
        }
        if (s != UCS_OK)
            return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, deadline_ms) <= 0)
            return false;  // a wake-up was lost
        if (sleeps)
            ++*sleeps;
        while (n.progress()) {
        }
    }
    return true;
}

// An AM handler that keeps the 64-bit header and checks the payload.
struct inbox {
    int got = 0;
    uint64_t last_hdr = 0;
    size_t bad = 0;
};

ucs_status_t on_am(void *arg, void *data, size_t length, unsigned)
{
    auto *in = static_cast<inbox *>(arg);
    in->got++;
    if (length < 8) {
        in->bad++;
        return UCS_OK;
    }
    std::memcpy(&in->last_hdr, data, 8);
    in->bad += mismatches(static_cast<uint8_t *>(data) + 8, length - 8, unsigned(in->last_hdr));
    return UCS_OK;
}

constexpr uint8_t am_id = 9;

ucs_status_t send_am(node &n, uct_ep_h ep, uint64_t hdr, size_t len)
{
    uint8_t payload[176];
    fill(payload, len, unsigned(hdr));
    ucs_status_t s = UCS_ERR_NO_RESOURCE;
    n.progress_until([&] {
        return (s = uct_ep_am_short(ep, am_id, hdr, payload, unsigned(len))) !=
               UCS_ERR_NO_RESOURCE;
    });
    return s;
}

// Set-up of both AM tests: a peer running fn(node, ep to us, channel) and
// this process's node with an AM handler, connected to it.
struct am_pair {
    std::string fabric = unique_fabric("uct");
    peer_process peer;
    node me;
    inbox in;
    uct_ep_h ep;

    template <class F>
    explicit am_pair(F fn)
        : peer([this, fn](channel &c) {
              node n(fabric);
              inbox pin;
              must(uct_iface_set_am_handler(n.iface(), am_id, on_am, &pin, 0), "am handler");
              c.send(n.address());
              uct_ep_h e = n.connect(c.recv<iface_address>());
              return fn(n, e, pin, c);
          }),
          me(fabric)
    {
        must(uct_iface_set_am_handler(me.iface(), am_id, on_am, &in, 0), "am handler");
        ep = me.connect(peer.chan().recv<iface_address>());
        peer.chan().send(me.address());
    }
    ~am_pair() { peer.kill9(); }  // see kill_first
};

}  // namespace

BOOST_AUTO_TEST_SUITE(events)

// Once arm succeeded the fd stays quiet until something new arrives:
// acknowledgements, keep-alives and timers of the link wake nobody.
BOOST_AUTO_TEST_CASE(no_spurious_events)
{
    am_pair p([](node &n, uct_ep_h ep, inbox &, channel &c) {
        for (uint64_t k = 1;; k++) {
            if (c.recv<uint64_t>(120000) == 0)
                return 0;
            if (send_am(n, ep, k, 16) != UCS_OK)
                return 1;
            while (n.progress()) {
            }
        }
    });
    int fd = -1;
    BOOST_REQUIRE_EQUAL(uct_iface_event_fd_get(p.me.iface(), &fd), UCS_OK);
    const int rounds = 500;
    int spurious = 0;
    for (int k = 1; k <= rounds; k++) {
        ucs_status_t s;
        while ((s = uct_iface_event_arm(p.me.iface(), UCT_EVENT_RECV)) == UCS_ERR_BUSY)
            p.me.progress();
        BOOST_REQUIRE_EQUAL(s, UCS_OK);
        pollfd pf{fd, POLLIN, 0};
        if (::poll(&pf, 1, 0) > 0)
            spurious++;
        p.peer.chan().send<uint64_t>(1);  // one message, please
        pf.revents = 0;
        BOOST_REQUIRE_EQUAL(::poll(&pf, 1, deadline_ms), 1);
        BOOST_REQUIRE(p.me.progress_until([&] { return p.in.got == k; }));
    }
    p.peer.chan().send<uint64_t>(0);
    BOOST_CHECK_EQUAL(p.peer.wait(), 0);
    BOOST_TEST_MESSAGE(spurious << " of " << rounds << " armed waits woke without a message");
    BOOST_CHECK_EQUAL(spurious, 0);
    BOOST_CHECK_EQUAL(p.in.bad, 0u);
}

BOOST_AUTO_TEST_CASE(fd_and_arm_idle)
{
    node n(unique_fabric("uct"));
    int fd = -1;
    BOOST_REQUIRE_EQUAL(uct_iface_event_fd_get(n.iface(), &fd), UCS_OK);
    BOOST_CHECK_GE(fd, 0);
    // Idle: arming succeeds (after whatever start-up work there was).
    ucs_status_t s = UCS_ERR_BUSY;
    BOOST_CHECK(n.progress_until([&] {
        return (s = uct_iface_event_arm(n.iface(), UCT_EVENT_RECV | UCT_EVENT_SEND_COMP)) !=
               UCS_ERR_BUSY;
    }));
    BOOST_CHECK_EQUAL(s, UCS_OK);
}

// The receiver sleeps in poll() until the peer's message arrives; once a
// message is already there, arm says BUSY.
BOOST_AUTO_TEST_CASE(recv_wakes_receiver)
{
    am_pair p([](node &n, uct_ep_h ep, inbox &, channel &c) {
        for (uint64_t k = 1; k <= 2; k++) {
            c.recv<uint64_t>();  // go
            if (k == 1)  // let the receiver fall asleep (not needed for correctness)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            if (!peer_check(send_am(n, ep, k, 100) == UCS_OK, "am_short") ||
                !peer_check(n.flush(ep) == UCS_OK, "flush"))
                return 1;
            c.send<uint64_t>(k);  // it is at the receiver
        }
        c.recv<uint64_t>();
        return 0;
    });
    // Nothing there: arm succeeds (once set-up traffic is handled).
    ucs_status_t s = UCS_ERR_BUSY;
    BOOST_REQUIRE(p.me.progress_until([&] {
        return (s = uct_iface_event_arm(p.me.iface(), UCT_EVENT_RECV)) != UCS_ERR_BUSY;
    }));
    BOOST_REQUIRE_EQUAL(s, UCS_OK);
    p.peer.chan().send<uint64_t>(1);
    int sleeps = 0;
    int fd = -1;
    uct_iface_event_fd_get(p.me.iface(), &fd);
    pollfd pfd{fd, POLLIN, 0};
    BOOST_CHECK_EQUAL(::poll(&pfd, 1, deadline_ms), 1);  // woken, not timed out
    BOOST_CHECK(sleep_until(p.me, UCT_EVENT_RECV, [&] { return p.in.got == 1; }, &sleeps));
    BOOST_CHECK_EQUAL(p.in.last_hdr, 1u);
    BOOST_CHECK_EQUAL(p.peer.chan().recv<uint64_t>(), 1u);

    // Second message: delivered to this process while it does not
    // progress (the peer's flush completed), so arm must refuse.
    p.peer.chan().send<uint64_t>(2);
    BOOST_CHECK_EQUAL(p.peer.chan().recv<uint64_t>(), 2u);
    BOOST_CHECK_EQUAL(p.in.got, 1);
    BOOST_CHECK_EQUAL(uct_iface_event_arm(p.me.iface(), UCT_EVENT_RECV), UCS_ERR_BUSY);
    BOOST_CHECK(p.me.progress_until([&] { return p.in.got == 2; }));
    BOOST_CHECK_EQUAL(p.in.last_hdr, 2u);
    BOOST_CHECK_EQUAL(p.in.bad, 0u);
    BOOST_TEST_MESSAGE("receiver slept " << sleeps << " more times");
    p.peer.chan().send<uint64_t>(0);
    BOOST_CHECK_EQUAL(p.peer.wait(), 0);
}

// The sender sleeps until its zcopy completes; a completion that came in
// while it did not progress makes arm return BUSY.
BOOST_AUTO_TEST_CASE(send_comp_wakes_sender)
{
    rma_pair p(8 << 20, 8 << 20);
    fill(p.local.p, 8 << 20, 50);
    for (size_t n : {size_t(4096), size_t(4) << 20}) {
        BOOST_TEST_CONTEXT("put_zcopy of " << n << " bytes")
        {
            completion c;
            uct_iov_t iov = p.local.iov(0, n);
            ucs_status_t s = uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(0), p.rkey, &c);
            BOOST_REQUIRE(s == UCS_INPROGRESS || s == UCS_OK);
            int sleeps = 0;
            if (s == UCS_INPROGRESS)
                BOOST_CHECK(sleep_until(p.me, UCT_EVENT_SEND_COMP, [&] { return c.done(); },
                                        &sleeps));
            BOOST_CHECK_EQUAL(c.status, UCS_OK);
            BOOST_TEST_MESSAGE("sender slept " << sleeps << " times");
            BOOST_CHECK_EQUAL(p.tgt.check(0, n, 50), 0u);
        }
    }

    // Without progress, the completion arrives (the device's own thread
    // runs the link) and waits for us: arm must then say BUSY.
    completion c;
    uct_iov_t iov = p.local.iov(0, 4096);
    ucs_status_t s = uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(8192), p.rkey, &c);
    BOOST_REQUIRE(s == UCS_INPROGRESS || s == UCS_OK);
    if (s == UCS_INPROGRESS) {
        int fd = -1;
        uct_iface_event_fd_get(p.me.iface(), &fd);
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
        ucs_status_t a = UCS_OK;
        while (std::chrono::steady_clock::now() < end &&
               (a = uct_iface_event_arm(p.me.iface(), UCT_EVENT_SEND_COMP)) == UCS_OK) {
            pollfd pfd{fd, POLLIN, 0};
            ::poll(&pfd, 1, 100);
        }
        BOOST_CHECK_EQUAL(a, UCS_ERR_BUSY);
        BOOST_CHECK(!c.done());  // only progress calls it
        BOOST_CHECK_EQUAL(p.me.wait(s, c), UCS_OK);
    }
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// Both processes sleep between messages: a ping-pong where each side
// only ever waits in poll(). A lost wake-up stalls it (and fails).
BOOST_AUTO_TEST_CASE(ping_pong_both_sleeping)
{
    constexpr int rounds = 50;
    am_pair p([](node &n, uct_ep_h ep, inbox &in, channel &c) {
        for (int k = 1; k <= rounds; k++) {
            if (!peer_check(sleep_until(n, UCT_EVENT_RECV, [&] { return in.got == k; }),
                            "woken for ping", k) ||
                !peer_check(in.last_hdr == uint64_t(2 * k - 1) && !in.bad, "ping", k))
                return 1;
            if (!peer_check(send_am(n, ep, 2 * k, 64 + k) == UCS_OK, "pong", k))
                return 1;
        }
        c.recv<uint64_t>();
        return 0;
    });
    for (int k = 1; k <= rounds; k++) {
        BOOST_REQUIRE_EQUAL(send_am(p.me, p.ep, 2 * k - 1, 32 + k), UCS_OK);
        BOOST_REQUIRE_MESSAGE(sleep_until(p.me, UCT_EVENT_RECV, [&] { return p.in.got == k; }),
                              "no pong " << k);
        BOOST_CHECK_EQUAL(p.in.last_hdr, uint64_t(2 * k));
    }
    BOOST_CHECK_EQUAL(p.in.bad, 0u);
    p.peer.chan().send<uint64_t>(0);
    BOOST_CHECK_EQUAL(p.peer.wait(), 0);
}

BOOST_AUTO_TEST_SUITE_END()
