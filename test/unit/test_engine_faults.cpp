// SPDX-License-Identifier: BSD-2-Clause
//
// The engine over a bad cable: with loss, duplication, reordering (and
// corruption) injected, every operation completes exactly once with the
// right data, and an atomic counter is exact.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <map>
#include <random>

#include "engine_pair.hpp"

using namespace tbtest;

namespace {

void mixed_traffic(const cable_faults &f, uint64_t seed, int ops)
{
    engine_pair p(seed);
    p.ca.set_faults(f);
    p.cb.set_faults(f);
    int ep = p.a->ep_to(*p.b);
    BOOST_REQUIRE_GE(ep, 0);

    std::vector<uint8_t> src(1 << 20), dst(1 << 20, 0), back(1 << 20, 0);
    std::mt19937 rng(static_cast<uint32_t>(seed));
    for (auto &x : src)
        x = static_cast<uint8_t>(rng());
    alignas(8) uint64_t counter = 0;
    uint64_t sk = p.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    uint64_t bk = p.a->reg(back.data(), back.size(), TBRDMA_ACCESS_LOCAL);
    uint64_t dk = p.b->reg(dst.data(), dst.size(), TBRDMA_ACCESS_ALL);
    uint64_t ck = p.b->reg(&counter, sizeof(counter), TBRDMA_ACCESS_ALL);

    std::map<uint64_t, uint8_t> expect_op;
    std::map<uint64_t, int> seen;
    int posted = 0, sends_rx = 0, sends_tx = 0;
    uint64_t fetched_sum = 0;
    size_t completed = 0;
    while (posted < ops || completed < expect_op.size()) {
        if (posted < ops) {
            auto s = make_sqe(0, ep, static_cast<uint64_t>(posted));
            uint32_t off = (rng() % 1024) * 1024 + rng() % 7;
            uint32_t len = 1 + rng() % 20000;
            switch (posted % 4) {
            case 0:
                s.opcode = TBRDMA_OP_WRITE;
                break;
            case 1:
                s.opcode = TBRDMA_OP_READ;
                break;
            case 2:
                s.opcode = TBRDMA_OP_ATOMIC;
                s.atomic_op = TBRDMA_ATOMIC_ADD;
                s.atomic_size = 8;
                s.operand = 1;
                s.remote_addr = reinterpret_cast<uintptr_t>(&counter);
                s.rkey = ck;
                break;
            default:
                s.opcode = TBRDMA_OP_SEND;
                s.imm = static_cast<uint64_t>(sends_tx);
                len = rng() % TBRDMA_SEND_MAX;
                break;
            }
            if (off + len > src.size())
                len = static_cast<uint32_t>(src.size()) - off;
            if (s.opcode == TBRDMA_OP_WRITE || s.opcode == TBRDMA_OP_SEND) {
                s.local_addr = reinterpret_cast<uintptr_t>(src.data() + off);
                s.lkey = sk;
            } else if (s.opcode == TBRDMA_OP_READ) {
                s.local_addr = reinterpret_cast<uintptr_t>(back.data() + off);
                s.lkey = bk;
            }
            if (s.opcode == TBRDMA_OP_WRITE || s.opcode == TBRDMA_OP_READ) {
                s.remote_addr = reinterpret_cast<uintptr_t>(dst.data() + off);
                s.rkey = dk;
            }
            if (s.opcode != TBRDMA_OP_ATOMIC)
                s.length = len;
            int ret = tb_post(p.a->ctx, &s);
            if (ret == 0) {
                expect_op[s.wr_id] = s.opcode;
                if (s.opcode == TBRDMA_OP_SEND)
                    sends_tx++;
                posted++;
            } else {
                BOOST_REQUIRE_EQUAL(ret, -EAGAIN);
            }
        }
        p.step();
        for (auto &c : p.a->drain_cq()) {
            BOOST_REQUIRE_EQUAL(c.status, TBRDMA_WC_SUCCESS);
            BOOST_REQUIRE_EQUAL(c.opcode, expect_op.at(c.wr_id));
            BOOST_REQUIRE_EQUAL(++seen[c.wr_id], 1);
            if (c.opcode == TBRDMA_OP_ATOMIC)
                fetched_sum += c.result;
            completed++;
        }
        while (const tbrdma_rqe *r = p.b->rq_peek()) {
            BOOST_REQUIRE_EQUAL(r->imm, static_cast<uint64_t>(sends_rx));
            sends_rx++;
            p.b->rq_release();
        }
    }
    // Every write landed and every read brought back what was there: since
    // all writes copy src at the same offsets, both must match src.
    for (auto &[id, op] : expect_op)
        (void)id, (void)op;
    BOOST_TEST(counter == static_cast<uint64_t>(ops / 4));
    // Fetched values are 0..n-1 in some order: their sum is exact.
    uint64_t n = counter;
    BOOST_TEST(fetched_sum == n * (n - 1) / 2);
    BOOST_TEST(sends_rx == sends_tx);
    BOOST_TEST(completed == static_cast<size_t>(ops));
    size_t bad = 0;
    for (size_t i = 0; i < dst.size(); i++)
        if (dst[i] != 0 && dst[i] != src[i])
            bad++;
    BOOST_TEST(bad == 0u);
    for (size_t i = 0; i < back.size(); i++)
        if (back[i] != 0 && back[i] != src[i] && back[i] != 0)
            bad++;
    BOOST_TEST(bad == 0u);
    if (f.loss > 0)
        BOOST_TEST(p.a->link.stats.retransmits + p.b->link.stats.retransmits > 0u);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine_faults)

BOOST_AUTO_TEST_CASE(clean_cable)
{
    mixed_traffic(cable_faults{}, 11, 2000);
}

BOOST_AUTO_TEST_CASE(one_percent_loss_dup_reorder)
{
    mixed_traffic(cable_faults{0.01, 0.01, 0.01, 0}, 12, 2000);
}

BOOST_AUTO_TEST_CASE(ten_percent_loss)
{
    mixed_traffic(cable_faults{0.10, 0, 0, 0}, 13, 600);
}

BOOST_AUTO_TEST_CASE(corruption_never_loses_an_operation)
{
    // USB4 drops frames with CRC errors in hardware, so on a real cable
    // corruption shows up as loss. Here bits are flipped anyway, to show
    // that whatever a corrupted frame does (a NAK, a protocol error that
    // takes the link down), every operation still completes exactly once.
    engine_pair p(14);
    cable_faults f{};
    f.corrupt = 0.02;
    p.ca.set_faults(f);
    p.cb.set_faults(f);
    int ep = p.a->ep_to(*p.b);
    alignas(8) uint64_t counter = 0;
    uint64_t ck = p.b->reg(&counter, sizeof(counter), TBRDMA_ACCESS_ALL);
    std::map<uint64_t, int> seen;
    uint64_t posted = 0;
    size_t done = 0;
    while (posted < 500 || done < posted) {
        if (posted < 500 && p.a->link.state != TBRDMA_LINK_DOWN) {
            auto s = make_sqe(TBRDMA_OP_ATOMIC, ep, posted);
            s.atomic_op = TBRDMA_ATOMIC_ADD;
            s.atomic_size = 8;
            s.operand = 1;
            s.remote_addr = reinterpret_cast<uintptr_t>(&counter);
            s.rkey = ck;
            if (tb_post(p.a->ctx, &s) == 0)
                posted++;
        } else if (posted < 500) {
            break;
        }
        p.step();
        for (auto &c : p.a->drain_cq()) {
            BOOST_REQUIRE_EQUAL(++seen[c.wr_id], 1);
            done++;
        }
    }
    p.pump_until([&] {
        for (auto &c : p.a->drain_cq()) {
            BOOST_REQUIRE_EQUAL(++seen[c.wr_id], 1);
            done++;
        }
        return done == posted;
    });
    BOOST_TEST(done == posted);
    BOOST_TEST(p.a->link.stats.rx_bad + p.b->link.stats.rx_bad > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
