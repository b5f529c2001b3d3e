//! The hand-off decision, as pure functions of what was measured: unit-tested without AWS.

use super::Runner;
use std::time::Duration;

/// Time kept free after the job itself: the report, the tags and the lock release.
pub const RESERVE: Duration = Duration::from_secs(30);

/// Where a job runs, and why (the reason goes into logs and the function's answer).
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Here(String),
    HandOff(String),
}

/// A restore's expected duration: the archive's size at the measured (or assumed) rate.
pub fn restore_estimate(archive_bytes: u64, bytes_per_second: f64) -> Duration {
    Duration::from_secs_f64(archive_bytes as f64 / bytes_per_second.max(1.0))
}

/// A backup's expected duration: the last backup's, grown by as much as the data grew since
/// (`current_bytes` when known, e.g. from the backends; else the same size).
pub fn backup_estimate(last_duration: Duration, last_bytes: u64, current_bytes: Option<u64>) -> Duration {
    let growth = match current_bytes {
        Some(now) if last_bytes > 0 => (now as f64 / last_bytes as f64).max(1.0),
        _ => 1.0,
    };
    last_duration.mul_f64(growth)
}

/// Decides: `lambda` never hands off, `fargate` always does, `auto` hands off when the estimate
/// times the safety factor, plus `RESERVE`, does not fit in the time left. Without an estimate
/// (nothing measured yet) `auto` runs here.
pub fn decide(runner: Runner, estimate: Option<Duration>, time_left: Duration, safety_factor: f64) -> Decision {
    match runner {
        Runner::Lambda => Decision::Here("NGBAK_RUNNER=lambda".into()),
        Runner::Fargate => Decision::HandOff("NGBAK_RUNNER=fargate".into()),
        Runner::Auto => {
            let Some(estimate) = estimate else {
                return Decision::Here("no estimate yet (nothing measured)".into());
            };
            let needed = estimate.mul_f64(safety_factor.max(1.0)) + RESERVE;
            let why = format!(
                "estimated {:.0} s x safety factor {safety_factor} + {} s reserve = {:.0} s, {:.0} s left",
                estimate.as_secs_f64(),
                RESERVE.as_secs(),
                needed.as_secs_f64(),
                time_left.as_secs_f64()
            );
            if needed > time_left {
                Decision::HandOff(why)
            } else {
                Decision::Here(why)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }
    fn hands_off(d: &Decision) -> bool {
        matches!(d, Decision::HandOff(_))
    }

    #[test]
    fn a_small_archive_restores_in_the_function() {
        // 1 GiB at 10 MiB/s: 102 s x 1.5 + 30 = 184 s, well inside 890 s.
        let e = restore_estimate(1024 * MIB, 10.0 * MIB as f64);
        assert_eq!(e.as_secs(), 102);
        assert!(!hands_off(&decide(Runner::Auto, Some(e), secs(890), 1.5)));
    }

    #[test]
    fn an_archive_too_big_for_the_time_left_is_handed_off() {
        // 10 GiB at 20 MiB/s: 512 s x 1.5 + 30 = 798 s: fits in 890 s, not in 700 s.
        let e = restore_estimate(10 * 1024 * MIB, 20.0 * MIB as f64);
        assert!(!hands_off(&decide(Runner::Auto, Some(e), secs(890), 1.5)));
        let d = decide(Runner::Auto, Some(e), secs(700), 1.5);
        assert!(hands_off(&d), "{d:?}");
        if let Decision::HandOff(why) = d {
            assert!(why.contains("798 s") && why.contains("700 s left"), "{why}");
        }
    }

    #[test]
    fn a_slower_measured_rate_hands_off_what_a_faster_one_keeps() {
        let bytes = 6 * 1024 * MIB;
        let fast = restore_estimate(bytes, 50.0 * MIB as f64); // 123 s
        let slow = restore_estimate(bytes, 5.0 * MIB as f64); // 1229 s
        assert!(!hands_off(&decide(Runner::Auto, Some(fast), secs(890), 1.5)));
        assert!(hands_off(&decide(Runner::Auto, Some(slow), secs(890), 1.5)));
    }

    #[test]
    fn the_safety_factor_and_the_reserve_count() {
        let e = secs(500);
        assert!(!hands_off(&decide(Runner::Auto, Some(e), secs(531), 1.0)));
        assert!(hands_off(&decide(Runner::Auto, Some(e), secs(529), 1.0)), "the reserve is 30 s");
        assert!(hands_off(&decide(Runner::Auto, Some(e), secs(531), 1.2)));
        // A factor below 1 would shrink the estimate: it counts as 1.
        assert!(hands_off(&decide(Runner::Auto, Some(e), secs(529), 0.5)));
    }

    #[test]
    fn forced_runners_ignore_the_estimate() {
        assert!(hands_off(&decide(Runner::Fargate, Some(secs(1)), secs(900), 1.5)));
        assert!(hands_off(&decide(Runner::Fargate, None, secs(900), 1.5)));
        assert!(!hands_off(&decide(Runner::Lambda, Some(secs(5000)), secs(900), 1.5)));
    }

    #[test]
    fn without_a_measurement_auto_runs_here() {
        assert!(!hands_off(&decide(Runner::Auto, None, secs(10), 1.5)));
    }

    #[test]
    fn a_backup_estimate_grows_with_the_data() {
        assert_eq!(backup_estimate(secs(600), 4 * MIB, None), secs(600));
        assert_eq!(backup_estimate(secs(600), 4 * MIB, Some(6 * MIB)), secs(900));
        assert_eq!(backup_estimate(secs(600), 4 * MIB, Some(2 * MIB)), secs(600), "never shrinks");
        // The last backup took 10 minutes: with the factor, the next one goes to Fargate.
        let e = backup_estimate(secs(600), 4 * MIB, None);
        assert!(hands_off(&decide(Runner::Auto, Some(e), secs(899), 1.5)));
    }
}
