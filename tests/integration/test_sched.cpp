// SPDX-License-Identifier: Apache-2.0
// The foundation's signals against the kernel's own accounting in /proc: CPU time, resident
// memory, run-queue delay, and service naming by config rule and OTEL_SERVICE_NAME.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"
#include "identity/procfs.h"

using namespace aurum::test;
using namespace std::chrono_literals;

namespace {

// utime + stime of a whole process, seconds.
double proc_cpu_seconds(pid_t pid)
{
	std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
	std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	auto close = s.rfind(')');
	std::istringstream rest(s.substr(close + 2));
	std::vector<std::string> f;
	std::string t;
	while (rest >> t)
		f.push_back(t);
	// f[0] is field 3; utime is field 14, stime 15.
	return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Run-queue delay and arrivals on a CPU of every live thread of a process, from the kernel's own
// /proc/<pid>/task/<tid>/schedstat ("runtime run_delay pcount"); seconds and a count.
std::pair<double, double> proc_run_delay(pid_t pid)
{
	double delay = 0, arrivals = 0;
	std::string dir = "/proc/" + std::to_string(pid) + "/task";
	for (const auto &tid : std::filesystem::directory_iterator(dir)) {
		std::ifstream in(tid.path() / "schedstat");
		unsigned long long runtime = 0, d = 0, n = 0;
		if (in >> runtime >> d >> n) {
			delay += static_cast<double>(d) / 1e9;
			arrivals += static_cast<double>(n);
		}
	}
	return {delay, arrivals};
}

double vm_rss_bytes(pid_t pid)
{
	std::ifstream in("/proc/" + std::to_string(pid) + "/status");
	std::string line;
	while (std::getline(in, line))
		if (line.rfind("VmRSS:", 0) == 0)
			return std::stod(line.substr(6)) * 1024;
	return -1;
}

const char *kRules = R"(services:
  rules:
    - name: burner-rule
      cmdline: 'aurum_test_burner .*--tag rule'
)";

} // namespace

TEST(Sched, CpuTimeAndMemoryMatchProc)
{
	AURUM_REQUIRE_ROOT();
	Agent agent(kRules);
	Process burner({built_binary("aurum_test_burner"), "--threads", "3", "--burn-ms", "1500", "--mem-mb", "96", "--tag", "rule"},
		       {}, true);
	ASSERT_TRUE(burner.wait_line("done", 60s)) << "burner did not finish";
	// At rest (sleeping in pause()), every slice has been switched out and accounted.
	std::this_thread::sleep_for(200ms);
	double expected_cpu = proc_cpu_seconds(burner.pid());
	double expected_rss = vm_rss_bytes(burner.pid());
	auto s = agent.samples();
	auto cpu = value(s, "process_cpu_time_seconds_total", {{"service_name", "burner-rule"}});
	ASSERT_TRUE(cpu.has_value()) << "no CPU series for the service named by the rule";
	EXPECT_GT(expected_cpu, 4.0);
	EXPECT_NEAR(*cpu, expected_cpu, expected_cpu * 0.05) << "agent " << *cpu << " s, /proc " << expected_cpu << " s";
	auto rss = value(s, "process_memory_usage_bytes", {{"service_name", "burner-rule"}});
	ASSERT_TRUE(rss.has_value());
	EXPECT_GT(expected_rss, 96.0 * (1 << 20));
	EXPECT_NEAR(*rss, expected_rss, expected_rss * 0.05);
	EXPECT_EQ(value(s, "aurum_service_processes", {{"service_name", "burner-rule"}}), 1.0);
}

TEST(Sched, RunQueueDelayWithThreeBurnersOnTwoCpus)
{
	AURUM_REQUIRE_ROOT();
	Agent agent;
	auto started = std::chrono::steady_clock::now();
	Process burner({built_binary("aurum_test_burner"), "--threads", "3", "--burn-ms", "1000"},
		       {"OTEL_SERVICE_NAME=burner-otel"}, true);
	ASSERT_TRUE(burner.wait_line("done", 60s));
	double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
	auto s = agent.samples();
	auto count = value(s, "aurum_cpu_runqueue_latency_seconds_count", {{"service_name", "burner-otel"}});
	auto total = value(s, "aurum_cpu_runqueue_latency_seconds_sum", {{"service_name", "burner-otel"}});
	ASSERT_TRUE(count.has_value()) << "OTEL_SERVICE_NAME did not name the service";
	ASSERT_TRUE(total.has_value());
	EXPECT_GT(*count, 0);
	// Three runnable threads on two CPUs wait: more than nothing, less than all of their lifetime.
	EXPECT_GT(*total, 0.05);
	EXPECT_LT(*total, 3 * wall);
	// Buckets are cumulative and end with +Inf == count.
	auto buckets = select(s, "aurum_cpu_runqueue_latency_seconds_bucket", {{"service_name", "burner-otel"}});
	ASSERT_FALSE(buckets.empty());
	double prev = 0;
	for (const auto &b : buckets) {
		EXPECT_GE(b.value, prev);
		prev = b.value;
	}
	EXPECT_EQ(prev, *count);
}

TEST(Sched, ExitedProcessKeepsItsCpuTime)
{
	AURUM_REQUIRE_ROOT();
	Agent agent;
	double expected = 0;
	{
		Process burner({built_binary("aurum_test_burner"), "--threads", "2", "--burn-ms", "800"},
			       {"OTEL_SERVICE_NAME=burner-gone"}, true);
		ASSERT_TRUE(burner.wait_line("done", 60s));
		std::this_thread::sleep_for(100ms);
		expected = proc_cpu_seconds(burner.pid());
		agent.scrape(); // the agent has seen it alive
	}
	// Exited and reaped: the agent's housekeeping folds the final figures and frees the entry.
	std::this_thread::sleep_for(3s);
	auto s = agent.samples();
	auto cpu = value(s, "process_cpu_time_seconds_total", {{"service_name", "burner-gone"}});
	ASSERT_TRUE(cpu.has_value());
	std::printf("exited process: reported %.6f s, /proc %.6f s\n", *cpu, expected);
	// The same 5% as a live process. (Until CPU time became deltas of the kernel's own
	// se.sum_exec_runtime, an exited process once came out 6% short: time between a switch-in
	// and a switch-out was lost whenever the thread's state was missing at the switch-in.)
	EXPECT_NEAR(*cpu, expected, expected * 0.05);
	EXPECT_EQ(value(s, "aurum_service_processes", {{"service_name", "burner-gone"}}), 0.0);
}

// Threads that burn CPU and then stay alive, asleep: with task storage their CPU time and waits
// are read from the threads themselves at each poll (sched.bpf.c pending_iter), as no switch adds
// them to the process until a thread dies. Python's GIL hands over between the burning threads
// every 5 ms, so they also wake each other. Their waits against the kernel's own run-queue delay
// (/proc/<pid>/task/*/schedstat): where the agent reads that figure (feature sched_info) the sums
// agree to 1%; timed from wakeups instead (`--force-off sched_info`, or a kernel without it) the
// agent's clock and the run queue's differ a little and every wait starts at the wakeup's
// tracepoint, so 20%.
class SchedWaits : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Sched, SchedWaits, ::testing::Values(true, false),
			 [](const auto &info) { return info.param ? "KernelRunDelay" : "TimedFromWakeups"; });

TEST_P(SchedWaits, LiveThreadsCpuTimeAndWaitsMatchProc)
{
	AURUM_REQUIRE_ROOT();
	Agent agent("", GetParam() ? std::vector<std::string>{} : std::vector<std::string>{"--force-off", "sched_info"});
	auto s0 = agent.samples();
	bool kernel_delay =
		value(s0, "aurum_probe_attached", {{"component", "sched"}, {"probe", "sched_wakeup"}, {"variant", "sched_info"}}) == 1.0;
	if (GetParam() && !kernel_delay)
		std::printf("this kernel has no usable sched_info: waits are timed from wakeups in both runs\n");
	const char *script = R"(
import signal, threading, time
def burn(done):
    start = time.thread_time()
    while time.thread_time() - start < 0.5:
        pass
    done.set()
    threading.Event().wait()
events = [threading.Event() for _ in range(3)]
for e in events:
    threading.Thread(target=burn, args=(e,), daemon=True).start()
for e in events:
    e.wait()
print('done', flush=True)
signal.pause()
)";
	Process py({"/usr/bin/python3", "-c", script}, {"OTEL_SERVICE_NAME=sched-live"}, true);
	ASSERT_TRUE(py.wait_line("done", 60s));
	std::this_thread::sleep_for(200ms);
	double expected = proc_cpu_seconds(py.pid());
	auto s = agent.samples();
	auto cpu = value(s, "process_cpu_time_seconds_total", {{"service_name", "sched-live"}});
	ASSERT_TRUE(cpu.has_value());
	std::printf("live threads: reported %.6f s, /proc %.6f s\n", *cpu, expected);
	EXPECT_GT(expected, 1.4);
	EXPECT_NEAR(*cpu, expected, expected * 0.05);
	auto count = value(s, "aurum_cpu_runqueue_latency_seconds_count", {{"service_name", "sched-live"}});
	auto total = value(s, "aurum_cpu_runqueue_latency_seconds_sum", {{"service_name", "sched-live"}});
	ASSERT_TRUE(count.has_value());
	ASSERT_TRUE(total.has_value());
	EXPECT_GT(*count, 0);
	EXPECT_GT(*total, 0);
	auto [delay, arrivals] = proc_run_delay(py.pid());
	std::printf("run-queue delay: reported %.6f s over %.0f waits, the kernel %.6f s over %.0f arrivals\n", *total, *count,
		    delay, arrivals);
	EXPECT_GT(delay, 0);
	EXPECT_NEAR(*total, delay, delay * (kernel_delay ? 0.01 : 0.2));
	if (kernel_delay)
		EXPECT_NEAR(*count, arrivals, std::max(2.0, arrivals * 0.01)); // one wait an arrival
	else
		EXPECT_LE(*count, arrivals);
	auto buckets = select(s, "aurum_cpu_runqueue_latency_seconds_bucket", {{"service_name", "sched-live"}});
	ASSERT_FALSE(buckets.empty());
	EXPECT_EQ(buckets.back().value, *count);
	// The threads sleep: the next scrape folds the same figures again, not twice, never less.
	auto s2 = agent.samples();
	auto cpu2 = value(s2, "process_cpu_time_seconds_total", {{"service_name", "sched-live"}});
	auto count2 = value(s2, "aurum_cpu_runqueue_latency_seconds_count", {{"service_name", "sched-live"}});
	ASSERT_TRUE(cpu2.has_value());
	ASSERT_TRUE(count2.has_value());
	EXPECT_GE(*cpu2, *cpu);
	EXPECT_NEAR(*cpu2, expected, expected * 0.05);
	EXPECT_GE(*count2, *count);
	EXPECT_LT(*count2, 2 * *count);
}

// An agent that starts among many live threads meets them all at once. It used to create their
// task storage in its first switches, with interrupts off, where some creations failed: a start
// next to 400 napping threads lost one or two waits (thread_storage_unavailable) in 6 of 10
// starts. Now storage is seeded before the hooks attach; five starts, none may lose one.
TEST(Sched, StartAmongManyLiveThreadsLosesNothing)
{
	AURUM_REQUIRE_ROOT();
	Process napper({built_binary("aurum_test_burner"), "--threads", "400", "--burn-ms", "0", "--nap-ms", "20"},
		       {"OTEL_SERVICE_NAME=sched-napper"}, true);
	ASSERT_TRUE(napper.wait_line("done", 60s)) << "napper did not start its threads";
	for (int start = 0; start < 5; start++) {
		Agent agent;
		std::this_thread::sleep_for(300ms);
		agent.samples();
		std::this_thread::sleep_for(300ms);
		auto s = agent.samples();
		for (const auto &l : select(s, "aurum_lost_events_total", {{"component", "sched"}}))
			EXPECT_EQ(l.value, 0.0) << "start " << start << ": " << l.labels.at("reason");
		// The napping threads' waits are measured from the start.
		auto waits = value(s, "aurum_cpu_runqueue_latency_seconds_count", {{"service_name", "sched-napper"}});
		ASSERT_TRUE(waits.has_value()) << "start " << start;
		EXPECT_GT(*waits, 400.0) << "start " << start;
	}
}

TEST(Agent, HealthProbesAndSelfMetrics)
{
	AURUM_REQUIRE_ROOT();
	Agent agent;
	auto s = agent.samples();
	EXPECT_EQ(value(s, "aurum_probe_attached", {{"probe", "sched_switch"}}), 1.0);
	EXPECT_TRUE(value(s, "aurum_build_info").has_value());
	// Nothing lost for want of room (a full map, ringbuf or storage). Losses that name traffic
	// older than the agent are not its health: a reset or retransmit on a connection whose owner
	// it never saw, a response whose request went by before it started. CI runs this next to the
	// other tests' servers, and one such loss made a run fail.
	for (const auto &l : select(s, "aurum_lost_events_total")) {
		const std::string &reason = l.labels.at("reason");
		bool before_start = reason == "socket_owner_unknown" || reason == "response_unmatched" ||
				    reason == "owner_unknown";
		if (l.value > 0)
			std::printf("lost: component=%s reason=%s %g\n", l.labels.at("component").c_str(), reason.c_str(),
				    l.value);
		if (!before_start)
			EXPECT_EQ(l.value, 0.0) << l.labels.at("component") << " " << reason;
	}
	EXPECT_GT(select(s, "aurum_bpf_program_runs_total").size(), 0u);
	// SIGTERM: detach and exit 0.
	EXPECT_EQ(agent.process().stop(SIGTERM, 10s), 0);
}

TEST(Agent, BadConfigExitsTwoNamingTheLine)
{
	AURUM_REQUIRE_ROOT();
	char path[] = "/tmp/aurum-bad-config-XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	const std::string bad = "services:\n  rules:\n    - name: x\n      exe_name: y\n";
	ASSERT_EQ(write(fd, bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
	close(fd);
	Process p({AURUM_AGENT_PATH, "--config.file", path, "--web.listen-address", "127.0.0.1:" + std::to_string(free_tcp_port())});
	EXPECT_EQ(p.stop(0, 10s) , 2);
	unlink(path);
}

TEST(Agent, ForcedFallbacksStillCountCpu)
{
	AURUM_REQUIRE_ROOT();
	// raw_tp + thread hash: the path of kernels without tp_btf / task storage.
	Agent agent("", {"--force-off", "tp_btf,task_storage"});
	auto s0 = agent.samples();
	EXPECT_EQ(value(s0, "aurum_probe_attached", {{"probe", "sched_switch"}, {"variant", "raw_tp+hash"}}), 1.0);
	Process burner({built_binary("aurum_test_burner"), "--threads", "2", "--burn-ms", "700"},
		       {"OTEL_SERVICE_NAME=burner-rawtp"}, true);
	ASSERT_TRUE(burner.wait_line("done", 60s));
	std::this_thread::sleep_for(200ms);
	double expected = proc_cpu_seconds(burner.pid());
	auto cpu = value(agent.samples(), "process_cpu_time_seconds_total", {{"service_name", "burner-rawtp"}});
	ASSERT_TRUE(cpu.has_value());
	EXPECT_NEAR(*cpu, expected, expected * 0.05);
}

TEST(Agent, MissingCapabilityIsNamedInOneLine)
{
	AURUM_REQUIRE_ROOT();
	// Root without CAP_BPF and CAP_SYS_ADMIN: refuse in one line naming the capability, exit 1.
	std::string cmd = std::string("exec ") + AURUM_AGENT_PATH + " --web.listen-address 127.0.0.1:" +
			  std::to_string(free_tcp_port()) + " 2>&1";
	Process p({"capsh", "--drop=cap_bpf,cap_sys_admin", "--", "-c", cmd}, {}, true);
	EXPECT_TRUE(p.wait_line("aurum: missing capability CAP_BPF (or CAP_SYS_ADMIN): needed to load BPF programs; "
				"run as root or grant CAP_BPF,CAP_PERFMON,CAP_SYS_PTRACE,CAP_SYS_RESOURCE,CAP_NET_ADMIN",
				20s));
	EXPECT_EQ(p.stop(0, 10s), 1);
}
