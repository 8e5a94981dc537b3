//! awsJson requests: `ACTION\nBODY`, through berth's own dispatch (decoder, limits,
//! the pure action, the store). No input may panic; a refusal must be a 4xx that
//! stores nothing; whatever is accepted must read back when the store opens again.
#![no_main]

use berth_fuzz::{assert_store_reopens, block_on, seeded, ECS_PREFIX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let Ok(action) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = &data[split + 1..];
    let (control_plane, backend) = seeded();
    let before = *control_plane.store.watch().borrow();
    let target = format!("{ECS_PREFIX}.{action}");
    let outcome = block_on(berth_server::dispatch(
        &control_plane,
        &target,
        "us-east-1",
        body,
    ));
    match outcome {
        Ok(_) => assert_store_reopens(&backend),
        Err(error) => {
            assert!(
                (400..500).contains(&error.status),
                "{action}: {} {}",
                error.status,
                error.message
            );
            assert!(!error.message.is_empty());
            assert_eq!(
                *control_plane.store.watch().borrow(),
                before,
                "{action} was refused but stored something"
            );
        }
    }
});
