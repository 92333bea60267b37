// SPDX-License-Identifier: Apache-2.0
// Walking the per-process hash maps that every component folds into per-service totals.
#pragma once
#include <bpf/bpf.h>

#include <vector>

namespace aurum {

// Visits every (key, value) of a BPF hash; the entries for which `visit` returns false are
// deleted after the walk (deleting while get_next_key walks would restart it) and returned.
template <typename Key, typename Value, typename Visit> std::vector<Key> walk_map(int fd, Visit visit)
{
	Key key{}, next{};
	Key *prev = nullptr;
	std::vector<Key> dead;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		Value v{};
		if (bpf_map_lookup_elem(fd, &key, &v) != 0)
			continue; // deleted under us
		if (!visit(key, v))
			dead.push_back(key);
	}
	for (const auto &k : dead)
		bpf_map_delete_elem(fd, &k);
	return dead;
}

} // namespace aurum
