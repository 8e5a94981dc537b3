#!/usr/bin/env python3
"""berth vs Docker swarm mode: the measurements behind bench/run.sh.

Driven by bench/run.sh, which starts `berth dev`, initialises swarm mode if needed and
cleans everything up. This file only measures and writes JSON (`measure`), and turns
that JSON into BENCHMARKS.md (`report`).

Clocks: time.perf_counter() in this one process. The Docker engine is watched through
its HTTP API on the unix socket (what `docker ps` / `docker kill` send, without the
~50 ms of starting the docker CLI per call); berth's ECS API through boto3.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

T = time.perf_counter


def log(*args):
    print("[measure %s]" % time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- docker
class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Docker:
    """A tiny Engine API client; one connection per thread."""

    def __init__(self):
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if not host.startswith("unix://"):
            raise SystemExit("measure.py needs a unix-socket DOCKER_HOST, got %s" % host)
        self.path = host[len("unix://"):]
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = UnixHTTPConnection(self.path)
            self.local.conn = c
        return c

    def call(self, method, url, body=None, ok=(200, 201, 204, 304)):
        for attempt in range(2):
            c = self._conn()
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                c.request(method, url, body=json.dumps(body) if body is not None else None, headers=headers)
                r = c.getresponse()
                data = r.read()
                if r.status not in ok:
                    raise RuntimeError("docker %s %s: %s %s" % (method, url, r.status, data[:300]))
                return json.loads(data) if data else None
            except (http.client.HTTPException, ConnectionError, socket.timeout, BrokenPipeError):
                self.local.conn = None
                if attempt:
                    raise

    def containers(self, labels, running_only=True):
        f = {"label": labels}
        if running_only:
            f["status"] = ["running"]
        q = urllib.parse.urlencode({"all": "1", "filters": json.dumps(f)})
        return self.call("GET", "/containers/json?" + q)

    def inspect(self, cid):
        return self.call("GET", "/containers/%s/json" % cid)

    def kill(self, cid):
        return self.call("POST", "/containers/%s/kill" % cid)

    def service_running_tasks(self, name):
        q = urllib.parse.urlencode({"status": "true", "filters": json.dumps({"name": [name]})})
        for s in self.call("GET", "/services?" + q):
            if s["Spec"]["Name"] == name:
                return (s.get("ServiceStatus") or {}).get("RunningTasks", 0)
        return 0

    def ip_of(self, cid):
        """The IP of a container, or of the container whose network namespace it joined."""
        info = self.inspect(cid)
        mode = info["HostConfig"].get("NetworkMode", "")
        if mode.startswith("container:"):
            info = self.inspect(mode[len("container:"):])
        for net in (info.get("NetworkSettings", {}).get("Networks") or {}).values():
            if net.get("IPAddress"):
                return net["IPAddress"]
        return info.get("NetworkSettings", {}).get("IPAddress") or None


def tcp_open(ip, port, timeout=0.2):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, interval, what):
    deadline = T() + timeout
    while True:
        v = pred()
        if v:
            return v
        if T() > deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


# --------------------------------------------------------------------------- pollers
class Poller(threading.Thread):
    """Calls fn() every `interval` s until it returns a truthy value; records when."""

    def __init__(self, fn, interval, timeout, name):
        super().__init__(daemon=True, name=name)
        self.fn, self.interval, self.timeout = fn, interval, timeout
        self.t0 = None
        self.at = None
        self.value = None
        self.error = None
        self.polls = 0
        self.go = threading.Event()

    def run(self):
        self.go.wait()
        deadline = self.t0 + self.timeout
        try:
            while T() < deadline:
                self.polls += 1
                v = self.fn()
                if v:
                    self.at, self.value = T() - self.t0, v
                    return
                time.sleep(self.interval)
            self.error = "not seen within %d s" % self.timeout
        except Exception as e:  # noqa: BLE001 - recorded in the results
            self.error = "%s: %s" % (type(e).__name__, e)

    def start_at(self, t0):
        self.t0 = t0
        self.go.set()


def serving_after(docker, poller_value, port, timeout):
    """After a running container was seen: time until its task accepts TCP on `port`."""
    cid = poller_value
    deadline = T() + timeout
    ip = None
    while T() < deadline:
        if ip is None:
            try:
                ip = docker.ip_of(cid)
            except Exception:  # noqa: BLE001
                ip = None
        if ip and tcp_open(ip, port):
            return T()
        time.sleep(0.01)
    return None


# --------------------------------------------------------------------------- berth
class Berth:
    def __init__(self, a):
        import boto3
        from botocore.config import Config

        self.ecs = boto3.client(
            "ecs",
            endpoint_url=a.endpoint,
            region_name="us-east-1",
            aws_access_key_id=a.access_key_id,
            aws_secret_access_key=a.secret_access_key,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )
        self.cluster = a.cluster
        self.local = threading.local()
        self.args = a

    def client(self):
        # boto3 clients are thread-safe, but give each poller its own connection pool.
        c = getattr(self.local, "ecs", None)
        if c is None:
            import boto3
            from botocore.config import Config

            a = self.args
            c = boto3.client(
                "ecs",
                endpoint_url=a.endpoint,
                region_name="us-east-1",
                aws_access_key_id=a.access_key_id,
                aws_secret_access_key=a.secret_access_key,
                config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
            )
            self.local.ecs = c
        return c

    def running_tasks(self, service):
        c = self.client()
        arns = c.list_tasks(cluster=self.cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
        if not arns:
            return []
        tasks = c.describe_tasks(cluster=self.cluster, tasks=arns)["tasks"]
        return [t for t in tasks if t.get("lastStatus") == "RUNNING"]

    def running_count(self, service):
        s = self.client().describe_services(cluster=self.cluster, services=[service])["services"]
        return s[0]["runningCount"] if s else 0

    def service_state(self, service):
        s = self.client().describe_services(cluster=self.cluster, services=[service])["services"]
        return s[0] if s else None

    def delete(self, service):
        try:
            self.ecs.delete_service(cluster=self.cluster, service=service, force=True)
        except Exception as e:  # noqa: BLE001
            log("delete_service %s: %s" % (service, e))


def task_id(arn):
    return arn.rsplit("/", 1)[-1]


def wait_gone(docker, labels, timeout, what):
    """Wait until no container with `labels` runs, then (bounded) until none exists."""
    t = T()
    try:
        wait_until(lambda: not docker.containers(labels), timeout, 0.2, "%s: containers stopped" % what)
    except TimeoutError as e:
        log(str(e))
        return "still running after %d s" % timeout
    try:
        wait_until(lambda: not docker.containers(labels, running_only=False), 20, 0.2, "%s: removed" % what)
    except TimeoutError:
        left = docker.containers(labels, running_only=False)
        log("%s: %d stopped containers left after %.0f s (removing them)" % (what, len(left), T() - t))
        for c in left:
            try:
                docker.call("DELETE", "/containers/%s?force=1" % c["Id"], ok=(204, 404, 409))
            except Exception as e:  # noqa: BLE001
                log("rm %s: %s" % (c["Id"][:12], e))
        return "berth left %d stopped containers (removed by the benchmark)" % len(left)
    return None


def swarm_create(name, replicas, cmd, image):
    t = T()
    subprocess.run(
        ["docker", "service", "create", "--detach", "--quiet", "--no-resolve-image", "--stop-grace-period", "2s",
         "--name", name,
         "--replicas", str(replicas), image] + cmd,
        check=True, stdout=subprocess.DEVNULL,
    )
    return T() - t


def swarm_rm(name):
    subprocess.run(["docker", "service", "rm", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


# --------------------------------------------------------------------------- benchmarks
def bench_replacement(a, docker, berth, results):
    reps = a.reps
    out = results.setdefault("replacement", {"berth": [], "swarm": [], "notes": []})
    for i in range(reps):
        for side in (("berth", "swarm") if i % 2 == 0 else ("swarm", "berth")):
            try:
                if side == "berth":
                    s = replacement_berth(a, docker, berth, i)
                else:
                    s = replacement_swarm(a, docker, i)
            except Exception as e:  # noqa: BLE001
                log("replacement %s #%d failed: %s" % (side, i + 1, e))
                s = {"error": "%s: %s" % (type(e).__name__, e)}
            log("replacement %s #%d: %s" % (side, i + 1, s))
            out[side].append(s)
            save(a, results)


def replacement_berth(a, docker, berth, i):
    name = "%s-repl-%d" % (a.prefix, i + 1)
    berth.ecs.create_service(cluster=berth.cluster, serviceName=name, taskDefinition="bench-httpd", desiredCount=1)
    try:
        tasks = wait_until(lambda: berth.running_tasks(name), 60, 0.1, "berth service %s running" % name)
        old_task = task_id(tasks[0]["taskArn"])
        app = wait_until(
            lambda: docker.containers(["berth.task=%s" % old_task, "berth.container=app"]),
            30, 0.05, "app container of task %s" % old_task,
        )[0]
        old_cid = app["Id"]
        svc_label = app["Labels"].get("berth.service", name)
        labels = ["berth.service=%s" % svc_label, "berth.container=app", "berth.cluster=%s" % app["Labels"]["berth.cluster"]]
        # Steady: the task is up and serving before we kill it.
        ip = docker.ip_of(old_cid)
        wait_until(lambda: tcp_open(ip, 8080), 10, 0.05, "old task serving")
        time.sleep(a.settle)

        def new_container():
            ids = [c["Id"] for c in docker.containers(labels) if c["Id"] != old_cid]
            return ids[0] if ids else None

        def new_task_running():
            return [t for t in berth.running_tasks(name) if task_id(t["taskArn"]) != old_task]

        dp = Poller(new_container, 0.02, 60, "docker")
        ep = Poller(new_task_running, 0.05, 60, "ecs")
        dp.start(); ep.start()
        t0 = T()
        dp.start_at(t0); ep.start_at(t0)
        docker.kill(old_cid)
        dp.join(); ep.join()
        s = {"running": dp.at, "describe_tasks_running": ep.at}
        if dp.error:
            s["error"] = "new container: " + dp.error
        if ep.error:
            s["describe_error"] = ep.error
        if dp.value:
            ts = serving_after(docker, dp.value, 8080, 10)
            s["serving"] = (ts - t0) if ts else None
        return s
    finally:
        berth.delete(name)
        note = wait_gone(docker, ["berth.service=%s" % name], 60, name)
        if note:
            results_note(a, "replacement", "berth %s: %s" % (name, note))


def replacement_swarm(a, docker, i):
    name = "%s-repl-%d" % (a.prefix, i + 1)
    labels = ["com.docker.swarm.service.name=%s" % name]
    swarm_create(name, 1, ["httpd", "-f", "-p", "8080"], a.image)
    try:
        c = wait_until(lambda: docker.containers(labels), 60, 0.1, "swarm service %s running" % name)[0]
        old_cid = c["Id"]
        ip = docker.ip_of(old_cid)
        if ip:
            wait_until(lambda: tcp_open(ip, 8080), 10, 0.05, "old swarm task serving")
        time.sleep(a.settle)

        def new_container():
            ids = [c["Id"] for c in docker.containers(labels) if c["Id"] != old_cid]
            return ids[0] if ids else None

        # Swarm's API view, the analogue of DescribeTasks: RunningTasks back at 1 after it dropped.
        dropped = {"v": False}

        def api_back():
            n = docker.service_running_tasks(name)
            if n < 1:
                dropped["v"] = True
            return dropped["v"] and n >= 1

        dp = Poller(new_container, 0.02, 60, "docker")
        ap = Poller(api_back, 0.05, 60, "swarm-api")
        dp.start(); ap.start()
        t0 = T()
        dp.start_at(t0); ap.start_at(t0)
        docker.kill(old_cid)
        dp.join(); ap.join()
        s = {"running": dp.at, "service_ls_running": ap.at}
        if dp.error:
            s["error"] = "new container: " + dp.error
        if dp.value:
            ts = serving_after(docker, dp.value, 8080, 10)
            s["serving"] = (ts - t0) if ts else None
        return s
    finally:
        swarm_rm(name)
        wait_gone(docker, labels, 60, name)


def bench_convergence(a, docker, berth, results):
    out = results.setdefault("convergence", {"berth": [], "swarm": [], "notes": [], "count": a.conv_count})
    for i in range(a.conv_reps):
        for side in (("berth", "swarm") if i % 2 == 0 else ("swarm", "berth")):
            try:
                s = convergence_berth(a, docker, berth, i) if side == "berth" else convergence_swarm(a, docker, i)
            except Exception as e:  # noqa: BLE001
                log("convergence %s #%d failed: %s" % (side, i + 1, e))
                s = {"error": "%s: %s" % (type(e).__name__, e)}
            log("convergence %s #%d: %s" % (side, i + 1, s))
            out[side].append(s)
            save(a, results)
            time.sleep(a.settle)


def counting(docker, labels, n, timeline, t0box):
    """A poll function: records (s, count) whenever the running count changes."""
    def fn():
        c = len(docker.containers(labels))
        if not timeline or timeline[-1][1] != c:
            timeline.append((round(T() - t0box[0], 3), c))
        return c >= n
    return fn


def convergence_berth(a, docker, berth, i):
    n = a.conv_count
    name = "%s-conv-%d" % (a.prefix, i + 1)
    labels = ["berth.service=%s" % name, "berth.container=app"]
    timeline, t0box = [], [0.0]
    events = Events("berth.service=%s" % name, "berth.container", "berth.task")
    dp = Poller(counting(docker, labels, n, timeline, t0box), 0.02, a.conv_timeout, "docker")
    ep = Poller(lambda: berth.running_count(name) >= n, 0.05, a.conv_timeout, "ecs")
    dp.start(); ep.start()
    try:
        wall0 = time.time()
        t0 = t0box[0] = T()
        dp.start_at(t0); ep.start_at(t0)
        berth.ecs.create_service(cluster=berth.cluster, serviceName=name, taskDefinition="bench-httpd", desiredCount=n)
        create = T() - t0
        dp.join(); ep.join()
        phases = events.phases(wall0, {"~sandbox": "sandbox"})
        s = {"api_running": ep.at, "containers_running": dp.at, "create_call": create,
             "first_running": first_at(timeline), "timeline": timeline, "phases": phases}
        if ep.error:
            s["error"] = "runningCount %d: %s" % (n, ep.error)
            st = berth.service_state(name)
            if st:
                s["state_at_timeout"] = {k: st.get(k) for k in ("runningCount", "pendingCount", "desiredCount")}
                s["events"] = [e.get("message") for e in (st.get("events") or [])[:5]]
        if dp.error:
            s["containers_error"] = dp.error
        return s
    finally:
        berth.delete(name)
        note = wait_gone(docker, ["berth.service=%s" % name], 90, name)
        if note:
            results_note(a, "convergence", "berth %s: %s" % (name, note))


class Events:
    """`docker events` for one service's containers: (wall time, action, container role, task)."""

    def __init__(self, label, role_label, task_label):
        fmt = '{{.TimeNano}} {{.Action}} {{index .Actor.Attributes "%s"}} {{index .Actor.Attributes "%s"}}' % (
            role_label, task_label)
        self.p = subprocess.Popen(
            ["docker", "events", "--filter", "type=container", "--filter", "label=" + label, "--format", fmt],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        time.sleep(0.3)  # let it subscribe before the clock starts

    def phases(self, wall0, roles):
        """Per phase (e.g. 'app start'): seconds after wall0, one per task, sorted."""
        time.sleep(0.3)
        self.p.terminate()
        out = self.p.communicate(timeout=10)[0]
        first = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[1] not in ("create", "start"):
                continue
            role = roles.get(parts[2], parts[2])
            task = parts[3] if len(parts) > 3 else parts[2]
            key = (role + " " + parts[1], task)
            first.setdefault(key, int(parts[0]) / 1e9 - wall0)
        phases = {}
        for (phase, _), t in first.items():
            phases.setdefault(phase, []).append(round(t, 3))
        return {k: sorted(v) for k, v in phases.items()}


def first_at(timeline):
    return next((t for t, c in timeline if c > 0), None)


def convergence_swarm(a, docker, i):
    n = a.conv_count
    name = "%s-conv-%d" % (a.prefix, i + 1)
    labels = ["com.docker.swarm.service.name=%s" % name]
    timeline, t0box = [], [0.0]
    events = Events(labels[0], "com.docker.swarm.service.name", "com.docker.swarm.task.id")
    dp = Poller(counting(docker, labels, n, timeline, t0box), 0.02, a.conv_timeout, "docker")
    ap = Poller(lambda: docker.service_running_tasks(name) >= n, 0.05, a.conv_timeout, "swarm-api")
    dp.start(); ap.start()
    try:
        wall0 = time.time()
        t0 = t0box[0] = T()
        dp.start_at(t0); ap.start_at(t0)
        create = swarm_create(name, n, ["httpd", "-f", "-p", "8080"], a.image)
        dp.join(); ap.join()
        phases = events.phases(wall0, {name: "app"})
        s = {"api_running": ap.at, "containers_running": dp.at, "create_call": create,
             "first_running": first_at(timeline), "timeline": timeline, "phases": phases}
        if dp.error or ap.error:
            s["error"] = "%s / %s" % (dp.error, ap.error)
        return s
    finally:
        swarm_rm(name)
        wait_gone(docker, labels, 90, name)


def bench_memory_idle(a, results):
    m = results.setdefault("memory", {})
    m["idle_start_kb"] = rss_kb(a.berth_pid)
    log("idle RSS at start: %s kB; waiting %d s idle" % (m["idle_start_kb"], a.idle_wait))
    time.sleep(a.idle_wait)
    m["idle_after_kb"] = rss_kb(a.berth_pid)
    m["idle_wait_s"] = a.idle_wait
    log("idle RSS after %d s: %s kB" % (a.idle_wait, m["idle_after_kb"]))
    save(a, results)


def bench_memory_tasks(a, docker, berth, results):
    m = results.setdefault("memory", {})
    n = a.mem_tasks
    name = "%s-mem" % a.prefix
    m["tasks"] = n
    m["before_kb"] = rss_kb(a.berth_pid)
    t0 = T()
    berth.ecs.create_service(cluster=berth.cluster, serviceName=name, taskDefinition="bench-sleep", desiredCount=n)
    last, progress = -1, []
    deadline = t0 + a.mem_timeout
    reached = None
    peak = 0
    while T() < deadline:
        try:
            c = berth.running_count(name)
        except Exception as e:  # noqa: BLE001
            log("describe_services: %s" % e)
            c = last
        rss = rss_kb(a.berth_pid)
        peak = max(peak, rss or 0)
        if c != last:
            progress.append((round(T() - t0, 1), c, rss))
            last = c
        if c >= n:
            reached = T() - t0
            break
        time.sleep(0.5)
    m["progress"] = progress
    m["converge_s"] = reached
    m["rss_at_converge_kb"] = rss_kb(a.berth_pid)
    if reached is None:
        st = berth.service_state(name) or {}
        m["error"] = "runningCount %s of %d after %d s" % (last, n, a.mem_timeout)
        m["state_at_timeout"] = {k: st.get(k) for k in ("runningCount", "pendingCount", "desiredCount")}
        m["events"] = [e.get("message") for e in (st.get("events") or [])[:5]]
        m["containers_running"] = len(docker.containers(["berth.service=%s" % name, "berth.container=app"]))
    log("100 tasks: %s" % {k: v for k, v in m.items() if k != "progress"})
    # Steady with N tasks: a few samples after things calm down.
    samples = []
    for _ in range(a.mem_samples):
        time.sleep(2)
        samples.append(rss_kb(a.berth_pid))
    m["steady_samples_kb"] = samples
    m["steady_kb"] = statistics.median(samples) if samples else None
    m["hwm_kb"] = rss_kb(a.berth_pid, "VmHWM")
    m["sampled_peak_kb"] = max([peak] + samples)
    save(a, results)


def results_note(a, bench, note):
    RESULTS.setdefault(bench, {}).setdefault("notes", []).append(note)


def save(a, results):
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, a.out)


RESULTS = {}


def cmd_measure(a):
    global RESULTS
    docker = Docker()
    berth = Berth(a)
    if os.path.exists(a.out):
        with open(a.out) as f:
            RESULTS = json.load(f)
    results = RESULTS
    which = a.only.split(",")
    if "idle" in which:
        bench_memory_idle(a, results)
    if "setup" in which:
        berth.ecs.create_cluster(clusterName=berth.cluster)
        for family, cmd, mem in (("bench-httpd", ["httpd", "-f", "-p", "8080"], 16), ("bench-sleep", ["sleep", "3600"], 8)):
            berth.ecs.register_task_definition(
                family=family, networkMode="bridge",
                # stopTimeout only shortens the clean-up between runs (httpd as PID 1
                # ignores SIGTERM); it is not on any measured path.
                containerDefinitions=[{"name": "app", "image": a.image, "memory": mem, "essential": True,
                                       "command": cmd, "stopTimeout": 2}],
            )
    if "replacement" in which:
        bench_replacement(a, docker, berth, results)
    if "convergence" in which:
        bench_convergence(a, docker, berth, results)
    if "tasks" in which:
        bench_memory_tasks(a, docker, berth, results)
    save(a, results)


# --------------------------------------------------------------------------- report
def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None


def fs(x, unit="s"):
    return "n/a" if x is None else ("%.3f %s" % (x, unit) if unit else "%.3f" % x)


def samples(xs):
    return ", ".join("%.3f" % x if isinstance(x, (int, float)) else "fail" for x in xs) or "none"


def ratio(b, s):
    return "n/a" if b is None or s in (None, 0) else "%.2f" % (b / s)


def ok(cond):
    return "n/a" if cond is None else ("**met**" if cond else "**NOT met**")


def mb(kb):
    return None if kb is None else kb * 1024 / 1e6


def cmd_report(a):
    with open(a.results) as f:
        r = json.load(f)
    env = r.get("env", {})
    L = []
    w = L.append
    w("<!-- generated by bench/run.sh from its own measurements: do not edit by hand; re-run it -->")
    w("## berth vs Docker swarm mode (bench/run.sh)")
    w("")
    w("Produced by `%s` on %s; raw samples in `bench/last-results.json`." % (
        env.get("command", "bench/run.sh"), env.get("date", "?")))
    w("")
    w("| machine | |")
    w("|---|---|")
    for k, label in (("nproc", "cores (nproc)"), ("mem", "memory"), ("docker", "Docker Engine"),
                     ("storage", "storage driver / cgroup"), ("kernel", "kernel"), ("berth", "berth (git)"), ("others", "engine at start"),
                     ("params", "parameters")):
        w("| %s | %s |" % (label, env.get(k, "?")))
    w("")
    w("The machine is shared and noisy: compare the ratios measured in this one run, not"
      " absolute figures across runs. berth and swarm runs alternate (berth first on odd,"
      " swarm first on even repetitions), with no other benchmark service left on the engine; other users' containers may be"
      " running (see \"engine at start\").")
    w("")

    # Replacement
    rep = r.get("replacement")
    if rep:
        b, s = rep.get("berth", []), rep.get("swarm", [])
        col = lambda xs, k: [x.get(k) for x in xs]  # noqa: E731
        b_run, s_run = med(col(b, "running")), med(col(s, "running"))
        w("### 1. Replacement after `docker kill`")
        w("")
        w("A service of 1 task (`httpd -f -p 8080` in `berth/busybox:latest`; berth: bridge mode,"
          " no ports). Each repetition creates a fresh service, waits until its task serves,"
          " waits %s s more, then SIGKILLs the app container (Engine API `POST /containers/ID/kill`,"
          " what `docker kill` sends) and measures from that request:" % env.get("settle", "?"))
        w("")
        w("- **new container running**: the engine lists a new running app container of the"
          " service (berth: label `berth.service`, `berth.container=app`; swarm: label"
          " `com.docker.swarm.service.name`), polled every 20 ms;")
        w("- **serving**: that container's task accepts TCP on :8080 (polled every 10 ms);")
        w("- **API shows it**: berth: `ListTasks`+`DescribeTasks` (boto3, every 50 ms) shows a"
          " new task RUNNING; swarm: `GET /services?status=true` RunningTasks back to 1"
          " (what `docker service ls` shows), every 50 ms.")
        w("")
        w("| median (s) | berth | swarm | berth/swarm |")
        w("|---|---|---|---|")
        for label, bk, sk in (("new container running", "running", "running"),
                              ("serving on :8080", "serving", "serving"),
                              ("API shows it RUNNING", "describe_tasks_running", "service_ls_running")):
            bm, sm = med(col(b, bk)), med(col(s, sk))
            w("| %s | %s | %s | %s |" % (label, fs(bm, ""), fs(sm, ""), ratio(bm, sm)))
        nb = len([x for x in col(b, "running") if x is not None])
        ns = len([x for x in col(s, "running") if x is not None])
        w("| samples (ok / run) | %d / %d | %d / %d | |" % (nb, len(b), ns, len(s)))
        w("")
        w("All samples (s), in order:")
        w("")
        w("- berth new container running: %s" % samples(col(b, "running")))
        w("- berth serving: %s" % samples(col(b, "serving")))
        w("- berth DescribeTasks RUNNING: %s" % samples(col(b, "describe_tasks_running")))
        w("- swarm new container running: %s" % samples(col(s, "running")))
        w("- swarm serving: %s" % samples(col(s, "serving")))
        w("- swarm service ls running: %s" % samples(col(s, "service_ls_running")))
        errs = ["berth #%d: %s" % (i + 1, x.get("error") or x.get("describe_error")) for i, x in enumerate(b)
                if x.get("error") or x.get("describe_error")]
        errs += ["swarm #%d: %s" % (i + 1, x["error"]) for i, x in enumerate(s) if x.get("error")]
        for e in errs + rep.get("notes", []):
            w("- problem: %s" % e)
        w("")
        target = None if b_run is None else b_run < 1.0
        w("Target (brief): a killed essential container replaced in well under a second"
          " (median < 1 s): %s (berth median %s to a new running container)." % (ok(target), fs(b_run)))
        w("")

    con = r.get("convergence")
    if con:
        n = con.get("count", 10)
        b, s = con.get("berth", []), con.get("swarm", [])
        col = lambda xs, k: [x.get(k) for x in xs]  # noqa: E731
        w("### 2. Convergence: desiredCount %d until all RUNNING" % n)
        w("")
        w("berth: `CreateService` desiredCount %d (boto3); swarm: `docker service create --detach"
          " --no-resolve-image --replicas %d` (the docker CLI, its start-up included). Timed from"
          " just before the create call until:" % (n, n))
        w("")
        w("- **API**: berth `DescribeServices` runningCount = %d; swarm `GET /services?status=true`"
          " RunningTasks = %d (`docker service ls`), both polled every 50 ms;" % (n, n))
        w("- **engine**: %d app containers of the service running (`docker ps` filter), polled"
          " every 20 ms. Services are removed between runs and their containers waited for." % n)
        w("")
        w("| median (s) | berth | swarm | berth/swarm |")
        w("|---|---|---|---|")
        bm_api, sm_api = med(col(b, "api_running")), med(col(s, "api_running"))
        bm_c, sm_c = med(col(b, "containers_running")), med(col(s, "containers_running"))
        w("| API: all %d RUNNING | %s | %s | %s |" % (n, fs(bm_api, ""), fs(sm_api, ""), ratio(bm_api, sm_api)))
        w("| engine: %d containers running | %s | %s | %s |" % (n, fs(bm_c, ""), fs(sm_c, ""), ratio(bm_c, sm_c)))
        bf, sf = med(col(b, "first_running")), med(col(s, "first_running"))
        w("| engine: first container running | %s | %s | %s |" % (fs(bf, ""), fs(sf, ""), ratio(bf, sf)))
        bc, sc = med(col(b, "create_call")), med(col(s, "create_call"))
        w("| the create call itself | %s | %s | |" % (fs(bc, ""), fs(sc, "")))
        w("| samples (ok / run) | %d / %d | %d / %d | |" % (
            len([x for x in col(b, "api_running") if x is not None]), len(b),
            len([x for x in col(s, "api_running") if x is not None]), len(s)))
        w("")
        w("All samples (s), in order:")
        w("")
        w("- berth API: %s" % samples(col(b, "api_running")))
        w("- berth engine: %s" % samples(col(b, "containers_running")))
        w("- swarm API: %s" % samples(col(s, "api_running")))
        w("- swarm engine: %s" % samples(col(s, "containers_running")))
        w("")
        w("Where the time goes, from `docker events` (seconds after the create call; first /"
          " median / last task of a run, medians over the runs). The benchmark task has one"
          " container, which holds its task's network namespace itself (berth adds a sandbox"
          " container only to tasks of several containers, which share one namespace); swarm"
          " also creates the app container only.")
        w("")
        w("| event | berth first | berth median | berth last | swarm first | swarm median | swarm last |")
        w("|---|---|---|---|---|---|---|")
        order = ["sandbox create", "sandbox start", "app create", "app start"]
        for phase in order:
            cells = []
            for xs in (b, s):
                per = [x.get("phases", {}).get(phase) for x in xs]
                per = [p for p in per if p]
                if not per:
                    cells += ["", "", ""]
                    continue
                cells += [fs(med([p[0] for p in per]), ""), fs(med([statistics.median(p) for p in per]), ""),
                          fs(med([p[-1] for p in per]), "")]
            w("| %s | %s |" % (phase, " | ".join(cells)))
        w("")
        for side, xs in (("berth", b), ("swarm", s)):
            for i, x in enumerate(xs):
                if x.get("timeline"):
                    w("- %s #%d, running app containers over time (s: count): %s" % (
                        side, i + 1, ", ".join("%.2f: %d" % (t, c) for t, c in x["timeline"])))
        for i, x in enumerate(b):
            if x.get("error"):
                w("- problem: berth #%d: %s %s %s" % (i + 1, x["error"], x.get("state_at_timeout", ""), x.get("events", "")))
        for i, x in enumerate(s):
            if x.get("error"):
                w("- problem: swarm #%d: %s" % (i + 1, x["error"]))
        for e in con.get("notes", []):
            w("- problem: %s" % e)
        w("")
        t_api = None if bm_api is None or sm_api is None else bm_api <= sm_api
        t_c = None if bm_c is None or sm_c is None else bm_c <= sm_c
        w("Target (brief): no slower than swarm (ratio <= 1.00): API %s (%s), engine %s (%s)." % (
            ok(t_api), ratio(bm_api, sm_api), ok(t_c), ratio(bm_c, sm_c)))
        w("")

    m = r.get("memory")
    if m:
        w("### 3. Memory of the `berth dev` process (VmRSS from /proc/PID/status)")
        w("")
        w("MB = 10^6 bytes.")
        w("")
        w("| state | RSS | target | |")
        w("|---|---|---|---|")
        i0, i1 = mb(m.get("idle_start_kb")), mb(m.get("idle_after_kb"))
        w("| idle, just started (API answering, nothing running) | %s | < 30 MB | %s |" % (
            fs(i0, "MB"), ok(None if i0 is None else i0 < 30)))
        w("| idle, after %s s | %s | < 30 MB | %s |" % (m.get("idle_wait_s", "?"), fs(i1, "MB"),
                                                       ok(None if i1 is None else i1 < 30)))
        if "tasks" in m:
            st = mb(m.get("steady_kb"))
            conv = m.get("converge_s")
            w("| %d tasks running (median of %d samples, 2 s apart, once converged) | %s | < 60 MB | %s |" % (
                m["tasks"], len(m.get("steady_samples_kb") or []), fs(st, "MB"),
                ok(None if st is None or conv is None else st < 60)))
            w("| peak while starting them (VmHWM) | %s | | |" % fs(mb(m.get("hwm_kb")), "MB"))
            w("")
            if conv is not None:
                w("%d tasks (`sleep 3600`, memory 8 MiB, bridge) reached runningCount %d in %.1f s." % (
                    m["tasks"], m["tasks"], conv))
            else:
                w("**Problem**: %s; state %s; containers running %s; last events: %s" % (
                    m.get("error"), m.get("state_at_timeout"), m.get("containers_running"), m.get("events")))
            prog = m.get("progress") or []
            if prog:
                w("runningCount over time (s: count, RSS MB): " + ", ".join(
                    "%s: %s (%.1f)" % (t, c, mb(k) or 0) for t, c, k in prog[:: max(1, len(prog) // 20)]))
        w("")
    w("<!-- end of bench/run.sh output -->")
    text = "\n".join(L) + "\n"

    begin = "<!-- generated by bench/run.sh"
    end = "<!-- end of bench/run.sh output -->"
    target = a.markdown
    if os.path.exists(target):
        with open(target) as f:
            old = f.read()
        if begin in old and end in old:
            pre = old[: old.index(begin)]
            post = old[old.index(end) + len(end):].lstrip("\n")
            text = pre + text + ("\n" + post if post else "")
        else:
            text = old.rstrip("\n") + "\n\n" + text
    else:
        text = ("# berth benchmarks\n\nMeasured figures and the commands that produced them."
                " Every figure below is written by the script named above it; to update them,"
                " re-run it.\n\n" + text)
    with open(target, "w") as f:
        f.write(text)
    print(text)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--endpoint", required=True)
    m.add_argument("--access-key-id", required=True)
    m.add_argument("--secret-access-key", required=True)
    m.add_argument("--cluster", default="bench")
    m.add_argument("--prefix", default="bench")
    m.add_argument("--image", default="berth/busybox:latest")
    m.add_argument("--berth-pid", type=int, required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--only", default="idle,setup,replacement,convergence,tasks")
    m.add_argument("--reps", type=int, default=5)
    m.add_argument("--conv-reps", type=int, default=3)
    m.add_argument("--conv-count", type=int, default=10)
    m.add_argument("--conv-timeout", type=int, default=120)
    m.add_argument("--settle", type=float, default=1.0)
    m.add_argument("--idle-wait", type=int, default=30)
    m.add_argument("--mem-tasks", type=int, default=100)
    m.add_argument("--mem-timeout", type=int, default=300)
    m.add_argument("--mem-samples", type=int, default=5)
    r = sub.add_parser("report")
    r.add_argument("--results", required=True)
    r.add_argument("--markdown", required=True)
    a = p.parse_args()
    if a.cmd == "measure":
        cmd_measure(a)
    else:
        cmd_report(a)


if __name__ == "__main__":
    main()
