// SPDX-License-Identifier: Apache-2.0
// What the agent asks of every component. All calls happen under the agent's one lock.
#pragma once
#include <prometheus/metric_family.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/programs.h"
#include "identity/services.h"

namespace aurum {

struct Loss {
	std::string reason;
	std::uint64_t count = 0;
};

// scripts/bench/floor.sh's "lookup" variant: with AURUM_BENCH_STOP_AFTER_LOOKUP=1 in the
// environment, the HTTP and PostgreSQL programs stop every segment right after its connection's
// state lookup (what the hooks cost before any parsing). A benchmark knob, never for real runs:
// those components then measure nothing, and say so in a warning.
inline bool bench_stop_after_lookup()
{
	const char *v = std::getenv("AURUM_BENCH_STOP_AFTER_LOOKUP");
	return v && std::strcmp(v, "1") == 0;
}

class Collector {
public:
	virtual ~Collector() = default;
	virtual const char *name() const = 0;
	// Reads the kernel's maps and folds them into per-service totals; frees what dead
	// processes left in the maps.
	virtual void poll(identity::ServiceDirectory &dir) = 0;
	// Appends this component's metric families (after a poll).
	virtual void collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out) = 0;
	virtual std::vector<HookStatus> hooks() const { return {}; }
	virtual std::vector<ProgramStats> program_stats() const { return {}; }
	virtual std::vector<Loss> losses() const { return {}; }
};

} // namespace aurum
