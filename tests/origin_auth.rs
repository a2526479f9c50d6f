//! Who may originate what, across real `abgp` processes: an authority signs
//! "finance/* belongs to Finance's AS"; a rogue node that originates a
//! finance prefix too is rejected at a node that trusts the authority, while
//! Finance's routes are marked valid and a prefix no authorisation covers is
//! marked not-found (for policy to match).

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod node_harness;

use std::process::Command;
use std::time::Duration;

use node_harness::*;

const CONVERGE: Duration = Duration::from_secs(30);

fn run_abgp(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run abgp");
    assert!(
        out.status.success(),
        "abgp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_prefix_originated_by_an_unauthorised_as_is_rejected_and_the_others_marked() {
    let root = tempfile::tempdir().unwrap();
    let (key, anchor) = authority(root.path());

    let fin = init(root.path(), "fin", "test");
    let rogue = init(root.path(), "rogue", "test");
    let obs = init(root.path(), "obs", "test");
    let token = run_abgp(&[
        "asn",
        "authorize",
        "--authority-key",
        &key,
        "--prefix",
        "finance/*",
        "--asn",
        &fin.asn.to_string(),
    ]);
    let token = token.trim();
    assert!(token.starts_with("abgp-roa1:"), "{token}");

    configure(
        &fin,
        &Spec {
            neighbors: vec![(obs.clone(), false)],
            originate: vec!["finance/budget".into()],
            ..Spec::default()
        },
    );
    configure(
        &rogue,
        &Spec {
            neighbors: vec![(obs.clone(), false)],
            originate: vec!["finance/payroll".into(), "eng/tools".into()],
            ..Spec::default()
        },
    );
    configure(
        &obs,
        &Spec {
            neighbors: vec![(fin.clone(), false), (rogue.clone(), false)],
            extra: format!(
                "\n[trust]\nanchors = [{{ name = \"corp\", key = \"{anchor}\" }}]\nauthorizations = [\"{token}\"]\n"
            ),
            ..Spec::default()
        },
    );
    let _pf = Proc::start(&fin);
    let _pr = Proc::start(&rogue);
    let po = Proc::start(&obs);

    wait_for("Finance's route, marked valid", CONVERGE, || {
        po.communities("finance/budget")
            .contains(&"origin-valid".to_string())
            .then_some(())
    });
    wait_for(
        "the rogue's other route, marked not-found",
        CONVERGE,
        || {
            po.communities("eng/tools")
                .contains(&"origin-not-found".to_string())
                .then_some(())
        },
    );
    let rejected = || po.metric("abgp_route_origin_invalid_rejected_total");
    wait_for("the rogue's finance route to be rejected", CONVERGE, || {
        rejected().filter(|n| *n >= 1.0)
    });
    assert!(
        po.route("finance/payroll").is_none(),
        "an unauthorised origin of a finance prefix: {:?}",
        po.route("finance/payroll")
    );
    assert_eq!(rejected(), Some(1.0));
}
