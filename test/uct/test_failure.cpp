// SPDX-License-Identifier: BSD-2-Clause
//
// Peer failure: the target is killed (SIGKILL, after SIGSTOP so that the
// operations are surely in flight). The interface's error handler hears of
// the endpoint, every outstanding operation completes with an error, and
// UCP's clean-up sequence (purge, flush with CANCEL, destroy) finishes.
// Deadlines only keep a broken transport from hanging the run.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>

#include "target.hpp"
#include "rdma/tbrdma_abi.h"  // the limits the transport reports

using namespace uctest;

namespace {

const node_options with_handler{{}, true, {}};
constexpr int deadline_ms = 60000;

// What UCP does with a failed endpoint: purge, flush with CANCEL, destroy.
void tear_down(node &me, uct_ep_h ep)
{
    uct_ep_pending_purge(ep, [](uct_pending_req_t *, void *) {}, nullptr);
    ucs_status_t s = me.flush(ep, UCT_FLUSH_FLAG_CANCEL, deadline_ms);
    BOOST_TEST_MESSAGE("flush(CANCEL) of the failed endpoint: " << status_str(s));
    BOOST_CHECK(s != UCS_ERR_TIMED_OUT);
    me.destroy_ep(ep);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(failure)

BOOST_AUTO_TEST_CASE(peer_killed_mid_stream)
{
    rma_pair p(8 << 20, 8 << 20, with_handler);
    // The link is up and working.
    BOOST_REQUIRE_EQUAL(uct_ep_put_short(p.ep, p.local.p, 64, p.raddr(0), p.rkey), UCS_OK);
    BOOST_REQUIRE_EQUAL(p.me.flush(p.ep), UCS_OK);

    p.tgt.proc().stop();
    std::vector<completion> comps(24);
    size_t posted = 0;
    for (; posted < 16; posted++) {
        uct_iov_t iov = p.local.iov(posted << 19, 1 << 19);
        ucs_status_t s =
            uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(posted << 19), p.rkey, &comps[posted]);
        if (s == UCS_ERR_NO_RESOURCE)
            break;
        BOOST_REQUIRE_EQUAL(s, UCS_INPROGRESS);
    }
    size_t gets = posted;
    for (; posted < gets + 4; posted++) {
        uct_iov_t iov = p.local.iov(posted * 4096, 4096);
        ucs_status_t s = uct_ep_get_zcopy(p.ep, &iov, 1, p.raddr(0), p.rkey, &comps[posted]);
        if (s == UCS_ERR_NO_RESOURCE)
            break;
        BOOST_REQUIRE_EQUAL(s, UCS_INPROGRESS);
    }
    // Ones with no completion of their own.
    uct_ep_put_short(p.ep, p.local.p, TBRDMA_INLINE_MAX, p.raddr(0), p.rkey);
    uct_ep_atomic64_post(p.ep, UCT_ATOMIC_OP_ADD, 1, p.raddr(64), p.rkey);
    BOOST_TEST_MESSAGE(posted << " zcopy operations outstanding");
    p.tgt.proc().kill9();
    // The kernel device executes them for the stopped process, so they may
    // all be done already; the next request to the dead context shows it.
    BOOST_CHECK_EQUAL(uct_ep_check(p.ep, 0, nullptr), UCS_OK);

    auto all_done = [&] {
        for (size_t i = 0; i < posted; i++)
            if (!comps[i].done())
                return false;
        return !p.me.errors.empty();
    };
    BOOST_CHECK(p.me.progress_until(all_done, deadline_ms));
    BOOST_REQUIRE_EQUAL(p.me.errors.size(), 1u);
    BOOST_CHECK(p.me.errors[0].ep == p.ep);
    BOOST_CHECK(UCS_STATUS_IS_ERR(p.me.errors[0].status));
    BOOST_TEST_MESSAGE("error handler: " << status_str(p.me.errors[0].status));
    // Every operation completed; on the software link none can have
    // succeeded (the target never ran), on the kernel device any may have.
    // A failed one says what the error handler heard: one status per
    // endpoint, as UCP needs.
    const ucs_status_t reported = p.me.errors[0].status;
    for (size_t i = 0; i < posted; i++)
        BOOST_CHECK_MESSAGE(comps[i].done() &&
                                (comps[i].status == reported ||
                                 (on_kernel_device() && comps[i].status == UCS_OK)),
                            "operation " << i << ": " << status_str(comps[i].status));

    // A failed endpoint refuses new work, with that same status.
    ucs_status_t s = uct_ep_put_short(p.ep, p.local.p, 8, p.raddr(0), p.rkey);
    BOOST_CHECK_MESSAGE(s == reported, "put_short after the failure: " << status_str(s));
    completion late;
    uct_iov_t iov = p.local.iov(0, 4096);
    s = uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(0), p.rkey, &late);
    BOOST_CHECK_MESSAGE(s == reported, "put_zcopy after the failure: " << status_str(s));
    uint8_t am[8] = {};
    s = uct_ep_am_short(p.ep, 1, 0, am, sizeof(am));
    BOOST_CHECK_MESSAGE(s == reported, "am_short after the failure: " << status_str(s));
    tear_down(p.me, p.ep);
    // Reported once only.
    for (int i = 0; i < 1000; i++)
        p.me.progress();
    BOOST_CHECK_EQUAL(p.me.errors.size(), 1u);
}

// Killed while pending requests wait: the purge hands them back, the
// error handler still comes.
BOOST_AUTO_TEST_CASE(peer_killed_with_pending)
{
    rma_pair p(1 << 20, 1 << 20, node_options{{{"TX_QUEUE_LEN", "8"}}, true, {}});
    p.tgt.proc().stop();
    size_t posted = 0;
    while (posted < 1000 &&
           uct_ep_put_short(p.ep, p.local.p, 8, p.raddr(posted * 8), p.rkey) == UCS_OK)
        posted++;
    BOOST_REQUIRE_LT(posted, 1000u);
    struct req {
        uct_pending_req_t r;
        int runs = 0;
    } pend;
    pend.r.func = [](uct_pending_req_t *self) {
        reinterpret_cast<req *>(self)->runs++;
        return UCS_ERR_NO_RESOURCE;  // would stay queued
    };
    BOOST_REQUIRE_EQUAL(uct_ep_pending_add(p.ep, &pend.r, 0), UCS_OK);
    p.tgt.proc().kill9();
    BOOST_CHECK_EQUAL(uct_ep_check(p.ep, 0, nullptr), UCS_OK);
    BOOST_CHECK(p.me.progress_until([&] { return !p.me.errors.empty(); }, deadline_ms));
    int purged = 0;
    uct_ep_pending_purge(
        p.ep, [](uct_pending_req_t *, void *arg) { ++*static_cast<int *>(arg); }, &purged);
    BOOST_CHECK_EQUAL(purged, 1);
    tear_down(p.me, p.ep);
}

// uct_ep_check on an endpoint whose peer died leads to the error handler
// (the endpoint is idle: nothing else would find out).
BOOST_AUTO_TEST_CASE(ep_check_dead_peer)
{
    rma_pair p(1 << 16, 1 << 16, with_handler);
    BOOST_REQUIRE_EQUAL(uct_ep_put_short(p.ep, p.local.p, 64, p.raddr(0), p.rkey), UCS_OK);
    BOOST_REQUIRE_EQUAL(p.me.flush(p.ep), UCS_OK);
    // Alive: the check finds nothing.
    BOOST_CHECK_EQUAL(uct_ep_check(p.ep, 0, nullptr), UCS_OK);
    for (int i = 0; i < 1000; i++)
        p.me.progress();
    BOOST_CHECK(p.me.errors.empty());

    p.tgt.proc().kill9();
    ucs_status_t s = uct_ep_check(p.ep, 0, nullptr);
    BOOST_CHECK(s == UCS_OK || UCS_STATUS_IS_ERR(s));
    BOOST_CHECK(p.me.progress_until([&] { return !p.me.errors.empty(); }, deadline_ms));
    BOOST_REQUIRE_EQUAL(p.me.errors.size(), 1u);
    BOOST_CHECK(p.me.errors[0].ep == p.ep);
    BOOST_CHECK(UCS_STATUS_IS_ERR(p.me.errors[0].status));
    tear_down(p.me, p.ep);
}

// Two endpoints to the same dead peer: each is reported.
BOOST_AUTO_TEST_CASE(ep_check_two_endpoints)
{
    rma_pair p(1 << 16, 1 << 16, with_handler);
    uct_ep_h ep2 = p.me.connect(p.tgt.address());
    BOOST_REQUIRE_EQUAL(uct_ep_put_short(ep2, p.local.p, 64, p.raddr(0), p.rkey), UCS_OK);
    BOOST_REQUIRE_EQUAL(p.me.flush(ep2), UCS_OK);
    p.tgt.proc().kill9();
    // Let the link notice first, then check both.
    for (int i = 0; i < 100; i++)
        p.me.progress();
    uct_ep_check(p.ep, 0, nullptr);
    uct_ep_check(ep2, 0, nullptr);
    BOOST_CHECK(p.me.progress_until([&] { return p.me.errors.size() >= 2; }, deadline_ms));
    BOOST_CHECK_EQUAL(p.me.errors.size(), 2u);
    tear_down(p.me, p.ep);
    tear_down(p.me, ep2);
}

BOOST_AUTO_TEST_SUITE_END()
