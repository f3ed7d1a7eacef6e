//! A counter's value rules: the safe-integer range, positive bounded deltas, and what an
//! increment or a set does to a value. The counter object applies these; nothing else
//! changes a value.

use crate::error::{ApiError, ApiResult};
use serde::Serialize;
use serde_json::Value;

/// The largest integer a JavaScript number holds exactly; values stay within ±this.
pub const MAX_SAFE: i64 = 9_007_199_254_740_991;
pub const DEFAULT_MAX_DELTA: i64 = 50;
pub const MAX_LABEL_CHARS: usize = 128;

/// A requested increment, already known to be positive. Anything too large for the
/// range saturates, so the max_delta check rejects it with the right code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    pub const ONE: Delta = Delta(1);

    /// `?delta=N`: absent means 1; otherwise plain decimal digits, at least 1.
    pub fn parse(raw: Option<&str>) -> ApiResult<Delta> {
        let Some(raw) = raw else {
            return Ok(Delta::ONE);
        };
        let invalid = || ApiError::InvalidDelta("delta must be a positive integer".into());
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = raw.trim_start_matches('0');
        if digits.is_empty() {
            return Err(invalid());
        }
        Ok(Delta(digits.parse::<u64>().unwrap_or(u64::MAX)))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

/// What a counter is, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CounterMeta {
    pub counter_id: String,
    pub tenant_id: String,
    pub label: Option<String>,
    pub max_delta: i64,
    pub created_ms: u64,
}

/// What changes: the value, a version that grows with every mutation (D1 keeps the
/// version it last saw, which makes flushes idempotent), and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CounterState {
    pub value: i64,
    pub version: u64,
    pub updated_ms: u64,
}

/// The result of one accepted mutation, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    pub operation_id: String,
    pub delta: i64,
    pub value: i64,
    pub updated_ms: u64,
}

impl CounterMeta {
    /// Reads what `serde_json::to_string` wrote (stored in the object, and sent to it).
    pub fn from_json(v: &Value) -> Option<CounterMeta> {
        Some(CounterMeta {
            counter_id: v.get("counter_id")?.as_str()?.to_string(),
            tenant_id: v.get("tenant_id")?.as_str()?.to_string(),
            label: match v.get("label")? {
                Value::Null => None,
                l => Some(l.as_str()?.to_string()),
            },
            max_delta: v.get("max_delta")?.as_i64()?,
            created_ms: v.get("created_ms")?.as_u64()?,
        })
    }
}

impl CounterState {
    pub fn from_json(v: &Value) -> Option<CounterState> {
        Some(CounterState {
            value: v.get("value")?.as_i64()?,
            version: v.get("version")?.as_u64()?,
            updated_ms: v.get("updated_ms")?.as_u64()?,
        })
    }
}

pub fn check_value(value: i64) -> ApiResult<i64> {
    if (-MAX_SAFE..=MAX_SAFE).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::CounterOverflow)
    }
}

impl CounterState {
    /// The state after adding `delta`, or why not. Leaves `self` untouched.
    pub fn increment(&self, meta: &CounterMeta, delta: Delta, now_ms: u64) -> ApiResult<Self> {
        let max_delta = meta.max_delta;
        if delta.get() > max_delta as u64 {
            return Err(ApiError::DeltaExceedsMaximum { max_delta });
        }
        let value = i64::try_from(delta.get())
            .ok()
            .and_then(|d| self.value.checked_add(d))
            .ok_or(ApiError::CounterOverflow)?;
        let value = check_value(value)?;
        Ok(self.next(value, now_ms))
    }

    /// A set is recorded as the change it makes, which must itself be a safe integer
    /// (JavaScript, D1 and every ledger reader see numbers as doubles): from -MAX to MAX
    /// takes two sets.
    pub fn set(&self, value: i64, now_ms: u64) -> ApiResult<Self> {
        let value = check_value(value)?;
        if value.abs_diff(self.value) > MAX_SAFE as u64 {
            return Err(ApiError::InvalidParameter(format!(
                "value: a set may move the counter by at most {MAX_SAFE} at once"
            )));
        }
        Ok(self.next(value, now_ms))
    }

    fn next(&self, value: i64, now_ms: u64) -> Self {
        CounterState {
            value,
            version: self.version + 1,
            // A clock that steps back never makes updated_at go backwards.
            updated_ms: now_ms.max(self.updated_ms),
        }
    }
}

/// Labels are free text for people: 1..=128 characters, not blank, no control characters.
pub fn check_label(raw: &str) -> ApiResult<String> {
    let chars = raw.chars().count();
    if raw.trim().is_empty() || chars > MAX_LABEL_CHARS || raw.chars().any(char::is_control) {
        return Err(ApiError::InvalidParameter(format!(
            "label must be 1 to {MAX_LABEL_CHARS} characters, not blank, without control characters"
        )));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(max_delta: i64) -> CounterMeta {
        CounterMeta {
            counter_id: "c".into(),
            tenant_id: "t".into(),
            label: None,
            max_delta,
            created_ms: 0,
        }
    }

    fn state(value: i64) -> CounterState {
        CounterState {
            value,
            version: 7,
            updated_ms: 100,
        }
    }

    #[test]
    fn delta_parsing() {
        assert_eq!(Delta::parse(None).unwrap(), Delta::ONE);
        assert_eq!(Delta::parse(Some("5")).unwrap().get(), 5);
        assert_eq!(Delta::parse(Some("007")).unwrap().get(), 7);
        for bad in [
            "", "0", "000", "-1", "+1", "1.5", "1e3", "abc", " 1", "1 ", "0x10", "١",
        ] {
            assert_eq!(
                Delta::parse(Some(bad)).unwrap_err().code(),
                "INVALID_DELTA",
                "{bad:?}"
            );
        }
        let huge = Delta::parse(Some("99999999999999999999999999")).unwrap();
        assert_eq!(huge.get(), u64::MAX);
    }

    #[test]
    fn increment_respects_max_delta_and_range() {
        let next = state(10).increment(&meta(50), Delta(50), 200).unwrap();
        assert_eq!((next.value, next.version, next.updated_ms), (60, 8, 200));
        let err = state(10).increment(&meta(50), Delta(51), 200).unwrap_err();
        assert_eq!(err, ApiError::DeltaExceedsMaximum { max_delta: 50 });
        let huge = Delta::parse(Some("99999999999999999999")).unwrap();
        assert_eq!(
            state(0)
                .increment(&meta(MAX_SAFE), huge, 1)
                .unwrap_err()
                .code(),
            "DELTA_EXCEEDS_MAXIMUM"
        );
        assert_eq!(
            state(MAX_SAFE - 1)
                .increment(&meta(50), Delta(1), 1)
                .unwrap()
                .value,
            MAX_SAFE
        );
        assert_eq!(
            state(MAX_SAFE)
                .increment(&meta(50), Delta(1), 1)
                .unwrap_err(),
            ApiError::CounterOverflow
        );
        assert_eq!(
            state(MAX_SAFE)
                .increment(&meta(MAX_SAFE), Delta(MAX_SAFE as u64), 1)
                .unwrap_err(),
            ApiError::CounterOverflow
        );
    }

    #[test]
    fn a_set_changes_the_value_by_a_safe_integer_at_most() {
        assert_eq!(state(0).set(MAX_SAFE, 1).unwrap().value, MAX_SAFE);
        assert_eq!(state(-1).set(MAX_SAFE - 1, 1).unwrap().value, MAX_SAFE - 1);
        for (from, to) in [(-MAX_SAFE, MAX_SAFE), (-1, MAX_SAFE), (MAX_SAFE, -1)] {
            assert!(matches!(
                state(from).set(to, 1),
                Err(ApiError::InvalidParameter(_))
            ));
        }
    }

    #[test]
    fn set_checks_the_range_and_time_never_goes_back() {
        assert_eq!(state(0).set(-MAX_SAFE, 50).unwrap().value, -MAX_SAFE);
        assert_eq!(state(0).set(-MAX_SAFE, 50).unwrap().updated_ms, 100);
        assert_eq!(
            state(1).set(MAX_SAFE + 1, 50).unwrap_err(),
            ApiError::CounterOverflow
        );
        assert_eq!(
            state(1).set(i64::MIN, 50).unwrap_err(),
            ApiError::CounterOverflow
        );
    }

    #[test]
    fn labels() {
        assert_eq!(check_label("Likes on /home").unwrap(), "Likes on /home");
        assert_eq!(check_label("日本語").unwrap(), "日本語");
        assert!(check_label(&"é".repeat(128)).is_ok());
        for bad in ["", "   ", "a\nb", "tab\there", "\u{7f}"] {
            assert_eq!(
                check_label(bad).unwrap_err().code(),
                "INVALID_PARAMETER",
                "{bad:?}"
            );
        }
        assert!(check_label(&"x".repeat(129)).is_err());
    }

    /// The object persists these shapes; changing them breaks data already written.
    #[test]
    fn persisted_formats_are_pinned() {
        let json = serde_json::to_string(&CounterState {
            value: -3,
            version: 9,
            updated_ms: 12,
        })
        .unwrap();
        assert_eq!(json, r#"{"value":-3,"version":9,"updated_ms":12}"#);
        let back = CounterState::from_json(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back.value, -3);
        for label in [None, Some("likes".to_string())] {
            let mut m = meta(5);
            m.label = label;
            let json = serde_json::to_value(&m).unwrap();
            assert_eq!(CounterMeta::from_json(&json), Some(m));
        }
    }
}
