// SPDX-License-Identifier: BSD-2-Clause
//
// What a verbs queue pair's peer knows is its number, not a secret: a
// context created admit_bound admits the one peer context it is bound to
// (tb_ctx_bind()), on that link, and nobody else, whatever secret they
// carry; unbound, nobody. Its domain's keys are 32 bits, as verbs lkeys
// and rkeys are, and its id 24, as a queue pair number. Reset, it starts
// over, as a queue pair moved to RESET.
#include <boost/test/unit_test.hpp>

#include <set>

#include "pair_fixture.hpp"
#include "recv_ctx.hpp"

using namespace tbtest;

namespace {

struct bound_fixture : pair_fixture {
    recv_ctx qp{p.b->engine, 16, 16, true};
    alignas(8) uint64_t word = 0;
    uint64_t key = qp.reg(&word, sizeof(word), TBRDMA_ACCESS_ALL);
    engine_ctx other{p.a->engine};

    // A WRITE of 8 bytes into qp's word from a's context, or (from_other)
    // another context of a's engine, with secret.
    tbrdma_cqe write_from(bool from_other, uint64_t secret, uint64_t value)
    {
        tb_ctx *ctx = from_other ? other.ctx : p.a->ctx;
        int ep = tb_ep_create(ctx, static_cast<uint32_t>(p.a->link_index), tb_ctx_id(qp.ctx),
                              secret);
        BOOST_REQUIRE_GE(ep, 0);
        auto s = make_sqe(TBRDMA_OP_WRITE, ep, value);
        s.flags = TBRDMA_SQE_INLINE;
        std::memcpy(s.inline_data, &value, sizeof(value));
        s.length = sizeof(value);
        s.remote_addr = reinterpret_cast<uintptr_t>(&word);
        s.rkey = key;
        BOOST_REQUIRE_EQUAL(tb_post(ctx, &s), 0);
        std::vector<tbrdma_cqe> got;
        p.pump_until([&] {
            auto v = from_other ? other.drain_cq() : p.a->drain_cq();
            got.insert(got.end(), v.begin(), v.end());
            return !got.empty();
        });
        BOOST_REQUIRE_EQUAL(got.size(), 1u);
        return got[0];
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(engine_bound, bound_fixture)

BOOST_AUTO_TEST_CASE(unbound_it_admits_nobody_not_even_with_its_secret)
{
    auto c = write_from(false, tb_ctx_secret(qp.ctx), 1);
    BOOST_TEST(c.status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(word == 0u);
}

BOOST_AUTO_TEST_CASE(bound_it_admits_its_peer_alone)
{
    BOOST_REQUIRE_EQUAL(tb_ctx_bind(qp.ctx, static_cast<uint32_t>(p.b->link_index),
                                    tb_ctx_id(p.a->ctx)),
                        0);
    auto c = write_from(false, 0, 0x1111);
    BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(word == 0x1111u);
    // Another context of the same host, with the right secret even.
    c = write_from(true, tb_ctx_secret(qp.ctx), 0x2222);
    BOOST_TEST(c.status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(word == 0x1111u);
    // Bound to that one instead, the first is refused.
    BOOST_REQUIRE_EQUAL(tb_ctx_bind(qp.ctx, static_cast<uint32_t>(p.b->link_index),
                                    tb_ctx_id(other.ctx)),
                        0);
    c = write_from(true, 0, 0x3333);
    BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
    c = write_from(false, 0, 0x4444);
    BOOST_TEST(c.status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(word == 0x3333u);
    // Unbound: refused.
    tb_ctx_unbind(qp.ctx);
    c = write_from(true, 0, 0x5555);
    BOOST_TEST(c.status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(word == 0x3333u);
}

BOOST_AUTO_TEST_CASE(unbound_again_it_admits_nobody)
{
    BOOST_REQUIRE_EQUAL(tb_ctx_bind(qp.ctx, static_cast<uint32_t>(p.b->link_index),
                                    tb_ctx_id(p.a->ctx)),
                        0);
    BOOST_TEST(write_from(false, 0, 7).status == TBRDMA_WC_SUCCESS);
    tb_ctx_unbind(qp.ctx);
    BOOST_TEST(write_from(false, 0, 8).status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(word == 7u);
}

// Bound to a link that then goes: another link added in its slot later is
// not the one it was bound to, whatever context ids come over it.
BOOST_AUTO_TEST_CASE(a_link_in_the_slot_later_is_another)
{
    uint32_t slot = static_cast<uint32_t>(p.b->link_index);
    BOOST_REQUIRE_EQUAL(tb_ctx_bind(qp.ctx, slot, tb_ctx_id(p.a->ctx)), 0);
    BOOST_TEST(write_from(false, 0, 0x77).status == TBRDMA_WC_SUCCESS);
    // The cable's links go and come back in the same slots (a re-login).
    BOOST_REQUIRE(p.relink(false));
    BOOST_TEST(write_from(false, 0, 0x88).status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(word == 0x77u);
    // Bound again, to the new link: admitted.
    BOOST_REQUIRE_EQUAL(tb_ctx_bind(qp.ctx, slot, tb_ctx_id(p.a->ctx)), 0);
    BOOST_TEST(write_from(false, 0, 0x99).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(word == 0x99u);
    BOOST_TEST(tb_ctx_bind(qp.ctx, slot + 1, tb_ctx_id(p.a->ctx)) == -ENOTCONN);
}

BOOST_AUTO_TEST_CASE(a_context_that_admits_by_secret_cannot_be_bound)
{
    BOOST_TEST(tb_ctx_bind(p.b->ctx, static_cast<uint32_t>(p.b->link_index),
                           tb_ctx_id(p.a->ctx)) == -EINVAL);
    // It still admits by its secret.
    int ep = p.a->ep_to(*p.b);
    BOOST_REQUIRE_GE(ep, 0);
}

BOOST_AUTO_TEST_CASE(short_keys_are_32_bits_and_all_differ)
{
    tb_pd *pd = nullptr;
    BOOST_REQUIRE_EQUAL(tb_pd_create(p.b->engine, 256, &pd), 0);
    tb_pd_short_keys(pd);
    std::vector<uint8_t> mem(256);
    std::set<uint64_t> keys;
    for (int i = 0; i < 256; i++) {
        uint64_t k = 0;
        BOOST_REQUIRE_EQUAL(tb_pd_reg_mr(pd, reinterpret_cast<uintptr_t>(&mem[i]), 1,
                                         TBRDMA_ACCESS_ALL, &mem[i], nullptr, &k),
                            0);
        BOOST_REQUIRE(k != 0 && k <= UINT32_MAX);
        keys.insert(k);
    }
    BOOST_TEST(keys.size() == 256u);
    // Half of 256 keys of 32 random bits would have the top bit set: not
    // all below 2^31 by chance (2^-256).
    BOOST_TEST(*keys.rbegin() >= (1ull << 31));
    tb_pd_destroy(pd, nullptr, nullptr);
}

// Ids the engine chooses are queue pair numbers: 24 bits, never 0, and
// one just freed does not come back at once, however often contexts come
// and go.
BOOST_AUTO_TEST_CASE(context_ids_fit_a_queue_pair_number)
{
    uint32_t last = 0;
    for (int i = 0; i < 100000; i++) {
        recv_ctx c(p.b->engine, 2, 2, true);
        uint32_t id = tb_ctx_id(c.ctx);
        BOOST_REQUIRE(id != 0 && id <= TB_CTX_ID_MASK);
        BOOST_REQUIRE(id != last);
        last = id;
    }
}

// RESET: the context keeps its id and rings and starts over: no
// endpoint, unbound, no remote access, not in error, the receives posted
// before it dropped without completions.
BOOST_AUTO_TEST_CASE(reset_starts_the_context_over)
{
    const uint32_t link = static_cast<uint32_t>(p.b->link_index);
    std::vector<uint8_t> in(64 * 3, 0);
    uint64_t ik = qp.reg(in.data(), in.size());
    auto from_a = [&](uint64_t wr_id) {
        int ep = tb_ep_create(p.a->ctx, static_cast<uint32_t>(p.a->link_index), tb_ctx_id(qp.ctx),
                              0);
        BOOST_REQUIRE_GE(ep, 0);
        auto s = make_sqe(TBRDMA_OP_MSG, ep, wr_id);
        s.flags = TBRDMA_SQE_INLINE;
        s.length = 8;
        std::memset(s.inline_data, int(wr_id), 8);
        auto c = p.run(*p.a, s);
        tb_ep_destroy(p.a->ctx, ep);
        return c;
    };
    auto received = [&] { return receive(p, qp, 1, 2000); };
    const uint32_t id = tb_ctx_id(qp.ctx);
    BOOST_REQUIRE_EQUAL(tb_ctx_bind(qp.ctx, link, tb_ctx_id(p.a->ctx)), 0);
    int own_ep = tb_ep_create(qp.ctx, link, tb_ctx_id(p.a->ctx), 0);
    BOOST_REQUIRE_GE(own_ep, 0);
    qp.post(1, &in[0], 64, ik);
    qp.post(2, &in[64], 64, ik);
    BOOST_TEST(from_a(1).status == TBRDMA_WC_SUCCESS);
    auto got = received();
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 1u);
    tb_ctx_set_error(qp.ctx);
    qp.drain_rcq();  // receive 2, flushed

    qp.post(3, &in[64], 64, ik);
    tb_ctx_reset(qp.ctx);
    BOOST_TEST(tb_ctx_id(qp.ctx) == id);
    BOOST_TEST(qp.taken() == 3u);  // receive 3 dropped
    BOOST_TEST(tb_ep_link(qp.ctx, uint32_t(own_ep)) == -ENOENT);
    BOOST_TEST(from_a(4).status == TBRDMA_WC_REM_ACCESS_ERR);  // unbound
    BOOST_TEST(received().empty());
    auto w = make_sqe(TBRDMA_OP_WRITE, 0, 5);
    BOOST_REQUIRE_EQUAL(tb_post_refused(qp.ctx, &w), 0);
    got = qp.drain_cq();
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].status == TBRDMA_WC_REFUSED);  // not in error

    // Connected again, it works as a new one: no remote access until set.
    BOOST_REQUIRE_EQUAL(tb_ctx_bind(qp.ctx, link, tb_ctx_id(p.a->ctx)), 0);
    BOOST_TEST(write_from(false, 0, 0x66).status == TBRDMA_WC_REM_ACCESS_ERR);
    tb_ctx_set_remote_access(qp.ctx, TBRDMA_ACCESS_REMOTE_WRITE);
    BOOST_TEST(write_from(false, 0, 0x67).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(word == 0x67u);
    qp.post(6, &in[128], 64, ik);
    BOOST_TEST(from_a(6).status == TBRDMA_WC_SUCCESS);
    got = received();
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 6u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(in[128] == 6u);
    BOOST_TEST(in[64] == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
