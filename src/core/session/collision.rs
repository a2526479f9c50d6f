//! Connection collision: both nodes dialled each other at once, so two
//! transports now join the same pair. Exactly one may carry the session.
//!
//! RFC 4271 section 6.8 keeps the connection *initiated by the speaker with
//! the higher BGP Identifier*. Our identifier is the [`NodeId`] (an ed25519
//! key), compared as a big-endian byte string, and the transport layer has
//! authenticated it before the FSM hears of the connection, so unlike BGP we
//! can decide as soon as the second transport comes up instead of waiting
//! for its OPEN. Both ends apply the same rule to the same two ids, so they
//! agree on the survivor without exchanging anything.

use crate::core::ids::NodeId;

/// Who opened a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We dialled the peer.
    Outbound,
    /// The peer dialled us.
    Inbound,
}

/// Which of two transports to the same peer survives a collision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionVerdict {
    /// Keep the transport the session already has; refuse the new one.
    KeepExisting,
    /// Close the existing transport (Cease/COLLISION_RESOLUTION) and run the
    /// session on the new one.
    KeepIncoming,
}

/// The direction of the connection that survives when `local` and `remote`
/// have each dialled the other: the one the higher id initiated.
pub fn collision_winner(local: &NodeId, remote: &NodeId) -> Direction {
    if local > remote {
        Direction::Outbound
    } else {
        Direction::Inbound
    }
}

/// Decides between the transport a session already has (`existing`) and a
/// newly arrived one (`incoming`) to the same remote node.
///
/// Opposite directions: the [`collision_winner`] rule. Same direction (the
/// peer dialled twice, or an abandoned dial of ours completed late): the
/// newer transport wins, because the initiator only dials again after
/// giving up on the older one. This helper does not look at session state;
/// [`Session`](super::Session) keeps an Established transport regardless, as
/// RFC 4271 section 6.8 prescribes.
pub fn resolve_collision(
    local: &NodeId,
    remote: &NodeId,
    existing: Direction,
    incoming: Direction,
) -> CollisionVerdict {
    if existing == incoming || collision_winner(local, remote) == incoming {
        CollisionVerdict::KeepIncoming
    } else {
        CollisionVerdict::KeepExisting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: u64) -> NodeId {
        NodeId::from_u64(x)
    }

    #[test]
    fn higher_local_id_keeps_its_own_dial() {
        assert_eq!(collision_winner(&n(9), &n(3)), Direction::Outbound);
        assert_eq!(
            resolve_collision(&n(9), &n(3), Direction::Inbound, Direction::Outbound),
            CollisionVerdict::KeepIncoming
        );
        assert_eq!(
            resolve_collision(&n(9), &n(3), Direction::Outbound, Direction::Inbound),
            CollisionVerdict::KeepExisting
        );
    }

    #[test]
    fn lower_local_id_keeps_the_peers_dial() {
        assert_eq!(collision_winner(&n(3), &n(9)), Direction::Inbound);
        assert_eq!(
            resolve_collision(&n(3), &n(9), Direction::Outbound, Direction::Inbound),
            CollisionVerdict::KeepIncoming
        );
        assert_eq!(
            resolve_collision(&n(3), &n(9), Direction::Inbound, Direction::Outbound),
            CollisionVerdict::KeepExisting
        );
    }

    #[test]
    fn both_ends_agree_on_the_surviving_connection() {
        // The connection a->b is Outbound at a and Inbound at b.
        for (a, b) in [(n(1), n(2)), (n(2), n(1))] {
            let at_a = collision_winner(&a, &b) == Direction::Outbound; // a keeps a->b
            let at_b = collision_winner(&b, &a) == Direction::Inbound; // b keeps a->b
            assert_eq!(at_a, at_b);
        }
    }

    #[test]
    fn same_direction_keeps_the_newer_transport() {
        assert_eq!(
            resolve_collision(&n(1), &n(2), Direction::Inbound, Direction::Inbound),
            CollisionVerdict::KeepIncoming
        );
    }
}
