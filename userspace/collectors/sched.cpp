// SPDX-License-Identifier: Apache-2.0
#include "collectors/sched.h"

#include <bpf/bpf.h>
#include <time.h>

#include <cstring>

#include "core/log.h"
#include "core/maps.h"
#include "metrics/family.h"
#include "bpf/proto/hist.h"
#include "sched.skel.h"

namespace aurum {

struct SchedCollector::Impl {
	Skeleton<sched_bpf> skel{sched_bpf__open(), sched_bpf__destroy, "sched"};
};

namespace {

std::vector<HookSpec> sched_hooks()
{
	const std::vector<Feature> ts = {Feature::tp_btf, Feature::task_storage};
	auto three = [&](const char *a, const char *b, const char *c) {
		return std::vector<Variant>{{"tp_btf+task_storage", {a}, ts}, {"tp_btf+hash", {b}, {Feature::tp_btf}}, {"raw_tp+hash", {c}, {Feature::raw_tp}}};
	};
	return {
		{"sched_switch", true, "CPU time and run-queue delay", three("switch_btf_ts", "switch_btf_h", "switch_raw_h"), {}},
		{"sched_wakeup", false, "run-queue delay of woken threads", three("wakeup_btf_ts", "wakeup_btf_h", "wakeup_raw_h"), {}},
		{"sched_wakeup_new", false, "run-queue delay of new threads", three("wakeup_new_btf_ts", "wakeup_new_btf_h", "wakeup_new_raw_h"), {}},
		{"sched_process_exec", false, "service re-naming after execve (until the next /proc rescan)",
		 {{"tp_btf", {"exec_btf"}, {Feature::tp_btf}}, {"raw_tp", {"exec_raw"}, {Feature::raw_tp}}}, {}},
	};
}

std::uint64_t monotonic_ns()
{
	timespec ts{};
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

} // namespace

SchedCollector::SchedCollector(const Features &features, Options opts) : impl_(std::make_unique<Impl>())
{
	auto *skel = impl_->skel.get();
	programs_ = std::make_unique<ProgramSet>("sched", skel->obj);
	programs_->choose(sched_hooks(), features);
	// Thread state lives in task storage where the switch program uses it, else in the hash:
	// the map of the other kind is not created (it would fail on kernels without it).
	bool use_ts = features.has(Feature::tp_btf) && features.has(Feature::task_storage);
	bpf_map__set_autocreate(skel->maps.sched_thr_ts, use_ts);
	bpf_map__set_autocreate(skel->maps.sched_thr_h, !use_ts);
	bpf_map__set_max_entries(skel->maps.sched_procs, opts.max_processes);
	skel->rodata->loaded_ns = monotonic_ns();
	if (int err = sched_bpf__load(skel))
		throw Error("load sched BPF programs (see the libbpf lines above)", err);
	programs_->attach();
	log::info("sched: thread state in %s", use_ts ? "task storage" : "an LRU hash (no task storage)");
}

SchedCollector::~SchedCollector() { programs_->detach(); }

void SchedCollector::poll(identity::ServiceDirectory &dir)
{
	auto *skel = impl_->skel.get();
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
	for (const auto &k : dead)
		seen_.erase(k);

	// Who is on a CPU right now has time that no switch has accounted yet.
	inflight_ns_.clear();
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu > 0) {
		std::vector<aurum_sched_cur> cur(static_cast<size_t>(ncpu));
		__u32 zero = 0;
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.sched_cur), &zero, cur.data()) == 0) {
			std::uint64_t now = monotonic_ns();
			for (const auto &c : cur) {
				if (c.pid == 0 || c.since_ns == 0 || now <= c.since_ns)
					continue;
				auto it = seen_.find(c.key);
				identity::ServiceId sid = it != seen_.end() ? it->second.service : dir.service_of(c.key, "", 0);
				inflight_ns_[sid] += now - c.since_ns;
			}
		}
	}
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
		if (t.rq_count)
			metrics::add_histogram(rq, labels, bounds, t.rq_slots, static_cast<double>(t.rq_sum_ns) / 1e9);
	}
	out.push_back(std::move(cpu));
	out.push_back(std::move(rq));
}

std::vector<Loss> SchedCollector::losses() const
{
	std::vector<Loss> out;
	int fd = bpf_map__fd(impl_->skel->maps.sched_lost);
	const char *names[AURUM_SCHED_LOSS_MAX] = {"process_map_full", "thread_map_full"};
	for (__u32 i = 0; i < AURUM_SCHED_LOSS_MAX; i++) {
		__u64 v = 0;
		bpf_map_lookup_elem(fd, &i, &v);
		out.push_back({names[i], v});
	}
	return out;
}

} // namespace aurum
