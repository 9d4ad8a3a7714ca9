// SPDX-License-Identifier: BSD-2-Clause
//
// Links of one engine run at once, each by its own thread under its own
// lock, as the kernel runs its rails: what they share (a context's rings
// and pool of operations, a domain's table of regions, a region's count of
// frames in flight) must come out whole while another thread registers and
// deregisters regions beside them, holding every link's lock or taking one
// at a time, as the kernel does.
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine_pair.hpp"
#include "pattern.hpp"

using namespace tbtest;

namespace {

constexpr int rails = 2;
constexpr uint32_t chunk = 4096;     // a WRITE, sent as an ext buffer
constexpr uint32_t chunks = 16;      // per rail, written round robin
constexpr int rounds = 2000;         // per rail: a WRITE, a SEND, an ATOMIC

struct rail {
    explicit rail(int k) : ea(64, 11 + k), eb(64, 23 + k)
    {
        ea.connect(&eb);
        eb.connect(&ea);
    }
    mem_cable_end ea, eb;
    tb_link la{}, lb{};
    int ia = -1, ib = -1;
    // The hosts' locks of this link at A and at B.
    std::mutex ma, mb;
    int ep = -1;
};

struct engine_deleter {
    void operator()(tb_engine *e) const noexcept { tb_engine_destroy(e); }
};
using engine_ptr = std::unique_ptr<tb_engine, engine_deleter>;

engine_ptr make_engine()
{
    tb_engine_config cfg;
    tb_engine_config_default(&cfg);
    cfg.msn_window = 256;
    tb_engine *e = nullptr;
    BOOST_REQUIRE_EQUAL(tb_engine_create(&e, &cfg), 0);
    return engine_ptr(e);
}

// Engines A and B joined by two rails; context a on A reaches context b on
// B over both.
struct two_rails {
    two_rails() : ea(make_engine()), eb(make_engine())
    {
        tb_link_config cfg;
        tb_link_config_default(&cfg);
        for (int k = 0; k < rails; k++) {
            rail &r = *rl[k];
            BOOST_REQUIRE_EQUAL(tb_link_init(&r.la, &cfg, &mem_cable_end::ext_ops, &r.ea,
                                             &tb_engine_link_ops, ea.get()), 0);
            BOOST_REQUIRE_EQUAL(tb_link_init(&r.lb, &cfg, &mem_cable_end::ext_ops, &r.eb,
                                             &tb_engine_link_ops, eb.get()), 0);
            r.ia = tb_engine_add_link(ea.get(), &r.la);
            r.ib = tb_engine_add_link(eb.get(), &r.lb);
        }
        BOOST_REQUIRE_EQUAL(tb_pd_create(ea.get(), 64, &pda), 0);
        BOOST_REQUIRE_EQUAL(tb_pd_create(eb.get(), 64, &pdb), 0);
        a = std::make_unique<engine_ctx>(ea.get(), 1024, 64, 256, pda);
        b = std::make_unique<engine_ctx>(eb.get(), 1024, 64, 256, pdb);
        for (int k = 0; k < rails; k++) {
            rl[k]->ep = tb_ep_create(a->ctx, static_cast<uint32_t>(rl[k]->ia), b->id(), b->secret());
            BOOST_REQUIRE_GE(rl[k]->ep, 0);
            BOOST_TEST(tb_ep_link(a->ctx, static_cast<uint32_t>(rl[k]->ep)) == rl[k]->ia);
        }
    }
    ~two_rails()
    {
        a.reset();
        b.reset();
        tb_pd_destroy(pda, nullptr, nullptr);
        tb_pd_destroy(pdb, nullptr, nullptr);
        for (auto &r : rl) {
            tb_engine_remove_link(ea.get(), &r->la);
            tb_engine_remove_link(eb.get(), &r->lb);
            tb_link_destroy(&r->la);
            tb_link_destroy(&r->lb);
        }
    }

    engine_ptr ea, eb;
    tb_pd *pda = nullptr, *pdb = nullptr;
    std::array<std::unique_ptr<rail>, rails> rl{std::make_unique<rail>(0), std::make_unique<rail>(1)};
    std::unique_ptr<engine_ctx> a, b;
    // The processes that own a and b: one thread at a time posts or polls.
    std::mutex pa, pb;

    // Runs both ends of every rail until all are up; whether they are.
    bool bring_up()
    {
        auto up = [](const rail &r) {
            return r.la.state == TBRDMA_LINK_UP && r.lb.state == TBRDMA_LINK_UP;
        };
        bool all = true;
        for (auto &r : rl) {
            for (int i = 0; i < 1000 && !up(*r); i++) {
                tb_engine_progress_link(ea.get(), static_cast<uint32_t>(r->ia), tb_now_ns());
                tb_engine_progress_link(eb.get(), static_cast<uint32_t>(r->ib), tb_now_ns());
            }
            all = all && up(*r);
        }
        return all;
    }

    // Engine A's or B's links with the host's lock of each.
    std::vector<std::pair<std::mutex *, uint32_t>> links(bool side_a)
    {
        std::vector<std::pair<std::mutex *, uint32_t>> v;
        for (auto &r : rl)
            v.emplace_back(side_a ? &r->ma : &r->mb, static_cast<uint32_t>(side_a ? r->ia : r->ib));
        return v;
    }
};

// One engine's domain and its links, each with the host's lock.
struct engine_side {
    tb_engine *e;
    tb_pd *pd;
    std::vector<std::pair<std::mutex *, uint32_t>> links;
};

// Deregisters key one link at a time (tb_pd_dereg_begin()): each link's
// lock alone, in turn.
int dereg_link_by_link(const engine_side &s, uint64_t key)
{
    tb_mr *mr = tb_pd_dereg_begin(s.pd, key);
    if (!mr)
        return -ENOENT;
    for (const auto &l : s.links) {
        std::lock_guard<std::mutex> g(*l.first);
        tb_engine_release_mr(s.e, l.second, mr);
    }
    tb_pd_dereg_end(s.pd, mr);
    return 0;
}

// Registers and deregisters a region in s's domain until stop,
// deregistering with every link's lock held and one link's at a time by
// turns. Each deregistration moves the generation that the links' hints
// of the traffic's regions are checked against.
void churn(const engine_side &s, std::atomic<bool> &stop, std::atomic<int> &errors)
{
    std::vector<uint8_t> mem(256);
    for (unsigned n = 0; !stop.load(); n++) {
        uint64_t key = 0;
        if (tb_pd_reg_mr(s.pd, reinterpret_cast<uintptr_t>(mem.data()), mem.size(),
                         TBRDMA_ACCESS_ALL, mem.data(), nullptr, &key)) {
            errors++;
            return;
        }
        if (n % 2) {
            if (dereg_link_by_link(s, key))
                errors++;
            continue;
        }
        std::vector<std::unique_lock<std::mutex>> held;
        for (const auto &l : s.links)
            held.emplace_back(*l.first);
        if (tb_pd_dereg_mr(s.pd, key, nullptr))
            errors++;
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine_threads)

// Each rail's thread posts on its own endpoint of the shared context a and
// runs its link at both ends; completions of both rails meet in a's ring,
// SENDs of both in b's, ATOMICs on one counter, ext frames from one source
// region; each also creates and destroys endpoints on its link (its list
// of endpoints), and two more threads churn both domains' tables.
BOOST_AUTO_TEST_CASE(rails_share_contexts)
{
    two_rails t;
    std::vector<uint8_t> src(rails * chunks * chunk), dst(rails * chunks * chunk, 0);
    for (int k = 0; k < rails; k++)
        for (uint32_t c = 0; c < chunks; c++)
            fill(&src[(k * chunks + c) * chunk], chunk, 100 * k + c);
    alignas(8) uint64_t counter = 0;
    uint64_t lkey = t.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    uint64_t rkey = t.b->reg(dst.data(), dst.size(), TBRDMA_ACCESS_ALL);
    uint64_t ckey = t.b->reg(&counter, sizeof(counter), TBRDMA_ACCESS_ALL);

    const uint32_t b_id = t.b->id();
    const uint64_t b_secret = t.b->secret();
    std::atomic<bool> stop{false};
    std::atomic<int> errors{0}, sends_seen{0};
    std::array<std::atomic<int>, rails> done{};
    std::array<std::atomic<int>, rails> bad{};
    std::array<std::array<std::atomic<int>, rounds>, rails> got{};

    auto drain_b = [&] {
        std::lock_guard<std::mutex> g(t.pb);
        while (const tbrdma_rqe *m = t.b->rq_peek()) {
            uint32_t tag = 0;
            std::memcpy(&tag, m + 1, sizeof(tag));
            int k = static_cast<int>(tag >> 16), i = static_cast<int>(tag & 0xffff);
            if (m->length != sizeof(tag) || k >= rails || i >= rounds || got[k][i]++)
                errors++;
            sends_seen++;
            t.b->rq_release();
        }
    };
    auto drain_a = [&] {
        std::lock_guard<std::mutex> g(t.pa);
        for (const auto &c : t.a->drain_cq()) {
            int k = c.ep == static_cast<uint32_t>(t.rl[0]->ep) ? 0 : 1;
            done[k]++;
            if (c.status != TBRDMA_WC_SUCCESS)
                bad[k]++;
        }
    };
    auto run_rail = [&](int k) {
        rail &r = *t.rl[k];
        int posted = 0;
        const int total = 3 * rounds;
        while (done[k].load() < total && !errors.load()) {
            while (posted < total) {
                int i = posted / 3;
                tbrdma_sqe s = make_sqe(TBRDMA_OP_WRITE, r.ep, static_cast<uint64_t>(posted));
                uint32_t tag = static_cast<uint32_t>(k) << 16 | static_cast<uint32_t>(i);
                switch (posted % 3) {
                case 0: {
                    size_t off = (k * chunks + i % chunks) * chunk;
                    s.local_addr = reinterpret_cast<uintptr_t>(&src[off]);
                    s.lkey = lkey;
                    s.length = chunk;
                    s.remote_addr = reinterpret_cast<uintptr_t>(&dst[off]);
                    s.rkey = rkey;
                    break;
                }
                case 1:
                    s.opcode = TBRDMA_OP_SEND;
                    s.flags = TBRDMA_SQE_INLINE;
                    s.length = sizeof(tag);
                    std::memcpy(s.inline_data, &tag, sizeof(tag));
                    break;
                default:
                    s.opcode = TBRDMA_OP_ATOMIC;
                    s.atomic_op = TBRDMA_ATOMIC_ADD;
                    s.atomic_size = 8;
                    s.operand = 1;
                    s.remote_addr = reinterpret_cast<uintptr_t>(&counter);
                    s.rkey = ckey;
                    break;
                }
                std::lock_guard<std::mutex> gp(t.pa);
                std::lock_guard<std::mutex> gl(r.ma);
                if (posted % 64 == 0) {
                    int ep = tb_ep_create(t.a->ctx, static_cast<uint32_t>(r.ia), b_id, b_secret);
                    if (ep < 0 || tb_ep_destroy(t.a->ctx, static_cast<uint32_t>(ep))) {
                        errors++;
                        return;
                    }
                }
                int ret = tb_post(t.a->ctx, &s);
                if (ret == -EAGAIN)
                    break;
                if (ret) {
                    errors++;
                    return;
                }
                posted++;
            }
            {
                std::lock_guard<std::mutex> g(r.mb);
                tb_engine_progress_link(t.eb.get(), static_cast<uint32_t>(r.ib), tb_now_ns());
            }
            drain_b();
            {
                std::lock_guard<std::mutex> g(r.ma);
                tb_engine_progress_link(t.ea.get(), static_cast<uint32_t>(r.ia), tb_now_ns());
            }
            drain_a();
        }
    };

    const engine_side side_a{t.ea.get(), t.pda, t.links(true)};
    const engine_side side_b{t.eb.get(), t.pdb, t.links(false)};
    std::thread churn_a(churn, std::cref(side_a), std::ref(stop), std::ref(errors));
    std::thread churn_b(churn, std::cref(side_b), std::ref(stop), std::ref(errors));
    std::thread r0(run_rail, 0), r1(run_rail, 1);
    r0.join();
    r1.join();
    stop = true;
    churn_a.join();
    churn_b.join();
    drain_b();

    BOOST_TEST(errors.load() == 0);
    for (int k = 0; k < rails; k++) {
        BOOST_TEST(done[k].load() == 3 * rounds);
        BOOST_TEST(bad[k].load() == 0);
        int missing = 0;
        for (int i = 0; i < rounds; i++)
            missing += got[k][i].load() != 1;
        BOOST_TEST(missing == 0);
        for (uint32_t c = 0; c < chunks; c++) {
            size_t off = (k * chunks + c) * chunk;
            BOOST_TEST(mismatches(&dst[off], chunk, 100 * k + c) == 0u);
        }
    }
    BOOST_TEST(sends_seen.load() == rails * rounds);
    BOOST_TEST(counter == static_cast<uint64_t>(rails * rounds));
    BOOST_TEST(tb_ctx_outstanding(t.a->ctx) == 0u);
}

// A source region goes one link at a time while both rails hold unacked
// WRITEs from it: once begun, no lookup finds its key; each link copies
// its own frames when its turn comes; the WRITEs land with the bytes they
// had when posted, though the memory changes once the region is gone.
BOOST_AUTO_TEST_CASE(a_region_goes_one_link_at_a_time)
{
    two_rails t;
    constexpr uint32_t per_rail = 8;
    std::vector<uint8_t> src(rails * per_rail * chunk), dst(src.size(), 0);
    for (uint32_t c = 0; c < rails * per_rail; c++)
        fill(&src[c * chunk], chunk, c);
    uint64_t lkey = t.a->reg(src.data(), src.size(), TBRDMA_ACCESS_LOCAL);
    uint64_t rkey = t.b->reg(dst.data(), dst.size(), TBRDMA_ACCESS_ALL);
    BOOST_REQUIRE(t.bring_up());
    for (int k = 0; k < rails; k++) {
        rail &r = *t.rl[k];
        for (uint32_t i = 0; i < per_rail; i++) {
            size_t off = (k * per_rail + i) * chunk;
            tbrdma_sqe s = make_sqe(TBRDMA_OP_WRITE, r.ep, off);
            s.local_addr = reinterpret_cast<uintptr_t>(&src[off]);
            s.lkey = lkey;
            s.length = chunk;
            s.remote_addr = reinterpret_cast<uintptr_t>(&dst[off]);
            s.rkey = rkey;
            BOOST_REQUIRE_EQUAL(tb_post(t.a->ctx, &s), 0);
        }
        // A sends (and resends, on a slow host); B does not run yet, so
        // nothing is acked.
        tb_engine_progress_link(t.ea.get(), static_cast<uint32_t>(r.ia), tb_now_ns());
        BOOST_REQUIRE_GE(r.la.stats.tx_ext, per_rail);
    }
    tb_mr *mr = tb_pd_dereg_begin(t.pda, lkey);
    BOOST_REQUIRE(mr);
    BOOST_TEST(!tb_pd_has_mr(t.pda, lkey));
    BOOST_TEST(tb_pd_dereg_begin(t.pda, lkey) == nullptr);
    for (auto &r : t.rl) {
        BOOST_TEST(r->la.stats.ext_detached == 0u);
        tb_engine_release_mr(t.ea.get(), static_cast<uint32_t>(r->ia), mr);
        // An ext per WRITE, two where one crosses a page of the source.
        BOOST_TEST(r->la.stats.ext_detached >= per_rail);
    }
    BOOST_TEST(tb_pd_dereg_end(t.pda, mr) == nullptr);  // reg() gave no priv
    std::fill(src.begin(), src.end(), 0x5a);

    uint32_t done = 0, bad = 0;
    for (int i = 0; i < 100000 && done < rails * per_rail; i++) {
        for (auto &r : t.rl) {
            tb_engine_progress_link(t.eb.get(), static_cast<uint32_t>(r->ib), tb_now_ns());
            tb_engine_progress_link(t.ea.get(), static_cast<uint32_t>(r->ia), tb_now_ns());
        }
        for (const auto &c : t.a->drain_cq()) {
            done++;
            bad += c.status != TBRDMA_WC_SUCCESS;
        }
    }
    BOOST_TEST(done == rails * per_rail);
    BOOST_TEST(bad == 0u);
    for (uint32_t c = 0; c < rails * per_rail; c++)
        BOOST_TEST(mismatches(&dst[c * chunk], chunk, c) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
