//! An rmcp client on a node's MCP front, for the multi-node tests: connect
//! (with extra HTTP headers), wait for the front name of a routed tool, and
//! bound every wait.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

/// `fut`, or a panic naming `what` after `d`.
pub async fn within<T>(what: &str, d: Duration, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(d, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A client session on the front at `url`, sending `headers` (name, value)
/// on every request.
pub async fn client(url: &str, headers: &[(&'static str, &str)]) -> RunningService<RoleClient, ()> {
    let headers: HashMap<_, _> = headers
        .iter()
        .map(|(name, value)| {
            (
                http::HeaderName::from_static(name),
                http::HeaderValue::from_str(value).expect("a header value"),
            )
        })
        .collect();
    let t = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers),
    );
    within(
        "the MCP client to connect",
        Duration::from_secs(30),
        ().serve(t),
    )
    .await
    .unwrap_or_else(|e| panic!("an MCP client connects to {url}: {e}"))
}

/// The front name of the tool routed for `capability`, once the front lists
/// it with its descriptor fetched; within `d`.
pub async fn tool_name(
    c: &RunningService<RoleClient, ()>,
    capability: &str,
    d: Duration,
) -> String {
    let wanted = format!("capability {capability},");
    within(&format!("the tool for {capability}"), d, async {
        loop {
            let tools = c.list_all_tools().await.expect("tools/list");
            if let Some(t) = tools.iter().find(|t| {
                t.description
                    .as_deref()
                    .is_some_and(|d| d.contains(&wanted) && !d.contains("not fetched"))
            }) {
                return t.name.to_string();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}
