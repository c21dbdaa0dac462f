//! The surge benchmark (issue 7): the real service, on SQLite, under many concurrent
//! simulated calls walking whole journeys, every request signed as Twilio signs it —
//! compared in the same run with a trivial axum handler answering a fixed TwiML string.
//!
//! ```text
//! cargo bench --bench surge
//! ```
//!
//! Starts `helpline serve` (the release binary) as a child process on a throwaway SQLite
//! file, then runs `HELPLINE_SURGE_CONNECTIONS` workers (default 50) for
//! `HELPLINE_SURGE_SECONDS` (default 15). Each worker plays calls from a different number:
//! the greeting, then one of — the latest update (1), fraud guidance (3), or a call-back
//! request (2, confirm the number, hospital, subject, no message: the enquiry is stored and
//! its reference spoken) — then the call's end (status callback), following the action
//! URLs in the TwiML as Twilio does. It prints webhook requests per second, p50/p99/max
//! latency, enquiries stored per second, the service's CPU use and peak memory (from
//! /proc), and the same request figures for the trivial handler (in this process, on the
//! same machine, same client) with the ratio between the two. Wall-clock figures, printed,
//! never asserted: docs/performance.md records them.

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
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.enquiries += other.enquiries;
        self.errors += other.errors;
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

/// One caller's whole journey.
async fn journey(client: &reqwest::Client, base: &str, n: u64, tally: &mut Tally) {
    let sid = format!("CA{n:032x}");
    let from = format!("+4477009{:05}", n % 100_000);
    let params = |extra: &[(&str, &str)]| {
        let mut p: Vec<(String, String)> = vec![
            (
                "AccountSid".into(),
                "AC00000000000000000000000000000000".into(),
            ),
            ("CallSid".into(), sid.clone()),
            ("CallStatus".into(), "in-progress".into()),
            ("From".into(), from.clone()),
            ("To".into(), "+441517063602".into()),
        ];
        p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        p
    };
    let keys: &[&str] = match n % 3 {
        0 => &["1"],
        1 => &["3"],
        _ => &["2", "1", "1", "1", "record"],
    };
    let Some(mut twiml) = post(
        client,
        base,
        &format!("{PUBLIC}/twilio/voice"),
        &params(&[]),
        tally,
    )
    .await
    else {
        return;
    };
    for key in keys {
        let Some(url) = action(&twiml) else { break };
        let extra: Vec<(&str, &str)> = if *key == "record" {
            vec![("RecordingDuration", "0")]
        } else {
            vec![("Digits", key)]
        };
        match post(client, base, &url, &params(&extra), tally).await {
            Some(next) => twiml = next,
            None => return,
        }
        if *key == "record" && twiml.contains("reference number") {
            tally.enquiries += 1;
        }
    }
    let end = params(&[("CallDuration", "60")])
        .into_iter()
        .map(|(k, v)| {
            if k == "CallStatus" {
                (k, "completed".into())
            } else {
                (k, v)
            }
        })
        .collect::<Vec<_>>();
    let _ = post(
        client,
        base,
        &format!("{PUBLIC}/twilio/status"),
        &end,
        tally,
    )
    .await;
}

/// `connections` workers playing journeys (or, `trivial`, posting to `/`) for `seconds`.
async fn drive(base: &str, connections: u64, seconds: u64, trivial: bool) -> (Tally, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections as usize)
        .build()
        .expect("an HTTP client");
    let next = Arc::new(AtomicU64::new(1));
    let stop = Instant::now() + Duration::from_secs(seconds);
    let began = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, base, next) = (client.clone(), base.to_string(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < stop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if trivial {
                    let params = vec![("CallSid".to_string(), format!("CA{n:032x}"))];
                    let _ = post(&client, &base, &format!("{PUBLIC}/"), &params, &mut tally).await;
                } else {
                    journey(&client, &base, n, &mut tally).await;
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for w in workers {
        if let Ok(t) = w.await {
            all.add(t);
        }
    }
    (all, began.elapsed())
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

    let before = usage(service.0.id()).unwrap_or_default();
    let (mut real, wall) = drive(&base, connections, seconds, false).await;
    let after = usage(service.0.id()).unwrap_or_default();
    let real_rps = real.report("helpline (whole journeys, signed)", wall);
    println!(
        "  enquiries stored and spoken: {} = {:.0}/s; service CPU {:.0}% of one core; peak memory {:.1} MiB",
        real.enquiries,
        real.enquiries as f64 / wall.as_secs_f64(),
        (after.0 - before.0) / wall.as_secs_f64() * 100.0,
        after.1 as f64 / 1024.0,
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
    let (mut trivial, wall) = drive(&trivial_base, connections, seconds, true).await;
    let trivial_rps = trivial.report("trivial axum handler (fixed TwiML)", wall);
    println!(
        "ratio: helpline serves {:.0}% of the trivial handler's requests per second",
        real_rps / trivial_rps.max(1.0) * 100.0
    );
    Ok(())
}
