#!/usr/bin/env bash
# Sets berth up on this machine (Debian/Ubuntu with Docker) and runs the seed example:
# cluster our-project with services member (3 tasks) and board, each task nginx ->
# web on localhost:8080 -> db, behind one load balancer: http://127.0.0.1:8000/ (member)
# and http://127.0.0.1:8001/ (board); member calls board by name (service discovery).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
docker info >/dev/null 2>&1 || { echo "Docker is not reachable: start it (sudo systemctl start docker) or set DOCKER_HOST" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || { echo "Rust's cargo is not on PATH: install Rust (https://rustup.rs or apt-get install cargo) and run this again" >&2; exit 1; }

# busybox-static and nginx-light: the example images are built from them (no registry
# needed); awscli: the real ECS client, which the test suite drives (the README's
# second command).
missing=()
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/bin/aws ] || missing+=(awscli)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi

say "building berth"
cargo build --release --locked -p berth
BERTH=target/release/berth

say "building the example images"
examples/images/build.sh

DATA="${BERTH_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/berth}"
LOG="$DATA/berth-dev.log"
# The data dir and the log are the user's alone (berth writes no secret to a log, but
# task warnings and errors land there).
(umask 077 && mkdir -p "$DATA" && touch "$LOG") && chmod 600 "$LOG"
if ! $BERTH ps --data-dir "$DATA" >/dev/null 2>&1; then
  say "starting berth dev (log: $LOG)"
  nohup $BERTH dev --data-dir "$DATA" >>"$LOG" 2>&1 &
  for _ in $(seq 1 100); do $BERTH ps --data-dir "$DATA" >/dev/null 2>&1 && break; sleep 0.2; done
  $BERTH ps --data-dir "$DATA" >/dev/null || { tail -20 "$LOG"; exit 1; }
fi

say "applying examples/our-project.yaml"
$BERTH apply --data-dir "$DATA" -f examples/our-project.yaml
$BERTH scale --data-dir "$DATA" -c our-project member 3
$BERTH scale --data-dir "$DATA" -c our-project board 1

say "the cluster"
$BERTH ps --data-dir "$DATA" -c our-project

say "one address: the load balancer our-project (member on :8000, board on :8001)"
for _ in $(seq 1 150); do
  busybox wget -q -O /dev/null http://127.0.0.1:8000/ 2>/dev/null \
    && busybox wget -q -O /dev/null http://127.0.0.1:8001/ 2>/dev/null && break
  sleep 0.4
done
get() {
  printf '$ curl %s\n' "$1"
  busybox wget -q -O - "$1" || echo "(no answer)"
}
for _ in 1 2 3 4; do get http://127.0.0.1:8000/; done   # round robin over member's tasks
get http://127.0.0.1:8001/

say "service discovery: member calls board by its name (http://board:80/)"
get http://127.0.0.1:8000/cgi-bin/board
echo
echo "The load balancer through the aws CLI: aws elbv2 describe-target-health ... (see the README's tour)"
echo
echo "berth dev keeps running in the background (pid $(cat "$DATA/berth-dev.pid" 2>/dev/null || echo '?'), log $LOG)."
echo "Credentials for the aws CLI: $DATA/connection.json (the berth CLI reads it itself)."
echo "berth is $PWD/$BERTH; to type just 'berth': export PATH=\"$PWD/target/release:\$PATH\""
echo "Stop it with: $PWD/$BERTH dev --stop --data-dir $DATA"
echo "  (its tasks keep running, the load balancer's listeners stop; the next start adopts the tasks)"
