//! The looking glass: a page the admin API serves at `/glass` that shows
//! the node's peers, its Loc-RIB with AS paths, a topology graph of the
//! federation drawn from those AS paths, the calls in flight and recent
//! call traces, updated every 2 s.
//!
//! The page is a shell (HTML, JS, CSS and an icon, built into the binary
//! with `include_str!`: nothing comes from a CDN, it works offline). The
//! shell holds no data, so it is served under the admin guard's Host and
//! Origin checks without the token; everything the page shows it fetches
//! from the ordinary admin API (`/v1/status`, `/v1/peers`, `/v1/routes`,
//! `/v1/routes/in/{peer}`, `/v1/calls`, `/v1/calls/recent`) with
//! `Authorization: Bearer <token>`, which the guard checks as for any
//! client. The token reaches the page in the URL fragment
//! (`/glass#token=...`, never sent to a server or logged); the script keeps
//! it in the tab's `sessionStorage` and removes it from the address bar.
//!
//! Every shell answer carries a strict Content-Security-Policy ([`CSP`]:
//! scripts, styles and fetches from this origin only, no inline script, no
//! framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//! no-referrer` and `Cache-Control: no-store`. The script writes text from
//! the network (prefixes, agent names, communities, errors) with
//! `textContent` only, and bounds what it renders (see `glass.js`:
//! `LIMITS`). docs/operations.md ("Looking glass") describes the page.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::guard::{Guard, Refusal};
use crate::logging::{Throttle, Untrusted};

/// Where the page is served.
pub const PATH: &str = "/glass";

/// The page's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("index.html");
const GLASS_JS: &str = include_str!("glass.js");
const GLASS_CSS: &str = include_str!("glass.css");
const FAVICON_SVG: &str = include_str!("favicon.svg");

/// What the shell's middleware holds.
#[derive(Debug)]
struct Shell {
    guard: Arc<Guard>,
    log: Throttle,
}

/// The looking glass's routes, each behind [`shell_check`]. Merged into
/// the admin router beside (not under) the token guard.
pub fn router(guard: Arc<Guard>) -> Router {
    let shell = Arc::new(Shell {
        guard,
        log: Throttle::per_second(),
    });
    Router::new()
        .route(PATH, get(index))
        .route("/glass/", get(index))
        .route("/glass/glass.js", get(script))
        .route("/glass/glass.css", get(style))
        .route("/glass/favicon.svg", get(icon))
        .layer(axum::middleware::from_fn_with_state(shell, enforce))
}

/// The admin guard's checks less the token: a wrong Host or a foreign
/// Origin is refused as for any admin request; a request without the token
/// is served, since the shell holds no data. The guard checks Host and
/// Origin before the token, so a token refusal means both passed.
pub fn shell_check(
    guard: &Guard,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    match guard.check(method, uri, headers) {
        Ok(()) | Err(Refusal::Token) => Ok(()),
        Err(r) => Err(r),
    }
}

async fn enforce(State(shell): State<Arc<Shell>>, req: Request, next: Next) -> Response {
    match shell_check(&shell.guard, req.method(), req.uri(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(r) => {
            let (counter, value) = match &r {
                Refusal::Host(v) => (&shell.guard.refused.host, v.as_str()),
                Refusal::Origin(v) => (&shell.guard.refused.origin, v.as_str()),
                Refusal::ContentType(v) => (&shell.guard.refused.content_type, v.as_str()),
                Refusal::Token => (&shell.guard.refused.token, ""),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = shell.log.allow() {
                tracing::warn!(
                    value = %Untrusted(value),
                    suppressed,
                    "looking glass request refused"
                );
            }
            r.into_response()
        }
    }
}

/// One built-in asset with the shell's headers.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let h = |v: &'static str| HeaderValue::from_static(v);
    (
        [
            (header::CONTENT_TYPE, h(content_type)),
            (header::CONTENT_SECURITY_POLICY, h(CSP)),
            (header::X_CONTENT_TYPE_OPTIONS, h("nosniff")),
            (header::REFERRER_POLICY, h("no-referrer")),
            (header::X_FRAME_OPTIONS, h("DENY")),
            (header::CACHE_CONTROL, h("no-store")),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", GLASS_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", GLASS_CSS)
}

async fn icon() -> Response {
    asset("image/svg+xml", FAVICON_SVG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::AdminToken;

    fn guard() -> Guard {
        Guard::new(AdminToken::generate(), &[], &[])
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            let name: header::HeaderName = k.parse().expect("header name");
            h.insert(name, HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    fn check(pairs: &[(&str, &str)]) -> Result<(), Refusal> {
        shell_check(
            &guard(),
            &Method::GET,
            &"/glass".parse().expect("uri"),
            &headers(pairs),
        )
    }

    #[test]
    fn the_shell_needs_no_token_but_a_loopback_host_and_no_foreign_origin() {
        assert_eq!(check(&[("host", "127.0.0.1:4180")]), Ok(()));
        assert_eq!(
            check(&[
                ("host", "localhost:4180"),
                ("origin", "http://localhost:4180")
            ]),
            Ok(())
        );
        assert!(matches!(
            check(&[("host", "evil.example:4180")]),
            Err(Refusal::Host(_))
        ));
        assert!(matches!(check(&[]), Err(Refusal::Host(_))));
        for o in ["http://evil.example", "http://127.0.0.1:4181", "null"] {
            assert!(
                matches!(
                    check(&[("host", "127.0.0.1:4180"), ("origin", o)]),
                    Err(Refusal::Origin(_))
                ),
                "{o}"
            );
        }
    }

    #[test]
    fn the_shell_has_no_inline_script_or_handlers() {
        // The CSP would block them; this keeps the page honest about it.
        let html = INDEX_HTML.to_ascii_lowercase();
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').expect("tag end")];
            assert!(tag.contains(" src="), "inline script: {tag}");
            assert!(
                html[i..].starts_with(&format!("{tag}></script>")),
                "script with a body"
            );
        }
        let handler = regex::Regex::new(r"\son[a-z]+\s*=").expect("regex");
        assert!(
            !handler.is_match(&html),
            "an inline event handler in index.html"
        );
        assert!(!html.contains("style="), "an inline style in index.html");
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!GLASS_JS.contains("innerHTML") && !GLASS_JS.contains("outerHTML"));
        assert!(!GLASS_JS.contains("insertAdjacentHTML") && !GLASS_JS.contains("eval("));
        assert!(!GLASS_JS.contains("document.write"));
    }
}
