/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Dispatcher: picks the vendored BTF dump for the architecture being built.
 * The BPF build passes -D__TARGET_ARCH_<arch> (see cmake/bpf.cmake). */
#ifndef AURUM_VMLINUX_DISPATCH_H
#define AURUM_VMLINUX_DISPATCH_H
#if defined(__TARGET_ARCH_x86)
#include "x86_64/vmlinux.h"
#else
#error "aurum: no vendored vmlinux.h for this architecture; see vmlinux/README.md to add one"
#endif
#endif
