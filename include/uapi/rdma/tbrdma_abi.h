/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-2-Clause) */
/*
 * tbrdma user/kernel ABI: ioctls on /dev/tbrdma and the layout of the
 * submission, completion and receive rings mapped into the process.
 *
 * The same rings are used by the in-process software device, so everything
 * above the device library sees one format. Fixed-width types only, no
 * pointers (addresses travel as __u64), explicit padding; every reserved
 * field must be zero and is checked by the kernel.
 */
#ifndef TBRDMA_ABI_H
#define TBRDMA_ABI_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define TBRDMA_ABI_VERSION 5

/* One frame on the wire, headers included (a USB4 ring descriptor). */
#define TBRDMA_FRAME_MAX 4096u
/* Payload bytes that fit in an SQE (put_short, am_short). */
#define TBRDMA_INLINE_MAX 176u
/* Largest SEND payload: one frame less the link and engine headers. */
#define TBRDMA_SEND_MAX 3992u
/* SQEs one datagram may be gathered from (TBRDMA_SQE_MORE). */
#define TBRDMA_DGRAM_PARTS_MAX 32u
/* Largest single WRITE/READ: bounded so byte counts stay 32-bit. */
#define TBRDMA_XFER_MAX (1u << 30)
#define TBRDMA_LINK_NAME_MAX 16

/*
 * What a memory region may be used for. LOCAL: source and destination of
 * the context's own operations (what they send, what READs and receives
 * bring); LOCAL_READ: their source alone, so the kernel may pin the pages
 * read-only when no REMOTE_WRITE or REMOTE_ATOMIC needs them writable.
 */
enum tbrdma_access {
	TBRDMA_ACCESS_LOCAL = 1u << 0,
	TBRDMA_ACCESS_REMOTE_READ = 1u << 1,
	TBRDMA_ACCESS_REMOTE_WRITE = 1u << 2,
	TBRDMA_ACCESS_REMOTE_ATOMIC = 1u << 3,
	TBRDMA_ACCESS_LOCAL_READ = 1u << 4,
	TBRDMA_ACCESS_ALL = 0x1f,
};

enum tbrdma_opcode {
	/* A zero-length WRITE checks no key, only the context: a ping. */
	TBRDMA_OP_WRITE = 1,
	TBRDMA_OP_READ = 2,
	TBRDMA_OP_ATOMIC = 3,
	TBRDMA_OP_SEND = 4,
	TBRDMA_OP_FLUSH = 5,
	/*
	 * A message of up to TBRDMA_XFER_MAX bytes into the oldest receive
	 * the target context posted (struct tbrdma_rwqe), for contexts that
	 * take posted receives, as a verbs SEND.
	 */
	TBRDMA_OP_MSG = 6,
	/*
	 * A datagram, as a verbs UD SEND, from a datagram context (which
	 * posts nothing else): up to TBRDMA_SEND_MAX bytes in one frame into
	 * the oldest receive posted to context am_id, a datagram context
	 * whose Q_Key is rkey (32 bits; with bit 31 set, the sender's own, as
	 * IB's controlled Q_Keys). It completes once the target took it in,
	 * whether it found a receive or was dropped (no such context, the
	 * wrong key, none posted): the sender never learns which.
	 */
	TBRDMA_OP_DGRAM = 7,
	TBRDMA_OP_MAX = 7,
};

enum tbrdma_atomic_op {
	TBRDMA_ATOMIC_ADD = 0,
	TBRDMA_ATOMIC_AND = 1,
	TBRDMA_ATOMIC_OR = 2,
	TBRDMA_ATOMIC_XOR = 3,
	TBRDMA_ATOMIC_SWAP = 4,
	TBRDMA_ATOMIC_CSWAP = 5,
	TBRDMA_ATOMIC_MAX = 5,
};

enum tbrdma_sqe_flags {
	/* Payload is in sqe.inline_data, not at (lkey, local_addr). */
	TBRDMA_SQE_INLINE = 1u << 0,
	/* No completion on success; errors are always reported. */
	TBRDMA_SQE_SILENT = 1u << 1,
	/*
	 * Executed only after every READ and ATOMIC posted before it on the
	 * endpoint has its data (READ data is read after later requests ran).
	 */
	TBRDMA_SQE_FENCE = 1u << 2,
	/*
	 * Nothing waits for the completion: the target may hold its ack back
	 * (up to the link's ack delay) for traffic of its own to carry.
	 * A FLUSH behind the operation asks for the ack at once.
	 */
	TBRDMA_SQE_DELAY_ACK = 1u << 3,
	/*
	 * With immediate (sqe.imm), for a target of posted receives: a MSG's
	 * or DGRAM's receive completion says it has one; a WRITE, once done, takes a
	 * posted receive too and completes it with the immediate and its
	 * length (a verbs RDMA WRITE with immediate).
	 */
	TBRDMA_SQE_IMM = 1u << 4,
	/*
	 * A MSG whose message goes on in the next SQE of the endpoint: it
	 * gathers a message from several buffers (a verbs SEND's scatter
	 * list). Each SQE's remote_addr is the offset of its bytes in the
	 * message, 0 for the first; the last SQE, without MORE, ends it and
	 * alone may carry an immediate. The same for a DGRAM, whose last SQE
	 * also names its destination.
	 */
	TBRDMA_SQE_MORE = 1u << 5,
	TBRDMA_SQE_FLAGS_ALL = 0x3f,
};

/*
 * Every refusal by the remote side is the one status REM_ACCESS_ERR: an
 * unknown context, a wrong context secret, an unknown key, bytes outside
 * the region and a missing right look the same, so a failure tells a
 * guesser nothing. The endpoint that gets it is in error from then on:
 * what it had not sent yet, and everything posted later, completes with
 * FLUSH_ERR, and it must be re-created.
 */
enum tbrdma_status {
	TBRDMA_WC_SUCCESS = 0,
	TBRDMA_WC_LOC_ACCESS_ERR = 1,	/* bad lkey or local bounds */
	TBRDMA_WC_REM_ACCESS_ERR = 2,	/* the remote side refused access */
	TBRDMA_WC_REM_INVALID = 3,	/* malformed or misaligned request */
	TBRDMA_WC_LINK_DOWN = 4,	/* peer unreachable: link failed */
	TBRDMA_WC_CANCELED = 5,		/* flushed by cancel or ep destroy */
	TBRDMA_WC_FLUSH_ERR = 6,	/* not executed: the endpoint is in error */
	/*
	 * A SEND whose target's receive queue stayed full for the engine's
	 * rnr_timeout, resent with backoff all along; the endpoint is in
	 * error after it.
	 */
	TBRDMA_WC_RNR_RETRY_EXC_ERR = 7,
	/*
	 * An SQE the kernel took from a polled SQ (no doorbell) and refused:
	 * malformed, or for no endpoint of the context. It completes at once,
	 * ahead of its endpoint's operations in flight.
	 */
	TBRDMA_WC_REFUSED = 8,
	/*
	 * A posted receive whose buffer is smaller than the SEND that came
	 * into it (the sender's completes with REM_INVALID).
	 */
	TBRDMA_WC_LOC_LEN_ERR = 9,
	TBRDMA_WC_STATUS_MAX = 9,
};

enum tbrdma_link_state {
	TBRDMA_LINK_DOWN = 0,
	TBRDMA_LINK_CONNECTING = 1,
	TBRDMA_LINK_UP = 2,
};

enum tbrdma_link_flags {
	/* Both ends are in this host (a loop cable): any context reaches any. */
	TBRDMA_LINK_F_LOCAL = 1u << 0,
};

/* Submission queue entry: 256 bytes, one per operation. */
struct tbrdma_sqe {
	__u8 opcode;		/* enum tbrdma_opcode */
	__u8 flags;		/* enum tbrdma_sqe_flags */
	__u8 atomic_op;		/* enum tbrdma_atomic_op */
	__u8 atomic_size;	/* 4 or 8 */
	__u32 ep;		/* endpoint handle */
	__u64 wr_id;		/* returned in the completion */
	/*
	 * WRITE/SEND source, READ destination; ATOMIC with an lkey: where
	 * the owner puts the result, which must be a destination.
	 */
	__u64 local_addr;
	__u64 lkey;
	__u64 remote_addr;
	__u64 rkey;
	__u32 length;
	__u32 am_id;		/* SEND: active-message id */
	__u64 operand;		/* ATOMIC: add/and/or/xor/swap value */
	__u64 compare;		/* ATOMIC cswap: expected value */
	__u64 imm;		/* SEND: 64-bit header delivered with the data */
	__u8 inline_data[TBRDMA_INLINE_MAX];
};

/* Completion queue entry: 32 bytes. */
struct tbrdma_cqe {
	__u64 wr_id;
	__u64 result;		/* ATOMIC: the value before the operation */
	__u32 ep;
	__u32 byte_len;
	__u8 status;		/* enum tbrdma_status */
	__u8 opcode;
	__u8 flags;		/* enum tbrdma_cqe_flags */
	__u8 reserved[5];
};

enum tbrdma_cqe_flags {
	/* A receive completion whose result is the sender's immediate. */
	TBRDMA_CQE_IMM = 1u << 0,
};

/* Receive queue entry header; the payload follows it in the same slot. */
struct tbrdma_rqe {
	__u32 link;		/* link the message came in on */
	__u32 src_ctx;		/* sending context on the peer */
	__u32 am_id;
	__u32 length;
	__u64 imm;
	__u64 reserved[5];
};

/*
 * A posted receive, for a context whose messages land in buffers the
 * owner posted (as a verbs queue pair's do): the oldest one takes the next
 * MSG (or, in a datagram context, DGRAM), of any length up to its own,
 * and completes in the receive completion ring with the message's length
 * (byte_len), opcode TBRDMA_OP_MSG (TBRDMA_OP_DGRAM); or the next WRITE
 * with immediate, opcode TBRDMA_OP_WRITE,
 * with the WRITE's length and no data of its own. ep is the sending
 * context's id (0 for a receive flushed), and with TBRDMA_CQE_IMM, result
 * is the immediate.
 *
 * A receive of several buffers (a verbs receive's scatter list) is a run
 * of up to TBRDMA_RECV_SGE_MAX entries, each but the last flagged
 * TBRDMA_RWQE_MORE and published together: the message fills the buffers
 * in order, and its completion has the first entry's wr_id.
 */
struct tbrdma_rwqe {
	__u64 wr_id;
	__u64 addr;
	__u64 lkey;
	__u32 length;
	__u32 flags;		/* any other bit: the receive fails, LOC_ACCESS_ERR */
};

#define TBRDMA_RWQE_MORE 1u
#define TBRDMA_RECV_SGE_MAX 16u

#define TBRDMA_RQE_SLOT 4096u
#define TBRDMA_RQE_DATA_MAX (TBRDMA_RQE_SLOT - sizeof(struct tbrdma_rqe))

/*
 * Ring control block, at the start of each mapped ring. The producer and
 * consumer indices run freely modulo 2^32; entries live at index & mask.
 * The kernel keeps its own copy of the index it produces and treats the
 * one it reads from userspace as untrusted.
 *
 * Wake-ups (CQ and RQ): a consumer about to sleep sets armed = 1, issues a
 * full memory barrier and looks at producer once more. The producer stores
 * producer, issues a full barrier and reads armed; if set, it clears it
 * and signals the context's eventfd. So either side sees the other.
 *
 * SQ polling (SQ): a process that sets sq_poll = 1 lets the kernel take
 * SQEs up to producer without a doorbell while any of its poll threads
 * is busy, which it shows with sq_polled = 1. The process stores producer,
 * issues a full barrier and reads sq_polled: 0 means it must ring the
 * doorbell. The last poll thread to go idle clears sq_polled, issues a
 * full barrier and takes what producer shows once more. An SQE a thread
 * refuses completes with TBRDMA_WC_REFUSED, and one that finds a queue
 * full waits in the ring for the next doorbell. Each poll round stamps sq_polled_at; a thread
 * the scheduler took off its CPU leaves sq_polled set and the stamp
 * ageing, so a process may ring anyway when the stamp is older than
 * TBRDMA_SQ_POLLED_FRESH (a doorbell is never wrong, only slower).
 */
/* sq_polled_at units: CLOCK_MONOTONIC ns >> 10 (about a microsecond). */
#define TBRDMA_SQ_POLLED_SHIFT 10
/* A stamp at most this many units old says a thread is polling now. */
#define TBRDMA_SQ_POLLED_FRESH 32u

/*
 * Whether a stamp is fresh at now (both in sq_polled_at units): one unit
 * ahead is, as a round may stamp between the reader's clock and its load
 * (the + 1 takes that age, 2^32 - 1, to 0).
 */
static inline int tbrdma_sq_polled_fresh(__u32 now, __u32 stamp)
{
	return now - stamp + 1u <= TBRDMA_SQ_POLLED_FRESH + 1u;
}

struct tbrdma_ring_ctrl {
	__u32 producer;
	__u32 pad0[15];
	__u32 consumer;
	__u32 pad1[15];
	__u32 entries;		/* power of two */
	__u32 entry_size;
	__u32 armed;		/* consumer asks for a wakeup on new entries */
	__u32 sq_poll;		/* SQ, process: the kernel may poll it */
	__u32 sq_polled;	/* SQ, kernel: it is polling, no doorbell needed */
	__u32 sq_polled_at;	/* SQ, kernel: its last poll round (modulo 2^32) */
	__u32 pad2[10];
};

/* The ring entries start this many bytes after the control block. */
#define TBRDMA_RING_DATA_OFFSET 4096u

/*
 * mmap offsets on /dev/tbrdma, one region per ring: the context handle in
 * the high bits, the ring in the low ones,
 *   offset = ((__u64)ctx << TBRDMA_MMAP_CTX_SHIFT) | TBRDMA_MMAP_{SQ,CQ,RQ}
 * as TBRDMA_IOC_CREATE_QUEUES returns them (32-bit processes need a 64-bit
 * off_t: mmap64, or _FILE_OFFSET_BITS=64).
 */
#define TBRDMA_MMAP_CTX_SHIFT 32
#define TBRDMA_MMAP_SQ 0x00000000ull
#define TBRDMA_MMAP_CQ 0x10000000ull
#define TBRDMA_MMAP_RQ 0x20000000ull

/*
 * Each open file is a protection domain: the keys of REG_MR are valid in
 * every context of the file. Each CREATE_QUEUES creates one more context
 * (up to max_contexts per file), named by a small handle (ctx) in the
 * ioctls that act on it and by its id (ctx_id) on the links.
 */
struct tbrdma_query {
	__u32 abi_version;	/* out */
	__u32 max_contexts;	/* out: contexts per open file */
	__u32 num_links;	/* out */
	__u32 max_mr;		/* out: regions per open file */
	__u32 max_ep;		/* out: endpoints per context */
	__u32 max_ring_entries;	/* out */
	__u32 frame_max;	/* out */
	__u32 inline_max;	/* out */
	__u32 send_max;		/* out */
	__u32 contexts_free;	/* out: contexts this file can still create */
	__u32 reserved[6];
};

struct tbrdma_link_attr {
	__u32 index;		/* in */
	__u32 state;		/* enum tbrdma_link_state */
	char name[TBRDMA_LINK_NAME_MAX];
	__u64 identity;		/* same value at both ends, new at each login */
	__u64 speed_mbps;	/* transmit rate of this end */
	__u32 latency_ns;	/* nominal one-way latency */
	__u32 numa_node;	/* ~0u if unknown */
	char pci_addr[16];	/* controller "dddd:bb:dd.f", empty if none */
	__u64 end_id;		/* this end of the cable; the other end's differs */
	__u32 flags;		/* enum tbrdma_link_flags */
	__u32 rtt_ns;		/* least round trip measured, 0: none yet */
	__u64 reserved[2];
};

/* A key is 64 random bits: it cannot be guessed, only handed over. */
struct tbrdma_reg_mr {
	__u64 addr;
	__u64 length;
	__u32 access;		/* enum tbrdma_access */
	__u32 reserved;
	__u64 key;		/* out: lkey == rkey */
};

struct tbrdma_dereg_mr {
	__u64 key;
};

struct tbrdma_create_queues {
	__u32 sq_entries;	/* in: rounded up to a power of two; out */
	__u32 cq_entries;
	__u32 rq_entries;
	__s32 event_fd;		/* in: eventfd to signal, -1 for none */
	__u32 ctx;		/* out: handle of the new context */
	__u32 ctx_id;		/* out: its id on every link */
	/*
	 * out: 64 random bits that every request to this context must carry;
	 * peers learn it with ctx_id (UCX's interface address carries both).
	 */
	__u64 secret;
	__u64 sq_offset;	/* out: mmap offset and length of each ring */
	__u64 sq_length;
	__u64 cq_offset;
	__u64 cq_length;
	__u64 rq_offset;
	__u64 rq_length;
};

struct tbrdma_destroy_queues {
	__u32 ctx;
	__u32 reserved;
};

struct tbrdma_create_ep {
	__u32 ctx;
	__u32 link;
	__u32 remote_ctx;	/* the peer context's ctx_id */
	__u32 ep;		/* out */
	__u64 remote_secret;	/* and its secret */
};

/* DESTROY_EP and CANCEL_EP. */
struct tbrdma_ep_ref {
	__u32 ctx;
	__u32 ep;
};

struct tbrdma_ep_state {
	__u32 ctx;
	__u32 ep;
	__u32 link_state;	/* out: enum tbrdma_link_state */
	__u32 outstanding;	/* out: operations not yet completed */
};

enum tbrdma_doorbell_flags {
	/*
	 * Refusals other than a full queue complete with TBRDMA_WC_REFUSED
	 * instead of ending the call: for SQEs already handed to a polled SQ.
	 */
	TBRDMA_DOORBELL_ASYNC = 1 << 0,
};

struct tbrdma_doorbell {
	__u32 ctx;
	__u32 sq_producer;	/* in: post every SQE before this index */
	__u32 posted;		/* out: how many were accepted */
	__u32 flags;		/* in: enum tbrdma_doorbell_flags */
};

#define TBRDMA_IOC_MAGIC 0xB7
#define TBRDMA_IOC_QUERY _IOR(TBRDMA_IOC_MAGIC, 0, struct tbrdma_query)
#define TBRDMA_IOC_QUERY_LINK _IOWR(TBRDMA_IOC_MAGIC, 1, struct tbrdma_link_attr)
#define TBRDMA_IOC_REG_MR _IOWR(TBRDMA_IOC_MAGIC, 2, struct tbrdma_reg_mr)
#define TBRDMA_IOC_DEREG_MR _IOW(TBRDMA_IOC_MAGIC, 3, struct tbrdma_dereg_mr)
#define TBRDMA_IOC_CREATE_EP _IOWR(TBRDMA_IOC_MAGIC, 4, struct tbrdma_create_ep)
#define TBRDMA_IOC_DESTROY_EP _IOW(TBRDMA_IOC_MAGIC, 5, struct tbrdma_ep_ref)
#define TBRDMA_IOC_EP_STATE _IOWR(TBRDMA_IOC_MAGIC, 6, struct tbrdma_ep_state)
#define TBRDMA_IOC_CREATE_QUEUES _IOWR(TBRDMA_IOC_MAGIC, 7, struct tbrdma_create_queues)
#define TBRDMA_IOC_DOORBELL _IOWR(TBRDMA_IOC_MAGIC, 8, struct tbrdma_doorbell)
#define TBRDMA_IOC_DESTROY_QUEUES _IOW(TBRDMA_IOC_MAGIC, 9, struct tbrdma_destroy_queues)
#define TBRDMA_IOC_CANCEL_EP _IOW(TBRDMA_IOC_MAGIC, 10, struct tbrdma_ep_ref)
/* Of a verbs queue pair's doorbell file (rdma/tbrdma_ib_abi.h), no argument. */
#define TBRDMA_IOC_QP_DOORBELL _IO(TBRDMA_IOC_MAGIC, 11)

#ifdef __cplusplus
#define TBRDMA_ABI_ASSERT(c, m) static_assert(c, m)
#elif defined(__KERNEL__)
#define TBRDMA_ABI_ASSERT(c, m) _Static_assert(c, m)
#else
#define TBRDMA_ABI_ASSERT(c, m) _Static_assert(c, m)
#endif

TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_sqe) == 256, "sqe is 256 bytes");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_cqe) == 32, "cqe is 32 bytes");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_rqe) == 64, "rqe header is 64 bytes");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_rwqe) == 32, "rwqe is 32 bytes");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_ring_ctrl) == 192, "ring ctrl size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_query) == 64, "query size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_link_attr) == 96, "link attr size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_reg_mr) == 32, "reg_mr size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_dereg_mr) == 8, "dereg_mr size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_create_queues) == 80, "queues size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_destroy_queues) == 8, "destroy queues size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_create_ep) == 24, "create_ep size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_ep_ref) == 8, "ep_ref size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_ep_state) == 16, "ep_state size");
TBRDMA_ABI_ASSERT(sizeof(struct tbrdma_doorbell) == 16, "doorbell size");

#undef TBRDMA_ABI_ASSERT

#endif /* TBRDMA_ABI_H */
