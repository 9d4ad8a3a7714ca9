// SPDX-License-Identifier: BSD-2-Clause
//
// A shared receive queue's limit (tb_srq_arm(), a verbs SRQ's srq_limit):
// armed, it is reached once a context took a receive and fewer than the
// limit are left posted, receives of several entries counted as one; it
// then fires once and is disarmed. A context reset while it fills a
// receive of the shared queue completes that receive, flushed.
#include <boost/test/unit_test.hpp>

#include <stdexcept>

#include "recv_fixture.hpp"

using namespace tbtest;

namespace {

// A domain of b's engine, destroyed after what uses it.
struct owned_pd {
    tb_pd *pd = nullptr;
    explicit owned_pd(tb_engine *e)
    {
        if (tb_pd_create(e, 64, &pd))
            throw std::runtime_error("tb_pd_create");
    }
    ~owned_pd() { tb_pd_destroy(pd, nullptr, nullptr); }
    owned_pd(const owned_pd &) = delete;
    owned_pd &operator=(const owned_pd &) = delete;
};

// q, a context of b's engine taking its receives from s, a shared queue of
// 16 entries, whose receives go into buf; e, a's endpoint to q.
struct srq_fixture : recv_fixture {
    owned_pd dom{p.b->engine};
    srq_ring s{p.b->engine, dom.pd, 16};
    recv_ctx q{p.b->engine, 4, 16, false, [this](tb_ctx_config &cc) {
                   cc.rwq = tb_qring{};
                   cc.srq = s.srq;
                   cc.pd = dom.pd;
               }};
    std::vector<uint8_t> buf = std::vector<uint8_t>(1 << 20, 0);
    uint64_t key = reg_buf();
    int e = p.a->ep_to(tb_ctx_id(q.ctx), tb_ctx_secret(q.ctx));

    uint64_t reg_buf()
    {
        uint64_t k = 0;
        if (tb_pd_reg_mr(dom.pd, reinterpret_cast<uintptr_t>(buf.data()), buf.size(), TBRDMA_ACCESS_LOCAL,
                         buf.data(), nullptr, &k))
            throw std::runtime_error("tb_pd_reg_mr");
        return k;
    }
    tbrdma_sqe to_q(uint32_t len, uint64_t wr_id)
    {
        auto m = msg(len, wr_id);
        m.ep = static_cast<uint32_t>(e);
        return m;
    }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(engine_srq_limit_fires_once_below_it, srq_fixture)
{
    // Three receives of one buffer, then two of two: 7 entries.
    for (uint32_t i = 0; i < 3; i++)
        s.post(i, &buf[100 * i], 100, key);
    for (uint32_t i = 3; i < 5; i++) {
        s.post(i, &buf[100 * i], 50, key, TBRDMA_RWQE_MORE);
        s.post(i, &buf[100 * i + 50], 50, key);
    }
    int fired = 0;
    auto reached = [](void *arg) { ++*static_cast<int *>(arg); };
    BOOST_TEST(tb_srq_arm(s.srq, 17, reached, &fired) == -EINVAL);
    BOOST_TEST(tb_srq_arm(s.srq, 1, nullptr, &fired) == -EINVAL);
    BOOST_REQUIRE_EQUAL(tb_srq_arm(s.srq, 3, reached, &fired), 0);
    BOOST_TEST(tb_srq_limit(s.srq) == 3u);
    auto one = [&](uint64_t wr_id) { BOOST_REQUIRE(p.run(*p.a, to_q(60, wr_id)).status == TBRDMA_WC_SUCCESS); };
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

BOOST_FIXTURE_TEST_CASE(engine_srq_reset_gives_the_receive_back, srq_fixture)
{
    s.post(7, buf.data(), uint32_t(buf.size()), key);
    s.post(8, buf.data(), 64, key);
    auto m = to_q(1 << 20, 1);
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
