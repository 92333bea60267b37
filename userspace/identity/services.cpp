// SPDX-License-Identifier: Apache-2.0
#include "identity/services.h"

#include <unordered_set>

namespace aurum::identity {

namespace {
constexpr const char *kOverflowName = "_other";
// A process that is not named by a rule yet is looked at again for this long: a server binds its
// listening port after it starts, and a port rule can only match then.
constexpr auto kPortRuleGrace = std::chrono::seconds(120);
} // namespace

ServiceDirectory::ServiceDirectory(ProcFs procfs, Resolver resolver, Options opts)
	: procfs_(std::move(procfs)), resolver_(std::move(resolver)), opts_(opts)
{
}

bool ServiceDirectory::same_start(std::uint64_t start_ns, std::uint64_t start_ticks)
{
	// /proc reports nsec_to_clock_t(start_boottime): a truncating division.
	const std::uint64_t ns_per_tick = 1000000000ULL / static_cast<std::uint64_t>(ProcFs::clock_ticks());
	return start_ns / ns_per_tick == start_ticks;
}

ServiceId ServiceDirectory::intern(const Identity &id, Clock::time_point now)
{
	std::string key = id.name + '\x1f' + id.ns + '\x1f' + id.pod;
	if (auto it = by_key_.find(key); it != by_key_.end())
		return it->second;
	size_t real = services_.size();
	auto other_key = std::string(kOverflowName) + "\x1f\x1f";
	bool have_other = by_key_.count(other_key) != 0;
	if (have_other)
		real--;
	if (real >= opts_.max_services) {
		overflowed_++;
		if (have_other)
			return by_key_[other_key];
		Service s{next_id_++, Identity{kOverflowName, "", "", "overflow", false}, 0, now};
		by_key_[other_key] = s.id;
		services_[s.id] = s;
		return s.id;
	}
	Service s{next_id_++, id, 0, now};
	by_key_[key] = s.id;
	services_[s.id] = s;
	return s.id;
}

ServiceId ServiceDirectory::resolve_pid(pid_t pid, Proc &p, Clock::time_point now)
{
	auto info = procfs_.info(pid);
	Identity id = info ? resolver_.resolve(*info) : resolver_.resolve_comm("");
	p.by_rule = id.by_rule;
	p.service = intern(id, now);
	return p.service;
}

void ServiceDirectory::refresh(Clock::time_point now)
{
	std::unordered_set<pid_t> seen;
	for (const auto &[pid, ino] : procfs_.entries()) {
		auto it = procs_.find(pid);
		if (it != procs_.end() && it->second.ino != ino) {
			// Reused pid, or just a recycled dentry: the start time tells.
			auto st = procfs_.stat(pid);
			if (st && st->start_ticks == it->second.start_ticks)
				it->second.ino = ino;
			else
				procs_.erase(it), it = procs_.end();
		}
		if (it != procs_.end()) {
			seen.insert(pid);
			Proc &p = it->second;
			if (!p.by_rule && resolver_.rules_use_ports() && now - p.first_seen < kPortRuleGrace)
				resolve_pid(pid, p, now);
			continue;
		}
		auto st = procfs_.stat(pid);
		if (!st || st->kthread || st->state == 'Z')
			continue;
		seen.insert(pid);
		Proc p;
		p.start_ticks = st->start_ticks;
		p.ino = ino;
		p.first_seen = now;
		resolve_pid(pid, p, now);
		procs_.emplace(pid, p);
	}
	for (auto it = procs_.begin(); it != procs_.end();) {
		if (!seen.count(it->first))
			it = procs_.erase(it);
		else
			++it;
	}
	for (auto &[id, s] : services_)
		s.live_processes = 0;
	for (auto &[pid, p] : procs_) {
		auto s = services_.find(p.service);
		if (s != services_.end()) {
			s->second.live_processes++;
			s->second.last_alive = now;
		}
	}
	for (auto it = services_.begin(); it != services_.end();) {
		if (it->second.live_processes == 0 && now - it->second.last_alive > opts_.ttl) {
			const auto &i = it->second.identity;
			by_key_.erase(i.name + '\x1f' + i.ns + '\x1f' + i.pod);
			it = services_.erase(it);
		} else {
			++it;
		}
	}
	for (auto it = gone_.begin(); it != gone_.end();) {
		if (!services_.count(it->second))
			it = gone_.erase(it);
		else
			++it;
	}
	last_refresh_ = now;
}

ServiceId ServiceDirectory::service_of(const aurum_proc_key &key, const char *comm, std::uint32_t exec_gen,
				       pid_t ppid, std::string_view cmdline)
{
	auto now = Clock::now();
	pid_t pid = static_cast<pid_t>(key.tgid);
	auto it = procs_.find(pid);
	if (it != procs_.end() && same_start(key.start_ns, it->second.start_ticks)) {
		Proc &p = it->second;
		if (exec_gen > p.exec_gen || !services_.count(p.service)) {
			p.exec_gen = exec_gen;
			resolve_pid(pid, p, now);
		}
		return p.service;
	}
	// Not in the table: started since the last refresh, or already gone. A zombie is gone too
	// (refresh() skips it): its /proc entry keeps stat but no cmdline, exe or environ, so that
	// resolving it there names it by its comm alone, not by the rule its command line matched.
	auto st = procfs_.stat(pid);
	if (st && same_start(key.start_ns, st->start_ticks) && !st->kthread && st->state != 'Z') {
		Proc p;
		p.start_ticks = st->start_ticks;
		p.first_seen = now;
		p.exec_gen = exec_gen;
		resolve_pid(pid, p, now);
		auto s = services_.find(p.service);
		if (s != services_.end()) {
			s->second.live_processes++;
			s->second.last_alive = now;
		}
		procs_[pid] = p;
		return p.service;
	}
	auto gk = std::make_pair(pid, key.start_ns);
	if (auto g = gone_.find(gk); g != gone_.end() && services_.count(g->second))
		return g->second;
	if ((!comm || !*comm) && st && st->state == 'Z' && same_start(key.start_ns, st->start_ticks))
		comm = st->comm.c_str(); // a zombie's stat still has it
	ServiceId id = 0;
	if (auto parent = procs_.find(ppid); ppid > 0 && exec_gen == 0 && parent != procs_.end() &&
					      services_.count(parent->second.service))
		id = parent->second.service;
	else if (!cmdline.empty()) {
		ProcInfo pi;
		pi.stat.pid = pid;
		pi.stat.comm = comm ? comm : "";
		size_t start = 0;
		while (start < cmdline.size()) {
			size_t end = cmdline.find('\0', start);
			if (end == std::string_view::npos)
				end = cmdline.size();
			pi.argv.emplace_back(cmdline.substr(start, end - start));
			start = end + 1;
		}
		// The executable's path is not kept: argv[0] stands for it (and comm for rules on exe).
		if (!pi.argv.empty()) {
			auto slash = pi.argv[0].rfind('/');
			pi.exe = slash == std::string::npos ? pi.argv[0] : pi.argv[0].substr(slash + 1);
		}
		id = intern(resolver_.resolve(pi), now);
	} else
		id = intern(resolver_.resolve_comm(comm ? std::string(comm) : ""), now);
	if (auto s = services_.find(id); s != services_.end())
		s->second.last_alive = now;
	gone_[gk] = id;
	return id;
}

bool ServiceDirectory::alive(const aurum_proc_key &key) const
{
	auto it = procs_.find(static_cast<pid_t>(key.tgid));
	return it != procs_.end() && same_start(key.start_ns, it->second.start_ticks);
}

const Service *ServiceDirectory::find(ServiceId id) const
{
	auto it = services_.find(id);
	return it == services_.end() ? nullptr : &it->second;
}

std::vector<const Service *> ServiceDirectory::services() const
{
	std::vector<const Service *> out;
	for (const auto &[id, s] : services_)
		out.push_back(&s);
	return out;
}

std::vector<pid_t> ServiceDirectory::pids_of(ServiceId id) const
{
	std::vector<pid_t> out;
	for (const auto &[pid, p] : procs_)
		if (p.service == id)
			out.push_back(pid);
	return out;
}

metrics::Labels ServiceDirectory::labels(ServiceId id) const
{
	metrics::Labels l;
	auto it = services_.find(id);
	if (it == services_.end())
		return l;
	const auto &i = it->second.identity;
	l.push_back({"service_name", i.name});
	if (!i.ns.empty())
		l.push_back({"service_namespace", i.ns});
	if (!i.pod.empty())
		l.push_back({"k8s_pod_name", i.pod});
	return l;
}

} // namespace aurum::identity

