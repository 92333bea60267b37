// SPDX-License-Identifier: Apache-2.0
// The agent's one entry point into the S3 collector.
#pragma once

#include <memory>

#include <yaml-cpp/yaml.h>

#include "s3/collector.h"

namespace aurum::s3 {

// Parses the `s3:` section (throws ConfigError naming the key and line), fills missing
// credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, starts one
// thread per endpoint and returns the collector to register with the exposer. Returns nullptr
// when the section is absent or lists no endpoint. Destroying the collector stops its threads.
std::shared_ptr<S3Collector> start_from_config(const YAML::Node& s3_section);

}  // namespace aurum::s3
