// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Stream capture: see stream.h. One cgroup_skb program per direction on the cgroup v2 root.
 * cgroup_skb sees every socket of every process in the hierarchy; sockets of processes in
 * cgroups outside it (and Unix-domain sockets) are not seen. */
#include "common.bpf.h"
#include "loopback.bpf.h"
#include "sock_owner.bpf.h"
#include "stream_ports.bpf.h"
#include "stream.h"
#include "proto/pgsql.h"
#include "proto/hist.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6

/* bpf_sk_lookup_tcp and bpf_sk_release in cgroup_skb programs, and not forced off: on loopback the
 * sender of a PostgreSQL segment frames it for the receiving socket as well (pg_mirror). False,
 * the verifier drops those paths, so kernels without the helpers load the same object. */
const volatile bool have_sk_lookup = false;
/* scripts/bench/floor.sh's "lookup" variant: a PostgreSQL segment stops right after its
 * connection's state lookup, so nothing is framed (userspace says so). */
const volatile bool bench_stop_after_lookup = false;

/* Sockets userspace gave up on (TLS, a protocol it does not parse on an "auto" port, framing
 * lost for good): their payload is not copied any more, only their FIN/RST (to free the state). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} stream_skip SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} stream_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AURUM_STREAM_LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stream_lost SEC(".maps");

/* PostgreSQL framed in the kernel (stream_pg_* programs only). */
struct pg_sock {
	struct aurum_pgsql_conn c;
	struct aurum_proc_key owner; /* the last owner seen; zero tgid: none yet */
	__u16 port;                  /* client side: the server's port */
	__u8 server;
	__u8 fins;                   /* 1: ingress FIN seen, 2: egress FIN seen */
	__u8 closed;
	__u8 walking;                /* 1 while a program frames a segment into c (pg_mirror) */
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pg_sock);
} pg_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, struct aurum_pgsql_key);
	__type(value, struct aurum_pgsql_hist);
} pg_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct aurum_pgsql_stats);
} pg_stat SEC(".maps");

/* The payload bytes around the walk's position, loaded PG_WINDOW at a time: one
 * bpf_skb_load_bytes covers every header of a typical query or answer. The tail keeps the
 * framer's reads (up to 2 * AURUM_PGSQL_WIN past any offset in the window) inside the value.
 *
 * One window per nesting level on a CPU: egress runs in process context with bottom halves
 * enabled, so a softirq (ingress, or egress of ACK-clocked data) can run the program again on the
 * same CPU in the middle of a walk. Nesting is strictly last-in first-out, so a depth counter
 * picks the window. Process context, softirq, and one spare. */
#define PG_WINDOW 256
#define PG_NEST 3
struct pg_window {
	__u8 b[PG_WINDOW + 2 * AURUM_PGSQL_WIN];
};

struct pg_windows {
	__u32 depth;
	__u32 pad;
	struct pg_window w[PG_NEST];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_windows);
} pg_win SEC(".maps");

/* Messages walked per segment at most: a 64 KiB segment of the smallest (5-byte) messages. */
#define PG_MAX_STEPS 16384

static const __u64 pg_bounds[AURUM_MAX_FIXED_BOUNDS] = AURUM_PGSQL_BOUNDS_NS;
static const struct aurum_pgsql_hist pg_zero_hist;

struct tcp_view {
	__u32 payload_off;
	__u32 payload_len;
	__u32 seq;
	__u16 sport, dport;
	__u8 fin, rst;
	__u8 v6;
};

/* Finds the TCP payload of an IPv4 or IPv6 packet (skb data starts at the network header). The
 * headers are read in place where they are in the linear part (always, in practice: the stack
 * pulls them there before cgroup_skb runs), else copied. */
static __always_inline int tcp_view(struct __sk_buff *skb, struct tcp_view *v)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct tcphdr thc, *th;
	__u32 l4_off, total;
	__u8 l4proto;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ipc, *ip = data;

		if ((void *)(ip + 1) > end) {
			if (bpf_skb_load_bytes(skb, 0, &ipc, sizeof(ipc)))
				return -1;
			ip = &ipc;
		}
		/* A fragment carries no TCP header of its own (or no payload start). */
		if (ip->frag_off & bpf_htons(0x3fff))
			return -1;
		l4proto = ip->protocol;
		l4_off = ip->ihl * 4;
		v->v6 = 0;
		total = bpf_ntohs(ip->tot_len);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6c, *ip6 = data;

		if ((void *)(ip6 + 1) > end) {
			if (bpf_skb_load_bytes(skb, 0, &ip6c, sizeof(ip6c)))
				return -1;
			ip6 = &ip6c;
		}
		/* Extension headers between IPv6 and TCP are not walked: such segments are skipped. */
		l4proto = ip6->nexthdr;
		l4_off = sizeof(*ip6);
		v->v6 = 1;
		total = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	} else {
		return -1;
	}
	if (l4proto != IPPROTO_TCP || l4_off < 20 || l4_off > 60)
		return -1;
	th = data + l4_off;
	if ((void *)(th + 1) > end) {
		if (bpf_skb_load_bytes(skb, l4_off, &thc, sizeof(thc)))
			return -1;
		th = &thc;
	}
	/* GSO packets on egress carry tot_len of the whole super-packet; skb->len is what is here. */
	if (total > skb->len || total == 0)
		total = skb->len;
	v->payload_off = l4_off + th->doff * 4;
	v->payload_len = total > v->payload_off ? total - v->payload_off : 0;
	v->seq = bpf_ntohl(th->seq);
	v->sport = bpf_ntohs(th->source);
	v->dport = bpf_ntohs(th->dest);
	v->fin = th->fin;
	v->rst = th->rst;
	return 0;
}

/* Userspace drains the ring on a short timer, so a wakeup per record (a context switch of the
 * consumer per segment, the bulk of the cost at tens of thousands of queries a second) is not
 * needed; it is woken only when a quarter of the ring is waiting. The timestamps are taken here,
 * so draining later changes no duration. */
static __always_inline __u64 stream_wakeup(void)
{
	return bpf_ringbuf_query(&stream_rb, BPF_RB_AVAIL_DATA) >= (4 << 20) ? BPF_RB_FORCE_WAKEUP
									       : BPF_RB_NO_WAKEUP;
}

/* Reserve a record of a constant size class, copy, submit. Returns 0, or -1 on a full ring. */
#define AURUM_STREAM_EMIT(CLASS)                                                                  \
	static __always_inline int emit_##CLASS(struct __sk_buff *skb, const struct aurum_stream_event *h, \
					      __u32 off, __u32 n)                                         \
	{                                                                                         \
		struct aurum_stream_event *e =                                                    \
			bpf_ringbuf_reserve(&stream_rb, sizeof(*e) + CLASS, 0);                   \
		if (!e)                                                                           \
			return -1;                                                                \
		*e = *h;                                                                          \
		e->copied = 0;                                                                    \
		/* The verifier must see 0 < n <= CLASS on the register passed to the helper. */ \
		asm volatile("" : "+r"(n));                                                       \
		if (n > 0 && n <= CLASS) {                                                        \
			asm volatile("" : "+r"(n));                                               \
			if (!bpf_skb_load_bytes(skb, off, (void *)(e + 1), ((n - 1) & (CLASS - 1)) + 1))  \
				e->copied = n;                                                    \
		}                                                                                 \
		if (e->copied < e->len)                                                           \
			e->flags |= AURUM_STREAM_TRUNCATED;                                       \
		bpf_ringbuf_submit(e, stream_wakeup());                                           \
		return 0;                                                                         \
	}
AURUM_STREAM_EMIT(512)
AURUM_STREAM_EMIT(4096)
AURUM_STREAM_EMIT(16384)
AURUM_STREAM_EMIT(65536)

static __always_inline void pg_count(__u32 idx, __u64 n)
{
	__u32 zero = 0;
	struct aurum_pgsql_stats *s = bpf_map_lookup_elem(&pg_stat, &zero);

	if (s && idx < AURUM_PGSQL_STAT_MAX)
		s->n[idx] += n;
}

/* A finished query, as aggregated: what a walk keeps of one for the receiving end of a loopback
 * segment until it knows the mirror holds (pg_mirror). */
struct pg_ev {
	__u64 dur_ns;
	__u8 error;
	__u8 cls[2];
	__u8 pad[5];
};

/* One finished query into the aggregate. A global function: verified once, not per path. */
__noinline int pg_record(struct pg_sock *st, const struct pg_ev *o)
{
	struct aurum_pgsql_key key = {};
	struct aurum_pgsql_hist *h;
	__u64 d;
	__u32 slot;

	if (!st || !o)
		return 0;
	if (!st->owner.tgid) {
		pg_count(AURUM_PGSQL_STAT_NO_OWNER, 1);
		return 0;
	}
	key.owner = st->owner;
	key.server_port = st->port;
	key.server = st->server;
	key.error = o->error;
	key.cls[0] = o->cls[0];
	key.cls[1] = o->cls[1];
	h = bpf_map_lookup_elem(&pg_hist, &key);
	if (!h) {
		/* EEXIST: another CPU created it first. Anything else: the map is full. */
		bpf_map_update_elem(&pg_hist, &key, &pg_zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&pg_hist, &key);
		if (!h) {
			pg_count(AURUM_PGSQL_STAT_HIST_FULL, 1);
			return 0;
		}
	}
	d = o->dur_ns;
	slot = aurum_fixed_slot(d, pg_bounds, AURUM_PGSQL_NBOUNDS);
	__sync_fetch_and_add(&h->sum_ns, d);
	if (slot < AURUM_PGSQL_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

/* Queries a mirrored segment may end for the receiver; a segment ending more (a deep pipeline)
 * is left to the receiver's own ingress. */
#define PG_MIRROR_EV 2

/* What a framer step reads and writes besides the connection: apart from the walk's pointers,
 * because a global function's memory arguments are scalars to the verifier after the call. */
struct pg_args {
	struct aurum_pgsql_out o;
	__u64 ts;
	__u32 dir;
	__u32 at_start;
	/* On loopback egress (pg_mirror): 1 when the segment starts where this end's framing of its
	 * direction stood, 2 when that direction had seen nothing yet (0: not framed for the
	 * receiver); and the queries it ended, kept for the receiver. */
	__u32 keep;
	__u32 nev;
	struct pg_ev ev[PG_MIRROR_EV];
};

struct pg_walk {
	struct __sk_buff *skb;
	struct pg_sock *st;
	struct pg_args *a;
	struct pg_window *win; /* this CPU's */
	__u32 base;   /* payload offset in the packet */
	__u32 len;    /* payload bytes */
	__u32 pos;    /* the walk's position in the payload */
	__u32 first;  /* the first byte not seen before */
	__u32 wstart; /* payload offset of the window's first byte */
	__u32 wlen;   /* bytes in the window */
	__u8 done;
	__u8 load_failed;
	__u8 pad[6];
};

/* The bytes the framer may look at in one step, as a sized type: a global function's pointer
 * argument is memory of its pointee's size. */
struct pg_bytes {
	__u8 b[2 * AURUM_PGSQL_WIN]; /* aurum_pgsql_run reads a header up to AURUM_PGSQL_WIN in */
};

/* One framer step (bpf/proto/pgsql.h) as a global function: the verifier checks it once with
 * unknown arguments instead of once per path through the walk. */
__noinline int pg_step_fe(struct aurum_pgsql_conn *c, const struct pg_bytes *b, struct pg_args *a, __u32 nb,
			  __u32 left)
{
	if (!c || !b || !a)
		return -1;
	return aurum_pgsql_run(c, AURUM_PGSQL_FRONTEND, b->b, nb, left, a->ts, a->at_start, &a->o);
}

/* The same for the backend's bytes: one function per direction, so that each keeps only its own
 * message types' branches. */
__noinline int pg_step_be(struct aurum_pgsql_conn *c, const struct pg_bytes *b, struct pg_args *a, __u32 nb,
			  __u32 left)
{
	if (!c || !b || !a)
		return -1;
	return aurum_pgsql_run(c, AURUM_PGSQL_BACKEND, b->b, nb, left, a->ts, a->at_start, &a->o);
}

/* A query this segment ended: aggregated for the socket whose program runs, and kept for the
 * receiver of a loopback segment (a->keep). A global function, so that the walk's paths do not
 * multiply by its branches. */
__noinline int pg_ended(struct pg_sock *st, struct pg_args *a)
{
	struct pg_ev e = {};

	if (!st || !a)
		return 0;
	e.dur_ns = a->o.ev_end > a->o.ev_start ? a->o.ev_end - a->o.ev_start : 0;
	e.error = a->o.ev_error;
	e.cls[0] = a->o.ev_cls[0];
	e.cls[1] = a->o.ev_cls[1];
	pg_record(st, &e);
	if (a->keep) {
		/* More than fit: a->nev says so, and pg_mirror leaves the segment to the receiver. */
		if (a->nev < PG_MIRROR_EV)
			a->ev[a->nev & (PG_MIRROR_EV - 1)] = e;
		a->nev++;
	}
	return 0;
}

/* One message (or the part of one in this segment), or up to 1 + AURUM_PGSQL_RUN small ones, per
 * call. Returns 1 when the walk is over (w->done), else 0. */
static __always_inline long pg_walk_one(struct pg_walk *w)
{
	struct pg_window *win = w->win;
	__u32 left, nb, off, n;
	int r;

	if (!win || w->pos >= w->len) {
		w->done = 1;
		return 1;
	}
	left = w->len - w->pos;
	nb = left < AURUM_PGSQL_WIN ? left : AURUM_PGSQL_WIN;
	if (w->pos < w->wstart || w->pos + nb > w->wstart + w->wlen) {
		n = left < PG_WINDOW ? left : PG_WINDOW;
		asm volatile("" : "+r"(n));
		if (n == 0 || n > PG_WINDOW ||
		    bpf_skb_load_bytes(w->skb, w->base + w->pos, win->b, ((n - 1) & (PG_WINDOW - 1)) + 1)) {
			w->load_failed = 1;
			w->done = 1;
			return 1;
		}
		w->wstart = w->pos;
		w->wlen = n;
	}
	off = w->pos - w->wstart;
	asm volatile("%[x] &= 0xff" : [x] "+r"(off)); /* PG_WINDOW - 1, opaque to clang */
	w->a->at_start = w->pos == w->first;
	if (w->a->dir == AURUM_PGSQL_FRONTEND)
		r = pg_step_fe(&w->st->c, (const struct pg_bytes *)(win->b + off), w->a, nb, left);
	else
		r = pg_step_be(&w->st->c, (const struct pg_bytes *)(win->b + off), w->a, nb, left);
	if (w->a->o.ev)
		pg_ended(w->st, w->a);
	if (r < 0) {
		w->done = 1;
		return 1;
	}
	w->pos += r;
	if (w->pos >= w->len) {
		w->done = 1;
		return 1;
	}
	return 0;
}

/* The rest of a segment's walk: bpf_loop verifies the callback once and the verifier inlines the
 * loop (5.19+). */
static long pg_walk_step(__u32 i, struct pg_walk *w)
{
	return pg_walk_one(w);
}

static __always_inline void pg_apply(const struct aurum_pgsql_out *o)
{
	__u32 zero = 0;
	struct aurum_pgsql_stats *s;

	if (!(o->malformed | o->resyncs | o->gaps_in_body | o->dropped | o->unmatched | o->gave_up))
		return;
	s = bpf_map_lookup_elem(&pg_stat, &zero);
	if (!s)
		return;
	s->n[AURUM_PGSQL_STAT_MALFORMED] += o->malformed;
	s->n[AURUM_PGSQL_STAT_RESYNC] += o->resyncs;
	s->n[AURUM_PGSQL_STAT_GAP_IN_BODY] += o->gaps_in_body;
	s->n[AURUM_PGSQL_STAT_DROPPED] += o->dropped;
	s->n[AURUM_PGSQL_STAT_UNMATCHED] += o->unmatched;
	if (o->gave_up == AURUM_PGSQL_GAVE_UP_TLS)
		s->n[AURUM_PGSQL_STAT_GAVE_UP_TLS]++;
	else if (o->gave_up == AURUM_PGSQL_GAVE_UP_GSS)
		s->n[AURUM_PGSQL_STAT_GAVE_UP_GSS]++;
	else if (o->gave_up == AURUM_PGSQL_GAVE_UP_CANCEL)
		s->n[AURUM_PGSQL_STAT_GAVE_UP_CANCEL]++;
	else if (o->gave_up == AURUM_PGSQL_GAVE_UP_MALFORMED)
		s->n[AURUM_PGSQL_STAT_GAVE_UP_MALFORMED]++;
}

/* ---- Loopback: the sender frames a segment for both ends -----------------------------------------
 *
 * On loopback a segment passes its sender's egress hook first and then, on this host, its
 * receiver's ingress hook (loopback_xmit -> netif_rx -> the backlog softirq), with the same bytes.
 * Each end keeps a conn fed with the same two byte streams, so one walk can serve both: when the
 * segment continues the sender's framing of its direction exactly, and the receiver's conn stands,
 * after the walk, where the segment starts in that direction and where the sender's stands in the
 * other, the receiver's conn becomes a copy of the sender's, and the queries the walk ended are
 * aggregated for the receiver too (its owner, its side). Its ingress then finds the bytes seen
 * already, as in a retransmission, and stops before the clock and the walk. Checking after the
 * walk also covers the receiver's programs running meanwhile on another CPU (both ends sending at
 * once): its positions moved, and nothing is copied. Mirrored queries are timed as the sender
 * saw them: on the server a query starts when it left the client, on the client an answer ends
 * when it left the server (both a few microseconds before they reach the other socket).
 *
 * When the positions differ (the lookup failed, a segment still on its way to the receiver's
 * ingress, one end's state could not be made, more queries ended than are kept) nothing is copied
 * and the receiver's ingress frames the segment itself, as without the mirror: the positions
 * decide, so no byte is framed twice or skipped for either end. */

/* The receiver takes the sender's conn and the queries the walk ended, if it had framed this
 * direction up to where the segment starts (a->keep, seq) and the other direction as far as the
 * sender. A global function: verified once. Returns 1 when it did. */
__noinline int pg_mirror_take(struct pg_sock *peer, struct pg_sock *st, const struct pg_args *a, __u32 seq)
{
	const struct aurum_pgsql_half *rd, *ro, *so;
	__u32 i;

	if (!peer || !st || !a || a->nev > PG_MIRROR_EV)
		return 0;
	rd = a->dir == AURUM_PGSQL_FRONTEND ? &peer->c.fe : &peer->c.be;
	ro = a->dir == AURUM_PGSQL_FRONTEND ? &peer->c.be : &peer->c.fe;
	so = a->dir == AURUM_PGSQL_FRONTEND ? &st->c.be : &st->c.fe;
	if (a->keep == 1 ? !rd->seq_valid || rd->next_seq != seq : rd->seq_valid)
		return 0;
	if (ro->seq_valid != so->seq_valid || ro->next_seq != so->next_seq)
		return 0;
	/* Positions first, then the flag: the receiver sets the flag before it moves its positions,
	 * so the positions above with the flag clear mean its last segment is framed to the end (a
	 * segment it frames itself on another CPU moves its positions before its walk). */
	asm volatile("" ::: "memory");
	if (*(volatile __u8 *)&peer->walking)
		return 0;
	/* The conn, but of the FIFO only the cycles waiting: a third of the bytes of a whole copy. */
	peer->c.fe = st->c.fe;
	peer->c.be = st->c.be;
	peer->c.batch_start = st->c.batch_start;
	peer->c.head = st->c.head;
	peer->c.count = st->c.count;
	peer->c.batch = st->c.batch;
	peer->c.batch_cls[0] = st->c.batch_cls[0];
	peer->c.batch_cls[1] = st->c.batch_cls[1];
	peer->c.quarantine = st->c.quarantine;
	peer->c.resyncs = st->c.resyncs;
	peer->c.gave_up = st->c.gave_up;
	peer->c.live = st->c.live;
	for (i = 0; i < AURUM_PGSQL_FIFO; i++) {
		__u32 k = (st->c.head + i) & (AURUM_PGSQL_FIFO - 1);

		if (i >= st->c.count)
			break;
		peer->c.fifo[k] = st->c.fifo[k];
	}
	for (i = 0; i < PG_MIRROR_EV; i++) {
		if (i >= a->nev)
			break;
		pg_record(peer, &a->ev[i]);
	}
	return 1;
}

/* After the sender's walk of a loopback segment: the receiving socket's state, made if it has none
 * (the other side of the sender's), takes the walk's result. Returns whether it did; if not, the
 * receiver's ingress frames the segment. */
static __always_inline bool pg_mirror(struct __sk_buff *skb, const struct tcp_view *v, struct pg_sock *st,
				      bool server, const struct pg_args *a)
{
	struct bpf_sock *rx = aurum_loopback_receiver(skb, v->v6, v->sport, v->dport);
	struct pg_sock *peer;

	if (!rx) {
		pg_count(AURUM_PGSQL_STAT_MIRROR_MISSED, 1);
		return false;
	}
	peer = bpf_sk_storage_get(&pg_sk, rx, 0, 0);
	if (!peer) {
		peer = bpf_sk_storage_get(&pg_sk, rx, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (peer) {
			peer->server = !server;
			peer->port = server ? v->sport : 0;
			pg_count(AURUM_PGSQL_STAT_OPENED, 1);
		}
	}
	/* The storage outlives the reference for the rest of this run: it is freed after an RCU grace
	 * period, and programs run under rcu_read_lock. */
	bpf_sk_release(rx);
	if (!peer || peer == st || peer->closed || peer->server == server || !pg_mirror_take(peer, st, a, v->seq)) {
		pg_count(AURUM_PGSQL_STAT_MIRROR_MISSED, 1);
		return false;
	}
	pg_count(AURUM_PGSQL_STAT_MIRRORED, 1);
	return true;
}

/* A socket on a PostgreSQL port: frame its segment here, aggregate finished queries. */
static __always_inline void frame_pg(struct __sk_buff *skb, struct tcp_view *v, bool ingress, bool server,
				     __u16 server_port)
{
	struct aurum_sock_owner *own;
	struct pg_args a = {};
	struct pg_walk w = {};
	struct bpf_sock *sk;
	struct pg_sock *st;
	__s64 first;

	sk = skb->sk;
	if (!sk)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return;
	st = bpf_sk_storage_get(&pg_sk, sk, 0, 0);
	if (!st) {
		if (!v->payload_len)
			return; /* the close of a connection never seen with data */
		st = bpf_sk_storage_get(&pg_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!st) {
			pg_count(AURUM_PGSQL_STAT_NO_STATE, 1);
			return;
		}
		st->server = server;
		st->port = server ? 0 : server_port;
		pg_count(AURUM_PGSQL_STAT_OPENED, 1);
	}
	if (st->closed)
		return;
	/* Benchmark floor only (AURUM_BENCH_STOP_AFTER_LOOKUP): false in every real run. */
	if (bench_stop_after_lookup)
		return;
	/* The owner is looked up on the frontend's segments (those that start queries), and on every
	 * segment until one is known: a query is aggregated under the owner seen when its last
	 * frontend segment went by, and the other direction is spared the lookup. */
	if (ingress == server || !st->owner.tgid)
		own = bpf_sk_storage_get(&sock_owner, sk, 0, 0);
	else
		own = 0;
	if (own && own->owner.tgid &&
	    (own->owner.tgid != st->owner.tgid || own->owner.start_ns != st->owner.start_ns)) {
		/* Tell userspace while the process is most likely alive, so that it can name it later
		 * (a backend that lived for one connection). */
		struct aurum_stream_event *e = bpf_ringbuf_reserve(&stream_rb, sizeof(*e) + sizeof(st->owner), 0);

		if (e) {
			__builtin_memset(e, 0, sizeof(*e));
			e->ts_ns = bpf_ktime_get_ns();
			e->cookie = bpf_get_socket_cookie(skb);
			e->owner = own->owner;
			e->copied = sizeof(st->owner);
			e->proto = AURUM_STREAM_PGSQL;
			e->flags = AURUM_STREAM_OWNER | (server ? AURUM_STREAM_SERVER : 0);
			__builtin_memcpy((void *)(e + 1), &st->owner, sizeof(st->owner));
			/* Woken now, not at the next drain: a backend serving one short connection may be
			 * gone 20 ms later, and with it what /proc says about it. Once or twice per
			 * connection. */
			bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
		} else {
			aurum_count_loss(&stream_lost, AURUM_STREAM_LOSS_RINGBUF_FULL);
		}
		st->owner = own->owner;
	}
	if (v->payload_len && !st->c.gave_up) {
		a.dir = ingress == server ? AURUM_PGSQL_FRONTEND : AURUM_PGSQL_BACKEND;
		/* On loopback this end frames the segment for the receiver too (pg_mirror), when it
		 * continues this end's framing exactly (not a retransmission). */
		if (have_sk_lookup && !ingress && skb->ifindex == AURUM_LOOPBACK_IFINDEX) {
			struct aurum_pgsql_half *h = aurum_pgsql_half_of(&st->c, a.dir);

			a.keep = !h->seq_valid ? 2 : h->next_seq == v->seq ? 1 : 0;
		}
		if (have_sk_lookup) {
			*(volatile __u8 *)&st->walking = 1;
			asm volatile("" ::: "memory");
		}
		first = aurum_pgsql_segment(&st->c, a.dir, v->seq, v->payload_len, &a.o);
		if (a.o.ev)
			pg_ended(st, &a);
		/* Seen already (a retransmission, or on loopback framed by the sender's egress): the
		 * common case of a loopback receiver, so it skips the clock and the window. */
		if (first < 0 && !a.keep)
			goto walked_all;
		a.ts = bpf_ktime_get_ns();
		__u32 zero = 0, depth = 0;
		struct pg_windows *wins = bpf_map_lookup_elem(&pg_win, &zero);

		if (first >= 0 && st->c.gave_up == 0 && wins) {
			depth = wins->depth;
			if (depth >= PG_NEST) {
				/* Deeper than contexts nest: never seen; framing of this segment is lost. */
				w.load_failed = 1;
				goto walked;
			}
			wins->depth = depth + 1;
			w.win = &wins->w[depth];
			w.skb = skb;
			w.st = st;
			w.a = &a;
			w.base = v->payload_off;
			w.len = v->payload_len;
			w.pos = (__u32)first;
			w.first = (__u32)first;
			/* The first step here: it takes a typical query or answer whole, and bpf_loop's
			 * setup is only paid by segments with more in them. */
			if (!pg_walk_one(&w))
				bpf_loop(PG_MAX_STEPS - 1, pg_walk_step, &w, 0);
			wins->depth = depth;
walked:
			if (!w.done || w.load_failed) {
				/* The rest of the segment was not walked: its framing is unknown. */
				pg_count(w.load_failed ? AURUM_PGSQL_STAT_LOAD_FAILED : AURUM_PGSQL_STAT_STEP_LIMIT, 1);
				aurum_pgsql_lose_sync(&st->c, aurum_pgsql_half_of(&st->c, a.dir), &a.o);
			}
		}
		/* Framing events count per end, as when each end framed its own bytes. */
		if (a.keep && pg_mirror(skb, v, st, server, &a))
			pg_apply(&a.o);
		pg_apply(&a.o);
walked_all:
		if (have_sk_lookup) {
			asm volatile("" ::: "memory");
			*(volatile __u8 *)&st->walking = 0;
		}
	}
	if (v->fin)
		st->fins |= ingress ? 1 : 2;
	if (v->rst || st->fins == 3) {
		st->closed = 1;
		pg_count(AURUM_PGSQL_STAT_CLOSED, 1);
	}
}

/* Everything but PostgreSQL framed in the kernel: the segment copied to userspace. Apart from
 * capture so that its record header and frame_pg's state share the stack (512 bytes in all). */
static __always_inline void copy_out(struct __sk_buff *skb, struct tcp_view *v, __u32 local, __u32 remote, __u8 proto,
				     __u8 flags)
{
	struct aurum_stream_event h = {};
	struct aurum_sock_owner *own;
	struct bpf_sock *sk;
	__u32 n;
	int err;

	h.cookie = bpf_get_socket_cookie(skb);
	if (bpf_map_lookup_elem(&stream_skip, &h.cookie)) {
		if (!v->fin && !v->rst)
			return;
		v->payload_len = 0;
	}
	h.ts_ns = bpf_ktime_get_ns();
	sk = skb->sk;
	if (sk) {
		sk = bpf_sk_fullsock(sk);
		if (sk) {
			own = bpf_sk_storage_get(&sock_owner, sk, 0, 0);
			if (own)
				h.owner = own->owner;
		}
	}
	h.seq = v->seq;
	h.len = v->payload_len;
	h.local_port = local;
	h.remote_port = remote;
	h.proto = proto;
	h.flags = flags;

	n = v->payload_len;
	if (n > AURUM_STREAM_MAX_COPY)
		n = AURUM_STREAM_MAX_COPY;
	if (n <= 512)
		err = emit_512(skb, &h, v->payload_off, n);
	else if (n <= 4096)
		err = emit_4096(skb, &h, v->payload_off, n);
	else if (n <= 16384)
		err = emit_16384(skb, &h, v->payload_off, n);
	else
		err = emit_65536(skb, &h, v->payload_off, n);
	if (err)
		aurum_count_loss(&stream_lost, AURUM_STREAM_LOSS_RINGBUF_FULL);
}

static __always_inline int capture(struct __sk_buff *skb, bool ingress, bool pg_in_kernel)
{
	struct tcp_view v = {};
	__u32 local, remote;
	__u8 *p, proto = 0, flags = 0;

	if (tcp_view(skb, &v) || (v.payload_len == 0 && !v.fin && !v.rst))
		return 1;
	local = ingress ? v.dport : v.sport;
	remote = ingress ? v.sport : v.dport;
	p = bpf_map_lookup_elem(&stream_ports, &local);
	if (p && *p) {
		proto = *p;
		flags |= AURUM_STREAM_SERVER;
	} else {
		p = bpf_map_lookup_elem(&stream_ports, &remote);
		if (!p || !*p)
			return 1;
		proto = *p;
	}
	if (ingress)
		flags |= AURUM_STREAM_INGRESS;
	if (v.fin)
		flags |= AURUM_STREAM_FIN;
	if (v.rst)
		flags |= AURUM_STREAM_RST;
	if (pg_in_kernel && proto == AURUM_STREAM_PGSQL) {
		frame_pg(skb, &v, ingress, flags & AURUM_STREAM_SERVER, remote);
		return 1;
	}
	copy_out(skb, &v, local, remote, proto, flags);
	return 1; /* cgroup_skb: 1 lets the packet through; we only watch */
}

/* Everything copied to userspace: kernels without bpf_loop (< 5.17). */
SEC("cgroup_skb/ingress")
int stream_ingress(struct __sk_buff *skb)
{
	return capture(skb, true, false);
}

SEC("cgroup_skb/egress")
int stream_egress(struct __sk_buff *skb)
{
	return capture(skb, false, false);
}

/* PostgreSQL framed and aggregated here; AMQP and "auto" ports copied as above. */
SEC("cgroup_skb/ingress")
int stream_pg_ingress(struct __sk_buff *skb)
{
	return capture(skb, true, true);
}

SEC("cgroup_skb/egress")
int stream_pg_egress(struct __sk_buff *skb)
{
	return capture(skb, false, true);
}
