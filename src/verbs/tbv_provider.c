/*
 * The libibverbs provider "tbrdma" (docs/verbs.md): what registers it with
 * libibverbs and answers its calls, through rdma-core's private interface
 * (infiniband/driver.h, C only; the rest of the provider is C++, tbv.h).
 * Matches tbrdma_ib.ko's devices, opens them, and queries them and
 * allocates protection domains through the kernel's uverbs commands.
 */
#include <errno.h>
#include <stdlib.h>

#include <infiniband/driver.h>
#include <kernel-abi/tbrdma_ib_abi.h>
#include <tbv_probes.h>

#include "rdma/tbrdma_ib_abi.h"
#include "tbv.h"

DECLARE_DRV_CMD(tbv_get_context, IB_USER_VERBS_CMD_GET_CONTEXT, empty,
		tbrdma_ib_alloc_ucontext_resp);

struct tbv_device {
	struct verbs_device vdev;
};

struct tbv_context {
	struct verbs_context vctx;
	uint32_t link;		/* tbrdma.ko's link index */
};

static int tbv_query_device_ex(struct ibv_context *context,
			       const struct ibv_query_device_ex_input *input,
			       struct ibv_device_attr_ex *attr,
			       size_t attr_size)
{
	struct ib_uverbs_ex_query_device_resp resp;
	size_t resp_size = sizeof(resp);

	return ibv_cmd_query_device_any(context, input, attr, attr_size, &resp,
					&resp_size);
}

static int tbv_query_port(struct ibv_context *context, uint8_t port,
			  struct ibv_port_attr *attr)
{
	struct ibv_query_port cmd;

	return ibv_cmd_query_port(context, port, attr, &cmd, sizeof(cmd));
}

static struct ibv_pd *tbv_alloc_pd(struct ibv_context *context)
{
	struct ib_uverbs_alloc_pd_resp resp;
	struct ibv_alloc_pd cmd;
	struct ibv_pd *pd;
	int ret;

	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		errno = ENOMEM;
		return NULL;
	}
	ret = ibv_cmd_alloc_pd(context, pd, &cmd, sizeof(cmd), &resp,
			       sizeof(resp));
	if (ret) {
		free(pd);
		errno = ret;
		return NULL;
	}
	return pd;
}

static int tbv_dealloc_pd(struct ibv_pd *pd)
{
	int ret = ibv_cmd_dealloc_pd(pd);

	if (!ret)
		free(pd);
	return ret;
}

static void tbv_free_context(struct ibv_context *ibctx)
{
	struct tbv_context *ctx =
		container_of(ibctx, struct tbv_context, vctx.context);

	verbs_uninit_context(&ctx->vctx);
	free(ctx);
}

static const struct verbs_context_ops tbv_context_ops = {
	.alloc_pd = tbv_alloc_pd,
	.dealloc_pd = tbv_dealloc_pd,
	.free_context = tbv_free_context,
	.query_device_ex = tbv_query_device_ex,
	.query_port = tbv_query_port,
};

static struct verbs_context *tbv_alloc_context(struct ibv_device *ibdev,
					       int cmd_fd, void *private_data)
{
	struct tbv_get_context_resp resp;
	struct ibv_get_context cmd;
	struct tbv_context *ctx;

	(void)private_data;
	ctx = verbs_init_and_alloc_context(ibdev, cmd_fd, ctx, vctx,
					   RDMA_DRIVER_UNKNOWN);
	if (!ctx)
		return NULL;
#ifdef TBV_GET_CONTEXT_FD_ARR
	if (ibv_cmd_get_context(&ctx->vctx, &cmd, sizeof(cmd), NULL,
				&resp.ibv_resp, sizeof(resp)))
#else
	if (ibv_cmd_get_context(&ctx->vctx, &cmd, sizeof(cmd), &resp.ibv_resp,
				sizeof(resp)))
#endif
		goto fail;
	ctx->link = resp.link;
	verbs_set_ops(&ctx->vctx, &tbv_context_ops);
	return &ctx->vctx;

fail:
	verbs_uninit_context(&ctx->vctx);
	free(ctx);
	return NULL;
}

/*
 * No table entry: names change and the driver id is RDMA_DRIVER_UNKNOWN,
 * so tbv_match_device() decides. libibverbs walks the table of every
 * provider for a device with a driver id, so it must exist.
 */
static const struct verbs_match_ent tbv_match_table[] = {
	{}
};

static bool tbv_match_device(struct verbs_sysfs_dev *sysfs_dev)
{
	return tbv_sysfs_is_tbrdma(sysfs_dev->ibdev_path);
}

static struct verbs_device *tbv_alloc_device(struct verbs_sysfs_dev *sysfs_dev)
{
	struct tbv_device *dev;

	(void)sysfs_dev;
	dev = calloc(1, sizeof(*dev));
	return dev ? &dev->vdev : NULL;
}

static void tbv_uninit_device(struct verbs_device *vdev)
{
	free(container_of(vdev, struct tbv_device, vdev));
}

/* External linkage and constant: PROVIDER_DRIVER aliases it. */
const struct verbs_device_ops tbv_device_ops = {
	.name = "tbrdma",
	.match_min_abi_version = TBRDMA_IB_UVERBS_ABI,
	.match_max_abi_version = TBRDMA_IB_UVERBS_ABI,
	.match_table = tbv_match_table,
	.match_device = tbv_match_device,
	.alloc_context = tbv_alloc_context,
	.alloc_device = tbv_alloc_device,
	.uninit_device = tbv_uninit_device,
};
PROVIDER_DRIVER(tbrdma, tbv_device_ops);
