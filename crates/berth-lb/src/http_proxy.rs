//! The HTTP/1.1 reverse proxy: one client request -> one (or, on a safe retry, two)
//! upstream attempts, with forwarding headers, streamed bodies and `Upgrade` splicing.
//!
//! Status codes the balancer itself produces:
//! - 400 (and the connection closes) for a request RFC 9112 section 3.2 says to refuse:
//!   HTTP/1.1 without `Host`, more than one `Host`, or a `Host` that is no `host[:port]`;
//! - 503 when the target group has no healthy target, or a weighted forward has no
//!   group of weight above 0;
//! - a listener rule's fixed response, or its redirect (301/302 with `Location`);
//! - 502 when the target failed before a response head (refused, reset, bad HTTP);
//! - 504 when the target sent no response head within `upstream_response_timeout`.
//!
//! With stickiness (`crate::sticky`) the target a request's cookie names, or its client
//! address hashes to, is tried first while it is healthy, and the response carries the
//! balancer's cookie for the target that answered.
//!
//! A target that fails after the response head was forwarded (reset mid-body) cannot
//! change the status any more: the client connection is closed, so the client sees a
//! truncated response rather than a silently short one.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;

use crate::error::{ProxyError, ProxyErrorKind, RetrySafety};
use crate::listener::{InFlight, ListenerContext};
use crate::pool::{self, UpstreamRequestBody, UpstreamSender};
use crate::routing::{FixedResponse, Redirect, RequestView, Route};
use crate::splice::copy_bidirectional_with_idle_timeout;
use crate::sticky;
use crate::upstream::{Lease, Target};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Serves one client request; `local_host` is the address the client connected to.
pub(crate) async fn handle(
    context: Arc<ListenerContext>,
    in_flight: InFlight,
    client: IpAddr,
    client_ip: HeaderValue,
    local_host: HeaderValue,
    mut request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    match upstream_host(
        request.version(),
        request.uri(),
        request.headers(),
        &local_host,
    ) {
        Ok(None) => {}
        Ok(Some(host)) => {
            request.headers_mut().insert(header::HOST, host);
        }
        Err(problem) => {
            tracing::debug!(problem, "refusing request");
            in_flight.close_gently();
            let mut response = text_response(
                StatusCode::BAD_REQUEST,
                format!("400 bad request: {problem}\n"),
                in_flight,
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(response);
        }
    }
    let routing = context.route.load_full();
    let route = if routing.routes.has_rules() {
        let view = RequestView {
            protocol: "http",
            method: request.method().as_str(),
            host: request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok()),
            path: request.uri().path(),
            query: request.uri().query(),
            headers: request.headers(),
            client,
            listener_port: context.local_addr.port(),
        };
        match routing.routes.route(&view) {
            Route::Redirect(redirect) => {
                return Ok(redirect_response(redirect, &view, in_flight));
            }
            other => other,
        }
    } else {
        routing.routes.route_default()
    };
    let group = match route {
        Route::Forward(id) => routing.groups.get(id),
        Route::FixedResponse(fixed) => return Ok(fixed_response(fixed, in_flight)),
        Route::Redirect(_) | Route::NoTargetGroup => None,
    };
    let Some(group) = group.cloned() else {
        return Ok(text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 no target group to forward to\n".to_string(),
            in_flight,
        ));
    };
    let settings = group.settings();
    let algorithm = settings.algorithm;
    let stickiness = &settings.stickiness;
    // The token the request's stickiness cookie carries, if any; it only ever selects
    // among the group's healthy targets.
    let requested_token = sticky::cookie_name(stickiness)
        .and_then(|name| sticky::request_cookie(request.headers(), name))
        .map(str::to_string);
    let stuck = group.select_sticky(stickiness, requested_token.as_deref(), client);
    let upgrade = is_upgrade_request(request.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    prepare_upstream_headers(
        &mut parts.headers,
        upgrade,
        &client_ip,
        &context.port_header,
    );
    let uri = origin_form(&parts.uri);

    // Only a request we can send again identically may be retried.
    let retryable = !upgrade && is_idempotent(&parts.method) && body.is_end_stream();
    let retry_copy = retryable.then(|| (parts.method.clone(), uri.clone(), parts.headers.clone()));

    let mut upstream_request = Request::new(Either::Left(body));
    *upstream_request.method_mut() = parts.method;
    *upstream_request.uri_mut() = uri;
    *upstream_request.version_mut() = Version::HTTP_11;
    *upstream_request.headers_mut() = parts.headers;

    let Some(first) = stuck.or_else(|| group.select(algorithm, None)) else {
        return Ok(text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("503 no healthy target in target group {}\n", group.id),
            in_flight,
        ));
    };
    let outcome = match attempt(&first, upstream_request, &context).await {
        Ok(success) => Ok(success),
        Err(failure) => {
            if failure.error.counts_against_target() && !failure.reused {
                group.record_passive_failure(&first);
            }
            let may_retry = retryable && failure.error.retry != RetrySafety::Never;
            let second = if may_retry {
                // A stale pooled connection is no sign of a bad target: it may be retried
                // on the same one when there is no other.
                group
                    .select(algorithm, Some(&first))
                    .or_else(|| failure.reused.then(|| first.clone()))
            } else {
                None
            };
            match second {
                Some(second) => {
                    let retry_request = failure.request.unwrap_or_else(|| {
                        let (method, uri, headers) =
                            retry_copy.expect("retryable requests keep a copy");
                        let mut request = Request::new(Either::Right(Empty::new()));
                        *request.method_mut() = method;
                        *request.uri_mut() = uri;
                        *request.headers_mut() = headers;
                        request
                    });
                    tracing::debug!(target_id = %first.id, error = %failure.error, retry_on = %second.id, "retrying request");
                    match attempt(&second, retry_request, &context).await {
                        Ok(success) => Ok(success),
                        Err(failure) => {
                            if failure.error.counts_against_target() && !failure.reused {
                                group.record_passive_failure(&second);
                            }
                            Err(failure.error)
                        }
                    }
                }
                None => Err(failure.error),
            }
        }
    };
    match outcome {
        Ok((mut response, lease)) => {
            lease.target.clear_passive_failures();
            for cookie in sticky::set_cookies(
                stickiness,
                &lease.target.sticky_token,
                requested_token.as_deref(),
                response.headers(),
            ) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(client_response(
                response,
                lease,
                client_upgrade,
                &context,
                in_flight,
            ))
        }
        Err(error) => Ok(error_response(&error, in_flight)),
    }
}

struct AttemptFailure {
    error: ProxyError,
    /// The request, when it was never written and so can be sent again as it is.
    request: Option<Request<UpstreamRequestBody>>,
    /// The failure happened on a pooled keep-alive connection.
    reused: bool,
}

/// Sends `request` to `target`: on an idle pooled connection when one is open,
/// otherwise on a new one.
async fn attempt(
    target: &Arc<Target>,
    mut request: Request<UpstreamRequestBody>,
    context: &ListenerContext,
) -> Result<(Response<Incoming>, Lease), AttemptFailure> {
    let limits = &context.limits;
    let mut lease = Lease::new(target.clone(), limits.idle_timeout);
    while let Some(mut sender) = target.pool.take_idle() {
        if sender.ready().await.is_err() {
            continue;
        }
        match send(&mut sender, request, limits.upstream_response_timeout).await {
            Ok(response) => {
                lease.set_sender(sender);
                return Ok((response, lease));
            }
            Err(SendFailure::NotSent(returned)) => request = *returned,
            Err(SendFailure::Failed(error)) => {
                return Err(AttemptFailure {
                    error,
                    request: None,
                    reused: true,
                })
            }
        }
    }
    let mut sender = match pool::connect(target.addr, limits.upstream_connect_timeout).await {
        Ok(sender) => sender,
        Err(error) => {
            return Err(AttemptFailure {
                error,
                request: Some(request),
                reused: false,
            })
        }
    };
    match send(&mut sender, request, limits.upstream_response_timeout).await {
        Ok(response) => {
            lease.set_sender(sender);
            Ok((response, lease))
        }
        Err(SendFailure::NotSent(returned)) => Err(AttemptFailure {
            error: ProxyError::new(
                ProxyErrorKind::UpstreamClosed,
                "new upstream connection closed at once",
            ),
            request: Some(*returned),
            reused: false,
        }),
        Err(SendFailure::Failed(error)) => Err(AttemptFailure {
            error,
            request: None,
            reused: false,
        }),
    }
}

enum SendFailure {
    NotSent(Box<Request<UpstreamRequestBody>>),
    Failed(ProxyError),
}

async fn send(
    sender: &mut UpstreamSender,
    request: Request<UpstreamRequestBody>,
    response_timeout: std::time::Duration,
) -> Result<Response<Incoming>, SendFailure> {
    match tokio::time::timeout(response_timeout, sender.try_send_request(request)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(mut error)) => match error.take_message() {
            Some(request) => Err(SendFailure::NotSent(Box::new(request))),
            None => Err(SendFailure::Failed(ProxyError::from_upstream_send(
                error.error(),
            ))),
        },
        Err(_) => Err(SendFailure::Failed(ProxyError::new(
            ProxyErrorKind::UpstreamResponseTimeout,
            format!("no response within {response_timeout:?}"),
        ))),
    }
}

fn client_response(
    mut response: Response<Incoming>,
    mut lease: Lease,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    context: &ListenerContext,
    in_flight: InFlight,
) -> Response<ResponseBody> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let cancel = context.cancel.clone();
            let idle_timeout = context.idle_timeout();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    result = splice(client_upgrade, upstream_upgrade, idle_timeout) => {
                        if let Err(error) = result {
                            tracing::debug!(%error, "upgraded connection ended with an error");
                        }
                    }
                }
                // The target counts the upgraded connection as outstanding until it ends.
                drop(lease);
            });
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, ResponseBody::empty(in_flight));
        }
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if body.is_end_stream() {
        lease.mark_reusable();
    }
    Response::from_parts(
        parts,
        ResponseBody {
            content: Content::Upstream(body),
            lease: Some(lease),
            _in_flight: in_flight,
        },
    )
}

async fn splice(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    idle_timeout: Duration,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (client, upstream) = tokio::try_join!(client, upstream)?;
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    copy_bidirectional_with_idle_timeout(&mut client, &mut upstream, idle_timeout).await?;
    Ok(())
}

fn error_response(error: &ProxyError, in_flight: InFlight) -> Response<ResponseBody> {
    tracing::debug!(%error, "request failed");
    let (status, text) = match error.kind {
        ProxyErrorKind::UpstreamResponseTimeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "504 gateway timeout: the target did not respond in time\n",
        ),
        ProxyErrorKind::DownstreamBody => (
            StatusCode::BAD_REQUEST,
            "400 bad request: the request body could not be read\n",
        ),
        ProxyErrorKind::NoHealthyTarget => {
            (StatusCode::SERVICE_UNAVAILABLE, "503 no healthy target\n")
        }
        _ => (
            StatusCode::BAD_GATEWAY,
            "502 bad gateway: the target failed before responding\n",
        ),
    };
    text_response(status, text.to_string(), in_flight)
}

/// A rule's `fixed-response`: its status, content type and body, as configured.
fn fixed_response(fixed: &FixedResponse, in_flight: InFlight) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody {
        content: Content::Text(Some(Bytes::from(fixed.body.clone()))),
        lease: None,
        _in_flight: in_flight,
    });
    *response.status_mut() =
        StatusCode::from_u16(fixed.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if let Some(value) = fixed
        .content_type
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// A rule's `redirect`: 301 or 302 to the filled-in location.
fn redirect_response(
    redirect: &Redirect,
    request: &RequestView,
    in_flight: InFlight,
) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody {
        content: Content::Empty,
        lease: None,
        _in_flight: in_flight,
    });
    *response.status_mut() =
        StatusCode::from_u16(redirect.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    match HeaderValue::from_str(&redirect.location(request)) {
        Ok(location) => {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Err(_) => *response.status_mut() = StatusCode::BAD_REQUEST,
    }
    response
}

fn text_response(status: StatusCode, text: String, in_flight: InFlight) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody {
        content: Content::Text(Some(Bytes::from(text))),
        lease: None,
        _in_flight: in_flight,
    });
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has_token(headers, "upgrade")
}

fn connection_has_token(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|value| {
        value
            .to_str()
            .map(|text| {
                text.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
            .unwrap_or(false)
    })
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The request target as an origin server expects it: path and query only.
fn origin_form(uri: &Uri) -> Uri {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return uri.clone();
    }
    uri.path_and_query()
        .map(|path| Uri::from(path.clone()))
        .unwrap_or_else(|| Uri::from_static("/"))
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// End-to-end fields a `Connection` header may not remove (RFC 9110 section 7.6.1 lets
/// no sender name them there): the target needs `Host` and `Content-Length` to route and
/// frame the message, and a client naming `X-Forwarded-For` or `Forwarded` would erase
/// what the proxies before berth recorded.
fn connection_may_remove(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host" | "content-length" | "x-forwarded-for" | "forwarded"
    )
}

/// Removes hop-by-hop headers, including those the `Connection` header names (except
/// the few `connection_may_remove` keeps).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one look at the few names present is cheaper
    // than hashing and removing nine names every time. A `Connection` header (which
    // may name more) is hop-by-hop itself, so it always takes the full path.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|text| text.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .filter(connection_may_remove)
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Hop-by-hop headers out, `X-Forwarded-*` in; `Host` stays as the client sent it.
pub(crate) fn prepare_upstream_headers(
    headers: &mut HeaderMap,
    upgrade: bool,
    client_ip: &HeaderValue,
    port_header: &HeaderValue,
) {
    let upgrade_protocol = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    strip_hop_by_hop(headers);
    if let Some(protocol) = upgrade_protocol {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
    let previous: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    if previous.is_empty() {
        headers.insert(X_FORWARDED_FOR, client_ip.clone());
    } else {
        let forwarded_for = format!(
            "{}, {}",
            previous.join(", "),
            client_ip.to_str().unwrap_or_default()
        );
        if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    headers.insert(X_FORWARDED_PORT, port_header.clone());
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

/// The `Host` to send the target instead of the client's (`Ok(None)`: keep the
/// client's), or why the request must get a 400 (RFC 9112 section 3.2).
fn upstream_host(
    version: Version,
    uri: &Uri,
    headers: &HeaderMap,
    local_host: &HeaderValue,
) -> Result<Option<HeaderValue>, &'static str> {
    let mut values = headers.get_all(header::HOST).iter();
    let host = values.next();
    if values.next().is_some() {
        return Err("more than one host header");
    }
    match host {
        Some(value) if !is_valid_host(value.as_bytes()) => return Err("invalid host header"),
        None if version != Version::HTTP_10 && version != Version::HTTP_09 => {
            return Err("an HTTP/1.1 request needs a host header")
        }
        _ => {}
    }
    // An absolute-form target's authority wins over `Host` (RFC 9112 section 3.2.2).
    if let Some(authority) = uri.authority() {
        let host = match authority.port() {
            Some(port) => format!("{}:{port}", authority.host()),
            None => authority.host().to_string(),
        };
        return HeaderValue::from_str(&host)
            .map(Some)
            .map_err(|_| "invalid host in the request target");
    }
    // An HTTP/1.0 client may send none, but the target is sent HTTP/1.1, which needs
    // one: like ELB, name the balancer itself.
    Ok(host.is_none().then(|| local_host.clone()))
}

/// RFC 9112's `Host = uri-host [ ":" port ]`, with RFC 3986's `host`: an IPv6 literal
/// in brackets, or a reg-name (which covers IPv4 addresses).
fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.iter().rposition(|&byte| byte == b':') {
        Some(colon) if !value[colon..].contains(&b']') => (&value[..colon], &value[colon + 1..]),
        _ => (value, &[][..]),
    };
    let host_ok = match host {
        [b'[', literal @ .., b']'] => {
            std::str::from_utf8(literal).is_ok_and(|text| text.parse::<Ipv6Addr>().is_ok())
        }
        _ => is_reg_name(host),
    };
    host_ok && port.iter().all(u8::is_ascii_digit)
}

/// RFC 3986's `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name(name: &[u8]) -> bool {
    let mut index = 0;
    while index < name.len() {
        match name[index] {
            b'%' => {
                let escaped = name.get(index + 1..index + 3);
                if !escaped.is_some_and(|digits| digits.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                index += 3;
                continue;
            }
            byte if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&byte) => {}
            _ => return false,
        }
        index += 1;
    }
    true
}

/// `Host`'s value naming `addr`: `192.0.2.1:80`, `[2001:db8::1]:80`.
pub(crate) fn host_header(addr: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&addr.to_string()).expect("a socket address is a valid header value")
}

/// `X-Forwarded-For`'s value for one client connection, built once per connection.
pub(crate) fn client_ip_header(client: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&client.ip().to_string()).expect("an IP address is a valid header value")
}

/// The body of a response to the client: the target's, streamed, or our own text.
pub(crate) struct ResponseBody {
    content: Content,
    lease: Option<Lease>,
    _in_flight: InFlight,
}

enum Content {
    Upstream(Incoming),
    Text(Option<Bytes>),
    Empty,
}

impl ResponseBody {
    fn empty(in_flight: InFlight) -> ResponseBody {
        ResponseBody {
            content: Content::Empty,
            lease: None,
            _in_flight: in_flight,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        match &mut this.content {
            Content::Upstream(body) => {
                let frame = std::task::ready!(Pin::new(&mut *body).poll_frame(context));
                let finished = match &frame {
                    None => true,
                    Some(Ok(_)) => body.is_end_stream(),
                    Some(Err(_)) => false,
                };
                if finished {
                    if let Some(lease) = this.lease.as_mut() {
                        lease.mark_reusable();
                    }
                    // Give the connection back now, not when hyper drops the body.
                    this.lease = None;
                }
                Poll::Ready(frame)
            }
            Content::Text(text) => Poll::Ready(text.take().map(|bytes| Ok(Frame::data(bytes)))),
            Content::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.content {
            Content::Upstream(body) => body.is_end_stream(),
            Content::Text(text) => text.is_none(),
            Content::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.content {
            Content::Upstream(body) => body.size_hint(),
            Content::Text(Some(text)) => SizeHint::with_exact(text.len() as u64),
            Content::Text(None) | Content::Empty => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_forwarding_headers_come() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.test:8080"));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("secret"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let client: SocketAddr = "192.0.2.7:5555".parse().unwrap();
        prepare_upstream_headers(
            &mut headers,
            false,
            &client_ip_header(client),
            &HeaderValue::from_static("8080"),
        );
        assert!(headers.get(header::CONNECTION).is_none());
        assert!(headers.get("x-private").is_none());
        assert!(headers.get("keep-alive").is_none());
        assert!(headers.get(header::TE).is_none());
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-port"], "8080");
        assert_eq!(headers["x-forwarded-host"], "example.test:8080");
        assert_eq!(headers[header::HOST], "example.test:8080");
        assert_eq!(headers[header::ACCEPT], "*/*");
    }

    #[test]
    fn hop_by_hop_headers_go_without_a_connection_header_and_others_stay() {
        // The quick look and the full removal know the same names.
        assert!(HOP_BY_HOP.iter().all(is_hop_by_hop));
        let mut headers = HeaderMap::new();
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[header::ACCEPT], "*/*");

        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        headers.insert(header::DATE, HeaderValue::from_static("today"));
        let before = headers.clone();
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, before);
    }

    #[test]
    fn upgrade_requests_keep_connection_and_upgrade() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade_request(&headers));
        let client: SocketAddr = "127.0.0.1:1".parse().unwrap();
        prepare_upstream_headers(
            &mut headers,
            true,
            &client_ip_header(client),
            &HeaderValue::from_static("80"),
        );
        assert_eq!(headers[header::CONNECTION], "upgrade");
        assert_eq!(headers[header::UPGRADE], "websocket");
    }

    #[test]
    fn connection_cannot_remove_host_length_or_the_forwarding_chain() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("app.test"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert("forwarded", HeaderValue::from_static("for=10.0.0.1"));
        headers.insert("x-private", HeaderValue::from_static("secret"));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("Host, content-length, X-Forwarded-For, forwarded, x-private"),
        );
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers[header::HOST], "app.test");
        assert_eq!(headers[header::CONTENT_LENGTH], "5");
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1");
        assert_eq!(headers["forwarded"], "for=10.0.0.1");
        assert!(headers.get("x-private").is_none());
        assert!(headers.get(header::CONNECTION).is_none());
    }

    #[test]
    fn host_values_follow_the_rfc_grammar() {
        for valid in [
            "example.test",
            "example.test:8080",
            "192.0.2.1:80",
            "[2001:db8::1]",
            "[::1]:8080",
            "my_host-1.example",
            "a%2Eb",
            "host:",
            "",
        ] {
            assert!(is_valid_host(valid.as_bytes()), "{valid:?} is valid");
        }
        for invalid in [
            "a b",
            "a:b:c",
            "example.test:80x",
            "user@example.test",
            "[not-ipv6]",
            "[::1",
            "::1",
            "a/b",
            "a%2",
            "a%zz",
            "[::1]x",
        ] {
            assert!(!is_valid_host(invalid.as_bytes()), "{invalid:?} is invalid");
        }
    }

    #[test]
    fn host_is_required_once_in_http_11_and_supplied_for_http_10() {
        let local = HeaderValue::from_static("127.0.0.1:8000");
        let origin: Uri = "/".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert!(upstream_host(Version::HTTP_11, &origin, &headers, &local).is_err());
        assert_eq!(
            upstream_host(Version::HTTP_10, &origin, &headers, &local),
            Ok(Some(local.clone()))
        );
        headers.insert(header::HOST, HeaderValue::from_static("app.test"));
        assert_eq!(
            upstream_host(Version::HTTP_11, &origin, &headers, &local),
            Ok(None)
        );
        let absolute: Uri = "http://other.test:81/x".parse().unwrap();
        assert_eq!(
            upstream_host(Version::HTTP_11, &absolute, &headers, &local),
            Ok(Some(HeaderValue::from_static("other.test:81")))
        );
        headers.append(header::HOST, HeaderValue::from_static("app.test"));
        assert!(upstream_host(Version::HTTP_10, &origin, &headers, &local).is_err());
        assert_eq!(
            host_header("[::1]:80".parse().unwrap()),
            HeaderValue::from_static("[::1]:80")
        );
    }

    #[test]
    fn absolute_form_becomes_origin_form() {
        let uri: Uri = "http://example.test/a/b?c=d".parse().unwrap();
        assert_eq!(origin_form(&uri), "/a/b?c=d");
        let uri: Uri = "/x?y".parse().unwrap();
        assert_eq!(origin_form(&uri), "/x?y");
    }

    #[test]
    fn only_idempotent_methods_are_retryable() {
        assert!(is_idempotent(&Method::GET));
        assert!(is_idempotent(&Method::PUT));
        assert!(!is_idempotent(&Method::POST));
        assert!(!is_idempotent(&Method::PATCH));
    }
}
