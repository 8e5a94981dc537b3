//! Vectors from the AWS SigV4 test suite and from botocore itself, plus the failure
//! cases the server must tell apart.
//!
//! botocore vectors were generated with botocore 1.43 by
//! ```text
//! python3 -c '
//! import datetime, botocore.auth as a
//! from botocore.credentials import Credentials
//! from botocore.awsrequest import AWSRequest
//! a.get_current_datetime = lambda *x, **k: datetime.datetime(2024, 1, 1)
//! r = AWSRequest(method="POST", url="http://127.0.0.1:9650/", data=b"{}", headers={
//!     "Content-Type": "application/x-amz-json-1.1",
//!     "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters"})
//! a.SigV4Auth(Credentials("AKIDBERTHTEST", "berth-test-secret-key-0123456789abcdef"),
//!             "ecs", "us-east-1").add_auth(r)
//! print(r.headers["Authorization"])'
//! ```
//! (the other vectors change only the arguments; the suite's two were checked with it too).

use std::collections::HashMap;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::{
    sign, sign_headers, AuthError, Credentials, SignableRequest, VerifiedRequest, Verifier,
};

const SUITE_DATE: &str = "20150830T123600Z";
const SUITE_NOW: OffsetDateTime = datetime!(2015-08-30 12:36:00 UTC);
const ECS_NOW: OffsetDateTime = datetime!(2024-01-01 00:00:00 UTC);

fn suite_credentials() -> Credentials {
    Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
}

fn ecs_credentials() -> Credentials {
    Credentials::new("AKIDBERTHTEST", "berth-test-secret-key-0123456789abcdef")
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn post<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> SignableRequest<'a> {
    SignableRequest {
        method: "POST",
        path: "/",
        query: "",
        headers,
        body,
    }
}

/// The request botocore (and so `aws ecs list-clusters`) sends, as the server sees it.
fn botocore_list_clusters() -> Vec<(String, String)> {
    headers(&[
        ("Host", "127.0.0.1:9650"),
        ("Accept-Encoding", "identity"),
        ("Content-Type", "application/x-amz-json-1.1"),
        (
            "X-Amz-Target",
            "AmazonEC2ContainerServiceV20141113.ListClusters",
        ),
        (
            "User-Agent",
            "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22",
        ),
        ("X-Amz-Date", "20240101T000000Z"),
        ("Content-Length", "2"),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20240101/us-east-1/ecs/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=d70eab20e89d24fe043c5e963b4319948f395e4cd0c1a0290a8119e2850adf85",
        ),
    ])
}

fn ecs_verifier() -> Verifier {
    Verifier::from_credentials(ecs_credentials()).serving(&["ecs"])
}

fn signed_ecs_request(body: &[u8], now: OffsetDateTime) -> Vec<(String, String)> {
    sign_headers(
        &ecs_credentials(),
        "eu-west-1",
        "ecs",
        now,
        "POST",
        "localhost:9650",
        "/",
        headers(&[
            ("Content-Type", "application/x-amz-json-1.1"),
            (
                "X-Amz-Target",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
            ),
        ]),
        body,
    )
}

#[test]
fn suite_get_vanilla() {
    let request_headers = headers(&[
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", SUITE_DATE),
    ]);
    let request = SignableRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &request_headers,
        body: b"",
    };
    let authorization = sign(
        &suite_credentials(),
        "us-east-1",
        "service",
        SUITE_DATE,
        &request,
        &["host", "x-amz-date"],
    );
    assert_eq!(
        authorization,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn suite_post_x_www_form_urlencoded() {
    let mut request_headers = headers(&[
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", SUITE_DATE),
    ]);
    let request = post(&request_headers, b"Param1=value1");
    let authorization = sign(
        &suite_credentials(),
        "us-east-1",
        "service",
        SUITE_DATE,
        &request,
        &["Content-Type", "Host", "X-Amz-Date"],
    );
    assert!(authorization.ends_with(
        "SignedHeaders=content-type;host;x-amz-date, \
         Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
    ));
    request_headers.push(("Authorization".to_string(), authorization));
    let verifier = Verifier::from_credentials(suite_credentials()).serving(&["service"]);
    let verified = verifier.verify(
        &post(&request_headers, b"Param1=value1"),
        SUITE_NOW,
        "service",
    );
    assert_eq!(
        verified,
        Ok(VerifiedRequest {
            access_key_id: "AKIDEXAMPLE".to_string(),
            region: "us-east-1".to_string(),
            service: "service".to_string(),
        })
    );
}

#[test]
fn botocore_signed_query_and_encoded_path_verify() {
    // botocore: GET http://example.amazonaws.com/a/b%20c?b=2&a=x%20y&a=1&c
    let request_headers = headers(&[
        ("host", "example.amazonaws.com"),
        ("x-amz-date", SUITE_DATE),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=df2c442ad64a35906abc4a4a475e8431c3a4ae0044db5c75c71da5eeaaa06686",
        ),
    ]);
    let request = SignableRequest {
        method: "GET",
        path: "/a/b%20c",
        query: "b=2&a=x%20y&a=1&c",
        headers: &request_headers,
        body: b"",
    };
    let verifier = Verifier::from_credentials(suite_credentials()).serving(&["service"]);
    assert!(verifier.verify(&request, SUITE_NOW, "service").is_ok());
}

#[test]
fn botocore_signed_ecs_request_verifies() {
    let request_headers = botocore_list_clusters();
    let verified = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
    assert_eq!(
        verified,
        Ok(VerifiedRequest {
            access_key_id: "AKIDBERTHTEST".to_string(),
            region: "us-east-1".to_string(),
            service: "ecs".to_string(),
        })
    );
}

#[test]
fn sign_headers_round_trips_through_verify() {
    let request_headers = signed_ecs_request(b"{}", ECS_NOW);
    let names: Vec<&str> = request_headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "X-Amz-Target",
            "host",
            "x-amz-date",
            "authorization"
        ]
    );
    let verified = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
    assert_eq!(verified.map(|v| v.region), Ok("eu-west-1".to_string()));
}

#[test]
fn sign_headers_matches_botocore() {
    let request_headers = sign_headers(
        &ecs_credentials(),
        "us-east-1",
        "ecs",
        ECS_NOW,
        "POST",
        "127.0.0.1:9650",
        "/",
        headers(&[
            ("Content-Type", "application/x-amz-json-1.1"),
            (
                "X-Amz-Target",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
            ),
            ("Host", "stale:1"),
        ]),
        b"{}",
    );
    let expected = botocore_list_clusters();
    let authorization = |list: &[(String, String)]| {
        list.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value.clone())
    };
    assert_eq!(authorization(&request_headers), authorization(&expected));
}

#[test]
fn wrong_secret_is_invalid_signature() {
    let request_headers = botocore_list_clusters();
    let verifier = Verifier::from_credentials(Credentials::new("AKIDBERTHTEST", "another-secret"))
        .serving(&["ecs"]);
    let error = verifier.verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
    assert_eq!(error, Err(AuthError::InvalidSignature));
    let error = AuthError::InvalidSignature;
    assert_eq!(
        (error.code(), error.http_status()),
        ("InvalidSignatureException", 403)
    );
    assert!(error.to_string().starts_with(
        "The request signature we calculated does not match the signature you provided."
    ));
}

#[test]
fn unknown_access_key_is_unrecognized_client() {
    let request_headers = botocore_list_clusters();
    let verifier = Verifier::new(HashMap::from([("AKIDOTHER".to_string(), "x".to_string())]))
        .serving(&["ecs"]);
    let error = verifier.verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
    assert_eq!(error, Err(AuthError::UnrecognizedClient));
    let error = AuthError::UnrecognizedClient;
    assert_eq!(
        (error.code(), error.http_status()),
        ("UnrecognizedClientException", 403)
    );
}

#[test]
fn anonymous_request_is_missing_authentication_token() {
    let request_headers = headers(&[
        ("Host", "127.0.0.1:9650"),
        ("Content-Type", "application/x-amz-json-1.1"),
    ]);
    let error = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
    assert_eq!(error, Err(AuthError::MissingAuthenticationToken));
    let error = AuthError::MissingAuthenticationToken;
    assert_eq!(
        (error.code(), error.http_status()),
        ("MissingAuthenticationTokenException", 403)
    );
}

#[test]
fn tampered_body_or_header_is_invalid_signature() {
    let request_headers = botocore_list_clusters();
    let error = ecs_verifier().verify(&post(&request_headers, b"{ }"), ECS_NOW, "ecs");
    assert_eq!(error, Err(AuthError::InvalidSignature));

    let mut retargeted = botocore_list_clusters();
    for (name, value) in &mut retargeted {
        if name == "X-Amz-Target" {
            *value = "AmazonEC2ContainerServiceV20141113.DeleteCluster".to_string();
        }
    }
    let error = ecs_verifier().verify(&post(&retargeted, b"{}"), ECS_NOW, "ecs");
    assert_eq!(error, Err(AuthError::InvalidSignature));
}

#[test]
fn content_sha256_header_must_match_the_body() {
    let mut request_headers = botocore_list_clusters();
    request_headers.push(("X-Amz-Content-SHA256".to_string(), "ab".repeat(32)));
    let error = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
    assert_eq!(error, Err(AuthError::InvalidSignature));

    let mut unsigned = botocore_list_clusters();
    unsigned.push((
        "x-amz-content-sha256".to_string(),
        "UNSIGNED-PAYLOAD".to_string(),
    ));
    let error = ecs_verifier().verify(&post(&unsigned, b"{}"), ECS_NOW, "ecs");
    assert!(matches!(error, Err(AuthError::Malformed(m)) if m.contains("UNSIGNED-PAYLOAD")));

    // The right hash, sent but not signed, changes nothing.
    let mut hashed = botocore_list_clusters();
    hashed.push((
        "x-amz-content-sha256".to_string(),
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".to_string(),
    ));
    assert!(ecs_verifier()
        .verify(&post(&hashed, b"{}"), ECS_NOW, "ecs")
        .is_ok());
}

#[test]
fn clock_skew_of_fourteen_minutes_passes_and_sixteen_fails() {
    let request_headers = botocore_list_clusters();
    let request = post(&request_headers, b"{}");
    for minutes in [-14, 14, -15, 15] {
        let now = ECS_NOW + Duration::minutes(minutes);
        assert!(
            ecs_verifier().verify(&request, now, "ecs").is_ok(),
            "{minutes} min"
        );
    }

    let late = ecs_verifier().verify(&request, ECS_NOW + Duration::minutes(16), "ecs");
    assert_eq!(
        late,
        Err(AuthError::SkewedClock(
            "Signature expired: 20240101T000000Z is now earlier than 20240101T000100Z \
             (20240101T001600Z - 15 min.)"
                .to_string()
        ))
    );
    let early = ecs_verifier().verify(&request, ECS_NOW - Duration::minutes(16), "ecs");
    assert!(
        matches!(&early, Err(AuthError::SkewedClock(m)) if m.starts_with("Signature not yet current"))
    );
    let error = early.err().unwrap_or(AuthError::InvalidSignature);
    assert_eq!(
        (error.code(), error.http_status()),
        ("InvalidSignatureException", 403)
    );
}

#[test]
fn header_names_match_in_any_case_and_values_fold_whitespace() {
    let signed = signed_ecs_request(b"{}", ECS_NOW);
    let received: Vec<(String, String)> = signed
        .into_iter()
        .map(|(name, value)| match name.to_ascii_lowercase().as_str() {
            "x-amz-target" => ("x-AMZ-target".to_string(), format!("  {value}  ")),
            _ => (name.to_ascii_uppercase(), value),
        })
        .collect();
    assert!(ecs_verifier()
        .verify(&post(&received, b"{}"), ECS_NOW, "ecs")
        .is_ok());
}

#[test]
fn inner_whitespace_runs_sign_as_one_space_and_repeats_join_with_commas() {
    let mut request_headers = headers(&[
        ("Host", "127.0.0.1:9650"),
        ("X-Amz-Date", "20240101T000000Z"),
        ("X-Amz-Meta", "a   b\t c"),
        ("x-amz-meta", "d"),
    ]);
    let authorization = sign(
        &ecs_credentials(),
        "us-east-1",
        "ecs",
        "20240101T000000Z",
        &post(&request_headers, b""),
        &["host", "x-amz-date", "x-amz-meta"],
    );
    request_headers.push(("Authorization".to_string(), authorization.clone()));
    assert!(ecs_verifier()
        .verify(&post(&request_headers, b""), ECS_NOW, "ecs")
        .is_ok());

    // Same values, folded by hand: the signature must not change.
    let folded = headers(&[
        ("host", "127.0.0.1:9650"),
        ("x-amz-date", "20240101T000000Z"),
        ("x-amz-meta", "a b c,d"),
    ]);
    let again = sign(
        &ecs_credentials(),
        "us-east-1",
        "ecs",
        "20240101T000000Z",
        &post(&folded, b""),
        &["host", "x-amz-date", "x-amz-meta"],
    );
    assert_eq!(authorization, again);
}

#[test]
fn the_port_in_host_is_signed() {
    let mut request_headers = botocore_list_clusters();
    for (name, value) in &mut request_headers {
        if name == "Host" {
            *value = "127.0.0.1:9651".to_string();
        }
    }
    let error = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
    assert_eq!(error, Err(AuthError::InvalidSignature));
}

fn with_authorization(authorization: &str) -> Vec<(String, String)> {
    let mut request_headers = botocore_list_clusters();
    request_headers.retain(|(name, _)| name != "Authorization");
    request_headers.push(("Authorization".to_string(), authorization.to_string()));
    request_headers
}

#[test]
fn malformed_authorization_names_what_is_wrong() {
    let good_signature = "d70eab20e89d24fe043c5e963b4319948f395e4cd0c1a0290a8119e2850adf85";
    let cases: Vec<(String, &str)> = vec![
        ("Basic dXNlcjpwYXNz".to_string(), "AWS4-HMAC-SHA256"),
        ("AWS4-HMAC-SHA256".to_string(), "AWS4-HMAC-SHA256"),
        (
            format!("AWS4-HMAC-SHA256 SignedHeaders=host, Signature={good_signature}"),
            "'Credential'",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20240101/us-east-1/ecs/aws4_request, Signature={good_signature}"),
            "'SignedHeaders'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20240101/us-east-1/ecs/aws4_request, SignedHeaders=host".to_string(),
            "'Signature'",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20240101/us-east-1/aws4_request, SignedHeaders=host, Signature={good_signature}"),
            "Credential must have the form",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20240101/us-east-1/ecs/aws5_request, SignedHeaders=host, Signature={good_signature}"),
            "Credential must have the form",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20240101/us-east-1/ecs/aws4_request, SignedHeaders=content-type;x-amz-date, Signature={good_signature}"),
            "'host'",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20240101/us-east-1/ecs/aws4_request, SignedHeaders=host;;x-amz-date, Signature={good_signature}"),
            "SignedHeaders",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20240101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=zz".to_string(),
            "Signature must be",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20231231/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature={good_signature}"),
            "Date in Credential scope does not match",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential=AKIDBERTHTEST/20240101/us-east-1/ecs/aws4_request, SignedHeaders={}, Signature={good_signature}", vec!["host"; 65].join(";")),
            "more than 64",
        ),
        (format!("AWS4-HMAC-SHA256 {}", "x".repeat(9000)), "longer than 8192"),
    ];
    for (authorization, needle) in cases {
        let request_headers = with_authorization(&authorization);
        let error = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
        match error {
            Err(error @ AuthError::Malformed(_)) => {
                assert!(
                    error.to_string().contains(needle),
                    "{authorization:.80}: {error}"
                );
                assert_eq!(
                    (error.code(), error.http_status()),
                    ("IncompleteSignatureException", 400)
                );
            }
            other => panic!("{authorization:.80}: expected Malformed, got {other:?}"),
        }
    }
}

#[test]
fn missing_or_bad_amz_date_is_malformed() {
    let mut no_date = botocore_list_clusters();
    no_date.retain(|(name, _)| name != "X-Amz-Date");
    let error = ecs_verifier().verify(&post(&no_date, b"{}"), ECS_NOW, "ecs");
    assert!(matches!(error, Err(AuthError::Malformed(m)) if m.contains("X-Amz-Date")));

    let mut bad_date = botocore_list_clusters();
    for (name, value) in &mut bad_date {
        if name == "X-Amz-Date" {
            *value = "Mon, 01 Jan 2024 00:00:00 GMT".to_string();
        }
    }
    let error = ecs_verifier().verify(&post(&bad_date, b"{}"), ECS_NOW, "ecs");
    assert!(matches!(error, Err(AuthError::Malformed(m)) if m.contains("X-Amz-Date")));

    let mut date_only = botocore_list_clusters();
    date_only.retain(|(name, _)| name != "Authorization");
    let error = ecs_verifier().verify(&post(&date_only, b"{}"), ECS_NOW, "ecs");
    assert!(matches!(error, Err(AuthError::Malformed(m)) if m.contains("no Authorization header")));

    let no_headers: Vec<(String, String)> = Vec::new();
    let presigned = SignableRequest {
        query: "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
        ..post(&no_headers, b"")
    };
    let error = ecs_verifier().verify(&presigned, ECS_NOW, "ecs");
    assert!(matches!(error, Err(AuthError::Malformed(m)) if m.contains("Presigned")));
}

#[test]
fn two_authorization_headers_are_malformed() {
    let mut request_headers = botocore_list_clusters();
    let duplicate = request_headers
        .iter()
        .find(|(name, _)| name == "Authorization")
        .cloned();
    request_headers.extend(duplicate);
    let error = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
    assert!(matches!(error, Err(AuthError::Malformed(m)) if m.contains("one Authorization")));
}

#[test]
fn secrets_never_reach_debug_output_or_errors() {
    let secret = ecs_credentials().secret_access_key;
    assert!(!format!("{:?}", ecs_credentials()).contains(&secret));
    assert!(format!("{:?}", ecs_credentials()).contains("AKIDBERTHTEST"));
    assert!(!format!("{:?}", ecs_verifier()).contains(&secret));
    let request_headers = botocore_list_clusters();
    let wrong =
        Verifier::from_credentials(Credentials::new("AKIDBERTHTEST", "other")).serving(&["ecs"]);
    if let Err(error) = wrong.verify(&post(&request_headers, b"{ }"), ECS_NOW, "ecs") {
        assert!(!error.to_string().contains("other"));
        assert!(!format!("{error:?}").contains("d70eab"));
    }
}

#[test]
fn arbitrary_input_never_panics() {
    let junk = [
        "",
        "AWS4-HMAC-SHA256 ",
        "AWS4-HMAC-SHA256 ,,,",
        "AWS4-HMAC-SHA256 Credential=",
        "AWS4-HMAC-SHA256 Credential=////, SignedHeaders=;, Signature=",
        "AWS4-HMAC-SHA256 Credential=é/é/é/é/é, SignedHeaders=host, Signature=é",
        "AWS4-HMAC-SHA256\tCredential=a/b/c/d/aws4_request",
    ];
    for authorization in junk {
        let request_headers = with_authorization(authorization);
        for (path, query) in [("", ""), ("%", "%"), ("/../..", "=&=&%e9"), ("/é", "a=é")] {
            let request = SignableRequest {
                path,
                query,
                ..post(&request_headers, b"\xff")
            };
            assert!(ecs_verifier().verify(&request, ECS_NOW, "ecs").is_err());
        }
    }
}

fn signed_for(region: &str, service: &str, target: Option<&str>) -> Vec<(String, String)> {
    let mut extra = vec![(
        "Content-Type".to_string(),
        "application/x-amz-json-1.1".to_string(),
    )];
    if let Some(target) = target {
        extra.push(("X-Amz-Target".to_string(), target.to_string()));
    }
    sign_headers(
        &ecs_credentials(),
        region,
        service,
        ECS_NOW,
        "POST",
        "localhost:9650",
        "/",
        extra,
        b"{}",
    )
}

fn both_verifier() -> Verifier {
    Verifier::from_credentials(ecs_credentials()).serving(&["ecs", "elasticloadbalancing"])
}

#[test]
fn the_scope_must_name_the_service_of_the_api_addressed() {
    let list_clusters = Some("AmazonEC2ContainerServiceV20141113.ListClusters");
    let s3 = signed_for("us-east-1", "s3", list_clusters);
    let error = both_verifier().verify(&post(&s3, b"{}"), ECS_NOW, "ecs");
    let Err(AuthError::WrongScope(message)) = &error else {
        panic!("{error:?}");
    };
    assert!(
        message.contains("'ecs', 'elasticloadbalancing'"),
        "{message}"
    );
    assert!(message.contains("not 's3'"), "{message}");
    assert_eq!(
        error
            .as_ref()
            .map_err(|e| (e.code(), e.http_status()))
            .err(),
        Some(("InvalidSignatureException", 403))
    );

    // Signed for ELBv2 but sent to the ECS API (or the other way round): refused.
    let elb = signed_for("us-east-1", "elasticloadbalancing", list_clusters);
    let error = both_verifier().verify(&post(&elb, b"{}"), ECS_NOW, "ecs");
    assert!(
        matches!(&error, Err(AuthError::WrongScope(m)) if m.contains("correct service: 'ecs'")),
        "{error:?}"
    );
    let form = signed_for("us-east-1", "elasticloadbalancing", None);
    assert!(both_verifier()
        .verify(&post(&form, b"{}"), ECS_NOW, "elasticloadbalancing")
        .is_ok());
    let error = both_verifier().verify(&post(&form, b"{}"), ECS_NOW, "ecs");
    assert!(matches!(error, Err(AuthError::WrongScope(_))), "{error:?}");

    // A verifier serving nothing verifies nothing, even for the right service.
    let ecs = signed_for("us-east-1", "ecs", list_clusters);
    let nothing = Verifier::from_credentials(ecs_credentials());
    let error = nothing.verify(&post(&ecs, b"{}"), ECS_NOW, "ecs");
    assert!(matches!(error, Err(AuthError::WrongScope(_))), "{error:?}");
    // And one serving only ecs refuses a service it does not list.
    let error = ecs_verifier().verify(&post(&form, b"{}"), ECS_NOW, "elasticloadbalancing");
    assert!(matches!(error, Err(AuthError::WrongScope(_))), "{error:?}");
}

#[test]
fn the_scope_region_must_look_like_an_aws_region() {
    let target = Some("AmazonEC2ContainerServiceV20141113.ListClusters");
    for region in ["us-east-1", "us-gov-west-1", "eu-isoe-west-1", "local"] {
        let request_headers = signed_for(region, "ecs", target);
        let verified = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
        assert_eq!(verified.map(|v| v.region), Ok(region.to_string()));
    }
    let too_long = format!("us-{}", "a".repeat(30));
    for region in [
        "x:y<z>",
        "US-EAST-1",
        "us_east_1",
        "-us-east-1",
        "us-east-1-",
        "us--east-1",
        "1us-east",
        "us-east-1\u{e9}",
        too_long.as_str(),
    ] {
        let request_headers = signed_for(region, "ecs", target);
        let error = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
        let Err(AuthError::WrongScope(message)) = &error else {
            panic!("{region}: {error:?}");
        };
        assert!(message.contains("valid region"), "{message}");
        // The client's text is not echoed back: it could be anything.
        assert!(!message.contains(region), "{message}");
    }
}

#[test]
fn an_x_amz_target_header_must_be_signed() {
    let mut request_headers = headers(&[
        ("Host", "localhost:9650"),
        ("X-Amz-Date", "20240101T000000Z"),
        ("Content-Type", "application/x-amz-json-1.1"),
        (
            "X-Amz-Target",
            "AmazonEC2ContainerServiceV20141113.DeleteCluster",
        ),
    ]);
    let authorization = sign(
        &ecs_credentials(),
        "us-east-1",
        "ecs",
        "20240101T000000Z",
        &post(&request_headers, b"{}"),
        &["content-type", "host", "x-amz-date"],
    );
    request_headers.push(("Authorization".to_string(), authorization));
    let error = ecs_verifier().verify(&post(&request_headers, b"{}"), ECS_NOW, "ecs");
    let Err(AuthError::Malformed(message)) = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("'x-amz-target'"), "{message}");
    assert_eq!(
        error.err().map(|e| e.code()),
        Some("IncompleteSignatureException")
    );
    // Without the header there is nothing to sign.
    request_headers.retain(|(name, _)| name != "X-Amz-Target");
    let request = post(&request_headers, b"{}");
    assert!(ecs_verifier()
        .verify_head(&request, ECS_NOW, &["ecs"])
        .is_ok());
}

#[test]
fn verify_head_refuses_what_it_can_without_the_body() {
    let anonymous = headers(&[("Host", "127.0.0.1:9650")]);
    assert_eq!(
        ecs_verifier().verify_head(&post(&anonymous, b""), ECS_NOW, &["ecs"]),
        Err(AuthError::MissingAuthenticationToken)
    );
    let s3 = signed_for("us-east-1", "s3", None);
    assert!(matches!(
        ecs_verifier().verify_head(&post(&s3, b""), ECS_NOW, &["ecs"]),
        Err(AuthError::WrongScope(_))
    ));
    let unknown = Verifier::new(HashMap::from([("AKIDOTHER".to_string(), "x".to_string())]))
        .serving(&["ecs"]);
    let signed = signed_ecs_request(b"{}", ECS_NOW);
    assert_eq!(
        unknown.verify_head(&post(&signed, b""), ECS_NOW, &["ecs"]),
        Err(AuthError::UnrecognizedClient)
    );
    // A head whose API is not known yet may be signed for any of them.
    assert_eq!(
        both_verifier().verify_head(
            &post(&signed, b""),
            ECS_NOW,
            &["elasticloadbalancing", "ecs"]
        ),
        Ok(())
    );
    assert!(matches!(
        both_verifier().verify_head(&post(&signed, b""), ECS_NOW, &["elasticloadbalancing"]),
        Err(AuthError::WrongScope(_))
    ));
    // A good head passes before the body is there; the body is checked by verify.
    assert_eq!(
        ecs_verifier().verify_head(&post(&signed, b""), ECS_NOW, &["ecs"]),
        Ok(())
    );
    assert_eq!(
        ecs_verifier()
            .verify(&post(&signed, b"{ }"), ECS_NOW, "ecs")
            .err(),
        Some(AuthError::InvalidSignature)
    );
}

#[test]
fn verify_head_refuses_a_head_signed_too_long_ago_or_ahead() {
    // A replayed head (or one from a skewed clock) is refused before any body is read.
    let signed = signed_ecs_request(b"{}", ECS_NOW);
    let head = post(&signed, b"");
    for minutes in [-15, 15] {
        assert_eq!(
            ecs_verifier().verify_head(&head, ECS_NOW + Duration::minutes(minutes), &["ecs"]),
            Ok(()),
            "{minutes} min"
        );
    }
    let late = ecs_verifier().verify_head(&head, ECS_NOW + Duration::minutes(16), &["ecs"]);
    assert!(
        matches!(&late, Err(AuthError::SkewedClock(m)) if m.starts_with("Signature expired")),
        "{late:?}"
    );
    let early = ecs_verifier().verify_head(&head, ECS_NOW - Duration::minutes(16), &["ecs"]);
    assert!(
        matches!(&early, Err(AuthError::SkewedClock(m)) if m.starts_with("Signature not yet current")),
        "{early:?}"
    );
}
