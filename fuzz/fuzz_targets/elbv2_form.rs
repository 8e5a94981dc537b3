//! awsQuery (ELBv2) form bodies through berth's own dispatch: the form decoder, each
//! action's FromForm, the pure action and the store. No input may panic; a refusal is
//! a 4xx that stores nothing; whatever is accepted reads back.
#![no_main]

use berth_fuzz::{assert_store_reopens, block_on, seeded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (control_plane, backend) = seeded();
    let before = *control_plane.store.watch().borrow();
    let answer = block_on(berth_server::dispatch_query(
        &control_plane,
        "us-east-1",
        data,
        "fuzz",
    ));
    if answer.status == 200 {
        assert_store_reopens(&backend);
    } else {
        assert!(
            (400..500).contains(&answer.status),
            "{}: {}",
            answer.status,
            answer.document
        );
        assert_eq!(
            *control_plane.store.watch().borrow(),
            before,
            "refused but stored something: {}",
            answer.document
        );
    }
});
