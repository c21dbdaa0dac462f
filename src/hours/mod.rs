//! Opening-hours engine: is the line open at a given instant, why not, and when does it next open.
//!
//! Everything is decided on the Europe/London calendar date of the instant. Opening and closing
//! instants are computed per local date from wall-clock times (never by adding 24-hour
//! durations), so the schedule follows the clocks through the GMT/BST changes.

mod calendar;
pub mod feed;
pub mod live;
pub mod refresh;
pub mod speech;

#[cfg(test)]
mod closures_tests;
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
    /// A closure (planned, or the emergency switch) is in force; `reason` is what callers hear.
    Closure {
        reason: String,
    },
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
            Reason::Closure { reason } => format!("closure: {reason}"),
        }
    }

    /// A sentence for callers saying why the line is closed ("The line is closed today for
    /// the Christmas Day bank holiday."); a closure's own reason is used as written.
    pub fn spoken(&self) -> String {
        match self {
            Reason::Open => "The line is open.".to_owned(),
            Reason::Weekend => "The line is closed at weekends.".to_owned(),
            Reason::BankHoliday { title } if title.to_lowercase().contains("bank holiday") => {
                format!("The line is closed today for the {title}.")
            }
            Reason::BankHoliday { title } => {
                format!("The line is closed today for the {title} bank holiday.")
            }
            Reason::BeforeOpening => "The line is not open yet today.".to_owned(),
            Reason::AfterClosing => "The line has closed for today.".to_owned(),
            Reason::NotAWorkingDay => "The line is closed today.".to_owned(),
            Reason::Closure { reason } => {
                let reason = reason.trim();
                if reason.ends_with(['.', '!', '?']) {
                    reason.to_owned()
                } else {
                    format!("{reason}.")
                }
            }
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
    #[error("schedule `{segment}`: {why}")]
    BadSchedule { segment: String, why: String },
    #[error("{day}: opening time {open} must be before closing time {close}")]
    OpeningNotBeforeClosing {
        day: &'static str,
        open: NaiveTime,
        close: NaiveTime,
    },
}

/// Whether an exception to the weekly schedule closes or opens the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClosureKind {
    /// The line is closed (a planned closure, or the emergency switch "closed now until …").
    Closed,
    /// A special opening outside the usual hours (e.g. a Saturday after a new announcement).
    Open,
}

impl ClosureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClosureKind::Closed => "closed",
            ClosureKind::Open => "open",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "closed" => Some(ClosureKind::Closed),
            "open" => Some(ClosureKind::Open),
            _ => None,
        }
    }
}

/// An exception to the weekly schedule over `[from, until)`.
///
/// Precedence: a closure beats everything (a special opening, a regular session); a
/// special opening opens the line even on a weekend or bank holiday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    pub id: i64,
    pub kind: ClosureKind,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// What callers hear for a closure ("The line is closed today for staff training");
    /// a note for staff on a special opening.
    pub reason: String,
}

impl Closure {
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.until
    }
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

    /// Parses the configuration form: `;`-separated `DAYS HH:MM-HH:MM` segments, where DAYS is
    /// a day (`Mon`), a range (`Mon-Fri`) or a list (`Mon,Wed`), e.g.
    /// `"Mon-Fri 09:00-16:00; Sat 10:00-12:00"`. Days not named are closed.
    pub fn parse(spec: &str) -> Result<Self, HoursError> {
        let bad = |segment: &str, why: &str| HoursError::BadSchedule {
            segment: segment.trim().to_string(),
            why: why.to_string(),
        };
        let mut days: [Option<(NaiveTime, NaiveTime)>; 7] = [None; 7];
        let mut any = false;
        for segment in spec.split(';').filter(|s| !s.trim().is_empty()) {
            let mut words = segment.split_whitespace();
            let (Some(day_part), Some(time_part), None) =
                (words.next(), words.next(), words.next())
            else {
                return Err(bad(
                    segment,
                    "expected `DAYS HH:MM-HH:MM`, e.g. `Mon-Fri 09:00-16:00`",
                ));
            };
            let (open, close) = time_part
                .split_once('-')
                .and_then(|(o, c)| {
                    Some((
                        NaiveTime::parse_from_str(o, "%H:%M").ok()?,
                        NaiveTime::parse_from_str(c, "%H:%M").ok()?,
                    ))
                })
                .ok_or_else(|| {
                    bad(
                        segment,
                        "times are HH:MM-HH:MM in 24-hour London time, e.g. 09:00-16:00",
                    )
                })?;
            let mut indices = Vec::new();
            for item in day_part.split(',') {
                let range = match item.split_once('-') {
                    Some((a, b)) => (weekday_index(a), weekday_index(b)),
                    None => (weekday_index(item), weekday_index(item)),
                };
                match range {
                    (Some(a), Some(b)) if a <= b => indices.extend(a..=b),
                    (Some(_), Some(_)) => {
                        return Err(bad(segment, "a day range runs forwards, e.g. Mon-Fri"))
                    }
                    _ => return Err(bad(segment, "days are Mon, Tue, Wed, Thu, Fri, Sat, Sun")),
                }
            }
            for i in indices {
                if days[i].is_some() {
                    return Err(bad(segment, "a day is given hours twice"));
                }
                days[i] = Some((open, close));
                any = true;
            }
        }
        if !any {
            return Err(bad(spec, "the schedule opens on no day"));
        }
        Self::new(days)
    }
}

fn weekday_index(name: &str) -> Option<usize> {
    let lower = name.trim().to_ascii_lowercase();
    let key = lower.get(..3)?;
    let index = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .position(|d| *d == key)?;
    // Accept the full name too ("Monday"), nothing else ("Monkey").
    let full = speech::weekday_name(WEEK[index]).to_ascii_lowercase();
    (lower.len() == 3 || lower == full).then_some(index)
}

impl fmt::Display for WeeklySchedule {
    /// The configuration form, grouping days with the same hours: `Mon-Fri 09:00-16:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHORT: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let mut parts = Vec::new();
        let mut i = 0;
        while i < 7 {
            let Some(hours) = self.days[i] else {
                i += 1;
                continue;
            };
            let mut j = i;
            while j + 1 < 7 && self.days[j + 1] == Some(hours) {
                j += 1;
            }
            let days = if i == j {
                SHORT[i].to_string()
            } else {
                format!("{}-{}", SHORT[i], SHORT[j])
            };
            parts.push(format!(
                "{days} {}-{}",
                hours.0.format("%H:%M"),
                hours.1.format("%H:%M")
            ));
            i = j + 1;
        }
        f.write_str(&parts.join("; "))
    }
}

/// The GOV.UK feed's name for a division (`england-and-wales`, `scotland`, `northern-ireland`).
pub fn division_key(division: Division) -> &'static str {
    match division {
        Division::EnglandAndWales => "england-and-wales",
        Division::Scotland => "scotland",
        Division::NorthernIreland => "northern-ireland",
    }
}

pub fn parse_division(key: &str) -> Option<Division> {
    Division::all()
        .into_iter()
        .find(|d| division_key(*d) == key)
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

/// The weekly schedule combined with the bank-holiday calendar, closures and special openings.
#[derive(Debug, Clone)]
pub struct OpeningHours {
    schedule: WeeklySchedule,
    holidays: Arc<BankHolidays>,
    /// Closures and special openings, in no particular order.
    closures: Arc<Vec<Closure>>,
}

impl OpeningHours {
    pub fn new(schedule: WeeklySchedule, holidays: Arc<BankHolidays>) -> Self {
        Self {
            schedule,
            holidays,
            closures: Arc::new(Vec::new()),
        }
    }

    /// The same hours with these closures and special openings.
    pub fn with_closures(mut self, closures: Vec<Closure>) -> Self {
        self.closures = Arc::new(closures);
        self
    }

    pub fn closures(&self) -> &[Closure] {
        &self.closures
    }

    fn closure_at(&self, at: DateTime<Utc>) -> Option<&Closure> {
        self.closures
            .iter()
            .filter(|c| c.kind == ClosureKind::Closed && c.covers(at))
            .min_by_key(|c| (c.from, c.id))
    }

    fn special_opening_at(&self, at: DateTime<Utc>) -> bool {
        self.closures
            .iter()
            .any(|c| c.kind == ClosureKind::Open && c.covers(at))
    }

    fn in_regular_session(&self, at: DateTime<Utc>) -> bool {
        let date = at.with_timezone(&LONDON).date_naive();
        self.session(date)
            .is_some_and(|(opens, closes)| opens <= at && at < closes)
    }

    /// Open/closed, why, and the relevant next transition.
    ///
    /// Open iff no closure covers the instant, and either a special opening covers it or the
    /// London date is a working day with `opening <= at < closing` (wall-clock times resolved
    /// to instants on that date).
    pub fn status(&self, at: DateTime<Utc>) -> Status {
        if let Some(closure) = self.closure_at(at) {
            return Status {
                open: false,
                reason: Reason::Closure {
                    reason: closure.reason.clone(),
                },
                next_open: self.next_open(at),
                closes_at: None,
            };
        }
        if self.special_opening_at(at) || self.in_regular_session(at) {
            return Status {
                open: true,
                reason: Reason::Open,
                next_open: None,
                closes_at: self.next_close(at),
            };
        }
        let date = at.with_timezone(&LONDON).date_naive();
        let weekday = date.weekday();
        let reason = if let Some(title) = self.holidays.title_on(date) {
            Reason::BankHoliday {
                title: title.to_owned(),
            }
        } else if let Some((open, _)) = self.schedule.hours_on(weekday) {
            match local_instant(date, open) {
                Some(opens) if at < opens => Reason::BeforeOpening,
                _ => Reason::AfterClosing,
            }
        } else if matches!(weekday, Weekday::Sat | Weekday::Sun) {
            Reason::Weekend
        } else {
            Reason::NotAWorkingDay
        };
        Status {
            open: false,
            reason: self.reason_for_the_day(at, date, reason),
            next_open: self.next_open(at),
            closes_at: None,
        }
    }

    /// Callers should hear why they cannot get through *today*: before a closure that takes
    /// the rest of today's session, its reason (not "not open yet"); before a special opening
    /// later today, "not open yet" (not "closed at weekends").
    fn reason_for_the_day(&self, at: DateTime<Utc>, date: NaiveDate, usual: Reason) -> Reason {
        let later_today =
            |t: DateTime<Utc>| t > at && t.with_timezone(&LONDON).date_naive() == date;
        if self.closures.iter().any(|c| {
            c.kind == ClosureKind::Open && later_today(c.from) && self.closure_at(c.from).is_none()
        }) {
            return Reason::BeforeOpening;
        }
        if let Some((opens, closes)) = self.session(date) {
            let (opens, closes) = (opens.with_timezone(&Utc), closes.with_timezone(&Utc));
            let rest = opens.max(at);
            if rest < closes {
                if let Some(c) = self
                    .closures
                    .iter()
                    .filter(|c| {
                        c.kind == ClosureKind::Closed && c.from <= rest && closes <= c.until
                    })
                    .min_by_key(|c| (c.from, c.id))
                {
                    return Reason::Closure {
                        reason: c.reason.clone(),
                    };
                }
            }
        }
        usual
    }

    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.closure_at(at).is_none()
            && (self.special_opening_at(at) || self.in_regular_session(at))
    }

    /// The first opening instant strictly after `at`. When closed that is the next opening;
    /// when open it is the start of the next opening after the current one closes. `None` only
    /// if nothing opens within [`SEARCH_DAYS`] (e.g. a schedule with no open days).
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let from = if self.is_open(at) {
            self.next_close(at)?.with_timezone(&Utc)
        } else {
            at
        };
        self.first_change_within(from, true, SEARCH_DAYS)
    }

    /// When open: the instant the line next closes. `None` when closed, or if it stays open
    /// for all of [`SEARCH_DAYS`].
    pub fn next_close(&self, at: DateTime<Utc>) -> Option<DateTime<Tz>> {
        if !self.is_open(at) {
            return None;
        }
        self.first_change_within(at, false, SEARCH_DAYS)
    }

    /// The first instant after `at` at which the line is open (`to_open`) or closed
    /// (`!to_open`). Openness only changes at a session's start or end, or at an exception's
    /// start or end, so those instants are the only candidates; they are examined one London
    /// date at a time, for at most `days` dates.
    fn first_change_within(
        &self,
        at: DateTime<Utc>,
        to_open: bool,
        days: usize,
    ) -> Option<DateTime<Tz>> {
        let today = at.with_timezone(&LONDON).date_naive();
        for date in today.iter_days().take(days) {
            let mut candidates: Vec<DateTime<Utc>> = Vec::new();
            if let Some((opens, closes)) = self.session(date) {
                candidates.push(opens.with_timezone(&Utc));
                candidates.push(closes.with_timezone(&Utc));
            }
            for c in self.closures.iter() {
                for edge in [c.from, c.until] {
                    if edge.with_timezone(&LONDON).date_naive() == date {
                        candidates.push(edge);
                    }
                }
            }
            candidates.sort_unstable();
            if let Some(found) = candidates
                .into_iter()
                .find(|c| *c > at && self.is_open(*c) == to_open)
            {
                return Some(found.with_timezone(&LONDON));
            }
        }
        None
    }

    /// A working day is a London date on which the line is open at some moment: a scheduled
    /// day that is not a bank holiday and not closed for its whole session, or a day with a
    /// special opening.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        let Some(start) = local_instant(date, NaiveTime::MIN).map(|t| t.with_timezone(&Utc)) else {
            return false;
        };
        self.is_open(start)
            || self
                .first_change_within(start, true, 1)
                .is_some_and(|t| t.date_naive() == date)
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

    /// How much of the time from `from` to `to` fell in the line's usual opening hours on
    /// working days (bank holidays excluded): how long a caller has waited "in working hours".
    /// Closures are not subtracted. Looks at most a year back.
    pub fn working_time_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> chrono::Duration {
        let mut total = chrono::Duration::zero();
        if to <= from {
            return total;
        }
        let from = from.max(to - chrono::Duration::days(366));
        let mut day = from.with_timezone(&LONDON).date_naive();
        let last = to.with_timezone(&LONDON).date_naive();
        while day <= last {
            if let Some((open, close)) = self.schedule.hours_on(day.weekday()) {
                if self.is_working_day(day) {
                    let local = |t: NaiveTime| local_instant(day, t).map(|d| d.with_timezone(&Utc));
                    if let (Some(o), Some(c)) = (local(open), local(close)) {
                        let (start, end) = (o.max(from), c.min(to));
                        if end > start {
                            total += end - start;
                        }
                    }
                }
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        total
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

    /// The calendar, shared (for building new hours around it).
    pub fn shared_holidays(&self) -> Arc<BankHolidays> {
        self.holidays.clone()
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

/// Checks a closure or special opening before it is stored (the command line and the
/// dashboard both use it): the words of the problem, if any.
pub fn closure_problem(
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    let reason = reason.trim();
    if until <= now {
        Some("the end is in the past: nothing would change")
    } else if until <= from {
        Some("the end must be after the start")
    } else if reason.is_empty() || reason.chars().count() > 300 {
        Some("the reason must be 1 to 300 characters (callers hear it)")
    } else if reason.contains(['{', '}']) {
        Some("the reason cannot contain { or }")
    } else {
        None
    }
}
