// SPDX-License-Identifier: Apache-2.0
// What the agent asks of every component. All calls happen under the agent's one lock.
#pragma once
#include <prometheus/metric_family.h>

#include <cstdint>
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
