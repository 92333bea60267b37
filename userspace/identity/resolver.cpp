// SPDX-License-Identifier: Apache-2.0
#include "identity/resolver.h"

#include <dirent.h>

#include <algorithm>
#include <cstring>

namespace aurum::identity {
namespace {

std::string basename_of(const std::string &p)
{
	auto s = p.rfind('/');
	return s == std::string::npos ? p : p.substr(s + 1);
}

std::string strip_ext(const std::string &f)
{
	auto dot = f.rfind('.');
	return (dot == std::string::npos || dot == 0) ? f : f.substr(0, dot);
}

bool is_interpreter(const std::string &exe)
{
	static const char *names[] = {"python", "node", "nodejs", "java", "ruby", "php", "perl", "deno", "bun"};
	for (const char *n : names) {
		size_t len = std::strlen(n);
		if (exe.compare(0, len, n) != 0)
			continue;
		// python3, python3.11, php8.2, perl5.36: a version may follow.
		bool version_only = std::all_of(exe.begin() + static_cast<long>(len), exe.end(),
						[](char c) { return (c >= '0' && c <= '9') || c == '.'; });
		if (version_only)
			return true;
	}
	return false;
}

// Options of interpreters that take a value as the next argument.
bool option_takes_value(const std::string &exe, const std::string &opt)
{
	if (exe.rfind("java", 0) == 0)
		return opt == "-cp" || opt == "-classpath" || opt == "--class-path" || opt == "-p" ||
		       opt == "--module-path";
	if (exe.rfind("python", 0) == 0)
		return opt == "-W" || opt == "-X" || opt == "-Q";
	if (exe.rfind("node", 0) == 0)
		return opt == "-r" || opt == "--require" || opt == "--loader" || opt == "--import";
	if (exe.rfind("ruby", 0) == 0)
		return opt == "-I" || opt == "-r";
	return false;
}

std::string script_name(const std::string &path)
{
	static const char *generic[] = {"index", "main", "app", "server", "__main__", "run", "start"};
	std::string base = strip_ext(basename_of(path));
	for (const char *g : generic) {
		if (base == g) {
			auto slash = path.rfind('/');
			if (slash != std::string::npos && slash > 0) {
				std::string parent = basename_of(path.substr(0, slash));
				if (!parent.empty() && parent != "." && parent != "src" && parent != "bin")
					return parent;
			}
		}
	}
	return base;
}

} // namespace

std::string program_name(const std::string &exe_in, const std::vector<std::string> &argv)
{
	std::string exe = exe_in.empty() && !argv.empty() ? basename_of(argv[0]) : exe_in;
	if (!is_interpreter(exe))
		return exe;
	for (size_t i = 1; i < argv.size(); i++) {
		const std::string &a = argv[i];
		if (a.empty())
			continue;
		if (a == "-m" && i + 1 < argv.size()) // python -m package.module
			return argv[i + 1];
		if (a == "-jar" && i + 1 < argv.size())
			return strip_ext(basename_of(argv[i + 1]));
		if (a == "-c" || a == "-e")              // inline code: nothing better than the interpreter
			return exe;
		if (a[0] == '-') {
			if (option_takes_value(exe, a))
				i++;
			continue;
		}
		if (exe.rfind("java", 0) == 0) {         // a main class: com.shop.Main -> Main
			auto dot = a.rfind('.');
			return dot == std::string::npos ? a : a.substr(dot + 1);
		}
		return script_name(a);
	}
	return exe;
}

std::optional<KubeNames> KubeDirectory::lookup(const std::string &pod_uid,
					       const std::string &container_id) const
{
	if (!container_id.empty()) {
		if (DIR *d = ::opendir((root_ + "/containers").c_str())) {
			std::optional<KubeNames> found;
			std::string suffix = "-" + container_id + ".log";
			while (auto *e = ::readdir(d)) {
				std::string n = e->d_name;
				if (n.size() <= suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix))
					continue;
				std::string stem = n.substr(0, n.size() - suffix.size());
				// <pod>_<namespace>_<container>: none of the three may contain '_'.
				auto a = stem.find('_');
				auto b = stem.find('_', a == std::string::npos ? a : a + 1);
				if (a == std::string::npos || b == std::string::npos)
					continue;
				found = KubeNames{stem.substr(a + 1, b - a - 1), stem.substr(0, a), stem.substr(b + 1)};
				break;
			}
			::closedir(d);
			if (found)
				return found;
		}
	}
	if (pod_uid.empty())
		return std::nullopt;
	DIR *d = ::opendir((root_ + "/pods").c_str());
	if (!d)
		return std::nullopt;
	std::optional<KubeNames> found;
	std::string suffix = "_" + pod_uid;
	while (auto *e = ::readdir(d)) {
		std::string n = e->d_name;
		if (n.size() <= suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix))
			continue;
		std::string stem = n.substr(0, n.size() - suffix.size());
		auto a = stem.find('_');
		if (a == std::string::npos)
			continue;
		KubeNames k{stem.substr(0, a), stem.substr(a + 1), ""};
		// One container folder: that is the container. Several: the id cannot tell which
		// without /var/log/containers, so the pod is named and the container left empty.
		std::vector<std::string> containers;
		if (DIR *cd = ::opendir((root_ + "/pods/" + n).c_str())) {
			while (auto *ce = ::readdir(cd))
				if (ce->d_name[0] != '.' && ce->d_type == DT_DIR)
					containers.emplace_back(ce->d_name);
			::closedir(cd);
		}
		if (containers.size() == 1)
			k.container = containers[0];
		found = k;
		break;
	}
	::closedir(d);
	return found;
}

Resolver::Resolver(std::vector<config::ServiceRule> rules, KubeDirectory kube, PortLookup ports)
	: rules_(std::move(rules)), kube_(std::move(kube)), ports_(std::move(ports))
{
	uses_ports_ = std::any_of(rules_.begin(), rules_.end(), [](const auto &r) { return r.port.has_value(); });
}

bool Resolver::matches(const config::ServiceRule &r, const ProcInfo &p, std::set<std::uint16_t> *ports,
		       bool *ports_loaded) const
{
	if (r.exe && *r.exe != p.exe && *r.exe != p.stat.comm)
		return false;
	if (r.cmdline_re) {
		std::string joined;
		for (const auto &a : p.argv)
			joined += (joined.empty() ? "" : " ") + a;
		if (!std::regex_search(joined, *r.cmdline_re))
			return false;
	}
	if (r.cgroup_re) {
		bool any = std::regex_search(p.cgroup.path, *r.cgroup_re);
		for (const auto &path : p.cgroup.all_paths)
			any = any || std::regex_search(path, *r.cgroup_re);
		if (!any)
			return false;
	}
	if (r.port) {
		if (!*ports_loaded) {
			*ports = ports_ ? ports_(p.stat.pid) : std::set<std::uint16_t>{};
			*ports_loaded = true;
		}
		if (!ports->count(*r.port))
			return false;
	}
	return true;
}

Identity Resolver::resolve(const ProcInfo &p) const
{
	std::set<std::uint16_t> ports;
	bool ports_loaded = false;
	for (const auto &r : rules_)
		if (matches(r, p, &ports, &ports_loaded))
			return Identity{r.name, "", "", "rule", true};
	if (!p.otel_service_name.empty())
		return Identity{p.otel_service_name, "", "", "otel", false};
	if (!p.cgroup.pod_uid.empty() || (!p.cgroup.container_id.empty() && !p.cgroup.runtime.empty())) {
		if (auto k = kube_.lookup(p.cgroup.pod_uid, p.cgroup.container_id); k && !k->container.empty())
			return Identity{k->container, k->ns, k->pod, "kubernetes", false};
	}
	if (!p.cgroup.systemd_unit.empty())
		return Identity{p.cgroup.systemd_unit, "", "", "systemd", false};
	std::string name = program_name(p.exe, p.argv);
	if (name.empty())
		return resolve_comm(p.stat.comm);
	return Identity{name, "", "", "exe", false};
}

Identity Resolver::resolve_comm(const std::string &comm) const
{
	// Rules naming an executable still apply: comm is the executable's name cut at 15 chars.
	for (const auto &r : rules_)
		if (r.exe && !r.cmdline_re && !r.port && !r.cgroup_re && r.exe->substr(0, 15) == comm)
			return Identity{r.name, "", "", "rule", true};
	return Identity{comm.empty() ? "unknown" : comm, "", "", "comm", false};
}

} // namespace aurum::identity
