//! Unique visitors of one page on one UTC day. Exact up to `EXACT_LIMIT` visitors: the
//! page object keeps each of the day's keyed visitor hashes as one row of its own storage,
//! and a visitor is new exactly when its hash is not there yet. Past the limit, further
//! visitors go into a HyperLogLog sketch (2^14 one-byte registers, standard error about
//! 0.8 %): a visit is flagged new while the flags so far trail the sketch's estimate, so
//! the flags always add up to the day's count (history equals `uniques_today`), and both
//! are estimates from there on. The hashes are useless once the day's salt is gone, and
//! the object drops them when the day ends.
//!
//! This module decides; the page object asks its storage whether a hash is known.

/// Visitors per page and day counted exactly.
pub const EXACT_LIMIT: u64 = 2_000_000;

const P: u32 = 14;
const M: usize = 1 << P;

/// A day's unique visitors so far: `exact` counted one by one, `beyond` flagged from the
/// sketch past the limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayUniques {
    pub day: u64,
    pub exact: u64,
    pub beyond: u64,
    pub sketch: Option<Sketch>,
}

/// What one visitor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First visit today; `remember` says whether its hash must be stored.
    New {
        remember: bool,
    },
    Repeat,
}

impl Seen {
    pub fn is_new(self) -> bool {
        matches!(self, Seen::New { .. })
    }
}

impl DayUniques {
    pub fn new(day: u64) -> Self {
        DayUniques {
            day,
            ..DayUniques::default()
        }
    }

    /// Records a visitor whose hash the exact set holds (`known`) or not.
    pub fn observe(&mut self, hash: &[u8; 16], known: bool) -> Seen {
        if known {
            return Seen::Repeat;
        }
        if self.exact < EXACT_LIMIT {
            self.exact += 1;
            return Seen::New { remember: true };
        }
        let sketch = self.sketch.get_or_insert_with(Sketch::default);
        sketch.insert(hash);
        if sketch.estimate() > self.beyond {
            self.beyond += 1;
            Seen::New { remember: false }
        } else {
            Seen::Repeat
        }
    }

    /// Unique visitors of the day (the sum of the day's flags): exact up to the limit,
    /// estimated beyond.
    pub fn count(&self) -> u64 {
        self.exact + self.beyond
    }
}

/// A HyperLogLog sketch of the visitors past the exact limit. Inputs are already uniform
/// keyed hashes, so no further hashing is needed. The harmonic sum and the count of empty
/// registers are kept as registers change, so an estimate costs no scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Sketch {
    registers: Vec<u8>,
    sum: f64,
    zeros: usize,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            registers: vec![0; M],
            sum: M as f64,
            zeros: M,
        }
    }
}

impl Sketch {
    /// Updates the register the hash falls in; true when it grew (a repeat never does).
    pub fn insert(&mut self, hash: &[u8; 16]) -> bool {
        let mut word = [0u8; 8];
        word.copy_from_slice(&hash[..8]);
        let x = u64::from_be_bytes(word);
        let index = (x >> (64 - P)) as usize;
        let rank = ((x << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
        let old = self.registers[index];
        if rank <= old {
            return false;
        }
        self.registers[index] = rank;
        self.sum += 2f64.powi(-i32::from(rank)) - 2f64.powi(-i32::from(old));
        if old == 0 {
            self.zeros -= 1;
        }
        true
    }

    pub fn estimate(&self) -> u64 {
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / self.sum;
        let corrected = if raw <= 2.5 * m && self.zeros > 0 {
            m * (m / self.zeros as f64).ln()
        } else {
            raw
        };
        corrected.round() as u64
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.registers
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Sketch> {
        if bytes.len() != M {
            return None;
        }
        let sum = bytes.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let zeros = bytes.iter().filter(|&&r| r == 0).count();
        Some(Sketch {
            registers: bytes.to_vec(),
            sum,
            zeros,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Deterministic uniform 16-byte values (SplitMix64), standing in for keyed hashes.
    fn hashes(seed: u64) -> impl Iterator<Item = [u8; 16]> {
        let mut state = seed;
        std::iter::repeat_with(move || {
            let mut next = || {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            };
            let mut out = [0u8; 16];
            out[..8].copy_from_slice(&next().to_be_bytes());
            out[8..].copy_from_slice(&next().to_be_bytes());
            out
        })
    }

    /// The page object's part, in memory: a set of stored hashes.
    struct Page {
        day: DayUniques,
        stored: HashSet<[u8; 16]>,
    }

    impl Page {
        fn visit(&mut self, h: [u8; 16]) -> bool {
            let seen = self.day.observe(&h, self.stored.contains(&h));
            if let Seen::New { remember: true } = seen {
                self.stored.insert(h);
            }
            seen.is_new()
        }
    }

    #[test]
    fn every_first_visit_of_a_million_visitors_is_unique_and_no_repeat_is() {
        let mut page = Page {
            day: DayUniques::new(20_000),
            stored: HashSet::new(),
        };
        let visitors: Vec<_> = hashes(1).take(1_000_000).collect();
        let firsts = visitors.iter().filter(|h| page.visit(**h)).count();
        assert_eq!(firsts, 1_000_000);
        assert_eq!(page.day.count(), 1_000_000);
        // Every one of them again, in another order: none is new.
        let repeats = visitors.iter().rev().filter(|h| page.visit(**h)).count();
        assert_eq!(repeats, 0);
        assert_eq!(page.day.count(), 1_000_000);
        assert!(page.day.sketch.is_none());
    }

    #[test]
    fn past_the_exact_limit_the_rest_is_estimated() {
        let mut day = DayUniques::new(1);
        day.exact = EXACT_LIMIT;
        let beyond: Vec<_> = hashes(7).take(200_000).collect();
        let flagged = beyond
            .iter()
            .filter(|h| day.observe(h, false).is_new())
            .count();
        assert_eq!(day.count(), EXACT_LIMIT + flagged as u64, "flags add up");
        let error = (flagged as f64 - 200_000.0).abs() / 200_000.0;
        assert!(error <= 0.03, "{flagged} is {:.2} % off", error * 100.0);
        // Repeats past the limit cannot be told apart exactly; they add almost nothing.
        let again = beyond
            .iter()
            .filter(|h| day.observe(h, false).is_new())
            .count();
        assert!(again < 2_000, "{again} repeats flagged");
    }

    #[test]
    fn sketches_round_trip() {
        let mut s = Sketch::default();
        hashes(5).take(1_000).for_each(|h| {
            s.insert(&h);
        });
        let back = Sketch::from_bytes(s.as_bytes()).unwrap();
        assert_eq!(back.as_bytes(), s.as_bytes());
        assert_eq!(back.estimate(), s.estimate());
        assert_eq!(Sketch::from_bytes(&[1, 2, 3]), None);
    }
}
