// SPDX-License-Identifier: Apache-2.0
#include "core/privileges.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "identity/procfs.h"

namespace aurum {

namespace {
constexpr int CAP_SYS_ADMIN_ = 21, CAP_PERFMON_ = 38, CAP_BPF_ = 39, CAP_SYS_PTRACE_ = 19;
}

std::string missing_capability()
{
	std::string status;
	if (!identity::read_file("/proc/self/status", status))
		return "cannot read /proc/self/status to check capabilities";
	auto pos = status.find("\nCapEff:");
	if (pos == std::string::npos)
		return "no CapEff in /proc/self/status";
	std::uint64_t eff = std::strtoull(status.c_str() + pos + 8, nullptr, 16);
	auto has = [&](int cap) { return (eff >> cap) & 1; };
	bool admin = has(CAP_SYS_ADMIN_);
	if (!admin && !has(CAP_BPF_))
		return "missing capability CAP_BPF (or CAP_SYS_ADMIN): needed to load BPF programs; run as root or grant CAP_BPF,CAP_PERFMON,CAP_SYS_PTRACE,CAP_SYS_RESOURCE,CAP_NET_ADMIN";
	if (!admin && !has(CAP_PERFMON_))
		return "missing capability CAP_PERFMON (or CAP_SYS_ADMIN): needed to attach tracing programs";
	if (!has(CAP_SYS_PTRACE_))
		return "missing capability CAP_SYS_PTRACE: needed to read other processes' /proc/<pid>/exe and environ for service names";
	return "";
}

int bpf_enable_stats_fd()
{
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	return fd < 0 ? -errno : fd;
}

} // namespace aurum
