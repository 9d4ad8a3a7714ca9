// SPDX-License-Identifier: BSD-2-Clause
//
// Two engines in one process joined by a mem_cable: the engine and link
// protocol without processes or shared memory, driven step by step.
#pragma once

#include <memory>
#include <vector>

#include "mem_cable.hpp"

extern "C" {
#include "tb_engine.h"
}

namespace tbtest {

// Takes every completion the engine published in a ring of this process.
std::vector<tbrdma_cqe> drain_completions(tbrdma_ring_ctrl &ctrl, const std::vector<uint8_t> &mem);

// A context of an engine with its completion and receive rings in this
// process.
class engine_ctx {
public:
    // pd: a domain to share, or nullptr for one of the context's own.
    explicit engine_ctx(tb_engine *engine, uint32_t cq_entries = 1024, uint32_t rq_entries = 64,
                        uint32_t sq_depth = 256, tb_pd *pd = nullptr, uint32_t max_ep = 16);
    ~engine_ctx();
    engine_ctx(const engine_ctx &) = delete;
    engine_ctx &operator=(const engine_ctx &) = delete;

    uint64_t reg(void *p, size_t len, uint32_t access);
    std::vector<tbrdma_cqe> drain_cq();
    // The oldest received message, nullptr if none.
    const tbrdma_rqe *rq_peek();
    void rq_release();
    uint32_t id() const { return tb_ctx_id(ctx); }
    uint64_t secret() const { return tb_ctx_secret(ctx); }

    tb_ctx *ctx = nullptr;

private:
    std::vector<uint8_t> cq_mem_, rq_mem_;
    tbrdma_ring_ctrl cq_ctrl_{}, rq_ctrl_{};
};

// An engine with one link and one context.
class engine_host {
public:
    engine_host(mem_cable_end &end, uint32_t cq_entries = 1024, uint32_t rq_entries = 64,
                uint32_t sq_depth = 256, const tb_link_config *lcfg = nullptr);
    ~engine_host();
    engine_host(const engine_host &) = delete;
    engine_host &operator=(const engine_host &) = delete;

    uint64_t reg(void *p, size_t len, uint32_t access) { return own_->reg(p, len, access); }
    // Endpoint to the peer's context, with its secret (as UCX's address
    // hands it over), or to any id and secret.
    int ep_to(const engine_host &peer) { return ep_to(peer.id(), peer.secret()); }
    int ep_to(uint32_t remote_ctx, uint64_t secret)
    {
        return tb_ep_create(ctx, link_index, remote_ctx, secret);
    }
    std::vector<tbrdma_cqe> drain_cq() { return own_->drain_cq(); }
    const tbrdma_rqe *rq_peek() { return own_->rq_peek(); }
    void rq_release() { own_->rq_release(); }
    uint32_t id() const { return own_->id(); }
    uint64_t secret() const { return own_->secret(); }
    // The link goes (with unplug, as tb_engine_unplug_link() leaves it)
    // and a fresh one on the same cable end is added; its slot index.
    int relink(bool unplug);

    tb_engine *engine = nullptr;
    tb_ctx *ctx = nullptr;
    tb_link link{};
    int link_index = -1;

private:
    mem_cable_end &end_;
    tb_link_config link_cfg_{};
    std::unique_ptr<engine_ctx> own_;
};

struct engine_pair {
    explicit engine_pair(uint64_t seed = 1, size_t slots = 64, const tb_link_config *lcfg = nullptr);

    // Runs both engines until pred() holds or max_rounds pass; also fires
    // timers by advancing a virtual clock when nothing moves.
    template <class Pred> bool pump_until(Pred pred, int max_rounds = 200000)
    {
        for (int i = 0; i < max_rounds; i++) {
            if (pred())
                return true;
            step();
        }
        return pred();
    }
    void step();
    // The cable's links go and come back (a re-login, a loop's cable
    // plugged in again: ca.plug() first; unplug as for
    // engine_host::relink()); whether both are up again in the slots they
    // had.
    bool relink(bool unplug);
    // Posts one operation, waits for its completion on a.
    tbrdma_cqe run(engine_host &h, const tbrdma_sqe &sqe);

    mem_cable_end ca, cb;
    std::unique_ptr<engine_host> a, b;
    uint64_t now_ns;
};

tbrdma_sqe make_sqe(uint8_t op, int ep, uint64_t wr_id);

}  // namespace tbtest
