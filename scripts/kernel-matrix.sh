#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The kernel matrix (issue 8): every BPF program loads, attaches and counts on the Debian kernels
# pinned in tests/kernels/kernels.txt, booted under QEMU (TCG: KVM does not work on the dev VMs),
# and on the host's own kernel, where the same suite runs natively.
#
# Each guest boots an initramfs holding busybox-static, the agent with the shared libraries that
# ldd lists, tests/kernels/suite.sh and its config. The suite prints `@@kmx ...` lines on the
# serial console; tests/kernels/matrix.py parses them on the host, checks them against
# tests/kernels/expect.txt and degraded.txt, and writes docs/kernels.md with --docs.
#
#   scripts/kernel-matrix.sh [--agent PATH] [--kernels ID,...] [--no-host] [--out DIR] [--docs]
#   scripts/kernel-matrix.sh --prepare-only | --fetch-only | --list
#   scripts/kernel-matrix.sh --kernels 5.10 --guest-cmd '/kmx/aurum --check --log.level debug 2>&1 | tail -50'
#
# --kernels takes ids of kernels.txt and "host" (default: all of them and host). --prepare-only
# fetches the kernels and builds the initramfs; --reuse-initramfs then skips that (ctest does so:
# one fixture prepares, one test per kernel boots). --docs writes docs/kernels.md. --list shows
# the kernel packages the archive has now, to move a pin. --guest-cmd boots the kernels with
# bpftool and the build's BPF objects (/kmx/bpf/) in the initramfs and runs the command instead of
# the suite, printing the console: for reading a verifier log in full on an old kernel.
#
# Environment: AURUM_KERNEL_CACHE (default <repo>/.kernels: kernels and apt state, git-ignored),
# KMX_TIMEOUT (seconds per guest, default 300), KMX_JOBS (guests booted at once, default 1; each
# TCG guest eats a core), KMX_FORCE_BUDGET (seconds of forced --check runs per kernel, default 60),
# KMX_SOURCE (what the agent was built from, for docs/kernels.md; default: git describe).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kdir=$repo/tests/kernels
cache=${AURUM_KERNEL_CACHE:-$repo/.kernels}
agent=$repo/build/aurum
out=
kernels=
run_host=1
prepare=1
prepare_only=0
write_docs=0
fetch_only=0
list_only=0
guest_cmd=
timeout_s=${KMX_TIMEOUT:-300}
jobs=${KMX_JOBS:-1}

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --agent) agent=$2; shift ;;
    --kernels) kernels=$2; shift ;;
    --out) out=$2; shift ;;
    --no-host) run_host=0 ;;
    --prepare-only) prepare_only=1 ;;
    --reuse-initramfs) prepare=0 ;;
    --docs) write_docs=1 ;;
    --fetch-only) fetch_only=1 ;;
    --list) list_only=1 ;;
    --guest-cmd) guest_cmd=$2; shift ;;
    -h|--help) usage ;;
    *) echo "kernel-matrix: unknown argument $1" >&2; usage ;;
  esac
  shift
done
[ -n "$guest_cmd" ] && out=${out:-$cache/guest-cmd}
out=${out:-$cache/results}
log() { printf '[kernel-matrix %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- dependencies ------------------------------------------------------------------------------
ensure_deps() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v cpio >/dev/null || missing+=(cpio)
  command -v python3 >/dev/null || missing+=(python3)
  # The initramfs has no libc of its own for busybox: it must be the static build.
  if ! command -v busybox >/dev/null || ldd "$(command -v busybox)" >/dev/null 2>&1; then
    missing+=(busybox-static)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: install them (apt-get install ${missing[*]})"
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null &&
         DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
           --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
}

# --- kernels -----------------------------------------------------------------------------------
# apt with its own sources, lists and cache under $cache/apt: the machine's apt setup is untouched.
apt_opts() {
  local a=$cache/apt
  echo "-o Dir::Etc::SourceList=$a/sources.list -o Dir::Etc::SourceParts=/nonexistent
        -o Dir::State::Lists=$a/lists -o Dir::Cache=$a/cache -o Dir::State::status=/var/lib/dpkg/status
        -o APT::Architectures=amd64 -o APT::Sandbox::User=root -o Debug::NoLocking=1 -q"
}
apt_updated=0
apt_update() {
  [ $apt_updated = 1 ] && return 0
  local a=$cache/apt suite
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
  : > "$a/sources.list"
  for suite in $(kernel_lines | awk '{print $4}' | sort -u); do
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' "$suite"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security %s-security main\n' "$suite"
  done >> "$a/sources.list"
  log "apt-get update (kernel sources: $(kernel_lines | awk '{print $4}' | sort -u | tr '\n' ' '))"
  # shellcheck disable=SC2046
  apt-get $(apt_opts) update >"$a/update.log" 2>&1 || { cat "$a/update.log" >&2; die "apt-get update failed"; }
  apt_updated=1
}
kernel_lines() { grep -v '^[[:space:]]*#' "$kdir/kernels.txt" | grep -v '^[[:space:]]*$'; }
# The pinned lines of the kernels chosen with --kernels (all by default; "host" is not pinned).
selected_kernels() {
  local id
  [ -z "$kernels" ] && { kernel_lines; return; }
  for id in ${kernels//,/ }; do
    [ "$id" = host ] && continue
    kernel_lines | awk -v id="$id" '$1 == id' | grep -q . || die "kernel $id is not in kernels.txt"
    kernel_lines | awk -v id="$id" '$1 == id'
  done
}
kernel_dir() { echo "$cache/$2_$3"; }   # id pkg version

fetch_kernel() {
  local id=$1 pkg=$2 ver=$3 dir tmp deb
  dir=$(kernel_dir "$@")
  [ -s "$dir/vmlinuz" ] && return 0
  apt_update
  tmp=$(mktemp -d "$cache/fetch.XXXXXX")
  log "fetching $pkg=$ver"
  # shellcheck disable=SC2046
  if ! (cd "$tmp" && apt-get $(apt_opts) download "$pkg=$ver" >download.log 2>&1); then
    cat "$tmp/download.log" >&2
    log "what the archive has now for ${pkg%%-[0-9]*}-${id}* (pin one in tests/kernels/kernels.txt):"
    # shellcheck disable=SC2046
    apt-cache $(apt_opts) search "^linux-image-${id//./\\.}[.0-9+-].*amd64\$" 2>/dev/null | grep -v -e -rt- -e -dbg \
      | awk '{print $1}' | while read -r p; do apt-cache $(apt_opts) madison "$p"; done >&2 || true
    rm -rf "$tmp"
    die "kernel $id: $pkg=$ver is not in the archive any more"
  fi
  deb=$(ls "$tmp"/*.deb)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./boot
  mkdir -p "$dir"
  mv "$tmp"/boot/vmlinuz-* "$dir/vmlinuz"
  mv "$tmp"/boot/config-* "$dir/config"
  rm -rf "$tmp"
  grep -q '^CONFIG_DEBUG_INFO_BTF=y' "$dir/config" || log "warning: $pkg has no BTF"
}

# --- initramfs ---------------------------------------------------------------------------------
# copy_binary SRC DEST STAGE: a stripped copy of SRC, and of the shared libraries ldd lists for it
# (libbpf, prometheus-cpp, yaml-cpp, libstdc++, ... come from the host) at the paths where the
# dynamic loader looks for them. Stripped: RelWithDebInfo carries tens of MB of DWARF the guest
# has no use for, and every MB of initramfs costs boot time under TCG.
copy_binary() {
  local src=$1 dest=$2 stage=$3 lib
  mkdir -p "$(dirname "$dest")"
  strip --strip-debug -o "$dest" "$src" 2>/dev/null || cp "$src" "$dest"
  chmod 755 "$dest"
  for lib in $(ldd "$src" | awk '/=> \//{print $3} /^[[:space:]]*\//{print $1}'); do
    [ -e "$stage$lib" ] && continue
    mkdir -p "$stage$(dirname "$lib")"
    strip --strip-debug -o "$stage$lib" "$(readlink -f "$lib")" 2>/dev/null || cp -L "$lib" "$stage$lib"
  done
}

build_initramfs() {
  local img=$1 stage applet bb
  stage=$(mktemp -d "$out/initramfs.XXXXXX")
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,kmx,root}
  bb=$(command -v busybox)
  cp "$bb" "$stage/bin/busybox"
  for applet in $(busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$stage/bin/$applet"
  done
  copy_binary "$agent" "$stage/kmx/aurum" "$stage"
  if [ -n "$guest_cmd" ]; then
    copy_binary "$(command -v bpftool)" "$stage/bin/bpftool" "$stage"
    mkdir -p "$stage/kmx/bpf"
    cp "$(dirname "$agent")"/bpf/*.bpf.o "$stage/kmx/bpf/" 2>/dev/null || true
    printf '%s\n' "$guest_cmd" > "$stage/kmx/guest-cmd.sh"
  fi
  cp "$kdir/guest/init" "$stage/init"
  cp "$kdir/suite.sh" "$kdir/aurum.yaml" "$stage/kmx/"
  chmod 755 "$stage/init" "$stage/kmx/suite.sh"
  (cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$img"
  rm -rf "$stage"
  log "initramfs $(du -h "$img" | cut -f1) ($(ldd "$agent" | grep -c '=>') shared libraries from the host)"
}

# --- running -----------------------------------------------------------------------------------
boot_kernel() {
  local id=$1 pkg=$2 ver=$3 dir t0 rc=0
  dir=$(kernel_dir "$id" "$pkg" "$ver")
  t0=$(date +%s.%N)
  # -nodefaults: no VGA or NIC to probe; the guest only needs a serial console and loopback.
  # Kernel arguments without a dot that the kernel does not know reach init as environment.
  timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 1 \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$out/$id.console.log" \
    -kernel "$dir/vmlinuz" -initrd "$out/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 quiet KMX_KERNEL_ID=$id KMX_FORCE_BUDGET=${KMX_FORCE_BUDGET:-60}" </dev/null >"$out/$id.qemu.log" 2>&1 || rc=$?
  printf 'qemu_rc=%s wall_seconds=%.1f package=%s version=%s\n' "$rc" \
    "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$pkg" "$ver" > "$out/$id.run"
  log "kernel $id: qemu exited $rc after $(cut -d' ' -f2 "$out/$id.run" | cut -d= -f2) s"
}

run_on_host() {
  local t0 rc=0
  [ "$(id -u)" = 0 ] || { log "host: not root, skipping the host column"; return 0; }
  t0=$(date +%s.%N)
  KMX_KERNEL_ID=host KMX_AGENT="$agent" KMX_CONFIG="$kdir/aurum.yaml" \
    KMX_AGENT_PORT=${KMX_HOST_AGENT_PORT:-39890} KMX_HTTP_PORT=${KMX_HOST_HTTP_PORT:-38080} \
    timeout --kill-after=10 "$timeout_s" busybox sh "$kdir/suite.sh" > "$out/host.console.log" 2>&1 || rc=$?
  printf 'qemu_rc=%s wall_seconds=%.1f package=host version=%s\n' "$rc" \
    "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$(uname -r)" > "$out/host.run"
  log "host $(uname -r): suite exited $rc after $(cut -d' ' -f2 "$out/host.run" | cut -d= -f2) s"
}

main() {
  local t_start ids=() id pkg ver rest running=0 rc=0
  t_start=$(date +%s)
  mkdir -p "$cache" "$out"
  if [ $list_only = 1 ]; then
    apt_update
    # shellcheck disable=SC2046
    apt-cache $(apt_opts) search '^linux-image-[0-9].*-amd64$' | grep -v -e -rt- -e -dbg -e cloud \
      | awk '{print $1}' | sort -V | while read -r p; do apt-cache $(apt_opts) madison "$p"; done
    return 0
  fi
  [ -n "$kernels" ] && ! [[ ",$kernels," == *,host,* ]] && run_host=0
  ensure_deps
  while read -r id pkg ver rest; do
    [ $prepare = 1 ] && fetch_kernel "$id" "$pkg" "$ver"
    ids+=("$id")
  done < <(selected_kernels)
  [ $fetch_only = 1 ] && { log "kernels cached in $cache"; return 0; }
  [ -x "$agent" ] || die "no agent at $agent (build it first, or pass --agent)"
  if [ $prepare = 1 ] && [ ${#ids[@]} -gt 0 ]; then
    build_initramfs "$out/initramfs.cpio"
  fi
  [ $prepare_only = 1 ] && return 0
  if [ -n "$guest_cmd" ]; then
    while read -r id pkg ver rest; do
      boot_kernel "$id" "$pkg" "$ver"
      echo "===== $id ($pkg $ver)"
      tr -d '\r' < "$out/$id.console.log"
    done < <(selected_kernels)
    return 0
  fi
  [ ${#ids[@]} -eq 0 ] || [ -s "$out/initramfs.cpio" ] || die "no initramfs in $out (run --prepare-only)"
  for id in "${ids[@]}" host; do rm -f "$out/$id".{console.log,run,qemu.log}; done
  while read -r id pkg ver rest; do
    log "booting $id ($pkg $ver)"
    boot_kernel "$id" "$pkg" "$ver" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
  done < <(selected_kernels)
  wait
  [ $run_host = 1 ] && run_on_host
  [ $run_host = 1 ] && [ -f "$out/host.run" ] && ids+=(host)
  local t_total=$(( $(date +%s) - t_start ))
  echo "total_seconds=$t_total" > "$out/matrix.run"
  log "matrix took ${t_total} s"
  python3 "$kdir/matrix.py" check --results "$out" --kernels "${ids[*]}" --tests "$kdir" || rc=$?
  if [ $write_docs = 1 ]; then
    python3 "$kdir/matrix.py" docs --results "$out" --kernels "${ids[*]}" --tests "$kdir" \
      --source "${KMX_SOURCE:-main at $(git -C "$repo" describe --always --dirty 2>/dev/null || echo '?')}" \
      > "$repo/docs/kernels.md"
    log "wrote docs/kernels.md"
  fi
  return $rc
}
main
