// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Not an agent program: it proves that every bpf/proto/ header compiles for the BPF target and,
 * when loaded by hand (see tests.cmake), that the verifier accepts each classifier on a
 * bpf_skb_load_bytes()-filled stack buffer, the way the collectors call them. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "proto/http.h"
#include "proto/pgsql.h"
#include "proto/amqp.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __s64);
} proto_results SEC(".maps");

static __always_inline void put(__u32 key, __s64 value)
{
	bpf_map_update_elem(&proto_results, &key, &value, BPF_ANY);
}

SEC("cgroup_skb/egress")
int proto_check(struct __sk_buff *skb)
{
	struct aurum_amqp_frame_hdr hdr = {};
	__u8 buf[AURUM_HTTP_PEEK] = {};
	__u32 len = skb->len;

	/* A variable length, as a collector has for a short segment, so the `len` guards are what
	 * keeps the reads in bounds. */
	if (len > sizeof(buf))
		len = sizeof(buf);
	if (len == 0 || bpf_skb_load_bytes(skb, 0, buf, len))
		return 1;
	put(0, aurum_http_parse_method(buf, len));
	put(1, aurum_http_parse_status(buf, len));
	put(2, aurum_http_status_is_interim(aurum_http_parse_status(buf, len)));
	put(3, aurum_pgsql_startup_kind(buf, len));
	put(4, aurum_pgsql_header(buf, len, AURUM_PGSQL_BACKEND));
	put(5, aurum_pgsql_ready_for_query(buf, len));
	put(6, aurum_amqp_protocol_header(buf, len) + aurum_amqp_basic_method(buf, len));
	put(7, aurum_amqp_frame_header(buf, len, 0, &hdr) ? -1 : hdr.size);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
