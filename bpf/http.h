/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* HTTP/1.x component: types shared verbatim by bpf/http.bpf.c and userspace/collectors/http.cpp,
 * and the duration bucket math (pure, unit-tested on the host). */
#ifndef AURUM_HTTP_H
#define AURUM_HTTP_H
#include "common.h"
#include "proto/hist.h"

/* Pending requests per connection (pipelining depth). A request past this is counted as lost. */
#define AURUM_HTTP_FIFO 8
/* Bytes of a request or status line kept when a segment ends inside its first 16 bytes. */
#define AURUM_HTTP_PARTIAL 16
/* Request target bytes carried to userspace for the http_route label (routes on only). */
#define AURUM_HTTP_TARGET 64

enum aurum_http_side {
	AURUM_HTTP_SIDE_NONE = 0,
	AURUM_HTTP_SIDE_SERVER = 1, /* request lines arrive, status lines leave */
	AURUM_HTTP_SIDE_CLIENT = 2, /* request lines leave, status lines arrive */
};

/* Status code of a request whose connection closed (FIN or RST) before any final response:
 * exported as http_response_status_code="0" (see docs/metrics.md). */
#define AURUM_HTTP_STATUS_CLOSED 0

/* Duration buckets, ns. Every bound of the OpenTelemetry semantic conventions' advice (0.005 0.01
 * 0.025 0.05 0.075 0.1 0.25 0.5 0.75 1 2.5 5 7.5 10 s) is one of these, so queries on those `le`
 * keep working; the points in between keep neighbouring bounds within 1.25x of each other from
 * 4 ms to 500 ms (1.2x or less from 10 to 250 ms), so that histogram_quantile() lands within about
 * 10% where web latencies live (with the
 * advice's 14 bounds a 100 ms p50 reads as 175 ms). See docs/http-design.md. */
#define AURUM_HTTP_NBOUNDS 45
#define AURUM_HTTP_SLOTS (AURUM_HTTP_NBOUNDS + 1)
#define AURUM_MS 1000000ULL
#define AURUM_HTTP_BOUNDS_NS                                                                       \
	{                                                                                          \
		1 * AURUM_MS, 1500000ULL, 2 * AURUM_MS, 2500000ULL, 3 * AURUM_MS, 4 * AURUM_MS,    \
		5 * AURUM_MS, 6 * AURUM_MS, 7500000ULL, 8500000ULL, 10 * AURUM_MS, 11 * AURUM_MS,  \
		12500000ULL, 15 * AURUM_MS, 17500000ULL, 20 * AURUM_MS, 22500000ULL, 25 * AURUM_MS, \
		30 * AURUM_MS, 35 * AURUM_MS, 40 * AURUM_MS, 45 * AURUM_MS, 50 * AURUM_MS,        \
		60 * AURUM_MS, 75 * AURUM_MS, 85 * AURUM_MS, 100 * AURUM_MS, 110 * AURUM_MS,       \
		125 * AURUM_MS, 150 * AURUM_MS, 175 * AURUM_MS, 200 * AURUM_MS, 250 * AURUM_MS,    \
		300 * AURUM_MS, 350 * AURUM_MS, 400 * AURUM_MS, 500 * AURUM_MS, 750 * AURUM_MS, 1000 * AURUM_MS,   \
		1500 * AURUM_MS, 2500 * AURUM_MS, 5000 * AURUM_MS, 7500 * AURUM_MS,                \
		10000 * AURUM_MS, 30000 * AURUM_MS                                                 \
	}

/* Body sizes: log2 slots from <= 64 B (2^6) to <= 64 MiB (2^26), then +Inf (bpf/proto/hist.h). */
#define AURUM_HTTP_SIZE_MIN_SHIFT 6
#define AURUM_HTTP_SIZE_SLOTS 22

/* Index of the first bound >= v (AURUM_HTTP_NBOUNDS: +Inf). A fixed six-step binary search with
 * no compare (bpf/proto/hist.h says why): the same few instructions for every value, and one path
 * for the verifier. `bounds` has 64 entries, read only below AURUM_HTTP_NBOUNDS. */
static __always_inline __u32 aurum_http_duration_slot(__u64 v, const __u64 *bounds)
{
	__u64 lo = 0, take;

	/* Below 2^62, so that aurum_lt() holds; every bound is far below that. */
	take = 0 - (((v >> 62) + 3) >> 2);
	AURUM_OPAQUE(take);
	v -= (v - (1ULL << 62)) & take;
	/* Invariant: every bound below `lo` is < v. 64 > NBOUNDS, so six halvings cover it. */
#define AURUM_HTTP_STEP(s)                                                                         \
	take = aurum_lt(bounds[(lo + (s) - 1) & 63], v) & aurum_lt(lo + (s), AURUM_HTTP_NBOUNDS + 1);  \
	take = 0 - take;                                                                           \
	AURUM_OPAQUE(take);                                                                        \
	lo += (s) & take;                                                                          \
	AURUM_OPAQUE(lo);
	AURUM_HTTP_STEP(32)
	AURUM_HTTP_STEP(16)
	AURUM_HTTP_STEP(8)
	AURUM_HTTP_STEP(4)
	AURUM_HTTP_STEP(2)
	AURUM_HTTP_STEP(1)
#undef AURUM_HTTP_STEP
	return (__u32)lo;
}

/* One aggregate per (owner process, side, method, status code, server port). A loop pair's
 * response (bpf/http.bpf.c, loopback: both ends local, the client end records for both) is one
 * aggregate for both ends: the client's key with the server end's owner in `peer`, which userspace
 * adds to the server's figures too (side server, no port or address). One map update a request
 * instead of two: 50-85 ns of a request on wrk against nginx. */
struct aurum_http_key {
	struct aurum_proc_key owner;
	__u8 side;        /* enum aurum_http_side */
	__u8 method;      /* enum aurum_http_method (bpf/proto/http.h) */
	__u16 status;     /* 100..599, or AURUM_HTTP_STATUS_CLOSED */
	__u16 port;       /* client side: the server's port; server side: 0 */
	__u16 pad;        /* zero: keys are compared bytewise */
	__u32 addr[4];    /* client side: the server's address (IPv4 as ::ffff:a.b.c.d), network order */
	struct aurum_proc_key peer; /* client side of a loop pair: the server end's owner; else zero */
};

/* No count fields: a histogram's count is the sum of its slots, and each atomic add left out is
 * ~7 ns of a record (two records per request on loopback). */
struct aurum_http_stats {
	__u64 sum_ns;
	__u64 slots[AURUM_HTTP_SLOTS];
	/* Body sizes where Content-Length (or the absence of a body) made them known; log2 slots,
	 * see AURUM_HTTP_SIZE_MIN_SHIFT. */
	__u64 req_body_sum;
	__u64 resp_body_sum;
	__u64 req_body_slots[AURUM_HTTP_SIZE_SLOTS];
	__u64 resp_body_slots[AURUM_HTTP_SIZE_SLOTS];
};

/* The name of a client process, taken from its own first send on each connection, for one gone
 * before userspace looked at /proc. */
struct aurum_http_flow_key {
	struct aurum_proc_key owner;
	__u8 side;
	__u8 pad[7];
};

struct aurum_http_flow {
	char comm[AURUM_COMM_LEN];
};

/* One connection's pending requests, written by the http_inflight iterator. */
struct aurum_http_inflight {
	struct aurum_proc_key owner;
	__u8 side;
	__u8 pad[3];
	__u32 count;
};

/* One completed request, through the ringbuf, only when route reporting is on. */
struct aurum_http_event {
	struct aurum_proc_key owner;
	__u64 duration_ns;
	__u16 status;
	__u8 side;
	__u8 method;
	__u16 port;
	__u8 target_len;
	__u8 pad;
	char target[AURUM_HTTP_TARGET]; /* request-target bytes as they arrived, not terminated */
};

enum aurum_http_loss {
	AURUM_HTTP_LOSS_STATS_FULL = 0,   /* the aggregate map had no room for a new key */
	AURUM_HTTP_LOSS_FLOW_FULL = 1,    /* the client-name map (http_flows) had no room */
	AURUM_HTTP_LOSS_FIFO_FULL = 2,    /* more pipelined requests than AURUM_HTTP_FIFO */
	AURUM_HTTP_LOSS_RINGBUF = 3,      /* route event not reserved */
	AURUM_HTTP_LOSS_NO_OWNER = 4,     /* completed before any process-context packet named the owner */
	AURUM_HTTP_LOSS_UNMATCHED = 5,    /* a status line with no pending request (joined mid-stream) */
	AURUM_HTTP_LOSS_NESTED = 6,       /* a segment not parsed: programs nested deeper than contexts do */
	AURUM_HTTP_LOSS_MAX = 7,
};

/* Load-time knobs (.rodata). */
struct aurum_http_config {
	__u8 routes;       /* send completed server requests with their target through the ringbuf */
	__u8 shared_owner; /* the net component's sock_owner map is ours (fd reused): read owners there */
	__u8 pad[6];
};
#endif
