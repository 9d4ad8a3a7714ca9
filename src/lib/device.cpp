// SPDX-License-Identifier: BSD-2-Clause
//
// tb::device: option parsing and the choice between the two devices.
#include "tb/device.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "kernel_device.hpp"
#include "soft_device.hpp"

namespace tb {

error::error(int err, const std::string &what) : std::runtime_error(what), err_(err) {}

open_options open_options::from_env()
{
    open_options o;
    if (const char *v = std::getenv("TB_DEVICE"); v && *v)
        o.kind = v;
    if (const char *v = std::getenv("TB_SOFT_FABRIC"); v && *v)
        o.fabric = v;
    o.soft = soft_link_options::from_env();
    return o;
}

std::string resolve_kind(const std::string &kind)
{
    if (kind == "auto")
        return ::access("/dev/tbrdma", F_OK) == 0 ? "kernel" : "soft";
    if (kind == "soft" || kind == "kernel")
        return kind;
    throw error(EINVAL, "device kind '" + kind + "': use auto, soft or kernel (TB_DEVICE)");
}

std::unique_ptr<device> device::open(const open_options &opts)
{
    const std::string kind = resolve_kind(opts.kind);
    if (kind == "soft")
        return std::make_unique<soft_device>(opts);
    return std::make_unique<kernel_device>(opts);
}

}  // namespace tb
