//! `DockerRuntime::connect` on an engine that is not there says where it looked and
//! what to check. Its own test binary: it changes DOCKER_HOST for the whole process.

use berth_runtime::{DockerRuntime, RuntimeError};

#[tokio::test]
async fn connect_to_a_missing_socket_is_unreachable_with_a_hint() {
    std::env::set_var("DOCKER_HOST", "unix:///nonexistent/berth-test/docker.sock");
    match DockerRuntime::connect().await {
        Err(RuntimeError::Unreachable(message)) => {
            assert!(
                message.contains("unix:///nonexistent/berth-test/docker.sock"),
                "names the socket: {message}"
            );
            assert!(
                message.contains("DOCKER_HOST"),
                "says how to fix: {message}"
            );
        }
        Err(other) => panic!("expected Unreachable, got {other:?}"),
        Ok(_) => panic!("connected to a socket that does not exist"),
    }
}
