//! Data retention (issue 7): enquiries closed more than `HELPLINE_RETENTION_DAYS` ago, and
//! calls without an enquiry that started that long ago, are deleted with everything that
//! hangs off them (steps, answers, call-back attempts, notes, texts sent), and their
//! recordings deleted at Twilio. `helpline purge [--dry-run]` runs it once; `serve` runs it
//! daily on one instance (a lease).
//!
//! Order of work: the statistics of the days whose calls are about to go are rolled up
//! first (`stats_days` outlives the calls), then the rows go a batch per transaction, each
//! batch queueing its recordings in `recording_deletions` in the same transaction; last,
//! every queued recording is deleted at Twilio and forgotten only once Twilio confirms it
//! (204, or 404: already gone). A recording Twilio could not delete stays queued and is
//! tried again at the next purge. Open enquiries, the audit log and the roll-ups are never
//! touched. Logged and printed: counts only, never a number or a recording.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::flows::Flow;
use crate::hours::live::LiveHours;
use crate::hours::{OpeningHours, LONDON};
use crate::staff::audit::{Action, NewEntry};
use crate::store::retention::PurgeCounts;
use crate::store::{Store, StoreError};
use crate::twilio::rest::{Deletion, RestError, TwilioApi};

/// Enquiries (and, apart, calls) deleted per transaction.
pub const BATCH: u32 = 500;
/// The most queued recordings tried in one run (the rest wait for the next).
const RECORDINGS_PER_RUN: u32 = 5_000;
/// Twilio failing this many times in a row (unreachable, timing out, refusing with 5xx)
/// ends this run's deletes: the rest wait for the next run rather than for every timeout.
const GIVE_UP_AFTER: u32 = 5;

/// The lease that makes one instance purge for all.
pub const LEASE: &str = "retention-purge";
/// How often the purge runs.
pub const DAILY: Duration = Duration::from_secs(24 * 60 * 60);
/// How soon a failed purge is tried again (and how often instances without the lease look).
pub const RETRY: Duration = Duration::from_secs(60 * 60);
/// How long after start the first purge is, so that it does not compete with startup.
const FIRST_AFTER: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a purge did (or, dry, would do). Counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub dry_run: bool,
    pub retention_days: u32,
    /// Enquiries closed before this, and calls without an enquiry started before it, go.
    pub cutoff: DateTime<Utc>,
    /// The rows removed (dry run: that would be), and the recordings newly queued for
    /// deletion at Twilio.
    pub removed: PurgeCounts,
    /// Recordings Twilio confirmed deleted in this run (dry run: 0).
    pub recordings_deleted: u64,
    /// … of which Twilio no longer had (404).
    pub recordings_already_gone: u64,
    /// Recordings Twilio could not delete this run: kept, and tried again next time.
    pub recordings_failed: u64,
    /// Recordings still waiting for Twilio after the run (dry run: before it, plus those the
    /// purge would queue).
    pub recordings_pending: u64,
}

/// The statistics' view of the line, for rolling up the days whose calls are about to go.
pub struct RollUp<'a> {
    pub flow: &'a Flow,
    pub hours: &'a OpeningHours,
}

/// The cut-off for `retention_days` at `now`.
pub fn cutoff(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(retention_days))
}

/// Runs the purge once at `now`. With `dry_run` nothing is changed and Twilio is not asked.
/// `rollup`, when given, makes sure the statistics of every day whose calls go are kept
/// first; a failure there stops the purge before anything is deleted.
pub async fn run(
    store: &dyn Store,
    twilio: &dyn TwilioApi,
    retention_days: u32,
    now: DateTime<Utc>,
    dry_run: bool,
    rollup: Option<RollUp<'_>>,
) -> Result<PurgeReport, PurgeError> {
    let cutoff = cutoff(now, retention_days);
    let preview = store.purge_preview(cutoff).await?;
    let mut report = PurgeReport {
        dry_run,
        retention_days,
        cutoff,
        ..PurgeReport::default()
    };
    if dry_run {
        report.removed = preview.counts;
        report.recordings_pending = preview.recordings_pending + preview.counts.recordings;
        return Ok(report);
    }

    if let (Some(r), Some(oldest)) = (&rollup, preview.oldest_call) {
        let since = oldest.with_timezone(&LONDON).date_naive();
        let until = cutoff.with_timezone(&LONDON).date_naive();
        crate::stats::rollup::days(store, r.flow, r.hours, since, until, now).await?;
    }

    loop {
        let batch = store.purge_batch(cutoff, BATCH, now).await?;
        report.removed.add(&batch.counts);
        if !batch.more {
            break;
        }
    }

    let (deleted, gone, failed) = delete_recordings(store, twilio, now).await?;
    report.recordings_deleted = deleted;
    report.recordings_already_gone = gone;
    report.recordings_failed = failed;
    report.recordings_pending = store.purge_preview(cutoff).await?.recordings_pending;

    if !report.removed.is_empty() || deleted > 0 {
        let r = &report.removed;
        let detail = format!(
            "enquiries {}, calls {}, call steps {}, answers {}, call-back attempts {}, notes {}, texts {}, \
             recordings queued {}, recordings deleted {}",
            r.enquiries,
            r.calls,
            r.call_steps,
            r.call_answers,
            r.callback_attempts,
            r.enquiry_notes,
            r.texts_sent,
            r.recordings,
            deleted
        );
        store
            .append_audit(&NewEntry {
                at: now,
                actor_id: None,
                actor: "system (retention)".into(),
                action: Action::RetentionPurged,
                target: None,
                address: None,
                detail: Some(detail),
            })
            .await?;
    }
    Ok(report)
}

/// Asks Twilio to delete every queued recording (up to [`RECORDINGS_PER_RUN`]); returns
/// (deleted, of which already gone, failed).
async fn delete_recordings(
    store: &dyn Store,
    twilio: &dyn TwilioApi,
    now: DateTime<Utc>,
) -> Result<(u64, u64, u64), StoreError> {
    let (mut deleted, mut gone, mut failed) = (0u64, 0u64, 0u64);
    let mut in_a_row = 0u32;
    for pending in store
        .pending_recording_deletions(RECORDINGS_PER_RUN)
        .await?
    {
        match twilio.delete_recording(&pending.recording_url).await {
            Ok(how) => {
                store
                    .recording_deletion_done(&pending.recording_url)
                    .await?;
                deleted += 1;
                if how == Deletion::AlreadyGone {
                    gone += 1;
                }
                in_a_row = 0;
            }
            Err(RestError::NotConfigured) => {
                tracing::warn!(
                    "retention: recordings cannot be deleted at Twilio until TWILIO_ACCOUNT_SID and \
                     TWILIO_AUTH_TOKEN are set; they stay queued"
                );
                break;
            }
            Err(e) => {
                let reason = match &e {
                    RestError::Rejected { status, .. } => format!("HTTP {status}"),
                    RestError::Timeout => "timeout".into(),
                    RestError::BadRecordingUrl => "not a recording of this account".into(),
                    RestError::Transport(_) => "unreachable".into(),
                    RestError::NotConfigured => "not configured".into(),
                };
                store
                    .recording_deletion_failed(&pending.recording_url, now, &reason)
                    .await?;
                failed += 1;
                let twilio_trouble = match &e {
                    RestError::Rejected { status, .. } => *status >= 500 || *status == 429,
                    RestError::Timeout | RestError::Transport(_) => true,
                    _ => false,
                };
                in_a_row = if twilio_trouble { in_a_row + 1 } else { 0 };
                if in_a_row >= GIVE_UP_AFTER {
                    tracing::warn!(
                        failures = in_a_row,
                        "retention: Twilio keeps failing; the remaining recordings wait for the next purge"
                    );
                    break;
                }
            }
        }
    }
    Ok((deleted, gone, failed))
}

/// Purges in the background: [`FIRST_AFTER`] after start, then daily. With several
/// instances on one database, whichever takes the day's lease purges. Failures are logged
/// and tried again within the hour.
pub fn spawn_daily(
    store: Arc<dyn Store>,
    twilio: Arc<dyn TwilioApi>,
    flow: Arc<Flow>,
    hours: Arc<LiveHours>,
    clock: Arc<dyn Clock>,
    instance: String,
    retention_days: u32,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_AFTER).await;
        loop {
            let now = clock.now();
            let until = now + chrono::Duration::hours(23);
            let next = match store.try_lease(LEASE, &instance, now, until).await {
                Ok(false) => {
                    tracing::debug!("retention: another instance purges today");
                    RETRY
                }
                Err(e) => {
                    // Unlike the calendar refresh, never purge without the lease.
                    tracing::warn!(error = %e, "retention: cannot take the purge lease; trying again within the hour");
                    RETRY
                }
                Ok(true) => {
                    let began = std::time::Instant::now();
                    let current = hours.get();
                    let rollup = RollUp {
                        flow: &flow,
                        hours: &current,
                    };
                    match run(
                        store.as_ref(),
                        twilio.as_ref(),
                        retention_days,
                        now,
                        false,
                        Some(rollup),
                    )
                    .await
                    {
                        Ok(r) => {
                            tracing::info!(
                                enquiries = r.removed.enquiries,
                                calls = r.removed.calls,
                                recordings_deleted = r.recordings_deleted,
                                recordings_failed = r.recordings_failed,
                                recordings_pending = r.recordings_pending,
                                ms = began.elapsed().as_millis() as u64,
                                "retention purge done"
                            );
                            DAILY
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "retention purge failed; trying again within the hour");
                            // Give the lease back so this or another instance tries again soon.
                            let _ = store.try_lease(LEASE, &instance, now, now).await;
                            RETRY
                        }
                    }
                }
            };
            tokio::time::sleep(next).await;
        }
    })
}
