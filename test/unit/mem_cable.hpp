// SPDX-License-Identifier: BSD-2-Clause
//
// An in-process cable for single-process tests: two ends, each with a
// finite receive queue, and deterministic fault injection (seeded), so a
// failing run can be replayed exactly. With ext_ops it carries ext buffers
// as USB4 rings do: a second descriptor behind the frame, lost, duplicated
// or reordered on its own, and paired with its frame again on receipt.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <set>
#include <vector>

extern "C" {
#include "tb_link.h"
}

namespace tbtest {

struct cable_faults {
    double loss = 0, dup = 0, reorder = 0, corrupt = 0;
};

class mem_cable_end {
public:
    explicit mem_cable_end(size_t slots = 64, uint64_t seed = 1) : slots_(slots), rng_(seed) {}

    void connect(mem_cable_end *peer) noexcept { peer_ = peer; }
    void set_faults(const cable_faults &f) noexcept { faults_ = f; }
    void unplug() noexcept { unplugged_ = true; if (peer_) peer_->unplugged_ = true; }
    // Plugged in again: both ends empty, as a fresh cable.
    void plug() noexcept;

    static const tb_phy_ops ops;
    static const tb_phy_ops ext_ops;

    uint64_t dropped = 0, sent = 0, ext_sent = 0, unpaired = 0;
    // Descriptors to lose, by their number: the value `sent` takes as each
    // is put on the cable.
    std::set<uint64_t> lose;

private:
    static int xmit(void *phy, const void *frame, uint32_t len, const tb_link_ext *ext) noexcept;
    static int rx_peek(void *phy, tb_phy_rx *rx) noexcept;
    static void rx_release(void *phy) noexcept;
    void put(const void *frame, uint32_t len, bool ext);

    // One receive descriptor: a frame, or an ext buffer (the USB4 phy
    // tells them apart by their PDF, so one is never taken for the other).
    struct desc {
        bool ext = false;
        std::vector<uint8_t> bytes;
    };

    bool chance(double p) { return p > 0 && std::uniform_real_distribution<>(0, 1)(rng_) < p; }
    void deliver(desc d);

    size_t slots_;
    std::mt19937_64 rng_;
    mem_cable_end *peer_ = nullptr;
    cable_faults faults_;
    bool unplugged_ = false;
    std::deque<desc> rx_;
    desc held_;                  // a descriptor held back to reorder
    bool holding_ = false;
    size_t peeked_ = 0;          // descriptors rx_peek handed out
};

}  // namespace tbtest
