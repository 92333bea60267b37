// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <map>

#include "s3/config.h"

namespace aurum::s3 {
namespace {

Config parse(const std::string& yaml) { return parse_config(YAML::Load(yaml)["s3"], "test.yaml"); }

std::string error_of(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(S3Config, FullEndpoint) {
  const Config c = parse(R"(
s3:
  endpoints:
    - url: http://127.0.0.1:9000/
      region: eu-west-3
      access_key_id: AK
      secret_access_key: SK
      session_token: TOK
      buckets: [invoices, "logs"]
      interval_seconds: 45
      timeout_seconds: 3
      path_style: false
    - url: https://s3.example.com
)");
  ASSERT_EQ(c.endpoints.size(), 2u);
  const auto& a = c.endpoints[0];
  EXPECT_EQ(a.url, "http://127.0.0.1:9000");  // trailing slash dropped: it is the metric label
  EXPECT_EQ(a.region, "eu-west-3");
  EXPECT_EQ(a.credentials.access_key_id, "AK");
  EXPECT_EQ(a.credentials.secret_access_key, "SK");
  EXPECT_EQ(a.credentials.session_token, "TOK");
  EXPECT_EQ(a.buckets, (std::vector<std::string>{"invoices", "logs"}));
  EXPECT_EQ(a.interval, std::chrono::seconds(45));
  EXPECT_EQ(a.timeout, std::chrono::seconds(3));
  EXPECT_FALSE(a.path_style);
  const auto& b = c.endpoints[1];
  EXPECT_EQ(b.region, "us-east-1");
  EXPECT_TRUE(b.buckets.empty());
  EXPECT_EQ(b.interval, std::chrono::seconds(30));
  EXPECT_TRUE(b.path_style);
}

TEST(S3Config, AbsentOrEmptySection) {
  EXPECT_TRUE(parse("other: 1").endpoints.empty());
  EXPECT_TRUE(parse("s3:").endpoints.empty());
  EXPECT_TRUE(parse("s3: {endpoints: []}").endpoints.empty());
}

TEST(S3Config, ErrorsNameTheKeyAndTheLine) {
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - region: x\n"), "test.yaml:3: s3.endpoints[0].url: missing (required)");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: http://a\n      interval_seconds: 0\n"),
            "test.yaml:4: s3.endpoints[0].interval_seconds: expected an integer in 1..86400, got '0'");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: http://a\n      interval_seconds: soon\n"),
            "test.yaml:4: s3.endpoints[0].interval_seconds: expected a positive integer, got 'soon'");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: http://a\n    - url: ftp://b\n"),
            "test.yaml:4: s3.endpoints[1].url: must start with http:// or https://, got 'ftp://b'");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: https:///x\n"),
            "test.yaml:3: s3.endpoints[0].url: has no host: 'https:///x'");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: http://\n"),
            "test.yaml:3: s3.endpoints[0].url: has no host: 'http://'");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: http://a\n      bukets: [x]\n"),
            "test.yaml:4: s3.endpoints[0].bukets: unknown key");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: http://a\n      buckets: x\n"),
            "test.yaml:4: s3.endpoints[0].buckets: expected a list of bucket names");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: http://a\n      access_key_id: k\n"),
            "test.yaml:3: s3.endpoints[0]: access_key_id and secret_access_key must be given together");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: http://a\n    - url: http://a/\n"),
            "test.yaml:4: s3.endpoints[1].url: duplicate endpoint 'http://a'");
  EXPECT_EQ(error_of("s3:\n  endpoint: []\n"), "test.yaml:2: s3.endpoint: unknown key");
  EXPECT_EQ(error_of("s3:\n  endpoints:\n    - url: http://a\n      path_style: maybe\n"),
            "test.yaml:4: s3.endpoints[0].path_style: expected true or false");
  EXPECT_EQ(error_of("s3: [1]\n"), "test.yaml:1: s3: expected a map with `endpoints`");
}

TEST(S3Config, IsAnAgentConfigError) {
  try {
    parse("s3:\n  endpoints: 3\n");
    FAIL() << "no exception";
  } catch (const aurum::ConfigError& e) {
    EXPECT_STREQ(e.what(), "test.yaml:2: s3.endpoints: expected a list");
  }
}

TEST(S3Config, CredentialsFromTheEnvironment) {
  std::map<std::string, std::string> env = {
      {"AWS_ACCESS_KEY_ID", "ENVID"}, {"AWS_SECRET_ACCESS_KEY", "ENVSECRET"}, {"AWS_SESSION_TOKEN", "ENVTOK"}};
  auto getenv = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EndpointConfig from_env;
  resolve_credentials(from_env, getenv);
  EXPECT_EQ(from_env.credentials.access_key_id, "ENVID");
  EXPECT_EQ(from_env.credentials.secret_access_key, "ENVSECRET");
  EXPECT_EQ(from_env.credentials.session_token, "ENVTOK");

  EndpointConfig from_file;
  from_file.credentials = {"FILEID", "FILESECRET", ""};
  resolve_credentials(from_file, getenv);  // the file's pair wins, and no foreign token joins it
  EXPECT_EQ(from_file.credentials.access_key_id, "FILEID");
  EXPECT_EQ(from_file.credentials.secret_access_key, "FILESECRET");
  EXPECT_EQ(from_file.credentials.session_token, "");

  env.erase("AWS_SECRET_ACCESS_KEY");
  EndpointConfig half;
  resolve_credentials(half, getenv);
  EXPECT_EQ(half.credentials.access_key_id, "");
}

}  // namespace
}  // namespace aurum::s3
