//! A real `berth dev` for end-to-end tests: its own data dir and port, the real Docker
//! engine, and the real `aws` CLI. Everything it starts is removed on drop, also when
//! the test fails; a failing test first prints what berth saw (see `report_failure`).
#![allow(dead_code)] // each test file uses a different part

pub mod cluster;
pub mod terraform;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY_ID: &str = "BERTHTESTKEY0000001";
pub const SECRET_ACCESS_KEY: &str = "berth-test-secret-0123456789abcdefghijkl";

/// The binary `Dev` starts: the one built with the tests, unless `BERTH_E2E_BINARY`
/// names another (bench/soak.sh runs the soak against an older build beside this one).
fn berth_dev_binary() -> PathBuf {
    std::env::var_os("BERTH_E2E_BINARY")
        .filter(|binary| !binary.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth")))
}

/// Fails loudly when Docker is not there: e2e tests never skip in silence.
pub fn require_docker() {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match ok {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "this end-to-end test needs a running Docker engine: `docker info` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => {
            panic!("this end-to-end test needs the docker CLI and a running engine: {error}")
        }
    }
}

/// Builds berth/busybox and berth/nginx if they are missing (no registry needed).
pub fn require_images() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/images/build.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .expect("run examples/images/build.sh");
    assert!(status.success(), "examples/images/build.sh failed");
}

/// Polls `check` every `interval` until it returns Some, or panics after `timeout`,
/// naming `what` it waited for.
pub fn poll_until<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(interval);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Dev {
    pub data_dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
    /// The key pair the aws CLI and `berth` sign with: the test's own, or (when
    /// `berth dev` generated one) the pair from its connection file.
    pub access_key_id: String,
    pub secret_access_key: String,
    generated_keys: bool,
    /// `berth dev --tls`: the API is https with the certificate it generates.
    tls: bool,
    /// The address `berth dev --listen` binds (with `port`); loopback unless a test
    /// asks for another.
    listen_ip: std::net::IpAddr,
    /// The address clients (`aws`, `berth`, the readiness check) connect to: the listen
    /// address, or one of this machine's when berth listens on every address.
    client_ip: std::net::IpAddr,
    /// More `berth dev` flags, given on every (re)start.
    extra_flags: Vec<String>,
}

impl Dev {
    pub fn start() -> Dev {
        Dev::start_with(false)
    }

    /// `berth dev` with these flags besides the tests' own.
    pub fn start_with_flags(flags: &[&str]) -> Dev {
        Dev::start_with_keys_and_flags(false, flags)
    }

    /// `berth dev` with no keys given: it makes a pair and keeps it in its data dir.
    pub fn start_generating_keys() -> Dev {
        Dev::start_with(true)
    }

    /// `berth dev --tls` on loopback; `aws` and `berth` trust its generated certificate.
    pub fn start_tls() -> Dev {
        Dev::start_with_options(false, true, std::net::Ipv4Addr::LOCALHOST.into(), &[])
    }

    /// `berth dev --listen IP:PORT` with no TLS flag; beyond loopback it serves TLS by
    /// default, which `aws` and `berth` then trust through the generated certificate.
    pub fn start_listening_on(ip: std::net::IpAddr) -> Dev {
        Dev::start_with_options(false, false, ip, &[])
    }

    /// `berth dev --listen 0.0.0.0:PORT` (TLS by default), with `aws` and `berth`
    /// connecting to `client_ip`, one of this machine's addresses.
    pub fn start_listening_on_every_address(client_ip: std::net::IpAddr) -> Dev {
        let mut dev = Dev::new(false, false, std::net::Ipv4Addr::UNSPECIFIED.into(), &[]);
        dev.client_ip = client_ip;
        dev.spawn();
        dev
    }

    fn start_with(generated_keys: bool) -> Dev {
        Dev::start_with_options(
            generated_keys,
            false,
            std::net::Ipv4Addr::LOCALHOST.into(),
            &[],
        )
    }

    fn start_with_keys_and_flags(generated_keys: bool, flags: &[&str]) -> Dev {
        Dev::start_with_options(
            generated_keys,
            false,
            std::net::Ipv4Addr::LOCALHOST.into(),
            flags,
        )
    }

    fn start_with_options(
        generated_keys: bool,
        tls: bool,
        listen_ip: std::net::IpAddr,
        flags: &[&str],
    ) -> Dev {
        let mut dev = Dev::new(generated_keys, tls, listen_ip, flags);
        dev.spawn();
        dev
    }

    fn new(generated_keys: bool, tls: bool, listen_ip: std::net::IpAddr, flags: &[&str]) -> Dev {
        require_docker();
        require_images();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        Dev {
            log: data_dir.path().join("berth.log"),
            data_dir,
            port,
            child: None,
            access_key_id: ACCESS_KEY_ID.to_string(),
            secret_access_key: SECRET_ACCESS_KEY.to_string(),
            generated_keys,
            tls: tls || !listen_ip.is_loopback(),
            listen_ip,
            client_ip: listen_ip,
            extra_flags: flags.iter().map(|flag| flag.to_string()).collect(),
        }
    }

    pub fn connection_file(&self) -> PathBuf {
        self.data_dir.path().join("connection.json")
    }

    /// Starts (or restarts) `berth dev` on the same data dir and port.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut command = Command::new(berth_dev_binary());
        command
            .args(["dev", "--listen", &self.listen_address().to_string()])
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(&self.extra_flags)
            .env_remove("BERTH_ACCESS_KEY_ID")
            .env_remove("BERTH_SECRET_ACCESS_KEY");
        if self.tls && self.listen_ip.is_loopback() {
            command.arg("--tls");
        }
        if !self.generated_keys {
            command.args([
                "--access-key-id",
                ACCESS_KEY_ID,
                "--secret-access-key",
                SECRET_ACCESS_KEY,
            ]);
        }
        let child = command
            .env("BERTH_LOG", "info,berth=debug")
            // The log is a file a person reads: no colour codes.
            .env("NO_COLOR", "1")
            // Tests' load balancer listeners stay on loopback.
            .env("BERTH_LB_ADDRESS", "127.0.0.1")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start berth dev");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(self.client_address()).is_ok()
                && self.node_id().is_some()
                && self.read_generated_keys()
            {
                // The agent has registered once the default cluster lists an instance.
                let out = self.aws(&["ecs", "list-container-instances", "--cluster", "default"]);
                if out.status.success()
                    && String::from_utf8_lossy(&out.stdout).contains("container-instance/")
                {
                    return;
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("berth dev exited with {status} during start");
                }
            }
            assert!(
                Instant::now() < deadline,
                "berth dev did not come up in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// With generated keys, takes them from the connection file once it is there.
    fn read_generated_keys(&mut self) -> bool {
        if !self.generated_keys {
            return true;
        }
        let Ok(text) = std::fs::read_to_string(self.connection_file()) else {
            return false;
        };
        let Ok(connection) = serde_json::from_str::<serde_json::Value>(&text) else {
            return false;
        };
        match (
            connection["access_key_id"].as_str(),
            connection["secret_access_key"].as_str(),
        ) {
            (Some(id), Some(secret)) => {
                self.access_key_id = id.to_string();
                self.secret_access_key = secret.to_string();
                true
            }
            _ => false,
        }
    }

    /// SIGTERM, as a service manager stops berth; the exit status, or `None` if it was
    /// still running 30 s later (then it is killed).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Stops `berth dev` and starts it again on the same data dir with other flags.
    pub fn restart_with_flags(&mut self, flags: &[&str]) {
        self.kill();
        self.extra_flags = flags.iter().map(|flag| flag.to_string()).collect();
        self.spawn();
    }

    /// The running `berth dev`'s process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// kill -9: no chance to clean up, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.client_address())
    }

    /// Where clients connect: the listen address unless berth listens on every address.
    pub fn client_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.client_ip, self.port)
    }

    pub fn listen_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.listen_ip, self.port)
    }

    /// The certificate `berth dev --tls` generated, which clients are told to trust.
    pub fn tls_certificate(&self) -> PathBuf {
        self.data_dir.path().join("tls").join("cert.pem")
    }

    /// `--ca-bundle PATH` when the API is https, for the aws CLI and `berth` alike.
    fn ca_bundle_args(&self) -> Vec<std::ffi::OsString> {
        if !self.tls {
            return Vec::new();
        }
        vec!["--ca-bundle".into(), self.tls_certificate().into()]
    }

    pub fn node_id(&self) -> Option<String> {
        std::fs::read_to_string(self.data_dir.path().join("node-id"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The aws CLI v2 (Debian's, by its full path) against this berth.
    pub fn aws(&self, args: &[&str]) -> Output {
        self.aws_as(args, &self.access_key_id, &self.secret_access_key)
    }

    pub fn aws_as(&self, args: &[&str], key: &str, secret: &str) -> Output {
        self.aws_command(args, key, secret)
            .output()
            .expect("run the aws CLI")
    }

    fn aws_command(&self, args: &[&str], key: &str, secret: &str) -> Command {
        let aws = aws_v2();
        let mut command = Command::new(aws);
        command
            .arg("--endpoint-url")
            .arg(self.endpoint())
            .args(self.ca_bundle_args())
            .args(["--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
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
            .stdin(Stdio::null());
        command
    }

    /// Runs an aws command that must succeed; returns its JSON output.
    pub fn aws_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("aws printed JSON")
    }

    /// Runs a boto3 script against this berth: its endpoint, access key id and secret
    /// are `sys.argv[1:4]` and also `BERTH_ENDPOINT`, `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    pub fn boto3(&self, script: &str) -> Output {
        let endpoint = self.endpoint();
        python_boto3(
            script,
            &[&endpoint, &self.access_key_id, &self.secret_access_key],
            &[
                ("BERTH_ENDPOINT", &endpoint),
                ("AWS_ACCESS_KEY_ID", &self.access_key_id),
                ("AWS_SECRET_ACCESS_KEY", &self.secret_access_key),
            ],
        )
    }

    /// Runs a boto3 script of checks that prints `ok` when all of them hold.
    pub fn boto3_checks(&self, script: &str) {
        let out = self.boto3(script);
        assert!(
            out.status.success(),
            "the boto3 checks failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    }

    /// Runs the `berth` CLI against this berth.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_command(args).output().expect("run berth")
    }

    /// Starts the `berth` CLI against this berth, its stdout piped (for `-f` commands);
    /// the caller kills it.
    pub fn berth_child(&self, args: &[&str]) -> Child {
        self.berth_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start berth")
    }

    fn berth_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .args(args)
            .args([
                "--endpoint",
                &self.endpoint(),
                "--access-key-id",
                &self.access_key_id,
            ])
            .args(["--secret-access-key", &self.secret_access_key])
            .args(self.ca_bundle_args())
            .stdin(Stdio::null());
        command
    }

    /// Polls `check` every 200 ms until it returns Some, or panics after `timeout`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl FnMut() -> Option<T>,
    ) -> T {
        poll_until(what, timeout, Duration::from_millis(200), check)
    }

    /// `aws ecs wait services-stable` for `services` of `cluster`; panics, naming
    /// `when` and showing the CLI's error and berth's log, if the waiter gives up.
    pub fn wait_services_stable(&self, cluster: &str, services: &[&str], when: &str) {
        let mut args = vec![
            "ecs",
            "wait",
            "services-stable",
            "--cluster",
            cluster,
            "--services",
        ];
        args.extend(services);
        let out = self.aws(&args);
        assert!(
            out.status.success(),
            "services-stable {when}: {}",
            String::from_utf8_lossy(&out.stderr),
        );
    }

    /// DescribeTasks of a service's tasks that ListTasks shows (desired RUNNING), by the
    /// aws CLI; `cluster` None is the default cluster.
    pub fn service_tasks(&self, cluster: Option<&str>, service: &str) -> Vec<serde_json::Value> {
        let mut list_args = vec!["ecs", "list-tasks", "--service-name", service];
        if let Some(cluster) = cluster {
            list_args.extend(["--cluster", cluster]);
        }
        let list = self.aws_json(&list_args);
        let arns: Vec<&str> = list["taskArns"]
            .as_array()
            .expect("taskArns")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        if arns.is_empty() {
            return vec![];
        }
        let mut args = vec!["ecs", "describe-tasks"];
        if let Some(cluster) = cluster {
            args.extend(["--cluster", cluster]);
        }
        args.push("--tasks");
        args.extend(arns);
        self.aws_json(&args)["tasks"]
            .as_array()
            .expect("tasks")
            .clone()
    }

    /// The ARN of the target group called `name`.
    pub fn target_group_arn(&self, name: &str) -> String {
        let groups = self.aws_json(&["elbv2", "describe-target-groups", "--names", name]);
        groups
            .pointer("/TargetGroups/0/TargetGroupArn")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_else(|| panic!("no target group {name}: {groups}"))
            .to_string()
    }

    /// DescribeTargetHealth's state of each target of a group (`healthy`, `draining`, ...).
    pub fn target_states(&self, target_group_arn: &str) -> Vec<String> {
        let health = self.aws_json(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            target_group_arn,
        ]);
        health["TargetHealthDescriptions"]
            .as_array()
            .expect("TargetHealthDescriptions")
            .iter()
            .map(|d| {
                d.pointer("/TargetHealth/State")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_else(|| panic!("a target without a state: {d}"))
                    .to_string()
            })
            .collect()
    }

    /// Waits (90 s at most) until the group has exactly `count` targets, all healthy. A
    /// service is stable for `services-stable` once its tasks run, which can be before
    /// the balancer has seen them answer.
    pub fn wait_targets_healthy(&self, target_group_arn: &str, count: usize) {
        self.wait_for(
            &format!("{count} healthy targets"),
            Duration::from_secs(90),
            || {
                let states = self.target_states(target_group_arn);
                (states.len() == count && states.iter().all(|s| s == "healthy")).then_some(())
            },
        );
    }

    /// Containers berth made for this node (running or not).
    pub fn containers(&self) -> Vec<String> {
        let Some(node) = self.node_id() else {
            return vec![];
        };
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label=berth.node={node}")])
            .output()
            .expect("docker ps");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The aws CLI v2: Debian's `awscli` at /usr/bin/aws.
pub fn aws_v2() -> &'static str {
    let path = "/usr/bin/aws";
    assert!(
        Path::new(path).exists(),
        "the aws CLI v2 is needed at {path}: apt-get install awscli"
    );
    path
}

/// The aws CLI v1 first on PATH (the Python's, with botocore), for tests of what v1
/// does that Debian's older v2 does not. Fails loudly when PATH has no v1.
pub fn aws_v1() -> PathBuf {
    let found = std::env::var_os("PATH").into_iter().flat_map(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("aws"))
            .collect::<Vec<_>>()
    });
    for candidate in found.filter(|p| p.exists()) {
        let version = Command::new(&candidate).arg("--version").output();
        let text = version
            .map(|o| String::from_utf8_lossy(&[o.stdout, o.stderr].concat()).into_owned())
            .unwrap_or_default();
        if text.starts_with("aws-cli/1.") {
            return candidate;
        }
    }
    panic!("the aws CLI v1 is needed on PATH: python3 -m pip install awscli");
}

/// Runs `script` with python3 and boto3 (`args` are its `sys.argv[1:]`), with no
/// shared AWS config files and no instance metadata; fails loudly when boto3 is missing.
pub fn python_boto3(script: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let check = Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .expect("run python3");
    assert!(
        check.status.success(),
        "python3 with boto3 is needed: python3 -m pip install boto3"
    );
    Command::new("python3")
        .args(["-c", script])
        .args(args)
        .env("AWS_CONFIG_FILE", "/nonexistent/berth-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/berth-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run python3")
}

/// The start of a boto3 script run by `Dev::boto3`: `ecs`, a client of this berth, and
/// `code(call, **kwargs)`, the (code, message) of a call that must fail.
pub const BOTO3_ECS_PRELUDE: &str = r#"
import json, sys
import boto3
from botocore.exceptions import ClientError

ecs = boto3.client("ecs", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])

def code(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"]
    raise AssertionError(f"{call.__name__} {kwargs} succeeded")
"#;

/// An aws CLI or boto3 call that must fail with `code`, its message holding `words`.
pub fn assert_refused(out: &Output, code: &str, words: &str) {
    assert!(
        !out.status.success(),
        "expected {code}, the command succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(code), "expected {code} in: {stderr}");
    assert!(stderr.contains(words), "expected '{words}' in: {stderr}");
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Longest wait for one command of a failure report: berth may be what hangs.
const REPORT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

impl Dev {
    /// Prints, for a failing test, what berth saw: every cluster's services, tasks and
    /// containers (`berth ps --all`), every target group's target health, and berth's
    /// log (its end here, all of it in a file that outlives the test's data dir).
    fn report_failure(&mut self) {
        let running = self
            .child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)));
        let answering = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
        if running && answering {
            let ps = self.berth_command(&["ps", "--all"]);
            eprintln!("--- berth ps --all ---\n{}", self.report_output(ps, "ps"));
            eprintln!("--- target health ---\n{}", self.target_health_report());
        } else if running {
            eprintln!("--- berth dev does not answer on its port: no task states to show ---");
        } else {
            eprintln!("--- berth dev is not running: no task states to show ---");
        }
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "berth-e2e-{}-{}.log",
            std::thread::current()
                .name()
                .unwrap_or("test")
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "-"),
            std::process::id()
        ));
        let kept = match std::fs::copy(&self.log, &kept) {
            Ok(_) => kept.display().to_string(),
            Err(error) => format!("(not kept: {error})"),
        };
        eprintln!(
            "--- berth dev log, last 200 lines (all of it: {kept}) ---\n{}",
            tail(&self.log_text(), 200)
        );
    }

    /// Each target group's targets with their state and reason, by the aws CLI.
    fn target_health_report(&self) -> String {
        let groups = self.aws_command(
            &["elbv2", "describe-target-groups"],
            &self.access_key_id,
            &self.secret_access_key,
        );
        let groups = self.report_output(groups, "target-groups");
        let Ok(groups) = serde_json::from_str::<serde_json::Value>(&groups) else {
            return groups;
        };
        let mut report = Vec::new();
        for group in groups["TargetGroups"].as_array().into_iter().flatten() {
            let (Some(name), Some(arn)) = (
                group["TargetGroupName"].as_str(),
                group["TargetGroupArn"].as_str(),
            ) else {
                continue;
            };
            let health = self.aws_command(
                &["elbv2", "describe-target-health", "--target-group-arn", arn],
                &self.access_key_id,
                &self.secret_access_key,
            );
            let health = self.report_output(health, "target-health");
            let Ok(health) = serde_json::from_str::<serde_json::Value>(&health) else {
                report.push(format!("{name}: {health}"));
                continue;
            };
            let targets = health["TargetHealthDescriptions"].as_array();
            report.push(format!("{name}: {} targets", targets.map_or(0, Vec::len)));
            for target in targets.into_iter().flatten() {
                report.push(format!(
                    "  {}:{} {} {}",
                    target["Target"]["Id"].as_str().unwrap_or("?"),
                    target["Target"]["Port"],
                    target["TargetHealth"]["State"].as_str().unwrap_or("?"),
                    target["TargetHealth"]["Reason"].as_str().unwrap_or(""),
                ));
            }
        }
        if report.is_empty() {
            report.push("(no target groups)".to_string());
        }
        report.join("\n")
    }

    /// Runs one report command for at most `REPORT_COMMAND_TIMEOUT`; its output, or
    /// what went wrong. Output goes through a file: a full pipe cannot stall it.
    fn report_output(&self, mut command: Command, name: &str) -> String {
        let path = self.data_dir.path().join(format!("report-{name}.out"));
        let Ok(file) = std::fs::File::create(&path) else {
            return format!("(cannot create {})", path.display());
        };
        let (Ok(stdout), Ok(stderr)) = (file.try_clone(), file.try_clone()) else {
            return "(cannot share the output file)".to_string();
        };
        let mut child = match command.stdout(stdout).stderr(stderr).spawn() {
            Ok(child) => child,
            Err(error) => return format!("(cannot run it: {error})"),
        };
        let deadline = Instant::now() + REPORT_COMMAND_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return format!("(no answer within {REPORT_COMMAND_TIMEOUT:?})");
                }
            }
        }
        std::fs::read_to_string(&path).unwrap_or_default()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // Before anything is stopped: the report asks the running berth.
        if std::thread::panicking() {
            self.report_failure();
        }
        self.kill();
        if let Some(node) = self.node_id() {
            let filter = format!("label=berth.node={node}");
            // A create the engine was still answering when berth was killed lands after
            // the first sweep: sweep again after a pause until nothing is left.
            for _ in 0..3 {
                let found = remove_labelled(&["ps", "-aq"], &["rm", "-f", "-v"], &filter);
                if found == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            remove_labelled(&["network", "ls", "-q"], &["network", "rm"], &filter);
            remove_labelled(&["volume", "ls", "-q"], &["volume", "rm", "-f"], &filter);
        }
    }
}

/// Removes the containers (with their anonymous volumes), networks and volumes that
/// match `filter` (`label=berth.node=ID`), for a test's own berth outside `Dev`.
pub fn remove_labelled_by(filter: &str) {
    for _ in 0..3 {
        if remove_labelled(&["ps", "-aq"], &["rm", "-f", "-v"], filter) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    remove_labelled(&["network", "ls", "-q"], &["network", "rm"], filter);
    remove_labelled(&["volume", "ls", "-q"], &["volume", "rm", "-f"], filter);
}

/// `docker LIST --filter FILTER`, then `docker REMOVE` of what it lists; how many it found.
fn remove_labelled(list: &[&str], remove: &[&str], filter: &str) -> usize {
    let Ok(out) = Command::new("docker")
        .args(list)
        .args(["--filter", filter])
        .output()
    else {
        return 0;
    };
    let found: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if !found.is_empty() {
        let _ = Command::new("docker").args(remove).args(&found).output();
    }
    found.len()
}

/// A plain HTTP/1.0 GET on loopback; returns (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_get_at(std::net::Ipv4Addr::LOCALHOST.into(), port, path)
}

/// `http_get` to `address`: a task's host port at its agent's address, say.
pub fn http_get_at(
    address: std::net::IpAddr,
    port: u16,
    path: &str,
) -> std::io::Result<(u16, String)> {
    let host = address.to_string();
    http_request(address, port, "GET", path, &[("Host", &host)])
        .map(|response| (response.status, response.body))
}

/// What `http_request` got back.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request with the given headers (a `Host` among them, or none); the
/// response read to its end.
pub fn http_request(
    address: std::net::IpAddr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&(address, port).into(), Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = format!("{method} {path} HTTP/1.0\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_string(),
    })
}

/// The string at a JSON pointer of an aws CLI answer; panics naming it if absent.
pub fn str_at<'a>(value: &'a serde_json::Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {value}"))
}

/// An HTTP/1.1 client that keeps one connection open across requests, as browsers and
/// most HTTP clients do; a request on a connection the server closed is an error.
pub struct KeepAliveClient {
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl KeepAliveClient {
    pub fn connect(port: u16) -> std::io::Result<KeepAliveClient> {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(KeepAliveClient {
            reader: std::io::BufReader::new(stream),
        })
    }

    /// One GET on the open connection; returns (status, body).
    pub fn get(&mut self, path: &str) -> std::io::Result<(u16, String)> {
        use std::io::{BufRead, Error, ErrorKind, Read, Write};
        write!(
            self.reader.get_mut(),
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "the server closed the keep-alive connection",
            ));
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::new(ErrorKind::InvalidData, format!("status line {line:?}")))?;
        let (mut length, mut chunked, mut close) = (0usize, false, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let (name, value) = (name.to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| Error::new(ErrorKind::InvalidData, "bad chunk size"))?;
                let mut chunk = vec![0u8; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        }
        if close {
            return Err(Error::new(
                ErrorKind::ConnectionAborted,
                format!("the server ended the keep-alive connection after a {status}"),
            ));
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}
