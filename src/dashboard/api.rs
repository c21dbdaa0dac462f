//! The same actions as JSON under `/api/` (docs/openapi.yaml). Authenticated by the same
//! session cookie; every write needs the `X-CSRF-Token` header (`GET /api/me` gives it).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;

use super::admin::{AuditQuery, ChangeForm, NewUserForm};
use super::pages::FilterQuery;
use super::{Dashboard, Staff, WebError};
use crate::enquiries::Outcome;
use crate::staff::Role;

pub fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/queue", get(queue))
        .route("/api/queue/events", get(queue_events))
        .route("/api/queue/take", post(take))
        .route("/api/enquiries", get(list))
        .route("/api/enquiries/next", post(next))
        .route("/api/enquiries/{id}", get(one))
        .route("/api/enquiries/{id}/claim", post(claim))
        .route("/api/enquiries/{id}/release", post(release))
        .route("/api/enquiries/{id}/reveal", post(reveal))
        .route("/api/enquiries/{id}/call", post(call))
        .route("/api/enquiries/{id}/outcome", post(outcome))
        .route("/api/enquiries/{id}/notes", post(note))
        .route(
            "/api/enquiries/{id}/recording",
            get(super::pages::recording),
        )
        .route("/api/users", get(users).post(add_user))
        .route("/api/users/{id}", post(change_user))
        .route("/api/audit", get(audit))
        .route("/api/stats", get(stats))
}

/// The API's answer for an error (see [`WebError::into_api_response`]).
pub(super) fn api_err(e: WebError) -> Response {
    e.into_api_response()
}

type ApiResult = Result<Response, Response>;

#[allow(clippy::result_large_err)] // the error is an HTTP response, built once per request
fn ok(v: serde_json::Value) -> ApiResult {
    Ok(Json(v).into_response())
}

async fn me(staff: Staff) -> ApiResult {
    ok(json!({
        "id": staff.user.id,
        "email": staff.user.email,
        "role": staff.user.role,
        "phone_set": staff.user.phone.is_some(),
        "csrf_token": staff.session.csrf,
    }))
}

async fn queue(State(d): State<Dashboard>, staff: Staff) -> ApiResult {
    staff
        .require(&d, Role::Handler, "queue")
        .await
        .map_err(api_err)?;
    let snap = d.queue_snapshot().await.map_err(api_err)?;
    Ok(Json(snap).into_response())
}

/// Server-sent events: a `queue` snapshot now, after every queue change on any instance,
/// and every 5 seconds (so wait times move).
async fn queue_events(
    State(d): State<Dashboard>,
    staff: Staff,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Response> {
    staff
        .require(&d, Role::Handler, "queue")
        .await
        .map_err(api_err)?;
    let rx = d.events.subscribe();
    let (session, user) = (staff.session.id_hash.clone(), staff.user.id.clone());
    let stream = futures_util::stream::unfold((d, rx, true), move |(d, mut rx, first)| {
        let (session, user) = (session.clone(), user.clone());
        async move {
            if !first {
                let tick = tokio::time::sleep(Duration::from_secs(5));
                tokio::select! {
                    _ = tick => {}
                    r = rx.recv() => {
                        if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                            return None;
                        }
                    }
                }
            }
            // The stream lasts only as long as the session: signed out, timed out, disabled or
            // no longer a handler ends it (the browser's reconnect then meets the sign-in check).
            if !d.still_allowed(&session, &user, Role::Handler).await {
                return None;
            }
            let event = match d.queue_snapshot().await {
                Ok(snap) => SseEvent::default()
                    .event("queue")
                    .json_data(&snap)
                    .unwrap_or_else(|_| SseEvent::default().comment("unreadable")),
                Err(_) => SseEvent::default().comment("queue unavailable"),
            };
            Some((Ok(event), (d, rx, false)))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn take(State(d): State<Dashboard>, staff: Staff) -> ApiResult {
    staff
        .require(&d, Role::Handler, "queue")
        .await
        .map_err(api_err)?;
    let taken = d.take_next_caller(&staff).await.map_err(api_err)?;
    ok(json!({ "taken": taken }))
}

async fn list(State(d): State<Dashboard>, staff: Staff, Query(q): Query<FilterQuery>) -> ApiResult {
    staff
        .require(&d, Role::Handler, "callbacks")
        .await
        .map_err(api_err)?;
    let filter = q.filter().map_err(api_err)?;
    let list = d.callback_list(&staff, &filter).await.map_err(api_err)?;
    ok(json!({ "enquiries": list }))
}

/// One enquiry, number masked.
async fn enquiry_json(
    d: &Dashboard,
    staff: &Staff,
    id: &str,
) -> Result<serde_json::Value, WebError> {
    let e = d.visible(staff, id).await?;
    let steps = d.store.steps(&e.call_sid).await?;
    let attempts = d.store.attempts(&e.id).await?;
    let notes = d.store.notes(&e.id).await?;
    let holder = d.holder(&e).map(str::to_string);
    Ok(json!({
        "id": e.id,
        "reference": e.reference,
        "number": e.masked_number(),
        "trust": e.trust,
        "category": e.category,
        "status": e.status,
        "source": e.source,
        "waiting_since": e.waiting_since,
        "callback_due": e.callback_due,
        "next_attempt_on": e.next_attempt_on,
        "attempts": e.attempts,
        "missed_calls": e.missed_calls,
        "closed_at": e.closed_at,
        "claimed_by_me": holder.as_deref() == Some(staff.user.id.as_str()),
        "claimed": holder.is_some(),
        "has_recording": e.recording_url.is_some(),
        "path": steps.iter().map(|s| json!({"node": s.node, "outcome": s.outcome})).collect::<Vec<_>>(),
        "history": attempts,
        "notes": notes,
    }))
}

async fn one(State(d): State<Dashboard>, staff: Staff, Path(id): Path<String>) -> ApiResult {
    ok(enquiry_json(&d, &staff, &id).await.map_err(api_err)?)
}

async fn next(State(d): State<Dashboard>, staff: Staff) -> ApiResult {
    staff
        .require(&d, Role::Handler, "callbacks")
        .await
        .map_err(api_err)?;
    match d.claim_next(&staff).await.map_err(api_err)? {
        Some(e) => ok(enquiry_json(&d, &staff, &e.id).await.map_err(api_err)?),
        None => Err(api_err(WebError::NotFound)),
    }
}

async fn claim(State(d): State<Dashboard>, staff: Staff, Path(id): Path<String>) -> ApiResult {
    d.claim(&staff, &id).await.map_err(api_err)?;
    ok(enquiry_json(&d, &staff, &id).await.map_err(api_err)?)
}

async fn release(State(d): State<Dashboard>, staff: Staff, Path(id): Path<String>) -> ApiResult {
    d.release(&staff, &id).await.map_err(api_err)?;
    ok(enquiry_json(&d, &staff, &id).await.map_err(api_err)?)
}

async fn reveal(State(d): State<Dashboard>, staff: Staff, Path(id): Path<String>) -> ApiResult {
    let number = d.reveal(&staff, &id).await.map_err(api_err)?;
    ok(json!({ "number": number }))
}

async fn call(State(d): State<Dashboard>, staff: Staff, Path(id): Path<String>) -> ApiResult {
    d.call_back(&staff, &id).await.map_err(api_err)?;
    ok(json!({ "calling": true }))
}

#[derive(Deserialize)]
struct OutcomeBody {
    outcome: String,
}

async fn outcome(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
    Json(body): Json<OutcomeBody>,
) -> ApiResult {
    let outcome: Outcome = body
        .outcome
        .parse()
        .map_err(|e: crate::enquiries::UnknownValue| {
            api_err(WebError::BadRequest(e.to_string()))
        })?;
    let effect = d
        .record_outcome(&staff, &id, outcome)
        .await
        .map_err(api_err)?;
    ok(json!({
        "status": effect.status,
        "next_attempt_on": effect.next_attempt_on,
        "closed": effect.closed,
    }))
}

#[derive(Deserialize)]
struct NoteBody {
    body: String,
}

async fn note(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
    Json(body): Json<NoteBody>,
) -> ApiResult {
    d.add_note(&staff, &id, &body.body).await.map_err(api_err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn users(State(d): State<Dashboard>, staff: Staff) -> ApiResult {
    staff
        .require(&d, Role::Admin, "users")
        .await
        .map_err(api_err)?;
    let users = d.store.list_users().await.map_err(|e| api_err(e.into()))?;
    ok(json!({
        "users": users.iter().map(|u| json!({
            "id": u.id,
            "email": u.email,
            "role": u.role,
            "disabled": u.disabled,
            "set_up": u.password_hash.is_some(),
            "second_factor": u.totp_secret.is_some(),
        })).collect::<Vec<_>>()
    }))
}

async fn add_user(
    State(d): State<Dashboard>,
    staff: Staff,
    Json(form): Json<NewUserForm>,
) -> ApiResult {
    let (user, link) = d.add_account(&staff, &form).await.map_err(api_err)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": user.id, "setup_link": link })),
    )
        .into_response())
}

async fn change_user(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
    Json(form): Json<ChangeForm>,
) -> ApiResult {
    let change = form.change().map_err(api_err)?;
    let link = d
        .change_account(&staff, &id, &change)
        .await
        .map_err(api_err)?;
    ok(json!({ "setup_link": link }))
}

async fn audit(State(d): State<Dashboard>, staff: Staff, Query(q): Query<AuditQuery>) -> ApiResult {
    staff
        .require(&d, Role::Admin, "audit")
        .await
        .map_err(api_err)?;
    let entries = d
        .store
        .audit_entries(&q.query(1000).map_err(api_err)?)
        .await
        .map_err(|e| api_err(e.into()))?;
    ok(json!({ "entries": entries }))
}

/// `period`: today, week (Monday to today), 7d, 30d; or `since` and `until` (YYYY-MM-DD,
/// Europe/London, both included). `trust` narrows to one hospital.
#[derive(Debug, Deserialize, Default)]
pub struct StatsQuery {
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub trust: Option<String>,
}

impl StatsQuery {
    pub fn period(&self, today: chrono::NaiveDate) -> Result<crate::stats::Period, WebError> {
        use chrono::Datelike;
        let bad = |m: String| WebError::BadRequest(m);
        let day = |s: &str| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| bad(format!("`{s}` is not a date: write it as YYYY-MM-DD")))
        };
        let (since, until) = match (
            self.period.as_deref().filter(|p| !p.is_empty()),
            &self.since,
            &self.until,
        ) {
            (Some("today"), _, _) => (today, today),
            (Some("week"), _, _) => (
                today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday())),
                today,
            ),
            (Some("7d"), _, _) => crate::stats::last_days(today, 7),
            (Some("30d"), _, _) => crate::stats::last_days(today, 30),
            (Some(other), _, _) => {
                return Err(bad(format!(
                    "`{other}` is not a period: use today, week, 7d, 30d, or since and until"
                )))
            }
            (None, Some(s), Some(u)) => (day(s)?, day(u)?),
            (None, None, None) => crate::stats::last_days(today, 7),
            _ => return Err(bad("give both since and until (YYYY-MM-DD)".into())),
        };
        let trust = self
            .trust
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(str::parse::<crate::enquiries::Trust>)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        crate::stats::Period::new(since, until, trust).map_err(|e| bad(e.to_string()))
    }
}

impl Dashboard {
    pub async fn stats(&self, q: &StatsQuery) -> Result<crate::stats::Stats, WebError> {
        let now = self.now();
        let period = q.period(now.with_timezone(&crate::hours::LONDON).date_naive())?;
        Ok(crate::stats::compute(
            self.store.as_ref(),
            &self.flow,
            &self.hours.get(),
            &period,
            self.settings.thresholds(),
            now,
        )
        .await?)
    }
}

async fn stats(State(d): State<Dashboard>, staff: Staff, Query(q): Query<StatsQuery>) -> ApiResult {
    staff
        .require(&d, Role::Manager, "statistics")
        .await
        .map_err(api_err)?;
    let stats = d.stats(&q).await.map_err(api_err)?;
    Ok(Json(stats).into_response())
}
