// A queue pair's rings: work requests become SQEs and posted receives in
// the rings the kernel maps, completions become work completions
// (docs/verbs.md has the table). No system call while a poll thread of
// the kernel takes the SQEs; a doorbell otherwise.
#include <endian.h>
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

// Whether the work request's data goes inline: copied into one SQE.
bool goes_inline(const ibv_send_wr &wr, const tbrdma_sqe &s) noexcept
{
    return (wr.send_flags & IBV_SEND_INLINE) && s.opcode != TBRDMA_OP_READ;
}

int copy_inline(const ibv_send_wr &wr, tbrdma_sqe &s) noexcept
{
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

// The bytes of a work request's scatter list.
uint64_t wr_length(const ibv_send_wr &wr) noexcept
{
    uint64_t total = 0;
    for (int i = 0; i < wr.num_sge; i++)
        total += wr.sg_list[i].length;
    return total;
}

// The SQEs a work request's data takes: one per non-empty scatter entry
// (an SQE has one buffer), at least one; 0 when its length is past
// max_len.
uint32_t pieces(const ibv_send_wr &wr, const tbrdma_sqe &s, uint64_t max_len) noexcept
{
    if (wr_length(wr) > max_len)
        return 0;
    if (goes_inline(wr, s) || s.opcode == TBRDMA_OP_ATOMIC)
        return 1;
    uint32_t n = 0;
    for (int i = 0; i < wr.num_sge; i++)
        n += wr.sg_list[i].length != 0;
    return n ? n : 1;
}

// A datagram's first SQE: the address handle's GRH, paylen its length.
void grh_piece(const ibv_send_wr &wr, tbrdma_sqe &s) noexcept
{
    std::memset(&s, 0, offsetof(tbrdma_sqe, inline_data));
    s.opcode = TBRDMA_OP_DGRAM;
    s.flags = TBRDMA_SQE_INLINE | TBRDMA_SQE_MORE | TBRDMA_SQE_SILENT;
    s.length = sizeof(ibv_grh);
    ibv_grh grh = reinterpret_cast<const tbv_ah *>(wr.wr.ud.ah)->grh;
    grh.paylen = htobe16(uint16_t(wr_length(wr)));
    std::memcpy(s.inline_data, &grh, sizeof(grh));
}

// A UD work request's SEND as a datagram to the queue pair it names; its
// data goes after the GRH (the first SQE).
int translate_ud(const ibv_send_wr &wr, tbrdma_sqe &s) noexcept
{
    if ((wr.opcode != IBV_WR_SEND && wr.opcode != IBV_WR_SEND_WITH_IMM) || !wr.wr.ud.ah)
        return EINVAL;
    s.opcode = TBRDMA_OP_DGRAM;
    s.am_id = wr.wr.ud.remote_qpn;
    s.rkey = wr.wr.ud.remote_qkey;
    s.remote_addr = sizeof(ibv_grh);
    return 0;
}

// A work request as an SQE without its data (the kernel names its
// endpoint), and what the provider keeps.
int translate(const ibv_send_wr &wr, bool ud, bool sig_all, tbrdma_sqe &s, tbv_send_slot &slot) noexcept
{
    std::memset(&s, 0, offsetof(tbrdma_sqe, inline_data));
    slot = tbv_send_slot{wr.wr_id, 0, 0, IBV_WC_SEND, sig_all || (wr.send_flags & IBV_SEND_SIGNALED)};
    if (ud && translate_ud(wr, s))
        return EINVAL;
    switch (wr.opcode) {
    case IBV_WR_SEND_WITH_IMM:
        s.flags = TBRDMA_SQE_IMM;
        s.imm = wr.imm_data;  // network order both ways: passed through
        [[fallthrough]];
    case IBV_WR_SEND:
        if (!ud)
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
        // A key, so that the engine checks the buffer (none is 0).
        if (wr.num_sge != 1 || wr.sg_list[0].length != 8 || !wr.sg_list[0].lkey || (s.remote_addr & 7))
            return EINVAL;
        slot.result_addr = wr.sg_list[0].addr;
        // The engine checks the buffer is one the queue pair may write.
        s.local_addr = wr.sg_list[0].addr;
        s.lkey = wr.sg_list[0].lkey;
        break;
    default:
        return EINVAL;
    }
    if (s.opcode == TBRDMA_OP_WRITE || s.opcode == TBRDMA_OP_READ) {
        s.remote_addr = wr.wr.rdma.remote_addr;
        s.rkey = wr.wr.rdma.rkey;
    }
    if (s.opcode != TBRDMA_OP_ATOMIC && !slot.signaled)
        s.flags |= TBRDMA_SQE_SILENT;
    if (wr.send_flags & IBV_SEND_FENCE)
        s.flags |= TBRDMA_SQE_FENCE;
    return goes_inline(wr, s) ? copy_inline(wr, s) : 0;
}

// Piece k of n of a work request that is not inline, from base (which
// translate() made): scatter entry k's bytes at offset at of the message
// or the remote buffer. The work request's immediate, fence and
// completion go with its last piece, or its first for the fence.
void piece(const ibv_send_wr &wr, const tbrdma_sqe &base, int sge, uint32_t at, uint32_t k, uint32_t n,
           tbrdma_sqe &s) noexcept
{
    std::memcpy(&s, &base, offsetof(tbrdma_sqe, inline_data));
    if (sge >= 0) {
        s.local_addr = wr.sg_list[sge].addr;
        s.lkey = wr.sg_list[sge].lkey;
        s.length = wr.sg_list[sge].length;
    } else if (s.opcode != TBRDMA_OP_READ) {
        s.flags |= TBRDMA_SQE_INLINE;  // nothing to read: no region either
    }
    if (s.opcode != TBRDMA_OP_ATOMIC)
        s.remote_addr += at;
    if (k + 1 < n) {
        s.flags &= ~uint8_t(TBRDMA_SQE_IMM);
        s.flags |= TBRDMA_SQE_SILENT;
        if (s.opcode == TBRDMA_OP_MSG || s.opcode == TBRDMA_OP_DGRAM)
            s.flags |= TBRDMA_SQE_MORE;
    }
    if (k)
        s.flags &= ~uint8_t(TBRDMA_SQE_FENCE);
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

void mapped_ring::discard() noexcept
{
    store_release(ctrl()->consumer, load_acquire(ctrl()->producer));
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
        // A work request of several pieces completes once: at its last,
        // or at the first that fails (the others are flushed after it).
        if ((!slot.signaled && cqe.status == TBRDMA_WC_SUCCESS) ||
            (cqe.status != TBRDMA_WC_SUCCESS && slot.wr_seq == failed_seq))
            continue;
        if (cqe.status != TBRDMA_WC_SUCCESS) {
            failed_seq = slot.wr_seq;
            failed.store(true, std::memory_order_relaxed);
        }
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
        w.opcode = cqe.opcode == TBRDMA_OP_WRITE ? IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV;
        // A datagram's buffer starts with the GRH its sender put there;
        // one too short to have one was not sent by a provider.
        if (cqe.opcode == TBRDMA_OP_DGRAM && cqe.status == TBRDMA_WC_SUCCESS) {
            if (cqe.byte_len >= sizeof(ibv_grh))
                w.wc_flags = IBV_WC_GRH;
            else
                cqe.status = TBRDMA_WC_LOC_LEN_ERR;
        }
        w.status = wc_status(cqe.status);
        w.vendor_err = cqe.status;
        w.byte_len = cqe.byte_len;
        w.qp_num = qp->qp_num;
        w.src_qp = cqe.ep;
        if (cqe.flags & TBRDMA_CQE_IMM) {
            w.wc_flags |= IBV_WC_WITH_IMM;
            w.imm_data = uint32_t(cqe.result);
        }
        // A receive error ends an RC queue pair, not a UD one: there
        // any sender may cause one. Nor one from before a RESET.
        if (cqe.status != TBRDMA_WC_SUCCESS && !ud &&
            int32_t(cons - rcq_since_reset.load(std::memory_order_relaxed)) >= 0)
            failed.store(true, std::memory_order_relaxed);
    }
    store_release(c->consumer, cons);
    return got;
}

bool tbv_rings::sq_stalled() const noexcept
{
    return sq.has_entries() && !polled_now(*sq.ctrl());
}

int tbv_rings::post_one(const ibv_send_wr &wr) noexcept
{
    tbrdma_sqe base;
    tbv_send_slot slot;
    int ret = translate(wr, ud, sig_all, base, slot);
    if (ret)
        return ret;
    const uint32_t entries = sq.entries();
    if (wr.num_sge < 0 || uint32_t(wr.num_sge) > max_send_sge)
        return EINVAL;
    const uint32_t n = pieces(wr, base, ud ? ud_mtu : TBRDMA_XFER_MAX);
    // Never fits: as long as the queue is, it would wait for room for ever.
    if (!n || n + ud > entries)
        return EINVAL;
    if (ud && n + 1 > TBRDMA_DGRAM_PARTS_MAX)
        return EINVAL;
    if (n + ud > entries - (sq_tail - sq_done.load(std::memory_order_acquire)))
        return ENOMEM;
    slot.wr_seq = ++wr_seq;
    if (ud) {
        auto *g = static_cast<tbrdma_sqe *>(sq.slot(sq_tail));
        grh_piece(wr, *g);
        g->wr_id = sq_tail;
        send_slots[sq_tail++ & (entries - 1)] = slot;
    }
    if (n == 1 && (goes_inline(wr, base) || base.opcode == TBRDMA_OP_ATOMIC)) {
        base.wr_id = sq_tail;
        std::memcpy(sq.slot(sq_tail), &base, sizeof(base));
        send_slots[sq_tail++ & (entries - 1)] = slot;
        return 0;
    }
    uint32_t k = 0, at = 0;
    for (int i = 0; i < wr.num_sge || (!k && i == wr.num_sge); i++) {
        if (i < wr.num_sge && !wr.sg_list[i].length)
            continue;
        auto *s = static_cast<tbrdma_sqe *>(sq.slot(sq_tail));
        piece(wr, base, i < wr.num_sge ? i : -1, at, k, n, *s);
        s->wr_id = sq_tail;
        at += s->length;
        send_slots[sq_tail++ & (entries - 1)] = slot;
        if (++k == n)
            break;
    }
    return 0;
}

extern "C" struct tbv_rings *tbv_rings_new(int cmd_fd, const struct tbrdma_ib_create_qp_resp *resp,
                                           struct ibv_qp *qp, struct tbv_srq *srq,
                                           const struct ibv_qp_cap *cap, bool sq_sig_all,
                                           uint32_t ud_mtu,
                                           const struct tbv_qp_cmds *cmds) noexcept
{
    auto *r = new (std::nothrow) tbv_rings;
    if (!r) {
        errno = ENOMEM;
        return nullptr;
    }
    int ret = r->sq.map(cmd_fd, resp->sq_offset, resp->sq_length, resp->sq_entries, sizeof(tbrdma_sqe));
    if (!ret)
        ret = r->cq.map(cmd_fd, resp->cq_offset, resp->cq_length, resp->cq_entries, sizeof(tbrdma_cqe));
    if (!ret && srq)
        r->rq = srq;
    else if (!ret)
        ret = r->own_rq.ring.map(cmd_fd, resp->rwq_offset, resp->rwq_length, resp->rwq_entries,
                                 sizeof(tbrdma_rwqe));
    if (!ret)
        ret = r->rcq.map(cmd_fd, resp->rcq_offset, resp->rcq_length, resp->rcq_entries, sizeof(tbrdma_cqe));
    // A completion for every entry must fit.
    if (!ret && (resp->cq_entries < resp->sq_entries || resp->rcq_entries < r->rq->ring.entries()))
        ret = EINVAL;
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
    r->own_rq.max_sge = cap->max_recv_sge;
    r->max_send_sge = cap->max_send_sge;
    r->qp = qp;
    r->ud = qp->qp_type == IBV_QPT_UD;
    r->ud_mtu = ud_mtu;
    r->sig_all = sq_sig_all;
    r->cmds = cmds;
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

extern "C" void tbv_rings_reset(struct tbv_rings *r) noexcept
{
    std::lock_guard<std::mutex> g(r->sq_mu);
    r->sq_done.store(r->sq_tail, std::memory_order_release);
    // The kernel published its last completions before it answered.
    r->rcq_since_reset.store(load_acquire(r->rcq.ctrl()->producer), std::memory_order_relaxed);
    r->failed.store(false, std::memory_order_relaxed);
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
        for (; wr; wr = wr->next) {
            ret = r->post_one(*wr);
            if (ret)
                break;
        }
        store_release(r->sq.ctrl()->producer, r->sq_tail);
    }
    if (ret)
        *bad = wr;
    // Pairs with the last poll thread's barrier before its last look.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (state == IBV_QPS_ERR || !polled_now(*r->sq.ctrl())) {
        // Failing, it took none (the device is gone).
        int db = r->cmds->doorbell(r->qp);
        if (db) {
            *bad = first;
            ret = db;
        }
    }
    return ret;
}

int tbv_srq::post(ibv_recv_wr *wr, ibv_recv_wr **bad) noexcept
{
    int ret = 0;
    std::lock_guard<std::mutex> g(mu);
    const uint32_t entries = ring.entries();
    for (; wr; wr = wr->next) {
        if (wr->num_sge < 0 || uint32_t(wr->num_sge) > max_sge) {
            ret = EINVAL;
            break;
        }
        // A receive without a buffer is one entry of length 0.
        const uint32_t n = wr->num_sge ? uint32_t(wr->num_sge) : 1;
        if (tail + n - load_acquire(ring.ctrl()->consumer) > entries) {
            ret = ENOMEM;
            break;
        }
        for (uint32_t i = 0; i < n; i++) {
            tbrdma_rwqe q{};
            q.wr_id = wr->wr_id;
            if (wr->num_sge) {
                q.addr = wr->sg_list[i].addr;
                q.lkey = wr->sg_list[i].lkey;
                q.length = wr->sg_list[i].length;
            }
            if (i + 1 < n)
                q.flags = TBRDMA_RWQE_MORE;
            std::memcpy(ring.slot(tail), &q, sizeof(q));
            tail++;
        }
    }
    store_release(ring.ctrl()->producer, tail);
    if (ret)
        *bad = wr;
    return ret;
}

extern "C" int tbv_rings_post_recv(struct tbv_rings *r, struct ibv_recv_wr *wr,
                                   struct ibv_recv_wr **bad) noexcept
{
    const int state = r->state.load(std::memory_order_acquire);
    if (state == IBV_QPS_RESET || r->rq != &r->own_rq) {
        *bad = wr;
        return EINVAL;
    }
    int ret = r->own_rq.post(wr, bad);
    // In error the kernel completes them at once, with a flush.
    if (state == IBV_QPS_ERR)
        r->cmds->doorbell(r->qp);
    return ret;
}

extern "C" struct tbv_srq *tbv_srq_new(int cmd_fd, const struct tbrdma_ib_create_srq_resp *resp,
                                       uint32_t max_sge) noexcept
{
    auto *q = new (std::nothrow) tbv_srq;
    if (!q) {
        errno = ENOMEM;
        return nullptr;
    }
    int ret = q->ring.map(cmd_fd, resp->rwq_offset, resp->rwq_length, resp->rwq_entries, sizeof(tbrdma_rwqe));
    if (ret) {
        delete q;
        errno = ret;
        return nullptr;
    }
    q->max_sge = max_sge;
    return q;
}

extern "C" void tbv_srq_free(struct tbv_srq *q) noexcept
{
    delete q;
}

extern "C" int tbv_srq_post_recv(struct tbv_srq *q, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad) noexcept
{
    return q->post(wr, bad);
}
