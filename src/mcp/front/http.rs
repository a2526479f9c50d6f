//! The front over streamable HTTP: `http://<listen>/mcp`.
//!
//! Loopback by default. A bearer token (`[mcp] bearer-token`) is checked on
//! every request when set, and is required to listen anywhere else: the
//! front runs tools on other people's agents, so an open port on a network
//! is not an option. The token is compared in constant time and never
//! logged. On loopback without a token, rmcp's Host-header check (loopback
//! names only) guards against DNS rebinding from a browser.
//!
//! Sessions: 2025-11-25 clients get a session (`Mcp-Session-Id`) with a GET
//! stream for `notifications/tools/list_changed`; 2026-07-28 clients are
//! served statelessly and subscribe with `subscriptions/listen`.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::FrontServer;
use crate::mcp::config::BearerToken;

/// Why the HTTP front did not start.
#[derive(Debug, thiserror::Error)]
pub enum FrontHttpError {
    #[error(
        "refusing to serve the MCP front on {0} without a bearer token: set [mcp] bearer-token, or listen on a loopback address"
    )]
    OpenWithoutToken(SocketAddr),
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
}

impl HttpFront {
    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

/// Binds `listen` and serves `server` at `/mcp` until `stop` is cancelled.
pub async fn serve(
    listen: SocketAddr,
    token: Option<BearerToken>,
    server: FrontServer,
    stop: CancellationToken,
) -> Result<HttpFront, FrontHttpError> {
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(FrontHttpError::OpenWithoutToken(listen));
    }
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
    let mut cfg = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_cancellation_token(stop.child_token())
        .with_sse_keep_alive(Some(std::time::Duration::from_secs(15)));
    if !addr.ip().is_loopback() {
        // Reachable under names we cannot know; the token guards it.
        cfg = cfg.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        cfg,
    );
    let mut app = axum::Router::new().nest_service("/mcp", service);
    if let Some(t) = token {
        app = app.layer(middleware::from_fn_with_state(
            std::sync::Arc::new(t),
            require_bearer,
        ));
    }
    let task = tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "MCP front stopped");
        }
    });
    Ok(HttpFront { addr, task })
}

async fn require_bearer(
    State(token): State<std::sync::Arc<BearerToken>>,
    req: Request,
    next: Next,
) -> Response {
    if bearer_ok(req.headers(), &token) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token\n",
        )
            .into_response()
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
    constant_time_eq(given.trim().as_bytes(), token.expose().as_bytes())
}

/// Compares without an early exit, so timing does not reveal how much of
/// a guess was right (the length may leak; tokens should be long).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        let e = serve(addr, None, server, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(e, FrontHttpError::OpenWithoutToken(_)));
        assert!(e.to_string().contains("bearer-token"));
    }
}
