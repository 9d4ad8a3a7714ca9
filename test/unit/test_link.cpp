// SPDX-License-Identifier: BSD-2-Clause
//
// The link protocol alone: two struct tb_link joined by a mem_cable, each
// with a small test user that checks and records every delivered payload.
// Time is virtual: both links run on one clock that the test advances,
// jumping ahead when nothing moves so that timers fire at once.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

#include "mem_cable.hpp"
#include "pattern.hpp"

using namespace tbtest;

namespace {

const uint64_t busy_step_ns = 1000;
const uint64_t idle_step_ns = 1000000;
const uint32_t link_payload_max = TBRDMA_FRAME_MAX - TB_LINK_HDR_LEN;

// Payload of test frame number n: its number, then a pattern derived from
// it; lengths cover the whole range a DATA frame allows (the link insists
// on room for an engine header).
uint32_t payload_len(uint32_t n)
{
    const uint32_t span = link_payload_max - TB_ENGINE_HDR_LEN + 1;
    if (n % 50 == 7)
        return link_payload_max;
    if (n % 50 == 8)
        return TB_ENGINE_HDR_LEN;
    return TB_ENGINE_HDR_LEN + (n * 2654435761u) % span;
}

// Ext buffer of frame n when frames go with one: 1 .. TB_EXT_MAX bytes.
uint32_t ext_len_of(uint32_t n)
{
    return n % 50 == 9 ? TB_EXT_MAX : 1 + (n * 2246822519u) % TB_EXT_MAX;
}

uint32_t build_payload(uint32_t n, uint8_t *p)
{
    uint32_t len = payload_len(n);
    for (int k = 0; k < 4; k++)
        p[k] = static_cast<uint8_t>(n >> (8 * k));
    for (uint32_t i = 4; i < len; i++)
        p[i] = pat(n, i);
    return len;
}

// One end: a cable end, a link and the link's user.
struct link_end {
    link_end(size_t slots, uint64_t seed) : cable(slots, seed) {}
    ~link_end() { destroy(); }
    link_end(const link_end &) = delete;
    link_end &operator=(const link_end &) = delete;

    void init(const tb_link_config &cfg, uint64_t now)
    {
        destroy();
        BOOST_REQUIRE_EQUAL(tb_link_init(&link, &cfg, phy_ops, &cable, &user_ops, this), 0);
        live = true;
        // tb_link_init stamps the real clock; these tests run on a virtual
        // clock, so restamp it (it only times the CONNECTING phase).
        link.progress_ns = now;
        got.clear();
        states.clear();
        next_tx = to_send = 0;
        bad_payloads = stalled_calls = 0;
    }
    void destroy()
    {
        if (live)
            tb_link_destroy(&link);
        live = false;
    }

    // Sends test frames while the link has room; returns how many.
    int fill()
    {
        int n = 0;
        while (next_tx < to_send && tb_link_can_send(&link)) {
            auto *buf = static_cast<uint8_t *>(tb_link_tx_buf(&link));
            if (use_ext && next_tx % 4 != 3)
                commit_ext(next_tx, buf);
            else
                tb_link_tx_commit(&link, build_payload(next_tx, buf));
            next_tx++;
            n++;
        }
        return n;
    }

    // Frame n as an engine-header-sized payload with its number, and its
    // bytes in an ext buffer the link must not copy.
    void commit_ext(uint32_t n, uint8_t *buf)
    {
        std::memset(buf, 0, TB_ENGINE_HDR_LEN);
        for (int k = 0; k < 4; k++)
            buf[k] = static_cast<uint8_t>(n >> (8 * k));
        sources.emplace_back(ext_len_of(n));
        auto &src = sources.back();
        for (uint32_t i = 0; i < src.size(); i++)
            src[i] = pat(n, i);
        tb_link_ext ext{};
        ext.data = src.data();
        ext.len = static_cast<uint32_t>(src.size());
        ext.owner = &owners[n % 2];
        ext_refs++;
        tb_link_tx_commit_ext(&link, TB_ENGINE_HDR_LEN, &ext);
    }

    bool all_acked() const { return link.tx_una == link.tx_next && next_tx == to_send; }

    static int deliver(void *user, tb_link *, const void *payload, uint32_t len, const void *ext,
                       uint32_t ext_len)
    {
        auto *self = static_cast<link_end *>(user);
        if (self->stall) {
            self->stalled_calls++;
            return -EAGAIN;
        }
        const auto *p = static_cast<const uint8_t *>(payload);
        uint32_t n = 0;
        for (int k = 0; k < 4 && k < static_cast<int>(len); k++)
            n |= static_cast<uint32_t>(p[k]) << (8 * k);
        bool ok;
        if (ext) {
            // The peer sends every frame but each fourth with an ext.
            const auto *x = static_cast<const uint8_t *>(ext);
            ok = len == TB_ENGINE_HDR_LEN && n % 4 != 3 && ext_len == ext_len_of(n);
            for (uint32_t i = 0; ok && i < ext_len; i++)
                ok = x[i] == pat(n, i);
            self->ext_frames++;
        } else {
            ok = len >= 4 && len == payload_len(n);
            for (uint32_t i = 4; ok && i < len; i++)
                ok = p[i] == pat(n, i);
        }
        if (!ok)
            self->bad_payloads++;
        self->got.push_back(n);
        if (self->fail_after && n == *self->fail_after)
            tb_link_fail(&self->link);
        return 0;
    }
    static void state_changed(void *user, tb_link *, uint32_t state)
    {
        static_cast<link_end *>(user)->states.push_back(state);
    }
    static void ext_put(void *user, const tb_link_ext *ext)
    {
        auto *self = static_cast<link_end *>(user);
        if (ext->owner != &self->owners[0] && ext->owner != &self->owners[1])
            self->bad_puts++;
        self->ext_refs--;
    }
    static const tb_link_user_ops user_ops;

    const tb_phy_ops *phy_ops = &mem_cable_end::ops;
    bool use_ext = false;                      // send with ext buffers
    std::deque<std::vector<uint8_t>> sources;  // ext bytes, never moved
    int owners[2] = {};                        // ext owners: by frame parity
    int64_t ext_refs = 0;                      // commits minus ext_put calls
    uint64_t bad_puts = 0, ext_frames = 0;

    mem_cable_end cable;
    tb_link link{};
    bool live = false;
    std::vector<uint32_t> got;     // frame numbers in delivery order
    std::vector<uint32_t> states;  // every state_changed() call
    uint32_t next_tx = 0, to_send = 0;
    uint64_t bad_payloads = 0, stalled_calls = 0;
    bool stall = false;   // deliver() refuses with -EAGAIN
    // deliver() takes the link down after this frame, as the engine does
    // on a protocol error.
    std::optional<uint32_t> fail_after;
    bool frozen = false;  // never progressed: a peer that stopped answering
};

// No user acks: the link alone, as a user that has none runs it.
const tb_link_user_ops link_end::user_ops = {
    &link_end::deliver, &link_end::state_changed, &link_end::ext_put, nullptr, nullptr, nullptr};

tb_link_config default_cfg()
{
    tb_link_config c;
    tb_link_config_default(&c);
    return c;
}

struct link_pair {
    explicit link_pair(uint64_t seed, const tb_link_config &c = default_cfg(), size_t slots = 64)
        : cfg(c), a(slots, seed), b(slots, seed * 7919 + 1)
    {
        a.cable.connect(&b.cable);
        b.cable.connect(&a.cable);
        // Far ahead of the real clock, so tb_link_tx_commit(), which takes
        // the later of the real clock and the last progress time, always
        // uses the virtual one.
        now = tb_now_ns() + 1000000000000ull;
        a.init(cfg, now);
        b.init(cfg, now);
    }

    // One round: both links receive and run timers, both users send what
    // they can and flush owed acks. Checks the sender-side invariants.
    int step()
    {
        int n = 0;
        for (link_end *e : {&a, &b}) {
            if (e->frozen || !e->live)
                continue;
            n += tb_link_progress(&e->link, now);
            n += e->fill();
            tb_link_flush_ack(&e->link);
            if (e->link.tx_next - e->link.tx_una > cfg.tx_window)
                window_violations++;
            if (tb_seq_after(e->link.tx_next, e->link.tx_credit))
                credit_violations++;
        }
        now += n ? busy_step_ns : idle_step_ns;
        return n;
    }

    template <class Pred> bool pump_until(Pred pred, int max_rounds = 200000)
    {
        for (int i = 0; i < max_rounds; i++) {
            if (pred())
                return true;
            step();
        }
        return pred();
    }

    bool both_up() const
    {
        return a.link.state == TBRDMA_LINK_UP && b.link.state == TBRDMA_LINK_UP;
    }

    void bring_up() { BOOST_REQUIRE(pump_until([&] { return both_up(); }, 10000)); }

    // Runs until neither side has anything in flight or owed.
    void settle()
    {
        BOOST_REQUIRE(pump_until([&] {
            return a.all_acked() && b.all_acked() && !a.link.ack_pending && !b.link.ack_pending;
        }));
        for (int i = 0; i < 10; i++)
            step();
    }

    void set_faults(const cable_faults &f)
    {
        a.cable.set_faults(f);
        b.cable.set_faults(f);
    }

    tb_link_config cfg;
    link_end a, b;
    uint64_t now;
    uint64_t window_violations = 0, credit_violations = 0;
};

// first, first + 1, ..., first + n - 1
std::vector<uint32_t> iota_n(uint32_t n, uint32_t first = 0)
{
    std::vector<uint32_t> v(n);
    std::iota(v.begin(), v.end(), first);
    return v;
}

std::vector<uint32_t> tail(const std::vector<uint32_t> &v, size_t from)
{
    return std::vector<uint32_t>(v.begin() + static_cast<long>(from), v.end());
}

// Sends n more frames each way (under whatever faults are set) and checks
// that each side got exactly the next n frame numbers, in order, intact.
void exchange(link_pair &p, uint32_t n, int max_rounds = 2000000)
{
    uint32_t a0 = static_cast<uint32_t>(p.b.got.size()), b0 = static_cast<uint32_t>(p.a.got.size());
    p.a.to_send += n;
    p.b.to_send += n;
    BOOST_REQUIRE(p.pump_until(
        [&] {
            // >=: extra deliveries must show up as a mismatch below.
            return p.a.got.size() >= b0 + n && p.b.got.size() >= a0 + n && p.a.all_acked() &&
                   p.b.all_acked();
        },
        max_rounds));
    // Frame numbers continue where the previous exchange stopped.
    BOOST_TEST(tail(p.b.got, a0) == iota_n(n, a0));
    BOOST_TEST(tail(p.a.got, b0) == iota_n(n, b0));
    BOOST_TEST(p.a.bad_payloads == 0u);
    BOOST_TEST(p.b.bad_payloads == 0u);
    BOOST_TEST(p.window_violations == 0u);
    BOOST_TEST(p.credit_violations == 0u);
}

const std::vector<uint32_t> only_up = {TBRDMA_LINK_UP};
const std::vector<uint32_t> up_then_down = {TBRDMA_LINK_UP, TBRDMA_LINK_DOWN};

// A frame as the peer of `to` would send it now, for injection.
std::vector<uint8_t> frame_for(const tb_link &to, uint8_t type, uint32_t payload)
{
    std::vector<uint8_t> f(TB_LINK_HDR_LEN + payload, 0x5a);
    tb_link_hdr h{};
    h.type = type;
    h.len = static_cast<uint16_t>(payload);
    h.seq = to.rx_next;
    h.ack = to.tx_next;  // acks exactly what `to` sent: always acceptable
    h.credit = to.tx_credit;
    h.epoch_src = to.peer_epoch;
    h.epoch_dst = to.epoch;
    tb_link_hdr_encode(f.data(), &h);
    return f;
}

}  // namespace

// "link" as a namespace at file scope would clash with ::link() from
// <unistd.h>; inside one of our own the suite keeps its name.
namespace tbtest_link_suite {

BOOST_AUTO_TEST_SUITE(link)

BOOST_AUTO_TEST_CASE(bring_up)
{
    link_pair p(1);
    BOOST_TEST(p.a.link.state == TBRDMA_LINK_CONNECTING);
    BOOST_TEST(!tb_link_can_send(&p.a.link));
    p.bring_up();
    BOOST_TEST(p.a.states == only_up);
    BOOST_TEST(p.b.states == only_up);
    BOOST_TEST(p.a.link.peer_epoch == p.b.link.epoch);
    BOOST_TEST(p.b.link.peer_epoch == p.a.link.epoch);
    BOOST_TEST(tb_link_can_send(&p.a.link));
    BOOST_TEST(p.a.link.stats.rx_bad == 0u);
    BOOST_TEST(p.b.link.stats.rx_bad == 0u);
    exchange(p, 100);
}

// Every HELLO lost for a while, then half of them: the links still come up
// (and only once), and then carry data.
BOOST_AUTO_TEST_CASE(bring_up_with_hello_loss)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        BOOST_TEST_CONTEXT("seed " << seed)
        {
            link_pair p(seed);
            cable_faults all;
            all.loss = 1.0;
            p.set_faults(all);
            for (int i = 0; i < 30; i++)
                p.step();
            BOOST_TEST(p.a.link.state == TBRDMA_LINK_CONNECTING);
            BOOST_TEST(p.a.link.peer_epoch == 0u);
            // One HELLO per hello_ns from each side, all lost.
            BOOST_TEST(p.a.cable.dropped >= 5u);
            BOOST_TEST(p.b.cable.dropped >= 5u);
            cable_faults half;
            half.loss = 0.5;
            p.set_faults(half);
            p.bring_up();
            p.set_faults({});
            exchange(p, 50);
            BOOST_TEST(p.a.states == only_up);
            BOOST_TEST(p.b.states == only_up);
        }
    }
}

BOOST_AUTO_TEST_CASE(in_order_exactly_once_loss_dup_reorder)
{
    link_pair p(11);
    cable_faults f;
    f.loss = 0.01;
    f.dup = 0.01;
    f.reorder = 0.01;
    p.set_faults(f);
    p.bring_up();
    exchange(p, 10000);
    for (link_end *e : {&p.a, &p.b}) {
        const tb_link_stats &s = e->link.stats;
        BOOST_TEST(s.tx_frames == 10000u);
        BOOST_TEST(s.rx_frames == 10000u);
        BOOST_TEST(s.retransmits > 0u);  // losses were repaired by resending
        BOOST_TEST(s.rx_dup > 0u);       // duplicates were seen and dropped
        BOOST_TEST(s.rx_gap > 0u);       // so were holes
        BOOST_TEST(s.rx_bad == 0u);
        BOOST_TEST(e->states == only_up);
    }
}

BOOST_AUTO_TEST_CASE(in_order_exactly_once_heavy_loss)
{
    link_pair p(12);
    cable_faults f;
    f.loss = 0.10;
    p.set_faults(f);
    p.bring_up();
    exchange(p, 10000, 5000000);
    for (link_end *e : {&p.a, &p.b}) {
        BOOST_TEST(e->link.stats.rx_frames == 10000u);
        BOOST_TEST(e->link.stats.retransmits > 0u);
        BOOST_TEST(e->link.stats.timeouts > 0u);  // some losses need the timer
        BOOST_TEST(e->states == only_up);
    }
    BOOST_TEST(p.a.cable.dropped > 500u);  // the faults really happened
}

// Selective repeat: two frames lost in one window are resent, and nothing
// else; the receiver keeps what came after each gap, and no timer runs.
// Once more while the receiver cannot take frames for a while: what it
// kept waits, in order, and nothing is lost or delivered twice.
BOOST_AUTO_TEST_CASE(only_lost_frames_are_resent)
{
    for (bool stall : {false, true}) {
        BOOST_TEST_CONTEXT("stall " << stall)
        {
            link_pair p(91);
            p.bring_up();
            exchange(p, 10);
            p.settle();
            const tb_link_stats before = p.a.link.stats;
            const uint64_t sent = p.a.cable.sent;
            p.a.cable.lose = {sent + 3, sent + 10};
            p.a.to_send += 40;
            p.step();
            BOOST_REQUIRE(p.a.cable.sent == sent + 40);
            BOOST_REQUIRE(p.b.link.ooo_count == 36u);
            p.b.stall = stall;
            for (int i = 0; i < 50; i++)
                p.step();
            if (stall)
                BOOST_TEST(p.b.link.ooo_count > 0u);
            p.b.stall = false;
            BOOST_REQUIRE(p.pump_until([&] { return p.b.got.size() == 50u && p.a.all_acked(); }));
            BOOST_TEST(p.b.got == iota_n(50));
            BOOST_TEST(p.b.bad_payloads == 0u);
            const tb_link_stats &s = p.a.link.stats;
            BOOST_TEST(s.retransmits - before.retransmits == 2u);
            BOOST_TEST(s.timeouts == before.timeouts);
            BOOST_TEST(p.b.link.stats.rx_dup == 0u);
            BOOST_TEST(p.b.link.ooo_count == 0u);
            BOOST_TEST(p.a.link.nlost == 0u);
        }
    }
}

// The user takes the link down while kept frames go up: the rest stay.
BOOST_AUTO_TEST_CASE(kept_frames_stop_when_the_link_fails)
{
    link_pair p(93);
    p.bring_up();
    exchange(p, 10);
    p.settle();
    p.a.cable.lose = {p.a.cable.sent + 3};
    p.b.fail_after = 14;
    p.a.to_send += 10;
    BOOST_REQUIRE(p.pump_until([&] { return p.b.link.state == TBRDMA_LINK_DOWN; }));
    for (int i = 0; i < 20; i++)
        p.step();
    BOOST_TEST(p.b.got == iota_n(15));
    BOOST_TEST(p.b.states == up_then_down);
}

// A receiver that may be sent more frames ahead than a selective ack can
// name keeps the first ones after a gap and drops the rest; once the gap
// is filled it asks for the rest again, and no timer runs.
BOOST_AUTO_TEST_CASE(frames_beyond_those_kept_are_asked_for_again)
{
    tb_link_config cfg = default_cfg();
    cfg.rx_slots = 256;
    cfg.tx_window = 256;
    link_pair p(92, cfg, 256);
    p.bring_up();
    exchange(p, 10);
    p.settle();
    const uint64_t timeouts = p.a.link.stats.timeouts;
    p.a.cable.lose = {p.a.cable.sent + 1};
    p.a.to_send += 150;
    BOOST_REQUIRE(p.pump_until([&] { return p.b.got.size() == 160u && p.a.all_acked(); }));
    BOOST_TEST(p.b.got == iota_n(160));
    BOOST_TEST(p.b.link.ooo_slots == TB_LINK_SACK_BITS);
    BOOST_TEST(p.b.link.stats.rx_gap > TB_LINK_SACK_BITS);
    BOOST_TEST(p.a.link.stats.timeouts == timeouts);
    BOOST_TEST(p.b.link.ooo_count == 0u);
    BOOST_TEST(p.b.link.ooo_dropped == 0);
}

// Sequence numbers wrap around 2^32 in the middle of a lossy transfer,
// with the default window and with one that is not a power of two (an
// XDomain peer chooses it), where slot seq % window would jump at the wrap
// onto frames still unacked (2^32 % 63 = 4: four slots collide). The link
// keeps the power of two at or below the window.
BOOST_AUTO_TEST_CASE(sequence_wrap)
{
    for (uint32_t window : {64u, 63u}) {
        tb_link_config cfg = default_cfg();
        cfg.tx_window = window;
        link_pair p(13, cfg);
        for (link_end *e : {&p.a, &p.b}) {
            tb_link &l = e->link;
            l.tx_next = l.tx_una = l.tx_resend = l.tx_credit = l.sack_marked = 0xffffff00u;
        }
        cable_faults f;
        f.loss = 0.02;
        f.reorder = 0.02;
        p.set_faults(f);
        p.bring_up();
        exchange(p, 1000);
        BOOST_TEST(tb_seq_after(p.a.link.tx_next, 0xffffff00u));
        BOOST_TEST(p.a.link.tx_next < 0x1000u);  // really went past 0
        const uint32_t kept = p.a.link.cfg.tx_window;
        BOOST_TEST((kept & (kept - 1)) == 0u);
        BOOST_TEST(kept <= window);
        BOOST_TEST(kept * 2 > window);
    }
}

// A receiver stalls (deliver() says -EAGAIN) for about 2 s of virtual
// time with a sender that has plenty to say, then resumes. Its receive
// slots stay busy meanwhile; credits must keep the sender from overrunning
// them (a cable with queues exactly rx_slots deep counts every frame that
// found no room), and everything must arrive afterwards, once, in order.
void stall_then_resume(const tb_link_config &cfg)
{
    link_pair p(21, cfg, cfg.rx_slots);
    p.bring_up();
    p.a.to_send = 3000;
    p.b.stall = true;
    for (int i = 0; i < 2000; i++)
        p.step();
    BOOST_TEST(p.b.got.empty());
    BOOST_TEST(p.b.stalled_calls > 0u);
    BOOST_TEST(p.b.link.stats.rx_stalls > 0u);
    // The sender used its credit and stopped: the receive slots less the
    // few kept back for ACK and HELLO frames.
    BOOST_TEST(p.a.next_tx > 0u);
    BOOST_TEST(p.a.next_tx < cfg.rx_slots);
    BOOST_TEST(!tb_link_can_send(&p.a.link));
    BOOST_TEST(p.credit_violations == 0u);
    BOOST_TEST(p.a.link.state == TBRDMA_LINK_UP);  // 2 s < dead_ns
    BOOST_TEST(p.a.cable.dropped == 0u, "frames dropped on b's full receive queue during the stall: "
                                            << p.a.cable.dropped << " (a's retransmits "
                                            << p.a.link.stats.retransmits << ", timeouts "
                                            << p.a.link.stats.timeouts << ")");

    p.b.stall = false;
    BOOST_REQUIRE(p.pump_until([&] { return p.b.got.size() >= 3000 && p.a.all_acked(); }));
    BOOST_TEST(p.b.got == iota_n(3000));
    BOOST_TEST(p.b.bad_payloads == 0u);
    BOOST_TEST(p.a.cable.dropped == 0u);
    BOOST_TEST(p.b.cable.dropped == 0u);
    BOOST_TEST(p.credit_violations == 0u);
    BOOST_TEST(p.window_violations == 0u);
}

// Credits alone: the retransmission timer is longer than the stall, so
// only credits stand between the sender and the busy slots.
BOOST_AUTO_TEST_CASE(credits_hold_back_sender_during_stall)
{
    tb_link_config cfg = default_cfg();
    cfg.rx_slots = 16;
    cfg.rto_min_ns = cfg.rto_max_ns = 10000000000ull;
    cfg.dead_ns = 100000000000ull;
    stall_then_resume(cfg);
}

// The same with the default timers: the retransmission timeout fires many
// times during the stall, and what it resends must not overrun the slots
// either.
BOOST_AUTO_TEST_CASE(stall_longer_than_rto_does_not_overrun)
{
    tb_link_config cfg = default_cfg();
    cfg.rx_slots = 16;
    stall_then_resume(cfg);
}

// The same stall, but stalling and resuming at every frame for a while: no
// frame is lost or repeated across -EAGAIN.
BOOST_AUTO_TEST_CASE(intermittent_stall)
{
    link_pair p(22);
    p.bring_up();
    p.a.to_send = 2000;
    int i = 0;
    BOOST_REQUIRE(p.pump_until([&] {
        p.b.stall = (i++ % 3) == 0;
        return p.b.got.size() >= 2000 && p.a.all_acked();
    }));
    BOOST_TEST(p.b.got == iota_n(2000));
    BOOST_TEST(p.b.bad_payloads == 0u);
    BOOST_TEST(p.b.link.stats.rx_stalls > 0u);
}

// The peer comes back as a new incarnation (new epoch): the old link must
// not take it for the peer it knew, and goes down.
BOOST_AUTO_TEST_CASE(peer_restart_takes_link_down)
{
    link_pair p(31);
    p.bring_up();
    exchange(p, 200);
    uint32_t old_epoch = p.b.link.epoch;
    p.a.to_send += 50;  // some frames in flight when b restarts
    p.a.fill();
    p.b.init(p.cfg, p.now);
    BOOST_REQUIRE_NE(p.b.link.epoch, old_epoch);
    BOOST_REQUIRE(p.pump_until([&] { return p.a.link.state == TBRDMA_LINK_DOWN; }, 1000));
    BOOST_TEST(p.a.states == up_then_down);
    BOOST_TEST(!tb_link_can_send(&p.a.link));
    // The new b never pairs with the old a, nor takes its old frames.
    for (int i = 0; i < 100; i++)
        p.step();
    BOOST_TEST(p.b.link.state == TBRDMA_LINK_CONNECTING);
    BOOST_TEST(p.b.got.empty());
    BOOST_TEST(p.a.states == up_then_down);  // DOWN is reported once

    // Once a restarts too, the two new incarnations connect.
    p.a.init(p.cfg, p.now);
    p.bring_up();
    exchange(p, 200);
    BOOST_TEST(p.a.states == only_up);
    BOOST_TEST(p.b.states == only_up);
}

// What the link reports as its round trip is the least one: frames that
// waited behind others while the peer did not poll raise the smoothed
// round trip (the timer's), not the reported one.
BOOST_AUTO_TEST_CASE(reported_round_trip_ignores_queueing)
{
    tb_link_config cfg = default_cfg();
    cfg.rto_min_ns = cfg.rto_max_ns = 10000000000ull;  // no resend: every frame a sample
    cfg.dead_ns = 100000000000ull;
    link_pair p(78, cfg);
    p.bring_up();
    exchange(p, 200);
    p.settle();
    const tb_link &l = p.a.link;
    const uint32_t least = tb_link_rtt_ns(&l);
    BOOST_REQUIRE_GT(least, 0u);
    BOOST_TEST(least <= l.srtt_ns);
    const uint64_t srtt = l.srtt_ns;

    p.b.frozen = true;
    p.a.to_send += 8;
    for (int i = 0; i < 20; i++)  // about 20 ms: idle steps
        p.step();
    p.b.frozen = false;
    p.settle();
    BOOST_TEST(p.b.got.size() == 208u);
    BOOST_TEST(l.srtt_ns > srtt + 1000000);
    BOOST_TEST(tb_link_rtt_ns(&l) == least);

    // A new login (here a's restart) measures anew.
    p.a.init(cfg, p.now);
    BOOST_TEST(tb_link_rtt_ns(&l) == 0u);
}

// The retransmission timeout follows the round trip: after traffic it is
// far below the initial 2 ms, and a lost last frame (no later frame shows
// the hole) is resent after that, not after rto_init_ns.
BOOST_AUTO_TEST_CASE(rto_follows_round_trip)
{
    link_pair p(77);
    p.bring_up();
    exchange(p, 200);
    p.settle();
    const tb_link &l = p.a.link;
    BOOST_TEST(l.srtt_ns > 0u);
    BOOST_TEST(l.rto_ns >= p.cfg.rto_min_ns);
    BOOST_TEST(l.rto_ns < p.cfg.rto_init_ns);

    const uint64_t timeouts = l.stats.timeouts;
    const size_t got = p.b.got.size();
    p.a.cable.set_faults({1.0, 0, 0, 0});
    p.a.to_send++;
    BOOST_REQUIRE(p.pump_until([&] { return p.a.next_tx == p.a.to_send; }));
    p.a.cable.set_faults({});
    const uint64_t lost_at = p.now;
    BOOST_REQUIRE(p.pump_until([&] { return p.b.got.size() == got + 1; }));
    BOOST_TEST(p.now - lost_at < p.cfg.rto_init_ns);
    BOOST_TEST(l.stats.timeouts == timeouts + 1);
    BOOST_TEST(p.b.got.back() == static_cast<uint32_t>(got));
}

// A peer that stops answering while frames are in flight: DOWN after
// dead_ns of virtual time without progress, and not a moment before.
BOOST_AUTO_TEST_CASE(dead_peer_after_dead_ns)
{
    tb_link_config cfg = default_cfg();
    cfg.rto_min_ns = 2000000;
    cfg.rto_max_ns = 8000000;
    cfg.dead_ns = 50000000;
    link_pair p(41, cfg);
    p.bring_up();
    exchange(p, 100);
    p.settle();
    BOOST_REQUIRE(p.a.states == only_up);

    p.b.frozen = true;
    const uint64_t t0 = p.now;
    tb_link_progress(&p.a.link, t0);
    p.a.to_send++;
    BOOST_REQUIRE_EQUAL(p.a.fill(), 1);  // in flight from t0
    for (uint64_t t = t0 + 1000000; t <= t0 + cfg.dead_ns; t += 1000000) {
        tb_link_progress(&p.a.link, t);
        BOOST_REQUIRE_MESSAGE(p.a.link.state == TBRDMA_LINK_UP, "down after " << t - t0 << " ns");
    }
    BOOST_TEST(p.a.link.stats.timeouts > 0u);  // it kept trying meanwhile
    BOOST_TEST(p.a.link.stats.retransmits > 0u);
    tb_link_progress(&p.a.link, t0 + cfg.dead_ns + 1);
    BOOST_TEST(p.a.link.state == TBRDMA_LINK_DOWN);
    BOOST_TEST(p.a.states == up_then_down);
    // A link that is down stays quiet.
    uint64_t sent = p.a.cable.sent;
    BOOST_TEST(tb_link_progress(&p.a.link, t0 + 10 * cfg.dead_ns) == 0);
    BOOST_TEST(p.a.cable.sent == sent);
    BOOST_TEST(p.a.states == up_then_down);
}

// A peer that never answers HELLO: the connecting link gives up after
// dead_ns too.
BOOST_AUTO_TEST_CASE(connecting_gives_up_after_dead_ns)
{
    tb_link_config cfg = default_cfg();
    cfg.dead_ns = 30000000;
    link_pair p(42, cfg);
    p.b.frozen = true;
    const uint64_t t0 = p.now;
    for (uint64_t t = t0; t <= t0 + cfg.dead_ns; t += 1000000) {
        tb_link_progress(&p.a.link, t);
        BOOST_REQUIRE(p.a.link.state == TBRDMA_LINK_CONNECTING);
    }
    tb_link_progress(&p.a.link, t0 + cfg.dead_ns + 1);
    BOOST_TEST(p.a.link.state == TBRDMA_LINK_DOWN);
    BOOST_TEST(p.a.states == std::vector<uint32_t>{TBRDMA_LINK_DOWN});
    BOOST_TEST(p.a.cable.sent >= 5u);  // it did keep saying HELLO
}

BOOST_AUTO_TEST_CASE(unplug_takes_both_down)
{
    link_pair p(51);
    p.bring_up();
    exchange(p, 100);
    p.a.to_send += 100;
    p.a.fill();
    p.a.cable.unplug();
    BOOST_REQUIRE(p.pump_until(
        [&] { return p.a.link.state == TBRDMA_LINK_DOWN && p.b.link.state == TBRDMA_LINK_DOWN; },
        100));
    for (int i = 0; i < 20; i++)
        p.step();
    BOOST_TEST(p.a.states == up_then_down);
    BOOST_TEST(p.b.states == up_then_down);
    BOOST_TEST(!tb_link_can_send(&p.a.link));
    BOOST_TEST(!tb_link_can_send(&p.b.link));
    BOOST_TEST(tb_link_next_deadline(&p.a.link) == 0u);
    // What b did deliver was still in order.
    BOOST_TEST(p.b.got == iota_n(static_cast<uint32_t>(p.b.got.size())));
}

// Garbage written straight into a receiver's queue: counted as bad, and
// nothing else changes; the link then carries on as before.
BOOST_AUTO_TEST_CASE(garbage_frames_counted_and_ignored)
{
    link_pair p(61);
    p.bring_up();
    exchange(p, 300);
    p.settle();

    // A third cable end whose frames land in b's receive queue.
    mem_cable_end inj(1, 99);
    inj.connect(&p.b.cable);
    auto inject = [&](const std::vector<uint8_t> &f) {
        BOOST_REQUIRE_EQUAL(mem_cable_end::ops.xmit(&inj, f.data(), static_cast<uint32_t>(f.size()), nullptr), 0);
        BOOST_REQUIRE_EQUAL(inj.dropped, 0u);
        // b takes it at once (a is idle), so the queue never fills.
        BOOST_REQUIRE_EQUAL(tb_link_progress(&p.b.link, p.now), 1);
    };

    const tb_link &bl = p.b.link;
    const tb_link_stats before = bl.stats;
    const uint32_t rx_next = bl.rx_next, tx_una = bl.tx_una, tx_next = bl.tx_next,
                   tx_credit = bl.tx_credit, epoch = bl.epoch, peer_epoch = bl.peer_epoch;
    const size_t got = p.b.got.size();
    uint64_t injected = 0;

    std::mt19937_64 rng(0x9a7ba9e);
    // Random bytes of random lengths, including none and more than a frame.
    for (int i = 0; i < 300; i++) {
        std::vector<uint8_t> f(i == 0 ? 0 : i == 1 ? TBRDMA_FRAME_MAX + 1 : rng() % 4200);
        for (auto &x : f)
            x = static_cast<uint8_t>(rng());
        if (!f.empty() && f[0] == 0x62)
            f[0] = 0;  // keep the magic wrong: random, not a lucky HELLO
        inject(f);
        injected++;
    }
    // Valid frames, truncated anywhere.
    const std::vector<uint8_t> data = frame_for(bl, TB_LINK_DATA, 200);
    for (size_t n = 0; n < data.size(); n += 3) {
        inject(std::vector<uint8_t>(data.begin(), data.begin() + static_cast<long>(n)));
        injected++;
    }
    // Well-formed DATA and ACK frames of another incarnation of either end.
    for (int i = 0; i < 50; i++) {
        for (uint8_t type : {uint8_t(TB_LINK_DATA), uint8_t(TB_LINK_ACK)}) {
            std::vector<uint8_t> f = frame_for(bl, type, type == TB_LINK_DATA ? 100 : 0);
            tb_link_hdr h;
            BOOST_REQUIRE_EQUAL(tb_link_hdr_decode(f.data(), static_cast<uint32_t>(f.size()), &h), 0);
            if (i & 1)
                h.epoch_src = peer_epoch + 1 + static_cast<uint32_t>(rng() % 1000);
            else
                h.epoch_dst = epoch ^ (1u + static_cast<uint32_t>(rng() % 1000));
            tb_link_hdr_encode(f.data(), &h);
            inject(f);
            injected++;
        }
    }
    // The right epochs, but acking frames b never sent.
    for (uint32_t ahead : {1u, 2u, 1000u, 0x7fffffffu}) {
        std::vector<uint8_t> f = frame_for(bl, TB_LINK_ACK, 0);
        tb_link_hdr h;
        BOOST_REQUIRE_EQUAL(tb_link_hdr_decode(f.data(), static_cast<uint32_t>(f.size()), &h), 0);
        h.ack = tx_next + ahead;
        tb_link_hdr_encode(f.data(), &h);
        inject(f);
        injected++;
    }

    BOOST_TEST(bl.stats.rx_bad == before.rx_bad + injected);
    BOOST_TEST(bl.stats.rx_frames == before.rx_frames);
    BOOST_TEST(bl.stats.rx_dup == before.rx_dup);
    BOOST_TEST(bl.stats.rx_gap == before.rx_gap);
    BOOST_TEST(p.b.got.size() == got);
    BOOST_TEST(bl.state == TBRDMA_LINK_UP);
    BOOST_TEST(bl.rx_next == rx_next);
    BOOST_TEST(bl.tx_una == tx_una);
    BOOST_TEST(bl.tx_next == tx_next);
    BOOST_TEST(bl.tx_credit == tx_credit);
    BOOST_TEST(bl.epoch == epoch);
    BOOST_TEST(bl.peer_epoch == peer_epoch);
    BOOST_TEST(p.b.states == only_up);

    // The link carries on as if nothing had happened.
    exchange(p, 300);
    p.settle();
    BOOST_TEST(bl.stats.rx_bad == before.rx_bad + injected);

    // Control: a well-formed current frame sent the same way is taken (it
    // ends the test, since a never sent it).
    const uint32_t rx_now = bl.rx_next;
    inject(frame_for(bl, TB_LINK_DATA, 200));
    BOOST_TEST(bl.stats.rx_bad == before.rx_bad + injected);
    BOOST_TEST(bl.rx_next == rx_now + 1);
    BOOST_TEST(p.b.got.size() == got + 301);
}

// Links over a cable with ext buffers, both ends sending three frames in
// four with one.
void use_ext(link_pair &p)
{
    for (link_end *e : {&p.a, &p.b}) {
        e->phy_ops = &mem_cable_end::ext_ops;
        e->use_ext = true;
        e->init(p.cfg, p.now);
    }
}

// Frames and their ext buffers lost, duplicated, reordered and corrupted
// one descriptor at a time: every frame still arrives once, in order, with
// its ext bytes; each ext reference is given back exactly once.
BOOST_AUTO_TEST_CASE(ext_buffers_under_faults)
{
    link_pair p(71, default_cfg(), 128);
    use_ext(p);
    p.bring_up();
    exchange(p, 500);
    BOOST_TEST(p.a.link.stats.tx_ext > 300u);
    // No corruption: USB4 drops frames that fail their CRC.
    p.set_faults({0.02, 0.02, 0.02, 0});
    exchange(p, 3000);
    p.set_faults({});
    p.settle();
    for (link_end *e : {&p.a, &p.b}) {
        BOOST_TEST(e->bad_payloads == 0u);
        BOOST_TEST(e->bad_puts == 0u);
        BOOST_TEST(e->ext_refs == 0);
        BOOST_TEST(e->ext_frames > 2000u);
        BOOST_TEST(e->got == iota_n(3500));
    }
    // Torn pairs happened and were dropped, not delivered wrong.
    BOOST_TEST(p.a.cable.unpaired + p.b.cable.unpaired > 0u);
    BOOST_TEST(p.a.link.stats.rx_bad + p.b.link.stats.rx_bad > 0u);
    BOOST_TEST(p.window_violations == 0u);
    BOOST_TEST(p.credit_violations == 0u);
}

// The memory behind unacked ext buffers goes away (a region deregistered):
// the link copies what it still needs, gives the references back at once,
// and the peer receives the bytes as they were when sent.
BOOST_AUTO_TEST_CASE(ext_detach_copies_unacked_frames)
{
    link_pair p(81, default_cfg(), 128);
    use_ext(p);
    p.bring_up();
    p.b.frozen = true;  // nothing gets acked
    p.a.to_send = 40;
    p.step();
    BOOST_REQUIRE_EQUAL(p.a.next_tx, 40u);
    BOOST_REQUIRE_EQUAL(p.a.ext_refs, 30);
    // Frames 0, 2, 4, .. (20 of them) have owner 0, frames 1, 5, 9, .. owner 1.
    const uint32_t even = tb_link_detach_ext(&p.a.link, &p.a.owners[0]);
    BOOST_TEST(even == 20u);
    BOOST_TEST(p.a.ext_refs == 10);
    BOOST_TEST(tb_link_detach_ext(&p.a.link, &p.a.owners[0]) == 0u);
    BOOST_TEST(tb_link_detach_ext(&p.a.link, &p.a.owners[1]) == 10u);
    BOOST_TEST(p.a.ext_refs == 0);
    BOOST_TEST(p.a.link.stats.ext_detached == 30u);
    for (auto &src : p.a.sources)
        std::fill(src.begin(), src.end(), 0x5a);  // the old memory is gone
    p.b.frozen = false;
    BOOST_REQUIRE(p.pump_until([&] { return p.b.got.size() >= 40 && p.a.all_acked(); }));
    BOOST_TEST(p.b.got == iota_n(40));
    BOOST_TEST(p.b.bad_payloads == 0u);
    BOOST_TEST(p.a.ext_refs == 0);
    BOOST_TEST(p.a.bad_puts == 0u);
}

// A link that goes down gives back every reference it held at once.
BOOST_AUTO_TEST_CASE(ext_references_released_when_link_fails)
{
    link_pair p(91, default_cfg(), 128);
    use_ext(p);
    p.bring_up();
    p.b.frozen = true;
    p.a.to_send = 40;
    p.step();
    BOOST_REQUIRE_EQUAL(p.a.ext_refs, 30);
    p.a.cable.unplug();
    BOOST_REQUIRE(p.pump_until([&] { return p.a.link.state == TBRDMA_LINK_DOWN; }, 100));
    BOOST_TEST(p.a.ext_refs == 0);
    BOOST_TEST(p.a.bad_puts == 0u);
    // Nothing more is taken on a link that is down.
    tb_link_ext ext{};
    uint8_t byte = 1;
    ext.data = &byte;
    ext.len = 1;
    ext.owner = &p.a.owners[0];
    p.a.ext_refs++;
    tb_link_tx_commit_ext(&p.a.link, TB_ENGINE_HDR_LEN, &ext);
    BOOST_TEST(p.a.ext_refs == 0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace tbtest_link_suite
