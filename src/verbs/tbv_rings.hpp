// A queue pair's four rings as the provider sees them (rdma/tbrdma_ib_abi.h):
// it produces SQEs and posted receives (into a shared receive queue's ring
// instead of its own, on one), and consumes the completions of both.
// Posting is under a lock per queue; the completions are consumed under
// the lock of the completion queue they belong to (tbv_cq.cpp).
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
    // The consumer side: drops them all.
    void discard() noexcept;

private:
    void *base_ = nullptr;
    size_t length_ = 0;
    uint32_t mask_ = 0;
    size_t entry_size_ = 0;
};

}  // namespace tbv

// Posted receives: a queue pair's own, or a shared receive queue's, an
// entry per scatter entry (a run flagged TBRDMA_RWQE_MORE). A slot is
// free once the kernel took its receive (its consumer index): a queue
// pair may go with receives it took and never completed.
struct tbv_srq {
    tbv::mapped_ring ring;
    std::mutex mu;
    uint32_t tail = 0;      // the producer index, under mu
    uint32_t max_sge = 1;   // a receive's scatter entries, as created

    int post(ibv_recv_wr *wr, ibv_recv_wr **bad) noexcept;
};

// What the provider keeps of a send work request while it is in the ring.
// A work request of several scatter entries takes a slot per SQE.
struct tbv_send_slot {
    uint64_t wr_id;
    uint64_t result_addr;  // an atomic's: where the old value goes
    uint64_t wr_seq;       // which work request: the same for its SQEs
    ibv_wc_opcode opcode;
    bool signaled;         // only its last SQE's, if any
};

struct tbv_rings {
    tbv::mapped_ring sq, cq, rcq;
    tbv_srq own_rq;         // unmapped on a shared queue
    tbv_srq *rq = &own_rq;  // where its receives are posted
    ibv_qp *qp = nullptr;
    uint32_t max_send_sge = 1;  // a send's gather entries, as created
    bool ud = false;  // its sends are datagrams, each with a GRH in front
    uint32_t ud_mtu = 0;  // their longest payload
    bool sig_all = false;
    const tbv_qp_cmds *cmds = nullptr;
    // An error completion was polled (a QP's send and receive completions
    // may be two CQs', polled under two locks).
    std::atomic<bool> failed{false};
    std::atomic<int> state{IBV_QPS_RESET};
    // Receive completions before this index came before the last RESET
    // (a shared queue's, kept): their errors are not this connection's.
    std::atomic<uint32_t> rcq_since_reset{0};

    // Posting: the index this side produces, under the lock.
    std::mutex sq_mu;
    uint32_t sq_tail = 0;
    std::vector<tbv_send_slot> send_slots;  // by SQ index
    // Work requests completed (polled), up to this index: their slots are free.
    std::atomic<uint32_t> sq_done{0};
    uint64_t wr_seq = 0;      // the last work request's, under sq_mu
    uint64_t failed_seq = 0;  // the last one reported failed, under the CQ's lock

    // Under sq_mu: the work request's SQEs into the ring; 0 or an errno.
    int post_one(const ibv_send_wr &wr) noexcept;

    // Under the completion queue's lock: up to n completions into wc.
    int poll_send(ibv_wc *wc, int n) noexcept;
    int poll_recv(ibv_wc *wc, int n) noexcept;
    // The send ring holds SQEs that no poll thread of the kernel takes.
    bool sq_stalled() const noexcept;
};

#endif  // TBV_RINGS_HPP
