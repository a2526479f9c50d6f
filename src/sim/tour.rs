//! A narrated run of the corporate scenario on the simulator: what the
//! routing core does, step by step, in words a newcomer can follow.

use std::io::{self, Write};

use crate::core::decision::Status;
use crate::core::engine::{Action, PeerState};
use crate::core::ids::Millis;
use crate::core::message::Message;
use crate::core::{Prefix, Route};

use super::scenario::{Scenario, corporate};

fn fmt_path(r: &Route) -> String {
    if r.attrs.as_path.is_empty() {
        "(inside this AS)".into()
    } else {
        r.attrs
            .as_path
            .iter()
            .map(|a| a.0.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn print_rib(out: &mut dyn Write, s: &Scenario, node: &str) -> io::Result<()> {
    let Some(e) = s.engine(node) else {
        return Ok(());
    };
    let asn = s.node(node).map(|n| n.asn.0).unwrap_or(0);
    writeln!(out, "  {node} (AS {asn}):")?;
    let rib = e.loc_rib();
    if rib.is_empty() {
        writeln!(out, "      (no routes)")?;
    }
    for r in rib {
        writeln!(
            out,
            "      {:<28} agent {:<8} AS path {}",
            r.prefix.to_string(),
            r.attrs.agent.to_string(),
            fmt_path(&r)
        )?;
    }
    Ok(())
}

fn print_paths(out: &mut dyn Write, s: &Scenario, node: &str, prefix: &str) -> io::Result<()> {
    let (Some(e), Ok(prefix)) = (s.engine(node), Prefix::new(prefix)) else {
        return Ok(());
    };
    for p in e.paths(&prefix) {
        let from = p.peer.map_or("local", |n| s.name_of(&n));
        let why = match p.status {
            Status::Best => "BEST".to_string(),
            Status::Lost(step) => format!("lost: {}", step.describe_loss()),
            Status::Excluded(x) => format!("excluded: {}", x.describe()),
        };
        writeln!(
            out,
            "   {node}: via {from:<6} AS path {:<6} {why}",
            fmt_path(&p.route)
        )?;
    }
    Ok(())
}

/// Runs the tour, writing to `out`.
pub fn corporate_tour(out: &mut dyn Write) -> io::Result<()> {
    let start = Millis(1_700_000_000_000);
    let mut s = corporate(start).map_err(|e| io::Error::other(e.to_string()))?;
    writeln!(
        out,
        "agent-bgp routing core tour: the design seed's corporate network, simulated in memory.\n\
         \n\
         Finance (AS 65001)        Corporate core (AS 65000)         Engineering (AS 65002)\n\
         fin-1: budget, audit* --- core-1 --- core-rr --- core-2 --- eng-1: code, test\n\
         fin-2: report                     (route reflector)         eng-2: deploy\n\
         * audit is tagged `confidential`; the core's policy says: no finance to engineering.\n"
    )?;

    s.net.run_for(5_000);
    writeln!(out, "1. Sessions: every pair exchanges OPEN and KEEPALIVE.")?;
    for (a, b) in &s.sessions {
        let up = s
            .engine(a)
            .and_then(|e| s.node(b).and_then(|n| e.peer_info(&n.id)))
            .is_some_and(|i| i.state == PeerState::Established);
        let (na, nb) = (s.node(a), s.node(b));
        let kind = match (na, nb) {
            (Some(x), Some(y)) if x.asn == y.asn => "internal",
            _ => "external",
        };
        writeln!(
            out,
            "   {a:>7} <-> {b:<7} {kind:<8} {}",
            if up { "Established" } else { "down" }
        )?;
    }
    let updates = s.net.wire.messages.get("UPDATE").copied().unwrap_or(0);
    writeln!(
        out,
        "\n2. Routes: {updates} UPDATE messages later, every node has chosen its best paths.\n"
    )?;
    for node in ["fin-1", "core-2", "eng-1"] {
        print_rib(out, &s, node)?;
    }
    writeln!(
        out,
        "\n   Engineering never hears of Finance (core policy), and nobody outside Finance\n   \
         hears of the confidential audit agent (Finance's export policy).\n"
    )?;

    writeln!(
        out,
        "3. A second uplink: fin-2 also peers with core-1. Now core-1 has two paths\n   \
         to Finance's budget agent and can say why it prefers one:\n"
    )?;
    let (f2, c1) = match (s.node("fin-2"), s.node("core-1")) {
        (Some(a), Some(b)) => (a.id, b.id),
        _ => return Ok(()),
    };
    s.net.link(f2, c1);
    s.net.inject(
        f2,
        crate::core::engine::Event::AddPeer(
            crate::core::engine::PeerConfig::new(c1).with_asn(crate::core::Asn(65000)),
        ),
    );
    s.net.inject(
        c1,
        crate::core::engine::Event::AddPeer(
            crate::core::engine::PeerConfig::new(f2).with_asn(crate::core::Asn(65001)),
        ),
    );
    s.net.run_for(5_000);
    print_paths(out, &s, "core-1", "finance/budget/forecast")?;

    writeln!(
        out,
        "\n4. Failure: the link fin-1 -- core-1 is cut. With graceful restart, core-1 keeps\n   \
         fin-1's path as stale for 120 s, but a fresh path beats a stale one:\n"
    )?;
    let f1 = s.node("fin-1").map(|n| n.id);
    if let Some(f1) = f1 {
        let mark = s.net.log.len();
        s.net.unlink(f1, c1);
        s.net.run_for(2_000);
        print_paths(out, &s, "core-1", "finance/budget/forecast")?;
        let sent = s.net.log[mark..]
            .iter()
            .filter(|(_, _, a)| matches!(a, Action::Send(_, Message::Update(_))))
            .count();
        writeln!(
            out,
            "\n   What core-1 tells the rest of the core did not change (same attributes),\n   \
             so {sent} UPDATEs were sent. After the restart window, the stale path is purged:\n"
        )?;
        s.net.run_for(125_000);
        print_paths(out, &s, "core-1", "finance/budget/forecast")?;
    }
    writeln!(
        out,
        "\nThe same engine runs inside `abgp run` nodes, driven by libp2p instead of the simulator."
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tour_runs_and_tells_the_story() {
        let mut buf = Vec::new();
        corporate_tour(&mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("Established"));
        assert!(!text.contains("down\n"), "{text}");
        assert!(text.contains("BEST"));
        assert!(text.contains("lost: higher originator id"), "{text}");
        assert!(text.contains("excluded: stale (peer restarting)"), "{text}");
    }
}
