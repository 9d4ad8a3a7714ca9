// SPDX-License-Identifier: BSD-2-Clause
//
// Endpoint operations: each turns into one operation of the device's
// endpoint. Short operations and active messages carry their bytes in the
// submission entry; bcopy ones go through a registered buffer; zcopy ones
// use the user's registration.
#include <algorithm>
#include <cstring>

#include "tb_iface.hpp"

extern "C" {
#include <uct/base/uct_iov.inl>
}

using tb_uct::iface_impl;
using tb_uct::op_desc;
using tb_uct::op_kind;

namespace {

uct_tb_ep_t *ep_of(uct_ep_h ep) noexcept
{
    return ucs_derived_of(ep, uct_tb_ep_t);
}

tbrdma_sqe make_sqe(uint8_t opcode) noexcept
{
    tbrdma_sqe s;
    std::memset(&s, 0, offsetof(tbrdma_sqe, inline_data));
    s.opcode = opcode;
    return s;
}

// Posted and nothing more to wait for locally: UCS_OK for the caller.
ucs_status_t done_locally(ucs_status_t s) noexcept
{
    return s == UCS_INPROGRESS ? UCS_OK : s;
}

// The engine's operation for what UCT's atomic post (fetch: fetch) asks,
// or -1 for one that is not offered there (compare-and-swap has its own
// call, and a swap returns the old value).
int atomic_op_of(unsigned uct_op, bool fetch) noexcept
{
    switch (uct_op) {
    case UCT_ATOMIC_OP_ADD:
        return TBRDMA_ATOMIC_ADD;
    case UCT_ATOMIC_OP_AND:
        return TBRDMA_ATOMIC_AND;
    case UCT_ATOMIC_OP_OR:
        return TBRDMA_ATOMIC_OR;
    case UCT_ATOMIC_OP_XOR:
        return TBRDMA_ATOMIC_XOR;
    case UCT_ATOMIC_OP_SWAP:
        return fetch ? TBRDMA_ATOMIC_SWAP : -1;
    default:
        return -1;
    }
}

size_t iov_bytes(const uct_iov_t *iov, size_t iovcnt) noexcept
{
    return uct_iov_total_length(iov, iovcnt);
}

// Gathers iov into dst (at most max bytes).
size_t iov_gather(uint8_t *dst, const uct_iov_t *iov, size_t iovcnt) noexcept
{
    size_t off = 0;
    for (size_t i = 0; i < iovcnt; i++) {
        size_t len = uct_iov_get_length(&iov[i]);
        std::memcpy(dst + off, iov[i].buffer, len);
        off += len;
    }
    return off;
}

// Bytes already packed in bcopy buffer b: small ones go inline and the
// buffer is returned at once; others are sent from the buffer.
void attach_payload(iface_impl &impl, tbrdma_sqe &s, op_desc &d, int32_t b, size_t len) noexcept
{
    s.length = static_cast<uint32_t>(len);
    if (len <= TBRDMA_INLINE_MAX) {
        std::memcpy(s.inline_data, impl.buf(b), len);
        s.flags |= TBRDMA_SQE_INLINE;
        impl.put_buf(b);
        return;
    }
    s.local_addr = reinterpret_cast<uintptr_t>(impl.buf(b));
    s.lkey = impl.buf_key();
    d.buf = b;
}

// A bcopy buffer for ep in *b, or why not: the endpoint failed, or it
// must wait (no buffer free, or requests pending before this one).
ucs_status_t take_buf(iface_impl &impl, uct_tb_ep_t *ep, int32_t *b) noexcept
{
    if (ucs_status_t st = iface_impl::refusal(ep); st != UCS_OK)
        return st;
    if (impl.has_pending_before(ep))
        return UCS_ERR_NO_RESOURCE;
    *b = impl.get_buf();
    return *b < 0 ? UCS_ERR_NO_RESOURCE : UCS_OK;
}

ucs_status_t post_with_buf(iface_impl &impl, uct_tb_ep_t *ep, tbrdma_sqe &s,
                           const op_desc &d) noexcept
{
    ucs_status_t st = impl.post(ep, s, d);
    if (st != UCS_INPROGRESS && d.buf >= 0)
        impl.put_buf(d.buf);
    return st;
}

ucs_status_t rma_zcopy(uint8_t opcode, uct_ep_h tl_ep, const uct_iov_t *iov, size_t iovcnt,
                       uint64_t remote_addr, uct_rkey_t rkey, uct_completion_t *comp) noexcept
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    if (iovcnt != 1 || (iov->count > 1 && iov->stride != iov->length)) {
        ucs_error("tb: zcopy takes one contiguous iov");
        return UCS_ERR_INVALID_PARAM;
    }
    tbrdma_sqe s = make_sqe(opcode);
    s.local_addr = reinterpret_cast<uintptr_t>(iov->buffer);
    s.lkey = tb_uct::key_of_memh(iov->memh);
    s.length = static_cast<uint32_t>(uct_iov_get_length(iov));
    s.remote_addr = remote_addr;
    s.rkey = rkey;
    op_desc d;
    d.comp = comp;
    return iface_impl::of(ep).post(ep, s, d);
}

// op: the engine's (TBRDMA_ATOMIC_*), or -1 for one UCT's caller may not ask.
ucs_status_t atomic(uct_tb_ep_t *ep, int op, uint8_t size, uint64_t value,
                    uint64_t compare, uint64_t remote_addr, uct_rkey_t rkey, void *result,
                    uct_completion_t *comp) noexcept
{
    if (op < 0)
        return UCS_ERR_UNSUPPORTED;
    tbrdma_sqe s = make_sqe(TBRDMA_OP_ATOMIC);
    s.atomic_op = static_cast<uint8_t>(op);
    s.atomic_size = size;
    s.operand = value;
    s.compare = compare;
    s.remote_addr = remote_addr;
    s.rkey = rkey;
    op_desc d;
    d.comp = comp;
    d.arg = result;
    d.kind = !result ? op_kind::plain : size == 4 ? op_kind::fetch32 : op_kind::fetch64;
    return iface_impl::of(ep).post(ep, s, d);
}

}  // namespace

extern "C" ucs_status_t uct_tb_ep_init_impl(uct_tb_ep_t *ep, const uct_ep_params_t *params)
{
    iface_impl &impl = iface_impl::of(ep);
    if (!(params->field_mask & UCT_EP_PARAM_FIELD_DEV_ADDR) ||
        !(params->field_mask & UCT_EP_PARAM_FIELD_IFACE_ADDR)) {
        ucs_error("tb: endpoints connect to an interface: give its device and iface address");
        return UCS_ERR_INVALID_PARAM;
    }
    auto *dev = reinterpret_cast<const uct_tb_device_addr_t *>(params->dev_addr);
    auto *addr = reinterpret_cast<const uct_tb_iface_addr_t *>(params->iface_addr);
    if (!impl.reaches(*dev)) {
        ucs_error("tb: %s does not reach that address (other cable or fabric, this host, "
                  "or a link not logged in)", impl.link().name.c_str());
        return UCS_ERR_UNREACHABLE;
    }
    int h = impl.ctx().create_ep(impl.link().index, addr->ctx_id, addr->secret);
    if (h < 0) {
        ucs_error("tb: cannot connect to context 0x%x over %s: %s", addr->ctx_id,
                  impl.link().name.c_str(), strerror(-h));
        return h == -ENOMEM ? UCS_ERR_NO_MEMORY : UCS_ERR_UNREACHABLE;
    }
    ep->handle = static_cast<uint32_t>(h);
    ep->remote_ctx = addr->ctx_id;
    ep->outstanding = 0;
    ep->posted = 0;
    ep->flushed = 0;
    ep->fence_beat = impl.fence_beat();
    ep->failed = 0;
    ep->err_pending = 0;
    ep->watched = 0;
    ep->full = 0;
    ep->ping_due = 0;
    ep->fail_status = UCS_OK;
    ep->failed_flush = nullptr;
    ucs_arbiter_group_init(&ep->arb_group);
    return UCS_OK;
}

extern "C" void uct_tb_ep_cleanup_impl(uct_tb_ep_t *ep)
{
    iface_impl &impl = iface_impl::of(ep);
    // UCX purges before destroying; drop anything left rather than crash.
    ucs_arbiter_group_desched(impl.arbiter(), &ep->arb_group);
    ucs_arbiter_group_purge(impl.arbiter(), &ep->arb_group,
                            [](ucs_arbiter_t *, ucs_arbiter_group_t *, ucs_arbiter_elem_t *,
                               void *) noexcept { return UCS_ARBITER_CB_RESULT_REMOVE_ELEM; },
                            nullptr);
    ucs_arbiter_group_cleanup(&ep->arb_group);
    impl.ctx().destroy_ep(ep->handle);
    impl.forget(ep);
}

extern "C" ucs_status_t uct_tb_ep_put_short(uct_ep_h tl_ep, const void *buffer, unsigned length,
                                            uint64_t remote_addr, uct_rkey_t rkey)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    UCT_CHECK_LENGTH(length, 0, TBRDMA_INLINE_MAX, "put_short");
    tbrdma_sqe s = make_sqe(TBRDMA_OP_WRITE);
    s.flags = TBRDMA_SQE_INLINE;
    s.length = length;
    std::memcpy(s.inline_data, buffer, length);
    s.remote_addr = remote_addr;
    s.rkey = rkey;
    return done_locally(iface_impl::of(ep).post(ep, s, op_desc{}));
}

extern "C" ssize_t uct_tb_ep_put_bcopy(uct_ep_h tl_ep, uct_pack_callback_t pack_cb, void *arg,
                                       uint64_t remote_addr, uct_rkey_t rkey)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    iface_impl &impl = iface_impl::of(ep);
    int32_t b = -1;
    ucs_status_t st = take_buf(impl, ep, &b);
    if (st != UCS_OK)
        return st;
    size_t len = pack_cb(impl.buf(b), arg);
    tbrdma_sqe s = make_sqe(TBRDMA_OP_WRITE);
    op_desc d;
    attach_payload(impl, s, d, b, len);
    s.remote_addr = remote_addr;
    s.rkey = rkey;
    st = post_with_buf(impl, ep, s, d);
    return st == UCS_INPROGRESS ? static_cast<ssize_t>(len) : static_cast<ssize_t>(st);
}

extern "C" ucs_status_t uct_tb_ep_put_zcopy(uct_ep_h ep, const uct_iov_t *iov, size_t iovcnt,
                                            uint64_t remote_addr, uct_rkey_t rkey,
                                            uct_completion_t *comp)
{
    return rma_zcopy(TBRDMA_OP_WRITE, ep, iov, iovcnt, remote_addr, rkey, comp);
}

extern "C" ucs_status_t uct_tb_ep_get_bcopy(uct_ep_h tl_ep, uct_unpack_callback_t unpack_cb,
                                            void *arg, size_t length, uint64_t remote_addr,
                                            uct_rkey_t rkey, uct_completion_t *comp)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    iface_impl &impl = iface_impl::of(ep);
    UCT_CHECK_LENGTH(length, 0, impl.seg_size(), "get_bcopy");
    int32_t b = -1;
    ucs_status_t st = take_buf(impl, ep, &b);
    if (st != UCS_OK)
        return st;
    tbrdma_sqe s = make_sqe(TBRDMA_OP_READ);
    s.local_addr = reinterpret_cast<uintptr_t>(impl.buf(b));
    s.lkey = impl.buf_key();
    s.length = static_cast<uint32_t>(length);
    s.remote_addr = remote_addr;
    s.rkey = rkey;
    op_desc d;
    d.comp = comp;
    d.kind = op_kind::get_bcopy;
    d.unpack = unpack_cb;
    d.arg = arg;
    d.length = static_cast<uint32_t>(length);
    d.buf = b;
    return post_with_buf(impl, ep, s, d);
}

extern "C" ucs_status_t uct_tb_ep_get_zcopy(uct_ep_h ep, const uct_iov_t *iov, size_t iovcnt,
                                            uint64_t remote_addr, uct_rkey_t rkey,
                                            uct_completion_t *comp)
{
    return rma_zcopy(TBRDMA_OP_READ, ep, iov, iovcnt, remote_addr, rkey, comp);
}

// Active messages: the 64-bit header (short) or the packed bytes travel
// as the message; the receiver hands that straight to the handler.
extern "C" ucs_status_t uct_tb_ep_am_short(uct_ep_h tl_ep, uint8_t id, uint64_t header,
                                           const void *payload, unsigned length)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    UCT_CHECK_AM_ID(id);
    UCT_CHECK_LENGTH(length + sizeof(header), 0, TBRDMA_INLINE_MAX, "am_short");
    tbrdma_sqe s = make_sqe(TBRDMA_OP_SEND);
    s.flags = TBRDMA_SQE_INLINE;
    s.am_id = id;
    s.length = static_cast<uint32_t>(sizeof(header) + length);
    std::memcpy(s.inline_data, &header, sizeof(header));
    std::memcpy(s.inline_data + sizeof(header), payload, length);
    ucs_status_t st = done_locally(iface_impl::of(ep).post(ep, s, op_desc{}));
    if (st == UCS_OK)
        uct_iface_trace_am(&ep->iface->super, UCT_AM_TRACE_TYPE_SEND, id, s.inline_data,
                           s.length, "TX: AM_SHORT");
    return st;
}

extern "C" ucs_status_t uct_tb_ep_am_short_iov(uct_ep_h tl_ep, uint8_t id, const uct_iov_t *iov,
                                               size_t iovcnt)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    UCT_CHECK_AM_ID(id);
    UCT_CHECK_LENGTH(iov_bytes(iov, iovcnt), 0, TBRDMA_INLINE_MAX, "am_short_iov");
    tbrdma_sqe s = make_sqe(TBRDMA_OP_SEND);
    s.flags = TBRDMA_SQE_INLINE;
    s.am_id = id;
    s.length = static_cast<uint32_t>(iov_gather(s.inline_data, iov, iovcnt));
    return done_locally(iface_impl::of(ep).post(ep, s, op_desc{}));
}

extern "C" ssize_t uct_tb_ep_am_bcopy(uct_ep_h tl_ep, uint8_t id, uct_pack_callback_t pack_cb,
                                      void *arg, unsigned)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    iface_impl &impl = iface_impl::of(ep);
    UCT_CHECK_AM_ID(id);
    int32_t b = -1;
    ucs_status_t st = take_buf(impl, ep, &b);
    if (st != UCS_OK)
        return st;
    size_t len = pack_cb(impl.buf(b), arg);
    if (len > TBRDMA_SEND_MAX) {
        impl.put_buf(b);
        ucs_error("tb: am_bcopy packed %zu bytes, more than one frame (%u)", len,
                  TBRDMA_SEND_MAX);
        return UCS_ERR_INVALID_PARAM;
    }
    uct_iface_trace_am(&ep->iface->super, UCT_AM_TRACE_TYPE_SEND, id, impl.buf(b), len,
                       "TX: AM_BCOPY");
    tbrdma_sqe s = make_sqe(TBRDMA_OP_SEND);
    s.am_id = id;
    op_desc d;
    attach_payload(impl, s, d, b, len);
    st = post_with_buf(impl, ep, s, d);
    return st == UCS_INPROGRESS ? static_cast<ssize_t>(len) : static_cast<ssize_t>(st);
}

// The header and the data must reach the handler as one message, so they
// are gathered into one frame (at most TBRDMA_SEND_MAX bytes); the user's buffers
// are free again at once, so no completion follows.
extern "C" ucs_status_t uct_tb_ep_am_zcopy(uct_ep_h tl_ep, uint8_t id, const void *header,
                                           unsigned header_length, const uct_iov_t *iov,
                                           size_t iovcnt, unsigned, uct_completion_t *)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    iface_impl &impl = iface_impl::of(ep);
    UCT_CHECK_AM_ID(id);
    UCT_CHECK_LENGTH(header_length, 0, tb_uct::am_max_hdr, "am_zcopy header");
    size_t total = header_length + iov_bytes(iov, iovcnt);
    UCT_CHECK_LENGTH(total, 0, TBRDMA_SEND_MAX, "am_zcopy");
    if (ucs_status_t st = iface_impl::refusal(ep); st != UCS_OK)
        return st;
    if (impl.has_pending_before(ep))
        return UCS_ERR_NO_RESOURCE;
    tbrdma_sqe s = make_sqe(TBRDMA_OP_SEND);
    s.am_id = id;
    op_desc d;
    uint8_t *dst = s.inline_data;
    int32_t b = -1;
    if (total > TBRDMA_INLINE_MAX) {
        b = impl.get_buf();
        if (b < 0)
            return UCS_ERR_NO_RESOURCE;
        dst = impl.buf(b);
    }
    std::memcpy(dst, header, header_length);
    iov_gather(dst + header_length, iov, iovcnt);
    if (b < 0) {
        s.flags = TBRDMA_SQE_INLINE;
        s.length = static_cast<uint32_t>(total);
    } else {
        attach_payload(impl, s, d, b, total);
    }
    return done_locally(post_with_buf(impl, ep, s, d));
}

extern "C" ucs_status_t uct_tb_ep_atomic_cswap64(uct_ep_h ep, uint64_t compare, uint64_t swap,
                                                 uint64_t remote_addr, uct_rkey_t rkey,
                                                 uint64_t *result, uct_completion_t *comp)
{
    return atomic(ep_of(ep), TBRDMA_ATOMIC_CSWAP, 8, swap, compare, remote_addr, rkey, result,
                  comp);
}

extern "C" ucs_status_t uct_tb_ep_atomic_cswap32(uct_ep_h ep, uint32_t compare, uint32_t swap,
                                                 uint64_t remote_addr, uct_rkey_t rkey,
                                                 uint32_t *result, uct_completion_t *comp)
{
    return atomic(ep_of(ep), TBRDMA_ATOMIC_CSWAP, 4, swap, compare, remote_addr, rkey, result,
                  comp);
}

extern "C" ucs_status_t uct_tb_ep_atomic32_post(uct_ep_h ep, unsigned opcode, uint32_t value,
                                                uint64_t remote_addr, uct_rkey_t rkey)
{
    return done_locally(atomic(ep_of(ep), atomic_op_of(opcode, false), 4, value, 0, remote_addr,
                               rkey, nullptr, nullptr));
}

extern "C" ucs_status_t uct_tb_ep_atomic64_post(uct_ep_h ep, unsigned opcode, uint64_t value,
                                                uint64_t remote_addr, uct_rkey_t rkey)
{
    return done_locally(atomic(ep_of(ep), atomic_op_of(opcode, false), 8, value, 0, remote_addr,
                               rkey, nullptr, nullptr));
}

extern "C" ucs_status_t uct_tb_ep_atomic32_fetch(uct_ep_h ep, uct_atomic_op_t opcode,
                                                 uint32_t value, uint32_t *result,
                                                 uint64_t remote_addr, uct_rkey_t rkey,
                                                 uct_completion_t *comp)
{
    return atomic(ep_of(ep), atomic_op_of(opcode, true), 4, value, 0, remote_addr, rkey, result,
                  comp);
}

extern "C" ucs_status_t uct_tb_ep_atomic64_fetch(uct_ep_h ep, uct_atomic_op_t opcode,
                                                 uint64_t value, uint64_t *result,
                                                 uint64_t remote_addr, uct_rkey_t rkey,
                                                 uct_completion_t *comp)
{
    return atomic(ep_of(ep), atomic_op_of(opcode, true), 8, value, 0, remote_addr, rkey, result,
                  comp);
}

extern "C" ucs_status_t uct_tb_ep_pending_add(uct_ep_h tl_ep, uct_pending_req_t *req,
                                              unsigned)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    iface_impl &impl = iface_impl::of(ep);
    // Resources came back since the caller's attempt: try again now.
    if (impl.can_send(ep) && !ep->failed)
        return UCS_ERR_BUSY;
    uct_pending_req_arb_group_push(&ep->arb_group, req);
    // A full endpoint's group is scheduled by its next completion.
    if (!ep->full)
        ucs_arbiter_group_schedule(impl.arbiter(), &ep->arb_group);
    return UCS_OK;
}

namespace {

struct purge_args {
    uct_pending_purge_callback_t cb;
    void *arg;
};

ucs_arbiter_cb_result_t purge_one(ucs_arbiter_t *, ucs_arbiter_group_t *,
                                  ucs_arbiter_elem_t *elem, void *arg) noexcept
{
    auto *a = static_cast<purge_args *>(arg);
    a->cb(ucs_container_of(elem, uct_pending_req_t, priv), a->arg);
    return UCS_ARBITER_CB_RESULT_REMOVE_ELEM;
}

}  // namespace

extern "C" void uct_tb_ep_pending_purge(uct_ep_h tl_ep, uct_pending_purge_callback_t cb,
                                        void *arg)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    purge_args a{cb, arg};
    ucs_arbiter_group_purge(iface_impl::of(ep).arbiter(), &ep->arb_group, purge_one, &a);
}

extern "C" ucs_status_t uct_tb_ep_flush(uct_ep_h tl_ep, unsigned flags, uct_completion_t *comp)
{
    uct_tb_ep_t *ep = ep_of(tl_ep);
    iface_impl &impl = iface_impl::of(ep);
    if (flags & UCT_FLUSH_FLAG_CANCEL)
        impl.ctx().cancel_ep(ep->handle);  // everything completes as canceled
    else if (impl.has_pending_before(ep))
        return UCS_ERR_NO_RESOURCE;  // pending work first
    if (!ep->outstanding)
        return UCS_OK;
    if (ep->failed) {
        // Nothing can be posted: done when the aborted operations are.
        if (!comp)
            return UCS_INPROGRESS;
        if (ep->failed_flush)
            return UCS_ERR_NO_RESOURCE;
        ep->failed_flush = comp;
        return UCS_INPROGRESS;
    }
    // The FLUSH posted last is still outstanding and nothing came after
    // it: asking again without a completion needs no new one.
    if (!comp && ep->flushed == ep->posted)
        return UCS_INPROGRESS;
    // A FLUSH completes after everything posted before it.
    tbrdma_sqe s = make_sqe(TBRDMA_OP_FLUSH);
    op_desc d;
    d.comp = comp;
    ucs_status_t st = impl.post(ep, s, d);
    if (st == UCS_INPROGRESS)
        ep->flushed = ep->posted;
    return st;
}

extern "C" ucs_status_t uct_tb_ep_fence(uct_ep_h tl_ep, unsigned)
{
    // The next operation waits for the READ and ATOMIC responses of those
    // before it: READ data is read after later requests have run.
    uct_tb_ep_t *ep = ep_of(tl_ep);
    ep->fence_beat = iface_impl::of(ep).fence_beat() - 1;
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_ep_check(uct_ep_h tl_ep, unsigned flags, uct_completion_t *comp)
{
    // No flags and no completion: what UCP passes (UCX's own check of
    // them changed its arguments in 1.22).
    if (flags || comp)
        return UCS_ERR_INVALID_PARAM;
    uct_tb_ep_t *ep = ep_of(tl_ep);
    iface_impl::of(ep).check(ep);
    return UCS_OK;
}
