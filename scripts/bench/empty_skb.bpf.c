// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Two cgroup_skb programs that do nothing: what the hook itself costs a segment (the kernel's
 * run-filter plumbing and one program call per direction), for scripts/bench/floor.sh. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup_skb/ingress")
int empty_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/egress")
int empty_egress(struct __sk_buff *skb)
{
	return 1;
}
