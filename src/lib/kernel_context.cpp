// SPDX-License-Identifier: BSD-2-Clause
//
// A context of the kernel device: its rings are the kernel's, mapped
// shared. What the library must know about them (docs/kernel.md):
// - the kernel reads only the SQE slots between its consumer index
//   (ctrl->consumer of the SQ, written at every doorbell) and the
//   doorbell's sq_producer, copying each before checking it;
// - it stops at the first SQE it refuses: the ones before are consumed
//   (consumer moves past them), the refused one and those after are not,
//   so the next post() simply writes over them;
// - it writes CQ and RQ entries, then their producer index (release), and
//   reads our consumer index to know how much room there is.
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "kernel_device.hpp"
#include "tb_engine.h"

namespace tb {

namespace {

int do_ioctl(int fd, unsigned long cmd, void *arg) noexcept
{
    int rc;
    do {
        rc = ::ioctl(fd, cmd, arg);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : rc;
}

uint32_t load_acquire(const uint32_t &v) noexcept
{
    return __atomic_load_n(&v, __ATOMIC_ACQUIRE);
}

uint32_t load_relaxed(const uint32_t &v) noexcept
{
    return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

void store_release(uint32_t &v, uint32_t x) noexcept
{
    __atomic_store_n(&v, x, __ATOMIC_RELEASE);
}

void store_relaxed(uint32_t &v, uint32_t x) noexcept
{
    __atomic_store_n(&v, x, __ATOMIC_RELAXED);
}

// A kernel poll thread polls this SQ now: the flag says so, and the last
// look is recent (a thread off its CPU leaves the flag set, tbrdma_abi.h).
bool sq_polled_now(const tbrdma_ring_ctrl &c) noexcept
{
    if (load_relaxed(c.sq_polled) != 1)
        return false;
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const uint64_t now = uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
    return tbrdma_sq_polled_fresh(uint32_t(now >> TBRDMA_SQ_POLLED_SHIFT), load_relaxed(c.sq_polled_at));
}

}  // namespace

bool kernel_context::ring::empty() const noexcept
{
    return load_acquire(ctrl->producer) == load_relaxed(ctrl->consumer);
}

kernel_context::kernel_context(kernel_device &dev, const context_options &opts) : dev_(dev)
{
    const uint32_t max = dev.max_ring_entries();
    for (uint32_t v : {opts.sq_entries, opts.cq_entries, opts.rq_entries})
        if (!v || v > max)
            throw error(EINVAL, "kernel context: queue sizes must be 1 to " +
                                    std::to_string(max) +
                                    " entries (module parameter max_ring_entries)");
    event_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!event_fd_)
        throw error(errno, std::string("kernel context: eventfd: ") + std::strerror(errno));

    tbrdma_create_queues q{};
    q.sq_entries = opts.sq_entries;
    q.cq_entries = opts.cq_entries;
    q.rq_entries = opts.rq_entries;
    q.event_fd = event_fd_.get();
    int rc = do_ioctl(dev.fd(), TBRDMA_IOC_CREATE_QUEUES, &q);
    if (rc == -ENOSPC)
        throw error(ENOSPC, "kernel context: no context free (at most " +
                                std::to_string(dev.info().max_contexts) +
                                " per device, and the module parameter max_contexts in the host)");
    if (rc)
        throw error(-rc, std::string("kernel context: CREATE_QUEUES: ") + std::strerror(-rc));
    handle_ = q.ctx;
    id_ = q.ctx_id;
    secret_ = q.secret;
    try {
        map_ring(&sq_, q.sq_offset, q.sq_length, q.sq_entries, sizeof(tbrdma_sqe));
        map_ring(&cq_, q.cq_offset, q.cq_length, q.cq_entries, sizeof(tbrdma_cqe));
        map_ring(&rq_, q.rq_offset, q.rq_length, q.rq_entries, TBRDMA_RQE_SLOT);
    } catch (...) {
        unmap_rings();
        tbrdma_destroy_queues d{};
        d.ctx = handle_;
        do_ioctl(dev.fd(), TBRDMA_IOC_DESTROY_QUEUES, &d);
        throw;
    }
    // The kernel's poll threads may take SQEs without a doorbell (post()).
    store_release(sq_.ctrl->sq_poll, 1);
}

kernel_context::~kernel_context()
{
    // A forked child shares the parent's contexts: it only unmaps.
    if (dev_.owner()) {
        tbrdma_destroy_queues d{};
        d.ctx = handle_;
        do_ioctl(dev_.fd(), TBRDMA_IOC_DESTROY_QUEUES, &d);
    }
    unmap_rings();
}

void kernel_context::map_ring(ring *r, uint64_t offset, uint64_t length, uint32_t entries,
                              uint32_t entry_size)
{
    if (!entries || (entries & (entries - 1)) ||
        length < TBRDMA_RING_DATA_OFFSET + uint64_t(entries) * entry_size)
        throw error(EPROTO, "kernel context: the module returned a malformed ring");
    void *p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, dev_.fd(),
                     static_cast<off_t>(offset));
    if (p == MAP_FAILED)
        throw error(errno, std::string("kernel context: mmap of a ring: ") + std::strerror(errno));
    r->map = p;
    r->len = length;
    r->ctrl = static_cast<tbrdma_ring_ctrl *>(p);
    r->entries = static_cast<uint8_t *>(p) + TBRDMA_RING_DATA_OFFSET;
    r->mask = entries - 1;
    r->entry_size = entry_size;
}

void kernel_context::unmap_rings() noexcept
{
    for (ring *r : {&sq_, &cq_, &rq_}) {
        if (r->map)
            ::munmap(r->map, r->len);
        *r = ring{};
    }
}

int kernel_context::create_ep(uint32_t link, uint32_t remote_ctx, uint64_t remote_secret) noexcept
{
    tbrdma_create_ep c{};
    c.ctx = handle_;
    c.link = link;
    c.remote_ctx = remote_ctx;
    c.remote_secret = remote_secret;
    int rc = do_ioctl(dev_.fd(), TBRDMA_IOC_CREATE_EP, &c);
    if (rc)
        return rc;
    std::lock_guard<std::mutex> g(sq_mu_);
    try {
        eps_.insert(c.ep);
    } catch (const std::bad_alloc &) {
        tbrdma_ep_ref r{handle_, c.ep};
        do_ioctl(dev_.fd(), TBRDMA_IOC_DESTROY_EP, &r);
        return -ENOMEM;
    }
    return static_cast<int>(c.ep);
}

int kernel_context::destroy_ep(uint32_t ep) noexcept
{
    tbrdma_ep_ref r{handle_, ep};
    int rc = do_ioctl(dev_.fd(), TBRDMA_IOC_DESTROY_EP, &r);
    if (!rc) {
        std::lock_guard<std::mutex> g(sq_mu_);
        eps_.erase(ep);
    }
    return rc;
}

int kernel_context::cancel_ep(uint32_t ep) noexcept
{
    tbrdma_ep_ref r{handle_, ep};
    return do_ioctl(dev_.fd(), TBRDMA_IOC_CANCEL_EP, &r);
}

int kernel_context::ep_state(uint32_t ep, uint32_t *outstanding) noexcept
{
    tbrdma_ep_state s{};
    s.ctx = handle_;
    s.ep = ep;
    int rc = do_ioctl(dev_.fd(), TBRDMA_IOC_EP_STATE, &s);
    if (rc)
        return rc;
    if (outstanding)
        *outstanding = s.outstanding;
    return static_cast<int>(s.link_state);
}

// Writes the batch into the SQ after what earlier calls handed to it.
// While a kernel poll thread polls the SQ (sq_polled_now) that is all: it
// takes them. Otherwise a doorbell posts them and says at once what it
// refused; no poll thread may take them meanwhile (sq_poll off), or they
// would be refused twice.
int kernel_context::post(const tbrdma_sqe *sqes, unsigned n) noexcept
{
    if (!n)
        return 0;
    std::lock_guard<std::mutex> g(sq_mu_);
    tbrdma_ring_ctrl *c = sq_.ctrl;
    if (sq_tail_ != load_acquire(c->consumer) && !sq_polled_now(*c))
        doorbell_async();
    const uint32_t old_tail = sq_tail_;
    const uint32_t room = sq_.mask + 1 - (old_tail - load_acquire(c->consumer));
    uint32_t count = std::min<uint32_t>(n, room);
    if (!count)
        return -EAGAIN;  // earlier SQEs wait for a full queue to drain
    // What the kernel would refuse is refused here, at once, as a doorbell
    // would: a polled SQ could only complete it with an error.
    for (uint32_t i = 0; i < count; i++) {
        int why = !eps_.count(sqes[i].ep) ? -ENOENT : !tb_sqe_valid(&sqes[i]) ? -EINVAL : 0;
        if (why) {
            if (!i)
                return why;
            count = i;
            break;
        }
    }
    for (uint32_t i = 0; i < count; i++)
        std::memcpy(sq_.slot(old_tail + i), &sqes[i], sizeof(tbrdma_sqe));
    sq_tail_ = old_tail + count;
    store_release(c->producer, sq_tail_);
    // Pairs with the last poll thread's barrier before its last look (tbrdma_abi.h).
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (sq_polled_now(*c))
        return static_cast<int>(count);

    store_relaxed(c->sq_poll, 0);
    tbrdma_doorbell db{};
    db.ctx = handle_;
    db.sq_producer = sq_tail_;
    int rc = do_ioctl(dev_.fd(), TBRDMA_IOC_DOORBELL, &db);
    // The kernel takes SQEs in order: what it took of this batch comes
    // after all earlier ones (negative: an earlier one waits for a full
    // queue). A refused SQE and the ones after it are not handed over.
    const int32_t took = std::max<int32_t>(int32_t(load_acquire(c->consumer) - old_tail), 0);
    if (uint32_t(took) < count) {
        sq_tail_ = old_tail + uint32_t(took);
        store_release(c->producer, sq_tail_);
    }
    store_release(c->sq_poll, 1);
    if (took)
        return took;
    return rc ? rc : -EAGAIN;
}

void kernel_context::doorbell_async() noexcept
{
    tbrdma_doorbell db{};
    db.ctx = handle_;
    db.sq_producer = sq_tail_;
    db.flags = TBRDMA_DOORBELL_ASYNC;
    do_ioctl(dev_.fd(), TBRDMA_IOC_DOORBELL, &db);
}

unsigned kernel_context::poll_cq(tbrdma_cqe *out, unsigned max) noexcept
{
    // SQEs handed to a polled SQ and left there when polling stopped, or
    // found a queue full: they go now, since the caller waits for them.
    tbrdma_ring_ctrl *sqc = sq_.ctrl;
    if (load_acquire(sqc->producer) != load_acquire(sqc->consumer) &&
        !sq_polled_now(*sqc) && sq_mu_.try_lock()) {
        if (sq_tail_ != load_acquire(sqc->consumer))
            doorbell_async();
        sq_mu_.unlock();
    }
    tbrdma_ring_ctrl *c = cq_.ctrl;
    // Empty, as a spinning caller mostly finds it: no lock. Consumer only
    // moves under it: a stale look takes the lock for nothing, or misses
    // entries arriving now, as a look a moment earlier would.
    if (load_acquire(c->producer) == load_relaxed(c->consumer))
        return 0;
    std::lock_guard<std::mutex> g(cq_mu_);
    const uint32_t cons = load_relaxed(c->consumer);
    const uint32_t avail = load_acquire(c->producer) - cons;
    const unsigned n = std::min<uint32_t>(avail, max);
    for (unsigned i = 0; i < n; i++)
        std::memcpy(&out[i], cq_.slot(cons + i), sizeof(tbrdma_cqe));
    if (n)
        store_release(c->consumer, cons + n);
    return n;
}

const tbrdma_rqe *kernel_context::recv_peek() noexcept
{
    tbrdma_ring_ctrl *c = rq_.ctrl;
    // Empty: no lock, as in poll_cq().
    if (load_acquire(c->producer) == load_relaxed(c->consumer))
        return nullptr;
    std::lock_guard<std::mutex> g(rq_mu_);
    const uint32_t cons = load_relaxed(c->consumer);
    if (load_acquire(c->producer) == cons)
        return nullptr;
    return reinterpret_cast<const tbrdma_rqe *>(rq_.slot(cons));
}

void kernel_context::recv_release() noexcept
{
    std::lock_guard<std::mutex> g(rq_mu_);
    tbrdma_ring_ctrl *c = rq_.ctrl;
    const uint32_t cons = load_relaxed(c->consumer);
    if (load_acquire(c->producer) != cons)
        store_release(c->consumer, cons + 1);
}

// Lock-free against the kernel: arm, full fence, look again. The kernel
// publishes its producer index, fences, then reads armed (tb_qring_publish),
// so either it sees armed and signals the eventfd, or we see the entries.
int kernel_context::arm() noexcept
{
    uint64_t v;
    while (::read(event_fd_.get(), &v, sizeof(v)) > 0)
        ;
    __atomic_store_n(&cq_.ctrl->armed, 1u, __ATOMIC_RELAXED);
    __atomic_store_n(&rq_.ctrl->armed, 1u, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!cq_.empty() || !rq_.empty())
        return -EAGAIN;
    return 0;
}

}  // namespace tb
