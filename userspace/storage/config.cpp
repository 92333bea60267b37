// SPDX-License-Identifier: Apache-2.0
#include "storage/config.h"

#include <algorithm>

namespace aurum::storage {
namespace {

[[noreturn]] void fail(const std::string& source, const YAML::Node& node, const std::string& key,
                       const std::string& what) {
  const YAML::Mark m = node.Mark();
  throw ConfigError(source + ":" + (m.line >= 0 ? std::to_string(m.line + 1) : "?") + ": " + key + ": " + what);
}

}  // namespace

std::vector<Target> parse_config(const YAML::Node& storage, const std::string& source) {
  std::vector<Target> out;
  if (!storage || storage.IsNull()) return out;
  if (!storage.IsSequence()) fail(source, storage, "storage", "expected a list of {service, path}");
  for (size_t i = 0; i < storage.size(); ++i) {
    const YAML::Node item = storage[i];
    const std::string key = "storage[" + std::to_string(i) + "]";
    if (!item.IsMap()) fail(source, item, key, "expected a map with `service` and `path`");
    for (const auto& kv : item) {
      const std::string name = kv.first.Scalar();
      if (name != "service" && name != "path") fail(source, kv.first, key + "." + name, "unknown key");
    }
    Target t;
    for (const char* field : {"service", "path"}) {
      const YAML::Node v = item[field];
      if (!v) fail(source, item, key + "." + field, "missing (required)");
      if (!v.IsScalar() || v.Scalar().empty()) fail(source, v, key + "." + field, "expected a non-empty string");
      (std::string(field) == "service" ? t.service_name : t.path) = v.Scalar();
    }
    if (t.path.front() != '/') fail(source, item["path"], key + ".path", "must be absolute, got '" + t.path + "'");
    while (t.path.size() > 1 && t.path.back() == '/') t.path.pop_back();
    if (std::find(out.begin(), out.end(), t) != out.end())
      fail(source, item, key, "duplicate entry for " + t.service_name + " " + t.path);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace aurum::storage
