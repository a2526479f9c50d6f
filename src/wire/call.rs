//! Call-tunnelling messages on the wire: CALL, CALL-ANSWER, CALL-RESULT,
//! PROGRESS, CANCEL (frame types 16 to 20), NOTIFY, ASK and REPLY (21 to
//! 23).
//!
//! The messages themselves are plain data in [`crate::core::call`]; what
//! each hop does with them is [`crate::core::forward`]'s. This module maps
//! them to CBOR bodies, bounds every field, and defines the bytes a caller
//! signs ([`call_signed_bytes`]). The exact layout is in docs/wire.md.
//!
//! JSON values (tool arguments, results, error data) are carried as CBOR
//! items, not as JSON text: null, booleans, integers, floats, text, arrays
//! and maps with text keys. CBOR that has no JSON form (byte strings,
//! non-text map keys, non-finite floats, integers beyond 64 bits) is
//! refused when decoding.

use std::sync::Arc;

use ciborium::Value;
use serde_json::Value as Json;

use super::canon::CanonWriter;
use super::cbor::{
    Fields, MapBuilder, bool_of, bytes, f64_of, fixed_bytes, free_text_of, i64_of, list_of, text,
    text_of, u8_of, u16_of, u32_of, u64_of, uint,
};
use super::error::{Bound, EncodeError, FieldError, FieldErrorKind};
use super::limits::Limits;
use super::schema::{decode_cert, decode_community, encode_cert, encode_community};
use crate::core::call::{
    ASK_METHODS, AnswerSeal, Ask, NOTIFY_METHODS, Notify, Reply, Sealed, TraceContext,
};
pub use crate::core::call::{
    Answer, Call, CallAnswer, CallError, CallErrorKind, CallId, CallMessage, CallOp, CallOrigin,
    CallOutcome, CallResult, CallReturn, Cancel, HopTrace, LegId, Progress, ProgressInfo,
};
use crate::core::prefix::Prefix;
use crate::core::proof::Signature;
use crate::core::{Asn, Millis, NodeId};

/// Domain tag of a caller's signature over a call's origin.
pub const CALL_DOMAIN: &[u8] = b"agent-bgp/v1/call\0";

/// Most hops a trace may list (a hop limit is a `u8`).
pub const MAX_TRACE: usize = 255;

mod k {
    pub const LEG: u64 = 0;
    pub mod call {
        pub const HOP_LIMIT: u64 = 1;
        pub const PROGRESS: u64 = 2;
        pub const ORIGIN: u64 = 3;
        pub const ARGUMENTS: u64 = 4;
        pub const LOG_LEVEL: u64 = 5;
        /// The arguments sealed to the origin (required: a node that cannot
        /// read it must not run the tool with no arguments).
        pub const SEALED: u64 = 6;
        /// Optional (32 and up): old nodes ignore it.
        pub const TRACE: u64 = 32;
    }
    pub mod origin {
        pub const ID: u64 = 0;
        pub const CALLER: u64 = 1;
        pub const CALLER_ASN: u64 = 2;
        pub const COMMUNITIES: u64 = 3;
        pub const TARGET: u64 = 4;
        pub const OP: u64 = 5;
        pub const IDEMPOTENT: u64 = 6;
        pub const TOOL: u64 = 7;
        pub const ARGS_DIGEST: u64 = 8;
        pub const ISSUED: u64 = 9;
        pub const DEADLINE: u64 = 10;
        pub const CERT: u64 = 11;
        pub const SIGNATURE: u64 = 12;
    }
    pub mod answer {
        pub const ACCEPTED: u64 = 1;
        pub const REFUSED: u64 = 2;
        pub const DONE: u64 = 3;
    }
    pub mod ret {
        pub const OK: u64 = 0;
        pub const ERR: u64 = 1;
        pub const TRACE: u64 = 2;
        pub const SENT_BACK: u64 = 3;
        pub const SEAL: u64 = 4;
        /// The `ok` outcome sealed to the caller, instead of `ok`.
        pub const SEALED: u64 = 5;
    }
    pub mod err {
        pub const KIND: u64 = 0;
        pub const CODE: u64 = 1;
        pub const MESSAGE: u64 = 2;
        pub const DATA: u64 = 3;
    }
    pub mod result {
        pub const RET: u64 = 1;
    }
    pub mod progress {
        pub const PROGRESS: u64 = 1;
        pub const TOTAL: u64 = 2;
        pub const MESSAGE: u64 = 3;
    }
    pub mod cancel {
        pub const REASON: u64 = 1;
    }
    /// NOTIFY and ASK.
    pub mod side {
        pub const ASK: u64 = 1;
        pub const METHOD: u64 = 2;
        pub const PARAMS: u64 = 3;
        /// REPLY's outcome: a return without a trace.
        pub const OUTCOME: u64 = 4;
    }
}

/// JSON to CBOR; fails on nesting deeper than `depth_left`.
pub fn json_to_cbor(j: &Json, depth_left: usize) -> Result<Value, EncodeError> {
    let deeper = |d: usize| {
        d.checked_sub(1).ok_or(EncodeError::Json {
            reason: "nested deeper than the depth limit",
        })
    };
    Ok(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                uint(u)
            } else if let Some(i) = n.as_i64() {
                Value::Integer(i.into())
            } else if let Some(f) = n.as_f64() {
                Value::Float(f)
            } else {
                return Err(EncodeError::Json {
                    reason: "number is neither an integer nor a float",
                });
            }
        }
        Json::String(s) => text(s),
        Json::Array(a) => {
            let d = deeper(depth_left)?;
            Value::Array(
                a.iter()
                    .map(|x| json_to_cbor(x, d))
                    .collect::<Result<_, _>>()?,
            )
        }
        Json::Object(o) => {
            let d = deeper(depth_left)?;
            Value::Map(
                o.iter()
                    .map(|(k, v)| Ok((text(k), json_to_cbor(v, d)?)))
                    .collect::<Result<_, EncodeError>>()?,
            )
        }
    })
}

fn json_err(reason: &'static str) -> FieldError {
    FieldErrorKind::Json { reason }.into()
}

/// CBOR to JSON. Depth is already bounded by the decoder's scan.
pub fn cbor_to_json(v: &Value) -> Result<Json, FieldError> {
    Ok(match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Integer(i) => {
            if let Ok(u) = u64::try_from(*i) {
                Json::from(u)
            } else if let Ok(s) = i64::try_from(*i) {
                Json::from(s)
            } else {
                return Err(json_err("integer beyond 64 bits"));
            }
        }
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| json_err("non-finite float"))?,
        Value::Text(s) => Json::String(s.clone()),
        Value::Array(a) => Json::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| cbor_to_json(x).map_err(|e| e.at_index(i)))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => {
            let mut o = serde_json::Map::with_capacity(m.len());
            for (k, x) in m {
                let Value::Text(k) = k else {
                    return Err(json_err("map key is not text"));
                };
                if o.insert(k.clone(), cbor_to_json(x).map_err(|e| e.within(k))?)
                    .is_some()
                {
                    return Err(json_err("object key appears twice"));
                }
            }
            Json::Object(o)
        }
        Value::Bytes(_) => return Err(json_err("byte strings have no JSON form")),
        _ => return Err(json_err("unsupported CBOR item")),
    })
}

fn check_text(what: &'static str, s: &str, limits: &Limits) -> Result<(), EncodeError> {
    if s.len() > limits.max_text {
        return Err(EncodeError::TooLong {
            what,
            len: s.len(),
            max: limits.max_text,
        });
    }
    Ok(())
}

fn op_number(op: CallOp) -> u64 {
    op.number()
}

/// The bytes a caller's node signs for a call:
/// `"agent-bgp/v1/call\0"` ‖ CBOR `[id (16 bytes), caller (32 bytes),
/// caller ASN, [communities as text…], target, op, idempotent (0/1),
/// tool / null, args digest (32 bytes), issued, deadline]`.
pub fn call_signed_bytes(o: &CallOrigin) -> Vec<u8> {
    let mut w = CanonWriter::with_domain(CALL_DOMAIN);
    w.array(11)
        .bytes(&o.id.0)
        .bytes(o.caller.as_bytes())
        .uint(u64::from(o.caller_asn.0))
        .array(o.communities.len());
    for c in &o.communities {
        w.text(&c.to_string());
    }
    w.text(o.target.as_str())
        .uint(op_number(o.op))
        .uint(u64::from(o.idempotent));
    match &o.tool {
        Some(t) => w.text(t),
        None => w.null(),
    };
    w.bytes(&o.args_digest).uint(o.issued.0).uint(o.deadline.0);
    w.finish()
}

fn encode_origin(o: &CallOrigin, limits: &Limits) -> Result<Value, EncodeError> {
    use k::origin::*;
    if o.communities.len() > limits.max_communities {
        return Err(EncodeError::TooMany {
            what: "caller communities",
            count: o.communities.len(),
            max: limits.max_communities,
        });
    }
    let mut b = MapBuilder::new();
    b.put(ID, bytes(&o.id.0))
        .put(CALLER, bytes(o.caller.as_bytes()))
        .put(CALLER_ASN, uint(o.caller_asn.0));
    if !o.communities.is_empty() {
        b.put(
            COMMUNITIES,
            Value::Array(o.communities.iter().map(encode_community).collect()),
        );
    }
    b.put(TARGET, text(o.target.as_str()))
        .put(OP, uint(op_number(o.op)));
    if o.idempotent {
        b.put(IDEMPOTENT, Value::Bool(true));
    }
    if let Some(t) = &o.tool {
        check_text("tool", t, limits)?;
        b.put(TOOL, text(t));
    }
    b.put(ARGS_DIGEST, bytes(&o.args_digest))
        .put(ISSUED, uint(o.issued.0))
        .put(DEADLINE, uint(o.deadline.0));
    if let Some(c) = &o.cert {
        b.put(CERT, encode_cert(c));
    }
    if let Some(s) = &o.signature {
        b.put(SIGNATURE, bytes(&s.0));
    }
    Ok(b.build())
}

fn decode_origin(v: &Value, limits: &Limits) -> Result<CallOrigin, FieldError> {
    use k::origin::*;
    let f = Fields::parse(v)?;
    f.check_known(&[
        ID,
        CALLER,
        CALLER_ASN,
        COMMUNITIES,
        TARGET,
        OP,
        IDEMPOTENT,
        TOOL,
        ARGS_DIGEST,
        ISSUED,
        DEADLINE,
        CERT,
        SIGNATURE,
    ])?;
    Ok(CallOrigin {
        id: f.read(ID, "id", |v| fixed_bytes::<16>(v).map(CallId))?,
        caller: f.read(CALLER, "caller", |v| fixed_bytes::<32>(v).map(NodeId))?,
        caller_asn: f.read(CALLER_ASN, "caller_asn", |v| u32_of(v).map(Asn))?,
        communities: f.read_or(COMMUNITIES, "communities", Vec::new(), |v| {
            list_of(
                v,
                Bound::Communities,
                limits.max_communities,
                decode_community,
            )
        })?,
        target: f.read(TARGET, "target", |v| {
            Prefix::new(text_of(v, limits.max_text)?).map_err(|e| FieldErrorKind::Prefix(e).into())
        })?,
        op: f.read(OP, "op", |v| {
            CallOp::from_number(u64_of(v)?).ok_or_else(|| {
                FieldErrorKind::WrongType {
                    expected: "an operation: 0 (tool), 1 (describe), 2 (prompt), 3 (resource), 4 (complete) or 5 (subscribe)",
                }
                .into()
            })
        })?,
        idempotent: f.read_or(IDEMPOTENT, "idempotent", false, bool_of)?,
        tool: f.read_or(TOOL, "tool", None, |v| {
            let s = text_of(v, limits.max_text)?;
            if s.is_empty() {
                return Err(FieldErrorKind::BadText {
                    reason: "tool name is empty",
                }
                .into());
            }
            Ok(Some(s.to_string()))
        })?,
        args_digest: f.read(ARGS_DIGEST, "args_digest", fixed_bytes::<32>)?,
        issued: f.read(ISSUED, "issued", |v| u64_of(v).map(Millis))?,
        deadline: f.read(DEADLINE, "deadline", |v| u64_of(v).map(Millis))?,
        cert: f.read_or(CERT, "cert", None, |v| {
            decode_cert(v).map(|c| Some(Arc::new(c)))
        })?,
        signature: f.read_or(SIGNATURE, "signature", None, |v| {
            fixed_bytes::<64>(v).map(|s| Some(Signature(s)))
        })?,
    })
}

fn encode_error(e: &CallError, depth: usize, limits: &Limits) -> Result<Value, EncodeError> {
    use k::err::*;
    check_text("error message", &e.message, limits)?;
    let mut b = MapBuilder::new();
    b.put(KIND, uint(e.kind.number()))
        .put(CODE, Value::Integer(e.code.into()))
        .put(MESSAGE, text(&e.message));
    if let Some(d) = &e.data {
        b.put(DATA, json_to_cbor(d, depth)?);
    }
    Ok(b.build())
}

fn decode_error(v: &Value, limits: &Limits) -> Result<CallError, FieldError> {
    use k::err::*;
    let f = Fields::parse(v)?;
    f.check_known(&[KIND, CODE, MESSAGE, DATA])?;
    Ok(CallError {
        kind: f.read(KIND, "kind", |v| {
            // An unknown kind from a newer peer is still an error; the
            // code and message say what it is.
            Ok(CallErrorKind::from_number(u16_of(v)?).unwrap_or(CallErrorKind::Internal))
        })?,
        code: f.read(CODE, "code", i64_of)?,
        message: f.read(MESSAGE, "message", |v| {
            free_text_of(v, limits.max_text).map(str::to_string)
        })?,
        data: match f.get(DATA) {
            Some(d) => Some(cbor_to_json(d).map_err(|e| e.within("data"))?),
            None => None,
        },
    })
}

/// A sealed payload: `[to bytes(32), enc bytes(32), ciphertext bytes]`.
fn encode_sealed(s: &Sealed) -> Value {
    Value::Array(vec![bytes(s.to.as_bytes()), bytes(&s.enc), bytes(&s.ct)])
}

fn decode_sealed(v: &Value) -> Result<Sealed, FieldError> {
    let shape = || {
        FieldError::from(FieldErrorKind::WrongType {
            expected: "a sealed payload [to (32 bytes), enc (32 bytes), ciphertext]",
        })
    };
    let Value::Array(a) = v else {
        return Err(shape());
    };
    match a.as_slice() {
        [to, enc, Value::Bytes(ct)] => Ok(Sealed {
            to: fixed_bytes::<32>(to).map(NodeId)?,
            enc: fixed_bytes::<32>(enc)?,
            ct: ct.clone(),
        }),
        _ => Err(shape()),
    }
}

fn encode_return(r: &CallReturn, depth: usize, limits: &Limits) -> Result<Value, EncodeError> {
    use k::ret::*;
    if r.trace.len() > MAX_TRACE {
        return Err(EncodeError::TooMany {
            what: "trace hops",
            count: r.trace.len(),
            max: MAX_TRACE,
        });
    }
    let mut b = MapBuilder::new();
    match (&r.outcome, &r.sealed) {
        // Sealed: key 5, below (keys go in ascending order).
        (CallOutcome::Ok(_), Some(_)) => &mut b,
        (CallOutcome::Ok(j), None) => b.put(OK, json_to_cbor(j, depth)?),
        (CallOutcome::Err(e), _) => b.put(ERR, encode_error(e, depth.saturating_sub(1), limits)?),
    };
    b.put(
        TRACE,
        Value::Array(
            r.trace
                .iter()
                .map(|h| {
                    Value::Array(vec![
                        bytes(h.node.as_bytes()),
                        uint(h.asn.0),
                        uint(h.elapsed_us),
                    ])
                })
                .collect(),
        ),
    );
    if r.sent_back > 0 {
        b.put(SENT_BACK, uint(u64::from(r.sent_back)));
    }
    if let Some(seal) = &r.seal {
        b.put(
            SEAL,
            Value::Array(vec![encode_cert(&seal.cert), bytes(&seal.signature.0)]),
        );
    }
    if let (CallOutcome::Ok(_), Some(s)) = (&r.outcome, &r.sealed) {
        b.put(SEALED, encode_sealed(s));
    }
    Ok(b.build())
}

/// Domain tag of an origin's signature over its answer.
pub const ANSWER_DOMAIN: &[u8] = b"agent-bgp/v1/answer\0";

/// SHA-256 of the outcome's CBOR encoding (as it travels: the digest a
/// receiver computes from the decoded outcome is the same).
pub fn outcome_digest(o: &CallOutcome) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let limits = Limits::default();
    let depth = limits.max_depth.saturating_sub(3);
    let v = match o {
        CallOutcome::Ok(j) => json_to_cbor(j, depth).map(|j| Value::Array(vec![uint(0u64), j])),
        CallOutcome::Err(e) => {
            encode_error(e, depth, &limits).map(|e| Value::Array(vec![uint(1u64), e]))
        }
    };
    let mut buf = Vec::new();
    match v {
        Ok(v) => {
            let _ = ciborium::into_writer(&v, &mut buf);
        }
        // Too deep to travel at all: nothing real has this digest.
        Err(_) => buf.extend_from_slice(b"unencodable"),
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(&buf));
    out
}

/// The bytes an origin signs for its answer to the call `o`:
/// `"agent-bgp/v1/answer\0"` ‖ CBOR `[call id (16 bytes), caller (32
/// bytes), target, op, tool / null, args digest (32 bytes), the caller's
/// signature (64 bytes) / null, outcome digest (32 bytes), [origin node
/// (32 bytes), origin ASN, elapsed µs]]`.
pub fn answer_signed_bytes(o: &CallOrigin, outcome: &[u8; 32], hop: &HopTrace) -> Vec<u8> {
    let mut w = CanonWriter::with_domain(ANSWER_DOMAIN);
    w.array(9)
        .bytes(&o.id.0)
        .bytes(o.caller.as_bytes())
        .text(o.target.as_str())
        .uint(op_number(o.op));
    match &o.tool {
        Some(t) => w.text(t),
        None => w.null(),
    };
    w.bytes(&o.args_digest);
    match &o.signature {
        Some(sig) => w.bytes(&sig.0),
        None => w.null(),
    };
    w.bytes(outcome)
        .array(3)
        .bytes(hop.node.as_bytes())
        .uint(u64::from(hop.asn.0))
        .uint(hop.elapsed_us);
    w.finish()
}

fn decode_return(v: &Value, limits: &Limits) -> Result<CallReturn, FieldError> {
    use k::ret::*;
    let f = Fields::parse(v)?;
    f.check_known(&[OK, ERR, TRACE, SENT_BACK, SEAL, SEALED])?;
    // `ok` may legitimately be JSON null, so look at presence, not value.
    let mut sealed = None;
    let outcome = match (f.get(OK), f.opt(ERR), f.opt(SEALED)) {
        (Some(ok), None, None) => CallOutcome::Ok(cbor_to_json(ok).map_err(|e| e.within("ok"))?),
        (None, Some(err), None) => {
            CallOutcome::Err(decode_error(err, limits).map_err(|e| e.within("err"))?)
        }
        (None, None, Some(s)) => {
            sealed = Some(Arc::new(decode_sealed(s).map_err(|e| e.within("sealed"))?));
            CallOutcome::Ok(Json::Null)
        }
        _ => {
            return Err(FieldErrorKind::WrongType {
                expected: "exactly one of ok (0), err (1) and sealed (5)",
            }
            .into());
        }
    };
    let trace = f.read_or(TRACE, "trace", Vec::new(), |v| {
        list_of(v, Bound::PathLen, MAX_TRACE, |h| {
            let Value::Array(a) = h else {
                return Err(FieldErrorKind::WrongType {
                    expected: "a hop [node, asn, elapsed_us]",
                }
                .into());
            };
            match a.as_slice() {
                [n, asn, us] => Ok(HopTrace {
                    node: fixed_bytes::<32>(n).map(NodeId)?,
                    asn: u32_of(asn).map(Asn)?,
                    elapsed_us: u64_of(us)?,
                }),
                _ => Err(FieldErrorKind::WrongType {
                    expected: "a hop [node, asn, elapsed_us]",
                }
                .into()),
            }
        })
    })?;
    let sent_back = f.read_or(SENT_BACK, "sent_back", 0, u32_of)?;
    let seal = f.read_or(SEAL, "seal", None, |v| {
        let Value::Array(a) = v else {
            return Err(FieldErrorKind::WrongType {
                expected: "a seal [cert, signature]",
            }
            .into());
        };
        match a.as_slice() {
            [c, sig] => Ok(Some(Arc::new(AnswerSeal {
                cert: Arc::new(decode_cert(c)?),
                signature: Signature(fixed_bytes::<64>(sig)?),
            }))),
            _ => Err(FieldErrorKind::WrongType {
                expected: "a seal [cert, signature]",
            }
            .into()),
        }
    })?;
    Ok(CallReturn {
        sealed,
        seal,
        outcome,
        trace,
        sent_back,
    })
}

/// Encodes a call-tunnelling body.
pub fn encode_call_message(m: &CallMessage, limits: &Limits) -> Result<Value, EncodeError> {
    // A JSON value sits at depth 3 or 4 (frame, body, [origin/ret], value);
    // error data one deeper. These budgets keep everything the decoder
    // accepts re-encodable.
    let depth = limits.max_depth.saturating_sub(3);
    let mut b = MapBuilder::new();
    b.put(k::LEG, uint(m.leg().0));
    match m {
        CallMessage::Call(c) => {
            use k::call::*;
            b.put(HOP_LIMIT, uint(c.hop_limit));
            if c.progress {
                b.put(PROGRESS, Value::Bool(true));
            }
            b.put(ORIGIN, encode_origin(&c.origin, limits)?);
            if !c.arguments.is_null() {
                b.put(ARGUMENTS, json_to_cbor(&c.arguments, depth)?);
            }
            if let Some(l) = c.log_level {
                b.put(LOG_LEVEL, uint(l.min(7)));
            }
            if let Some(s) = &c.sealed {
                b.put(SEALED, encode_sealed(s));
            }
            if let Some(t) = c.trace.filter(TraceContext::is_valid) {
                b.put(TRACE, encode_trace(&t));
            }
        }
        CallMessage::Answer(a) => {
            use k::answer::*;
            match &a.answer {
                CallAnswer::Accepted => b.put(ACCEPTED, Value::Bool(true)),
                CallAnswer::Refused(e) => b.put(REFUSED, encode_error(e, depth, limits)?),
                CallAnswer::Done(r) => b.put(DONE, encode_return(r, depth, limits)?),
            };
        }
        CallMessage::Result(r) => {
            b.put(k::result::RET, encode_return(&r.ret, depth, limits)?);
        }
        CallMessage::Progress(p) => {
            use k::progress::*;
            let finite = |x: f64| {
                if x.is_finite() {
                    Ok(Value::Float(x))
                } else {
                    Err(EncodeError::Json {
                        reason: "progress must be a finite number",
                    })
                }
            };
            b.put(PROGRESS, finite(p.info.progress)?);
            if let Some(t) = p.info.total {
                b.put(TOTAL, finite(t)?);
            }
            if let Some(msg) = &p.info.message {
                check_text("progress message", msg, limits)?;
                b.put(MESSAGE, text(msg));
            }
        }
        CallMessage::Cancel(c) => {
            if let Some(r) = &c.reason {
                check_text("cancel reason", r, limits)?;
                b.put(k::cancel::REASON, text(r));
            }
        }
        CallMessage::Notify(n) => {
            use k::side::*;
            check_method(&n.method, &NOTIFY_METHODS)?;
            b.put(METHOD, text(&n.method));
            b.put(PARAMS, json_to_cbor(&n.params, depth)?);
        }
        CallMessage::Ask(a) => {
            use k::side::*;
            check_method(&a.method, &ASK_METHODS)?;
            b.put(ASK, uint(u64::from(a.ask)));
            b.put(METHOD, text(&a.method));
            b.put(PARAMS, json_to_cbor(&a.params, depth)?);
        }
        CallMessage::Reply(r) => {
            use k::side::*;
            b.put(ASK, uint(u64::from(r.ask)));
            let ret = CallReturn {
                sealed: None,
                seal: None,
                sent_back: 0,
                outcome: r.outcome.clone(),
                trace: Vec::new(),
            };
            b.put(OUTCOME, encode_return(&ret, depth, limits)?);
        }
    }
    Ok(b.build())
}

/// NOTIFY and ASK name one method of a short fixed list; anything else is
/// neither sent nor accepted.
fn check_method(m: &str, allowed: &[&str]) -> Result<(), EncodeError> {
    if allowed.contains(&m) {
        Ok(())
    } else {
        Err(EncodeError::Json {
            reason: "not a method the call side channel carries",
        })
    }
}

fn method_of(v: &Value, allowed: &[&'static str]) -> Result<String, FieldError> {
    let s = text_of(v, 64)?;
    match allowed.iter().find(|m| **m == s) {
        Some(m) => Ok((*m).to_string()),
        None => Err(FieldErrorKind::WrongType {
            expected: "a method the call side channel carries",
        }
        .into()),
    }
}

pub fn decode_notify(v: &Value, _limits: &Limits) -> Result<Notify, FieldError> {
    use k::side::*;
    let f = Fields::parse(v)?;
    f.check_known(&[k::LEG, METHOD, PARAMS])?;
    Ok(Notify {
        leg: leg_of(&f)?,
        method: f.read(METHOD, "method", |v| method_of(v, &NOTIFY_METHODS))?,
        params: f.read_or(PARAMS, "params", Json::Null, cbor_to_json)?,
    })
}

pub fn decode_ask(v: &Value, _limits: &Limits) -> Result<Ask, FieldError> {
    use k::side::*;
    let f = Fields::parse(v)?;
    f.check_known(&[k::LEG, ASK, METHOD, PARAMS])?;
    Ok(Ask {
        leg: leg_of(&f)?,
        ask: f.read(ASK, "ask", u32_of)?,
        method: f.read(METHOD, "method", |v| method_of(v, &ASK_METHODS))?,
        params: f.read_or(PARAMS, "params", Json::Null, cbor_to_json)?,
    })
}

pub fn decode_reply(v: &Value, limits: &Limits) -> Result<Reply, FieldError> {
    use k::side::*;
    let f = Fields::parse(v)?;
    f.check_known(&[k::LEG, ASK, OUTCOME])?;
    Ok(Reply {
        leg: leg_of(&f)?,
        ask: f.read(ASK, "ask", u32_of)?,
        outcome: f.read(OUTCOME, "outcome", |v| {
            decode_return(v, limits).map(|r| r.outcome)
        })?,
    })
}

fn leg_of(f: &Fields<'_>) -> Result<LegId, FieldError> {
    f.read(k::LEG, "leg", |v| u64_of(v).map(LegId))
}

pub fn decode_call(v: &Value, limits: &Limits) -> Result<Call, FieldError> {
    use k::call::*;
    let f = Fields::parse(v)?;
    f.check_known(&[
        k::LEG,
        HOP_LIMIT,
        PROGRESS,
        ORIGIN,
        ARGUMENTS,
        LOG_LEVEL,
        SEALED,
    ])?;
    let sealed = f.read_or(SEALED, "sealed", None, |v| {
        decode_sealed(v).map(|s| Some(Arc::new(s)))
    })?;
    if sealed.is_some() && f.opt(ARGUMENTS).is_some() {
        return Err(FieldErrorKind::WrongType {
            expected: "arguments (4) or sealed arguments (6), not both",
        }
        .into());
    }
    Ok(Call {
        sealed,
        leg: leg_of(&f)?,
        hop_limit: f.read(HOP_LIMIT, "hop_limit", u8_of)?,
        progress: f.read_or(PROGRESS, "progress", false, bool_of)?,
        origin: f.read(ORIGIN, "origin", |v| decode_origin(v, limits).map(Arc::new))?,
        arguments: f.read_or(ARGUMENTS, "arguments", Json::Null, cbor_to_json)?,
        log_level: f.read_or(LOG_LEVEL, "log_level", None, |v| match u8_of(v)? {
            l @ 0..=7 => Ok(Some(l)),
            _ => Err(FieldErrorKind::WrongType {
                expected: "a log level from 0 (debug) to 7 (emergency)",
            }
            .into()),
        })?,
        // Tracing never fails a call: a trace context that is not exactly
        // the W3C shape is dropped, and the next hop starts from the call id.
        trace: f.opt(TRACE).and_then(decode_trace),
    })
}

/// `[trace id (bytes 16), span id of the sender (bytes 8), flags (uint8)]`.
fn encode_trace(t: &TraceContext) -> Value {
    Value::Array(vec![
        bytes(&t.trace_id),
        bytes(&t.span_id),
        uint(u64::from(t.flags)),
    ])
}

/// The trace context of a CALL, or `None` when it is not exactly
/// [`encode_trace`]'s shape with non-zero ids.
fn decode_trace(v: &Value) -> Option<TraceContext> {
    let Value::Array(a) = v else {
        return None;
    };
    let [id, span, flags] = a.as_slice() else {
        return None;
    };
    let t = TraceContext {
        trace_id: fixed_bytes::<16>(id).ok()?,
        span_id: fixed_bytes::<8>(span).ok()?,
        flags: u8_of(flags).ok()?,
    };
    t.is_valid().then_some(t)
}

pub fn decode_answer(v: &Value, limits: &Limits) -> Result<Answer, FieldError> {
    use k::answer::*;
    let f = Fields::parse(v)?;
    f.check_known(&[k::LEG, ACCEPTED, REFUSED, DONE])?;
    let leg = leg_of(&f)?;
    let answer = match (f.opt(ACCEPTED), f.opt(REFUSED), f.opt(DONE)) {
        (Some(_), None, None) => CallAnswer::Accepted,
        (None, Some(e), None) => {
            CallAnswer::Refused(decode_error(e, limits).map_err(|e| e.within("refused"))?)
        }
        (None, None, Some(r)) => {
            CallAnswer::Done(decode_return(r, limits).map_err(|e| e.within("done"))?)
        }
        _ => {
            return Err(FieldErrorKind::WrongType {
                expected: "exactly one of accepted (1), refused (2) and done (3)",
            }
            .into());
        }
    };
    Ok(Answer { leg, answer })
}

pub fn decode_call_result(v: &Value, limits: &Limits) -> Result<CallResult, FieldError> {
    let f = Fields::parse(v)?;
    f.check_known(&[k::LEG, k::result::RET])?;
    Ok(CallResult {
        leg: leg_of(&f)?,
        ret: f.read(k::result::RET, "ret", |v| decode_return(v, limits))?,
    })
}

pub fn decode_cancel(v: &Value, limits: &Limits) -> Result<Cancel, FieldError> {
    let f = Fields::parse(v)?;
    f.check_known(&[k::LEG, k::cancel::REASON])?;
    Ok(Cancel {
        leg: leg_of(&f)?,
        reason: f.read_or(k::cancel::REASON, "reason", None, |v| {
            free_text_of(v, limits.max_text).map(|s| Some(s.to_string()))
        })?,
    })
}

pub fn decode_progress(v: &Value, limits: &Limits) -> Result<Progress, FieldError> {
    use k::progress::*;
    let f = Fields::parse(v)?;
    f.check_known(&[k::LEG, PROGRESS, TOTAL, MESSAGE])?;
    Ok(Progress {
        leg: leg_of(&f)?,
        info: ProgressInfo {
            progress: f.read(PROGRESS, "progress", f64_of)?,
            total: f.read_or(TOTAL, "total", None, |v| f64_of(v).map(Some))?,
            message: f.read_or(MESSAGE, "message", None, |v| {
                free_text_of(v, limits.max_text).map(|s| Some(s.to_string()))
            })?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::community::Community;
    use serde_json::json;

    #[test]
    fn json_survives_the_cbor_round_trip() {
        let j = json!({"a": [1, -2, 3.5, null, true, "x"], "b": {"c": u64::MAX}, "d": i64::MIN});
        let v = json_to_cbor(&j, 10).unwrap();
        assert_eq!(cbor_to_json(&v).unwrap(), j);
    }

    #[test]
    fn cbor_without_a_json_form_is_refused() {
        for v in [
            Value::Bytes(vec![1]),
            Value::Map(vec![(uint(1u64), Value::Null)]),
            Value::Float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Map(vec![(text("a"), Value::Null), (text("a"), Value::Null)]),
        ] {
            assert!(cbor_to_json(&v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn deep_local_json_is_refused_when_encoding() {
        let mut j = json!(1);
        for _ in 0..100 {
            j = json!([j]);
        }
        assert!(matches!(
            json_to_cbor(&j, 50),
            Err(EncodeError::Json { .. })
        ));
    }

    fn origin() -> CallOrigin {
        CallOrigin {
            id: CallId([7; 16]),
            caller: NodeId::from_u64(1),
            caller_asn: Asn(65001),
            communities: vec![
                Community::named("finance").unwrap(),
                Community::standard(65001, 7),
            ],
            target: Prefix::new("utility/time/now").unwrap(),
            op: CallOp::Tool,
            idempotent: true,
            tool: Some("now".into()),
            args_digest: [3; 32],
            issued: Millis(1_700_000_000_000),
            deadline: Millis(1_700_000_060_000),
            cert: None,
            signature: Some(Signature([9; 64])),
        }
    }

    fn round_trip(m: CallMessage) {
        let l = Limits::default();
        let frame = crate::wire::Frame::Call(m.clone());
        let bytes = crate::wire::encode(&frame, &l).unwrap();
        assert_eq!(crate::wire::decode(&bytes, &l).unwrap(), frame);
    }

    #[test]
    fn every_call_message_round_trips_through_a_frame() {
        round_trip(CallMessage::Call(Call {
            sealed: None,
            leg: LegId(42),
            hop_limit: 15,
            log_level: Some(1),
            progress: true,
            origin: Arc::new(origin()),
            arguments: json!({"tz": "UTC", "n": [1, 2.5]}),
            trace: Some(TraceContext {
                trace_id: [0x4b; 16],
                span_id: [0x0f; 8],
                flags: 1,
            }),
        }));
        let ret = CallReturn {
            sealed: None,
            seal: None,
            sent_back: 3,
            outcome: CallOutcome::Ok(json!({"content": [], "isError": false})),
            trace: vec![HopTrace {
                node: NodeId::from_u64(3),
                asn: Asn(65003),
                elapsed_us: 1234,
            }],
        };
        round_trip(CallMessage::Answer(Answer {
            leg: LegId(1),
            answer: CallAnswer::Done(ret.clone()),
        }));
        round_trip(CallMessage::Answer(Answer {
            leg: LegId(1),
            answer: CallAnswer::Accepted,
        }));
        round_trip(CallMessage::Answer(Answer {
            leg: LegId(2),
            answer: CallAnswer::Refused(CallError::new(CallErrorKind::AccessDenied, "no")),
        }));
        round_trip(CallMessage::Result(CallResult {
            leg: LegId(3),
            ret: CallReturn {
                sealed: None,
                seal: None,
                sent_back: 0,
                outcome: CallOutcome::Err(CallError::upstream(
                    -32602,
                    "bad",
                    Some(json!({"x": 1})),
                )),
                trace: Vec::new(),
            },
        }));
        round_trip(CallMessage::Progress(Progress {
            leg: LegId(4),
            info: ProgressInfo {
                progress: 2.0,
                total: Some(5.0),
                message: Some("2/5".into()),
            },
        }));
        round_trip(CallMessage::Cancel(Cancel {
            leg: LegId(5),
            reason: Some("client went away".into()),
        }));
        round_trip(CallMessage::Notify(Notify {
            leg: LegId(6),
            method: "notifications/message".into(),
            params: json!({"level": "info", "data": "step 1"}),
        }));
        round_trip(CallMessage::Ask(Ask {
            leg: LegId(7),
            ask: 3,
            method: "sampling/createMessage".into(),
            params: json!({"messages": [], "maxTokens": 10}),
        }));
        round_trip(CallMessage::Reply(Reply {
            leg: LegId(8),
            ask: 3,
            outcome: CallOutcome::Ok(json!({"role": "assistant"})),
        }));
        round_trip(CallMessage::Reply(Reply {
            leg: LegId(8),
            ask: 4,
            outcome: CallOutcome::err(CallErrorKind::Upstream, "the client declined"),
        }));
        for op in [
            CallOp::Tool,
            CallOp::Describe,
            CallOp::Prompt,
            CallOp::Resource,
            CallOp::Complete,
            CallOp::Subscribe,
        ] {
            let mut o = origin();
            o.op = op;
            round_trip(CallMessage::Call(Call {
                sealed: None,
                leg: LegId(9),
                hop_limit: 3,
                log_level: None,
                progress: false,
                origin: Arc::new(o),
                arguments: json!({"uri": "test://x"}),
                trace: None,
            }));
        }
    }

    #[test]
    fn a_malformed_trace_context_is_dropped_not_refused() {
        let l = Limits::default();
        let call = Call {
            sealed: None,
            leg: LegId(3),
            hop_limit: 2,
            log_level: None,
            progress: false,
            origin: Arc::new(origin()),
            arguments: Json::Null,
            trace: None,
        };
        let Value::Map(mut body) =
            encode_call_message(&CallMessage::Call(call.clone()), &l).unwrap()
        else {
            panic!("a CALL is a map");
        };
        let id = || Value::Bytes(vec![1; 16]);
        let span = || Value::Bytes(vec![2; 8]);
        for bad in [
            Value::Text("00-01-02-01".into()),
            Value::Array(vec![id(), span()]),
            Value::Array(vec![Value::Bytes(vec![1; 15]), span(), uint(1u64)]),
            Value::Array(vec![id(), Value::Bytes(vec![0; 8]), uint(1u64)]),
            Value::Array(vec![Value::Bytes(vec![0; 16]), span(), uint(1u64)]),
            Value::Array(vec![id(), span(), uint(256u64)]),
            Value::Array(vec![id(), span(), uint(1u64), uint(1u64)]),
        ] {
            let mut b = body.clone();
            b.push((uint(k::call::TRACE), bad.clone()));
            let c = decode_call(&Value::Map(b), &l).expect("the call still decodes");
            assert_eq!(c.trace, None, "{bad:?}");
            assert_eq!(c.origin, call.origin);
        }
        body.push((
            uint(k::call::TRACE),
            Value::Array(vec![id(), span(), uint(1u64)]),
        ));
        let c = decode_call(&Value::Map(body), &l).unwrap();
        assert_eq!(
            c.trace,
            Some(TraceContext {
                trace_id: [1; 16],
                span_id: [2; 8],
                flags: 1
            })
        );
    }

    #[test]
    fn the_side_channel_carries_only_its_methods() {
        let l = Limits::default();
        let notify = CallMessage::Notify(Notify {
            leg: LegId(1),
            method: "tools/call".into(),
            params: Json::Null,
        });
        assert!(crate::wire::encode(&crate::wire::Frame::Call(notify), &l).is_err());
        let ask = CallMessage::Ask(Ask {
            leg: LegId(1),
            ask: 1,
            method: "notifications/message".into(),
            params: Json::Null,
        });
        assert!(crate::wire::encode(&crate::wire::Frame::Call(ask), &l).is_err());
        // A frame built by hand with another method is refused on decode.
        let mut b = MapBuilder::new();
        b.put(k::LEG, uint(1u64))
            .put(k::side::ASK, uint(1u64))
            .put(k::side::METHOD, text("tools/call"));
        let body = b.build();
        assert!(decode_ask(&body, &l).is_err());
    }

    #[test]
    fn an_answer_needs_exactly_one_outcome() {
        let l = Limits::default();
        let both = Value::Map(vec![
            (uint(0u64), uint(1u64)),
            (uint(1u64), Value::Bool(true)),
            (uint(2u64), Value::Map(vec![])),
        ]);
        assert!(decode_answer(&both, &l).is_err());
        let none = Value::Map(vec![(uint(0u64), uint(1u64))]);
        assert!(decode_answer(&none, &l).is_err());
    }

    #[test]
    fn a_null_result_is_a_result() {
        let l = Limits::default();
        let v = Value::Map(vec![
            (uint(0u64), uint(1u64)),
            (uint(1u64), Value::Map(vec![(uint(0u64), Value::Null)])),
        ]);
        assert_eq!(
            decode_call_result(&v, &l).unwrap().ret.outcome,
            CallOutcome::Ok(Json::Null)
        );
    }

    #[test]
    fn progress_must_be_finite() {
        let p = CallMessage::Progress(Progress {
            leg: LegId(1),
            info: ProgressInfo {
                progress: f64::NAN,
                total: None,
                message: None,
            },
        });
        assert!(encode_call_message(&p, &Limits::default()).is_err());
    }

    #[test]
    fn signed_bytes_cover_every_origin_field_but_cert_and_signature() {
        let a = origin();
        let base = call_signed_bytes(&a);
        let mut b = a.clone();
        b.signature = None;
        b.cert = None;
        assert_eq!(call_signed_bytes(&b), base);
        let changes: [fn(&mut CallOrigin); 9] = [
            |o| o.id = CallId([8; 16]),
            |o| o.caller_asn = Asn(1),
            |o| o.communities.clear(),
            |o| o.target = Prefix::new("x").unwrap(),
            |o| o.op = CallOp::Describe,
            |o| o.idempotent = false,
            |o| o.tool = None,
            |o| o.args_digest = [0; 32],
            |o| o.deadline = Millis(1),
        ];
        for c in changes {
            let mut o = a.clone();
            c(&mut o);
            assert_ne!(call_signed_bytes(&o), base);
        }
        assert!(base.starts_with(CALL_DOMAIN));
    }
}
