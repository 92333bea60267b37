// SPDX-License-Identifier: Apache-2.0
// BPF iterators (iter/... programs): run one to its end from userspace.
#pragma once
#include <bpf/libbpf.h>

#include <cstring>
#include <string>
#include <vector>

namespace aurum {

// Runs the iterator behind `link` to its end and returns what its program wrote with
// bpf_seq_write (empty for one that only fills maps). Throws Error naming `what` on failure.
std::string run_iter(bpf_link *link, const std::string &what);

// The same for a program that writes records of one type: the whole records it wrote.
template <typename T> std::vector<T> run_iter_records(bpf_link *link, const std::string &what)
{
	std::string raw = run_iter(link, what);
	std::vector<T> out(raw.size() / sizeof(T));
	std::memcpy(out.data(), raw.data(), out.size() * sizeof(T));
	return out;
}

// Attaches an iterator program that walks the elements of one map (iter/bpf_sk_storage_map,
// iter/bpf_map_elem); null with errno set on failure, like libbpf's attach calls.
bpf_link *attach_map_iter(bpf_program *prog, int map_fd);

} // namespace aurum
