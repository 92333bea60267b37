// SPDX-License-Identifier: Apache-2.0
// TCP signals per service: payload bytes, connections opened/closed/active, connect duration,
// failed connects, retransmits, resets and listening ports. Also the owner of the shared
// per-socket owner map (bpf/sock.h) that the L7 components read.
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "collectors/collector.h"
#include "bpf/net.h"

struct net_bpf;

namespace aurum {

class NetCollector : public Collector {
public:
	struct Options {
		unsigned max_processes = 16384;
		// Count bytes from the TCP counters at close even where sock_send_length and
		// sock_recv_length exist: the < 6.3 path, which has no kernel feature to force off.
		bool bytes_at_close = false;
	};
	// Never throws for a kernel that cannot run the programs: the component is then reported
	// unavailable (hooks() says why) and exports nothing.
	NetCollector(const Features &features, Options opts);
	~NetCollector() override;
	const char *name() const override { return "net"; }
	void poll(identity::ServiceDirectory &dir) override;
	void collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out) override;
	std::vector<HookStatus> hooks() const override;
	std::vector<ProgramStats> program_stats() const override;
	std::vector<Loss> losses() const override;

	// The sk_storage map of struct aurum_sock_owner, for bpf_map__reuse_fd in the L7
	// components; -1 when the component could not load or keeps owners in its own hash (< 5.11).
	int sock_owner_map_fd() const;
	// The stream component's port map (bpf/stream_ports.bpf.h), which net's LISTEN hook marks.
	int stream_ports_map_fd() const;
	// TCP ports a process listens on, as of the last poll (for identity port rules).
	std::set<std::uint16_t> listening_ports(pid_t pid) const;

private:
	struct Totals {
		std::uint64_t rx = 0, tx = 0, retrans = 0, rst_sent = 0, rst_recv = 0;
		// What is exported: rx and tx never shown lower than before. With pending bytes (see
		// poll) a poll may miss bytes that were on their way from a socket to net_procs;
		// the next one has them again.
		std::uint64_t rx_shown = 0, tx_shown = 0;
		std::uint64_t opened[AURUM_NET_DIRS] = {}, closed[AURUM_NET_DIRS] = {};
		std::int64_t active[AURUM_NET_DIRS] = {};
		std::uint64_t failed[AURUM_NET_FAILS] = {};
		std::uint64_t conn_count = 0, conn_sum_ns = 0;
		std::uint64_t conn_slots[AURUM_CONN_SLOTS] = {};
	};
	struct Seen {
		aurum_net_stats last{};
		std::uint64_t pend_rx = 0, pend_tx = 0; // live sockets' pending bytes, as last folded in
		identity::ServiceId service = 0;
		bool dead = false;
		std::chrono::steady_clock::time_point died{};
	};
	struct KeyLess {
		bool operator()(const aurum_proc_key &a, const aurum_proc_key &b) const
		{
			return a.tgid != b.tgid ? a.tgid < b.tgid : a.start_ns < b.start_ns;
		}
	};
	identity::ServiceId service_for(identity::ServiceDirectory &dir, const aurum_proc_key &key, const char *comm);
	void adopt_existing();
	void fold_pending(identity::ServiceDirectory &dir);
	void adopt_listeners_from_proc();

	struct Impl;
	std::unique_ptr<Impl> impl_;
	std::unique_ptr<ProgramSet> programs_;
	std::string unavailable_; // why the component did not load, "" when it did
	bool sk_owners_ = false;  // owners in the shared sk_storage map (else in net_sk_h)
	std::vector<HookStatus> failed_hooks_;
	std::map<aurum_proc_key, Seen, KeyLess> seen_;
	std::map<identity::ServiceId, Totals> totals_;
	std::map<identity::ServiceId, std::set<std::uint16_t>> listen_;
	std::map<pid_t, std::set<std::uint16_t>> ports_by_pid_;
};

} // namespace aurum
