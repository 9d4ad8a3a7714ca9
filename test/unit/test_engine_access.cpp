// SPDX-License-Identifier: BSD-2-Clause
//
// What a request may do is what both its target context and the region
// allow: a context's remote access (tb_ctx_set_remote_access(), a verbs
// queue pair's access flags) narrows every region's. A region registered
// TBRDMA_ACCESS_LOCAL_READ is a source of its context's operations and
// never a destination. A context in error flushes what it refuses. A
// context's rd_max (a queue pair's max_rd_atomic) bounds the READs and
// ATOMICs each endpoint has waiting for an answer.
#include <boost/test/unit_test.hpp>

#include "pair_fixture.hpp"
#include "recv_ctx.hpp"

using namespace tbtest;

namespace {

struct access_fixture : pair_fixture {
    alignas(8) uint64_t target[2] = {0x1111, 0x2222};
    uint64_t rkey = p.b->reg(target, sizeof(target), TBRDMA_ACCESS_ALL);
    alignas(8) uint64_t back = 0;
    uint64_t bkey = p.a->reg(&back, sizeof(back), TBRDMA_ACCESS_LOCAL);

    // One 8-byte WRITE (of value), READ (into back) or fetch-and-add (of
    // value) at target[0], on an endpoint of its own: a refusal puts the
    // endpoint in error.
    tbrdma_cqe one(uint8_t op, uint64_t value)
    {
        int ep = p.a->ep_to(*p.b);
        BOOST_REQUIRE_GE(ep, 0);
        auto s = make_sqe(op, ep, op);
        s.remote_addr = reinterpret_cast<uintptr_t>(&target[0]);
        s.rkey = rkey;
        if (op == TBRDMA_OP_WRITE) {
            s.flags = TBRDMA_SQE_INLINE;
            std::memcpy(s.inline_data, &value, sizeof(value));
            s.length = sizeof(value);
        } else if (op == TBRDMA_OP_READ) {
            s.local_addr = reinterpret_cast<uintptr_t>(&back);
            s.lkey = bkey;
            s.length = sizeof(back);
        } else {
            s.atomic_op = TBRDMA_ATOMIC_ADD;
            s.atomic_size = 8;
            s.operand = value;
        }
        auto c = p.run(*p.a, s);
        tb_ep_destroy(p.a->ctx, ep);
        return c;
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(engine_access, access_fixture)

BOOST_AUTO_TEST_CASE(a_context_refuses_what_its_remote_access_leaves_out)
{
    // All until set.
    BOOST_TEST(one(TBRDMA_OP_WRITE, 5).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(target[0] == 5u);

    tb_ctx_set_remote_access(p.b->ctx, TBRDMA_ACCESS_REMOTE_READ);
    BOOST_TEST(one(TBRDMA_OP_WRITE, 6).status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(one(TBRDMA_OP_ATOMIC, 1).status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(target[0] == 5u);
    BOOST_TEST(one(TBRDMA_OP_READ, 0).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(back == 5u);

    tb_ctx_set_remote_access(p.b->ctx, TBRDMA_ACCESS_REMOTE_WRITE);
    back = 0;
    BOOST_TEST(one(TBRDMA_OP_READ, 0).status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(back == 0u);
    BOOST_TEST(one(TBRDMA_OP_WRITE, 7).status == TBRDMA_WC_SUCCESS);

    tb_ctx_set_remote_access(p.b->ctx, TBRDMA_ACCESS_REMOTE_ATOMIC);
    auto c = one(TBRDMA_OP_ATOMIC, 3);
    BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(c.result == 7u);
    BOOST_TEST(target[0] == 10u);

    tb_ctx_set_remote_access(p.b->ctx, 0);
    for (uint8_t op : {TBRDMA_OP_WRITE, TBRDMA_OP_READ, TBRDMA_OP_ATOMIC})
        BOOST_TEST(one(op, 1).status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(target[0] == 10u);
    BOOST_TEST(target[1] == 0x2222u);

    // A WRITE of no bytes touches no region, but is a WRITE all the same.
    int ep = p.a->ep_to(*p.b);
    auto ping = make_sqe(TBRDMA_OP_WRITE, ep, 9);
    BOOST_TEST(p.run(*p.a, ping).status == TBRDMA_WC_REM_ACCESS_ERR);
    tb_ctx_set_remote_access(p.b->ctx, TBRDMA_ACCESS_REMOTE_WRITE);
    ep = p.a->ep_to(*p.b);
    ping.ep = static_cast<uint32_t>(ep);
    BOOST_TEST(p.run(*p.a, ping).status == TBRDMA_WC_SUCCESS);
}

// Messages into posted receives are not remote access: a context that
// allows none still takes them.
BOOST_AUTO_TEST_CASE(messages_need_no_remote_access)
{
    recv_ctx rb{p.b->engine};
    tb_ctx_set_remote_access(rb.ctx, 0);
    auto src = pattern(100, 3);
    std::vector<uint8_t> dst(100, 0);
    uint64_t sk = p.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    rb.post(1, dst.data(), 100, rb.reg(dst.data(), dst.size()));
    int ep = p.a->ep_to(tb_ctx_id(rb.ctx), tb_ctx_secret(rb.ctx));
    auto s = make_sqe(TBRDMA_OP_MSG, ep, 9);
    s.local_addr = reinterpret_cast<uintptr_t>(src.data());
    s.lkey = sk;
    s.length = 100;
    BOOST_TEST(p.run(*p.a, s).status == TBRDMA_WC_SUCCESS);
    auto got = receive(p, rb);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(dst == src);
}

BOOST_AUTO_TEST_CASE(a_local_read_region_is_a_source_never_a_destination)
{
    auto src = pattern(64, 9);
    const auto before = src;
    uint64_t ro = p.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL_READ);

    // A source: WRITE from it.
    auto w = make_sqe(TBRDMA_OP_WRITE, ep_ab, 1);
    w.local_addr = reinterpret_cast<uintptr_t>(src.data());
    w.lkey = ro;
    w.length = sizeof(target);
    w.remote_addr = reinterpret_cast<uintptr_t>(target);
    w.rkey = rkey;
    BOOST_TEST(p.run(*p.a, w).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(std::memcmp(target, src.data(), sizeof(target)) == 0);

    // Not a destination: a READ into it fails locally and writes nothing.
    target[0] = 0x4242;
    auto r = make_sqe(TBRDMA_OP_READ, ep_ab, 2);
    r.local_addr = reinterpret_cast<uintptr_t>(src.data());
    r.lkey = ro;
    r.length = sizeof(target);
    r.remote_addr = reinterpret_cast<uintptr_t>(target);
    r.rkey = rkey;
    BOOST_TEST(p.run(*p.a, r).status == TBRDMA_WC_LOC_ACCESS_ERR);
    BOOST_TEST(src == before);

    // Nor of an atomic's result, which its owner would write there.
    int ep = p.a->ep_to(*p.b);
    auto at = make_sqe(TBRDMA_OP_ATOMIC, ep, 5);
    at.atomic_op = TBRDMA_ATOMIC_ADD;
    at.atomic_size = 8;
    at.operand = 1;
    at.remote_addr = reinterpret_cast<uintptr_t>(&target[0]);
    at.rkey = rkey;
    at.local_addr = reinterpret_cast<uintptr_t>(src.data());
    at.lkey = ro;
    BOOST_TEST(p.run(*p.a, at).status == TBRDMA_WC_LOC_ACCESS_ERR);
    BOOST_TEST(target[0] == 0x4242u);  // never sent
    at.ep = static_cast<uint32_t>(p.a->ep_to(*p.b));
    at.local_addr = reinterpret_cast<uintptr_t>(&back);
    at.lkey = bkey;
    BOOST_TEST(p.run(*p.a, at).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(target[0] == 0x4243u);

    // Nor of a message: the receive fails with a local access error.
    recv_ctx ra{p.a->engine};
    uint64_t rro = ra.reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL_READ);
    ra.post(3, src.data(), 64, rro);
    ep = p.b->ep_to(tb_ctx_id(ra.ctx), tb_ctx_secret(ra.ctx));
    auto m = make_sqe(TBRDMA_OP_MSG, ep, 4);
    m.flags = TBRDMA_SQE_INLINE;
    m.length = 8;
    std::memset(m.inline_data, 0x5a, 8);
    p.run(*p.b, m);
    auto got = receive(p, ra);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_LOC_ACCESS_ERR);
    BOOST_TEST(src == before);
}

// A verbs queue pair moved to ERR before it was ever connected: what it
// is handed flushes, as everything a queue pair in ERR is handed does.
BOOST_AUTO_TEST_CASE(a_context_in_error_flushes_what_it_refuses)
{
    recv_ctx qp{p.a->engine, 16, 16, true};
    auto s = make_sqe(TBRDMA_OP_WRITE, 0, 77);
    BOOST_TEST(tb_post(qp.ctx, &s) != 0);  // no endpoint
    BOOST_REQUIRE_EQUAL(tb_post_refused(qp.ctx, &s), 0);
    tb_ctx_set_error(qp.ctx);
    s.wr_id = 78;
    BOOST_REQUIRE_EQUAL(tb_post_refused(qp.ctx, &s), 0);
    auto got = qp.drain_cq();
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(got[0].wr_id == 77u);
    BOOST_TEST(got[0].status == TBRDMA_WC_REFUSED);
    BOOST_TEST(got[1].wr_id == 78u);
    BOOST_TEST(got[1].status == TBRDMA_WC_FLUSH_ERR);
}

// A READ being answered when its target context fails: the rest of the
// answer is a NAK, not the region's bytes. (The same check stops it when
// a queue pair is reset and bound to another peer meanwhile.)
BOOST_AUTO_TEST_CASE(a_read_stops_when_its_target_fails)
{
    tb_link_config lc;
    tb_link_config_default(&lc);
    lc.tx_window = 4;  // the answer takes many rounds
    engine_pair q(5, 64, &lc);
    BOOST_REQUIRE(q.pump_until([&] {
        return q.a->link.state == TBRDMA_LINK_UP && q.b->link.state == TBRDMA_LINK_UP;
    }));
    std::vector<uint8_t> src(65536, 0xab), dst(65536, 0);
    uint64_t sk = q.b->reg(src.data(), src.size(), TBRDMA_ACCESS_ALL);
    uint64_t dk = q.a->reg(dst.data(), dst.size(), TBRDMA_ACCESS_LOCAL);
    int ep = q.a->ep_to(*q.b);
    BOOST_REQUIRE_GE(ep, 0);
    auto r = make_sqe(TBRDMA_OP_READ, ep, 1);
    r.local_addr = reinterpret_cast<uintptr_t>(dst.data());
    r.lkey = dk;
    r.length = static_cast<uint32_t>(dst.size());
    r.remote_addr = reinterpret_cast<uintptr_t>(src.data());
    r.rkey = sk;
    BOOST_REQUIRE_EQUAL(tb_post(q.a->ctx, &r), 0);
    BOOST_REQUIRE(q.pump_until([&] { return dst[0] == 0xab; }));
    BOOST_REQUIRE(dst.back() == 0);
    tb_ctx_set_error(q.b->ctx);
    std::vector<tbrdma_cqe> done;
    BOOST_REQUIRE(q.pump_until([&] {
        auto v = q.a->drain_cq();
        done.insert(done.end(), v.begin(), v.end());
        return !done.empty();
    }));
    BOOST_TEST(done[0].status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(dst.back() == 0);
}

// Two 8-byte READs posted together: the second's request goes out with
// the first's (both read the target before it changes) unless rd_max is
// 1, when it waits for the first's answer (it reads the change).
BOOST_AUTO_TEST_CASE(rd_max_bounds_the_reads_in_flight)
{
    for (uint32_t rd_max : {0u, 1u, 2u}) {
        tb_ctx_set_rd_max(p.a->ctx, rd_max);
        target[1] = 0xb0;
        alignas(8) uint64_t got[2] = {0, 0};
        uint64_t gk = p.a->reg(got, sizeof(got), TBRDMA_ACCESS_LOCAL);
        for (uint64_t i = 0; i < 2; i++) {
            auto r = make_sqe(TBRDMA_OP_READ, ep_ab, i);
            r.local_addr = reinterpret_cast<uintptr_t>(&got[i]);
            r.lkey = gk;
            r.length = 8;
            r.remote_addr = reinterpret_cast<uintptr_t>(&target[1]);
            r.rkey = rkey;
            BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &r), 0);
        }
        // The target answers what arrived, then its word changes.
        tb_engine_progress(p.b->engine, p.now_ns);
        target[1] = 0xb1;
        std::vector<tbrdma_cqe> done;
        BOOST_REQUIRE(p.pump_until([&] {
            auto v = p.a->drain_cq();
            done.insert(done.end(), v.begin(), v.end());
            return done.size() == 2;
        }));
        BOOST_TEST(done[0].status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(done[1].status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(got[0] == 0xb0u);
        BOOST_TEST(got[1] == (rd_max == 1 ? 0xb1u : 0xb0u), "rd_max " << rd_max);
        tb_mr_deregister(p.a->ctx, gk, nullptr);
    }
}

// READs behind a SEND that draws receiver-not-ready are sent again with
// it, counted once: with rd_max 1, READs still go afterwards.
BOOST_AUTO_TEST_CASE(rd_max_survives_a_resend)
{
    tb_ctx_set_rd_max(p.a->ctx, 1);
    recv_ctx rb{p.b->engine};
    alignas(8) uint64_t word = 0x5151;
    uint64_t wk = rb.reg(&word, sizeof(word), TBRDMA_ACCESS_ALL);
    alignas(8) uint64_t got[3] = {0, 0, 0};
    uint64_t gk = p.a->reg(got, sizeof(got), TBRDMA_ACCESS_LOCAL);
    int ep = p.a->ep_to(tb_ctx_id(rb.ctx), tb_ctx_secret(rb.ctx));
    auto read = [&](uint64_t i) {
        auto r = make_sqe(TBRDMA_OP_READ, ep, 10 + i);
        r.local_addr = reinterpret_cast<uintptr_t>(&got[i]);
        r.lkey = gk;
        r.length = 8;
        r.remote_addr = reinterpret_cast<uintptr_t>(&word);
        r.rkey = wk;
        BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &r), 0);
    };
    auto m = make_sqe(TBRDMA_OP_MSG, ep, 1);
    m.flags = TBRDMA_SQE_INLINE;
    m.length = 8;
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &m), 0);  // no receive yet
    read(0);
    for (int i = 0; i < 200; i++)
        p.step();
    std::vector<uint8_t> in(8);
    rb.post(1, in.data(), 8, rb.reg(in.data(), in.size()));
    read(1);
    read(2);
    std::vector<tbrdma_cqe> done;
    BOOST_REQUIRE(p.pump_until([&] {
        auto v = p.a->drain_cq();
        done.insert(done.end(), v.begin(), v.end());
        return done.size() == 4;
    }));
    for (const auto &c : done)
        BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
    BOOST_TEST((got[0] == 0x5151u && got[1] == 0x5151u && got[2] == 0x5151u));
}

BOOST_AUTO_TEST_SUITE_END()
