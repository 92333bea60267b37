// SPDX-License-Identifier: Apache-2.0
#include "s3/s3.h"

#include <cstdlib>

namespace aurum::s3 {

std::shared_ptr<S3Collector> start_from_config(const YAML::Node& s3_section) {
  Config cfg = parse_config(s3_section);
  if (cfg.endpoints.empty()) return nullptr;
  for (auto& ep : cfg.endpoints) resolve_credentials(ep, [](const char* name) { return std::getenv(name); });
  auto collector = std::make_shared<S3Collector>(std::move(cfg));
  collector->start();
  return collector;
}

}  // namespace aurum::s3
