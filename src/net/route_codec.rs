//! The request-response codec of the routing protocol
//! ([`ROUTE_PROTOCOL`], `/agent-bgp/route/2`).
//!
//! One request carries one routing message as one frame of
//! [`crate::wire`]; the substream delimits it (the writer closes its side).
//! The response is the receiver's acknowledgement, sent only after it has
//! handled the message and, for an UPDATE, made its effect durable:
//!
//! ```text
//!  request   wire frame (OPEN | UPDATE | WITHDRAW | KEEPALIVE | NOTIFICATION | ROUTE-REFRESH)
//!  response  f5 (CBOR `true`)         -> Ack
//!            wire NOTIFICATION frame   -> Refused: the receiver will not
//!                                         take messages from us (no session)
//!            nothing                   -> an error: not acknowledged
//! ```
//!
//! The acknowledgement is explicit because a receiver that cannot make a
//! message durable (its store failed, it is stopping) drops the response,
//! and request-response then closes the stream with nothing written: that
//! must read as "not acknowledged", never as an acknowledgement. (Version 1
//! of the protocol acknowledged with an empty response, which a dropped
//! response was indistinguishable from; `tests/disk_full.rs` found it.)
//!
//! Reads are capped before decoding ([`Limits::max_frame_bytes`] for
//! requests, and the [gate](super::gate)'s pre-session cap until the peer
//! has a session; [`MAX_RESPONSE_BYTES`] for responses) and charged to the
//! connection's and the node's budgets. A request that does not
//! decode is not an I/O error: it arrives as [`Inbound::Malformed`] with the
//! typed [`DecodeError`], so the session can answer with the NOTIFICATION
//! that says why.

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;
use libp2p::request_response;

use super::gate::{Charge, CodecGate, Gate, write_frame};
use crate::core::message::{Message, Notification};
use crate::wire::{self, DecodeError, Frame, Limits};

/// The routing protocol id; the trailing number is the protocol version.
pub const ROUTE_PROTOCOL: StreamProtocol = StreamProtocol::new("/agent-bgp/route/2");

/// The bytes of an acknowledgement: the CBOR encoding of `true`.
pub const ACK: &[u8] = &[0xf5];

/// Largest response read: a NOTIFICATION frame.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A request, as sent or as received.
#[derive(Debug)]
pub enum RouteRequest {
    /// Outbound: one encoded frame (shared with the link, which keeps it
    /// while the request is in flight).
    Encoded(bytes::Bytes),
    /// Inbound: what the peer sent, and the budget its frame holds until
    /// the node is done with it.
    Received { inbound: Inbound, charge: Charge },
}

/// A received request.
#[derive(Debug)]
pub enum Inbound {
    Message(Message),
    /// The bytes did not decode; the session answers with this error's
    /// NOTIFICATION.
    Malformed(DecodeError),
}

/// The receiver's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteResponse {
    /// Handled (and, for an UPDATE, durable).
    Ack,
    /// Not taken: the receiver has no session with us and will not start
    /// one now. The notification says why.
    Refused(Notification),
}

/// The codec; cheap to clone (one per connection handler, bound to its
/// connection by the gate).
#[derive(Debug, Clone)]
pub struct RouteCodec {
    limits: Limits,
    gate: CodecGate,
}

impl RouteCodec {
    pub fn new(limits: Limits, gate: Gate) -> Self {
        RouteCodec {
            limits,
            gate: CodecGate::new(gate),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Encodes a response for the wire.
    pub fn encode_response(&self, r: &RouteResponse) -> io::Result<Vec<u8>> {
        match r {
            RouteResponse::Ack => Ok(ACK.to_vec()),
            RouteResponse::Refused(n) => {
                wire::encode_message(&Message::Notification(n.clone()), &self.limits)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
            }
        }
    }

    /// Decodes a response read off the wire.
    pub fn decode_response(&self, bytes: &[u8]) -> io::Result<RouteResponse> {
        if bytes == ACK {
            return Ok(RouteResponse::Ack);
        }
        if bytes.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "no acknowledgement: the peer did not take the message",
            ));
        }
        match wire::decode(bytes, &self.limits) {
            Ok(Frame::Routing(Message::Notification(n))) => Ok(RouteResponse::Refused(n)),
            Ok(other) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "response is a {} frame, not a NOTIFICATION",
                    other.message_type()
                ),
            )),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }

    /// Decodes a request's bytes. Call tunnelling frames have their own
    /// protocol; one here is a message-type error.
    pub fn decode_request(&self, bytes: &[u8]) -> Inbound {
        match wire::decode(bytes, &self.limits) {
            Ok(Frame::Routing(m)) => Inbound::Message(m),
            Ok(Frame::Call(c)) => Inbound::Malformed(DecodeError::UnknownType {
                ty: Frame::Call(c).message_type() as u64,
            }),
            Err(e) => Inbound::Malformed(e),
        }
    }
}

impl request_response::Codec for RouteCodec {
    type Protocol = StreamProtocol;
    type Request = RouteRequest;
    type Response = RouteResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RouteRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let max = self.gate.route_frame_cap(self.limits.max_frame_bytes());
        Ok(match self.gate.read(io, max).await? {
            Some((bytes, charge)) => RouteRequest::Received {
                inbound: self.decode_request(&bytes),
                charge,
            },
            None => RouteRequest::Received {
                inbound: Inbound::Malformed(DecodeError::TooLarge { len: max + 1, max }),
                charge: Charge::default(),
            },
        })
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<RouteResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = self
            .gate
            .read_response(io, MAX_RESPONSE_BYTES, "response")
            .await?;
        self.decode_response(&bytes)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: RouteRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let RouteRequest::Encoded(bytes) = req else {
            debug_assert!(false, "only encoded requests are sent");
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a received request cannot be sent",
            ));
        };
        write_frame(io, &bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: RouteResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = self.encode_response(&res)?;
        write_frame(io, &bytes).await
    }
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use request_response::Codec as _;

    use super::*;
    use crate::core::message::{ErrorCode, subcode};

    fn codec() -> RouteCodec {
        RouteCodec::new(Limits::default(), Gate::new(Default::default()))
    }

    /// A codec bound to a connection of a peer with a session.
    fn in_session(limits: Limits) -> RouteCodec {
        RouteCodec::new(limits, super::super::gate::in_session()).clone()
    }

    #[tokio::test]
    async fn a_request_round_trips_through_a_pipe() {
        let mut c = codec();
        let bytes = wire::encode_message(&Message::Keepalive, c.limits()).unwrap();
        let mut out = Cursor::new(Vec::new());
        c.write_request(
            &ROUTE_PROTOCOL,
            &mut out,
            RouteRequest::Encoded(bytes.into()),
        )
        .await
        .unwrap();
        let mut input = Cursor::new(out.into_inner());
        let got = c.read_request(&ROUTE_PROTOCOL, &mut input).await.unwrap();
        assert!(matches!(
            got,
            RouteRequest::Received {
                inbound: Inbound::Message(Message::Keepalive),
                ..
            }
        ));
    }

    #[tokio::test]
    async fn garbage_is_a_malformed_request_not_an_io_error() {
        let mut c = codec();
        let mut input = Cursor::new(vec![0xff, 0x00, 0x13]);
        let got = c.read_request(&ROUTE_PROTOCOL, &mut input).await.unwrap();
        let RouteRequest::Received {
            inbound: Inbound::Malformed(e),
            ..
        } = got
        else {
            panic!("expected a malformed request, got {got:?}");
        };
        let n = Notification::from(&e);
        assert_eq!(n.code, ErrorCode::MessageHeader);
    }

    #[tokio::test]
    async fn an_oversized_request_is_refused_after_reading_only_the_cap() {
        let mut c = in_session(Limits::default().with_max_frame_bytes(16));
        let mut input = Cursor::new(vec![0u8; 1000]);
        let got = c.read_request(&ROUTE_PROTOCOL, &mut input).await.unwrap();
        assert!(matches!(
            got,
            RouteRequest::Received {
                inbound: Inbound::Malformed(DecodeError::TooLarge { max: 16, .. }),
                ..
            }
        ));
        assert_eq!(input.position(), 17, "read one byte past the cap, no more");
    }

    #[tokio::test]
    async fn before_a_session_only_small_frames_are_read() {
        let gate = Gate::new(Default::default());
        gate.set_slot(libp2p::PeerId::random());
        let mut c = RouteCodec::new(Limits::default(), gate).clone();
        let mut input = Cursor::new(vec![0u8; 200_000]);
        let got = c.read_request(&ROUTE_PROTOCOL, &mut input).await.unwrap();
        assert!(matches!(
            got,
            RouteRequest::Received {
                inbound: Inbound::Malformed(DecodeError::TooLarge { max: 65_536, .. }),
                ..
            }
        ));
        assert_eq!(input.position(), 65_537);
    }

    #[tokio::test]
    async fn responses_are_explicit_acks_or_notifications() {
        let mut c = codec();
        for r in [
            RouteResponse::Ack,
            RouteResponse::Refused(Notification::new(
                ErrorCode::Cease,
                subcode::CONNECTION_REJECTED,
                "no",
            )),
        ] {
            let mut out = Cursor::new(Vec::new());
            c.write_response(&ROUTE_PROTOCOL, &mut out, r.clone())
                .await
                .unwrap();
            let mut input = Cursor::new(out.into_inner());
            assert_eq!(
                c.read_response(&ROUTE_PROTOCOL, &mut input).await.unwrap(),
                r
            );
        }
        let keepalive = wire::encode_message(&Message::Keepalive, c.limits()).unwrap();
        assert!(c.decode_response(&keepalive).is_err());
    }

    #[test]
    fn a_response_that_never_came_is_not_an_acknowledgement() {
        // A receiver that cannot make a message durable drops its response:
        // the stream ends with nothing written.
        let e = codec().decode_response(&[]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(codec().decode_response(ACK).unwrap(), RouteResponse::Ack);
    }
}
