// SPDX-License-Identifier: BSD-2-Clause
//
// A shared receive queue's limit (tb_srq_arm(), a verbs SRQ's srq_limit):
// armed, it is reached once a context took a receive and fewer than the
// limit are left posted, receives of several entries counted as one; it
// then fires once and is disarmed. A context reset while it fills a
// receive of the shared queue completes that receive, flushed.
#include <boost/test/unit_test.hpp>

#include "recv_fixture.hpp"

using namespace tbtest;

BOOST_FIXTURE_TEST_CASE(engine_srq_limit_fires_once_below_it, recv_fixture)
{
    tb_pd *pd = nullptr;
    BOOST_REQUIRE_EQUAL(tb_pd_create(p.b->engine, 64, &pd), 0);
    {
        srq_ring s(p.b->engine, pd, 16);
        recv_ctx q(p.b->engine, 4, 16, false, [&](tb_ctx_config &cc) {
            cc.rwq = tb_qring{};
            cc.srq = s.srq;
            cc.pd = pd;
        });
        std::vector<uint8_t> b(1000, 0);
        uint64_t k = 0;
        BOOST_REQUIRE_EQUAL(tb_pd_reg_mr(pd, reinterpret_cast<uintptr_t>(b.data()), b.size(),
                                         TBRDMA_ACCESS_LOCAL, b.data(), nullptr, &k),
                            0);
        // Three receives of one buffer, then two of two: 7 entries.
        for (uint32_t i = 0; i < 3; i++)
            s.post(i, &b[100 * i], 100, k);
        for (uint32_t i = 3; i < 5; i++) {
            s.post(i, &b[100 * i], 50, k, TBRDMA_RWQE_MORE);
            s.post(i, &b[100 * i + 50], 50, k);
        }
        int fired = 0;
        auto reached = [](void *arg) { ++*static_cast<int *>(arg); };
        BOOST_TEST(tb_srq_arm(s.srq, 17, reached, &fired) == -EINVAL);
        BOOST_REQUIRE_EQUAL(tb_srq_arm(s.srq, 3, reached, &fired), 0);
        BOOST_TEST(tb_srq_limit(s.srq) == 3u);
        int e = p.a->ep_to(tb_ctx_id(q.ctx), tb_ctx_secret(q.ctx));
        auto one = [&](uint64_t wr_id) {
            auto m = msg(60, wr_id);
            m.ep = static_cast<uint32_t>(e);
            BOOST_REQUIRE(p.run(*p.a, m).status == TBRDMA_WC_SUCCESS);
        };
        one(1);
        one(2);  // 3 receives left (5 entries): not below
        BOOST_TEST(fired == 0);
        one(3);  // 2 left, in 4 entries: below
        BOOST_TEST(fired == 1);
        BOOST_TEST(tb_srq_limit(s.srq) == 0u);
        one(4);  // disarmed
        BOOST_TEST(fired == 1);
        BOOST_REQUIRE_EQUAL(tb_srq_arm(s.srq, 2, reached, &fired), 0);
        one(5);  // none left
        BOOST_TEST(fired == 2);
        BOOST_TEST(q.drain_rcq().size() == 5u);
    }
    tb_pd_destroy(pd, nullptr, nullptr);
}

BOOST_FIXTURE_TEST_CASE(engine_srq_reset_gives_the_receive_back, recv_fixture)
{
    tb_pd *pd = nullptr;
    BOOST_REQUIRE_EQUAL(tb_pd_create(p.b->engine, 64, &pd), 0);
    {
        srq_ring s(p.b->engine, pd, 16);
        recv_ctx q(p.b->engine, 4, 16, false, [&](tb_ctx_config &cc) {
            cc.rwq = tb_qring{};
            cc.srq = s.srq;
            cc.pd = pd;
        });
        std::vector<uint8_t> b(1 << 20, 0);
        uint64_t k = 0;
        BOOST_REQUIRE_EQUAL(tb_pd_reg_mr(pd, reinterpret_cast<uintptr_t>(b.data()), b.size(),
                                         TBRDMA_ACCESS_LOCAL, b.data(), nullptr, &k),
                            0);
        s.post(7, b.data(), uint32_t(b.size()), k);
        s.post(8, b.data(), 64, k);
        int e = p.a->ep_to(tb_ctx_id(q.ctx), tb_ctx_secret(q.ctx));
        auto m = msg(1 << 20, 1);
        m.ep = static_cast<uint32_t>(e);
        BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &m), 0);
        // Its first chunks are in, the rest still coming.
        BOOST_REQUIRE(p.pump_until([&] { return s.taken() == 1; }));
        BOOST_TEST(q.drain_rcq().empty());
        tb_ctx_reset(q.ctx);
        auto got = q.drain_rcq();
        BOOST_REQUIRE_EQUAL(got.size(), 1u);
        BOOST_TEST(got[0].wr_id == 7u);
        BOOST_TEST(got[0].status == TBRDMA_WC_FLUSH_ERR);
        BOOST_TEST(s.taken() == 1u);  // the next stays for the others
        p.pump_until([&] { return !p.a->drain_cq().empty(); });
    }
    tb_pd_destroy(pd, nullptr, nullptr);
}
