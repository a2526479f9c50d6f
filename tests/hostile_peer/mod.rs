//! A peer that speaks agent-bgp's wire badly on purpose, as an attacker
//! would: a real libp2p node (TCP, noise, yamux) whose streams are raw
//! (`libp2p-stream`), so it can send any bytes, open streams and never
//! write, flood, or speak the protocol correctly when a test needs a
//! session first.
//!
//! It answers the node's own routing requests (its OPEN, KEEPALIVEs,
//! UPDATEs) with an empty acknowledgement and records what they were, so a
//! test can count what the node sent.

#![allow(dead_code)]

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};

use agent_bgp::core::ids::{Asn, Millis, NodeId};
use agent_bgp::core::message::{Capabilities, Message, Open, PROTOCOL_VERSION, Update};
use agent_bgp::core::route::Route;
use agent_bgp::identity::{LocalIdentity, NodeKey, derive_asn, derived_cert};
use agent_bgp::net::call_codec::CALL_PROTOCOL;
use agent_bgp::net::route_codec::ROUTE_PROTOCOL;
use agent_bgp::wire::{self, Frame, Limits};

pub fn now_ms() -> Millis {
    Millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

/// What the node sent us, decoded (or why it did not decode).
pub type Received = Arc<Mutex<Vec<Result<Message, String>>>>;

/// How the hostile peer answers the CALLs the node sends it.
#[derive(Debug, Clone, Default)]
pub enum CallBehaviour {
    /// An empty response (not a CALL-ANSWER: the node counts it a failure).
    #[default]
    Empty,
    /// "Accepted", and then nothing: a black hole. DESCRIBEs are answered
    /// with `describe` when set.
    Accept { describe: Option<serde_json::Value> },
    /// Answers every CALL (DESCRIBE too) at once with this made-up output,
    /// unsealed: a transit that answers instead of forwarding.
    Forge(serde_json::Value),
}

pub struct Hostile {
    pub identity: Arc<LocalIdentity>,
    pub peer_id: PeerId,
    pub node_id: NodeId,
    pub asn: Asn,
    pub target: PeerId,
    ctl: libp2p_stream::Control,
    pub received: Received,
    /// CALLs the node sent us, in order.
    pub calls: Arc<Mutex<Vec<agent_bgp::core::call::Call>>>,
    pub call_behaviour: Arc<Mutex<CallBehaviour>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn build_swarm(key: &NodeKey) -> Swarm<libp2p_stream::Behaviour> {
    let kp = key.to_libp2p().expect("libp2p key");
    SwarmBuilder::with_existing_identity(kp)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build()
}

/// Reads a stream to its end, at most `max` bytes.
pub async fn read_all(s: &mut libp2p::Stream, max: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    s.take(max as u64).read_to_end(&mut out).await?;
    Ok(out)
}

impl Hostile {
    /// Connects to the node at `addr` (a `/p2p/`-less multiaddr) whose
    /// peer id is `target`, with a fresh key.
    pub async fn connect(addr: &str, target: &str) -> Hostile {
        let key = NodeKey::generate();
        let node_id = key.node_id();
        let asn = derive_asn(&node_id);
        let now = now_ms();
        let cert = derived_cert(&key, Millis(now.0 - 3_600_000), Millis(now.0 + 86_400_000))
            .expect("derived cert");
        let peer_id = key.peer_id();
        let mut swarm = build_swarm(&key);
        let identity = Arc::new(LocalIdentity::new(key, cert).expect("identity"));
        let target: PeerId = target.parse().expect("target peer id");
        let addr: Multiaddr = format!("{addr}/p2p/{target}").parse().expect("addr");
        swarm.dial(addr).expect("dial");
        loop {
            match swarm.select_next_some().await {
                libp2p::swarm::SwarmEvent::ConnectionEstablished { peer_id: p, .. }
                    if p == target =>
                {
                    break;
                }
                libp2p::swarm::SwarmEvent::OutgoingConnectionError { error, .. } => {
                    panic!("hostile peer could not connect: {error}")
                }
                _ => {}
            }
        }
        let mut ctl = swarm.behaviour().new_control();
        let received: Received = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = vec![tokio::spawn(async move {
            loop {
                swarm.select_next_some().await;
            }
        })];
        // Acknowledge and record whatever the node sends on either
        // protocol; answer CALLs as `call_behaviour` says.
        let calls = Arc::new(Mutex::new(Vec::new()));
        let call_behaviour = Arc::new(Mutex::new(CallBehaviour::Empty));
        for proto in [ROUTE_PROTOCOL, CALL_PROTOCOL] {
            let mut incoming = ctl.accept(proto).expect("accept");
            let rec = received.clone();
            let (calls, behaviour) = (calls.clone(), call_behaviour.clone());
            tasks.push(tokio::spawn(async move {
                while let Some((_, mut s)) = incoming.next().await {
                    let rec = rec.clone();
                    let (calls, behaviour) = (calls.clone(), behaviour.clone());
                    tokio::spawn(async move {
                        let Ok(bytes) = read_all(&mut s, 16 << 20).await else {
                            return;
                        };
                        let m = match wire::decode(&bytes, &Limits::default()) {
                            Ok(Frame::Routing(m)) => {
                                let _ = s.write_all(agent_bgp::net::route_codec::ACK).await;
                                Ok(m)
                            }
                            Ok(Frame::Call(agent_bgp::wire::CallMessage::Call(c))) => {
                                let answer = call_answer(&c, &behaviour.lock().unwrap());
                                calls.lock().unwrap().push(c);
                                if let Some(a) = answer {
                                    let _ = s.write_all(&a).await;
                                }
                                Err("CALL".to_string())
                            }
                            Ok(f) => Err(format!("{}", f.message_type())),
                            Err(e) => Err(e.to_string()),
                        };
                        rec.lock().unwrap().push(m);
                        let _ = s.close().await;
                    });
                }
            }));
        }
        Hostile {
            identity,
            peer_id,
            node_id,
            asn,
            target,
            ctl,
            received,
            calls,
            call_behaviour,
            tasks,
        }
    }

    /// Opens a stream on `proto` (nothing written yet).
    pub async fn stream(&mut self, proto: StreamProtocol) -> io::Result<libp2p::Stream> {
        self.ctl
            .open_stream(self.target, proto)
            .await
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// One request: open, write `bytes`, close our side, read the answer.
    /// A node that stops reading (an oversized frame) may answer before
    /// the write is done, so a failed write still reads what came back.
    /// A write that stalls for 2 s (the node stopped reading and the
    /// stream's window is full) is given up the same way.
    pub async fn request(&mut self, proto: StreamProtocol, bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut s = self.stream(proto).await?;
        let stall = Duration::from_secs(2);
        let wrote = match tokio::time::timeout(stall, s.write_all(bytes)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled")),
        };
        if wrote.is_ok() {
            let _ = s.close().await;
        }
        let answer =
            match tokio::time::timeout(Duration::from_secs(30), read_all(&mut s, 1 << 20)).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")),
            };
        match (wrote, answer) {
            (_, Ok(a)) if !a.is_empty() => Ok(a),
            (Err(e), _) => Err(e),
            (Ok(()), a) => a,
        }
    }

    pub async fn route_request(&mut self, bytes: &[u8]) -> io::Result<Vec<u8>> {
        self.request(ROUTE_PROTOCOL, bytes).await
    }

    /// Sends a routing message; the answer decoded (`None`: acknowledged;
    /// an error when nothing came back: not acknowledged).
    pub async fn send(&mut self, m: &Message) -> io::Result<Option<Message>> {
        let bytes = wire::encode_message(m, &Limits::default()).expect("encode");
        let answer = self.route_request(&bytes).await?;
        if answer == agent_bgp::net::route_codec::ACK {
            return Ok(None);
        }
        if answer.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "not acknowledged",
            ));
        }
        match wire::decode(&answer, &Limits::default()) {
            Ok(Frame::Routing(m)) => Ok(Some(m)),
            other => Err(io::Error::other(format!("odd answer: {other:?}"))),
        }
    }

    pub fn open_message(&self, federation: &str, hold: u16) -> Message {
        Message::Open(Open {
            version: PROTOCOL_VERSION,
            asn: self.asn,
            node: self.node_id,
            hold_time: hold,
            capabilities: Capabilities {
                unreachable: Default::default(),
                tombstones: Default::default(),
                route_refresh: true,
                graceful_restart: None,
                add_path: false,
                multipath: false,
                role: None,
            },
            federation: federation.into(),
            cert: Some(self.identity.cert().clone()),
        })
    }

    /// Messages the node sent that decoded, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|m| m.as_ref().ok().cloned())
            .collect()
    }

    /// Waits until the node has sent us a NOTIFICATION with `code`.
    pub async fn notified(&self, code: agent_bgp::core::message::ErrorCode, what: &str) {
        wait_async(what, Duration::from_secs(10), || {
            self.messages()
                .iter()
                .any(|m| matches!(m, Message::Notification(n) if n.code == code))
                .then_some(())
        })
        .await
    }

    pub fn count(&self, f: impl Fn(&Message) -> bool) -> usize {
        self.messages().iter().filter(|m| f(m)).count()
    }

    /// A correct handshake: OPEN, then KEEPALIVE once the node's OPEN came;
    /// returns the node's OPEN. Keepalives follow every third of the
    /// negotiated hold time.
    pub async fn handshake(&mut self, federation: &str, hold: u16) -> Open {
        let answer = self
            .send(&self.open_message(federation, hold))
            .await
            .expect("send OPEN");
        assert!(answer.is_none(), "the node refused our OPEN: {answer:?}");
        let open = wait_async("the node's OPEN", Duration::from_secs(20), || {
            self.messages().into_iter().find_map(|m| match m {
                Message::Open(o) => Some(o),
                _ => None,
            })
        })
        .await;
        let answer = self.send(&Message::Keepalive).await.expect("KEEPALIVE");
        assert!(answer.is_none(), "KEEPALIVE refused: {answer:?}");
        // Keepalives every third of the hold time both sides settle on.
        let hold = hold.min(open.hold_time);
        if hold > 0 {
            let mut ctl = self.ctl.clone();
            let target = self.target;
            let every = Duration::from_millis(u64::from(hold) * 1000 / 3);
            let ka = wire::encode_message(&Message::Keepalive, &Limits::default()).unwrap();
            // (Answers are read and dropped: the session only needs them sent.)
            self.tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Ok(mut s) = ctl.open_stream(target, ROUTE_PROTOCOL).await {
                        let _ = s.write_all(&ka).await;
                        let _ = s.close().await;
                        let _ = read_all(&mut s, 1 << 16).await;
                    }
                }
            }));
        }
        open
    }

    /// A route we originate, signed for `target_asn` (origin attestation
    /// and our path signature), as an honest peer sends it.
    pub fn signed_route(&self, prefix: &str, target_asn: Asn) -> Route {
        self.signed_route_with(prefix, target_asn, |_| {})
    }

    /// [`Self::signed_route`] with attributes set by `f` before signing.
    pub fn signed_route_with(
        &self,
        prefix: &str,
        target_asn: Asn,
        f: impl FnOnce(&mut agent_bgp::core::attrs::PathAttrs),
    ) -> Route {
        use agent_bgp::core::attrs::PathAttrs;
        use agent_bgp::core::ids::AgentId;
        use agent_bgp::core::prefix::Prefix;
        let mut attrs = PathAttrs {
            agent: AgentId::new("hostile"),
            origin_time: Millis(now_ms().0 - 1000),
            ..Default::default()
        };
        f(&mut attrs);
        attrs.normalize();
        let mut r = Route::new(Prefix::new(prefix).expect("prefix"), Arc::new(attrs));
        r.proof = Some(agent_bgp::identity::sign_origin(
            &self.identity,
            &r,
            Millis(now_ms().0 + 86_400_000),
        ));
        let mut a = (*r.attrs).clone();
        a.as_path.insert(0, self.asn);
        r.attrs = Arc::new(a);
        r.proof =
            Some(agent_bgp::identity::sign_path_hop(&r, &self.identity, target_asn).expect("sign"));
        r
    }

    pub fn update(routes: Vec<Route>) -> Message {
        Message::Update(Update {
            announce: routes,
            ..Default::default()
        })
    }
}

/// The encoded CALL-ANSWER for `c`, if the behaviour gives one.
fn call_answer(c: &agent_bgp::core::call::Call, b: &CallBehaviour) -> Option<Vec<u8>> {
    use agent_bgp::core::call::{Answer, CallAnswer, CallOp, CallOutcome, CallReturn};
    let answer = match b {
        CallBehaviour::Empty => return None,
        CallBehaviour::Accept { describe: Some(d) } if c.origin.op == CallOp::Describe => {
            CallAnswer::Done(CallReturn {
                sealed: None,
                seal: None,
                sent_back: 0,
                outcome: CallOutcome::Ok(d.clone()),
                trace: Vec::new(),
            })
        }
        CallBehaviour::Accept { .. } => CallAnswer::Accepted,
        CallBehaviour::Forge(j) => CallAnswer::Done(CallReturn {
            sealed: None,
            seal: None,
            sent_back: 0,
            outcome: CallOutcome::Ok(j.clone()),
            trace: Vec::new(),
        }),
    };
    let m = agent_bgp::wire::CallMessage::Answer(Answer { leg: c.leg, answer });
    wire::encode(&Frame::Call(m), &Limits::default()).ok()
}

/// Polls `f` until it returns `Some`, yielding to the runtime meanwhile.
pub async fn wait_async<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Memory and CPU of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Resident set now, and its peak (VmHWM), in KiB.
    pub rss_kib: u64,
    pub peak_kib: u64,
    /// User + system CPU time so far, in milliseconds.
    pub cpu_ms: u64,
}

pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 here.
    let hz = 100; // USER_HZ on Linux
    Usage {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
        cpu_ms: (ticks(11) + ticks(12)) * 1000 / hz,
    }
}
