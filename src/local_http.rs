//! The HTTP server loop every local surface (the admin API, the MCP front)
//! runs, with the bounds a local process or a page cannot push past:
//!
//! - at most [`Limits::max_connections`] open connections; one more is
//!   answered `503` and closed at once;
//! - request headers must arrive within [`Limits::header_timeout`]
//!   (slow-loris), and hyper's own caps on header count and size apply;
//! - HTTP/1.1 only (local clients speak it; no h2c upgrade to reason
//!   about).
//!
//! On shutdown it stops accepting, asks every connection to finish its
//! current request, and waits for them at most [`DRAIN`].
//!
//! [`BrowserGuard`] is the check both surfaces make first: a Host that is a
//! loopback name (a page that rebinds its DNS name to 127.0.0.1 still sends
//! its own name) and no Origin but the ones explicitly allowed (browsers
//! send one on every cross-origin request; CLI and MCP clients send none).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use axum::http::{HeaderMap, Uri, header};

use crate::logging::Throttle;

/// Why [`BrowserGuard`] refused a request (answered 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserRefusal {
    /// No Host, or one that is not a loopback or allowed name.
    Host(String),
    /// An Origin that is not explicitly allowed.
    Origin(String),
}

/// Host and Origin checks against pages in a browser.
#[derive(Debug, Clone)]
pub struct BrowserGuard {
    /// Host names allowed besides loopback ones, lower-case, without port;
    /// `None`: any Host (a surface on a non-loopback address, which a
    /// token guards instead).
    hosts: Option<Vec<String>>,
    /// Allowed origins, normalised (`scheme://host:port`, or `null`).
    origins: Vec<String>,
}

impl BrowserGuard {
    pub fn new(allowed_hosts: Option<&[String]>, allowed_origins: &[String]) -> Self {
        BrowserGuard {
            hosts: allowed_hosts.map(|hs| {
                hs.iter()
                    .map(|h| host_name(h).to_ascii_lowercase())
                    .collect()
            }),
            origins: allowed_origins
                .iter()
                .filter_map(|o| normalize_origin(o))
                .collect(),
        }
    }

    pub fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), BrowserRefusal> {
        if let Some(hosts) = &self.hosts {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| uri.authority().map(|a| a.to_string()))
                .ok_or_else(|| BrowserRefusal::Host(String::new()))?;
            if !host_allowed(&host, hosts) {
                return Err(BrowserRefusal::Host(host));
            }
        }
        if let Some(o) = headers.get(header::ORIGIN) {
            let text = String::from_utf8_lossy(o.as_bytes()).into_owned();
            let origin = normalize_origin(&text);
            let ok = origin
                .as_ref()
                .is_some_and(|n| self.origins.contains(n) || same_loopback_origin(n, headers));
            if !ok {
                return Err(BrowserRefusal::Origin(text));
            }
        }
        Ok(())
    }
}

/// A page served by this very server (its Origin is `http://` + the Host it
/// asks, and that Host is a loopback name) is not a cross-origin request:
/// no other site can have that origin, and a rebinding page carries its
/// own name in Host, which the Host check refuses.
fn same_loopback_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    host_allowed(host, &[])
        && normalize_origin(&format!("http://{host}")).as_deref() == Some(origin)
}

fn host_allowed(host: &str, extra: &[String]) -> bool {
    let name = host_name(host).to_ascii_lowercase();
    if name == "localhost" {
        return true;
    }
    if let Ok(ip) = name.parse::<std::net::IpAddr>()
        && ip.is_loopback()
    {
        return true;
    }
    extra.contains(&name)
}

/// The host part of a `Host` value: `[::1]:80` -> `::1`, `a.b:8` -> `a.b`.
fn host_name(host: &str) -> &str {
    let h = host.trim();
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match h.rsplit_once(':') {
        // One colon: name:port. More: a bare IPv6 address.
        Some((name, _)) if !name.contains(':') => name,
        _ => h,
    }
}

/// `scheme://host:port` with the default port filled in, lower-case;
/// `"null"` stays `"null"`. `None` for what is not an origin.
fn normalize_origin(o: &str) -> Option<String> {
    let o = o.trim();
    if o.eq_ignore_ascii_case("null") {
        return Some("null".into());
    }
    let uri: Uri = o.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let auth = uri.authority()?;
    let port = auth.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    let host = auth.host().trim_matches(['[', ']']).to_ascii_lowercase();
    Some(format!("{scheme}://{host}:{port}"))
}

/// How long shutdown waits for open connections.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Bounds of one HTTP surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Limits {
    /// The admin API: the CLI opens one connection per command.
    pub const ADMIN: Limits = Limits {
        max_connections: 32,
        header_timeout: Duration::from_secs(10),
    };
    /// The MCP front: every client session may hold a stream open.
    pub const FRONT: Limits = Limits {
        max_connections: 256,
        header_timeout: Duration::from_secs(10),
    };
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 37\r\nConnection: close\r\n\r\n{\"error\":\"too many open connections\"}";

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    what: &'static str,
    shutdown: impl Future<Output = ()> + Send,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    let busy_log = Throttle::per_second();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (mut stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little
                    // rather than spin.
                    tracing::warn!(surface = what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Some(suppressed) = busy_log.allow() {
                tracing::warn!(
                    surface = what,
                    limit = limits.max_connections,
                    suppressed,
                    "too many open connections; refusing one"
                );
            }
            tokio::spawn(async move {
                // Answer, then read what the client sent for up to a
                // second: closing with unread input would reset the
                // connection and lose the answer.
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    stream.write_all(BUSY).await?;
                    stream.shutdown().await?;
                    let mut sink = [0u8; 1024];
                    while stream.read(&mut sink).await? > 0 {}
                    Ok::<_, std::io::Error>(())
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut b = http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = b
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::trace!(surface = what, error = %e, "connection ended");
                    }
                    return;
                }
                () = stop.cancelled() => conn.as_mut().graceful_shutdown(),
            }
            let _ = tokio::time::timeout(DRAIN, conn).await;
        });
    }
    stop.cancel();
    // Every connection task holds a permit: all back means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, permits.acquire_many(all)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_loopback_origin_passes_without_being_listed() {
        let g = BrowserGuard::new(Some(&[]), &[]);
        let uri: Uri = "/mcp".parse().unwrap();
        let req = |host: &str, origin: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, host.parse().unwrap());
            h.insert(header::ORIGIN, origin.parse().unwrap());
            g.check(&uri, &h)
        };
        assert_eq!(req("127.0.0.1:4181", "http://127.0.0.1:4181"), Ok(()));
        assert_eq!(req("localhost:4181", "http://localhost:4181"), Ok(()));
        // Another local site, another port, https, or a rebinding name: no.
        assert!(req("127.0.0.1:4181", "http://127.0.0.1:3000").is_err());
        assert!(req("127.0.0.1:4181", "http://localhost:4181").is_err());
        assert!(req("127.0.0.1:4181", "https://127.0.0.1:4181").is_err());
        assert!(req("evil.example:4181", "http://evil.example:4181").is_err());
        assert!(req("127.0.0.1:4181", "null").is_err());
    }

    async fn start(limits: Limits) -> (std::net::SocketAddr, CancellationToken) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move { serve(l, app, limits, "test", s.cancelled_owned()).await });
        (addr, stop)
    }

    async fn get(addr: std::net::SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn connections_over_the_cap_get_503_and_freed_slots_serve_again() {
        let limits = Limits {
            max_connections: 2,
            header_timeout: Duration::from_secs(30),
        };
        let (addr, _stop) = start(limits).await;
        // Two silent connections hold both slots.
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            held.push(s);
        }
        // The server accepts in order: the third is refused at once.
        let refused = get(addr).await;
        assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
        drop(held);
        // Slots come back as the server sees the closes.
        let mut ok = String::new();
        for _ in 0..200 {
            ok = get(addr).await;
            if ok.starts_with("HTTP/1.1 200") {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_finishes_its_headers_is_closed() {
        let limits = Limits {
            max_connections: 4,
            header_timeout: Duration::from_secs(10),
        };
        let (addr, _stop) = start(limits).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut buf = Vec::new();
        // With time paused, the runtime jumps to the header deadline.
        let n = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut buf))
            .await
            .expect("closed by the server before 60 s");
        drop(n);
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.is_empty() || text.contains("408"),
            "no answer to a request never finished: {text}"
        );
    }
}
