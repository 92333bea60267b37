// SPDX-License-Identifier: Apache-2.0
// bpf/http.h: the duration bucket bounds and the binary search the BPF side runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "bpf/http.h"
#include "collectors/http.h"

namespace {

const __u64 kBounds[64] = AURUM_HTTP_BOUNDS_NS;

__u32 linear_slot(__u64 v)
{
	for (__u32 i = 0; i < AURUM_HTTP_NBOUNDS; i++)
		if (v <= kBounds[i])
			return i;
	return AURUM_HTTP_NBOUNDS;
}

TEST(HttpBuckets, AscendingAndContainTheSemanticConventionsAdvice)
{
	for (int i = 1; i < AURUM_HTTP_NBOUNDS; i++)
		EXPECT_LT(kBounds[i - 1], kBounds[i]) << i;
	const double advice[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};
	const auto &b = aurum::HttpCollector::duration_bounds();
	ASSERT_EQ(b.size(), static_cast<size_t>(AURUM_HTTP_NBOUNDS));
	for (double a : advice)
		EXPECT_NE(std::find(b.begin(), b.end(), a), b.end()) << a;
}

TEST(HttpBuckets, NeighboursWithin25PercentFrom4To500ms)
{
	for (int i = 1; i < AURUM_HTTP_NBOUNDS && kBounds[i] <= 500 * AURUM_MS; i++)
		if (kBounds[i - 1] >= 4 * AURUM_MS)
			EXPECT_LE(static_cast<double>(kBounds[i]) / static_cast<double>(kBounds[i - 1]), 1.2501) << kBounds[i];
}

TEST(HttpBuckets, BinarySearchEqualsLinearSearch)
{
	for (int i = 0; i < AURUM_HTTP_NBOUNDS; i++) {
		for (__s64 d : {-1, 0, 1}) {
			__u64 v = kBounds[i] + static_cast<__u64>(d);
			EXPECT_EQ(aurum_http_duration_slot(v, kBounds), linear_slot(v)) << v;
		}
	}
	EXPECT_EQ(aurum_http_duration_slot(0, kBounds), 0u);
	EXPECT_EQ(aurum_http_duration_slot(~0ULL, kBounds), static_cast<__u32>(AURUM_HTTP_NBOUNDS));
	std::mt19937_64 rng(42);
	for (int i = 0; i < 100000; i++) {
		__u64 v = rng() >> (rng() % 64);
		ASSERT_EQ(aurum_http_duration_slot(v, kBounds), linear_slot(v)) << v;
	}
}

} // namespace
