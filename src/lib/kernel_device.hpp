// SPDX-License-Identifier: BSD-2-Clause
//
// The kernel device: tb::device and tb::context over /dev/tbrdma, the
// tbrdma module's ABI (rdma/tbrdma_abi.h, docs/kernel.md). The open file is
// the protection domain; each kernel_context is one context of it
// (TBRDMA_IOC_CREATE_QUEUES) with its three rings mapped into the process.
//
// The kernel runs the engine, so the data path is: post() writes SQEs into
// the mapped submission ring and rings the doorbell once per call (one
// system call per batch); poll_cq(), recv_peek() and recv_release() only
// read and write the mapped rings; progress() does nothing. The context's
// event fd is an eventfd the kernel signals when it fills an armed ring.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "tb/device.hpp"
#include "unique_fd.hpp"

namespace tb {

class kernel_device final : public device {
public:
    // Opens /dev/tbrdma and checks the module's ABI; throws tb::error.
    explicit kernel_device(const open_options &opts);
    ~kernel_device() override = default;

    const device_info &info() const noexcept override { return info_; }
    std::vector<link_info> links() const override;
    link_info link(uint32_t index) const override;

    uint64_t reg_mr(void *addr, size_t length, uint32_t access) override;
    int dereg_mr(uint64_t key) noexcept override;
    std::unique_ptr<context> create_context(const context_options &opts) override;
    uint32_t contexts_free() const override;

    int fd() const noexcept { return fd_.get(); }
    uint32_t max_ring_entries() const noexcept { return max_ring_; }
    // False in a child forked from the process that opened the device: it
    // shares the file and the mappings, and must not tear the parent's
    // contexts down.
    bool owner() const noexcept;

private:
    unique_fd fd_;
    device_info info_;
    std::atomic<uint32_t> regions_{0};  // registered now, at most info_.max_mr
    uint32_t max_ring_ = 0;
    pid_t owner_pid_;
};

class kernel_context final : public context {
public:
    // CREATE_QUEUES, then maps the rings; throws tb::error.
    kernel_context(kernel_device &dev, const context_options &opts);
    ~kernel_context() override;

    uint32_t id() const noexcept override { return id_; }
    uint64_t secret() const noexcept override { return secret_; }
    int create_ep(uint32_t link, uint32_t remote_ctx, uint64_t remote_secret) noexcept override;
    int destroy_ep(uint32_t ep) noexcept override;
    int cancel_ep(uint32_t ep) noexcept override;
    int ep_state(uint32_t ep, uint32_t *outstanding) noexcept override;
    int post(const tbrdma_sqe *sqes, unsigned n) noexcept override;
    unsigned poll_cq(tbrdma_cqe *out, unsigned max) noexcept override;
    const tbrdma_rqe *recv_peek() noexcept override;
    void recv_release() noexcept override;
    int progress() noexcept override { return 0; }
    int event_fd() const noexcept override { return event_fd_.get(); }
    int arm() noexcept override;

private:
    // One ring mapped from the kernel: control block, entries after it.
    struct ring {
        void *map = nullptr;
        size_t len = 0;
        tbrdma_ring_ctrl *ctrl = nullptr;
        uint8_t *entries = nullptr;
        uint32_t mask = 0;
        uint32_t entry_size = 0;
        uint8_t *slot(uint32_t index) const noexcept
        {
            return entries + size_t(index & mask) * entry_size;
        }
        bool empty() const noexcept;
    };

    void map_ring(ring *r, uint64_t offset, uint64_t length, uint32_t entries,
                  uint32_t entry_size);
    // Posts what the SQ holds; refusals become error completions.
    void doorbell_async() noexcept;
    void unmap_rings() noexcept;

    kernel_device &dev_;
    uint32_t handle_ = 0;  // the context within the file
    uint32_t id_ = 0;      // its id on the links
    uint64_t secret_ = 0;  // and what peers must present with it
    ring sq_, cq_, rq_;
    uint32_t sq_tail_ = 0;  // SQEs handed to the SQ, under sq_mu_
    std::unordered_set<uint32_t> eps_;  // endpoints alive, under sq_mu_
    unique_fd event_fd_;
    // Each ring has one user at a time: the SQ's producer, the CQ's and
    // the RQ's consumer.
    std::mutex sq_mu_, cq_mu_, rq_mu_;
};

}  // namespace tb
