// SPDX-License-Identifier: BSD-2-Clause
//
// The memory domain behind UCT's uct_tb_md_t: one tb device (protection
// domain) for all links, so one registration and one packed rkey serve
// every rail. Registrations go through UCX's registration cache unless it
// is turned off (UCX_TB_RCACHE=n).
#pragma once

#include <memory>
#include <vector>

#include "tb/device.hpp"

extern "C" {
#include "uct_tb.h"
#include <ucs/memory/rcache.h>
}

namespace tb_uct {

// What uct_mem_h points to: a registration and the rights it grants.
struct memh {
    uint64_t key;
    uint32_t access;  // TBRDMA_ACCESS_*
    bool cached;      // in an rcache region (else allocated on its own)
    // Memory the domain allocated itself (uct_md_mem_alloc), else null.
    void *mapped = nullptr;
    size_t mapped_len = 0;
};

// A region of the registration cache.
struct rcache_region {
    ucs_rcache_region_t super;
    memh mh;
};

class md_impl {
public:
    // Opens the device config->device asks for; "auto" without the kernel
    // module opens none (the memory domain then offers no device).
    explicit md_impl(const uct_tb_md_config_t &config);
    ~md_impl();
    md_impl(const md_impl &) = delete;
    md_impl &operator=(const md_impl &) = delete;

    bool has_dev() const noexcept { return dev_ != nullptr; }
    tb::device &dev() noexcept { return *dev_; }
    const std::vector<tb::link_info> &links() const noexcept { return links_; }
    const tb::link_info *link_by_name(const char *name) const noexcept;
    ucs_linear_func_t reg_cost() const noexcept { return reg_cost_; }

    // Registers [addr, addr + length) with access; throws tb::error.
    memh *reg(void *addr, size_t length, uint32_t access);
    void dereg(memh *mh, uct_completion_t *invalidated) noexcept;
    // Maps *length (rounded up to pages) at *addr (a hint, or where it
    // must be with fixed) and registers it; throws tb::error.
    memh *alloc(void **addr, size_t *length, bool fixed, uint32_t access);
    void free(memh *mh) noexcept;

    static md_impl &of(uct_md_h md) noexcept
    {
        return *static_cast<md_impl *>(ucs_derived_of(md, uct_tb_md_t)->impl);
    }

private:
    static ucs_status_t rcache_reg(void *ctx, ucs_rcache_t *rcache, void *arg,
                                   ucs_rcache_region_t *region, uint16_t flags) noexcept;
    static void rcache_dereg(void *ctx, ucs_rcache_t *rcache,
                             ucs_rcache_region_t *region) noexcept;
#ifdef TB_UCX_RCACHE_OPS_MERGE
    // A region the new one takes in (they overlap): its rights too.
    static void rcache_merge(void *ctx, ucs_rcache_t *rcache, void *arg,
                             ucs_rcache_region_t *region) noexcept;
#endif
    static void rcache_dump(void *ctx, ucs_rcache_t *rcache, ucs_rcache_region_t *region,
                            char *buf, size_t max) noexcept;
    static const ucs_rcache_ops_t rcache_ops;

    std::unique_ptr<tb::device> dev_;
    std::vector<tb::link_info> links_;
    ucs_rcache_t *rcache_ = nullptr;
    ucs_linear_func_t reg_cost_{};
};

// The key of a registration (0 for a null handle: no region).
inline uint64_t key_of_memh(uct_mem_h h) noexcept
{
    return h ? static_cast<const memh *>(h)->key : 0;
}

// UCT access flags as tb's.
uint32_t access_of(unsigned uct_flags) noexcept;

}  // namespace tb_uct
