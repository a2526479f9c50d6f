//! CBOR plumbing: a structural pre-scan that bounds what ciborium will
//! allocate, and small typed accessors over [`ciborium::Value`] that turn
//! schema mismatches into [`FieldError`]s.
//!
//! Decoding is two steps. [`scan`] walks the item heads of the raw frame
//! iteratively (no recursion, no allocation beyond a depth stack) and
//! refuses: truncation, trailing bytes, nesting deeper than the limit,
//! indefinite lengths, tags, simple values other than false/true/null, and
//! any array, map or string that declares more entries or bytes than remain.
//! Only then does ciborium (via serde) build a `Value` tree, whose size is
//! now bounded by the item count. A 5-byte input that claims a 4 GiB array
//! is refused by the scan before ciborium sees it.

use ciborium::Value;

use super::error::{Bound, CborError, DecodeError, EncodeError, FieldError, FieldErrorKind};
use super::limits::Limits;

/// Keys at or above this in an integer-keyed map are optional extensions
/// that a decoder which does not know them may ignore; keys below it must be
/// understood.
pub const FIRST_OPTIONAL_KEY: u64 = 32;

struct Head {
    major: u8,
    ai: u8,
    arg: u64,
    len: usize,
}

fn head(bytes: &[u8], pos: usize) -> Result<Head, CborError> {
    let ib = *bytes.get(pos).ok_or(CborError::Truncated { offset: pos })?;
    let major = ib >> 5;
    let ai = ib & 0x1f;
    let extra = match ai {
        0..=23 => 0,
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        28..=30 => {
            return Err(CborError::Unsupported {
                offset: pos,
                what: "reserved additional information",
            });
        }
        _ => {
            return Ok(Head {
                major,
                ai,
                arg: 0,
                len: 1,
            });
        }
    };
    let arg = if extra == 0 {
        u64::from(ai)
    } else {
        let b = bytes
            .get(pos + 1..pos + 1 + extra)
            .ok_or(CborError::Truncated { offset: pos })?;
        b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
    };
    Ok(Head {
        major,
        ai,
        arg,
        len: 1 + extra,
    })
}

/// Checks the frame's structure against `limits` without building it.
pub fn scan(bytes: &[u8], limits: &Limits) -> Result<(), CborError> {
    if bytes.is_empty() {
        return Err(CborError::Empty);
    }
    let mut pos = 0usize;
    let mut items = 0usize;
    // Entries still to read in each open container; the bottom entry is the
    // frame's single top-level item.
    let mut pending: Vec<u64> = Vec::with_capacity(16);
    pending.push(1);
    loop {
        while pending.last() == Some(&0) {
            pending.pop();
        }
        let Some(top) = pending.last_mut() else { break };
        *top -= 1;
        items += 1;
        if items > limits.max_items {
            return Err(CborError::TooManyItems {
                count: items,
                max: limits.max_items,
            });
        }
        let at = pos;
        let h = head(bytes, pos)?;
        pos += h.len;
        let remaining = bytes.len() - pos;
        match h.major {
            0 | 1 => {
                if h.ai == 31 {
                    return Err(CborError::Unsupported {
                        offset: at,
                        what: "indefinite integer",
                    });
                }
            }
            2 | 3 => {
                if h.ai == 31 {
                    return Err(CborError::Indefinite { offset: at });
                }
                if h.arg > remaining as u64 {
                    return Err(CborError::DeclaredLength {
                        offset: at,
                        declared: h.arg,
                        remaining,
                    });
                }
                pos += h.arg as usize;
            }
            4 | 5 => {
                if h.ai == 31 {
                    return Err(CborError::Indefinite { offset: at });
                }
                if h.major == 5 && h.arg > limits.max_map_entries as u64 {
                    return Err(CborError::MapTooLarge {
                        offset: at,
                        count: h.arg,
                        max: limits.max_map_entries,
                    });
                }
                let entries = if h.major == 5 {
                    h.arg.saturating_mul(2)
                } else {
                    h.arg
                };
                // Every entry takes at least one byte.
                if entries > remaining as u64 {
                    return Err(CborError::DeclaredLength {
                        offset: at,
                        declared: h.arg,
                        remaining,
                    });
                }
                // `pending` holds the enclosing containers plus the
                // top-level slot, so its length is this item's depth.
                if pending.len() > limits.max_depth {
                    return Err(CborError::TooDeep {
                        offset: at,
                        max: limits.max_depth,
                    });
                }
                if entries > 0 {
                    pending.push(entries);
                }
            }
            6 => return Err(CborError::Tag { offset: at }),
            _ => match h.ai {
                20..=22 => {}
                25..=27 => {
                    let n = match h.ai {
                        25 => 2,
                        26 => 4,
                        _ => 8,
                    };
                    // `head` already consumed the float's bytes as its
                    // argument; nothing more to skip.
                    debug_assert_eq!(h.len, 1 + n);
                }
                23 => {
                    return Err(CborError::Unsupported {
                        offset: at,
                        what: "undefined",
                    });
                }
                31 => {
                    return Err(CborError::Unsupported {
                        offset: at,
                        what: "break outside an indefinite item",
                    });
                }
                _ => {
                    return Err(CborError::Unsupported {
                        offset: at,
                        what: "simple value",
                    });
                }
            },
        }
        if pos > bytes.len() {
            return Err(CborError::Truncated { offset: at });
        }
    }
    if pos != bytes.len() {
        return Err(CborError::TrailingBytes {
            offset: pos,
            count: bytes.len() - pos,
        });
    }
    Ok(())
}

/// Scans, then parses the frame into a `Value` tree.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    scan(bytes, limits)?;
    // The scan bounded the depth; ciborium's own limit is a second fence,
    // one above ours so it never fires first on valid input.
    ciborium::de::from_reader_with_recursion_limit::<Value, _>(bytes, limits.max_depth + 1)
        .map_err(|e| DecodeError::Cbor(CborError::Invalid(e.to_string())))
}

/// Serializes a `Value` tree.
pub fn to_bytes(v: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    ciborium::into_writer(v, &mut out).map_err(|e| EncodeError::Writer(e.to_string()))?;
    Ok(out)
}

fn wrong(expected: &'static str) -> FieldError {
    FieldErrorKind::WrongType { expected }.into()
}

/// Most entries in one integer-keyed (schema) map: its known keys plus
/// extensions. Keeps every lookup in such a map cheap.
pub const MAX_FIELDS: usize = 256;

/// An integer-keyed map, as read.
pub struct Fields<'a> {
    entries: Vec<(u64, &'a Value)>,
}

impl<'a> Fields<'a> {
    /// Reads a map whose keys are unsigned integers, refusing duplicates
    /// and maps of more than [`MAX_FIELDS`] entries. The duplicate check is
    /// O(n log n), so a frame made of many such maps costs time linear in
    /// its size (times the log of the cap).
    pub fn parse(v: &'a Value) -> Result<Self, FieldError> {
        let Value::Map(m) = v else {
            return Err(wrong("a map"));
        };
        if m.len() > MAX_FIELDS {
            return Err(FieldErrorKind::TooMany {
                bound: Bound::Fields,
                count: m.len(),
                max: MAX_FIELDS,
            }
            .into());
        }
        let mut entries = Vec::with_capacity(m.len());
        for (k, val) in m {
            let key = match k {
                Value::Integer(i) => u64::try_from(*i)
                    .map_err(|_| FieldError::from(FieldErrorKind::NonIntegerKey))?,
                _ => return Err(FieldErrorKind::NonIntegerKey.into()),
            };
            entries.push((key, val));
        }
        let mut keys: Vec<u64> = entries.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(FieldErrorKind::DuplicateKey { key: w[0] }.into());
        }
        Ok(Fields { entries })
    }

    pub fn get(&self, key: u64) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// A present, non-null field.
    pub fn opt(&self, key: u64) -> Option<&'a Value> {
        self.get(key).filter(|v| !v.is_null())
    }

    pub fn req(&self, key: u64, name: &str) -> Result<&'a Value, FieldError> {
        self.opt(key)
            .ok_or_else(|| FieldError::from(FieldErrorKind::Missing).within(name))
    }

    /// Refuses keys below [`FIRST_OPTIONAL_KEY`] that are not in `known`.
    pub fn check_known(&self, known: &[u64]) -> Result<(), FieldError> {
        match self
            .entries
            .iter()
            .find(|(k, _)| *k < FIRST_OPTIONAL_KEY && !known.contains(k))
        {
            Some((key, _)) => Err(FieldErrorKind::UnknownRequiredKey { key: *key }.into()),
            None => Ok(()),
        }
    }

    /// Entries with optional (extension) keys, in the order received.
    pub fn extensions(&self) -> impl Iterator<Item = (u64, &'a Value)> + '_ {
        self.entries
            .iter()
            .filter(|(k, _)| *k >= FIRST_OPTIONAL_KEY)
            .map(|(k, v)| (*k, *v))
    }

    /// Reads field `key` named `name` with `f`, or `default` when absent.
    pub fn read_or<T>(
        &self,
        key: u64,
        name: &str,
        default: T,
        f: impl FnOnce(&'a Value) -> Result<T, FieldError>,
    ) -> Result<T, FieldError> {
        match self.opt(key) {
            Some(v) => f(v).map_err(|e| e.within(name)),
            None => Ok(default),
        }
    }

    /// Reads required field `key` named `name` with `f`.
    pub fn read<T>(
        &self,
        key: u64,
        name: &str,
        f: impl FnOnce(&'a Value) -> Result<T, FieldError>,
    ) -> Result<T, FieldError> {
        f(self.req(key, name)?).map_err(|e| e.within(name))
    }
}

pub fn u64_of(v: &Value) -> Result<u64, FieldError> {
    match v {
        Value::Integer(i) => u64::try_from(*i).map_err(|_| {
            FieldErrorKind::OutOfRange {
                expected: "an unsigned 64-bit integer",
            }
            .into()
        }),
        _ => Err(wrong("an unsigned integer")),
    }
}

/// An unsigned integer that must fit `T`.
fn narrow<T: TryFrom<u64>>(v: &Value, expected: &'static str) -> Result<T, FieldError> {
    T::try_from(u64_of(v)?).map_err(|_| FieldErrorKind::OutOfRange { expected }.into())
}

pub fn u32_of(v: &Value) -> Result<u32, FieldError> {
    narrow(v, "an unsigned 32-bit integer")
}

pub fn u16_of(v: &Value) -> Result<u16, FieldError> {
    narrow(v, "an unsigned 16-bit integer")
}

pub fn u8_of(v: &Value) -> Result<u8, FieldError> {
    narrow(v, "an unsigned 8-bit integer")
}

pub fn i64_of(v: &Value) -> Result<i64, FieldError> {
    match v {
        Value::Integer(i) => i64::try_from(*i).map_err(|_| {
            FieldErrorKind::OutOfRange {
                expected: "a signed 64-bit integer",
            }
            .into()
        }),
        _ => Err(wrong("an integer")),
    }
}

pub fn bool_of(v: &Value) -> Result<bool, FieldError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(wrong("a boolean")),
    }
}

pub fn f64_of(v: &Value) -> Result<f64, FieldError> {
    match v {
        Value::Float(f) if f.is_finite() => Ok(*f),
        Value::Float(_) => Err(FieldErrorKind::OutOfRange {
            expected: "a finite number",
        }
        .into()),
        // Integers are numbers too (JSON does not distinguish).
        Value::Integer(i) => Ok(i128::from(*i) as f64),
        _ => Err(wrong("a number")),
    }
}

/// Text of at most `max` bytes, without control characters.
pub fn text_of(v: &Value, max: usize) -> Result<&str, FieldError> {
    let Value::Text(s) = v else {
        return Err(wrong("text"));
    };
    if s.len() > max {
        return Err(FieldErrorKind::TooLong {
            bound: Bound::Text,
            len: s.len(),
            max,
        }
        .into());
    }
    if s.chars().any(char::is_control) {
        return Err(FieldErrorKind::BadText {
            reason: "control characters are not allowed",
        }
        .into());
    }
    Ok(s)
}

/// Free text (may contain newlines and tabs) of at most `max` bytes.
pub fn free_text_of(v: &Value, max: usize) -> Result<&str, FieldError> {
    let Value::Text(s) = v else {
        return Err(wrong("text"));
    };
    if s.len() > max {
        return Err(FieldErrorKind::TooLong {
            bound: Bound::Text,
            len: s.len(),
            max,
        }
        .into());
    }
    Ok(s)
}

pub fn bytes_of(v: &Value, bound: Bound, max: usize) -> Result<&[u8], FieldError> {
    let Value::Bytes(b) = v else {
        return Err(wrong("a byte string"));
    };
    if b.len() > max {
        return Err(FieldErrorKind::TooLong {
            bound,
            len: b.len(),
            max,
        }
        .into());
    }
    Ok(b)
}

pub fn fixed_bytes<const N: usize>(v: &Value) -> Result<[u8; N], FieldError> {
    let Value::Bytes(b) = v else {
        return Err(wrong("a byte string"));
    };
    <[u8; N]>::try_from(b.as_slice()).map_err(|_| {
        FieldErrorKind::OutOfRange {
            expected: match N {
                16 => "16 bytes",
                32 => "32 bytes",
                64 => "64 bytes",
                _ => "a fixed-length byte string",
            },
        }
        .into()
    })
}

/// An array of at most `max` entries.
pub fn array_of(v: &Value, bound: Bound, max: usize) -> Result<&[Value], FieldError> {
    let Value::Array(a) = v else {
        return Err(wrong("an array"));
    };
    if a.len() > max {
        return Err(FieldErrorKind::TooMany {
            bound,
            count: a.len(),
            max,
        }
        .into());
    }
    Ok(a)
}

/// Reads each entry of a bounded array with `f`, tagging errors with the
/// entry's index.
pub fn list_of<'a, T>(
    v: &'a Value,
    bound: Bound,
    max: usize,
    mut f: impl FnMut(&'a Value) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    let items = array_of(v, bound, max)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(f(item).map_err(|e| e.at_index(i))?);
    }
    Ok(out)
}

/// Builds an integer-keyed map; callers add keys in ascending order so the
/// encoding is deterministic.
#[derive(Default)]
pub struct MapBuilder(Vec<(Value, Value)>);

impl MapBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, key: u64, v: Value) -> &mut Self {
        debug_assert!(
            self.0
                .last()
                .is_none_or(|(k, _)| *k < Value::Integer(key.into())),
            "map keys must be added in ascending order"
        );
        self.0.push((Value::Integer(key.into()), v));
        self
    }

    pub fn put_if(&mut self, cond: bool, key: u64, v: impl FnOnce() -> Value) -> &mut Self {
        if cond {
            self.put(key, v());
        }
        self
    }

    pub fn build(self) -> Value {
        Value::Map(self.0)
    }
}

pub fn uint(n: impl Into<u64>) -> Value {
    Value::Integer(n.into().into())
}

pub fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l() -> Limits {
        Limits::default()
    }

    #[test]
    fn scan_accepts_what_ciborium_writes() {
        let v = Value::Map(vec![
            (uint(0u64), uint(1u64)),
            (
                uint(1u64),
                Value::Array(vec![
                    text("x"),
                    bytes(&[1, 2]),
                    Value::Null,
                    Value::Float(1.5),
                ]),
            ),
            (uint(2u64), Value::Bool(true)),
            (uint(3u64), Value::Integer((-5i64).into())),
        ]);
        let b = to_bytes(&v).unwrap();
        scan(&b, &l()).unwrap();
        assert_eq!(parse(&b, &l()).unwrap(), v);
    }

    #[test]
    fn scan_refuses_huge_declared_lengths_without_allocating() {
        // Array of 2^32-1 entries, map of 2^63 entries, 4 GiB byte string.
        for b in [
            &[0x9a, 0xff, 0xff, 0xff, 0xff][..],
            &[0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0][..],
            &[0x5a, 0xff, 0xff, 0xff, 0xff, 0x00][..],
            &[0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert!(
                matches!(
                    scan(b, &l()),
                    Err(CborError::DeclaredLength { .. } | CborError::MapTooLarge { .. })
                ),
                "{b:02x?}: {:?}",
                scan(b, &l())
            );
        }
    }

    #[test]
    fn scan_refuses_deep_nesting_before_recursing() {
        let deep = vec![0x81u8; 100_000];
        assert!(matches!(
            scan(&deep, &l()),
            Err(CborError::TooDeep { max: 64, .. })
        ));
        // Exactly at the limit is fine: 64 nested arrays around a 0.
        let mut ok = vec![0x81u8; 63];
        ok.push(0x80);
        scan(&ok, &l()).unwrap();
        parse(&ok, &l()).unwrap();
        let mut over = vec![0x81u8; 64];
        over.push(0x80);
        assert!(matches!(scan(&over, &l()), Err(CborError::TooDeep { .. })));
    }

    #[test]
    fn scan_refuses_truncation_trailing_bytes_and_odd_items() {
        type Case<'a> = (&'a [u8], fn(&CborError) -> bool);
        let cases: &[Case<'_>] = &[
            (&[], |e| matches!(e, CborError::Empty)),
            (&[0x82, 0x01], |e| {
                matches!(e, CborError::DeclaredLength { .. })
            }),
            (&[0x82, 0x01, 0x19, 0x01], |e| {
                matches!(e, CborError::Truncated { .. })
            }),
            (&[0x19, 0x01], |e| matches!(e, CborError::Truncated { .. })),
            (&[0x01, 0x02], |e| {
                matches!(e, CborError::TrailingBytes { count: 1, .. })
            }),
            (&[0x9f, 0x01, 0xff], |e| {
                matches!(e, CborError::Indefinite { .. })
            }),
            (&[0x5f, 0x41, 0x00, 0xff], |e| {
                matches!(e, CborError::Indefinite { .. })
            }),
            (&[0xc1, 0x01], |e| matches!(e, CborError::Tag { .. })),
            (&[0xf7], |e| matches!(e, CborError::Unsupported { .. })),
            (&[0xf0], |e| matches!(e, CborError::Unsupported { .. })),
            (&[0xff], |e| matches!(e, CborError::Unsupported { .. })),
            (&[0x1c], |e| matches!(e, CborError::Unsupported { .. })),
            (&[0x1f], |e| matches!(e, CborError::Unsupported { .. })),
        ];
        for (b, ok) in cases {
            let r = scan(b, &l());
            assert!(r.as_ref().is_err_and(ok), "{b:02x?}: {r:?}");
        }
    }

    #[test]
    fn scan_counts_items() {
        let many = {
            let mut v = vec![0x9a, 0x00, 0x01, 0x00, 0x00]; // array of 65536
            v.extend(std::iter::repeat_n(0x00, 65_536));
            v
        };
        assert!(scan(&many, &l()).is_ok());
        assert!(matches!(
            scan(&many, &l().with_max_items(1000)),
            Err(CborError::TooManyItems { .. })
        ));
    }

    #[test]
    fn invalid_utf8_is_a_typed_error_after_the_scan() {
        let b = [0x62, 0xff, 0xfe];
        scan(&b, &l()).unwrap();
        assert!(matches!(
            parse(&b, &l()),
            Err(DecodeError::Cbor(CborError::Invalid(_)))
        ));
    }

    #[test]
    fn fields_refuse_duplicates_and_unknown_required_keys() {
        let dup = Value::Map(vec![(uint(1u64), uint(1u64)), (uint(1u64), uint(2u64))]);
        assert!(matches!(
            Fields::parse(&dup).map(|_| ()),
            Err(FieldError {
                kind: FieldErrorKind::DuplicateKey { key: 1 },
                ..
            })
        ));
        let textkey = Value::Map(vec![(text("a"), uint(1u64))]);
        assert!(Fields::parse(&textkey).is_err());
        let m = Value::Map(vec![
            (uint(0u64), uint(1u64)),
            (uint(5u64), uint(1u64)),
            (uint(40u64), uint(1u64)),
        ]);
        let f = Fields::parse(&m).unwrap();
        assert!(f.check_known(&[0, 5]).is_ok());
        assert!(matches!(
            f.check_known(&[0]),
            Err(FieldError {
                kind: FieldErrorKind::UnknownRequiredKey { key: 5 },
                ..
            })
        ));
        assert_eq!(f.extensions().map(|(k, _)| k).collect::<Vec<_>>(), vec![40]);
    }
}
