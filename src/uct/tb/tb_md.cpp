// SPDX-License-Identifier: BSD-2-Clause
#include "tb_md.hpp"

#include <cstring>
#include <exception>

extern "C" {
#include <ucs/sys/string.h>
#include <ucs/sys/topo/base/topo.h>
}

namespace tb_uct {

md_impl::md_impl(const uct_tb_md_config_t &config)
{
    tb::open_options o = tb::open_options::from_env();
    o.kind = config.device;
    o.fabric = config.fabric;
    o.max_mr = config.max_mr;
    dev_ = tb::device::open(o);
    links_ = dev_->links();
}

const tb::link_info *md_impl::link_by_name(const char *name) const noexcept
{
    for (const auto &l : links_)
        if (l.name == name)
            return &l;
    return nullptr;
}

namespace {

// The controller's PCI address ("dddd:bb:dd.f") as UCX's system device,
// so UCP knows which NUMA node and which other devices are close.
ucs_sys_device_t sys_device_of(const tb::link_info &l) noexcept
{
    ucs_sys_bus_id_t bus{};
    unsigned dom, b, slot, fn;
    ucs_sys_device_t dev = UCS_SYS_DEVICE_ID_UNKNOWN;
    if (l.pci_addr.empty() ||
        std::sscanf(l.pci_addr.c_str(), "%x:%x:%x.%x", &dom, &b, &slot, &fn) != 4)
        return dev;
    bus.domain = static_cast<uint16_t>(dom);
    bus.bus = static_cast<uint8_t>(b);
    bus.slot = static_cast<uint8_t>(slot);
    bus.function = static_cast<uint8_t>(fn);
    if (ucs_topo_find_device_by_bus_id(&bus, &dev) != UCS_OK)
        return UCS_SYS_DEVICE_ID_UNKNOWN;
    return dev;
}

}  // namespace

}  // namespace tb_uct

using tb_uct::md_impl;

extern "C" ucs_status_t uct_tb_md_open_impl(uct_tb_md_t *md, const uct_tb_md_config_t *config)
{
    try {
        md->impl = new md_impl(*config);
        return UCS_OK;
    } catch (const tb::error &e) {
        ucs_error("tb: %s", e.what());
        return e.code() == ENOMEM ? UCS_ERR_NO_MEMORY : UCS_ERR_NO_DEVICE;
    } catch (const std::exception &e) {
        ucs_error("tb: cannot open the device: %s", e.what());
        return UCS_ERR_NO_DEVICE;
    }
}

extern "C" void uct_tb_md_close_impl(uct_tb_md_t *md)
{
    delete static_cast<md_impl *>(md->impl);
    md->impl = nullptr;
}

extern "C" ucs_status_t uct_tb_md_query(uct_md_h md, uct_md_attr_t *attr)
{
    std::memset(attr, 0, sizeof(*attr));
    attr->cap.flags = UCT_MD_FLAG_REG | UCT_MD_FLAG_NEED_MEMH | UCT_MD_FLAG_NEED_RKEY;
    attr->cap.max_reg = TBRDMA_XFER_MAX;
    attr->cap.reg_mem_types = UCS_BIT(UCS_MEMORY_TYPE_HOST);
    attr->cap.access_mem_types = UCS_BIT(UCS_MEMORY_TYPE_HOST);
    // Software device: a table entry. Kernel: pinning, about 0.1 us/page.
    bool kernel = md_impl::of(md).dev().info().kind == "kernel";
    attr->reg_cost = ucs_linear_func_make(kernel ? 1e-6 : 1e-7, kernel ? 2.5e-11 : 0);
    ucs_strncpy_zero(attr->component_name, UCT_TB_NAME, sizeof(attr->component_name));
    attr->rkey_packed_size = sizeof(uint32_t);
    UCS_CPU_ZERO(&attr->local_cpus);
    for (int i = 0; i < UCS_CPU_SETSIZE; i++)
        UCS_CPU_SET(i, &attr->local_cpus);
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_md_mem_reg(uct_md_h md, void *address, size_t length,
                                          unsigned flags, uct_mem_h *memh_p)
{
    try {
        uint32_t key = md_impl::of(md).dev().reg_mr(address, length, TBRDMA_ACCESS_ALL);
        *memh_p = tb_uct::memh_of_key(key);
        return UCS_OK;
    } catch (const tb::error &e) {
        ucs_log(flags & UCT_MD_MEM_FLAG_HIDE_ERRORS ? UCS_LOG_LEVEL_DEBUG : UCS_LOG_LEVEL_ERROR,
                "tb: cannot register %p length %zu: %s", address, length, e.what());
        return e.code() == ENOMEM || e.code() == ENOSPC ? UCS_ERR_NO_MEMORY
                                                        : UCS_ERR_IO_ERROR;
    } catch (...) {
        return UCS_ERR_NO_MEMORY;
    }
}

extern "C" ucs_status_t uct_tb_md_mem_dereg(uct_md_h md, const uct_md_mem_dereg_params_t *params)
{
    UCT_MD_MEM_DEREG_CHECK_PARAMS(params, 0);
    int rc = md_impl::of(md).dev().dereg_mr(tb_uct::key_of_memh(params->memh));
    return rc ? UCS_ERR_INVALID_PARAM : UCS_OK;
}

extern "C" ucs_status_t uct_tb_md_mkey_pack(uct_md_h, uct_mem_h memh,
                                            const uct_md_mkey_pack_params_t *, void *rkey_buffer)
{
    uint32_t key = tb_uct::key_of_memh(memh);
    std::memcpy(rkey_buffer, &key, sizeof(key));
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_rkey_unpack(uct_component_t *, const void *rkey_buffer,
                                           uct_rkey_t *rkey_p, void **handle_p)
{
    uint32_t key;
    std::memcpy(&key, rkey_buffer, sizeof(key));
    *rkey_p = key;
    *handle_p = nullptr;
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_rkey_release(uct_component_t *, uct_rkey_t, void *)
{
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_query_devices(uct_md_h md, uct_tl_device_resource_t **devices_p,
                                             unsigned *num_devices_p)
{
    const auto &links = md_impl::of(md).links();
    *devices_p = nullptr;
    *num_devices_p = 0;
    if (links.empty())
        return UCS_OK;
    // UCX frees this array with ucs_free().
    auto *devs = static_cast<uct_tl_device_resource_t *>(
        ucs_calloc(links.size(), sizeof(uct_tl_device_resource_t), "tb devices"));
    if (!devs)
        return UCS_ERR_NO_MEMORY;
    for (size_t i = 0; i < links.size(); i++) {
        ucs_strncpy_zero(devs[i].name, links[i].name.c_str(), sizeof(devs[i].name));
        devs[i].type = UCT_DEVICE_TYPE_NET;
        devs[i].sys_device = tb_uct::sys_device_of(links[i]);
    }
    *devices_p = devs;
    *num_devices_p = static_cast<unsigned>(links.size());
    return UCS_OK;
}
