// SPDX-License-Identifier: Apache-2.0
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace aurum::test {

std::vector<Sample> parse_exposition(const std::string &text)
{
	std::vector<Sample> out;
	std::istringstream in(text);
	std::string line;
	while (std::getline(in, line)) {
		if (line.empty() || line[0] == '#')
			continue;
		Sample s;
		size_t i = 0;
		while (i < line.size() && line[i] != '{' && line[i] != ' ')
			i++;
		s.name = line.substr(0, i);
		if (i < line.size() && line[i] == '{') {
			i++;
			while (i < line.size() && line[i] != '}') {
				size_t eq = line.find('=', i);
				if (eq == std::string::npos)
					break;
				std::string key = line.substr(i, eq - i);
				size_t j = eq + 2; // past ="
				std::string val;
				while (j < line.size() && line[j] != '"') {
					if (line[j] == '\\' && j + 1 < line.size()) {
						j++;
						val += line[j] == 'n' ? '\n' : line[j];
					} else {
						val += line[j];
					}
					j++;
				}
				s.labels[key] = val;
				i = j + 1;
				if (i < line.size() && line[i] == ',')
					i++;
			}
			i++; // '}'
		}
		std::string v = line.substr(i);
		v.erase(0, v.find_first_not_of(' '));
		v = v.substr(0, v.find(' ')); // drop a timestamp
		if (v == "+Inf") s.value = INFINITY;
		else if (v == "-Inf") s.value = -INFINITY;
		else s.value = std::strtod(v.c_str(), nullptr);
		out.push_back(std::move(s));
	}
	return out;
}

std::vector<Sample> select(const std::vector<Sample> &s, const std::string &name,
			   const std::map<std::string, std::string> &match)
{
	std::vector<Sample> out;
	for (const auto &x : s) {
		if (x.name != name)
			continue;
		bool ok = true;
		for (const auto &[k, v] : match) {
			auto it = x.labels.find(k);
			if (it == x.labels.end() || it->second != v) {
				ok = false;
				break;
			}
		}
		if (ok)
			out.push_back(x);
	}
	return out;
}

double sum(const std::vector<Sample> &s, const std::string &name, const std::map<std::string, std::string> &match)
{
	double t = 0;
	for (const auto &x : select(s, name, match))
		t += x.value;
	return t;
}

std::optional<double> value(const std::vector<Sample> &s, const std::string &name,
			    const std::map<std::string, std::string> &match)
{
	auto v = select(s, name, match);
	if (v.size() != 1)
		return std::nullopt;
	return v[0].value;
}

int free_tcp_port()
{
	int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
	socklen_t len = sizeof a;
	::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
	int port = ntohs(a.sin_port);
	::close(fd);
	return port;
}

std::string http_get(int port, const std::string &path, int *status)
{
	if (status)
		*status = 0;
	int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(static_cast<uint16_t>(port));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
		::close(fd);
		return {};
	}
	std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) {
		::close(fd);
		return {};
	}
	std::string resp;
	char buf[65536];
	for (;;) {
		pollfd p{fd, POLLIN, 0};
		if (::poll(&p, 1, 10000) <= 0)
			break;
		ssize_t n = ::recv(fd, buf, sizeof buf, 0);
		if (n <= 0)
			break;
		resp.append(buf, static_cast<size_t>(n));
	}
	::close(fd);
	if (resp.rfind("HTTP/1.", 0) != 0)
		return {};
	if (status)
		*status = std::atoi(resp.c_str() + 9);
	auto body = resp.find("\r\n\r\n");
	return body == std::string::npos ? std::string() : resp.substr(body + 4);
}

Process::Process(const std::vector<std::string> &argv, const std::vector<std::string> &env, bool capture_stdout)
{
	int pipefd[2] = {-1, -1};
	if (capture_stdout && ::pipe2(pipefd, O_CLOEXEC) != 0)
		throw std::runtime_error("pipe");
	pid_ = ::fork();
	if (pid_ < 0)
		throw std::runtime_error("fork");
	if (pid_ == 0) {
		if (capture_stdout)
			::dup2(pipefd[1], 1);
		std::vector<char *> a;
		for (const auto &s : argv)
			a.push_back(const_cast<char *>(s.c_str()));
		a.push_back(nullptr);
		for (const auto &e : env)
			::putenv(const_cast<char *>(e.c_str()));
		::execvp(a[0], a.data());
		std::fprintf(stderr, "exec %s: %s\n", a[0], std::strerror(errno));
		::_exit(127);
	}
	if (capture_stdout) {
		::close(pipefd[1]);
		out_fd_ = pipefd[0];
	}
}

Process::~Process()
{
	if (running())
		stop(SIGKILL, std::chrono::milliseconds(5000));
	if (out_fd_ >= 0)
		::close(out_fd_);
}

bool Process::running() const
{
	if (pid_ <= 0 || status_ != -1)
		return false;
	return ::waitpid(pid_, nullptr, WNOHANG) == 0;
}

bool Process::wait_line(const std::string &line, std::chrono::milliseconds timeout)
{
	auto deadline = std::chrono::steady_clock::now() + timeout;
	for (;;) {
		size_t nl;
		while ((nl = buf_.find('\n')) != std::string::npos) {
			std::string l = buf_.substr(0, nl);
			buf_.erase(0, nl + 1);
			if (l == line)
				return true;
		}
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
		if (left.count() <= 0 || out_fd_ < 0)
			return false;
		pollfd p{out_fd_, POLLIN, 0};
		if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
			return false;
		char b[4096];
		ssize_t n = ::read(out_fd_, b, sizeof b);
		if (n <= 0)
			return false;
		buf_.append(b, static_cast<size_t>(n));
	}
}

int Process::stop(int sig, std::chrono::milliseconds timeout)
{
	if (pid_ <= 0)
		return -1;
	if (status_ != -1)
		return status_;
	::kill(pid_, sig);
	auto deadline = std::chrono::steady_clock::now() + timeout;
	int st = 0;
	for (;;) {
		pid_t r = ::waitpid(pid_, &st, WNOHANG);
		if (r == pid_)
			break;
		if (std::chrono::steady_clock::now() > deadline) {
			::kill(pid_, SIGKILL);
			::waitpid(pid_, &st, 0);
			break;
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
	}
	status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return status_;
}

std::string built_binary(const std::string &name) { return std::string(AURUM_BINARY_DIR) + "/tests/" + name; }

Agent::Agent(const std::string &config_yaml, const std::vector<std::string> &extra_args)
{
	port_ = free_tcp_port();
	std::vector<std::string> argv = {AURUM_AGENT_PATH, "--web.listen-address",
					 "127.0.0.1:" + std::to_string(port_), "--log.level", "info"};
	if (!config_yaml.empty()) {
		char tmpl[] = "/tmp/aurum-test-config-XXXXXX";
		int fd = ::mkstemp(tmpl);
		if (fd < 0)
			throw std::runtime_error("mkstemp");
		::close(fd);
		config_path_ = tmpl;
		std::ofstream(config_path_) << config_yaml;
		argv.push_back("--config.file");
		argv.push_back(config_path_);
	}
	for (const auto &a : extra_args)
		argv.push_back(a);
	proc_ = std::make_unique<Process>(argv);
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
	while (!healthy()) {
		if (!proc_->running())
			throw std::runtime_error("the agent exited during start-up (see its log above)");
		if (std::chrono::steady_clock::now() > deadline)
			throw std::runtime_error("the agent did not become healthy in 30 s");
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
	}
}

Agent::~Agent()
{
	if (proc_)
		proc_->stop(SIGTERM, std::chrono::milliseconds(10000));
	if (!config_path_.empty())
		::unlink(config_path_.c_str());
}

bool Agent::healthy() const
{
	int status = 0;
	http_get(port_, "/healthz", &status);
	return status == 200;
}

std::string Agent::scrape() const
{
	int status = 0;
	std::string body = http_get(port_, "/metrics", &status);
	if (status != 200)
		throw std::runtime_error("scrape failed with status " + std::to_string(status));
	return body;
}

} // namespace aurum::test
