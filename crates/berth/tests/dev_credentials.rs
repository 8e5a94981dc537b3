//! `berth dev` with no keys given: it generates a pair on first start, keeps it in its
//! data dir (mode 0600), prints the `export AWS_...` lines a user pastes, keeps the same
//! pair across a restart, and `berth` finds endpoint and keys in the data dir alone,
//! even with other AWS keys in the environment.

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
    assert!(
        printed.contains(&format!("export AWS_SECRET_ACCESS_KEY={}", first_pair.1)),
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
