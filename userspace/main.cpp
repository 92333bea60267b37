// SPDX-License-Identifier: Apache-2.0
// aurum: flags, privileges, wiring. Everything else lives in aurum_core.
#include <prometheus/exposer.h>
#include <signal.h>

#include <cxxopts.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "agent.h"
#include "core/error.h"
#include "core/features.h"
#include "core/log.h"
#include "core/privileges.h"
#include "s3/config.h"
#include "s3/s3.h"
#include "storage/collector.h"
#include "storage/config.h"

using namespace aurum;

namespace {

constexpr int kExitUsage = 2;

// A scrape at /healthz returns an empty body with 200; the path is registered only once every
// probe is attached, so until then it answers 404.
class Healthy : public prometheus::Collectable {
public:
	std::vector<prometheus::MetricFamily> Collect() const override { return {}; }
};

std::string civetweb_address(const std::string &addr)
{
	// Prometheus exporters take ":9890" to mean every address; civetweb wants "9890".
	if (!addr.empty() && addr[0] == ':')
		return addr.substr(1);
	if (addr.rfind("0.0.0.0:", 0) == 0)
		return addr.substr(8);
	return addr;
}

std::set<Feature> parse_force_off(const std::vector<std::string> &names)
{
	std::set<Feature> out;
	for (const auto &list : names) {
		std::stringstream ss(list);
		std::string n;
		while (std::getline(ss, n, ',')) {
			if (n.empty())
				continue;
			auto f = feature_from_name(n);
			if (!f) {
				std::string all;
				for (size_t i = 0; i < kFeatureCount; i++)
					all += (i ? "," : "") + std::string(feature_name(static_cast<Feature>(i)));
				throw ConfigError("--force-off: unknown feature '" + n + "' (known: " + all + ")");
			}
			out.insert(*f);
		}
	}
	return out;
}

int print_check(const std::vector<HookStatus> &hooks)
{
	int failed = 0;
	for (const auto &h : hooks) {
		std::string variant = h.attached ? h.variant : "unavailable: " + h.reason;
		std::printf("hook=%s/%s variant=%s mandatory=%s\n", h.component.c_str(), h.hook.c_str(),
			    variant.c_str(), h.mandatory ? "yes" : "no");
		if (h.mandatory && !h.attached)
			failed++;
	}
	std::fflush(stdout);
	return failed ? 1 : 0;
}

} // namespace

int main(int argc, char **argv)
{
	cxxopts::Options options("aurum", "Kernel-level golden signals for every service on this host, for Prometheus.");
	// clang-format off
	options.add_options()
		("web.listen-address", "address to serve /metrics and /healthz on", cxxopts::value<std::string>()->default_value("0.0.0.0:9890"))
		("web.telemetry-path", "path of the metrics", cxxopts::value<std::string>()->default_value("/metrics"))
		("config.file", "YAML config file (service rules, storage, s3)", cxxopts::value<std::string>())
		("log.level", "debug, info, warn or error", cxxopts::value<std::string>()->default_value("info"))
		("max-services", "distinct services before the rest are reported as _other", cxxopts::value<unsigned>()->default_value("256"))
		("service-ttl", "seconds a service without processes keeps its series", cxxopts::value<unsigned>()->default_value("300"))
		("max-processes", "processes the kernel maps track at once", cxxopts::value<unsigned>()->default_value("16384"))
		("bpf-stats", "turn on the kernel's BPF run-time statistics while running (costs ~20 ns per program run)")
		("force-off", "pretend kernel features are missing, to exercise fallbacks (comma-separated; see --probe)", cxxopts::value<std::vector<std::string>>())
		("probe", "print the kernel feature probes and exit")
		("check", "load and attach every program, print one line per hook, exit (non-zero if a mandatory hook fails)")
		("version", "print the version and exit")
		("h,help", "print this help");
	// clang-format on

	cxxopts::ParseResult args;
	AgentOptions aopts;
	config::Config cfg;
	std::set<Feature> forced;
	std::vector<storage::Target> storage_targets;
	try {
		args = options.parse(argc, argv);
		if (args.count("help")) {
			std::cout << options.help() << std::endl;
			return 0;
		}
		if (args.count("version")) {
			std::cout << "aurum " << AURUM_VERSION << std::endl;
			return 0;
		}
		if (!args.unmatched().empty())
			throw ConfigError("unexpected argument '" + args.unmatched()[0] + "'");
		log::Level lvl;
		if (!log::parse_level(args["log.level"].as<std::string>(), lvl))
			throw ConfigError("--log.level: expected debug, info, warn or error");
		log::set_level(lvl);
		if (args.count("config.file"))
			cfg = config::load_file(args["config.file"].as<std::string>());
		// The delegated sections are checked now, so that a bad one stops start-up with exit 2.
		storage_targets = storage::parse_config(cfg.storage, cfg.source);
		s3::parse_config(cfg.s3, cfg.source);
		if (args.count("force-off"))
			forced = parse_force_off(args["force-off"].as<std::vector<std::string>>());
		aopts.max_services = args["max-services"].as<unsigned>();
		aopts.service_ttl = std::chrono::seconds(args["service-ttl"].as<unsigned>());
		aopts.max_processes = args["max-processes"].as<unsigned>();
		if (aopts.max_services == 0 || aopts.max_processes < 64)
			throw ConfigError("--max-services must be >= 1 and --max-processes >= 64");
		auto path = args["web.telemetry-path"].as<std::string>();
		if (path.empty() || path[0] != '/' || path == "/healthz")
			throw ConfigError("--web.telemetry-path: must start with '/' and not be /healthz");
	} catch (const cxxopts::exceptions::exception &e) {
		std::fprintf(stderr, "aurum: %s (see --help)\n", e.what());
		return kExitUsage;
	} catch (const ConfigError &e) {
		std::fprintf(stderr, "aurum: %s\n", e.what());
		return kExitUsage;
	}

	if (auto missing = missing_capability(); !missing.empty()) {
		std::fprintf(stderr, "aurum: %s\n", missing.c_str());
		return 1;
	}

	route_libbpf_log();
	Features features(forced);
	if (args.count("probe")) {
		std::cout << features.report();
		return features.has(Feature::btf) ? 0 : 1;
	}
	if (!features.has(Feature::btf)) {
		std::fprintf(stderr, "aurum: the kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot load\n");
		return 1;
	}

	// Block the stop signals before any thread starts, so that only the main loop takes them.
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, nullptr);

	int stats_fd = -1;
	if (args.count("bpf-stats")) {
		stats_fd = bpf_enable_stats_fd();
		if (stats_fd < 0)
			log::warn("--bpf-stats: cannot enable BPF run-time stats: %s", std::strerror(-stats_fd));
	}

	std::shared_ptr<Agent> agent;
	try {
		agent = std::make_shared<Agent>(aopts, cfg, features);
	} catch (const std::exception &e) {
		if (args.count("check"))
			std::printf("error=\"%s\"\n", e.what());
		std::fprintf(stderr, "aurum: %s\n", e.what());
		return 1;
	}
	if (args.count("check"))
		return print_check(agent->hooks());

	std::unique_ptr<prometheus::Exposer> exposer;
	std::string listen = args["web.listen-address"].as<std::string>();
	try {
		exposer = std::make_unique<prometheus::Exposer>(civetweb_address(listen), 2);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "aurum: cannot listen on %s: %s\n", listen.c_str(), e.what());
		return 1;
	}
	exposer->RegisterCollectable(agent, args["web.telemetry-path"].as<std::string>());
	// Collectors with threads of their own (they serve the same path as the agent).
	auto storage = std::make_shared<storage::StorageCollector>(storage_targets);
	storage->start();
	exposer->RegisterCollectable(storage, args["web.telemetry-path"].as<std::string>());
	std::shared_ptr<s3::S3Collector> s3collector;
	try {
		s3collector = s3::start_from_config(cfg.s3);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "aurum: %s\n", e.what());
		return kExitUsage;
	}
	if (s3collector)
		exposer->RegisterCollectable(s3collector, args["web.telemetry-path"].as<std::string>());
	auto discover_storage = [&] {
		std::vector<storage::Target> found;
		for (auto &[svc, path] : agent->data_directories())
			found.push_back({svc, path});
		storage->set_targets(std::move(found));
	};
	discover_storage();
	exposer->RegisterCollectable(std::make_shared<Healthy>(), "/healthz");
	log::info("aurum %s serving %s%s on %s", AURUM_VERSION, "", args["web.telemetry-path"].as<std::string>().c_str(),
		  listen.c_str());

	// Housekeeping between scrapes keeps the kernel maps small even when nobody scrapes.
	const timespec tick{2, 0};
	for (;;) {
		int sig = sigtimedwait(&stop, nullptr, &tick);
		if (sig == SIGINT || sig == SIGTERM) {
			log::info("signal %d: detaching and exiting", sig);
			break;
		}
		agent->housekeeping();
		discover_storage();
	}
	exposer.reset();
	storage->stop();
	s3collector.reset();
	agent.reset();
	if (stats_fd >= 0)
		::close(stats_fd);
	return 0;
}
