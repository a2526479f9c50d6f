//! Caller communities in `[[access]]` rules, across real `abgp` processes:
//! a community counts when the caller's issued certificate carries it
//! (`abgp asn issue --community`); a caller that merely claims one (`[mcp]
//! caller_communities`) is refused, unless a rule opts in to claims
//! (`claimed_communities = true`), and then the origin logs that it let the
//! call in on the caller's word.

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod node_harness;

use std::process::Command;
use std::time::Duration;

use node_harness::*;

const CONVERGE: Duration = Duration::from_secs(30);

/// The front name under which `p` lists the tool routed as `prefix`.
fn front_name(p: &Proc, prefix: &str) -> String {
    wait_for(&format!("{} to list {prefix}", p.name), CONVERGE, || {
        p.try_get("/v1/tools")?
            .as_array()?
            .iter()
            .find(|t| t["prefix"] == prefix)
            .and_then(|t| t["name"].as_str().map(str::to_string))
    })
}

/// `abgp call NAME` through `nd`'s front: (succeeded, stdout + stderr).
fn call(nd: &NodeDir, name: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["call", name, "--args", r#"{"text": "hello"}"#, "--config"])
        .arg(nd.dir.join("node.toml"))
        .output()
        .expect("run abgp call");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn agent(id: &str, prefix: &str) -> String {
    format!(
        "\n[[agents]]\nid = \"{id}\"\nprefix = \"{prefix}\"\ncommand = {BIN:?}\nargs = [\"example-agent\"]\n"
    )
}

#[test]
fn only_certified_communities_open_a_rule_unless_it_opts_in_to_claims() {
    let root = tempfile::tempdir().unwrap();
    let (key, anchor) = authority(root.path());
    let origin = init(root.path(), "origin", "test");
    let member = init(root.path(), "member", "test");
    let liar = init(root.path(), "liar", "test");
    let trust = format!(
        "\n[trust]\naccept_derived = true\nanchors = [{{ name = \"corp\", key = \"{anchor}\", asns = [\"65010-65030\"] }}]\n"
    );
    let origin_cert = issue_cert_with(&key, &origin, 65030, &[]);
    let member_cert = issue_cert_with(&key, &member, 65010, &["finance"]);
    let liar_cert = issue_cert_with(&key, &liar, 65020, &[]);
    let mut o = origin.clone();
    o.asn = 65030;
    let mut m = member.clone();
    m.asn = 65010;
    let mut l = liar.clone();
    l.asn = 65020;
    configure(
        &o,
        &Spec {
            asn: Some(65030),
            certificate: Some(origin_cert),
            neighbors: vec![(m.clone(), true), (l.clone(), true)],
            mcp: "access_default = \"deny\"".into(),
            extra: format!(
                "{trust}{}{}
[[access]]
name = \"finance members\"
prefixes = [\"finance/*\"]
caller_communities = [\"finance\"]
action = \"allow\"

[[access]]
name = \"survey, on the caller's word\"
prefixes = [\"survey/*\"]
caller_communities = [\"finance\"]
claimed_communities = true
action = \"allow\"
",
                agent("fin", "finance/*"),
                agent("survey", "survey/*")
            ),
            ..Spec::default()
        },
    );
    for (nd, cert, claims) in [
        (&m, member_cert, ""),
        (&l, liar_cert, "caller_communities = [\"finance\"]"),
    ] {
        configure(
            nd,
            &Spec {
                asn: Some(nd.asn),
                certificate: Some(cert),
                neighbors: vec![(o.clone(), false)],
                mcp: claims.into(),
                extra: trust.clone(),
                ..Spec::default()
            },
        );
    }
    let po = Proc::start(&o);
    let pm = Proc::start(&m);
    let pl = Proc::start(&l);

    // The member's certificate says finance: the first rule lets it in.
    let name = front_name(&pm, "finance/echo");
    let (ok, out) = call(&m, &name);
    assert!(ok, "the certified member is allowed: {out}");
    assert!(out.contains("hello"), "{out}");

    // The liar claims finance in every CALL it signs, but no authority
    // vouched for it: the rule does not match and the default denies.
    let name = front_name(&pl, "finance/echo");
    let (ok, out) = call(&l, &name);
    assert!(!ok, "a claimed community opens nothing: {out}");
    assert!(
        out.contains("access to finance/echo denied to AS65020 by default"),
        "{out}"
    );

    // Where a rule opts in to claims, the liar's word is enough, and the
    // origin's log says the call ran on it.
    let name = front_name(&pl, "survey/echo");
    let (ok, out) = call(&l, &name);
    assert!(ok, "the opted-in rule accepts the claim: {out}");
    wait_for("the origin to log the claimed community", CONVERGE, || {
        let log = std::fs::read_to_string(&po.log).ok()?;
        log.lines()
            .any(|l| {
                l.contains("call allowed on a community the caller claims")
                    && l.contains("community=finance")
                    && l.contains("caller_asn=AS65020")
            })
            .then_some(())
    });
    // The certified member's calls under that rule are not marked.
    let name = front_name(&pm, "survey/echo");
    let (ok, out) = call(&m, &name);
    assert!(ok, "{out}");
    let log = std::fs::read_to_string(&po.log).unwrap();
    assert!(
        !log.lines()
            .any(|l| l.contains("call allowed on a community") && l.contains("caller_asn=AS65010")),
        "a certified community is not logged as a claim"
    );
    drop(pl);
}
