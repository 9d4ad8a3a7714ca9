// A queue pair's rings: work requests become SQEs and posted receives in
// the rings the kernel maps, completions become work completions
// (docs/verbs.md has the table). No system call while a poll thread of
// the kernel takes the SQEs; a doorbell otherwise.
#include <sys/mman.h>

#include <chrono>
#include <cerrno>
#include <cstring>
#include <new>

#include "rdma/tbrdma_ib_abi.h"
#include "tbv_rings.hpp"

namespace {

uint32_t load_acquire(const uint32_t &v) noexcept
{
    return __atomic_load_n(&v, __ATOMIC_ACQUIRE);
}

void store_release(uint32_t &v, uint32_t x) noexcept
{
    __atomic_store_n(&v, x, __ATOMIC_RELEASE);
}

// A poll thread of the kernel takes this ring's SQEs now: it says so, and
// its last round is recent (tbrdma_abi.h, "SQ polling").
bool polled_now(const tbrdma_ring_ctrl &c) noexcept
{
    if (__atomic_load_n(&c.sq_polled, __ATOMIC_RELAXED) != 1)
        return false;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now().time_since_epoch());
    return tbrdma_sq_polled_fresh(uint32_t(uint64_t(ns.count()) >> TBRDMA_SQ_POLLED_SHIFT),
                                  __atomic_load_n(&c.sq_polled_at, __ATOMIC_RELAXED));
}

ibv_wc_status wc_status(uint8_t s) noexcept
{
    switch (s) {
    case TBRDMA_WC_SUCCESS:
        return IBV_WC_SUCCESS;
    case TBRDMA_WC_LOC_ACCESS_ERR:
        return IBV_WC_LOC_PROT_ERR;
    case TBRDMA_WC_REM_ACCESS_ERR:
        return IBV_WC_REM_ACCESS_ERR;
    case TBRDMA_WC_REM_INVALID:
        return IBV_WC_REM_INV_REQ_ERR;
    case TBRDMA_WC_LINK_DOWN:
        return IBV_WC_RETRY_EXC_ERR;  // the peer is out of reach, as after retries
    case TBRDMA_WC_CANCELED:
    case TBRDMA_WC_FLUSH_ERR:
        return IBV_WC_WR_FLUSH_ERR;
    case TBRDMA_WC_RNR_RETRY_EXC_ERR:
        return IBV_WC_RNR_RETRY_EXC_ERR;
    case TBRDMA_WC_LOC_LEN_ERR:
        return IBV_WC_LOC_LEN_ERR;
    default:
        return IBV_WC_LOC_QP_OP_ERR;
    }
}

// The data of a work request that is not an atomic: inline bytes copied
// into the SQE, or its one scatter entry.
int send_data(const ibv_send_wr &wr, tbrdma_sqe &s) noexcept
{
    if ((wr.send_flags & IBV_SEND_INLINE) && s.opcode != TBRDMA_OP_READ) {
        uint32_t len = 0;
        for (int i = 0; i < wr.num_sge; i++) {
            const ibv_sge &g = wr.sg_list[i];
            if (g.length > TBRDMA_INLINE_MAX - len)
                return EINVAL;
            std::memcpy(s.inline_data + len, reinterpret_cast<const void *>(uintptr_t(g.addr)), g.length);
            len += g.length;
        }
        s.flags |= TBRDMA_SQE_INLINE;
        s.length = len;
        return 0;
    }
    if (wr.num_sge > 1)
        return EINVAL;
    if (wr.num_sge == 0) {
        // Nothing to read: no region either.
        if (s.opcode != TBRDMA_OP_READ)
            s.flags |= TBRDMA_SQE_INLINE;
        return 0;
    }
    s.local_addr = wr.sg_list[0].addr;
    s.lkey = wr.sg_list[0].lkey;
    s.length = wr.sg_list[0].length;
    return 0;
}

// A work request as an SQE (the kernel names its endpoint), and what the
// provider keeps.
int translate(const ibv_send_wr &wr, bool sig_all, tbrdma_sqe &s, tbv_send_slot &slot) noexcept
{
    std::memset(&s, 0, offsetof(tbrdma_sqe, inline_data));
    slot = tbv_send_slot{wr.wr_id, 0, IBV_WC_SEND, sig_all || (wr.send_flags & IBV_SEND_SIGNALED)};
    switch (wr.opcode) {
    case IBV_WR_SEND_WITH_IMM:
        s.flags = TBRDMA_SQE_IMM;
        s.imm = wr.imm_data;  // network order both ways: passed through
        [[fallthrough]];
    case IBV_WR_SEND:
        s.opcode = TBRDMA_OP_MSG;
        break;
    case IBV_WR_RDMA_WRITE_WITH_IMM:
        s.flags = TBRDMA_SQE_IMM;
        s.imm = wr.imm_data;
        [[fallthrough]];
    case IBV_WR_RDMA_WRITE:
        s.opcode = TBRDMA_OP_WRITE;
        slot.opcode = IBV_WC_RDMA_WRITE;
        break;
    case IBV_WR_RDMA_READ:
        s.opcode = TBRDMA_OP_READ;
        slot.opcode = IBV_WC_RDMA_READ;
        break;
    case IBV_WR_ATOMIC_FETCH_AND_ADD:
    case IBV_WR_ATOMIC_CMP_AND_SWP:
        s.opcode = TBRDMA_OP_ATOMIC;
        s.atomic_size = 8;
        s.remote_addr = wr.wr.atomic.remote_addr;
        s.rkey = wr.wr.atomic.rkey;
        if (wr.opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
            s.atomic_op = TBRDMA_ATOMIC_ADD;
            s.operand = wr.wr.atomic.compare_add;
            slot.opcode = IBV_WC_FETCH_ADD;
        } else {
            s.atomic_op = TBRDMA_ATOMIC_CSWAP;
            s.compare = wr.wr.atomic.compare_add;
            s.operand = wr.wr.atomic.swap;
            slot.opcode = IBV_WC_COMP_SWAP;
        }
        // The old value comes in the completion, which is always
        // asked for: the provider writes it where the request said.
        if (wr.num_sge != 1 || wr.sg_list[0].length != 8 || (s.remote_addr & 7))
            return EINVAL;
        slot.result_addr = wr.sg_list[0].addr;
        break;
    default:
        return EINVAL;
    }
    if (s.opcode == TBRDMA_OP_WRITE || s.opcode == TBRDMA_OP_READ) {
        s.remote_addr = wr.wr.rdma.remote_addr;
        s.rkey = wr.wr.rdma.rkey;
    }
    if (s.opcode != TBRDMA_OP_ATOMIC) {
        int ret = send_data(wr, s);
        if (ret)
            return ret;
        if (!slot.signaled)
            s.flags |= TBRDMA_SQE_SILENT;
    }
    if (wr.send_flags & IBV_SEND_FENCE)
        s.flags |= TBRDMA_SQE_FENCE;
    s.wr_id = 0;  // set by the caller: the SQ index
    return 0;
}

}  // namespace

namespace tbv {

mapped_ring::~mapped_ring()
{
    if (base_)
        munmap(base_, length_);
}

int mapped_ring::map(int fd, uint64_t offset, uint32_t length, uint32_t entries, size_t entry_size) noexcept
{
    if (!entries || (entries & (entries - 1)) ||
        length < TBRDMA_RING_DATA_OFFSET + size_t(entries) * entry_size)
        return EINVAL;
    void *p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(offset));
    if (p == MAP_FAILED)
        return errno;
    base_ = p;
    length_ = length;
    mask_ = entries - 1;
    entry_size_ = entry_size;
    return 0;
}

bool mapped_ring::has_entries() const noexcept
{
    return load_acquire(ctrl()->producer) != __atomic_load_n(&ctrl()->consumer, __ATOMIC_RELAXED);
}

}  // namespace tbv

int tbv_rings::poll_send(ibv_wc *wc, int n) noexcept
{
    tbrdma_ring_ctrl *c = cq.ctrl();
    const uint32_t prod = load_acquire(c->producer);
    uint32_t cons = c->consumer;
    int got = 0;
    for (; cons != prod && got < n; cons++) {
        tbrdma_cqe cqe;
        std::memcpy(&cqe, cq.slot(cons), sizeof(cqe));
        const uint32_t index = uint32_t(cqe.wr_id);
        const tbv_send_slot &slot = send_slots[index & (send_slots.size() - 1)];
        if (slot.result_addr && cqe.status == TBRDMA_WC_SUCCESS)
            std::memcpy(reinterpret_cast<void *>(uintptr_t(slot.result_addr)), &cqe.result, 8);
        // In order: this one done means those before it are.
        if (int32_t(index + 1 - sq_done.load(std::memory_order_relaxed)) > 0)
            sq_done.store(index + 1, std::memory_order_release);
        if (!slot.signaled && cqe.status == TBRDMA_WC_SUCCESS)
            continue;
        ibv_wc &w = wc[got++];
        std::memset(&w, 0, sizeof(w));
        w.wr_id = slot.wr_id;
        w.status = wc_status(cqe.status);
        w.opcode = slot.opcode;
        w.vendor_err = cqe.status;
        w.byte_len = cqe.byte_len;
        w.qp_num = qp->qp_num;
    }
    store_release(c->consumer, cons);
    return got;
}

int tbv_rings::poll_recv(ibv_wc *wc, int n) noexcept
{
    tbrdma_ring_ctrl *c = rcq.ctrl();
    const uint32_t prod = load_acquire(c->producer);
    uint32_t cons = c->consumer;
    int got = 0;
    for (; cons != prod && got < n; cons++) {
        tbrdma_cqe cqe;
        std::memcpy(&cqe, rcq.slot(cons), sizeof(cqe));
        ibv_wc &w = wc[got++];
        std::memset(&w, 0, sizeof(w));
        w.wr_id = cqe.wr_id;
        w.status = wc_status(cqe.status);
        w.opcode = cqe.opcode == TBRDMA_OP_WRITE ? IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV;
        w.vendor_err = cqe.status;
        w.byte_len = cqe.byte_len;
        w.qp_num = qp->qp_num;
        w.src_qp = cqe.ep;
        if (cqe.flags & TBRDMA_CQE_IMM) {
            w.wc_flags = IBV_WC_WITH_IMM;
            w.imm_data = uint32_t(cqe.result);
        }
    }
    store_release(c->consumer, cons);
    rwq_done.fetch_add(uint32_t(got), std::memory_order_release);
    return got;
}

bool tbv_rings::sq_stalled() const noexcept
{
    return sq.has_entries() && !polled_now(*sq.ctrl());
}

extern "C" struct tbv_rings *tbv_rings_new(int cmd_fd, const struct tbrdma_ib_create_qp_resp *resp,
                                           struct ibv_qp *qp, bool sq_sig_all,
                                           int (*doorbell)(struct ibv_qp *qp)) noexcept
{
    auto *r = new (std::nothrow) tbv_rings;
    if (!r) {
        errno = ENOMEM;
        return nullptr;
    }
    int ret = r->sq.map(cmd_fd, resp->sq_offset, resp->sq_length, resp->sq_entries, sizeof(tbrdma_sqe));
    if (!ret)
        ret = r->cq.map(cmd_fd, resp->cq_offset, resp->cq_length, resp->cq_entries, sizeof(tbrdma_cqe));
    if (!ret)
        ret = r->rwq.map(cmd_fd, resp->rwq_offset, resp->rwq_length, resp->rwq_entries, sizeof(tbrdma_rwqe));
    if (!ret)
        ret = r->rcq.map(cmd_fd, resp->rcq_offset, resp->rcq_length, resp->rcq_entries, sizeof(tbrdma_cqe));
    if (!ret && (resp->cq_entries < resp->sq_entries || resp->rcq_entries < resp->rwq_entries))
        ret = EINVAL;  // a completion for every entry must fit
    if (!ret) {
        try {
            r->send_slots.resize(resp->sq_entries);
        } catch (const std::bad_alloc &) {
            ret = ENOMEM;
        }
    }
    if (ret) {
        delete r;
        errno = ret;
        return nullptr;
    }
    r->qp = qp;
    r->sig_all = sq_sig_all;
    r->doorbell = doorbell;
    // The kernel's poll threads may take SQEs without a doorbell.
    store_release(r->sq.ctrl()->sq_poll, 1);
    return r;
}

extern "C" void tbv_rings_free(struct tbv_rings *r) noexcept
{
    delete r;
}

extern "C" void tbv_rings_set_state(struct tbv_rings *r, enum ibv_qp_state state) noexcept
{
    r->state.store(state, std::memory_order_release);
}

extern "C" int tbv_rings_post_send(struct tbv_rings *r, struct ibv_send_wr *wr,
                                   struct ibv_send_wr **bad) noexcept
{
    const int state = r->state.load(std::memory_order_acquire);
    struct ibv_send_wr *const first = wr;
    int ret = 0;
    if (state != IBV_QPS_RTS && state != IBV_QPS_ERR) {
        *bad = wr;
        return EINVAL;
    }
    {
        std::lock_guard<std::mutex> g(r->sq_mu);
        const uint32_t entries = r->sq.entries();
        for (; wr; wr = wr->next) {
            if (r->sq_tail - r->sq_done.load(std::memory_order_acquire) >= entries) {
                ret = ENOMEM;
                break;
            }
            tbrdma_sqe s;
            tbv_send_slot slot;
            ret = translate(*wr, r->sig_all, s, slot);
            if (ret)
                break;
            s.wr_id = r->sq_tail;
            std::memcpy(r->sq.slot(r->sq_tail), &s, sizeof(s));
            r->send_slots[r->sq_tail & (entries - 1)] = slot;
            r->sq_tail++;
        }
        store_release(r->sq.ctrl()->producer, r->sq_tail);
    }
    if (ret)
        *bad = wr;
    // Pairs with the last poll thread's barrier before its last look.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (state == IBV_QPS_ERR || !polled_now(*r->sq.ctrl())) {
        // Failing, it took none (the device is gone).
        int db = r->doorbell(r->qp);
        if (db) {
            *bad = first;
            ret = db;
        }
    }
    return ret;
}

extern "C" int tbv_rings_post_recv(struct tbv_rings *r, struct ibv_recv_wr *wr,
                                   struct ibv_recv_wr **bad) noexcept
{
    const int state = r->state.load(std::memory_order_acquire);
    int ret = 0;
    if (state == IBV_QPS_RESET) {
        *bad = wr;
        return EINVAL;
    }
    {
        std::lock_guard<std::mutex> g(r->rwq_mu);
        const uint32_t entries = r->rwq.entries();
        for (; wr; wr = wr->next) {
            if (r->rwq_tail - r->rwq_done.load(std::memory_order_acquire) >= entries) {
                ret = ENOMEM;
                break;
            }
            if (wr->num_sge > 1) {
                ret = EINVAL;
                break;
            }
            tbrdma_rwqe q{};
            q.wr_id = wr->wr_id;
            if (wr->num_sge) {
                q.addr = wr->sg_list[0].addr;
                q.lkey = wr->sg_list[0].lkey;
                q.length = wr->sg_list[0].length;
            }
            std::memcpy(r->rwq.slot(r->rwq_tail), &q, sizeof(q));
            r->rwq_tail++;
        }
        store_release(r->rwq.ctrl()->producer, r->rwq_tail);
    }
    if (ret)
        *bad = wr;
    // In error the kernel completes them at once, with a flush.
    if (state == IBV_QPS_ERR)
        r->doorbell(r->qp);
    return ret;
}
