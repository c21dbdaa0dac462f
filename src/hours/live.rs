//! The opening hours in force, kept in step with the database: the stored bank-holiday
//! calendar (else the embedded snapshot) and the closures. Every change to either bumps a
//! revision number; [`LiveHours::sync`] compares it (one tiny query) and reloads only when
//! it moved, so a closure added through any instance or the CLI applies at the next webhook.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    division_key, BankHolidays, CalendarError, Division, OpeningHours, WeeklySchedule, LONDON,
};
use crate::clock::Clock;
use crate::store::{Store, StoreError};

/// Warn when the known bank holidays end sooner than this many days ahead (about 6 months).
pub const FRESHNESS_DAYS: i64 = 183;

#[derive(Debug)]
struct Snapshot {
    revision: Option<i64>,
    hours: Arc<OpeningHours>,
}

/// Closures that ended longer ago than this are not loaded: the engine only looks forward,
/// and a year back covers any working-day count over past dates.
const CLOSURE_HISTORY_DAYS: i64 = 366;

#[derive(Debug)]
pub struct LiveHours {
    schedule: WeeklySchedule,
    division: Division,
    clock: Arc<dyn Clock>,
    state: RwLock<Snapshot>,
}

impl LiveHours {
    /// Hours from the embedded snapshot for `division`, until the first [`sync`](Self::sync).
    pub fn embedded(
        schedule: WeeklySchedule,
        division: Division,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CalendarError> {
        let holidays = BankHolidays::embedded_for(division)?;
        Ok(Self::new(schedule, holidays, clock))
    }

    pub fn new(schedule: WeeklySchedule, holidays: BankHolidays, clock: Arc<dyn Clock>) -> Self {
        let division = holidays.division();
        let hours = OpeningHours::new(schedule.clone(), Arc::new(holidays));
        Self {
            schedule,
            division,
            clock,
            state: RwLock::new(Snapshot {
                revision: None,
                hours: Arc::new(hours),
            }),
        }
    }

    /// Embedded snapshot, then whatever the database holds. A database that cannot answer
    /// now is not fatal: the embedded calendar serves, and every webhook tries to sync again.
    pub async fn load(
        schedule: WeeklySchedule,
        division: Division,
        store: &dyn Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LoadError> {
        let live = Self::embedded(schedule, division, clock)?;
        if let Err(e) = live.sync(store).await {
            tracing::warn!(error = %e, "cannot read closures or the stored calendar yet; using the embedded calendar");
        }
        Ok(live)
    }

    /// The hours in force now (a cheap shared snapshot).
    pub fn get(&self) -> Arc<OpeningHours> {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .hours
            .clone()
    }

    pub fn division(&self) -> Division {
        self.division
    }

    /// Reloads from the database when its revision moved; true when it reloaded.
    pub async fn sync(&self, store: &dyn Store) -> Result<bool, StoreError> {
        let revision = store.hours_revision().await?;
        let (known, current) = {
            let s = self.state.read().unwrap_or_else(|p| p.into_inner());
            (s.revision, s.hours.clone())
        };
        if known == Some(revision) {
            return Ok(false);
        }
        let holidays = match store.stored_calendar(division_key(self.division)).await? {
            Some(stored) => match BankHolidays::from_govuk_json(
                stored.document.as_bytes(),
                self.division,
                &stored.source,
            ) {
                Ok(h) => Arc::new(h),
                Err(e) => {
                    tracing::warn!(error = %e, "the stored bank-holiday calendar is unreadable; keeping the one in force");
                    current.shared_holidays()
                }
            },
            None => current.shared_holidays(),
        };
        let since = self.clock.now() - chrono::Duration::days(CLOSURE_HISTORY_DAYS);
        let closures = store.closures_ending_after(since).await?;
        let hours = OpeningHours::new(self.schedule.clone(), holidays).with_closures(closures);
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        // Another request may have loaded a newer revision meanwhile; never go back.
        if s.revision.is_none_or(|r| r < revision) {
            *s = Snapshot {
                revision: Some(revision),
                hours: Arc::new(hours),
            };
        }
        Ok(true)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the embedded bank-holiday calendar cannot be read: {0}")]
    Calendar(#[from] CalendarError),
}

/// Days from `today` to the last known bank holiday (negative when it is past).
pub fn future_days(holidays: &BankHolidays, today: NaiveDate) -> i64 {
    holidays
        .last_date()
        .map_or(-1, |last| (last - today).num_days())
}

/// A warning when fewer than about 6 months of future bank holidays are known.
pub fn freshness_warning(holidays: &BankHolidays, now: DateTime<Utc>) -> Option<String> {
    let today = now.with_timezone(&LONDON).date_naive();
    let days = future_days(holidays, today);
    (days < FRESHNESS_DAYS).then(|| {
        let last = holidays.last_date().map_or_else(|| "never".to_string(), |d| d.to_string());
        format!(
            "the bank-holiday calendar ({}) knows no bank holiday after {last}, fewer than 6 months ahead: \
             run `helpline holidays refresh` or check HELPLINE_BANK_HOLIDAYS_URL",
            holidays.source()
        )
    })
}
