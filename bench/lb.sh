#!/usr/bin/env bash
# bench/lb.sh: berth's load balancer (crates/berth-lb) side by side with nginx and
# HAProxy, in one run, on the same three backends with the same round-robin setup.
#
# Builds the harness (`cargo build --release -p berth-lb --example lb_bench`), starts
# its three hyper backends in a process of their own, then berth-lb (the harness's
# `balancer` mode), nginx (2 workers, upstream keepalive 64) and HAProxy (nbthread 2,
# http-reuse always) over them, and measures with wrk:
#   (a) small responses over keep-alive connections,
#   (b) a new connection per request (`Connection: close`),
# REPS runs of each, the balancers' order rotating from run to run; medians reported.
#   (c) resident memory (VmRSS) of each balancer holding IDLE idle keep-alive client
#       connections (the harness's `idle-clients` mode: one request on each, then held).
# The figures go to BENCHMARKS.md between its own markers, never typed by hand.
#
# Needs: cargo, wrk, nginx (/usr/sbin/nginx), haproxy, python3; loopback only.
# Parameters (environment): LB_BENCH_DURATION=8 (s per wrk run)  LB_BENCH_CONNECTIONS=50
#   LB_BENCH_REPS=3  LB_BENCH_IDLE=10000  LB_BENCH_PORT=18000 (ports PORT..PORT+5 used)
#   BENCH_OUT=BENCHMARKS.md  LB_BENCH_KEEP=1 (keep the temp dir)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/BENCHMARKS.md}"
DURATION="${LB_BENCH_DURATION:-8}"
CONNECTIONS="${LB_BENCH_CONNECTIONS:-50}"
REPS="${LB_BENCH_REPS:-3}"
IDLE="${LB_BENCH_IDLE:-10000}"
PORT="${LB_BENCH_PORT:-18000}"
BACKEND_PORT=$((PORT + 1)) # backends on PORT+1 .. PORT+3
BERTH_PORT=$((PORT + 4))
NGINX_PORT=$((PORT + 5))
HAPROXY_PORT=$PORT
COMMAND="bench/lb.sh (LB_BENCH_DURATION=$DURATION LB_BENCH_CONNECTIONS=$CONNECTIONS LB_BENCH_REPS=$REPS LB_BENCH_IDLE=$IDLE)"

die() { echo "bench/lb.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for tool in cargo wrk haproxy python3; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install -y wrk haproxy)"
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] || die "nginx is needed (apt-get install -y nginx-light)"

# Every client and balancer holds IDLE sockets at once.
WANT_FILES=$((IDLE * 2 + 4096))
HARD_FILES="$(ulimit -Hn)"
if [ "$HARD_FILES" != unlimited ] && [ "$HARD_FILES" -lt "$WANT_FILES" ]; then WANT_FILES=$HARD_FILES; fi
ulimit -n "$WANT_FILES"
FILES="$(ulimit -n)"
[ "$FILES" -ge $((IDLE + 2048)) ] || die "cannot raise the open-file limit to hold $IDLE connections (ulimit -n is $FILES)"

WORK="$(mktemp -d /tmp/berth-lb-bench.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # Bounded: a process that ignores SIGTERM for 5 s is killed.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ -n "${LB_BENCH_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in $PORT $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) $BERTH_PORT $NGINX_PORT; do
  if python3 -c "import socket,sys; s=socket.socket(); s.connect(('127.0.0.1',$port))" 2>/dev/null; then
    die "port $port is in use; set LB_BENCH_PORT"
  fi
done

log "building the harness (release)"
(cd "$ROOT" && cargo build --release -p berth-lb --example lb_bench) >&2
HARNESS="$ROOT/target/release/examples/lb_bench"

wait_http() { # url: wait up to 10 s for a 200
  for _ in $(seq 100); do
    if python3 - "$1" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
EOF
    sleep 0.1
  done
  die "nothing answers 200 on $1"
}

log "starting backends on $BACKEND_PORT..$((BACKEND_PORT + 2))"
"$HARNESS" backends "$BACKEND_PORT" >"$WORK/backends.log" 2>&1 &
PIDS+=($!)
for index in 0 1 2; do wait_http "http://127.0.0.1:$((BACKEND_PORT + index))/"; done

log "starting berth-lb on $BERTH_PORT"
"$HARNESS" balancer "127.0.0.1:$BERTH_PORT" "$BACKEND_PORT" >"$WORK/berth.log" 2>&1 &
BERTH_PID=$!
PIDS+=($BERTH_PID)

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile $FILES;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections $((IDLE + 4096)); }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  upstream backends {
    server 127.0.0.1:$BACKEND_PORT;
    server 127.0.0.1:$((BACKEND_PORT + 1));
    server 127.0.0.1:$((BACKEND_PORT + 2));
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
log "starting nginx on $NGINX_PORT"
"$NGINX" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=($NGINX_PID)

# HAProxy reserves two descriptors per connection slot (client and server side).
HAPROXY_MAXCONN=$(((FILES - 256) / 2))
[ "$HAPROXY_MAXCONN" -gt $((IDLE + 1024)) ] && HAPROXY_MAXCONN=$((IDLE + 1024))
cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 2
  ulimit-n $FILES
  maxconn $HAPROXY_MAXCONN
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive
  option forwardfor
frontend web
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend backends
backend backends
  balance roundrobin
  http-reuse always
  server b0 127.0.0.1:$BACKEND_PORT
  server b1 127.0.0.1:$((BACKEND_PORT + 1))
  server b2 127.0.0.1:$((BACKEND_PORT + 2))
EOF
log "starting HAProxy on $HAPROXY_PORT"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
PIDS+=($HAPROXY_PID)

declare -A URL=(
  [berth-lb]="http://127.0.0.1:$BERTH_PORT/"
  [nginx]="http://127.0.0.1:$NGINX_PORT/"
  [haproxy]="http://127.0.0.1:$HAPROXY_PORT/"
)
for name in berth-lb nginx haproxy; do wait_http "${URL[$name]}"; done

# Processes whose memory counts: berth-lb's one; nginx's workers; HAProxy's one.
nginx_workers() { pgrep -P "$NGINX_PID" | tr '\n' ' '; }
[ -n "$(nginx_workers)" ] || die "nginx has no workers"

rss_kib() { # pids... -> summed VmRSS in KiB
  local total=0 pid value
  for pid in "$@"; do
    value="$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")"
    total=$((total + value))
  done
  echo "$total"
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
BALANCERS=(berth-lb nginx haproxy)
log "warming up"
for name in "${BALANCERS[@]}"; do
  timeout 30 wrk -t1 -c"$CONNECTIONS" -d2s "${URL[$name]}" >/dev/null
done

for rep in $(seq "$REPS"); do
  for mode in keepalive close; do
    # Rotate the order: each balancer runs first, second and third in turn.
    for offset in 0 1 2; do
      name="${BALANCERS[$(((rep - 1 + offset) % 3))]}"
      extra=()
      [ "$mode" = close ] && extra=(-H 'Connection: close')
      log "run $rep/$REPS $mode $name"
      timeout $((DURATION + 30)) wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${extra[@]}" "${URL[$name]}" \
        >"$WORK/wrk-$rep-$mode-$name.txt"
      echo "$rep $mode $name $WORK/wrk-$rep-$mode-$name.txt" >>"$RESULTS"
      sleep 1
    done
  done
done

MEMORY="$WORK/memory.txt"
: >"$MEMORY"
for name in "${BALANCERS[@]}"; do
  if [ "$name" = haproxy ] && [ "$HAPROXY_MAXCONN" -lt "$IDLE" ]; then
    echo "$name - - - - - $HAPROXY_MAXCONN $FILES" >>"$MEMORY"
    continue
  fi
  case $name in
    berth-lb) pids=("$BERTH_PID") ;;
    nginx) read -r -a pids <<<"$(nginx_workers)" ;;
    haproxy) pids=("$HAPROXY_PID") ;;
  esac
  before="$(rss_kib "${pids[@]}")"
  log "memory: $IDLE idle keep-alive connections to $name"
  address="${URL[$name]#http://}"
  "$HARNESS" idle-clients "${address%/}" "$IDLE" >"$WORK/idle-$name.log" 2>&1 &
  client_pid=$!
  PIDS+=($client_pid)
  ready=""
  for _ in $(seq 1200); do # up to 120 s
    if grep -q '^ready' "$WORK/idle-$name.log"; then ready=1; break; fi
    kill -0 "$client_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$ready" ] || die "idle clients to $name did not get ready: $(tail -3 "$WORK/idle-$name.log")"
  sleep 2
  held="$(rss_kib "${pids[@]}")"
  sleep 1
  held_again="$(rss_kib "${pids[@]}")"
  # The connections must still be open when measured: the client process still runs.
  kill -0 "$client_pid" 2>/dev/null || die "idle clients to $name ended early"
  master=0
  [ "$name" = nginx ] && master="$(rss_kib "$NGINX_PID")"
  echo "$name $before $held $held_again $master ${#pids[@]}" >>"$MEMORY"
  kill "$client_pid"
  wait "$client_pid" 2>/dev/null || true
  sleep 2
done

log "writing $OUT"
python3 - "$RESULTS" "$MEMORY" "$OUT" "$COMMAND" "$ROOT" "$IDLE" "$DURATION" "$CONNECTIONS" "$REPS" \
  "$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')" "$(haproxy -v | head -1 | awk '{print $3}')" \
  "$(wrk -v 2>&1 | head -1 | awk '{print $2}')" "$(cat /proc/loadavg | cut -d' ' -f1-3)" <<'EOF'
import datetime, os, re, statistics, subprocess, sys

(results_path, memory_path, out_path, command, root, idle, duration, connections, reps,
 nginx_version, haproxy_version, wrk_version, load_at_start) = sys.argv[1:14]
balancers = ["berth-lb", "nginx", "haproxy"]
modes = {"keepalive": "(a) keep-alive, small responses", "close": "(b) new connection per request (`Connection: close`)"}

def millis(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

def parse(path):
    text = open(path).read()
    found = {}
    found["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    for label, key in (("50%", "p50"), ("99%", "p99")):
        found[key] = millis(re.search(r"^\s+%s\s+(\S+)" % re.escape(label), text, re.M).group(1))
    found["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    # wrk counts the server's close after `Connection: close` as a read error: not a failure.
    found["connect_errors"] = int(errors.group(1)) if errors else 0
    found["timeouts"] = int(errors.group(4)) if errors else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    found["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    return found

runs = {}
for line in open(results_path):
    rep, mode, name, path = line.split()
    runs.setdefault((mode, name), []).append((int(rep), parse(path)))

def median(mode, name, key):
    return statistics.median(run[key] for _, run in runs[(mode, name)])

def git(*args):
    try:
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "?"

memory = {}
for line in open(memory_path):
    name, before, held, held_again, master, processes, *why = line.split()
    if before == "-":
        memory[name] = dict(skipped=why)
        continue
    memory[name] = dict(before=int(before), held=max(int(held), int(held_again)), master=int(master), processes=int(processes))

cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
mem_total = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "crates/berth-lb", "bench/lb.sh") else ""
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

out = []
w = out.append
w("<!-- bench/lb.sh begin -->")
w("<!-- generated by bench/lb.sh from its own measurements: do not edit by hand; re-run it -->")
w("## berth-lb vs nginx vs HAProxy (bench/lb.sh)")
w("")
w(f"Produced by `{command}` on {now}.")
w("")
w("| machine | |")
w("|---|---|")
w(f"| cores (nproc) | {os.cpu_count()} ({cpu}) |")
w(f"| memory | {mem_total / 1024 / 1024:.1f} GiB |")
w(f"| kernel | {os.uname().release} |")
w(f"| load average at start | {load_at_start} |")
w(f"| berth (git) | {git('rev-parse', '--short', 'HEAD')}{dirty}, harness `crates/berth-lb/examples/lb_bench.rs`, release build |")
w(f"| peers | nginx {nginx_version} (2 workers, upstream `keepalive 64`), HAProxy {haproxy_version} (`nbthread 2`, `balance roundrobin`, `http-reuse always`) |")
w(f"| load | wrk {wrk_version}: `wrk -t1 -c{connections} -d{duration}s --latency URL` (b: plus `-H 'Connection: close'`) |")
w("")
w("Setup, the same for all three: the harness's three hyper backends (`lb_bench backends`, a process of their own, "
  "answering `backend N` to every request), round robin over them, forwarding headers added "
  "(berth-lb: `X-Forwarded-For/-Proto/-Port/-Host`; nginx and HAProxy: `X-Forwarded-For`, and nginx `-Proto`). "
  "berth-lb runs as `lb_bench balancer` (the `LoadBalancer` of `crates/berth-lb` on a default tokio multi-thread runtime, "
  "one worker per core, `Limits::default()`). Everything shares the machine's cores with wrk and the backends, on loopback. "
  f"{reps} runs per balancer and case; the order of the balancers rotates from run to run. "
  "The machine is shared and noisy: compare within this run, not across runs.")
w("")
verdicts = []
for mode, title in modes.items():
    w(f"### {title}")
    w("")
    w("| median | berth-lb | nginx | HAProxy | berth-lb / nginx |")
    w("|---|---|---|---|---|")
    for key, label, fmt in (("rps", "requests/s", "{:,.0f}"), ("p50", "p50 latency (ms)", "{:.2f}"), ("p99", "p99 latency (ms)", "{:.2f}")):
        values = [median(mode, name, key) for name in balancers]
        w(f"| {label} | " + " | ".join(fmt.format(v) for v in values) + f" | {values[0] / values[1]:.2f} |")
    failures = {name: sum(run["non2xx"] + run["connect_errors"] + run["timeouts"] for _, run in runs[(mode, name)]) for name in balancers}
    w("| failed requests (non-2xx, connect errors, timeouts; all runs) | " + " | ".join(str(failures[n]) for n in balancers) + " | |")
    w("")
    w("All runs (run: requests/s, p50 ms, p99 ms):")
    w("")
    for name in balancers:
        samples = ", ".join(f"#{rep}: {run['rps']:,.0f} / {run['p50']:.2f} / {run['p99']:.2f}" for rep, run in sorted(runs[(mode, name)], key=lambda r: r[0]))
        w(f"- {name}: {samples}")
    w("")
    rps_met = median(mode, "berth-lb", "rps") >= median(mode, "nginx", "rps")
    p99_met = median(mode, "berth-lb", "p99") <= median(mode, "nginx", "p99")
    verdicts.append((title, rps_met, p99_met))
    word = lambda ok: "**met**" if ok else "**not met**"
    w(f"Target (issue 3): requests/s at least nginx's: {word(rps_met)} "
      f"({median(mode, 'berth-lb', 'rps'):,.0f} vs {median(mode, 'nginx', 'rps'):,.0f}); "
      f"p99 no worse than nginx's: {word(p99_met)} "
      f"({median(mode, 'berth-lb', 'p99'):.2f} ms vs {median(mode, 'nginx', 'p99'):.2f} ms).")
    w("")

w(f"### (c) Resident memory with {int(idle):,} idle keep-alive client connections")
w("")
w(f"`lb_bench idle-clients ADDR {idle}` opens {int(idle):,} connections, sends one keep-alive `GET /` on each, reads the "
  "response and holds them all; VmRSS from `/proc/PID/status`, measured 2 s and 3 s after the last connection was "
  "ready (the larger is shown), after the load runs above. MB = 10^6 bytes.")
w("")
w("| process(es) | before | holding the connections | per connection |")
w("|---|---|---|---|")
labels = {"berth-lb": "berth-lb (the balancer process)", "nginx": "nginx: sum of its {n} workers", "haproxy": "HAProxy (one process, 2 threads)"}
for name in balancers:
    m = memory[name]
    if "skipped" in m:
        maxconn, files = m["skipped"]
        w(f"| {labels[name].format(n='?')} | not measured: it reserves 2 descriptors per connection slot, so the hard open-file limit here ({files}) allows maxconn {maxconn} only | | |")
        continue
    per = (m["held"] - m["before"]) * 1024 / int(idle)
    w(f"| {labels[name].format(n=m['processes'])} | {m['before'] * 1024 / 1e6:.1f} MB | {m['held'] * 1024 / 1e6:.1f} MB | {per:,.0f} B |")
if memory["nginx"]["master"]:
    w(f"| (nginx master, not counted) | | {memory['nginx']['master'] * 1024 / 1e6:.1f} MB | |")
w("")
w("RSS counts shared library pages in every process that maps them, so nginx's workers' sum includes its shared text twice.")
w("")
w("What limits berth-lb here: hyper's HTTP/1 connection keeps an 8 KiB read buffer and an 8 KiB header write buffer for the life of each connection (`INIT_BUFFER_SIZE` in hyper's `proto/h1/io.rs`; 8 KiB is also the least `max_buf_size` accepts), so an idle keep-alive connection holds up to 16 KiB plus its task; nginx gives a keep-alive connection's buffers back while it is idle.")
w("")
met_all = all(r and p for _, r, p in verdicts)
w("Summary: " + "; ".join(f"{title.split(' ', 1)[0]} requests/s {'met' if r else 'not met'}, p99 {'met' if p else 'not met'}" for title, r, p in verdicts)
  + (" (all targets met)." if met_all else "."))
w("<!-- bench/lb.sh end -->")
section = "\n".join(out) + "\n"

text = open(out_path).read() if os.path.exists(out_path) else "# berth benchmarks\n"
begin, end = "<!-- bench/lb.sh begin -->", "<!-- bench/lb.sh end -->"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = head + section.rstrip("\n") + tail
else:
    text = text.rstrip("\n") + "\n\n" + section
open(out_path, "w").write(text)
print(section)
EOF
