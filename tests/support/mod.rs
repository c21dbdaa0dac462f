//! A fake Twilio for integration tests: starts the real service on a free port with a
//! fixed clock and a throwaway SQLite file, then plays calls the way Twilio does —
//! signing every request, following <Gather action>, <Redirect>, <Record action> and
//! <Enqueue waitUrl/action>, and collecting what the caller hears.
#![allow(dead_code)]

pub mod db;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use helpline::app::App;
use helpline::clock::FixedClock;
use helpline::config::Config;
use helpline::store::Store;

pub const TOKEN: &str = "test-auth-token";
/// The URL Twilio is configured with; the service sits behind it on 127.0.0.1.
pub const PUBLIC: &str = "https://helpline.example.nhs.uk";

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    /// `/metrics` when it has its own listener (HELPLINE_METRICS_LISTEN).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// When set, requests go to these addresses in turn (several instances behind one URL).
    pub alternate: Vec<std::net::SocketAddr>,
    turn: std::sync::atomic::AtomicUsize,
    pub clock: FixedClock,
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    pub db: db::TestDb,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("test instant")
        .with_timezone(&Utc)
}

/// The service at a chosen instant (RFC 3339) on the suite's backend (SQLite, or PostgreSQL
/// with `HELPLINE_TEST_BACKEND=postgres`), with the bank-holiday feed off: no test reaches
/// the internet.
pub async fn spawn_app(when: &str) -> TestApp {
    spawn_app_with(when, &[]).await
}

/// The same with extra settings (they win over the defaults).
pub async fn spawn_app_with(when: &str, extra: &[(&str, &str)]) -> TestApp {
    let db = db::TestDb::for_suite()
        .await
        .expect("a test database (see tests/support/db.rs)");
    spawn_app_on(when, db, extra).await
}

/// The service over a given test database.
pub async fn spawn_app_on(when: &str, db: db::TestDb, extra: &[(&str, &str)]) -> TestApp {
    let url = db.url().to_string();
    let key_env = db.data_key_env();
    let mut pairs = vec![
        ("HELPLINE_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", url.as_str()),
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("HELPLINE_PUBLIC_URL", PUBLIC),
        ("HELPLINE_BANK_HOLIDAYS_URL", "off"),
        // Tests read the database right after each webhook: wait for every write (a slow
        // debug build on a busy machine must not answer from memory first).
        ("HELPLINE_WEBHOOK_DB_BUDGET_MS", "10000"),
    ];
    // The keys the second connection below (`store::connect`) uses too.
    pairs.extend(key_env.iter().map(|(k, v)| (*k, v.as_str())));
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        pairs.push((k, v));
    }
    let config = Config::from_pairs(&pairs).expect("config");
    let clock = FixedClock::new(at(when));
    let app = App::build(&config, Arc::new(clock.clone()), false)
        .await
        .expect("app builds");
    let addr = app.local_addr().expect("addr");
    let metrics_addr = app.metrics_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    // A second connection to the same database, to check what was stored.
    let store = helpline::store::connect(&url).await.expect("store");
    TestApp {
        addr,
        metrics_addr,
        alternate: Vec::new(),
        turn: Default::default(),
        clock,
        store,
        client: reqwest::Client::new(),
        db,
        _shutdown: tx,
    }
}

/// A log sink for tests that read what the service logged.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

pub fn sign(url: &str, params: &[(String, String)]) -> String {
    helpline::twilio::signature::compute(TOKEN.as_bytes(), url, params)
}

pub fn form_body(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// 50 handlers on two instances (`a`, `b`: separate pools) race to claim 10 new
/// enquiries: returns who won each (asserting nobody won one twice).
pub async fn fifty_claims_for_ten(
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
) -> std::collections::BTreeMap<String, String> {
    use helpline::enquiries::{Category, NewEnquiry, Trust};
    let created = at("2026-11-24T10:05:00Z");
    for i in 0..10 {
        a.create_enquiry(&NewEnquiry {
            call_sid: format!("CA-CLAIM-{i}"),
            callback_number: helpline::phone::UkNumber::parse("07700900123").expect("number"),
            trust: Trust::AlderHey,
            category: Category::DataConcern,
            recording: None,
            created_at: created + chrono::Duration::seconds(i),
            callback_due: created.date_naive(),
            source: helpline::enquiries::Source::CallbackRequest,
            waiting_since: created + chrono::Duration::seconds(i),
        })
        .await
        .expect("enquiry");
    }
    let mut tasks = Vec::new();
    for h in 0..50 {
        let s = if h % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let who = format!("handler-{h}");
            let now = at("2026-11-24T11:00:00Z");
            s.claim_next_enquiry(
                &who,
                now,
                now - chrono::Duration::minutes(20),
                now.date_naive(),
            )
            .await
            .map(|e| e.map(|e| (e.id, who)))
        }));
    }
    let mut won = std::collections::BTreeMap::new();
    for t in tasks {
        if let Some((id, who)) = t.await.expect("task").expect("claim") {
            assert!(
                won.insert(id, who).is_none(),
                "an enquiry was claimed twice"
            );
        }
    }
    won
}

/// A raw HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl TestApp {
    /// Instances already running elsewhere (e.g. `helpline serve` processes) on `db`,
    /// served in turn, like a load balancer.
    pub async fn remote(addrs: Vec<std::net::SocketAddr>, db: db::TestDb) -> TestApp {
        let store = helpline::store::connect(db.url()).await.expect("store");
        TestApp {
            addr: addrs[0],
            metrics_addr: None,
            alternate: addrs,
            turn: Default::default(),
            clock: FixedClock::new(Utc::now()),
            store,
            client: reqwest::Client::new(),
            db,
            _shutdown: tokio::sync::oneshot::channel().0,
        }
    }

    /// Maps a public URL (as Twilio would call it) to this test server (or the next
    /// instance in turn).
    pub fn local(&self, public_url: &str) -> String {
        let path = public_url
            .strip_prefix(PUBLIC)
            .unwrap_or_else(|| panic!("URL outside the public base: {public_url}"));
        let addr = if self.alternate.is_empty() {
            self.addr
        } else {
            let n = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.alternate[n % self.alternate.len()]
        };
        format!("http://{addr}{path}")
    }

    /// POSTs a form as Twilio does: signed for the public URL.
    /// The Prometheus text from `/metrics` (on the main listener).
    pub async fn metrics(&self) -> String {
        let res = self
            .client
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
            .expect("GET /metrics");
        res.text().await.expect("metrics text")
    }

    pub async fn post_signed(&self, public_url: &str, params: &[(String, String)]) -> Answer {
        let sig = sign(public_url, params);
        self.post_raw(public_url, form_body(params), Some(&sig), &[])
            .await
    }

    pub async fn post_raw(
        &self,
        public_url: &str,
        body: String,
        signature: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.post_bytes(
            public_url,
            body.into_bytes(),
            Some("application/x-www-form-urlencoded"),
            signature,
            headers,
        )
        .await
    }

    /// A POST with any body bytes, any (or no) content type, signature and headers.
    pub async fn post_bytes(
        &self,
        public_url: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        signature: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.client.post(self.local(public_url)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(s) = signature {
            req = req.header("x-twilio-signature", s);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp.text().await.expect("body");
        Answer {
            status,
            content_type,
            body,
        }
    }

    /// A new inbound call from `from`.
    pub async fn call_from(&self, from: &str) -> Call<'_> {
        let sid = format!("CA{}", uuid_like());
        let mut call = Call {
            app: self,
            sid,
            from: from.to_string(),
            state: State::Ended,
            heard: Vec::new(),
            turn: Vec::new(),
            last_request: None,
            last_twiml: String::new(),
        };
        call.request(&format!("{PUBLIC}/twilio/voice"), vec![])
            .await;
        call
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "{:032x}",
        N.fetch_add(1, Ordering::Relaxed) ^ 0x5eed_0000_0000
    )
}

/// Where the call is, in Twilio's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Listening: `action` gets the answer; `fallback` is requested on silence.
    Gathering {
        action: String,
        fallback: Option<String>,
        input: String,
        num_digits: Option<String>,
    },
    Recording {
        action: String,
        fallback: Option<String>,
        max_length: String,
    },
    Queued {
        wait_url: String,
        action: String,
    },
    Ended,
}

pub struct Call<'a> {
    pub app: &'a TestApp,
    pub sid: String,
    pub from: String,
    pub state: State,
    /// Everything the caller has heard.
    pub heard: Vec<String>,
    /// What they heard in the latest response.
    pub turn: Vec<String>,
    pub last_request: Option<(String, Vec<(String, String)>)>,
    pub last_twiml: String,
}

impl Call<'_> {
    fn params(&self, extra: Vec<(&str, String)>) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = vec![
            (
                "AccountSid".into(),
                "AC00000000000000000000000000000000".into(),
            ),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("CallSid".into(), self.sid.clone()),
            ("CallStatus".into(), "in-progress".into()),
            ("Direction".into(), "inbound".into()),
            ("From".into(), self.from.clone()),
            ("To".into(), "+441517063602".into()),
        ];
        p.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        p
    }

    /// Sends a webhook and follows the TwiML the way Twilio would.
    pub async fn request(&mut self, url: &str, extra: Vec<(&str, String)>) {
        let params = self.params(extra);
        self.last_request = Some((url.to_string(), params.clone()));
        let answer = self.app.post_signed(url, &params).await;
        assert_eq!(
            answer.status, 200,
            "webhook {url} answered {}: {}",
            answer.status, answer.body
        );
        assert!(
            answer.content_type.starts_with("text/xml"),
            "content type {}",
            answer.content_type
        );
        self.turn.clear();
        self.follow(answer.body).await;
    }

    /// Sends the last request again, byte for byte, as Twilio's retry does; returns the TwiML.
    pub async fn retry_last(&self) -> String {
        let (url, params) = self.last_request.clone().expect("a request was made");
        let sig = sign(&url, &params);
        let answer = self
            .app
            .post_raw(
                &url,
                form_body(&params),
                Some(&sig),
                &[("i-twilio-idempotency-token", "retry-1")],
            )
            .await;
        assert_eq!(answer.status, 200);
        answer.body
    }

    fn follow(
        &mut self,
        twiml: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            self.last_twiml = twiml.clone();
            let doc = roxmltree::Document::parse(&twiml)
                .unwrap_or_else(|e| panic!("TwiML is not well-formed XML ({e}):\n{twiml}"));
            let root = doc.root_element();
            assert_eq!(root.tag_name().name(), "Response");
            let verbs: Vec<_> = root.children().filter(|n| n.is_element()).collect();
            let mut redirect_to = None;
            self.state = State::Ended;
            for (i, v) in verbs.iter().enumerate() {
                let attr = |n: &str| v.attribute(n).map(str::to_string);
                let fallback = verbs[i + 1..]
                    .iter()
                    .find(|n| n.tag_name().name() == "Redirect")
                    .and_then(|n| n.text())
                    .map(str::to_string);
                match v.tag_name().name() {
                    "Say" => self.hear(v),
                    "Play" | "Pause" => {}
                    "Gather" => {
                        for c in v.children().filter(|c| c.tag_name().name() == "Say") {
                            self.hear(&c);
                        }
                        self.state = State::Gathering {
                            action: attr("action").expect("Gather has an action"),
                            fallback,
                            input: attr("input").unwrap_or_else(|| "dtmf".into()),
                            num_digits: attr("numDigits"),
                        };
                        return;
                    }
                    "Record" => {
                        self.state = State::Recording {
                            action: attr("action").expect("Record has an action"),
                            fallback,
                            max_length: attr("maxLength").unwrap_or_default(),
                        };
                        return;
                    }
                    "Enqueue" => {
                        self.state = State::Queued {
                            wait_url: attr("waitUrl").expect("Enqueue has a waitUrl"),
                            action: attr("action").expect("Enqueue has an action"),
                        };
                        return;
                    }
                    "Redirect" => {
                        redirect_to = v.text().map(str::to_string);
                        break;
                    }
                    "Hangup" => return,
                    other => panic!("unexpected verb <{other}> in\n{twiml}"),
                }
            }
            if let Some(url) = redirect_to {
                self.request(&url, vec![]).await;
            }
        })
    }

    fn hear(&mut self, say: &roxmltree::Node) {
        assert_eq!(
            say.attribute("language"),
            Some("en-GB"),
            "every <Say> is British English"
        );
        assert!(say
            .attribute("voice")
            .is_some_and(|v| v.starts_with("Polly.") || v.starts_with("Google.")));
        let text = say.text().unwrap_or("").to_string();
        assert!(!text.trim().is_empty(), "empty <Say>");
        self.turn.push(text.clone());
        self.heard.push(text);
    }

    /// Everything said in the latest response, as one string.
    pub fn last(&self) -> String {
        self.turn.join(" ")
    }

    /// The caller heard `text` at some point.
    pub fn heard(&self, text: &str) -> bool {
        self.heard.iter().any(|h| h.contains(text))
    }

    fn gather_action(&self) -> String {
        match &self.state {
            State::Gathering { action, .. } => action.clone(),
            other => panic!(
                "the caller is not being asked anything: {other:?}\n{}",
                self.last_twiml
            ),
        }
    }

    /// Presses keys at a menu or number prompt.
    pub async fn press(&mut self, keys: &str) {
        let action = self.gather_action();
        self.request(
            &action,
            vec![
                ("Digits", keys.to_string()),
                ("FinishedOnKey", String::new()),
            ],
        )
        .await;
    }

    /// Answers by speech.
    pub async fn say(&mut self, words: &str) {
        let action = self.gather_action();
        self.request(
            &action,
            vec![
                ("SpeechResult", words.to_string()),
                ("Confidence", "0.91".into()),
            ],
        )
        .await;
    }

    /// Says nothing: Twilio falls through to the verb after the <Gather>/<Record>.
    pub async fn silence(&mut self) {
        let fallback = match &self.state {
            State::Gathering { fallback, .. } | State::Recording { fallback, .. } => {
                fallback.clone()
            }
            other => panic!("nothing to be silent at: {other:?}"),
        };
        let url = fallback.expect(
            "a fallback <Redirect> after the <Gather>/<Record>, or the caller hears silence",
        );
        self.request(&url, vec![]).await;
    }

    /// Leaves a message of `seconds` at a <Record>.
    pub async fn leave_message(&mut self, seconds: u32) {
        let action = match &self.state {
            State::Recording { action, .. } => action.clone(),
            other => panic!("not recording: {other:?}"),
        };
        self.request(
            &action,
            vec![
                (
                    "RecordingUrl",
                    "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE0123".into(),
                ),
                ("RecordingDuration", seconds.to_string()),
                ("RecordingSid", "RE0123".into()),
                ("Digits", "#".into()),
            ],
        )
        .await;
    }

    /// Twilio asks the queue's wait URL; returns the TwiML (the caller hears its <Say>s).
    pub async fn wait_in_queue(&mut self, position: u32) -> String {
        let State::Queued { wait_url, .. } = self.state.clone() else {
            panic!("not queued: {:?}", self.state)
        };
        let params = self.params(vec![
            ("QueuePosition", position.to_string()),
            ("QueueTime", "12".into()),
            ("AvgQueueTime", "30".into()),
            ("CurrentQueueSize", position.to_string()),
            ("MaxQueueSize", "100".into()),
            ("QueueSid", "QU0".into()),
        ]);
        let answer = self.app.post_signed(&wait_url, &params).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let doc = roxmltree::Document::parse(&answer.body).expect("wait TwiML well-formed");
        self.turn.clear();
        let says: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "Say")
            .collect();
        for s in says {
            self.hear(&s);
        }
        answer.body
    }

    /// Presses a key while waiting (the wait TwiML's <Gather>); returns that TwiML.
    pub async fn press_while_waiting(&mut self, key: &str) -> String {
        let body = self.wait_in_queue(1).await;
        let doc = roxmltree::Document::parse(&body).expect("wait TwiML");
        let action = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Gather")
            .and_then(|g| g.attribute("action"))
            .expect("the wait TwiML gathers a key")
            .to_string();
        let params = self.params(vec![("Digits", key.into())]);
        let answer = self.app.post_signed(&action, &params).await;
        assert_eq!(answer.status, 200);
        answer.body
    }

    /// The caller leaves the queue (Twilio posts the <Enqueue action>).
    pub async fn queue_result(&mut self, result: &str, queue_time: u32) {
        let State::Queued { action, .. } = self.state.clone() else {
            panic!("not queued: {:?}", self.state)
        };
        self.request(
            &action,
            vec![
                ("QueueResult", result.into()),
                ("QueueTime", queue_time.to_string()),
            ],
        )
        .await;
    }

    /// The call is over: Twilio's status callback.
    pub async fn hang_up(&mut self, duration: u32) {
        let params = self
            .params(vec![("CallDuration", duration.to_string())])
            .into_iter()
            .map(|(k, v)| {
                if k == "CallStatus" {
                    (k, "completed".to_string())
                } else {
                    (k, v)
                }
            })
            .collect::<Vec<_>>();
        let answer = self
            .app
            .post_signed(&format!("{PUBLIC}/twilio/status"), &params)
            .await;
        assert_eq!(answer.status, 204, "{}", answer.body);
        self.state = State::Ended;
    }

    pub fn ended(&self) -> bool {
        self.state == State::Ended
    }
}
