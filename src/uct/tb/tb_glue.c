/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The C side of the tb transport: configuration tables, the UCS classes
 * of the interface and endpoint, UCX's ops tables and the registration of
 * the component. The work itself is done in C++ (tb_md.cpp, tb_iface.cpp,
 * tb_ep.cpp); this file only wires it into UCX's C structures.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "uct_tb.h"

#include <stdio.h>
#include <ucs/sys/stubs.h>

static ucs_config_field_t uct_tb_md_config_table[] = {
    {"", "", NULL, ucs_offsetof(uct_tb_md_config_t, super),
     UCS_CONFIG_TYPE_TABLE(uct_md_config_table)},

    {"DEVICE", "auto",
     "What carries tb: \"kernel\" (the tbrdma module, /dev/tbrdma), \"soft\"\n"
     "(the software link between processes on this machine), or \"auto\"\n"
     "(kernel when /dev/tbrdma exists, else no tb device at all).",
     ucs_offsetof(uct_tb_md_config_t, device), UCS_CONFIG_TYPE_STRING},

    {"MAX_MR", "16384",
     "Most memory regions registered at once (the kernel device's own limit,\n"
     "its module parameter max_mr, may be lower).",
     ucs_offsetof(uct_tb_md_config_t, max_mr), UCS_CONFIG_TYPE_UINT},

    {"RCACHE", "try",
     "Keep registrations in a registration cache, so that memory registered\n"
     "again (rendezvous buffers) is not pinned again.",
     ucs_offsetof(uct_tb_md_config_t, rcache_enable), UCS_CONFIG_TYPE_TERNARY},

    {"", "", NULL, ucs_offsetof(uct_tb_md_config_t, rcache),
     UCS_CONFIG_TYPE_TABLE(UCT_TB_RCACHE_CONFIG_TABLE)},

    {"SOFT_FABRIC", "soft0",
     "Name of the software fabric: processes using the same name reach each\n"
     "other; it is also the name of its tb device.",
     ucs_offsetof(uct_tb_md_config_t, fabric), UCS_CONFIG_TYPE_STRING},

    {"SOFT_LOSS", "0",
     "Software link: probability that a frame is lost (0 to 1).",
     ucs_offsetof(uct_tb_md_config_t, soft_loss), UCS_CONFIG_TYPE_DOUBLE},

    {"SOFT_DUP", "0",
     "Software link: probability that a frame arrives twice (0 to 1).",
     ucs_offsetof(uct_tb_md_config_t, soft_dup), UCS_CONFIG_TYPE_DOUBLE},

    {"SOFT_REORDER", "0",
     "Software link: probability that a frame is held back behind later\n"
     "ones (0 to 1).",
     ucs_offsetof(uct_tb_md_config_t, soft_reorder), UCS_CONFIG_TYPE_DOUBLE},

    {"SOFT_DELAY_US", "0",
     "Software link: extra delay of every frame, in microseconds.",
     ucs_offsetof(uct_tb_md_config_t, soft_delay_us), UCS_CONFIG_TYPE_UINT},

    {"SOFT_RATE_MBPS", "0",
     "Software link: serialisation rate in Mbit/s (0: unlimited; the device\n"
     "then reports 40000).",
     ucs_offsetof(uct_tb_md_config_t, soft_rate_mbps), UCS_CONFIG_TYPE_ULONG},

    {"SOFT_LATENCY_NS", "0",
     "Software link: one-way latency of every frame, in nanoseconds.",
     ucs_offsetof(uct_tb_md_config_t, soft_latency_ns), UCS_CONFIG_TYPE_UINT},

    {"SOFT_SEED", "0",
     "Software link: seed of the fault model (0: random).",
     ucs_offsetof(uct_tb_md_config_t, soft_seed), UCS_CONFIG_TYPE_ULONG},

    {"SOFT_SLOTS", "64",
     "Software link: frames per cable direction (a power of two).",
     ucs_offsetof(uct_tb_md_config_t, soft_slots), UCS_CONFIG_TYPE_UINT},

    {NULL}
};

static ucs_config_field_t uct_tb_iface_config_table[] = {
    {"", "", NULL, ucs_offsetof(uct_tb_iface_config_t, super),
     UCS_CONFIG_TYPE_TABLE(uct_iface_config_table)},

    {"TX_QUEUE_LEN", "256",
     "Operations in flight per endpoint.",
     ucs_offsetof(uct_tb_iface_config_t, tx_queue_len), UCS_CONFIG_TYPE_UINT},

    {"CQ_LEN", "4096",
     "Operations in flight per interface (size of its completion queue).",
     ucs_offsetof(uct_tb_iface_config_t, cq_len), UCS_CONFIG_TYPE_UINT},

    {"RX_QUEUE_LEN", "256",
     "Received active messages held until progress hands them to UCX.",
     ucs_offsetof(uct_tb_iface_config_t, rx_queue_len), UCS_CONFIG_TYPE_UINT},

    {"SEG_SIZE", "8k",
     "Size of the buffers of put and get bcopy; active messages are further\n"
     "limited to one frame (3992 bytes).",
     ucs_offsetof(uct_tb_iface_config_t, seg_size), UCS_CONFIG_TYPE_MEMUNITS},

    {"TX_BUFS", "256",
     "Number of bcopy buffers per interface.",
     ucs_offsetof(uct_tb_iface_config_t, tx_bufs), UCS_CONFIG_TYPE_UINT},

    {"BW", "auto",
     "Bandwidth of the link in each direction, shared by every process that\n"
     "uses it; auto: the link's rate less the frame headers.",
     ucs_offsetof(uct_tb_iface_config_t, bandwidth), UCS_CONFIG_TYPE_BW},

    {"LATENCY", "auto",
     "One-way latency of the link; auto: half the least round trip the link\n"
     "has measured since it came up, or its nominal latency before the first\n"
     "measurement.",
     ucs_offsetof(uct_tb_iface_config_t, latency), UCS_CONFIG_TYPE_TIME_UNITS},

    {"OVERHEAD", "auto",
     "Processor time to post one operation; auto: measured for the kernel\n"
     "device (a system call) when the memory domain opens.",
     ucs_offsetof(uct_tb_iface_config_t, overhead), UCS_CONFIG_TYPE_TIME_UNITS},

    {NULL}
};

static UCS_CLASS_INIT_FUNC(uct_tb_ep_t, const uct_ep_params_t *params)
{
    uct_tb_iface_t *iface = ucs_derived_of(params->iface, uct_tb_iface_t);

    UCS_CLASS_CALL_SUPER_INIT(uct_base_ep_t, &iface->super);
    self->iface = iface;
    return uct_tb_ep_init_impl(self, params);
}

static UCS_CLASS_CLEANUP_FUNC(uct_tb_ep_t)
{
    uct_tb_ep_cleanup_impl(self);
}

UCS_CLASS_DEFINE(uct_tb_ep_t, uct_base_ep_t);
static UCS_CLASS_DEFINE_NEW_FUNC(uct_tb_ep_t, uct_ep_t, const uct_ep_params_t*);
static UCS_CLASS_DEFINE_DELETE_FUNC(uct_tb_ep_t, uct_ep_t);

#ifdef TB_UCX_IFACE_REACHABLE_V2
static int uct_tb_iface_is_reachable_v2(const uct_iface_h iface,
                                        const uct_iface_is_reachable_params_t *params)
{
    const uct_device_addr_t *dev_addr =
        params->field_mask & UCT_IFACE_IS_REACHABLE_FIELD_DEVICE_ADDR ?
        params->device_addr : NULL;
    const uct_iface_addr_t *iface_addr =
        params->field_mask & UCT_IFACE_IS_REACHABLE_FIELD_IFACE_ADDR ?
        params->iface_addr : NULL;

    if (!uct_tb_iface_is_reachable(iface, dev_addr, iface_addr)) {
        return 0;
    }
#ifdef TB_UCX_IFACE_SCOPE_REACHABLE
    return uct_iface_scope_is_reachable(iface, params);
#else
    return 1;
#endif
}
#endif

#ifdef TB_UCX_EP_IS_CONNECTED
/* Its peer is that interface: reached over this link, the same context. */
static int uct_tb_ep_is_connected(uct_ep_h tl_ep,
                                  const uct_ep_is_connected_params_t *params)
{
    const uct_tb_ep_t *ep = ucs_derived_of(tl_ep, uct_tb_ep_t);
    const uct_tb_iface_addr_t *addr;

    if (!(params->field_mask & UCT_EP_IS_CONNECTED_FIELD_DEVICE_ADDR) ||
        !(params->field_mask & UCT_EP_IS_CONNECTED_FIELD_IFACE_ADDR)) {
        return 0;
    }
    addr = (const uct_tb_iface_addr_t *)params->iface_addr;
    return addr->ctx_id == ep->remote_ctx &&
           uct_tb_iface_is_reachable(tl_ep->iface, params->device_addr,
                                     params->iface_addr);
}
#endif

static uct_iface_internal_ops_t uct_tb_iface_internal_ops = {
    .iface_estimate_perf   = uct_tb_iface_estimate_perf,
    .iface_vfs_refresh     = (uct_iface_vfs_refresh_func_t)ucs_empty_function,
    .ep_query              = (uct_ep_query_func_t)ucs_empty_function_return_unsupported,
    .ep_invalidate         = (uct_ep_invalidate_func_t)ucs_empty_function_return_unsupported,
#ifdef TB_UCX_EP_CONNECT_TO_EP_V2
    /* Endpoints connect to an interface: there is no endpoint address. */
    .ep_connect_to_ep_v2   = (uct_ep_connect_to_ep_v2_func_t)ucs_empty_function_return_unsupported,
#endif
#ifdef TB_UCX_IFACE_REACHABLE_V2
    .iface_is_reachable_v2 = uct_tb_iface_is_reachable_v2,
#endif
#ifdef TB_UCX_EP_IS_CONNECTED
    .ep_is_connected       = uct_tb_ep_is_connected,
#endif
};

static UCS_CLASS_INIT_FUNC(uct_tb_iface_t, uct_md_h md, uct_worker_h worker,
                           const uct_iface_params_t *params,
                           const uct_iface_config_t *tl_config)
{
    const uct_tb_iface_config_t *config =
        ucs_derived_of(tl_config, uct_tb_iface_config_t);

    UCS_CLASS_CALL_SUPER_INIT(uct_base_iface_t, &uct_tb_iface_ops,
                              &uct_tb_iface_internal_ops, md, worker, params,
                              tl_config
                              UCS_STATS_ARG(params->stats_root)
                              UCS_STATS_ARG(UCT_TB_NAME));
    return uct_tb_iface_init_impl(self, params, config);
}

static UCS_CLASS_CLEANUP_FUNC(uct_tb_iface_t)
{
    uct_base_iface_progress_disable(&self->super.super,
                                    UCT_PROGRESS_SEND | UCT_PROGRESS_RECV);
    uct_tb_iface_cleanup_impl(self);
}

UCS_CLASS_DEFINE(uct_tb_iface_t, uct_base_iface_t);
static UCS_CLASS_DEFINE_NEW_FUNC(uct_tb_iface_t, uct_iface_t, uct_md_h,
                                 uct_worker_h, const uct_iface_params_t*,
                                 const uct_iface_config_t*);
static UCS_CLASS_DEFINE_DELETE_FUNC(uct_tb_iface_t, uct_iface_t);

uct_iface_ops_t uct_tb_iface_ops = {
    .ep_put_short             = uct_tb_ep_put_short,
    .ep_put_bcopy             = uct_tb_ep_put_bcopy,
    .ep_put_zcopy             = uct_tb_ep_put_zcopy,
    .ep_get_bcopy             = uct_tb_ep_get_bcopy,
    .ep_get_zcopy             = uct_tb_ep_get_zcopy,
    .ep_am_short              = uct_tb_ep_am_short,
    .ep_am_short_iov          = uct_tb_ep_am_short_iov,
    .ep_am_bcopy              = uct_tb_ep_am_bcopy,
    .ep_am_zcopy              = uct_tb_ep_am_zcopy,
    .ep_atomic_cswap64        = uct_tb_ep_atomic_cswap64,
    .ep_atomic_cswap32        = uct_tb_ep_atomic_cswap32,
    .ep_atomic32_post         = uct_tb_ep_atomic32_post,
    .ep_atomic64_post         = uct_tb_ep_atomic64_post,
    .ep_atomic32_fetch        = uct_tb_ep_atomic32_fetch,
    .ep_atomic64_fetch        = uct_tb_ep_atomic64_fetch,
    .ep_pending_add           = uct_tb_ep_pending_add,
    .ep_pending_purge         = uct_tb_ep_pending_purge,
    .ep_flush                 = uct_tb_ep_flush,
    .ep_fence                 = uct_tb_ep_fence,
    .ep_check                 = uct_tb_ep_check,
    .ep_create                = UCS_CLASS_NEW_FUNC_NAME(uct_tb_ep_t),
    .ep_destroy               = UCS_CLASS_DELETE_FUNC_NAME(uct_tb_ep_t),
    .iface_flush              = uct_tb_iface_flush,
    .iface_fence              = uct_tb_iface_fence,
    .iface_progress_enable    = uct_base_iface_progress_enable,
    .iface_progress_disable   = uct_base_iface_progress_disable,
    .iface_progress           = uct_tb_iface_progress,
    .iface_event_fd_get       = uct_tb_iface_event_fd_get,
    .iface_event_arm          = uct_tb_iface_event_arm,
    .iface_close              = UCS_CLASS_DELETE_FUNC_NAME(uct_tb_iface_t),
    .iface_query              = uct_tb_iface_query,
    .iface_get_device_address = uct_tb_iface_get_device_address,
    .iface_get_address        = uct_tb_iface_get_address,
    .iface_is_reachable       = uct_tb_iface_is_reachable
};

static void uct_tb_md_close_cb(uct_md_h md);

static uct_md_ops_t uct_tb_md_ops = {
    .close                  = uct_tb_md_close_cb,
    .query                  = uct_tb_md_query,
    .mem_alloc              = uct_tb_md_mem_alloc,
    .mem_free               = uct_tb_md_mem_free,
    .mem_advise             = (uct_md_mem_advise_func_t)ucs_empty_function_return_unsupported,
    .mem_reg                = uct_tb_md_mem_reg,
    .mem_dereg              = uct_tb_md_mem_dereg,
    .mem_query              = (uct_md_mem_query_func_t)ucs_empty_function_return_unsupported,
    .mkey_pack              = uct_tb_md_mkey_pack,
#ifdef TB_UCX_MD_MEM_ATTACH
    .mem_attach             = (uct_md_mem_attach_func_t)ucs_empty_function_return_unsupported,
#endif
#ifdef TB_UCX_MD_SOCKADDR
    .is_sockaddr_accessible = (uct_md_is_sockaddr_accessible_func_t)ucs_empty_function_return_zero_int,
#endif
    .detect_memory_type     = (uct_md_detect_memory_type_func_t)ucs_empty_function_return_unsupported
};

static void uct_tb_md_close_cb(uct_md_h md)
{
    uct_tb_md_close_impl(ucs_derived_of(md, uct_tb_md_t));
    ucs_free(md);
}

static ucs_status_t uct_tb_md_open(uct_component_t *component,
                                   const char *md_name,
                                   const uct_md_config_t *config,
                                   uct_md_h *md_p)
{
    uct_tb_md_t *md = ucs_calloc(1, sizeof(*md), "uct_tb_md");
    ucs_status_t status;

    (void)component;
    (void)md_name;
    if (md == NULL) {
        return UCS_ERR_NO_MEMORY;
    }
    md->super.ops       = &uct_tb_md_ops;
    md->super.component = &uct_tb_component;
    status = uct_tb_md_open_impl(md, ucs_derived_of(config, uct_tb_md_config_t));
    if (status != UCS_OK) {
        ucs_free(md);
        return status;
    }
    *md_p = &md->super;
    return UCS_OK;
}

uct_component_t uct_tb_component = {
    .name               = UCT_TB_NAME,
    .query_md_resources = uct_md_query_single_md_resource,
    .md_open            = uct_tb_md_open,
    .cm_open            = (uct_component_cm_open_func_t)ucs_empty_function_return_unsupported,
    .rkey_unpack        = uct_tb_rkey_unpack,
    .rkey_ptr           = (uct_component_rkey_ptr_func_t)ucs_empty_function_return_unsupported,
    .rkey_release       = uct_tb_rkey_release,
    .md_config          = {
        .name           = "TB memory domain",
        .prefix         = "TB_",
        .table          = uct_tb_md_config_table,
        .size           = sizeof(uct_tb_md_config_t),
    },
    .cm_config          = UCS_CONFIG_EMPTY_GLOBAL_LIST_ENTRY,
    .tl_list            = UCT_COMPONENT_TL_LIST_INITIALIZER(&uct_tb_component),
    .flags              = 0,
    .md_vfs_init        = (uct_component_md_vfs_init_func_t)ucs_empty_function
};

static uct_tl_t uct_tb_tl = {
    .name          = UCT_TB_NAME,
    .query_devices = uct_tb_query_devices,
    .iface_open    = UCS_CLASS_NEW_FUNC_NAME(uct_tb_iface_t),
    .config        = {
        .name      = "TB transport",
        .prefix    = "TB_",
        .table     = uct_tb_iface_config_table,
        .size      = sizeof(uct_tb_iface_config_t),
    }
};

/*
 * Struct layouts of the libuct we run with must be the ones we were built
 * against: a wrong UCX source or config.h compiles fine and then corrupts
 * memory. The class descriptors libuct exports carry its sizes.
 */
/* libuct defines it; its header declares it under another name. */
extern ucs_class_t uct_iface_t_class;

#ifndef UCT_TB_LAYOUT_SKEW
#define UCT_TB_LAYOUT_SKEW 0 /* tests build a copy that expects other sizes */
#endif

static int uct_tb_layout_matches(void)
{
    struct {
        const char *name;
        size_t      built, running;
    } checks[] = {
        {"uct_iface_t", sizeof(uct_iface_t), uct_iface_t_class.size},
        {"uct_base_iface_t", sizeof(uct_base_iface_t) + UCT_TB_LAYOUT_SKEW,
         uct_base_iface_t_class.size},
        {"uct_ep_t", sizeof(uct_ep_t), uct_ep_t_class.size},
        {"uct_base_ep_t", sizeof(uct_base_ep_t), uct_base_ep_t_class.size},
    };
    int ok = 1;
    size_t i;

    for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (checks[i].built != checks[i].running) {
            fprintf(stderr,
                    "[tb] not loading the tb transport: it was built for "
                    "another UCX (%s is %zu bytes here, %zu in the build; "
                    "rebuild tb against the source and config.h of the "
                    "installed UCX %s)\n", checks[i].name, checks[i].running,
                    checks[i].built, UCT_TB_UCX_VERSION);
            ok = 0;
        }
    }
    return ok;
}

static int uct_tb_registered;

static void UCS_F_CTOR uct_tb_init(void)
{
    uct_component_t *component;

    /* Loaded twice (LD_PRELOAD and a module path, or two copies)? */
    ucs_list_for_each(component, &uct_components_list, list) {
        if (!strcmp(component->name, UCT_TB_NAME)) {
            return;
        }
    }
    if (!uct_tb_layout_matches()) {
        return;
    }
    uct_component_register(&uct_tb_component);
    uct_tl_register(&uct_tb_component, &uct_tb_tl);
    uct_tb_registered = 1;
}

static void UCS_F_DTOR uct_tb_cleanup(void)
{
    if (!uct_tb_registered) {
        return;
    }
    uct_tl_unregister(&uct_tb_tl);
    uct_component_unregister(&uct_tb_component);
    ucs_list_del(&uct_tb_component.list);
    uct_tb_registered = 0;
}
