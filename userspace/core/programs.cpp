// SPDX-License-Identifier: Apache-2.0
#include "core/programs.h"

#include <bpf/bpf.h>

#include <set>

#include "core/log.h"

namespace aurum {

ProgramSet::ProgramSet(std::string component, bpf_object *obj) : component_(std::move(component)), obj_(obj) {}

void ProgramSet::choose(std::vector<HookSpec> hooks, const Features &features)
{
	hooks_ = std::move(hooks);
	choice_.assign(hooks_.size(), -1);
	status_.clear();
	std::set<std::string> keep;
	for (size_t h = 0; h < hooks_.size(); h++) {
		const auto &spec = hooks_[h];
		HookStatus st{component_, spec.hook, "", "", spec.degrades, spec.mandatory, false};
		std::string why;
		for (size_t v = 0; v < spec.variants.size(); v++) {
			const auto &var = spec.variants[v];
			std::string missing;
			for (Feature f : var.needs)
				if (!features.has(f))
					missing += (missing.empty() ? "" : ",") + std::string(feature_name(f));
			if (missing.empty()) {
				choice_[h] = static_cast<int>(v);
				st.variant = var.name;
				for (const auto &p : var.programs)
					keep.insert(p);
				break;
			}
			why += (why.empty() ? "" : "; ") + var.name + " needs " + missing;
		}
		if (choice_[h] < 0)
			st.reason = why.empty() ? "no variant" : why;
		status_.push_back(st);
	}
	bpf_program *prog;
	bpf_object__for_each_program(prog, obj_)
	{
		if (!keep.count(bpf_program__name(prog)))
			bpf_program__set_autoload(prog, false);
	}
}

std::string ProgramSet::chosen(const std::string &hook) const
{
	for (size_t h = 0; h < hooks_.size(); h++)
		if (hooks_[h].hook == hook && choice_[h] >= 0)
			return hooks_[h].variants[static_cast<size_t>(choice_[h])].name;
	return "";
}

void ProgramSet::attach()
{
	for (size_t h = 0; h < hooks_.size(); h++) {
		auto &st = status_[h];
		const auto &spec = hooks_[h];
		if (choice_[h] < 0) {
			if (spec.mandatory)
				throw Error(component_ + ": mandatory hook " + spec.hook + " unavailable: " + st.reason);
			log::warn("%s: hook %s unavailable (%s): %s", component_.c_str(), spec.hook.c_str(),
				  st.reason.c_str(), spec.degrades.c_str());
			continue;
		}
		const auto &var = spec.variants[static_cast<size_t>(choice_[h])];
		if (var.programs.empty()) {
			// What the hook measured is had another way (named by the variant): nothing to attach.
			st.attached = true;
			log::info("%s: hook %s not needed: %s", component_.c_str(), spec.hook.c_str(), var.name.c_str());
			continue;
		}
		bool ok = true;
		for (const auto &name : var.programs) {
			bpf_program *prog = bpf_object__find_program_by_name(obj_, name.c_str());
			if (!prog)
				throw Error(component_ + ": no program " + name + " in the object");
			if (spec.chain) {
				if (int err = spec.chain(prog)) {
					st.reason = "chain " + name + " to " + spec.chained_to + ": " + std::strerror(-err);
					ok = false;
					break;
				}
				continue;
			}
			bpf_link *link = spec.attach ? spec.attach(prog) : bpf_program__attach(prog);
			if (!link) {
				int err = errno;
				st.reason = "attach " + name + ": " + std::strerror(err);
				ok = false;
				break;
			}
			links_.emplace_back(link);
		}
		st.attached = ok;
		if (!ok) {
			if (spec.mandatory)
				throw Error(component_ + ": mandatory hook " + spec.hook + " failed: " + st.reason);
			log::warn("%s: hook %s (%s) failed (%s): %s", component_.c_str(), spec.hook.c_str(),
				  var.name.c_str(), st.reason.c_str(), spec.degrades.c_str());
			continue;
		}
		if (spec.chain)
			log::info("%s: hook %s attached as %s, called from %s", component_.c_str(), spec.hook.c_str(),
				  var.name.c_str(), spec.chained_to.c_str());
		else
			log::info("%s: hook %s attached as %s", component_.c_str(), spec.hook.c_str(), var.name.c_str());
	}
}

std::vector<ProgramStats> ProgramSet::stats() const
{
	std::vector<ProgramStats> out;
	bpf_program *prog;
	bpf_object__for_each_program(prog, obj_)
	{
		int fd = bpf_program__fd(prog);
		if (fd < 0)
			continue;
		bpf_prog_info info{};
		__u32 len = sizeof info;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
			continue;
		out.push_back({component_, bpf_program__name(prog), info.run_time_ns, info.run_cnt});
	}
	return out;
}

} // namespace aurum
