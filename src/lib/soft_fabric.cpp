// SPDX-License-Identifier: BSD-2-Clause
#include "soft_fabric.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <type_traits>

#include "tb/device.hpp"

namespace tb {

namespace {

constexpr uint64_t registry_magic = 0x7462666162726963ull;  // "tbfabric"
constexpr uint32_t registry_version = 1;

enum port_state : uint32_t { port_free = 0, port_claiming = 1, port_used = 2 };

}  // namespace

// One port. The owner's flag and the doorbell bits that peers write sit
// on separate cache lines from the rarely written identity.
struct alignas(64) fabric_port {
    std::atomic<uint32_t> state;
    std::atomic<uint32_t> generation;
    std::atomic<int32_t> pid;
    uint32_t pad0;
    std::atomic<uint64_t> start_time;
    std::atomic<uint32_t> doorbell;
    alignas(64) std::atomic<uint32_t> armed;
    alignas(64) std::atomic<uint64_t> incoming[soft_fabric::max_ports / 64];
};

struct fabric_registry {
    std::atomic<uint64_t> magic;  // written last by the initialiser
    uint32_t version;
    uint32_t ports;
    uint32_t port_size;
    alignas(64) fabric_port port[soft_fabric::max_ports];
};

static_assert(std::atomic<uint32_t>::is_always_lock_free &&
                  std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free");
static_assert(std::is_standard_layout<fabric_registry>::value, "plain shm layout");
static_assert(sizeof(fabric_port) == 256, "port layout");

namespace {

bool valid_fabric_name(const std::string &n) noexcept
{
    if (n.empty() || n.size() > 32)
        return false;
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
            return false;
    return true;
}

uint32_t random_generation() noexcept
{
    uint32_t g = 0;
    while (!g) {
        if (getrandom(&g, sizeof(g), 0) != sizeof(g))
            g = static_cast<uint32_t>(::getpid()) * 2654435761u;
        g &= soft_fabric::generation_mask;
    }
    return g;
}

void hex8(char *out, uint32_t v) noexcept
{
    std::snprintf(out, 9, "%08x", v);
}

// Parses "<8 hex>-<8 hex>" exactly.
bool parse_ids(const char *s, uint32_t *a, uint32_t *b) noexcept
{
    if (std::strlen(s) != 17 || s[8] != '-')
        return false;
    for (int i = 0; i < 17; i++)
        if (i != 8 && !std::isxdigit(static_cast<unsigned char>(s[i])))
            return false;
    *a = static_cast<uint32_t>(std::strtoul(s, nullptr, 16));
    *b = static_cast<uint32_t>(std::strtoul(s + 9, nullptr, 16));
    return true;
}

}  // namespace

soft_fabric::soft_fabric(const std::string &name) : name_(name), self_(process_ident::self())
{
    if (!valid_fabric_name(name))
        throw error(EINVAL, "soft fabric name '" + name +
                                "': use 1 to 32 characters from [A-Za-z0-9._-]");
    if (!self_.start_time)
        throw error(ENOSYS, "soft fabric: cannot read /proc/self/stat (is /proc mounted?)");
    open_registry();  // returns holding the lock
    try {
        claim_port();
        bind_wake_socket();
    } catch (...) {
        release_port();
        unlock();
        throw;
    }
    // Visible to lookups from here on.
    reg_->port[port_].state.store(port_used, std::memory_order_release);
    seen_doorbell_ = reg_->port[port_].doorbell.load(std::memory_order_acquire);
    unlock();
}

soft_fabric::~soft_fabric()
{
    // A forked child inherits the mapping but not the port.
    if (!reg_ || ::getpid() != self_.pid)
        return;
    lock();
    release_port();
    unlock();
}

void soft_fabric::open_registry()
{
    const std::string seg_name = "/tb-" + name_;
    for (;;) {
        int rc = reg_seg_.open(seg_name, O_CREAT);
        if (rc == -EACCES)
            throw error(EACCES, "soft fabric: /dev/shm" + seg_name +
                                    " belongs to another user or is not mode 0600");
        if (rc)
            throw error(-rc, "soft fabric: shm_open(" + seg_name + "): " + std::strerror(-rc));
        lock();
        // The last process may have unlinked it while we waited; nobody
        // else ever unlinks or replaces it.
        if (reg_seg_.is_linked())
            break;
        unlock();
    }
    int rc = reg_seg_.resize(sizeof(fabric_registry));
    if (!rc)
        rc = reg_seg_.map(sizeof(fabric_registry));
    if (rc) {
        unlock();
        throw error(-rc, "soft fabric: cannot map /dev/shm" + seg_name + ": " + std::strerror(-rc));
    }
    reg_ = static_cast<fabric_registry *>(reg_seg_.addr());
    uint64_t magic = reg_->magic.load(std::memory_order_acquire);
    if (magic == 0) {
        // New registry (or one whose creator died first): nothing of an
        // earlier one can be alive, so its cables are all stale.
        unlink_stale_cables(true);
        reg_->version = registry_version;
        reg_->ports = max_ports;
        reg_->port_size = sizeof(fabric_port);
        for (auto &p : reg_->port)
            p.generation.store(random_generation(), std::memory_order_relaxed);
        reg_->magic.store(registry_magic, std::memory_order_release);
    } else if (magic != registry_magic || reg_->version != registry_version ||
               reg_->ports != max_ports || reg_->port_size != sizeof(fabric_port)) {
        unlock();
        reg_ = nullptr;
        throw error(EPROTO, "soft fabric: /dev/shm" + seg_name +
                                " has another layout (older tb version?); stop its users "
                                "and remove it, or use another TB_SOFT_FABRIC");
    }
}

// Under the lock: the first free port, or one whose process is gone.
void soft_fabric::claim_port()
{
    for (uint32_t i = 0; i < max_ports; i++) {
        fabric_port &p = reg_->port[i];
        if (p.state.load(std::memory_order_acquire) != port_free) {
            process_ident owner;
            owner.pid = p.pid.load(std::memory_order_relaxed);
            owner.start_time = p.start_time.load(std::memory_order_relaxed);
            if (owner.alive())
                continue;
        }
        uint32_t gen = (p.generation.load(std::memory_order_relaxed) + 1) & generation_mask;
        if (!gen)
            gen = 1;
        // Lookups of the old id fail from here on.
        p.state.store(port_claiming, std::memory_order_release);
        p.generation.store(gen, std::memory_order_relaxed);
        p.pid.store(self_.pid, std::memory_order_relaxed);
        p.start_time.store(self_.start_time, std::memory_order_relaxed);
        p.armed.store(0, std::memory_order_relaxed);
        for (auto &w : p.incoming)
            w.store(0, std::memory_order_relaxed);
        port_ = i;
        id_ = make_id(gen, i);
        unlink_stale_cables(false);
        return;
    }
    throw error(EBUSY, "soft fabric '" + name_ + "': all " + std::to_string(max_ports) +
                           " ports are held by live processes");
}

// Under the lock. Every cable of an earlier holder of our port is stale
// (any_port: every cable of the fabric, for a new registry).
void soft_fabric::unlink_stale_cables(bool any_port) noexcept
{
    DIR *d = ::opendir(shm_segment::dir);
    if (!d)
        return;
    try {
        const std::string prefix = "tb-" + name_ + "-";
        while (struct dirent *e = ::readdir(d)) {
            uint32_t a, b;
            if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0 ||
                !parse_ids(e->d_name + prefix.size(), &a, &b))
                continue;
            if (any_port || port_of(a) == port_ || port_of(b) == port_)
                ::shm_unlink(("/" + std::string(e->d_name)).c_str());
        }
    } catch (...) {
    }
    ::closedir(d);
}

void soft_fabric::bind_wake_socket()
{
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw error(errno, std::string("soft fabric: socket: ") + std::strerror(errno));
    wake_fd_.reset(fd);
    wake_target t = wake_target_of(id_);
    if (::bind(fd, reinterpret_cast<const sockaddr *>(&t.addr), t.addr_len) != 0)
        throw error(errno, std::string("soft fabric: bind wake socket: ") + std::strerror(errno));
}

// Under the lock.
void soft_fabric::release_port() noexcept
{
    if (!reg_)
        return;
    fabric_port &p = reg_->port[port_];
    if (p.pid.load(std::memory_order_relaxed) == self_.pid &&
        generation_of(id_) == p.generation.load(std::memory_order_relaxed)) {
        p.armed.store(0, std::memory_order_relaxed);
        p.pid.store(0, std::memory_order_relaxed);
        p.start_time.store(0, std::memory_order_relaxed);
        p.state.store(port_free, std::memory_order_release);
    }
    // The last live process removes the registry; a waiting opener
    // notices (is_current) and creates a new one.
    for (auto &q : reg_->port) {
        if (q.state.load(std::memory_order_acquire) == port_free)
            continue;
        process_ident owner;
        owner.pid = q.pid.load(std::memory_order_relaxed);
        owner.start_time = q.start_time.load(std::memory_order_relaxed);
        if (owner.alive())
            return;
    }
    unlink_stale_cables(true);
    reg_seg_.unlink_if_current();
}

void soft_fabric::lock() noexcept
{
    reg_seg_.lock();
}

bool soft_fabric::try_lock() noexcept
{
    return reg_seg_.try_lock();
}

void soft_fabric::unlock() noexcept
{
    reg_seg_.unlock();
}

int soft_fabric::lookup(uint32_t id, soft_peer *out) const noexcept
{
    uint32_t gen = generation_of(id);
    if (!gen)
        return -ECONNREFUSED;
    int rc = lookup_port(port_of(id), out);
    if (rc)
        return rc;
    return out->id == process_of(id) ? 0 : -ECONNREFUSED;
}

int soft_fabric::lookup_port(uint32_t port, soft_peer *out) const noexcept
{
    if (port >= max_ports)
        return -ECONNREFUSED;
    const fabric_port &p = reg_->port[port];
    // Read twice around the identity: a claim in between shows up as a
    // state or generation change.
    if (p.state.load(std::memory_order_acquire) != port_used)
        return -ECONNREFUSED;
    uint32_t gen = p.generation.load(std::memory_order_acquire);
    soft_peer s;
    s.id = make_id(gen, port);
    s.proc.pid = p.pid.load(std::memory_order_acquire);
    s.proc.start_time = p.start_time.load(std::memory_order_acquire);
    if (p.state.load(std::memory_order_acquire) != port_used ||
        p.generation.load(std::memory_order_acquire) != gen)
        return -ECONNREFUSED;
    if (!s.proc.alive())
        return -ECONNREFUSED;
    *out = s;
    return 0;
}

bool soft_fabric::alive(const soft_peer &s, bool check_start) const noexcept
{
    const fabric_port &p = reg_->port[port_of(s.id)];
    return p.state.load(std::memory_order_acquire) == port_used &&
           p.generation.load(std::memory_order_acquire) == generation_of(s.id) &&
           s.proc.alive(check_start);
}

std::string soft_fabric::cable_name(uint32_t a, uint32_t b) const
{
    char lo[9], hi[9];
    hex8(lo, a < b ? a : b);
    hex8(hi, a < b ? b : a);
    return "/tb-" + name_ + "-" + lo + "-" + hi;
}

void soft_fabric::announce(uint32_t peer_id) noexcept
{
    fabric_port &p = reg_->port[port_of(peer_id)];
    p.incoming[port_ / 64].fetch_or(1ull << (port_ % 64), std::memory_order_release);
    p.doorbell.fetch_add(1, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake(wake_target_of(peer_id));
}

bool soft_fabric::doorbell_rang() const noexcept
{
    return reg_->port[port_].doorbell.load(std::memory_order_acquire) != seen_doorbell_;
}

void soft_fabric::take_incoming(std::vector<uint32_t> &ports)
{
    fabric_port &p = reg_->port[port_];
    // Doorbell first: a bit set after the exchange below comes with a
    // later doorbell value, so it is not missed.
    seen_doorbell_ = p.doorbell.load(std::memory_order_acquire);
    for (uint32_t w = 0; w < max_ports / 64; w++) {
        uint64_t bits = p.incoming[w].exchange(0, std::memory_order_acq_rel);
        while (bits) {
            int b = __builtin_ctzll(bits);
            bits &= bits - 1;
            ports.push_back(w * 64 + static_cast<uint32_t>(b));
        }
    }
}

wake_target soft_fabric::wake_target_of(uint32_t id) const noexcept
{
    wake_target t;
    t.armed = &reg_->port[port_of(id)].armed;
    t.addr.sun_family = AF_UNIX;
    // Abstract name: "\0tb-<fabric>-<id>", gone with the socket.
    int n = std::snprintf(t.addr.sun_path + 1, sizeof(t.addr.sun_path) - 1, "tb-%s-%08x",
                          name_.c_str(), id);
    t.addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
    return t;
}

void soft_fabric::send_wake(const wake_target &t) const noexcept
{
    // A full socket buffer already holds a wake-up: ignore EAGAIN.
    static const char byte = 1;
    ::sendto(wake_fd_.get(), &byte, 1, MSG_DONTWAIT, reinterpret_cast<const sockaddr *>(&t.addr),
             t.addr_len);
}

void soft_fabric::set_armed() noexcept
{
    reg_->port[port_].armed.store(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

void soft_fabric::clear_armed() noexcept
{
    reg_->port[port_].armed.store(0, std::memory_order_relaxed);
}

}  // namespace tb
