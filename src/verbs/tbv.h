/*
 * The libibverbs provider's C++ part, as tbv_provider.c calls it: rdma-core's
 * private headers, which that file needs, are C only. The queue pairs' rings
 * (tbv_qp.cpp) and the completion queues that poll them (tbv_cq.cpp) live
 * here; the glue holds the libibverbs objects and the uverbs commands.
 */
#ifndef TBV_H
#define TBV_H

#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#ifdef __cplusplus
#define TBV_NOEXCEPT noexcept
extern "C" {
#else
#define TBV_NOEXCEPT
#endif

struct tbrdma_ib_create_qp_resp;
struct tbrdma_ib_create_srq_resp;

/*
 * Whether the RDMA device at ibdev_path (<sysfs>/class/infiniband/NAME) is
 * one of tbrdma_ib.ko's: its parent is a link of tbrdma.ko, in the class
 * tbrdma. Unlike its name, this survives renaming (rdma-core's udev rules
 * rename devices with a GUID).
 */
bool tbv_sysfs_is_tbrdma(const char *ibdev_path) TBV_NOEXCEPT;

/*
 * An address handle, the process's alone: the GRH a UD work request sends
 * in front of its data (paylen filled in for each), built from the
 * handle's GID and the source GID of the handle's sgid_index.
 */
struct tbv_ah {
	struct ibv_ah ibv_ah;
	struct ibv_grh grh;
};

/* A queue pair's rings, mapped from the device's command file. */
struct tbv_rings;
/* A shared receive queue's ring of posted receives. */
struct tbv_srq;
/* The rings a completion queue polls. */
struct tbv_cq_set;

/* What the data path asks of the kernel, through the glue's commands. */
struct tbv_qp_cmds {
	/*
	 * Take what the send ring holds (in ERR: flush it and the receives):
	 * the driver's doorbell method; 0 or an errno.
	 */
	int (*doorbell)(struct ibv_qp *qp);
	/*
	 * A work request failed: the queue pair goes to ERR, as an RC queue
	 * pair does (modify_qp), so everything posted flushes.
	 */
	void (*to_error)(struct ibv_qp *qp);
};

/*
 * Maps what CREATE_QP answered for qp (RC or UD, as its qp_type says),
 * of the scatter entries per work request cap grants, whose receives are
 * srq's (or its own: srq NULL); NULL and errno on failure. sq_sig_all:
 * every send work request completes, as ibv_qp_init_attr has it; ud_mtu:
 * a UD one's port MTU, the longest datagram it sends.
 */
struct tbv_rings *tbv_rings_new(int cmd_fd,
				const struct tbrdma_ib_create_qp_resp *resp,
				struct ibv_qp *qp, struct tbv_srq *srq,
				const struct ibv_qp_cap *cap, bool sq_sig_all,
				uint32_t ud_mtu,
				const struct tbv_qp_cmds *cmds) TBV_NOEXCEPT;
void tbv_rings_free(struct tbv_rings *r) TBV_NOEXCEPT;
/* The state modify_qp set: posting depends on it. */
void tbv_rings_set_state(struct tbv_rings *r, enum ibv_qp_state state) TBV_NOEXCEPT;
/*
 * The queue pair went back to RESET: the kernel dropped its work requests
 * without completions, so their send ring slots are free again; receive
 * completions kept from before (a shared queue's) fail it no more.
 */
void tbv_rings_reset(struct tbv_rings *r) TBV_NOEXCEPT;
/*
 * Writes the work requests into the ring, up to the first it cannot take
 * (*bad, and its errno returned), and rings the doorbell when no poll
 * thread of the kernel takes them.
 */
int tbv_rings_post_send(struct tbv_rings *r, struct ibv_send_wr *wr,
			struct ibv_send_wr **bad) TBV_NOEXCEPT;
int tbv_rings_post_recv(struct tbv_rings *r, struct ibv_recv_wr *wr,
			struct ibv_recv_wr **bad) TBV_NOEXCEPT;

/*
 * Maps what CREATE_SRQ answered, for receives of at most max_sge scatter
 * entries; NULL and errno on failure.
 */
struct tbv_srq *tbv_srq_new(int cmd_fd,
			    const struct tbrdma_ib_create_srq_resp *resp,
			    uint32_t max_sge) TBV_NOEXCEPT;
void tbv_srq_free(struct tbv_srq *srq) TBV_NOEXCEPT;
/* As tbv_rings_post_recv(), into its ring. */
int tbv_srq_post_recv(struct tbv_srq *srq, struct ibv_recv_wr *wr,
		      struct ibv_recv_wr **bad) TBV_NOEXCEPT;

struct tbv_cq_set *tbv_cq_new(void) TBV_NOEXCEPT;
void tbv_cq_free(struct tbv_cq_set *cq) TBV_NOEXCEPT;
/*
 * The queue pair's send or receive completions go to cq from now on, until
 * removed (before the rings are freed). 0, or ENOMEM.
 */
int tbv_cq_add(struct tbv_cq_set *cq, struct tbv_rings *r, bool recv) TBV_NOEXCEPT;
void tbv_cq_remove(struct tbv_cq_set *cq, struct tbv_rings *r) TBV_NOEXCEPT;
/*
 * The queue pair went back to RESET: the completions of it that cq has
 * not polled yet are dropped, but for receives from a shared queue.
 */
void tbv_cq_discard(struct tbv_cq_set *cq, struct tbv_rings *r) TBV_NOEXCEPT;
/* Up to n completions of its queue pairs, in order on each. */
int tbv_cq_poll(struct tbv_cq_set *cq, int n, struct ibv_wc *wc) TBV_NOEXCEPT;
/* The next completion on any of its rings raises an event. */
void tbv_cq_arm(struct tbv_cq_set *cq) TBV_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* TBV_H */
