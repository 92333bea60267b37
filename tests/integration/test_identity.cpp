// SPDX-License-Identifier: Apache-2.0
// Service identity from a config rule that names a listening port: the process is found through
// its socket inodes in its namespace's TCP table, with no help from its name or environment.
#include <thread>

#include "harness.h"

using namespace aurum::test;
using namespace std::chrono_literals;

TEST(Identity, PortRuleNamesTheListener)
{
	AURUM_REQUIRE_ROOT();
	int port = free_tcp_port();
	Agent agent("services:\n  rules:\n    - name: port-named\n      port: " + std::to_string(port) + "\n");
	// A listener on that port and a second, identical process that listens elsewhere: only
	// the first is the service; the other falls back to its executable name.
	const std::string script =
		"import socket, sys, time\n"
		"s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
		"s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
		"print('ready', flush=True)\n"
		"t = time.process_time()\n"
		"while time.process_time() - t < 0.3: pass\n"
		"time.sleep(60)\n";
	int other_port = free_tcp_port();
	Process named({"/usr/bin/python3", "-c", script, std::to_string(port)}, {}, true);
	Process other({"/usr/bin/python3", "-c", script, std::to_string(other_port)}, {}, true);
	ASSERT_TRUE(named.wait_line("ready", 30s));
	ASSERT_TRUE(other.wait_line("ready", 30s));
	std::this_thread::sleep_for(1500ms);
	auto s = agent.samples();
	EXPECT_EQ(value(s, "aurum_service_processes", {{"service_name", "port-named"}}), 1.0);
	auto cpu = value(s, "process_cpu_time_seconds_total", {{"service_name", "port-named"}});
	ASSERT_TRUE(cpu.has_value());
	EXPECT_GE(*cpu, 0.25);
	double by_exe = 0; // python3.11 or whichever version /usr/bin/python3 is
	for (const auto &x : select(s, "aurum_service_processes"))
		if (x.labels.at("service_name").rfind("python", 0) == 0)
			by_exe += x.value;
	EXPECT_GE(by_exe, 1.0);
}
