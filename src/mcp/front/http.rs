//! The front over streamable HTTP: `http://<listen>/mcp`.
//!
//! Loopback by default. A bearer token (`[mcp] bearer-token`) is checked on
//! every request when set, and is required to listen anywhere else: the
//! front runs tools on other people's agents, so an open port on a network
//! is not an option. The token is compared in constant time and never
//! logged.
//!
//! Browsers: the streamable HTTP transport says servers MUST validate
//! `Origin`. A request with an `Origin` header that is not listed in
//! `[mcp] allowed-origins` (none by default) gets 403, whatever its Host;
//! MCP clients that are not web pages send no Origin. On loopback, rmcp's
//! Host check (loopback names and `[mcp] allowed-hosts` only) also refuses
//! a page that rebinds its DNS name to 127.0.0.1. rmcp refuses bodies that
//! are not JSON, which a page cannot send cross-origin without a preflight.
//! Connections are capped and slow headers cut off ([`crate::local_http`]).
//!
//! Views: each [`ViewEndpoint`] is served at `/mcp/<name>` with its own
//! token (always required, whatever the listen address), its own sessions
//! and its own [`View`](super::view::View); the Host and Origin checks are
//! the same as `/mcp`'s. A view's token opens that view only: `/mcp` and the
//! other views refuse it (tokens must differ; the front does not start
//! otherwise). Any other path gets 404 (`/mcp/../x`, an unknown view, a
//! name too long to be one), after the Host and Origin checks.
//!
//! Sessions: 2025-11-25 clients get a session (`Mcp-Session-Id`) with a GET
//! stream for `notifications/tools/list_changed`; 2026-07-28 clients are
//! served statelessly and subscribe with `subscriptions/listen`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::FrontServer;
use crate::local_http::{BrowserGuard, BrowserRefusal};
use crate::logging::{Throttle, Untrusted};
use crate::mcp::config::BearerToken;

/// Why the HTTP front did not start.
#[derive(Debug, thiserror::Error)]
pub enum FrontHttpError {
    #[error(
        "refusing to serve the MCP front on {0} without a bearer token: set [mcp] bearer-token, or listen on a loopback address"
    )]
    OpenWithoutToken(SocketAddr),
    #[error(
        "view {view:?} has the same bearer token as {other}: each endpoint needs its own token"
    )]
    SharedToken { view: String, other: String },
    #[error("{0} views; at most {max}", max = super::view::MAX_VIEWS)]
    TooManyViews(usize),
    #[error("view {view:?}: {message}")]
    View { view: String, message: String },
    #[error("MCP front on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The running HTTP front.
#[derive(Debug)]
pub struct HttpFront {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
    /// Requests refused before rmcp saw them.
    pub refused: Arc<FrontRefusals>,
}

/// Requests the front refused, by reason (`/v1/mcp` shows them).
#[derive(Debug, Default)]
pub struct FrontRefusals {
    pub host: AtomicU64,
    pub origin: AtomicU64,
    pub token: AtomicU64,
}

impl FrontRefusals {
    /// (host, origin, token) now.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.host.load(Ordering::Relaxed),
            self.origin.load(Ordering::Relaxed),
            self.token.load(Ordering::Relaxed),
        )
    }
}

/// What the middleware in front of rmcp checks.
#[derive(Debug)]
struct Gate {
    browser: BrowserGuard,
    token: Option<BearerToken>,
    refused: Arc<FrontRefusals>,
    log: Throttle,
}

impl HttpFront {
    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

/// A view's endpoint: its handler (which holds the view) and its token.
pub struct ViewEndpoint {
    pub server: FrontServer,
    pub token: BearerToken,
}

/// Who may reach the front over HTTP.
#[derive(Debug, Clone, Default)]
pub struct FrontAccess {
    /// `Authorization: Bearer` every request must carry, when set.
    pub token: Option<BearerToken>,
    /// Host names allowed besides loopback ones (loopback listeners only).
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed; any other `Origin` gets 403.
    pub allowed_origins: Vec<String>,
}

/// Binds `listen` and serves `server` at `/mcp` until `stop` is cancelled.
pub async fn serve(
    listen: SocketAddr,
    access: FrontAccess,
    server: FrontServer,
    stop: CancellationToken,
) -> Result<HttpFront, FrontHttpError> {
    serve_with_views(listen, access, server, Vec::new(), stop).await
}

/// [`serve`], and each view at `/mcp/<name>` behind its own token.
pub async fn serve_with_views(
    listen: SocketAddr,
    access: FrontAccess,
    server: FrontServer,
    views: Vec<ViewEndpoint>,
    stop: CancellationToken,
) -> Result<HttpFront, FrontHttpError> {
    let FrontAccess {
        token,
        allowed_hosts,
        allowed_origins,
    } = access;
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(FrontHttpError::OpenWithoutToken(listen));
    }
    if views.len() > super::view::MAX_VIEWS {
        return Err(FrontHttpError::TooManyViews(views.len()));
    }
    check_tokens_differ(token.as_ref(), &views)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| FrontHttpError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| FrontHttpError::Bind {
            addr: listen,
            source,
        })?;
    // JSON answers for calls that send nothing before their result (most
    // of them): cheaper than an SSE stream per request. A call that sends
    // progress first still gets SSE.
    // A page the front itself would serve (its own loopback origin) is
    // same-origin, not cross-origin; the gate allows it too (see
    // `local_http::BrowserGuard`).
    let mut origins = allowed_origins.clone();
    if addr.ip().is_loopback() {
        let port = addr.port();
        origins.extend([
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ]);
    }
    let mut cfg = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_cancellation_token(stop.child_token())
        .with_sse_keep_alive(Some(std::time::Duration::from_secs(15)))
        .with_allowed_origins(origins)
        .enforce_origin_validation();
    if addr.ip().is_loopback() {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(String::from)
            .collect();
        hosts.extend(allowed_hosts.iter().cloned());
        cfg = cfg.with_allowed_hosts(hosts);
    } else {
        // Reachable under names we cannot know; the token guards it.
        cfg = cfg.disable_allowed_hosts();
    }
    let refused = Arc::new(FrontRefusals::default());
    let gate = |token: Option<BearerToken>| {
        Arc::new(Gate {
            browser: BrowserGuard::new(
                addr.ip().is_loopback().then_some(allowed_hosts.as_slice()),
                &allowed_origins,
            ),
            token,
            refused: refused.clone(),
            log: Throttle::per_second(),
        })
    };
    // One route per endpoint, each behind its own gate (its own token),
    // with its own sessions; paths are exact, so `/mcp/<other>` never
    // reaches `/mcp`.
    let endpoint = |path: &str, server: FrontServer, token: Option<BearerToken>| {
        let service = StreamableHttpService::new(
            move || Ok(server.for_session()),
            LocalSessionManager::default().into(),
            cfg.clone(),
        );
        axum::Router::new()
            .route_service(path, service)
            .layer(middleware::from_fn_with_state(gate(token), check_gate))
    };
    let mut app = endpoint("/mcp", server, token);
    for v in views {
        let path = v.server.view().path();
        app = app.merge(endpoint(&path, v.server, Some(v.token)));
    }
    let app = app.merge(
        axum::Router::new()
            .fallback(no_endpoint)
            .layer(middleware::from_fn_with_state(gate(None), check_gate)),
    );
    let task = tokio::spawn(crate::local_http::serve(
        listener,
        app,
        crate::local_http::Limits::FRONT,
        "mcp-front",
        async move { stop.cancelled().await },
    ));
    Ok(HttpFront {
        addr,
        task,
        refused,
    })
}

/// Refuses to start when two endpoints share a token: one would open the
/// other.
fn check_tokens_differ(
    default: Option<&BearerToken>,
    views: &[ViewEndpoint],
) -> Result<(), FrontHttpError> {
    for (i, v) in views.iter().enumerate() {
        let name = v.server.view().name.clone().unwrap_or_default();
        let same = |t: &BearerToken| t.matches(v.token.expose().as_bytes());
        if default.is_some_and(same) {
            return Err(FrontHttpError::SharedToken {
                view: name,
                other: "[mcp] bearer_token".into(),
            });
        }
        if let Some(o) = views[..i].iter().find(|o| same(&o.token)) {
            return Err(FrontHttpError::SharedToken {
                view: name,
                other: format!("view {:?}", o.server.view().name.as_deref().unwrap_or("")),
            });
        }
    }
    Ok(())
}

/// A path that is no endpoint (after the Host and Origin checks).
async fn no_endpoint() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no MCP endpoint at this path: the front serves /mcp and /mcp/<view> for the views of [[mcp.views]]\n",
    )
        .into_response()
}

/// Host and Origin first (403, as for the admin API), then the bearer
/// token when one is set (401). Refusals are counted and logged at most
/// once a second.
async fn check_gate(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let refusal = match gate.browser.check(req.uri(), req.headers()) {
        Err(BrowserRefusal::Host(h)) => Some(("host", h, &gate.refused.host)),
        Err(BrowserRefusal::Origin(o)) => Some(("origin", o, &gate.refused.origin)),
        Ok(()) => match &gate.token {
            Some(t) if !bearer_ok(req.headers(), t) => {
                Some(("token", String::new(), &gate.refused.token))
            }
            _ => None,
        },
    };
    let Some((check, value, counter)) = refusal else {
        return next.run(req).await;
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if let Some(suppressed) = gate.log.allow() {
        tracing::warn!(check, value = %Untrusted(&value), suppressed, "MCP front request refused");
    }
    match check {
        "token" => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token\n",
        )
            .into_response(),
        "host" => (
            StatusCode::FORBIDDEN,
            format!("Host {value:?} is not allowed (loopback names or [mcp] allowed-hosts)\n"),
        )
            .into_response(),
        _ => (
            StatusCode::FORBIDDEN,
            format!("Origin {value:?} is not allowed (see [mcp] allowed-origins)\n"),
        )
            .into_response(),
    }
}

fn bearer_ok(headers: &HeaderMap, token: &BearerToken) -> bool {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
    else {
        return false;
    };
    token.matches(given.trim().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let t = BearerToken::new("s3cret-token");
        assert!(bearer_ok(&headers("Bearer s3cret-token"), &t));
        assert!(!bearer_ok(&headers("Bearer s3cret-tokeN"), &t));
        assert!(!bearer_ok(&headers("Basic s3cret-token"), &t));
        assert!(!bearer_ok(&headers("Bearer "), &t));
        assert!(!bearer_ok(&HeaderMap::new(), &t));
    }

    #[tokio::test]
    async fn a_non_loopback_front_needs_a_token() {
        let (link, _end) = super::super::FrontLink::channel(
            super::super::FrontInfo {
                asn: crate::core::Asn(1),
                node: "n".into(),
            },
            4,
        );
        let server = FrontServer::new(link);
        let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let e = serve(
            addr,
            FrontAccess::default(),
            server,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, FrontHttpError::OpenWithoutToken(_)));
        assert!(e.to_string().contains("bearer-token"));
    }

    #[tokio::test]
    async fn endpoints_that_share_a_token_do_not_start() {
        let (link, _end) = super::super::FrontLink::channel(
            super::super::FrontInfo {
                asn: crate::core::Asn(1),
                node: "n".into(),
            },
            4,
        );
        let view = |name: &str| {
            let cfg = super::super::view::ViewConfig {
                name: name.into(),
                ..Default::default()
            };
            FrontServer::for_view(
                link.clone(),
                super::super::view::View::compile(&cfg, crate::core::Asn(1)).unwrap(),
            )
        };
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let access = FrontAccess {
            token: Some(BearerToken::new("default-token-0123")),
            ..Default::default()
        };
        let shared = [
            (("a", "default-token-0123"), ("b", "b-token-0123456789")),
            (("a", "a-token-0123456789"), ("b", "a-token-0123456789")),
        ];
        for ((a, ta), (b, tb)) in shared {
            let views = vec![
                ViewEndpoint {
                    server: view(a),
                    token: BearerToken::new(ta),
                },
                ViewEndpoint {
                    server: view(b),
                    token: BearerToken::new(tb),
                },
            ];
            let e = serve_with_views(
                addr,
                access.clone(),
                FrontServer::new(link.clone()),
                views,
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
            assert!(matches!(e, FrontHttpError::SharedToken { .. }), "{e}");
            assert!(
                !e.to_string().contains("token-0123"),
                "never the token: {e}"
            );
        }
    }
}
