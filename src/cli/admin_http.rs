//! A minimal blocking HTTP/1.1 client for the node's admin API, which is
//! plain HTTP on loopback: enough for `abgp agent`, `abgp mcp` and the
//! demo, without another HTTP stack in the binary. Every request carries
//! the node's admin token.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use agent_bgp::admin::AdminToken;
use agent_bgp::config::LoadedConfig;

/// Largest answer read (the Loc-RIB of a big node fits).
const MAX_ANSWER: u64 = 256 * 1024 * 1024;

/// Where a running node's admin API is and the token it wants.
#[derive(Debug, Clone)]
pub struct AdminClient {
    hostport: String,
    token: AdminToken,
}

impl AdminClient {
    pub fn new(hostport: String, token: AdminToken) -> Self {
        AdminClient { hostport, token }
    }

    /// From node.toml: the address (or, when it says port 0, the address
    /// the running node recorded in its data directory) and the token file.
    pub fn from_config(cfg: &LoadedConfig) -> anyhow::Result<Self> {
        let hostport = match cfg.config.admin.listen.0 {
            Some(a) if a.port() != 0 => a.to_string(),
            Some(_) => {
                let f = cfg.data_dir().join(agent_bgp::node::ADMIN_ADDR_FILE);
                std::fs::read_to_string(&f)
                    .map(|s| s.trim().to_string())
                    .with_context(|| {
                        format!(
                            "the admin API listens on a port chosen at start; {} not readable (is `abgp run` up?)",
                            f.display()
                        )
                    })?
            }
            None => bail!(
                "{}: the admin API is off ([admin] listen = \"off\"); this command needs it",
                cfg.path.display()
            ),
        };
        Ok(AdminClient {
            hostport,
            token: read_token(&cfg.admin_token_path())?,
        })
    }

    pub fn hostport(&self) -> &str {
        &self.hostport
    }

    /// Sends one request; returns the status code and the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let hostport = &self.hostport;
        let mut s = TcpStream::connect(hostport).with_context(|| {
            format!("connecting to the node's admin API at {hostport} (is `abgp run` up?)")
        })?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let body = body.unwrap_or("");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.token.expose(),
            body.len()
        )?;
        let mut buf = Vec::new();
        s.take(MAX_ANSWER).read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let Some((head, rest)) = text.split_once("\r\n\r\n") else {
            bail!("the admin API sent no HTTP header");
        };
        let code = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .context("no status code in the admin API's answer")?;
        if code == 401 {
            bail!(
                "the admin API refused the token; is this node.toml the running node's? ({})",
                rest.trim()
            );
        }
        Ok((code, rest.to_string()))
    }
}

/// The admin token from its file, with a hint when it is missing.
pub fn read_token(path: &Path) -> anyhow::Result<AdminToken> {
    AdminToken::load(path).with_context(|| {
        format!(
            "reading the admin token (created by `abgp init` or at the node's first start) from {}",
            path.display()
        )
    })
}
