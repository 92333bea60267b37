/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Histogram bucket math shared by the BPF programs and the exporter.
 *
 * Log2 histograms: slot s counts values v with upper(s-1) < v <= upper(s), where
 * upper(s) = 2^(s + min_shift). Slot 0 takes everything <= 2^min_shift; the last slot is the
 * overflow (+Inf). Prometheus buckets are cumulative "v <= le", so with this layout the exported
 * `le` of slot s is exactly upper(s): no value sits on a boundary of the wrong side. */
#ifndef AURUM_PROTO_HIST_H
#define AURUM_PROTO_HIST_H
#include "types.h"

/* Smallest s >= 0 with v <= 2^(s + min_shift), capped at nslots - 1. */
static __always_inline __u32 aurum_log2_slot(__u64 v, __u32 min_shift, __u32 nslots)
{
	__u32 bits = 0;
	if (v <= 1)
		return 0;
	/* ceil(log2(v)) == number of significant bits of (v - 1). Unrolled binary search:
	 * constant cost in BPF (no loop for the verifier to bound). */
	__u64 x = v - 1;
	if (x >> 32) { bits += 32; x >>= 32; }
	if (x >> 16) { bits += 16; x >>= 16; }
	if (x >> 8) { bits += 8; x >>= 8; }
	if (x >> 4) { bits += 4; x >>= 4; }
	if (x >> 2) { bits += 2; x >>= 2; }
	if (x >> 1) { bits += 1; x >>= 1; }
	bits += (__u32)x;
	if (bits <= min_shift)
		return 0;
	bits -= min_shift;
	return bits < nslots ? bits : nslots - 1;
}

/* Index of the first bound >= v in an ascending array of nbounds bounds, or nbounds (+Inf).
 * For the fixed bucket sets of the semantic conventions (at most 16 bounds). */
#define AURUM_MAX_FIXED_BOUNDS 16
static __always_inline __u32 aurum_fixed_slot(__u64 v, const __u64 *bounds, __u32 nbounds)
{
	__u32 i;
	for (i = 0; i < AURUM_MAX_FIXED_BOUNDS; i++) {
		if (i >= nbounds || v <= bounds[i])
			return i;
	}
	return nbounds;
}
#endif
