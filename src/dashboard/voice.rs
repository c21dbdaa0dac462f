//! The two webhooks Twilio calls when a handler connects with a caller (signed like every
//! other webhook): a handler's call-back, once they answer their own phone, dials the
//! caller; a caller taken from the queue dials the handler's phone. The helpline's number
//! is the caller ID both ways.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;

use super::Dashboard;
use crate::twilio::extract::VerifiedForm;
use crate::twilio::twiml::{into_http, Dial, Response as TwiML, Verb};

/// How long a dialled phone rings before giving up.
const RING_SECONDS: u32 = 30;

pub fn routes(state: Dashboard) -> Router {
    Router::new()
        .route("/twilio/connect/enquiry/{id}", post(connect_enquiry))
        .route("/twilio/connect/handler/{user}", post(connect_handler))
        .with_state(state)
}

fn dial(intro: String, number: &str, caller_id: &str) -> TwiML {
    let mut r = TwiML::new();
    r.push(Verb::Say(intro));
    r.push(Verb::Dial(Dial {
        number: number.to_string(),
        caller_id: caller_id.to_string(),
        timeout_seconds: RING_SECONDS,
    }));
    r
}

fn sorry(text: &str) -> TwiML {
    let mut r = TwiML::new();
    r.push(Verb::Say(text.to_string()));
    r.push(Verb::Hangup);
    r
}

#[derive(serde::Deserialize)]
struct ForHandler {
    handler: String,
}

/// The handler answered their phone: connect them to the caller of enquiry `id`, if the
/// enquiry is still open and still theirs (another handler may have dealt with it since).
async fn connect_enquiry(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    _form: VerifiedForm,
) -> Response {
    // Parsed after the signature check (the extractor above), so forgers learn nothing.
    let handler = serde_urlencoded::from_str::<ForHandler>(query.as_deref().unwrap_or(""))
        .map(|q| q.handler)
        .unwrap_or_default();
    let twiml = match d.store.enquiry(&id).await {
        Ok(Some(e)) if e.status.is_open() && d.holder(&e) == Some(handler.as_str()) => {
            match crate::phone::UkNumber::parse(&e.callback_number) {
                Some(n) => dial(
                    format!(
                        "Connecting you to the caller for reference {}.",
                        e.reference.spoken()
                    ),
                    n.e164(),
                    &d.settings.line_number,
                ),
                None => sorry("This enquiry has no number that can be called."),
            }
        }
        Ok(Some(_)) => sorry(
            "This call-back is no longer yours to make: the enquiry was closed or another handler has it. Nobody has been called.",
        ),
        Ok(None) => sorry("That enquiry could not be found."),
        Err(e) => {
            tracing::error!(error = %e, "could not read the enquiry for a call-back");
            sorry("Sorry, the call could not be connected. Please try again from the dashboard.")
        }
    };
    into_http(&twiml, &d.voice)
}

/// A caller taken from the queue: connect them to the handler's phone.
async fn connect_handler(
    State(d): State<Dashboard>,
    Path(user): Path<String>,
    _form: VerifiedForm,
) -> Response {
    let phone = match d.store.user(&user).await {
        Ok(Some(u)) if !u.disabled => u.phone,
        Ok(_) => None,
        Err(e) => {
            tracing::error!(error = %e, "could not read the handler for a queue call");
            None
        }
    };
    let twiml = match phone {
        Some(p) => dial("Thank you for waiting. Connecting you to an adviser now.".into(), &p, &d.settings.line_number),
        None => sorry(
            "Sorry, we could not connect you to an adviser. Please call again, or stay on the line next time to leave your number for a call back.",
        ),
    };
    into_http(&twiml, &d.voice)
}
