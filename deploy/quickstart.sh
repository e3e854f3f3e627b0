#!/usr/bin/env bash
# Berth's main job on a fresh Debian machine, offline: build, start a private berthd, and use
# it. Run from the repository root as root.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/setup-debian.sh
cargo build --release --locked -p berth-services -p berthctl

work="${BERTH_QUICKSTART_DIR:-/tmp/berth-quickstart}"
sock="$work/berth.sock"
mkdir -p "$work"
target/release/berthd --root "$work/root" --state "$work/state" --address "$sock" \
    --config deploy/config.toml >"$work/berthd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done

echo "== berthctl version"
target/release/berthctl --address "$sock" version
echo "== ctr (containerd's own client) against berthd"
ctr --address "$sock" version
ctr --address "$sock" plugins ls
echo "== store the busybox binary as a blob and read it back"
size=$(stat -c %s /bin/busybox)
digest="sha256:$(sha256sum /bin/busybox | cut -d' ' -f1)"
ctr --address "$sock" content ingest --expected-size "$size" --expected-digest "$digest" quickstart </bin/busybox
ctr --address "$sock" content ls
ctr --address "$sock" content get "$digest" | sha256sum
echo "berthd log: $work/berthd.log"
