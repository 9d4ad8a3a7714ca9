// SPDX-License-Identifier: BSD-2-Clause
#include "tb_iface.hpp"

extern "C" {
#include <ucs/arch/cpu.h>
#include <ucs/sys/math.h>
#include <ucs/time/time.h>
}

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace tb_uct {

namespace {

// Completions and messages taken per progress call.
constexpr unsigned progress_batch = 32;
// How often progress looks at the links of checked endpoints (the link
// layer itself takes milliseconds to seconds to declare a peer dead).
constexpr uint64_t watch_period_ns = 1000000;

uint64_t now_ns() noexcept
{
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

// Why the device failed an endpoint, for the log.
const char *cause_text(uint8_t wc_status) noexcept
{
    switch (wc_status) {
    case TBRDMA_WC_LINK_DOWN:
        return "the link went down";
    case TBRDMA_WC_REM_ACCESS_ERR:
        return "the peer refused a request: its context is gone, or a secret, key, "
               "bound or right did not match";
    case TBRDMA_WC_REM_INVALID:
        return "the peer refused a malformed request";
    case TBRDMA_WC_RNR_RETRY_EXC_ERR:
        return "the peer's receive queue stayed full";
    case TBRDMA_WC_LOC_ACCESS_ERR:
        return "a local buffer is not registered";
    case TBRDMA_WC_REFUSED:
        return "the device refused a malformed request";
    default:
        return "an operation failed";
    }
}

}  // namespace

ucs_status_t status_of(uint8_t wc_status) noexcept
{
    switch (wc_status) {
    case TBRDMA_WC_SUCCESS:
        return UCS_OK;
    case TBRDMA_WC_LOC_ACCESS_ERR:
    case TBRDMA_WC_REM_INVALID:
    case TBRDMA_WC_REFUSED:
        return UCS_ERR_INVALID_PARAM;
    case TBRDMA_WC_CANCELED:
        return UCS_ERR_CANCELED;
    case TBRDMA_WC_FLUSH_ERR:
        // Not executed: the endpoint failed before. Reported as an error,
        // so that the endpoint's one status replaces it.
        return UCS_ERR_IO_ERROR;
    default:
        // The link is down, the peer refused (REM_ACCESS_ERR: its context
        // is gone, or the key, bounds or rights were wrong; the device
        // does not say which, and a dead peer is the usual cause), or its
        // receive queue stayed full (RNR_RETRY_EXC_ERR). Each fails the
        // endpoint, and UCP's failed endpoints answer with this status:
        // the error handler must hear the same one.
        return UCS_ERR_ENDPOINT_TIMEOUT;
    }
}

void iface_impl::buf_deleter::operator()(uint8_t *p) const noexcept
{
    std::free(p);
}

iface_impl::iface_impl(uct_tb_iface_t *iface, md_impl &md, const tb::link_info &link,
                       const uct_tb_iface_config_t &cfg)
    : iface_(iface), md_(md), link_(link), tx_queue_len_(cfg.tx_queue_len),
      seg_size_(cfg.seg_size), bandwidth_(cfg.bandwidth), latency_(cfg.latency),
      overhead_(cfg.overhead)
{
    if (seg_size_ < 64 || seg_size_ > TBRDMA_XFER_MAX || !cfg.tx_bufs || !cfg.cq_len ||
        !cfg.tx_queue_len || !cfg.rx_queue_len)
        throw tb::error(EINVAL, "UCX_TB_SEG_SIZE must be at least 64 and the queue lengths "
                                "and UCX_TB_TX_BUFS non-zero");
    tb::context_options co;
    co.sq_entries = cfg.tx_queue_len;
    co.cq_entries = cfg.cq_len;
    co.rq_entries = cfg.rx_queue_len;
    ctx_ = md.dev().create_context(co);

    // One descriptor per completion slot: the device refuses work beyond.
    descs_.resize(cfg.cq_len);
    for (uint32_t i = 0; i < descs_.size(); i++)
        descs_[i].next_free = i + 1;
    free_desc_ = 0;

    size_t bytes = (seg_size_ * cfg.tx_bufs + 4095) & ~size_t(4095);
    bufs_.reset(static_cast<uint8_t *>(std::aligned_alloc(4096, bytes)));
    if (!bufs_)
        throw tb::error(ENOMEM, "no memory for the bcopy buffers");
    buf_key_ = md.dev().reg_mr(bufs_.get(), bytes, TBRDMA_ACCESS_LOCAL);
    for (int32_t b = static_cast<int32_t>(cfg.tx_bufs) - 1; b >= 0; b--)
        free_bufs_.push_back(b);
    ucs_list_head_init(&failed_);
    ucs_arbiter_init(&arbiter_);
}

iface_impl::~iface_impl()
{
    ucs_arbiter_cleanup(&arbiter_);
    ctx_.reset();
    md_.dev().dereg_mr(buf_key_);
}

int32_t iface_impl::get_buf() noexcept
{
    if (free_bufs_.empty()) {
        tx_blocked_ = true;
        return -1;
    }
    int32_t b = free_bufs_.back();
    free_bufs_.pop_back();
    return b;
}

void iface_impl::put_buf(int32_t b) noexcept
{
    free_bufs_.push_back(b);  // capacity reserved: never reallocates
}

ucs_status_t iface_impl::post(uct_tb_ep_t *ep, tbrdma_sqe &sqe, const op_desc &d,
                              bool ping) noexcept
{
    if (ucs_status_t st = refusal(ep); st != UCS_OK)
        return st;
    if (!ping && has_pending_before(ep))
        return UCS_ERR_NO_RESOURCE;  // keep order behind queued requests
    if (!ping && ep->outstanding >= tx_queue_len_) {
        ep->full = 1;  // this endpoint alone waits for its completions
        return UCS_ERR_NO_RESOURCE;
    }
    if (free_desc_ == descs_.size()) {
        tx_blocked_ = true;
        return UCS_ERR_NO_RESOURCE;
    }
    uint32_t i = free_desc_;
    bool fenced = ep->fence_beat != fence_beat_;
    if (fenced && ep->outstanding)
        sqe.flags |= TBRDMA_SQE_FENCE;
    // UCX waits only for a completion it passed: the target may hold the
    // ack of any other WRITE or SEND back for its own traffic to carry.
    if (!d.comp && (sqe.opcode == TBRDMA_OP_WRITE || sqe.opcode == TBRDMA_OP_SEND))
        sqe.flags |= TBRDMA_SQE_DELAY_ACK;
    sqe.ep = ep->handle;
    sqe.wr_id = (uint64_t(descs_[i].gen) << 32) | i;
    int rc = ctx_->post(&sqe, 1);
    if (rc == 1) {
        free_desc_ = descs_[i].next_free;
        descs_[i].d = d;
        descs_[i].d.ep = ep;
        ep->outstanding++;
        ep->posted++;
        ep->fence_beat = fence_beat_;
        outstanding_++;
        return UCS_INPROGRESS;
    }
    if (rc == -EAGAIN) {
        tx_blocked_ = true;  // the completion queue is full
        return UCS_ERR_NO_RESOURCE;
    }
    ucs_error("tb: %s refused an operation: %s", link_.name.c_str(), strerror(-rc));
    return UCS_ERR_INVALID_PARAM;
}

void iface_impl::refresh_link() noexcept
{
    try {
        link_ = md_.dev().link(link_.index);
    } catch (const std::exception &e) {
        ucs_debug("tb: %s: %s", link_.name.c_str(), e.what());
        link_.identity = 0;  // gone: reaches nothing
    }
}

perf_model iface_impl::perf() const noexcept
{
    perf_model p;
    // What one frame carries of data: the link's rate less the headers.
    p.bandwidth = bandwidth_ != UCT_TB_BW_AUTO
                      ? bandwidth_
                      : double(link_.speed_mbps) * 1e6 / 8 * TBRDMA_SEND_MAX / TBRDMA_FRAME_MAX;
    // Half the least round trip the link measured (the receiver's polling
    // included, no queue), else what the link is nominally. A round trip
    // smoothed under load grows with the queue, and with it UCP's
    // rendezvous threshold: 1 MiB messages went eager after a put_bw run.
    p.latency_s = latency_ != UCS_TIME_AUTO
                      ? ucs_time_to_sec(latency_)
                      : (link_.rtt_ns ? link_.rtt_ns / 2 : link_.latency_ns) * 1e-9;
    p.overhead_s = overhead_ != UCS_TIME_AUTO ? ucs_time_to_sec(overhead_)
                                              : md_.dev().info().post_ns * 1e-9;
    return p;
}

bool iface_impl::reaches(const uct_tb_device_addr_t &a) const noexcept
{
    // The other end of this same cable (a link not logged in reaches
    // nothing); on links within this host, any of its contexts.
    return link_.identity && a.identity == link_.identity &&
           (link_.local || a.end_id != link_.end_id);
}

void iface_impl::fail(uct_tb_ep_t *ep, ucs_status_t status, uint8_t cause) noexcept
{
    if (ep->failed)
        return;
    ep->failed = 1;
    ep->fail_status = status;
    ep->fail_cause = cause;
    ep->err_pending = 1;
    ucs_list_add_tail(&failed_, &ep->failed_link);
}

void iface_impl::check(uct_tb_ep_t *ep) noexcept
{
    if (ep->failed)
        return;
    // The link watches its peer (and the software link the peer process),
    // but nothing reports a link going down under an idle endpoint.
    if (ctx_->ep_state(ep->handle, nullptr) == TBRDMA_LINK_DOWN) {
        fail(ep, UCS_ERR_ENDPOINT_TIMEOUT, TBRDMA_WC_LINK_DOWN);
        return;
    }
    if (!ep->watched) {
        try {
            watched_.push_back(ep);
            ep->watched = 1;
        } catch (...) {
            return;  // no memory: unwatched; UCP checks again later
        }
    }
    ep->ping_due = 1;
    ping(ep);
}

void iface_impl::ping(uct_tb_ep_t *ep) noexcept
{
    // The link may be fine and the peer's context gone (the kernel device
    // serves every process of a host): a zero-length write reaches the
    // context and touches nothing, and if it is gone its completion fails
    // the endpoint.
    tbrdma_sqe s;
    std::memset(&s, 0, offsetof(tbrdma_sqe, inline_data));
    s.opcode = TBRDMA_OP_WRITE;
    if (post(ep, s, op_desc{}, true) == UCS_INPROGRESS)
        ep->ping_due = 0;
}

void iface_impl::check_watched() noexcept
{
    uint64_t now = now_ns();
    if (now < next_watch_ns_)
        return;
    next_watch_ns_ = now + watch_period_ns;
    for (size_t i = 0; i < watched_.size();) {
        uct_tb_ep_t *ep = watched_[i];
        if (!ep->failed && ctx_->ep_state(ep->handle, nullptr) != TBRDMA_LINK_DOWN) {
            if (ep->ping_due)
                ping(ep);
            i++;
            continue;
        }
        fail(ep, UCS_ERR_ENDPOINT_TIMEOUT, TBRDMA_WC_LINK_DOWN);  // no-op if failed
        ep->watched = 0;
        watched_[i] = watched_.back();
        watched_.pop_back();
    }
}

void iface_impl::free_desc(uint32_t i) noexcept
{
    descs_[i].d = op_desc{};
    descs_[i].gen++;
    descs_[i].next_free = free_desc_;
    free_desc_ = i;
}

void iface_impl::forget(uct_tb_ep_t *ep) noexcept
{
    if (ep->err_pending) {
        ucs_list_del(&ep->failed_link);
        ep->err_pending = 0;
    }
    watched_.erase(std::remove(watched_.begin(), watched_.end(), ep), watched_.end());
    // The device dropped the endpoint's operations without completions:
    // UCX expects each to complete, canceled, before the destroy returns.
    for (uint32_t i = 0; ep->outstanding && i < descs_.size(); i++) {
        op_desc d = descs_[i].d;
        if (d.ep != ep)
            continue;
        if (d.buf >= 0)
            put_buf(d.buf);
        free_desc(i);
        ep->outstanding--;
        outstanding_--;
        if (d.comp)
            uct_invoke_completion(d.comp, UCS_ERR_CANCELED);
    }
    if (ep->failed_flush) {
        uct_completion_t *comp = ep->failed_flush;
        ep->failed_flush = nullptr;
        uct_invoke_completion(comp, UCS_ERR_CANCELED);
    }
}

void iface_impl::complete(const tbrdma_cqe &c) noexcept
{
    uint32_t i = static_cast<uint32_t>(c.wr_id);
    if (i >= descs_.size() || descs_[i].gen != c.wr_id >> 32 || !descs_[i].d.ep)
        return;  // not ours: never posted, or its endpoint is gone
    op_desc d = descs_[i].d;
    free_desc(i);

    ucs_status_t status = status_of(c.status);
    if (status == UCS_OK) {
        switch (d.kind) {
        case op_kind::get_bcopy:
            d.unpack(d.arg, buf(d.buf), d.length);
            break;
        case op_kind::fetch32:
            *static_cast<uint32_t *>(d.arg) = static_cast<uint32_t>(c.result);
            break;
        case op_kind::fetch64:
            *static_cast<uint64_t *>(d.arg) = c.result;
            break;
        case op_kind::plain:
            break;
        }
    }
    if (d.buf >= 0)
        put_buf(d.buf);
    uct_tb_ep_t *ep = d.ep;
    ep->outstanding--;
    outstanding_--;
    // A broken link, a refusal or a receiver never ready (the device's
    // endpoint is in error from then on), or an error nobody else would
    // hear of, fails the endpoint (as a verbs QP goes to error).
    const bool refused = c.status == TBRDMA_WC_REM_ACCESS_ERR ||
                         c.status == TBRDMA_WC_REM_INVALID ||
                         c.status == TBRDMA_WC_RNR_RETRY_EXC_ERR;
    if (c.status == TBRDMA_WC_LINK_DOWN || refused ||
        (status != UCS_OK && status != UCS_ERR_CANCELED && !d.comp))
        fail(ep, status, c.status);
    if (ep->failed && status != UCS_OK && status != UCS_ERR_CANCELED)
        status = ep->fail_status;
    if (ep->full && ep->outstanding < tx_queue_len_) {
        // Its pending requests can go again.
        ep->full = 0;
        ucs_arbiter_group_schedule(&arbiter_, &ep->arb_group);
    }
    // The flush a failed endpoint could not post is done with its last
    // operation. Taken first: a completion callback may destroy the ep.
    uct_completion_t *flushed = nullptr;
    const ucs_status_t flush_status = ep->fail_status;
    if (!ep->outstanding && ep->failed_flush) {
        flushed = ep->failed_flush;
        ep->failed_flush = nullptr;
    }
    if (d.comp)
        uct_invoke_completion(d.comp, status);
    if (flushed)
        uct_invoke_completion(flushed, flush_status);
}

void iface_impl::deliver(const tbrdma_rqe &r) noexcept
{
    if (r.am_id >= UCT_AM_ID_MAX || r.length > TBRDMA_RQE_DATA_MAX)
        return;  // not from a tb transport: drop
    void *data = const_cast<tbrdma_rqe *>(&r) + 1;
    uct_iface_trace_am(&iface_->super, UCT_AM_TRACE_TYPE_RECV, static_cast<uint8_t>(r.am_id),
                       data, r.length, "RECV from ctx 0x%x", r.src_ctx);
    uct_iface_invoke_am(&iface_->super, static_cast<uint8_t>(r.am_id), data, r.length, 0);
}

void iface_impl::report_failures() noexcept
{
    // One at a time: the handler may destroy endpoints, which forget()s
    // them from the list.
    while (!ucs_list_is_empty(&failed_)) {
        uct_tb_ep_t *ep = ucs_list_extract_head(&failed_, uct_tb_ep_t, failed_link);
        ep->err_pending = 0;
        ucs_status_t status = ep->fail_status;
        uint32_t remote = ep->remote_ctx;
        ucs_status_t handled =
            uct_iface_handle_ep_err(&iface_->super.super, &ep->super.super, status);
        // As UCX's transports do: a peer that is gone at the configured
        // failure level (UCX_TB_FAILURE), other errors as errors, and
        // fatal when nobody handles it.
        ucs_log(uct_base_iface_failure_log_level(&iface_->super, handled, status),
                "tb: %s: endpoint %p to context 0x%x failed: %s (%s)", link_.name.c_str(),
                static_cast<void *>(ep), remote, ucs_status_string(status),
                cause_text(ep->fail_cause));
    }
}

ucs_arbiter_cb_result_t iface_impl::dispatch(ucs_arbiter_t *, ucs_arbiter_group_t *group,
                                             ucs_arbiter_elem_t *elem, void *arg) noexcept
{
    auto *self = static_cast<iface_impl *>(arg);
    auto *req = ucs_container_of(elem, uct_pending_req_t, priv);
    uct_tb_ep_t *ep = ucs_container_of(group, uct_tb_ep_t, arb_group);
    if (ep->failed)
        return UCS_ARBITER_CB_RESULT_DESCHED_GROUP;  // purged by UCX
    self->tx_blocked_ = false;
    self->dispatching_ = ep;
    ucs_status_t status = req->func(req);
    self->dispatching_ = nullptr;
    if (status == UCS_OK)
        return UCS_ARBITER_CB_RESULT_REMOVE_ELEM;
    if (status == UCS_INPROGRESS)
        return UCS_ARBITER_CB_RESULT_NEXT_GROUP;  // partly done: call again
    if (self->tx_blocked_)
        return UCS_ARBITER_CB_RESULT_STOP;  // the interface is out: after completions
    // Its own queue is full (rescheduled by its next completion), or it
    // failed (purged by UCX): the request stays, other endpoints go on.
    return UCS_ARBITER_CB_RESULT_DESCHED_GROUP;
}

unsigned iface_impl::progress() noexcept
{
    tbrdma_cqe cqes[progress_batch];
    unsigned n = ctx_->poll_cq(cqes, progress_batch);
    for (unsigned i = 0; i < n; i++)
        complete(cqes[i]);
    unsigned count = n;
    for (; count < 2 * progress_batch; count++) {
        const tbrdma_rqe *r = ctx_->recv_peek();
        if (!r)
            break;
        deliver(*r);
        ctx_->recv_release();
    }
    if (n || !outstanding_)
        tx_blocked_ = false;
    if (!tx_blocked_ && !ucs_arbiter_is_empty(&arbiter_))
        ucs_arbiter_dispatch(&arbiter_, 1, &iface_impl::dispatch, this);
    if (!watched_.empty())
        check_watched();
    report_failures();
    return count;
}

ucs_status_t iface_impl::flush() const noexcept
{
    return outstanding_ || !ucs_arbiter_is_empty(const_cast<ucs_arbiter_t *>(&arbiter_))
               ? UCS_INPROGRESS
               : UCS_OK;
}

ucs_status_t iface_impl::arm(unsigned) noexcept
{
    // Anything UCX should see first: failures to report, pending work
    // that can go, completions or messages already there.
    if (!ucs_list_is_empty(&failed_) || (!tx_blocked_ && !ucs_arbiter_is_empty(&arbiter_)))
        return UCS_ERR_BUSY;
    return ctx_->arm() == 0 ? UCS_OK : UCS_ERR_BUSY;
}

}  // namespace tb_uct

using tb_uct::iface_impl;
using tb_uct::md_impl;

extern "C" ucs_status_t uct_tb_iface_init_impl(uct_tb_iface_t *iface,
                                               const uct_iface_params_t *params,
                                               const uct_tb_iface_config_t *config)
{
    if (!(params->field_mask & UCT_IFACE_PARAM_FIELD_OPEN_MODE) ||
        !(params->open_mode & UCT_IFACE_OPEN_MODE_DEVICE)) {
        ucs_error("tb: only UCT_IFACE_OPEN_MODE_DEVICE is supported");
        return UCS_ERR_UNSUPPORTED;
    }
    // Messages are handed over without UCT_CB_PARAM_FLAG_DESC, so no
    // alignment is ever owed; still, an impossible request is an error.
    if (params->field_mask & UCT_IFACE_PARAM_FIELD_AM_ALIGNMENT) {
        size_t offset = UCT_IFACE_PARAM_VALUE(params, am_align_offset, AM_ALIGN_OFFSET, 0ul);
        if (!ucs_is_pow2(params->am_alignment) || offset >= params->am_alignment) {
            ucs_error("tb: invalid AM alignment %zu with offset %zu (a power of two, and "
                      "an offset below it)", params->am_alignment, offset);
            return UCS_ERR_INVALID_PARAM;
        }
    } else if (params->field_mask & UCT_IFACE_PARAM_FIELD_AM_ALIGN_OFFSET) {
        ucs_error("tb: an AM alignment offset without an alignment");
        return UCS_ERR_INVALID_PARAM;
    }
    md_impl &md = md_impl::of(iface->super.md);
    const tb::link_info *link = md.link_by_name(params->mode.device.dev_name);
    if (!link) {
        ucs_error("tb: no device named '%s'", params->mode.device.dev_name);
        return UCS_ERR_NO_DEVICE;
    }
    try {
        iface->impl = new iface_impl(iface, md, *link, *config);
        return UCS_OK;
    } catch (const tb::error &e) {
        ucs_error("tb: cannot open an interface on %s: %s", link->name.c_str(), e.what());
        return e.code() == ENOMEM ? UCS_ERR_NO_MEMORY : UCS_ERR_INVALID_PARAM;
    } catch (const std::exception &e) {
        ucs_error("tb: cannot open an interface on %s: %s", link->name.c_str(), e.what());
        return UCS_ERR_NO_MEMORY;
    }
}

extern "C" void uct_tb_iface_cleanup_impl(uct_tb_iface_t *iface)
{
    delete static_cast<iface_impl *>(iface->impl);
    iface->impl = nullptr;
}

extern "C" ucs_status_t uct_tb_iface_query(uct_iface_h tl_iface, uct_iface_attr_t *attr)
{
    auto *iface = ucs_derived_of(tl_iface, uct_tb_iface_t);
    iface_impl &impl = iface_impl::of(tl_iface);
    impl.refresh_link();

    uct_base_iface_query(&iface->super, attr);
    attr->cap.put.max_short = TBRDMA_INLINE_MAX;
    attr->cap.put.max_bcopy = impl.seg_size();
    attr->cap.put.min_zcopy = 0;
    attr->cap.put.max_zcopy = TBRDMA_XFER_MAX;
    attr->cap.put.opt_zcopy_align = UCS_SYS_CACHE_LINE_SIZE;
    attr->cap.put.align_mtu = UCS_SYS_CACHE_LINE_SIZE;
    attr->cap.put.max_iov = 1;

    attr->cap.get.max_bcopy = impl.seg_size();
    attr->cap.get.min_zcopy = 0;
    attr->cap.get.max_zcopy = TBRDMA_XFER_MAX;
    attr->cap.get.opt_zcopy_align = UCS_SYS_CACHE_LINE_SIZE;
    attr->cap.get.align_mtu = UCS_SYS_CACHE_LINE_SIZE;
    attr->cap.get.max_iov = 1;

    // Active messages travel in one frame: header and payload together.
    attr->cap.am.max_short = TBRDMA_INLINE_MAX;
    attr->cap.am.max_bcopy = std::min<size_t>(impl.seg_size(), TBRDMA_SEND_MAX);
    attr->cap.am.min_zcopy = 0;
    attr->cap.am.max_zcopy = TBRDMA_SEND_MAX;
    attr->cap.am.max_hdr = tb_uct::am_max_hdr;
    attr->cap.am.opt_zcopy_align = UCS_SYS_CACHE_LINE_SIZE;
    attr->cap.am.align_mtu = UCS_SYS_CACHE_LINE_SIZE;
    attr->cap.am.max_iov = 8;

    attr->device_addr_len = sizeof(uct_tb_device_addr_t);
    attr->iface_addr_len = sizeof(uct_tb_iface_addr_t);
    attr->ep_addr_len = 0;
    attr->max_conn_priv = 0;
    attr->max_num_eps = std::min<size_t>(attr->max_num_eps,  // UCX_TB_MAX_NUM_EPS
                                         md_impl::of(iface->super.md).dev().info().max_ep);
    attr->cap.flags = UCT_IFACE_FLAG_AM_SHORT | UCT_IFACE_FLAG_AM_BCOPY |
                      UCT_IFACE_FLAG_AM_ZCOPY | UCT_IFACE_FLAG_PUT_SHORT |
                      UCT_IFACE_FLAG_PUT_BCOPY | UCT_IFACE_FLAG_PUT_ZCOPY |
                      UCT_IFACE_FLAG_GET_BCOPY | UCT_IFACE_FLAG_GET_ZCOPY |
                      UCT_IFACE_FLAG_ATOMIC_DEVICE | UCT_IFACE_FLAG_PENDING |
                      UCT_IFACE_FLAG_CB_SYNC | UCT_IFACE_FLAG_CONNECT_TO_IFACE |
                      UCT_IFACE_FLAG_ERRHANDLE_PEER_FAILURE | UCT_IFACE_FLAG_EP_CHECK |
                      UCT_IFACE_FLAG_ERRHANDLE_ZCOPY_BUF | UCT_IFACE_FLAG_ERRHANDLE_REMOTE_MEM;
    attr->cap.event_flags = UCT_IFACE_FLAG_EVENT_SEND_COMP | UCT_IFACE_FLAG_EVENT_RECV |
                            UCT_IFACE_FLAG_EVENT_FD;
    attr->cap.atomic32.op_flags = attr->cap.atomic64.op_flags =
        UCS_BIT(UCT_ATOMIC_OP_ADD) | UCS_BIT(UCT_ATOMIC_OP_AND) | UCS_BIT(UCT_ATOMIC_OP_OR) |
        UCS_BIT(UCT_ATOMIC_OP_XOR);
    attr->cap.atomic32.fop_flags = attr->cap.atomic64.fop_flags =
        attr->cap.atomic64.op_flags | UCS_BIT(UCT_ATOMIC_OP_SWAP) | UCS_BIT(UCT_ATOMIC_OP_CSWAP);

    // UCP's lane choice and protocol thresholds use these.
    const tb_uct::perf_model p = impl.perf();
    attr->overhead = p.overhead_s;
    attr->latency = ucs_linear_func_make(p.latency_s, 0);
    attr->bandwidth.dedicated = 0;
    attr->bandwidth.shared = p.bandwidth;  // the cable is shared by every process
    attr->priority = 0;
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_iface_estimate_perf(uct_iface_h iface, uct_perf_attr_t *perf_attr)
{
    return uct_base_iface_estimate_perf(iface, perf_attr);
}

extern "C" ucs_status_t uct_tb_iface_get_device_address(uct_iface_h iface, uct_device_addr_t *addr)
{
    iface_impl &impl = iface_impl::of(iface);
    impl.refresh_link();
    auto *a = reinterpret_cast<uct_tb_device_addr_t *>(addr);
    a->identity = impl.link().identity;
    a->end_id = impl.link().end_id;
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_iface_get_address(uct_iface_h iface, uct_iface_addr_t *addr)
{
    auto *a = reinterpret_cast<uct_tb_iface_addr_t *>(addr);
    a->ctx_id = iface_impl::of(iface).ctx().id();
    a->secret = iface_impl::of(iface).ctx().secret();
    return UCS_OK;
}

extern "C" int uct_tb_iface_is_reachable(const uct_iface_h iface, const uct_device_addr_t *dev_addr,
                                         const uct_iface_addr_t *iface_addr)
{
    auto *d = reinterpret_cast<const uct_tb_device_addr_t *>(dev_addr);
    return d && iface_addr && iface_impl::of(iface).reaches(*d);
}

extern "C" unsigned uct_tb_iface_progress(uct_iface_h iface)
{
    return iface_impl::of(iface).progress();
}

extern "C" ucs_status_t uct_tb_iface_flush(uct_iface_h iface, unsigned flags,
                                           uct_completion_t *comp)
{
    if (comp)
        return UCS_ERR_UNSUPPORTED;
    if (flags & UCT_FLUSH_FLAG_CANCEL)
        return UCS_ERR_UNSUPPORTED;
    return iface_impl::of(iface).flush();
}

extern "C" ucs_status_t uct_tb_iface_fence(uct_iface_h iface, unsigned)
{
    iface_impl::of(iface).fence();
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_iface_event_fd_get(uct_iface_h iface, int *fd_p)
{
    *fd_p = iface_impl::of(iface).ctx().event_fd();
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_iface_event_arm(uct_iface_h iface, unsigned events)
{
    return iface_impl::of(iface).arm(events);
}
