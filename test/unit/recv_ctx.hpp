// SPDX-License-Identifier: BSD-2-Clause
//
// A context of an engine with posted receives (tb_recv.c) and the rings
// in this process, for the unit tests.
#pragma once

#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine_pair.hpp"

namespace tbtest {

// n bytes drawn from seed, for data checks.
inline std::vector<uint8_t> pattern(size_t n, uint32_t seed)
{
    std::vector<uint8_t> v(n);
    std::mt19937 rng(seed);
    for (auto &x : v)
        x = static_cast<uint8_t>(rng());
    return v;
}

// Both directions of p's cable lose, duplicate and reorder 2% of frames.
inline void make_cable_bad(engine_pair &p)
{
    cable_faults f;
    f.loss = 0.02;
    f.dup = 0.02;
    f.reorder = 0.02;
    p.ca.set_faults(f);
    p.cb.set_faults(f);
}

// A shared receive queue with its ring in this process.
class srq_ring {
public:
    srq_ring(tb_engine *engine, tb_pd *pd, uint32_t entries)
        : mem_(entries * sizeof(tbrdma_rwqe))
    {
        tb_qring r;
        tb_qring_init(&r, &ctrl_, mem_.data(), entries, sizeof(tbrdma_rwqe));
        if (tb_srq_create(engine, pd, &r, &srq))
            throw std::runtime_error("tb_srq_create");
    }
    ~srq_ring() { tb_srq_destroy(srq); }
    srq_ring(const srq_ring &) = delete;
    srq_ring &operator=(const srq_ring &) = delete;

    // flags: TBRDMA_RWQE_MORE for an entry a run goes on after.
    void post(uint64_t wr_id, void *p, uint32_t len, uint64_t key, uint32_t flags = 0)
    {
        tbrdma_rwqe w{wr_id, reinterpret_cast<uintptr_t>(p), key, len, flags};
        std::memcpy(mem_.data() + (posted_ & (ctrl_.entries - 1)) * sizeof(w), &w, sizeof(w));
        __atomic_store_n(&ctrl_.producer, ++posted_, __ATOMIC_RELEASE);
    }
    uint32_t taken() const { return __atomic_load_n(&ctrl_.consumer, __ATOMIC_ACQUIRE); }

    tb_srq *srq = nullptr;

private:
    std::vector<uint8_t> mem_;
    tbrdma_ring_ctrl ctrl_{};
    uint32_t posted_ = 0;
};

// A context whose messages land in posted receives; admit_bound: it
// admits its bound peer (tb_ctx_bind()) instead of by secret, as a verbs
// queue pair; tweak changes the rest of its configuration.
class recv_ctx {
public:
    explicit recv_ctx(tb_engine *engine, uint32_t rwq_entries = 64, uint32_t rcq_entries = 64,
                      bool admit_bound = false,
                      const std::function<void(tb_ctx_config &)> &tweak = {})
        : cq_mem_(64 * sizeof(tbrdma_cqe)), rwq_mem_(rwq_entries * sizeof(tbrdma_rwqe)),
          rcq_mem_(rcq_entries * sizeof(tbrdma_cqe))
    {
        tb_ctx_config cc{};
        cc.max_mr = 64;
        cc.max_ep = 16;
        cc.sq_depth = 64;
        cc.admit_bound = admit_bound;
        tb_qring_init(&cc.cq, &cq_ctrl_, cq_mem_.data(), 64, sizeof(tbrdma_cqe));
        tb_qring_init(&cc.rwq, &rwq_ctrl_, rwq_mem_.data(), rwq_entries, sizeof(tbrdma_rwqe));
        tb_qring_init(&cc.rcq, &rcq_ctrl_, rcq_mem_.data(), rcq_entries, sizeof(tbrdma_cqe));
        if (tweak)
            tweak(cc);
        if (int ret = tb_ctx_create(engine, &cc, &ctx))
            throw std::runtime_error("tb_ctx_create: " + std::to_string(ret));
    }
    ~recv_ctx() { tb_ctx_destroy(ctx, nullptr, nullptr); }
    recv_ctx(const recv_ctx &) = delete;
    recv_ctx &operator=(const recv_ctx &) = delete;

    uint64_t reg(void *p, size_t len, uint32_t access = TBRDMA_ACCESS_LOCAL)
    {
        uint64_t key = 0;
        if (tb_mr_register(ctx, reinterpret_cast<uintptr_t>(p), len, access, p, nullptr, &key))
            throw std::runtime_error("tb_mr_register");
        return key;
    }
    // Posts a receive into [p, p + len) of region key, as the owner does.
    void post(uint64_t wr_id, void *p, uint32_t len, uint64_t key)
    {
        post_entries({tbrdma_rwqe{wr_id, reinterpret_cast<uintptr_t>(p), key, len, 0}});
    }
    // Posts entries as they are (a run of one receive's buffers, flagged
    // TBRDMA_RWQE_MORE, or anything else), published at once.
    void post_entries(const std::vector<tbrdma_rwqe> &entries)
    {
        for (const auto &w : entries)
            std::memcpy(rwq_mem_.data() + (posted_++ & (rwq_ctrl_.entries - 1)) * sizeof(w), &w,
                        sizeof(w));
        __atomic_store_n(&rwq_ctrl_.producer, posted_, __ATOMIC_RELEASE);
    }
    std::vector<tbrdma_cqe> drain_cq() { return drain_completions(cq_ctrl_, cq_mem_); }
    std::vector<tbrdma_cqe> drain_rcq() { return drain_completions(rcq_ctrl_, rcq_mem_); }
    // Receives the engine took (the owner may post into their entries).
    uint32_t taken() const { return __atomic_load_n(&rwq_ctrl_.consumer, __ATOMIC_ACQUIRE); }

    tb_ctx *ctx = nullptr;

private:
    std::vector<uint8_t> cq_mem_, rwq_mem_, rcq_mem_;
    tbrdma_ring_ctrl cq_ctrl_{}, rwq_ctrl_{}, rcq_ctrl_{};
    uint32_t posted_ = 0;
};

// Pumps p until r has n receive completions (or p gives up); returns them.
inline std::vector<tbrdma_cqe> receive(engine_pair &p, recv_ctx &r, size_t n = 1,
                                       int max_rounds = 200000)
{
    std::vector<tbrdma_cqe> got;
    p.pump_until([&] {
        auto v = r.drain_rcq();
        got.insert(got.end(), v.begin(), v.end());
        return got.size() >= n;
    }, max_rounds);
    return got;
}

}  // namespace tbtest
