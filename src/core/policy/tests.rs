//! Behaviour tests for policy: one behaviour per test, tiny fixtures
//! (style anchor R5). Conditions, actions, verdict semantics, defaults,
//! copy-on-write, load errors, the seed's enterprise example, and property
//! tests that loading and evaluation never panic.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::core::attrs::{Aggregator, AttrValue, ExtraAttr, PathAttrs};
use crate::core::community::Community;
use crate::core::ids::{AgentId, Asn, NodeId};
use crate::core::prefix::Prefix;

// ---- fixtures ----

const LOCAL: Asn = Asn(65001);

fn external() -> PeerCtx {
    PeerCtx {
        asn: Asn(65002),
        node: NodeId::from_u64(2),
        internal: false,
    }
}

fn internal() -> PeerCtx {
    PeerCtx {
        asn: LOCAL,
        node: NodeId::from_u64(3),
        internal: true,
    }
}

fn ctx(peer: PeerCtx, direction: Direction) -> PolicyCtx {
    PolicyCtx {
        local_asn: LOCAL,
        peer,
        direction,
    }
}

fn load(text: &str) -> PolicySet {
    PolicySet::from_toml_str(text, "test.toml").unwrap_or_else(|e| panic!("load failed:\n{e}"))
}

fn load_err(text: &str) -> String {
    match PolicySet::from_toml_str(text, "test.toml") {
        Ok(_) => panic!("expected a load error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn path(asns: &[u32]) -> PathAttrs {
    PathAttrs {
        as_path: asns.iter().copied().map(Asn).collect(),
        ..PathAttrs::default()
    }
}

fn comms(cs: &[&str]) -> Vec<Community> {
    cs.iter().map(|c| c.parse().unwrap()).collect()
}

fn pfx(s: &str) -> Prefix {
    Prefix::new(s).unwrap()
}

/// Evaluates `attrs` for prefix `p` and agent `agent`; returns the decision
/// and the attributes after policy.
fn run(
    set: &PolicySet,
    c: PolicyCtx,
    p: &str,
    agent: &str,
    attrs: PathAttrs,
) -> (Decision, Arc<PathAttrs>) {
    let mut a = Arc::new(PathAttrs {
        agent: AgentId::new(agent),
        ..attrs
    });
    let d = set.evaluate(&c, &pfx(p), &mut a);
    (d, a)
}

/// One statement that accepts what `cond` matches; everything else is
/// rejected by the configured default. So "accepted" means "matched".
fn matcher(cond: &str) -> PolicySet {
    load(&format!(
        r#"
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
match = {{ {cond} }}
then = {{ verdict = "accept" }}

[[apply]]
neighbors = ["*"]
import = ["p"]
default-import = "reject"
"#
    ))
}

fn hits_with(set: &PolicySet, peer: PeerCtx, p: &str, agent: &str, attrs: PathAttrs) -> bool {
    run(set, ctx(peer, Direction::Import), p, agent, attrs)
        .0
        .is_accept()
}

fn hits(set: &PolicySet, attrs: PathAttrs) -> bool {
    hits_with(set, external(), "coding/ts/lint", "agent-1", attrs)
}

/// One statement that always matches and runs `then`, on export to every
/// peer (export, so `prepend` is allowed).
fn action(then: &str) -> PolicySet {
    load(&format!(
        r#"
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
then = {{ {then} }}

[[apply]]
neighbors = ["*"]
export = ["p"]
"#
    ))
}

fn act(then: &str, attrs: PathAttrs) -> (Decision, Arc<PathAttrs>) {
    run(
        &action(then),
        ctx(external(), Direction::Export),
        "coding/ts/lint",
        "agent-1",
        attrs,
    )
}

fn stmt(policy: &str, statement: &str) -> DecidedBy {
    DecidedBy::Statement(Arc::new(StatementLabel {
        policy: policy.into(),
        statement: statement.into(),
    }))
}

// ---- conditions ----

#[test]
fn empty_match_matches_every_route() {
    let set = load(
        r#"
[[policy]]
name = "p"
[[policy.statement]]
name = "all"
then = { verdict = "accept" }
[[apply]]
neighbors = ["external"]
import = ["p"]
"#,
    );
    assert!(hits(&set, path(&[65002, 7])));
    assert!(hits(&set, PathAttrs::default()));
}

#[test]
fn prefix_exact_matches_only_the_same_prefix() {
    let set = matcher(r#"prefix.exact = ["coding/*"]"#);
    let a = PathAttrs::default;
    assert!(hits_with(&set, external(), "coding/*", "x", a()));
    assert!(!hits_with(&set, external(), "coding/ts/*", "x", a()));
    assert!(!hits_with(&set, external(), "coding/ts", "x", a()));
}

#[test]
fn prefix_covered_by_matches_the_wildcard_and_everything_below() {
    let set = matcher(r#"prefix.covered-by = ["coding/*"]"#);
    let a = PathAttrs::default;
    assert!(hits_with(&set, external(), "coding/*", "x", a()));
    assert!(hits_with(&set, external(), "coding/ts/*", "x", a()));
    assert!(hits_with(&set, external(), "coding/ts/lint", "x", a()));
    assert!(!hits_with(&set, external(), "codingx/ts", "x", a()));
    assert!(!hits_with(&set, external(), "*", "x", a()));
}

#[test]
fn prefix_condition_can_name_a_prefix_set() {
    let set = load(
        r#"
[sets.prefixes]
tools = ["coding/*", "math/add"]
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
match = { prefix.covered-by = "tools" }
then = { verdict = "accept" }
[[apply]]
neighbors = ["*"]
import = ["p"]
"#,
    );
    let a = PathAttrs::default;
    assert!(hits_with(&set, external(), "coding/go", "x", a()));
    assert!(hits_with(&set, external(), "math/add", "x", a()));
    assert!(!hits_with(&set, external(), "math/add/fast", "x", a()));
}

#[test]
fn large_prefix_sets_match_like_small_ones() {
    // More than the linear-scan threshold, so the trie answers.
    let names: Vec<String> = (0..20).map(|i| format!("\"t{i}/*\"")).collect();
    let set = matcher(&format!("prefix.covered-by = [{}]", names.join(", ")));
    let a = PathAttrs::default;
    assert!(hits_with(&set, external(), "t7/x/y", "x", a()));
    assert!(hits_with(&set, external(), "t19/*", "x", a()));
    assert!(!hits_with(&set, external(), "t20/x", "x", a()));
    assert!(!hits_with(&set, external(), "*", "x", a()));
}

#[test]
fn as_path_from_matches_the_origin_as() {
    let set = matcher("as-path.from = [7]");
    assert!(hits(&set, path(&[65002, 7])));
    assert!(!hits(&set, path(&[7, 65002])));
}

#[test]
fn as_path_from_local_asn_matches_routes_with_an_empty_path() {
    let set = matcher("as-path.from = [65001]");
    assert!(hits(&set, PathAttrs::default()));
    assert!(!hits(&set, path(&[65002])));
}

#[test]
fn as_path_not_from_excludes_the_listed_origins() {
    let set = matcher("as-path.not-from = [65001]");
    assert!(hits(&set, path(&[65002])));
    assert!(!hits(&set, PathAttrs::default()));
    assert!(!hits(&set, path(&[65002, 65001])));
}

#[test]
fn asn_written_as_text_matches_like_a_number() {
    let set = matcher(r#"as-path.from = ["AS7"]"#);
    assert!(hits(&set, path(&[65002, 7])));
}

#[test]
fn as_path_contains_any_looks_at_every_hop() {
    let set = matcher("as-path.contains-any = [9, 7]");
    assert!(hits(&set, path(&[65002, 7, 8])));
    assert!(!hits(&set, path(&[65002, 8])));
    // An empty path contains nothing, not even the local AS.
    assert!(!hits(
        &matcher("as-path.contains-any = [65001]"),
        PathAttrs::default()
    ));
}

#[test]
fn as_path_contains_any_sees_the_aggregate_as_set() {
    let set = matcher("as-path.contains-any = [9]");
    let agg = PathAttrs {
        as_path: vec![Asn(65002)],
        aggregator: Some(Aggregator {
            asn: Asn(65002),
            node: NodeId::from_u64(9),
            as_set: vec![Asn(9)],
        }),
        ..PathAttrs::default()
    };
    assert!(hits(&set, agg));
}

#[test]
fn as_path_contains_all_needs_every_listed_asn() {
    let set = matcher("as-path.contains-all = [7, 8]");
    assert!(hits(&set, path(&[8, 65002, 7])));
    assert!(!hits(&set, path(&[65002, 7])));
}

#[test]
fn as_path_length_bounds_are_inclusive() {
    let set = matcher("as-path = { min-length = 1, max-length = 2 }");
    assert!(!hits(&set, path(&[])));
    assert!(hits(&set, path(&[1])));
    assert!(hits(&set, path(&[1, 2])));
    assert!(!hits(&set, path(&[1, 2, 3])));
}

#[test]
fn as_path_regex_matches_the_path_as_decimals_nearest_first() {
    let set = matcher(r#"as-path.regex = "^65002 65000$""#);
    assert!(hits(&set, path(&[65002, 65000])));
    assert!(!hits(&set, path(&[65000, 65002])));
    assert!(!hits(&set, path(&[65002, 65000, 1])));
}

#[test]
fn as_path_regex_sees_an_empty_string_for_local_routes() {
    let set = matcher(r#"as-path.regex = "^$""#);
    assert!(hits(&set, PathAttrs::default()));
    assert!(!hits(&set, path(&[1])));
}

#[test]
fn capabilities_any_needs_one_shared_tag() {
    let set = matcher(r#"capabilities.any = ["coding", "testing"]"#);
    assert!(hits(
        &set,
        PathAttrs::default().with_capabilities(["testing", "zzz"])
    ));
    assert!(!hits(
        &set,
        PathAttrs::default().with_capabilities(["lint"])
    ));
}

#[test]
fn capabilities_all_needs_every_tag() {
    let set = matcher(r#"capabilities.all = ["coding", "testing"]"#);
    assert!(hits(
        &set,
        PathAttrs::default().with_capabilities(["testing", "coding", "x"])
    ));
    assert!(!hits(
        &set,
        PathAttrs::default().with_capabilities(["coding"])
    ));
}

#[test]
fn communities_any_needs_one_shared_community() {
    let set = matcher(r#"communities.any = ["confidential", "65001:7"]"#);
    let with = |cs: &[&str]| PathAttrs::default().with_communities(comms(cs));
    assert!(hits(&set, with(&["65001:7"])));
    assert!(hits(&set, with(&["confidential", "1:2:3"])));
    assert!(!hits(&set, with(&["public"])));
}

#[test]
fn communities_all_needs_every_community() {
    let set = matcher(r#"communities.all = ["a", "1:2:3"]"#);
    let with = |cs: &[&str]| PathAttrs::default().with_communities(comms(cs));
    assert!(hits(&set, with(&["1:2:3", "a", "b"])));
    assert!(!hits(&set, with(&["a"])));
}

#[test]
fn communities_condition_can_name_a_community_set() {
    let set = load(
        r#"
[sets.communities]
sensitive = ["confidential", "pii"]
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
match = { communities.any = "sensitive" }
then = { verdict = "accept" }
[[apply]]
neighbors = ["*"]
import = ["p"]
"#,
    );
    assert!(hits(
        &set,
        PathAttrs::default().with_communities(comms(&["pii"]))
    ));
    assert!(!hits(&set, PathAttrs::default()));
}

#[test]
fn capabilities_condition_can_name_a_capability_set() {
    let set = load(
        r#"
[sets.capabilities]
ml = ["model-training", "inference"]
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
match = { capabilities.any = "ml" }
then = { verdict = "accept" }
[[apply]]
neighbors = ["*"]
import = ["p"]
"#,
    );
    assert!(hits(
        &set,
        PathAttrs::default().with_capabilities(["inference"])
    ));
    assert!(!hits(
        &set,
        PathAttrs::default().with_capabilities(["coding"])
    ));
}

#[test]
fn neighbor_asn_matches_the_peer_asn_through_a_set() {
    let set = load(
        r#"
[sets.asns]
partners = [65002, "AS65003"]
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
match = { neighbor.asn = "partners" }
then = { verdict = "accept" }
[[apply]]
neighbors = ["*"]
import = ["p"]
default-import = "reject"
"#,
    );
    let a = PathAttrs::default;
    assert!(hits_with(&set, external(), "x", "a", a()));
    assert!(!hits_with(&set, internal(), "x", "a", a()));
}

fn peer_in(asn: u32) -> PeerCtx {
    PeerCtx {
        asn: Asn(asn),
        node: NodeId::from_u64(7),
        internal: false,
    }
}

#[test]
fn asn_ranges_match_every_asn_inside_and_none_outside() {
    let set = load(
        r#"
[sets.asns]
federation = ["64512-65534", 4200000000, "AS100-AS102"]
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
match = { neighbor.asn = "federation" }
then = { verdict = "accept" }
[[apply]]
neighbors = ["*"]
import = ["p"]
default-import = "reject"
"#,
    );
    let a = PathAttrs::default;
    for inside in [64512, 64513, 65000, 65534, 4200000000, 100, 101, 102] {
        assert!(hits_with(&set, peer_in(inside), "x", "a", a()), "{inside}");
    }
    for outside in [64511, 65535, 4199999999, 4200000001, 99, 103, 1] {
        assert!(
            !hits_with(&set, peer_in(outside), "x", "a", a()),
            "{outside}"
        );
    }
}

#[test]
fn overlapping_and_adjacent_asn_ranges_all_match() {
    let set = matcher(r#"neighbor.asn = ["10-20", "15-30", "31", "40-40", "5"]"#);
    let a = PathAttrs::default;
    for inside in [5, 10, 20, 25, 30, 31, 40] {
        assert!(hits_with(&set, peer_in(inside), "x", "a", a()), "{inside}");
    }
    for outside in [4, 6, 9, 32, 39, 41] {
        assert!(
            !hits_with(&set, peer_in(outside), "x", "a", a()),
            "{outside}"
        );
    }
}

#[test]
fn asn_ranges_work_in_path_conditions_except_contains_all() {
    let set = matcher(r#"as-path.from = ["65000-65010"]"#);
    assert!(hits(&set, path(&[1, 65005])));
    assert!(!hits(&set, path(&[65005, 1])));
    let e = load_err(
        r#"
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
match = { as-path.contains-all = ["1-100000"] }
then = { verdict = "accept" }
"#,
    );
    assert!(e.contains("contains-all takes single AS numbers"), "{e}");
}

#[test]
fn bad_asn_ranges_are_load_errors() {
    for (range, want) in [
        ("65010-65000", "is empty"),
        ("0-10", "AS 0 is reserved"),
        ("10-x", "invalid AS number"),
        ("-10", "invalid AS number"),
        ("10-4294967296", "invalid AS number"),
    ] {
        let e = load_err(&format!(
            r#"
[sets.asns]
f = ["{range}"]
"#
        ));
        assert!(e.contains(want), "{range}: {e}");
    }
}

#[test]
fn neighbor_node_matches_the_peer_node_id() {
    let node = NodeId::from_u64(2);
    let set = matcher(&format!(r#"neighbor.node = ["{node}"]"#));
    let a = PathAttrs::default;
    assert!(hits_with(&set, external(), "x", "a", a()));
    assert!(!hits_with(&set, internal(), "x", "a", a()));
}

#[test]
fn neighbor_kind_tells_internal_from_external_peers() {
    let set = matcher(r#"neighbor.kind = "internal""#);
    let a = PathAttrs::default;
    assert!(hits_with(&set, internal(), "x", "a", a()));
    assert!(!hits_with(&set, external(), "x", "a", a()));
}

#[test]
fn med_range_selects_healthy_origins() {
    let set = matcher("med.max = 50");
    let med = |m| PathAttrs {
        med: m,
        ..PathAttrs::default()
    };
    assert!(hits(&set, med(50)));
    assert!(!hits(&set, med(51)));
    let at_least = matcher("med.min = 10");
    assert!(hits(&at_least, med(10)));
    assert!(!hits(&at_least, med(9)));
}

#[test]
fn local_pref_range_matches_inclusive_bounds() {
    let set = matcher("local-pref = { min = 100, max = 150 }");
    let lp = |v| PathAttrs {
        local_pref: v,
        ..PathAttrs::default()
    };
    assert!(hits(&set, lp(150)));
    assert!(!hits(&set, lp(99)));
}

#[test]
fn agent_id_matches_exactly() {
    let set = matcher(r#"agent.id = ["budget", "audit"]"#);
    let a = PathAttrs::default;
    assert!(hits_with(&set, external(), "x", "audit", a()));
    assert!(!hits_with(&set, external(), "x", "audit-2", a()));
}

#[test]
fn agent_glob_supports_star_and_question_mark_and_nothing_else() {
    let set = matcher(r#"agent.glob = ["fin-*", "a.?"]"#);
    let a = PathAttrs::default;
    assert!(hits_with(&set, external(), "x", "fin-budget", a()));
    assert!(hits_with(&set, external(), "x", "a.b", a()));
    // `.` is literal in a glob, not "any character".
    assert!(!hits_with(&set, external(), "x", "axb", a()));
    assert!(!hits_with(&set, external(), "x", "xfin-budget", a()));
}

#[test]
fn not_holds_when_its_conditions_do_not_all_hold() {
    let set = matcher(r#"not = { communities.any = ["confidential"], med.max = 10 }"#);
    let with = |cs: &[&str], med| PathAttrs {
        med,
        ..PathAttrs::default().with_communities(comms(cs))
    };
    assert!(hits(&set, with(&["confidential"], 20)));
    assert!(hits(&set, with(&[], 5)));
    assert!(!hits(&set, with(&["confidential"], 5)));
}

#[test]
fn all_conditions_of_a_statement_must_hold() {
    let set = matcher(r#"capabilities.any = ["coding"], as-path.from = [7]"#);
    let coding_from = |o| path(&[o]).with_capabilities(["coding"]);
    assert!(hits(&set, coding_from(7)));
    assert!(!hits(&set, coding_from(8)));
    assert!(!hits(&set, path(&[7])));
}

// ---- actions ----

#[test]
fn local_pref_action_replaces_the_existing_value() {
    let (d, a) = act(r#"verdict = "accept", local-pref = 150"#, path(&[65002]));
    assert!(d.is_accept());
    assert_eq!(a.local_pref, 150);
}

#[test]
fn med_action_sets_the_health_metric() {
    let (_, a) = act(r#"verdict = "accept", med = 7"#, PathAttrs::default());
    assert_eq!(a.med, 7);
}

#[test]
fn communities_add_keeps_existing_ones() {
    let start = PathAttrs::default().with_communities(comms(&["x"]));
    let (_, a) = act(
        r#"verdict = "accept", communities.add = ["y", "1:1"]"#,
        start,
    );
    assert_eq!(a.communities, comms(&["1:1", "x", "y"]));
}

#[test]
fn communities_remove_drops_only_the_listed_ones() {
    let start = PathAttrs::default().with_communities(comms(&["x", "y", "1:1"]));
    let (_, a) = act(
        r#"verdict = "accept", communities.remove = ["y", "z"]"#,
        start,
    );
    assert_eq!(a.communities, comms(&["1:1", "x"]));
}

#[test]
fn communities_set_replaces_all_but_well_known_ones() {
    let start = PathAttrs::default().with_communities(comms(&["x", "no-export"]));
    let (_, a) = act(r#"verdict = "accept", communities.set = ["y"]"#, start);
    assert_eq!(
        a.communities,
        PathAttrs::default()
            .with_communities(comms(&["y", "no-export"]))
            .communities
    );
}

#[test]
fn communities_set_to_an_empty_list_clears_them() {
    let start = PathAttrs::default().with_communities(comms(&["x", "1:2"]));
    let (_, a) = act(r#"verdict = "accept", communities.set = []"#, start);
    assert!(a.communities.is_empty());
}

#[test]
fn community_actions_can_name_a_community_set() {
    let set = load(
        r#"
[sets.communities]
tags = ["a", "b"]
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
then = { verdict = "accept", communities.add = "tags" }
[[apply]]
neighbors = ["*"]
import = ["p"]
"#,
    );
    let (_, a) = run(
        &set,
        ctx(external(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(a.communities, comms(&["a", "b"]));
}

#[test]
fn prepend_on_export_puts_the_local_asn_in_front_n_times() {
    let (_, a) = act(r#"verdict = "accept", prepend = 2"#, path(&[7]));
    assert_eq!(a.as_path, vec![LOCAL, LOCAL, Asn(7)]);
}

#[test]
fn prepend_is_skipped_toward_internal_peers() {
    let mut a = Arc::new(path(&[7]));
    let before = a.clone();
    let d = action(r#"verdict = "accept", prepend = 2"#).evaluate(
        &ctx(internal(), Direction::Export),
        &pfx("x"),
        &mut a,
    );
    assert!(d.is_accept());
    assert!(Arc::ptr_eq(&a, &before));
}

#[test]
fn extra_action_sets_attributes_that_stop_at_the_as_border() {
    let (_, a) = act(
        r#"verdict = "accept", extra = { tier = "gold", weight = 5, audited = true }"#,
        PathAttrs::default(),
    );
    let get = |k: &str| a.extra.get(k).cloned();
    assert_eq!(
        get("tier"),
        Some(ExtraAttr {
            transitive: false,
            value: AttrValue::Text("gold".into())
        })
    );
    assert_eq!(get("weight").map(|e| e.value), Some(AttrValue::Int(5)));
    assert_eq!(get("audited").map(|e| e.value), Some(AttrValue::Bool(true)));
}

#[test]
fn actions_of_a_rejecting_statement_do_not_turn_it_into_an_accept() {
    let (d, _) = act(
        r#"verdict = "reject", local-pref = 1"#,
        PathAttrs::default(),
    );
    assert_eq!(d.verdict, Verdict::Reject);
}

// ---- verdicts, chains, defaults ----

/// Two policies: `first` tags and falls through (or decides, per `verdict`),
/// `second` accepts with local-pref 200.
fn two_policies(first_verdict: &str) -> PolicySet {
    load(&format!(
        r#"
[[policy]]
name = "first"
[[policy.statement]]
name = "tag"
then = {{ verdict = "{first_verdict}", communities.add = ["seen"] }}
[[policy.statement]]
name = "after-tag"
then = {{ verdict = "accept", local-pref = 300 }}

[[policy]]
name = "second"
[[policy.statement]]
name = "prefer"
then = {{ verdict = "accept", local-pref = 200 }}

[[apply]]
neighbors = ["*"]
import = ["first", "second"]
"#
    ))
}

#[test]
fn accept_verdict_skips_later_statements_and_policies() {
    let (d, a) = run(
        &two_policies("accept"),
        ctx(external(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(d.decided_by, stmt("first", "tag"));
    assert_eq!(a.local_pref, 100);
    assert!(a.has_community(&"seen".parse().unwrap()));
}

#[test]
fn reject_verdict_skips_later_statements_and_policies() {
    let (d, _) = run(
        &two_policies("reject"),
        ctx(internal(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(d.verdict, Verdict::Reject);
    assert_eq!(d.decided_by, stmt("first", "tag"));
}

#[test]
fn next_applies_actions_and_continues_with_the_next_statement() {
    let (d, a) = run(
        &two_policies("next"),
        ctx(external(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(d.decided_by, stmt("first", "after-tag"));
    assert_eq!(a.local_pref, 300);
    assert!(a.has_community(&"seen".parse().unwrap()));
}

#[test]
fn next_at_the_end_of_a_policy_continues_with_the_next_policy() {
    let set = load(
        r#"
[[policy]]
name = "first"
[[policy.statement]]
name = "tag"
then = { verdict = "next", med = 9 }
[[policy]]
name = "second"
[[policy.statement]]
name = "prefer"
then = { verdict = "accept", local-pref = 200 }
[[apply]]
neighbors = ["*"]
import = ["first", "second"]
"#,
    );
    let (d, a) = run(
        &set,
        ctx(external(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(d.decided_by, stmt("second", "prefer"));
    assert_eq!((a.med, a.local_pref), (9, 200));
}

#[test]
fn later_statements_see_what_earlier_next_statements_changed() {
    let set = load(
        r#"
[[policy]]
name = "p"
[[policy.statement]]
name = "tag"
then = { verdict = "next", communities.add = ["tagged"] }
[[policy.statement]]
name = "reject-tagged"
match = { communities.any = ["tagged"] }
then = { verdict = "reject" }
[[apply]]
neighbors = ["*"]
import = ["p"]
default-import = "accept"
"#,
    );
    let (d, _) = run(
        &set,
        ctx(external(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(d.decided_by, stmt("p", "reject-tagged"));
}

#[test]
fn chain_runs_policies_in_the_listed_order() {
    let set = load(
        r#"
[[policy]]
name = "a"
[[policy.statement]]
name = "s"
then = { verdict = "accept" }
[[policy]]
name = "b"
[[policy.statement]]
name = "s"
then = { verdict = "reject" }
[[apply]]
neighbors = ["external"]
import = ["b", "a"]
[[apply]]
neighbors = ["internal"]
import = ["a", "b"]
"#,
    );
    let c = |p| ctx(p, Direction::Import);
    let ext = run(&set, c(external()), "x", "a", PathAttrs::default()).0;
    let int = run(&set, c(internal()), "x", "a", PathAttrs::default()).0;
    assert_eq!(ext.decided_by, stmt("b", "s"));
    assert_eq!(int.decided_by, stmt("a", "s"));
}

#[test]
fn without_policy_external_peers_exchange_nothing() {
    let set = PolicySet::empty();
    for dir in [Direction::Import, Direction::Export] {
        let (d, _) = run(&set, ctx(external(), dir), "x", "a", PathAttrs::default());
        assert_eq!(d.verdict, Verdict::Reject);
        assert_eq!(
            d.decided_by,
            DecidedBy::Default(DefaultReason::ExternalPeer)
        );
    }
}

#[test]
fn without_policy_internal_peers_exchange_everything() {
    let set = PolicySet::empty();
    for dir in [Direction::Import, Direction::Export] {
        let (d, _) = run(&set, ctx(internal(), dir), "x", "a", PathAttrs::default());
        assert_eq!(d.verdict, Verdict::Accept);
        assert_eq!(
            d.decided_by,
            DecidedBy::Default(DefaultReason::InternalPeer)
        );
    }
}

#[test]
fn undecided_external_route_is_rejected_unless_a_default_is_configured() {
    let filter = r#"
[[policy]]
name = "p"
[[policy.statement]]
name = "never"
match = { agent.id = ["nobody"] }
then = { verdict = "accept" }
"#;
    let implicit = load(&format!(
        "{filter}[[apply]]\nneighbors = [\"external\"]\nimport = [\"p\"]\n"
    ));
    let explicit = load(&format!(
        "{filter}[[apply]]\nneighbors = [\"external\"]\nimport = [\"p\"]\ndefault-import = \"accept\"\n"
    ));
    let c = ctx(external(), Direction::Import);
    let (d1, _) = run(&implicit, c, "x", "a", PathAttrs::default());
    let (d2, _) = run(&explicit, c, "x", "a", PathAttrs::default());
    assert_eq!(d1.verdict, Verdict::Reject);
    assert_eq!(d2.verdict, Verdict::Accept);
    assert_eq!(d2.decided_by, DecidedBy::Default(DefaultReason::Configured));
}

#[test]
fn configured_default_can_reject_internal_routes() {
    let set = load("[[apply]]\nneighbors = [\"internal\"]\ndefault-export = \"reject\"\n");
    let (d, _) = run(
        &set,
        ctx(internal(), Direction::Export),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(d.verdict, Verdict::Reject);
    let (imp, _) = run(
        &set,
        ctx(internal(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(
        imp.decided_by,
        DecidedBy::Default(DefaultReason::InternalPeer)
    );
}

#[test]
fn most_specific_apply_wins_node_then_asn_then_kind_then_star() {
    let node = NodeId::from_u64(2);
    let set = load(&format!(
        r#"
[[apply]]
neighbors = ["*"]
default-import = "reject"
[[apply]]
neighbors = ["external"]
default-import = "accept"
[[apply]]
neighbors = ["as65002"]
default-import = "reject"
[[apply]]
neighbors = ["node:{node}"]
default-import = "accept"
"#
    ));
    let verdict = |peer| {
        run(
            &set,
            ctx(peer, Direction::Import),
            "x",
            "a",
            PathAttrs::default(),
        )
        .0
        .verdict
    };
    let other_node = PeerCtx {
        node: NodeId::from_u64(99),
        ..external()
    };
    let other_as = PeerCtx {
        asn: Asn(65009),
        ..other_node
    };
    assert_eq!(verdict(external()), Verdict::Accept); // node
    assert_eq!(verdict(other_node), Verdict::Reject); // asn
    assert_eq!(verdict(other_as), Verdict::Accept); // external
    assert_eq!(verdict(internal()), Verdict::Reject); // *
}

#[test]
fn peer_no_apply_selects_gets_the_rfc8212_defaults() {
    let set = load("[[apply]]\nneighbors = [\"as65009\"]\ndefault-import = \"accept\"\n");
    let (d, _) = run(
        &set,
        ctx(external(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(
        d.decided_by,
        DecidedBy::Default(DefaultReason::ExternalPeer)
    );
}

#[test]
fn cached_chain_decides_like_the_policy_set() {
    let set = two_policies("next");
    let c = ctx(external(), Direction::Import);
    let chain = set.chain_for(&c.peer, c.direction);
    assert_eq!(
        chain.policy_names().collect::<Vec<_>>(),
        ["first", "second"]
    );
    let mut a1 = Arc::new(PathAttrs::default());
    let mut a2 = a1.clone();
    let d1 = set.evaluate(&c, &pfx("x"), &mut a1);
    let d2 = chain.evaluate(&c, &pfx("x"), &mut a2);
    assert_eq!(d1, d2);
    assert_eq!(a1, a2);
}

#[test]
fn decision_explains_itself_in_words() {
    let (d, _) = run(
        &two_policies("accept"),
        ctx(external(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(
        d.to_string(),
        "accept by policy \"first\", statement \"tag\""
    );
    let (d, _) = run(
        &PolicySet::empty(),
        ctx(external(), Direction::Export),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(
        d.to_string(),
        "reject by the default for external peers (RFC 8212)"
    );
}

// ---- copy-on-write ----

#[test]
fn attributes_keep_their_arc_when_no_action_fires() {
    let set = matcher(r#"capabilities.any = ["coding"]"#);
    let mut a = Arc::new(path(&[65002]).with_capabilities(["coding"]));
    let before = a.clone();
    let d = set.evaluate(&ctx(external(), Direction::Import), &pfx("x"), &mut a);
    assert!(d.is_accept());
    assert!(Arc::ptr_eq(&a, &before));
}

#[test]
fn action_that_changes_nothing_keeps_the_arc() {
    let mut a = Arc::new(PathAttrs::default().with_communities(comms(&["x"])));
    let before = a.clone();
    action(r#"verdict = "accept", local-pref = 100, communities.add = ["x"], communities.remove = ["y"], communities.set = ["x"]"#)
        .evaluate(&ctx(external(), Direction::Export), &pfx("x"), &mut a);
    assert!(Arc::ptr_eq(&a, &before));
}

#[test]
fn modified_attributes_get_a_new_arc_and_the_shared_original_is_untouched() {
    let shared = Arc::new(PathAttrs::default());
    let mut a = shared.clone();
    action(r#"verdict = "accept", local-pref = 150, med = 3"#).evaluate(
        &ctx(external(), Direction::Export),
        &pfx("x"),
        &mut a,
    );
    assert!(!Arc::ptr_eq(&a, &shared));
    assert_eq!((a.local_pref, a.med), (150, 3));
    assert_eq!((shared.local_pref, shared.med), (100, 0));
}

// ---- load errors ----

#[test]
fn toml_syntax_error_gives_line_and_column() {
    let e = load_err("[[policy]]\nname = \"p\n");
    assert!(e.starts_with("test.toml:2:"), "{e}");
}

#[test]
fn unknown_key_names_the_field_and_line() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"accept\", local_pref = 5 }\n",
    );
    assert!(e.starts_with("test.toml:5:"), "{e}");
    assert!(e.contains("policy[0].statement[0].then"), "{e}");
    assert!(e.contains("local_pref"), "{e}");
}

#[test]
fn wrong_type_names_the_field_path() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"accept\", local-pref = \"high\" }\n",
    );
    assert!(e.starts_with("test.toml:5:"), "{e}");
    assert!(e.contains("policy[0].statement[0].then.local-pref"), "{e}");
}

#[test]
fn unknown_verdict_lists_the_valid_ones() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"allow\" }\n",
    );
    assert!(e.contains("policy[0].statement[0].then.verdict"), "{e}");
    assert!(e.contains("accept") && e.contains("next"), "{e}");
}

#[test]
fn missing_verdict_is_an_error_at_the_then_table() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { med = 1 }\n",
    );
    assert!(e.starts_with("test.toml:5:"), "{e}");
    assert!(e.contains("verdict"), "{e}");
}

#[test]
fn bad_regex_gives_line_field_and_one_line_reason() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\n  match = { as-path.regex = \"((\" }\nthen = { verdict = \"accept\" }\n",
    );
    assert_eq!(
        e,
        "test.toml:5:29: policy[0].statement[0].match.as-path.regex: invalid regex \"((\": unclosed group"
    );
}

#[test]
fn bad_prefix_points_at_the_list_item() {
    let e = load_err("[sets.prefixes]\ntools = [\"ok/*\", \"a//b\"]\n");
    assert_eq!(
        e,
        "test.toml:2:18: sets.prefixes.tools[1]: invalid prefix \"a//b\": segment 1 is empty (leading, trailing or doubled '/')"
    );
}

#[test]
fn bad_community_points_at_the_list_item() {
    let e = load_err("[sets.communities]\nc = [\"70000:1\"]\n");
    assert!(
        e.starts_with("test.toml:2:6: sets.communities.c[0]: invalid community"),
        "{e}"
    );
}

#[test]
fn bad_asn_points_at_the_list_item() {
    let e = load_err("[sets.asns]\nus = [65001, -1, \"ASX\", 0]\n");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].starts_with("test.toml:2:14: sets.asns.us[1]: invalid AS number"),
        "{e}"
    );
    assert!(
        lines[1].starts_with("test.toml:2:18: sets.asns.us[2]"),
        "{e}"
    );
    assert!(lines[2].contains("reserved"), "{e}");
}

#[test]
fn unknown_set_is_an_error_that_suggests_an_inline_list() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nmatch = { communities.any = \"confidential\" }\nthen = { verdict = \"reject\" }\n",
    );
    assert!(
        e.starts_with("test.toml:5:29: policy[0].statement[0].match.communities.any: unknown communities set \"confidential\""),
        "{e}"
    );
    assert!(e.contains("[\"confidential\"]"), "{e}");
}

#[test]
fn unknown_set_points_out_a_set_of_another_kind() {
    let e = load_err(
        "[sets.asns]\nus = [1]\n[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nmatch = { prefix.exact = \"us\" }\nthen = { verdict = \"reject\" }\n",
    );
    assert!(e.contains("[sets.asns] has a set of that name"), "{e}");
}

#[test]
fn unknown_policy_in_an_apply_is_an_error() {
    let e = load_err("[[apply]]\nneighbors = [\"*\"]\nexport = [\"nope\"]\n");
    assert_eq!(
        e,
        "test.toml:3:11: apply[0].export[0]: unknown policy \"nope\""
    );
}

#[test]
fn prepend_in_an_import_chain_is_refused() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"accept\", prepend = 2 }\n[[apply]]\nneighbors = [\"*\"]\nimport = [\"p\"]\nexport = [\"p\"]\n",
    );
    assert!(
        e.starts_with(
            "test.toml:8:11: apply[0].import[0]: policy \"p\" prepends the AS path (line 5)"
        ),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "export use is fine: {e}");
}

#[test]
fn prepend_count_must_be_in_range() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"accept\", prepend = 99 }\n",
    );
    assert!(
        e.contains("policy[0].statement[0].then.prepend: prepend count 99 is out of range"),
        "{e}"
    );
}

#[test]
fn duplicate_policy_names_are_refused() {
    let e = load_err("[[policy]]\nname = \"p\"\n[[policy]]\nname = \"p\"\n");
    assert_eq!(
        e,
        "test.toml:4:8: policy[1].name: duplicate policy \"p\" (first at line 2)"
    );
}

#[test]
fn duplicate_statement_names_in_a_policy_are_refused() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"next\" }\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"accept\" }\n",
    );
    assert!(
        e.starts_with("test.toml:7:8: policy[0].statement[1].name: duplicate statement \"s\""),
        "{e}"
    );
}

#[test]
fn a_selector_used_by_two_applies_is_refused() {
    let e =
        load_err("[[apply]]\nneighbors = [\"as65002\"]\n[[apply]]\nneighbors = [\"AS65002\"]\n");
    assert_eq!(
        e,
        "test.toml:4:14: apply[1].neighbors[0]: neighbor selector \"AS65002\" is already used by apply[0]"
    );
}

#[test]
fn bad_selector_lists_the_valid_forms() {
    let e = load_err("[[apply]]\nneighbors = [\"peers\"]\n");
    assert!(
        e.starts_with("test.toml:2:14: apply[0].neighbors[0]: invalid neighbor selector"),
        "{e}"
    );
}

#[test]
fn min_greater_than_max_is_refused() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nmatch = { med = { min = 9, max = 3 } }\nthen = { verdict = \"accept\" }\n",
    );
    assert!(
        e.contains("policy[0].statement[0].match.med.min: min (9) is greater than max (3)"),
        "{e}"
    );
}

#[test]
fn removing_a_well_known_community_is_refused() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"accept\", communities.remove = [\"no-export\"] }\n",
    );
    assert!(
        e.contains(
            "then.communities.remove: policy cannot remove the well-known community no-export"
        ),
        "{e}"
    );
}

#[test]
fn empty_list_in_a_match_is_refused() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nmatch = { as-path.from = [] }\nthen = { verdict = \"accept\" }\n",
    );
    assert!(e.contains("match.as-path.from: an empty list"), "{e}");
}

#[test]
fn empty_not_is_refused() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nmatch = { not = {} }\nthen = { verdict = \"accept\" }\n",
    );
    assert!(e.contains("match.not: an empty `not` never matches"), "{e}");
}

#[test]
fn bad_extra_value_type_is_refused() {
    let e = load_err(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"accept\", extra = { x = 1.5 } }\n",
    );
    assert!(
        e.contains("then.extra.x: extra attribute values must be"),
        "{e}"
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let e = load_err(
        r#"[sets.prefixes]
bad = ["a b"]
[[policy]]
name = "p"
[[policy.statement]]
name = "s"
match = { as-path.regex = "(", communities.any = "missing" }
then = { verdict = "accept", prepend = 1 }
[[apply]]
neighbors = ["*"]
import = ["p", "q"]
"#,
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 5, "{e}");
    assert!(lines[0].starts_with("test.toml:2:"), "{e}");
    assert!(lines[1].contains("as-path.regex"), "{e}");
    assert!(lines[2].contains("communities.any"), "{e}");
    assert!(
        lines[3].contains("import[0]") && lines[3].contains("prepend"),
        "{e}"
    );
    assert!(lines[4].contains("unknown policy \"q\""), "{e}");
}

#[test]
fn diagnostics_are_available_as_data() {
    let err = PolicySet::from_toml_str("[[apply]]\nneighbors = []\n", "f.toml").unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!((d.line, d.column), (2, 13));
    assert_eq!(d.field, "apply[0].neighbors");
    assert_eq!(d.kind, ErrorKind::NoNeighbors);
}

#[test]
fn an_empty_file_is_a_valid_policy_with_the_defaults() {
    let set = load("");
    assert_eq!(set.policy_names().count(), 0);
    let (d, _) = run(
        &set,
        ctx(external(), Direction::Import),
        "x",
        "a",
        PathAttrs::default(),
    );
    assert_eq!(
        d.decided_by,
        DecidedBy::Default(DefaultReason::ExternalPeer)
    );
}

#[test]
fn statements_can_write_match_and_then_as_sub_tables() {
    let set = load(
        r#"
[[policy]]
name = "p"
  [[policy.statement]]
  name = "s"
  [policy.statement.match]
  as-path.from = [7]
  [policy.statement.then]
  verdict = "accept"
  local-pref = 150
[[apply]]
neighbors = ["*"]
import = ["p"]
"#,
    );
    let (d, a) = run(
        &set,
        ctx(external(), Direction::Import),
        "x",
        "a",
        path(&[7]),
    );
    assert_eq!(d.decided_by, stmt("p", "s"));
    assert_eq!(a.local_pref, 150);
}

#[test]
fn dotted_keys_can_split_one_condition_group() {
    let set = matcher("as-path.from = [7], as-path.max-length = 1");
    assert!(hits(&set, path(&[7])));
    assert!(!hits(&set, path(&[8, 7])));
}

#[test]
fn every_complete_toml_example_in_the_docs_loads() {
    let doc = include_str!("../../../docs/policy.md");
    let mut blocks = 0;
    let mut rest = doc;
    // Blocks marked `toml fragment` are excerpts; plain `toml` ones are
    // whole files and must load as written.
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + "```toml\n".len()..];
        let end = body.find("```").expect("unterminated code block");
        if let Err(e) = PolicySet::from_toml_str(&body[..end], "docs/policy.md") {
            panic!("example does not load:\n{}\n{e}", &body[..end]);
        }
        blocks += 1;
        rest = &body[end + 3..];
    }
    assert_eq!(blocks, 5);
}

#[test]
fn docs_enterprise_example_matches_the_example_file() {
    let doc = include_str!("../../../docs/policy.md");
    let file = include_str!("../../../examples/policies/enterprise.toml");
    // The example file is the doc's block plus comments.
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim_end().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let start = doc
        .find("```toml\n[sets.asns]\nus = [65001]")
        .expect("enterprise block");
    let body = &doc[start + "```toml\n".len()..];
    let block = &body[..body.find("```").expect("unterminated block")];
    assert_eq!(strip(block), strip(file));
}

// ---- the seed's enterprise example, end to end ----

fn example(name: &str) -> PolicySet {
    let p = format!("{}/examples/policies/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    PolicySet::from_toml_str(&text, &p).unwrap_or_else(|e| panic!("{e}"))
}

fn training_from(path_asns: &[u32]) -> PathAttrs {
    path(path_asns).with_capabilities(["model-training"])
}

#[test]
fn enterprise_rejects_training_agents_from_other_ases() {
    let set = example("enterprise.toml");
    let (d, _) = run(
        &set,
        ctx(external(), Direction::Import),
        "ml/train",
        "trainer",
        training_from(&[65002]),
    );
    assert_eq!(d.verdict, Verdict::Reject);
    assert_eq!(
        d.decided_by,
        stmt("enterprise-import", "block-external-training")
    );
}

#[test]
fn enterprise_rejects_external_training_even_via_an_internal_peer() {
    let set = example("enterprise.toml");
    let (d, _) = run(
        &set,
        ctx(internal(), Direction::Import),
        "ml/train",
        "trainer",
        training_from(&[65002, 65003]),
    );
    assert_eq!(d.verdict, Verdict::Reject);
}

#[test]
fn enterprise_keeps_our_own_training_agents() {
    let set = example("enterprise.toml");
    let (d, a) = run(
        &set,
        ctx(internal(), Direction::Import),
        "ml/train",
        "trainer",
        training_from(&[]),
    );
    assert_eq!(d.verdict, Verdict::Accept);
    assert_eq!(
        d.decided_by,
        DecidedBy::Default(DefaultReason::InternalPeer)
    );
    assert_eq!(a.local_pref, 100);
}

#[test]
fn enterprise_prefers_internal_coding_agents_with_local_pref_150() {
    let set = example("enterprise.toml");
    let (d, a) = run(
        &set,
        ctx(internal(), Direction::Import),
        "coding/typescript/lint",
        "linter",
        PathAttrs::default().with_capabilities(["coding", "typescript"]),
    );
    assert_eq!(d.verdict, Verdict::Accept);
    assert_eq!(
        d.decided_by,
        stmt("enterprise-import", "prefer-internal-coding")
    );
    assert_eq!(a.local_pref, 150);
}

#[test]
fn enterprise_accepts_external_coding_agents_unchanged_by_the_configured_default() {
    let set = example("enterprise.toml");
    let mut a = Arc::new(path(&[65002]).with_capabilities(["coding"]));
    let before = a.clone();
    let d = set.evaluate(
        &ctx(external(), Direction::Import),
        &pfx("coding/go"),
        &mut a,
    );
    assert_eq!(d.verdict, Verdict::Accept);
    assert_eq!(d.decided_by, DecidedBy::Default(DefaultReason::Configured));
    assert!(Arc::ptr_eq(&a, &before));
}

#[test]
fn enterprise_never_exports_confidential_agents_to_other_ases() {
    let set = example("enterprise.toml");
    let secret = || PathAttrs::default().with_communities(comms(&["confidential"]));
    let (ext, _) = run(
        &set,
        ctx(external(), Direction::Export),
        "finance/audit",
        "auditor",
        secret(),
    );
    assert_eq!(ext.verdict, Verdict::Reject);
    assert_eq!(
        ext.decided_by,
        stmt("enterprise-export", "no-sensitive-agents-external")
    );
    let (int, _) = run(
        &set,
        ctx(internal(), Direction::Export),
        "finance/audit",
        "auditor",
        secret(),
    );
    assert_eq!(int.verdict, Verdict::Accept);
}

#[test]
fn enterprise_exports_ordinary_agents_to_other_ases() {
    let set = example("enterprise.toml");
    let (d, _) = run(
        &set,
        ctx(external(), Direction::Export),
        "coding/go",
        "gopher",
        PathAttrs::default().with_capabilities(["coding"]),
    );
    assert_eq!(d.verdict, Verdict::Accept);
}

#[test]
fn transit_example_loads_and_prepends_toward_the_backup_provider() {
    let set = example("transit.toml");
    let backup = PeerCtx {
        asn: Asn(65020),
        node: NodeId::from_u64(20),
        internal: false,
    };
    let (d, a) = run(
        &set,
        ctx(backup, Direction::Export),
        "coding/go",
        "gopher",
        PathAttrs::default(),
    );
    assert_eq!(d.verdict, Verdict::Accept);
    assert_eq!(a.as_path, vec![LOCAL, LOCAL]);
}

// ---- through the engine ----

mod through_the_engine {
    //! The enterprise example running inside real engines on the in-memory
    //! network: what crosses the AS border, and with which attributes.

    use super::*;
    use crate::core::engine::{
        Engine, EngineConfig, Event, PeerConfig, PeerInfo, PeerState, RoutePolicy,
    };
    use crate::core::ids::Millis;
    use crate::core::route::Route;
    use crate::sim::SimNet;

    const T0: Millis = Millis(1_700_000_000_000);

    /// AS 65001 (node 1) runs the enterprise policy; AS 65002 (node 2)
    /// exchanges everything with everyone.
    fn network() -> SimNet {
        let open = load(
            "[[apply]]\nneighbors = [\"*\"]\ndefault-import = \"accept\"\ndefault-export = \"accept\"\n",
        );
        let mut net = SimNet::new(T0, 1);
        let (n1, n2) = (NodeId::from_u64(1), NodeId::from_u64(2));
        net.add_node(
            Engine::new(EngineConfig::new(LOCAL, n1))
                .with_policy(Arc::new(NodePolicy::new(LOCAL, example("enterprise.toml")))),
        );
        net.add_node(
            Engine::new(EngineConfig::new(Asn(65002), n2))
                .with_policy(Arc::new(NodePolicy::new(Asn(65002), open))),
        );
        net.link(n1, n2);
        net.inject(n1, Event::AddPeer(PeerConfig::new(n2).with_asn(Asn(65002))));
        net.inject(n2, Event::AddPeer(PeerConfig::new(n1).with_asn(LOCAL)));
        net
    }

    fn originate(net: &mut SimNet, node: u64, prefix: &str, attrs: PathAttrs) {
        net.inject(
            NodeId::from_u64(node),
            Event::Originate(Route::new(pfx(prefix), Arc::new(attrs))),
        );
    }

    fn best(net: &SimNet, node: u64, prefix: &str) -> Option<Route> {
        net.engine(&NodeId::from_u64(node))
            .and_then(|e| e.best(&pfx(prefix)))
    }

    #[test]
    fn confidential_agents_stay_inside_and_ordinary_ones_cross() {
        let mut net = network();
        let agent = |name: &str| PathAttrs {
            agent: AgentId::new(name),
            ..PathAttrs::default()
        };
        originate(
            &mut net,
            1,
            "coding/go",
            agent("gopher").with_capabilities(["coding"]),
        );
        originate(
            &mut net,
            1,
            "finance/audit",
            agent("auditor").with_communities(comms(&["confidential"])),
        );
        net.run_for(2_000);
        let crossed = best(&net, 2, "coding/go").expect("ordinary agent exported");
        assert_eq!(crossed.attrs.as_path, vec![LOCAL]);
        assert!(best(&net, 2, "finance/audit").is_none());
    }

    #[test]
    fn external_training_agents_are_not_imported_but_coding_agents_are() {
        let mut net = network();
        originate(
            &mut net,
            2,
            "ml/train",
            PathAttrs::default().with_capabilities(["model-training"]),
        );
        originate(
            &mut net,
            2,
            "coding/rust",
            PathAttrs::default().with_capabilities(["coding"]),
        );
        net.run_for(2_000);
        assert!(best(&net, 1, "ml/train").is_none());
        let coding = best(&net, 1, "coding/rust").expect("coding agent imported");
        assert_eq!(coding.attrs.local_pref, 100);
        // Rejected by import policy, yet kept before policy for a reload.
        let engine = net.engine(&NodeId::from_u64(1)).expect("node 1");
        let peer2 = NodeId::from_u64(2);
        let has = |routes: Vec<Route>| routes.iter().any(|r| r.prefix == pfx("ml/train"));
        assert!(has(engine.adj_rib_in_pre(&peer2)));
        assert!(!has(engine.adj_rib_in_post(&peer2)));
    }

    #[test]
    fn node_policy_decides_like_the_policy_set_it_binds() {
        let np = NodePolicy::new(LOCAL, example("enterprise.toml"));
        let info = PeerInfo {
            node: NodeId::from_u64(2),
            asn: Asn(65002),
            internal: false,
            rr_client: false,
            local_role: None,
            state: PeerState::Established,
            accepted: 0,
            stale_until: None,
        };
        let mut a = Arc::new(path(&[65002]).with_capabilities(["model-training"]));
        let d = np.decide(Direction::Import, &info, &pfx("ml/x"), &mut a);
        assert_eq!(
            d.decided_by,
            stmt("enterprise-import", "block-external-training")
        );
        assert!(!np.import(&info, &pfx("ml/x"), &mut a));
        assert!(np.export(&info, &pfx("ml/x"), &mut a));
    }
}

// ---- properties ----

/// Lines that look like policy files, good and bad, so random documents get
/// past the TOML parser and into the compiler.
const FRAGMENTS: &[&str] = &[
    "[[policy]]",
    "name = \"p\"",
    "name = \"q\"",
    "name = \"\"",
    "[[policy.statement]]",
    "name = \"s\"",
    "match = { as-path.regex = \"((\" }",
    "match = { as-path.regex = \"^1 2$\" }",
    "match = { as-path = { min-length = 3, max-length = 1 } }",
    "match = { prefix.covered-by = [\"a/*\", \"b//c\"] }",
    "match = { prefix.exact = \"tools\" }",
    "match = { communities.any = \"x\" }",
    "match = { communities.all = [\"70000:1\", \"x\"] }",
    "match = { capabilities.any = [\"\"] }",
    "match = { neighbor = { asn = [-5], node = [\"zz\"], kind = \"internal\" } }",
    "match = { agent = { glob = [\"*\", \"\"], id = [] } }",
    "match = { not = { not = {} } }",
    "match = { med = { min = 4294967295 } }",
    "then = { verdict = \"accept\" }",
    "then = { verdict = \"next\", prepend = 0 }",
    "then = { verdict = \"reject\", prepend = 3, communities = { set = [], remove = [\"no-advertise\"], add = \"x\" } }",
    "then = { verdict = \"accept\", extra = { \"A B\" = 1, ok = [1] } }",
    "then = { local-pref = -1 }",
    "[[apply]]",
    "neighbors = [\"*\", \"as0\", \"node:00\", \"external\", \"external\"]",
    "neighbors = []",
    "import = [\"p\", \"p\", \"nope\"]",
    "export = [\"q\"]",
    "default-import = \"maybe\"",
    "default-export = \"accept\"",
    "[sets.prefixes]",
    "tools = [\"a/*\", \"*\", \"a/*/b\"]",
    "[sets.asns]",
    "x = [1, \"AS2\", 99999999999]",
    "[sets.communities]",
    "x = [\"a\", \"1:2:3\", \"1:2:3:4\"]",
    "[sets.capabilities]",
    "[sets]",
    "x = ",
    "}{][",
];

fn arb_attrs() -> impl Strategy<Value = PathAttrs> {
    (
        prop::collection::vec(
            prop::sample::select(vec![1u32, 7, 65001, 65002, u32::MAX]),
            0..6,
        ),
        prop::collection::vec(
            prop::sample::select(vec!["confidential", "x", "1:2", "no-export"]),
            0..4,
        ),
        prop::collection::vec(
            prop::sample::select(vec!["coding", "model-training", "ts"]),
            0..3,
        ),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(p, cs, caps, med, lp)| PathAttrs {
            med,
            local_pref: lp,
            ..path(&p)
                .with_communities(comms(&cs))
                .with_capabilities(caps)
        })
}

fn arb_peer() -> impl Strategy<Value = PeerCtx> {
    (prop::sample::select(vec![65001u32, 65002, 7]), 0u64..4).prop_map(|(asn, n)| PeerCtx {
        asn: Asn(asn),
        node: NodeId::from_u64(n),
        internal: asn == LOCAL.0,
    })
}

/// A policy using every condition and action kind.
fn rich() -> PolicySet {
    load(&format!(
        r#"
[sets.asns]
us = [65001]
[[policy]]
name = "rich"
[[policy.statement]]
name = "tag"
match = {{ not = {{ as-path.regex = "^$" }}, med.max = 1000000 }}
then = {{ verdict = "next", communities = {{ add = ["seen"], remove = ["x"] }}, extra = {{ k = 1 }} }}
[[policy.statement]]
name = "drop"
match = {{ communities.all = ["confidential", "seen"], as-path.not-from = "us", neighbor.kind = "external" }}
then = {{ verdict = "reject" }}
[[policy.statement]]
name = "mix"
match = {{ prefix.covered-by = ["coding/*"], capabilities.any = ["coding"], as-path = {{ contains-any = [7], max-length = 4 }}, agent.glob = ["a*"], neighbor.node = ["{}"] }}
then = {{ verdict = "accept", local-pref = 10, med = 1, communities.set = ["only"], prepend = 3 }}
[[apply]]
neighbors = ["*"]
export = ["rich"]
[[apply]]
neighbors = ["as7"]
export = ["rich"]
default-export = "accept"
"#,
        NodeId::from_u64(1)
    ))
}

proptest! {
    #[test]
    fn loader_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = PolicySet::from_toml_str(&text, "fuzz.toml");
    }

    #[test]
    fn loader_never_panics_on_policy_shaped_text(
        lines in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24)
    ) {
        let text = lines.join("\n");
        if let Err(e) = PolicySet::from_toml_str(&text, "fuzz.toml") {
            // Every diagnostic carries a position inside the file.
            for d in e.diagnostics() {
                prop_assert!(d.line >= 1 && d.line <= text.lines().count().max(1) + 1, "{d}");
            }
        }
    }

    #[test]
    fn evaluation_never_panics_and_keeps_attributes_normalized(
        attrs in arb_attrs(),
        peer in arb_peer(),
        export in any::<bool>(),
        p in prop::sample::select(vec!["coding/ts", "coding/*", "*", "x/y"]),
        agent in prop::sample::select(vec!["a1", "b", ""]),
    ) {
        let set = rich();
        let dir = if export { Direction::Export } else { Direction::Import };
        let (_, a) = run(&set, ctx(peer, dir), p, agent, attrs);
        let mut norm = (*a).clone();
        norm.normalize();
        prop_assert_eq!(&*a, &norm);
    }

    #[test]
    fn accept_all_accepts_everything_unchanged(
        attrs in arb_attrs(),
        peer in arb_peer(),
        export in any::<bool>(),
    ) {
        let set = load(
            "[[policy]]\nname = \"all\"\n[[policy.statement]]\nname = \"yes\"\nthen = { verdict = \"accept\" }\n[[apply]]\nneighbors = [\"*\"]\nimport = [\"all\"]\nexport = [\"all\"]\n",
        );
        let dir = if export { Direction::Export } else { Direction::Import };
        let mut a = Arc::new(attrs);
        let before = a.clone();
        let d = set.evaluate(&ctx(peer, dir), &pfx("x"), &mut a);
        prop_assert_eq!(d.decided_by, stmt("all", "yes"));
        prop_assert!(Arc::ptr_eq(&a, &before));
    }

    #[test]
    fn no_policy_decides_by_peer_kind_alone(attrs in arb_attrs(), peer in arb_peer(), export in any::<bool>()) {
        let dir = if export { Direction::Export } else { Direction::Import };
        let (d, _) = run(&PolicySet::empty(), ctx(peer, dir), "x", "a", attrs);
        prop_assert_eq!(d.is_accept(), peer.internal);
    }
}
