// SPDX-License-Identifier: Apache-2.0
#include "agent.h"

#include <unistd.h>

#include "collectors/http.h"
#include "collectors/memory.h"
#include "collectors/net.h"
#include "collectors/sched.h"
#include "collectors/stream.h"
#include "core/log.h"
#include "metrics/family.h"

namespace aurum {

namespace {

// Stands in for an optional component that failed to load (a verifier rejection, a helper the
// kernel lacks): its hooks are reported unavailable with the reason, the rest of the agent runs.
class FailedCollector : public Collector {
public:
	FailedCollector(std::string name, std::string reason) : name_(std::move(name)), reason_(std::move(reason)) {}
	const char *name() const override { return name_.c_str(); }
	void poll(identity::ServiceDirectory &) override {}
	void collect(const identity::ServiceDirectory &, std::vector<prometheus::MetricFamily> &) override {}
	std::vector<HookStatus> hooks() const override
	{
		return {HookStatus{name_, "load", "", reason_, "every signal of this component", false, false}};
	}

private:
	std::string name_, reason_;
};

// Builds an optional component; a failure degrades its signals instead of stopping the agent.
template <typename Make> std::unique_ptr<Collector> optional_component(const char *name, Make make)
{
	try {
		return make();
	} catch (const std::exception &e) {
		log::error("%s: not loaded, its signals are unavailable: %s", name, e.what());
		return std::make_unique<FailedCollector>(name, e.what());
	}
}

// The loaded component of type T, if any (a failed one is a FailedCollector).
template <typename T> const T *find_collector(const std::vector<std::unique_ptr<Collector>> &collectors)
{
	for (const auto &c : collectors)
		if (const auto *t = dynamic_cast<const T *>(c.get()))
			return t;
	return nullptr;
}

} // namespace

Agent::Agent(const AgentOptions &opts, const config::Config &cfg, const Features &features) : features_(features)
{
	proc_root_ = opts.proc_root;
	identity::ProcFs procfs(opts.proc_root);
	identity::Resolver resolver(cfg.rules, identity::KubeDirectory(opts.log_root),
				    [procfs](pid_t pid) { return procfs.listening_ports(pid); });
	identity::ServiceDirectory::Options dopts;
	dopts.max_services = cfg.max_services.value_or(opts.max_services);
	dopts.ttl = cfg.service_ttl_seconds ? std::chrono::seconds(*cfg.service_ttl_seconds) : opts.service_ttl;
	dir_ = std::make_unique<identity::ServiceDirectory>(procfs, std::move(resolver), dopts);

	collectors_.push_back(optional_component("net", [&]() -> std::unique_ptr<Collector> {
		return std::make_unique<NetCollector>(features, NetCollector::Options{opts.max_processes});
	}));

	// The maps net shares with the cgroup_skb components (-1 each when net did not load).
	const auto *net = find_collector<NetCollector>(collectors_);
	int sock_owner_fd = net ? net->sock_owner_map_fd() : -1;
	int stream_ports_fd = net ? net->stream_ports_map_fd() : -1;

	HttpCollector::Options ho;
	ho.routes = cfg.http_routes;
	ho.max_services = dopts.max_services;
	ho.sock_owner_fd = sock_owner_fd;
	ho.stream_ports_fd = stream_ports_fd;
	collectors_.push_back(optional_component("http", [&]() -> std::unique_ptr<Collector> {
		return HttpCollector::create(features, ho);
	}));

	StreamCollector::Options sto;
	sto.sock_owner_fd = sock_owner_fd;
	sto.stream_ports_fd = stream_ports_fd;
	// One cgroup_skb program per direction: http's, which tail-calls stream's for its ports
	// (`--force-off tail_call`: each attaches its own, as before, e.g. to see each one's cost).
	if (const auto *http = find_collector<HttpCollector>(collectors_); http && features.has(Feature::tail_call)) {
		sto.chain_in_fd = http->chain_map_fd(true);
		sto.chain_out_fd = http->chain_map_fd(false);
	}
	collectors_.push_back(optional_component("stream", [&]() -> std::unique_ptr<Collector> {
		return std::make_unique<StreamCollector>(features, procfs, sto);
	}));

	// The scheduler component is loaded last: its per-process map fills with every process
	// that runs and is drained by housekeeping, which starts only when every component is
	// loaded (the verifier can take seconds over the others on a busy host). It is polled
	// first: its walk names processes gone before /proc was read from the command line their
	// execve left in its map, and the other components' figures for them follow that name.
	SchedCollector::Options so;
	so.max_processes = opts.max_processes;
	collectors_.insert(collectors_.begin(), std::make_unique<SchedCollector>(features, so));

	std::string mountinfo;
	identity::read_file(opts.proc_root + "/self/mountinfo", mountinfo, 4 << 20);
	collectors_.push_back(std::make_unique<MemoryCollector>(procfs, find_cgroup_mounts(mountinfo)));

	std::lock_guard lock(mu_);
	refresh_locked(true);
}

Agent::~Agent() = default;

void Agent::refresh_locked(bool force) const
{
	auto now = std::chrono::steady_clock::now();
	if (!force && now - last_refresh_ < std::chrono::seconds(1))
		return;
	dir_->refresh(now);
	last_refresh_ = now;
}

void Agent::housekeeping()
{
	std::lock_guard lock(mu_);
	refresh_locked(true);
	for (auto &c : collectors_)
		c->poll(*dir_);
}

std::vector<std::pair<std::string, std::string>> Agent::data_directories() const
{
	std::lock_guard lock(mu_);
	std::vector<std::pair<std::string, std::string>> out;
	identity::ProcFs procfs(proc_root_);
	for (const auto *svc : dir_->services()) {
		for (pid_t pid : dir_->pids_of(svc->id)) {
			auto st = procfs.stat(pid);
			if (!st)
				continue;
			bool pg = st->comm == "postgres" || st->comm == "postmaster";
			bool my = st->comm == "mysqld" || st->comm == "mariadbd";
			if (!pg && !my)
				continue;
			// Only the postmaster: its backends share the directory and the parent's name.
			if (pg) {
				auto parent = procfs.stat(st->ppid);
				if (parent && (parent->comm == "postgres" || parent->comm == "postmaster"))
					continue;
			}
			char buf[4096];
			ssize_t n = ::readlink((proc_root_ + "/" + std::to_string(pid) + "/cwd").c_str(), buf, sizeof buf - 1);
			if (n <= 1)
				continue;
			out.emplace_back(svc->identity.name, std::string(buf, static_cast<size_t>(n)));
		}
	}
	return out;
}

std::vector<HookStatus> Agent::hooks() const
{
	std::vector<HookStatus> out;
	for (const auto &c : collectors_)
		for (auto &h : c->hooks())
			out.push_back(h);
	return out;
}

std::vector<prometheus::MetricFamily> Agent::Collect() const
{
	auto t0 = std::chrono::steady_clock::now();
	std::lock_guard lock(mu_);
	refresh_locked(false);
	std::vector<prometheus::MetricFamily> out;
	for (const auto &c : collectors_) {
		try {
			c->poll(*dir_);
			c->collect(*dir_, out);
		} catch (const std::exception &e) {
			// One component failing must not take the others' numbers down with it.
			log::error("collector %s: %s", c->name(), e.what());
		}
	}

	using prometheus::MetricType;
	auto procs = metrics::family("aurum_service_processes", "Live processes of the service.", MetricType::Gauge);
	for (const auto *s : dir_->services())
		metrics::add_gauge(procs, dir_->labels(s->id), s->live_processes);
	out.push_back(std::move(procs));
	auto over = metrics::family("aurum_services_overflow_total",
				    "Processes reported as service_name=\"_other\" because --max-services was reached.",
				    MetricType::Counter);
	metrics::add_counter(over, {}, static_cast<double>(dir_->overflowed_processes()));
	out.push_back(std::move(over));

	auto build = metrics::family("aurum_build_info", "aurum's version.", MetricType::Gauge);
	metrics::add_gauge(build, {{"version", AURUM_VERSION}}, 1);
	out.push_back(std::move(build));

	auto feat = metrics::family("aurum_feature_available", "Kernel features found by the probes at start.",
				    MetricType::Gauge);
	for (size_t i = 0; i < kFeatureCount; i++) {
		auto f = static_cast<Feature>(i);
		metrics::add_gauge(feat, {{"feature", feature_name(f)}}, features_.has(f) ? 1 : 0);
	}
	out.push_back(std::move(feat));

	auto att = metrics::family("aurum_probe_attached",
				   "1 when the hook is attached; 0 when it is unavailable and its signal degraded.",
				   MetricType::Gauge);
	auto runs = metrics::family("aurum_bpf_program_runs_total",
				    "Runs of each BPF program (kernel BPF stats; 0 unless kernel.bpf_stats_enabled=1).",
				    MetricType::Counter);
	auto run_s = metrics::family("aurum_bpf_program_run_seconds_total",
				     "Time spent in each BPF program (kernel BPF stats; 0 unless kernel.bpf_stats_enabled=1).",
				     MetricType::Counter);
	auto lost = metrics::family("aurum_lost_events_total",
				    "Events the kernel side could not record (full map, failed ringbuf reserve).",
				    MetricType::Counter);
	for (const auto &c : collectors_) {
		for (const auto &h : c->hooks())
			metrics::add_gauge(att, {{"component", h.component}, {"probe", h.hook},
						 {"variant", h.variant.empty() ? "none" : h.variant}},
					   h.attached ? 1 : 0);
		for (const auto &p : c->program_stats()) {
			metrics::add_counter(runs, {{"component", p.component}, {"program", p.program}},
					     static_cast<double>(p.run_count));
			metrics::add_counter(run_s, {{"component", p.component}, {"program", p.program}},
					     static_cast<double>(p.run_time_ns) / 1e9);
		}
		for (const auto &l : c->losses())
			metrics::add_counter(lost, {{"component", c->name()}, {"reason", l.reason}},
					     static_cast<double>(l.count));
	}
	out.push_back(std::move(att));
	out.push_back(std::move(runs));
	out.push_back(std::move(run_s));
	out.push_back(std::move(lost));

	auto series = metrics::family("aurum_scrape_series", "Samples in the previous scrape of /metrics.",
				      MetricType::Gauge);
	metrics::add_gauge(series, {}, static_cast<double>(last_series_));
	out.push_back(std::move(series));
	auto dur = metrics::family("aurum_scrape_duration_seconds",
				   "Time the previous scrape took to collect (lock held, maps read).", MetricType::Gauge);
	metrics::add_gauge(dur, {}, last_scrape_seconds_);
	out.push_back(std::move(dur));

	std::size_t n = 0;
	for (const auto &f : out)
		n += f.metric.size();
	last_series_ = n;
	last_scrape_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	scrapes_++;
	return out;
}

} // namespace aurum
