// SPDX-License-Identifier: Apache-2.0
#include "storage/dir_walker.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <limits>

namespace aurum::storage {

void DirWalker::DirCloser::operator()(void* dir) const { closedir(static_cast<DIR*>(dir)); }

DirWalker::DirWalker(std::string root) : root_(std::move(root)) {
  struct stat st {};
  if (fstatat(AT_FDCWD, root_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    done_ = true;
    result_.unreadable = 1;
    return;
  }
  root_ok_ = true;
  root_dev_ = st.st_dev;
  count(st);
  if (S_ISDIR(st.st_mode)) pending_.push_back(root_);
  else done_ = true;
}

DirWalker::~DirWalker() = default;

void DirWalker::count(const struct stat& st) {
  // du counts a file with several names once: the first name met wins.
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !linked_.insert({st.st_dev, st.st_ino}).second) return;
  result_.bytes += static_cast<std::uint64_t>(st.st_blocks) * 512u;
  ++result_.entries;
}

bool DirWalker::open_next_dir() {
  while (!pending_.empty()) {
    dir_path_ = std::move(pending_.back());
    pending_.pop_back();
    // O_NOFOLLOW: the directory may have been swapped for a symlink since it was stat'ed.
    const int fd = open(dir_path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
    const int fd2 = fd >= 0 ? fd : open(dir_path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd2 < 0) {
      ++result_.unreadable;
      continue;
    }
    DIR* d = fdopendir(fd2);
    if (!d) {
      close(fd2);
      ++result_.unreadable;
      continue;
    }
    dir_.reset(d);
    return true;
  }
  return false;
}

bool DirWalker::step(std::size_t max_entries) {
  std::size_t visited = 0;
  while (!done_ && visited < max_entries) {
    if (!dir_ && !open_next_dir()) {
      done_ = true;
      linked_.clear();
      break;
    }
    DIR* d = static_cast<DIR*>(dir_.get());
    const dirent* e = readdir(d);
    if (!e) {
      dir_.reset();
      continue;
    }
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    ++visited;
    struct stat st {};
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) ++result_.unreadable;  // ENOENT: deleted since readdir, not an error
      continue;
    }
    if (st.st_dev != root_dev_) continue;  // another filesystem mounted here: not ours
    count(st);
    if (S_ISDIR(st.st_mode)) pending_.push_back(dir_path_ + "/" + e->d_name);
  }
  return done_;
}

WalkResult disk_usage(const std::string& root) {
  DirWalker w(root);
  while (!w.step(std::numeric_limits<std::size_t>::max())) {
  }
  return w.result();
}

}  // namespace aurum::storage
