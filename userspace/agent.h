// SPDX-License-Identifier: Apache-2.0
// The agent: feature probes, the service directory and every collector, behind one lock, served
// to Prometheus as one Collectable.
#pragma once
#include <prometheus/collectable.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "collectors/collector.h"
#include "config/config.h"
#include "core/features.h"
#include "identity/services.h"

namespace aurum {

struct AgentOptions {
	unsigned max_services = 256;
	std::chrono::seconds service_ttl{300};
	unsigned max_processes = 16384;
	std::string proc_root = "/proc";
	std::string log_root = "/var/log"; // the kubelet's container logs, for Kubernetes names
};

class Agent : public prometheus::Collectable {
public:
	// Loads and attaches every component; throws Error when a mandatory one fails.
	Agent(const AgentOptions &opts, const config::Config &cfg, const Features &features);
	~Agent() override;

	std::vector<prometheus::MetricFamily> Collect() const override;
	// Periodic work between scrapes: rescan /proc, fold what dead processes left in the maps.
	void housekeeping();
	std::vector<HookStatus> hooks() const;
	// Data directories of database processes, found without configuration: a PostgreSQL
	// postmaster's working directory is its data directory (it chdirs there at start), and so is
	// mysqld's / mariadbd's. (service_name, path) pairs.
	std::vector<std::pair<std::string, std::string>> data_directories() const;

private:
	void refresh_locked(bool force) const;
	const Features &features_;
	std::string proc_root_;
	mutable std::mutex mu_;
	mutable std::unique_ptr<identity::ServiceDirectory> dir_;
	std::vector<std::unique_ptr<Collector>> collectors_;
	mutable std::chrono::steady_clock::time_point last_refresh_{};
	mutable std::size_t last_series_ = 0;
	mutable double last_scrape_seconds_ = 0;
	mutable std::uint64_t scrapes_ = 0;
};

} // namespace aurum
