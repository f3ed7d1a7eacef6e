//! A count of uses per UTC day against a limit: the proxy's share of KV writes, so no
//! stream of distinct URLs can spend the writes the refresh needs.

const DAY_MS: u64 = 86_400_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyAllowance {
    day: u64,
    used: u64,
}

impl DailyAllowance {
    /// Takes one use if today's are not all taken.
    pub fn take(&mut self, now_ms: u64, limit: u64) -> bool {
        let today = now_ms / DAY_MS;
        if today != self.day {
            *self = DailyAllowance {
                day: today,
                used: 0,
            };
        }
        if self.used >= limit {
            return false;
        }
        self.used += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_per_day() {
        let mut allowance = DailyAllowance::default();
        let noon = 20_000 * DAY_MS + DAY_MS / 2;
        assert!(allowance.take(noon, 2));
        assert!(allowance.take(noon + 1, 2));
        assert!(!allowance.take(noon + 2, 2));
        assert!(allowance.take(noon + DAY_MS, 2), "a new day");
        assert!(!DailyAllowance::default().take(noon, 0));
    }
}
