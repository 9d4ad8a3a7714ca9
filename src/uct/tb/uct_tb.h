/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The UCT transport "tb": the objects UCX sees, shared by the C glue
 * (tb_glue.c: registration, configuration and ops tables) and the C++
 * implementation (tb_md.cpp, tb_iface.cpp, tb_ep.cpp). These structs stay
 * plain C: UCX allocates, embeds and frees them.
 */
#ifndef UCT_TB_H
#define UCT_TB_H

#include <uct/base/uct_iface.h>
#include <uct/base/uct_md.h>
#include <ucs/datastruct/arbiter.h>
#include <ucs/datastruct/list.h>

/*
 * What differs between the UCX versions' internal APIs, as configure's
 * probes found it (UCX_API_CPPFLAGS): the registration cache's
 * configuration moved from UCT to UCS (TB_UCX_RCACHE_CONFIG_UCS); the
 * memory domain's query fills uct_md_attr_v2_t (TB_UCX_MD_QUERY_V2),
 * from uct_md_base_md_query() (TB_UCX_MD_BASE_QUERY), with flags for what
 * invalidation stops (TB_UCX_MD_FLAG_INVALIDATE_RMA); its
 * registration takes parameters (TB_UCX_MD_MEM_REG_PARAMS), its key
 * packing the address and length (TB_UCX_MD_MKEY_PACK_RANGE), and its
 * ops gained mem_attach (TB_UCX_MD_MEM_ATTACH) and lost
 * is_sockaddr_accessible (TB_UCX_MD_SOCKADDR); the interface's internal
 * ops gained ep_connect_to_ep_v2, iface_is_reachable_v2 (with its scope
 * check, TB_UCX_IFACE_SCOPE_REACHABLE) and ep_is_connected
 * (TB_UCX_EP_CONNECT_TO_EP_V2, TB_UCX_IFACE_REACHABLE_V2,
 * TB_UCX_EP_IS_CONNECTED); "auto" of a bandwidth became that of any
 * double.
 */
#ifdef TB_UCX_MD_QUERY_V2
typedef uct_md_attr_v2_t uct_tb_md_attr_t;
#else
typedef uct_md_attr_t uct_tb_md_attr_t;
#endif
#ifdef TB_UCX_MD_MEM_REG_PARAMS
typedef const uct_md_mem_reg_params_t *uct_tb_mem_reg_arg_t;
#else
typedef unsigned uct_tb_mem_reg_arg_t;
#endif
#ifdef TB_UCX_RCACHE_CONFIG_UCS
typedef ucs_rcache_config_t uct_tb_rcache_config_t;
#define UCT_TB_RCACHE_CONFIG_TABLE ucs_config_rcache_table
#else
typedef uct_md_rcache_config_t uct_tb_rcache_config_t;
#define UCT_TB_RCACHE_CONFIG_TABLE uct_md_config_rcache_table
#endif
#ifdef UCS_CONFIG_BW_AUTO
#define UCT_TB_BW_AUTO UCS_CONFIG_BW_AUTO
#else
#define UCT_TB_BW_AUTO UCS_CONFIG_DBL_AUTO
#endif

#define UCT_TB_NAME "tb"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uct_tb_md_config {
    uct_md_config_t        super;
    char                   *device;      /* auto, soft or kernel */
    unsigned               max_mr;
    int                    rcache_enable;
    uct_tb_rcache_config_t rcache;
    /* The software device's fabric and cable (tb::soft_link_options). */
    char                   *fabric;
    double                 soft_loss;
    double                 soft_dup;
    double                 soft_reorder;
    unsigned               soft_delay_us;
    unsigned long          soft_rate_mbps;
    unsigned               soft_latency_ns;
    unsigned long          soft_seed;
    unsigned               soft_slots;
} uct_tb_md_config_t;

typedef struct uct_tb_md {
    uct_md_t super;
    void     *impl;               /* tb_uct::md_impl */
} uct_tb_md_t;

typedef struct uct_tb_iface_config {
    uct_iface_config_t super;
    unsigned           tx_queue_len;  /* operations in flight per endpoint */
    unsigned           cq_len;        /* operations in flight per interface */
    unsigned           rx_queue_len;  /* received messages held */
    size_t             seg_size;      /* bcopy buffer size */
    unsigned           tx_bufs;       /* bcopy buffers */
    /* Performance model overrides; UCS_CONFIG_BW_AUTO / UCS_TIME_AUTO. */
    double             bandwidth;
    ucs_time_t         latency;
    ucs_time_t         overhead;
} uct_tb_iface_config_t;

typedef struct uct_tb_iface {
    uct_base_iface_t super;
    void             *impl;       /* tb_uct::iface_impl */
} uct_tb_iface_t;

typedef struct uct_tb_ep {
    uct_base_ep_t       super;
    uct_tb_iface_t      *iface;
    uint32_t            handle;       /* the device endpoint */
    uint32_t            remote_ctx;
    uint32_t            outstanding;  /* posted, not completed */
    uint32_t            posted;       /* operations posted so far */
    uint32_t            flushed;      /* posted count when the last FLUSH went */
    uint32_t            fence_beat;   /* the iface's beat when last fenced */
    uint8_t             failed;       /* its link or peer is gone */
    uint8_t             err_pending;  /* failure not yet reported */
    uint8_t             watched;      /* ep_check asked: its link is watched */
    uint8_t             full;         /* its own queue is full: pending waits */
    uint8_t             ping_due;     /* ep_check's ping is still to be posted */
    ucs_status_t        fail_status;  /* the one status of a failed endpoint */
    uint8_t             fail_cause;   /* the device's status that failed it */
    uct_completion_t    *failed_flush; /* flush waiting on a failed ep */
    ucs_list_link_t     failed_link;  /* in the iface's failures while err_pending */
    ucs_arbiter_group_t arb_group;    /* pending requests */
} uct_tb_ep_t;

/*
 * Device address: the link identity, the same at both ends of a cable (new
 * at each login), and the end: a peer at the same end of a cable is on
 * this host and cannot be reached through it.
 */
typedef struct uct_tb_device_addr {
    uint64_t identity;
    uint64_t end_id;
} UCS_S_PACKED uct_tb_device_addr_t;

/*
 * Interface address: the context id on that link, and the secret without
 * which the context refuses every request (as a DC target's access key).
 */
typedef struct uct_tb_iface_addr {
    uint32_t ctx_id;
    uint64_t secret;
} UCS_S_PACKED uct_tb_iface_addr_t;

extern uct_component_t uct_tb_component;
extern uct_iface_ops_t uct_tb_iface_ops;

/* tb_md.cpp */
ucs_status_t uct_tb_md_open_impl(uct_tb_md_t *md, const uct_tb_md_config_t *config);
void uct_tb_md_close_impl(uct_tb_md_t *md);
ucs_status_t uct_tb_md_query(uct_md_h md, uct_tb_md_attr_t *attr);
/* reg: the flags (UCT_MD_MEM_FLAG_*, UCT_MD_MEM_ACCESS_*), or parameters. */
ucs_status_t uct_tb_md_mem_reg(uct_md_h md, void *address, size_t length,
                               uct_tb_mem_reg_arg_t reg, uct_mem_h *memh_p);
ucs_status_t uct_tb_md_mem_alloc(uct_md_h md, size_t *length_p, void **address_p,
                                 ucs_memory_type_t mem_type, unsigned flags,
                                 const char *alloc_name, uct_mem_h *memh_p);
ucs_status_t uct_tb_md_mem_free(uct_md_h md, uct_mem_h memh);
ucs_status_t uct_tb_md_mem_dereg(uct_md_h md,
                                 const uct_md_mem_dereg_params_t *params);
#ifdef TB_UCX_MD_MKEY_PACK_RANGE
ucs_status_t uct_tb_md_mkey_pack(uct_md_h md, uct_mem_h memh, void *address,
                                 size_t length,
                                 const uct_md_mkey_pack_params_t *params,
                                 void *rkey_buffer);
#else
ucs_status_t uct_tb_md_mkey_pack(uct_md_h md, uct_mem_h memh,
                                 const uct_md_mkey_pack_params_t *params,
                                 void *rkey_buffer);
#endif
ucs_status_t uct_tb_query_devices(uct_md_h md,
                                  uct_tl_device_resource_t **devices_p,
                                  unsigned *num_devices_p);
ucs_status_t uct_tb_rkey_unpack(uct_component_t *component,
                                const void *rkey_buffer, uct_rkey_t *rkey_p,
                                void **handle_p);
ucs_status_t uct_tb_rkey_release(uct_component_t *component, uct_rkey_t rkey,
                                 void *handle);

/* tb_iface.cpp */
ucs_status_t uct_tb_iface_init_impl(uct_tb_iface_t *iface,
                                    const uct_iface_params_t *params,
                                    const uct_tb_iface_config_t *config);
void uct_tb_iface_cleanup_impl(uct_tb_iface_t *iface);
ucs_status_t uct_tb_iface_query(uct_iface_h iface, uct_iface_attr_t *attr);
ucs_status_t uct_tb_iface_get_device_address(uct_iface_h iface,
                                             uct_device_addr_t *addr);
ucs_status_t uct_tb_iface_get_address(uct_iface_h iface,
                                      uct_iface_addr_t *addr);
int uct_tb_iface_is_reachable(const uct_iface_h iface,
                              const uct_device_addr_t *dev_addr,
                              const uct_iface_addr_t *iface_addr);
unsigned uct_tb_iface_progress(uct_iface_h iface);
ucs_status_t uct_tb_iface_flush(uct_iface_h iface, unsigned flags,
                                uct_completion_t *comp);
ucs_status_t uct_tb_iface_fence(uct_iface_h iface, unsigned flags);
ucs_status_t uct_tb_iface_event_fd_get(uct_iface_h iface, int *fd_p);
ucs_status_t uct_tb_iface_event_arm(uct_iface_h iface, unsigned events);
ucs_status_t uct_tb_iface_estimate_perf(uct_iface_h iface,
                                        uct_perf_attr_t *perf_attr);

/* tb_ep.cpp */
ucs_status_t uct_tb_ep_init_impl(uct_tb_ep_t *ep, const uct_ep_params_t *params);
void uct_tb_ep_cleanup_impl(uct_tb_ep_t *ep);
ucs_status_t uct_tb_ep_put_short(uct_ep_h ep, const void *buffer,
                                 unsigned length, uint64_t remote_addr,
                                 uct_rkey_t rkey);
ssize_t uct_tb_ep_put_bcopy(uct_ep_h ep, uct_pack_callback_t pack_cb,
                            void *arg, uint64_t remote_addr, uct_rkey_t rkey);
ucs_status_t uct_tb_ep_put_zcopy(uct_ep_h ep, const uct_iov_t *iov,
                                 size_t iovcnt, uint64_t remote_addr,
                                 uct_rkey_t rkey, uct_completion_t *comp);
ucs_status_t uct_tb_ep_get_bcopy(uct_ep_h ep, uct_unpack_callback_t unpack_cb,
                                 void *arg, size_t length,
                                 uint64_t remote_addr, uct_rkey_t rkey,
                                 uct_completion_t *comp);
ucs_status_t uct_tb_ep_get_zcopy(uct_ep_h ep, const uct_iov_t *iov,
                                 size_t iovcnt, uint64_t remote_addr,
                                 uct_rkey_t rkey, uct_completion_t *comp);
ucs_status_t uct_tb_ep_am_short(uct_ep_h ep, uint8_t id, uint64_t header,
                                const void *payload, unsigned length);
ucs_status_t uct_tb_ep_am_short_iov(uct_ep_h ep, uint8_t id,
                                    const uct_iov_t *iov, size_t iovcnt);
ssize_t uct_tb_ep_am_bcopy(uct_ep_h ep, uint8_t id,
                           uct_pack_callback_t pack_cb, void *arg,
                           unsigned flags);
ucs_status_t uct_tb_ep_am_zcopy(uct_ep_h ep, uint8_t id, const void *header,
                                unsigned header_length, const uct_iov_t *iov,
                                size_t iovcnt, unsigned flags,
                                uct_completion_t *comp);
ucs_status_t uct_tb_ep_atomic_cswap64(uct_ep_h ep, uint64_t compare,
                                      uint64_t swap, uint64_t remote_addr,
                                      uct_rkey_t rkey, uint64_t *result,
                                      uct_completion_t *comp);
ucs_status_t uct_tb_ep_atomic_cswap32(uct_ep_h ep, uint32_t compare,
                                      uint32_t swap, uint64_t remote_addr,
                                      uct_rkey_t rkey, uint32_t *result,
                                      uct_completion_t *comp);
ucs_status_t uct_tb_ep_atomic32_post(uct_ep_h ep, unsigned opcode,
                                     uint32_t value, uint64_t remote_addr,
                                     uct_rkey_t rkey);
ucs_status_t uct_tb_ep_atomic64_post(uct_ep_h ep, unsigned opcode,
                                     uint64_t value, uint64_t remote_addr,
                                     uct_rkey_t rkey);
ucs_status_t uct_tb_ep_atomic32_fetch(uct_ep_h ep, uct_atomic_op_t opcode,
                                      uint32_t value, uint32_t *result,
                                      uint64_t remote_addr, uct_rkey_t rkey,
                                      uct_completion_t *comp);
ucs_status_t uct_tb_ep_atomic64_fetch(uct_ep_h ep, uct_atomic_op_t opcode,
                                      uint64_t value, uint64_t *result,
                                      uint64_t remote_addr, uct_rkey_t rkey,
                                      uct_completion_t *comp);
ucs_status_t uct_tb_ep_pending_add(uct_ep_h ep, uct_pending_req_t *req,
                                   unsigned flags);
void uct_tb_ep_pending_purge(uct_ep_h ep, uct_pending_purge_callback_t cb,
                             void *arg);
ucs_status_t uct_tb_ep_flush(uct_ep_h ep, unsigned flags,
                             uct_completion_t *comp);
ucs_status_t uct_tb_ep_fence(uct_ep_h ep, unsigned flags);
ucs_status_t uct_tb_ep_check(uct_ep_h ep, unsigned flags,
                             uct_completion_t *comp);

#ifdef __cplusplus
}
#endif

#endif /* UCT_TB_H */
