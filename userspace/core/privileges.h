// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <string>

namespace aurum {

// "" when the process may load and attach BPF programs; else a one-line message naming the
// capability that is missing.
std::string missing_capability();
// Turns on the kernel's BPF run-time statistics for as long as the returned fd is open
// (-errno on failure).
int bpf_enable_stats_fd();

} // namespace aurum
