//! Communities: tags attached to routes that policy matches on and that
//! change how far a route travels.
//!
//! Three kinds, all written as text in policy files and CLI output:
//! - standard `asn:value` (two 16-bit halves, RFC 1997), including the
//!   well-known `no-export` (65535:65281) and `no-advertise` (65535:65282);
//! - large `asn:x:y` (three 32-bit parts, RFC 8092);
//! - named, such as `confidential` or `internal`: agent-bgp's own addition,
//!   because agent networks tag routes with words more often than numbers.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Community {
    /// RFC 1997: high 16 bits an ASN, low 16 bits a value.
    Standard(u32),
    /// RFC 8092: global administrator, two local data parts.
    Large(u32, u32, u32),
    /// A lower-case word: letters, digits, `-`, `_`, `.`; at most 64 bytes.
    Named(Arc<str>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    #[error("community is empty")]
    Empty,
    #[error("community {0:?}: numbers out of range (standard is u16:u16, large is u32:u32:u32)")]
    OutOfRange(String),
    #[error(
        "community {0:?} is not asn:value, asn:x:y, a well-known name, or a word of [a-z0-9._-] up to 64 bytes"
    )]
    Malformed(String),
}

impl Community {
    pub const NO_EXPORT: Community = Community::Standard(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community::Standard(0xFFFF_FF02);

    pub fn standard(asn: u16, value: u16) -> Self {
        Community::Standard((u32::from(asn) << 16) | u32::from(value))
    }

    pub fn named(name: &str) -> Result<Self, CommunityError> {
        name.parse()
    }

    pub fn is_well_known(&self) -> bool {
        matches!(self, Community::Standard(v) if v >> 16 == 0xFFFF)
    }
}

impl FromStr for Community {
    type Err = CommunityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(CommunityError::Empty);
        }
        match s {
            "no-export" | "NO_EXPORT" => return Ok(Community::NO_EXPORT),
            "no-advertise" | "NO_ADVERTISE" => return Ok(Community::NO_ADVERTISE),
            _ => {}
        }
        if s.contains(':') {
            let parts: Vec<&str> = s.split(':').collect();
            let nums: Result<Vec<u64>, _> = parts.iter().map(|p| p.parse::<u64>()).collect();
            let nums = nums.map_err(|_| CommunityError::Malformed(s.into()))?;
            return match nums.as_slice() {
                [a, v] => {
                    let a = u16::try_from(*a).map_err(|_| CommunityError::OutOfRange(s.into()))?;
                    let v = u16::try_from(*v).map_err(|_| CommunityError::OutOfRange(s.into()))?;
                    Ok(Community::standard(a, v))
                }
                [a, x, y] => {
                    let f =
                        |n: u64| u32::try_from(n).map_err(|_| CommunityError::OutOfRange(s.into()));
                    Ok(Community::Large(f(*a)?, f(*x)?, f(*y)?))
                }
                _ => Err(CommunityError::Malformed(s.into())),
            };
        }
        let ok = s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !ok {
            return Err(CommunityError::Malformed(s.into()));
        }
        Ok(Community::Named(s.into()))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            c if *c == Community::NO_EXPORT => f.write_str("no-export"),
            c if *c == Community::NO_ADVERTISE => f.write_str("no-advertise"),
            Community::Standard(v) => write!(f, "{}:{}", v >> 16, v & 0xFFFF),
            Community::Large(a, x, y) => write!(f, "{a}:{x}:{y}"),
            Community::Named(n) => f.write_str(n),
        }
    }
}

impl fmt::Debug for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Community({self})")
    }
}

impl Serialize for Community {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Community {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn well_known_names_parse_and_print() {
        assert_eq!("no-export".parse(), Ok(Community::NO_EXPORT));
        assert_eq!("65535:65281".parse(), Ok(Community::NO_EXPORT));
        assert_eq!(Community::NO_ADVERTISE.to_string(), "no-advertise");
        assert!(Community::NO_EXPORT.is_well_known());
    }

    #[test]
    fn bad_communities_are_rejected_with_reason() {
        assert_eq!("".parse::<Community>(), Err(CommunityError::Empty));
        assert!(matches!(
            "70000:1".parse::<Community>(),
            Err(CommunityError::OutOfRange(_))
        ));
        assert!(matches!(
            "1:2:3:4".parse::<Community>(),
            Err(CommunityError::Malformed(_))
        ));
        assert!(matches!(
            "Has Space".parse::<Community>(),
            Err(CommunityError::Malformed(_))
        ));
        assert!(matches!(
            "a:b".parse::<Community>(),
            Err(CommunityError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(kind in 0u8..3, a in any::<u32>(), b in any::<u32>(), c in any::<u32>(), w in "[a-z][a-z0-9._-]{0,20}") {
            let comm = match kind {
                0 => Community::Standard(a),
                1 => Community::Large(a, b, c),
                _ => Community::Named(w.as_str().into()),
            };
            prop_assert_eq!(comm.to_string().parse::<Community>(), Ok(comm));
        }
    }
}
