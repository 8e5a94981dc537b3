//! SigV4: the verifier's parsing and canonicalization on arbitrary requests must never
//! panic, and a request that berth's own signer signed must verify: signer and verifier
//! canonicalize alike for any path, query, header and body.
//!
//! Input: `method\npath\nquery\nname: value\n...\n\nbody`.
#![no_main]

use berth_auth::{sign_headers, Credentials, SignableRequest, Verifier};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "AKIAFUZZFUZZFUZZFUZZ";
const SECRET: &str = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

/// A header berth's signer may carry as it is: a token name, a printable value.
fn signable_header(name: &str, value: &str) -> bool {
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    let reserved = [
        "authorization",
        "host",
        "x-amz-date",
        "x-amz-content-sha256",
    ]
    .iter()
    .any(|r| name.eq_ignore_ascii_case(r));
    name_ok && !reserved && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.split('\n');
    let method = lines.next().unwrap_or("POST");
    let path = lines.next().unwrap_or("/");
    let query = lines.next().unwrap_or("");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_string(), value.trim().to_string()))
        .collect();
    let verifier = Verifier::from_credentials(Credentials::new(KEY, SECRET))
        .serving(&["ecs", "elasticloadbalancing"]);

    // Whatever arrives, the verifier answers without panicking.
    let arbitrary = SignableRequest {
        method,
        path,
        query,
        headers: &headers,
        body: body.as_bytes(),
    };
    let _ = verifier.verify_head(&arbitrary, now(), &["ecs", "elasticloadbalancing"]);
    let _ = verifier.verify(&arbitrary, now(), "ecs");

    // What berth's signer signs, berth's verifier accepts. (`?` and `#` would end
    // the path on the wire.)
    let wire_path = |b: u8| (0x21..0x7f).contains(&b) && b != b'?' && b != b'#';
    if method != "POST" || !path.starts_with('/') || !path.bytes().all(wire_path) {
        return;
    }
    let mut own: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(name, value)| signable_header(name, value))
        .collect();
    own.sort_by_key(|(name, _)| name.to_ascii_lowercase());
    own.dedup_by(|a, b| a.0.eq_ignore_ascii_case(&b.0));
    let signed = sign_headers(
        &Credentials::new(KEY, SECRET),
        "us-east-1",
        "ecs",
        now(),
        "POST",
        "127.0.0.1:9650",
        path,
        own,
        body.as_bytes(),
    );
    let request = SignableRequest {
        method: "POST",
        path,
        query: "",
        headers: &signed,
        body: body.as_bytes(),
    };
    if let Err(error) = verifier.verify(&request, now(), "ecs") {
        panic!("berth's own signature was refused: {error} (path {path:?}, headers {signed:?})");
    }
});
