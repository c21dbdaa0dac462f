//! The handlers' pages: the live queue, the call-back list and an enquiry's page, plus
//! the account page and the managers' overview. Plain forms that post and redirect back,
//! so everything works without JavaScript.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::views::{self, render, Choice, Nav};
use super::{Dashboard, Staff, WebError};
use crate::enquiries::{Category, Enquiry, Filter, Outcome, Status, Trust};
use crate::staff::audit::Action;
use crate::staff::Role;

pub fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/queue") }))
        .route("/queue", get(queue_page))
        .route("/queue/take", post(take_next))
        .route("/callbacks", get(callbacks_page))
        .route("/callbacks/next", post(claim_next))
        .route("/enquiries/{id}", get(enquiry_page))
        .route("/enquiries/{id}/claim", post(claim))
        .route("/enquiries/{id}/release", post(release))
        .route("/enquiries/{id}/reveal", post(reveal))
        .route("/enquiries/{id}/call", post(call_back))
        .route("/enquiries/{id}/outcome", post(outcome))
        .route("/enquiries/{id}/notes", post(note))
        .route("/enquiries/{id}/recording", get(recording))
        .route("/account", get(account_page).post(account))
        .route("/overview", get(overview))
}

/// What the live queue shows (also sent as server-sent events).
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueSnapshot {
    pub waiting: usize,
    pub longest: String,
    pub longest_seconds: i64,
    pub callers: Vec<views::QueueRow>,
}

impl Dashboard {
    pub async fn queue_snapshot(&self) -> Result<QueueSnapshot, WebError> {
        let now = self.now();
        let callers: Vec<views::QueueRow> = self
            .store
            .waiting_callers(now)
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let waited = (now - c.joined_at).num_seconds().max(0);
                views::QueueRow {
                    position: i + 1,
                    waited: views::duration_words(waited),
                    waited_seconds: waited,
                    trust: views::trust_label(c.trust.as_deref().unwrap_or("")),
                    category: views::category_label(c.category.as_deref().unwrap_or("")),
                }
            })
            .collect();
        let longest_seconds = callers.first().map_or(0, |c| c.waited_seconds);
        Ok(QueueSnapshot {
            waiting: callers.len(),
            longest: if callers.is_empty() {
                "—".into()
            } else {
                views::duration_words(longest_seconds)
            },
            longest_seconds,
            callers,
        })
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Fixed words for the `?done=` after a form (never user input echoed).
fn notice(done: &Done) -> Option<&'static str> {
    Some(match done.done.as_deref()? {
        "taken" => "The caller is being connected to your phone.",
        "nobody" => "Nobody is waiting in the queue.",
        "claimed" => {
            "You have claimed this enquiry. Call the caller back, then record how it went."
        }
        "released" => "You have given the enquiry back.",
        "calling" => "Your phone will ring now. Answer it to be connected to the caller.",
        "outcome" => "Outcome recorded.",
        "noted" => "Note added.",
        "none-due" => "No enquiry is waiting to be called back right now.",
        "saved" => "Saved.",
        _ => return None,
    })
}

fn error_text(done: &Done) -> Option<&'static str> {
    Some(match done.error.as_deref()? {
        "taken" => "Another handler is working on this enquiry.",
        "no-phone" => {
            "There is no phone number on your account to ring. Add it on the Account page first."
        }
        "not-yours" => "Claim this enquiry first (your claim may have lapsed).",
        "twilio" => "Twilio did not accept the request. Please try again.",
        _ => return None,
    })
}

async fn queue_page(
    State(d): State<Dashboard>,
    staff: Staff,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    staff.require(&d, Role::Handler, "queue").await?;
    let snap = d.queue_snapshot().await?;
    Ok(Html(render(&views::QueuePage {
        nav: Nav::new(&staff.user, &staff.session.csrf, "queue"),
        rows: &snap.callers,
        longest: snap.longest.clone(),
        notice: notice(&done).or(error_text(&done)),
    })?)
    .into_response())
}

async fn take_next(State(d): State<Dashboard>, staff: Staff) -> Result<Response, WebError> {
    staff.require(&d, Role::Handler, "queue").await?;
    Ok(match d.take_next_caller(&staff).await {
        Ok(true) => Redirect::to("/queue?done=taken"),
        Ok(false) => Redirect::to("/queue?done=nobody"),
        Err(WebError::BadRequest(_)) => Redirect::to("/queue?error=no-phone"),
        Err(WebError::Twilio(_)) => Redirect::to("/queue?error=twilio"),
        Err(e) => return Err(e),
    }
    .into_response())
}

fn choices<T: Copy + PartialEq>(
    all: &[T],
    selected: Option<T>,
    value: impl Fn(T) -> String,
    label: impl Fn(T) -> String,
) -> Vec<Choice> {
    all.iter()
        .map(|&t| Choice {
            value: value(t),
            label: label(t),
            selected: selected == Some(t),
        })
        .collect()
}

/// The list's filter from the query; an unknown value is a 400 with the allowed values.
#[derive(Debug, Deserialize, Default)]
pub struct FilterQuery {
    #[serde(default)]
    pub trust: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl FilterQuery {
    pub fn filter(&self) -> Result<Filter, WebError> {
        fn parse<T: std::str::FromStr<Err = crate::enquiries::UnknownValue>>(
            v: &Option<String>,
        ) -> Result<Option<T>, WebError> {
            match v.as_deref().filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => s
                    .parse()
                    .map(Some)
                    .map_err(|e: crate::enquiries::UnknownValue| {
                        WebError::BadRequest(e.to_string())
                    }),
            }
        }
        Ok(Filter {
            trust: parse::<Trust>(&self.trust)?,
            category: parse::<Category>(&self.category)?,
            status: parse::<Status>(&self.status)?,
        })
    }
}

async fn callbacks_page(
    State(d): State<Dashboard>,
    staff: Staff,
    Query(q): Query<FilterQuery>,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    staff.require(&d, Role::Handler, "callbacks").await?;
    let filter = q.filter()?;
    let list = d.callback_list(&staff, &filter).await?;
    let rows: Vec<views::ListedRow> = list
        .into_iter()
        .map(|e| views::ListedRow {
            trust: views::trust_label(&e.trust),
            category: views::category_label(&e.category),
            status: e
                .status
                .parse::<Status>()
                .map(|s| s.label().to_string())
                .unwrap_or_default(),
            waited: views::duration_words(e.working_minutes_waited * 60),
            due: e.callback_due.format("%a %-d %b").to_string(),
            source: if e.source == "missed-in-queue" {
                "missed in queue".into()
            } else {
                String::new()
            },
            e,
        })
        .collect();
    let html = render(&views::CallbacksPage {
        nav: Nav::new(&staff.user, &staff.session.csrf, "callbacks"),
        rows: &rows,
        trusts: choices(
            Trust::ALL,
            filter.trust,
            |t| t.to_string(),
            |t| views::trust_label(t.as_str()),
        ),
        categories: choices(
            Category::ALL,
            filter.category,
            |c| c.to_string(),
            |c| views::category_label(c.as_str()),
        ),
        statuses: choices(
            Status::OPEN,
            filter.status,
            |s| s.to_string(),
            |s| s.label().to_string(),
        ),
        notice: notice(&done),
    })?;
    Ok(Html(html).into_response())
}

async fn claim_next(State(d): State<Dashboard>, staff: Staff) -> Result<Response, WebError> {
    staff.require(&d, Role::Handler, "callbacks").await?;
    Ok(match d.claim_next(&staff).await? {
        Some(e) => Redirect::to(&format!("/enquiries/{}?done=claimed", e.id)),
        None => Redirect::to("/callbacks?done=none-due"),
    }
    .into_response())
}

async fn enquiry_page(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let e = d.visible(&staff, &id).await?;
    show_enquiry(&d, &staff, e, None, notice(&done), error_text(&done)).await
}

async fn show_enquiry(
    d: &Dashboard,
    staff: &Staff,
    e: Enquiry,
    revealed: Option<String>,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let steps = d.store.steps(&e.call_sid).await?;
    let attempts = d.store.attempts(&e.id).await?;
    let notes = d.store.notes(&e.id).await?;
    let holder_id = d.holder(&e).map(str::to_string);
    let holder = match &holder_id {
        Some(id) => d.store.user(id).await?.map(|u| u.email),
        None => None,
    };
    let hours = d.hours.get();
    let today = d.now().with_timezone(&crate::hours::LONDON).date_naive();
    let page = views::EnquiryPage {
        nav: Nav::new(&staff.user, &staff.session.csrf, "callbacks"),
        id: &e.id,
        reference: e.reference.as_str(),
        revealed: revealed.is_some(),
        number: revealed.unwrap_or_else(|| e.masked_number()),
        trust: views::trust_label(e.trust.as_str()),
        category: views::category_label(e.category.as_str()),
        status: e.status.label().to_string(),
        open: e.status.is_open(),
        source: match e.source {
            crate::enquiries::Source::CallbackRequest => "Asked for a call back".into(),
            crate::enquiries::Source::MissedInQueue => "Hung up while waiting in the queue".into(),
        },
        waited: views::duration_words(
            hours
                .working_time_between(e.waiting_since, e.closed_at.unwrap_or(d.now()))
                .num_seconds(),
        ),
        due: e.callback_due.format("%A %-d %B").to_string(),
        overdue: e.status.is_open() && e.callback_due < today,
        next_attempt: e.next_attempt_on.map(|n| n.format("%A %-d %B").to_string()),
        attempts: e.attempts,
        max_attempts: d.settings.callback_attempts,
        missed_calls: e.missed_calls,
        has_recording: e.recording_url.is_some(),
        mine: holder_id.as_deref() == Some(staff.user.id.as_str()),
        holder,
        steps: steps
            .into_iter()
            .map(|s| views::StepView {
                node: s.node,
                outcome: s.outcome,
            })
            .collect(),
        history: attempts
            .into_iter()
            .map(|a| views::LineView {
                at: views::local_time(a.at),
                who: a.handler,
                what: a.outcome.label().to_string(),
            })
            .collect(),
        notes: notes
            .into_iter()
            .map(|n| views::LineView {
                at: views::local_time(n.at),
                who: n.author,
                what: n.body,
            })
            .collect(),
        outcomes: [
            Outcome::Resolved,
            Outcome::FollowUp,
            Outcome::NoAnswer,
            Outcome::Voicemail,
            Outcome::WrongNumber,
        ]
        .into_iter()
        .map(|o| Choice {
            value: o.to_string(),
            label: o.label().to_string(),
            selected: false,
        })
        .collect(),
        notice,
        error,
    };
    Ok(Html(render(&page)?).into_response())
}

/// A conflict on an enquiry page is shown on the page, not as a bare error.
async fn back_to(
    d: &Dashboard,
    staff: &Staff,
    id: &str,
    result: Result<&'static str, WebError>,
) -> Result<Response, WebError> {
    match result {
        Ok(done) => Ok(Redirect::to(&format!("/enquiries/{id}?done={done}")).into_response()),
        Err(e @ (WebError::Conflict(_) | WebError::BadRequest(_))) => {
            let status = if matches!(e, WebError::Conflict(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            let message = e.to_string();
            let enquiry = d.visible(staff, id).await?;
            let mut res = show_enquiry(d, staff, enquiry, None, None, Some(&message)).await?;
            *res.status_mut() = status;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

async fn claim(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let r = d.claim(&staff, &id).await.map(|_| "claimed");
    back_to(&d, &staff, &id, r).await
}

async fn release(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let r = d.release(&staff, &id).await.map(|_| "released");
    back_to(&d, &staff, &id, r).await
}

async fn reveal(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let number = d.reveal(&staff, &id).await?;
    let e = d.visible(&staff, &id).await?;
    show_enquiry(&d, &staff, e, Some(number), None, None).await
}

async fn call_back(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let r = d.call_back(&staff, &id).await.map(|_| "calling");
    back_to(&d, &staff, &id, r).await
}

#[derive(Deserialize)]
struct OutcomeForm {
    #[serde(default)]
    outcome: String,
}

async fn outcome(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<OutcomeForm>,
) -> Result<Response, WebError> {
    let outcome: Outcome = form
        .outcome
        .parse()
        .map_err(|e: crate::enquiries::UnknownValue| WebError::BadRequest(e.to_string()))?;
    let r = d
        .record_outcome(&staff, &id, outcome)
        .await
        .map(|_| "outcome");
    back_to(&d, &staff, &id, r).await
}

#[derive(Deserialize)]
struct NoteForm {
    #[serde(default)]
    body: String,
}

async fn note(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, WebError> {
    let r = d.add_note(&staff, &id, &form.body).await.map(|_| "noted");
    back_to(&d, &staff, &id, r).await
}

/// The recorded message, streamed through the service (the browser never sees Twilio's URL).
pub async fn recording(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let audio = d.recording(&staff, &id).await?;
    let mut res = Response::new(Body::from_stream(audio.stream));
    if let Ok(v) = audio.content_type.parse() {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    if let Some(len) = audio.content_length {
        res.headers_mut().insert(header::CONTENT_LENGTH, len.into());
    }
    Ok(res)
}

async fn account_page(
    State(d): State<Dashboard>,
    staff: Staff,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let phone = staff
        .user
        .phone
        .as_deref()
        .and_then(crate::phone::UkNumber::parse)
        .map(|n| n.national())
        .unwrap_or_default();
    let _ = &d;
    Ok(Html(render(&views::AccountPage {
        nav: Nav::new(&staff.user, &staff.session.csrf, "account"),
        phone,
        notice: notice(&done),
        error: None,
    })?)
    .into_response())
}

#[derive(Deserialize)]
struct AccountForm {
    #[serde(default)]
    phone: String,
}

async fn account(
    State(d): State<Dashboard>,
    staff: Staff,
    Form(form): Form<AccountForm>,
) -> Result<Response, WebError> {
    let phone = if form.phone.trim().is_empty() {
        None
    } else {
        match crate::phone::UkNumber::parse(&form.phone) {
            Some(n) => Some(n.e164().to_string()),
            None => {
                let html = render(&views::AccountPage {
                    nav: Nav::new(&staff.user, &staff.session.csrf, "account"),
                    phone: String::new(),
                    notice: None,
                    error: Some("That is not a UK phone number. Write it like 07700 900123."),
                })?;
                return Ok((StatusCode::BAD_REQUEST, Html(html)).into_response());
            }
        }
    };
    let mut user = staff.user.clone();
    user.phone = phone;
    user.updated_at = d.now();
    if !d.store.update_user(&user).await? {
        return Err(WebError::Conflict(
            "Your account was changed meanwhile. Reload the page and try again.".into(),
        ));
    }
    d.audit(
        Some(&staff.user),
        Action::PhoneChanged,
        Some(&user.id),
        &staff.address,
        None,
    )
    .await;
    Ok(Redirect::to("/account?done=saved").into_response())
}

async fn overview(State(d): State<Dashboard>, staff: Staff) -> Result<Response, WebError> {
    staff.require(&d, Role::Manager, "overview").await?;
    let today = d.now().with_timezone(&crate::hours::LONDON).date_naive();
    // Totals counted by the database (the list below them is of the longest waiting).
    let totals = d.store.gauges(d.now(), today).await?;
    let open = d.store.open_enquiries(&Filter::default()).await?;
    let by_trust = Trust::ALL
        .iter()
        .map(|t| {
            (
                views::trust_label(t.as_str()),
                open.iter().filter(|e| e.trust == *t).count(),
            )
        })
        .collect();
    let waiting = d.store.waiting_callers(d.now()).await?.len();
    Ok(Html(render(&views::OverviewPage {
        nav: Nav::new(&staff.user, &staff.session.csrf, "overview"),
        waiting,
        open: totals.enquiries_open,
        overdue: totals.enquiries_overdue,
        by_trust,
    })?)
    .into_response())
}
