// SPDX-License-Identifier: BSD-2-Clause
//
// Receives of several buffers (a verbs receive's scatter list): a run of
// entries flagged TBRDMA_RWQE_MORE is one receive, which a message fills
// buffer after buffer and completes with the first entry's wr_id; a run
// the owner got wrong fails with LOC_ACCESS_ERR, one too short with
// LOC_LEN_ERR; over a bad cable every message lands whole.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <memory>
#include <random>

#include "recv_fixture.hpp"

using namespace tbtest;

namespace {

// A receive's buffers in one region of rb: entries for them, the last
// without MORE, and where each buffer's bytes are.
struct scatter {
    std::vector<uint8_t> mem;
    std::vector<tbrdma_rwqe> run;

    scatter(recv_ctx &rb, uint64_t wr_id, const std::vector<uint32_t> &lens)
    {
        size_t total = 0;
        for (uint32_t l : lens)
            total += l + 16;  // a gap after each buffer, which stays 0
        mem.assign(total + 1, 0);
        uint64_t key = rb.reg(mem.data(), mem.size());
        size_t at = 0;
        for (uint32_t l : lens) {
            run.push_back({wr_id, reinterpret_cast<uintptr_t>(&mem[at]), key, l, TBRDMA_RWQE_MORE});
            at += l + 16;
        }
        run.back().flags = 0;
    }
    // The bytes the buffers hold, laid end to end; and whether every gap
    // is still 0.
    std::vector<uint8_t> joined() const
    {
        std::vector<uint8_t> v;
        for (const auto &e : run) {
            auto *p = reinterpret_cast<const uint8_t *>(uintptr_t(e.addr));
            v.insert(v.end(), p, p + e.length);
        }
        return v;
    }
    bool gaps_clear() const
    {
        for (const auto &e : run) {
            auto *p = reinterpret_cast<const uint8_t *>(uintptr_t(e.addr)) + e.length;
            for (int i = 0; i < 16; i++)
                if (p[i])
                    return false;
        }
        return true;
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(engine_scatter, recv_fixture)

BOOST_AUTO_TEST_CASE(a_message_fills_the_buffers_in_order)
{
    scatter s(rb, 31, {7, 0, 5000, 1, 100000});
    rb.post_entries(s.run);
    const uint32_t len = 7 + 5000 + 1 + 100000;
    BOOST_REQUIRE_EQUAL(post(msg(len, 1, 0x77, 3)), 0);
    std::vector<tbrdma_cqe> sent;
    auto got = deliver(1, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 31u);
    BOOST_TEST(got[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(got[0].byte_len == len);
    BOOST_TEST(got[0].result == 0x77u);
    auto j = s.joined();
    BOOST_TEST(std::memcmp(j.data(), src.data() + 3, len) == 0);
    BOOST_TEST(s.gaps_clear());
    BOOST_TEST(rb.taken() == 5u);

    // A shorter one fills what it needs; the next receive is the next run.
    scatter t(rb, 32, {10, 10, 10}), u(rb, 33, {64});
    rb.post_entries(t.run);
    rb.post_entries(u.run);
    BOOST_REQUIRE_EQUAL(post(msg(15, 2)), 0);
    BOOST_REQUIRE_EQUAL(post(msg(64, 3, 0, 500)), 0);
    got = deliver(2, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(got[0].wr_id == 32u);
    BOOST_TEST(got[0].byte_len == 15u);
    j = t.joined();
    BOOST_TEST(std::memcmp(j.data(), src.data(), 15) == 0);
    BOOST_TEST(j[15] == 0);
    BOOST_TEST(got[1].wr_id == 33u);
    BOOST_TEST(std::memcmp(u.mem.data(), src.data() + 500, 64) == 0);
    BOOST_TEST(t.gaps_clear());
}

BOOST_AUTO_TEST_CASE(a_message_longer_than_all_the_buffers_fails)
{
    scatter s(rb, 41, {100, 100});
    rb.post_entries(s.run);
    BOOST_REQUIRE_EQUAL(post(msg(201, 1)), 0);
    std::vector<tbrdma_cqe> sent;
    auto got = deliver(1, sent);
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(got[0].wr_id == 41u);
    BOOST_TEST(got[0].status == TBRDMA_WC_LOC_LEN_ERR);
    BOOST_REQUIRE_EQUAL(sent.size(), 1u);
    BOOST_TEST(sent[0].status == TBRDMA_WC_REM_INVALID);
    BOOST_TEST(s.gaps_clear());
}

// What the owner can get wrong fails its own receive, and no other.
BOOST_AUTO_TEST_CASE(a_run_the_owner_got_wrong_fails)
{
    // Longer than TBRDMA_RECV_SGE_MAX: its first 16 entries are a receive
    // that fails; the 17th, the run's end, one of its own.
    std::vector<uint32_t> lens(TBRDMA_RECV_SGE_MAX + 1, 8);
    scatter too_long(rb, 51, lens);
    rb.post_entries(too_long.run);
    // An unknown flag.
    scatter odd(rb, 52, {8, 8});
    odd.run[1].flags = 2;
    rb.post_entries(odd.run);
    // A good one after them.
    scatter good(rb, 53, {4, 4});
    rb.post_entries(good.run);

    // A failed receive puts its sender's endpoint in error: each message
    // after one goes on a new endpoint.
    std::vector<tbrdma_cqe> sent, got;
    for (uint64_t i = 0; i < 4; i++) {
        int e = p.a->ep_to(tb_ctx_id(rb.ctx), tb_ctx_secret(rb.ctx));
        BOOST_REQUIRE_GE(e, 0);
        auto m = msg(8, i, 0, uint32_t(i * 100));
        m.ep = static_cast<uint32_t>(e);
        BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &m), 0);
        auto more = deliver(1, sent);
        got.insert(got.end(), more.begin(), more.end());
    }
    BOOST_REQUIRE_EQUAL(got.size(), 4u);
    BOOST_TEST(got[0].wr_id == 51u);
    BOOST_TEST(got[0].status == TBRDMA_WC_LOC_ACCESS_ERR);
    BOOST_TEST(got[1].wr_id == 51u);  // the 17th entry, alone: it fits
    BOOST_TEST(got[1].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(std::memcmp(reinterpret_cast<void *>(uintptr_t(too_long.run[16].addr)), src.data() + 100, 8) ==
               0);
    BOOST_TEST(got[2].wr_id == 52u);
    BOOST_TEST(got[2].status == TBRDMA_WC_LOC_ACCESS_ERR);
    BOOST_TEST(got[3].wr_id == 53u);
    BOOST_TEST(got[3].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(too_long.gaps_clear());
    BOOST_TEST(odd.gaps_clear());
}

BOOST_AUTO_TEST_SUITE_END()

// Random messages into random runs, over a cable that loses, duplicates
// and reorders: every one lands whole in its receive's buffers.
BOOST_FIXTURE_TEST_CASE(engine_scatter_over_a_bad_cable, recv_fixture)
{
    make_cable_bad(p);
    std::mt19937 rng(11);
    std::vector<std::unique_ptr<scatter>> runs;
    std::vector<uint32_t> lens;
    for (uint64_t i = 0; i < 60; i++) {
        std::vector<uint32_t> bufs(1 + rng() % TBRDMA_RECV_SGE_MAX);
        uint32_t room = 0;
        for (auto &b : bufs) {
            b = rng() % 3 ? rng() % 9000 : 0;  // a third of them empty
            room += b;
        }
        runs.push_back(std::make_unique<scatter>(rb, 100 + i, bufs));
        lens.push_back(room ? rng() % (room + 1) : 0);
    }
    // A run at a time: the ring has 64 entries.
    std::vector<tbrdma_cqe> sent, got;
    for (uint64_t i = 0; i < runs.size(); i++) {
        rb.post_entries(runs[i]->run);
        BOOST_REQUIRE_EQUAL(post(msg(lens[i], i, 0, uint32_t(i * 1000))), 0);
        auto more = deliver(1, sent);
        got.insert(got.end(), more.begin(), more.end());
    }
    BOOST_REQUIRE_EQUAL(got.size(), runs.size());
    int whole = 0;
    for (size_t i = 0; i < runs.size(); i++) {
        auto j = runs[i]->joined();
        whole += got[i].wr_id == 100 + i && got[i].status == TBRDMA_WC_SUCCESS && got[i].byte_len == lens[i] &&
                 std::memcmp(j.data(), src.data() + i * 1000, lens[i]) == 0 && runs[i]->gaps_clear();
    }
    BOOST_TEST(whole == int(runs.size()));
}
