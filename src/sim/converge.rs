//! What an event costs the network, read from a [`SimNet`]'s log: the
//! virtual time until the last best-path change for a prefix, the UPDATEs
//! that named it, and the path exploration (how many distinct best paths a
//! node went through on the way); see [`Watch`] for measuring live.

use super::SimNet;
use super::watch::Watch;
use crate::core::ids::Millis;
use crate::core::prefix::Prefix;

pub use super::watch::Convergence;

/// Where a [`SimNet`]'s log stands: mark it before an event, then read
/// [`Convergence`] with [`convergence_since`].
pub fn mark(net: &SimNet) -> (usize, Millis) {
    (net.log.len(), net.now())
}

/// The convergence of `prefix` from `mark` (see [`mark`]) to now, replayed
/// from the log (which must be on: not [`SimNet::without_log`]). Bytes are
/// not in the log (0 here), and loops and holes are judged from the nodes
/// whose best path changed since the mark; a [`Watch`] set on the net
/// before the event sees both.
pub fn convergence_since(
    net: &SimNet,
    (from, start): (usize, Millis),
    prefix: &Prefix,
) -> Convergence {
    let mut w = Watch::new(prefix.clone(), start, net.by_asn(), []);
    for (at, node, action) in net.log.iter().skip(from) {
        if let crate::core::engine::Action::Send(_, m) = action {
            w.on_send(m, 0);
        }
        w.on_action(*at, *node, action);
    }
    w.result()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::core::attrs::PathAttrs;
    use crate::core::engine::Event;
    use crate::core::ids::{AgentId, NodeId};
    use crate::core::route::{Route, RouteKey};
    use crate::sim::topology::{T0, Topology};

    /// A hierarchy on engines with the given advertisement interval; the
    /// last stub originates `stub/tool`. Returns the net and the stub.
    fn hierarchy(mrai: Duration, classic: bool) -> (SimNet, NodeId) {
        let t = Topology::hierarchy(3, 6, 12, 5);
        let mut net = SimNet::new(T0, 5);
        t.build_with(&mut net, |c| {
            let mut c = c.with_mrai(mrai, classic);
            // Classic BGP has no unreachable signal.
            c.capabilities.unreachable = !classic;
            c
        });
        let (stub, _) = Topology::node(t.n - 1);
        net.run_for(5_000);
        (net, stub)
    }

    fn prefix() -> Prefix {
        Prefix::new("stub/tool").unwrap()
    }

    fn announce(net: &mut SimNet, stub: NodeId) -> Convergence {
        let m = mark(net);
        let attrs = PathAttrs {
            agent: AgentId::new("agent"),
            ..Default::default()
        };
        net.inject(
            stub,
            Event::Originate(Route::new(prefix(), Arc::new(attrs))),
        );
        net.run_for(120_000);
        convergence_since(net, m, &prefix())
    }

    fn withdraw(net: &mut SimNet, stub: NodeId) -> Convergence {
        let m = mark(net);
        net.inject(stub, Event::WithdrawLocal(RouteKey::new(prefix())));
        net.run_for(120_000);
        convergence_since(net, m, &prefix())
    }

    #[test]
    fn an_announcement_and_a_withdrawal_are_measured() {
        let (mut net, stub) = hierarchy(Duration::ZERO, false);
        let up = announce(&mut net, stub);
        assert!(up.best_changes >= 20, "every node got a best path: {up:?}");
        assert!(
            up.updates >= 20 && up.time_ms > 0 && up.time_ms < 1_000,
            "{up:?}"
        );
        assert!(up.max_explored >= 1);
        let down = withdraw(&mut net, stub);
        assert!(down.best_changes >= 20, "every node lost it: {down:?}");
        assert!(down.time_ms < 1_000, "{down:?}");
        // Nothing left anywhere.
        for i in 0..21 {
            let (node, _) = Topology::node(i);
            assert!(
                net.engine(&node).unwrap().best(&prefix()).is_none(),
                "node {i}"
            );
        }
    }

    #[test]
    fn the_classic_interval_slows_a_withdrawal_tenfold_or_more() {
        let (mut fast, stub) = hierarchy(Duration::ZERO, false);
        announce(&mut fast, stub);
        let f = withdraw(&mut fast, stub);
        let (mut classic, stub) = hierarchy(Duration::from_secs(30), true);
        announce(&mut classic, stub);
        let c = withdraw(&mut classic, stub);
        assert!(
            f.time_ms > 0 && c.time_ms >= 10 * f.time_ms,
            "fast {f:?}, classic {c:?}"
        );
        eprintln!("withdrawal on a 21-node hierarchy: fast {f:?}, classic {c:?}");
        // The same measurement twice: the simulator is deterministic.
        let (mut again, stub) = hierarchy(Duration::from_secs(30), true);
        announce(&mut again, stub);
        assert_eq!(withdraw(&mut again, stub), c);
    }
}
