// SPDX-License-Identifier: Apache-2.0
#include "config/config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"

namespace aurum::config {

void fail(const std::string &source, const YAML::Node &node, const std::string &key,
	  const std::string &problem)
{
	int line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
	throw ConfigError(source + ":" + std::to_string(line) + ": " + key + ": " + problem);
}

namespace {

void check_keys(const std::string &src, const YAML::Node &map, const std::string &where,
		const std::set<std::string> &allowed)
{
	if (!map.IsMap())
		fail(src, map, where, "expected a mapping");
	for (const auto &kv : map) {
		auto k = kv.first.as<std::string>();
		if (!allowed.count(k)) {
			std::string list;
			for (const auto &a : allowed)
				list += (list.empty() ? "" : ", ") + a;
			fail(src, kv.first, where.empty() ? k : where + "." + k,
			     "unknown key (expected one of: " + list + ")");
		}
	}
}

std::string scalar(const std::string &src, const YAML::Node &n, const std::string &key)
{
	if (!n.IsScalar() || n.Scalar().empty())
		fail(src, n, key, "expected a non-empty string");
	return n.Scalar();
}

unsigned long number(const std::string &src, const YAML::Node &n, const std::string &key,
		     unsigned long min, unsigned long max)
{
	if (!n.IsScalar())
		fail(src, n, key, "expected a number");
	const std::string &s = n.Scalar();
	size_t used = 0;
	unsigned long v = 0;
	try {
		v = std::stoul(s, &used, 10);
	} catch (const std::exception &) {
		used = 0;
	}
	if (used == 0 || used != s.size() || s[0] == '-')
		fail(src, n, key, "expected a whole number, got '" + s + "'");
	if (v < min || v > max)
		fail(src, n, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
	return v;
}

std::regex regex(const std::string &src, const YAML::Node &n, const std::string &key)
{
	std::string re = scalar(src, n, key);
	try {
		return std::regex(re, std::regex::ECMAScript | std::regex::optimize);
	} catch (const std::regex_error &e) {
		fail(src, n, key, "invalid regular expression '" + re + "': " + e.what());
	}
}

ServiceRule parse_rule(const std::string &src, const YAML::Node &n, const std::string &where)
{
	check_keys(src, n, where, {"name", "exe", "cmdline", "port", "cgroup"});
	ServiceRule r;
	r.line = n.Mark().line + 1;
	if (!n["name"])
		fail(src, n, where + ".name", "missing (every rule names its service)");
	r.name = scalar(src, n["name"], where + ".name");
	if (n["exe"])
		r.exe = scalar(src, n["exe"], where + ".exe");
	if (n["cmdline"]) {
		r.cmdline = scalar(src, n["cmdline"], where + ".cmdline");
		r.cmdline_re = regex(src, n["cmdline"], where + ".cmdline");
	}
	if (n["port"])
		r.port = static_cast<std::uint16_t>(number(src, n["port"], where + ".port", 1, 65535));
	if (n["cgroup"]) {
		r.cgroup = scalar(src, n["cgroup"], where + ".cgroup");
		r.cgroup_re = regex(src, n["cgroup"], where + ".cgroup");
	}
	if (!r.exe && !r.cmdline && !r.port && !r.cgroup)
		fail(src, n, where, "a rule needs at least one of exe, cmdline, port, cgroup");
	return r;
}

bool boolean(const std::string &src, const YAML::Node &n, const std::string &key)
{
	if (n.IsScalar()) {
		const auto &s = n.Scalar();
		if (s == "true" || s == "yes" || s == "on")
			return true;
		if (s == "false" || s == "no" || s == "off")
			return false;
	}
	fail(src, n, key, "expected true or false");
}

} // namespace

Config parse(const std::string &text, const std::string &source)
{
	Config c;
	c.source = source;
	YAML::Node root;
	try {
		root = YAML::Load(text);
	} catch (const YAML::Exception &e) {
		throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
	}
	if (root.IsNull())
		return c; // an empty file is a valid config: all defaults
	check_keys(source, root, "", {"services", "storage", "s3", "http"});
	if (auto svc = root["services"]) {
		check_keys(source, svc, "services", {"rules", "max_services", "ttl_seconds"});
		if (auto rules = svc["rules"]) {
			if (!rules.IsSequence())
				fail(source, rules, "services.rules", "expected a list of rules");
			for (size_t i = 0; i < rules.size(); i++)
				c.rules.push_back(parse_rule(source, rules[i],
							     "services.rules[" + std::to_string(i) + "]"));
		}
		if (svc["max_services"])
			c.max_services = number(source, svc["max_services"], "services.max_services", 1, 100000);
		if (svc["ttl_seconds"])
			c.service_ttl_seconds =
				number(source, svc["ttl_seconds"], "services.ttl_seconds", 1, 86400 * 30);
	}
	if (auto http = root["http"]) {
		check_keys(source, http, "http", {"routes"});
		if (http["routes"])
			c.http_routes = boolean(source, http["routes"], "http.routes");
	}
	c.storage = root["storage"];
	c.s3 = root["s3"];
	return c;
}

Config load_file(const std::string &path)
{
	std::ifstream in(path);
	if (!in)
		throw ConfigError(path + ": cannot open config file: " + std::strerror(errno));
	std::stringstream ss;
	ss << in.rdbuf();
	return parse(ss.str(), path);
}

} // namespace aurum::config
