//! Natural British English phrases for the text-to-speech prompts.
//!
//! Written for the ear rather than the eye: "Tuesday the 29th of December", "9am", "12 noon",
//! so Twilio's voices read them the way a receptionist would say them.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::{WeeklySchedule, LONDON, WEEK};

/// Full English name ("Monday"); chrono's `Display` gives only "Mon".
pub fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// Full English month name for a 1-based month number.
pub fn month_name(month: u32) -> &'static str {
    match month {
        1 => "January",
        2 => "February",
        3 => "March",
        4 => "April",
        5 => "May",
        6 => "June",
        7 => "July",
        8 => "August",
        9 => "September",
        10 => "October",
        11 => "November",
        _ => "December",
    }
}

/// "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", ...
pub fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "Tuesday the 29th of December". The year is left out: callers speak of the coming days.
pub fn spoken_date(date: NaiveDate) -> String {
    format!(
        "{} the {} of {}",
        weekday_name(date.weekday()),
        ordinal(date.day()),
        month_name(date.month())
    )
}

/// "9am", "4pm", "9:30am", "12 noon", "12:30pm", "midnight", "12:30am". Seconds are not spoken.
pub fn spoken_time(t: NaiveTime) -> String {
    let (hour, minute) = (t.hour(), t.minute());
    match (hour, minute) {
        (0, 0) => "midnight".to_owned(),
        (12, 0) => "12 noon".to_owned(),
        _ => {
            let suffix = if hour < 12 { "am" } else { "pm" };
            let hour12 = match hour % 12 {
                0 => 12,
                h => h,
            };
            if minute == 0 {
                format!("{hour12}{suffix}")
            } else {
                format!("{hour12}:{minute:02}{suffix}")
            }
        }
    }
}

/// Completes "We open again {phrase}.", choosing today/tomorrow by the London calendar date
/// (not UTC), because that is the caller's "today" even just after midnight in summer.
pub fn spoken_next_open(now: DateTime<Utc>, next: DateTime<Tz>) -> String {
    let today = now.with_timezone(&LONDON).date_naive();
    let next = next.with_timezone(&LONDON);
    let (date, time) = (next.date_naive(), spoken_time(next.time()));
    if date == today {
        format!("later today at {time}")
    } else if Some(date) == today.succ_opt() {
        format!("tomorrow, {}, at {time}", spoken_date(date))
    } else {
        format!("on {} at {time}", spoken_date(date))
    }
}

/// Spoken summary of a weekly schedule, e.g. "Monday to Friday, 9am to 4pm, except bank holidays".
///
/// Days sharing the same hours are grouped (runs of three or more become "X to Y"), groups appear
/// in the order of their first day.
pub fn spoken_schedule(schedule: &WeeklySchedule) -> String {
    let mut groups: Vec<((NaiveTime, NaiveTime), Vec<usize>)> = Vec::new();
    for (index, weekday) in WEEK.iter().enumerate() {
        if let Some(hours) = schedule.hours_on(*weekday) {
            match groups.iter_mut().find(|(h, _)| *h == hours) {
                Some((_, days)) => days.push(index),
                None => groups.push((hours, vec![index])),
            }
        }
    }
    if groups.is_empty() {
        return "closed every day".to_owned();
    }
    let phrases: Vec<String> = groups
        .iter()
        .map(|((open, close), days)| {
            format!(
                "{}, {} to {}",
                spoken_days(days),
                spoken_time(*open),
                spoken_time(*close)
            )
        })
        .collect();
    format!("{}, except bank holidays", join_and(&phrases, ", and "))
}

/// "Monday to Friday", "Monday and Wednesday", "Monday to Wednesday and Friday".
fn spoken_days(days: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut start = 0;
    while start < days.len() {
        let mut end = start;
        while end + 1 < days.len() && days[end + 1] == days[end] + 1 {
            end += 1;
        }
        let name = |i: usize| weekday_name(WEEK[days[i] % 7]);
        match end - start {
            0 => parts.push(name(start).to_owned()),
            1 => {
                parts.push(name(start).to_owned());
                parts.push(name(end).to_owned());
            }
            _ => parts.push(format!("{} to {}", name(start), name(end))),
        }
        start = end + 1;
    }
    join_and(&parts, " and ")
}

/// "a", "a<last>b", "a, b<last>c".
fn join_and(items: &[String], last: &str) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., tail] => format!("{}{last}{tail}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid instant")
    }

    fn london(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Tz> {
        LONDON
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("unambiguous local time")
    }

    #[test]
    fn dates_use_ordinals() {
        let cases = [
            ((2026, 1, 1), "Thursday the 1st of January"),
            ((2026, 1, 2), "Friday the 2nd of January"),
            ((2026, 1, 3), "Saturday the 3rd of January"),
            ((2026, 1, 4), "Sunday the 4th of January"),
            ((2026, 2, 11), "Wednesday the 11th of February"),
            ((2026, 3, 12), "Thursday the 12th of March"),
            ((2026, 4, 13), "Monday the 13th of April"),
            ((2026, 5, 21), "Thursday the 21st of May"),
            ((2026, 6, 22), "Monday the 22nd of June"),
            ((2026, 7, 23), "Thursday the 23rd of July"),
            ((2026, 8, 24), "Monday the 24th of August"),
            ((2026, 8, 31), "Monday the 31st of August"),
            ((2026, 9, 30), "Wednesday the 30th of September"),
            ((2026, 10, 20), "Tuesday the 20th of October"),
            ((2026, 11, 24), "Tuesday the 24th of November"),
            ((2026, 12, 29), "Tuesday the 29th of December"),
        ];
        for ((y, m, d), expected) in cases {
            assert_eq!(spoken_date(date(y, m, d)), expected);
        }
    }

    #[test]
    fn ordinals_cover_teens_and_hundreds() {
        let got: Vec<String> = [
            1, 2, 3, 4, 10, 11, 12, 13, 14, 21, 22, 23, 31, 101, 111, 112,
        ]
        .into_iter()
        .map(ordinal)
        .collect();
        let want = [
            "1st", "2nd", "3rd", "4th", "10th", "11th", "12th", "13th", "14th", "21st", "22nd",
            "23rd", "31st", "101st", "111th", "112th",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn times() {
        assert_eq!(spoken_time(time(9, 0)), "9am");
        assert_eq!(spoken_time(time(16, 0)), "4pm");
        assert_eq!(spoken_time(time(9, 30)), "9:30am");
        assert_eq!(spoken_time(time(9, 5)), "9:05am");
        assert_eq!(spoken_time(time(12, 0)), "12 noon");
        assert_eq!(spoken_time(time(12, 30)), "12:30pm");
        assert_eq!(spoken_time(time(0, 0)), "midnight");
        assert_eq!(spoken_time(time(0, 30)), "12:30am");
        assert_eq!(spoken_time(time(23, 59)), "11:59pm");
        let with_seconds = NaiveTime::from_hms_opt(9, 0, 59).expect("valid");
        assert_eq!(spoken_time(with_seconds), "9am");
    }

    #[test]
    fn next_open_later_today() {
        let now = utc(2026, 11, 24, 7, 0);
        assert_eq!(
            spoken_next_open(now, london(2026, 11, 24, 9, 0)),
            "later today at 9am"
        );
    }

    #[test]
    fn next_open_tomorrow() {
        let now = utc(2026, 11, 23, 17, 0);
        assert_eq!(
            spoken_next_open(now, london(2026, 11, 24, 9, 0)),
            "tomorrow, Tuesday the 24th of November, at 9am"
        );
    }

    #[test]
    fn next_open_further_away() {
        let now = utc(2026, 12, 24, 16, 0);
        assert_eq!(
            spoken_next_open(now, london(2026, 12, 29, 9, 0)),
            "on Tuesday the 29th of December at 9am"
        );
    }

    #[test]
    fn today_and_tomorrow_follow_the_london_date_in_summer() {
        // 23:30 UTC Sunday is 00:30 BST Monday: Monday 9am is "later today", not "tomorrow".
        assert_eq!(
            spoken_next_open(utc(2026, 6, 21, 23, 30), london(2026, 6, 22, 9, 0)),
            "later today at 9am"
        );
        // 22:30 UTC Monday is 23:30 BST Monday: Tuesday is "tomorrow".
        assert_eq!(
            spoken_next_open(utc(2026, 6, 22, 22, 30), london(2026, 6, 23, 9, 0)),
            "tomorrow, Tuesday the 23rd of June, at 9am"
        );
        // 23:30 UTC Monday is already Tuesday in London.
        assert_eq!(
            spoken_next_open(utc(2026, 6, 22, 23, 30), london(2026, 6, 23, 9, 0)),
            "later today at 9am"
        );
    }

    #[test]
    fn today_and_tomorrow_late_evening_in_winter() {
        // 23:30 UTC is 23:30 GMT: still Monday.
        assert_eq!(
            spoken_next_open(utc(2026, 11, 23, 23, 30), london(2026, 11, 24, 9, 0)),
            "tomorrow, Tuesday the 24th of November, at 9am"
        );
        assert_eq!(
            spoken_next_open(utc(2026, 11, 24, 0, 30), london(2026, 11, 24, 9, 0)),
            "later today at 9am"
        );
    }

    #[test]
    fn next_open_given_in_another_zone_is_spoken_in_london_time() {
        let next_utc = utc(2026, 6, 23, 8, 0).with_timezone(&chrono_tz::UTC);
        assert_eq!(
            spoken_next_open(utc(2026, 6, 22, 12, 0), next_utc),
            "tomorrow, Tuesday the 23rd of June, at 9am"
        );
    }

    #[test]
    fn default_schedule() {
        assert_eq!(
            spoken_schedule(&WeeklySchedule::default()),
            "Monday to Friday, 9am to 4pm, except bank holidays"
        );
    }

    #[test]
    fn schedule_with_saturday_morning() {
        let weekday = Some((time(9, 0), time(16, 0)));
        let schedule = WeeklySchedule::new([
            weekday,
            weekday,
            weekday,
            weekday,
            weekday,
            Some((time(9, 30), time(12, 0))),
            None,
        ])
        .expect("valid schedule");
        assert_eq!(
            spoken_schedule(&schedule),
            "Monday to Friday, 9am to 4pm, and Saturday, 9:30am to 12 noon, except bank holidays"
        );
    }

    #[test]
    fn schedule_with_gaps_and_pairs() {
        let day = Some((time(9, 0), time(16, 0)));
        let late = Some((time(10, 0), time(18, 30)));
        let schedule =
            WeeklySchedule::new([day, day, day, late, day, day, day]).expect("valid schedule");
        assert_eq!(
            spoken_schedule(&schedule),
            "Monday to Wednesday and Friday to Sunday, 9am to 4pm, and Thursday, 10am to 6:30pm, \
             except bank holidays"
        );
        let schedule =
            WeeklySchedule::new([day, None, day, None, None, day, day]).expect("valid schedule");
        assert_eq!(
            spoken_schedule(&schedule),
            "Monday, Wednesday, Saturday and Sunday, 9am to 4pm, except bank holidays"
        );
    }

    #[test]
    fn schedule_closed_all_week() {
        let schedule = WeeklySchedule::new([None; 7]).expect("valid schedule");
        assert_eq!(spoken_schedule(&schedule), "closed every day");
    }
}
