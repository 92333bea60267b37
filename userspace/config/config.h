// SPDX-License-Identifier: Apache-2.0
// The agent's YAML config file. Every error names the file, the line and the key.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace aurum::config {

// A rule naming a service. Every matcher given must hold; a rule needs at least one.
struct ServiceRule {
	std::string name;
	std::optional<std::string> exe;         // executable basename, exact
	std::optional<std::string> cmdline;     // regex, searched in the space-joined command line
	std::optional<std::regex> cmdline_re;
	std::optional<std::uint16_t> port;      // a TCP port the process listens on
	std::optional<std::string> cgroup;      // regex, searched in the cgroup v2 path
	std::optional<std::regex> cgroup_re;
	int line = 0;
};

struct Config {
	std::string source; // file name, for messages
	std::vector<ServiceRule> rules;
	std::optional<unsigned> max_services;
	std::optional<unsigned> service_ttl_seconds;
	bool http_routes = false;
	// Sections owned by other components, parsed by their own parsers (which name lines too).
	YAML::Node storage;
	YAML::Node s3;
};

// Throws ConfigError ("<source>:<line>: <key>: <problem>").
Config parse(const std::string &text, const std::string &source);
Config load_file(const std::string &path);

// "<source>:<line>: <key>: <problem>" for parsers of the delegated sections.
[[noreturn]] void fail(const std::string &source, const YAML::Node &node, const std::string &key,
		       const std::string &problem);

} // namespace aurum::config
