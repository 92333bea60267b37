// SPDX-License-Identifier: Apache-2.0
// The `storage:` section of the config file: data directories whose size to export, overriding
// what the agent discovers (format in DEVELOPING.md).
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/error.h"

namespace aurum::storage {

struct Target {
  std::string service_name;
  std::string path;  // absolute
  bool operator==(const Target&) const = default;
  auto operator<=>(const Target&) const = default;
};

// "<source>:<line>: <key>: <problem>", like the rest of the agent's config errors.
struct ConfigError : aurum::ConfigError {
  using aurum::ConfigError::ConfigError;
};

// A list of {service, path}; an undefined or null node gives an empty list.
std::vector<Target> parse_config(const YAML::Node& storage, const std::string& source = "config");

}  // namespace aurum::storage
