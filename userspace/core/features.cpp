// SPDX-License-Identifier: Apache-2.0
#include "core/features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "core/fd.h"
#include "core/log.h"
#include "identity/procfs.h"

namespace aurum {
namespace {

constexpr const char *kNames[] = {"btf",        "tracefs",      "ringbuf",    "tp_btf",    "raw_tp",
				  "tracepoint", "kprobe",       "fentry",     "uprobe",    "task_storage",
				  "sk_storage", "cgroup_skb",   "cgroup_v2",  "bpf_stats", "bpf_loop",
				  "tail_call",  "sk_lookup",    "sched_info"};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == kFeatureCount);

// r0 = 0; exit
const struct bpf_insn kReturnZero[] = {
	{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
	{BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
};

int load_trivial(bpf_prog_type type, bpf_attach_type attach, int attach_btf_id)
{
	LIBBPF_OPTS(bpf_prog_load_opts, opts);
	opts.expected_attach_type = attach;
	opts.attach_btf_id = static_cast<__u32>(attach_btf_id);
	int fd = bpf_prog_load(type, "aurum_probe", "Dual BSD/GPL", kReturnZero, 2, &opts);
	return fd < 0 ? -errno : fd;
}

std::string err_text(int err) { return std::strerror(err < 0 ? -err : err); }

bool file_exists(const std::string &p)
{
	struct stat st;
	return ::stat(p.c_str(), &st) == 0;
}

// Does vmlinux BTF have a struct `type` with a member `member`?
bool btf_has_member(const struct btf *btf, const char *type, const char *member)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT);
	if (id <= 0)
		return false;
	const struct btf_type *t = btf__type_by_id(btf, static_cast<__u32>(id));
	const struct btf_member *m = btf_members(t);
	for (unsigned i = 0; i < btf_vlen(t); i++, m++)
		if (const char *n = btf__name_by_offset(btf, m->name_off); n && std::strcmp(n, member) == 0)
			return true;
	return false;
}
} // namespace

const char *feature_name(Feature f) { return kNames[static_cast<size_t>(f)]; }

std::optional<Feature> feature_from_name(const std::string &name)
{
	for (size_t i = 0; i < kFeatureCount; i++)
		if (name == kNames[i])
			return static_cast<Feature>(i);
	return std::nullopt;
}

std::string find_mount(const std::string &mountinfo, const std::string &fstype)
{
	// "36 35 0:30 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw"
	std::istringstream in(mountinfo);
	std::string line;
	while (std::getline(in, line)) {
		auto dash = line.find(" - ");
		if (dash == std::string::npos)
			continue;
		std::istringstream tail(line.substr(dash + 3));
		std::string type;
		tail >> type;
		if (type != fstype)
			continue;
		std::istringstream head(line.substr(0, dash));
		std::string id, parent, devno, root, mnt;
		if (head >> id >> parent >> devno >> root >> mnt) {
			// mountinfo escapes spaces and the like as \040 octal.
			std::string out;
			for (size_t i = 0; i < mnt.size(); i++) {
				if (mnt[i] == '\\' && i + 3 < mnt.size()) {
					out += static_cast<char>(std::stoi(mnt.substr(i + 1, 3), nullptr, 8));
					i += 3;
				} else {
					out += mnt[i];
				}
			}
			return out;
		}
	}
	return {};
}

std::string find_cgroup2_mount(const std::string &mountinfo) { return find_mount(mountinfo, "cgroup2"); }

void route_libbpf_log()
{
	libbpf_set_print([](enum libbpf_print_level lvl, const char *fmt, va_list ap) -> int {
		log::Level l = lvl == LIBBPF_WARN ? log::Level::warn
			     : lvl == LIBBPF_INFO ? log::Level::debug
						  : log::Level::debug;
		if (l < log::level())
			return 0;
		// Verifier logs arrive as one message of any length: size it first, keep all of it.
		va_list copy;
		va_copy(copy, ap);
		int n = std::vsnprintf(nullptr, 0, fmt, copy);
		va_end(copy);
		if (n <= 0)
			return 0;
		std::string s(static_cast<size_t>(n) + 1, '\0');
		std::vsnprintf(s.data(), s.size(), fmt, ap);
		s.resize(static_cast<size_t>(n));
		size_t start = 0;
		while (start < s.size()) {
			size_t end = s.find('\n', start);
			if (end == std::string::npos)
				end = s.size();
			if (end > start) {
				std::string line = s.substr(start, end - start);
				for (auto &c : line)
					if (c == '"')
						c = '\'';
				log::write(l, "libbpf: %s", line.c_str());
			}
			start = end + 1;
		}
		return 0;
	});
}

Features::Features(const std::set<Feature> &forced_off)
{
	probe_all();
	for (Feature f : forced_off) {
		auto &s = state_[static_cast<size_t>(f)];
		s.available = false;
		s.forced_off = true;
		s.detail = "forced off (--force-off)";
	}
	// What depends on a forced-off feature goes with it.
	auto off_if = [&](Feature f, Feature needs) {
		auto &s = state_[static_cast<size_t>(f)];
		if (s.available && !has(needs)) {
			s.available = false;
			s.detail = std::string("needs ") + feature_name(needs);
		}
	};
	off_if(Feature::tp_btf, Feature::btf);
	off_if(Feature::fentry, Feature::btf);
	off_if(Feature::tracepoint, Feature::tracefs);
	off_if(Feature::cgroup_skb, Feature::cgroup_v2);
}

Features::~Features()
{
	if (vmlinux_)
		btf__free(vmlinux_);
}

bool Features::has_btf_tracepoint(const std::string &name) const
{
	return vmlinux_ && btf__find_by_name_kind(vmlinux_, ("btf_trace_" + name).c_str(), BTF_KIND_TYPEDEF) > 0;
}

int Features::btf_tracepoint_args(const std::string &name) const
{
	if (!vmlinux_)
		return -1;
	int id = btf__find_by_name_kind(vmlinux_, ("btf_trace_" + name).c_str(), BTF_KIND_TYPEDEF);
	if (id <= 0)
		return -1;
	// typedef -> pointer -> func_proto(void *ctx, args...)
	const struct btf_type *t = btf__type_by_id(vmlinux_, static_cast<__u32>(id));
	for (int hops = 0; t && (btf_is_typedef(t) || btf_is_ptr(t)) && hops < 4; hops++)
		t = btf__type_by_id(vmlinux_, t->type);
	if (!t || !btf_is_func_proto(t))
		return -1;
	return static_cast<int>(btf_vlen(t)) - 1;
}

void Features::probe_all()
{
	auto set = [&](Feature f, bool ok, std::string detail) {
		state_[static_cast<size_t>(f)] = FeatureState{ok, false, std::move(detail)};
	};
	std::string mountinfo;
	identity::read_file("/proc/self/mountinfo", mountinfo, 4 << 20);

	vmlinux_ = btf__load_vmlinux_btf();
	if (!vmlinux_)
		vmlinux_ = nullptr;
	set(Feature::btf, vmlinux_ != nullptr,
	    vmlinux_ ? "/sys/kernel/btf/vmlinux" : "no kernel BTF: " + err_text(errno));

	cgroup2_ = find_cgroup2_mount(mountinfo);
	set(Feature::cgroup_v2, !cgroup2_.empty(), cgroup2_.empty() ? "no cgroup2 mount in /proc/self/mountinfo" : cgroup2_);

	// tracefs: only perf-style tracepoints need it. Mount it where the kernel expects it if it is
	// missing (a fresh host has none), and say so.
	tracefs_ = find_mount(mountinfo, "tracefs");
	if (tracefs_.empty()) {
		const char *where = "/sys/kernel/tracing";
		if (file_exists(where) && ::mount("tracefs", where, "tracefs", 0, nullptr) == 0) {
			tracefs_ = where;
			log::info("mounted tracefs at %s (tracepoint probes need it)", where);
		}
	}
	set(Feature::tracefs, !tracefs_.empty(), tracefs_.empty() ? "not mounted and cannot mount: " + err_text(errno) : tracefs_);

	int r = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr);
	set(Feature::ringbuf, r == 1, r == 1 ? "" : "map type missing");
	r = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, nullptr);
	set(Feature::task_storage, r == 1, r == 1 ? "" : "map type missing (< 5.11)");
	r = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nullptr);
	set(Feature::sk_storage, r == 1, r == 1 ? "" : "map type missing (< 5.2)");
	r = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, nullptr);
	set(Feature::cgroup_skb, r == 1 && !cgroup2_.empty(), r == 1 ? "" : "program type missing");

	// tp_btf: load and attach a trivial program on sched_switch.
	if (vmlinux_) {
		int id = btf__find_by_name_kind(vmlinux_, "btf_trace_sched_switch", BTF_KIND_TYPEDEF);
		UniqueFd prog(id > 0 ? load_trivial(BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, id) : -ENOENT);
		if (prog.get() < 0) {
			set(Feature::tp_btf, false, "load: " + err_text(prog.get()));
		} else {
			UniqueFd link(bpf_raw_tracepoint_open(nullptr, prog.get()));
			set(Feature::tp_btf, link.get() >= 0, link.get() >= 0 ? "" : "attach: " + err_text(errno));
		}
		int fid = btf__find_by_name_kind(vmlinux_, "tcp_sendmsg", BTF_KIND_FUNC);
		UniqueFd fprog(fid > 0 ? load_trivial(BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, fid) : -ENOENT);
		if (fprog.get() < 0) {
			set(Feature::fentry, false, "load: " + err_text(fprog.get()));
		} else {
			UniqueFd link(bpf_raw_tracepoint_open(nullptr, fprog.get()));
			set(Feature::fentry, link.get() >= 0, link.get() >= 0 ? "" : "attach: " + err_text(errno));
		}
	} else {
		set(Feature::tp_btf, false, "needs btf");
		set(Feature::fentry, false, "needs btf");
	}

	{
		UniqueFd prog(load_trivial(BPF_PROG_TYPE_RAW_TRACEPOINT, static_cast<bpf_attach_type>(0), 0));
		if (prog.get() < 0) {
			set(Feature::raw_tp, false, "load: " + err_text(prog.get()));
		} else {
			UniqueFd link(bpf_raw_tracepoint_open("sched_switch", prog.get()));
			set(Feature::raw_tp, link.get() >= 0, link.get() >= 0 ? "" : "attach: " + err_text(errno));
		}
	}

	bool tp = !tracefs_.empty() && file_exists(tracefs_ + "/events/sched/sched_switch/id");
	set(Feature::tracepoint, tp, tp ? "" : "no events/sched/sched_switch under tracefs");

	// kprobe: the PMU must exist and accept a probe on a function every kernel has.
	{
		std::string type;
		if (!identity::read_file("/sys/bus/event_source/devices/kprobe/type", type)) {
			set(Feature::kprobe, false, "no kprobe PMU (kernel built without kprobes?)");
		} else {
			perf_event_attr attr{};
			attr.size = sizeof attr;
			attr.type = static_cast<__u32>(std::stoul(type));
			const char *fn = "do_sys_openat2";
			attr.config1 = reinterpret_cast<__u64>(fn);
			int fd = static_cast<int>(::syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
			set(Feature::kprobe, fd >= 0, fd >= 0 ? "" : "perf_event_open: " + err_text(errno));
			if (fd >= 0)
				::close(fd);
		}
	}
	bool up = file_exists("/sys/bus/event_source/devices/uprobe/type");
	set(Feature::uprobe, up, up ? "" : "no uprobe PMU");

	r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_loop, nullptr);
	set(Feature::bpf_loop, r == 1, r == 1 ? "" : "helper missing (< 5.17)");
	r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_tail_call, nullptr);
	set(Feature::tail_call, r == 1, r == 1 ? "" : "helper missing");
	r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_sk_lookup_tcp, nullptr);
	if (r == 1)
		r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_sk_release, nullptr);
	set(Feature::sk_lookup, r == 1, r == 1 ? "" : "helper missing");

	// sched_info: the fields in BTF (sched.bpf.c reads a task's run_delay and pcount), and the
	// accounting on: /proc/self/schedstat shows "0 0 0" when the kernel keeps none (before 5.14,
	// without schedstats or delay accounting), else this process's arrivals on a CPU (at least
	// one: it is running).
	{
		std::string why;
		if (!vmlinux_) {
			why = "needs btf";
		} else if (!btf_has_member(vmlinux_, "sched_info", "run_delay") ||
			   !btf_has_member(vmlinux_, "sched_info", "pcount")) {
			why = "struct sched_info has no run_delay/pcount (kernel without CONFIG_SCHED_INFO)";
		} else {
			std::string stat;
			unsigned long long runtime = 0, delay = 0, arrivals = 0;
			if (!identity::read_file("/proc/self/schedstat", stat) ||
			    std::sscanf(stat.c_str(), "%llu %llu %llu", &runtime, &delay, &arrivals) != 3 || arrivals == 0)
				why = "the kernel keeps no run-queue delay (/proc/self/schedstat: " +
				      (stat.empty() ? std::string("unreadable") : stat.substr(0, stat.find('\n'))) + ")";
		}
		set(Feature::sched_info, why.empty(), why);
	}

	{
		int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		set(Feature::bpf_stats, fd >= 0, fd >= 0 ? "" : "BPF_ENABLE_STATS: " + err_text(errno));
		if (fd >= 0)
			::close(fd);
	}
}

std::string Features::report() const
{
	std::string out;
	for (size_t i = 0; i < kFeatureCount; i++) {
		const auto &s = state_[i];
		out += "feature=" + std::string(kNames[i]) + " available=" + (s.available ? "yes" : "no");
		if (!s.detail.empty())
			out += " detail=\"" + s.detail + "\"";
		out += "\n";
	}
	return out;
}

} // namespace aurum
