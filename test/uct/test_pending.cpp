// SPDX-License-Identifier: BSD-2-Clause
//
// Running out of resources: with a short send queue, operations fail with
// UCS_ERR_NO_RESOURCE; a pending request then runs once resources are
// back and posts the rest; pending_purge hands back requests not run.
#include <boost/test/unit_test.hpp>

#include <cstddef>

#include "target.hpp"

using namespace uctest;

namespace {

// Eight in flight per endpoint, 64 per interface. The device may take
// posted operations off the send queue as fast as they come (the kernel's
// poll thread does), but without progress no completion is reaped, so the
// interface's 64 bound NO_RESOURCE whatever the timing (every test below
// posts more than 64 before it expects NO_RESOURCE).
const node_options short_queue{{{"TX_QUEUE_LEN", "8"}, {"CQ_LEN", "64"}}, false, {}};
constexpr size_t slot = 8;  // bytes per put

// Puts slot i (bytes pat(seed, i * slot + k)) with put_short.
ucs_status_t put_slot(rma_pair &p, size_t i)
{
    return uct_ep_put_short(p.ep, p.local.p + i * slot, slot, p.raddr(i * slot), p.rkey);
}

// A request that posts the remaining puts, as many as resources allow.
struct chain {
    uct_pending_req_t req;  // first: the callback gets its address
    rma_pair *p;
    size_t next, end;
    int calls = 0;
    bool finished = false;

    static ucs_status_t run(uct_pending_req_t *self)
    {
        auto *c = reinterpret_cast<chain *>(self);
        c->calls++;
        size_t before = c->next;
        while (c->next < c->end) {
            ucs_status_t s = put_slot(*c->p, c->next);
            if (s == UCS_ERR_NO_RESOURCE)  // stays pending; INPROGRESS: called again
                return c->next > before ? UCS_INPROGRESS : UCS_ERR_NO_RESOURCE;
            if (s != UCS_OK)
                return s;
            c->next++;
        }
        c->finished = true;
        return UCS_OK;  // done: removed from the pending queue
    }
};

// Posts puts from slot 0 until the queue is full; returns how many went.
size_t fill_queue(rma_pair &p, size_t max)
{
    for (size_t i = 0; i < max; i++) {
        ucs_status_t s = put_slot(p, i);
        if (s == UCS_ERR_NO_RESOURCE)
            return i;
        BOOST_REQUIRE_EQUAL(s, UCS_OK);
    }
    return max;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pending)

BOOST_AUTO_TEST_CASE(no_resource_then_pending_chain)
{
    rma_pair p(1 << 20, 1 << 20, short_queue);
    const size_t total = 4000;
    fill(p.local.p, total * slot, 5);
    size_t posted = fill_queue(p, total);
    // Eight in flight per endpoint: the ninth cannot go before a completion.
    BOOST_TEST_MESSAGE("NO_RESOURCE after " << posted << " puts");
    BOOST_REQUIRE_LT(posted, total);
    BOOST_CHECK_GE(posted, 8u);

    chain c{{chain::run, {}}, &p, posted, total};
    ucs_status_t s;
    // BUSY means resources came back meanwhile: post directly and retry.
    while ((s = uct_ep_pending_add(p.ep, &c.req, 0)) == UCS_ERR_BUSY) {
        chain::run(&c.req);
        BOOST_REQUIRE(!c.finished);
    }
    BOOST_REQUIRE_EQUAL(s, UCS_OK);
    BOOST_CHECK(p.me.progress_until([&] { return c.finished; }));
    BOOST_TEST_MESSAGE("the pending request ran " << c.calls << " times");
    BOOST_CHECK_GE(c.calls, 1);
    BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.check(0, total * slot, 5), 0u);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// The UCP way: one request per operation, each re-queued by returning
// NO_RESOURCE; they run in the order added.
BOOST_AUTO_TEST_CASE(one_request_per_op_in_order)
{
    rma_pair p(1 << 20, 1 << 20, short_queue);
    const size_t total = 600;
    fill(p.local.p, total * slot, 6);
    size_t posted = fill_queue(p, total);
    BOOST_REQUIRE_LT(posted, total);

    struct one {
        uct_pending_req_t req;
        rma_pair *p;
        size_t i;
        std::vector<size_t> *order;
        static ucs_status_t run(uct_pending_req_t *self)
        {
            auto *o = reinterpret_cast<one *>(self);
            ucs_status_t s = put_slot(*o->p, o->i);
            if (s == UCS_OK)
                o->order->push_back(o->i);
            return s;
        }
    };
    std::vector<size_t> order;
    std::vector<one> reqs;
    reqs.reserve(total);
    for (size_t i = posted; i < total; i++) {
        reqs.push_back({{one::run, {}}, &p, i, &order});
        ucs_status_t s = uct_ep_pending_add(p.ep, &reqs.back().req, 0);
        if (s == UCS_ERR_BUSY && order.empty() && i == posted) {
            // Resources back before the first add: post it ourselves.
            BOOST_REQUIRE_EQUAL(one::run(&reqs.back().req), UCS_OK);
            continue;
        }
        // Once one is queued, the rest must queue behind it.
        BOOST_REQUIRE_EQUAL(s, UCS_OK);
    }
    BOOST_CHECK(p.me.progress_until([&] { return order.size() == total - posted; }));
    for (size_t k = 1; k < order.size(); k++)
        BOOST_CHECK_LT(order[k - 1], order[k]);
    BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.check(0, total * slot, 6), 0u);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// zcopy until NO_RESOURCE: every accepted one completes, with its data.
BOOST_AUTO_TEST_CASE(zcopy_until_no_resource)
{
    rma_pair p(1 << 22, 1 << 22, short_queue);
    const size_t n = 16384;
    fill(p.local.p, 1 << 22, 7);
    std::vector<completion> comps(256);
    size_t posted = 0;
    ucs_status_t s = UCS_OK;
    for (; posted < comps.size(); posted++) {
        uct_iov_t iov = p.local.iov(posted * n, n);
        s = uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(posted * n), p.rkey, &comps[posted]);
        if (s == UCS_ERR_NO_RESOURCE)
            break;
        BOOST_REQUIRE(s == UCS_INPROGRESS || s == UCS_OK);
        if (s == UCS_OK)
            comps[posted].calls = 1;
    }
    BOOST_CHECK_EQUAL(s, UCS_ERR_NO_RESOURCE);
    BOOST_CHECK(p.me.progress_until([&] {
        for (size_t i = 0; i < posted; i++)
            if (!comps[i].done())
                return false;
        return true;
    }));
    for (size_t i = 0; i < posted; i++)
        BOOST_CHECK_EQUAL(comps[i].status, UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.check(0, posted * n, 7), 0u);
    // Resources are back: the next one goes.
    uct_iov_t iov = p.local.iov(posted * n, n);
    completion last;
    BOOST_CHECK_EQUAL(
        p.me.wait(uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(posted * n), p.rkey, &last), last),
        UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.check(0, (posted + 1) * n, 7), 0u);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// An endpoint whose own queue is full (its target is stopped) waits alone:
// another endpoint's pending requests run as its own completions come.
BOOST_AUTO_TEST_CASE(full_endpoint_does_not_block_others,
                     *boost::unit_test::precondition(on_soft_device))
{
    std::string fabric = unique_fabric("uct");
    target stalled(fabric, 1 << 20), live(fabric, 1 << 20);
    // With a handler: on a loaded machine the stalled peer may be silent
    // long enough for its link to give up, which is no failure here.
    node_options o = short_queue;
    o.err_handler = true;
    node me(fabric, o);
    kill_first k1{stalled.proc()}, k2{live.proc()};
    uct_ep_h ep_stalled = me.connect(stalled.address()), ep_live = me.connect(live.address());
    uct_rkey_t rk_stalled = me.unpack(stalled.mem()), rk_live = me.unpack(live.mem());
    buffer &local = me.alloc(1 << 20);
    stalled.hello(me.address());
    live.hello(me.address());
    const size_t total = 400;
    fill(local.p, total * slot, 9);
    stalled.proc().stop();

    // Both endpoints full, each with a request waiting behind; the
    // stalled one's first in line.
    auto fill_ep = [&](uct_ep_h ep, uct_rkey_t rk, uint64_t base) {
        size_t i = 0;
        while (uct_ep_put_short(ep, local.p + i * slot, slot, base + i * slot, rk) == UCS_OK)
            i++;
        return i;
    };
    struct puts {
        uct_pending_req_t req;
        uct_ep_h ep;
        uct_rkey_t rkey;
        uint64_t base;
        uint8_t *src;
        size_t next, end;
        bool finished = false;
        static ucs_status_t run(uct_pending_req_t *self)
        {
            auto *r = reinterpret_cast<puts *>(self);
            for (; r->next < r->end; r->next++) {
                ucs_status_t s = uct_ep_put_short(r->ep, r->src + r->next * slot, slot,
                                                  r->base + r->next * slot, r->rkey);
                if (s != UCS_OK)
                    return s;
            }
            r->finished = true;
            return UCS_OK;
        }
    };
    size_t n_stalled = fill_ep(ep_stalled, rk_stalled, stalled.mem().addr);
    puts blocked{{puts::run, {}}, ep_stalled, rk_stalled, stalled.mem().addr, local.p,
                 n_stalled, total};
    BOOST_REQUIRE_EQUAL(uct_ep_pending_add(ep_stalled, &blocked.req, 0), UCS_OK);
    size_t n_live = fill_ep(ep_live, rk_live, live.mem().addr);
    puts flowing{{puts::run, {}}, ep_live, rk_live, live.mem().addr, local.p, n_live, total};
    ucs_status_t s;
    while ((s = uct_ep_pending_add(ep_live, &flowing.req, 0)) == UCS_ERR_BUSY)
        puts::run(&flowing.req);
    BOOST_REQUIRE(s == UCS_OK || flowing.finished);
    BOOST_TEST_MESSAGE(n_stalled << " puts fill the stalled endpoint, " << n_live
                                 << " the live one");

    BOOST_CHECK(me.progress_until([&] { return flowing.finished; }, 30000));
    BOOST_CHECK(!blocked.finished);
    BOOST_CHECK_EQUAL(me.flush(ep_live), UCS_OK);
    BOOST_CHECK_EQUAL(live.check(0, total * slot, 9), 0u);
    if (!me.errors.empty())
        return;  // the stalled link gave up (see above)
    stalled.proc().cont();
    BOOST_CHECK(me.progress_until([&] { return blocked.finished; }));
    BOOST_CHECK_EQUAL(me.flush(ep_stalled), UCS_OK);
    BOOST_CHECK_EQUAL(stalled.check(0, total * slot, 9), 0u);
}

// pending_purge hands every queued request to its callback and none of
// them runs afterwards; what was posted still completes.
BOOST_AUTO_TEST_CASE(purge)
{
    rma_pair p(1 << 20, 1 << 20, short_queue);
    fill(p.local.p, 4096, 8);
    size_t posted = fill_queue(p, 4096);
    BOOST_REQUIRE_LE(posted, 64u);

    struct counted {
        uct_pending_req_t req;
        int runs = 0;
        static ucs_status_t run(uct_pending_req_t *self)
        {
            reinterpret_cast<counted *>(self)->runs++;
            return UCS_OK;
        }
    };
    std::vector<counted> reqs(3);
    for (auto &r : reqs) {
        r.req.func = counted::run;
        BOOST_REQUIRE_EQUAL(uct_ep_pending_add(p.ep, &r.req, 0), UCS_OK);
    }
    std::vector<uct_pending_req_t *> purged;
    uct_ep_pending_purge(
        p.ep,
        [](uct_pending_req_t *r, void *arg) {
            static_cast<std::vector<uct_pending_req_t *> *>(arg)->push_back(r);
        },
        &purged);
    BOOST_REQUIRE_EQUAL(purged.size(), 3u);
    for (size_t i = 0; i < 3; i++)
        BOOST_CHECK(purged[i] == &reqs[i].req);
    // A second purge finds nothing.
    int again = 0;
    uct_ep_pending_purge(
        p.ep, [](uct_pending_req_t *, void *arg) { ++*static_cast<int *>(arg); }, &again);
    BOOST_CHECK_EQUAL(again, 0);
    BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
    for (int k = 0; k < 1000; k++)
        p.me.progress();
    for (auto &r : reqs)
        BOOST_CHECK_EQUAL(r.runs, 0);
    BOOST_CHECK_EQUAL(p.tgt.check(0, posted * slot, 8), 0u);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

BOOST_AUTO_TEST_SUITE_END()
