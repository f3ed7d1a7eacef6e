//! When an object copies its state to D1, and when its one alarm must fire. The object
//! is the authority; D1 is a copy that may lag by at most one flush interval while D1 is
//! healthy. An object has one alarm for several kinds of work (flushing, pruning keys,
//! dropping yesterday's visitors): each asks for the alarm to fire *by* its own due time,
//! so a far-off chore can never push a flush back.

/// What the alarm should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPlan {
    /// D1 already has this version: nothing to write.
    UpToDate,
    /// Write `version` to D1 (a write D1 applies only if it is newer than what it has).
    Write { version: u64 },
}

pub fn plan(version: u64, flushed_version: u64) -> FlushPlan {
    if version > flushed_version {
        FlushPlan::Write { version }
    } else {
        FlushPlan::UpToDate
    }
}

/// Delay before the next attempt after `failures` consecutive failed flushes: doubling
/// from the flush interval, capped at a minute, so a D1 outage costs few requests and a
/// recovery is noticed quickly.
pub fn retry_delay_ms(interval_ms: u64, failures: u32) -> u64 {
    const CAP_MS: u64 = 60_000;
    let base = interval_ms.max(100);
    base.saturating_mul(1u64 << failures.saturating_sub(1).min(16))
        .min(CAP_MS.max(base))
}

/// Whether the `failures`-th failed flush in a row is worth an error report: the third
/// (a blip is retried quietly), then each time the streak doubles, so an outage of hours
/// sends a handful of reports, not one a minute.
pub fn worth_reporting(failures: u32) -> bool {
    failures >= 3 && failures.is_multiple_of(3) && (failures / 3).is_power_of_two()
}

/// Whether an alarm armed for `armed_at` (`None`: none is armed) must be moved so that
/// one fires by `due_ms`.
pub fn must_arm(armed_at: Option<u64>, due_ms: u64) -> bool {
    armed_at.is_none_or(|at| at > due_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_what_d1_lacks() {
        assert_eq!(plan(0, 0), FlushPlan::UpToDate);
        assert_eq!(plan(5, 5), FlushPlan::UpToDate);
        assert_eq!(plan(6, 5), FlushPlan::Write { version: 6 });
        // A replayed alarm after a newer flush must not write an older version.
        assert_eq!(plan(5, 6), FlushPlan::UpToDate);
    }

    #[test]
    fn an_alarm_moves_only_earlier() {
        assert!(must_arm(None, 5_000));
        assert!(
            must_arm(Some(172_800_000), 2_000),
            "a key-pruning alarm two days out must not hold back a flush"
        );
        assert!(
            !must_arm(Some(1_000), 2_000),
            "an earlier alarm already covers it"
        );
        assert!(!must_arm(Some(2_000), 2_000));
    }

    #[test]
    fn a_failing_flush_is_reported_at_3_6_12_24_failures() {
        let reported: Vec<u32> = (0..100).filter(|n| worth_reporting(*n)).collect();
        assert_eq!(reported, [3, 6, 12, 24, 48, 96]);
    }

    #[test]
    fn retries_back_off_and_cap() {
        assert_eq!(retry_delay_ms(2_000, 1), 2_000);
        assert_eq!(retry_delay_ms(2_000, 2), 4_000);
        assert_eq!(retry_delay_ms(2_000, 3), 8_000);
        assert_eq!(retry_delay_ms(2_000, 10), 60_000);
        assert_eq!(retry_delay_ms(2_000, u32::MAX), 60_000);
        assert_eq!(retry_delay_ms(0, 1), 100);
        assert_eq!(retry_delay_ms(120_000, 3), 120_000);
    }
}
