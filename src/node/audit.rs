//! The audit log (`[audit]` in node.toml): one JSON line per call that
//! finished at this node, written by a thread of its own. It owns the file:
//! created 0600 (it names callers), appended to, rotated past
//! `max_file_kb` (`audit.jsonl` -> `audit.jsonl.1` ... `.keep_files`, the
//! oldest deleted).
//!
//! The node's task only hands each finished call to a bounded queue
//! ([`AUDIT_QUEUE`] calls); when the queue is full the call is not logged,
//! never waited for: the drops are counted and the next line written says
//! how many (`{"time":..,"dropped":N}`), and a warning is logged. Each
//! batch of lines is written with one `write` (nothing is held in a buffer
//! of the process: a crash loses at most what is still queued); the file is
//! fsynced before each rotation and when the node stops.
//!
//! docs/operations.md ("Audit log") lists the fields.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use serde::Serialize;
use serde_json::Value as Json;

use crate::admin::views::RecentCallView;
use crate::config::sections::AuditSection;
use crate::mcp::plane::{AuditSink, RecentCall};

/// Finished calls waiting for the writer at most.
pub const AUDIT_QUEUE: usize = 4096;

/// One call handed to the writer.
struct Entry {
    call: RecentCall,
    arguments: Option<Option<Json>>,
}

/// One line of the log.
#[derive(Serialize)]
struct Line<'a> {
    /// When the call finished here, RFC 3339 UTC with milliseconds.
    time: String,
    caller_asn: u32,
    /// The caller's node id (64 hex digits), from the signed origin.
    caller_node: String,
    #[serde(flatten)]
    call: RecentCallView,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a Json>,
    /// Arguments are logged but these were not held (too many calls in
    /// flight, see `AUDIT_ARGUMENTS_HELD`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    arguments_missing: bool,
}

/// How the log is written.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub keep_files: u32,
    pub log_arguments: bool,
}

impl AuditOptions {
    /// From node.toml's `[audit]`; `path` already resolved against the
    /// node's directory.
    pub fn new(s: &AuditSection, path: PathBuf) -> Self {
        AuditOptions {
            path,
            max_bytes: s.max_file_kb.saturating_mul(1024),
            keep_files: s.keep_files,
            log_arguments: s.log_arguments,
        }
    }
}

/// The node's end, which the plane holds: an [`AuditSink`] that never
/// blocks. Dropping it (the node stopping) closes the queue and waits for
/// the writer to write what is queued and fsync.
pub struct AuditLog {
    tx: Option<SyncSender<Entry>>,
    dropped: Arc<AtomicU64>,
    writer: Option<JoinHandle<()>>,
}

impl AuditLog {
    /// Opens (or creates, 0600) the file and starts the writer thread.
    pub fn start(opts: AuditOptions) -> std::io::Result<AuditLog> {
        AuditLog::with_queue(opts, AUDIT_QUEUE, None)
    }

    /// `hold`: the writer starts once it gets a message (or its sender
    /// goes); the tests use it to fill the queue.
    fn with_queue(
        opts: AuditOptions,
        queue: usize,
        hold: Option<Receiver<()>>,
    ) -> std::io::Result<AuditLog> {
        let file = open(&opts.path)?;
        let size = file.metadata()?.len();
        let (tx, rx) = sync_channel(queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut w = Writer {
            opts,
            file,
            size,
            dropped: dropped.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || {
                if let Some(h) = hold {
                    let _ = h.recv();
                }
                w.run(rx)
            })?;
        Ok(AuditLog {
            tx: Some(tx),
            dropped,
            writer: Some(writer),
        })
    }

    /// Calls not logged since the start because the queue was full (or
    /// the writer had stopped on an error).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // The only sender: the writer sees the end once the queue is empty.
        self.tx = None;
        if let Some(w) = self.writer.take()
            && !std::thread::panicking()
        {
            let _ = w.join();
        }
    }
}

impl AuditSink for AuditLog {
    fn finished(&mut self, call: &RecentCall, arguments: Option<Option<Json>>) {
        let Some(tx) = self.tx.as_ref() else {
            return;
        };
        let entry = Entry {
            call: call.clone(),
            arguments,
        };
        match tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("audit log queue full or writer stopped: calls not logged");
                }
            }
        }
    }
}

struct Writer {
    opts: AuditOptions,
    file: File,
    size: u64,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    fn run(&mut self, rx: Receiver<Entry>) {
        let mut reported = 0u64;
        let mut buf = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < 256
                && let Ok(e) = rx.try_recv()
            {
                batch.push(e);
            }
            let dropped = self.dropped.load(Ordering::Relaxed);
            if dropped > reported {
                let time = batch.first().map_or(0, |e| e.call.finished_ms);
                let line =
                    serde_json::json!({ "time": rfc3339(time), "dropped": dropped - reported });
                reported = dropped;
                if let Err(e) = self.write_line(&mut buf, &line) {
                    return self.failed(&e);
                }
            }
            for e in &batch {
                if let Err(err) = self.write_line(&mut buf, &line_of(e)) {
                    return self.failed(&err);
                }
            }
            if let Err(e) = self.flush(&mut buf) {
                return self.failed(&e);
            }
        }
        if let Err(e) = self.file.sync_all() {
            tracing::warn!(path = %self.opts.path.display(), error = %e, "audit log fsync at shutdown failed");
        }
    }

    fn failed(&self, e: &std::io::Error) {
        tracing::error!(path = %self.opts.path.display(), error = %e, "audit log stopped: write failed; further calls are not logged");
    }

    /// Adds one line to `buf`, rotating first when it would take the file
    /// past the limit.
    fn write_line<T: Serialize>(&mut self, buf: &mut Vec<u8>, line: &T) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        let len = bytes.len() as u64;
        let total = self.size + buf.len() as u64;
        if total > 0 && total + len > self.opts.max_bytes {
            self.flush(buf)?;
            self.rotate()?;
        }
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        buf.clear();
        Ok(())
    }

    /// `file` -> `file.1`, `file.1` -> `file.2`, ...; `file.keep` deleted.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_all()?;
        let p = &self.opts.path;
        let keep = self.opts.keep_files;
        if keep == 0 {
            std::fs::remove_file(p)?;
        } else {
            remove_if_there(&numbered(p, keep))?;
            for n in (1..keep).rev() {
                let from = numbered(p, n);
                if from.exists() {
                    std::fs::rename(&from, numbered(p, n + 1))?;
                }
            }
            std::fs::rename(p, numbered(p, 1))?;
        }
        self.file = open(p)?;
        self.size = 0;
        Ok(())
    }
}

fn line_of(e: &Entry) -> Line<'_> {
    let r = &e.call.record;
    Line {
        time: rfc3339(e.call.finished_ms),
        caller_asn: r.caller_asn.0,
        caller_node: r.caller.to_string(),
        call: RecentCallView::new(&e.call),
        arguments: e.arguments.as_ref().and_then(Option::as_ref),
        arguments_missing: matches!(e.arguments, Some(None)),
    }
}

fn numbered(p: &Path, n: u32) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn remove_if_there(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens for appending, creating it 0600; an existing file readable by
/// others is tightened to 0600.
fn open(p: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(p)?;
    if f.metadata()?.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds.
fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "invalid".into(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::call::{CallId, CallOp, TraceContext};
    use crate::core::forward::CallRecord;
    use crate::core::ids::{Asn, NodeId};
    use crate::core::prefix::Prefix;

    fn call(n: u8) -> RecentCall {
        RecentCall {
            record: CallRecord {
                call_id: CallId([n; 16]),
                caller: NodeId([7; 32]),
                caller_asn: Asn(65001),
                target: Prefix::new("a/b").unwrap(),
                from: None,
                to: None,
                agent: None,
                outcome: "ok",
                elapsed_us: 5,
                retries: 0,
                op: CallOp::Tool,
                tool: Some("echo".into()),
                trace: TraceContext {
                    trace_id: [n.max(1); 16],
                    span_id: [1; 8],
                    flags: 1,
                },
                parent_span: None,
                hops: Vec::new(),
            },
            finished_ms: 1_764_644_000_123,
        }
    }

    fn opts(dir: &Path, max_bytes: u64, keep_files: u32) -> AuditOptions {
        AuditOptions {
            path: dir.join("audit.jsonl"),
            max_bytes,
            keep_files,
            log_arguments: false,
        }
    }

    fn lines(p: &Path) -> Vec<Json> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let (go, hold) = sync_channel(1);
        let mut sink = AuditLog::with_queue(opts(dir.path(), 1 << 20, 1), 2, Some(hold)).unwrap();
        // The writer is held: the queue takes 2, the other 8 are dropped
        // and counted at once, without waiting.
        for n in 1..=10u8 {
            sink.finished(&call(n), None);
        }
        assert_eq!(sink.dropped(), 8);
        go.send(()).unwrap();
        drop(sink);
        let got = lines(&dir.path().join("audit.jsonl"));
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0]["dropped"], 8, "the next line says how many");
        assert_eq!(got[1]["call_id"], CallId([1; 16]).to_string());
        assert_eq!(got[2]["call_id"], CallId([2; 16]).to_string());
        assert!(got[1].get("arguments").is_none());
    }

    #[test]
    fn lines_carry_the_caller_and_time_and_rotate_keeping_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = AuditLog::start(opts(dir.path(), 1500, 2)).unwrap();
        for n in 1..=20u8 {
            sink.finished(&call(n), Some(Some(serde_json::json!({"n": n}))));
        }
        drop(sink);
        let p = dir.path().join("audit.jsonl");
        let cur = lines(&p);
        assert_eq!(cur[0]["time"], "2025-12-02T02:53:20.123Z");
        assert_eq!(cur[0]["outcome"], "ok");
        assert_eq!(cur[0]["caller_asn"], 65001);
        assert_eq!(cur[0]["caller_node"], hex::encode([7u8; 32]));
        assert_eq!(cur[0]["tool"], "echo");
        assert!(cur[0]["arguments"]["n"].is_u64());
        let one = lines(&numbered(&p, 1));
        let two = lines(&numbered(&p, 2));
        assert!(!one.is_empty() && !two.is_empty());
        assert!(!numbered(&p, 3).exists(), "only keep_files rotated files");
        for f in [p.clone(), numbered(&p, 1), numbered(&p, 2)] {
            assert!(std::fs::metadata(&f).unwrap().len() <= 1500);
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The newest calls are in the current file, in order.
        let last = cur.last().unwrap()["call_id"].as_str().unwrap().to_string();
        assert_eq!(last, CallId([20; 16]).to_string());
    }
}
