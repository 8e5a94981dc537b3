#!/usr/bin/env bash
# Node loss, berth vs Docker swarm mode, side by side: three worker hosts run a service
# of six HTTP tasks (two per host) behind the load balancer; one host dies at once (its
# agent or engine and every process of its containers, SIGKILLed). Measured from the
# kill: detection (berth: the instance reads agentConnected false; swarm: the node reads
# Down), replaced (six tasks running again on the two hosts left; swarm: six tasks
# Starting or Running), healthy (berth: six healthy targets and the listener answers;
# swarm: six tasks Running, i.e. past their healthcheck, each answering on its port).
# Runs alternate berth, swarm, berth, ... so both see the same machine load; prints
# every run and the medians.
#
# Usage: bench/node_loss.sh [path/to/berth]   (default: target/release/berth)
# Knobs (environment): NODE_LOSS_RUNS=5  NODE_LOSS_ONLY=berth,swarm
#   NODE_LOSS_TIMEOUT=120 (s, per stage)  NODE_LOSS_KEEP=1 (keep the temp dir)
#   NODE_LOSS_SWARM_HEARTBEAT=1s (swarm's dispatcher heartbeat period; default: swarm's
#   own, 5 s; berth runs with its defaults, a heartbeat every 1 s and a 3 s timeout)
#   NODE_LOSS_SWARM_RESTART_DELAY=0s (the service's --restart-delay; default swarm's, 5 s)
#
# berth: one `berth server` and three `berth agent`s on this machine, each agent on its
# own loopback address (127.0.0.11-13, "hosts" h1-h3), on the shared Docker engine, its
# containers labelled berth.node=<node id>. Set up with the aws CLI v2; polled during the
# loss with curl --aws-sigv4 (the same signed ECS and ELB APIs), because one aws CLI
# call takes seconds on a loaded machine and would be the resolution of the figures.
#
# swarm: four extra dockerd engines (this machine's /usr/sbin/dockerd, each starting its
# own containerd), each in its own network namespace wired to a bridge in a namespace of
# this script, with its own data root (vfs), exec root, socket and cgroup parent: one
# manager and three workers. Nothing of it is in the host's network namespace, and the
# shared engine is never asked anything but `docker save` of the test image (it stays
# `Swarm: inactive`). This kernel has no IPVS, so swarm's routing mesh cannot balance;
# tasks publish their port in host mode and each is checked on its own node and port.
# The namespaces have no default route, so the engines' registry look-up for the image
# (there is no registry here; images are `docker load`ed) fails at once.
#
# Cleans up on any exit: every process it started, the berth containers/networks/volumes
# of its nodes (by label), the engines' namespaces, mounts, cgroups, shim sockets, and
# its temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BERTH="$(realpath "${1:-target/release/berth}")"
RUNS="${NODE_LOSS_RUNS:-5}"
ONLY="${NODE_LOSS_ONLY:-berth,swarm}"
STAGE_TIMEOUT="${NODE_LOSS_TIMEOUT:-120}"
IMAGE="berth/busybox:latest"
TAG="nl$$"   # names of this run's namespaces and cgroups
WORK="$(mktemp -d /tmp/berth-node-loss.XXXXXX)"
KEY="BERTHNODELOSS$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
SECRET="$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-40)"
# The task both sides run: it serves its host name, and /health.html for the checks.
SERVE='mkdir -p /www && hostname > /www/index.html && echo ok > /www/health.html && exec httpd -f -p 8080 -h /www'

log() { echo "[node_loss.sh $(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }

# --- cleanup ---------------------------------------------------------------------------
BERTH_PIDS=()      # server and agents of the current berth run
BERTH_AGENT_DIRS=()
SWARM_HOSTS=()     # m w1 w2 w3 once the current swarm run made their namespaces
SWARM_NET=0

berth_teardown() {
  local pid dir node
  for pid in "${BERTH_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${BERTH_PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done
  for dir in "${BERTH_AGENT_DIRS[@]}"; do
    [ -f "$dir/node-id" ] || continue
    node="$(cat "$dir/node-id")"
    docker ps -aq --filter "label=berth.node=$node" | xargs -r docker rm -f -v >/dev/null 2>&1 || true
    docker network ls -q --filter "label=berth.node=$node" | xargs -r docker network rm >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=berth.node=$node" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
  done
  BERTH_PIDS=() BERTH_AGENT_DIRS=()
}

# Every process of swarm host $1: those in its network namespace (dockerd, containerd,
# the shims) or its cgroup parent, and all their descendants (the containers' processes).
host_pids() {
  local seeds
  seeds="$( { ip netns pids "$TAG-$1" 2>/dev/null
              cat /sys/fs/cgroup/pids/"$TAG-$1"/*/cgroup.procs 2>/dev/null; } | tr '\n' ' ')"
  [ -n "${seeds// /}" ] || return 0
  ps -eo pid=,ppid= | awk -v seeds="$seeds" '
    BEGIN { n = split(seeds, s, " "); for (i = 1; i <= n; i++) keep[s[i]] = 1 }
    { parent[$1] = $2 }
    END {
      do { grew = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 } } while (grew)
      for (p in keep) if (p in parent) print p
    }'
}

# SIGKILL everything of host $1 at once, as a power loss: stopped first so nothing of it
# reacts to the others dying, then killed.
kill_swarm_host() {
  local pids
  for _ in 1 2 3; do
    pids="$(host_pids "$1" | tr '\n' ' ')"
    [ -n "${pids// /}" ] || return 0
    # shellcheck disable=SC2086 # a list of pids
    kill -STOP $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  done
}

swarm_teardown() {
  local h pid sock
  for h in "${SWARM_HOSTS[@]}"; do
    pid="$(cat "$WORK/swarm/$h/docker.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 100); do
    local alive=0
    for h in "${SWARM_HOSTS[@]}"; do [ -n "$(host_pids "$h")" ] && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for h in "${SWARM_HOSTS[@]}"; do
    kill_swarm_host "$h"
  done
  # Mounts the engines made (network namespace files, shm) live in the host's mount
  # namespace under their roots; deepest first.
  awk '{ print $2 }' /proc/mounts | grep "^$WORK/swarm/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  for h in "${SWARM_HOSTS[@]}"; do
    ip netns del "$TAG-$h" 2>/dev/null || true
    for ctl in /sys/fs/cgroup/*/"$TAG-$h"; do
      [ -d "$ctl" ] && find "$ctl" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  if [ "$SWARM_NET" = 1 ]; then ip netns del "$TAG-net" 2>/dev/null || true; fi
  # A killed engine's libnetwork leaves /run/docker/libnetwork/<id>.sock, and a killed
  # shim /run/containerd/s/<hash>: remove those that were not there before this run and
  # that nobody listens on.
  if [ -f "$WORK/sockets.before" ]; then
    for sock in /run/docker/libnetwork/*.sock /run/containerd/s/*; do
      [ -S "$sock" ] || continue
      grep -qxF "$sock" "$WORK/sockets.before" && continue
      ss -xl | grep -qF "$sock" || rm -f "$sock"
    done
  fi
  rm -rf "$WORK/swarm"
  SWARM_HOSTS=() SWARM_NET=0
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  berth_teardown
  swarm_teardown
  if [ "${NODE_LOSS_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls `$2...` (a command) until it succeeds or $1 s pass; prints the ms since $T0 at
# which it first succeeded.
T0=0
until_ms() {
  local timeout=$1; shift
  local deadline=$(($(now_ms) + timeout * 1000))
  until "$@"; do
    [ "$(now_ms)" -lt "$deadline" ] || { log "timed out after ${timeout}s: $*"; return 1; }
    sleep 0.05
  done
  echo $(($(now_ms) - T0))
}

# --- berth -------------------------------------------------------------------------------
API=0
aws_cli() {
  AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_DEFAULT_REGION=us-east-1 \
    AWS_PAGER="" AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    AWS_EC2_METADATA_DISABLED=true \
    /usr/bin/aws --endpoint-url "http://127.0.0.1:$API" --output text "$@"
}
# One signed ECS JSON call: ecs_call ACTION JSON.
ecs_call() {
  curl -sf -m 5 --aws-sigv4 "aws:amz:us-east-1:ecs" --user "$KEY:$SECRET" \
    -H "Content-Type: application/x-amz-json-1.1" \
    -H "X-Amz-Target: AmazonEC2ContainerServiceV20141113.$1" -d "$2" "http://127.0.0.1:$API/"
}

BERTH_DEAD_ARN="" BERTH_TG="" BERTH_LISTENER=0
berth_disconnected() {
  ecs_call DescribeContainerInstances "{\"containerInstances\":[\"$BERTH_DEAD_ARN\"]}" \
    | jq -e '.containerInstances[0].agentConnected == false' >/dev/null
}
# Six tasks listed, all RUNNING, none on the dead instance.
berth_replaced() {
  local arns
  arns="$(ecs_call ListTasks '{"serviceName":"web"}' | jq -c '.taskArns')" || return 1
  [ "$(jq length <<<"$arns")" = 6 ] || return 1
  ecs_call DescribeTasks "{\"tasks\":$arns}" | jq -e --arg dead "$BERTH_DEAD_ARN" \
    '[.tasks[] | select(.lastStatus == "RUNNING" and .containerInstanceArn != $dead)] | length == 6' >/dev/null
}
berth_spread_two_each() {
  local arns
  arns="$(ecs_call ListTasks '{"serviceName":"web"}' | jq -c '.taskArns')" || return 1
  [ "$(jq length <<<"$arns")" = 6 ] || return 1
  ecs_call DescribeTasks "{\"tasks\":$arns}" | jq -e \
    '[.tasks[] | select(.lastStatus == "RUNNING") | .containerInstanceArn] | length == 6 and (group_by(.) | map(length) == [2,2,2])' >/dev/null
}
# Six targets, all healthy, and a request through the listener answers.
berth_healthy() {
  local states
  states="$(curl -sf -m 5 --aws-sigv4 "aws:amz:us-east-1:elasticloadbalancing" --user "$KEY:$SECRET" \
    -H "Content-Type: application/x-www-form-urlencoded" \
    --data-urlencode "Action=DescribeTargetHealth" --data-urlencode "Version=2015-12-01" \
    --data-urlencode "TargetGroupArn=$BERTH_TG" "http://127.0.0.1:$API/" \
    | grep -o '<State>[a-z]*</State>')" || return 1
  [ "$(grep -c . <<<"$states")" = 6 ] && ! grep -qv '<State>healthy</State>' <<<"$states" \
    && curl -sf -m 2 -o /dev/null "http://127.0.0.1:$BERTH_LISTENER/"
}
berth_connected3() {
  [ "$(aws_cli ecs describe-container-instances --container-instances $(aws_cli ecs list-container-instances --query 'containerInstanceArns[]') \
      --query 'length(containerInstances[?agentConnected])' 2>/dev/null)" = 3 ]
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

berth_run() {
  local dir="$WORK/berth-$1" h address join server token lb
  mkdir -p "$dir"
  API="$(free_port)"
  BERTH_NO_COLOR=1 NO_COLOR=1 "$BERTH" server --listen "127.0.0.1:$API" --agent-listen "127.0.0.1:$((API + 1))" \
    --advertise 127.0.0.1 --data-dir "$dir/server" --access-key-id "$KEY" --secret-access-key "$SECRET" \
    --lb-address 127.0.0.1 >"$dir/server.log" 2>&1 &
  BERTH_PIDS+=("$!")
  disown   # killed on purpose; no job notice
  for _ in $(seq 300); do [ -f "$dir/server/join.json" ] && break; sleep 0.1; done
  join="$("$BERTH" server token --data-dir "$dir/server" | grep -o 'berth agent --server.*')" \
    || die "no join command from berth server (see $dir/server.log)"
  server="$(awk '{ for (i = 1; i < NF; i++) if ($i == "--server") print $(i + 1) }' <<<"$join")"
  token="$(awk '{ for (i = 1; i < NF; i++) if ($i == "--token") print $(i + 1) }' <<<"$join")"
  for h in 1 2 3; do
    address="127.0.0.1$h"
    NO_COLOR=1 "$BERTH" agent --server "$server" --token "$token" --address "$address" \
      --attribute "host=h$h" --data-dir "$dir/agent-h$h" >"$dir/agent-h$h.log" 2>&1 &
    disown
    BERTH_PIDS+=("$!") BERTH_AGENT_DIRS+=("$dir/agent-h$h")
  done
  local agent3_pid="${BERTH_PIDS[3]}"
  T0="$(now_ms)"
  until_ms 60 berth_connected3 >/dev/null || die "three berth agents did not connect"
  BERTH_DEAD_ARN="$(aws_cli ecs describe-container-instances \
    --container-instances $(aws_cli ecs list-container-instances --query 'containerInstanceArns[]') \
    --query 'containerInstances[?attributes[?name==`host` && value==`h3`]].containerInstanceArn')"

  BERTH_LISTENER="$(free_port)"
  lb="$(aws_cli elbv2 create-load-balancer --name web-lb --subnets subnet-berth --query 'LoadBalancers[0].LoadBalancerArn')"
  BERTH_TG="$(aws_cli elbv2 create-target-group --name web-tg --protocol HTTP --port 8080 \
    --target-type instance --vpc-id vpc-berth --health-check-path /health.html \
    --health-check-interval-seconds 5 --health-check-timeout-seconds 2 \
    --healthy-threshold-count 2 --unhealthy-threshold-count 2 --query 'TargetGroups[0].TargetGroupArn')"
  aws_cli elbv2 modify-target-group-attributes --target-group-arn "$BERTH_TG" \
    --attributes Key=deregistration_delay.timeout_seconds,Value=2 >/dev/null
  aws_cli elbv2 create-listener --load-balancer-arn "$lb" --protocol HTTP --port "$BERTH_LISTENER" \
    --default-actions "Type=forward,TargetGroupArn=$BERTH_TG" >/dev/null
  aws_cli ecs register-task-definition --family web --container-definitions "$(jq -cn --arg image "$IMAGE" --arg serve "$SERVE" \
    '[{name: "web", image: $image, memory: 16, stopTimeout: 2,
       portMappings: [{containerPort: 8080, hostPort: 0}], command: ["sh", "-c", $serve]}]')" >/dev/null
  aws_cli ecs create-service --service-name web --task-definition web --desired-count 6 \
    --placement-strategy type=spread,field=instanceId \
    --load-balancers "targetGroupArn=$BERTH_TG,containerName=web,containerPort=8080" >/dev/null
  T0="$(now_ms)"
  until_ms "$STAGE_TIMEOUT" berth_spread_two_each >/dev/null || die "berth: six tasks, two per instance, did not start"
  until_ms "$STAGE_TIMEOUT" berth_healthy >/dev/null || die "berth: six healthy targets did not come"
  sleep 2

  # Host h3 dies: its agent and its containers, at once.
  local node3
  node3="$(cat "$dir/agent-h3/node-id")"
  T0="$(now_ms)"
  kill -9 "$agent3_pid"
  docker ps -q --filter "label=berth.node=$node3" | xargs -r docker kill >/dev/null 2>&1 || true
  local detected replaced healthy
  detected="$(until_ms "$STAGE_TIMEOUT" berth_disconnected)" || die "berth: h3 never read disconnected"
  replaced="$(until_ms "$STAGE_TIMEOUT" berth_replaced)" || die "berth: six tasks never ran again"
  healthy="$(until_ms "$STAGE_TIMEOUT" berth_healthy)" || die "berth: six healthy targets never came back"
  echo "berth $detected $replaced $healthy" >>"$WORK/results"
  log "berth run $1: detected $(seconds "$detected") s, replaced $(seconds "$replaced") s, healthy $(seconds "$healthy") s"
  berth_teardown
}

# --- swarm -----------------------------------------------------------------------------
D() { local h=$1; shift; docker -H "unix://$WORK/swarm/$h/docker.sock" "$@"; }
SWARM_DEAD="" SWARM_ADDR=()   # the dead worker's node id; "node-id address" lines

swarm_node_down() { [ "$(D m node inspect "$SWARM_DEAD" --format '{{.Status.State}}' 2>/dev/null)" = down ]; }
# "node state port" of the tasks meant to run.
swarm_tasks() {
  local ids
  ids="$(D m service ps web --filter desired-state=running -q --no-trunc 2>/dev/null)" || return 1
  [ -n "$ids" ] || return 1
  # shellcheck disable=SC2086 # a list of ids
  D m inspect --format '{{.NodeID}} {{.Status.State}} {{with .Status.PortStatus.Ports}}{{(index . 0).PublishedPort}}{{end}}' $ids 2>/dev/null
}
swarm_replaced() {
  swarm_tasks | awk -v dead="$SWARM_DEAD" '$1 != dead && ($2 == "starting" || $2 == "running") { n++ } END { exit n != 6 }'
}
swarm_tasks_answer() {
  local tasks node state port address
  tasks="$(swarm_tasks)" || return 1
  [ "$(awk -v dead="$SWARM_DEAD" '$1 != dead && $2 == "running" && $3 != "" { n++ } END { print n + 0 }' <<<"$tasks")" = 6 ] || return 1
  while read -r node state port; do
    [ "$node" != "$SWARM_DEAD" ] && [ "$state" = running ] || continue
    address="$(awk -v n="$node" '$1 == n { print $2 }' < <(printf "%s\n" "${SWARM_ADDR[@]}"))"
    nsenter --net="/var/run/netns/$TAG-net" curl -sf -m 2 -o /dev/null "http://$address:$port/" || return 1
  done <<<"$tasks"
}
swarm_spread_two_each() {
  swarm_tasks_answer && [ "$(swarm_tasks | awk '{ print $1 }' | sort | uniq -c | awk '{ print $1 }' | tr '\n' ' ')" = "2 2 2 " ]
}

swarm_run() {
  local h i=10 ns
  mkdir -p "$WORK/swarm"
  ls -d /run/docker/libnetwork/*.sock /run/containerd/s/* 2>/dev/null >"$WORK/sockets.before" || true
  ip netns add "$TAG-net"; SWARM_NET=1
  ip -n "$TAG-net" link set lo up
  ip -n "$TAG-net" link add br0 type bridge
  ip -n "$TAG-net" addr add 10.251.0.1/24 dev br0
  ip -n "$TAG-net" link set br0 up
  for h in m w1 w2 w3; do
    i=$((i + 1)) ns="$TAG-$h"
    ip netns add "$ns"; SWARM_HOSTS+=("$h")
    ip -n "$TAG-net" link add "v-$h" type veth peer name eth0 netns "$ns"
    ip -n "$TAG-net" link set "v-$h" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.251.0.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    mkdir -p "$WORK/swarm/$h"
    echo '{}' >"$WORK/swarm/$h/daemon.json"
    # Own host name (the node's name in swarm), own network namespace; the host's mount
    # namespace, so the cgroup hierarchy is there.
    unshare --uts sh -c "hostname $ns && exec nsenter --net=/var/run/netns/$ns /usr/sbin/dockerd \
      --config-file $WORK/swarm/$h/daemon.json --data-root $WORK/swarm/$h/data \
      --exec-root $WORK/swarm/$h/exec --pidfile $WORK/swarm/$h/docker.pid \
      -H unix://$WORK/swarm/$h/docker.sock --storage-driver vfs --cgroup-parent /$ns \
      --log-level warn" >"$WORK/swarm/$h/dockerd.log" 2>&1 &
    disown   # killed on purpose later; no job notice
  done
  for h in m w1 w2 w3; do
    for _ in $(seq 300); do D "$h" info >/dev/null 2>&1 && break; sleep 0.1; done
    D "$h" info >/dev/null 2>&1 || die "engine $h did not start: $(tail -3 "$WORK/swarm/$h/dockerd.log")"
  done
  D m swarm init --advertise-addr 10.251.0.11 >/dev/null
  if [ -n "${NODE_LOSS_SWARM_HEARTBEAT:-}" ]; then
    D m swarm update --dispatcher-heartbeat "$NODE_LOSS_SWARM_HEARTBEAT" >/dev/null
  fi
  local token
  token="$(D m swarm join-token -q worker)"
  for h in w1 w2 w3; do
    D "$h" swarm join --token "$token" 10.251.0.11:2377 >/dev/null
    docker save "$IMAGE" | D "$h" load >/dev/null
  done
  mapfile -t SWARM_ADDR < <(D m node inspect $(D m node ls -q) --format '{{.ID}} {{.Status.Addr}}')
  SWARM_DEAD=""   # no node is dead yet
  local w3
  w3="$(D m node inspect "$TAG-w3" --format '{{.ID}}')"
  # The same task, two per worker; its healthcheck every 5 s (berth's target group checks
  # every 5 s too). Swarm holds a task in Starting until its first check passes.
  D m service create --detach --name web --replicas 6 --constraint node.role==worker \
    --publish mode=host,target=8080 --stop-grace-period 2s \
    ${NODE_LOSS_SWARM_RESTART_DELAY:+--restart-delay "$NODE_LOSS_SWARM_RESTART_DELAY"} \
    --health-cmd 'wget -q -O /dev/null http://127.0.0.1:8080/health.html' \
    --health-interval 5s --health-timeout 2s --health-retries 2 \
    "$IMAGE" sh -c "$SERVE" >/dev/null 2>&1
  T0="$(now_ms)"
  until_ms "$STAGE_TIMEOUT" swarm_spread_two_each >/dev/null || die "swarm: six tasks, two per worker, did not start: $(swarm_tasks)"
  sleep 2

  SWARM_DEAD="$w3"
  T0="$(now_ms)"
  kill_swarm_host w3
  local detected replaced healthy
  detected="$(until_ms "$STAGE_TIMEOUT" swarm_node_down)" || die "swarm: w3 never read Down"
  replaced="$(until_ms "$STAGE_TIMEOUT" swarm_replaced)" || die "swarm: six tasks never ran again: $(swarm_tasks)"
  healthy="$(until_ms "$STAGE_TIMEOUT" swarm_tasks_answer)" || die "swarm: six tasks never answered again: $(swarm_tasks)"
  echo "swarm $detected $replaced $healthy" >>"$WORK/results"
  log "swarm run $1: detected $(seconds "$detected") s, replaced $(seconds "$replaced") s, healthy $(seconds "$healthy") s"
  swarm_teardown
}

# --- main --------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, extra engines)"
docker info >/dev/null 2>&1 || die "docker daemon not reachable"
"$ROOT/examples/images/build.sh" --check || "$ROOT/examples/images/build.sh" >&2
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "$IMAGE missing"
case ",$ONLY," in *,berth,*) [ -x "$BERTH" ] || die "no berth binary at $BERTH (cargo build --release -p berth)" ;; esac
for tool in jq curl /usr/bin/aws ip nsenter unshare /usr/sbin/dockerd; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
log "$RUNS runs of: $ONLY; swarm dispatcher heartbeat ${NODE_LOSS_SWARM_HEARTBEAT:-5s (default)}, restart delay ${NODE_LOSS_SWARM_RESTART_DELAY:-5s (default)}; machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
shared_swarm="$(docker info --format '{{.Swarm.LocalNodeState}}')"
: >"$WORK/results"
for run in $(seq "$RUNS"); do
  case ",$ONLY," in *,berth,*) berth_run "$run" ;; esac
  case ",$ONLY," in *,swarm,*) swarm_run "$run" ;; esac
done

# The swarm here is the script's own engines'; the shared engine's is left as it was.
[ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = "$shared_swarm" ] \
  || log "warning: the shared engine's swarm state changed during the run (was $shared_swarm)"

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "node loss, from the kill (s), $RUNS runs each; every run: detected / replaced / healthy"
for side in berth swarm; do
  grep -q "^$side " "$WORK/results" || continue
  runs="$(awk -v s="$side" '$1 == s { printf "%s%.1f/%.1f/%.1f", sep, $2 / 1000, $3 / 1000, $4 / 1000; sep = "  " }' "$WORK/results")"
  d="$(awk -v s="$side" '$1 == s { print $2 }' "$WORK/results" | median)"
  r="$(awk -v s="$side" '$1 == s { print $3 }' "$WORK/results" | median)"
  hl="$(awk -v s="$side" '$1 == s { print $4 }' "$WORK/results" | median)"
  echo "$side median: detected $(seconds "$d") s, replaced $(seconds "$r") s, healthy $(seconds "$hl") s   (runs: $runs)"
  eval "median_$side=\"$d $r $hl\""
done
if [ -n "${median_berth:-}" ] && [ -n "${median_swarm:-}" ]; then
  # shellcheck disable=SC2154 # set by the eval above
  awk -v b="$median_berth" -v s="$median_swarm" 'BEGIN {
    split(b, x, " "); split(s, y, " ")
    printf "berth/swarm: detected %.2f, replaced %.2f, healthy %.2f\n", x[1] / y[1], x[2] / y[2], x[3] / y[3] }'
fi
