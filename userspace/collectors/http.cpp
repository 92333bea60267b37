// SPDX-License-Identifier: Apache-2.0
#include "collectors/http.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>
#include <fcntl.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <numeric>
#include <set>

#include "core/fd.h"
#include "core/iter.h"
#include "core/log.h"
#include "metrics/family.h"
#include "bpf/proto/http.h"
#include "http.skel.h"

namespace aurum {

static_assert(sizeof(aurum_http_key) == 56, "aurum_http_key: no implicit padding");
static_assert(sizeof(aurum_http_flow_key) == 24, "aurum_http_flow_key: no implicit padding");
static_assert(sizeof(aurum_http_inflight) == 24, "aurum_http_inflight: no implicit padding");
static_assert(sizeof(aurum_http_event) == 32 + AURUM_HTTP_TARGET, "aurum_http_event layout");
static_assert(sizeof(aurum_http_config) == 8, "aurum_http_config layout");

struct HttpCollector::Impl {
	Skeleton<http_bpf> skel{http_bpf__open(), http_bpf__destroy, "http"};
	ring_buffer *rb = nullptr;
	bpf_link *inflight = nullptr; // the in-flight iterator, owned by the ProgramSet
	~Impl()
	{
		if (rb)
			ring_buffer__free(rb);
	}
};

namespace {

// Opens the cgroup directory only for the attach: the link holds its own reference.
std::function<bpf_link *(bpf_program *)> attach_to(std::string cgroup)
{
	return [cgroup](bpf_program *prog) -> bpf_link * {
		UniqueFd fd(::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (!fd)
			return nullptr;
		return bpf_program__attach_cgroup(prog, fd.get());
	};
}

std::vector<HookSpec> http_hooks(const Features &f, std::function<bpf_link *(bpf_program *)> attach_iter)
{
	// bpf_loop (5.17) walks request headers for pipelining and body lengths: without it, no HTTP.
	const std::vector<Feature> needs = {Feature::cgroup_v2, Feature::cgroup_skb, Feature::sk_storage, Feature::bpf_loop};
	auto attach = attach_to(f.cgroup2_path());
	return {
		{"cgroup_skb_ingress", false, "HTTP server request starts and client responses: no HTTP metrics",
		 {{"cgroup_skb", {"http_ingress"}, needs}}, attach},
		{"cgroup_skb_egress", false, "HTTP server responses and client requests: no HTTP metrics",
		 {{"cgroup_skb", {"http_egress"}, needs}}, attach},
		// A BTF-typed tracing program (an iterator over http_sk, 5.9), like net's task_file_iter;
		// it has nothing to read without the programs above, so it needs what they need too.
		{"inflight_iter", false, "http_server_active_requests and http_client_active_requests",
		 {{"bpf_iter", {"http_inflight"},
		   {Feature::cgroup_v2, Feature::cgroup_skb, Feature::sk_storage, Feature::bpf_loop, Feature::btf, Feature::tp_btf}}},
		 std::move(attach_iter)},
	};
}

// The in-flight iterator's output: aurum_http_inflight records.
std::vector<aurum_http_inflight> read_inflight(bpf_link *link)
{
	try {
		return run_iter_records<aurum_http_inflight>(link, "http: the in-flight iterator");
	} catch (const Error &e) {
		log::warn("%s", e.what());
	}
	return {};
}

int on_ringbuf(void *ctx, void *data, size_t size)
{
	if (size >= sizeof(aurum_http_event)) {
		aurum_http_event e;
		std::memcpy(&e, data, sizeof e);
		static_cast<HttpCollector *>(ctx)->on_event(e);
	}
	return 0;
}

template <typename K, typename V, typename F> void for_each_entry(int fd, F &&f)
{
	K key{}, next{};
	K *prev = nullptr;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		V v{};
		if (bpf_map_lookup_elem(fd, &key, &v) == 0)
			f(key, v);
	}
}

} // namespace

bool HttpCollector::KeyLess::operator()(const aurum_http_key &a, const aurum_http_key &b) const
{
	return std::memcmp(&a, &b, sizeof a) < 0;
}

const std::vector<double> &HttpCollector::duration_bounds()
{
	static const std::vector<double> b = [] {
		const __u64 ns[] = AURUM_HTTP_BOUNDS_NS;
		std::vector<double> out;
		for (auto v : ns)
			out.push_back(static_cast<double>(v) / 1e9);
		return out;
	}();
	return b;
}

const std::vector<double> &HttpCollector::size_bounds()
{
	static const std::vector<double> b = [] {
		std::vector<double> out;
		for (unsigned s = 0; s + 1 < AURUM_HTTP_SIZE_SLOTS; s++)
			out.push_back(std::ldexp(1.0, static_cast<int>(s + AURUM_HTTP_SIZE_MIN_SHIFT)));
		return out;
	}();
	return b;
}

std::string HttpCollector::address_text(const __u32 addr[4])
{
	char buf[INET6_ADDRSTRLEN] = {};
	const unsigned char *b = reinterpret_cast<const unsigned char *>(addr);
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (std::memcmp(b, v4mapped, sizeof v4mapped) == 0)
		::inet_ntop(AF_INET, b + 12, buf, sizeof buf);
	else
		::inet_ntop(AF_INET6, b, buf, sizeof buf);
	return buf;
}

std::string HttpCollector::server_address(identity::ServiceId sid, const __u32 addr[4])
{
	std::string text = address_text(addr);
	auto &seen = addresses_[sid];
	if (seen.count(text))
		return text;
	if (seen.size() >= opts_.max_server_addresses)
		return "_OTHER";
	seen.insert(text);
	return text;
}

HttpCollector::HttpCollector(const Features &features, Options opts)
    : impl_(std::make_unique<Impl>()), opts_(opts), routes_(opts.max_routes, opts.max_services)
{
	auto *skel = impl_->skel.get();
	programs_ = std::make_unique<ProgramSet>("http", skel->obj);
	auto attach_iter = [impl = impl_.get()](bpf_program *p) {
		impl->inflight = attach_map_iter(p, bpf_map__fd(impl->skel->maps.http_sk));
		return impl->inflight;
	};
	programs_->choose(http_hooks(features, attach_iter), features);
	if (programs_->chosen("cgroup_skb_ingress").empty() || programs_->chosen("cgroup_skb_egress").empty()) {
		// Half of the pair is no measurement at all: load nothing, report both as missing.
		programs_->attach();
		return;
	}
	if (opts_.routes && !features.has(Feature::ringbuf)) {
		opts_.routes = false;
		opts_.routes_refused = "needs ringbuf";
		log::warn("http: routes need a BPF ringbuf, which this kernel lacks: no http_route label");
	}
	skel->rodata->cfg.routes = opts_.routes ? 1 : 0;
	skel->rodata->cfg.shared_owner = opts.sock_owner_fd >= 0 ? 1 : 0;
	skel->rodata->have_current_task =
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_get_current_task, nullptr) == 1 &&
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_probe_read_kernel_str, nullptr) == 1 &&
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_probe_read_kernel, nullptr) == 1;
	skel->rodata->have_current_pid =
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_get_current_pid_tgid, nullptr) == 1;
	skel->rodata->have_sk_lookup = features.has(Feature::sk_lookup);
	if (bench_stop_after_lookup()) {
		skel->rodata->bench_stop_after_lookup = true;
		log::warn("http: AURUM_BENCH_STOP_AFTER_LOOKUP=1: every segment stops after its state lookup, "
			  "no HTTP request is measured (a benchmark floor, never for real use)");
	}
	if (opts.sock_owner_fd >= 0) {
		if (int err = bpf_map__reuse_fd(skel->maps.sock_owner, opts.sock_owner_fd))
			throw Error("http: reuse the net component's sock_owner map", -err);
	}
	if (opts.stream_ports_fd >= 0) {
		if (int err = bpf_map__reuse_fd(skel->maps.stream_ports, opts.stream_ports_fd))
			throw Error("http: reuse the net component's stream_ports map", -err);
	}
	bpf_map__set_max_entries(skel->maps.http_stats, opts.max_keys);
	bpf_map__set_max_entries(skel->maps.http_flows, opts.max_flows);
	// The ringbuf carries routes only; without them the smallest one keeps the object loadable.
	bpf_map__set_max_entries(skel->maps.http_events, opts_.routes ? 8u << 20 : 4096u);
	if (int err = http_bpf__load(skel))
		throw Error("load http BPF programs (see the libbpf lines above)", -err);
	programs_->attach();
	loaded_ = true;
	if (opts_.routes) {
		impl_->rb = ring_buffer__new(bpf_map__fd(skel->maps.http_events), on_ringbuf, this, nullptr);
		if (!impl_->rb)
			throw Error("http: ring buffer for routes", errno);
	}
	log::info("http: owners from %s; routes %s",
		  opts.sock_owner_fd >= 0 ? "the net component's sock_owner" : "the first payload each connection sends",
		  opts_.routes ? "on" : (opts_.routes_refused.empty() ? "off" : "off (refused)"));
}

std::vector<HookStatus> HttpCollector::hooks() const
{
	auto out = programs_->status();
	if (opts_.routes || !opts_.routes_refused.empty()) {
		HookStatus h;
		h.component = "http";
		h.hook = "routes";
		h.attached = opts_.routes && loaded_;
		h.variant = h.attached ? "ringbuf" : "";
		h.reason = h.attached ? "" : opts_.routes_refused.empty() ? "http not loaded" : opts_.routes_refused;
		h.degrades = "the http_route label";
		out.push_back(h);
	}
	return out;
}

std::unique_ptr<HttpCollector> HttpCollector::create(const Features &features, Options opts)
{
	try {
		return std::make_unique<HttpCollector>(features, opts);
	} catch (const std::exception &e) {
		if (!opts.routes)
			throw;
		log::warn("http: not loaded with routes on (%s); loading it without routes: no http_route label", e.what());
		opts.routes = false;
		opts.routes_refused = std::string("refused with routes on: ") + e.what();
		return std::make_unique<HttpCollector>(features, opts);
	}
}

HttpCollector::~HttpCollector() { programs_->detach(); }

int HttpCollector::chain_map_fd(bool ingress) const
{
	if (!loaded_)
		return -1;
	for (const auto &h : programs_->status())
		if (h.hook.rfind("cgroup_skb", 0) == 0 && !h.attached)
			return -1;
	return bpf_map__fd(ingress ? impl_->skel->maps.http_chain_in : impl_->skel->maps.http_chain_out);
}

identity::ServiceId HttpCollector::service_of(identity::ServiceDirectory &dir, const aurum_proc_key &k, const char *comm)
{
	auto it = owners_.find(k);
	if (it != owners_.end() && !dir.alive(k) && dir.exists(it->second))
		return it->second;
	identity::ServiceId sid = dir.service_of(k, comm, 0);
	owners_[k] = sid;
	return sid;
}

void HttpCollector::on_event(const aurum_http_event &e)
{
	if (!dir_)
		return;
	identity::ServiceId sid = service_of(*dir_, e.owner, "");
	std::size_t n = std::min<std::size_t>(e.target_len, AURUM_HTTP_TARGET);
	std::string_view line(e.target, n);
	std::string route = routes_.route(std::to_string(sid), proto::http_request_target(line));
	auto &h = totals_[{sid, e.side, e.method, e.status, e.port, route, ""}];
	h.sum_ns += e.duration_ns;
	static const __u64 bounds[64] = AURUM_HTTP_BOUNDS_NS;
	h.slots[aurum_http_duration_slot(e.duration_ns, bounds)]++;
}

void HttpCollector::poll(identity::ServiceDirectory &dir)
{
	if (!loaded_)
		return;
	auto *skel = impl_->skel.get();
	dir_ = &dir;
	if (impl_->rb)
		ring_buffer__consume(impl_->rb);
	dir_ = nullptr;

	// Client processes' names, kept in the kernel for those gone before /proc was read.
	std::map<std::pair<__u32, __u64>, std::string> comms;
	std::vector<aurum_http_flow_key> dead_flows;
	int ffd = bpf_map__fd(skel->maps.http_flows);
	for_each_entry<aurum_http_flow_key, aurum_http_flow>(ffd, [&](const aurum_http_flow_key &k, aurum_http_flow &f) {
		f.comm[AURUM_COMM_LEN - 1] = '\0';
		comms[{k.owner.tgid, k.owner.start_ns}] = f.comm;
		if (!dir.alive(k.owner))
			dead_flows.push_back(k);
	});
	for (const auto &k : dead_flows)
		bpf_map_delete_elem(ffd, &k);

	// In-flight: the requests pending on the live connections now (a closed connection's state
	// is gone with it, so nothing stale is left to reap), per the connection's current owner.
	active_.clear();
	if (impl_->inflight)
		for (const auto &r : read_inflight(impl_->inflight)) {
			auto c = comms.find({r.owner.tgid, r.owner.start_ns});
			identity::ServiceId sid = service_of(dir, r.owner, c != comms.end() ? c->second.c_str() : "");
			active_[{sid, r.side}] += r.count;
		}

	std::vector<aurum_http_key> dead;
	int sfd = bpf_map__fd(skel->maps.http_stats);
	// One aggregate's growth since the last poll into one series. With routes on, the server
	// side's durations come from the ringbuf (they carry the route): only its body sizes here.
	auto add = [&](const SeriesKey &series, const aurum_http_stats &v, const aurum_http_stats &last) {
		int side = std::get<1>(series);
		active_.try_emplace({std::get<0>(series), side}, 0); // a service with requests shows 0 when none is pending
		if (!(opts_.routes && side == AURUM_HTTP_SIDE_SERVER)) {
			auto &h = totals_[series];
			h.sum_ns += v.sum_ns - last.sum_ns;
			for (int i = 0; i < AURUM_HTTP_SLOTS; i++)
				h.slots[i] += v.slots[i] - last.slots[i];
		}
		if (v.req_body_sum != last.req_body_sum || v.resp_body_sum != last.resp_body_sum ||
		    std::memcmp(v.req_body_slots, last.req_body_slots, sizeof v.req_body_slots) ||
		    std::memcmp(v.resp_body_slots, last.resp_body_slots, sizeof v.resp_body_slots)) {
			auto &b = sizes_[series];
			b.req.sum += v.req_body_sum - last.req_body_sum;
			b.resp.sum += v.resp_body_sum - last.resp_body_sum;
			for (int i = 0; i < AURUM_HTTP_SIZE_SLOTS; i++) {
				b.req.slots[i] += v.req_body_slots[i] - last.req_body_slots[i];
				b.resp.slots[i] += v.resp_body_slots[i] - last.resp_body_slots[i];
			}
		}
	};
	for_each_entry<aurum_http_key, aurum_http_stats>(sfd, [&](const aurum_http_key &k, const aurum_http_stats &v) {
		auto &seen = seen_[k];
		auto c = comms.find({k.owner.tgid, k.owner.start_ns});
		identity::ServiceId sid = service_of(dir, k.owner, c != comms.end() ? c->second.c_str() : "");
		std::string address = k.side == AURUM_HTTP_SIDE_CLIENT ? server_address(sid, k.addr) : "";
		add(SeriesKey{sid, k.side, k.method, k.status, k.port, "", address}, v, seen.last);
		// A loop pair's aggregate is the server end's too (bpf/http.h, struct aurum_http_key).
		if (k.peer.tgid) {
			identity::ServiceId peer = service_of(dir, k.peer, "");
			add(SeriesKey{peer, AURUM_HTTP_SIDE_SERVER, k.method, k.status, 0, "", ""}, v, seen.last);
		}
		seen.last = v;
		if (!dir.alive(k.owner))
			dead.push_back(k);
	});
	for (const auto &k : dead) {
		bpf_map_delete_elem(sfd, &k);
		seen_.erase(k);
	}
	// Owners with nothing left in the maps are forgotten; a straggler is named afresh.
	std::set<std::pair<__u32, __u64>> live;
	for (const auto &[k, v] : seen_) {
		live.insert({k.owner.tgid, k.owner.start_ns});
		if (k.peer.tgid)
			live.insert({k.peer.tgid, k.peer.start_ns});
	}
	for (auto it = owners_.begin(); it != owners_.end();) {
		bool keep = dir.alive(it->first) || live.count({it->first.tgid, it->first.start_ns});
		it = keep ? std::next(it) : owners_.erase(it);
	}
}

void HttpCollector::collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out)
{
	using prometheus::MetricType;
	for (auto it = totals_.begin(); it != totals_.end();) {
		if (dir.exists(std::get<0>(it->first))) {
			++it;
			continue;
		}
		routes_.forget(std::to_string(std::get<0>(it->first)));
		addresses_.erase(std::get<0>(it->first));
		it = totals_.erase(it);
	}
	std::erase_if(sizes_, [&](const auto &e) { return !dir.exists(std::get<0>(e.first)); });
	auto server = metrics::family("http_server_request_duration_seconds",
				      "Request line arriving to status line leaving, per request (cgroup_skb ingress/egress).",
				      MetricType::Histogram);
	auto client = metrics::family("http_client_request_duration_seconds",
				      "Request line leaving to status line arriving, per request (cgroup_skb egress/ingress).",
				      MetricType::Histogram);
	auto labels_of = [&](const SeriesKey &k, bool with_route) {
		const auto &[sid, side, method, status, port, route, address] = k;
		auto labels = dir.labels(sid);
		labels.push_back({"http_request_method", aurum_http_method_name(method)});
		labels.push_back({"http_response_status_code", std::to_string(status)});
		if (side == AURUM_HTTP_SIDE_CLIENT) {
			labels.push_back({"server_port", std::to_string(port)});
			labels.push_back({"server_address", address});
		}
		if (with_route)
			labels.push_back({"http_route", route});
		return labels;
	};
	for (const auto &[k, h] : totals_) {
		int side = std::get<1>(k);
		metrics::add_histogram(side == AURUM_HTTP_SIDE_SERVER ? server : client,
				       labels_of(k, opts_.routes && side == AURUM_HTTP_SIDE_SERVER), duration_bounds(), h.slots,
				       static_cast<double>(h.sum_ns) / 1e9);
	}
	out.push_back(std::move(server));
	out.push_back(std::move(client));

	// Body sizes: the request's from the request direction, the response's from the response
	// direction, per the same (method, status) as the duration; never per route.
	const char *size_help[2][2] = {
		{"Request body bytes (Content-Length, or none), per request the server answered (cgroup_skb).",
		 "Response body bytes (Content-Length, or none), per response the server sent (cgroup_skb)."},
		{"Request body bytes (Content-Length, or none), per request the client sent (cgroup_skb).",
		 "Response body bytes (Content-Length, or none), per response the client received (cgroup_skb)."}};
	prometheus::MetricFamily size_families[2][2] = {
		{metrics::family("http_server_request_body_size_bytes", size_help[0][0], MetricType::Histogram),
		 metrics::family("http_server_response_body_size_bytes", size_help[0][1], MetricType::Histogram)},
		{metrics::family("http_client_request_body_size_bytes", size_help[1][0], MetricType::Histogram),
		 metrics::family("http_client_response_body_size_bytes", size_help[1][1], MetricType::Histogram)}};
	for (const auto &[k, b] : sizes_) {
		int client_side = std::get<1>(k) == AURUM_HTTP_SIDE_CLIENT ? 1 : 0;
		if (std::accumulate(b.req.slots.begin(), b.req.slots.end(), std::uint64_t{0}))
			metrics::add_histogram(size_families[client_side][0], labels_of(k, false), size_bounds(), b.req.slots,
					       static_cast<double>(b.req.sum));
		if (std::accumulate(b.resp.slots.begin(), b.resp.slots.end(), std::uint64_t{0}))
			metrics::add_histogram(size_families[client_side][1], labels_of(k, false), size_bounds(), b.resp.slots,
					       static_cast<double>(b.resp.sum));
	}
	for (auto &side : size_families)
		for (auto &f : side)
			out.push_back(std::move(f));

	auto active_server = metrics::family("http_server_active_requests",
					     "Requests whose request line arrived and whose status line has not left yet.",
					     MetricType::Gauge);
	auto active_client = metrics::family("http_client_active_requests",
					     "Requests sent whose status line has not arrived yet.", MetricType::Gauge);
	for (const auto &[k, n] : active_) {
		if (!dir.exists(k.first))
			continue;
		metrics::add_gauge(k.second == AURUM_HTTP_SIDE_SERVER ? active_server : active_client, dir.labels(k.first),
				   static_cast<double>(n > 0 ? n : 0));
	}
	out.push_back(std::move(active_server));
	out.push_back(std::move(active_client));

	if (opts_.routes) {
		auto over = metrics::family("aurum_http_routes_overflow_total",
					    "Requests reported with http_route=\"/{other}\" because the service's route cap was reached.",
					    MetricType::Counter);
		metrics::add_counter(over, {}, static_cast<double>(routes_.overflowed()));
		out.push_back(std::move(over));
	}
}

std::vector<Loss> HttpCollector::losses() const
{
	std::vector<Loss> out;
	if (!loaded_)
		return out;
	int fd = bpf_map__fd(impl_->skel->maps.http_lost);
	const char *names[AURUM_HTTP_LOSS_MAX] = {"stats_map_full", "flow_map_full", "pipeline_fifo_full",
						  "ringbuf_full",   "owner_unknown", "response_unmatched",
						  "nested_too_deep"};
	for (__u32 i = 0; i < AURUM_HTTP_LOSS_MAX; i++) {
		__u64 v = 0;
		bpf_map_lookup_elem(fd, &i, &v);
		out.push_back({names[i], v});
	}
	return out;
}

} // namespace aurum
