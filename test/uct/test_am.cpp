// SPDX-License-Identifier: BSD-2-Clause
//
// Active messages of every flavour from this process to the peer, at the
// sizes around each limit. The peer's handlers check each message against
// the same plan: its id, its length and every byte (all messages are
// pat(seed, 0..length), the short header included).
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <numeric>

#include "target.hpp"
#include "rdma/tbrdma_abi.h"  // the limits the transport reports

using namespace uctest;

namespace {

enum class am_kind { short_, short_iov, bcopy, zcopy };

struct am_msg {
    am_kind kind;
    uint8_t id;
    unsigned seed;
    size_t hdr;                // zcopy header; short: always the 8-byte header
    std::vector<size_t> iovs;  // payload pieces (short and bcopy: one)
    size_t total() const { return hdr + std::accumulate(iovs.begin(), iovs.end(), size_t(0)); }
};

const uint8_t ids[] = {0, 1, 17, UCT_AM_ID_MAX - 1};

// The same list in both processes (it is built from nothing but code):
// every kind once, or (copies_only) the kinds that copy at once, rounds
// times over.
std::vector<am_msg> plan(bool copies_only = false, int rounds = 1)
{
    std::vector<am_msg> p;
    unsigned seed = 100;
    auto add = [&](am_kind k, size_t hdr, std::vector<size_t> iovs) {
        if (copies_only && k == am_kind::zcopy)
            return;
        p.push_back({k, ids[p.size() % 4], seed++, hdr, std::move(iovs)});
    };
    for (int r = 0; r < rounds; r++) {
        const size_t inl = TBRDMA_INLINE_MAX, send = TBRDMA_SEND_MAX;
        for (size_t n : {size_t(0), size_t(1), size_t(100), inl - 9, inl - 8})  // 8 + n <= inl
            add(am_kind::short_, 8, {n});
        add(am_kind::short_iov, 0, {1});
        add(am_kind::short_iov, 0, {3, 5, 7});
        add(am_kind::short_iov, 0, {8, 0, 100, inl - 108});  // inl in all
        add(am_kind::short_iov, 0, {20, 20, 20, 20, 20, 20, 20, inl - 140});  // inl in all
        for (size_t n : {size_t(0), size_t(1), size_t(8), inl, inl + 1, send - 1, send})
            add(am_kind::bcopy, 0, {n});
        add(am_kind::zcopy, 0, {1});
        add(am_kind::zcopy, 8, {inl - 8});  // fits inline
        add(am_kind::zcopy, 8, {inl - 7});  // does not
        add(am_kind::zcopy, 16, {100, 0, 77});
        add(am_kind::zcopy, 128, {0});
        add(am_kind::zcopy, 128, std::vector<size_t>(8, (send - 128) / 8));  // 8 iovs, full
        add(am_kind::zcopy, 1, {send - 1});
    }
    return p;
}

// Receiver state: the next expected message and what went wrong.
struct am_rx {
    std::vector<am_msg> expect;
    size_t next = 0;
    size_t bad = 0;
};

struct am_slot {
    am_rx *rx;
    uint8_t id;
};

ucs_status_t on_am(void *arg, void *data, size_t length, unsigned)
{
    auto *slot = static_cast<am_slot *>(arg);
    am_rx &rx = *slot->rx;
    if (!peer_check(rx.next < rx.expect.size(), "more messages than sent", long(rx.next))) {
        rx.bad++;
        return UCS_OK;
    }
    const am_msg &m = rx.expect[rx.next++];
    bool ok = peer_check(slot->id == m.id, "am id", slot->id, m.id) &&
              peer_check(length == m.total(), "am length", long(length), long(m.total())) &&
              mismatches(data, length, m.seed, 0, "am bytes") == 0;
    if (!ok) {
        std::fprintf(stderr, "  in message %zu\n", rx.next - 1);
        rx.bad++;
    }
    return UCS_OK;  // data not kept
}

// The receiving process: handlers on every id of the plan; counts until
// the test says how many were sent, then answers received and bad. With
// hold, it does not progress until told to (the sender outruns it).
int receiver(channel &c, const std::string &fabric, std::vector<am_msg> expect, bool hold)
{
    node n(fabric);
    am_rx rx{std::move(expect)};
    std::vector<am_slot> slots;
    slots.reserve(4);
    for (uint8_t id : ids) {
        slots.push_back({&rx, id});
        must(uct_iface_set_am_handler(n.iface(), id, on_am, &slots.back(), 0),
             "uct_iface_set_am_handler");
    }
    c.send(n.address());
    if (hold)
        c.recv<uint64_t>();
    while (!c.readable())  // messages arrive meanwhile
        n.progress();
    auto sent = c.recv<uint64_t>();
    n.progress_until([&] { return rx.next >= sent; });
    c.send<uint64_t>(rx.next);
    c.send<uint64_t>(rx.bad);
    c.recv<uint64_t>();  // stay until the sender is done
    return rx.bad || rx.next != sent ? 1 : 0;
}

size_t pack_bytes(void *dest, void *arg)
{
    auto *m = static_cast<const am_msg *>(arg);
    fill(dest, m->total(), m->seed);
    return m->total();
}

// Sends m; zcopy completions count in c. While NO_RESOURCE, progresses
// and retries if given a node to progress (else returns it).
ucs_status_t send(uct_ep_h ep, const am_msg &m, buffer &b, completion &c, node *retry)
{
    size_t total = m.total();
    fill(b.p, total, m.seed);  // the bytes as they should arrive
    std::vector<uct_iov_t> iov;
    for (size_t off = m.hdr, i = 0; i < m.iovs.size(); off += m.iovs[i++])
        iov.push_back(b.iov(off, m.iovs[i]));
    ucs_status_t s = UCS_ERR_NO_RESOURCE;
    auto attempt = [&] {
        switch (m.kind) {
        case am_kind::short_: {
            uint64_t hdr;
            std::memcpy(&hdr, b.p, 8);
            s = uct_ep_am_short(ep, m.id, hdr, b.p + 8, unsigned(total - 8));
            break;
        }
        case am_kind::short_iov:
            s = uct_ep_am_short_iov(ep, m.id, iov.data(), iov.size());
            break;
        case am_kind::bcopy: {
            ssize_t r = uct_ep_am_bcopy(ep, m.id, pack_bytes, const_cast<am_msg *>(&m), 0);
            s = r < 0 ? ucs_status_t(r) : size_t(r) == total ? UCS_OK : UCS_ERR_INVALID_PARAM;
            break;
        }
        case am_kind::zcopy:
            s = uct_ep_am_zcopy(ep, m.id, b.p, unsigned(m.hdr), iov.data(), iov.size(), 0, &c);
            break;
        }
        return s != UCS_ERR_NO_RESOURCE;
    };
    if (retry)
        retry->progress_until(attempt);
    else
        attempt();
    return s;
}

// Sends msgs to a receiver expecting them and checks its verdict. With
// hold, the receiver only starts progressing once the sender first runs
// out of resources (or has sent everything).
void exchange(const std::vector<am_msg> &msgs, bool hold)
{
    std::string fabric = unique_fabric("uct");
    peer_process peer([&](channel &c) { return receiver(c, fabric, msgs, hold); });
    node me(fabric);
    kill_first k{peer};
    uct_ep_h ep = me.connect(peer.chan().recv<iface_address>());
    buffer &b = me.alloc(8192);
    std::vector<completion> comps(msgs.size());
    size_t blocked_at = 0;
    for (size_t i = 0; i < msgs.size(); i++) {
        BOOST_TEST_CONTEXT("message " << i << " of " << msgs[i].total() << " bytes")
        {
            ucs_status_t s = send(ep, msgs[i], b, comps[i], hold ? nullptr : &me);
            if (s == UCS_ERR_NO_RESOURCE) {
                // Only when holding: the receiver may go now.
                blocked_at = i;
                hold = false;
                peer.chan().send<uint64_t>(0);
                s = send(ep, msgs[i], b, comps[i], &me);
            }
            BOOST_CHECK(s == UCS_OK || s == UCS_INPROGRESS);
            // The buffer is reused at once: wait until a zcopy is done with it.
            BOOST_CHECK_EQUAL(me.wait(s == UCS_INPROGRESS ? s : UCS_OK, comps[i]), UCS_OK);
        }
    }
    if (hold)
        peer.chan().send<uint64_t>(0);
    BOOST_TEST_MESSAGE(msgs.size() << " messages, first out of resources at " << blocked_at);
    BOOST_CHECK_EQUAL(me.flush(ep), UCS_OK);
    peer.chan().send<uint64_t>(msgs.size());
    BOOST_CHECK_EQUAL(peer.chan().recv<uint64_t>(), msgs.size());  // received
    BOOST_CHECK_EQUAL(peer.chan().recv<uint64_t>(), 0u);           // bad
    peer.chan().send<uint64_t>(0);
    BOOST_CHECK_EQUAL(peer.wait(), 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(am)

BOOST_AUTO_TEST_CASE(every_kind_and_size)
{
    exchange(plan(), false);
}

// Hundreds of messages back to back: order and bytes kept while the
// sender runs out of resources and retries.
BOOST_AUTO_TEST_CASE(stream_in_order)
{
    exchange(plan(true, 60), false);
}

// The receiver does not progress at first: messages pile up at its end
// until the sender is told to wait; none is lost or reordered.
BOOST_AUTO_TEST_CASE(receiver_not_progressing)
{
    exchange(plan(true, 60), true);
}

BOOST_AUTO_TEST_SUITE_END()
