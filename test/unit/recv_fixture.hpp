// SPDX-License-Identifier: BSD-2-Clause
//
// A fixture for the tests of posted receives: a's context sends MSGs from
// a registered pattern to rb, a context of b's engine with posted
// receives.
#pragma once

#include <vector>

#include "pair_fixture.hpp"
#include "recv_ctx.hpp"

namespace tbtest {

struct recv_fixture : pair_fixture {
    recv_ctx rb{p.b->engine};
    std::vector<uint8_t> src = pattern(1 << 20, 7);
    uint64_t sk = p.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    int ep = p.a->ep_to(tb_ctx_id(rb.ctx), tb_ctx_secret(rb.ctx));

    tbrdma_sqe msg(uint32_t len, uint64_t wr_id, uint64_t imm = 0, uint32_t off = 0) const
    {
        auto s = make_sqe(TBRDMA_OP_MSG, ep, wr_id);
        s.local_addr = reinterpret_cast<uintptr_t>(src.data() + off);
        s.lkey = sk;
        s.length = len;
        s.imm = imm;
        if (imm)
            s.flags = TBRDMA_SQE_IMM;
        return s;
    }
    int post(const tbrdma_sqe &s) { return tb_post(p.a->ctx, &s); }
    // Pumps until the receiver has n receive completions and a's CQ n
    // others; returns the receive completions.
    std::vector<tbrdma_cqe> deliver(size_t n, std::vector<tbrdma_cqe> &sent)
    {
        std::vector<tbrdma_cqe> got;
        p.pump_until([&] {
            auto r = rb.drain_rcq();
            got.insert(got.end(), r.begin(), r.end());
            auto s = p.a->drain_cq();
            sent.insert(sent.end(), s.begin(), s.end());
            return got.size() >= n && sent.size() >= n;
        });
        return got;
    }
};

}  // namespace tbtest
