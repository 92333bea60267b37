/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Loopback segments in cgroup_skb programs: the receiving socket, for a sender's egress program
 * that parses a segment for both ends (http.bpf.c on_segment, stream.bpf.c pg_mirror). On loopback
 * a segment passes its sender's egress hook and then, on this host, its receiver's ingress hook
 * (loopback_xmit -> netif_rx -> the backlog softirq), with the same bytes. */
#ifndef AURUM_LOOPBACK_BPF_H
#define AURUM_LOOPBACK_BPF_H
#include <bpf/bpf_endian.h>

#define AURUM_TCP_LISTEN 10
/* "lo" is the first device registered in every network namespace (loopback_net_init). */
#define AURUM_LOOPBACK_IFINDEX 1

/* The socket a loopback segment is for, found by the segment's own addresses (what the receiving
 * stack looks up; skb data starts at the network header), with a reference the caller drops
 * (bpf_sk_release); 0 if none, or a listener (the handshake is not done). Needs
 * bpf_sk_lookup_tcp in cgroup_skb programs: callers keep it behind a constant the verifier
 * drops on kernels without it. */
static __always_inline struct bpf_sock *aurum_loopback_receiver(struct __sk_buff *skb, bool v6, __u16 sport,
								 __u16 dport)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct bpf_sock_tuple t = {};
	struct bpf_sock *rx;
	__u32 size;

	if (v6) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end)
			return 0;
		__builtin_memcpy(t.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(t.ipv6.daddr, &ip6->daddr, 16);
		t.ipv6.sport = bpf_htons(sport);
		t.ipv6.dport = bpf_htons(dport);
		size = sizeof(t.ipv6);
	} else {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end)
			return 0;
		t.ipv4.saddr = ip->saddr;
		t.ipv4.daddr = ip->daddr;
		t.ipv4.sport = bpf_htons(sport);
		t.ipv4.dport = bpf_htons(dport);
		size = sizeof(t.ipv4);
	}
	rx = bpf_sk_lookup_tcp(skb, &t, size, BPF_F_CURRENT_NETNS, 0);
	if (rx && rx->state == AURUM_TCP_LISTEN) {
		bpf_sk_release(rx);
		return 0;
	}
	return rx;
}
#endif
