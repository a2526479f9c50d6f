//! Sealed payloads in the forwarder, over the simulator's engines: the
//! calling node seals the arguments to the origin node of the path it
//! sends on, transit hops carry the box as it is, the origin opens it and
//! seals the result back under the call's reply key; boxes for another
//! node, or that do not open, are refused. The crypto here is a stand-in that only its recipient can
//! undo (the real one is `crate::identity::seal`, tested there).

use super::*;
use crate::core::call::{ReplyKey, Sealed};
use crate::core::proof::{AsnCert, OriginAttestation, RouteProof, Signature};

/// "Seals" by tagging the plaintext with its recipient and call; opens
/// only what names this node and the call. The reply key is derived from
/// the recipient and the call, so both ends get the same one.
struct StandIn(NodeId);

fn tag(to: &NodeId, origin: &CallOrigin) -> Vec<u8> {
    [to.as_bytes().as_slice(), &origin.id.0].concat()
}

fn reply_key(to: &NodeId, origin: &CallOrigin) -> ReplyKey {
    let mut k = to.0;
    for (i, b) in origin.id.0.iter().enumerate() {
        k[i] ^= b;
    }
    ReplyKey(zeroize::Zeroizing::new(k))
}

fn xor(b: &[u8]) -> impl Iterator<Item = u8> + '_ {
    b.iter().map(|x| x ^ 0x5a)
}

impl PayloadSealer for StandIn {
    fn seal(&self, to: &NodeId, origin: &CallOrigin, plain: &[u8]) -> Option<(Sealed, ReplyKey)> {
        let mut ct = tag(to, origin);
        ct.extend(xor(plain));
        let s = Sealed {
            to: *to,
            enc: [7; 32],
            ct,
        };
        Some((s, reply_key(to, origin)))
    }

    fn open(&self, origin: &CallOrigin, s: &Sealed) -> Result<(Vec<u8>, ReplyKey), String> {
        match s.ct.strip_prefix(tag(&self.0, origin).as_slice()) {
            Some(body) => Ok((xor(body).collect(), reply_key(&self.0, origin))),
            None => Err("does not open".into()),
        }
    }

    fn seal_reply(&self, key: &ReplyKey, origin: &CallOrigin, plain: &[u8]) -> Option<Sealed> {
        let mut ct = key.0[..8].to_vec();
        ct.extend(xor(plain));
        Some(Sealed {
            to: origin.caller,
            enc: [0; 32],
            ct,
        })
    }

    fn open_reply(&self, key: &ReplyKey, _: &CallOrigin, s: &Sealed) -> Result<Vec<u8>, String> {
        match s.ct.strip_prefix(&key.0[..8]) {
            Some(body) => Ok(xor(body).collect()),
            None => Err("does not open".into()),
        }
    }
}

const TOOL: &str = "sealed/echo/echo";

/// The chain A - B - C with C also originating [`TOOL`] over a signed
/// route (its origin attestation names node C), every node sealing.
fn rig(mode: SealMode) -> Rig {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    let mut route = tool_route(TOOL, "echo", "echo");
    route.proof = Some(Arc::new(RouteProof {
        origin: OriginAttestation {
            cert: Arc::new(AsnCert::unsigned(asn(C), id(C))),
            expires: Millis(u64::MAX),
            signature: Signature([0; 64]),
        },
        path: Vec::new(),
    }));
    r.sim.inject(id(C), Event::Originate(route));
    r.sim.run_for(3_000);
    for n in [A, B, C] {
        r.set(n, |f| {
            let cfg = f.config().clone().with_seal(mode);
            Forwarder::new(cfg, Box::new(UnsignedOnly)).with_payloads(Box::new(StandIn(id(n))))
        });
    }
    r
}

#[test]
fn sealed_arguments_and_results_cross_a_transit_that_never_reads_them() {
    let mut r = rig(SealMode::External);
    let f = r.call(A, TOOL, 5_000, false);
    // What B got: no arguments, a box for C.
    let (to, at_b) = r.calls_seen.first().cloned().expect("A sent the call");
    assert_eq!(to, id(B));
    assert!(at_b.arguments.is_null());
    assert_eq!(at_b.sealed.as_ref().map(|s| s.to), Some(id(C)));
    let (to, at_c) = r.calls_seen.last().cloned().unwrap();
    assert_eq!(to, id(C));
    assert_eq!(at_c.sealed, at_b.sealed, "B passed the box on as it was");
    // C opened it and ran the tool with the real arguments.
    let (at, d) = r.delivered.last().cloned().expect("delivered at C");
    assert_eq!(at, id(C));
    assert_eq!(d.arguments, json!({"text": "hi"}));
    r.finish_local(C, ok_result());
    // The result went back sealed to A through B, and A opened it.
    for (to, ret) in &r.returns_seen {
        assert_eq!(ret.outcome, CallOutcome::Ok(Json::Null), "to {to:?}");
        assert_eq!(ret.sealed.as_ref().map(|s| s.to), Some(id(A)));
    }
    assert_eq!(r.returns_seen.len(), 2, "C to B, B to A");
    assert_eq!(r.result_of(f).outcome, ok_result());
    let stat = |n: u64| {
        let s = r.fwd[&id(n)].stats();
        (s.sealed_out, s.sealed_opened, s.sealed_refused)
    };
    assert_eq!(
        stat(A),
        (1, 1, 0),
        "A sealed the arguments and opened the result"
    );
    assert_eq!(stat(B), (0, 0, 0), "B opened nothing");
    assert_eq!(stat(C), (0, 1, 0), "C opened the arguments");
}

#[test]
fn unsigned_routes_and_seal_off_send_in_the_clear() {
    for (mode, target) in [
        (SealMode::Off, TOOL),
        (SealMode::Always, "utility/echo/echo"),
    ] {
        let mut r = rig(mode);
        let f = r.call(A, target, 5_000, false);
        let (_, at_b) = r.calls_seen.first().cloned().unwrap();
        assert!(at_b.sealed.is_none(), "{mode:?} {target}");
        assert_eq!(at_b.arguments, json!({"text": "hi"}));
        r.finish_local(C, ok_result());
        assert!(r.returns_seen.iter().all(|(_, ret)| ret.sealed.is_none()));
        assert_eq!(r.result_of(f).outcome, ok_result());
    }
}

/// B hands C a call for `origin` whose arguments are only `sealed`.
fn from_b_to_c(r: &mut Rig, origin: Arc<CallOrigin>, sealed: Option<Arc<Sealed>>) {
    let call = Call {
        sealed,
        leg: LegId(9),
        hop_limit: 8,
        progress: false,
        log_level: None,
        origin,
        arguments: Json::Null,
        trace: None,
    };
    r.send(
        id(C),
        CallEvent::Inbound {
            peer: id(B),
            call,
            bytes: 0,
        },
    );
}

#[test]
fn a_call_sealed_for_another_origin_is_refused_before_it_runs() {
    let mut r = rig(SealMode::External);
    // B hands C a call whose arguments are sealed for D.
    let origin = Arc::new(r.origin(A, TOOL, 5_000));
    let sealed = StandIn(id(D))
        .seal(&id(D), &origin, b"{}")
        .map(|(s, _)| Arc::new(s));
    from_b_to_c(&mut r, origin, sealed);
    assert!(r.delivered.is_empty(), "nothing ran");
    assert_eq!(r.fwd[&id(C)].stats().sealed_refused, 1);
    assert!(r.kinds().contains(&(3, 2, "REFUSED")), "{:?}", r.kinds());
}

#[test]
fn a_box_changed_on_the_way_is_refused_at_either_end() {
    // At the origin: a box for C that does not open.
    let mut r = rig(SealMode::External);
    let origin = Arc::new(r.origin(A, TOOL, 5_000));
    let (mut s, _) = StandIn(id(C)).seal(&id(C), &origin, b"{}").unwrap();
    s.ct[0] ^= 1;
    from_b_to_c(&mut r, origin, Some(Arc::new(s)));
    assert!(r.delivered.is_empty());
    assert_eq!(r.fwd[&id(C)].stats().sealed_refused, 1);

    // At the caller: C seals the result under another key than the
    // call's (as if a hop had swapped the box), and A refuses the answer.
    let mut r = rig(SealMode::External);
    r.set(C, |f| {
        struct Misdirect;
        impl PayloadSealer for Misdirect {
            fn seal(&self, to: &NodeId, o: &CallOrigin, p: &[u8]) -> Option<(Sealed, ReplyKey)> {
                StandIn(id(C)).seal(to, o, p)
            }
            fn open(&self, o: &CallOrigin, s: &Sealed) -> Result<(Vec<u8>, ReplyKey), String> {
                StandIn(id(C)).open(o, s)
            }
            fn seal_reply(&self, _: &ReplyKey, o: &CallOrigin, p: &[u8]) -> Option<Sealed> {
                let other = ReplyKey(zeroize::Zeroizing::new([9; 32]));
                StandIn(id(C)).seal_reply(&other, o, p)
            }
            fn open_reply(
                &self,
                k: &ReplyKey,
                o: &CallOrigin,
                s: &Sealed,
            ) -> Result<Vec<u8>, String> {
                StandIn(id(C)).open_reply(k, o, s)
            }
        }
        let cfg = f.config().clone();
        Forwarder::new(cfg, Box::new(UnsignedOnly)).with_payloads(Box::new(Misdirect))
    });
    let f = r.call(A, TOOL, 5_000, false);
    r.finish_local(C, ok_result());
    let e = r.error_of(f);
    assert_eq!(e.kind, CallErrorKind::BadAnswer, "{e:?}");
    assert!(e.message.contains("does not open"), "{}", e.message);
    assert_eq!(r.fwd[&id(A)].stats().sealed_refused, 1);
}
