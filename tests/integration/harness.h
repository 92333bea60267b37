// SPDX-License-Identifier: Apache-2.0
// What every privileged test needs: run the real agent, scrape it, parse what it says, spawn
// workloads. Tests compare what the agent reports with a ground truth it did not produce.
#pragma once
#include <gtest/gtest.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace aurum::test {

// Under CI=true a privileged test must run: without root it fails instead of skipping.
inline bool in_ci()
{
	const char *ci = std::getenv("CI");
	return ci && std::string(ci) == "true";
}
#define AURUM_REQUIRE_ROOT()                                                                  \
	do {                                                                                      \
		if (::geteuid() != 0) {                                                               \
			if (::aurum::test::in_ci())                                                       \
				FAIL() << "CI=true and not root: privileged tests must run in CI";            \
			GTEST_SKIP() << "needs root (loads BPF programs); run scripts/test.sh as root";   \
		}                                                                                     \
	} while (0)

struct Sample {
	std::string name;
	std::map<std::string, std::string> labels;
	double value = 0;
};

// Prometheus text exposition format 0.0.4.
std::vector<Sample> parse_exposition(const std::string &text);
// Samples named `name` whose labels include every pair of `match`.
std::vector<Sample> select(const std::vector<Sample> &s, const std::string &name,
			   const std::map<std::string, std::string> &match = {});
// Sum of the selected samples' values (0 when none).
double sum(const std::vector<Sample> &s, const std::string &name, const std::map<std::string, std::string> &match = {});
// The value of the single selected sample, nullopt when none.
std::optional<double> value(const std::vector<Sample> &s, const std::string &name,
			    const std::map<std::string, std::string> &match = {});

int free_tcp_port();
// A plain HTTP/1.0 GET on 127.0.0.1; returns the body, sets *status (0 on connection failure).
std::string http_get(int port, const std::string &path, int *status = nullptr);

// A child process; killed (SIGKILL) and reaped when it goes out of scope.
class Process {
public:
	Process(const std::vector<std::string> &argv, const std::vector<std::string> &env = {},
		bool capture_stdout = false);
	~Process();
	Process(const Process &) = delete;
	Process &operator=(const Process &) = delete;
	pid_t pid() const { return pid_; }
	// Reads stdout until a line equal to `line` arrives (true) or the timeout passes.
	bool wait_line(const std::string &line, std::chrono::milliseconds timeout);
	// Sends a signal and waits for the exit; returns the exit status (or 128+signal).
	int stop(int sig, std::chrono::milliseconds timeout);
	bool running() const;

private:
	pid_t pid_ = -1;
	int out_fd_ = -1;
	std::string buf_;
	int status_ = -1;
};

// The agent under test on a free loopback port, with an optional config file body.
class Agent {
public:
	explicit Agent(const std::string &config_yaml = "", const std::vector<std::string> &extra_args = {});
	~Agent();
	int port() const { return port_; }
	bool healthy() const;
	std::string scrape() const;
	std::vector<Sample> samples() const { return parse_exposition(scrape()); }
	Process &process() { return *proc_; }

private:
	int port_ = 0;
	std::string config_path_;
	std::unique_ptr<Process> proc_;
};

// Path of a binary built next to the tests (e.g. "aurum_test_burner").
std::string built_binary(const std::string &name);

} // namespace aurum::test
