/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* BPF-side helpers shared by every component. */
#ifndef AURUM_COMMON_BPF_H
#define AURUM_COMMON_BPF_H
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "common.h"
#include "proto/hist.h"

/* bpf_printk costs a trace_printk per call: compiled in only with -DAURUM_BPF_DEBUG=1
 * (cmake -DAURUM_BPF_DEBUG=ON). */
#ifdef AURUM_BPF_DEBUG
#define aurum_debug(fmt, ...) bpf_printk(fmt, ##__VA_ARGS__)
#else
#define aurum_debug(fmt, ...) do { } while (0)
#endif

#define AURUM_PF_KTHREAD 0x00200000 /* include/linux/sched.h */

/* One value into a log2 histogram in a shared map value (its slots, count and sum), with atomic
 * adds: several CPUs record into one process's entry. */
static __always_inline void aurum_log2_hist_add(__u64 *slots, __u32 nslots, __u32 min_shift, __u64 *count,
						__u64 *sum, __u64 v)
{
	__u32 slot = aurum_log2_slot(v, min_shift, nslots);

	/* Bounded on the register used for the access: the 5.10 and 6.1 verifiers lose the bound of
	 * a spilled 32-bit value. */
	AURUM_OPAQUE(slot);
	if (slot < nslots)
		__sync_fetch_and_add(&slots[slot], 1);
	__sync_fetch_and_add(count, 1);
	__sync_fetch_and_add(sum, v);
}

static __always_inline int aurum_is_kthread(struct task_struct *t)
{
	return (BPF_CORE_READ(t, flags) & AURUM_PF_KTHREAD) != 0;
}

/* A process is named by its tgid and the boot-time start of its group leader: /proc/<pid>/stat
 * field 22 is the same instant in clock ticks, so userspace can tell a reused pid apart.
 * start_boottime appeared in 5.5 (commit cf25e24db61c); earlier kernels call it
 * real_start_time. */
struct task_struct___pre55 {
	u64 real_start_time;
} __attribute__((preserve_access_index));

static __always_inline void aurum_proc_key(struct task_struct *t, struct aurum_proc_key *key)
{
	struct task_struct *leader = BPF_CORE_READ(t, group_leader);

	key->tgid = BPF_CORE_READ(t, tgid);
	key->pad = 0;
	if (bpf_core_field_exists(leader->start_boottime))
		key->start_ns = BPF_CORE_READ(leader, start_boottime);
	else
		key->start_ns = BPF_CORE_READ((struct task_struct___pre55 *)leader, real_start_time);
}

/* Count a loss (full map, failed reserve): nothing is dropped silently. */
static __always_inline void aurum_count_loss(void *lost_map, __u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(lost_map, &reason);
	if (n)
		__sync_fetch_and_add(n, 1);
}
#endif
