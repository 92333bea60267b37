// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Network component: TCP payload bytes, connections opened/closed/active, connect latency,
 * failed connects, retransmits and resets, per process; and the shared per-socket owner map.
 *
 * Ownership: the owner of a socket (sock_owner, sk_storage, see sock.h) is the process that
 * called connect() (SYN_SENT runs in its context), the owner of the listening socket for a
 * passive open (ESTABLISHED from SYN_RECV runs in softirq: the listener is looked up by netns
 * and port in net_listen, filled at LISTEN in the listener's context), and whoever sends or
 * receives on it last (sock_send_length/sock_recv_length run in process context): a socket
 * handed to another process (fork, SCM_RIGHTS, prefork accept) moves with its active count.
 *
 * Every program is tp_btf: bpf_sk_storage_get is only allowed in BPF_PROG_TYPE_TRACING
 * programs (commit 8e4597c627fb, 5.11), not in raw_tp ones, so raw_tp is no fallback here.
 * Bytes: sock_send_length (6.3, commit 6e6eda44b939) counts what the application wrote; without
 * it (bytes_at_close) TCP's bytes_acked is added when the socket closes (RFC 4898
 * tcpEStatsAppHCThruOctets*). Received bytes are TCP's bytes_received. Where owners are in
 * sk_storage an iterator reads both counters live; else (owners in a hash, < 5.11) received
 * bytes are sock_recv_length's or, before 6.3, the counters at close. */
#include "common.bpf.h"
#include "net.h"
#include "sock_owner.bpf.h"
#include "stream_ports.bpf.h"
#include "proto/hist.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define MSG_PEEK 2
#define ECONNREFUSED 111
#define ETIMEDOUT 110

/* Set by userspace before load. */
const volatile bool bytes_at_close = false;
/* Set by userspace between the iterator's passes. */
__u32 iter_pass = AURUM_NET_ITER_LISTEN;
/* Set by userspace once pending_iter is attached (owners in sk_storage only): sent bytes then go
 * to the socket's own counter (sock_owner.tx_pending), which userspace reads with the iterator
 * at each poll, and reach the owner's totals in net_procs when the socket closes or changes
 * owner. That spares each send a hash lookup and an atomic add on the owner's shared line (~50 ns
 * a run on wrk against nginx).
 * Received bytes, with owners in sk_storage, are TCP's own count (bytes_received, the sequence
 * space the socket took in order), read by the same iterator and added the same way (rx_seen):
 * no program runs on sock_recv_length, which cost ~85-95 ns a receive (2 a request on wrk
 * against nginx, ~3.7 a pgbench query, counting the reads that find nothing). The owner then
 * changes only at a send (on_length). */
__u32 pending_on = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* resized by userspace before load */
	__type(key, struct aurum_proc_key);
	__type(value, struct aurum_net_stats);
} net_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct aurum_net_listen_key);
	__type(value, struct aurum_net_listener);
} net_listen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AURUM_NET_LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} net_lost SEC(".maps");

/* Socket owners where tracing programs cannot use sk_storage (< 5.11): keyed by the socket's
 * address, deleted when the socket reaches CLOSE; LRU so that a missed CLOSE cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct aurum_sock_owner);
} net_sk_h SEC(".maps");

static const struct aurum_net_stats zero_stats;
static const struct aurum_sock_owner zero_owner;

static __always_inline bool is_tcp(const struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	return sk->sk_protocol == IPPROTO_TCP && (family == AF_INET || family == AF_INET6);
}

static __always_inline void listen_key(const struct sock *sk, struct aurum_net_listen_key *k)
{
	k->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	k->port = sk->__sk_common.skc_num;
	k->pad = 0;
}

/* The stats of a process; `self` names the calling task when it is the owner (for comm). */
static __always_inline struct aurum_net_stats *stats_get(const struct aurum_proc_key *owner,
							 struct task_struct *self)
{
	struct aurum_proc_key key = *owner;
	struct aurum_net_stats *s = bpf_map_lookup_elem(&net_procs, &key);

	if (s)
		return s;
	/* EEXIST: another CPU created it first, fine. Anything else: the map is full. */
	if (bpf_map_update_elem(&net_procs, &key, &zero_stats, BPF_NOEXIST) == 0) {
		s = bpf_map_lookup_elem(&net_procs, &key);
		if (s && self)
			BPF_CORE_READ_STR_INTO(&s->comm, self, group_leader, comm);
		return s;
	}
	s = bpf_map_lookup_elem(&net_procs, &key);
	if (!s)
		aurum_count_loss(&net_lost, AURUM_NET_LOSS_PROC_MAP_FULL);
	return s;
}

/* sks: the owner lives in sk_storage (the shared sock_owner map), else in net_sk_h. */
static __always_inline struct aurum_sock_owner *owner_get(const struct sock *sk, bool create, bool sks)
{
	struct aurum_sock_owner *o;
	__u64 addr = (__u64)sk;

	if (sks) {
		o = bpf_sk_storage_get(&sock_owner, (void *)sk, 0, create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
		if (!o && create)
			aurum_count_loss(&net_lost, AURUM_NET_LOSS_SK_STORAGE);
		return o;
	}
	o = bpf_map_lookup_elem(&net_sk_h, &addr);
	if (o || !create)
		return o;
	bpf_map_update_elem(&net_sk_h, &addr, &zero_owner, BPF_NOEXIST);
	o = bpf_map_lookup_elem(&net_sk_h, &addr);
	if (!o)
		aurum_count_loss(&net_lost, AURUM_NET_LOSS_SK_STORAGE);
	return o;
}

/* Direction of a socket we did not see open: inbound if its local port is being listened on. */
static __always_inline __u8 guess_dir(const struct sock *sk)
{
	struct aurum_net_listen_key k;

	listen_key(sk, &k);
	return bpf_map_lookup_elem(&net_listen, &k) ? AURUM_SOCK_DIR_INBOUND : AURUM_SOCK_DIR_OUTBOUND;
}

static __always_inline __u32 dir_index(__u8 dir)
{
	return dir == AURUM_SOCK_DIR_INBOUND ? AURUM_NET_IN : AURUM_NET_OUT;
}

/* Count an established socket into `owner`'s active connections: as opened if we saw it open,
 * else as adopted (established before the agent started, or before its owner was known). */
static __always_inline void count_established(const struct sock *sk, struct aurum_sock_owner *o,
					      struct task_struct *self, struct aurum_net_stats *s)
{
	if (o->dir == AURUM_SOCK_DIR_UNKNOWN)
		o->dir = guess_dir(sk);
	if (!s)
		s = stats_get(&o->owner, self);
	if (!s)
		return;
	if (o->opened_ns)
		__sync_fetch_and_add(&s->opened[dir_index(o->dir)], 1);
	else
		__sync_fetch_and_add(&s->adopted[dir_index(o->dir)], 1);
	o->flags |= AURUM_NET_F_ACTIVE;
}

/* The RFC 4898 counters count sequence space: a received FIN is one "byte" of bytes_received
 * (tcp_rcv_nxt_update() runs with the FIN's end_seq), and bytes_acked counts our SYN once its
 * ACK arrives (active opens: snd_una starts at the ISN) and our FIN once acked. */
static __always_inline __u64 payload_received(const struct sock *sk, struct tcp_sock *tp)
{
	__u64 n = BPF_CORE_READ(tp, bytes_received);
	__u64 flags = BPF_CORE_READ(sk, __sk_common.skc_flags);

	/* tcp_fin() sets SOCK_DONE; a reset does not. */
	if (n && (flags & (1ULL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		n--;
	return n;
}

/* Received bytes not yet in the owner's totals (owners in sk_storage). */
static __always_inline __u64 rx_unseen(const struct sock *sk, const struct aurum_sock_owner *o)
{
	__u64 got = payload_received(sk, (struct tcp_sock *)sk);

	return got > o->rx_seen ? got - o->rx_seen : 0;
}

/* A socket's pending bytes into its owner's totals: taken off the socket first, then added, so
 * that a reader taking the totals before the pending bytes (userspace, NetCollector::poll) may
 * miss them for one poll but never counts them twice. Bytes added meanwhile stay pending. Only
 * owners in sk_storage keep any. */
static __always_inline void flush_pending(const struct sock *sk, struct aurum_sock_owner *o, bool sks)
{
	__u64 tx, rx;
	struct aurum_net_stats *s;

	if (!sks)
		return;
	tx = o->tx_pending;
	rx = rx_unseen(sk, o);
	if ((!tx && !rx) || !o->owner.tgid)
		return;
	s = stats_get(&o->owner, 0);
	if (!s)
		return; /* counted as a loss; they stay pending, read by the iterator while it lives */
	if (tx) {
		__sync_fetch_and_add(&o->tx_pending, -tx);
		__sync_fetch_and_add(&s->tx_bytes, tx);
	}
	if (rx) {
		__sync_fetch_and_add(&o->rx_seen, rx);
		__sync_fetch_and_add(&s->rx_bytes, rx);
	}
}

/* The calling task touches a socket it does not own (yet): it becomes the owner. */
static __always_inline void take_over(const struct sock *sk, struct aurum_sock_owner *o, bool sks)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct aurum_net_stats *s;
	struct aurum_proc_key key;
	__u32 d;

	if (aurum_is_kthread(task))
		return; /* kernel users of a socket (NFS, ktls) own nothing */
	aurum_proc_key(task, &key);
	flush_pending(sk, o, sks); /* the bytes so far were the old owner's */
	if (o->dir == AURUM_SOCK_DIR_INBOUND) {
		/* A server whose listener is not its acceptor (nginx, gunicorn): the next passive
		 * opens on that port go to this process directly, sparing it a take-over each. */
		struct aurum_net_listen_key k;
		struct aurum_net_listener *l;

		listen_key(sk, &k);
		l = bpf_map_lookup_elem(&net_listen, &k);
		if (l)
			l->acceptor = key;
	}
	if (o->flags & AURUM_NET_F_ACTIVE) {
		d = dir_index(o->dir);
		s = stats_get(&o->owner, 0);
		if (s)
			__sync_fetch_and_add(&s->moved_out[d], 1);
		s = stats_get(&key, task);
		if (s)
			__sync_fetch_and_add(&s->moved_in[d], 1);
		o->owner = key;
		return;
	}
	o->owner = key;
	if (sk->__sk_common.skc_state == TCP_ESTABLISHED)
		count_established(sk, o, task, 0);
}

static __always_inline void on_length(struct sock *sk, int ret, int flags, bool tx, bool sks)
{
	struct aurum_sock_owner *o;
	struct aurum_net_stats *s;

	if (ret <= 0 || !is_tcp(sk) || (!tx && (flags & MSG_PEEK)))
		return;
	o = owner_get(sk, true, sks);
	if (!o)
		return;
	if (o->owner.tgid != (__u32)(bpf_get_current_pid_tgid() >> 32))
		take_over(sk, o, sks);
	if (!o->owner.tgid) {
		aurum_count_loss(&net_lost, AURUM_NET_LOSS_NO_OWNER);
		return;
	}
	/* With owners in sk_storage this runs for sends only (receives are TCP's count). */
	if (sks && pending_on) {
		__sync_fetch_and_add(&o->tx_pending, ret);
		return;
	}
	s = stats_get(&o->owner, 0);
	if (!s)
		return;
	if (tx)
		__sync_fetch_and_add(&s->tx_bytes, ret);
	else
		__sync_fetch_and_add(&s->rx_bytes, ret);
}

static __always_inline __u32 fail_reason(const struct sock *sk)
{
	int err = sk->sk_err;

	if (err == ECONNREFUSED)
		return AURUM_NET_FAIL_REFUSED;
	if (err == ETIMEDOUT)
		return AURUM_NET_FAIL_TIMEOUT;
	return AURUM_NET_FAIL_OTHER;
}

/* The protocol of a listener, from its process's name (the same table as userspace's
 * proto_of_exe in collectors/stream.cpp): postgres -> PostgreSQL, beam.smp -> AMQP or other
 * (RabbitMQ also serves HTTP: userspace tells from the first bytes). */
static __always_inline __u8 stream_proto_of(struct task_struct *task)
{
	char c[16] = {};

	BPF_CORE_READ_STR_INTO(&c, task, group_leader, comm);
	if (c[0] == 'p' && c[1] == 'o' && c[2] == 's' && c[3] == 't' && c[4] == 'g' && c[5] == 'r' &&
	    c[6] == 'e' && c[7] == 's' && c[8] == 0)
		return AURUM_STREAM_PGSQL;
	if (c[0] == 'p' && c[1] == 'o' && c[2] == 's' && c[3] == 't' && c[4] == 'm' && c[5] == 'a' &&
	    c[6] == 's' && c[7] == 't' && c[8] == 'e' && c[9] == 'r' && c[10] == 0)
		return AURUM_STREAM_PGSQL;
	if (c[0] == 'b' && c[1] == 'e' && c[2] == 'a' && c[3] == 'm' && c[4] == '.' && c[5] == 's' &&
	    c[6] == 'm' && c[7] == 'p' && c[8] == 0)
		return AURUM_STREAM_AUTO;
	return AURUM_STREAM_NONE;
}

static __always_inline void mark_stream_port(struct task_struct *task, __u32 port)
{
	__u8 proto = stream_proto_of(task), *cur;

	if (proto == AURUM_STREAM_NONE)
		return;
	cur = bpf_map_lookup_elem(&stream_ports, &port);
	if (cur && *cur == AURUM_STREAM_NONE) /* a port userspace configured keeps its protocol */
		*cur = proto;
}

static __always_inline void on_listen(const struct sock *sk, int oldstate, int newstate, bool sks)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct aurum_net_listen_key k;
	struct aurum_net_listener *l, v = {};
	struct aurum_sock_owner *o;

	listen_key(sk, &k);
	if (newstate == TCP_LISTEN) {
		/* listen() runs in the listener's context. */
		aurum_proc_key(task, &v.owner);
		if (bpf_map_update_elem(&net_listen, &k, &v, BPF_ANY))
			aurum_count_loss(&net_lost, AURUM_NET_LOSS_LISTEN_MAP_FULL);
		o = owner_get(sk, true, sks);
		if (o)
			o->owner = v.owner;
		mark_stream_port(task, k.port);
		return;
	}
	/* LISTEN -> CLOSE: forget the port unless another socket (SO_REUSEPORT) took it over. */
	o = owner_get(sk, false, sks);
	l = bpf_map_lookup_elem(&net_listen, &k);
	if (l && (!o || (l->owner.tgid == o->owner.tgid && l->owner.start_ns == o->owner.start_ns)))
		bpf_map_delete_elem(&net_listen, &k);
}

/* `state`: the socket's state, or at CLOSE the one it left. `fin_sent_acked`: count our FIN as
 * acked once sent (a live read, see pending_iter), else only once snd_una reached snd_nxt. */
static __always_inline __u64 payload_acked(struct tcp_sock *tp, const struct aurum_sock_owner *o, int state,
					   bool fin_sent_acked)
{
	__u64 n = BPF_CORE_READ(tp, bytes_acked);

	if (n && o->dir == AURUM_SOCK_DIR_OUTBOUND)
		n--; /* our SYN */
	/* Our FIN was sent in these states and is acked once snd_una reaches snd_nxt (left for
	 * CLOSE without that on a reset or timeout; FIN_WAIT1 -> CLOSE directly with a negative
	 * TCP_LINGER2 once acked). */
	if (n && (state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 || state == TCP_LAST_ACK || state == TCP_CLOSING) &&
	    (fin_sent_acked || BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, snd_nxt)))
		n--;
	return n;
}

static __always_inline void on_state_body(const struct sock *sk, int oldstate, int newstate, bool sks)
{
	struct aurum_sock_owner *o;
	struct aurum_net_stats *s;
	__u64 now;

	if (!is_tcp(sk))
		return;
	if (newstate == TCP_LISTEN || oldstate == TCP_LISTEN) {
		if (newstate == TCP_LISTEN || newstate == TCP_CLOSE)
			on_listen(sk, oldstate, newstate, sks);
		return;
	}
	if (newstate == TCP_SYN_SENT) {
		/* connect() (or a TCP Fast Open sendmsg) runs in the connector's context. */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		o = owner_get(sk, true, sks);
		if (!o)
			return;
		aurum_proc_key(task, &o->owner);
		o->opened_ns = bpf_ktime_get_ns();
		o->dir = AURUM_SOCK_DIR_OUTBOUND;
		o->flags = 0;
		o->peer_port = bpf_ntohs(sk->__sk_common.skc_dport);
		/* A socket connected again after CLOSE: tcp_disconnect() zeroed TCP's counters. */
		o->rx_seen = 0;
		return;
	}
	if (newstate == TCP_ESTABLISHED) {
		now = bpf_ktime_get_ns();
		if (oldstate == TCP_SYN_SENT) {
			o = owner_get(sk, false, sks);
			if (!o || !o->owner.tgid)
				return;
			s = stats_get(&o->owner, 0);
			if (s && o->opened_ns && now > o->opened_ns)
				aurum_log2_hist_add(s->conn_slots, AURUM_CONN_SLOTS, AURUM_CONN_MIN_SHIFT,
						    &s->conn_count, &s->conn_sum_ns, now - o->opened_ns);
			o->opened_ns = now;
			if (s)
				count_established(sk, o, 0, s);
			return;
		}
		/* Passive open, in softirq: the owner is the listener's. */
		struct aurum_net_listen_key k;
		struct aurum_net_listener *l;

		o = owner_get(sk, true, sks);
		if (!o)
			return;
		o->dir = AURUM_SOCK_DIR_INBOUND;
		o->opened_ns = now;
		o->flags = 0;
		o->peer_port = bpf_ntohs(sk->__sk_common.skc_dport);
		listen_key(sk, &k);
		l = bpf_map_lookup_elem(&net_listen, &k);
		if (!l) {
			/* Counted as opened by the first process that sends or receives on it. */
			o->owner.tgid = 0;
			return;
		}
		o->owner = l->acceptor.tgid ? l->acceptor : l->owner;
		count_established(sk, o, 0, 0);
		return;
	}
	if (oldstate == TCP_SYN_SENT && newstate == TCP_CLOSE) {
		o = owner_get(sk, false, sks);
		if (!o || !o->owner.tgid)
			return;
		s = stats_get(&o->owner, 0);
		if (s)
			__sync_fetch_and_add(&s->failed[fail_reason(sk)], 1);
		return;
	}
	if (oldstate == TCP_ESTABLISHED) {
		o = owner_get(sk, false, sks);
		if (!o || !(o->flags & AURUM_NET_F_ACTIVE) || !o->owner.tgid)
			return;
		o->flags &= ~AURUM_NET_F_ACTIVE;
		s = stats_get(&o->owner, 0);
		if (s)
			__sync_fetch_and_add(&s->closed[dir_index(o->dir)], 1);
	}
	if (bytes_at_close && newstate == TCP_CLOSE) {
		struct tcp_sock *tp = (struct tcp_sock *)sk;

		o = owner_get(sk, false, sks);
		if (!o || !o->owner.tgid || o->dir == AURUM_SOCK_DIR_UNKNOWN)
			return;
		s = stats_get(&o->owner, 0);
		if (!s)
			return;
		/* Before the adds: from here pending_iter no longer shows these bytes as pending
		 * (the socket's state is still the old one until this hook returns). */
		o->flags |= AURUM_NET_F_AT_CLOSE;
		asm volatile("" ::: "memory");
		if (!sks) /* else flushed above, in on_state */
			__sync_fetch_and_add(&s->rx_bytes, payload_received(sk, tp));
		__sync_fetch_and_add(&s->tx_bytes, payload_acked(tp, o, oldstate, false));
	}
}

static __always_inline void on_state(const struct sock *sk, int oldstate, int newstate, bool sks)
{
	__u64 addr = (__u64)sk;

	/* Whatever it was (a connection, a failed connect, a listener), its bytes are final. */
	if (sks && newstate == TCP_CLOSE && is_tcp(sk)) {
		struct aurum_sock_owner *o = owner_get(sk, false, true);

		if (o)
			flush_pending(sk, o, true);
	}
	on_state_body(sk, oldstate, newstate, sks);
	/* sk_storage dies with the socket; the hash entry must not outlive it (addresses are
	 * reused). A socket can be connected again after CLOSE: it starts from a new entry. */
	if (!sks && newstate == TCP_CLOSE)
		bpf_map_delete_elem(&net_sk_h, &addr);
}

/* A socket-level event in softirq or a timer: charged to the socket's owner, if known. */
static __always_inline struct aurum_net_stats *owner_stats(const struct sock *sk, bool sks)
{
	struct aurum_sock_owner *o;

	if (!sk || !is_tcp(sk))
		return 0;
	o = owner_get(sk, false, sks);
	if (!o || !o->owner.tgid) {
		aurum_count_loss(&net_lost, AURUM_NET_LOSS_NO_OWNER);
		return 0;
	}
	return stats_get(&o->owner, 0);
}

/* One retransmission of `skb`, in segments as TcpRetransSegs counts them. */
static __always_inline void count_retrans(const struct sock *sk, const struct sk_buff *skb, bool sk_owners)
{
	struct aurum_net_stats *s = owner_stats(sk, sk_owners);
	struct tcp_skb_cb *cb;
	__u16 segs;

	if (!s)
		return;
	cb = (struct tcp_skb_cb *)&skb->cb[0];
	segs = BPF_CORE_READ(cb, tcp_gso_segs);
	__sync_fetch_and_add(&s->retrans_segs, segs ? segs : 1);
}

/* Owners in sk_storage (5.11+). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(state_btf, const struct sock *sk, const int oldstate, const int newstate)
{
	on_state(sk, oldstate, newstate, true);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(send_btf, struct sock *sk, int ret, int flags)
{
	on_length(sk, ret, flags, true, true);
	return 0;
}

/* TcpRetransSegs counts segments: a TSO skb retransmitted whole is tcp_skb_pcount() of them. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retrans_btf, const struct sock *sk, const struct sk_buff *skb)
{
	count_retrans(sk, skb, true);
	return 0;
}

/* Since 6.13 the tracepoint also fires for attempts that failed (TSQ throttling, no memory), with
 * their error; TcpRetransSegs counts only those sent. Chosen when the BTF shows the argument. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retrans_err_btf, const struct sock *sk, const struct sk_buff *skb, int err)
{
	if (err)
		return 0;
	count_retrans(sk, skb, true);
	return 0;
}

/* sk is NULL for a reset answering a segment no socket owns (a closed port): nobody's. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(rst_sent_btf, const struct sock *sk)
{
	struct aurum_net_stats *s;

	if (!sk)
		return 0;
	s = owner_stats(sk, true);
	if (s)
		__sync_fetch_and_add(&s->rst_sent, 1);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(rst_recv_btf, struct sock *sk)
{
	struct aurum_net_stats *s = owner_stats(sk, true);

	if (s)
		__sync_fetch_and_add(&s->rst_recv, 1);
	return 0;
}

/* Owners in net_sk_h: kernels whose tracing programs cannot use sk_storage (< 5.11). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(state_btf_h, const struct sock *sk, const int oldstate, const int newstate)
{
	on_state(sk, oldstate, newstate, false);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(send_btf_h, struct sock *sk, int ret, int flags)
{
	on_length(sk, ret, flags, true, false);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(recv_btf_h, struct sock *sk, int ret, int flags)
{
	on_length(sk, ret, flags, false, false);
	return 0;
}

/* TcpRetransSegs counts segments: a TSO skb retransmitted whole is tcp_skb_pcount() of them. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retrans_btf_h, const struct sock *sk, const struct sk_buff *skb)
{
	count_retrans(sk, skb, false);
	return 0;
}

/* Since 6.13 the tracepoint also fires for attempts that failed (TSQ throttling, no memory), with
 * their error; TcpRetransSegs counts only those sent. Chosen when the BTF shows the argument. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retrans_err_btf_h, const struct sock *sk, const struct sk_buff *skb, int err)
{
	if (err)
		return 0;
	count_retrans(sk, skb, false);
	return 0;
}

/* sk is NULL for a reset answering a segment no socket owns (a closed port): nobody's. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(rst_sent_btf_h, const struct sock *sk)
{
	struct aurum_net_stats *s;

	if (!sk)
		return 0;
	s = owner_stats(sk, false);
	if (s)
		__sync_fetch_and_add(&s->rst_sent, 1);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(rst_recv_btf_h, struct sock *sk)
{
	struct aurum_net_stats *s = owner_stats(sk, false);

	if (s)
		__sync_fetch_and_add(&s->rst_recv, 1);
	return 0;
}

/* Run by userspace at each poll over every socket's owner entry (pending_on): the bytes not yet
 * in their owner's totals, per socket. */
SEC("iter/bpf_sk_storage_map")
int pending_iter(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct aurum_sock_owner *o = ctx->value;
	struct aurum_net_pending rec = {};
	struct sock *sk = ctx->sk;

	if (!sk || !o || !o->owner.tgid)
		return 0;
	if (!is_tcp(sk))
		return 0;
	rec.tx = o->tx_pending;
	rec.rx = rx_unseen(sk, o);
	/* No sock_send_length (< 6.3): what TCP's counter says was sent and acked so far, the
	 * figure the state hook adds to the owner's totals at CLOSE (from then on, none here). Read
	 * without the socket's lock: our FIN is taken as acked once sent, so that a read between an
	 * ACK and its state change shows a byte less for a poll, never one more (the exported
	 * counter keeps its highest value, so a byte more would stay). */
	if (bytes_at_close && o->dir != AURUM_SOCK_DIR_UNKNOWN && !(o->flags & AURUM_NET_F_AT_CLOSE))
		rec.tx = payload_acked((struct tcp_sock *)sk, o, sk->__sk_common.skc_state, true);
	if (!rec.tx && !rec.rx)
		return 0;
	rec.owner = o->owner;
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

/* Run by userspace at start, twice (listeners first, so that the second pass can tell inbound
 * from outbound): every task's socket files, so that sockets opened before the agent started get
 * an owner and their established connections count as active. */
SEC("iter/task_file")
int adopt_iter(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct aurum_net_listen_key k;
	struct aurum_net_listener v = {};
	struct aurum_sock_owner *o;
	struct socket *sock;
	struct sock *sk;
	__u8 state;

	if (!task || !file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk;
	if (!sk || !is_tcp(sk))
		return 0;
	state = sk->__sk_common.skc_state;
	if (iter_pass == AURUM_NET_ITER_LISTEN) {
		if (state != TCP_LISTEN)
			return 0;
		aurum_proc_key(task, &v.owner);
		listen_key(sk, &k);
		if (bpf_map_update_elem(&net_listen, &k, &v, BPF_NOEXIST) == 0 || bpf_map_lookup_elem(&net_listen, &k)) {
			o = owner_get(sk, true, true);
			if (o && !o->owner.tgid)
				o->owner = v.owner;
		} else {
			aurum_count_loss(&net_lost, AURUM_NET_LOSS_LISTEN_MAP_FULL);
		}
		return 0;
	}
	if (state != TCP_ESTABLISHED)
		return 0;
	o = owner_get(sk, true, true);
	if (!o || (o->flags & AURUM_NET_F_ACTIVE))
		return 0;
	if (!o->owner.tgid) {
		aurum_proc_key(task, &o->owner);
		/* What it received before the agent started is not counted (nor what it sent). */
		o->rx_seen = payload_received(sk, (struct tcp_sock *)sk);
	}
	o->opened_ns = 0; /* not seen opening: adopted */
	count_established(sk, o, task, 0);
	return 0;
}
