/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Fixed-width types and inlining for the pure parsers in bpf/proto/: the same header compiles in a
 * BPF object (types from vmlinux.h) and in host C/C++ (types from the UAPI headers), so that the
 * code the kernel runs is the code the unit tests and fuzzers run. No libc, no BPF helper calls. */
#ifndef AURUM_PROTO_TYPES_H
#define AURUM_PROTO_TYPES_H

#if defined(__bpf__) || defined(__BPF__)
#include "vmlinux.h"
#else
#include <linux/types.h>
#endif

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Big-endian (network order) reads from a byte buffer: byte by byte, so they are alignment-free and
 * the verifier sees only constant-offset single-byte loads. */
static __always_inline __u16 aurum_be16(const __u8 *p)
{
	return (__u16)(((__u16)p[0] << 8) | (__u16)p[1]);
}

static __always_inline __u32 aurum_be32(const __u8 *p)
{
	return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | (__u32)p[3];
}

static __always_inline __u64 aurum_be64(const __u8 *p)
{
	return ((__u64)aurum_be32(p) << 32) | (__u64)aurum_be32(p + 4);
}

#endif /* AURUM_PROTO_TYPES_H */
