// SPDX-License-Identifier: BSD-2-Clause
#include "engine_pair.hpp"

#include <cstring>
#include <stdexcept>

namespace tbtest {

engine_ctx::engine_ctx(tb_engine *engine, uint32_t cq_entries, uint32_t rq_entries,
                       uint32_t sq_depth, tb_pd *pd, uint32_t max_ep)
    : cq_mem_(cq_entries * sizeof(tbrdma_cqe)), rq_mem_(rq_entries * TBRDMA_RQE_SLOT)
{
    tb_ctx_config cc{};
    cc.pd = pd;
    cc.max_mr = 64;
    cc.max_ep = max_ep;
    cc.sq_depth = sq_depth;
    tb_qring_init(&cc.cq, &cq_ctrl_, cq_mem_.data(), cq_entries, sizeof(tbrdma_cqe));
    tb_qring_init(&cc.rq, &rq_ctrl_, rq_mem_.data(), rq_entries, TBRDMA_RQE_SLOT);
    cc.allow_raw_local = 1;
    if (tb_ctx_create(engine, &cc, &ctx))
        throw std::runtime_error("tb_ctx_create");
}

engine_ctx::~engine_ctx()
{
    tb_ctx_destroy(ctx, nullptr, nullptr);
}

uint64_t engine_ctx::reg(void *p, size_t len, uint32_t access)
{
    uint64_t key = 0;
    if (tb_mr_register(ctx, reinterpret_cast<uintptr_t>(p), len, access, p, nullptr, &key))
        throw std::runtime_error("tb_mr_register");
    return key;
}

std::vector<tbrdma_cqe> drain_completions(tbrdma_ring_ctrl &ctrl, const std::vector<uint8_t> &mem)
{
    std::vector<tbrdma_cqe> out;
    uint32_t prod = __atomic_load_n(&ctrl.producer, __ATOMIC_ACQUIRE);
    uint32_t cons = ctrl.consumer;
    for (; cons != prod; cons++) {
        tbrdma_cqe c;
        std::memcpy(&c, mem.data() + (cons & (ctrl.entries - 1)) * sizeof(c), sizeof(c));
        out.push_back(c);
    }
    __atomic_store_n(&ctrl.consumer, cons, __ATOMIC_RELEASE);
    return out;
}

std::vector<tbrdma_cqe> engine_ctx::drain_cq()
{
    return drain_completions(cq_ctrl_, cq_mem_);
}

const tbrdma_rqe *engine_ctx::rq_peek()
{
    uint32_t prod = __atomic_load_n(&rq_ctrl_.producer, __ATOMIC_ACQUIRE);
    if (prod == rq_ctrl_.consumer)
        return nullptr;
    return reinterpret_cast<const tbrdma_rqe *>(
        rq_mem_.data() + (rq_ctrl_.consumer & (rq_ctrl_.entries - 1)) * TBRDMA_RQE_SLOT);
}

void engine_ctx::rq_release()
{
    __atomic_store_n(&rq_ctrl_.consumer, rq_ctrl_.consumer + 1, __ATOMIC_RELEASE);
}

engine_host::engine_host(mem_cable_end &end, uint32_t cq_entries, uint32_t rq_entries,
                         uint32_t sq_depth, const tb_link_config *lcfg)
    : end_(end)
{
    tb_engine_config ecfg;
    tb_engine_config_default(&ecfg);
    ecfg.msn_window = 256;
    if (tb_engine_create(&engine, &ecfg))
        throw std::runtime_error("tb_engine_create");
    tb_link_config_default(&link_cfg_);
    if (lcfg)
        link_cfg_ = *lcfg;
    if (tb_link_init(&link, &link_cfg_, &mem_cable_end::ops, &end, &tb_engine_link_ops, engine))
        throw std::runtime_error("tb_link_init");
    link_index = tb_engine_add_link(engine, &link);
    own_ = std::make_unique<engine_ctx>(engine, cq_entries, rq_entries, sq_depth);
    ctx = own_->ctx;
}

engine_host::~engine_host()
{
    own_.reset();
    tb_engine_remove_link(engine, &link);
    tb_link_destroy(&link);
    tb_engine_destroy(engine);
}

int engine_host::relink(bool unplug)
{
    if (unplug)
        tb_engine_unplug_link(engine, &link);
    else
        tb_engine_remove_link(engine, &link);
    tb_link_destroy(&link);
    if (tb_link_init(&link, &link_cfg_, &mem_cable_end::ops, &end_, &tb_engine_link_ops, engine))
        throw std::runtime_error("tb_link_init");
    return link_index = tb_engine_add_link(engine, &link);
}

engine_pair::engine_pair(uint64_t seed, size_t slots, const tb_link_config *lcfg)
    : ca(slots, seed), cb(slots, seed * 7919 + 1), now_ns(tb_now_ns())
{
    ca.connect(&cb);
    cb.connect(&ca);
    a = std::make_unique<engine_host>(ca, 1024, 64, 256, lcfg);
    b = std::make_unique<engine_host>(cb, 1024, 64, 256, lcfg);
    now_ns = tb_now_ns();
}

void engine_pair::step()
{
    int n = tb_engine_progress(a->engine, now_ns);
    n += tb_engine_progress(b->engine, now_ns);
    // Idle: jump the virtual clock to the next timer so lost frames are
    // resent without waiting in real time.
    now_ns += n ? 1000 : 1000000;
}

bool engine_pair::relink(bool unplug)
{
    int ia = a->link_index, ib = b->link_index;
    if (a->relink(unplug) != ia || b->relink(unplug) != ib)
        return false;
    return pump_until([&] {
        return a->link.state == TBRDMA_LINK_UP && b->link.state == TBRDMA_LINK_UP;
    });
}

tbrdma_cqe engine_pair::run(engine_host &h, const tbrdma_sqe &sqe)
{
    int ret = tb_post(h.ctx, &sqe);
    if (ret)
        throw std::runtime_error("tb_post failed: " + std::to_string(ret));
    std::vector<tbrdma_cqe> got;
    pump_until([&] {
        auto v = h.drain_cq();
        got.insert(got.end(), v.begin(), v.end());
        return !got.empty();
    });
    if (got.size() != 1)
        throw std::runtime_error("expected one completion, got " + std::to_string(got.size()));
    return got[0];
}

tbrdma_sqe make_sqe(uint8_t op, int ep, uint64_t wr_id)
{
    tbrdma_sqe s{};
    s.opcode = op;
    s.ep = static_cast<uint32_t>(ep);
    s.wr_id = wr_id;
    return s;
}

}  // namespace tbtest
