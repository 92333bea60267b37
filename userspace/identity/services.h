// SPDX-License-Identifier: Apache-2.0
// The directory of services: which process belongs to which service, which services are alive.
//
// Processes are keyed by (pid, start time) so that a reused pid never inherits a service. The
// kernel names a process by (tgid, start_boottime ns); /proc/<pid>/stat gives the same instant in
// clock ticks, so both sides agree. Services get ids that are never reused; a service with no
// live process for longer than the TTL is forgotten and its series disappear. Past
// max_services distinct services, new ones are reported as "_other" and counted.
// Not thread-safe: the agent holds one lock around all collection.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bpf/common.h"
#include "identity/resolver.h"
#include "metrics/family.h"

namespace aurum::identity {

using ServiceId = std::uint32_t;
using Clock = std::chrono::steady_clock;

struct Service {
	ServiceId id = 0;
	Identity identity;
	unsigned live_processes = 0;
	Clock::time_point last_alive{};
};

class ServiceDirectory {
public:
	struct Options {
		unsigned max_services = 256;
		std::chrono::seconds ttl{300};
	};
	ServiceDirectory(ProcFs procfs, Resolver resolver, Options opts);

	// Rescans /proc: new processes are resolved, dead ones dropped, live counts and TTLs
	// updated, processes re-resolved where a port rule may match later.
	void refresh(Clock::time_point now);

	// The service of a process the kernel saw. `comm` names it if it is already gone (exited,
	// reaped or not: a zombie's /proc has no command line to resolve from) and nothing else
	// named it before (a gone process keeps the first name it is given here), unless
	// `ppid` names a live parent and it never called execve (`exec_gen` 0): a fork child (a
	// prefork worker, a CGI child) is its parent's. A higher `exec_gen` than last time (it called
	// execve) makes it resolve again; collectors that do not track execs pass 0.
	// `cmdline` (NUL-separated, possibly cut) is what the kernel saw at its last execve: config
	// rules and interpreter naming use it when the process is gone.
	ServiceId service_of(const aurum_proc_key &key, const char *comm, std::uint32_t exec_gen,
			     pid_t ppid = 0, std::string_view cmdline = {});
	// Is the process with this key still running (as of the last refresh)?
	bool alive(const aurum_proc_key &key) const;

	const Service *find(ServiceId id) const;
	std::vector<const Service *> services() const;
	std::vector<pid_t> pids_of(ServiceId id) const;
	metrics::Labels labels(ServiceId id) const;
	std::uint64_t overflowed_processes() const { return overflowed_; }
	// Set by refresh() for ids dropped by TTL; collectors purge them.
	bool exists(ServiceId id) const { return services_.count(id) != 0; }

	// pid/start matching, exposed for tests.
	static bool same_start(std::uint64_t start_ns, std::uint64_t start_ticks);

private:
	struct Proc {
		std::uint64_t start_ticks = 0;
		unsigned long ino = 0; // of /proc/<pid>: a change may mean the pid was reused
		ServiceId service = 0;
		std::uint32_t exec_gen = 0;
		bool by_rule = false;
		Clock::time_point first_seen{};
	};
	ServiceId intern(const Identity &id, Clock::time_point now);
	ServiceId resolve_pid(pid_t pid, Proc &p, Clock::time_point now);

	ProcFs procfs_;
	Resolver resolver_;
	Options opts_;
	std::unordered_map<pid_t, Proc> procs_;
	std::map<ServiceId, Service> services_;
	std::map<std::string, ServiceId> by_key_; // name \x1f ns \x1f pod -> id
	std::map<std::pair<pid_t, std::uint64_t>, ServiceId> gone_; // processes seen only by the kernel
	ServiceId next_id_ = 1;
	std::uint64_t overflowed_ = 0;
	Clock::time_point last_refresh_{};
};

} // namespace aurum::identity
