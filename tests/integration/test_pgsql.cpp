// SPDX-License-Identifier: Apache-2.0
// PostgreSQL from the wire (issue 5) against a real cluster started here: query durations on
// the server's and on the clients' side, counted exactly against what the clients themselves
// report (psycopg2 for simple queries and SQLSTATE classes, pgbench for extended-protocol ones),
// the server's inbound connections against pg_stat_activity, and garbage on the port.
#include <pwd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <random>

#include "harness.h"
#include "wire/wire_util.h"

using namespace aurum::test;
using namespace aurum::test::wire;
using namespace std::chrono_literals;

namespace {

// A throw-away cluster: trust auth, TCP on 127.0.0.1:port, its Unix socket in its own directory.
class PgCluster {
public:
	PgCluster() : dir_("aurum-wire-pg"), cgroup_("aurum-wire-pg")
	{
		bin_ = newest_glob("/usr/lib/postgresql/*/bin");
		if (bin_.empty())
			throw std::runtime_error("no /usr/lib/postgresql/*/bin: install Debian's postgresql");
		port_ = free_tcp_port();
		const passwd *pw = ::getpwnam("postgres");
		if (!pw)
			throw std::runtime_error("no user postgres: install Debian's postgresql");
		if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0)
			throw std::runtime_error("chown " + dir_.path());
		int st = 0;
		auto out = sh(as_postgres("initdb") + " -D " + data() + " -A trust -U postgres --no-sync -E UTF8", &st);
		if (st != 0)
			throw std::runtime_error("initdb: " + out);
		out = sh(cgroup_.enter() + as_postgres("pg_ctl") + " -D " + data() + " -l " + dir_.path() + "/log -w -t 60 -o '-p " +
				 std::to_string(port_) + " -k " + dir_.path() +
				 " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50' start",
			 &st);
		if (st != 0)
			throw std::runtime_error("pg_ctl start: " + out + slurp(dir_.path() + "/log"));
	}
	~PgCluster() { sh(as_postgres("pg_ctl") + " -D " + data() + " -m immediate -w -t 30 stop"); }
	int port() const { return port_; }
	const std::string &bin() const { return bin_; }
	// A query over the Unix socket (not TCP: the agent does not see it, pg_stat_activity shows
	// it with a null client_addr).
	std::string psql(const std::string &sql) const
	{
		return sh(as_postgres("psql") + " -X -At -h " + dir_.path() + " -p " + std::to_string(port_) +
			  " -U postgres -d postgres -c \"" + sql + "\"");
	}
	std::string dir() const { return dir_.path(); }
	// Config rules naming this cluster and the test's clients (found by the port in their
	// command lines): other clusters and benchmarks may run on the same host.
	std::string rules() const
	{
		auto p = std::to_string(port_);
		return "services:\n  rules:\n"
		       "    - name: wire-pg\n      exe: postgres\n      cgroup: '" + cgroup_.name() + "'\n"
		       "    - name: wire-pg-client\n      cmdline: 'pg_client\\.py --port " + p + "'\n"
		       "    - name: wire-pgbench\n      exe: pgbench\n      cmdline: '-p " + p + " '\n";
	}

private:
	std::string data() const { return dir_.path() + "/data"; }
	std::string as_postgres(const std::string &tool) const { return "runuser -u postgres -- " + bin_ + "/" + tool; }
	ScratchDir dir_;
	OwnCgroup cgroup_; // after dir_: removed before it, once pg_ctl stop has waited
	std::string bin_;
	int port_ = 0;
};


// The histogram's _count for a service and error class (0 when absent).
double count(const std::vector<Sample> &s, const std::string &family, const std::string &svc, const std::string &err)
{
	return sum(s, family + "_count", {{"service_name", svc}, {"error_type", err}, {"db_system_name", "postgresql"}});
}

// The query series and the stream component's own counters, for failure messages.
std::string dump(const std::vector<Sample> &s)
{
	std::string out = "agent's series:\n";
	for (const auto &x : s) {
		if (x.name.find("_count") == std::string::npos && x.name.find("aurum_stream") == std::string::npos &&
		    x.name.find("aurum_lost") == std::string::npos)
			continue;
		if (x.name.find("duration") == std::string::npos && x.name.find("aurum_stream") == std::string::npos &&
		    x.name.find("lost") == std::string::npos)
			continue;
		out += x.name + "{";
		for (const auto &[k, v] : x.labels)
			out += k + "=\"" + v + "\",";
		out += "} " + std::to_string(x.value) + "\n";
	}
	return out;
}

// Waits until the agent parses the cluster's port (found from the postmaster's listening socket).
void wait_port_watched(const Agent &agent, int port)
{
	auto s = scrape_until(
		agent, [&](const auto &s) { return value(s, "aurum_stream_ports", {{"port", std::to_string(port)}}).has_value(); },
		15s);
	ASSERT_EQ(value(s, "aurum_stream_ports", {{"port", std::to_string(port)}, {"protocol", "postgresql"}}), 1.0)
		<< "the agent never marked the postmaster's port";
}

// On loopback the sender's egress frames each segment for both ends when the kernel has
// bpf_sk_lookup_tcp in cgroup_skb programs (and it is not forced off); the receiver's ingress
// frames it itself otherwise. Checks which of the two the counts above came from.
void check_loopback_mirror(const std::vector<Sample> &s0, const std::vector<Sample> &s, bool framed_in_kernel)
{
	auto ev = [](const std::vector<Sample> &x, const std::string &e) {
		return sum(x, "aurum_stream_pgsql_framing_total", {{"event", e}});
	};
	double mirrored = ev(s, "loopback_mirrored") - ev(s0, "loopback_mirrored");
	if (framed_in_kernel && value(s, "aurum_feature_available", {{"feature", "sk_lookup"}}) == 1.0)
		EXPECT_GT(mirrored, 0) << "sk_lookup available: loopback segments should be framed by their sender";
	else
		EXPECT_EQ(mirrored, 0) << "sk_lookup off or no kernel framing: each end frames its own segments";
}

// The ground truth, with PostgreSQL framed in the kernel (bpf_loop) or, `--force-off bpf_loop`,
// copied and parsed in userspace as on 5.10; with `--force-off sk_lookup`, each end of a loopback
// connection framed by its own programs instead of the sender's egress framing for both.
void query_counts_match_the_clients(const std::vector<std::string> &agent_args, const std::string &variant)
{
	PgCluster pg;
	Agent agent(pg.rules(), agent_args);
	wait_port_watched(agent, pg.port());
	auto s0 = agent.samples();
	ASSERT_EQ(value(s0, "aurum_probe_attached", {{"component", "stream"}, {"probe", "cgroup_skb/ingress"}, {"variant", variant}}),
		  1.0)
		<< "expected the stream programs of variant " << variant;

	constexpr int kSimple = 120, kFail = 7, kExtended = 150, kHold = 5;
	ScratchDir work("aurum-wire-pgc");
	std::string out = work.path() + "/client.json";
	Process client({"/usr/bin/python3", script("pg_client.py"), "--port", std::to_string(pg.port()), "--simple",
			std::to_string(kSimple), "--fail", std::to_string(kFail), "--hold", std::to_string(kHold), "--out", out},
		       {}, true);
	ASSERT_TRUE(client.wait_line("held", 30s)) << "pg_client.py did not finish its queries";
	auto report = slurp(out);
	long ok = json_int(report, "ok"), undefined = json_int(report, "42");
	ASSERT_EQ(ok, kSimple) << report;
	ASSERT_EQ(undefined, kFail) << report;

	// Extended protocol: pgbench -M extended sends Parse/Bind/Describe/Execute/Sync per statement.
	// The pause keeps pgbench alive across the agent's 2 s housekeeping, so that a look at
	// /proc resolves its command line (the rule names it by its -p): a process gone before any
	// look is known by its comm only.
	std::ofstream(work.path() + "/one.sql") << "SELECT 1;\n\\sleep 20 ms\n";
	int st = 0;
	auto bench = sh(pg.bin() + "/pgbench -h 127.0.0.1 -p " + std::to_string(pg.port()) +
				" -U postgres -n -M extended -c 1 -t " + std::to_string(kExtended) + " -f " + work.path() +
				"/one.sql postgres",
			&st);
	ASSERT_EQ(st, 0) << bench;
	std::smatch m;
	ASSERT_TRUE(std::regex_search(bench, m, std::regex("actually processed: (\\d+)/"))) << bench;
	long bench_done = std::stol(m[1]);
	ASSERT_EQ(bench_done, kExtended) << bench;

	auto expected_server_ok = static_cast<double>(ok + bench_done);
	auto s = scrape_until(
		agent,
		[&](const auto &s) {
			return count(s, "aurum_db_server_query_duration_seconds", "wire-pg", "") >= expected_server_ok &&
			       count(s, "db_client_operation_duration_seconds", "wire-pgbench", "") >= bench_done;
		},
		10s);
	std::this_thread::sleep_for(500ms); // anything still in the ring would show up now
	s = agent.samples();
	SCOPED_TRACE(dump(s));
	EXPECT_EQ(count(s, "aurum_db_server_query_duration_seconds", "wire-pg", ""), expected_server_ok);
	EXPECT_EQ(count(s, "aurum_db_server_query_duration_seconds", "wire-pg", "42"), undefined);
	EXPECT_EQ(count(s, "db_client_operation_duration_seconds", "wire-pg-client", ""), ok);
	EXPECT_EQ(count(s, "db_client_operation_duration_seconds", "wire-pg-client", "42"), undefined);
	EXPECT_EQ(count(s, "db_client_operation_duration_seconds", "wire-pgbench", ""), bench_done);
	EXPECT_EQ(sum(s, "db_client_operation_duration_seconds_count", {{"service_name", "wire-pgbench"}}), bench_done)
		<< "pgbench reported no failures: no error series expected";
	// The client side names the server's port.
	EXPECT_EQ(sum(s, "db_client_operation_duration_seconds_count",
		      {{"service_name", "wire-pg-client"}, {"server_port", std::to_string(pg.port())}}),
		  ok + undefined);
	// Every query took some time, less than the whole test.
	double server_sum = sum(s, "aurum_db_server_query_duration_seconds_sum", {{"service_name", "wire-pg"}});
	EXPECT_GT(server_sum, 0);
	EXPECT_LT(server_sum, 60);
	check_loopback_mirror(s0, s, variant == "cgroup_skb_pgsql");

	// Connections: the held ones, as the server itself lists them.
	auto truth = [&] {
		auto t = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE client_addr IS NOT NULL");
		return std::atof(t.c_str());
	};
	double held = truth();
	EXPECT_EQ(held, kHold);
	s = scrape_until(
		agent,
		[&](const auto &s) {
			return value(s, "aurum_tcp_active_connections", {{"service_name", "wire-pg"}, {"direction", "inbound"}}) ==
			       held;
		},
		10s);
	EXPECT_EQ(value(s, "aurum_tcp_active_connections", {{"service_name", "wire-pg"}, {"direction", "inbound"}}), held);
	EXPECT_EQ(truth(), held) << "the connections changed while the agent was being read";
}

} // namespace

TEST(Pgsql, QueryCountsAndErrorClassesMatchTheClients)
{
	AURUM_REQUIRE_ROOT();
	query_counts_match_the_clients({}, "cgroup_skb_pgsql");
}

TEST(Pgsql, QueryCountsMatchWithoutKernelFraming)
{
	AURUM_REQUIRE_ROOT();
	query_counts_match_the_clients({"--force-off", "bpf_loop"}, "cgroup_skb");
}

TEST(Pgsql, QueryCountsMatchWithEachEndFramingItsOwn)
{
	AURUM_REQUIRE_ROOT();
	query_counts_match_the_clients({"--force-off", "sk_lookup"}, "cgroup_skb_pgsql");
}

TEST(Pgsql, GarbageOnThePortIsCountedAndHarmless)
{
	AURUM_REQUIRE_ROOT();
	PgCluster pg;
	Agent agent(pg.rules());
	wait_port_watched(agent, pg.port());
	auto malformed = [](const std::vector<Sample> &s) {
		return sum(s, "aurum_stream_malformed_total", {{"protocol", "postgresql"}});
	};
	auto before_s = agent.samples();
	double before = malformed(before_s);
	double tracked_before = sum(before_s, "aurum_stream_connections");

	// Random bytes where a startup packet belongs; the postmaster drops such connections.
	std::mt19937 rng(42);
	constexpr int kConns = 20;
	for (int i = 0; i < kConns; i++) {
		int fd = ::socket(AF_INET, SOCK_STREAM, 0);
		ASSERT_GE(fd, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_port = htons(static_cast<uint16_t>(pg.port()));
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
		std::string junk(4096, '\0');
		for (auto &c : junk)
			c = static_cast<char>(rng() | 1); // a non-zero first byte is never a startup packet
		ASSERT_GT(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), 0);
		::close(fd);
	}
	auto s = scrape_until(agent, [&](const auto &s) { return malformed(s) >= before + kConns; }, 10s);
	EXPECT_GE(malformed(s), before + kConns) << "every garbage connection counts at least once";
	EXPECT_TRUE(agent.healthy());
	EXPECT_TRUE(agent.process().running());
	// Their state is freed at the close (FIN or RST), not kept until the owner exits: this
	// process and the postmaster live on. Slack for other clusters' traffic on this host.
	s = scrape_until(
		agent, [&](const auto &s) { return sum(s, "aurum_stream_connections") <= tracked_before + kConns / 2; }, 5s);
	EXPECT_LE(sum(s, "aurum_stream_connections"), tracked_before + kConns / 2)
		<< "without close handling both ends of " << kConns << " connections would stay";

	// And the port still works: one real query is still seen.
	ScratchDir work("aurum-wire-pgc");
	Process client({"/usr/bin/python3", script("pg_client.py"), "--port", std::to_string(pg.port()), "--simple", "1",
			"--out", work.path() + "/c.json"},
		       {}, true);
	ASSERT_TRUE(client.wait_line("held", 30s));
	s = scrape_until(
		agent, [&](const auto &s) { return count(s, "aurum_db_server_query_duration_seconds", "wire-pg", "") >= 1; },
		10s);
	EXPECT_EQ(count(s, "aurum_db_server_query_duration_seconds", "wire-pg", ""), 1);
}

namespace {

// A client speaking the wire protocol itself (python3, no driver), so that the test decides how
// the messages fall into TCP segments: headers cut across segments (TCP_NODELAY and a pause
// between the pieces), pipelined extended-protocol batches in one write, an SSLRequest first.
// It counts what the server answered and writes {"ok": n, "<class>": n, "rows": n} to --out.
const char *kRawClient = R"PY(
import json, os, socket, struct, sys, time

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
port = int(args["--port"])

def msg(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body

def cstr(s):
    return s.encode() + b"\0"

class Conn:
    def __init__(self, ssl_first=False):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        if ssl_first:
            self.s.sendall(struct.pack("!II", 8, 80877103))
            answer = self.s.recv(1)
            if answer != b"N":
                raise SystemExit("SSLRequest answered %r" % answer)
        params = cstr("user") + cstr("postgres") + cstr("database") + cstr("postgres") + b"\0"
        self.s.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
        self.cycle()

    def read(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise SystemExit("server closed")
            self.buf += chunk
        n = struct.unpack("!I", self.buf[1:5])[0]
        t, body, self.buf = self.buf[0:1], self.buf[5:1 + n], self.buf[1 + n:]
        return t, body

    def cycle(self):
        """Reads up to ReadyForQuery: (SQLSTATE class or None, rows)."""
        err, rows = None, 0
        while True:
            t, body = self.read()
            if t == b"E" and err is None:
                for field in body.split(b"\0"):
                    if field[:1] == b"C":
                        err = field[1:3].decode()
            elif t == b"D":
                rows += 1
            elif t == b"Z":
                return err, rows

counts = {"ok": 0, "rows": 0}

def count(err, rows):
    counts["rows"] += rows
    key = "ok" if err is None else err
    counts[key] = counts.get(key, 0) + 1

def split_queries(c, n):
    for i in range(n):
        q = msg(b"Q", cstr("SELECT %d" % i))
        for a, b in ((0, 2), (2, 4), (4, 7), (7, len(q))):
            c.s.sendall(q[a:b])
            time.sleep(0.02)
        count(*c.cycle())

def big_queries(c, n, rows):
    for _ in range(n):
        c.s.sendall(msg(b"Q", cstr("SELECT repeat('x', 100) FROM generate_series(1, %d)" % rows)))
        count(*c.cycle())

def pipeline(c, batches, failing):
    out = b""
    for i in range(batches):
        sql = "SELECT 1/0" if i == failing else "SELECT %d" % i
        out += msg(b"P", cstr("") + cstr(sql) + b"\0\0")
        out += msg(b"B", cstr("") + cstr("") + b"\0\0" + b"\0\0" + b"\0\0")
        out += msg(b"D", b"P" + cstr(""))
        out += msg(b"E", cstr("") + b"\0\0\0\0")
        out += msg(b"S")
    c.s.sendall(out)
    for _ in range(batches):
        count(*c.cycle())

def simple(c, n):
    for i in range(n):
        c.s.sendall(msg(b"Q", cstr("SELECT %d" % i)))
        count(*c.cycle())

mode = args["--mode"]
if mode == "framing":
    c = Conn()
    split_queries(c, int(args["--split"]))
    pipeline(c, int(args["--batches"]), int(args["--failing"]))
    c.s.sendall(msg(b"X"))
    d = Conn(ssl_first=True)
    simple(d, int(args["--after-ssl"]))
    d.s.sendall(msg(b"X"))
elif mode == "big":
    c = Conn()
    big_queries(c, int(args["--big"]), int(args["--rows"]))
    c.s.sendall(msg(b"X"))
elif mode == "before-agent":
    c = Conn()
    simple(c, int(args["--before"]))
    print("connected", flush=True)
    while not os.path.exists(args["--go"]):
        time.sleep(0.05)
    counts = {"ok": 0, "rows": 0}
    simple(c, int(args["--after"]))
    split_queries(c, 2)
    c.s.sendall(msg(b"X"))
json.dump(counts, open(args["--out"], "w"))
print("done", flush=True)
time.sleep(3600)  # stays alive: the agent names a process it can still see
)PY";

std::string raw_client(const ScratchDir &work)
{
	std::string path = work.path() + "/pg_raw.py";
	std::ofstream(path) << kRawClient;
	return path;
}

std::string raw_rules(const PgCluster &pg)
{
	return pg.rules() + "    - name: wire-pg-raw\n      cmdline: 'pg_raw\\.py --port " + std::to_string(pg.port()) + " '\n";
}

double framing(const std::vector<Sample> &s, const std::string &event)
{
	return sum(s, "aurum_stream_pgsql_framing_total", {{"event", event}});
}

} // namespace

// The raw-client cases run twice: with the loopback mirror (the sender's egress frames each
// segment for both ends, where the kernel allows) and with `--force-off sk_lookup` (each end frames
// its own), so that both paths meet the same exact counts.
class PgsqlFraming : public ::testing::TestWithParam<bool> {
protected:
	std::vector<std::string> agent_args() const
	{
		return GetParam() ? std::vector<std::string>{} : std::vector<std::string>{"--force-off", "sk_lookup"};
	}
};

INSTANTIATE_TEST_SUITE_P(LoopbackMirror, PgsqlFraming, ::testing::Values(true, false),
			 [](const auto &info) { return info.param ? "SenderFramesBoth" : "EachEndItsOwn"; });

// Headers cut across segments, pipelined extended batches with an error in the middle, an
// SSLRequest refused with 'N': counted exactly, on both sides, with no framing lost.
TEST_P(PgsqlFraming, FramingCasesCountedExactly)
{
	AURUM_REQUIRE_ROOT();
	PgCluster pg;
	Agent agent(raw_rules(pg), agent_args());
	wait_port_watched(agent, pg.port());
	auto s0 = agent.samples();
	ASSERT_EQ(value(s0, "aurum_probe_attached", {{"component", "stream"}, {"probe", "cgroup_skb/ingress"}, {"variant", "cgroup_skb_pgsql"}}),
		  1.0);

	constexpr int kSplit = 6, kBatches = 5, kAfterSsl = 4;
	ScratchDir work("aurum-wire-pgr");
	std::string out = work.path() + "/raw.json";
	Process client({"/usr/bin/python3", raw_client(work), "--port", std::to_string(pg.port()), "--mode", "framing", "--split",
			std::to_string(kSplit), "--batches", std::to_string(kBatches), "--failing", "2", "--after-ssl",
			std::to_string(kAfterSsl), "--out", out},
		       {}, true);
	ASSERT_TRUE(client.wait_line("done", 60s)) << "pg_raw.py did not finish";
	auto report = slurp(out);
	long ok = json_int(report, "ok"), div0 = json_int(report, "22");
	ASSERT_EQ(ok, kSplit + kBatches - 1 + kAfterSsl) << report;
	ASSERT_EQ(div0, 1) << report;
	ASSERT_EQ(json_int(report, "rows"), static_cast<long>(kSplit + (kBatches - 1) + kAfterSsl)) << report;

	auto s = scrape_until(
		agent,
		[&](const auto &s) {
			return count(s, "aurum_db_server_query_duration_seconds", "wire-pg", "") >= ok &&
			       count(s, "db_client_operation_duration_seconds", "wire-pg-raw", "") >= ok;
		},
		10s);
	std::this_thread::sleep_for(500ms);
	s = agent.samples();
	SCOPED_TRACE(dump(s));
	EXPECT_EQ(count(s, "aurum_db_server_query_duration_seconds", "wire-pg", ""), ok);
	EXPECT_EQ(count(s, "aurum_db_server_query_duration_seconds", "wire-pg", "22"), div0);
	EXPECT_EQ(count(s, "db_client_operation_duration_seconds", "wire-pg-raw", ""), ok);
	EXPECT_EQ(count(s, "db_client_operation_duration_seconds", "wire-pg-raw", "22"), div0);
	// The split queries each waited 3 x 20 ms between their first and last piece: on the server
	// they started at the first piece, so they took over 50 ms; the others are fast.
	EXPECT_EQ(sum(s, "aurum_db_server_query_duration_seconds_count", {{"service_name", "wire-pg"}}) -
			  sum(s, "aurum_db_server_query_duration_seconds_bucket", {{"service_name", "wire-pg"}, {"le", "0.05"}}),
		  kSplit);
	for (const char *ev : {"resync", "query_dropped", "gap_in_body", "step_limit", "load_failed", "gave_up_malformed"})
		EXPECT_EQ(framing(s, ev), framing(s0, ev)) << ev;
	EXPECT_EQ(sum(s, "aurum_stream_malformed_total", {{"protocol", "postgresql"}}),
		  sum(s0, "aurum_stream_malformed_total", {{"protocol", "postgresql"}}));
	check_loopback_mirror(s0, s, GetParam());
}

// Result sets of 50,000 rows (5.5 MB, thousands of segments each way). The server's side is exact.
// The client's side receives them through cgroup_skb ingress, which on loopback runs before the
// socket lock and on whichever CPU the sender was on: now and then two segments of one socket
// are framed at once or out of order. The framer then loses that direction's framing and
// resynchronises; the queries it could not report are counted (query_dropped, resync), never
// reported wrong.
TEST_P(PgsqlFraming, BigResultSets)
{
	AURUM_REQUIRE_ROOT();
	PgCluster pg;
	Agent agent(raw_rules(pg), agent_args());
	wait_port_watched(agent, pg.port());
	auto s0 = agent.samples();
	constexpr int kBig = 3, kRows = 50000;
	ScratchDir work("aurum-wire-pgr");
	std::string out = work.path() + "/raw.json";
	Process client({"/usr/bin/python3", raw_client(work), "--port", std::to_string(pg.port()), "--mode", "big", "--big",
			std::to_string(kBig), "--rows", std::to_string(kRows), "--out", out},
		       {}, true);
	ASSERT_TRUE(client.wait_line("done", 60s)) << "pg_raw.py did not finish";
	auto report = slurp(out);
	ASSERT_EQ(json_int(report, "ok"), kBig) << report;
	ASSERT_EQ(json_int(report, "rows"), static_cast<long>(kBig) * kRows) << report;
	auto s = scrape_until(
		agent, [&](const auto &s) { return count(s, "aurum_db_server_query_duration_seconds", "wire-pg", "") >= kBig; }, 10s);
	std::this_thread::sleep_for(500ms);
	s = agent.samples();
	SCOPED_TRACE(dump(s));
	EXPECT_EQ(count(s, "aurum_db_server_query_duration_seconds", "wire-pg", ""), kBig);
	double client_seen = count(s, "db_client_operation_duration_seconds", "wire-pg-raw", "");
	double dropped = framing(s, "query_dropped") - framing(s0, "query_dropped");
	double resyncs = framing(s, "resync") - framing(s0, "resync");
	EXPECT_LE(client_seen, kBig);
	EXPECT_GE(client_seen + dropped, kBig) << "a query neither reported nor counted as dropped";
	if (client_seen < kBig)
		EXPECT_GT(resyncs, 0) << "queries missing without a framing loss counted";
	EXPECT_EQ(framing(s, "step_limit"), framing(s0, "step_limit"));
	EXPECT_EQ(framing(s, "load_failed"), framing(s0, "load_failed"));
}

// A connection opened (and used) before the agent started is picked up at its next query.
TEST_P(PgsqlFraming, ConnectionOlderThanTheAgent)
{
	AURUM_REQUIRE_ROOT();
	PgCluster pg;
	ScratchDir work("aurum-wire-pgr");
	std::string out = work.path() + "/raw.json", go = work.path() + "/go";
	constexpr int kBefore = 5, kAfter = 7;
	Process client({"/usr/bin/python3", raw_client(work), "--port", std::to_string(pg.port()), "--mode", "before-agent",
			"--before", std::to_string(kBefore), "--after", std::to_string(kAfter), "--go", go, "--out", out},
		       {}, true);
	ASSERT_TRUE(client.wait_line("connected", 30s));
	Agent agent(raw_rules(pg), agent_args());
	wait_port_watched(agent, pg.port());
	auto s0 = agent.samples();
	std::ofstream(go) << "go";
	ASSERT_TRUE(client.wait_line("done", 30s));
	auto report = slurp(out);
	long ok = json_int(report, "ok");
	ASSERT_EQ(ok, kAfter + 2) << report;
	auto s = scrape_until(
		agent,
		[&](const auto &s) {
			return count(s, "aurum_db_server_query_duration_seconds", "wire-pg", "") >= ok &&
			       count(s, "db_client_operation_duration_seconds", "wire-pg-raw", "") >= ok;
		},
		10s);
	std::this_thread::sleep_for(500ms);
	s = agent.samples();
	SCOPED_TRACE(dump(s));
	EXPECT_EQ(count(s, "aurum_db_server_query_duration_seconds", "wire-pg", ""), ok);
	EXPECT_EQ(count(s, "db_client_operation_duration_seconds", "wire-pg-raw", ""), ok);
	EXPECT_EQ(framing(s, "resync"), framing(s0, "resync"));
}
