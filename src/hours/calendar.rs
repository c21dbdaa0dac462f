//! Bank holidays for one UK division, loaded from a GOV.UK `bank-holidays.json` document.
//!
//! Parsing is delegated to the `govuk-bank-holidays` crate so the GOV.UK format is understood
//! exactly as upstream does; the result is flattened into a sorted map because the engine only
//! ever asks "is this date a holiday, and what is it called?".

use std::collections::BTreeMap;

use chrono::NaiveDate;
use govuk_bank_holidays::data_source::{DataSource, LoadDataSource};
use govuk_bank_holidays::BankHolidayCalendar;

pub use govuk_bank_holidays::Division;

/// The GOV.UK snapshot shipped with the binary, so the line works without network access.
const EMBEDDED_JSON: &[u8] = include_bytes!("../../data/bank-holidays.json");

/// Name reported by [`BankHolidays::source`] for the embedded snapshot.
pub const EMBEDDED_SOURCE: &str = "embedded snapshot";

/// Why a bank-holiday document could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The document is not valid GOV.UK bank-holidays JSON (including unparseable dates).
    #[error("could not parse bank holidays from {origin}: {detail}")]
    Parse { origin: String, detail: String },
    /// The document parsed but lists nothing for the requested division; treating that as
    /// "no holidays" would silently open the line on Christmas Day, so it is an error.
    #[error("{origin} lists no bank holidays for {division}")]
    MissingDivision { division: Division, origin: String },
}

/// Known bank holidays of one division, in date order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankHolidays {
    division: Division,
    source: String,
    /// Date → title. Should a document list two holidays on one date, their titles are joined.
    days: BTreeMap<NaiveDate, String>,
}

impl BankHolidays {
    /// The GOV.UK snapshot embedded in the binary, England and Wales division.
    pub fn embedded() -> Result<Self, CalendarError> {
        Self::embedded_for(Division::EnglandAndWales)
    }

    /// The embedded snapshot for any division.
    pub fn embedded_for(division: Division) -> Result<Self, CalendarError> {
        Self::from_govuk_json(EMBEDDED_JSON, division, EMBEDDED_SOURCE)
    }

    /// Parse a GOV.UK `bank-holidays.json` document and keep one division.
    ///
    /// `source` names where the document came from, for error messages and diagnostics.
    pub fn from_govuk_json(
        bytes: &[u8],
        division: Division,
        source: &str,
    ) -> Result<Self, CalendarError> {
        // The crate only builds calendars through an async loader; ours is in-memory, so the
        // future completes on first poll and blocking on it is free.
        let calendar = futures_executor::block_on(BankHolidayCalendar::custom(JsonBytes(bytes)))
            .map_err(|error| CalendarError::Parse {
                origin: source.to_owned(),
                detail: match error {
                    // The crate's own message is just "Parsing error"; serde's says where and why.
                    govuk_bank_holidays::Error::Parsing(inner) => inner.to_string(),
                    other => other.to_string(),
                },
            })?;

        let days = calendar
            .holidays(Some(division))
            .into_iter()
            .map(|holiday| (*holiday.date(), holiday.title().to_owned()));
        Self::from_days(division, source, days)
    }

    /// The holiday's title (e.g. "Christmas Day") if `date` is a bank holiday.
    pub fn title_on(&self, date: NaiveDate) -> Option<&str> {
        self.days.get(&date).map(String::as_str)
    }

    /// All known holidays, in date order.
    pub fn iter(&self) -> impl Iterator<Item = (NaiveDate, &str)> {
        self.days
            .iter()
            .map(|(date, title)| (*date, title.as_str()))
    }

    pub fn division(&self) -> Division {
        self.division
    }

    /// Where the data came from, e.g. "embedded snapshot".
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn first_date(&self) -> Option<NaiveDate> {
        self.days.keys().next().copied()
    }

    /// The last listed holiday; GOV.UK publishes only a year or two ahead, so dates after this
    /// are treated as ordinary days and the data should be refreshed before then.
    pub fn last_date(&self) -> Option<NaiveDate> {
        self.days.keys().next_back().copied()
    }

    /// Whether `date` falls within the period the data describes (so "not a holiday" is trustworthy).
    pub fn covers(&self, date: NaiveDate) -> bool {
        matches!((self.first_date(), self.last_date()), (Some(first), Some(last)) if first <= date && date <= last)
    }

    pub fn len(&self) -> usize {
        self.days.len()
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// A calendar from explicit `(date, title)` pairs, e.g. one merged from two documents.
    ///
    /// Pairs may come in any order; two titles on one date are joined as in
    /// [`Self::from_govuk_json`]. No pairs at all is [`CalendarError::MissingDivision`], for the
    /// same reason as there.
    pub fn from_days<I>(division: Division, source: &str, days: I) -> Result<Self, CalendarError>
    where
        I: IntoIterator<Item = (NaiveDate, String)>,
    {
        let mut map: BTreeMap<NaiveDate, String> = BTreeMap::new();
        for (date, title) in days {
            match map.entry(date) {
                std::collections::btree_map::Entry::Occupied(mut existing) => {
                    let joined = existing.get_mut();
                    joined.push_str(" and ");
                    joined.push_str(&title);
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(title);
                }
            }
        }
        if map.is_empty() {
            return Err(CalendarError::MissingDivision {
                division,
                origin: source.to_owned(),
            });
        }
        Ok(Self {
            division,
            source: source.to_owned(),
            days: map,
        })
    }

    /// This calendar as a GOV.UK `bank-holidays.json` document listing only its division:
    /// one event per date with its title, blank notes and no bunting. Reading it back with
    /// [`Self::from_govuk_json`] (same division and source) gives an equal calendar.
    pub fn to_govuk_json(&self) -> Vec<u8> {
        let key = govuk_key(self.division);
        let events: Vec<serde_json::Value> = self
            .days
            .iter()
            .map(|(date, title)| {
                serde_json::json!({
                    "title": title,
                    "date": date.format("%Y-%m-%d").to_string(),
                    "notes": "",
                    "bunting": false,
                })
            })
            .collect();
        let mut document = serde_json::Map::new();
        document.insert(
            key.to_owned(),
            serde_json::json!({ "division": key, "events": events }),
        );
        // `Value`'s `Display` cannot fail; `{:#}` pretty-prints, as GOV.UK's own file is.
        format!("{:#}", serde_json::Value::Object(document)).into_bytes()
    }
}

/// The GOV.UK document's key for a division.
fn govuk_key(division: Division) -> &'static str {
    match division {
        Division::EnglandAndWales => "england-and-wales",
        Division::Scotland => "scotland",
        Division::NorthernIreland => "northern-ireland",
    }
}

/// Feeds an in-memory JSON document to `BankHolidayCalendar::custom`.
struct JsonBytes<'a>(&'a [u8]);

impl LoadDataSource<NaiveDate> for JsonBytes<'_> {
    async fn load_data_source(&self) -> Result<DataSource<NaiveDate>, govuk_bank_holidays::Error> {
        let mut data = DataSource::try_from_json(self.0)?;
        // GOV.UK lists events in order, but nothing guarantees it for other documents.
        data.sort();
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn document(division: &str, events: &str) -> String {
        format!(r#"{{"{division}": {{"division": "{division}", "events": [{events}]}}}}"#)
    }

    fn event(date: &str, title: &str) -> String {
        format!(r#"{{"title": "{title}", "date": "{date}", "notes": "", "bunting": true}}"#)
    }

    #[test]
    fn embedded_snapshot_is_england_and_wales_2012_to_2028() {
        let holidays = BankHolidays::embedded().expect("embedded snapshot parses");
        assert_eq!(holidays.division(), Division::EnglandAndWales);
        assert_eq!(holidays.source(), "embedded snapshot");
        assert_eq!(holidays.first_date(), Some(date(2012, 1, 2)));
        assert_eq!(holidays.last_date(), Some(date(2028, 12, 26)));
        assert_eq!(holidays.len(), 140);
        assert!(!holidays.is_empty());
        assert!(holidays.covers(date(2026, 6, 1)));
        assert!(!holidays.covers(date(2029, 1, 1)));
        // Scottish-only holidays must not leak into England and Wales.
        assert_eq!(holidays.title_on(date(2026, 11, 30)), None); // St Andrew's Day
        assert_eq!(holidays.title_on(date(2026, 1, 2)), None); // 2 January
        assert_eq!(holidays.title_on(date(2026, 12, 25)), Some("Christmas Day"));
        assert_eq!(
            holidays.title_on(date(2023, 5, 8)),
            Some("Bank holiday for the coronation of King Charles III")
        );
    }

    #[test]
    fn iter_is_in_date_order() {
        let holidays = BankHolidays::embedded().expect("embedded snapshot parses");
        let dates: Vec<NaiveDate> = holidays.iter().map(|(d, _)| d).collect();
        assert_eq!(dates.len(), holidays.len());
        assert!(dates.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn selects_the_requested_division() {
        let scotland = BankHolidays::from_govuk_json(EMBEDDED_JSON, Division::Scotland, "test")
            .expect("scotland parses");
        assert_eq!(scotland.division(), Division::Scotland);
        assert_eq!(scotland.title_on(date(2026, 1, 2)), Some("2nd January"));
        assert!(scotland.title_on(date(2026, 11, 30)).is_some());
    }

    #[test]
    fn unsorted_input_is_sorted() {
        let events = [
            event("2026-12-25", "Christmas Day"),
            event("2026-01-01", "New Year"),
        ]
        .join(",");
        let json = document("england-and-wales", &events);
        let holidays =
            BankHolidays::from_govuk_json(json.as_bytes(), Division::EnglandAndWales, "test")
                .expect("parses");
        let listed: Vec<_> = holidays.iter().collect();
        assert_eq!(
            listed,
            vec![
                (date(2026, 1, 1), "New Year"),
                (date(2026, 12, 25), "Christmas Day")
            ]
        );
    }

    #[test]
    fn bad_json_is_an_error() {
        let err = BankHolidays::from_govuk_json(b"{ not json", Division::EnglandAndWales, "upload")
            .expect_err("must fail");
        assert!(matches!(err, CalendarError::Parse { .. }), "{err:?}");
        assert!(err
            .to_string()
            .starts_with("could not parse bank holidays from upload: "));
    }

    #[test]
    fn missing_division_is_an_error() {
        let json = document("scotland", &event("2026-11-30", "St Andrew’s Day"));
        let err =
            BankHolidays::from_govuk_json(json.as_bytes(), Division::EnglandAndWales, "x.json")
                .expect_err("must fail");
        assert!(matches!(
            err,
            CalendarError::MissingDivision {
                division: Division::EnglandAndWales,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "x.json lists no bank holidays for England and Wales"
        );
    }

    #[test]
    fn empty_division_is_an_error() {
        let json = document("england-and-wales", "");
        let err = BankHolidays::from_govuk_json(json.as_bytes(), Division::EnglandAndWales, "x")
            .expect_err("must fail");
        assert!(matches!(err, CalendarError::MissingDivision { .. }));
    }

    #[test]
    fn unparseable_dates_are_errors() {
        for bad in ["2026-02-30", "2026/12/25", "25-12-2026", ""] {
            let json = document("england-and-wales", &event(bad, "Bad"));
            let err =
                BankHolidays::from_govuk_json(json.as_bytes(), Division::EnglandAndWales, "x")
                    .expect_err("must fail");
            assert!(matches!(err, CalendarError::Parse { .. }), "{bad}: {err:?}");
        }
    }

    #[test]
    fn to_govuk_json_round_trips() {
        for division in Division::all() {
            let holidays = BankHolidays::from_govuk_json(EMBEDDED_JSON, division, "round trip")
                .expect("embedded snapshot parses");
            let json = holidays.to_govuk_json();
            let back = BankHolidays::from_govuk_json(&json, division, "round trip")
                .expect("own output parses");
            assert_eq!(back, holidays, "{division}");
            // Only this division is written.
            let value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
            assert_eq!(value.as_object().map(|o| o.len()), Some(1));
        }
    }

    #[test]
    fn from_days_sorts_joins_and_refuses_nothing() {
        let holidays = BankHolidays::from_days(
            Division::EnglandAndWales,
            "merged",
            vec![
                (date(2026, 12, 25), "Christmas Day".to_owned()),
                (date(2026, 6, 1), "A".to_owned()),
                (date(2026, 6, 1), "B".to_owned()),
            ],
        )
        .expect("non-empty");
        assert_eq!(holidays.source(), "merged");
        assert_eq!(holidays.first_date(), Some(date(2026, 6, 1)));
        assert_eq!(holidays.title_on(date(2026, 6, 1)), Some("A and B"));
        let back = BankHolidays::from_govuk_json(
            &holidays.to_govuk_json(),
            Division::EnglandAndWales,
            "merged",
        )
        .expect("parses");
        assert_eq!(back, holidays);

        let err =
            BankHolidays::from_days(Division::Scotland, "nothing", Vec::new()).expect_err("empty");
        assert!(matches!(err, CalendarError::MissingDivision { .. }));
    }

    #[test]
    fn two_holidays_on_one_date_keep_both_titles() {
        let events = [event("2026-06-01", "A"), event("2026-06-01", "B")].join(",");
        let json = document("england-and-wales", &events);
        let holidays =
            BankHolidays::from_govuk_json(json.as_bytes(), Division::EnglandAndWales, "x")
                .expect("parses");
        assert_eq!(holidays.len(), 1);
        assert_eq!(holidays.title_on(date(2026, 6, 1)), Some("A and B"));
    }
}
