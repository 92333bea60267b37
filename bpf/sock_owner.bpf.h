/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The shared per-socket owner map (see sock.h). Include once per BPF object; every object but
 * net's has its fd replaced by net's before load. */
#ifndef AURUM_SOCK_OWNER_BPF_H
#define AURUM_SOCK_OWNER_BPF_H
#include "sock.h"

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct aurum_sock_owner);
} sock_owner SEC(".maps");
#endif
