//! Call-tunnelling messages: CALL, CALL-RESULT, CANCEL and PROGRESS.
//!
//! A tool call travels hop by hop along the chosen path to the node that
//! originated the tool's prefix, and its result and progress travel back the
//! same way. This module owns only the messages and their CBOR schema; the
//! MCP issue owns what each hop does with them (forwarding, access policy,
//! deadlines) and may add fields, using keys this version leaves free.
//!
//! JSON values (tool arguments, results, error data) are carried as CBOR
//! items, not as JSON text: null, booleans, integers, floats, text, arrays
//! and maps with text keys. CBOR that has no JSON form (byte strings,
//! non-text map keys, non-finite floats, integers beyond 64 bits) is
//! refused when decoding.

use std::fmt;

use ciborium::Value;
use serde_json::Value as Json;

use super::cbor::{
    Fields, MapBuilder, bytes, f64_of, fixed_bytes, free_text_of, i64_of, text, text_of, u8_of,
    u32_of, u64_of, uint,
};
use super::error::{EncodeError, FieldError, FieldErrorKind};
use super::limits::Limits;
use crate::core::prefix::Prefix;
use crate::core::{Asn, Millis, NodeId};

/// Names one call end to end: 16 random bytes chosen by the caller.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub [u8; 16]);

impl CallId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut b = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
        CallId(b)
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallId({})", hex::encode(&self.0[..6]))
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// An MCP progress token: the client's string or integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressToken {
    Int(i64),
    Text(String),
}

/// Asks the next hop to run `tool` under `target` (or pass the call on).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub id: CallId,
    /// The capability prefix the caller's node routed on.
    pub target: Prefix,
    pub tool: String,
    /// The tool's arguments (an MCP `arguments` object, or null).
    pub arguments: Json,
    /// Hops left; a hop that would forward with 0 answers with an error.
    pub hop_limit: u8,
    /// The caller gives up at this time (ms since the Unix epoch).
    pub deadline: Millis,
    pub caller_asn: Asn,
    pub caller_node: NodeId,
    pub progress_token: Option<ProgressToken>,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// The tool's result (an MCP `CallToolResult`).
    Ok(Json),
    /// The call failed before or outside the tool (JSON-RPC style code).
    Err {
        code: i64,
        message: String,
        data: Option<Json>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    pub id: CallId,
    pub outcome: CallOutcome,
}

/// The caller no longer wants the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    pub id: CallId,
    pub reason: Option<String>,
}

/// Progress of a running call, relayed back to the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub id: CallId,
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// The call-tunnelling messages.
#[derive(Debug, Clone, PartialEq)]
pub enum CallMessage {
    Call(Call),
    Result(CallResult),
    Cancel(Cancel),
    Progress(Progress),
}

mod k {
    pub const ID: u64 = 0;
    pub mod call {
        pub const TARGET: u64 = 1;
        pub const TOOL: u64 = 2;
        pub const ARGUMENTS: u64 = 3;
        pub const HOP_LIMIT: u64 = 4;
        pub const DEADLINE: u64 = 5;
        pub const CALLER_ASN: u64 = 6;
        pub const CALLER_NODE: u64 = 7;
        pub const PROGRESS_TOKEN: u64 = 8;
    }
    pub mod result {
        pub const OK: u64 = 1;
        pub const ERR: u64 = 2;
        pub const ERR_CODE: u64 = 0;
        pub const ERR_MESSAGE: u64 = 1;
        pub const ERR_DATA: u64 = 2;
    }
    pub mod cancel {
        pub const REASON: u64 = 1;
    }
    pub mod progress {
        pub const PROGRESS: u64 = 1;
        pub const TOTAL: u64 = 2;
        pub const MESSAGE: u64 = 3;
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

fn id_of(v: &Value) -> Result<CallId, FieldError> {
    fixed_bytes::<16>(v).map(CallId)
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

pub fn encode_call_message(m: &CallMessage, limits: &Limits) -> Result<Value, EncodeError> {
    // A JSON value sits at depth 3 (frame, body, value); error data at 4.
    // These budgets make everything the decoder accepts re-encodable.
    let depth = limits.max_depth.saturating_sub(2);
    let mut b = MapBuilder::new();
    match m {
        CallMessage::Call(c) => {
            use k::call::*;
            check_text("tool", &c.tool, limits)?;
            b.put(k::ID, bytes(&c.id.0))
                .put(TARGET, text(c.target.as_str()))
                .put(TOOL, text(&c.tool));
            if !c.arguments.is_null() {
                b.put(ARGUMENTS, json_to_cbor(&c.arguments, depth)?);
            }
            b.put(HOP_LIMIT, uint(c.hop_limit))
                .put(DEADLINE, uint(c.deadline.0))
                .put(CALLER_ASN, uint(c.caller_asn.0))
                .put(CALLER_NODE, bytes(c.caller_node.as_bytes()));
            match &c.progress_token {
                Some(ProgressToken::Int(i)) => {
                    b.put(PROGRESS_TOKEN, Value::Integer((*i).into()));
                }
                Some(ProgressToken::Text(t)) => {
                    check_text("progress token", t, limits)?;
                    b.put(PROGRESS_TOKEN, text(t));
                }
                None => {}
            }
        }
        CallMessage::Result(r) => {
            use k::result::*;
            b.put(k::ID, bytes(&r.id.0));
            match &r.outcome {
                CallOutcome::Ok(j) => {
                    b.put(OK, json_to_cbor(j, depth)?);
                }
                CallOutcome::Err {
                    code,
                    message,
                    data,
                } => {
                    check_text("error message", message, limits)?;
                    let mut e = MapBuilder::new();
                    e.put(ERR_CODE, Value::Integer((*code).into()))
                        .put(ERR_MESSAGE, text(message));
                    if let Some(d) = data {
                        e.put(ERR_DATA, json_to_cbor(d, depth.saturating_sub(1))?);
                    }
                    b.put(ERR, e.build());
                }
            }
        }
        CallMessage::Cancel(c) => {
            b.put(k::ID, bytes(&c.id.0));
            if let Some(r) = &c.reason {
                check_text("cancel reason", r, limits)?;
                b.put(k::cancel::REASON, text(r));
            }
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
            b.put(k::ID, bytes(&p.id.0))
                .put(PROGRESS, finite(p.progress)?);
            if let Some(t) = p.total {
                b.put(TOTAL, finite(t)?);
            }
            if let Some(msg) = &p.message {
                check_text("progress message", msg, limits)?;
                b.put(MESSAGE, text(msg));
            }
        }
    }
    Ok(b.build())
}

pub fn decode_call(v: &Value, limits: &Limits) -> Result<Call, FieldError> {
    use k::call::*;
    let f = Fields::parse(v)?;
    f.check_known(&[
        k::ID,
        TARGET,
        TOOL,
        ARGUMENTS,
        HOP_LIMIT,
        DEADLINE,
        CALLER_ASN,
        CALLER_NODE,
        PROGRESS_TOKEN,
    ])?;
    Ok(Call {
        id: f.read(k::ID, "id", id_of)?,
        target: f.read(TARGET, "target", |v| {
            Prefix::new(text_of(v, limits.max_text)?).map_err(|e| FieldErrorKind::Prefix(e).into())
        })?,
        tool: f.read(TOOL, "tool", |v| {
            let s = text_of(v, limits.max_text)?;
            if s.is_empty() {
                return Err(FieldErrorKind::BadText {
                    reason: "tool name is empty",
                }
                .into());
            }
            Ok(s.to_string())
        })?,
        arguments: f.read_or(ARGUMENTS, "arguments", Json::Null, cbor_to_json)?,
        hop_limit: f.read(HOP_LIMIT, "hop_limit", u8_of)?,
        deadline: f.read(DEADLINE, "deadline", |v| u64_of(v).map(Millis))?,
        caller_asn: f.read(CALLER_ASN, "caller_asn", |v| u32_of(v).map(Asn))?,
        caller_node: f.read(CALLER_NODE, "caller_node", |v| {
            fixed_bytes::<32>(v).map(NodeId)
        })?,
        progress_token: f.read_or(PROGRESS_TOKEN, "progress_token", None, |v| match v {
            Value::Integer(_) => i64_of(v).map(|i| Some(ProgressToken::Int(i))),
            _ => text_of(v, limits.max_text).map(|t| Some(ProgressToken::Text(t.to_string()))),
        })?,
    })
}

pub fn decode_call_result(v: &Value, limits: &Limits) -> Result<CallResult, FieldError> {
    use k::result::*;
    let f = Fields::parse(v)?;
    f.check_known(&[k::ID, OK, ERR])?;
    let id = f.read(k::ID, "id", id_of)?;
    // `ok` may legitimately be JSON null, so look at presence, not value.
    let outcome = match (f.get(OK), f.opt(ERR)) {
        (Some(ok), None) => CallOutcome::Ok(cbor_to_json(ok).map_err(|e| e.within("ok"))?),
        (None, Some(err)) => {
            let e = Fields::parse(err).map_err(|e| e.within("err"))?;
            e.check_known(&[ERR_CODE, ERR_MESSAGE, ERR_DATA])
                .map_err(|e| e.within("err"))?;
            CallOutcome::Err {
                code: e
                    .read(ERR_CODE, "code", i64_of)
                    .map_err(|e| e.within("err"))?,
                message: e
                    .read(ERR_MESSAGE, "message", |v| {
                        free_text_of(v, limits.max_text).map(str::to_string)
                    })
                    .map_err(|e| e.within("err"))?,
                data: match e.get(ERR_DATA) {
                    Some(d) => Some(cbor_to_json(d).map_err(|e| e.within("err.data"))?),
                    None => None,
                },
            }
        }
        _ => {
            return Err(FieldErrorKind::WrongType {
                expected: "exactly one of ok (1) and err (2)",
            }
            .into());
        }
    };
    Ok(CallResult { id, outcome })
}

pub fn decode_cancel(v: &Value, limits: &Limits) -> Result<Cancel, FieldError> {
    let f = Fields::parse(v)?;
    f.check_known(&[k::ID, k::cancel::REASON])?;
    Ok(Cancel {
        id: f.read(k::ID, "id", id_of)?,
        reason: f.read_or(k::cancel::REASON, "reason", None, |v| {
            free_text_of(v, limits.max_text).map(|s| Some(s.to_string()))
        })?,
    })
}

pub fn decode_progress(v: &Value, limits: &Limits) -> Result<Progress, FieldError> {
    use k::progress::*;
    let f = Fields::parse(v)?;
    f.check_known(&[k::ID, PROGRESS, TOTAL, MESSAGE])?;
    Ok(Progress {
        id: f.read(k::ID, "id", id_of)?,
        progress: f.read(PROGRESS, "progress", f64_of)?,
        total: f.read_or(TOTAL, "total", None, |v| f64_of(v).map(Some))?,
        message: f.read_or(MESSAGE, "message", None, |v| {
            free_text_of(v, limits.max_text).map(|s| Some(s.to_string()))
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn call_result_needs_exactly_one_outcome() {
        let l = Limits::default();
        let both = Value::Map(vec![
            (uint(0u64), bytes(&[0; 16])),
            (uint(1u64), Value::Null),
            (uint(2u64), Value::Map(vec![])),
        ]);
        assert!(decode_call_result(&both, &l).is_err());
        let neither = Value::Map(vec![(uint(0u64), bytes(&[0; 16]))]);
        assert!(decode_call_result(&neither, &l).is_err());
        let null_ok = Value::Map(vec![
            (uint(0u64), bytes(&[0; 16])),
            (uint(1u64), Value::Null),
        ]);
        assert_eq!(
            decode_call_result(&null_ok, &l).unwrap().outcome,
            CallOutcome::Ok(Json::Null)
        );
    }

    #[test]
    fn progress_must_be_finite() {
        let p = CallMessage::Progress(Progress {
            id: CallId([1; 16]),
            progress: f64::NAN,
            total: None,
            message: None,
        });
        assert!(encode_call_message(&p, &Limits::default()).is_err());
    }

    #[test]
    fn call_id_debug_is_short_and_display_is_full_hex() {
        let id = CallId([0xab; 16]);
        assert_eq!(format!("{id:?}"), "CallId(abababababab)");
        assert_eq!(id.to_string().len(), 32);
        assert_ne!(CallId::random(), CallId::random());
    }
}
