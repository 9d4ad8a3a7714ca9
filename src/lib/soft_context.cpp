// SPDX-License-Identifier: BSD-2-Clause
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "soft_device.hpp"

namespace tb {

namespace {

uint32_t pow2_at_least(uint32_t v) noexcept
{
    uint32_t p = 1;
    while (p < v && p < (1u << 31))
        p <<= 1;
    return p;
}

bool ring_empty(const tb_qring &r) noexcept
{
    return __atomic_load_n(&r.ctrl->producer, __ATOMIC_ACQUIRE) ==
           __atomic_load_n(&r.ctrl->consumer, __ATOMIC_RELAXED);
}

}  // namespace

void soft_context::free_deleter::operator()(void *p) const noexcept
{
    std::free(p);
}

void soft_context::init_ring(tb_qring *r, raw_memory *mem, uint32_t n, uint32_t entry_size)
{
    // The layout of a mapped kernel ring: control block, then entries.
    size_t bytes = TBRDMA_RING_DATA_OFFSET + size_t(n) * entry_size;
    bytes = (bytes + 4095) & ~size_t(4095);
    void *p = std::aligned_alloc(4096, bytes);
    if (!p)
        throw error(ENOMEM, "soft device: no memory for the completion and receive rings");
    std::memset(p, 0, bytes);
    mem->reset(static_cast<uint8_t *>(p));
    tb_qring_init(r, static_cast<tbrdma_ring_ctrl *>(p),
                 static_cast<uint8_t *>(p) + TBRDMA_RING_DATA_OFFSET, n, entry_size);
}

// Called by soft_device::create_context() with the device lock held.
soft_context::soft_context(soft_device &dev, uint32_t index, const context_options &opts)
    : dev_(dev), index_(index), id_(dev.fabric_->ctx_id() | index)
{
    if (!opts.sq_entries || !opts.cq_entries || !opts.rq_entries ||
        opts.sq_entries > 65536 || opts.cq_entries > (1u << 24) ||
        opts.rq_entries > 65536)
        throw error(EINVAL, "soft context: queue sizes and limits must be non-zero and in range");
    init_ring(&cq_, &cq_mem_, pow2_at_least(opts.cq_entries), sizeof(tbrdma_cqe));
    init_ring(&rq_, &rq_mem_, pow2_at_least(opts.rq_entries), TBRDMA_RQE_SLOT);

    // Event fd: written by the engine when it fills this context's armed
    // rings. While the application sleeps, the progress thread runs the
    // engine, so nothing else (acknowledgements, timers) wakes it.
    notify_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!notify_fd_)
        throw error(errno, std::string("soft context: eventfd: ") + std::strerror(errno));

    tb_ctx_config ccfg{};
    ccfg.id = id_;
    ccfg.pd = dev.pd_;
    ccfg.max_ep = dev.info_.max_ep;
    ccfg.sq_depth = pow2_at_least(opts.sq_entries);
    ccfg.cq = cq_;
    ccfg.rq = rq_;
    ccfg.allow_raw_local = 1;
    ccfg.notify = &soft_context::notify;
    ccfg.notify_arg = this;
    int rc = tb_ctx_create(dev.engine_.get(), &ccfg, &ctx_);
    if (rc)
        throw error(-rc, std::string("soft context: ") + std::strerror(-rc));
    secret_ = tb_ctx_secret(ctx_);
    dev_.contexts_[index_] = this;
}

soft_context::~soft_context()
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    if (armed_)
        dev_.armed_contexts_--;
    for (auto &[ep, p] : ep_peer_)
        p->eps--;
    if (ctx_)
        tb_ctx_destroy(ctx_, nullptr, nullptr);
    dev_.remove_context(this);
}

// One eventfd for both rings.
void soft_context::notify(void *arg, int) noexcept
{
    auto *self = static_cast<soft_context *>(arg);
    uint64_t one = 1;
    (void)!::write(self->notify_fd_.get(), &one, sizeof(one));
}

int soft_context::progress_locked() noexcept
{
    if (armed_) {
        armed_ = false;
        dev_.armed_contexts_--;
    }
    uint64_t now = tb_now_ns();
    dev_.app_progress_ns_.store(now, std::memory_order_relaxed);
    return dev_.progress_locked(now);
}

int soft_context::progress() noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    return progress_locked();
}

int soft_context::create_ep(uint32_t link, uint32_t remote_ctx, uint64_t remote_secret) noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    if (link != 0)
        return -EINVAL;
    uint32_t index = 0;
    int rc = dev_.find_or_connect(remote_ctx, &index);
    if (rc)
        return rc;
    int ep = tb_ep_create(ctx_, index, remote_ctx, remote_secret);
    if (ep < 0)
        return ep;
    soft_device::peer *p = dev_.by_process_[soft_fabric::process_of(remote_ctx)];
    try {
        ep_peer_[static_cast<uint32_t>(ep)] = p;
    } catch (...) {
        tb_ep_destroy(ctx_, static_cast<uint32_t>(ep));
        return -ENOMEM;
    }
    p->eps++;
    return ep;
}

int soft_context::destroy_ep(uint32_t ep) noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    int rc = tb_ep_destroy(ctx_, ep);
    auto it = ep_peer_.find(ep);
    if (!rc && it != ep_peer_.end()) {
        it->second->eps--;
        ep_peer_.erase(it);
    }
    return rc;
}

int soft_context::cancel_ep(uint32_t ep) noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    return tb_ep_cancel(ctx_, ep);
}

int soft_context::ep_state(uint32_t ep, uint32_t *outstanding) noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    uint32_t dummy = 0;
    return tb_ep_state(ctx_, ep, outstanding ? outstanding : &dummy);
}

int soft_context::post(const tbrdma_sqe *sqes, unsigned n) noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    for (unsigned i = 0; i < n; i++) {
        int rc = tb_post(ctx_, &sqes[i]);
        if (rc)
            return i ? static_cast<int>(i) : rc;
    }
    return static_cast<int>(n);
}

unsigned soft_context::poll_cq(tbrdma_cqe *out, unsigned max) noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    progress_locked();
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

const tbrdma_rqe *soft_context::recv_peek() noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    tbrdma_ring_ctrl *c = rq_.ctrl;
    uint32_t cons = c->consumer;
    if (__atomic_load_n(&c->producer, __ATOMIC_ACQUIRE) == cons)
        return nullptr;
    return reinterpret_cast<const tbrdma_rqe *>(rq_.entries + size_t(cons & rq_.mask) * rq_.entry_size);
}

void soft_context::recv_release() noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    tbrdma_ring_ctrl *c = rq_.ctrl;
    if (__atomic_load_n(&c->producer, __ATOMIC_ACQUIRE) != c->consumer)
        __atomic_store_n(&c->consumer, c->consumer + 1, __ATOMIC_RELEASE);
}

bool soft_context::rings_pending() const noexcept
{
    return !ring_empty(cq_) || !ring_empty(rq_);
}

int soft_context::arm() noexcept
{
    std::lock_guard<std::mutex> g(dev_.mu_);
    uint64_t n;
    while (::read(notify_fd_.get(), &n, sizeof(n)) > 0)
        ;
    // Order: flags first, then the checks, so nothing slips in between.
    __atomic_store_n(&cq_.ctrl->armed, 1u, __ATOMIC_SEQ_CST);
    __atomic_store_n(&rq_.ctrl->armed, 1u, __ATOMIC_SEQ_CST);
    dev_.set_armed();
    if (rings_pending() || dev_.wire_pending(tb_now_ns())) {
        if (!dev_.armed_contexts_)
            dev_.disarm();
        return -EAGAIN;
    }
    if (!armed_) {
        armed_ = true;
        dev_.armed_contexts_++;
    }
    // The application sleeps: the progress thread takes the engine over
    // now, and peers' frames wake it (the armed flag).
    dev_.app_progress_ns_.store(0, std::memory_order_relaxed);
    return 0;
}

}  // namespace tb
