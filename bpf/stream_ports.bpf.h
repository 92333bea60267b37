/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The ports whose payload the stream component parses (port -> enum aurum_stream_proto),
 * shared by net and stream: userspace marks configured ports and the listening ports of known
 * programs at each housekeeping pass, and net's LISTEN hook marks a database's or broker's port
 * the moment it calls listen(), so that a client that connects at once (RabbitMQ clients
 * declare their queues, with their dead-letter exchanges, in the first frames) is parsed from
 * its first byte rather than from the agent's next pass. Include once per BPF object; stream's
 * fd is replaced by net's before load. */
#ifndef AURUM_STREAM_PORTS_BPF_H
#define AURUM_STREAM_PORTS_BPF_H
#include "stream.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} stream_ports SEC(".maps");
#endif
