// SPDX-License-Identifier: Apache-2.0
#include "collectors/net.h"

#include <sys/stat.h>

#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "bpf/sock.h"
#include "core/iter.h"
#include "core/log.h"
#include "core/maps.h"
#include "metrics/family.h"
#include "net.skel.h"

namespace aurum {

static_assert(sizeof(aurum_sock_owner) == 48, "aurum_sock_owner is shared with the L7 components");
static_assert(sizeof(aurum_net_pending) == 32);
static_assert(sizeof(aurum_net_listen_key) == 8);
static_assert(sizeof(aurum_net_stats) % 8 == 0);

struct NetCollector::Impl {
	Skeleton<net_bpf> skel{net_bpf__open(), net_bpf__destroy, "net"};
	bpf_link *iter = nullptr;    // owned by the ProgramSet
	bpf_link *pending = nullptr; // likewise: pending_iter, over sock_owner
};

namespace {

// How long a dead process's service is remembered: its sockets may still close (and be
// counted) after it is gone, lingering in FIN_WAIT or held by a child.
constexpr auto kDeadGrace = std::chrono::minutes(10);

const char *kDirs[AURUM_NET_DIRS] = {"inbound", "outbound"};
const char *kFails[AURUM_NET_FAILS] = {"refused", "timeout", "other"};

// Owners in sk_storage need bpf_sk_storage_get in tracing programs (5.11), which has no
// feature probe of its own: where the load refuses it, the object is loaded again without those
// variants (sk_in_tracing false) and the owners live in a hash keyed by socket address.
std::vector<HookSpec> net_hooks(bool length_tps, bool sk_in_tracing, bool retrans_err,
				 std::function<bpf_link *(bpf_program *)> attach_iter,
				 std::function<bpf_link *(bpf_program *)> attach_pending)
{
	const std::vector<Feature> sk = {Feature::tp_btf, Feature::sk_storage};
	const std::vector<Feature> h = {Feature::tp_btf};
	auto two = [&](const std::string &prog) {
		std::vector<Variant> v;
		if (sk_in_tracing)
			v.push_back({"tp_btf+sk_storage", {prog}, sk});
		v.push_back({"tp_btf+hash", {prog + "_h"}, h});
		return v;
	};
	// Without sock_send_length/sock_recv_length (< 6.3) bytes are read from the TCP counters at
	// close, by the inet_sock_set_state program: no program of its own.
	auto bytes = [&](const char *prog) {
		std::vector<Variant> v;
		if (length_tps)
			v = two(prog);
		v.push_back({"bytes_at_close", {}, h});
		return v;
	};
	// Received bytes, where owners are in sk_storage: TCP's own counter, read by pending_iter,
	// with no program on every receive (net.bpf.c, pending_on). Where owners are in a hash there
	// is no iterator to read it.
	auto rx_bytes = [&]() {
		std::vector<Variant> v;
		if (sk_in_tracing)
			v.push_back({"tcp_counters", {}, sk});
		if (length_tps)
			v.push_back({"tp_btf+hash", {"recv_btf_h"}, h});
		v.push_back({"bytes_at_close", {}, h});
		return v;
	};
	std::vector<Variant> adopt;
	if (sk_in_tracing)
		adopt.push_back({"bpf_iter", {"adopt_iter"}, sk});
	if (length_tps)
		adopt.push_back({"first_send_recv", {}, h});
	std::vector<HookSpec> hooks = {
		{"inet_sock_set_state", false, "connections, connect duration, failed connects, listening ports, socket owners",
		 two("state_btf"), {}},
		{"sock_send_length", false, "transmitted bytes of live connections (counted at close instead)", bytes("send_btf"), {}},
		{"sock_recv_length", false, "received bytes of live connections (counted at close instead)", rx_bytes(), {}},
		{"tcp_retransmit_skb", false, "retransmits", two(retrans_err ? "retrans_err_btf" : "retrans_btf"), {}},
		{"tcp_send_reset", false, "resets sent", two("rst_sent_btf"), {}},
		{"tcp_receive_reset", false, "resets received", two("rst_recv_btf"), {}},
		{"task_file_iter", false, "connections established before the agent started (found on their first send/recv, if ever)",
		 adopt, std::move(attach_iter)},
	};
	// Bytes kept per socket and read live (where the owner lives in sk_storage): the sends'
	// counts, and TCP's own counters where no program counts them. Without it each send is added
	// to its owner's totals (~50 ns more a run), and TCP's counters reach them only when the
	// socket closes or changes owner.
	if (sk_in_tracing)
		hooks.push_back({"pending_iter", false, "bytes of live connections from TCP's counters (counted at close or a change of owner instead)",
				 {{"bpf_iter", {"pending_iter"}, sk}}, std::move(attach_pending)});
	return hooks;
}



} // namespace

NetCollector::NetCollector(const Features &features, Options opts)
{
	bool length_tps = !opts.bytes_at_close && features.has_btf_tracepoint("sock_send_length") &&
			  features.has_btf_tracepoint("sock_recv_length");
	bool retrans_err = features.btf_tracepoint_args("tcp_retransmit_skb") >= 3;
	for (bool sk_in_tracing : {true, false}) {
		unavailable_.clear();
		programs_.reset();
		impl_ = std::make_unique<Impl>();
		auto *skel = impl_->skel.get();
		programs_ = std::make_unique<ProgramSet>("net", skel->obj);
		Impl *impl = impl_.get();
		auto attach_pending = [impl](bpf_program *p) {
			impl->pending = attach_map_iter(p, bpf_map__fd(impl->skel->maps.sock_owner));
			return impl->pending;
		};
		programs_->choose(net_hooks(
					  length_tps, sk_in_tracing, retrans_err,
					  [impl](bpf_program *p) {
						  impl->iter = bpf_program__attach_iter(p, nullptr);
						  return impl->iter;
					  },
					  attach_pending),
				  features);
		std::string state = programs_->chosen("inet_sock_set_state");
		sk_owners_ = state == "tp_btf+sk_storage";
		skel->rodata->bytes_at_close = programs_->chosen("sock_send_length") == "bytes_at_close";
		bpf_map__set_max_entries(skel->maps.net_procs, opts.max_processes);
		bpf_map__set_autocreate(skel->maps.net_sk_h, !sk_owners_);
		if (state.empty()) {
			unavailable_ = "inet_sock_set_state: no variant (needs tp_btf)";
			break;
		}
		int err = net_bpf__load(skel);
		if (err == 0)
			break;
		unavailable_ = std::string("load failed: ") + std::strerror(-err) + " (see the libbpf lines above)";
		if (!sk_owners_)
			break;
		log::warn("net: load with socket owners in sk_storage failed (bpf_sk_storage_get in tracing "
			  "programs needs 5.11): owners in a hash by socket address instead");
	}
	if (!unavailable_.empty()) {
		failed_hooks_ = programs_->status();
		for (auto &h : failed_hooks_) {
			h.attached = false;
			if (h.reason.empty())
				h.reason = unavailable_;
		}
		log::warn("net: network signals unavailable: %s", unavailable_.c_str());
		return;
	}
	programs_->attach();
	// From here the programs keep bytes on the socket; the iterator that reads them is attached.
	if (impl_->pending)
		impl_->skel->bss->pending_on = 1;
	log::info("net: socket owners in %s; bytes sent from %s, received from %s%s",
		  sk_owners_ ? "sk_storage (shared)" : "a hash (not shared)",
		  impl_->skel->rodata->bytes_at_close ? "the TCP counters at close" : "sock_send_length",
		  sk_owners_ ? "TCP's bytes_received"
		  : impl_->skel->rodata->bytes_at_close ? "the TCP counters at close" : "sock_recv_length",
		  impl_->pending ? ", kept per socket and read live" : "");
	if (impl_->iter)
		adopt_existing();
	else
		adopt_listeners_from_proc();
}

// Without the iterator (< 5.11 here: it needs sk_storage in tracing programs), listeners that
// existed before the agent are read from /proc so that their passive opens still have an owner.
// The key's start time is /proc's (10 ms ticks), not the kernel's ns: the service directory
// matches processes at tick resolution, so it names the same service.
void NetCollector::adopt_listeners_from_proc()
{
	identity::ProcFs procfs;
	int fd = bpf_map__fd(impl_->skel->maps.net_listen);
	const std::uint64_t ns_per_tick = 1000000000ULL / static_cast<std::uint64_t>(identity::ProcFs::clock_ticks());
	unsigned n = 0;
	for (pid_t pid : procfs.pids()) {
		auto st = procfs.stat(pid);
		if (!st || st->kthread)
			continue;
		auto ports = procfs.listening_ports(pid);
		if (ports.empty())
			continue;
		struct stat ns{};
		if (::stat(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), &ns) != 0)
			continue;
		aurum_net_listener l{};
		l.owner = aurum_proc_key{static_cast<__u32>(pid), 0, st->start_ticks * ns_per_tick};
		for (auto port : ports) {
			aurum_net_listen_key k{static_cast<__u32>(ns.st_ino), port, 0};
			// BPF_NOEXIST: the first process found holding the port (the one that listened,
			// usually the lowest pid) names it; a live LISTEN event later overwrites it.
			if (bpf_map_update_elem(fd, &k, &l, BPF_NOEXIST) == 0)
				n++;
		}
	}
	log::info("net: %u listening ports found in /proc (no socket iterator on this kernel)", n);
}

NetCollector::~NetCollector()
{
	if (programs_)
		programs_->detach();
}

void NetCollector::adopt_existing()
{
	auto *skel = impl_->skel.get();
	try {
		skel->bss->iter_pass = AURUM_NET_ITER_LISTEN;
		run_iter(impl_->iter, "net: the socket iterator"); // it writes nothing: it fills maps
		skel->bss->iter_pass = AURUM_NET_ITER_ESTABLISHED;
		run_iter(impl_->iter, "net: the socket iterator"); // it writes nothing: it fills maps
	} catch (const std::exception &e) {
		log::warn("%s: connections opened before the start are found on their first send/recv", e.what());
	}
}

std::vector<HookStatus> NetCollector::hooks() const
{
	return unavailable_.empty() ? programs_->status() : failed_hooks_;
}

std::vector<ProgramStats> NetCollector::program_stats() const
{
	return unavailable_.empty() ? programs_->stats() : std::vector<ProgramStats>{};
}

int NetCollector::stream_ports_map_fd() const
{
	return unavailable_.empty() ? bpf_map__fd(impl_->skel->maps.stream_ports) : -1;
}

int NetCollector::sock_owner_map_fd() const
{
	return unavailable_.empty() && sk_owners_ ? bpf_map__fd(impl_->skel->maps.sock_owner) : -1;
}

std::set<std::uint16_t> NetCollector::listening_ports(pid_t pid) const
{
	auto it = ports_by_pid_.find(pid);
	return it == ports_by_pid_.end() ? std::set<std::uint16_t>{} : it->second;
}

identity::ServiceId NetCollector::service_for(identity::ServiceDirectory &dir, const aurum_proc_key &key, const char *comm)
{
	// The service is resolved once per process and kept while it exists: the sched component
	// reports execve (exec_gen) and the directory re-resolves there; asking with another
	// generation here would make both re-read /proc on every poll.
	auto it = seen_.find(key);
	if (it != seen_.end() && dir.exists(it->second.service))
		return it->second.service;
	identity::ServiceId sid = dir.service_of(key, comm, 0);
	seen_[key].service = sid;
	return sid;
}

// The live sockets' pending bytes into the totals of their owners' services: the change since
// the last poll, per owner (bytes that moved to net_procs meanwhile were counted there).
void NetCollector::fold_pending(identity::ServiceDirectory &dir)
{
	std::map<aurum_proc_key, std::pair<std::uint64_t, std::uint64_t>, KeyLess> now;
	try {
		for (const auto &r : run_iter_records<aurum_net_pending>(impl_->pending, "net: the pending-bytes iterator")) {
			auto &p = now[r.owner];
			p.first += r.rx;
			p.second += r.tx;
		}
	} catch (const Error &e) {
		log::warn("%s", e.what());
		return; // folded in as of the last poll; the next one catches up
	}
	// v + now - before, never below zero (a service whose totals were dropped starts again).
	auto move = [](std::uint64_t &v, std::uint64_t now_pending, std::uint64_t before) {
		v = v + now_pending >= before ? v + now_pending - before : 0;
	};
	for (auto &[key, s] : seen_) {
		if ((s.pend_rx || s.pend_tx) && !now.count(key)) {
			auto t = totals_.find(s.service);
			if (t != totals_.end()) {
				move(t->second.rx, 0, s.pend_rx);
				move(t->second.tx, 0, s.pend_tx);
			}
			s.pend_rx = s.pend_tx = 0;
		}
	}
	for (const auto &[key, p] : now) {
		identity::ServiceId sid = service_for(dir, key, "");
		auto &s = seen_[key];
		auto &t = totals_[sid];
		move(t.rx, p.first, s.pend_rx);
		move(t.tx, p.second, s.pend_tx);
		s.pend_rx = p.first;
		s.pend_tx = p.second;
	}
}

void NetCollector::poll(identity::ServiceDirectory &dir)
{
	if (!unavailable_.empty())
		return;
	auto *skel = impl_->skel.get();
	auto now = std::chrono::steady_clock::now();
	auto dead = walk_map<aurum_proc_key, aurum_net_stats>(
		bpf_map__fd(skel->maps.net_procs), [&](const aurum_proc_key &key, aurum_net_stats &v) {
			v.comm[AURUM_COMM_LEN - 1] = '\0';
			identity::ServiceId sid = service_for(dir, key, v.comm);
			auto &seen = seen_[key];
			const auto &l = seen.last;
			auto &t = totals_[sid];
			t.rx += v.rx_bytes - l.rx_bytes;
			t.tx += v.tx_bytes - l.tx_bytes;
			t.retrans += v.retrans_segs - l.retrans_segs;
			t.rst_sent += v.rst_sent - l.rst_sent;
			t.rst_recv += v.rst_recv - l.rst_recv;
			for (int d = 0; d < AURUM_NET_DIRS; d++) {
				t.opened[d] += v.opened[d] - l.opened[d];
				t.closed[d] += v.closed[d] - l.closed[d];
				// Unsigned differences, then signed: a process may close more than it opened.
				std::uint64_t up = (v.opened[d] - l.opened[d]) + (v.adopted[d] - l.adopted[d]) + (v.moved_in[d] - l.moved_in[d]);
				std::uint64_t down = (v.closed[d] - l.closed[d]) + (v.moved_out[d] - l.moved_out[d]);
				t.active[d] += static_cast<std::int64_t>(up - down);
			}
			for (int f = 0; f < AURUM_NET_FAILS; f++)
				t.failed[f] += v.failed[f] - l.failed[f];
			t.conn_count += v.conn_count - l.conn_count;
			t.conn_sum_ns += v.conn_sum_ns - l.conn_sum_ns;
			for (int i = 0; i < AURUM_CONN_SLOTS; i++)
				t.conn_slots[i] += v.conn_slots[i] - l.conn_slots[i];
			seen.last = v;
			seen.dead = false;
			return dir.alive(key);
		});
	// A dead process's entry is freed; if one of its sockets closes later the entry comes back
	// from zero and is folded into the same service (remembered for kDeadGrace).
	for (const auto &k : dead) {
		auto &s = seen_[k];
		s.last = aurum_net_stats{};
		s.dead = true;
		s.died = now;
	}
	// After net_procs, never before: a socket's bytes leave its pending counters before they
	// reach net_procs (flush_pending), so in this order a poll may miss them once, never count
	// them twice.
	if (impl_->pending)
		fold_pending(dir);
	for (auto &[sid, t] : totals_) {
		t.rx_shown = std::max(t.rx_shown, t.rx);
		t.tx_shown = std::max(t.tx_shown, t.tx);
	}

	listen_.clear();
	ports_by_pid_.clear();
	int lfd = bpf_map__fd(skel->maps.net_listen);
	aurum_net_listen_key lk{}, lnext{};
	aurum_net_listen_key *lprev = nullptr;
	while (bpf_map_get_next_key(lfd, lprev, &lnext) == 0) {
		lk = lnext;
		lprev = &lk;
		aurum_net_listener v{};
		if (bpf_map_lookup_elem(lfd, &lk, &v) != 0)
			continue;
		if (!dir.alive(v.owner)) {
			// The listener's process died without the socket closing in its context (its
			// last holder was another process): forget it.
			bpf_map_delete_elem(lfd, &lk);
			continue;
		}
		// A socket-activated service (systemd listens, the service accepts) is named by the
		// process that accepts its connections.
		const aurum_proc_key &who = v.acceptor.tgid && dir.alive(v.acceptor) ? v.acceptor : v.owner;
		listen_[service_for(dir, who, "")].insert(lk.port);
		ports_by_pid_[static_cast<pid_t>(who.tgid)].insert(lk.port);
	}

	// Processes known only as listeners have no stats entry to tell they died: check them all.
	for (auto it = seen_.begin(); it != seen_.end();) {
		auto &s = it->second;
		if (!s.dead && !dir.alive(it->first)) {
			s.dead = true;
			s.died = now;
		}
		// One with pending bytes still folded in stays: they must come out when they move.
		bool gone = s.dead && now - s.died > kDeadGrace && !s.pend_rx && !s.pend_tx;
		it = gone ? seen_.erase(it) : std::next(it);
	}
}

void NetCollector::collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out)
{
	if (!unavailable_.empty())
		return;
	for (auto it = totals_.begin(); it != totals_.end();)
		it = dir.exists(it->first) ? std::next(it) : totals_.erase(it);

	using prometheus::MetricType;
	auto io = metrics::family("process_network_io_bytes_total",
				  "TCP payload bytes the service's processes read and wrote (sock_recv_length/sock_send_length).",
				  MetricType::Counter);
	auto opened = metrics::family("aurum_tcp_connections_opened_total",
				      "TCP connections that reached ESTABLISHED (inet_sock_set_state).", MetricType::Counter);
	auto closed = metrics::family("aurum_tcp_connections_closed_total",
				      "TCP connections that left ESTABLISHED (inet_sock_set_state).", MetricType::Counter);
	auto active = metrics::family("aurum_tcp_active_connections",
				      "TCP connections in ESTABLISHED now, including those older than the agent.",
				      MetricType::Gauge);
	auto dur = metrics::family("aurum_tcp_connect_duration_seconds",
				   "Outbound connects: SYN sent to ESTABLISHED (inet_sock_set_state).", MetricType::Histogram);
	auto failed = metrics::family("aurum_tcp_failed_connects_total",
				      "Outbound connects that ended in SYN_SENT -> CLOSE, by the socket error.",
				      MetricType::Counter);
	auto retrans = metrics::family("aurum_tcp_retransmits_total", "Retransmitted TCP segments (tcp_retransmit_skb).",
				       MetricType::Counter);
	auto resets = metrics::family("aurum_tcp_resets_total",
				      "TCP resets sent and received on the service's sockets (tcp_send_reset/tcp_receive_reset).",
				      MetricType::Counter);
	auto listen = metrics::family("aurum_tcp_listen_info", "1 for each TCP port the service listens on.",
				      MetricType::Gauge);
	static const auto bounds = metrics::log2_bounds_seconds(AURUM_CONN_MIN_SHIFT, AURUM_CONN_SLOTS);
	auto with = [](metrics::Labels l, const char *k, std::string v) {
		l.push_back({k, std::move(v)});
		return l;
	};
	for (const auto &[sid, t] : totals_) {
		auto labels = dir.labels(sid);
		metrics::add_counter(io, with(labels, "network_io_direction", "receive"), static_cast<double>(t.rx_shown));
		metrics::add_counter(io, with(labels, "network_io_direction", "transmit"), static_cast<double>(t.tx_shown));
		for (int d = 0; d < AURUM_NET_DIRS; d++) {
			metrics::add_counter(opened, with(labels, "direction", kDirs[d]), static_cast<double>(t.opened[d]));
			metrics::add_counter(closed, with(labels, "direction", kDirs[d]), static_cast<double>(t.closed[d]));
			// Never below zero: a connection handed over from a process whose share was
			// already folded under another service may close here.
			metrics::add_gauge(active, with(labels, "direction", kDirs[d]),
					   static_cast<double>(std::max<std::int64_t>(0, t.active[d])));
		}
		for (int f = 0; f < AURUM_NET_FAILS; f++)
			metrics::add_counter(failed, with(labels, "reason", kFails[f]), static_cast<double>(t.failed[f]));
		if (t.conn_count)
			metrics::add_histogram(dur, labels, bounds, t.conn_slots, static_cast<double>(t.conn_sum_ns) / 1e9);
		metrics::add_counter(retrans, labels, static_cast<double>(t.retrans));
		metrics::add_counter(resets, with(labels, "direction", "sent"), static_cast<double>(t.rst_sent));
		metrics::add_counter(resets, with(labels, "direction", "received"), static_cast<double>(t.rst_recv));
	}
	for (const auto &[sid, ports] : listen_) {
		if (!dir.exists(sid))
			continue;
		for (auto p : ports)
			metrics::add_gauge(listen, with(dir.labels(sid), "port", std::to_string(p)), 1);
	}
	for (auto *f : {&io, &opened, &closed, &active, &dur, &failed, &retrans, &resets, &listen})
		out.push_back(std::move(*f));
}

std::vector<Loss> NetCollector::losses() const
{
	std::vector<Loss> out;
	if (!unavailable_.empty())
		return out;
	int fd = bpf_map__fd(impl_->skel->maps.net_lost);
	const char *names[AURUM_NET_LOSS_MAX] = {"process_map_full", "listen_map_full", "sk_storage_full", "socket_owner_unknown"};
	for (__u32 i = 0; i < AURUM_NET_LOSS_MAX; i++) {
		__u64 v = 0;
		bpf_map_lookup_elem(fd, &i, &v);
		out.push_back({names[i], v});
	}
	return out;
}

} // namespace aurum
