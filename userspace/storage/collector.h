// SPDX-License-Identifier: Apache-2.0
// aurum_storage_used_bytes for data directories, and the size and free space of the filesystems
// that hold them, exported through prometheus-cpp.
//
// Cost control: one background thread wakes every `tick` and walks for at most `slice` of wall
// time (a DirWalker checked every 256 entries), so the walk takes at most slice/tick of one
// core whatever the tree's size (5 ms / 100 ms = 5% by default), at the price of a large tree
// taking longer to measure. A target is walked again `rescan` after its last walk finished.
// The exported size is always that of the last *complete* walk; a target whose directory
// cannot be stat'ed any more stops being exported.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "storage/config.h"
#include "storage/dir_walker.h"
#include "storage/mounts.h"

namespace aurum::storage {

struct StorageOptions {
  std::chrono::milliseconds tick{100};
  std::chrono::microseconds slice{5000};
  std::chrono::seconds rescan{300};
  std::chrono::seconds fs_refresh{15};
  std::string mountinfo_path = "/proc/self/mountinfo";
  std::function<void(log::Level, const std::string&)> log;  // empty: the agent log
};

class StorageCollector : public prometheus::Collectable {
 public:
  // `configured` comes from the config file and wins over discovery for its service names.
  explicit StorageCollector(std::vector<Target> configured, StorageOptions opts = {});
  ~StorageCollector() override;
  StorageCollector(const StorageCollector&) = delete;
  StorageCollector& operator=(const StorageCollector&) = delete;

  // Targets found by the agent (a postgres postmaster's cwd, ...). Replaces the previous
  // discovered set; a discovered target whose service_name has a configured entry is ignored.
  // Thread-safe; cheap when nothing changed (measurements of kept targets are kept).
  void set_targets(std::vector<Target> discovered);
  // The effective list, configured first.
  std::vector<Target> targets() const;

  void start();  // idempotent
  void stop();
  // One tick: refresh filesystem figures when due, then walk for at most `slice`. True while a
  // walk is in progress or due now. The thread runs this; tests call it directly.
  bool tick();

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct TargetState {
    Target target;
    std::unique_ptr<DirWalker> walker;  // touched by tick() only
    std::optional<WalkResult> last;     // last complete walk
    std::chrono::steady_clock::time_point next_walk{};
    std::string mountpoint;
    bool missing = false;  // for logging transitions
  };

  void rebuild_locked();
  void refresh_filesystems();
  void log(log::Level level, const std::string& line) const;

  StorageOptions opts_;
  mutable std::mutex mu_;
  std::vector<Target> configured_;
  std::vector<Target> discovered_;
  std::map<Target, std::shared_ptr<TargetState>> states_;
  std::map<std::string, FilesystemStats> filesystems_;
  std::chrono::steady_clock::time_point next_fs_refresh_{};
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// The agent's entry point: parses `storage:` (throws ConfigError), starts the thread, returns
// the collector (never null: discovery may add targets later through set_targets).
std::shared_ptr<StorageCollector> start_from_config(const YAML::Node& storage_section,
                                                    const std::string& source = "config");

}  // namespace aurum::storage
