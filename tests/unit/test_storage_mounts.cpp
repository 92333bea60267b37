// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <sys/statvfs.h>

#include <fstream>
#include <sstream>

#include "storage/mounts.h"

namespace aurum::storage {
namespace {

// Lines in the format of proc(5)'s /proc/[pid]/mountinfo example.
constexpr const char* kMountinfo =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
    "30 22 8:17 / /data rw,relatime shared:2 - xfs /dev/sdb1 rw\n"
    "31 30 8:33 / /data/pg rw,relatime shared:3 - xfs /dev/sdc1 rw\n"
    "32 22 8:49 / /srv/my\\040disk rw,relatime shared:4 - ext4 /dev/sdd1 rw\n"
    "33 22 0:50 / /database rw - tmpfs tmpfs rw\n"
    "34 31 0:51 / /data/pg rw - tmpfs tmpfs rw\n";  // stacked on /data/pg: the later one is visible

TEST(StorageMounts, LongestPrefixOnPathComponents) {
  EXPECT_EQ(mountpoint_of("/data/pg/base/1", kMountinfo), "/data/pg");
  EXPECT_EQ(mountpoint_of("/data/pg", kMountinfo), "/data/pg");
  EXPECT_EQ(mountpoint_of("/data/pgsql", kMountinfo), "/data");  // not /data/pg: a prefix of a name
  EXPECT_EQ(mountpoint_of("/data", kMountinfo), "/data");
  EXPECT_EQ(mountpoint_of("/databases/x", kMountinfo), "/");
  EXPECT_EQ(mountpoint_of("/database/x", kMountinfo), "/database");
  EXPECT_EQ(mountpoint_of("/srv/my disk/db", kMountinfo), "/srv/my disk");  // \040 decoded
  EXPECT_EQ(mountpoint_of("/var/lib/postgresql", kMountinfo), "/");
  EXPECT_EQ(mountpoint_of("/x", ""), std::nullopt);
  EXPECT_EQ(mountpoint_of("relative", kMountinfo), std::nullopt);
}

TEST(StorageMounts, ThisProcessesRootAndTmp) {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  ASSERT_FALSE(ss.str().empty());
  const auto mp = mountpoint_of("/tmp", ss.str());
  ASSERT_TRUE(mp.has_value());
  // The mount point found holds /tmp: same device as statvfs sees it.
  struct statvfs a {}, b {};
  ASSERT_EQ(statvfs(mp->c_str(), &a), 0);
  ASSERT_EQ(statvfs("/tmp", &b), 0);
  EXPECT_EQ(a.f_fsid, b.f_fsid);
  EXPECT_EQ(a.f_blocks, b.f_blocks);
}

TEST(StorageMounts, FilesystemStats) {
  const auto st = filesystem_stats("/");
  ASSERT_TRUE(st.has_value());
  struct statvfs s {};
  ASSERT_EQ(statvfs("/", &s), 0);
  EXPECT_EQ(st->size_bytes, static_cast<std::uint64_t>(s.f_blocks) * s.f_frsize);
  EXPECT_LE(st->avail_bytes, st->size_bytes);
  EXPECT_EQ(filesystem_stats("/no/such/mount"), std::nullopt);
}

}  // namespace
}  // namespace aurum::storage
