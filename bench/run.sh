#!/usr/bin/env bash
# berth vs Docker swarm mode on the same engine, side by side in one run:
#   1. replacement after `docker kill` of a service's only task   (N=BENCH_REPS, 5)
#   2. convergence: desiredCount 10 -> all RUNNING              (BENCH_CONV_REPS, 3)
#   3. memory (VmRSS) of `berth dev`: idle, after 30 s idle, with 100 running tasks
# and writes the figures to BENCHMARKS.md (its generated section), never by hand.
#
# Usage: bench/run.sh
# Needs: Docker (swarm mode is initialised for the run and left again if it was
# inactive), python3 with boto3, images from examples/images/build.sh (built if missing;
# nothing is ever pulled), cargo (builds target/release/berth unless BERTH_BIN is set).
#
# Knobs (environment): BENCH_REPS=5 BENCH_CONV_REPS=3 BENCH_CONV_COUNT=10
#   BENCH_IDLE_WAIT=30 BENCH_MEM_TASKS=100 BENCH_MEM_TIMEOUT=300 BENCH_SETTLE=1
#   BENCH_ONLY=idle,replacement,convergence,tasks  BENCH_TIMEOUT=1800 (whole run, s)
#   BERTH_BIN=path  BENCH_OUT=BENCHMARKS.md  BENCH_KEEP=1 (keep the temp dir)
#
# Cleans up on any exit: the berth process, every container and network of its node
# (labels berth.*), the swarm services it created, swarm mode if it initialised it, its temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

REPS="${BENCH_REPS:-5}"
CONV_REPS="${BENCH_CONV_REPS:-3}"
CONV_COUNT="${BENCH_CONV_COUNT:-10}"
IDLE_WAIT="${BENCH_IDLE_WAIT:-30}"
MEM_TASKS="${BENCH_MEM_TASKS:-100}"
MEM_TIMEOUT="${BENCH_MEM_TIMEOUT:-300}"
SETTLE="${BENCH_SETTLE:-1}"
ONLY="${BENCH_ONLY:-idle,replacement,convergence,tasks}"
TIMEOUT="${BENCH_TIMEOUT:-1800}"
OUT="${BENCH_OUT:-$ROOT/BENCHMARKS.md}"
IMAGE="berth/busybox:latest"
PREFIX="bench$$"   # names of services (berth and swarm) made by this run

log() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

WORK="$(mktemp -d /tmp/berth-bench.XXXXXX)"
BERTH_PID=""
SWARM_INITIALISED=0
WATCHDOG_PID=""
NODE_ID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  log "cleaning up (exit status $rc)"
  [ -n "$WATCHDOG_PID" ] && kill "$WATCHDOG_PID" 2>/dev/null
  # Measurement helper, if still running.
  [ -n "${MEASURE_PID:-}" ] && kill "$MEASURE_PID" 2>/dev/null
  if [ -n "$BERTH_PID" ] && kill -0 "$BERTH_PID" 2>/dev/null; then
    kill -TERM "$BERTH_PID"
    for _ in $(seq 50); do kill -0 "$BERTH_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$BERTH_PID" 2>/dev/null && kill -KILL "$BERTH_PID"
    wait "$BERTH_PID" 2>/dev/null
  fi
  # Every container of this run's berth node (app containers and sandboxes).
  [ -z "$NODE_ID" ] && [ -f "$WORK/data/node-id" ] && NODE_ID="$(cat "$WORK/data/node-id")"
  if [ -n "$NODE_ID" ]; then
    local ids
    ids="$(docker ps -aq --filter "label=berth.node=$NODE_ID")"
    if [ -n "$ids" ]; then
      log "removing $(echo "$ids" | wc -l) berth containers"
      echo "$ids" | xargs -r -n 50 docker rm -f >/dev/null 2>&1
    fi
    # And its cluster networks (discovery by name), once their containers are gone.
    docker network ls -q --filter "label=berth.node=$NODE_ID" | xargs -r docker network rm >/dev/null 2>&1
  fi
  # Swarm services of this run.
  local svcs
  svcs="$(docker service ls -q --filter "name=$PREFIX-" 2>/dev/null)"
  [ -n "$svcs" ] && echo "$svcs" | xargs -r docker service rm >/dev/null 2>&1
  if [ "$SWARM_INITIALISED" = 1 ]; then
    log "leaving swarm mode (this run initialised it)"
    docker swarm leave --force >/dev/null 2>&1
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Bound the whole run: the watchdog TERMs this script, whose trap cleans up.
(
  trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$TIMEOUT" & s=$!
  wait "$s"
  log "BENCH_TIMEOUT ($TIMEOUT s) reached: stopping"
  kill -TERM $$
) &
WATCHDOG_PID=$!

# --- prerequisites --------------------------------------------------------------------
command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "docker daemon not reachable"
python3 -c 'import boto3' 2>/dev/null || die "python3 with boto3 is needed"
"$ROOT/examples/images/build.sh" --check || "$ROOT/examples/images/build.sh" >&2
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "$IMAGE missing"

if [ -z "${BERTH_BIN:-}" ]; then
  log "cargo build --release -p berth"
  cargo build --release -p berth >&2 || die "berth does not build"
  BERTH_BIN="$ROOT/target/release/berth"
fi
[ -x "$BERTH_BIN" ] || die "no berth binary at $BERTH_BIN"

# --- swarm mode -----------------------------------------------------------------------
state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
if [ "$state" = inactive ]; then
  log "initialising swarm mode (left again at exit)"
  if ! docker swarm init >/dev/null 2>"$WORK/swarm-init.err"; then
    addr="$(hostname -I | awk '{print $1}')"
    docker swarm init --advertise-addr "$addr" >/dev/null \
      || die "docker swarm init failed: $(cat "$WORK/swarm-init.err")"
  fi
  SWARM_INITIALISED=1
elif [ "$state" != active ]; then
  die "swarm mode is '$state'; need inactive or active"
fi

# --- berth dev --------------------------------------------------------------------------
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
KEY_ID="BENCH$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F | cut -c1-15)"
SECRET="$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-40)"
mkdir -p "$WORK/data"
log "starting $BERTH_BIN dev on 127.0.0.1:$PORT (data $WORK/data)"
# --task-cleanup-wait 0: containers of stopped tasks are removed at once, so one
# benchmark's leftovers do not weigh on the next.
"$BERTH_BIN" dev --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" \
  --access-key-id "$KEY_ID" --secret-access-key "$SECRET" --task-cleanup-wait 0 \
  >"$WORK/berth.log" 2>&1 &
BERTH_PID=$!

export AWS_ACCESS_KEY_ID="$KEY_ID" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_DEFAULT_REGION=us-east-1
ready=0
for _ in $(seq 300); do
  kill -0 "$BERTH_PID" 2>/dev/null || { cat "$WORK/berth.log" >&2; die "berth dev exited"; }
  if python3 - "$PORT" <<'EOF' 2>/dev/null
import sys, boto3
c = boto3.client("ecs", endpoint_url="http://127.0.0.1:%s" % sys.argv[1], region_name="us-east-1")
c.list_clusters()
EOF
  then ready=1; break; fi
  sleep 0.1
done
[ "$ready" = 1 ] || { tail -20 "$WORK/berth.log" >&2; die "berth dev did not answer within 30 s"; }
NODE_ID="$(cat "$WORK/data/node-id" 2>/dev/null || true)"
log "berth dev is up (pid $BERTH_PID, node ${NODE_ID:-?})"
# The real aws CLI v2 against it, once, as a smoke check of the endpoint.
/usr/bin/aws --endpoint-url "http://127.0.0.1:$PORT" ecs list-clusters >/dev/null 2>&1 \
  || log "warning: aws ecs list-clusters failed against berth"

# --- environment for the report ---------------------------------------------------------
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || commit="$commit + uncommitted changes"
python3 - "$WORK/results.json" <<EOF
import json, sys
env = {
  "command": "bench/run.sh",
  "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
  "nproc": "$(nproc)",
  "mem": "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)",
  "docker": "$(docker version --format 'Engine {{.Server.Version}}, API {{.Server.APIVersion}}')",
  "storage": "$(docker info --format '{{.Driver}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}})')",
  "kernel": "$(uname -r)",
  "berth": "$commit, release build",
  "settle": "$SETTLE",
  "others": "$(docker ps -q | wc -l) containers running on the engine when measuring began (other users'), load average $(cut -d' ' -f1-3 /proc/loadavg)",
  "params": "BENCH_REPS=$REPS BENCH_CONV_REPS=$CONV_REPS BENCH_CONV_COUNT=$CONV_COUNT BENCH_IDLE_WAIT=$IDLE_WAIT BENCH_MEM_TASKS=$MEM_TASKS BENCH_MEM_TIMEOUT=$MEM_TIMEOUT BENCH_SETTLE=$SETTLE",
}
json.dump({"env": env}, open(sys.argv[1], "w"), indent=1)
EOF

# --- measure ----------------------------------------------------------------------------
# measure.py runs the parts in a fixed order: idle (before anything exists), setup
# (cluster, task definitions), replacement, convergence, tasks.
only="setup,$ONLY"
python3 "$ROOT/bench/measure.py" measure \
  --endpoint "http://127.0.0.1:$PORT" --access-key-id "$KEY_ID" --secret-access-key "$SECRET" \
  --cluster bench --prefix "$PREFIX" --image "$IMAGE" --berth-pid "$BERTH_PID" \
  --out "$WORK/results.json" --only "$only" \
  --reps "$REPS" --conv-reps "$CONV_REPS" --conv-count "$CONV_COUNT" \
  --idle-wait "$IDLE_WAIT" --mem-tasks "$MEM_TASKS" --mem-timeout "$MEM_TIMEOUT" --settle "$SETTLE" &
MEASURE_PID=$!
measure_rc=0
wait "$MEASURE_PID" || measure_rc=$?
MEASURE_PID=""
kill -0 "$BERTH_PID" 2>/dev/null || log "warning: berth dev is no longer running; see its log below"

python3 "$ROOT/bench/measure.py" report --results "$WORK/results.json" --markdown "$OUT" >/dev/null
log "wrote $OUT"
cp "$WORK/results.json" "$ROOT/bench/last-results.json"
grep -E ' (WARN|ERROR) ' "$WORK/berth.log" | head -n 20 >&2 || true
[ "$measure_rc" = 0 ] || die "measurement failed (status $measure_rc); partial figures written"
log "done"
