// SPDX-License-Identifier: BSD-2-Clause
#include "mem_cable.hpp"

#include <cerrno>
#include <cstring>

namespace tbtest {

const tb_phy_ops mem_cable_end::ops = {
    &mem_cable_end::xmit,
    &mem_cable_end::rx_peek,
    &mem_cable_end::rx_release,
    0,
};

const tb_phy_ops mem_cable_end::ext_ops = {
    &mem_cable_end::xmit,
    &mem_cable_end::rx_peek,
    &mem_cable_end::rx_release,
    TB_EXT_MAX,
};

// Into the peer's receive queue, or dropped like hardware with no free
// receive descriptor.
void mem_cable_end::deliver(desc d)
{
    if (peer_->rx_.size() >= peer_->slots_) {
        dropped++;
        return;
    }
    peer_->rx_.push_back(std::move(d));
}

// One descriptor onto the cable, through the fault model.
void mem_cable_end::put(const void *bytes, uint32_t len, bool ext)
{
    sent++;
    desc d;
    d.ext = ext;
    d.bytes.assign(static_cast<const uint8_t *>(bytes), static_cast<const uint8_t *>(bytes) + len);
    if (lose.erase(sent) || chance(faults_.loss)) {
        dropped++;
        return;
    }
    if (chance(faults_.corrupt) && len > 0)
        d.bytes[rng_() % len] ^= static_cast<uint8_t>(1u << (rng_() % 8));
    if (!holding_ && chance(faults_.reorder)) {
        held_ = std::move(d);
        holding_ = true;
        return;
    }
    if (chance(faults_.dup))
        deliver(d);
    deliver(std::move(d));
    if (holding_) {
        holding_ = false;
        deliver(std::move(held_));
    }
}

void mem_cable_end::plug() noexcept
{
    for (auto *end : {this, peer_}) {
        if (!end)
            continue;
        end->unplugged_ = false;
        end->rx_.clear();
        end->holding_ = false;
        end->peeked_ = 0;
    }
}

int mem_cable_end::xmit(void *phy, const void *frame, uint32_t len, const tb_link_ext *ext) noexcept
{
    auto *self = static_cast<mem_cable_end *>(phy);
    if (self->unplugged_ || !self->peer_)
        return -ENOTCONN;
    self->put(frame, len, false);
    if (ext) {
        self->ext_sent++;
        self->put(ext->data, ext->len, true);
    }
    return 0;
}

// Pairs a frame that announces an ext with the ext descriptor behind it,
// as the USB4 phy does. A frame whose ext is missing or of the wrong size
// goes up alone, for the link to drop; an ext with no frame is dropped.
int mem_cable_end::rx_peek(void *phy, tb_phy_rx *rx) noexcept
{
    auto *self = static_cast<mem_cable_end *>(phy);
    while (!self->rx_.empty() && self->rx_.front().ext) {
        self->unpaired++;
        self->rx_.pop_front();
    }
    if (self->rx_.empty())
        return self->unplugged_ ? -ENOTCONN : 0;
    const auto &f = self->rx_.front().bytes;
    rx->frame = f.data();
    rx->len = static_cast<uint32_t>(f.size());
    rx->ext = nullptr;
    rx->ext_len = 0;
    self->peeked_ = 1;
    uint32_t want = tb_link_frame_ext_len(f.data(), rx->len);
    if (!want)
        return 1;
    if (self->rx_.size() < 2)
        return self->unplugged_ ? -ENOTCONN : 0;  // its ext is still coming
    const desc &e = self->rx_[1];
    if (e.ext && e.bytes.size() == want) {
        rx->ext = e.bytes.data();
        rx->ext_len = want;
        self->peeked_ = 2;
    } else {
        self->unpaired++;
    }
    return 1;
}

void mem_cable_end::rx_release(void *phy) noexcept
{
    auto *self = static_cast<mem_cable_end *>(phy);
    for (; self->peeked_ && !self->rx_.empty(); self->peeked_--)
        self->rx_.pop_front();
    self->peeked_ = 0;
}

}  // namespace tbtest
