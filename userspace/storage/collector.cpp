// SPDX-License-Identifier: Apache-2.0
#include "storage/collector.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <prometheus/client_metric.h>

namespace aurum::storage {
namespace {

// The one place this module writes the agent's log.
void agent_log(log::Level level, const std::string& line) {
  if (level >= log::level()) log::write(level, "storage: %s", line.c_str());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr std::size_t kEntriesBetweenClockChecks = 256;

}  // namespace

StorageCollector::StorageCollector(std::vector<Target> configured, StorageOptions opts)
    : opts_(std::move(opts)), configured_(std::move(configured)) {
  if (!opts_.log) opts_.log = agent_log;
  std::lock_guard lock(mu_);
  rebuild_locked();
}

StorageCollector::~StorageCollector() { stop(); }

void StorageCollector::log(log::Level level, const std::string& line) const { opts_.log(level, line); }

void StorageCollector::set_targets(std::vector<Target> discovered) {
  std::lock_guard lock(mu_);
  discovered_ = std::move(discovered);
  rebuild_locked();
}

std::vector<Target> StorageCollector::targets() const {
  std::lock_guard lock(mu_);
  std::vector<Target> out;
  for (const auto& t : configured_) out.push_back(t);
  std::set<std::string> overridden;
  for (const auto& t : configured_) overridden.insert(t.service_name);
  for (const auto& t : discovered_)
    if (!overridden.count(t.service_name) && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  return out;
}

void StorageCollector::rebuild_locked() {
  std::set<std::string> overridden;
  for (const auto& t : configured_) overridden.insert(t.service_name);
  std::map<Target, std::shared_ptr<TargetState>> next;
  auto keep = [&](const Target& t) {
    auto it = states_.find(t);
    if (it != states_.end()) {
      next[t] = it->second;
    } else if (!next.count(t)) {
      auto s = std::make_shared<TargetState>();
      s->target = t;
      next[t] = std::move(s);
    }
  };
  for (const auto& t : configured_) keep(t);
  for (const auto& t : discovered_)
    if (!overridden.count(t.service_name)) keep(t);
  states_ = std::move(next);
}

void StorageCollector::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    for (;;) {
      const auto next = std::chrono::steady_clock::now() + opts_.tick;
      try {
        tick();
      } catch (const std::exception& e) {
        log(log::Level::error, std::string("unexpected error: ") + e.what());
      }
      std::unique_lock lock(mu_);
      if (wake_.wait_until(lock, next, [this] { return stopping_; })) return;
    }
  });
}

void StorageCollector::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StorageCollector::refresh_filesystems() {
  std::set<std::string> mountpoints;
  {
    std::lock_guard lock(mu_);
    for (const auto& [t, s] : states_)
      if (!s->mountpoint.empty()) mountpoints.insert(s->mountpoint);
  }
  std::map<std::string, FilesystemStats> fresh;
  for (const auto& mp : mountpoints)
    if (auto st = filesystem_stats(mp)) fresh[mp] = *st;
  std::lock_guard lock(mu_);
  filesystems_ = std::move(fresh);
}

bool StorageCollector::tick() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();

  // Pick the target to work on: one with a walk in progress, else the first one due.
  std::shared_ptr<TargetState> state;
  bool fs_due = false;
  {
    std::lock_guard lock(mu_);
    fs_due = start >= next_fs_refresh_;
    for (const auto& [t, s] : states_)
      if (s->walker) state = s;
    if (!state)
      for (const auto& [t, s] : states_)
        if (start >= s->next_walk) {
          state = s;
          break;
        }
  }
  if (state && !state->walker) {
    // A new walk: find the filesystem first, so that its figures are there with the size.
    char resolved[PATH_MAX];
    std::string mp;
    if (realpath(state->target.path.c_str(), resolved))
      mp = mountpoint_of(resolved, read_file(opts_.mountinfo_path)).value_or("");
    state->walker = std::make_unique<DirWalker>(state->target.path);
    std::lock_guard lock(mu_);
    if (state->mountpoint != mp) fs_due = true;
    state->mountpoint = mp;
  }
  if (fs_due) {
    refresh_filesystems();
    std::lock_guard lock(mu_);
    next_fs_refresh_ = start + opts_.fs_refresh;
  }
  if (!state) return false;

  bool done = state->walker->done();
  while (!done && Clock::now() - start < opts_.slice) done = state->walker->step(kEntriesBetweenClockChecks);
  if (!done) return true;

  const DirWalker& w = *state->walker;
  bool log_missing = false, log_back = false;
  {
    std::lock_guard lock(mu_);
    if (w.root_ok()) state->last = w.result();
    else state->last.reset();
    log_missing = !w.root_ok() && !state->missing;
    log_back = w.root_ok() && state->missing;
    state->missing = !w.root_ok();
    state->next_walk = Clock::now() + opts_.rescan;
  }
  if (log_missing)
    log(log::Level::warn, state->target.service_name + " " + state->target.path + ": cannot stat, not exported");
  if (log_back) log(log::Level::info, state->target.service_name + " " + state->target.path + ": readable again");
  state->walker.reset();
  return true;
}

std::vector<prometheus::MetricFamily> StorageCollector::Collect() const {
  prometheus::MetricFamily used{"aurum_storage_used_bytes",
                                "On-disk size (allocated blocks, hard links once, one filesystem) of a "
                                "service's data directory, from the last complete walk",
                                prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily unreadable{"aurum_storage_unreadable_entries",
                                      "Entries the last walk could not read: when above 0, "
                                      "aurum_storage_used_bytes is a lower bound",
                                      prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily size{"aurum_filesystem_size_bytes",
                                "Size of the filesystem holding a data directory (statvfs f_blocks * f_frsize)",
                                prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily avail{"aurum_filesystem_avail_bytes",
                                 "Space available to unprivileged writers on the filesystem holding a data "
                                 "directory (statvfs f_bavail * f_frsize)",
                                 prometheus::MetricType::Gauge, {}};
  {
    std::lock_guard lock(mu_);
    for (const auto& [t, s] : states_) {
      if (!s->last) continue;
      prometheus::ClientMetric m;
      m.label = {{"service_name", t.service_name}, {"path", t.path}};
      m.gauge.value = static_cast<double>(s->last->bytes);
      used.metric.push_back(m);
      m.gauge.value = static_cast<double>(s->last->unreadable);
      unreadable.metric.push_back(m);
    }
    for (const auto& [mp, st] : filesystems_) {
      prometheus::ClientMetric m;
      m.label = {{"mountpoint", mp}};
      m.gauge.value = static_cast<double>(st.size_bytes);
      size.metric.push_back(m);
      m.gauge.value = static_cast<double>(st.avail_bytes);
      avail.metric.push_back(m);
    }
  }
  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&used, &unreadable, &size, &avail})
    if (!f->metric.empty()) out.push_back(std::move(*f));
  return out;
}

std::shared_ptr<StorageCollector> start_from_config(const YAML::Node& storage_section, const std::string& source) {
  auto collector = std::make_shared<StorageCollector>(parse_config(storage_section, source));
  collector->start();
  return collector;
}

}  // namespace aurum::storage
