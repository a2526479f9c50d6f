use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
    NodeConfig::parse(text, Path::new("node.toml"))
}

/// The key paths an invalid file is refused for.
fn invalid_keys(text: &str) -> Vec<String> {
    match parse(text) {
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.keys().into_iter().map(String::from).collect()
        }
        other => panic!("{text}: expected Invalid, got {other:?}"),
    }
}

fn peer(seed: u8) -> libp2p::PeerId {
    crate::identity::NodeKey::from_seed(&[seed; 32]).peer_id()
}

#[test]
fn template_parses_to_the_defaults() {
    let c = parse(&template(AsnSetting::Derived, "default")).unwrap();
    assert_eq!(c, NodeConfig::default());
}

#[test]
fn template_with_a_number_uses_a_self_signed_certificate() {
    let c = parse(&template(AsnSetting::Number(Asn(65001)), "acme")).unwrap();
    assert_eq!(c.node.asn, AsnSetting::Number(Asn(65001)));
    assert_eq!(c.node.certificate, CertSource::SelfSigned);
    assert_eq!(c.node.federation, "acme");
}

/// The template with every commented-out example line switched on (and
/// its placeholders filled), so the keys it shows but does not set are
/// checked too.
fn template_with_examples_on() -> String {
    let key = crate::identity::NodeKey::from_seed(&[9; 32]);
    let mut out = String::new();
    for line in template(AsnSetting::Derived, "default").lines() {
        let example = line
            .strip_prefix("# ")
            .filter(|l| is_header(l) || key_of(l).is_some_and(|k| !k.contains(' ')));
        out.push_str(example.unwrap_or(line));
        out.push('\n');
    }
    out.replace("12D3KooW...", &peer(1).to_string())
        .replace("<64 hex digits>", &key.node_id().to_string())
}

fn is_header(line: &str) -> bool {
    let l = line.trim();
    (l.starts_with("[[") && l.ends_with("]]"))
        || (l.starts_with('[') && l.ends_with(']'))
            && l[1..l.len() - 1]
                .trim_matches(|c| c == '[' || c == ']')
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
}

/// `key = value` → `key`.
fn key_of(line: &str) -> Option<&str> {
    let (k, _) = line.split_once(" = ")?;
    (!k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')).then_some(k)
}

/// Section (`node`, `neighbor`, `trust.anchors`) → the keys the template
/// shows for it, set or in examples.
fn template_keys() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in template_with_examples_on().lines() {
        if is_header(line) {
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            out.entry(section.clone()).or_default();
        } else if let Some(k) = key_of(line) {
            out.entry(section.clone())
                .or_default()
                .insert(k.to_string());
        }
    }
    out
}

#[test]
fn every_key_the_template_shows_parses() {
    let text = template_with_examples_on();
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(c.neighbors.len(), 1);
    assert_eq!(c.originate.len(), 1);
    assert_eq!(c.trust.anchors.len(), 1);
    assert_eq!(c.agent_configs().unwrap().len(), 2);
    assert_eq!(c.access.len(), 1);
    assert!(c.mcp.front_reserved_calls.is_some() && c.mcp.bearer_token.is_some());
    // Examples show the defaults: switching them on changes nothing else.
    assert_eq!(c.node, NodeConfig::default().node);
    assert_eq!(c.session, NodeConfig::default().session);
}

#[test]
fn the_template_and_docs_operations_list_the_same_keys() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    // The rows of the node.toml table: | `[section]` | `key`, `key` ... |
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in docs.lines() {
        let Some(rest) = line.strip_prefix("| `[") else {
            continue;
        };
        let Some((name, body)) = rest.split_once("]` |") else {
            continue;
        };
        let name = name.trim_matches(|c| c == '[' || c == ']').to_string();
        let keys = body
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .map(String::from)
            .collect();
        documented.insert(name, keys);
    }
    assert_eq!(
        template_keys(),
        documented,
        "the template's keys (left) and docs/operations.md's node.toml table (right) differ"
    );
}

#[test]
fn empty_file_is_all_defaults() {
    assert_eq!(parse("").unwrap(), NodeConfig::default());
}

#[test]
fn the_spellings_of_earlier_releases_still_load() {
    let id = peer(1);
    let old = format!(
        "[network]\nrequest_timeout_secs = 10\n\
         [session]\nhold_time_secs = 30\ngraceful_restart_secs = 0\nconnect_retry_min_secs = 2\nconnect_retry_max_secs = 20\n\
         [discovery]\nmdns_query_interval_secs = 1\nquery_interval_secs = 5\nauto_peer_idle_secs = 7\nauto_peer_down_secs = 8\ncert_failure_cooldown_secs = 9\n\
         [trust]\ncertificate_validity_days = 30\nroute_signature_validity_secs = 600\n\
         [store]\nstall_secs = 10\n\
         [mcp]\nbearer-token = \"t0ken\"\nallowed-hosts = [\"a\"]\nallowed-origins = [\"null\"]\ncall-timeout-secs = 5\nhop-limit = 3\n\
         caller-communities = [\"65001:1\"]\naccess-default = \"deny\"\nanswer-hold-ms = 250\nmax-calls = 100\nfront-reserved-calls = 5\n\
         max-calls-per-peer = 20\nmax-calls-per-caller = 4\nmax-call-rate-per-peer = 50\nmax-call-bytes-per-peer-mb = 2\n\
         call-request-timeout-secs = 4\nmax-concurrent-calls = 8\nbalance-transit = true\n\
         [[neighbor]]\npeer_id = \"{id}\"\nasn = 65001\npassive = true\nhold_time_secs = 9\nconnect_retry_min_secs = 3\n\
         [[agents]]\nid = \"a\"\nprefix = \"a/*\"\nurl = \"http://127.0.0.1:1/mcp\"\nbearer-token = \"x\"\ncall-timeout = \"5s\"\n\
         [[access]]\ncaller-asns = [\"own\"]\nany-caller = false\naction = \"allow\"\n"
    );
    let c = parse(&old).unwrap();
    let s = Duration::from_secs;
    assert_eq!(c.network.request_timeout, s(10));
    assert_eq!(
        (c.session.hold_time, c.session.graceful_restart),
        (s(30), s(0))
    );
    assert_eq!(
        (c.session.connect_retry_min, c.session.connect_retry_max),
        (s(2), s(20))
    );
    assert_eq!(c.discovery.query_interval, s(5));
    assert_eq!(c.discovery.cert_failure_cooldown, s(9));
    assert_eq!(c.trust.certificate_validity, s(30 * 86_400));
    assert_eq!(c.store.stall, s(10));
    assert_eq!(c.mcp.answer_hold, Duration::from_millis(250));
    assert_eq!(c.mcp.call_request_timeout, s(4));
    assert!(c.mcp.balance_transit && c.mcp.bearer_token.is_some());
    assert_eq!(c.neighbors[0].hold_time, Some(s(9)));
    assert_eq!(c.neighbors[0].connect_retry(&c.session), (s(3), s(20)));
    assert_eq!(
        c.agent_configs().unwrap()[0].call_timeout(),
        Duration::from_secs(5)
    );
    assert_eq!(c.access_policy(Asn(7)).unwrap().rule_count(), 1);
    // The new spelling reads the same file the same way.
    let new = parse(
        "[session]\nhold_time = \"30s\"\n[mcp]\nanswer_hold = \"250ms\"\n[trust]\ncertificate_validity = \"30d\"\n",
    )
    .unwrap();
    assert_eq!(new.session.hold_time, c.session.hold_time);
    assert_eq!(new.mcp.answer_hold, c.mcp.answer_hold);
    assert_eq!(new.trust.certificate_validity, c.trust.certificate_validity);
}

#[test]
fn a_key_written_both_ways_is_refused() {
    let e = parse("[session]\nhold_time = \"30s\"\nhold_time_secs = 30\n").unwrap_err();
    assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("duplicate field `hold_time`"), "{e}");
}

#[test]
fn durations_take_a_unit_and_a_bad_one_names_the_key() {
    let c = parse("[session]\nhold_time = \"2m\"\n[store]\nstall = \"90s\"\n").unwrap();
    assert_eq!(c.session.hold_time, Duration::from_secs(120));
    assert_eq!(c.store.stall, Duration::from_secs(90));
    let e = parse("[session]\nhold_time = \"90 seconds\"\n").unwrap_err();
    let s = e.to_string();
    assert!(
        matches!(e, ConfigError::Parse { line: 2, .. }) && s.contains("session.hold_time"),
        "{s}"
    );
    assert!(s.contains("\"90s\""), "the error shows the format: {s}");
    assert_eq!(
        invalid_keys("[session]\nhold_time = \"1500ms\"\n"),
        ["session.hold_time"],
        "hold times are whole seconds"
    );
}

#[test]
fn unknown_key_is_an_error_with_its_path_and_line() {
    let e = parse("[network]\nlisten = []\nlisten_on = 3\n").unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, ConfigError::Parse { line: 3, .. }), "{s}");
    assert!(s.contains("listen_on"), "{s}");
    assert!(s.contains("network"), "{s}");
}

#[test]
fn wrong_type_names_the_key_path() {
    let e = parse("[[neighbor]]\npeer_id = \"x\"\nasn = 1\n").unwrap_err();
    let s = e.to_string();
    assert!(s.contains("neighbor[0].peer_id"), "{s}");
}

#[test]
fn bad_values_name_the_key_path() {
    let cases = [
        ("[session]\nhold_time = \"2s\"\n", "session.hold_time"),
        (
            "[session]\nconnect_retry_min = \"0s\"\n",
            "session.connect_retry_min",
        ),
        (
            "[session]\nconnect_retry_min = \"30s\"\nconnect_retry_max = \"10s\"\n",
            "session.connect_retry_max",
        ),
        ("[node]\nfederation = \"a b\"\n", "node.federation"),
        ("[node]\nasn = 65001\n", "node.certificate"),
        ("[admin]\nlisten = \"0.0.0.0:80\"\n", "admin.listen"),
        (
            "[discovery]\nbootstrap = [\"/ip4/1.2.3.4/tcp/1\"]\n",
            "discovery.bootstrap[0]",
        ),
        (
            "[[originate]]\nprefix = \"a/b\"\n[[originate]]\nprefix = \"a/b\"\n",
            "originate[1].prefix",
        ),
        ("[mcp]\nmax_calls_per_peer = 0\n", "mcp.max_calls_per_peer"),
        ("[store]\nstall = \"1s\"\n", "store.stall"),
    ];
    for (text, key) in cases {
        assert_eq!(invalid_keys(text), [key], "{text}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "[node]\nfederation = \"a b\"\n[session]\nhold_time = \"2s\"\n\
                [admin]\nlisten = \"0.0.0.0:80\"\n[mcp]\nhop_limit = 0\n\
                [[originate]]\nprefix = \"a/b\"\nagent = \"\"\n\
                [[access]]\nprefixes = [\"a/*\"]\naction = \"deny\"\n";
    assert_eq!(
        invalid_keys(text),
        [
            "node.federation",
            "session.hold_time",
            "admin.listen",
            "mcp.hop_limit",
            "originate[0].agent",
            "access"
        ]
    );
    let shown = parse(text).unwrap_err().to_string();
    assert!(
        shown.starts_with("node.toml: 6 problems:\n  node.federation: "),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 7, "{shown}");
}

#[test]
fn a_neighbor_may_have_its_own_reconnect_backoff() {
    let id = peer(1);
    let s = Duration::from_secs;
    let base = format!(
        "[session]\nconnect_retry_max = \"2m\"\n[[neighbor]]\npeer_id = \"{id}\"\nasn = 65001\npassive = true\n"
    );
    let c = parse(&base).unwrap();
    assert_eq!(c.neighbors[0].connect_retry(&c.session), (s(1), s(120)));
    let own = parse(&format!("{base}connect_retry_min = \"5s\"\n")).unwrap();
    assert_eq!(own.neighbors[0].connect_retry(&own.session), (s(5), s(120)));
    assert_eq!(
        invalid_keys(&format!("{base}connect_retry_min = \"5m\"\n")),
        ["neighbor[0].connect_retry_max"]
    );
}

#[test]
fn neighbor_needs_an_address_unless_passive_and_a_matching_p2p_suffix() {
    let (id, other) = (peer(1), peer(2));
    let no_addr = format!("[[neighbor]]\npeer_id = \"{id}\"\nasn = 65001\n");
    assert_eq!(invalid_keys(&no_addr), ["neighbor[0].address"]);
    let passive = format!("{no_addr}passive = true\n");
    assert!(parse(&passive).is_ok());
    let wrong = format!("{no_addr}address = \"/ip4/127.0.0.1/tcp/1/p2p/{other}\"\n");
    assert_eq!(invalid_keys(&wrong), ["neighbor[0].address"]);
    let good = format!("{no_addr}address = \"/ip4/127.0.0.1/tcp/1/p2p/{id}\"\n");
    let c = parse(&good).unwrap();
    assert_eq!(c.neighbors[0].asn, 65001);
}

#[test]
fn originate_reads_prefix_capabilities_and_communities() {
    let c = parse(
        "[[originate]]\nprefix = \"tools/x/*\"\ncapabilities = [\"a\"]\ncommunities = [\"no-export\", \"65001:7\"]\n",
    )
    .unwrap();
    let o = &c.originate[0];
    assert_eq!(o.prefix.as_str(), "tools/x/*");
    assert_eq!(o.agent, "static");
    assert_eq!(o.communities.len(), 2);
    let e = parse("[[originate]]\nprefix = \"a//b\"\n").unwrap_err();
    assert!(e.to_string().contains("originate[0].prefix"), "{e}");
}

#[test]
fn asn_ranges_parse() {
    assert_eq!(parse_asn_range("65000-65100"), Some(65000..=65100));
    assert_eq!(parse_asn_range("AS7"), Some(7..=7));
    assert_eq!(parse_asn_range("9-1"), None);
}

#[test]
fn agents_are_checked_and_errors_name_the_entry() {
    let c =
        parse("[[agents]]\nid = \"echo\"\nprefix = \"utility/echo/*\"\ncommand = \"echo-agent\"\n")
            .unwrap();
    assert_eq!(c.agent_configs().unwrap()[0].id().as_str(), "echo");
    assert_eq!(
        invalid_keys("[[agents]]\nid = \"x\"\nprefix = \"a\"\n"),
        ["agents[0]"]
    );
}

#[test]
fn mcp_front_off_loopback_needs_a_token() {
    assert_eq!(
        invalid_keys("[mcp]\nlisten = \"0.0.0.0:4181\"\n"),
        ["mcp.listen"]
    );
    let c = parse("[mcp]\nlisten = \"0.0.0.0:4181\"\nbearer_token = \"t0ken\"\n").unwrap();
    assert!(c.mcp.bearer_token.is_some());
    assert!(
        !format!("{c:?}").contains("t0ken"),
        "the token never shows in Debug"
    );
}

#[test]
fn secret_keys_name_the_settings_that_hold_secrets() {
    let c = parse(
        "[mcp]\nbearer_token = \"t0ken-t0ken\"\n[[agents]]\nid = \"a\"\nprefix = \"a/*\"\ncommand = \"x\"\nenv = { KEY = \"v\" }\n[[agents]]\nid = \"b\"\nprefix = \"b/*\"\nurl = \"http://h/mcp\"\nbearer-token = \"y\"\n",
    )
    .unwrap();
    assert_eq!(
        c.secret_keys(),
        vec![
            "mcp.bearer_token",
            "agents[0].env",
            "agents[1].bearer-token"
        ]
    );
    assert!(parse("").unwrap().secret_keys().is_empty());
}

#[test]
fn origins_must_be_origins() {
    assert!(parse("[admin]\nallowed_origins = [\"http://localhost:5173\", \"null\"]\n").is_ok());
    for bad in ["localhost:5173", "http://a/b", "http://a/", "*"] {
        assert_eq!(
            invalid_keys(&format!("[mcp]\nallowed_origins = [{bad:?}]\n")),
            ["mcp.allowed_origins[0]"],
            "{bad}"
        );
    }
}

#[test]
fn a_missing_policy_file_is_named() {
    let err = load_policy_file(Path::new("/nonexistent/policy.toml")).unwrap_err();
    assert!(matches!(
        err,
        crate::core::policy::PolicyLoadError::Io { .. }
    ));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/policy.toml: cannot read")
    );
}

#[test]
fn policy_file_errors_start_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[[apply]]\nneighbors = [\"x\"]\n").unwrap();
    let e = load_policy_file(&p).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:2:14: ", p.display())), "{e}");
}

#[test]
fn access_rules_are_compiled_at_load() {
    assert_eq!(
        invalid_keys("[[access]]\nprefixes = [\"a/*\"]\naction = \"deny\"\n"),
        ["access"]
    );
    let c = parse("[[access]]\ncaller_asns = [\"own\"]\naction = \"allow\"\n").unwrap();
    assert_eq!(c.access_policy(Asn(7)).unwrap().rule_count(), 1);
}

#[test]
fn worker_threads_defaults_to_one_and_is_bounded() {
    assert_eq!(parse("").unwrap().node.worker_threads, 1);
    assert_eq!(
        parse("[node]\nworker_threads = 0\n")
            .unwrap()
            .node
            .worker_threads,
        0
    );
    assert_eq!(
        parse("[node]\nworker_threads = 8\n")
            .unwrap()
            .node
            .worker_threads,
        8
    );
    assert_eq!(
        invalid_keys("[node]\nworker_threads = 5000\n"),
        ["node.worker_threads"]
    );
}

#[test]
fn damping_is_off_by_default_and_takes_small_test_parameters() {
    let d = parse("").unwrap().damping.engine();
    assert!(!d.enabled);
    assert_eq!((d.suppress, d.reuse), (6000, 750));
    let c = parse(
        "[damping]\nenabled = true\nhalf_life = \"2s\"\nsuppress = 2500\nreuse = 750\nmax_suppress = \"20s\"\n",
    )
    .unwrap();
    let d = c.damping.engine();
    assert!(d.enabled);
    assert_eq!(d.half_life, Duration::from_secs(2));
    assert_eq!(d.max_suppress, Duration::from_secs(20));
}

#[test]
fn damping_thresholds_that_cannot_work_are_refused() {
    // Suppress at or under reuse: a path would be reused as it is suppressed.
    assert_eq!(
        invalid_keys("[damping]\nsuppress = 700\nreuse = 750\n"),
        vec!["damping.suppress"]
    );
    // Out of reach: the cap 750 * 2^(15m/15m) = 1500 is under 6000.
    assert_eq!(
        invalid_keys("[damping]\nmax_suppress = \"15m\"\n"),
        vec!["damping.suppress"]
    );
    assert_eq!(
        invalid_keys("[damping]\nhalf_life = \"0s\"\nmax_suppress = \"1s\"\n"),
        vec!["damping.half_life"]
    );
    assert_eq!(
        invalid_keys("[damping]\nmax_suppress = \"2d\"\n"),
        vec!["damping.max_suppress"]
    );
    assert!(parse("[damping]\nsuppress = -1\n").is_err());
    assert!(parse("[damping]\npenalty = 5\n").is_err());
}

#[test]
fn transparent_asns_are_read_and_checked() {
    let c = parse("[trust]\ntransparent_asns = [65300, 65301]\n").unwrap();
    assert_eq!(c.trust.transparent_asns, vec![65300, 65301]);
    assert_eq!(
        invalid_keys(
            "[node]\nasn = 65000\ncertificate = \"self-signed\"\n[trust]\ntransparent_asns = [0, 65000]\n"
        ),
        vec!["trust.transparent_asns[0]", "trust.transparent_asns[1]"]
    );
}

#[test]
fn the_advertisement_interval_is_read_and_bounded() {
    let c = parse("[session]\nmrai = \"30s\"\nmrai_withdrawals = true\n").unwrap();
    assert_eq!(c.session.mrai, std::time::Duration::from_secs(30));
    assert!(c.session.mrai_withdrawals);
    assert_eq!(parse("").unwrap().session.mrai, std::time::Duration::ZERO);
    assert_eq!(
        invalid_keys("[session]\nmrai = \"2h\"\n"),
        vec!["session.mrai"]
    );
}
