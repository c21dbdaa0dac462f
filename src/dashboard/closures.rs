//! Managers manage closures, special openings and the emergency "close the line now"
//! switch. Before saving, the page shows what the change does: whether the line would be
//! open now and when it next opens. Every change is audited and applies on every instance
//! at the next call step (the hours revision).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use super::views::{self, render, Nav};
use super::{Dashboard, Staff, WebError};
use crate::hours::{speech, Closure, ClosureKind, OpeningHours, LONDON};
use crate::staff::audit::Action;
use crate::staff::Role;
use crate::store::NewClosure;

pub fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/closures", get(page).post(act))
        .route("/closures/{id}/remove", post(remove))
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct ClosureForm {
    /// closed, open, or now (the emergency switch: closed from now).
    #[serde(default)]
    pub kind: String,
    /// Europe/London, `YYYY-MM-DDTHH:MM` (a datetime-local input).
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub reason: String,
    /// check or save
    #[serde(default)]
    pub action: String,
}

fn london(s: &str, what: &str) -> Result<DateTime<Utc>, WebError> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M")
        .ok()
        .and_then(|t| t.and_local_timezone(LONDON).earliest())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            WebError::BadRequest(format!("the {what} time is missing or not a date and time"))
        })
}

/// In words: open or closed at `now`, and the next opening.
fn effect(hours: &OpeningHours, now: DateTime<Utc>) -> String {
    let s = hours.status(now);
    if s.open {
        let until = s
            .closes_at
            .map(|t| format!(" until {}", speech::spoken_time(t.time())))
            .unwrap_or_default();
        format!("The line is open now{until}.")
    } else {
        let next = s
            .next_open
            .map(|t| format!(" It opens again {}.", speech::spoken_next_open(now, t)))
            .unwrap_or_else(|| " Nothing opens it again within two years.".into());
        format!("The line is closed now ({}).{next}", s.reason.describe())
    }
}

impl Dashboard {
    fn proposed(&self, form: &ClosureForm) -> Result<NewClosure, WebError> {
        let now = self.now();
        let (kind, from) = match form.kind.as_str() {
            "now" => (ClosureKind::Closed, now),
            "closed" => (ClosureKind::Closed, london(&form.from, "start")?),
            "open" => (ClosureKind::Open, london(&form.from, "start")?),
            other => {
                return Err(WebError::BadRequest(format!(
                    "`{other}` is not a kind: use closed, open or now"
                )))
            }
        };
        let until = london(&form.until, "end")?;
        if let Some(problem) = crate::hours::closure_problem(from, until, &form.reason, now) {
            return Err(WebError::BadRequest(format!(
                "{}.",
                views::capitalised(problem)
            )));
        }
        Ok(NewClosure {
            kind,
            from,
            until,
            reason: form.reason.trim().to_string(),
            created_at: now,
        })
    }

    /// What the line would do with `new` added.
    fn effect_with(&self, new: &NewClosure) -> String {
        let hours = self.hours.get();
        let mut closures: Vec<Closure> = hours.closures().to_vec();
        closures.push(Closure {
            id: 0,
            kind: new.kind,
            from: new.from,
            until: new.until,
            reason: new.reason.clone(),
        });
        let with = OpeningHours::new(hours.schedule().clone(), hours.shared_holidays())
            .with_closures(closures);
        effect(&with, self.now())
    }
}

async fn show(
    d: &Dashboard,
    staff: &Staff,
    form: ClosureForm,
    preview: Option<String>,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    staff.require(d, Role::Manager, "closures").await?;
    // Catch up first, so the page shows what callers get now.
    if let Err(e) = d.hours.sync(d.store.as_ref()).await {
        tracing::warn!(error = %e, "could not refresh the hours for the closures page");
    }
    let now = d.now();
    let rows = d
        .store
        .list_closures()
        .await?
        .into_iter()
        .filter(|c| c.until > now)
        .map(|c| views::ClosureRow {
            id: c.id,
            kind: if c.kind == ClosureKind::Closed {
                "Closed".into()
            } else {
                "Special opening".into()
            },
            from: views::local_time(c.from),
            until: views::local_time(c.until),
            reason: c.reason,
            now: c.from <= now,
        })
        .collect();
    let page = views::ClosuresPage {
        nav: Nav::new(&staff.user, &staff.session.csrf, "closures"),
        rows,
        current: effect(&d.hours.get(), now),
        preview,
        kind: form.kind,
        from: form.from,
        until: form.until,
        reason: form.reason,
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

#[derive(Debug, Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: Option<String>,
}

async fn page(
    State(d): State<Dashboard>,
    staff: Staff,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<Response, WebError> {
    let notice = match done.done.as_deref() {
        Some("saved") => Some("Saved. Callers get the new hours from their next step."),
        Some("removed") => Some("Removed."),
        _ => None,
    };
    show(&d, &staff, ClosureForm::default(), None, notice, None).await
}

async fn act(
    State(d): State<Dashboard>,
    staff: Staff,
    Form(form): Form<ClosureForm>,
) -> Result<Response, WebError> {
    staff.require(&d, Role::Manager, "closures").await?;
    let new = match d.proposed(&form) {
        Ok(n) => n,
        Err(WebError::BadRequest(m)) => return show(&d, &staff, form, None, None, Some(&m)).await,
        Err(e) => return Err(e),
    };
    if form.action != "save" {
        let preview = d.effect_with(&new);
        return show(&d, &staff, form, Some(preview), None, None).await;
    }
    let c = d.store.add_closure(&new).await?;
    apply_hours(&d).await;
    d.audit(
        Some(&staff.user),
        Action::ClosureAdded,
        Some(&c.id.to_string()),
        &staff.address,
        Some(c.kind.as_str()),
    )
    .await;
    Ok(Redirect::to("/closures?done=saved").into_response())
}

/// This instance's callers get a changed closure at once (other instances within
/// `HELPLINE_CHANGES_CHECK_MS`).
async fn apply_hours(d: &Dashboard) {
    if let Err(e) = d.hours.sync(d.store.as_ref()).await {
        tracing::warn!(error = %e, "closure saved, but the hours could not be reloaded here; callers get it within a second or so");
    }
}

async fn remove(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    staff.require(&d, Role::Manager, "closures").await?;
    if !d.store.remove_closure(id).await? {
        return Err(WebError::NotFound);
    }
    apply_hours(&d).await;
    d.audit(
        Some(&staff.user),
        Action::ClosureRemoved,
        Some(&id.to_string()),
        &staff.address,
        None,
    )
    .await;
    Ok(Redirect::to("/closures?done=removed").into_response())
}
