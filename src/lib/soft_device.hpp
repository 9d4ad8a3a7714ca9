// SPDX-License-Identifier: BSD-2-Clause
//
// The software device: the tb engine running inside the process, talking
// to other processes on the same machine over soft cables (one cable and
// one tb_link per peer process, created on first use). Peers find each
// other through a soft_fabric. The device is the protection domain; each
// soft_context is one address on the fabric with its own queues. See
// docs/soft-link.md.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "soft_cable.hpp"
#include "soft_fabric.hpp"
#include "tb/device.hpp"
#include "tb_engine.h"
#include "unique_fd.hpp"

namespace tb {

class soft_context;

class soft_device final : public device {
public:
    // Endpoints per context: its table grows with use up to this.
    static constexpr uint32_t max_ep = 16384;

    // Claims a port on opts.fabric and creates the engine; throws
    // tb::error.
    explicit soft_device(const open_options &opts);
    ~soft_device() override;

    const device_info &info() const noexcept override { return info_; }
    std::vector<link_info> links() const override;
    link_info link(uint32_t index) const override;

    uint64_t reg_mr(void *addr, size_t length, uint32_t access) override;
    int dereg_mr(uint64_t key) noexcept override;
    std::unique_ptr<context> create_context(const context_options &opts) override;
    uint32_t contexts_free() const override;

    // Counters summed over every cable and link, for tests and tools.
    struct counters {
        soft_cable::counters cable;
        tb_link_stats link{};
        uint32_t peers = 0;  // cables held now
    };
    counters stats() const;

private:
    friend class soft_context;
    // A cable and the link running over it; heap-allocated so that the
    // engine's pointer to the link stays valid.
    struct peer {
        std::unique_ptr<soft_cable> cable;
        tb_link link{};
        uint32_t eps = 0;  // endpoints of ours on this link
    };
    struct engine_deleter {
        void operator()(tb_engine *e) const noexcept;
    };

    // Everything below runs under mu_.
    int progress_locked(uint64_t now) noexcept;
    int find_or_connect(uint32_t remote, uint32_t *link_index) noexcept;
    int add_peer(std::unique_ptr<soft_cable> cable, bool active) noexcept;
    void retire(peer *p) noexcept;
    void attach_incoming() noexcept;
    void check_peers(uint64_t now) noexcept;
    void reap_peers() noexcept;
    // Frames waiting on a cable, or a timer due.
    bool wire_pending(uint64_t now) noexcept;
    void set_armed() noexcept;
    void disarm() noexcept;
    void remove_context(soft_context *c) noexcept;

    // The progress thread: while the application does not run the engine,
    // this thread does, woken by peers' frames, so that puts, gets and
    // atomics complete without the target process doing anything (as the
    // kernel device does in its receive path). soft_progress.cpp.
    void start_progress_thread();
    void stop_progress_thread() noexcept;
    static void *progress_thread_main(void *self) noexcept;
    void progress_thread_loop() noexcept;
    void progress_thread_step() noexcept;

    mutable std::mutex mu_;
    open_options opts_;
    device_info info_;
    link_info link_;
    std::unique_ptr<soft_fabric> fabric_;
    std::unique_ptr<tb_engine, engine_deleter> engine_;
    tb_pd *pd_ = nullptr;
    std::vector<soft_context *> contexts_;  // by context index

    std::vector<std::unique_ptr<peer>> peers_;
    std::unordered_map<uint32_t, peer *> by_process_;  // the peer create_ep uses
    std::vector<uint32_t> incoming_;
    bool faulty_ = false;  // some cable may hold frames back
    bool armed_ = false;   // our fabric flag may be set
    uint32_t armed_contexts_ = 0;  // contexts asleep on their event fd
    uint64_t next_check_ns_ = 0;
    uint32_t checks_ = 0;


    // When an application thread last ran the engine.
    std::atomic<uint64_t> app_progress_ns_{0};
    pthread_t progress_thread_{};
    bool progress_thread_running_ = false;
    bool progress_thread_armed_ = false;  // counted in armed_contexts_
    unique_fd progress_epoll_fd_, progress_tick_fd_, progress_stop_fd_;
};

// One context of a soft_device. All calls take the device's lock.
class soft_context final : public context {
public:
    soft_context(soft_device &dev, uint32_t index, const context_options &opts);
    ~soft_context() override;

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
    int progress() noexcept override;
    int event_fd() const noexcept override { return notify_fd_.get(); }
    int arm() noexcept override;

private:
    friend class soft_device;
    struct free_deleter {
        void operator()(void *p) const noexcept;
    };
    using raw_memory = std::unique_ptr<uint8_t, free_deleter>;

    void init_ring(tb_qring *r, raw_memory *mem, uint32_t n, uint32_t entry_size);
    bool rings_pending() const noexcept;
    static void notify(void *arg, int recv) noexcept;
    // Runs the engine for the whole device, after taking this context
    // out of the sleepers.
    int progress_locked() noexcept;

    soft_device &dev_;
    uint32_t index_;
    uint32_t id_;
    uint64_t secret_ = 0;
    raw_memory cq_mem_, rq_mem_;
    tb_qring cq_{}, rq_{};
    tb_ctx *ctx_ = nullptr;
    bool armed_ = false;
    std::unordered_map<uint32_t, soft_device::peer *> ep_peer_;  // endpoint -> its peer
    // Its event fd, which the engine signals when it fills its armed rings.
    unique_fd notify_fd_;
};

}  // namespace tb
