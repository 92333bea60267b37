/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Big-endian (network order) reads for the wire-protocol parsers in bpf/proto/: byte by byte, so
 * they are alignment-free and the verifier sees only constant-offset single-byte loads. */
#ifndef AURUM_PROTO_BYTEORDER_H
#define AURUM_PROTO_BYTEORDER_H

#include "types.h"

/* types.h leaves it to bpf_helpers.h in BPF objects; a parser header may be included first. */
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

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

#endif /* AURUM_PROTO_BYTEORDER_H */
