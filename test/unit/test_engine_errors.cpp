// SPDX-License-Identifier: BSD-2-Clause
//
// Bad input at the engine: wrong, stale and guessed keys and secrets,
// bounds off by one, missing rights, unknown contexts, malformed posts,
// full queues, a cable pulled mid-transfer. Each must end in a clear error
// completion or return code; every refusal looks the same, puts its
// endpoint in error, and leaves the other endpoints working.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstring>
#include <thread>

#include "engine_pair.hpp"

using namespace tbtest;

namespace {

struct err_fixture {
    engine_pair p{3};
    int ep;
    std::vector<uint8_t> local = std::vector<uint8_t>(8192, 0x11);
    alignas(8) uint8_t remote[4096] = {};
    uint64_t lkey = 0, rkey_all = 0;

    err_fixture()
    {
        ep = p.a->ep_to(*p.b);
        BOOST_REQUIRE_GE(ep, 0);
        lkey = p.a->reg(local.data(), local.size(), TBRDMA_ACCESS_LOCAL);
        rkey_all = p.b->reg(remote, sizeof(remote), TBRDMA_ACCESS_ALL);
        BOOST_REQUIRE(p.pump_until([&] { return p.a->link.state == TBRDMA_LINK_UP; }));
    }

    tbrdma_sqe write(uint64_t raddr, uint32_t len, uint64_t rkey, uint64_t id = 1)
    {
        auto s = make_sqe(TBRDMA_OP_WRITE, ep, id);
        s.local_addr = reinterpret_cast<uintptr_t>(local.data());
        s.lkey = lkey;
        s.length = len;
        s.remote_addr = raddr;
        s.rkey = rkey;
        return s;
    }
    tbrdma_sqe read(uint64_t raddr, uint32_t len, uint64_t rkey, uint64_t id = 2)
    {
        auto s = write(raddr, len, rkey, id);
        s.opcode = TBRDMA_OP_READ;
        return s;
    }
    tbrdma_sqe atomic(uint64_t raddr, uint64_t rkey)
    {
        auto s = make_sqe(TBRDMA_OP_ATOMIC, ep, 3);
        s.atomic_op = TBRDMA_ATOMIC_ADD;
        s.atomic_size = 8;
        s.operand = 1;
        s.remote_addr = raddr;
        s.rkey = rkey;
        return s;
    }
    uint64_t raddr(size_t off = 0) { return reinterpret_cast<uintptr_t>(remote) + off; }
    // Runs s on an endpoint of its own and returns its status: a refused
    // request puts its endpoint in error, and the fixture's must stay good.
    uint8_t probe(tbrdma_sqe s)
    {
        int e = p.a->ep_to(*p.b);
        BOOST_REQUIRE_GE(e, 0);
        s.ep = static_cast<uint32_t>(e);
        uint8_t st = p.run(*p.a, s).status;
        BOOST_TEST(tb_ep_destroy(p.a->ctx, static_cast<uint32_t>(e)) == 0);
        return st;
    }
    // Other endpoints still work after an error.
    void still_works()
    {
        auto c = p.run(*p.a, write(raddr(), 16, rkey_all, 99));
        BOOST_TEST(c.status == TBRDMA_WC_SUCCESS);
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(engine_errors, err_fixture)

BOOST_AUTO_TEST_CASE(wrong_and_guessed_keys)
{
    for (uint64_t bad : {uint64_t(0), rkey_all ^ 0x100000u, rkey_all + 1, ~uint64_t(0),
                         rkey_all ^ (uint64_t(1) << 63)}) {
        BOOST_TEST(probe(write(raddr(), 8, bad)) == TBRDMA_WC_REM_ACCESS_ERR);
        BOOST_TEST(probe(read(raddr(), 8, bad)) == TBRDMA_WC_REM_ACCESS_ERR);
        BOOST_TEST(probe(atomic(raddr(), bad)) == TBRDMA_WC_REM_ACCESS_ERR);
    }
    still_works();
}

BOOST_AUTO_TEST_CASE(stale_key_after_deregistration)
{
    alignas(8) uint8_t other[64] = {};
    uint64_t k = p.b->reg(other, sizeof(other), TBRDMA_ACCESS_ALL);
    BOOST_TEST(p.run(*p.a, write(reinterpret_cast<uintptr_t>(other), 8, k)).status ==
               TBRDMA_WC_SUCCESS);
    BOOST_REQUIRE_EQUAL(tb_mr_deregister(p.b->ctx, k, nullptr), 0);
    BOOST_TEST(tb_mr_deregister(p.b->ctx, k, nullptr) == -ENOENT);
    // The same slot registered again gets a new random key: the old one stays dead.
    uint64_t k2 = p.b->reg(other, sizeof(other), TBRDMA_ACCESS_ALL);
    BOOST_TEST(k2 != k);
    std::memset(other, 0, sizeof(other));
    BOOST_TEST(probe(write(reinterpret_cast<uintptr_t>(other), 8, k)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(other[0] == 0);
    still_works();
}

BOOST_AUTO_TEST_CASE(bounds_off_by_one)
{
    // Exactly to the end is fine; one byte more is not, at either end.
    BOOST_TEST(p.run(*p.a, write(raddr(4096 - 100), 100, rkey_all)).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(probe(write(raddr(4096 - 100), 101, rkey_all)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(probe(write(raddr() - 1, 8, rkey_all)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(p.run(*p.a, read(raddr(4096 - 64), 64, rkey_all)).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(probe(read(raddr(4096 - 64), 65, rkey_all)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(p.run(*p.a, atomic(raddr(4096 - 8), rkey_all)).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(probe(atomic(raddr(4096), rkey_all)) == TBRDMA_WC_REM_ACCESS_ERR);
    // A multi-chunk write that runs off the end fails as a whole.
    BOOST_TEST(probe(write(raddr(), 8192, rkey_all)) == TBRDMA_WC_REM_ACCESS_ERR);
    // Wrap-around of address + length is not a way in.
    BOOST_TEST(probe(write(~0ull - 3, 8, rkey_all)) == TBRDMA_WC_REM_ACCESS_ERR);
    still_works();
}

BOOST_AUTO_TEST_CASE(missing_rights)
{
    alignas(8) uint8_t ro[64] = {}, wo[64] = {}, na[64] = {};
    uint64_t kro = p.b->reg(ro, sizeof(ro), TBRDMA_ACCESS_REMOTE_READ);
    uint64_t kwo = p.b->reg(wo, sizeof(wo), TBRDMA_ACCESS_REMOTE_WRITE);
    uint64_t kna = p.b->reg(na, sizeof(na), TBRDMA_ACCESS_LOCAL);
    auto at = [](uint8_t *x) { return reinterpret_cast<uintptr_t>(x); };
    BOOST_TEST(probe(write(at(ro), 8, kro)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(p.run(*p.a, read(at(ro), 8, kro)).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(probe(read(at(wo), 8, kwo)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(p.run(*p.a, write(at(wo), 8, kwo)).status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(probe(atomic(at(ro), kro)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(probe(atomic(at(wo), kwo)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(probe(write(at(na), 8, kna)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(probe(read(at(na), 8, kna)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(ro[0] == 0);
    still_works();
}

// A context is reached only with its id and its secret; a wrong one of
// either is refused as a wrong key is, and the endpoint is in error after.
BOOST_AUTO_TEST_CASE(unknown_context_or_wrong_secret)
{
    const uint32_t id = p.b->id();
    const uint64_t secret = p.b->secret();
    for (auto [to, with] : {std::pair{id ^ 0x40000000u, secret}, std::pair{id, secret ^ 1u},
                            std::pair{id, ~secret}, std::pair{id, uint64_t(0)}}) {
        int bad_ep = p.a->ep_to(to, with);
        BOOST_REQUIRE_GE(bad_ep, 0);
        auto s = write(raddr(), 8, rkey_all);
        s.ep = static_cast<uint32_t>(bad_ep);
        BOOST_TEST(p.run(*p.a, s).status == TBRDMA_WC_REM_ACCESS_ERR);
        // In error now: nothing more goes out, whatever it is.
        auto sd = make_sqe(TBRDMA_OP_SEND, bad_ep, 5);
        sd.flags = TBRDMA_SQE_INLINE;
        const uint64_t rx = p.b->link.stats.rx_frames;
        BOOST_TEST(p.run(*p.a, sd).status == TBRDMA_WC_FLUSH_ERR);
        s.length = 0;  // not even a ping
        BOOST_TEST(p.run(*p.a, s).status == TBRDMA_WC_FLUSH_ERR);
        BOOST_TEST(p.b->link.stats.rx_frames == rx);
        BOOST_TEST(tb_ep_destroy(p.a->ctx, static_cast<uint32_t>(bad_ep)) == 0);
    }
    BOOST_TEST(remote[0] == 0);
    BOOST_TEST(p.b->link.stats.rx_refused == 4u);
    still_works();
}

// Guessing costs time: past a burst of 16 refusals, a sender is refused
// unseen (even with the right key) until it has waited its turn (16 per
// second), and the link counts both.
BOOST_AUTO_TEST_CASE(refusals_are_rate_limited)
{
    const uint64_t refused0 = p.b->link.stats.rx_refused;
    for (int i = 0; i < 24; i++)
        BOOST_TEST(probe(write(raddr(), 8, rkey_all ^ (uint64_t(i + 1) << 20))) ==
                   TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(p.b->link.stats.rx_refused - refused0 == 24u);
    BOOST_TEST(p.b->link.stats.rx_throttled >= 7u);
    // Throttled: the right key is refused too, unseen, and nothing written.
    BOOST_TEST(probe(write(raddr(), 8, rkey_all)) == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(remote[0] == 0);
    // The pair's burst is spent in under a second of real time; two
    // seconds later it has room again.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    BOOST_TEST(probe(write(raddr(), 8, rkey_all)) == TBRDMA_WC_SUCCESS);
    BOOST_TEST(remote[0] == 0x11);
}

BOOST_AUTO_TEST_CASE(local_errors)
{
    auto s = write(raddr(), 8, rkey_all);
    s.lkey = lkey ^ 0x1000u;
    BOOST_TEST(p.run(*p.a, s).status == TBRDMA_WC_LOC_ACCESS_ERR);
    s = write(raddr(), 16, rkey_all);
    s.local_addr += local.size() - 8;  // runs past the local region
    BOOST_TEST(p.run(*p.a, s).status == TBRDMA_WC_LOC_ACCESS_ERR);
    auto r = read(raddr(), 8, rkey_all);
    r.lkey = 12345;
    BOOST_TEST(p.run(*p.a, r).status == TBRDMA_WC_LOC_ACCESS_ERR);
    still_works();
}

BOOST_AUTO_TEST_CASE(malformed_posts_are_refused)
{
    auto s = write(raddr(), 8, rkey_all);
    s.opcode = 0;
    BOOST_TEST(tb_post(p.a->ctx, &s) == -EINVAL);
    s.opcode = 77;
    BOOST_TEST(tb_post(p.a->ctx, &s) == -EINVAL);
    s = write(raddr(), TBRDMA_INLINE_MAX + 1, rkey_all);
    s.flags = TBRDMA_SQE_INLINE;
    BOOST_TEST(tb_post(p.a->ctx, &s) == -EINVAL);
    s = write(raddr(), 8, rkey_all);
    s.flags = 0x80;
    BOOST_TEST(tb_post(p.a->ctx, &s) == -EINVAL);
    s = write(raddr(), TBRDMA_XFER_MAX + 1u, rkey_all);
    BOOST_TEST(tb_post(p.a->ctx, &s) == -EINVAL);
    auto at = atomic(raddr(4), rkey_all);  // misaligned for 8 bytes
    BOOST_TEST(tb_post(p.a->ctx, &at) == -EINVAL);
    at = atomic(raddr(), rkey_all);
    at.atomic_size = 2;
    BOOST_TEST(tb_post(p.a->ctx, &at) == -EINVAL);
    at.atomic_size = 8;
    at.atomic_op = 6;
    BOOST_TEST(tb_post(p.a->ctx, &at) == -EINVAL);
    auto sd = make_sqe(TBRDMA_OP_SEND, ep, 1);
    sd.length = TBRDMA_SEND_MAX + 1;
    BOOST_TEST(tb_post(p.a->ctx, &sd) == -EINVAL);
    s = write(raddr(), 8, rkey_all);
    s.ep = static_cast<uint32_t>(ep) ^ 0x100u;  // stale generation
    BOOST_TEST(tb_post(p.a->ctx, &s) == -ENOENT);
    BOOST_TEST(p.a->drain_cq().empty());
    BOOST_TEST(tb_ctx_outstanding(p.a->ctx) == 0u);
    still_works();
}

// What a host that took SQEs from a polled ring does with one tb_post()
// refused: a completion with the SQE's wr_id, in a slot of its own.
BOOST_AUTO_TEST_CASE(refused_posts_complete_when_the_host_asks)
{
    auto s = write(raddr(), 8, rkey_all, 41);
    s.opcode = 77;
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &s), -EINVAL);
    BOOST_REQUIRE_EQUAL(tb_post_refused(p.a->ctx, &s), 0);
    auto got = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 41u);
    BOOST_TEST(got[0].status == TBRDMA_WC_REFUSED);
    BOOST_TEST(got[0].opcode == 77);
    BOOST_TEST(got[0].ep == s.ep);
    BOOST_TEST(tb_ctx_outstanding(p.a->ctx) == 0u);

    // A full completion ring takes no refusal either: it waits (EAGAIN).
    tbtest::engine_ctx small(p.a->engine, 2);
    int sep = tb_ep_create(small.ctx, p.a->link_index, p.b->id(), p.b->secret());
    BOOST_REQUIRE_GE(sep, 0);
    s.ep = static_cast<uint32_t>(sep);
    BOOST_TEST(tb_post_refused(small.ctx, &s) == 0);
    BOOST_TEST(tb_post_refused(small.ctx, &s) == 0);
    BOOST_TEST(tb_post_refused(small.ctx, &s) == -EAGAIN);
    BOOST_TEST(small.drain_cq().size() == 2u);
    BOOST_TEST(tb_post_refused(small.ctx, &s) == 0);
    still_works();
}

BOOST_AUTO_TEST_CASE(full_queues_say_eagain)
{
    // The send queue holds 256 operations; with the peer not running,
    // nothing completes and the 257th post is refused, not lost.
    int accepted = 0;
    for (int i = 0; i < 300; i++) {
        auto s = write(raddr(), 8, rkey_all, static_cast<uint64_t>(i));
        int ret = tb_post(p.a->ctx, &s);
        if (ret == -EAGAIN)
            break;
        BOOST_REQUIRE_EQUAL(ret, 0);
        accepted++;
    }
    BOOST_TEST(accepted == 256);
    size_t done = 0;
    BOOST_TEST(p.pump_until([&] {
        done += p.a->drain_cq().size();
        return done == 256;
    }));
    BOOST_TEST(p.b->link.stats.rx_frames >= 256u);
}

BOOST_AUTO_TEST_CASE(silent_success_loud_failure)
{
    auto s = write(raddr(), 8, rkey_all, 1);
    s.flags = TBRDMA_SQE_SILENT;
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &s), 0);
    auto bad = write(raddr(), 8, rkey_all + 1, 2);
    bad.flags = TBRDMA_SQE_SILENT;
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &bad), 0);
    auto f = make_sqe(TBRDMA_OP_FLUSH, ep, 3);
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &f), 0);
    std::vector<tbrdma_cqe> got;
    BOOST_TEST(p.pump_until([&] {
        auto v = p.a->drain_cq();
        got.insert(got.end(), v.begin(), v.end());
        return got.size() >= 2;
    }));
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(got[0].wr_id == 2u);
    BOOST_TEST(got[0].status == TBRDMA_WC_REM_ACCESS_ERR);
    BOOST_TEST(got[1].wr_id == 3u);
    BOOST_TEST(got[1].opcode == TBRDMA_OP_FLUSH);
}

BOOST_AUTO_TEST_CASE(cable_pulled_mid_transfer)
{
    std::vector<uint8_t> big(16 << 20, 0x5a), dst(16 << 20);
    uint64_t bk = p.a->reg(big.data(), big.size(), TBRDMA_ACCESS_LOCAL);
    uint64_t dk = p.b->reg(dst.data(), dst.size(), TBRDMA_ACCESS_ALL);
    auto s = write(reinterpret_cast<uintptr_t>(dst.data()), static_cast<uint32_t>(big.size()), dk, 1);
    s.local_addr = reinterpret_cast<uintptr_t>(big.data());
    s.lkey = bk;
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &s), 0);
    auto r = read(reinterpret_cast<uintptr_t>(dst.data()), 1 << 20, dk, 2);
    r.local_addr = reinterpret_cast<uintptr_t>(big.data());
    r.lkey = bk;
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &r), 0);
    auto at = atomic(raddr(), rkey_all);
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &at), 0);
    for (int i = 0; i < 5; i++)
        p.step();
    BOOST_REQUIRE(p.a->drain_cq().empty());  // still mid-transfer
    p.ca.unplug();
    std::vector<tbrdma_cqe> got;
    BOOST_TEST(p.pump_until([&] {
        auto v = p.a->drain_cq();
        got.insert(got.end(), v.begin(), v.end());
        return got.size() >= 3;
    }, 1000));
    BOOST_REQUIRE_EQUAL(got.size(), 3u);
    for (auto &c : got)
        BOOST_TEST(c.status == TBRDMA_WC_LINK_DOWN);
    BOOST_TEST(p.a->link.state == TBRDMA_LINK_DOWN);
    // Posting on the dead link works as on a verbs QP in error: the
    // operation completes at once, with the link's failure.
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &s), 0);
    auto late = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(late.size(), 1u);
    BOOST_TEST(late[0].status == TBRDMA_WC_LINK_DOWN);
    uint32_t outstanding = 9;
    BOOST_TEST(tb_ep_state(p.a->ctx, static_cast<uint32_t>(ep), &outstanding) == TBRDMA_LINK_DOWN);
    BOOST_TEST(outstanding == 0u);
}

BOOST_AUTO_TEST_CASE(cancel_completes_everything)
{
    // b never runs, so nothing can be acknowledged.
    for (int i = 0; i < 10; i++) {
        auto s = write(raddr(), 8, rkey_all, static_cast<uint64_t>(i));
        BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &s), 0);
    }
    tb_engine_progress(p.a->engine, p.now_ns);
    BOOST_REQUIRE_EQUAL(tb_ep_cancel(p.a->ctx, static_cast<uint32_t>(ep)), 0);
    auto got = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(got.size(), 10u);
    for (size_t i = 0; i < got.size(); i++) {
        BOOST_TEST(got[i].status == TBRDMA_WC_CANCELED);
        BOOST_TEST(got[i].wr_id == i);
    }
    // Late acks for cancelled operations find nothing; the ep still works.
    still_works();
    BOOST_TEST(p.a->drain_cq().empty());
}

BOOST_AUTO_TEST_SUITE_END()
