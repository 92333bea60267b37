/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Network component: TCP bytes, connections, connect latency, failures, retransmits and resets
 * per process, folded per service in userspace (userspace/collectors/net.cpp). */
#ifndef AURUM_NET_H
#define AURUM_NET_H
#include "common.h"

/* Connect duration (SYN sent to established): log2 slots from <= 4.096 us (2^12 ns) to
 * <= 2^34 ns (17 s), then +Inf. */
#define AURUM_CONN_MIN_SHIFT 12
#define AURUM_CONN_SLOTS 24

enum aurum_net_dir { AURUM_NET_IN = 0, AURUM_NET_OUT = 1, AURUM_NET_DIRS = 2 };

enum aurum_net_fail {
	AURUM_NET_FAIL_REFUSED = 0,
	AURUM_NET_FAIL_TIMEOUT = 1,
	AURUM_NET_FAIL_OTHER = 2,
	AURUM_NET_FAILS = 3,
};

/* Bits of aurum_sock_owner.flags that net owns. */
#define AURUM_NET_F_ACTIVE 0x1   /* counted in its owner's active connections */
#define AURUM_NET_F_AT_CLOSE 0x2 /* bytes_at_close: its counters are in its owner's totals */

struct aurum_net_stats {
	__u64 rx_bytes, tx_bytes;            /* TCP payload */
	__u64 opened[AURUM_NET_DIRS];        /* reached ESTABLISHED while the agent ran */
	__u64 closed[AURUM_NET_DIRS];        /* left ESTABLISHED */
	__u64 adopted[AURUM_NET_DIRS];       /* established before the agent started (active baseline) */
	__u64 moved_in[AURUM_NET_DIRS];      /* established sockets taken over from another process */
	__u64 moved_out[AURUM_NET_DIRS];     /* ... handed over to another process */
	__u64 failed[AURUM_NET_FAILS];
	__u64 retrans_segs;
	__u64 rst_sent, rst_recv;
	__u64 conn_count, conn_sum_ns;
	__u64 conn_slots[AURUM_CONN_SLOTS];
	char comm[AURUM_COMM_LEN]; /* set only from the owner's own context; may be empty */
};

/* A listening socket, by network namespace and local port. */
struct aurum_net_listen_key {
	__u32 netns; /* inode number of the namespace */
	__u16 port;  /* host order */
	__u16 pad;
};

struct aurum_net_listener {
	struct aurum_proc_key owner;    /* called listen(): named by aurum_tcp_listen_info */
	struct aurum_proc_key acceptor; /* last to take over one of its connections (a prefork
					 * worker): owns the next passive opens; zero tgid unknown */
};

enum aurum_net_loss {
	AURUM_NET_LOSS_PROC_MAP_FULL = 0,
	AURUM_NET_LOSS_LISTEN_MAP_FULL = 1,
	AURUM_NET_LOSS_SK_STORAGE = 2,  /* sk_storage could not be created (memory) */
	AURUM_NET_LOSS_NO_OWNER = 3,    /* an event on a socket whose owner is not known yet */
	AURUM_NET_LOSS_MAX = 4,
};

/* What the pending-bytes iterator writes per socket with bytes not yet in its owner's totals. */
struct aurum_net_pending {
	struct aurum_proc_key owner;
	__u64 tx, rx;
};

/* Iterator passes over every task's socket files at start (see net.bpf.c). */
enum aurum_net_iter_pass { AURUM_NET_ITER_LISTEN = 0, AURUM_NET_ITER_ESTABLISHED = 1 };
#endif
