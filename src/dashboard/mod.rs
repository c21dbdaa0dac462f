//! The staff dashboard: sign-in with a second factor, the live queue, the call-back list,
//! enquiry pages, staff accounts and the audit log, as server-rendered pages (`pages`,
//! `login`, `admin`) and the same actions as JSON under `/api/` (`api`). The rules live in
//! `work` (enquiries) and `crate::staff` (accounts); handlers here only translate HTTP.
//!
//! Every route checks the session and the role on the server; every state-changing request
//! carries the session's CSRF token; pages are sent with a strict Content-Security-Policy.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Router;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::DashboardSettings;
use crate::events::Events;
use crate::hours::live::LiveHours;
use crate::staff::audit::{Action, NewEntry};
use crate::staff::{token_hash, Role, Session, SessionPolicy, Stage, Throttle, User};
use crate::store::{Store, StoreError};
use crate::twilio::rest::TwilioApi;

mod admin;
mod api;
mod assets;
mod closures;
mod limits;
mod login;
mod messages;
mod pages;
mod stats_page;
mod views;
pub mod voice;
pub mod work;

/// The session cookie. `__Host-` makes the browser insist on Secure, Path=/ and no Domain.
pub const COOKIE: &str = "__Host-helpline";
/// The header API clients send the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field pages send it in.
pub const CSRF_FIELD: &str = "csrf";
/// Forms are small; anything bigger is refused before it is read.
const MAX_FORM: usize = 64 * 1024;

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct Dashboard {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: DashboardSettings,
    pub policy: SessionPolicy,
    pub throttle: Throttle,
    /// Served over https (the public URL's scheme): HSTS is sent.
    pub https: bool,
    pub public_url: String,
    pub twilio: Arc<dyn TwilioApi>,
    pub events: Arc<Events>,
    pub hours: Arc<LiveHours>,
    /// The managers' published messages in force on this instance.
    pub content: Arc<crate::messages::LiveContent>,
    /// The Twilio queue callers wait in (from the call flow).
    pub queue_name: String,
    /// The call flow in force (statistics label its menu options).
    pub flow: Arc<crate::flows::Flow>,
    pub texts: Arc<work::Texts>,
    /// Twilio webhook signature checks, for the call-connecting webhooks.
    pub webhook_auth: crate::twilio::extract::WebhookAuth,
    pub voice: crate::twilio::twiml::Voice,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

impl axum::extract::FromRef<Dashboard> for crate::twilio::extract::WebhookAuth {
    fn from_ref(d: &Dashboard) -> Self {
        d.webhook_auth.clone()
    }
}

impl Dashboard {
    /// Now, to the microsecond (what both databases store exactly).
    pub fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        self.clock.now().trunc_subsecs(6)
    }

    /// Appends to the audit log. A failure to audit is logged loudly but does not undo
    /// what was done (the action has happened by then).
    pub async fn audit(
        &self,
        actor: Option<&User>,
        action: Action,
        target: Option<&str>,
        address: &str,
        detail: Option<&str>,
    ) {
        if let Err(e) = self
            .audit_first(actor, action, target, address, detail)
            .await
        {
            tracing::error!(error = %e, action = action.as_str(), "could not write the audit log");
        }
    }

    /// Appends to the audit log, failing if it cannot: for access to personal data, which
    /// is refused unless it is recorded first.
    pub async fn audit_first(
        &self,
        actor: Option<&User>,
        action: Action,
        target: Option<&str>,
        address: &str,
        detail: Option<&str>,
    ) -> Result<(), WebError> {
        let entry = NewEntry {
            at: self.now(),
            actor_id: actor.map(|u| u.id.clone()),
            actor: actor.map_or_else(|| "unknown".to_string(), |u| u.email.clone()),
            action,
            target: target.map(str::to_string),
            address: Some(address.to_string()),
            detail: detail.map(str::to_string),
        };
        self.store.append_audit(&entry).await?;
        Ok(())
    }
}

impl Dashboard {
    /// Whether a session is still alive and its user enabled with at least `role` (for
    /// long-lived responses, re-checked as they go). Never extends the session.
    pub async fn still_allowed(&self, session_hash: &str, user_id: &str, role: Role) -> bool {
        let alive = matches!(
            self.store.session(session_hash).await,
            Ok(Some(s)) if s.stage == Stage::SignedIn && self.policy.alive(&s, self.now())
        );
        alive
            && matches!(
                self.store.user(user_id).await,
                Ok(Some(u)) if !u.disabled && u.role.allows(role)
            )
    }
}

/// The dashboard's routes, with CSRF checks and security headers.
pub fn router(state: Dashboard) -> Router {
    let protected = Router::new()
        .merge(login::routes())
        .merge(pages::routes())
        .merge(admin::routes())
        .merge(api::routes())
        .merge(messages::routes())
        .merge(closures::routes())
        .merge(stats_page::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            limits::ApiLimiter::new(state.settings.api_requests_per_minute),
            limits::limit_api,
        ))
        .with_state(state.clone());
    Router::new()
        .merge(protected)
        .merge(assets::routes())
        .merge(voice::routes(state))
}

/// Errors of the dashboard layer, each with its HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("the database is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("you do not have access to this page")]
    Forbidden,
    #[error("the page could not be drawn")]
    Render,
    #[error("Twilio: {0}")]
    Twilio(#[from] crate::twilio::rest::RestError),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::Store(_) | WebError::Render => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Forbidden => StatusCode::FORBIDDEN,
            WebError::Twilio(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The JSON API's answer: the status and `{"error": …}`. Client errors keep their
    /// words (written for people); server-side failures never show internal details.
    pub fn into_api_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "dashboard API request failed");
            self.public_message()
        } else {
            self.to_string()
        };
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    }

    /// What the user is told: never internal details.
    fn public_message(&self) -> String {
        match self {
            WebError::Store(_) | WebError::Render => {
                "Something went wrong on our side. Please try again in a moment.".into()
            }
            WebError::Twilio(crate::twilio::rest::RestError::NotConfigured) => {
                "Calls cannot be placed: the Twilio account is not configured.".into()
            }
            WebError::Twilio(_) => "Twilio did not accept the request. Please try again.".into(),
            other => views::capitalised(&other.to_string()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if matches!(
            self,
            WebError::Store(_) | WebError::Render | WebError::Twilio(_)
        ) {
            tracing::error!(error = %self, "dashboard request failed");
        }
        let status = self.status();
        let page = views::message_page(status, &self.public_message());
        (status, Html(page)).into_response()
    }
}

/// The client's address: the TCP peer (a proxy in front must be trusted to be the only
/// way in; X-Forwarded-For is not believed, since anyone can send it).
pub fn client_address(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(headers);
    jar.get(COOKIE).map(|c| c.value().to_string())
}

/// The `Set-Cookie` value for a session id.
pub fn session_cookie(id: &str) -> HeaderValue {
    let c = axum_extra::extract::cookie::Cookie::build((COOKIE, id.to_string()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(axum_extra::extract::cookie::SameSite::Strict)
        .build();
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-helpline=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// Whoever is making the request: their live session, if any, and address.
pub struct Visitor {
    pub session: Option<Session>,
    pub address: String,
}

impl FromRequestParts<Dashboard> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &Dashboard) -> Result<Self, WebError> {
        let address = client_address(parts);
        let session = match cookie_value(&parts.headers) {
            Some(id) => live_session(state, &id).await?,
            None => None,
        };
        Ok(Visitor { session, address })
    }
}

/// The session for a cookie value, if it is still alive (a dead one is removed).
async fn live_session(state: &Dashboard, id: &str) -> Result<Option<Session>, WebError> {
    let hash = token_hash(id);
    let Some(session) = state.store.session(&hash).await? else {
        return Ok(None);
    };
    if state.policy.alive(&session, state.now()) {
        Ok(Some(session))
    } else {
        state.store.delete_session(&hash).await?;
        Ok(None)
    }
}

/// A signed-in member of staff (password and second factor done, account enabled).
pub struct Staff {
    pub user: User,
    pub session: Session,
    pub address: String,
}

impl Staff {
    /// Refuses (403, audited and logged as a security event) unless the role allows `needed`.
    pub async fn require(
        &self,
        state: &Dashboard,
        needed: Role,
        what: &str,
    ) -> Result<(), WebError> {
        if self.user.role.allows(needed) {
            return Ok(());
        }
        tracing::warn!(security = true, event = "access-denied", user = %self.user.id, role = %self.user.role, needed = %needed, "access denied");
        state
            .audit(
                Some(&self.user),
                Action::AccessDenied,
                None,
                &self.address,
                Some(what),
            )
            .await;
        Err(WebError::Forbidden)
    }
}

/// Not signed in: pages go to the sign-in page, the API answers 401.
pub struct SignInRequired {
    api: bool,
}

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        if self.api {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": "sign in first: your session has ended or you are not signed in"})),
            )
                .into_response()
        } else {
            Redirect::to("/login").into_response()
        }
    }
}

impl FromRequestParts<Dashboard> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Dashboard) -> Result<Self, Response> {
        let api = parts.uri.path().starts_with("/api/");
        let visitor = Visitor::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(session) = visitor.session.filter(|s| s.stage == Stage::SignedIn) else {
            return Err(SignInRequired { api }.into_response());
        };
        let Some(user_id): Option<String> = session.user_id.clone() else {
            return Err(SignInRequired { api }.into_response());
        };
        let user = match state.store.user(&user_id).await {
            Ok(Some(u)) if !u.disabled => u,
            Ok(_) => {
                let _ = state.store.delete_session(&session.id_hash).await;
                return Err(SignInRequired { api }.into_response());
            }
            Err(e) => return Err(WebError::from(e).into_response()),
        };
        // The event stream reconnects by itself: it must not keep an idle session alive.
        let passive = parts.uri.path() == "/api/queue/events";
        if !passive {
            if let Err(e) = state
                .store
                .touch_session(&session.id_hash, state.now())
                .await
            {
                return Err(WebError::from(e).into_response());
            }
        }
        Ok(Staff {
            user,
            session,
            address: visitor.address,
        })
    }
}

/// Every state-changing request must carry the session's CSRF token (form field `csrf` or
/// header `X-CSRF-Token`) and must not come from another site.
async fn csrf_guard(State(state): State<Dashboard>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let api = req.uri().path().starts_with("/api/");
    let refuse = |why: &str| {
        tracing::warn!(
            security = true,
            event = "csrf-refused",
            reason = why,
            "state-changing request refused"
        );
        if api {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({
                    "error": "missing or wrong X-CSRF-Token (GET /api/me gives it), or a request from another site"
                })),
            )
                .into_response();
        }
        (
            StatusCode::FORBIDDEN,
            Html(views::message_page(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            )),
        )
            .into_response()
    };
    if req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site")
    {
        return refuse("cross-site request");
    }
    let session = match cookie_value(req.headers()) {
        Some(id) => match live_session(&state, &id).await {
            Ok(s) => s,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    let Some(session) = session else {
        return refuse("no session");
    };
    let header_token = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (req, token) = match header_token {
        Some(t) => (req, Some(t)),
        None => {
            let is_form = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
            if !is_form {
                return refuse("no token");
            }
            let (parts, body) = req.into_parts();
            let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
                Ok(b) => b,
                Err(_) => {
                    return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large\n")
                        .into_response()
                }
            };
            let token = form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == CSRF_FIELD)
                .map(|(_, v)| v.into_owned());
            (Request::from_parts(parts, Body::from(bytes)), token)
        }
    };
    use subtle::ConstantTimeEq;
    match token {
        Some(t) if bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())) => next.run(req).await,
        _ => refuse("wrong token"),
    }
}

/// Security headers on every dashboard response.
async fn security_headers(State(state): State<Dashboard>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if state.https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}
