// SPDX-License-Identifier: BSD-2-Clause
//
// How one direction of a soft cable misbehaves: which frames are lost,
// doubled or held back, and when each may be received (propagation
// latency, fixed delay, serialisation at a given rate). Decisions come
// from a small per-cable PRNG so that a seed replays a run.
#pragma once

#include <cstdint>

#include "tb/device.hpp"

namespace tb {

class fault_model {
public:
    // stream tells apart the cables (and directions) sharing one seed.
    fault_model(const soft_link_options &o, uint64_t stream) noexcept;

    // Any knob set: the cable takes the slow path.
    bool active() const noexcept { return active_; }
    // Delivery times matter (latency, delay or rate).
    bool timed() const noexcept { return timed_; }

    bool lose() noexcept { return chance(loss_); }
    bool duplicate() noexcept { return chance(dup_); }
    bool hold_back() noexcept { return chance(reorder_); }

    // When a frame of len bytes put on the cable at now may be received;
    // 0 when at once. Serialisation queues frames behind each other.
    uint64_t deliver_at(uint64_t now, uint32_t len) noexcept;

private:
    // A probability as a threshold on 64-bit random numbers.
    struct odds {
        uint64_t below = 0;
        bool always = false;
    };
    static odds make_odds(double p) noexcept;
    bool chance(const odds &o) noexcept;
    uint64_t next() noexcept;

    odds loss_, dup_, reorder_;
    uint64_t fixed_ns_ = 0;  // latency + delay
    uint64_t rate_mbps_ = 0;
    uint64_t wire_free_ns_ = 0;  // when the serialiser is idle again
    uint64_t state_ = 0;         // xorshift64*, never 0
    bool active_ = false;
    bool timed_ = false;
};

}  // namespace tb
