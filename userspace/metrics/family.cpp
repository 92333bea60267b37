// SPDX-License-Identifier: Apache-2.0
#include "metrics/family.h"

#include <cmath>

namespace aurum::metrics {

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type)
{
	prometheus::MetricFamily f;
	f.name = std::move(name);
	f.help = std::move(help);
	f.type = type;
	return f;
}

void add_counter(prometheus::MetricFamily &f, Labels labels, double value)
{
	prometheus::ClientMetric m;
	m.label = std::move(labels);
	m.counter.value = value;
	f.metric.push_back(std::move(m));
}

void add_gauge(prometheus::MetricFamily &f, Labels labels, double value)
{
	prometheus::ClientMetric m;
	m.label = std::move(labels);
	m.gauge.value = value;
	f.metric.push_back(std::move(m));
}

void add_histogram(prometheus::MetricFamily &f, Labels labels, std::span<const double> bounds,
		   std::span<const std::uint64_t> counts, double sum)
{
	prometheus::ClientMetric m;
	m.label = std::move(labels);
	std::uint64_t cumulative = 0;
	for (size_t i = 0; i < bounds.size(); i++) {
		cumulative += i < counts.size() ? counts[i] : 0;
		m.histogram.bucket.push_back({cumulative, bounds[i]});
	}
	// The serializer writes le="+Inf" from sample_count.
	if (counts.size() > bounds.size())
		cumulative += counts[bounds.size()];
	m.histogram.sample_count = cumulative;
	m.histogram.sample_sum = sum;
	f.metric.push_back(std::move(m));
}

std::vector<double> log2_bounds_seconds(unsigned min_shift, unsigned nslots)
{
	std::vector<double> b;
	// nslots - 1 finite bounds: the last slot is the overflow.
	for (unsigned s = 0; s + 1 < nslots; s++)
		b.push_back(std::ldexp(1.0, static_cast<int>(s + min_shift)) / 1e9);
	return b;
}

} // namespace aurum::metrics
