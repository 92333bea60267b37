// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "storage/config.h"

namespace aurum::storage {
namespace {

std::vector<Target> parse(const std::string& yaml) { return parse_config(YAML::Load(yaml)["storage"], "t.yaml"); }

std::string error_of(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const aurum::ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(StorageConfig, List) {
  const auto t = parse("storage:\n  - service: shop-db\n    path: /srv/shop-db/\n  - service: mes-db\n    path: /srv/mes\n");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], (Target{"shop-db", "/srv/shop-db"}));
  EXPECT_EQ(t[1], (Target{"mes-db", "/srv/mes"}));
  EXPECT_TRUE(parse("x: 1").empty());
  EXPECT_TRUE(parse("storage:").empty());
}

TEST(StorageConfig, ErrorsNameTheKeyAndTheLine) {
  EXPECT_EQ(error_of("storage:\n  - service: a\n    path: rel/dir\n"),
            "t.yaml:3: storage[0].path: must be absolute, got 'rel/dir'");
  EXPECT_EQ(error_of("storage:\n  - service: a\n"), "t.yaml:2: storage[0].path: missing (required)");
  EXPECT_EQ(error_of("storage:\n  - path: /a\n    servce: a\n"), "t.yaml:3: storage[0].servce: unknown key");
  EXPECT_EQ(error_of("storage:\n  service: a\n"), "t.yaml:2: storage: expected a list of {service, path}");
  EXPECT_EQ(error_of("storage:\n  - service: [a]\n    path: /a\n"),
            "t.yaml:2: storage[0].service: expected a non-empty string");
  EXPECT_EQ(error_of("storage:\n  - {service: a, path: /a}\n  - {service: a, path: /a/}\n"),
            "t.yaml:3: storage[1]: duplicate entry for a /a");
}

}  // namespace
}  // namespace aurum::storage
