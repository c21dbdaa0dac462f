//! Closures and special openings combined with the schedule, bank holidays and the clock changes.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;

fn london(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Tz> {
    LONDON
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("unambiguous London time")
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    london(y, mo, d, h, mi).with_timezone(&Utc)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn closed(id: i64, from: DateTime<Utc>, until: DateTime<Utc>, reason: &str) -> Closure {
    Closure {
        id,
        kind: ClosureKind::Closed,
        from,
        until,
        reason: reason.into(),
    }
}

fn special(id: i64, from: DateTime<Utc>, until: DateTime<Utc>) -> Closure {
    Closure {
        id,
        kind: ClosureKind::Open,
        from,
        until,
        reason: "new announcement".into(),
    }
}

fn hours(closures: Vec<Closure>) -> OpeningHours {
    OpeningHours::new(
        WeeklySchedule::default(),
        Arc::new(BankHolidays::embedded().expect("snapshot")),
    )
    .with_closures(closures)
}

#[test]
fn closing_early_on_christmas_eve() {
    let h = hours(vec![closed(
        1,
        at(2026, 12, 24, 12, 0),
        at(2026, 12, 24, 16, 0),
        "The line closes at 12 noon today",
    )]);
    let s = h.status(at(2026, 12, 24, 11, 59));
    assert!(s.open);
    assert_eq!(
        s.closes_at,
        Some(london(2026, 12, 24, 12, 0)),
        "closes at the closure, not at 4pm"
    );
    let s = h.status(at(2026, 12, 24, 12, 0));
    assert!(!s.open);
    assert_eq!(
        s.reason,
        Reason::Closure {
            reason: "The line closes at 12 noon today".into()
        }
    );
    assert_eq!(s.reason.spoken(), "The line closes at 12 noon today.");
    assert!(s
        .reason
        .describe()
        .contains("The line closes at 12 noon today"));
    assert_eq!(s.next_open, Some(london(2026, 12, 29, 9, 0)));
    assert!(h.is_working_day(date(2026, 12, 24)), "open in the morning");
}

#[test]
fn christmas_weekend_and_an_added_closure_on_the_29th() {
    let h = hours(vec![closed(
        1,
        at(2026, 12, 29, 0, 0),
        at(2026, 12, 30, 0, 0),
        "The line is closed today for staff training",
    )]);
    let s = h.status(at(2026, 12, 24, 16, 30));
    assert_eq!(s.next_open, Some(london(2026, 12, 30, 9, 0)));
    let s = h.status(at(2026, 12, 29, 10, 0));
    assert_eq!(
        s.reason.spoken(),
        "The line is closed today for staff training."
    );
    assert!(!h.is_working_day(date(2026, 12, 29)));
    // 24th, then (25th–28th holidays and weekend, 29th closed) the 30th.
    assert_eq!(
        h.working_days_after(date(2026, 12, 23), 2),
        date(2026, 12, 30)
    );
}

#[test]
fn special_saturday_opening() {
    let h = hours(vec![special(
        1,
        at(2026, 11, 28, 10, 0),
        at(2026, 11, 28, 13, 0),
    )]);
    let s = h.status(at(2026, 11, 28, 9, 0));
    assert!(!s.open);
    assert_eq!(s.reason, Reason::BeforeOpening, "it opens later today");
    assert_eq!(s.next_open, Some(london(2026, 11, 28, 10, 0)));
    let s = h.status(at(2026, 11, 28, 10, 0));
    assert!(s.open);
    assert_eq!(s.closes_at, Some(london(2026, 11, 28, 13, 0)));
    assert_eq!(
        h.status(at(2026, 11, 28, 13, 0)).next_open,
        Some(london(2026, 11, 30, 9, 0))
    );
    assert!(h.is_working_day(date(2026, 11, 28)));
    assert_eq!(
        h.working_days_after(date(2026, 11, 27), 1),
        date(2026, 11, 28)
    );
    // While open on Saturday, the next opening is Monday's.
    assert_eq!(
        h.next_open(at(2026, 11, 28, 11, 0)),
        Some(london(2026, 11, 30, 9, 0))
    );
}

#[test]
fn special_opening_on_a_bank_holiday() {
    let h = hours(vec![special(
        1,
        at(2026, 12, 28, 10, 0),
        at(2026, 12, 28, 14, 0),
    )]);
    assert!(h.is_open(at(2026, 12, 28, 10, 0)));
    assert_eq!(
        h.status(at(2026, 12, 28, 9, 0)).next_open,
        Some(london(2026, 12, 28, 10, 0))
    );
}

#[test]
fn emergency_closure_now_until_the_afternoon() {
    let now = at(2026, 11, 24, 10, 30);
    let h = hours(vec![closed(
        7,
        now,
        at(2026, 11, 24, 14, 0),
        "We can't take calls just now because of a power cut",
    )]);
    let s = h.status(now);
    assert!(!s.open);
    assert_eq!(
        s.next_open,
        Some(london(2026, 11, 24, 14, 0)),
        "reopens when the closure ends, mid-session"
    );
    let s = h.status(at(2026, 11, 24, 14, 0));
    assert!(s.open);
    assert_eq!(s.closes_at, Some(london(2026, 11, 24, 16, 0)));
}

#[test]
fn a_closure_beats_a_special_opening() {
    let h = hours(vec![
        special(1, at(2026, 11, 28, 10, 0), at(2026, 11, 28, 13, 0)),
        closed(
            2,
            at(2026, 11, 28, 11, 0),
            at(2026, 11, 28, 12, 0),
            "Closed for an hour",
        ),
    ]);
    assert!(h.is_open(at(2026, 11, 28, 10, 59)));
    assert_eq!(
        h.status(at(2026, 11, 28, 10, 0)).closes_at,
        Some(london(2026, 11, 28, 11, 0))
    );
    let s = h.status(at(2026, 11, 28, 11, 30));
    assert_eq!(
        s.reason,
        Reason::Closure {
            reason: "Closed for an hour".into()
        }
    );
    assert_eq!(s.next_open, Some(london(2026, 11, 28, 12, 0)));
}

#[test]
fn a_closure_across_the_spring_clock_change() {
    // Friday 27 March 2026 midday (GMT) to Monday 30 March 10:00 (BST).
    let h = hours(vec![closed(
        1,
        at(2026, 3, 27, 12, 0),
        at(2026, 3, 30, 10, 0),
        "Closed for the move",
    )]);
    let s = h.status(at(2026, 3, 27, 13, 0));
    assert_eq!(s.next_open, Some(london(2026, 3, 30, 10, 0)));
    assert_eq!(
        s.next_open.map(|t| t.with_timezone(&Utc)),
        Some(Utc.with_ymd_and_hms(2026, 3, 30, 9, 0, 0).unwrap())
    );
    assert!(h.is_working_day(date(2026, 3, 30)), "open from 10am");
}

#[test]
fn a_closure_across_the_autumn_clock_change() {
    let h = hours(vec![closed(
        1,
        at(2026, 10, 23, 9, 0),
        at(2026, 10, 26, 12, 0),
        "Closed",
    )]);
    assert_eq!(
        h.status(at(2026, 10, 23, 10, 0)).next_open,
        Some(london(2026, 10, 26, 12, 0))
    );
    assert!(!h.is_working_day(date(2026, 10, 23)));
}

#[test]
fn spoken_reasons() {
    assert_eq!(
        Reason::BankHoliday {
            title: "Christmas Day".into()
        }
        .spoken(),
        "The line is closed today for the Christmas Day bank holiday."
    );
    assert_eq!(
        Reason::BankHoliday {
            title: "Early May bank holiday".into()
        }
        .spoken(),
        "The line is closed today for the Early May bank holiday."
    );
    assert_eq!(Reason::Weekend.spoken(), "The line is closed at weekends.");
    assert_eq!(
        Reason::AfterClosing.spoken(),
        "The line has closed for today."
    );
    assert_eq!(
        Reason::Closure {
            reason: "Closed for training!".into()
        }
        .spoken(),
        "Closed for training!"
    );
}

fn instant_2026() -> impl Strategy<Value = DateTime<Utc>> {
    // Quarter-hours through 2026 and early 2027, so edges coincide with session times often.
    (0i64..(460 * 96)).prop_map(|q| {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + TimeDelta::minutes(15 * q)
    })
}

fn exception() -> impl Strategy<Value = (bool, DateTime<Utc>, i64)> {
    (any::<bool>(), instant_2026(), 1i64..(4 * 96))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    /// With any mix of closures and special openings, the answers agree with `is_open`:
    /// the next opening is open and the moment before it closed; the closing time is closed
    /// and the moment before it open.
    #[test]
    fn transitions_agree_with_is_open(raw in proptest::collection::vec(exception(), 0..6), now in instant_2026()) {
        let closures: Vec<Closure> = raw.iter().enumerate().map(|(i, (is_closure, from, quarters))| {
            let until = *from + TimeDelta::minutes(15 * quarters);
            if *is_closure { closed(i as i64, *from, until, "closed") } else { special(i as i64, *from, until) }
        }).collect();
        let h = hours(closures);
        let s = h.status(now);
        prop_assert_eq!(s.open, h.is_open(now));
        if s.open {
            let close = s.closes_at.expect("closes within the search window").with_timezone(&Utc);
            prop_assert!(close > now);
            prop_assert!(!h.is_open(close));
            prop_assert!(h.is_open(close - TimeDelta::seconds(1)));
        } else {
            let next = s.next_open.expect("opens within the search window").with_timezone(&Utc);
            prop_assert!(next > now);
            prop_assert!(h.is_open(next));
            prop_assert!(!h.is_open(next - TimeDelta::seconds(1)));
            // Nothing in between is open: sample the quarter-hours.
            let mut t = now;
            while t < next {
                prop_assert!(!h.is_open(t), "open at {} before next_open {}", t, next);
                t += TimeDelta::minutes(15);
            }
        }
        prop_assert_eq!(h.is_working_day(now.with_timezone(&LONDON).date_naive()),
            {
                let d = now.with_timezone(&LONDON).date_naive();
                let start = LONDON.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap()).earliest().unwrap().with_timezone(&Utc);
                (0..96).any(|q| { let t = start + TimeDelta::minutes(15 * q); t.with_timezone(&LONDON).date_naive() == d && h.is_open(t) })
            });
    }
}

#[test]
fn schedules_parse_from_configuration() {
    let s = WeeklySchedule::parse("Mon-Fri 09:00-16:00").unwrap();
    assert_eq!(s, WeeklySchedule::default());
    assert_eq!(s.to_string(), "Mon-Fri 09:00-16:00");
    let s = WeeklySchedule::parse(" mon,wed 09:30-12:00 ; Saturday 10:00-13:00 ").unwrap();
    assert_eq!(
        s.to_string(),
        "Mon 09:30-12:00; Wed 09:30-12:00; Sat 10:00-13:00"
    );
    assert_eq!(
        WeeklySchedule::parse(&s.to_string()).unwrap(),
        s,
        "round trip"
    );
    for (bad, why) in [
        ("", "opens on no day"),
        ("Mon-Fri", "expected `DAYS HH:MM-HH:MM`"),
        ("Mon-Fri 9-4", "HH:MM-HH:MM"),
        ("Fri-Mon 09:00-16:00", "runs forwards"),
        ("Monkey 09:00-16:00", "days are Mon"),
        ("Mon 16:00-09:00", "must be before closing"),
        ("Mon 09:00-12:00; Mon 13:00-16:00", "twice"),
    ] {
        let e = WeeklySchedule::parse(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn divisions_by_feed_name() {
    for d in Division::all() {
        assert_eq!(parse_division(division_key(d)), Some(d));
    }
    assert_eq!(parse_division("wales"), None);
}

#[test]
fn before_a_day_long_closure_callers_hear_its_reason() {
    let h = hours(vec![closed(
        1,
        at(2026, 11, 25, 9, 0),
        at(2026, 11, 25, 16, 0),
        "The line is closed today for staff training",
    )]);
    let s = h.status(at(2026, 11, 25, 8, 30));
    assert_eq!(
        s.reason.spoken(),
        "The line is closed today for staff training."
    );
    assert_eq!(s.next_open, Some(london(2026, 11, 26, 9, 0)));
    // A closure for only part of the day: the line still opens today.
    let h = hours(vec![closed(
        1,
        at(2026, 11, 25, 9, 0),
        at(2026, 11, 25, 12, 0),
        "Morning briefing",
    )]);
    assert_eq!(
        h.status(at(2026, 11, 25, 8, 30)).reason,
        Reason::BeforeOpening
    );
    // After the session, the usual words.
    let h = hours(vec![closed(
        1,
        at(2026, 11, 25, 9, 0),
        at(2026, 11, 25, 16, 0),
        "Training",
    )]);
    assert_eq!(
        h.status(at(2026, 11, 25, 17, 0)).reason,
        Reason::AfterClosing
    );
}

#[test]
fn before_a_special_opening_today_the_line_is_not_open_yet() {
    let h = hours(vec![special(
        1,
        at(2026, 11, 28, 10, 0),
        at(2026, 11, 28, 13, 0),
    )]);
    let s = h.status(at(2026, 11, 28, 9, 0));
    assert_eq!(s.reason, Reason::BeforeOpening, "not 'closed at weekends'");
    assert_eq!(h.status(at(2026, 11, 28, 14, 0)).reason, Reason::Weekend);
}
