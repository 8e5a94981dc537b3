//! A real `berth dev` for end-to-end tests: its own data dir and port, the real Docker
//! engine, and the real `aws` CLI. Everything it starts is removed on drop, also when
//! the test fails.
#![allow(dead_code)] // each test file uses a different part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY_ID: &str = "BERTHTESTKEY0000001";
pub const SECRET_ACCESS_KEY: &str = "berth-test-secret-0123456789abcdefghijkl";

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

    fn start_with(generated_keys: bool) -> Dev {
        Dev::start_with_keys_and_flags(generated_keys, &[])
    }

    fn start_with_keys_and_flags(generated_keys: bool, flags: &[&str]) -> Dev {
        require_docker();
        require_images();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut dev = Dev {
            log: data_dir.path().join("berth.log"),
            data_dir,
            port,
            child: None,
            access_key_id: ACCESS_KEY_ID.to_string(),
            secret_access_key: SECRET_ACCESS_KEY.to_string(),
            generated_keys,
            extra_flags: flags.iter().map(|flag| flag.to_string()).collect(),
        };
        dev.spawn();
        dev
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
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .args(["dev", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(&self.extra_flags)
            .env_remove("BERTH_ACCESS_KEY_ID")
            .env_remove("BERTH_SECRET_ACCESS_KEY");
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
            // Tests' load balancer listeners stay on loopback.
            .env("BERTH_LB_ADDRESS", "127.0.0.1")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start berth dev");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
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
                    panic!(
                        "berth dev exited with {status} during start:\n{}",
                        self.log_text()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "berth dev did not come up in 30 s:\n{}",
                self.log_text()
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

    /// Stops `berth dev` and starts it again on the same data dir with other flags.
    pub fn restart_with_flags(&mut self, flags: &[&str]) {
        self.kill();
        self.extra_flags = flags.iter().map(|flag| flag.to_string()).collect();
        self.spawn();
    }

    /// kill -9: no chance to clean up, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
        let aws = aws_v2();
        Command::new(aws)
            .arg("--endpoint-url")
            .arg(self.endpoint())
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
            .stdin(Stdio::null())
            .output()
            .expect("run the aws CLI")
    }

    /// Runs an aws command that must succeed; returns its JSON output.
    pub fn aws_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {} failed: {}\n--- berth log ---\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log_text(), 40)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("aws printed JSON")
    }

    /// Runs the `berth` CLI against this berth.
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .args([
                "--endpoint",
                &self.endpoint(),
                "--access-key-id",
                &self.access_key_id,
            ])
            .args(["--secret-access-key", &self.secret_access_key])
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
    }

    /// Polls `check` every 200 ms until it returns Some, or panics after `timeout`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n--- berth log ---\n{}",
                tail(&self.log_text(), 60)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
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
            "services-stable {when}: {}
--- berth log ---
{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log_text(), 60)
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

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Dev {
    fn drop(&mut self) {
        self.kill();
        if let Some(node) = self.node_id() {
            let filter = format!("label=berth.node={node}");
            let out = Command::new("docker")
                .args(["ps", "-aq", "--filter", &filter])
                .output();
            if let Ok(out) = out {
                let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect();
                if !ids.is_empty() {
                    let _ = Command::new("docker")
                        .args(["rm", "-f", "-v"])
                        .args(&ids)
                        .output();
                }
            }
            let out = Command::new("docker")
                .args(["network", "ls", "-q", "--filter", &filter])
                .output();
            if let Ok(out) = out {
                let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect();
                if !ids.is_empty() {
                    let _ = Command::new("docker")
                        .args(["network", "rm"])
                        .args(&ids)
                        .output();
                }
            }
            let out = Command::new("docker")
                .args(["volume", "ls", "-q", "--filter", &filter])
                .output();
            if let Ok(out) = out {
                let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect();
                if !names.is_empty() {
                    let _ = Command::new("docker")
                        .args(["volume", "rm", "-f"])
                        .args(&names)
                        .output();
                }
            }
        }
        if std::thread::panicking() {
            eprintln!("--- berth dev log ---\n{}", tail(&self.log_text(), 200));
        }
    }
}

/// A plain HTTP/1.0 GET on loopback; returns (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
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
