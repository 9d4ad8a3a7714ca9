// SPDX-License-Identifier: BSD-2-Clause
#include "kernel_device.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace tb {

namespace {

constexpr const char *dev_path = "/dev/tbrdma";

std::string errno_text(int err)
{
    return std::strerror(err);
}

// A fixed-size name field of the ABI, not necessarily NUL-terminated.
std::string abi_string(const char *p, size_t n)
{
    return std::string(p, ::strnlen(p, n));
}

int do_ioctl(int fd, unsigned long cmd, void *arg) noexcept
{
    int rc;
    do {
        rc = ::ioctl(fd, cmd, arg);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : rc;
}

// Whether pinning is bounded by RLIMIT_MEMLOCK for this process (not
// unlimited, no CAP_IPC_LOCK), and the limit for the message.
bool memlock_bounded(std::string *limit)
{
    rlimit rl{};
    if (::getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return false;
    *limit = std::to_string(rl.rlim_cur / 1024) + " KiB";
    std::ifstream st("/proc/self/status");
    std::string line;
    while (std::getline(st, line)) {
        if (line.rfind("CapEff:", 0) != 0)
            continue;
        unsigned long long caps = std::strtoull(line.c_str() + 7, nullptr, 16);
        return !(caps & (1ull << 14));  // CAP_IPC_LOCK
    }
    return true;
}

// Posting costs a system call (the doorbell): timed here on the cheapest
// ioctl, the best of a few so that a preemption does not count.
uint32_t measure_post_ns(int fd) noexcept
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 16; i++) {
        tbrdma_query q{};
        auto t0 = std::chrono::steady_clock::now();
        do_ioctl(fd, TBRDMA_IOC_QUERY, &q);
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
        best = std::min<uint64_t>(best, static_cast<uint64_t>(ns));
    }
    return static_cast<uint32_t>(std::min<uint64_t>(best, UINT32_MAX));
}

}  // namespace

kernel_device::kernel_device(const open_options &opts) : owner_pid_(::getpid())
{
    if (!opts.max_mr)
        throw error(EINVAL, "kernel device: max_mr must be at least 1");
    fd_.reset(::open(dev_path, O_RDWR | O_CLOEXEC));
    if (!fd_) {
        int err = errno;
        if (err == ENOENT || err == ENXIO || err == ENODEV)
            throw error(ENODEV, std::string(dev_path) + " is missing: load the tbrdma module "
                                "(modprobe tbrdma loop=2), or use the software device "
                                "(TB_DEVICE=soft, UCX_TB_DEVICE=soft)");
        if (err == EACCES || err == EPERM)
            throw error(err, std::string("cannot open ") + dev_path + ": " + errno_text(err) +
                                 " (check its mode and your groups; the module makes it 0666)");
        throw error(err, std::string("cannot open ") + dev_path + ": " + errno_text(err));
    }
    tbrdma_query q{};
    int rc = do_ioctl(fd_.get(), TBRDMA_IOC_QUERY, &q);
    if (rc == -ENOTTY)
        throw error(EPROTO, std::string(dev_path) + " does not speak this library's ABI (ioctl "
                            "QUERY unknown): load the tbrdma module of the same build");
    if (rc)
        throw error(-rc, std::string("QUERY on ") + dev_path + ": " + errno_text(-rc));
    if (q.abi_version != TBRDMA_ABI_VERSION)
        throw error(EPROTO, "the tbrdma module speaks ABI version " +
                                std::to_string(q.abi_version) + ", this library version " +
                                std::to_string(TBRDMA_ABI_VERSION) +
                                ": load the module of the same build");
    info_.kind = "kernel";
    info_.abi_version = q.abi_version;
    // The module's limit per open file, or the caller's if lower.
    info_.max_mr = std::min(q.max_mr, opts.max_mr);
    info_.max_contexts = q.max_contexts;
    info_.max_ep = q.max_ep;
    info_.frame_max = q.frame_max;
    info_.inline_max = q.inline_max;
    info_.send_max = q.send_max;
    info_.post_ns = measure_post_ns(fd_.get());
    max_ring_ = q.max_ring_entries;
}

bool kernel_device::owner() const noexcept
{
    return ::getpid() == owner_pid_;
}

namespace {

// The link at index, or false when there is none (gone since QUERY).
bool query_link(int fd, uint32_t index, link_info *l)
{
    tbrdma_link_attr a{};
    a.index = index;
    int rc = do_ioctl(fd, TBRDMA_IOC_QUERY_LINK, &a);
    if (rc == -EINVAL)
        return false;
    if (rc)
        throw error(-rc, "QUERY_LINK " + std::to_string(index) + ": " + errno_text(-rc));
    l->index = index;
    l->name = abi_string(a.name, sizeof(a.name));
    l->state = a.state;
    l->identity = a.identity;
    l->end_id = a.end_id;
    l->local = a.flags & TBRDMA_LINK_F_LOCAL;
    l->speed_mbps = a.speed_mbps;
    l->latency_ns = a.latency_ns;
    l->rtt_ns = a.rtt_ns;
    l->numa_node = a.numa_node == ~0u ? -1 : static_cast<int>(a.numa_node);
    l->pci_addr = abi_string(a.pci_addr, sizeof(a.pci_addr));
    return true;
}

}  // namespace

std::vector<link_info> kernel_device::links() const
{
    tbrdma_query q{};
    int rc = do_ioctl(fd_.get(), TBRDMA_IOC_QUERY, &q);
    if (rc)
        throw error(-rc, std::string("QUERY on ") + dev_path + ": " + errno_text(-rc));
    std::vector<link_info> out;
    out.reserve(q.num_links);
    for (uint32_t i = 0; i < q.num_links; i++) {
        link_info l;
        if (query_link(fd_.get(), i, &l))
            out.push_back(std::move(l));
    }
    return out;
}

link_info kernel_device::link(uint32_t index) const
{
    link_info l;
    if (!query_link(fd_.get(), index, &l))
        throw error(ENODEV, "link " + std::to_string(index) + " is gone");
    return l;
}

uint64_t kernel_device::reg_mr(void *addr, size_t length, uint32_t access)
{
    if (!addr || !length || !access || (access & ~uint32_t(TBRDMA_ACCESS_ALL)))
        throw error(EINVAL, "reg_mr: needs an address, a length and valid access flags");
    const std::string what = "reg_mr of " + std::to_string(length) + " bytes: ";
    if (regions_.fetch_add(1) >= info_.max_mr) {
        regions_--;
        throw error(ENOSPC, what + "all " + std::to_string(info_.max_mr) +
                                " regions of this device are in use (UCX_TB_MAX_MR, or the "
                                "module parameter max_mr)");
    }
    tbrdma_reg_mr r{};
    r.addr = reinterpret_cast<uintptr_t>(addr);
    r.length = length;
    r.access = access;
    int rc = do_ioctl(fd_.get(), TBRDMA_IOC_REG_MR, &r);
    if (!rc)
        return r.key;
    regions_--;
    switch (-rc) {
    case ENOMEM: {
        std::string limit;
        if (memlock_bounded(&limit))
            throw error(ENOMEM, what + "RLIMIT_MEMLOCK too low: raise it (ulimit -l) or run "
                                       "with CAP_IPC_LOCK (limit " + limit +
                                       ", counting what this process pinned already)");
        throw error(ENOMEM, what + "the kernel is out of memory");
    }
    case EFAULT:
        throw error(EFAULT, what + "the range is not mapped memory of this process");
    case EINVAL:
        throw error(EINVAL, what + "length or access refused (see the module parameter "
                                   "mr_max_mb for the largest region)");
    case ENOSPC:
        throw error(ENOSPC, what + "all " + std::to_string(info_.max_mr) +
                                " regions of this device are in use (module parameter max_mr)");
    case EOPNOTSUPP:
        throw error(EOPNOTSUPP, what + "this memory cannot be pinned long-term "
                                       "(file-system DAX?)");
    default:
        throw error(-rc, what + errno_text(-rc));
    }
}

int kernel_device::dereg_mr(uint64_t key) noexcept
{
    tbrdma_dereg_mr d{};
    d.key = key;
    int rc = do_ioctl(fd_.get(), TBRDMA_IOC_DEREG_MR, &d);
    if (!rc)
        regions_--;
    return rc;
}

std::unique_ptr<context> kernel_device::create_context(const context_options &opts)
{
    return std::make_unique<kernel_context>(*this, opts);
}

uint32_t kernel_device::contexts_free() const
{
    tbrdma_query q{};
    int rc = do_ioctl(fd_.get(), TBRDMA_IOC_QUERY, &q);
    if (rc)
        throw error(-rc, std::string("QUERY on ") + dev_path + ": " + errno_text(-rc));
    return q.contexts_free;
}

}  // namespace tb
