//! The checks of node.toml that serde cannot make. [`problems`] looks at
//! every value and returns every problem, each with its key path, so an
//! operator fixes a file in one pass (as the policy compiler does).

use std::collections::HashSet;
use std::time::Duration;

use super::Problem;
use super::sections::{AuditSection, NodeConfig, SessionSection};
use super::values::{AsnSetting, CertSource};
use crate::core::ids::Asn;

/// Collects problems under key paths.
struct Check {
    out: Vec<Problem>,
}

impl Check {
    fn fail(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.out.push(Problem::new(key, message));
    }

    fn at_least<T: PartialOrd + std::fmt::Display>(&mut self, key: &str, v: T, min: T) {
        if v < min {
            self.fail(key, format!("{v} is below the minimum of {min}"));
        }
    }

    fn duration_at_least(&mut self, key: &str, d: Duration, min: Duration) {
        if d < min {
            self.fail(
                key,
                format!(
                    "{} is below the minimum of {}",
                    super::values::format_duration(d),
                    super::values::format_duration(min)
                ),
            );
        }
    }

    /// A time carried in OPEN: whole seconds, 0 or 3 to 65535.
    fn hold_time(&mut self, key: &str, d: Duration) {
        let whole = d.subsec_nanos() == 0;
        let s = d.as_secs();
        if !whole || s == 1 || s == 2 || s > u64::from(u16::MAX) {
            self.fail(
                key,
                format!(
                    "{} is not allowed: 0 (no keepalives) or 3s to 65535s in whole seconds",
                    super::values::format_duration(d)
                ),
            );
        }
    }

    /// A reconnect back-off: a first delay of at least 1 s, a cap at
    /// least that and at most a day.
    fn backoff(&mut self, prefix: &str, min: Duration, max: Duration) {
        if min < Duration::from_secs(1) {
            self.fail(format!("{prefix}connect_retry_min"), "must be at least 1s");
        }
        if max < min {
            self.fail(
                format!("{prefix}connect_retry_max"),
                format!(
                    "{} is below connect_retry_min ({})",
                    super::values::format_duration(max),
                    super::values::format_duration(min)
                ),
            );
        } else if max > Duration::from_secs(86_400) {
            self.fail(
                format!("{prefix}connect_retry_max"),
                format!("{} is over a day", super::values::format_duration(max)),
            );
        }
    }
}

/// Every problem with the values of `c` (the agents and access rules are
/// checked by [`NodeConfig::problems`], which calls this).
pub fn problems(c: &NodeConfig) -> Vec<Problem> {
    let mut k = Check { out: Vec::new() };
    node(&mut k, c);
    network(&mut k, c);
    session(&mut k, &c.session);
    damping(&mut k, &c.damping);
    discovery(&mut k, c);
    trust(&mut k, c);
    admin_and_store(&mut k, c);
    neighbors(&mut k, c);
    mcp(&mut k, c);
    originate(&mut k, c);
    let own = match c.node.asn {
        AsnSetting::Number(a) => Some(a.0),
        AsnSetting::Derived => None,
    };
    k.out.extend(super::routing::problems(
        own,
        &c.routing,
        c.neighbors.iter().map(|n| super::routing::NeighborFlags {
            asn: n.asn,
            rr_client: n.rr_client,
            route_server_client: n.route_server_client,
            route_server: n.route_server,
            local_role: n.local_role,
            strict_role: n.strict_role,
        }),
    ));
    k.out.extend(super::balance::problems(&c.balance));
    k.out
}

fn node(k: &mut Check, c: &NodeConfig) {
    if c.node.worker_threads > 1024 {
        k.fail(
            "node.worker_threads",
            format!("{} is over the maximum of 1024", c.node.worker_threads),
        );
    }
    let fed = &c.node.federation;
    if fed.is_empty()
        || fed.len() > 64
        || !fed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        k.fail(
            "node.federation",
            format!("{fed:?} must be 1 to 64 characters of letters, digits, '-', '_', '.'"),
        );
    }
    if c.node.certificate == CertSource::Derived && matches!(c.node.asn, AsnSetting::Number(_)) {
        k.fail(
            "node.certificate",
            "a derived certificate is only for asn = \"derived\"; use \"self-signed\" \
             (peers pin you) or an issued certificate file for a chosen ASN",
        );
    }
    if let AsnSetting::Number(a) = c.node.asn
        && a.0 == 0
    {
        k.fail("node.asn", "AS 0 is reserved (RFC 7607)");
    }
}

fn network(k: &mut Check, c: &NodeConfig) {
    let n = &c.network;
    k.duration_at_least(
        "network.request_timeout",
        n.request_timeout,
        Duration::from_secs(1),
    );
    k.at_least(
        "network.max_connections_per_peer",
        n.max_connections_per_peer,
        1,
    );
    k.at_least("network.max_queued_messages", n.max_queued_messages, 4);
    // A connection must hold at least one frame of the largest kind.
    let frame_mb = crate::wire::Limits::default()
        .max_read_bytes()
        .div_ceil(1 << 20);
    if n.inbound_buffer_per_connection_mb < frame_mb {
        k.fail(
            "network.inbound_buffer_per_connection_mb",
            format!("must be at least {frame_mb} (one call frame)"),
        );
    }
    if n.inbound_buffer_mb < n.inbound_buffer_per_connection_mb {
        k.fail(
            "network.inbound_buffer_mb",
            "must be at least inbound_buffer_per_connection_mb",
        );
    }
}

fn damping(k: &mut Check, d: &super::sections::DampingSection) {
    k.duration_at_least("damping.half_life", d.half_life, Duration::from_secs(1));
    k.at_least("damping.reuse", d.reuse, 1);
    if d.suppress <= d.reuse {
        k.fail(
            "damping.suppress",
            format!("{} must be above reuse ({})", d.suppress, d.reuse),
        );
    }
    if d.max_suppress < d.half_life || d.max_suppress > Duration::from_secs(86_400) {
        k.fail(
            "damping.max_suppress",
            "must be between half_life and a day",
        );
    }
    if f64::from(d.suppress) >= d.engine().ceiling() {
        k.fail(
            "damping.suppress",
            "is out of reach: the penalty is capped at reuse * 2^(max_suppress / half_life)",
        );
    }
}

fn session(k: &mut Check, s: &SessionSection) {
    k.hold_time("session.hold_time", s.hold_time);
    let gr = s.graceful_restart;
    if gr.subsec_nanos() != 0 || gr.as_secs() > u64::from(u16::MAX) {
        k.fail(
            "session.graceful_restart",
            "must be whole seconds, at most 65535s (0 disables it)",
        );
    }
    k.backoff("session.", s.connect_retry_min, s.connect_retry_max);
    k.at_least("session.max_routes_per_update", s.max_routes_per_update, 1);
    if s.mrai > Duration::from_secs(3600) {
        k.fail("session.mrai", "is over an hour (classic BGP uses 30s)");
    }
}

fn discovery(k: &mut Check, c: &NodeConfig) {
    let d = &c.discovery;
    let second = Duration::from_secs(1);
    k.at_least("discovery.auto_peer_max_prefix", d.auto_peer_max_prefix, 1);
    k.duration_at_least("discovery.query_interval", d.query_interval, second);
    k.duration_at_least(
        "discovery.mdns_query_interval",
        d.mdns_query_interval,
        second,
    );
    k.duration_at_least("discovery.auto_peer_idle", d.auto_peer_idle, second);
    k.duration_at_least("discovery.auto_peer_down", d.auto_peer_down, second);
    for (i, a) in d.bootstrap.iter().enumerate() {
        if crate::identity::peer_of_addr(a).is_none() {
            k.fail(
                format!("discovery.bootstrap[{i}]"),
                format!("{a} must end with /p2p/<peer id> so the bootstrap node is authenticated"),
            );
        }
    }
}

fn trust(k: &mut Check, c: &NodeConfig) {
    let t = &c.trust;
    k.duration_at_least(
        "trust.certificate_validity",
        t.certificate_validity,
        Duration::from_secs(86_400),
    );
    k.duration_at_least(
        "trust.route_signature_validity",
        t.route_signature_validity,
        Duration::from_secs(60),
    );
    k.at_least(
        "trust.verify_checks_per_peer_per_sec",
        t.verify_checks_per_peer_per_sec,
        1,
    );
    let own = match c.node.asn {
        AsnSetting::Number(a) => Some(a.0),
        AsnSetting::Derived => None,
    };
    for (i, &asn) in t.transparent_asns.iter().enumerate() {
        if asn == 0 {
            k.fail(
                format!("trust.transparent_asns[{i}]"),
                "AS 0 is reserved (RFC 7607)",
            );
        } else if Some(asn) == own {
            k.fail(
                format!("trust.transparent_asns[{i}]"),
                "is our own AS: a route server is in another AS",
            );
        }
    }
    for (i, a) in t.anchors.iter().enumerate() {
        if a.key.parse::<crate::core::NodeId>().is_err() {
            k.fail(
                format!("trust.anchors[{i}].key"),
                "must be the authority's public key as 64 hex digits",
            );
        }
        for (j, r) in a.asns.iter().enumerate() {
            if parse_asn_range(r).is_none() {
                k.fail(
                    format!("trust.anchors[{i}].asns[{j}]"),
                    format!("{r:?} is not an ASN or a range like \"65000-65100\""),
                );
            }
        }
    }
}

fn admin_and_store(k: &mut Check, c: &NodeConfig) {
    if let Some(a) = c.admin.listen.0
        && !a.ip().is_loopback()
    {
        k.fail(
            "admin.listen",
            format!(
                "{a} is not a loopback address; the admin API is plain HTTP and can start programs, so it listens on loopback only"
            ),
        );
    }
    if c.admin.token_file.as_os_str().is_empty() {
        k.fail("admin.token_file", "must name a file");
    }
    for (i, o) in c.admin.allowed_origins.iter().enumerate() {
        if let Err(m) = check_origin(o) {
            k.fail(format!("admin.allowed_origins[{i}]"), m);
        }
    }
    k.duration_at_least("store.stall", c.store.stall, Duration::from_secs(5));
    audit(k, &c.audit);
}

fn audit(k: &mut Check, a: &AuditSection) {
    if a.file.as_os_str().is_empty() {
        k.fail("audit.file", "must name a file");
    }
    k.at_least("audit.max_file_kb", a.max_file_kb, 1);
    if a.keep_files > 1000 {
        k.fail("audit.keep_files", "at most 1000");
    }
}

fn neighbors(k: &mut Check, c: &NodeConfig) {
    let mut seen = HashSet::new();
    for (i, n) in c.neighbors.iter().enumerate() {
        let key = |f: &str| format!("neighbor[{i}].{f}");
        if !seen.insert(n.peer_id) {
            k.fail(key("peer_id"), format!("{} is listed twice", n.peer_id));
        }
        if crate::identity::node_id_of(&n.peer_id).is_err() {
            k.fail(
                key("peer_id"),
                format!(
                    "{} is not an ed25519 peer id (agent-bgp nodes use ed25519 keys)",
                    n.peer_id
                ),
            );
        }
        if n.asn == 0 {
            k.fail(key("asn"), "AS 0 is reserved (RFC 7607)");
        }
        match &n.address {
            None if !n.passive => k.fail(key("address"), "required unless passive = true"),
            Some(a) => {
                if let Some(p) = crate::identity::peer_of_addr(a)
                    && p != n.peer_id
                {
                    k.fail(
                        key("address"),
                        format!("names peer {p}, but peer_id is {}", n.peer_id),
                    );
                }
            }
            None => {}
        }
        if let Some(h) = n.hold_time {
            k.hold_time(&key("hold_time"), h);
        }
        if n.connect_retry_min.is_some() || n.connect_retry_max.is_some() {
            let (min, max) = n.connect_retry(&c.session);
            k.backoff(&key(""), min, max);
        }
    }
}

fn mcp(k: &mut Check, c: &NodeConfig) {
    let m = &c.mcp;
    if let Some(a) = m.listen.0
        && !a.ip().is_loopback()
        && m.bearer_token.is_none()
    {
        k.fail(
            "mcp.listen",
            format!(
                "{a} is not a loopback address: set mcp.bearer_token so clients must authenticate"
            ),
        );
    }
    for (i, o) in m.allowed_origins.iter().enumerate() {
        if let Err(e) = check_origin(o) {
            k.fail(format!("mcp.allowed_origins[{i}]"), e);
        }
    }
    use crate::mcp::front::view;
    let pinned = view::check_pinned(m.front_mode, &m.front_pinned);
    for (key, e) in pinned
        .into_iter()
        .map(|(k, e)| (format!("mcp.front_{k}"), e))
    {
        k.fail(key, e);
    }
    for (key, e) in view::problems(&m.views) {
        k.fail(key, e);
    }
    let second = Duration::from_secs(1);
    k.duration_at_least("mcp.call_timeout", m.call_timeout, second);
    k.at_least("mcp.hop_limit", m.hop_limit, 1);
    k.duration_at_least("mcp.call_request_timeout", m.call_request_timeout, second);
    k.duration_at_least("mcp.max_call_duration", m.max_call_duration, second);
    if m.call_timeout > m.max_call_duration {
        k.fail(
            "mcp.call_timeout",
            "must not be longer than max_call_duration (no call runs longer)",
        );
    }
    if m.answer_hold >= m.call_request_timeout / 2 {
        k.fail(
            "mcp.answer_hold",
            "must be less than half of call_request_timeout",
        );
    }
    k.at_least("mcp.max_calls", m.max_calls, 1);
    k.at_least("mcp.max_concurrent_calls", m.max_concurrent_calls, 1);
    let q = m.call_quotas();
    if m.max_calls > 0 && q.front_reserve >= q.max_calls {
        k.fail(
            "mcp.front_reserved_calls",
            "must leave some of max_calls to peers",
        );
    }
    if m.max_calls_per_peer == Some(0) {
        k.fail("mcp.max_calls_per_peer", "must be at least 1");
    }
    if m.max_calls_per_caller == Some(0) {
        k.fail("mcp.max_calls_per_caller", "must be at least 1");
    }
    k.at_least("mcp.max_call_rate_per_peer", m.max_call_rate_per_peer, 1);
    k.at_least(
        "mcp.max_call_bytes_per_peer_mb",
        m.max_call_bytes_per_peer_mb,
        1,
    );
}

fn originate(k: &mut Check, c: &NodeConfig) {
    let mut prefixes = HashSet::new();
    for (i, o) in c.originate.iter().enumerate() {
        if !prefixes.insert(o.prefix.clone()) {
            k.fail(
                format!("originate[{i}].prefix"),
                format!("{} is originated twice", o.prefix),
            );
        }
        if o.agent.is_empty() || o.agent.len() > 128 {
            k.fail(format!("originate[{i}].agent"), "must be 1 to 128 bytes");
        }
        for (j, cap) in o.capabilities.iter().enumerate() {
            if cap.is_empty() || cap.len() > 128 {
                k.fail(
                    format!("originate[{i}].capabilities[{j}]"),
                    "must be 1 to 128 bytes",
                );
            }
        }
    }
}

/// An allowed browser origin: `scheme://host[:port]` (no path), or
/// `"null"`.
fn check_origin(o: &str) -> Result<(), String> {
    if o == "null" {
        return Ok(());
    }
    let ok = o.parse::<http::Uri>().ok().is_some_and(|u| {
        u.scheme().is_some()
            && u.authority().is_some()
            && u.path_and_query()
                .is_none_or(|p| p.as_str() == "/" || p.as_str().is_empty())
    });
    if ok && !o.ends_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{o:?} is not an origin like \"http://localhost:5173\" (scheme, host, optional port, no path)"
        ))
    }
}

/// `"65000-65100"` or `"65001"`.
pub fn parse_asn_range(s: &str) -> Option<std::ops::RangeInclusive<u32>> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let a: Asn = a.parse().ok()?;
    let b: Asn = b.parse().ok()?;
    (a.0 <= b.0).then_some(a.0..=b.0)
}
