//! The handlers' dashboard through HTTP, as a browser and Twilio would drive it: set-up
//! link, password and second factor, CSRF, roles, claims, outcomes, the audit log, the live
//! queue and click-to-call (Twilio's REST API is a local mock server).

mod support;

use std::sync::Arc;

use chrono::Duration;
use helpline::clock::Clock;
use helpline::enquiries::{Category, NewEnquiry, Source, Trust};
use helpline::staff::{accounts, totp, Role};
use helpline::store::Store;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;
use support::{at, spawn_app_with, TestApp};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

// Tuesday 24 November 2026, 10:00 in London: the line is open.
const NOW: &str = "2026-11-24T10:00:00Z";
const PASSWORD: &str = "a long enough passphrase";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

/// A browser: keeps the session cookie, follows nothing by itself.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token in the page's forms.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf in {}", self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn url(&self, p: &str) -> String {
        format!("http://{}{}", self.app.addr, p)
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", format!("__Host-helpline={c}")),
            None => req,
        };
        let res = req.send().await.unwrap();
        if let Some(v) = res.headers().get(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let value = v
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("__Host-helpline=")
                .to_string();
            self.cookie = (!value.is_empty()).then_some(value);
        }
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, p: &str) -> Page {
        let req = self.client.get(self.url(p));
        self.send(req).await
    }

    async fn post(&mut self, p: &str, form: &[(&str, &str)]) -> Page {
        let body = support::form_body(
            &form
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        );
        let req = self
            .client
            .post(self.url(p))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Posts a form taken from `page` (its CSRF token added).
    async fn submit(&mut self, page: &Page, p: &str, form: &[(&str, &str)]) -> Page {
        let csrf = page.csrf();
        let mut all = form.to_vec();
        all.push(("csrf", &csrf));
        self.post(p, &all).await
    }

    async fn api(
        &mut self,
        m: reqwest::Method,
        p: &str,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(m, self.url(p));
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let page = self.send(req).await;
        (
            page.status,
            serde_json::from_str(&page.body).unwrap_or(Value::Null),
        )
    }

    async fn csrf(&mut self) -> String {
        let (status, me) = self.api(reqwest::Method::GET, "/api/me", None, None).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        me["csrf_token"].as_str().unwrap().to_string()
    }

    /// Signs in with password and the current code.
    async fn sign_in(&mut self, email: &str, secret: &str) {
        let login = self.get("/login").await;
        let next = self
            .submit(
                &login,
                "/login",
                &[("email", email), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(next.location(), "/login/code", "{}", next.body);
        let page = self.get("/login/code").await;
        let code = totp::code_at(secret, self.app.clock.now()).unwrap();
        let done = self.submit(&page, "/login/code", &[("code", &code)]).await;
        assert_eq!(done.location(), "/", "{}", done.body);
    }
}

/// An account already set up (password and second factor); returns its TOTP secret.
async fn staff(app: &TestApp, email: &str, role: Role, phone: Option<&str>) -> (String, String) {
    let (mut user, _) = accounts::add(app.store.as_ref(), email, role, phone, app.clock.now())
        .await
        .unwrap();
    let secret = totp::new_secret();
    user.password_hash = Some(helpline::staff::password::hash(PASSWORD).unwrap());
    user.totp_secret = Some(secret.clone());
    user.setup_token_hash = None;
    assert!(app.store.update_user(&user).await.unwrap());
    (user.id, secret)
}

async fn enquiry(
    store: &Arc<dyn Store>,
    sid: &str,
    number: &str,
    created: &str,
) -> helpline::enquiries::Enquiry {
    store
        .create_enquiry(&NewEnquiry {
            call_sid: sid.into(),
            callback_number: helpline::phone::UkNumber::parse(number).unwrap(),
            trust: Trust::AlderHey,
            category: Category::DataConcern,
            recording: None,
            created_at: at(created),
            callback_due: at(created).date_naive() + Duration::days(2),
            source: Source::CallbackRequest,
            waiting_since: at(created),
        })
        .await
        .unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let entries = app
        .store
        .audit_entries(&helpline::staff::audit::Query {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    entries.into_iter().rev().map(|e| e.action).collect()
}

#[tokio::test]
async fn a_new_handler_sets_up_from_the_link_enrols_a_second_factor_and_signs_in() {
    let app = spawn_app_with(NOW, &[]).await;
    let (user, token) = accounts::add(
        app.store.as_ref(),
        "Ann@Example.NHS.uk",
        Role::Handler,
        None,
        app.clock.now(),
    )
    .await
    .unwrap();
    let link = token.link(support::PUBLIC);
    let setup_path = link.strip_prefix(support::PUBLIC).unwrap().to_string();
    let mut b = Browser::new(&app);

    // No password yet: signing in fails like any wrong password.
    let login = b.get("/login").await;
    let first_cookie = b
        .cookie
        .clone()
        .expect("an anonymous session for the form's token");
    let set_cookie = login
        .headers
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attr in [
        "__Host-helpline=",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
    ] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let refused = b
        .submit(
            &login,
            "/login",
            &[("email", "ann@example.nhs.uk"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // The set-up link: a short password is refused with the rule; then it is set.
    let page = b.get(&setup_path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ann@example.nhs.uk"));
    let short = b
        .submit(
            &page,
            &setup_path,
            &[("password", "short"), ("confirm", "short")],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(
        short.body.contains("at least 12 characters"),
        "{}",
        short.body
    );
    let done = b
        .submit(
            &short,
            &setup_path,
            &[("password", PASSWORD), ("confirm", PASSWORD)],
        )
        .await;
    assert_eq!(done.location(), "/login?done=1");
    assert_eq!(
        b.get(&setup_path).await.status,
        StatusCode::NOT_FOUND,
        "the link works once"
    );

    // Password, then the second factor must be enrolled: nothing else is reachable meanwhile.
    let login = b.get("/login").await;
    let next = b
        .submit(
            &login,
            "/login",
            &[("email", "ann@example.nhs.uk"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(next.location(), "/login/enrol");
    assert_ne!(
        b.cookie.as_deref(),
        Some(first_cookie.as_str()),
        "a new session id at sign-in"
    );
    assert_eq!(
        b.get("/queue").await.location(),
        "/login",
        "the second factor cannot be skipped"
    );
    let enrol = b.get("/login/enrol").await;
    let qr = b.get("/login/enrol/qr.svg").await;
    assert!(qr.body.contains("<svg"), "QR code");
    let secret: String = enrol
        .body
        .split("id=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .replace(' ', "");
    let wrong = b
        .submit(&enrol, "/login/enrol", &[("code", "000000")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let code = totp::code_at(&secret, app.clock.now()).unwrap();
    let codes = b.submit(&wrong, "/login/enrol", &[("code", &code)]).await;
    assert!(codes.body.contains("recovery-codes"), "{}", codes.body);
    let recovery: Vec<String> = codes
        .body
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    let queue = b.get("/queue").await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(queue.body.contains("Live queue"));

    // Sign out; the old cookie is dead.
    let old = b.cookie.clone();
    let out = b.submit(&queue, "/logout", &[]).await;
    assert_eq!(out.location(), "/login");
    b.cookie = old;
    assert_eq!(b.get("/queue").await.location(), "/login");

    // Next day: the same code again is refused (each code works once); a fresh one works;
    // a recovery code works once.
    app.clock.advance(Duration::seconds(60));
    b.cookie = None;
    let login = b.get("/login").await;
    b.submit(
        &login,
        "/login",
        &[("email", "ann@example.nhs.uk"), ("password", PASSWORD)],
    )
    .await;
    let page = b.get("/login/code").await;
    let used = b
        .submit(&page, "/login/code", &[("code", &recovery[0])])
        .await;
    assert_eq!(used.location(), "/");
    b.cookie = None;
    let login = b.get("/login").await;
    b.submit(
        &login,
        "/login",
        &[("email", "ann@example.nhs.uk"), ("password", PASSWORD)],
    )
    .await;
    let page = b.get("/login/code").await;
    let again = b
        .submit(&page, "/login/code", &[("code", &recovery[0])])
        .await;
    assert_eq!(
        again.status,
        StatusCode::UNAUTHORIZED,
        "a recovery code works once"
    );

    let actions = audit_actions(&app).await;
    for a in [
        "login.failed",
        "account.set-up",
        "login.succeeded",
        "logout",
        "login.recovery-code-used",
        "login.second-factor-failed",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    let _ = user;
}

#[tokio::test]
async fn writes_without_the_csrf_token_are_refused() {
    let app = spawn_app_with(NOW, &[]).await;
    let (_, secret) = staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let e = enquiry(&app.store, "CA-CSRF", "07700900123", "2026-11-24T09:30:00Z").await;
    let mut b = Browser::new(&app);

    // The sign-in form itself needs its token.
    b.get("/login").await;
    let page = b
        .post(
            "/login",
            &[("email", "h@example.nhs.uk"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    b.sign_in("h@example.nhs.uk", &secret).await;
    let path = format!("/api/enquiries/{}/claim", e.id);
    let (status, body) = b.api(reqwest::Method::POST, &path, None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no token");
    assert!(
        body["error"].as_str().unwrap().contains("X-CSRF-Token"),
        "JSON for the API: {body}"
    );
    let (status, _) = b
        .api(reqwest::Method::POST, &path, Some("forged"), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "wrong token");
    let form = b
        .post(&format!("/enquiries/{}/claim", e.id), &[("csrf", "forged")])
        .await;
    assert_eq!(form.status, StatusCode::FORBIDDEN);
    let csrf = b.csrf().await;
    let cross = b
        .send(
            b.client
                .post(b.url(&path))
                .header("x-csrf-token", &csrf)
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN, "from another site");
    let (status, body) = b.api(reqwest::Method::POST, &path, Some(&csrf), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["claimed_by_me"], true);
}

#[tokio::test]
async fn roles_are_checked_on_the_server_and_pages_are_locked_down() {
    let app = spawn_app_with(NOW, &[]).await;
    let (_, secret) = staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let mut anon = Browser::new(&app);
    assert_eq!(anon.get("/callbacks").await.location(), "/login");
    let (status, _) = anon
        .api(reqwest::Method::GET, "/api/enquiries", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut b = Browser::new(&app);
    b.sign_in("h@example.nhs.uk", &secret).await;
    for p in [
        "/overview",
        "/admin/users",
        "/admin/audit",
        "/api/users",
        "/api/audit",
        "/api/audit.csv",
        "/api/stats",
    ] {
        assert_eq!(b.get(p).await.status, StatusCode::FORBIDDEN, "{p}");
    }
    let e = enquiry(&app.store, "CA-ROLE", "07700900123", "2026-11-24T09:30:00Z").await;
    let page = b.get(&format!("/enquiries/{}", e.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("07700 900123") && !page.body.contains("+447700900123"),
        "masked"
    );
    let h = &page.headers;
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert!(!h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("unsafe-inline"));
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h.contains_key("strict-transport-security"),
        "served over https"
    );
    assert_eq!(
        b.get("/enquiries/00000000-0000-4000-8000-000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let (_, msecret) = staff(&app, "m@example.nhs.uk", Role::Manager, None).await;
    let mut m = Browser::new(&app);
    m.sign_in("m@example.nhs.uk", &msecret).await;
    assert_eq!(m.get("/overview").await.status, StatusCode::OK);
    let stats = m.get("/api/stats?period=7d").await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    assert!(stats.body.contains("\"service_level\""), "{}", stats.body);
    assert_eq!(
        m.get("/api/stats?period=fortnight").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(m.get("/admin/users").await.status, StatusCode::FORBIDDEN);
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|a| a == "access.denied"));
}

#[tokio::test]
async fn repeated_failures_pause_sign_in_without_revealing_accounts() {
    let app = spawn_app_with(NOW, &[]).await;
    staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let mut b = Browser::new(&app);
    let mut page = b.get("/login").await;
    let unknown = b
        .submit(
            &page,
            "/login",
            &[
                ("email", "nobody@example.nhs.uk"),
                ("password", "whatever it is"),
            ],
        )
        .await;
    let wrong = b
        .submit(
            &unknown,
            "/login",
            &[
                ("email", "h@example.nhs.uk"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(unknown.status, wrong.status);
    let msg = |p: &Page| {
        p.body
            .split("id=\"login-error\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(msg(&unknown), msg(&wrong), "no user enumeration");
    page = wrong;
    // Five failures for the account in all (the unknown address counted against its own).
    for _ in 0..4 {
        page = b
            .submit(
                &page,
                "/login",
                &[
                    ("email", "h@example.nhs.uk"),
                    ("password", "not the password"),
                ],
            )
            .await;
    }
    let paused = b
        .submit(
            &page,
            "/login",
            &[("email", "h@example.nhs.uk"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(paused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(paused.body.contains("try again after"), "{}", paused.body);
    assert!(paused.headers.contains_key("retry-after"));
    app.clock.advance(Duration::minutes(16));
    let page = b.get("/login").await;
    let ok = b
        .submit(
            &page,
            "/login",
            &[("email", "h@example.nhs.uk"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(ok.location(), "/login/code", "the pause ends");
}

#[tokio::test]
async fn two_handlers_claiming_at_once_one_wins_and_outcomes_follow_the_rule() {
    // Friday 27 November 2026: a "no answer" is retried on Monday.
    let app = spawn_app_with("2026-11-27T10:00:00Z", &[]).await;
    let (_, s1) = staff(&app, "one@example.nhs.uk", Role::Handler, None).await;
    let (_, s2) = staff(&app, "two@example.nhs.uk", Role::Handler, None).await;
    let e = enquiry(&app.store, "CA-RACE", "07700900123", "2026-11-27T09:30:00Z").await;
    let mut one = Browser::new(&app);
    one.sign_in("one@example.nhs.uk", &s1).await;
    let mut two = Browser::new(&app);
    two.sign_in("two@example.nhs.uk", &s2).await;
    let (c1, c2) = (one.csrf().await, two.csrf().await);
    let path = format!("/api/enquiries/{}/claim", e.id);
    let (a, b) = tokio::join!(
        one.api(reqwest::Method::POST, &path, Some(&c1), None),
        two.api(reqwest::Method::POST, &path, Some(&c2), None)
    );
    let mut statuses = vec![a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        vec![StatusCode::OK, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    let (winner, wc, loser, lc, who) = if a.0 == StatusCode::OK {
        (
            &mut one,
            c1,
            &mut two,
            c2,
            ("one@example.nhs.uk", s1.clone()),
        )
    } else {
        (
            &mut two,
            c2,
            &mut one,
            c1,
            ("two@example.nhs.uk", s2.clone()),
        )
    };

    // Only the holder records outcomes.
    let outcome = format!("/api/enquiries/{}/outcome", e.id);
    let (status, _) = loser
        .api(
            reqwest::Method::POST,
            &outcome,
            Some(&lc),
            Some(serde_json::json!({"outcome": "no-answer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = winner
        .api(
            reqwest::Method::POST,
            &outcome,
            Some(&wc),
            Some(serde_json::json!({"outcome": "sideways"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = winner
        .api(
            reqwest::Method::POST,
            &format!("/api/enquiries/{}/reveal", e.id),
            Some(&wc),
            None,
        )
        .await;
    assert_eq!(
        (status, body["number"].as_str()),
        (StatusCode::OK, Some("07700900123"))
    );

    let (status, body) = winner
        .api(
            reqwest::Method::POST,
            &outcome,
            Some(&wc),
            Some(serde_json::json!({"outcome": "no-answer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "retry");
    assert_eq!(
        body["next_attempt_on"], "2026-11-30",
        "the next working day"
    );
    // Trying again the same day does not use up an attempt.
    let claim = format!("/api/enquiries/{}/claim", e.id);
    let (status, _) = winner
        .api(reqwest::Method::POST, &claim, Some(&wc), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = winner
        .api(
            reqwest::Method::POST,
            &outcome,
            Some(&wc),
            Some(serde_json::json!({"outcome": "no-answer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Monday 30 November"),
        "{body}"
    );
    let release = format!("/api/enquiries/{}/release", e.id);
    winner
        .api(reqwest::Method::POST, &release, Some(&wc), None)
        .await;
    // Not due until Monday: nothing to claim next today; Monday it comes back.
    let (status, _) = winner
        .api(
            reqwest::Method::POST,
            "/api/enquiries/next",
            Some(&wc),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (day, expect) in [
        ("2026-11-30T10:00:00Z", "retry"),
        ("2026-12-01T10:00:00Z", "unreachable"),
    ] {
        app.clock.set(at(day));
        // Days later the session has long ended: sign in again.
        assert_eq!(
            winner.get("/callbacks").await.location(),
            "/login",
            "idle sessions end"
        );
        winner.sign_in(who.0, &who.1).await;
        let wc = winner.csrf().await;
        let (status, body) = winner
            .api(
                reqwest::Method::POST,
                "/api/enquiries/next",
                Some(&wc),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = winner
            .api(
                reqwest::Method::POST,
                &outcome,
                Some(&wc),
                Some(serde_json::json!({"outcome": "voicemail"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], expect, "{day}");
    }
    let (_, body) = winner
        .api(
            reqwest::Method::GET,
            &format!("/api/enquiries/{}", e.id),
            None,
            None,
        )
        .await;
    assert_eq!(body["attempts"], 3);
    assert_eq!(body["history"].as_array().unwrap().len(), 3);
    let (_, list) = winner
        .api(reqwest::Method::GET, "/api/enquiries", None, None)
        .await;
    assert!(
        list["enquiries"].as_array().unwrap().is_empty(),
        "closed as unreachable"
    );

    let actions = audit_actions(&app).await;
    for a in [
        "enquiry.claimed",
        "enquiry.number-revealed",
        "enquiry.outcome-recorded",
        "enquiry.closed",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    let entries = app
        .store
        .audit_entries(&helpline::staff::audit::Query {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let text = format!("{entries:?}");
    assert!(
        !text.contains("7700900123") && !text.contains("07700 900123"),
        "no numbers in the audit log"
    );
}

#[tokio::test]
async fn click_to_call_and_take_next_caller_go_through_twilio() {
    let twilio = MockServer::start().await;
    let app = spawn_app_with(
        NOW,
        &[
            ("TWILIO_API_BASE_URL", &twilio.uri()),
            ("TWILIO_ACCOUNT_SID", ACCOUNT),
        ],
    )
    .await;
    let (uid, secret) = staff(
        &app,
        "h@example.nhs.uk",
        Role::Handler,
        Some("07700 900999"),
    )
    .await;
    let e = enquiry(&app.store, "CA-CALL", "07700900123", "2026-11-24T09:30:00Z").await;
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{}", support::TOKEN))
    );
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json")))
        .and(header("authorization", auth.as_str()))
        .and(body_string_contains("To=%2B447700900999"))
        .and(body_string_contains("From=%2B441517063602"))
        .and(body_string_contains(
            format!("%2Ftwilio%2Fconnect%2Fenquiry%2F{}", e.id).as_str(),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            serde_json::json!({"sid": "CA11111111111111111111111111111111", "status": "queued"}),
        ))
        .expect(1)
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/2010-04-01/Accounts/{ACCOUNT}/Queues.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"queues": [{"sid": "QU22222222222222222222222222222222", "friendly_name": "helpline", "current_size": 1}]})))
        .mount(&twilio)
        .await;
    let mut queued = app.call_from("+447700900555").await;
    queued.press("0").await;
    app.clock.advance(Duration::seconds(42));
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{ACCOUNT}/Queues/QU22222222222222222222222222222222/Members/Front.json")))
        .and(body_string_contains(format!("%2Ftwilio%2Fconnect%2Fhandler%2F{uid}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"call_sid": queued.sid, "queue_sid": "QU22222222222222222222222222222222", "position": 1, "wait_time": 30})))
        .expect(1)
        .mount(&twilio)
        .await;

    let mut b = Browser::new(&app);
    b.sign_in("h@example.nhs.uk", &secret).await;
    let csrf = b.csrf().await;
    let call = format!("/api/enquiries/{}/call", e.id);
    let (status, _) = b.api(reqwest::Method::POST, &call, Some(&csrf), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "claim first");
    b.api(
        reqwest::Method::POST,
        &format!("/api/enquiries/{}/claim", e.id),
        Some(&csrf),
        None,
    )
    .await;
    let (status, body) = b.api(reqwest::Method::POST, &call, Some(&csrf), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = b
        .api(reqwest::Method::POST, "/api/queue/take", Some(&csrf), None)
        .await;
    assert_eq!(
        (status, &body["taken"]),
        (StatusCode::OK, &Value::Bool(true)),
        "{body}"
    );
    let (_, queue) = b.api(reqwest::Method::GET, "/api/queue", None, None).await;
    assert_eq!(
        queue["waiting"], 0,
        "the caller taken has left the queue: {queue}"
    );
    let call = app.store.call(&queued.sid).await.unwrap().unwrap();
    assert_eq!(call.queue_wait_seconds, Some(42));

    // When the handler answers, Twilio asks what to do: dial the caller, as the helpline.
    let connect = |handler: String| {
        let path = format!("/twilio/connect/enquiry/{}?handler={handler}", e.id);
        let params = vec![(
            "CallSid".to_string(),
            "CA11111111111111111111111111111111".to_string(),
        )];
        let signature = support::sign(&format!("{}{path}", support::PUBLIC), &params);
        let request = app
            .client
            .post(format!("http://{}{path}", app.addr))
            .header("x-twilio-signature", signature)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(support::form_body(&params));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let twiml = connect(uid.clone()).await;
    assert!(
        twiml.contains("<Dial callerId=\"+441517063602\""),
        "{twiml}"
    );
    assert!(twiml.contains("<Number>+447700900123</Number>"), "{twiml}");
    // Not the handler holding it (or no longer held): nobody is dialled.
    let twiml = connect("someone-else".into()).await;
    assert!(!twiml.contains("<Dial"), "{twiml}");
    let params = vec![(
        "CallSid".to_string(),
        "CA11111111111111111111111111111111".to_string(),
    )];
    // Unsigned: refused.
    let res = app
        .client
        .post(format!("http://{}/twilio/connect/handler/{uid}", app.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(support::form_body(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let actions = audit_actions(&app).await;
    assert!(
        actions.iter().any(|a| a == "enquiry.call-back-started"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "queue.caller-taken"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_live_queue_streams_waiting_callers() {
    let app = spawn_app_with(NOW, &[]).await;
    let (_, secret) = staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let mut b = Browser::new(&app);
    b.sign_in("h@example.nhs.uk", &secret).await;
    let mut call = app.call_from("+447700900555").await;
    call.press("0").await;
    app.clock.advance(Duration::seconds(95));
    let res = b
        .client
        .get(b.url("/api/queue/events"))
        .header(
            "cookie",
            format!("__Host-helpline={}", b.cookie.clone().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut res = res;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), res.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: queue"), "{text}");
    let data: Value =
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["waiting"], 1, "{data}");
    assert_eq!(data["longest"], "1 min");
    assert!(!text.contains("7700900555"), "no numbers on the queue");

    // Signed out: the stream ends at its next update rather than running on.
    let page = b.get("/queue").await;
    b.submit(&page, "/logout", &[]).await;
    let mut other = app.call_from("+447700900666").await;
    other.press("0").await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = res.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream outlived the session");
}

/// docs/openapi.yaml documents every route under /api/ the service has.
#[test]
fn the_openapi_file_lists_every_api_route() {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/openapi.yaml")).unwrap();
    let yaml = &yaml_rust2::YamlLoader::load_from_str(&doc).unwrap()[0];
    let paths: Vec<String> = yaml["paths"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let mut routes = Vec::new();
    for file in ["api.rs", "admin.rs", "messages.rs"] {
        let src = std::fs::read_to_string(format!("{root}/src/dashboard/{file}")).unwrap();
        for part in src.split(".route(").skip(1) {
            let route = part
                .trim_start()
                .trim_start_matches('"')
                .split('"')
                .next()
                .unwrap();
            if route.starts_with("/api/") {
                routes.push(route.replace("{user}", "{id}"));
            }
        }
    }
    assert!(routes.len() >= 15, "{routes:?}");
    for r in &routes {
        assert!(paths.contains(r), "{r} is not in docs/openapi.yaml");
    }
    for p in &paths {
        assert!(
            routes.contains(p),
            "docs/openapi.yaml lists {p}, which the service does not have"
        );
    }
}

/// A caller who gives up in the queue is listed once per number; one who leaves the queue
/// to ask for a call back keeps the time they joined it, ahead of later requests.
#[tokio::test]
async fn callers_who_gave_up_in_the_queue_are_listed_and_keep_their_place() {
    let app = spawn_app_with(NOW, &[]).await;
    let (_, secret) = staff(&app, "h@example.nhs.uk", Role::Handler, None).await;

    // Gave up after 10 s: too short to list. After 45 s: listed as missed in queue.
    let mut quick = app.call_from("+447700900111").await;
    quick.press("0").await;
    quick.queue_result("hangup", 10).await;
    let mut gave_up = app.call_from("+447700900222").await;
    gave_up.press("0").await;
    gave_up.queue_result("hangup", 45).await;
    // The same number again: merged into the open entry, not a second one.
    let mut again = app.call_from("+447700900222").await;
    again.press("0").await;
    again.queue_result("hangup", 50).await;

    // Joins the queue at 10:01, then an enquiry from someone else at 10:05, then at 10:10 the
    // first caller presses 1 to leave the queue and asks for a call back.
    app.clock.advance(Duration::minutes(1));
    let mut patient = app.call_from("+447700900333").await;
    patient.press("0").await;
    app.clock.advance(Duration::minutes(4));
    enquiry(
        &app.store,
        "CA-LATER",
        "07700900444",
        "2026-11-24T10:05:00Z",
    )
    .await;
    app.clock.advance(Duration::minutes(5));
    patient.press_while_waiting("1").await;
    patient.queue_result("leave", 600).await;
    patient.press("1").await;
    patient.press("1").await;
    patient.press("1").await;
    patient.leave_message(5).await;

    let mut b = Browser::new(&app);
    b.sign_in("h@example.nhs.uk", &secret).await;
    let (_, list) = b
        .api(reqwest::Method::GET, "/api/enquiries", None, None)
        .await;
    let list = list["enquiries"].as_array().unwrap().clone();
    let summary: Vec<(String, String)> = list
        .iter()
        .map(|e| {
            (
                e["number"].as_str().unwrap().to_string(),
                e["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(list.len(), 3, "{summary:?}");
    assert_eq!(list[0]["source"], "missed-in-queue");
    assert_eq!(list[0]["missed_calls"], 1, "the second hang-up is merged");
    assert_eq!(list[1]["source"], "callback-request");
    assert_eq!(
        list[1]["waiting_since"], "2026-11-24T10:01:00Z",
        "kept the time they joined the queue"
    );
    assert_eq!(list[2]["waiting_since"], "2026-11-24T10:05:00Z");
    assert!(
        list.iter()
            .all(|e| !e["number"].as_str().unwrap().contains("7700900")),
        "masked: {summary:?}"
    );

    // A call-back request from the number that gave up replaces the missed entry, keeping its time.
    let mut back = app.call_from("+447700900222").await;
    back.press("2").await;
    back.press("1").await;
    back.press("1").await;
    back.press("1").await;
    back.leave_message(5).await;
    let (_, list) = b
        .api(reqwest::Method::GET, "/api/enquiries", None, None)
        .await;
    let list = list["enquiries"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list[0]["source"], "callback-request");
    assert_eq!(list[0]["waiting_since"], "2026-11-24T10:00:00Z");
}

#[tokio::test]
async fn admins_manage_accounts_and_changes_end_sessions() {
    let app = spawn_app_with(NOW, &[]).await;
    let (admin_id, asecret) = staff(&app, "admin@example.nhs.uk", Role::Admin, None).await;
    let (hid, hsecret) = staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let mut admin = Browser::new(&app);
    admin.sign_in("admin@example.nhs.uk", &asecret).await;
    let mut handler = Browser::new(&app);
    handler.sign_in("h@example.nhs.uk", &hsecret).await;

    // Add an account from the Staff page: a one-time link is shown.
    let page = admin.get("/admin/users").await;
    assert_eq!(page.status, StatusCode::OK);
    let added = admin
        .submit(
            &page,
            "/admin/users",
            &[("email", "new@example.nhs.uk"), ("role", "handler")],
        )
        .await;
    assert!(
        added
            .body
            .contains("id=\"setup-link\">https://helpline.example.nhs.uk/setup/"),
        "{}",
        added.body
    );
    let dup = admin
        .submit(
            &added,
            "/admin/users",
            &[("email", "NEW@example.nhs.uk"), ("role", "handler")],
        )
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST, "the e-mail is taken");

    // Changing the handler's role ends their session at once.
    let csrf = admin.csrf().await;
    let (status, _) = admin
        .api(
            reqwest::Method::POST,
            &format!("/api/users/{hid}"),
            Some(&csrf),
            Some(serde_json::json!({"action": "role", "role": "manager"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        handler.get("/queue").await.location(),
        "/login",
        "signed out by the role change"
    );

    // A password reset gives a new link; the second factor is kept.
    app.clock.advance(Duration::seconds(60));
    let (status, body) = admin
        .api(
            reqwest::Method::POST,
            &format!("/api/users/{hid}"),
            Some(&csrf),
            Some(serde_json::json!({"action": "reset"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let link = body["setup_link"]
        .as_str()
        .unwrap()
        .strip_prefix(support::PUBLIC)
        .unwrap()
        .to_string();
    let mut h = Browser::new(&app);
    let page = h.get(&link).await;
    h.submit(
        &page,
        &link,
        &[
            ("password", "another long passphrase"),
            ("confirm", "another long passphrase"),
        ],
    )
    .await;
    let login = h.get("/login").await;
    let next = h
        .submit(
            &login,
            "/login",
            &[
                ("email", "h@example.nhs.uk"),
                ("password", "another long passphrase"),
            ],
        )
        .await;
    assert_eq!(
        next.location(),
        "/login/code",
        "a reset does not skip the second factor"
    );
    let page = h.get("/login/code").await;
    let code = totp::code_at(&hsecret, app.clock.now()).unwrap();
    assert_eq!(
        h.submit(&page, "/login/code", &[("code", &code)])
            .await
            .location(),
        "/"
    );

    // Disabling ends the session; an admin cannot disable themselves.
    let (status, _) = admin
        .api(
            reqwest::Method::POST,
            &format!("/api/users/{hid}"),
            Some(&csrf),
            Some(serde_json::json!({"action": "disable"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.get("/queue").await.location(), "/login");
    let login = h.get("/login").await;
    let refused = h
        .submit(
            &login,
            "/login",
            &[
                ("email", "h@example.nhs.uk"),
                ("password", "another long passphrase"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let (status, body) = admin
        .api(
            reqwest::Method::POST,
            &format!("/api/users/{admin_id}"),
            Some(&csrf),
            Some(serde_json::json!({"action": "disable"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The audit log shows each change, and the admin can read and export it.
    let audit = admin.get("/admin/audit?action=account.role-changed").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.body.contains("account.role-changed"));
    let csv = admin.get("/api/audit.csv").await;
    assert!(
        csv.body
            .starts_with("id,at,actor,action,target,address,detail"),
        "{}",
        csv.body
    );
    for a in [
        "account.created",
        "account.role-changed",
        "account.password-reset",
        "account.disabled",
    ] {
        assert!(csv.body.contains(a), "{a}");
    }
}

#[tokio::test]
async fn sessions_end_after_the_absolute_lifetime_and_claims_lapse() {
    let app = spawn_app_with(NOW, &[]).await;
    let (_, s1) = staff(&app, "one@example.nhs.uk", Role::Handler, None).await;
    let (_, s2) = staff(&app, "two@example.nhs.uk", Role::Handler, None).await;
    let e = enquiry(
        &app.store,
        "CA-LAPSE",
        "07700900123",
        "2026-11-24T09:30:00Z",
    )
    .await;
    let mut one = Browser::new(&app);
    one.sign_in("one@example.nhs.uk", &s1).await;
    let c1 = one.csrf().await;
    let (status, _) = one
        .api(
            reqwest::Method::POST,
            &format!("/api/enquiries/{}/claim", e.id),
            Some(&c1),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let mut two = Browser::new(&app);
    app.clock.advance(Duration::seconds(30));
    two.sign_in("two@example.nhs.uk", &s2).await;
    let c2 = two.csrf().await;
    let claim = format!("/api/enquiries/{}/claim", e.id);
    assert_eq!(
        two.api(reqwest::Method::POST, &claim, Some(&c2), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    // Abandoned for 21 minutes: the claim lapses and someone else may take it.
    app.clock.advance(Duration::minutes(21));
    assert_eq!(
        two.api(reqwest::Method::POST, &claim, Some(&c2), None)
            .await
            .0,
        StatusCode::OK
    );

    // Busy all day (never idle 30 minutes), the session still ends 10 hours after sign-in.
    for _ in 0..20 {
        app.clock.advance(Duration::minutes(29));
        if two.get("/queue").await.status != StatusCode::OK {
            break;
        }
    }
    let signed_in_for = app.clock.now() - at(NOW);
    assert!(
        signed_in_for >= Duration::hours(10)
            && signed_in_for < Duration::hours(10) + Duration::minutes(30),
        "{signed_in_for}"
    );
    assert_eq!(two.get("/queue").await.location(), "/login");
}

#[tokio::test]
async fn texts_go_to_mobiles_once_and_recordings_stream_through_the_service() {
    let twilio = MockServer::start().await;
    let app = spawn_app_with(
        NOW,
        &[
            ("TWILIO_API_BASE_URL", &twilio.uri()),
            ("TWILIO_ACCOUNT_SID", ACCOUNT),
            ("HELPLINE_SMS_FROM", "+447700900000"),
            ("HELPLINE_SMS_CONFIRMATION", "true"),
            ("HELPLINE_SMS_UNREACHABLE", "true"),
            ("HELPLINE_CALLBACK_ATTEMPTS", "1"),
        ],
    )
    .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
        )))
        .and(body_string_contains("To=%2B447700900123"))
        .and(body_string_contains("From=%2B447700900000"))
        .and(body_string_contains("reference"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            serde_json::json!({"sid": "SM44444444444444444444444444444444", "status": "queued"}),
        ))
        .expect(2)
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE0123456789abcdef0123456789abcdef.mp3"
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "audio/mpeg")
                .set_body_bytes(b"ID3-fake-audio".to_vec()),
        )
        .expect(1)
        .mount(&twilio)
        .await;

    // A call-back request from a mobile: the reference is texted (once, even if Twilio retries).
    let mut call = app.call_from("+447700900123").await;
    call.press("2").await;
    call.press("1").await;
    call.press("1").await;
    call.press("1").await;
    call.leave_message(5).await;
    // A landline gets no text.
    let mut landline = app.call_from("+441517060000").await;
    landline.press("2").await;
    landline.press("1").await;
    landline.press("1").await;
    landline.press("1").await;
    landline.leave_message(5).await;
    let stored = app.store.list_enquiries().await.unwrap();
    let mobile = stored
        .iter()
        .find(|e| e.callback_number == "+447700900123")
        .unwrap()
        .clone();
    for _ in 0..50 {
        if !app.store.texts(&mobile.id).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.store.texts(&mobile.id).await.unwrap(),
        vec![("reference".to_string(), "sent".to_string())]
    );

    // The recording plays through the service (the Twilio URL never reaches the browser).
    // Stored as Twilio gives it (RecordingUrl of our account).
    let rec = app
        .store
        .create_enquiry(&NewEnquiry {
            call_sid: "CA-REC2".into(),
            callback_number: helpline::phone::UkNumber::parse("07700900124").unwrap(),
            trust: Trust::RoyalLiverpool,
            category: Category::Other,
            recording: Some(helpline::enquiries::Recording {
                url: format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE0123456789abcdef0123456789abcdef"),
                duration_seconds: 9,
            }),
            created_at: at("2026-11-24T09:41:00Z"),
            callback_due: at("2026-11-26T09:41:00Z").date_naive(),
            source: Source::CallbackRequest,
            waiting_since: at("2026-11-24T09:41:00Z"),
        })
        .await
        .unwrap();
    let (_, secret) = staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let mut b = Browser::new(&app);
    b.sign_in("h@example.nhs.uk", &secret).await;
    let page = b.get(&format!("/enquiries/{}", rec.id)).await;
    assert!(page
        .body
        .contains(&format!("src=\"/enquiries/{}/recording\"", rec.id)));
    assert!(
        !page.body.contains("api.twilio.com"),
        "the Twilio URL stays on the server"
    );
    let audio = b.get(&format!("/enquiries/{}/recording", rec.id)).await;
    assert_eq!(audio.status, StatusCode::OK);
    assert_eq!(audio.headers["content-type"], "audio/mpeg");
    assert_eq!(audio.body, "ID3-fake-audio");
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|a| a == "enquiry.recording-played"));

    // The last attempt unanswered: closed as unreachable, and the mobile is texted how to call.
    let csrf = b.csrf().await;
    b.api(
        reqwest::Method::POST,
        &format!("/api/enquiries/{}/claim", mobile.id),
        Some(&csrf),
        None,
    )
    .await;
    let (status, body) = b
        .api(
            reqwest::Method::POST,
            &format!("/api/enquiries/{}/outcome", mobile.id),
            Some(&csrf),
            Some(serde_json::json!({"outcome": "no-answer"})),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("unreachable")),
        "{body}"
    );
    for _ in 0..50 {
        if app.store.texts(&mobile.id).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let texts = app.store.texts(&mobile.id).await.unwrap();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[1].0, "unreachable");
    let landline_id = &stored
        .iter()
        .find(|e| e.callback_number == "+441517060000")
        .unwrap()
        .id;
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|a| a == "enquiry.text-sent"));
    assert!(
        app.store.texts(landline_id).await.unwrap().is_empty(),
        "landlines are never texted"
    );
}

/// `helpline users add` prints a working one-time link; `helpline audit export` writes CSV.
#[tokio::test]
async fn the_command_line_adds_accounts_and_exports_the_audit_log() {
    let app = spawn_app_with(NOW, &[]).await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_helpline"))
            .args(args)
            .env("DATABASE_URL", app.db.url())
            .envs(app.db.data_key_env())
            .env("HELPLINE_PUBLIC_URL", support::PUBLIC)
            .env_remove("HELPLINE_CONFIG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = run(&[
        "users",
        "add",
        "--email",
        "Lead@Example.NHS.uk",
        "--role",
        "admin",
    ]);
    assert!(ok, "{err}");
    let link = out
        .lines()
        .find(|l| l.starts_with(support::PUBLIC))
        .unwrap()
        .to_string();
    let (ok, _, err) = run(&[
        "users",
        "add",
        "--email",
        "lead@example.nhs.uk",
        "--role",
        "admin",
    ]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run(&[
        "users",
        "add",
        "--email",
        "x@example.nhs.uk",
        "--role",
        "root",
    ]);
    assert!(!ok && err.contains("handler, manager or admin"), "{err}");
    let mut b = Browser::new(&app);
    let path = link.strip_prefix(support::PUBLIC).unwrap().to_string();
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "the printed link works");
    let (ok, out, _) = run(&["users", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["email"], "lead@example.nhs.uk");
    assert_eq!(list[0]["set_up"], false);
    let (ok, out, err) = run(&["audit", "export", "--since", "2026-01-01"]);
    assert!(ok, "{err}");
    let mut rdr = csv::Reader::from_reader(out.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert!(rows.iter().any(|r| &r[3] == "account.created"), "{out}");
    let (ok, _, err) = run(&["audit", "export", "--since", "last week"]);
    assert!(!ok && err.contains("YYYY-MM-DD"), "{err}");
}

/// Credential stuffing from one address (a different account each time) is paused too.
#[tokio::test]
async fn many_failures_from_one_address_pause_sign_in_from_it() {
    let app = spawn_app_with(NOW, &[]).await;
    staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let mut b = Browser::new(&app);
    let mut page = b.get("/login").await;
    for i in 0..20 {
        let email = format!("guess{i}@example.nhs.uk");
        page = b
            .submit(
                &page,
                "/login",
                &[("email", &email), ("password", "Password123!")],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let paused = b
        .submit(
            &page,
            "/login",
            &[("email", "h@example.nhs.uk"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(paused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|a| a == "login.throttled"));
}

/// Guesses sent in parallel all count against the limit; a change made from a stale copy
/// of an account (say, a phone update racing a disable) changes nothing.
#[tokio::test]
async fn parallel_guesses_all_count_and_stale_account_copies_change_nothing() {
    let app = spawn_app_with(NOW, &[]).await;
    let (id, _) = staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let mut b = Browser::new(&app);
    let page = b.get("/login").await;
    let csrf = page.csrf();
    let cookie = b.cookie.clone().unwrap();
    let guesses = (0..10).map(|i| {
        let body = support::form_body(&[
            ("csrf".to_string(), csrf.clone()),
            ("email".to_string(), "h@example.nhs.uk".to_string()),
            ("password".to_string(), format!("guess number {i}")),
        ]);
        b.client
            .post(b.url("/login"))
            .header("cookie", format!("__Host-helpline={cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    });
    let answers = futures_util::future::join_all(guesses).await;
    let refused = answers
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        refused >= 5,
        "at most 5 of 10 parallel guesses were checked: {refused} refused"
    );
    let page = b.get("/login").await;
    let right = b
        .submit(
            &page,
            "/login",
            &[("email", "h@example.nhs.uk"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);

    let mut stale = app.store.user(&id).await.unwrap().unwrap();
    let mut fresh = stale.clone();
    helpline::staff::accounts::change(
        app.store.as_ref(),
        &mut fresh,
        &accounts::Change::Disable,
        app.clock.now(),
    )
    .await
    .unwrap();
    let undo = accounts::change(
        app.store.as_ref(),
        &mut stale,
        &accounts::Change::Phone(Some("07700900999".into())),
        app.clock.now(),
    )
    .await;
    assert!(
        matches!(undo, Err(accounts::AccountError::Changed)),
        "{:?}",
        undo.err()
    );
    let now = app.store.user(&id).await.unwrap().unwrap();
    assert!(now.disabled && now.phone.is_none(), "the disable stands");
}

/// A manager changes the latest update without a deploy: previewed as spoken, published
/// to calls already in progress, every version kept and restorable, all audited.
#[tokio::test]
async fn managers_publish_and_restore_the_latest_update() {
    let app = spawn_app_with(NOW, &[]).await;
    let (_, msecret) = staff(&app, "m@example.nhs.uk", Role::Manager, None).await;
    let (_, hsecret) = staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let mut h = Browser::new(&app);
    h.sign_in("h@example.nhs.uk", &hsecret).await;
    assert_eq!(
        h.get("/messages/latest_update").await.status,
        StatusCode::FORBIDDEN
    );

    // A caller already in the menu before anything changes.
    let mut early = app.call_from("+447700900001").await;
    let mut m = Browser::new(&app);
    m.sign_in("m@example.nhs.uk", &msecret).await;
    let page = m.get("/messages/latest_update").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Criminals broke into"),
        "the flow's words are in force"
    );

    // Preview: numbers and dates as callers will hear them; nothing changes yet.
    let text = "New on 01/12/2026: letters are going out this week. Questions? Call 0151 706 3602.";
    let preview = m
        .submit(
            &page,
            "/messages/latest_update",
            &[("body", text), ("action", "preview")],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview.body.contains("Tuesday the 1st of December"),
        "{}",
        preview.body
    );
    assert!(
        preview.body.contains("0 1 5 1, 7 0 6, 3 6 0 2"),
        "{}",
        preview.body
    );
    let bad = m
        .submit(
            &preview,
            "/messages/latest_update",
            &[("body", "Dear {name}"), ("action", "publish")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("cannot contain"), "{}", bad.body);

    // Publish: the caller already on the line hears it at their next step.
    let done = m
        .submit(
            &bad,
            "/messages/latest_update",
            &[("body", text), ("action", "publish")],
        )
        .await;
    assert_eq!(done.location(), "/messages/latest_update?done=published");
    early.press("1").await;
    assert!(
        early.last().contains("letters are going out this week"),
        "{}",
        early.last()
    );
    assert!(
        early.last().contains("Tuesday the 1st of December"),
        "{}",
        early.last()
    );

    // A second version, then restore the first: callers hear the first again.
    let csrf = m.csrf().await;
    let (status, body) = m
        .api(
            reqwest::Method::POST,
            "/api/messages/latest_update",
            Some(&csrf),
            Some(serde_json::json!({"body": "Second update.", "action": "publish"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut c = app.call_from("+447700900002").await;
    c.press("1").await;
    assert!(c.last().contains("Second update."), "{}", c.last());
    let (_, state) = m
        .api(
            reqwest::Method::GET,
            "/api/messages/latest_update",
            None,
            None,
        )
        .await;
    let versions = state["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["author"], "m@example.nhs.uk");
    let first = versions[1]["id"].as_i64().unwrap();
    let (status, _) = m
        .api(
            reqwest::Method::POST,
            &format!("/api/messages/latest_update/restore/{first}"),
            Some(&csrf),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut c = app.call_from("+447700900003").await;
    c.press("1").await;
    assert!(
        c.last().contains("letters are going out this week"),
        "{}",
        c.last()
    );
    let (_, state) = m
        .api(
            reqwest::Method::GET,
            "/api/messages/latest_update",
            None,
            None,
        )
        .await;
    assert_eq!(
        state["versions"].as_array().unwrap().len(),
        3,
        "a restore is a new version; history is kept"
    );
    assert_eq!(
        m.get("/messages/main_menu").await.status,
        StatusCode::NOT_FOUND
    );

    let actions = audit_actions(&app).await;
    for a in ["message.published", "message.restored"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

/// The emergency switch and planned closures from the dashboard: the effect is shown
/// before saving, callers hear the reason at once, removing it reopens the line.
#[tokio::test]
async fn managers_close_the_line_from_the_dashboard_and_see_the_effect_first() {
    let app = spawn_app_with(NOW, &[]).await; // Tuesday 10:00, open
    let (_, msecret) = staff(&app, "m@example.nhs.uk", Role::Manager, None).await;
    let (_, hsecret) = staff(&app, "h@example.nhs.uk", Role::Handler, None).await;
    let mut h = Browser::new(&app);
    h.sign_in("h@example.nhs.uk", &hsecret).await;
    assert_eq!(h.get("/closures").await.status, StatusCode::FORBIDDEN);
    let mut m = Browser::new(&app);
    m.sign_in("m@example.nhs.uk", &msecret).await;
    let page = m.get("/closures").await;
    assert!(
        page.body.contains("The line is open now until 4pm."),
        "{}",
        page.body
    );

    let form = [
        ("kind", "now"),
        ("until", "2026-11-24T16:00"),
        ("reason", "The line is closed for an urgent staff briefing"),
    ];
    let mut check = form.to_vec();
    check.push(("action", "check"));
    let checked = m.submit(&page, "/closures", &check).await;
    assert_eq!(checked.status, StatusCode::OK);
    assert!(
        checked
            .body
            .contains("With this change:</strong> The line is closed now"),
        "{}",
        checked.body
    );
    assert!(
        checked
            .body
            .contains("It opens again tomorrow, Wednesday the 25th of November, at 9am."),
        "{}",
        checked.body
    );
    assert!(
        m.get("/closures").await.body.contains("open now"),
        "checking saved nothing"
    );
    let mut bad = form.to_vec();
    bad[1] = ("until", "2026-11-24T09:00");
    bad.push(("action", "save"));
    let refused = m.submit(&checked, "/closures", &bad).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("in the past"), "{}", refused.body);

    let mut save = form.to_vec();
    save.push(("action", "save"));
    let saved = m.submit(&refused, "/closures", &save).await;
    assert_eq!(saved.location(), "/closures?done=saved");
    let call = app.call_from("+447700900001").await;
    assert!(
        call.last()
            .contains("The line is closed for an urgent staff briefing."),
        "{}",
        call.last()
    );

    let page = m.get("/closures").await;
    let id = page
        .body
        .split("/closures/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let removed = m
        .submit(&page, &format!("/closures/{id}/remove"), &[])
        .await;
    assert_eq!(removed.location(), "/closures?done=removed");
    let call = app.call_from("+447700900002").await;
    assert!(
        !call.last().contains("urgent staff briefing"),
        "{}",
        call.last()
    );
    let actions = audit_actions(&app).await;
    for a in ["hours.closure-added", "hours.closure-removed"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}
