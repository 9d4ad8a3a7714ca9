// A queue pair's four rings as the provider sees them (rdma/tbrdma_ib_abi.h):
// it produces SQEs and posted receives, and consumes the completions of
// both. Posting is under a lock per queue; the completions are consumed
// under the lock of the completion queue they belong to (tbv_cq.cpp).
#ifndef TBV_RINGS_HPP
#define TBV_RINGS_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "rdma/tbrdma_abi.h"
#include "tbv.h"

namespace tbv {

// One ring of the device's command file, mapped shared; unmapped with it.
class mapped_ring {
public:
    mapped_ring() = default;
    mapped_ring(const mapped_ring &) = delete;
    mapped_ring &operator=(const mapped_ring &) = delete;
    ~mapped_ring();

    // 0 or an errno: length bytes at offset, entries of entry_size.
    int map(int fd, uint64_t offset, uint32_t length, uint32_t entries, size_t entry_size) noexcept;
    tbrdma_ring_ctrl *ctrl() const noexcept { return static_cast<tbrdma_ring_ctrl *>(base_); }
    void *slot(uint32_t index) const noexcept
    {
        return static_cast<uint8_t *>(base_) + TBRDMA_RING_DATA_OFFSET + size_t(index & mask_) * entry_size_;
    }
    uint32_t entries() const noexcept { return mask_ + 1; }
    // The consumer side: entries between its consumer and producer.
    bool has_entries() const noexcept;

private:
    void *base_ = nullptr;
    size_t length_ = 0;
    uint32_t mask_ = 0;
    size_t entry_size_ = 0;
};

}  // namespace tbv

// What the provider keeps of a send work request while it is in the ring.
struct tbv_send_slot {
    uint64_t wr_id;
    uint64_t result_addr;  // an atomic's: where the old value goes
    ibv_wc_opcode opcode;
    bool signaled;
};

struct tbv_rings {
    tbv::mapped_ring sq, cq, rwq, rcq;
    ibv_qp *qp = nullptr;
    bool sig_all = false;
    int (*doorbell)(ibv_qp *qp) = nullptr;
    std::atomic<int> state{IBV_QPS_RESET};

    // Posting: the ring indices this side produces, under the locks.
    std::mutex sq_mu, rwq_mu;
    uint32_t sq_tail = 0;
    uint32_t rwq_tail = 0;
    std::vector<tbv_send_slot> send_slots;  // by SQ index
    // Work requests completed (polled), up to this index: their slots are free.
    std::atomic<uint32_t> sq_done{0};
    std::atomic<uint32_t> rwq_done{0};

    // Under the completion queue's lock: up to n completions into wc.
    int poll_send(ibv_wc *wc, int n) noexcept;
    int poll_recv(ibv_wc *wc, int n) noexcept;
    // The send ring holds SQEs that no poll thread of the kernel takes.
    bool sq_stalled() const noexcept;
};

#endif  // TBV_RINGS_HPP
