//! What more than one bench needs: an MCP client of a node's front.

use rmcp::RoleClient;
use rmcp::model::ProtocolVersion;
use rmcp::service::{ClientLifecycleMode, RunningService, serve_client_with_lifecycle_and_ct};
use rmcp::transport::StreamableHttpClientTransport;
use tokio_util::sync::CancellationToken;

/// An MCP client of the front at `url` (streamable HTTP, 2026-07-28 preferred).
pub async fn client(url: &str) -> RunningService<RoleClient, ()> {
    serve_client_with_lifecycle_and_ct(
        (),
        StreamableHttpClientTransport::from_uri(url),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        CancellationToken::new(),
    )
    .await
    .expect("an MCP client of the front")
}
