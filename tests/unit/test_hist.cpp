// SPDX-License-Identifier: Apache-2.0
// Bucket math of bpf/proto/hist.h against Prometheus `le` semantics: a value v is counted in
// every bucket whose upper bound le satisfies v <= le.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "bpf/proto/hist.h"
#include "metrics/family.h"

using aurum::metrics::log2_bounds_seconds;

TEST(Log2Slot, BoundariesAreInclusiveUpperBounds)
{
	// min_shift 10: slot 0 is v <= 1024, slot 1 is 1024 < v <= 2048, ...
	EXPECT_EQ(aurum_log2_slot(0, 10, 25), 0u);
	EXPECT_EQ(aurum_log2_slot(1, 10, 25), 0u);
	EXPECT_EQ(aurum_log2_slot(1024, 10, 25), 0u);
	EXPECT_EQ(aurum_log2_slot(1025, 10, 25), 1u);
	EXPECT_EQ(aurum_log2_slot(2048, 10, 25), 1u);
	EXPECT_EQ(aurum_log2_slot(2049, 10, 25), 2u);
	EXPECT_EQ(aurum_log2_slot(~0ULL, 10, 25), 24u) << "overflow goes to the last (+Inf) slot";
	EXPECT_EQ(aurum_log2_slot(1ULL << 40, 10, 25), 24u);
	EXPECT_EQ(aurum_log2_slot(3, 0, 64), 2u);
	EXPECT_EQ(aurum_log2_slot(4, 0, 64), 2u);
	EXPECT_EQ(aurum_log2_slot(5, 0, 64), 3u);
}

// The slot is computed with no compare (arithmetic on sign bits, see hist.h): every power of two
// and its neighbours, for every shift and slot count the components use, against a plain loop.
TEST(Log2Slot, EveryPowerOfTwoAndItsNeighboursAgreeWithALoop)
{
	auto reference = [](uint64_t v, unsigned shift, unsigned nslots) {
		unsigned s = 0;
		while (s < nslots - 1 && s + shift < 64 && v > (1ULL << (s + shift)))
			s++;
		return s;
	};
	for (unsigned shift : {0u, 6u, 10u})
		for (unsigned nslots : {2u, 22u, 25u, 64u})
			for (unsigned k = 0; k < 64; k++)
				for (int64_t d : {-1, 0, 1}) {
					uint64_t v = (1ULL << k) + static_cast<uint64_t>(d);
					ASSERT_EQ(aurum_log2_slot(v, shift, nslots), reference(v, shift, nslots))
						<< "v=" << v << " shift=" << shift << " nslots=" << nslots;
				}
	EXPECT_EQ(aurum_log2_slot(0, 0, 64), 0u);
	EXPECT_EQ(aurum_log2_slot(~0ULL, 0, 64), 63u);
	EXPECT_EQ(aurum_log2_slot(~0ULL, 6, 22), 21u);
}

TEST(Log2Slot, AgreesWithLeSemanticsOnRandomValues)
{
	const unsigned shift = 10, nslots = 25;
	auto bounds = log2_bounds_seconds(shift, nslots);
	ASSERT_EQ(bounds.size(), nslots - 1);
	std::mt19937_64 rng(7);
	for (int i = 0; i < 200000; i++) {
		uint64_t v = rng() >> (rng() % 64);
		unsigned s = aurum_log2_slot(v, shift, nslots);
		double secs = static_cast<double>(v) / 1e9;
		// v belongs to the first bucket whose bound is >= v.
		unsigned expect = nslots - 1;
		for (unsigned b = 0; b < bounds.size(); b++) {
			if (static_cast<double>(v) <= std::ldexp(1.0, static_cast<int>(b + shift))) {
				expect = b;
				break;
			}
		}
		ASSERT_EQ(s, expect) << "v=" << v << " (" << secs << " s)";
	}
}

TEST(FixedSlot, SemanticConventionBuckets)
{
	// 5 ms .. 10 s in ns, as the HTTP duration histogram uses.
	const __u64 b[] = {5000000, 10000000, 25000000, 50000000, 75000000, 100000000, 250000000,
			   500000000, 750000000, 1000000000, 2500000000, 5000000000, 7500000000, 10000000000};
	EXPECT_EQ(aurum_fixed_slot(0, b, 14), 0u);
	EXPECT_EQ(aurum_fixed_slot(5000000, b, 14), 0u) << "le is inclusive";
	EXPECT_EQ(aurum_fixed_slot(5000001, b, 14), 1u);
	EXPECT_EQ(aurum_fixed_slot(10000000000, b, 14), 13u);
	EXPECT_EQ(aurum_fixed_slot(10000000001, b, 14), 14u) << "+Inf";
}

TEST(Histogram, CumulativeBucketsEndAtCount)
{
	auto f = aurum::metrics::family("x_seconds", "h", prometheus::MetricType::Histogram);
	const double bounds[] = {0.1, 0.2, 0.4};
	const std::uint64_t counts[] = {1, 0, 2, 5};
	aurum::metrics::add_histogram(f, {{"service_name", "a"}}, bounds, counts, 3.5);
	const auto &h = f.metric[0].histogram;
	ASSERT_EQ(h.bucket.size(), 3u);
	EXPECT_EQ(h.bucket[0].cumulative_count, 1u);
	EXPECT_EQ(h.bucket[1].cumulative_count, 1u);
	EXPECT_EQ(h.bucket[2].cumulative_count, 3u);
	EXPECT_EQ(h.sample_count, 8u) << "+Inf = every observation";
	EXPECT_DOUBLE_EQ(h.sample_sum, 3.5);
}
