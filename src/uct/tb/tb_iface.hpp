// SPDX-License-Identifier: BSD-2-Clause
//
// The interface behind UCT's uct_tb_iface_t: one tb context (its own
// address, completion and receive queues) on one link, the descriptors of
// operations in flight, the bcopy buffers, and the pending arbiter.
#pragma once

#include <memory>
#include <vector>

#include "tb_md.hpp"

namespace tb_uct {

// Largest am_zcopy header: header and data travel in one frame.
constexpr unsigned am_max_hdr = 128;

// What UCP's model of the interface is made of.
struct perf_model {
    double bandwidth;   // bytes/s in each direction, shared by the processes
    double latency_s;   // one way
    double overhead_s;  // processor time to post one operation
};

enum class op_kind : uint8_t {
    plain,           // nothing to do at completion but the callback
    get_bcopy,       // unpack the buffer
    fetch32,         // store the fetched value
    fetch64,
};

// What to do when an operation completes. wr_id is its index and, above
// bit 32, its generation: a completion left over from a destroyed
// endpoint never finds the descriptor's next user.
struct op_desc {
    uct_tb_ep_t *ep = nullptr;
    uct_completion_t *comp = nullptr;
    void *arg = nullptr;  // fetch result, or unpack argument
    uct_unpack_callback_t unpack = nullptr;
    uint32_t length = 0;
    int32_t buf = -1;  // bcopy buffer, -1 for none
    op_kind kind = op_kind::plain;
};

class iface_impl {
public:
    iface_impl(uct_tb_iface_t *iface, md_impl &md, const tb::link_info &link,
               const uct_tb_iface_config_t &cfg);
    ~iface_impl();
    iface_impl(const iface_impl &) = delete;
    iface_impl &operator=(const iface_impl &) = delete;

    static iface_impl &of(uct_iface_h iface) noexcept
    {
        return *static_cast<iface_impl *>(ucs_derived_of(iface, uct_tb_iface_t)->impl);
    }
    static iface_impl &of(uct_tb_ep_t *ep) noexcept
    {
        return *static_cast<iface_impl *>(ep->iface->impl);
    }

    tb::context &ctx() noexcept { return *ctx_; }
    const tb::link_info &link() const noexcept { return link_; }
    // Reads the link again: its identity and rates change at each login.
    void refresh_link() noexcept;
    // Whether an interface at device address a is reachable over our link.
    bool reaches(const uct_tb_device_addr_t &a) const noexcept;
    // From the link and the device, unless the configuration overrides.
    perf_model perf() const noexcept;
    ucs_arbiter_t *arbiter() noexcept { return &arbiter_; }
    size_t seg_size() const noexcept { return seg_size_; }
    uint32_t fence_beat() const noexcept { return fence_beat_; }
    // uct_iface_fence: every endpoint fences its next operation.
    void fence() noexcept { fence_beat_++; }

    // Posts sqe for ep, remembering d for its completion. UCS_INPROGRESS
    // when posted; UCS_ERR_NO_RESOURCE (d's buffer stays the caller's);
    // or the status of a failed endpoint whose failure was reported.
    // A ping may pass requests pending on ep and its queue limit.
    ucs_status_t post(uct_tb_ep_t *ep, tbrdma_sqe &sqe, const op_desc &d,
                      bool ping = false) noexcept;

    // bcopy buffers: index, or -1 when all are in flight.
    int32_t get_buf() noexcept;
    void put_buf(int32_t b) noexcept;
    uint8_t *buf(int32_t b) noexcept { return bufs_.get() + size_t(b) * seg_size_; }
    uint64_t buf_key() const noexcept { return buf_key_; }

    // Failure of ep, told to UCX from progress (never from inside a call
    // UCX made into the endpoint). The first status is the endpoint's
    // for good: the error handler and every later operation see it. cause
    // is the device's (enum tbrdma_status), for the log.
    void fail(uct_tb_ep_t *ep, ucs_status_t status, uint8_t cause) noexcept;
    // The endpoint goes away: its operations complete as canceled and
    // nothing refers to it anymore.
    void forget(uct_tb_ep_t *ep) noexcept;
    // uct_ep_check: from now on progress looks at ep's link now and then
    // and fails ep once it is down, even if nothing is outstanding on it;
    // and the peer's context is pinged (posted as soon as there is room).
    void check(uct_tb_ep_t *ep) noexcept;

    // A new operation on ep may go now: resources, and nothing pending
    // before it (what UCX queued must go first, to keep order).
    bool can_send(uct_tb_ep_t *ep) const noexcept
    {
        return !tx_blocked_ && free_desc_ != descs_.size() &&
               ep->outstanding < tx_queue_len_ && !has_pending_before(ep);
    }
    // Requests pending on ep wait for earlier ones, except the one being
    // dispatched now (it is still at the head of ep's group).
    bool has_pending_before(uct_tb_ep_t *ep) const noexcept
    {
        return dispatching_ != ep && !ucs_arbiter_group_is_empty(&ep->arb_group);
    }
    // Non-OK when ep takes no more operations: its failure was reported.
    static ucs_status_t refusal(const uct_tb_ep_t *ep) noexcept
    {
        return ep->failed && !ep->err_pending ? ep->fail_status : UCS_OK;
    }
    unsigned progress() noexcept;
    ucs_status_t flush() const noexcept;
    ucs_status_t arm(unsigned events) noexcept;

private:
    void complete(const tbrdma_cqe &c) noexcept;
    // Returns descriptor i to the free list; a new generation.
    void free_desc(uint32_t i) noexcept;
    void deliver(const tbrdma_rqe &r) noexcept;
    void report_failures() noexcept;
    void check_watched() noexcept;
    void ping(uct_tb_ep_t *ep) noexcept;
    static ucs_arbiter_cb_result_t dispatch(ucs_arbiter_t *arbiter, ucs_arbiter_group_t *group,
                                            ucs_arbiter_elem_t *elem, void *arg) noexcept;

    struct buf_deleter {
        void operator()(uint8_t *p) const noexcept;
    };
    struct desc_slot {
        op_desc d;
        uint32_t gen = 0;
        uint32_t next_free = 0;
    };

    uct_tb_iface_t *iface_;
    md_impl &md_;
    tb::link_info link_;
    std::unique_ptr<tb::context> ctx_;
    std::vector<desc_slot> descs_;
    uint32_t free_desc_;  // head of the free list, descs_.size() if none
    uint32_t outstanding_ = 0;
    uint32_t tx_queue_len_;  // operations in flight per endpoint
    size_t seg_size_;
    double bandwidth_;       // UCX_TB_BW, or UCS_CONFIG_BW_AUTO
    ucs_time_t latency_;     // UCX_TB_LATENCY, or UCS_TIME_AUTO
    ucs_time_t overhead_;    // UCX_TB_OVERHEAD, or UCS_TIME_AUTO
    std::unique_ptr<uint8_t, buf_deleter> bufs_;
    std::vector<int32_t> free_bufs_;
    uint64_t buf_key_ = 0;
    ucs_arbiter_t arbiter_;
    ucs_list_link_t failed_;  // failures not yet told, oldest first
    std::vector<uct_tb_ep_t *> watched_;  // checked endpoints, link not yet down
    uint64_t next_watch_ns_ = 0;
    uint32_t fence_beat_ = 0;
    bool tx_blocked_ = false;            // the interface ran out of resources
    uct_tb_ep_t *dispatching_ = nullptr;  // whose pending request runs
};

// Engine status to UCS status.
ucs_status_t status_of(uint8_t wc_status) noexcept;

}  // namespace tb_uct
