#!/usr/bin/env bash
# Two laptops on one LAN, tried on one Linux machine: two network
# namespaces joined by a virtual Ethernet cable, one node in each.
#
#   "laptop" A: abgp federation create demo; abgp federation invite
#   "laptop" B: abgp init --join <token>
#   both run; each hosts the example MCP agent; each front lists the
#   other's tools. mDNS finds the peers (the token carries no addresses,
#   --no-bootstrap); nothing is edited by hand.
#
# Needs root (ip netns) and a built abgp: ABGP=/path/to/abgp, else
# target/release/abgp or target/debug/abgp, else `abgp` on PATH.
# Usage: sudo scripts/lan-demo.sh            (cleans up on exit)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ABGP=${ABGP:-}
if [[ -z $ABGP ]]; then
  for c in "$here/target/release/abgp" "$here/target/debug/abgp" "$(command -v abgp || true)"; do
    if [[ -n $c && -x $c ]]; then ABGP=$c; break; fi
  done
fi
[[ -n $ABGP ]] || { echo "lan-demo: no abgp binary; run cargo build first (or set ABGP)" >&2; exit 1; }

tag=$$
nsa="abgp-lan-a-$tag" nsb="abgp-lan-b-$tag"
work=$(mktemp -d /tmp/abgp-lan-demo.XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$nsa" 2>/dev/null || true
  ip netns del "$nsb" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "two namespaces joined by a veth pair: A is 10.79.0.1, B is 10.79.0.2"
if ! ip netns add "$nsa" 2>/dev/null; then
  echo "lan-demo: SKIPPED: cannot create network namespaces here (run as root on Linux)" >&2
  exit 0
fi
ip netns add "$nsb"
ip link add "va$tag" type veth peer name "vb$tag"
ip link set "va$tag" netns "$nsa"
ip link set "vb$tag" netns "$nsb"
ip -n "$nsa" addr add 10.79.0.1/24 dev "va$tag"
ip -n "$nsb" addr add 10.79.0.2/24 dev "vb$tag"
for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
ip -n "$nsa" link set "va$tag" up
ip -n "$nsb" link set "vb$tag" up
# mDNS sends to 224.0.0.251: give multicast a route (a real LAN has one).
ip -n "$nsa" route add 224.0.0.0/4 dev "va$tag"
ip -n "$nsb" route add 224.0.0.0/4 dev "vb$tag"
in_a() { ip netns exec "$nsa" "$@"; }
in_b() { ip netns exec "$nsb" "$@"; }

step "laptop A: abgp federation create demo --dir $work/a"
in_a "$ABGP" federation create demo --dir "$work/a"

step "laptop A: abgp federation invite --dir $work/a --no-bootstrap (prints the token, waits for the claim)"
in_a "$ABGP" federation invite --dir "$work/a" --no-bootstrap --expires 10m \
  > "$work/token" 2> "$work/invite.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/token ]] && break; sleep 0.1; done
[[ -s $work/token ]] || { cat "$work/invite.log" >&2; exit 1; }
echo "token: $(cut -c1-40 "$work/token")... ($(wc -c < "$work/token") characters)"

step "laptop B: abgp init --dir $work/b --join - (the token on stdin)"
in_b "$ABGP" init --dir "$work/b" --join - < "$work/token"
wait "${pids[-1]}" && cat "$work/invite.log" | tail -1

step "both laptops: abgp run"
in_a "$ABGP" run --config "$work/a/node.toml" > "$work/a.out" 2> "$work/a.log" &
pids+=($!)
in_b "$ABGP" run --config "$work/b/node.toml" > "$work/b.out" 2> "$work/b.log" &
pids+=($!)
for side in a b; do
  for _ in $(seq 100); do grep -q '^  admin' "$work/$side.out" 2>/dev/null && break; sleep 0.1; done
done

step "each hosts the example agent (abgp agent add, at run time)"
in_a "$ABGP" agent add --config "$work/a/node.toml" --id a-tools --prefix 'demo/a/*' \
  --command "$ABGP" --arg example-agent
in_b "$ABGP" agent add --config "$work/b/node.toml" --id b-tools --prefix 'demo/b/*' \
  --command "$ABGP" --arg example-agent

step "waiting for mDNS, the session and the routes (at most 60 s)"
seen=""
for _ in $(seq 120); do
  if in_b "$ABGP" tools --config "$work/b/node.toml" 2>/dev/null | grep -q 'demo/a/' &&
     in_a "$ABGP" tools --config "$work/a/node.toml" 2>/dev/null | grep -q 'demo/b/'; then
    seen=yes; break
  fi
  sleep 0.5
done
grep -h 'auto-peering with a discovered federation member' "$work/a.log" "$work/b.log" | head -2 || true

step "laptop B's MCP front (abgp tools): A's tools are there"
in_b "$ABGP" tools --config "$work/b/node.toml" || true
step "laptop A's MCP front: B's tools are there"
in_a "$ABGP" tools --config "$work/a/node.toml" || true

if [[ -z $seen ]]; then
  echo "lan-demo: FAILED: the nodes did not see each other's tools; logs:" >&2
  tail -20 "$work/a.log" "$work/b.log" >&2
  exit 1
fi
step "OK: two nodes on a LAN joined one federation and see each other's tools"
