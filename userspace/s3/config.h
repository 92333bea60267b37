// SPDX-License-Identifier: Apache-2.0
// The `s3:` section of the config file (format in DEVELOPING.md).
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "s3/sigv4.h"

namespace aurum::s3 {

// Thrown on bad input, in the agent's format "<source>:<line>: <key>: <problem>", e.g.
// "aurum.yaml:7: s3.endpoints[0].interval_seconds: expected an integer in 1..86400, got '0'".
struct ConfigError : aurum::ConfigError {
  using aurum::ConfigError::ConfigError;
};

struct EndpointConfig {
  std::string url;                  // scheme://host[:port][/base], no trailing slash
  std::string region = "us-east-1";
  Credentials credentials;          // from the file; empty fields are filled from the env
  std::vector<std::string> buckets; // empty: every bucket ListBuckets returns
  std::chrono::seconds interval{30};
  std::chrono::milliseconds timeout{10000};  // whole-request timeout, per page
  bool path_style = true;           // http://host/bucket (false: http://bucket.host)
};

struct Config {
  std::vector<EndpointConfig> endpoints;
};

// Parses the `s3:` node (an undefined or null node gives an empty Config).
// Keys per endpoint: url (required), region, access_key_id, secret_access_key, session_token,
// buckets, interval_seconds, timeout_seconds, path_style. Unknown keys are errors (a typo
// would otherwise silently fall back to a default).
// `source` (the file name) only prefixes messages.
Config parse_config(const YAML::Node& s3, const std::string& source = "config");

// Fills empty credential fields from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN, read through `getenv` (injected so tests need not touch the process env).
// A session token from the env is used only when the key id came from the env too.
void resolve_credentials(EndpointConfig& ep,
                         const std::function<const char*(const char*)>& getenv);

}  // namespace aurum::s3
