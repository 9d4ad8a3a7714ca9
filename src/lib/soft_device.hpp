// SPDX-License-Identifier: BSD-2-Clause
//
// The software device: the tb engine running inside the process, with one
// context, talking to other processes on the same machine over soft
// cables (one cable and one tb_link per peer, created on first use).
// Peers find each other through a soft_fabric. See docs/soft-link.md.
#pragma once

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

class soft_device final : public device {
public:
    // Claims a port on opts.fabric and creates the engine; throws
    // tb::error.
    explicit soft_device(const open_options &opts);
    ~soft_device() override;

    const device_info &info() const noexcept override { return info_; }
    std::vector<link_info> links() const override;

    uint32_t reg_mr(void *addr, size_t length, uint32_t access) override;
    int dereg_mr(uint32_t key) noexcept override;

    int create_ep(uint32_t link, uint32_t remote_ctx) noexcept override;
    int destroy_ep(uint32_t ep) noexcept override;
    int cancel_ep(uint32_t ep) noexcept override;
    int ep_state(uint32_t ep, uint32_t *outstanding) noexcept override;

    int post(const tbrdma_sqe *sqes, unsigned n) noexcept override;
    unsigned poll_cq(tbrdma_cqe *out, unsigned max) noexcept override;
    const tbrdma_rqe *recv_peek() noexcept override;
    void recv_release() noexcept override;
    int progress() noexcept override;
    int event_fd() const noexcept override { return epoll_fd_.get(); }
    int arm() noexcept override;

    // Counters summed over every cable and link, for tests and tools.
    struct counters {
        soft_cable::counters cable;
        tb_link_stats link{};
        uint32_t peers = 0;  // cables held now
    };
    counters stats() const;

private:
    struct peer;
    struct free_deleter {
        void operator()(void *p) const noexcept;
    };
    using raw_memory = std::unique_ptr<uint8_t, free_deleter>;
    struct engine_deleter {
        void operator()(tb_engine *e) const noexcept;
    };

    void init_ring(tb_ring *r, raw_memory *mem, uint32_t n, uint32_t entry_size);
    int progress_locked(uint64_t now) noexcept;
    int find_or_connect(uint32_t remote, uint32_t *link_index) noexcept;
    int add_peer(std::unique_ptr<soft_cable> cable, bool active) noexcept;
    void retire(peer *p) noexcept;
    void attach_incoming() noexcept;
    void check_peers(uint64_t now) noexcept;
    void reap_peers() noexcept;
    bool work_pending(uint64_t now, uint64_t *deadline) noexcept;
    void drain_wakeups() noexcept;
    void disarm() noexcept;

    mutable std::mutex mu_;
    open_options opts_;
    device_info info_;
    link_info link_;
    std::unique_ptr<soft_fabric> fabric_;
    std::unique_ptr<tb_engine, engine_deleter> engine_;
    raw_memory cq_mem_, rq_mem_;
    tb_ring cq_{}, rq_{};
    tb_ctx *ctx_ = nullptr;

    std::vector<std::unique_ptr<peer>> peers_;
    std::unordered_map<uint32_t, peer *> by_ctx_;  // the peer create_ep uses
    std::unordered_map<uint32_t, peer *> ep_peer_;  // endpoint -> its peer
    std::vector<uint32_t> incoming_;
    bool faulty_ = false;  // some cable may hold frames back
    bool armed_ = false;   // our fabric flag may be set
    uint64_t next_check_ns_ = 0;
    uint32_t checks_ = 0;

    unique_fd epoll_fd_;
    unique_fd timer_fd_;
};

}  // namespace tb
