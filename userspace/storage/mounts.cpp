// SPDX-License-Identifier: Apache-2.0
#include "storage/mounts.h"

#include <sys/statvfs.h>

#include <sstream>
#include <vector>

namespace aurum::storage {
namespace {

std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool is_under(std::string_view path, std::string_view mp) {
  if (mp == "/") return !path.empty() && path.front() == '/';
  if (path.substr(0, mp.size()) != mp) return false;
  return path.size() == mp.size() || path[mp.size()] == '/';
}

}  // namespace

std::optional<std::string> mountpoint_of(std::string_view path, std::string_view mountinfo) {
  std::optional<std::string> best;
  size_t pos = 0;
  while (pos < mountinfo.size()) {
    size_t nl = mountinfo.find('\n', pos);
    if (nl == std::string_view::npos) nl = mountinfo.size();
    const std::string_view line = mountinfo.substr(pos, nl - pos);
    pos = nl + 1;
    // mount ID, parent ID, major:minor, root, mount point, ...
    size_t field = 0, start = 0;
    std::string_view mp;
    for (size_t i = 0; i <= line.size(); ++i) {
      if (i == line.size() || line[i] == ' ') {
        if (field == 4) {
          mp = line.substr(start, i - start);
          break;
        }
        ++field;
        start = i + 1;
      }
    }
    if (mp.empty()) continue;
    std::string decoded = unescape(mp);
    if (is_under(path, decoded) && (!best || decoded.size() >= best->size())) best = std::move(decoded);
  }
  return best;
}

std::optional<FilesystemStats> filesystem_stats(const std::string& mountpoint) {
  struct statvfs s {};
  if (statvfs(mountpoint.c_str(), &s) != 0) return std::nullopt;
  return FilesystemStats{static_cast<std::uint64_t>(s.f_blocks) * s.f_frsize,
                         static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize};
}

}  // namespace aurum::storage
