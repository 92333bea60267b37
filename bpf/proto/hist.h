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

/* In BPF, a value clang must not reason about. The bucket math below is arithmetic with no
 * compare: BPF has no conditional move, so clang turns a compare into a branch, and each branch
 * is a path the verifier walks on its own (a slot's 46 values each made a path through the rest of
 * a program, which is why the slot was once computed in a global function, a call and a return
 * through the return thunk that cost ~12 ns a value here). Unmasked, clang folds the arithmetic
 * back into compares. */
#if defined(__bpf__)
#define AURUM_OPAQUE(x) asm volatile("" : "+r"(x))
#else
#define AURUM_OPAQUE(x) ((void)0)
#endif

/* 1 if a < b, else 0, for a and b below 2^63: the sign bit of a - b. */
static __always_inline __u64 aurum_lt(__u64 a, __u64 b)
{
	__u64 d = a - b;

	AURUM_OPAQUE(d);
	return d >> 63;
}

/* min(v, m) for v and m below 2^63. */
static __always_inline __u64 aurum_min(__u64 v, __u64 m)
{
	__u64 d = v - m, neg;

	AURUM_OPAQUE(d);
	neg = 0 - (d >> 63);
	AURUM_OPAQUE(neg);
	return m + (d & neg);
}

/* Smallest s >= 0 with v <= 2^(s + min_shift), capped at nslots - 1. */
static __always_inline __u32 aurum_log2_slot(__u64 v, __u32 min_shift, __u32 nslots)
{
	__u64 x, t, bits, s, nz = v | (0 - v);

	/* ceil(log2(v)) is the number of significant bits of v - 1; v = 0 counts as 1 (none). Then
	 * a binary search on the bits, each step (y + 2^k - 1) >> k: 1 if y (below 2^k) is not 0. */
	AURUM_OPAQUE(nz);
	x = v - 1 + ((nz >> 63) ^ 1);
	AURUM_OPAQUE(x);
	t = (((x >> 32) + 0xffffffffULL) >> 32) << 5;
	x >>= t;
	bits = t;
	AURUM_OPAQUE(x);
	t = (((x >> 16) + 0xffffULL) >> 16) << 4;
	x >>= t;
	bits += t;
	AURUM_OPAQUE(x);
	t = (((x >> 8) + 0xffULL) >> 8) << 3;
	x >>= t;
	bits += t;
	AURUM_OPAQUE(x);
	t = (((x >> 4) + 0xfULL) >> 4) << 2;
	x >>= t;
	bits += t;
	AURUM_OPAQUE(x);
	t = (((x >> 2) + 3) >> 2) << 1;
	x >>= t;
	bits += t;
	AURUM_OPAQUE(x);
	t = x >> 1; /* x < 4: 1 if bit 1 is set */
	x >>= t;
	bits += t + x;
	AURUM_OPAQUE(bits);
	/* bits <= min_shift: slot 0; else bits - min_shift, at most nslots - 1 */
	s = 0 - aurum_lt(min_shift, bits);
	AURUM_OPAQUE(s);
	s &= bits - min_shift;
	return (__u32)aurum_min(s, nslots - 1);
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
