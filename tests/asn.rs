//! Issued ASN certificates end to end: an authority key, certificates from
//! `abgp asn issue`, checks with `abgp asn verify`, and real nodes that peer
//! on the strength of them, or are refused.

mod node_harness;

use std::time::Duration;

use node_harness::{NodeDir, Proc, Spec, abgp, configure, init, wait_for};

fn field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {key:?} in:\n{out}"))
}

struct Authority {
    key: String,
    public: String,
}

fn authority(root: &std::path::Path) -> Authority {
    let key = root.join("authority.key");
    let (ok, out, err) = abgp(&["asn", "authority-init", "--key", key.to_str().unwrap()]);
    assert!(ok, "{err}");
    Authority {
        key: key.display().to_string(),
        public: field(&out, "public key"),
    }
}

fn issue(a: &Authority, nd: &NodeDir, asn: u32) -> String {
    let out = nd.dir.join("node.cert");
    let (ok, text, err) = abgp(&[
        "asn",
        "issue",
        "--authority-key",
        &a.key,
        "--asn",
        &asn.to_string(),
        "--node",
        &nd.peer_id,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(text.contains(&format!("asn          {asn}")), "{text}");
    out.display().to_string()
}

fn trust(a: &Authority) -> String {
    format!(
        "\n[trust]\nanchors = [{{ name = \"acme\", key = \"{}\", asns = [\"65000-65100\"] }}]\n",
        a.public
    )
}

#[test]
fn issue_and_verify_on_the_command_line() {
    let root = tempfile::tempdir().unwrap();
    let a = authority(root.path());
    let n = init(root.path(), "n", "test");
    let cert = issue(&a, &n, 65010);

    let (ok, out, _) = abgp(&[
        "asn", "verify", "--cert", &cert, "--anchor", &a.public, "--node", &n.peer_id,
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("OK"));

    // Another authority, another node: both refused, with the reason.
    let other = authority(&root.path().join("x").tap_mkdir());
    let (ok, out, _) = abgp(&["asn", "verify", "--cert", &cert, "--anchor", &other.public]);
    assert!(!ok);
    assert!(out.contains("is not one of the given anchors"), "{out}");
    let m = init(root.path(), "m", "test");
    let (ok, out, _) = abgp(&["asn", "verify", "--cert", &cert, "--node", &m.node_id]);
    assert!(!ok);
    assert!(out.contains("certificate is for node"), "{out}");

    // The authority refuses the derived range and never overwrites a file.
    let (ok, _, err) = abgp(&[
        "asn",
        "issue",
        "--authority-key",
        &a.key,
        "--asn",
        "4200000001",
        "--node",
        &n.peer_id,
        "--out",
        root.path().join("d.cert").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("derived range"), "{err}");
    let (ok, _, err) = abgp(&[
        "asn",
        "issue",
        "--authority-key",
        &a.key,
        "--asn",
        "65010",
        "--node",
        &n.peer_id,
        "--out",
        &cert,
    ]);
    assert!(!ok, "overwrote {cert}");
    assert!(err.contains("node.cert"), "{err}");

    let (ok, out, _) = abgp(&["asn", "whoami", "--dir", n.dir.to_str().unwrap()]);
    assert!(ok);
    assert_eq!(field(&out, "peer id"), n.peer_id);
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn nodes_with_issued_certificates_for_one_asn_peer_internally_and_an_impostor_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let a = authority(root.path());
    let mut x = init(root.path(), "x", "test");
    let mut y = init(root.path(), "y", "test");
    let z = init(root.path(), "z", "test");
    let cx = issue(&a, &x, 65010);
    let cy = issue(&a, &y, 65010);
    x.asn = 65010;
    y.asn = 65010;
    // z claims AS 65010 with a certificate it signed itself.
    let mut z_claim = z.clone();
    z_claim.asn = 65010;

    configure(
        &x,
        &Spec {
            asn: Some(65010),
            certificate: Some(cx),
            neighbors: vec![(y.clone(), false), (z_claim.clone(), true)],
            originate: vec!["acme/x/tool".into()],
            extra: trust(&a),
            ..Spec::default()
        },
    );
    configure(
        &y,
        &Spec {
            asn: Some(65010),
            certificate: Some(cy),
            neighbors: vec![(x.clone(), false)],
            extra: trust(&a),
            ..Spec::default()
        },
    );
    configure(
        &z,
        &Spec {
            asn: Some(65010),
            neighbors: vec![(x.clone(), false)],
            extra: trust(&a),
            ..Spec::default()
        },
    );
    let px = Proc::start(&x);
    let py = Proc::start(&y);
    let pz = Proc::start(&z);

    wait_for("x and y established", Duration::from_secs(30), || {
        (px.established_with(&y.peer_id) && py.established_with(&x.peer_id)).then_some(())
    });
    let r = wait_for("y learns x's route", Duration::from_secs(30), || {
        py.route("acme/x/tool")
    });
    assert_eq!(
        py.as_path("acme/x/tool"),
        Some(vec![]),
        "internal: no AS added: {r}"
    );
    assert_eq!(px.status()["asn"].as_u64(), Some(65010));

    // z's self-signed claim to an ASN the authority's range covers is refused.
    let why = wait_for("x refuses z's certificate", Duration::from_secs(30), || {
        let p = px.peer(&z.peer_id)?;
        let e = p["last_error"].as_str()?.to_string();
        (!e.is_empty()).then_some(e)
    });
    assert!(!px.established_with(&z.peer_id));
    assert!(!pz.established_with(&x.peer_id));
    assert!(why.contains("did not certify this key"), "{why}");
}
