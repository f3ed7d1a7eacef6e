//! Unique visitors of one page on one day: exact up to `EXACT_LIMIT` visitors, then a
//! HyperLogLog sketch (2^14 one-byte registers, standard error about 0.8 %). Inputs are
//! already uniform keyed hashes, so no further hashing is needed.

use std::collections::HashSet;

pub const EXACT_LIMIT: usize = 2_048;
const P: u32 = 14;
const M: usize = 1 << P;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uniques {
    Exact(HashSet<[u8; 16]>),
    Sketch(Vec<u8>),
}

impl Default for Uniques {
    fn default() -> Self {
        Uniques::Exact(HashSet::new())
    }
}

impl Uniques {
    /// Records a visitor; true when it was not seen before (exact while the set is
    /// small; beyond it, true when the sketch changed, so a repeat is never "new").
    pub fn insert(&mut self, hash: [u8; 16]) -> bool {
        match self {
            Uniques::Exact(set) => {
                let new = set.insert(hash);
                if set.len() > EXACT_LIMIT {
                    let mut registers = vec![0u8; M];
                    set.iter().for_each(|h| {
                        observe(&mut registers, h);
                    });
                    *self = Uniques::Sketch(registers);
                }
                new
            }
            Uniques::Sketch(registers) => observe(registers, &hash),
        }
    }

    pub fn count(&self) -> u64 {
        match self {
            Uniques::Exact(set) => set.len() as u64,
            Uniques::Sketch(registers) => estimate(registers),
        }
    }

    /// Stored form: a tag byte, then the hashes (exact) or the registers (sketch).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Uniques::Exact(set) => {
                let mut out = Vec::with_capacity(1 + set.len() * 16);
                out.push(0);
                set.iter().for_each(|h| out.extend_from_slice(h));
                out
            }
            Uniques::Sketch(registers) => {
                let mut out = Vec::with_capacity(1 + M);
                out.push(1);
                out.extend_from_slice(registers);
                out
            }
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Uniques> {
        match bytes.split_first()? {
            (0, rest) if rest.len() % 16 == 0 => Some(Uniques::Exact(
                rest.chunks_exact(16)
                    .map(|c| c.try_into().unwrap_or([0; 16]))
                    .collect(),
            )),
            (1, rest) if rest.len() == M => Some(Uniques::Sketch(rest.to_vec())),
            _ => None,
        }
    }
}

/// Today's unique visitors of one page: a new UTC day starts from nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyUniques {
    pub day: u64,
    pub uniques: Uniques,
}

impl DailyUniques {
    /// Records a visitor on `day`; true when it is the visitor's first visit that day.
    pub fn observe(&mut self, day: u64, hash: [u8; 16]) -> bool {
        self.roll_to(day);
        self.uniques.insert(hash)
    }

    /// Unique visitors so far on `day`.
    pub fn count_on(&self, day: u64) -> u64 {
        if day == self.day {
            self.uniques.count()
        } else {
            0
        }
    }

    fn roll_to(&mut self, day: u64) {
        if day != self.day {
            *self = DailyUniques {
                day,
                uniques: Uniques::default(),
            };
        }
    }
}

/// Updates the register a hash falls in; true when it grew.
fn observe(registers: &mut [u8], hash: &[u8; 16]) -> bool {
    let mut word = [0u8; 8];
    word.copy_from_slice(&hash[..8]);
    let x = u64::from_be_bytes(word);
    let index = (x >> (64 - P)) as usize;
    let rank = ((x << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
    if rank > registers[index] {
        registers[index] = rank;
        true
    } else {
        false
    }
}

fn estimate(registers: &[u8]) -> u64 {
    let m = M as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    let corrected = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    corrected.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn exact_while_small() {
        let mut u = Uniques::default();
        let visitors: Vec<_> = hashes(1).take(EXACT_LIMIT).collect();
        assert!(visitors.iter().all(|h| u.insert(*h)));
        assert!(
            visitors.iter().all(|h| !u.insert(*h)),
            "repeats are not new"
        );
        assert_eq!(u.count(), EXACT_LIMIT as u64);
        assert!(matches!(u, Uniques::Exact(_)));
    }

    #[test]
    fn within_two_percent_at_a_million() {
        let mut u = Uniques::default();
        for h in hashes(7).take(1_000_000) {
            u.insert(h);
        }
        assert!(matches!(u, Uniques::Sketch(_)));
        let error = (u.count() as f64 - 1e6).abs() / 1e6;
        assert!(
            error <= 0.02,
            "estimate {} is {:.2} % off",
            u.count(),
            error * 100.0
        );
    }

    #[test]
    fn accurate_just_past_the_switch_and_repeats_stay_old() {
        let mut u = Uniques::default();
        let visitors: Vec<_> = hashes(3).take(5_000).collect();
        visitors.iter().for_each(|h| {
            u.insert(*h);
        });
        let error = (u.count() as f64 - 5_000.0).abs() / 5_000.0;
        assert!(error <= 0.02, "estimate {}", u.count());
        assert!(visitors.iter().all(|h| !u.insert(*h)));
    }

    #[test]
    fn the_same_visitor_is_unique_once_a_day_and_again_the_next() {
        let mut today = DailyUniques::default();
        let visitor = hashes(9).next().unwrap();
        assert!(today.observe(19_000, visitor));
        assert!(!today.observe(19_000, visitor));
        assert_eq!(today.count_on(19_000), 1);
        assert!(today.observe(19_001, visitor), "a new day");
        assert_eq!(today.count_on(19_001), 1);
        assert_eq!(today.count_on(19_000), 0, "yesterday is forgotten");
    }

    #[test]
    fn stored_form_round_trips() {
        let mut u = Uniques::default();
        hashes(5).take(10).for_each(|h| {
            u.insert(h);
        });
        assert_eq!(Uniques::from_bytes(&u.to_bytes()), Some(u.clone()));
        hashes(6).take(3_000).for_each(|h| {
            u.insert(h);
        });
        assert_eq!(Uniques::from_bytes(&u.to_bytes()), Some(u));
        assert_eq!(Uniques::from_bytes(&[]), None);
        assert_eq!(Uniques::from_bytes(&[0, 1, 2]), None);
        assert_eq!(Uniques::from_bytes(&[2]), None);
    }
}
