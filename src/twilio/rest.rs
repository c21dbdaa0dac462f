//! Outbound requests to Twilio's REST API: click-to-call, taking the next caller off the
//! queue, SMS, streaming a recording and deleting one (retention) — behind [`TwilioApi`], so the rest of the service
//! and the tests can substitute it.
//!
//! Calls, queues, messages and recording deletes go through the generated `twilio-openapi`
//! client (which has its own reqwest 0.11); recordings are streamed with the service's reqwest.
//!
//! What is logged: the operation, the HTTP status and Twilio's error code. Never phone
//! numbers, message bodies, URLs with credentials or the auth token.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use futures_util::Stream;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use twilio_openapi::apis::configuration::Configuration;
use twilio_openapi::apis::{default_api, Error as ApiError, ResponseContent};

/// Why a request to Twilio did not give the answer wanted.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// No account SID or auth token, so no request can be made.
    #[error(
        "Twilio's REST API is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN \
         (or TWILIO_AUTH_TOKEN_FILE)"
    )]
    NotConfigured,
    /// Twilio did not answer within the client's timeout.
    #[error("Twilio did not answer in time")]
    Timeout,
    /// Twilio answered with a 4xx or 5xx. `message` is Twilio's own `message` (anything in it
    /// that looks like a phone number replaced by `[number]`), or the status's reason when
    /// the answer was not Twilio's JSON.
    #[error("Twilio refused the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// The request could not be made or its answer could not be read (connection refused,
    /// TLS, DNS, an unreadable reply). Never holds URLs, credentials or phone numbers.
    #[error("the request to Twilio failed: {0}")]
    Transport(String),
    /// A stored recording URL that is not a recording of this Twilio account.
    #[error("not the URL of a recording in this Twilio account")]
    BadRecordingUrl,
}

/// A boxed stream of audio bytes, ready for `axum::body::Body::from_stream`.
pub type AudioStream = Pin<Box<dyn Stream<Item = Result<Bytes, RestError>> + Send>>;

/// Audio streamed from Twilio.
pub struct RecordingAudio {
    /// Always an `audio/…` type: Twilio's, or `audio/mpeg` (what was asked for) when Twilio
    /// sent something else, so the audio can never be served as, say, HTML.
    pub content_type: String,
    /// Twilio's Content-Length, when it sent one.
    pub content_length: Option<u64>,
    /// The body, read as it is sent on.
    pub stream: AudioStream,
}

impl fmt::Debug for RecordingAudio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingAudio")
            .field("content_type", &self.content_type)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// The service's outbound requests to Twilio.
#[async_trait::async_trait]
pub trait TwilioApi: Send + Sync + fmt::Debug {
    /// Starts an outbound call: Twilio rings `to` showing `from` as caller ID, and when it is
    /// answered fetches TwiML from `url` (POST). `status_callback`, when given, gets Twilio's
    /// status callbacks (POST). Returns the new call's SID.
    async fn create_call(
        &self,
        to: &str,
        from: &str,
        url: &str,
        status_callback: Option<&str>,
    ) -> Result<String, RestError>;

    /// Sends the caller at the front of the queue whose FriendlyName is `queue_name` to `url`
    /// (POST). Returns that caller's call SID, or `None` when the queue is empty or does not
    /// exist.
    async fn dequeue_front(&self, queue_name: &str, url: &str)
        -> Result<Option<String>, RestError>;

    /// Sends an SMS; returns the message SID.
    async fn send_sms(&self, to: &str, from: &str, body: &str) -> Result<String, RestError>;

    /// Streams the MP3 of a recording whose URL Twilio gave us (`RecordingUrl`). The URL is
    /// never fetched as given: it must name this account and a recording SID, and only those
    /// two go into the URL fetched. Anything else is [`RestError::BadRecordingUrl`].
    async fn recording_audio(&self, recording_url: &str) -> Result<RecordingAudio, RestError>;

    /// Deletes a recording at Twilio (`DELETE /Recordings/{Sid}.json`), named by the URL
    /// Twilio gave us (`RecordingUrl`, checked as for [`TwilioApi::recording_audio`]) or by
    /// its SID (`RE` + 32 hex digits). A recording Twilio does not have (404) counts as
    /// deleted: [`Deletion::AlreadyGone`]. Anything else that is not a recording of this
    /// account is [`RestError::BadRecordingUrl`], without a request.
    async fn delete_recording(&self, recording_url_or_sid: &str) -> Result<Deletion, RestError>;
}

/// How a delete ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Twilio deleted it (204).
    Deleted,
    /// Twilio had no such thing (404): it was deleted before.
    AlreadyGone,
}

/// Used when Twilio is not configured: every method returns [`RestError::NotConfigured`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NotConfigured;

#[async_trait::async_trait]
impl TwilioApi for NotConfigured {
    async fn create_call(
        &self,
        _to: &str,
        _from: &str,
        _url: &str,
        _status_callback: Option<&str>,
    ) -> Result<String, RestError> {
        Err(RestError::NotConfigured)
    }

    async fn dequeue_front(
        &self,
        _queue_name: &str,
        _url: &str,
    ) -> Result<Option<String>, RestError> {
        Err(RestError::NotConfigured)
    }

    async fn send_sms(&self, _to: &str, _from: &str, _body: &str) -> Result<String, RestError> {
        Err(RestError::NotConfigured)
    }

    async fn recording_audio(&self, _recording_url: &str) -> Result<RecordingAudio, RestError> {
        Err(RestError::NotConfigured)
    }

    async fn delete_recording(&self, _recording: &str) -> Result<Deletion, RestError> {
        Err(RestError::NotConfigured)
    }
}

/// The most queues looked through for a name (Twilio's largest page; one page is read).
const QUEUE_PAGE_SIZE: i32 = 1000;
/// The most of an error answer read for Twilio's message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Redirects followed when fetching a recording (Twilio may send the audio from elsewhere).
const MAX_REDIRECTS: usize = 5;
const USER_AGENT: &str = concat!("helpline/", env!("CARGO_PKG_VERSION"));

/// The real client, built once and shared.
pub struct TwilioRest {
    /// For the generated client: `base_path` without a trailing slash, basic auth.
    api: Configuration,
    /// Scheme, host, port and path of the API, for recordings.
    base: Url,
    account_sid: String,
    auth_token: SecretString,
    timeout: Duration,
    /// For recordings: connect and read timeouts, https-only redirects.
    http: reqwest::Client,
    /// Queue FriendlyName → queue SID, filled on first use.
    queues: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for TwilioRest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioRest")
            .field("base_url", &self.api.base_path)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TwilioRest {
    /// `base_url` is Twilio's API, e.g. `https://api.twilio.com` (a trailing slash is
    /// ignored); `timeout` bounds every request (for a recording: connecting, the headers,
    /// and each wait for more of the body). An empty account SID or token is
    /// [`RestError::NotConfigured`]; a base URL that is not http(s) with a host, or has a user
    /// name, query or fragment, is [`RestError::Transport`].
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: SecretString,
        timeout: Duration,
    ) -> Result<Self, RestError> {
        let account_sid = account_sid.trim();
        if account_sid.is_empty() || auth_token.expose_secret().trim().is_empty() {
            return Err(RestError::NotConfigured);
        }
        let bad_base = || {
            RestError::Transport(
                "the Twilio API base URL must be http:// or https:// with a host and nothing \
                 after the path"
                    .into(),
            )
        };
        let base_path = base_url.trim().trim_end_matches('/');
        let base = Url::parse(base_path).map_err(|_| bad_base())?;
        if !matches!(base.scheme(), "http" | "https")
            || base.host_str().is_none()
            || !base.username().is_empty()
            || base.password().is_some()
            || base.query().is_some()
            || base.fragment().is_some()
        {
            return Err(bad_base());
        }

        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt.url().scheme() != "https"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if downgrade {
                attempt.error("refused a redirect from https to http")
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        // No overall timeout: a long recording may take longer than that to send on. Connecting, // the headers (see `recording_audio`) and every read are bounded instead.
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .redirect(redirects)
            .build()
            .map_err(|e| RestError::Transport(error_chain(&e.without_url())))?;

        // The generated client keeps its own reqwest 0.11 `Client`, which this crate cannot
        // name (twilio-openapi does not re-export reqwest), so its timeout is applied around
        // each call instead (`bounded`).
        let mut api = Configuration::new();
        // The generated functions append "/2010-04-01/…" to this as it is.
        api.base_path = base_path.to_string();
        api.user_agent = Some(USER_AGENT.to_string());
        api.basic_auth = Some((
            account_sid.to_string(),
            Some(auth_token.expose_secret().to_string()),
        ));

        Ok(Self {
            api,
            base,
            account_sid: account_sid.to_string(),
            auth_token,
            timeout,
            http,
            queues: Mutex::new(HashMap::new()),
        })
    }

    /// Runs one generated call within the timeout, mapping its errors.
    async fn bounded<T, E>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, ApiError<E>>>,
    ) -> Result<T, RestError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(api_error(operation, error)),
            Err(_elapsed) => {
                tracing::warn!(operation, "Twilio did not answer in time");
                Err(RestError::Timeout)
            }
        }
    }

    /// The SID of the queue called `name`, from the cache or Twilio's list of queues.
    async fn queue_sid(&self, name: &str) -> Result<Option<String>, RestError> {
        if let Some(sid) = self.cached_queues().get(name) {
            return Ok(Some(sid.clone()));
        }
        let list = self
            .bounded(
                "list_queues",
                default_api::list_queue(&self.api, &self.account_sid, Some(QUEUE_PAGE_SIZE)),
            )
            .await?;
        let found = list.queues.unwrap_or_default().into_iter().find_map(|q| {
            match (q.friendly_name.flatten(), q.sid.flatten()) {
                (Some(n), Some(sid)) if n == name && !sid.is_empty() => Some(sid),
                _ => None,
            }
        });
        match &found {
            Some(sid) => {
                self.cached_queues().insert(name.to_string(), sid.clone());
            }
            None => tracing::debug!(
                operation = "list_queues",
                more_pages = list.next_page_uri.is_some(),
                "no queue of that name"
            ),
        }
        Ok(found)
    }

    fn cached_queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // The map is always consistent (single inserts and removes), so a panic elsewhere
        // while it was held leaves nothing to repair.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `{base}/2010-04-01/Accounts/{account}/Recordings/{sid}.mp3`, when `recording_url` is
    /// a recording of this account on Twilio (or on the configured API, for tests).
    fn recording_mp3_url(&self, recording_url: &str) -> Option<Url> {
        let sid = recording_sid(recording_url, &self.account_sid, &self.base)?;
        let mut url = self.base.clone();
        url.path_segments_mut().ok()?.pop_if_empty().extend([
            "2010-04-01",
            "Accounts",
            &self.account_sid,
            "Recordings",
            &format!("{sid}.mp3"),
        ]);
        Some(url)
    }
}

/// Whether a stored URL's host is Twilio's API (`api.twilio.com`, or a regional
/// `api.<edge>.<region>.twilio.com`) over https, or the configured API itself.
fn trusted_origin(url: &Url, base: &Url) -> bool {
    let twilio = url.scheme() == "https"
        && url.port().is_none()
        && url.host_str().is_some_and(|h| {
            let h = h.to_ascii_lowercase();
            h == "api.twilio.com" || (h.starts_with("api.") && h.ends_with(".twilio.com"))
        });
    twilio || url.origin() == base.origin()
}

/// The recording SID in a stored `RecordingUrl`:
/// `https://api.twilio.com/2010-04-01/Accounts/{ours}/Recordings/RE…` with an optional
/// `.mp3` or `.wav`, and no user name, query, fragment or other path.
fn recording_sid(recording_url: &str, account_sid: &str, base: &Url) -> Option<String> {
    let url = Url::parse(recording_url.trim()).ok()?;
    if !trusted_origin(&url, base)
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    let segments: Vec<&str> = url.path_segments()?.collect();
    let [version, accounts, account, recordings, last] = segments.as_slice() else {
        return None;
    };
    if *version != "2010-04-01"
        || *accounts != "Accounts"
        || *account != account_sid
        || *recordings != "Recordings"
    {
        return None;
    }
    let sid = [".mp3", ".wav"]
        .iter()
        .find_map(|ext| last.strip_suffix(ext))
        .unwrap_or(last);
    is_sid(sid, "RE").then(|| sid.to_string())
}

/// `prefix` followed by 32 hex digits, as every Twilio SID is.
fn is_sid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[async_trait::async_trait]
impl TwilioApi for TwilioRest {
    async fn create_call(
        &self,
        to: &str,
        from: &str,
        url: &str,
        status_callback: Option<&str>,
    ) -> Result<String, RestError> {
        let call = self
            .bounded(
                "create_call",
                default_api::create_call(
                    &self.api,
                    &self.account_sid,
                    to,
                    from,
                    Some("POST"),                    // method
                    None,                            // fallback_url
                    None,                            // fallback_method
                    status_callback,                 // status_callback
                    None,                            // status_callback_event
                    status_callback.map(|_| "POST"), // status_callback_method
                    None,                            // send_digits
                    None,                            // timeout
                    None,                            // record
                    None,                            // recording_channels
                    None,                            // recording_status_callback
                    None,                            // recording_status_callback_method
                    None,                            // sip_auth_username
                    None,                            // sip_auth_password
                    None,                            // machine_detection
                    None,                            // machine_detection_timeout
                    None,                            // recording_status_callback_event
                    None,                            // trim
                    None,                            // caller_id
                    None,                            // machine_detection_speech_threshold
                    None,                            // machine_detection_speech_end_threshold
                    None,                            // machine_detection_silence_timeout
                    None,                            // async_amd
                    None,                            // async_amd_status_callback
                    None,                            // async_amd_status_callback_method
                    None,                            // byoc
                    None,                            // call_reason
                    None,                            // call_token
                    None,                            // recording_track
                    None,                            // time_limit
                    Some(url),
                    None, // twiml
                    None, // application_sid
                ),
            )
            .await?;
        created("create_call", call.sid.flatten())
    }

    async fn dequeue_front(
        &self,
        queue_name: &str,
        url: &str,
    ) -> Result<Option<String>, RestError> {
        const OPERATION: &str = "dequeue_front";
        let Some(queue_sid) = self.queue_sid(queue_name).await? else {
            return Ok(None);
        };
        let result = self
            .bounded(
                OPERATION,
                default_api::update_member(
                    &self.api,
                    &self.account_sid,
                    &queue_sid,
                    "Front",
                    url,
                    Some("POST"),
                ),
            )
            .await;
        match result {
            Ok(member) => match member.call_sid.flatten().filter(|s| !s.is_empty()) {
                Some(call_sid) => {
                    tracing::info!(operation = OPERATION, "Twilio dequeued a caller");
                    Ok(Some(call_sid))
                }
                None => {
                    tracing::warn!(operation = OPERATION, "Twilio's reply named no call");
                    Err(RestError::Transport(
                        "Twilio's reply to the dequeue named no call".into(),
                    ))
                }
            }, // Twilio's answer both for an empty queue and for a queue that no longer exists.
            // Forget the SID so that a queue deleted and made again (Twilio makes one on the
            // next <Enqueue>) is found by name next time, rather than 404 for ever.
            Err(RestError::Rejected { status: 404, .. }) => {
                let mut cached = self.cached_queues();
                if cached.get(queue_name) == Some(&queue_sid) {
                    cached.remove(queue_name);
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn send_sms(&self, to: &str, from: &str, body: &str) -> Result<String, RestError> {
        let message = self
            .bounded(
                "send_sms",
                default_api::create_message(
                    &self.api,
                    &self.account_sid,
                    to,
                    None, // status_callback
                    None, // application_sid
                    None, // max_price
                    None, // provide_feedback
                    None, // attempt
                    None, // validity_period
                    None, // force_delivery
                    None, // content_retention
                    None, // address_retention
                    None, // smart_encoded
                    None, // persistent_action
                    None, // shorten_urls
                    None, // schedule_type
                    None, // send_at
                    None, // send_as_mms
                    None, // content_sid
                    None, // content_variables
                    Some(from),
                    None, // messaging_service_sid
                    Some(body),
                    None, // media_url
                ),
            )
            .await?;
        created("send_sms", message.sid.flatten())
    }

    async fn recording_audio(&self, recording_url: &str) -> Result<RecordingAudio, RestError> {
        const OPERATION: &str = "recording_audio";
        let Some(url) = self.recording_mp3_url(recording_url) else {
            tracing::warn!(operation = OPERATION, "refused a recording URL");
            return Err(RestError::BadRecordingUrl);
        };
        let request = self
            .http
            .get(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .send();
        let mut response = match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(transport_error(OPERATION, e)),
            Err(_elapsed) => {
                tracing::warn!(operation = OPERATION, "Twilio did not answer in time");
                return Err(RestError::Timeout);
            }
        };
        let status = response.status();
        if !status.is_success() {
            let mut body = Vec::new();
            let read = async {
                while let Ok(Some(chunk)) = response.chunk().await {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_ERROR_BODY {
                        break;
                    }
                }
            };
            // The status is what matters; the message is read only while time allows.
            let _ = tokio::time::timeout(self.timeout, read).await;
            return Err(rejected(
                OPERATION,
                status.as_u16(),
                &String::from_utf8_lossy(&body),
            ));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| t.to_ascii_lowercase().starts_with("audio/"))
            .unwrap_or("audio/mpeg")
            .to_string();
        let content_length = response.content_length();
        tracing::debug!(
            operation = OPERATION,
            status = status.as_u16(),
            "streaming a recording"
        );
        let stream = futures_util::stream::unfold(Some(response), |state| async move {
            let mut response = state?;
            match response.chunk().await {
                Ok(Some(bytes)) => Some((Ok(bytes), Some(response))),
                Ok(None) => None,
                Err(e) => Some((Err(transport_error(OPERATION, e)), None)),
            }
        });
        Ok(RecordingAudio {
            content_type,
            content_length,
            stream: Box::pin(stream),
        })
    }

    async fn delete_recording(&self, recording_url_or_sid: &str) -> Result<Deletion, RestError> {
        const OPERATION: &str = "delete_recording";
        let given = recording_url_or_sid.trim();
        let sid = if is_sid(given, "RE") {
            Some(given.to_string())
        } else {
            recording_sid(given, &self.account_sid, &self.base)
        };
        let Some(sid) = sid else {
            tracing::warn!(operation = OPERATION, "refused a recording reference");
            return Err(RestError::BadRecordingUrl);
        };
        let result = self
            .bounded(
                OPERATION,
                default_api::delete_recording(&self.api, &self.account_sid, &sid),
            )
            .await;
        match result {
            Ok(()) => {
                tracing::info!(operation = OPERATION, "Twilio deleted a recording");
                Ok(Deletion::Deleted)
            }
            Err(RestError::Rejected { status: 404, .. }) => {
                tracing::info!(operation = OPERATION, "Twilio had no such recording");
                Ok(Deletion::AlreadyGone)
            }
            Err(e) => Err(e),
        }
    }
}

/// The SID of what a create call made.
fn created(operation: &'static str, sid: Option<String>) -> Result<String, RestError> {
    match sid.filter(|s| !s.is_empty()) {
        Some(sid) => {
            tracing::info!(operation, "Twilio accepted the request");
            Ok(sid)
        }
        None => {
            tracing::warn!(operation, "Twilio's reply had no SID");
            Err(RestError::Transport(format!(
                "Twilio accepted {operation} but its reply had no SID"
            )))
        }
    }
}

/// The generated client's errors, without URLs, credentials or anything sent.
fn api_error<E>(operation: &'static str, error: ApiError<E>) -> RestError {
    match error {
        ApiError::ResponseError(ResponseContent {
            status, content, ..
        }) => rejected(operation, status.as_u16(), &content),
        ApiError::Reqwest(e) if e.is_timeout() => {
            tracing::warn!(operation, "Twilio did not answer in time");
            RestError::Timeout
        }
        ApiError::Reqwest(e) => {
            let detail = error_chain(&e.without_url());
            tracing::warn!(operation, error = %detail, "request to Twilio failed");
            RestError::Transport(detail)
        }
        // The generated code parses a 2xx reply into its model and drops the text when that
        // fails, so the SID cannot be recovered: say that the request may have taken effect.
        // (serde's message is not kept: it may quote the reply, which may hold numbers.)
        ApiError::Serde(e) => {
            tracing::warn!(
                operation,
                category = ?e.classify(),
                "Twilio's reply did not match the generated model"
            );
            RestError::Transport(format!(
                "Twilio answered {operation} but its reply could not be read; \
                 the request may have taken effect"
            ))
        }
        ApiError::Io(e) => {
            let detail = error_chain(&e);
            tracing::warn!(operation, error = %detail, "request to Twilio failed");
            RestError::Transport(detail)
        }
    }
}

/// A reqwest (0.13) error without its URL.
fn transport_error(operation: &'static str, error: reqwest::Error) -> RestError {
    if error.is_timeout() {
        tracing::warn!(operation, "Twilio did not answer in time");
        return RestError::Timeout;
    }
    let detail = error_chain(&error.without_url());
    tracing::warn!(operation, error = %detail, "request to Twilio failed");
    RestError::Transport(detail)
}

/// Twilio's error reply: `{"code": 21211, "message": "…", "more_info": "…", "status": 400}`.
#[derive(serde::Deserialize)]
struct TwilioErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// A 4xx/5xx, with Twilio's message (numbers redacted) or the status's reason.
fn rejected(operation: &'static str, status: u16, body: &str) -> RestError {
    let parsed = serde_json::from_str::<TwilioErrorBody>(body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    tracing::warn!(
        operation,
        status,
        twilio_code = code,
        "Twilio refused the request"
    );
    let message = parsed
        .and_then(|b| b.message)
        .map(|m| redact_numbers(m.trim()))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_string()
        });
    RestError::Rejected { status, message }
}

/// Replaces whatever looks like a phone number — a word of 7 or more digits, perhaps with
/// `+`, spaces, hyphens, dots or brackets between them — with `[number]`. Twilio's messages
/// sometimes quote the number they refused.
fn redact_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let word_start = i == 0 || !chars[i - 1].is_alphanumeric();
        if word_start && (c.is_ascii_digit() || matches!(c, '+' | '(')) {
            let mut digits = 0;
            let mut end = i; // just after the last digit
            let mut j = i;
            while let Some(&d) = chars.get(j) {
                if d.is_ascii_digit() {
                    digits += 1;
                    end = j + 1;
                } else if !matches!(d, '+' | ' ' | '-' | '.' | '(' | ')') {
                    break;
                }
                j += 1;
            }
            let word_end = chars.get(end).is_none_or(|c| !c.is_alphanumeric());
            if digits >= 7 && word_end {
                out.push_str("[number]");
                i = end;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// An error and its sources, joined with ": ", repeats left out.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const RE: &str = "RE0123456789abcdef0123456789abcdef";

    fn base() -> Url {
        Url::parse("https://api.twilio.com").unwrap()
    }

    #[test]
    fn redacts_numbers_in_messages() {
        assert_eq!(
            redact_numbers("The 'To' number +15005550001 is not a valid phone number."),
            "The 'To' number [number] is not a valid phone number."
        );
        assert_eq!(
            redact_numbers("Cannot reach +44 151 706-3602, try (0151) 706 3602"),
            "Cannot reach [number], try [number]"
        );
        assert_eq!(redact_numbers("07700900123"), "[number]");
        // SIDs, error codes and short numbers stay.
        let sid_text = format!("Queue QU{} not found, code 21211, 3 tries", &RE[2..]);
        assert_eq!(redact_numbers(&sid_text), sid_text);
        assert_eq!(redact_numbers("ÿ+1234567ü"), "ÿ+1234567ü");
    }

    #[test]
    fn recording_sids() {
        let ok = |u: &str| recording_sid(u, ACCOUNT, &base());
        let ours = format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RE}");
        assert_eq!(ok(&ours).as_deref(), Some(RE));
        assert_eq!(ok(&format!("{ours}.mp3")).as_deref(), Some(RE));
        assert_eq!(ok(&format!("{ours}.wav")).as_deref(), Some(RE));
        assert_eq!(ok(&format!(" {ours} ")).as_deref(), Some(RE));
        assert_eq!(
            ok(&format!(
                "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RE}"
            ))
            .as_deref(),
            Some(RE)
        );
        for bad in [
            ours.replace("https:", "http:"),
            ours.replace("api.twilio.com", "api.twilio.com.evil.example"),
            ours.replace("api.twilio.com", "api.twilio.com:8443"),
            ours.replace("api.twilio.com", "user:pw@api.twilio.com"),
            ours.replace("api.twilio.com", "evil.example"),
            ours.replace(ACCOUNT, "AC00000000000000000000000000000000"),
            ours.replace(RE, "RE0123"),
            ours.replace(RE, "REzz23456789abcdef0123456789abcdef"),
            ours.replace(RE, &format!("CA{}", &RE[2..])),
            format!("{ours}.json"),
            format!("{ours}?x=1"),
            format!("{ours}#x"),
            format!("{ours}/Transcriptions"),
            format!(
                "https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls/../Recordings/{RE}/x"
            ),
            format!("https://api.twilio.com/x/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RE}"),
            RE.to_string(),
            String::new(),
        ] {
            assert_eq!(ok(&bad), None, "{bad}");
        }
    }

    #[test]
    fn recording_urls_keep_the_base_path() {
        let rest = TwilioRest::new(
            "http://127.0.0.1:9/prefix/",
            ACCOUNT,
            SecretString::from("t".to_string()),
            Duration::from_secs(1),
        )
        .unwrap();
        let url = rest
            .recording_mp3_url(&format!(
                "https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RE}"
            ))
            .unwrap();
        assert_eq!(
            url.as_str(),
            format!("http://127.0.0.1:9/prefix/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RE}.mp3")
        );
    }

    #[test]
    fn rejects_bad_settings() {
        let new = |base: &str, sid: &str, token: &str| {
            TwilioRest::new(
                base,
                sid,
                SecretString::from(token.to_string()),
                Duration::from_secs(1),
            )
        };
        assert!(matches!(
            new("https://api.twilio.com", "", "t"),
            Err(RestError::NotConfigured)
        ));
        assert!(matches!(
            new("https://api.twilio.com", ACCOUNT, " "),
            Err(RestError::NotConfigured)
        ));
        for base in [
            "ftp://x",
            "not a url",
            "https://u:p@api.twilio.com",
            "https://a/?q",
        ] {
            assert!(
                matches!(new(base, ACCOUNT, "t"), Err(RestError::Transport(_))),
                "{base}"
            );
        }
    }
}
