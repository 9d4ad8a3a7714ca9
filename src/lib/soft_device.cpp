// SPDX-License-Identifier: BSD-2-Clause
#include "soft_device.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace tb {

namespace {

// Liveness of peer processes: kill(pid, 0) this often, and the /proc
// start-time test (pid reuse) every start_check_every rounds.
constexpr uint64_t check_period_ns = 10000000;
constexpr uint32_t start_check_every = 100;
// Links the engine serves, one per live peer process (dead peers are
// reaped): as many as the fabric has ports.
constexpr uint32_t engine_links = soft_fabric::max_ports;
constexpr uint64_t default_speed_mbps = 40000;
// Posting takes the device lock and copies the frame into the cable.
constexpr uint32_t post_ns = 100;
constexpr uint32_t default_latency_ns = 1000;
// Floor of the retransmission timeout, a few of the cable's round trips.
constexpr uint64_t soft_rto_min_ns = 10000;

uint32_t pow2_at_least(uint32_t v) noexcept
{
    uint32_t p = 1;
    while (p < v && p < (1u << 31))
        p <<= 1;
    return p;
}

// What processes that can share a fabric have in common: the boot, and
// the /dev/shm they see (containers may have their own).
std::string machine_id()
{
    std::ifstream f("/proc/sys/kernel/random/boot_id");
    std::string id;
    if (!(f >> id)) {
        char host[256] = {};
        ::gethostname(host, sizeof(host) - 1);
        id = host;
    }
    struct stat st;
    if (::stat(shm_segment::dir, &st) == 0)
        id += ":" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    return id;
}

// FNV-1a: only needs to differ between fabrics and machines.
uint64_t hash64(const std::string &s) noexcept
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

}  // namespace

void soft_device::engine_deleter::operator()(tb_engine *e) const noexcept
{
    tb_engine_destroy(e);
}

soft_device::soft_device(const open_options &opts) : opts_(opts)
{
    const soft_link_options &so = opts.soft;
    if (!opts.max_mr || opts.max_mr > (1u << 20))
        throw error(EINVAL, "soft device: max_mr must be from 1 to 2^20");
    for (double p : {so.loss, so.dup, so.reorder})
        if (!(p >= 0 && p <= 1))
            throw error(EINVAL, "soft device: loss, duplication and reordering rates are "
                                "probabilities, 0 to 1");
    if (so.ring_slots < 2 || so.ring_slots > 65536 || (so.ring_slots & (so.ring_slots - 1)))
        throw error(EINVAL, "soft device: TB_SOFT_SLOTS must be a power of two from 2 to 65536");
    faulty_ = so.reorder > 0;

    fabric_ = std::make_unique<soft_fabric>(opts.fabric);

    tb_engine_config ecfg;
    tb_engine_config_default(&ecfg);
    ecfg.max_links = engine_links;
    ecfg.max_ctx = soft_fabric::max_contexts;
    tb_engine *e = nullptr;
    int rc = tb_engine_create(&e, &ecfg);
    if (rc)
        throw error(-rc, std::string("soft device: cannot create the engine: ") + std::strerror(-rc));
    engine_.reset(e);
    rc = tb_pd_create(e, pow2_at_least(opts.max_mr), &pd_);
    if (rc)
        throw error(-rc, std::string("soft device: cannot create the domain: ") + std::strerror(-rc));
    contexts_.assign(soft_fabric::max_contexts, nullptr);


    info_.kind = "soft";
    info_.abi_version = TBRDMA_ABI_VERSION;
    info_.max_mr = pow2_at_least(opts.max_mr);
    info_.max_contexts = soft_fabric::max_contexts;
    info_.max_ep = max_ep;
    info_.frame_max = TBRDMA_FRAME_MAX;
    info_.inline_max = TBRDMA_INLINE_MAX;
    info_.send_max = TBRDMA_SEND_MAX;
    info_.post_ns = post_ns;

    link_.index = 0;
    link_.name = opts.fabric;
    link_.state = TBRDMA_LINK_UP;
    // Same for every process of this fabric on this machine, and only there.
    link_.identity = hash64("tb-soft:" + opts.fabric + ":" + machine_id());
    link_.local = true;
    link_.speed_mbps = so.rate_mbps ? so.rate_mbps : default_speed_mbps;
    uint64_t lat = uint64_t(so.latency_ns) + uint64_t(so.delay_us) * 1000;
    link_.latency_ns = lat ? static_cast<uint32_t>(lat < UINT32_MAX ? lat : UINT32_MAX)
                           : default_latency_ns;
    link_.numa_node = -1;
    start_progress_thread();
}

soft_device::~soft_device()
{
    // A forked child only frees its copy; the cables, the port and the
    // progress thread stay the parent's.
    const bool owner = ::getpid() == fabric_->self().pid;
    if (owner)
        stop_progress_thread();
    std::lock_guard<std::mutex> g(mu_);
    if (owner) {
        // Last words: what the engine still owes, and the acks peers
        // wait for.
        tb_engine_progress(engine_.get(), tb_now_ns());
        for (auto &p : peers_)
            tb_link_flush_ack(&p->link);
    }
    // Contexts should be gone; any left die with their device.
    for (soft_context *c : contexts_) {
        if (c && c->ctx_) {
            tb_ctx_destroy(c->ctx_, nullptr, nullptr);
            c->ctx_ = nullptr;
        }
    }
    {
        std::unique_lock<soft_fabric> fg(*fabric_, std::defer_lock);
        if (owner)
            fg.lock();
        for (auto &p : peers_) {
            tb_engine_remove_link(engine_.get(), &p->link);
            tb_link_destroy(&p->link);
            if (owner)
                p->cable->close();
        }
    }
    peers_.clear();
    by_process_.clear();
    tb_pd_destroy(pd_, nullptr, nullptr);
    engine_.reset();
    if (owner)
        disarm();
    fabric_.reset();
}

std::vector<link_info> soft_device::links() const
{
    return {link_};
}

link_info soft_device::link(uint32_t index) const
{
    if (index != link_.index)
        throw error(ENODEV, "soft device: link " + std::to_string(index) + " does not exist");
    return link_;
}

uint64_t soft_device::reg_mr(void *addr, size_t length, uint32_t access)
{
    std::lock_guard<std::mutex> g(mu_);
    if (!addr || !length || (access & ~uint32_t(TBRDMA_ACCESS_ALL)))
        throw error(EINVAL, "reg_mr: needs an address, a length and valid access flags");
    uint64_t key = 0;
    auto base = reinterpret_cast<uintptr_t>(addr);
    int rc = tb_pd_reg_mr(pd_, base, length, access, addr, nullptr, &key);
    if (rc)
        throw error(-rc, std::string("reg_mr: ") + std::strerror(-rc) +
                             (rc == -ENOSPC ? " (raise open_options::max_mr)" : ""));
    return key;
}

int soft_device::dereg_mr(uint64_t key) noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    void *priv = nullptr;
    return tb_pd_dereg_mr(pd_, key, &priv);
}

std::unique_ptr<context> soft_device::create_context(const context_options &opts)
{
    std::lock_guard<std::mutex> g(mu_);
    uint32_t index;
    for (index = 0; index < contexts_.size() && contexts_[index]; index++)
        ;
    if (index == contexts_.size())
        throw error(ENOSPC, "soft device: all " + std::to_string(contexts_.size()) +
                                " contexts of this process are in use");
    return std::make_unique<soft_context>(*this, index, opts);
}

uint32_t soft_device::contexts_free() const
{
    std::lock_guard<std::mutex> g(mu_);
    return static_cast<uint32_t>(std::count(contexts_.begin(), contexts_.end(), nullptr));
}

void soft_device::remove_context(soft_context *c) noexcept
{
    contexts_[c->index_] = nullptr;
}

// Under the fabric lock. On failure the cable is closed and unlinked.
int soft_device::add_peer(std::unique_ptr<soft_cable> cable, bool active) noexcept
{
    const uint32_t id = cable->peer().id;
    std::unique_ptr<peer> p;
    peer **slot = nullptr;
    try {
        // Everything that can throw comes first, with nothing to undo.
        p = std::make_unique<peer>();
        peers_.reserve(peers_.size() + 1);
        if (active)
            slot = &by_process_[id];
    } catch (...) {
        cable->close();
        return -ENOMEM;
    }
    tb_link_config cfg;
    tb_link_config_default(&cfg);
    // Credits for exactly the slots of our receive ring.
    cfg.rx_slots = cable->rx_slots();
    // Both ends poll their rings in their own processes, so the round
    // trip is the cable's; a probe sent early costs one duplicate.
    cfg.rto_min_ns = soft_rto_min_ns;
    // Acks go at once: the engine runs only when a process calls it, so
    // one held back could wait for the application's next call, far past
    // the peer's timeout (the kernel's poll threads keep time instead).
    cfg.ack_delay_ns = 0;
    int rc = tb_link_init(&p->link, &cfg, &soft_cable::phy_ops, cable.get(), &tb_engine_link_ops,
                          engine_.get());
    int index = rc ? rc : tb_engine_add_link(engine_.get(), &p->link);
    if (index < 0) {
        if (!rc)
            tb_link_destroy(&p->link);
        if (slot && !*slot)
            by_process_.erase(id);
        cable->close();
        return index;
    }
    p->link.label = 0;  // the one link this device shows
    p->cable = std::move(cable);
    if (slot)
        *slot = p.get();
    peer *raw = p.get();
    peers_.push_back(std::move(p));  // reserved: cannot throw
    // Say HELLO now rather than at the next progress.
    tb_link_progress(&raw->link, tb_now_ns());
    return index;
}

// A peer whose cable was replaced or failed: create_ep no longer finds
// it; it goes away once its endpoints are gone.
void soft_device::retire(peer *p) noexcept
{
    auto it = by_process_.find(p->cable->peer().id);
    if (it != by_process_.end() && it->second == p)
        by_process_.erase(it);
    tb_link_fail(&p->link);
    p->cable->close();
}

// The link to the process of context remote, made if need be.
int soft_device::find_or_connect(uint32_t remote_ctx, uint32_t *link_index) noexcept
{
    const uint32_t remote = soft_fabric::process_of(remote_ctx);
    auto it = by_process_.find(remote);
    if (it != by_process_.end() && it->second->link.state != TBRDMA_LINK_DOWN) {
        *link_index = it->second->link.index;
        return 0;
    }
    try {
        std::lock_guard<soft_fabric> fg(*fabric_);
        soft_peer sp;
        if (fabric_->lookup(remote, &sp))
            return -ECONNREFUSED;
        if (it != by_process_.end())
            retire(it->second);
        std::unique_ptr<soft_cable> c0, c1;
        int rc = soft_cable::open(*fabric_, sp, opts_.soft, soft_cable::mode::create_or_attach, 0, &c0);
        if (rc)
            return rc;
        if (remote == fabric_->ctx_id()) {
            // Loopback: both ends of one cable in this process.
            rc = soft_cable::open(*fabric_, sp, opts_.soft, soft_cable::mode::attach_only, 1, &c1);
            if (rc) {
                c0->close();
                return rc;
            }
        }
        int index = add_peer(std::move(c0), true);
        if (index < 0)
            return index;
        if (c1) {
            rc = add_peer(std::move(c1), false);
            if (rc < 0) {
                retire(by_process_[remote]);
                return rc;
            }
        } else {
            fabric_->announce(remote);
        }
        *link_index = static_cast<uint32_t>(index);
        return 0;
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    }
}

void soft_device::attach_incoming() noexcept
{
    try {
        incoming_.clear();
        fabric_->take_incoming(incoming_);
        for (uint32_t port : incoming_) {
            soft_peer sp;
            if (fabric_->lookup_port(port, &sp) || sp.id == fabric_->ctx_id())
                continue;
            // Already ours (we created it, or a repeated announcement):
            // nothing to do, and no fabric lock to wait for on a peer that
            // may be stopped holding it.
            auto current = [&] {
                auto it = by_process_.find(sp.id);
                return it != by_process_.end() && it->second->cable->is_current();
            };
            if (current())
                continue;
            std::lock_guard<soft_fabric> fg(*fabric_);
            if (current())
                continue;
            auto it = by_process_.find(sp.id);
            std::unique_ptr<soft_cable> c;
            if (soft_cable::open(*fabric_, sp, opts_.soft, soft_cable::mode::attach_only, 0, &c))
                continue;
            if (it != by_process_.end())
                retire(it->second);
            add_peer(std::move(c), true);
        }
    } catch (...) {
        // Out of memory: the peer's link times out in CONNECTING.
    }
}

void soft_device::check_peers(uint64_t now) noexcept
{
    next_check_ns_ = now + check_period_ns;
    bool check_start = ++checks_ % start_check_every == 0;
    bool down = false;
    for (auto &p : peers_) {
        if (p->link.state == TBRDMA_LINK_DOWN) {
            down = down || !p->eps;
            continue;
        }
        p->cable->check_peer(check_start);
    }
    if (down)
        reap_peers();
}

// Frees the links and cables that are down and carry no endpoint.
void soft_device::reap_peers() noexcept
{
    // Not worth a wait: a process stopped holding the lock would stop our
    // progress with it. The next check of the peers tries again.
    std::unique_lock<soft_fabric> fg(*fabric_, std::try_to_lock);
    if (!fg.owns_lock())
        return;
    for (size_t i = 0; i < peers_.size();) {
        peer *p = peers_[i].get();
        if (p->link.state != TBRDMA_LINK_DOWN || p->eps) {
            i++;
            continue;
        }
        auto it = by_process_.find(p->cable->peer().id);
        if (it != by_process_.end() && it->second == p)
            by_process_.erase(it);
        tb_engine_remove_link(engine_.get(), &p->link);
        tb_link_destroy(&p->link);
        p->cable->close();
        peers_[i] = std::move(peers_.back());
        peers_.pop_back();
    }
}

int soft_device::progress_locked(uint64_t now) noexcept
{
    // Peers need to wake us only while some context sleeps.
    if (armed_ && !armed_contexts_)
        disarm();
    if (fabric_->doorbell_rang())
        attach_incoming();
    if (faulty_)
        for (auto &p : peers_)
            p->cable->progress(now);
    int handled = tb_engine_progress(engine_.get(), now);
    if (now >= next_check_ns_)
        check_peers(now);
    return handled;
}

bool soft_device::wire_pending(uint64_t now) noexcept
{
    if (fabric_->doorbell_rang())
        return true;
    for (auto &p : peers_) {
        if (p->link.state == TBRDMA_LINK_DOWN)
            continue;
        // (A delayed frame is picked up by the progress thread's tick.)
        if (p->cable->rx_ready(now))
            return true;
        p->cable->progress(now);  // sends a frame held too long
    }
    uint64_t d = tb_engine_next_deadline(engine_.get());
    return d && d <= now;
}

void soft_device::set_armed() noexcept
{
    fabric_->set_armed();
    armed_ = true;
}

void soft_device::disarm() noexcept
{
    armed_ = false;
    if (fabric_)
        fabric_->clear_armed();
}

soft_device::counters soft_device::stats() const
{
    std::lock_guard<std::mutex> g(mu_);
    counters c;
    for (auto &p : peers_) {
        const soft_cable::counters &s = p->cable->stats();
        c.cable.tx_frames += s.tx_frames;
        c.cable.rx_frames += s.rx_frames;
        c.cable.ring_full += s.ring_full;
        c.cable.lost += s.lost;
        c.cable.duplicated += s.duplicated;
        c.cable.reordered += s.reordered;
        c.cable.bad += s.bad;
        const tb_link_stats &l = p->link.stats;
        c.link.tx_frames += l.tx_frames;
        c.link.tx_bytes += l.tx_bytes;
        c.link.rx_frames += l.rx_frames;
        c.link.rx_bytes += l.rx_bytes;
        c.link.tx_acks += l.tx_acks;
        c.link.retransmits += l.retransmits;
        c.link.timeouts += l.timeouts;
        c.link.rx_dup += l.rx_dup;
        c.link.rx_gap += l.rx_gap;
        c.link.rx_bad += l.rx_bad;
        c.link.rx_stalls += l.rx_stalls;
    }
    c.peers = static_cast<uint32_t>(peers_.size());
    return c;
}

}  // namespace tb
