# Sourced by the bench scripts: builds the release binary, starts `oxbow serve` on a fresh
# data directory at 127.0.0.1:$port with the flags in $serve_flags (plus OXBOW_SERVE_FLAGS),
# waits for /health, and stops it and removes the directory on exit. Sets $bin, $data,
# $server (the pid) and exports the root key as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
cd "$(dirname "$0")/.."
cargo build --release -p oxbow >&2
bin=target/release/oxbow
data=$(mktemp -d "${OXBOW_BENCH_DIR:-/tmp}/oxbow-bench.XXXXXX")
export OXBOW_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000001 OXBOW_ROOT_SECRET_ACCESS_KEY=bench-secret
export AWS_ACCESS_KEY_ID=$OXBOW_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$OXBOW_ROOT_SECRET_ACCESS_KEY
ulimit -n 65536 2>/dev/null || true
# The embedded TURN server on a free port unless a benchmark names one.
export OXBOW_TURN_LISTEN=${OXBOW_TURN_LISTEN:-127.0.0.1:0}
# shellcheck disable=SC2086
RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" \
  ${serve_flags:-} ${OXBOW_SERVE_FLAGS:-} >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(uname -r)"
