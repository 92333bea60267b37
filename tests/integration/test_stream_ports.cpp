// SPDX-License-Identifier: Apache-2.0
// A database that starts listening while the agent runs is parsed from its first connection's
// first byte: net's LISTEN hook marks the port in the kernel at listen(), not at the agent's next
// housekeeping pass (2 s later, too late for a client that connects at once, as RabbitMQ clients
// do after a broker restart, declaring their dead-letter exchanges in their first frames). And
// a server gone before any pass saw it alive is still named by its config rule, like sched's.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.h"

using namespace aurum::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A minimal PostgreSQL server and its client in one process: startup, N simple queries, Terminate,
// all within milliseconds of listen(). Run by a copy of the Python interpreter named "postgres", so
// that the process's name is the one the agent recognises.
const char *kScript = R"(
import socket, struct, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
def recvall(s, k):
    b = b''
    while len(b) < k:
        c = s.recv(k - len(b))
        if not c:
            return b''
        b += c
    return b
def msg(t, body):
    return t + struct.pack('!I', 4 + len(body)) + body
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', port))
srv.listen()
def serve():
    c, _ = srv.accept()
    k = struct.unpack('!I', recvall(c, 4))[0]
    recvall(c, k - 4)
    c.sendall(msg(b'R', struct.pack('!I', 0)) + msg(b'Z', b'I'))
    while True:
        h = recvall(c, 5)
        if not h:
            break
        body = recvall(c, struct.unpack('!I', h[1:])[0] - 4)
        if h[:1] == b'X':
            break
        if h[:1] == b'Q':
            c.sendall(msg(b'C', b'SELECT 1\0') + msg(b'Z', b'I'))
    c.close()
t = threading.Thread(target=serve)
t.start()
cl = socket.create_connection(('127.0.0.1', port))
def until_ready():
    while True:
        h = recvall(cl, 5)
        recvall(cl, struct.unpack('!I', h[1:])[0] - 4)
        if h[:1] == b'Z':
            return
params = b'user\0test\0database\0test\0\0'
cl.sendall(struct.pack('!II', 8 + len(params), 196608) + params)
until_ready()
for i in range(n):
    cl.sendall(msg(b'Q', b'SELECT 1\0'))
    until_ready()
cl.sendall(msg(b'X', b''))
cl.close()
t.join()
print('done', flush=True)
)";

} // namespace

TEST(StreamPorts, DatabasePortMarkedAtListenNotAtTheNextPass)
{
	AURUM_REQUIRE_ROOT();
	fs::path dir = fs::temp_directory_path() / ("aurum-fake-pg-" + std::to_string(::getpid()));
	fs::create_directories(dir);
	fs::path exe = dir / "postgres";
	fs::copy_file(fs::canonical("/usr/bin/python3"), exe, fs::copy_options::overwrite_existing);
	::chmod(exe.c_str(), 0755);
	Agent agent("services:\n  rules:\n    - name: fake-pg\n      cmdline: 'aurum-fake-pg'\n");
	const int queries = 25;
	int port = free_tcp_port();
	// Started right after a scrape (which runs a pass): the whole conversation is over in
	// milliseconds, long before the next pass.
	agent.samples();
	Process pg({exe.string(), "-c", kScript, std::to_string(port), std::to_string(queries)}, {}, true);
	ASSERT_TRUE(pg.wait_line("done", 30s));
	// It exits within ms of its last query, before any pass saw it alive, and is left unreaped
	// (reaped when `pg` goes out of scope), as a backend is until its postmaster's SIGCHLD
	// handler runs: a zombie's /proc has no command line, yet its queries must go to the rule's
	// service (from the command line the kernel kept at execve), not to its comm "postgres".
	std::this_thread::sleep_for(2500ms); // a housekeeping pass (every 2 s) folds the figures
	auto s = agent.samples();
	// Which services the queries went to, for the failure message.
	auto where = [&](const std::string &name) {
		std::string o;
		for (const auto &x : select(s, name))
			o += " " + x.labels.at("service_name") + "=" + std::to_string(static_cast<long>(x.value));
		return name + ":" + (o.empty() ? " none" : o);
	};
	EXPECT_EQ(value(s, "aurum_db_server_query_duration_seconds_count", {{"service_name", "fake-pg"}}), queries)
		<< where("aurum_db_server_query_duration_seconds_count");
	EXPECT_EQ(value(s, "db_client_operation_duration_seconds_count", {{"service_name", "fake-pg"}}), queries)
		<< where("db_client_operation_duration_seconds_count");
	EXPECT_GT(value(s, "process_cpu_time_seconds_total", {{"service_name", "fake-pg"}}).value_or(-1), 0)
		<< "the sched component names it by the rule too";
	fs::remove_all(dir);
}
