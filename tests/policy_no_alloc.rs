//! Policy evaluation must not touch the heap unless an action changes the
//! attributes: import policy runs on every received route. A counting
//! global allocator (its own test binary, so no other test is affected)
//! checks that on the paths that matter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use agent_bgp::core::attrs::PathAttrs;
use agent_bgp::core::policy::{Direction, PeerCtx, PolicyCtx, PolicySet, Verdict};
use agent_bgp::core::{AgentId, Asn, NodeId, Prefix};

struct Counting;

thread_local! {
    // Per thread, so tests running in parallel do not count each other.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

const POLICY: &str = r#"
[sets.prefixes]
many = ["t0/*", "t1/*", "t2/*", "t3/*", "t4/*", "t5/*", "t6/*", "t7/*", "t8/*", "coding/*"]
[sets.asns]
us = [65001]

[[policy]]
name = "filter"
  [[policy.statement]]
  name = "every-condition"
  match = { prefix.covered-by = "many", prefix.exact = ["coding/go"], as-path = { from = [7], not-from = "us", contains-any = [65002], contains-all = [7], min-length = 1, max-length = 5, regex = "^65002 .* 7$" }, capabilities = { any = ["coding"], all = ["coding"] }, communities = { any = ["x"], all = ["x"] }, neighbor = { asn = [65002], kind = "external" }, med.max = 10, local-pref.min = 1, agent = { id = ["gopher"], glob = ["go*"] }, not = { communities.any = ["confidential"] } }
  # Actions that change nothing on this route: still no copy.
  then = { verdict = "accept", local-pref = 100, communities.add = ["x"] }

[[apply]]
neighbors = ["external"]
import = ["filter"]
"#;

fn external() -> PolicyCtx {
    PolicyCtx {
        local_asn: Asn(65001),
        peer: PeerCtx {
            asn: Asn(65002),
            node: NodeId::from_u64(2),
            internal: false,
        },
        direction: Direction::Import,
    }
}

fn route_attrs() -> Arc<PathAttrs> {
    Arc::new(PathAttrs {
        as_path: vec![Asn(65002), Asn(3), Asn(7)],
        med: 5,
        agent: AgentId::new("gopher"),
        ..PathAttrs::default()
            .with_capabilities(["coding"])
            .with_communities(["x".parse().unwrap()])
    })
}

#[test]
fn matching_every_condition_kind_does_not_allocate() {
    let set = PolicySet::from_toml_str(POLICY, "t.toml").unwrap();
    let (c, p) = (external(), Prefix::new("coding/go").unwrap());
    let mut attrs = route_attrs();
    // Warm up: the regex engines allocate their per-thread caches once.
    set.evaluate(&c, &p, &mut attrs);
    let n = allocations_during(|| {
        for _ in 0..1000 {
            // Accepted only if every condition held (the default rejects).
            let d = set.evaluate(&c, &p, &mut attrs);
            assert_eq!(d.verdict, Verdict::Accept);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn peers_without_policy_do_not_allocate() {
    let set = PolicySet::empty();
    let (c, p) = (external(), Prefix::new("coding/go").unwrap());
    let mut attrs = route_attrs();
    let n = allocations_during(|| {
        for _ in 0..1000 {
            assert_eq!(set.evaluate(&c, &p, &mut attrs).verdict, Verdict::Reject);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn an_action_that_changes_attributes_does_allocate() {
    let set = PolicySet::from_toml_str(
        "[[policy]]\nname = \"p\"\n[[policy.statement]]\nname = \"s\"\nthen = { verdict = \"accept\", local-pref = 150, med = 1 }\n[[apply]]\nneighbors = [\"*\"]\nimport = [\"p\"]\n",
        "t.toml",
    )
    .unwrap();
    let (c, p) = (external(), Prefix::new("coding/go").unwrap());
    let shared = route_attrs();
    let mut attrs = shared.clone();
    let n = allocations_during(|| {
        set.evaluate(&c, &p, &mut attrs);
    });
    // At least the new Arc (plus the vectors cloned into it); this also
    // shows the counter sees this thread's allocations.
    assert!(n >= 1, "{n}");
    assert_eq!(attrs.local_pref, 150);
}
