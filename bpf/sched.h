/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Scheduler component: on-CPU time and run-queue delay per process. */
#ifndef AURUM_SCHED_H
#define AURUM_SCHED_H
#include "common.h"

/* Run-queue delay: log2 slots from <= 1.024 us (2^10 ns) to <= 2^33 ns (8.6 s), then +Inf. */
#define AURUM_RQ_MIN_SHIFT 10
#define AURUM_RQ_SLOTS 25
#define AURUM_CMDLINE_LEN 128

struct aurum_sched_stats {
	__u64 cpu_ns;       /* on-CPU time of every thread (se.sum_exec_runtime deltas), at switch-out,
			     * or in pending mode (sched.bpf.c, pending_on) when the thread dies */
	__u64 rq_count;
	__u64 rq_sum_ns;
	__u64 rq_slots[AURUM_RQ_SLOTS];
	__u32 exec_gen;     /* bumped at every execve: userspace re-resolves the identity */
	__u32 ppid;         /* parent's tgid: a fork child gone before userspace saw it is its parent's */
	char comm[AURUM_COMM_LEN]; /* for processes gone before userspace looked at /proc */
	/* The command line at the last execve, NUL-separated like /proc/<pid>/cmdline and cut at
	 * AURUM_CMDLINE_LEN: config rules can name a short-lived process (a CLI client, a cron
	 * job, a CGI child) that is gone before userspace reads /proc. */
	__u32 cmdline_len;
	__u32 pad2;
	char cmdline[AURUM_CMDLINE_LEN];
};

/* Per-CPU: who is on this CPU since when, so that a thread that never switches out (a lone
 * busy loop on an idle CPU) still shows its CPU time at scrape time. */
struct aurum_sched_cur {
	struct aurum_proc_key key;
	__u64 since_ns;
	__u32 pid; /* 0: idle or a kernel thread */
	__u32 pad;
};

/* Per thread: task storage, or a hash keyed by tid where task storage is missing (< 5.11). */
struct aurum_sched_thread {
	/* Waits timed from wakeups: switched in at (0: not on a CPU, or unknown), and woken or
	 * preempted at (0: not waiting). With sched_info (sched.bpf.c, use_sched_info): the arrivals
	 * on a CPU (pcount) and the run-queue delay (run_delay) the thread had at its last
	 * switch-out, which the next one's figures are taken from. */
	__u64 oncpu_ns;
	__u64 enqueue_ns;
	__u64 rq_wait_ns; /* the wait that ended at the last switch-in, recorded at switch-out so
			   * that one map lookup per switch serves both CPU time and the wait */
	struct aurum_proc_key key; /* the thread's process, cached (task storage only: a tid in
				    * the hash may be reused by another process) */
	/* CPU time is the kernel's own figure, se.sum_exec_runtime (what /proc reports), read at
	 * switch-out: the part not yet added to the process. Taking deltas of the kernel's
	 * counter rather than timing switch-in to switch-out means that a switch this thread's
	 * state missed (storage not created yet, its creation refused while another program held
	 * the task-storage lock) loses nothing: the next switch-out adds it. In pending mode it
	 * moves only when the thread dies: the iterator reads the rest live. */
	__u64 runtime_ns;
	__u64 start_ns;   /* the thread's start_time: tells a reused tid in the hash */
};

/* Task storage only: what the thread's state holds beyond the above once userspace reads it
 * with the iterator (sched.bpf.c, pending_on): run-queue waits not yet in its process's
 * sched_procs entry, written only by the thread's own switch-in, flushed when it dies. Their
 * count is the sum of the slots (one store fewer per wait). Not in the hash variants' values
 * (an LRU hash is preallocated: 65536 x 208 bytes). */
struct aurum_sched_thread_ts {
	struct aurum_sched_thread th;
	__u64 rq_sum_ns;
	__u64 rq_slots[AURUM_RQ_SLOTS];
};

/* What the pending iterator writes per live thread with anything not yet in sched_procs: its
 * CPU time since its baseline (se.sum_exec_runtime - runtime_ns) and its pending waits. */
struct aurum_sched_pending {
	struct aurum_proc_key key;
	__u64 cpu_ns;
	__u64 rq_sum_ns;
	__u64 rq_slots[AURUM_RQ_SLOTS];
};

enum aurum_sched_loss {
	AURUM_SCHED_LOSS_PROC_MAP_FULL = 0,
	AURUM_SCHED_LOSS_THREAD_MAP_FULL = 1,
	/* bpf_task_storage_get gave nothing: out of memory, or the storage was busy on this CPU (a
	 * program already inside it there, such as pending_iter preempted mid-visit). A wait is then
	 * not measured, and a dying thread's CPU time since the last poll is not added. */
	AURUM_SCHED_LOSS_THREAD_STORAGE = 2,
	AURUM_SCHED_LOSS_MAX = 3,
};
#endif
