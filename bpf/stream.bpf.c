// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Stream capture: see stream.h. One cgroup_skb program per direction on the cgroup v2 root.
 * cgroup_skb sees every socket of every process in the hierarchy; sockets of processes in
 * cgroups outside it (and Unix-domain sockets) are not seen. */
#include "common.bpf.h"
#include "sock_owner.bpf.h"
#include "stream.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6

/* port -> enum aurum_stream_proto, written by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} stream_ports SEC(".maps");

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

struct tcp_view {
	__u32 payload_off;
	__u32 payload_len;
	__u32 seq;
	__u16 sport, dport;
	__u8 fin, rst;
};

/* Finds the TCP payload of an IPv4 or IPv6 packet (skb data starts at the network header). */
static __always_inline int tcp_view(struct __sk_buff *skb, struct tcp_view *v)
{
	struct tcphdr th;
	__u32 l4_off, total;
	__u8 l4proto;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return -1;
		/* A fragment carries no TCP header of its own (or no payload start). */
		if (ip.frag_off & bpf_htons(0x3fff))
			return -1;
		l4proto = ip.protocol;
		l4_off = ip.ihl * 4;
		total = bpf_ntohs(ip.tot_len);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return -1;
		/* Extension headers between IPv6 and TCP are not walked: such segments are skipped. */
		l4proto = ip6.nexthdr;
		l4_off = sizeof(ip6);
		total = sizeof(ip6) + bpf_ntohs(ip6.payload_len);
	} else {
		return -1;
	}
	if (l4proto != IPPROTO_TCP)
		return -1;
	if (bpf_skb_load_bytes(skb, l4_off, &th, sizeof(th)))
		return -1;
	/* GSO packets on egress carry tot_len of the whole super-packet; skb->len is what is here. */
	if (total > skb->len || total == 0)
		total = skb->len;
	v->payload_off = l4_off + th.doff * 4;
	v->payload_len = total > v->payload_off ? total - v->payload_off : 0;
	v->seq = bpf_ntohl(th.seq);
	v->sport = bpf_ntohs(th.source);
	v->dport = bpf_ntohs(th.dest);
	v->fin = th.fin;
	v->rst = th.rst;
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

static __always_inline int capture(struct __sk_buff *skb, bool ingress)
{
	struct aurum_stream_event h = {};
	struct aurum_sock_owner *own;
	struct tcp_view v = {};
	struct bpf_sock *sk;
	__u32 local, remote, n;
	__u8 *p, proto = 0, flags = 0;
	int err;

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

	h.cookie = bpf_get_socket_cookie(skb);
	if (bpf_map_lookup_elem(&stream_skip, &h.cookie)) {
		if (!v.fin && !v.rst)
			return 1;
		v.payload_len = 0;
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
	h.seq = v.seq;
	h.len = v.payload_len;
	h.local_port = local;
	h.remote_port = remote;
	h.proto = proto;
	h.flags = flags;

	n = v.payload_len;
	if (n > AURUM_STREAM_MAX_COPY)
		n = AURUM_STREAM_MAX_COPY;
	if (n <= 512)
		err = emit_512(skb, &h, v.payload_off, n);
	else if (n <= 4096)
		err = emit_4096(skb, &h, v.payload_off, n);
	else if (n <= 16384)
		err = emit_16384(skb, &h, v.payload_off, n);
	else
		err = emit_65536(skb, &h, v.payload_off, n);
	if (err)
		aurum_count_loss(&stream_lost, AURUM_STREAM_LOSS_RINGBUF_FULL);
	return 1; /* cgroup_skb: 1 lets the packet through; we only watch */
}

SEC("cgroup_skb/ingress")
int stream_ingress(struct __sk_buff *skb)
{
	return capture(skb, true);
}

SEC("cgroup_skb/egress")
int stream_egress(struct __sk_buff *skb)
{
	return capture(skb, false);
}
