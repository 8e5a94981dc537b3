//! A real `berth server` with real `berth agent`s on this machine's Docker engine, as
//! several machines would run them, each process with its own data dir and log. The
//! server speaks to the tests through the aws CLI; everything the agents made carries
//! their node ids and is removed on drop, also when the test fails (which first prints
//! the end of each process's log).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_auth::{sign_headers, Credentials};
use serde_json::Value;

use super::{aws_v2, free_port, http_get_at, poll_until, require_docker, require_images, tail};

pub const KEY: &str = "BERTHTESTKEY0000002";
pub const SECRET: &str = "berth-test-secret-server-agents-0123456";

pub fn berth() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .env("BERTH_LOG", "info,berth=debug,berth_server=debug")
        .env("NO_COLOR", "1")
        .env_remove("BERTH_ACCESS_KEY_ID")
        .env_remove("BERTH_SECRET_ACCESS_KEY")
        .env_remove("BERTH_JOIN_TOKEN")
        .env_remove("BERTH_SERVER")
        .stdin(Stdio::null());
    command
}

/// One berth process with its log file.
pub struct Process {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, log_dir: &Path, mut command: Command) -> Process {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = command
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Process {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its exit status once it exited, within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Some(status);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

pub struct Agent {
    pub data_dir: PathBuf,
    pub process: Process,
}

impl Agent {
    pub fn node_id(&self) -> Option<String> {
        std::fs::read_to_string(self.data_dir.join("node-id"))
            .ok()
            .map(|id| id.trim().to_string())
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub api_port: u16,
    pub agent_port: u16,
    pub server: Process,
    pub agents: Vec<Agent>,
}

impl Cluster {
    pub fn start() -> Cluster {
        require_docker();
        require_images();
        let dir = tempfile::tempdir().expect("temp dir");
        let (api_port, agent_port) = (free_port(), free_port());
        let server = Process::spawn(
            "server",
            dir.path(),
            server_command(dir.path(), api_port, agent_port),
        );
        let cluster = Cluster {
            dir,
            api_port,
            agent_port,
            server,
            agents: Vec::new(),
        };
        cluster.wait_server_up();
        cluster
    }

    fn wait_server_up(&self) {
        let (api_port, agent_port) = (self.api_port, self.agent_port);
        self.wait_for("berth server to answer", Duration::from_secs(30), || {
            let up = std::net::TcpStream::connect(("127.0.0.1", api_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", agent_port)).is_ok();
            (up && cluster_join_file(self).exists()).then_some(())
        });
    }

    /// A crash of the control plane's machine: kill -9 of `berth server`, which is
    /// then started again on the same data dir and ports (its log goes on in the same
    /// file). Returns once it accepts connections again.
    pub fn restart_server(&mut self) {
        self.kill_server();
        self.start_server_again();
    }

    /// kill -9 of `berth server`; [`Cluster::start_server_again`] brings it back.
    pub fn kill_server(&mut self) {
        self.server.kill();
    }

    /// Starts `berth server` again on the same data dir and ports; returns once it
    /// accepts connections.
    pub fn start_server_again(&mut self) {
        self.server = Process::spawn(
            "server",
            self.dir.path(),
            server_command(self.dir.path(), self.api_port, self.agent_port),
        );
        self.wait_server_up();
    }

    /// Starts one agent per (host, address): its own data dir `agent-HOST`, `--address
    /// ADDRESS` and the attribute `host=HOST`, and waits until every instance of the
    /// cluster reads connected.
    pub fn start_hosts(&mut self, hosts: &[(&str, &str)]) {
        self.start_hosts_serving(hosts, &[]);
    }

    /// As `start_hosts`; the agents of `balancer_hosts` also serve the load balancer's
    /// listeners (`--load-balancer`, at their address).
    pub fn start_hosts_serving(&mut self, hosts: &[(&str, &str)], balancer_hosts: &[&str]) {
        let (server, token) = self.join_command();
        for (host, address) in hosts {
            let host_attribute = format!("host={host}");
            let mut flags = vec![
                "--server",
                &server,
                "--token",
                &token,
                "--address",
                address,
                "--attribute",
                &host_attribute,
            ];
            if balancer_hosts.contains(host) {
                flags.push("--load-balancer");
            }
            self.spawn_agent(&format!("agent-{host}"), &flags);
        }
        self.wait_for(
            &format!("{} connected instances", hosts.len()),
            Duration::from_secs(60),
            || {
                let instances = self.instances();
                (instances.len() == hosts.len()
                    && instances.iter().all(|i| i["agentConnected"] == true))
                .then_some(())
            },
        );
    }

    pub fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    /// `berth server token` on the server's data dir.
    pub fn token_command(&self, extra: &[&str]) -> Output {
        berth()
            .args(["server", "token", "--data-dir"])
            .arg(self.server_dir())
            .args(extra)
            .output()
            .expect("run berth server token")
    }

    /// The printed join command's --server and --token.
    pub fn join_command(&self) -> (String, String) {
        let out = self.token_command(&[]);
        assert!(
            out.status.success(),
            "berth server token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with("berth agent "))
            .unwrap_or_else(|| panic!("no join command in {text}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |flag: &str| {
            let at = words.iter().position(|w| *w == flag).expect(flag);
            words[at + 1].to_string()
        };
        (after("--server"), after("--token"))
    }

    /// Starts `berth agent` on its own data dir `name` with these flags.
    pub fn spawn_agent(&mut self, name: &str, flags: &[&str]) -> usize {
        let data_dir = self.dir.path().join(name);
        let mut command = berth();
        command
            .arg("agent")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(flags);
        let process = Process::spawn(name, self.dir.path(), command);
        self.agents.push(Agent { data_dir, process });
        self.agents.len() - 1
    }

    /// Starts agent `index` again on its data dir with these flags.
    pub fn respawn_agent(&mut self, index: usize, flags: &[&str]) {
        let agent = &self.agents[index];
        let mut command = berth();
        command
            .arg("agent")
            .arg("--data-dir")
            .arg(&agent.data_dir)
            .args(flags);
        let name = agent.process.name.clone();
        self.agents[index].process = Process::spawn(&name, self.dir.path(), command);
    }

    pub fn aws(&self, args: &[&str]) -> Output {
        Command::new(aws_v2())
            .args([
                "--endpoint-url",
                &format!("http://127.0.0.1:{}", self.api_port),
            ])
            .args(["--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_PAGER", "")
            .env("AWS_CONFIG_FILE", "/nonexistent/berth-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/berth-test-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null())
            .output()
            .expect("run the aws CLI")
    }

    /// A berth client command against the server's API.
    pub fn berth_client(&self, args: &[&str]) -> Output {
        berth()
            .args(args)
            .args(["--endpoint", &format!("http://127.0.0.1:{}", self.api_port)])
            .args(["--access-key-id", KEY, "--secret-access-key", SECRET])
            .args(["--region", "us-east-1"])
            .env("BERTH_DATA_DIR", self.dir.path().join("no-client-data"))
            .env_remove("BERTH_CLUSTER")
            .env_remove("BERTH_ENDPOINT")
            .output()
            .expect("run the berth client")
    }

    pub fn aws_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("aws printed JSON")
    }

    /// One signed ECS call straight over HTTP, without the aws CLI's start-up (a few
    /// milliseconds instead of a second or more), to sample a service often; panics
    /// unless berth answers 200 with JSON.
    pub fn ecs(&self, action: &str, body: &Value) -> Value {
        use std::io::{Read, Write};
        let host = format!("127.0.0.1:{}", self.api_port);
        let body = body.to_string();
        let headers = sign_headers(
            &Credentials::new(KEY, SECRET),
            "us-east-1",
            "ecs",
            time::OffsetDateTime::now_utc(),
            "POST",
            &host,
            "/",
            vec![
                (
                    "content-type".to_string(),
                    "application/x-amz-json-1.1".to_string(),
                ),
                (
                    "x-amz-target".to_string(),
                    format!("AmazonEC2ContainerServiceV20141113.{action}"),
                ),
            ],
            body.as_bytes(),
        );
        // HTTP/1.0: the answer comes whole, not chunked, and the connection closes.
        let mut request = format!("POST / HTTP/1.0\r\ncontent-length: {}\r\n", body.len());
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        let mut stream = std::net::TcpStream::connect(&host).expect("connect to berth server");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("send {action}: {e}"));
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .unwrap_or_else(|e| panic!("read the answer to {action}: {e}"));
        let (head, answer) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(
            head.split_whitespace().nth(1) == Some("200"),
            "{action} {body}: {head}\n{answer}"
        );
        serde_json::from_str(answer).unwrap_or_else(|e| panic!("{action} answered {answer}: {e}"))
    }

    /// DescribeContainerInstances of every instance of the default cluster.
    pub fn instances(&self) -> Vec<serde_json::Value> {
        let list = self.aws_json(&["ecs", "list-container-instances"]);
        let arns: Vec<&str> = list["containerInstanceArns"]
            .as_array()
            .expect("containerInstanceArns")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        if arns.is_empty() {
            return Vec::new();
        }
        let mut args = vec![
            "ecs",
            "describe-container-instances",
            "--container-instances",
        ];
        args.extend(arns);
        self.aws_json(&args)["containerInstances"]
            .as_array()
            .expect("containerInstances")
            .clone()
    }

    /// The instance of the node `node_id` (its ec2InstanceId is the host name, so it is
    /// found by the `rack` attribute each agent was given).
    pub fn instance_with_rack(&self, rack: &str) -> Option<serde_json::Value> {
        self.instances()
            .into_iter()
            .find(|instance| attribute(instance, "rack").as_deref() == Some(rack))
    }

    /// Polls `check` every 250 ms until it returns Some, or panics after `timeout`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl FnMut() -> Option<T>,
    ) -> T {
        poll_until(what, timeout, Duration::from_millis(250), check)
    }

    /// A machine lost at once, agent and tasks together: SIGKILL agent `index`, then
    /// `docker kill` every container labelled with its node id.
    pub fn kill_host(&mut self, index: usize) {
        let node = self.agents[index]
            .node_id()
            .expect("the agent's node id (it registered)");
        self.agents[index].process.kill();
        let containers = self.containers_of(&node);
        if !containers.is_empty() {
            let out = Command::new("docker")
                .arg("kill")
                .args(&containers)
                .output()
                .expect("docker kill");
            // A container that had already exited cannot be killed; that one is gone too.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() || stderr.contains("is not running"),
                "docker kill: {stderr}"
            );
        }
    }

    /// Containers labelled with this node id (running or not).
    pub fn containers_of(&self, node_id: &str) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--no-trunc", "--filter"])
            .arg(format!("label=berth.node={node_id}"))
            .output()
            .expect("docker ps");
        let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        ids.sort();
        ids
    }
}

/// The string at `pointer` in `value`; panics naming both when there is none.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {value}"))
}

/// Waits until the service has `count` RUNNING tasks (and no other listed ones) spread
/// `per_instance` over exactly these instances; the tasks.
pub fn wait_spread(
    cluster: &Cluster,
    service: &str,
    what: &str,
    per_instance: &BTreeMap<String, usize>,
    timeout: Duration,
) -> Vec<Value> {
    let count = per_instance.values().sum();
    let deadline = Instant::now() + timeout;
    loop {
        let tasks = cluster.service_tasks(service);
        let spread = running_per_instance(&tasks, count);
        if spread.as_ref() == Some(per_instance) {
            return tasks;
        }
        let statuses: Vec<(&str, &str)> = tasks
            .iter()
            .map(|t| {
                (
                    t["lastStatus"].as_str().unwrap_or("?"),
                    t["containerInstanceArn"].as_str().unwrap_or("?"),
                )
            })
            .collect();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: want {per_instance:?}, last saw {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn target_states(cluster: &Cluster, target_group_arn: &str) -> Vec<String> {
    let health = cluster.aws_json(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        target_group_arn,
    ]);
    health["TargetHealthDescriptions"]
        .as_array()
        .expect("TargetHealthDescriptions")
        .iter()
        .map(|d| str_at(d, "/TargetHealth/State").to_string())
        .collect()
}

/// Waits until the group has exactly `count` targets, all healthy.
pub fn wait_targets_healthy(cluster: &Cluster, target_group_arn: &str, count: usize) {
    cluster.wait_for(
        &format!("{count} healthy targets"),
        Duration::from_secs(90),
        || {
            let states = target_states(cluster, target_group_arn);
            (states.len() == count && states.iter().all(|s| s == "healthy")).then_some(())
        },
    );
}

/// Where the server's balancer serves its listeners (`BERTH_LB_ADDRESS` here).
pub const SERVER_LB: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// `n` GETs through the listener at `ip`, one after another, that must all answer 200;
/// the bodies (each task serves its container's host name).
pub fn all_succeed(ip: IpAddr, port: u16, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match http_get_at(ip, port, "/") {
            Ok((200, body)) => body.trim().to_string(),
            other => panic!(
                "request {} of {n} through the listener at {ip}: {other:?}",
                i + 1
            ),
        })
        .collect()
}

/// A client sending GETs through the listener back to back until stopped, counting
/// answers and failures (and when the failures were).
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    pub fn start(ip: IpAddr, port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, ok, failed, failures) =
                (stop.clone(), ok.clone(), failed.clone(), failures.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match http_get_at(ip, port, "/") {
                        Ok((200, _)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            failures.lock().unwrap().push(Instant::now());
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Load {
            stop,
            ok,
            failed,
            failures,
            thread: Some(thread),
        }
    }

    /// Stops the client; (answered, failed, from first to last failure).
    pub fn finish(mut self) -> (usize, usize, Option<Duration>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the load thread");
        }
        let failures = self.failures.lock().unwrap();
        let window = match (failures.first(), failures.last()) {
            (Some(first), Some(last)) => Some(*last - *first),
            _ => None,
        };
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            window,
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The container host names (what each task serves) of the tasks on each instance.
pub fn names_per_instance(tasks: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for task in tasks {
        let runtime_id = str_at(task, "/containers/0/runtimeId");
        names
            .entry(str_at(task, "/containerInstanceArn").to_string())
            .or_default()
            .insert(runtime_id[..12].to_string());
    }
    names
}

/// Every TCP socket of this machine (IPv4) as (local, remote), from /proc/net/tcp.
pub fn tcp_connections() -> Vec<(SocketAddrV4, SocketAddrV4)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let endpoint = |field: &str| {
        let (address, port) = field.split_once(':')?;
        let address = u32::from_str_radix(address, 16).ok()?;
        // The kernel prints the address in its own (little-endian) byte order.
        let address = Ipv4Addr::from(address.swap_bytes());
        Some(SocketAddrV4::new(
            address,
            u16::from_str_radix(port, 16).ok()?,
        ))
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some((endpoint(fields.get(1)?)?, endpoint(fields.get(2)?)?))
        })
        .collect()
}

/// `berth server` on `dir/server`, the API on loopback `api_port`, agents on `agent_port`,
/// with a 3 s heartbeat timeout so that a lost machine shows quickly.
fn server_command(dir: &Path, api_port: u16, agent_port: u16) -> Command {
    let mut command = berth();
    command
        .args(["server", "--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
        .arg("--data-dir")
        .arg(dir.join("server"))
        .args(["--access-key-id", KEY, "--secret-access-key", SECRET])
        .args(["--heartbeat-timeout", "3s"])
        .env("BERTH_LB_ADDRESS", "127.0.0.1");
    command
}

/// The containers of the task definition `web`: one busybox httpd on container port 8080
/// (a dynamic host port) serving its container's host name on `/` and `ok` on
/// `/health.html`, stopped within 2 s.
pub const WEB_CONTAINERS: &str = r#"[{"name":"web","image":"berth/busybox:latest","memory":16,"stopTimeout":2,
    "portMappings":[{"containerPort":8080,"hostPort":0}],
    "command":["sh","-c","mkdir -p /www && hostname > /www/index.html && echo ok > /www/health.html && exec httpd -f -p 8080 -h /www"]}]"#;

impl Cluster {
    /// Registers the task definition `web` (`WEB_CONTAINERS`).
    pub fn register_web(&self) {
        self.aws_json(&[
            "ecs",
            "register-task-definition",
            "--family",
            "web",
            "--container-definitions",
            WEB_CONTAINERS,
        ]);
    }

    /// CreateService `web` of `count` tasks of `web`, spread over instanceId, behind
    /// the target group `tg_arn`, with these further flags.
    pub fn create_web_service(&self, count: usize, tg_arn: &str, extra: &[&str]) {
        let count = count.to_string();
        let target = format!("targetGroupArn={tg_arn},containerName=web,containerPort=8080");
        let mut args = vec![
            "ecs",
            "create-service",
            "--service-name",
            "web",
            "--task-definition",
            "web",
            "--desired-count",
            &count,
            "--placement-strategy",
            "type=spread,field=instanceId",
            "--load-balancers",
            &target,
        ];
        args.extend_from_slice(extra);
        self.aws_json(&args);
    }

    /// A load balancer `web-lb` with a listener on a free port forwarding to the target
    /// group `web-tg` of instance targets on port 8080, checked on `/health.html` every
    /// 5 s (healthy after 2 passes, unhealthy after 2 failures) and drained for 2 s;
    /// (listener port, target group ARN).
    pub fn web_balancer(&self) -> (u16, String) {
        let listener_port = free_port();
        let lb = self.aws_json(&[
            "elbv2",
            "create-load-balancer",
            "--name",
            "web-lb",
            "--subnets",
            "subnet-berth",
        ]);
        let lb_arn = str_at(&lb, "/LoadBalancers/0/LoadBalancerArn").to_string();
        let tg = self.aws_json(&[
            "elbv2",
            "create-target-group",
            "--name",
            "web-tg",
            "--protocol",
            "HTTP",
            "--port",
            "8080",
            "--target-type",
            "instance",
            "--vpc-id",
            "vpc-berth",
            "--health-check-path",
            "/health.html",
            "--health-check-interval-seconds",
            "5",
            "--health-check-timeout-seconds",
            "2",
            "--healthy-threshold-count",
            "2",
            "--unhealthy-threshold-count",
            "2",
        ]);
        let tg_arn = str_at(&tg, "/TargetGroups/0/TargetGroupArn").to_string();
        self.aws_json(&[
            "elbv2",
            "modify-target-group-attributes",
            "--target-group-arn",
            &tg_arn,
            "--attributes",
            "Key=deregistration_delay.timeout_seconds,Value=2",
        ]);
        self.aws_json(&[
            "elbv2",
            "create-listener",
            "--load-balancer-arn",
            &lb_arn,
            "--protocol",
            "HTTP",
            "--port",
            &listener_port.to_string(),
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={tg_arn}"),
        ]);
        (listener_port, tg_arn)
    }
}

/// Helpers the multi-host tests share: agents that join, and what the aws CLI reads back
/// about instances, tasks and services (all on the default cluster).
impl Cluster {
    /// Starts `berth agent` `name` that joins with the server's join command and
    /// registers `address`, with these further flags (`--attribute`, `--availability-zone`).
    pub fn spawn_joined_agent(&mut self, name: &str, address: &str, extra: &[&str]) -> usize {
        let (server, token) = self.join_command();
        let mut flags = vec!["--server", &server, "--token", &token, "--address", address];
        flags.extend_from_slice(extra);
        self.spawn_agent(name, &flags)
    }

    /// Waits until the cluster lists exactly `count` instances, all connected.
    pub fn wait_connected_instances(&self, count: usize, timeout: Duration) {
        self.wait_for(&format!("{count} connected instances"), timeout, || {
            let instances = self.instances();
            (instances.len() == count && instances.iter().all(|i| i["agentConnected"] == true))
                .then_some(())
        });
    }

    /// Each instance's ARN by the value of the attribute `name` its agent was given (a
    /// value each instance has its own of, such as a host or rack name).
    pub fn instance_arns(&self, name: &str) -> BTreeMap<String, String> {
        self.instances()
            .iter()
            .filter_map(|instance| {
                Some((
                    attribute(instance, name)?,
                    instance["containerInstanceArn"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// DescribeTasks of the tasks `list-tasks` shows with these filters (desired RUNNING
    /// unless `--desired-status` says otherwise).
    pub fn listed_tasks(&self, filters: &[&str]) -> Vec<serde_json::Value> {
        let mut list_args = vec!["ecs", "list-tasks"];
        list_args.extend_from_slice(filters);
        let list = self.aws_json(&list_args);
        let arns: Vec<&str> = list["taskArns"]
            .as_array()
            .expect("taskArns")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        if arns.is_empty() {
            return Vec::new();
        }
        let mut args = vec!["ecs", "describe-tasks", "--tasks"];
        args.extend(arns);
        self.aws_json(&args)["tasks"]
            .as_array()
            .expect("tasks")
            .clone()
    }

    /// DescribeTasks of the service's tasks that ListTasks shows (desired RUNNING).
    pub fn service_tasks(&self, service: &str) -> Vec<serde_json::Value> {
        self.listed_tasks(&["--service-name", service])
    }

    /// The service's record as DescribeServices returns it.
    pub fn service(&self, service: &str) -> serde_json::Value {
        let described = self.aws_json(&["ecs", "describe-services", "--services", service]);
        described["services"][0].clone()
    }

    /// The messages of the service's events, newest first.
    pub fn service_events(&self, service: &str) -> Vec<String> {
        self.service(service)["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the service has `count` RUNNING tasks and no other listed ones; how
    /// many run on each instance (by ARN).
    pub fn wait_service_running(
        &self,
        service: &str,
        count: usize,
        timeout: Duration,
    ) -> BTreeMap<String, usize> {
        self.wait_for(
            &format!("{count} RUNNING tasks of service {service}"),
            timeout,
            || running_per_instance(&self.service_tasks(service), count),
        )
    }
}

/// RUNNING tasks per container instance ARN, when every listed task is RUNNING and there
/// are `count` of them; None otherwise.
pub fn running_per_instance(
    tasks: &[serde_json::Value],
    count: usize,
) -> Option<BTreeMap<String, usize>> {
    if tasks.len() != count || tasks.iter().any(|t| t["lastStatus"] != "RUNNING") {
        return None;
    }
    let mut per_instance = BTreeMap::new();
    for task in tasks {
        *per_instance
            .entry(task["containerInstanceArn"].as_str()?.to_string())
            .or_default() += 1;
    }
    Some(per_instance)
}

/// An instance's resource `name` (CPU, MEMORY) from `registeredResources` or
/// `remainingResources`.
pub fn resource(instance: &serde_json::Value, list: &str, name: &str) -> Option<i64> {
    instance[list]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["integerValue"].as_i64())
}

pub fn cluster_join_file(cluster: &Cluster) -> PathBuf {
    cluster.server_dir().join("join.json")
}

pub fn attribute(instance: &serde_json::Value, name: &str) -> Option<String> {
    instance["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == name)
        .and_then(|a| a["value"].as_str())
        .map(str::to_string)
}

pub fn remove_labelled(kind: &[&str], remove: &[&str], filter: &str) {
    let out = Command::new("docker")
        .args(kind)
        .args(["-q", "--filter", filter])
        .output();
    if let Ok(out) = out {
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(remove).args(&ids).output();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for process in
                std::iter::once(&self.server).chain(self.agents.iter().map(|a| &a.process))
            {
                eprintln!(
                    "--- {} log, last 60 lines ---\n{}",
                    process.name,
                    tail(&process.log_text(), 60)
                );
            }
        }
        for agent in &mut self.agents {
            agent.process.kill();
        }
        self.server.kill();
        for agent in &self.agents {
            let Some(node) = agent.node_id() else {
                continue;
            };
            let filter = format!("label=berth.node={node}");
            remove_labelled(&["ps", "-a"], &["rm", "-f", "-v"], &filter);
            remove_labelled(&["network", "ls"], &["network", "rm"], &filter);
            remove_labelled(&["volume", "ls"], &["volume", "rm", "-f"], &filter);
        }
    }
}
