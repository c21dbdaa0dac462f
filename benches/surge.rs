//! The surge benchmark (issue 7): the real service, on SQLite, under many concurrent
//! simulated calls walking whole journeys, every request signed as Twilio signs it —
//! compared in the same run with a trivial axum handler answering a fixed TwiML string.
//!
//! ```text
//! cargo bench --bench surge
//! ```
//!
//! Starts `helpline serve` (the release binary) as a child process on a throwaway SQLite
//! file and drives it with `HELPLINE_SURGE_CONNECTIONS` concurrent workers (default 50),
//! following the action URLs in the TwiML as Twilio does, each call from its own number:
//!
//! 1. menu steps, for `HELPLINE_SURGE_SECONDS` (default 15): the greeting, the latest update
//!    (1) or fraud guidance (3), the call's end (status callback);
//! 2. whole journeys, as long: the same, but one call in three a call-back request (2,
//!    confirm the number, hospital, subject, no message: the enquiry is stored and its
//!    reference spoken);
//! 3. enquiry-creating steps only: `HELPLINE_SURGE_ENQUIRIES` calls (default 10,000) are
//!    walked up to their last question untimed, then their last steps are timed;
//! 4. memory with `HELPLINE_SURGE_IN_PROGRESS` calls (default 10,000) in progress (each
//!    answered the greeting and two questions, none ended);
//!
//! then the trivial handler (in this process, on the same machine, same client) for as
//! long as phase 1. It prints requests per second, p50/p99/max latency, enquiries stored per
//! second, the service's CPU use and memory (from /proc), and the ratio of menu steps to the
//! trivial handler. Wall-clock figures, printed, never asserted: docs/performance.md
//! records them.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use helpline::twilio::signature;

const TOKEN: &str = "surge-benchmark-auth-token";
const PUBLIC: &str = "https://helpline.example.nhs.uk";
const TRIVIAL_TWIML: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Hello.</Say><Hangup/></Response>";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// What one run measured.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    enquiries: u64,
    errors: u64,
    /// Calls walked to their enquiry-creating step: the number and that step's URL.
    ready: Vec<(u64, String)>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.enquiries += other.enquiries;
        self.errors += other.errors;
        self.ready.extend(other.ready);
    }

    fn report(&mut self, name: &str, wall: Duration) -> f64 {
        self.latencies.sort();
        let n = self.latencies.len();
        let pick = |p: usize| {
            self.latencies
                .get(((p * n).div_ceil(100)).max(1) - 1)
                .copied()
                .unwrap_or_default()
        };
        let rps = n as f64 / wall.as_secs_f64();
        println!(
            "{name}: {n} requests in {:.1} s = {rps:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
            wall.as_secs_f64(),
            pick(50).as_secs_f64() * 1e3,
            pick(99).as_secs_f64() * 1e3,
            pick(100).as_secs_f64() * 1e3,
            self.errors,
        );
        rps
    }
}

/// A signed webhook POST to `path` (relative to the public URL) with `params`.
async fn post(
    client: &reqwest::Client,
    base: &str,
    url: &str,
    params: &[(String, String)],
    tally: &mut Tally,
) -> Option<String> {
    let path = url.strip_prefix(PUBLIC).unwrap_or(url);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    let sig = signature::compute(TOKEN.as_bytes(), url, params);
    let began = Instant::now();
    let res = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(body)
        .send()
        .await;
    let answer = match res {
        Ok(r) if r.status().is_success() => r.text().await.ok(),
        _ => None,
    };
    tally.latencies.push(began.elapsed());
    if answer.is_none() {
        tally.errors += 1;
    }
    answer
}

/// The first `action="…"` in the TwiML: where Twilio posts the caller's answer.
fn action(twiml: &str) -> Option<String> {
    let start = twiml.find("action=\"")? + "action=\"".len();
    let end = twiml[start..].find('"')? + start;
    Some(twiml[start..end].replace("&amp;", "&"))
}

/// Twilio's parameters for call `n`, with `extra`.
fn call_params(n: u64, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        (
            "AccountSid".into(),
            "AC00000000000000000000000000000000".into(),
        ),
        ("CallSid".into(), format!("CA{n:032x}")),
        ("CallStatus".into(), "in-progress".into()),
        ("From".into(), format!("+4477009{:05}", n % 100_000)),
        ("To".into(), "+441517063602".into()),
    ];
    p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    p
}

/// The keys of journey `n`: the latest update (1), fraud guidance (3), or (`mix` Journeys,
/// one in three) a call-back request; menu steps only for [`Mix::Menu`].
fn keys_for(mix: Mix, n: u64) -> &'static [&'static str] {
    match (mix, n % 3) {
        (Mix::Menu, k) if k % 2 == 0 => &["1"],
        (Mix::Menu, _) => &["3"],
        (_, 0) => &["1"],
        (_, 1) => &["3"],
        _ => CALLBACK_KEYS,
    }
}

/// A call-back request: 2, confirm the number, the hospital, the subject, no message.
const CALLBACK_KEYS: &[&str] = &["2", "1", "1", "1", "record"];

/// Walks call `n` from the greeting through `keys`, following the action URLs; the TwiML of
/// the last step, if every step answered.
async fn walk(
    client: &reqwest::Client,
    base: &str,
    n: u64,
    keys: &[&str],
    tally: &mut Tally,
) -> Option<String> {
    let mut twiml = post(
        client,
        base,
        &format!("{PUBLIC}/twilio/voice"),
        &call_params(n, &[]),
        tally,
    )
    .await?;
    for key in keys {
        let url = action(&twiml)?;
        let extra: Vec<(&str, &str)> = if *key == "record" {
            vec![("RecordingDuration", "0")]
        } else {
            vec![("Digits", key)]
        };
        twiml = post(client, base, &url, &call_params(n, &extra), tally).await?;
        if *key == "record" && twiml.contains("reference number") {
            tally.enquiries += 1;
        }
    }
    Some(twiml)
}

/// One caller's whole journey, ended by the status callback.
async fn journey(client: &reqwest::Client, base: &str, n: u64, mix: Mix, tally: &mut Tally) {
    if walk(client, base, n, keys_for(mix, n), tally)
        .await
        .is_none()
    {
        return;
    }
    hang_up(client, base, n, tally).await;
}

/// Twilio's status callback: the call is over.
async fn hang_up(client: &reqwest::Client, base: &str, n: u64, tally: &mut Tally) {
    let end: Vec<(String, String)> = call_params(n, &[("CallDuration", "60")])
        .into_iter()
        .map(|(k, v)| {
            if k == "CallStatus" {
                (k, "completed".into())
            } else {
                (k, v)
            }
        })
        .collect();
    let _ = post(
        client,
        base,
        &format!("{PUBLIC}/twilio/status"),
        &end,
        tally,
    )
    .await;
}

/// What the workers of a timed run play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    /// Whole journeys: two in three menu-only, one in three a call-back request.
    Journeys,
    /// Menu steps only: the greeting, the latest update or fraud guidance, the end.
    Menu,
    /// The trivial handler.
    Trivial,
}

/// `connections` workers sharing one client, each taking the next call number (from
/// `first` on) while `more(n)`, and playing `play(client, n, tally)` with it; their tallies
/// added up, and how long they took.
async fn workers<P, Fut>(
    connections: u64,
    first: u64,
    more: impl Fn(u64) -> bool + Send + Sync + 'static,
    play: P,
) -> (Tally, Duration)
where
    P: Fn(reqwest::Client, u64, Tally) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Tally> + Send + 'static,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections as usize)
        .build()
        .expect("an HTTP client");
    let next = Arc::new(AtomicU64::new(first));
    let (more, play) = (Arc::new(more), Arc::new(play));
    let began = Instant::now();
    let mut running = Vec::new();
    for _ in 0..connections {
        let (client, next, more, play) = (client.clone(), next.clone(), more.clone(), play.clone());
        running.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if !more(n) {
                    return tally;
                }
                tally = play(client.clone(), n, tally).await;
            }
        }));
    }
    let mut all = Tally::default();
    for w in running {
        if let Ok(t) = w.await {
            all.add(t);
        }
    }
    (all, began.elapsed())
}

/// `connections` workers playing `mix` for `seconds`; calls numbered from `first`.
async fn drive(
    base: &str,
    connections: u64,
    seconds: u64,
    mix: Mix,
    first: u64,
) -> (Tally, Duration) {
    let stop = Instant::now() + Duration::from_secs(seconds);
    let base = base.to_string();
    workers(
        connections,
        first,
        move |_| Instant::now() < stop,
        move |client, n, mut tally| {
            let base = base.clone();
            async move {
                if mix == Mix::Trivial {
                    let params = vec![("CallSid".to_string(), format!("CA{n:032x}"))];
                    let _ = post(&client, &base, &format!("{PUBLIC}/"), &params, &mut tally).await;
                } else {
                    journey(&client, &base, n, mix, &mut tally).await;
                }
                tally
            }
        },
    )
    .await
}

/// (user + system CPU seconds, peak resident memory in KiB) of a process, from /proc.
fn usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / 100.0, peak))
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let connections = env_number("HELPLINE_SURGE_CONNECTIONS", 50);
    let seconds = env_number("HELPLINE_SURGE_SECONDS", 15);
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let url = format!("sqlite://{}", dir.path().join("surge.db").display());
    let child = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HELPLINE_LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &url)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("HELPLINE_PUBLIC_URL", PUBLIC)
        .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let service = Service(child);
    let base = format!("http://127.0.0.1:{port}");
    let ready = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status().is_success() {
                break;
            }
        }
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(30),
            "the service did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "surge benchmark: {connections} connections for {seconds} s each, {} cores",
        std::thread::available_parallelism().map_or(1, usize::from)
    );

    let pid = service.0.id();
    // Call numbers of each phase never meet (every call is new).
    let (mut menu, wall, cpu) =
        measured(pid, drive(&base, connections, seconds, Mix::Menu, 1)).await;
    let menu_rps = menu.report("helpline, menu steps (signed)", wall);
    println!("  service CPU {cpu:.0}% of one core");

    let (mut whole, wall, cpu) = measured(
        pid,
        drive(&base, connections, seconds, Mix::Journeys, 100_000_000),
    )
    .await;
    whole.report(
        "helpline, whole journeys (a third ask for a call back)",
        wall,
    );
    println!(
        "  enquiries stored and spoken: {} = {:.0}/s; service CPU {cpu:.0}% of one core",
        whole.enquiries,
        whole.enquiries as f64 / wall.as_secs_f64(),
    );

    let enquiries = env_number("HELPLINE_SURGE_ENQUIRIES", 10_000);
    let ready = prepare_requests(&base, connections, enquiries, 200_000_000).await;
    let (mut saving, wall, cpu) = measured(pid, save_requests(&base, connections, ready)).await;
    saving.report("helpline, enquiry-creating steps only", wall);
    println!(
        "  enquiries stored and spoken: {} = {:.0}/s; service CPU {cpu:.0}% of one core",
        saving.enquiries,
        saving.enquiries as f64 / wall.as_secs_f64(),
    );

    let in_progress = env_number("HELPLINE_SURGE_IN_PROGRESS", 10_000);
    let memory = calls_in_progress(pid, &base, connections, in_progress, 300_000_000).await;
    let (_, peak) = usage(pid).unwrap_or_default();
    println!(
        "  memory with {in_progress} calls in progress: {:.1} MiB resident; peak over the whole run {:.1} MiB",
        memory as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
    drop(service);

    // The trivial handler: fixed TwiML, no signature check, no database.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let trivial_base = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(|| async { ([("content-type", "text/xml")], TRIVIAL_TWIML) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (mut trivial, wall) = drive(&trivial_base, connections, seconds, Mix::Trivial, 1).await;
    let trivial_rps = trivial.report("trivial axum handler (fixed TwiML)", wall);
    println!(
        "ratio: helpline's menu steps at {:.0}% of the trivial handler's requests per second",
        menu_rps / trivial_rps.max(1.0) * 100.0
    );
    Ok(())
}

/// Runs `work`, with the service's CPU use over it (% of one core).
async fn measured(
    pid: u32,
    work: impl std::future::Future<Output = (Tally, Duration)>,
) -> (Tally, Duration, f64) {
    let before = usage(pid).unwrap_or_default();
    let (tally, wall) = work.await;
    let after = usage(pid).unwrap_or_default();
    let cpu = (after.0 - before.0) / wall.as_secs_f64() * 100.0;
    (tally, wall, cpu)
}

/// Walks `count` calls (numbered from `first`) up to the last question of a call-back
/// request, untimed; the action URL of each call's enquiry-creating step.
async fn prepare_requests(
    base: &str,
    connections: u64,
    count: u64,
    first: u64,
) -> Vec<(u64, String)> {
    let base = base.to_string();
    let (tally, _) = workers(
        connections,
        first,
        move |n| n < first + count,
        move |client, n, mut tally| {
            let base = base.clone();
            async move {
                let before_record = &CALLBACK_KEYS[..CALLBACK_KEYS.len() - 1];
                if let Some(url) = walk(&client, &base, n, before_record, &mut tally)
                    .await
                    .as_deref()
                    .and_then(action)
                {
                    tally.ready.push((n, url));
                }
                tally
            }
        },
    )
    .await;
    tally.ready
}

/// The enquiry-creating steps of the `ready` calls, `connections` at a time, timed.
async fn save_requests(
    base: &str,
    connections: u64,
    ready: Vec<(u64, String)>,
) -> (Tally, Duration) {
    let base = base.to_string();
    let ready = Arc::new(ready);
    let count = ready.len() as u64;
    workers(
        connections,
        0,
        move |i| i < count,
        move |client, i, mut tally| {
            let (base, ready) = (base.clone(), ready.clone());
            async move {
                let Some((n, url)) = ready.get(i as usize) else {
                    return tally;
                };
                let params = call_params(*n, &[("RecordingDuration", "0")]);
                if let Some(twiml) = post(&client, &base, url, &params, &mut tally).await {
                    if twiml.contains("reference number") {
                        tally.enquiries += 1;
                    }
                }
                tally
            }
        },
    )
    .await
}

/// Starts `count` calls that stay in progress (the greeting, then into the call-back
/// questions) and returns the service's resident memory (KiB) with all of them going on.
async fn calls_in_progress(pid: u32, base: &str, connections: u64, count: u64, first: u64) -> u64 {
    let base = base.to_string();
    workers(
        connections,
        first,
        move |n| n < first + count,
        move |client, n, mut tally| {
            let base = base.clone();
            async move {
                let _ = walk(&client, &base, n, &["2", "1"], &mut tally).await;
                tally
            }
        },
    )
    .await;
    resident(pid).unwrap_or_default()
}

/// Resident memory (KiB) of a process now, from /proc.
fn resident(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
