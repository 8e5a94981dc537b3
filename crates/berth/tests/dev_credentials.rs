//! `berth dev` with no keys given: it generates a pair on first start, keeps it in its
//! data dir (mode 0600), prints the `export AWS_...` lines a user pastes, keeps the same
//! pair across a restart, and `berth` finds endpoint and keys in the data dir alone,
//! even with other AWS keys in the environment. One profile of the shared AWS config
//! files (`endpoint_url`, a `services` section) points the aws CLI v1, boto3 and
//! `berth` at berth with no endpoint flag, as does `AWS_ENDPOINT_URL`.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use support::Dev;

/// `berth ps` given nothing but the data dir, with somebody's real AWS keys exported.
fn berth_ps_with_data_dir_only(dev: &Dev) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("ps")
        .arg("--data-dir")
        .arg(dev.data_dir.path())
        .env_remove("BERTH_ENDPOINT")
        .env_remove("BERTH_ACCESS_KEY_ID")
        .env_remove("BERTH_SECRET_ACCESS_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_ECS")
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .stdin(Stdio::null())
        .output()
        .expect("run berth ps")
}

#[test]
fn berth_dev_generates_keeps_and_prints_its_keys() {
    let mut dev = Dev::start_generating_keys();
    let first_pair = (dev.access_key_id.clone(), dev.secret_access_key.clone());
    assert!(first_pair.0.starts_with("BERTH"), "{first_pair:?}");
    assert_eq!(first_pair.0.len(), 20, "an access key id of AWS's length");
    assert_eq!(first_pair.1.len(), 40, "a secret of AWS's length");

    let mode = std::fs::metadata(dev.connection_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only the owner reads the secret");
    // The store holds environment values: the same goes for it and its directory.
    let mode_of =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let store_file = dev.data_dir.path().join("state.redb");
    assert_eq!(
        mode_of(&store_file),
        0o600,
        "only the owner reads the store"
    );
    assert_eq!(mode_of(dev.data_dir.path()), 0o700);

    let printed = dev.log_text();
    assert!(
        printed.contains(&format!("export AWS_ACCESS_KEY_ID={}", first_pair.0)),
        "{printed}"
    );
    // Its output here is a log file, not a terminal: the secret is not written to it,
    // the line says where it is.
    assert!(
        !printed.contains(&first_pair.1),
        "the secret is not in the log: {printed}"
    );
    assert!(
        printed.contains(&format!(
            "export AWS_SECRET_ACCESS_KEY=...   # not written to a log: the secret_access_key in {}",
            dev.connection_file().display()
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("AWS_ENDPOINT_URL={}", dev.endpoint())),
        "{printed}"
    );

    // The printed pair works with the aws CLI; a wrong secret does not.
    let clusters = dev.aws_json(&["ecs", "list-clusters"]);
    assert!(
        clusters.to_string().contains("cluster/default"),
        "{clusters}"
    );
    let wrong = dev.aws_as(&["ecs", "list-clusters"], &first_pair.0, "guessed");
    assert!(!wrong.status.success(), "a wrong secret is refused");

    // berth finds everything in the data dir, and does not sign with the exported
    // AWS keys, which berth does not know.
    let ps = berth_ps_with_data_dir_only(&dev);
    assert!(
        ps.status.success(),
        "berth ps --data-dir: {}",
        String::from_utf8_lossy(&ps.stderr)
    );

    // A restart keeps the pair: nothing a user pasted stops working. It also
    // tightens a data dir that an older berth left open to others.
    dev.kill();
    std::fs::set_permissions(dev.data_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&store_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    dev.spawn();
    assert_eq!(mode_of(&store_file), 0o600);
    assert_eq!(mode_of(dev.data_dir.path()), 0o700);
    let connection: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dev.connection_file()).unwrap()).unwrap();
    assert_eq!(connection["access_key_id"], first_pair.0.as_str());
    assert_eq!(connection["secret_access_key"], first_pair.1.as_str());
    dev.aws_json(&["ecs", "list-clusters"]);
    let ps = berth_ps_with_data_dir_only(&dev);
    assert!(
        ps.status.success(),
        "berth ps after a restart: {}",
        String::from_utf8_lossy(&ps.stderr)
    );
}

/// A `berth` command with no endpoint, keys or data dir of its own: everything comes
/// from the environment given.
fn bare_berth(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BERTH_DATA_DIR", "/nonexistent/berth-test-data")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run berth")
}

#[test]
fn one_aws_profile_points_the_aws_cli_boto3_and_berth_at_berth_dev() {
    let dev = support::Dev::start();
    dev.aws_json(&["ecs", "create-cluster", "--cluster-name", "from-profile"]);
    let files = tempfile::tempdir().unwrap();
    let config = files.path().join("config");
    let credentials = files.path().join("credentials");
    // The profile's own endpoint_url is wrong on purpose: the services section's ecs
    // endpoint beats it, for every client.
    std::fs::write(
        &config,
        format!(
            "[default]\nregion = eu-west-1\n\n[profile berth]\nregion = us-east-1\n\
             endpoint_url = http://127.0.0.1:1\nservices = berth-local\n\n\
             [services berth-local]\necs =\n  endpoint_url = {}\n",
            dev.endpoint()
        ),
    )
    .unwrap();
    std::fs::write(
        &credentials,
        format!(
            "[berth]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            dev.access_key_id, dev.secret_access_key
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let credentials = credentials.to_str().unwrap();
    let profile_env = [
        ("AWS_CONFIG_FILE", config),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials),
        ("AWS_PROFILE", "berth"),
    ];

    let v1 = Command::new(support::aws_v1())
        .args(["ecs", "list-clusters", "--output", "json"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_DEFAULT_REGION")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(profile_env)
        .stdin(Stdio::null())
        .output()
        .expect("run aws v1");
    let v1_out = String::from_utf8_lossy(&v1.stdout);
    assert!(
        v1.status.success() && v1_out.contains("cluster/from-profile"),
        "aws v1 through the profile: {v1_out} {}",
        String::from_utf8_lossy(&v1.stderr)
    );

    let boto3 = support::python_boto3(
        "import boto3; print(boto3.client('ecs').list_clusters()['clusterArns'])",
        &[],
        &profile_env,
    );
    let boto3_out = String::from_utf8_lossy(&boto3.stdout);
    assert!(
        boto3.status.success() && boto3_out.contains("cluster/from-profile"),
        "boto3 through the profile: {boto3_out} {}",
        String::from_utf8_lossy(&boto3.stderr)
    );

    let ps = bare_berth(&["ps", "--cluster", "from-profile"], &profile_env);
    assert!(
        ps.status.success(),
        "berth ps through the profile: {}",
        String::from_utf8_lossy(&ps.stderr)
    );
    // `--profile` names it as well as AWS_PROFILE; `default` points nowhere near.
    let named = bare_berth(
        &["ps", "--profile", "berth", "--cluster", "from-profile"],
        &profile_env[..2],
    );
    assert!(
        named.status.success(),
        "berth ps --profile berth: {}",
        String::from_utf8_lossy(&named.stderr)
    );
    let ignored = bare_berth(
        &["ps", "--cluster", "from-profile"],
        &[
            profile_env[0],
            profile_env[1],
            profile_env[2],
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ("BERTH_ACCESS_KEY_ID", &dev.access_key_id),
            ("BERTH_SECRET_ACCESS_KEY", &dev.secret_access_key),
        ],
    );
    let ignored_err = String::from_utf8_lossy(&ignored.stderr);
    assert!(
        !ignored.status.success() && ignored_err.contains("127.0.0.1:9650"),
        "with configured endpoints ignored berth goes to its default endpoint, not berth dev's: {ignored_err}"
    );

    // AWS_ENDPOINT_URL, with berth's own key variables.
    let by_variable = bare_berth(
        &["ps", "--cluster", "from-profile"],
        &[
            ("AWS_ENDPOINT_URL", &dev.endpoint()),
            ("BERTH_ACCESS_KEY_ID", &dev.access_key_id),
            ("BERTH_SECRET_ACCESS_KEY", &dev.secret_access_key),
        ],
    );
    assert!(
        by_variable.status.success(),
        "berth ps with AWS_ENDPOINT_URL: {}",
        String::from_utf8_lossy(&by_variable.stderr)
    );
}
