//! `helpline dev seed`: a database full of realistic made-up calls, for benchmarking the
//! statistics (and for trying the dashboard on a busy line). Nothing here runs in `serve`.
//!
//! The database is created and migrated by [`crate::store::connect`]; the rows are then
//! written on a connection of our own, in transactions of 100,000 calls (with everything
//! that goes with them), with multi-row `INSERT`s of up to 500 rows (within SQLite's limit
//! of 32,766 parameters a statement). The SQL is written once for SQLite and PostgreSQL
//! alike; only the placeholders differ (`$n` on PostgreSQL, `?` on SQLite: see
//! `Backend::NUMBERED`). The rows are made on a second thread while the first writes, in
//! batches of 25,000 calls, each batch's calls, steps and answers sorted by call SID so
//! that those random-keyed primary keys fill in order (a million calls then take about
//! 40 s on two cores rather than 50). On SQLite our connection runs with
//! `synchronous = OFF` and a 256 MiB page cache, so an operating-system crash during the
//! load can corrupt the file: seed throwaway databases (it refuses one that already has
//! calls). The schema, indexes and foreign keys included, is the service's, unchanged.
//!
//! Everything comes from one `StdRng` seeded with 42, so two seeds with the same `calls`,
//! `days` and `now` write the same rows.
//!
//! # The made-up line
//!
//! **When people call.** Calls fall in the `days` before `now`. Each London date gets a
//! share: a surge when the incident is announced (the first day of the period ×6, decaying
//! with a four-day time constant, so the first week is busy), Mondays and the first working
//! day after a bank holiday ×1.3, Saturdays ×0.3, Sundays ×0.25, bank holidays on weekdays
//! ×0.35. Within a working day 83% of calls come in opening hours (Monday to Friday
//! 09:00–16:00 Europe/London; the first hour busiest, a dip at lunchtime) and the rest
//! before opening and in the evening, a few at night; days off are spread over daytime and
//! evening. That puts about 75% of all calls in opening hours. `in_hours` is true exactly
//! when the call started in opening hours on a working day, bank holidays excluded (the
//! embedded England and Wales calendar, as the service decides), so every in-hours call is
//! Monday to Friday 09:00–16:00 London time.
//!
//! **Who calls.** SIDs are `CA` and 32 random hex digits. 1% of calls are `simulated` (as
//! `helpline simulate` writes them, with an `SM` SID) so the statistics can prove they leave
//! them out. Callers are mobiles `+447700` and six digits (78%), Liverpool landlines `+44151`
//! and seven digits (20%), or `anonymous` (2%). Numbers repeat, as repeat callers do.
//!
//! **What they choose.** Steps are recorded as the service records them (node, input,
//! outcome, from seq 0, and the `path` each took: the engine's own [`route`] through the
//! built-in call flow from where the outcome leads, with the line open or closed at the
//! step and the caller's number known or withheld; worked out once per combination): `welcome`/`start`/`start-open` or
//! `start-closed` first, then the main menu (`main_menu`, input `dtmf`, or `speech` for 8%
//! of choices). First choices: 1 latest update 35%, 2 call back 20%, 3 fraud guidance 15%,
//! 4 appointments 10%, 0 adviser 15%, and 5% hang up without choosing (a quarter of those
//! stay silent and hear `no-input`, `no-input`, `gave-up`). After the update 20% choose
//! again (4 or 3); after the fraud advice some hear it again, go back, or ask for a call
//! back (7%); after the appointments message 10% hear the update. An adviser caller when
//! the line is closed hears so and is back at the menu: 30% then ask for a call back.
//!
//! **Call backs.** The request takes the real nodes: `confirm_number` (or `enter_number`
//! and `confirm_entered_number` for a withheld number, given a made-up mobile),
//! `choose_trust` (Alder Hey 50%, Liverpool Heart and Chest 35%, Royal Liverpool 10%, not
//! sure 5%), `choose_category` (data concern 70%, contacted by a claimant 20%, other 10%),
//! `record_message` (a message from 25%); 4% hang up at each of the three questions. Answers
//! go to `call_answers` as they are given. Adviser callers also get a `trust` answer, with
//! the same mix, so that queue figures can be split by hospital (the flow itself does not ask
//! before the queue).
//!
//! **The adviser queue** (adviser callers while the line is open): bridged 75% after
//! 5–600 s (skewed short: median about 80 s) then 1–15 minutes with an adviser; hung up
//! 18% after 1–300 s (15% of those within 5 s, short abandons); left 7% after 20–600 s by
//! pressing 1, going on to the call-back questions with `waiting_since` the time they joined
//! the queue. A caller who hung up after 30 s or more, from a number we can ring, is listed
//! as `missed-in-queue` (trust from the answer, category `other`), as the service does
//! (never for simulated calls). Every call ends `completed`, with its duration.
//!
//! **Enquiries** (about 21% of calls): id a UUID, reference six digits not starting with 0,
//! unique (drawn without replacement from the 900,000 possible), `callback_due` two working
//! days after the London date of the request. Their lives: resolved 72%, unreachable 10%
//! (three unanswered attempts), wrong number 3%, follow-up 5% (open), retry 5% (one or two
//! unanswered attempts and no more yet: open, `next_attempt_on` the next working day),
//! never tried 5% (still `new`). Before a resolution there may be unanswered attempts
//! (no answer 65%, voicemail 35%). The first attempt comes the same day (35%, when the line
//! is still open), the next working day (40%) or the one after (25%), all within the
//! promise, except for 15% that come 3–6 working days later (late). Later attempts come on
//! the next working day (80%) or the one after. Attempts are made in opening hours on
//! working days by one of 12 handlers (`handler01@example.nhs.uk`…, role handler, no
//! password), who may change between attempts. Nothing happens after `now`: attempts not
//! yet made are left out (so recent enquiries are mostly `new` or `retry`), as are the ends,
//! steps and answers of calls still going on.
//!
//! Not seeded: texts (they are opt-in), notes, claims, enquiries merged into a later request
//! or counted as missed calls on an open one (numbers repeat only by chance here).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, SubsecRound, TimeZone,
    Timelike, Utc, Weekday,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Arguments, ConnectOptions, Connection, Database, Executor, FromRow, IntoArguments};

use crate::crypto::{Keyring, Kind};
use crate::flows::engine::{route, Context};
use crate::flows::model::NodeKind;
use crate::flows::Flow;
use crate::hours::{BankHolidays, OpeningHours, WeeklySchedule, LONDON};
use crate::store::{redact_url, StoreError};

/// The random generator's seed: the same arguments give the same rows (but for the
/// sealed numbers and recordings, each sealed with a fresh random nonce).
const SEED: u64 = 42;
/// Handler accounts that make the call-back attempts.
const HANDLERS: usize = 12;
/// About 21% of calls become enquiries, and references are six digits (900,000 of them).
const MAX_CALLS: u64 = 3_500_000;
/// Rows per `INSERT` statement.
const ROWS_PER_INSERT: usize = 500;
/// SQLite's limit on bound parameters in one statement (PostgreSQL allows 65,535).
const MAX_BIND_PARAMS: usize = 32_766;
/// Calls (with their steps, answers, enquiries and attempts) per transaction.
const CALLS_PER_TRANSACTION: usize = 100_000;
/// Calls per batch of rows handed from the generator to the writer.
const CALLS_PER_CHUNK: usize = 25_000;

/// Opening hours, as seconds after London midnight.
const OPENS: u32 = 9 * 3600;
const CLOSES: u32 = 16 * 3600;
/// The service's defaults: hang-ups after this long in the queue are listed for a call back…
const MISSED_AFTER_SECONDS: i64 = 30;
/// … a call back is promised within this many working days…
const CALLBACK_WORKING_DAYS: u32 = 2;
/// … and this many unanswered attempts in a row make an enquiry unreachable.
const MAX_UNANSWERED: u32 = 3;

const SIMULATED_SHARE: f64 = 0.01;
/// Of the calls on a working day, the share in opening hours.
const IN_HOURS_ON_WORKING_DAYS: f64 = 0.83;

/// Relative calls by London hour (index 0 = midnight to 1am) in opening hours on a working day…
const OPEN_PROFILE: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.6, 1.3, 1.1, 0.9, 1.0, 1.0, 0.9, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0,
];
/// … outside them on a working day…
const CLOSED_PROFILE: [f64; 24] = [
    0.05, 0.03, 0.02, 0.02, 0.03, 0.08, 0.2, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.8,
    0.6, 0.5, 0.4, 0.3, 0.2, 0.1,
];
/// … and on weekends and bank holidays.
const DAY_OFF_PROFILE: [f64; 24] = [
    0.05, 0.03, 0.02, 0.02, 0.02, 0.05, 0.1, 0.3, 0.6, 0.9, 1.0, 1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.7,
    0.6, 0.5, 0.4, 0.3, 0.2, 0.1,
];

const TRUSTS: [((&str, &str), f64); 4] = [
    (("alder-hey", "option-1"), 0.50),
    (("liverpool-heart-and-chest", "option-2"), 0.35),
    (("royal-liverpool", "option-3"), 0.10),
    (("not-sure", "option-4"), 0.05),
];
const CATEGORIES: [((&str, &str), f64); 3] = [
    (("data-concern", "option-1"), 0.70),
    (("contacted-by-claimant", "option-2"), 0.20),
    (("other", "option-3"), 0.10),
];

/// Fills `url` with `calls` made-up calls over the `days` before `now`, under the
/// development key defaults (a key file beside a SQLite file); returns a summary.
pub async fn seed(
    url: &str,
    calls: u64,
    days: u32,
    now: DateTime<Utc>,
) -> Result<String, crate::store::StoreError> {
    seed_with_keys(
        url,
        &crate::store::KeyOptions::development(),
        calls,
        days,
        now,
    )
    .await
}

/// As [`seed`], the numbers and recordings sealed with the keys `keys` decide (those the
/// service will read them with).
pub async fn seed_with_keys(
    url: &str,
    keys: &crate::store::KeyOptions,
    calls: u64,
    days: u32,
    now: DateTime<Utc>,
) -> Result<String, crate::store::StoreError> {
    let began = Instant::now();
    let now = now.trunc_subsecs(0);
    let days = days.max(1);
    let sqlite = url.starts_with("sqlite:");
    if sqlite && (url.contains(":memory:") || url.contains("mode=memory")) {
        // Our own connection would see a different, empty database.
        return Err(StoreError::UnsupportedUrl(format!(
            "{} (seed a database file, not an in-memory database)",
            redact_url(url)
        )));
    }
    if calls > MAX_CALLS {
        return Err(StoreError::Corrupt(format!(
            "{calls} calls asked for: at most {MAX_CALLS} can be seeded (enquiry references are six digits)"
        )));
    }
    // Creates and migrates the database (and checks the URL), and settles its keys.
    let keys = crate::store::connect_keyed(url, None, keys)
        .await?
        .data_keys();

    let holidays = BankHolidays::embedded()
        .map_err(|e| StoreError::Corrupt(format!("the embedded bank-holiday calendar: {e}")))?;
    let hours = OpeningHours::new(WeeklySchedule::default(), Arc::new(holidays));
    let flow = crate::flows::builtin()
        .map_err(|e| StoreError::Corrupt(format!("the built-in call flow: {e}")))?;
    let generator = Generator::new(hours, Routes::new(flow), calls, days, now, keys);

    let counts = if sqlite {
        let options = SqliteConnectOptions::from_str(url)?
            .synchronous(SqliteSynchronous::Off)
            .foreign_keys(true)
            .busy_timeout(StdDuration::from_secs(5))
            // 256 MiB: the random-keyed indexes stay in memory while they grow.
            .pragma("cache_size", "-262144")
            .pragma("temp_store", "MEMORY")
            .disable_statement_logging();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let counts = load(&pool, generator).await;
        // Into the database file now (rather than whenever it is next opened), and the
        // write-ahead log emptied: the store's own connections outlive ours.
        let checkpoint = match counts {
            Ok(_) => sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pool)
                .await
                .map(|_| ()),
            Err(_) => Ok(()),
        };
        pool.close().await;
        let counts = counts?;
        checkpoint?;
        counts
    } else {
        let options = PgConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let counts = load(&pool, generator).await;
        pool.close().await;
        counts?
    };
    Ok(format!(
        "seeded {} in {:.1} s: {} calls over {days} days ({} in hours, {} simulated), {} steps, \
         {} answers, {} enquiries ({} open), {} call-back attempts by {HANDLERS} handlers",
        redact_url(url),
        began.elapsed().as_secs_f64(),
        counts.calls,
        counts.in_hours,
        counts.simulated,
        counts.steps,
        counts.answers,
        counts.enquiries,
        counts.open,
        counts.attempts,
    ))
}

// --- Writing ----------------------------------------------------------------------------

/// A value to bind, typed so that PostgreSQL gets the column's type (NULLs included).
#[derive(Debug, Clone)]
enum Val {
    Text(String),
    Const(&'static str),
    OptText(Option<String>),
    /// Text shared by many rows (a step's path).
    OptShared(Option<Arc<str>>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Date(NaiveDate),
    OptDate(Option<NaiveDate>),
}

/// The two databases, as far as writing rows goes.
trait Backend: Database {
    /// Placeholders `$1, $2…` (PostgreSQL), or plain `?` (SQLite). sqlx binds a numbered
    /// parameter on SQLite by asking for its name, which SQLite finds by a linear search:
    /// binding a statement of n numbered parameters costs O(n²). At 500 rows a statement a
    /// million calls took over seven minutes, 80% of it looking up parameter names; even
    /// at 15 rows numbered placeholders were 1.4× slower. Plain `?` are bound in order at
    /// no cost.
    const NUMBERED: bool;

    fn bind<'q>(args: &mut Self::Arguments<'q>, value: &'q Val) -> Result<(), BoxDynError>;
}

macro_rules! backend {
    ($db:ty, $numbered:expr) => {
        impl Backend for $db {
            const NUMBERED: bool = $numbered;

            fn bind<'q>(
                args: &mut <$db as Database>::Arguments<'q>,
                value: &'q Val,
            ) -> Result<(), BoxDynError> {
                match value {
                    Val::Text(s) => args.add(s.as_str()),
                    Val::Const(s) => args.add(*s),
                    Val::OptText(s) => args.add(s.as_deref()),
                    Val::OptShared(s) => args.add(s.as_deref()),
                    Val::Int(n) => args.add(*n),
                    Val::OptInt(n) => args.add(*n),
                    Val::Bool(b) => args.add(*b),
                    Val::Time(t) => args.add(*t),
                    Val::OptTime(t) => args.add(*t),
                    Val::Date(d) => args.add(*d),
                    Val::OptDate(d) => args.add(*d),
                }
            }
        }
    };
}
backend!(sqlx::Sqlite, false);
backend!(sqlx::Postgres, true);

/// A table and the columns we fill, in the order the values come.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
}

const CALLS: Table = Table {
    name: "calls",
    columns: &[
        "call_sid",
        "caller",
        "caller_hash",
        "started_at",
        "in_hours",
        "simulated",
        "ended_at",
        "duration_seconds",
        "final_status",
        "queue_joined_at",
        "queue_left_at",
        "queue_result",
        "queue_wait_seconds",
        "hung_up_in_queue",
    ],
};
const STEPS: Table = Table {
    name: "call_steps",
    columns: &["call_sid", "seq", "node", "input", "outcome", "at", "path"],
};
const ANSWERS: Table = Table {
    name: "call_answers",
    columns: &["call_sid", "name", "value"],
};
const ENQUIRIES: Table = Table {
    name: "enquiries",
    columns: &[
        "id",
        "reference",
        "call_sid",
        "callback_number",
        "trust",
        "category",
        "recording_url",
        "recording_duration",
        "status",
        "created_at",
        "callback_due",
        "source",
        "waiting_since",
        "attempts",
        "next_attempt_on",
        "closed_at",
        "unanswered",
        "callback_hash",
    ],
};
const ATTEMPTS: Table = Table {
    name: "callback_attempts",
    columns: &["enquiry_id", "handler_id", "at", "outcome"],
};
const USERS: Table = Table {
    name: "users",
    columns: &["id", "email", "role", "phone", "created_at", "updated_at"],
};

/// `INSERT INTO table (…) VALUES ($1, …), (…)` for `rows` rows (`?` for each value
/// unless `numbered`).
fn insert_sql(table: &Table, rows: usize, numbered: bool) -> String {
    let n = table.columns.len();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        table.name,
        table.columns.join(", ")
    );
    sql.reserve(rows * n * 7);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..n {
            if c > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push('$');
                sql.push_str(&(r * n + c + 1).to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// Rows for each table, made by the generator and written in one transaction.
#[derive(Debug, Default)]
struct Chunk {
    calls: Vec<Val>,
    steps: Vec<Val>,
    answers: Vec<Val>,
    enquiries: Vec<Val>,
    attempts: Vec<Val>,
}

impl Chunk {
    fn calls(&self) -> usize {
        self.calls.len() / CALLS.columns.len()
    }

    /// Calls, steps and answers in order of call SID (their primary keys, random): the
    /// indexes then fill in key order, page after page, instead of all over the place.
    fn sorted(mut self) -> Self {
        for (values, n) in [
            (&mut self.calls, CALLS.columns.len()),
            (&mut self.steps, STEPS.columns.len()),
            (&mut self.answers, ANSWERS.columns.len()),
        ] {
            let mut rows: Vec<Vec<Val>> = Vec::with_capacity(values.len() / n);
            let mut all = std::mem::take(values).into_iter();
            loop {
                let row: Vec<Val> = all.by_ref().take(n).collect();
                if row.is_empty() {
                    break;
                }
                rows.push(row);
            }
            // Stable: a call's steps stay in order.
            rows.sort_by(|a, b| key(a).cmp(key(b)));
            *values = rows.into_iter().flatten().collect();
        }
        self
    }
}

/// A row's first value, when it is text (the call SID).
fn key(row: &[Val]) -> &str {
    match row.first() {
        Some(Val::Text(s)) => s,
        _ => "",
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    calls: u64,
    in_hours: u64,
    simulated: u64,
    steps: u64,
    answers: u64,
    enquiries: u64,
    open: u64,
    attempts: u64,
}

/// Writes `values` (whole rows of `table`) in statements of up to [`ROWS_PER_INSERT`] rows.
async fn insert<DB>(
    conn: &mut DB::Connection,
    table: &Table,
    values: &[Val],
    full: &str,
) -> Result<(), StoreError>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let n = table.columns.len();
    let per = rows_per_insert(table);
    for batch in values.chunks(per * n) {
        let rows = batch.len() / n;
        let partial;
        let sql = if rows == per {
            full
        } else {
            partial = insert_sql(table, rows, DB::NUMBERED);
            partial.as_str()
        };
        let mut args = DB::Arguments::default();
        for v in batch {
            DB::bind(&mut args, v).map_err(sqlx::Error::Encode)?;
        }
        sqlx::query_with(sql, args).execute(&mut *conn).await?;
    }
    Ok(())
}

fn rows_per_insert(table: &Table) -> usize {
    ROWS_PER_INSERT.min(MAX_BIND_PARAMS / table.columns.len())
}

/// Checks the database is empty, adds the handlers, then writes the generator's chunks as
/// it makes them (on a thread of its own).
async fn load<DB>(pool: &sqlx::Pool<DB>, mut generator: Generator) -> Result<Counts, StoreError>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    let mut conn = pool.acquire().await?;
    for table in ["calls", "enquiries"] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await?;
        if n > 0 {
            return Err(StoreError::Corrupt(format!(
                "the database already has {n} {table}; seed an empty database"
            )));
        }
    }

    // The handlers (kept if they already exist: their ids are read back).
    let mut tx = conn.begin().await?;
    let users = generator.handler_rows();
    let sql = format!(
        "{} ON CONFLICT (email) DO NOTHING",
        insert_sql(&USERS, users.len() / USERS.columns.len(), DB::NUMBERED)
    );
    let mut args = DB::Arguments::default();
    for v in &users {
        DB::bind(&mut args, v).map_err(sqlx::Error::Encode)?;
    }
    sqlx::query_with(&sql, args).execute(&mut *tx).await?;
    let mut handlers = Vec::with_capacity(HANDLERS);
    for email in handler_emails() {
        let value = Val::Text(email);
        let mut args = DB::Arguments::default();
        DB::bind(&mut args, &value).map_err(sqlx::Error::Encode)?;
        let (id,): (String,) = sqlx::query_as_with("SELECT id FROM users WHERE email = $1", args)
            .fetch_one(&mut *tx)
            .await?;
        handlers.push(id);
    }
    tx.commit().await?;
    generator.handlers = handlers;

    let full: Vec<String> = [&CALLS, &STEPS, &ANSWERS, &ENQUIRIES, &ATTEMPTS]
        .iter()
        .map(|t| insert_sql(t, rows_per_insert(t), DB::NUMBERED))
        .collect();
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Chunk>(1);
    let producer =
        tokio::task::spawn_blocking(move || generator.run(|c| sender.blocking_send(c).is_ok()));
    let mut in_tx = 0;
    let mut tx = conn.begin().await?;
    while let Some(chunk) = receiver.recv().await {
        in_tx += chunk.calls();
        let tables = [
            (&CALLS, &chunk.calls),
            (&STEPS, &chunk.steps),
            (&ANSWERS, &chunk.answers),
            (&ENQUIRIES, &chunk.enquiries),
            (&ATTEMPTS, &chunk.attempts),
        ];
        for ((table, values), full) in tables.into_iter().zip(&full) {
            insert::<DB>(&mut tx, table, values, full).await?;
        }
        if in_tx >= CALLS_PER_TRANSACTION {
            tx.commit().await?;
            tx = conn.begin().await?;
            in_tx = 0;
        }
    }
    // A generator that failed leaves its last transaction uncommitted.
    let counts = producer
        .await
        .map_err(|e| StoreError::Corrupt(format!("the generator stopped: {e}")))??;
    tx.commit().await?;
    // What the service keeps on an enquiry as it goes: whether its call counts, and when
    // it was first tried (the statistics work out the rest; see `stats::rollup`).
    for sql in DERIVED {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    Ok(counts)
}

/// Columns the service fills in as calls and attempts happen, derived from the rows.
const DERIVED: [&str; 2] = [
    "UPDATE enquiries SET not_counted = TRUE WHERE call_sid IN (SELECT call_sid FROM calls WHERE simulated = TRUE)",
    "UPDATE enquiries SET first_attempt_at = \
     (SELECT MIN(a.at) FROM callback_attempts a WHERE a.enquiry_id = enquiries.id) WHERE attempts > 0",
];

fn handler_emails() -> impl Iterator<Item = String> {
    (1..=HANDLERS).map(|i| format!("handler{i:02}@example.nhs.uk"))
}

// --- Dates and times --------------------------------------------------------------------

/// Working days (opening hours on the default schedule, bank holidays excluded), looked up
/// from a table over the period.
#[derive(Debug)]
struct Calendar {
    hours: OpeningHours,
    first: NaiveDate,
    working: Vec<bool>,
}

impl Calendar {
    fn new(hours: OpeningHours, first: NaiveDate, last: NaiveDate) -> Self {
        let working = first
            .iter_days()
            .take_while(|d| *d <= last)
            .map(|d| hours.is_working_day(d))
            .collect();
        Self {
            hours,
            first,
            working,
        }
    }

    fn is_working(&self, date: NaiveDate) -> bool {
        usize::try_from((date - self.first).num_days())
            .ok()
            .and_then(|i| self.working.get(i).copied())
            .unwrap_or_else(|| self.hours.is_working_day(date))
    }

    /// The `n`-th working day after `date`.
    fn working_days_after(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let mut day = date;
        let mut left = n;
        // A year without a working day cannot happen on the default schedule.
        for _ in 0..800 {
            if left == 0 {
                break;
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
            if self.is_working(day) {
                left -= 1;
            }
        }
        day
    }

    /// The line is open at `at` (no closures here).
    fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&LONDON);
        (OPENS..CLOSES).contains(&local.num_seconds_from_midnight())
            && self.is_working(local.date_naive())
    }
}

/// The instant of `secs` after midnight on `date` in London (a time lost to the clocks going
/// forward moves on an hour).
fn london(date: NaiveDate, secs: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_num_seconds_from_midnight_opt(secs.min(86_399), 0)
        .unwrap_or(NaiveTime::MIN);
    let local = date.and_time(time);
    match LONDON.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => LONDON
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
            .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

fn london_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&LONDON).date_naive()
}

fn london_secs(at: DateTime<Utc>) -> u32 {
    at.with_timezone(&LONDON).num_seconds_from_midnight()
}

fn normalised(profile: &[f64; 24]) -> [f64; 24] {
    let total: f64 = profile.iter().sum();
    profile.map(|w| if total > 0.0 { w / total } else { 0.0 })
}

/// How calls spread over a working day, and over a day off (each sums to 1).
fn profiles() -> ([f64; 24], [f64; 24]) {
    let open = normalised(&OPEN_PROFILE);
    let closed = normalised(&CLOSED_PROFILE);
    let mut working = [0.0; 24];
    for h in 0..24 {
        working[h] =
            open[h] * IN_HOURS_ON_WORKING_DAYS + closed[h] * (1.0 - IN_HOURS_ON_WORKING_DAYS);
    }
    (working, normalised(&DAY_OFF_PROFILE))
}

/// Seconds of hour `h` within `[lo, hi)` (seconds after midnight).
fn overlap(h: usize, lo: u32, hi: u32) -> (u32, u32) {
    let start = (h as u32 * 3600).max(lo);
    let end = ((h as u32 + 1) * 3600).min(hi);
    (start, end.max(start))
}

/// One London date of the period: how many calls, and when in the day they may fall.
#[derive(Debug)]
struct Day {
    date: NaiveDate,
    working: bool,
    /// Seconds after midnight: the part of the day inside the period.
    lo: u32,
    hi: u32,
    /// Weight of each hour, already limited to `[lo, hi)`.
    hours: [f64; 24],
    calls: u64,
}

// --- Generating -------------------------------------------------------------------------

/// Draws without replacement from the six-digit references not starting with 0.
#[derive(Debug)]
struct References {
    pool: Vec<u32>,
    used: usize,
}

impl References {
    fn new() -> Self {
        Self {
            pool: (100_000..1_000_000).collect(),
            used: 0,
        }
    }

    fn next(&mut self, rng: &mut StdRng) -> Option<u32> {
        if self.used >= self.pool.len() {
            return None;
        }
        let j = rng.random_range(self.used..self.pool.len());
        self.pool.swap(self.used, j);
        self.used += 1;
        self.pool.get(self.used - 1).copied()
    }
}

#[derive(Debug, Clone, Copy)]
enum Choice {
    Update,
    Callback,
    Fraud,
    Appointments,
    Adviser,
    HangUp,
}

const CHOICES: [(Choice, f64); 6] = [
    (Choice::Update, 0.35),
    (Choice::Callback, 0.20),
    (Choice::Fraud, 0.15),
    (Choice::Appointments, 0.10),
    (Choice::Adviser, 0.15),
    (Choice::HangUp, 0.05),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Resolved,
    FollowUp,
    NoAnswer,
    Voicemail,
    WrongNumber,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Resolved => "resolved",
            Outcome::FollowUp => "follow-up",
            Outcome::NoAnswer => "no-answer",
            Outcome::Voicemail => "voicemail",
            Outcome::WrongNumber => "wrong-number",
        }
    }
}

/// Where an enquiry's life is heading.
#[derive(Debug, Clone, Copy)]
enum Path {
    Resolved,
    Unreachable,
    WrongNumber,
    FollowUp,
    Retry,
    NeverTried,
}

const PATHS: [(Path, f64); 6] = [
    (Path::Resolved, 0.72),
    (Path::Unreachable, 0.10),
    (Path::WrongNumber, 0.03),
    (Path::FollowUp, 0.05),
    (Path::Retry, 0.05),
    (Path::NeverTried, 0.05),
];

/// The `path` of each step the seed records: (node, outcome, line open, caller's number
/// known) → the nodes the step took the caller through, space-separated (`None`: through
/// none, as after a hang-up in the queue), as the service would record it with the
/// built-in flow. Worked out once for each combination the seed meets.
#[derive(Debug)]
struct Routes {
    flow: Flow,
    known: HashMap<(&'static str, &'static str, bool, bool), Option<Arc<str>>>,
}

impl Routes {
    fn new(flow: Flow) -> Self {
        Self {
            flow,
            known: HashMap::new(),
        }
    }

    fn path(
        &mut self,
        node: &'static str,
        outcome: &'static str,
        open: bool,
        caller_known: bool,
    ) -> Result<Option<Arc<str>>, StoreError> {
        let key = (node, outcome, open, caller_known);
        if let Some(path) = self.known.get(&key) {
            return Ok(path.clone());
        }
        let path = match leads_to(&self.flow, node, outcome)? {
            None => None,
            Some(next) => {
                // Branches look only at the hours and whether the caller's number is known.
                let caller = if caller_known {
                    let number =
                        crate::phone::UkNumber::parse("+447700900000").ok_or_else(|| {
                            StoreError::Corrupt("a made-up caller's number is not valid".into())
                        })?;
                    Some(number)
                } else {
                    None
                };
                let ctx = Context {
                    open,
                    caller,
                    ..Default::default()
                };
                let nodes = route(&self.flow, next, &ctx);
                if nodes.is_empty() {
                    return Err(StoreError::Corrupt(format!(
                        "the built-in flow has no node {next} (after {node}, {outcome})"
                    )));
                }
                Some(Arc::from(nodes.join(" ")))
            }
        };
        self.known.insert(key, path.clone());
        Ok(path)
    }
}

/// Where a step's outcome at `node` takes the caller next in `flow` (the node the engine
/// walks on from), or `None` when it takes them through no node.
fn leads_to<'f>(flow: &'f Flow, node: &str, outcome: &str) -> Result<Option<&'f str>, StoreError> {
    let unknown = || {
        StoreError::Corrupt(format!(
            "the seed records outcome {outcome} at {node}, which the built-in flow does not have"
        ))
    };
    let n = flow.node(node).ok_or_else(unknown)?;
    let next: &str = match (&n.kind, outcome) {
        (_, "start-open" | "start-closed") if n.id == flow.settings.start => &n.id,
        (NodeKind::Menu { .. } | NodeKind::AskNumber { .. }, "no-input" | "invalid" | "repeat") => {
            &n.id
        }
        (NodeKind::Menu { retry, .. } | NodeKind::AskNumber { retry, .. }, "gave-up") => {
            &retry.give_up
        }
        (NodeKind::Menu { options, .. }, option) => {
            let key = option.strip_prefix("option-").ok_or_else(unknown)?;
            options
                .iter()
                .find(|o| key.chars().eq([o.key]))
                .map(|o| o.goto.as_str())
                .ok_or_else(unknown)?
        }
        (NodeKind::AskNumber { next, .. }, "number-given") => next,
        (NodeKind::Record { next, .. }, "message" | "no-message") => next,
        (NodeKind::Queue { on_leave, .. }, "left-queue") => on_leave,
        (NodeKind::Queue { on_failure, .. }, "queue-failed") => on_failure,
        (NodeKind::Queue { .. }, "bridged" | "hung-up-in-queue") => return Ok(None),
        _ => return Err(unknown()),
    };
    Ok(Some(next))
}

/// One step as recorded.
#[derive(Debug)]
struct Step {
    node: &'static str,
    input: &'static str,
    outcome: &'static str,
    at: DateTime<Utc>,
}

/// What a caller said in the menus, and when.
#[derive(Debug, Default)]
struct Answers {
    callback_number: Option<(String, DateTime<Utc>)>,
    trust: Option<(&'static str, DateTime<Utc>)>,
    category: Option<(&'static str, DateTime<Utc>)>,
    /// URL, seconds, when.
    recording: Option<(String, i64, DateTime<Utc>)>,
}

/// A call as it goes: the clock, the steps and the answers so far.
#[derive(Debug)]
struct Trace {
    t: DateTime<Utc>,
    steps: Vec<Step>,
    answers: Answers,
}

impl Trace {
    fn step(&mut self, node: &'static str, input: &'static str, outcome: &'static str) {
        self.steps.push(Step {
            node,
            input,
            outcome,
            at: self.t,
        });
    }
}

#[derive(Debug)]
struct Queue {
    joined: DateTime<Utc>,
    left: DateTime<Utc>,
    result: &'static str,
    wait: i64,
}

#[derive(Debug)]
struct NewEnquiry {
    call_sid: String,
    callback_number: String,
    trust: &'static str,
    category: &'static str,
    recording: Option<(String, i64)>,
    created_at: DateTime<Utc>,
    waiting_since: DateTime<Utc>,
    source: &'static str,
}

/// Makes the rows, in time order, chunk by chunk.
#[derive(Debug)]
struct Generator {
    rng: StdRng,
    calendar: Calendar,
    now: DateTime<Utc>,
    days: Vec<Day>,
    references: References,
    /// User ids of the handlers (filled in once they are stored).
    handlers: Vec<String>,
    counts: Counts,
    routes: Routes,
    /// Seal numbers and recordings as the store does (`crate::crypto`).
    keys: Arc<Keyring>,
}

impl Generator {
    fn new(
        hours: OpeningHours,
        routes: Routes,
        calls: u64,
        days: u32,
        now: DateTime<Utc>,
        keys: Arc<Keyring>,
    ) -> Self {
        let from = now - Duration::days(i64::from(days));
        let (first, today) = (london_date(from), london_date(now));
        let calendar = Calendar::new(hours, first - Duration::days(7), today + Duration::days(60));
        let (working_profile, day_off_profile) = profiles();
        let mut list = Vec::new();
        let mut previous_working = calendar.is_working(first - Duration::days(1));
        for (i, date) in first.iter_days().take_while(|d| *d <= today).enumerate() {
            let working = calendar.is_working(date);
            let lo = if date == first { london_secs(from) } else { 0 };
            let hi = if date == today {
                london_secs(now)
            } else {
                86_400
            };
            let profile = if working {
                &working_profile
            } else {
                &day_off_profile
            };
            let mut hours = [0.0; 24];
            for (h, w) in hours.iter_mut().enumerate() {
                let (s, e) = overlap(h, lo, hi);
                *w = profile[h] * f64::from(e - s) / 3600.0;
            }
            let surge = 1.0 + 5.0 * (-(i as f64) / 4.0).exp();
            let weekday = match (working, date.weekday()) {
                (true, Weekday::Mon) => 1.3,
                (true, _) if !previous_working => 1.3,
                (true, _) => 1.0,
                (false, Weekday::Sat) => 0.3,
                (false, Weekday::Sun) => 0.25,
                (false, _) => 0.35,
            };
            previous_working = working;
            list.push((
                Day {
                    date,
                    working,
                    lo,
                    hi,
                    hours,
                    calls: 0,
                },
                surge * weekday * hours.iter().sum::<f64>(),
            ));
        }
        // Exactly `calls` in all: the largest remainders get the odd ones.
        let total: f64 = list.iter().map(|(_, w)| w).sum();
        let mut remainders = Vec::with_capacity(list.len());
        let mut given = 0u64;
        for (i, (day, w)) in list.iter_mut().enumerate() {
            let quota = if total > 0.0 {
                calls as f64 * *w / total
            } else {
                0.0
            };
            day.calls = quota.floor() as u64;
            given += day.calls;
            remainders.push((quota - quota.floor(), i));
        }
        remainders.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, i) in remainders
            .iter()
            .cycle()
            .take(usize::try_from(calls.saturating_sub(given)).unwrap_or(0))
        {
            if let Some((day, _)) = list.get_mut(*i) {
                day.calls += 1;
            }
        }
        Self {
            rng: StdRng::seed_from_u64(SEED),
            calendar,
            now,
            days: list.into_iter().map(|(d, _)| d).collect(),
            references: References::new(),
            handlers: Vec::new(),
            counts: Counts::default(),
            routes,
            keys,
        }
    }

    /// The handler accounts to insert (column order as in [`USERS`]).
    fn handler_rows(&mut self) -> Vec<Val> {
        let created = self.days.first().map_or(self.now, |d| london(d.date, 0)) - Duration::days(1);
        let mut rows = Vec::new();
        for (i, email) in handler_emails().enumerate() {
            rows.extend([
                Val::Text(self.uuid()),
                Val::Text(email),
                Val::Const("handler"),
                Val::OptText(Some(format!("+447700900{:03}", i + 1))),
                Val::Time(created),
                Val::Time(created),
            ]);
        }
        rows
    }

    /// Makes every call, handing over a chunk at a time; stops early if `send` says the
    /// writer has gone.
    fn run(mut self, mut send: impl FnMut(Chunk) -> bool) -> Result<Counts, StoreError> {
        let mut chunk = Chunk::default();
        let days = std::mem::take(&mut self.days);
        for day in &days {
            let total: f64 = day.hours.iter().sum();
            let mut times: Vec<u32> = (0..day.calls).map(|_| self.time_in(day, total)).collect();
            times.sort_unstable();
            for secs in times {
                let in_hours = day.working && (OPENS..CLOSES).contains(&secs);
                let start = london(day.date, secs).min(self.now - Duration::seconds(1));
                self.call(start, in_hours, &mut chunk)?;
                if chunk.calls() >= CALLS_PER_CHUNK && !send(std::mem::take(&mut chunk).sorted()) {
                    return Ok(self.counts);
                }
            }
        }
        if chunk.calls() > 0 {
            send(chunk.sorted());
        }
        Ok(self.counts)
    }

    /// A random time of `day` (seconds after midnight), by its hourly weights.
    fn time_in(&mut self, day: &Day, total: f64) -> u32 {
        let mut r = self.rng.random::<f64>() * total;
        let mut hour = 0;
        for (h, w) in day.hours.iter().enumerate() {
            if *w > 0.0 {
                hour = h;
                if r < *w {
                    break;
                }
                r -= w;
            }
        }
        let (s, e) = overlap(hour, day.lo, day.hi);
        if e > s {
            self.rng.random_range(s..e)
        } else {
            s
        }
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string()
    }

    /// One of `weighted`, by weight.
    fn pick<T: Copy, const N: usize>(&mut self, weighted: &[(T, f64); N]) -> T {
        const { assert!(N > 0, "nothing to pick from") };
        let total: f64 = weighted.iter().map(|(_, w)| w).sum();
        let mut r = self.rng.random::<f64>() * total;
        for (item, w) in weighted {
            if r < *w {
                return *item;
            }
            r -= w;
        }
        weighted[N - 1].0
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Some whole seconds in `lo..=hi`.
    fn secs(&mut self, lo: i64, hi: i64) -> Duration {
        Duration::seconds(self.rng.random_range(lo..=hi))
    }

    /// `lo + (hi − lo)·u^k`: skewed towards `lo` for `k > 1`.
    fn skewed(&mut self, lo: i64, hi: i64, k: f64) -> i64 {
        let u: f64 = self.rng.random();
        lo + ((hi - lo) as f64 * u.powf(k)).round() as i64
    }

    fn mobile(&mut self) -> String {
        format!("+447700{:06}", self.rng.random_range(0..1_000_000))
    }

    /// `None` for a withheld number.
    fn caller(&mut self) -> Option<String> {
        let r: f64 = self.rng.random();
        if r < 0.02 {
            None
        } else if r < 0.22 {
            Some(format!(
                "+44151{:07}",
                self.rng.random_range(2_000_000..10_000_000)
            ))
        } else {
            Some(self.mobile())
        }
    }

    /// The caller keys (or says) a choice at a menu.
    fn choose(&mut self, tr: &mut Trace, node: &'static str, option: &'static str) {
        tr.t += self.secs(3, 20);
        let input = if node == "main_menu" && self.chance(0.08) {
            "speech"
        } else {
            "dtmf"
        };
        tr.step(node, input, option);
    }

    fn call(
        &mut self,
        start: DateTime<Utc>,
        in_hours: bool,
        out: &mut Chunk,
    ) -> Result<(), StoreError> {
        let simulated = self.chance(SIMULATED_SHARE);
        let sid = format!(
            "{}{:032x}",
            if simulated { "SM" } else { "CA" },
            self.rng.random::<u128>()
        );
        let caller = self.caller();
        let mut tr = Trace {
            t: start,
            steps: Vec::with_capacity(8),
            answers: Answers::default(),
        };
        tr.step(
            "welcome",
            "start",
            if in_hours {
                "start-open"
            } else {
                "start-closed"
            },
        );
        // The greeting (longer when closed), then the menu until the caller acts.
        tr.t += if in_hours {
            self.secs(18, 28)
        } else {
            self.secs(30, 45)
        };
        let mut queue = None;
        let mut enquiry = None;
        match self.pick(&CHOICES) {
            Choice::HangUp => {
                if self.chance(0.25) {
                    for outcome in ["no-input", "no-input", "gave-up"] {
                        tr.t += self.secs(8, 14);
                        tr.step("main_menu", "none", outcome);
                    }
                    tr.t += self.secs(12, 18);
                } else {
                    tr.t += self.secs(0, 25);
                }
            }
            Choice::Update => {
                self.choose(&mut tr, "main_menu", "option-1");
                tr.t += self.secs(50, 65);
                let r: f64 = self.rng.random();
                if r < 0.12 {
                    self.choose(&mut tr, "main_menu", "option-4");
                    tr.t += self.secs(15, 25);
                } else if r < 0.20 {
                    self.choose(&mut tr, "main_menu", "option-3");
                    tr.t += self.secs(40, 55);
                }
            }
            Choice::Callback => {
                self.choose(&mut tr, "main_menu", "option-2");
                enquiry = self.callback(&mut tr, &caller, None);
            }
            Choice::Fraud => {
                self.choose(&mut tr, "main_menu", "option-3");
                tr.t += self.secs(40, 55);
                let r: f64 = self.rng.random();
                if r < 0.15 {
                    self.choose(&mut tr, "fraud_menu", "option-1");
                    tr.t += self.secs(40, 55);
                } else if r < 0.23 {
                    self.choose(&mut tr, "fraud_menu", "option-3");
                    tr.t += self.secs(5, 20);
                } else if r < 0.30 {
                    self.choose(&mut tr, "fraud_menu", "option-2");
                    enquiry = self.callback(&mut tr, &caller, None);
                }
            }
            Choice::Appointments => {
                self.choose(&mut tr, "main_menu", "option-4");
                tr.t += self.secs(15, 25);
                if self.chance(0.10) {
                    self.choose(&mut tr, "main_menu", "option-1");
                    tr.t += self.secs(50, 65);
                }
            }
            Choice::Adviser => {
                self.choose(&mut tr, "main_menu", "option-0");
                if self.calendar.is_open(tr.t) {
                    let (q, e) = self.queue(&mut tr, &caller, simulated);
                    queue = Some(q);
                    enquiry = e;
                } else {
                    // "Our advisers are not available right now…", back to the menu.
                    tr.t += self.secs(20, 30);
                    if self.chance(0.30) {
                        self.choose(&mut tr, "main_menu", "option-2");
                        enquiry = self.callback(&mut tr, &caller, None);
                    } else {
                        tr.t += self.secs(0, 15);
                    }
                }
            }
        }
        let ended = tr.t + self.secs(1, 3);
        self.write_call(
            out,
            &sid,
            &caller,
            start,
            in_hours,
            simulated,
            ended,
            &tr,
            queue.as_ref(),
        )?;
        if let Some(e) = enquiry.filter(|e| e.created_at <= self.now) {
            self.enquiry(out, NewEnquiry { call_sid: sid, ..e })?;
        }
        Ok(())
    }

    /// The adviser queue, from just after the caller pressed 0 while the line was open.
    fn queue(
        &mut self,
        tr: &mut Trace,
        caller: &Option<String>,
        simulated: bool,
    ) -> (Queue, Option<NewEnquiry>) {
        // Joined in the same turn as the choice (as the service records it).
        let joined = tr.t;
        let (trust, _) = self.pick(&TRUSTS);
        tr.answers.trust = Some((trust, joined));
        let r: f64 = self.rng.random();
        let (result, wait, outcome) = if r < 0.75 {
            ("bridged", self.skewed(5, 600, 3.0), "bridged")
        } else if r < 0.93 {
            let wait = if self.chance(0.15) {
                self.rng.random_range(1..=4)
            } else {
                self.skewed(5, 300, 1.5)
            };
            ("hangup", wait, "hung-up-in-queue")
        } else {
            ("leave", self.skewed(20, 600, 2.0), "left-queue")
        };
        tr.t = joined + Duration::seconds(wait);
        let left = tr.t;
        tr.step("adviser_queue", "queue", outcome);
        let queue = Queue {
            joined,
            left,
            result,
            wait,
        };
        let enquiry = match result {
            "bridged" => {
                let talk = self.skewed(60, 900, 2.0);
                tr.t += Duration::seconds(talk);
                None
            }
            "leave" => self.callback(tr, caller, Some(joined)),
            _ => match caller {
                Some(number) if !simulated && wait >= MISSED_AFTER_SECONDS => Some(NewEnquiry {
                    call_sid: String::new(),
                    callback_number: number.clone(),
                    trust,
                    category: "other",
                    recording: None,
                    created_at: left,
                    waiting_since: joined,
                    source: "missed-in-queue",
                }),
                _ => None,
            },
        };
        (queue, enquiry)
    }

    /// The call-back questions, from `callback_start`; the enquiry if the caller got to the end.
    fn callback(
        &mut self,
        tr: &mut Trace,
        caller: &Option<String>,
        queued_at: Option<DateTime<Utc>>,
    ) -> Option<NewEnquiry> {
        tr.t += self.secs(5, 9);
        let number = match caller {
            Some(n) => {
                self.choose(tr, "confirm_number", "option-1");
                n.clone()
            }
            None => {
                tr.t += self.secs(12, 30);
                tr.step("enter_number", "dtmf", "number-given");
                let n = self.mobile();
                self.choose(tr, "confirm_entered_number", "option-1");
                n
            }
        };
        tr.answers.callback_number = Some((number.clone(), tr.t));
        if self.chance(0.04) {
            return None;
        }
        let (trust, key) = self.pick(&TRUSTS);
        self.choose(tr, "choose_trust", key);
        tr.answers.trust = Some((trust, tr.t));
        if self.chance(0.04) {
            return None;
        }
        let (category, key) = self.pick(&CATEGORIES);
        self.choose(tr, "choose_category", key);
        tr.answers.category = Some((category, tr.t));
        if self.chance(0.04) {
            return None;
        }
        tr.t += self.secs(8, 14);
        let recording = if self.chance(0.25) {
            let seconds = self.skewed(5, 120, 2.0);
            tr.t += Duration::seconds(seconds + 1);
            tr.step("record_message", "recording", "message");
            let url = format!(
                "https://api.twilio.com/2010-04-01/Accounts/AC{:032x}/Recordings/RE{:032x}",
                0u128,
                self.rng.random::<u128>()
            );
            tr.answers.recording = Some((url.clone(), seconds, tr.t));
            Some((url, seconds))
        } else {
            tr.t += self.secs(5, 7);
            tr.step("record_message", "none", "no-message");
            None
        };
        let created_at = tr.t;
        // "Your request for a call back is logged… your reference number is…"
        tr.t += self.secs(30, 40);
        Some(NewEnquiry {
            call_sid: String::new(),
            callback_number: number,
            trust,
            category,
            recording,
            created_at,
            waiting_since: queued_at.unwrap_or(created_at),
            source: "callback-request",
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn write_call(
        &mut self,
        out: &mut Chunk,
        sid: &str,
        caller: &Option<String>,
        start: DateTime<Utc>,
        in_hours: bool,
        simulated: bool,
        ended: DateTime<Utc>,
        tr: &Trace,
        queue: Option<&Queue>,
    ) -> Result<(), StoreError> {
        let now = self.now;
        let ended = (ended <= now).then_some(ended);
        let joined = queue.map(|q| q.joined).filter(|t| *t <= now);
        let left = queue.filter(|q| q.left <= now);
        let from = self
            .keys
            .seal_indexed(Kind::PhoneNumber, caller.as_deref().unwrap_or("anonymous"));
        out.calls.extend([
            Val::Text(sid.to_string()),
            Val::OptText(Some(from.value)),
            Val::OptText(Some(from.hash)),
            Val::Time(start),
            Val::Bool(in_hours),
            Val::Bool(simulated),
            Val::OptTime(ended),
            Val::OptInt(ended.map(|e| (e - start).num_seconds())),
            Val::OptText(ended.map(|_| "completed".to_string())),
            Val::OptTime(joined),
            Val::OptTime(left.map(|q| q.left)),
            Val::OptText(left.map(|q| q.result.to_string())),
            Val::OptInt(left.map(|q| q.wait)),
            Val::Bool(left.is_some_and(|q| q.result == "hangup")),
        ]);
        self.counts.calls += 1;
        self.counts.in_hours += u64::from(in_hours);
        self.counts.simulated += u64::from(simulated);
        for (seq, s) in tr.steps.iter().enumerate().filter(|(_, s)| s.at <= now) {
            // The first step is the greeting as the call began; later ones (an adviser
            // asked for) meet the line as it is at that moment.
            let open = if seq == 0 {
                in_hours
            } else {
                self.calendar.is_open(s.at)
            };
            let path = self
                .routes
                .path(s.node, s.outcome, open, caller.is_some())?;
            out.steps.extend([
                Val::Text(sid.to_string()),
                Val::Int(seq as i64),
                Val::Const(s.node),
                Val::Const(s.input),
                Val::Const(s.outcome),
                Val::Time(s.at),
                Val::OptShared(path),
            ]);
            self.counts.steps += 1;
        }
        let a = &tr.answers;
        let answers = [
            a.callback_number
                .as_ref()
                .map(|(n, t)| ("callback_number", n.clone(), *t)),
            a.trust.map(|(v, t)| ("trust", v.to_string(), t)),
            a.category.map(|(v, t)| ("category", v.to_string(), t)),
            a.recording
                .as_ref()
                .map(|(url, _, t)| ("recording_url", url.clone(), *t)),
            a.recording
                .as_ref()
                .map(|(_, secs, t)| ("recording_duration", secs.to_string(), *t)),
        ];
        for (name, value, _) in answers.into_iter().flatten().filter(|(_, _, t)| *t <= now) {
            let value = match crate::store::sealing::answer_kind(name) {
                Some(kind) => self.keys.seal(kind, &value),
                None => value,
            };
            out.answers.extend([
                Val::Text(sid.to_string()),
                Val::Const(name),
                Val::Text(value),
            ]);
            self.counts.answers += 1;
        }
        Ok(())
    }

    /// A working-hours instant on `day` (after `not_before` plus five minutes, if that is
    /// the same day), or `None` when the day has no time left.
    fn attempt_time(&mut self, day: NaiveDate, not_before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let earliest = if london_date(not_before) == day {
            (london_secs(not_before) + 300).max(OPENS)
        } else {
            OPENS
        };
        (earliest + 60 < CLOSES).then(|| london(day, self.rng.random_range(earliest..CLOSES)))
    }

    /// The first attempt's time at or after working day `day`.
    fn attempt_from(&mut self, mut day: NaiveDate, not_before: DateTime<Utc>) -> DateTime<Utc> {
        for _ in 0..10 {
            if self.calendar.is_working(day) {
                if let Some(t) = self.attempt_time(day, not_before) {
                    return t;
                }
            }
            day = self.calendar.working_days_after(day, 1);
        }
        london(day, OPENS)
    }

    /// The planned outcomes of the attempts, in order.
    fn plan(&mut self) -> Vec<Outcome> {
        let unanswered = |g: &mut Self, n: usize| -> Vec<Outcome> {
            (0..n)
                .map(|_| {
                    if g.chance(0.65) {
                        Outcome::NoAnswer
                    } else {
                        Outcome::Voicemail
                    }
                })
                .collect()
        };
        let then = |mut v: Vec<Outcome>, last: Outcome| {
            v.push(last);
            v
        };
        match self.pick(&PATHS) {
            Path::Resolved => {
                let n = self.pick(&[(0, 0.65), (1, 0.25), (2, 0.10)]);
                then(unanswered(self, n), Outcome::Resolved)
            }
            Path::Unreachable => unanswered(self, MAX_UNANSWERED as usize),
            Path::WrongNumber => {
                let n = self.pick(&[(0, 0.8), (1, 0.2)]);
                then(unanswered(self, n), Outcome::WrongNumber)
            }
            Path::FollowUp => {
                let n = self.pick(&[(0, 0.8), (1, 0.2)]);
                then(unanswered(self, n), Outcome::FollowUp)
            }
            Path::Retry => {
                let n = self.pick(&[(1, 0.7), (2, 0.3)]);
                unanswered(self, n)
            }
            Path::NeverTried => Vec::new(),
        }
    }

    fn enquiry(&mut self, out: &mut Chunk, e: NewEnquiry) -> Result<(), StoreError> {
        let id = self.uuid();
        let reference = self.references.next(&mut self.rng).ok_or_else(|| {
            StoreError::Corrupt("the six-digit enquiry references have run out".into())
        })?;
        let created = london_date(e.created_at);
        let due = self
            .calendar
            .working_days_after(created, CALLBACK_WORKING_DAYS);

        // The attempts, as planned, up to now.
        let plan = self.plan();
        let mut attempts: Vec<(DateTime<Utc>, Outcome, usize)> = Vec::with_capacity(plan.len());
        let mut handler = self.rng.random_range(0..HANDLERS);
        let mut at = None;
        for outcome in plan {
            let t = match at {
                None => {
                    let late = self.chance(0.15);
                    let k = if late {
                        self.rng.random_range(3..=6)
                    } else {
                        self.pick(&[(0, 0.35), (1, 0.40), (2, 0.25)])
                    };
                    let day = self.calendar.working_days_after(created, k);
                    self.attempt_from(day, e.created_at)
                }
                Some(previous) => {
                    let gap = if self.chance(0.8) { 1 } else { 2 };
                    let day = self.calendar.working_days_after(london_date(previous), gap);
                    if self.chance(0.3) {
                        handler = self.rng.random_range(0..HANDLERS);
                    }
                    self.attempt_from(day, previous)
                }
            };
            if t > self.now {
                break;
            }
            at = Some(t);
            attempts.push((t, outcome, handler));
        }

        // Where they leave it (the service's rules).
        let (mut status, mut unanswered) = ("new", 0u32);
        let (mut next_attempt_on, mut closed_at) = (None, None);
        for (t, outcome, _) in &attempts {
            next_attempt_on = None;
            match outcome {
                Outcome::NoAnswer | Outcome::Voicemail => {
                    unanswered += 1;
                    if unanswered >= MAX_UNANSWERED {
                        status = "unreachable";
                        closed_at = Some(*t);
                    } else {
                        status = "retry";
                        next_attempt_on =
                            Some(self.calendar.working_days_after(london_date(*t), 1));
                    }
                }
                Outcome::Resolved => {
                    (status, unanswered, closed_at) = ("resolved", 0, Some(*t));
                }
                Outcome::WrongNumber => {
                    (status, unanswered, closed_at) = ("wrong-number", 0, Some(*t));
                }
                Outcome::FollowUp => (status, unanswered) = ("follow-up", 0),
            }
        }
        let (url, seconds) = match e.recording {
            Some((url, seconds)) => (Some(self.keys.seal(Kind::Recording, &url)), Some(seconds)),
            None => (None, None),
        };
        let number = self
            .keys
            .seal_indexed(Kind::PhoneNumber, &e.callback_number);
        out.enquiries.extend([
            Val::Text(id.clone()),
            Val::Text(reference.to_string()),
            Val::Text(e.call_sid),
            Val::Text(number.value),
            Val::Const(e.trust),
            Val::Const(e.category),
            Val::OptText(url),
            Val::OptInt(seconds),
            Val::Const(status),
            Val::Time(e.created_at),
            Val::Date(due),
            Val::Const(e.source),
            Val::Time(e.waiting_since),
            Val::Int(attempts.len() as i64),
            Val::OptDate(next_attempt_on),
            Val::OptTime(closed_at),
            Val::Int(i64::from(unanswered)),
            Val::Text(number.hash),
        ]);
        self.counts.enquiries += 1;
        self.counts.open += u64::from(matches!(status, "new" | "retry" | "follow-up"));
        for (t, outcome, handler) in attempts {
            let handler_id = self.handlers.get(handler).cloned().unwrap_or_default();
            out.attempts.extend([
                Val::Text(id.clone()),
                Val::Text(handler_id),
                Val::Time(t),
                Val::Const(outcome.as_str()),
            ]);
            self.counts.attempts += 1;
        }
        Ok(())
    }
}
