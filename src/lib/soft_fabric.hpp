// SPDX-License-Identifier: BSD-2-Clause
//
// The rendezvous of the processes that share one software fabric: a
// shared-memory registry "/tb-<fabric>" with a table of ports. Each
// process (each soft device) holds one port. A context id is
// (generation << (port_bits + ctx_bits)) | (port << ctx_bits) | context,
// the context being one of the process's (its engine's table slot); a
// port's generation changes every time it is claimed, so the ids of a dead
// process never come back. The fabric itself deals in process ids, the
// context ids with context 0.
//
// The registry also carries, per port, the wake-up flag and the doorbell
// that peers ring after creating a cable to it. See docs/soft-link.md.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "process_ident.hpp"
#include "shm_segment.hpp"
#include "unique_fd.hpp"

namespace tb {

struct fabric_registry;

// A context id and the process behind it when it was looked up.
struct soft_peer {
    uint32_t id = 0;
    process_ident proc;
};

// How to wake a process sleeping on its event fd.
struct wake_target {
    std::atomic<uint32_t> *armed = nullptr;  // its flag in the registry
    sockaddr_un addr{};
    socklen_t addr_len = 0;
};

class soft_fabric {
public:
    static constexpr uint32_t ctx_bits = 4;
    static constexpr uint32_t max_contexts = 1u << ctx_bits;
    static constexpr uint32_t port_bits = 10;
    static constexpr uint32_t max_ports = 1u << port_bits;
    static constexpr uint32_t generation_mask = (1u << (32 - port_bits - ctx_bits)) - 1;

    static constexpr uint32_t port_of(uint32_t id) noexcept
    {
        return (id >> ctx_bits) & (max_ports - 1);
    }
    static constexpr uint32_t generation_of(uint32_t id) noexcept
    {
        return id >> (ctx_bits + port_bits);
    }
    static constexpr uint32_t make_id(uint32_t generation, uint32_t port) noexcept
    {
        return (generation << (ctx_bits + port_bits)) | (port << ctx_bits);
    }
    // The process a context id belongs to.
    static constexpr uint32_t process_of(uint32_t id) noexcept
    {
        return id & ~(max_contexts - 1);
    }

    // Opens (creating if needed) the registry and claims a port, first
    // reclaiming ports of dead processes. Throws tb::error.
    explicit soft_fabric(const std::string &name);
    // Releases the port; the last live process unlinks the registry.
    ~soft_fabric();
    soft_fabric(const soft_fabric &) = delete;
    soft_fabric &operator=(const soft_fabric &) = delete;

    const std::string &name() const noexcept { return name_; }
    // Our process id: context ids are this | context index.
    uint32_t ctx_id() const noexcept { return id_; }
    const process_ident &self() const noexcept { return self_; }
    // Our wake socket: readable after a peer woke us.
    int wake_fd() const noexcept { return wake_fd_.get(); }

    // Fabric-wide lock (Lockable) serialising port claims and the
    // creation, attachment and removal of cables. Dies with its holder.
    void lock() noexcept;
    bool try_lock() noexcept;
    void unlock() noexcept;

    // The live process that holds (the process of) id now: 0 or
    // -ECONNREFUSED. out->id is the process id.
    int lookup(uint32_t id, soft_peer *out) const noexcept;
    // The live process on port index, whatever its generation.
    int lookup_port(uint32_t port, soft_peer *out) const noexcept;
    // Still the same live process? check_start adds the start-time test
    // (a /proc read) to kill(pid, 0).
    bool alive(const soft_peer &p, bool check_start) const noexcept;

    // "/tb-<fabric>-<low id>-<high id>" (ids as 8 hex digits).
    std::string cable_name(uint32_t a, uint32_t b) const;

    // Tells the owner of peer_id that a cable from us is waiting.
    void announce(uint32_t peer_id) noexcept;
    // Whether a peer announced a cable since the last take_incoming().
    bool doorbell_rang() const noexcept;
    // Port indices of the peers that announced cables; clears them.
    void take_incoming(std::vector<uint32_t> &ports);

    wake_target wake_target_of(uint32_t id) const noexcept;
    // Wakes the target if it is armed (clearing its flag).
    void wake(const wake_target &t) const noexcept
    {
        // The plain load keeps the common, unarmed case free of writes.
        if (t.armed->load(std::memory_order_relaxed) &&
            t.armed->exchange(0, std::memory_order_acq_rel))
            send_wake(t);
    }
    // Our own flag: peers wake us after their next frame. Followed by a
    // full fence, so that rings checked afterwards are current.
    void set_armed() noexcept;
    void clear_armed() noexcept;

private:
    void open_registry();
    void claim_port();
    void unlink_stale_cables(bool any_port) noexcept;
    void bind_wake_socket();
    void release_port() noexcept;
    void send_wake(const wake_target &t) const noexcept;

    std::string name_;
    shm_segment reg_seg_;
    fabric_registry *reg_ = nullptr;
    process_ident self_;
    uint32_t port_ = 0;
    uint32_t id_ = 0;
    uint32_t seen_doorbell_ = 0;
    unique_fd wake_fd_;
};

}  // namespace tb
