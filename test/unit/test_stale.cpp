// SPDX-License-Identifier: BSD-2-Clause
//
// What a crashed process leaves on the software fabric: its shared-memory
// cable is removed when its port is claimed again, its id is never handed
// out again, and peers that still hold it are refused, not misdirected.
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>

#include "device_under_test.hpp"
#include "soft_fabric.hpp"

using namespace tbtest;

namespace {

// Shared-memory objects of a fabric whose names mention id (cables).
std::vector<std::string> cables_of(const std::string &fabric, uint32_t id)
{
    char hex[16];
    std::snprintf(hex, sizeof(hex), "%08x", tb::soft_fabric::process_of(id));
    std::vector<std::string> out;
    DIR *d = ::opendir("/dev/shm");
    if (!d)
        return out;
    while (dirent *e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.rfind("tb-" + fabric + "-", 0) == 0 && n.find(hex) != std::string::npos)
            out.push_back(n);
    }
    ::closedir(d);
    return out;
}

// This process on a fabric of its own, with a buffer that the peers it
// forks write to: each opens the fabric, connects with one write, then
// reports its own id and waits to be killed.
struct stale_fixture {
    std::string fabric;
    soft_node me;
    alignas(8) uint8_t mem[64] = {};
    uint64_t key;

    explicit stale_fixture(const char *what)
        : fabric(unique_fabric(what)), me(open_soft(fabric)),
          key(me.dev->reg_mr(mem, sizeof(mem), TBRDMA_ACCESS_ALL))
    {
    }

    std::function<int(channel &)> connecting_peer()
    {
        return [this, to = me->id(), secret = me->secret()](channel &c) {
            auto node = open_soft(fabric);
            int ep = node->create_ep(0, to, secret);
            if (ep < 0)
                return 2;
            tbrdma_sqe s{};
            s.opcode = TBRDMA_OP_WRITE;
            s.flags = TBRDMA_SQE_INLINE;
            s.ep = static_cast<uint32_t>(ep);
            s.length = 4;
            s.remote_addr = reinterpret_cast<uintptr_t>(mem);
            s.rkey = key;
            if (run_op(*node.ctx, s).status != TBRDMA_WC_SUCCESS)
                return 3;
            c.send(node->id());
            for (;;)
                node->progress();
        };
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(stale, *boost::unit_test::precondition(soft_only))

BOOST_AUTO_TEST_CASE(crashed_process_is_cleaned_up_and_never_reused)
{
    stale_fixture f("stale");
    const std::string &fabric = f.fabric;
    auto &me = f.me;

    // The first peer connects (a cable appears), then dies without a word.
    peer_process first(f.connecting_peer());
    auto dead = first.chan().recv<uint32_t>();
    BOOST_TEST(cables_of(fabric, dead).size() == 1u);
    first.kill9();

    // Once the death is noticed (liveness is checked every 10 ms), its id
    // is refused: nobody answers to it any more.
    int rc = 0;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (rc >= 0 && std::chrono::steady_clock::now() < until) {
        me->progress();
        rc = me->create_ep(0, dead, 0);
        if (rc >= 0)
            me->destroy_ep(static_cast<uint32_t>(rc));
    }
    BOOST_TEST(rc == -ECONNREFUSED);

    // The next process takes the dead one's port (the first one free or
    // abandoned): a new generation, so a new id, and the old cable is gone.
    peer_process second(f.connecting_peer());
    auto fresh = second.chan().recv<uint32_t>();
    BOOST_TEST(tb::soft_fabric::port_of(fresh) == tb::soft_fabric::port_of(dead));
    BOOST_TEST(fresh != dead);
    BOOST_TEST(cables_of(fabric, dead).empty());
    BOOST_TEST(cables_of(fabric, fresh).size() == 1u);
    BOOST_TEST(me->create_ep(0, dead, 0) == -ECONNREFUSED);
    int ep = me->create_ep(0, fresh, 0);
    BOOST_TEST(ep >= 0);
    second.kill9();
}

// A process stopped while it holds the fabric's lock (SIGSTOP, a
// debugger) stops no other's progress: removing a dead peer's cable, which
// takes the lock, waits for a check after the lock is free.
BOOST_AUTO_TEST_CASE(a_stopped_lock_holder_stops_no_progress)
{
    stale_fixture f("held");
    const std::string &fabric = f.fabric;
    auto &me = f.me;

    peer_process first(f.connecting_peer());
    auto dead = first.chan().recv<uint32_t>();
    peer_process holder([&](channel &c) {
        int fd = ::shm_open(("/tb-" + fabric).c_str(), O_RDWR, 0);
        if (fd < 0 || ::flock(fd, LOCK_EX))
            return 2;
        c.send(1);
        for (;;)
            ::pause();
    });
    BOOST_REQUIRE_EQUAL(holder.chan().recv<int>(), 1);
    holder.stop();
    first.kill9();

    // Half a second of progress, long enough to see the peer die (every
    // 10 ms); should it wait for the lock, the holder's death ends it.
    std::atomic<bool> done{false};
    std::thread progress([&] {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
        while (std::chrono::steady_clock::now() < until) {
            me->progress();
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        done = true;
    });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BOOST_TEST(done.load(), "progress went on while a stopped process held the fabric's lock");
    BOOST_TEST(cables_of(fabric, dead).size() == 1u);  // not removed without the lock
    holder.kill9();
    progress.join();

    // With the lock free again, the dead peer's cable goes.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!cables_of(fabric, dead).empty() && std::chrono::steady_clock::now() < until)
        me->progress();
    BOOST_TEST(cables_of(fabric, dead).empty());
}

BOOST_AUTO_TEST_SUITE_END()
