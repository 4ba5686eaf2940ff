#!/usr/bin/env bash
# TURN relay benchmark: Oxbow's embedded TURN server and coturn (Debian's `turnserver`) on the
# same machine in the same run, each driven by coturn's own load generator
# (`turnutils_uclient`, client-to-client through two relays, UDP). Reports per server: packets
# relayed, lost, time, and the server's CPU per packet.
# Usage: bench/turn.sh [clients] [messages per client] [bytes per message] [interval ms]
set -euo pipefail
clients=${1:-50} messages=${2:-2000} length=${3:-1000} interval=${4:-2}
port=7896
export OXBOW_TURN_LISTEN=127.0.0.1:3478
# The benchmark offers 8 Mbit/s per allocation and opens hundreds of allocations under one
# channel's credentials: neither limit applies, as coturn has none here.
serve_flags="--turn-max-kbps 0 --turn-max-allocations-per-channel 0"
# shellcheck source=bench/serve.sh
source "$(dirname "$0")/serve.sh"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# shellcheck disable=SC2317
sign() { curl -s --fail --aws-sigv4 "aws:amz:us-east-1:kinesisvideo" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H 'content-type: application/json' "http://127.0.0.1:$port$1" -d "$2"; }
arn=$(sign /createSignalingChannel '{"ChannelName":"bench-turn"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["ChannelARN"])')
ice=$(sign /v1/get-ice-server-config "{\"ChannelARN\":\"$arn\"}")
user=$(echo "$ice" | python3 -c 'import json,sys; print(json.load(sys.stdin)["IceServerList"][0]["Username"])')
pass=$(echo "$ice" | python3 -c 'import json,sys; print(json.load(sys.stdin)["IceServerList"][0]["Password"])')

coturn_log=$(mktemp)
turnserver -n --listening-ip=127.0.0.1 --listening-port=3479 --relay-ip=127.0.0.1 \
  --use-auth-secret --static-auth-secret=bench-secret --realm=oxbow --allow-loopback-peers \
  --no-tls --no-dtls --no-cli --no-tcp-relay --min-port=50000 --max-port=59999 \
  --log-file="$coturn_log" >/dev/null 2>&1 &
coturn=$!
trap 'kill $server $coturn 2>/dev/null; rm -rf "$data" "$coturn_log"' EXIT
sleep 1

run() { # name pid port auth...
  local name=$1 pid=$2 p=$3; shift 3
  local before after out
  before=$(ticks "$pid")
  out=$(turnutils_uclient -y -c -m "$clients" -n "$messages" -l "$length" -z "$interval" -p "$p" "$@" 127.0.0.1 2>&1)
  after=$(ticks "$pid")
  local sent lost secs
  sent=$(echo "$out" | grep -o 'tot_send_msgs=[0-9]*' | tail -1 | cut -d= -f2)
  lost=$(echo "$out" | grep -o 'Total lost packets [0-9]*' | tail -1 | awk '{print $4}')
  secs=$(echo "$out" | grep -o 'Total transmit time is [0-9]*' | tail -1 | awk '{print $5}')
  # Each message crosses the server twice (client -> relay A -> relay B -> client).
  echo "$name: $sent messages sent, $lost lost, ${secs}s, server CPU $(( (after - before) * 10 )) ms = $(python3 -c "print(round(($after-$before)*10000/max(1,2*${sent:-0}),2))") µs per relayed packet"
}
echo "# $(date -u +%FT%TZ) $(nproc) cores; clients=$clients messages=$messages length=$length interval=${interval}ms"
run oxbow "$server" 3478 -u "$user" -w "$pass"
run coturn "$coturn" 3479 -W bench-secret
