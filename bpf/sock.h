/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Per-socket owner, shared by every socket-level component (net, http, pgsql, amqp).
 *
 * The net component (bpf/net.bpf.c) is the one writer: it fills the owner from hooks that run
 * in the owner's context (connect, listen, send/recv) or from the listening socket's owner for
 * passive opens, which complete in softirq. Other components only read it; their skeletons
 * reuse the net component's map fd (bpf_map__reuse_fd) so that there is one map in the kernel. */
#ifndef AURUM_SOCK_H
#define AURUM_SOCK_H
#include "common.h"

enum aurum_sock_dir {
	AURUM_SOCK_DIR_UNKNOWN = 0,
	AURUM_SOCK_DIR_INBOUND = 1,  /* accepted: this host is the server */
	AURUM_SOCK_DIR_OUTBOUND = 2, /* connected: this host is the client */
};

struct aurum_sock_owner {
	struct aurum_proc_key owner; /* zero tgid: not known yet */
	__u64 opened_ns;             /* SYN sent or connection established, ktime ns */
	__u8 dir;                    /* enum aurum_sock_dir */
	__u8 flags;                  /* component-private bits, see net.h */
	__u16 peer_port;             /* remote port, host order (outbound: server_port) */
	__u32 pad;
	/* net, owners in sk_storage: payload bytes sent since they were last added to the owner's
	 * totals (net.bpf.c, pending_on), and the part of TCP's own bytes_received counter already
	 * in them (what it counted since is pending); read live by an iterator, added at close or
	 * a change of owner. */
	__u64 tx_pending, rx_seen;
};
#endif
