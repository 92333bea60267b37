// SPDX-License-Identifier: Apache-2.0
// service_name resolution order and program naming.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "identity/resolver.h"

using namespace aurum::identity;
namespace fs = std::filesystem;

namespace {

ProcInfo proc(std::string exe, std::vector<std::string> argv)
{
	ProcInfo p;
	p.stat.pid = 4242;
	p.stat.comm = exe.substr(0, 15);
	p.exe = std::move(exe);
	p.argv = std::move(argv);
	return p;
}

Resolver resolver(const std::string &yaml, std::string log_root = "/nonexistent",
		  std::set<std::uint16_t> ports = {})
{
	auto cfg = aurum::config::parse(yaml, "test.yaml");
	return Resolver(cfg.rules, KubeDirectory(std::move(log_root)), [ports](pid_t) { return ports; });
}

} // namespace

TEST(ProgramName, Interpreters)
{
	EXPECT_EQ(program_name("python3.11", {"python3", "shop_api.py"}), "shop_api");
	EXPECT_EQ(program_name("python3", {"/usr/bin/python3", "-u", "/srv/shop/shop_api.py", "--port", "8081"}), "shop_api");
	EXPECT_EQ(program_name("python3", {"python3", "-m", "http.server", "8000"}), "http.server");
	EXPECT_EQ(program_name("python3", {"python3", "-W", "ignore", "app.py"}), "app");
	EXPECT_EQ(program_name("node", {"node", "/srv/crm/index.js"}), "crm");
	EXPECT_EQ(program_name("node", {"node", "--require", "x", "server.mjs"}), "server");
	EXPECT_EQ(program_name("java", {"java", "-Xmx1g", "-jar", "/opt/mes/mes-api-1.2.jar"}), "mes-api-1.2");
	EXPECT_EQ(program_name("java", {"java", "-cp", "a.jar:b.jar", "com.shop.Main"}), "Main");
	EXPECT_EQ(program_name("ruby3.1", {"ruby", "worker.rb"}), "worker");
	EXPECT_EQ(program_name("python3", {"python3", "-c", "print(1)"}), "python3");
	EXPECT_EQ(program_name("python3", {"python3"}), "python3");
}

TEST(ProgramName, NativeBinariesKeepTheirName)
{
	EXPECT_EQ(program_name("nginx", {"nginx: worker process"}), "nginx");
	EXPECT_EQ(program_name("postgres", {"postgres: 15/main: checkpointer"}), "postgres");
	// "nodeexporter" is not an interpreter just because it starts with "node".
	EXPECT_EQ(program_name("nodeexporter", {"nodeexporter", "x.js"}), "nodeexporter");
}

TEST(Resolver, RuleWinsOverEverything)
{
	auto r = resolver("services:\n  rules:\n    - name: shop-api\n      cmdline: 'shop_api\\.py'\n");
	auto p = proc("python3", {"python3", "shop_api.py"});
	p.otel_service_name = "from-env";
	p.cgroup.systemd_unit = "unit";
	auto id = r.resolve(p);
	EXPECT_EQ(id.name, "shop-api");
	EXPECT_EQ(id.source, "rule");
}

TEST(Resolver, EveryMatcherOfARuleMustHold)
{
	auto r = resolver("services:\n  rules:\n    - name: db\n      exe: postgres\n      port: 5433\n", "/x", {5432});
	EXPECT_NE(r.resolve(proc("postgres", {"postgres"})).name, "db");
	auto r2 = resolver("services:\n  rules:\n    - name: db\n      exe: postgres\n      port: 5433\n", "/x", {5433});
	EXPECT_EQ(r2.resolve(proc("postgres", {"postgres"})).name, "db");
}

TEST(Resolver, FirstMatchingRuleWins)
{
	auto r = resolver("services:\n  rules:\n    - name: first\n      exe: nginx\n    - name: second\n      exe: nginx\n");
	EXPECT_EQ(r.resolve(proc("nginx", {"nginx"})).name, "first");
}

TEST(Resolver, CgroupRuleSearchesEveryHierarchy)
{
	auto r = resolver("services:\n  rules:\n    - name: payments\n      cgroup: 'payments'\n");
	auto p = proc("java", {"java", "-jar", "x.jar"});
	p.cgroup.path = "/";
	p.cgroup.all_paths = {"/", "/system.slice/payments.service"};
	EXPECT_EQ(r.resolve(p).name, "payments");
}

TEST(Resolver, OtelBeforeKubernetesBeforeSystemdBeforeExe)
{
	auto r = resolver("");
	auto p = proc("python3", {"python3", "shop_api.py"});
	p.cgroup.systemd_unit = "shop";
	EXPECT_EQ(r.resolve(p).name, "shop");
	EXPECT_EQ(r.resolve(p).source, "systemd");
	p.otel_service_name = "shop-from-env";
	EXPECT_EQ(r.resolve(p).name, "shop-from-env");
	p.cgroup.systemd_unit.clear();
	p.otel_service_name.clear();
	EXPECT_EQ(r.resolve(p).name, "shop_api");
	EXPECT_EQ(r.resolve(p).source, "exe");
}

TEST(Resolver, KubernetesNamesFromKubeletLogLayout)
{
	auto root = fs::temp_directory_path() / ("aurum-k8s-" + std::to_string(::getpid()));
	const std::string uid = "0d2f4e3c-6b1a-4c5d-9e8f-0123456789ab";
	const std::string cid = "3f4a1c2b9d8e7f60a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcdef01";
	fs::create_directories(root / "containers");
	fs::create_directories(root / "pods" / ("shop_shop-api-7d9f_" + uid) / "api");
	fs::create_directories(root / "pods" / ("shop_shop-api-7d9f_" + uid) / "sidecar");
	std::ofstream(root / "containers" / ("shop-api-7d9f_shop_api-" + cid + ".log")) << "";
	auto r = resolver("", root.string());
	auto p = proc("python3", {"python3", "app.py"});
	p.cgroup.pod_uid = uid;
	p.cgroup.container_id = cid;
	p.cgroup.runtime = "containerd";
	p.cgroup.systemd_unit = "should-not-win";
	auto id = r.resolve(p);
	EXPECT_EQ(id.name, "api");
	EXPECT_EQ(id.ns, "shop");
	EXPECT_EQ(id.pod, "shop-api-7d9f");
	EXPECT_EQ(id.source, "kubernetes");
	// Without /var/log/containers, a pod with two containers cannot say which: not named by it.
	fs::remove_all(root / "containers");
	EXPECT_NE(r.resolve(p).source, "kubernetes");
	fs::remove(root / "pods" / ("shop_shop-api-7d9f_" + uid) / "sidecar");
	EXPECT_EQ(r.resolve(p).name, "api");
	fs::remove_all(root);
}

TEST(Resolver, GoneProcessesAreNamedByComm)
{
	auto r = resolver("services:\n  rules:\n    - name: batch\n      exe: nightly-export-job\n");
	EXPECT_EQ(r.resolve_comm("nightly-export-").name, "batch") << "comm is cut at 15 characters";
	EXPECT_EQ(r.resolve_comm("sh").name, "sh");
	EXPECT_EQ(r.resolve_comm("").name, "unknown");
}
