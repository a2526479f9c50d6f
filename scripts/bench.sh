#!/usr/bin/env bash
# Heavy benchmarks and long soaks: not part of the test suite (CI runs
# scripts/test.sh). Records what docs/benchmarks.md and
# docs/reliability.md report. Takes about 15 minutes on 2 cores.
#
#   scripts/bench.sh            # everything
#   scripts/bench.sh floods     # the hostile-peer floods only, 5x longer
#   scripts/bench.sh criterion  # the criterion and bench binaries only
#   scripts/bench.sh processes  # real processes against the simulator only
#   scripts/bench.sh sim        # the simulator at 300 to 10,000 nodes (scripts/bench-sim.sh)
#   scripts/bench.sh nat        # across NATs in network namespaces (root; tests/nat.rs)
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
scale=${ABGP_FLOOD_SCALE:-5}

step() { printf '\n==> %s\n' "$*"; }

step "machine"
uname -srm
nproc
grep -m1 'model name' /proc/cpuinfo || true
date -u +%Y-%m-%dT%H:%MZ

if [[ $what == all || $what == floods ]]; then
  scripts/install-test-deps.sh
  step "hostile-peer floods, release build, ABGP_FLOOD_SCALE=$scale"
  ABGP_FLOOD_SCALE=$scale cargo test --release --locked --test floods --test disk_full \
    -- --nocapture --test-threads 1 2>&1 | grep -E '^(FLOOD|test |[0-9]+ (call|fast)|answers|restarted|the client saw|SKIPPED)'
fi

if [[ $what == all || $what == criterion ]]; then
  # Every bench but processes, which has a step of its own below.
  benches=()
  for f in benches/*.rs; do
    b=$(basename "$f" .rs)
    [[ $b == processes ]] || benches+=(--bench "$b")
  done
  step "cargo bench ${benches[*]}"
  cargo bench --locked "${benches[@]}"
fi

if [[ $what == all || $what == processes ]]; then
  # NODES (20..=50, default 30), SEED, TOPOLOGY (ba, hierarchy), ROUNDS and
  # CALLS pass through to the bench (see benches/processes.rs).
  step "real processes vs simulator (NODES=${NODES:-30})"
  cargo bench --locked --bench processes
fi

if [[ $what == all || $what == sim ]]; then
  step "the simulator at internet scale: agent-bgp against classic BGP"
  scripts/bench-sim.sh
fi

if [[ $what == all || $what == nat ]]; then
  # Two homes behind NAT routers and a public relay, in network namespaces:
  # time to peer, to the first route and the first call, to the direct
  # connection after the hole punch, and the call latency direct and
  # relayed (median of 21 calls, at the calling node's front). Needs root.
  step "across NATs: relay and hole punching (tests/nat.rs, release)"
  for run in 1 2 3; do
    cargo test --release --locked --test nat -- --nocapture --test-threads 1 2>&1 |
      grep -E '^(NAT-BENCH|test |SKIPPED)' | sed "s/^/run $run: /"
  done
fi
