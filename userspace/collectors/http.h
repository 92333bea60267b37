// SPDX-License-Identifier: Apache-2.0
// HTTP/1.x golden signals, server and client side, from bpf/http.bpf.c (cgroup_skb on the cgroup
// v2 root, per-connection state in sk_storage, aggregation in the kernel).
#pragma once
#include <array>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <tuple>

#include "collectors/collector.h"
#include "bpf/http.h"
#include "proto/http_route.h"

struct http_bpf;
struct ring_buffer;

namespace aurum {

class HttpCollector : public Collector {
public:
	struct Options {
		bool routes = false;          // http.routes: the http_route label through the ringbuf
		unsigned max_keys = 8192;     // (process, side, method, status, port) aggregates in the kernel
		unsigned max_flows = 16384;   // (process, side) names of client processes
		unsigned max_routes = 64;     // distinct routes per service before /{other}
		unsigned max_server_addresses = 32; // distinct server_address values per service before _OTHER
		unsigned max_services = 256;
		int sock_owner_fd = -1;       // the net component's sock_owner map, when it is loaded
		int stream_ports_fd = -1;     // net's stream_ports (PostgreSQL and AMQP ports skipped); -1: own, empty
		// Set by create() when routes were asked for and the kernel refused the programs with
		// them: why (the "routes" hook is then reported unavailable, and routes are off).
		std::string routes_refused;
	};
	HttpCollector(const Features &features, Options opts);
	// The collector, and where the kernel refuses the programs with routes on, the collector
	// without them: routes are a label, not the signal (throws if that fails too).
	static std::unique_ptr<HttpCollector> create(const Features &features, Options opts);
	~HttpCollector() override;
	const char *name() const override { return "http"; }
	// The program array (one slot) that our cgroup_skb program of a direction tail-calls for
	// the ports the stream component parses (bpf/http.bpf.c); -1 unless both are attached.
	int chain_map_fd(bool ingress) const;
	void poll(identity::ServiceDirectory &dir) override;
	void collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out) override;
	// The programs' hooks, and "routes" when routes were asked for: the http_route label,
	// which a kernel without a ringbuf or whose verifier refuses the larger programs lacks while
	// every other HTTP signal stays.
	std::vector<HookStatus> hooks() const override;
	std::vector<ProgramStats> program_stats() const override { return programs_->stats(); }
	std::vector<Loss> losses() const override;

	// Upper bounds of the duration buckets, seconds (bpf/http.h).
	static const std::vector<double> &duration_bounds();
	// Upper bounds of the body size buckets, bytes (bpf/http.h).
	static const std::vector<double> &size_bounds();
	// The server_address label of a kernel address (16 bytes, network order; IPv4 as
	// ::ffff:a.b.c.d is written dotted).
	static std::string address_text(const __u32 addr[4]);

	// Called by the ringbuf callback (public for it, not for users).
	void on_event(const aurum_http_event &e);

private:
	struct Hist {
		std::uint64_t sum_ns = 0;
		std::array<std::uint64_t, AURUM_HTTP_SLOTS> slots{};
	};
	struct Sizes {
		std::uint64_t sum = 0;
		std::array<std::uint64_t, AURUM_HTTP_SIZE_SLOTS> slots{};
	};
	struct BodySizes {
		Sizes req, resp;
	};
	// (service, side, method, status, port, route, server address)
	using SeriesKey = std::tuple<identity::ServiceId, int, int, int, int, std::string, std::string>;
	// The label for a server address of a service: itself until the service has
	// max_server_addresses of them, then "_OTHER".
	std::string server_address(identity::ServiceId sid, const __u32 addr[4]);
	struct KeyLess {
		bool operator()(const aurum_http_key &a, const aurum_http_key &b) const;
	};
	struct Seen {
		aurum_http_stats last{};
	};
	struct ProcLess {
		bool operator()(const aurum_proc_key &a, const aurum_proc_key &b) const
		{
			return a.tgid != b.tgid ? a.tgid < b.tgid : a.start_ns < b.start_ns;
		}
	};
	// The service of a process the kernel named; a process that died keeps the service it had
	// while alive (the directory would name it by comm alone once /proc forgot it).
	identity::ServiceId service_of(identity::ServiceDirectory &dir, const aurum_proc_key &k, const char *comm);
	struct Impl;
	std::unique_ptr<Impl> impl_;
	std::map<aurum_proc_key, identity::ServiceId, ProcLess> owners_;
	std::unique_ptr<ProgramSet> programs_;
	Options opts_;
	bool loaded_ = false;
	std::map<aurum_http_key, Seen, KeyLess> seen_;
	std::map<SeriesKey, Hist> totals_;
	std::map<SeriesKey, BodySizes> sizes_; // always kernel aggregates (never per route)
	std::map<identity::ServiceId, std::set<std::string>> addresses_;
	std::map<std::pair<identity::ServiceId, int>, std::int64_t> active_;
	proto::RouteTable routes_;
	identity::ServiceDirectory *dir_ = nullptr; // valid during poll() only (ringbuf callback)
	std::uint64_t route_overflow_ = 0;
};

} // namespace aurum
