#!/usr/bin/env bash
# Berth's main job on a fresh Debian machine, offline, as root: build, start a private berthd,
# make a tiny image from Debian's static busybox, serve it from a local registry, pull and
# unpack it inside berthd, and run containers from it with berthctl (and ctr) on Berth's shim.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/setup-debian.sh
cargo build --release --locked -p berth-services -p berthctl -p berth-shim

work="${BERTH_QUICKSTART_DIR:-/tmp/berth-quickstart}"
rm -rf "$work"
mkdir -p "$work"
sock="$work/berth.sock"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# berthd finds its shim (containerd-shim-berth-v2) on PATH, as containerd does.
PATH="$PWD/target/release:$PATH" target/release/berthd --root "$work/root" --state "$work/state" --address "$sock" \
    --config deploy/config.toml >"$work/berthd.log" 2>&1 &
pids+=($!)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

ctl() { target/release/berthctl --address "$sock" "$@"; }
image="127.0.0.1:$port/lab/busybox:1"

echo "== berthctl version"
ctl version
echo "== build an image from /bin/busybox and push it to the local registry"
deploy/busybox-image.sh "$work/layout" 1
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:1" "docker://$image"
echo "== berthd pulls and unpacks it"
ctl pull --plain-http "$image"
echo "== containerd's own client sees it"
ctr --address "$sock" images ls
ctr --address "$sock" snapshots ls
echo "== berthctl runs a container from it (Berth's shim driving runc)"
ctl run --rm --name quickstart --hostname quickstart "$image" \
    sh -c 'echo "hello from a Berth container (hostname $(hostname))"; exit 7' && rc=0 || rc=$?
echo "container exited with $rc"
[ "$rc" = 7 ] || { echo "quickstart: expected exit code 7" >&2; exit 1; }
echo "== and containerd's ctr runs one too, on the same daemon"
ctr --address "$sock" run --rm --runtime io.containerd.berth.v2 "$image" quickstart-ctr \
    echo "hello through ctr"
echo "== a detached one with logs"
ctl run -d --name web "$image" sh -c 'echo serving; sleep 300' >/dev/null
ctl ps
sleep 0.5
ctl logs web
ctl rm -f web >/dev/null
echo "berthd log: $work/berthd.log"
