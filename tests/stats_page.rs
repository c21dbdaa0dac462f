//! The managers' statistics page and its CSV exports, through HTTP as a browser drives
//! them, over a small week of calls made through the real webhooks (the same week as
//! tests/stats.rs, so the figures are the hand-worked ones).

mod support;

use chrono::Duration;
use helpline::clock::Clock;
use helpline::enquiries::{AfterAttempt, Outcome, Status};
use helpline::staff::{accounts, totp, Role};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;
use support::{at, spawn_app_with, TestApp};

const PASSWORD: &str = "a long enough passphrase";
const WEEK: &str = "since=2026-11-23&until=2026-11-29";

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

    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf in {}", self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }

    /// The CSV rows (header first).
    fn csv(&self) -> Vec<Vec<String>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(self.body.as_bytes());
        r.records()
            .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
            .collect()
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

    async fn submit(&mut self, page: &Page, p: &str, form: &[(&str, &str)]) -> Page {
        let csrf = page.csrf();
        let mut all = form.to_vec();
        all.push(("csrf", &csrf));
        self.post(p, &all).await
    }

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

/// An account already set up (password and second factor); returns its id and TOTP secret.
async fn staff(app: &TestApp, email: &str, role: Role) -> (String, String) {
    let (mut user, _) = accounts::add(app.store.as_ref(), email, role, None, app.clock.now())
        .await
        .unwrap();
    let secret = totp::new_secret();
    user.password_hash = Some(helpline::staff::password::hash(PASSWORD).unwrap());
    user.totp_secret = Some(secret.clone());
    user.setup_token_hash = None;
    assert!(app.store.update_user(&user).await.unwrap());
    (user.id, secret)
}

async fn queued_call(app: &TestApp, when: &str, from: &str, result: &str, waited: u32) {
    app.clock.set(at(when));
    let mut call = app.call_from(from).await;
    call.press("0").await;
    app.clock.advance(Duration::seconds(i64::from(waited)));
    call.queue_result(result, waited).await;
    call.hang_up(waited + 30).await;
}

/// Tuesday 24 November 2026 (open): an update, five queued callers, one who leaves the
/// queue for a call back, one who hangs up in the menu; Saturday 28th (closed): a call-back
/// request. Three enquiries in all.
async fn a_week_of_calls(app: &TestApp) {
    app.clock.set(at("2026-11-24T10:00:00Z"));
    let mut c = app.call_from("+447700900001").await;
    c.press("1").await;
    c.hang_up(60).await;
    queued_call(app, "2026-11-24T10:05:00Z", "+447700900002", "bridged", 30).await;
    queued_call(app, "2026-11-24T10:10:00Z", "+447700900003", "bridged", 60).await;
    queued_call(app, "2026-11-24T10:15:00Z", "+447700900004", "bridged", 61).await;
    queued_call(app, "2026-11-24T10:20:00Z", "+447700900005", "hangup", 3).await;
    queued_call(app, "2026-11-24T10:25:00Z", "+447700900006", "hangup", 40).await;
    app.clock.set(at("2026-11-24T10:30:00Z"));
    let mut c = app.call_from("+447700900007").await;
    c.press("0").await;
    app.clock.advance(Duration::seconds(20));
    c.press_while_waiting("1").await;
    c.queue_result("leave", 20).await;
    c.press("1").await;
    c.press("1").await;
    c.press("1").await;
    c.leave_message(5).await;
    app.clock.set(at("2026-11-24T10:35:00Z"));
    let mut c = app.call_from("+447700900008").await;
    c.hang_up(10).await;
    app.clock.set(at("2026-11-28T11:00:00Z"));
    let mut c = app.call_from("+447700900009").await;
    c.press("2").await;
    c.press("1").await;
    c.press("2").await;
    c.press("1").await;
    c.leave_message(5).await;
    // Call-backs: the queue leaver at 14:30 the same day (240 working minutes after joining
    // the queue), Saturday's caller on Monday at 09:30 (30 working minutes), the missed
    // caller never.
    let handler = accounts::add(
        app.store.as_ref(),
        "h0@example.nhs.uk",
        Role::Handler,
        None,
        app.clock.now(),
    )
    .await
    .unwrap()
    .0
    .id;
    let enquiries = app.store.list_enquiries().await.unwrap();
    for (number, when) in [
        ("+447700900007", "2026-11-24T14:30:00Z"),
        ("+447700900009", "2026-11-30T09:30:00Z"),
    ] {
        let id = &enquiries
            .iter()
            .find(|e| e.callback_number == number)
            .unwrap()
            .id;
        let t = at(when);
        assert!(app
            .store
            .claim_enquiry(id, &handler, t, t - Duration::minutes(20))
            .await
            .unwrap());
        let effect = AfterAttempt {
            status: Status::Resolved,
            next_attempt_on: None,
            closed: true,
            unanswered: 0,
        };
        assert!(app
            .store
            .record_attempt(id, &handler, 0, Outcome::Resolved, &effect, t)
            .await
            .unwrap());
    }
    // The figures are looked at on Monday 30 November.
    app.clock.set(at("2026-11-30T12:00:00Z"));
}

async fn signed_in<'a>(app: &'a TestApp, email: &str, role: Role) -> Browser<'a> {
    let (_, secret) = staff(app, email, role).await;
    let mut b = Browser::new(app);
    b.sign_in(email, &secret).await;
    b
}

#[tokio::test]
async fn a_manager_sees_the_week_with_charts_and_no_inline_script_or_style() {
    let app = spawn_app_with("2026-11-24T10:00:00Z", &[]).await;
    a_week_of_calls(&app).await;
    let mut m = signed_in(&app, "m@example.nhs.uk", Role::Manager).await;

    let page = m.get(&format!("/stats?{WEEK}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    std::fs::write(
        std::env::temp_dir().join("helpline-stats-page.html"),
        html.as_bytes(),
    )
    .unwrap();
    assert!(
        html.contains("Monday 23 November 2026 to Sunday 29 November 2026"),
        "{html}"
    );
    assert!(html.contains("aria-current=\"page\">Statistics</a>"));
    // Charts: five inline SVGs (the journey map first), each with a title and description,
    // none styled inline.
    assert_eq!(html.matches("<svg").count(), 5, "{html}");
    for id in [
        "chart-journey",
        "chart-days",
        "chart-hours",
        "chart-heatmap",
        "chart-choices",
    ] {
        assert!(html.contains(&format!("<title id=\"{id}-title\">")), "{id}");
        assert!(html.contains(&format!("aria-labelledby=\"{id}-title {id}-desc\"")));
    }
    assert!(
        !html.contains("style="),
        "no inline style (the CSP forbids it)"
    );
    assert!(!html.contains("<style"), "no style element either");
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the site's own script from base.html"
    );
    assert!(html.contains("<script src=\"/assets/app.js\" defer></script>"));
    // Headline figures, with the queue's formulas beside them.
    assert!(html.contains("8 in hours, 1 out of hours"), "{html}");
    assert!(html.contains("<span class=\"big\">9</span>"), "9 calls");
    assert!(html.contains("50% (2 of 4)"), "service level");
    assert!(html.contains("25% (1 of 4)"), "abandonment rate");
    assert!(html.contains("50.3 s"), "average speed of answer");
    assert!(html.contains("66.7% (2 of 3)"), "within the promise");
    assert!(html.contains("30 min working"), "median to first attempt");
    assert!(html.contains("4 h 00 min working"), "90th percentile");
    let formulas = helpline::stats::FORMULAS;
    for (_, formula) in formulas {
        let escaped = formula.replace('&', "&amp;");
        assert!(html.contains(&escaped), "formula shown: {formula}");
    }
    // The heatmap: Tuesday 10:00 had 8 calls (in the SVG and in the table).
    assert!(html.contains("<title>Tue 10:00–10:59: 8 calls</title>"));
    assert!(html.contains("<th scope=\"row\">Tuesday</th>"));
    // Choices, the abandoned list and out-of-hours demand.
    assert!(html.contains("Hung up in the menu"));
    assert!(html.contains("Tue 24 Nov 2026, 10:20:03"), "{html}");
    assert!(html.contains("Mon 30 Nov 2026, 09:00"), "the line reopened");
    // A download link under each table, for the same days.
    let unescaped = html.replace("&#38;", "&").replace("&amp;", "&");
    for table in [
        "summary",
        "by_day",
        "by_hour",
        "heatmap",
        "choices",
        "enquiries_by_trust",
        "enquiries_by_category",
        "enquiries_by_status",
        "attempt_outcomes",
        "abandoned",
        "out_of_hours",
        "journey",
    ] {
        let link = format!("href=\"/stats.csv?table={table}&since=2026-11-23&until=2026-11-29\"");
        assert!(unescaped.contains(&link), "{link}");
        let csv = m.get(&format!("/stats.csv?table={table}&{WEEK}")).await;
        assert_eq!(csv.status, StatusCode::OK, "{table}: {}", csv.body);
        assert_eq!(
            csv.headers["content-disposition"],
            format!("attachment; filename=\"helpline-{table}-2026-11-23-2026-11-29.csv\"").as_str()
        );
        assert!(csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        assert!(csv.csv().len() > 1, "{table}: a header and rows");
    }
    // Every period and every hospital can be chosen; the page keeps the choice.
    let one = m
        .get("/stats?period=7d&trust=liverpool-heart-and-chest")
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert!(one.body.contains("<option value=\"7d\" selected>"));
    assert!(one
        .body
        .contains("<option value=\"liverpool-heart-and-chest\" selected>"));
    assert!(one.body.contains("Liverpool Heart and Chest only"));
    let default = m.get("/stats").await;
    assert_eq!(default.status, StatusCode::OK);
    assert!(
        default.body.contains("value=\"2026-11-24\""),
        "the last 7 days"
    );
}

#[tokio::test]
async fn handlers_are_refused_and_bad_periods_are_explained() {
    let app = spawn_app_with("2026-11-30T12:00:00Z", &[]).await;
    let mut h = signed_in(&app, "h@example.nhs.uk", Role::Handler).await;
    assert_eq!(h.get("/stats").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        h.get(&format!("/stats.csv?table=summary&{WEEK}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.get(&format!("/stats/enquiries.csv?{WEEK}")).await.status,
        StatusCode::FORBIDDEN
    );
    // Not a link for them either.
    let queue = h.get("/queue").await;
    assert!(!queue.body.contains("href=\"/stats\""));

    let mut m = signed_in(&app, "m@example.nhs.uk", Role::Manager).await;
    let bad = m.get("/stats?period=fortnight").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("is not a period"), "{}", bad.body);
    assert!(
        bad.body.contains("<form method=\"get\" action=\"/stats\""),
        "the form again"
    );
    assert!(bad.body.contains("role=\"alert\""));
    let backwards = m.get("/stats?since=2026-11-29&until=2026-11-23").await;
    assert_eq!(backwards.status, StatusCode::BAD_REQUEST);
    assert!(
        backwards.body.contains("before it starts"),
        "{}",
        backwards.body
    );
    assert!(
        backwards.body.contains("value=\"2026-11-29\""),
        "the dates kept"
    );
    let not_a_date = m.get("/stats?since=%3Cb%3E&until=2026-11-23").await;
    assert_eq!(not_a_date.status, StatusCode::BAD_REQUEST);
    assert!(!not_a_date.body.contains("<b>"), "escaped");
    assert!(not_a_date.body.contains("write it as YYYY-MM-DD"));
    let unknown = m.get(&format!("/stats.csv?table=secrets&{WEEK}")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body.contains("by_day"), "the tables are listed");
    assert_eq!(
        m.get("/stats.csv?table=summary&period=fortnight")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

fn f(v: &str) -> Option<f64> {
    (!v.is_empty()).then(|| v.parse().unwrap())
}

#[tokio::test]
async fn exports_match_the_api_and_numbers_are_masked_unless_asked_for() {
    let app = spawn_app_with("2026-11-24T10:00:00Z", &[]).await;
    a_week_of_calls(&app).await;
    let mut m = signed_in(&app, "m@example.nhs.uk", Role::Manager).await;
    let api = m.get(&format!("/api/stats?{WEEK}")).await;
    assert_eq!(api.status, StatusCode::OK);
    let json: Value = serde_json::from_str(&api.body).unwrap();

    // Choices: the same callers and shares, option by option.
    let choices = m
        .get(&format!("/stats.csv?table=choices&{WEEK}"))
        .await
        .csv();
    assert_eq!(choices[0], ["key", "option", "callers", "share"]);
    let options = json["choices"]["options"].as_array().unwrap();
    assert_eq!(
        choices.len(),
        1 + options.len() + 1,
        "plus hung up in the menu"
    );
    for (row, o) in choices[1..].iter().zip(options) {
        assert_eq!(row[0], o["key"].as_str().unwrap());
        assert_eq!(row[1], o["label"].as_str().unwrap());
        assert_eq!(row[2].parse::<u64>().unwrap(), o["calls"].as_u64().unwrap());
        assert_eq!(f(&row[3]), o["share"].as_f64());
    }
    let last = choices.last().unwrap();
    assert_eq!(last[1], "Hung up in the menu");
    assert_eq!(
        last[2].parse::<u64>().unwrap(),
        json["choices"]["hung_up_in_menu"].as_u64().unwrap()
    );

    // Summary: every figure the same as the API's.
    let summary = m
        .get(&format!("/stats.csv?table=summary&{WEEK}"))
        .await
        .csv();
    assert_eq!(summary[0], ["figure", "label", "value", "definition"]);
    let value = |key: &str| {
        summary
            .iter()
            .find(|r| r[0] == key)
            .unwrap_or_else(|| panic!("{key} in {summary:?}"))[2]
            .clone()
    };
    for (key, pointer) in [
        ("calls_total", "/calls/total"),
        ("calls_in_hours", "/calls/in_hours"),
        ("calls_out_of_hours", "/calls/out_of_hours"),
        ("hung_up_in_menu", "/choices/hung_up_in_menu"),
        ("choices_callers_choosing", "/choices/callers_choosing"),
        ("enquiries_total", "/enquiries/total"),
        ("enquiries_open", "/enquiries/open"),
        ("enquiries_closed", "/enquiries/closed"),
        ("callbacks_attempted", "/callbacks/attempted"),
        ("called_back_within_promise", "/callbacks/within_promise"),
        ("promise_due", "/callbacks/promise_due"),
        (
            "called_back_within_promise_share",
            "/callbacks/within_promise_share",
        ),
        (
            "first_attempt_minutes_median",
            "/callbacks/first_attempt_minutes_median",
        ),
        (
            "first_attempt_minutes_p90",
            "/callbacks/first_attempt_minutes_p90",
        ),
        ("attempts_per_enquiry", "/callbacks/attempts_per_enquiry"),
        ("unreachable_share", "/callbacks/unreachable_share"),
        ("queue_offered", "/queue/offered"),
        ("queue_answered", "/queue/answered"),
        ("queue_abandoned", "/queue/abandoned"),
        ("queue_short_abandons", "/queue/short_abandons"),
        ("queue_left_for_callback", "/queue/left_for_callback"),
        (
            "queue_answered_within_threshold",
            "/queue/answered_within_threshold",
        ),
        (
            "average_speed_of_answer_seconds",
            "/queue/average_speed_of_answer_seconds",
        ),
        ("abandonment_rate", "/queue/abandonment_rate"),
        ("service_level", "/queue/service_level"),
        (
            "service_level_seconds",
            "/queue/thresholds/service_level_seconds",
        ),
        (
            "short_abandon_seconds",
            "/queue/thresholds/short_abandon_seconds",
        ),
    ] {
        let api_value = json.pointer(pointer).unwrap_or_else(|| panic!("{pointer}"));
        assert_eq!(f(&value(key)), api_value.as_f64(), "{key}");
    }
    assert_eq!(value("calls_total"), "9");
    assert_eq!(value("service_level"), "0.5");
    assert_eq!(value("abandonment_rate"), "0.25");

    // Every other table parses back to the API's figures.
    let mut tables = std::collections::BTreeMap::new();
    for name in [
        "by_hour",
        "heatmap",
        "enquiries_by_trust",
        "enquiries_by_category",
        "enquiries_by_status",
        "attempt_outcomes",
        "abandoned",
        "out_of_hours",
        "journey",
    ] {
        let rows = m
            .get(&format!("/stats.csv?table={name}&{WEEK}"))
            .await
            .csv();
        tables.insert(name, rows);
    }
    let n = |cell: &str| cell.parse::<u64>().unwrap();
    let by_hour = &tables["by_hour"];
    for (h, row) in by_hour[1..].iter().enumerate() {
        assert_eq!(row[0], format!("{h:02}:00"));
        assert_eq!(
            Some(n(&row[1])),
            json["calls"]["by_hour"][h].as_u64(),
            "hour {h}"
        );
    }
    let heatmap = &tables["heatmap"];
    assert_eq!(heatmap.len(), 8, "a header and a row a weekday");
    for (d, row) in heatmap[1..].iter().enumerate() {
        for h in 0..24 {
            assert_eq!(
                Some(n(&row[1 + h])),
                json["calls"]["heatmap"][d][h].as_u64()
            );
        }
    }
    for (name, key) in [
        ("enquiries_by_trust", "/enquiries/by_trust"),
        ("enquiries_by_category", "/enquiries/by_category"),
        ("enquiries_by_status", "/enquiries/by_status"),
        ("attempt_outcomes", "/enquiries/attempt_outcomes"),
    ] {
        let counts = json.pointer(key).unwrap();
        let rows = &tables[name];
        let total: u64 = rows[1..].iter().map(|r| n(&r[2])).sum();
        let api_total: u64 = counts
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, api_total, "{name}");
        for row in &rows[1..] {
            assert_eq!(
                n(&row[2]),
                counts[&row[0]].as_u64().unwrap_or(0),
                "{name} {row:?}"
            );
        }
    }
    let abandoned = &tables["abandoned"];
    let api_abandoned = json["abandoned_calls"].as_array().unwrap();
    assert_eq!(abandoned.len(), 1 + api_abandoned.len());
    for (row, a) in abandoned[1..].iter().zip(api_abandoned) {
        assert_eq!(Some(n(&row[1])), a["waited_seconds"].as_u64());
    }
    let spells = &tables["out_of_hours"];
    let api_spells = json["out_of_hours"].as_array().unwrap();
    assert_eq!(spells.len(), 1 + api_spells.len());
    for (row, o) in spells[1..].iter().zip(api_spells) {
        assert_eq!(Some(n(&row[1])), o["calls"].as_u64());
        assert_eq!(Some(n(&row[2])), o["callback_requests"].as_u64());
    }
    let journey = &tables["journey"];
    assert_eq!(journey[0], ["kind", "from", "to", "callers"]);
    let branches = json["journey"]["branches"].as_array().unwrap();
    let hung_up = json["journey"]["hung_up"].as_object().unwrap();
    assert!(!branches.is_empty() && !hung_up.is_empty());
    assert_eq!(journey.len(), 1 + branches.len() + hung_up.len());
    for (row, b) in journey[1..].iter().zip(branches) {
        assert_eq!(row[0], "branch");
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            (b["from"].as_str().unwrap(), b["to"].as_str().unwrap())
        );
        assert_eq!(Some(n(&row[3])), b["callers"].as_u64());
    }
    for row in &journey[1 + branches.len()..] {
        assert_eq!(row[0], "hung-up");
        assert_eq!(Some(n(&row[3])), hung_up[&row[1]].as_u64(), "{row:?}");
    }

    // By day: the Tuesday and the Saturday.
    let days = m
        .get(&format!("/stats.csv?table=by_day&{WEEK}"))
        .await
        .csv();
    assert_eq!(days[2], ["2026-11-24", "8", "0", "8"]);
    assert_eq!(days[6], ["2026-11-28", "0", "1", "1"]);

    // One row per enquiry, the numbers masked by default …
    let masked = m.get(&format!("/stats/enquiries.csv?{WEEK}")).await;
    assert_eq!(masked.status, StatusCode::OK, "{}", masked.body);
    assert_eq!(
        masked.headers["content-disposition"],
        "attachment; filename=\"helpline-enquiries-2026-11-23-2026-11-29.csv\""
    );
    let rows = masked.csv();
    assert_eq!(rows[0][0], "reference");
    assert_eq!(rows[0][9], "number");
    assert_eq!(rows.len(), 4, "three enquiries: {rows:?}");
    for r in &rows[1..] {
        assert_eq!(r[0].len(), 6, "a reference");
        assert!(r[9].starts_with('•') && !r[9].contains("7700"), "{r:?}");
    }
    assert!(!masked.body.contains("07700900009"));
    let saturday = rows
        .iter()
        .find(|r| r[1].starts_with("2026-11-28"))
        .cloned()
        .expect("Saturday's request");
    let actions = |app: &TestApp| {
        let store = app.store.clone();
        async move {
            store
                .audit_entries(&helpline::staff::audit::Query {
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap()
        }
    };
    assert!(
        !actions(&app)
            .await
            .iter()
            .any(|e| e.action == "enquiry.number-revealed"),
        "a masked export is not a reveal"
    );

    // … and in full when asked for, which the audit log records.
    let full = m
        .get(&format!("/stats/enquiries.csv?{WEEK}&include_numbers=on"))
        .await;
    assert_eq!(full.status, StatusCode::OK);
    let rows = full.csv();
    let numbers: Vec<&str> = rows[1..].iter().map(|r| r[9].as_str()).collect();
    assert!(numbers.contains(&"07700900009"), "{numbers:?}");
    assert!(numbers.contains(&"07700900007"), "{numbers:?}");
    assert!(
        numbers.contains(&"07700900006"),
        "missed in the queue: {numbers:?}"
    );
    let same = rows.iter().find(|r| r[0] == saturday[0]).unwrap();
    assert_eq!(same[9], "07700900009");
    assert_eq!(same[2], "liverpool-heart-and-chest");
    let entries = actions(&app).await;
    let export = entries
        .iter()
        .find(|e| e.action == "enquiry.number-revealed")
        .expect("the export with numbers is audited");
    assert_eq!(export.actor, "m@example.nhs.uk");
    let detail = export.detail.as_deref().unwrap_or("");
    assert!(
        detail.starts_with("statistics export with numbers"),
        "{detail}"
    );
    assert!(detail.contains("2026-11-23 to 2026-11-29"), "{detail}");

    // One hospital only: just Saturday's enquiry.
    let lhc = m
        .get(&format!(
            "/stats/enquiries.csv?{WEEK}&trust=liverpool-heart-and-chest"
        ))
        .await
        .csv();
    assert_eq!(lhc.len(), 2, "{lhc:?}");
}

/// Not a check: a busy month (made-up calls, as `helpline dev seed` makes them) rendered to
/// `$TMPDIR/helpline-stats-busy.html`, to look at in a browser or take a screenshot of:
/// `cargo test --test stats_page -- --ignored`.
#[tokio::test]
#[ignore]
async fn a_busy_month_to_look_at() {
    let app = spawn_app_with("2026-11-30T12:00:00Z", &[]).await;
    helpline::dev::seed::seed(app.db.url(), 6_000, 30, app.clock.now())
        .await
        .unwrap();
    let mut m = signed_in(&app, "m@example.nhs.uk", Role::Manager).await;
    let page = m.get("/stats?period=30d").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("style="));
    let out = std::env::temp_dir().join("helpline-stats-busy.html");
    std::fs::write(&out, page.body.as_bytes()).unwrap();
    println!("written to {}", out.display());
}
