// SPDX-License-Identifier: Apache-2.0
// The service directory over a fake /proc: pid reuse, overflow to _other, TTL expiry.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "identity/services.h"

using namespace aurum::identity;
namespace fs = std::filesystem;

namespace {

class FakeProc {
public:
	FakeProc() : root_(fs::temp_directory_path() / ("aurum-fakeproc-" + std::to_string(::getpid()) + "-" + std::to_string(n_++)))
	{
		fs::create_directories(root_);
	}
	~FakeProc() { fs::remove_all(root_); }
	// state 'Z': exited and not reaped yet (the kernel empties its cmdline: pass no argv).
	void add(pid_t pid, const std::string &comm, std::uint64_t start_ticks, const std::vector<std::string> &argv,
		 char state = 'S')
	{
		auto d = root_ / std::to_string(pid);
		fs::create_directories(d);
		std::ofstream(d / "stat") << pid << " (" << comm << ") " << state << " 1 " << pid << " " << pid
					  << " 0 -1 4194560 0 0 0 0 1 1 0 0 20 0 1 0 " << start_ticks << " 1000 10 0\n";
		std::string cmd;
		for (const auto &a : argv)
			cmd += a + '\0';
		std::ofstream(d / "cmdline") << cmd;
	}
	void remove(pid_t pid) { fs::remove_all(root_ / std::to_string(pid)); }
	// A new process under an old pid: its directory is a new inode, as in procfs.
	void replace(pid_t pid, const std::string &comm, std::uint64_t start_ticks, const std::vector<std::string> &argv)
	{
		auto old = root_ / (std::to_string(pid) + ".old");
		fs::rename(root_ / std::to_string(pid), old);
		add(pid, comm, start_ticks, argv);
		fs::remove_all(old);
	}
	std::string root() const { return root_.string(); }

private:
	static inline int n_ = 0;
	fs::path root_;
};

aurum_proc_key key(pid_t pid, std::uint64_t start_ticks)
{
	const std::uint64_t ns_per_tick = 1000000000ULL / static_cast<std::uint64_t>(ProcFs::clock_ticks());
	return aurum_proc_key{static_cast<__u32>(pid), 0, start_ticks * ns_per_tick + 12345};
}

ServiceDirectory directory(const FakeProc &p, unsigned max_services, int ttl_seconds)
{
	Resolver r({}, KubeDirectory("/nonexistent"), nullptr);
	return ServiceDirectory(ProcFs(p.root()), std::move(r), {max_services, std::chrono::seconds(ttl_seconds)});
}

// A directory with the service rules of a config file's text, refreshed once.
ServiceDirectory directory_with_rules(const FakeProc &p, const char *yaml)
{
	auto cfg = aurum::config::parse(yaml, "t.yaml");
	Resolver r(cfg.rules, KubeDirectory("/nonexistent"), nullptr);
	ServiceDirectory d(ProcFs(p.root()), std::move(r), {10, std::chrono::seconds(60)});
	d.refresh(Clock::now());
	return d;
}

std::string name_of(const ServiceDirectory &d, ServiceId id)
{
	auto *s = d.find(id);
	return s ? s->identity.name : "";
}

} // namespace

TEST(ServiceDirectory, NamesProcessesAndCountsThem)
{
	FakeProc p;
	p.add(100, "python3", 500, {"python3", "shop_api.py"});
	p.add(101, "python3", 501, {"python3", "shop_api.py"});
	p.add(200, "nginx", 600, {"nginx"});
	auto d = directory(p, 10, 60);
	auto now = Clock::now();
	d.refresh(now);
	auto shop = d.service_of(key(100, 500), "python3", 0);
	EXPECT_EQ(name_of(d, shop), "shop_api");
	EXPECT_EQ(d.service_of(key(101, 501), "python3", 0), shop);
	EXPECT_EQ(d.find(shop)->live_processes, 2u);
	EXPECT_EQ(d.pids_of(shop).size(), 2u);
	EXPECT_TRUE(d.alive(key(100, 500)));
}

TEST(ServiceDirectory, ReusedPidIsANewProcess)
{
	FakeProc p;
	p.add(100, "python3", 500, {"python3", "shop_api.py"});
	auto d = directory(p, 10, 60);
	d.refresh(Clock::now());
	auto old_key = key(100, 500);
	EXPECT_EQ(name_of(d, d.service_of(old_key, "python3", 0)), "shop_api");
	// pid 100 exits and is reused by another program.
	p.replace(100, "nginx", 900, {"nginx"});
	d.refresh(Clock::now());
	EXPECT_FALSE(d.alive(old_key)) << "the old (pid, start) is gone";
	EXPECT_EQ(name_of(d, d.service_of(key(100, 900), "nginx", 0)), "nginx");
	// The kernel may still report the old key's last figures: named by its own comm, not nginx.
	EXPECT_EQ(name_of(d, d.service_of(old_key, "python3", 0)), "python3");
}

TEST(ServiceDirectory, ExecRenamesTheProcess)
{
	FakeProc p;
	p.add(100, "sh", 500, {"sh", "-c", "exec python3 mes_api.py"});
	auto d = directory(p, 10, 60);
	d.refresh(Clock::now());
	EXPECT_EQ(name_of(d, d.service_of(key(100, 500), "sh", 0)), "sh");
	p.add(100, "python3", 500, {"python3", "mes_api.py"}); // same pid and start: execve
	EXPECT_EQ(name_of(d, d.service_of(key(100, 500), "python3", 0)), "sh") << "no exec seen yet";
	EXPECT_EQ(name_of(d, d.service_of(key(100, 500), "python3", 1)), "mes_api");
}

TEST(ServiceDirectory, OverflowGoesToOtherAndIsCounted)
{
	FakeProc p;
	for (int i = 0; i < 5; i++)
		p.add(100 + i, "prog" + std::to_string(i), 500, {"prog" + std::to_string(i)});
	auto d = directory(p, 3, 60);
	d.refresh(Clock::now());
	std::set<std::string> names;
	for (const auto *s : d.services())
		names.insert(s->identity.name);
	EXPECT_EQ(names.size(), 4u) << "three services and _other";
	EXPECT_TRUE(names.count("_other"));
	EXPECT_EQ(d.overflowed_processes(), 2u);
}

TEST(ServiceDirectory, ServiceWithoutProcessesExpiresAfterTtl)
{
	FakeProc p;
	p.add(100, "worker", 500, {"worker"});
	auto d = directory(p, 10, 60);
	auto t0 = Clock::now();
	d.refresh(t0);
	auto id = d.service_of(key(100, 500), "worker", 0);
	p.remove(100);
	d.refresh(t0 + std::chrono::seconds(30));
	ASSERT_TRUE(d.exists(id)) << "kept for the TTL";
	EXPECT_EQ(d.find(id)->live_processes, 0u);
	d.refresh(t0 + std::chrono::seconds(91));
	EXPECT_FALSE(d.exists(id)) << "forgotten after the TTL";
}

TEST(ServiceDirectory, ProcessGoneBeforeItWasSeenIsNamedByComm)
{
	FakeProc p;
	auto d = directory(p, 10, 60);
	d.refresh(Clock::now());
	auto id = d.service_of(key(4242, 777), "short-lived", 0);
	EXPECT_EQ(name_of(d, id), "short-lived");
	EXPECT_FALSE(d.alive(key(4242, 777)));
	EXPECT_EQ(d.service_of(key(4242, 777), "short-lived", 0), id) << "stable while its figures are folded";
}

TEST(ServiceDirectory, GoneForkChildIsItsParentsUnlessItExeced)
{
	FakeProc p;
	p.add(100, "httpd", 500, {"httpd", "-f", "-p", "8080"});
	auto d = directory(p, 10, 60);
	d.refresh(Clock::now());
	auto parent = d.service_of(key(100, 500), "httpd", 0);
	EXPECT_EQ(d.service_of(key(4242, 777), "httpd", 0, 100), parent) << "a forked worker, gone already";
	EXPECT_NE(d.service_of(key(4243, 778), "sh", 1, 100), parent) << "it called execve: its own program";
	EXPECT_EQ(name_of(d, d.service_of(key(4244, 779), "x", 0, 999)), "x") << "unknown parent: its comm";
}

TEST(ServiceDirectory, GoneProcessIsNamedByTheCommandLineTheKernelKept)
{
	FakeProc p;
	auto d = directory_with_rules(p, "services:\n  rules:\n    - name: nightly-report\n      cmdline: 'report\\.py --nightly'\n");
	const char args[] = "/usr/bin/python3\0report.py\0--nightly";
	EXPECT_EQ(name_of(d, d.service_of(key(5000, 900), "python3", 1, 1, std::string_view(args, sizeof args - 1))),
		  "nightly-report");
	const char other[] = "python3\0/srv/jobs/cleanup.py";
	EXPECT_EQ(name_of(d, d.service_of(key(5001, 901), "python3", 1, 1, std::string_view(other, sizeof other - 1))),
		  "cleanup") << "interpreter naming from the kept command line";
}

TEST(ServiceDirectory, ZombieIsGoneAndNamedByTheCommandLineTheKernelKept)
{
	// Exited within ms, not reaped yet, never seen alive by a refresh: its /proc has stat but no
	// command line. Resolving it there named it by its comm, not by the rule (a fake PostgreSQL's
	// queries went to "postgres" instead of the rule's service).
	FakeProc p;
	auto d = directory_with_rules(p, "services:\n  rules:\n    - name: fake-pg\n      cmdline: 'aurum-fake-pg'\n");
	p.add(5000, "postgres", 900, {}, 'Z');
	const char args[] = "/tmp/aurum-fake-pg-1/postgres\0-c\0...";
	auto id = d.service_of(key(5000, 900), "postgres", 1, 1, std::string_view(args, sizeof args - 1));
	EXPECT_EQ(name_of(d, id), "fake-pg") << "the sched component: the command line its map kept";
	EXPECT_FALSE(d.alive(key(5000, 900)));
	EXPECT_EQ(d.find(id)->live_processes, 0u) << "not counted as a live process";
	EXPECT_EQ(d.service_of(key(5000, 900), "postgres", 0), id) << "the stream and net components: same service";
	p.add(5001, "postgres", 901, {}, 'Z');
	EXPECT_EQ(name_of(d, d.service_of(key(5001, 901), "", 0)), "postgres") << "no comm given: its stat's";
	d.refresh(Clock::now());
	EXPECT_EQ(d.service_of(key(5000, 900), "postgres", 0), id) << "stable across a refresh";
}
