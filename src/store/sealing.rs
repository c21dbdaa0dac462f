//! Which columns hold personal data, the keys a store seals them with, and the passes that
//! seal what is not sealed yet (at every start) or move everything to the current key
//! (`helpline rekey`). One SQL implementation for both backends, like `sql.rs`.
//!
//! Sealed (`crate::crypto`, `v1:<key id>:…`), with a lookup hash where lookups need one:
//!
//! | column | kind | lookup hash |
//! |---|---|---|
//! | `calls.caller` (Twilio's `From`) | phone number | `calls.caller_hash` |
//! | `enquiries.callback_number` | phone number | `enquiries.callback_hash` |
//! | `enquiries.recording_url` | recording | — |
//! | `call_answers.value` where `name` is `callback_number` | phone number | — |
//! | `call_answers.value` where `name` is `recording_url` | recording | — |
//! | `recording_deletions.recording_url` | recording | `recording_deletions.recording_hash` |
//!
//! A row written before encryption has a NULL hash (or, in `call_answers`, a value without
//! the `v1:` prefix): the pass at every start ([`Scope::Unsealed`]) finds those through
//! small partial indexes (migration 0010), so it costs a few index probes once the old rows
//! are done.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

use super::StoreError;
use crate::config::DataKeySettings;
use crate::crypto::{self, CryptoError, Keyring};

/// Rows read and written per transaction by the sealing passes.
pub(super) const BATCH: i64 = 500;

/// The names under which `call_answers` keeps personal values, and their kinds.
pub fn answer_kind(name: &str) -> Option<crypto::Kind> {
    match name {
        "callback_number" => Some(crypto::Kind::PhoneNumber),
        "recording_url" => Some(crypto::Kind::Recording),
        _ => None,
    }
}

/// What decides a store's keys: the configured ones, and whether this is development
/// (where PostgreSQL may fall back to the published development key).
#[derive(Debug, Clone, Default)]
pub struct KeyOptions {
    pub settings: DataKeySettings,
    /// `serve --insecure-dev`, `simulate`, `dev seed`, tests: PostgreSQL without a
    /// configured key uses [`Keyring::development`] (with a warning) instead of refusing.
    pub dev: bool,
    /// `helpline rekey`: values under keys not configured are counted, not a reason to
    /// refuse to start.
    pub tolerate_unknown_keys: bool,
}

impl KeyOptions {
    /// Development defaults: nothing configured.
    pub fn development() -> Self {
        Self {
            dev: true,
            ..Self::default()
        }
    }
}

/// The keys for the database at `url`. A configured key wins (with the key file of an
/// earlier default kept as an old key, so moving to a managed key needs only a rekey);
/// else a SQLite file's key file, made when missing (refused if the database already
/// holds sealed values: their key is lost, not replaced); a random key for an in-memory
/// database; the development key for PostgreSQL in development; else an error naming
/// `HELPLINE_DATA_KEY`. `any_sealed` is asked only before making a key file.
pub async fn resolve<F, Fut>(
    url: &str,
    options: &KeyOptions,
    any_sealed: F,
) -> Result<Keyring, StoreError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<bool, StoreError>>,
{
    let key_file = crate::config::default_key_file(url);
    let old = options.settings.old_keys()?;
    let development = Keyring::development();
    let keys = if let Some(mut keys) = options.settings.keyring()? {
        if let Some(file) = key_file.filter(|f| f.exists()) {
            let earlier = crypto::read_key_file(&file, "the generated data key file")?;
            keys = keys.with_old(earlier);
        }
        if keys.current_id() == development.current_id() && !options.dev {
            tracing::warn!(
                "HELPLINE_DATA_KEY is the published development key: it protects nothing; \
                 set a key of your own (`helpline keys generate`) and run `helpline rekey`"
            );
        }
        keys
    } else if let Some(file) = key_file {
        let place = format!("data key file {} (no HELPLINE_DATA_KEY)", file.display());
        let current = if file.exists() {
            crypto::read_key_file(&file, &place)?
        } else if any_sealed().await? {
            return Err(crypto::setting_error(
                "HELPLINE_DATA_KEY",
                format!(
                    "the database holds encrypted callers' numbers but no key is configured and its key file {} is missing",
                    file.display()
                ),
                "restore the key file from its copy, or set HELPLINE_DATA_KEY (or HELPLINE_DATA_KEY_FILE) to the key \
                 the database was encrypted with; a new key cannot read them",
            )
            .into());
        } else {
            let (key, new) = crypto::create_key_file(&file, &place)?;
            if new {
                tracing::warn!(file = %file.display(), key_id = key.id(),
                    "no data key configured: made a new one to encrypt callers' numbers at rest \
                     (readable by this user only); keep a copy apart from the database's backups \
                     (docs/SECURITY.md, \"Data keys\")");
            }
            key
        };
        Keyring::new(current, old)
    } else if url.starts_with("sqlite:") {
        // In memory: nothing outlives the process, nor need its key.
        Keyring::new(crypto::DataKey::generate().0, old)
    } else if options.dev {
        tracing::warn!(
            "no data key configured: PostgreSQL in development uses the published development key, \
             which protects nothing (set HELPLINE_DATA_KEY for real callers)"
        );
        development
    } else {
        return Err(crypto::setting_error(
            "HELPLINE_DATA_KEY",
            "PostgreSQL needs a configured data key to encrypt callers' numbers (every instance must \
             share it, and it must not be kept in the database)",
            crypto::KEY_FIX,
        )
        .into());
    };
    Ok(keys)
}

/// Which values a sealing pass takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Not sealed yet (or without a lookup hash): the pass at every start.
    Unsealed,
    /// Not sealed under the current key: `helpline rekey`.
    NotCurrent,
}

/// What a sealing pass did (or, dry, would do), by table. Counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResealCounts {
    pub calls: u64,
    pub enquiries: u64,
    pub call_answers: u64,
    pub recording_deletions: u64,
    /// Values that could not be opened (sealed under a key not configured, or damaged):
    /// left as they are.
    pub unreadable: u64,
    /// The ids of keys that values are sealed under but that are not configured.
    pub unknown_keys: Vec<String>,
}

impl ResealCounts {
    /// Rows changed (or to change).
    pub fn rows(&self) -> u64 {
        self.calls + self.enquiries + self.call_answers + self.recording_deletions
    }

    pub(super) fn unreadable(&mut self, e: &CryptoError) {
        self.unreadable += 1;
        if let CryptoError::UnknownKey { id, .. } = e {
            if !self.unknown_keys.contains(id) {
                self.unknown_keys.push(id.clone());
            }
        }
    }
}

/// How many stored personal values each key seals, by column (`plaintext` for values not
/// sealed). Key ids and counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyCensus {
    pub columns: BTreeMap<String, BTreeMap<String, u64>>,
}

impl KeyCensus {
    /// Values by key id (or `plaintext`), every column together.
    pub fn totals(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for by_key in self.columns.values() {
            for (k, n) in by_key {
                *totals.entry(k.clone()).or_insert(0) += n;
            }
        }
        totals
    }
}

/// `v1:`-prefixed values by key id, others as `plaintext`, for `column` of `table`.
pub(super) fn census_sql(table: &str, column: &str, filter: &str) -> String {
    format!(
        "SELECT CASE WHEN substr({column}, 1, 3) = 'v1:' THEN substr({column}, 4, 8) ELSE 'plaintext' END AS key_id, \
         COUNT(*) AS n FROM {table} WHERE {column} IS NOT NULL{filter} GROUP BY 1"
    )
}

/// The WHERE condition choosing the rows a pass takes in each table, and whether it uses
/// `$1` (the current key's head, `v1:<id>:`); the key-set parameters follow it.
pub(super) fn condition(table: &str, scope: Scope) -> &'static str {
    match (table, scope) {
        ("calls", Scope::Unsealed) => "caller IS NOT NULL AND caller_hash IS NULL",
        ("calls", Scope::NotCurrent) => {
            "caller IS NOT NULL AND (caller_hash IS NULL OR substr(caller, 1, 12) <> $1)"
        }
        ("enquiries", Scope::Unsealed) => "callback_hash IS NULL",
        ("enquiries", Scope::NotCurrent) => {
            "(callback_hash IS NULL OR substr(callback_number, 1, 12) <> $1 \
             OR (recording_url IS NOT NULL AND substr(recording_url, 1, 12) <> $1))"
        }
        // The same words as the partial index call_answers_unsealed, so that it is used.
        ("call_answers", Scope::Unsealed) => {
            "name IN ('callback_number', 'recording_url') AND substr(value, 1, 3) <> 'v1:'"
        }
        ("call_answers", Scope::NotCurrent) => {
            "name IN ('callback_number', 'recording_url') AND substr(value, 1, 12) <> $1"
        }
        ("recording_deletions", Scope::Unsealed) => "recording_hash IS NULL",
        ("recording_deletions", _) => {
            "(recording_hash IS NULL OR substr(recording_url, 1, 12) <> $1)"
        }
        _ => "FALSE",
    }
}

/// `impl $store`: the sealing passes, the start-up checks and the census, over `self.pool`.
macro_rules! sealing_sql {
    ($store:ident, $db:ty) => {
        impl $store {
            /// Whether any personal value in the database is sealed (asked before a new key
            /// file is made: a database whose key is lost must not get a new one silently).
            async fn any_sealed(pool: &sqlx::Pool<$db>) -> Result<bool, StoreError> {
                let found: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 WHERE EXISTS (SELECT 1 FROM calls WHERE caller_hash IS NOT NULL) \
                     OR EXISTS (SELECT 1 FROM enquiries WHERE callback_hash IS NOT NULL) \
                     OR EXISTS (SELECT 1 FROM call_answers WHERE substr(value, 1, 3) = 'v1:') \
                     OR EXISTS (SELECT 1 FROM recording_deletions WHERE recording_hash IS NOT NULL)",
                )
                .fetch_optional(pool)
                .await?;
                Ok(found.is_some())
            }

            /// At start: the most recent sealed values must be under keys we have (a key
            /// replaced without keeping the old one stops the start here, naming it), then
            /// anything not sealed yet is sealed.
            async fn start_sealing(&self, tolerate_unknown_keys: bool) -> Result<(), StoreError> {
                let mut recent: Vec<String> = sqlx::query_scalar(
                    "SELECT caller FROM calls WHERE caller_hash IS NOT NULL ORDER BY started_at DESC LIMIT 20",
                )
                .fetch_all(&self.pool)
                .await?;
                recent.extend(
                    sqlx::query_scalar::<_, String>(
                        "SELECT callback_number FROM enquiries WHERE callback_hash IS NOT NULL \
                         ORDER BY created_at DESC LIMIT 20",
                    )
                    .fetch_all(&self.pool)
                    .await?,
                );
                for value in &recent {
                    if let Some(id) = crate::crypto::key_id_of(value) {
                        if !self.keys.knows(id) && !tolerate_unknown_keys {
                            return Err(crate::crypto::CryptoError::UnknownKey {
                                kind: crate::crypto::Kind::PhoneNumber.label(),
                                id: id.chars().take(8).collect(),
                            }
                            .into());
                        }
                    }
                }
                let done = self.reseal(super::sealing::Scope::Unsealed, false).await?;
                if done.rows() > 0 {
                    tracing::info!(calls = done.calls, enquiries = done.enquiries, call_answers = done.call_answers,
                        recording_deletions = done.recording_deletions,
                        "callers' numbers and recording references stored in plain text are now encrypted");
                }
                if done.unreadable > 0 {
                    tracing::warn!(values = done.unreadable, keys = ?done.unknown_keys,
                        "some stored values cannot be decrypted with the configured keys; see `helpline rekey --dry-run`");
                }
                Ok(())
            }

            /// Seals (under the current key, with fresh lookup hashes) every value `scope`
            /// takes, a batch per transaction; `dry_run` only counts. A value that cannot
            /// be opened is left and counted. Each update is conditional on the value read,
            /// so a pass running beside another (or beside the service) never loses a write.
            pub async fn reseal(
                &self,
                scope: super::sealing::Scope,
                dry_run: bool,
            ) -> Result<super::sealing::ResealCounts, StoreError> {
                use super::sealing::{answer_kind, condition, BATCH};
                use crate::crypto::Kind;
                let keys = self.keys.clone();
                let head = keys.current_head();
                let uses_head = scope == super::sealing::Scope::NotCurrent;
                // `$1` is the head when the condition needs it; key-set parameters follow.
                let first = if uses_head { 2 } else { 1 };
                let mut counts = super::sealing::ResealCounts::default();

                // calls.caller
                let sql = format!(
                    "SELECT call_sid, caller FROM calls WHERE {} AND call_sid > ${first} ORDER BY call_sid LIMIT {BATCH}",
                    condition("calls", scope)
                );
                let mut after = String::new();
                loop {
                    let mut q = sqlx::query_as::<_, (String, String)>(&sql);
                    if uses_head {
                        q = q.bind(&head);
                    }
                    let rows = q.bind(&after).fetch_all(&self.pool).await?;
                    let Some((last, _)) = rows.last() else { break };
                    after = last.clone();
                    let mut tx = self.pool.begin().await?;
                    for (sid, caller) in &rows {
                        let plain = match keys.open(Kind::PhoneNumber, caller) {
                            Ok(p) => p,
                            Err(e) => {
                                counts.unreadable(&e);
                                continue;
                            }
                        };
                        counts.calls += 1;
                        if dry_run {
                            continue;
                        }
                        let sealed = keys.seal_indexed(Kind::PhoneNumber, &plain);
                        sqlx::query("UPDATE calls SET caller = $1, caller_hash = $2 WHERE call_sid = $3 AND caller = $4")
                            .bind(&sealed.value)
                            .bind(&sealed.hash)
                            .bind(sid)
                            .bind(caller)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                }

                // enquiries.callback_number (+ hash) and enquiries.recording_url
                let sql = format!(
                    "SELECT id, callback_number, recording_url FROM enquiries WHERE {} AND id > ${first} \
                     ORDER BY id LIMIT {BATCH}",
                    condition("enquiries", scope)
                );
                let mut after = String::new();
                loop {
                    let mut q = sqlx::query_as::<_, (String, String, Option<String>)>(&sql);
                    if uses_head {
                        q = q.bind(&head);
                    }
                    let rows = q.bind(&after).fetch_all(&self.pool).await?;
                    let Some((last, _, _)) = rows.last() else { break };
                    after = last.clone();
                    let mut tx = self.pool.begin().await?;
                    for (id, number, recording) in &rows {
                        let opened = keys.open(Kind::PhoneNumber, number).and_then(|n| {
                            Ok((n, keys.open_opt(Kind::Recording, recording.as_deref())?))
                        });
                        let (number_plain, recording_plain) = match opened {
                            Ok(p) => p,
                            Err(e) => {
                                counts.unreadable(&e);
                                continue;
                            }
                        };
                        counts.enquiries += 1;
                        if dry_run {
                            continue;
                        }
                        let sealed = keys.seal_indexed(Kind::PhoneNumber, &number_plain);
                        let recording = recording_plain.map(|r| keys.seal(Kind::Recording, &r));
                        sqlx::query(
                            "UPDATE enquiries SET callback_number = $1, callback_hash = $2, recording_url = $3 \
                             WHERE id = $4 AND callback_number = $5",
                        )
                        .bind(&sealed.value)
                        .bind(&sealed.hash)
                        .bind(recording)
                        .bind(id)
                        .bind(number)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                }

                // call_answers.value (the callback number and the recording)
                let k = first;
                let sql = format!(
                    "SELECT call_sid, name, value FROM call_answers WHERE {} \
                     AND (call_sid > ${k} OR (call_sid = ${k} AND name > ${})) ORDER BY call_sid, name LIMIT {BATCH}",
                    condition("call_answers", scope),
                    k + 1
                );
                let (mut after_sid, mut after_name) = (String::new(), String::new());
                loop {
                    let mut q = sqlx::query_as::<_, (String, String, String)>(&sql);
                    if uses_head {
                        q = q.bind(&head);
                    }
                    let rows = q.bind(&after_sid).bind(&after_name).fetch_all(&self.pool).await?;
                    let Some((sid, name, _)) = rows.last() else { break };
                    (after_sid, after_name) = (sid.clone(), name.clone());
                    let mut tx = self.pool.begin().await?;
                    for (sid, name, value) in &rows {
                        let Some(kind) = answer_kind(name) else { continue };
                        let plain = match keys.open(kind, value) {
                            Ok(p) => p,
                            Err(e) => {
                                counts.unreadable(&e);
                                continue;
                            }
                        };
                        counts.call_answers += 1;
                        if dry_run {
                            continue;
                        }
                        sqlx::query("UPDATE call_answers SET value = $1 WHERE call_sid = $2 AND name = $3 AND value = $4")
                            .bind(keys.seal(kind, &plain))
                            .bind(sid)
                            .bind(name)
                            .bind(value)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                }

                // recording_deletions.recording_url (+ hash): the sealed value is the key.
                let sql = format!(
                    "SELECT recording_url FROM recording_deletions WHERE {} AND recording_url > ${first} \
                     ORDER BY recording_url LIMIT {BATCH}",
                    condition("recording_deletions", scope)
                );
                let mut after = String::new();
                loop {
                    let mut q = sqlx::query_scalar::<_, String>(&sql);
                    if uses_head {
                        q = q.bind(&head);
                    }
                    let rows = q.bind(&after).fetch_all(&self.pool).await?;
                    let Some(last) = rows.last() else { break };
                    after = last.clone();
                    let mut tx = self.pool.begin().await?;
                    for stored in &rows {
                        let plain = match keys.open(Kind::Recording, stored) {
                            Ok(p) => p,
                            Err(e) => {
                                counts.unreadable(&e);
                                continue;
                            }
                        };
                        counts.recording_deletions += 1;
                        if dry_run {
                            continue;
                        }
                        let sealed = keys.seal_indexed(Kind::Recording, &plain);
                        // The same recording queued again under the new hash: one row is enough.
                        let twin: Option<i32> = sqlx::query_scalar(
                            "SELECT 1 FROM recording_deletions WHERE recording_hash = $1",
                        )
                        .bind(&sealed.hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if twin.is_some() {
                            sqlx::query("DELETE FROM recording_deletions WHERE recording_url = $1")
                                .bind(stored)
                                .execute(&mut *tx)
                                .await?;
                            continue;
                        }
                        sqlx::query(
                            "UPDATE recording_deletions SET recording_url = $1, recording_hash = $2 WHERE recording_url = $3",
                        )
                        .bind(&sealed.value)
                        .bind(&sealed.hash)
                        .bind(stored)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                }
                Ok(counts)
            }

            /// How many personal values each key seals, by column (`plaintext`: not sealed).
            pub async fn key_census(&self) -> Result<super::sealing::KeyCensus, StoreError> {
                use super::sealing::census_sql;
                let answers = " AND name IN ('callback_number', 'recording_url')";
                let mut census = super::sealing::KeyCensus::default();
                for (label, table, column, filter) in [
                    ("calls.caller", "calls", "caller", ""),
                    ("enquiries.callback_number", "enquiries", "callback_number", ""),
                    ("enquiries.recording_url", "enquiries", "recording_url", ""),
                    ("call_answers.value", "call_answers", "value", answers),
                    ("recording_deletions.recording_url", "recording_deletions", "recording_url", ""),
                ] {
                    let rows: Vec<(String, i64)> = sqlx::query_as(&census_sql(table, column, filter))
                        .fetch_all(&self.pool)
                        .await?;
                    census.columns.insert(
                        label.to_string(),
                        rows.into_iter()
                            .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
                            .collect(),
                    );
                }
                Ok(census)
            }
        }
    };
}

pub(super) use sealing_sql;
