//! The value types of node.toml that are more than a number or a string:
//! the ASN and certificate settings, listen addresses that may be `"off"`,
//! and durations.
//!
//! **Durations** are written as a number and a unit: `"250ms"`, `"90s"`,
//! `"2m"`, `"1h"`, `"7d"`. The keys of earlier releases that held bare
//! integers (`hold_time_secs = 90`, `answer-hold-ms = 1000`,
//! `certificate_validity_days = 365`) are still accepted as aliases; their
//! integer is read in the unit the old key named ([`secs`], [`millis`],
//! [`days`]).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::ids::Asn;

/// The ASN setting: derived from the node key, or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsnSetting {
    /// The private-range ASN the node key derives (self-certifying).
    #[default]
    Derived,
    Number(Asn),
}

impl<'de> Deserialize<'de> for AsnSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => u32::try_from(n)
                .map(|n| AsnSetting::Number(Asn(n)))
                .map_err(|_| serde::de::Error::custom(format!("{n} is not a 32-bit AS number"))),
            Raw::Text(s) if s == "derived" => Ok(AsnSetting::Derived),
            Raw::Text(s) => s
                .parse::<Asn>()
                .map(AsnSetting::Number)
                .map_err(|e| serde::de::Error::custom(format!("{e}, or \"derived\""))),
        }
    }
}

impl Serialize for AsnSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AsnSetting::Derived => s.serialize_str("derived"),
            AsnSetting::Number(a) => s.serialize_u32(a.0),
        }
    }
}

/// Where the node's ASN certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CertSource {
    /// Self-certifying: the ASN is the one the key derives.
    #[default]
    Derived,
    /// Signed by the node itself for a chosen ASN; peers accept it only
    /// where a neighbour entry pins this node to that ASN.
    SelfSigned,
    /// A certificate file issued by an authority (`abgp asn issue`).
    File(std::path::PathBuf),
}

impl<'de> Deserialize<'de> for CertSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "derived" => CertSource::Derived,
            "self-signed" => CertSource::SelfSigned,
            "" => {
                return Err(serde::de::Error::custom(
                    "expected \"derived\", \"self-signed\" or a certificate file path",
                ));
            }
            _ => CertSource::File(std::path::PathBuf::from(s)),
        })
    }
}

impl Serialize for CertSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CertSource::Derived => s.serialize_str("derived"),
            CertSource::SelfSigned => s.serialize_str("self-signed"),
            CertSource::File(p) => s.serialize_str(&p.to_string_lossy()),
        }
    }
}

/// Whether this node serves the Kademlia DHT to others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KadMode {
    /// Server on bootstrap nodes, client elsewhere.
    #[default]
    Auto,
    Server,
    Client,
}

/// An HTTP listen address (the admin API, the MCP front); `"off"` turns
/// the listener off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl Listen {
    pub const fn on(port: u16) -> Self {
        Listen(Some(SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port,
        )))
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "off" {
            return Ok(Listen(None));
        }
        s.parse::<SocketAddr>()
            .map(|a| Listen(Some(a)))
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{s:?} is not an address like \"127.0.0.1:4180\" (or \"off\")"
                ))
            })
    }
}

impl Serialize for Listen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(a) => s.collect_str(&a),
            None => s.serialize_str("off"),
        }
    }
}

pub use crate::mcp::config::parse_duration;

/// Writes a duration the way [`parse_duration`] reads it, in the largest
/// unit that divides it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms != 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

fn duration_in<'de, D: Deserializer<'de>>(d: D, unit_ms: u64) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => u64::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(unit_ms))
            .map(Duration::from_millis)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a duration"))),
        Raw::Text(s) => parse_duration(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration like \"250ms\", \"90s\", \"2m\", \"1h\" or \"7d\""
            ))
        }),
    }
}

/// A duration; a bare integer is seconds (the old `_secs` keys).
pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration_in(d, 1000)
}

/// A duration; a bare integer is milliseconds (the old `-ms` keys).
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration_in(d, 1)
}

/// A duration; a bare integer is days (the old `_days` keys).
pub fn days<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration_in(d, 86_400_000)
}

/// An optional duration; a bare integer is seconds.
pub fn opt_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    secs(d).map(Some)
}

/// Serialises a duration as `"90s"`.
pub fn ser<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// Serialises an optional duration as `"90s"` (absent stays absent).
pub fn ser_opt<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser(d, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_with_units() {
        for (text, ms) in [
            ("250ms", 250),
            ("90s", 90_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("7d", 604_800_000),
            ("0s", 0),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in [
            "",
            "90",
            "s",
            "1.5s",
            "-1s",
            "3 weeks",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        for ms in [1, 250, 1000, 90_000, 120_000, 3_600_000, 86_400_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }
}
