//! Time is injected: every component asks a [`Clock`] for "now", so opening-hours
//! behaviour can be tested (and simulated) at any chosen instant.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still at a chosen instant until moved; for tests and `simulate --at`.
#[derive(Debug, Clone)]
pub struct FixedClock {
    at: Arc<Mutex<DateTime<Utc>>>,
}

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            at: Arc::new(Mutex::new(at)),
        }
    }

    /// Move the clock to another instant (shared by every clone).
    pub fn set(&self, at: DateTime<Utc>) {
        // A poisoned lock only means another thread panicked mid-set; the value is still a valid instant.
        *self.at.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut guard = self.at.lock().unwrap_or_else(|p| p.into_inner());
        *guard += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0).unwrap();
        let clock = FixedClock::new(t0);
        let shared = clock.clone();
        assert_eq!(clock.now(), t0);
        shared.advance(chrono::Duration::hours(1));
        assert_eq!(clock.now(), t0 + chrono::Duration::hours(1));
    }
}
