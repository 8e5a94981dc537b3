//! `berth dev --tls`: the API is https with a self-signed certificate generated into the
//! data dir (key mode 0600); the real aws CLI v2 works with `--ca-bundle` and
//! `AWS_CA_BUNDLE` and refuses without them; `berth ps` trusts it through the
//! connection file, `--ca-bundle` or `AWS_CA_BUNDLE`; plain HTTP gets no answer; and
//! SIGTERM still stops it cleanly. On an address beyond loopback (one of this machine's
//! own, such as its Docker bridge) TLS is the default, and listening on 0.0.0.0 the
//! certificate names every address of the machine, so the aws CLI verifies it at one
//! beyond loopback.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use support::{aws_v2, Dev};

fn berth_ps(dev: &Dev, configure: impl FnOnce(&mut Command)) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .arg("ps")
        .env_remove("BERTH_ENDPOINT")
        .env_remove("BERTH_ACCESS_KEY_ID")
        .env_remove("BERTH_SECRET_ACCESS_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_ECS")
        .env_remove("AWS_CA_BUNDLE")
        .env("BERTH_DATA_DIR", dev.data_dir.path().join("not-here"))
        .stdin(Stdio::null());
    configure(&mut command);
    command.output().expect("run berth ps")
}

fn with_endpoint_and_keys<'a>(dev: &'a Dev) -> impl FnOnce(&mut Command) + 'a {
    move |command| {
        command
            .args(["--endpoint", &dev.endpoint()])
            .args(["--access-key-id", &dev.access_key_id])
            .args(["--secret-access-key", &dev.secret_access_key]);
    }
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn berth_dev_serves_its_api_over_tls_that_aws_and_berth_trust() {
    let mut dev = Dev::start_tls();
    let certificate = dev.tls_certificate();
    let key = dev.data_dir.path().join("tls").join("key.pem");
    let mode = std::fs::metadata(&key)
        .expect("the key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key is private");
    let log = dev.log_text();
    assert!(log.contains(&dev.endpoint()), "{log}");
    assert!(log.contains(&certificate.display().to_string()), "{log}");
    let connection: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dev.connection_file()).unwrap()).unwrap();
    assert_eq!(connection["endpoint"], dev.endpoint().as_str());
    assert_eq!(
        connection["ca_bundle"],
        certificate.display().to_string().as_str()
    );

    // The aws CLI with --ca-bundle (Dev::aws passes it), ECS and ELBv2 alike.
    let clusters = dev.aws_json(&["ecs", "list-clusters"]);
    assert!(clusters["clusterArns"].is_array(), "{clusters}");
    let balancers = dev.aws_json(&["elbv2", "describe-load-balancers"]);
    assert!(balancers["LoadBalancers"].is_array(), "{balancers}");

    // With AWS_CA_BUNDLE instead, and without either: refused by the CLI itself.
    let aws = |ca_bundle: Option<&std::path::Path>| {
        let mut command = Command::new(aws_v2());
        command
            .args(["--endpoint-url", &dev.endpoint(), "--output", "json"])
            .args(["ecs", "list-clusters"])
            .env("AWS_ACCESS_KEY_ID", &dev.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &dev.secret_access_key)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_PAGER", "")
            .env("AWS_CONFIG_FILE", "/nonexistent/berth-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/berth-test-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null());
        if let Some(path) = ca_bundle {
            command.env("AWS_CA_BUNDLE", path);
        }
        command.output().expect("run the aws CLI")
    };
    let trusted = aws(Some(&certificate));
    assert!(trusted.status.success(), "{}", text(&trusted));
    let untrusted = aws(None);
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    assert!(
        text(&untrusted).to_lowercase().contains("certificate"),
        "{}",
        text(&untrusted)
    );

    // berth ps: through the connection file alone (endpoint, keys and certificate)...
    let data_dir = dev.data_dir.path().to_path_buf();
    let from_file = berth_ps(&dev, |command| {
        command.arg("--data-dir").arg(&data_dir);
    });
    assert!(from_file.status.success(), "{}", text(&from_file));
    // ...with --ca-bundle, with AWS_CA_BUNDLE, and not without a certificate to trust.
    let flag = berth_ps(&dev, |command| {
        with_endpoint_and_keys(&dev)(command);
        command.arg("--ca-bundle").arg(&certificate);
    });
    assert!(flag.status.success(), "{}", text(&flag));
    let env = berth_ps(&dev, |command| {
        with_endpoint_and_keys(&dev)(command);
        command.env("AWS_CA_BUNDLE", &certificate);
    });
    assert!(env.status.success(), "{}", text(&env));
    let refused = berth_ps(&dev, with_endpoint_and_keys(&dev));
    assert!(!refused.status.success(), "{}", text(&refused));

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = support::http_get(dev.port, "/");
    assert!(
        plain.is_err() || plain.as_ref().is_ok_and(|(status, _)| *status == 0),
        "{plain:?}"
    );

    // SIGTERM stops it cleanly even with a client stalled mid-handshake.
    let _stalled = std::net::TcpStream::connect(("127.0.0.1", dev.port)).unwrap();
    let status = dev.terminate();
    assert!(
        status.is_some_and(|status| status.success()),
        "berth dev did not stop cleanly: {status:?}\n{}",
        support::tail(&dev.log_text(), 20)
    );
}

/// One of this machine's IPv4 addresses beyond loopback (`ip -4 -o addr`).
fn non_loopback_address() -> std::net::IpAddr {
    let output = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .expect("run `ip -4 -o addr show` (iproute2)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|word| *word == "inet")?;
            words
                .next()?
                .split('/')
                .next()?
                .parse::<std::net::IpAddr>()
                .ok()
        })
        .find(|ip| !ip.is_loopback())
        .expect("this test needs an IPv4 address beyond loopback on this machine (e.g. docker0's)")
}

#[test]
fn beyond_loopback_berth_dev_serves_tls_by_default() {
    let ip = non_loopback_address();
    let dev = Dev::start_listening_on(ip);
    let connection: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dev.connection_file()).unwrap()).unwrap();
    assert_eq!(
        connection["endpoint"],
        format!("https://{}", dev.listen_address()).as_str()
    );
    // The generated certificate names the address (Dev::aws passes --ca-bundle).
    let clusters = dev.aws_json(&["ecs", "list-clusters"]);
    assert!(clusters["clusterArns"].is_array(), "{clusters}");
    let data_dir = dev.data_dir.path().to_path_buf();
    let from_file = berth_ps(&dev, |command| {
        command.arg("--data-dir").arg(&data_dir);
    });
    assert!(from_file.status.success(), "{}", text(&from_file));
}

#[test]
fn on_every_address_the_certificate_verifies_at_the_machines_own_address() {
    let ip = non_loopback_address();
    let dev = Dev::start_listening_on_every_address(ip);
    assert_eq!(dev.listen_address().ip().to_string(), "0.0.0.0");
    // The aws CLI at https://IP:PORT with --ca-bundle (Dev::aws): the name verifies.
    assert_eq!(dev.endpoint(), format!("https://{ip}:{}", dev.port));
    let clusters = dev.aws_json(&["ecs", "list-clusters"]);
    assert!(clusters["clusterArns"].is_array(), "{clusters}");
    let names = std::fs::read_to_string(dev.data_dir.path().join("tls/names")).unwrap();
    assert!(names.lines().any(|name| name == ip.to_string()), "{names}");
    // And on this machine through loopback, as the connection file says.
    let connection: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dev.connection_file()).unwrap()).unwrap();
    assert_eq!(
        connection["endpoint"],
        format!("https://127.0.0.1:{}", dev.port).as_str()
    );
    let data_dir = dev.data_dir.path().to_path_buf();
    let from_file = berth_ps(&dev, |command| {
        command.arg("--data-dir").arg(&data_dir);
    });
    assert!(from_file.status.success(), "{}", text(&from_file));
}
