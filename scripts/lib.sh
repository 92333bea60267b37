# SPDX-License-Identifier: Apache-2.0
# Shared by the scripts: root, Debian dependencies. Source it; it defines functions only.

# Re-runs the calling script as root: directly when root, under sudo where it exists.
aurum_as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		return 0
	fi
	if command -v sudo >/dev/null 2>&1; then
		echo "$(basename "$0"): needs root (BPF programs, /proc of every process); re-running under sudo" >&2
		exec sudo -E "$0" "$@"
	fi
	echo "$(basename "$0"): needs root (BPF programs, /proc of every process) and there is no sudo: run it as root" >&2
	exit 1
}

# Installs the Debian packages given that are not installed yet (one apt-get for all).
aurum_apt() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing Debian packages: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/aurum-apt.log 2>&1; then
		apt-get update -q >/tmp/aurum-apt-update.log 2>&1 || true
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/aurum-apt.log 2>&1 || {
			tail -20 /tmp/aurum-apt.log >&2
			echo "apt-get install failed: ${missing[*]}" >&2
			return 1
		}
	fi
}

AURUM_BUILD_DEPS=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev prometheus-cpp-dev libcxxopts-dev
	libyaml-cpp-dev libgtest-dev ninja-build cmake pkg-config g++ libcurl4-openssl-dev libssl-dev
	libexpat1-dev)
AURUM_TEST_DEPS=(libclang-rt-14-dev iproute2 curl procps libcap2-bin postgresql postgresql-contrib rabbitmq-server python3-pika python3-psycopg2
	nginx-light wrk nftables)

# Configures and builds into build/ (or $AURUM_BUILD_DIR).
aurum_build() {
	local dir=${AURUM_BUILD_DIR:-build}
	cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j "$(nproc)"
}
