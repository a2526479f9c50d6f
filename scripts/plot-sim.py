"""Plots and a summary of the simulator's benchmarks (scripts/bench-sim.sh).

Reads the JSON `abgp sim --json` wrote into DIR and writes
docs/sim-convergence.svg and docs/sim-messages.svg (time and UPDATEs against
the number of nodes, agent-bgp and classic BGP, per event), then prints the
figures docs/benchmarks.md quotes.

    python3 scripts/plot-sim.py target/sim docs
"""

import glob
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]


def load(path):
    with open(path) as f:
        return json.load(f)


sizes = sorted(
    int(m.group(1))
    for p in glob.glob(os.path.join(src, "hier-*.json"))
    if (m := re.fullmatch(r"hier-(\d+)\.json", os.path.basename(p)))
)
runs = {n: load(os.path.join(src, f"hier-{n}.json")) for n in sizes}
nosig = {
    n: load(p)
    for n in sizes
    if os.path.exists(p := os.path.join(src, f"hier-{n}-nosignal.json"))
}
events = ["announce", "withdraw", "link-down"]


def event(run, name):
    return next(e for e in run["events"] if e["event"] == name)


def series(protocol, name, field):
    out = []
    for n in sizes:
        r = next(r for r in runs[n]["runs"] if r["protocol"] == protocol)
        out.append(max(event(r, name)[field], 1))
    return out


for field, fname, label in [
    ("time_ms", "sim-convergence.svg", "convergence time (virtual ms)"),
    ("updates", "sim-messages.svg", "UPDATEs naming the prefix"),
]:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for ax, ev in zip(axes, events):
        for proto, style in [("agent-bgp", "o-"), ("classic", "s--")]:
            ax.plot(sizes, series(proto, ev, field), style, label=proto)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(ev)
        ax.set_xlabel("nodes (internet-like hierarchy)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(label)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(dst, fname))
    print(f"wrote {os.path.join(dst, fname)}")

print("\n| nodes | event | agent-bgp time ms | classic time ms | agent-bgp UPDATEs | classic UPDATEs | no signal UPDATEs | loops (ours / no signal / classic) | wall s (ours / classic) |")
print("|---:|---|---:|---:|---:|---:|---:|---|---|")
for n in sizes:
    ours = next(r for r in runs[n]["runs"] if r["protocol"] == "agent-bgp")
    cl = next(r for r in runs[n]["runs"] if r["protocol"] == "classic")
    ns = nosig[n]["runs"][0] if n in nosig else None
    for ev in events:
        a, c = event(ours, ev), event(cl, ev)
        s = event(ns, ev) if ns else None
        print(
            f"| {n:,} | {ev} | {a['time_ms']:,} | {c['time_ms']:,} | {a['updates']:,} | {c['updates']:,} | "
            f"{s['updates'] if s else '-':,} | {a['transient_loops']} / {s['transient_loops'] if s else '-'} / {c['transient_loops']} | "
            f"{ours['wall_ms'] / 1000:.1f} / {cl['wall_ms'] / 1000:.1f} |"
        )

for name in ["ba-1000", "ba-1000-values", "memory", "memory-empty", "all-events-1000", "flap-damped-1000"]:
    p = os.path.join(src, f"{name}.json")
    if not os.path.exists(p):
        continue
    d = load(p)
    for r in d["runs"]:
        w = r["wall"]
        print(
            f"\n{name} ({r['protocol']}): {d['nodes']} nodes, {d['edges']} edges; table {r['setup']['routes']:,} routes, "
            f"{r['setup']['updates']:,} UPDATEs, {r['setup']['bytes']:,} bytes, {r['setup']['time_ms']} ms virtual; "
            f"wall {r['wall_ms'] / 1000:.1f} s (sessions {w['establish_ms'] / 1000:.1f}, table {w['table_ms'] / 1000:.1f}, "
            f"check {w['table_check_ms'] / 1000:.1f}); peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB, RSS {r['rss_kib'] / 1024:.0f} MiB"
        )
        for e in r["events"]:
            print(
                f"  {e['event']}: {e['time_ms']} ms, {e['updates']} UPDATEs, {e['bytes']} bytes, explored {e['max_explored']}/{e['mean_explored']:.1f}, "
                f"loops {e['transient_loops']}, holes {e['black_holes']}, off {e['mismatches']}"
            )
