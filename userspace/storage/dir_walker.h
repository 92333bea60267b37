// SPDX-License-Identifier: Apache-2.0
// On-disk size of a directory tree, measured a bounded number of entries at a time so that a
// caller can spread a large tree over many short slices.
//
// Counts what `du -s -x -B1` counts: st_blocks * 512 of every entry (directories and symlinks
// themselves included, symlinks not followed), a file with several hard links once, and
// nothing below a mount point of another filesystem (the entry on the other filesystem is not
// counted either).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace aurum::storage {

struct WalkResult {
  std::uint64_t bytes = 0;       // st_blocks * 512, summed
  std::uint64_t entries = 0;     // entries counted (root included)
  std::uint64_t unreadable = 0;  // directories that could not be opened or entries not stat'ed
};

class DirWalker {
 public:
  explicit DirWalker(std::string root);
  ~DirWalker();
  DirWalker(const DirWalker&) = delete;
  DirWalker& operator=(const DirWalker&) = delete;

  // Visits at most `max_entries` more directory entries; true once the walk is complete.
  bool step(std::size_t max_entries);
  bool done() const { return done_; }
  // False when the root itself could not be stat'ed (missing, no permission): nothing counted.
  bool root_ok() const { return root_ok_; }
  // Complete once done(); a running total before.
  const WalkResult& result() const { return result_; }
  const std::string& root() const { return root_; }

 private:
  struct DirCloser {
    void operator()(void* dir) const;
  };
  void count(const struct stat& st);
  bool open_next_dir();

  std::string root_;
  dev_t root_dev_ = 0;
  bool done_ = false;
  bool root_ok_ = false;
  WalkResult result_;
  std::vector<std::string> pending_;  // directories still to read, depth first
  std::unique_ptr<void, DirCloser> dir_;  // DIR* being read
  std::string dir_path_;
  std::set<std::pair<dev_t, ino_t>> linked_;  // inodes with st_nlink > 1 already counted
};

// The whole tree at once (tests and tools; the agent uses DirWalker through the collector).
WalkResult disk_usage(const std::string& root);

}  // namespace aurum::storage
