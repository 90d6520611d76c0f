//! The MIG split rules on hand-computed intervals.

use super::*;

fn claim(sm_count: u32, activity: f64) -> Claim {
    Claim { sm_count, activity }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn busy_instances_share_by_sms_times_activity() {
    // 1g (16 SMs) at 50 %, 2g (32 SMs) at 100 %, 3g (48 SMs) idle: weights 8, 32, 0.
    let (s, rule) = shares(132, &[claim(16, 0.5), claim(32, 1.0), claim(48, 0.0)]);
    assert_eq!(rule, Rule::Activity);
    assert!(close(s[0], 0.2) && close(s[1], 0.8) && s[2] == 0.0, "{s:?}");
    let (parts, rest) = split(1000.0, &s);
    assert!(
        close(parts[0], 200.0) && close(parts[1], 800.0),
        "{parts:?}"
    );
    assert!(rest.abs() < 1e-9);
}

#[test]
fn all_idle_splits_by_sm_count_and_leaves_the_rest_unallocated() {
    let (s, rule) = shares(132, &[claim(16, 0.0), claim(32, 0.0)]);
    assert_eq!(rule, Rule::Idle);
    let (parts, rest) = split(132.0, &s);
    assert!(close(parts[0], 16.0) && close(parts[1], 32.0), "{parts:?}");
    assert!(close(rest, 84.0), "{rest}");
}

#[test]
fn no_instance_leaves_everything_unallocated() {
    let (s, rule) = shares(132, &[]);
    assert_eq!((s.len(), rule), (0, Rule::Idle));
    assert_eq!(split(5.0, &s), (vec![], 5.0));
}

#[test]
fn without_gpm_an_instance_with_a_process_counts_as_fully_busy() {
    assert_eq!(activity(None, Some(2)), 1.0);
    assert_eq!(activity(None, Some(0)), 0.0);
    assert_eq!(activity(None, None), 0.0);
    assert_eq!(
        activity(Some(0.25), Some(0)),
        0.25,
        "GPM wins where it answered"
    );
    assert_eq!(activity(Some(1.7), None), 1.0);
    assert_eq!(activity(Some(f64::NAN), Some(1)), 1.0);
}

#[test]
fn more_sms_claimed_than_the_gpu_has_never_allocates_more_than_the_energy() {
    let (s, _) = shares(10, &[claim(16, 0.0), claim(16, 0.0)]);
    let (parts, rest) = split(100.0, &s);
    assert!(close(parts.iter().sum::<f64>() + rest, 100.0));
    assert!(rest >= 0.0);
}

#[test]
fn conservation_holds_to_1e_9_over_many_random_intervals() {
    // A deterministic xorshift: no dependency, reproducible.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut device, mut parts_total, mut rest_total) = (0.0, 0.0, 0.0);
    for _ in 0..100_000 {
        let n = (next() * 8.0) as usize;
        let claims: Vec<Claim> = (0..n)
            .map(|_| {
                claim(
                    1 + (next() * 40.0) as u32,
                    if next() < 0.3 { 0.0 } else { next() },
                )
            })
            .collect();
        let energy = next() * 700.0;
        let (s, _) = shares(132, &claims);
        let (parts, rest) = split(energy, &s);
        assert!(rest >= 0.0 && parts.iter().all(|p| *p >= 0.0));
        device += energy;
        parts_total += parts.iter().sum::<f64>();
        rest_total += rest;
    }
    let error = ((parts_total + rest_total) - device).abs() / device;
    assert!(error <= 1e-9, "relative error {error:e}");
}
