//! The agent listener of `berth server`: the agents' side of the control plane, over
//! mutually authenticated TLS on a port of its own (JSON over HTTP/1.1, paths in
//! `berth_proto::remote::paths`).
//!
//! Identity: rustls verifies every client certificate presented against the cluster CA
//! (`ClusterCa::agent_listener_config`); a client may come without one, and then may
//! only join. Every other call acts for the node its certificate names, and for that
//! node only: a registration or assignments call naming another node, or a report
//! about a task that is not on the node, is refused (403) and changes nothing. A join
//! with a wrong, expired or replaced token gets 403 and nothing else, above all no
//! task definition (they carry environment values).
//!
//! Limits are the API listener's (`listener.rs`: header, idle and body clocks), but for
//! the connection caps (`agent_limits`); a long-poll is capped at `MAX_LONG_POLL` and
//! counts as work, not idling.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_core::nodes::{check_node_id, check_registration, task_runs_on};
use berth_proto::remote::{
    paths, AssignmentsRequest, BalancerConfigRequest, JoinRequest, JoinResponse, Refusal,
    RefusalCode, RegisterRequest, ReportRequest, ServiceEndpointsRequest, TaskAnswer, TaskRequests,
    TaskRequestsPoll,
};
use berth_proto::{ControlPlaneLink, PROTOCOL_VERSION};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use crate::agent_requests::{AgentRequests, AnswerRefused};
use crate::cluster_ca::{node_id_of, ClusterCa};
use crate::join_token::{JoinToken, JoinTokens};
use crate::listener::{self, ApiLimits, ApiTransport, PeerCertificate, RequestActivity};
use crate::load_balancing::balancer_config;
use crate::local_link::until_changed;
use crate::node_liveness::NodeLiveness;
use crate::{ControlPlane, LocalLink};

/// The longest an assignments long-poll is held.
pub const MAX_LONG_POLL: Duration = Duration::from_secs(60);
/// The largest body an agent may send (reports of many tasks fit well within it).
pub const MAX_AGENT_BODY_BYTES: usize = 1024 * 1024;
/// A join's body is a token and a certificate request.
const MAX_JOIN_BODY_BYTES: usize = 64 * 1024;

/// Most connections the agent listener holds at once. Every node keeps two or three
/// open (its long-poll, and the pooled one its heartbeats and reports use), so the
/// API's 512 would turn away a fleet of a few hundred machines; this holds 5,000 and
/// more (`bench/fleet.sh` runs 1,000).
pub const MAX_AGENT_CONNECTIONS: usize = 16_384;

/// The agent listener's limits: the API's clocks and sizes, room for a fleet's
/// connections, and the per-address cap of the API, which holds only clients not yet
/// known by a node certificate (joins and handshakes): a node's connections count
/// against the global cap only (`listener.rs`), so machines behind one address, or
/// several agents on one, are not turned away.
///
/// An agent's request head is a few small headers: the head limit is 8 KiB, hyper's
/// smallest read buffer, which also keeps each connection's read buffer at that size
/// (at the API's 64 KiB a buffer that grew for a large report stays that large while
/// its connection is open, thousands of them on a fleet).
pub fn agent_limits() -> ApiLimits {
    ApiLimits {
        max_connections: MAX_AGENT_CONNECTIONS,
        max_header_bytes: AGENT_MAX_HEADER_BYTES,
        ..ApiLimits::default()
    }
}

/// The largest request head an agent may send (`agent_limits`).
pub const AGENT_MAX_HEADER_BYTES: usize = 8 * 1024;

/// What the agent listener serves with.
pub struct AgentApi {
    pub control_plane: Arc<ControlPlane>,
    pub ca: Arc<ClusterCa>,
    pub tokens: JoinTokens,
    pub liveness: Arc<NodeLiveness>,
    /// Where `berth logs` and `berth top` wait for their agents' answers.
    pub task_requests: Arc<AgentRequests>,
}

struct Shared {
    api: AgentApi,
    link: LocalLink,
    body_read_timeout: Duration,
}

/// Serves agents on `listener` with `tls` (from `ClusterCa::agent_listener_config`)
/// until `shutdown` completes.
pub async fn serve_agents(
    listener: tokio::net::TcpListener,
    api: AgentApi,
    tls: Arc<rustls::ServerConfig>,
    limits: ApiLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = Arc::new(limits);
    let shared = Arc::new(Shared {
        link: LocalLink::new(api.control_plane.clone()),
        api,
        body_read_timeout: limits.body_read_timeout,
    });
    let app = Router::new().fallback(handle).with_state(shared);
    let service = hyper_util::service::TowerToHyperService::new(app);
    let transport = ApiTransport::Tls(tokio_rustls::TlsAcceptor::from(tls));
    listener::accept_loop(listener, limits, transport, service, shutdown).await;
}

/// A refusal: its status, code and message.
struct Refused(StatusCode, RefusalCode, String);

impl Refused {
    fn new(status: StatusCode, code: RefusalCode, message: impl Into<String>) -> Refused {
        Refused(status, code, message.into())
    }

    fn bad_request(message: impl Into<String>) -> Refused {
        Refused::new(StatusCode::BAD_REQUEST, RefusalCode::BadRequest, message)
    }

    fn forbidden(message: impl Into<String>) -> Refused {
        Refused::new(StatusCode::FORBIDDEN, RefusalCode::NotAuthorized, message)
    }

    fn unavailable(error: impl std::fmt::Display) -> Refused {
        Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RefusalCode::Unavailable,
            error.to_string(),
        )
    }

    fn into_response(self) -> Response {
        let Refused(status, code, message) = self;
        let body = serde_json::to_vec(&Refusal { code, message }).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        // A refused client keeps no slot (as on the API listener).
        headers.insert("connection", HeaderValue::from_static("close"));
        response
    }
}

fn json_response(value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = (StatusCode::OK, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn incompatible(version: u32) -> Refused {
    Refused::new(
        StatusCode::BAD_REQUEST,
        RefusalCode::IncompatibleVersion,
        format!(
            "this agent speaks berth protocol version {version}; this server speaks version {PROTOCOL_VERSION}: run the same berth release on both"
        ),
    )
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match serve(&shared, request).await {
        Ok(response) => response,
        Err(refused) => refused.into_response(),
    }
}

async fn serve(shared: &Shared, request: Request) -> Result<Response, Refused> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    if parts.method != axum::http::Method::POST {
        return Err(Refused::new(
            StatusCode::METHOD_NOT_ALLOWED,
            RefusalCode::BadRequest,
            "the agent API takes POST with a JSON body",
        ));
    }
    let known = [
        paths::JOIN,
        paths::REGISTER,
        paths::ASSIGNMENTS,
        paths::REPORT,
        paths::HEARTBEAT,
        paths::LOAD_BALANCER,
        paths::SERVICE_ENDPOINTS,
        paths::TASK_REQUESTS,
        paths::TASK_ANSWER,
    ];
    if !known.contains(&path.as_str()) {
        return Err(Refused::new(
            StatusCode::NOT_FOUND,
            RefusalCode::BadRequest,
            format!("no such agent API path: {path}"),
        ));
    }
    let activity = parts.extensions.get::<RequestActivity>().cloned();
    if path == paths::JOIN {
        let body = read_body(shared, body, MAX_JOIN_BODY_BYTES, activity.as_ref()).await?;
        return join(shared, parse(body)?).await;
    }
    // Everything else is a node's, and needs its certificate: checked before the body
    // is read.
    let node_id = parts
        .extensions
        .get::<PeerCertificate>()
        .and_then(|peer| node_id_of(&peer.0))
        .ok_or_else(|| {
            Refused::new(
                StatusCode::UNAUTHORIZED,
                RefusalCode::NotAuthorized,
                "this call needs a node certificate of this cluster: join first (berth agent --token)",
            )
        })?;
    let body = read_body(shared, body, MAX_AGENT_BODY_BYTES, activity.as_ref()).await?;
    shared
        .api
        .liveness
        .heard_from(&shared.api.control_plane, &node_id)
        .await;
    match path.as_str() {
        paths::REGISTER => register(shared, &node_id, parse(body)?).await,
        paths::ASSIGNMENTS => assignments(shared, &node_id, parse(body)?).await,
        paths::REPORT => report(shared, &node_id, parse(body)?).await,
        paths::LOAD_BALANCER => Ok(load_balancer(shared, parse(body)?).await),
        paths::SERVICE_ENDPOINTS => service_endpoints(shared, &node_id, parse(body)?).await,
        paths::TASK_REQUESTS => {
            let poll: TaskRequestsPoll = parse(body)?;
            let timeout = Duration::from_millis(poll.timeout_ms).min(MAX_LONG_POLL);
            let requests = shared
                .api
                .task_requests
                .next_requests(&node_id, timeout)
                .await;
            Ok(json_response(&TaskRequests { requests }))
        }
        paths::TASK_ANSWER => task_answer(shared, &node_id, parse(body)?),
        _ => Ok(json_response(&serde_json::json!({}))),
    }
}

async fn read_body(
    shared: &Shared,
    body: Body,
    limit: usize,
    activity: Option<&RequestActivity>,
) -> Result<Bytes, Refused> {
    let read = Limited::new(body, limit).collect();
    let body = match tokio::time::timeout(shared.body_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(Refused::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                RefusalCode::BadRequest,
                format!("the request body is larger than {limit} bytes"),
            ))
        }
        Ok(Err(_)) => return Err(Refused::bad_request("the request body could not be read")),
        Err(_) => {
            return Err(Refused::new(
                StatusCode::REQUEST_TIMEOUT,
                RefusalCode::BadRequest,
                "the request body did not arrive in time",
            ))
        }
    };
    if let Some(activity) = activity {
        activity.body_read();
    }
    Ok(body)
}

/// The body as `T`; the failing field is named. Takes the body and drops it once
/// read: its bytes share the connection's read buffer, which a long-poll holding the
/// body would keep alive, one per waiting agent, for as long as it waits.
fn parse<T: DeserializeOwned>(body: Bytes) -> Result<T, Refused> {
    let mut decoder = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut decoder).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        // serde_json's message may quote a value; a token must never be echoed.
        let what = if inner.is_syntax() || inner.is_eof() {
            "is not JSON".to_string()
        } else {
            "does not have the expected shape".to_string()
        };
        if path == "." {
            Refused::bad_request(format!("the request {what}"))
        } else {
            Refused::bad_request(format!("the request {what} at '{path}'"))
        }
    })
}

async fn join(shared: &Shared, request: JoinRequest) -> Result<Response, Refused> {
    if request.protocol_version != PROTOCOL_VERSION {
        return Err(incompatible(request.protocol_version));
    }
    check_node_id(&request.node_id).map_err(|e| Refused::bad_request(e.to_string()))?;
    let refuse_token = |reason: &dyn std::fmt::Display| {
        tracing::warn!(node = %request.node_id, %reason, "join refused");
        Refused::new(
            StatusCode::FORBIDDEN,
            RefusalCode::InvalidToken,
            reason.to_string(),
        )
    };
    let ca = &shared.api.ca;
    let token = JoinToken::parse(&request.token).map_err(|e| refuse_token(&e))?;
    shared
        .api
        .tokens
        .verify(&token, &ca.fingerprint(), epoch_seconds())
        .map_err(|e| refuse_token(&e))?;
    let known = shared
        .api
        .control_plane
        .store
        .read(|state| state.nodes.contains_key(&request.node_id));
    if known {
        tracing::warn!(node = %request.node_id, "join refused: the node id has joined before");
        return Err(Refused::new(
            StatusCode::CONFLICT,
            RefusalCode::NodeExists,
            format!(
                "node '{}' has joined before; its agent keeps its certificate in its data dir (a machine that lost it joins under a new node id)",
                request.node_id
            ),
        ));
    }
    let certificate = ca
        .issue_node_certificate(
            &request.node_id,
            &request.certificate_request,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| Refused::bad_request(e.to_string()))?;
    tracing::info!(node = %request.node_id, "node joined the cluster");
    Ok(json_response(&JoinResponse {
        certificate,
        ca_certificate: ca.certificate_pem().to_string(),
    }))
}

fn another_node(node_id: &str, claimed: &str) -> Refused {
    tracing::warn!(node = node_id, claimed, "a node asked to act as another");
    Refused::forbidden(format!(
        "this certificate is node '{node_id}''s; it cannot act for node '{claimed}'"
    ))
}

async fn register(
    shared: &Shared,
    node_id: &str,
    request: RegisterRequest,
) -> Result<Response, Refused> {
    if request.protocol_version != PROTOCOL_VERSION {
        return Err(incompatible(request.protocol_version));
    }
    let registration = request.registration;
    if registration.node_id != node_id {
        return Err(another_node(node_id, &registration.node_id));
    }
    if registration.joins_every_cluster {
        return Err(Refused::bad_request(
            "joins_every_cluster: only berth dev's own agent serves every cluster",
        ));
    }
    check_registration(&registration).map_err(|e| Refused::bad_request(e.to_string()))?;
    if registration.cluster.is_empty() || registration.cluster.len() > 255 {
        return Err(Refused::bad_request("cluster: must be 1 to 255 characters"));
    }
    shared
        .link
        .register(registration)
        .await
        .map_err(Refused::unavailable)?;
    Ok(json_response(&serde_json::json!({})))
}

async fn assignments(
    shared: &Shared,
    node_id: &str,
    request: AssignmentsRequest,
) -> Result<Response, Refused> {
    if request.node_id != node_id {
        return Err(another_node(node_id, &request.node_id));
    }
    let timeout = Duration::from_millis(request.timeout_ms).min(MAX_LONG_POLL);
    let assignments = shared
        .link
        .assignments(node_id, request.since, timeout)
        .await
        .map_err(Refused::unavailable)?;
    Ok(json_response(&assignments))
}

async fn report(
    shared: &Shared,
    node_id: &str,
    request: ReportRequest,
) -> Result<Response, Refused> {
    let foreign = shared.api.control_plane.store.read(|state| {
        request
            .reports
            .iter()
            .find(|report| !task_runs_on(state, &report.task_id, node_id))
            .map(|report| report.task_id.clone())
    });
    if let Some(task_id) = foreign {
        tracing::warn!(node = node_id, task = %task_id, "a node reported on a task not on it");
        return Err(Refused::forbidden(format!(
            "task '{task_id}' does not run on node '{node_id}'; nothing was reported"
        )));
    }
    shared
        .link
        .report(request.reports)
        .await
        .map_err(Refused::unavailable)?;
    Ok(json_response(&serde_json::json!({})))
}

/// The load balancer's config for a node that serves its listeners, once it differs
/// from the one the node has (or when the long-poll's time is up). Any node of the
/// cluster may ask: it holds listeners, target groups and the addresses of healthy
/// targets, nothing from a task definition.
async fn load_balancer(shared: &Shared, request: BalancerConfigRequest) -> Response {
    let control_plane = &shared.api.control_plane;
    let timeout = Duration::from_millis(request.timeout_ms).min(MAX_LONG_POLL);
    let config = until_changed(
        &control_plane.store,
        request.have.as_deref(),
        timeout,
        |state| balancer_config(state, &control_plane.privilege_policy),
        |config| &config.version,
    )
    .await
    // A server shutting down answers with what it has.
    .unwrap_or_else(|last| last);
    json_response(&config)
}

/// Service discovery's endpoints for the node's clusters, once they differ from the
/// ones the node has (or when the long-poll's time is up). A node hears only of the
/// clusters it serves: names, container ports and task addresses, nothing of a task
/// definition.
async fn service_endpoints(
    shared: &Shared,
    node_id: &str,
    request: ServiceEndpointsRequest,
) -> Result<Response, Refused> {
    if request.node_id != node_id {
        return Err(another_node(node_id, &request.node_id));
    }
    let timeout = Duration::from_millis(request.timeout_ms).min(MAX_LONG_POLL);
    let endpoints = shared
        .link
        .service_endpoints(node_id, request.have.as_deref(), timeout)
        .await
        .map_err(Refused::unavailable)?;
    Ok(json_response(&endpoints))
}

fn task_answer(shared: &Shared, node_id: &str, answer: TaskAnswer) -> Result<Response, Refused> {
    match shared.api.task_requests.answer(node_id, answer) {
        Ok(()) => Ok(json_response(&serde_json::json!({}))),
        Err(AnswerRefused::OtherNode(id)) => {
            tracing::warn!(
                node = node_id,
                request = id,
                "a node answered a task request of another node"
            );
            Err(Refused::forbidden(format!(
                "task request {id} was not asked of node '{node_id}'"
            )))
        }
        // Given up on (the caller's wait ended) or answered before: nothing to do, and
        // nothing for the agent to retry.
        Err(AnswerRefused::Unknown(id)) => Err(Refused::new(
            StatusCode::NOT_FOUND,
            RefusalCode::BadRequest,
            format!("no task request {id} waits for an answer"),
        )),
    }
}

fn epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
