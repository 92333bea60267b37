// SPDX-License-Identifier: Apache-2.0
#include "collectors/sched.h"

#include <bpf/bpf.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/iter.h"
#include "core/log.h"
#include "core/maps.h"
#include "metrics/family.h"
#include "bpf/proto/hist.h"
#include "sched.skel.h"

namespace aurum {

static_assert(sizeof(aurum_sched_thread_ts) % 8 == 0);
static_assert(sizeof(aurum_sched_pending) == 16 + 8 + 8 + 8 * AURUM_RQ_SLOTS);

struct SchedCollector::Impl {
	Skeleton<sched_bpf> skel{sched_bpf__open(), sched_bpf__destroy, "sched"};
	bpf_link *pending = nullptr; // pending_iter's, owned by the ProgramSet
};

namespace {

std::vector<HookSpec> sched_hooks(bool use_ts, std::function<bpf_link *(bpf_program *)> attach_pending)
{
	const std::vector<Feature> ts = {Feature::tp_btf, Feature::task_storage};
	auto three = [&](const char *a, const char *b, const char *c) {
		return std::vector<Variant>{{"tp_btf+task_storage", {a}, ts}, {"tp_btf+hash", {b}, {Feature::tp_btf}}, {"raw_tp+hash", {c}, {Feature::raw_tp}}};
	};
	// With the kernel's own run-queue delay (sched_info), the switch reads each wait at the
	// thread's switch-out and nothing runs on wakeups: the "sched_info" variant has no program.
	auto waits = [&](const char *a, const char *b, const char *c) {
		auto v = three(a, b, c);
		v.insert(v.begin(), Variant{"sched_info", {}, {Feature::sched_info}});
		return v;
	};
	std::vector<HookSpec> hooks = {
		{"sched_switch", true, "CPU time and run-queue delay", three("switch_btf_ts", "switch_btf_h", "switch_raw_h"), {}},
		{"sched_wakeup", false, "run-queue delay of woken threads", waits("wakeup_btf_ts", "wakeup_btf_h", "wakeup_raw_h"), {}},
		{"sched_wakeup_new", false, "run-queue delay of new threads", waits("wakeup_new_btf_ts", "wakeup_new_btf_h", "wakeup_new_raw_h"), {}},
		{"sched_process_exec", false, "service re-naming after execve (until the next /proc rescan)",
		 {{"tp_btf", {"exec_btf"}, {Feature::tp_btf}}, {"raw_tp", {"exec_raw"}, {Feature::raw_tp}}}, {}},
	};
	// CPU time and waits kept per thread and read live: only where thread state is in task
	// storage (the hash variants keep the per-switch path and have no such hook).
	if (use_ts)
		hooks.push_back({"pending_iter", false,
				 "no signal: CPU time and waits are then added to the process's totals at each switch (~45 ns more a run)",
				 {{"bpf_iter", {"pending_iter"}, ts}}, std::move(attach_pending)});
	return hooks;
}

// Every live thread's pending figures (pending_iter's records).
std::vector<aurum_sched_pending> read_pending(bpf_link *link)
{
	std::vector<aurum_sched_pending> out;
	std::string raw = run_iter(link, "sched: the pending iterator");
	out.resize(raw.size() / sizeof(aurum_sched_pending));
	std::memcpy(out.data(), raw.data(), out.size() * sizeof(aurum_sched_pending));
	return out;
}

// v + now - before, never below zero (a service whose totals were dropped starts again).
void fold_change(std::uint64_t &v, std::uint64_t now, std::uint64_t before) { v = v + now >= before ? v + now - before : 0; }

std::uint64_t monotonic_ns()
{
	timespec ts{};
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Storage for every live thread before the hooks attach (seed_iter says why). Where it cannot
// run, the hooks create storage as they meet threads, as before: warned, not fatal.
void seed_thread_storage(bpf_program *prog)
{
	bpf_link *link = bpf_program__attach_iter(prog, nullptr);
	if (!link) {
		log::warn("sched: cannot attach the seed iterator (%s): thread storage is made as threads are met, and a "
			  "few first waits after start may go unmeasured",
			  std::strerror(errno));
		return;
	}
	try {
		run_iter(link, "sched: the seed iterator");
	} catch (const Error &e) {
		log::warn("%s: thread storage is made as threads are met", e.what());
	}
	bpf_link__destroy(link);
}

} // namespace

SchedCollector::SchedCollector(const Features &features, Options opts) : impl_(std::make_unique<Impl>())
{
	auto *skel = impl_->skel.get();
	programs_ = std::make_unique<ProgramSet>("sched", skel->obj);
	// Thread state lives in task storage where the switch program uses it, else in the hash:
	// the map of the other kind is not created (it would fail on kernels without it).
	bool use_ts = features.has(Feature::tp_btf) && features.has(Feature::task_storage);
	Impl *impl = impl_.get();
	programs_->choose(sched_hooks(use_ts,
				      [impl](bpf_program *p) {
					      impl->pending = bpf_program__attach_iter(p, nullptr);
					      return impl->pending;
				      }),
			  features);
	bpf_map__set_autocreate(skel->maps.sched_thr_ts, use_ts);
	bpf_map__set_autocreate(skel->maps.sched_thr_h, !use_ts);
	bpf_map__set_max_entries(skel->maps.sched_procs, opts.max_processes);
	skel->rodata->loaded_ns = monotonic_ns();
	skel->rodata->use_sched_info = programs_->chosen("sched_wakeup") == "sched_info";
	bpf_program__set_autoload(skel->progs.seed_iter, use_ts);
	if (int err = sched_bpf__load(skel))
		throw Error("load sched BPF programs (see the libbpf lines above)", err);
	if (use_ts)
		seed_thread_storage(skel->progs.seed_iter);
	programs_->attach();
	// From here the switch keeps figures per thread; the iterator that reads them is attached.
	if (impl_->pending)
		skel->bss->pending_on = 1;
	log::info("sched: thread state in %s%s; waits %s", use_ts ? "task storage" : "an LRU hash (no task storage)",
		  impl_->pending ? ", CPU time and waits kept per thread and read live" : "",
		  skel->rodata->use_sched_info ? "from the kernel's run-queue delay (sched_info), read at switch-out"
					       : "timed from wakeups and preemptions");
}

SchedCollector::~SchedCollector() { programs_->detach(); }

identity::ServiceId SchedCollector::service_for(identity::ServiceDirectory &dir, const aurum_proc_key &key)
{
	// Resolved with the process's sched_procs entry (exec_gen) where it has one; a process
	// with only live threads' pending figures is resolved once and kept while it exists.
	auto it = seen_.find(key);
	if (it != seen_.end() && it->second.service && dir.exists(it->second.service))
		return it->second.service;
	identity::ServiceId sid = dir.service_of(key, "", 0);
	seen_[key].service = sid;
	return sid;
}

// The live threads' pending figures into their services' totals: the change since the last
// poll, per process (figures that moved to sched_procs meanwhile were counted there).
void SchedCollector::fold_pending(identity::ServiceDirectory &dir)
{
	std::map<aurum_proc_key, Pending, KeyLess> now;
	try {
		for (const auto &r : read_pending(impl_->pending)) {
			auto &p = now[r.key];
			p.cpu_ns += r.cpu_ns;
			p.rq_sum_ns += r.rq_sum_ns;
			for (int i = 0; i < AURUM_RQ_SLOTS; i++)
				p.rq_slots[i] += r.rq_slots[i];
		}
	} catch (const Error &e) {
		log::warn("%s", e.what());
		return; // folded in as of the last poll; the next one catches up
	}
	auto fold = [](Totals &t, const Pending &p, const Pending &before) {
		fold_change(t.cpu_ns, p.cpu_ns, before.cpu_ns);
		fold_change(t.rq_sum_ns, p.rq_sum_ns, before.rq_sum_ns);
		std::uint64_t count = 0, count_before = 0;
		for (int i = 0; i < AURUM_RQ_SLOTS; i++) {
			fold_change(t.rq_slots[i], p.rq_slots[i], before.rq_slots[i]);
			count += p.rq_slots[i];
			count_before += before.rq_slots[i];
		}
		fold_change(t.rq_count, count, count_before);
	};
	for (auto &[key, s] : seen_) {
		if (!s.pend.empty() && !now.count(key)) {
			if (auto t = totals_.find(s.service); t != totals_.end())
				fold(t->second, Pending{}, s.pend);
			s.pend = Pending{};
		}
	}
	for (const auto &[key, p] : now) {
		identity::ServiceId sid = service_for(dir, key);
		auto &s = seen_[key];
		fold(totals_[sid], p, s.pend);
		s.pend = p;
	}
}

// Who is on a CPU right now has time that no switch has accounted yet (the per-switch path).
void SchedCollector::fold_inflight(identity::ServiceDirectory &dir)
{
	inflight_ns_.clear();
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return;
	std::vector<aurum_sched_cur> cur(static_cast<size_t>(ncpu));
	__u32 zero = 0;
	if (bpf_map_lookup_elem(bpf_map__fd(impl_->skel->maps.sched_cur), &zero, cur.data()) != 0)
		return;
	std::uint64_t now = monotonic_ns();
	for (const auto &c : cur) {
		if (c.pid == 0 || c.since_ns == 0 || now <= c.since_ns)
			continue;
		auto it = seen_.find(c.key);
		identity::ServiceId sid = it != seen_.end() ? it->second.service : dir.service_of(c.key, "", 0);
		inflight_ns_[sid] += now - c.since_ns;
	}
}

void SchedCollector::poll(identity::ServiceDirectory &dir)
{
	auto *skel = impl_->skel.get();
	for (auto &[key, s] : seen_)
		s.in_map = false;
	// A thread of a dead process may still be switching out: if so its entry comes back and is
	// folded again next time, from zero. Nothing is counted twice, nothing lost.
	auto dead = walk_map<aurum_proc_key, aurum_sched_stats>(
		bpf_map__fd(skel->maps.sched_procs), [&](const aurum_proc_key &key, aurum_sched_stats &v) {
			v.comm[AURUM_COMM_LEN - 1] = '\0';
			auto &seen = seen_[key];
			identity::ServiceId sid =
				dir.service_of(key, v.comm, v.exec_gen, static_cast<pid_t>(v.ppid),
					       std::string_view(v.cmdline, std::min<size_t>(v.cmdline_len, AURUM_CMDLINE_LEN)));
			seen.service = sid;
			seen.in_map = true;
			auto &t = totals_[sid];
			// Deltas, so that a process renamed by execve carries on into its new service.
			t.cpu_ns += v.cpu_ns - seen.last.cpu_ns;
			t.rq_count += v.rq_count - seen.last.rq_count;
			t.rq_sum_ns += v.rq_sum_ns - seen.last.rq_sum_ns;
			for (int i = 0; i < AURUM_RQ_SLOTS; i++)
				t.rq_slots[i] += v.rq_slots[i] - seen.last.rq_slots[i];
			seen.last = v;
			return dir.alive(key);
		});
	for (const auto &k : dead) {
		// Its entry is gone: if it comes back, it starts from zero.
		auto &s = seen_[k];
		s.in_map = false;
		s.last = aurum_sched_stats{};
	}

	// After sched_procs, never before: a dying thread's figures leave the thread before they
	// reach sched_procs (pending_flush), so in this order a poll may miss them once, never
	// count them twice.
	if (impl_->pending)
		fold_pending(dir);
	else
		fold_inflight(dir);
	for (auto &[sid, t] : totals_) {
		t.rq_sum_shown = std::max(t.rq_sum_shown, t.rq_sum_ns);
		for (int i = 0; i < AURUM_RQ_SLOTS; i++)
			t.rq_slots_shown[i] = std::max(t.rq_slots_shown[i], t.rq_slots[i]);
	}

	// A process with no entry in sched_procs (gone, or alive with only pending figures) and
	// none folded in is forgotten; one with pending figures folded in stays: they must come
	// out when they move.
	for (auto it = seen_.begin(); it != seen_.end();)
		it = !it->second.in_map && it->second.pend.empty() ? seen_.erase(it) : std::next(it);
}

void SchedCollector::collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out)
{
	for (auto it = totals_.begin(); it != totals_.end();)
		it = dir.exists(it->first) ? std::next(it) : totals_.erase(it);

	auto cpu = metrics::family("process_cpu_time_seconds_total",
				   "On-CPU time of all threads of all processes of the service (sched_switch).",
				   prometheus::MetricType::Counter);
	auto rq = metrics::family("aurum_cpu_runqueue_latency_seconds",
				  "Delay between a thread becoming runnable and running (sched_wakeup/sched_switch).",
				  prometheus::MetricType::Histogram);
	static const auto bounds = metrics::log2_bounds_seconds(AURUM_RQ_MIN_SHIFT, AURUM_RQ_SLOTS);
	for (auto &[sid, t] : totals_) {
		std::uint64_t shown = t.cpu_ns;
		if (auto f = inflight_ns_.find(sid); f != inflight_ns_.end())
			shown += f->second;
		// In-flight time is an estimate until the switch: never let the counter step back.
		t.cpu_reported_ns = std::max(t.cpu_reported_ns, shown);
		auto labels = dir.labels(sid);
		metrics::add_counter(cpu, labels, static_cast<double>(t.cpu_reported_ns) / 1e9);
		bool waited = std::any_of(std::begin(t.rq_slots_shown), std::end(t.rq_slots_shown), [](auto n) { return n != 0; });
		if (waited)
			metrics::add_histogram(rq, labels, bounds, t.rq_slots_shown, static_cast<double>(t.rq_sum_shown) / 1e9);
	}
	out.push_back(std::move(cpu));
	out.push_back(std::move(rq));
}

std::vector<Loss> SchedCollector::losses() const
{
	std::vector<Loss> out;
	int fd = bpf_map__fd(impl_->skel->maps.sched_lost);
	const char *names[AURUM_SCHED_LOSS_MAX] = {"process_map_full", "thread_map_full", "thread_storage_unavailable"};
	for (__u32 i = 0; i < AURUM_SCHED_LOSS_MAX; i++) {
		__u64 v = 0;
		bpf_map_lookup_elem(fd, &i, &v);
		out.push_back({names[i], v});
	}
	return out;
}

} // namespace aurum
