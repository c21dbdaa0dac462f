//! The Twilio webhooks: thin glue between a verified form, the [`Calls`] service and
//! TwiML. Any failure inside still answers with valid TwiML (an apology with the
//! essential guidance), never an HTTP error, so no caller hears Twilio's
//! "application error".

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use super::twiml::{self, Urls};
use super::{CallInfo, Calls, Reply};
use crate::enquiries::Recording;
use crate::flows::{engine, Input, QueueWait};
use crate::twilio::extract::{VerifiedForm, WebhookAuth};
use crate::twilio::form::WebhookForm;
use crate::twilio::twiml::{into_http, Voice};

/// What the webhooks share.
#[derive(Clone)]
pub struct WebhookState {
    pub calls: Arc<Calls>,
    pub auth: WebhookAuth,
    pub voice: Voice,
    pub urls: Urls,
    pub hold_music_url: String,
}

impl FromRef<WebhookState> for WebhookAuth {
    fn from_ref(s: &WebhookState) -> Self {
        s.auth.clone()
    }
}

pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/twilio/voice", post(voice))
        .route("/twilio/step/{node}", post(step))
        .route("/twilio/queue/{node}/wait", post(queue_wait))
        .route("/twilio/queue/{node}/choice", post(queue_choice))
        .route("/twilio/queue/{node}/done", post(queue_done))
        .route("/twilio/status", post(status))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct StepQuery {
    seq: u32,
    #[serde(default)]
    attempt: u32,
}

#[derive(Debug, Deserialize)]
struct DoneQuery {
    seq: u32,
}

/// The query of an action URL we built; parsed only after the signature check, so an
/// unsigned request learns nothing from a 400.
fn parse_query<T: serde::de::DeserializeOwned>(query: Option<String>) -> Option<T> {
    serde_urlencoded::from_str(query.as_deref().unwrap_or("")).ok()
}

fn bad_query() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "the action URL's query is not one helpline built\n",
    )
        .into_response()
}

/// A verified webhook about one call: 400 when it names no valid `CallSid`.
struct CallRequest {
    call: CallInfo,
    form: WebhookForm,
}

impl<S> FromRequest<S> for CallRequest
where
    WebhookAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let VerifiedForm(form) = VerifiedForm::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let call_sid = form
            .call_sid()
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response())?
            .to_string();
        let from = form.get("From").map(str::to_string);
        Ok(Self {
            call: CallInfo { call_sid, from },
            form,
        })
    }
}

/// What the caller did, from Twilio's parameters.
fn input(form: &WebhookForm) -> Input {
    if let Some(url) = form.get("RecordingUrl").filter(|u| !u.is_empty()) {
        let duration_seconds = form
            .get("RecordingDuration")
            .and_then(|d| d.parse::<u32>().ok())
            .unwrap_or(0);
        return Input::Recording(Recording {
            url: url.to_string(),
            duration_seconds,
        });
    }
    if let Some(d) = form
        .get("Digits")
        .filter(|d| !d.is_empty() && *d != "hangup")
    {
        return Input::Keys(d.to_string());
    }
    if let Some(s) = form.get("SpeechResult").filter(|s| !s.trim().is_empty()) {
        return Input::Speech(s.to_string());
    }
    Input::Silence
}

impl WebhookState {
    fn render(&self, result: Result<Reply, super::CallError>, call: &CallInfo) -> Response {
        let reply = result.unwrap_or_else(|e| {
            tracing::error!(call_sid = %call.call_sid, error = %e, "call step failed; apologising to the caller");
            self.calls.apology(call)
        });
        into_http(&twiml::reply(&reply, &self.urls), &self.voice)
    }
}

async fn voice(State(s): State<WebhookState>, CallRequest { call, .. }: CallRequest) -> Response {
    let result = s.calls.incoming(&call).await;
    s.render(result, &call)
}

async fn step(
    State(s): State<WebhookState>,
    Path(node): Path<String>,
    RawQuery(query): RawQuery,
    CallRequest { call, form }: CallRequest,
) -> Response {
    let Some(q) = parse_query::<StepQuery>(query) else {
        return bad_query();
    };
    let result = s
        .calls
        .answer(&call, &node, q.seq, q.attempt, &input(&form))
        .await;
    s.render(result, &call)
}

async fn queue_wait(
    State(s): State<WebhookState>,
    Path(node): Path<String>,
    CallRequest { call, form }: CallRequest,
) -> Response {
    let position = form.get("QueuePosition").and_then(|p| p.parse().ok());
    s.queue_answer(&call, &node, position).await
}

async fn queue_choice(
    State(s): State<WebhookState>,
    Path(node): Path<String>,
    CallRequest { call, form }: CallRequest,
) -> Response {
    let pressed = form.get("Digits").and_then(|d| d.chars().next());
    if pressed.is_some() && pressed == engine::queue_leave_key(&s.calls.flow, &node) {
        tracing::info!(call_sid = %call.call_sid, node, "caller chose a call back instead of waiting");
        return into_http(&twiml::leave_queue(), &s.voice);
    }
    // Any other key: carry on waiting (the position only if Twilio says it).
    let position = form.get("QueuePosition").and_then(|p| p.parse().ok());
    s.queue_answer(&call, &node, position).await
}

impl WebhookState {
    /// The wait TwiML: position, estimate and music; or, once the line has closed, the
    /// closing words and `<Leave/>` (the Enqueue action then takes a call-back request).
    async fn queue_answer(&self, call: &CallInfo, node: &str, position: Option<u32>) -> Response {
        let response = match self.calls.queue_wait(call, node, position).await {
            Ok(Some(QueueWait::Waiting { says, .. })) => {
                twiml::queue_wait(node, &says, &self.hold_music_url, &self.urls)
            }
            Ok(Some(QueueWait::Closing { says })) => {
                tracing::info!(call_sid = %call.call_sid, node, "line closed while the caller waited; offering a call back");
                twiml::closing_queue(&says)
            }
            Ok(None) => {
                // Not a queue node: take the caller out, and the Enqueue action carries on.
                tracing::warn!(call_sid = %call.call_sid, node, "wait URL for a node that is not a queue");
                twiml::leave_queue()
            }
            Err(e) => {
                // Keep the caller waiting with music rather than drop them.
                tracing::error!(call_sid = %call.call_sid, error = %e, "queue wait lookup failed");
                twiml::queue_wait(node, &[], &self.hold_music_url, &self.urls)
            }
        };
        into_http(&response, &self.voice)
    }
}

async fn queue_done(
    State(s): State<WebhookState>,
    Path(node): Path<String>,
    RawQuery(query): RawQuery,
    CallRequest { call, form }: CallRequest,
) -> Response {
    let Some(q) = parse_query::<DoneQuery>(query) else {
        return bad_query();
    };
    let result = form.get("QueueResult").unwrap_or("error").to_string();
    let wait = form.get("QueueTime").and_then(|t| t.parse().ok());
    let reply = s.calls.queue_done(&call, &node, q.seq, &result, wait).await;
    s.render(reply, &call)
}

/// Twilio's status callback for the call (set on the phone number).
async fn status(
    State(s): State<WebhookState>,
    CallRequest { call, form }: CallRequest,
) -> Response {
    let status = form.get("CallStatus").unwrap_or("");
    if matches!(
        status,
        "completed" | "busy" | "failed" | "no-answer" | "canceled"
    ) {
        let duration = form.get("CallDuration").and_then(|d| d.parse().ok());
        if let Err(e) = s.calls.ended(&call.call_sid, status, duration).await {
            tracing::error!(call_sid = %call.call_sid, error = %e, "could not record the end of a call");
            // Twilio retries on 5xx; the caller is gone, so nothing is lost by asking again.
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    StatusCode::NO_CONTENT.into_response()
}
