// SPDX-License-Identifier: BSD-2-Clause
//
// Datagrams (TBRDMA_OP_DGRAM): what a verbs UD queue pair rests on. A
// datagram gathered from its parts travels in one frame and lands in the
// oldest receive of the datagram context it names, if that context's
// Q_Key and fabric match; otherwise, or with no receive posted, it is
// dropped. The sender's completes as a success either way. Datagram
// contexts alone post datagrams, and take and post nothing else.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>

#include "pair_fixture.hpp"
#include "recv_ctx.hpp"

using namespace tbtest;

namespace {

constexpr uint32_t qkey = 0x1ee7a330;

// A datagram context of fabric (tb_link.fabric of the cable's links: 0).
std::unique_ptr<recv_ctx> dgram_ctx(tb_engine *e, uint32_t fabric = 0, uint32_t entries = 64)
{
    return std::make_unique<recv_ctx>(e, entries, entries, false, [fabric](tb_ctx_config &c) {
        c.dgram = 1;
        c.fabric = fabric;
    });
}

struct dgram_fixture : pair_fixture {
    // The sender, a datagram context on a (as a UD queue pair), and the
    // target on b.
    std::unique_ptr<recv_ctx> ra = dgram_ctx(p.a->engine);
    std::unique_ptr<recv_ctx> rb = dgram_ctx(p.b->engine);
    std::vector<uint8_t> src = pattern(8192, 7);
    uint64_t sk = ra->reg(src.data(), src.size());
    std::vector<uint8_t> dst = std::vector<uint8_t>(65536, 0);
    uint64_t dk = rb->reg(dst.data(), dst.size());
    int ep = tb_ep_create(ra->ctx, static_cast<uint32_t>(p.a->link_index), 0, 0);

    dgram_fixture()
    {
        BOOST_REQUIRE_GE(ep, 0);
        BOOST_REQUIRE_EQUAL(tb_ctx_set_qkey(ra->ctx, qkey), 0);
        BOOST_REQUIRE_EQUAL(tb_ctx_set_qkey(rb->ctx, qkey), 0);
    }

    // A datagram of len bytes from src + off to context to with key k.
    tbrdma_sqe dgram(uint32_t len, uint64_t wr_id, uint32_t to, uint64_t k = qkey,
                     uint32_t off = 0) const
    {
        auto s = make_sqe(TBRDMA_OP_DGRAM, ep, wr_id);
        s.local_addr = reinterpret_cast<uintptr_t>(src.data() + off);
        s.lkey = sk;
        s.length = len;
        s.am_id = to;
        s.rkey = k;
        return s;
    }
    uint32_t target() const { return tb_ctx_id(rb->ctx); }
    int post(const tbrdma_sqe &s) { return tb_post(ra->ctx, &s); }
    // Pumps until the sender has n completions and the receiver m.
    void settle(size_t n, size_t m, std::vector<tbrdma_cqe> &sent, std::vector<tbrdma_cqe> &got)
    {
        BOOST_REQUIRE(p.pump_until([&] {
            auto s = ra->drain_cq();
            sent.insert(sent.end(), s.begin(), s.end());
            auto r = rb->drain_rcq();
            got.insert(got.end(), r.begin(), r.end());
            return sent.size() >= n && got.size() >= m;
        }));
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(engine_dgram, dgram_fixture)

// A datagram gathered from an inline header and a registered buffer, with
// an immediate: one receive takes it whole.
BOOST_AUTO_TEST_CASE(a_datagram_lands_whole)
{
    rb->post(5, dst.data(), 4096, dk);
    auto head = make_sqe(TBRDMA_OP_DGRAM, ep, 1);
    head.flags = TBRDMA_SQE_INLINE | TBRDMA_SQE_MORE | TBRDMA_SQE_SILENT;
    head.length = 40;
    std::memset(head.inline_data, 0xa5, 40);
    auto body = dgram(2048, 2, target(), qkey, 100);
    body.flags = TBRDMA_SQE_IMM;
    body.imm = 0xbeef;
    body.remote_addr = 40;
    BOOST_REQUIRE_EQUAL(post(head), 0);
    BOOST_REQUIRE_EQUAL(post(body), 0);
    std::vector<tbrdma_cqe> sent, got;
    settle(1, 1, sent, got);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 5u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(got[0].opcode == TBRDMA_OP_DGRAM);
    BOOST_TEST(got[0].byte_len == 2088u);
    BOOST_TEST(got[0].ep == tb_ctx_id(ra->ctx));
    BOOST_TEST(got[0].flags == TBRDMA_CQE_IMM);
    BOOST_TEST(got[0].result == 0xbeefu);
    BOOST_TEST(std::all_of(dst.begin(), dst.begin() + 40, [](uint8_t b) { return b == 0xa5; }));
    BOOST_TEST(std::memcmp(dst.data() + 40, src.data() + 100, 2048) == 0);
    BOOST_TEST(dst[2088] == 0);
    // The silent head completes without an entry; the body with one.
    BOOST_REQUIRE_EQUAL(sent.size(), 1u);
    BOOST_TEST(sent[0].wr_id == 2u);
    BOOST_TEST(sent[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(sent[0].opcode == TBRDMA_OP_DGRAM);
}

// Every datagram the target does not take completes as a success and is
// counted as dropped; none uses up the receive posted, which the next
// good one takes.
BOOST_AUTO_TEST_CASE(dropped_datagrams_complete_and_leave_the_receive)
{
    auto other_fabric = dgram_ctx(p.b->engine, 1);
    BOOST_REQUIRE_EQUAL(tb_ctx_set_qkey(other_fabric->ctx, qkey), 0);
    auto no_key = dgram_ctx(p.b->engine);
    recv_ctx not_dgram(p.b->engine);
    std::vector<uint8_t> b(4096);
    for (auto *r : {other_fabric.get(), no_key.get(), &not_dgram})
        r->post(9, b.data(), 4096, r->reg(b.data(), b.size()));
    const uint32_t to[] = {target(), tb_ctx_id(other_fabric->ctx), tb_ctx_id(no_key->ctx),
                           tb_ctx_id(not_dgram.ctx), 0xabcdef};
    const uint64_t key[] = {qkey + 1, qkey, qkey, qkey, qkey};
    for (int i = 0; i < 5; i++)
        BOOST_REQUIRE_EQUAL(post(dgram(64, static_cast<uint64_t>(i), to[i], key[i])), 0);
    // No receive posted yet at the target itself: dropped too.
    BOOST_REQUIRE_EQUAL(post(dgram(64, 5, target())), 0);
    std::vector<tbrdma_cqe> sent, got;
    settle(6, 0, sent, got);
    for (auto &c : sent)
        BOOST_TEST(c.status == TBRDMA_WC_SUCCESS, "wr " << c.wr_id);
    BOOST_TEST(got.empty());
    BOOST_TEST(p.b->link.stats.rx_dgram_dropped == 6u);
    for (auto *r : {other_fabric.get(), no_key.get(), &not_dgram})
        BOOST_TEST(r->drain_rcq().empty());
    BOOST_TEST(not_dgram.taken() == 0u);
    rb->post(7, dst.data(), 4096, dk);
    BOOST_REQUIRE_EQUAL(post(dgram(64, 6, target(), qkey, 64)), 0);
    settle(7, 1, sent, got);
    BOOST_TEST(got[0].wr_id == 7u);
    BOOST_TEST(got[0].byte_len == 64u);
    BOOST_TEST(std::memcmp(dst.data(), src.data() + 64, 64) == 0);
    // A new key admits from now on, and the old one no longer.
    BOOST_REQUIRE_EQUAL(tb_ctx_set_qkey(rb->ctx, 77), 0);
    rb->post(8, dst.data(), 4096, dk);
    BOOST_REQUIRE_EQUAL(post(dgram(8, 7, target())), 0);
    BOOST_REQUIRE_EQUAL(post(dgram(8, 8, target(), 77)), 0);
    settle(9, 2, sent, got);
    BOOST_TEST(got[1].wr_id == 8u);
    BOOST_TEST(p.b->link.stats.rx_dgram_dropped == 7u);
}

// A Q_Key with bit 31 set is the sender's own (IB's controlled Q_Keys):
// a process reaches with it only what its own key reaches.
BOOST_AUTO_TEST_CASE(a_controlled_qkey_is_the_senders_own)
{
    rb->post(1, dst.data(), 4096, dk);
    rb->post(2, dst.data(), 4096, dk);
    BOOST_REQUIRE_EQUAL(post(dgram(8, 1, target(), 0x80000000u)), 0);
    std::vector<tbrdma_cqe> sent, got;
    settle(1, 1, sent, got);
    BOOST_REQUIRE_EQUAL(tb_ctx_set_qkey(rb->ctx, 0x80000005u), 0);
    BOOST_REQUIRE_EQUAL(post(dgram(8, 2, target(), 0x80000005u)), 0);
    settle(2, 1, sent, got);
    BOOST_TEST(got.size() == 1u);
    BOOST_TEST(got[0].wr_id == 1u);
    BOOST_TEST(p.b->link.stats.rx_dgram_dropped == 1u);
    BOOST_TEST(post(dgram(8, 3, target(), 1ull << 32)) == -EINVAL);
}

// A receive shorter than the datagram completes with LOC_LEN_ERR; the
// sender's still succeeds (it is not told).
BOOST_AUTO_TEST_CASE(a_receive_too_short_fails_alone)
{
    rb->post(1, dst.data(), 100, dk);
    BOOST_REQUIRE_EQUAL(post(dgram(101, 1, target())), 0);
    std::vector<tbrdma_cqe> sent, got;
    settle(1, 1, sent, got);
    BOOST_TEST(got[0].status == TBRDMA_WC_LOC_LEN_ERR);
    BOOST_TEST(sent[0].status == TBRDMA_WC_SUCCESS);
}

// Datagrams come from datagram contexts alone, which post nothing else and
// are reached by nothing else; only they take a Q_Key; a datagram is one
// frame, of at most TBRDMA_DGRAM_PARTS_MAX parts.
BOOST_AUTO_TEST_CASE(a_datagram_context_takes_and_posts_nothing_else)
{
    auto d = make_sqe(TBRDMA_OP_DGRAM, ep_ab, 1);
    BOOST_TEST(tb_post(p.a->ctx, &d) == -EINVAL);
    auto w = make_sqe(TBRDMA_OP_WRITE, ep, 1);
    BOOST_TEST(post(w) == -EINVAL);
    int to_rb = p.a->ep_to(target(), tb_ctx_secret(rb->ctx));
    BOOST_REQUIRE_GE(to_rb, 0);
    rb->post(1, dst.data(), 4096, dk);
    auto m = make_sqe(TBRDMA_OP_MSG, to_rb, 1);
    m.flags = TBRDMA_SQE_INLINE;
    auto c = p.run(*p.a, m);
    BOOST_TEST(c.status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(rb->taken() == 0u);
    BOOST_TEST(tb_ctx_set_qkey(p.b->ctx, 1) == -EINVAL);
    auto big = dgram(TBRDMA_SEND_MAX, 2, target());
    big.remote_addr = 1;
    BOOST_TEST(post(big) == -EINVAL);
    BOOST_TEST(post(dgram(TBRDMA_SEND_MAX + 1, 2, target())) == -EINVAL);
    BOOST_TEST_REQUIRE(post(dgram(TBRDMA_SEND_MAX, 2, target())) == 0);
    std::vector<tbrdma_cqe> sent, got;
    settle(1, 0, sent, got);
    BOOST_TEST(sent[0].status == TBRDMA_WC_SUCCESS);
    auto part = dgram(0, 3, target());
    part.flags = TBRDMA_SQE_MORE | TBRDMA_SQE_SILENT;
    for (uint32_t i = 1; i < TBRDMA_DGRAM_PARTS_MAX; i++)
        BOOST_REQUIRE_EQUAL(post(part), 0);
    BOOST_TEST(post(part) == -EINVAL);  // a 32nd part must be the last
    BOOST_TEST(post(dgram(8, 4, target())) == 0);  // the last part, allowed
    BOOST_CHECK_THROW(recv_ctx(p.b->engine, 64, 64, true, [](tb_ctx_config &cc) { cc.dgram = 1; }),
                      std::runtime_error);
}

// A datagram waits for its last part (nothing goes, nothing completes); parts
// out of order fail without a frame.
BOOST_AUTO_TEST_CASE(a_datagram_waits_for_its_parts_and_bad_ones_fail)
{
    rb->post(1, dst.data(), 4096, dk);
    rb->post(2, dst.data() + 4096, 4096, dk);
    auto first = dgram(10, 1, 0, 0);
    first.flags = TBRDMA_SQE_MORE;
    BOOST_REQUIRE_EQUAL(post(first), 0);
    for (int i = 0; i < 50; i++)
        p.step();
    BOOST_TEST(ra->drain_cq().empty());
    BOOST_TEST(rb->taken() == 0u);
    auto last = dgram(20, 2, target(), qkey, 10);
    last.remote_addr = 10;
    BOOST_REQUIRE_EQUAL(post(last), 0);
    std::vector<tbrdma_cqe> sent, got;
    settle(2, 1, sent, got);
    BOOST_TEST(got[0].byte_len == 30u);
    BOOST_TEST(std::memcmp(dst.data(), src.data(), 30) == 0);

    // The second part's offset is not where the first ended.
    first.wr_id = 3;
    BOOST_REQUIRE_EQUAL(post(first), 0);
    last.wr_id = 4;
    last.remote_addr = 11;
    BOOST_REQUIRE_EQUAL(post(last), 0);
    settle(4, 1, sent, got);
    for (int i = 2; i < 4; i++) {
        BOOST_TEST(sent[i].wr_id == static_cast<uint64_t>(i + 1));
        BOOST_TEST(sent[i].status == TBRDMA_WC_REM_INVALID);
    }
    BOOST_TEST(rb->taken() == 1u);
}

// A datagram context's endpoint outlives its link, as a UD queue pair its
// port going down: while the link is down its datagrams complete as sent
// and are lost, a datagram open when the link died is lost whole, and once
// the same link is added again after tb_engine_unplug_link() (a loop's
// cable plugged in again) the endpoint sends over it. A connected
// endpoint stays failed; a link removed instead takes the datagram
// endpoint with it, even one left waiting.
BOOST_AUTO_TEST_CASE(a_datagram_endpoint_outlives_its_link)
{
    int conn = p.a->ep_to(*p.b);
    BOOST_REQUIRE_GE(conn, 0);
    for (int i = 0; i < 4; i++)
        rb->post(static_cast<uint64_t>(i), dst.data() + 4096 * i, 4096, dk);
    std::vector<tbrdma_cqe> sent, got;
    BOOST_REQUIRE_EQUAL(post(dgram(100, 1, target(), qkey, 0)), 0);
    settle(1, 1, sent, got);
    // A datagram's first part waits for its last when the cable goes.
    auto head = make_sqe(TBRDMA_OP_DGRAM, ep, 2);
    head.flags = TBRDMA_SQE_INLINE | TBRDMA_SQE_MORE;
    head.length = 40;
    std::memset(head.inline_data, 0x5a, 40);
    BOOST_REQUIRE_EQUAL(post(head), 0);
    p.ca.unplug();
    BOOST_REQUIRE(p.pump_until([&] { return p.a->link.state == TBRDMA_LINK_DOWN; }));
    BOOST_TEST(tb_ep_state(ra->ctx, static_cast<uint32_t>(ep), nullptr) == TBRDMA_LINK_DOWN);
    p.ca.plug();
    BOOST_REQUIRE(p.relink(true));
    BOOST_TEST(tb_ep_state(ra->ctx, static_cast<uint32_t>(ep), nullptr) == TBRDMA_LINK_UP);
    // Its last part, posted once the link is back: lost with the first.
    auto tail = dgram(300, 3, target(), qkey, 2000);
    tail.remote_addr = 40;
    BOOST_REQUIRE_EQUAL(post(tail), 0);
    settle(3, 1, sent, got);
    // Posted while the cable is out: lost.
    p.ca.unplug();
    BOOST_REQUIRE(p.pump_until([&] { return p.a->link.state == TBRDMA_LINK_DOWN; }));
    BOOST_REQUIRE_EQUAL(post(dgram(200, 4, target(), qkey, 1000)), 0);
    settle(4, 1, sent, got);
    p.ca.plug();
    BOOST_REQUIRE(p.relink(true));
    BOOST_REQUIRE_EQUAL(post(dgram(400, 5, target(), qkey, 3000)), 0);
    settle(5, 2, sent, got);
    BOOST_REQUIRE_EQUAL(sent.size(), 5u);
    for (size_t i = 0; i < sent.size(); i++) {
        BOOST_TEST(sent[i].wr_id == i + 1);
        BOOST_TEST(sent[i].status == TBRDMA_WC_SUCCESS, "wr " << sent[i].wr_id);
    }
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(got[1].byte_len == 400u);
    BOOST_TEST(std::memcmp(dst.data() + 4096, src.data() + 3000, 400) == 0);
    BOOST_TEST(rb->drain_rcq().empty());
    // The connected endpoint went with the link for good.
    auto w = make_sqe(TBRDMA_OP_FLUSH, conn, 9);
    BOOST_TEST(p.run(*p.a, w).status == TBRDMA_WC_LINK_DOWN);
    // Unplugged and then removed: the waiting endpoint fails for good, and
    // a link added later does not take it.
    tb_engine_unplug_link(p.a->engine, &p.a->link);
    tb_engine_remove_link(p.a->engine, &p.a->link);
    BOOST_TEST(tb_ep_state(ra->ctx, static_cast<uint32_t>(ep), nullptr) == TBRDMA_LINK_DOWN);
    p.ca.plug();
    BOOST_REQUIRE(p.relink(true));
    BOOST_TEST(tb_ep_state(ra->ctx, static_cast<uint32_t>(ep), nullptr) == TBRDMA_LINK_DOWN);
    BOOST_REQUIRE_EQUAL(post(dgram(64, 10, target())), 0);
    std::vector<tbrdma_cqe> last;
    BOOST_REQUIRE(p.pump_until([&] {
        auto v = ra->drain_cq();
        last.insert(last.end(), v.begin(), v.end());
        return !last.empty();
    }));
    BOOST_TEST(last[0].status == TBRDMA_WC_LINK_DOWN);
}

// Datagram endpoints of several contexts wait for their link together;
// one destroyed meanwhile leaves the others waiting. Another link takes
// the slot theirs had, and theirs comes back in the next: they join it,
// not the one in their old slot, and created while it is down, one more
// joins it too.
BOOST_AUTO_TEST_CASE(waiting_datagram_endpoints_follow_their_link)
{
    std::vector<std::unique_ptr<recv_ctx>> more;
    std::vector<int> eps;
    for (int i = 0; i < 3; i++) {
        more.push_back(dgram_ctx(p.a->engine));
        eps.push_back(tb_ep_create(more[i]->ctx, static_cast<uint32_t>(p.a->link_index), 0, 0));
        BOOST_REQUIRE_GE(eps[i], 0);
    }
    p.ca.unplug();
    BOOST_REQUIRE(p.pump_until([&] { return p.a->link.state == TBRDMA_LINK_DOWN; }));
    // Created on the dead link: it waits as the others do.
    auto late = dgram_ctx(p.a->engine);
    int late_ep = tb_ep_create(late->ctx, static_cast<uint32_t>(p.a->link_index), 0, 0);
    BOOST_REQUIRE_GE(late_ep, 0);
    const uint32_t old_slot = static_cast<uint32_t>(p.a->link_index);
    tb_engine_unplug_link(p.a->engine, &p.a->link);
    more[1].reset();  // in the middle of those waiting
    mem_cable_end other_end;
    tb_link other{};
    tb_link_config cfg;
    tb_link_config_default(&cfg);
    BOOST_REQUIRE_EQUAL(tb_link_init(&other, &cfg, &mem_cable_end::ops, &other_end,
                                     &tb_engine_link_ops, p.a->engine),
                        0);
    BOOST_REQUIRE_EQUAL(tb_engine_add_link(p.a->engine, &other), static_cast<int>(old_slot));
    p.ca.plug();
    const int slot = p.a->relink(true);
    BOOST_REQUIRE_GE(slot, 0);
    BOOST_REQUIRE_NE(slot, static_cast<int>(old_slot));
    p.b->relink(false);
    BOOST_REQUIRE(p.pump_until([&] {
        return p.a->link.state == TBRDMA_LINK_UP && p.b->link.state == TBRDMA_LINK_UP;
    }));
    std::vector<std::pair<recv_ctx *, int>> waiting = {
        {ra.get(), ep}, {more[0].get(), eps[0]}, {more[2].get(), eps[2]}, {late.get(), late_ep}};
    for (auto [r, e] : waiting) {
        BOOST_TEST(tb_ep_link(r->ctx, static_cast<uint32_t>(e)) == slot);
        BOOST_TEST(tb_ep_state(r->ctx, static_cast<uint32_t>(e), nullptr) == TBRDMA_LINK_UP);
    }
    for (int i = 0; i < 4; i++)
        rb->post(static_cast<uint64_t>(i), dst.data() + 4096 * i, 4096, dk);
    uint32_t n = 0;
    for (auto [r, e] : waiting) {
        auto s = dgram(64, n, target(), qkey, 64 * (n + 1));
        s.ep = static_cast<uint32_t>(e);
        s.lkey = r->reg(src.data(), src.size());
        BOOST_REQUIRE_EQUAL(tb_post(r->ctx, &s), 0);
        n++;
    }
    std::vector<tbrdma_cqe> got;
    BOOST_REQUIRE(p.pump_until([&] {
        auto r = rb->drain_rcq();
        got.insert(got.end(), r.begin(), r.end());
        return got.size() >= 4;
    }));
    for (size_t i = 0; i < got.size(); i++) {
        BOOST_TEST(got[i].status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(std::memcmp(dst.data() + 4096 * i, src.data() + 64 * (i + 1), 64) == 0);
    }
    tb_engine_remove_link(p.a->engine, &other);
    tb_link_destroy(&other);
}

BOOST_AUTO_TEST_SUITE_END()

// Over a cable that loses, duplicates and reorders frames, datagrams of
// every size up to a frame arrive whole, once each and in order.
BOOST_AUTO_TEST_CASE(engine_dgram_over_a_bad_cable)
{
    engine_pair p(77);
    make_cable_bad(p);
    auto rb = dgram_ctx(p.b->engine, 0, 16);
    BOOST_REQUIRE_EQUAL(tb_ctx_set_qkey(rb->ctx, qkey), 0);
    auto src = pattern(1 << 16, 3);
    std::vector<uint8_t> dst(16 * 4096, 0);
    auto ra = dgram_ctx(p.a->engine);
    uint64_t sk = ra->reg(src.data(), src.size());
    uint64_t dk = rb->reg(dst.data(), dst.size());
    int ep = tb_ep_create(ra->ctx, static_cast<uint32_t>(p.a->link_index), 0, 0);
    BOOST_REQUIRE_GE(ep, 0);
    std::mt19937 rng(5);
    const int n = 200;
    std::vector<uint32_t> len(n), off(n);
    for (int i = 0; i < n; i++) {
        len[i] = rng() % (TBRDMA_SEND_MAX + 1);
        off[i] = rng() % (src.size() - TBRDMA_SEND_MAX);
    }
    int posted = 0, received = 0, recv_posted = 0;
    size_t sent_ok = 0;
    for (; recv_posted < 16; recv_posted++)
        rb->post(static_cast<uint64_t>(recv_posted), dst.data() + 4096 * recv_posted, 4096, dk);
    BOOST_REQUIRE(p.pump_until(
        [&] {
            // Never more in flight than receives posted: none is dropped.
            while (posted < n && posted - received < 16) {
                auto s = make_sqe(TBRDMA_OP_DGRAM, ep, static_cast<uint64_t>(posted));
                s.local_addr = reinterpret_cast<uintptr_t>(src.data() + off[posted]);
                s.lkey = sk;
                s.length = len[posted];
                s.am_id = tb_ctx_id(rb->ctx);
                s.rkey = qkey;
                if (tb_post(ra->ctx, &s))
                    break;
                posted++;
            }
            for (auto &c : ra->drain_cq())
                sent_ok += c.status == TBRDMA_WC_SUCCESS;
            for (auto &c : rb->drain_rcq()) {
                int i = received;
                uint8_t *buf = dst.data() + 4096 * (i % 16);
                BOOST_REQUIRE_EQUAL(c.wr_id, static_cast<uint64_t>(i));
                BOOST_REQUIRE_EQUAL(c.status, TBRDMA_WC_SUCCESS);
                BOOST_REQUIRE_EQUAL(c.byte_len, len[i]);
                BOOST_REQUIRE(std::memcmp(buf, src.data() + off[i], len[i]) == 0);
                received++;
                rb->post(static_cast<uint64_t>(recv_posted), buf, 4096, dk);
                recv_posted++;
            }
            return received == n && sent_ok == static_cast<size_t>(n);
        },
        2000000));
    BOOST_TEST(p.b->link.stats.rx_dgram_dropped == 0u);
    BOOST_TEST(p.a->link.stats.retransmits + p.b->link.stats.retransmits > 0u);
    BOOST_TEST(p.b->link.stats.rx_dup > 0u);
}
