// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* HTTP/1.x golden signals from TCP segments, server and client side.
 *
 * Two cgroup_skb programs on the cgroup v2 root see every TCP segment of every process in or below
 * it, in both directions, with no syscall hook at all (docs/http-design.md says what they cannot
 * see and why this design: ../shared/notes/hot-path-costs.md measured it as the cheapest). Per
 * connection, an sk_storage entry holds the pending requests (a FIFO: pipelined requests are
 * answered in order, RFC 9112 section 9.3.2), the next expected sequence number of each direction
 * (a retransmitted segment does not start a second request) and the first bytes of a request or
 * status line that a segment cut short.
 *
 * Server side: a request begins when the segment carrying its request line passes the ingress
 * hook (the packet reaching the socket, before the application reads it) and ends when the segment
 * carrying the first bytes of the status line passes the egress hook (right after the application
 * wrote it). Client side: the mirror. Aggregated in the kernel per (owner, side, method, status,
 * server port); only the route, when asked for, goes through a ringbuf. */
#include "common.bpf.h"
#include "http.h"
#include "loopback.bpf.h"
#include "sock_owner.bpf.h"
#include "stream_ports.bpf.h"
#include "proto/http.h"
#include "proto/hist.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define AF_INET6 10

const volatile struct aurum_http_config cfg = {};
/* bpf_get_current_task and bpf_probe_read_kernel in cgroup_skb programs: set from a probe. A
 * false constant removes the calls before the verifier looks at them (5.10 and 6.1 lack them). */
const volatile bool have_current_task = false;
/* bpf_get_current_pid_tgid in cgroup_skb programs (6.x): likewise. */
const volatile bool have_current_pid = false;
/* scripts/bench/floor.sh's "lookup" variant: every segment stops right after its connection's
 * state lookup, so nothing is measured (userspace says so); see docs/benchmarks.md, Floor. */
const volatile bool bench_stop_after_lookup = false;
/* bpf_sk_lookup_tcp in cgroup_skb programs, and not forced off: the sender of a loopback segment
 * parses it for the receiver too (see on_segment). */
const volatile bool have_sk_lookup = false;

/* One direction of a connection: the framing position, read and written for every segment. */
struct http_half {
	__u32 next_seq;    /* sequence number after the last new byte seen */
	__u32 body_left;   /* bytes of a body (Content-Length) still to come: not looked at */
	__u8 seq_valid;
	__u8 partial_len;  /* bytes of a start line cut short by the segment's end (in http_frag) */
	__u8 pad[2];
};

/* The cut-short start line of one direction: touched only when a line spans segments. */
struct http_frag {
	__u64 ns;  /* when its first bytes passed */
	__u64 w[2]; /* little-endian words, bytes past partial_len zero */
};

struct http_req {
	__u64 start_ns;
	__u8 method;
	__u8 pad[3];
	__s32 body;   /* request body bytes, AURUM_HTTP_BODY_UNKNOWN if not known */
};

/* Ordered by how often a segment touches a field: both ends' states are written by the sender's
 * egress on loopback, from either CPU, so every cache line a request touches moves between CPUs.
 * The kernel starts a value 8 bytes into a cache line (bpf_local_storage_data is cacheline
 * aligned, after its map pointer): the first 56 bytes (owner, framing, FIFO indexes) are one line,
 * and the next holds the server address and the first FIFO slots. A FIFO that empties starts over
 * at slot 0 (pop_response), so requests that are not pipelined use slot 0 only. */
struct http_sk {
	struct aurum_proc_key owner; /* zero tgid: not known yet */
	struct http_half in, out;
	__u8 side;      /* enum aurum_http_side */
	__u8 head;      /* index of the oldest pending request (mod AURUM_HTTP_FIFO) */
	__u8 count;     /* pending requests (the in-flight gauge: http_inflight reads them) */
	__u8 named;     /* client side: the owner's name is in http_flows */
	__u16 port;     /* client side: the server's port */
	__u8 loop;      /* HTTP_LOOP_* bits */
	__u8 loop_n;    /* loop client: payload segments sent, for refreshing peer_owner */
	__u32 pad2[2];
	__u32 addr[4];  /* client side: the server's address (IPv4 as ::ffff:a.b.c.d), network order */
	struct aurum_proc_key peer_owner; /* loop client: the server end's owner */
	struct http_req fifo[AURUM_HTTP_FIFO];
	struct http_frag frag_in, frag_out;
};

/* A loopback connection whose two ends are both traced, once the client end has sent a request
 * with nothing pending at either end: from then on the client end's own hooks parse both
 * directions (requests at its egress, responses at its ingress, as any client's), its FIFO serves
 * both sides, and each response is recorded for the client and, with the server's owner, for the
 * server; the server end's hooks return after their state lookup. Each request then costs one
 * parse of each message and no socket lookup, where the sender's egress parsing for both ends
 * (on_segment) costs a lookup a segment and two deliveries a message. The server side's request
 * ends when its response reaches the client's ingress hook: on loopback that runs in the softirq
 * the server's own send raises, a few microseconds later (docs/http-design.md, Loopback). */
#define HTTP_LOOP_CLIENT 1     /* this end records for both */
#define HTTP_LOOP_SERVER 2     /* this end's peer records for it */
#define HTTP_LOOP_CLIENT_FIN 4 /* loop client half-closed: its side of the pending requests is
				* recorded (status 0), the FIFO stays for the server's side */

/* Request lines of the pending requests, for the route (routes on only). */
struct http_targets {
	__u8 len[AURUM_HTTP_FIFO];
	char line[AURUM_HTTP_FIFO][AURUM_HTTP_TARGET];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct http_sk);
} http_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct http_targets);
} http_tgt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192); /* resized by userspace before load */
	__type(key, struct aurum_http_key);
	__type(value, struct aurum_http_stats);
} http_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* resized by userspace before load */
	__type(key, struct aurum_http_flow_key);
	__type(value, struct aurum_http_flow);
} http_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} http_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AURUM_HTTP_LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} http_lost SEC(".maps");

/* The walk over a segment's messages (bpf/proto/http.h), one per nesting level on a CPU: egress
 * runs in process context with bottom halves enabled, so a softirq (ingress, or egress of
 * ACK-clocked data) can run a program again on the same CPU in the middle of a walk. Nesting is
 * last-in first-out, so a depth counter picks the walk: process context, softirq, one spare. */
#define HTTP_NEST 3
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HTTP_NEST);
	__type(key, __u32);
	__type(value, struct aurum_http_walk);
} http_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} http_depth SEC(".maps");

/* The stream component's program of each direction (bpf/stream.bpf.c), put here by userspace:
 * ours is the one cgroup_skb program per direction, and a segment on a port that stream parses is
 * handed to stream's by a tail call, so that the rest of the traffic pays for one program run
 * instead of two. Empty while stream is not loaded (or loaded on its own, attached itself): the
 * tail call then falls through and nothing else happens. One array per direction: the kernel ties
 * a program array to the attach type of the first program that uses it (6.18 refuses to load
 * http_egress against an array http_ingress owns). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} http_chain_in SEC(".maps"), http_chain_out SEC(".maps");

static const __u64 duration_bounds[64] = AURUM_HTTP_BOUNDS_NS;
static const struct aurum_http_stats zero_stats;
static const struct aurum_http_flow zero_flow;

/* The TCP segment inside a cgroup_skb packet (which starts at the network header). */
struct segment {
	__u32 poff; /* payload offset from the network header */
	__u32 plen; /* payload bytes */
	__u32 seq;
	__u16 sport, dport; /* host order */
	__u8 fin;
	__u8 rst;
	__u8 v6;
};

static __always_inline int parse_segment(struct __sk_buff *skb, struct segment *s)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct tcphdr *th;
	__u32 l3;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP)
			return -1;
		l3 = ip->ihl * 4;
		s->v6 = 0;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		/* Extension headers before TCP are not followed: such segments are not seen. */
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return -1;
		l3 = sizeof(*ip6);
		s->v6 = 1;
	} else {
		return -1;
	}
	if (l3 < 20 || l3 > 60)
		return -1;
	th = data + l3;
	if ((void *)(th + 1) > end)
		return -1;
	s->poff = l3 + th->doff * 4;
	s->plen = skb->len > s->poff ? skb->len - s->poff : 0;
	s->seq = bpf_ntohl(th->seq);
	s->sport = bpf_ntohs(th->source);
	s->dport = bpf_ntohs(th->dest);
	s->fin = th->fin;
	s->rst = th->rst;
	return 0;
}

/* What the stream component parses on a port (bpf/stream_ports.bpf.h, net's map when net is
 * loaded): enum aurum_stream_proto. */
static __always_inline __u8 stream_proto(__u16 port)
{
	__u32 k = port;
	__u8 *p = bpf_map_lookup_elem(&stream_ports, &k);

	return p ? *p : AURUM_STREAM_NONE;
}

/* PostgreSQL and AMQP ports carry no HTTP: their segments skip the socket lookup and the peek (a
 * pgbench query is four segment passes, each of which would otherwise peek and fail to parse).
 * "auto" ports are parsed: RabbitMQ's management API on one of them is HTTP. */
static __always_inline bool not_http(__u8 proto)
{
	return proto == AURUM_STREAM_PGSQL || proto == AURUM_STREAM_AMQP;
}

/* Up to 16 payload bytes at `off` into `w` (the rest zero); returns how many. */
static __always_inline __u32 peek(struct __sk_buff *skb, __u32 off, __u32 avail, __u64 w[2])
{
	__u64 n = avail < AURUM_HTTP_PEEK ? avail : AURUM_HTTP_PEEK;

	w[0] = 0;
	w[1] = 0;
	/* An AND the compiler cannot see through: else clang hands the helper `avail` itself, a
	 * 64-bit register whose bounds the verifier lost at a 32-bit compare. */
	AURUM_HTTP_CLAMP(n, 0x1f);
	if (n == 0 || n > AURUM_HTTP_PEEK)
		return 0;
	/* The 5.10 and 6.1 verifiers do not carry `n != 0` into the helper's size: give them a
	 * value whose lower bound is 1 by construction (n is in [1, 16] here). */
	if (bpf_skb_load_bytes(skb, off, w, ((n - 1) & (AURUM_HTTP_PEEK - 1)) + 1))
		return 0;
	return n;
}

static __always_inline void lose(__u32 reason)
{
	aurum_count_loss(&http_lost, reason);
}

static __always_inline struct aurum_http_flow *flow_get(struct http_sk *st)
{
	struct aurum_http_flow_key fk = {};
	struct aurum_http_flow *f;

	fk.owner = st->owner;
	fk.side = st->side;
	f = bpf_map_lookup_elem(&http_flows, &fk);
	if (f)
		return f;
	/* EEXIST: another CPU created it first. Anything else: the map is full. */
	bpf_map_update_elem(&http_flows, &fk, &zero_flow, BPF_NOEXIST);
	f = bpf_map_lookup_elem(&http_flows, &fk);
	if (!f)
		lose(AURUM_HTTP_LOSS_FLOW_FULL);
	return f;
}

/* The owner the net component knows for a socket, if its map is ours and it knows one. */
static __always_inline bool net_owner(struct bpf_sock *sk, struct aurum_proc_key *k)
{
	struct aurum_sock_owner *so;

	if (!cfg.shared_owner)
		return false;
	so = bpf_sk_storage_get(&sock_owner, sk, 0, 0);
	if (!so || !so->owner.tgid)
		return false;
	*k = so->owner;
	return true;
}

/* A new owner for the connection (a socket handed from a prefork master to a worker): its pending
 * requests count in the new owner's in-flight gauge from the next iterator run, since that reads
 * the owner here; a client's new owner is named afresh. */
static __always_inline void set_owner(struct http_sk *st, struct aurum_proc_key *k)
{
	if (st->owner.tgid == k->tgid && st->owner.start_ns == k->start_ns)
		return;
	st->owner = *k;
	st->named = 0;
}

/* The owner: the net component's (sock.h: the connecting process, the listener's owner for a
 * passive open, then whoever sends or receives on it), when its map is ours. Else, or while it
 * knows none, the task sending the connection's first payload: egress of new data normally runs
 * in the sender's sendmsg, while ingress runs in softirq, where `current` is whoever was
 * interrupted (on loopback: the peer), so it is never used. A kernel thread or the idle task
 * (softirq on an idle CPU) is no owner. */
static __always_inline void learn_owner(struct bpf_sock *sk, struct http_sk *st, bool egress_payload)
{
	struct aurum_proc_key k = {};
	struct task_struct *t;

	/* New data leaving in the sendmsg of the owner we know: nothing to learn, and the socket
	 * lookup below is spared on nearly every egress segment. An egress in softirq (ACK-clocked
	 * data) sees another task as current and takes the lookup. */
	if (egress_payload && have_current_pid && st->owner.tgid &&
	    (__u32)(bpf_get_current_pid_tgid() >> 32) == st->owner.tgid)
		return;
	if ((egress_payload || !st->owner.tgid) && net_owner(sk, &k)) {
		set_owner(st, &k);
		return;
	}
	if (!egress_payload || st->owner.tgid || !have_current_task)
		return;
	t = (struct task_struct *)bpf_get_current_task();
	if (!t || aurum_is_kthread(t) || BPF_CORE_READ(t, tgid) == 0)
		return;
	aurum_proc_key(t, &k);
	set_owner(st, &k);
}

static __always_inline void flow_comm(struct aurum_http_flow *f)
{
	/* Only from process context (the owner's own send): name the process once.
	 * bpf_get_current_comm is not a cgroup_skb helper before 6.18, and the verifier rejects
	 * the call even on a path that never runs; read the comm through the task instead, which
	 * needs only bpf_get_current_task (and leaves the name empty where that is missing too:
	 * the other components name the process then). */
	if (f->comm[0] == 0 && have_current_task) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();

		if (t)
			BPF_CORE_READ_STR_INTO(&f->comm, t, comm);
	}
}

/* Where a message is in the segment and what its header block said. */
struct http_msg {
	__u64 start_ns;
	__u32 off;   /* its first byte (or the segment's first new byte, for one begun earlier) */
	__u32 avail; /* bytes of the segment from there */
	__s64 body;  /* body bytes, AURUM_HTTP_BODY_UNKNOWN if not known */
	int kind;    /* method (request) or status code (response) */
};

static __always_inline void add_size(__u64 *sum, __u64 *slots, __s64 v)
{
	__u32 slot;

	if (v < 0)
		return;
	slot = aurum_log2_slot(v, AURUM_HTTP_SIZE_MIN_SHIFT, AURUM_HTTP_SIZE_SLOTS);
	__sync_fetch_and_add(sum, v);
	/* The 6.1 verifier loses the bound of the compare below on the copy clang indexes with. */
	AURUM_HTTP_CLAMP(slot, 31);
	if (slot < AURUM_HTTP_SIZE_SLOTS)
		__sync_fetch_and_add(&slots[slot], 1);
}

/* One finished request into its aggregate: a global function, which the verifier checks once on
 * its own, whatever calls it (a response is recorded for both ends of a loop pair, and
 * close_pending's loop records up to eight: inline, 6.1's verifier gave up on the egress
 * program). */
__noinline int http_aggregate(struct aurum_http_key *key, __u64 d, __s64 req_body, __s64 resp_body)
{
	struct aurum_http_stats *s;
	struct aurum_http_key k;
	__u32 slot;

	if (!key)
		return 0;
	/* On the stack: 6.1's map helpers take no key in a global function's memory argument. */
	k = *key;
	s = bpf_map_lookup_elem(&http_stats, &k);
	if (!s) {
		bpf_map_update_elem(&http_stats, &k, &zero_stats, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&http_stats, &k);
	}
	if (!s) {
		lose(AURUM_HTTP_LOSS_STATS_FULL);
		return 0;
	}
	slot = aurum_http_duration_slot(d, duration_bounds);
	__sync_fetch_and_add(&s->sum_ns, d);
	AURUM_HTTP_CLAMP(slot, 63);
	if (slot < AURUM_HTTP_SLOTS)
		__sync_fetch_and_add(&s->slots[slot], 1);
	add_size(&s->req_body_sum, s->req_body_slots, req_body);
	add_size(&s->resp_body_sum, s->resp_body_slots, resp_body);
	return 0;
}

/* A server side's finished request with its request line, for the route (routes on): global,
 * like http_aggregate, so that the verifier checks it once (inline, 6.1's gave up on the egress
 * program with routes on). */
__noinline int http_route_event(struct aurum_http_key *key, __u64 d, struct http_targets *tg, __u32 idx)
{
	struct aurum_http_event *e;
	__u32 n;

	if (!key || !tg)
		return 0;
	idx &= AURUM_HTTP_FIFO - 1;
	e = bpf_ringbuf_reserve(&http_events, sizeof(*e), 0);
	if (!e) {
		lose(AURUM_HTTP_LOSS_RINGBUF);
		return 0;
	}
	n = tg->len[idx];
	e->owner = key->owner;
	e->duration_ns = d;
	e->status = key->status;
	e->side = AURUM_HTTP_SIDE_SERVER;
	e->method = key->method;
	e->port = 0;
	e->pad = 0;
	if (n > AURUM_HTTP_TARGET)
		n = AURUM_HTTP_TARGET;
	e->target_len = n;
	__builtin_memcpy(e->target, tg->line[idx], AURUM_HTTP_TARGET);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* One finished request: into the aggregates and (routes on) the ringbuf. The response: its
 * status code (m->kind), when it ended (m->start_ns) and its body length (m->body). For a loop
 * client (HTTP_LOOP_CLIENT) the server's side too, unless `half` (the client's own FIN, which
 * ends only its side); after that FIN (HTTP_LOOP_CLIENT_FIN) only the server's. */
static __noinline void record(struct http_sk *st, struct http_targets *tg, __u32 idx, struct http_msg *m,
			      bool half)
{
	__u64 end_ns = m->start_ns;
	__u32 status = m->kind;
	struct aurum_http_key key = {};
	struct http_req *req;
	bool mine, server;
	__u64 d;

	idx &= AURUM_HTTP_FIFO - 1;
	req = &st->fifo[idx];
	d = end_ns > req->start_ns ? end_ns - req->start_ns : 0;
	key.method = req->method;
	key.status = status;
	mine = !(st->loop & HTTP_LOOP_CLIENT_FIN);
	server = (st->loop & HTTP_LOOP_CLIENT) && !half;
	if (mine && !st->owner.tgid) {
		lose(AURUM_HTTP_LOSS_NO_OWNER);
		mine = false;
	}
	if (server && !st->peer_owner.tgid) {
		lose(AURUM_HTTP_LOSS_NO_OWNER);
		server = false;
	}
	if (mine) {
		key.owner = st->owner;
		key.side = st->side;
		key.port = st->port;
		key.addr[0] = st->addr[0];
		key.addr[1] = st->addr[1];
		key.addr[2] = st->addr[2];
		key.addr[3] = st->addr[3];
		/* Both ends of a loop pair in one aggregate (struct aurum_http_key). */
		if (server)
			key.peer = st->peer_owner;
		http_aggregate(&key, d, req->body, m->body);
	} else if (server) {
		key.owner = st->peer_owner;
		key.side = AURUM_HTTP_SIDE_SERVER;
		http_aggregate(&key, d, req->body, m->body);
	}
	/* The route of a server side's request: the event carries the server's owner. */
	if (cfg.routes && tg && (server || (mine && st->side == AURUM_HTTP_SIDE_SERVER))) {
		if (server)
			key.owner = st->peer_owner;
		http_route_event(&key, d, tg, idx);
	}
}

static __noinline void push_request(struct __sk_buff *skb, struct bpf_sock *sk, struct http_sk *st,
				    struct http_msg *m)
{
	struct http_req *req;
	__u32 idx;

	if (st->count >= AURUM_HTTP_FIFO) {
		lose(AURUM_HTTP_LOSS_FIFO_FULL);
		return;
	}
	idx = (st->head + st->count) & (AURUM_HTTP_FIFO - 1);
	req = &st->fifo[idx];
	req->start_ns = m->start_ns;
	req->method = m->kind;
	req->body = m->body >= 0 && m->body <= 0x7fffffff ? m->body : AURUM_HTTP_BODY_UNKNOWN;
	st->count++;
	/* A client process is named once per connection, from its own send (process context): it
	 * may be gone (a curl, a cron job) before userspace reads /proc. */
	if (st->owner.tgid && st->side == AURUM_HTTP_SIDE_CLIENT && !st->named) {
		struct aurum_http_flow *f = flow_get(st);

		if (f) {
			flow_comm(f);
			st->named = 1;
		}
	}
	if (cfg.routes && (st->side == AURUM_HTTP_SIDE_SERVER || (st->loop & HTTP_LOOP_CLIENT))) {
		struct http_targets *tg = bpf_sk_storage_get(&http_tgt, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		__u64 n = m->avail < AURUM_HTTP_TARGET ? m->avail : AURUM_HTTP_TARGET;

		AURUM_HTTP_CLAMP(n, 0x7f);
		if (tg) {
			tg->len[idx] = 0;
			if (n > 0 && n <= AURUM_HTTP_TARGET &&
			    bpf_skb_load_bytes(skb, m->off, tg->line[idx], ((n - 1) & (AURUM_HTTP_TARGET - 1)) + 1) == 0)
				tg->len[idx] = n;
		}
	}
}

static __noinline void pop_response(struct bpf_sock *sk, struct http_sk *st, struct http_msg *m)
{
	struct http_targets *tg = 0;
	__u32 idx;

	if (!st->count) {
		lose(AURUM_HTTP_LOSS_UNMATCHED);
		return;
	}
	if (cfg.routes)
		tg = bpf_sk_storage_get(&http_tgt, sk, 0, 0);
	idx = st->head & (AURUM_HTTP_FIFO - 1);
	record(st, tg, idx, m, false);
	st->count--;
	st->head = st->count ? (st->head + 1) & (AURUM_HTTP_FIFO - 1) : 0;
}

/* The connection ended (FIN or RST) with requests pending: each is counted with status 0.
 * half: a loop client's own FIN, which ends only its own side (the server may still answer). */
static __always_inline void close_pending(struct bpf_sock *sk, struct http_sk *st, __u64 now, bool half)
{
	struct http_msg m = {.start_ns = now, .body = AURUM_HTTP_BODY_UNKNOWN, .kind = AURUM_HTTP_STATUS_CLOSED};
	struct http_targets *tg = 0;
	__u32 i;

	if (!st->count)
		return;
	if (cfg.routes)
		tg = bpf_sk_storage_get(&http_tgt, sk, 0, 0);
	for (i = 0; i < AURUM_HTTP_FIFO; i++) {
		if (i >= st->count)
			break;
		record(st, tg, st->head + i, &m, half);
	}
	if (half) {
		st->loop |= HTTP_LOOP_CLIENT_FIN;
		return;
	}
	st->count = 0;
	st->head = 0;
	st->in.partial_len = 0;
	st->out.partial_len = 0;
}

/* The first 16 bytes of a line that started in an earlier segment, followed by this segment's:
 * a 128-bit shift on two words, so the verifier sees no variable stack offset. */
static __always_inline __u32 join_partial(struct http_half *h, struct http_frag *f, __u64 w[2], __u32 n)
{
	__u32 p = h->partial_len & 15, total = p + n;
	__u64 lo, hi;

	if (p == 0)
		return n;
	lo = f->w[0];
	hi = f->w[1];
	if (p < 8) {
		hi |= (w[1] << (8 * p)) | (w[0] >> (64 - 8 * p));
		lo |= w[0] << (8 * p);
	} else {
		hi |= w[0] << (8 * (p - 8));
	}
	w[0] = lo;
	w[1] = hi;
	return total < AURUM_HTTP_PEEK ? total : AURUM_HTTP_PEEK;
}

static __always_inline void keep_partial(struct http_half *h, struct http_frag *f, __u64 w[2], __u32 len,
					 __u64 start_ns)
{
	f->w[0] = w[0];
	f->w[1] = w[1];
	f->ns = start_ns;
	h->partial_len = len;
}

/* One step of the walk over a segment's messages (bpf/proto/http.h): the callback is verified once
 * (a plain loop made the verifier walk every iteration times every path), and the verifier inlines
 * the loop into direct calls (5.19+). */
struct walk_ctx {
	struct aurum_http_walk *s;
};

static long walk_step(__u32 i, struct walk_ctx *c)
{
	struct aurum_http_walk *s = c->s;

	if (!s)
		return 1;
	/* Four steps a call: a quarter of the calls. */
	if (aurum_http_walk_step(s) || aurum_http_walk_step(s) || aurum_http_walk_step(s))
		return 1;
	return aurum_http_walk_step(s);
}

/* The walk of one window: a global function, which the verifier checks once on its own. Called
 * inline, the callback was verified again for every path that reached bpf_loop, and with routes on
 * 6.1's verifier gave up on http_egress (1M instructions processed). */
__noinline int http_walk(struct aurum_http_walk *s)
{
	/* The walk's pointer rides in the callback's context: no map lookup a step. */
	struct walk_ctx c = {.s = s};

	if (s)
		bpf_loop(AURUM_HTTP_WALK_MAX_STEPS / 4, walk_step, &c, 0);
	return 0;
}

/* A message found in a segment, to one end: a request starts, or a final response ends the oldest. */
static __always_inline void deliver(struct __sk_buff *skb, struct bpf_sock *sk, struct http_sk *st, bool request_dir,
				    struct http_msg *m)
{
	if (request_dir)
		push_request(skb, sk, st, m);
	else if (!aurum_http_status_is_interim(m->kind))
		pop_response(sk, st, m);
}

/* The end that receives a loopback segment, when its sender parses it for both (on_segment). */
struct http_peer {
	struct bpf_sock *sk;
	struct http_sk *st;
};

static __always_inline void on_messages(struct __sk_buff *skb, struct bpf_sock *sk, struct http_sk *st,
					struct http_half *h, struct http_frag *f, bool request_dir,
					struct http_msg *first, __u64 now, struct http_peer *peer,
					struct aurum_http_walk *s, __u32 n)
{
	__u32 k, head_mask = 0, off = first->off, avail = first->avail;
	int first_kind = first->kind;

	if (!s) /* never, on_data holds a window whenever n > 0: for the verifier */
		return;
	if (!request_dir) {
		for (k = 0; k < AURUM_HTTP_FIFO; k++) {
			if (k >= st->count)
				break;
			if (st->fifo[(st->head + k) & (AURUM_HTTP_FIFO - 1)].method == AURUM_HTTP_METHOD_HEAD)
				head_mask |= 1U << k;
		}
	}
	s->count = 0;
	s->finals = 0;
	aurum_http_walk_begin(s, n, 0, !request_dir, first_kind, head_mask);
	if (n)
		http_walk(s);
	if (s->stop == AURUM_HTTP_STOP_NEXT && s->next >= avail) {
		h->body_left = s->next - avail;
	} else if (s->stop == AURUM_HTTP_STOP_PARTIAL && s->n >= avail) {
		/* The next start line goes on in the next segment. */
		__u64 at = s->next, w[2];
		__u32 len = s->n - s->next;

		AURUM_HTTP_CLAMP(at, AURUM_HTTP_WALK_MASK);
		if (len < AURUM_HTTP_PEEK) {
			struct aurum_http_window wd = aurum_http_load(s->b + at, len);

			w[0] = wd.lo;
			w[1] = wd.hi;
			keep_partial(h, f, w, len, now);
		}
	}
	for (k = 0; k < AURUM_HTTP_WALK_MSGS; k++) {
		struct aurum_http_walk_msg *wm;
		struct http_msg m;

		if (k >= s->count)
			break;
		wm = &s->msg[k & (AURUM_HTTP_WALK_MSGS - 1)];
		m.start_ns = k ? now : first->start_ns;
		m.off = off + wm->at;
		m.avail = avail > wm->at ? avail - wm->at : 0;
		m.body = wm->body;
		m.kind = wm->kind;
		deliver(skb, sk, st, request_dir, &m);
		if (peer->sk && peer->st)
			deliver(skb, peer->sk, peer->st, request_dir, &m);
	}
}

/* The server's address for the client side's server_address label (IPv4 as ::ffff:a.b.c.d). Every
 * field read unconditionally (volatile) at a constant offset: clang otherwise shares one read with a
 * variable offset, and the verifier forbids pointer arithmetic on a socket. */
static __always_inline void server_addr(struct bpf_sock *sk, struct http_sk *st)
{
	__u32 family = sk->family, v4 = *(volatile __u32 *)&sk->dst_ip4;
	__u32 a0 = *(volatile __u32 *)&sk->dst_ip6[0], a1 = *(volatile __u32 *)&sk->dst_ip6[1];
	__u32 a2 = *(volatile __u32 *)&sk->dst_ip6[2], a3 = *(volatile __u32 *)&sk->dst_ip6[3];

	if (family == AF_INET6) {
		st->addr[0] = a0;
		st->addr[1] = a1;
		st->addr[2] = a2;
		st->addr[3] = a3;
	} else {
		st->addr[0] = 0;
		st->addr[1] = 0;
		st->addr[2] = bpf_htonl(0xffff);
		st->addr[3] = v4;
	}
}

/* The connection's state, created for a connection whose first bytes look like a request line. */
static __always_inline struct http_sk *state_of(struct __sk_buff *skb, struct bpf_sock *sk, const struct segment *s,
						 bool ingress)
{
	struct http_sk *st = bpf_sk_storage_get(&http_sk, sk, 0, 0);
	__u64 w[2];
	__u32 n;

	if (st)
		return st;
	n = peek(skb, s->poff, s->plen, w);
	if (!n || aurum_http_parse_method((const __u8 *)w, n) == 0)
		return 0;
	st = bpf_sk_storage_get(&http_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 0;
	st->side = ingress ? AURUM_HTTP_SIDE_SERVER : AURUM_HTTP_SIDE_CLIENT;
	st->port = ingress ? 0 : bpf_ntohs(sk->dst_port);
	if (!ingress)
		server_addr(sk, st);
	return st;
}


/* One TCP segment at one end; on loopback the receiving end too (peer: its socket and state, both
 * non-zero or both zero). Its sender's egress parses it for both, and the receiver's ingress
 * then finds its bytes seen already, as if retransmitted, and returns early. */
static __always_inline void on_data(struct __sk_buff *skb, const struct segment *seg, struct bpf_sock *sk,
				    struct http_sk *st, bool ingress, struct http_peer *peer)
{
	struct segment s = *seg;
	struct http_half *h = ingress ? &st->in : &st->out;
	struct http_frag *f = ingress ? &st->frag_in : &st->frag_out;
	struct aurum_http_walk *ws = 0;
	__u32 off, avail, n, len, win = 0, zero = 0, depth = 0, *level;
	__u64 w[2], now, start_ns;
	bool request_dir;
	int r;

	/* Every byte seen already (by the sender's egress, on loopback): nothing to learn here, and
	 * the common case on a loopback receiver, so it comes before the clock and the owner. */
	if (s.plen && h->seq_valid && (__s32)(h->next_seq - s.seq) >= (__s32)s.plen && !s.fin && !s.rst)
		return;
	learn_owner(sk, st, !ingress && s.plen);
	if (peer->st)
		learn_owner(peer->sk, peer->st, false);
	now = bpf_ktime_get_ns();

	if (s.plen) {
		off = s.poff;
		avail = s.plen;
		/* Sequence numbers: bytes at or before next_seq were seen (a retransmission). */
		if (h->seq_valid) {
			__s32 behind = (__s32)(h->next_seq - s.seq);

			if (behind >= (__s32)s.plen)
				goto flags;
			if (behind > 0) {
				off += behind;
				avail -= behind;
			}
		}
		h->next_seq = s.seq + s.plen;
		h->seq_valid = 1;

		if (h->body_left) {
			if (avail <= h->body_left) {
				h->body_left -= avail;
				goto flags;
			}
			off += h->body_left;
			avail -= h->body_left;
			h->body_left = 0;
		}
		/* The walk's window of this nesting level (see http_scratch), held until the walk is
		 * over: the segment's first AURUM_HTTP_WALK bytes are copied once, and the start line
		 * is classified from the copy's first bytes (a second, 16-byte copy cost ~20 ns a
		 * message). A loop over more windows (calling bpf_loop from several states) took
		 * 6.1's verifier past its limit. */
		level = bpf_map_lookup_elem(&http_depth, &zero);
		if (level && *level < HTTP_NEST) {
			depth = *level;
			ws = bpf_map_lookup_elem(&http_scratch, &depth);
		}
		if (ws && level) {
			__u64 wn = avail < AURUM_HTTP_WALK ? avail : AURUM_HTTP_WALK;

			*level = depth + 1;
			AURUM_HTTP_CLAMP(wn, 0xfff);
			if (wn == 0 || wn > AURUM_HTTP_WALK ||
			    bpf_skb_load_bytes(skb, off, ws->b, ((wn - 1) & (AURUM_HTTP_WALK - 1)) + 1))
				wn = 0;
			win = wn;
			n = win < AURUM_HTTP_PEEK ? win : AURUM_HTTP_PEEK;
			if (n) {
				struct aurum_http_window wd = aurum_http_load(ws->b, n);

				w[0] = wd.lo;
				w[1] = wd.hi;
			}
		} else {
			/* Deeper than contexts nest: never seen, counted. */
			ws = 0;
			n = 0;
			lose(AURUM_HTTP_LOSS_NESTED);
		}
		if (n) {
			start_ns = h->partial_len ? f->ns : now;
			len = join_partial(h, f, w, n);
			h->partial_len = 0;
			request_dir = ingress == (st->side == AURUM_HTTP_SIDE_SERVER);
			r = request_dir ? aurum_http_parse_method((const __u8 *)w, len)
					: aurum_http_parse_status((const __u8 *)w, len);
			if (r == AURUM_HTTP_INCOMPLETE && len < AURUM_HTTP_PEEK) {
				keep_partial(h, f, w, len, start_ns);
			} else if (r > 0) {
				struct http_msg m = {.start_ns = start_ns, .off = off, .avail = avail, .kind = r};

				on_messages(skb, sk, st, h, f, request_dir, &m, now, peer, ws, win);
			}
		}
		if (ws && level)
			*level = depth;
	}
flags:
	/* The receiver's view of this direction is now the sender's: same bytes, same framing. */
	if (peer->st) {
		peer->st->in = *h;
		if (h->partial_len)
			peer->st->frag_in = *f;
	}
	/* Which FIN means "no answer will come": the server's own (it closed without answering),
	 * the client's own (it gave up), the server's as seen by the client; an RST either way. A
	 * client's FIN seen by the server may be a half-close still waiting for its answer. */
	if (s.rst || (s.fin && (!ingress || st->side == AURUM_HTTP_SIDE_CLIENT)))
		close_pending(sk, st, now, (st->loop & HTTP_LOOP_CLIENT) && !ingress && !s.rst);
	if (peer->sk && peer->st && (s.rst || (s.fin && peer->st->side == AURUM_HTTP_SIDE_CLIENT)))
		close_pending(peer->sk, peer->st, now, false);
}

static __always_inline void on_segment(struct __sk_buff *skb, const struct segment *seg, bool ingress)
{
	struct http_peer peer = {};
	struct bpf_sock *sk, *rx = 0;
	struct http_sk *st;
	bool refresh = false;

	sk = skb->sk;
	if (!sk)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return;
	st = state_of(skb, sk, seg, ingress);
	if (!st)
		return;
	/* Benchmark floor only (AURUM_BENCH_STOP_AFTER_LOOKUP): what the hooks cost with the state
	 * lookup and nothing after it. False in every real run; the verifier drops the branch. */
	if (bench_stop_after_lookup)
		return;
	/* The server end of a loop pair (HTTP_LOOP_CLIENT): its client end records for it. */
	if (st->loop & HTTP_LOOP_SERVER)
		return;
	/* A loop client looks its server end up again only to refresh that end's owner: at its
	 * second and third sends (a prefork worker takes the socket over at its first answer),
	 * then every 256th. */
	if ((st->loop & HTTP_LOOP_CLIENT) && !ingress && seg->plen) {
		__u8 n = ++st->loop_n;

		refresh = n <= 3 || n == 0;
	}
	/* Loopback: the receiving socket is on this host, and this segment reaches its ingress hook
	 * next. Parsing it here for both ends halves the parsing of local traffic (docs/http-design.md,
	 * Loopback). The receiver's state is made here if it has none: its peer speaks HTTP. One
	 * on_data() below for every case: each inlined copy costs the verifier a walk of its own. */
	if (!ingress && have_sk_lookup && skb->ifindex == AURUM_LOOPBACK_IFINDEX &&
	    (!(st->loop & HTTP_LOOP_CLIENT) || refresh))
		rx = aurum_loopback_receiver(skb, seg->v6, seg->sport, seg->dport);
	if (rx && (st->loop & HTTP_LOOP_CLIENT)) {
		net_owner(rx, &st->peer_owner);
	} else if (rx) {
		struct http_sk *pst = bpf_sk_storage_get(&http_sk, rx, 0, BPF_SK_STORAGE_GET_F_CREATE);

		if (pst && !pst->side) {
			/* Just made: the other side of ours. */
			pst->side = st->side == AURUM_HTTP_SIDE_CLIENT ? AURUM_HTTP_SIDE_SERVER : AURUM_HTTP_SIDE_CLIENT;
			if (pst->side == AURUM_HTTP_SIDE_CLIENT) {
				pst->port = bpf_ntohs(rx->dst_port);
				server_addr(rx, pst);
			}
		}
		if (pst && pst->side != st->side) {
			/* A client's request with nothing pending at either end, and the server's owner
			 * known: the pair goes over to HTTP_LOOP_CLIENT. */
			if (st->side == AURUM_HTTP_SIDE_CLIENT && seg->plen && !st->count && !pst->count &&
			    net_owner(rx, &st->peer_owner)) {
				st->loop = HTTP_LOOP_CLIENT;
				st->loop_n = 0;
				pst->loop = HTTP_LOOP_SERVER;
			} else {
				peer.sk = rx;
				peer.st = pst;
			}
		}
	}
	/* Held through on_data() only as its peer: states that hold no reference prune alike. */
	if (rx && !peer.sk) {
		bpf_sk_release(rx);
		rx = 0;
	}
	on_data(skb, seg, sk, st, ingress, &peer);
	if (rx)
		bpf_sk_release(rx);
}

static __always_inline void chain(struct __sk_buff *skb, bool ingress)
{
	if (ingress)
		bpf_tail_call(skb, &http_chain_in, 0);
	else
		bpf_tail_call(skb, &http_chain_out, 0);
}

static __always_inline int run(struct __sk_buff *skb, bool ingress)
{
	struct segment s;
	__u8 local, remote;

	if (parse_segment(skb, &s)) {
		/* Not TCP, or headers we do not read in place: stream's own parser decides. */
		chain(skb, ingress);
		return 1;
	}
	if (!s.plen && !s.fin && !s.rst)
		return 1; /* a pure ACK: most packets end here (stream ignores them too) */
	local = stream_proto(ingress ? s.dport : s.sport);
	remote = stream_proto(ingress ? s.sport : s.dport);
	if (!not_http(local) && !not_http(remote))
		on_segment(skb, &s, ingress);
	if (local || remote)
		chain(skb, ingress);
	return 1; /* cgroup_skb: 1 lets the packet through; we only watch */
}

SEC("cgroup_skb/ingress")
int http_ingress(struct __sk_buff *skb)
{
	return run(skb, true);
}

SEC("cgroup_skb/egress")
int http_egress(struct __sk_buff *skb)
{
	return run(skb, false);
}

/* The in-flight gauge: run by userspace at each poll over every socket with HTTP state, it writes
 * the pending requests of each one that has any. Counting them where they are, rather than
 * begun-minus-finished counters per process, keeps two shared-map updates per request off the hot
 * path (they cost ~170 ns a segment run on wrk against nginx, the counters' cache lines bouncing
 * between the CPUs of the two ends), and a closed connection's requests vanish with its state. */
SEC("iter/bpf_sk_storage_map")
int http_inflight(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct http_sk *st = ctx->value;
	struct aurum_http_inflight rec = {};

	if (!ctx->sk || !st || !st->count)
		return 0;
	rec.count = st->count;
	if (st->owner.tgid && !(st->loop & HTTP_LOOP_CLIENT_FIN)) {
		rec.owner = st->owner;
		rec.side = st->side;
		bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	}
	/* A loop client's requests are pending at its server end too. */
	if ((st->loop & HTTP_LOOP_CLIENT) && st->peer_owner.tgid) {
		rec.owner = st->peer_owner;
		rec.side = AURUM_HTTP_SIDE_SERVER;
		bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	}
	return 0;
}
