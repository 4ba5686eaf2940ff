#!/usr/bin/env bash
# Cluster benchmark: the same PutMedia load (`oxbow bench media`, real-time producers, no
# consumers) against one embedded node, then spread over three nodes sharing a private
# PostgreSQL catalog and an s3s-fs bucket (media as objects), all on this machine. Prints each
# run's report; per node it gives ingest, PERSISTED latency and the node's CPU.
#
#   bench/cluster.sh [--streams N] [--seconds S] [--node-threads T] [--one-threads T] [--perf FILE]
#
# Defaults: 45 streams, 20 s; each of the three nodes runs `--worker-threads` = its share of
# this machine's cores (at least 1), as one would size nodes sharing a host; the embedded node
# runs with its default (all cores) unless --one-threads is given. Between the two, an embedded
# node sized and loaded like one cluster node runs alone, to tell the cost of PostgreSQL and S3
# to a node from the cost of splitting the load over three processes. --perf FILE records a
# 12 s CPU profile of the first cluster node (`perf record -g`) for `perf report -i FILE`.
#
# Needs PostgreSQL's server binaries (Debian: postgresql) and s3s-fs (.ci/run installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
streams=45
seconds=20
node_threads=$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))
one_threads=
perf_out=
while [ $# -gt 0 ]; do
  case "$1" in
    --streams) streams=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --node-threads) node_threads=$2; shift 2 ;;
    --one-threads) one_threads=$2; shift 2 ;;
    --perf) perf_out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
cargo build --release -p oxbow >&2
bin=$PWD/target/release/oxbow
work=$(mktemp -d /tmp/oxbow-cluster-bench.XXXXXX)
chmod 755 "$work"   # PostgreSQL runs as another user when we are root
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -sf "$1/health" >/dev/null && return; sleep 0.1; done; echo "no $1" >&2; exit 1; }

export OXBOW_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000001 OXBOW_ROOT_SECRET_ACCESS_KEY=bench-secret
export AWS_ACCESS_KEY_ID=$OXBOW_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$OXBOW_ROOT_SECRET_ACCESS_KEY
ulimit -n 65536 2>/dev/null || true
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(uname -r); $streams streams x 2 Mbit/s for ${seconds}s; $(git rev-parse --short HEAD 2>/dev/null)"

# A private PostgreSQL (fsync on, as a deployment would run it), as `postgres` when root.
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown -R postgres: "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U oxbow -A trust -E UTF8 --locale=C >/dev/null
pgport=$(free_port)
as_pg "$pgbin/postgres" -D "$work/pg/data" -p "$pgport" -k "$work/pg" -c listen_addresses=127.0.0.1 \
  -c max_connections=200 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pgport" && break; sleep 0.1; done
catalog="postgres://oxbow@127.0.0.1:$pgport/postgres"

# An S3-compatible server with a bucket for media.
mkdir -p "$work/s3/media"
s3port=$(free_port)
s3s-fs --host 127.0.0.1 --port "$s3port" --access-key s3key --secret-key s3secret "$work/s3" >/dev/null 2>&1 &
pids+=($!)
sleep 0.5

serve() { # dir port [flags...]
  local dir=$1 port=$2; shift 2
  RUST_LOG=warn OXBOW_TURN_LISTEN=127.0.0.1:0 "$bin" serve --listen "127.0.0.1:$port" \
    --data-dir "$dir" --media-tps-per-stream 0 "$@" >/dev/null &
  echo $!
}
bench() { # port pid streams
  "$bin" bench media --endpoint "http://127.0.0.1:$1" --server-pid "$2" --streams "$3" \
    --consumers 0 --seconds "$seconds"
}

echo "## one embedded node (segment files, SQLite), $streams streams, worker threads: ${one_threads:-default}"
port=$(free_port)
one=$(serve "$work/one" "$port" ${one_threads:+--worker-threads "$one_threads"})
pids+=("$one")
wait_http "http://127.0.0.1:$port"
bench "$port" "$one" "$streams" | tee "$work/one.txt"
kill "$one"

# Where the difference comes from: an embedded node sized and loaded as one cluster node is.
per=$((streams / 3))
echo "## one embedded node with one node's share: $per streams, worker threads: $node_threads"
port=$(free_port)
share=$(serve "$work/share" "$port" --worker-threads "$node_threads")
pids+=("$share")
wait_http "http://127.0.0.1:$port"
bench "$port" "$share" "$per" | tee "$work/share.txt"
kill "$share"

echo "## three nodes on PostgreSQL + S3 (s3s-fs), $per streams each, at once, worker threads: $node_threads"
ports=() nodes=()
for n in a b c; do
  p=$(free_port)
  nodes+=("$(serve "$work/$n" "$p" --worker-threads "$node_threads" --catalog "$catalog" --media s3://media/bench \
    --media-s3-endpoint "http://127.0.0.1:$s3port" --media-s3-access-key-id s3key \
    --media-s3-secret-access-key s3secret)")
  pids+=("${nodes[-1]}")
  ports+=("$p")
done
for p in "${ports[@]}"; do wait_http "http://127.0.0.1:$p"; done
runs=()
for i in 0 1 2; do
  bench "${ports[$i]}" "${nodes[$i]}" "$per" > "$work/node-$i.txt" &
  runs+=($!)
done
if [ -n "$perf_out" ]; then
  sleep 3
  perf record -F 999 -g -o "$perf_out" -p "${nodes[0]}" -- sleep 12 >/dev/null 2>&1
fi
for r in "${runs[@]}"; do wait "$r"; done
for i in 0 1 2; do echo "### node $i"; cat "$work/node-$i.txt"; done
# Efficiency: the three nodes' ingest per core-% spent against the one node's; and a cluster
# node's against an embedded node's at the same load (what PostgreSQL and S3 cost a node).
awk '
  /^ingest:/ { mb[FILENAME] = $2 }
  /^server:/ { cpu[FILENAME] = $2 + 0 }
  END {
    for (f in mb) {
      if (f ~ /one.txt$/) one = mb[f] / cpu[f]
      else if (f ~ /share.txt$/) share = mb[f] / cpu[f]
      else { sum_mb += mb[f]; sum_cpu += cpu[f] }
    }
    printf "efficiency: %.2f (three nodes %.2f MB/s on %.1f%% of a core; one node %.2f MB/s per core-%%)\n", (sum_mb / sum_cpu) / one, sum_mb, sum_cpu, one
    printf "cluster node against an embedded node at the same load: %.2f\n", (sum_mb / sum_cpu) / share
  }' "$work/one.txt" "$work/share.txt" "$work"/node-?.txt
