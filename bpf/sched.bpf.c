// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Scheduler component: per-process on-CPU time and run-queue delay.
 *
 * Variants (decided in userspace before load, see userspace/collectors/sched.cpp):
 *   attach:  tp_btf (typed args, 5.5+)  |  raw_tp (4.17+)
 *   threads: task storage (5.11+, tp_btf only: it needs a BTF task pointer)  |  LRU hash by tid
 * Every program below is one attach x storage combination of the same inline body; the losers
 * are not loaded (bpf_program__set_autoload), and the unused thread map is not created.
 * With task storage, an iter/task program (pending_iter) lets the switch keep CPU time and waits
 * per thread instead of adding them to the process at every switch (see pending_on).
 *   waits:   the kernel's own run-queue delay, read at switch-out (use_sched_info)  |  timed
 *            from sched_wakeup/sched_wakeup_new and preemption by the programs below */
#include "common.bpf.h"
#include "sched.h"
#include "proto/hist.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TASK_RUNNING 0
#define TASK_DEAD 0x80 /* include/linux/sched.h: set by do_task_dead() before the last switch */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* resized by userspace before load */
	__type(key, struct aurum_proc_key);
	__type(value, struct aurum_sched_stats);
} sched_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct aurum_sched_thread_ts);
} sched_thr_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct aurum_sched_thread);
} sched_thr_h SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct aurum_sched_cur);
} sched_cur SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AURUM_SCHED_LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sched_lost SEC(".maps");

/* CLOCK_MONOTONIC at load, set by userspace: a thread started later has all of its runtime
 * counted; one started earlier only what it runs after we first see it. */
const volatile __u64 loaded_ns = 0;
/* Set by userspace once pending_iter is attached (task storage only). From then on a switch
 * no longer adds the thread's CPU time and wait to its process's entry in sched_procs: the CPU
 * time stays in the kernel's own se.sum_exec_runtime, above the thread's baseline runtime_ns,
 * and waits in the thread's storage (aurum_sched_thread_ts), which userspace reads with the
 * iterator at each poll; both reach sched_procs when the thread dies. That spares nearly every
 * switch a hash lookup and atomic adds on the process's shared line (which bounces between
 * CPUs for a multi-threaded process). Before it is set (or if the iterator cannot attach),
 * every switch-out adds as it always did, so nothing is ever lost. */
__u32 pending_on = 0;
/* Set by userspace before load where the kernel keeps per-task run-queue delay (struct
 * sched_info: CONFIG_SCHED_INFO, what /proc/<pid>/schedstat shows as run_delay, feature
 * sched_info). A wait is then that figure, read at the thread's switch-out, and no program runs
 * on wakeups: every wakeup on the host was a program run (~130 ns) and a clock read, and every
 * switch-in a storage lookup and a clock read. In a thread's state oncpu_ns and enqueue_ns then
 * hold the arrivals and the delay counted so far (see si_wait). */
const volatile bool use_sched_info = false;

static const struct aurum_sched_stats zero_stats;
static const struct aurum_sched_thread zero_thread;

/* task_struct::state became __state in 5.14 (commit 2f064a59a11f). */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));


/* Task fields: a direct load where the program has BTF pointers (tp_btf), which the JIT turns
 * into a plain load with a fault handler; bpf_probe_read_kernel elsewhere (raw_tp). `btf` is a
 * constant at every call site, so each program keeps one of the two. */
#define TASK_READ(btf, t, field) ((btf) ? (t)->field : BPF_CORE_READ((t), field))

static __always_inline void proc_key(struct task_struct *t, bool btf, struct aurum_proc_key *key)
{
	if (!btf) {
		aurum_proc_key(t, key);
		return;
	}
	struct task_struct *leader = t->group_leader;

	key->tgid = t->tgid;
	key->pad = 0;
	if (bpf_core_field_exists(leader->start_boottime))
		key->start_ns = leader->start_boottime;
	else
		key->start_ns = BPF_CORE_READ((struct task_struct___pre55 *)leader, real_start_time);
}

static __always_inline bool user_task(struct task_struct *t, bool btf)
{
	return TASK_READ(btf, t, pid) != 0 && !(TASK_READ(btf, t, flags) & AURUM_PF_KTHREAD);
}

/* A thread state seen for the first time: its process, and how much of its runtime is ours. */
static __always_inline void thread_init(struct task_struct *t, bool btf, struct aurum_sched_thread *th,
					__u64 start)
{
	proc_key(t, btf, &th->key);
	th->start_ns = start;
	th->runtime_ns = start >= loaded_ns ? 0 : TASK_READ(btf, t, se.sum_exec_runtime);
	/* sched_info: like CPU time, a thread older than the agent counts waits from now on. */
	th->oncpu_ns = use_sched_info && start < loaded_ns ? TASK_READ(btf, t, sched_info.pcount) : 0;
	th->enqueue_ns = use_sched_info && start < loaded_ns ? TASK_READ(btf, t, sched_info.run_delay) : 0;
	th->rq_wait_ns = 0;
}

static __always_inline struct aurum_sched_thread *thread_get(struct task_struct *t, bool use_ts,
							     bool btf)
{
	struct aurum_sched_thread *th;
	__u64 start;
	__u32 tid;

	if (use_ts) {
		struct aurum_sched_thread_ts *ts =
			bpf_task_storage_get(&sched_thr_ts, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

		if (!ts) {
			aurum_count_loss(&sched_lost, AURUM_SCHED_LOSS_THREAD_STORAGE);
			return NULL;
		}
		/* New storage is zeroed: its pending waits start empty. */
		if (!ts->th.key.tgid)
			thread_init(t, btf, &ts->th, TASK_READ(btf, t, start_time));
		return &ts->th;
	}
	tid = TASK_READ(btf, t, pid);
	th = bpf_map_lookup_elem(&sched_thr_h, &tid);
	if (!th) {
		if (bpf_map_update_elem(&sched_thr_h, &tid, &zero_thread, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&sched_thr_h, &tid)) {
			aurum_count_loss(&sched_lost, AURUM_SCHED_LOSS_THREAD_MAP_FULL);
			return NULL;
		}
		th = bpf_map_lookup_elem(&sched_thr_h, &tid);
	}
	start = TASK_READ(btf, t, start_time);
	if (th && th->start_ns != start)
		thread_init(t, btf, th, start); /* new, or a reused tid */
	return th;
}

static __always_inline struct aurum_sched_stats *stats_get(struct task_struct *t,
							   const struct aurum_proc_key *key)
{
	struct aurum_sched_stats *s = bpf_map_lookup_elem(&sched_procs, key);

	if (s)
		return s;
	/* EEXIST: another CPU created it first, fine. Anything else: the map is full. */
	if (bpf_map_update_elem(&sched_procs, key, &zero_stats, BPF_NOEXIST) == 0) {
		s = bpf_map_lookup_elem(&sched_procs, key);
		if (s) {
			BPF_CORE_READ_STR_INTO(&s->comm, t, group_leader, comm);
			s->ppid = BPF_CORE_READ(t, real_parent, tgid);
		}
		return s;
	}
	s = bpf_map_lookup_elem(&sched_procs, key);
	if (!s)
		aurum_count_loss(&sched_lost, AURUM_SCHED_LOSS_PROC_MAP_FULL);
	return s;
}

static __always_inline long task_state(struct task_struct *t, bool btf)
{
	if (bpf_core_field_exists(t->__state))
		return TASK_READ(btf, t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* One wait into a process's totals (the per-switch path). */
static __always_inline void stats_add_wait(struct aurum_sched_stats *s, __u64 wait)
{
	aurum_log2_hist_add(s->rq_slots, AURUM_RQ_SLOTS, AURUM_RQ_MIN_SHIFT, &s->rq_count, &s->rq_sum_ns, wait);
}

/* One wait into the thread's own pending figures: plain adds, as only this thread's switch-in
 * or switch-out (with sched_info) writes them, and a thread is on one CPU at a time. */
static __always_inline void pending_add_wait(struct aurum_sched_thread_ts *ts, __u64 wait)
{
	__u32 slot = aurum_log2_slot(wait, AURUM_RQ_MIN_SHIFT, AURUM_RQ_SLOTS);

	asm volatile("" : "+r"(slot));
	if (slot < AURUM_RQ_SLOTS)
		ts->rq_slots[slot]++;
	ts->rq_sum_ns += wait;
}

/* A dying thread's last switch-out: its CPU time since the baseline and its pending waits into
 * its process's entry. Taken off the thread first (baseline moved, figures zeroed), then added,
 * so that userspace, which reads sched_procs before running the iterator, may miss them for one
 * poll but never counts them twice. Where the entry cannot be had (map full, counted as a loss)
 * they stay on the thread, which the iterator visits only until it is reaped: lost, and counted.
 * (Threads killed by an execve's de_thread() die the same way; the thread that execs keeps its
 * storage and its process key, as de_thread() gives it the leader's start time.) */
static __always_inline void pending_flush(struct task_struct *t, struct aurum_sched_thread_ts *ts,
					  __u64 runtime)
{
	struct aurum_sched_thread *th = &ts->th;
	__u64 ran = runtime > th->runtime_ns ? runtime - th->runtime_ns : 0;
	__u64 rq_sum = ts->rq_sum_ns, slots[AURUM_RQ_SLOTS], count = 0;
	struct aurum_sched_stats *s;

	if (!ran && !rq_sum)
		return;
	s = stats_get(t, &th->key);
	if (!s)
		return;
	th->runtime_ns = runtime;
	ts->rq_sum_ns = 0;
	for (int i = 0; i < AURUM_RQ_SLOTS; i++) {
		slots[i] = ts->rq_slots[i];
		ts->rq_slots[i] = 0;
		count += slots[i];
	}
	/* The stores above before the adds below: the atomics are full barriers on the CPU (x86
	 * stores are ordered anyway); this keeps the compiler from sinking the stores. */
	asm volatile("" ::: "memory");
	if (ran)
		__sync_fetch_and_add(&s->cpu_ns, ran);
	if (rq_sum) {
		for (int i = 0; i < AURUM_RQ_SLOTS; i++)
			if (slots[i])
				__sync_fetch_and_add(&s->rq_slots[i], slots[i]);
		__sync_fetch_and_add(&s->rq_count, count);
		__sync_fetch_and_add(&s->rq_sum_ns, rq_sum);
	}
}

/* sched_info: the wait that ended at `t`'s last switch-in, read as `t` switches out. The kernel
 * adds a wait to run_delay, and counts the arrival in pcount, just after the switch-in's
 * tracepoint (sched_info_arrive), so at the next switch-out both are there: what run_delay grew
 * since the thread's previous switch-out (enqueue_ns) is one wait if pcount grew (oncpu_ns holds
 * the count seen). A wait cut by a migration (its part on the old run queue added at the
 * dequeue) counts whole; a wait the run queue's clock did not see pass (a waker handing its CPU
 * straight to the wakee) counts as 0 ns, as the kernel counts it; the sum and the count are the
 * kernel's own. Read at switch-out, the switch-in needs no state at all: no storage lookup and
 * no clock read. Returns whether there is a wait, in *wait. */
static __always_inline bool si_wait(struct task_struct *t, bool btf, struct aurum_sched_thread *th, __u64 *wait)
{
	/* Direct loads where the task pointer is typed (tp_btf): two probe-read calls a switch less. */
	__u64 total = TASK_READ(btf, t, sched_info.run_delay);
	__u64 arrivals = TASK_READ(btf, t, sched_info.pcount);
	bool any = arrivals != th->oncpu_ns;

	*wait = total > th->enqueue_ns ? total - th->enqueue_ns : 0;
	th->enqueue_ns = total;
	th->oncpu_ns = arrivals;
	return any;
}

static __always_inline void on_switch(struct task_struct *prev, struct task_struct *next, bool use_ts,
				      bool btf)
{
	/* sched_info in pending mode times nothing itself (no sched_cur there either). */
	__u64 now = use_sched_info && use_ts && pending_on ? 0 : bpf_ktime_get_ns();
	__u64 wait;
	struct aurum_sched_thread *th;
	struct aurum_sched_stats *s;
	struct aurum_sched_cur *cur;
	__u32 zero = 0;

	/* Pending mode (task storage, pending_on): prev's CPU time stays in se.sum_exec_runtime
	 * and its waits in its storage, unless it is dying; next's wait goes to its storage (with
	 * sched_info, prev's last wait, read from the kernel as it switches out). */
	if (use_ts && pending_on) {
		if (user_task(prev, btf)) {
			th = thread_get(prev, use_ts, btf);
			if (th) {
				struct aurum_sched_thread_ts *ts = (struct aurum_sched_thread_ts *)th;
				long state = task_state(prev, btf);

				/* A wait measured by the per-switch path just before pending_on was set (timed
				 * from wakeups only: with sched_info that path records its waits itself). */
				if (!use_sched_info && th->rq_wait_ns) {
					pending_add_wait(ts, th->rq_wait_ns);
					th->rq_wait_ns = 0;
				}
				if (use_sched_info && si_wait(prev, btf, th, &wait))
					pending_add_wait(ts, wait);
				if (state & TASK_DEAD)
					pending_flush(prev, ts, TASK_READ(btf, prev, se.sum_exec_runtime));
				if (!use_sched_info)
					th->oncpu_ns = 0;
				if (state == TASK_RUNNING && !use_sched_info)
					th->enqueue_ns = now;
			}
		}
		/* No sched_cur: the iterator reads a running thread's se.sum_exec_runtime, which
		 * the tick keeps current, so there is no in-flight time to estimate. With sched_info
		 * the wait is read at the switch-out: nothing to do here. */
		if (use_sched_info || !user_task(next, btf))
			return;
		th = thread_get(next, use_ts, btf);
		if (!th)
			return;
		if (th->enqueue_ns && now > th->enqueue_ns)
			pending_add_wait((struct aurum_sched_thread_ts *)th, now - th->enqueue_ns);
		th->enqueue_ns = 0;
		th->oncpu_ns = now;
		return;
	}

	/* prev: close its slice and record the wait that preceded it, with one lookup of its
	 * process; if it was preempted it is still runnable, so a new wait starts now. */
	if (user_task(prev, btf)) {
		th = thread_get(prev, use_ts, btf);
		if (th) {
			__u64 runtime = TASK_READ(btf, prev, se.sum_exec_runtime);
			__u64 ran = runtime > th->runtime_ns ? runtime - th->runtime_ns : 0;

			bool waited;

			if (use_sched_info) {
				waited = si_wait(prev, btf, th, &wait);
			} else {
				wait = th->rq_wait_ns;
				waited = wait != 0;
			}
			if (ran || waited) {
				s = stats_get(prev, &th->key);
				if (s) {
					if (ran)
						__sync_fetch_and_add(&s->cpu_ns, ran);
					if (waited)
						stats_add_wait(s, wait);
				}
			}
			th->runtime_ns = runtime;
			if (!use_sched_info)
				th->oncpu_ns = 0;
			th->rq_wait_ns = 0;
			if (task_state(prev, btf) == TASK_RUNNING && !use_sched_info)
				th->enqueue_ns = now;
		}
	}

	cur = bpf_map_lookup_elem(&sched_cur, &zero);
	if (!user_task(next, btf)) {
		if (cur)
			cur->pid = 0;
		return;
	}
	th = thread_get(next, use_ts, btf);
	if (!th)
		return;
	if (!use_sched_info) {
		if (th->enqueue_ns && now > th->enqueue_ns)
			th->rq_wait_ns = now - th->enqueue_ns;
		th->enqueue_ns = 0;
		th->oncpu_ns = now;
	}
	if (cur) {
		cur->key = th->key;
		cur->since_ns = now;
		cur->pid = TASK_READ(btf, next, pid);
	}
}

static __always_inline void on_wakeup(struct task_struct *p, bool use_ts, bool btf)
{
	struct aurum_sched_thread *th;

	if (TASK_READ(btf, p, flags) & AURUM_PF_KTHREAD)
		return;
	th = thread_get(p, use_ts, btf);
	if (th && !th->oncpu_ns)
		th->enqueue_ns = bpf_ktime_get_ns();
}

static __always_inline void on_exec(struct task_struct *p)
{
	struct aurum_proc_key key;
	struct aurum_sched_stats *s;

	aurum_proc_key(p, &key);
	s = stats_get(p, &key);
	if (!s)
		return;
	__sync_fetch_and_add(&s->exec_gen, 1);
	BPF_CORE_READ_STR_INTO(&s->comm, p, comm);
	/* The new image's arguments are in place when the tracepoint fires (create_elf_tables),
	 * and p is current: a user read of its own stack. */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start), end = BPF_CORE_READ(mm, arg_end);
	__u32 len = end > start ? (__u32)(end - start) : 0;

	if (len > AURUM_CMDLINE_LEN)
		len = AURUM_CMDLINE_LEN;
	asm volatile("" : "+r"(len));
	if (len > 0 && len <= AURUM_CMDLINE_LEN &&
	    bpf_probe_read_user(s->cmdline, ((len - 1) & (AURUM_CMDLINE_LEN - 1)) + 1, (void *)start) == 0)
		s->cmdline_len = len;
	else
		s->cmdline_len = 0;
}

/* tp_btf + task storage */
SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf_ts, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch(prev, next, true, true);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(wakeup_btf_ts, struct task_struct *p)
{
	on_wakeup(p, true, true);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(wakeup_new_btf_ts, struct task_struct *p)
{
	on_wakeup(p, true, true);
	return 0;
}

/* tp_btf + thread hash */
SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf_h, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch(prev, next, false, true);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(wakeup_btf_h, struct task_struct *p)
{
	on_wakeup(p, false, true);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(wakeup_new_btf_h, struct task_struct *p)
{
	on_wakeup(p, false, true);
	return 0;
}

/* raw_tp + thread hash */
SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw_h, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch(prev, next, false, false);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(wakeup_raw_h, struct task_struct *p)
{
	on_wakeup(p, false, false);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(wakeup_new_raw_h, struct task_struct *p)
{
	on_wakeup(p, false, false);
	return 0;
}

/* Run by userspace at each poll (pending_on): every thread's CPU time and waits not yet in
 * its process's entry. No storage is created here: a thread without any has nothing pending. */
SEC("iter/task")
int pending_iter(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct aurum_sched_thread_ts *ts;
	struct aurum_sched_pending rec;
	__u64 runtime;

	if (!task)
		return 0;
	ts = bpf_task_storage_get(&sched_thr_ts, task, 0, 0);
	if (!ts || !ts->th.key.tgid)
		return 0;
	runtime = task->se.sum_exec_runtime;
	rec.key = ts->th.key;
	rec.cpu_ns = runtime > ts->th.runtime_ns ? runtime - ts->th.runtime_ns : 0;
	rec.rq_sum_ns = ts->rq_sum_ns;
	if (!rec.cpu_ns && !rec.rq_sum_ns)
		return 0;
	for (int i = 0; i < AURUM_RQ_SLOTS; i++)
		rec.rq_slots[i] = ts->rq_slots[i];
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

/* Run once by userspace after load, before the hooks attach: storage for every live user
 * thread, with its CPU time baseline taken now. Left to the hooks, the first switches after
 * start would create hundreds of storages at once with interrupts off, and some creations fail
 * there (the allocator's per-CPU cache runs dry, or the storage is busy on that CPU): each a
 * wait not measured, counted as thread_storage_unavailable. Here, in process context, they do
 * not; later only new threads need one, at the rate they are made. */
SEC("iter/task")
int seed_iter(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	/* The switch's own get-or-create (a failure counted as there). */
	if (task && user_task(task, true))
		thread_get(task, true, true);
	return 0;
}

/* exec: identity refresh, no thread state */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p)
{
	on_exec(p);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_raw, struct task_struct *p)
{
	on_exec(p);
	return 0;
}
