// SPDX-License-Identifier: Apache-2.0
// The fallback table of one BPF object: for each hook, its variants in order of preference and
// the kernel features each needs. The choice is made from the feature probes before load; the
// programs of the other variants are not loaded. After load the chosen programs are attached and
// each hook's fate is recorded for `--check`, the log and aurum_probe_attached.
#pragma once
#include <bpf/libbpf.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/features.h"

namespace aurum {

struct Variant {
	std::string name;                  // tp_btf, raw_tp, tracepoint, kprobe, fentry, cgroup_skb ...
	std::vector<std::string> programs; // program (function) names in the object
	std::vector<Feature> needs;
};

struct HookSpec {
	std::string hook;      // e.g. sched_switch
	bool mandatory = false;
	std::string degrades;  // what is lost without it, for the log and docs
	std::vector<Variant> variants;
	// Attaches one program where libbpf's auto-attach does not know how (cgroup programs).
	std::function<bpf_link *(bpf_program *)> attach;
	// Set instead of attaching: hands the loaded program to another component's program, which
	// tail-calls it (0, or a negative errno). Nothing of ours is attached then.
	std::function<int(bpf_program *)> chain;
	std::string chained_to; // for the log: whose program calls it
};

struct HookStatus {
	std::string component, hook, variant, reason, degrades;
	bool mandatory = false;
	bool attached = false;
};

struct ProgramStats {
	std::string component, program;
	std::uint64_t run_time_ns = 0, run_count = 0;
};

// Owns a skeleton pointer and destroys it: open/load errors carry errno and context.
template <typename T> class Skeleton {
public:
	using Destroy = void (*)(T *);
	Skeleton(T *s, Destroy destroy, const char *what) : s_(s, destroy)
	{
		if (!s)
			throw Error(std::string("open BPF object ") + what, errno);
	}
	T *get() const { return s_.get(); }
	T *operator->() const { return s_.get(); }

private:
	std::unique_ptr<T, Destroy> s_;
};

class ProgramSet {
public:
	ProgramSet(std::string component, bpf_object *obj);
	ProgramSet(const ProgramSet &) = delete;
	ProgramSet &operator=(const ProgramSet &) = delete;

	// Picks the first variant of each hook whose needs are met; disables every other program.
	void choose(std::vector<HookSpec> hooks, const Features &features);
	// The variant chosen for a hook, "" if none could be.
	std::string chosen(const std::string &hook) const;
	// Attaches the chosen programs (after load). A mandatory hook that fails throws.
	void attach();
	// Detaches everything (links are destroyed).
	void detach() { links_.clear(); }

	const std::vector<HookStatus> &status() const { return status_; }
	std::vector<ProgramStats> stats() const;

private:
	struct LinkDeleter {
		void operator()(bpf_link *l) const { bpf_link__destroy(l); }
	};
	std::string component_;
	bpf_object *obj_;
	std::vector<HookSpec> hooks_;
	std::vector<int> choice_; // index of the variant per hook, -1 none
	std::vector<HookStatus> status_;
	std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links_;
};

} // namespace aurum
