//! The GOV.UK bank-holiday feed parser (`BankHolidays::from_govuk_json`,
//! `src/hours/calendar.rs`) and the daily refresh's acceptance rules (`feed::accept`,
//! `src/hours/feed.rs`) on any bytes as the feed's body.
//!
//! The division read is chosen by the input's length, so all three are exercised. An input
//! whose first byte is 0xFF (never the start of JSON) is instead read as choices for writing
//! a GOV.UK document and the division to read ([`generated`]): the embedded snapshot with
//! dates dropped, added and retitled, as a real refresh sees it, or made-up events (dates
//! anywhere in chrono's range, titles of any text, repeated dates, any order). Mutated JSON
//! seldom parses; these nearly always do, which puts the properties below to the test.
//!
//! Beyond "never panics":
//! - an accepted calendar is non-empty, in strictly increasing date order, agrees with itself
//!   (first and last date, `covers`, `title_on`), and written out with `to_govuk_json` reads
//!   back equal (and lists no other division);
//! - against the embedded snapshot as the calendar in force, `accept` refuses exactly the
//!   bodies the parser refuses as unreadable, refuses the others exactly as its documented
//!   rules say (fewer dates to come; a past date within the document's range gone, naming
//!   the earliest), and what it accepts keeps every fetched date with its title,
//!   keeps the history before the document's first date, drops no past date within the
//!   document's range, and has at least as many dates to come; accepting the accepted
//!   calendar's own document again changes nothing; the operator's `--force` (shape-only
//!   checks) accepts every readable document.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use chrono::{Days, NaiveDate};
use helpline::hours::feed::{accept, accept_with, diff, Checks, Rejected};
use helpline::hours::{BankHolidays, CalendarError, Division};
use libfuzzer_sys::fuzz_target;

const SOURCE: &str = "fuzz";

const DIVISIONS: [Division; 3] = [
    Division::EnglandAndWales,
    Division::Scotland,
    Division::NorthernIreland,
];

fuzz_target!(|data: &[u8]| {
    let (body, division) = match data.split_first() {
        Some((0xFF, choices)) => match generated(&mut Unstructured::new(choices)) {
            Ok(generated) => generated,
            Err(_) => return,
        },
        _ => (data.to_vec(), DIVISIONS[data.len() % 3]),
    };
    let body = body.as_slice();
    let parsed = BankHolidays::from_govuk_json(body, division, SOURCE);
    match &parsed {
        Ok(calendar) => well_formed(calendar, division),
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let current = snapshot(division);
    // A day inside the snapshot's range, and the day after it ends.
    let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let after_snapshot = current.last_date().unwrap().succ_opt().unwrap();
    for today in [today, after_snapshot] {
        let result = accept(current, body, division, SOURCE, today);
        match (&parsed, &result) {
            (Ok(fetched), result) => follows_the_rules(current, fetched, result, today),
            (Err(_), Err(Rejected::Unreadable(_))) => {}
            (Err(e), other) => panic!("unreadable ({e}) but accept gave {other:?}"),
        }
        let forced = accept_with(current, body, division, SOURCE, today, Checks::ShapeOnly);
        assert_eq!(
            parsed.is_ok(),
            forced.is_ok(),
            "shape-only acceptance differs from the parser: {forced:?}"
        );
    }
});

/// The embedded snapshot for `division` (parsed once: it is the calendar in force for every
/// input).
fn snapshot(division: Division) -> &'static BankHolidays {
    static SNAPSHOTS: OnceLock<Vec<BankHolidays>> = OnceLock::new();
    let all = SNAPSHOTS.get_or_init(|| {
        DIVISIONS
            .iter()
            .map(|d| BankHolidays::embedded_for(*d).expect("the embedded snapshot"))
            .collect()
    });
    &all[DIVISIONS.iter().position(|d| *d == division).unwrap()]
}

/// `accept`'s documented rules, checked one by one: fewer dates to come is refused first,
/// then the earliest past date within the document's range that it no longer lists;
/// anything else is accepted.
fn follows_the_rules(
    current: &BankHolidays,
    fetched: &BankHolidays,
    result: &Result<BankHolidays, Rejected>,
    today: NaiveDate,
) {
    let to_come = |h: &BankHolidays| h.iter().filter(|(d, _)| *d > today).count();
    let first = fetched.first_date().unwrap();
    let removed = current
        .iter()
        .find(|(d, _)| first <= *d && *d <= today && fetched.title_on(*d).is_none());
    match result {
        Ok(new) => {
            assert!(to_come(fetched) >= to_come(current) && removed.is_none());
            accepted(current, fetched, new, today);
        }
        Err(Rejected::FewerFutureEvents { before, after }) => {
            assert_eq!((*before, *after), (to_come(current), to_come(fetched)));
            assert!(after < before);
        }
        Err(Rejected::RemovedPastDate { date, title }) => {
            assert!(to_come(fetched) >= to_come(current));
            assert_eq!(removed, Some((*date, title.as_str())));
        }
        Err(other) => panic!("a readable document refused: {other}"),
    }
}

fn well_formed(calendar: &BankHolidays, division: Division) {
    assert!(!calendar.is_empty());
    assert_eq!(calendar.division(), division);
    assert_eq!(calendar.source(), SOURCE);
    let days: Vec<(NaiveDate, &str)> = calendar.iter().collect();
    assert_eq!(days.len(), calendar.len());
    assert!(
        days.windows(2).all(|w| w[0].0 < w[1].0),
        "dates not in strictly increasing order"
    );
    let (first, last) = (days[0].0, days[days.len() - 1].0);
    assert_eq!(calendar.first_date(), Some(first));
    assert_eq!(calendar.last_date(), Some(last));
    assert!(calendar.covers(first) && calendar.covers(last));
    if let Some(before) = first.pred_opt() {
        assert!(!calendar.covers(before));
    }
    if let Some(after) = last.succ_opt() {
        assert!(!calendar.covers(after));
    }
    for (date, title) in &days {
        assert_eq!(calendar.title_on(*date), Some(*title));
    }

    let written = calendar.to_govuk_json();
    let read = BankHolidays::from_govuk_json(&written, division, SOURCE)
        .unwrap_or_else(|e| panic!("to_govuk_json wrote what does not read back: {e}"));
    assert_eq!(&read, calendar, "to_govuk_json does not read back equal");
    for other in DIVISIONS.into_iter().filter(|d| *d != division) {
        assert!(
            matches!(
                BankHolidays::from_govuk_json(&written, other, SOURCE),
                Err(CalendarError::MissingDivision { .. })
            ),
            "to_govuk_json lists {other:?} too"
        );
    }
}

/// What an accepted document makes: the fetched dates, the history before them, nothing else.
fn accepted(current: &BankHolidays, fetched: &BankHolidays, new: &BankHolidays, today: NaiveDate) {
    let first = fetched.first_date().unwrap();
    for (date, title) in fetched.iter() {
        assert_eq!(
            new.title_on(date),
            Some(title),
            "fetched {date} lost or retitled"
        );
    }
    let history: Vec<_> = current.iter().filter(|(d, _)| *d < first).collect();
    for (date, title) in &history {
        assert_eq!(new.title_on(*date), Some(*title), "history {date} lost");
    }
    assert_eq!(
        new.len(),
        fetched.len() + history.len(),
        "dates from nowhere"
    );
    let removed = diff(current, new).removed;
    assert!(
        removed.iter().all(|(d, _)| *d < first || *d > today),
        "past dates within the document's range removed: {removed:?}"
    );
    let to_come = |h: &BankHolidays| h.iter().filter(|(d, _)| *d > today).count();
    assert!(to_come(new) >= to_come(current), "fewer dates to come");

    let again = accept(new, &new.to_govuk_json(), new.division(), SOURCE, today)
        .unwrap_or_else(|e| panic!("the accepted calendar's own document refused: {e}"));
    assert_eq!(&again, new, "accepting the same calendar again changed it");
}

/// A GOV.UK `bank-holidays.json` document written from `u`'s choices, and the division to
/// read from it: one to three divisions (the key and the `division` field usually agreeing),
/// each either the embedded snapshot's events with some dropped, added and retitled (what a
/// real refresh sees) or events made up: dates mostly near today but anywhere chrono can
/// write, in any order, repeated, with any title.
fn generated(u: &mut Unstructured) -> arbitrary::Result<(Vec<u8>, Division)> {
    const KEYS: [&str; 4] = ["england-and-wales", "scotland", "northern-ireland", "wales"];
    let event = |date: NaiveDate, title: &str, u: &mut Unstructured| -> arbitrary::Result<_> {
        Ok(serde_json::json!({
            "title": title,
            "date": date.format("%Y-%m-%d").to_string(),
            "notes": if u.arbitrary()? { "Substitute day" } else { "" },
            "bunting": u.arbitrary::<bool>()?,
        }))
    };
    let made_up_date = |u: &mut Unstructured| -> arbitrary::Result<NaiveDate> {
        Ok(if u.ratio(1, 30)? {
            NaiveDate::from_num_days_from_ce_opt(u.arbitrary()?).unwrap_or(NaiveDate::MAX)
        } else {
            let base = NaiveDate::from_ymd_opt(2012, 1, 1).unwrap();
            base.checked_add_days(Days::new(u.int_in_range(0..=7000)?))
                .unwrap()
        })
    };
    let made_up_title = |u: &mut Unstructured| -> arbitrary::Result<String> {
        Ok(if u.arbitrary()? {
            u.choose(&["Christmas Day", "Boxing Day", "Spring bank holiday", ""])?
                .to_string()
        } else {
            u.arbitrary()?
        })
    };

    let read_index = u.choose_index(DIVISIONS.len())?;
    let read = DIVISIONS[read_index];
    let mut document = serde_json::Map::new();
    for n in 0..u.int_in_range(1..=3)? {
        // The first division written is usually the one read.
        let key = if n == 0 && !u.ratio(1, 10)? {
            KEYS[read_index]
        } else {
            *u.choose(&KEYS)?
        };
        let named = if u.ratio(1, 20)? {
            *u.choose(&KEYS)?
        } else {
            key
        };
        let mut events = Vec::new();
        // KEYS[i] is DIVISIONS[i]'s key for the first three.
        let snapshot = KEYS[..3]
            .iter()
            .position(|k| *k == key)
            .map(|i| snapshot(DIVISIONS[i]));
        let from_snapshot = u.arbitrary::<bool>()?;
        match snapshot {
            Some(snapshot) if from_snapshot => {
                // Drop a run of the oldest (GOV.UK keeps a few years) and a few others.
                let skip = if u.arbitrary()? {
                    u.int_in_range(0..=snapshot.len())?
                } else {
                    0
                };
                for (date, title) in snapshot.iter().skip(skip) {
                    if u.ratio(1, 60)? {
                        continue;
                    }
                    let title = if u.ratio(1, 60)? {
                        made_up_title(u)?
                    } else {
                        title.to_string()
                    };
                    events.push(event(date, &title, u)?);
                }
                if u.arbitrary()? {
                    events.reverse();
                }
            }
            _ => {}
        }
        for _ in 0..u.int_in_range(0..=20)? {
            let (date, title) = (made_up_date(u)?, made_up_title(u)?);
            events.push(event(date, &title, u)?);
        }
        document.insert(
            key.to_string(),
            serde_json::json!({ "division": named, "events": events }),
        );
    }
    let body = serde_json::to_vec(&serde_json::Value::Object(document)).unwrap();
    Ok((body, read))
}
