//! `helpline dev seed`: the made-up data is shaped like the real thing and hangs together
//! (every enquiry has its call, every attempt its enquiry and handler, in-hours calls really
//! were in hours), on SQLite and, when a server is reachable, on PostgreSQL.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use helpline::dev::seed::seed;
use helpline::hours::{BankHolidays, OpeningHours, WeeklySchedule, LONDON};
use sqlx::{PgPool, SqlitePool};
use support::db::TestDb;

fn now() -> DateTime<Utc> {
    support::at("2026-11-24T15:30:00Z")
}

/// Either database, for the same checks.
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    async fn open(db: &TestDb) -> Self {
        if db.is_postgres() {
            Db::Postgres(PgPool::connect(db.url()).await.unwrap())
        } else {
            Db::Sqlite(SqlitePool::connect(db.url()).await.unwrap())
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn strings(&self, sql: &str) -> Vec<String> {
        match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn counted(&self, sql: &str) -> BTreeMap<String, i64> {
        match self {
            Db::Sqlite(p) => sqlx::query_as::<_, (String, i64)>(sql).fetch_all(p).await,
            Db::Postgres(p) => sqlx::query_as::<_, (String, i64)>(sql).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .collect()
    }

    async fn calls(&self) -> Vec<(DateTime<Utc>, bool)> {
        let sql = "SELECT started_at, in_hours FROM calls";
        match self {
            Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await,
            Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
        }
        .unwrap()
    }

    /// (created_at, callback_due, first attempt) of every enquiry.
    async fn promises(&self) -> Vec<(DateTime<Utc>, NaiveDate, Option<DateTime<Utc>>)> {
        let sql = "SELECT e.created_at, e.callback_due, \
                   (SELECT MIN(a.at) FROM callback_attempts a WHERE a.enquiry_id = e.id) FROM enquiries e";
        match self {
            Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await,
            Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
        }
        .unwrap()
    }

    async fn joined(&self) -> Vec<DateTime<Utc>> {
        let sql = "SELECT queue_joined_at FROM calls WHERE queue_joined_at IS NOT NULL";
        match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        }
        .unwrap()
    }

    async fn attempt_times(&self) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let sql = "SELECT a.at, e.created_at FROM callback_attempts a JOIN enquiries e ON e.id = a.enquiry_id";
        match self {
            Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await,
            Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
        }
        .unwrap()
    }
}

fn hours() -> OpeningHours {
    OpeningHours::new(
        WeeklySchedule::default(),
        Arc::new(BankHolidays::embedded().unwrap()),
    )
}

fn in_opening_hours(t: DateTime<Utc>) -> bool {
    let local = t.with_timezone(&LONDON);
    !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && (9..16).contains(&local.hour())
}

/// What holds for any seeded database of `calls` calls over `days` days before [`now`].
async fn check(db: &Db, calls: i64, days: i64) {
    assert_eq!(db.count("SELECT COUNT(*) FROM calls").await, calls);
    let from = now() - chrono::Duration::days(days);
    for (at, _) in db.calls().await {
        assert!(at >= from && at < now(), "call at {at} outside the period");
    }

    // Enquiries: about a fifth of calls.
    let enquiries = db.count("SELECT COUNT(*) FROM enquiries").await;
    let share = enquiries as f64 / calls as f64;
    assert!(
        (0.18..=0.25).contains(&share),
        "enquiries are {share:.3} of calls"
    );

    // Steps: every call has its start, two to five steps on average.
    let steps = db.count("SELECT COUNT(*) FROM call_steps").await;
    let per_call = steps as f64 / calls as f64;
    assert!(
        (2.0..=5.0).contains(&per_call),
        "{per_call:.2} steps per call"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM call_steps WHERE seq = 0 AND node = 'welcome' AND input = 'start'")
            .await,
        calls
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM calls c JOIN call_steps s ON s.call_sid = c.call_sid AND s.seq = 0 \
             WHERE s.outcome <> CASE WHEN c.in_hours THEN 'start-open' ELSE 'start-closed' END"
        )
        .await,
        0,
        "the first step says whether the line was open"
    );

    // Each step's route through the flow: through no node only after the queue's hang-up or
    // adviser; otherwise real nodes of the shipped flow along its branches, ending where
    // the next step was taken.
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM call_steps WHERE (path IS NULL OR path = '') \
             <> (outcome IN ('hung-up-in-queue', 'bridged'))"
        )
        .await,
        0,
        "a path for every step that passed through a node"
    );
    let flow = helpline::flows::builtin().unwrap();
    let routes = db
        .strings("SELECT DISTINCT node || ' ' || outcome || ' ' || path FROM call_steps WHERE path IS NOT NULL")
        .await;
    assert!(routes.len() > 20, "{routes:?}");
    for route in &routes {
        let words: Vec<&str> = route.split(' ').collect();
        let (node, path) = (words[0], &words[2..]);
        assert!(!path.is_empty(), "{route}");
        for id in path {
            assert!(flow.node(id).is_some(), "{id} is not a node: {route}");
        }
        let mut hops = std::iter::once(&node).chain(path.iter());
        let mut from = hops.next().copied();
        for to in hops {
            let f = from.and_then(|f| flow.node(f)).unwrap();
            assert!(
                f.id == *to || f.kind.targets().iter().any(|(_, t)| t.as_str() == *to),
                "{} does not lead to {to}: {route}",
                f.id
            );
            from = Some(to);
        }
    }
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM call_steps WHERE seq = 0 AND path NOT IN \
             ('welcome greeting_open main_menu', 'welcome greeting_closed main_menu')"
        )
        .await,
        0
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM call_steps a JOIN call_steps b ON b.call_sid = a.call_sid \
             AND b.seq = a.seq + 1 WHERE a.path IS NOT NULL AND a.path <> b.node \
             AND a.path NOT LIKE '% ' || b.node"
        )
        .await,
        0,
        "each route ends where the caller took the next step"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM call_steps WHERE path = 'adviser adviser_queue'")
            .await,
        db.count("SELECT COUNT(*) FROM calls WHERE queue_joined_at IS NOT NULL")
            .await,
        "an adviser asked for while open is the queue"
    );
    assert!(
        db.count("SELECT COUNT(*) FROM call_steps WHERE path = 'adviser adviser_closed main_menu'")
            .await
            > 0,
        "and while closed, the explanation and the menu"
    );

    // Simulated calls: some, but no more than 2%.
    let simulated = db.count("SELECT COUNT(*) FROM calls WHERE simulated").await;
    assert!(simulated > 0, "no simulated calls to leave out");
    assert!(
        simulated as f64 <= 0.02 * calls as f64,
        "{simulated} simulated"
    );

    // First choices in the main menu, within 5 points of the targets.
    let first = db
        .counted(
            "SELECT outcome, COUNT(*) FROM call_steps WHERE node = 'main_menu' AND seq = 1 \
             AND outcome LIKE 'option-%' GROUP BY outcome",
        )
        .await;
    for (option, target) in [
        ("option-1", 35.0),
        ("option-2", 20.0),
        ("option-3", 15.0),
        ("option-4", 10.0),
        ("option-0", 15.0),
    ] {
        let got = *first.get(option).unwrap_or(&0) as f64 * 100.0 / calls as f64;
        assert!(
            (got - target).abs() <= 5.0,
            "{option}: {got:.1}% of calls, target {target}%"
        );
    }
    let chose = first.values().sum::<i64>() as f64 / calls as f64;
    assert!(
        (0.90..=0.98).contains(&chose),
        "{chose:.3} chose something first"
    );

    // The queue only while the line is open (a caller may have rung just before opening),
    // joined as 0 was pressed, with consistent figures.
    let hours = hours();
    for joined in db.joined().await {
        assert!(hours.is_open(joined), "queue joined at {joined}");
    }
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM calls c WHERE c.queue_joined_at IS NOT NULL AND NOT EXISTS (SELECT 1 \
             FROM call_steps s WHERE s.call_sid = c.call_sid AND s.node = 'main_menu' \
             AND s.outcome = 'option-0' AND s.at = c.queue_joined_at)"
        )
        .await,
        0
    );
    let results = db
        .counted("SELECT queue_result, COUNT(*) FROM calls WHERE queue_result IS NOT NULL GROUP BY queue_result")
        .await;
    assert_eq!(
        results.keys().map(String::as_str).collect::<Vec<_>>(),
        ["bridged", "hangup", "leave"]
    );
    assert!(results["bridged"] > results["hangup"] && results["hangup"] > results["leave"]);
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM calls WHERE queue_result IS NOT NULL AND (queue_wait_seconds IS NULL \
             OR queue_left_at < queue_joined_at OR hung_up_in_queue <> (queue_result = 'hangup'))"
        )
        .await,
        0
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM call_steps WHERE node = 'adviser_queue' AND input = 'queue'"
        )
        .await,
        results.values().sum::<i64>()
    );

    // Every enquiry's call exists; waiting began no later than the request.
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM enquiries e LEFT JOIN calls c ON c.call_sid = e.call_sid WHERE c.call_sid IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM enquiries WHERE waiting_since > created_at")
            .await,
        0
    );
    let sources = db
        .counted("SELECT source, COUNT(*) FROM enquiries GROUP BY source")
        .await;
    assert!(sources["callback-request"] > 0 && sources["missed-in-queue"] > 0);
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM enquiries e JOIN calls c ON c.call_sid = e.call_sid \
             WHERE e.source = 'missed-in-queue' AND (c.queue_result <> 'hangup' OR c.queue_wait_seconds < 30 OR c.simulated)"
        )
        .await,
        0
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM enquiries e JOIN calls c ON c.call_sid = e.call_sid \
             WHERE e.source = 'callback-request' AND c.queue_result = 'leave' AND e.waiting_since <> c.queue_joined_at"
        )
        .await,
        0,
        "callers who left the queue keep their place"
    );

    // References: unique, six digits, never a leading 0.
    let references = db.strings("SELECT reference FROM enquiries").await;
    assert_eq!(references.len() as i64, enquiries);
    assert_eq!(
        references.iter().collect::<HashSet<_>>().len(),
        references.len()
    );
    for r in &references {
        assert!(
            r.len() == 6 && r.bytes().all(|b| b.is_ascii_digit()) && !r.starts_with('0'),
            "reference {r}"
        );
    }

    // Statuses as the service leaves them.
    let statuses = db
        .counted("SELECT status, COUNT(*) FROM enquiries GROUP BY status")
        .await;
    for s in statuses.keys() {
        assert!(
            [
                "new",
                "retry",
                "follow-up",
                "resolved",
                "unreachable",
                "wrong-number"
            ]
            .contains(&s.as_str()),
            "status {s}"
        );
    }
    assert!(statuses["resolved"] * 2 > enquiries, "{statuses:?}");
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM enquiries WHERE status IN ('resolved', 'unreachable', 'wrong-number') \
             AND (closed_at IS NULL OR attempts NOT BETWEEN 1 AND 3)"
        )
        .await,
        0,
        "closed enquiries have a closing time and one to three attempts"
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM enquiries WHERE status IN ('new', 'retry', 'follow-up') AND closed_at IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM enquiries WHERE (status = 'retry') <> (next_attempt_on IS NOT NULL)"
        )
        .await,
        0,
        "only (and every) retry has a next attempt day"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM enquiries WHERE status = 'unreachable' AND unanswered <> 3")
            .await,
        0
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM enquiries WHERE status = 'new' AND attempts <> 0")
            .await,
        0
    );

    // Attempts: each for an existing enquiry and handler, counted on the enquiry.
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM callback_attempts a LEFT JOIN enquiries e ON e.id = a.enquiry_id \
             LEFT JOIN users u ON u.id = a.handler_id WHERE e.id IS NULL OR u.id IS NULL OR u.role <> 'handler'"
        )
        .await,
        0
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM callback_attempts").await,
        db.count("SELECT CAST(COALESCE(SUM(attempts), 0) AS BIGINT) FROM enquiries")
            .await
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM users WHERE email LIKE 'handler__@example.nhs.uk'")
            .await,
        12
    );
    for (at, created) in db.attempt_times().await {
        assert!(at > created && at <= now(), "attempt at {at} for {created}");
        assert!(
            in_opening_hours(at),
            "attempt at {at} outside working hours"
        );
    }

    // Promises: two working days; most first attempts within them, some late.
    let (mut kept, mut broken) = (0, 0);
    for (created, due, first) in db.promises().await {
        let day = created.with_timezone(&LONDON).date_naive();
        assert_eq!(
            due,
            hours.working_days_after(day, 2),
            "due date for {created}"
        );
        if let Some(first) = first {
            if first.with_timezone(&LONDON).date_naive() <= due {
                kept += 1;
            } else {
                broken += 1;
            }
        }
    }
    let late = f64::from(broken) / f64::from(kept + broken);
    assert!(
        (0.08..=0.25).contains(&late),
        "{late:.3} of first attempts late"
    );

    // In hours means Monday to Friday 09:00–16:00 London time, as the service decides.
    let all = db.calls().await;
    let in_hours = all.iter().filter(|(_, h)| *h).count() as f64 / all.len() as f64;
    assert!((0.65..=0.85).contains(&in_hours), "{in_hours:.3} in hours");
    for (at, flagged) in all {
        if flagged {
            assert!(in_opening_hours(at), "call at {at} flagged in hours");
        }
        assert_eq!(flagged, hours.is_open(at), "call at {at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_sqlite_with_realistic_consistent_data_once() {
    let test = TestDb::sqlite();
    let summary = seed(test.url(), 5_000, 30, now()).await.unwrap();
    assert!(summary.contains("5000 calls over 30 days"), "{summary}");
    assert!(summary.contains(" s: "), "the time taken: {summary}");
    let db = Db::open(&test).await;
    check(&db, 5_000, 30).await;

    let again = seed(test.url(), 5_000, 30, now()).await.unwrap_err();
    assert!(
        again
            .to_string()
            .contains("the database already has 5000 calls; seed an empty database"),
        "{again}"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM calls").await, 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_arguments_seed_the_same_rows() {
    let (a, b) = (TestDb::sqlite(), TestDb::sqlite());
    seed(a.url(), 500, 10, now()).await.unwrap();
    seed(b.url(), 500, 10, now()).await.unwrap();
    let (a, b) = (Db::open(&a).await, Db::open(&b).await);
    for sql in [
        "SELECT call_sid || ' ' || started_at || ' ' || COALESCE(queue_result, '') FROM calls ORDER BY call_sid",
        "SELECT call_sid || ' ' || seq || ' ' || node || ' ' || outcome || ' ' || COALESCE(path, '') FROM call_steps ORDER BY call_sid, seq",
        "SELECT id || ' ' || reference || ' ' || status FROM enquiries ORDER BY id",
        "SELECT enquiry_id || ' ' || at || ' ' || outcome FROM callback_attempts ORDER BY id",
    ] {
        assert_eq!(a.strings(sql).await, b.strings(sql).await, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_is_refused() {
    let e = seed("sqlite::memory:", 10, 1, now()).await.unwrap_err();
    assert!(e.to_string().contains("not an in-memory database"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_postgres_too() {
    let Some(test) = TestDb::postgres().await else {
        return;
    };
    let summary = seed(test.url(), 2_000, 30, now()).await.unwrap();
    assert!(summary.contains("2000 calls"), "{summary}");
    let db = Db::open(&test).await;
    check(&db, 2_000, 30).await;
    let again = seed(test.url(), 2_000, 30, now()).await.unwrap_err();
    assert!(
        again
            .to_string()
            .contains("the database already has 2000 calls; seed an empty database"),
        "{again}"
    );
    if let Db::Postgres(p) = db {
        p.close().await;
    }
}
