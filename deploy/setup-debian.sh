#!/usr/bin/env bash
# Installs what building and testing Berth needs on a fresh Debian machine (as root), from
# Debian's packages only. Safe to run again: already-present packages are skipped.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have protoc || need+=(protobuf-compiler)
have ctr && have containerd-shim-runc-v2 || need+=(containerd)
have runc || need+=(runc)
have docker-registry || need+=(docker-registry)
have skopeo || need+=(skopeo)
have python3 || need+=(python3)
have script || need+=(bsdutils)
[ -x /bin/busybox ] || need+=(busybox-static)
have cc || need+=(gcc)
# A static libc: the security tests build a tiny static socket probe to run in a container.
dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)
# tests/faults puts a daemon's root on a small loop-mounted ext4 to fill the disk.
have mkfs.ext4 || need+=(e2fsprogs)
have losetup || need+=(mount)
have pkg-config || need+=(pkg-config)

if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! have cargo; then
    echo "setup: cargo is required (rustup's stable toolchain, 1.95 or newer)" >&2
    exit 1
fi
