// SPDX-License-Identifier: Apache-2.0
// What a process's cgroup path says about where it runs: container runtime and id, Kubernetes
// pod UID, systemd unit. Pure string parsing, unit-tested on the layouts of docker, containerd,
// cri-o, podman, systemd slices and Kubernetes (cgroupfs and systemd drivers, v1 and v2).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace aurum::identity {

struct CgroupInfo {
	std::string path;         // the v2 path ("0::" line), else the v1 path that said the most
	std::string runtime;      // docker | containerd | cri-o | podman | "" (none seen)
	std::string container_id; // full id as it appears in the path
	std::string pod_uid;      // Kubernetes pod UID with dashes, "" if not a pod
	std::string systemd_unit; // "nginx" for .../system.slice/nginx.service, "" otherwise
	std::vector<std::string> all_paths; // every hierarchy's path (v1 and v2), for cgroup rules
};

// One cgroup path ("/kubepods.slice/.../cri-containerd-<id>.scope").
CgroupInfo parse_cgroup_path(std::string_view path);

// The content of /proc/<pid>/cgroup: the v2 line ("0::/...") and any v1 lines
// ("4:memory:/docker/<id>"); the first path that names a container or pod wins, then the v2 path.
CgroupInfo parse_proc_cgroup(std::string_view content);

} // namespace aurum::identity
