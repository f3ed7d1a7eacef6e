//! History queries: a time range and a bucket size, checked and bounded so one request
//! can ask for at most `MAX_BUCKETS` buckets.

use crate::domain::time::{parse_rfc3339, rfc3339};
use crate::domain::visit::DAY_MS;
use crate::error::{ApiError, ApiResult};
use serde::Serialize;

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

/// Counted visits and first visits of the day in one bucket, as the store finds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: u64,
    pub visits: u64,
    pub uniques: u64,
}

/// `{series: [{start, visits, uniques}], total: {visits, visitor_days}}`, fields in the
/// order the contract lists them.
#[derive(Debug, Serialize)]
pub struct History {
    series: Vec<Point>,
    total: Totals,
}

#[derive(Debug, Serialize)]
struct Point {
    start: String,
    visits: u64,
    uniques: u64,
}

/// A bucket's uniques are the day's first visits in it, so a day's buckets add up to that
/// day's unique visitors; over several days the sum counts a visitor once per day:
/// visitor-days, and named so.
#[derive(Debug, Serialize)]
struct Totals {
    visits: u64,
    visitor_days: u64,
}

impl HistoryRange {
    /// Every bucket of the range, empty ones as zeros (charts need no gap filling), from
    /// the buckets found (sorted by start).
    pub fn fill(&self, found: Vec<Bucket>) -> History {
        let step = self.granularity.bucket_ms();
        let mut found = found.into_iter().peekable();
        let mut series = Vec::new();
        let mut total = Totals {
            visits: 0,
            visitor_days: 0,
        };
        let mut start = self.from_ms;
        while start < self.to_ms {
            let bucket = found.next_if(|b| b.start == start);
            let (visits, uniques) = bucket.map_or((0, 0), |b| (b.visits, b.uniques));
            total.visits += visits;
            total.visitor_days += uniques;
            series.push(Point {
                start: rfc3339(start),
                visits,
                uniques,
            });
            start += step;
        }
        History { series, total }
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
    fn every_bucket_is_filled_and_totals_are_visitor_days() {
        let range = HistoryRange::parse(Some("2023-11-12"), Some("2023-11-15"), None, NOW).unwrap();
        let day = |d: u64| 1_699_747_200_000 + d * DAY_MS;
        let history = range.fill(vec![
            Bucket {
                start: day(0),
                visits: 5,
                uniques: 3,
            },
            Bucket {
                start: day(2),
                visits: 2,
                uniques: 2,
            },
        ]);
        assert_eq!(
            serde_json::to_string(&history).unwrap(),
            r#"{"series":[{"start":"2023-11-12T00:00:00.000Z","visits":5,"uniques":3},{"start":"2023-11-13T00:00:00.000Z","visits":0,"uniques":0},{"start":"2023-11-14T00:00:00.000Z","visits":2,"uniques":2}],"total":{"visits":7,"visitor_days":5}}"#
        );
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
