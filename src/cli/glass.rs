//! `abgp glass --config DIR/node.toml`: the address of the running node's
//! looking glass (`/glass` on its admin API, see `agent_bgp::admin::glass`),
//! with the admin token in the URL fragment so the page can log in. The
//! fragment (after `#`) is never sent to a server; the page keeps the token
//! in the tab and takes it out of the address bar. `--no-token` prints the
//! bare address (the page then asks for the token).
//!
//! It asks the node's `/v1/status` first, so an address it prints is one
//! that answered with that token.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use agent_bgp::config::NodeConfig;

use super::admin_http::{AdminClient, read_token};

#[derive(Debug, Args)]
pub struct GlassArgs {
    /// The running node's node.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Print the address without the token.
    #[arg(long)]
    pub no_token: bool,
}

pub fn glass(a: GlassArgs) -> anyhow::Result<ExitCode> {
    let cfg = NodeConfig::load(&a.config)?;
    let admin = AdminClient::from_config(&cfg)?;
    let (code, body) = admin.request("GET", "/v1/status", None)?;
    if code != 200 {
        let body: String = body.chars().take(300).collect();
        bail!(
            "the node's admin API at {} answered {code}: {}",
            admin.hostport(),
            body.escape_debug()
        );
    }
    let url = format!(
        "http://{}{}",
        admin.hostport(),
        agent_bgp::admin::glass::PATH
    );
    if a.no_token {
        println!("{url}");
    } else {
        let token = read_token(&cfg.admin_token_path())?;
        println!("{url}#token={}", super::ops::percent_encode(token.expose()));
        eprintln!(
            "abgp glass: the address carries the admin token after '#': open it in a browser on this machine, do not share it"
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_token_is_percent_encoded_in_the_fragment() {
        assert_eq!(super::super::ops::percent_encode("ab09-._~"), "ab09-._~");
        assert_eq!(
            super::super::ops::percent_encode("a+b%c&d#e=f g"),
            "a%2Bb%25c%26d%23e%3Df%20g"
        );
    }
}
