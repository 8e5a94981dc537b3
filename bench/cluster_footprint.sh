#!/usr/bin/env bash
# Idle resident memory of `berth server` and one joined `berth agent`, sampled three
# times 5 s apart after 20 s of quiet; prints the median of each in KB.
# Usage: bench/cluster_footprint.sh [path/to/berth]   (default: target/release/berth)
set -euo pipefail
berth=${1:-target/release/berth}
dir=$(mktemp -d)
server_pid= agent_pid=
cleanup() {
    [ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
    [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
"$berth" server --listen "127.0.0.1:$port" --agent-listen "127.0.0.1:$((port + 1))" \
    --advertise 127.0.0.1 --data-dir "$dir/server" >"$dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do grep -q "berth agent --server" "$dir/server.log" && break; sleep 0.2; done
join=$(grep -o "berth agent --server.*" "$dir/server.log" | head -1 | sed 's/^berth //')
# shellcheck disable=SC2086 # the join command's words
"$berth" $join --data-dir "$dir/agent" >"$dir/agent.log" 2>&1 &
agent_pid=$!
sleep 20
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
server=() agent=()
for _ in 1 2 3; do
    server+=("$(rss "$server_pid")"); agent+=("$(rss "$agent_pid")"); sleep 5
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
echo "berth server idle RSS: $(median "${server[@]}") KB"
echo "berth agent idle RSS: $(median "${agent[@]}") KB"
