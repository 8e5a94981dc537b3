//! The HTTP edge: body limits, SigV4, the awsJson1_1 envelope and ECS's error shape,
//! and the awsQuery (ELBv2) envelope with its XML error shape.
//!
//! Routing: a request with `X-Amz-Target` is awsJson1_1 (ECS, berth's own actions), as
//! before. A request without it whose content type is `application/x-www-form-urlencoded`
//! (or whose body starts with `Action=`) is awsQuery and goes to the ELBv2 actions by
//! its `Action` parameter. Both are SigV4-verified the same way, each for its own SigV4
//! service (`Api`).
//!
//! Order: method, then every signature check that needs no body (an anonymous request
//! is answered 403 with its body unread), then the body (at most `MAX_BODY_BYTES`,
//! within `ApiLimits::body_read_timeout`), then the signature over it. Every answer
//! sent before the body was read whole, and every authentication failure, closes the
//! connection (`Connection: close`): a client that is refused keeps no slot, so
//! anonymous keep-alive connections cannot fill `max_connections`. The connection
//! limits themselves live in `listener.rs`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_api::ErrorBody;
use berth_auth::{SignableRequest, Verifier};
use futures_util::FutureExt;
use http_body_util::{BodyExt, Limited};

use crate::dispatch::{dispatch, dispatch_query, ApiError, QueryAnswer};
use crate::listener::{self, ApiLimits, ApiTransport, RequestActivity};
use crate::ControlPlane;

const PANIC_MESSAGE: &str =
    "berth hit an internal error on this request and changed nothing; its log has the details";

/// The largest request body berth reads; ECS's own task definitions stay far below it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The APIs berth serves on its one endpoint, each with the SigV4 service name its
/// requests must be signed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// awsJson1_1 with `X-Amz-Target`: ECS's actions and berth's own `BerthV1.*`.
    Ecs,
    /// awsQuery: ELBv2's actions.
    Elbv2,
}

impl Api {
    const ALL: [Api; 2] = [Api::Ecs, Api::Elbv2];

    fn signing_service(self) -> &'static str {
        match self {
            Api::Ecs => "ecs",
            Api::Elbv2 => "elasticloadbalancing",
        }
    }
}

/// Every SigV4 service name berth accepts in a credential scope.
fn signing_services() -> Vec<&'static str> {
    Api::ALL.iter().map(|api| api.signing_service()).collect()
}

struct Shared {
    control_plane: Arc<ControlPlane>,
    verifier: Verifier,
    body_read_timeout: std::time::Duration,
}

/// Serves the ECS API on `listener` until `shutdown` completes, with the default
/// [`ApiLimits`] and plain HTTP.
pub async fn serve(
    listener: tokio::net::TcpListener,
    control_plane: Arc<ControlPlane>,
    verifier: Verifier,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        control_plane,
        verifier,
        ApiLimits::default(),
        ApiTransport::Plain,
        shutdown,
    )
    .await
}

/// Serves the ECS API on `listener` with these limits and transport until `shutdown`
/// completes; then requests in flight get `limits.shutdown_grace` to finish.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    control_plane: Arc<ControlPlane>,
    verifier: Verifier,
    limits: ApiLimits,
    transport: ApiTransport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let shared = Arc::new(Shared {
        control_plane,
        verifier: verifier.serving(&signing_services()),
        body_read_timeout: limits.body_read_timeout,
    });
    let app = Router::new().fallback(handle).with_state(shared);
    let service = hyper_util::service::TowerToHyperService::new(app);
    listener::accept_loop(listener, limits, transport, service, shutdown).await;
    Ok(())
}

fn request_id() -> String {
    use berth_core::IdSource;
    crate::RandomIds.uuid()
}

fn error_response(
    request_id: &str,
    status: StatusCode,
    error_type: &str,
    message: &str,
) -> Response {
    let body = serde_json::to_vec(&ErrorBody {
        error_type: error_type.to_string(),
        message: message.to_string(),
    })
    .unwrap_or_default();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static(berth_api::AWS_JSON_CONTENT_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(error_type) {
        headers.insert("x-amzn-errortype", value);
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

/// awsQuery's error shape (`<ErrorResponse>`), for failures before an action runs.
fn query_error_response(
    request_id: &str,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    let sender_fault = status.as_u16() < 500;
    query_response(
        request_id,
        QueryAnswer {
            status: status.as_u16(),
            document: berth_api::elbv2::error_document(sender_fault, code, message, request_id),
        },
    )
}

fn query_response(request_id: &str, answer: QueryAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, Body::from(answer.document)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static(berth_api::elbv2::XML_CONTENT_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

/// Whether the headers mark an awsQuery request: no `X-Amz-Target`, a form body.
fn is_query_by_headers(headers: &HeaderMap) -> bool {
    if headers.contains_key("x-amz-target") {
        return false;
    }
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case(berth_api::elbv2::QUERY_CONTENT_TYPE)
        })
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let id = request_id();
    let (parts, body) = request.into_parts();
    let query = is_query_by_headers(&parts.headers);
    if query && parts.method != axum::http::Method::POST {
        return closing(query_error_response(
            &id,
            StatusCode::METHOD_NOT_ALLOWED,
            "InvalidAction",
            "berth's ELBv2 API takes POST / with a form-encoded body",
        ));
    }
    if parts.method != axum::http::Method::POST {
        return closing(error_response(
            &id,
            StatusCode::METHOD_NOT_ALLOWED,
            "UnknownOperationException",
            "berth's API takes POST / with an X-Amz-Target header",
        ));
    }
    // Everything that needs no body is checked before reading it, so an anonymous
    // client (or one with an unknown key) cannot make berth read one.
    let headers = header_pairs(&parts.headers);
    let head_services: &[&str] = if parts.headers.contains_key("x-amz-target") {
        &[Api::Ecs.signing_service()]
    } else if query {
        &[Api::Elbv2.signing_service()]
    } else {
        // awsQuery may also be told by its body (`Action=`): not known yet.
        &[Api::Ecs.signing_service(), Api::Elbv2.signing_service()]
    };
    let head = SignableRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &[],
    };
    if let Err(error) =
        shared
            .verifier
            .verify_head(&head, time::OffsetDateTime::now_utc(), head_services)
    {
        return auth_refusal(&id, query, &error);
    }
    let declared = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        if query {
            return closing(query_too_large(&id));
        }
        return closing(too_large(&id));
    }
    let read = Limited::new(body, MAX_BODY_BYTES).collect();
    let body: Bytes = match tokio::time::timeout(shared.body_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Err(_) => {
            let message = format!(
                "the request body did not arrive within {} s",
                shared.body_read_timeout.as_secs_f64()
            );
            let response = if query {
                query_error_response(&id, StatusCode::REQUEST_TIMEOUT, "RequestTimeout", &message)
            } else {
                error_response(&id, StatusCode::REQUEST_TIMEOUT, "RequestTimeout", &message)
            };
            return closing(response);
        }
        Ok(Err(error)) => {
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                if query {
                    return closing(query_too_large(&id));
                }
                return closing(too_large(&id));
            }
            if query {
                return closing(query_error_response(
                    &id,
                    StatusCode::BAD_REQUEST,
                    "MalformedQueryString",
                    "the request body could not be read",
                ));
            }
            return closing(error_response(
                &id,
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "the request body could not be read",
            ));
        }
    };
    if let Some(activity) = parts.extensions.get::<RequestActivity>() {
        activity.body_read();
    }
    let signable = SignableRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    let api =
        if !parts.headers.contains_key("x-amz-target") && (query || body.starts_with(b"Action=")) {
            Api::Elbv2
        } else {
            Api::Ecs
        };
    let verified = match shared.verifier.verify(
        &signable,
        time::OffsetDateTime::now_utc(),
        api.signing_service(),
    ) {
        Ok(verified) => verified,
        Err(error) => return auth_refusal(&id, query, &error),
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if api == Api::Elbv2 {
        let answer = AssertUnwindSafe(dispatch_query(
            &shared.control_plane,
            &verified.region,
            &body,
            &id,
        ))
        .catch_unwind()
        .await;
        let Ok(answer) = answer else {
            tracing::error!("an ELBv2 request hit a bug in berth; it changed nothing");
            return query_error_response(
                &id,
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                PANIC_MESSAGE,
            );
        };
        if answer.status >= 500 {
            tracing::error!(status = answer.status, "ELBv2 request failed");
        }
        return query_response(&id, answer);
    }
    // A bug must not cost the client its answer: a panic in an action (which decides
    // before anything is written, so it changed nothing) becomes a ServerException.
    let result = AssertUnwindSafe(dispatch(
        &shared.control_plane,
        target,
        &verified.region,
        &body,
    ))
    .catch_unwind()
    .await
    .unwrap_or_else(|_| {
        tracing::error!(target, "a request hit a bug in berth; it changed nothing");
        Err(ApiError {
            status: 500,
            error_type: "ServerException".to_string(),
            message: PANIC_MESSAGE.to_string(),
        })
    });
    match result {
        Ok(json) => {
            let mut response = (StatusCode::OK, Body::from(json)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                "content-type",
                HeaderValue::from_static(berth_api::AWS_JSON_CONTENT_TYPE),
            );
            if let Ok(value) = HeaderValue::from_str(&id) {
                headers.insert("x-amzn-requestid", value);
            }
            response
        }
        Err(ApiError {
            status,
            error_type,
            message,
        }) => {
            if status >= 500 {
                tracing::error!(target, error_type, "{message}");
            }
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            error_response(&id, status, &error_type, &message)
        }
    }
}

/// The answer to a request that failed authentication; it closes the connection.
fn auth_refusal(id: &str, query: bool, error: &berth_auth::AuthError) -> Response {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    tracing::debug!(code = error.code(), "request refused: {error}");
    if query {
        return closing(query_error_response(
            id,
            status,
            error.code(),
            &error.to_string(),
        ));
    }
    closing(error_response(id, status, error.code(), &error.to_string()))
}

/// `response`, after which the connection closes (hyper sends `Connection: close` and
/// reads no more of it).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("connection", HeaderValue::from_static("close"));
    response
}

fn too_large(id: &str) -> Response {
    error_response(
        id,
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLargeException",
        &format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

fn query_too_large(id: &str) -> Response {
    query_error_response(
        id,
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_string(), v.to_string()))
        })
        .collect()
}
