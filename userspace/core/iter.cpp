// SPDX-License-Identifier: Apache-2.0
#include "core/iter.h"

#include <bpf/bpf.h>

#include <cerrno>

#include "core/error.h"
#include "core/fd.h"

namespace aurum {

std::string run_iter(bpf_link *link, const std::string &what)
{
	UniqueFd fd(bpf_iter_create(bpf_link__fd(link)));
	if (!fd)
		throw Error("create " + what, errno);
	std::string out;
	char buf[8192];
	for (;;) {
		ssize_t n = ::read(fd.get(), buf, sizeof buf);
		if (n > 0)
			out.append(buf, static_cast<size_t>(n));
		else if (n == 0)
			return out;
		else if (errno != EINTR)
			throw Error("run " + what, errno);
	}
}

bpf_link *attach_map_iter(bpf_program *prog, int map_fd)
{
	bpf_iter_attach_opts o{};
	bpf_iter_link_info info{};
	o.sz = sizeof o;
	info.map.map_fd = static_cast<__u32>(map_fd);
	o.link_info = &info;
	o.link_info_len = sizeof info;
	return bpf_program__attach_iter(prog, &o);
}

} // namespace aurum
