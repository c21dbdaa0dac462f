//! The enquiry outbox: when the database will not take a call-back request, the caller
//! still hears a reference, the request is on disk before they do, and it is stored under
//! that reference, once, when the database is back.

mod support;

use helpline::enquiries::outbox::{read_records, Outbox};
use support::{spawn_app_with, TestApp};

const TUESDAY_10AM: &str = "2026-11-24T10:00:00Z";

/// Makes the database refuse new enquiries (as when it is locked or down for writes) until
/// [`recover`]; everything else still works.
async fn refuse_enquiries(app: &TestApp) {
    if app.db.is_postgres() {
        let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
        sqlx::raw_sql(
            "CREATE FUNCTION refuse_enquiry() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'database is locked'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_enquiries BEFORE INSERT ON enquiries \
             FOR EACH ROW EXECUTE FUNCTION refuse_enquiry();",
        )
        .execute(&pool)
        .await
        .unwrap();
    } else {
        let pool = sqlx::SqlitePool::connect(app.db.url()).await.unwrap();
        sqlx::raw_sql(
            "CREATE TRIGGER refuse_enquiries BEFORE INSERT ON enquiries \
             BEGIN SELECT RAISE(ABORT, 'database is locked'); END;",
        )
        .execute(&pool)
        .await
        .unwrap();
    }
}

async fn recover(app: &TestApp) {
    let sql = "DROP TRIGGER refuse_enquiries ON enquiries";
    if app.db.is_postgres() {
        let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::SqlitePool::connect(app.db.url()).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER refuse_enquiries")
            .execute(&pool)
            .await
            .unwrap();
    }
}

async fn readyz(app: &TestApp) -> serde_json::Value {
    app.client
        .get(format!("http://{}/readyz", app.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The one outbox file in `dir` (the instance names it).
fn outbox_file(dir: &std::path::Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[tokio::test]
async fn a_request_the_database_refuses_is_kept_spoken_and_stored_once_later() {
    let outbox_dir = tempfile::tempdir().unwrap();
    let dir = outbox_dir.path().join("outbox");
    let app = spawn_app_with(
        TUESDAY_10AM,
        &[
            ("HELPLINE_OUTBOX_DIR", dir.to_str().unwrap()),
            ("HELPLINE_OUTBOX_REPLAY_SECONDS", "1"),
        ],
    )
    .await;
    assert_eq!(readyz(&app).await["outbox"]["records"], 0);
    refuse_enquiries(&app).await;

    let mut call = app.call_from("+447700900123").await;
    call.press("2").await;
    call.press("1").await; // use this number
    call.press("2").await; // Liverpool Heart and Chest
    call.press("1").await; // data concern
    call.leave_message(14).await;
    let said = call.last();
    assert!(call.ended(), "the call ends after the reference: {said}");
    assert!(
        !said.contains("something has gone wrong"),
        "no apology: {said}"
    );
    let start = said
        .find("Your reference number is ")
        .unwrap_or_else(|| panic!("a reference: {said}"));
    assert!(
        said.contains("by the end of Thursday the 26th of November"),
        "{said}"
    );
    // A retried webhook hears the same reference, and the outbox keeps one record.
    let again = call.retry_last().await;
    assert_eq!(again, call.last_twiml);

    // On disk before it was spoken: one line, the reference the caller heard.
    let file = outbox_file(&dir);
    let kept = read_records(&file).unwrap();
    assert_eq!(kept.len(), 1);
    let record = &kept[0];
    assert_eq!(record.call_sid, call.sid);
    // The number and the recording are sealed in the file, with the database's keys.
    let keys = app.store.data_keys();
    let opened = record.enquiry(&keys).unwrap().unwrap();
    assert_eq!(opened.callback_number.e164(), "+447700900123");
    assert!(opened.recording.unwrap().url.ends_with("RE0123"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("7700900123") && !text.contains("RE0123"),
        "nothing in plain text: {text}"
    );
    assert_eq!(record.trust.as_str(), "liverpool-heart-and-chest");
    assert_eq!(record.category.as_str(), "data-concern");
    assert_eq!(record.recording.as_ref().unwrap().duration_seconds, 14);
    assert_eq!(record.callback_due.to_string(), "2026-11-26");
    assert!(
        said[start..].starts_with(&format!(
            "Your reference number is {}",
            record.reference.spoken()
        )),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().lines().count(),
        1,
        "one line per request"
    );
    assert!(app.store.list_enquiries().await.unwrap().is_empty());

    // Degraded while a request waits, and counted.
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["outbox"]["ok"], false, "{ready}");
    assert_eq!(ready["outbox"]["records"], 1, "{ready}");
    assert!(
        app.metrics().await.contains("helpline_outbox_records 1"),
        "the gauge counts the record"
    );

    // Still refused: the background replay keeps the file as it is.
    let copy = outbox_dir.path().join("copy.jsonl");
    std::fs::copy(&file, &copy).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(read_records(&file).unwrap(), kept);

    // The database is back: the background replay stores it under the same reference.
    recover(&app).await;
    // A retry now (before or after the replay) still hears the reference first given.
    let retried = call.retry_last().await;
    assert_eq!(retried, call.last_twiml);
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = app.store.list_enquiries().await.unwrap();
        if !stored.is_empty() && readyz(&app).await["outbox"]["records"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stored.len(), 1);
    let e = &stored[0];
    assert_eq!(
        e.reference, record.reference,
        "the reference the caller heard"
    );
    assert_eq!(e.call_sid, call.sid);
    assert_eq!(e.callback_number, "+447700900123");
    assert_eq!(e.recording_duration, Some(14));
    assert_eq!(e.callback_due.to_string(), "2026-11-26");
    assert!(
        read_records(&file).unwrap().is_empty(),
        "emptied once stored"
    );
    assert_eq!(readyz(&app).await["outbox"]["ok"], true);
    assert!(app.metrics().await.contains("helpline_outbox_records 0"));

    // Replaying the same records again (twice) stores nothing more.
    let replay = Outbox::open(&copy, 10_000, app.store.data_keys()).unwrap();
    assert_eq!(replay.len(), 1);
    assert_eq!(replay.replay(app.store.as_ref()).await.unwrap(), 1);
    assert_eq!(replay.replay(app.store.as_ref()).await.unwrap(), 0);
    let after = app.store.list_enquiries().await.unwrap();
    assert_eq!(after.len(), 1, "exactly once");
    assert_eq!(after[0].reference, record.reference);
    assert_eq!(after[0].id, e.id);
}

#[tokio::test]
async fn a_full_outbox_gives_the_apology() {
    let outbox_dir = tempfile::tempdir().unwrap();
    let dir = outbox_dir.path().join("outbox");
    let app = spawn_app_with(
        TUESDAY_10AM,
        &[
            ("HELPLINE_OUTBOX_DIR", dir.to_str().unwrap()),
            ("HELPLINE_OUTBOX_MAX_RECORDS", "1"),
        ],
    )
    .await;
    refuse_enquiries(&app).await;
    let mut heard = Vec::new();
    for _ in 0..2 {
        let mut call = app.call_from("+447700900123").await;
        call.press("2").await;
        call.press("1").await;
        call.press("2").await;
        call.press("1").await;
        call.leave_message(3).await;
        heard.push(call.last());
    }
    assert!(
        heard[0].contains("Your reference number is"),
        "{}",
        heard[0]
    );
    assert!(
        heard[1].contains("something has gone wrong"),
        "the apology: {}",
        heard[1]
    );
    assert!(
        !heard[1].contains("Your reference number is"),
        "no reference once full: {}",
        heard[1]
    );
    assert_eq!(read_records(&outbox_file(&dir)).unwrap().len(), 1);
}
