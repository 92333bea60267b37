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
	AURUM_STREAM_OWNER = 1 << 5,     /* no payload: a PostgreSQL socket framed in the kernel has a
					  * new owner; 16 bytes follow, the previous owner */
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

/* PostgreSQL framed in the kernel (stream_pg_* programs, bpf_loop): queries are aggregated per
 * (owner, side, error class, server port) into the semantic conventions' buckets, the same as
 * the userspace parser's (1 ms .. 10 s, "v <= le"). */
#define AURUM_PGSQL_NBOUNDS 9
#define AURUM_PGSQL_SLOTS (AURUM_PGSQL_NBOUNDS + 1)
#define AURUM_PGSQL_BOUNDS_NS                                                                      \
	{                                                                                          \
		1000000ULL, 5000000ULL, 10000000ULL, 50000000ULL, 100000000ULL, 500000000ULL,      \
		1000000000ULL, 5000000000ULL, 10000000000ULL                                       \
	}

struct aurum_pgsql_key {
	struct aurum_proc_key owner;
	__u16 server_port; /* client side: the server's port; server side: 0 */
	__u8 server;       /* 1: the database's own socket */
	__u8 error;        /* 1: an ErrorResponse came before ReadyForQuery */
	__u8 cls[2];       /* its SQLSTATE class; zero with error=1: not captured (_OTHER) */
	__u8 pad[2];       /* zero: keys are compared bytewise */
};

struct aurum_pgsql_hist {
	__u64 sum_ns;
	__u64 slots[AURUM_PGSQL_SLOTS];
};

/* Counters of the in-kernel framer (one per-CPU array element, summed by userspace). */
enum aurum_pgsql_stat {
	AURUM_PGSQL_STAT_MALFORMED = 0, /* headers that failed validation */
	AURUM_PGSQL_STAT_RESYNC,        /* a direction lost framing */
	AURUM_PGSQL_STAT_GAP_IN_BODY,   /* bytes missing inside a message body, absorbed */
	AURUM_PGSQL_STAT_DROPPED,       /* queries not reported: framing lost, or the FIFO full */
	AURUM_PGSQL_STAT_UNMATCHED,     /* ReadyForQuery with no query waiting */
	AURUM_PGSQL_STAT_GAVE_UP_TLS,
	AURUM_PGSQL_STAT_GAVE_UP_GSS,
	AURUM_PGSQL_STAT_GAVE_UP_CANCEL,
	AURUM_PGSQL_STAT_GAVE_UP_MALFORMED,
	AURUM_PGSQL_STAT_OPENED,        /* sockets given framing state */
	AURUM_PGSQL_STAT_CLOSED,        /* and closed (FIN both ways, or RST) */
	AURUM_PGSQL_STAT_STEP_LIMIT,    /* a segment with more messages than one walk takes: resync */
	AURUM_PGSQL_STAT_LOAD_FAILED,   /* bpf_skb_load_bytes failed: resync */
	AURUM_PGSQL_STAT_NO_STATE,      /* sk_storage could not be created (loss) */
	AURUM_PGSQL_STAT_NO_OWNER,      /* a query on a socket whose owner is unknown (loss) */
	AURUM_PGSQL_STAT_HIST_FULL,     /* the aggregate map had no room (loss) */
	AURUM_PGSQL_STAT_MIRRORED,      /* loopback segments its sender framed for both ends */
	AURUM_PGSQL_STAT_MIRROR_MISSED, /* loopback segments the receiver had to frame itself */
	AURUM_PGSQL_STAT_MAX,
};

struct aurum_pgsql_stats {
	__u64 n[AURUM_PGSQL_STAT_MAX];
};
#endif
