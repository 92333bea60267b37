// SPDX-License-Identifier: Apache-2.0
// Cgroup paths as container runtimes and systemd lay them out, v1 and v2.
#include <gtest/gtest.h>

#include "identity/cgroup.h"

using aurum::identity::parse_cgroup_path;
using aurum::identity::parse_proc_cgroup;

namespace {
const std::string kId = "3f4a1c2b9d8e7f60a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcdef01";
}

TEST(Cgroup, DockerCgroupfsV1)
{
	auto c = parse_cgroup_path("/docker/" + kId);
	EXPECT_EQ(c.runtime, "docker");
	EXPECT_EQ(c.container_id, kId);
	EXPECT_EQ(c.pod_uid, "");
}

TEST(Cgroup, DockerSystemdV2)
{
	auto c = parse_cgroup_path("/system.slice/docker-" + kId + ".scope");
	EXPECT_EQ(c.runtime, "docker");
	EXPECT_EQ(c.container_id, kId);
	EXPECT_EQ(c.systemd_unit, "") << "a container scope is not a unit of its own";
}

TEST(Cgroup, ContainerdKubernetesSystemdDriver)
{
	auto c = parse_cgroup_path("/kubepods.slice/kubepods-burstable.slice/"
				   "kubepods-burstable-pod0d2f4e3c_6b1a_4c5d_9e8f_0123456789ab.slice/cri-containerd-" + kId + ".scope");
	EXPECT_EQ(c.runtime, "containerd");
	EXPECT_EQ(c.container_id, kId);
	EXPECT_EQ(c.pod_uid, "0d2f4e3c-6b1a-4c5d-9e8f-0123456789ab");
}

TEST(Cgroup, KubernetesCgroupfsDriverV1)
{
	auto c = parse_cgroup_path("/kubepods/besteffort/pod0d2f4e3c-6b1a-4c5d-9e8f-0123456789ab/" + kId);
	EXPECT_EQ(c.runtime, "containerd");
	EXPECT_EQ(c.container_id, kId);
	EXPECT_EQ(c.pod_uid, "0d2f4e3c-6b1a-4c5d-9e8f-0123456789ab");
}

TEST(Cgroup, GuaranteedPodHasNoQosLevel)
{
	auto c = parse_cgroup_path("/kubepods.slice/kubepods-pod0d2f4e3c_6b1a_4c5d_9e8f_0123456789ab.slice/crio-" + kId + ".scope");
	EXPECT_EQ(c.runtime, "cri-o");
	EXPECT_EQ(c.pod_uid, "0d2f4e3c-6b1a-4c5d-9e8f-0123456789ab");
}

TEST(Cgroup, CrioConmonIsNotTheContainer)
{
	auto c = parse_cgroup_path("/kubepods.slice/kubepods-pod0d2f4e3c_6b1a_4c5d_9e8f_0123456789ab.slice/crio-conmon-" + kId + ".scope");
	EXPECT_EQ(c.container_id, "");
	EXPECT_EQ(c.pod_uid, "0d2f4e3c-6b1a-4c5d-9e8f-0123456789ab");
}

TEST(Cgroup, Podman)
{
	auto c = parse_cgroup_path("/machine.slice/libpod-" + kId + ".scope/container");
	EXPECT_EQ(c.runtime, "podman");
	EXPECT_EQ(c.container_id, kId);
}

TEST(Cgroup, SystemdUnit)
{
	EXPECT_EQ(parse_cgroup_path("/system.slice/nginx.service").systemd_unit, "nginx");
	EXPECT_EQ(parse_cgroup_path("/system.slice/system-postgresql.slice/postgresql@15-main.service").systemd_unit,
		  "postgresql@15-main");
	// A user session's units do not name services.
	EXPECT_EQ(parse_cgroup_path("/user.slice/user-0.slice/user@0.service/app.slice/x.service").systemd_unit, "");
	EXPECT_EQ(parse_cgroup_path("/").systemd_unit, "");
}

TEST(Cgroup, ProcFileHybridPrefersTheLineThatNamesAContainer)
{
	std::string content = "12:memory:/docker/" + kId + "\n"
			      "1:name=systemd:/docker/" + kId + "\n"
			      "0::/\n";
	auto c = parse_proc_cgroup(content);
	EXPECT_EQ(c.container_id, kId);
	EXPECT_EQ(c.runtime, "docker");
	EXPECT_EQ(c.path, "/") << "the v2 path stays the one rules match first";
	EXPECT_EQ(c.all_paths.size(), 3u);
}

TEST(Cgroup, ProcFilePureV2)
{
	auto c = parse_proc_cgroup("0::/system.slice/nginx.service\n");
	EXPECT_EQ(c.systemd_unit, "nginx");
	EXPECT_EQ(c.path, "/system.slice/nginx.service");
}

TEST(Cgroup, ProcFileHybridUnitFromV1NamedHierarchy)
{
	auto c = parse_proc_cgroup("4:memory:/system.slice/redis.service\n1:name=systemd:/system.slice/redis.service\n0::/\n");
	EXPECT_EQ(c.systemd_unit, "redis");
}

TEST(Cgroup, MalformedLinesAreIgnored)
{
	auto c = parse_proc_cgroup("garbage\n::\n0::/ok\n:\n");
	EXPECT_EQ(c.path, "/ok");
}
