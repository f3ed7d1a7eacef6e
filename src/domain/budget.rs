//! Budgets against abuse: how many counting requests one client may make to one counted
//! object (a counter or a page) per window. The object being counted keeps its clients'
//! windows in memory and decides here, in the same synchronous step that applies the
//! change, so a budget costs no extra hop. A fixed window opens with the client's first
//! counted request.

use crate::domain::client::ClientKey;
use std::collections::{HashMap, VecDeque};

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

/// Clients one object remembers at once. Past it the client remembered longest is
/// forgotten (its next request starts a fresh window): a flood from many addresses can
/// neither grow the object's memory nor crowd real clients out of their budgets.
pub const MAX_CLIENTS: usize = 20_000;

/// One counted object's budgets: a window per client.
#[derive(Debug, Default)]
pub struct Budgets {
    windows: HashMap<String, Window>,
    /// Clients in the order they were first remembered; each appears once.
    order: VecDeque<String>,
}

impl Budgets {
    /// Counts one request of `client` if its window has room.
    pub fn admit(&mut self, client: &ClientKey, now_ms: u64, policy: RatePolicy) -> Decision {
        if let Some(window) = self.windows.get_mut(client.as_str()) {
            return window.admit(now_ms, policy);
        }
        if self.windows.len() >= MAX_CLIENTS {
            if let Some(oldest) = self.order.pop_front() {
                self.windows.remove(&oldest);
            }
        }
        self.order.push_back(client.as_str().to_string());
        self.windows
            .entry(client.as_str().to_string())
            .or_default()
            .admit(now_ms, policy)
    }

    pub fn clients(&self) -> usize {
        self.windows.len()
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

    fn client(ip: &str) -> ClientKey {
        ClientKey::from_header(Some(ip))
    }

    #[test]
    fn each_client_has_its_own_window() {
        let mut b = Budgets::default();
        for _ in 0..3 {
            assert!(b.admit(&client("203.0.113.1"), 0, POLICY).allowed);
        }
        assert!(!b.admit(&client("203.0.113.1"), 0, POLICY).allowed);
        assert!(b.admit(&client("203.0.113.2"), 0, POLICY).allowed);
        // Two addresses of one IPv6 /64 are one client.
        for _ in 0..3 {
            assert!(b.admit(&client("2001:db8::1"), 0, POLICY).allowed);
        }
        assert!(!b.admit(&client("2001:db8::ffff"), 0, POLICY).allowed);
        assert!(b.admit(&client("2001:db8:0:1::1"), 0, POLICY).allowed);
    }

    #[test]
    fn a_flood_of_addresses_is_bounded_and_crowds_no_one_out() {
        let mut b = Budgets::default();
        let flood = |i: usize| client(&format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255));
        // A reader counts, then a flood of twice the bound arrives.
        assert!(b.admit(&client("192.0.2.1"), 0, POLICY).allowed);
        for i in 0..2 * MAX_CLIENTS {
            assert!(b.admit(&flood(i), 1_000, POLICY).allowed);
        }
        assert_eq!(b.clients(), MAX_CLIENTS);
        // Newcomers still get a budget of their own, whatever the flood did.
        for _ in 0..3 {
            assert!(b.admit(&client("198.51.100.7"), 2_000, POLICY).allowed);
        }
        assert!(!b.admit(&client("198.51.100.7"), 2_000, POLICY).allowed);
        assert_eq!(b.clients(), MAX_CLIENTS);
    }
}
