// SPDX-License-Identifier: BSD-2-Clause
#include "mem_cable.hpp"

#include <cerrno>
#include <cstring>

namespace tbtest {

const tb_phy_ops mem_cable_end::ops = {
    &mem_cable_end::xmit,
    &mem_cable_end::rx_peek,
    &mem_cable_end::rx_release,
};

// Into the peer's receive queue, or dropped like hardware with no free
// receive descriptor.
void mem_cable_end::deliver(std::vector<uint8_t> f)
{
    if (peer_->rx_.size() >= peer_->slots_) {
        dropped++;
        return;
    }
    peer_->rx_.push_back(std::move(f));
}

int mem_cable_end::xmit(void *phy, const void *frame, uint32_t len) noexcept
{
    auto *self = static_cast<mem_cable_end *>(phy);
    if (self->unplugged_ || !self->peer_)
        return -ENOTCONN;
    self->sent++;
    std::vector<uint8_t> f(static_cast<const uint8_t *>(frame),
                           static_cast<const uint8_t *>(frame) + len);
    if (self->chance(self->faults_.loss)) {
        self->dropped++;
        return 0;
    }
    if (self->chance(self->faults_.corrupt) && len > 0)
        f[self->rng_() % len] ^= static_cast<uint8_t>(1u << (self->rng_() % 8));
    if (self->held_.empty() && self->chance(self->faults_.reorder)) {
        self->held_ = std::move(f);
        return 0;
    }
    bool twice = self->chance(self->faults_.dup);
    if (twice)
        self->deliver(f);
    self->deliver(std::move(f));
    if (!self->held_.empty()) {
        self->deliver(std::move(self->held_));
        self->held_.clear();
    }
    return 0;
}

int mem_cable_end::rx_peek(void *phy, const void **frame, uint32_t *len) noexcept
{
    auto *self = static_cast<mem_cable_end *>(phy);
    if (self->rx_.empty())
        return self->unplugged_ ? -ENOTCONN : 0;
    *frame = self->rx_.front().data();
    *len = static_cast<uint32_t>(self->rx_.front().size());
    return 1;
}

void mem_cable_end::rx_release(void *phy) noexcept
{
    auto *self = static_cast<mem_cable_end *>(phy);
    if (!self->rx_.empty())
        self->rx_.pop_front();
}

}  // namespace tbtest
