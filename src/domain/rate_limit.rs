//! Rate-limit arithmetic: a fixed window per client and request class that opens with the
//! client's first request. The limiter object owns the windows; this decides.

/// `limit` requests per `window_ms`; a window of 0 turns limiting off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatePolicy {
    pub limit: u32,
    pub window_ms: u64,
}

impl RatePolicy {
    pub fn is_enabled(&self) -> bool {
        self.window_ms > 0
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    opened_ms: u64,
    used: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the window reopens (at least 1); meaningful when refused.
    pub retry_after_seconds: u64,
}

impl Window {
    /// Counts one request if the window has room. A refused request is not counted, so
    /// a client that keeps hammering does not push its own reset further away.
    pub fn admit(&mut self, now_ms: u64, policy: RatePolicy) -> Decision {
        let closes_ms = self.opened_ms.saturating_add(policy.window_ms);
        if self.used == 0 || now_ms >= closes_ms || now_ms < self.opened_ms {
            *self = Window {
                opened_ms: now_ms,
                used: 0,
            };
        }
        let allowed = self.used < policy.limit;
        if allowed {
            self.used += 1;
        }
        let until_reset = (self.opened_ms + policy.window_ms).saturating_sub(now_ms);
        Decision {
            allowed,
            limit: policy.limit,
            remaining: policy.limit.saturating_sub(self.used),
            retry_after_seconds: until_reset.div_ceil(1000).max(1),
        }
    }

    /// True once the window can no longer refuse anything, so its memory can go.
    pub fn is_expired(&self, now_ms: u64, policy: RatePolicy) -> bool {
        now_ms >= self.opened_ms.saturating_add(policy.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RatePolicy = RatePolicy {
        limit: 3,
        window_ms: 60_000,
    };

    #[test]
    fn admits_up_to_the_limit_then_refuses_until_the_window_closes() {
        let mut w = Window::default();
        let remaining: Vec<u32> = (0..3)
            .map(|i| w.admit(1_000 + i, POLICY).remaining)
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = w.admit(31_000, POLICY);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after_seconds, 30);
        assert!(!w.admit(60_999, POLICY).allowed);
        assert_eq!(w.admit(60_999, POLICY).retry_after_seconds, 1);
        let reopened = w.admit(61_000, POLICY);
        assert!(reopened.allowed);
        assert_eq!(reopened.remaining, 2);
    }

    #[test]
    fn refusals_do_not_extend_the_window() {
        let mut w = Window::default();
        for t in 0..100 {
            w.admit(t * 500, POLICY);
        }
        assert!(w.admit(60_000, POLICY).allowed);
    }

    #[test]
    fn a_clock_step_back_reopens_rather_than_locking_out() {
        let mut w = Window::default();
        for _ in 0..3 {
            w.admit(50_000, POLICY);
        }
        assert!(w.admit(10_000, POLICY).allowed);
    }

    #[test]
    fn zero_limit_refuses_everything_and_expiry_is_known() {
        let mut w = Window::default();
        let d = w.admit(
            5,
            RatePolicy {
                limit: 0,
                window_ms: 1_000,
            },
        );
        assert!(!d.allowed);
        assert!(!RatePolicy {
            limit: 5,
            window_ms: 0
        }
        .is_enabled());
        let mut w = Window::default();
        w.admit(0, POLICY);
        assert!(!w.is_expired(59_999, POLICY));
        assert!(w.is_expired(60_000, POLICY));
    }
}
