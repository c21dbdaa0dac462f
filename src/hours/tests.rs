//! Engine tests against the embedded GOV.UK snapshot, with hand-written expectations.

use std::sync::{Arc, OnceLock};

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;

fn embedded() -> Arc<BankHolidays> {
    static CALENDAR: OnceLock<Arc<BankHolidays>> = OnceLock::new();
    CALENDAR
        .get_or_init(|| Arc::new(BankHolidays::embedded().expect("embedded snapshot parses")))
        .clone()
}

fn hours() -> OpeningHours {
    OpeningHours::new(WeeklySchedule::default(), embedded())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid instant")
}

/// A London wall-clock time that exists exactly once.
fn london(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Tz> {
    LONDON
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("unambiguous London time")
}

/// The same, as the UTC instant the engine takes.
fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    london(y, mo, d, h, mi, s).with_timezone(&Utc)
}

fn assert_closed(status: &Status, reason: Reason, next_open: DateTime<Tz>) {
    assert!(!status.open, "{status:?}");
    assert_eq!(status.reason, reason);
    assert_eq!(status.next_open, Some(next_open));
    assert_eq!(status.closes_at, None);
}

fn assert_open(status: &Status, closes_at: DateTime<Tz>) {
    assert!(status.open, "{status:?}");
    assert_eq!(status.reason, Reason::Open);
    assert_eq!(status.next_open, None);
    assert_eq!(status.closes_at, Some(closes_at));
}

/// England and Wales bank holidays, written out by hand (2028 too, for the property tests).
const EXPECTED_HOLIDAYS: [((i32, u32, u32), &str); 24] = [
    ((2026, 1, 1), "New Year’s Day"),
    ((2026, 4, 3), "Good Friday"),
    ((2026, 4, 6), "Easter Monday"),
    ((2026, 5, 4), "Early May bank holiday"),
    ((2026, 5, 25), "Spring bank holiday"),
    ((2026, 8, 31), "Summer bank holiday"),
    ((2026, 12, 25), "Christmas Day"),
    ((2026, 12, 28), "Boxing Day"),
    ((2027, 1, 1), "New Year’s Day"),
    ((2027, 3, 26), "Good Friday"),
    ((2027, 3, 29), "Easter Monday"),
    ((2027, 5, 3), "Early May bank holiday"),
    ((2027, 5, 31), "Spring bank holiday"),
    ((2027, 8, 30), "Summer bank holiday"),
    ((2027, 12, 27), "Christmas Day"),
    ((2027, 12, 28), "Boxing Day"),
    ((2028, 1, 3), "New Year’s Day"),
    ((2028, 4, 14), "Good Friday"),
    ((2028, 4, 17), "Easter Monday"),
    ((2028, 5, 1), "Early May bank holiday"),
    ((2028, 5, 29), "Spring bank holiday"),
    ((2028, 8, 28), "Summer bank holiday"),
    ((2028, 12, 25), "Christmas Day"),
    ((2028, 12, 26), "Boxing Day"),
];

// ---------------------------------------------------------------------------------------------
// Boundaries

#[test]
fn boundaries_on_a_gmt_weekday() {
    let h = hours();
    // Tuesday 24 November 2026: London is on GMT, so local = UTC.
    assert_eq!(at(2026, 11, 24, 9, 0, 0), utc(2026, 11, 24, 9, 0, 0));
    let opens = london(2026, 11, 24, 9, 0, 0);
    let closes = london(2026, 11, 24, 16, 0, 0);
    let tomorrow = london(2026, 11, 25, 9, 0, 0);

    assert_closed(
        &h.status(at(2026, 11, 24, 8, 59, 59)),
        Reason::BeforeOpening,
        opens,
    );
    assert_open(&h.status(at(2026, 11, 24, 9, 0, 0)), closes);
    assert_open(&h.status(at(2026, 11, 24, 15, 59, 59)), closes);
    assert_closed(
        &h.status(at(2026, 11, 24, 16, 0, 0)),
        Reason::AfterClosing,
        tomorrow,
    );

    assert!(!h.is_open(at(2026, 11, 24, 8, 59, 59)));
    assert!(h.is_open(at(2026, 11, 24, 9, 0, 0)));
    assert!(h.is_open(at(2026, 11, 24, 15, 59, 59)));
    assert!(!h.is_open(at(2026, 11, 24, 16, 0, 0)));
}

#[test]
fn boundaries_on_a_bst_weekday() {
    let h = hours();
    // Wednesday 17 June 2026: BST, so 09:00 local is 08:00 UTC and 16:00 local is 15:00 UTC.
    let opens = london(2026, 6, 17, 9, 0, 0);
    let closes = london(2026, 6, 17, 16, 0, 0);
    assert_eq!(opens, utc(2026, 6, 17, 8, 0, 0));
    assert_eq!(closes, utc(2026, 6, 17, 15, 0, 0));

    assert_closed(
        &h.status(utc(2026, 6, 17, 7, 59, 59)),
        Reason::BeforeOpening,
        opens,
    );
    assert_open(&h.status(utc(2026, 6, 17, 8, 0, 0)), closes);
    assert_open(&h.status(utc(2026, 6, 17, 14, 59, 59)), closes);
    assert_closed(
        &h.status(utc(2026, 6, 17, 15, 0, 0)),
        Reason::AfterClosing,
        london(2026, 6, 18, 9, 0, 0),
    );
    // 09:30 UTC would be "open" if the engine wrongly used UTC; 15:30 UTC is 16:30 BST.
    assert!(!h.is_open(utc(2026, 6, 17, 15, 30, 0)));
    assert!(h.is_open(utc(2026, 6, 17, 8, 30, 0)));
}

#[test]
fn the_london_date_decides_late_in_the_evening() {
    let h = hours();
    // 23:30 UTC Sunday is 00:30 BST Monday.
    assert_closed(
        &h.status(utc(2026, 6, 21, 23, 30, 0)),
        Reason::BeforeOpening,
        london(2026, 6, 22, 9, 0, 0),
    );
    // 23:30 UTC Friday is 00:30 BST Saturday.
    assert_closed(
        &h.status(utc(2026, 6, 19, 23, 30, 0)),
        Reason::Weekend,
        london(2026, 6, 22, 9, 0, 0),
    );
    // In winter 23:30 UTC Friday is still Friday.
    assert_closed(
        &h.status(utc(2026, 11, 27, 23, 30, 0)),
        Reason::AfterClosing,
        london(2026, 11, 30, 9, 0, 0),
    );
}

// ---------------------------------------------------------------------------------------------
// Weekends and holidays

#[test]
fn weekends_are_closed_until_monday_morning() {
    let h = hours();
    let monday = london(2026, 11, 30, 9, 0, 0);
    for instant in [
        at(2026, 11, 28, 0, 0, 0),
        at(2026, 11, 28, 12, 0, 0),
        at(2026, 11, 29, 10, 0, 0),
        at(2026, 11, 29, 23, 59, 59),
    ] {
        assert_closed(&h.status(instant), Reason::Weekend, monday);
    }
    // Summer weekend too.
    assert_closed(
        &h.status(at(2026, 6, 20, 11, 0, 0)),
        Reason::Weekend,
        london(2026, 6, 22, 9, 0, 0),
    );
    // Friday evening is "after closing", not "weekend".
    assert_closed(
        &h.status(at(2026, 11, 27, 18, 0, 0)),
        Reason::AfterClosing,
        monday,
    );
}

#[test]
fn embedded_2026_2027_holidays_match_the_hand_written_list() {
    let calendar = embedded();
    let listed: Vec<(NaiveDate, &str)> = calendar
        .iter()
        .filter(|(d, _)| (2026..=2028).contains(&d.year()))
        .collect();
    let expected: Vec<(NaiveDate, &str)> = EXPECTED_HOLIDAYS
        .iter()
        .map(|((y, m, d), title)| (date(*y, *m, *d), *title))
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn every_2026_and_2027_bank_holiday_is_closed_all_day() {
    let h = hours();
    for ((y, m, d), title) in EXPECTED_HOLIDAYS.iter().filter(|((y, ..), _)| *y <= 2027) {
        let day = date(*y, *m, *d);
        assert!(!h.is_working_day(day), "{day}");
        assert_eq!(h.holidays().title_on(day), Some(*title));
        for (hh, mm, ss) in [
            (0, 0, 0),
            (8, 59, 59),
            (9, 0, 0),
            (12, 0, 0),
            (15, 59, 59),
            (23, 59, 59),
        ] {
            let status = h.status(at(*y, *m, *d, hh, mm, ss));
            assert!(!status.open, "{day} {hh}:{mm}:{ss}");
            assert_eq!(
                status.reason,
                Reason::BankHoliday {
                    title: (*title).to_owned()
                },
                "{day}"
            );
            let next = status.next_open.expect("opens again");
            assert!(next.date_naive() > day);
            assert_eq!(next.time(), time(9, 0));
        }
    }
}

#[test]
fn reasons_describe_themselves() {
    let christmas = Reason::BankHoliday {
        title: "Christmas Day".to_owned(),
    };
    assert_eq!(christmas.describe(), "bank holiday (Christmas Day)");
    assert_eq!(christmas.to_string(), "bank holiday (Christmas Day)");
    assert_eq!(Reason::Open.describe(), "within opening hours");
    assert_eq!(Reason::Weekend.describe(), "weekend");
    assert_eq!(Reason::BeforeOpening.describe(), "before opening time");
    assert_eq!(Reason::AfterClosing.describe(), "after closing time");
    assert_eq!(Reason::NotAWorkingDay.describe(), "not a working day");
}

// ---------------------------------------------------------------------------------------------
// Clock changes and long closures

#[test]
fn spring_2026_clock_change_weekend() {
    let h = hours();
    let friday_close = at(2026, 3, 27, 16, 0, 0);
    assert_eq!(friday_close, utc(2026, 3, 27, 16, 0, 0)); // GMT
    let next = h.next_open(friday_close).expect("opens");
    assert_eq!(next, london(2026, 3, 30, 9, 0, 0));
    assert_eq!(next, utc(2026, 3, 30, 8, 0, 0)); // BST
    assert_eq!(
        next.with_timezone(&Utc) - friday_close,
        TimeDelta::hours(64)
    );
    // During the skipped hour on Sunday it is simply the weekend.
    assert_closed(&h.status(utc(2026, 3, 29, 1, 0, 0)), Reason::Weekend, next);
    assert!(!h.is_open(utc(2026, 3, 30, 7, 59, 59)));
    assert!(h.is_open(utc(2026, 3, 30, 8, 0, 0)));
    assert!(h.is_open(utc(2026, 3, 30, 14, 59, 59)));
    assert!(!h.is_open(utc(2026, 3, 30, 15, 0, 0)));
}

#[test]
fn autumn_2026_clock_change_weekend() {
    let h = hours();
    let friday_close = at(2026, 10, 23, 16, 0, 0);
    assert_eq!(friday_close, utc(2026, 10, 23, 15, 0, 0)); // BST
    let next = h.next_open(friday_close).expect("opens");
    assert_eq!(next, utc(2026, 10, 26, 9, 0, 0)); // GMT
    assert_eq!(
        next.with_timezone(&Utc) - friday_close,
        TimeDelta::hours(66)
    );
    // 01:30 on Sunday happens twice; both are the weekend.
    assert_closed(
        &h.status(utc(2026, 10, 25, 0, 30, 0)),
        Reason::Weekend,
        next,
    );
    assert_closed(
        &h.status(utc(2026, 10, 25, 1, 30, 0)),
        Reason::Weekend,
        next,
    );
    assert!(!h.is_open(utc(2026, 10, 26, 8, 59, 59)));
    assert!(h.is_open(utc(2026, 10, 26, 9, 0, 0)));
}

#[test]
fn easter_2027_across_the_spring_clock_change() {
    let h = hours();
    let thursday_close = at(2027, 3, 25, 16, 0, 0);
    assert_eq!(thursday_close, utc(2027, 3, 25, 16, 0, 0)); // GMT
    let tuesday = london(2027, 3, 30, 9, 0, 0);
    assert_eq!(tuesday, utc(2027, 3, 30, 8, 0, 0)); // BST
    assert_closed(&h.status(thursday_close), Reason::AfterClosing, tuesday);
    assert_eq!(
        tuesday.with_timezone(&Utc) - thursday_close,
        TimeDelta::hours(4 * 24 + 16)
    );
    let good_friday = Reason::BankHoliday {
        title: "Good Friday".to_owned(),
    };
    let easter_monday = Reason::BankHoliday {
        title: "Easter Monday".to_owned(),
    };
    assert_closed(&h.status(at(2027, 3, 26, 10, 0, 0)), good_friday, tuesday);
    assert_closed(
        &h.status(utc(2027, 3, 28, 1, 30, 0)),
        Reason::Weekend,
        tuesday,
    );
    assert_closed(&h.status(at(2027, 3, 29, 10, 0, 0)), easter_monday, tuesday);
}

#[test]
fn autumn_2027_clock_change_weekend() {
    let h = hours();
    let friday_close = at(2027, 10, 29, 16, 0, 0);
    assert_eq!(friday_close, utc(2027, 10, 29, 15, 0, 0)); // BST
    let next = h.next_open(friday_close).expect("opens");
    assert_eq!(next, london(2027, 11, 1, 9, 0, 0));
    assert_eq!(next, utc(2027, 11, 1, 9, 0, 0)); // GMT
    assert_eq!(
        next.with_timezone(&Utc) - friday_close,
        TimeDelta::hours(66)
    );
}

#[test]
fn christmas_2026() {
    let h = hours();
    let tuesday = london(2026, 12, 29, 9, 0, 0);
    assert_closed(
        &h.status(at(2026, 12, 24, 16, 0, 0)),
        Reason::AfterClosing,
        tuesday,
    );
    let holiday = |title: &str| Reason::BankHoliday {
        title: title.to_owned(),
    };
    assert_closed(
        &h.status(at(2026, 12, 25, 12, 0, 0)),
        holiday("Christmas Day"),
        tuesday,
    );
    assert_closed(
        &h.status(at(2026, 12, 26, 12, 0, 0)),
        Reason::Weekend,
        tuesday,
    );
    assert_closed(
        &h.status(at(2026, 12, 27, 12, 0, 0)),
        Reason::Weekend,
        tuesday,
    );
    assert_closed(
        &h.status(at(2026, 12, 28, 12, 0, 0)),
        holiday("Boxing Day"),
        tuesday,
    );
    assert_open(
        &h.status(at(2026, 12, 29, 9, 0, 0)),
        london(2026, 12, 29, 16, 0, 0),
    );
}

#[test]
fn next_open_while_open_is_the_following_session() {
    let h = hours();
    assert_eq!(
        h.next_open(at(2026, 11, 24, 10, 0, 0)),
        Some(london(2026, 11, 25, 9, 0, 0))
    );
    assert_eq!(
        h.next_open(at(2026, 11, 24, 9, 0, 0)),
        Some(london(2026, 11, 25, 9, 0, 0))
    );
    // Open on Christmas Eve: the next session is after Christmas and the Boxing Day substitute.
    assert_eq!(
        h.next_open(at(2026, 12, 24, 15, 0, 0)),
        Some(london(2026, 12, 29, 9, 0, 0))
    );
    // Just before opening, the next opening is the same morning.
    assert_eq!(
        h.next_open(at(2026, 11, 24, 8, 59, 59)),
        Some(london(2026, 11, 24, 9, 0, 0))
    );
}

// ---------------------------------------------------------------------------------------------
// Working days

#[test]
fn working_days_after() {
    let h = hours();
    assert_eq!(
        h.working_days_after(date(2026, 11, 27), 2),
        date(2026, 12, 1)
    );
    assert_eq!(
        h.working_days_after(date(2026, 12, 23), 2),
        date(2026, 12, 29)
    );
    assert_eq!(
        h.working_days_after(date(2026, 11, 28), 1),
        date(2026, 11, 30)
    ); // Sat → Mon
    assert_eq!(
        h.working_days_after(date(2026, 12, 24), 1),
        date(2026, 12, 29)
    );
    assert_eq!(
        h.working_days_after(date(2026, 11, 24), 1),
        date(2026, 11, 25)
    );
    assert_eq!(
        h.working_days_after(date(2026, 11, 24), 5),
        date(2026, 12, 1)
    );
    // n = 0 is the date itself, even when that is not a working day.
    assert_eq!(
        h.working_days_after(date(2026, 11, 28), 0),
        date(2026, 11, 28)
    );
}

#[test]
fn is_working_day() {
    let h = hours();
    assert!(h.is_working_day(date(2026, 11, 24)));
    assert!(h.is_working_day(date(2026, 12, 29)));
    assert!(!h.is_working_day(date(2026, 12, 25)));
    assert!(!h.is_working_day(date(2026, 11, 28)));
    assert!(!h.is_working_day(date(2026, 11, 29)));
}

#[test]
fn a_schedule_that_never_opens_gives_up_without_panicking() {
    let h = OpeningHours::new(WeeklySchedule::new([None; 7]).expect("valid"), embedded());
    assert_eq!(h.next_open(at(2026, 11, 24, 10, 0, 0)), None);
    let status = h.status(at(2026, 11, 24, 10, 0, 0));
    assert_eq!(status.reason, Reason::NotAWorkingDay);
    assert_eq!(status.next_open, None);
    assert_eq!(h.checked_working_days_after(date(2026, 11, 24), 1), None);
    assert_eq!(
        h.working_days_after(date(2026, 11, 24), 3),
        date(2026, 11, 27)
    );
    assert_eq!(h.describe_schedule(), "closed every day");
}

// ---------------------------------------------------------------------------------------------
// Schedules and reason precedence

#[test]
fn default_schedule() {
    let s = WeeklySchedule::default();
    for weekday in [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ] {
        assert_eq!(s.hours_on(weekday), Some((time(9, 0), time(16, 0))));
    }
    assert_eq!(s.hours_on(Weekday::Sat), None);
    assert_eq!(s.hours_on(Weekday::Sun), None);
    let nine_to_four = Some((time(9, 0), time(16, 0)));
    let explicit = WeeklySchedule::new([
        nine_to_four,
        nine_to_four,
        nine_to_four,
        nine_to_four,
        nine_to_four,
        None,
        None,
    ])
    .expect("valid");
    assert_eq!(s, explicit);
    assert_eq!(
        hours().describe_schedule(),
        "Monday to Friday, 9am to 4pm, except bank holidays"
    );
}

#[test]
fn opening_must_precede_closing() {
    let mut days = *WeeklySchedule::default().days();
    days[2] = Some((time(16, 0), time(9, 0)));
    let err = WeeklySchedule::new(days).expect_err("reversed hours");
    assert_eq!(
        err.to_string(),
        "Wednesday: opening time 16:00:00 must be before closing time 09:00:00"
    );
    days[2] = Some((time(9, 0), time(9, 0)));
    assert!(WeeklySchedule::new(days).is_err(), "empty session");
}

fn saturday_morning_schedule() -> WeeklySchedule {
    let mut days = *WeeklySchedule::default().days();
    days[5] = Some((time(9, 0), time(12, 0)));
    WeeklySchedule::new(days).expect("valid")
}

#[test]
fn saturday_hours_are_honoured() {
    let h = OpeningHours::new(saturday_morning_schedule(), embedded());
    assert_eq!(
        h.describe_schedule(),
        "Monday to Friday, 9am to 4pm, and Saturday, 9am to 12 noon, except bank holidays"
    );
    let saturday_open = london(2026, 11, 28, 9, 0, 0);
    // Friday evening now reopens on Saturday.
    assert_closed(
        &h.status(at(2026, 11, 27, 17, 0, 0)),
        Reason::AfterClosing,
        saturday_open,
    );
    // On Saturday the reasons are about the hours, not "weekend".
    assert_closed(
        &h.status(at(2026, 11, 28, 8, 0, 0)),
        Reason::BeforeOpening,
        saturday_open,
    );
    assert_open(
        &h.status(at(2026, 11, 28, 11, 59, 59)),
        london(2026, 11, 28, 12, 0, 0),
    );
    assert_closed(
        &h.status(at(2026, 11, 28, 12, 0, 0)),
        Reason::AfterClosing,
        london(2026, 11, 30, 9, 0, 0),
    );
    assert_closed(
        &h.status(at(2026, 11, 29, 12, 0, 0)),
        Reason::Weekend,
        london(2026, 11, 30, 9, 0, 0),
    );
    assert!(h.is_working_day(date(2026, 11, 28)));
    assert_eq!(
        h.working_days_after(date(2026, 11, 27), 1),
        date(2026, 11, 28)
    );
}

#[test]
fn reason_precedence() {
    // A made-up calendar with a Saturday and a Wednesday holiday.
    let json = r#"{"england-and-wales": {"division": "england-and-wales", "events": [
        {"title": "Saturday Holiday", "date": "2026-11-28", "notes": "", "bunting": false},
        {"title": "Wednesday Holiday", "date": "2026-11-25", "notes": "", "bunting": false}
    ]}}"#;
    let calendar = Arc::new(
        BankHolidays::from_govuk_json(json.as_bytes(), Division::EnglandAndWales, "test")
            .expect("parses"),
    );
    let saturday_holiday = Reason::BankHoliday {
        title: "Saturday Holiday".to_owned(),
    };
    let wednesday_holiday = Reason::BankHoliday {
        title: "Wednesday Holiday".to_owned(),
    };

    // BankHoliday beats Weekend, and beats hours on a day that would otherwise open.
    let default = OpeningHours::new(WeeklySchedule::default(), calendar.clone());
    assert_eq!(
        default.status(at(2026, 11, 28, 10, 0, 0)).reason,
        saturday_holiday
    );
    assert_eq!(
        default.status(at(2026, 11, 25, 10, 0, 0)).reason,
        wednesday_holiday
    );
    assert_eq!(
        default.status(at(2026, 11, 25, 7, 0, 0)).reason,
        wednesday_holiday
    );
    let with_saturday = OpeningHours::new(saturday_morning_schedule(), calendar.clone());
    assert_eq!(
        with_saturday.status(at(2026, 11, 28, 10, 0, 0)).reason,
        saturday_holiday
    );

    // BankHoliday beats NotAWorkingDay; NotAWorkingDay applies to weekdays only.
    let mut days = *WeeklySchedule::default().days();
    days[2] = None; // no Wednesdays
    let no_wednesday = OpeningHours::new(WeeklySchedule::new(days).expect("valid"), calendar);
    assert_eq!(
        no_wednesday.status(at(2026, 11, 25, 10, 0, 0)).reason,
        wednesday_holiday
    );
    let status = no_wednesday.status(at(2026, 12, 2, 10, 0, 0));
    assert_closed(
        &status,
        Reason::NotAWorkingDay,
        london(2026, 12, 3, 9, 0, 0),
    );
    assert_eq!(
        no_wednesday.status(at(2026, 12, 5, 10, 0, 0)).reason,
        Reason::Weekend
    );
    assert!(!no_wednesday.is_working_day(date(2026, 12, 2)));
    assert_eq!(
        no_wednesday.working_days_after(date(2026, 12, 1), 1),
        date(2026, 12, 3)
    );
}

// ---------------------------------------------------------------------------------------------
// Skipped and repeated local times (not reachable with 09:00–16:00, but must stay sane)

fn sunday_schedule(open: NaiveTime, close: NaiveTime) -> OpeningHours {
    let mut days = [None; 7];
    days[6] = Some((open, close));
    OpeningHours::new(WeeklySchedule::new(days).expect("valid"), embedded())
}

#[test]
fn opening_inside_the_spring_gap_starts_when_the_gap_ends() {
    // 01:30 on 29 March 2026 does not exist; the clocks jump from 01:00 GMT to 02:00 BST.
    let h = sunday_schedule(time(1, 30), time(3, 0));
    let gap_end = utc(2026, 3, 29, 1, 0, 0);
    assert_eq!(
        h.next_open(utc(2026, 3, 28, 12, 0, 0)),
        Some(gap_end.with_timezone(&LONDON))
    );
    assert!(!h.is_open(utc(2026, 3, 29, 0, 59, 59)));
    assert!(h.is_open(gap_end));
    let status = h.status(gap_end);
    assert_open(&status, london(2026, 3, 29, 3, 0, 0));
    assert!(!h.is_open(utc(2026, 3, 29, 2, 0, 0)));
}

#[test]
fn closing_inside_the_spring_gap_ends_when_the_gap_ends() {
    let h = sunday_schedule(time(0, 30), time(1, 30));
    assert!(h.is_open(utc(2026, 3, 29, 0, 30, 0)));
    assert!(h.is_open(utc(2026, 3, 29, 0, 59, 59)));
    assert!(!h.is_open(utc(2026, 3, 29, 1, 0, 0)));
    assert_eq!(
        h.status(utc(2026, 3, 29, 0, 45, 0)).closes_at,
        Some(utc(2026, 3, 29, 1, 0, 0).with_timezone(&LONDON))
    );
}

#[test]
fn a_session_swallowed_by_the_spring_gap_is_skipped() {
    let h = sunday_schedule(time(1, 10), time(1, 50));
    assert_eq!(
        h.next_open(utc(2026, 3, 28, 12, 0, 0)),
        Some(london(2026, 4, 5, 1, 10, 0))
    );
    assert!(!h.is_open(utc(2026, 3, 29, 1, 0, 0)));
    assert_eq!(
        h.status(utc(2026, 3, 29, 1, 30, 0)).reason,
        Reason::AfterClosing
    );
}

#[test]
fn repeated_autumn_times_use_the_first_occurrence() {
    // 01:30 on 25 October 2026 happens at 00:30 UTC (BST) and again at 01:30 UTC (GMT).
    let h = sunday_schedule(time(1, 30), time(3, 0));
    assert_eq!(
        h.next_open(utc(2026, 10, 24, 12, 0, 0)),
        Some(utc(2026, 10, 25, 0, 30, 0).with_timezone(&LONDON))
    );
    assert!(!h.is_open(utc(2026, 10, 25, 0, 29, 59)));
    assert!(h.is_open(utc(2026, 10, 25, 0, 30, 0)));
    // Still open through the repeated hour, until 03:00 GMT.
    assert!(h.is_open(utc(2026, 10, 25, 1, 15, 0)));
    assert!(h.is_open(utc(2026, 10, 25, 2, 59, 59)));
    assert!(!h.is_open(utc(2026, 10, 25, 3, 0, 0)));

    let h = sunday_schedule(time(0, 30), time(1, 30));
    // Closing at the first 01:30 (00:30 UTC) gives a one-hour session.
    assert!(h.is_open(utc(2026, 10, 24, 23, 30, 0)));
    assert!(!h.is_open(utc(2026, 10, 25, 0, 30, 0)));
}

// ---------------------------------------------------------------------------------------------
// Properties against an independent statement of the rule

fn expected_holiday(day: NaiveDate) -> bool {
    EXPECTED_HOLIDAYS
        .iter()
        .any(|((y, m, d), _)| (day.year(), day.month(), day.day()) == (*y, *m, *d))
}

fn expected_working_day(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !expected_holiday(day)
}

fn expected_open(instant: DateTime<Utc>) -> bool {
    let local = instant.with_timezone(&LONDON);
    expected_working_day(local.date_naive()) && (9..16).contains(&local.hour())
}

const RANGE_START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const RANGE_END: i64 = 1_846_022_399; // 2028-06-30T23:59:59Z
const RANGE_DAYS: u64 = 912; // 2026-01-01 ..= 2028-06-30

fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    (RANGE_START..=RANGE_END).prop_map(|secs| DateTime::from_timestamp(secs, 0).expect("in range"))
}

/// Instants a second or two either side of the opening and closing times and midnight.
fn boundary_instant() -> impl Strategy<Value = DateTime<Utc>> {
    let times = prop::sample::select(vec![
        (0, 0, 0),
        (0, 0, 1),
        (8, 59, 58),
        (8, 59, 59),
        (9, 0, 0),
        (9, 0, 1),
        (15, 59, 58),
        (15, 59, 59),
        (16, 0, 0),
        (16, 0, 1),
        (23, 59, 59),
    ]);
    (0..RANGE_DAYS, times).prop_map(|(offset, (h, m, s))| {
        let day = date(2026, 1, 1) + chrono::Days::new(offset);
        let local = day.and_time(NaiveTime::from_hms_opt(h, m, s).expect("valid"));
        LONDON
            .from_local_datetime(&local)
            .single()
            .expect("never in a gap")
            .with_timezone(&Utc)
    })
}

fn expected_reason(instant: DateTime<Utc>) -> Reason {
    let local = instant.with_timezone(&LONDON);
    let day = local.date_naive();
    if let Some((_, title)) = EXPECTED_HOLIDAYS
        .iter()
        .find(|((y, m, d), _)| (day.year(), day.month(), day.day()) == (*y, *m, *d))
    {
        Reason::BankHoliday {
            title: (*title).to_owned(),
        }
    } else if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        Reason::Weekend
    } else if local.hour() < 9 {
        Reason::BeforeOpening
    } else if local.hour() < 16 {
        Reason::Open
    } else {
        Reason::AfterClosing
    }
}

fn check_status(h: &OpeningHours, instant: DateTime<Utc>) -> Result<(), TestCaseError> {
    let status = h.status(instant);
    prop_assert_eq!(status.open, expected_open(instant), "at {}", instant);
    prop_assert_eq!(&status.reason, &expected_reason(instant), "at {}", instant);
    prop_assert_eq!(h.is_open(instant), status.open);
    prop_assert_eq!(status.open, status.reason == Reason::Open);
    let local = instant.with_timezone(&LONDON);
    if status.open {
        prop_assert!(status.next_open.is_none());
        let closes = status.closes_at.expect("closes_at when open");
        prop_assert_eq!(closes.date_naive(), local.date_naive());
        prop_assert_eq!(closes.time(), time(16, 0));
        prop_assert!(closes > instant);
    } else {
        prop_assert!(status.closes_at.is_none());
        let next = status.next_open.expect("next_open when closed");
        prop_assert!(next > instant);
        prop_assert!(h.is_open(next.with_timezone(&Utc)));
        prop_assert!(!h.is_open((next - TimeDelta::seconds(1)).with_timezone(&Utc)));
        prop_assert_eq!(next.time(), time(9, 0));
        prop_assert!(
            expected_working_day(next.date_naive()),
            "next_open {}",
            next
        );
        // Nothing opens in between: every earlier working-day 09:00 is at or before `instant`.
        let mut day = local.date_naive();
        while day < next.date_naive() {
            if expected_working_day(day) {
                prop_assert!(london_nine(day) <= instant, "skipped {}", day);
            }
            day = day.succ_opt().expect("in range");
        }
        prop_assert_eq!(h.next_open(instant), Some(next));
    }
    Ok(())
}

fn london_nine(day: NaiveDate) -> DateTime<Tz> {
    LONDON
        .from_local_datetime(&day.and_time(time(9, 0)))
        .single()
        .expect("09:00 always exists")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn status_matches_the_rule(instant in any_instant()) {
        check_status(&hours(), instant)?;
    }

    #[test]
    fn status_matches_the_rule_at_boundaries(instant in boundary_instant()) {
        check_status(&hours(), instant)?;
    }

    #[test]
    fn working_days_after_counts_working_days(offset in 0..RANGE_DAYS) {
        let h = hours();
        let start = date(2026, 1, 1) + chrono::Days::new(offset);
        let mut previous = start;
        for n in 1..10 {
            let day = h.working_days_after(start, n);
            prop_assert!(h.is_working_day(day));
            prop_assert!(expected_working_day(day), "{}", day);
            prop_assert!(day > previous, "n={} gave {} after {}", n, day, previous);
            let counted = previous.iter_days().skip(1).take_while(|d| *d <= day)
                .filter(|d| expected_working_day(*d)).count();
            prop_assert_eq!(counted, 1, "exactly one working day between consecutive results");
            previous = day;
        }
    }
}
