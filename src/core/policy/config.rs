//! The policy file as written: plain serde structs that mirror the TOML
//! (kebab-case keys, unknown keys rejected). Nothing here is validated beyond
//! TOML types; [`super::compile`] turns it into the checked, evaluable form.
//!
//! Values that can be wrong in ways TOML cannot see (a prefix, a community, a
//! regex, a set name) are kept as [`Spanned`] so the compiler can point at
//! the exact line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct FileCfg {
    #[serde(default)]
    pub sets: SetsCfg,
    #[serde(default)]
    pub policy: Vec<PolicyCfg>,
    #[serde(default)]
    pub apply: Vec<ApplyCfg>,
}

/// A named set: a list of literal values.
pub(crate) type SetItems<T> = Vec<Spanned<T>>;

/// `[sets.*]`: named lists that conditions and actions refer to by name.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct SetsCfg {
    #[serde(default)]
    pub prefixes: BTreeMap<String, SetItems<String>>,
    #[serde(default)]
    pub asns: BTreeMap<String, SetItems<AsnCfg>>,
    #[serde(default)]
    pub communities: BTreeMap<String, SetItems<String>>,
    #[serde(default)]
    pub capabilities: BTreeMap<String, SetItems<String>>,
}

/// `[[policy]]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct PolicyCfg {
    pub name: Spanned<String>,
    #[serde(default)]
    pub statement: Vec<StatementCfg>,
}

/// `[[policy.statement]]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct StatementCfg {
    pub name: Spanned<String>,
    /// Absent or empty: the statement always matches.
    #[serde(default, rename = "match")]
    pub matches: MatchCfg,
    pub then: ThenCfg,
}

/// The conditions of a statement; all present ones must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct MatchCfg {
    pub prefix: Option<PrefixMatchCfg>,
    pub as_path: Option<AsPathMatchCfg>,
    pub capabilities: Option<AnyAllCfg>,
    pub communities: Option<AnyAllCfg>,
    pub neighbor: Option<NeighborMatchCfg>,
    pub med: Option<RangeCfg>,
    pub local_pref: Option<RangeCfg>,
    pub agent: Option<AgentMatchCfg>,
    /// Holds when the conditions inside do not all hold.
    pub not: Option<Spanned<Box<MatchCfg>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct PrefixMatchCfg {
    pub exact: Option<Spanned<ListOrSet<String>>>,
    pub covered_by: Option<Spanned<ListOrSet<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct AsPathMatchCfg {
    pub from: Option<Spanned<ListOrSet<AsnCfg>>>,
    pub not_from: Option<Spanned<ListOrSet<AsnCfg>>>,
    pub contains_any: Option<Spanned<ListOrSet<AsnCfg>>>,
    pub contains_all: Option<Spanned<ListOrSet<AsnCfg>>>,
    pub min_length: Option<Spanned<u32>>,
    pub max_length: Option<Spanned<u32>>,
    pub regex: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct AnyAllCfg {
    pub any: Option<Spanned<ListOrSet<String>>>,
    pub all: Option<Spanned<ListOrSet<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct NeighborMatchCfg {
    pub asn: Option<Spanned<ListOrSet<AsnCfg>>>,
    pub node: Option<Spanned<Vec<Spanned<String>>>>,
    pub kind: Option<PeerKindCfg>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PeerKindCfg {
    Internal,
    External,
}

/// An inclusive numeric range; either end may be left open.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct RangeCfg {
    pub min: Option<Spanned<u32>>,
    pub max: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct AgentMatchCfg {
    pub id: Option<Spanned<Vec<Spanned<String>>>>,
    pub glob: Option<Spanned<Vec<Spanned<String>>>>,
}

/// What a matching statement does.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ThenCfg {
    pub verdict: VerdictCfg,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub communities: Option<CommunityActionsCfg>,
    pub prepend: Option<Spanned<u32>>,
    pub extra: Option<BTreeMap<String, Spanned<toml::Value>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum VerdictCfg {
    Accept,
    Reject,
    Next,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct CommunityActionsCfg {
    pub set: Option<Spanned<ListOrSet<String>>>,
    pub remove: Option<Spanned<ListOrSet<String>>>,
    pub add: Option<Spanned<ListOrSet<String>>>,
}

/// `[[apply]]`: which peers get which chains.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ApplyCfg {
    pub neighbors: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub import: Vec<Spanned<String>>,
    #[serde(default)]
    pub export: Vec<Spanned<String>>,
    pub default_import: Option<DefaultCfg>,
    pub default_export: Option<DefaultCfg>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DefaultCfg {
    Accept,
    Reject,
}

/// An AS number as written: `65001` or `"AS65001"`.
#[derive(Debug, Clone)]
pub(crate) enum AsnCfg {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for AsnCfg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AsnCfg;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AS number such as 65001 or \"AS65001\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsnCfg, E> {
                Ok(AsnCfg::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsnCfg, E> {
                // Larger than any ASN anyway; keep it out of range, not wrapped.
                Ok(AsnCfg::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AsnCfg, E> {
                Ok(AsnCfg::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Either an inline list of values (`["a", "b"]`) or the name of a set
/// (`"my-set"`). A bare string always means a set name: inline values go in
/// a list, even a list of one.
#[derive(Debug)]
pub(crate) enum ListOrSet<T> {
    List(Vec<Spanned<T>>),
    Set(String),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ListOrSet<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ListOrSet<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of values, or the name of a set as a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListOrSet<T>, E> {
                Ok(ListOrSet::Set(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListOrSet<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<T>>()? {
                    out.push(item);
                }
                Ok(ListOrSet::List(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
