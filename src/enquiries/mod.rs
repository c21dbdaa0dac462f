//! Enquiries: a caller's request for a call back, as the line stores it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub mod outbox;
pub mod texts;

/// Which hospital trust the caller's concern is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    AlderHey,
    LiverpoolHeartAndChest,
    RoyalLiverpool,
    NotSure,
}

/// What the enquiry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Worried that their data was affected.
    DataConcern,
    /// Contacted by someone claiming to have their data.
    ContactedByClaimant,
    Other,
}

/// Where an enquiry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Waiting for a first call back.
    New,
    /// Not reached yet: another attempt is due on `next_attempt_on`.
    Retry,
    /// Reached, but the caller needs a further call.
    FollowUp,
    /// Closed: reached and dealt with.
    Resolved,
    /// Closed: not reached after the last attempt.
    Unreachable,
    /// Closed: the number was not the caller's.
    WrongNumber,
    /// Closed: folded into a later request from the same number.
    Merged,
}

impl Status {
    /// Still to be worked on (listed for call-back).
    pub const OPEN: &'static [Status] = &[Status::New, Status::Retry, Status::FollowUp];

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }

    /// How the dashboard names it.
    pub fn label(self) -> &'static str {
        match self {
            Status::New => "New",
            Status::Retry => "Try again",
            Status::FollowUp => "Follow-up",
            Status::Resolved => "Resolved",
            Status::Unreachable => "Unreachable",
            Status::WrongNumber => "Wrong number",
            Status::Merged => "Merged",
        }
    }
}

/// How an enquiry came to be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The caller asked for a call back in the menu.
    CallbackRequest,
    /// The caller hung up in the adviser queue after waiting a while.
    MissedInQueue,
}

/// What happened when a handler tried to call back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Reached and resolved.
    Resolved,
    /// Reached, needs follow-up.
    FollowUp,
    NoAnswer,
    /// No answer; a voicemail was left.
    Voicemail,
    WrongNumber,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Resolved => "Reached and resolved",
            Outcome::FollowUp => "Reached, needs follow-up",
            Outcome::NoAnswer => "No answer",
            Outcome::Voicemail => "Voicemail left",
            Outcome::WrongNumber => "Wrong number",
        }
    }
}

/// What an attempt's outcome does to the enquiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterAttempt {
    pub status: Status,
    /// For [`Status::Retry`]: the working day of the next attempt.
    pub next_attempt_on: Option<NaiveDate>,
    /// The enquiry is closed by this attempt.
    pub closed: bool,
    /// Unanswered attempts in a row after this one (reaching the caller starts again at 0).
    pub unanswered: u32,
}

/// The call-back rule: an unanswered attempt (no answer, or a voicemail left) is tried again
/// on the next working day; after `max_attempts` unanswered attempts in a row (each on a
/// different working day) the enquiry is closed as unreachable. Reaching the caller starts
/// the count again. `unanswered_before` counts those before this one. Pure, so it is tested
/// on its own.
pub fn after_attempt(
    outcome: Outcome,
    unanswered_before: u32,
    max_attempts: u32,
    today: NaiveDate,
    hours: &crate::hours::OpeningHours,
) -> AfterAttempt {
    let closed = |status, unanswered| AfterAttempt {
        status,
        next_attempt_on: None,
        closed: true,
        unanswered,
    };
    match outcome {
        Outcome::Resolved => closed(Status::Resolved, 0),
        Outcome::WrongNumber => closed(Status::WrongNumber, 0),
        Outcome::FollowUp => AfterAttempt {
            status: Status::FollowUp,
            next_attempt_on: None,
            closed: false,
            unanswered: 0,
        },
        Outcome::NoAnswer | Outcome::Voicemail => {
            let unanswered = unanswered_before.saturating_add(1);
            if unanswered >= max_attempts {
                closed(Status::Unreachable, unanswered)
            } else {
                AfterAttempt {
                    status: Status::Retry,
                    next_attempt_on: Some(hours.working_days_after(today, 1)),
                    closed: false,
                    unanswered,
                }
            }
        }
    }
}

/// One attempt to call back, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub handler: String,
    pub outcome: Outcome,
}

/// A handler's note on an enquiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub author: String,
    pub body: String,
}

/// Which enquiries a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Filter {
    pub trust: Option<Trust>,
    pub category: Option<Category>,
    /// `None`: every open status.
    pub status: Option<Status>,
}

macro_rules! str_enum {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $text),+ }
            }
        }
        impl FromStr for $ty {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(<$ty>::$variant),)+
                    other => Err(UnknownValue {
                        what: stringify!($ty),
                        value: other.to_string(),
                        allowed: &[$($text),+],
                    }),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(Trust {
    AlderHey => "alder-hey",
    LiverpoolHeartAndChest => "liverpool-heart-and-chest",
    RoyalLiverpool => "royal-liverpool",
    NotSure => "not-sure",
});

str_enum!(Category {
    DataConcern => "data-concern",
    ContactedByClaimant => "contacted-by-claimant",
    Other => "other",
});

str_enum!(Status {
    New => "new",
    Retry => "retry",
    FollowUp => "follow-up",
    Resolved => "resolved",
    Unreachable => "unreachable",
    WrongNumber => "wrong-number",
    Merged => "merged",
});

str_enum!(Source {
    CallbackRequest => "callback-request",
    MissedInQueue => "missed-in-queue",
});

str_enum!(Outcome {
    Resolved => "resolved",
    FollowUp => "follow-up",
    NoAnswer => "no-answer",
    Voicemail => "voicemail",
    WrongNumber => "wrong-number",
});

/// A value that is not one of an enumeration's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}: use one of {}", allowed.join(", "))]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub allowed: &'static [&'static str],
}

/// The short number a caller quotes: six digits, read out one by one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reference(String);

impl Reference {
    pub const LEN: usize = 6;

    /// A fresh random reference (uniqueness is enforced by the store, which retries).
    /// It never starts with 0, so it is never mistaken for a phone number.
    pub fn random() -> Self {
        let n: u32 = rand::rng().random_range(100_000..1_000_000);
        Self(n.to_string())
    }

    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == Self::LEN && s.bytes().all(|b| b.is_ascii_digit())).then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "4 8 2, 9 1 5": digit by digit, in two groups of three.
    pub fn spoken(&self) -> String {
        let (a, b) = self.0.split_at(self.0.len() / 2);
        format!("{}, {}", crate::phone::spaced(a), crate::phone::spaced(b))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The caller's optional spoken message, held by Twilio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub url: String,
    pub duration_seconds: u32,
}

/// What the flow gathered, ready to be stored as an enquiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnquiry {
    pub call_sid: String,
    pub callback_number: crate::phone::UkNumber,
    pub trust: Trust,
    pub category: Category,
    pub recording: Option<Recording>,
    pub created_at: DateTime<Utc>,
    /// The last date (Europe/London) by which we promised to call back.
    pub callback_due: NaiveDate,
    pub source: Source,
    /// When the caller first asked: the time they joined the queue, for a caller who left
    /// it to ask for a call back (so asking never costs them their place).
    pub waiting_since: DateTime<Utc>,
}

/// A stored enquiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enquiry {
    pub id: String,
    pub reference: Reference,
    pub call_sid: String,
    pub callback_number: String,
    pub trust: Trust,
    pub category: Category,
    pub recording_url: Option<String>,
    pub recording_duration: Option<u32>,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub callback_due: NaiveDate,
    pub source: Source,
    pub waiting_since: DateTime<Utc>,
    pub attempts: u32,
    pub next_attempt_on: Option<NaiveDate>,
    pub closed_at: Option<DateTime<Utc>>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    /// Later hang-ups in the queue from the same number, folded into this one.
    pub missed_calls: u32,
    /// Unanswered attempts in a row since the caller was last reached.
    pub unanswered: u32,
}

impl Enquiry {
    /// The number for lists: all but the last two digits hidden.
    pub fn masked_number(&self) -> String {
        crate::phone::UkNumber::parse(&self.callback_number)
            .map(|n| n.masked())
            .unwrap_or_else(|| "hidden".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Trust::ALL {
            assert_eq!(t.as_str().parse::<Trust>(), Ok(*t));
        }
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(*c));
        }
        let err = "alderhey".parse::<Trust>().unwrap_err();
        assert!(
            err.to_string()
                .contains("alder-hey, liverpool-heart-and-chest"),
            "{err}"
        );
    }

    #[test]
    fn unanswered_calls_are_retried_on_the_next_working_day_then_closed() {
        use crate::hours::{BankHolidays, Division, OpeningHours, WeeklySchedule};
        let hours = OpeningHours::new(
            WeeklySchedule::default(),
            std::sync::Arc::new(BankHolidays::embedded_for(Division::EnglandAndWales).unwrap()),
        );
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // Friday 18 December 2026: next working day Monday 21st. Thursday 24th: Tuesday 29th
        // (Christmas Day and the Boxing Day substitute in between).
        let a = after_attempt(Outcome::NoAnswer, 0, 3, day("2026-12-18"), &hours);
        assert_eq!(
            (a.status, a.next_attempt_on, a.unanswered),
            (Status::Retry, Some(day("2026-12-21")), 1)
        );
        let a = after_attempt(Outcome::Voicemail, 1, 3, day("2026-12-24"), &hours);
        assert_eq!(
            (a.status, a.next_attempt_on),
            (Status::Retry, Some(day("2026-12-29")))
        );
        let a = after_attempt(Outcome::NoAnswer, 2, 3, day("2026-12-29"), &hours);
        assert_eq!(
            (a.status, a.closed, a.next_attempt_on),
            (Status::Unreachable, true, None)
        );
        // Reaching the caller starts the count again.
        let a = after_attempt(Outcome::FollowUp, 2, 3, day("2026-12-29"), &hours);
        assert_eq!(
            (a.status, a.closed, a.unanswered),
            (Status::FollowUp, false, 0)
        );
        assert_eq!(
            after_attempt(Outcome::Resolved, 2, 3, day("2026-12-29"), &hours).status,
            Status::Resolved
        );
        assert_eq!(
            after_attempt(Outcome::WrongNumber, 0, 3, day("2026-12-29"), &hours).status,
            Status::WrongNumber
        );
        assert_eq!(
            after_attempt(Outcome::NoAnswer, 0, 1, day("2026-12-29"), &hours).status,
            Status::Unreachable
        );
    }

    #[test]
    fn references_are_six_digits_spoken_in_two_groups() {
        for _ in 0..1000 {
            let r = Reference::random();
            assert!(Reference::parse(r.as_str()).is_some(), "{r}");
            assert!(!r.as_str().starts_with('0'));
        }
        assert_eq!(Reference::parse("482915").unwrap().spoken(), "4 8 2, 9 1 5");
        assert_eq!(Reference::parse("48291"), None);
    }
}
