// SPDX-License-Identifier: BSD-2-Clause
#include "soft_device.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

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
// Links the engine serves; dead peers are reaped, so this bounds live
// peers, not their turnover. tb_engine_progress() scans all of them.
constexpr uint32_t engine_links = 128;
constexpr uint64_t default_speed_mbps = 40000;
constexpr uint32_t default_latency_ns = 1000;

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

bool ring_empty(const tb_ring &r) noexcept
{
    return __atomic_load_n(&r.ctrl->producer, __ATOMIC_ACQUIRE) ==
           __atomic_load_n(&r.ctrl->consumer, __ATOMIC_RELAXED);
}

}  // namespace

// A cable and the link running over it; heap-allocated so that the
// engine's pointer to the link stays valid.
struct soft_device::peer {
    std::unique_ptr<soft_cable> cable;
    tb_link link{};
    uint32_t eps = 0;  // endpoints of ours on this link
};

void soft_device::free_deleter::operator()(void *p) const noexcept
{
    std::free(p);
}

void soft_device::engine_deleter::operator()(tb_engine *e) const noexcept
{
    tb_engine_destroy(e);
}

void soft_device::init_ring(tb_ring *r, raw_memory *mem, uint32_t n, uint32_t entry_size)
{
    // The layout of a mapped kernel ring: control block, then entries.
    size_t bytes = TBRDMA_RING_DATA_OFFSET + size_t(n) * entry_size;
    bytes = (bytes + 4095) & ~size_t(4095);
    void *p = std::aligned_alloc(4096, bytes);
    if (!p)
        throw error(ENOMEM, "soft device: no memory for the completion and receive rings");
    std::memset(p, 0, bytes);
    mem->reset(static_cast<uint8_t *>(p));
    tb_ring_init(r, static_cast<tbrdma_ring_ctrl *>(p), static_cast<uint8_t *>(p) + TBRDMA_RING_DATA_OFFSET,
                 n, entry_size);
}

soft_device::soft_device(const open_options &opts) : opts_(opts)
{
    const soft_link_options &so = opts.soft;
    if (!opts.sq_entries || !opts.cq_entries || !opts.rq_entries || !opts.max_mr ||
        !opts.max_ep || opts.sq_entries > 65536 || opts.max_ep > 65536 ||
        opts.max_mr > (1u << 20) || opts.cq_entries > (1u << 24) || opts.rq_entries > 65536)
        throw error(EINVAL, "soft device: queue sizes and limits must be non-zero and in range");
    if (so.ring_slots < 2 || so.ring_slots > 65536 || (so.ring_slots & (so.ring_slots - 1)))
        throw error(EINVAL, "soft device: TB_SOFT_SLOTS must be a power of two from 2 to 65536");
    faulty_ = so.reorder > 0;

    fabric_ = std::make_unique<soft_fabric>(opts.fabric);

    tb_engine_config ecfg;
    tb_engine_config_default(&ecfg);
    ecfg.max_links = engine_links;
    ecfg.max_ctx = 4;
    tb_engine *e = nullptr;
    int rc = tb_engine_create(&e, &ecfg);
    if (rc)
        throw error(-rc, std::string("soft device: cannot create the engine: ") + std::strerror(-rc));
    engine_.reset(e);

    tb_ctx_config ccfg{};
    ccfg.id = fabric_->ctx_id();
    ccfg.max_mr = pow2_at_least(opts.max_mr);
    ccfg.max_ep = pow2_at_least(opts.max_ep);
    ccfg.sq_depth = pow2_at_least(opts.sq_entries);
    init_ring(&cq_, &cq_mem_, pow2_at_least(opts.cq_entries), sizeof(tbrdma_cqe));
    init_ring(&rq_, &rq_mem_, pow2_at_least(opts.rq_entries), TBRDMA_RQE_SLOT);
    ccfg.cq = cq_;
    ccfg.rq = rq_;
    ccfg.allow_raw_local = 1;
    rc = tb_ctx_create(engine_.get(), &ccfg, &ctx_);
    if (rc)
        throw error(-rc, std::string("soft device: cannot create the context: ") + std::strerror(-rc));

    // Event fd: an epoll set of the wake socket and a timer for the
    // engine's next deadline.
    epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
    timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!epoll_fd_ || !timer_fd_)
        throw error(errno, std::string("soft device: epoll/timerfd: ") + std::strerror(errno));
    for (int fd : {fabric_->wake_fd(), timer_fd_.get()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
            throw error(errno, std::string("soft device: epoll_ctl: ") + std::strerror(errno));
    }

    info_.kind = "soft";
    info_.abi_version = TBRDMA_ABI_VERSION;
    info_.ctx_id = fabric_->ctx_id();
    info_.max_mr = ccfg.max_mr;
    info_.max_ep = ccfg.max_ep;
    info_.frame_max = TBRDMA_FRAME_MAX;
    info_.inline_max = TBRDMA_INLINE_MAX;
    info_.send_max = TBRDMA_SEND_MAX;

    link_.index = 0;
    link_.name = opts.fabric;
    link_.state = TBRDMA_LINK_UP;
    // Same for every process of this fabric on this machine, and only there.
    link_.identity = hash64("tb-soft:" + opts.fabric + ":" + machine_id());
    link_.speed_mbps = so.rate_mbps ? so.rate_mbps : default_speed_mbps;
    uint64_t lat = uint64_t(so.latency_ns) + uint64_t(so.delay_us) * 1000;
    link_.latency_ns = lat ? static_cast<uint32_t>(lat < UINT32_MAX ? lat : UINT32_MAX)
                           : default_latency_ns;
    link_.numa_node = -1;
}

soft_device::~soft_device()
{
    std::lock_guard<std::mutex> g(mu_);
    // A forked child only frees its copy; the cables and the port stay
    // the parent's.
    const bool owner = ::getpid() == fabric_->self().pid;
    if (owner) {
        // Last words: what the engine still owes, and the acks peers
        // wait for.
        tb_engine_progress(engine_.get(), tb_now_ns());
        for (auto &p : peers_)
            tb_link_flush_ack(&p->link);
    }
    tb_ctx_destroy(ctx_, nullptr, nullptr);
    ctx_ = nullptr;
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
    by_ctx_.clear();
    engine_.reset();
    if (owner)
        disarm();
    fabric_.reset();
}

std::vector<link_info> soft_device::links() const
{
    return {link_};
}

uint32_t soft_device::reg_mr(void *addr, size_t length, uint32_t access)
{
    std::lock_guard<std::mutex> g(mu_);
    if (!addr || !length || (access & ~uint32_t(TBRDMA_ACCESS_ALL)))
        throw error(EINVAL, "reg_mr: needs an address, a length and valid access flags");
    uint32_t key = 0;
    auto base = reinterpret_cast<uintptr_t>(addr);
    int rc = tb_mr_register(ctx_, base, length, access, addr, nullptr, &key);
    if (rc)
        throw error(-rc, std::string("reg_mr: ") + std::strerror(-rc) +
                             (rc == -ENOSPC ? " (raise open_options::max_mr)" : ""));
    return key;
}

int soft_device::dereg_mr(uint32_t key) noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    void *priv = nullptr;
    return tb_mr_deregister(ctx_, key, &priv);
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
            slot = &by_ctx_[id];
    } catch (...) {
        cable->close();
        return -ENOMEM;
    }
    tb_link_config cfg;
    tb_link_config_default(&cfg);
    // Credits for exactly the slots of our receive ring.
    cfg.rx_slots = cable->rx_slots();
    int rc = tb_link_init(&p->link, &cfg, &soft_cable::phy_ops, cable.get(), &tb_engine_link_ops,
                          engine_.get());
    int index = rc ? rc : tb_engine_add_link(engine_.get(), &p->link);
    if (index < 0) {
        if (!rc)
            tb_link_destroy(&p->link);
        if (slot && !*slot)
            by_ctx_.erase(id);
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
    auto it = by_ctx_.find(p->cable->peer().id);
    if (it != by_ctx_.end() && it->second == p)
        by_ctx_.erase(it);
    tb_link_fail(&p->link);
    p->cable->close();
}

int soft_device::find_or_connect(uint32_t remote, uint32_t *link_index) noexcept
{
    auto it = by_ctx_.find(remote);
    if (it != by_ctx_.end() && it->second->link.state != TBRDMA_LINK_DOWN) {
        *link_index = it->second->link.index;
        return 0;
    }
    try {
        std::lock_guard<soft_fabric> fg(*fabric_);
        soft_peer sp;
        if (fabric_->lookup(remote, &sp))
            return -ECONNREFUSED;
        if (it != by_ctx_.end())
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
                retire(by_ctx_[remote]);
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
            std::lock_guard<soft_fabric> fg(*fabric_);
            auto it = by_ctx_.find(sp.id);
            // Already ours (we created it, or a repeated announcement).
            if (it != by_ctx_.end() && it->second->cable->is_current())
                continue;
            std::unique_ptr<soft_cable> c;
            if (soft_cable::open(*fabric_, sp, opts_.soft, soft_cable::mode::attach_only, 0, &c))
                continue;
            if (it != by_ctx_.end())
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
    std::lock_guard<soft_fabric> fg(*fabric_);
    for (size_t i = 0; i < peers_.size();) {
        peer *p = peers_[i].get();
        if (p->link.state != TBRDMA_LINK_DOWN || p->eps) {
            i++;
            continue;
        }
        auto it = by_ctx_.find(p->cable->peer().id);
        if (it != by_ctx_.end() && it->second == p)
            by_ctx_.erase(it);
        tb_engine_remove_link(engine_.get(), &p->link);
        tb_link_destroy(&p->link);
        p->cable->close();
        peers_[i] = std::move(peers_.back());
        peers_.pop_back();
    }
}

int soft_device::progress_locked(uint64_t now) noexcept
{
    if (armed_)
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

int soft_device::progress() noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    return progress_locked(tb_now_ns());
}

int soft_device::create_ep(uint32_t link, uint32_t remote_ctx) noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    if (link != 0)
        return -EINVAL;
    uint32_t index = 0;
    int rc = find_or_connect(remote_ctx, &index);
    if (rc)
        return rc;
    int ep = tb_ep_create(ctx_, index, remote_ctx);
    if (ep < 0)
        return ep;
    peer *p = by_ctx_[remote_ctx];
    try {
        ep_peer_[static_cast<uint32_t>(ep)] = p;
    } catch (...) {
        tb_ep_destroy(ctx_, static_cast<uint32_t>(ep));
        return -ENOMEM;
    }
    p->eps++;
    return ep;
}

int soft_device::destroy_ep(uint32_t ep) noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    int rc = tb_ep_destroy(ctx_, ep);
    auto it = ep_peer_.find(ep);
    if (!rc && it != ep_peer_.end()) {
        it->second->eps--;
        ep_peer_.erase(it);
    }
    return rc;
}

int soft_device::cancel_ep(uint32_t ep) noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    return tb_ep_cancel(ctx_, ep);
}

int soft_device::ep_state(uint32_t ep, uint32_t *outstanding) noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    uint32_t dummy = 0;
    return tb_ep_state(ctx_, ep, outstanding ? outstanding : &dummy);
}

int soft_device::post(const tbrdma_sqe *sqes, unsigned n) noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    for (unsigned i = 0; i < n; i++) {
        int rc = tb_post(ctx_, &sqes[i]);
        if (rc)
            return i ? static_cast<int>(i) : rc;
    }
    return static_cast<int>(n);
}

unsigned soft_device::poll_cq(tbrdma_cqe *out, unsigned max) noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    progress_locked(tb_now_ns());
    tbrdma_ring_ctrl *c = cq_.ctrl;
    uint32_t cons = c->consumer;
    uint32_t avail = __atomic_load_n(&c->producer, __ATOMIC_ACQUIRE) - cons;
    unsigned n = avail < max ? avail : max;
    for (unsigned i = 0; i < n; i++)
        std::memcpy(&out[i], cq_.entries + size_t((cons + i) & cq_.mask) * cq_.entry_size,
                    sizeof(tbrdma_cqe));
    __atomic_store_n(&c->consumer, cons + n, __ATOMIC_RELEASE);
    return n;
}

const tbrdma_rqe *soft_device::recv_peek() noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    tbrdma_ring_ctrl *c = rq_.ctrl;
    uint32_t cons = c->consumer;
    if (__atomic_load_n(&c->producer, __ATOMIC_ACQUIRE) == cons)
        return nullptr;
    return reinterpret_cast<const tbrdma_rqe *>(rq_.entries + size_t(cons & rq_.mask) * rq_.entry_size);
}

void soft_device::recv_release() noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    tbrdma_ring_ctrl *c = rq_.ctrl;
    if (__atomic_load_n(&c->producer, __ATOMIC_ACQUIRE) != c->consumer)
        __atomic_store_n(&c->consumer, c->consumer + 1, __ATOMIC_RELEASE);
}

bool soft_device::work_pending(uint64_t now, uint64_t *deadline) noexcept
{
    if (fabric_->doorbell_rang() || !ring_empty(cq_) || !ring_empty(rq_))
        return true;
    for (auto &p : peers_) {
        if (p->link.state == TBRDMA_LINK_DOWN)
            continue;
        if (p->cable->rx_ready(now, deadline))
            return true;
        uint64_t d = p->cable->progress(now);  // sends a frame held too long
        if (d && (!*deadline || d < *deadline))
            *deadline = d;
    }
    uint64_t d = tb_engine_next_deadline(engine_.get());
    if (d && d <= now)
        return true;
    if (d && (!*deadline || d < *deadline))
        *deadline = d;
    return false;
}

void soft_device::drain_wakeups() noexcept
{
    char buf[64];
    while (::recv(fabric_->wake_fd(), buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
    uint64_t ticks;
    while (::read(timer_fd_.get(), &ticks, sizeof(ticks)) > 0)
        ;
}

void soft_device::disarm() noexcept
{
    armed_ = false;
    if (fabric_)
        fabric_->clear_armed();
}

int soft_device::arm() noexcept
{
    std::lock_guard<std::mutex> g(mu_);
    drain_wakeups();
    fabric_->set_armed();
    armed_ = true;
    uint64_t now = tb_now_ns(), deadline = 0;
    if (work_pending(now, &deadline)) {
        disarm();
        return -EAGAIN;
    }
    itimerspec ts{};
    if (deadline) {
        ts.it_value.tv_sec = static_cast<time_t>(deadline / 1000000000ull);
        ts.it_value.tv_nsec = static_cast<long>(deadline % 1000000000ull);
    }
    ::timerfd_settime(timer_fd_.get(), deadline ? TFD_TIMER_ABSTIME : 0, &ts, nullptr);
    return 0;
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
        c.link.no_credit += l.no_credit;
    }
    c.peers = static_cast<uint32_t>(peers_.size());
    return c;
}

}  // namespace tb
