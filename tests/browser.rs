//! The handlers' dashboard in a real browser: headless Chromium, driven through
//! chromedriver (WebDriver) with fantoccini. The same story as tests/dashboard.rs, but
//! with the browser doing the work — cookies, forms, redirects, the Content-Security-Policy
//! and the live queue's script (assets/app.js, server-sent events) — instead of reqwest.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`;
//! elsewhere point `HELPLINE_TEST_CHROMIUM` and `HELPLINE_TEST_CHROMEDRIVER` at them).
//! Without them the test skips with a printed reason, unless `HELPLINE_REQUIRE_ALL_TESTS=1`
//! (as in CI), where that is a failure.

mod support;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_signs_in_with_a_second_factor_and_works_a_call_back_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_or_skip() else {
        return;
    };
    let app = spawn_app_with(NOW, &[]).await;
    let driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, &chromium).await;

    // The story runs as a task of its own so that, whatever happens in it (a panic, or
    // getting stuck), the browser session is closed and chromedriver killed afterwards.
    let story = tokio::spawn(story(client.clone(), app));
    let outcome = tokio::time::timeout(STORY_LIMIT, story).await;
    let failed = !matches!(outcome, Ok(Ok(())));
    if failed {
        if let Ok(url) = client.current_url().await {
            eprintln!("the browser was at {url}");
        }
        if let Ok(png) = client.screenshot().await {
            let path = std::env::temp_dir().join(format!(
                "helpline-browser-failure-{}.png",
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

async fn story(c: Client, app: TestApp) {
    // http://127.0.0.1:<port> works: Chromium treats the loopback address as a secure
    // context and keeps the `__Host-` cookie (Secure) over plain http there.
    let base = format!("http://127.0.0.1:{}", app.addr.port());

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
    fill(&c, "#email", EMAIL).await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form[action='/login'] button[type=submit]").await;
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
