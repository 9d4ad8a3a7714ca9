// SPDX-License-Identifier: BSD-2-Clause
//
// Device atomics, 32 and 64 bit, every posted and fetching operation,
// against a model: fetched values are checked as they come, the target
// checks its memory at the end (and that the neighbouring bytes kept
// their values).
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>

#include "target.hpp"

using namespace uctest;

namespace {

template <class T> T apply(uct_atomic_op_t op, T old, T v, T compare)
{
    switch (op) {
    case UCT_ATOMIC_OP_ADD:
        return T(old + v);
    case UCT_ATOMIC_OP_AND:
        return old & v;
    case UCT_ATOMIC_OP_OR:
        return old | v;
    case UCT_ATOMIC_OP_XOR:
        return old ^ v;
    case UCT_ATOMIC_OP_SWAP:
        return v;
    case UCT_ATOMIC_OP_CSWAP:
        return old == compare ? v : old;
    default:
        return old;
    }
}

const char *op_name(uct_atomic_op_t op)
{
    static const char *names[] = {"add", "and", "or", "xor", "swap", "cswap"};
    return op < 6 ? names[op] : "?";
}

ucs_status_t post(uct_ep_h ep, uct_atomic_op_t op, uint32_t v, uint64_t ra, uct_rkey_t rk)
{
    return uct_ep_atomic32_post(ep, op, v, ra, rk);
}
ucs_status_t post(uct_ep_h ep, uct_atomic_op_t op, uint64_t v, uint64_t ra, uct_rkey_t rk)
{
    return uct_ep_atomic64_post(ep, op, v, ra, rk);
}
ucs_status_t fetch(uct_ep_h ep, uct_atomic_op_t op, uint32_t v, uint32_t cmp, uint32_t *res,
                   uint64_t ra, uct_rkey_t rk, uct_completion_t *c)
{
    if (op == UCT_ATOMIC_OP_CSWAP)
        return uct_ep_atomic_cswap32(ep, cmp, v, ra, rk, res, c);
    return uct_ep_atomic32_fetch(ep, op, v, res, ra, rk, c);
}
ucs_status_t fetch(uct_ep_h ep, uct_atomic_op_t op, uint64_t v, uint64_t cmp, uint64_t *res,
                   uint64_t ra, uct_rkey_t rk, uct_completion_t *c)
{
    if (op == UCT_ATOMIC_OP_CSWAP)
        return uct_ep_atomic_cswap64(ep, cmp, v, ra, rk, res, c);
    return uct_ep_atomic64_fetch(ep, op, v, res, ra, rk, c);
}

// A few hundred random operations on one word at off (whose initial value
// is the target's fill pattern there), then the target checks it.
template <class T> void run_model(rma_pair &p, uint64_t off, unsigned seed)
{
    std::mt19937_64 rng(seed);
    T model;
    fill(&model, sizeof(T), 1, off);  // the target was filled with pattern 1
    const uct_atomic_op_t posts[] = {UCT_ATOMIC_OP_ADD, UCT_ATOMIC_OP_AND, UCT_ATOMIC_OP_OR,
                                     UCT_ATOMIC_OP_XOR};
    const uct_atomic_op_t fetches[] = {UCT_ATOMIC_OP_ADD, UCT_ATOMIC_OP_AND,
                                       UCT_ATOMIC_OP_OR,  UCT_ATOMIC_OP_XOR,
                                       UCT_ATOMIC_OP_SWAP, UCT_ATOMIC_OP_CSWAP};
    for (int i = 0; i < 400; i++) {
        T v = T(rng());
        // and/or would soon reach all zeros or ones: keep values mixed.
        if (i % 3 == 0)
            v |= T(rng());
        bool fetching = i % 2;
        uct_atomic_op_t op = fetching ? fetches[(i / 2) % 6] : posts[(i / 2) % 4];
        // cswap: every other one matches.
        T cmp = (i / 12) % 2 ? model : T(model + 1);
        BOOST_TEST_CONTEXT(sizeof(T) * 8 << "-bit " << (fetching ? "fetch " : "post ")
                                         << op_name(op) << " #" << i)
        {
            if (!fetching) {
                ucs_status_t s = UCS_ERR_NO_RESOURCE;
                BOOST_REQUIRE(p.me.progress_until([&] {
                    return (s = post(p.ep, op, v, p.raddr(off), p.rkey)) != UCS_ERR_NO_RESOURCE;
                }));
                BOOST_CHECK_EQUAL(s, UCS_OK);
            } else {
                T result = T(~model);
                completion c;
                ucs_status_t s = UCS_ERR_NO_RESOURCE;
                BOOST_REQUIRE(p.me.progress_until([&] {
                    return (s = fetch(p.ep, op, v, cmp, &result, p.raddr(off), p.rkey, &c)) !=
                           UCS_ERR_NO_RESOURCE;
                }));
                BOOST_CHECK_EQUAL(p.me.wait(s, c), UCS_OK);
                BOOST_CHECK_EQUAL(result, model);  // the value before
            }
            model = apply<T>(op, model, v, cmp);
        }
    }
    BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
    // The target's own look: the word equals the model, its neighbours
    // still hold the fill pattern.
    T final = T(p.tgt.ask({sizeof(T) == 4 ? cmd_op::read32 : cmd_op::read64, 0, off}));
    BOOST_CHECK_EQUAL(final, model);
    // (check() also looks at the byte on either side of its region.)
    BOOST_CHECK_EQUAL(p.tgt.check(off - 8, 7, 1, off - 8), 0u);
    BOOST_CHECK_EQUAL(p.tgt.check(off + sizeof(T) + 1, 7, 1, off + sizeof(T) + 1), 0u);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(atomic)

BOOST_AUTO_TEST_CASE(ops32)
{
    rma_pair p(1 << 16, 4096);
    p.tgt.fill(1);
    run_model<uint32_t>(p, 128, 32);
    run_model<uint32_t>(p, 4092, 33);  // the last word of a page
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

BOOST_AUTO_TEST_CASE(ops64)
{
    rma_pair p(1 << 16, 4096);
    p.tgt.fill(1);
    run_model<uint64_t>(p, 256, 64);
    run_model<uint64_t>(p, 8184, 65);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// Posted atomics mixed with puts and gets on the same word execute in
// order: what a get returns is the model after everything before it.
BOOST_AUTO_TEST_CASE(ordered_with_rma)
{
    rma_pair p(1 << 16, 4096);
    uint64_t model = 0;
    std::memset(p.local.p, 0, 8);
    BOOST_REQUIRE_EQUAL(uct_ep_put_short(p.ep, p.local.p, 8, p.raddr(512), p.rkey), UCS_OK);
    for (uint64_t i = 1; i <= 50; i++) {
        ucs_status_t s = UCS_ERR_NO_RESOURCE;
        p.me.progress_until([&] {
            return (s = uct_ep_atomic64_post(p.ep, UCT_ATOMIC_OP_ADD, i, p.raddr(512),
                                             p.rkey)) != UCS_ERR_NO_RESOURCE;
        });
        BOOST_CHECK_EQUAL(s, UCS_OK);
        model += i;
        if (i % 10 == 0) {
            completion c;
            uct_iov_t iov = p.local.iov(64, 8);
            BOOST_CHECK_EQUAL(
                p.me.wait(uct_ep_get_zcopy(p.ep, &iov, 1, p.raddr(512), p.rkey, &c), c), UCS_OK);
            uint64_t got;
            std::memcpy(&got, p.local.p + 64, 8);
            BOOST_CHECK_EQUAL(got, model);
        }
    }
    BOOST_CHECK_EQUAL(p.tgt.ask({cmd_op::read64, 0, 512}), model);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

// What the interface does not offer (op_flags and fop_flags) is refused,
// never sent as another operation: the word keeps its value.
BOOST_AUTO_TEST_CASE(operations_not_offered_are_refused)
{
    rma_pair p(1 << 16, 4096);
    p.tgt.fill(1);
    uint64_t before;
    fill(&before, 8, 1, 256);
    for (auto op : {UCT_ATOMIC_OP_SWAP, UCT_ATOMIC_OP_CSWAP, UCT_ATOMIC_OP_LAST}) {
        BOOST_TEST_CONTEXT("post " << op)
        {
            BOOST_CHECK_EQUAL(uct_ep_atomic64_post(p.ep, op, 5, p.raddr(256), p.rkey),
                              UCS_ERR_UNSUPPORTED);
            BOOST_CHECK_EQUAL(uct_ep_atomic32_post(p.ep, op, 5, p.raddr(256), p.rkey),
                              UCS_ERR_UNSUPPORTED);
        }
    }
    for (auto op : {UCT_ATOMIC_OP_CSWAP, UCT_ATOMIC_OP_LAST}) {
        BOOST_TEST_CONTEXT("fetch " << op)
        {
            uint64_t r64 = 0;
            uint32_t r32 = 0;
            completion c;
            BOOST_CHECK_EQUAL(
                uct_ep_atomic64_fetch(p.ep, op, 5, &r64, p.raddr(256), p.rkey, &c),
                UCS_ERR_UNSUPPORTED);
            BOOST_CHECK_EQUAL(
                uct_ep_atomic32_fetch(p.ep, op, 5, &r32, p.raddr(256), p.rkey, &c),
                UCS_ERR_UNSUPPORTED);
        }
    }
    BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.ask({cmd_op::read64, 0, 256}), before);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

BOOST_AUTO_TEST_SUITE_END()
