// SPDX-License-Identifier: Apache-2.0
// HTTP/1.x golden signals (bpf/http.bpf.c) against real servers and their own records: nginx's
// access log, a Python http.server's log of every response, wrk's and the clients' own counts.
#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "harness.h"

using namespace aurum::test;
using namespace std::chrono_literals;

namespace {

struct TempDir {
	std::string path;
	TempDir()
	{
		char tmpl[] = "/tmp/aurum-http-XXXXXX";
		if (!::mkdtemp(tmpl))
			throw std::runtime_error("mkdtemp");
		path = tmpl;
	}
	~TempDir() { std::filesystem::remove_all(path); }
};

// A cgroup of its own under the cgroup v2 root, to name a service by a `cgroup:` rule: nginx
// overwrites its environment with its process title (so OTEL_SERVICE_NAME is lost), and a port
// rule reads every process's /proc/<pid>/net/tcp (slow with thousands of TIME_WAITs).
struct Cgroup {
	std::string name, path;
	explicit Cgroup(const std::string &n) : name(n)
	{
		std::ifstream in("/proc/self/mountinfo");
		for (std::string l; std::getline(in, l);) {
			auto dash = l.find(" - cgroup2 ");
			if (dash == std::string::npos)
				continue;
			std::istringstream f(l);
			std::string id, parent, dev, root, mnt;
			f >> id >> parent >> dev >> root >> mnt;
			path = mnt + "/" + name;
			break;
		}
		if (path.empty() || (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST))
			throw std::runtime_error("cannot create cgroup " + name);
	}
	~Cgroup() { ::rmdir(path.c_str()); }
	// A shell command that moves itself into the cgroup, then becomes `cmd`.
	std::string wrap(const std::string &cmd) const { return "echo $$ > " + path + "/cgroup.procs && exec " + cmd; }
};

bool port_open(int port)
{
	int fd = ::socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(static_cast<uint16_t>(port));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
	::close(fd);
	return ok;
}

void wait_port(int port)
{
	for (int i = 0; i < 200 && !port_open(port); i++)
		std::this_thread::sleep_for(50ms);
	if (!port_open(port))
		throw std::runtime_error("nothing listens on port " + std::to_string(port));
}

std::string run(const std::string &cmd)
{
	std::string out;
	FILE *p = ::popen(cmd.c_str(), "r");
	if (!p)
		throw std::runtime_error("popen " + cmd);
	char buf[4096];
	size_t n;
	while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
		out.append(buf, n);
	::pclose(p);
	return out;
}

// The agent names a process from /proc at its housekeeping (every 2 s) or at a scrape; one that
// exits before either is named by its comm only, so the clients here stay 3 s after their work
// (docs/http-design.md, "short-lived clients").
const char *kLinger = "function done(summary, latency, requests) os.execute('sleep 3') end\n";

// wrk's count of completed requests ("N requests in 2.00s").
long wrk(const Cgroup &cg, const std::string &args)
{
	std::string script = "/tmp/" + cg.name + ".lua";
	std::ofstream(script) << kLinger;
	std::string out = run("sh -c '" + cg.wrap("wrk -s " + script + " " + args) + "' 2>&1");
	std::filesystem::remove(script);
	std::smatch m;
	if (!std::regex_search(out, m, std::regex(R"((\d+) requests in)")))
		throw std::runtime_error("wrk said: " + out);
	return std::stol(m[1]);
}

std::vector<std::string> lines_of(const std::string &path)
{
	std::ifstream in(path);
	std::vector<std::string> out;
	for (std::string l; std::getline(in, l);)
		if (!l.empty())
			out.push_back(l);
	return out;
}

// One access-log entry: what nginx itself recorded about a request.
struct LogEntry {
	std::string status, method;
	double request_time = 0;
	long bytes_sent = 0, content_length = 0, body_bytes_sent = 0;
};

// nginx with one worker: /ok answers 200, /err 500, /slow is proxied to a backend. Under /p/ (with
// Nagle on: tcp_nodelay off) /p/ok 200, /p/c 201, /p/n 204, anything else 404; /files/fN are
// static files of N bytes.
class Nginx {
public:
	static constexpr long kFileSizes[] = {0, 100, 1000, 5000, 70000};
	Nginx(const TempDir &dir, const Cgroup &cg, int port, int backend_port) : log_(dir.path + "/access.log")
	{
		// The workers run as nobody: the files and the directories down to them must be readable.
		std::filesystem::create_directories(dir.path + "/www/files");
		::chmod(dir.path.c_str(), 0755);
		for (long n : kFileSizes)
			std::ofstream(dir.path + "/www/files/f" + std::to_string(n)) << std::string(static_cast<size_t>(n), 'x');
		std::string conf = dir.path + "/nginx.conf";
		std::ofstream(conf) << "worker_processes 1;\ndaemon off;\npid " << dir.path << "/nginx.pid;\n"
				    << "error_log " << dir.path << "/error.log;\nevents { worker_connections 1024; }\n"
				    << "http {\n  client_body_temp_path " << dir.path << "/body;\n  proxy_temp_path " << dir.path
				    << "/proxy;\n  fastcgi_temp_path " << dir.path << "/f;\n  uwsgi_temp_path " << dir.path
				    << "/u;\n  scgi_temp_path " << dir.path << "/s;\n"
				    << "  log_format t '$status $request_time $bytes_sent $request_method $content_length $body_bytes_sent';\n"
				    << "  upstream backend { server 127.0.0.1:" << backend_port << "; keepalive 4; }\n"
				    << "  server {\n    listen 127.0.0.1:" << port << ";\n    access_log " << log_ << " t;\n"
				    << "    keepalive_requests 1000000;\n"
				    << "    location /ok { return 200 \"ok\\n\"; }\n    location /err { return 500; }\n"
				    << "    location /slow { proxy_pass http://backend/sleep/20; proxy_http_version 1.1;\n"
				    << "      proxy_set_header Connection \"\"; }\n"
				    << "    location /p/ { tcp_nodelay off; return 404; }\n"
				    << "    location = /p/ok { tcp_nodelay off; return 200 \"ok\\n\"; }\n"
				    << "    location = /p/c { tcp_nodelay off; return 201 \"created\\n\"; }\n"
				    << "    location = /p/n { tcp_nodelay off; return 204; }\n"
				    << "    location /files/ { tcp_nodelay off; root " << dir.path << "/www; }\n  }\n}\n";
		proc_ = std::make_unique<Process>(
			std::vector<std::string>{"/bin/sh", "-c", cg.wrap("/usr/sbin/nginx -c " + conf + " -p " + dir.path)});
		wait_port(port);
	}
	// SIGTERM to the master: its workers exit with it (a SIGKILL would orphan them).
	~Nginx() { proc_->stop(SIGTERM, 10s); }
	// The access log, one entry per request nginx finished: status -> count.
	std::map<std::string, long> counts(double *request_time_sum = nullptr) const
	{
		std::map<std::string, long> out;
		double sum = 0;
		for (const auto &l : lines_of(log_)) {
			std::istringstream in(l);
			std::string status, bytes, method;
			double t = 0;
			in >> status >> t >> bytes >> method;
			// nginx logs 400 for a connection closed before its request was complete, having sent
			// nothing ($bytes_sent 0): that is the agent's "closed before the response", code 0.
			out[bytes == "0" ? "0" : status]++;
			sum += t;
		}
		if (request_time_sum)
			*request_time_sum = sum;
		return out;
	}
	std::vector<LogEntry> entries() const
	{
		std::vector<LogEntry> out;
		for (const auto &l : lines_of(log_)) {
			std::istringstream in(l);
			LogEntry e;
			std::string cl;
			in >> e.status >> e.request_time >> e.bytes_sent >> e.method >> cl >> e.body_bytes_sent;
			e.content_length = cl == "-" ? 0 : std::stol(cl);
			out.push_back(e);
		}
		return out;
	}

private:
	std::string log_;
	std::unique_ptr<Process> proc_;
};

// A second stack: Python's threading http.server, logging the code of every response it sends.
const char *kPyServer = R"PY(import http.server, socketserver, sys, time
port, log = int(sys.argv[1]), open(sys.argv[2], 'a', buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def log_request(self, code='-', size='-'): log.write('%s\n' % int(code))
    def reply(self, code, body):
        self.send_response(code); self.send_header('Content-Length', str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith('/sleep/'):
            time.sleep(int(self.path.split('/')[2]) / 1000.0); self.reply(200, b'slept\n')
        elif self.path == '/chunked':
            self.send_response(200); self.send_header('Transfer-Encoding', 'chunked'); self.end_headers()
            for i in range(5):
                part = b'HTTP/1.1 200 OK\r\n' * 4
                self.wfile.write(b'%x\r\n%s\r\n' % (len(part), part)); self.wfile.flush(); time.sleep(0.01)
            self.wfile.write(b'0\r\n\r\n')
        else:
            self.reply(404, b'no\n')
    def do_POST(self):
        data = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        self.reply(201, str(len(data)).encode())
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
s = S(('127.0.0.1', port), H)
print('ready', flush=True)
s.serve_forever()
)PY";

// A client process of its own (so that its service is not the test binary's): `n` requests on
// each of `conc` keep-alive connections; prints the codes it got, then "done".
const char *kPyClient = R"PY(import http.client, sys, threading
port, path, n, conc = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
codes = []
def work():
    c = http.client.HTTPConnection('127.0.0.1', port)
    for i in range(n):
        c.request('GET', path); r = c.getresponse(); r.read(); codes.append(r.status)
    c.close()
ts = [threading.Thread(target=work) for i in range(conc)]
[t.start() for t in ts]; [t.join() for t in ts]
print('codes %d %d' % (len(codes), codes.count(200)), flush=True)
import time; time.sleep(3)  # outlive one housekeeping pass (see kLinger)
print('done', flush=True)
)PY";

class PyServer {
public:
	PyServer(const TempDir &dir, int port) : log_(dir.path + "/py.log")
	{
		std::string script = dir.path + "/http_server_test.py";
		std::ofstream(script) << kPyServer;
		proc_ = std::make_unique<Process>(
			std::vector<std::string>{"/usr/bin/python3", script, std::to_string(port), log_}, std::vector<std::string>{},
			true);
		if (!proc_->wait_line("ready", 30s))
			throw std::runtime_error("python server did not start");
	}
	std::map<std::string, long> counts() const
	{
		std::map<std::string, long> out;
		for (const auto &l : lines_of(log_))
			out[l]++;
		return out;
	}

private:
	std::string log_;
	std::unique_ptr<Process> proc_;
};

void run_py_client(const TempDir &dir, int port, const std::string &path, int n, int conc)
{
	std::string script = dir.path + "/http_client_test.py";
	std::ofstream(script) << kPyClient;
	Process c({"/usr/bin/python3", script, std::to_string(port), path, std::to_string(n), std::to_string(conc)}, {}, true);
	ASSERT_TRUE(c.wait_line("done", 120s)) << "python client did not finish";
}

// Service names unique to this run: other people's nginx and wrk may run on the host.
struct Names {
	std::string tag = std::to_string(::getpid()) + "-" + std::to_string(free_tcp_port());
	std::string nginx = "test-nginx-" + tag, wrk = "test-wrk-" + tag;
	Cgroup nginx_cg{"aurum-test-nginx-" + tag}, wrk_cg{"aurum-test-wrk-" + tag};
	std::string rules() const
	{
		return "services:\n  rules:\n"
		       "    - name: " + nginx + "\n      cgroup: '" + nginx_cg.name + "'\n"
		       "    - name: " + wrk + "\n      cgroup: '" + wrk_cg.name + "'\n"
		       "    - name: test-py-server\n      cmdline: 'http_server_test\\.py'\n"
		       "    - name: test-py-client\n      cmdline: 'http_client_test\\.py'\n";
	}
};

// The agent with the test's naming rules (plus `extra_config`) and the Python server on a free port.
struct PyStack {
	explicit PyStack(const std::string &extra_config = "") : agent(names.rules() + extra_config) {}
	TempDir dir;
	int port = free_tcp_port();
	Names names;
	Agent agent;
	PyServer py{dir, port};
};

// Sum of the histogram's counts per status code for one service and side.
std::map<std::string, long> agent_counts(const std::vector<Sample> &s, const std::string &metric,
					 const std::string &service)
{
	std::map<std::string, long> out;
	for (const auto &x : select(s, metric + "_count", {{"service_name", service}}))
		out[x.labels.at("http_response_status_code")] += std::lround(x.value);
	return out;
}

// histogram_quantile() as Prometheus computes it, from the selected series summed.
double quantile(const std::vector<Sample> &s, const std::string &metric, const std::map<std::string, std::string> &match,
		double q)
{
	std::map<double, double> cum;
	for (const auto &x : select(s, metric + "_bucket", match)) {
		const auto &le = x.labels.at("le");
		cum[le == "+Inf" ? INFINITY : std::stod(le)] += x.value;
	}
	if (cum.empty())
		return NAN;
	double total = cum.rbegin()->second, rank = q * total, lower = 0, below = 0;
	for (const auto &[le, c] : cum) {
		if (c >= rank) {
			if (std::isinf(le))
				return lower;
			return lower + (le - lower) * (rank - below) / (c - below);
		}
		lower = le;
		below = c;
	}
	return NAN;
}

// Polls until `pred` holds for a scrape (the agent folds the kernel's maps at scrape time, but the
// servers may still be writing their logs), at most 10 s.
template <typename P> std::vector<Sample> settle(Agent &agent, P pred)
{
	std::vector<Sample> s;
	for (int i = 0; i < 50; i++) {
		s = agent.samples();
		if (pred(s))
			break;
		std::this_thread::sleep_for(200ms);
	}
	return s;
}

int connect_to(int port)
{
	int fd = ::socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(static_cast<uint16_t>(port));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0)
		throw std::runtime_error("connect");
	return fd;
}

// Reads until `n` status lines arrived or the peer closed or 5 s passed.
std::string read_responses(int fd, int n)
{
	std::string got;
	timeval tv{5, 0};
	::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char buf[65536];
	auto count = [&] {
		int c = 0;
		for (size_t p = 0; (p = got.find("HTTP/1.1 ", p)) != std::string::npos; p++)
			c++;
		return c;
	};
	while (count() < n) {
		ssize_t r = ::recv(fd, buf, sizeof buf, 0);
		if (r <= 0)
			break;
		got.append(buf, static_cast<size_t>(r));
	}
	return got;
}

void send_all(int fd, const std::string &s)
{
	size_t off = 0;
	while (off < s.size()) {
		ssize_t w = ::send(fd, s.data() + off, s.size() - off, 0);
		if (w <= 0)
			throw std::runtime_error("send");
		off += static_cast<size_t>(w);
	}
}

} // namespace

// Exact counts per status against nginx's access log, over keep-alive and new connections; the
// load generator's own side against wrk's count. On loopback the sender's egress parses each
// segment for both ends (bpf/http.bpf.c, on_segment); `--force-off sk_lookup` makes each end
// parse what it receives itself, the path of traffic from other hosts.
static void nginx_counts_equal_access_log(const std::vector<std::string> &agent_args)
{
	TempDir dir;
	int port = free_tcp_port(), backend = free_tcp_port();
	Names names;
	Agent agent(names.rules(), agent_args);
	Nginx nginx(dir, names.nginx_cg, port, backend);
	std::string url = "http://127.0.0.1:" + std::to_string(port);
	long wrk_total = 0;
	wrk_total += wrk(names.wrk_cg, "-t1 -c8 -d2s " + url + "/ok");
	wrk_total += wrk(names.wrk_cg, "-t1 -c8 -d1s " + url + "/err");
	wrk_total += wrk(names.wrk_cg, "-t1 -c4 -d1s -H \"Connection: close\" " + url + "/ok");
	wrk_total += wrk(names.wrk_cg, "-t1 -c4 -d1s -H \"Connection: close\" " + url + "/err");
	auto truth = nginx.counts();
	ASSERT_GT(truth["200"], 1000);
	ASSERT_GT(truth["500"], 1000);
	auto s = settle(agent, [&](const std::vector<Sample> &x) {
		return agent_counts(x, "http_server_request_duration_seconds", names.nginx) == nginx.counts();
	});
	truth = nginx.counts();
	EXPECT_EQ(agent_counts(s, "http_server_request_duration_seconds", names.nginx), truth);
	// The load generator's side: every response nginx sent reached wrk's sockets (loopback), so
	// the counts equal nginx's log too. wrk itself counts the responses it parsed before its time
	// was up; the agent counts a response when it arrives, so it may see up to one more per
	// connection than wrk reports (8 + 8 + 4 + 4 connections).
	auto client = agent_counts(s, "http_client_request_duration_seconds", names.wrk);
	EXPECT_EQ(client["200"], truth["200"]);
	EXPECT_EQ(client["500"], truth["500"]);
	EXPECT_GE(client["200"] + client["500"], wrk_total);
	EXPECT_LE(client["200"] + client["500"], wrk_total + 24);
	EXPECT_EQ(value(s, "http_server_active_requests", {{"service_name", names.nginx}}), 0.0);
	EXPECT_EQ(sum(s, "aurum_lost_events_total", {{"component", "http"}}), 0.0);
}

TEST(Http, NginxCountsEqualAccessLog)
{
	AURUM_REQUIRE_ROOT();
	nginx_counts_equal_access_log({});
}

TEST(Http, NginxCountsEqualAccessLogEachEndParsingItsOwn)
{
	AURUM_REQUIRE_ROOT();
	nginx_counts_equal_access_log({"--force-off", "sk_lookup"});
}

// Latency: nginx proxies to a backend that sleeps 20 ms; nginx's own $request_time is the truth
// for the server side (it starts when nginx reads the first bytes of the request, the agent when
// they reach the socket; both end at the response's first write), and nginx is the client of the
// backend.
TEST(Http, NginxLatencyMatchesRequestTime)
{
	AURUM_REQUIRE_ROOT();
	TempDir dir;
	int port = free_tcp_port(), backend = free_tcp_port();
	Names names;
	Agent agent(names.rules());
	PyServer py(dir, backend);
	Nginx nginx(dir, names.nginx_cg, port, backend);
	long n = wrk(names.wrk_cg, "-t1 -c4 -d3s http://127.0.0.1:" + std::to_string(port) + "/slow");
	ASSERT_GT(n, 100);
	double truth_sum = 0;
	auto s = settle(agent, [&](const std::vector<Sample> &x) {
		return agent_counts(x, "http_server_request_duration_seconds", names.nginx) == nginx.counts(&truth_sum);
	});
	auto truth = nginx.counts(&truth_sum);
	EXPECT_EQ(agent_counts(s, "http_server_request_duration_seconds", names.nginx), truth);
	double agent_sum = sum(s, "http_server_request_duration_seconds_sum", {{"service_name", names.nginx}});
	EXPECT_NEAR(agent_sum, truth_sum, truth_sum * 0.05) << "agent " << agent_sum << " s, nginx " << truth_sum << " s";
	// nginx as a client of the backend, to the backend's port: one request per response the
	// backend logged (wrk's last requests, closed by wrk, are 0 in nginx's log but were answered
	// by the backend).
	auto backend_truth = py.counts();
	EXPECT_EQ(agent_counts(s, "http_client_request_duration_seconds", names.nginx), backend_truth);
	EXPECT_EQ(sum(s, "http_client_request_duration_seconds_count",
		      {{"service_name", names.nginx}, {"server_port", std::to_string(backend)}}),
		  static_cast<double>(backend_truth["200"]));
	EXPECT_EQ(agent_counts(s, "http_server_request_duration_seconds", "test-py-server"), py.counts());
}

// A second stack with a known handler time: p50 within 10% of the sleep, on both sides.
TEST(Http, PythonServerP50AndClientCounts)
{
	AURUM_REQUIRE_ROOT();
	PyStack t;
	auto &[dir, port, names, agent, py] = t;
	run_py_client(dir, port, "/sleep/100", 20, 4);
	auto s = settle(agent, [&](const std::vector<Sample> &x) {
		return agent_counts(x, "http_server_request_duration_seconds", "test-py-server") == py.counts();
	});
	EXPECT_EQ(agent_counts(s, "http_server_request_duration_seconds", "test-py-server"),
		  (std::map<std::string, long>{{"200", 80}}));
	EXPECT_EQ(py.counts(), (std::map<std::string, long>{{"200", 80}}));
	EXPECT_EQ(agent_counts(s, "http_client_request_duration_seconds", "test-py-client"),
		  (std::map<std::string, long>{{"200", 80}}));
	double p50 = quantile(s, "http_server_request_duration_seconds", {{"service_name", "test-py-server"}}, 0.5);
	EXPECT_NEAR(p50, 0.100, 0.010) << "server p50 " << p50;
	double cp50 = quantile(s, "http_client_request_duration_seconds", {{"service_name", "test-py-client"}}, 0.5);
	EXPECT_NEAR(cp50, 0.100, 0.010) << "client p50 " << cp50;
}

// In flight: requests whose request line arrived and whose status line has not left. Three
// connections each send a request the server answers after 3 s: the gauge must read 3 while they
// wait (the kernel iterator reads the pending requests of every live connection), then 0.
TEST(Http, ActiveRequestsWhileInFlight)
{
	AURUM_REQUIRE_ROOT();
	PyStack t;
	auto &[dir, port, names, agent, py] = t;
	std::vector<int> fds;
	for (int i = 0; i < 3; i++) {
		fds.push_back(connect_to(port));
		send_all(fds.back(), "GET /sleep/3000 HTTP/1.1\r\nHost: x\r\n\r\n");
	}
	auto active = [&](const std::vector<Sample> &x) {
		return value(x, "http_server_active_requests", {{"service_name", "test-py-server"}});
	};
	auto s = settle(agent, [&](const std::vector<Sample> &x) { return active(x) == 3.0; });
	EXPECT_EQ(active(s), 3.0) << "while the three requests wait";
	for (int fd : fds) {
		EXPECT_NE(read_responses(fd, 1).find("200"), std::string::npos);
		::close(fd);
	}
	s = settle(agent, [&](const std::vector<Sample> &x) { return active(x) == 0.0; });
	EXPECT_EQ(active(s), 0.0) << "after the answers";
	EXPECT_EQ(agent_counts(s, "http_server_request_duration_seconds", "test-py-server"),
		  (std::map<std::string, long>{{"200", 3}}));
}

// The framing cases, each on its own connection, with the servers' logs as the truth.
static void pipelining_split_chunked_large_body_expect_and_close(const std::vector<std::string> &agent_args)
{
	TempDir dir;
	int port = free_tcp_port(), py_port = free_tcp_port();
	Names names;
	Agent agent(names.rules(), agent_args);
	Nginx nginx(dir, names.nginx_cg, port, py_port);
	PyServer py(dir, py_port);

	// Three requests in one write; three responses.
	int fd = connect_to(port);
	std::string one = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n", err = "GET /err HTTP/1.1\r\nHost: x\r\n\r\n";
	send_all(fd, one + one + err); // nginx closes after a 500: so it comes last
	EXPECT_NE(read_responses(fd, 3).find("500"), std::string::npos);
	::close(fd);

	// A request written one byte at a time (the request line split across many segments).
	fd = connect_to(port);
	for (char c : one) {
		send_all(fd, std::string(1, c));
		std::this_thread::sleep_for(2ms);
	}
	read_responses(fd, 1);
	::close(fd);

	// Chunked response whose chunks contain status-line look-alikes at segment starts.
	fd = connect_to(py_port);
	send_all(fd, "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
	std::string got;
	for (int i = 0; i < 50 && got.find("0\r\n\r\n") == std::string::npos; i++) {
		char buf[4096];
		ssize_t r = ::recv(fd, buf, sizeof buf, 0);
		if (r <= 0)
			break;
		got.append(buf, static_cast<size_t>(r));
	}
	::close(fd);

	// A 1 MiB body, then a second request on the same connection.
	fd = connect_to(py_port);
	std::string body(1 << 20, 'G');
	for (size_t i = 0; i + 16 < body.size(); i += 4096)
		body.replace(i, 15, "GET / HTTP/1.1\n"); // request-line look-alikes inside the body
	send_all(fd, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
	EXPECT_NE(read_responses(fd, 1).find("201"), std::string::npos);
	send_all(fd, "GET /sleep/1 HTTP/1.1\r\nHost: x\r\n\r\n");
	read_responses(fd, 1);
	::close(fd);

	// Expect: 100-continue: the interim response must not end the request.
	fd = connect_to(py_port);
	send_all(fd, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
	std::string interim = read_responses(fd, 1);
	EXPECT_NE(interim.find("100 Continue"), std::string::npos);
	std::this_thread::sleep_for(50ms);
	send_all(fd, "hello");
	EXPECT_NE(read_responses(fd, 1).find("201"), std::string::npos);
	::close(fd);

	// Half-closed after the request (shutdown(SHUT_WR)): the server still answers, and its side
	// counts the answer (the client's side counted a 0 at its FIN: it said it is done).
	fd = connect_to(py_port);
	send_all(fd, "GET /sleep/1 HTTP/1.1\r\nHost: x\r\n\r\n");
	::shutdown(fd, SHUT_WR);
	EXPECT_NE(read_responses(fd, 1).find("200"), std::string::npos);
	::close(fd);

	// Closed mid-request: counted with status 0, in flight no more.
	fd = connect_to(port);
	send_all(fd, "GET /ok HTTP/1.1\r\nHo");
	std::this_thread::sleep_for(100ms);
	::close(fd);

	auto want_nginx = std::map<std::string, long>{{"0", 1}, {"200", 3}, {"500", 1}};
	auto want_py = std::map<std::string, long>{{"200", 3}, {"201", 2}};
	auto s = settle(agent, [&](const std::vector<Sample> &x) {
		return agent_counts(x, "http_server_request_duration_seconds", names.nginx) == want_nginx &&
		       agent_counts(x, "http_server_request_duration_seconds", "test-py-server") == want_py;
	});
	EXPECT_EQ(nginx.counts(), want_nginx);
	EXPECT_EQ(py.counts(), want_py);
	EXPECT_EQ(agent_counts(s, "http_server_request_duration_seconds", names.nginx), want_nginx);
	EXPECT_EQ(agent_counts(s, "http_server_request_duration_seconds", "test-py-server"), want_py);
	EXPECT_EQ(sum(s, "http_server_request_duration_seconds_count",
		      {{"service_name", "test-py-server"}, {"http_request_method", "POST"}}),
		  2.0);
	EXPECT_EQ(value(s, "http_server_active_requests", {{"service_name", names.nginx}}), 0.0);
	EXPECT_EQ(value(s, "http_server_active_requests", {{"service_name", "test-py-server"}}), 0.0);
}

TEST(Http, PipeliningSplitChunkedLargeBodyExpectAndClose)
{
	AURUM_REQUIRE_ROOT();
	pipelining_split_chunked_large_body_expect_and_close({});
}

TEST(Http, PipeliningSplitChunkedLargeBodyExpectAndCloseEachEndParsingItsOwn)
{
	AURUM_REQUIRE_ROOT();
	pipelining_split_chunked_large_body_expect_and_close({"--force-off", "sk_lookup"});
}

// Routes (off by default): through the ringbuf, normalised ({id}), counted exactly.
TEST(Http, RoutesWhenAskedFor)
{
	AURUM_REQUIRE_ROOT();
	PyStack t("http:\n  routes: true\n");
	auto &[dir, port, names, agent, py] = t;
	for (int i = 1; i <= 5; i++)
		http_get(port, "/sleep/" + std::to_string(i));
	run_py_client(dir, port, "/sleep/7", 3, 1);
	auto s = settle(agent, [&](const std::vector<Sample> &x) {
		return sum(x, "http_server_request_duration_seconds_count", {{"service_name", "test-py-server"}}) == 8;
	});
	EXPECT_EQ(sum(s, "http_server_request_duration_seconds_count",
		      {{"service_name", "test-py-server"}, {"http_route", "/sleep/{id}"}, {"http_response_status_code", "200"}}),
		  8.0);
	EXPECT_EQ(py.counts(), (std::map<std::string, long>{{"200", 8}}));
	EXPECT_EQ(value(s, "aurum_lost_events_total", {{"component", "http"}, {"reason", "ringbuf_full"}}), 0.0);
	// The client side carries no route.
	EXPECT_EQ(sum(s, "http_client_request_duration_seconds_count", {{"service_name", "test-py-client"}}), 3.0);
	EXPECT_EQ(value(s, "aurum_probe_attached", {{"component", "http"}, {"probe", "routes"}}), 1.0);
}

// Routes asked for where they cannot be had (here no ringbuf, forced off; a verifier that refuses
// the larger programs takes the same way): the route label is missing, said so in
// aurum_probe_attached, and every other HTTP figure stays.
TEST(Http, RoutesUnavailableKeepTheRest)
{
	AURUM_REQUIRE_ROOT();
	TempDir dir;
	int port = free_tcp_port();
	Names names;
	Agent agent(names.rules() + "http:\n  routes: true\n", {"--force-off", "ringbuf"});
	PyServer py{dir, port};
	for (int i = 1; i <= 5; i++)
		http_get(port, "/sleep/" + std::to_string(i));
	auto s = settle(agent, [&](const std::vector<Sample> &x) {
		return sum(x, "http_server_request_duration_seconds_count", {{"service_name", "test-py-server"}}) == 5;
	});
	EXPECT_EQ(sum(s, "http_server_request_duration_seconds_count", {{"service_name", "test-py-server"}}), 5.0);
	for (const auto &x : select(s, "http_server_request_duration_seconds_count"))
		EXPECT_EQ(x.labels.count("http_route"), 0u);
	EXPECT_EQ(py.counts(), (std::map<std::string, long>{{"200", 5}}));
	EXPECT_EQ(value(s, "aurum_probe_attached", {{"component", "http"}, {"probe", "routes"}}), 0.0);
	EXPECT_EQ(value(s, "aurum_probe_attached", {{"component", "http"}, {"probe", "cgroup_skb_ingress"}}), 1.0);
}

namespace {

// A client process of its own (service test-py-client): on one keep-alive connection, static files
// of every size, HEADs (whose Content-Length announces a body that is not sent), bodies of known
// sizes up, a 204 and a 404.
const char *kPyBodyClient = R"PY(import http.client, random, sys, time
port, rounds = int(sys.argv[1]), int(sys.argv[2])
random.seed(4)
c = http.client.HTTPConnection('127.0.0.1', port)
def do(method, path, body=None):
    c.request(method, path, body=body); r = c.getresponse(); r.read()
for i in range(rounds):
    for n in (0, 100, 1000, 5000, 70000): do('GET', '/files/f%d' % n)
    do('HEAD', '/files/f5000'); do('HEAD', '/p/ok')
    do('POST', '/p/ok', b'p' * random.randint(0, 3000))
    do('PUT', '/p/c', b'u' * random.choice([1, 65, 4096, 200000]))
    do('GET', '/p/n'); do('GET', '/p/missing')
c.close()
time.sleep(3)  # outlive one housekeeping pass (see kLinger)
print('done', flush=True)
)PY";

struct BodyTotals {
	long count = 0, req_sum = 0, resp_sum = 0;
	bool operator==(const BodyTotals &o) const = default;
};

std::ostream &operator<<(std::ostream &os, const BodyTotals &t)
{
	return os << "{count " << t.count << ", request bytes " << t.req_sum << ", response bytes " << t.resp_sum << "}";
}

using BodyKey = std::pair<std::string, std::string>; // method, status

std::map<BodyKey, BodyTotals> truth_bodies(const std::vector<LogEntry> &entries)
{
	std::map<BodyKey, BodyTotals> out;
	for (const auto &e : entries) {
		auto &t = out[{e.method, e.status}];
		t.count++;
		t.req_sum += e.content_length;
		t.resp_sum += e.body_bytes_sent;
	}
	return out;
}

// The agent's body-size histograms for one side and service, by (method, status); the count is
// the request histogram's (the response histogram's must agree, checked by the caller).
std::map<BodyKey, BodyTotals> agent_bodies(const std::vector<Sample> &s, const std::string &side, const std::string &service,
					   std::map<BodyKey, long> *resp_counts = nullptr)
{
	std::map<BodyKey, BodyTotals> out;
	auto key = [](const Sample &x) {
		return BodyKey{x.labels.at("http_request_method"), x.labels.at("http_response_status_code")};
	};
	std::map<std::string, std::string> match{{"service_name", service}};
	for (const auto &x : select(s, "http_" + side + "_request_body_size_bytes_count", match))
		out[key(x)].count += std::lround(x.value);
	for (const auto &x : select(s, "http_" + side + "_request_body_size_bytes_sum", match))
		out[key(x)].req_sum += std::lround(x.value);
	for (const auto &x : select(s, "http_" + side + "_response_body_size_bytes_sum", match))
		out[key(x)].resp_sum += std::lround(x.value);
	if (resp_counts)
		for (const auto &x : select(s, "http_" + side + "_response_body_size_bytes_count", match))
			(*resp_counts)[key(x)] += std::lround(x.value);
	return out;
}

// tcpi_data_segs_in of struct tcp_info (include/uapi/linux/tcp.h, Linux 4.6): glibc's
// <netinet/tcp.h> copy of the struct predates it.
long data_segs_in(int fd)
{
	unsigned char info[256] = {};
	socklen_t len = sizeof info;
	if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &len) != 0 || len < 156)
		throw std::runtime_error("TCP_INFO");
	uint32_t v;
	std::memcpy(&v, info + 152, sizeof v);
	return v;
}

} // namespace

// Body sizes, server and client side, per (method, status), against nginx's own $content_length and
// $body_bytes_sent: exact sums and counts; the response histogram's buckets against nginx's values.
TEST(Http, BodySizesEqualNginxLog)
{
	AURUM_REQUIRE_ROOT();
	TempDir dir;
	int port = free_tcp_port(), backend = free_tcp_port();
	Names names;
	Agent agent(names.rules());
	Nginx nginx(dir, names.nginx_cg, port, backend);
	std::string script = dir.path + "/http_client_test.py";
	std::ofstream(script) << kPyBodyClient;
	const int rounds = 15;
	Process c({"/usr/bin/python3", script, std::to_string(port), std::to_string(rounds)}, {}, true);
	ASSERT_TRUE(c.wait_line("done", 120s)) << "python client did not finish";
	auto entries = nginx.entries();
	ASSERT_EQ(entries.size(), static_cast<size_t>(rounds * 11));
	auto truth = truth_bodies(entries);
	ASSERT_GT((truth[{"PUT", "201"}].req_sum), 0);
	ASSERT_GT((truth[{"GET", "200"}].resp_sum), 0);
	ASSERT_EQ((truth[{"HEAD", "200"}].resp_sum), 0); // announced by Content-Length, not sent
	auto s = settle(agent, [&](const std::vector<Sample> &x) {
		return agent_bodies(x, "server", names.nginx) == truth && agent_bodies(x, "client", "test-py-client") == truth;
	});
	std::map<BodyKey, long> server_resp, client_resp, want_resp;
	for (const auto &[k, t] : truth)
		want_resp[k] = t.count;
	EXPECT_EQ(agent_bodies(s, "server", names.nginx, &server_resp), truth);
	EXPECT_EQ(server_resp, want_resp);
	EXPECT_EQ(agent_bodies(s, "client", "test-py-client", &client_resp), truth);
	EXPECT_EQ(client_resp, want_resp);
	// Buckets: every `le` holds exactly the responses nginx logged at or under it.
	std::map<double, double> cum;
	for (const auto &x : select(s, "http_server_response_body_size_bytes_bucket", {{"service_name", names.nginx}})) {
		const auto &le = x.labels.at("le");
		cum[le == "+Inf" ? INFINITY : std::stod(le)] += x.value;
	}
	ASSERT_FALSE(cum.empty());
	for (const auto &[le, count] : cum) {
		long want = std::count_if(entries.begin(), entries.end(), [&](const LogEntry &e) { return e.body_bytes_sent <= le; });
		EXPECT_EQ(count, static_cast<double>(want)) << "le " << le;
	}
	// The client side names the server it called.
	EXPECT_EQ(sum(s, "http_client_request_duration_seconds_count",
		      {{"service_name", "test-py-client"}, {"server_address", "127.0.0.1"}, {"server_port", std::to_string(port)}}),
		  static_cast<double>(entries.size()));
	EXPECT_EQ(sum(s, "aurum_lost_events_total", {{"component", "http"}}), 0.0);
}

// Pipelined requests answered in one segment: nginx writes each response on its own, but with
// Nagle on (tcp_nodelay off) and the client's ACKs delayed (past TCP's first quick ACKs), the
// responses after the first wait for its ACK and leave together. Every one is matched in order with
// its status: per status the agent equals nginx's access log.
TEST(Http, CoalescedPipelinedResponses)
{
	AURUM_REQUIRE_ROOT();
	TempDir dir;
	int port = free_tcp_port(), backend = free_tcp_port();
	Names names;
	Agent agent(names.rules());
	Nginx nginx(dir, names.nginx_cg, port, backend);
	const int conns = 10, warmup = 20;
	const std::vector<std::string> paths = {"/p/ok", "/p/c", "/p/n", "/p/nope", "HEAD /p/ok", "/p/ok", "/p/c", "/p/n"};
	std::string pipelined;
	for (const auto &p : paths)
		pipelined += (p.rfind("HEAD ", 0) == 0 ? p : "GET " + p) + " HTTP/1.1\r\nHost: x\r\n\r\n";
	long segs = 0;
	for (int c = 0; c < conns; c++) {
		int fd = connect_to(port);
		for (int i = 0; i < warmup; i++) {
			send_all(fd, "GET /p/ok HTTP/1.1\r\nHost: x\r\n\r\n");
			read_responses(fd, 1);
		}
		long before = data_segs_in(fd);
		send_all(fd, pipelined);
		std::string got = read_responses(fd, static_cast<int>(paths.size()));
		for (int i = 0; i < 50 && got.size() >= 4 && got.compare(got.size() - 4, 4, "\r\n\r\n") != 0; i++) {
			char buf[4096];
			ssize_t r = ::recv(fd, buf, sizeof buf, 0);
			if (r <= 0)
				break;
			got.append(buf, static_cast<size_t>(r));
		}
		segs += data_segs_in(fd) - before;
		::close(fd);
	}
	// The premise: responses shared segments (else this test would not test anything).
	ASSERT_LT(segs, static_cast<long>(conns * paths.size()) / 2) << "responses were not coalesced: " << segs << " segments";
	auto want = nginx.counts();
	ASSERT_EQ(want["200"], conns * (warmup + 3));
	ASSERT_EQ(want["204"], conns * 2);
	ASSERT_EQ(want["404"], conns);
	auto s = settle(agent, [&](const std::vector<Sample> &x) {
		return agent_counts(x, "http_server_request_duration_seconds", names.nginx) == nginx.counts();
	});
	EXPECT_EQ(agent_counts(s, "http_server_request_duration_seconds", names.nginx), nginx.counts());
	// Body sizes of the coalesced responses too (HEAD and 204: none sent).
	EXPECT_EQ(agent_bodies(s, "server", names.nginx), truth_bodies(nginx.entries()));
	EXPECT_EQ(value(s, "http_server_active_requests", {{"service_name", names.nginx}}), 0.0);
	EXPECT_EQ(sum(s, "aurum_lost_events_total", {{"component", "http"}}), 0.0);
}
