//! `abgp`: the agent-bgp node binary.

use std::io::Write;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            agent_bgp::sim::tour::corporate_tour(&mut out)?;
            out.flush()?;
            Ok(())
        }
        Some("--version") | Some("-V") => {
            println!("abgp {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => {
            eprintln!("usage: abgp demo");
            std::process::exit(2);
        }
    }
}
