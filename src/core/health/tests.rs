use super::*;
use proptest::prelude::*;

fn agent() -> AgentId {
    AgentId::new("a")
}

fn cfg() -> HealthConfig {
    HealthConfig::default()
}

fn up(cfg: HealthConfig, now: u64) -> Health {
    let mut h = Health::new(cfg);
    h.agent_up(Millis(now), &agent(), 4, None);
    h
}

/// One call of `ms` milliseconds ending at `now`.
fn call(h: &mut Health, now: u64, ms: u64, end: CallEnd) {
    h.call_started(&agent());
    h.call_done(Millis(now), &agent(), ms * 1000, end);
}

#[test]
fn an_agent_with_no_observations_keeps_the_base_med() {
    let mut h = up(
        HealthConfig {
            base_med: 40,
            ..cfg()
        },
        0,
    );
    assert_eq!(h.advertised(&agent(), None), 40);
    assert_eq!(h.advertised(&AgentId::new("unknown"), None), 40);
    for t in [0, 30_000, 1_000_000] {
        assert!(h.poll(Millis(t)).is_empty());
    }
    let r = h.report(&agent()).unwrap();
    assert_eq!(
        (r.computed_med, r.advertised_med, r.med_changes),
        (40, 40, 0)
    );
    assert!(!r.change_pending);
}

#[test]
fn the_formula_adds_latency_errors_and_load() {
    let c = cfg();
    let i = |latency_ms: u64, success_ppm, in_flight| Inputs {
        latency_us: Some(latency_ms * 1000),
        success_ppm,
        in_flight,
        slots: 4,
    };
    // 10 points per 100 ms.
    assert_eq!(compute_med(&c, &i(0, PPM, 0)), 0);
    assert_eq!(compute_med(&c, &i(250, PPM, 0)), 25);
    // 500 points at 100 % failure: 10 % failure is 50.
    assert_eq!(compute_med(&c, &i(0, 900_000, 0)), 50);
    // 100 points with all 4 slots busy, 200 at most.
    assert_eq!(compute_med(&c, &i(0, PPM, 2)), 50);
    assert_eq!(compute_med(&c, &i(0, PPM, 100)), 200);
    // Summed, on top of the base, capped.
    let b = HealthConfig {
        base_med: 7,
        ..c.clone()
    };
    assert_eq!(compute_med(&b, &i(250, 900_000, 2)), 7 + 25 + 50 + 50);
    assert_eq!(compute_med(&b, &i(3_600_000, 0, 100)), 10_000);
}

#[test]
fn slow_calls_raise_the_med_after_the_minimum_interval_from_the_first_advertisement() {
    let mut h = up(cfg(), 1_000);
    // 500 ms calls: computed 50, outside the band of 20 around 0.
    call(&mut h, 2_000, 500, CallEnd::Ok);
    let r = h.report(&agent()).unwrap();
    assert_eq!(r.computed_med, 50);
    assert!(r.change_pending);
    assert_eq!(r.next_change_at, 31_000);
    assert!(
        h.poll(Millis(2_000)).is_empty(),
        "inside the minimum interval"
    );
    assert_eq!(h.next_deadline(), Some(Millis(11_000)), "the first probe");
    h.probes_due(Millis(11_000));
    h.probe_done(Millis(11_000), &agent(), Some(1_000));
    assert_eq!(h.next_deadline(), Some(Millis(21_000)));
    h.probes_due(Millis(21_000));
    h.probe_done(Millis(21_000), &agent(), Some(1_000));
    assert_eq!(
        h.next_deadline(),
        Some(Millis(31_000)),
        "the pending change"
    );
    assert!(h.poll(Millis(30_999)).is_empty());
    assert_eq!(h.poll(Millis(31_000)), vec![(agent(), 50)]);
    assert_eq!(h.advertised(&agent(), None), 50);
    let r = h.report(&agent()).unwrap();
    assert_eq!((r.med_changes, r.next_change_at), (1, 61_000));
    assert!(!r.change_pending);
}

#[test]
fn moves_inside_the_band_are_not_advertised() {
    let mut h = up(cfg(), 0);
    // 150 ms: computed 15, inside max(20, 0) of 0.
    call(&mut h, 10, 150, CallEnd::Ok);
    assert_eq!(h.report(&agent()).unwrap().computed_med, 15);
    assert!(h.poll(Millis(100_000)).is_empty());
    // Up to 1 s: 100, out; advertised.
    for t in 0..20 {
        call(&mut h, 100_000 + t, 1_000, CallEnd::Ok);
    }
    let changed = h.poll(Millis(100_100));
    assert_eq!(changed.len(), 1);
    let adv = changed[0].1;
    assert!((90..=100).contains(&adv), "{adv}");
    // Around a larger MED the band is 10 %: 1 050 ms is inside it.
    for t in 0..20 {
        call(&mut h, 200_000 + t, 1_050, CallEnd::Ok);
    }
    let r = h.report(&agent()).unwrap();
    assert!(r.computed_med.abs_diff(adv) <= band(&h.cfg, adv), "{r:?}");
    assert!(!r.change_pending);
    assert!(h.poll(Millis(300_000)).is_empty());
}

#[test]
fn at_most_one_change_per_minimum_interval_however_noisy_the_agent() {
    let mut h = up(cfg(), 0);
    let mut changes = Vec::new();
    // A call every 100 ms for 5 minutes, alternating 10 ms and 3 s.
    for i in 0..3_000u64 {
        let now = i * 100;
        let ms = if (i / 7) % 2 == 0 { 10 } else { 3_000 };
        call(&mut h, now, ms, CallEnd::Ok);
        for (_, med) in h.poll(Millis(now)) {
            changes.push((now, med));
        }
    }
    assert!(!changes.is_empty());
    for w in changes.windows(2) {
        assert!(w[1].0 - w[0].0 >= 30_000, "{changes:?}");
    }
    assert!(changes.len() <= 10, "{changes:?}");
}

#[test]
fn errors_and_timeouts_lower_the_success_rate_and_raise_the_med() {
    let mut h = up(cfg(), 0);
    for t in 0..5 {
        call(&mut h, t, 1, CallEnd::Error);
    }
    let r = h.report(&agent()).unwrap();
    // 0.9^5 = 0.59: 41 % failure, 204 points.
    assert!((0.58..0.60).contains(&r.success_rate), "{r:?}");
    assert!((200..=210).contains(&r.computed_med), "{r:?}");
    assert_eq!((r.calls, r.call_failures), (5, 5));
    assert_eq!(r.call_latency_ms, None, "errors carry no latency sample");
    // A timeout: slow and failed.
    call(&mut h, 10, 5_000, CallEnd::Timeout);
    let r2 = h.report(&agent()).unwrap();
    assert_eq!(r2.call_latency_ms, Some(5_000.0));
    assert!(r2.computed_med > r.computed_med + 500, "{r2:?}");
    // Neutral ends change nothing but the in-flight count.
    h.call_started(&agent());
    assert_eq!(h.report(&agent()).unwrap().in_flight, 1);
    h.call_done(Millis(11), &agent(), 99_000_000, CallEnd::Neutral);
    let r3 = h.report(&agent()).unwrap();
    assert_eq!(r3.in_flight, 0);
    assert_eq!(r3.computed_med, r2.computed_med);
    assert_eq!(r3.calls, 6);
}

#[test]
fn calls_in_flight_count_as_load() {
    let mut h = up(cfg(), 0);
    for _ in 0..3 {
        h.call_started(&agent());
    }
    // 3 of 4 slots: 75 points.
    assert_eq!(h.report(&agent()).unwrap().computed_med, 75);
    assert_eq!(h.poll(Millis(30_000)), vec![(agent(), 75)]);
    for _ in 0..3 {
        h.call_done(Millis(30_001), &agent(), 1_000, CallEnd::Ok);
    }
    assert_eq!(h.report(&agent()).unwrap().computed_med, 0);
    assert!(h.poll(Millis(59_999)).is_empty());
    assert_eq!(h.poll(Millis(60_000)), vec![(agent(), 0)]);
}

#[test]
fn call_latency_is_forgotten_when_no_call_ends_for_a_while() {
    let mut h = up(cfg(), 0);
    call(&mut h, 1_000, 2_000, CallEnd::Ok);
    assert_eq!(h.poll(Millis(30_000)), vec![(agent(), 200)]);
    // Probes answer in 2 ms meanwhile.
    h.probe_done(Millis(40_000), &agent(), Some(2_000));
    assert_eq!(h.report(&agent()).unwrap().computed_med, 200);
    let forget = 1_000 + 300_000;
    assert!(h.next_deadline().unwrap() <= Millis(forget));
    assert!(h.poll(Millis(forget - 1)).is_empty());
    assert_eq!(h.poll(Millis(forget)), vec![(agent(), 0)]);
    let r = h.report(&agent()).unwrap();
    assert_eq!(r.call_latency_ms, None);
    assert_eq!(r.probe_latency_ms, Some(2.0));
}

#[test]
fn probes_are_due_every_interval_one_at_a_time() {
    let mut h = up(cfg(), 0);
    assert!(h.probes_due(Millis(9_999)).is_empty());
    assert_eq!(h.probes_due(Millis(10_000)), vec![agent()]);
    // Asked once until it answers.
    assert!(h.probes_due(Millis(50_000)).is_empty());
    h.probe_done(Millis(50_000), &agent(), None);
    let r = h.report(&agent()).unwrap();
    assert_eq!((r.probes, r.probe_failures), (1, 1));
    assert!((r.success_rate - 0.9).abs() < 1e-9);
    assert!(h.probes_due(Millis(59_999)).is_empty());
    // One that could not be sent counts nothing and is asked again later.
    assert_eq!(h.probes_due(Millis(60_000)), vec![agent()]);
    h.probe_skipped(Millis(60_000), &agent());
    assert_eq!(h.report(&agent()).unwrap().probes, 1);
    assert!(h.probes_due(Millis(69_999)).is_empty());
    assert_eq!(h.probes_due(Millis(70_000)), vec![agent()]);
    // A slow probe counts as latency.
    h.probe_done(Millis(70_000), &agent(), Some(900_000));
    let r = h.report(&agent()).unwrap();
    assert_eq!(r.probe_latency_ms, Some(900.0));
    // 900 ms: 90 points; 9 % failure (0.9, then a success): 45.
    assert_eq!(r.computed_med, 90 + 45);
}

#[test]
fn health_off_tracks_nothing() {
    let mut h = up(
        HealthConfig {
            enabled: false,
            base_med: 5,
            ..cfg()
        },
        0,
    );
    call(&mut h, 10, 60_000, CallEnd::Timeout);
    assert!(h.reports().is_empty());
    assert!(h.probes_due(Millis(1_000_000)).is_empty());
    assert!(h.poll(Millis(1_000_000)).is_empty());
    assert_eq!(h.next_deadline(), None);
    assert_eq!(h.advertised(&agent(), None), 5);
}

#[test]
fn a_restarted_agent_starts_afresh() {
    let mut h = up(cfg(), 0);
    call(&mut h, 10, 5_000, CallEnd::Ok);
    assert_eq!(h.poll(Millis(30_000)).len(), 1);
    h.agent_down(&agent());
    assert_eq!(h.advertised(&agent(), None), 0);
    h.agent_up(Millis(40_000), &agent(), 4, None);
    let r = h.report(&agent()).unwrap();
    assert_eq!((r.advertised_med, r.computed_med, r.calls), (0, 0, 0));
    // A re-list (Up again while known) keeps the state.
    call(&mut h, 40_001, 5_000, CallEnd::Ok);
    h.agent_up(Millis(40_002), &agent(), 8, None);
    let r = h.report(&agent()).unwrap();
    assert_eq!((r.calls, r.slots), (1, 8));
}

#[test]
fn hostile_values_do_not_overflow() {
    let c = HealthConfig {
        base_med: u32::MAX,
        latency_weight: u32::MAX,
        error_weight: u32::MAX,
        load_weight: u32::MAX,
        max_med: u32::MAX,
        band_percent: u32::MAX,
        band_min: u32::MAX,
        min_interval_ms: u64::MAX,
        probe_interval_ms: u64::MAX,
        forget_after_ms: u64::MAX,
        enabled: true,
    };
    let i = Inputs {
        latency_us: Some(u64::MAX),
        success_ppm: u32::MAX,
        in_flight: u64::MAX,
        slots: 0,
    };
    assert_eq!(compute_med(&c, &i), u32::MAX);
    assert_eq!(band(&c, u32::MAX), u32::MAX);
    let mut h = Health::new(c);
    h.agent_up(Millis(u64::MAX), &agent(), 0, None);
    for _ in 0..3 {
        h.call_started(&agent());
    }
    h.call_done(Millis(u64::MAX), &agent(), u64::MAX, CallEnd::Timeout);
    h.probe_done(Millis(u64::MAX), &agent(), Some(u64::MAX));
    assert!(h.poll(Millis(u64::MAX)).is_empty());
    let _ = h.next_deadline();
    let _ = h.probes_due(Millis(u64::MAX));
    let r = h.report(&agent()).unwrap();
    assert_eq!(r.advertised_med, u32::MAX);
    // More ends than starts: the count stays at 0.
    let mut h = up(cfg(), 0);
    for _ in 0..3 {
        h.call_done(Millis(1), &agent(), 1, CallEnd::Ok);
    }
    assert_eq!(h.report(&agent()).unwrap().in_flight, 0);
}

fn any_cfg() -> impl Strategy<Value = HealthConfig> {
    (
        (0u32..1_000, 0u32..1_000, 0u32..10_000, 0u32..1_000),
        (0u32..100_000, 0u32..200, 0u32..500),
        (0u64..100_000, 1u64..50_000, 1u64..1_000_000),
    )
        .prop_map(
            |((base, lw, ew, ldw), (max, pct, bmin), (mi, pi, fa))| HealthConfig {
                enabled: true,
                base_med: base,
                latency_weight: lw,
                error_weight: ew,
                load_weight: ldw,
                max_med: max,
                band_percent: pct,
                band_min: bmin,
                min_interval_ms: mi,
                probe_interval_ms: pi,
                forget_after_ms: fa,
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Call(u64, u8),
    Start,
    Probe(Option<u64>),
    Wait(u64),
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..10_000_000, 0u8..4).prop_map(|(us, e)| Op::Call(us, e)),
        Just(Op::Start),
        proptest::option::of(0u64..5_000_000).prop_map(Op::Probe),
        (0u64..20_000).prop_map(Op::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_med_is_monotonic_in_latency_errors_and_load(
        c in any_cfg(),
        lat in proptest::option::of(any::<u64>()),
        more_lat in any::<u64>(),
        ok in 0u32..=PPM,
        less_ok in 0u32..=PPM,
        inf in any::<u64>(),
        more_inf in any::<u64>(),
        slots in any::<u32>(),
    ) {
        let i = Inputs { latency_us: lat, success_ppm: ok, in_flight: inf, slots };
        let m = compute_med(&c, &i);
        let slower = Inputs { latency_us: Some(lat.unwrap_or(0).saturating_add(more_lat)), ..i };
        let failing = Inputs { success_ppm: ok.saturating_sub(less_ok), ..i };
        let busier = Inputs { in_flight: inf.saturating_add(more_inf), ..i };
        prop_assert!(compute_med(&c, &slower) >= m);
        prop_assert!(compute_med(&c, &failing) >= m);
        prop_assert!(compute_med(&c, &busier) >= m);
        prop_assert!(m >= c.base_med);
        prop_assert!(m <= c.max_med.max(c.base_med));
    }

    #[test]
    fn changes_respect_the_band_and_the_minimum_interval(
        c in any_cfg(),
        ops in proptest::collection::vec(any_op(), 1..200),
    ) {
        let mut h = Health::new(c.clone());
        let id = agent();
        let mut now = 1_000u64;
        h.agent_up(Millis(now), &id, 2, None);
        let mut advertised = c.base_med;
        let mut last_change = now;
        for op in ops {
            match op {
                Op::Call(us, e) => {
                    let end = [CallEnd::Ok, CallEnd::Error, CallEnd::Timeout, CallEnd::Neutral][usize::from(e)];
                    h.call_done(Millis(now), &id, us, end);
                }
                Op::Start => h.call_started(&id),
                Op::Probe(rtt) => h.probe_done(Millis(now), &id, rtt),
                Op::Wait(ms) => now += ms,
            }
            let computed = h.report(&id).unwrap().computed_med;
            let changed = h.poll(Millis(now));
            prop_assert!(changed.len() <= 1);
            if let Some((_, med)) = changed.first() {
                prop_assert!(now - last_change >= c.min_interval_ms);
                prop_assert!(med.abs_diff(advertised) > band(&c, advertised));
                advertised = *med;
                last_change = now;
            } else {
                // Nothing changed: inside the band, or too early.
                let r = h.report(&id).unwrap();
                prop_assert!(
                    !outside_band(&c, advertised, r.computed_med)
                        || now - last_change < c.min_interval_ms,
                    "computed {computed} advertised {advertised}"
                );
                // And the node is woken when the change becomes due.
                if r.change_pending {
                    let d = h.next_deadline();
                    prop_assert!(d.is_some_and(|d| d.0 <= last_change + c.min_interval_ms));
                }
            }
            prop_assert_eq!(h.advertised(&id, None), advertised);
            prop_assert!(advertised <= c.max_med.max(c.base_med));
        }
    }
}

#[test]
fn a_configured_med_is_the_agents_base() {
    let mut h = Health::new(cfg());
    h.agent_up(Millis(0), &agent(), 4, Some(300));
    assert_eq!(h.advertised(&agent(), Some(300)), 300);
    assert!(h.poll(Millis(1_000_000)).is_empty(), "not measured: kept");
    // 500 ms on top of it: 350, outside the band of 30 around 300.
    call(&mut h, 1_000_001, 500, CallEnd::Ok);
    assert_eq!(h.poll(Millis(1_000_001)), vec![(agent(), 350)]);
    // Not tracked (health off): the configured MED, else base_med.
    let off = Health::new(HealthConfig {
        enabled: false,
        base_med: 9,
        ..cfg()
    });
    assert_eq!(off.advertised(&agent(), Some(300)), 300);
    assert_eq!(off.advertised(&agent(), None), 9);
}
