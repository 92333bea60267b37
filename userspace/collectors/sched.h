// SPDX-License-Identifier: Apache-2.0
// On-CPU time and run-queue delay per service, from sched_switch / sched_wakeup(_new).
#pragma once
#include <map>
#include <memory>

#include "collectors/collector.h"
#include "bpf/sched.h"

struct sched_bpf;

namespace aurum {

class SchedCollector : public Collector {
public:
	struct Options {
		unsigned max_processes = 16384;
	};
	SchedCollector(const Features &features, Options opts);
	~SchedCollector() override;
	const char *name() const override { return "sched"; }
	void poll(identity::ServiceDirectory &dir) override;
	void collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out) override;
	std::vector<HookStatus> hooks() const override { return programs_->status(); }
	std::vector<ProgramStats> program_stats() const override { return programs_->stats(); }
	std::vector<Loss> losses() const override;

private:
	struct Totals {
		std::uint64_t cpu_ns = 0, cpu_reported_ns = 0;
		std::uint64_t rq_count = 0, rq_sum_ns = 0;
		std::uint64_t rq_slots[AURUM_RQ_SLOTS] = {};
		// What is exported of the histogram: each figure never lower than before. With
		// pending figures (see poll) a poll may miss some on their way from a dying thread to
		// sched_procs; the next one has them again. The count is the sum of the slots.
		std::uint64_t rq_sum_shown = 0;
		std::uint64_t rq_slots_shown[AURUM_RQ_SLOTS] = {};
	};
	// Live threads' pending figures of one process (pending_iter's records, summed).
	struct Pending {
		std::uint64_t cpu_ns = 0, rq_sum_ns = 0;
		std::uint64_t rq_slots[AURUM_RQ_SLOTS] = {};
		bool empty() const { return !cpu_ns && !rq_sum_ns; }
	};
	struct Seen {
		aurum_sched_stats last{};
		Pending pend; // as last folded into the service's totals
		identity::ServiceId service = 0;
		bool in_map = false; // has an entry in sched_procs (as of the last walk)
	};
	struct KeyLess {
		bool operator()(const aurum_proc_key &a, const aurum_proc_key &b) const
		{
			return a.tgid != b.tgid ? a.tgid < b.tgid : a.start_ns < b.start_ns;
		}
	};
	identity::ServiceId service_for(identity::ServiceDirectory &dir, const aurum_proc_key &key);
	void fold_pending(identity::ServiceDirectory &dir);
	void fold_inflight(identity::ServiceDirectory &dir);

	struct Impl;
	std::unique_ptr<Impl> impl_;
	std::unique_ptr<ProgramSet> programs_;
	std::map<aurum_proc_key, Seen, KeyLess> seen_;
	std::map<identity::ServiceId, Totals> totals_;
	std::map<identity::ServiceId, std::uint64_t> inflight_ns_; // on CPU right now, not yet folded
};

} // namespace aurum
