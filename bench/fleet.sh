#!/usr/bin/env bash
# The control plane under a simulated fleet: a `berth server` (release build) on
# loopback, FLEET_AGENTS simulated machines in one process (bench/fleet: each the real
# berth agent on an in-memory engine over the real mutual-TLS link, joined with the
# token, heartbeating every second, long-polling its assignments, reporting its tasks),
# FLEET_SERVICES services of the ECS API (aws CLI) totalling FLEET_TASKS tasks spread
# over the fleet. Measures the time to place and run them all, then over FLEET_STEADY
# seconds of steady state the server process's CPU (utime+stime from /proc/PID/stat,
# in cores) and resident memory (VmRSS, sampled; VmHWM at the end).
#
# Usage: bench/fleet.sh
# Needs: cargo (builds target/release/berth and berth-fleet unless BERTH_BIN and
# FLEET_BIN are set), the aws CLI (/usr/bin/aws). No Docker: the engines are pretend.
#
# Knobs (environment): FLEET_AGENTS=1000 FLEET_TASKS=10000 FLEET_SERVICES=10
#   FLEET_STEADY=60 FLEET_SETTLE=10 FLEET_RUNS=2 FLEET_TIMEOUT=900 (per phase, s)
#   FLEET_SPREAD=1 (machine N connects from 127.1.x.y of its own; 0: all from 127.0.0.1)
#   FLEET_HEARTBEAT_TIMEOUT=3s (berth server's --heartbeat-timeout; 3s is its default)
#   BERTH_BIN=path FLEET_BIN=path FLEET_KEEP=1 (keep the temp dir)
#   FLEET_PERF=1 (perf record the server while it places the tasks: perf-placing.data)
#
# Cleans up on any exit: the server and generator it started (by pid), its temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

AGENTS="${FLEET_AGENTS:-1000}"
TASKS="${FLEET_TASKS:-10000}"
SERVICES="${FLEET_SERVICES:-10}"
STEADY="${FLEET_STEADY:-60}"
SETTLE="${FLEET_SETTLE:-10}"
RUNS="${FLEET_RUNS:-2}"
TIMEOUT="${FLEET_TIMEOUT:-900}"
SPREAD="${FLEET_SPREAD:-1}"
HEARTBEAT_TIMEOUT="${FLEET_HEARTBEAT_TIMEOUT:-3s}"
AWS="${AWS_CLI:-/usr/bin/aws}"

log() { echo "[fleet.sh $(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

[ $((TASKS % SERVICES)) -eq 0 ] || die "FLEET_TASKS must be a multiple of FLEET_SERVICES"
[ "$SERVICES" -le 10 ] || die "at most 10 services (one DescribeServices call)"
PER_SERVICE=$((TASKS / SERVICES))

if [ -z "${BERTH_BIN:-}" ] || [ -z "${FLEET_BIN:-}" ]; then
  log "building berth and berth-fleet (release)"
  CARGO_INCREMENTAL=0 cargo build --release -p berth -p berth-fleet >&2
fi
BERTH_BIN="${BERTH_BIN:-$ROOT/target/release/berth}"
FLEET_BIN="${FLEET_BIN:-$ROOT/target/release/berth-fleet}"

WORK="$(mktemp -d /tmp/berth-fleet.XXXXXX)"
SERVER_PID=""
FLEET_PID=""
PERF_PID=""

stop_pid() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

stop_run() {
  [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null; PERF_PID=""
  stop_pid "$FLEET_PID"; FLEET_PID=""
  stop_pid "$SERVER_PID"; SERVER_PID=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  stop_run
  if [ "${FLEET_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

ticks_per_second="$(getconf CLK_TCK)"
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }

# One run; prints "place_s steady_cores rss_median_mb hwm_mb ramp_cpu_s heartbeat_failures".
one_run() {
  local run="$1" dir="$WORK/run$1"
  mkdir -p "$dir"
  local port=$((20000 + RANDOM % 20000))
  local key="AKIDFLEET$run" secret="fleet-secret-$run-$RANDOM$RANDOM"
  export AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_DEFAULT_REGION=us-east-1
  export AWS_PAGER="" AWS_MAX_ATTEMPTS=1
  local endpoint="http://127.0.0.1:$port"
  ecs() { "$AWS" --endpoint-url "$endpoint" ecs "$@"; }

  "$BERTH_BIN" server --listen "127.0.0.1:$port" --agent-listen "127.0.0.1:$((port + 1))" \
    --advertise 127.0.0.1 --data-dir "$dir/server" \
    --access-key-id "$key" --secret-access-key "$secret" --heartbeat-timeout "$HEARTBEAT_TIMEOUT" \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do grep -q "berth agent --server" "$dir/server.log" && break; sleep 0.2; done
  grep -q "berth agent --server" "$dir/server.log" || die "berth server did not start (see $dir/server.log)"
  local join server_url token
  join="$("$BERTH_BIN" server token --data-dir "$dir/server" | grep -o 'berth agent --server.*')"
  server_url="$(echo "$join" | awk '{print $4}')"
  token="$(echo "$join" | awk '{print $6}')"
  ecs create-cluster --cluster-name default >/dev/null

  local spread=()
  [ "$SPREAD" = 1 ] && spread=(--spread-addresses)
  log "run $run: $AGENTS machines joining $server_url"
  local start_ticks; start_ticks="$(cpu_ticks "$SERVER_PID")"
  log "run $run: load average $(cut -d' ' -f1-3 /proc/loadavg) before the fleet starts"
  BERTH_JOIN_TOKEN="$token" "$FLEET_BIN" --server "$server_url" --agents "$AGENTS" \
    --data-dir "$dir/fleet" "${spread[@]}" >"$dir/fleet.log" 2>"$dir/fleet.err" &
  FLEET_PID=$!
  local began=$SECONDS registered=0
  while [ $((SECONDS - began)) -lt "$TIMEOUT" ]; do
    kill -0 "$FLEET_PID" 2>/dev/null || die "the fleet stopped (see $dir/fleet.err)"
    registered="$(ecs describe-clusters --clusters default \
      --query 'clusters[0].registeredContainerInstancesCount' --output text)"
    [ "$registered" -ge "$AGENTS" ] && break
    sleep 2
  done
  [ "$registered" -ge "$AGENTS" ] || die "only $registered of $AGENTS machines registered in ${TIMEOUT}s"
  sleep 5
  local idle_rss; idle_rss="$(status_kb "$SERVER_PID" VmRSS)"
  log "run $run: $registered container instances registered after $((SECONDS - began - 5)) s; server RSS $((idle_rss / 1000)) MB with no tasks yet, $(ls "/proc/$SERVER_PID/fd" | wc -l) descriptors"

  # One boto3 client registers the definition, creates the services one after the
  # other (a few ms each) and polls DescribeServices every 0.5 s until every task is
  # RUNNING: the time is the server's, not an aws CLI's start-up.
  if [ "${FLEET_PERF:-0}" = 1 ]; then
    perf record -F 199 -g -p "$SERVER_PID" -o "$dir/perf-placing.data" >"$dir/perf.log" 2>&1 &
    PERF_PID=$!
  fi
  local placed
  placed="$(ENDPOINT="$endpoint" SERVICES="$SERVICES" PER_SERVICE="$PER_SERVICE" TASKS="$TASKS" \
    TIMEOUT="$TIMEOUT" python3 - <<'PY'
import os, sys, time
import boto3
ecs = boto3.client("ecs", endpoint_url=os.environ["ENDPOINT"])
services, per_service, tasks = (int(os.environ[k]) for k in ("SERVICES", "PER_SERVICE", "TASKS"))
ecs.register_task_definition(family="fleet", networkMode="bridge", containerDefinitions=[{
    "name": "app", "image": "berth/busybox:latest", "essential": True,
    "cpu": 128, "memory": 256, "command": ["sleep", "86400"]}])
names = [f"fleet{i}" for i in range(1, services + 1)]
start = time.monotonic()
for name in names:
    ecs.create_service(cluster="default", serviceName=name, taskDefinition="fleet",
                       desiredCount=per_service)
created = time.monotonic() - start
progress = []
while time.monotonic() - start < float(os.environ["TIMEOUT"]):
    answer = ecs.describe_services(cluster="default", services=names)
    running = sum(s["runningCount"] for s in answer["services"])
    now = time.monotonic() - start
    if not progress or progress[-1][1] != running:
        progress.append((now, running))
    if running >= tasks:
        print(f"{now:.1f} {created:.2f}")
        print("RUNNING over time (s: tasks): " + ", ".join(f"{t:.1f}: {n}" for t, n in progress), file=sys.stderr)
        sys.exit(0)
    time.sleep(0.5)
print(f"only {running} of {tasks} RUNNING", file=sys.stderr)
sys.exit(1)
PY
)" || die "the tasks did not all reach RUNNING (see $dir)"
  if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=""; fi
  local place created
  read -r place created <<<"$placed"
  local names=()
  for s in $(seq "$SERVICES"); do names+=("fleet$s"); done
  local running="$TASKS"
  local ramp_ticks; ramp_ticks=$(( $(cpu_ticks "$SERVER_PID") - start_ticks ))
  log "run $run: the fleet used $(awk -v t="$(cpu_ticks "$FLEET_PID")" -v hz="$ticks_per_second" 'BEGIN {printf "%.1f", t / hz}') s of CPU so far, the server $(awk -v t="$ramp_ticks" -v hz="$ticks_per_second" 'BEGIN {printf "%.1f", t / hz}') s"
  log "run $run: $TASKS tasks RUNNING ${place} s after the first CreateService (the $SERVICES calls took ${created} s)"

  sleep "$SETTLE"
  local before after samples=() elapsed0 elapsed1
  before="$(cpu_ticks "$SERVER_PID")"; elapsed0="$(date +%s.%N)"
  local fleet_before; fleet_before="$(cpu_ticks "$FLEET_PID")"
  for _ in $(seq $((STEADY / 5))); do
    sleep 5
    samples+=("$(status_kb "$SERVER_PID" VmRSS)")
  done
  after="$(cpu_ticks "$SERVER_PID")"; elapsed1="$(date +%s.%N)"
  local fleet_cores
  fleet_cores="$(awk -v t=$(( $(cpu_ticks "$FLEET_PID") - fleet_before )) -v hz="$ticks_per_second" -v a="$elapsed0" -v b="$elapsed1" \
    'BEGIN {printf "%.3f", t / hz / (b - a)}')"
  local hwm; hwm="$(status_kb "$SERVER_PID" VmHWM)"
  local cores
  cores="$(awk -v t=$((after - before)) -v hz="$ticks_per_second" -v a="$elapsed0" -v b="$elapsed1" \
    'BEGIN {printf "%.3f", t / hz / (b - a)}')"
  local rss_kb; rss_kb="$(median "${samples[@]}" | awk '{printf "%d", $1}')"

  # Still all there after the steady period: every task running, no machine ever lost.
  running="$(ecs describe-services --cluster default --services "${names[@]}" \
    --query 'sum(services[].runningCount)' --output text)"
  [ "$running" -ge "$TASKS" ] || die "after the steady period only $running tasks RUNNING"
  local lost; lost="$(grep -c 'missed its heartbeats' "$dir/server.log" || true)"
  local failures; failures="$(grep -c 'failed' "$dir/fleet.err" || true)"
  local connections; connections="$(ls "/proc/$SERVER_PID/fd" | wc -l)"
  local threads; threads="$(status_kb "$SERVER_PID" Threads)"
  # For a look afterwards (FLEET_KEEP=1): where the memory is.
  cat "/proc/$SERVER_PID/status" "/proc/$SERVER_PID/smaps_rollup" >"$dir/server-memory.txt" 2>/dev/null || true
  log "run $run: steady ${STEADY}s: $cores cores (the fleet: $fleet_cores), RSS median $((rss_kb / 1000)) MB (samples KB: ${samples[*]}), VmHWM $((hwm / 1000)) MB, $connections descriptors open, $threads threads, $failures failure lines in the fleet's log, $lost nodes marked disconnected"
  tail -1 "$dir/fleet.log" >&2
  stop_run
  awk -v p="$place" -v c="$cores" -v r="$rss_kb" -v h="$hwm" -v rt="$ramp_ticks" -v hz="$ticks_per_second" \
    -v f="$failures" -v fd="$connections" -v l="$lost" \
    'BEGIN {printf "%s %s %.1f %.1f %.1f %s %s %s\n", p, c, r / 1000, h / 1000, rt / hz, f, fd, l}'
}

results=()
for run in $(seq "$RUNS"); do
  results+=("$(one_run "$run")")
done

echo
echo "bench/fleet.sh: FLEET_AGENTS=$AGENTS FLEET_TASKS=$TASKS FLEET_SERVICES=$SERVICES FLEET_STEADY=$STEADY FLEET_SETTLE=$SETTLE FLEET_SPREAD=$SPREAD, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | place and run $TASKS tasks (s) | server CPU, steady (cores) | server RSS, steady median (MB) | server VmHWM (MB) | server CPU while placing (s) | fleet failure lines | server descriptors | nodes lost |"
echo "|---|---|---|---|---|---|---|---|---|"
col() { printf '%s\n' "${results[@]}" | awk -v n="$1" '{print $n}'; }
i=0
for line in "${results[@]}"; do
  i=$((i + 1))
  echo "| $i | $(echo "$line" | awk '{print $1 " | " $2 " | " $3 " | " $4 " | " $5 " | " $6 " | " $7 " | " $8}') |"
done
# shellcheck disable=SC2046 # one value a word
echo "| **median** | **$(median $(col 1))** | **$(median $(col 2))** | **$(median $(col 3))** | **$(median $(col 4))** | $(median $(col 5)) | | | |"
