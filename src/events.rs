//! Events about the queue and enquiries, for live pages on any instance. On PostgreSQL
//! they travel by `NOTIFY helpline_events` (every instance, the sender included, hears
//! them through its `LISTEN`); on SQLite (one machine, one process) by an in-process
//! channel. Events carry ids only, never personal data.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "helpline_events";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    EnquiryCreated { id: String },
    EnquiryClaimed { id: String, by: String },
    QueueJoined { call_sid: String },
    QueueLeft { call_sid: String, result: String },
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("event channel: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Debug)]
pub struct Events {
    local: broadcast::Sender<Event>,
    /// PostgreSQL: publish through NOTIFY (received back through the listener).
    notify: Option<sqlx::PgPool>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(l) = &self.listener {
            l.abort();
        }
    }
}

impl Events {
    /// Events within this process only (SQLite: a single instance).
    pub fn in_process() -> Self {
        Self {
            local: broadcast::channel(1024).0,
            notify: None,
            listener: None,
        }
    }

    /// Events shared by every instance on the PostgreSQL database at `url`.
    pub async fn postgres(url: &str) -> Result<Self, EventsError> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        // The listener holds a connection of its own, so publishing never waits behind it.
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        let local = broadcast::channel(1024).0;
        let forward = local.clone();
        let task = tokio::spawn(async move {
            loop {
                // `recv` reconnects by itself after a dropped connection.
                match listener.recv().await {
                    Ok(n) => match serde_json::from_str::<Event>(n.payload()) {
                        Ok(event) => {
                            let _ = forward.send(event);
                        }
                        Err(e) => tracing::warn!(error = %e, "ignoring an unreadable event"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "event listener: connection lost; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Self {
            local,
            notify: Some(pool),
            listener: Some(task),
        })
    }

    /// The events for the database at `url`.
    pub async fn for_database(url: &str) -> Result<Self, EventsError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::postgres(url).await
        } else {
            Ok(Self::in_process())
        }
    }

    /// Tells every instance. Failures are logged by callers and never fail a call.
    pub async fn publish(&self, event: &Event) -> Result<(), EventsError> {
        match &self.notify {
            Some(pool) => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(serde_json::to_string(event)?)
                    .execute(pool)
                    .await?;
            }
            None => {
                // No subscribers is fine.
                let _ = self.local.send(event.clone());
            }
        }
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_events_reach_subscribers() {
        let events = Events::in_process();
        let mut rx = events.subscribe();
        events
            .publish(&Event::EnquiryCreated { id: "e1".into() })
            .await
            .unwrap();
        assert_eq!(
            rx.recv().await.unwrap(),
            Event::EnquiryCreated { id: "e1".into() }
        );
    }

    #[test]
    fn events_are_small_json_without_personal_data() {
        let json = serde_json::to_string(&Event::QueueLeft {
            call_sid: "CA1".into(),
            result: "bridged".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"type":"queue-left","call_sid":"CA1","result":"bridged"}"#
        );
    }
}
