// SPDX-License-Identifier: BSD-2-Clause
//
// The engine and link protocol between two engines in one process over an
// in-memory cable: every operation, chunking, ordering, errors and faults.
#include <boost/test/unit_test.hpp>

#include <malloc.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <random>

#include "engine_pair.hpp"
#include "pair_fixture.hpp"
#include "pattern.hpp"

extern "C" {
#include "tb_engine_priv.h"  // sizeof(struct tb_ep)
}

using namespace tbtest;

namespace {

std::vector<uint8_t> pattern(size_t n, uint64_t seed)
{
    std::vector<uint8_t> v(n);
    fill(v.data(), n, seed);
    return v;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(engine, pair_fixture)

BOOST_AUTO_TEST_CASE(write_then_read_sizes)
{
    const size_t inl = TBRDMA_INLINE_MAX, send = TBRDMA_SEND_MAX;
    for (size_t len : {size_t(0), size_t(1), size_t(7), inl - 1, inl, send - 1, send, send + 1,
                       2 * send, size_t(65536), size_t(65537), size_t(1 << 20) + 3}) {
        auto src = pattern(len + 16, len);
        std::vector<uint8_t> remote(len + 32, 0xee), back(len + 16, 0);
        uint64_t lkey = p.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
        uint64_t bkey = p.a->reg(back.data(), back.size(), TBRDMA_ACCESS_LOCAL);
        uint64_t rkey = p.b->reg(remote.data(), remote.size(), TBRDMA_ACCESS_ALL);

        auto w = make_sqe(TBRDMA_OP_WRITE, ep_ab, 1);
        w.local_addr = reinterpret_cast<uintptr_t>(src.data() + 3);
        w.lkey = lkey;
        w.length = static_cast<uint32_t>(len);
        w.remote_addr = reinterpret_cast<uintptr_t>(remote.data() + 5);
        w.rkey = rkey;
        auto c = p.run(*p.a, w);
        BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(c.wr_id == 1u);
        BOOST_TEST(std::memcmp(remote.data() + 5, src.data() + 3, len) == 0);
        BOOST_TEST(remote[4] == 0xee);
        BOOST_TEST(remote[5 + len] == 0xee);

        auto r = make_sqe(TBRDMA_OP_READ, ep_ab, 2);
        r.local_addr = reinterpret_cast<uintptr_t>(back.data() + 1);
        r.lkey = bkey;
        r.length = static_cast<uint32_t>(len);
        r.remote_addr = reinterpret_cast<uintptr_t>(remote.data() + 5);
        r.rkey = rkey;
        c = p.run(*p.a, r);
        BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
        BOOST_TEST(std::memcmp(back.data() + 1, src.data() + 3, len) == 0);
        tb_mr_deregister(p.a->ctx, lkey, nullptr);
        tb_mr_deregister(p.a->ctx, bkey, nullptr);
        tb_mr_deregister(p.b->ctx, rkey, nullptr);
    }
}

// A host that runs only the link its frames arrived on (the kernel's loop
// cables do) gets the same result as one that runs every link.
BOOST_AUTO_TEST_CASE(progress_one_link)
{
    std::vector<uint8_t> src(3000), remote(3000, 0);
    fill(src.data(), src.size(), 7);
    uint64_t lkey = p.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    uint64_t rkey = p.b->reg(remote.data(), remote.size(), TBRDMA_ACCESS_ALL);
    auto w = make_sqe(TBRDMA_OP_WRITE, ep_ab, 9);
    w.local_addr = reinterpret_cast<uintptr_t>(src.data());
    w.lkey = lkey;
    w.length = static_cast<uint32_t>(src.size());
    w.remote_addr = reinterpret_cast<uintptr_t>(remote.data());
    w.rkey = rkey;
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &w), 0);
    // No link past the last one: nothing runs.
    BOOST_TEST(tb_engine_progress_link(p.b->engine, p.b->link_index + 1, p.now_ns) == 0);
    BOOST_TEST(std::all_of(remote.begin(), remote.end(), [](uint8_t v) { return v == 0; }));
    std::vector<tbrdma_cqe> done;
    for (int i = 0; i < 1000 && done.empty(); i++) {
        tb_engine_progress_link(p.b->engine, p.b->link_index, p.now_ns);
        tb_engine_progress_link(p.a->engine, p.a->link_index, p.now_ns);
        p.now_ns += 1000;
        done = p.a->drain_cq();
    }
    BOOST_REQUIRE_EQUAL(done.size(), 1u);
    BOOST_TEST(done[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(mismatches(remote.data(), remote.size(), 7) == 0u);
}

BOOST_AUTO_TEST_CASE(atomics_both_widths)
{
    alignas(8) uint64_t target[2] = {0, 0};
    uint64_t rkey = p.b->reg(target, sizeof(target), TBRDMA_ACCESS_ALL);
    struct tcase {
        uint8_t op;
        uint64_t operand, compare;
    };
    std::mt19937_64 rng(7);
    for (uint8_t size : {uint8_t(4), uint8_t(8)}) {
        uint64_t mask = size == 4 ? 0xffffffffull : ~0ull;
        for (uint8_t op = 0; op <= TBRDMA_ATOMIC_MAX; op++) {
            for (int i = 0; i < 4; i++) {
                uint64_t before = rng() & mask, operand = rng() & mask;
                uint64_t compare = (i & 1) ? before : (rng() & mask);
                if (size == 4) {
                    uint32_t b32 = static_cast<uint32_t>(before);
                    std::memcpy(&target[1], &b32, 4);
                } else {
                    target[1] = before;
                }
                auto s = make_sqe(TBRDMA_OP_ATOMIC, ep_ab, op);
                s.atomic_op = op;
                s.atomic_size = size;
                s.operand = operand;
                s.compare = compare;
                s.remote_addr = reinterpret_cast<uintptr_t>(&target[1]);
                s.rkey = rkey;
                auto c = p.run(*p.a, s);
                BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
                BOOST_TEST(c.result == before);
                uint64_t expect = 0;
                switch (op) {
                case TBRDMA_ATOMIC_ADD: expect = before + operand; break;
                case TBRDMA_ATOMIC_AND: expect = before & operand; break;
                case TBRDMA_ATOMIC_OR: expect = before | operand; break;
                case TBRDMA_ATOMIC_XOR: expect = before ^ operand; break;
                case TBRDMA_ATOMIC_SWAP: expect = operand; break;
                default: expect = before == compare ? operand : before; break;
                }
                uint32_t now32;
                std::memcpy(&now32, &target[1], 4);
                uint64_t now = size == 4 ? now32 : target[1];
                BOOST_TEST(now == (expect & mask));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(send_order_and_payload)
{
    const int n = 300;
    int posted = 0, received = 0, completed = 0;
    auto payloads = pattern(TBRDMA_SEND_MAX, 9);
    while (received < n) {
        while (posted < n) {
            auto s = make_sqe(TBRDMA_OP_SEND, ep_ab, posted);
            uint32_t len = static_cast<uint32_t>((posted * 37) % (TBRDMA_SEND_MAX + 1));
            s.am_id = static_cast<uint32_t>(posted % 32);
            s.imm = 1000u + posted;
            s.local_addr = reinterpret_cast<uintptr_t>(payloads.data());
            s.length = len;
            if (tb_post(p.a->ctx, &s))
                break;
            posted++;
        }
        p.step();
        completed += static_cast<int>(p.a->drain_cq().size());
        while (const tbrdma_rqe *r = p.b->rq_peek()) {
            BOOST_REQUIRE_EQUAL(r->imm, 1000u + received);
            BOOST_REQUIRE_EQUAL(r->am_id, static_cast<uint32_t>(received % 32));
            BOOST_REQUIRE_EQUAL(r->length, static_cast<uint32_t>((received * 37) % (TBRDMA_SEND_MAX + 1)));
            BOOST_REQUIRE(std::memcmp(r + 1, payloads.data(), r->length) == 0);
            BOOST_REQUIRE_EQUAL(r->src_ctx, p.a->id());
            p.b->rq_release();
            received++;
        }
    }
    BOOST_TEST(p.pump_until([&] {
        completed += static_cast<int>(p.a->drain_cq().size());
        return completed == n;
    }));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(engine_pd)

// Two contexts on one protection domain accept the same key (one
// registration serves every interface of a UCT memory domain); a context
// with its own domain does not.
BOOST_AUTO_TEST_CASE(contexts_share_a_domain)
{
    engine_pair p(5);
    tb_pd *pd = nullptr;
    BOOST_REQUIRE_EQUAL(tb_pd_create(p.b->engine, 64, &pd), 0);
    alignas(8) uint8_t mem[256] = {};
    uint64_t key = 0;
    BOOST_REQUIRE_EQUAL(tb_pd_reg_mr(pd, reinterpret_cast<uintptr_t>(mem), sizeof(mem),
                                     TBRDMA_ACCESS_ALL, mem, nullptr, &key), 0);
    std::vector<std::vector<uint8_t>> rings;
    std::vector<tbrdma_ring_ctrl> ctrls(4);
    std::vector<tb_ctx *> ctxs;
    for (int i = 0; i < 3; i++) {
        tb_ctx_config cc{};
        cc.pd = i < 2 ? pd : nullptr;
        cc.max_mr = 16;
        cc.max_ep = 4;
        cc.sq_depth = 16;
        rings.emplace_back(64 * sizeof(tbrdma_cqe));
        tb_qring_init(&cc.cq, &ctrls[i], rings.back().data(), 64, sizeof(tbrdma_cqe));
        rings.emplace_back(4 * TBRDMA_RQE_SLOT);
        static tbrdma_ring_ctrl rq_ctrl[3];
        tb_qring_init(&cc.rq, &rq_ctrl[i], rings.back().data(), 4, TBRDMA_RQE_SLOT);
        tb_ctx *c = nullptr;
        BOOST_REQUIRE_EQUAL(tb_ctx_create(p.b->engine, &cc, &c), 0);
        ctxs.push_back(c);
    }
    for (int i = 0; i < 3; i++) {
        int ep = p.a->ep_to(tb_ctx_id(ctxs[i]), tb_ctx_secret(ctxs[i]));
        BOOST_REQUIRE_GE(ep, 0);
        auto s = make_sqe(TBRDMA_OP_WRITE, ep, 10 + i);
        s.flags = TBRDMA_SQE_INLINE;
        s.length = 1;
        s.inline_data[0] = static_cast<uint8_t>(0xa0 + i);
        s.remote_addr = reinterpret_cast<uintptr_t>(mem + i);
        s.rkey = key;
        auto c = p.run(*p.a, s);
        BOOST_TEST(c.status == (i < 2 ? TBRDMA_WC_SUCCESS : TBRDMA_WC_REM_ACCESS_ERR));
    }
    BOOST_TEST(mem[0] == 0xa0);
    BOOST_TEST(mem[1] == 0xa1);
    BOOST_TEST(mem[2] == 0);
    for (auto *c : ctxs)
        tb_ctx_destroy(c, nullptr, nullptr);
    tb_pd_destroy(pd, nullptr, nullptr);
}

// The key index (open addressing, backward-shift deletion, a free list of
// slots) against a reference map: random registrations, deregistrations
// and lookups of live, dead and never-seen keys, with the table filled
// to the last slot again and again, so that probe chains collide, wrap
// and are cut by deletions. Every lookup goes through one link's hint,
// which must never return a region that went.
BOOST_AUTO_TEST_CASE(key_index_against_a_map)
{
    engine_pair p(8);
    const uint32_t max_mr = 64;
    tb_pd *pd = nullptr;
    BOOST_REQUIRE_EQUAL(tb_pd_create(p.b->engine, max_mr, &pd), 0);
    auto c = std::make_unique<engine_ctx>(p.b->engine, 64, 4, 16, pd);
    std::vector<uint8_t> mem(max_mr * 16);
    std::map<uint64_t, uint32_t> live;  // key -> region number
    std::vector<std::pair<uint64_t, uint32_t>> dead;
    std::mt19937_64 rng(0xd1c7);
    auto region = [&](uint32_t i) { return mem.data() + i * 16; };
    tb_mr_hint hint{};
    // Twice: the second finds it through the hint, which must agree.
    auto lookup = [&](uint64_t key, uint32_t i) {
        const uint8_t *at[2];
        for (auto &a : at) {
            uint8_t st = 0;
            a = tb_mr_access(c->ctx, &hint, key, reinterpret_cast<uintptr_t>(region(i)), 16,
                             TBRDMA_ACCESS_REMOTE_READ, &st);
            BOOST_REQUIRE(a ? st == 0 : st == TBRDMA_WC_REM_ACCESS_ERR);
        }
        BOOST_REQUIRE(at[0] == at[1]);
        return at[0];
    };
    uint32_t next_region = 0, fills = 0;
    for (int step = 0; step < 200000; step++) {
        const auto r = rng() % 100;
        if (r < 45) {
            uint64_t key = 0;
            uint32_t i = next_region++ % max_mr;
            int ret = tb_pd_reg_mr(pd, reinterpret_cast<uintptr_t>(region(i)), 16,
                                   TBRDMA_ACCESS_REMOTE_READ, region(i), nullptr, &key);
            if (live.size() == max_mr) {
                BOOST_REQUIRE_EQUAL(ret, -ENOSPC);
                fills++;
                continue;
            }
            BOOST_REQUIRE_EQUAL(ret, 0);
            BOOST_REQUIRE(key != 0);
            BOOST_REQUIRE(live.emplace(key, i).second);
        } else if (r < 85 && !live.empty()) {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            const auto gone = *it;
            BOOST_REQUIRE(lookup(gone.first, gone.second) == region(gone.second));
            BOOST_REQUIRE_EQUAL(tb_pd_dereg_mr(pd, gone.first, nullptr), 0);
            dead.push_back(gone);
            live.erase(it);
            // Half the time the same memory at once again, in the slot
            // just freed: the old key, still hinted, must not reach it.
            if (rng() & 1) {
                uint64_t key = 0;
                BOOST_REQUIRE_EQUAL(tb_pd_reg_mr(pd, reinterpret_cast<uintptr_t>(region(gone.second)),
                                                 16, TBRDMA_ACCESS_REMOTE_READ, region(gone.second),
                                                 nullptr, &key),
                                    0);
                BOOST_REQUIRE(live.emplace(key, gone.second).second);
            }
            BOOST_REQUIRE(!lookup(gone.first, gone.second));
            BOOST_REQUIRE(!tb_pd_has_mr(pd, gone.first));
        } else {
            // Dead and never-seen keys are unknown, also at the region a
            // dead one had; 0 is never a key.
            std::pair<uint64_t, uint32_t> k{rng(), 0};
            if (!dead.empty() && (rng() & 1))
                k = dead[rng() % dead.size()];
            if (live.count(k.first))
                continue;
            BOOST_REQUIRE(!lookup(k.first, k.second));
            BOOST_REQUIRE(!tb_pd_has_mr(pd, k.first));
            BOOST_REQUIRE(!tb_pd_has_mr(pd, 0));
            BOOST_REQUIRE_EQUAL(tb_pd_dereg_mr(pd, k.first, nullptr), -ENOENT);
            BOOST_REQUIRE_EQUAL(tb_pd_dereg_mr(pd, 0, nullptr), -ENOENT);
        }
        // Every live key finds its own region, on every tenth step.
        if (step % 10)
            continue;
        for (const auto &kv : live) {
            BOOST_REQUIRE(lookup(kv.first, kv.second) == region(kv.second));
            BOOST_REQUIRE(tb_pd_has_mr(pd, kv.first));
        }
    }
    BOOST_TEST(fills > 100u);  // the table was full many times
    BOOST_TEST(dead.size() > 50000u);
    for (const auto &kv : live)
        BOOST_REQUIRE_EQUAL(tb_pd_dereg_mr(pd, kv.first, nullptr), 0);
    c.reset();
    tb_pd_destroy(pd, nullptr, nullptr);
}

// An endpoint costs its own small struct and a table slot, whatever the
// queue depth: operations in flight come from the context's pool.
BOOST_AUTO_TEST_CASE(endpoints_cost_no_queue)
{
    engine_pair p(6);
    engine_ctx c(p.b->engine, 256, 4, 4096, nullptr, 4096);
    tb_ctx *ctx = c.ctx;
    const int n = 2048;
    std::vector<int> eps;
    size_t heap0 = mallinfo2().uordblks;
    for (int i = 0; i < n; i++) {
        eps.push_back(tb_ep_create(ctx, static_cast<uint32_t>(p.b->link_index), p.a->id(),
                                  p.a->secret()));
        BOOST_REQUIRE_GE(eps.back(), 0);
    }
    double per_ep = double(mallinfo2().uordblks - heap0) / n;
    BOOST_TEST_MESSAGE("engine endpoint: " << per_ep << " bytes (struct tb_ep is "
                                           << sizeof(tb_ep) << ")");
    BOOST_TEST(per_ep < 256.0);
    // Handles are distinct, and each one is found again.
    std::vector<int> sorted = eps;
    std::sort(sorted.begin(), sorted.end());
    BOOST_TEST((std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()));
    uint32_t out = 1;
    for (int h : eps)
        BOOST_TEST(tb_ep_state(ctx, static_cast<uint32_t>(h), &out) >= 0);
    for (int h : eps)
        BOOST_TEST(tb_ep_destroy(ctx, static_cast<uint32_t>(h)) == 0);
    BOOST_TEST(tb_ep_state(ctx, static_cast<uint32_t>(eps[0]), &out) == -ENOENT);
}

// After tb_ep_prepare(), tb_ep_create() (under the link's lock) allocates
// nothing, also when the table has to grow (it starts at TB_EP_SLOTS_MIN);
// at max_ep both refuse. A spare left over goes with the context (the ASan
// run checks for the leak).
BOOST_AUTO_TEST_CASE(prepared_endpoint_allocates_nothing)
{
    engine_pair p(6);
    const uint32_t max_ep = 2 * TB_EP_SLOTS_MIN;
    engine_ctx c(p.b->engine, 64, 4, 16, nullptr, max_ep);
    tb_ctx *ctx = c.ctx;
    const auto link = static_cast<uint32_t>(p.b->link_index);
    for (uint32_t i = 0; i < max_ep; i++) {
        BOOST_REQUIRE_EQUAL(tb_ep_prepare(ctx), 0);
        BOOST_REQUIRE_EQUAL(tb_ep_prepare(ctx), 0);  // twice: still one spare
        size_t heap = mallinfo2().uordblks;
        BOOST_REQUIRE_GE(tb_ep_create(ctx, link, p.a->id(), p.a->secret()), 0);
        BOOST_TEST(mallinfo2().uordblks == heap);
    }
    BOOST_TEST(tb_ep_prepare(ctx) == -ENOSPC);
    BOOST_TEST(tb_ep_create(ctx, link, p.a->id(), p.a->secret()) == -ENOSPC);
}

BOOST_AUTO_TEST_SUITE_END()
