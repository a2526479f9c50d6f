//! `abgp`: the agent-bgp node binary.

fn main() -> anyhow::Result<()> {
    println!("abgp {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
