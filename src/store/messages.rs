//! The line's editable messages: drafts and every published version.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// One version of a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct MessageVersion {
    pub id: i64,
    pub name: String,
    pub body: String,
    pub state: String,
    /// The author's e-mail (their id if the account is gone).
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub note: Option<String>,
}

#[async_trait]
pub trait MessagesStore: Send + Sync {
    /// Replaces the draft of `name`.
    async fn save_draft(
        &self,
        name: &str,
        body: &str,
        author: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn draft(&self, name: &str) -> Result<Option<MessageVersion>, StoreError>;
    /// Publishes `body` as the new version of `name` (the draft goes), and bumps the content
    /// revision so every instance picks it up (within `HELPLINE_CHANGES_CHECK_MS`).
    async fn publish_message(
        &self,
        name: &str,
        body: &str,
        author: &str,
        at: DateTime<Utc>,
        note: Option<&str>,
    ) -> Result<MessageVersion, StoreError>;
    /// Published versions, newest first.
    async fn message_versions(&self, name: &str) -> Result<Vec<MessageVersion>, StoreError>;
    /// The version in force.
    async fn current_message(&self, name: &str) -> Result<Option<MessageVersion>, StoreError>;
    async fn content_revision(&self) -> Result<i64, StoreError>;
}

const COLUMNS: &str = "m.id, m.name, m.body, m.state, COALESCE(u.email, m.author_id) AS author, m.created_at, m.note \
     FROM line_messages m LEFT JOIN users u ON u.id = m.author_id";

pub(super) fn columns() -> &'static str {
    COLUMNS
}

/// `impl MessagesStore for $store`, over `self.pool`.
macro_rules! messages_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl super::messages::MessagesStore for $store {
            async fn save_draft(&self, name: &str, body: &str, author: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM line_messages WHERE name = $1 AND state = 'draft'")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO line_messages (name, body, state, author_id, created_at) VALUES ($1, $2, 'draft', $3, $4)",
                )
                .bind(name)
                .bind(body)
                .bind(author)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn draft(&self, name: &str) -> Result<Option<super::messages::MessageVersion>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} WHERE m.name = $1 AND m.state = 'draft' ORDER BY m.id DESC LIMIT 1",
                    super::messages::columns()
                ))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn publish_message(
                &self,
                name: &str,
                body: &str,
                author: &str,
                at: DateTime<Utc>,
                note: Option<&str>,
            ) -> Result<super::messages::MessageVersion, StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE content_revision SET revision = revision + 1 WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM line_messages WHERE name = $1 AND state = 'draft'")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO line_messages (name, body, state, author_id, created_at, note) \
                     VALUES ($1, $2, 'published', $3, $4, $5) RETURNING id",
                )
                .bind(name)
                .bind(body)
                .bind(author)
                .bind(at)
                .bind(note)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                let v: Option<super::messages::MessageVersion> = sqlx::query_as(&format!(
                    "SELECT {} WHERE m.id = $1",
                    super::messages::columns()
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                v.ok_or_else(|| StoreError::Corrupt("a published message vanished".into()))
            }

            async fn message_versions(&self, name: &str) -> Result<Vec<super::messages::MessageVersion>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} WHERE m.name = $1 AND m.state = 'published' ORDER BY m.id DESC",
                    super::messages::columns()
                ))
                .bind(name)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn current_message(&self, name: &str) -> Result<Option<super::messages::MessageVersion>, StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} WHERE m.name = $1 AND m.state = 'published' ORDER BY m.id DESC LIMIT 1",
                    super::messages::columns()
                ))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn content_revision(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT revision FROM content_revision WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?)
            }
        }
    };
}

pub(super) use messages_sql;
