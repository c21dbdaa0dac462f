//! Enquiries: a caller's request for a call back, as the line stores it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

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
    New,
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

str_enum!(Status { New => "new" });

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
