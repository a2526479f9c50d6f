//! `abgp`: the agent-bgp node binary. The commands live in [`cli`]; this is
//! the error edge (anyhow), everything below it uses typed errors.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
