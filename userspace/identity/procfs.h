// SPDX-License-Identifier: Apache-2.0
// Reading what identity needs from /proc/<pid>. The root is injectable so tests can point it
// at a fake tree.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "identity/cgroup.h"

namespace aurum::identity {

struct ProcStat {
	pid_t pid = 0;
	pid_t ppid = 0;
	std::string comm;
	char state = '?';
	std::uint64_t start_ticks = 0; // field 22, clock ticks since boot
	bool kthread = false;          // PF_KTHREAD in field 9
};

struct ProcInfo {
	ProcStat stat;
	std::string exe;               // basename of /proc/<pid>/exe, "" if unreadable
	std::vector<std::string> argv; // /proc/<pid>/cmdline
	std::string otel_service_name; // OTEL_SERVICE_NAME from /proc/<pid>/environ
	CgroupInfo cgroup;
};

struct MemoryUsage {
	std::uint64_t rss_anon = 0, rss_file = 0, rss_shmem = 0; // bytes
	std::uint64_t vm_rss = 0;
};

// Parses the content of /proc/<pid>/stat (comm may hold spaces and parentheses).
std::optional<ProcStat> parse_stat(const std::string &content);
// Parses /proc/<pid>/status for the Rss* lines (kB -> bytes).
MemoryUsage parse_status_memory(const std::string &content);

class ProcFs {
public:
	explicit ProcFs(std::string root = "/proc");
	const std::string &root() const { return root_; }

	std::vector<pid_t> pids() const;
	// pids with the inode number of their /proc directory: a new inode under the same pid means
	// the pid may have been reused (or the dentry recycled), a hint to read its stat again.
	std::vector<std::pair<pid_t, unsigned long>> entries() const;
	std::optional<ProcStat> stat(pid_t pid) const;
	std::optional<ProcInfo> info(pid_t pid) const;
	std::optional<MemoryUsage> memory(pid_t pid) const;
	// Pss_Shmem from smaps_rollup (bytes): shared memory split among its users, so a sum over
	// processes counts it once. nullopt where the kernel does not report it (< 5.9).
	std::optional<std::uint64_t> pss_shmem(pid_t pid) const;
	// TCP ports this process listens on (IPv4 and IPv6), via its socket inodes.
	std::set<std::uint16_t> listening_ports(pid_t pid) const;
	// Ticks per second of start_ticks.
	static long clock_ticks();

private:
	// Listening-socket inodes per network namespace: /proc/<pid>/net/tcp lists the whole
	// namespace (every TIME_WAIT socket of the host), so it is read once per housekeeping pass per
	// namespace, not once per process. Shared by copies of this ProcFs.
	struct ListenCache;
	std::map<unsigned long, std::uint16_t> listen_table(const std::string &pid_dir) const;

	std::string root_;
	std::shared_ptr<ListenCache> listen_cache_;
};

bool read_file(const std::string &path, std::string &out, size_t limit = 1 << 20);

} // namespace aurum::identity
