// SPDX-License-Identifier: Apache-2.0
// Building prometheus-cpp MetricFamily values by hand: collectors own their numbers (read from
// BPF maps at scrape time) and only describe them here, the ebpf_exporter way.
#pragma once
#include <prometheus/metric_family.h>

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace aurum::metrics {

using Labels = std::vector<prometheus::ClientMetric::Label>;

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type);

void add_counter(prometheus::MetricFamily &f, Labels labels, double value);
void add_gauge(prometheus::MetricFamily &f, Labels labels, double value);

// A histogram from per-bucket (non-cumulative) counts. `bounds` are the finite upper bounds in
// the exported unit; `counts` has bounds.size() + 1 entries, the last one being +Inf.
void add_histogram(prometheus::MetricFamily &f, Labels labels, std::span<const double> bounds,
		   std::span<const std::uint64_t> counts, double sum);

// Upper bounds, in seconds, of the log2 slots of bpf/proto/hist.h: slot s <= 2^(s+min_shift) ns.
std::vector<double> log2_bounds_seconds(unsigned min_shift, unsigned nslots);

} // namespace aurum::metrics
