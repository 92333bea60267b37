// SPDX-License-Identifier: Apache-2.0
#include "identity/cgroup.h"

#include <algorithm>
#include <vector>

namespace aurum::identity {
namespace {

bool is_hex(std::string_view s)
{
	return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
	});
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p)
{
	return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// "pod1b2c..." or "kubepods-burstable-pod1b2c_..._.slice" -> UID with dashes.
std::string pod_uid_of(std::string_view comp)
{
	if (ends_with(comp, ".slice"))
		comp.remove_suffix(6);
	auto pos = comp.rfind("pod");
	if (pos == std::string_view::npos)
		return {};
	if (pos != 0 && comp[pos - 1] != '-')
		return {};
	std::string uid(comp.substr(pos + 3));
	std::replace(uid.begin(), uid.end(), '_', '-');
	// A UID is 36 characters of hex and dashes (static pods use a 32-hex config hash).
	if (uid.size() != 36 && uid.size() != 32)
		return {};
	for (char c : uid)
		if (!(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return {};
	return uid;
}

struct ScopePrefix {
	std::string_view prefix;
	std::string_view runtime;
};
constexpr ScopePrefix kScopes[] = {
	{"docker-", "docker"},
	{"cri-containerd-", "containerd"},
	{"crio-", "cri-o"},
	{"libpod-", "podman"},
	{"containerd-", "containerd"},
};

} // namespace

CgroupInfo parse_cgroup_path(std::string_view path)
{
	CgroupInfo info;
	info.path = std::string(path);
	std::vector<std::string_view> comps;
	size_t start = 0;
	while (start <= path.size()) {
		size_t end = path.find('/', start);
		if (end == std::string_view::npos)
			end = path.size();
		if (end > start)
			comps.push_back(path.substr(start, end - start));
		start = end + 1;
	}
	bool under_kubepods = false, under_docker = false, under_system_slice = false;
	for (auto c : comps) {
		if (starts_with(c, "kubepods"))
			under_kubepods = true;
		if (c == "docker")
			under_docker = true;
		if (c == "system.slice")
			under_system_slice = true;
		if (under_kubepods)
			if (auto uid = pod_uid_of(c); !uid.empty())
				info.pod_uid = uid;
		bool scope = false;
		for (const auto &s : kScopes) {
			if (starts_with(c, s.prefix) && ends_with(c, ".scope")) {
				auto id = c.substr(s.prefix.size(), c.size() - s.prefix.size() - 6);
				// cri-o's monitor process lives in crio-conmon-<id>.scope: not the container.
				if (is_hex(id) && id.size() >= 12) {
					info.runtime = std::string(s.runtime);
					info.container_id = std::string(id);
					scope = true;
				}
				break;
			}
		}
		if (scope)
			continue;
		if (is_hex(c) && c.size() == 64) {
			info.container_id = std::string(c);
			info.runtime = under_docker ? "docker" : (under_kubepods ? "containerd" : "");
			continue;
		}
		if (under_system_slice && ends_with(c, ".service") && c.size() > 8)
			info.systemd_unit = std::string(c.substr(0, c.size() - 8));
	}
	// A container's own processes are not the unit's (docker-<id>.scope is not a .service).
	if (!info.container_id.empty())
		info.systemd_unit.clear();
	return info;
}

CgroupInfo parse_proc_cgroup(std::string_view content)
{
	CgroupInfo v2, best;
	std::vector<std::string> all_paths;
	std::string unit; // hybrid hosts name the unit in the v1 name=systemd line too
	bool have_v2 = false, have_best = false;
	size_t start = 0;
	while (start < content.size()) {
		size_t end = content.find('\n', start);
		if (end == std::string_view::npos)
			end = content.size();
		auto line = content.substr(start, end - start);
		start = end + 1;
		// hierarchy-id:controllers:path; the path may itself contain ':'.
		auto c1 = line.find(':');
		if (c1 == std::string_view::npos)
			continue;
		auto c2 = line.find(':', c1 + 1);
		if (c2 == std::string_view::npos)
			continue;
		auto hier = line.substr(0, c1);
		auto path = line.substr(c2 + 1);
		auto info = parse_cgroup_path(path);
		all_paths.emplace_back(path);
		if (unit.empty())
			unit = info.systemd_unit;
		if (hier == "0" && line.substr(c1 + 1, c2 - c1 - 1).empty()) {
			v2 = info;
			have_v2 = true;
		}
		if (!have_best && (!info.container_id.empty() || !info.pod_uid.empty())) {
			best = info;
			have_best = true;
		}
	}
	CgroupInfo out = v2;
	if (have_best && (!have_v2 || (v2.container_id.empty() && v2.pod_uid.empty()))) {
		out = best;
		if (have_v2)
			out.path = v2.path; // the v2 path stays the one cgroup rules name first
	}
	if (out.systemd_unit.empty() && out.container_id.empty() && out.pod_uid.empty())
		out.systemd_unit = unit;
	out.all_paths = std::move(all_paths);
	return out;
}

} // namespace aurum::identity
