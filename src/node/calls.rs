//! The node's identity applied to tunnelled calls: signing the calls this
//! node makes, and verifying the caller of calls that end here.
//!
//! A caller signs [`crate::wire::call::call_signed_bytes`] of the call's
//! origin with its node key and attaches its ASN certificate. The origin
//! checks, before its access policy sees the caller: the certificate against
//! its trust store (the same rules as for an OPEN), that the certificate
//! names the caller's node and ASN, the signature, and that the arguments
//! hash to the signed digest. Hops in between verify nothing: they cannot
//! change what is signed without the origin noticing.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::core::call::{AnswerSeal, CallOrigin, CallOutcome, CallReturn, ReplyKey, Sealed};
use crate::core::forward::{AnswerSealer, CallerRefused, CallerVerifier, PayloadSealer};
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::proof::{AsnCert, Signature};
use crate::identity::{LocalIdentity, TrustStore};
use crate::identity::{key, seal};
use crate::mcp::plane::{CallSigner, args_digest};
use crate::wire::call::{answer_signed_bytes, call_signed_bytes, outcome_digest};

/// Signs calls with the node key.
pub struct NodeCallSigner {
    identity: Arc<LocalIdentity>,
}

impl NodeCallSigner {
    pub fn new(identity: Arc<LocalIdentity>) -> Self {
        NodeCallSigner { identity }
    }
}

impl CallSigner for NodeCallSigner {
    fn cert(&self) -> Option<Arc<AsnCert>> {
        Some(self.identity.cert().clone())
    }

    fn sign(&self, origin: &CallOrigin) -> Option<Signature> {
        Some(self.identity.key().sign(&call_signed_bytes(origin)))
    }
}

/// Certificates whose signature checked out, remembered so that a busy
/// caller's certificate is not re-verified on every call (its binding,
/// validity window and pins are still checked every time).
const CERT_CACHE: usize = 1024;

/// Verifies callers against a copy of the node's trust store.
pub struct TrustVerifier {
    trust: TrustStore,
    verified: std::sync::Mutex<std::collections::HashSet<AsnCert>>,
}

impl TrustVerifier {
    pub fn new(trust: TrustStore) -> Self {
        TrustVerifier {
            trust,
            verified: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn check_cert(&self, cert: &AsnCert, now: Millis) -> Result<(), CallerRefused> {
        self.trust
            .check_binding(cert, now)
            .map_err(|e| CallerRefused::Certificate(e.to_string()))?;
        let mut seen = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Keyed by the whole certificate: a signature copied onto other
        // fields must not pass as verified.
        if seen.contains(cert) {
            return Ok(());
        }
        crate::identity::cert::verify_cert_signature(cert)
            .map_err(|e| CallerRefused::Certificate(format!("its signature: {e}")))?;
        if seen.len() >= CERT_CACHE {
            seen.clear();
        }
        seen.insert(cert.clone());
        Ok(())
    }
}

impl CallerVerifier for TrustVerifier {
    fn verify(&self, now: Millis, o: &CallOrigin, arguments: &Json) -> Result<(), CallerRefused> {
        let cert = o.cert.as_ref().ok_or(CallerRefused::NoCertificate)?;
        if cert.node != o.caller {
            return Err(CallerRefused::CertificateOfAnotherNode);
        }
        if cert.asn != o.caller_asn {
            return Err(CallerRefused::OtherAsn {
                cert: cert.asn,
                claimed: o.caller_asn,
            });
        }
        self.check_cert(cert, now)?;
        let sig = o.signature.as_ref().ok_or(CallerRefused::Unsigned)?;
        key::verify(&o.caller, &call_signed_bytes(o), sig)
            .map_err(|e| CallerRefused::BadSignature(e.to_string()))?;
        if args_digest(arguments) != o.args_digest {
            return Err(CallerRefused::ArgumentsChanged);
        }
        Ok(())
    }
}

/// Seals this origin's answers with the node key, and checks the seals of
/// answers to calls this node made against the trust store (the same
/// binding rules as for an OPEN) and the ASNs that originate the route.
pub struct NodeAnswers {
    identity: Arc<LocalIdentity>,
    certs: TrustVerifier,
}

impl NodeAnswers {
    pub fn new(identity: Arc<LocalIdentity>, trust: TrustStore) -> Self {
        NodeAnswers {
            identity,
            certs: TrustVerifier::new(trust),
        }
    }
}

impl AnswerSealer for NodeAnswers {
    fn seal(&self, origin: &CallOrigin, ret: &CallReturn) -> Option<Arc<AnswerSeal>> {
        let hop = ret.trace.first()?;
        let msg = answer_signed_bytes(origin, &outcome_digest(&ret.outcome), hop);
        Some(Arc::new(AnswerSeal {
            cert: self.identity.cert().clone(),
            signature: self.identity.key().sign(&msg),
        }))
    }

    fn check(
        &self,
        now: Millis,
        origin: &CallOrigin,
        ret: &CallReturn,
        origins: &[Asn],
    ) -> Result<Option<(NodeId, Asn)>, String> {
        let Some(seal) = &ret.seal else {
            return match ret.outcome {
                // A hop's own error (no route, timeout, ...): unsealed.
                CallOutcome::Err(_) => Ok(None),
                CallOutcome::Ok(_) => Err("it is not sealed by the origin".into()),
            };
        };
        let hop = ret
            .trace
            .first()
            .ok_or_else(|| "its trace names no origin".to_string())?;
        let c = &seal.cert;
        if hop.node != c.node || hop.asn != c.asn {
            return Err(format!(
                "sealed by {} in {} but its trace starts at {} in {}",
                c.node.short(),
                c.asn,
                hop.node.short(),
                hop.asn
            ));
        }
        if !origins.is_empty() && !origins.contains(&c.asn) {
            return Err(format!(
                "sealed by {}, which does not originate the route (its origins: {})",
                c.asn,
                origins
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        self.certs
            .check_cert(c, now)
            .map_err(|e| format!("its seal's certificate: {e}"))?;
        let msg = answer_signed_bytes(origin, &outcome_digest(&ret.outcome), hop);
        key::verify(&c.node, &msg, &seal.signature)
            .map_err(|_| "its seal does not verify (the answer was changed)".to_string())?;
        Ok(Some((c.node, c.asn)))
    }
}

/// Seals call payloads to other nodes and opens those sealed to this one
/// (`crate::identity::seal`): `info` names the part, `aad` is the call's
/// signed origin, so a box moved to another call or part does not open.
pub struct NodePayloads {
    identity: Arc<LocalIdentity>,
}

impl NodePayloads {
    pub fn new(identity: Arc<LocalIdentity>) -> Self {
        NodePayloads { identity }
    }
}

/// HPKE `info` of a call's sealed arguments.
pub const SEAL_INFO: &[u8] = b"agent-bgp/v1/seal\0arguments";

impl PayloadSealer for NodePayloads {
    fn seal(&self, to: &NodeId, origin: &CallOrigin, plain: &[u8]) -> Option<(Sealed, ReplyKey)> {
        let (enc, ct, reply) =
            seal::seal_request(to, SEAL_INFO, &call_signed_bytes(origin), plain).ok()?;
        Some((Sealed { to: *to, enc, ct }, ReplyKey(reply)))
    }

    fn open(&self, origin: &CallOrigin, sealed: &Sealed) -> Result<(Vec<u8>, ReplyKey), String> {
        seal::open_request(
            self.identity.key(),
            &sealed.enc,
            SEAL_INFO,
            &call_signed_bytes(origin),
            &sealed.ct,
        )
        .map(|(plain, k)| (plain, ReplyKey(k)))
        .map_err(|e| e.to_string())
    }

    fn seal_reply(&self, key: &ReplyKey, origin: &CallOrigin, plain: &[u8]) -> Option<Sealed> {
        let (nonce, ct) = seal::seal_reply(&key.0, &call_signed_bytes(origin), plain).ok()?;
        let mut enc = [0u8; 32];
        enc[..seal::NONCE_LEN].copy_from_slice(&nonce);
        Some(Sealed {
            to: origin.caller,
            enc,
            ct,
        })
    }

    fn open_reply(
        &self,
        key: &ReplyKey,
        origin: &CallOrigin,
        sealed: &Sealed,
    ) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; seal::NONCE_LEN];
        nonce.copy_from_slice(&sealed.enc[..seal::NONCE_LEN]);
        seal::open_reply(&key.0, &nonce, &call_signed_bytes(origin), &sealed.ct)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::call::{CallErrorKind, CallId, CallOp, HopTrace};
    use crate::core::ids::Asn;
    use crate::core::prefix::Prefix;
    use crate::identity::{NodeKey, derived_cert};
    use serde_json::json;

    fn identity(seed: u8) -> Arc<LocalIdentity> {
        let key = NodeKey::from_seed(&[seed; 32]);
        let cert = derived_cert(&key, Millis(0), Millis(u64::MAX / 2)).unwrap();
        Arc::new(LocalIdentity::new(key, cert).unwrap())
    }

    fn signed(id: &Arc<LocalIdentity>, args: &Json) -> CallOrigin {
        let mut o = CallOrigin {
            id: CallId([1; 16]),
            caller: id.node_id(),
            caller_asn: id.asn(),
            communities: Vec::new(),
            target: Prefix::new("utility/echo/echo").unwrap(),
            op: CallOp::Tool,
            idempotent: false,
            tool: Some("echo".into()),
            args_digest: args_digest(args),
            issued: Millis(1000),
            deadline: Millis(61_000),
            cert: None,
            signature: None,
        };
        let s = NodeCallSigner::new(id.clone());
        o.cert = s.cert();
        o.signature = s.sign(&o);
        o
    }

    fn verifier() -> TrustVerifier {
        TrustVerifier::new(TrustStore::new().accept_derived(true))
    }

    #[test]
    fn a_signed_call_verifies() {
        let id = identity(1);
        let args = json!({"text": "hi"});
        let o = signed(&id, &args);
        assert_eq!(verifier().verify(Millis(2000), &o, &args), Ok(()));
    }

    #[test]
    fn changed_arguments_are_caught() {
        let id = identity(1);
        let o = signed(&id, &json!({"text": "hi"}));
        let e = verifier()
            .verify(Millis(2000), &o, &json!({"text": "rm -rf"}))
            .unwrap_err();
        assert_eq!(e, CallerRefused::ArgumentsChanged);
    }

    #[test]
    fn a_hop_cannot_change_the_signed_fields_or_claim_another_asn() {
        let id = identity(1);
        let args = json!({});
        let mut o = signed(&id, &args);
        o.target = Prefix::new("finance/pay").unwrap();
        assert!(matches!(
            verifier().verify(Millis(2000), &o, &args),
            Err(CallerRefused::BadSignature(_))
        ));
        let mut o = signed(&id, &args);
        o.caller_asn = Asn(65001);
        assert!(matches!(
            verifier().verify(Millis(2000), &o, &args),
            Err(CallerRefused::OtherAsn { .. })
        ));
        let mut o = signed(&id, &args);
        o.signature = None;
        assert_eq!(
            verifier().verify(Millis(2000), &o, &args),
            Err(CallerRefused::Unsigned)
        );
    }

    #[test]
    fn another_nodes_certificate_is_refused() {
        let a = identity(1);
        let b = identity(2);
        let args = json!({});
        let mut o = signed(&a, &args);
        o.cert = Some(b.cert().clone());
        let e = verifier().verify(Millis(2000), &o, &args).unwrap_err();
        assert_eq!(e, CallerRefused::CertificateOfAnotherNode);
    }

    #[test]
    fn a_cached_certificate_signature_does_not_vouch_for_other_fields() {
        let id = identity(1);
        let args = json!({});
        let v = verifier();
        let o = signed(&id, &args);
        assert_eq!(v.verify(Millis(2000), &o, &args), Ok(()));
        // Same signature bytes, another ASN: refused, not served from cache.
        let mut forged = (**o.cert.as_ref().unwrap()).clone();
        forged.asn = Asn(65001);
        let mut o2 = o.clone();
        o2.cert = Some(Arc::new(forged));
        o2.caller_asn = Asn(65001);
        assert!(v.verify(Millis(2000), &o2, &args).is_err());
    }

    #[test]
    fn an_untrusted_binding_is_refused() {
        let id = identity(1);
        let args = json!({});
        let o = signed(&id, &args);
        let strict = TrustVerifier::new(TrustStore::new().accept_derived(false));
        assert!(matches!(
            strict.verify(Millis(2000), &o, &args),
            Err(CallerRefused::Certificate(_))
        ));
    }

    fn answer(origin_id: &Arc<LocalIdentity>, o: &CallOrigin, result: Json) -> CallReturn {
        let mut ret = CallReturn {
            sealed: None,
            seal: None,
            sent_back: 0,
            outcome: CallOutcome::Ok(result),
            trace: vec![HopTrace {
                node: origin_id.node_id(),
                asn: origin_id.asn(),
                elapsed_us: 120,
            }],
        };
        let a = NodeAnswers::new(origin_id.clone(), TrustStore::new());
        ret.seal = a.seal(o, &ret);
        // A transit on the way back adds its hop.
        ret.trace.push(HopTrace {
            node: NodeId([9; 32]),
            asn: Asn(65009),
            elapsed_us: 300,
        });
        ret
    }

    #[test]
    fn a_sealed_answer_verifies_and_every_forgery_is_caught() {
        let (caller, origin, other) = (identity(1), identity(2), identity(3));
        let args = json!({"text": "hi"});
        let o = signed(&caller, &args);
        let checker = NodeAnswers::new(caller.clone(), TrustStore::new());
        let origins = [origin.asn()];
        let now = Millis(2000);
        let good = answer(
            &origin,
            &o,
            json!({"content": [{"type": "text", "text": "hi"}]}),
        );
        assert_eq!(
            checker.check(now, &o, &good, &origins),
            Ok(Some((origin.node_id(), origin.asn())))
        );
        // The transit changes the output.
        let mut changed = good.clone();
        changed.outcome = CallOutcome::Ok(json!({"content": [{"type": "text", "text": "pwned"}]}));
        let e = checker.check(now, &o, &changed, &origins).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        // It answers without forwarding: nothing sealed it.
        let mut unsealed = good.clone();
        unsealed.seal = None;
        assert!(checker.check(now, &o, &unsealed, &origins).is_err());
        // It seals the made-up answer itself: not an origin of the route.
        let own = answer(&other, &o, json!({"content": []}));
        let e = checker.check(now, &o, &own, &origins).unwrap_err();
        assert!(e.contains("does not originate"), "{e}");
        // It hands over the origin's answer to another call.
        let mut other_call = o.clone();
        other_call.id = CallId([2; 16]);
        assert!(checker.check(now, &other_call, &good, &origins).is_err());
        // It rewrites the origin's hop (its time) in the trace.
        let mut retimed = good.clone();
        retimed.trace[0].elapsed_us = 1;
        assert!(checker.check(now, &o, &retimed, &origins).is_err());
        // A hop's own error is not sealed and passes as an error.
        let mut hop_error = good.clone();
        hop_error.seal = None;
        hop_error.outcome = CallOutcome::err(CallErrorKind::NoRoute, "AS65009: no route");
        assert_eq!(checker.check(now, &o, &hop_error, &origins), Ok(None));
    }

    #[test]
    fn the_seal_survives_the_wire() {
        let (caller, origin) = (identity(1), identity(2));
        let o = signed(&caller, &json!({}));
        let ret = answer(
            &origin,
            &o,
            json!({"content": [{"type": "text", "text": "é ✓"}], "n": 1.5, "big": u64::MAX, "neg": -3, "z": 2.0}),
        );
        let frame = crate::wire::Frame::Call(crate::core::call::CallMessage::Result(
            crate::core::call::CallResult {
                leg: crate::core::call::LegId(1),
                ret: ret.clone(),
            },
        ));
        let limits = crate::wire::Limits::default();
        let bytes = crate::wire::encode(&frame, &limits).unwrap();
        let Ok(crate::wire::Frame::Call(crate::core::call::CallMessage::Result(r))) =
            crate::wire::decode(&bytes, &limits)
        else {
            panic!("decodes");
        };
        assert_eq!(r.ret.seal, ret.seal);
        let checker = NodeAnswers::new(caller, TrustStore::new());
        assert!(
            checker
                .check(Millis(2000), &o, &r.ret, &[origin.asn()])
                .unwrap()
                .is_some()
        );
    }
}
