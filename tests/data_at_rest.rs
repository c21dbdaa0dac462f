//! Personal data at rest (issue 7; docs/SECURITY.md, "Data keys"): callers' numbers and
//! recording references are stored sealed, lookups by number go through keyed hashes, rows
//! stored before encryption are sealed at the next start, and `helpline rekey` moves
//! everything to a new key. The store tests run on SQLite and PostgreSQL, like tests/store.rs;
//! the call test runs on the suite's backend.

mod support;

use std::str::FromStr;

use chrono::NaiveDate;
use helpline::config::DataKeySettings;
use helpline::crypto::{DataKey, Keyring, Kind};
use helpline::enquiries::{Category, NewEnquiry, Recording, Source, Trust};
use helpline::flows::Answer;
use helpline::phone::UkNumber;
use helpline::store::{KeyOptions, NewCall, Store};
use secrecy::SecretString;
use support::db::TestDb;
use support::{at, spawn_app};

/// The caller's own number (Twilio's `From`), a number keyed in for the call back, and a
/// recorded message.
const CALLER: &str = "+447700900123";
const KEYED: &str = "+447700900987";
const RECORDING: &str = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE0987";
/// What must appear in no text stored anywhere in the database.
const NEEDLES: &[&str] = &[
    "7700900123",
    "7700900987",
    "RE0987",
    "RE0123",
    "api.twilio.com",
];

/// Runs `$name(&db)` once on SQLite and once on PostgreSQL (skipped, with the reason
/// printed, when there is no PostgreSQL and HELPLINE_REQUIRE_ALL_TESTS is not set).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(&super::TestDb::sqlite()).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(db) = super::TestDb::postgres().await else { return };
                super::$name(&db).await;
            }
        }
    )*};
}

on_both_backends!(
    sealed_in_every_column_and_read_back_in_plain_text,
    rows_stored_before_encryption_are_sealed_at_the_next_start,
    rekey_moves_every_value_to_the_new_key,
    a_missing_key_is_refused_never_replaced,
);

/// The database as it is on disk, without the store (which would open what it reads).
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    async fn open(db: &TestDb) -> Raw {
        if db.is_postgres() {
            Raw::Postgres(sqlx::PgPool::connect(db.url()).await.unwrap())
        } else {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(db.url())
                .unwrap()
                .create_if_missing(true);
            Raw::Sqlite(sqlx::SqlitePool::connect_with(options).await.unwrap())
        }
    }

    async fn run(&self, sql: &str) {
        match self {
            Raw::Sqlite(p) => drop(sqlx::raw_sql(sql).execute(p).await.unwrap()),
            Raw::Postgres(p) => drop(sqlx::raw_sql(sql).execute(p).await.unwrap()),
        }
    }

    async fn strings(&self, sql: &str) -> Vec<String> {
        match self {
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
            Raw::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
        }
    }

    /// Every text value in every table, as (table.column, value), in a stable order.
    async fn every_text(&self) -> Vec<(String, String)> {
        use sqlx::{Column, Row};
        let tables = self
            .strings(match self {
                Raw::Sqlite(_) => {
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                }
                Raw::Postgres(_) => {
                    "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                     WHERE table_schema = 'public' ORDER BY 1"
                }
            })
            .await;
        assert!(tables.iter().any(|t| t == "enquiries"), "{tables:?}");
        let mut out = Vec::new();
        for table in tables {
            let sql = format!("SELECT * FROM {table}");
            macro_rules! collect {
                ($pool:expr) => {
                    // Not prepared once and kept: the schema changes under it (migration 0010).
                    for row in sqlx::query(&sql)
                        .persistent(false)
                        .fetch_all($pool)
                        .await
                        .unwrap()
                    {
                        for (i, column) in row.columns().iter().enumerate() {
                            if let Ok(Some(v)) = row.try_get::<Option<String>, _>(i) {
                                out.push((format!("{table}.{}", column.name()), v));
                            }
                        }
                    }
                };
            }
            match self {
                Raw::Sqlite(p) => collect!(p),
                Raw::Postgres(p) => collect!(p),
            }
        }
        out.sort();
        out
    }

    /// The schema as it was before encryption (migrations 0001 to 0009 only).
    async fn migrate_before_encryption(&self, db: &TestDb) {
        let backend = if db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        };
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let old = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.as_str() < "0010" {
                std::fs::copy(&path, old.path().join(&name)).unwrap();
            }
        }
        let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
        match self {
            Raw::Sqlite(p) => migrator.run(p).await.unwrap(),
            Raw::Postgres(p) => migrator.run(p).await.unwrap(),
        }
    }

    /// Rows as a version before encryption stored them: numbers and recordings in plain text.
    async fn insert_plaintext_rows(&self) {
        let started = at("2026-11-24T10:00:00Z");
        let due = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        macro_rules! insert {
            ($pool:expr) => {{
                let p = $pool;
                for (sid, caller) in [("CA-OLD", CALLER), ("CA-OLD2", "anonymous")] {
                    sqlx::query(
                        "INSERT INTO calls (call_sid, caller, started_at, in_hours) VALUES ($1, $2, $3, TRUE)",
                    )
                    .bind(sid)
                    .bind(caller)
                    .bind(started)
                    .execute(p)
                    .await
                    .unwrap();
                }
                for (name, value) in [
                    ("callback_number", KEYED),
                    ("trust", "alder-hey"),
                    ("category", "data-concern"),
                    ("recording_url", RECORDING),
                    ("recording_duration", "9"),
                ] {
                    sqlx::query("INSERT INTO call_answers (call_sid, name, value) VALUES ('CA-OLD', $1, $2)")
                        .bind(name)
                        .bind(value)
                        .execute(p)
                        .await
                        .unwrap();
                }
                sqlx::query(
                    "INSERT INTO enquiries (id, reference, call_sid, callback_number, trust, category, \
                     recording_url, recording_duration, created_at, callback_due) \
                     VALUES ('E-OLD', '123456', 'CA-OLD', $1, 'alder-hey', 'data-concern', $2, 9, $3, $4)",
                )
                .bind(KEYED)
                .bind(RECORDING)
                .bind(started)
                .bind(due)
                .execute(p)
                .await
                .unwrap();
                sqlx::query("INSERT INTO recording_deletions (recording_url, queued_at) VALUES ($1, $2)")
                    .bind("https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE0123")
                    .bind(started)
                    .execute(p)
                    .await
                    .unwrap();
            }};
        }
        match self {
            Raw::Sqlite(p) => insert!(p),
            Raw::Postgres(p) => insert!(p),
        }
    }
}

/// No stored text holds a number or a recording reference in plain text.
fn assert_nothing_in_plain_text(texts: &[(String, String)]) {
    for (column, value) in texts {
        for needle in NEEDLES {
            assert!(
                !value.contains(needle),
                "{column} holds `{needle}` in plain text"
            );
        }
    }
}

/// The sealed columns' values all start `v1:<key id>:`.
async fn assert_sealed_under(raw: &Raw, keys: &Keyring) {
    let head = keys.current_head();
    for sql in [
        "SELECT caller FROM calls WHERE caller IS NOT NULL",
        "SELECT callback_number FROM enquiries",
        "SELECT recording_url FROM enquiries WHERE recording_url IS NOT NULL",
        "SELECT value FROM call_answers WHERE name IN ('callback_number', 'recording_url')",
        "SELECT recording_url FROM recording_deletions",
    ] {
        for value in raw.strings(sql).await {
            assert!(value.starts_with(&head), "{sql}: not under {head}");
        }
    }
}

fn call(sid: &str, caller: &str) -> NewCall {
    NewCall {
        call_sid: sid.into(),
        caller: Some(caller.into()),
        started_at: at("2026-11-24T10:00:00Z"),
        in_hours: true,
        simulated: false,
        test_call: false,
    }
}

fn enquiry(sid: &str, number: &str, recording: Option<&str>) -> NewEnquiry {
    NewEnquiry {
        call_sid: sid.into(),
        callback_number: UkNumber::parse(number).unwrap(),
        trust: Trust::AlderHey,
        category: Category::DataConcern,
        recording: recording.map(|url| Recording {
            url: url.into(),
            duration_seconds: 9,
        }),
        created_at: at("2026-11-24T10:05:00Z"),
        callback_due: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        source: Source::CallbackRequest,
        waiting_since: at("2026-11-24T10:05:00Z"),
    }
}

/// Configured keys: `current`, reading `old` too.
fn configured(current: &str, old: &[&str]) -> KeyOptions {
    KeyOptions {
        settings: DataKeySettings {
            current: Some(SecretString::from(current.to_string())),
            current_place: "HELPLINE_DATA_KEY".into(),
            old: old
                .iter()
                .map(|k| SecretString::from(k.to_string()))
                .collect(),
        },
        ..KeyOptions::default()
    }
}

/// A call from [`CALLER`] that gave [`KEYED`] to ring back, a hospital and a recorded
/// message ([`RECORDING`]), and its enquiry.
async fn answered_with_enquiry(store: &dyn Store, sid: &str) -> helpline::enquiries::Enquiry {
    store.record_call(&call(sid, CALLER)).await.unwrap();
    for answer in [
        Answer::CallbackNumber(UkNumber::parse(KEYED).unwrap()),
        Answer::Trust(Trust::AlderHey),
        Answer::Message(Recording {
            url: RECORDING.into(),
            duration_seconds: 9,
        }),
    ] {
        store.save_answer(sid, &answer).await.unwrap();
    }
    store
        .create_enquiry(&enquiry(sid, KEYED, Some(RECORDING)))
        .await
        .unwrap()
}

/// Everything the first call stored reads back in plain text.
async fn reads_back(store: &dyn Store, sid: &str) {
    let answers = store.answers(sid).await.unwrap();
    assert_eq!(answers.callback_number.unwrap().e164(), KEYED);
    assert_eq!(answers.message.unwrap().url, RECORDING);
    assert_eq!(answers.trust, Some(Trust::AlderHey), "unsealed answers too");
    let e = store.enquiry_for_call(sid).await.unwrap().unwrap();
    assert_eq!(e.callback_number, KEYED);
    assert_eq!(e.recording_url.as_deref(), Some(RECORDING));
    assert_eq!(
        store.call(sid).await.unwrap().unwrap().caller.as_deref(),
        Some(CALLER)
    );
}

async fn sealed_in_every_column_and_read_back_in_plain_text(db: &TestDb) {
    let store = helpline::store::connect(db.url()).await.unwrap();
    let keys = store.data_keys();
    store.record_call(&call("CA-2", CALLER)).await.unwrap();
    let e = answered_with_enquiry(store.as_ref(), "CA-1").await;
    assert_eq!(e.callback_number, KEYED);
    reads_back(store.as_ref(), "CA-1").await;
    assert_eq!(
        store.list_enquiries().await.unwrap()[0].callback_number,
        KEYED
    );
    // Lookups by number go through the hash.
    assert_eq!(store.open_enquiry_count(KEYED).await.unwrap(), 1);
    assert_eq!(
        store
            .open_enquiry_for_number(KEYED)
            .await
            .unwrap()
            .unwrap()
            .id,
        e.id
    );
    assert_eq!(store.open_enquiry_count(CALLER).await.unwrap(), 0);

    let raw = Raw::open(db).await;
    assert_nothing_in_plain_text(&raw.every_text().await);
    assert_sealed_under(&raw, &keys).await;
    assert_eq!(
        raw.strings("SELECT callback_hash FROM enquiries").await,
        vec![keys.lookup(Kind::PhoneNumber, KEYED)]
    );
    let callers = raw
        .strings("SELECT caller FROM calls ORDER BY call_sid")
        .await;
    assert_ne!(
        callers[0], callers[1],
        "one number, sealed twice, looks different"
    );
    let hashes = raw
        .strings("SELECT caller_hash FROM calls ORDER BY call_sid")
        .await;
    assert_eq!(hashes[0], hashes[1], "and hashes the same");

    // Retention: the recording queued for deletion at Twilio is sealed too, found by its hash.
    raw.run("UPDATE enquiries SET status = 'resolved', closed_at = created_at")
        .await;
    let later = at("2030-01-01T00:00:00Z");
    let batch = store.purge_batch(later, 100, later).await.unwrap();
    assert_eq!(
        batch.counts.recordings, 1,
        "the enquiry's and the answer's: one"
    );
    assert_nothing_in_plain_text(&raw.every_text().await);
    let pending = store.pending_recording_deletions(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].recording_url, RECORDING);
    store
        .recording_deletion_failed(RECORDING, later, "HTTP 503")
        .await
        .unwrap();
    assert_eq!(
        store.pending_recording_deletions(10).await.unwrap()[0].attempts,
        1
    );
    store.recording_deletion_done(RECORDING).await.unwrap();
    assert!(store
        .pending_recording_deletions(10)
        .await
        .unwrap()
        .is_empty());
}

async fn rows_stored_before_encryption_are_sealed_at_the_next_start(db: &TestDb) {
    let raw = Raw::open(db).await;
    raw.migrate_before_encryption(db).await;
    raw.insert_plaintext_rows().await;
    assert!(raw
        .every_text()
        .await
        .iter()
        .any(|(_, v)| v.contains("7700900987")));

    // The new version migrates, then seals what is in plain text before it serves.
    let store = helpline::store::connect(db.url()).await.unwrap();
    let keys = store.data_keys();
    let sealed = raw.every_text().await;
    assert_nothing_in_plain_text(&sealed);
    assert_sealed_under(&raw, &keys).await;
    reads_back(store.as_ref(), "CA-OLD").await;
    assert_eq!(
        store
            .call("CA-OLD2")
            .await
            .unwrap()
            .unwrap()
            .caller
            .as_deref(),
        Some("anonymous")
    );
    assert_eq!(
        store.open_enquiry_count(KEYED).await.unwrap(),
        1,
        "found by the hash made for it"
    );
    assert_eq!(
        store.pending_recording_deletions(10).await.unwrap()[0].recording_url,
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE0123"
    );

    // Idempotent: the next start changes nothing.
    drop(helpline::store::connect(db.url()).await.unwrap());
    assert_eq!(raw.every_text().await, sealed);

    // A row an older instance writes meanwhile (plain text, no hash) still reads, and is
    // sealed at the next start.
    raw.run(&format!(
        "UPDATE calls SET caller = '{CALLER}', caller_hash = NULL WHERE call_sid = 'CA-OLD2'"
    ))
    .await;
    assert_eq!(
        store
            .call("CA-OLD2")
            .await
            .unwrap()
            .unwrap()
            .caller
            .as_deref(),
        Some(CALLER)
    );
    drop(helpline::store::connect(db.url()).await.unwrap());
    assert_nothing_in_plain_text(&raw.every_text().await);
}

async fn rekey_moves_every_value_to_the_new_key(db: &TestDb) {
    let (a_key, a) = DataKey::generate();
    let (b_key, b) = DataKey::generate();
    let (a, b) = (a.to_string(), b.to_string());
    let url = db.url();
    {
        let store = helpline::store::connect_keyed(url, None, &configured(&a, &[]))
            .await
            .unwrap();
        answered_with_enquiry(store.as_ref(), "CA-1").await;
        // A closed enquiry purged: its recording waits in the deletion queue, under A.
        store
            .create_enquiry(&enquiry("CA-GONE", CALLER, Some("https://r/RE0123")))
            .await
            .unwrap();
        Raw::open(db)
            .await
            .run("UPDATE enquiries SET status = 'resolved', closed_at = created_at WHERE call_sid = 'CA-GONE'")
            .await;
        let later = at("2026-12-31T00:00:00Z");
        assert_eq!(
            store
                .purge_batch(later, 10, later)
                .await
                .unwrap()
                .counts
                .recordings,
            1
        );
    }

    // A new key without the old one: the start stops, naming the key it lacks.
    let e = helpline::store::connect_keyed(url, None, &configured(&b, &[]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(a_key.id()) && e.contains("HELPLINE_DATA_KEYS_OLD"),
        "{e}"
    );

    // With the old key listed, everything reads; lookups find rows hashed under it.
    let rotated = helpline::store::connect_keyed(url, None, &configured(&b, &[&a]))
        .await
        .unwrap();
    reads_back(rotated.as_ref(), "CA-1").await;
    assert_eq!(rotated.open_enquiry_count(KEYED).await.unwrap(), 1);
    rotated
        .create_enquiry(&enquiry("CA-2", KEYED, None))
        .await
        .unwrap();
    assert_eq!(
        rotated.open_enquiry_count(KEYED).await.unwrap(),
        2,
        "one hashed under each key"
    );

    // A dry run counts and changes nothing; the rekey moves everything; again, nothing.
    let before = Raw::open(db).await.every_text().await;
    let dry = helpline::store::rekey(url, &configured(&b, &[&a]), true)
        .await
        .unwrap();
    assert_eq!(Raw::open(db).await.every_text().await, before);
    assert_eq!(
        (
            dry.resealed.calls,
            dry.resealed.enquiries,
            dry.resealed.call_answers,
            dry.resealed.recording_deletions
        ),
        (1, 1, 2, 1),
        "{dry:?}"
    );
    assert!(dry.census.totals().contains_key(a_key.id()), "{dry:?}");
    let done = helpline::store::rekey(url, &configured(&b, &[&a]), false)
        .await
        .unwrap();
    assert_eq!(done.resealed, dry.resealed);
    assert_eq!(done.key, b_key.id());
    assert_eq!(done.old_keys, vec![a_key.id().to_string()]);
    assert_eq!(
        done.census.totals().keys().collect::<Vec<_>>(),
        vec![b_key.id()],
        "{done:?}"
    );
    let again = helpline::store::rekey(url, &configured(&b, &[&a]), false)
        .await
        .unwrap();
    assert_eq!(again.resealed.rows(), 0);

    // The old key can go now.
    let only_b = helpline::store::connect_keyed(url, None, &configured(&b, &[]))
        .await
        .unwrap();
    reads_back(only_b.as_ref(), "CA-1").await;
    assert_eq!(only_b.open_enquiry_count(KEYED).await.unwrap(), 2);
    assert_eq!(
        only_b.pending_recording_deletions(10).await.unwrap()[0].recording_url,
        "https://r/RE0123"
    );
    let raw = Raw::open(db).await;
    assert_sealed_under(&raw, &only_b.data_keys()).await;
    assert_nothing_in_plain_text(&raw.every_text().await);
}

async fn a_missing_key_is_refused_never_replaced(db: &TestDb) {
    if db.is_postgres() {
        // PostgreSQL: no key file to make (instances must share the key); refused outside
        // development, which uses the published development key.
        let e = helpline::store::connect_keyed(db.url(), None, &KeyOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("HELPLINE_DATA_KEY: PostgreSQL needs"), "{e}");
        assert!(e.contains("helpline keys generate"), "{e}");
        let dev = helpline::store::connect(db.url()).await.unwrap();
        assert_eq!(
            dev.data_keys().current_id(),
            Keyring::development().current_id()
        );
        return;
    }
    // SQLite: a key file beside the database, made at the first start, readable by its owner.
    let store = helpline::store::connect(db.url()).await.unwrap();
    let file = db.dir().unwrap().join("helpline-data.key");
    assert!(file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let id = store.data_keys().current_id().to_string();
    assert_eq!(
        helpline::store::connect(db.url())
            .await
            .unwrap()
            .data_keys()
            .current_id(),
        id,
        "the same key at every start"
    );
    store
        .create_enquiry(&enquiry("CA-1", KEYED, None))
        .await
        .unwrap();
    drop(store);
    // The key lost: a new one would read nothing, so none is made.
    let kept = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let e = helpline::store::connect(db.url())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("HELPLINE_DATA_KEY: ") && e.contains("is missing") && e.contains("restore"),
        "{e}"
    );
    assert!(!file.exists(), "no new key file");
    std::fs::write(&file, kept).unwrap();
    let back = helpline::store::connect(db.url()).await.unwrap();
    assert_eq!(
        back.enquiry_for_call("CA-1")
            .await
            .unwrap()
            .unwrap()
            .callback_number,
        KEYED
    );
}

/// Whole calls through the webhooks: afterwards the raw database (every text column, and on
/// SQLite the file's bytes) holds neither the callers' numbers nor the recording, while the
/// service and the command line still read them.
#[tokio::test]
async fn after_real_calls_the_database_holds_no_number_or_recording_in_plain_text() {
    let app = spawn_app("2026-11-24T10:00:00Z").await;
    // A request for a call back on the caller's own number, with a message.
    let mut call = app.call_from(CALLER).await;
    for key in ["2", "1", "2", "1"] {
        call.press(key).await;
    }
    call.leave_message(14).await;
    assert!(call.ended());
    // One on a number keyed in.
    let mut other = app.call_from("+447700900555").await;
    for key in ["2", "2", "07700900987#", "1", "1", "3"] {
        other.press(key).await;
    }
    other.silence().await;
    assert!(other.ended(), "{}", other.last());

    let enquiries = app.store.list_enquiries().await.unwrap();
    let mut numbers: Vec<&str> = enquiries
        .iter()
        .map(|e| e.callback_number.as_str())
        .collect();
    numbers.sort();
    assert_eq!(numbers, vec![CALLER, KEYED]);
    let first = app
        .store
        .enquiry_for_call(&call.sid)
        .await
        .unwrap()
        .unwrap();
    assert!(first.recording_url.unwrap().ends_with("RE0123"));
    assert_eq!(
        app.store
            .call(&other.sid)
            .await
            .unwrap()
            .unwrap()
            .caller
            .as_deref(),
        Some("+447700900555")
    );
    assert_eq!(app.store.open_enquiry_count(KEYED).await.unwrap(), 1);

    let raw = Raw::open(&app.db).await;
    let texts = raw.every_text().await;
    assert_nothing_in_plain_text(&texts);
    assert!(!texts.iter().any(|(_, v)| v.contains("7700900555")));
    assert_sealed_under(&raw, &app.store.data_keys()).await;

    if let Some(dir) = app.db.dir() {
        // The file itself, and its write-ahead log: not a byte of them in plain text.
        for name in ["helpline.db", "helpline.db-wal"] {
            let Ok(bytes) = std::fs::read(dir.join(name)) else {
                continue;
            };
            for needle in NEEDLES.iter().chain(&["7700900555"]) {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{name} holds `{needle}`"
                );
            }
        }
        // The command line reads them with the same key (the key file beside the database).
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_helpline"))
            .args(["enquiries", "list", "--json"])
            .env("DATABASE_URL", app.db.url())
            .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
            .env_remove("HELPLINE_DATA_KEY")
            .env_remove("HELPLINE_CONFIG")
            .output()
            .unwrap();
        let json = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{json}");
        assert!(json.contains(CALLER) && json.contains(KEYED), "{json}");
    }
}

/// `helpline keys generate` and `helpline rekey`: from the key file made at the first start
/// to a configured key, by the command line, with the service's data still readable.
#[tokio::test]
async fn the_command_line_moves_the_data_to_a_configured_key() {
    let db = TestDb::sqlite();
    let store = helpline::store::connect(db.url()).await.unwrap();
    store.record_call(&call("CA-1", CALLER)).await.unwrap();
    store
        .create_enquiry(&enquiry("CA-1", KEYED, Some(RECORDING)))
        .await
        .unwrap();
    let file_key = store.data_keys().current_id().to_string();
    drop(store);
    let helpline = |args: &[&str], key: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_helpline"))
            .args(args)
            .env("DATABASE_URL", db.url())
            .env("HELPLINE_DATA_KEY", key)
            .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
            .env_remove("HELPLINE_DATA_KEYS_OLD")
            .env_remove("HELPLINE_CONFIG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, key, stderr) = helpline(&["keys", "generate"], "");
    assert!(ok, "{stderr}");
    let new_id = DataKey::parse(&key).unwrap().id().to_string();
    assert!(stderr.contains(&new_id), "{stderr}");
    let key = key.trim();

    let (ok, out, err) = helpline(&["rekey", "--dry-run"], key);
    assert!(ok, "{out}{err}");
    assert!(out.contains("would re-encrypt"), "{out}");
    assert!(out.contains(&format!("older keys: {file_key}")), "{out}");
    let (ok, out, err) = helpline(&["rekey"], key);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!(
            "re-encrypted under {new_id}: 1 calls, 1 enquiries"
        )),
        "{out}"
    );
    assert!(out.contains("(current)"), "{out}");
    assert!(!out.contains("7700900"), "counts only: {out}");
    let (ok, out, err) = helpline(&["rekey", "--json"], key);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["resealed"]["enquiries"], 0);
    assert_eq!(report["key"], new_id.as_str());

    // The key file can go: the configured key reads everything.
    std::fs::remove_file(db.dir().unwrap().join("helpline-data.key")).unwrap();
    let (ok, out, err) = helpline(&["enquiries", "list", "--json"], key);
    assert!(ok, "{err}");
    assert!(out.contains(KEYED), "{out}");
    // A malformed key stops the command, naming the setting and the fix.
    let (ok, _, err) = helpline(&["enquiries", "list"], "dG9vIHNob3J0");
    assert!(!ok);
    assert!(
        err.contains("HELPLINE_DATA_KEY") && err.contains("helpline keys generate"),
        "{err}"
    );
}
