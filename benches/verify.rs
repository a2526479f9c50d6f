//! Route verification and codec benchmarks: how many signed routes a node
//! can check per second (single, batched, cached), and what encoding,
//! decoding and verifying a 1000-route UPDATE costs, signatures on and off.
//!
//! Run: `cargo bench --bench verify`. Figures are recorded in docs/wire.md.

use std::sync::Arc;

use agent_bgp::core::NodeId;
use agent_bgp::core::attrs::PathAttrs;
use agent_bgp::core::engine::{
    Engine, EngineConfig, Event, PeerConfig, PeerInfo, PeerState, RoutePolicy,
};
use agent_bgp::core::message::{Capabilities, Message, Open, PROTOCOL_VERSION, Update};
use agent_bgp::core::route::Route;
use agent_bgp::core::{AgentId, Asn, Millis, Prefix};
use agent_bgp::identity::route_sign::{sign_origin, sign_path_hop};
use agent_bgp::identity::{LocalIdentity, NodeKey, TrustAnchor, TrustStore, issue_cert};
use agent_bgp::identity::{VerifyCache, VerifyContext, verify_route};
use agent_bgp::wire::{Frame, Limits, decode, encode};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};

const NOW: Millis = Millis(1_767_225_600_000);
const DAY: u64 = 86_400_000;

fn identity(n: u8, asn: u32, authority: &NodeKey) -> LocalIdentity {
    let k = NodeKey::from_seed(&[n; 32]);
    let c = issue_cert(
        authority,
        k.node_id(),
        Asn(asn),
        Millis(NOW.0 - DAY),
        Millis(NOW.0 + DAY),
    )
    .unwrap();
    LocalIdentity::new(k, c).unwrap()
}

struct Fixture {
    trust: TrustStore,
    routes: Vec<Route>,
}

/// `n` routes originated in AS65001 and sent AS65001 -> AS65002 -> AS65003:
/// per route an origin attestation and two path signatures, plus three
/// shared certificates.
fn fixture(n: usize) -> Fixture {
    let authority = NodeKey::from_seed(&[200; 32]);
    let o = identity(1, 65001, &authority);
    let a = identity(2, 65002, &authority);
    let base = Arc::new(
        PathAttrs {
            agent: AgentId::new("agent"),
            origin_time: Millis(NOW.0 - 1000),
            ..Default::default()
        }
        .with_capabilities(["lint", "typescript"]),
    );
    let hop = |r: &Route, id: &LocalIdentity, target: u32| {
        let mut r = r.clone();
        let mut attrs = (*r.attrs).clone();
        attrs.as_path.insert(0, id.asn());
        r.attrs = Arc::new(attrs);
        r.proof = Some(sign_path_hop(&r, id, Asn(target)).unwrap());
        r
    };
    let routes = (0..n)
        .map(|i| {
            let mut r = Route::new(
                Prefix::new(&format!("tools/group{}/tool{i}", i % 50)).unwrap(),
                base.clone(),
            );
            r.proof = Some(sign_origin(&o, &r, Millis(NOW.0 + DAY)));
            hop(&hop(&r, &o, 65002), &a, 65003)
        })
        .collect();
    Fixture {
        trust: TrustStore::new().with_anchor(TrustAnchor::new("bench", authority.node_id())),
        routes,
    }
}

fn ctx(t: &TrustStore) -> VerifyContext<'_> {
    VerifyContext {
        trust: t,
        local_asn: Asn(65003),
        peer_asn: Asn(65002),
        now: NOW,
    }
}

fn signatures(c: &mut Criterion) {
    let mut g = c.benchmark_group("ed25519");
    let key = SigningKey::from_bytes(&[3; 32]);
    let vk = key.verifying_key();
    let msg = [7u8; 200];
    let sig = key.sign(&msg);
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_strict", |b| {
        b.iter(|| vk.verify_strict(&msg, &sig).unwrap())
    });
    for n in [16usize, 64, 256] {
        let msgs: Vec<&[u8]> = (0..n).map(|_| msg.as_slice()).collect();
        let sigs = vec![sig; n];
        let vks = vec![vk; n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("verify_batch/{n}"), |b| {
            b.iter(|| ed25519_dalek::verify_batch(&msgs, &sigs, &vks).unwrap())
        });
    }
    g.finish();
}

fn routes(c: &mut Criterion) {
    let f = fixture(256);
    let mut g = c.benchmark_group("route_verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("single_uncached", |b| {
        let c = ctx(&f.trust);
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % f.routes.len();
            verify_route(&f.routes[i], &c).unwrap()
        })
    });
    g.throughput(Throughput::Elements(f.routes.len() as u64));
    g.bench_function("batch_cold_256", |b| {
        let c = ctx(&f.trust);
        b.iter_batched(
            || VerifyCache::new(1 << 16),
            |mut cache| {
                let r = cache.verify_routes(&f.routes, &c);
                assert!(r.iter().all(|x| x.is_ok()));
                cache
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("cached_256", |b| {
        let c = ctx(&f.trust);
        let mut cache = VerifyCache::new(1 << 16);
        cache.verify_routes(&f.routes, &c);
        b.iter(|| {
            let r = cache.verify_routes(&f.routes, &c);
            assert!(r.iter().all(|x| x.is_ok()));
        })
    });
    g.finish();
}

fn update_1000(c: &mut Criterion) {
    let f = fixture(1000);
    let l = Limits::default();
    let signed = Frame::Routing(Message::Update(Update {
        announce: f.routes.clone(),
        ..Default::default()
    }));
    let unsigned = Frame::Routing(Message::Update(Update {
        announce: f
            .routes
            .iter()
            .map(|r| Route {
                proof: None,
                ..r.clone()
            })
            .collect(),
        ..Default::default()
    }));
    let signed_bytes = encode(&signed, &l).unwrap();
    let unsigned_bytes = encode(&unsigned, &l).unwrap();
    eprintln!(
        "1000-route UPDATE: {} bytes signed, {} bytes unsigned",
        signed_bytes.len(),
        unsigned_bytes.len()
    );
    let mut g = c.benchmark_group("update_1000");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    g.bench_function("encode_signed", |b| b.iter(|| encode(&signed, &l).unwrap()));
    g.bench_function("decode_signed", |b| {
        b.iter(|| decode(&signed_bytes, &l).unwrap())
    });
    g.bench_function("decode_unsigned", |b| {
        b.iter(|| decode(&unsigned_bytes, &l).unwrap())
    });
    // The receive pipeline up to the RIB: decode, then verify every route.
    g.bench_function("decode_verify_cold", |b| {
        let c = ctx(&f.trust);
        b.iter_batched(
            || VerifyCache::new(1 << 16),
            |mut cache| {
                let Frame::Routing(Message::Update(u)) = decode(&signed_bytes, &l).unwrap() else {
                    unreachable!()
                };
                assert!(
                    cache
                        .verify_routes(&u.announce, &c)
                        .iter()
                        .all(|r| r.is_ok())
                );
                cache
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("decode_verify_warm", |b| {
        let c = ctx(&f.trust);
        let mut cache = VerifyCache::new(1 << 16);
        cache.verify_routes(&f.routes, &c);
        b.iter(|| {
            let Frame::Routing(Message::Update(u)) = decode(&signed_bytes, &l).unwrap() else {
                unreachable!()
            };
            assert!(
                cache
                    .verify_routes(&u.announce, &c)
                    .iter()
                    .all(|r| r.is_ok())
            );
        })
    });
    g.finish();
}

#[derive(Debug)]
struct AcceptAll;

impl RoutePolicy for AcceptAll {
    fn import(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        true
    }
    fn export(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        true
    }
}

/// An engine in AS65003 with an established session to AS65002 (node 2),
/// which sends the UPDATEs, and one to AS65004 (node 4), which receives
/// what the engine exports.
fn engine() -> (Engine, NodeId) {
    let me = NodeKey::from_seed(&[3; 32]).node_id();
    let a = NodeKey::from_seed(&[2; 32]).node_id();
    let c = NodeKey::from_seed(&[4; 32]).node_id();
    let mut cfg = EngineConfig::new(Asn(65003), me);
    cfg.max_routes_per_update = 4096;
    cfg.emit_rib_changes = false;
    let mut e = Engine::new(cfg).with_policy(Arc::new(AcceptAll));
    for (node, asn) in [(a, 65002), (c, 65004)] {
        e.handle(
            NOW,
            Event::AddPeer(PeerConfig::new(node).with_asn(Asn(asn))),
        );
        e.handle(
            NOW,
            Event::Connected {
                peer: node,
                outbound: false,
            },
        );
        let open = Open {
            version: PROTOCOL_VERSION,
            asn: Asn(asn),
            node,
            hold_time: 0,
            capabilities: Capabilities::default(),
            federation: "default".into(),
            cert: None,
        };
        e.handle(
            NOW,
            Event::Message {
                peer: node,
                msg: Message::Open(open),
            },
        );
        e.handle(
            NOW,
            Event::Message {
                peer: node,
                msg: Message::Keepalive,
            },
        );
        assert_eq!(
            e.peer_info(&node).map(|i| i.state),
            Some(PeerState::Established)
        );
    }
    (e, a)
}

/// Two versions of the same 1000 routes that differ only in MED (which is
/// not signed), so every UPDATE changes every best path and is exported.
fn med_versions(routes: &[Route]) -> [Vec<Route>; 2] {
    [10, 20].map(|med| {
        let mut attrs = (*routes[0].attrs).clone();
        attrs.med = med;
        let attrs = Arc::new(attrs);
        routes
            .iter()
            .map(|r| Route {
                attrs: attrs.clone(),
                ..r.clone()
            })
            .collect()
    })
}

/// The receive pipeline of a 1000-route UPDATE: the routing engine alone
/// (signatures off), decode + engine (unsigned), and decode + verify +
/// engine (signatures on), cold and warm cache.
fn pipeline(c: &mut Criterion) {
    let f = fixture(1000);
    let l = Limits::default();
    let signed = med_versions(&f.routes);
    let unsigned = signed.clone().map(|v| {
        v.into_iter()
            .map(|r| Route { proof: None, ..r })
            .collect::<Vec<_>>()
    });
    let frame = |routes: &Vec<Route>| {
        encode(
            &Frame::Routing(Message::Update(Update {
                announce: routes.clone(),
                ..Default::default()
            })),
            &l,
        )
        .unwrap()
    };
    let signed_bytes = signed.clone().map(|v| frame(&v));
    let unsigned_bytes = unsigned.clone().map(|v| frame(&v));
    let to_msg = |b: &[u8]| match decode(b, &l).unwrap() {
        Frame::Routing(m) => m,
        Frame::Call(_) => unreachable!(),
    };
    // Check the work is real: each UPDATE changes and exports every route.
    {
        let (mut e, peer) = engine();
        for (round, v) in unsigned.iter().cycle().take(4).enumerate() {
            let msg = Message::Update(Update {
                announce: v.clone(),
                ..Default::default()
            });
            let before = e.stats().clone();
            e.handle(NOW, Event::Message { peer, msg });
            let after = e.stats();
            assert_eq!(after.routes_in - before.routes_in, 1000, "round {round}");
            assert_eq!(after.routes_rejected, 0, "round {round}");
            assert_eq!(after.routes_out - before.routes_out, 1000, "round {round}");
        }
    }
    let mut g = c.benchmark_group("pipeline_1000");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);

    g.bench_function("engine_only_unsigned", |b| {
        let (mut e, peer) = engine();
        let msgs = unsigned.clone().map(|v| {
            Message::Update(Update {
                announce: v,
                ..Default::default()
            })
        });
        let mut i = 0;
        b.iter(|| {
            i ^= 1;
            e.handle(
                NOW,
                Event::Message {
                    peer,
                    msg: msgs[i].clone(),
                },
            )
        })
    });
    g.bench_function("decode_engine_unsigned", |b| {
        let (mut e, peer) = engine();
        let mut i = 0;
        b.iter(|| {
            i ^= 1;
            let msg = to_msg(&unsigned_bytes[i]);
            e.handle(NOW, Event::Message { peer, msg })
        })
    });
    let verify_then_handle = |e: &mut Engine, peer, cache: &mut VerifyCache, bytes: &[u8]| {
        let msg = to_msg(bytes);
        if let Message::Update(u) = &msg {
            let ok = cache.verify_routes(&u.announce, &ctx(&f.trust));
            assert!(ok.iter().all(|r| r.is_ok()));
        }
        e.handle(NOW, Event::Message { peer, msg })
    };
    g.bench_function("decode_verify_engine_cold", |b| {
        let (mut e, peer) = engine();
        let mut i = 0;
        b.iter_batched(
            || VerifyCache::new(1 << 16),
            |mut cache| {
                i ^= 1;
                verify_then_handle(&mut e, peer, &mut cache, &signed_bytes[i]);
                cache
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("decode_verify_engine_warm", |b| {
        let (mut e, peer) = engine();
        let mut cache = VerifyCache::new(1 << 16);
        let mut i = 0;
        b.iter(|| {
            i ^= 1;
            verify_then_handle(&mut e, peer, &mut cache, &signed_bytes[i])
        })
    });
    g.finish();

    // Sending side: one path signature per route per external peer.
    let authority = NodeKey::from_seed(&[200; 32]);
    let me = identity(3, 65003, &authority);
    let outgoing: Vec<Route> = f
        .routes
        .iter()
        .map(|r| {
            let mut attrs = (*r.attrs).clone();
            attrs.as_path.insert(0, Asn(65003));
            Route {
                attrs: Arc::new(attrs),
                ..r.clone()
            }
        })
        .collect();
    let mut g = c.benchmark_group("sign");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_path_hop", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % outgoing.len();
            sign_path_hop(&outgoing[i], &me, Asn(65004)).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, signatures, routes, update_1000, pipeline);
criterion_main!(benches);
