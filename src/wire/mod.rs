//! The wire protocol: versioned CBOR frames. It only encodes and decodes;
//! signing and verifying routes is `crate::identity`'s (it uses
//! [`canon`] for the signed bytes).
//!
//! Every message is one CBOR map `{0: version, 1: type, 2: body}`, encoded
//! with ciborium through serde. [`encode`] and [`decode`] convert between
//! bytes and [`Frame`]s: the routing messages the engine consumes
//! ([`Message`]) and the call-tunnelling messages ([`call::CallMessage`]).
//! The transport delimits frames (one frame per request-response message)
//! and caps its read at [`Limits::max_read_bytes`] before calling
//! [`decode`]; `decode` checks the size again before parsing anything.
//!
//! A decode failure is a typed [`DecodeError`]; `Notification::from(&err)`
//! is the reply. What to do next (send it and close, or ignore) is the
//! session's decision, not the codec's.
//!
//! - [`schema`]: the routing message bodies, [`call`]: the call bodies,
//!   [`cbor`]: the pre-scan and typed CBOR accessors, [`canon`]: the
//!   deterministic CBOR of signed bytes.
//!
//! The byte-level specification is docs/wire.md.

pub mod call;
pub mod canon;
pub mod cbor;
pub mod error;
pub mod limits;
pub mod schema;
pub mod tombstone;

use std::fmt;

use ciborium::Value;

use crate::core::message::{Message, Update};
use crate::core::route::RouteKey;
pub use call::CallMessage;
use cbor::{Fields, MapBuilder, uint};
pub use error::{Bound, CborError, DecodeError, EncodeError, FieldError, FieldErrorKind};
pub use limits::Limits;

/// Version of the frame schema this build speaks.
pub const FRAME_VERSION: u64 = 1;

mod key {
    pub const VERSION: u64 = 0;
    pub const TYPE: u64 = 1;
    pub const BODY: u64 = 2;
}

/// Message type numbers. 1-5 follow BGP's numbering; 16-23 are call
/// tunnelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
    /// An UPDATE that only withdraws (the product card's WITHDRAW).
    Withdraw = 6,
    Call = 16,
    CallResult = 17,
    Cancel = 18,
    Progress = 19,
    /// The response to a CALL request.
    CallAnswer = 20,
    Notify = 21,
    Ask = 22,
    Reply = 23,
}

impl MessageType {
    pub fn from_u64(v: u64) -> Option<Self> {
        use MessageType::*;
        Some(match v {
            1 => Open,
            2 => Update,
            3 => Notification,
            4 => Keepalive,
            5 => RouteRefresh,
            6 => Withdraw,
            16 => Call,
            17 => CallResult,
            18 => Cancel,
            19 => Progress,
            20 => CallAnswer,
            21 => Notify,
            22 => Ask,
            23 => Reply,
            _ => return None,
        })
    }

    /// Routing frames get the smaller size limit.
    pub fn is_routing(self) -> bool {
        (self as u8) < 16
    }

    pub fn name(self) -> &'static str {
        use MessageType::*;
        match self {
            Open => "OPEN",
            Update => "UPDATE",
            Notification => "NOTIFICATION",
            Keepalive => "KEEPALIVE",
            RouteRefresh => "ROUTE-REFRESH",
            Withdraw => "WITHDRAW",
            Call => "CALL",
            CallResult => "CALL-RESULT",
            Cancel => "CANCEL",
            Progress => "PROGRESS",
            CallAnswer => "CALL-ANSWER",
            Notify => "NOTIFY",
            Ask => "ASK",
            Reply => "REPLY",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Routing(Message),
    Call(CallMessage),
}

impl From<Message> for Frame {
    fn from(m: Message) -> Self {
        Frame::Routing(m)
    }
}

impl From<CallMessage> for Frame {
    fn from(m: CallMessage) -> Self {
        Frame::Call(m)
    }
}

impl Frame {
    /// The type number this frame is sent with. An UPDATE that only
    /// withdraws goes out as WITHDRAW.
    pub fn message_type(&self) -> MessageType {
        match self {
            Frame::Routing(m) => match m {
                Message::Open(_) => MessageType::Open,
                Message::Keepalive => MessageType::Keepalive,
                Message::Update(u) if u.announce.is_empty() && !u.withdraw.is_empty() => {
                    MessageType::Withdraw
                }
                Message::Update(_) => MessageType::Update,
                Message::Notification(_) => MessageType::Notification,
                Message::RouteRefresh => MessageType::RouteRefresh,
            },
            Frame::Call(c) => match c {
                CallMessage::Call(_) => MessageType::Call,
                CallMessage::Result(_) => MessageType::CallResult,
                CallMessage::Cancel(_) => MessageType::Cancel,
                CallMessage::Progress(_) => MessageType::Progress,
                CallMessage::Notify(_) => MessageType::Notify,
                CallMessage::Ask(_) => MessageType::Ask,
                CallMessage::Reply(_) => MessageType::Reply,
                CallMessage::Answer(_) => MessageType::CallAnswer,
            },
        }
    }
}

/// Encodes a frame, enforcing the same limits the peer's decoder will.
pub fn encode(frame: &Frame, limits: &Limits) -> Result<Vec<u8>, EncodeError> {
    let body: Option<Value> = match frame {
        Frame::Routing(Message::Open(o)) => Some(schema::encode_open(o, limits)?),
        Frame::Routing(Message::Keepalive | Message::RouteRefresh) => None,
        Frame::Routing(Message::Update(u)) => return encode_update_frame(u, limits),
        Frame::Routing(Message::Notification(n)) => Some(schema::encode_notification(n, limits)),
        Frame::Call(c) => Some(call::encode_call_message(c, limits)?),
    };
    finish(frame.message_type(), body, limits)
}

/// Encodes a routing message (shorthand for [`encode`] of a
/// [`Frame::Routing`]).
pub fn encode_message(m: &Message, limits: &Limits) -> Result<Vec<u8>, EncodeError> {
    match m {
        Message::Update(u) => encode_update_frame(u, limits),
        Message::Open(o) => finish(
            MessageType::Open,
            Some(schema::encode_open(o, limits)?),
            limits,
        ),
        Message::Keepalive => finish(MessageType::Keepalive, None, limits),
        Message::RouteRefresh => finish(MessageType::RouteRefresh, None, limits),
        Message::Notification(n) => finish(
            MessageType::Notification,
            Some(schema::encode_notification(n, limits)),
            limits,
        ),
    }
}

fn encode_update_frame(u: &Update, limits: &Limits) -> Result<Vec<u8>, EncodeError> {
    let ty = if u.announce.is_empty() && !u.withdraw.is_empty() {
        MessageType::Withdraw
    } else {
        MessageType::Update
    };
    finish(ty, Some(schema::encode_update(u, limits)?), limits)
}

fn finish(ty: MessageType, body: Option<Value>, limits: &Limits) -> Result<Vec<u8>, EncodeError> {
    let mut m = MapBuilder::new();
    m.put(key::VERSION, uint(FRAME_VERSION))
        .put(key::TYPE, uint(ty as u8));
    if let Some(b) = body {
        m.put(key::BODY, b);
    }
    let out = cbor::to_bytes(&m.build())?;
    let max = if ty.is_routing() {
        limits.max_frame_bytes
    } else {
        limits.max_call_frame_bytes
    };
    if out.len() > max {
        return Err(EncodeError::FrameTooLarge {
            len: out.len(),
            max,
        });
    }
    Ok(out)
}

/// Encodes an UPDATE of any size as as many frames as the limits require:
/// withdrawals first, then announcements, the end-of-RIB flag on the last
/// frame. Each frame is a valid UPDATE (or WITHDRAW) on its own.
pub fn encode_update_frames(u: &Update, limits: &Limits) -> Result<Vec<Vec<u8>>, EncodeError> {
    let mut parts: Vec<Update> = Vec::new();
    for w in u.withdraw.chunks(limits.max_withdraws.max(1)) {
        let mut part = Update {
            withdraw: w.to_vec(),
            ..Update::default()
        };
        // The unreachable signal and tombstones ride with their prefix's
        // withdrawal.
        part.unreachable = unreachable_of(&u.unreachable, &part.withdraw);
        part.tombstones = tombstones_of(&u.tombstones, &part.withdraw);
        parts.push(part);
    }
    // Tombstones whose prefix is not withdrawn here go in the first part.
    let unplaced: Vec<_> = u
        .tombstones
        .iter()
        .filter(|t| !u.withdraw.iter().any(|k| k.prefix == t.prefix))
        .cloned()
        .collect();
    for a in u.announce.chunks(limits.max_routes.max(1)) {
        parts.push(Update {
            announce: a.to_vec(),
            ..Update::default()
        });
    }
    if parts.is_empty() {
        parts.push(Update::default());
    }
    if let Some(first) = parts.first_mut() {
        first.tombstones.extend(unplaced);
    }
    if let Some(last) = parts.last_mut() {
        last.end_of_rib = u.end_of_rib;
    }
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        encode_split(p, limits, &mut out)?;
    }
    Ok(out)
}

/// The prefixes of `unreachable` withdrawn in `withdraw`, each once.
fn unreachable_of(
    unreachable: &[crate::core::prefix::Prefix],
    withdraw: &[crate::core::route::RouteKey],
) -> Vec<crate::core::prefix::Prefix> {
    if unreachable.is_empty() {
        return Vec::new();
    }
    let mut here: std::collections::HashSet<&crate::core::prefix::Prefix> =
        withdraw.iter().map(|k| &k.prefix).collect();
    // Taken out once used: a prefix withdrawn under two path ids is named
    // once.
    unreachable
        .iter()
        .filter(|p| here.remove(p))
        .cloned()
        .collect()
}

/// The tombstones of `tombstones` whose prefix `withdraw` withdraws.
fn tombstones_of(
    tombstones: &[std::sync::Arc<crate::core::proof::Tombstone>],
    withdraw: &[crate::core::route::RouteKey],
) -> Vec<std::sync::Arc<crate::core::proof::Tombstone>> {
    if tombstones.is_empty() {
        return Vec::new();
    }
    let here: std::collections::HashSet<&crate::core::prefix::Prefix> =
        withdraw.iter().map(|k| &k.prefix).collect();
    tombstones
        .iter()
        .filter(|t| here.contains(&t.prefix))
        .cloned()
        .collect()
}

/// Encodes `u`, halving it until each half fits in a frame. Parts hold
/// either announcements or withdrawals, never both.
/// An UPDATE as [`encode_update_frames_or_withdraw`] sends it.
#[derive(Debug)]
pub struct EncodedUpdate {
    pub frames: Vec<Vec<u8>>,
    /// What the frames carry.
    pub update: Update,
    /// Announcements sent as withdrawals, because they do not encode.
    pub withdrawn: Vec<RouteKey>,
}

/// [`encode_update_frames`], keeping what encodes when a route does not:
/// each announcement that cannot be encoded on its own goes as a
/// withdrawal of its key instead, so the peer drops the path it had for
/// that key rather than keep it, and the rest of the UPDATE still goes.
/// The engine checks the wire's bounds before it exports, so a key
/// withdrawn here is a bug to log. An error only when the rest does not
/// encode either.
pub fn encode_update_frames_or_withdraw(
    u: Update,
    limits: &Limits,
) -> Result<EncodedUpdate, EncodeError> {
    let first = match encode_update_frames(&u, limits) {
        Ok(frames) => {
            return Ok(EncodedUpdate {
                frames,
                update: u,
                withdrawn: Vec::new(),
            });
        }
        Err(e) => e,
    };
    let mut u = u;
    let mut withdrawn = Vec::new();
    u.announce.retain(|r| {
        let alone = Update {
            announce: vec![r.clone()],
            ..Update::default()
        };
        let fits = encode_update_frame(&alone, limits).is_ok();
        if !fits {
            withdrawn.push(r.key());
        }
        fits
    });
    if withdrawn.is_empty() {
        return Err(first);
    }
    u.withdraw.extend(withdrawn.iter().cloned());
    let frames = encode_update_frames(&u, limits)?;
    Ok(EncodedUpdate {
        frames,
        update: u,
        withdrawn,
    })
}

fn encode_split(mut u: Update, limits: &Limits, out: &mut Vec<Vec<u8>>) -> Result<(), EncodeError> {
    match encode_update_frame(&u, limits) {
        Ok(b) => {
            out.push(b);
            Ok(())
        }
        Err(e @ EncodeError::FrameTooLarge { .. })
            if u.announce.len() + u.withdraw.len() > 1 || u.tombstones.len() > 1 =>
        {
            let mut second = Update {
                announce: u.announce.split_off(u.announce.len() / 2),
                withdraw: u.withdraw.split_off(u.withdraw.len() / 2),
                end_of_rib: std::mem::take(&mut u.end_of_rib),
                unreachable: Vec::new(),
                tombstones: Vec::new(),
            };
            second.unreachable = unreachable_of(&u.unreachable, &second.withdraw);
            u.unreachable = unreachable_of(&u.unreachable, &u.withdraw);
            // A tombstone stays with its withdrawal; the others are halved.
            let all = std::mem::take(&mut u.tombstones);
            let (mut first, mut rest): (Vec<_>, Vec<_>) = all
                .into_iter()
                .partition(|t| u.withdraw.iter().any(|k| k.prefix == t.prefix));
            let (mut with_second, loose): (Vec<_>, Vec<_>) = rest
                .drain(..)
                .partition(|t| second.withdraw.iter().any(|k| k.prefix == t.prefix));
            let half = loose.len() / 2;
            let mut loose = loose;
            with_second.extend(loose.split_off(half));
            first.extend(loose);
            u.tombstones = first;
            second.tombstones = with_second;
            if u.is_empty() || second.is_empty() {
                // Nothing could be moved (tombstones bound to the one
                // withdrawal that is left): it cannot be made smaller.
                return Err(e);
            }
            encode_split(u, limits, out)?;
            encode_split(second, limits, out)
        }
        Err(e) => Err(e),
    }
}

/// Decodes one frame. Never panics; every failure is a [`DecodeError`] with
/// a NOTIFICATION to answer it.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Frame, DecodeError> {
    let max = limits.max_read_bytes();
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    let top = cbor::parse(bytes, limits)?;
    let f = Fields::parse(&top).map_err(DecodeError::Header)?;
    let version = f
        .read(key::VERSION, "version", cbor::u64_of)
        .map_err(DecodeError::Header)?;
    if version != FRAME_VERSION {
        return Err(DecodeError::UnsupportedVersion { got: version });
    }
    f.check_known(&[key::VERSION, key::TYPE, key::BODY])
        .map_err(DecodeError::Header)?;
    let raw_ty = f
        .read(key::TYPE, "type", cbor::u64_of)
        .map_err(DecodeError::Header)?;
    let ty = MessageType::from_u64(raw_ty).ok_or(DecodeError::UnknownType { ty: raw_ty })?;
    if ty.is_routing() && bytes.len() > limits.max_frame_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: limits.max_frame_bytes,
        });
    }
    let body = f.opt(key::BODY);
    let err = |err: FieldError| DecodeError::Body { ty, err };
    let need = || body.ok_or_else(|| err(FieldError::from(FieldErrorKind::Missing).within("body")));
    Ok(match ty {
        MessageType::Keepalive | MessageType::RouteRefresh => {
            // No body today; a later version may add optional fields.
            if let Some(b) = body {
                Fields::parse(b)
                    .and_then(|f| f.check_known(&[]))
                    .map_err(err)?;
            }
            Frame::Routing(if ty == MessageType::Keepalive {
                Message::Keepalive
            } else {
                Message::RouteRefresh
            })
        }
        MessageType::Open => Frame::Routing(Message::Open(
            schema::decode_open(need()?, limits).map_err(err)?,
        )),
        MessageType::Update | MessageType::Withdraw => {
            let u =
                schema::decode_update(need()?, limits, ty == MessageType::Withdraw).map_err(err)?;
            Frame::Routing(Message::Update(u))
        }
        MessageType::Notification => Frame::Routing(Message::Notification(
            schema::decode_notification(need()?, limits).map_err(err)?,
        )),
        MessageType::Call => Frame::Call(CallMessage::Call(
            call::decode_call(need()?, limits).map_err(err)?,
        )),
        MessageType::CallResult => Frame::Call(CallMessage::Result(
            call::decode_call_result(need()?, limits).map_err(err)?,
        )),
        MessageType::Cancel => Frame::Call(CallMessage::Cancel(
            call::decode_cancel(need()?, limits).map_err(err)?,
        )),
        MessageType::Progress => Frame::Call(CallMessage::Progress(
            call::decode_progress(need()?, limits).map_err(err)?,
        )),
        MessageType::CallAnswer => Frame::Call(CallMessage::Answer(
            call::decode_answer(need()?, limits).map_err(err)?,
        )),
        MessageType::Notify => Frame::Call(CallMessage::Notify(
            call::decode_notify(need()?, limits).map_err(err)?,
        )),
        MessageType::Ask => Frame::Call(CallMessage::Ask(
            call::decode_ask(need()?, limits).map_err(err)?,
        )),
        MessageType::Reply => Frame::Call(CallMessage::Reply(
            call::decode_reply(need()?, limits).map_err(err)?,
        )),
    })
}
