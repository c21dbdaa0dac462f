//! The handlers' dashboard in a real browser: headless Chromium, driven through
//! chromedriver (WebDriver) with fantoccini. The same story as tests/dashboard.rs, but
//! with the browser doing the work — cookies, forms, redirects, the Content-Security-Policy
//! and the live queue's script (assets/app.js, server-sent events) — instead of reqwest.
//! A second story is a manager's on the statistics page (tests/stats_page.rs through
//! HTTP): the charts as the browser draws and names them, the period form, and the CSV
//! exports fetched with the browser's own session; and a handler refused it.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`;
//! elsewhere point `HELPLINE_TEST_CHROMIUM` and `HELPLINE_TEST_CHROMEDRIVER` at them).
//! Without them the test skips with a printed reason, unless `HELPLINE_REQUIRE_ALL_TESTS=1`
//! (as in CI), where that is a failure.

mod support;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use helpline::clock::Clock;
use helpline::enquiries::{Category, NewEnquiry, Source, Trust};
use helpline::staff::{accounts, totp, Role};
use support::{at, spawn_app_with, TestApp};

// Tuesday 24 November 2026, 10:00 in London: the line is open.
const NOW: &str = "2026-11-24T10:00:00Z";
const EMAIL: &str = "ann@example.nhs.uk";
const PASSWORD: &str = "a long enough passphrase";
/// Debian's Chromium, unless `HELPLINE_TEST_CHROMIUM` names another.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long to wait for a page, an element or the live queue to change.
const PATIENCE: Duration = Duration::from_secs(10);
/// The whole story, before it is called stuck.
const STORY_LIMIT: Duration = Duration::from_secs(120);

fn require_all() -> bool {
    std::env::var("HELPLINE_REQUIRE_ALL_TESTS").is_ok_and(|v| v == "1")
}

fn chromium_path() -> PathBuf {
    std::env::var_os("HELPLINE_TEST_CHROMIUM")
        .map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from)
}

/// `HELPLINE_TEST_CHROMEDRIVER`, or `chromedriver` on the PATH (or in /usr/bin).
fn chromedriver_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HELPLINE_TEST_CHROMEDRIVER") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("chromedriver"))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` (with the reason printed) when they are not
/// installed and skipping is allowed.
fn browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    let chromium = chromium_path();
    let reason = if !chromium.is_file() {
        format!("{} is missing", chromium.display())
    } else if let Some(driver) = chromedriver_path() {
        return Some((chromium, driver));
    } else {
        "chromedriver was not found (HELPLINE_TEST_CHROMEDRIVER, PATH)".to_string()
    };
    assert!(
        !require_all(),
        "HELPLINE_REQUIRE_ALL_TESTS=1 but {reason}: install chromium chromium-driver"
    );
    eprintln!("skipping: {reason}; install chromium chromium-driver");
    None
}

/// A chromedriver process of our own, in its own process group; killed with everything it
/// started (Chromium) when dropped, panics included.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start(binary: &Path) -> Driver {
        // A free port: bind one, let it go, hand it to chromedriver.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        use std::os::unix::process::CommandExt;
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        let mut driver = Driver { child, port };
        let status = format!("{}/status", driver.url());
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(exit)) = driver.child.try_wait() {
                panic!("chromedriver exited at start-up ({exit})");
            }
            if let Ok(res) = http.get(&status).send().await {
                if let Ok(body) = res.json::<serde_json::Value>().await {
                    if body["value"]["ready"] == true {
                        return driver;
                    }
                }
            }
            assert!(
                started.elapsed() < PATIENCE,
                "chromedriver did not answer on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group (chromedriver and the Chromium it launched), by its id, while
        // chromedriver (the group's leader) is still ours and alive.
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, chromium: &Path) -> Client {
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,800",
            ],
        },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::rustls()
        .expect("rustls with the system's roots")
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .expect("a Chromium session from chromedriver")
}

/// Where the browser is: path and query.
async fn location(c: &Client) -> String {
    let url = c.current_url().await.expect("current URL");
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Waits until the browser is at `expected` (path and query).
async fn wait_for_location(c: &Client, expected: &str) {
    let started = Instant::now();
    loop {
        let here = location(c).await;
        if here == expected {
            return;
        }
        if started.elapsed() > PATIENCE {
            let body = match c.find(Locator::Css("body")).await {
                Ok(b) => b.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!("expected to be at {expected}, still at {here}; the page says:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The element matching `css`, waiting for it to appear.
async fn find(c: &Client, css: &str) -> Element {
    match c
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let here = location(c).await;
            let body = c.source().await.unwrap_or_default();
            panic!("no {css} on {here} ({e}):\n{body}")
        }
    }
}

async fn text(c: &Client, css: &str) -> String {
    find(c, css)
        .await
        .text()
        .await
        .unwrap_or_else(|e| panic!("text of {css}: {e}"))
        .trim()
        .to_string()
}

async fn fill(c: &Client, css: &str, value: &str) {
    let field = find(c, css).await;
    field
        .clear()
        .await
        .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    field
        .send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

async fn click(c: &Client, css: &str) {
    find(c, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Saves what the browser shows into the system's temporary directory; returns the path.
async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.expect("a screenshot");
    let path = std::env::temp_dir().join(format!(
        "helpline-browser-{name}-{}.png",
        std::process::id()
    ));
    std::fs::write(&path, png).expect("screenshot written");
    println!("screenshot ({name}): {}", path.display());
    path
}

/// Starts the service at `when`, chromedriver and a Chromium session, and runs `story`.
/// The story runs as a task of its own so that, whatever happens in it (a panic, or
/// getting stuck), the browser session is closed and chromedriver killed afterwards; a
/// failure leaves a screenshot named after `name`.
async fn in_a_browser<F, Fut>(name: &str, when: &str, story: F)
where
    F: FnOnce(Client, TestApp, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((chromium, chromedriver)) = browser_or_skip() else {
        return;
    };
    let app = spawn_app_with(when, &[]).await;
    let driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, &chromium).await;

    let story = tokio::spawn(story(client.clone(), app, driver.url()));
    let outcome = tokio::time::timeout(STORY_LIMIT, story).await;
    let failed = !matches!(outcome, Ok(Ok(())));
    if failed {
        if let Ok(url) = client.current_url().await {
            eprintln!("the browser was at {url}");
        }
        if let Ok(png) = client.screenshot().await {
            let path = std::env::temp_dir().join(format!(
                "helpline-browser-{name}-failure-{}.png",
                std::process::id()
            ));
            if std::fs::write(&path, png).is_ok() {
                eprintln!("screenshot (failure): {}", path.display());
            }
        }
    }
    let _ = client.close().await;
    drop(driver);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the story did not finish: {e}"),
        Err(_) => panic!("the story took longer than {STORY_LIMIT:?}"),
    }
}

/// The service as the browser reaches it. http://127.0.0.1:<port> works: Chromium treats
/// the loopback address as a secure context and keeps the `__Host-` cookie (Secure) over
/// plain http there.
fn base_url(app: &TestApp) -> String {
    format!("http://127.0.0.1:{}", app.addr.port())
}

/// Fills in the sign-in form (the page that is open) and sends it.
async fn submit_password(c: &Client, email: &str) {
    fill(c, "#email", email).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form[action='/login'] button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_signs_in_with_a_second_factor_and_works_a_call_back_in_a_real_browser() {
    in_a_browser("handler", NOW, |c, app, _| handler_story(c, app)).await;
}

async fn handler_story(c: Client, app: TestApp) {
    let base = base_url(&app);

    // 1. An account made as the command line makes it; the set-up link sets the password.
    let (_, token) = accounts::add(
        app.store.as_ref(),
        EMAIL,
        Role::Handler,
        Some("07700 900999"),
        app.clock.now(),
    )
    .await
    .expect("account added");
    let link = token.link(support::PUBLIC);
    let setup_path = link
        .strip_prefix(support::PUBLIC)
        .expect("the link is under the public URL");
    c.goto(&format!("{base}{setup_path}"))
        .await
        .expect("set-up page");
    assert_eq!(text(&c, "h1").await, "Set your password");
    assert!(text(&c, "main").await.contains(EMAIL));
    fill(&c, "#password", PASSWORD).await;
    fill(&c, "#confirm", PASSWORD).await;
    click(&c, "form button[type=submit]").await;
    wait_for_location(&c, "/login?done=1").await;
    assert_eq!(
        text(&c, "p.notice").await,
        "Your password is set. Sign in to continue."
    );

    // 2. Password, then the second factor is enrolled from the key on the page.
    submit_password(&c, EMAIL).await;
    wait_for_location(&c, "/login/enrol").await;
    let secret = text(&c, "#secret").await.replace(' ', "");
    assert!(!secret.is_empty(), "a key to type in");
    let code = totp::code_at(&secret, app.clock.now()).expect("a code for the key");
    fill(&c, "#code", &code).await;
    click(&c, "form[action='/login/enrol'] button[type=submit]").await;
    let codes = find(&c, "#recovery-codes").await;
    let items = codes
        .find_all(Locator::Css("li"))
        .await
        .expect("recovery codes");
    assert_eq!(items.len(), 10, "ten recovery codes");
    click(&c, "a.button").await;
    wait_for_location(&c, "/queue").await;
    assert_eq!(text(&c, "h1").await, "Live queue");

    // 3. The live queue: a caller joins and the open page shows them, no reload.
    assert_eq!(text(&c, "#queue-count").await, "0");
    // The script is running once the first snapshot from the stream has been drawn.
    wait_until(&c, "the live queue's first snapshot", |c| async move {
        find(&c, "#queue")
            .await
            .attr("data-updated")
            .await
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    // A mark on this page's window: a reload would lose it.
    c.execute("window.helplineNoReload = true;", vec![])
        .await
        .expect("script runs");
    let mut call = app.call_from("+447700900555").await;
    call.press("0").await;
    wait_until(&c, "one caller in the live queue", |c| async move {
        let rows = c
            .find_all(Locator::Css("#queue tbody tr"))
            .await
            .map_or(0, |r| r.len());
        text(&c, "#queue-count").await == "1" && rows == 1
    })
    .await;
    assert_eq!(
        c.execute("return window.helplineNoReload === true;", vec![])
            .await
            .expect("script runs"),
        serde_json::Value::Bool(true),
        "updated in place, not reloaded"
    );
    let row = text(&c, "#queue tbody tr").await;
    assert!(row.starts_with('1'), "position 1: {row}");
    let page = c.source().await.expect("page source");
    for shown in ["7700900555", "7700 900555", "07700 900 555"] {
        assert!(!row.contains(shown), "no phone number in the row: {row}");
        assert!(!page.contains(shown), "no phone number on the queue page");
    }
    screenshot(&c, "queue").await;

    // 4. A call-back: listed masked; claimed, revealed, tried without an answer.
    let enquiry = app
        .store
        .create_enquiry(&NewEnquiry {
            call_sid: "CA-BROWSER".into(),
            callback_number: helpline::phone::UkNumber::parse("07700900123").expect("number"),
            trust: Trust::AlderHey,
            category: Category::DataConcern,
            recording: None,
            created_at: at("2026-11-24T09:30:00Z"),
            callback_due: at("2026-11-26T09:30:00Z").date_naive(),
            source: Source::CallbackRequest,
            waiting_since: at("2026-11-24T09:30:00Z"),
        })
        .await
        .expect("enquiry");
    click(&c, "nav a[href='/callbacks']").await;
    wait_for_location(&c, "/callbacks").await;
    let link_css = format!("#callbacks a[href='/enquiries/{}']", enquiry.id);
    let listed = text(&c, &link_css).await;
    assert_eq!(listed, enquiry.reference.as_str());
    let number_css = format!(
        "#callbacks tbody tr:has(a[href='/enquiries/{}']) td:nth-child(2)",
        enquiry.id
    );
    let masked = text(&c, &number_css).await;
    assert!(
        masked.ends_with("23") && !masked.contains("900123"),
        "masked in the list: {masked}"
    );
    let page = c.source().await.expect("page source");
    for full in ["07700900123", "07700 900123", "+447700900123"] {
        assert!(
            !page.contains(full),
            "the call-back list shows {full} in full"
        );
    }
    click(&c, &link_css).await;
    let enquiry_path = format!("/enquiries/{}", enquiry.id);
    wait_for_location(&c, &enquiry_path).await;
    let masked = text(&c, "#number").await;
    assert!(
        masked.ends_with("23") && !masked.contains("900123"),
        "masked until revealed: {masked}"
    );

    click(&c, "#claim").await;
    wait_for_location(&c, &format!("{enquiry_path}?done=claimed")).await;
    assert!(!text(&c, "#notice").await.is_empty());
    assert_eq!(text(&c, "#holder").await, EMAIL);

    click(&c, "#reveal").await;
    wait_for_location(&c, &format!("{enquiry_path}/reveal")).await;
    assert_eq!(text(&c, "#number").await, "07700900123");

    click(&c, "input[name=outcome][value=no-answer]").await;
    click(&c, "#record-outcome").await;
    wait_for_location(&c, &format!("{enquiry_path}?done=outcome")).await;
    assert_eq!(text(&c, "#status").await, "Try again");
    let attempts = text(&c, "#attempts").await;
    assert!(attempts.starts_with("1 of 3"), "{attempts}");
    assert_eq!(text(&c, "#next-attempt").await, "Wednesday 25 November");
    screenshot(&c, "enquiry").await;

    // 5. All of it is in the audit log.
    let actions: Vec<String> = app
        .store
        .audit_entries(&helpline::staff::audit::Query {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit log")
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "account.set-up",
        "login.succeeded",
        "enquiry.claimed",
        "enquiry.number-revealed",
        "enquiry.outcome-recorded",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

/// Polls `ready` until it holds, for up to [`PATIENCE`].
async fn wait_until<F, Fut>(c: &Client, what: &str, mut ready: F)
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !ready(c.clone()).await {
        if started.elapsed() > PATIENCE {
            let here = location(c).await;
            let body = c.source().await.unwrap_or_default();
            panic!("waited {PATIENCE:?} for {what} on {here}:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// A manager and the statistics page.

/// When the manager looks: Monday 30 November 2026, noon in London (UTC in winter). The
/// last 7 days are 24–30 November, the last 30 days 1–30 November.
const VIEWED: &str = "2026-11-30T12:00:00Z";
const MANAGER: &str = "meg@example.nhs.uk";
const HANDLER: &str = "hal@example.nhs.uk";
/// The charts on the statistics page, by id.
const CHARTS: [&str; 5] = [
    "chart-journey",
    "chart-days",
    "chart-hours",
    "chart-heatmap",
    "chart-choices",
];

/// An account already set up, as after the set-up link and enrolment: a password and a
/// second factor. Returns the TOTP secret.
async fn account_ready(app: &TestApp, email: &str, role: Role) -> String {
    let (mut user, _) = accounts::add(app.store.as_ref(), email, role, None, app.clock.now())
        .await
        .expect("account added");
    let secret = totp::new_secret();
    user.password_hash = Some(helpline::staff::password::hash(PASSWORD).expect("hashed"));
    user.totp_secret = Some(secret.clone());
    user.setup_token_hash = None;
    assert!(
        app.store.update_user(&user).await.expect("account stored"),
        "account set up"
    );
    secret
}

/// Signs in through the forms: e-mail and password, then the code an authenticator app
/// shows now for `secret`. Ends on the live queue.
async fn sign_in(c: &Client, app: &TestApp, email: &str, secret: &str) {
    c.goto(&format!("{}/login", base_url(app)))
        .await
        .expect("sign-in page");
    submit_password(c, email).await;
    wait_for_location(c, "/login/code").await;
    let code = totp::code_at(secret, app.clock.now()).expect("a code for the key");
    fill(c, "#code", &code).await;
    click(c, "form[action='/login/code'] button[type=submit]").await;
    wait_for_location(c, "/queue").await;
}

/// A caller who joins the adviser queue at `when` and leaves it after `waited` seconds
/// (`bridged`: answered; `hangup`: gave up), as in tests/stats.rs.
async fn queued_call(app: &TestApp, when: &str, from: &str, result: &str, waited: u32) {
    app.clock.set(at(when));
    let mut call = app.call_from(from).await;
    call.press("0").await;
    let waiting = chrono::Duration::seconds(i64::from(waited));
    app.clock.advance(waiting);
    call.queue_result(result, waited).await;
    call.hang_up(waited + 30).await;
}

/// A month of calls through the real webhooks, each at its own instant on the service's
/// clock, which is left at [`VIEWED`]:
/// - Tuesday 10 November (open): fraud guidance; a caller who gives up in the queue after
///   45 s (listed for a call back as missed in the queue).
/// - Tuesday 24 November (open): the latest update; a caller answered after 30 s; one who
///   gives up after 40 s (missed in the queue).
/// - Saturday 28 November (closed): a request for a call back.
///
/// So the last 7 days have 4 calls (3 in hours, 1 out of hours) and 2 enquiries; the last
/// 30 days 6 calls (5 and 1) and 3 enquiries; 10 November alone 2 calls and 1 enquiry.
async fn a_month_of_calls(app: &TestApp) {
    app.clock.set(at("2026-11-10T10:00:00Z"));
    let mut c = app.call_from("+447700900101").await;
    c.press("3").await;
    c.hang_up(90).await;
    queued_call(app, "2026-11-10T10:05:00Z", "+447700900102", "hangup", 45).await;

    app.clock.set(at("2026-11-24T10:00:00Z"));
    let mut c = app.call_from("+447700900103").await;
    c.press("1").await;
    c.hang_up(60).await;
    queued_call(app, "2026-11-24T10:05:00Z", "+447700900104", "bridged", 30).await;
    queued_call(app, "2026-11-24T10:10:00Z", "+447700900105", "hangup", 40).await;

    app.clock.set(at("2026-11-28T11:00:00Z"));
    let mut c = app.call_from("+447700900106").await;
    for key in ["2", "1", "2", "1"] {
        c.press(key).await;
    }
    c.leave_message(5).await;

    app.clock.set(at(VIEWED));
}

/// What the statistics page should show for a period.
struct Expected<'a> {
    /// The period as the page words it.
    heading: &'a str,
    /// Days in the period: one column each in the calls-by-day chart.
    days: usize,
    calls: u64,
    in_hours: u64,
    out_of_hours: u64,
    enquiries: u64,
    /// One column's tooltip in the calls-by-day chart.
    day_column: &'a str,
}

/// The `textContent` of the element matching `css` (for what is not drawn as text, such
/// as an SVG `<title>`).
async fn text_content(c: &Client, css: &str) -> String {
    find(c, css)
        .await
        .prop("textContent")
        .await
        .unwrap_or_else(|e| panic!("textContent of {css}: {e}"))
        .unwrap_or_default()
}

/// Asks chromedriver what the browser's accessibility tree says of `element`: `role` or
/// `label` (WebDriver's Get Computed Role / Label, which fantoccini does not wrap).
async fn computed(c: &Client, webdriver: &str, element: &Element, what: &str) -> String {
    let session = c
        .session_id()
        .await
        .expect("session id")
        .expect("a session");
    let url = format!(
        "{webdriver}/session/{session}/element/{}/computed{what}",
        element.element_id()
    );
    let answer: serde_json::Value = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    answer["value"]
        .as_str()
        .unwrap_or_else(|| panic!("computed {what}: {answer}"))
        .to_string()
}

/// Waits for the statistics page to show `expected`'s period, then checks its figures,
/// and that the charts are drawn, reach assistive technology as images named by
/// their title and description, and draw this period.
async fn see_the_period(c: &Client, webdriver: &str, expected: &Expected<'_>) {
    let heading = expected.heading.to_string();
    wait_until(c, &format!("the period {heading}"), |c| {
        let heading = heading.clone();
        async move {
            // The page before may still be showing, or be half gone: look again.
            match c.find(Locator::Css(".period-heading strong")).await {
                Ok(h) => h.text().await.is_ok_and(|t| t.trim() == heading),
                Err(_) => false,
            }
        }
    })
    .await;
    assert_eq!(text(c, "h1").await, "Statistics");
    assert_eq!(
        text(c, "nav a[aria-current='page']").await,
        "Statistics",
        "the navigation marks the page"
    );
    assert!(
        c.find_all(Locator::Css("#period-error"))
            .await
            .expect("errors")
            .is_empty(),
        "no error about the period"
    );

    // Headline figures and the table under the first chart.
    let (calls, enquiries) = (expected.calls.to_string(), expected.enquiries.to_string());
    assert_eq!(text(c, "dl.headline > div:nth-child(1) dt").await, "Calls");
    assert_eq!(text(c, "dl.headline > div:nth-child(1) .big").await, calls);
    let note = text(c, "dl.headline > div:nth-child(1) dd").await;
    let split = format!(
        "{} in hours, {} out of hours",
        expected.in_hours, expected.out_of_hours
    );
    assert!(note.ends_with(&split), "{note:?}, not {split:?}");
    assert_eq!(
        text(c, "dl.headline > div:nth-child(2) dt").await,
        "Enquiries"
    );
    assert_eq!(
        text(c, "dl.headline > div:nth-child(2) .big").await,
        enquiries
    );
    assert_eq!(
        text(c, "#table-days tfoot td:nth-of-type(3)").await,
        calls,
        "the total under calls by day"
    );
    let rows = c
        .find_all(Locator::Css("#table-days tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), expected.days, "one row a day");

    // The charts: inline SVG, drawn, and named for screen readers. Every figure drawn as
    // an image has a name; the charts are among them.
    let mut images = Vec::new();
    for svg in c
        .find_all(Locator::Css("main figure > svg[role='img']"))
        .await
        .expect("charts")
    {
        let id = svg.attr("id").await.expect("attribute").unwrap_or_default();
        let label = computed(c, webdriver, &svg, "label").await;
        assert!(!label.trim().is_empty(), "the image {id:?} has no name");
        images.push(id);
    }
    for id in CHARTS {
        assert!(
            images.iter().any(|i| i == id),
            "{id} among the charts: {images:?}"
        );
        let svg = find(c, &format!("figure > svg#{id}")).await;
        assert_eq!(
            svg.attr("aria-labelledby").await.expect("attribute"),
            Some(format!("{id}-title {id}-desc")),
            "{id}"
        );
        let (_, _, width, height) = svg.rectangle().await.expect("where it is");
        assert!(
            width > 200.0 && height > 100.0,
            "{id} drawn at {width}×{height}"
        );
        let title = text_content(c, &format!("#{id}-title")).await;
        let desc = text_content(c, &format!("#{id}-desc")).await;
        assert!(
            !title.is_empty() && !desc.is_empty(),
            "{id}: {title:?} {desc:?}"
        );
        let role = computed(c, webdriver, &svg, "role").await;
        assert!(role == "image" || role == "img", "{id} is an image: {role}");
        assert_eq!(
            computed(c, webdriver, &svg, "label").await,
            format!("{title} {desc}"),
            "{id} is named by its title and description"
        );
    }
    let desc = text_content(c, "#chart-days-desc").await;
    assert!(
        desc.contains(&format!(" {calls} calls in all.")),
        "calls by day: {desc}"
    );
    let columns: Vec<String> = serde_json::from_value(
        c.execute(
            "return [...document.querySelectorAll('#chart-days > g > title')]\
                 .map(t => t.textContent);",
            vec![],
        )
        .await
        .expect("script runs"),
    )
    .expect("column titles");
    assert_eq!(columns.len(), expected.days, "a column a day: {columns:?}");
    assert!(
        columns.iter().any(|t| t == expected.day_column),
        "{:?} in {columns:?}",
        expected.day_column
    );
    let choices = text_content(c, "#chart-choices-desc").await;
    assert!(
        choices.contains(&format!("out of {calls} calls")),
        "choices: {choices}"
    );
}

/// Chooses a period in the page's list and sends the form.
async fn choose_period(c: &Client, value: &str) {
    find(c, "form[action='/stats'] select#period")
        .await
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("choose the period {value:?}: {e}"));
    click(c, "form[action='/stats'] button[type=submit]").await;
}

/// "The dates below" with `since` and `until` in the date fields, and the form sent. The
/// values are set as a date picker sets them (typing into a date field depends on the
/// browser's locale).
async fn choose_dates(c: &Client, since: &str, until: &str) {
    for (id, day) in [("since", since), ("until", until)] {
        let field = find(c, &format!("form[action='/stats'] input#{id}[type=date]")).await;
        c.execute(
            "arguments[0].value = arguments[1]; \
             arguments[0].dispatchEvent(new Event('change', { bubbles: true }));",
            vec![
                serde_json::to_value(&field).expect("element as an argument"),
                serde_json::Value::from(day),
            ],
        )
        .await
        .expect("script runs");
    }
    choose_period(c, "").await;
}

/// What the page's own `fetch` got, with the browser's cookies.
struct Fetched {
    status: u64,
    content_type: String,
    disposition: String,
    body: String,
}

impl Fetched {
    /// The body as CSV rows, header first; every row must parse.
    fn csv(&self) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(self.body.as_bytes())
            .records()
            .map(|r| {
                r.unwrap_or_else(|e| panic!("not CSV ({e}):\n{}", self.body))
                    .iter()
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }
}

/// Fetches `href` from inside the page, with its session (downloads to disk are not
/// dependable in headless Chromium).
async fn fetch_in_page(c: &Client, href: &str) -> Fetched {
    let answer = c
        .execute_async(
            "const [href, done] = arguments;
             fetch(href, { credentials: 'same-origin' })
               .then(r => r.text().then(body => done({
                 status: r.status,
                 type: r.headers.get('content-type') || '',
                 disposition: r.headers.get('content-disposition') || '',
                 body,
               })))
               .catch(e => done({ error: String(e) }));",
            vec![serde_json::Value::from(href)],
        )
        .await
        .unwrap_or_else(|e| panic!("fetch {href}: {e}"));
    if let Some(e) = answer.get("error") {
        panic!("fetch {href} failed in the page: {e}");
    }
    let field = |k: &str| answer[k].as_str().unwrap_or_default().to_string();
    Fetched {
        status: answer["status"].as_u64().expect("a status"),
        content_type: field("type"),
        disposition: field("disposition"),
        body: field("body"),
    }
}

/// The download link for one table of the statistics page: its text is checked, its
/// address returned as the browser resolves it.
async fn csv_link(c: &Client, table: &str, words: &str) -> String {
    let css = format!("p.csv a[download][href^='/stats.csv?table={table}&']");
    let link = find(c, &css).await;
    assert_eq!(link.text().await.expect("link text"), words);
    link.prop("href")
        .await
        .expect("href")
        .unwrap_or_else(|| panic!("{css} has no address"))
}

/// A CSV export fetched from the page: answered as a CSV download, named for the period,
/// header first. Returns the rows after the header.
async fn download_csv(
    c: &Client,
    href: &str,
    table: &str,
    period: &str,
    header: &[&str],
) -> Vec<Vec<String>> {
    let got = fetch_in_page(c, href).await;
    assert_eq!(got.status, 200, "{href}: {}", got.body);
    assert!(
        got.content_type.starts_with("text/csv"),
        "{href}: {}",
        got.content_type
    );
    assert_eq!(
        got.disposition,
        format!("attachment; filename=\"helpline-{table}-{period}.csv\"")
    );
    let mut rows = got.csv();
    assert!(!rows.is_empty(), "{href}: empty");
    assert_eq!(rows.remove(0), header, "{href}: the header row");
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_reads_the_statistics_changes_the_period_and_downloads_csv_in_a_real_browser() {
    in_a_browser("manager", VIEWED, manager_story).await;
}

async fn manager_story(c: Client, app: TestApp, webdriver: String) {
    a_month_of_calls(&app).await;
    let manager = account_ready(&app, MANAGER, Role::Manager).await;
    let handler = account_ready(&app, HANDLER, Role::Handler).await;

    // 1. The manager signs in (password, then the code) and opens Statistics from the
    //    navigation: the last 7 days.
    sign_in(&c, &app, MANAGER, &manager).await;
    click(&c, "nav a[href='/stats']").await;
    wait_for_location(&c, "/stats").await;
    let week = Expected {
        heading: "Tuesday 24 November 2026 to Monday 30 November 2026",
        days: 7,
        calls: 4,
        in_hours: 3,
        out_of_hours: 1,
        enquiries: 2,
        day_column: "Tue 24: 3 (3 in hours, 0 out of hours)",
    };
    see_the_period(&c, &webdriver, &week).await;
    assert_eq!(
        find(&c, "#period option:checked")
            .await
            .attr("value")
            .await
            .expect("value"),
        Some(String::new()),
        "no period chosen in the list"
    );
    screenshot(&c, "stats-7-days").await;

    // 2. The last 30 days, chosen in the form.
    choose_period(&c, "30d").await;
    let month = Expected {
        heading: "Sunday 1 November 2026 to Monday 30 November 2026",
        days: 30,
        calls: 6,
        in_hours: 5,
        out_of_hours: 1,
        enquiries: 3,
        day_column: "10 Nov: 2 (2 in hours, 0 out of hours)",
    };
    see_the_period(&c, &webdriver, &month).await;
    let here = location(&c).await;
    assert!(here.starts_with("/stats?period=30d&"), "{here}");
    assert_eq!(
        find(&c, "#period option:checked")
            .await
            .attr("value")
            .await
            .expect("value"),
        Some("30d".into()),
        "the choice is kept"
    );
    screenshot(&c, "stats-30-days").await;

    // 3. Downloads: calls by day and the headline figures, for the 30 days shown.
    let period = "2026-11-01-2026-11-30";
    let by_day = csv_link(&c, "by_day", "Download calls by day (CSV)").await;
    assert!(
        by_day.ends_with("since=2026-11-01&until=2026-11-30"),
        "the link names the days shown: {by_day}"
    );
    let days = download_csv(
        &c,
        &by_day,
        "by_day",
        period,
        &["date", "in_hours", "out_of_hours", "total"],
    )
    .await;
    assert_eq!(days.len(), 30, "a row a day: {days:?}");
    assert_eq!(days[0][0], "2026-11-01");
    assert_eq!(days[29][0], "2026-11-30");
    for (day, counts) in [
        ("2026-11-10", ["2", "0", "2"]),
        ("2026-11-24", ["3", "0", "3"]),
        ("2026-11-28", ["0", "1", "1"]),
    ] {
        let row = days
            .iter()
            .find(|r| r[0] == day)
            .unwrap_or_else(|| panic!("{day} in {days:?}"));
        assert_eq!(row[1..], counts, "{day}");
    }
    let total: u64 = days
        .iter()
        .map(|r| r[3].parse::<u64>().expect("a count"))
        .sum();
    assert_eq!(total, 6, "every call once");

    let summary = csv_link(&c, "summary", "Download the headline figures (CSV)").await;
    let figures = download_csv(
        &c,
        &summary,
        "summary",
        period,
        &["figure", "label", "value", "definition"],
    )
    .await;
    let value = |key: &str| {
        figures
            .iter()
            .find(|r| r[0] == key)
            .unwrap_or_else(|| panic!("{key} in {figures:?}"))[2]
            .clone()
    };
    assert_eq!(value("calls_total"), "6");
    assert_eq!(value("calls_in_hours"), "5");
    assert_eq!(value("calls_out_of_hours"), "1");
    assert_eq!(value("enquiries_total"), "3");
    assert_eq!(value("queue_offered"), "3");
    assert_eq!(value("queue_answered"), "1");
    assert_eq!(value("queue_abandoned"), "2");

    // 4. One day, given as dates: the page and its download links follow.
    choose_dates(&c, "2026-11-10", "2026-11-10").await;
    let one_day = Expected {
        heading: "Tuesday 10 November 2026",
        days: 1,
        calls: 2,
        in_hours: 2,
        out_of_hours: 0,
        enquiries: 1,
        day_column: "Tue 10: 2 (2 in hours, 0 out of hours)",
    };
    see_the_period(&c, &webdriver, &one_day).await;
    let by_day = csv_link(&c, "by_day", "Download calls by day (CSV)").await;
    let days = download_csv(
        &c,
        &by_day,
        "by_day",
        "2026-11-10-2026-11-10",
        &["date", "in_hours", "out_of_hours", "total"],
    )
    .await;
    assert_eq!(days, [["2026-11-10", "2", "0", "2"]]);

    // 5. A handler is refused: no link, the 403 page, and no export either.
    click(&c, "form[action='/logout'] button[type=submit]").await;
    wait_for_location(&c, "/login").await;
    sign_in(&c, &app, HANDLER, &handler).await;
    assert!(
        c.find_all(Locator::Css("nav a[href='/stats']"))
            .await
            .expect("links")
            .is_empty(),
        "no Statistics link for a handler"
    );
    c.goto(&format!("{}/stats", base_url(&app)))
        .await
        .expect("statistics page");
    wait_for_location(&c, "/stats").await;
    assert_eq!(text(&c, "h1").await, "Forbidden");
    assert_eq!(
        text(&c, "p.message[role=alert]").await,
        "You do not have access to this page"
    );
    assert!(
        c.find_all(Locator::Css("svg, .period-heading, p.csv a"))
            .await
            .expect("elements")
            .is_empty(),
        "nothing of the statistics on the refusal"
    );
    let page = fetch_in_page(&c, "/stats").await;
    assert_eq!(page.status, 403, "{}", page.body);
    let export = fetch_in_page(&c, &by_day).await;
    assert_eq!(export.status, 403, "{}", export.body);
    assert!(!export.body.contains("2026-11-10"), "{}", export.body);
    screenshot(&c, "stats-refused").await;

    // 6. Each refusal (the page, then the page and the export fetched) is in the audit
    //    log, against the handler; the manager was never refused.
    let denied: Vec<_> = app
        .store
        .audit_entries(&helpline::staff::audit::Query {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit log")
        .into_iter()
        .filter(|e| e.action == "access.denied")
        .collect();
    assert_eq!(denied.len(), 3, "{denied:?}");
    for e in &denied {
        assert_eq!(e.actor, HANDLER, "{e:?}");
        assert_eq!(e.detail.as_deref(), Some("statistics"), "{e:?}");
    }
}
