// SPDX-License-Identifier: Apache-2.0
#include "collectors/stream.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "bpf/proto/amqp.h"
#include "bpf/proto/pgsql.h"
#include "core/fd.h"
#include "core/log.h"
#include "metrics/family.h"
#include "stream.skel.h"

namespace aurum {

static_assert(sizeof(aurum_pgsql_key) == 24, "aurum_pgsql_key: no implicit padding");
static_assert(sizeof(aurum_stream_event) == 56, "aurum_stream_event layout");

namespace {

// db_client_operation_duration_seconds advice of the semantic conventions.
constexpr double kDbBounds[StreamCollector::kDbBuckets] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
// Deliver-to-settle: consumers hold messages from microseconds to minutes.
constexpr double kSettleBounds[StreamCollector::kDbBuckets] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};

// Programs whose listening ports carry these protocols, found without configuration.
std::uint8_t proto_of_exe(const std::string &exe)
{
	if (exe == "postgres" || exe == "postmaster")
		return AURUM_STREAM_PGSQL;
	if (exe == "beam.smp" || exe == "rabbitmq-server")
		return AURUM_STREAM_AUTO; // the broker also serves HTTP (management, prometheus)
	return AURUM_STREAM_NONE;
}

const char *proto_name(std::uint8_t proto)
{
	switch (proto) {
	case AURUM_STREAM_PGSQL:
		return "postgresql";
	case AURUM_STREAM_AMQP:
		return "amqp";
	default:
		return "auto";
	}
}

} // namespace

void StreamCollector::Hist::observe(double s)
{
	int i = 0;
	while (i < kDbBuckets && s > kDbBounds[i])
		i++;
	counts[i]++;
	sum += s;
}

void StreamCollector::Hist::add(const Hist &o)
{
	for (int i = 0; i <= kDbBuckets; i++)
		counts[i] += o.counts[i];
	sum += o.sum;
}

bool StreamCollector::key_less(const aurum_proc_key &a, const aurum_proc_key &b)
{
	return a.tgid != b.tgid ? a.tgid < b.tgid : a.start_ns < b.start_ns;
}

struct StreamCollector::Impl {
	Skeleton<stream_bpf> skel{stream_bpf__open(), stream_bpf__destroy, "stream"};
	UniqueFd cgroup;
	ring_buffer *rb = nullptr;
	~Impl()
	{
		if (rb)
			ring_buffer__free(rb);
	}
};

StreamCollector::StreamCollector(const Features &features, identity::ProcFs procfs, Options opts)
	: impl_(std::make_unique<Impl>()), procfs_(std::move(procfs)), opts_(std::move(opts))
{
	auto *skel = impl_->skel.get();
	programs_ = std::make_unique<ProgramSet>("stream", skel->obj);
	auto attach_cgroup = [this](bpf_program *p) { return bpf_program__attach_cgroup(p, impl_->cgroup.get()); };
	// With http's cgroup_skb programs attached, ours run only when theirs tail-call them, for the
	// ports we parse: one program run per segment on the rest of the traffic instead of two.
	const bool chained = chained_to_http();
	auto chain = [](int map_fd) {
		return [map_fd](bpf_program *p) -> int {
			__u32 slot = 0;
			int fd = bpf_program__fd(p);
			return bpf_map_update_elem(map_fd, &slot, &fd, BPF_ANY) ? -errno : 0;
		};
	};
	const std::vector<Feature> needs = {Feature::cgroup_skb, Feature::ringbuf, Feature::sk_storage};
	// bpf_loop (5.17) walks the PostgreSQL message headers of a segment in the kernel; without it
	// every segment on a database port is copied to userspace and parsed there (the same metrics,
	// more CPU). The variant is exported as aurum_probe_attached{variant=...}.
	std::vector<Feature> framing = needs;
	framing.push_back(Feature::bpf_loop);
	std::vector<HookSpec> hooks = {
		{"cgroup_skb/ingress", false, "PostgreSQL and AMQP wire metrics",
		 {{"cgroup_skb_pgsql", {"stream_pg_ingress"}, framing}, {"cgroup_skb", {"stream_ingress"}, needs}},
		 attach_cgroup},
		{"cgroup_skb/egress", false, "PostgreSQL and AMQP wire metrics",
		 {{"cgroup_skb_pgsql", {"stream_pg_egress"}, framing}, {"cgroup_skb", {"stream_egress"}, needs}},
		 attach_cgroup}};
	if (chained) {
		hooks[0].chain = chain(opts_.chain_in_fd);
		hooks[1].chain = chain(opts_.chain_out_fd);
		hooks[0].chained_to = hooks[1].chained_to = "http's program (tail call)";
	}
	programs_->choose(std::move(hooks), features);
	pg_in_kernel_ = programs_->chosen("cgroup_skb/ingress") == "cgroup_skb_pgsql" &&
			programs_->chosen("cgroup_skb/egress") == "cgroup_skb_pgsql";
	if (programs_->chosen("cgroup_skb/ingress").empty()) {
		// Nothing to load: report the hooks as unavailable and stay idle.
		bpf_map__set_autocreate(skel->maps.stream_rb, false);
		return;
	}
	impl_->cgroup.reset(::open(features.cgroup2_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!impl_->cgroup)
		throw Error("stream: open cgroup v2 root " + features.cgroup2_path(), errno);
	if (opts_.sock_owner_fd >= 0 && bpf_map__reuse_fd(skel->maps.sock_owner, opts_.sock_owner_fd))
		throw Error("stream: reuse the net component's sock_owner map", errno);
	if (opts_.stream_ports_fd >= 0 && bpf_map__reuse_fd(skel->maps.stream_ports, opts_.stream_ports_fd))
		throw Error("stream: reuse the net component's stream_ports map", errno);
	// On loopback the sender's egress frames each PostgreSQL segment for the receiving socket too
	// (bpf/stream.bpf.c, pg_mirror_*); false compiles those paths out at load.
	skel->rodata->have_sk_lookup = features.has(Feature::sk_lookup);
	if (bench_stop_after_lookup()) {
		skel->rodata->bench_stop_after_lookup = true;
		log::warn("stream: AURUM_BENCH_STOP_AFTER_LOOKUP=1: PostgreSQL segments stop after their state "
			  "lookup, no query is measured (a benchmark floor, never for real use)");
	}
	if (int err = stream_bpf__load(skel))
		throw Error("load stream BPF programs (see the libbpf lines above)", err);
	programs_->attach();
	if (pg_in_kernel_)
		log::info("stream: PostgreSQL framed in the kernel (bpf_loop); AMQP parsed in userspace");
	else
		log::warn("stream: PostgreSQL parsed in userspace from copies of every segment (%s); more agent CPU",
			  features.has(Feature::bpf_loop) ? "framing programs not chosen" : "no bpf_loop: kernel < 5.17");

	int ports = bpf_map__fd(skel->maps.stream_ports);
	std::map<std::uint16_t, std::uint8_t> initial = {{5432, AURUM_STREAM_PGSQL}, {5672, AURUM_STREAM_AMQP}};
	for (const auto &[p, proto] : opts_.ports)
		initial[p] = proto;
	for (const auto &[p, proto] : initial) {
		__u32 k = p;
		__u8 v = proto;
		bpf_map_update_elem(ports, &k, &v, BPF_ANY);
		ports_set_[p] = proto;
	}

	impl_->rb = ring_buffer__new(
		bpf_map__fd(skel->maps.stream_rb),
		[](void *ctx, void *data, size_t size) -> int {
			if (size < sizeof(aurum_stream_event))
				return 0;
			aurum_stream_event e;
			std::memcpy(&e, data, sizeof e);
			if (sizeof e + e.copied > size)
				e.copied = static_cast<__u32>(size - sizeof e);
			static_cast<StreamCollector *>(ctx)->handle(e, static_cast<const std::uint8_t *>(data) + sizeof e);
			return 0;
		},
		this, nullptr);
	if (!impl_->rb)
		throw Error("stream: ring_buffer__new", errno);
	consumer_ = std::thread([this] { consume(); });
}

StreamCollector::~StreamCollector()
{
	stop_ = true;
	if (consumer_.joinable())
		consumer_.join();
	programs_->detach();
	// http's programs stop calling ours (they may outlive us).
	if (chained_to_http()) {
		__u32 slot = 0;
		bpf_map_delete_elem(opts_.chain_in_fd, &slot);
		bpf_map_delete_elem(opts_.chain_out_fd, &slot);
	}
}

void StreamCollector::consume()
{
	// The kernel side wakes us only when the ring fills up (bpf/stream.bpf.c): drain it every
	// 20 ms whether or not a wakeup came.
	while (!stop_) {
		int n = ring_buffer__poll(impl_->rb, 20);
		if (n >= 0)
			n = ring_buffer__consume(impl_->rb);
		if (n < 0 && n != -EINTR) {
			log::error("stream: ring buffer poll: %s", std::strerror(-n));
			return;
		}
	}
}

void StreamCollector::handle(const aurum_stream_event &e, const std::uint8_t *data)
{
	std::lock_guard lock(mu_);
	if (e.flags & AURUM_STREAM_OWNER) {
		// A kernel-framed PostgreSQL socket changed hands: learn the new owner's name now.
		aurum_proc_key previous{};
		if (e.copied >= sizeof previous)
			std::memcpy(&previous, data, sizeof previous);
		if (e.owner.tgid)
			owner_info(e.owner, previous);
		return;
	}
	bool closing = e.flags & (AURUM_STREAM_FIN | AURUM_STREAM_RST);
	auto found = conns_.find(e.cookie);
	if (found == conns_.end()) {
		if (e.len == 0)
			return; // the close of a connection already forgotten (or never seen)
		found = conns_.try_emplace(e.cookie).first;
	}
	auto &c = found->second;
	bool ingress = e.flags & AURUM_STREAM_INGRESS;
	if (c.proto == AURUM_STREAM_NONE) {
		c.proto = e.proto;
		c.server = e.flags & AURUM_STREAM_SERVER;
		c.server_port = c.server ? e.local_port : e.remote_port;
	}
	if (e.owner.tgid && std::memcmp(&e.owner, &c.owner, sizeof c.owner) != 0) {
		if (c.owner.tgid)
			c.previous_owner = c.owner;
		c.owner = e.owner;
		owner_info(c.owner, c.previous_owner); // learn its name now, while it is most likely alive
	}
	c.last_ns = e.ts_ns;
	if (c.ignored) {
		if (closing)
			forget(found);
		else if (!c.skipped && impl_->rb) {
			__u8 one = 1;
			bpf_map_update_elem(bpf_map__fd(impl_->skel->maps.stream_skip), &e.cookie, &one, BPF_ANY);
			c.skipped = true;
		}
		return;
	}

	// Sequence numbers: drop what was seen (retransmits), turn holes into gaps.
	Dir &d = ingress ? c.in : c.out;
	std::uint64_t skip = 0;
	if (d.seen) {
		auto delta = static_cast<std::int32_t>(e.seq - d.next_seq);
		if (delta < 0) {
			skip = static_cast<std::uint64_t>(-static_cast<std::int64_t>(delta));
			if (skip >= e.len)
				return; // all of it was seen already
		} else if (delta > 0) {
			gap(c, ingress, static_cast<std::uint64_t>(delta));
		}
	}
	d.seen = true;
	d.next_seq = e.seq + e.len;
	std::uint64_t have = e.copied;
	if (skip < have)
		feed(c, ingress, data + skip, static_cast<std::size_t>(have - skip), e.ts_ns);
	if (e.len > have)
		gap(c, ingress, e.len - std::max<std::uint64_t>(have, skip));
	bool given_up = c.ignored || (c.pg && c.pg->gave_up() != proto::PgGiveUp::kNone) ||
			(c.amqp && c.amqp->gave_up() != proto::AmqpGiveUp::kNone);
	if (given_up && !c.skipped && impl_->rb) {
		// Nothing more to learn from this socket: stop the copies (TLS traffic, say).
		__u8 one = 1;
		bpf_map_update_elem(bpf_map__fd(impl_->skel->maps.stream_skip), &e.cookie, &one, BPF_ANY);
		c.skipped = true;
	}
	if (closing) {
		// Both FINs or a reset: nothing more will be parsed on this socket (a retransmitted
		// FIN finds nothing and is dropped above).
		d.fin = d.fin || (e.flags & AURUM_STREAM_FIN);
		if ((e.flags & AURUM_STREAM_RST) || (c.in.fin && c.out.fin))
			forget(found);
	}
}

void StreamCollector::forget(std::unordered_map<std::uint64_t, Conn>::iterator it)
{
	auto &c = it->second;
	if (c.skipped && impl_->rb)
		bpf_map_delete_elem(bpf_map__fd(impl_->skel->maps.stream_skip), &it->first);
	if (c.pg) {
		malformed_pg_ += c.pg->stats().malformed;
		framing_forgotten_.add(*c.pg);
	}
	if (c.amqp) {
		malformed_amqp_ += c.amqp->stats().malformed;
		account_amqp(c);
	}
	conns_.erase(it);
}

void StreamCollector::feed(Conn &c, bool ingress, const std::uint8_t *data, std::size_t len, std::uint64_t ts)
{
	// Client-to-server bytes arrive on the server's socket and leave the client's.
	bool to_server = c.server ? ingress : !ingress;
	if (c.proto == AURUM_STREAM_AUTO && !c.pg && !c.amqp) {
		const auto n = static_cast<__u32>(len);
		aurum_amqp_frame_hdr fh{};
		if (to_server && aurum_amqp_protocol_header(data, n) == 1)
			c.proto = AURUM_STREAM_AMQP;
		else if (to_server && aurum_pgsql_startup_kind(data, n) > 0)
			c.proto = AURUM_STREAM_PGSQL;
		else if (aurum_amqp_frame_header(data, n, 0, &fh) == 0 &&
			 (8ULL + fh.size > len || data[7 + fh.size] == AURUM_AMQP_FRAME_END))
			// A connection opened before the port was marked (the broker's ports are learnt
			// from /proc a moment after it listens): it is picked up at a frame boundary.
			c.proto = AURUM_STREAM_AMQP;
		else if (to_server) {
			c.ignored = true;
			return;
		} else {
			return; // the client speaks first; wait for it
		}
	}
	if (c.proto == AURUM_STREAM_PGSQL) {
		if (!c.pg) {
			auto *self = this;
			Conn *conn = &c;
			c.pg = std::make_unique<proto::PgsqlParser>([self, conn](const proto::PgQueryEvent &q) {
				if (!conn->owner.tgid) {
					self->unknown_owner_events_++;
					return;
				}
				auto &t = self->totals(*conn);
				PgKey k{conn->server, q.error_class, conn->server ? std::uint16_t(0) : conn->server_port};
				t.pg[k].observe(static_cast<double>(q.end_ns - q.start_ns) / 1e9);
			});
		}
		c.pg->feed(to_server ? proto::PgDirection::kFrontend : proto::PgDirection::kBackend, data, len, ts);
	} else if (c.proto == AURUM_STREAM_AMQP) {
		if (!c.amqp) {
			auto *self = this;
			Conn *conn = &c;
			c.amqp = std::make_unique<proto::AmqpParser>(
				[self, conn](const proto::AmqpSettleEvent &s) {
					if (!conn->owner.tgid || s.deliver_ns == 0 || s.settle_ns < s.deliver_ns)
						return;
					if (s.how == proto::AmqpSettle::kAck || s.how == proto::AmqpSettle::kNack ||
					    s.how == proto::AmqpSettle::kReject)
						self->totals(*conn).amqp_settle.observe(
							static_cast<double>(s.settle_ns - s.deliver_ns) / 1e9);
				},
				&topology_);
		}
		c.amqp->feed(to_server ? proto::AmqpDirection::kClientToBroker : proto::AmqpDirection::kBrokerToClient,
			     data, len, ts);
		account_amqp(c);
	}
}

void StreamCollector::gap(Conn &c, bool ingress, std::uint64_t n)
{
	bool to_server = c.server ? ingress : !ingress;
	if (c.pg)
		c.pg->gap(to_server ? proto::PgDirection::kFrontend : proto::PgDirection::kBackend, n);
	if (c.amqp) {
		c.amqp->gap(to_server ? proto::AmqpDirection::kClientToBroker : proto::AmqpDirection::kBrokerToClient, n);
		account_amqp(c);
	}
}

void StreamCollector::account_amqp(Conn &c)
{
	if (!c.owner.tgid)
		return; // counted once the owner is known: amqp_seen stays behind until then
	const auto &now = c.amqp->counts();
	auto &t = totals(c).amqp;
	auto &was = c.amqp_seen;
#define AURUM_DELTA(field) t.field += now.field - was.field
	AURUM_DELTA(publish);
	AURUM_DELTA(deliver);
	AURUM_DELTA(ack);
	AURUM_DELTA(nack);
	AURUM_DELTA(reject);
	AURUM_DELTA(dead_lettered);
	AURUM_DELTA(dlx_deliveries);
	AURUM_DELTA(requeued);
#undef AURUM_DELTA
	was = now;
}

StreamCollector::OwnerInfo &StreamCollector::owner_info(const aurum_proc_key &owner, const aurum_proc_key &previous)
{
	auto [it, fresh] = owners_.try_emplace(owner);
	auto &info = it->second;
	if (!fresh && !info.comm.empty())
		return info;
	if (auto st = procfs_.stat(static_cast<pid_t>(owner.tgid));
	    st && identity::ServiceDirectory::same_start(owner.start_ns, st->start_ticks)) {
		info.comm = st->comm;
		if (auto parent = procfs_.stat(st->ppid); parent && parent->comm == st->comm) {
			const std::uint64_t ns_per_tick = 1000000000ULL / static_cast<std::uint64_t>(identity::ProcFs::clock_ticks());
			info.stand_in = {static_cast<__u32>(parent->pid), 0, parent->start_ticks * ns_per_tick};
			return info;
		}
	}
	if (!info.stand_in.tgid && previous.tgid)
		info.stand_in = previous;
	return info;
}

StreamCollector::ProcTotals &StreamCollector::totals(const Conn &c)
{
	auto [it, fresh] = procs_.try_emplace(c.owner);
	if (fresh || it->second.comm.empty())
		it->second.comm = owner_info(c.owner, c.previous_owner).comm;
	return it->second;
}

bool StreamCollector::process_alive(const aurum_proc_key &key) const
{
	auto st = procfs_.stat(static_cast<pid_t>(key.tgid));
	return st && st->state != 'Z' && identity::ServiceDirectory::same_start(key.start_ns, st->start_ticks);
}

identity::ServiceId StreamCollector::service_of(identity::ServiceDirectory &dir, const aurum_proc_key &key,
						 const ProcTotals &t)
{
	auto &info = owner_info(key, {});
	if (process_alive(key)) {
		info.service = dir.service_of(key, t.comm.c_str(), 0);
		info.has_service = true;
		return info.service;
	}
	if (info.has_service && dir.exists(info.service))
		return info.service;
	// Gone before any poll saw it alive: named by its stand-in, else as the directory names a
	// gone process: by the record the sched component left for it (polled first, it resolves
	// the command line the kernel kept at execve, so config rules apply, as for net), by the
	// comm only where nothing recorded it. Exited and not reaped yet counts as gone there too.
	if (info.stand_in.tgid && process_alive(info.stand_in))
		return dir.service_of(info.stand_in, "", 0);
	return dir.service_of(key, t.comm.c_str(), 0);
}

void StreamCollector::update_ports(identity::ServiceDirectory &dir)
{
	if (!impl_->rb)
		return;
	int fd = bpf_map__fd(impl_->skel->maps.stream_ports);
	for (const auto *svc : dir.services()) {
		for (pid_t pid : dir.pids_of(svc->id)) {
			auto info = procfs_.stat(pid);
			if (!info)
				continue;
			std::uint8_t proto = proto_of_exe(info->comm);
			if (proto == AURUM_STREAM_NONE)
				continue;
			for (auto port : procfs_.listening_ports(pid)) {
				if (ports_set_.count(port))
					continue;
				__u32 k = port;
				__u8 v = proto;
				if (bpf_map_update_elem(fd, &k, &v, BPF_ANY) == 0) {
					ports_set_[port] = proto;
					log::info("stream: port %u of %s (pid %d) carries %s", port, info->comm.c_str(), pid,
						  proto == AURUM_STREAM_PGSQL ? "PostgreSQL" : "PostgreSQL or AMQP");
				}
			}
		}
	}
}

void StreamCollector::PgFraming::add(const proto::PgsqlParser &p)
{
	const auto &s = p.stats();
	resync += s.resyncs;
	gap_in_body += s.gaps_in_body;
	dropped += s.queries_dropped;
	unmatched += s.unmatched_ready;
	switch (p.gave_up()) {
	case proto::PgGiveUp::kTls: tls++; break;
	case proto::PgGiveUp::kGssEncrypted: gss++; break;
	case proto::PgGiveUp::kCancel: cancel++; break;
	case proto::PgGiveUp::kMalformed: gave_up_malformed++; break;
	default: break;
	}
}

aurum_pgsql_stats StreamCollector::pg_kernel_stats() const
{
	aurum_pgsql_stats total{};
	if (!pg_in_kernel_)
		return total;
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return total;
	std::vector<aurum_pgsql_stats> per(static_cast<std::size_t>(ncpu));
	__u32 zero = 0;
	if (bpf_map_lookup_elem(bpf_map__fd(impl_->skel->maps.pg_stat), &zero, per.data()) != 0)
		return total;
	for (const auto &c : per)
		for (int i = 0; i < AURUM_PGSQL_STAT_MAX; i++)
			total.n[i] += c.n[i];
	return total;
}

// The kernel's per-owner aggregates into procs_ (as deltas since the last read), exactly as the
// userspace parser's events would have been observed.
void StreamCollector::read_pg_hist(identity::ServiceDirectory &dir)
{
	(void)dir;
	int fd = bpf_map__fd(impl_->skel->maps.pg_hist);
	aurum_pgsql_key key{}, next{};
	aurum_pgsql_key *prev = nullptr;
	std::vector<aurum_pgsql_key> dead;
	std::map<aurum_proc_key, bool, KeyLess> alive;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		aurum_pgsql_hist v{};
		if (bpf_map_lookup_elem(fd, &key, &v) != 0)
			continue;
		auto &seen = pg_seen_[key];
		Hist delta;
		bool any = false;
		for (int i = 0; i < AURUM_PGSQL_SLOTS; i++) {
			delta.counts[i] = v.slots[i] - seen.slots[i];
			any = any || delta.counts[i];
		}
		delta.sum = static_cast<double>(v.sum_ns - seen.sum_ns) / 1e9;
		seen = v;
		if (any) {
			auto [it, fresh] = procs_.try_emplace(key.owner);
			if (fresh || it->second.comm.empty())
				it->second.comm = owner_info(key.owner, {}).comm;
			std::string cls;
			if (key.error)
				cls = key.cls[0] ? std::string(reinterpret_cast<const char *>(key.cls), 2) : "_OTHER";
			PgKey k{key.server != 0, cls, key.server_port};
			it->second.pg[k].add(delta);
		}
		auto [a, fresh] = alive.try_emplace(key.owner, true);
		if (fresh)
			a->second = process_alive(key.owner);
		if (!a->second)
			dead.push_back(key);
	}
	for (const auto &k : dead) {
		bpf_map_delete_elem(fd, &k);
		pg_seen_.erase(k);
	}
}

void StreamCollector::poll(identity::ServiceDirectory &dir)
{
	if (!impl_->rb)
		return;
	update_ports(dir);
	std::lock_guard lock(mu_);
	if (pg_in_kernel_)
		read_pg_hist(dir);
	for (auto &[key, t] : procs_) {
		auto sid = service_of(dir, key, t);
		auto &s = services_[sid];
		for (auto &[k, h] : t.pg)
			s.pg[k].add(h);
		s.amqp_settle.add(t.amqp_settle);
		auto &a = s.amqp, &b = t.amqp;
		a.publish += b.publish, a.deliver += b.deliver, a.ack += b.ack, a.nack += b.nack, a.reject += b.reject;
		a.dead_lettered += b.dead_lettered, a.dlx_deliveries += b.dlx_deliveries, a.requeued += b.requeued;
	}
	procs_.clear();
	for (auto it = owners_.begin(); it != owners_.end();) {
		if (process_alive(it->first)) {
			it->second.polls_gone = 0;
			++it;
		} else if (++it->second.polls_gone >= 3) {
			it = owners_.erase(it);
		} else {
			++it;
		}
	}
	// In flight: delivered and not settled, over the live connections of each service.
	unacked_.clear();
	std::uint64_t newest = 0;
	for (const auto &[cookie, c] : conns_)
		newest = std::max(newest, c.last_ns);
	std::map<aurum_proc_key, bool, KeyLess> alive; // one /proc read per owner, not per socket
	for (auto it = conns_.begin(); it != conns_.end();) {
		auto &c = it->second;
		bool idle = newest > c.last_ns &&
			    newest - c.last_ns > static_cast<std::uint64_t>(opts_.idle_connection.count()) * 1000000000ULL;
		// The process itself, not the directory's table: a client that started since the
		// last refresh is not in the table yet, and its connection's state must survive.
		bool dead = false;
		if (c.owner.tgid) {
			auto [a, fresh] = alive.try_emplace(c.owner, true);
			if (fresh)
				a->second = process_alive(c.owner);
			dead = !a->second;
		}
		if (idle || dead) {
			auto gone = it++;
			forget(gone);
			continue;
		}
		if (c.amqp && c.owner.tgid)
			unacked_[dir.service_of(c.owner, "", 0)] += c.amqp->unacked();
		++it;
	}
}

void StreamCollector::collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out)
{
	using prometheus::MetricType;
	for (auto it = services_.begin(); it != services_.end();)
		it = dir.exists(it->first) ? std::next(it) : services_.erase(it);
	auto server = metrics::family("aurum_db_server_query_duration_seconds",
				      "PostgreSQL queries answered by the service, from the query's arrival to "
				      "ReadyForQuery leaving (wire protocol, stream capture).",
				      MetricType::Histogram);
	auto client = metrics::family("db_client_operation_duration_seconds",
				      "PostgreSQL queries the service sent, from the query leaving to ReadyForQuery "
				      "arriving (wire protocol, stream capture).",
				      MetricType::Histogram);
	auto msgs = metrics::family("aurum_amqp_messages_total",
				    "AMQP 0-9-1 messages on the service's sockets by operation (publish, deliver, "
				    "ack, nack, reject; multiple acks count each message).",
				    MetricType::Counter);
	auto dl = metrics::family("aurum_amqp_dead_lettered_messages_total",
				  "Messages rejected or nacked with requeue=false on queues with a dead-letter "
				  "exchange, plus deliveries from a known dead-letter exchange.",
				  MetricType::Counter);
	auto unacked = metrics::family("aurum_amqp_unacked_messages",
				       "Messages delivered on the service's connections and not yet settled.",
				       MetricType::Gauge);
	auto settle = metrics::family("aurum_amqp_delivery_settle_duration_seconds",
				      "Time from basic.deliver to the ack, nack or reject that settled it.",
				      MetricType::Histogram);
	std::vector<double> bounds(kDbBounds, kDbBounds + kDbBuckets);
	std::vector<double> sbounds(kSettleBounds, kSettleBounds + kDbBuckets);
	for (const auto &[sid, t] : services_) {
		auto labels = dir.labels(sid);
		for (const auto &[k, h] : t.pg) {
			auto l = labels;
			l.push_back({"db_system_name", "postgresql"});
			l.push_back({"error_type", k.error_class});
			if (!k.server)
				l.push_back({"server_port", std::to_string(k.server_port)});
			metrics::add_histogram(k.server ? server : client, l, bounds, h.counts, h.sum);
		}
		const auto &a = t.amqp;
		bool amqp = a.publish + a.deliver + a.ack + a.nack + a.reject + a.dead_lettered + a.dlx_deliveries > 0;
		if (!amqp)
			continue;
		const std::pair<const char *, std::uint64_t> ops[] = {
			{"publish", a.publish}, {"deliver", a.deliver}, {"ack", a.ack}, {"nack", a.nack}, {"reject", a.reject}};
		for (const auto &[op, n] : ops) {
			auto l = labels;
			l.push_back({"operation", op});
			metrics::add_counter(msgs, l, static_cast<double>(n));
		}
		metrics::add_counter(dl, labels, static_cast<double>(a.dead_lettered + a.dlx_deliveries));
		metrics::add_gauge(unacked, labels, static_cast<double>(unacked_.count(sid) ? unacked_.at(sid) : 0));
		metrics::add_histogram(settle, labels, sbounds, t.amqp_settle.counts, t.amqp_settle.sum);
	}
	auto watched = metrics::family("aurum_stream_ports",
				       "TCP ports whose payload is parsed (1 per port): configured, defaults, and "
				       "listening ports of postgres and beam.smp processes.",
				       MetricType::Gauge);
	for (const auto &[port, proto] : ports_set_)
		metrics::add_gauge(watched, {{"port", std::to_string(port)}, {"protocol", proto_name(proto)}}, 1);
	auto bad = metrics::family("aurum_stream_malformed_total",
				   "Message headers or frames that failed validation on a parsed port (the "
				   "parser resynchronises or gives up on that connection).",
				   MetricType::Counter);
	auto tracked = metrics::family("aurum_stream_connections",
				       "Sockets whose streams are being parsed now (freed at FIN in both directions, "
				       "RST, the owner's exit, or 10 minutes of silence).",
				       MetricType::Gauge);
	auto framing = metrics::family("aurum_stream_pgsql_framing_total",
				       "PostgreSQL framing events: resynchronisations, gaps absorbed, queries not "
				       "reported, unmatched ReadyForQuery, connections given up on (by cause).",
				       MetricType::Counter);
	{
		std::lock_guard lock(mu_);
		std::uint64_t pg = malformed_pg_, amqp = malformed_amqp_;
		PgFraming f = framing_forgotten_;
		for (const auto &[cookie, c] : conns_) {
			if (c.pg) {
				pg += c.pg->stats().malformed;
				f.add(*c.pg);
			}
			if (c.amqp)
				amqp += c.amqp->stats().malformed;
		}
		std::uint64_t live = conns_.size();
		if (pg_in_kernel_) {
			auto k = pg_kernel_stats();
			pg += k.n[AURUM_PGSQL_STAT_MALFORMED];
			f.resync += k.n[AURUM_PGSQL_STAT_RESYNC];
			f.gap_in_body += k.n[AURUM_PGSQL_STAT_GAP_IN_BODY];
			f.dropped += k.n[AURUM_PGSQL_STAT_DROPPED];
			f.unmatched += k.n[AURUM_PGSQL_STAT_UNMATCHED];
			f.tls += k.n[AURUM_PGSQL_STAT_GAVE_UP_TLS];
			f.gss += k.n[AURUM_PGSQL_STAT_GAVE_UP_GSS];
			f.cancel += k.n[AURUM_PGSQL_STAT_GAVE_UP_CANCEL];
			f.gave_up_malformed += k.n[AURUM_PGSQL_STAT_GAVE_UP_MALFORMED];
			f.step_limit += k.n[AURUM_PGSQL_STAT_STEP_LIMIT];
			f.load_failed += k.n[AURUM_PGSQL_STAT_LOAD_FAILED];
			f.mirrored += k.n[AURUM_PGSQL_STAT_MIRRORED];
			f.mirror_missed += k.n[AURUM_PGSQL_STAT_MIRROR_MISSED];
			// Sockets with framing state not yet seen closing (a socket torn down without a
			// FIN or RST passing, e.g. an abortive close with nothing sent, stays counted).
			auto opened = k.n[AURUM_PGSQL_STAT_OPENED], closed = k.n[AURUM_PGSQL_STAT_CLOSED];
			live += opened > closed ? opened - closed : 0;
		}
		metrics::add_counter(bad, {{"protocol", "postgresql"}}, static_cast<double>(pg));
		metrics::add_counter(bad, {{"protocol", "amqp"}}, static_cast<double>(amqp));
		metrics::add_gauge(tracked, {}, static_cast<double>(live));
		const std::pair<const char *, std::uint64_t> events[] = {
			{"resync", f.resync},       {"gap_in_body", f.gap_in_body},
			{"query_dropped", f.dropped}, {"unmatched_ready", f.unmatched},
			{"gave_up_tls", f.tls},     {"gave_up_gss", f.gss},
			{"gave_up_cancel", f.cancel}, {"gave_up_malformed", f.gave_up_malformed},
			{"step_limit", f.step_limit}, {"load_failed", f.load_failed},
			{"loopback_mirrored", f.mirrored}, {"loopback_mirror_missed", f.mirror_missed}};
		for (const auto &[ev, n] : events)
			metrics::add_counter(framing, {{"event", ev}}, static_cast<double>(n));
	}
	out.push_back(std::move(watched));
	out.push_back(std::move(bad));
	out.push_back(std::move(tracked));
	out.push_back(std::move(framing));
	out.push_back(std::move(server));
	out.push_back(std::move(client));
	out.push_back(std::move(msgs));
	out.push_back(std::move(dl));
	out.push_back(std::move(unacked));
	out.push_back(std::move(settle));
}

std::vector<HookStatus> StreamCollector::hooks() const { return programs_->status(); }
std::vector<ProgramStats> StreamCollector::program_stats() const { return programs_->stats(); }

std::vector<Loss> StreamCollector::losses() const
{
	std::vector<Loss> out;
	if (impl_->rb) {
		__u32 k = AURUM_STREAM_LOSS_RINGBUF_FULL;
		__u64 v = 0;
		bpf_map_lookup_elem(bpf_map__fd(impl_->skel->maps.stream_lost), &k, &v);
		out.push_back({"ringbuf_full", v});
		auto pk = pg_kernel_stats();
		// Exchanges on sockets whose owner the net component never learned: not attributed.
		out.push_back({"owner_unknown", unknown_owner_events_ + pk.n[AURUM_PGSQL_STAT_NO_OWNER]});
		if (pg_in_kernel_) {
			out.push_back({"pgsql_no_state", pk.n[AURUM_PGSQL_STAT_NO_STATE]});
			out.push_back({"pgsql_hist_full", pk.n[AURUM_PGSQL_STAT_HIST_FULL]});
		}
	}
	return out;
}

} // namespace aurum
