// SPDX-License-Identifier: BSD-2-Clause
//
// Two processes over a soft cable that loses, duplicates and reorders 1%
// of the frames in each direction: every operation completes exactly once
// with the right data, and the link protocol really had to resend.
#include <boost/test/unit_test.hpp>

#include <set>

#include "soft_device.hpp"
#include "soft_target.hpp"

using namespace tbtest;

BOOST_AUTO_TEST_SUITE(loss)

BOOST_AUTO_TEST_CASE(one_percent_loss_dup_reorder_between_processes,
                     *boost::unit_test::precondition(soft_only))
{
    tb::soft_link_options bad;
    bad.loss = 0.01;
    bad.dup = 0.01;
    bad.reorder = 0.01;
    std::string fabric = unique_fabric("loss");
    target_options o;
    o.fabric = fabric;
    o.buf_len = 4u << 20;
    o.soft = bad;
    target_handle target(o);
    auto dev = open_soft(fabric, bad);
    int ep = dev->create_ep(0, target.buf.ctx, target.buf.secret);
    BOOST_REQUIRE_GE(ep, 0);
    target.proc.chan().send(command{cmd::recv_check, 0, 500, 0});

    std::vector<uint8_t> src(4u << 20), back(4u << 20);
    fill(src.data(), src.size(), 5);
    uint64_t sk = dev.dev->reg_mr(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    uint64_t bk = dev.dev->reg_mr(back.data(), back.size(), TBRDMA_ACCESS_LOCAL);
    std::set<uint64_t> seen;
    uint64_t sum_fetched = 0, atomics = 0, sends = 0;
    const uint64_t n = 2000;
    std::vector<uint8_t> msg(TBRDMA_SEND_MAX);
    tbrdma_cqe cq[64];
    for (uint64_t i = 0; i < n;) {
        tbrdma_sqe s{};
        s.ep = static_cast<uint32_t>(ep);
        s.wr_id = i;
        uint64_t off = (i * 7919) % (src.size() - 70000);
        switch (i % 4) {
        case 0:
        case 1:
            s.opcode = i % 4 ? TBRDMA_OP_READ : TBRDMA_OP_WRITE;
            s.local_addr = reinterpret_cast<uintptr_t>((i % 4 ? back : src).data() + off);
            s.lkey = i % 4 ? bk : sk;
            s.length = static_cast<uint32_t>(1 + (i * 131) % 65536);
            s.remote_addr = target.buf.addr + off;
            s.rkey = target.buf.key;
            break;
        case 2:
            s.opcode = TBRDMA_OP_ATOMIC;
            s.atomic_op = TBRDMA_ATOMIC_ADD;
            s.atomic_size = 8;
            s.operand = 1;
            s.remote_addr = target.buf.addr + 8;  // the counter
            s.rkey = target.buf.key;
            break;
        default:
            if (sends == 500) {
                s.opcode = TBRDMA_OP_FLUSH;
                break;
            }
            s.opcode = TBRDMA_OP_SEND;
            s.flags = TBRDMA_SQE_INLINE;
            s.imm = sends;
            s.am_id = static_cast<uint32_t>(sends % 64);
            s.length = static_cast<uint32_t>(sends % (TBRDMA_INLINE_MAX + 1));
            fill(s.inline_data, s.length, sends);
            break;
        }
        // Writes must not touch the counter the atomics use.
        if (s.opcode == TBRDMA_OP_WRITE && s.remote_addr < target.buf.addr + 16) {
            s.remote_addr += 16;
            s.local_addr += 16;
        }
        if (dev->post(&s, 1) == 1) {
            i++;
            atomics += s.opcode == TBRDMA_OP_ATOMIC;
            sends += s.opcode == TBRDMA_OP_SEND;
        }
        unsigned k = dev->poll_cq(cq, 64);
        for (unsigned j = 0; j < k; j++) {
            BOOST_REQUIRE_EQUAL(cq[j].status, TBRDMA_WC_SUCCESS);
            BOOST_REQUIRE(seen.insert(cq[j].wr_id).second);
            if (cq[j].opcode == TBRDMA_OP_ATOMIC)
                sum_fetched += cq[j].result;
        }
    }
    auto rest = wait_cq(*dev.ctx, n - seen.size(), 120000);
    for (auto &c : rest) {
        BOOST_REQUIRE_EQUAL(c.status, TBRDMA_WC_SUCCESS);
        BOOST_REQUIRE(seen.insert(c.wr_id).second);
        if (c.opcode == TBRDMA_OP_ATOMIC)
            sum_fetched += c.result;
    }
    BOOST_TEST(seen.size() == n);
    // The counter started at 0: fetched values are 0..atomics-1 exactly.
    // First the answer to recv_check: 500 sends in order, none wrong.
    BOOST_TEST(target.proc.chan().recv<uint64_t>(120000) == 0u);
    BOOST_TEST(target.ask(cmd::load64, 8) == atomics);
    BOOST_TEST(sum_fetched == atomics * (atomics - 1) / 2);
    // Every byte a read brought back is what a write put there.
    size_t bad_bytes = 0;
    for (size_t i = 16; i < back.size(); i++)
        bad_bytes += back[i] != 0 && back[i] != src[i];
    BOOST_TEST(bad_bytes == 0u);
    // The cable really lost frames and the link really resent them.
    auto *soft = dynamic_cast<tb::soft_device *>(dev.dev.get());
    BOOST_REQUIRE(soft);
    auto st = soft->stats();
    BOOST_TEST_MESSAGE("retransmits " << st.link.retransmits << ", timeouts " << st.link.timeouts
                       << ", duplicates seen " << st.link.rx_dup);
    BOOST_TEST(st.link.retransmits > 0u);
    BOOST_TEST(target.finish() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
