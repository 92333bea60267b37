// SPDX-License-Identifier: Apache-2.0
// Resident memory per service and the cgroup memory limit it runs under (from /proc and the
// cgroup filesystems: no BPF needed, and no BPF would be more exact).
#pragma once
#include <string>

#include "collectors/collector.h"

namespace aurum {

struct CgroupMounts {
	std::string v2;        // cgroup2 mount point, "" if none
	std::string v1_memory; // the v1 memory controller's mount point, "" if none
};
CgroupMounts find_cgroup_mounts(const std::string &mountinfo);

// The effective memory limit of a cgroup: the smallest limit on the path from it to the root.
// nullopt when nothing on the path sets one.
std::optional<std::uint64_t> cgroup_memory_limit(const CgroupMounts &m, const std::string &proc_cgroup_content);

class MemoryCollector : public Collector {
public:
	MemoryCollector(identity::ProcFs procfs, CgroupMounts mounts);
	const char *name() const override { return "memory"; }
	void poll(identity::ServiceDirectory &) override {}
	void collect(const identity::ServiceDirectory &dir, std::vector<prometheus::MetricFamily> &out) override;

private:
	identity::ProcFs procfs_;
	CgroupMounts mounts_;
};

} // namespace aurum
