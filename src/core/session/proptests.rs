//! Random event sequences with random time steps. Whatever arrives, the
//! session never panics, never leaves Established without a `Down`, keeps
//! every deadline in the future, and sends keepalives on the negotiated
//! cadence.

use std::time::Duration;

use proptest::prelude::*;

use super::tests::{FED, cfg, local, peer, peer_open};
use super::*;
use crate::core::ids::Asn;
use crate::core::message::PROTOCOL_VERSION;

fn arb_node() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        6 => Just(peer()),
        1 => Just(local()),
        1 => Just(NodeId::from_u64(77)),
    ]
}

fn arb_open() -> impl Strategy<Value = Message> {
    (
        prop_oneof![8 => Just(PROTOCOL_VERSION), 1 => Just(PROTOCOL_VERSION + 1)],
        arb_node(),
        prop_oneof![
            Just(0u16),
            Just(1),
            Just(2),
            Just(3),
            Just(9),
            Just(90),
            any::<u16>()
        ],
        prop_oneof![8 => Just(FED.to_owned()), 1 => Just("other".to_owned())],
        any::<bool>(),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(version, node, hold_time, federation, rr, gr)| {
            let mut o = peer_open();
            o.version = version;
            o.node = node;
            o.hold_time = hold_time;
            o.federation = federation;
            o.capabilities.route_refresh = rr;
            o.capabilities.graceful_restart = gr;
            Message::Open(o)
        })
}

fn arb_notification() -> impl Strategy<Value = Notification> {
    (1u8..=7, 0u8..=8).prop_map(|(code, sub)| {
        let code = ErrorCode::from_u8(code).unwrap_or(ErrorCode::Cease);
        Notification::new(code, sub, "random")
    })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        3 => arb_open(),
        6 => Just(Message::Keepalive),
        2 => Just(Message::Update(Update::default())),
        1 => arb_notification().prop_map(Message::Notification),
        1 => Just(Message::RouteRefresh),
    ]
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        2 => Just(Event::Start),
        1 => Just(Event::Stop),
        3 => (any::<bool>(), arb_node()).prop_map(|(out, remote)| Event::TransportUp {
            direction: if out { Direction::Outbound } else { Direction::Inbound },
            remote,
        }),
        1 => Just(Event::TransportFailed),
        1 => Just(Event::TransportClosed),
        10 => arb_message().prop_map(Event::Received),
        1 => arb_notification().prop_map(Event::DecodeError),
        2 => (0usize..300).prop_map(Event::AcceptedRoutes),
        2 => Just(Event::SendUpdate(Update::default())),
        1 => Just(Event::SendRouteRefresh),
        4 => Just(Event::Tick),
    ]
}

fn arb_step() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..50,
        3 => 0u64..5_000,
        2 => 0u64..100_000,
        1 => 0u64..1_000_000,
    ]
}

/// A well-formed handshake as the peer would drive it, with small gaps, so
/// that random runs reach Established often enough to test what follows.
fn arb_handshake() -> impl Strategy<Value = Vec<(u64, Event)>> {
    (any::<bool>(), 0u64..20, 0u64..20, 0u64..20).prop_map(|(out, a, b, c)| {
        vec![
            (0, Event::Start),
            (
                a,
                Event::TransportUp {
                    direction: if out {
                        Direction::Outbound
                    } else {
                        Direction::Inbound
                    },
                    remote: peer(),
                },
            ),
            (b, Event::Received(Message::Open(peer_open()))),
            (c, Event::Received(Message::Keepalive)),
        ]
    })
}

/// Random events interleaved with handshakes.
fn arb_steps() -> impl Strategy<Value = Vec<(u64, Event)>> {
    proptest::collection::vec(
        prop_oneof![
            6 => (arb_step(), arb_event()).prop_map(|s| vec![s]),
            1 => arb_handshake(),
        ],
        0..60,
    )
    .prop_map(|chunks| chunks.into_iter().flatten().collect())
}

fn arb_config() -> impl Strategy<Value = SessionConfig> {
    (
        prop_oneof![Just(0u64), Just(3), Just(9), Just(90)],
        any::<bool>(),
        proptest::option::of(0u32..200),
        0u64..20,
        proptest::option::of(Just(Asn(65002))),
    )
        .prop_map(|(hold, passive, max_prefix, min_ka, pin_asn)| {
            let mut c = cfg()
                .with_hold_time(Duration::from_secs(hold))
                .with_passive(passive)
                .with_min_keepalive(Duration::from_secs(min_ka));
            if let Some(m) = max_prefix {
                c = c.with_max_prefix(m);
            }
            if let Some(a) = pin_asn {
                c = c.with_peer_asn(a);
            }
            c
        })
}

/// Tracks what a driver can observe and checks the invariants after each step.
#[derive(Default)]
struct Observer {
    /// Between an `Established` action and its `Down`.
    up: bool,
    /// When the last KEEPALIVE or UPDATE went out on the live handshake or
    /// session (RFC 4271: both restart the KeepaliveTimer).
    last_sent: Option<u64>,
}

impl Observer {
    fn step(
        &mut self,
        s: &mut Session,
        now: u64,
        ev: Event,
        punctual: bool,
    ) -> Result<(), TestCaseError> {
        let before = s.state();
        let interval = s
            .negotiated()
            .and_then(|n| n.keepalive_interval)
            .map(|d| d.as_millis() as u64);
        let actions = s.handle(Millis(now), ev);
        let after = s.state();

        if let Some(d) = s.next_deadline() {
            prop_assert!(d.0 > now, "deadline {d} not after {now} in {after:?}");
        }
        for a in &actions {
            match a {
                Action::Established(_) => {
                    prop_assert!(!self.up, "Established twice without Down");
                    self.up = true;
                }
                Action::Down { .. } => {
                    prop_assert!(self.up, "Down without Established");
                    self.up = false;
                }
                Action::Send(Message::Keepalive)
                    if matches!(before, State::OpenConfirm | State::Established) =>
                {
                    // Only the keepalive timer sends one in these states.
                    let Some(every) = interval else {
                        return Err(TestCaseError::fail("keepalive with hold time 0"));
                    };
                    if let Some(last) = self.last_sent {
                        let gap = now - last;
                        prop_assert!(gap >= every, "keepalive after {gap} ms < {every}");
                        if punctual {
                            prop_assert_eq!(gap, every);
                        }
                    }
                    self.last_sent = Some(now);
                }
                Action::Send(Message::Keepalive | Message::Update(_)) => {
                    self.last_sent = Some(now);
                }
                _ => {}
            }
        }
        prop_assert_eq!(self.up, after == State::Established);
        if after == State::Established {
            prop_assert!(s.negotiated().is_some());
            prop_assert!(s.counters().established_since.is_some());
        }
        if matches!(after, State::OpenConfirm | State::Established) {
            prop_assert!(s.remote().is_some());
            let every = s.negotiated().and_then(|n| n.keepalive_interval);
            if punctual && let (Some(every), Some(last)) = (every, self.last_sent) {
                prop_assert!(
                    now - last <= every.as_millis() as u64,
                    "silent for {} ms, interval {every:?}",
                    now - last
                );
            }
        } else {
            self.last_sent = None;
        }
        if matches!(after, State::Idle | State::Connecting) {
            prop_assert!(s.remote().is_none());
        }
        Ok(())
    }
}

fn run(
    config: SessionConfig,
    seed: u64,
    steps: Vec<(u64, Event)>,
    punctual: bool,
) -> Result<(), TestCaseError> {
    let mut s = Session::new(config, seed).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut obs = Observer::default();
    let mut now = 0u64;
    for (step, ev) in steps {
        let step = match (punctual, s.next_deadline()) {
            // A punctual driver never sleeps past a deadline.
            (true, Some(d)) => step.min(d.0 - now),
            _ => step,
        };
        now += step;
        obs.step(&mut s, now, ev, punctual)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_events_at_random_times_keep_the_invariants(
        config in arb_config(),
        seed in any::<u64>(),
        steps in arb_steps(),
    ) {
        run(config, seed, steps, false)?;
    }

    #[test]
    fn a_punctual_driver_sees_keepalives_exactly_on_the_interval(
        config in arb_config(),
        seed in any::<u64>(),
        steps in arb_steps(),
    ) {
        run(config, seed, steps, true)?;
    }
}

/// The random runs above only mean something if they often reach
/// Established (and so exercise keepalives, max-prefix and `Down`).
#[test]
fn random_runs_often_reach_established() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(Config::default().rng_algorithm),
    );
    let strategy = (arb_config(), arb_steps());
    let (mut reached, mut downs, total) = (0usize, 0usize, 200u64);
    for seed in 0..total {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            panic!("strategy failed")
        };
        let (config, steps) = tree.current();
        let mut s = Session::new(config, seed).unwrap_or_else(|e| panic!("{e}"));
        let mut now = 0;
        let mut up = false;
        for (step, ev) in steps {
            now += step;
            for a in s.handle(Millis(now), ev) {
                match a {
                    Action::Established(_) => up = true,
                    Action::Down { .. } => downs += 1,
                    _ => {}
                }
            }
        }
        reached += usize::from(up);
    }
    assert!(
        reached * 2 >= total as usize,
        "only {reached}/{total} runs reached Established"
    );
    assert!(downs > 0);
}
