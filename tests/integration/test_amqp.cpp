// SPDX-License-Identifier: Apache-2.0
// AMQP 0-9-1 from the wire (issue 5) against a real RabbitMQ node started here: a python3-pika
// producer and consumer (publisher confirms, manual acks, multiple acks, rejects to a dead-letter
// exchange, deliveries held unacked). The agent's counts, on the broker's side and on the
// client's, must equal what pika did, what `rabbitmqctl list_queues` shows, and the broker's own
// counters (rabbitmq_prometheus).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <random>

#include "harness.h"
#include "wire/wire_util.h"

using namespace aurum::test;
using namespace aurum::test::wire;
using namespace std::chrono_literals;

namespace {

// A RabbitMQ node of our own: own name, epmd, ports and directories; runs as root with HOME in
// its scratch directory (the Erlang cookie goes there).
class RabbitNode {
public:
	RabbitNode() : dir_("aurum-wire-rmq")
	{
		amqp_port_ = free_tcp_port();
		prom_port_ = free_tcp_port();
		int epmd_port = free_tcp_port(), dist_port = free_tcp_port();
		const auto &d = dir_.path();
		std::ofstream(d + "/rabbitmq.conf") << "listeners.tcp.default = 127.0.0.1:" << amqp_port_ << "\n"
						   << "prometheus.tcp.ip = 127.0.0.1\n"
						   << "prometheus.tcp.port = " << prom_port_ << "\n"
						   << "loopback_users = none\n";
		std::ofstream(d + "/enabled_plugins") << "[rabbitmq_prometheus].\n";
		node_ = "aurum-wire-" + std::to_string(::getpid()) + "@localhost";
		env_ = {"HOME=" + d,
			"RABBITMQ_NODENAME=" + node_,
			"RABBITMQ_CONFIG_FILE=" + d + "/rabbitmq",
			"RABBITMQ_ENABLED_PLUGINS_FILE=" + d + "/enabled_plugins",
			"RABBITMQ_MNESIA_BASE=" + d + "/mnesia",
			"RABBITMQ_LOG_BASE=" + d + "/log",
			"RABBITMQ_PID_FILE=" + d + "/rabbit.pid",
			"ERL_EPMD_PORT=" + std::to_string(epmd_port),
			"ERL_EPMD_ADDRESS=127.0.0.1",
			"RABBITMQ_DIST_PORT=" + std::to_string(dist_port),
			"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"};
		epmd_ = std::make_unique<Process>(
			std::vector<std::string>{"epmd", "-port", std::to_string(epmd_port), "-address", "127.0.0.1"});
		auto t0 = std::chrono::steady_clock::now();
		server_ = std::make_unique<Process>(
			std::vector<std::string>{"/bin/sh", "-c", "exec /usr/lib/rabbitmq/bin/rabbitmq-server >" + d + "/stdout 2>&1"},
			env_);
		// Ready when the AMQP listener and the prometheus endpoint answer (cheaper than
		// `rabbitmqctl await_startup`, whose CLI alone starts in seconds).
		for (;;) {
			int status = 0;
			http_get(prom_port_, "/metrics", &status);
			if (status == 200)
				break;
			if (!server_->running() || std::chrono::steady_clock::now() - t0 > 90s)
				throw std::runtime_error("rabbitmq-server did not start:\n" + sh("tail -30 " + d + "/log/*.log"));
			std::this_thread::sleep_for(200ms);
		}
		startup_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	}
	~RabbitNode()
	{
		// The script traps TERM and stops beam (its child) cleanly.
		if (server_)
			server_->stop(SIGTERM, 20s);
		if (auto pid = std::atoi(slurp(dir_.path() + "/rabbit.pid").c_str()); pid > 0)
			::kill(pid, SIGKILL); // only if beam outlived the script
	}
	int amqp_port() const { return amqp_port_; }
	int prometheus_port() const { return prom_port_; }
	double startup_seconds() const { return startup_; }
	std::string ctl(const std::string &args) const
	{
		std::string cmd = "env";
		for (const auto &e : env_)
			cmd += " '" + e + "'";
		return sh(cmd + " /usr/lib/rabbitmq/bin/rabbitmqctl -n " + node_ + " " + args);
	}

private:
	ScratchDir dir_;
	int amqp_port_ = 0, prom_port_ = 0;
	std::string node_;
	std::vector<std::string> env_;
	std::unique_ptr<Process> epmd_, server_;
	double startup_ = 0;
};

const char *kRules = R"(services:
  rules:
    - name: wire-rabbit
      exe: beam.smp
    - name: wire-amqp-client
      cmdline: 'amqp_client\.py'
)";

// `rabbitmqctl list_queues name messages messages_unacknowledged`: name -> {messages, unacked}.
std::map<std::string, std::pair<double, double>> list_queues(const RabbitNode &node)
{
	std::map<std::string, std::pair<double, double>> out;
	std::istringstream in(node.ctl("-q list_queues --no-table-headers name messages messages_unacknowledged"));
	std::string line, name, messages, unacked;
	while (std::getline(in, line)) {
		std::istringstream fields(line);
		if (fields >> name >> messages >> unacked && std::isdigit(static_cast<unsigned char>(messages[0])))
			out[name] = {std::stod(messages), std::stod(unacked)};
	}
	return out;
}

} // namespace

TEST(Amqp, CountsMatchPikaRabbitmqctlAndTheBroker)
{
	AURUM_REQUIRE_ROOT();
	RabbitNode node;
	std::cerr << "rabbitmq-server ready in " << node.startup_seconds() << " s\n";
	Agent agent(kRules);
	auto port = std::to_string(node.amqp_port());
	auto s = scrape_until(agent, [&](const auto &s) { return value(s, "aurum_stream_ports", {{"port", port}}).has_value(); },
			      15s);
	ASSERT_TRUE(value(s, "aurum_stream_ports", {{"port", port}}).has_value()) << "the broker's port was never marked";

	constexpr int kPublish = 300, kReject = 23, kHold = 17;
	const std::string queue = "aurum.wire." + std::to_string(::getpid());
	ScratchDir work("aurum-wire-amqpc");
	std::string out = work.path() + "/client.json";
	Process client({"/usr/bin/python3", script("amqp_client.py"), "--port", port, "--queue", queue, "--publish",
			std::to_string(kPublish), "--reject", std::to_string(kReject), "--hold", std::to_string(kHold), "--out",
			out},
		       {}, true);
	ASSERT_TRUE(client.wait_line("ready", 60s)) << "amqp_client.py did not finish";
	auto report = slurp(out);
	const double published = json_int(report, "published"), delivered = json_int(report, "delivered"),
		     acked = json_int(report, "acked"), rejected = json_int(report, "rejected"),
		     held = json_int(report, "held");
	ASSERT_EQ(published, kPublish) << report;
	ASSERT_EQ(delivered, kPublish) << report;
	ASSERT_EQ(rejected, kReject) << report;
	ASSERT_EQ(held, kHold) << report;
	ASSERT_EQ(acked, kPublish - kReject - kHold) << report;

	auto ops = [](const std::vector<Sample> &s, const std::string &svc, const std::string &op) {
		return sum(s, "aurum_amqp_messages_total", {{"service_name", svc}, {"operation", op}});
	};
	s = scrape_until(
		agent,
		[&](const auto &s) {
			return ops(s, "wire-rabbit", "ack") >= acked && ops(s, "wire-amqp-client", "ack") >= acked &&
			       ops(s, "wire-rabbit", "reject") >= rejected && ops(s, "wire-amqp-client", "reject") >= rejected;
		},
		15s);
	std::this_thread::sleep_for(500ms);
	s = agent.samples();

	// The broker's view of the queues, and its own counters.
	auto queues = list_queues(node);
	ASSERT_TRUE(queues.count(queue) && queues.count(queue + ".dlq")) << node.ctl("-q list_queues");
	EXPECT_EQ(queues[queue].first, held) << "messages (ready + unacked) left in the work queue";
	EXPECT_EQ(queues[queue].second, held) << "messages_unacknowledged";
	EXPECT_EQ(queues[queue + ".dlq"].first, rejected) << "dead-lettered messages";
	auto broker = parse_exposition(http_get(node.prometheus_port(), "/metrics"));
	EXPECT_EQ(sum(broker, "rabbitmq_global_messages_received_total"), published);
	EXPECT_EQ(sum(broker, "rabbitmq_global_messages_delivered_consume_manual_ack_total"), delivered);
	EXPECT_EQ(sum(broker, "rabbitmq_global_messages_dead_lettered_rejected_total"), rejected);

	std::cerr << "pika: published " << published << ", acked " << acked << ", rejected " << rejected << ", held "
		  << held << "; rabbitmqctl: " << queue << " messages_unacknowledged " << queues[queue].second << ", dlq "
		  << queues[queue + ".dlq"].first << "; agent (broker): publish " << ops(s, "wire-rabbit", "publish")
		  << ", ack " << ops(s, "wire-rabbit", "ack") << ", reject " << ops(s, "wire-rabbit", "reject")
		  << ", dead-lettered " << sum(s, "aurum_amqp_dead_lettered_messages_total", {{"service_name", "wire-rabbit"}})
		  << ", unacked " << sum(s, "aurum_amqp_unacked_messages", {{"service_name", "wire-rabbit"}}) << "\n";
	for (const std::string svc : {"wire-rabbit", "wire-amqp-client"}) {
		SCOPED_TRACE(svc);
		EXPECT_EQ(ops(s, svc, "publish"), published);
		EXPECT_EQ(ops(s, svc, "deliver"), delivered);
		EXPECT_EQ(ops(s, svc, "ack"), acked) << "publisher confirms must not count as acks";
		EXPECT_EQ(ops(s, svc, "reject"), rejected);
		EXPECT_EQ(ops(s, svc, "nack"), 0);
		EXPECT_EQ(value(s, "aurum_amqp_dead_lettered_messages_total", {{"service_name", svc}}), rejected);
		EXPECT_EQ(value(s, "aurum_amqp_unacked_messages", {{"service_name", svc}}), queues[queue].second);
		EXPECT_EQ(value(s, "aurum_amqp_delivery_settle_duration_seconds_count", {{"service_name", svc}}),
			  acked + rejected);
	}
	EXPECT_EQ(sum(s, "aurum_stream_malformed_total", {{"protocol", "amqp"}}), 0);

	// Garbage after a valid protocol header: counted, harmless, and the counts above stand.
	constexpr int kJunk = 10;
	std::mt19937 rng(7);
	for (int i = 0; i < kJunk; i++) {
		int fd = ::socket(AF_INET, SOCK_STREAM, 0);
		ASSERT_GE(fd, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_port = htons(static_cast<uint16_t>(node.amqp_port()));
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
		std::string junk("AMQP\0\0\x09\x01", 8);
		for (int j = 0; j < 4096; j++)
			junk.push_back(static_cast<char>(rng()));
		ASSERT_GT(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), 0);
		::close(fd);
	}
	s = scrape_until(
		agent, [&](const auto &s) { return sum(s, "aurum_stream_malformed_total", {{"protocol", "amqp"}}) >= kJunk; },
		10s);
	EXPECT_GE(sum(s, "aurum_stream_malformed_total", {{"protocol", "amqp"}}), kJunk);
	EXPECT_TRUE(agent.healthy());
	EXPECT_EQ(ops(s, "wire-rabbit", "ack"), acked);
	EXPECT_EQ(value(s, "aurum_amqp_unacked_messages", {{"service_name", "wire-rabbit"}}), held);
}
