/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Fixed-width types for the pure helpers in bpf/proto/: the same header compiles for the BPF
 * target (types come from vmlinux.h) and on the host (from <linux/types.h>), so the code that
 * runs in the kernel is the code the unit tests and fuzzers exercise. */
#ifndef AURUM_PROTO_TYPES_H
#define AURUM_PROTO_TYPES_H
#if defined(__bpf__) || defined(__BPF__)
#ifndef __VMLINUX_H__
#include "vmlinux.h"
#endif
#else
#include <linux/types.h>
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#endif
#endif
