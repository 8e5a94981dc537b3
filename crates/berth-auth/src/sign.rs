//! The client side: sign a request berth's CLI is about to send.

use time::OffsetDateTime;

use crate::canonical::{
    canonical_request, credential_scope, format_amz_date, sha256_hex, signature, string_to_sign,
};
use crate::{Credentials, SignableRequest, ALGORITHM};

/// The `Authorization` header value for `req`, signed at `amz_date`
/// (`20240101T000000Z`) over the headers named in `headers_to_sign`.
///
/// The request must already carry the `host` and `x-amz-date` headers it will be sent
/// with; [`sign_headers`] adds them for you. Names are matched case-insensitively and
/// signed in sorted order, as botocore does.
pub fn sign(
    creds: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
    req: &SignableRequest<'_>,
    headers_to_sign: &[&str],
) -> String {
    let mut signed_headers: Vec<String> = headers_to_sign
        .iter()
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    signed_headers.sort();
    signed_headers.dedup();

    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = credential_scope(date, region, service);
    let canonical = canonical_request(req, &signed_headers, &sha256_hex(req.body));
    let signature = signature(
        &creds.secret_access_key,
        date,
        region,
        service,
        &string_to_sign(amz_date, &scope, &canonical),
    );
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        creds.access_key_id,
        signed_headers.join(";")
    )
}

/// The headers to send: `headers` without any `host`, `x-amz-date` or `authorization`
/// of their own, plus `host` (`host_with_port`, exactly as the server will see it),
/// `x-amz-date` (from `now`) and `authorization`. Signs `content-type`, `host`,
/// `x-amz-date` and every `x-amz-*` header given. `path` may carry a `?query`.
#[allow(clippy::too_many_arguments)] // mirrors the parts of a request one by one
pub fn sign_headers(
    creds: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
    method: &str,
    host_with_port: &str,
    path: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now);
    let mut headers: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(name, _)| {
            !["host", "x-amz-date", "authorization"]
                .iter()
                .any(|replaced| name.eq_ignore_ascii_case(replaced))
        })
        .collect();
    headers.push(("host".to_string(), host_with_port.to_string()));
    headers.push(("x-amz-date".to_string(), amz_date.clone()));

    let names_to_sign: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| name == "content-type" || name == "host" || name.starts_with("x-amz-"))
        .collect();
    let names_to_sign: Vec<&str> = names_to_sign.iter().map(String::as_str).collect();

    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let request = SignableRequest {
        method,
        path,
        query,
        headers: &headers,
        body,
    };
    let authorization = sign(creds, region, service, &amz_date, &request, &names_to_sign);
    headers.push(("authorization".to_string(), authorization));
    headers
}
