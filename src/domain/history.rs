//! History queries: a time range and a bucket size, checked and bounded so one request
//! can ask for at most `MAX_BUCKETS` buckets.

use crate::domain::time::parse_rfc3339;
use crate::domain::visit::DAY_MS;
use crate::error::{ApiError, ApiResult};

pub const DEFAULT_DAYS: u64 = 30;
pub const MAX_BUCKETS: u64 = 2_000;
const HOUR_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn bucket_ms(self) -> u64 {
        match self {
            Granularity::Hour => HOUR_MS,
            Granularity::Day => DAY_MS,
        }
    }
}

/// `[from, to)` in Unix milliseconds, aligned to whole buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRange {
    pub from_ms: u64,
    pub to_ms: u64,
    pub granularity: Granularity,
}

impl HistoryRange {
    /// `from`/`to` are RFC 3339 or dates; by default the last 30 days up to now.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        granularity: Option<&str>,
        now_ms: u64,
    ) -> ApiResult<Self> {
        let granularity = match granularity {
            None | Some("day") => Granularity::Day,
            Some("hour") => Granularity::Hour,
            Some(_) => {
                return Err(ApiError::InvalidParameter(
                    "granularity must be hour or day".into(),
                ))
            }
        };
        let instant = |name: &str, raw: &str| {
            parse_rfc3339(raw).ok_or_else(|| {
                ApiError::InvalidParameter(format!("{name} must be an RFC 3339 time or a date"))
            })
        };
        let to_ms = match to {
            Some(raw) => instant("to", raw)?,
            None => now_ms,
        };
        let from_ms = match from {
            Some(raw) => instant("from", raw)?,
            None => to_ms.saturating_sub(DEFAULT_DAYS * DAY_MS),
        };
        if from_ms >= to_ms {
            return Err(ApiError::InvalidParameter("from must be before to".into()));
        }
        let bucket = granularity.bucket_ms();
        let (from_ms, to_ms) = (from_ms / bucket * bucket, to_ms.div_ceil(bucket) * bucket);
        if (to_ms - from_ms) / bucket > MAX_BUCKETS {
            return Err(ApiError::InvalidParameter(format!(
                "the range holds more than {MAX_BUCKETS} buckets; narrow it or use a coarser granularity"
            )));
        }
        Ok(HistoryRange {
            from_ms,
            to_ms,
            granularity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

    #[test]
    fn defaults_to_thirty_days_by_day() {
        let r = HistoryRange::parse(None, None, None, NOW).unwrap();
        assert_eq!(r.granularity, Granularity::Day);
        assert_eq!(
            r.to_ms, 1_700_006_400_000,
            "aligned up to the next midnight"
        );
        assert_eq!((r.to_ms - r.from_ms) / DAY_MS, 31);
    }

    #[test]
    fn explicit_ranges_align_to_buckets() {
        let r = HistoryRange::parse(
            Some("2023-11-14T10:30:00Z"),
            Some("2023-11-14T12:10:00Z"),
            Some("hour"),
            NOW,
        )
        .unwrap();
        assert_eq!(r.from_ms, 1_699_956_000_000);
        assert_eq!(r.to_ms, 1_699_966_800_000);
    }

    #[test]
    fn refuses_bad_ranges() {
        for (from, to, g) in [
            (Some("yesterday"), None, None),
            (Some("2023-11-15"), Some("2023-11-14"), None),
            (None, None, Some("week")),
            (Some("2020-01-01"), Some("2023-01-01"), Some("hour")),
        ] {
            assert_eq!(
                HistoryRange::parse(from, to, g, NOW).unwrap_err().code(),
                "INVALID_PARAMETER"
            );
        }
    }
}
