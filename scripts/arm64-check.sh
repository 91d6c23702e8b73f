#!/usr/bin/env bash
# The arm64 check (issue 23, part 4): the node agent installed and run on a Pi's architecture.
#
# Nodes are Raspberry Pis running 64-bit Raspberry Pi OS Bookworm (Python 3.11, aarch64). CI is x86,
# so this builds (once, then reuses) an arm64 Debian Bookworm userland with debootstrap and runs it
# under qemu-user through binfmt_misc. Inside, with Bookworm's own Python 3.11, it installs the
# project from the working tree twice, as a door (`pingan[door]`) and as a pole (`pingan[pole]`),
# proves the door's install holds no vision/video wheels, checks the example configs, runs a door
# against the reader simulator and a pole against a real mosquitto (on the host's loopback: a chroot
# shares the network namespace), and runs the edge unit tests that need no hub.
#
# What it proves: the installs resolve to aarch64 wheels and the code works on aarch64.
# What it does not: speed. Emulated Python is 4-7x slower, numpy/JPEG 11-24x; never read timings here
# as a Pi's.
#
# Needs root (debootstrap, chroot, mounts). Without root, qemu or binfmt_misc it fails with CI=true
# (CI must never pass without having run it) and skips with a message otherwise.
#
# Environment:
#   PINGAN_ARM64_CACHE   where the rootfs lives (default /var/cache/pingan-arm64; outside the repo)
#   PINGAN_ARM64_MIRROR  Debian mirror for debootstrap (default: the one the host's apt uses)
#   PINGAN_ARM64_REBUILD=1  throw the cached rootfs away and build it again
#   PINGAN_ARM64=0       skip this check (scripts/test.sh honours it; refused with CI=true)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

CACHE=${PINGAN_ARM64_CACHE:-/var/cache/pingan-arm64}
ROOTFS=$CACHE/bookworm-arm64
# Bump when the rootfs recipe changes, so a cached rootfs from an older recipe is rebuilt.
RECIPE="v1 bookworm arm64 minbase python3 python3-venv ca-certificates"
STAMP=$ROOTFS/.pingan-rootfs
SKIPPED=""
SUMMARY=$CACHE/summary.tsv     # one line per step: name, seconds, result, note (the inside adds its own)
T0=$(date +%s)

say() { echo "[arm64] $*"; }

# No silent pass: in CI a machine that cannot run the check is a failure; on a laptop it is a skip.
cannot_run() {
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    echo "[arm64] ERROR: the arm64 check cannot run here: $*" >&2
    echo "[arm64] ERROR: CI must run it (see README, 'The arm64 check')." >&2
    exit 1
  fi
  echo "[arm64] SKIPPED: the arm64 check cannot run here: $*"
  echo "[arm64] SKIPPED: (with CI=true this is a failure)"
  SKIPPED=$*
  exit 0
}

# step NAME CMD...: run a step in this shell (errexit stays on inside it: a failing command ends the
# script, and the EXIT trap records the step as FAILED), then record its wall time for the summary.
STEP_NAME="" STEP_T=0
step() {
  STEP_NAME=$1 STEP_T=$(date +%s); shift
  say "--- $STEP_NAME"
  "$@"
  printf '%s\t%s\tok\t\n' "$STEP_NAME" "$(( $(date +%s) - STEP_T ))" >>"$SUMMARY"
  STEP_NAME=""
}

# ---------------------------------------------------------------------------------------------
# Mounts. Everything mounted under the rootfs is listed here and undone on exit, whatever happens:
# a stale bind of /dev or /sys under the cache would make a later `rm -rf` of it catastrophic.
MOUNTS=()
BG_PIDS=()
cleanup() {
  local i
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do umount -R "${MOUNTS[$i]}" 2>/dev/null || umount -l -R "${MOUNTS[$i]}" || true; done
  MOUNTS=()
}
print_summary() {
  local rc=$?
  if [ $rc != 0 ] && [ -n "$STEP_NAME" ]; then
    printf '%s\t%s\tFAILED\t\n' "$STEP_NAME" "$(( $(date +%s) - STEP_T ))" >>"$SUMMARY"
  fi
  cleanup
  echo
  echo "==================== arm64 check summary (qemu-user emulation; timings are not a Pi's) ===================="
  if [ -s "$SUMMARY" ]; then
    awk -F'\t' '{ printf "  %-7s %5ss  %s%s\n", $3, $2, $1, ($4 != "" ? "  (" $4 ")" : "") }' "$SUMMARY"
  fi
  echo "  total   $(( $(date +%s) - T0 ))s"
  if [ -n "$SKIPPED" ]; then echo "  RESULT: arm64 check SKIPPED: $SKIPPED"
  elif [ $rc = 0 ]; then echo "  RESULT: arm64 check passed"; else echo "  RESULT: arm64 check FAILED (exit $rc)"; fi
  echo "============================================================================================================"
  exit $rc
}
trap print_summary EXIT

if [ "${PINGAN_ARM64:-1}" = 0 ]; then
  cannot_run "PINGAN_ARM64=0 asked to skip it"
fi
[ "$(id -u)" = 0 ] || cannot_run "it needs root (debootstrap, chroot and mounts)"
# (an aarch64 host would need no emulation at all; only x86_64 hosts are wired up here)
[ "$(uname -m)" = x86_64 ] || cannot_run "written for x86_64 hosts; this is $(uname -m)"
mkdir -p "$CACHE"
: >"$SUMMARY"

# ---------------------------------------------------------------------------------------------
# Host tools: qemu-user-static (the emulator, registered with the F flag so it works inside a
# chroot without copying it in), binfmt-support (update-binfmts), debootstrap.
host_tools() {
  local need=()
  [ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
  command -v update-binfmts >/dev/null 2>&1 || need+=(binfmt-support)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
  [ ${#need[@]} = 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || cannot_run "missing ${need[*]} and no apt-get to install them"
  say "installing from Debian: ${need[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

# binfmt_misc: the kernel hands aarch64 ELF files to qemu. Containers often lack the mount, and
# some cannot mount it at all (then we cannot run, which is loud in CI).
binfmt() {
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
      || cannot_run "binfmt_misc is not mounted and cannot be mounted (a container without privileges?)"
  fi
  if ! grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
  grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || cannot_run "qemu-aarch64 is not registered with binfmt_misc (update-binfmts --enable qemu-aarch64 failed)"
  # F = the kernel opens the interpreter at registration time, so it works inside the chroot too
  grep -qs '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || cannot_run "qemu-aarch64 is registered without the F flag (not qemu-user-static's registration)"
}

step "host tools (qemu-user-static, binfmt-support, debootstrap, mosquitto)" host_tools
step "binfmt_misc + qemu-aarch64" binfmt

no_mounts_under() { ! grep -qs " $1[/ ]" /proc/self/mounts; }

# ---------------------------------------------------------------------------------------------
# The rootfs: debootstrap once; reused while its stamp matches the recipe and its Python runs.
debian_mirror() {
  if [ -n "${PINGAN_ARM64_MIRROR:-}" ]; then echo "$PINGAN_ARM64_MIRROR"; return; fi
  # the mirror the host's apt already reaches (deb822 first, then the one-line format)
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1=="deb" && $2 ~ /^https?:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}

rootfs_valid() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$RECIPE" ] \
    && chroot "$ROOTFS" /usr/bin/python3 -c 'import platform, sys, ensurepip; assert platform.machine() == "aarch64" and sys.version_info[:2] == (3, 11)' 2>/dev/null
}

build_rootfs() {
  if rootfs_valid; then
    say "reusing $ROOTFS ($(du -sh "$ROOTFS" 2>/dev/null | cut -f1))"
    return 0
  fi
  local tmp=$ROOTFS.tmp mirror
  mirror=$(debian_mirror)
  for d in "$ROOTFS" "$tmp"; do
    no_mounts_under "$d" || { echo "[arm64] something is still mounted under $d; refusing to delete it" >&2; return 1; }
    rm -rf "$d"
  done
  say "debootstrap arm64 bookworm from $mirror (a few minutes; then cached in $ROOTFS)"
  # minbase + python3-venv: Bookworm's Python 3.11 with ensurepip (the venvs bring their own pip)
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$tmp" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -30 "$CACHE/debootstrap.log" >&2; return 1; }
  rm -rf "$tmp"/var/cache/apt/archives/*.deb
  echo "$RECIPE" >"$tmp/.pingan-rootfs"
  mv "$tmp" "$ROOTFS"   # only a finished rootfs ever has the final name
  rootfs_valid || { echo "[arm64] the new rootfs does not run python3 as aarch64 3.11" >&2; return 1; }
}
REBUILD=${PINGAN_ARM64_REBUILD:-0}
if [ "$REBUILD" = 1 ]; then
  no_mounts_under "$ROOTFS" && rm -rf "$ROOTFS"
fi
step "arm64 Bookworm rootfs (debootstrap, or reuse the cache)" build_rootfs

# ---------------------------------------------------------------------------------------------
# Into the chroot: network config, CA certificates, pip's index; proc/sys/dev; a Pi's cpuinfo;
# the working tree.

# pip in the chroot must reach the same index as the host's pip. Only http(s) indexes travel:
# file:// indexes and find-links name host paths (and host wheels) the chroot does not have.
pip_conf() {
  local idx extra host_cfg
  host_cfg=$( (python3 -m pip config list 2>/dev/null || pip3 config list 2>/dev/null || true) )
  pick() {  # last value of a pip option: environment first, then the host's config files
    printf '%s\n' "$host_cfg" | sed -n "s/^[^.]*\.$1='\(.*\)'\$/\1/p" | tail -1
  }
  idx=${PIP_INDEX_URL:-$(pick index-url)}
  extra=${PIP_EXTRA_INDEX_URL:-$(pick extra-index-url)}
  trusted=${PIP_TRUSTED_HOST:-$(pick trusted-host)}
  idx=$(printf '%s\n' $idx | grep -E '^https?://' | head -1 || true)
  extra=$(printf '%s\n' $extra | grep -E '^https?://' | tr '\n' ' ' || true)
  {
    echo "[global]"
    echo "cert = /etc/ssl/certs/ca-certificates.crt"
    echo "disable-pip-version-check = true"
    echo "timeout = 120"
    [ -n "$idx" ] && echo "index-url = $idx"
    [ -n "${extra// }" ] && echo "extra-index-url = $extra"
    [ -n "$trusted" ] && echo "trusted-host = $trusted"
  } >"$ROOTFS/etc/pip.conf"
  say "chroot pip index: ${idx:-PyPI (default)}${extra:+ + $extra}"
}

# A Raspberry Pi 4's /proc/cpuinfo (Cortex-A72). qemu-user 7.2 passes the host's x86 cpuinfo
# through, and onnxruntime's cpuinfo parser segfaults on it.
write_cpuinfo() {
  local f=$CACHE/cpuinfo-cortex-a72
  : >"$f"
  for n in 0 1 2 3; do
    cat >>"$f" <<EOF
processor	: $n
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

EOF
  done
  printf 'Hardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n' >>"$f"
  echo "$f"
}

enter_chroot() {
  # network: the chroot shares the host's network namespace; it only needs to resolve names
  cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  [ -f /etc/hosts ] && cp -L /etc/hosts "$ROOTFS/etc/hosts"
  # trust: the host's bundle holds Debian's CAs plus any the site adds (a TLS-inspecting proxy's);
  # without it pip fails TLS to the index
  cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  pip_conf
  # a fresh proc and sysfs rather than binds of the host's: a bind of a shared /proc would carry
  # the cpuinfo mount below back onto the host's /proc/cpuinfo
  mount -t proc proc "$ROOTFS/proc"; MOUNTS+=("$ROOTFS/proc")
  mount -t sysfs sysfs "$ROOTFS/sys"; MOUNTS+=("$ROOTFS/sys")
  mount --rbind /dev "$ROOTFS/dev"; mount --make-rslave "$ROOTFS/dev"; MOUNTS+=("$ROOTFS/dev")  # /dev/pts: the reader's pty
  mount --bind "$(write_cpuinfo)" "$ROOTFS/proc/cpuinfo"; MOUNTS+=("$ROOTFS/proc/cpuinfo")
  grep -q 'CPU part.*0xd08' "$ROOTFS/proc/cpuinfo"
  ! grep -q 'CPU part.*0xd08' /proc/cpuinfo   # the host's cpuinfo is untouched
  # the working tree as git sees it (tracked and new files, nothing ignored: no .venv, no caches),
  # copied rather than bound: pip/setuptools write build/ and *.egg-info into the source tree
  rm -rf "$ROOTFS/src" && mkdir -p "$ROOTFS/src"
  if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$REPO" ls-files -z -co --exclude-standard \
      | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
      | tar --null -T - -cf - | tar -C "$ROOTFS/src" -xf -
  else
    tar --exclude=.venv --exclude=.git --exclude='*.egg-info' --exclude=build -cf - . | tar -C "$ROOTFS/src" -xf -
  fi
  rm -rf "$ROOTFS/tmp/pingan-arm64" && mkdir -p "$ROOTFS/tmp/pingan-arm64"
}
step "enter the chroot (resolv.conf, CAs, pip index, proc/sys/dev, A72 cpuinfo, working tree)" enter_chroot

# ---------------------------------------------------------------------------------------------
# A real mosquitto on the host's loopback for the door and the pole (the chroot shares the network).
start_broker() {
  local dir=$CACHE/broker exe
  exe=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  rm -rf "$dir" && mkdir -p "$dir"
  BROKER_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # user root: mosquitto started as root drops to 'mosquitto', which cannot write this directory
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\nlog_dest stdout\n' \
    "$BROKER_PORT" >"$dir/mosquitto.conf"
  "$exe" -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
  BG_PIDS+=($!)
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $BROKER_PORT), 0.2)" 2>/dev/null && break
    sleep 0.1
  done
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $BROKER_PORT), 0.2)" \
    || { cat "$dir/mosquitto.log" >&2; return 1; }
  say "mosquitto on 127.0.0.1:$BROKER_PORT"
}
step "mosquitto on the host's loopback" start_broker

# ---------------------------------------------------------------------------------------------
# Inside: venvs, installs, checks, nodes, tests (scripts/arm64/inside.sh). It appends its own steps
# to the summary; HOME and a clean environment so nothing of the host's Python leaks in.
inside_rc=0
chroot "$ROOTFS" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
  BROKER_URL="mqtt://127.0.0.1:$BROKER_PORT" SUMMARY=/tmp/pingan-arm64/summary.tsv \
  PINGAN_ARM64_TESTS="${PINGAN_ARM64_TESTS:-}" \
  /bin/bash /src/scripts/arm64/inside.sh || inside_rc=$?
cat "$ROOTFS/tmp/pingan-arm64/summary.tsv" >>"$SUMMARY" 2>/dev/null || true
if grep -q '^Error' "$CACHE/broker/mosquitto.log"; then
  echo "[arm64] mosquitto logged errors:" >&2; grep '^Error' "$CACHE/broker/mosquitto.log" >&2; inside_rc=1
fi
exit $inside_rc
