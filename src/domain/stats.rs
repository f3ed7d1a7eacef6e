//! The stats API's rules: which range a request asks about, which rollup blocks cover
//! its days, and the site-wide visitor sample every page of a tenant feeds.
//!
//! Rollups (written by page objects' flushes, read by `store::stats`) keep per-day top
//! lists in aligned blocks of 2^level days, so any range of days is read as a dozen or so
//! blocks rather than one row per day and key. Site-wide visitors are a set of keyed
//! hashes per tenant and day that every page inserts into — a union, so merging pages is
//! free — exact up to a limit, then sampled: past it a day keeps only hashes below
//! 2^(52 - level), and visitors are estimated as kept × 2^level.

use crate::domain::crypto::hmac_sha256;
use crate::domain::history::{Granularity, HistoryRange};
use crate::domain::page::PageId;
use crate::domain::visit::DAY_MS;
use crate::error::{ApiError, ApiResult};

/// Blocks of 1, 2, 4, … 256 days. Base 2 rather than a coarser base: a range then
/// needs fewer blocks (90 days: at most 10, 6.4 on average; base 4 needed up to 15), and
/// every block of a range is read whole for every key it holds, so the rows a stats
/// request reads scale with the block count. The price is more rows per flush (one per
/// level for each key a flush touches).
pub const LEVELS: u32 = 9;
pub const DEFAULT_LIMIT: u64 = 10;
pub const MAX_LIMIT: u64 = 100;
/// The longest range, in days: a year and a bit, for "12 months" and its comparison.
pub const MAX_DAYS: u64 = 400;
/// Bits of a site-wide visitor hash.
pub const HASH_BITS: u32 = 52;

/// A checked stats request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub range: HistoryRange,
    /// `[from, to)` in days: the whole days the range touches, which top lists count.
    pub days: (u64, u64),
    pub limit: u64,
    pub page: Option<PageId>,
}

impl StatsQuery {
    pub fn parse(
        range: HistoryRange,
        limit: Option<&str>,
        page: Option<&str>,
    ) -> ApiResult<StatsQuery> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::InvalidParameter(format!(
                        "limit must be an integer from 1 to {MAX_LIMIT}"
                    ))
                })?,
        };
        let page = match page {
            None => None,
            Some(raw) => Some(PageId::new(raw.to_string())?),
        };
        let days = (range.from_ms / DAY_MS, range.to_ms.div_ceil(DAY_MS));
        if days.1 - days.0 > MAX_DAYS {
            return Err(ApiError::InvalidParameter(format!(
                "the range is longer than {MAX_DAYS} days"
            )));
        }
        Ok(StatsQuery {
            range,
            days,
            limit,
            page,
        })
    }

    /// The range's buckets as the rollups number them: `(unit, from, to)`, unit 0 hours,
    /// 1 days.
    pub fn buckets(&self) -> (u8, u64, u64) {
        let size = self.range.granularity.bucket_ms();
        let unit = u8::from(self.range.granularity == Granularity::Day);
        (unit, self.range.from_ms / size, self.range.to_ms / size)
    }

    /// The range of the same length just before this one, for "vs last period".
    pub fn previous(&self) -> (u64, u64) {
        let (_, from, to) = self.buckets();
        (from.saturating_sub(to - from), from)
    }

    /// The blocks a site's top lists sum (none when the query is narrowed to a page).
    pub fn site_blocks(&self) -> Vec<(u32, u64)> {
        match self.page {
            Some(_) => Vec::new(),
            None => blocks(self.days.0, self.days.1),
        }
    }

    /// The first days of the top-level blocks (256 days) that overlap the range's days
    /// (none when narrowed to a page): their keys are every key a site's top lists for the
    /// range can hold.
    pub fn cover(&self) -> Vec<u64> {
        let top = LEVELS - 1;
        match self.page {
            Some(_) => Vec::new(),
            None => ((self.days.0 >> top)..=(self.days.1.saturating_sub(1) >> top))
                .map(|b| b << top)
                .collect(),
        }
    }

    /// The blocks the top lists read, as `[[level, start], …]`: the whole tenant's rows
    /// exist at every level; a page's own rows only per day.
    pub fn blocks_json(&self) -> String {
        let (from, to) = self.days;
        let blocks = if self.page.is_some() {
            (from..to).map(|day| (0, day)).collect()
        } else {
            blocks(from, to)
        };
        let pairs: Vec<String> = blocks.iter().map(|(l, s)| format!("[{l},{s}]")).collect();
        format!("[{}]", pairs.join(","))
    }
}

/// The fewest aligned blocks (2^level days, starting at a multiple of their length)
/// that cover the days `[from, to)` exactly once each.
pub fn blocks(from: u64, to: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut day = from;
    while day < to {
        let level = (0..LEVELS)
            .rev()
            .find(|&level| {
                let size = 1u64 << level;
                day.is_multiple_of(size) && day + size <= to
            })
            .unwrap_or(0);
        out.push((level, day));
        day += 1u64 << level;
    }
    out
}

/// The visitor's hash for the tenant's site-wide set: keyed by the day's visitor hash
/// (itself keyed by the day's salt), so it changes every day and differs per tenant;
/// 52 bits: exact as a JavaScript number on its way through the runtime (a day of
/// 100,000 visitors has a one-in-a-million chance of any two colliding).
pub fn site_hash(visitor: &[u8; 16], tenant: &str) -> i64 {
    let mac = hmac_sha256(visitor, tenant.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&mac[..8]);
    (u64::from_be_bytes(bytes) >> (64 - HASH_BITS)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn blocks_cover_every_day_once_with_few_reads() {
        for from in 0..600u64 {
            for len in [1, 7, 30, 90, 365] {
                let to = from + len;
                let found = blocks(from, to);
                let mut day = from;
                for &(level, start) in &found {
                    let size = 1u64 << level;
                    assert_eq!(start, day, "contiguous");
                    assert_eq!(start % size, 0, "aligned");
                    day += size;
                }
                assert_eq!(day, to, "ends where the range ends");
                // 90 days never need more than 10 blocks, a year not more than 14.
                let bound = match len {
                    90 => 10,
                    365 => 14,
                    _ => 8,
                };
                assert!(found.len() <= bound, "{from}+{len}: {}", found.len());
            }
        }
    }

    #[test]
    fn cover_blocks_hold_the_range() {
        let cover = |from: &str, to: &str| {
            let range = HistoryRange::parse(Some(from), Some(to), None, 0).unwrap();
            StatsQuery::parse(range, None, None).unwrap().cover()
        };
        // Day 19,968 (2024-09-02) starts a 256-day block.
        assert_eq!(cover("2024-09-02", "2024-09-10"), vec![19_968]);
        assert_eq!(cover("2024-09-01", "2024-09-10"), vec![19_712, 19_968]);
        assert_eq!(
            cover("2024-04-15", "2025-05-18"),
            vec![19_712, 19_968, 20_224]
        );
    }

    #[test]
    fn queries_check_their_limits() {
        let day = |d: &str| HistoryRange::parse(Some(d), Some("2024-03-01"), None, 0).unwrap();
        let q = StatsQuery::parse(day("2024-02-01"), None, None).unwrap();
        assert_eq!(q.limit, 10);
        assert_eq!(q.days.1 - q.days.0, 29);
        assert_eq!(q.buckets(), (1, q.days.0, q.days.1));
        assert_eq!(q.previous(), (q.days.0 - 29, q.days.0));
        for bad in ["0", "101", "x", "-1"] {
            let e = StatsQuery::parse(day("2024-02-01"), Some(bad), None).unwrap_err();
            assert_eq!(e.code(), "INVALID_PARAMETER");
        }
        let e = StatsQuery::parse(day("2022-01-01"), None, None).unwrap_err();
        assert_eq!(e.code(), "INVALID_PARAMETER");
        assert!(StatsQuery::parse(day("2024-02-01"), None, Some("")).is_err());
        let page = StatsQuery::parse(day("2024-02-27"), Some("3"), Some("/a")).unwrap();
        assert_eq!(page.blocks_json().matches('[').count(), 3 + 1);
    }

    #[test]
    fn site_hashes_differ_per_tenant_and_fit_52_bits() {
        let v = [7u8; 16];
        assert_ne!(site_hash(&v, "t1"), site_hash(&v, "t2"));
        assert_eq!(site_hash(&v, "t1"), site_hash(&v, "t1"));
        assert!((0..1000u32).all(|i| {
            let mut v = [0u8; 16];
            v[..4].copy_from_slice(&i.to_be_bytes());
            (0..1i64 << HASH_BITS).contains(&site_hash(&v, "t"))
        }));
    }

    /// Whether a day at `level` keeps this hash: what the rollup SQL checks
    /// (`hash >> (52 - level) = 0`), modelled for the test below.
    fn kept(hash: i64, level: u32) -> bool {
        level == 0 || (hash >> (HASH_BITS - level)) == 0
    }

    /// The rule the rollup SQL runs, modelled: pages insert into one set per day; past
    /// `cap` kept hashes the level goes up and the set keeps what the level samples.
    struct Day {
        kept: HashSet<i64>,
        level: u32,
    }

    impl Day {
        fn insert(&mut self, hashes: &[i64], cap: usize) {
            for &h in hashes {
                if kept(h, self.level) {
                    self.kept.insert(h);
                }
            }
            if self.kept.len() > cap {
                self.level += 1;
                let level = self.level;
                self.kept.retain(|&h| kept(h, level));
            }
        }

        fn visitors(&self) -> u64 {
            (self.kept.len() as u64) << self.level
        }
    }

    #[test]
    fn site_visitors_merge_across_pages_exactly_then_estimate() {
        let visitor = |i: u32| {
            let mut v = [0u8; 16];
            v[..4].copy_from_slice(&i.to_be_bytes());
            site_hash(&v, "tenant")
        };
        let cap = 100_000;
        let mut day = Day {
            kept: HashSet::new(),
            level: 0,
        };
        // Three pages, each flushing its own first visits in batches of 500; most
        // visitors read more than one page.
        for page in 0..3u32 {
            let mut batch = Vec::new();
            for i in 0..100_000u32 {
                if (i + page) % 3 != 0 {
                    batch.push(visitor(i));
                }
                if batch.len() == 500 {
                    day.insert(&batch, cap);
                    batch.clear();
                }
            }
            day.insert(&batch, cap);
        }
        assert_eq!(day.level, 0);
        assert_eq!(day.visitors(), 100_000, "exact up to the cap");
        for i in 100_000..400_000u32 {
            day.insert(&[visitor(i)], cap);
        }
        assert!(day.level >= 2);
        let estimate = day.visitors() as f64;
        assert!(
            (estimate - 400_000.0).abs() / 400_000.0 < 0.02,
            "estimate {estimate}"
        );
        assert!(day.kept.len() <= cap + 1);
    }
}
