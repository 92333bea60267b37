// SPDX-License-Identifier: Apache-2.0
// /proc parsing, mountinfo, cgroup memory limits, and pid/start-time matching.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "collectors/memory.h"
#include "core/features.h"
#include "identity/procfs.h"
#include "identity/services.h"

using namespace aurum;
using namespace aurum::identity;
namespace fs = std::filesystem;

TEST(ProcStat, CommWithSpacesAndParentheses)
{
	auto st = parse_stat("4242 (my (weird) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 12 34 0 0 20 0 3 0 98765 1000 10 18446744073709551615");
	ASSERT_TRUE(st);
	EXPECT_EQ(st->pid, 4242);
	EXPECT_EQ(st->comm, "my (weird) prog");
	EXPECT_EQ(st->state, 'S');
	EXPECT_EQ(st->ppid, 1);
	EXPECT_EQ(st->start_ticks, 98765u);
	EXPECT_FALSE(st->kthread);
}

TEST(ProcStat, KernelThreadFlag)
{
	auto st = parse_stat("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 18446744073709551615");
	ASSERT_TRUE(st);
	EXPECT_TRUE(st->kthread);
}

TEST(ProcStat, Truncated)
{
	EXPECT_FALSE(parse_stat("12 (x) S 1 2"));
	EXPECT_FALSE(parse_stat("garbage"));
	EXPECT_FALSE(parse_stat(""));
}

TEST(ProcStatus, RssLines)
{
	auto m = parse_status_memory("Name:\tx\nVmRSS:\t  1000 kB\nRssAnon:\t 600 kB\nRssFile:\t 300 kB\nRssShmem:\t 100 kB\n");
	EXPECT_EQ(m.vm_rss, 1000u * 1024);
	EXPECT_EQ(m.rss_anon + m.rss_file + m.rss_shmem, m.vm_rss);
}

TEST(StartTime, KernelNanosecondsMatchProcTicks)
{
	long hz = ProcFs::clock_ticks();
	std::uint64_t ticks = 123456;
	std::uint64_t ns = ticks * (1000000000ULL / static_cast<std::uint64_t>(hz)) + 999;
	EXPECT_TRUE(ServiceDirectory::same_start(ns, ticks));
	EXPECT_FALSE(ServiceDirectory::same_start(ns, ticks + 1));
	EXPECT_FALSE(ServiceDirectory::same_start(ns + 1000000000ULL, ticks));
}

TEST(ProcFs, ThisProcessReadsBack)
{
	ProcFs p;
	auto info = p.info(::getpid());
	ASSERT_TRUE(info);
	EXPECT_EQ(info->stat.pid, ::getpid());
	EXPECT_EQ(info->exe, "aurum_unit_tests");
	EXPECT_FALSE(info->argv.empty());
	auto m = p.memory(::getpid());
	ASSERT_TRUE(m);
	EXPECT_GT(m->vm_rss, 0u);
}

TEST(Mountinfo, FindsCgroupMounts)
{
	const std::string mi =
		"25 30 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
		"36 35 0:30 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
		"40 35 0:34 / /sys/fs/cgroup/memory rw,relatime shared:13 - cgroup cgroup rw,memory\n"
		"41 35 0:35 / /sys/fs/cgroup/cpu\\040x rw - cgroup cgroup rw,cpu\n"
		"50 25 0:12 / /sys/kernel/tracing rw - tracefs tracefs rw\n";
	EXPECT_EQ(find_cgroup2_mount(mi), "/sys/fs/cgroup/unified");
	EXPECT_EQ(find_mount(mi, "tracefs"), "/sys/kernel/tracing");
	EXPECT_EQ(find_mount(mi, "bpf"), "");
	auto m = find_cgroup_mounts(mi);
	EXPECT_EQ(m.v2, "/sys/fs/cgroup/unified");
	EXPECT_EQ(m.v1_memory, "/sys/fs/cgroup/memory");
}

TEST(MemoryLimit, SmallestOnThePathV2AndV1)
{
	auto root = fs::temp_directory_path() / ("aurum-cg-" + std::to_string(::getpid()));
	fs::create_directories(root / "v2/kubepods/pod1/c1");
	std::ofstream(root / "v2/memory.max") << "max\n";
	std::ofstream(root / "v2/kubepods/memory.max") << "8589934592\n";
	std::ofstream(root / "v2/kubepods/pod1/memory.max") << "536870912\n";
	std::ofstream(root / "v2/kubepods/pod1/c1/memory.max") << "max\n";
	CgroupMounts m{(root / "v2").string(), ""};
	EXPECT_EQ(cgroup_memory_limit(m, "0::/kubepods/pod1/c1\n"), 536870912u);
	EXPECT_EQ(cgroup_memory_limit(m, "0::/\n"), std::nullopt);

	fs::create_directories(root / "v1/docker/abc");
	std::ofstream(root / "v1/memory.limit_in_bytes") << "9223372036854771712\n";
	std::ofstream(root / "v1/docker/abc/memory.limit_in_bytes") << "268435456\n";
	CgroupMounts h{(root / "v2").string(), (root / "v1").string()};
	// Hybrid: the v1 memory controller's limit is the one enforced.
	EXPECT_EQ(cgroup_memory_limit(h, "7:memory:/docker/abc\n0::/kubepods/pod1/c1\n"), 268435456u);
	EXPECT_EQ(cgroup_memory_limit(h, "7:memory:/\n0::/\n"), std::nullopt) << "v1 'unlimited' is not a limit";
	fs::remove_all(root);
}

namespace {

// A fake /proc/<pid> with a TCP table, socket fds and a network-namespace file.
void fake_pid(const fs::path &root, int pid, const fs::path &netns, const std::string &tcp,
	      const std::vector<unsigned long> &socket_inodes)
{
	fs::path dir = root / std::to_string(pid);
	fs::create_directories(dir / "net");
	fs::create_directories(dir / "fd");
	fs::create_directories(dir / "ns");
	std::ofstream(dir / "net" / "tcp") << tcp;
	std::ofstream(dir / "net" / "tcp6") << "  sl  local_address remote_address st\n";
	fs::create_symlink(netns, dir / "ns" / "net");
	int fd = 3;
	for (auto ino : socket_inodes)
		fs::create_symlink("socket:[" + std::to_string(ino) + "]", dir / "fd" / std::to_string(fd++));
	fs::create_symlink("/dev/null", dir / "fd" / std::to_string(fd));
}

const char *kTcpHeader =
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

} // namespace

TEST(ProcFs, ListeningPortsFromSocketInodesAndOneTablePerNamespace)
{
	fs::path root = fs::temp_directory_path() / ("aurum-procfs-" + std::to_string(::getpid()));
	fs::remove_all(root);
	fs::create_directories(root);
	std::ofstream(root / "netns-a") << "a";
	std::ofstream(root / "netns-b") << "b";
	std::string tcp = std::string(kTcpHeader) +
		// listening on 0.0.0.0:8080 (inode 111) and 127.0.0.1:5432 (222); an established
		// socket (333, state 01) and a TIME_WAIT one (inode 0) are not listeners.
		"   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0\n"
		"   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 222 1 0000000000000000 100 0 0 10 0\n"
		"   2: 0100007F:1538 0100007F:A000 01 00000000:00000000 00:00000000 00000000   105        0 333 1 0000000000000000 20 4 30 10 -1\n"
		"   3: 0100007F:1538 0100007F:A002 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000\n"
		"   4: garbage\n";
	fake_pid(root, 10, root / "netns-a", tcp, {111, 333});
	fake_pid(root, 11, root / "netns-a", std::string(kTcpHeader), {222});
	fake_pid(root, 12, root / "netns-b", std::string(kTcpHeader), {222});
	ProcFs p(root.string());
	EXPECT_EQ(p.listening_ports(10), (std::set<std::uint16_t>{8080}));
	// Same namespace as pid 10: its (here empty) copy of the table is not read again within a
	// second, the namespace's table is what counts.
	EXPECT_EQ(p.listening_ports(11), (std::set<std::uint16_t>{5432}));
	// Another namespace: its own table, where inode 222 is not listening.
	EXPECT_TRUE(p.listening_ports(12).empty());
	EXPECT_TRUE(p.listening_ports(99).empty()); // no such pid
	fs::remove_all(root);
}
