//! What an event costs the network, read from a [`SimNet`]'s log: the
//! virtual time until the last best-path change for a prefix, the UPDATEs
//! that named it, and the path exploration (how many distinct best paths a
//! node went through on the way).

use std::collections::{BTreeMap, BTreeSet};

use super::SimNet;
use crate::core::engine::{Action, RibChange};
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::message::Message;
use crate::core::prefix::Prefix;

/// The convergence of one prefix after an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Convergence {
    /// From the event to the last best-path change anywhere (0: none).
    pub time_ms: u64,
    /// UPDATE messages that announced or withdrew the prefix.
    pub updates: u64,
    /// Best-path changes, over all nodes.
    pub best_changes: u64,
    /// The most distinct best paths (`None` counts as one) one node went
    /// through, and the mean over the nodes whose best path changed.
    pub max_explored: usize,
    pub mean_explored: f64,
}

/// Where a [`SimNet`]'s log stands: mark it before an event, then read
/// [`Convergence`] with [`convergence_since`].
pub fn mark(net: &SimNet) -> (usize, Millis) {
    (net.log.len(), net.now())
}

/// The convergence of `prefix` from `mark` (see [`mark`]) to now. The log
/// must be on (not [`SimNet::without_log`]).
pub fn convergence_since(
    net: &SimNet,
    (from, start): (usize, Millis),
    prefix: &Prefix,
) -> Convergence {
    let mut last = start;
    let mut updates = 0u64;
    let mut best_changes = 0u64;
    let mut seen: BTreeMap<NodeId, BTreeSet<Option<Vec<Asn>>>> = BTreeMap::new();
    for (at, node, action) in net.log.iter().skip(from) {
        match action {
            Action::Send(_, Message::Update(u)) => {
                let named = u.announce.iter().any(|r| &r.prefix == prefix)
                    || u.withdraw.iter().any(|k| &k.prefix == prefix);
                if named {
                    updates += 1;
                }
            }
            Action::RibChanges(changes) => {
                for c in changes {
                    if let RibChange::Loc { prefix: p, best } = c
                        && p == prefix
                    {
                        best_changes += 1;
                        last = last.max(*at);
                        seen.entry(*node)
                            .or_default()
                            .insert(best.as_ref().map(|r| r.attrs.as_path.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    let counts: Vec<usize> = seen.values().map(BTreeSet::len).collect();
    Convergence {
        time_ms: last.0.saturating_sub(start.0),
        updates,
        best_changes,
        max_explored: counts.iter().copied().max().unwrap_or(0),
        mean_explored: if counts.is_empty() {
            0.0
        } else {
            counts.iter().sum::<usize>() as f64 / counts.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::core::attrs::PathAttrs;
    use crate::core::engine::Event;
    use crate::core::ids::AgentId;
    use crate::core::route::{Route, RouteKey};
    use crate::sim::topology::{T0, Topology};

    /// A hierarchy on engines with the given advertisement interval; the
    /// last stub originates `stub/tool`. Returns the net and the stub.
    fn hierarchy(mrai: Duration, classic: bool) -> (SimNet, NodeId) {
        let t = Topology::hierarchy(3, 6, 12, 5);
        let mut net = SimNet::new(T0, 5);
        t.build_with(&mut net, |c| c.with_mrai(mrai, classic));
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
