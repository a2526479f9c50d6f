//! `abgp tools`: what the node's MCP front lists, with the name a client
//! calls, the prefix it is routed under, and where it comes from; with
//! `--view V`, what a front view's `tools/list` gives its clients.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{Node, Target, as_path, print_json, print_table, table, text};

#[derive(Debug, Args)]
pub struct ToolsArgs {
    #[command(flatten)]
    pub target: Target,
    /// Show the full descriptions (else cut at 60 characters).
    #[arg(long)]
    pub long: bool,
    /// What the front view V (`[[mcp.views]]`) lists, asked over MCP with
    /// the view's token, as its clients see it (meta tools included).
    #[arg(long, value_name = "V")]
    pub view: Option<String>,
}

/// At most `n` characters, with an ellipsis when cut; on one line.
fn cut(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        return one_line;
    }
    let mut t: String = one_line.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

pub fn tools(a: ToolsArgs) -> anyhow::Result<ExitCode> {
    let node = Node::open(&a.target)?;
    if let Some(view) = &a.view {
        return view_tools(&node, view, &a);
    }
    let v = node.get("/v1/tools")?;
    if a.target.json {
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let list = v.as_array().cloned().unwrap_or_default();
    let mut t = table(&["NAME", "PREFIX", "ORIGIN", "AS PATH", "DESCRIPTION"]);
    for tool in &list {
        let desc = match tool["description"].as_str() {
            Some(d) if a.long => d.split_whitespace().collect::<Vec<_>>().join(" "),
            Some(d) => cut(d, 60),
            None if tool["descriptor_missing"] == true => "(descriptor not fetched yet)".into(),
            None => "-".into(),
        };
        t.add_row(vec![
            text(&tool["name"]),
            text(&tool["prefix"]),
            if tool["local"] == true {
                "this node".into()
            } else {
                format!("AS{}", tool["origin_asn"])
            },
            as_path(&tool["as_path"]),
            desc,
        ]);
    }
    print_table(&t);
    println!(
        "\n{} routed tools (the front also lists its meta tools)",
        list.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `tools/list` of a front view, over MCP.
fn view_tools(node: &Node, view: &str, a: &ToolsArgs) -> anyhow::Result<ExitCode> {
    let (url, token) = super::call::front_endpoint(node, Some(view))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tools = rt.block_on(async {
        let client = super::call::session(&url, token.as_ref(), Duration::from_secs(30)).await?;
        let r = client.list_all_tools().await;
        let _ = client.cancel().await;
        r.map_err(|e| super::fail(super::EXIT_FAILED, format!("tools/list at {url}: {e}")))
    })?;
    if a.target.json {
        print_json(&serde_json::to_value(&tools)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&["NAME", "DESCRIPTION"]);
    for tool in &tools {
        let d = tool.description.as_deref().unwrap_or("-");
        t.add_row(vec![
            tool.name.to_string(),
            if a.long {
                d.split_whitespace().collect::<Vec<_>>().join(" ")
            } else {
                cut(d, 60)
            },
        ]);
    }
    print_table(&t);
    println!("\n{} tools at {url}", tools.len());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn descriptions_are_cut_on_one_line() {
        assert_eq!(super::cut("a\n b", 10), "a b");
        assert_eq!(super::cut("abcdefghijk", 5), "abcd…");
    }
}
