// SPDX-License-Identifier: Apache-2.0
// PostgreSQL and AMQP 0-9-1 from the wire (issue 5). PostgreSQL is framed in the kernel where
// bpf_loop exists (bpf/stream.bpf.c, stream_pg_*): queries are aggregated there per owner and
// poll() reads the map. Otherwise, and always for AMQP, the kernel copies the TCP payload of
// segments on database and broker ports into a ringbuf; a thread here feeds each socket's bytes,
// in sequence order, to the protocol state machines of userspace/proto/. Both keep per-process
// totals that poll() folds per service.
#pragma once
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "bpf/stream.h"
#include "collectors/collector.h"
#include "identity/procfs.h"
#include "proto/amqp.h"
#include "proto/pgsql.h"

namespace aurum {

class StreamCollector : public Collector {
public:
	struct Options {
		int sock_owner_fd = -1;               // the net component's map, shared; -1: own map
		int stream_ports_fd = -1;             // net's stream_ports (marked at listen()); -1: own
		// http's program arrays (HttpCollector::chain_map_fd): our cgroup_skb programs are
		// tail-called from http's for our ports instead of attached. Needs stream_ports_fd,
		// the map both read. -1: attach our own.
		int chain_in_fd = -1, chain_out_fd = -1;
		std::map<std::uint16_t, std::uint8_t> ports; // extra port -> enum aurum_stream_proto
		std::chrono::seconds idle_connection{600};    // forget a connection's state after this
	};
	StreamCollector(const Features &features, identity::ProcFs procfs, Options opts);
	~StreamCollector() override;
	const char *name() const override { return "stream"; }
	bool chained_to_http() const
	{
		return opts_.chain_in_fd >= 0 && opts_.chain_out_fd >= 0 && opts_.stream_ports_fd >= 0;
	}
	void poll(identity::ServiceDirectory &dir) override;
	void collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out) override;
	std::vector<HookStatus> hooks() const override;
	std::vector<ProgramStats> program_stats() const override;
	std::vector<Loss> losses() const override;

	// One event from the ringbuf; public so that tests can drive the reassembly without a kernel.
	void handle(const aurum_stream_event &e, const std::uint8_t *data);
	// PostgreSQL framed in the kernel (else copied and parsed here).
	bool pgsql_in_kernel() const { return pg_in_kernel_; }

	// Per-process totals, exposed for tests.
	struct PgKey {
		bool server;
		std::string error_class;
		std::uint16_t server_port;
		bool operator<(const PgKey &o) const
		{
			return std::tie(server, error_class, server_port) < std::tie(o.server, o.error_class, o.server_port);
		}
	};
	static constexpr int kDbBuckets = 9; // 1 ms .. 10 s, the semantic conventions' advice
	struct Hist {
		std::uint64_t counts[kDbBuckets + 1] = {};
		double sum = 0;
		void observe(double seconds);
		void add(const Hist &o);
	};
	struct ProcTotals {
		std::string comm; // names the process if it is gone before poll() (a short backend)
		std::map<PgKey, Hist> pg;
		proto::AmqpCounts amqp{};
		Hist amqp_settle;
		std::uint64_t amqp_dead_lettered = 0;
	};

	// Framing events of PostgreSQL connections (kernel counters, or the parsers' stats).
	struct PgFraming {
		std::uint64_t resync = 0, gap_in_body = 0, dropped = 0, unmatched = 0;
		std::uint64_t tls = 0, gss = 0, cancel = 0, gave_up_malformed = 0;
		std::uint64_t step_limit = 0, load_failed = 0;
		// Loopback segments framed by their sender for both ends, and those the receiver framed
		// itself (kernel framing with sk_lookup only).
		std::uint64_t mirrored = 0, mirror_missed = 0;
		void add(const proto::PgsqlParser &p);
	};

private:
	struct Dir {
		bool seen = false;
		bool fin = false; // this direction ended: its FIN went by
		std::uint32_t next_seq = 0;
	};
	struct Conn {
		std::uint8_t proto = AURUM_STREAM_NONE;
		bool server = false;
		bool ignored = false; // an "auto" port whose first bytes were neither protocol
		bool skipped = false; // the kernel side was told to stop copying (stream_skip)
		aurum_proc_key owner{};
		aurum_proc_key previous_owner{}; // the owner before the current one (e.g. the listener's)
		std::uint16_t server_port = 0;
		Dir in, out;
		std::unique_ptr<proto::PgsqlParser> pg;
		std::unique_ptr<proto::AmqpParser> amqp;
		proto::AmqpCounts amqp_seen{};
		std::uint64_t last_ns = 0;
	};
	void feed(Conn &c, bool ingress, const std::uint8_t *data, std::size_t len, std::uint64_t ts);
	void gap(Conn &c, bool ingress, std::uint64_t n);
	void account_amqp(Conn &c);
	void forget(std::unordered_map<std::uint64_t, Conn>::iterator it);
	ProcTotals &totals(const Conn &c);
	void consume();
	void update_ports(identity::ServiceDirectory &dir);
	void read_pg_hist(identity::ServiceDirectory &dir);
	aurum_pgsql_stats pg_kernel_stats() const;
	bool process_alive(const aurum_proc_key &key) const;
	identity::ServiceId service_of(identity::ServiceDirectory &dir, const aurum_proc_key &key, const ProcTotals &t);
	static bool key_less(const aurum_proc_key &a, const aurum_proc_key &b);

	struct Impl;
	std::unique_ptr<Impl> impl_;
	std::unique_ptr<ProgramSet> programs_;
	identity::ProcFs procfs_;
	Options opts_;

	// Written by the consumer thread, read by poll(): guarded by mu_.
	std::mutex mu_;
	std::unordered_map<std::uint64_t, Conn> conns_;
	struct KeyLess {
		bool operator()(const aurum_proc_key &a, const aurum_proc_key &b) const { return key_less(a, b); }
	};
	std::map<aurum_proc_key, ProcTotals, KeyLess> procs_;
	proto::AmqpTopology topology_;
	// Malformed headers/frames of connections already forgotten, by protocol (pgsql, amqp); the
	// live connections' parsers are added at collect time.
	std::uint64_t malformed_pg_ = 0, malformed_amqp_ = 0;
	PgFraming framing_forgotten_;
	bool pg_in_kernel_ = false;
	// Kernel aggregates as last read, for deltas (entries of exited owners are deleted).
	struct PgKeyLess {
		bool operator()(const aurum_pgsql_key &a, const aurum_pgsql_key &b) const
		{
			return std::memcmp(&a, &b, sizeof a) < 0;
		}
	};
	std::map<aurum_pgsql_key, aurum_pgsql_hist, PgKeyLess> pg_seen_;
	std::atomic<std::uint64_t> unknown_owner_events_{0};

	// Per-service totals (poll folds procs_ into these under the agent lock).
	std::map<identity::ServiceId, ProcTotals> services_;
	std::map<identity::ServiceId, std::uint64_t> unacked_;
	// What names each owner once it has exited (a short client, a PostgreSQL backend that lived
	// for one connection), learned while it was alive: its comm, the service poll() found for
	// it, and a stand-in: its parent if it is a forked worker with the parent's comm, else the
	// socket's previous owner (the listener's process, for an accepted socket). Dropped at the
	// third poll that finds the process gone (late events of a dead owner still find it).
	struct OwnerInfo {
		std::string comm;
		aurum_proc_key stand_in{};
		bool has_service = false;
		identity::ServiceId service = 0;
		int polls_gone = 0;
	};
	std::map<aurum_proc_key, OwnerInfo, KeyLess> owners_;
	OwnerInfo &owner_info(const aurum_proc_key &owner, const aurum_proc_key &previous);
	std::map<std::uint16_t, std::uint8_t> ports_set_;

	std::atomic<bool> stop_{false};
	std::thread consumer_;
};

} // namespace aurum
