// SPDX-License-Identifier: BSD-2-Clause
//
// tb-engine-bench: what the engine itself costs. Two engines in this
// process, one thread, joined by an in-memory cable that hands frames over
// the way a DMA ring does (the frame's bytes land in the peer's receive
// descriptor; an ext buffer is seen where it lies, as the controller reads
// it from registered memory without the CPU). Every nanosecond measured is
// engine and link work: the initiator's TX, the target's RX and execution,
// the acknowledgement and the completion, both sides included.
//
//   tb-engine-bench [--seconds S] [--csv FILE] [--only OP]
//
// Prints nanoseconds per 8-byte WRITE, READ, ATOMIC and SEND against the
// 500 ns budget, and GB/s of 1 MiB WRITE and READ against memcpy of the same
// bytes (budget: half of memcpy's speed). The budget applies with 32 in
// flight, where each operation carries all of its own work and none of the
// idle polling between round trips; one in flight is shown beside it.
// --only OP (WRITE, READ, ATOMIC, SEND, WRITE-1M, READ-1M) runs one
// measurement, to profile it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {
#include "tb_engine.h"
}

namespace {

// One direction of the cable: the receiving end's descriptors.
class cable_end {
public:
    explicit cable_end(uint32_t slots) : ring_(slots) {}
    void connect(cable_end *peer) noexcept { peer_ = peer; }

    static const tb_phy_ops ops;

private:
    struct desc {
        uint32_t len = 0;
        const void *ext = nullptr;
        uint32_t ext_len = 0;
        alignas(8) uint8_t frame[TBRDMA_FRAME_MAX];
    };

    static int xmit(void *phy, const void *frame, uint32_t len, const tb_link_ext *ext) noexcept
    {
        auto *peer = static_cast<cable_end *>(phy)->peer_;
        if (peer->tail_ - peer->head_ == peer->ring_.size())
            return -EAGAIN;  // no free receive descriptor: the link sends it later
        desc &d = peer->ring_[peer->tail_ % peer->ring_.size()];
        std::memcpy(d.frame, frame, len);
        d.len = len;
        d.ext = ext ? ext->data : nullptr;
        d.ext_len = ext ? ext->len : 0;
        peer->tail_++;
        return 0;
    }

    static int rx_peek(void *phy, tb_phy_rx *rx) noexcept
    {
        auto *self = static_cast<cable_end *>(phy);
        if (self->head_ == self->tail_)
            return 0;
        const desc &d = self->ring_[self->head_ % self->ring_.size()];
        rx->frame = d.frame;
        rx->len = d.len;
        rx->ext = d.ext;
        rx->ext_len = d.ext_len;
        return 1;
    }

    static void rx_release(void *phy) noexcept { static_cast<cable_end *>(phy)->head_++; }

    std::vector<desc> ring_;
    size_t head_ = 0, tail_ = 0;
    cable_end *peer_ = nullptr;
};

const tb_phy_ops cable_end::ops = {&cable_end::xmit, &cable_end::rx_peek, &cable_end::rx_release,
                                   TB_EXT_MAX};

constexpr uint32_t ring_entries = 1024;

// An engine with one link, one context and its rings.
class host {
public:
    explicit host(cable_end &end)
        : cq_(ring_entries * sizeof(tbrdma_cqe)), rq_(ring_entries * size_t(TBRDMA_RQE_SLOT))
    {
        tb_engine_config ecfg;
        tb_engine_config_default(&ecfg);
        if (tb_engine_create(&engine, &ecfg))
            throw std::runtime_error("tb_engine_create failed");
        tb_link_config lcfg;
        tb_link_config_default(&lcfg);
        if (tb_link_init(&link, &lcfg, &cable_end::ops, &end, &tb_engine_link_ops, engine))
            throw std::runtime_error("tb_link_init failed");
        link_index = tb_engine_add_link(engine, &link);
        tb_ctx_config cc{};
        cc.max_mr = 16;
        cc.max_ep = 4;
        cc.sq_depth = 256;
        tb_qring_init(&cc.cq, &cq_ctrl_, cq_.data(), ring_entries, sizeof(tbrdma_cqe));
        tb_qring_init(&cc.rq, &rq_ctrl_, rq_.data(), ring_entries, TBRDMA_RQE_SLOT);
        if (tb_ctx_create(engine, &cc, &ctx))
            throw std::runtime_error("tb_ctx_create failed");
    }
    ~host()
    {
        tb_ctx_destroy(ctx, nullptr, nullptr);
        tb_engine_remove_link(engine, &link);
        tb_link_destroy(&link);
        tb_engine_destroy(engine);
    }
    host(const host &) = delete;
    host &operator=(const host &) = delete;

    uint64_t reg(void *p, size_t len)
    {
        uint64_t key = 0;
        if (tb_mr_register(ctx, reinterpret_cast<uintptr_t>(p), len, TBRDMA_ACCESS_ALL, p,
                           nullptr, &key))
            throw std::runtime_error("tb_mr_register failed");
        return key;
    }

    // Takes what the completion ring holds; the number of entries, and
    // whether all were successes.
    uint32_t reap(bool &ok)
    {
        uint32_t prod = __atomic_load_n(&cq_ctrl_.producer, __ATOMIC_ACQUIRE);
        uint32_t n = prod - cq_ctrl_.consumer;
        for (uint32_t c = cq_ctrl_.consumer; c != prod; c++) {
            auto *e = reinterpret_cast<const tbrdma_cqe *>(cq_.data() +
                                                           (c % ring_entries) * sizeof(tbrdma_cqe));
            ok = ok && e->status == TBRDMA_WC_SUCCESS;
        }
        __atomic_store_n(&cq_ctrl_.consumer, prod, __ATOMIC_RELEASE);
        return n;
    }

    // Consumes received messages, as an application would; their number.
    uint32_t drain_rq()
    {
        uint32_t prod = __atomic_load_n(&rq_ctrl_.producer, __ATOMIC_ACQUIRE);
        uint32_t n = prod - rq_ctrl_.consumer;
        __atomic_store_n(&rq_ctrl_.consumer, prod, __ATOMIC_RELEASE);
        return n;
    }

    tb_engine *engine = nullptr;
    tb_ctx *ctx = nullptr;
    tb_link link{};
    int link_index = -1;

private:
    std::vector<uint8_t> cq_, rq_;
    tbrdma_ring_ctrl cq_ctrl_{}, rq_ctrl_{};
};

struct pair {
    cable_end ca{256}, cb{256};
    std::unique_ptr<host> a, b;
    int ep = -1;

    pair()
    {
        ca.connect(&cb);
        cb.connect(&ca);
        a = std::make_unique<host>(ca);
        b = std::make_unique<host>(cb);
        for (int i = 0; i < 1000000 && !(up(*a) && up(*b)); i++)
            step();
        if (!(up(*a) && up(*b)))
            throw std::runtime_error("the link did not come up");
        ep = tb_ep_create(a->ctx, a->link_index, tb_ctx_id(b->ctx), tb_ctx_secret(b->ctx));
        if (ep < 0)
            throw std::runtime_error("tb_ep_create failed");
    }
    static bool up(const host &h) { return h.link.state == TBRDMA_LINK_UP; }
    void step()
    {
        uint64_t now = tb_now_ns();
        tb_engine_progress(a->engine, now);
        tb_engine_progress(b->engine, now);
        b->drain_rq();
    }
};

struct op_kind {
    const char *name;
    uint8_t opcode;
};

const op_kind small_ops[] = {
    {"WRITE", TBRDMA_OP_WRITE},
    {"READ", TBRDMA_OP_READ},
    {"ATOMIC", TBRDMA_OP_ATOMIC},
    {"SEND", TBRDMA_OP_SEND},
};

struct buffers {
    std::vector<uint8_t> local, remote;
    uint64_t lkey, rkey;
    buffers(pair &p, size_t len) : local(len, 1), remote(len, 2)
    {
        lkey = p.a->reg(local.data(), len);
        rkey = p.b->reg(remote.data(), len);
    }
};

tbrdma_sqe make_op(const pair &p, const buffers &buf, uint8_t opcode, uint32_t len)
{
    tbrdma_sqe s{};
    s.opcode = opcode;
    s.ep = static_cast<uint32_t>(p.ep);
    s.local_addr = reinterpret_cast<uintptr_t>(buf.local.data());
    s.lkey = buf.lkey;
    s.remote_addr = reinterpret_cast<uintptr_t>(buf.remote.data());
    s.rkey = buf.rkey;
    s.length = len;
    if (opcode == TBRDMA_OP_ATOMIC) {
        s.atomic_op = TBRDMA_ATOMIC_ADD;
        s.atomic_size = 8;
        s.operand = 1;
        s.length = 0;
    }
    return s;
}

double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Runs op with up to depth in flight for about seconds; nanoseconds per op.
double ns_per_op(pair &p, const tbrdma_sqe &op, uint32_t depth, double seconds)
{
    uint64_t posted = 0, done = 0, rounds = 0;
    bool ok = true, stop = false;
    double start = now_s(), end = start + seconds;
    while (!stop || posted != done) {
        while (!stop && posted - done < depth && tb_post(p.a->ctx, &op) == 0)
            posted++;
        p.step();
        done += p.a->reap(ok);
        if (!ok)
            throw std::runtime_error("an operation failed");
        // The clock is read every 64 rounds, so it costs the engine little.
        if (++rounds % 64 == 0 && now_s() >= end)
            stop = true;
    }
    return (now_s() - start) * 1e9 / static_cast<double>(done);
}

double memcpy_gbps(size_t len, double seconds)
{
    std::vector<uint8_t> src(len, 3), dst(len);
    uint64_t n = 0;
    double start = now_s(), end = start + seconds;
    do {
        std::memcpy(dst.data(), src.data(), len);
        src[n % len]++;  // keeps the copy from being hoisted out
        n++;
    } while (now_s() < end);
    return static_cast<double>(len) * static_cast<double>(n) / (now_s() - start) / 1e9;
}

struct options {
    double seconds = 1.0;
    std::string csv, only;
};

// The whole table, or with o.only one measurement (to profile it).
int run(const options &o)
{
    std::ofstream csv;
    if (!o.csv.empty())
        csv.open(o.csv, std::ios::app);
    const double budget_ns = 500;
    const size_t big = 1 << 20;
    bool within = true;
    pair p;
    buffers small(p, 4096), large(p, big);
    for (const auto &k : small_ops) {
        if (o.only == k.name) {
            std::printf("%s 8 B: %.0f ns\n", k.name,
                        ns_per_op(p, make_op(p, small, k.opcode, 8), 1, o.seconds));
            return 0;
        }
        if (o.only == std::string(k.name) + "-1M") {
            double ns = ns_per_op(p, make_op(p, large, k.opcode, big), 4, o.seconds);
            std::printf("%s 1 MiB: %.2f GB/s\n", k.name, static_cast<double>(big) / ns);
            return 0;
        }
    }
    if (!o.only.empty())
        throw std::runtime_error("--only: WRITE, READ, ATOMIC, SEND, WRITE-1M or READ-1M");

    std::printf("engine cost, two engines in one thread over an in-memory cable:\n");
    std::printf("  %-16s %12s %12s %12s\n", "8 B operation", "1 in flight", "32 in flight",
                "budget");
    for (const auto &k : small_ops) {
        tbrdma_sqe op = make_op(p, small, k.opcode, 8);
        double one = ns_per_op(p, op, 1, o.seconds);
        double many = ns_per_op(p, op, 32, o.seconds);
        bool fits = many <= budget_ns;
        within = within && fits;
        std::printf("  %-16s %9.0f ns %9.0f ns %8.0f ns %s\n", k.name, one, many, budget_ns,
                    fits ? "ok" : "OVER");
        if (csv.is_open())
            csv << "engine_ns_" << k.name << ",tb/engine," << many << "\n";
    }
    double copy = memcpy_gbps(big, o.seconds);
    std::printf("  %-16s %12s %12s %12s\n", "1 MiB transfer", "GB/s", "x memcpy", "budget");
    for (uint8_t opcode : {uint8_t(TBRDMA_OP_WRITE), uint8_t(TBRDMA_OP_READ)}) {
        tbrdma_sqe op = make_op(p, large, opcode, big);
        double gbps = static_cast<double>(big) / ns_per_op(p, op, 4, o.seconds);
        bool fits = gbps >= copy / 2;
        within = within && fits;
        const char *name = opcode == TBRDMA_OP_WRITE ? "WRITE" : "READ";
        std::printf("  %-16s %12.2f %12.2f %10s   %s\n", name, gbps, gbps / copy, ">= 0.50",
                    fits ? "ok" : "UNDER");
        if (csv.is_open())
            csv << "engine_gbps_" << name << ",tb/engine," << gbps << "\n";
    }
    std::printf("  %-16s %12.2f %12.2f\n", "memcpy", copy, 1.0);
    std::printf("engine cost: %s the budget (8 B: 32 in flight; 1 MiB: 4 in flight)\n",
                within ? "within" : "NOT within");
    return 0;
}

}  // namespace

int main(int argc, char **argv)
{
    options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc) {
            o.seconds = std::atof(argv[++i]);
        } else if (a == "--csv" && i + 1 < argc) {
            o.csv = argv[++i];
        } else if (a == "--only" && i + 1 < argc) {
            o.only = argv[++i];
        } else {
            std::fprintf(stderr, "usage: %s [--seconds S] [--csv FILE] [--only OP]\n", argv[0]);
            return 2;
        }
    }
    try {
        return run(o);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "tb-engine-bench: %s\n", e.what());
        return 1;
    }
}
