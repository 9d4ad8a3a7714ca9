// SPDX-License-Identifier: BSD-2-Clause
//
// One end of a soft cable: a shared-memory segment between two processes
// holding two single-producer, single-consumer frame rings (one per
// direction). It is a tb_link phy: xmit copies the frame into the peer's
// ring -- that copy is the cable's "DMA" -- and a full ring drops the
// frame like hardware without end-to-end flow control would; the link's
// credits normally keep that from happening. Frames pass through the
// fault model on the way in. See docs/soft-link.md.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "fault_model.hpp"
#include "shm_segment.hpp"
#include "soft_fabric.hpp"
#include "tb_link.h"

namespace tb {

struct cable_header;
struct cable_ring;
struct cable_slot;

class soft_cable {
public:
    struct counters {
        uint64_t tx_frames = 0;  // put into the peer's ring
        uint64_t rx_frames = 0;
        uint64_t ring_full = 0;  // dropped: the peer's ring had no room
        uint64_t lost = 0;       // dropped by the fault model
        uint64_t duplicated = 0;
        uint64_t reordered = 0;
        uint64_t bad = 0;  // malformed slots skipped
    };

    // How long a frame may be held back for reordering when no later
    // frame comes to overtake it.
    static constexpr uint64_t hold_ns = 20000;

    enum class mode {
        create_or_attach,  // we want to talk to the peer
        attach_only,       // the peer announced a cable to us
    };

    // Opens our end of the cable to peer; the caller holds the fabric
    // lock. end picks the side for a cable to ourselves (0 first, then
    // 1); otherwise the lower context id is end 0. Returns 0, -ENOENT
    // (attach_only and no usable cable) or another -errno.
    static int open(soft_fabric &fabric, const soft_peer &peer, const soft_link_options &opts,
                    mode m, int end, std::unique_ptr<soft_cable> *out) noexcept;

    // Marks our end closed: the peer reads what is left, then fails.
    ~soft_cable();
    soft_cable(const soft_cable &) = delete;
    soft_cable &operator=(const soft_cable &) = delete;

    // The tb_link phy operations; phy is the soft_cable.
    static const tb_phy_ops phy_ops;

    int xmit(const void *frame, uint32_t len) noexcept;
    int rx_peek(const void **frame, uint32_t *len) noexcept;
    void rx_release() noexcept;

    // Sends a held-back frame whose time is up.
    void progress(uint64_t now) noexcept;
    bool needs_progress() const noexcept { return held_len_ != 0; }

    // Whether rx_peek() has something to report now (a frame whose time
    // has come, or the peer's end).
    bool rx_ready(uint64_t now) noexcept;

    // Checks that the peer process is still the one we cabled to; after a
    // failure the cable reports -ENOTCONN once drained.
    void check_peer(bool check_start) noexcept;
    bool failed() const noexcept { return dead_; }

    // Marks our end closed, wakes the peer and unlinks the name (only if
    // it is still this segment). The caller holds the fabric lock.
    void close() noexcept;
    // The segment's name still refers to this segment.
    bool is_current() const noexcept { return seg_.is_current(); }

    const soft_peer &peer() const noexcept { return peer_; }
    uint32_t rx_slots() const noexcept { return slots_; }
    const counters &stats() const noexcept { return stats_; }

private:
    soft_cable(soft_fabric &fabric, const soft_peer &peer, const soft_link_options &opts,
               shm_segment &&seg, int end, uint32_t slots) noexcept;
    static int create_segment(shm_segment &seg, const std::string &name, uint32_t lo, uint32_t hi,
                              uint32_t slots) noexcept;
    // The segment's slots per ring, read once (the creator may still be
    // writing the header), or 0 when it is not usable.
    static uint32_t usable(const cable_header *h, size_t size, uint32_t lo, uint32_t hi, int end,
                           const soft_peer &peer) noexcept;

    void put(const void *frame, uint32_t len, uint64_t deliver_at) noexcept;
    void notify() noexcept;
    bool peer_closed() const noexcept;
    int xmit_faulty(const void *frame, uint32_t len) noexcept;

    soft_fabric &fabric_;
    soft_peer peer_;
    shm_segment seg_;
    cable_header *hdr_ = nullptr;
    int end_ = 0;
    uint32_t slots_ = 0;

    // Transmit side: the peer's ring, we produce.
    cable_ring *tx_ = nullptr;
    cable_slot *tx_slots_ = nullptr;
    uint32_t tx_head_ = 0;
    uint32_t tx_space_ = 0;  // slots known free without reading consumer

    // Receive side: our ring, we consume.
    cable_ring *rx_ = nullptr;
    cable_slot *rx_slots_ = nullptr;
    uint32_t rx_head_ = 0;
    uint32_t rx_avail_ = 0;  // frames known present without reading producer

    wake_target wake_;
    fault_model faults_;
    std::vector<uint8_t> held_;  // a frame held back for reordering
    uint32_t held_len_ = 0;
    uint64_t held_at_ = 0;
    bool dead_ = false;
    counters stats_;
};

}  // namespace tb
