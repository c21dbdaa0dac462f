//! The living calendar: the GOV.UK feed (served by a local mock, never the internet),
//! the stored copy, closures and special openings, as callers and managers meet them.

mod support;

use std::sync::Arc;
use std::time::Duration;

use helpline::hours::feed::{Feed, FeedConfig};
use helpline::hours::live::LiveHours;
use helpline::hours::refresh::{refresh, Outcome};
use helpline::hours::{Division, WeeklySchedule};
use helpline::store::Store;
use serde_json::{json, Value};
use support::db::TestDb;
use support::{at, spawn_app_with};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: &str = "2026-11-24T10:00:00Z";

/// The embedded snapshot as GOV.UK publishes it, plus `extra` England & Wales events.
fn feed_with(extra: &[(&str, &str)]) -> Value {
    let mut doc: Value = serde_json::from_str(include_str!("../data/bank-holidays.json")).unwrap();
    let events = doc["england-and-wales"]["events"].as_array_mut().unwrap();
    for (date, title) in extra {
        events.push(json!({"title": title, "date": date, "notes": "", "bunting": true}));
    }
    doc
}

/// A store on the suite's backend; keep the `TestDb` alive as long as the store.
async fn suite_store() -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::for_suite().await.expect("a test database");
    let store = helpline::store::connect(db.url()).await.unwrap();
    (db, store)
}

fn feed(server: &MockServer, timeout_ms: u64) -> Feed {
    let mut config = FeedConfig::new(
        format!("{}/bank-holidays.json", server.uri()),
        Division::EnglandAndWales,
    );
    config.timeout = Duration::from_millis(timeout_ms);
    Feed::new(config).unwrap()
}

async fn live(store: &dyn Store) -> LiveHours {
    LiveHours::load(
        WeeklySchedule::default(),
        Division::EnglandAndWales,
        store,
        Arc::new(helpline::clock::FixedClock::new(at(NOW))),
    )
    .await
    .unwrap()
}

fn new_years_day_2029(live: &LiveHours) -> Option<String> {
    live.get()
        .holidays()
        .title_on(chrono::NaiveDate::from_ymd_opt(2029, 1, 1).unwrap())
        .map(str::to_string)
}

#[tokio::test]
async fn good_then_bad_feeds_keep_the_last_good_calendar() {
    let (_db, store) = suite_store().await;
    let live = live(store.as_ref()).await;
    let server = MockServer::start().await;
    assert_eq!(live.get().holidays().source(), "embedded snapshot");

    // A good feed that knows one more date.
    let good = Mock::given(method("GET"))
        .and(path("/bank-holidays.json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(feed_with(&[("2029-01-01", "New Year’s Day")]))
                .insert_header("etag", "\"v1\""),
        )
        .up_to_n_times(1)
        .mount_as_scoped(&server)
        .await;
    let outcome = refresh(&feed(&server, 2000), store.as_ref(), &live, at(NOW))
        .await
        .unwrap();
    let Outcome::Updated(diff) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(diff.to_string().contains("2029-01-01"), "{diff}");
    assert_eq!(new_years_day_2029(&live).as_deref(), Some("New Year’s Day"));
    assert!(live.get().holidays().source().contains(&server.uri()));
    drop(good);

    // Each bad answer leaves that calendar in force.
    let bad_answers: Vec<(&str, ResponseTemplate)> = vec![
        (
            "malformed",
            ResponseTemplate::new(200).set_body_string("{not json"),
        ),
        ("empty", ResponseTemplate::new(200).set_body_string("")),
        (
            "truncated",
            ResponseTemplate::new(200).set_body_string(&feed_with(&[]).to_string()[..500]),
        ),
        (
            "no division",
            ResponseTemplate::new(200)
                .set_body_json(json!({"scotland": {"division": "scotland", "events": []}})),
        ),
        (
            "fewer dates",
            ResponseTemplate::new(200).set_body_json(feed_with(&[])),
        ),
        ("server error", ResponseTemplate::new(500)),
        (
            "slow",
            ResponseTemplate::new(200)
                .set_body_json(feed_with(&[("2029-01-01", "New Year’s Day")]))
                .set_delay(Duration::from_secs(3)),
        ),
    ];
    for (what, answer) in bad_answers {
        let _mock = Mock::given(method("GET"))
            .respond_with(answer)
            .mount_as_scoped(&server)
            .await;
        let result = refresh(&feed(&server, 300), store.as_ref(), &live, at(NOW)).await;
        assert!(result.is_err(), "{what}: {result:?}");
        assert_eq!(
            new_years_day_2029(&live).as_deref(),
            Some("New Year’s Day"),
            "{what}: calendar kept"
        );
        assert!(
            live.get().holidays().source().contains(&server.uri()),
            "{what}"
        );
        // Christmas is still a bank holiday: the line never opens by mistake.
        assert!(!live.get().is_open(at("2026-12-25T10:00:00Z")), "{what}");
    }
}

#[tokio::test]
async fn conditional_requests_cost_little() {
    let (_db, store) = suite_store().await;
    let live = live(store.as_ref()).await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("if-none-match", "\"v1\""))
        .respond_with(ResponseTemplate::new(304))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(feed_with(&[]))
                .insert_header("etag", "\"v1\""),
        )
        .mount(&server)
        .await;
    let first = refresh(&feed(&server, 2000), store.as_ref(), &live, at(NOW))
        .await
        .unwrap();
    assert!(matches!(first, Outcome::Unchanged), "{first:?}");
    let later = at("2026-11-25T10:00:00Z");
    let second = refresh(&feed(&server, 2000), store.as_ref(), &live, later)
        .await
        .unwrap();
    assert!(matches!(second, Outcome::NotModified), "{second:?}");
    let stored = store
        .stored_calendar("england-and-wales")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.etag.as_deref(), Some("\"v1\""));
    assert_eq!(stored.checked_at, later);
    assert_eq!(stored.fetched_at, at(NOW));
}

#[tokio::test]
async fn the_service_refreshes_at_startup_and_a_restart_without_network_keeps_the_stored_copy() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(feed_with(&[("2029-01-01", "New Year’s Day")])),
        )
        .mount(&server)
        .await;
    let url = format!("{}/bank-holidays.json", server.uri());
    let app = spawn_app_with(NOW, &[("HELPLINE_BANK_HOLIDAYS_URL", &url)]).await;
    // The first refresh runs in the background; wait (bounded) for it to land.
    let mut stored = None;
    for _ in 0..100 {
        stored = app
            .store
            .stored_calendar("england-and-wales")
            .await
            .unwrap();
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = stored.expect("the startup refresh stored the feed");
    assert_eq!(stored.source, url);
    let ready: Value = app
        .client
        .get(format!("http://{}/readyz", app.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["calendar"]["source"], url.as_str(), "{ready}");
    assert_eq!(ready["calendar"]["last_bank_holiday"], "2029-01-01");

    // "Restart" with the network gone: a second instance on the same database.
    let store = helpline::store::connect(app.db.url()).await.unwrap();
    let live = live(store.as_ref()).await;
    assert_eq!(
        live.get().holidays().source(),
        url,
        "the stored copy, not the embedded one"
    );
    assert_eq!(new_years_day_2029(&live).as_deref(), Some("New Year’s Day"));
    let mut unreachable = FeedConfig::new(
        "http://127.0.0.1:9/bank-holidays.json",
        Division::EnglandAndWales,
    );
    unreachable.timeout = Duration::from_millis(500);
    assert!(refresh(
        &Feed::new(unreachable).unwrap(),
        store.as_ref(),
        &live,
        at(NOW)
    )
    .await
    .is_err());
    assert_eq!(new_years_day_2029(&live).as_deref(), Some("New Year’s Day"));
}

#[tokio::test]
async fn readyz_warns_when_the_calendar_runs_short() {
    // Mid-2028: the embedded snapshot ends on 26 December 2028, under 6 months ahead.
    let app = spawn_app_with("2028-08-01T10:00:00Z", &[]).await;
    let r = app
        .client
        .get(format!("http://{}/readyz", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(
        ready["calendar"]["warning"]
            .as_str()
            .unwrap()
            .contains("fewer than 6 months"),
        "{ready}"
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("helpline_calendar_short 1"), "{metrics}");
    assert!(
        metrics.contains("helpline_calendar_future_days 147"),
        "{metrics}"
    );

    let fine = spawn_app_with(NOW, &[]).await;
    let ready: Value = fine
        .client
        .get(format!("http://{}/readyz", fine.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["calendar"]["warning"], Value::Null);
    assert_eq!(ready["database"]["ok"], true);
    assert_eq!(ready["migrations"]["ok"], true);
    assert_eq!(ready["call_flow"]["ok"], true);
}

fn helpline(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(args)
        .env("DATABASE_URL", db)
        .envs(support::db::data_key_env(db))
        .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
        .env_remove("HELPLINE_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// The command line refuses closures that already ended by the wall clock, so these two
// tests use dates a year ahead (within the embedded calendar); move them on in late 2027.
#[tokio::test]
async fn a_manager_closes_the_afternoon_with_one_command_and_callers_hear_why() {
    // Changes made elsewhere (here, the command line) apply at the next webhook; by default
    // within a second (HELPLINE_CHANGES_CHECK_MS, tested in tests/instances.rs).
    let app = spawn_app_with(
        "2027-12-24T12:30:00Z",
        &[("HELPLINE_CHANGES_CHECK_MS", "0")],
    )
    .await;
    let db = app.db.url().to_string();

    let call = app.call_from("+447700900123").await;
    assert!(
        !call.last().contains("closed"),
        "open before the closure: {}",
        call.last()
    );

    let (ok, out, err) = helpline(
        &db,
        &[
            "closures",
            "add",
            "--from",
            "2027-12-24T12:00:00Z",
            "--until",
            "2027-12-24T16:00:00Z",
            "--reason",
            "The line is closing early today for Christmas Eve",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("added closed"), "{out}");

    let mut call = app.call_from("+447700900123").await;
    let s = call.last();
    assert!(
        s.contains("The line is closing early today for Christmas Eve."),
        "{s}"
    );
    assert!(
        s.contains("we open again on Wednesday the 29th of December at 9am"),
        "{s}"
    );
    call.press("0").await;
    assert!(
        call.last()
            .contains("The line is closing early today for Christmas Eve."),
        "adviser option too: {}",
        call.last()
    );

    // `hours` answers from the same database, with the closure's reason.
    let (ok, out, _) = helpline(&db, &["hours", "--at", "2027-12-24T13:00:00Z", "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["open"], false);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("closing early today for Christmas Eve"),
        "{v}"
    );
    assert_eq!(v["next_open"], "2027-12-29T09:00:00+00:00");

    // Listing, and removing it opens the line again at once.
    let (_, out, _) = helpline(&db, &["closures", "list", "--json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["kind"], "closed");
    assert_eq!(list[0]["from"], "2027-12-24T12:00:00+00:00");
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let (ok, _, err) = helpline(&db, &["closures", "remove", &id]);
    assert!(ok, "{err}");
    let call = app.call_from("+447700900123").await;
    assert!(!call.last().contains("closing early"), "{}", call.last());
    let (ok, _, err) = helpline(&db, &["closures", "remove", &id]);
    assert!(
        !ok && err.contains("no closure or special opening"),
        "{err}"
    );
}

#[tokio::test]
async fn a_special_saturday_opening_lets_callers_reach_an_adviser() {
    let app = spawn_app_with("2027-11-27T11:00:00Z", &[]).await;
    let db = app.db.url().to_string();
    let (ok, _, err) = helpline(
        &db,
        &[
            "closures",
            "open",
            "--from",
            "2027-11-27T10:00:00Z",
            "--until",
            "2027-11-27T13:00:00Z",
            "--reason",
            "Open after the new announcement",
        ],
    );
    assert!(ok, "{err}");
    let mut call = app.call_from("+447700900123").await;
    assert!(!call.last().contains("closed"), "{}", call.last());
    call.press("0").await;
    assert!(
        call.last().contains("Putting you through to an adviser"),
        "{}",
        call.last()
    );
}

#[test]
fn closures_cli_refuses_nonsense() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("helpline.db").display());
    let (ok, _, err) = helpline(
        &db,
        &[
            "closures",
            "add",
            "--from",
            "2030-01-02T10:00:00Z",
            "--until",
            "2030-01-01T10:00:00Z",
            "--reason",
            "x",
        ],
    );
    assert!(!ok && err.contains("--until must be after --from"), "{err}");
    let (ok, _, err) = helpline(
        &db,
        &[
            "closures",
            "add",
            "--until",
            "2030-01-01T10:00:00Z",
            "--reason",
            "  ",
        ],
    );
    assert!(!ok && err.contains("--reason"), "{err}");
    let (ok, _, err) = helpline(
        &db,
        &[
            "closures",
            "add",
            "--until",
            "2001-01-01T10:00:00Z",
            "--reason",
            "x",
        ],
    );
    assert!(!ok && err.contains("in the past"), "{err}");
}

#[test]
fn holidays_list_shows_dates_titles_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("helpline.db").display());
    let (ok, out, err) = helpline(&db, &["holidays", "list", "--year", "2026", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["division"], "england-and-wales");
    assert_eq!(v["source"], "embedded snapshot");
    let dates: Vec<&str> = v["holidays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        [
            "2026-01-01",
            "2026-04-03",
            "2026-04-06",
            "2026-05-04",
            "2026-05-25",
            "2026-08-31",
            "2026-12-25",
            "2026-12-28"
        ]
    );
    let (ok, out, _) = helpline(&db, &["holidays", "list", "--year", "2026"]);
    assert!(ok);
    assert!(out.contains("2026-12-25  Christmas Day"), "{out}");
}

#[tokio::test]
async fn holidays_refresh_prints_what_changed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(feed_with(&[("2029-01-01", "New Year’s Day")])),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("helpline.db").display());
    let url = format!("{}/bank-holidays.json", server.uri());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(["holidays", "refresh"])
        .env("DATABASE_URL", &db)
        .env("HELPLINE_BANK_HOLIDAYS_URL", &url)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("+ 2029-01-01"), "{stdout}");
    let (_, out, _) = helpline(&db, &["holidays", "list", "--year", "2029", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["source"], url.as_str());
    assert!(v["fetched_at"].is_string());
}

#[tokio::test]
async fn the_daily_refresh_keeps_its_lease_only_when_it_worked() {
    use helpline::hours::refresh::{spawn_daily, LEASE};
    let clock: Arc<dyn helpline::clock::Clock> =
        Arc::new(helpline::clock::FixedClock::new(at(NOW)));
    let tomorrow = at("2026-11-25T09:00:00Z");

    // A feed that fails: the lease is given back, so another instance may try at once.
    let failing = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&failing)
        .await;
    let (_db, store) = suite_store().await;
    let hours = Arc::new(live(store.as_ref()).await);
    let task = spawn_daily(
        feed(&failing, 2000),
        store.clone(),
        hours.clone(),
        clock.clone(),
        "instance-a".into(),
    );
    for _ in 0..100 {
        if !failing
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    assert!(
        store
            .try_lease(LEASE, "instance-b", at(NOW), tomorrow)
            .await
            .unwrap(),
        "the failed refresh released the lease"
    );

    // A feed that works: the lease is kept for the day.
    let working = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(feed_with(&[("2029-01-01", "New Year’s Day")])),
        )
        .mount(&working)
        .await;
    let (_db2, store) = suite_store().await;
    let hours = Arc::new(live(store.as_ref()).await);
    let task = spawn_daily(
        feed(&working, 2000),
        store.clone(),
        hours.clone(),
        clock,
        "instance-a".into(),
    );
    // Up to 30 s: a loaded machine can be slow to run the background task.
    for _ in 0..600 {
        if store
            .stored_calendar("england-and-wales")
            .await
            .unwrap()
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    assert_eq!(
        new_years_day_2029(&hours).as_deref(),
        Some("New Year’s Day")
    );
    assert!(
        !store
            .try_lease(LEASE, "instance-b", at(NOW), tomorrow)
            .await
            .unwrap(),
        "another instance skips today"
    );
}

#[tokio::test]
async fn a_forced_refresh_accepts_a_feed_that_drops_a_date() {
    let (_db, store) = suite_store().await;
    let hours = live(store.as_ref()).await;
    let server = MockServer::start().await;
    let with = Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(feed_with(&[("2029-01-01", "New Year’s Day")])),
        )
        .mount_as_scoped(&server)
        .await;
    refresh(&feed(&server, 2000), store.as_ref(), &hours, at(NOW))
        .await
        .unwrap();
    drop(with);
    // GOV.UK withdraws the 2029 date: the daily refresh refuses, a forced one takes it.
    let without = Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(feed_with(&[])))
        .mount_as_scoped(&server)
        .await;
    assert!(
        refresh(&feed(&server, 2000), store.as_ref(), &hours, at(NOW))
            .await
            .is_err()
    );
    assert!(new_years_day_2029(&hours).is_some());
    let forced = helpline::hours::refresh::refresh_with(
        &feed(&server, 2000),
        store.as_ref(),
        &hours,
        at(NOW),
        helpline::hours::feed::Checks::ShapeOnly,
    )
    .await
    .unwrap();
    assert!(matches!(forced, Outcome::Updated(_)), "{forced:?}");
    assert!(new_years_day_2029(&hours).is_none());
    drop(without);
    // Forced or not, an unreadable feed is never used.
    let _broken = Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{oops"))
        .mount_as_scoped(&server)
        .await;
    let broken = helpline::hours::refresh::refresh_with(
        &feed(&server, 2000),
        store.as_ref(),
        &hours,
        at(NOW),
        helpline::hours::feed::Checks::ShapeOnly,
    )
    .await;
    assert!(broken.is_err(), "{broken:?}");
    assert_eq!(
        hours
            .get()
            .holidays()
            .title_on(chrono::NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()),
        Some("Christmas Day")
    );
}
