//! UK phone numbers as callers give them: validated, normalised to E.164, and
//! spoken digit by digit so text-to-speech never reads "oh one five one" as a quantity.

use std::fmt;

/// A UK number a call handler can ring back: a geographic (01/02), non-geographic (03)
/// or mobile (07) number, stored in E.164 form (`+44…`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UkNumber(String);

impl UkNumber {
    /// Accepts `01…`, `02…`, `03…`, `07…` (10 or 11 digits in all) or the same after
    /// `+44`/`0044`/`44`, with spaces, dashes, dots or brackets between digits.
    /// Returns `None` for anything else (premium, short codes, foreign, `anonymous`).
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        let has_plus = trimmed.starts_with('+');
        let body = if has_plus { &trimmed[1..] } else { trimmed };
        if body
            .chars()
            .any(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')))
        {
            return None;
        }
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        let national = if let Some(rest) = digits.strip_prefix("0044") {
            rest.to_string()
        } else if let Some(rest) = digits
            .strip_prefix("44")
            .filter(|_| has_plus || digits.len() == 12)
        {
            rest.to_string()
        } else if has_plus {
            return None;
        } else {
            digits.strip_prefix('0')?.to_string()
        };
        // `national` is now the number without its leading 0: 9 or 10 digits starting 1, 2, 3 or 7.
        let first = national.chars().next()?;
        if !matches!(first, '1' | '2' | '3' | '7') || !(9..=10).contains(&national.len()) {
            return None;
        }
        // Mobiles and 02/03 numbers are always 11 digits with the 0.
        if matches!(first, '2' | '3' | '7') && national.len() != 10 {
            return None;
        }
        Some(Self(format!("+44{national}")))
    }

    /// The caller's own number from Twilio's `From`, which for a phone on the public
    /// network is always E.164 (`+` and digits only). Anything else — `anonymous`, the
    /// withheld-number stand-in `+266696687`, `client:…`, `sip:…`, an empty or national-form
    /// value — is not a number we would offer to ring back, so the caller is asked for one.
    pub fn from_caller_id(from: &str) -> Option<Self> {
        let digits = from.strip_prefix('+')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Self::parse(from)
    }

    /// E.164 form, e.g. `+447700900123`.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// National form as a UK caller writes it, e.g. `07700900123`.
    pub fn national(&self) -> String {
        format!("0{}", &self.0[3..])
    }

    /// The last `n` digits spoken one by one: "0 1 2 3".
    pub fn spoken_last_digits(&self, n: usize) -> String {
        let digits = &self.0[self.0.len().saturating_sub(n)..];
        spaced(digits)
    }

    /// The whole number read back digit by digit in its national form, grouped so the
    /// pauses fall where a person would put them: "0 7 7 0 0, 9 0 0, 4 5 6".
    pub fn spoken(&self) -> String {
        let national = self.national();
        let (head, tail) = national.split_at(5.min(national.len()));
        let mut groups = vec![spaced(head)];
        let mut rest = tail;
        while !rest.is_empty() {
            let take = if rest.len() == 4 {
                4
            } else {
                3.min(rest.len())
            };
            let (g, r) = rest.split_at(take);
            groups.push(spaced(g));
            rest = r;
        }
        groups.join(", ")
    }

    /// A UK mobile (07… other than 070 personal and 076 pager numbers): the only numbers
    /// the line ever sends a text message to.
    pub fn is_mobile(&self) -> bool {
        self.0.starts_with("+447") && !self.0.starts_with("+4470") && !self.0.starts_with("+4476")
    }

    /// Masked for display and logs of last resort: `07700 9•••23`-style, keeping 2 digits.
    pub fn masked(&self) -> String {
        let national = self.national();
        let keep = 2;
        let cut = national.len().saturating_sub(keep);
        format!("{}{}", "•".repeat(cut), &national[cut..])
    }
}

// Never print a caller's number by accident: Debug is masked too.
impl fmt::Debug for UkNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UkNumber({})", self.masked())
    }
}

/// Digits spoken one at a time: "123" → "1 2 3".
pub fn spaced(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A published phone number as written ("0300 123 2040") spoken digit by digit with a
/// short pause between its groups: "0 3 0 0, 1 2 3, 2 0 4 0".
pub fn spoken_phone_number(written: &str) -> String {
    written
        .split_whitespace()
        .map(|group| {
            spaced(
                &group
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect::<String>(),
            )
        })
        .filter(|g| !g.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uk_numbers_in_usual_forms() {
        for (raw, e164) in [
            ("07700900123", "+447700900123"),
            ("07700 900 123", "+447700900123"),
            ("+447700900123", "+447700900123"),
            ("00447700900123", "+447700900123"),
            ("447700900123", "+447700900123"),
            ("0151 706 3602", "+441517063602"),
            ("(0151) 706-3602", "+441517063602"),
            ("0300 123 2040", "+443001232040"),
            ("020 7946 0000", "+442079460000"),
            ("01697 73456", "+44169773456"),
        ] {
            assert_eq!(
                UkNumber::parse(raw).map(|n| n.e164().to_string()),
                Some(e164.to_string()),
                "{raw}"
            );
        }
    }

    #[test]
    fn caller_id_must_be_e164() {
        assert_eq!(
            UkNumber::from_caller_id("+447700900123").map(|n| n.e164().to_string()),
            Some("+447700900123".to_string())
        );
        for from in [
            "",
            "anonymous",
            "+266696687",
            "client:alice",
            "sip:x@y",
            "07700900123",
            "447700900123",
            "00447700900123",
            "+44 7700 900123",
            "+44(0)7700900123",
            " +447700900123",
            "+",
            "+12025550100",
        ] {
            assert_eq!(UkNumber::from_caller_id(from), None, "{from:?}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for raw in [
            "",
            "anonymous",
            "unknown",
            "+12349013030",
            "0800 123 4567",
            "09012345678",
            "999",
            "112",
            "0770090012",
            "077009001234",
            "+4407700900123",
            "0044",
            "07700a900123",
            "+44 20 7946 000",
            "05512345678",
            "1234567890",
        ] {
            assert_eq!(UkNumber::parse(raw), None, "{raw}");
        }
    }

    #[test]
    fn speaks_and_masks() {
        let n = UkNumber::parse("07700900123").unwrap();
        assert_eq!(n.spoken_last_digits(4), "0 1 2 3");
        assert_eq!(n.spoken(), "0 7 7 0 0, 9 0 0, 1 2 3");
        assert_eq!(
            UkNumber::parse("0151 706 3602").unwrap().spoken(),
            "0 1 5 1 7, 0 6 3, 6 0 2"
        );
        assert_eq!(
            UkNumber::parse("01697 73456").unwrap().spoken(),
            "0 1 6 9 7, 7 3 4, 5 6"
        );
        assert_eq!(n.national(), "07700900123");
        assert_eq!(n.masked(), "•••••••••23");
        assert!(!format!("{n:?}").contains("900123"));
        assert_eq!(
            spoken_phone_number("0300 123 2040"),
            "0 3 0 0, 1 2 3, 2 0 4 0"
        );
        assert_eq!(
            spoken_phone_number("0151 706 3602"),
            "0 1 5 1, 7 0 6, 3 6 0 2"
        );
    }
}
