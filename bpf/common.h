/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by every component, BPF and userspace alike. */
#ifndef AURUM_COMMON_H
#define AURUM_COMMON_H
#include "proto/types.h"

struct aurum_proc_key {
	__u32 tgid;
	__u32 pad;      /* zero: keys are compared bytewise */
	__u64 start_ns; /* group leader's start_boottime, ns */
};

#define AURUM_COMM_LEN 16
#endif
