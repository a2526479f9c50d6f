#!/usr/bin/env bash
# The simulator's benchmarks (issue 14, docs/benchmarks.md "Issue 14"):
# agent-bgp against classic BGP on internet-like hierarchies of 300 to
# 10,000 nodes (100 originating stubs; announcement, withdrawal and link
# failure of one more), the unreachable signal and tombstones on and off, the
# same events on dense Barabasi-Albert graphs, the 1,000-node
# Barabasi-Albert run where every node originates, and the memory of
# 1,000 nodes x 10,000 prefixes. JSON in target/sim/, plots in docs/.
# About 5 minutes on 2 cores. Run by scripts/bench.sh; alone:
#
#   scripts/bench-sim.sh          # everything
#   SIZES="300 1000" scripts/bench-sim.sh
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=${SIZES:-"300 1000 3000 10000"}
out=target/sim
mkdir -p "$out"
cargo build --release --locked --bin abgp
abgp=target/release/abgp

for n in $sizes; do
  echo "==> hierarchy of $n nodes, both protocols"
  $abgp sim --nodes "$n" --origins 100 --events announce,withdraw,link-down --json >"$out/hier-$n.json"
  echo "==> the same without the unreachable signal"
  $abgp sim --nodes "$n" --origins 100 --events announce,withdraw,link-down --json \
    --protocol agent-bgp --no-unreachable-signal >"$out/hier-$n-nosignal.json"
  echo "==> the same without tombstones"
  $abgp sim --nodes "$n" --origins 100 --events announce,withdraw,link-down --json \
    --protocol agent-bgp --no-tombstones >"$out/hier-$n-notombstones.json"
done

echo "==> every event on 1,000 nodes, 20 ms links with 10 ms jitter, 1 % loss, 10 Mbit/s, signatures charged"
$abgp sim --nodes 1000 --origins 100 --events all --latency-ms 20 --jitter-ms 10 --loss 0.01 \
  --bandwidth-bps 10000000 --signatures --json >"$out/all-events-1000.json"
# Nine flaps: RFC 7196's thresholds hold a path back after seven in a row.
$abgp sim --nodes 1000 --origins 100 --events flap --flaps 9 --protocol agent-bgp --json >"$out/flap-1000.json"
$abgp sim --nodes 1000 --origins 100 --events flap --flaps 9 --damping --protocol agent-bgp --json >"$out/flap-damped-1000.json"

echo "==> Barabasi-Albert (dense, open policies), 400 and 1,000 nodes, both protocols"
for n in 400 1000; do
  $abgp sim --topology ba --nodes "$n" --origins 100 --events announce,withdraw,link-down \
    --json >"$out/ba-$n-events.json"
done

echo "==> Barabasi-Albert, 1,000 nodes, every node originates (frames, then values)"
$abgp sim --topology ba --nodes 1000 --origins 1000 --events none --protocol agent-bgp --json >"$out/ba-1000.json"
$abgp sim --topology ba --nodes 1000 --origins 1000 --events none --protocol agent-bgp --no-frames --json >"$out/ba-1000-values.json"

echo "==> memory: 1,000 nodes x 10,000 prefixes"
$abgp sim --nodes 1000 --origins 1000 --prefixes-per-origin 10 --events none --protocol agent-bgp \
  --no-frames --json >"$out/memory.json"
$abgp sim --nodes 1000 --origins 0 --events none --protocol agent-bgp --no-frames --json >"$out/memory-empty.json"

echo "==> plots"
py=python3
if [[ -x .venv/bin/python ]]; then py=.venv/bin/python; fi
if ! $py -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$out/venv"
  "$out/venv/bin/pip" install --quiet 'matplotlib==3.9.*'
  py="$out/venv/bin/python"
fi
$py scripts/plot-sim.py "$out" docs
