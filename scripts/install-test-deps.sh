#!/usr/bin/env bash
# Installs the real MCP servers and clients the integration tests use, into
# the repository (both folders are gitignored):
#
#   .tools/node  npm: @modelcontextprotocol/server-everything (reference
#                server, stdio and streamable HTTP) and
#                @modelcontextprotocol/inspector (CLI client)
#   .venv        PyPI: mcp-server-time (reference server) and mcp (the
#                official Python SDK, used as a client)
#
# Versions are pinned below; docs/mcp.md says why these. Idempotent: a stamp
# file per folder records the pins installed, so a second run with the same
# pins returns at once. Quiet on success; on failure it prints the
# installer's output and exits non-zero.
#
# Needs Node.js 20+ with npm, and Python 3.10+ with venv. Only the package
# registries are contacted.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_PKGS=(
  "@modelcontextprotocol/server-everything@2026.8.31"
  "@modelcontextprotocol/inspector@2.12.0"
)
PY_PKGS=(
  "mcp-server-time==2026.10.19"
  "mcp==2.3.0"
)

NODE_DIR=.tools/node
VENV_DIR=.venv

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
