//! Statistics against figures worked out by hand on a small week of calls made through the
//! real webhooks: in and out of hours, menu choices, the queue (service-level boundary, a
//! short abandon, a caller leaving for a call back), call-backs across a weekend and across
//! Christmas. Runs on SQLite, and on PostgreSQL with HELPLINE_TEST_BACKEND=postgres: the
//! figures must be the same.

mod support;

use chrono::Duration;
use helpline::clock::Clock;
use helpline::enquiries::{AfterAttempt, Outcome, Status};
use helpline::hours::{BankHolidays, Division, OpeningHours, WeeklySchedule};
use helpline::staff::{accounts, Role};
use helpline::stats::{compute, Period, Thresholds};
use support::{at, spawn_app_with, TestApp};

fn hours() -> OpeningHours {
    OpeningHours::new(
        WeeklySchedule::default(),
        std::sync::Arc::new(BankHolidays::embedded_for(Division::EnglandAndWales).unwrap()),
    )
}

fn day(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// One attempt by `handler` at `when` with `outcome` (claimed first, as the dashboard does).
async fn attempt(app: &TestApp, enquiry: &str, handler: &str, when: &str, status: Status) {
    let t = at(when);
    assert!(app
        .store
        .claim_enquiry(enquiry, handler, t, t - Duration::minutes(20))
        .await
        .unwrap());
    let effect = AfterAttempt {
        status,
        next_attempt_on: None,
        closed: !status.is_open(),
        unanswered: 0,
    };
    assert!(app
        .store
        .record_attempt(enquiry, handler, 0, Outcome::Resolved, &effect, t)
        .await
        .unwrap());
}

async fn queued_call(app: &TestApp, when: &str, from: &str, result: &str, waited: u32) {
    app.clock.set(at(when));
    let mut call = app.call_from(from).await;
    call.press("0").await;
    app.clock.advance(Duration::seconds(i64::from(waited)));
    call.queue_result(result, waited).await;
    call.hang_up(waited + 30).await;
}

#[tokio::test]
async fn a_week_of_calls_gives_the_hand_worked_figures() {
    let app = spawn_app_with("2026-11-24T10:00:00Z", &[]).await;
    let handler = accounts::add(
        app.store.as_ref(),
        "h@example.nhs.uk",
        Role::Handler,
        None,
        app.clock.now(),
    )
    .await
    .unwrap()
    .0
    .id;

    // Tuesday 24 November 2026 (London = UTC in winter), the line open.
    // 1. Latest update, then hangs up.
    app.clock.set(at("2026-11-24T10:00:00Z"));
    let mut c = app.call_from("+447700900001").await;
    c.press("1").await;
    c.hang_up(60).await;
    // 2–6. The adviser queue: answered after 30 s, 60 s (the service-level boundary counts),
    // 61 s (does not); a hang-up after 3 s (a short abandon); one after 40 s (abandoned, and
    // listed for a call back as missed in the queue).
    queued_call(&app, "2026-11-24T10:05:00Z", "+447700900002", "bridged", 30).await;
    queued_call(&app, "2026-11-24T10:10:00Z", "+447700900003", "bridged", 60).await;
    queued_call(&app, "2026-11-24T10:15:00Z", "+447700900004", "bridged", 61).await;
    queued_call(&app, "2026-11-24T10:20:00Z", "+447700900005", "hangup", 3).await;
    queued_call(&app, "2026-11-24T10:25:00Z", "+447700900006", "hangup", 40).await;
    // 7. Joins the queue at 10:30, presses 1 for a call back instead.
    app.clock.set(at("2026-11-24T10:30:00Z"));
    let mut c = app.call_from("+447700900007").await;
    c.press("0").await;
    app.clock.advance(Duration::seconds(20));
    c.press_while_waiting("1").await;
    c.queue_result("leave", 20).await;
    c.press("1").await;
    c.press("1").await;
    c.press("1").await;
    c.leave_message(5).await;
    // 8. Hangs up at the menu without choosing.
    app.clock.set(at("2026-11-24T10:35:00Z"));
    let mut c = app.call_from("+447700900008").await;
    c.hang_up(10).await;
    // 9. Saturday 28 November, closed: asks for a call back (due Tuesday 1 December).
    app.clock.set(at("2026-11-28T11:00:00Z"));
    let mut c = app.call_from("+447700900009").await;
    c.press("2").await;
    c.press("1").await;
    c.press("2").await;
    c.press("1").await;
    c.leave_message(5).await;
    // A simulated call in the same week is never counted.
    let (ok, _, err) = {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_helpline"))
            .args([
                "simulate",
                "--at",
                "2026-11-25T10:00:00Z",
                "--database",
                app.db.url(),
                "1",
            ])
            .env_remove("DATABASE_URL")
            .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert!(ok, "{err}");

    // Call-backs: the queue leaver at 14:30 the same day (240 working minutes after joining
    // the queue at 10:30); Saturday's caller on Monday at 09:30 (30 working minutes: the
    // weekend does not count); the missed caller never (due Thursday 26th, so late).
    let enquiries = app.store.list_enquiries().await.unwrap();
    let by_number = |n: &str| {
        enquiries
            .iter()
            .find(|e| e.callback_number == n)
            .unwrap()
            .id
            .clone()
    };
    attempt(
        &app,
        &by_number("+447700900007"),
        &handler,
        "2026-11-24T14:30:00Z",
        Status::Resolved,
    )
    .await;
    attempt(
        &app,
        &by_number("+447700900009"),
        &handler,
        "2026-11-30T09:30:00Z",
        Status::Resolved,
    )
    .await;

    let flow = helpline::flows::load_dir(std::path::Path::new("call_flows")).unwrap();
    let period = Period::new(day("2026-11-23"), day("2026-11-29"), None).unwrap();
    let s = compute(
        app.store.as_ref(),
        &flow,
        &hours(),
        &period,
        Thresholds::default(),
        at("2026-11-30T12:00:00Z"),
    )
    .await
    .unwrap();

    // Calls: 9 (the simulated one left out), 8 in hours and 1 out of hours.
    assert_eq!(
        (s.calls.total, s.calls.in_hours, s.calls.out_of_hours),
        (9, 8, 1)
    );
    assert_eq!(s.calls.by_day.len(), 7);
    assert_eq!(s.calls.by_day[1].total, 8, "Tuesday");
    assert_eq!(s.calls.by_day[5].out_of_hours, 1, "Saturday");
    assert_eq!(s.calls.by_hour[10], 8);
    assert_eq!(s.calls.heatmap[1][10], 8, "Tuesday 10:00–11:00");
    assert_eq!(s.calls.heatmap[5][11], 1, "Saturday 11:00–12:00");

    // Choices: 1 chose the update, 6 the adviser, 1 a call back; 1 hung up without choosing.
    let chose = |label: &str| {
        s.choices
            .options
            .iter()
            .find(|o| o.label == label)
            .unwrap()
            .calls
    };
    assert_eq!(chose("Latest update"), 1);
    assert_eq!(chose("Adviser"), 6);
    assert_eq!(chose("Call-back request"), 1);
    assert_eq!(chose("Fraud guidance"), 0);
    assert_eq!(s.choices.hung_up_in_menu, 1);
    let adviser = s
        .choices
        .options
        .iter()
        .find(|o| o.label == "Adviser")
        .unwrap();
    assert_eq!(adviser.share, Some(0.6667), "6 of 9 calls");

    // Queue: offered 6, answered 3, abandoned 2 (1 short), 1 left for a call back.
    let q = &s.queue;
    assert_eq!(
        (
            q.offered,
            q.answered,
            q.abandoned,
            q.short_abandons,
            q.left_for_callback
        ),
        (6, 3, 2, 1, 1)
    );
    assert_eq!(
        q.average_speed_of_answer_seconds,
        Some(50.3),
        "(30 + 60 + 61) / 3"
    );
    assert_eq!(q.answered_within_threshold, 2, "60 s counts, 61 s does not");
    assert_eq!(q.abandonment_rate, Some(0.25), "(2 − 1) / (6 − 1 − 1)");
    assert_eq!(q.service_level, Some(0.5), "2 / (3 + 2 − 1)");
    assert_eq!(s.abandoned_calls.len(), 2);
    assert!(s.abandoned_calls[0].short && !s.abandoned_calls[0].listed_for_callback);
    assert!(s.abandoned_calls[1].listed_for_callback && !s.abandoned_calls[1].called_back);

    // Enquiries: 3 (missed in queue, the leaver's request, Saturday's request).
    let e = &s.enquiries;
    assert_eq!(e.total, 3);
    assert_eq!(e.by_source.get("missed-in-queue"), Some(&1));
    assert_eq!(e.by_source.get("callback-request"), Some(&2));
    assert_eq!((e.open, e.closed), (1, 2));
    assert_eq!(
        e.attempt_outcomes.get("resolved"),
        Some(&1),
        "Monday's attempt is after the period"
    );

    // Call-backs: first attempts after 30 and 240 working minutes; 2 of 3 due kept the promise.
    let cb = &s.callbacks;
    assert_eq!(cb.attempted, 2);
    assert_eq!(cb.first_attempt_minutes_median, Some(30));
    assert_eq!(cb.first_attempt_minutes_p90, Some(240));
    assert_eq!((cb.within_promise, cb.promise_due), (2, 3));
    assert_eq!(cb.within_promise_share, Some(0.6667));
    assert_eq!(cb.attempts_per_enquiry, Some(1.0));
    assert_eq!(cb.unreachable_share, Some(0.0));

    // Out of hours: Saturday's call and request, in the spell that ended Monday 09:00.
    assert_eq!(s.out_of_hours.len(), 1);
    let spell = &s.out_of_hours[0];
    assert_eq!((spell.calls, spell.callback_requests), (1, 1));
    assert_eq!(spell.reopened_at, Some(at("2026-11-30T09:00:00Z")));

    // One hospital: only calls and enquiries where Liverpool Heart and Chest was chosen.
    let lhc = Period::new(
        day("2026-11-23"),
        day("2026-11-29"),
        Some(helpline::enquiries::Trust::LiverpoolHeartAndChest),
    )
    .unwrap();
    let s = compute(
        app.store.as_ref(),
        &flow,
        &hours(),
        &lhc,
        Thresholds::default(),
        at("2026-11-30T12:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(
        (s.calls.total, s.enquiries.total),
        (1, 1),
        "Saturday's caller chose it"
    );

    // The same call figures whether a day is worked out from its calls (the day not yet
    // over) or read back from its roll-up (stored once the day was over).
    let tuesday = Period::new(day("2026-11-24"), day("2026-11-24"), None).unwrap();
    let store = app.store.as_ref();
    let hours = hours();
    let when = |t: &str| compute(store, &flow, &hours, &tuesday, Thresholds::default(), at(t));
    let live = when("2026-11-24T22:00:00Z").await.unwrap();
    let rolled = when("2026-11-30T12:00:00Z").await.unwrap();
    let call_figures = |s: &helpline::stats::Stats| {
        serde_json::json!([s.calls, s.choices, s.queue, s.out_of_hours, s.journey])
    };
    assert_eq!(call_figures(&live), call_figures(&rolled));
    let kept = store
        .stored_days(day("2026-11-23"), day("2026-11-29"))
        .await
        .unwrap();
    assert_eq!(
        kept.iter().map(|d| d.day).collect::<Vec<_>>(),
        (23..=29)
            .map(|d| day(&format!("2026-11-{d}")))
            .collect::<Vec<_>>(),
        "every day of the week was over by the 30th, and rolled up"
    );
    // The journey map: six callers went from the menu to an adviser, one to the update;
    // two hung up in the queue.
    let branch = |from: &str, to: &str| {
        live.journey
            .branches
            .get(&(from.to_string(), to.to_string()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(branch("main_menu", "adviser"), 6);
    assert_eq!(branch("main_menu", "latest_update"), 1);
    assert_eq!(live.journey.hung_up.get("adviser_queue"), Some(&2));
    assert!(live
        .journey
        .hung_up
        .get("main_menu")
        .is_some_and(|n| *n >= 1));

    // The command line prints the same JSON.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args([
            "stats",
            "--since",
            "2026-11-23",
            "--until",
            "2026-11-29",
            "--json",
        ])
        .env("DATABASE_URL", app.db.url())
        .envs(app.db.data_key_env())
        .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["queue"]["service_level"], 0.5);
    assert_eq!(json["calls"]["total"], 9);
    assert_eq!(json["choices"]["hung_up_in_menu"], 1);
}

#[tokio::test]
async fn call_backs_across_christmas_count_only_working_hours() {
    // Thursday 24 December 2026 15:00: asked for a call back; first attempt Tuesday 29th at
    // 10:00. Working time: 15:00–16:00 on the 24th, and 09:00–10:00 on the 29th (Christmas
    // Day and the Boxing Day substitute on Monday 28th are bank holidays) = 120 minutes.
    let app = spawn_app_with("2026-12-24T15:00:00Z", &[]).await;
    let handler = accounts::add(
        app.store.as_ref(),
        "h@example.nhs.uk",
        Role::Handler,
        None,
        app.clock.now(),
    )
    .await
    .unwrap()
    .0
    .id;
    let mut c = app.call_from("+447700900010").await;
    c.press("2").await;
    c.press("1").await;
    c.press("1").await;
    c.press("1").await;
    c.leave_message(5).await;
    let id = app.store.list_enquiries().await.unwrap()[0].id.clone();
    attempt(
        &app,
        &id,
        &handler,
        "2026-12-29T10:00:00Z",
        Status::Resolved,
    )
    .await;
    let flow = helpline::flows::load_dir(std::path::Path::new("call_flows")).unwrap();
    let period = Period::new(day("2026-12-21"), day("2026-12-31"), None).unwrap();
    let s = compute(
        app.store.as_ref(),
        &flow,
        &hours(),
        &period,
        Thresholds::default(),
        at("2027-01-04T12:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(s.callbacks.first_attempt_minutes_median, Some(120));
    assert_eq!(
        s.callbacks.within_promise, 1,
        "due Wednesday 30th (two working days later)"
    );
}

/// A day not yet over: the figures of the calls that had ended are kept (with a
/// watermark) and brought up to date every few minutes; calls still going on are read
/// live. Each call is counted once, whichever side of the watermark it ended on.
#[tokio::test]
async fn today_counts_each_call_once_as_its_figures_are_kept_through_the_day() {
    let app = spawn_app_with("2026-11-24T10:00:00Z", &[]).await;
    let flow = helpline::flows::load_dir(std::path::Path::new("call_flows")).unwrap();
    let hours = hours();
    let tuesday = Period::new(day("2026-11-24"), day("2026-11-24"), None).unwrap();
    let store = app.store.as_ref();
    let figures = |t: &str| compute(store, &flow, &hours, &tuesday, Thresholds::default(), at(t));
    let update = |s: &helpline::stats::Stats| {
        let o = s.choices.options.iter().find(|o| o.key == "1").unwrap();
        (s.calls.total, o.calls, s.choices.hung_up_in_menu)
    };
    let watermark = || async {
        let days = store
            .stored_days(day("2026-11-24"), day("2026-11-24"))
            .await
            .unwrap();
        days.first().and_then(|d| d.watermark)
    };

    // 10:00: hears the update and hangs up at 10:01.
    let mut first = app.call_from("+447700900001").await;
    first.press("1").await;
    app.clock.set(at("2026-11-24T10:01:00Z"));
    first.hang_up(60).await;
    // 10:05: a second caller, still listening to the menu.
    app.clock.set(at("2026-11-24T10:05:00Z"));
    let mut second = app.call_from("+447700900002").await;

    let s = figures("2026-11-24T10:06:00Z").await.unwrap();
    assert_eq!(update(&s), (2, 1, 0), "both calls, one choice so far");
    assert_eq!(
        watermark().await,
        Some(at("2026-11-24T10:06:00Z")),
        "the ended call is kept"
    );

    // The second caller chooses the update and hangs up after the watermark.
    second.press("1").await;
    app.clock.set(at("2026-11-24T10:07:00Z"));
    second.hang_up(120).await;
    let s = figures("2026-11-24T10:08:00Z").await.unwrap();
    assert_eq!(update(&s), (2, 2, 0), "the second call, read live");
    assert_eq!(
        watermark().await,
        Some(at("2026-11-24T10:06:00Z")),
        "kept figures still fresh"
    );

    // Five minutes on, the kept figures take in the second call too: nothing counted twice.
    let s = figures("2026-11-24T10:20:00Z").await.unwrap();
    assert_eq!(update(&s), (2, 2, 0));
    assert_eq!(watermark().await, Some(at("2026-11-24T10:20:00Z")));
    // And once the day is over, the final roll-up says the same.
    let s = figures("2026-11-25T12:00:00Z").await.unwrap();
    assert_eq!(update(&s), (2, 2, 0));
    assert_eq!(watermark().await, None, "final");
}
