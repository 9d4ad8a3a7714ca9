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
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "kernel_device.hpp"

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
    return rc ? rc : static_cast<int>(c.ep);
}

int kernel_context::destroy_ep(uint32_t ep) noexcept
{
    tbrdma_ep_ref r{handle_, ep};
    return do_ioctl(dev_.fd(), TBRDMA_IOC_DESTROY_EP, &r);
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

// Writes the batch into the SQ from the kernel's consumer index on, then
// one doorbell. Every earlier post() ended with the kernel consuming all
// it accepted, so the whole ring is free: a batch larger than the ring is
// cut to the ring (and reported as partly accepted).
int kernel_context::post(const tbrdma_sqe *sqes, unsigned n) noexcept
{
    if (!n)
        return 0;
    std::lock_guard<std::mutex> g(sq_mu_);
    const uint32_t head = load_acquire(sq_.ctrl->consumer);
    const uint32_t count = std::min<uint32_t>(n, sq_.mask + 1);
    for (uint32_t i = 0; i < count; i++)
        std::memcpy(sq_.slot(head + i), &sqes[i], sizeof(tbrdma_sqe));
    store_release(sq_.ctrl->producer, head + count);  // informational
    tbrdma_doorbell db{};
    db.ctx = handle_;
    db.sq_producer = head + count;
    int rc = do_ioctl(dev_.fd(), TBRDMA_IOC_DOORBELL, &db);
    if (rc)
        return rc;  // the first SQE was refused, nothing consumed
    // A refused SQE and the ones after it stay where they are (not
    // consumed); the producer index follows the consumer back down.
    if (db.posted != count)
        store_release(sq_.ctrl->producer, head + db.posted);
    return static_cast<int>(db.posted);
}

unsigned kernel_context::poll_cq(tbrdma_cqe *out, unsigned max) noexcept
{
    std::lock_guard<std::mutex> g(cq_mu_);
    tbrdma_ring_ctrl *c = cq_.ctrl;
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
    std::lock_guard<std::mutex> g(rq_mu_);
    tbrdma_ring_ctrl *c = rq_.ctrl;
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
