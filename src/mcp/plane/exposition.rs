//! The Prometheus text format (0.0.4) written right: `# HELP` and `# TYPE`
//! once per family, escaped help text and label values, counters named
//! `_total`, histograms with cumulative buckets over [`BUCKETS_US`], `+Inf`,
//! `_sum` and `_count` in seconds. Pure text: the call metrics use it, and
//! the admin API's `/metrics` writes the node's other families with it.

use std::fmt::Write as _;

use super::metrics::{BUCKETS_US, Histogram};

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Writes the text format. Families are written whole, one after another.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// A label value as the text format wants it: backslash, double quote and
/// line feed escaped.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Help text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers as integers, `+Inf`, `-Inf` and `NaN` as the
/// format spells them.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

impl Exposition {
    pub fn new() -> Self {
        Exposition::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. A counter's name
    /// ends in `_total`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"), "{name}");
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        self.out.push_str(&value(v));
        self.out.push('\n');
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
        }
        self.out.push('}');
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, v: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], v);
    }

    /// One histogram of the current family: cumulative `_bucket`s over
    /// [`BUCKETS_US`] (in seconds) and `+Inf`, `_sum` (seconds), `_count`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cum = 0u64;
        let bucket = format!("{name}_bucket");
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cum += h.buckets.get(i).copied().unwrap_or(0);
            let le = value(*b as f64 / 1e6);
            self.out.push_str(&bucket);
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cum}");
        }
        self.out.push_str(&bucket);
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count);
        self.sample(&format!("{name}_sum"), labels, h.sum_us as f64 / 1e6);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        let mut e = Exposition::new();
        e.family("t_total", Kind::Counter, "two\nlines \\ here");
        e.sample("t_total", &[("k", "v\"")], 3.0);
        let t = e.finish();
        assert_eq!(
            t,
            "# HELP t_total two\\nlines \\\\ here\n# TYPE t_total counter\nt_total{k=\"v\\\"\"} 3\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_and_end_with_inf_sum_and_count() {
        let mut h = Histogram::default();
        h.observe(100);
        h.observe(300);
        h.observe(20_000_000);
        let mut e = Exposition::new();
        e.family("h_seconds", Kind::Histogram, "h");
        e.histogram("h_seconds", &[("next_hop", "local")], &h);
        let t = e.finish();
        assert!(
            t.contains("h_seconds_bucket{next_hop=\"local\",le=\"0.00025\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("h_seconds_bucket{next_hop=\"local\",le=\"0.0005\"} 2\n"));
        assert!(t.contains("h_seconds_bucket{next_hop=\"local\",le=\"10\"} 2\n"));
        assert!(t.contains("h_seconds_bucket{next_hop=\"local\",le=\"+Inf\"} 3\n"));
        assert!(t.contains("h_seconds_sum{next_hop=\"local\"} 20.0004\n"));
        assert!(t.contains("h_seconds_count{next_hop=\"local\"} 3\n"));
    }

    #[test]
    fn values_are_written_as_the_format_spells_them() {
        assert_eq!(value(3.0), "3");
        assert_eq!(value(0.5), "0.5");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(f64::NAN), "NaN");
    }
}
