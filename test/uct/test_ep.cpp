// SPDX-License-Identifier: BSD-2-Clause
//
// Endpoints as UCX expects them: uct_ep_destroy completes whatever the
// endpoint still had outstanding, an interface holds thousands of them at
// a cost of a few hundred bytes each, a flush without a completion posts
// no new work while one is outstanding, and a completion left over from a
// destroyed endpoint never completes somebody else's operation.
#include <boost/test/unit_test.hpp>

#include <malloc.h>

#include <vector>

#include "target.hpp"

using namespace uctest;

BOOST_AUTO_TEST_SUITE(ep)

// Destroyed with operations in flight (the target is stopped: nothing can
// finish): each completion is called, canceled, before destroy returns.
BOOST_AUTO_TEST_CASE(destroy_completes_outstanding)
{
    rma_pair p(1 << 20, 1 << 20);
    if (!on_kernel_device())  // the kernel serves a stopped process's memory
        p.tgt.proc().stop();
    uct_ep_h ep = p.me.connect(p.tgt.address());
    std::vector<completion> comps(8);
    size_t posted = 0;
    for (; posted < 6; posted++) {
        uct_iov_t iov = p.local.iov(posted << 17, 1 << 17);
        ucs_status_t s = uct_ep_get_zcopy(ep, &iov, 1, p.raddr(posted << 17), p.rkey,
                                          &comps[posted]);
        BOOST_REQUIRE_EQUAL(s, UCS_INPROGRESS);
    }
    ucs_status_t s = uct_ep_flush(ep, 0, &comps[posted]);
    BOOST_REQUIRE(s == UCS_INPROGRESS || s == UCS_OK);
    if (s == UCS_INPROGRESS)
        posted++;
    p.me.destroy_ep(ep);
    for (size_t i = 0; i < posted; i++) {
        BOOST_TEST_CONTEXT("operation " << i)
        {
            BOOST_CHECK_EQUAL(comps[i].calls, 1);
            BOOST_CHECK(comps[i].status == UCS_OK || comps[i].status == UCS_ERR_CANCELED);
        }
    }
    // Their late completions find nothing to complete twice.
    if (!on_kernel_device())
        p.tgt.proc().cont();
    for (int i = 0; i < 2000; i++)
        p.me.progress();
    for (size_t i = 0; i < posted; i++)
        BOOST_CHECK_EQUAL(comps[i].calls, 1);
}

// UCX's tests and MPI jobs with many ranks open 2,048 endpoints from one
// interface; each costs memory for itself, not for a queue of operations.
BOOST_AUTO_TEST_CASE(thousands_of_endpoints)
{
    rma_pair p(1 << 20, 1 << 20);
    const size_t n = 2048;
    BOOST_CHECK_GE(p.me.attr().max_num_eps, n);
    std::vector<uct_ep_h> eps;
    eps.reserve(n);
    // Warm up: allocations of the first endpoint are not per endpoint.
    eps.push_back(p.me.connect(p.tgt.address()));
    size_t heap0 = mallinfo2().uordblks;
    for (size_t i = 1; i < n; i++)
        eps.push_back(p.me.connect(p.tgt.address()));
    size_t heap1 = mallinfo2().uordblks;
    double per_ep = double(heap1 - heap0) / double(n - 1);
    // (On the kernel device the engine's endpoint is in the kernel.)
    BOOST_TEST_MESSAGE("idle endpoint: " << per_ep << " bytes of this process's heap");
    // A few hundred bytes, not a queue of operations (4 KiB and more).
    BOOST_CHECK_LT(per_ep, 1024);
    // Every one of them works: a put each, to its own place.
    for (size_t i = 0; i < n; i++) {
        fill(p.local.p + i * 8, 8, 7, i * 8);
        ucs_status_t s = UCS_ERR_NO_RESOURCE;
        BOOST_REQUIRE(p.me.progress_until([&] {
            return (s = uct_ep_put_short(eps[i], p.local.p + i * 8, 8, p.raddr(i * 8), p.rkey)) !=
                   UCS_ERR_NO_RESOURCE;
        }));
        BOOST_REQUIRE_EQUAL(s, UCS_OK);
    }
    for (uct_ep_h e : eps)
        BOOST_REQUIRE_EQUAL(p.me.flush(e), UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.check(0, n * 8, 7, 0, false), 0u);
    for (uct_ep_h e : eps)
        p.me.destroy_ep(e);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// Asking again and again whether an endpoint is flushed takes no queue
// space: the FLUSH already posted answers for all of them.
BOOST_AUTO_TEST_CASE(repeated_flush_posts_once)
{
    const node_options short_queue{{{"TX_QUEUE_LEN", "4"}}, false, {}};
    rma_pair p(1 << 20, 1 << 20, short_queue);
    if (!on_kernel_device())
        p.tgt.proc().stop();
    completion c;
    uct_iov_t iov = p.local.iov(0, 1 << 16);
    BOOST_REQUIRE_EQUAL(uct_ep_get_zcopy(p.ep, &iov, 1, p.raddr(0), p.rkey, &c), UCS_INPROGRESS);
    int in_progress = 0;
    for (int i = 0; i < 100; i++) {
        ucs_status_t s = uct_ep_flush(p.ep, 0, nullptr);
        if (s == UCS_OK)
            break;  // the kernel device finished the get meanwhile
        BOOST_REQUIRE_EQUAL(s, UCS_INPROGRESS);
        in_progress++;
    }
    BOOST_TEST_MESSAGE(in_progress << " flushes in progress, none out of resources");
    if (!on_kernel_device())
        p.tgt.proc().cont();
    BOOST_CHECK_EQUAL(p.me.wait(UCS_INPROGRESS, c), UCS_OK);
    BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// A completion the device wrote for an endpoint that was then destroyed
// (its descriptor already reused by a new operation) is not that new
// operation's completion.
BOOST_AUTO_TEST_CASE(stale_completion_ignored)
{
    rma_pair p(1 << 20, 1 << 20);
    uct_ep_h first = p.me.connect(p.tgt.address());
    completion done;
    uct_iov_t iov = p.local.iov(0, 4096);
    BOOST_REQUIRE_EQUAL(uct_ep_put_zcopy(first, &iov, 1, p.raddr(0), p.rkey, &done),
                        UCS_INPROGRESS);
    // The device completes it (its own thread), but nobody polls.
    p.tgt.ask({cmd_op::read64});  // a round trip to the target
    usleep(100000);
    p.me.destroy_ep(first);
    BOOST_CHECK_EQUAL(done.calls, 1);
    // Now a get that cannot finish: the target is stopped.
    if (on_kernel_device())
        return;  // the kernel would serve it anyway
    p.tgt.proc().stop();
    completion pending;
    uct_iov_t iov2 = p.local.iov(8192, 4096);
    BOOST_REQUIRE_EQUAL(uct_ep_get_zcopy(p.ep, &iov2, 1, p.raddr(8192), p.rkey, &pending),
                        UCS_INPROGRESS);
    for (int i = 0; i < 2000; i++)
        p.me.progress();
    BOOST_CHECK_MESSAGE(!pending.done(), "completed by a leftover completion: "
                                             << status_str(pending.status));
    p.tgt.proc().cont();
    BOOST_CHECK_EQUAL(p.me.wait(UCS_INPROGRESS, pending), UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

BOOST_AUTO_TEST_SUITE_END()
