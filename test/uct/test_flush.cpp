// SPDX-License-Identifier: BSD-2-Clause
//
// Flush and fence: after an endpoint or interface flush the target holds
// every byte written before it; a flush with CANCEL completes whatever is
// outstanding; a fence keeps a later put after an earlier one.
#include <boost/test/unit_test.hpp>

#include "target.hpp"
#include "rdma/tbrdma_abi.h"  // the limits the transport reports

using namespace uctest;

namespace {

// The largest put_short.
constexpr size_t put_max = TBRDMA_INLINE_MAX;

// Puts count regions of put_max bytes (pat(seed, off + k)) without waiting.
void short_burst(rma_pair &p, size_t count, unsigned seed)
{
    fill(p.local.p, count * put_max, seed);
    for (size_t i = 0; i < count; i++) {
        ucs_status_t s = UCS_ERR_NO_RESOURCE;
        BOOST_REQUIRE(p.me.progress_until([&] {
            return (s = uct_ep_put_short(p.ep, p.local.p + i * put_max, put_max, p.raddr(i * put_max),
                                         p.rkey)) != UCS_ERR_NO_RESOURCE;
        }));
        BOOST_REQUIRE_EQUAL(s, UCS_OK);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(flush)

BOOST_AUTO_TEST_CASE(ep_flush_completion)
{
    rma_pair p(1 << 20, 1 << 20);
    for (unsigned round = 0; round < 5; round++) {
        unsigned seed = 20 + round;
        short_burst(p, 1000, seed);
        completion c;
        ucs_status_t s = UCS_ERR_NO_RESOURCE;
        BOOST_REQUIRE(p.me.progress_until(
            [&] { return (s = uct_ep_flush(p.ep, 0, &c)) != UCS_ERR_NO_RESOURCE; }));
        // Do not progress the target's view first: ask only once flushed.
        BOOST_CHECK_EQUAL(p.me.wait(s, c), UCS_OK);
        BOOST_CHECK_EQUAL(p.tgt.check(0, 1000 * put_max, seed), 0u);
    }
    // Nothing outstanding: done at once.
    completion idle;
    BOOST_CHECK_EQUAL(uct_ep_flush(p.ep, 0, &idle), UCS_OK);
    BOOST_CHECK(!idle.done());
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

BOOST_AUTO_TEST_CASE(iface_flush_polled)
{
    rma_pair p(1 << 20, 1 << 20);
    short_burst(p, 1000, 30);
    // Also a zcopy in flight: iface flush waits for it too.
    completion z;
    uct_iov_t iov = p.local.iov(0, 1000 * put_max);
    ucs_status_t zs = UCS_ERR_NO_RESOURCE;
    BOOST_REQUIRE(p.me.progress_until([&] {
        return (zs = uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(1000 * put_max), p.rkey, &z)) !=
               UCS_ERR_NO_RESOURCE;
    }));
    BOOST_REQUIRE(zs == UCS_OK || zs == UCS_INPROGRESS);
    ucs_status_t s = UCS_INPROGRESS;
    BOOST_CHECK(p.me.progress_until(
        [&] { return (s = uct_iface_flush(p.me.iface(), 0, nullptr)) != UCS_INPROGRESS; }));
    BOOST_CHECK_EQUAL(s, UCS_OK);
    BOOST_CHECK(zs == UCS_OK || z.done());
    // Two regions back to back: the guard bytes are each other's.
    BOOST_CHECK_EQUAL(p.tgt.check(0, 1000 * put_max, 30, 0, false), 0u);
    BOOST_CHECK_EQUAL(p.tgt.check(1000 * put_max, 1000 * put_max, 30, 0, false), 0u);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// The target is stopped, so the operations are surely outstanding when
// the flush cancels them. Each completes (OK or CANCELED), the flush too,
// and a new endpoint works afterwards.
BOOST_AUTO_TEST_CASE(cancel_outstanding)
{
    rma_pair p(8 << 20, 8 << 20);
    fill(p.local.p, 8 << 20, 40);
    p.tgt.proc().stop();
    std::vector<completion> comps(16);
    size_t posted = 0;
    for (; posted < comps.size(); posted++) {
        uct_iov_t iov = p.local.iov(posted << 19, 1 << 19);
        ucs_status_t s =
            uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(posted << 19), p.rkey, &comps[posted]);
        if (s == UCS_ERR_NO_RESOURCE)
            break;
        BOOST_REQUIRE_EQUAL(s, UCS_INPROGRESS);  // the target cannot have answered
    }
    completion small;
    uct_iov_t iov = p.local.iov(0, 64);
    ucs_status_t gs = uct_ep_get_zcopy(p.ep, &iov, 1, p.raddr(0), p.rkey, &small);
    BOOST_TEST_MESSAGE(posted << " puts and a get outstanding");

    uct_ep_pending_purge(p.ep, [](uct_pending_req_t *, void *) {}, nullptr);
    completion f;
    ucs_status_t s = UCS_ERR_NO_RESOURCE;
    BOOST_REQUIRE(p.me.progress_until(
        [&] { return (s = uct_ep_flush(p.ep, UCT_FLUSH_FLAG_CANCEL, &f)) != UCS_ERR_NO_RESOURCE; },
        30000));
    BOOST_CHECK(s == UCS_OK || s == UCS_INPROGRESS);
    auto all_done = [&] {
        for (size_t i = 0; i < posted; i++)
            if (!comps[i].done())
                return false;
        return (gs != UCS_INPROGRESS || small.done()) && (s != UCS_INPROGRESS || f.done());
    };
    BOOST_CHECK(p.me.progress_until(all_done, 30000));
    size_t canceled = 0;
    for (size_t i = 0; i < posted; i++) {
        BOOST_CHECK_MESSAGE(comps[i].status == UCS_OK || comps[i].status == UCS_ERR_CANCELED,
                            "put " << i << ": " << status_str(comps[i].status));
        canceled += comps[i].status == UCS_ERR_CANCELED;
    }
    BOOST_TEST_MESSAGE(canceled << " of " << posted << " puts canceled");
    if (gs == UCS_INPROGRESS)
        BOOST_CHECK(small.status == UCS_OK || small.status == UCS_ERR_CANCELED);
    p.me.destroy_ep(p.ep);
    p.tgt.proc().cont();

    // The interface and the target are fine: a new endpoint works. Frames
    // of the canceled puts that were already at the stopped target may
    // still be executed when it resumes (as packets on a wire would); the
    // link is in order, so once the new endpoint's put is done, they are.
    uct_ep_h ep = p.me.connect(p.tgt.address());
    fill(p.local.p, put_max, 41);
    BOOST_CHECK_EQUAL(uct_ep_put_short(ep, p.local.p, put_max, p.raddr(4096), p.rkey), UCS_OK);
    BOOST_CHECK_EQUAL(p.me.flush(ep), UCS_OK);
    p.tgt.fill(42);
    BOOST_CHECK_EQUAL(uct_ep_put_short(ep, p.local.p, put_max, p.raddr(4096), p.rkey), UCS_OK);
    BOOST_CHECK_EQUAL(p.me.flush(ep), UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.check(4096, put_max, 41), 0u);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// put A (large), fence, put B (small) to the same place: B is what stays.
BOOST_AUTO_TEST_CASE(fence_orders_puts)
{
    rma_pair p(1 << 20, 1 << 20);
    const size_t n = 65536;
    for (unsigned round = 0; round < 20; round++) {
        unsigned a = 100 + 2 * round, b = a + 1;
        fill(p.local.p, n, a);
        fill(p.local.p + n, put_max, b);
        completion ca;
        uct_iov_t iov = p.local.iov(0, n);
        ucs_status_t s = UCS_ERR_NO_RESOURCE;
        BOOST_REQUIRE(p.me.progress_until([&] {
            return (s = uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(0), p.rkey, &ca)) !=
                   UCS_ERR_NO_RESOURCE;
        }));
        BOOST_REQUIRE(s == UCS_OK || s == UCS_INPROGRESS);
        BOOST_CHECK_EQUAL(uct_ep_fence(p.ep, 0), UCS_OK);
        ucs_status_t sb = UCS_ERR_NO_RESOURCE;
        BOOST_REQUIRE(p.me.progress_until([&] {
            return (sb = uct_ep_put_short(p.ep, p.local.p + n, put_max, p.raddr(1000), p.rkey)) !=
                   UCS_ERR_NO_RESOURCE;
        }));
        BOOST_CHECK_EQUAL(sb, UCS_OK);
        BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
        BOOST_CHECK(s == UCS_OK || ca.done());
        // B over A in [1000, 1000 + put_max); A elsewhere.
        BOOST_CHECK_EQUAL(p.tgt.check(1000, put_max, b, 0, false), 0u);
        BOOST_CHECK_EQUAL(p.tgt.check(0, 1000, a, 0, false), 0u);
        BOOST_CHECK_EQUAL(p.tgt.check(1000 + put_max, n - 1000 - put_max, a, 1000 + put_max, false),
                          0u);
    }
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// get (large), fence, put to the get's last bytes: the get reads what was
// there before the put. READ data is read chunk by chunk while later
// requests already run, so without the fence the put can land first.
BOOST_AUTO_TEST_CASE(fence_orders_get_before_put)
{
    const size_t n = 1 << 20, tail = n - put_max;
    rma_pair p(n, 2 * n);
    for (unsigned round = 0; round < 10; round++) {
        unsigned old_seed = 200 + 2 * round, new_seed = old_seed + 1;
        p.tgt.fill(old_seed);
        fill(p.local.p + n, put_max, new_seed, tail);
        completion got;
        uct_iov_t iov = p.local.iov(0, n);
        BOOST_REQUIRE_EQUAL(uct_ep_get_zcopy(p.ep, &iov, 1, p.raddr(0), p.rkey, &got),
                            UCS_INPROGRESS);
        // Every other round through the interface-wide fence.
        BOOST_REQUIRE_EQUAL(round % 2 ? uct_iface_fence(p.me.iface(), 0) : uct_ep_fence(p.ep, 0),
                            UCS_OK);
        ucs_status_t s = UCS_ERR_NO_RESOURCE;
        BOOST_REQUIRE(p.me.progress_until([&] {
            return (s = uct_ep_put_short(p.ep, p.local.p + n, put_max, p.raddr(tail), p.rkey)) !=
                   UCS_ERR_NO_RESOURCE;
        }));
        BOOST_REQUIRE_EQUAL(s, UCS_OK);
        BOOST_CHECK_EQUAL(p.me.wait(UCS_INPROGRESS, got), UCS_OK);
        BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
        BOOST_CHECK_EQUAL(mismatches(p.local.p, n, old_seed), 0u);
        BOOST_CHECK_EQUAL(p.tgt.check(tail, put_max, new_seed, tail, false), 0u);
    }
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

BOOST_AUTO_TEST_SUITE_END()
