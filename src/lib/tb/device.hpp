// SPDX-License-Identifier: BSD-2-Clause
//
// The device library: one interface over the two ways to reach the tb
// engine -- the kernel module behind /dev/tbrdma, and the software device
// that runs the same engine inside the process over shared-memory cables.
// Everything above it (the UCT transport, tests, tools) uses only this.
//
// Set-up calls throw tb::error with a message that says what to do;
// data-path calls are noexcept and return negative errno values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {
#include "rdma/tbrdma_abi.h"
}

namespace tb {

class error : public std::runtime_error {
public:
    error(int err, const std::string &what);
    int code() const noexcept { return err_; }

private:
    int err_;
};

struct device_info {
    std::string kind;  // "soft" or "kernel"
    uint32_t abi_version = 0;
    uint32_t max_mr = 0;
    uint32_t max_contexts = 0;
    uint32_t max_ep = 0;  // endpoints per context
    uint32_t frame_max = 0;
    uint32_t inline_max = 0;
    uint32_t send_max = 0;
    uint32_t post_ns = 0;  // processor time to post an operation
};

struct link_info {
    uint32_t index = 0;
    std::string name;
    uint32_t state = TBRDMA_LINK_DOWN;
    uint64_t identity = 0;  // same at both ends, 0 until logged in
    uint64_t end_id = 0;    // this end; the other end's differs
    bool local = false;     // both ends in this host: any context reaches any
    uint64_t speed_mbps = 0;  // what this end transmits
    uint32_t latency_ns = 0;  // nominal one way
    uint32_t rtt_ns = 0;      // least measured round trip, 0 before a sample
    int numa_node = -1;
    std::string pci_addr;  // controller, empty for software links
};

// How the software device's cables behave (ignored by the kernel device).
// The defaults are a perfect, instant cable; the knobs make it lossy and
// slow so that the link protocol's recovery paths can be exercised.
struct soft_link_options {
    double loss = 0;           // probability that a frame is lost, 0..1
    double dup = 0;            // probability that a frame arrives twice
    double reorder = 0;        // probability that a frame is held back
    uint32_t delay_us = 0;     // fixed extra delay per frame
    uint64_t rate_mbps = 0;    // serialisation rate, 0 = unlimited
    uint32_t latency_ns = 0;   // propagation delay per frame
    uint64_t seed = 0;         // fault PRNG seed, 0 = random
    uint32_t ring_slots = 64;  // frames per cable direction, power of two

    // Reads TB_SOFT_LOSS, TB_SOFT_DUP, TB_SOFT_REORDER, TB_SOFT_DELAY_US,
    // TB_SOFT_RATE_MBPS, TB_SOFT_LATENCY_NS, TB_SOFT_SEED, TB_SOFT_SLOTS;
    // throws tb::error(EINVAL) for a malformed value.
    static soft_link_options from_env();
};

struct open_options {
    // "auto" (kernel if /dev/tbrdma exists, else soft), "soft", "kernel".
    std::string kind = "auto";
    // Software fabric name: processes opening the same one can talk.
    std::string fabric = "soft0";
    uint32_t max_mr = 4096;
    soft_link_options soft;  // from_env() fills it from TB_SOFT_*

    // Reads TB_DEVICE, TB_SOFT_FABRIC and TB_SOFT_* from the environment.
    static open_options from_env();
};

struct context_options {
    uint32_t sq_entries = 1024;  // per endpoint in flight
    uint32_t cq_entries = 4096;
    uint32_t rq_entries = 256;
};

// One address on every link (its id), with its own endpoints, completion
// and receive queues and event fd. A device has several (one per UCT
// interface); all of them accept the device's memory keys.
class context {
public:
    virtual ~context() = default;

    // The id peers use to reach this context, and the secret without
    // which it refuses them: peers need both.
    virtual uint32_t id() const noexcept = 0;
    virtual uint64_t secret() const noexcept = 0;

    // Endpoint to context remote_ctx (with remote_secret) at the other end
    // of link. Returns a handle (>= 0) or -errno.
    virtual int create_ep(uint32_t link, uint32_t remote_ctx, uint64_t remote_secret) noexcept = 0;
    virtual int destroy_ep(uint32_t ep) noexcept = 0;
    virtual int cancel_ep(uint32_t ep) noexcept = 0;
    // Link state of the endpoint (enum tbrdma_link_state) or -errno.
    virtual int ep_state(uint32_t ep, uint32_t *outstanding) noexcept = 0;

    // Posts n operations in order. Returns how many were accepted (the
    // rest hit a full queue), or -errno if the first one was refused. On
    // the kernel device, while its poll threads poll the SQ, accepted
    // means handed over: what only the kernel can refuse (an endpoint
    // destroyed meanwhile) completes with status TBRDMA_WC_REFUSED.
    virtual int post(const tbrdma_sqe *sqes, unsigned n) noexcept = 0;

    // Makes progress and returns up to max completions.
    virtual unsigned poll_cq(tbrdma_cqe *out, unsigned max) noexcept = 0;

    // The oldest received message, or nullptr; its payload follows the
    // header. Valid until recv_release().
    virtual const tbrdma_rqe *recv_peek() noexcept = 0;
    virtual void recv_release() noexcept = 0;

    // Drives the engine (software device) or nothing (kernel). Returns
    // the number of frames handled.
    virtual int progress() noexcept = 0;

    // A file descriptor that polls readable when progress() or poll_cq()
    // has something to do, once arm() returned 0.
    virtual int event_fd() const noexcept = 0;
    // 0 when armed, -EAGAIN if there is already work pending.
    virtual int arm() noexcept = 0;
};

// The protection domain: links, memory registrations and contexts.
class device {
public:
    virtual ~device() = default;

    // Opens the device chosen by opts.kind.
    static std::unique_ptr<device> open(const open_options &opts = open_options::from_env());

    virtual const device_info &info() const noexcept = 0;
    virtual std::vector<link_info> links() const = 0;
    // One link as it is now (identity and rates change with each login);
    // throws tb::error(ENODEV) when it is gone.
    virtual link_info link(uint32_t index) const = 0;

    // Registers memory for every context of this device; throws tb::error
    // (EINVAL, ENOMEM, EPERM, ...).
    // The key is 64 random bits.
    virtual uint64_t reg_mr(void *addr, size_t length, uint32_t access) = 0;
    virtual int dereg_mr(uint64_t key) noexcept = 0;

    // A new context; throws tb::error. It must not outlive the device.
    virtual std::unique_ptr<context> create_context(const context_options &opts = {}) = 0;
    // How many more create_context() would give now.
    virtual uint32_t contexts_free() const = 0;
};

// "soft", "kernel" or "auto" as open() would resolve it now; throws
// tb::error(EINVAL) for anything else.
std::string resolve_kind(const std::string &kind);

}  // namespace tb
