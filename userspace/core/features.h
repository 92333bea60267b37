// SPDX-License-Identifier: Apache-2.0
// Kernel feature probes, run once and memoized (bpftrace's bpffeature.h is the model). Each can
// be forced off from the command line (--force-off tp_btf,task_storage) so that the fallback
// paths load and run on a kernel that has everything.
#pragma once
#include <array>
#include <optional>
#include <set>
#include <string>
#include <vector>

struct btf;

namespace aurum {

enum class Feature {
	btf,          // /sys/kernel/btf/vmlinux: CO-RE relocations
	tracefs,      // tracefs mounted or mountable: perf-style tracepoints
	ringbuf,      // BPF_MAP_TYPE_RINGBUF (5.8)
	tp_btf,       // BTF-typed raw tracepoints (5.5)
	raw_tp,       // raw tracepoints (4.17)
	tracepoint,   // perf-style tracepoints via tracefs
	kprobe,       // kprobe PMU
	fentry,       // fentry/fexit trampolines
	uprobe,       // uprobe PMU
	task_storage, // BPF_MAP_TYPE_TASK_STORAGE (5.11)
	sk_storage,   // BPF_MAP_TYPE_SK_STORAGE (5.2)
	cgroup_skb,   // BPF_PROG_TYPE_CGROUP_SKB on cgroup v2
	cgroup_v2,    // a cgroup2 mount
	bpf_stats,    // BPF_ENABLE_STATS run time and count (5.8)
	bpf_loop,     // the bpf_loop() helper (5.17)
	tail_call,    // bpf_tail_call from cgroup_skb programs: http hands stream's ports to stream
	sk_lookup,    // bpf_sk_lookup_tcp from cgroup_skb programs: on loopback the sending end parses
	              // a segment for both ends (the receiver's socket found by its 4-tuple)
	sched_info,   // the kernel's per-task run-queue delay (struct sched_info, CONFIG_SCHED_INFO)
	              // kept and readable: waits are read at switch-out, no program on wakeups
	count_
};

constexpr size_t kFeatureCount = static_cast<size_t>(Feature::count_);
const char *feature_name(Feature f);
std::optional<Feature> feature_from_name(const std::string &name);

struct FeatureState {
	bool available = false;
	bool forced_off = false;
	std::string detail; // why not, or what was found
};

class Features {
public:
	// Probes everything now; `forced_off` names features to report as missing.
	explicit Features(const std::set<Feature> &forced_off = {});
	Features(const Features &) = delete;
	Features &operator=(const Features &) = delete;
	~Features();

	bool has(Feature f) const { return state_[static_cast<size_t>(f)].available; }
	const FeatureState &state(Feature f) const { return state_[static_cast<size_t>(f)]; }
	// Does vmlinux BTF describe this tracepoint ("btf_trace_<name>")?
	bool has_btf_tracepoint(const std::string &name) const;
	// How many arguments vmlinux BTF gives that tracepoint (its signature grows across kernels,
	// e.g. tcp_retransmit_skb gained `err` in 6.13); -1 if it is not there.
	int btf_tracepoint_args(const std::string &name) const;
	const std::string &cgroup2_path() const { return cgroup2_; }
	const std::string &tracefs_path() const { return tracefs_; }
	// One line per feature: "feature=<name> available=yes|no detail=\"...\"".
	std::string report() const;

private:
	void probe_all();
	std::array<FeatureState, kFeatureCount> state_{};
	struct btf *vmlinux_ = nullptr;
	std::string cgroup2_, tracefs_;
};

// Where cgroup2 is mounted, from a mountinfo text (first cgroup2 entry), "" if none.
std::string find_cgroup2_mount(const std::string &mountinfo);
// Mount point of a filesystem type, "" if none.
std::string find_mount(const std::string &mountinfo, const std::string &fstype);

// Routes libbpf's messages into the agent's log (one callback, set once).
void route_libbpf_log();

} // namespace aurum
