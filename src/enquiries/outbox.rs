//! The enquiry outbox: when the database cannot store a call-back request during a call,
//! the request is appended to a local file (one JSON line, written and `fsync`ed) under a
//! reference made here, and only then is the reference spoken. A background task
//! ([`spawn_replay`]) stores the records in the database when it is reachable again, each
//! under the reference the caller was given, idempotently on the call SID; the file loses
//! a record only once every record before it is stored.
//!
//! One file per instance (`outbox-<instance id>.jsonl` in `HELPLINE_OUTBOX_DIR`), so
//! instances sharing a directory never write to one file. The outbox is bounded
//! (`HELPLINE_OUTBOX_MAX_RECORDS`): when full, the caller hears the usual apology.
//!
//! A running instance holds an exclusive lock (`flock`) on its own file. A file in the
//! directory that nobody holds was left by an instance that stopped (or was killed): the
//! replay task adopts it — stores its records, idempotently, then deletes it — so a
//! restarted instance, or any other sharing the directory, stores every reference that was
//! spoken before the crash.
//!
//! The caller's number and recording reference are sealed in the file with the store's
//! data keys (`crate::crypto`), like the database's columns: a record on disk holds no
//! number in plain text. A file is read by any instance with the same keys (a line
//! written before encryption, in plain text, is read as it is).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Category, NewEnquiry, Recording, Reference, Source, Trust};
use crate::crypto::{CryptoError, Keyring, Kind};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("the enquiry outbox is full ({0} records waiting for the database)")]
    Full(usize),
    #[error("the enquiry outbox {path} cannot be written: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the enquiry outbox {path} has an unreadable record on line {line}: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the database cannot take the outbox yet: {0}")]
    Store(#[from] StoreError),
    #[error("the enquiry outbox {path} has a record that cannot be decrypted: {source}")]
    Sealed { path: PathBuf, source: CryptoError },
}

/// One request for a call back, as kept in the outbox: the [`NewEnquiry`] fields and the
/// reference the caller heard. The number and the recording's URL are sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub reference: Reference,
    pub call_sid: String,
    /// E.164, sealed (`v1:…`).
    pub callback_number: String,
    /// Its `url` sealed.
    pub trust: Trust,
    pub category: Category,
    pub recording: Option<Recording>,
    pub created_at: DateTime<Utc>,
    pub callback_due: NaiveDate,
    pub source: Source,
    pub waiting_since: DateTime<Utc>,
}

impl OutboxRecord {
    /// The record of `enquiry`, its number and recording sealed with `keys`.
    pub fn new(enquiry: &NewEnquiry, reference: Reference, keys: &Keyring) -> Self {
        Self {
            reference,
            call_sid: enquiry.call_sid.clone(),
            callback_number: keys.seal(Kind::PhoneNumber, enquiry.callback_number.e164()),
            trust: enquiry.trust,
            category: enquiry.category,
            recording: enquiry.recording.as_ref().map(|r| Recording {
                url: keys.seal(Kind::Recording, &r.url),
                duration_seconds: r.duration_seconds,
            }),
            created_at: enquiry.created_at,
            callback_due: enquiry.callback_due,
            source: enquiry.source,
            waiting_since: enquiry.waiting_since,
        }
    }

    /// The enquiry to store (its number and recording opened with `keys`), or `None` when
    /// the number no longer parses.
    pub fn enquiry(&self, keys: &Keyring) -> Result<Option<NewEnquiry>, CryptoError> {
        let number = keys.open(Kind::PhoneNumber, &self.callback_number)?;
        let recording = match &self.recording {
            Some(r) => Some(Recording {
                url: keys.open(Kind::Recording, &r.url)?,
                duration_seconds: r.duration_seconds,
            }),
            None => None,
        };
        let Some(callback_number) = crate::phone::UkNumber::parse(&number) else {
            return Ok(None);
        };
        Ok(Some(NewEnquiry {
            call_sid: self.call_sid.clone(),
            callback_number,
            trust: self.trust,
            category: self.category,
            recording,
            created_at: self.created_at,
            callback_due: self.callback_due,
            source: self.source,
            waiting_since: self.waiting_since,
        }))
    }
}

/// This instance's outbox file.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    max_records: usize,
    /// The records in the file, by call SID (a retried webhook hears the same reference).
    /// Held across each write, so appends and the replay's rewrite never interleave.
    pending: tokio::sync::Mutex<Vec<OutboxRecord>>,
    /// `pending.len()`, readable without waiting (for `/readyz` and `/metrics`).
    count: std::sync::atomic::AtomicUsize,
    /// The lock on our file while we have one, telling other instances it is not theirs.
    lock: std::sync::Mutex<Option<std::fs::File>>,
    /// Seal the number and recording of each record (the store's keys).
    keys: Arc<Keyring>,
}

impl Outbox {
    /// A new, empty outbox for this instance in `dir`, named by a random instance id (the
    /// directory and file are made at the first record). Numbers and recordings are
    /// sealed with `keys` (the store's: [`Store::data_keys`]).
    pub fn new(dir: &Path, max_records: usize, keys: Arc<Keyring>) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self::with(
            dir.join(format!("outbox-{}.jsonl", &id[..12])),
            max_records,
            Vec::new(),
            keys,
        )
    }

    fn with(
        path: PathBuf,
        max_records: usize,
        records: Vec<OutboxRecord>,
        keys: Arc<Keyring>,
    ) -> Self {
        Self {
            path,
            max_records: max_records.max(1),
            count: records.len().into(),
            pending: tokio::sync::Mutex::new(records),
            lock: std::sync::Mutex::new(None),
            keys,
        }
    }

    /// The outbox in an existing file (e.g. one left by an instance that stopped), read
    /// with `keys`.
    pub fn open(path: &Path, max_records: usize, keys: Arc<Keyring>) -> Result<Self, OutboxError> {
        let records = read_records(path)?;
        Ok(Self::with(path.to_path_buf(), max_records, records, keys))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records waiting for the database.
    pub fn len(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether another record fits.
    pub fn has_room(&self) -> bool {
        self.len() < self.max_records
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set_count(&self, n: usize) {
        self.count.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The record waiting for this call, if any.
    pub async fn pending(&self, call_sid: &str) -> Option<OutboxRecord> {
        if self.is_empty() {
            return None;
        }
        let pending = self.pending.lock().await;
        pending.iter().find(|r| r.call_sid == call_sid).cloned()
    }

    /// Keeps `enquiry` until the database takes it: the reference the caller is to hear,
    /// once the record is on disk. A call already in the outbox (a retried webhook) keeps
    /// its first record and reference.
    pub async fn keep(&self, enquiry: &NewEnquiry) -> Result<OutboxRecord, OutboxError> {
        self.keep_as(enquiry, Reference::random()).await
    }

    /// As [`Outbox::keep`], under `reference` (one the database may already hold for this
    /// call, from a write that outlived the webhook's budget: the replay then finds it).
    pub async fn keep_as(
        &self,
        enquiry: &NewEnquiry,
        reference: Reference,
    ) -> Result<OutboxRecord, OutboxError> {
        let mut pending = self.pending.lock().await;
        if let Some(done) = pending.iter().find(|r| r.call_sid == enquiry.call_sid) {
            return Ok(done.clone());
        }
        if pending.len() >= self.max_records {
            return Err(OutboxError::Full(pending.len()));
        }
        self.hold_lock(false).map_err(|e| self.io(e))?;
        let record = OutboxRecord::new(enquiry, reference, &self.keys);
        let mut line =
            serde_json::to_string(&record).map_err(|e| self.io(std::io::Error::other(e)))?;
        line.push('\n');
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || append(&path, line.as_bytes()))
            .await
            .map_err(|e| self.io(std::io::Error::other(e)))?
            .map_err(|e| self.io(e))?;
        pending.push(record.clone());
        self.set_count(pending.len());
        Ok(record)
    }

    fn io(&self, source: std::io::Error) -> OutboxError {
        OutboxError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Stores every record in the database under its own reference (a record already
    /// stored changes nothing), then empties the file. Stops at the first failure, keeping
    /// the file as it was; returns how many records were replayed.
    pub async fn replay(&self, store: &dyn Store) -> Result<usize, OutboxError> {
        let snapshot = self.pending.lock().await.clone();
        if snapshot.is_empty() {
            return Ok(0);
        }
        for record in &snapshot {
            let opened = record
                .enquiry(&self.keys)
                .map_err(|source| OutboxError::Sealed {
                    path: self.path.clone(),
                    source,
                })?;
            let Some(enquiry) = opened else {
                tracing::error!(call_sid = %record.call_sid, "outbox record with an unusable number; kept in the file");
                return Err(OutboxError::Corrupt {
                    path: self.path.clone(),
                    line: 0,
                    message: "the call-back number is not a UK number".into(),
                });
            };
            let stored = store
                .create_enquiry_with(&enquiry, Some(&record.reference))
                .await?;
            tracing::info!(call_sid = %record.call_sid, reference = %stored.reference, enquiry = %stored.id,
                "enquiry from the outbox stored");
        }
        // Records appended meanwhile stay; the file is rewritten (then renamed over the
        // old one) only now that every earlier record is stored.
        let mut pending = self.pending.lock().await;
        let rest: Vec<OutboxRecord> = pending
            .iter()
            .filter(|r| !snapshot.iter().any(|s| s.call_sid == r.call_sid))
            .cloned()
            .collect();
        let mut text = String::new();
        for r in &rest {
            let line = serde_json::to_string(r).map_err(|e| self.io(std::io::Error::other(e)))?;
            text.push_str(&line);
            text.push('\n');
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || rewrite(&path, text.as_bytes()))
            .await
            .map_err(|e| self.io(std::io::Error::other(e)))?
            .map_err(|e| self.io(e))?;
        *pending = rest;
        self.set_count(pending.len());
        // The rewrite put a new file at the path: lock that one.
        if let Err(e) = self.hold_lock(true) {
            tracing::warn!(error = %e, "could not lock the outbox file again");
        }
        Ok(snapshot.len())
    }

    /// Locks our file (creating it and its directory), unless already locked; `again`
    /// after the file was replaced.
    fn hold_lock(&self, again: bool) -> std::io::Result<()> {
        let mut held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_some() && !again {
            return Ok(());
        }
        *held = None;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        match file.try_lock() {
            Ok(()) => {
                *held = Some(file);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::other(
                "another process holds this instance's outbox file",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Stores the records of every other outbox file in our directory that no running
    /// instance holds (one left by an instance that stopped or was killed), then deletes
    /// it. A file whose records cannot all be stored yet is kept for the next try. Returns
    /// how many records were stored.
    pub async fn adopt_leftovers(&self, store: &dyn Store) -> usize {
        let Some(dir) = self.path.parent() else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut stored = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path == self.path || !name.starts_with("outbox-") || !name.ends_with(".jsonl") {
                continue;
            }
            let Ok(file) = std::fs::OpenOptions::new().append(true).open(&path) else {
                continue;
            };
            // Held by a running instance, or empty (one just being started): not ours.
            if file.try_lock().is_err() || file.metadata().map_or(true, |m| m.len() == 0) {
                continue;
            }
            let adopted = match Outbox::open(&path, usize::MAX, self.keys.clone()) {
                Ok(left) => left.replay(store).await,
                Err(e) => Err(e),
            };
            match adopted {
                Ok(n) => {
                    stored += n;
                    // Only now, every record stored and the file still ours.
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::warn!(error = %e, file = %path.display(), "adopted outbox file not removed");
                    }
                    tracing::info!(records = n, file = %path.display(), "outbox left by a stopped instance stored");
                }
                Err(e) => {
                    tracing::warn!(error = %e, file = %path.display(), "outbox left by a stopped instance not stored yet")
                }
            }
            drop(file);
        }
        stored
    }
}

/// Appends `bytes` and waits until they are on disk.
fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let new = !path.exists();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    if new {
        sync_dir(path);
    }
    Ok(())
}

/// Replaces the file's contents: a temporary file, synced, renamed over it.
fn rewrite(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() && !path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension("jsonl.tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path);
    Ok(())
}

/// Makes a new or renamed file's directory entry durable (best effort: not every
/// platform can open a directory).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The records in an outbox file (none when it does not exist).
pub fn read_records(path: &Path) -> Result<Vec<OutboxRecord>, OutboxError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(OutboxError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut records: Vec<OutboxRecord> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: OutboxRecord =
            serde_json::from_str(line).map_err(|e| OutboxError::Corrupt {
                path: path.to_path_buf(),
                line: i + 1,
                message: e.to_string(),
            })?;
        // The first record for a call is the reference the caller heard.
        if seen.insert(record.call_sid.clone()) {
            records.push(record);
        }
    }
    Ok(records)
}

/// Replays the outbox every `every` while it holds records.
pub fn spawn_replay(
    outbox: Arc<Outbox>,
    store: Arc<dyn Store>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            outbox.adopt_leftovers(store.as_ref()).await;
            if outbox.is_empty() {
                continue;
            }
            match outbox.replay(store.as_ref()).await {
                Ok(n) => {
                    tracing::info!(records = n, "enquiry outbox replayed into the database")
                }
                Err(e) => {
                    tracing::warn!(error = %e, waiting = outbox.len(), "enquiry outbox not replayed yet")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Arc<Keyring> {
        Arc::new(Keyring::ephemeral())
    }

    fn enquiry(call_sid: &str) -> NewEnquiry {
        let now = Utc::now();
        NewEnquiry {
            call_sid: call_sid.into(),
            callback_number: crate::phone::UkNumber::parse("+447700900123").unwrap(),
            trust: Trust::NotSure,
            category: Category::Other,
            recording: Some(Recording {
                url: "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0123".into(),
                duration_seconds: 12,
            }),
            created_at: now,
            callback_due: now.date_naive(),
            source: Source::CallbackRequest,
            waiting_since: now,
        }
    }

    #[tokio::test]
    async fn keeps_one_synced_line_per_call_and_refuses_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys();
        let outbox = Outbox::new(&dir.path().join("outbox"), 2, keys.clone());
        assert!(!outbox.path().exists(), "nothing is made before a record");
        let a = outbox.keep(&enquiry("CA1")).await.unwrap();
        let again = outbox.keep(&enquiry("CA1")).await.unwrap();
        assert_eq!(
            a.reference, again.reference,
            "a retry hears the same reference"
        );
        outbox.keep(&enquiry("CA2")).await.unwrap();
        assert!(matches!(
            outbox.keep(&enquiry("CA3")).await,
            Err(OutboxError::Full(2))
        ));
        assert_eq!(outbox.len(), 2);
        let read = read_records(outbox.path()).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0], a);
        // The file holds the number and the recording sealed, never in plain text.
        let text = std::fs::read_to_string(outbox.path()).unwrap();
        assert!(
            !text.contains("7700900123") && !text.contains("RE0123") && !text.contains("twilio"),
            "{text}"
        );
        assert!(a.callback_number.starts_with(&keys.current_head()));
        assert_eq!(read[0].enquiry(&keys).unwrap().unwrap(), {
            let mut e = enquiry("CA1");
            e.created_at = a.created_at;
            e.waiting_since = a.waiting_since;
            e.callback_due = a.callback_due;
            e
        });
        let reopened = Outbox::open(outbox.path(), 2, keys.clone()).unwrap();
        assert_eq!(reopened.len(), 2);
        // Another key cannot read it, and says so rather than store garbage.
        assert!(read[0].enquiry(&Keyring::ephemeral()).is_err());
    }

    /// A file written before encryption (numbers in plain text) is still replayed.
    #[tokio::test]
    async fn a_plaintext_record_from_before_encryption_is_still_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox-oldinstance.jsonl");
        let store = crate::store::connect("sqlite::memory:").await.unwrap();
        let plain = OutboxRecord {
            callback_number: "+447700900123".into(),
            recording: None,
            ..OutboxRecord::new(
                &enquiry("CAold"),
                Reference::random(),
                &Keyring::ephemeral(),
            )
        };
        std::fs::write(
            &path,
            format!("{}\n", serde_json::to_string(&plain).unwrap()),
        )
        .unwrap();
        let old = Outbox::open(&path, 10, store.data_keys()).unwrap();
        assert_eq!(old.replay(store.as_ref()).await.unwrap(), 1);
        let stored = store.enquiry_for_call("CAold").await.unwrap().unwrap();
        assert_eq!(stored.callback_number, "+447700900123");
        assert_eq!(stored.reference, plain.reference);
    }

    #[tokio::test]
    async fn a_stopped_instances_outbox_is_adopted_and_a_running_ones_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("outbox");
        let store = crate::store::connect("sqlite::memory:").await.unwrap();
        let keys = store.data_keys();
        // A running instance with a record waiting: its file is locked, so left alone.
        let running = Outbox::new(&out, 10, keys.clone());
        running.keep(&enquiry("CArunning")).await.unwrap();
        // An instance killed after speaking a reference: its file is held by nobody.
        let killed = Outbox::new(&out, 10, keys.clone());
        let spoken = killed.keep(&enquiry("CAkilled")).await.unwrap();
        let killed_path = killed.path().to_path_buf();
        drop(killed);
        let restarted = Outbox::new(&out, 10, keys);
        assert_eq!(restarted.adopt_leftovers(store.as_ref()).await, 1);
        assert!(!killed_path.exists(), "adopted, stored, removed");
        assert!(
            running.path().exists(),
            "a running instance's file is not taken"
        );
        let stored = store.enquiry_for_call("CAkilled").await.unwrap().unwrap();
        assert_eq!(
            stored.reference, spoken.reference,
            "the reference the caller heard"
        );
        assert_eq!(stored.callback_number, "+447700900123", "opened");
        assert!(store.enquiry_for_call("CArunning").await.unwrap().is_none());
        assert_eq!(restarted.adopt_leftovers(store.as_ref()).await, 0, "once");
    }
}
