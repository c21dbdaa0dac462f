//! Opening-hours engine: is the line open at a given instant, why not, and when does it next open.
//!
//! Everything is decided on the Europe/London calendar date of the instant. Opening and closing
//! instants are computed per local date from wall-clock times (never by adding 24-hour
//! durations), so the schedule follows the clocks through the GMT/BST changes.

mod calendar;
pub mod speech;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Timelike,
    Utc, Weekday,
};
use chrono_tz::Tz;

pub use calendar::{BankHolidays, CalendarError, Division, EMBEDDED_SOURCE};

/// The line's time zone.
pub const LONDON: Tz = chrono_tz::Europe::London;

/// How many local dates `next_open` and `working_days_after` look ahead before giving up.
/// Comfortably longer than any real closure, and past the end of the published holiday data.
pub const SEARCH_DAYS: usize = 800;

/// Why the line is open or closed at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Open,
    Weekend,
    BankHoliday {
        title: String,
    },
    BeforeOpening,
    AfterClosing,
    /// A weekday the schedule does not open.
    NotAWorkingDay,
}

impl Reason {
    /// Short human text for the CLI and JSON output.
    pub fn describe(&self) -> String {
        match self {
            Reason::Open => "within opening hours".to_owned(),
            Reason::Weekend => "weekend".to_owned(),
            Reason::BankHoliday { title } => format!("bank holiday ({title})"),
            Reason::BeforeOpening => "before opening time".to_owned(),
            Reason::AfterClosing => "after closing time".to_owned(),
            Reason::NotAWorkingDay => "not a working day".to_owned(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The line's state at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub open: bool,
    pub reason: Reason,
    /// Set when closed: the next opening instant (`None` only if nothing opens within [`SEARCH_DAYS`]).
    pub next_open: Option<DateTime<Tz>>,
    /// Set exactly when open: when the current session ends.
    pub closes_at: Option<DateTime<Tz>>,
}

/// A schedule was configured that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum HoursError {
    #[error("{day}: opening time {open} must be before closing time {close}")]
    OpeningNotBeforeClosing {
        day: &'static str,
        open: NaiveTime,
        close: NaiveTime,
    },
}

/// Opening and closing wall-clock times (London) for each day of the week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklySchedule {
    /// Index 0 = Monday. `None` = closed all day.
    days: [Option<(NaiveTime, NaiveTime)>; 7],
}

// `const` items: an invalid literal would fail the build, it cannot fail at run time.
const NINE_AM: NaiveTime = match NaiveTime::from_hms_opt(9, 0, 0) {
    Some(t) => t,
    None => panic!("09:00 is a valid time"),
};
const FOUR_PM: NaiveTime = match NaiveTime::from_hms_opt(16, 0, 0) {
    Some(t) => t,
    None => panic!("16:00 is a valid time"),
};

impl Default for WeeklySchedule {
    /// The enquiry line's hours: Monday to Friday 09:00–16:00, closed at weekends.
    fn default() -> Self {
        let weekday = Some((NINE_AM, FOUR_PM));
        Self {
            days: [weekday, weekday, weekday, weekday, weekday, None, None],
        }
    }
}

impl WeeklySchedule {
    /// `days[0]` is Monday. Each open day needs `open < close` (sessions never span midnight).
    pub fn new(days: [Option<(NaiveTime, NaiveTime)>; 7]) -> Result<Self, HoursError> {
        for (weekday, hours) in WEEK.iter().zip(days.iter()) {
            if let Some((open, close)) = *hours {
                if open >= close {
                    return Err(HoursError::OpeningNotBeforeClosing {
                        day: speech::weekday_name(*weekday),
                        open,
                        close,
                    });
                }
            }
        }
        Ok(Self { days })
    }

    pub fn hours_on(&self, weekday: Weekday) -> Option<(NaiveTime, NaiveTime)> {
        self.days[weekday.num_days_from_monday() as usize]
    }

    /// All seven days, Monday first.
    pub fn days(&self) -> &[Option<(NaiveTime, NaiveTime)>; 7] {
        &self.days
    }
}

/// Monday first, matching the schedule's array index.
const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// The weekly schedule combined with the bank-holiday calendar.
#[derive(Debug, Clone)]
pub struct OpeningHours {
    schedule: WeeklySchedule,
    holidays: Arc<BankHolidays>,
}

impl OpeningHours {
    pub fn new(schedule: WeeklySchedule, holidays: Arc<BankHolidays>) -> Self {
        Self { schedule, holidays }
    }

    /// Open/closed, why, and the relevant next transition.
    ///
    /// Open iff the London date is a working day and `opening <= at < closing`, where both are
    /// that date's wall-clock times resolved to instants (identical to comparing local times,
    /// except on the rare clock-change night where a local time is skipped or repeated).
    pub fn status(&self, at: DateTime<Utc>) -> Status {
        let date = at.with_timezone(&LONDON).date_naive();
        let weekday = date.weekday();
        let reason = if let Some(title) = self.holidays.title_on(date) {
            Reason::BankHoliday {
                title: title.to_owned(),
            }
        } else if let Some((open, close)) = self.schedule.hours_on(weekday) {
            match (local_instant(date, open), local_instant(date, close)) {
                (Some(opens), Some(closes)) if opens <= at && at < closes => {
                    return Status {
                        open: true,
                        reason: Reason::Open,
                        next_open: None,
                        closes_at: Some(closes),
                    };
                }
                (Some(opens), _) if at < opens => Reason::BeforeOpening,
                _ => Reason::AfterClosing,
            }
        } else if matches!(weekday, Weekday::Sat | Weekday::Sun) {
            Reason::Weekend
        } else {
            Reason::NotAWorkingDay
        };
        Status {
            open: false,
            reason,
            next_open: self.next_open(at),
            closes_at: None,
        }
    }

    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let date = at.with_timezone(&LONDON).date_naive();
        self.session(date)
            .is_some_and(|(opens, closes)| opens <= at && at < closes)
    }

    /// The first opening instant strictly after `at`. When closed that is the next opening;
    /// when open it is the start of the session after the current one. `None` only if nothing
    /// opens within [`SEARCH_DAYS`] (e.g. a schedule with no open days).
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let today = at.with_timezone(&LONDON).date_naive();
        today
            .iter_days()
            .take(SEARCH_DAYS)
            .filter_map(|date| self.session(date))
            .map(|(opens, _)| opens)
            .find(|opens| *opens > at)
    }

    /// The schedule opens on that weekday and it is not a bank holiday.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.schedule.hours_on(date.weekday()).is_some() && self.holidays.title_on(date).is_none()
    }

    /// The `n`-th working day strictly after `date` (`n = 0` returns `date`).
    ///
    /// Should the schedule never open (so there is no answer), this falls back to `n` calendar
    /// days later rather than panicking or looping; see [`Self::checked_working_days_after`].
    pub fn working_days_after(&self, date: NaiveDate, n: u32) -> NaiveDate {
        self.checked_working_days_after(date, n).unwrap_or_else(|| {
            tracing::warn!(%date, n, "no working day found; falling back to calendar days");
            date.checked_add_days(Days::new(n.into()))
                .unwrap_or(NaiveDate::MAX)
        })
    }

    /// Like [`Self::working_days_after`], but `None` when no working day occurs within
    /// [`SEARCH_DAYS`] of the previous one.
    pub fn checked_working_days_after(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        let mut current = date;
        for _ in 0..n {
            current = current
                .iter_days()
                .skip(1)
                .take(SEARCH_DAYS)
                .find(|day| self.is_working_day(*day))?;
        }
        Some(current)
    }

    /// Spoken summary of the weekly schedule, e.g. "Monday to Friday, 9am to 4pm, except bank holidays".
    pub fn describe_schedule(&self) -> String {
        speech::spoken_schedule(&self.schedule)
    }

    pub fn holidays(&self) -> &BankHolidays {
        &self.holidays
    }

    pub fn schedule(&self) -> &WeeklySchedule {
        &self.schedule
    }

    /// Opening and closing instants on a working `date`. A session that the spring-forward gap
    /// swallows entirely (both times inside 01:00–02:00) has no length and counts as none.
    fn session(&self, date: NaiveDate) -> Option<(DateTime<Tz>, DateTime<Tz>)> {
        if self.holidays.title_on(date).is_some() {
            return None;
        }
        let (open, close) = self.schedule.hours_on(date.weekday())?;
        let opens = local_instant(date, open)?;
        let closes = local_instant(date, close)?;
        (opens < closes).then_some((opens, closes))
    }
}

/// The instant the London clocks show `time` on `date`.
///
/// A repeated time (October) takes its first occurrence; a skipped time (March) becomes the
/// first instant after the gap, found by stepping through local minutes (UK transitions fall on
/// whole hours, so the first valid minute is exactly where the gap ends). `None` cannot happen
/// for London but keeps this total without panicking.
fn local_instant(date: NaiveDate, time: NaiveTime) -> Option<DateTime<Tz>> {
    match LONDON.from_local_datetime(&date.and_time(time)) {
        LocalResult::Single(instant) => Some(instant),
        LocalResult::Ambiguous(first, second) => Some(first.min(second)),
        LocalResult::None => {
            let minute_start =
                date.and_time(NaiveTime::from_hms_opt(time.hour(), time.minute(), 0)?);
            (1..=24 * 60)
                .filter_map(|m| minute_start.checked_add_signed(TimeDelta::try_minutes(m)?))
                .find_map(|candidate| LONDON.from_local_datetime(&candidate).earliest())
        }
    }
}
