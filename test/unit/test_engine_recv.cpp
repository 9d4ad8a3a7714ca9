// SPDX-License-Identifier: BSD-2-Clause
//
// Messages into posted receives (TBRDMA_OP_MSG, tb_recv.c): what a verbs
// queue pair's SEND and RECV rest on. A message of any length lands in the
// oldest receive its target posted and completes there with its length
// and, if it has one, its immediate; a WRITE with immediate takes a
// receive once written; with nothing posted (or no room for the completion) it
// waits as a SEND to a full ring does; too long a message, a bad receive
// buffer, and the wrong kind of target end in errors on both sides as
// documented; over a cable that loses, duplicates and reorders, every
// message arrives whole, once and in order.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>

#include "recv_fixture.hpp"

using namespace tbtest;

BOOST_FIXTURE_TEST_SUITE(engine_recv, recv_fixture)

BOOST_AUTO_TEST_CASE(a_message_lands_in_the_oldest_receive)
{
    BOOST_REQUIRE_GE(ep, 0);
    std::vector<uint8_t> b1(100, 0), b2(8192, 0);
    uint64_t k = rb.reg(b1.data(), b1.size()), k2 = rb.reg(b2.data(), b2.size());
    rb.post(11, b1.data(), 100, k);
    rb.post(12, b2.data(), 8192, k2);
    BOOST_REQUIRE_EQUAL(post(msg(64, 1, 0xfeed)), 0);
    BOOST_REQUIRE_EQUAL(post(msg(5000, 2, 7, 64)), 0);
    std::vector<tbrdma_cqe> sent;
    auto got = deliver(2, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(got[0].wr_id == 11u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(got[0].opcode == TBRDMA_OP_MSG);
    BOOST_TEST(got[0].byte_len == 64u);
    BOOST_TEST(got[0].ep == tb_ctx_id(p.a->ctx));  // the sender
    BOOST_TEST(got[0].flags == TBRDMA_CQE_IMM);
    BOOST_TEST(got[0].result == 0xfeedu);
    BOOST_TEST(got[1].wr_id == 12u);
    BOOST_TEST(got[1].byte_len == 5000u);
    BOOST_TEST(got[1].result == 7u);
    BOOST_TEST(std::memcmp(b1.data(), src.data(), 64) == 0);
    BOOST_TEST(b1[64] == 0);  // nothing past the message
    BOOST_TEST(std::memcmp(b2.data(), src.data() + 64, 5000) == 0);
    BOOST_REQUIRE_EQUAL(sent.size(), 2u);
    BOOST_TEST(sent[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(sent[1].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(sent[1].opcode == TBRDMA_OP_MSG);
    BOOST_TEST(sent[1].byte_len == 5000u);
    BOOST_TEST(rb.taken() == 2u);
}

// A message gathered from three buffers (a verbs SEND with a scatter
// list): SQEs with TBRDMA_SQE_MORE and their offsets, the last with the
// immediate, land as one message in one receive.
BOOST_AUTO_TEST_CASE(a_message_gathered_from_several_sqes_is_one)
{
    std::vector<uint8_t> b(16384, 0);
    rb.post(21, b.data(), b.size(), rb.reg(b.data(), b.size()));
    const uint32_t at[] = {0, 100, 5100}, len[] = {100, 5000, 37}, from[] = {9000, 40, 70000};
    for (int i = 0; i < 3; i++) {
        auto m = msg(len[i], 30 + i, i == 2 ? 0xabc : 0, from[i]);
        m.remote_addr = at[i];
        if (i < 2)
            m.flags |= TBRDMA_SQE_MORE;
        BOOST_REQUIRE_EQUAL(post(m), 0);
    }
    std::vector<tbrdma_cqe> sent;
    auto got = deliver(1, sent);
    p.pump_until([&] {
        auto v = p.a->drain_cq();
        sent.insert(sent.end(), v.begin(), v.end());
        return sent.size() >= 3;
    });
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 21u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(got[0].byte_len == 5137u);
    BOOST_TEST(got[0].result == 0xabcu);
    for (int i = 0; i < 3; i++)
        BOOST_TEST(std::memcmp(b.data() + at[i], src.data() + from[i], len[i]) == 0, "piece " << i);
    BOOST_TEST(b[5137] == 0);
    BOOST_REQUIRE_EQUAL(sent.size(), 3u);
    for (auto &c : sent)
        BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(rb.taken() == 1u);
}

BOOST_AUTO_TEST_CASE(a_long_message_spans_frames_and_an_empty_one_has_none)
{
    std::vector<uint8_t> big(1 << 20, 0);
    uint64_t k = rb.reg(big.data(), big.size());
    rb.post(1, big.data(), 1 << 20, k);
    rb.post(2, big.data(), 16, k);
    uint64_t frames = p.a->link.stats.tx_frames;
    BOOST_REQUIRE_EQUAL(post(msg(1 << 20, 1)), 0);
    std::vector<tbrdma_cqe> sent;
    auto got = deliver(1, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].byte_len == (1u << 20));
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(big == src);
    BOOST_TEST(p.a->link.stats.tx_frames - frames >= (1u << 20) / TBRDMA_SEND_MAX);
    sent.clear();
    BOOST_REQUIRE_EQUAL(post(msg(0, 2)), 0);
    got = deliver(1, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 2u);
    BOOST_TEST(got[0].byte_len == 0u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(got[0].flags == 0u);  // no immediate
    BOOST_TEST(got[0].result == 0u);
}

// A WRITE with immediate lands where it is written, then takes the oldest
// receive and completes it with the immediate and the WRITE's length.
BOOST_AUTO_TEST_CASE(a_write_with_immediate_takes_a_receive)
{
    std::vector<uint8_t> target(10000, 0), unused(16, 0);
    uint64_t tk = rb.reg(target.data(), target.size(), TBRDMA_ACCESS_ALL);
    uint64_t uk = rb.reg(unused.data(), unused.size());
    auto w = make_sqe(TBRDMA_OP_WRITE, ep, 5);
    w.local_addr = reinterpret_cast<uintptr_t>(src.data());
    w.lkey = sk;
    w.length = 9000;
    w.remote_addr = reinterpret_cast<uintptr_t>(target.data() + 1000);
    w.rkey = tk;
    w.flags = TBRDMA_SQE_IMM;
    w.imm = 0xabcd0077;
    BOOST_REQUIRE_EQUAL(post(w), 0);
    // Nothing posted: written, then resent until a receive is.
    BOOST_REQUIRE(p.pump_until([&] { return p.b->link.stats.rx_rnr > 0; }));
    BOOST_TEST(rb.drain_rcq().empty());
    rb.post(31, unused.data(), 16, uk);
    std::vector<tbrdma_cqe> sent;
    auto got = deliver(1, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 31u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(got[0].opcode == TBRDMA_OP_WRITE);
    BOOST_TEST(got[0].flags == TBRDMA_CQE_IMM);
    BOOST_TEST(got[0].result == 0xabcd0077u);
    BOOST_TEST(got[0].byte_len == 9000u);
    BOOST_TEST(std::memcmp(target.data() + 1000, src.data(), 9000) == 0);
    BOOST_TEST(std::all_of(unused.begin(), unused.end(), [](uint8_t x) { return x == 0; }));
    BOOST_REQUIRE_EQUAL(sent.size(), 1u);
    BOOST_TEST(sent[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(sent[0].opcode == TBRDMA_OP_WRITE);
}

// A WRITE with immediate the target refuses (a bad key) leaves its
// receive posted for the next message.
BOOST_AUTO_TEST_CASE(a_refused_write_with_immediate_leaves_the_receive)
{
    std::vector<uint8_t> b(64, 0);
    uint64_t k = rb.reg(b.data(), b.size());
    rb.post(41, b.data(), 64, k);
    auto w = make_sqe(TBRDMA_OP_WRITE, ep, 5);
    w.flags = TBRDMA_SQE_IMM | TBRDMA_SQE_INLINE;
    w.length = 8;
    w.remote_addr = 0x1000;
    w.rkey = 0x12345;
    auto c = p.run(*p.a, w);
    BOOST_TEST(c.status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(rb.taken() == 0u);
    BOOST_TEST(rb.drain_rcq().empty());
    ep = p.a->ep_to(tb_ctx_id(rb.ctx), tb_ctx_secret(rb.ctx));
    std::vector<tbrdma_cqe> sent;
    BOOST_REQUIRE_EQUAL(post(msg(32, 6)), 0);
    auto got = deliver(1, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 41u);
    BOOST_TEST(got[0].opcode == TBRDMA_OP_MSG);
}

// Nothing posted: the receiver is not ready, the sender resends with
// backoff, and the message (and the one behind it) lands once a receive is
// posted, in order.
BOOST_AUTO_TEST_CASE(without_a_receive_the_message_waits_for_one)
{
    std::vector<uint8_t> b(20000, 0);
    uint64_t k = rb.reg(b.data(), b.size());
    BOOST_REQUIRE_EQUAL(post(msg(9000, 1)), 0);
    BOOST_REQUIRE_EQUAL(post(msg(100, 2, 0, 9000)), 0);
    BOOST_REQUIRE(p.pump_until([&] { return p.b->link.stats.rx_rnr > 0; }));
    for (int i = 0; i < 200; i++)
        p.step();
    BOOST_TEST(p.a->drain_cq().empty());
    BOOST_TEST(rb.drain_rcq().empty());
    rb.post(21, b.data(), 10000, k);
    rb.post(22, b.data() + 10000, 10000, k);
    std::vector<tbrdma_cqe> sent;
    auto got = deliver(2, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(got[0].wr_id == 21u);
    BOOST_TEST(got[0].byte_len == 9000u);
    BOOST_TEST(got[1].wr_id == 22u);
    BOOST_TEST(got[1].byte_len == 100u);
    BOOST_TEST(std::memcmp(b.data(), src.data(), 9000) == 0);
    BOOST_TEST(std::memcmp(b.data() + 10000, src.data() + 9000, 100) == 0);
    BOOST_REQUIRE_EQUAL(sent.size(), 2u);
    BOOST_TEST(sent[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(sent[1].status == TBRDMA_WC_SUCCESS);
}

// A sender that counts receiver-not-ready as a verbs queue pair does
// (rnr_retry 2: three tries, set as RTS sets it) fails the message with
// RNR_RETRY_EXC_ERR on the third, well before the engine's timeout, and
// flushes what follows.
BOOST_AUTO_TEST_CASE(receiver_not_ready_tries_are_counted)
{
    recv_ctx sender(p.a->engine, 4, 4);
    BOOST_TEST(tb_ctx_set_rnr(sender.ctx, TB_RNR_DELAY_MAX_NS + 1, 3) == -EINVAL);
    BOOST_REQUIRE_EQUAL(tb_ctx_set_rnr(sender.ctx, 1000, 3), 0);
    int e = tb_ep_create(sender.ctx, static_cast<uint32_t>(p.a->link_index), tb_ctx_id(rb.ctx),
                         tb_ctx_secret(rb.ctx));
    BOOST_REQUIRE_GE(e, 0);
    std::vector<uint8_t> b(64, 0);
    auto m = make_sqe(TBRDMA_OP_MSG, e, 1);
    m.flags = TBRDMA_SQE_INLINE;
    m.length = 8;
    BOOST_REQUIRE_EQUAL(tb_post(sender.ctx, &m), 0);
    m.wr_id = 2;
    BOOST_REQUIRE_EQUAL(tb_post(sender.ctx, &m), 0);
    uint64_t rnr0 = p.b->link.stats.rx_rnr, t0 = p.now_ns;
    std::vector<tbrdma_cqe> got;
    BOOST_REQUIRE(p.pump_until([&] {
        auto v = sender.drain_cq();
        got.insert(got.end(), v.begin(), v.end());
        return got.size() == 2;
    }));
    BOOST_TEST(got[0].wr_id == 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_RNR_RETRY_EXC_ERR);
    BOOST_TEST(got[1].status == TBRDMA_WC_FLUSH_ERR);
    // Three tries of the first (the second drew RNR_NAKs beside them).
    BOOST_TEST(p.b->link.stats.rx_rnr - rnr0 >= 3u);
    BOOST_TEST(p.now_ns - t0 < 1000000000ull);  // not the engine's 30 s
}

// A full receive completion ring makes the receiver not ready too: a
// completion is never dropped.
BOOST_AUTO_TEST_CASE(a_full_completion_ring_waits_for_the_owner)
{
    recv_ctx small(p.b->engine, 8, 2);
    int e2 = p.a->ep_to(tb_ctx_id(small.ctx), tb_ctx_secret(small.ctx));
    std::vector<uint8_t> b(64 * 3, 0);
    uint64_t k = small.reg(b.data(), b.size());
    for (int i = 0; i < 3; i++)
        small.post(static_cast<uint64_t>(i), b.data() + 64 * i, 64, k);
    for (uint32_t i = 0; i < 3; i++) {
        auto s = msg(64, i, 0, 64 * i);
        s.ep = static_cast<uint32_t>(e2);
        BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &s), 0);
    }
    std::vector<tbrdma_cqe> sent;
    BOOST_REQUIRE(p.pump_until([&] {
        auto s = p.a->drain_cq();
        sent.insert(sent.end(), s.begin(), s.end());
        return sent.size() == 2 && p.b->link.stats.rx_rnr > 0;
    }));
    BOOST_TEST(small.taken() == 2u);
    auto got = small.drain_rcq();
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_REQUIRE(p.pump_until([&] {
        auto r = small.drain_rcq();
        got.insert(got.end(), r.begin(), r.end());
        return got.size() == 3;
    }));
    BOOST_TEST(got[2].wr_id == 2u);
    BOOST_TEST(std::memcmp(b.data(), src.data(), 64 * 3) == 0);
}

// A receive whose buffer is not the owner's registered memory: the
// message goes nowhere, LOC_ACCESS_ERR there, REM_INVALID at the sender.
BOOST_AUTO_TEST_CASE(a_receive_outside_registered_memory_fails_both_sides)
{
    std::vector<uint8_t> b(100, 0);
    uint64_t k = rb.reg(b.data(), b.size());
    rb.post(1, b.data() + 50, 100, k);   // past the region's end
    BOOST_REQUIRE_EQUAL(post(msg(80, 1)), 0);
    std::vector<tbrdma_cqe> sent;
    auto got = deliver(1, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_LOC_ACCESS_ERR);
    BOOST_REQUIRE_EQUAL(sent.size(), 1u);
    BOOST_TEST(sent[0].status == TBRDMA_WC_REM_INVALID);
    BOOST_TEST(std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; }));
}

// A context takes one kind of message: a MSG to one with a receive ring,
// and a SEND to one with posted receives, are refused as invalid.
BOOST_AUTO_TEST_CASE(the_wrong_kind_of_message_is_refused)
{
    auto m = msg(10, 1);
    m.ep = static_cast<uint32_t>(ep_ab);
    auto c = p.run(*p.a, m);
    BOOST_TEST(c.status == TBRDMA_WC_REM_INVALID);
    BOOST_TEST(p.b->rq_peek() == nullptr);
    auto s = make_sqe(TBRDMA_OP_SEND, ep, 2);
    s.local_addr = reinterpret_cast<uintptr_t>(src.data());
    s.lkey = sk;
    s.length = 10;
    c = p.run(*p.a, s);
    BOOST_TEST(c.status == TBRDMA_WC_REM_INVALID);
    BOOST_TEST(rb.taken() == 0u);
}

// A message far longer than its receive: the receive completes with
// LOC_LEN_ERR as soon as the first chunk overflows it, nothing written,
// though the sender, told REM_INVALID (its endpoint then in error), never
// sends the rest; the next message, from a new endpoint, lands whole.
BOOST_AUTO_TEST_CASE(an_overflow_completes_the_receive_at_once)
{
    std::vector<uint8_t> b1(100, 0), b2(100, 0);
    uint64_t k1 = rb.reg(b1.data(), b1.size()), k2 = rb.reg(b2.data(), b2.size());
    rb.post(1, b1.data(), 100, k1);
    rb.post(2, b2.data(), 100, k2);
    BOOST_REQUIRE_EQUAL(post(msg(1 << 20, 1)), 0);
    std::vector<tbrdma_cqe> sent;
    auto got = deliver(1, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_LOC_LEN_ERR);
    BOOST_REQUIRE_EQUAL(sent.size(), 1u);
    BOOST_TEST(sent[0].status == TBRDMA_WC_REM_INVALID);
    BOOST_TEST(std::all_of(b1.begin(), b1.end(), [](uint8_t x) { return x == 0; }));
    ep = p.a->ep_to(tb_ctx_id(rb.ctx), tb_ctx_secret(rb.ctx));
    sent.clear();
    BOOST_REQUIRE_EQUAL(post(msg(100, 2)), 0);
    got = deliver(1, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 2u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(std::memcmp(b2.data(), src.data(), 100) == 0);
}

// A context put in error (a verbs queue pair moved to ERR): its posted
// receives complete with FLUSH_ERR in order, as far as the completion ring
// has room and again when asked; messages to it are refused.
BOOST_AUTO_TEST_CASE(in_error_receives_flush_and_messages_are_refused)
{
    recv_ctx q(p.b->engine, 8, 4);
    int e2 = p.a->ep_to(tb_ctx_id(q.ctx), tb_ctx_secret(q.ctx));
    std::vector<uint8_t> b(64, 0);
    uint64_t k = q.reg(b.data(), b.size());
    for (uint64_t i = 0; i < 6; i++)
        q.post(i, b.data(), 64, k);
    tb_ctx_set_error(q.ctx);
    auto got = q.drain_rcq();
    BOOST_REQUIRE_EQUAL(got.size(), 4u);  // the ring's room
    BOOST_TEST(tb_ctx_flush_recv(q.ctx) == 0u);
    auto more = q.drain_rcq();
    got.insert(got.end(), more.begin(), more.end());
    BOOST_REQUIRE_EQUAL(got.size(), 6u);
    for (uint64_t i = 0; i < 6; i++) {
        BOOST_TEST(got[i].wr_id == i);
        BOOST_TEST(got[i].status == TBRDMA_WC_FLUSH_ERR);
    }
    q.post(6, b.data(), 64, k);  // posted in error: flushed when asked
    BOOST_TEST(tb_ctx_flush_recv(q.ctx) == 0u);
    got = q.drain_rcq();
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 6u);
    BOOST_TEST(got[0].status == TBRDMA_WC_FLUSH_ERR);
    auto m = msg(10, 1);
    m.ep = static_cast<uint32_t>(e2);
    BOOST_TEST(p.run(*p.a, m).status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(q.drain_rcq().empty());
}

// Its operations in flight, and those posted later, complete with
// FLUSH_ERR: here a message waiting for a receive and one behind it.
BOOST_AUTO_TEST_CASE(in_error_its_operations_flush)
{
    BOOST_REQUIRE_EQUAL(post(msg(100, 1)), 0);
    BOOST_REQUIRE_EQUAL(post(msg(100, 2)), 0);
    BOOST_REQUIRE(p.pump_until([&] { return p.b->link.stats.rx_rnr > 0; }));
    tb_ctx_set_error(p.a->ctx);
    auto got = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(got[0].wr_id == 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_FLUSH_ERR);
    BOOST_TEST(got[1].wr_id == 2u);
    BOOST_TEST(got[1].status == TBRDMA_WC_FLUSH_ERR);
    BOOST_REQUIRE_EQUAL(post(msg(100, 3)), 0);
    got = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_FLUSH_ERR);
    // Nothing it sent lands later: the receive posted now stays posted.
    std::vector<uint8_t> b(100, 0);
    rb.post(9, b.data(), 100, rb.reg(b.data(), b.size()));
    for (int i = 0; i < 2000; i++)
        p.step();
    BOOST_TEST(rb.drain_rcq().empty());
    BOOST_TEST(rb.taken() == 0u);
}

// A shared receive queue (a verbs SRQ): the contexts created with it take
// its receives in turn, each completing in its own ring; one put in error
// leaves the rest to the others.
BOOST_AUTO_TEST_CASE(a_shared_receive_queue_serves_several_contexts)
{
    tb_pd *pd = nullptr;
    BOOST_REQUIRE_EQUAL(tb_pd_create(p.b->engine, 16, &pd), 0);
    srq_ring s(p.b->engine, pd, 16);
    auto use_srq = [&](tb_ctx_config &cc) {
        cc.rwq = tb_qring{};
        cc.srq = s.srq;
        cc.pd = pd;
    };
    {
        recv_ctx q1(p.b->engine, 4, 8, false, use_srq), q2(p.b->engine, 4, 8, false, use_srq);
        std::vector<uint8_t> b(400, 0);
        uint64_t k = 0;
        BOOST_REQUIRE_EQUAL(tb_pd_reg_mr(pd, reinterpret_cast<uintptr_t>(b.data()), b.size(),
                                         TBRDMA_ACCESS_LOCAL, b.data(), nullptr, &k),
                            0);
        for (uint32_t i = 0; i < 4; i++)
            s.post(i, b.data() + 100 * i, 100, k);
        int e1 = p.a->ep_to(tb_ctx_id(q1.ctx), tb_ctx_secret(q1.ctx));
        int e2 = p.a->ep_to(tb_ctx_id(q2.ctx), tb_ctx_secret(q2.ctx));
        auto to = [&](int e, uint32_t len, uint64_t wr_id) {
            auto m = msg(len, wr_id);
            m.ep = static_cast<uint32_t>(e);
            BOOST_REQUIRE(p.run(*p.a, m).status == TBRDMA_WC_SUCCESS);
        };
        to(e1, 10, 1);
        to(e2, 20, 2);
        to(e1, 30, 3);
        auto g1 = q1.drain_rcq(), g2 = q2.drain_rcq();
        BOOST_REQUIRE_EQUAL(g1.size(), 2u);
        BOOST_REQUIRE_EQUAL(g2.size(), 1u);
        BOOST_TEST(g1[0].wr_id == 0u);
        BOOST_TEST(g1[0].byte_len == 10u);
        BOOST_TEST(g2[0].wr_id == 1u);
        BOOST_TEST(g2[0].byte_len == 20u);
        BOOST_TEST(g1[1].wr_id == 2u);
        BOOST_TEST(g1[1].byte_len == 30u);
        BOOST_TEST(std::memcmp(b.data() + 100, src.data(), 20) == 0);
        BOOST_TEST(s.taken() == 3u);
        tb_ctx_set_error(q1.ctx);
        BOOST_TEST(q1.drain_rcq().empty());
        BOOST_TEST(s.taken() == 3u);
        to(e2, 40, 4);
        g2 = q2.drain_rcq();
        BOOST_REQUIRE_EQUAL(g2.size(), 1u);
        BOOST_TEST(g2[0].wr_id == 3u);
        BOOST_TEST(g2[0].byte_len == 40u);
        BOOST_TEST(tb_srq_destroy(s.srq) == -EBUSY);  // contexts use it
    }
    tb_pd_destroy(pd, nullptr, nullptr);
}

BOOST_AUTO_TEST_CASE(posting_checks_the_length_and_the_context_its_rings)
{
    auto m = msg(TBRDMA_XFER_MAX + 1u, 1);
    BOOST_TEST(tb_post(p.a->ctx, &m) == -EINVAL);
    m = msg(TBRDMA_INLINE_MAX + 1u, 1);
    m.flags = TBRDMA_SQE_INLINE;
    BOOST_TEST(tb_post(p.a->ctx, &m) == -EINVAL);
    // An immediate only on a WRITE or a MSG.
    for (uint8_t op : {TBRDMA_OP_READ, TBRDMA_OP_SEND, TBRDMA_OP_ATOMIC, TBRDMA_OP_FLUSH}) {
        auto s = make_sqe(op, ep, 1);
        s.flags = TBRDMA_SQE_IMM;
        s.atomic_size = 8;
        BOOST_TEST(tb_post(p.a->ctx, &s) == -EINVAL, "op " << int(op));
    }
    // MORE only on a MSG without an immediate, its offset and length
    // within a message's bound.
    m = msg(8, 1);
    m.flags = TBRDMA_SQE_MORE | TBRDMA_SQE_IMM;
    BOOST_TEST(tb_post(p.a->ctx, &m) == -EINVAL);
    m.remote_addr = TBRDMA_XFER_MAX - 4;
    m.flags = TBRDMA_SQE_MORE;
    BOOST_TEST(tb_post(p.a->ctx, &m) == -EINVAL);
    auto w = make_sqe(TBRDMA_OP_WRITE, ep, 1);
    w.flags = TBRDMA_SQE_MORE;
    BOOST_TEST(tb_post(p.a->ctx, &w) == -EINVAL);
    // Posted receives want both their rings and no receive ring.
    std::vector<uint8_t> mem(64 * 64);
    tbrdma_ring_ctrl c1{}, c2{}, c3{}, c4{};
    tb_ctx_config cc{};
    cc.max_mr = 4;
    cc.max_ep = 4;
    cc.sq_depth = 4;
    tb_qring_init(&cc.cq, &c1, mem.data(), 4, sizeof(tbrdma_cqe));
    tb_qring_init(&cc.rwq, &c2, mem.data(), 4, sizeof(tbrdma_rwqe));
    tb_ctx *ctx = nullptr;
    BOOST_TEST(tb_ctx_create(p.b->engine, &cc, &ctx) == -EINVAL);  // no rcq
    tb_qring_init(&cc.rcq, &c3, mem.data(), 4, sizeof(tbrdma_cqe));
    tb_qring_init(&cc.rq, &c4, mem.data(), 4, TBRDMA_RQE_SLOT);
    BOOST_TEST(tb_ctx_create(p.b->engine, &cc, &ctx) == -EINVAL);  // and a receive ring
    cc.rq = tb_qring{};
    BOOST_REQUIRE(tb_ctx_create(p.b->engine, &cc, &ctx) == 0);
    tb_ctx_destroy(ctx, nullptr, nullptr);
    // Its own receive ring and a shared queue at once, a shared queue of
    // another engine, or of another domain.
    tb_pd *pd = nullptr, *apd = nullptr;
    BOOST_REQUIRE_EQUAL(tb_pd_create(p.b->engine, 4, &pd), 0);
    BOOST_REQUIRE_EQUAL(tb_pd_create(p.a->engine, 4, &apd), 0);
    {
        srq_ring s(p.b->engine, pd, 4), other(p.a->engine, apd, 4);
        cc.pd = pd;
        cc.srq = s.srq;
        BOOST_TEST(tb_ctx_create(p.b->engine, &cc, &ctx) == -EINVAL);
        cc.rwq = tb_qring{};
        cc.srq = other.srq;
        BOOST_TEST(tb_ctx_create(p.b->engine, &cc, &ctx) == -EINVAL);
        cc.srq = s.srq;
        cc.pd = nullptr;
        BOOST_TEST(tb_ctx_create(p.b->engine, &cc, &ctx) == -EINVAL);
        cc.pd = pd;
        BOOST_REQUIRE(tb_ctx_create(p.b->engine, &cc, &ctx) == 0);
        tb_ctx_destroy(ctx, nullptr, nullptr);
    }
    tb_pd_destroy(pd, nullptr, nullptr);
    tb_pd_destroy(apd, nullptr, nullptr);
}

BOOST_AUTO_TEST_SUITE_END()

// Over a cable that loses, duplicates and reorders frames, messages of
// every size, some gathered from two SQEs, arrive whole, once each and in
// order, receives posted as they are used up.
BOOST_AUTO_TEST_CASE(engine_recv_over_a_bad_cable)
{
    engine_pair p(99);
    make_cable_bad(p);
    recv_ctx rb(p.b->engine, 16, 16);
    auto src = pattern(1 << 20, 3);
    std::vector<uint8_t> dst(16 * 65536, 0);
    uint64_t sk = p.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    uint64_t dk = rb.reg(dst.data(), dst.size());
    int ep = p.a->ep_to(tb_ctx_id(rb.ctx), tb_ctx_secret(rb.ctx));
    BOOST_REQUIRE_GE(ep, 0);
    std::mt19937 rng(5);
    const int n = 120;
    std::vector<uint32_t> len(n), off(n);
    for (int i = 0; i < n; i++) {
        len[i] = i % 3 == 0 ? rng() % 65537 : rng() % 3000;
        off[i] = rng() % (src.size() - 65536);
    }
    // The SQEs: every third message with a first part of its own
    // (TBRDMA_SQE_MORE), gathered with the rest.
    std::vector<tbrdma_sqe> sqes;
    std::vector<int> msg_of;
    for (int i = 0; i < n; i++) {
        auto s = make_sqe(TBRDMA_OP_MSG, ep, static_cast<uint64_t>(i));
        s.local_addr = reinterpret_cast<uintptr_t>(src.data() + off[i]);
        s.lkey = sk;
        s.length = len[i];
        if (i % 3 == 2 && len[i] > 1) {
            auto first = s;
            first.length = len[i] / 2;
            first.flags = TBRDMA_SQE_MORE;
            sqes.push_back(first);
            msg_of.push_back(i);
            s.local_addr += first.length;
            s.remote_addr = first.length;
            s.length -= first.length;
        }
        s.flags = TBRDMA_SQE_IMM;
        s.imm = static_cast<uint64_t>(i) * 3;
        sqes.push_back(s);
        msg_of.push_back(i);
    }
    size_t posted = 0;
    int received = 0, recv_posted = 0;
    size_t sent_ok = 0;
    for (; recv_posted < 16; recv_posted++)
        rb.post(static_cast<uint64_t>(recv_posted), dst.data() + 65536 * (recv_posted % 16), 65536, dk);
    BOOST_REQUIRE(p.pump_until(
        [&] {
            while (posted < sqes.size() && msg_of[posted] - received < 8) {
                if (tb_post(p.a->ctx, &sqes[posted]))
                    break;
                posted++;
            }
            for (auto &c : p.a->drain_cq())
                sent_ok += c.status == TBRDMA_WC_SUCCESS;
            for (auto &c : rb.drain_rcq()) {
                int i = received;
                uint8_t *buf = dst.data() + 65536 * (i % 16);
                BOOST_REQUIRE_EQUAL(c.wr_id, static_cast<uint64_t>(i));
                BOOST_REQUIRE_EQUAL(c.status, TBRDMA_WC_SUCCESS);
                BOOST_REQUIRE_EQUAL(c.byte_len, len[i]);
                BOOST_REQUIRE_EQUAL(c.result, static_cast<uint64_t>(i) * 3);
                BOOST_REQUIRE(std::memcmp(buf, src.data() + off[i], len[i]) == 0);
                received++;
                rb.post(static_cast<uint64_t>(recv_posted), dst.data() + 65536 * (recv_posted % 16),
                        65536, dk);
                recv_posted++;
            }
            return received == n && sent_ok == sqes.size();
        },
        2000000));
    BOOST_TEST(p.a->link.stats.retransmits + p.b->link.stats.retransmits > 0u);
    BOOST_TEST(p.b->link.stats.rx_dup > 0u);
}

// Two endpoints' long messages to one context, over a cable of few slots
// so that their chunks alternate on the link: a chunk goes only into the
// receive its own message took; the message cut short by the other's
// start fails at both ends, and no receive ever holds a mix.
BOOST_AUTO_TEST_CASE(engine_recv_interleaved_messages_never_mix)
{
    tb_link_config lcfg;
    tb_link_config_default(&lcfg);
    lcfg.rx_slots = 2;
    lcfg.tx_window = 1;
    engine_pair p(17, 2, &lcfg);
    BOOST_REQUIRE(p.pump_until([&] {
        return p.a->link.state == TBRDMA_LINK_UP && p.b->link.state == TBRDMA_LINK_UP;
    }));
    recv_ctx rb(p.b->engine);
    auto src = pattern(1 << 18, 11);
    uint64_t sk = p.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    std::vector<uint8_t> b(4 * 20000, 0);
    uint64_t k = rb.reg(b.data(), b.size());
    for (uint32_t i = 0; i < 4; i++)
        rb.post(i, b.data() + 20000 * i, 20000, k);
    // A ping first takes the one frame the window has, so that both
    // messages wait behind it and the requester alternates between them.
    int e0 = p.a->ep_to(tb_ctx_id(rb.ctx), tb_ctx_secret(rb.ctx));
    auto ping = make_sqe(TBRDMA_OP_WRITE, e0, 9);
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &ping), 0);
    for (uint32_t i = 0; i < 2; i++) {
        int e = p.a->ep_to(tb_ctx_id(rb.ctx), tb_ctx_secret(rb.ctx));
        auto m = make_sqe(TBRDMA_OP_MSG, e, i);
        m.local_addr = reinterpret_cast<uintptr_t>(src.data() + 100000 * i);
        m.lkey = sk;
        m.length = 16000;
        BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &m), 0);
    }
    std::vector<tbrdma_cqe> sent, got;
    p.pump_until([&] {
        auto r = rb.drain_rcq();
        got.insert(got.end(), r.begin(), r.end());
        auto s = p.a->drain_cq();
        sent.insert(sent.end(), s.begin(), s.end());
        return sent.size() == 3;
    });
    BOOST_REQUIRE_EQUAL(sent.size(), 3u);
    auto rest = rb.drain_rcq();
    got.insert(got.end(), rest.begin(), rest.end());
    int whole = 0;
    for (auto &c : got) {
        if (c.status != TBRDMA_WC_SUCCESS)
            continue;
        const uint8_t *buf = b.data() + 20000 * c.wr_id;
        BOOST_TEST(c.byte_len == 16000u);
        BOOST_TEST((std::memcmp(buf, src.data(), 16000) == 0 ||
                    std::memcmp(buf, src.data() + 100000, 16000) == 0));
        whole++;
    }
    // As many whole messages landed as senders were told so.
    int ok = 0;
    for (auto &c : sent)
        ok += c.wr_id != 9 && c.status == TBRDMA_WC_SUCCESS;
    BOOST_TEST(whole == ok);
    BOOST_TEST(ok < 2);  // the chunks did alternate: one message was cut
}
