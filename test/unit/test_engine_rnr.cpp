// SPDX-License-Identifier: BSD-2-Clause
//
// Receiver not ready: a SEND to a full receive queue is answered for that
// request alone (RNR_NAK) and resent by its endpoint with backoff; the
// link, other endpoints and other contexts go on meanwhile, the endpoint's
// order holds, and past the engine's rnr_timeout the SEND fails with
// TBRDMA_WC_RNR_RETRY_EXC_ERR instead of waiting forever.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "engine_pair.hpp"

extern "C" {
#include "tb_engine_priv.h"  // engine->cfg.rnr_timeout_ns
}

using namespace tbtest;

namespace {

const uint32_t rq_entries = 64;  // engine_pair's receive queues

struct rnr_fixture {
    engine_pair p{77};
    int ep_ab;
    rnr_fixture()
    {
        ep_ab = p.a->ep_to(*p.b);
        BOOST_REQUIRE_GE(ep_ab, 0);
        BOOST_REQUIRE(p.pump_until([&] {
            return p.a->link.state == TBRDMA_LINK_UP && p.b->link.state == TBRDMA_LINK_UP;
        }));
    }

    tbrdma_sqe send(int ep, uint64_t seq)
    {
        auto s = make_sqe(TBRDMA_OP_SEND, ep, seq);
        s.flags = TBRDMA_SQE_INLINE;
        s.length = 8;
        s.imm = seq;
        std::memcpy(s.inline_data, &seq, 8);
        return s;
    }

    // Posts SENDs numbered [from, to) on ep.
    void post_sends(int ep, uint64_t from, uint64_t to)
    {
        for (uint64_t i = from; i < to; i++) {
            auto s = send(ep, i);
            BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &s), 0);
        }
    }

    // Takes every message b has, checking they are numbered from *next on.
    void receive(uint64_t *next)
    {
        while (const tbrdma_rqe *r = p.b->rq_peek()) {
            BOOST_REQUIRE_EQUAL(r->imm, *next);
            p.b->rq_release();
            (*next)++;
        }
    }

    // A 4-byte inline WRITE from `from`, over the link, into target of the
    // context (id, secret) of b: it completes, and lands.
    void write_tbok(engine_ctx &from, uint32_t id, uint64_t secret, uint8_t *target, uint64_t rkey)
    {
        int ep = tb_ep_create(from.ctx, p.a->link_index, id, secret);
        BOOST_REQUIRE_GE(ep, 0);
        auto w = make_sqe(TBRDMA_OP_WRITE, ep, 500);
        w.flags = TBRDMA_SQE_INLINE;
        w.length = 4;
        std::memcpy(w.inline_data, "tbok", 4);
        w.remote_addr = reinterpret_cast<uintptr_t>(target);
        w.rkey = rkey;
        BOOST_REQUIRE_EQUAL(tb_post(from.ctx, &w), 0);
        std::vector<tbrdma_cqe> done;
        BOOST_REQUIRE(p.pump_until([&] {
            auto v = from.drain_cq();
            done.insert(done.end(), v.begin(), v.end());
            return !done.empty();
        }));
        BOOST_TEST(done[0].status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(std::memcmp(target, "tbok", 4) == 0);
    }

    std::vector<tbrdma_cqe> cqes;
    size_t completed(engine_host &h)
    {
        auto v = h.drain_cq();
        cqes.insert(cqes.end(), v.begin(), v.end());
        return cqes.size();
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(rnr, rnr_fixture)

// b's queue fills; the rest of the SENDs wait on their endpoint while a
// WRITE from another context of a, and one from b back to a, complete.
// Nothing is stalled on the link, and once b drains everything arrives
// once and in order.
BOOST_AUTO_TEST_CASE(full_queue_holds_only_its_endpoint)
{
    const uint64_t n = rq_entries + 16;
    post_sends(ep_ab, 0, n);
    BOOST_REQUIRE(p.pump_until([&] { return p.b->link.stats.rx_rnr > 0; }));

    engine_ctx other(p.a->engine, 64, 4, 16);
    alignas(8) uint8_t target[64] = {};
    uint64_t rkey = p.b->reg(target, sizeof(target), TBRDMA_ACCESS_REMOTE_WRITE);
    write_tbok(other, p.b->id(), p.b->secret(), target, rkey);

    // The reverse direction of the same link works too.
    int ep_ba = p.b->ep_to(*p.a);
    BOOST_REQUIRE_GE(ep_ba, 0);
    auto c = p.run(*p.b, send(ep_ba, 7));
    BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);

    // Resent for a while, still not delivered: the queue is full.
    for (int i = 0; i < 2000; i++)
        p.step();
    BOOST_TEST(completed(*p.a) <= rq_entries);
    BOOST_TEST(p.b->link.stats.rx_stalls == 0u);
    BOOST_TEST(p.a->link.state == TBRDMA_LINK_UP);

    uint64_t next = 0;
    BOOST_REQUIRE(p.pump_until([&] {
        receive(&next);
        return next == n && completed(*p.a) == n;
    }));
    for (const auto &e : cqes)
        BOOST_TEST(e.status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(p.b->link.stats.rx_stalls == 0u);
}

// A WRITE posted after a SEND that was not ready must not land before
// that SEND is delivered: the endpoint's order holds.
BOOST_AUTO_TEST_CASE(later_operations_wait_their_turn)
{
    post_sends(ep_ab, 0, rq_entries + 1);
    alignas(8) uint8_t target[8] = {};
    uint64_t rkey = p.b->reg(target, sizeof(target), TBRDMA_ACCESS_REMOTE_WRITE);
    auto w = make_sqe(TBRDMA_OP_WRITE, ep_ab, 1000);
    w.flags = TBRDMA_SQE_INLINE;
    w.length = 1;
    w.inline_data[0] = 0x5a;
    w.remote_addr = reinterpret_cast<uintptr_t>(target);
    w.rkey = rkey;
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &w), 0);
    for (int i = 0; i < 3000; i++)
        p.step();
    BOOST_TEST(p.b->link.stats.rx_rnr >= 2u);  // the SEND and the WRITE behind it
    BOOST_TEST(target[0] == 0);

    // One slot frees: the held SEND goes in, then the WRITE lands.
    uint64_t next = 0;
    const tbrdma_rqe *r = p.b->rq_peek();
    BOOST_REQUIRE(r);
    p.b->rq_release();
    next++;
    BOOST_REQUIRE(p.pump_until([&] { return target[0] == 0x5a; }));
    receive(&next);
    BOOST_TEST(next == rq_entries + 1);
    BOOST_REQUIRE(p.pump_until([&] { return completed(*p.a) == rq_entries + 2; }));
    for (const auto &e : cqes)
        BOOST_TEST(e.status == TBRDMA_WC_SUCCESS);
}

// Nobody drains: after rnr_timeout the SEND fails with its own status, the
// endpoint is in error (what follows is flushed) and the link stays up.
BOOST_AUTO_TEST_CASE(gives_up_after_rnr_timeout)
{
    p.a->engine->cfg.rnr_timeout_ns = 200 * 1000 * 1000ull;
    post_sends(ep_ab, 0, rq_entries + 2);
    const uint64_t t0 = p.now_ns;
    BOOST_REQUIRE(p.pump_until([&] { return completed(*p.a) == rq_entries + 2; }, 2000000));
    BOOST_TEST(p.now_ns - t0 >= p.a->engine->cfg.rnr_timeout_ns);
    for (uint64_t i = 0; i < rq_entries; i++)
        BOOST_TEST(cqes[i].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(cqes[rq_entries].status == TBRDMA_WC_RNR_RETRY_EXC_ERR);
    BOOST_TEST(cqes[rq_entries + 1].status == TBRDMA_WC_FLUSH_ERR);
    BOOST_TEST(p.a->link.state == TBRDMA_LINK_UP);
    BOOST_TEST(p.b->link.stats.rx_stalls == 0u);

    // A new endpoint is good once the receiver made room.
    uint64_t next = 0;
    receive(&next);
    BOOST_TEST(next == rq_entries);
    int ep2 = p.a->ep_to(*p.b);
    BOOST_REQUIRE_GE(ep2, 0);
    auto c = p.run(*p.a, send(ep2, rq_entries));
    BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
    receive(&next);
    BOOST_TEST(next == rq_entries + 1);
}

// A host may pass progress a time read before it took its lock, older
// than the last call's (the soft device's application and progress
// threads do). The link's clock, on which a SEND waiting on a full queue
// measures its timeout, must not go back with it: the wait would come out
// negative, as a huge unsigned number, and the SEND would fail at once.
BOOST_AUTO_TEST_CASE(link_clock_never_goes_back)
{
    post_sends(ep_ab, 0, rq_entries + 1);
    BOOST_REQUIRE(p.pump_until([&] { return p.b->link.stats.rx_rnr > 0; }));
    const uint64_t t = p.a->link.now_ns;
    tb_engine_progress(p.a->engine, t - 1000000000ull);
    BOOST_TEST(p.a->link.now_ns == t);
    uint64_t next = 0;
    BOOST_REQUIRE(p.pump_until([&] {
        receive(&next);
        return next == rq_entries + 1 && completed(*p.a) == rq_entries + 1;
    }));
    for (const auto &e : cqes)
        BOOST_TEST(e.status == TBRDMA_WC_SUCCESS);
}

// Many endpoints not ready at once (more than engine_pair's msn_window,
// 256, one SEND each, to a receiver that does not drain): each is held
// alone, the oldest holds lapse as the window moves on, nothing waits on
// the link, and a WRITE to another context of b completes meanwhile.
// Once b drains, all of it is delivered, in order per endpoint.
BOOST_AUTO_TEST_CASE(many_endpoints_not_ready_never_hold_the_link)
{
    const int nctx = 10, eps_per_ctx = 30, neps = nctx * eps_per_ctx;
    std::vector<std::unique_ptr<engine_ctx>> extra;
    std::vector<std::pair<engine_ctx *, int>> eps;
    for (int i = 0; i < nctx; i++) {
        // Holds are per initiator context and endpoint.
        extra.push_back(std::make_unique<engine_ctx>(p.a->engine, 64, 4, 64, nullptr, 64));
        for (int j = 0; j < eps_per_ctx; j++) {
            int ep = tb_ep_create(extra.back()->ctx, p.a->link_index, p.b->id(), p.b->secret());
            BOOST_REQUIRE_GE(ep, 0);
            eps.emplace_back(extra.back().get(), ep);
        }
    }
    post_sends(ep_ab, 0, rq_entries);
    BOOST_REQUIRE(p.pump_until([&] { return completed(*p.a) == rq_entries; }));
    for (int i = 0; i < neps; i++) {
        auto s = send(eps[i].second, 100 + i);
        BOOST_REQUIRE_EQUAL(tb_post(eps[i].first->ctx, &s), 0);
    }
    BOOST_REQUIRE(p.pump_until([&] { return p.b->link.stats.rx_rnr >= uint64_t(neps); }));

    engine_ctx writer(p.a->engine, 64, 4, 16);
    engine_ctx other(p.b->engine, 64, 4, 16);
    alignas(8) uint8_t target[8] = {};
    uint64_t rkey = other.reg(target, sizeof(target), TBRDMA_ACCESS_REMOTE_WRITE);
    write_tbok(writer, other.id(), other.secret(), target, rkey);
    BOOST_TEST(p.b->link.stats.rx_stalls == 0u);

    std::vector<uint64_t> got;
    BOOST_REQUIRE(p.pump_until([&] {
        while (const tbrdma_rqe *r = p.b->rq_peek()) {
            got.push_back(r->imm);
            p.b->rq_release();
        }
        return got.size() == rq_entries + neps;
    }));
    for (uint64_t i = 0; i < rq_entries; i++)
        BOOST_TEST(got[i] == i);
    std::vector<uint64_t> rest(got.begin() + rq_entries, got.end());
    std::sort(rest.begin(), rest.end());
    for (int i = 0; i < neps; i++)
        BOOST_TEST(rest[i] == uint64_t(100 + i));
    BOOST_TEST(p.b->link.stats.rx_stalls == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
