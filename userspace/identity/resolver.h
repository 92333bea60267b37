// SPDX-License-Identifier: Apache-2.0
// service_name resolution, in this order:
//   1. a rule of the config file (exe, cmdline regex, listening port, cgroup regex)
//   2. OTEL_SERVICE_NAME in the process's environment
//   3. the Kubernetes container name (from the cgroup's pod UID and container id, named through
//      the kubelet's /var/log/containers and /var/log/pods layout: no API server needed)
//   4. the systemd unit (system.slice/<unit>.service)
//   5. the executable's name; for an interpreter, the script, module or jar it runs.
#pragma once
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "identity/procfs.h"

namespace aurum::identity {

struct Identity {
	std::string name;
	std::string ns;       // service_namespace (Kubernetes namespace), may be empty
	std::string pod;      // k8s_pod_name, may be empty
	std::string source;   // rule | otel | kubernetes | systemd | exe | comm
	bool by_rule = false;
	bool operator==(const Identity &o) const
	{
		return name == o.name && ns == o.ns && pod == o.pod;
	}
};

struct KubeNames {
	std::string ns, pod, container;
};

// Names of Kubernetes containers from the kubelet's log layout under `log_root` (/var/log):
//   containers/<pod>_<namespace>_<container>-<container id>.log
//   pods/<namespace>_<pod>_<pod uid>/<container>/
class KubeDirectory {
public:
	explicit KubeDirectory(std::string log_root = "/var/log") : root_(std::move(log_root)) {}
	std::optional<KubeNames> lookup(const std::string &pod_uid, const std::string &container_id) const;

private:
	std::string root_;
};

// The program a command line runs: "python3 shop_api.py" -> "shop_api", "java -jar app.jar" ->
// "app", "node /srv/crm/index.js" -> "crm" (generic file names take their folder's name).
std::string program_name(const std::string &exe, const std::vector<std::string> &argv);

class Resolver {
public:
	using PortLookup = std::function<std::set<std::uint16_t>(pid_t)>;
	Resolver(std::vector<config::ServiceRule> rules, KubeDirectory kube, PortLookup ports);

	Identity resolve(const ProcInfo &p) const;
	// A process already gone: only the kernel's comm is left.
	Identity resolve_comm(const std::string &comm) const;
	bool rules_use_ports() const { return uses_ports_; }

private:
	bool matches(const config::ServiceRule &r, const ProcInfo &p, std::set<std::uint16_t> *ports,
		     bool *ports_loaded) const;
	std::vector<config::ServiceRule> rules_;
	KubeDirectory kube_;
	PortLookup ports_;
	bool uses_ports_ = false;
};

} // namespace aurum::identity
