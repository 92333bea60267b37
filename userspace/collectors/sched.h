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
	};
	struct Seen {
		aurum_sched_stats last{};
		identity::ServiceId service = 0;
	};
	struct KeyLess {
		bool operator()(const aurum_proc_key &a, const aurum_proc_key &b) const
		{
			return a.tgid != b.tgid ? a.tgid < b.tgid : a.start_ns < b.start_ns;
		}
	};
	struct Impl;
	std::unique_ptr<Impl> impl_;
	std::unique_ptr<ProgramSet> programs_;
	std::map<aurum_proc_key, Seen, KeyLess> seen_;
	std::map<identity::ServiceId, Totals> totals_;
	std::map<identity::ServiceId, std::uint64_t> inflight_ns_; // on CPU right now, not yet folded
};

} // namespace aurum
