//! The server side: check a request's `Authorization` header.

use std::collections::HashMap;
use std::fmt;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::canonical::{
    canonical_request, credential_scope, find_header, format_amz_date, parse_amz_date, sha256_hex,
    signature, string_to_sign, UNSIGNED_PAYLOAD,
};
use crate::{AuthError, Credentials, SignableRequest, ALGORITHM, MAX_CLOCK_SKEW};

/// Bounds on what a client may make the server hash and compare: far above what any
/// real client sends, low enough that a hostile header costs nothing.
const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;
const MAX_SIGNED_HEADERS: usize = 64;

/// Who signed a request, and the scope they signed it for. berth takes the region of
/// its ARNs from `region`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
}

/// Longest region name accepted in a credential scope; AWS's longest is 14 characters.
const MAX_REGION_LEN: usize = 32;

/// Verifies SigV4 signatures against a fixed set of access keys, for the services the
/// server says it serves.
#[derive(Clone)]
pub struct Verifier {
    secrets_by_access_key_id: HashMap<String, String>,
    /// The SigV4 service names a request may be scoped to (`ecs`, ...); empty until
    /// [`Verifier::serving`] is called, and then nothing verifies.
    services: Vec<String>,
}

impl Verifier {
    /// A verifier for these access key ids and their secrets. It accepts no service
    /// until given the list with [`Verifier::serving`].
    pub fn new(secrets_by_access_key_id: HashMap<String, String>) -> Self {
        Self {
            secrets_by_access_key_id,
            services: Vec::new(),
        }
    }

    /// The same verifier, accepting credential scopes for these services (the server
    /// passes every API it serves, e.g. `ecs` and `elasticloadbalancing`).
    pub fn serving<S: AsRef<str>>(mut self, services: &[S]) -> Self {
        self.services = services.iter().map(|s| s.as_ref().to_string()).collect();
        self
    }

    /// The services this verifier accepts.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// A verifier that knows exactly one key pair.
    pub fn from_credentials(credentials: Credentials) -> Self {
        Self::new(HashMap::from([(
            credentials.access_key_id,
            credentials.secret_access_key,
        )]))
    }

    /// Checks what needs no body: an `Authorization` header that parses, a credential
    /// scope for one of `services` (the services of the APIs `req` may address, each one
    /// of [`Verifier::services`]) in a valid region, a matching `X-Amz-Date` within
    /// [`MAX_CLOCK_SKEW`] of `now`, a signed `x-amz-target` when there is one, and a known
    /// access key id. A server runs this before reading the body, so neither an
    /// anonymous client nor one replaying an old head can make it read one.
    /// `req.body` is not looked at.
    pub fn verify_head(
        &self,
        req: &SignableRequest<'_>,
        now: OffsetDateTime,
        services: &[&str],
    ) -> Result<(), AuthError> {
        self.check_head(req, now, services).map(|_| ())
    }

    /// Checks everything [`Verifier::verify_head`] does, then `req`'s signature over its
    /// body for `service`.
    pub fn verify(
        &self,
        req: &SignableRequest<'_>,
        now: OffsetDateTime,
        service: &str,
    ) -> Result<VerifiedRequest, AuthError> {
        let head = self.check_head(req, now, &[service])?;
        let parsed = &head.parsed;

        let payload_hash = payload_hash(req)?;
        let canonical = canonical_request(req, &parsed.signed_headers, &payload_hash);
        let scope = credential_scope(parsed.scope_date, parsed.region, parsed.service);
        let expected = signature(
            head.secret,
            parsed.scope_date,
            parsed.region,
            parsed.service,
            &string_to_sign(head.amz_date, &scope, &canonical),
        );
        let provided = parsed.signature.to_ascii_lowercase();
        if !bool::from(expected.as_bytes().ct_eq(provided.as_bytes())) {
            return Err(AuthError::InvalidSignature);
        }
        Ok(VerifiedRequest {
            access_key_id: parsed.access_key_id.to_string(),
            region: parsed.region.to_string(),
            service: parsed.service.to_string(),
        })
    }

    fn check_head<'r>(
        &'r self,
        req: &SignableRequest<'r>,
        now: OffsetDateTime,
        services: &[&str],
    ) -> Result<CheckedHead<'r>, AuthError> {
        let authorization = authorization_header(req)?;
        let parsed = ParsedAuthorization::parse(authorization)?;
        self.check_scope(&parsed, services)?;

        let amz_date = find_header(req.headers, "x-amz-date").ok_or_else(|| {
            malformed(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            )
        })?;
        let signed_at = parse_amz_date(amz_date)
            .ok_or_else(|| malformed("X-Amz-Date must have the form YYYYMMDD'T'HHMMSS'Z'."))?;
        let amz_day = amz_date.get(..8).unwrap_or(amz_date);
        if parsed.scope_date != amz_day {
            return Err(AuthError::Malformed(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{amz_day}', from '{amz_date}'.",
                parsed.scope_date
            )));
        }
        // The target names the action: unsigned, it could be swapped in transit.
        if find_header(req.headers, "x-amz-target").is_some()
            && !parsed
                .signed_headers
                .iter()
                .any(|name| name == "x-amz-target")
        {
            return Err(malformed(
                "SignedHeaders must include 'x-amz-target' when the request has one.",
            ));
        }

        let secret = self
            .secrets_by_access_key_id
            .get(parsed.access_key_id)
            .ok_or(AuthError::UnrecognizedClient)?;
        check_clock_skew(signed_at, now)?;
        Ok(CheckedHead {
            parsed,
            amz_date,
            secret,
        })
    }

    /// The scope's service must be one of `expected`, each one berth serves, and its
    /// region must look like an AWS region (it ends up in every ARN the request creates).
    fn check_scope(
        &self,
        parsed: &ParsedAuthorization<'_>,
        expected: &[&str],
    ) -> Result<(), AuthError> {
        let served = |name: &str| self.services.iter().any(|s| s == name);
        let quoted = |names: &mut dyn Iterator<Item = &str>| {
            names
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !served(parsed.service) {
            return Err(AuthError::WrongScope(format!(
                "Credential should be scoped to a service berth serves ({}), not '{}'.",
                quoted(&mut self.services.iter().map(String::as_str)),
                parsed.service
            )));
        }
        if !expected.contains(&parsed.service) {
            return Err(AuthError::WrongScope(format!(
                "Credential should be scoped to correct service: {}, not '{}'.",
                quoted(&mut expected.iter().copied()),
                parsed.service
            )));
        }
        if !is_region_name(parsed.region) {
            return Err(AuthError::WrongScope(format!(
                "Credential should be scoped to a valid region: lower-case letters, digits and \
                 single hyphens, at most {MAX_REGION_LEN} characters, like 'us-east-1'."
            )));
        }
        Ok(())
    }
}

/// What [`Verifier::check_head`] found, for the signature check that follows.
struct CheckedHead<'r> {
    parsed: ParsedAuthorization<'r>,
    amz_date: &'r str,
    secret: &'r str,
}

/// `us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`: a lower-case letter, then lower-case
/// letters and digits in groups joined by single hyphens.
fn is_region_name(region: &str) -> bool {
    region.len() <= MAX_REGION_LEN
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region.split('-').all(|group| {
            !group.is_empty()
                && group
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl From<Credentials> for Verifier {
    fn from(credentials: Credentials) -> Self {
        Self::from_credentials(credentials)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut access_key_ids: Vec<&String> = self.secrets_by_access_key_id.keys().collect();
        access_key_ids.sort();
        f.debug_struct("Verifier")
            .field("access_key_ids", &access_key_ids)
            .finish_non_exhaustive()
    }
}

fn malformed(message: &str) -> AuthError {
    AuthError::Malformed(message.to_string())
}

/// The one `Authorization` header, or why there is none worth parsing.
fn authorization_header<'a>(req: &SignableRequest<'a>) -> Result<&'a str, AuthError> {
    let mut values = req
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.as_str());
    let Some(value) = values.next() else {
        return Err(missing_authorization(req));
    };
    if values.next().is_some() {
        return Err(malformed("Only one Authorization header is allowed."));
    }
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(AuthError::Malformed(format!(
            "Authorization header is longer than {MAX_AUTHORIZATION_LEN} bytes."
        )));
    }
    Ok(value)
}

/// An anonymous request is `MissingAuthenticationToken`; one that tried to sign some
/// other way is told what berth expects instead.
fn missing_authorization(req: &SignableRequest<'_>) -> AuthError {
    let presigned = req.query.split('&').any(|pair| {
        let key = pair.split_once('=').map_or(pair, |(key, _)| key);
        key.eq_ignore_ascii_case("X-Amz-Signature") || key.eq_ignore_ascii_case("X-Amz-Algorithm")
    });
    if presigned {
        malformed(
            "Presigned query-string authentication is not supported: send an Authorization header.",
        )
    } else if find_header(req.headers, "x-amz-date").is_some() {
        malformed("Request has an X-Amz-Date header but no Authorization header.")
    } else {
        AuthError::MissingAuthenticationToken
    }
}

/// The body hash to sign: sha256 of the body, which an `x-amz-content-sha256` header,
/// when sent, must agree with. Unsigned payloads are refused: for ECS the body is the
/// whole request, so a signature that does not cover it proves nothing.
fn payload_hash(req: &SignableRequest<'_>) -> Result<String, AuthError> {
    let computed = sha256_hex(req.body);
    match find_header(req.headers, "x-amz-content-sha256") {
        None => Ok(computed),
        Some(UNSIGNED_PAYLOAD) => Err(malformed(
            "x-amz-content-sha256: UNSIGNED-PAYLOAD is not accepted: the body must be signed.",
        )),
        Some(sent) if sent.eq_ignore_ascii_case(&computed) => Ok(sent.to_string()),
        Some(_) => Err(AuthError::InvalidSignature),
    }
}

fn check_clock_skew(signed_at: OffsetDateTime, now: OffsetDateTime) -> Result<(), AuthError> {
    // Subtracting two instants cannot overflow; shifting `now` by the skew could in
    // theory, hence the checked forms for the message.
    let offset = signed_at - now;
    let signed = format_amz_date(signed_at);
    let now_text = format_amz_date(now);
    if offset < -MAX_CLOCK_SKEW {
        let earliest = now.checked_sub(MAX_CLOCK_SKEW).unwrap_or(now);
        return Err(AuthError::SkewedClock(format!(
            "Signature expired: {signed} is now earlier than {} ({now_text} - 15 min.)",
            format_amz_date(earliest)
        )));
    }
    if offset > MAX_CLOCK_SKEW {
        let latest = now.checked_add(MAX_CLOCK_SKEW).unwrap_or(now);
        return Err(AuthError::SkewedClock(format!(
            "Signature not yet current: {signed} is still later than {} ({now_text} + 15 min.)",
            format_amz_date(latest)
        )));
    }
    Ok(())
}

/// The parts of `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=HEX`.
struct ParsedAuthorization<'a> {
    access_key_id: &'a str,
    scope_date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<String>,
    signature: &'a str,
}

impl<'a> ParsedAuthorization<'a> {
    fn parse(header: &'a str) -> Result<Self, AuthError> {
        let rest = header
            .strip_prefix(ALGORITHM)
            .filter(|rest| rest.starts_with(char::is_whitespace))
            .ok_or_else(|| {
                malformed("Authorization header must use the AWS4-HMAC-SHA256 algorithm.")
            })?;

        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for component in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (key, value) = component.split_once('=').ok_or_else(|| {
                malformed("Authorization header components must have the form Key=Value.")
            })?;
            let slot = match key.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                // Unknown components are ignored, as AWS does.
                _ => continue,
            };
            if slot.replace(value.trim()).is_some() {
                return Err(AuthError::Malformed(format!(
                    "Authorization header has more than one '{}' parameter.",
                    key.trim()
                )));
            }
        }
        let credential = credential
            .ok_or_else(|| malformed("Authorization header requires 'Credential' parameter."))?;
        let signed_headers = signed_headers
            .ok_or_else(|| malformed("Authorization header requires 'SignedHeaders' parameter."))?;
        let signature = signature
            .ok_or_else(|| malformed("Authorization header requires 'Signature' parameter."))?;

        let (access_key_id, scope_date, region, service) = parse_credential(credential)?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("Signature must be 64 hexadecimal digits."));
        }
        Ok(Self {
            access_key_id,
            scope_date,
            region,
            service,
            signed_headers: parse_signed_headers(signed_headers)?,
            signature,
        })
    }
}

/// `AKID/YYYYMMDD/REGION/SERVICE/aws4_request`, split into its four variable parts.
fn parse_credential(credential: &str) -> Result<(&str, &str, &str, &str), AuthError> {
    let invalid = || {
        malformed(
            "Credential must have the form <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request.",
        )
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(invalid());
    };
    let well_formed = !access_key_id.is_empty()
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && !service.is_empty()
        && *terminator == "aws4_request";
    if !well_formed {
        return Err(invalid());
    }
    Ok((access_key_id, date, region, service))
}

/// The `SignedHeaders` list, lower-cased, in the order the client listed them (which
/// is the order it signed them in). `host` must be among them: without it a signature
/// could be replayed against another server.
fn parse_signed_headers(list: &str) -> Result<Vec<String>, AuthError> {
    let names: Vec<String> = list.split(';').map(str::to_ascii_lowercase).collect();
    if names.len() > MAX_SIGNED_HEADERS {
        return Err(AuthError::Malformed(format!(
            "SignedHeaders lists more than {MAX_SIGNED_HEADERS} headers."
        )));
    }
    if names
        .iter()
        .any(|name| name.is_empty() || name.trim() != name)
    {
        return Err(malformed(
            "SignedHeaders must be a ';'-separated list of header names.",
        ));
    }
    if !names.iter().any(|name| name == "host") {
        return Err(malformed("SignedHeaders must include 'host'."));
    }
    Ok(names)
}
