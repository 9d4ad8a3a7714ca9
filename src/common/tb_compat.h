/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The one place where the portable engine meets its host: the Linux kernel
 * (__KERNEL__) or a userspace process. Everything else in src/common uses
 * only what is declared here.
 */
#ifndef TB_COMPAT_H
#define TB_COMPAT_H

#ifdef __KERNEL__

#include <linux/types.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/timekeeping.h>
#include <linux/atomic.h>
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/nospec.h>
#include <linux/spinlock.h>

#define tb_static_assert(cond, msg) static_assert(cond, msg)

/* An engine invariant broke: say so once, carry on safely. */
#define TB_WARN_ON(cond) WARN_ON_ONCE(cond)

/* i, checked below n, also below n when the CPU speculates past the check. */
#define tb_index_nospec(i, n) array_index_nospec(i, n)

/*
 * Called from process context only (module set-up, ioctls), never on the
 * data path; charged to the caller's memory cgroup.
 */
static inline void *tb_zalloc(size_t size)
{
	return kvzalloc(size, GFP_KERNEL_ACCOUNT);
}

static inline void tb_free(void *p)
{
	kvfree(p);
}

static inline u32 tb_random_u32(void)
{
	return get_random_u32();
}

static inline u64 tb_random_u64(void)
{
	return get_random_u64();
}

static inline u64 tb_now_ns(void)
{
	return ktime_get_ns();
}

/* Full memory barrier: orders earlier stores before later loads. */
static inline void tb_smp_mb(void)
{
	smp_mb();
}

/* The engine's own locks guard what links share (tb_engine.h). */
struct tb_lock {
	spinlock_t sl;	/* held for a few stores, in process context only */
};

#define tb_lock_init(l) spin_lock_init(&(l)->sl)

static inline void tb_lock_destroy(struct tb_lock *l)
{
}

static inline void tb_lock(struct tb_lock *l)
{
	spin_lock(&l->sl);
}

static inline void tb_unlock(struct tb_lock *l)
{
	spin_unlock(&l->sl);
}

#else /* userspace */

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>
#include <errno.h>
#include <pthread.h>
#include <linux/types.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int32_t s32;
typedef int64_t s64;

#ifndef __cplusplus
#define tb_static_assert(cond, msg) _Static_assert(cond, msg)
#else
#define tb_static_assert(cond, msg) static_assert(cond, msg)
#endif

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#ifndef READ_ONCE
#define READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#endif

/* An engine invariant broke: carry on safely (the kernel also warns). */
static inline int tb_warn_on(int cond)
{
	return cond;
}

#define TB_WARN_ON(cond) tb_warn_on(!!(cond))

/* A process's speculation reads only its own memory: nothing to clamp. */
static inline u32 tb_index_nospec(u32 i, u32 n)
{
	(void)n;
	return i;
}

#define smp_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define smp_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Full memory barrier: orders earlier stores before later loads. */
static inline void tb_smp_mb(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* A thread holding one may be preempted: a mutex, not a spinning lock. */
struct tb_lock {
	pthread_mutex_t m;
};

static inline void tb_lock_init(struct tb_lock *l)
{
	pthread_mutex_init(&l->m, NULL);
}

static inline void tb_lock_destroy(struct tb_lock *l)
{
	pthread_mutex_destroy(&l->m);
}

static inline void tb_lock(struct tb_lock *l)
{
	pthread_mutex_lock(&l->m);
}

static inline void tb_unlock(struct tb_lock *l)
{
	pthread_mutex_unlock(&l->m);
}

#ifdef __cplusplus
extern "C" {
#endif
/* Provided by src/common/tb_compat_user.c. */
void *tb_zalloc(size_t size);
void tb_free(void *p);
u32 tb_random_u32(void);
u64 tb_random_u64(void);
u64 tb_now_ns(void);
#ifdef __cplusplus
}
#endif

#endif /* __KERNEL__ */

/*
 * Atomic read-modify-write on registered memory. In the kernel the page is
 * reached through a kernel mapping of the pinned user page; either way the
 * access is a locked instruction on the same physical memory, so it is
 * coherent with CPU atomics done by the owning process.
 */
#define TB_ATOMIC_RMW(bits, type)                                              \
static inline type tb_atomic_fetch_add##bits(type *p, type v)                  \
{ return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }                         \
static inline type tb_atomic_fetch_and##bits(type *p, type v)                  \
{ return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }                         \
static inline type tb_atomic_fetch_or##bits(type *p, type v)                   \
{ return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }                          \
static inline type tb_atomic_fetch_xor##bits(type *p, type v)                  \
{ return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); }                         \
static inline type tb_atomic_swap##bits(type *p, type v)                       \
{ return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }                        \
static inline type tb_atomic_cswap##bits(type *p, type cmp, type v)            \
{                                                                              \
	__atomic_compare_exchange_n(p, &cmp, v, 0, __ATOMIC_SEQ_CST,           \
				    __ATOMIC_SEQ_CST);                         \
	return cmp;                                                            \
}

TB_ATOMIC_RMW(32, u32)
TB_ATOMIC_RMW(64, u64)

#undef TB_ATOMIC_RMW

/* Sequence-number arithmetic modulo 2^32. */
static inline int tb_seq_before(u32 a, u32 b)
{
	return (s32)(a - b) < 0;
}

static inline int tb_seq_after(u32 a, u32 b)
{
	return (s32)(a - b) > 0;
}

#endif /* TB_COMPAT_H */
