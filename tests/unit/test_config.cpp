// SPDX-License-Identifier: Apache-2.0
// Config errors name the file, the line and the key.
#include <gtest/gtest.h>

#include "config/config.h"
#include "core/error.h"

using aurum::ConfigError;
using aurum::config::parse;

namespace {
std::string error_of(const std::string &yaml)
{
	try {
		parse(yaml, "aurum.yaml");
	} catch (const ConfigError &e) {
		return e.what();
	}
	return "";
}
} // namespace

TEST(Config, EmptyIsValid)
{
	auto c = parse("", "aurum.yaml");
	EXPECT_TRUE(c.rules.empty());
	EXPECT_FALSE(c.http_routes);
}

TEST(Config, FullExample)
{
	auto c = parse(R"(services:
  max_services: 50
  ttl_seconds: 60
  rules:
    - name: shop-api
      exe: python3
      cmdline: 'shop_api\.py'
    - name: shop-db
      port: 5433
    - name: k8s-payments
      cgroup: 'kubepods.*payments'
http:
  routes: true
storage:
  - service: shop-db
    path: /srv/db
)", "aurum.yaml");
	ASSERT_EQ(c.rules.size(), 3u);
	EXPECT_EQ(c.rules[0].name, "shop-api");
	EXPECT_EQ(*c.rules[0].exe, "python3");
	EXPECT_TRUE(c.rules[0].cmdline_re.has_value());
	EXPECT_EQ(*c.rules[1].port, 5433);
	EXPECT_EQ(c.rules[1].line, 8);
	EXPECT_EQ(*c.max_services, 50u);
	EXPECT_EQ(*c.service_ttl_seconds, 60u);
	EXPECT_TRUE(c.http_routes);
	EXPECT_TRUE(c.storage.IsSequence());
}

TEST(Config, UnknownTopLevelKey)
{
	EXPECT_EQ(error_of("servces:\n  rules: []\n"),
		  "aurum.yaml:1: servces: unknown key (expected one of: http, s3, services, storage)");
}

TEST(Config, UnknownRuleKeyNamesItsLine)
{
	auto e = error_of("services:\n  rules:\n    - name: a\n      exe: x\n    - name: b\n      exe_name: y\n");
	EXPECT_EQ(e, "aurum.yaml:6: services.rules[1].exe_name: unknown key (expected one of: cgroup, cmdline, exe, name, port)");
}

TEST(Config, RuleWithoutMatcher)
{
	EXPECT_NE(error_of("services:\n  rules:\n    - name: a\n").find("aurum.yaml:3: services.rules[0]: a rule needs at least one of"),
		  std::string::npos);
}

TEST(Config, RuleWithoutName)
{
	EXPECT_NE(error_of("services:\n  rules:\n    - exe: a\n").find("services.rules[0].name: missing"), std::string::npos);
}

TEST(Config, BadPort)
{
	EXPECT_EQ(error_of("services:\n  rules:\n    - name: a\n      port: 70000\n"),
		  "aurum.yaml:4: services.rules[0].port: must be between 1 and 65535");
	EXPECT_EQ(error_of("services:\n  rules:\n    - name: a\n      port: http\n"),
		  "aurum.yaml:4: services.rules[0].port: expected a whole number, got 'http'");
}

TEST(Config, BadRegex)
{
	auto e = error_of("services:\n  rules:\n    - name: a\n      cmdline: '(unclosed'\n");
	EXPECT_NE(e.find("aurum.yaml:4: services.rules[0].cmdline: invalid regular expression '(unclosed'"), std::string::npos) << e;
}

TEST(Config, SyntaxErrorNamesTheLine)
{
	auto e = error_of("services:\n  rules:\n    - name: a\n   bad: [\n");
	EXPECT_EQ(e.rfind("aurum.yaml:", 0), 0u) << e;
	EXPECT_NE(e.find(":4:"), std::string::npos) << e;
}

TEST(Config, RulesMustBeAList)
{
	EXPECT_EQ(error_of("services:\n  rules: shop\n"), "aurum.yaml:2: services.rules: expected a list of rules");
}

TEST(Config, BadBoolean)
{
	EXPECT_EQ(error_of("http:\n  routes: maybe\n"), "aurum.yaml:2: http.routes: expected true or false");
}
