// SPDX-License-Identifier: Apache-2.0
// Which filesystem holds a path, and how full it is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aurum::storage {

// The mount point in `mountinfo` (the text of /proc/self/mountinfo, proc(5)) that is the
// longest prefix of the absolute, symlink-free `path`; the last such line wins when mounts are
// stacked on one point. Octal escapes (\040 for a space) are decoded. nullopt if none matches.
std::optional<std::string> mountpoint_of(std::string_view path, std::string_view mountinfo);

struct FilesystemStats {
  std::uint64_t size_bytes = 0;   // f_blocks * f_frsize
  std::uint64_t avail_bytes = 0;  // f_bavail * f_frsize: what an unprivileged writer can still use
};

// statvfs(2); nullopt on failure.
std::optional<FilesystemStats> filesystem_stats(const std::string& mountpoint);

}  // namespace aurum::storage
