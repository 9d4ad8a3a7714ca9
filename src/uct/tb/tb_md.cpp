// SPDX-License-Identifier: BSD-2-Clause
#include "tb_md.hpp"

#include <sys/mman.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <exception>

extern "C" {
#include <ucm/api/ucm.h>
#include <ucs/sys/string.h>
#include <ucs/sys/sys.h>
#include <ucs/sys/topo/base/topo.h>
#include <ucs/time/time.h>
}

namespace tb_uct {

namespace {

// The software device's options, from UCX's configuration only.
tb::open_options options_of(const uct_tb_md_config_t &c)
{
    tb::open_options o;
    o.kind = c.device;
    o.fabric = c.fabric;
    o.max_mr = c.max_mr;
    o.soft.loss = c.soft_loss;
    o.soft.dup = c.soft_dup;
    o.soft.reorder = c.soft_reorder;
    o.soft.delay_us = c.soft_delay_us;
    o.soft.rate_mbps = c.soft_rate_mbps;
    o.soft.latency_ns = c.soft_latency_ns;
    o.soft.seed = c.soft_seed;
    o.soft.ring_slots = c.soft_slots;
    return o;
}

}  // namespace

const ucs_rcache_ops_t md_impl::rcache_ops = {
    md_impl::rcache_reg,
    md_impl::rcache_dereg,
#ifdef TB_UCX_RCACHE_OPS_MERGE
    md_impl::rcache_merge,
#endif
    md_impl::rcache_dump,
};

md_impl::md_impl(const uct_tb_md_config_t &config)
{
    tb::open_options o = options_of(config);
    // The software device is a test and demo fabric: only when asked for,
    // never in place of a missing module.
    if (o.kind == "auto") {
        if (tb::resolve_kind(o.kind) != "kernel")
            return;
        o.kind = "kernel";
    }
    dev_ = tb::device::open(o);
    links_ = dev_->links();
    bool kernel = dev_->info().kind == "kernel";
    // Without the cache: a table entry (soft), or pinning (kernel, about
    // 0.1 us a page).
    reg_cost_ = ucs_linear_func_make(kernel ? 1e-6 : 1e-7, kernel ? 2.5e-11 : 0);
    if (config.rcache_enable == UCS_NO)
        return;
    ucs_rcache_params_t rp;
#ifdef TB_UCX_RCACHE_CONFIG_UCS
    ucs_rcache_set_params(&rp, &config.rcache);
    // "auto": UCX 1.13's default, what a lookup costs.
    const double overhead = config.rcache.overhead == UCS_TIME_AUTO
                                ? 180e-9
                                : ucs_time_to_sec(config.rcache.overhead);
#else
    uct_md_set_rcache_params(&rp, &config.rcache);
    const double overhead = uct_md_rcache_overhead(&config.rcache);
#endif
#ifndef TB_UCX_RCACHE_GET_ALIGNMENT
    rp.max_alignment = ucs_get_page_size();
#endif
    rp.region_struct_size = sizeof(rcache_region);
    rp.ucm_events = UCM_EVENT_VM_UNMAPPED;
    rp.context = this;
    rp.ops = &rcache_ops;
    if (ucs_rcache_create(&rp, "tb", ucs_stats_get_root(), &rcache_) == UCS_OK) {
        reg_cost_ = ucs_linear_func_make(overhead, 0);
        return;
    }
    rcache_ = nullptr;
    if (config.rcache_enable == UCS_YES)
        throw tb::error(ENOMEM, "cannot create the registration cache (UCX_TB_RCACHE=y)");
    ucs_debug("tb: no registration cache: registering every time");
}

md_impl::~md_impl()
{
    if (rcache_)
        ucs_rcache_destroy(rcache_);
}

uint32_t access_of(unsigned uct_flags) noexcept
{
    // Local access to one's own memory is always granted.
    uint32_t a = TBRDMA_ACCESS_LOCAL;
    if (uct_flags & UCT_MD_MEM_ACCESS_REMOTE_PUT)
        a |= TBRDMA_ACCESS_REMOTE_WRITE;
    if (uct_flags & UCT_MD_MEM_ACCESS_REMOTE_GET)
        a |= TBRDMA_ACCESS_REMOTE_READ;
    if (uct_flags & UCT_MD_MEM_ACCESS_REMOTE_ATOMIC)
        a |= TBRDMA_ACCESS_REMOTE_ATOMIC;
    return a;
}

memh *md_impl::reg(void *addr, size_t length, uint32_t access)
{
    if (rcache_) {
        ucs_rcache_region_t *r;
#ifdef TB_UCX_RCACHE_GET_ALIGNMENT
        ucs_status_t st = ucs_rcache_get(rcache_, addr, length, ucs_get_page_size(),
                                         PROT_READ | PROT_WRITE, &access, &r);
#else
        ucs_status_t st = ucs_rcache_get(rcache_, addr, length, PROT_READ | PROT_WRITE,
                                         &access, &r);
#endif
        if (st != UCS_OK)
            throw tb::error(st == UCS_ERR_NO_MEMORY ? ENOMEM : EFAULT,
                            std::string("registration cache: ") + ucs_status_string(st));
        auto *region = ucs_derived_of(r, rcache_region);
        if ((region->mh.access & access) == access)
            return &region->mh;
        // Cached with fewer rights than asked for: a registration of its own.
        ucs_rcache_region_put(rcache_, r);
    }
    auto mh = std::make_unique<memh>();
    mh->key = dev_->reg_mr(addr, length, access);
    mh->access = access;
    mh->cached = false;
    return mh.release();
}

namespace {

void invalidated(void *arg) noexcept
{
    uct_invoke_completion(static_cast<uct_completion_t *>(arg), UCS_OK);
}

}  // namespace

void md_impl::dereg(memh *mh, uct_completion_t *comp) noexcept
{
    if (mh->cached) {
        // The cache keeps the region for its next user unless it must go:
        // then the key dies with the last user, and comp follows.
        auto *region = ucs_container_of(mh, rcache_region, mh);
        if (comp)
            ucs_rcache_region_invalidate(rcache_, &region->super, invalidated, comp);
        ucs_rcache_region_put(rcache_, &region->super);
        return;
    }
    dev_->dereg_mr(mh->key);
    delete mh;
    if (comp)
        uct_invoke_completion(comp, UCS_OK);
}

memh *md_impl::alloc(void **addr, size_t *length, bool fixed, uint32_t access)
{
    const size_t page = ucs_get_page_size();
    size_t len = ((*length ? *length : 1) + page - 1) & ~(page - 1);
    void *p = ::mmap(*addr, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | (fixed ? MAP_FIXED_NOREPLACE : 0), -1, 0);
    if (p == MAP_FAILED)
        throw tb::error(errno, std::string("mmap of ") + std::to_string(len) +
                                   " bytes: " + std::strerror(errno));
    try {
        auto mh = std::make_unique<memh>();
        mh->key = dev_->reg_mr(p, len, access);
        mh->access = access;
        mh->cached = false;
        mh->mapped = p;
        mh->mapped_len = len;
        *addr = p;
        *length = len;
        return mh.release();
    } catch (...) {
        ::munmap(p, len);
        throw;
    }
}

void md_impl::free(memh *mh) noexcept
{
    dev_->dereg_mr(mh->key);
    ::munmap(mh->mapped, mh->mapped_len);
    delete mh;
}

ucs_status_t md_impl::rcache_reg(void *ctx, ucs_rcache_t *, void *arg, ucs_rcache_region_t *r,
                                 uint16_t flags) noexcept
{
    auto *self = static_cast<md_impl *>(ctx);
    auto *region = ucs_derived_of(r, rcache_region);
    uint32_t access = *static_cast<const uint32_t *>(arg);
    try {
        region->mh.key = self->dev_->reg_mr(reinterpret_cast<void *>(r->super.start),
                                            r->super.end - r->super.start, access);
    } catch (const tb::error &e) {
        ucs_log(flags & UCS_RCACHE_MEM_REG_HIDE_ERRORS ? UCS_LOG_LEVEL_DEBUG
                                                       : UCS_LOG_LEVEL_ERROR,
                "tb: cannot register %p length %zu: %s",
                reinterpret_cast<void *>(r->super.start),
                static_cast<size_t>(r->super.end - r->super.start), e.what());
        return e.code() == ENOMEM || e.code() == ENOSPC ? UCS_ERR_NO_MEMORY
                                                        : UCS_ERR_IO_ERROR;
    } catch (...) {
        return UCS_ERR_NO_MEMORY;
    }
    region->mh.access = access;
    region->mh.cached = true;
    return UCS_OK;
}

void md_impl::rcache_dereg(void *ctx, ucs_rcache_t *, ucs_rcache_region_t *r) noexcept
{
    static_cast<md_impl *>(ctx)->dev_->dereg_mr(ucs_derived_of(r, rcache_region)->mh.key);
}

#ifdef TB_UCX_RCACHE_OPS_MERGE
void md_impl::rcache_merge(void *, ucs_rcache_t *, void *arg, ucs_rcache_region_t *r) noexcept
{
    *static_cast<uint32_t *>(arg) |= ucs_derived_of(r, rcache_region)->mh.access;
}
#endif

void md_impl::rcache_dump(void *, ucs_rcache_t *, ucs_rcache_region_t *r, char *buf,
                          size_t max) noexcept
{
    const memh &mh = ucs_derived_of(r, rcache_region)->mh;
    std::snprintf(buf, max, "key 0x%" PRIx64 " access 0x%x", mh.key, mh.access);
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

extern "C" ucs_status_t uct_tb_md_query(uct_md_h md, uct_tb_md_attr_t *attr)
{
    md_impl &impl = md_impl::of(md);
#ifdef TB_UCX_MD_QUERY_V2
    const uint64_t asked = attr->field_mask;  // what UCX copies out
    std::memset(attr, 0, sizeof(*attr));
    attr->field_mask = asked;
#ifdef TB_UCX_MD_BASE_QUERY
    uct_md_base_md_query(attr);
#endif
    uct_tb_md_attr_t &cap = *attr;  // the capabilities are the attributes' own
#else
    std::memset(attr, 0, sizeof(*attr));
    auto &cap = attr->cap;
#endif
    if (impl.has_dev()) {
        cap.flags = UCT_MD_FLAG_REG | UCT_MD_FLAG_ALLOC | UCT_MD_FLAG_NEED_MEMH |
                    UCT_MD_FLAG_NEED_RKEY | UCT_MD_FLAG_INVALIDATE;
#ifdef TB_UCX_MD_FLAG_INVALIDATE_RMA
        // An invalidated key stops every remote access: puts, gets, atomics.
        cap.flags |= UCT_MD_FLAG_INVALIDATE_RMA | UCT_MD_FLAG_INVALIDATE_AMO;
#endif
        cap.max_alloc = TBRDMA_XFER_MAX;
        cap.reg_mem_types = UCS_BIT(UCS_MEMORY_TYPE_HOST);
        cap.alloc_mem_types = UCS_BIT(UCS_MEMORY_TYPE_HOST);
    }
    cap.max_reg = TBRDMA_XFER_MAX;
    cap.access_mem_types = UCS_BIT(UCS_MEMORY_TYPE_HOST);
    attr->reg_cost = impl.reg_cost();
    ucs_strncpy_zero(attr->component_name, UCT_TB_NAME, sizeof(attr->component_name));
    attr->rkey_packed_size = sizeof(uint64_t);
    UCS_CPU_ZERO(&attr->local_cpus);
    for (int i = 0; i < UCS_CPU_SETSIZE; i++)
        UCS_CPU_SET(i, &attr->local_cpus);
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_md_mem_reg(uct_md_h md, void *address, size_t length,
                                          uct_tb_mem_reg_arg_t reg, uct_mem_h *memh_p)
{
#ifdef TB_UCX_MD_MEM_REG_PARAMS
    const unsigned flags = UCT_MD_MEM_REG_FIELD_VALUE(reg, flags, FIELD_FLAGS, 0);
#else
    const unsigned flags = reg;
#endif
    md_impl &impl = md_impl::of(md);
    if (!impl.has_dev())
        return UCS_ERR_UNSUPPORTED;
    try {
        *memh_p = impl.reg(address, length, tb_uct::access_of(flags));
        return UCS_OK;
    } catch (const tb::error &e) {
        ucs_log(uct_md_reg_log_lvl(flags), "tb: cannot register %p length %zu: %s", address,
                length, e.what());
        return e.code() == ENOMEM || e.code() == ENOSPC ? UCS_ERR_NO_MEMORY
                                                        : UCS_ERR_IO_ERROR;
    } catch (...) {
        return UCS_ERR_NO_MEMORY;
    }
}

extern "C" ucs_status_t uct_tb_md_mem_alloc(uct_md_h md, size_t *length_p, void **address_p,
                                            ucs_memory_type_t mem_type, unsigned flags,
                                            const char *alloc_name, uct_mem_h *memh_p)
{
    md_impl &impl = md_impl::of(md);
    if (!impl.has_dev() || mem_type != UCS_MEMORY_TYPE_HOST)
        return UCS_ERR_UNSUPPORTED;
    try {
        *memh_p = impl.alloc(address_p, length_p, flags & UCT_MD_MEM_FLAG_FIXED,
                             tb_uct::access_of(flags));
        return UCS_OK;
    } catch (const tb::error &e) {
        ucs_log(uct_md_reg_log_lvl(flags), "tb: cannot allocate %zu bytes for %s: %s",
                *length_p, alloc_name, e.what());
        return e.code() == ENOMEM || e.code() == ENOSPC ? UCS_ERR_NO_MEMORY
                                                        : UCS_ERR_IO_ERROR;
    } catch (...) {
        return UCS_ERR_NO_MEMORY;
    }
}

extern "C" ucs_status_t uct_tb_md_mem_free(uct_md_h md, uct_mem_h memh)
{
    auto *mh = static_cast<tb_uct::memh *>(memh);
    if (!mh || !mh->mapped)
        return UCS_ERR_INVALID_PARAM;
    md_impl::of(md).free(mh);
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_md_mem_dereg(uct_md_h md, const uct_md_mem_dereg_params_t *params)
{
    UCT_MD_MEM_DEREG_CHECK_PARAMS(params, 1);
    if (static_cast<tb_uct::memh *>(params->memh)->mapped)
        return UCS_ERR_INVALID_PARAM;  // allocated here: uct_md_mem_free
    bool invalidate = UCT_MD_MEM_DEREG_FIELD_VALUE(params, flags, FIELD_FLAGS, 0) &
                      UCT_MD_MEM_DEREG_FLAG_INVALIDATE;
    md_impl::of(md).dereg(static_cast<tb_uct::memh *>(params->memh),
                          invalidate ? params->comp : nullptr);
    return UCS_OK;
}

#ifdef TB_UCX_MD_MKEY_PACK_RANGE
extern "C" ucs_status_t uct_tb_md_mkey_pack(uct_md_h, uct_mem_h memh, void *, size_t,
                                            const uct_md_mkey_pack_params_t *, void *rkey_buffer)
#else
extern "C" ucs_status_t uct_tb_md_mkey_pack(uct_md_h, uct_mem_h memh,
                                            const uct_md_mkey_pack_params_t *, void *rkey_buffer)
#endif
{
    uint64_t key = tb_uct::key_of_memh(memh);
    std::memcpy(rkey_buffer, &key, sizeof(key));
    return UCS_OK;
}

extern "C" ucs_status_t uct_tb_rkey_unpack(uct_component_t *, const void *rkey_buffer,
                                           uct_rkey_t *rkey_p, void **handle_p)
{
    uint64_t key;
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
    md_impl &impl = md_impl::of(md);
    const auto &links = impl.links();
    *devices_p = nullptr;
    *num_devices_p = 0;
    if (links.empty())
        return UCS_OK;
    // Every interface is a context: offer no device UCP could not open
    // (a failed interface fails the whole worker).
    try {
        if (!impl.dev().contexts_free()) {
            ucs_diag("tb: no context left on the %s device (module parameter max_contexts)",
                     impl.dev().info().kind.c_str());
            return UCS_OK;
        }
    } catch (const std::exception &e) {
        ucs_diag("tb: %s", e.what());
        return UCS_OK;
    }
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
