// SPDX-License-Identifier: BSD-2-Clause
//
// An in-process cable for single-process tests: two ends, each with a
// finite receive queue, and deterministic fault injection (seeded), so a
// failing run can be replayed exactly.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
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

    static const tb_phy_ops ops;

    uint64_t dropped = 0, sent = 0;

private:
    static int xmit(void *phy, const void *frame, uint32_t len) noexcept;
    static int rx_peek(void *phy, const void **frame, uint32_t *len) noexcept;
    static void rx_release(void *phy) noexcept;

    bool chance(double p) { return p > 0 && std::uniform_real_distribution<>(0, 1)(rng_) < p; }
    void deliver(std::vector<uint8_t> f);

    size_t slots_;
    std::mt19937_64 rng_;
    mem_cable_end *peer_ = nullptr;
    cable_faults faults_;
    bool unplugged_ = false;
    std::deque<std::vector<uint8_t>> rx_;
    std::vector<uint8_t> held_;  // a frame held back to reorder
};

}  // namespace tbtest
