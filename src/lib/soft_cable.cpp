// SPDX-License-Identifier: BSD-2-Clause
#include "soft_cable.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <type_traits>

namespace tb {

namespace {

constexpr uint64_t cable_magic = 0x74626361626c6531ull;  // "tbcable1"
constexpr uint32_t cable_version = 1;
constexpr size_t header_bytes = 4096;  // header page, then two ring controls
constexpr size_t rings_offset = 8192;  // then the slots of ring 0 and ring 1

}  // namespace

struct cable_end {
    uint32_t ctx_id;
    int32_t pid;
    uint64_t start_time;
    std::atomic<uint32_t> attached;
    std::atomic<uint32_t> closed;  // set on clean close
    uint64_t pad;
};

struct cable_header {
    std::atomic<uint64_t> magic;  // written last by the creator
    uint32_t version;
    uint32_t slots;  // per ring, power of two
    uint32_t slot_size;
    uint32_t frame_max;
    uint64_t pad;
    cable_end end[2];  // end 0: lower context id
};

// Ring r carries frames to end r. Indices run freely modulo 2^32.
struct cable_ring {
    alignas(64) std::atomic<uint32_t> producer;
    alignas(64) std::atomic<uint32_t> consumer;
};

struct alignas(64) cable_slot {
    uint32_t len;
    uint32_t pad;
    uint64_t deliver_at_ns;  // 0: at once
    alignas(64) uint8_t frame[TBRDMA_FRAME_MAX];
};

static_assert(std::is_standard_layout<cable_header>::value &&
                  std::is_standard_layout<cable_ring>::value &&
                  std::is_standard_layout<cable_slot>::value,
              "plain shm layout");
static_assert(sizeof(cable_header) <= header_bytes && 2 * sizeof(cable_ring) <= rings_offset - header_bytes,
              "cable header fits");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shm atomics are lock-free");

namespace {

size_t segment_size(uint32_t slots) noexcept
{
    return rings_offset + 2 * size_t(slots) * sizeof(cable_slot);
}

cable_ring *ring_ctrl(cable_header *h, int r) noexcept
{
    return reinterpret_cast<cable_ring *>(reinterpret_cast<uint8_t *>(h) + header_bytes) + r;
}

cable_slot *ring_slots(cable_header *h, int r, uint32_t slots) noexcept
{
    return reinterpret_cast<cable_slot *>(reinterpret_cast<uint8_t *>(h) + rings_offset) +
           size_t(r) * slots;
}

}  // namespace

// The cable copies whole frames only (ext_max 0): it has no second
// descriptor to send from the sender's memory.
const tb_phy_ops soft_cable::phy_ops = {
    [](void *phy, const void *frame, u32 len, const tb_link_ext *) noexcept {
        return static_cast<soft_cable *>(phy)->xmit(frame, len);
    },
    [](void *phy, tb_phy_rx *rx) noexcept {
        rx->ext = nullptr;
        rx->ext_len = 0;
        return static_cast<soft_cable *>(phy)->rx_peek(&rx->frame, &rx->len);
    },
    [](void *phy) noexcept { static_cast<soft_cable *>(phy)->rx_release(); },
    0,
};

int soft_cable::create_segment(shm_segment &seg, const std::string &name, uint32_t lo,
                               uint32_t hi, uint32_t slots) noexcept
{
    int rc = seg.open(name, O_CREAT | O_EXCL);
    if (rc)
        return rc;
    rc = seg.resize(segment_size(slots));
    if (!rc)
        rc = seg.map(segment_size(slots));
    if (rc) {
        ::shm_unlink(name.c_str());
        return rc;
    }
    auto *h = static_cast<cable_header *>(seg.addr());
    h->version = cable_version;
    h->slots = slots;
    h->slot_size = sizeof(cable_slot);
    h->frame_max = TBRDMA_FRAME_MAX;
    h->end[0].ctx_id = lo;
    h->end[1].ctx_id = hi;
    h->magic.store(cable_magic, std::memory_order_release);
    return 0;
}

// Whether an existing segment can be attached as end of the cable lo-hi
// to peer. Anything else is a leftover to be replaced.
uint32_t soft_cable::usable(const cable_header *h, size_t size, uint32_t lo, uint32_t hi, int end,
                            const soft_peer &peer) noexcept
{
    if (size < header_bytes || h->magic.load(std::memory_order_acquire) != cable_magic)
        return 0;
    const uint32_t slots = __atomic_load_n(&h->slots, __ATOMIC_RELAXED);
    if (h->version != cable_version || h->slot_size != sizeof(cable_slot) ||
        h->frame_max != TBRDMA_FRAME_MAX || !slots || (slots & (slots - 1)) || slots > 65536 ||
        size < segment_size(slots) || h->end[0].ctx_id != lo || h->end[1].ctx_id != hi)
        return 0;
    const cable_end &mine = h->end[end];
    const cable_end &theirs = h->end[1 - end];
    if (mine.attached.load(std::memory_order_acquire) || mine.closed.load(std::memory_order_acquire) ||
        theirs.closed.load(std::memory_order_acquire))
        return 0;  // an earlier cable of ours, or one the peer gave up
    if (theirs.attached.load(std::memory_order_acquire) &&
        (theirs.pid != peer.proc.pid || theirs.start_time != peer.proc.start_time))
        return 0;
    return slots;
}

int soft_cable::open(soft_fabric &fabric, const soft_peer &peer, const soft_link_options &opts,
                     mode m, int end, std::unique_ptr<soft_cable> *out) noexcept
{
    const uint32_t self = fabric.ctx_id();
    const uint32_t lo = self < peer.id ? self : peer.id;
    const uint32_t hi = self < peer.id ? peer.id : self;
    if (self != peer.id)
        end = self == lo ? 0 : 1;
    uint32_t slots = opts.ring_slots;
    if (slots < 2 || slots > 65536 || (slots & (slots - 1)))
        return -EINVAL;
    try {
        const std::string name = fabric.cable_name(self, peer.id);
        shm_segment seg;
        int rc = seg.open(name, 0);
        if (rc == 0) {
            rc = seg.map(header_bytes);
            const uint32_t found =
                rc ? 0 : usable(static_cast<cable_header *>(seg.addr()), seg.size(), lo, hi, end, peer);
            if (!found) {
                seg.unlink_if_current();  // under the fabric lock: nobody is using it
                seg = shm_segment();
                rc = -ENOENT;
            }
            slots = found;
        }
        if (rc == -ENOENT && m == mode::create_or_attach) {
            slots = opts.ring_slots;
            rc = create_segment(seg, name, lo, hi, slots);
        }
        if (rc)
            return rc;
        out->reset(new soft_cable(fabric, peer, opts, std::move(seg), end, slots));
        return 0;
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    }
}

soft_cable::soft_cable(soft_fabric &fabric, const soft_peer &peer, const soft_link_options &opts,
                       shm_segment &&seg, int end, uint32_t slots) noexcept
    : fabric_(fabric), peer_(peer), seg_(std::move(seg)),
      hdr_(static_cast<cable_header *>(seg_.addr())), end_(end), slots_(slots),
      wake_(fabric.wake_target_of(peer.id)),
      faults_(opts, (uint64_t(fabric.ctx_id()) << 32 | peer.id) ^ uint64_t(end) << 63)
{
    // Ring r carries frames to end r.
    rx_ = ring_ctrl(hdr_, end_);
    rx_slots_ = ring_slots(hdr_, end_, slots_);
    tx_ = ring_ctrl(hdr_, 1 - end_);
    tx_slots_ = ring_slots(hdr_, 1 - end_, slots_);
    tx_head_ = tx_->producer.load(std::memory_order_relaxed);
    rx_head_ = rx_->consumer.load(std::memory_order_relaxed);
    cable_end &mine = hdr_->end[end_];
    mine.pid = fabric.self().pid;
    mine.start_time = fabric.self().start_time;
    mine.attached.store(1, std::memory_order_release);
}

soft_cable::~soft_cable()
{
    // A forked child's copy is not an end of this cable.
    if (::getpid() != fabric_.self().pid)
        return;
    hdr_->end[end_].closed.store(1, std::memory_order_release);
    notify();
}

void soft_cable::close() noexcept
{
    hdr_->end[end_].closed.store(1, std::memory_order_release);
    notify();
    seg_.unlink_if_current();
}

bool soft_cable::peer_closed() const noexcept
{
    return hdr_->end[1 - end_].closed.load(std::memory_order_acquire);
}

void soft_cable::put(const void *frame, uint32_t len, uint64_t deliver_at) noexcept
{
    if (!tx_space_) {
        tx_space_ = slots_ - (tx_head_ - tx_->consumer.load(std::memory_order_acquire));
        if (!tx_space_) {
            stats_.ring_full++;
            return;
        }
    }
    cable_slot &s = tx_slots_[tx_head_ & (slots_ - 1)];
    std::memcpy(s.frame, frame, len);
    s.len = len;
    s.deliver_at_ns = deliver_at;
    tx_head_++;
    tx_space_--;
    tx_->producer.store(tx_head_, std::memory_order_release);
    stats_.tx_frames++;
}

// Pairs with the receiver's set_armed(): either it sees our frame when
// it re-checks its rings, or we see its flag and wake it.
void soft_cable::notify() noexcept
{
    std::atomic_thread_fence(std::memory_order_seq_cst);
    fabric_.wake(wake_);
}

int soft_cable::xmit(const void *frame, uint32_t len) noexcept
{
    if (len == 0 || len > TBRDMA_FRAME_MAX) {
        stats_.bad++;
        return 0;
    }
    // A gone peer makes the cable lose frames; rx_peek() reports the
    // failure once what the peer sent before is received.
    if (dead_)
        return 0;
    if (faults_.active())
        return xmit_faulty(frame, len);
    put(frame, len, 0);
    notify();
    return 0;
}

int soft_cable::xmit_faulty(const void *frame, uint32_t len) noexcept
{
    uint64_t now = tb_now_ns();
    if (faults_.lose()) {
        stats_.lost++;
        return 0;
    }
    if (!held_len_ && faults_.hold_back()) {
        if (held_.empty()) {
            try {
                held_.resize(TBRDMA_FRAME_MAX);
            } catch (...) {
                put(frame, len, faults_.deliver_at(now, len));
                notify();
                return 0;
            }
        }
        std::memcpy(held_.data(), frame, len);
        held_len_ = len;
        held_at_ = now;
        stats_.reordered++;
        return 0;
    }
    uint64_t at = faults_.deliver_at(now, len);
    put(frame, len, at);
    if (faults_.duplicate()) {
        put(frame, len, at);
        stats_.duplicated++;
    }
    if (held_len_) {
        put(held_.data(), held_len_, faults_.deliver_at(now, held_len_));
        held_len_ = 0;
    }
    notify();
    return 0;
}

void soft_cable::progress(uint64_t now) noexcept
{
    if (!held_len_ || now - held_at_ < hold_ns)
        return;
    put(held_.data(), held_len_, faults_.deliver_at(now, held_len_));
    held_len_ = 0;
    notify();
}

int soft_cable::rx_peek(const void **frame, uint32_t *len) noexcept
{
    for (;;) {
        if (!rx_avail_) {
            rx_avail_ = rx_->producer.load(std::memory_order_acquire) - rx_head_;
            if (!rx_avail_)
                return dead_ || peer_closed() ? -ENOTCONN : 0;
            if (rx_avail_ > slots_) {
                // A corrupt index: nothing sane can follow.
                dead_ = true;
                return -ENOTCONN;
            }
        }
        const cable_slot &s = rx_slots_[rx_head_ & (slots_ - 1)];
        if (s.deliver_at_ns && s.deliver_at_ns > tb_now_ns())
            return 0;
        uint32_t n = s.len;
        if (n == 0 || n > TBRDMA_FRAME_MAX) {
            stats_.bad++;
            rx_release();
            continue;
        }
        *frame = s.frame;
        *len = n;
        return 1;
    }
}

void soft_cable::rx_release() noexcept
{
    rx_head_++;
    rx_avail_--;
    rx_->consumer.store(rx_head_, std::memory_order_release);
    stats_.rx_frames++;
}

bool soft_cable::rx_ready(uint64_t now) noexcept
{
    uint32_t avail = rx_->producer.load(std::memory_order_acquire) - rx_head_;
    if (!avail)
        return dead_ || peer_closed();
    uint64_t at = rx_slots_[rx_head_ & (slots_ - 1)].deliver_at_ns;
    return !at || at <= now;
}

void soft_cable::check_peer(bool check_start) noexcept
{
    if (!dead_ && (peer_closed() || !fabric_.alive(peer_, check_start)))
        dead_ = true;
}

}  // namespace tb
