// SPDX-License-Identifier: Apache-2.0
// Shared by test_pgsql.cpp and test_amqp.cpp: shell commands with their output, scratch
// directories, tiny JSON reads, and waiting for the agent's numbers to settle.
#pragma once
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "../harness.h"

namespace aurum::test::wire {

// Runs `cmd` under /bin/sh; returns stdout and stderr together, sets *status to the exit code.
inline std::string sh(const std::string &cmd, int *status = nullptr)
{
	std::string out;
	FILE *f = ::popen((cmd + " 2>&1").c_str(), "r");
	if (!f) {
		if (status)
			*status = -1;
		return out;
	}
	char buf[4096];
	size_t n;
	while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
		out.append(buf, n);
	int st = ::pclose(f);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	return out;
}

inline std::string slurp(const std::string &path)
{
	std::ifstream in(path);
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

// An integer field of a flat JSON object, or -1.
inline long json_int(const std::string &json, const std::string &key)
{
	std::smatch m;
	if (std::regex_search(json, m, std::regex("\"" + key + "\":\\s*(\\d+)")))
		return std::stol(m[1]);
	return -1;
}

// A directory under /tmp, removed with everything in it when this goes out of scope.
class ScratchDir {
public:
	explicit ScratchDir(const std::string &prefix)
	{
		std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
		if (!::mkdtemp(tmpl.data()))
			throw std::runtime_error("mkdtemp " + tmpl);
		path_ = tmpl;
	}
	~ScratchDir() { sh("rm -rf '" + path_ + "'"); }
	ScratchDir(const ScratchDir &) = delete;
	ScratchDir &operator=(const ScratchDir &) = delete;
	const std::string &path() const { return path_; }

private:
	std::string path_;
};

// The newest match of a glob, "" when none (e.g. "/usr/lib/postgresql/*/bin").
inline std::string newest_glob(const std::string &pattern)
{
	glob_t g{};
	std::string out;
	if (::glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0)
		out = g.gl_pathv[g.gl_pathc - 1]; // glob sorts; one digit of major version is enough here
	::globfree(&g);
	return out;
}

// A cgroup v2 directory of our own, so that a config rule can name exactly the processes a test
// started (other PostgreSQL servers may run on the same host). Removed when empty at the end.
class OwnCgroup {
public:
	explicit OwnCgroup(const std::string &prefix)
	{
		std::istringstream mounts(slurp("/proc/self/mounts"));
		std::string dev, mnt, type, rest;
		while (mounts >> dev >> mnt >> type && std::getline(mounts, rest))
			if (type == "cgroup2")
				root_ = mnt;
		if (root_.empty())
			throw std::runtime_error("no cgroup2 mount");
		name_ = prefix + "-" + std::to_string(::getpid());
		path_ = root_ + "/" + name_;
		sh("mkdir -p '" + path_ + "'");
	}
	~OwnCgroup()
	{
		for (int i = 0; i < 50 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; i++)
			std::this_thread::sleep_for(std::chrono::milliseconds(100));
	}
	OwnCgroup(const OwnCgroup &) = delete;
	OwnCgroup &operator=(const OwnCgroup &) = delete;
	const std::string &name() const { return name_; }
	// A shell prefix that moves the shell into the cgroup before it runs the rest.
	std::string enter() const { return "echo $$ > '" + path_ + "/cgroup.procs' && exec "; }

private:
	std::string root_, name_, path_;
};

inline std::string script(const std::string &name)
{
	return std::string(AURUM_SOURCE_DIR) + "/tests/integration/wire/" + name;
}

// Scrapes until `done` holds for the samples (returned) or `timeout` passes (last scrape returned).
inline std::vector<Sample> scrape_until(const Agent &agent, const std::function<bool(const std::vector<Sample> &)> &done,
					std::chrono::milliseconds timeout)
{
	auto deadline = std::chrono::steady_clock::now() + timeout;
	for (;;) {
		auto s = agent.samples();
		if (done(s) || std::chrono::steady_clock::now() > deadline)
			return s;
		std::this_thread::sleep_for(std::chrono::milliseconds(200));
	}
}

} // namespace aurum::test::wire
