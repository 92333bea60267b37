/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Stream capture for length-prefixed protocols parsed in userspace (PostgreSQL, AMQP 0-9-1).
 *
 * cgroup_skb programs copy the TCP payload of segments on ports userspace marked (the listening
 * ports of databases and brokers, and configured ones) into a ringbuf, with the TCP sequence
 * number so that userspace can drop retransmitted bytes and see gaps. Userspace runs one
 * protocol state machine per socket and direction (userspace/proto/). Segments without payload
 * are sent only when they carry FIN or RST, so that userspace can free a closed connection's
 * state. Every other segment costs one array lookup per port. */
#ifndef AURUM_STREAM_H
#define AURUM_STREAM_H
#include "common.h"

enum aurum_stream_proto {
	AURUM_STREAM_NONE = 0,
	AURUM_STREAM_PGSQL = 1,
	AURUM_STREAM_AMQP = 2,
	AURUM_STREAM_AUTO = 3, /* either: userspace tells from the first bytes */
};

enum aurum_stream_flags {
	AURUM_STREAM_INGRESS = 1 << 0,   /* else egress */
	AURUM_STREAM_SERVER = 1 << 1,    /* the marked port is this socket's local port */
	AURUM_STREAM_TRUNCATED = 1 << 2, /* copied < len: the rest is a gap */
	AURUM_STREAM_FIN = 1 << 3,       /* the segment ends its direction (may carry payload) */
	AURUM_STREAM_RST = 1 << 4,       /* the connection is reset */
};

/* Copies are made in size classes so that a small segment does not reserve a large record. */
#define AURUM_STREAM_MAX_COPY 65536

struct aurum_stream_event {
	__u64 ts_ns;
	__u64 cookie;                /* bpf_get_socket_cookie: the connection, per socket */
	struct aurum_proc_key owner; /* from the shared sock_owner map; zero tgid if unknown */
	__u32 seq;                   /* TCP sequence number of the first payload byte */
	__u32 len;                   /* payload bytes in the segment */
	__u32 copied;                /* payload bytes that follow this header */
	__u16 local_port;
	__u16 remote_port;
	__u8 proto;                  /* enum aurum_stream_proto */
	__u8 flags;                  /* enum aurum_stream_flags */
	__u8 pad[6];
	/* __u8 data[copied] follows */
};

enum aurum_stream_loss {
	AURUM_STREAM_LOSS_RINGBUF_FULL = 0,
	AURUM_STREAM_LOSS_MAX = 1,
};
#endif
