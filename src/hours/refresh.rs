//! Refreshing the bank-holiday calendar from the GOV.UK feed: fetch (conditionally),
//! validate against the calendar in force, persist the good copy, and reload. A bad,
//! empty, slow or unreachable feed changes nothing: the line never opens or closes by mistake.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::feed::{
    accept_with, diff, Checks, Diff, Feed, FeedError, Fetched, Rejected, Validators,
};
use super::live::{freshness_warning, LiveHours};
use super::{division_key, LONDON};
use crate::clock::Clock;
use crate::store::{Store, StoreError, StoredCalendar};

/// How often the feed is checked when all is well.
pub const DAILY: Duration = Duration::from_secs(24 * 60 * 60);
/// How soon a failed refresh is tried again (and how often instances without the lease look).
pub const RETRY: Duration = Duration::from_secs(60 * 60);

#[derive(Debug)]
pub enum Outcome {
    /// The feed answered 304: our copy is current.
    NotModified,
    /// A new copy with the same dates (validators and fetch time recorded).
    Unchanged,
    Updated(Diff),
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the bank-holiday feed could not be fetched: {0}")]
    Feed(#[from] FeedError),
    #[error("the bank-holiday feed was not used: {0}")]
    Rejected(#[from] Rejected),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Fetches the feed now and, if it passes validation, makes it the calendar in force.
pub async fn refresh(
    feed: &Feed,
    store: &dyn Store,
    live: &LiveHours,
    now: DateTime<Utc>,
) -> Result<Outcome, RefreshError> {
    refresh_with(feed, store, live, now, Checks::All).await
}

/// [`refresh`] with a choice of checks; `Checks::ShapeOnly` also fetches unconditionally.
pub async fn refresh_with(
    feed: &Feed,
    store: &dyn Store,
    live: &LiveHours,
    now: DateTime<Utc>,
    checks: Checks,
) -> Result<Outcome, RefreshError> {
    live.sync(store).await?;
    let current = live.get();
    let key = division_key(live.division());
    // Stored, shown by /readyz and the CLI, and logged: never with credentials or a query.
    let url = feed.shown_url().to_string();
    let stored = store.stored_calendar(key).await?;
    // Conditional headers only make sense for a copy that came from this same URL.
    let validators = stored
        .as_ref()
        .filter(|s| s.source == url && checks == Checks::All)
        .map(|s| Validators {
            etag: s.etag.clone(),
            last_modified: s.last_modified.clone(),
        })
        .unwrap_or_default();
    match feed.fetch(&validators).await? {
        Fetched::NotModified => {
            store.calendar_checked(key, now).await?;
            Ok(Outcome::NotModified)
        }
        Fetched::New { body, validators } => {
            let today = now.with_timezone(&LONDON).date_naive();
            let accepted = accept_with(
                current.holidays(),
                &body,
                live.division(),
                &url,
                today,
                checks,
            )?;
            let changes = diff(current.holidays(), &accepted);
            let document = String::from_utf8(accepted.to_govuk_json())
                .map_err(|e| StoreError::Corrupt(format!("calendar JSON is not UTF-8: {e}")))?;
            store
                .save_calendar(&StoredCalendar {
                    division: key.to_string(),
                    document,
                    source: url,
                    fetched_at: now,
                    checked_at: now,
                    etag: validators.etag,
                    last_modified: validators.last_modified,
                })
                .await?;
            live.sync(store).await?;
            Ok(if changes.is_empty() {
                Outcome::Unchanged
            } else {
                Outcome::Updated(changes)
            })
        }
    }
}

/// The lease that makes one instance refresh for all.
pub const LEASE: &str = "bank-holiday-refresh";

/// Refreshes in the background: at once (without delaying startup), then daily. With several
/// instances on one database, whichever takes the day's lease refreshes; the others pick the
/// new calendar up from the database. Failures keep the calendar in force and are logged; a
/// calendar running short is warned about.
pub fn spawn_daily(
    feed: Feed,
    store: Arc<dyn Store>,
    live: Arc<LiveHours>,
    clock: Arc<dyn Clock>,
    instance: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = clock.now();
            let until = now + chrono::Duration::hours(23);
            let next = match store.try_lease(LEASE, &instance, now, until).await {
                Ok(false) => {
                    tracing::debug!("bank holidays: another instance refreshes today");
                    RETRY
                }
                taken => {
                    if let Err(e) = taken {
                        tracing::warn!(error = %e, "bank holidays: cannot take the refresh lease; refreshing anyway");
                    }
                    match refresh(&feed, store.as_ref(), &live, now).await {
                        Ok(outcome) => {
                            match outcome {
                                Outcome::NotModified => {
                                    tracing::info!("bank holidays: feed not modified")
                                }
                                Outcome::Unchanged => {
                                    tracing::info!("bank holidays: feed fetched, no change")
                                }
                                Outcome::Updated(d) => {
                                    tracing::info!(changes = %d.to_string().replace('\n', "; "), "bank holidays updated")
                                }
                            }
                            DAILY
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "bank holidays: keeping the calendar in force; retrying within the hour");
                            // Give the lease back so this or another instance tries again soon.
                            let _ = store.try_lease(LEASE, &instance, now, now).await;
                            RETRY
                        }
                    }
                }
            };
            if let Some(w) = freshness_warning(live.get().holidays(), now) {
                tracing::warn!("{w}");
            }
            tokio::time::sleep(next).await;
        }
    })
}
