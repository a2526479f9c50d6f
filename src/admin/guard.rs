//! The checks every admin request passes before a handler sees it, in this
//! order:
//!
//! 1. **Host** is a loopback name (`localhost`, `127.0.0.0/8`, `::1`) or
//!    one listed in `[admin] allowed_hosts`: a page that rebinds its own
//!    DNS name to 127.0.0.1 still sends its own name, and is refused
//!    (403).
//! 2. **Origin**, when present, is listed in `[admin] allowed_origins`
//!    (none by default): browsers send it on every cross-origin request,
//!    the CLI never does (403).
//! 3. **Token**: `Authorization: Bearer <token>` with the node's admin
//!    token, compared in constant time (401).
//! 4. **Body**: a request that carries one (POST, PUT, PATCH, or any with
//!    a body) says `Content-Type: application/json` (415), which a page
//!    cannot send cross-origin without a CORS preflight that this API never
//!    answers.
//!
//! Refusals are answered with a JSON `{"error": ...}` naming the check,
//! counted, and logged at most once a second with the offending value
//! escaped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::token::AdminToken;
use super::views::AdminRefusedView;
use crate::local_http::{BrowserGuard, BrowserRefusal};
use crate::logging::{Throttle, Untrusted};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No Host, or one that is not a loopback or allowed name.
    Host(String),
    /// An Origin that is not explicitly allowed.
    Origin(String),
    /// No `Authorization: Bearer`, or the wrong token.
    Token,
    /// A body that is not declared `application/json`.
    ContentType(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Host(_) | Refusal::Origin(_) => StatusCode::FORBIDDEN,
            Refusal::Token => StatusCode::UNAUTHORIZED,
            Refusal::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Refusal::Host(_) => "host",
            Refusal::Origin(_) => "origin",
            Refusal::Token => "token",
            Refusal::ContentType(_) => "content-type",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Host(h) => format!(
                "Host {h:?} is not allowed: the admin API answers only to loopback names (or [admin] allowed_hosts)"
            ),
            Refusal::Origin(o) => format!(
                "Origin {o:?} is not allowed: browsers may not use the admin API (unless listed in [admin] allowed_origins)"
            ),
            Refusal::Token => "missing or wrong admin token: send `Authorization: Bearer <token>` with the token from the node's admin.token file".into(),
            Refusal::ContentType(c) => format!(
                "request bodies must be application/json (got {c:?})"
            ),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.message() }));
        if self == Refusal::Token {
            (self.status(), [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else {
            (self.status(), body).into_response()
        }
    }
}

/// Refusals counted by kind (shown in `/v1/status`).
#[derive(Debug, Default)]
pub struct RefusalCounts {
    pub host: AtomicU64,
    pub origin: AtomicU64,
    pub token: AtomicU64,
    pub content_type: AtomicU64,
}

impl RefusalCounts {
    fn count(&self, r: &Refusal) {
        let c = match r {
            Refusal::Host(_) => &self.host,
            Refusal::Origin(_) => &self.origin,
            Refusal::Token => &self.token,
            Refusal::ContentType(_) => &self.content_type,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn view(&self) -> AdminRefusedView {
        AdminRefusedView {
            host: self.host.load(Ordering::Relaxed),
            origin: self.origin.load(Ordering::Relaxed),
            token: self.token.load(Ordering::Relaxed),
            content_type: self.content_type.load(Ordering::Relaxed),
        }
    }
}

/// The admin API's request checks, built from `[admin]`.
#[derive(Debug)]
pub struct Guard {
    token: AdminToken,
    browser: BrowserGuard,
    pub refused: RefusalCounts,
    log: Throttle,
}

impl Guard {
    pub fn new(token: AdminToken, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        Guard {
            token,
            browser: BrowserGuard::new(Some(allowed_hosts), allowed_origins),
            refused: RefusalCounts::default(),
            log: Throttle::per_second(),
        }
    }

    /// Runs the four checks.
    pub fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        self.browser.check(uri, headers).map_err(|r| match r {
            BrowserRefusal::Host(h) => Refusal::Host(h),
            BrowserRefusal::Origin(o) => Refusal::Origin(o),
        })?;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        match given {
            Some(t) if self.token.matches(t.as_bytes()) => {}
            _ => return Err(Refusal::Token),
        }
        let has_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH)
            || headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0");
        if has_body {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            let essence = ct.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case("application/json") {
                return Err(Refusal::ContentType(ct));
            }
        }
        Ok(())
    }

    fn refuse(&self, r: Refusal) -> Response {
        self.refused.count(&r);
        if let Some(suppressed) = self.log.allow() {
            let detail = match &r {
                Refusal::Host(v) | Refusal::Origin(v) | Refusal::ContentType(v) => v.as_str(),
                Refusal::Token => "",
            };
            tracing::warn!(
                check = r.kind(),
                value = %Untrusted(detail),
                suppressed,
                "admin API request refused"
            );
        }
        r.into_response()
    }
}

/// The axum middleware: refuses what [`Guard::check`] refuses.
pub async fn enforce(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    match guard.check(req.method(), req.uri(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(r) => guard.refuse(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn guard() -> Guard {
        Guard::new(
            AdminToken::generate(),
            &["node.internal".into()],
            &["http://localhost:5173".into()],
        )
    }

    fn headers(g: &Guard, pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:4180"));
        let auth = format!("Bearer {}", g.token.expose());
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        for (k, v) in pairs {
            let name: header::HeaderName = k.parse().unwrap();
            if v.is_empty() {
                h.remove(name);
            } else {
                h.insert(name, HeaderValue::from_str(v).unwrap());
            }
        }
        h
    }

    fn check(g: &Guard, m: Method, pairs: &[(&str, &str)]) -> Result<(), Refusal> {
        g.check(&m, &"/v1/agents".parse().unwrap(), &headers(g, pairs))
    }

    #[test]
    fn loopback_and_listed_hosts_pass_others_do_not() {
        let g = guard();
        for h in [
            "127.0.0.1:4180",
            "localhost:4180",
            "LOCALHOST",
            "[::1]:4180",
            "127.8.9.1",
            "node.internal:4180",
        ] {
            assert_eq!(check(&g, Method::GET, &[("host", h)]), Ok(()), "{h}");
        }
        for h in [
            "evil.example:4180",
            "127.0.0.1.evil.example",
            "10.0.0.1:4180",
        ] {
            assert!(
                matches!(
                    check(&g, Method::GET, &[("host", h)]),
                    Err(Refusal::Host(_))
                ),
                "{h}"
            );
        }
        assert!(matches!(
            check(&g, Method::GET, &[("host", "")]),
            Err(Refusal::Host(_))
        ));
    }

    #[test]
    fn only_listed_origins_pass() {
        let g = guard();
        assert_eq!(
            check(&g, Method::GET, &[("origin", "http://localhost:5173")]),
            Ok(())
        );
        for o in [
            "http://evil.example",
            "http://localhost:5174",
            "https://localhost:5173",
            "null",
            "not an origin",
        ] {
            assert!(
                matches!(
                    check(&g, Method::GET, &[("origin", o)]),
                    Err(Refusal::Origin(_))
                ),
                "{o}"
            );
        }
    }

    #[test]
    fn the_token_is_required_and_must_match() {
        let g = guard();
        assert_eq!(check(&g, Method::GET, &[]), Ok(()));
        assert_eq!(
            check(&g, Method::GET, &[("authorization", "")]),
            Err(Refusal::Token)
        );
        assert_eq!(
            check(&g, Method::GET, &[("authorization", "Bearer nope")]),
            Err(Refusal::Token)
        );
        let basic = format!("Basic {}", g.token.expose());
        assert_eq!(
            check(&g, Method::GET, &[("authorization", &basic)]),
            Err(Refusal::Token)
        );
    }

    #[test]
    fn bodies_must_be_json() {
        let g = guard();
        let json = [("content-type", "application/json; charset=utf-8")];
        assert_eq!(check(&g, Method::POST, &json), Ok(()));
        for ct in ["text/plain", "application/x-www-form-urlencoded", ""] {
            assert!(
                matches!(
                    check(&g, Method::POST, &[("content-type", ct)]),
                    Err(Refusal::ContentType(_))
                ),
                "{ct:?}"
            );
        }
        assert_eq!(check(&g, Method::DELETE, &[]), Ok(()));
        assert!(matches!(
            check(
                &g,
                Method::DELETE,
                &[("content-length", "5"), ("content-type", "text/plain")]
            ),
            Err(Refusal::ContentType(_))
        ));
    }

    #[test]
    fn the_issue_request_is_refused_on_its_host_first() {
        // The cross-origin request of a hostile page: foreign Host and
        // Origin, no token, a text/plain body.
        let g = guard();
        let r = check(
            &g,
            Method::POST,
            &[
                ("host", "evil.example:4180"),
                ("origin", "http://evil.example"),
                ("authorization", ""),
                ("content-type", "text/plain"),
            ],
        );
        assert!(matches!(r, Err(Refusal::Host(_))));
        assert_eq!(r.unwrap_err().status(), StatusCode::FORBIDDEN);
    }
}
