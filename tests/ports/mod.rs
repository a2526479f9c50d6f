//! Free loopback ports for test nodes.
//!
//! Ports come from below the kernel's ephemeral range (32768-60999 on
//! Linux), so an outgoing connection elsewhere on the machine can never be
//! given the port between the moment a test picks it and the moment its node
//! binds it. Each test process starts at an offset derived from its pid and
//! walks forward, and every candidate is checked free for both TCP and UDP
//! (QUIC listens on UDP).

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

const FIRST: u32 = 20_000;
const SPAN: u32 = 12_000;

/// A TCP and UDP port on 127.0.0.1 that nothing is bound to right now and
/// that this process has not handed out before.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = (std::process::id().wrapping_mul(2_654_435_761) >> 8) % SPAN;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst) % SPAN;
        let port = u16::try_from(FIRST + n).unwrap_or(20_000);
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + SPAN);
}
