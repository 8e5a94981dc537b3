//! AWS Signature Version 4, both sides: berth's server verifies every request with a
//! [`Verifier`], berth's own CLI signs its requests with [`sign`] / [`sign_headers`].
//!
//! The canonical request is built exactly as botocore's `SigV4Auth` builds it, because
//! the `aws` CLI, boto3 and Terraform are the clients that matter. Only the
//! `Authorization` header form is supported (no presigned query strings).
//!
//! The verifier also checks what the signature alone does not: the credential scope
//! names a service the server serves (the list is the server's) and the one of the API
//! the request addresses, its region looks like an AWS region (it goes into ARNs), and
//! an `x-amz-target` header (which names the action) is signed.
//!
//! Invariant: no IO and no clock; the caller passes `now`. Secrets never appear in
//! `Debug` output or error messages.

mod canonical;
mod credentials;
mod error;
mod sign;
mod verify;

pub use credentials::Credentials;
pub use error::AuthError;
pub use sign::{sign, sign_headers};
pub use verify::{VerifiedRequest, Verifier};

/// The one algorithm berth speaks.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's `X-Amz-Date` may be from the server's clock, as in AWS.
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(15);

/// A request as it arrived (or as it will be sent), borrowed from whatever HTTP types
/// the caller uses so this crate stays free of them.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The raw path as sent on the wire, e.g. `/`.
    pub path: &'a str,
    /// The raw query string without the `?`, empty when there is none.
    pub query: &'a str,
    /// Every request header as received; names in any case, repeats allowed.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

#[cfg(test)]
mod tests;
