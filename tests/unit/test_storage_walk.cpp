// SPDX-License-Identifier: Apache-2.0
// DirWalker against `du -s -x -B1` (allocated blocks, hard links once, one filesystem) on trees
// this test makes, with sparse, hard-linked and symlinked files.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "storage/dir_walker.h"

namespace aurum::storage {
namespace {

namespace fs = std::filesystem;

std::uint64_t du_bytes(const std::string& path) {
  const std::string cmd = "du -s -x -B1 '" + path + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return ~0ull;
  unsigned long long v = ~0ull;
  if (std::fscanf(p, "%llu", &v) != 1) v = ~0ull;
  pclose(p);
  return v;
}

class TempTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/aurum-storage-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void write(const std::string& rel, std::size_t bytes) {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel, std::ios::binary) << std::string(bytes, 'x');
  }
  std::string root_;
};

TEST_F(TempTree, MatchesDuWithSparseHardLinkedAndSymlinkedFiles) {
  write("a/small", 1);
  write("a/b/c/medium", 70000);
  write("big", 3 << 20);
  fs::create_directories(root_ + "/empty/dir");
  // Sparse: 1 GiB apparent, one 4 KiB block written in the middle.
  {
    const int fd = open((root_ + "/sparse").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 1ll << 30), 0);
    const std::string block(4096, 's');
    ASSERT_EQ(pwrite(fd, block.data(), block.size(), 512 << 20), 4096);
    close(fd);
  }
  // Hard links: one 1 MiB file with three names in three directories.
  write("links/one", 1 << 20);
  fs::create_directories(root_ + "/links2");
  fs::create_hard_link(root_ + "/links/one", root_ + "/links/two");
  fs::create_hard_link(root_ + "/links/one", root_ + "/links2/three");
  fs::create_symlink(root_ + "/big", root_ + "/a/link-to-big");  // counted as a link, not followed
  fs::create_directory_symlink("/usr", root_ + "/a/link-to-usr");

  const WalkResult r = disk_usage(root_);
  EXPECT_EQ(r.bytes, du_bytes(root_));
  EXPECT_EQ(r.unreadable, 0u);
  // The sparse file's apparent size would dwarf everything: it must count as blocks only.
  EXPECT_LT(r.bytes, 64ull << 20);
  // The hard-linked file once: removing two of its three names changes only directory sizes.
  const std::uint64_t before = r.bytes;
  fs::remove(root_ + "/links/two");
  fs::remove(root_ + "/links2/three");
  EXPECT_EQ(disk_usage(root_).bytes, before);
}

TEST_F(TempTree, IncrementalStepsGiveTheSameTotal) {
  for (int d = 0; d < 20; ++d)
    for (int f = 0; f < 50; ++f) write("d" + std::to_string(d) + "/sub/f" + std::to_string(f), (d * 50 + f) * 37);
  DirWalker w(root_);
  int steps = 0;
  while (!w.step(7)) ++steps;
  EXPECT_GT(steps, 100);  // it really was spread over many calls
  EXPECT_EQ(w.result().bytes, du_bytes(root_));
  EXPECT_EQ(w.result().entries, 1u + 20u * 2u + 1000u);
}

TEST_F(TempTree, MissingRootAndUnreadableDirectory) {
  DirWalker missing(root_ + "/nope");
  EXPECT_TRUE(missing.done());
  EXPECT_FALSE(missing.root_ok());

  write("locked/secret", 10000);
  fs::permissions(root_ + "/locked", fs::perms::none);
  const WalkResult r = disk_usage(root_);
  if (geteuid() == 0) {
    EXPECT_EQ(r.unreadable, 0u);  // root reads anyway (CAP_DAC_READ_SEARCH)
  } else {
    EXPECT_EQ(r.unreadable, 1u);
  }
  EXPECT_EQ(r.bytes, du_bytes(root_));  // du skips what it cannot read, too
  fs::permissions(root_ + "/locked", fs::perms::owner_all);
}

TEST_F(TempTree, DoesNotCrossFilesystems) {
  // Needs a mount: as root, a tmpfs in a private mount namespace of a child process (nothing
  // leaks to the host); unprivileged runs skip.
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  write("own/file", 100000);
  fs::create_directories(root_ + "/mnt");
  // Like du -x, the mount point itself is left out once something is mounted on it (its entry
  // then shows the other filesystem's root).
  const std::uint64_t without_mount = disk_usage(root_).bytes - disk_usage(root_ + "/mnt").bytes;
  const pid_t child = fork();
  if (child == 0) {
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(10);
    if (mount("tmpfs", (root_ + "/mnt").c_str(), "tmpfs", 0, "size=16m") != 0) _exit(11);
    std::ofstream(root_ + "/mnt/other-fs-file", std::ios::binary) << std::string(4 << 20, 'm');
    const std::uint64_t walked = disk_usage(root_).bytes;
    if (walked != du_bytes(root_)) _exit(1);
    if (walked != without_mount) _exit(2);  // the tmpfs and its 4 MiB file are not ours
    if (disk_usage(root_ + "/mnt").bytes < (4u << 20)) _exit(3);  // yet it is walkable on its own
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: differs from du, 2: crossed into the tmpfs, 3: tmpfs not counted, "
                                       "10/11: could not mount";
}

}  // namespace
}  // namespace aurum::storage
