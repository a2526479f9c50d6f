//! This process's own stdin and stdout as an MCP transport (the example
//! agent; the stdio bridge of `abgp mcp`).
//!
//! `tokio::io::stdin`/`stdout` read and write on the blocking thread pool:
//! every message then costs a hand-off to a pool thread and back, which is
//! most of a small tool call. When stdin and stdout are pipes (as they are
//! for an MCP server started by a client), they are used as non-blocking
//! pipes on the runtime's reactor instead; a terminal or a file falls back
//! to tokio's blocking versions, and so does a stdout that is also stderr
//! (`2>&1`): a pipe in non-blocking mode would make a log line written
//! while it is full fail.

use std::os::fd::AsFd;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// The reading half.
pub type Reader = Pin<Box<dyn AsyncRead + Send>>;
/// The writing half.
pub type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// Stdin and stdout, as pipes on the reactor where they are pipes.
pub fn streams() -> (Reader, Writer) {
    (reader(), writer())
}

fn reader() -> Reader {
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| pipe::Receiver::from_owned_fd(fd).ok());
    match pipe {
        Some(p) => Box::pin(p),
        None => Box::pin(tokio::io::stdin()),
    }
}

fn writer() -> Writer {
    let pipe = (!same_file(std::io::stdout().as_fd(), std::io::stderr().as_fd()))
        .then(|| std::io::stdout().as_fd().try_clone_to_owned().ok())
        .flatten()
        .and_then(|fd| pipe::Sender::from_owned_fd(fd).ok());
    match pipe {
        Some(p) => Box::pin(p),
        None => Box::pin(tokio::io::stdout()),
    }
}

/// Whether two descriptors are the same pipe or file (so a mode set on one
/// would apply to both).
fn same_file(a: std::os::fd::BorrowedFd<'_>, b: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let meta = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .ok()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()))
    };
    match (meta(a), meta(b)) {
        (Some(x), Some(y)) => x == y,
        // Unknown: assume shared, and stay blocking.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// A child whose stdin and stdout are pipes (as an MCP client starts a
    /// server) echoes a line through [`super::streams`]: the pipe path.
    #[tokio::test]
    async fn pipes_carry_lines_both_ways() {
        let exe = std::env::current_exe().unwrap();
        let mut child = tokio::process::Command::new(exe)
            .args(["--exact", "mcp::stdio::tests::child_echo", "--nocapture"])
            .env("ABGP_STDIO_CHILD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        stdin.write_all(b"ping 42\n").await.unwrap();
        let mut got = None;
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(rest) = l.strip_prefix("echo: ") {
                got = Some(rest.to_string());
                break;
            }
        }
        assert_eq!(got.as_deref(), Some("ping 42"));
        drop(stdin);
        assert!(child.wait().await.unwrap().success());
    }

    /// The child side of the test above (does nothing when run alone).
    #[tokio::test]
    async fn child_echo() {
        if std::env::var_os("ABGP_STDIO_CHILD").is_none() {
            return;
        }
        let (r, mut w) = super::streams();
        let mut lines = BufReader::new(r).lines();
        if let Some(l) = lines.next_line().await.unwrap() {
            w.write_all(format!("echo: {l}\n").as_bytes())
                .await
                .unwrap();
            w.flush().await.unwrap();
        }
    }
}
