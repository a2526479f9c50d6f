//! Load errors for policy files.
//!
//! Every problem found while reading or compiling a policy file becomes one
//! [`Diagnostic`] that names the file, the line and column, and the field
//! path (`policy[0].statement[1].match.as-path.regex`) so an operator can go
//! straight to the mistake. The compiler keeps going after the first problem
//! and reports all it finds, sorted by position, so one edit-reload cycle
//! fixes as much as possible.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use crate::core::community::CommunityError;
use crate::core::prefix::PrefixError;

/// Why a policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    /// The file could not be read.
    #[error("{}: cannot read policy file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid policy. Holds at least one
    /// diagnostic, sorted by position.
    #[error("{}", Diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
}

impl PolicyLoadError {
    /// The individual problems (empty for [`PolicyLoadError::Io`]).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyLoadError::Io { .. } => &[],
            PolicyLoadError::Invalid(d) => d,
        }
    }

    /// One message per problem (`file:line:col: field: reason`), or the
    /// error itself when it has no diagnostics (the file unreadable).
    pub fn messages(&self) -> Vec<String> {
        match self.diagnostics() {
            [] => vec![self.to_string()],
            d => d.iter().map(|d| d.to_string()).collect(),
        }
    }
}

/// Prints one diagnostic per line.
struct Diagnostics<'a>(&'a [Diagnostic]);

impl fmt::Display for Diagnostics<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// One problem at one place in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as given to the loader (`policy.toml`, or `<input>`).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Where in the document's structure, e.g. `apply[0].import[1]`; empty
    /// when the problem is not inside any field (a TOML syntax error).
    pub field: String,
    pub kind: ErrorKind,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.kind)
    }
}

/// The kinds of named sets a policy file can define under `[sets.*]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetKind {
    Prefixes,
    Asns,
    Communities,
    Capabilities,
}

impl SetKind {
    /// The table name under `[sets]`.
    pub fn table(self) -> &'static str {
        match self {
            SetKind::Prefixes => "prefixes",
            SetKind::Asns => "asns",
            SetKind::Communities => "communities",
            SetKind::Capabilities => "capabilities",
        }
    }
}

impl fmt::Display for SetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.table())
    }
}

/// What is wrong. Each variant's text completes the sentence started by
/// `file:line:col: field: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// TOML syntax, an unknown key, a wrong type or a missing field: the
    /// TOML reader's own message.
    #[error("{0}")]
    Toml(String),
    #[error("invalid prefix {text:?}: {source}")]
    Prefix { text: String, source: PrefixError },
    #[error("invalid community: {0}")]
    Community(CommunityError),
    #[error("invalid AS number: {0}")]
    Asn(String),
    #[error("invalid node id {0:?}: expected 64 hex digits")]
    NodeId(String),
    #[error("invalid regex {pattern:?}: {reason}")]
    Regex { pattern: String, reason: String },
    #[error("invalid agent glob {glob:?}: {reason}")]
    Glob { glob: String, reason: String },
    #[error("invalid capability tag {0:?}: expected a non-empty word without spaces")]
    Capability(String),
    #[error(
        "invalid neighbor selector {0:?}: expected \"*\", \"internal\", \"external\", \"as<N>\" or \"node:<64 hex digits>\""
    )]
    Selector(String),
    #[error("invalid name {0:?}: {1}")]
    Name(String, &'static str),
    #[error("unknown {kind} set {name:?}{}", unknown_set_hint(.known))]
    UnknownSet {
        kind: SetKind,
        name: String,
        /// Whether a set of another kind has that name, or the name looks
        /// like an inline value (both frequent slips).
        known: Option<String>,
    },
    #[error("unknown policy {0:?}")]
    UnknownPolicy(String),
    #[error("duplicate {what} {name:?} (first at line {first_line})")]
    Duplicate {
        what: &'static str,
        name: String,
        first_line: usize,
    },
    #[error(
        "policy {policy:?} prepends the AS path (line {prepend_line}), which is allowed on export only: on import our own ASN in the path would make the route look like a loop"
    )]
    PrependOnImport { policy: String, prepend_line: usize },
    #[error("prepend count {0} is out of range 1..={max}", max = super::model::MAX_PREPEND)]
    PrependRange(u32),
    #[error("min ({min}) is greater than max ({max}), so nothing can match")]
    EmptyRange { min: u64, max: u64 },
    #[error("an empty list never matches (or always does); remove the condition instead")]
    EmptyList,
    #[error("an empty `not` never matches; remove it or add conditions")]
    EmptyNot,
    #[error(
        "policy cannot remove the well-known community {0}: the engine enforces it outside policy"
    )]
    RemoveWellKnown(String),
    #[error("extra attribute values must be a boolean, an integer or a string, not {0}")]
    ExtraValue(&'static str),
    #[error("neighbor selector {selector:?} is already used by apply[{first}]")]
    SelectorTaken { selector: String, first: usize },
    #[error("apply selects no neighbors")]
    NoNeighbors,
}

fn unknown_set_hint(known: &Option<String>) -> String {
    match known {
        Some(h) => format!(" ({h})"),
        None => String::new(),
    }
}

/// Turns a byte offset into a 1-based line and character column. Offsets
/// past the end or inside a character clamp to the nearest valid position,
/// so a slightly-off span from a parser never panics.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Builds diagnostics against one source text.
pub(crate) struct Reporter<'a> {
    file: Arc<str>,
    text: &'a str,
    diags: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(file: &str, text: &'a str) -> Self {
        Reporter {
            file: file.into(),
            text,
            diags: Vec::new(),
        }
    }

    pub(crate) fn line_of(&self, span: &Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }

    pub(crate) fn report(
        &mut self,
        span: &Range<usize>,
        field: impl Into<String>,
        kind: ErrorKind,
    ) {
        let (line, column) = line_col(self.text, span.start);
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            line,
            column,
            field: field.into(),
            kind,
        });
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.diags.is_empty()
    }

    pub(crate) fn error_count(&self) -> usize {
        self.diags.len()
    }

    /// The diagnostics, sorted by position (stable, so two problems at one
    /// place keep the order they were found in).
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| (d.line, d.column));
        self.diags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters_from_one() {
        let t = "ab\ncé d\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        // "é" is two bytes; the space after it is the third character.
        assert_eq!(line_col(t, 6), (2, 3));
    }

    #[test]
    fn line_col_clamps_offsets_past_the_end_or_inside_a_character() {
        let t = "é";
        assert_eq!(line_col(t, 1), (1, 1));
        assert_eq!(line_col(t, 99), (1, 2));
    }

    #[test]
    fn diagnostic_prints_file_line_column_field_and_reason() {
        let d = Diagnostic {
            file: "policy.toml".into(),
            line: 12,
            column: 3,
            field: "policy[0].statement[1].match.as-path.regex".into(),
            kind: ErrorKind::Regex {
                pattern: "((".into(),
                reason: "unclosed group".into(),
            },
        };
        assert_eq!(
            d.to_string(),
            "policy.toml:12:3: policy[0].statement[1].match.as-path.regex: invalid regex \"((\": unclosed group"
        );
    }
}
