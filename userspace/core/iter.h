// SPDX-License-Identifier: Apache-2.0
// BPF iterators (iter/... programs): run one to its end from userspace.
#pragma once
#include <bpf/libbpf.h>

#include <string>

namespace aurum {

// Runs the iterator behind `link` to its end and returns what its program wrote with
// bpf_seq_write (empty for one that only fills maps). Throws Error naming `what` on failure.
std::string run_iter(bpf_link *link, const std::string &what);

} // namespace aurum
