//! Managers keep the line's messages current: write a draft, preview it as callers will
//! hear it, publish it (this instance uses it from the next call step, others within
//! `HELPLINE_CHANGES_CHECK_MS`), and restore any
//! earlier version. Every change is audited.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::views::{self, render, Nav};
use super::{Dashboard, Staff, WebError};
use crate::messages::{self as msg, MessageError};
use crate::staff::audit::Action;
use crate::staff::Role;
use crate::store::messages::MessageVersion;

pub fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/messages/{name}", get(page).post(act))
        .route("/messages/{name}/restore/{id}", post(restore))
        .route("/api/messages/{name}", get(api_get).post(api_act))
        .route("/api/messages/{name}/restore/{id}", post(api_restore))
}

impl From<MessageError> for WebError {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::Unknown(_) => WebError::NotFound,
            other => WebError::BadRequest(other.to_string()),
        }
    }
}

/// A message's state: in force, draft, history.
struct Current {
    name: &'static str,
    published: Option<MessageVersion>,
    draft: Option<MessageVersion>,
    versions: Vec<MessageVersion>,
    /// The words in force when nothing was ever published: the call flow's.
    flow_text: String,
}

impl Dashboard {
    /// This instance's callers hear a published message from their next step (other
    /// instances within `HELPLINE_CHANGES_CHECK_MS`).
    async fn apply_messages(&self) {
        if let Err(e) = self.content.sync(self.store.as_ref()).await {
            tracing::warn!(error = %e, "published, but could not reload the messages here; callers hear it within a second or so");
        }
    }

    async fn message(&self, staff: &Staff, name: &str) -> Result<Current, WebError> {
        staff.require(self, Role::Manager, "messages").await?;
        let name = msg::editable(name)?;
        let flow_text = match self.flow.node(name).map(|n| &n.kind) {
            Some(crate::flows::model::NodeKind::Say { text, .. }) => text.render(|_| None),
            _ => String::new(),
        };
        Ok(Current {
            name,
            published: self.store.current_message(name).await?,
            draft: self.store.draft(name).await?,
            versions: self.store.message_versions(name).await?,
            flow_text,
        })
    }

    /// Saves a draft, or publishes (`publish`): returns what callers will hear.
    pub async fn change_message(
        &self,
        staff: &Staff,
        name: &str,
        body: &str,
        publish: bool,
    ) -> Result<String, WebError> {
        let current = self.message(staff, name).await?;
        let body = msg::check(body)?;
        let now = self.now();
        if publish {
            let v = self
                .store
                .publish_message(current.name, &body, &staff.user.id, now, None)
                .await?;
            self.apply_messages().await;
            self.audit(
                Some(&staff.user),
                Action::MessagePublished,
                Some(current.name),
                &staff.address,
                Some(&format!("version {}", v.id)),
            )
            .await;
        } else {
            self.store
                .save_draft(current.name, &body, &staff.user.id, now)
                .await?;
            self.audit(
                Some(&staff.user),
                Action::MessageDraftSaved,
                Some(current.name),
                &staff.address,
                None,
            )
            .await;
        }
        Ok(msg::spoken(&body))
    }

    /// Publishes an earlier version again (the history keeps both).
    pub async fn restore_message(
        &self,
        staff: &Staff,
        name: &str,
        id: i64,
    ) -> Result<(), WebError> {
        let current = self.message(staff, name).await?;
        let old = current
            .versions
            .iter()
            .find(|v| v.id == id)
            .ok_or(WebError::NotFound)?;
        let note = format!("restored version {id}");
        self.store
            .publish_message(
                current.name,
                &old.body,
                &staff.user.id,
                self.now(),
                Some(&note),
            )
            .await?;
        self.apply_messages().await;
        self.audit(
            Some(&staff.user),
            Action::MessageRestored,
            Some(current.name),
            &staff.address,
            Some(&note),
        )
        .await;
        Ok(())
    }
}

#[derive(Debug, Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: Option<String>,
}

async fn show(
    d: &Dashboard,
    staff: &Staff,
    name: &str,
    text: Option<String>,
    preview: Option<String>,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let c = d.message(staff, name).await?;
    let in_force = c
        .published
        .as_ref()
        .map_or(c.flow_text.clone(), |v| msg::spoken(&v.body));
    let text = text
        .or_else(|| c.draft.as_ref().map(|v| v.body.clone()))
        .or_else(|| c.published.as_ref().map(|v| v.body.clone()))
        .unwrap_or_else(|| c.flow_text.clone());
    let label = msg::EDITABLE
        .iter()
        .find(|(n, _)| *n == c.name)
        .map_or("", |(_, l)| *l);
    let page = views::MessageEditPage {
        nav: Nav::new(&staff.user, &staff.session.csrf, "messages"),
        name: c.name,
        label,
        text,
        in_force,
        draft_saved: c
            .draft
            .as_ref()
            .map(|v| format!("{} at {}", v.author, views::local_time(v.created_at))),
        preview,
        versions: c
            .versions
            .iter()
            .map(|v| views::VersionRow {
                id: v.id,
                at: views::local_time(v.created_at),
                author: v.author.clone(),
                note: v.note.clone().unwrap_or_default(),
                body: v.body.clone(),
                current: c.published.as_ref().is_some_and(|p| p.id == v.id),
            })
            .collect(),
        notice,
        error,
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, Html(render(&page)?)).into_response())
}

async fn page(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let notice = match done.done.as_deref() {
        Some("published") => Some("Published. Callers hear it from their next step."),
        Some("saved") => Some("Draft saved. Callers still hear the version in force."),
        Some("restored") => Some("The earlier version is in force again."),
        _ => None,
    };
    show(&d, &staff, &name, None, None, notice, None).await
}

#[derive(Deserialize)]
struct MessageForm {
    #[serde(default)]
    body: String,
    /// preview, save or publish
    #[serde(default)]
    action: String,
}

async fn act(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(name): Path<String>,
    Form(form): Form<MessageForm>,
) -> Result<Response, WebError> {
    let result = match form.action.as_str() {
        "preview" => {
            d.message(&staff, &name).await?;
            msg::check(&form.body)
                .map(|b| msg::spoken(&b))
                .map_err(WebError::from)
        }
        "save" => d.change_message(&staff, &name, &form.body, false).await,
        "publish" => d.change_message(&staff, &name, &form.body, true).await,
        other => Err(WebError::BadRequest(format!(
            "`{other}` is not an action: use preview, save or publish"
        ))),
    };
    match (form.action.as_str(), result) {
        ("preview", Ok(spoken)) => {
            show(&d, &staff, &name, Some(form.body), Some(spoken), None, None).await
        }
        ("save", Ok(_)) => {
            Ok(Redirect::to(&format!("/messages/{name}?done=saved")).into_response())
        }
        (_, Ok(_)) => Ok(Redirect::to(&format!("/messages/{name}?done=published")).into_response()),
        (_, Err(WebError::BadRequest(m))) => {
            show(&d, &staff, &name, Some(form.body), None, None, Some(&m)).await
        }
        (_, Err(e)) => Err(e),
    }
}

async fn restore(
    State(d): State<Dashboard>,
    staff: Staff,
    Path((name, id)): Path<(String, i64)>,
) -> Result<Response, WebError> {
    d.restore_message(&staff, &name, id).await?;
    Ok(Redirect::to(&format!("/messages/{name}?done=restored")).into_response())
}

async fn api_get(State(d): State<Dashboard>, staff: Staff, Path(name): Path<String>) -> Response {
    match d.message(&staff, &name).await {
        Ok(c) => Json(json!({
            "name": c.name,
            "in_force": c.published.as_ref().map_or(c.flow_text.clone(), |v| msg::spoken(&v.body)),
            "published": c.published,
            "draft": c.draft,
            "versions": c.versions,
        }))
        .into_response(),
        Err(e) => super::api::api_err(e),
    }
}

#[derive(Deserialize)]
struct MessageBody {
    body: String,
    /// preview, save or publish
    action: String,
}

async fn api_act(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(name): Path<String>,
    Json(b): Json<MessageBody>,
) -> Response {
    let result = match b.action.as_str() {
        "preview" => match d.message(&staff, &name).await {
            Ok(_) => msg::check(&b.body)
                .map(|t| msg::spoken(&t))
                .map_err(WebError::from),
            Err(e) => Err(e),
        },
        "save" => d.change_message(&staff, &name, &b.body, false).await,
        "publish" => d.change_message(&staff, &name, &b.body, true).await,
        other => Err(WebError::BadRequest(format!(
            "`{other}` is not an action: use preview, save or publish"
        ))),
    };
    match result {
        Ok(spoken) => Json(json!({ "spoken": spoken })).into_response(),
        Err(e) => super::api::api_err(e),
    }
}

async fn api_restore(
    State(d): State<Dashboard>,
    staff: Staff,
    Path((name, id)): Path<(String, i64)>,
) -> Response {
    match d.restore_message(&staff, &name, id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => super::api::api_err(e),
    }
}
