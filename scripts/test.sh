#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, property and integration
# tests. CI (.ci/run) calls this; so does a developer on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "install the real MCP servers the tests use"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

# Benches are built by clippy above and run with `cargo bench`; running them
# here in debug mode would only be slow.
step "cargo test"
cargo test --locked

step "all tests passed"
