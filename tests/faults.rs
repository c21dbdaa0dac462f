//! Faults, against real `helpline serve` processes (issue 7). Each test starts the binary as a
//! child process and drives it over HTTP the way Twilio does, every webhook signed, with many
//! callers at once walking the journey of a call-back request (call, 2, 1, 3, 1, a message).
//!
//! - **kill -9 mid-burst** (on the suite's backend: `HELPLINE_TEST_BACKEND`): the process is
//!   killed while callers are mid-journey, restarted on the same database and outbox
//!   directory, and every reference a caller heard before the kill is then stored, under that
//!   reference, once. Again with the database refusing every enquiry, so that every spoken
//!   reference was only in the outbox file when the process died.
//! - **SQLite locked mid-surge** (another connection holds `BEGIN EXCLUSIVE`) and
//!   **PostgreSQL down mid-surge** (the service reaches PostgreSQL through a TCP proxy in this
//!   test, which drops every connection and refuses new ones): callers part-way through and
//!   callers ringing meanwhile hear every answer and a reference for their request; `/readyz`
//!   and `/metrics` count the outbox; when the database is back every reference spoken is
//!   stored exactly once.
//! - **Enquiry writes failing mid-surge** (a trigger refuses them; on the suite's backend):
//!   the same surge and checks, as the control for the two above.
//!
//! No assertion is about speed: waits are polls with generous deadlines.
#![cfg(unix)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helpline::store::Store;
use support::db::TestDb;
use support::{form_body, sign, PUBLIC, TOKEN};

/// How long any one webhook may take before the caller counts as hearing nothing. Far above
/// anything expected (Twilio itself gives up at 15 s): a bound on the test, not a target.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// How long to wait for the outbox to be replayed once the database is back (it is tried
/// every second here).
const REPLAYED_WITHIN: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// The service as a process

/// A running `helpline serve`, killed (SIGKILL) when dropped.
struct Serve {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

impl Serve {
    /// Starts `helpline serve` on `database_url`, keeping call-back requests the database
    /// refuses in `outbox` (replayed every second), logging (warnings up) to `log`.
    async fn start(database_url: &str, outbox: &Path, log: PathBuf) -> Serve {
        let addr = free_port();
        let log_file = std::fs::File::create(&log).expect("a log file for serve");
        let mut command = Command::new(env!("CARGO_BIN_EXE_helpline"));
        // Only the settings below: nothing from the environment the tests run in.
        for (key, _) in std::env::vars() {
            if key.starts_with("HELPLINE_")
                || key.starts_with("TWILIO_")
                || key.starts_with("DATABASE_")
            {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("serve")
            .env("HELPLINE_LISTEN", addr.to_string())
            .env("DATABASE_URL", database_url)
            .envs(support::db::data_key_env(database_url))
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .env("HELPLINE_PUBLIC_URL", PUBLIC)
            .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
            .env("HELPLINE_OUTBOX_DIR", outbox)
            .env("HELPLINE_OUTBOX_REPLAY_SECONDS", "1")
            .env("RUST_LOG", "warn,sqlx=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("helpline serve starts");
        let mut serve = Serve { child, addr, log };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = serve.child.try_wait().expect("child status") {
                panic!("helpline serve exited ({status}):\n{}", serve.log_tail());
            }
            if let Ok(r) = client.get(format!("http://{addr}/healthz")).send().await {
                if r.status() == 200 {
                    return serve;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "helpline serve on {addr} did not become healthy:\n{}",
            serve.log_tail()
        );
    }

    /// `kill -9`, and proof that the signal is what ended it.
    fn kill_9(&mut self) {
        use std::os::unix::process::ExitStatusExt;
        self.child.kill().expect("SIGKILL sent");
        let status = self.child.wait().expect("the killed process reaped");
        assert_eq!(
            status.signal(),
            Some(9),
            "serve died of SIGKILL, not of something else first ({status}):\n{}",
            self.log_tail()
        );
    }

    /// The end of the service's log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!(
            "--- {} (last {} lines)\n{}",
            self.log.display(),
            lines.len() - from,
            lines[from..].join("\n")
        )
    }

    fn line(&self) -> Line {
        Line {
            client: reqwest::Client::builder()
                .timeout(ANSWER_WITHIN)
                .build()
                .expect("HTTP client"),
            addr: self.addr,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service's address, as Twilio reaches it.
#[derive(Clone)]
struct Line {
    client: reqwest::Client,
    addr: SocketAddr,
}

impl Line {
    /// `/readyz`: its HTTP status and body.
    async fn readyz(&self) -> (u16, serde_json::Value) {
        let r = self
            .client
            .get(format!("http://{}/readyz", self.addr))
            .send()
            .await
            .expect("GET /readyz answered");
        let code = r.status().as_u16();
        (code, r.json().await.expect("/readyz is JSON"))
    }

    /// `helpline_outbox_records` from `/metrics`.
    async fn outbox_gauge(&self) -> i64 {
        let text = self
            .client
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
            .expect("GET /metrics answered")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix("helpline_outbox_records "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no helpline_outbox_records gauge in:\n{text}"))
    }
}

// ---------------------------------------------------------------------------------------
// Callers

/// One thing a caller does.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Rings the line (`/twilio/voice`).
    Ring,
    /// Presses keys at the question being asked.
    Press(&'static str),
    /// Leaves a message at the recording prompt.
    Message,
}

/// A request for a call back: main menu 2, use this number (1), the Royal Liverpool (3), a
/// data concern (1), then a message; the reference is spoken after the message.
const JOURNEY: [Step; 6] = [
    Step::Ring,
    Step::Press("2"),
    Step::Press("1"),
    Step::Press("3"),
    Step::Press("1"),
    Step::Message,
];

/// Steps taken before a fault starts, for callers the fault catches part-way.
const BEFORE_FAULT: usize = 3;

/// What the caller is being asked for after the latest answer.
#[derive(Debug, Clone)]
enum Next {
    Gather(String),
    Record(String),
    Ended,
}

/// Why a caller's journey stopped.
#[derive(Debug)]
enum Fault {
    /// No answer at all: connection refused or reset, or nothing within [`ANSWER_WITHIN`].
    NoAnswer(String),
    /// An answer no caller should get: not 200, not TwiML, silence, or the call ending (or
    /// going somewhere else) before a reference was given.
    Wrong(String),
}

/// A caller who heard a reference.
#[derive(Debug, Clone)]
struct Heard {
    call_sid: String,
    /// As spoken: "4 8 2, 9 1 5".
    reference: String,
}

/// A simulated caller (Twilio's side of one call).
struct Caller {
    line: Line,
    call_sid: String,
    from: String,
    next: Next,
    /// What was said in the latest answer.
    last: String,
    /// Answers received (the call's first step included).
    answered: usize,
}

/// Numbers in Ofcom's drama range (07700 900000 to 900999), one per caller, so that no
/// caller reaches `HELPLINE_MAX_OPEN_PER_NUMBER` and has their request folded.
fn number(n: usize) -> String {
    assert!(n < 1000, "out of test numbers");
    format!("+447700900{n:03}")
}

impl Caller {
    fn new(line: &Line, n: usize) -> Caller {
        Caller {
            line: line.clone(),
            call_sid: format!("CA{}", uuid::Uuid::new_v4().simple()),
            from: number(n),
            next: Next::Ended,
            last: String::new(),
            answered: 0,
        }
    }

    fn params(&self, extra: Vec<(&str, String)>) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", self.call_sid.as_str()),
            ("CallStatus", "in-progress"),
            ("Direction", "inbound"),
            ("From", self.from.as_str()),
            ("To", "+441517063602"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        p.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        p
    }

    /// Walks `steps`; the first fault ends the walk.
    async fn walk(&mut self, steps: &[Step]) -> Result<(), Failure> {
        for step in steps {
            if let Err(fault) = self.step(*step).await {
                return Err(Failure {
                    call_sid: self.call_sid.clone(),
                    step: *step,
                    fault,
                });
            }
        }
        Ok(())
    }

    async fn step(&mut self, step: Step) -> Result<(), Fault> {
        let (url, extra) = match (step, &self.next) {
            (Step::Ring, _) => (format!("{PUBLIC}/twilio/voice"), vec![]),
            (Step::Press(keys), Next::Gather(action)) => (
                action.clone(),
                vec![
                    ("Digits", keys.to_string()),
                    ("FinishedOnKey", String::new()),
                ],
            ),
            (Step::Message, Next::Record(action)) => (
                action.clone(),
                vec![
                    (
                        "RecordingUrl",
                        "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE0123".into(),
                    ),
                    ("RecordingDuration", "9".into()),
                    ("RecordingSid", "RE0123".into()),
                    ("Digits", "#".into()),
                ],
            ),
            (_, next) => {
                return Err(Fault::Wrong(format!(
                    "the caller cannot go on (waiting for {next:?}); they last heard: {:?}",
                    self.last
                )))
            }
        };
        let mut says = Vec::new();
        let mut url = url;
        let mut extra = extra;
        // An answer may redirect (at most a few times) before it asks or ends.
        for _ in 0..5 {
            let twiml = self.webhook(&url, std::mem::take(&mut extra)).await?;
            let (said, next, redirect) = read_twiml(&twiml).map_err(Fault::Wrong)?;
            says.extend(said);
            self.next = next;
            match redirect {
                Some(to) => url = to,
                None => {
                    self.answered += 1;
                    self.last = says.join(" ");
                    if says.is_empty() {
                        return Err(Fault::Wrong(format!("silence: {twiml}")));
                    }
                    // Only the message ends the call (after the reference).
                    if matches!(self.next, Next::Ended) && !matches!(step, Step::Message) {
                        return Err(Fault::Wrong(format!(
                            "the call ended before the request was made; heard: {:?}",
                            self.last
                        )));
                    }
                    return Ok(());
                }
            }
        }
        Err(Fault::Wrong("redirected round and round".into()))
    }

    /// One signed webhook; the TwiML of a 200 `text/xml` answer.
    async fn webhook(&self, public_url: &str, extra: Vec<(&str, String)>) -> Result<String, Fault> {
        let params = self.params(extra);
        let path = public_url.strip_prefix(PUBLIC).ok_or_else(|| {
            Fault::Wrong(format!(
                "an action URL outside the public base: {public_url}"
            ))
        })?;
        let response = self
            .line
            .client
            .post(format!("http://{}{path}", self.line.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sign(public_url, &params))
            .body(form_body(&params))
            .send()
            .await
            .map_err(|e| Fault::NoAnswer(format!("{e:?}")))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response
            .text()
            .await
            .map_err(|e| Fault::NoAnswer(format!("body: {e:?}")))?;
        if status != 200 || !content_type.starts_with("text/xml") {
            return Err(Fault::Wrong(format!(
                "HTTP {status} ({content_type}): {body}"
            )));
        }
        Ok(body)
    }

    /// The reference in the last answer, as spoken, if one was given (twice, the same).
    fn reference(&self) -> Option<String> {
        let first = self
            .last
            .split("Your reference number is ")
            .nth(1)?
            .split('.')
            .next()?;
        let again = self
            .last
            .split("I'll say that again: ")
            .nth(1)?
            .split('.')
            .next()?;
        (first == again && first.chars().filter(char::is_ascii_digit).count() == 6)
            .then(|| first.to_string())
    }

    /// After the last step: the reference heard, with the call over.
    fn heard(&self) -> Result<Heard, Failure> {
        match (self.reference(), &self.next) {
            (Some(reference), Next::Ended) => Ok(Heard {
                call_sid: self.call_sid.clone(),
                reference,
            }),
            _ => Err(Failure {
                call_sid: self.call_sid.clone(),
                step: Step::Message,
                fault: Fault::Wrong(format!(
                    "no reference at the end of the request (then {:?}); heard: {:?}",
                    self.next, self.last
                )),
            }),
        }
    }

    /// Walks `steps`, the journey's last: the reference heard.
    async fn finish(&mut self, steps: &[Step]) -> Result<Heard, Failure> {
        self.walk(steps).await?;
        self.heard()
    }
}

/// A caller's journey that went wrong: who, where, and how.
#[derive(Debug)]
struct Failure {
    call_sid: String,
    step: Step,
    fault: Fault,
}

/// Failures counted by step and what went wrong, with one example of each in full.
fn summary(failures: &[&Failure]) -> String {
    let mut kinds: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for f in failures {
        let (kind, what) = match &f.fault {
            Fault::NoAnswer(m) => ("no answer", m),
            Fault::Wrong(m) => ("wrong answer", m),
        };
        let short: String = what.chars().take(60).collect();
        let key = format!("at {:?}, {kind}: {short}", f.step);
        kinds
            .entry(key)
            .or_insert_with(|| (0, format!("{}: {what}", f.call_sid)))
            .0 += 1;
    }
    kinds
        .into_iter()
        .map(|(key, (n, example))| format!("  {n} x {key}...\n      e.g. {example}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a TwiML answer says, what it waits for, and where it redirects (if it does before
/// waiting for anything).
fn read_twiml(twiml: &str) -> Result<(Vec<String>, Next, Option<String>), String> {
    let doc = roxmltree::Document::parse(twiml).map_err(|e| format!("not XML ({e}): {twiml}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "Response" {
        return Err(format!("not a <Response>: {twiml}"));
    }
    let mut says = Vec::new();
    let say = |n: roxmltree::Node, says: &mut Vec<String>| -> Result<(), String> {
        let text = n.text().unwrap_or("").trim().to_string();
        if text.is_empty() {
            return Err(format!("an empty <Say>: {twiml}"));
        }
        says.push(text);
        Ok(())
    };
    for verb in root.children().filter(|n| n.is_element()) {
        let action = || {
            verb.attribute("action")
                .map(str::to_string)
                .ok_or_else(|| format!("<{}> without an action: {twiml}", verb.tag_name().name()))
        };
        match verb.tag_name().name() {
            "Say" => say(verb, &mut says)?,
            "Play" | "Pause" => {}
            "Gather" => {
                for s in verb.children().filter(|c| c.tag_name().name() == "Say") {
                    say(s, &mut says)?;
                }
                return Ok((says, Next::Gather(action()?), None));
            }
            "Record" => return Ok((says, Next::Record(action()?), None)),
            "Redirect" => {
                let to = verb.text().unwrap_or("").trim().to_string();
                return Ok((says, Next::Ended, Some(to)));
            }
            "Hangup" => return Ok((says, Next::Ended, None)),
            other => return Err(format!("<{other}> in a call-back request: {twiml}")),
        }
    }
    Ok((says, Next::Ended, None))
}

// ---------------------------------------------------------------------------------------
// What the database holds

/// Every reference heard is stored for its call, as heard, once; nothing is stored for a
/// call not made here; returns how many enquiries there are.
async fn check_stored(store: &dyn Store, heard: &[Heard], made: &[String]) -> usize {
    let stored = store.list_enquiries().await.expect("enquiries listed");
    let mut by_call: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in &stored {
        by_call
            .entry(e.call_sid.as_str())
            .or_default()
            .push(e.reference.spoken());
    }
    for (sid, refs) in &by_call {
        assert_eq!(
            refs.len(),
            1,
            "call {sid} has {} enquiries: {refs:?}",
            refs.len()
        );
        assert!(
            made.iter().any(|m| m == sid),
            "an enquiry for a call nobody made: {sid}"
        );
    }
    let lost: Vec<&Heard> = heard
        .iter()
        .filter(|h| {
            by_call
                .get(h.call_sid.as_str())
                .is_none_or(|r| r[0] != h.reference)
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} spoken references are not stored as spoken (stored: {}): {lost:?}",
        lost.len(),
        heard.len(),
        stored.len()
    );
    stored.len()
}

/// Polls until every reference heard is stored and the instance's outbox is empty.
async fn wait_until_replayed(store: &dyn Store, line: &Line, heard: &[Heard]) {
    let deadline = Instant::now() + REPLAYED_WITHIN;
    loop {
        let stored = store.list_enquiries().await.expect("enquiries listed");
        let all = heard
            .iter()
            .all(|h| stored.iter().any(|e| e.call_sid == h.call_sid));
        let (_, ready) = line.readyz().await;
        if all && ready["outbox"]["records"] == 0 {
            return;
        }
        if Instant::now() > deadline {
            let missing = heard
                .iter()
                .filter(|h| !stored.iter().any(|e| e.call_sid == h.call_sid))
                .count();
            panic!(
                "not replayed within {REPLAYED_WITHIN:?}: {missing} of {} spoken references not stored; /readyz {ready}",
                heard.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The records in every outbox file in `dir`.
fn outbox_records(dir: &Path) -> Vec<helpline::enquiries::outbox::OutboxRecord> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|x| x == "jsonl") {
            records.extend(
                helpline::enquiries::outbox::read_records(&path).expect("a readable outbox"),
            );
        }
    }
    records
}

/// Makes the database refuse every new enquiry (as a write failing would) until
/// [`accept_enquiries`]; everything else works.
async fn refuse_enquiries(db: &TestDb) {
    if db.is_postgres() {
        let pool = sqlx::PgPool::connect(db.url()).await.expect("postgres");
        sqlx::raw_sql(
            "CREATE FUNCTION refuse_enquiry() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'enquiries refused by the test'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_enquiries BEFORE INSERT ON enquiries \
             FOR EACH ROW EXECUTE FUNCTION refuse_enquiry();",
        )
        .execute(&pool)
        .await
        .expect("trigger");
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(db.url()).await.expect("sqlite");
        sqlx::raw_sql(
            "CREATE TRIGGER refuse_enquiries BEFORE INSERT ON enquiries \
             BEGIN SELECT RAISE(ABORT, 'enquiries refused by the test'); END;",
        )
        .execute(&pool)
        .await
        .expect("trigger");
        pool.close().await;
    }
}

async fn accept_enquiries(db: &TestDb) {
    if db.is_postgres() {
        let pool = sqlx::PgPool::connect(db.url()).await.expect("postgres");
        sqlx::raw_sql("DROP TRIGGER refuse_enquiries ON enquiries")
            .execute(&pool)
            .await
            .expect("drop trigger");
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(db.url()).await.expect("sqlite");
        sqlx::raw_sql("DROP TRIGGER refuse_enquiries")
            .execute(&pool)
            .await
            .expect("drop trigger");
        pool.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// kill -9 mid-burst

/// Callers ringing at once, each walking one journey after another until the line dies.
const WORKERS: usize = 32;
/// References spoken before the kill: more than one journey per caller, so that (with their
/// staggered starts) the callers are at different steps when it comes.
const KILL_AFTER: usize = 48;

#[derive(Default)]
struct Burst {
    /// References heard (all before the kill: nothing answers after it).
    heard: Vec<Heard>,
    /// Every call made.
    made: Vec<String>,
    /// Journeys cut off by the kill after at least one answer.
    interrupted: usize,
    /// Journeys that got no answer at all (first ring after the kill).
    unanswered: usize,
    /// Answers no caller should get.
    wrong: Vec<Failure>,
}

/// [`WORKERS`] callers walk journeys back to back; once [`KILL_AFTER`] references have been
/// spoken, `kill -9`. Returns when every caller has stopped.
async fn burst_then_kill(serve: &mut Serve) -> Burst {
    let line = serve.line();
    let burst = Arc::new(Mutex::new(Burst::default()));
    let numbers = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (line, burst, numbers) = (line.clone(), burst.clone(), numbers.clone());
        workers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3 * w as u64)).await;
            loop {
                let mut caller = Caller::new(&line, numbers.fetch_add(1, Ordering::Relaxed));
                burst.lock().unwrap().made.push(caller.call_sid.clone());
                let result = caller.finish(&JOURNEY).await;
                let mut b = burst.lock().unwrap();
                match result {
                    Ok(heard) => b.heard.push(heard),
                    Err(Failure {
                        fault: Fault::NoAnswer(_),
                        ..
                    }) => {
                        if caller.answered > 0 {
                            b.interrupted += 1;
                        } else {
                            b.unanswered += 1;
                        }
                        return;
                    }
                    Err(wrong) => {
                        b.wrong.push(wrong);
                        return;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let spoken = burst.lock().unwrap().heard.len();
        if spoken >= KILL_AFTER
            || workers.iter().all(|w| w.is_finished())
            || Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    serve.kill_9();
    for w in workers {
        w.await.expect("caller task");
    }
    Arc::try_unwrap(burst)
        .unwrap_or_else(|_| panic!("callers still running"))
        .into_inner()
        .unwrap()
}

/// The burst was real: references were spoken, and the kill cut journeys off part-way.
fn assert_killed_mid_burst(b: &Burst, serve: &Serve) {
    assert!(
        b.wrong.is_empty(),
        "before the kill every answer is valid TwiML going on with the journey:\n{}\n{}",
        summary(&b.wrong.iter().collect::<Vec<_>>()),
        serve.log_tail()
    );
    assert!(
        b.heard.len() >= KILL_AFTER,
        "{} references spoken before the kill, expected {KILL_AFTER}",
        b.heard.len()
    );
    assert!(
        b.interrupted >= 1,
        "the kill landed mid-burst: some journey lost its connection after being answered \
         (interrupted {}, never answered {})",
        b.interrupted,
        b.unanswered
    );
    assert_eq!(
        b.interrupted + b.unanswered,
        WORKERS,
        "every caller was stopped by the kill, none by anything else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_spoken_reference() {
    let Some(db) = TestDb::for_suite().await else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let outbox = scratch.path().join("outbox");
    let mut serve = Serve::start(db.url(), &outbox, scratch.path().join("serve-1.log")).await;

    let burst = burst_then_kill(&mut serve).await;
    assert_killed_mid_burst(&burst, &serve);

    // Restarted on the same database and outbox directory.
    let serve = Serve::start(db.url(), &outbox, scratch.path().join("serve-2.log")).await;
    let line = serve.line();
    let store = helpline::store::connect(db.url()).await.expect("store");
    wait_until_replayed(store.as_ref(), &line, &burst.heard).await;
    let stored = check_stored(store.as_ref(), &burst.heard, &burst.made).await;
    assert!(
        outbox_records(&outbox).is_empty(),
        "no outbox records left after the replay"
    );
    eprintln!(
        "kill -9: {} references spoken before the kill, {} enquiries stored ({} journeys cut off mid-way, {} unanswered)",
        burst.heard.len(),
        stored,
        burst.interrupted,
        burst.unanswered
    );

    // The restarted instance serves a whole request.
    let mut caller = Caller::new(&line, 999);
    let heard = caller
        .finish(&JOURNEY)
        .await
        .unwrap_or_else(|f| panic!("after the restart: {f:?}\n{}", serve.log_tail()));
    let mut made = burst.made.clone();
    made.push(heard.call_sid.clone());
    check_stored(store.as_ref(), &[heard], &made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_requests_only_in_the_outbox_loses_none() {
    let Some(db) = TestDb::for_suite().await else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let outbox = scratch.path().join("outbox");
    let mut serve = Serve::start(db.url(), &outbox, scratch.path().join("serve-1.log")).await;
    // Every enquiry write fails: each reference spoken comes from the outbox.
    refuse_enquiries(&db).await;

    let burst = burst_then_kill(&mut serve).await;
    assert_killed_mid_burst(&burst, &serve);

    // The dead instance's file holds every reference it spoke (written before speaking).
    let kept = outbox_records(&outbox);
    let missing: Vec<&Heard> = burst
        .heard
        .iter()
        .filter(|h| {
            !kept
                .iter()
                .any(|r| r.call_sid == h.call_sid && r.reference.spoken() == h.reference)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "spoken but not in the outbox file at the kill: {missing:?}"
    );
    let store = helpline::store::connect(db.url()).await.expect("store");
    assert!(
        store.list_enquiries().await.unwrap().is_empty(),
        "nothing reached the database while it refused enquiries"
    );

    // The database takes enquiries again; a new instance adopts the dead one's file.
    accept_enquiries(&db).await;
    let serve = Serve::start(db.url(), &outbox, scratch.path().join("serve-2.log")).await;
    wait_until_replayed(store.as_ref(), &serve.line(), &burst.heard).await;
    let stored = check_stored(store.as_ref(), &burst.heard, &burst.made).await;
    assert_eq!(
        stored,
        kept.len(),
        "exactly the records in the dead instance's file are stored"
    );
    let deadline = Instant::now() + REPLAYED_WITHIN;
    while !outbox_records(&outbox).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the adopted file is removed once stored"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "kill -9 with the outbox: {} references spoken, {} records in the dead instance's file, all stored",
        burst.heard.len(),
        kept.len()
    );
}

// ---------------------------------------------------------------------------------------
// The database locked or down mid-surge

/// Callers who finish before the fault (stored at once).
const EARLY: usize = 4;
/// Callers part-way through when the fault starts ([`BEFORE_FAULT`] steps taken).
const CAUGHT: usize = 16;
/// Callers who ring while the database is away.
const FRESH: usize = 8;

type Outcome = Result<Heard, Failure>;

/// A surge of callers around a fault: [`Surge::before`] runs until the fault may start,
/// [`Surge::during`] while it lasts.
struct Surge {
    line: Line,
    early: Vec<Heard>,
    caught: Vec<tokio::task::JoinHandle<Outcome>>,
    go: tokio::sync::watch::Sender<bool>,
}

impl Surge {
    /// [`EARLY`] callers make their request; [`CAUGHT`] callers take [`BEFORE_FAULT`] steps
    /// and wait. All of it with the database working, so any fault here fails the test.
    async fn before(serve: &Serve) -> Surge {
        let line = serve.line();
        let mut early = Vec::new();
        for n in 0..EARLY {
            let line = line.clone();
            early.push(tokio::spawn(async move {
                Caller::new(&line, n).finish(&JOURNEY).await
            }));
        }
        let (go, _) = tokio::sync::watch::channel(false);
        let arrived = Arc::new(tokio::sync::Barrier::new(CAUGHT + 1));
        let (first_steps, mut part_way) = tokio::sync::mpsc::unbounded_channel();
        let mut caught = Vec::new();
        for n in 0..CAUGHT {
            let (line, arrived, mut go) = (line.clone(), arrived.clone(), go.subscribe());
            let first_steps = first_steps.clone();
            caught.push(tokio::spawn(async move {
                let mut c = Caller::new(&line, EARLY + n);
                let first = c.walk(&JOURNEY[..BEFORE_FAULT]).await;
                let _ = first_steps.send(first.as_ref().err().map(|f| format!("{f:?}")));
                arrived.wait().await;
                go.wait_for(|go| *go).await.expect("the test says go");
                first?;
                c.finish(&JOURNEY[BEFORE_FAULT..]).await
            }));
        }
        let mut heard = Vec::new();
        for e in early {
            let h = e.await.expect("caller task");
            heard.push(
                h.unwrap_or_else(|f| panic!("before the fault: {f:?}\n{}", serve.log_tail())),
            );
        }
        arrived.wait().await;
        for _ in 0..CAUGHT {
            if let Some(Some(f)) = part_way.recv().await {
                panic!("before the fault: {f}\n{}", serve.log_tail());
            }
        }
        Surge {
            line,
            early: heard,
            caught,
            go,
        }
    }

    /// The caught callers carry on and [`FRESH`] callers ring; returns how each got on.
    async fn during(self) -> (Vec<Heard>, Vec<Outcome>) {
        self.go.send(true).expect("callers waiting");
        let mut fresh = Vec::new();
        for n in 0..FRESH {
            let line = self.line.clone();
            fresh.push(tokio::spawn(async move {
                Caller::new(&line, EARLY + CAUGHT + n)
                    .finish(&JOURNEY)
                    .await
            }));
        }
        let mut outcomes = Vec::new();
        for t in self.caught.into_iter().chain(fresh) {
            outcomes.push(t.await.expect("caller task"));
        }
        (self.early, outcomes)
    }
}

/// Every caller during the fault heard every answer and a reference.
fn assert_all_served(outcomes: &[Outcome], serve: &Serve) -> Vec<Heard> {
    let failed: Vec<&Failure> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} callers during the fault did not hear every answer and a reference:\n{}\n{}",
        failed.len(),
        outcomes.len(),
        summary(&failed),
        serve.log_tail()
    );
    outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().cloned())
        .collect()
}

/// What `/readyz` and `/metrics` say while the fault lasts.
struct Observed {
    code: u16,
    ready: serde_json::Value,
    gauge: i64,
}

/// Reads `/readyz` and `/metrics` and prints them with how the callers got on (the test's
/// output says what happened even when an assertion then fails).
async fn observe(fault: &str, line: &Line, outcomes: &[Outcome]) -> Observed {
    let (code, ready) = line.readyz().await;
    let gauge = line.outbox_gauge().await;
    eprintln!(
        "{fault}: {} of {} callers heard a reference; /readyz {code} {ready}; helpline_outbox_records {gauge}",
        outcomes.iter().filter(|o| o.is_ok()).count(),
        outcomes.len()
    );
    Observed { code, ready, gauge }
}

/// While the fault lasts, every request made during it waits in the outbox, on disk, and
/// `/readyz` and `/metrics` count them. (A request made before the fault may be there too:
/// one the database did not take within the webhook's budget, not yet replayed.)
fn assert_outbox_counted(seen: &Observed, outbox: &Path) {
    let waiting = CAUGHT + FRESH;
    let ready = &seen.ready;
    assert_ne!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["outbox"]["ok"], false, "{ready}");
    let records = ready["outbox"]["records"].as_u64().unwrap_or(0) as usize;
    assert!(
        (waiting..=EARLY + waiting).contains(&records),
        "every request made during the fault is in the outbox: {ready}"
    );
    assert_eq!(seen.gauge, records as i64, "the gauge counts the outbox");
    assert_eq!(
        outbox_records(outbox).len(),
        records,
        "the requests are on disk while the fault lasts"
    );
}

/// After the fault: every reference spoken (before and during) stored once, as spoken.
async fn assert_stored_once(
    db: &TestDb,
    line: &Line,
    early: &[Heard],
    during: &[Heard],
    outbox: &Path,
) {
    let store = helpline::store::connect(db.url()).await.expect("store");
    let heard: Vec<Heard> = early.iter().chain(during).cloned().collect();
    wait_until_replayed(store.as_ref(), line, &heard).await;
    let made: Vec<String> = heard.iter().map(|h| h.call_sid.clone()).collect();
    let stored = check_stored(store.as_ref(), &heard, &made).await;
    assert_eq!(stored, EARLY + CAUGHT + FRESH, "one enquiry per caller");
    assert!(
        outbox_records(outbox).is_empty(),
        "the outbox file is emptied"
    );
    let (_, ready) = line.readyz().await;
    assert_eq!(ready["outbox"]["ok"], true, "{ready}");
    assert_eq!(line.outbox_gauge().await, 0);
}

/// The control for the two below, on the suite's backend: the same surge and checks, with
/// the database refusing only the enquiry writes (a trigger), a failure the outbox has
/// covered from the start. Shows that the surge and its checks can pass, so a failure of the
/// locked or down test is the service's, not the harness's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enquiry_writes_failing_mid_surge_callers_hear_every_answer_and_nothing_is_lost() {
    let Some(db) = TestDb::for_suite().await else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let outbox = scratch.path().join("outbox");
    let serve = Serve::start(db.url(), &outbox, scratch.path().join("serve.log")).await;
    let line = serve.line();

    let surge = Surge::before(&serve).await;
    refuse_enquiries(&db).await;
    let (early, outcomes) = surge.during().await;
    let seen = observe("enquiry writes failing", &line, &outcomes).await;
    let during = assert_all_served(&outcomes, &serve);
    assert_eq!(seen.code, 200, "{}", seen.ready);
    assert_eq!(seen.ready["status"], "degraded", "{}", seen.ready);
    assert_outbox_counted(&seen, &outbox);

    accept_enquiries(&db).await;
    assert_stored_once(&db, &line, &early, &during, &outbox).await;
}

/// Another connection holding SQLite's write lock (`BEGIN EXCLUSIVE`).
struct SqliteLock(sqlx::SqliteConnection);

impl SqliteLock {
    async fn take(url: &str) -> SqliteLock {
        use sqlx::Connection;
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .expect("sqlite URL")
            .busy_timeout(Duration::from_secs(60));
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("a second connection");
        sqlx::raw_sql("BEGIN EXCLUSIVE")
            .execute(&mut conn)
            .await
            .expect("the write lock");
        // The lock is real: another connection cannot start writing.
        let mut probe = sqlx::SqliteConnection::connect_with(&options.busy_timeout(Duration::ZERO))
            .await
            .expect("a probe connection");
        let refused = sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut probe).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("locked")),
            "the database is locked for writers: {refused:?}"
        );
        let _ = probe.close().await;
        SqliteLock(conn)
    }

    async fn release(mut self) {
        use sqlx::Connection;
        sqlx::raw_sql("COMMIT")
            .execute(&mut self.0)
            .await
            .expect("lock released");
        self.0.close().await.expect("closed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_mid_surge_callers_hear_every_answer_and_nothing_is_lost() {
    let db = TestDb::sqlite();
    let scratch = tempfile::tempdir().unwrap();
    let outbox = scratch.path().join("outbox");
    let serve = Serve::start(db.url(), &outbox, scratch.path().join("serve.log")).await;
    let line = serve.line();

    let surge = Surge::before(&serve).await;
    let lock = SqliteLock::take(db.url()).await;
    let (early, outcomes) = surge.during().await;
    let seen = observe("locked", &line, &outcomes).await;
    let during = assert_all_served(&outcomes, &serve);
    // Readable, so serving: degraded while requests wait (src/ops.rs).
    assert_eq!(seen.code, 200, "{}", seen.ready);
    assert_eq!(seen.ready["status"], "degraded", "{}", seen.ready);
    assert_outbox_counted(&seen, &outbox);

    lock.release().await;
    assert_stored_once(&db, &line, &early, &during, &outbox).await;
    // Logged to a file: plain text, no terminal colour codes.
    let log = std::fs::read_to_string(scratch.path().join("serve.log")).unwrap();
    assert!(log.contains(" WARN "), "the wait was logged: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "no escape codes in a log file: {log}"
    );
}

/// A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones refused)
/// and restored.
struct Proxy {
    addr: SocketAddr,
    upstream: String,
    accepted: Arc<AtomicUsize>,
    conns: Arc<tokio::sync::Mutex<tokio::task::JoinSet<()>>>,
    acceptor: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy listens");
        let mut proxy = Proxy {
            addr: listener.local_addr().expect("proxy address"),
            upstream,
            accepted: Arc::default(),
            conns: Arc::default(),
            acceptor: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (upstream, accepted, conns) = (
            self.upstream.clone(),
            self.accepted.clone(),
            self.conns.clone(),
        );
        self.acceptor = Some(tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let upstream = upstream.clone();
                conns.lock().await.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// PostgreSQL goes away: the listener closes (new connections refused) and every
    /// connection through the proxy is dropped.
    async fn cut(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
            let _ = acceptor.await;
        }
        let mut conns = self.conns.lock().await;
        conns.abort_all();
        while conns.join_next().await.is_some() {}
        assert!(
            tokio::net::TcpStream::connect(self.addr).await.is_err(),
            "the proxy refuses connections while cut"
        );
    }

    /// PostgreSQL is back, on the same address.
    async fn restore(&mut self) {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(self.addr).expect("the proxy's address again");
        self.serve(socket.listen(128).expect("listen"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_mid_surge_callers_hear_every_answer_and_nothing_is_lost() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let mut url = reqwest::Url::parse(db.url()).expect("a PostgreSQL URL");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("a host"),
        url.port().unwrap_or(5432)
    );
    let mut proxy = Proxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(proxy.addr.port())).expect("port");
    let scratch = tempfile::tempdir().unwrap();
    let outbox = scratch.path().join("outbox");
    let serve = Serve::start(url.as_str(), &outbox, scratch.path().join("serve.log")).await;
    let line = serve.line();

    let surge = Surge::before(&serve).await;
    assert!(
        proxy.accepted.load(Ordering::Relaxed) > 0,
        "the service reaches PostgreSQL through the proxy"
    );
    proxy.cut().await;
    let (early, outcomes) = surge.during().await;
    let seen = observe("down", &line, &outcomes).await;
    let during = assert_all_served(&outcomes, &serve);
    assert_eq!(seen.ready["database"]["ok"], false, "{}", seen.ready);
    // Still serving callers (the outbox has room): kept in the load balancer, degraded.
    assert_eq!(seen.code, 200, "{}", seen.ready);
    assert_eq!(seen.ready["status"], "degraded", "{}", seen.ready);
    assert_outbox_counted(&seen, &outbox);

    proxy.restore().await;
    assert_stored_once(&db, &line, &early, &during, &outbox).await;
}
