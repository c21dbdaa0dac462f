//! Signing in: e-mail and password, then the second factor (a code from an authenticator
//! app, or a one-time recovery code); enrolling the second factor on first sign-in; the
//! one-time set-up link that sets a password; signing out. Each stage gets a fresh session
//! id, so an id seen before sign-in is worthless after it.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::views::{self, render};
use super::{session_cookie, Dashboard, Visitor, WebError};
use crate::staff::audit::Action;
use crate::staff::{self, password, token_hash, totp, Session, Stage, User};

pub fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/code", get(code_page).post(code))
        .route("/login/enrol", get(enrol_page).post(enrol))
        .route("/login/enrol/qr.svg", get(enrol_qr))
        .route("/setup/{token}", get(setup_page).post(setup))
        .route("/logout", post(logout))
}

/// A response that also sets the session cookie.
fn with_cookie(id: &str, res: impl IntoResponse) -> Response {
    let mut res = res.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(id));
    res
}

/// Starts a session at `stage` in place of `old`.
async fn new_session(
    state: &Dashboard,
    old: Option<&Session>,
    user: Option<&User>,
    stage: Stage,
    pending_secret: Option<String>,
) -> Result<(Session, String), WebError> {
    if let Some(old) = old {
        state.store.delete_session(&old.id_hash).await?;
    }
    let now = state.now();
    let (mut session, id) = state.policy.start(user.map(|u| u.id.clone()), stage, now);
    session.pending_secret = pending_secret;
    state.store.create_session(&session).await?;
    Ok((session, id))
}

/// The visitor's session at `stage`, or a fresh anonymous one (with its cookie id).
async fn session_at(
    state: &Dashboard,
    visitor: &Visitor,
) -> Result<(Session, Option<String>), WebError> {
    match &visitor.session {
        Some(s) if s.stage == Stage::Anonymous => Ok((s.clone(), None)),
        other => {
            // Tidy up now and then: sessions that ended are removed as people sign in.
            let now = state.now();
            state
                .store
                .delete_dead_sessions(now, now - state.policy.idle)
                .await?;
            let (s, id) = new_session(state, other.as_ref(), None, Stage::Anonymous, None).await?;
            Ok((s, Some(id)))
        }
    }
}

fn page_with_session(id: Option<String>, status: StatusCode, html: String) -> Response {
    match id {
        Some(id) => with_cookie(&id, (status, Html(html))),
        None => (status, Html(html)).into_response(),
    }
}

#[derive(Debug, Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    done: Option<String>,
}

async fn login_page(
    State(state): State<Dashboard>,
    visitor: Visitor,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    if visitor
        .session
        .as_ref()
        .is_some_and(|s| s.stage == Stage::SignedIn)
    {
        return Ok(Redirect::to("/").into_response());
    }
    let (session, id) = session_at(&state, &visitor).await?;
    let notice = q
        .done
        .map(|_| "Your password is set. Sign in to continue.".to_string());
    let html = render(&views::LoginPage {
        csrf: &session.csrf,
        error: None,
        notice: notice.as_deref(),
        email: "",
    })?;
    Ok(page_with_session(id, StatusCode::OK, html))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

const WRONG: &str =
    "That e-mail address and password do not match an account. Check them and try again.";

/// 429 with when to try again.
fn throttled(
    retry_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Response {
    let seconds = (retry_at - now).num_seconds().max(1);
    let minutes = (seconds + 59) / 60;
    let local = retry_at
        .with_timezone(&crate::hours::LONDON)
        .format("%H:%M");
    let message = format!(
        "Too many unsuccessful sign-in attempts. For your security, signing in is paused: try again after {local} (in about {minutes} minute{}).",
        if minutes == 1 { "" } else { "s" }
    );
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        Html(views::message_page(StatusCode::TOO_MANY_REQUESTS, &message)),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// One sign-in attempt, recorded as a failure before it is checked (so parallel guesses
/// all count) and forgiven if it succeeds.
struct Attempt {
    token: String,
    account_key: String,
}

/// Records an attempt for the account and the address; returns it, and when sign-in may be
/// tried again if it is paused (this attempt included: the limit's worth of failures is
/// allowed, the next is refused).
async fn begin_attempt(
    state: &Dashboard,
    account_key: &str,
    address: &str,
) -> Result<(Attempt, Option<chrono::DateTime<chrono::Utc>>), WebError> {
    let now = state.now();
    let token = staff::random_token();
    let address_key = token_hash(&address_prefix(address));
    let since = now - state.throttle.window;
    let mut paused = None;
    for (scope, key, limit) in [
        ("account", account_key, state.throttle.per_account),
        ("address", address_key.as_str(), state.throttle.per_address),
    ] {
        state
            .store
            .record_login_failure(scope, key, now, &token)
            .await?;
        let (n, oldest) = state.store.login_failures(scope, key, since).await?;
        paused = paused.max(state.throttle.retry_at(n, oldest, limit + 1));
    }
    Ok((
        Attempt {
            token,
            account_key: account_key.to_string(),
        },
        paused,
    ))
}

/// The part of an address that names one network: IPv4 whole, IPv6 by its /64 (one
/// household or server has a whole /64 to hop around in).
pub(super) fn address_prefix(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => address.to_string(),
    }
}

impl Attempt {
    /// It succeeded: it is not a failure after all.
    async fn forgive(&self, state: &Dashboard) -> Result<(), WebError> {
        state.store.forgive_login_attempt(&self.token).await?;
        Ok(())
    }
}

async fn login(
    State(state): State<Dashboard>,
    visitor: Visitor,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let email =
        staff::normalise_email(&form.email).unwrap_or_else(|_| form.email.trim().to_lowercase());
    let now = state.now();
    let (attempt, paused) = begin_attempt(&state, &token_hash(&email), &visitor.address).await?;
    if let Some(at) = paused {
        tracing::warn!(
            security = true,
            event = "login-throttled",
            "sign-in paused after repeated failures"
        );
        state
            .audit(None, Action::LoginThrottled, None, &visitor.address, None)
            .await;
        return Ok(throttled(at, now));
    }
    let user = state.store.user_by_email(&email).await?;
    let usable = user.as_ref().filter(|u| !u.disabled);
    // The same work (an argon2 check) whether or not the account exists.
    let ok = password::verify_off_thread(
        form.password.clone(),
        usable.and_then(|u| u.password_hash.clone()),
    )
    .await;
    let Some(user) = usable.filter(|_| ok) else {
        tracing::warn!(security = true, event = "login-failed", "sign-in failed");
        state
            .audit(
                None,
                Action::LoginFailed,
                None,
                &visitor.address,
                Some("password"),
            )
            .await;
        let (session, id) = session_at(&state, &visitor).await?;
        let html = render(&views::LoginPage {
            csrf: &session.csrf,
            error: Some(WRONG),
            notice: None,
            email: &email,
        })?;
        return Ok(page_with_session(id, StatusCode::UNAUTHORIZED, html));
    };
    attempt.forgive(&state).await?;
    let (stage, pending, next) = if user.totp_secret.is_some() {
        (Stage::SecondFactor, None, "/login/code")
    } else {
        (Stage::Enrol, Some(totp::new_secret()), "/login/enrol")
    };
    let (_, id) = new_session(&state, visitor.session.as_ref(), Some(user), stage, pending).await?;
    Ok(with_cookie(&id, Redirect::to(next)))
}

/// Both factors passed: audited, and a fresh session id for the signed-in session.
async fn signed_in(
    state: &Dashboard,
    visitor: &Visitor,
    session: &Session,
    user: &User,
) -> Result<String, WebError> {
    state
        .audit(
            Some(user),
            Action::LoginSucceeded,
            None,
            &visitor.address,
            None,
        )
        .await;
    let (_, id) = new_session(state, Some(session), Some(user), Stage::SignedIn, None).await?;
    Ok(id)
}

/// The pending user of a half-done sign-in at `stage`, or back to the start.
async fn pending_user(
    state: &Dashboard,
    visitor: &Visitor,
    stage: Stage,
) -> Result<Option<(Session, User)>, WebError> {
    let Some(session) = visitor.session.clone().filter(|s| s.stage == stage) else {
        return Ok(None);
    };
    let Some(user_id) = session.user_id.as_deref() else {
        return Ok(None);
    };
    Ok(state
        .store
        .user(user_id)
        .await?
        .filter(|u| !u.disabled)
        .map(|u| (session, u)))
}

async fn code_page(State(state): State<Dashboard>, visitor: Visitor) -> Result<Response, WebError> {
    let Some((session, _)) = pending_user(&state, &visitor, Stage::SecondFactor).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    Ok(Html(render(&views::CodePage {
        csrf: &session.csrf,
        error: None,
    })?)
    .into_response())
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn code(
    State(state): State<Dashboard>,
    visitor: Visitor,
    Form(form): Form<CodeForm>,
) -> Result<Response, WebError> {
    let Some((session, user)) = pending_user(&state, &visitor, Stage::SecondFactor).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let now = state.now();
    let (attempt, paused) =
        begin_attempt(&state, &token_hash(&user.email), &visitor.address).await?;
    if let Some(at) = paused {
        state.store.delete_session(&session.id_hash).await?;
        state
            .audit(
                Some(&user),
                Action::LoginThrottled,
                None,
                &visitor.address,
                None,
            )
            .await;
        return Ok(throttled(at, now));
    }
    let mut recovery = false;
    let ok = match user.totp_secret.as_deref() {
        Some(secret) => {
            let last = state.store.totp_last_step(&user.id).await?;
            match totp::check(secret, &form.code, now, last) {
                Some(step) => state.store.use_totp_step(&user.id, step).await?,
                None => {
                    let code = form.code.trim().to_lowercase();
                    recovery = code.len() == 11
                        && state
                            .store
                            .use_recovery_code(&user.id, &token_hash(&code), now)
                            .await?;
                    recovery
                }
            }
        }
        None => false,
    };
    if !ok {
        tracing::warn!(
            security = true,
            event = "second-factor-failed",
            "second factor refused"
        );
        state
            .audit(
                Some(&user),
                Action::SecondFactorFailed,
                None,
                &visitor.address,
                None,
            )
            .await;
        let html = render(&views::CodePage {
            csrf: &session.csrf,
            error: Some("That code is not right, or has already been used. Enter the 6-digit code your authenticator app shows now."),
        })?;
        return Ok((StatusCode::UNAUTHORIZED, Html(html)).into_response());
    }
    attempt.forgive(&state).await?;
    state
        .store
        .clear_login_failures("account", &attempt.account_key)
        .await?;
    if recovery {
        state
            .audit(
                Some(&user),
                Action::RecoveryCodeUsed,
                None,
                &visitor.address,
                None,
            )
            .await;
    }
    let id = signed_in(&state, &visitor, &session, &user).await?;
    Ok(with_cookie(&id, Redirect::to("/")))
}

async fn enrol_page(
    State(state): State<Dashboard>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    let Some((session, _)) = pending_user(&state, &visitor, Stage::Enrol).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let secret = session.pending_secret.clone().unwrap_or_default();
    Ok(Html(render(&views::EnrolPage {
        csrf: &session.csrf,
        secret: &grouped(&secret),
        error: None,
    })?)
    .into_response())
}

/// The secret in groups of four, easier to type.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn enrol_qr(State(state): State<Dashboard>, visitor: Visitor) -> Result<Response, WebError> {
    let Some((session, user)) = pending_user(&state, &visitor, Stage::Enrol).await? else {
        return Err(WebError::NotFound);
    };
    let svg = session
        .pending_secret
        .as_deref()
        .and_then(|s| totp::qr_svg(s, &user.email))
        .ok_or(WebError::Render)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

async fn enrol(
    State(state): State<Dashboard>,
    visitor: Visitor,
    Form(form): Form<CodeForm>,
) -> Result<Response, WebError> {
    let Some((session, mut user)) = pending_user(&state, &visitor, Stage::Enrol).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let now = state.now();
    let secret = session.pending_secret.clone().unwrap_or_default();
    let Some(step) = totp::check(&secret, &form.code, now, None) else {
        let html = render(&views::EnrolPage {
            csrf: &session.csrf,
            secret: &grouped(&secret),
            error: Some("That code is not right. Scan the QR code again, then enter the 6-digit code your app shows."),
        })?;
        return Ok((StatusCode::UNAUTHORIZED, Html(html)).into_response());
    };
    // Enrols only an account without a second factor, and only from the copy just read:
    // a stale enrolment session can never replace a factor set up meanwhile.
    user.totp_secret = Some(secret);
    user.updated_at = now;
    let enrolled =
        user_had_no_factor(&state, &user.id).await? && state.store.update_user(&user).await?;
    if !enrolled {
        state.store.delete_session(&session.id_hash).await?;
        return Ok(Redirect::to("/login").into_response());
    }
    state.store.use_totp_step(&user.id, step).await?;
    let codes = staff::recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| token_hash(c)).collect();
    state
        .store
        .replace_recovery_codes(&user.id, &hashes)
        .await?;
    state
        .audit(
            Some(&user),
            Action::SetupCompleted,
            Some(&user.id),
            &visitor.address,
            Some("second factor"),
        )
        .await;
    let id = signed_in(&state, &visitor, &session, &user).await?;
    Ok(with_cookie(
        &id,
        Html(render(&views::RecoveryPage { codes: &codes })?),
    ))
}

async fn user_had_no_factor(state: &Dashboard, id: &str) -> Result<bool, WebError> {
    Ok(state
        .store
        .user(id)
        .await?
        .is_some_and(|u| u.totp_secret.is_none()))
}

/// The account a set-up link belongs to, if the link is still good.
async fn setup_user(state: &Dashboard, token: &str) -> Result<Option<User>, WebError> {
    if token.len() > 100 {
        return Ok(None);
    }
    Ok(state
        .store
        .user_by_setup_token(&token_hash(token))
        .await?
        .filter(|u| u.setup_valid(state.now())))
}

const LINK_DEAD: &str =
    "This set-up link has expired or has already been used. Ask an administrator for a new one.";

async fn setup_page(
    State(state): State<Dashboard>,
    visitor: Visitor,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let Some(user) = setup_user(&state, &token).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(views::message_page(StatusCode::NOT_FOUND, LINK_DEAD)),
        )
            .into_response());
    };
    let (session, id) = session_at(&state, &visitor).await?;
    let html = render(&views::SetupPage {
        csrf: &session.csrf,
        email: &user.email,
        error: None,
        min: password::MIN_LENGTH,
    })?;
    Ok(page_with_session(id, StatusCode::OK, html))
}

#[derive(Deserialize)]
struct SetupForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn setup(
    State(state): State<Dashboard>,
    visitor: Visitor,
    Path(token): Path<String>,
    Form(form): Form<SetupForm>,
) -> Result<Response, WebError> {
    let Some(mut user) = setup_user(&state, &token).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(views::message_page(StatusCode::NOT_FOUND, LINK_DEAD)),
        )
            .into_response());
    };
    let problem = if form.password != form.confirm {
        Some("The two passwords are different. Type the same password twice.".to_string())
    } else {
        password::check_rules(&form.password)
            .err()
            .map(|e| format!("{}.", views::capitalised(&e.to_string())))
    };
    if let Some(problem) = problem {
        let (session, id) = session_at(&state, &visitor).await?;
        let html = render(&views::SetupPage {
            csrf: &session.csrf,
            email: &user.email,
            error: Some(&problem),
            min: password::MIN_LENGTH,
        })?;
        return Ok(page_with_session(id, StatusCode::BAD_REQUEST, html));
    }
    let hash = password::hash_off_thread(form.password.clone())
        .await
        .map_err(|_| WebError::Render)?;
    user.password_hash = Some(hash);
    user.setup_token_hash = None;
    user.setup_expires_at = None;
    user.updated_at = state.now();
    // Conditional on the version read: the link works once, even for two requests at once,
    // and never undoes a change (such as a disable) made meanwhile.
    if !state.store.update_user(&user).await? {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(views::message_page(StatusCode::NOT_FOUND, LINK_DEAD)),
        )
            .into_response());
    }
    // A new password ends every session the account had.
    state.store.delete_user_sessions(&user.id).await?;
    state
        .audit(
            Some(&user),
            Action::SetupCompleted,
            Some(&user.id),
            &visitor.address,
            Some("password"),
        )
        .await;
    Ok(Redirect::to("/login?done=1").into_response())
}

async fn logout(State(state): State<Dashboard>, visitor: Visitor) -> Result<Response, WebError> {
    if let Some(session) = &visitor.session {
        state.store.delete_session(&session.id_hash).await?;
        let user = match session.user_id.as_deref() {
            Some(id) => state.store.user(id).await?,
            None => None,
        };
        if user.is_some() {
            state
                .audit(user.as_ref(), Action::Logout, None, &visitor.address, None)
                .await;
        }
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, super::clear_cookie());
    Ok(res)
}
