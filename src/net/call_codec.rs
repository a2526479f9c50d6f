//! The request-response codec of the call protocol ([`CALL_PROTOCOL`],
//! `/agent-bgp/call/1`).
//!
//! Kept apart from the routing protocol so calls never queue behind route
//! floods: the routing link keeps one request in flight per peer for
//! ordering, while calls run many at once, each on its own substream.
//!
//! ```text
//!  request   CALL frame            -> response: CALL-ANSWER frame
//!                                     (accepted | refused | done, with the result inline)
//!  request   CALL-RESULT | PROGRESS | CANCEL frame
//!                                  -> response: empty (acknowledged)
//! ```
//!
//! A CALL's response is held by the callee up to its hold time (see
//! [`crate::core::forward`]): a short call's result comes back inline, one
//! round trip per hop. Inbound call streams are only read from peers with
//! an established session, capped at the call frame limit before decoding
//! and charged to the connection's and the node's budgets (see
//! [`super::gate`]); a request that does not decode arrives as
//! [`CallInbound::Malformed`] and is answered with a refusal (for what looks
//! like a CALL) or dropped.

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;
use libp2p::request_response;

use super::gate::{Charge, CodecGate, Gate, write_frame};
use crate::core::call::{Answer, CallMessage};
use crate::wire::{self, DecodeError, Frame, Limits};

/// The call protocol id; the trailing number is the protocol version.
pub const CALL_PROTOCOL: StreamProtocol = StreamProtocol::new("/agent-bgp/call/1");

/// A request, as sent or as received.
#[derive(Debug)]
pub enum CallRequest {
    /// Outbound: one encoded frame.
    Encoded(Vec<u8>),
    /// Inbound: what the peer sent, and the budget its frame holds until
    /// the node is done with it.
    Received {
        inbound: CallInbound,
        charge: Charge,
    },
}

/// A received call request.
#[derive(Debug)]
pub enum CallInbound {
    Message(CallMessage),
    Malformed(DecodeError),
}

/// The answer to a call request.
#[derive(Debug, Clone, PartialEq)]
pub enum CallResponse {
    /// CALL-RESULT, PROGRESS or CANCEL taken.
    Ack,
    /// The answer to a CALL.
    Answer(Answer),
}

/// The codec; cheap to clone (one per connection handler, bound to its
/// connection by the gate).
#[derive(Debug, Clone)]
pub struct CallCodec {
    limits: Limits,
    gate: CodecGate,
}

impl CallCodec {
    pub fn new(limits: Limits, gate: Gate) -> Self {
        CallCodec {
            limits,
            gate: CodecGate::new(gate),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn max(&self) -> usize {
        self.limits.max_call_frame_bytes()
    }

    /// Encodes a request frame.
    pub fn encode_request(&self, m: &CallMessage) -> Result<Vec<u8>, wire::EncodeError> {
        wire::encode(&Frame::Call(m.clone()), &self.limits)
    }

    pub fn encode_response(&self, r: &CallResponse) -> io::Result<Vec<u8>> {
        match r {
            CallResponse::Ack => Ok(Vec::new()),
            CallResponse::Answer(a) => {
                wire::encode(&Frame::Call(CallMessage::Answer(a.clone())), &self.limits)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
            }
        }
    }

    pub fn decode_response(&self, bytes: &[u8]) -> io::Result<CallResponse> {
        if bytes.is_empty() {
            return Ok(CallResponse::Ack);
        }
        match wire::decode(bytes, &self.limits) {
            Ok(Frame::Call(CallMessage::Answer(a))) => Ok(CallResponse::Answer(a)),
            Ok(other) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "response is a {} frame, not a CALL-ANSWER",
                    other.message_type()
                ),
            )),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }

    /// Decodes a request. Routing frames and answers are not requests on
    /// this protocol.
    pub fn decode_request(&self, bytes: &[u8]) -> CallInbound {
        match wire::decode(bytes, &self.limits) {
            Ok(Frame::Call(CallMessage::Answer(_))) => {
                CallInbound::Malformed(DecodeError::UnknownType {
                    ty: wire::MessageType::CallAnswer as u64,
                })
            }
            Ok(Frame::Call(m)) => CallInbound::Message(m),
            Ok(f) => CallInbound::Malformed(DecodeError::UnknownType {
                ty: f.message_type() as u64,
            }),
            Err(e) => CallInbound::Malformed(e),
        }
    }
}

impl request_response::Codec for CallCodec {
    type Protocol = StreamProtocol;
    type Request = CallRequest;
    type Response = CallResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<CallRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        // Nothing is read from a peer without a session.
        self.gate.require_session()?;
        let max = self.max();
        Ok(match self.gate.read(io, max).await? {
            Some((bytes, charge)) => CallRequest::Received {
                inbound: self.decode_request(&bytes),
                charge,
            },
            None => CallRequest::Received {
                inbound: CallInbound::Malformed(DecodeError::TooLarge { len: max + 1, max }),
                charge: Charge::default(),
            },
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<CallResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = self
            .gate
            .read_response(io, self.max(), "call response")
            .await?;
        self.decode_response(&bytes)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: CallRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let CallRequest::Encoded(bytes) = req else {
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
        res: CallResponse,
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
    use crate::core::call::{CallAnswer, Cancel, LegId};

    /// A codec bound to a connection of a peer with a session.
    fn in_session(limits: Limits) -> CallCodec {
        CallCodec::new(limits, super::super::gate::in_session()).clone()
    }

    #[tokio::test]
    async fn nothing_is_read_from_a_peer_without_a_session() {
        let gate = Gate::new(Default::default());
        gate.set_slot(libp2p::PeerId::random());
        let mut c = CallCodec::new(Limits::default(), gate.clone()).clone();
        let mut input = Cursor::new(vec![0u8; 1000]);
        let e = c
            .read_request(&CALL_PROTOCOL, &mut input)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(input.position(), 0, "not one byte read");
        assert_eq!(gate.stats().call_streams_without_session, 1);
    }

    #[tokio::test]
    async fn a_cancel_request_round_trips_and_is_acknowledged_empty() {
        let mut c = in_session(Limits::default());
        let m = CallMessage::Cancel(Cancel {
            leg: LegId(9),
            reason: None,
        });
        let bytes = c.encode_request(&m).unwrap();
        let mut out = Cursor::new(Vec::new());
        c.write_request(&CALL_PROTOCOL, &mut out, CallRequest::Encoded(bytes))
            .await
            .unwrap();
        let got = c
            .read_request(&CALL_PROTOCOL, &mut Cursor::new(out.into_inner()))
            .await
            .unwrap();
        assert!(
            matches!(got, CallRequest::Received { inbound: CallInbound::Message(x), .. } if x == m)
        );
        assert_eq!(c.decode_response(&[]).unwrap(), CallResponse::Ack);
    }

    #[tokio::test]
    async fn an_answer_is_a_response_not_a_request() {
        let mut c = in_session(Limits::default());
        let a = Answer {
            leg: LegId(1),
            answer: CallAnswer::Accepted,
        };
        let mut out = Cursor::new(Vec::new());
        c.write_response(&CALL_PROTOCOL, &mut out, CallResponse::Answer(a.clone()))
            .await
            .unwrap();
        let bytes = out.into_inner();
        assert_eq!(c.decode_response(&bytes).unwrap(), CallResponse::Answer(a));
        assert!(matches!(
            c.decode_request(&bytes),
            CallInbound::Malformed(DecodeError::UnknownType { ty: 20 })
        ));
    }

    #[tokio::test]
    async fn an_oversized_request_is_refused_after_reading_only_the_cap() {
        let mut c = in_session(Limits::default().with_max_call_frame_bytes(16));
        let mut input = Cursor::new(vec![0u8; 1000]);
        let got = c.read_request(&CALL_PROTOCOL, &mut input).await.unwrap();
        assert!(matches!(
            got,
            CallRequest::Received {
                inbound: CallInbound::Malformed(DecodeError::TooLarge { max: 16, .. }),
                ..
            }
        ));
        assert_eq!(input.position(), 17);
    }
}
