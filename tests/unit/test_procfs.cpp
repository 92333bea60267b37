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
