// SPDX-License-Identifier: BSD-2-Clause
//
// The control protocol (tb_ctrl) between two hosts over a fake XDomain
// transport that behaves like the kernel's: one request in flight per
// side, a response is handed to whatever request of that side is pending
// (matched by route and UUID only, so a late response meets the wrong
// request), a response nobody waits for goes to the protocol handler, and
// messages can be lost, duplicated, reordered and delivered late. Time is
// virtual and jumps to the next event.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <climits>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tb_ctrl.h"

namespace {

const uint64_t ms = 1000 * 1000;
const uint64_t request_timeout = 500 * ms;	// what the kernel glue uses
const uint64_t dead_timeout = 10000 * ms;	// tb_link's dead_ns

struct faults {
    double loss = 0;		// each message
    double dup = 0;		// delivered twice
    uint64_t jitter = 0;	// extra random delay, reorders
    double late = 0;		// delayed past the request timeout
};

struct host {
    tb_ctrl c{};
    tb_ctrl_config cfg{};
    bool pending = false;	// the XDomain core waits for a response
    uint64_t pending_deadline = 0;
    uint32_t pending_seq = 0;
    bool link_up = false;
    bool stalled = false;	// the host pops no actions (its work item waits)
    tb_ctrl_action up_action{};
    int ups = 0;
    int downs = 0;
    int refusals = 0;
    int logged_out = 0;
    std::vector<uint32_t> down_reasons;
    std::vector<tb_ctrl_action> refused;
    std::vector<std::vector<uint32_t>> requests_sent;
    std::vector<std::vector<uint32_t>> responses_sent;
    // The data link's dead timeout: it never connected (the peer never
    // came up on it), or the peer's end went away while data was due.
    uint64_t dead_at = 0;
    uint64_t dead_identity = 0;
};

struct event {
    int to;
    bool response;
    std::vector<uint32_t> w;
};

tb_ctrl_config make_config(int side, uint64_t boot)
{
    tb_ctrl_config cfg;
    tb_ctrl_config_default(&cfg);
    for (int i = 0; i < 4; i++) {
        cfg.local_uuid[i] = 0x1000u * (side + 1) + i;
        cfg.peer_uuid[i] = 0x1000u * (2 - side) + i;
    }
    cfg.boot = boot;
    cfg.local.caps = TB_CTRL_CAP_E2E | (side ? 0x100u : 0x200u);
    cfg.local.rx_slots = side ? 128 : 64;
    cfg.local.tx_slots = side ? 256 : 32;
    cfg.local.frame_max = TB_CTRL_FRAME_MAX;
    cfg.local.credits = side ? 120 : 60;
    cfg.local.hopid = side ? 9 : 8;
    return cfg;
}

struct fabric {
    host h[2];
    uint64_t now = 1;
    uint64_t order = 0;
    std::multimap<std::pair<uint64_t, uint64_t>, event> q;	// (time, order)
    faults f;
    std::mt19937_64 rng;
    uint64_t base_delay = 20 * 1000;	// 20 us
    uint64_t messages = 0, lost = 0;

    explicit fabric(uint64_t seed = 1) : rng(seed)
    {
        for (int i = 0; i < 2; i++)
            init(i, 0xb0070000ull + 16 * i + 1);
    }

    void init(int i, uint64_t boot, uint32_t ver_min = TB_CTRL_VERSION_MIN,
              uint32_t ver_max = TB_CTRL_VERSION_MAX)
    {
        host &x = h[i];
        x.cfg = make_config(i, boot);
        x.cfg.ver_min = ver_min;
        x.cfg.ver_max = ver_max;
        BOOST_REQUIRE_EQUAL(tb_ctrl_init(&x.c, &x.cfg), 0);
        // A new instance: the old one's request is forgotten by the glue.
        x.pending = false;
        x.dead_at = 0;
        if (x.link_up) {
            x.link_up = false;	// the instance went away with its link
            x.downs++;
            link_gone(i);
        }
    }

    double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng); }

    void send(int from, bool response, const uint32_t *w, uint32_t n)
    {
        messages++;
        if (uniform() < f.loss) {
            lost++;
            return;
        }
        int copies = uniform() < f.dup ? 2 : 1;
        for (int k = 0; k < copies; k++) {
            uint64_t d = base_delay;
            if (f.jitter)
                d += rng() % f.jitter;
            if (uniform() < f.late)
                d += request_timeout + rng() % (3 * request_timeout);
            q.emplace(std::make_pair(now + d, order++),
                      event{from ^ 1, response, std::vector<uint32_t>(w, w + n)});
        }
    }

    // Our end of the data link is gone: the peer's end, if it is the
    // same link, fails by its dead timeout unless the control path takes
    // it down first.
    void link_gone(int i)
    {
        host &o = h[i ^ 1];
        if (o.link_up && o.up_action.identity == h[i].up_action.identity && !o.dead_at) {
            o.dead_at = now + dead_timeout;
            o.dead_identity = o.up_action.identity;
        }
    }

    void apply(int i, const tb_ctrl_action &a)
    {
        host &x = h[i];
        switch (a.type) {
        case TB_CTRL_ACT_UP: {
            BOOST_CHECK_MESSAGE(!x.link_up, "side " << i << ": UP while up");
            x.link_up = true;
            x.up_action = a;
            x.ups++;
            host &o = h[i ^ 1];
            if (o.link_up && o.up_action.identity == a.identity) {
                o.dead_at = x.dead_at = 0;	// the link connects
            } else {
                x.dead_at = now + dead_timeout;
                x.dead_identity = a.identity;
            }
            break;
        }
        case TB_CTRL_ACT_DOWN:
            BOOST_CHECK_MESSAGE(x.link_up, "side " << i << ": DOWN while down");
            x.link_up = false;
            x.downs++;
            x.down_reasons.push_back(a.reason);
            link_gone(i);
            break;
        case TB_CTRL_ACT_REFUSED:
            x.refusals++;
            x.refused.push_back(a);
            break;
        case TB_CTRL_ACT_LOGGED_OUT:
            x.logged_out++;
            break;
        default:
            BOOST_ERROR("unknown action " << a.type);
        }
    }

    // Carries out up to n of side i's actions.
    void pop(int i, int n)
    {
        tb_ctrl_action a;
        while (n-- > 0 && tb_ctrl_next_action(&h[i].c, &a))
            apply(i, a);
    }

    void drain(int i)
    {
        host &x = h[i];
        if (!x.stalled)
            pop(i, INT_MAX);
        uint32_t buf[TB_CTRL_MSG_MAX_DW];
        uint32_t n = 0;
        if (x.pending) {
            // Never a second request while one is out.
            BOOST_CHECK_EQUAL(tb_ctrl_next_request(&x.c, now, buf, &n), 0);
            return;
        }
        if (tb_ctrl_next_request(&x.c, now, buf, &n)) {
            BOOST_REQUIRE(n >= TB_CTRL_HDR_DW && n <= TB_CTRL_MSG_MAX_DW);
            x.pending = true;
            x.pending_deadline = now + request_timeout;
            x.requests_sent.emplace_back(buf, buf + n);
            send(i, false, buf, n);
        }
        if (!x.stalled)
            pop(i, INT_MAX);
    }

    void deliver(const event &e)
    {
        host &x = h[e.to];
        uint32_t n = static_cast<uint32_t>(e.w.size());
        uint32_t resp[TB_CTRL_MSG_MAX_DW];
        uint32_t rn = 0;
        if (!e.response) {
            BOOST_REQUIRE_EQUAL(tb_ctrl_is_response(e.w.data(), n), 0);
            if (tb_ctrl_handle_request(&x.c, now, e.w.data(), n, resp, &rn)) {
                BOOST_REQUIRE(rn >= TB_CTRL_HDR_DW && rn <= TB_CTRL_MSG_MAX_DW);
                x.responses_sent.emplace_back(resp, resp + rn);
                send(e.to, true, resp, rn);
            }
        } else if (x.pending) {
            // The core matches by route and UUID only.
            x.pending = false;
            tb_ctrl_request_done(&x.c, now, e.w.data(), n);
        } else {
            // Nobody waits: the protocol handler sees it and drops it.
            BOOST_REQUIRE(tb_ctrl_is_response(e.w.data(), n));
            BOOST_CHECK_EQUAL(tb_ctrl_handle_request(&x.c, now, e.w.data(), n, resp, &rn), 0);
        }
        drain(e.to);
    }

    // Earliest thing that will happen, 0 if nothing will.
    uint64_t next_time() const
    {
        uint64_t t = 0;
        auto take = [&t](uint64_t v) {
            if (v && (!t || v < t))
                t = v;
        };
        if (!q.empty())
            take(q.begin()->first.first);
        for (const host &x : h) {
            if (x.pending)
                take(x.pending_deadline);
            else
                take(tb_ctrl_next_deadline(&x.c));
            take(x.dead_at);
        }
        return t;
    }

    // One step; false when nothing is left to happen.
    bool step()
    {
        uint64_t t = next_time();
        if (!t)
            return false;
        if (t > now)
            now = t;
        while (!q.empty() && q.begin()->first.first <= now) {
            event e = q.begin()->second;
            q.erase(q.begin());
            deliver(e);
        }
        for (int i = 0; i < 2; i++) {
            if (h[i].pending && h[i].pending_deadline <= now) {
                h[i].pending = false;
                tb_ctrl_request_done(&h[i].c, now, nullptr, 0);
            }
            if (h[i].dead_at && h[i].dead_at <= now) {
                h[i].dead_at = 0;
                if (h[i].link_up && h[i].up_action.identity == h[i].dead_identity)
                    tb_ctrl_link_failed(&h[i].c, now);
            }
            drain(i);
        }
        return true;
    }

    bool run_until(const std::function<bool()> &done, uint64_t limit)
    {
        uint64_t end = now + limit;
        for (int guard = 0; guard < 1000000; guard++) {
            if (done())
                return true;
            if (now > end || !step())
                return done();
        }
        return done();
    }

    // Runs until nothing is left to happen or the time is over.
    void settle(uint64_t limit)
    {
        uint64_t end = now + limit;
        while (now <= end && step()) {
        }
    }

    void start_both()
    {
        tb_ctrl_start(&h[0].c, now);
        tb_ctrl_start(&h[1].c, now);
        drain(0);
        drain(1);
    }

    bool both_up() const
    {
        return h[0].link_up && h[1].link_up &&
               h[0].c.state == TB_CTRL_S_UP && h[1].c.state == TB_CTRL_S_UP;
    }

    // What both ends of an up link must agree on.
    void check_consistent()
    {
        BOOST_REQUIRE(both_up());
        const tb_ctrl_action &a = h[0].up_action, &b = h[1].up_action;
        BOOST_CHECK_EQUAL(a.identity, b.identity);
        BOOST_CHECK(a.identity != 0);
        BOOST_CHECK_EQUAL(a.version, b.version);
        BOOST_CHECK_EQUAL(a.caps, b.caps);
        BOOST_CHECK_EQUAL(a.caps, h[0].cfg.local.caps & h[1].cfg.local.caps);
        BOOST_CHECK(std::memcmp(&a.peer, &h[1].cfg.local, sizeof(a.peer)) == 0);
        BOOST_CHECK(std::memcmp(&b.peer, &h[0].cfg.local, sizeof(b.peer)) == 0);
    }
};

uint32_t type_dw(uint32_t type)
{
    if (type == TB_CTRL_LOGIN)
        return TB_CTRL_LOGIN_DW;
    return type == TB_CTRL_LOGIN_RESP ? TB_CTRL_LOGIN_RESP_DW : TB_CTRL_HDR_DW;
}

tb_ctrl_msg sample_login()
{
    tb_ctrl_msg m;
    std::memset(&m, 0, sizeof(m));
    m.ver_min = TB_CTRL_VERSION_MIN;
    m.ver_max = TB_CTRL_VERSION_MAX;
    m.type = TB_CTRL_LOGIN;
    m.seq = 0x12345678;
    for (int i = 0; i < 4; i++) {
        m.sender_uuid[i] = 0x2000u + i;
        m.target_uuid[i] = 0x1000u + i;
    }
    m.sender_boot = 0x1122334455667788ull;
    m.sender_session = 7;
    m.target_boot = 0x99aabbccddeeff01ull;
    m.target_session = 3;
    m.params.caps = 0xf00d;
    m.params.rx_slots = 64;
    m.params.tx_slots = 128;
    m.params.frame_max = TB_CTRL_FRAME_MAX;
    m.params.credits = 60;
    m.params.hopid = 8;
    return m;
}

} // namespace

BOOST_AUTO_TEST_SUITE(ctrl)

BOOST_AUTO_TEST_CASE(codec_roundtrip)
{
    uint32_t buf[TB_CTRL_MSG_MAX_DW];
    for (uint32_t type = TB_CTRL_LOGIN; type <= TB_CTRL_LOGOUT_RESP; type++) {
        tb_ctrl_msg m = sample_login(), d;
        m.type = type;
        if (type == TB_CTRL_LOGIN_RESP || type == TB_CTRL_LOGOUT_RESP)
            m.status = TB_CTRL_ST_PARAMS;
        if (type != TB_CTRL_LOGIN)
            m.params = tb_ctrl_params{};
        if (type == TB_CTRL_LOGIN_RESP) {
            m.params.caps = 0x55;
            m.resp_flags = TB_CTRL_RESP_UP;
        }
        uint32_t n = tb_ctrl_encode(&m, buf);
        BOOST_CHECK_EQUAL(n, m.ndw);
        BOOST_CHECK(n * 4 + 28 <= 252);
        BOOST_REQUIRE_EQUAL(tb_ctrl_decode(buf, n, &d), 0);
        BOOST_CHECK(std::memcmp(&m, &d, sizeof(m)) == 0);
        BOOST_CHECK_EQUAL(tb_ctrl_is_response(buf, n),
                          type == TB_CTRL_LOGIN_RESP || type == TB_CTRL_LOGOUT_RESP);
    }
    BOOST_CHECK_EQUAL(TB_CTRL_LOGIN_DW * 4 + 28, 140u);
}

BOOST_AUTO_TEST_CASE(codec_rejects)
{
    uint32_t buf[TB_CTRL_MSG_MAX_DW + 4];
    tb_ctrl_msg m = sample_login(), d;
    const uint32_t n = tb_ctrl_encode(&m, buf);
    auto mutate = [&](uint32_t word, uint32_t value) {
        uint32_t b[TB_CTRL_MSG_MAX_DW + 4];
        std::memcpy(b, buf, sizeof(b));
        b[word] = value;
        return tb_ctrl_decode(b, n, &d);
    };
    BOOST_CHECK_EQUAL(tb_ctrl_decode(buf, n, &d), 0);
    BOOST_CHECK_EQUAL(tb_ctrl_decode(nullptr, n, &d), -EINVAL);
    BOOST_CHECK_EQUAL(mutate(0, 0x74624332u), -EINVAL);	// magic
    BOOST_CHECK_EQUAL(mutate(1, 0), -EINVAL);			// ver_min 0
    BOOST_CHECK_EQUAL(mutate(2, 0), -EINVAL);			// ver_max < ver_min
    BOOST_CHECK_EQUAL(mutate(3, 0), -EINVAL);			// type
    BOOST_CHECK_EQUAL(mutate(3, 5), -EINVAL);
    BOOST_CHECK_EQUAL(mutate(4, n + 1), -EINVAL);		// ndw field
    BOOST_CHECK_EQUAL(mutate(6, 1), -EINVAL);			// status in a request
    BOOST_CHECK_EQUAL(mutate(7, 1), -EINVAL);			// flags
    BOOST_CHECK_EQUAL(mutate(16, 0), 0);			// boot hi=0 is fine
    BOOST_CHECK_EQUAL(mutate(18, 0), -EINVAL);			// sender session 0
    BOOST_CHECK_EQUAL(mutate(21, 0), -EINVAL);			// half-known target
    // Too short, a request cut to a header, too long.
    BOOST_CHECK_EQUAL(tb_ctrl_decode(buf, TB_CTRL_FIXED_DW - 1, &d), -EINVAL);
    uint32_t cut[TB_CTRL_MSG_MAX_DW];
    std::memcpy(cut, buf, sizeof(cut));
    cut[4] = TB_CTRL_HDR_DW;
    BOOST_CHECK_EQUAL(tb_ctrl_decode(cut, TB_CTRL_HDR_DW, &d), -EINVAL);
    BOOST_CHECK_EQUAL(tb_ctrl_decode(buf, TB_CTRL_MSG_MAX_DW + 1, &d), -EINVAL);

    // Appended words: only from a sender that speaks a later version.
    uint32_t longer[TB_CTRL_MSG_MAX_DW];
    std::memset(longer, 0, sizeof(longer));
    std::memcpy(longer, buf, n * 4);
    longer[4] = n + 3;
    BOOST_CHECK_EQUAL(tb_ctrl_decode(longer, n + 3, &d), -EINVAL);
    longer[2] = TB_CTRL_LAYOUT_MAX + 1;
    BOOST_CHECK_EQUAL(tb_ctrl_decode(longer, n + 3, &d), 0);
    BOOST_CHECK_EQUAL(d.params.hopid, 8u);

    // A layout this code cannot read: the frozen words only.
    std::memcpy(longer, buf, n * 4);
    longer[1] = TB_CTRL_LAYOUT_MAX + 1;
    longer[2] = TB_CTRL_LAYOUT_MAX + 2;
    longer[7] = 0xdeadbeef;	// whatever that version means by it
    BOOST_CHECK_EQUAL(tb_ctrl_decode(longer, n, &d), -EPROTONOSUPPORT);
    BOOST_CHECK_EQUAL(d.type, (uint32_t)TB_CTRL_LOGIN);
    BOOST_CHECK_EQUAL(d.seq, 0x12345678u);
    BOOST_CHECK_EQUAL(d.sender_uuid[0], 0x2000u);
    BOOST_CHECK_EQUAL(d.ver_min, TB_CTRL_LAYOUT_MAX + 1);

    // LOGIN_RESP's flags word.
    tb_ctrl_msg r = sample_login();
    r.type = TB_CTRL_LOGIN_RESP;
    uint32_t rn = tb_ctrl_encode(&r, buf);
    BOOST_CHECK_EQUAL(tb_ctrl_decode(buf, rn, &d), 0);
    buf[TB_CTRL_HDR_DW + 1] = TB_CTRL_RESP_UP;
    BOOST_CHECK_EQUAL(tb_ctrl_decode(buf, rn, &d), 0);
    BOOST_CHECK_EQUAL(d.resp_flags, (uint32_t)TB_CTRL_RESP_UP);
    buf[TB_CTRL_HDR_DW + 1] = 2;
    BOOST_CHECK_EQUAL(tb_ctrl_decode(buf, rn, &d), -EINVAL);
    buf[TB_CTRL_HDR_DW + 1] = 0;
    buf[6] = TB_CTRL_ST_MAX + 1;
    BOOST_CHECK_EQUAL(tb_ctrl_decode(buf, rn, &d), -EINVAL);
}

// Random words and mutated valid messages: decoding never reads past the
// message, and what it accepts re-encodes to the same words.
BOOST_AUTO_TEST_CASE(codec_random)
{
    std::mt19937_64 rng(42);
    uint32_t buf[TB_CTRL_MSG_MAX_DW], again[TB_CTRL_MSG_MAX_DW];
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        tb_ctrl_msg m = sample_login(), d;
        m.type = 1 + rng() % 4;
        if (m.type != TB_CTRL_LOGIN)
            m.params = tb_ctrl_params{};
        uint32_t n = tb_ctrl_encode(&m, buf);
        int flips = rng() % 3;
        for (int k = 0; k < flips; k++)
            buf[rng() % n] ^= 1u << (rng() % 32);
        if (rng() % 4 == 0) {
            n = rng() % (TB_CTRL_MSG_MAX_DW + 1);
            for (uint32_t i = 0; i < n; i++)
                buf[i] = (rng() % 2) ? static_cast<uint32_t>(rng()) : rng() % 5;
            if (n > 4 && rng() % 2)
                buf[0] = TB_CTRL_MAGIC, buf[4] = n;
        }
        std::vector<uint32_t> exact(buf, buf + n);	// ASan sees overreads
        int ret = tb_ctrl_decode(exact.data(), n, &d);
        BOOST_REQUIRE(ret == 0 || ret == -EINVAL || ret == -EPROTONOSUPPORT);
        if (ret)
            continue;
        accepted++;
        if (d.ndw != type_dw(d.type))
            continue;	// appended words are dropped on re-encoding
        uint32_t n2 = tb_ctrl_encode(&d, again);
        BOOST_REQUIRE_EQUAL(n2, n);
        BOOST_CHECK(std::memcmp(again, exact.data(), n * 4) == 0);
    }
    BOOST_CHECK(accepted > 1000);

    // The state machine takes any garbage without acting on it.
    fabric net(7);
    net.start_both();
    for (int iter = 0; iter < 5000; iter++) {
        uint32_t n = rng() % (TB_CTRL_MSG_MAX_DW + 1);
        std::vector<uint32_t> w(n);
        for (auto &x : w)
            x = static_cast<uint32_t>(rng());
        if (n > 4)
            w[0] = TB_CTRL_MAGIC;
        uint32_t resp[TB_CTRL_MSG_MAX_DW], rn = 0;
        tb_ctrl_handle_request(&net.h[0].c, net.now, w.data(), n, resp, &rn);
        BOOST_REQUIRE(rn <= TB_CTRL_MSG_MAX_DW);
    }
    tb_ctrl_action a;
    BOOST_CHECK_EQUAL(tb_ctrl_next_action(&net.h[0].c, &a), 0);
    BOOST_CHECK(net.h[0].c.stats.rx_bad >= 4900);
}

BOOST_AUTO_TEST_CASE(config_checked)
{
    tb_ctrl c;
    tb_ctrl_config cfg = make_config(0, 1);
    BOOST_CHECK_EQUAL(tb_ctrl_init(&c, &cfg), 0);
    tb_ctrl_config bad = cfg;
    bad.boot = 0;
    BOOST_CHECK_EQUAL(tb_ctrl_init(&c, &bad), -EINVAL);
    bad = cfg;
    bad.local.rx_slots = 1;
    BOOST_CHECK_EQUAL(tb_ctrl_init(&c, &bad), -EINVAL);
    bad = cfg;
    bad.local.credits = bad.local.rx_slots + 1;
    BOOST_CHECK_EQUAL(tb_ctrl_init(&c, &bad), -EINVAL);
    bad = cfg;
    bad.local.hopid = TB_CTRL_HOPID_MAX + 1;
    BOOST_CHECK_EQUAL(tb_ctrl_init(&c, &bad), -EINVAL);
    bad = cfg;
    bad.ver_min = 2;
    bad.ver_max = 1;
    BOOST_CHECK_EQUAL(tb_ctrl_init(&c, &bad), -EINVAL);
    BOOST_CHECK_EQUAL(std::string(tb_ctrl_state_name(TB_CTRL_S_REFUSED)), "refused");
    BOOST_CHECK_EQUAL(std::string(tb_ctrl_state_name(99)), "?");
    BOOST_CHECK_EQUAL(std::string(tb_ctrl_reason_name(TB_CTRL_R_VERSION)),
                      "no common protocol version");
}

BOOST_AUTO_TEST_CASE(clean_login)
{
    fabric net;
    net.start_both();
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10 * ms));
    net.check_consistent();
    BOOST_CHECK_EQUAL(net.h[0].up_action.version, TB_CTRL_VERSION_MAX);
    BOOST_CHECK_EQUAL(net.h[0].up_action.caps, (uint32_t)TB_CTRL_CAP_E2E);
    // Then nothing more is sent: no keep-alive traffic on the control path.
    uint64_t before = net.messages;
    net.settle(60000 * ms);
    BOOST_CHECK_EQUAL(net.messages, before);
    BOOST_CHECK(net.both_up());
    for (const host &x : net.h) {
        BOOST_CHECK_EQUAL(x.ups, 1);
        BOOST_CHECK_EQUAL(x.downs, 0);
        BOOST_CHECK_EQUAL(x.requests_sent.size(), 1u);
        BOOST_CHECK_EQUAL(tb_ctrl_next_deadline(&x.c), 0u);
    }
}

// The peer's module is not loaded yet (or not started): NOT_READY, and the
// login goes through once it starts.
BOOST_AUTO_TEST_CASE(peer_starts_late)
{
    fabric net;
    tb_ctrl_start(&net.h[0].c, net.now);
    net.drain(0);
    net.settle(3000 * ms);
    BOOST_CHECK(!net.h[0].link_up);
    BOOST_CHECK(net.h[0].requests_sent.size() >= 3);
    BOOST_CHECK(net.h[1].c.stats.rx_requests >= 3);
    tb_ctrl_start(&net.h[1].c, net.now);
    net.drain(1);
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10000 * ms));
    net.check_consistent();
}

// Every request lost: retries back off exponentially up to the cap.
BOOST_AUTO_TEST_CASE(backoff)
{
    fabric net;
    net.f.loss = 1.0;
    tb_ctrl_start(&net.h[0].c, net.now);
    std::vector<uint64_t> times;
    uint64_t sent = 0;
    while (net.now < 60000 * ms && net.step()) {
        if (net.h[0].requests_sent.size() != sent) {
            sent = net.h[0].requests_sent.size();
            times.push_back(net.now);
        }
    }
    BOOST_REQUIRE(times.size() > 8);
    // Gap = timeout + backoff: 100, 200, 400 ... 5000 ms.
    uint64_t backoff = 100 * ms;
    for (size_t i = 1; i < times.size(); i++) {
        BOOST_CHECK_EQUAL(times[i] - times[i - 1], request_timeout + backoff);
        backoff = std::min<uint64_t>(2 * backoff, 5000 * ms);
    }
    BOOST_CHECK_EQUAL(net.h[0].c.stats.timeouts, times.size() - 1);
    BOOST_CHECK_EQUAL(net.h[0].c.state, (uint32_t)TB_CTRL_S_LOGIN);
}

// A peer that answers every LOGIN "up with you" (RESP_UP, our own boot and
// session copied) makes us start a new session each time, but never at
// once: each LOGIN waits for the backoff, so the glue's loop of requests
// ends and the peer gets at most one LOGIN a retry_max.
BOOST_AUTO_TEST_CASE(peer_always_up)
{
    host x;
    x.cfg = make_config(0, 0xb0070001ull);
    BOOST_REQUIRE_EQUAL(tb_ctrl_init(&x.c, &x.cfg), 0);
    uint64_t now = 1;
    tb_ctrl_start(&x.c, now);
    std::vector<uint64_t> times;
    while (now < 60000 * ms) {
        uint32_t req[TB_CTRL_MSG_MAX_DW], resp[TB_CTRL_MSG_MAX_DW], n;
        if (!tb_ctrl_next_request(&x.c, now, req, &n)) {
            uint64_t next = tb_ctrl_next_deadline(&x.c);
            BOOST_REQUIRE(next > now);
            now = next;
            continue;
        }
        times.push_back(now);
        BOOST_REQUIRE(times.size() < 1000);
        tb_ctrl_msg in{}, out = sample_login();
        BOOST_REQUIRE_EQUAL(tb_ctrl_decode(req, n, &in), 0);
        out.type = TB_CTRL_LOGIN_RESP;
        out.seq = in.seq;
        out.status = TB_CTRL_ST_OK;
        out.resp_flags = TB_CTRL_RESP_UP;
        out.params = tb_ctrl_params{};
        for (int i = 0; i < 4; i++) {
            out.sender_uuid[i] = x.cfg.peer_uuid[i];
            out.target_uuid[i] = x.cfg.local_uuid[i];
        }
        out.target_boot = in.sender_boot;
        out.target_session = in.sender_session;
        tb_ctrl_request_done(&x.c, now, resp, tb_ctrl_encode(&out, resp));
        BOOST_REQUIRE_EQUAL(x.c.state, (uint32_t)TB_CTRL_S_LOGIN);
    }
    BOOST_TEST_MESSAGE("peer_always_up: " << times.size() << " LOGINs in 60 s");
    BOOST_REQUIRE(times.size() > 3);
    for (size_t i = 1; i < times.size(); i++)
        BOOST_CHECK_GE(times[i] - times[i - 1], 100 * ms);
    BOOST_CHECK_GE(times.back() - times[times.size() - 2], 5000 * ms);
    tb_ctrl_action a;
    BOOST_CHECK_EQUAL(tb_ctrl_next_action(&x.c, &a), 0);
}

// Loss, duplication, reordering and late delivery: both sides come up
// exactly once, agree on everything, and a late or duplicated message
// never takes the link down.
BOOST_AUTO_TEST_CASE(faulty_transport)
{
    int seeds = 0, flaps = 0;
    uint64_t total_stale = 0, total_dup = 0, total_timeouts = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        fabric net(seed);
        net.f.loss = 0.05 + 0.4 * (seed % 7) / 7.0;
        net.f.dup = 0.3 * (seed % 3) / 2.0;
        net.f.jitter = (seed % 5) * 200 * ms;
        net.f.late = 0.15 * (seed % 4) / 3.0;
        net.start_both();
        BOOST_REQUIRE_MESSAGE(net.run_until([&] { return net.both_up(); }, 600000 * ms),
                              "seed " << seed << " did not converge");
        net.check_consistent();
        // Late and duplicated copies still in flight change nothing.
        net.settle(120000 * ms);
        BOOST_REQUIRE_MESSAGE(net.both_up(), "seed " << seed);
        // A side that waits more than the data link's dead timeout for
        // the other to come up gives up and logs in again: under heavy
        // loss that happens, and costs a re-login, nothing more.
        bool mild = net.f.loss <= 0.2 && net.f.late == 0 &&
                    net.f.jitter < request_timeout / 2;
        for (const host &x : net.h) {
            if (mild)
                BOOST_CHECK_MESSAGE(x.ups == 1 && x.downs == 0,
                                    "seed " << seed << " ups " << x.ups << " downs " << x.downs);
            BOOST_CHECK_EQUAL(x.ups, x.downs + 1);
            for (uint32_t r : x.down_reasons)
                BOOST_CHECK_MESSAGE(r == TB_CTRL_R_LINK_FAILED || r == TB_CTRL_R_PEER_RELOGIN,
                                    "seed " << seed << " reason " << tb_ctrl_reason_name(r));
            flaps += x.downs;
            BOOST_CHECK_EQUAL(x.refusals, 0);
            total_stale += x.c.stats.rx_stale;
            total_dup += x.c.stats.rx_dup;
            total_timeouts += x.c.stats.timeouts;
        }
        seeds++;
    }
    BOOST_CHECK_EQUAL(seeds, 300);
    BOOST_TEST_MESSAGE("faulty_transport: " << flaps << " re-logins in 300 runs");
    // The faults were really exercised.
    BOOST_TEST_MESSAGE("faulty_transport: stale " << total_stale << " dup " << total_dup
                       << " timeouts " << total_timeouts);
    BOOST_CHECK(total_dup > 50);
    BOOST_CHECK(total_timeouts > 300);
}

// Version mismatch: both hosts report it once, with both ranges, and the
// control path goes quiet instead of retrying forever.
BOOST_AUTO_TEST_CASE(version_mismatch)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        fabric net(seed);
        net.f.loss = seed > 1 ? 0.2 : 0;
        net.f.dup = seed > 1 ? 0.2 : 0;
        // Side 1 speaks only the next version, whose layout starts like
        // ours (this build cannot read its messages: side 1 must be
        // refused by its frozen words alone).
        const uint32_t next = TB_CTRL_LAYOUT_MAX + 1;
        net.init(1, 0xb00700f1ull, next, next);
        net.start_both();
        net.settle(600000 * ms);
        for (int i = 0; i < 2; i++) {
            const host &x = net.h[i];
            BOOST_CHECK(!x.link_up);
            BOOST_CHECK_EQUAL(x.ups, 0);
            BOOST_CHECK_EQUAL(x.c.state, (uint32_t)TB_CTRL_S_REFUSED);
            BOOST_REQUIRE_MESSAGE(x.refusals >= 1, "seed " << seed << " side " << i);
            BOOST_CHECK_MESSAGE(x.refusals <= 2, "seed " << seed << " side " << i
                                << " reported " << x.refusals << " times");
            BOOST_CHECK_EQUAL(x.refused[0].reason, (uint32_t)TB_CTRL_R_VERSION);
        }
        // Each side names the other's range.
        BOOST_CHECK_EQUAL(net.h[0].refused[0].peer_ver_min, next);
        BOOST_CHECK_EQUAL(net.h[0].refused[0].peer_ver_max, next);
        BOOST_CHECK_EQUAL(net.h[1].refused[0].peer_ver_min, TB_CTRL_VERSION_MIN);
        BOOST_CHECK_EQUAL(net.h[1].refused[0].peer_ver_max, TB_CTRL_VERSION_MAX);
        // Quiet: nothing scheduled any more.
        uint64_t before = net.messages;
        net.settle(60000 * ms);
        BOOST_CHECK_EQUAL(net.messages, before);
    }
}

// Overlapping ranges: the highest common version.
BOOST_AUTO_TEST_CASE(version_overlap)
{
    fabric net;
    net.init(0, 0xb0070001ull, 1, 4);
    net.init(1, 0xb0070011ull, 1, 1);
    net.start_both();
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10 * ms));
    net.check_consistent();
    BOOST_CHECK_EQUAL(net.h[0].up_action.version, 1u);
    BOOST_CHECK_EQUAL(net.h[0].up_action.peer_ver_max, 1u);
    BOOST_CHECK_EQUAL(net.h[1].up_action.peer_ver_max, 4u);
}

// A peer with parameters out of range is refused, and says so.
BOOST_AUTO_TEST_CASE(params_refused)
{
    fabric net;
    tb_ctrl_start(&net.h[1].c, net.now);
    tb_ctrl_msg m = sample_login();
    for (int i = 0; i < 4; i++) {
        m.sender_uuid[i] = net.h[0].cfg.local_uuid[i];
        m.target_uuid[i] = net.h[1].cfg.local_uuid[i];
    }
    m.target_boot = 0;
    m.target_session = 0;
    m.params.rx_slots = 1;
    m.params.credits = 1;
    uint32_t buf[TB_CTRL_MSG_MAX_DW], resp[TB_CTRL_MSG_MAX_DW], rn;
    uint32_t n = tb_ctrl_encode(&m, buf);
    for (int k = 0; k < 3; k++) {
        BOOST_REQUIRE_EQUAL(tb_ctrl_handle_request(&net.h[1].c, net.now, buf, n, resp, &rn), 1);
        tb_ctrl_msg r;
        BOOST_REQUIRE_EQUAL(tb_ctrl_decode(resp, rn, &r), 0);
        BOOST_CHECK_EQUAL(r.type, (uint32_t)TB_CTRL_LOGIN_RESP);
        BOOST_CHECK_EQUAL(r.status, (uint32_t)TB_CTRL_ST_PARAMS);
        BOOST_CHECK_EQUAL(r.seq, m.seq);
        BOOST_CHECK_EQUAL(r.target_boot, m.sender_boot);
        BOOST_CHECK_EQUAL(r.target_session, m.sender_session);
    }
    net.drain(1);
    BOOST_CHECK_EQUAL(net.h[1].refusals, 1);	// once, not per retry
    BOOST_CHECK_EQUAL(net.h[1].refused[0].reason, (uint32_t)TB_CTRL_R_PARAMS);
    BOOST_CHECK_EQUAL(net.h[1].c.state, (uint32_t)TB_CTRL_S_REFUSED);

    // And a requester whose LOGIN is refused reports it (by_peer).
    fabric n2;
    // Side 1 refuses whatever side 0 sends: make side 0's LOGIN invalid
    // on the wire (the config check would not let it be invalid).
    n2.h[0].c.cfg.local.hopid = 0;
    n2.start_both();
    BOOST_REQUIRE(!n2.run_until([&] { return n2.both_up(); }, 30000 * ms));
    BOOST_CHECK_EQUAL(n2.h[0].refusals, 1);
    BOOST_CHECK_EQUAL(n2.h[0].refused[0].by_peer, 1u);
    BOOST_CHECK_EQUAL(n2.h[0].refused[0].reason, (uint32_t)TB_CTRL_R_PARAMS);
    BOOST_CHECK_EQUAL(n2.h[1].refusals, 1);
    BOOST_CHECK_EQUAL(n2.h[1].refused[0].by_peer, 0u);
}

// Messages for another host, or for another host's peer, are dropped.
BOOST_AUTO_TEST_CASE(wrong_uuid)
{
    fabric net;
    tb_ctrl_start(&net.h[1].c, net.now);
    tb_ctrl_msg m = sample_login();
    for (int i = 0; i < 4; i++) {
        m.sender_uuid[i] = net.h[0].cfg.local_uuid[i];
        m.target_uuid[i] = net.h[1].cfg.local_uuid[i];
    }
    uint32_t buf[TB_CTRL_MSG_MAX_DW], resp[TB_CTRL_MSG_MAX_DW], rn;
    m.sender_uuid[2] ^= 1;
    uint32_t n = tb_ctrl_encode(&m, buf);
    BOOST_CHECK_EQUAL(tb_ctrl_handle_request(&net.h[1].c, net.now, buf, n, resp, &rn), 0);
    m.sender_uuid[2] ^= 1;
    m.target_uuid[3] ^= 0x80000000u;
    n = tb_ctrl_encode(&m, buf);
    BOOST_CHECK_EQUAL(tb_ctrl_handle_request(&net.h[1].c, net.now, buf, n, resp, &rn), 0);
    BOOST_CHECK_EQUAL(net.h[1].c.stats.rx_bad, 2u);
    BOOST_CHECK(!net.h[1].c.seen);
}

// The peer reboots (new boot nonce): the old link is failed, a new one
// comes up with a new identity, on a clean and on a faulty transport.
BOOST_AUTO_TEST_CASE(peer_restart)
{
    for (uint64_t seed = 1; seed <= 60; seed++) {
        fabric net(seed);
        if (seed > 1) {
            net.f.loss = 0.25;
            net.f.dup = 0.2;
            net.f.jitter = 300 * ms;
            net.f.late = 0.1;
        }
        net.start_both();
        BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 600000 * ms));
        net.check_consistent();
        uint64_t id1 = net.h[0].up_action.identity;
        net.settle(5000 * ms);

        // Side 1 restarts: a new instance, its link gone with it.
        net.init(1, 0xb007beefull + seed);
        tb_ctrl_start(&net.h[1].c, net.now);
        net.drain(1);
        BOOST_REQUIRE_MESSAGE(net.run_until([&] { return net.h[0].downs == 1; }, 600000 * ms),
                              "seed " << seed);
        // Or, when the peer's LOGIN is slow in coming, the data link's
        // dead timeout first.
        BOOST_CHECK(net.h[0].down_reasons[0] == TB_CTRL_R_PEER_RESTART ||
                    (seed > 1 && net.h[0].down_reasons[0] == TB_CTRL_R_LINK_FAILED));
        BOOST_REQUIRE_MESSAGE(net.run_until([&] { return net.both_up(); }, 600000 * ms),
                              "seed " << seed);
        net.check_consistent();
        BOOST_CHECK(net.h[0].up_action.identity != id1);
        net.settle(120000 * ms);
        BOOST_CHECK(net.both_up());
        net.check_consistent();
        if (seed == 1) {
            BOOST_CHECK(net.h[0].ups == 2 && net.h[0].downs == 1);
            BOOST_CHECK_EQUAL(net.h[1].ups, 2);	// one per instance
        }
        for (const host &x : net.h)
            BOOST_CHECK_EQUAL(x.ups, x.downs + 1);
    }
}

// Our data link fails (dead peer timeout, bring-up error): we log in
// again with a new session; the peer fails its old link too.
BOOST_AUTO_TEST_CASE(link_failure_relogin)
{
    for (uint64_t seed = 1; seed <= 60; seed++) {
        fabric net(seed);
        if (seed > 1) {
            net.f.loss = 0.25;
            net.f.dup = 0.2;
            net.f.jitter = 300 * ms;
            net.f.late = 0.1;
        }
        net.start_both();
        BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 600000 * ms));
        uint64_t id1 = net.h[0].up_action.identity;
        int side = seed % 2;
        tb_ctrl_link_failed(&net.h[side].c, net.now);
        net.drain(side);
        BOOST_CHECK(!net.h[side].link_up);
        BOOST_CHECK_EQUAL(net.h[side].down_reasons.at(0), (uint32_t)TB_CTRL_R_LINK_FAILED);
        BOOST_REQUIRE_MESSAGE(net.run_until([&] { return net.both_up(); }, 600000 * ms),
                              "seed " << seed);
        net.check_consistent();
        BOOST_CHECK(net.h[0].up_action.identity != id1);
        BOOST_CHECK(net.h[side ^ 1].down_reasons.at(0) == TB_CTRL_R_PEER_RELOGIN ||
                    (seed > 1 && net.h[side ^ 1].down_reasons.at(0) == TB_CTRL_R_LINK_FAILED));
        net.settle(120000 * ms);
        for (const host &x : net.h) {
            BOOST_CHECK(x.link_up);
            BOOST_CHECK_EQUAL(x.ups, x.downs + 1);
            if (seed == 1)
                BOOST_CHECK_MESSAGE(x.ups == 2 && x.downs == 1,
                                    "seed " << seed << " ups " << x.ups << " downs " << x.downs);
        }
    }
}

// Both links fail at once.
BOOST_AUTO_TEST_CASE(both_fail)
{
    fabric net(3);
    net.start_both();
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10 * ms));
    tb_ctrl_link_failed(&net.h[0].c, net.now);
    tb_ctrl_link_failed(&net.h[1].c, net.now);
    net.drain(0);
    net.drain(1);
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10000 * ms));
    net.check_consistent();
    net.settle(60000 * ms);
    for (const host &x : net.h)
        BOOST_CHECK(x.ups == 2 && x.downs == 1 && x.link_up);
}

// Logout on unload: both links go down; the peer waits quietly; a new
// instance of the unloaded side logs in again.
BOOST_AUTO_TEST_CASE(logout)
{
    for (uint64_t seed = 1; seed <= 40; seed++) {
        fabric net(seed);
        if (seed > 1) {
            net.f.loss = 0.2;
            net.f.dup = 0.2;
            net.f.jitter = 200 * ms;
        }
        net.start_both();
        BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 600000 * ms));
        tb_ctrl_logout(&net.h[0].c, net.now);
        net.drain(0);
        BOOST_CHECK(!net.h[0].link_up);
        BOOST_CHECK_EQUAL(net.h[0].down_reasons.back(), (uint32_t)TB_CTRL_R_LOGOUT);
        BOOST_REQUIRE(net.run_until([&] { return net.h[0].logged_out == 1; }, 60000 * ms));
        BOOST_CHECK_EQUAL(net.h[0].c.state, (uint32_t)TB_CTRL_S_IDLE);
        BOOST_REQUIRE(net.run_until([&] { return !net.h[1].link_up; }, 60000 * ms));
        if (net.h[1].down_reasons.back() == TB_CTRL_R_LINK_FAILED) {
            // Every LOGOUT was lost: the peer found out through its data
            // link's dead timeout instead, and keeps trying to log in.
            BOOST_CHECK(seed > 1);
        } else {
            BOOST_CHECK_EQUAL(net.h[1].down_reasons.back(), (uint32_t)TB_CTRL_R_PEER_LOGOUT);
            BOOST_CHECK_EQUAL(net.h[1].c.state, (uint32_t)TB_CTRL_S_WAIT);
            // Quiet while waiting: one LOGIN per retry_max (5 s).
            net.settle(60000 * ms);
            uint64_t before = net.h[1].requests_sent.size();
            net.settle(60000 * ms);
            uint64_t sent = net.h[1].requests_sent.size() - before;
            BOOST_CHECK_MESSAGE(sent >= 8 && sent <= 12, "sent " << sent);
            BOOST_CHECK_EQUAL(net.h[1].c.state, (uint32_t)TB_CTRL_S_WAIT);
        }
        BOOST_CHECK_EQUAL(net.h[0].ups, net.h[0].downs);
        if (seed == 1)
            BOOST_CHECK_EQUAL(net.h[0].ups, 1);

        // The module is loaded again.
        net.init(0, 0xb0071000ull + seed);
        tb_ctrl_start(&net.h[0].c, net.now);
        net.drain(0);
        BOOST_REQUIRE_MESSAGE(net.run_until([&] { return net.both_up(); }, 600000 * ms),
                              "seed " << seed);
        net.check_consistent();
    }
}

// Logout with nobody answering gives up after logout_tries; logout before
// anything was heard from the peer finishes at once.
BOOST_AUTO_TEST_CASE(logout_unanswered)
{
    fabric net;
    net.start_both();
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10 * ms));
    net.f.loss = 1.0;
    size_t before = net.h[0].requests_sent.size();
    tb_ctrl_logout(&net.h[0].c, net.now);
    net.drain(0);
    BOOST_REQUIRE(net.run_until([&] { return net.h[0].logged_out == 1; }, 10000 * ms));
    BOOST_CHECK_EQUAL(net.h[0].requests_sent.size() - before, 3u);
    BOOST_CHECK_EQUAL(net.h[0].c.state, (uint32_t)TB_CTRL_S_IDLE);

    fabric alone;
    tb_ctrl_start(&alone.h[0].c, alone.now);
    alone.f.loss = 1.0;
    alone.drain(0);
    tb_ctrl_logout(&alone.h[0].c, alone.now);
    alone.drain(0);
    BOOST_CHECK_EQUAL(alone.h[0].logged_out, 1);
}

// A LOGIN of an old session, or of the peer's previous boot, delivered
// late, is stale: no response, no action.
BOOST_AUTO_TEST_CASE(late_login_is_stale)
{
    fabric net;
    net.start_both();
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10 * ms));
    std::vector<uint32_t> old_login = net.h[0].requests_sent.at(0);

    tb_ctrl_link_failed(&net.h[0].c, net.now);
    net.drain(0);
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10000 * ms));
    uint32_t resp[TB_CTRL_MSG_MAX_DW], rn = 0;
    uint64_t stale = net.h[1].c.stats.rx_stale;
    BOOST_CHECK_EQUAL(tb_ctrl_handle_request(&net.h[1].c, net.now, old_login.data(),
                                             old_login.size(), resp, &rn), 0);
    BOOST_CHECK_EQUAL(net.h[1].c.stats.rx_stale, stale + 1);
    net.drain(1);
    BOOST_CHECK(net.both_up());

    // Side 0 restarts; its previous boot's LOGIN arrives after that.
    // Boots have no order: it looks like one more restart, and costs one
    // re-login, after which both are up again on the live instance.
    std::vector<uint32_t> prev_boot_login = net.h[0].requests_sent.back();
    net.init(0, 0xb0072222ull);
    tb_ctrl_start(&net.h[0].c, net.now);
    net.drain(0);
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10000 * ms));
    int downs = net.h[1].downs;
    BOOST_CHECK_EQUAL(tb_ctrl_handle_request(&net.h[1].c, net.now, prev_boot_login.data(),
                                             prev_boot_login.size(), resp, &rn), 1);
    net.drain(1);
    BOOST_CHECK_EQUAL(net.h[1].downs, downs + 1);
    BOOST_CHECK_EQUAL(net.h[1].down_reasons.back(), (uint32_t)TB_CTRL_R_PEER_RESTART);
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10000 * ms));
    net.check_consistent();
    BOOST_CHECK_EQUAL(net.h[1].up_action.peer.hopid, net.h[0].cfg.local.hopid);
    BOOST_CHECK_EQUAL(net.h[1].c.peer_boot, 0xb0072222ull);
    downs = net.h[1].downs;

    // A repeated LOGOUT of a session that already logged out, while
    // the session after it is being set up, changes nothing.
    tb_ctrl_logout(&net.h[0].c, net.now);
    net.drain(0);
    BOOST_REQUIRE(net.run_until([&] { return net.h[0].logged_out == 1; }, 10000 * ms));
    std::vector<uint32_t> logout = net.h[0].requests_sent.back();
    BOOST_CHECK_EQUAL(net.h[1].c.state, (uint32_t)TB_CTRL_S_WAIT);
    tb_ctrl_handle_request(&net.h[1].c, net.now, logout.data(), logout.size(), resp, &rn);
    net.drain(1);
    BOOST_CHECK_EQUAL(net.h[1].c.state, (uint32_t)TB_CTRL_S_WAIT);
    BOOST_CHECK_EQUAL(net.h[1].downs, downs + 1);
    // A late LOGIN of the session that logged out does not revive it.
    std::vector<uint32_t> last_login;
    for (const auto &r : net.h[0].requests_sent)
        if (r[3] == TB_CTRL_LOGIN)
            last_login = r;
    BOOST_CHECK_EQUAL(tb_ctrl_handle_request(&net.h[1].c, net.now, last_login.data(),
                                             last_login.size(), resp, &rn), 1);
    tb_ctrl_msg r;
    BOOST_REQUIRE_EQUAL(tb_ctrl_decode(resp, rn, &r), 0);
    BOOST_CHECK_EQUAL(r.status, (uint32_t)TB_CTRL_ST_NOT_READY);
    net.drain(1);
    BOOST_CHECK_EQUAL(net.h[1].c.state, (uint32_t)TB_CTRL_S_WAIT);
    BOOST_CHECK_EQUAL(net.h[1].c.peer_known, 0);
}

// A late response handed to the wrong (newer) request: one for an earlier
// request of the same session says the same and counts; one for a
// previous session, or for a request never sent, is stale and the request
// counts as lost.
BOOST_AUTO_TEST_CASE(late_response_for_other_request)
{
    fabric net;
    tb_ctrl_start(&net.h[0].c, net.now);
    tb_ctrl_start(&net.h[1].c, net.now);
    uint32_t req[TB_CTRL_MSG_MAX_DW], n;
    BOOST_REQUIRE(tb_ctrl_next_request(&net.h[0].c, net.now, req, &n));
    uint32_t resp[TB_CTRL_MSG_MAX_DW], rn;
    BOOST_REQUIRE(tb_ctrl_handle_request(&net.h[1].c, net.now, req, n, resp, &rn));
    std::vector<uint32_t> first_resp(resp, resp + rn);
    // The response is late: the request times out, a second one goes out.
    tb_ctrl_request_done(&net.h[0].c, net.now, nullptr, 0);
    net.now += 200 * ms;
    BOOST_REQUIRE(tb_ctrl_next_request(&net.h[0].c, net.now, req, &n));
    BOOST_CHECK_EQUAL(req[5], 2u);
    // The old response arrives now and is matched to the new request.
    tb_ctrl_request_done(&net.h[0].c, net.now, first_resp.data(), first_resp.size());
    BOOST_CHECK_EQUAL(net.h[0].c.acked, 1);
    BOOST_CHECK_EQUAL(net.h[0].c.stats.rx_stale, 0u);
    BOOST_CHECK_EQUAL(net.h[0].c.stats.timeouts, 1u);

    // A new session (stopped and started): the old answer is stale.
    tb_ctrl_stop(&net.h[0].c);
    tb_ctrl_start(&net.h[0].c, net.now);
    BOOST_REQUIRE(tb_ctrl_next_request(&net.h[0].c, net.now, req, &n));
    tb_ctrl_request_done(&net.h[0].c, net.now, first_resp.data(), first_resp.size());
    BOOST_CHECK_EQUAL(net.h[0].c.acked, 0);
    BOOST_CHECK_EQUAL(net.h[0].c.stats.rx_stale, 1u);
    BOOST_CHECK_EQUAL(net.h[0].c.stats.timeouts, 2u);

    // An answer to a request not sent yet (a higher seq) is stale.
    net.now += 1000 * ms;
    BOOST_REQUIRE(tb_ctrl_next_request(&net.h[0].c, net.now, req, &n));
    BOOST_REQUIRE(tb_ctrl_handle_request(&net.h[1].c, net.now, req, n, resp, &rn));
    tb_ctrl_msg r;
    BOOST_REQUIRE_EQUAL(tb_ctrl_decode(resp, rn, &r), 0);
    r.seq++;
    rn = tb_ctrl_encode(&r, resp);
    tb_ctrl_request_done(&net.h[0].c, net.now, resp, rn);
    BOOST_CHECK_EQUAL(net.h[0].c.acked, 0);
    BOOST_CHECK_EQUAL(net.h[0].c.stats.rx_stale, 2u);

    // A request type where a response belongs.
    net.now += 1000 * ms;
    BOOST_REQUIRE(tb_ctrl_next_request(&net.h[0].c, net.now, req, &n));
    tb_ctrl_request_done(&net.h[0].c, net.now, req, n);
    BOOST_CHECK_EQUAL(net.h[0].c.acked, 0);
    BOOST_CHECK_EQUAL(net.h[0].c.stats.rx_stale, 3u);
}

// Unplug and replug of the same instance (or suspend and resume).
BOOST_AUTO_TEST_CASE(stop_and_start)
{
    fabric net;
    net.start_both();
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 10 * ms));
    tb_ctrl_stop(&net.h[0].c);
    net.drain(0);
    BOOST_CHECK(!net.h[0].link_up);
    BOOST_CHECK_EQUAL(net.h[0].down_reasons.at(0), (uint32_t)TB_CTRL_R_STOP);
    BOOST_CHECK_EQUAL(net.h[0].c.state, (uint32_t)TB_CTRL_S_IDLE);
    // While stopped, a LOGIN is answered NOT_READY.
    tb_ctrl_link_failed(&net.h[1].c, net.now);
    net.drain(1);
    net.settle(2000 * ms);
    BOOST_CHECK(!net.h[1].link_up);
    BOOST_CHECK_EQUAL(net.h[1].c.state, (uint32_t)TB_CTRL_S_LOGIN);
    tb_ctrl_start(&net.h[0].c, net.now);
    net.drain(0);
    BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 20000 * ms));
    net.check_consistent();
}

// Random restarts, link failures, logouts and stops on a faulty transport:
// whatever happened, once both sides run again they end up up, agreeing,
// and stay up.
// A peer floods LOGINs, each from a fresh boot so that each is news
// (mostly with parameters we refuse, so each is a refusal to report),
// around real logins, while our work item is held up (in the kernel it
// waits in tb_xdomain_request) and carries out an action only now and
// then. However many arrive in between, the host never gets an UP for a
// link while it holds one, nor a DOWN for a link it does not hold, and
// once the flood ends it holds the link the protocol has.
BOOST_AUTO_TEST_CASE(login_flood)
{
    for (uint64_t seed = 1; seed <= 100; seed++) {
        fabric net(seed);
        std::mt19937_64 rng(seed * 104729);
        net.start_both();
        BOOST_REQUIRE(net.run_until([&] { return net.both_up(); }, 60000 * ms));
        host &x = net.h[1];
        tb_ctrl_msg m = sample_login();
        for (int i = 0; i < 4; i++) {
            m.sender_uuid[i] = net.h[0].cfg.local_uuid[i];
            m.target_uuid[i] = x.cfg.local_uuid[i];
        }
        m.target_boot = 0;
        m.target_session = 0;
        x.stalled = true;
        uint64_t forged = 0;
        for (int round = 0; round < 40; round++) {
            for (int k = rng() % 24; k > 0; k--) {
                m.seq = static_cast<uint32_t>(rng());
                m.sender_boot = rng() | 1;
                m.sender_session = 1 + rng() % 1000;
                m.params.rx_slots = rng() % 4 ? 1 : 64;
                uint32_t buf[TB_CTRL_MSG_MAX_DW], resp[TB_CTRL_MSG_MAX_DW], rn;
                uint32_t n = tb_ctrl_encode(&m, buf);
                BOOST_REQUIRE_EQUAL(tb_ctrl_handle_request(&x.c, net.now, buf, n, resp, &rn), 1);
                forged++;
            }
            uint64_t until = net.now + (rng() % 2000) * ms;
            while (net.now < until && net.step()) {
            }
            net.pop(1, rng() % 3);
        }
        BOOST_CHECK(x.c.stats.refusals > 8);
        x.stalled = false;
        net.drain(1);
        BOOST_CHECK_EQUAL(x.link_up, x.c.state == TB_CTRL_S_UP);
        bool ok = net.run_until([&] { return net.both_up(); }, 600000 * ms);
        BOOST_REQUIRE_MESSAGE(ok, "seed " << seed << " after " << forged << " forged LOGINs");
        net.check_consistent();
        for (const host &y : net.h)
            BOOST_CHECK_EQUAL(y.ups, y.downs + 1);
    }
}

BOOST_AUTO_TEST_CASE(chaos)
{
    for (uint64_t seed = 1; seed <= 200; seed++) {
        fabric net(seed);
        net.f.loss = 0.2;
        net.f.dup = 0.1;
        net.f.jitter = 100 * ms;
        net.f.late = 0.05;
        std::mt19937_64 rng(seed * 7919);
        uint64_t boots = 0xc0de0000ull;
        net.start_both();
        for (int ev = 0; ev < 12; ev++) {
            uint64_t until = net.now + (rng() % 3000) * ms;
            while (net.now < until && net.step()) {
            }
            int i = rng() % 2;
            switch (rng() % 5) {
            case 0:		// restart
                net.init(i, ++boots);
                tb_ctrl_start(&net.h[i].c, net.now);
                break;
            case 1:
                tb_ctrl_link_failed(&net.h[i].c, net.now);
                break;
            case 2:
                tb_ctrl_logout(&net.h[i].c, net.now);
                break;
            case 3:
                tb_ctrl_stop(&net.h[i].c);
                break;
            default:
                tb_ctrl_start(&net.h[i].c, net.now);
                break;
            }
            net.drain(i);
        }
        // Unload/reload whatever is not running.
        for (int i = 0; i < 2; i++) {
            if (net.h[i].c.state == TB_CTRL_S_LOGOUT)
                BOOST_REQUIRE(net.run_until([&] { return net.h[i].c.state == TB_CTRL_S_IDLE; },
                                            60000 * ms));
            if (net.h[i].c.state == TB_CTRL_S_IDLE) {
                net.init(i, ++boots);
                tb_ctrl_start(&net.h[i].c, net.now);
                net.drain(i);
            }
        }
        // Late copies may still take a side down (a LOGIN or LOGOUT of
        // a boot that is gone looks like news); once they are all
        // delivered, and dead timeouts have told a side still up that
        // its peer's end is gone, both are up again and stay up.
        net.settle(600000 * ms);	// late copies come within 2 s
        bool ok = net.run_until([&] { return net.both_up(); }, 600000 * ms);
        BOOST_REQUIRE_MESSAGE(ok, "seed " << seed << " states "
                              << tb_ctrl_state_name(net.h[0].c.state) << " "
                              << tb_ctrl_state_name(net.h[1].c.state));
        net.check_consistent();
        net.settle(120000 * ms);
        BOOST_REQUIRE_MESSAGE(net.both_up(), "seed " << seed);
        net.check_consistent();
    }
}

BOOST_AUTO_TEST_SUITE_END()
