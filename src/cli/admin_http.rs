//! A minimal blocking HTTP/1.1 client for the node's admin API, which is
//! plain HTTP on loopback: enough for `abgp agent` and `abgp mcp`, without
//! another HTTP stack in the binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};

use agent_bgp::config::LoadedConfig;

/// The admin API's `host:port`: from node.toml, or, when it says port 0,
/// from the address the running node recorded in its data directory.
pub fn admin_addr(cfg: &LoadedConfig) -> anyhow::Result<String> {
    match cfg.config.admin.listen.0 {
        Some(a) if a.port() != 0 => Ok(a.to_string()),
        Some(_) => {
            let f = cfg.data_dir().join(agent_bgp::node::ADMIN_ADDR_FILE);
            std::fs::read_to_string(&f)
                .map(|s| s.trim().to_string())
                .with_context(|| {
                    format!(
                        "the admin API listens on a port chosen at start; {} not readable (is `abgp run` up?)",
                        f.display()
                    )
                })
        }
        None => bail!(
            "{}: the admin API is off ([admin] listen = \"off\"); this command needs it",
            cfg.path.display()
        ),
    }
}

/// Sends one request; returns the status code and the body.
pub fn request(
    hostport: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(hostport).with_context(|| {
        format!("connecting to the node's admin API at {hostport} (is `abgp run` up?)")
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
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
    Ok((code, rest.to_string()))
}
