/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tbrdma.ko: links to other hosts over Thunderbolt/USB4 (XDomain), and the
 * table of every link userspace sees. See docs/kernel.md ("XDomain links").
 *
 * Userspace link indices: the loop cables first (0 .. nloops - 1), then one
 * slot per XDomain connection, tbN at index nloops + N. A slot stays with
 * its connection while the service is bound (the link itself comes and
 * goes with logins), and is reused after the connection is gone.
 */
#ifndef TBRDMA_XDOMAIN_H
#define TBRDMA_XDOMAIN_H

#include <linux/device.h>
#include <linux/types.h>

struct seq_file;
struct tbrdma_link_attr;

/* XDomain links (tb0 ..) at most. */
#define TBRDMA_XD_MAX 16

/* The class of /sys/class/tbrdma (tbrdma_loop.c). */
extern struct class tbrdma_class;

#ifdef TBRDMA_XDOMAIN
/* Module set-up, after the engine and the host's poll thread exist. */
int tbrdma_xd_init(void);
/* Logs out of every peer and takes their links down; before teardown. */
void tbrdma_xd_exit(void);
/* Engine link slots the XDomain part needs (0 when disabled). */
u32 tbrdma_xd_max_links(void);
/* Under tbrdma.lock: highest slot in use + 1. */
u32 tbrdma_xd_nslots(void);
/*
 * Under tbrdma.lock: QUERY_LINK attributes of slot (its state read under
 * the link's lock) and the engine link index (U32_MAX while the link is
 * down). -EINVAL for an empty slot.
 */
int tbrdma_xd_lookup(u32 slot, struct tbrdma_link_attr *attr,
		     u32 *engine_index);
/*
 * Under tbrdma.lock, without the link's lock: the engine link index of
 * slot, U32_MAX while the link is down or for an empty slot.
 */
u32 tbrdma_xd_engine_index(u32 slot);
/*
 * Under tbrdma.lock, without the link's lock: slot's identity (the same
 * at both ends of its cable), 0 for an empty slot.
 */
u64 tbrdma_xd_identity(u32 slot);
/* Under tbrdma.lock: slot's device, NULL for an empty slot. */
struct device *tbrdma_xd_device(u32 slot);
/* debugfs, under tbrdma.lock. */
void tbrdma_xd_show(struct seq_file *m);
#else
static inline int tbrdma_xd_init(void) { return 0; }
static inline void tbrdma_xd_exit(void) { }
static inline u32 tbrdma_xd_max_links(void) { return 0; }
static inline u32 tbrdma_xd_nslots(void) { return 0; }
static inline int tbrdma_xd_lookup(u32 slot, struct tbrdma_link_attr *attr,
				   u32 *engine_index)
{
	return -EINVAL;
}

static inline u32 tbrdma_xd_engine_index(u32 slot) { return U32_MAX; }
static inline u64 tbrdma_xd_identity(u32 slot) { return 0; }

static inline struct device *tbrdma_xd_device(u32 slot) { return NULL; }
static inline void tbrdma_xd_show(struct seq_file *m) { }
#endif

/*
 * tbrdma_links.c, under tbrdma.lock: the links userspace sees (loops and
 * XDomain), for QUERY, QUERY_LINK and CREATE_EP.
 */
u32 tbrdma_num_links(void);
/*
 * Fills attr (if not NULL) and *engine_index (U32_MAX while the link is
 * down) for userspace link index. -EINVAL for an index that names no link.
 */
int tbrdma_link_lookup(u32 index, struct tbrdma_link_attr *attr,
		       u32 *engine_index);
/*
 * Without the link's lock: the engine link index of userspace link index,
 * U32_MAX while the link is down or for no link.
 */
u32 tbrdma_link_engine_index(u32 index);
/* Whether userspace link index is a loop cable. */
bool tbrdma_link_is_loop(u32 index);
/*
 * A loop's far end (end B: what is sent on end A arrives there, and
 * endpoints of the higher context id send from it), U32_MAX for no loop
 * or while it is detached.
 */
u32 tbrdma_link_far_index(u32 index);
/*
 * Whether XDomain links a and b are the two ends of one cable (both in
 * this host: a simulator's), without their links' locks.
 */
bool tbrdma_link_same_cable(u32 a, u32 b);
/*
 * The datagram fabric of userspace link index (tb_link.fabric): one for
 * all loops, whose ends all reach each other in this host, one for each
 * XDomain link, whose peer is another host.
 */
static inline u32 tbrdma_link_fabric(u32 index, bool loop)
{
	return loop ? 0 : index + 1;
}

/* /sys/class/tbrdma/<name> of userspace link index, or NULL. */
struct device *tbrdma_link_device(u32 index);

/*
 * statistics/ of every link device, /sys/class/tbrdma/<name>/statistics
 * (tbrdma_links.c): the engine link's counters, the same files for loop
 * and XDomain links, read from the struct tb_link the device's drvdata
 * points to (under tbrdma.lock and the link's). A device type's
 * statistics group has TBRDMA_LINK_NSTATS + its own + 1 entries, filled
 * before any device of the type is added: the link's counters, its own,
 * NULL.
 */
#define TBRDMA_LINK_NSTATS 17
void tbrdma_link_stat_attrs(struct attribute **attrs,
			    struct attribute *const *own, size_t n);

#endif /* TBRDMA_XDOMAIN_H */
