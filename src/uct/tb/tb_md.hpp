// SPDX-License-Identifier: BSD-2-Clause
//
// The memory domain behind UCT's uct_tb_md_t: one tb device (protection
// domain) for all links, so one registration and one packed rkey serve
// every rail.
#pragma once

#include <memory>
#include <vector>

#include "tb/device.hpp"

extern "C" {
#include "uct_tb.h"
}

namespace tb_uct {

class md_impl {
public:
    explicit md_impl(const uct_tb_md_config_t &config);

    tb::device &dev() noexcept { return *dev_; }
    const std::vector<tb::link_info> &links() const noexcept { return links_; }
    const tb::link_info *link_by_name(const char *name) const noexcept;

    static md_impl &of(uct_md_h md) noexcept
    {
        return *static_cast<md_impl *>(ucs_derived_of(md, uct_tb_md_t)->impl);
    }

private:
    std::unique_ptr<tb::device> dev_;
    std::vector<tb::link_info> links_;
};

// A registration is its key; the handle UCX keeps is the key itself.
inline uct_mem_h memh_of_key(uint32_t key) noexcept
{
    return reinterpret_cast<uct_mem_h>(static_cast<uintptr_t>(key));
}

inline uint32_t key_of_memh(uct_mem_h memh) noexcept
{
    return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(memh));
}

}  // namespace tb_uct
