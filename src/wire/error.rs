//! Typed decode and encode errors, and the NOTIFICATION each decode error
//! is answered with.
//!
//! Layers, outermost first: the frame is too large ([`DecodeError::TooLarge`]),
//! is not acceptable CBOR ([`CborError`]), has a bad envelope (version,
//! type), or has a body that does not match its schema ([`FieldError`], which
//! says where: `announce[3].proof.path[1].signature`). One exhaustive match
//! turns each into a wire reply (`From<&DecodeError> for Notification`).
//! The session must not answer a NOTIFICATION with a NOTIFICATION; it just
//! closes.

use crate::core::community::CommunityError;
use crate::core::message::{ErrorCode, Notification, subcode};
use crate::core::prefix::PrefixError;

use super::MessageType;

/// Which [`super::Limits`] bound a count or length broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Routes,
    Withdraws,
    AttrSets,
    Certs,
    PathLen,
    Communities,
    Capabilities,
    ClusterList,
    AsSet,
    ExtraAttrs,
    ExtraBytes,
    Text,
    Items,
    /// Entries of one integer-keyed map.
    Fields,
}

/// The frame is not CBOR this decoder accepts. Offsets are byte offsets
/// into the frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    #[error("empty frame")]
    Empty,
    #[error("truncated at byte {offset}")]
    Truncated { offset: usize },
    #[error("{count} bytes after the end of the frame's item (at byte {offset})")]
    TrailingBytes { offset: usize, count: usize },
    #[error("nested deeper than {max} levels (at byte {offset})")]
    TooDeep { offset: usize, max: usize },
    #[error("indefinite-length item at byte {offset}; only definite lengths are allowed")]
    Indefinite { offset: usize },
    #[error("tag at byte {offset}; tags are not used by this protocol")]
    Tag { offset: usize },
    #[error("unsupported {what} at byte {offset}")]
    Unsupported { offset: usize, what: &'static str },
    #[error(
        "item at byte {offset} declares {declared} entries/bytes, but only {remaining} bytes remain"
    )]
    DeclaredLength {
        offset: usize,
        declared: u64,
        remaining: usize,
    },
    #[error("{count} items; the limit is {max}")]
    TooManyItems { count: usize, max: usize },
    #[error("map at byte {offset} declares {count} entries; the limit is {max}")]
    MapTooLarge {
        offset: usize,
        count: u64,
        max: usize,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Where in the message a field error sits, for choosing the subcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Area {
    #[default]
    Other,
    Prefix,
    AsPath,
    Attrs,
    Proof,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldErrorKind {
    #[error("missing")]
    Missing,
    #[error("expected {expected}")]
    WrongType { expected: &'static str },
    #[error("out of range (expected {expected})")]
    OutOfRange { expected: &'static str },
    #[error("{count} entries; the limit is {max}")]
    TooMany {
        bound: Bound,
        count: usize,
        max: usize,
    },
    #[error("{len} bytes long; the limit is {max}")]
    TooLong {
        bound: Bound,
        len: usize,
        max: usize,
    },
    #[error("key {key} appears twice")]
    DuplicateKey { key: u64 },
    #[error("map key is not a small unsigned integer")]
    NonIntegerKey,
    #[error("unknown key {key}, which this version must understand (keys below 32)")]
    UnknownRequiredKey { key: u64 },
    #[error("index {index} is out of range (table has {len} entries)")]
    BadIndex { index: u64, len: usize },
    #[error("bad prefix: {0}")]
    Prefix(PrefixError),
    #[error("bad community: {0}")]
    Community(CommunityError),
    #[error("bad text: {reason}")]
    BadText { reason: &'static str },
    #[error("unknown NOTIFICATION error code {code}")]
    UnknownErrorCode { code: u64 },
    #[error("not representable as JSON: {reason}")]
    Json { reason: &'static str },
}

/// A body field that does not match the schema, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", if at.is_empty() { String::new() } else { format!("{at}: ") })]
pub struct FieldError {
    /// Dotted path to the field (`announce[3].attrs.as_path[2]`).
    pub at: String,
    pub area: Area,
    pub kind: FieldErrorKind,
}

impl FieldError {
    pub fn new(kind: FieldErrorKind) -> Self {
        FieldError {
            at: String::new(),
            area: Area::Other,
            kind,
        }
    }

    /// Prefixes the path with an enclosing field name.
    pub fn within(mut self, outer: &str) -> Self {
        if self.at.is_empty() {
            self.at = outer.to_string();
        } else if self.at.starts_with('[') {
            self.at = format!("{outer}{}", self.at);
        } else {
            self.at = format!("{outer}.{}", self.at);
        }
        self
    }

    /// Prefixes the path with an index (`[3]`).
    pub fn at_index(mut self, i: usize) -> Self {
        if self.at.is_empty() || self.at.starts_with('[') {
            self.at = format!("[{i}]{}", self.at);
        } else {
            self.at = format!("[{i}].{}", self.at);
        }
        self
    }

    /// Marks the area unless an inner one was already set.
    pub fn in_area(mut self, area: Area) -> Self {
        if self.area == Area::Other {
            self.area = area;
        }
        self
    }
}

impl From<FieldErrorKind> for FieldError {
    fn from(kind: FieldErrorKind) -> Self {
        FieldError::new(kind)
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame is {len} bytes; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("malformed CBOR: {0}")]
    Cbor(#[from] CborError),
    #[error("frame envelope: {0}")]
    Header(FieldError),
    #[error(
        "frame version {got} is not supported; this node speaks {}",
        super::FRAME_VERSION
    )]
    UnsupportedVersion { got: u64 },
    #[error("unknown message type {ty}")]
    UnknownType { ty: u64 },
    #[error("{ty}: {err}")]
    Body { ty: MessageType, err: FieldError },
}

impl DecodeError {
    /// The (code, subcode) this error is answered with.
    pub fn code(&self) -> (ErrorCode, u8) {
        use FieldErrorKind as K;
        match self {
            DecodeError::TooLarge { .. } => (ErrorCode::MessageHeader, subcode::BAD_MESSAGE_LENGTH),
            DecodeError::Cbor(_) | DecodeError::Header(_) => {
                (ErrorCode::MessageHeader, subcode::MALFORMED_CBOR)
            }
            DecodeError::UnsupportedVersion { .. } => {
                (ErrorCode::MessageHeader, subcode::UNSUPPORTED_FRAME_VERSION)
            }
            DecodeError::UnknownType { .. } => {
                (ErrorCode::MessageHeader, subcode::BAD_MESSAGE_TYPE)
            }
            DecodeError::Body { ty, err } => match ty {
                MessageType::Open => match err.area {
                    Area::Proof => (ErrorCode::Open, subcode::BAD_CERTIFICATE),
                    _ => (ErrorCode::Open, subcode::UNSPECIFIC),
                },
                MessageType::Update | MessageType::Withdraw => {
                    let sub = match (&err.kind, err.area) {
                        (
                            K::TooMany {
                                bound: Bound::Routes | Bound::Withdraws,
                                ..
                            },
                            _,
                        ) => subcode::TOO_MANY_ROUTES,
                        (K::Prefix(_), _) | (_, Area::Prefix) => subcode::INVALID_NETWORK_FIELD,
                        (_, Area::AsPath) => subcode::MALFORMED_AS_PATH,
                        (K::UnknownRequiredKey { .. }, Area::Attrs) => {
                            subcode::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE
                        }
                        (_, Area::Proof) => subcode::MALFORMED_PROOF,
                        _ => subcode::MALFORMED_ATTRIBUTE_LIST,
                    };
                    (ErrorCode::Update, sub)
                }
                MessageType::RouteRefresh => {
                    (ErrorCode::RouteRefresh, subcode::INVALID_ROUTE_REFRESH)
                }
                MessageType::Keepalive
                | MessageType::Notification
                | MessageType::Call
                | MessageType::CallResult
                | MessageType::Cancel
                | MessageType::Progress
                | MessageType::CallAnswer
                | MessageType::Notify
                | MessageType::Ask
                | MessageType::Reply => (ErrorCode::MessageHeader, subcode::MALFORMED_BODY),
            },
        }
    }
}

impl From<&DecodeError> for Notification {
    fn from(e: &DecodeError) -> Self {
        let (code, sub) = e.code();
        Notification::new(code, sub, e.to_string())
    }
}

/// Why a message could not be encoded. The encoder enforces the same
/// [`super::Limits`] as the decoder, so this is a bug or a message that must
/// be split (see [`super::encode_update_frames`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{what}: {count} entries; the limit is {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{what}: {len} bytes; the limit is {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("encoded frame is {len} bytes; the limit is {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("extra attribute {name:?}: {reason}")]
    BadExtra { name: String, reason: &'static str },
    #[error("JSON value not encodable: {reason}")]
    Json { reason: &'static str },
    #[error("CBOR writer: {0}")]
    Writer(String),
}
