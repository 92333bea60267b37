// SPDX-License-Identifier: Apache-2.0
#include "collectors/memory.h"

#include <map>
#include <set>
#include <sstream>

#include "metrics/family.h"

namespace aurum {

CgroupMounts find_cgroup_mounts(const std::string &mountinfo)
{
	CgroupMounts m;
	std::istringstream in(mountinfo);
	std::string line;
	while (std::getline(in, line)) {
		auto dash = line.find(" - ");
		if (dash == std::string::npos)
			continue;
		std::istringstream head(line.substr(0, dash)), tail(line.substr(dash + 3));
		std::string id, parent, devno, root, mnt, type, source, opts;
		head >> id >> parent >> devno >> root >> mnt;
		tail >> type >> source >> opts;
		if (type == "cgroup2" && m.v2.empty())
			m.v2 = mnt;
		if (type == "cgroup" && m.v1_memory.empty()) {
			std::istringstream o(opts);
			std::string opt;
			while (std::getline(o, opt, ','))
				if (opt == "memory")
					m.v1_memory = mnt;
		}
	}
	return m;
}

namespace {

std::optional<std::uint64_t> read_limit(const std::string &file)
{
	std::string s;
	if (!identity::read_file(file, s))
		return std::nullopt;
	if (s.rfind("max", 0) == 0)
		return std::nullopt;
	std::uint64_t v = std::strtoull(s.c_str(), nullptr, 10);
	// v1 says "no limit" with PAGE_COUNTER_MAX pages rounded down to a page: about 2^63.
	if (v == 0 || v >= (1ULL << 62))
		return std::nullopt;
	return v;
}

std::optional<std::uint64_t> min_on_path(const std::string &mount, std::string path, const char *file)
{
	std::optional<std::uint64_t> best;
	for (;;) {
		auto v = read_limit(mount + path + (path.empty() || path.back() != '/' ? "/" : "") + file);
		if (v && (!best || *v < *best))
			best = v;
		if (path.empty() || path == "/")
			break;
		auto slash = path.rfind('/');
		path = slash == 0 ? "/" : path.substr(0, slash);
	}
	return best;
}

} // namespace

std::optional<std::uint64_t> cgroup_memory_limit(const CgroupMounts &m, const std::string &content)
{
	std::istringstream in(content);
	std::string line;
	std::string v1, v2;
	bool have_v2 = false;
	while (std::getline(in, line)) {
		auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
		if (c1 == std::string::npos || c2 == std::string::npos)
			continue;
		std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
		if (line.compare(0, c1, "0") == 0 && ctrls.empty()) {
			v2 = path;
			have_v2 = true;
		}
		std::istringstream cs(ctrls);
		std::string c;
		while (std::getline(cs, c, ','))
			if (c == "memory")
				v1 = path;
	}
	// Hybrid hosts keep the memory controller on v1: its limit is the one the kernel enforces.
	if (!v1.empty() && !m.v1_memory.empty())
		return min_on_path(m.v1_memory, v1, "memory.limit_in_bytes");
	if (have_v2 && !m.v2.empty())
		return min_on_path(m.v2, v2, "memory.max");
	return std::nullopt;
}

MemoryCollector::MemoryCollector(identity::ProcFs procfs, CgroupMounts mounts)
	: procfs_(std::move(procfs)), mounts_(std::move(mounts))
{
}

void MemoryCollector::collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out)
{
	auto usage = metrics::family("process_memory_usage_bytes",
				     "Resident memory of the service's processes: anonymous and file pages summed, "
				     "shared memory counted once (proportional share).",
				     prometheus::MetricType::Gauge);
	auto limit = metrics::family("aurum_memory_limit_bytes",
				     "Cgroup memory limit of the service (sum over its distinct cgroups); absent "
				     "when any of them has none.",
				     prometheus::MetricType::Gauge);
	for (const auto *svc : dir.services()) {
		auto pids = dir.pids_of(svc->id);
		if (pids.empty())
			continue;
		std::uint64_t total = 0;
		bool any = false;
		std::map<std::string, std::optional<std::uint64_t>> cgroups;
		for (pid_t pid : pids) {
			auto m = procfs_.memory(pid);
			if (!m)
				continue;
			any = true;
			total += m->rss_anon + m->rss_file;
			if (m->rss_shmem) {
				// Pss_Shmem divides each shared page among the processes mapping it, so the
				// service's sum counts a page once when all its users are in the service.
				auto pss = procfs_.pss_shmem(pid);
				total += pss ? *pss : m->rss_shmem;
			}
			std::string cg;
			if (identity::read_file(procfs_.root() + "/" + std::to_string(pid) + "/cgroup", cg) && !cgroups.count(cg))
				cgroups[cg] = cgroup_memory_limit(mounts_, cg);
		}
		if (!any)
			continue;
		auto labels = dir.labels(svc->id);
		metrics::add_gauge(usage, labels, static_cast<double>(total));
		std::uint64_t lim = 0;
		bool all_limited = !cgroups.empty();
		for (const auto &[cg, l] : cgroups) {
			if (!l)
				all_limited = false;
			else
				lim += *l;
		}
		if (all_limited)
			metrics::add_gauge(limit, labels, static_cast<double>(lim));
	}
	out.push_back(std::move(usage));
	out.push_back(std::move(limit));
}

} // namespace aurum
