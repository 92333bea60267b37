// SPDX-License-Identifier: Apache-2.0
// The S3 collector against a real S3-compatible server (server.js: @20minutes/s3rver from npm,
// which verifies SigV4) on loopback. Ground truth: the object counts and byte sums the server
// script reports for the objects it stored.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <prometheus/text_serializer.h>

#include "s3/s3.h"

namespace aurum::s3 {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kKeyId = "AURUMTESTKEY";
constexpr const char* kSecret = "aurum/test+secret=key";

struct Truth {
  std::uint64_t objects = 0;
  std::uint64_t bytes = 0;
};

// node server.js, its stdin (for commands) and stdout (for facts) as pipes.
class S3Server {
 public:
  S3Server() {
    char tmpl[] = "/tmp/aurum-s3-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) throw std::runtime_error("pipe failed");
    const std::string script = std::string(AURUM_S3_TEST_DIR) + "/server.js";
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      execlp("node", "node", "--openssl-legacy-provider", script.c_str(), dir_.c_str(), kKeyId, kSecret,
             static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    for (std::string line; (line = read_line(30s)) != "ready";) {
      std::istringstream ss(line);
      std::string word;
      std::map<std::string, std::string> kv;
      while (ss >> word) {
        auto eq = word.find('=');
        if (eq != std::string::npos) kv[word.substr(0, eq)] = word.substr(eq + 1);
      }
      if (kv.count("port")) port_ = std::stoi(kv["port"]);
      if (kv.count("bucket"))
        truth_[kv["bucket"]] = {std::stoull(kv["objects"]), std::stoull(kv["bytes"])};
    }
  }
  ~S3Server() {
    close(stdin_);  // the script exits when its stdin closes
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    close(stdout_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Sends a command line and waits for its "ok".
  void command(const std::string& cmd) {
    const std::string line = cmd + "\n";
    if (write(stdin_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      throw std::runtime_error("write to server.js failed");
    if (read_line(10s) != "ok") throw std::runtime_error("server.js did not acknowledge " + cmd);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::map<std::string, Truth>& truth() const { return truth_; }

 private:
  std::string read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{stdout_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0)
        throw std::runtime_error("server.js said nothing in time (is node installed and `npm ci` run in tests/s3?)");
      char chunk[4096];
      const ssize_t n = read(stdout_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("server.js exited (is node installed and `npm ci` run in tests/s3?)");
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  std::string dir_;
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  std::string buf_;
  int port_ = 0;
  std::map<std::string, Truth> truth_;
};

class S3ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new S3Server(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static S3Server* server_;
};
S3Server* S3ServerTest::server_ = nullptr;

EndpointConfig endpoint(const std::string& url, std::vector<std::string> buckets, const std::string& secret = kSecret) {
  EndpointConfig ep;
  ep.url = url;
  ep.credentials = {kKeyId, secret, ""};
  ep.buckets = std::move(buckets);
  ep.timeout = 5s;
  return ep;
}

struct Probe {
  std::unique_ptr<S3Collector> collector;
  std::vector<std::string> logs;

  explicit Probe(EndpointConfig ep) {
    CollectorOptions o;
    o.log = [this](log::Level, const std::string& l) { logs.push_back(l); };
    collector = std::make_unique<S3Collector>(Config{{std::move(ep)}}, o);
  }
  std::optional<double> value(const std::string& family, const std::string& bucket, const std::string& reason = "") {
    for (const auto& f : collector->Collect()) {
      if (f.name != family) continue;
      for (const auto& m : f.metric) {
        std::map<std::string, std::string> l;
        for (const auto& lp : m.label) l[lp.name] = lp.value;
        if (l["bucket"] == bucket && (reason.empty() || l["reason"] == reason))
          return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
    return std::nullopt;
  }
};

double now_s() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

TEST_F(S3ServerTest, ExactBytesAndObjectsAcrossPages) {
  ASSERT_EQ(server_->truth().size(), 3u);
  ASSERT_GT(server_->truth().at("many").objects, 1000u);  // pagination is exercised
  Probe p(endpoint(server_->url(), {"many", "few", "empty"}));
  const double before = now_s();
  p.collector->scrape_endpoint(0);
  for (const auto& [bucket, t] : server_->truth()) {
    EXPECT_EQ(p.value("aurum_s3_bucket_objects", bucket), static_cast<double>(t.objects)) << bucket;
    EXPECT_EQ(p.value("aurum_s3_bucket_size_bytes", bucket), static_cast<double>(t.bytes)) << bucket;
    EXPECT_GE(p.value("aurum_s3_last_success_timestamp", bucket).value_or(0), std::floor(before)) << bucket;
  }
  EXPECT_TRUE(p.logs.empty()) << p.logs.front();
}

TEST_F(S3ServerTest, ListBucketsWhenNoneConfigured) {
  Probe p(endpoint(server_->url(), {}));
  p.collector->scrape_endpoint(0);
  for (const auto& [bucket, t] : server_->truth())
    EXPECT_EQ(p.value("aurum_s3_bucket_size_bytes", bucket), static_cast<double>(t.bytes)) << bucket;
  EXPECT_TRUE(p.value("aurum_s3_last_success_timestamp", "").has_value());
}

TEST_F(S3ServerTest, WrongSecretKeyGivesAuthErrorsAndNoFigures) {
  Probe p(endpoint(server_->url(), {"many", "few"}, "not-the-secret"));
  p.collector->scrape_endpoint(0);
  for (const char* bucket : {"many", "few"}) {
    EXPECT_EQ(p.value("aurum_s3_scrape_errors_total", bucket, "auth"), 1.0) << bucket;
    EXPECT_EQ(p.value("aurum_s3_bucket_size_bytes", bucket), std::nullopt) << bucket;
    EXPECT_EQ(p.value("aurum_s3_bucket_objects", bucket), std::nullopt) << bucket;
    EXPECT_EQ(p.value("aurum_s3_last_success_timestamp", bucket), std::nullopt) << bucket;
  }
  ASSERT_EQ(p.logs.size(), 2u);
  EXPECT_NE(p.logs[0].find("SignatureDoesNotMatch"), std::string::npos) << p.logs[0];
}

TEST_F(S3ServerTest, RevokedKeyAfterSuccessLeavesNoFreshFigure) {
  Probe p(endpoint(server_->url(), {"few"}));
  p.collector->scrape_endpoint(0);
  const auto first = p.value("aurum_s3_last_success_timestamp", "few");
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(p.value("aurum_s3_bucket_size_bytes", "few"), static_cast<double>(server_->truth().at("few").bytes));

  std::this_thread::sleep_for(1100ms);  // a fresh success would carry a later timestamp
  server_->command("revoke");
  p.collector->scrape_endpoint(0);
  server_->command("restore");
  EXPECT_EQ(p.value("aurum_s3_scrape_errors_total", "few", "auth"), 1.0);
  EXPECT_EQ(p.value("aurum_s3_bucket_size_bytes", "few"), std::nullopt);
  EXPECT_EQ(p.value("aurum_s3_last_success_timestamp", "few"), first);
  ASSERT_EQ(p.logs.size(), 1u);
  EXPECT_NE(p.logs[0].find("InvalidAccessKeyId"), std::string::npos) << p.logs[0];

  p.collector->scrape_endpoint(0);
  EXPECT_EQ(p.value("aurum_s3_bucket_size_bytes", "few"), static_cast<double>(server_->truth().at("few").bytes));
  EXPECT_GT(p.value("aurum_s3_last_success_timestamp", "few").value_or(0), *first);
}

TEST(S3Unreachable, ClosedPortGivesUnreachable) {
  // A port that was just free: bind, read the number, close.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  Probe p(endpoint("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)), {"b"}));
  p.collector->scrape_endpoint(0);
  EXPECT_EQ(p.value("aurum_s3_scrape_errors_total", "b", "unreachable"), 1.0);
  EXPECT_EQ(p.value("aurum_s3_last_success_timestamp", "b"), std::nullopt);
  EXPECT_EQ(p.value("aurum_s3_bucket_size_bytes", "b"), std::nullopt);
  EXPECT_EQ(p.logs.size(), 1u);
}

TEST(S3Unreachable, SilentServerGivesTimeout) {
  // Listens (the kernel completes the handshake) but never answers.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(s, 4), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  EndpointConfig ep = endpoint("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)), {"b"});
  ep.timeout = 1s;
  Probe p(ep);
  const auto t0 = std::chrono::steady_clock::now();
  p.collector->scrape_endpoint(0);
  const auto took = std::chrono::steady_clock::now() - t0;
  close(s);
  EXPECT_EQ(p.value("aurum_s3_scrape_errors_total", "b", "timeout"), 1.0);
  EXPECT_EQ(p.value("aurum_s3_bucket_size_bytes", "b"), std::nullopt);
  EXPECT_LT(took, 5s);
}

TEST(S3Unreachable, StopAbandonsARequestInFlight) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(s, 4), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  EndpointConfig ep = endpoint("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)), {"b"});
  ep.timeout = 60s;
  Probe p(ep);
  p.collector->start();
  std::this_thread::sleep_for(500ms);  // the request is now waiting for an answer
  const auto t0 = std::chrono::steady_clock::now();
  p.collector->stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  close(s);
  EXPECT_LT(took, 5s);  // not the 60 s timeout
  EXPECT_EQ(p.value("aurum_s3_scrape_errors_total", "b", "transport"), std::nullopt);  // not the endpoint's fault
}

// The agent's path: YAML section -> start_from_config (credentials from the environment) ->
// background thread -> prometheus text exposition.
TEST_F(S3ServerTest, EntryPointFromConfigAndEnvironment) {
  setenv("AWS_ACCESS_KEY_ID", kKeyId, 1);
  setenv("AWS_SECRET_ACCESS_KEY", kSecret, 1);
  const YAML::Node cfg = YAML::Load("s3:\n  endpoints:\n    - url: " + server_->url() +
                                    "\n      buckets: [many]\n      interval_seconds: 60\n");
  auto collector = start_from_config(cfg["s3"]);
  ASSERT_NE(collector, nullptr);
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text = prometheus::TextSerializer().Serialize(collector->Collect());
    if (text.find("aurum_s3_bucket_objects{") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  collector.reset();  // joins the thread
  const Truth t = server_->truth().at("many");
  EXPECT_NE(text.find("aurum_s3_bucket_objects{endpoint=\"" + server_->url() + "\",bucket=\"many\"} " +
                      std::to_string(t.objects)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("aurum_s3_bucket_size_bytes{endpoint=\"" + server_->url() + "\",bucket=\"many\"} " +
                      std::to_string(t.bytes)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE aurum_s3_last_success_timestamp gauge"), std::string::npos) << text;
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
}

}  // namespace
}  // namespace aurum::s3
