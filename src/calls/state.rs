//! What this instance remembers of calls in progress, so that a step it can answer from
//! memory needs no database read: the call's answers and its enquiry's reference, as they
//! stood after the last step this instance handled.
//!
//! Memory is only a shortcut; the database stays the record. A step carries its number
//! (`seq`, in the action URL), and every turn moves it on by one, so when a step's number
//! is at most one past the last one handled here, no other instance can have changed the
//! call in between and memory is current. Otherwise (the call moved between instances, or
//! this one restarted) the step reads the database, as it always did.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};

use crate::enquiries::Reference;
use crate::flows::Answers;

/// Calls remembered at most; past this the longest-idle are forgotten (they read the
/// database at their next step). About 300 bytes each.
pub const MAX_CALLS: usize = 50_000;
/// A call not heard from for this long is forgotten first.
const IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// A call's state after a step.
#[derive(Debug, Clone, Default)]
pub struct CallState {
    /// The step number of the last step handled here.
    pub seq: u32,
    pub answers: Answers,
    /// The reference the caller was given and the day promised, once they have one.
    pub enquiry: Option<(Reference, NaiveDate)>,
    /// When the caller first joined the adviser queue (a request made after keeps that time).
    pub queue_joined_at: Option<DateTime<Utc>>,
    /// The call's row is in the database, or queued for it: later steps need not send it.
    pub on_record: bool,
}

#[derive(Debug)]
struct Entry {
    state: CallState,
    seen: Instant,
}

#[derive(Debug, Default)]
pub struct CallStates {
    calls: Mutex<HashMap<String, Entry>>,
}

impl CallStates {
    /// The call's state if memory is current for a step numbered `seq`.
    pub fn for_step(&self, call_sid: &str, seq: u32) -> Option<CallState> {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls
            .get(call_sid)
            .filter(|e| seq <= e.state.seq.saturating_add(1))
            .map(|e| e.state.clone())
    }

    /// True when this instance already handled step `seq` of the call (a retried webhook).
    pub fn handled(&self, call_sid: &str, seq: u32) -> bool {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.get(call_sid).is_some_and(|e| seq <= e.state.seq)
    }

    /// Remembers the call's state after step `state.seq` (a retry of an earlier step never
    /// moves it back).
    pub fn remember(&self, call_sid: &str, state: CallState) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if calls.len() >= MAX_CALLS && !calls.contains_key(call_sid) {
            forget_oldest(&mut calls, now);
        }
        match calls.get_mut(call_sid) {
            Some(e) if e.state.seq > state.seq => e.seen = now,
            Some(e) => {
                e.state = state;
                e.seen = now;
            }
            None => {
                calls.insert(call_sid.to_string(), Entry { state, seen: now });
            }
        }
    }

    /// The call is over.
    pub fn forget(&self, call_sid: &str) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.remove(call_sid);
    }

    pub fn len(&self) -> usize {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room: the idle first, then the longest-idle quarter.
fn forget_oldest(calls: &mut HashMap<String, Entry>, now: Instant) {
    calls.retain(|_, e| now.duration_since(e.seen) < IDLE);
    if calls.len() < MAX_CALLS {
        return;
    }
    let mut seen: Vec<Instant> = calls.values().map(|e| e.seen).collect();
    seen.sort_unstable();
    let cut = seen[seen.len() / 4];
    calls.retain(|_, e| e.seen > cut);
}

/// At most one check per interval for changes other instances made (closures, the
/// bank-holiday calendar, published messages); zero checks at every webhook.
#[derive(Debug)]
pub struct Recheck {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl Recheck {
    pub fn every(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
        }
    }

    /// True when a check is due now (and counts it as made).
    pub fn due(&self) -> bool {
        if self.every.is_zero() {
            return true;
        }
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            return false;
        }
        *last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_serves_only_the_next_step_or_a_retry() {
        let states = CallStates::default();
        assert!(states.for_step("CA1", 1).is_none(), "nothing known");
        states.remember(
            "CA1",
            CallState {
                seq: 3,
                ..Default::default()
            },
        );
        assert!(states.for_step("CA1", 4).is_some(), "the next step");
        assert!(states.for_step("CA1", 3).is_some(), "a retry");
        assert!(
            states.for_step("CA1", 5).is_none(),
            "step 4 went elsewhere: read the database"
        );
        assert!(states.handled("CA1", 3) && !states.handled("CA1", 4));
        // A late retry of an earlier step does not move the call back.
        states.remember(
            "CA1",
            CallState {
                seq: 2,
                ..Default::default()
            },
        );
        assert!(states.for_step("CA1", 4).is_some());
        states.forget("CA1");
        assert!(states.is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let states = CallStates::default();
        for i in 0..(MAX_CALLS + 10) {
            states.remember(&format!("CA{i}"), CallState::default());
        }
        assert!(states.len() <= MAX_CALLS, "{}", states.len());
        assert!(
            states
                .for_step(&format!("CA{}", MAX_CALLS + 9), 1)
                .is_some(),
            "the newest is kept"
        );
    }

    #[test]
    fn rechecks_at_most_once_per_interval() {
        let r = Recheck::every(Duration::from_secs(3600));
        assert!(r.due());
        assert!(!r.due());
        let always = Recheck::every(Duration::ZERO);
        assert!(always.due() && always.due());
    }
}
