// SPDX-License-Identifier: Apache-2.0
#include "identity/procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <string_view>

#include "core/fd.h"

namespace aurum::identity {

bool read_file(const std::string &path, std::string &out, size_t limit)
{
	UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd)
		return false;
	out.clear();
	char buf[8192];
	for (;;) {
		ssize_t n = ::read(fd.get(), buf, sizeof buf);
		if (n < 0)
			return false;
		if (n == 0)
			break;
		out.append(buf, static_cast<size_t>(n));
		if (out.size() >= limit)
			break;
	}
	return true;
}

std::optional<ProcStat> parse_stat(const std::string &s)
{
	// "pid (comm) state ppid ..." where comm may contain ") (": the last ')' ends it.
	auto open = s.find('(');
	auto close = s.rfind(')');
	if (open == std::string::npos || close == std::string::npos || close < open)
		return std::nullopt;
	ProcStat st;
	st.pid = static_cast<pid_t>(std::strtol(s.c_str(), nullptr, 10));
	st.comm = s.substr(open + 1, close - open - 1);
	std::istringstream rest(s.substr(close + 1));
	std::vector<std::string> f; // f[0] is field 3 (state)
	std::string tok;
	while (rest >> tok && f.size() < 20)
		f.push_back(tok);
	if (f.size() < 20)
		return std::nullopt;
	st.state = f[0][0];
	st.ppid = static_cast<pid_t>(std::strtol(f[1].c_str(), nullptr, 10));
	unsigned long flags = std::strtoul(f[6].c_str(), nullptr, 10);
	st.kthread = (flags & 0x00200000) != 0; // PF_KTHREAD
	st.start_ticks = std::strtoull(f[19].c_str(), nullptr, 10);
	return st;
}

MemoryUsage parse_status_memory(const std::string &content)
{
	MemoryUsage m;
	std::istringstream in(content);
	std::string line;
	auto kb = [](const std::string &l) {
		return std::strtoull(l.c_str() + l.find(':') + 1, nullptr, 10) * 1024;
	};
	while (std::getline(in, line)) {
		if (line.rfind("RssAnon:", 0) == 0) m.rss_anon = kb(line);
		else if (line.rfind("RssFile:", 0) == 0) m.rss_file = kb(line);
		else if (line.rfind("RssShmem:", 0) == 0) m.rss_shmem = kb(line);
		else if (line.rfind("VmRSS:", 0) == 0) m.vm_rss = kb(line);
	}
	return m;
}

std::vector<std::pair<pid_t, unsigned long>> ProcFs::entries() const
{
	std::vector<std::pair<pid_t, unsigned long>> out;
	DIR *d = ::opendir(root_.c_str());
	if (!d)
		return out;
	while (auto *e = ::readdir(d)) {
		char *end = nullptr;
		long v = std::strtol(e->d_name, &end, 10);
		if (end && *end == '\0' && v > 0)
			out.emplace_back(static_cast<pid_t>(v), static_cast<unsigned long>(e->d_ino));
	}
	::closedir(d);
	return out;
}

std::vector<pid_t> ProcFs::pids() const
{
	std::vector<pid_t> out;
	for (const auto &[pid, ino] : entries())
		out.push_back(pid);
	return out;
}

std::optional<ProcStat> ProcFs::stat(pid_t pid) const
{
	std::string s;
	if (!read_file(root_ + "/" + std::to_string(pid) + "/stat", s))
		return std::nullopt;
	return parse_stat(s);
}

std::optional<ProcInfo> ProcFs::info(pid_t pid) const
{
	auto st = stat(pid);
	if (!st)
		return std::nullopt;
	ProcInfo pi;
	pi.stat = *st;
	std::string dir = root_ + "/" + std::to_string(pid);
	char buf[4096];
	ssize_t n = ::readlink((dir + "/exe").c_str(), buf, sizeof buf - 1);
	if (n > 0) {
		std::string exe(buf, static_cast<size_t>(n));
		if (auto del = exe.rfind(" (deleted)"); del != std::string::npos && del + 10 == exe.size())
			exe.resize(del);
		auto slash = exe.rfind('/');
		pi.exe = slash == std::string::npos ? exe : exe.substr(slash + 1);
	}
	std::string s;
	if (read_file(dir + "/cmdline", s, 64 * 1024)) {
		size_t start = 0;
		while (start < s.size()) {
			size_t end = s.find('\0', start);
			if (end == std::string::npos)
				end = s.size();
			pi.argv.push_back(s.substr(start, end - start));
			start = end + 1;
		}
	}
	if (read_file(dir + "/environ", s, 256 * 1024)) {
		static const std::string key = "OTEL_SERVICE_NAME=";
		size_t start = 0;
		while (start < s.size()) {
			size_t end = s.find('\0', start);
			if (end == std::string::npos)
				end = s.size();
			if (s.compare(start, key.size(), key) == 0)
				pi.otel_service_name = s.substr(start + key.size(), end - start - key.size());
			start = end + 1;
		}
	}
	if (read_file(dir + "/cgroup", s))
		pi.cgroup = parse_proc_cgroup(s);
	return pi;
}

std::optional<MemoryUsage> ProcFs::memory(pid_t pid) const
{
	std::string s;
	if (!read_file(root_ + "/" + std::to_string(pid) + "/status", s))
		return std::nullopt;
	return parse_status_memory(s);
}

std::optional<std::uint64_t> ProcFs::pss_shmem(pid_t pid) const
{
	std::string s;
	if (!read_file(root_ + "/" + std::to_string(pid) + "/smaps_rollup", s))
		return std::nullopt;
	auto pos = s.find("\nPss_Shmem:");
	if (pos == std::string::npos)
		return std::nullopt;
	return std::strtoull(s.c_str() + pos + 11, nullptr, 10) * 1024;
}

namespace {
// inode -> port of LISTEN (state 0A) sockets in /proc/<pid>/net/tcp{,6}.
void listen_inodes(const std::string &path, std::map<unsigned long, std::uint16_t> &out)
{
	std::string s;
	if (!read_file(path, s, 16 << 20))
		return;
	// A table with every socket of the namespace (tens of thousands in TIME_WAIT on a busy
	// host): split each line in place and look at the state first.
	std::string_view rest(s);
	bool header = true;
	while (!rest.empty()) {
		auto nl = rest.find('\n');
		std::string_view line = rest.substr(0, nl);
		rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
		if (header) {
			header = false;
			continue;
		}
		// Fields: sl local rem st tx:rx tr:tm retrnsmt uid timeout inode
		std::string_view f[10];
		size_t n = 0, i = 0;
		while (n < 10 && i < line.size()) {
			while (i < line.size() && line[i] == ' ')
				i++;
			size_t b = i;
			while (i < line.size() && line[i] != ' ')
				i++;
			if (i > b)
				f[n++] = line.substr(b, i - b);
		}
		if (n < 10 || f[3] != "0A")
			continue;
		auto colon = f[1].rfind(':');
		if (colon == std::string_view::npos)
			continue;
		std::string port(f[1].substr(colon + 1)), inode(f[9]);
		out[std::strtoul(inode.c_str(), nullptr, 10)] = static_cast<std::uint16_t>(std::strtoul(port.c_str(), nullptr, 16));
	}
}
} // namespace

struct ProcFs::ListenCache {
	struct Entry {
		std::chrono::steady_clock::time_point read_at;
		std::map<unsigned long, std::uint16_t> inodes;
	};
	std::mutex mu;
	std::map<std::pair<dev_t, ino_t>, Entry> by_netns;
};

ProcFs::ProcFs(std::string root) : root_(std::move(root)), listen_cache_(std::make_shared<ListenCache>()) {}

std::map<unsigned long, std::uint16_t> ProcFs::listen_table(const std::string &dir) const
{
	// One housekeeping pass (the identity refresh, then the stream ports) reads each table once;
	// the next pass, a second or more later, sees listeners opened since.
	constexpr auto kTtl = std::chrono::milliseconds(250);
	std::map<unsigned long, std::uint16_t> inodes;
	struct stat ns {};
	if (::stat((dir + "/ns/net").c_str(), &ns) != 0) {
		listen_inodes(dir + "/net/tcp", inodes);
		listen_inodes(dir + "/net/tcp6", inodes);
		return inodes;
	}
	auto now = std::chrono::steady_clock::now();
	auto key = std::make_pair(ns.st_dev, ns.st_ino);
	{
		std::lock_guard lock(listen_cache_->mu);
		auto &m = listen_cache_->by_netns;
		for (auto it = m.begin(); it != m.end();)
			it = now - it->second.read_at > kTtl ? m.erase(it) : std::next(it);
		if (auto it = m.find(key); it != m.end())
			return it->second.inodes;
	}
	listen_inodes(dir + "/net/tcp", inodes);
	listen_inodes(dir + "/net/tcp6", inodes);
	std::lock_guard lock(listen_cache_->mu);
	listen_cache_->by_netns[key] = {now, inodes};
	return inodes;
}

std::set<std::uint16_t> ProcFs::listening_ports(pid_t pid) const
{
	std::set<std::uint16_t> ports;
	std::string dir = root_ + "/" + std::to_string(pid);
	auto inodes = listen_table(dir);
	if (inodes.empty())
		return ports;
	DIR *d = ::opendir((dir + "/fd").c_str());
	if (!d)
		return ports;
	char buf[64];
	while (auto *e = ::readdir(d)) {
		if (e->d_name[0] == '.')
			continue;
		ssize_t n = ::readlinkat(::dirfd(d), e->d_name, buf, sizeof buf - 1);
		if (n <= 8)
			continue;
		buf[n] = '\0';
		if (std::strncmp(buf, "socket:[", 8) != 0)
			continue;
		auto it = inodes.find(std::strtoul(buf + 8, nullptr, 10));
		if (it != inodes.end())
			ports.insert(it->second);
	}
	::closedir(d);
	return ports;
}

long ProcFs::clock_ticks()
{
	static const long hz = ::sysconf(_SC_CLK_TCK);
	return hz > 0 ? hz : 100;
}

} // namespace aurum::identity
