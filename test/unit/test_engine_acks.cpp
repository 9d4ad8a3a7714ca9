// SPDX-License-Identifier: BSD-2-Clause
//
// Delayed acks between two engines: an ack nobody waits for rides on the
// target's own traffic or goes after the link's ack delay, the engine's in
// the link's ACK unless DATA of the target's is unacked; a completion
// someone waits for, a FLUSH, a resent frame and a filling window are
// acked at once. The clock stands still unless a test moves it, so "at
// once" means without any timer.
#include <boost/test/unit_test.hpp>

#include <cerrno>

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine_pair.hpp"
#include "pair_fixture.hpp"

extern "C" {
#include "tb_engine_priv.h"  // the link's ack_wanted
}

using namespace tbtest;

namespace {

struct ack_fixture : pair_fixture {
    uint64_t a_buf[64] = {};
    uint64_t b_buf[64] = {};
    uint64_t a_key;
    uint64_t b_key;
    // Far ahead of the real clock, which tb_post() hands the link: only
    // the test moves the time the links see.
    uint64_t t;

    ack_fixture()
    {
        const uint32_t rw =
            TBRDMA_ACCESS_LOCAL | TBRDMA_ACCESS_REMOTE_WRITE | TBRDMA_ACCESS_REMOTE_READ;
        a_key = p.a->reg(a_buf, sizeof(a_buf), rw);
        b_key = p.b->reg(b_buf, sizeof(b_buf), rw);
        t = tb_now_ns() + 1000000000000ull;
        settle();
        p.a->drain_cq();
        p.b->drain_cq();
    }

    // Both engines, enough rounds for every frame due to cross and be
    // answered, at time t.
    void settle()
    {
        for (int i = 0; i < 16; i++) {
            tb_engine_progress(p.a->engine, t);
            tb_engine_progress(p.b->engine, t);
        }
    }

    // An 8-byte inline WRITE into the peer's buffer slot.
    void write(engine_host &h, int ep, uint64_t key, uint64_t *peer_buf, size_t slot,
               uint64_t value, uint8_t flags)
    {
        tbrdma_sqe s = make_sqe(TBRDMA_OP_WRITE, ep, value);
        s.flags = static_cast<uint8_t>(TBRDMA_SQE_INLINE | flags);
        s.length = sizeof(value);
        std::memcpy(s.inline_data, &value, sizeof(value));
        s.remote_addr = reinterpret_cast<uintptr_t>(peer_buf + slot);
        s.rkey = key;
        BOOST_REQUIRE_EQUAL(tb_post(h.ctx, &s), 0);
    }
    void write_ab(size_t slot, uint64_t value, uint8_t flags)
    {
        write(*p.a, ep_ab, b_key, b_buf, slot, value, flags);
    }
    void write_ba(size_t slot, uint64_t value, uint8_t flags)
    {
        write(*p.b, ep_ba, a_key, a_buf, slot, value, flags);
    }
    void flush_a()
    {
        tbrdma_sqe s = make_sqe(TBRDMA_OP_FLUSH, ep_ab, 0xf1);
        BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &s), 0);
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(engine_acks, ack_fixture)

// Ping-pong: each WRITE carries the ack of the one before it, so no
// standalone ACK crosses the cable either way.
BOOST_AUTO_TEST_CASE(traffic_carries_a_delayed_ack)
{
    const uint64_t acks_a = p.a->link.stats.tx_acks, acks_b = p.b->link.stats.tx_acks;
    const uint64_t frames_b = p.b->link.stats.tx_frames;
    write_ab(0, 11, TBRDMA_SQE_DELAY_ACK);
    settle();
    BOOST_TEST(b_buf[0] == 11u);
    BOOST_TEST(p.a->drain_cq().empty(), "acked before the target had traffic or a timer");
    BOOST_TEST(p.b->link.stats.tx_frames == frames_b, "the target sent a frame of its own");

    write_ba(0, 22, TBRDMA_SQE_DELAY_ACK);
    settle();
    BOOST_TEST(a_buf[0] == 22u);
    auto ca = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(ca.size(), 1u);
    BOOST_TEST(ca[0].wr_id == 11u);
    BOOST_TEST(ca[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(p.b->link.stats.tx_frames == frames_b + 1, "one frame: the WRITE with the ack");
    BOOST_TEST(p.a->link.stats.tx_acks == acks_a);
    BOOST_TEST(p.b->link.stats.tx_acks == acks_b);
    BOOST_TEST(p.b->drain_cq().empty());
}

// Nobody sends: the ack goes when the link's ack delay has passed, not
// before.
BOOST_AUTO_TEST_CASE(a_lone_delayed_ack_waits_for_the_delay)
{
    const uint64_t delay = p.b->link.cfg.ack_delay_ns;
    const uint64_t frames_b = p.b->link.stats.tx_frames, acks_b = p.b->link.stats.tx_acks;
    BOOST_REQUIRE_GT(delay, 1u);
    write_ab(1, 33, TBRDMA_SQE_DELAY_ACK);
    settle();
    BOOST_TEST(b_buf[1] == 33u);
    BOOST_TEST(tb_engine_next_deadline(p.b->engine) == t + delay);
    t += delay - 1;
    settle();
    BOOST_TEST(p.a->drain_cq().empty(), "acked before the delay");
    t += 1;
    settle();
    auto ca = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(ca.size(), 1u);
    BOOST_TEST(ca[0].wr_id == 33u);
    // The link's ACK carried the engine's: no DATA frame, so no ack owed
    // back.
    BOOST_TEST(p.b->link.stats.tx_frames == frames_b);
    BOOST_TEST(p.b->link.stats.tx_acks == acks_b + 1);
    BOOST_TEST(tb_engine_next_deadline(p.a->engine) == 0u);
    BOOST_TEST(tb_engine_next_deadline(p.b->engine) == 0u);
}

// The ACK that carried the engine's ack is lost: the WRITE is resent, the
// duplicate is acked again with it, and the WRITE runs once.
BOOST_AUTO_TEST_CASE(a_lost_ack_carrying_the_engines_is_made_good)
{
    const uint64_t frames_b = p.b->link.stats.tx_frames;
    p.cb.lose.insert(p.cb.sent + 1);
    write_ab(6, 88, 0);
    settle();
    BOOST_TEST(b_buf[6] == 88u);
    BOOST_TEST(p.a->drain_cq().empty(), "completed without the lost ACK");
    b_buf[6] = 0;  // a second execution would write it again
    t = tb_engine_next_deadline(p.a->engine);
    settle();
    auto ca = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(ca.size(), 1u);
    BOOST_TEST(ca[0].wr_id == 88u);
    BOOST_TEST(ca[0].status == TBRDMA_WC_SUCCESS);
    BOOST_TEST(b_buf[6] == 0u, "the duplicate was executed");
    BOOST_TEST(p.b->link.stats.rx_dup == 1u);
    BOOST_TEST(p.b->link.stats.tx_frames == frames_b, "the target sent DATA");
}

// While a DATA frame of the target is unacked, its ACK does not carry the
// engine's ack, which could then overtake a response or NAK in that frame:
// the engine's ack goes in a DATA frame behind it.
BOOST_AUTO_TEST_CASE(the_engines_ack_never_overtakes_the_targets_data)
{
    // The target's WRITE is lost, and so is its resend on the gap ack.
    p.cb.lose = {p.cb.sent + 1, p.cb.sent + 3};
    write_ba(7, 99, TBRDMA_SQE_DELAY_ACK);
    settle();
    const uint64_t frames_b = p.b->link.stats.tx_frames;
    write_ab(7, 111, 0);
    settle();
    BOOST_TEST(b_buf[7] == 111u);
    BOOST_TEST(p.b->link.stats.tx_frames == frames_b + 1, "the engine's ack went in no DATA frame");
    BOOST_TEST(a_buf[7] == 0u);
    BOOST_TEST(p.a->drain_cq().empty(), "the engine's ack overtook the lost frame");
    t = tb_engine_next_deadline(p.b->engine);
    settle();
    BOOST_TEST(a_buf[7] == 99u);
    auto ca = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(ca.size(), 1u);
    BOOST_TEST(ca[0].wr_id == 111u);
}

// A WRITE whose completion is awaited asks for its ack.
BOOST_AUTO_TEST_CASE(an_awaited_completion_is_acked_at_once)
{
    write_ab(2, 44, 0);
    settle();
    auto ca = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(ca.size(), 1u);
    BOOST_TEST(ca[0].wr_id == 44u);
    BOOST_TEST(b_buf[2] == 44u);
}

// A FLUSH posted after the WRITE went out asks for the ack with a frame of
// its own; one posted while the WRITE still has frames to send rides on
// its last frame instead.
BOOST_AUTO_TEST_CASE(a_flush_asks_for_the_acks_before_it)
{
    write_ab(3, 55, TBRDMA_SQE_DELAY_ACK);
    settle();
    BOOST_TEST(p.a->drain_cq().empty());
    const uint64_t frames_a = p.a->link.stats.tx_frames;
    flush_a();
    BOOST_TEST(p.a->link.stats.tx_frames == frames_a + 1, "the FLUSH asked with no frame");
    settle();
    auto ca = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(ca.size(), 2u);
    BOOST_TEST(ca[0].wr_id == 55u);
    BOOST_TEST(ca[1].wr_id == 0xf1u);

    // A WRITE held back by a fence (a READ before it has no response
    // yet) when the FLUSH is posted: it asks on its own frame.
    uint64_t got = 0;
    const uint64_t got_key = p.a->reg(&got, sizeof(got), TBRDMA_ACCESS_LOCAL);
    tbrdma_sqe rd = make_sqe(TBRDMA_OP_READ, ep_ab, 0x4ead);
    rd.flags = TBRDMA_SQE_DELAY_ACK;
    rd.local_addr = reinterpret_cast<uintptr_t>(&got);
    rd.lkey = got_key;
    rd.length = sizeof(got);
    rd.remote_addr = reinterpret_cast<uintptr_t>(b_buf + 3);
    rd.rkey = b_key;
    BOOST_REQUIRE_EQUAL(tb_post(p.a->ctx, &rd), 0);
    write_ab(4, 66, TBRDMA_SQE_DELAY_ACK | TBRDMA_SQE_FENCE);
    const uint64_t sent = p.a->link.stats.tx_frames;
    flush_a();
    BOOST_TEST(p.a->link.stats.tx_frames == sent, "the FLUSH asked with a frame of its own");
    settle();
    ca = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(ca.size(), 3u);
    BOOST_TEST(ca[0].wr_id == 0x4eadu);
    BOOST_TEST(got == 55u);
    BOOST_TEST(ca[1].wr_id == 66u);
    BOOST_TEST(ca[2].wr_id == 0xf1u);
    BOOST_TEST(b_buf[4] == 66u);
}

// A SILENT or DELAY_ACK WRITE followed by an ordinary one: the second asks,
// and its ack covers both.
BOOST_AUTO_TEST_CASE(an_asking_request_acks_those_before_it)
{
    write_ab(6, 1, TBRDMA_SQE_SILENT);
    write_ab(7, 2, TBRDMA_SQE_DELAY_ACK);
    settle();
    BOOST_TEST(p.a->drain_cq().empty());
    write_ab(8, 3, 0);
    settle();
    auto ca = p.a->drain_cq();
    BOOST_REQUIRE_EQUAL(ca.size(), 2u);  // the SILENT one completes unseen
    BOOST_TEST(ca[0].wr_id == 2u);
    BOOST_TEST(ca[1].wr_id == 3u);
}

// An ack delay the peer's timeout does not leave room for is refused.
BOOST_AUTO_TEST_CASE(an_ack_delay_past_half_the_timeout_floor_is_refused)
{
    tb_link_config cfg;
    tb_link_config_default(&cfg);
    BOOST_TEST(2 * cfg.ack_delay_ns <= cfg.rto_min_ns);
    mem_cable_end end;
    tb_link link{};
    cfg.ack_delay_ns = cfg.rto_min_ns / 2 + 1;
    BOOST_TEST(tb_link_init(&link, &cfg, &mem_cable_end::ops, &end, &tb_engine_link_ops,
                            nullptr) == -EINVAL);
    cfg.ack_delay_ns = cfg.rto_min_ns / 2;
    cfg.rto_max_ns = cfg.rto_min_ns - 1;
    BOOST_TEST(tb_link_init(&link, &cfg, &mem_cable_end::ops, &end, &tb_engine_link_ops,
                            nullptr) == -EINVAL);
    cfg.rto_max_ns = cfg.rto_min_ns;
    BOOST_REQUIRE_EQUAL(tb_link_init(&link, &cfg, &mem_cable_end::ops, &end,
                                     &tb_engine_link_ops, nullptr),
                        0);
    tb_link_destroy(&link);
}

// A stream nobody waits for: the sender asks once half its window or
// credit is in flight, so it never stalls on the delay; only the tail
// sent after the last ack waits for it.
BOOST_AUTO_TEST_CASE(a_filling_window_asks_for_acks)
{
    const uint32_t room = p.a->link.tx_credit - p.a->link.tx_una;
    const uint32_t half = std::min(room, p.a->link.cfg.tx_window) / 2;
    const uint32_t n = 4 * half + 4;
    const uint32_t first = p.a->link.tx_next;
    BOOST_REQUIRE_GT(half, 2u);
    for (uint32_t i = 0; i < half; i++)
        write_ab(i % 64, i, TBRDMA_SQE_DELAY_ACK);
    settle();
    BOOST_TEST(p.a->drain_cq().empty(), "half the window asked for an ack");
    for (uint32_t i = half; i < n; i++)
        write_ab(i % 64, i, TBRDMA_SQE_DELAY_ACK);
    settle();
    BOOST_TEST(p.a->link.tx_next - first == n, "the sender stalled");
    const size_t done = p.a->drain_cq().size();
    BOOST_TEST(done >= n - half);
    t += p.b->link.cfg.ack_delay_ns;
    settle();
    BOOST_TEST(done + p.a->drain_cq().size() == n);
}

// A frame sent again asks for its ack: the first copy's was lost or late.
BOOST_AUTO_TEST_CASE(a_resent_frame_is_acked_at_once)
{
    p.ca.lose.insert(p.ca.sent + 1);
    write_ab(5, 77, TBRDMA_SQE_DELAY_ACK);
    settle();
    BOOST_TEST(b_buf[5] == 0u, "the WRITE was not lost");
    const uint64_t resent = p.a->link.stats.retransmits;
    t = tb_engine_next_deadline(p.a->engine);
    settle();
    BOOST_TEST(p.a->link.stats.retransmits == resent + 1);
    BOOST_TEST(b_buf[5] == 77u);
    BOOST_TEST(p.a->drain_cq().size() == 1u, "the resent WRITE's ack waited");
}

BOOST_AUTO_TEST_SUITE_END()
