//! Request coalescing in the Worker: requests for the same object that arrive while a
//! call to it is in flight queue in its lane, and the next call carries all of them.
//! One object request then serves many clients, each still answered on its own. Pure
//! (no `worker` import): members are opaque here, and whoever leads a flight makes the
//! call. A flight that never reports back (its request cut off) is given up after
//! `STALE_MS`, so a lane cannot stay blocked.

use std::collections::HashMap;

/// At most this many members travel in one call.
pub const MAX_BATCH: usize = 64;
/// A flight older than this no longer holds its lane.
pub const STALE_MS: u64 = 30_000;
/// At most this many members wait in a lane; more go alone, so a flood of them cannot
/// keep the ones queued before it waiting for many flights.
pub const MAX_QUEUED: usize = 4 * MAX_BATCH;

struct Lane<M> {
    queue: Vec<M>,
    /// The flight holding the lane and when it left.
    flight: Option<(u64, u64)>,
}

pub struct Lanes<M> {
    lanes: HashMap<String, Lane<M>>,
    next_flight: u64,
}

impl<M> Default for Lanes<M> {
    fn default() -> Self {
        Lanes {
            lanes: HashMap::new(),
            next_flight: 0,
        }
    }
}

impl<M> Lanes<M> {
    /// Queues a member in its lane; false when the lane is full.
    pub fn enter(&mut self, lane: &str, member: M) -> bool {
        let queue = &mut self
            .lanes
            .entry(lane.to_string())
            .or_insert_with(|| Lane {
                queue: Vec::new(),
                flight: None,
            })
            .queue;
        let room = queue.len() < MAX_QUEUED;
        if room {
            queue.push(member);
        }
        room
    }

    /// When nothing holds the lane and members wait, the next flight leaves: its id and
    /// the members it carries, oldest first.
    pub fn depart(&mut self, lane: &str, now_ms: u64) -> Option<(u64, Vec<M>)> {
        let lane = self.lanes.get_mut(lane)?;
        let held = lane
            .flight
            .is_some_and(|(_, left)| now_ms.saturating_sub(left) < STALE_MS);
        if held || lane.queue.is_empty() {
            return None;
        }
        self.next_flight += 1;
        lane.flight = Some((self.next_flight, now_ms));
        let carried = lane.queue.len().min(MAX_BATCH);
        Some((self.next_flight, lane.queue.drain(..carried).collect()))
    }

    /// A flight landed: the lane is free again, unless a later flight holds it. An idle
    /// lane with nobody queued is forgotten.
    pub fn landed(&mut self, lane: &str, flight: u64) {
        let Some(entry) = self.lanes.get_mut(lane) else {
            return;
        };
        if entry.flight.is_some_and(|(id, _)| id == flight) {
            entry.flight = None;
        }
        if entry.flight.is_none() && entry.queue.is_empty() {
            self.lanes.remove(lane);
        }
    }

    #[cfg(test)]
    fn queued(&self, lane: &str) -> usize {
        self.lanes.get(lane).map_or(0, |l| l.queue.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_member_departs_at_once_and_the_lane_is_forgotten() {
        let mut lanes = Lanes::default();
        assert!(lanes.enter("c", 1));
        let (flight, members) = lanes.depart("c", 0).unwrap();
        assert_eq!(members, vec![1]);
        lanes.landed("c", flight);
        assert!(lanes.lanes.is_empty());
    }

    #[test]
    fn members_arriving_during_a_flight_wait_and_leave_together() {
        let mut lanes = Lanes::default();
        lanes.enter("c", 1);
        let (first, _) = lanes.depart("c", 0).unwrap();
        for m in 2..=4 {
            lanes.enter("c", m);
            assert!(lanes.depart("c", 10).is_none(), "the lane is held");
        }
        assert_eq!(lanes.queued("c"), 3);
        lanes.landed("c", first);
        let (second, members) = lanes.depart("c", 20).unwrap();
        assert_eq!(members, vec![2, 3, 4]);
        assert!(lanes.depart("c", 20).is_none(), "nothing left to carry");
        lanes.landed("c", second);
        assert!(lanes.lanes.is_empty());
    }

    #[test]
    fn a_full_lane_turns_members_away() {
        let mut lanes = Lanes::default();
        for m in 0..MAX_QUEUED {
            assert!(lanes.enter("c", m));
        }
        assert!(!lanes.enter("c", MAX_QUEUED));
        assert!(lanes.enter("d", 0), "other lanes are not full");
        assert_eq!(lanes.depart("c", 0).unwrap().1.len(), MAX_BATCH);
        assert!(
            lanes.enter("c", MAX_QUEUED),
            "room again once a flight left"
        );
    }

    #[test]
    fn lanes_are_independent() {
        let mut lanes = Lanes::default();
        lanes.enter("a", 1);
        lanes.enter("b", 2);
        assert!(lanes.depart("a", 0).is_some());
        assert_eq!(lanes.depart("b", 0).unwrap().1, vec![2]);
    }

    #[test]
    fn a_flight_carries_at_most_max_batch_and_the_rest_follow() {
        let mut lanes = Lanes::default();
        for m in 0..MAX_BATCH + 5 {
            lanes.enter("c", m);
        }
        let (flight, members) = lanes.depart("c", 0).unwrap();
        assert_eq!(members.len(), MAX_BATCH);
        lanes.landed("c", flight);
        assert_eq!(lanes.depart("c", 1).unwrap().1.len(), 5);
    }

    #[test]
    fn a_stale_flight_no_longer_holds_the_lane_and_its_late_landing_frees_nothing() {
        let mut lanes = Lanes::default();
        lanes.enter("c", 1);
        let (lost, _) = lanes.depart("c", 0).unwrap();
        lanes.enter("c", 2);
        assert!(lanes.depart("c", STALE_MS - 1).is_none());
        let (next, members) = lanes.depart("c", STALE_MS).unwrap();
        assert_eq!(members, vec![2]);
        lanes.enter("c", 3);
        // The lost flight lands late: the newer one still holds the lane.
        lanes.landed("c", lost);
        assert!(lanes.depart("c", STALE_MS + 1).is_none());
        lanes.landed("c", next);
        assert_eq!(lanes.depart("c", STALE_MS + 2).unwrap().1, vec![3]);
    }
}
