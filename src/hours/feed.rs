//! The GOV.UK bank-holiday feed: fetching it (conditionally, bounded in time and size),
//! deciding whether a fetched document may replace the calendar in force, merging it with the
//! history the feed no longer lists, and describing what changed.
//!
//! Nothing here changes the calendar in force; [`super::refresh`] does that with the result of
//! [`accept`]. A feed that is slow, unreachable, oversized, malformed or implausible yields an
//! error, so the line never opens or closes by mistake because of it.

use std::fmt;
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};

use super::calendar::{BankHolidays, CalendarError, Division};

/// Where GOV.UK publishes the bank holidays.
pub const DEFAULT_URL: &str = "https://www.gov.uk/bank-holidays.json";

/// Sent with every request so GOV.UK can tell who is asking.
pub const USER_AGENT: &str = concat!(
    "helpline/",
    env!("CARGO_PKG_VERSION"),
    " (NHS enquiry line; bank-holiday calendar refresh)"
);

/// The largest body accepted. GOV.UK's document is about 20 KB; anything near this is wrong.
pub const MAX_FEED_BYTES: usize = 1024 * 1024;

/// Default limit on the whole request, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Default limit on establishing the connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 3;

/// Slack on top of the client's own whole-request timeout before the outer guard gives up.
const GUARD_SLACK: Duration = Duration::from_secs(1);

/// Where and how to fetch the feed.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub url: String,
    pub division: Division,
    /// Limit on the whole request, from sending it to the last byte of the body.
    pub timeout: Duration,
    /// Limit on establishing the connection.
    pub connect_timeout: Duration,
}

impl FeedConfig {
    /// A configuration with the default timeouts (20 s in all, 5 s to connect).
    pub fn new(url: impl Into<String>, division: Division) -> Self {
        Self {
            url: url.into(),
            division,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// HTTP validators kept between refreshes for conditional requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a fetch brought back.
#[derive(Debug)]
pub enum Fetched {
    /// The server answered 304: the copy described by the validators sent is current.
    NotModified,
    /// A 200 answer: the body (not yet validated) and its validators.
    New {
        body: Vec<u8>,
        validators: Validators,
    },
}

/// Why the feed could not be fetched.
///
/// `url` fields hold the configured URL without user name, password, query or fragment, so
/// messages can be logged freely.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The configured URL is not an absolute http(s) URL. (It is not echoed: it may hold secrets.)
    #[error("the bank-holiday feed URL is not a usable http(s) URL: {detail}")]
    BadUrl { detail: String },
    #[error("could not build the HTTP client for the bank-holiday feed: {detail}")]
    Client { detail: String },
    #[error("could not reach the bank-holiday feed at {url}: {detail}")]
    Network { url: String, detail: String },
    #[error(
        "the bank-holiday feed at {url} did not answer in time \
         (limit {timeout:?} in all, {connect_timeout:?} to connect)"
    )]
    TimedOut {
        url: String,
        timeout: Duration,
        connect_timeout: Duration,
    },
    #[error("the bank-holiday feed at {url} redirected badly: {detail}")]
    Redirect { url: String, detail: String },
    #[error("the bank-holiday feed at {url} answered HTTP {status}")]
    Status { url: String, status: StatusCode },
    #[error("the bank-holiday feed at {url} sent more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
}

/// A client for one feed URL, built once and cheap to clone.
#[derive(Debug, Clone)]
pub struct Feed {
    config: FeedConfig,
    url: Url,
    /// `url` without credentials, query or fragment: the form used in errors and logs.
    shown_url: String,
    client: reqwest::Client,
}

impl Feed {
    /// Checks the URL and builds the HTTP client (rustls, the configured timeouts,
    /// [`USER_AGENT`], at most [`MAX_REDIRECTS`] redirects and none from https to http).
    pub fn new(config: FeedConfig) -> Result<Self, FeedError> {
        let url = Url::parse(&config.url).map_err(|e| FeedError::BadUrl {
            detail: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(FeedError::BadUrl {
                detail: format!(
                    "expected http:// or https:// with a host, not {}:",
                    url.scheme()
                ),
            });
        }
        let shown_url = shown(&url);
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt.url().scheme() != "https"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if downgrade {
                attempt.error("refused a redirect from https to http")
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(redirects)
            .build()
            .map_err(|e| FeedError::Client {
                detail: error_chain(&e.without_url()),
            })?;
        Ok(Self {
            config,
            url,
            shown_url,
            client,
        })
    }

    /// The feed's URL as it may be stored and shown: no user name, password, query or fragment.
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    pub fn config(&self) -> &FeedConfig {
        &self.config
    }

    /// GET with If-None-Match / If-Modified-Since from `validators` when present. 304 →
    /// [`Fetched::NotModified`]; 200 → [`Fetched::New`] with the new ETag/Last-Modified.
    /// Any other status, a timeout, a network error or a body over [`MAX_FEED_BYTES`] (read
    /// in chunks, abandoned as soon as it passes the limit) is an error. Bounded in time by
    /// the configured timeout.
    pub async fn fetch(&self, validators: &Validators) -> Result<Fetched, FeedError> {
        // The client's own timeout covers the whole exchange; this guard only makes the bound
        // independent of how the client applies it.
        let guard = self.config.timeout.saturating_add(GUARD_SLACK);
        match tokio::time::timeout(guard, self.fetch_unguarded(validators)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(self.timed_out()),
        }
    }

    async fn fetch_unguarded(&self, validators: &Validators) -> Result<Fetched, FeedError> {
        let mut request = self.client.get(self.url.clone());
        for (name, value) in [
            (reqwest::header::IF_NONE_MATCH, &validators.etag),
            (
                reqwest::header::IF_MODIFIED_SINCE,
                &validators.last_modified,
            ),
        ] {
            let Some(value) = value.as_deref() else {
                continue;
            };
            match HeaderValue::from_str(value) {
                Ok(value) => request = request.header(name, value),
                // A stored validator that is not a legal header value: fetch unconditionally.
                Err(_) => tracing::debug!(header = %name, "ignoring an unusable stored validator"),
            }
        }

        let mut response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            tracing::debug!(url = %self.shown_url, "bank-holiday feed not modified");
            return Ok(Fetched::NotModified);
        }
        if status != StatusCode::OK {
            return Err(FeedError::Status {
                url: self.shown_url.clone(),
                status,
            });
        }
        let declared = response.content_length();
        if declared.is_some_and(|n| n > MAX_FEED_BYTES as u64) {
            return Err(self.too_large());
        }
        let validators = Validators {
            etag: header_text(response.headers(), &reqwest::header::ETAG),
            last_modified: header_text(response.headers(), &reqwest::header::LAST_MODIFIED),
        };

        let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(MAX_FEED_BYTES));
        let mut body = Vec::with_capacity(capacity.min(MAX_FEED_BYTES));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            if body.len().saturating_add(chunk.len()) > MAX_FEED_BYTES {
                // Dropping the response here closes the connection: nothing more is read.
                return Err(self.too_large());
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(url = %self.shown_url, bytes = body.len(), "bank-holiday feed fetched");
        Ok(Fetched::New { body, validators })
    }

    fn classify(&self, error: reqwest::Error) -> FeedError {
        let error = error.without_url();
        let url = self.shown_url.clone();
        if error.is_timeout() {
            self.timed_out()
        } else if error.is_redirect() {
            FeedError::Redirect {
                url,
                detail: error_chain(&error),
            }
        } else {
            FeedError::Network {
                url,
                detail: error_chain(&error),
            }
        }
    }

    fn timed_out(&self) -> FeedError {
        FeedError::TimedOut {
            url: self.shown_url.clone(),
            timeout: self.config.timeout,
            connect_timeout: self.config.connect_timeout,
        }
    }

    fn too_large(&self) -> FeedError {
        FeedError::TooLarge {
            url: self.shown_url.clone(),
            limit: MAX_FEED_BYTES,
        }
    }
}

/// The URL without user name, password, query or fragment.
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    // These only fail for URLs that cannot have them, which then have nothing to remove.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// An error and its causes as one line ("error sending request: client error (Connect): …").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Why a fetched document is not used.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// Not GOV.UK bank-holiday JSON, the division missing or empty, or a date that does not parse.
    #[error("the document is not usable: {0}")]
    Unreadable(CalendarError),
    /// The document knows fewer bank holidays after today than the calendar in force: a
    /// truncated or stale copy.
    #[error(
        "the document lists {after} bank holidays after today, \
         fewer than the {before} in the calendar in force"
    )]
    FewerFutureEvents { before: usize, after: usize },
    /// A past bank holiday within the document's range has disappeared from it.
    #[error(
        "the document no longer lists {title} on {date}, a past bank holiday \
         within its range that the calendar in force has"
    )]
    RemovedPastDate { date: NaiveDate, title: String },
    /// The calendar in force is for another division, so nothing can be compared.
    #[error("the calendar in force is for {current}, not {requested}")]
    DivisionMismatch {
        current: Division,
        requested: Division,
    },
}

/// Validates `body` against the calendar now in force and returns the calendar to use: the
/// fetched dates, plus the current calendar's dates *before the fetched document's first date*
/// (GOV.UK drops old years; we keep history). `source` names where it came from (e.g.
/// "GOV.UK feed https://… fetched 2026-11-22T10:00:00Z") and becomes the result's source.
///
/// All must hold:
/// - `body` parses as GOV.UK JSON, with `division` present and non-empty and every date valid;
/// - the document lists at least as many dates strictly after `today` as `current` does;
/// - every date `d` of `current` with (document's first date) <= `d` <= `today` is still listed
///   (retitling is allowed).
pub fn accept(
    current: &BankHolidays,
    body: &[u8],
    division: Division,
    source: &str,
    today: NaiveDate,
) -> Result<BankHolidays, Rejected> {
    accept_with(current, body, division, source, today, Checks::All)
}

/// Which of [`accept`]'s rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Every rule (the daily refresh).
    All,
    /// Only that the document is readable, for the right division, with dates: for an operator
    /// who has checked that GOV.UK really removed a date (`helpline holidays refresh --force`).
    ShapeOnly,
}

/// [`accept`], with the change rules optionally waived.
pub fn accept_with(
    current: &BankHolidays,
    body: &[u8],
    division: Division,
    source: &str,
    today: NaiveDate,
    checks: Checks,
) -> Result<BankHolidays, Rejected> {
    if current.division() != division {
        return Err(Rejected::DivisionMismatch {
            current: current.division(),
            requested: division,
        });
    }
    let fetched =
        BankHolidays::from_govuk_json(body, division, source).map_err(Rejected::Unreadable)?;
    let Some(first) = fetched.first_date() else {
        // `from_govuk_json` refuses an empty division; kept total all the same.
        return Err(Rejected::Unreadable(CalendarError::MissingDivision {
            division,
            origin: source.to_owned(),
        }));
    };

    let future = |h: &BankHolidays| h.iter().filter(|(d, _)| *d > today).count();
    let (before, after) = (future(current), future(&fetched));
    if checks == Checks::All && after < before {
        return Err(Rejected::FewerFutureEvents { before, after });
    }

    if let Some((date, title)) = current
        .iter()
        .filter(|_| checks == Checks::All)
        .filter(|(d, _)| first <= *d && *d <= today)
        .find(|(d, _)| fetched.title_on(*d).is_none())
    {
        return Err(Rejected::RemovedPastDate {
            date,
            title: title.to_owned(),
        });
    }

    let history = current
        .iter()
        .take_while(|(d, _)| *d < first)
        .map(|(d, t)| (d, t.to_owned()));
    let listed = fetched.iter().map(|(d, t)| (d, t.to_owned()));
    BankHolidays::from_days(division, source, history.chain(listed)).map_err(Rejected::Unreadable)
}

/// What changed between two calendars, each list in date order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<(NaiveDate, String)>,
    pub removed: Vec<(NaiveDate, String)>,
    /// Date, old title, new title.
    pub retitled: Vec<(NaiveDate, String, String)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.retitled.is_empty()
    }
}

impl fmt::Display for Diff {
    /// One line per change, in date order: `+ 2029-01-01 New Year's Day`,
    /// `- 2028-05-01 Early May bank holiday`, `~ 2028-12-26 Boxing Day → Boxing Day (substitute)`;
    /// `no change` when empty. No trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no change");
        }
        // (date, order within a date, line): a removal before an addition on the same date.
        let mut lines: Vec<(NaiveDate, u8, String)> = Vec::new();
        lines.extend(
            self.removed
                .iter()
                .map(|(d, t)| (*d, 0, format!("- {} {t}", d.format("%Y-%m-%d")))),
        );
        lines.extend(
            self.retitled
                .iter()
                .map(|(d, old, new)| (*d, 1, format!("~ {} {old} → {new}", d.format("%Y-%m-%d")))),
        );
        lines.extend(
            self.added
                .iter()
                .map(|(d, t)| (*d, 2, format!("+ {} {t}", d.format("%Y-%m-%d")))),
        );
        lines.sort();
        for (i, (_, _, line)) in lines.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(line)?;
        }
        Ok(())
    }
}

/// Dates only in `new` (added), only in `old` (removed), and in both with different titles.
pub fn diff(old: &BankHolidays, new: &BankHolidays) -> Diff {
    let mut changes = Diff::default();
    for (date, title) in old.iter() {
        match new.title_on(date) {
            None => changes.removed.push((date, title.to_owned())),
            Some(other) if other != title => {
                changes
                    .retitled
                    .push((date, title.to_owned(), other.to_owned()));
            }
            Some(_) => {}
        }
    }
    changes.added = new
        .iter()
        .filter(|(date, _)| old.title_on(*date).is_none())
        .map(|(date, title)| (date, title.to_owned()))
        .collect();
    changes
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::{json, Value};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const PATH: &str = "/bank-holidays.json";
    const ETAG: &str = "\"bh-v1\"";
    const LAST_MODIFIED: &str = "Sun, 22 Nov 2026 10:00:00 GMT";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    /// The day the tests pretend it is.
    fn today() -> NaiveDate {
        date(2026, 11, 22)
    }

    fn embedded() -> BankHolidays {
        BankHolidays::embedded().expect("embedded snapshot parses")
    }

    /// The embedded England and Wales dates from `year` on, as a feed would list them.
    fn embedded_from(year: i32) -> Vec<(NaiveDate, String)> {
        embedded()
            .iter()
            .filter(|(d, _)| *d >= date(year, 1, 1))
            .map(|(d, t)| (d, t.to_owned()))
            .collect()
    }

    /// A GOV.UK document listing `events` for England and Wales, plus one Scottish holiday.
    fn govuk(events: &[(NaiveDate, String)]) -> Value {
        let events: Vec<Value> = events
            .iter()
            .map(|(d, t)| json!({"title": t, "date": d.to_string(), "notes": "", "bunting": true}))
            .collect();
        json!({
            "england-and-wales": {"division": "england-and-wales", "events": events},
            "scotland": {
                "division": "scotland",
                "events": [{"title": "St Andrew’s Day", "date": "2026-11-30", "notes": "", "bunting": true}]
            }
        })
    }

    fn bytes(document: &Value) -> Vec<u8> {
        serde_json::to_vec(document).expect("serialises")
    }

    fn feed_at(url: &str) -> Feed {
        Feed::new(FeedConfig::new(url, Division::EnglandAndWales)).expect("client builds")
    }

    fn feed_for(server: &MockServer) -> Feed {
        feed_at(&format!("{}{PATH}", server.uri()))
    }

    /// Serves `body` (200, with validators) at PATH and fetches it.
    async fn serve_and_fetch(body: Vec<u8>) -> (Vec<u8>, Validators) {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(PATH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(body, "application/json")
                    .insert_header("ETag", ETAG)
                    .insert_header("Last-Modified", LAST_MODIFIED),
            )
            .expect(1)
            .mount(&server)
            .await;
        match feed_for(&server).fetch(&Validators::default()).await {
            Ok(Fetched::New { body, validators }) => (body, validators),
            other => panic!("expected a new document, got {other:?}"),
        }
    }

    fn accept_now(current: &BankHolidays, body: &[u8]) -> Result<BankHolidays, Rejected> {
        accept(
            current,
            body,
            Division::EnglandAndWales,
            "GOV.UK feed (test)",
            today(),
        )
    }

    /// A bare HTTP/1.1 server on 127.0.0.1 answering one connection with `head`, then calling
    /// `body` to write the rest (for responses wiremock cannot produce).
    async fn raw_server<F, Fut>(head: &'static str, body: F) -> String
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("has an address");
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            if stream.write_all(head.as_bytes()).await.is_ok() {
                body(stream).await;
            }
        });
        format!("http://{address}{PATH}")
    }

    #[test]
    fn config_defaults() {
        let config = FeedConfig::new(DEFAULT_URL, Division::EnglandAndWales);
        assert_eq!(config.url, "https://www.gov.uk/bank-holidays.json");
        assert_eq!(config.timeout, Duration::from_secs(20));
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert!(USER_AGENT.starts_with("helpline/"));
        let feed = Feed::new(config).expect("client builds");
        assert_eq!(feed.config().division, Division::EnglandAndWales);
    }

    #[test]
    fn unusable_urls_are_refused_without_echoing_them() {
        for url in [
            "not a url",
            "ftp://example.org/x.json",
            "/bank-holidays.json",
            "",
        ] {
            let err = Feed::new(FeedConfig::new(url, Division::EnglandAndWales))
                .expect_err("must be refused");
            assert!(matches!(err, FeedError::BadUrl { .. }), "{url}: {err:?}");
        }
        let err = Feed::new(FeedConfig::new(
            "mailto:secret-token@example.org",
            Division::EnglandAndWales,
        ))
        .expect_err("must be refused");
        assert!(!err.to_string().contains("secret-token"), "{err}");
    }

    #[tokio::test]
    async fn good_feed_is_fetched_and_accepted_keeping_history() {
        let document = govuk(&embedded_from(2019));
        let (body, validators) = serve_and_fetch(bytes(&document)).await;
        assert_eq!(body, bytes(&document));
        assert_eq!(
            validators,
            Validators {
                etag: Some(ETAG.to_owned()),
                last_modified: Some(LAST_MODIFIED.to_owned()),
            }
        );

        let current = embedded();
        let merged = accept_now(&current, &body).expect("accepted");
        assert_eq!(merged.source(), "GOV.UK feed (test)");
        assert_eq!(merged.division(), Division::EnglandAndWales);
        // The feed's dates...
        assert_eq!(merged.title_on(date(2026, 12, 25)), Some("Christmas Day"));
        assert_eq!(merged.last_date(), Some(date(2028, 12, 26)));
        // ...and the embedded ones before its first date, which the feed no longer lists.
        assert_eq!(merged.first_date(), Some(date(2012, 1, 2)));
        assert!(merged.title_on(date(2018, 12, 25)).is_some());
        assert_eq!(merged.len(), current.len());
        // No Scottish holiday leaks in.
        assert_eq!(merged.title_on(date(2026, 11, 30)), None);

        let changes = diff(&current, &merged);
        assert!(changes.is_empty(), "{changes}");
        assert_eq!(changes.to_string(), "no change");
    }

    #[tokio::test]
    async fn changed_feed_with_a_2029_date_shows_in_the_diff() {
        let mut events = embedded_from(2020);
        events.push((date(2029, 1, 1), "New Year’s Day".to_owned()));
        let (body, _) = serve_and_fetch(bytes(&govuk(&events))).await;

        let current = embedded();
        let merged = accept_now(&current, &body).expect("accepted");
        assert_eq!(merged.last_date(), Some(date(2029, 1, 1)));
        assert_eq!(merged.len(), current.len() + 1);

        let changes = diff(&current, &merged);
        assert_eq!(
            changes.added,
            vec![(date(2029, 1, 1), "New Year’s Day".to_owned())]
        );
        assert!(changes.removed.is_empty() && changes.retitled.is_empty());
        assert_eq!(changes.to_string(), "+ 2029-01-01 New Year’s Day");
    }

    #[tokio::test]
    async fn conditional_request_gets_not_modified() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(PATH))
            .and(header("If-None-Match", ETAG))
            .respond_with(ResponseTemplate::new(304).insert_header("ETag", ETAG))
            .with_priority(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(PATH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(govuk(&embedded_from(2019)))
                    .insert_header("ETag", ETAG)
                    .insert_header("Last-Modified", LAST_MODIFIED),
            )
            .with_priority(2)
            .expect(1)
            .mount(&server)
            .await;
        let feed = feed_for(&server);

        let validators = match feed.fetch(&Validators::default()).await {
            Ok(Fetched::New { validators, .. }) => validators,
            other => panic!("expected a new document, got {other:?}"),
        };
        let second = feed.fetch(&validators).await;
        assert!(matches!(second, Ok(Fetched::NotModified)), "{second:?}");

        let requests = server.received_requests().await.expect("recording");
        assert_eq!(requests.len(), 2);
        // Nothing conditional without validators; both validators once we have them.
        assert!(requests[0].headers.get("if-none-match").is_none());
        assert!(requests[0].headers.get("if-modified-since").is_none());
        assert_eq!(
            requests[1]
                .headers
                .get("if-modified-since")
                .and_then(|v| v.to_str().ok()),
            Some(LAST_MODIFIED)
        );
    }

    #[tokio::test]
    async fn unusable_stored_validators_are_skipped() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(govuk(&embedded_from(2019))))
            .mount(&server)
            .await;
        let validators = Validators {
            etag: Some("bad\nvalue".to_owned()),
            last_modified: None,
        };
        let fetched = feed_for(&server).fetch(&validators).await;
        match fetched {
            Ok(Fetched::New { validators, .. }) => assert_eq!(validators, Validators::default()),
            other => panic!("expected a new document, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn unreadable_documents_are_rejected() {
        let good = bytes(&govuk(&embedded_from(2019)));
        let truncated = good[..good.len() / 2].to_vec();
        let scotland_only = bytes(&json!({
            "scotland": {"division": "scotland", "events": [
                {"title": "St Andrew’s Day", "date": "2026-11-30", "notes": "", "bunting": true}
            ]}
        }));
        let no_events = bytes(&govuk(&[]));
        let mut bad_date = govuk(&embedded_from(2019));
        bad_date["england-and-wales"]["events"][3]["date"] = json!("2026-02-30");
        let mut other_date_format = govuk(&embedded_from(2019));
        other_date_format["england-and-wales"]["events"][0]["date"] = json!("25/12/2026");

        let current = embedded();
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            // (name, body, whether the division is what is missing)
            (
                "malformed JSON",
                b"{ \"england-and-wales\": [".to_vec(),
                false,
            ),
            ("empty body", Vec::new(), false),
            ("truncated JSON", truncated, false),
            (
                "an HTML error page",
                b"<html>Service unavailable</html>".to_vec(),
                false,
            ),
            ("no england-and-wales", scotland_only, true),
            ("an empty events list", no_events, true),
            ("an impossible date", bytes(&bad_date), false),
            ("a non-ISO date", bytes(&other_date_format), false),
        ];
        for (name, body, missing) in cases {
            let (fetched, _) = serve_and_fetch(body).await;
            let err = accept_now(&current, &fetched).expect_err(name);
            match (&err, missing) {
                (Rejected::Unreadable(CalendarError::Parse { .. }), false)
                | (Rejected::Unreadable(CalendarError::MissingDivision { .. }), true) => {}
                _ => panic!("{name}: unexpected {err:?}"),
            }
            assert!(err.to_string().starts_with("the document is not usable: "));
        }
    }

    #[tokio::test]
    async fn slow_server_times_out_quickly() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(govuk(&embedded_from(2019)))
                    .set_delay(Duration::from_secs(5)),
            )
            .mount(&server)
            .await;
        let mut config =
            FeedConfig::new(format!("{}{PATH}", server.uri()), Division::EnglandAndWales);
        config.timeout = Duration::from_millis(300);
        let feed = Feed::new(config).expect("client builds");

        let started = Instant::now();
        let err = feed
            .fetch(&Validators::default())
            .await
            .expect_err("must time out");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, FeedError::TimedOut { .. }), "{err:?}");
        assert!(err.to_string().contains("300ms"), "{err}");
    }

    #[tokio::test]
    async fn a_body_that_stalls_times_out() {
        // Headers at once, then the body never finishes: the timeout covers the body too.
        let url = raw_server(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            |stream| async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                drop(stream);
            },
        )
        .await;
        let mut config = FeedConfig::new(url, Division::EnglandAndWales);
        config.timeout = Duration::from_millis(300);
        let feed = Feed::new(config).expect("client builds");

        let started = Instant::now();
        let err = feed
            .fetch(&Validators::default())
            .await
            .expect_err("must time out");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, FeedError::TimedOut { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn http_errors_report_the_status() {
        for code in [500u16, 404, 204, 301] {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .respond_with(ResponseTemplate::new(code).set_body_string("nope"))
                .mount(&server)
                .await;
            let err = feed_for(&server)
                .fetch(&Validators::default())
                .await
                .expect_err("must fail");
            match &err {
                FeedError::Status { status, url } => {
                    assert_eq!(status.as_u16(), code);
                    assert_eq!(url, &format!("{}{PATH}", server.uri()));
                }
                other => panic!("{code}: unexpected {other:?}"),
            }
            assert!(err.to_string().contains(&format!("HTTP {code}")), "{err}");
        }
    }

    #[tokio::test]
    async fn unreachable_server_is_a_network_error_without_secrets() {
        let feed = feed_at("http://reader:hunter2@127.0.0.1:9/bank-holidays.json?key=hunter2#frag");
        let err = feed
            .fetch(&Validators::default())
            .await
            .expect_err("nothing listens on port 9");
        assert!(matches!(err, FeedError::Network { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with(
                "could not reach the bank-holiday feed at http://127.0.0.1:9/bank-holidays.json: "
            ),
            "{message}"
        );
        assert!(
            !message.contains("hunter2") && !message.contains("reader"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(PATH))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b' '; MAX_FEED_BYTES + 1]))
            .mount(&server)
            .await;
        let err = feed_for(&server)
            .fetch(&Validators::default())
            .await
            .expect_err("too large");
        assert!(
            matches!(
                err,
                FeedError::TooLarge {
                    limit: MAX_FEED_BYTES,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_body_at_the_limit_is_fetched() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(PATH))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b' '; MAX_FEED_BYTES]))
            .mount(&server)
            .await;
        match feed_for(&server).fetch(&Validators::default()).await {
            Ok(Fetched::New { body, .. }) => assert_eq!(body.len(), MAX_FEED_BYTES),
            other => panic!("expected a new document, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_endless_chunked_body_is_cut_off_at_the_limit() {
        // No Content-Length, so only counting while reading can stop it.
        let url = raw_server(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            |mut stream| async move {
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
                // Would go on for 64 MB; the client hangs up long before.
                for _ in 0..1024 {
                    if stream.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            },
        )
        .await;
        let started = Instant::now();
        let err = feed_at(&url)
            .fetch(&Validators::default())
            .await
            .expect_err("too large");
        assert!(matches!(err, FeedError::TooLarge { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn redirects_are_followed_but_limited() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/moved.json"))
            .respond_with(ResponseTemplate::new(301).insert_header("Location", PATH))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(govuk(&embedded_from(2019))))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/loop.json"))
            .respond_with(ResponseTemplate::new(302).insert_header("Location", "/loop.json"))
            .mount(&server)
            .await;

        let moved = feed_at(&format!("{}/moved.json", server.uri()))
            .fetch(&Validators::default())
            .await;
        assert!(matches!(moved, Ok(Fetched::New { .. })), "{moved:?}");

        let err = feed_at(&format!("{}/loop.json", server.uri()))
            .fetch(&Validators::default())
            .await
            .expect_err("redirect loop");
        assert!(matches!(err, FeedError::Redirect { .. }), "{err:?}");
        let loops = server
            .received_requests()
            .await
            .expect("recording")
            .iter()
            .filter(|r| r.url.path() == "/loop.json")
            .count();
        assert_eq!(loops, MAX_REDIRECTS + 1);
    }

    #[tokio::test]
    async fn user_agent_is_sent() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(PATH))
            .and(header("User-Agent", USER_AGENT))
            .respond_with(ResponseTemplate::new(200).set_body_json(govuk(&embedded_from(2019))))
            .expect(1)
            .mount(&server)
            .await;
        // Anything else gets wiremock's 404, which fetch reports as an error.
        let fetched = feed_for(&server).fetch(&Validators::default()).await;
        assert!(matches!(fetched, Ok(Fetched::New { .. })), "{fetched:?}");
    }

    #[tokio::test]
    async fn fewer_future_events_are_rejected() {
        // The 2028 holidays are missing: a stale or truncated copy.
        let events: Vec<_> = embedded_from(2019)
            .into_iter()
            .filter(|(d, _)| *d < date(2028, 1, 1))
            .collect();
        let (body, _) = serve_and_fetch(bytes(&govuk(&events))).await;
        let current = embedded();
        let before = current.iter().filter(|(d, _)| *d > today()).count();
        let err = accept_now(&current, &body).expect_err("rejected");
        match err {
            Rejected::FewerFutureEvents { before: b, after } => {
                assert_eq!(b, before);
                assert_eq!(after, before - 8);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn removing_a_past_date_inside_the_feed_range_is_rejected() {
        let coronation = date(2023, 5, 8);
        let events: Vec<_> = embedded_from(2019)
            .into_iter()
            .filter(|(d, _)| *d != coronation)
            .collect();
        let (body, _) = serve_and_fetch(bytes(&govuk(&events))).await;
        let err = accept_now(&embedded(), &body).expect_err("rejected");
        match &err {
            Rejected::RemovedPastDate { date: d, title } => {
                assert_eq!(*d, coronation);
                assert_eq!(title, "Bank holiday for the coronation of King Charles III");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("2023-05-08"), "{err}");
    }

    #[tokio::test]
    async fn older_years_missing_from_the_feed_are_kept() {
        let (body, _) = serve_and_fetch(bytes(&govuk(&embedded_from(2025)))).await;
        let current = embedded();
        let merged = accept_now(&current, &body).expect("accepted");
        assert_eq!(merged.len(), current.len());
        assert_eq!(merged.first_date(), Some(date(2012, 1, 2)));
        assert_eq!(
            merged.title_on(date(2023, 5, 8)),
            Some("Bank holiday for the coronation of King Charles III")
        );
        assert!(diff(&current, &merged).is_empty());
    }

    #[tokio::test]
    async fn moved_and_retitled_dates_are_accepted_and_described() {
        // A future holiday moves (same count) and a past one is retitled: both allowed.
        let mut events: Vec<_> = embedded_from(2019)
            .into_iter()
            .filter(|(d, _)| *d != date(2027, 5, 3))
            .collect();
        events.push((
            date(2027, 5, 7),
            "Early May bank holiday (VE day)".to_owned(),
        ));
        for (d, title) in events.iter_mut() {
            if *d == date(2026, 5, 25) {
                *title = "Spring bank holiday (renamed)".to_owned();
            }
        }
        let (body, _) = serve_and_fetch(bytes(&govuk(&events))).await;
        let current = embedded();
        let merged = accept_now(&current, &body).expect("accepted");
        let changes = diff(&current, &merged);
        assert_eq!(changes.added.len(), 1);
        assert_eq!(changes.removed.len(), 1);
        assert_eq!(changes.retitled.len(), 1);
        let old_title = current.title_on(date(2026, 5, 25)).expect("listed");
        let old_may = current.title_on(date(2027, 5, 3)).expect("listed");
        assert_eq!(
            changes.to_string(),
            format!(
                "~ 2026-05-25 {old_title} → Spring bank holiday (renamed)\n\
                 - 2027-05-03 {old_may}\n\
                 + 2027-05-07 Early May bank holiday (VE day)"
            )
        );
    }

    #[test]
    fn a_calendar_for_another_division_is_not_compared() {
        let body = bytes(&govuk(&embedded_from(2019)));
        let err = accept(&embedded(), &body, Division::Scotland, "x", today())
            .expect_err("division mismatch");
        assert!(matches!(err, Rejected::DivisionMismatch { .. }), "{err:?}");
    }

    #[test]
    fn the_merged_calendar_can_be_stored_and_reloaded() {
        let mut events = embedded_from(2020);
        events.push((date(2029, 1, 1), "New Year’s Day".to_owned()));
        let current = embedded();
        let merged = accept_now(&current, &bytes(&govuk(&events))).expect("accepted");

        let stored = merged.to_govuk_json();
        let reloaded =
            BankHolidays::from_govuk_json(&stored, Division::EnglandAndWales, merged.source())
                .expect("own output parses");
        assert_eq!(reloaded, merged);

        // Re-running acceptance on the stored copy (e.g. at startup) changes nothing.
        let again = accept_now(&merged, &stored).expect("accepted again");
        assert_eq!(again, merged);
        assert!(diff(&merged, &again).is_empty());
    }

    #[test]
    fn diff_lists_every_kind_of_change_in_date_order() {
        let old = BankHolidays::from_days(
            Division::EnglandAndWales,
            "old",
            vec![
                (date(2028, 5, 1), "Early May bank holiday".to_owned()),
                (date(2028, 12, 26), "Boxing Day".to_owned()),
            ],
        )
        .expect("non-empty");
        let new = BankHolidays::from_days(
            Division::EnglandAndWales,
            "new",
            vec![
                (date(2028, 12, 26), "Boxing Day (substitute day)".to_owned()),
                (date(2029, 1, 1), "New Year's Day".to_owned()),
            ],
        )
        .expect("non-empty");
        let changes = diff(&old, &new);
        assert!(!changes.is_empty());
        assert_eq!(
            changes,
            Diff {
                added: vec![(date(2029, 1, 1), "New Year's Day".to_owned())],
                removed: vec![(date(2028, 5, 1), "Early May bank holiday".to_owned())],
                retitled: vec![(
                    date(2028, 12, 26),
                    "Boxing Day".to_owned(),
                    "Boxing Day (substitute day)".to_owned()
                )],
            }
        );
        assert_eq!(
            changes.to_string(),
            "- 2028-05-01 Early May bank holiday\n\
             ~ 2028-12-26 Boxing Day → Boxing Day (substitute day)\n\
             + 2029-01-01 New Year's Day"
        );
        assert_eq!(Diff::default().to_string(), "no change");
        assert!(diff(&old, &old).is_empty());
    }
}
