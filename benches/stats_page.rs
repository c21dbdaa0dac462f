//! The statistics benchmark: how long the managers' statistics page takes for the last 30
//! days over a million calls on the SQLite default (the target is under 200 ms).
//!
//! ```text
//! cargo bench --bench stats_page
//! ```
//!
//! Seeds a throwaway SQLite database with `helpline dev seed`'s made-up line
//! (`HELPLINE_BENCH_CALLS`, default 1,000,000 calls over the last 90 days, about 200,000
//! enquiries), rolls up the finished days as `serve` does in the background, starts the
//! real service on it, signs in as a manager (password and second factor, over HTTP), and
//! then asks for `/stats?period=30d` `HELPLINE_BENCH_RUNS` times (default 20), printing
//! each phase's time and the page's median, 90th percentile and slowest time. The same for
//! `/api/stats` and for the figures alone (`stats::compute`, in process).
//!
//! `HELPLINE_BENCH_DATABASE=/path/bench.db` keeps the seeded database there and reuses it
//! on the next run (the seed takes about a minute); without it, a temporary file is used.
//! Timings are wall-clock on this machine, printed, never asserted: see
//! docs/performance.md for the figures recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use helpline::app::App;
use helpline::clock::{Clock, SystemClock};
use helpline::config::Config;
use helpline::staff::{accounts, totp, Role};

const PASSWORD: &str = "a benchmark passphrase, long enough";
const EMAIL: &str = "bench-manager@example.nhs.uk";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Median, 90th percentile (nearest rank) and slowest.
fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let pick = |p: usize| times[((p * times.len()).div_ceil(100)).max(1) - 1];
    format!(
        "median {}, p90 {}, slowest {} ({} runs)",
        ms(pick(50)),
        ms(pick(90)),
        ms(pick(100)),
        times.len()
    )
}

/// Keeps the session cookie; follows no redirects.
struct Session {
    client: reqwest::Client,
    base: String,
    cookie: String,
}

impl Session {
    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?)
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<String> {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form)?)
            .send()
            .await?;
        self.keep_cookie(&res);
        Ok(res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string())
    }

    fn keep_cookie(&mut self, res: &reqwest::Response) {
        if let Some(c) = res
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
        {
            self.cookie = c.to_string();
        }
    }

    async fn csrf(&mut self, path: &str) -> anyhow::Result<String> {
        let res = self.get(path).await?;
        self.keep_cookie(&res);
        let body = res.text().await?;
        let marker = "name=\"csrf\" value=\"";
        let start = body
            .find(marker)
            .ok_or_else(|| anyhow::anyhow!("no sign-in form at {path}"))?
            + marker.len();
        Ok(body[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_string())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls = env_number("HELPLINE_BENCH_CALLS", 1_000_000);
    let runs = env_number("HELPLINE_BENCH_RUNS", 20).max(1) as usize;
    let temp = tempfile::tempdir()?;
    let path = std::env::var("HELPLINE_BENCH_DATABASE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| temp.path().join("bench.db"));
    let url = format!("sqlite://{}", path.display());
    let pairs = [
        ("HELPLINE_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", url.as_str()),
        ("TWILIO_AUTH_TOKEN", "bench-token"),
        ("HELPLINE_PUBLIC_URL", "https://helpline.example.nhs.uk"),
        ("HELPLINE_BANK_HOLIDAYS_URL", "off"),
    ];
    let config = Config::from_pairs(&pairs)?;
    println!(
        "statistics benchmark: {} ({} cores)",
        path.display(),
        num_cpus()
    );

    let now = Utc::now();
    let store = helpline::store::connect(&url).await?;
    if store
        .call_facts(
            now - chrono::Duration::days(91),
            now,
            helpline::store::stats::Ended::ALL,
        )
        .await?
        .is_empty()
    {
        let began = Instant::now();
        let report = helpline::dev::seed::seed(&url, calls, 90, now).await?;
        println!("seed: {report} ({})", ms(began.elapsed()));
    } else {
        println!("seed: reusing the calls already in {}", path.display());
    }
    let flow = helpline::app::load_flow(&config)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hours = helpline::app::live_hours(&config, store.as_ref(), clock.clone()).await?;
    let began = Instant::now();
    let days =
        helpline::stats::rollup::roll_up(store.as_ref(), &flow, &hours.get(), now, 91).await?;
    println!(
        "roll-up of finished days (as serve does hourly): {days} days checked in {}",
        ms(began.elapsed())
    );

    // The figures alone, in process.
    let today = now.with_timezone(&helpline::hours::LONDON).date_naive();
    let (since, until) = helpline::stats::last_days(today, 30);
    let period = helpline::stats::Period::new(since, until, None)?;
    let thresholds = helpline::stats::Thresholds::default();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let began = Instant::now();
        last = Some(
            helpline::stats::compute(
                store.as_ref(),
                &flow,
                &hours.get(),
                &period,
                thresholds,
                clock.now(),
            )
            .await?,
        );
        times.push(began.elapsed());
    }
    if let Some(s) = &last {
        println!(
            "period {since} to {until}: {} calls, {} enquiries, {} abandoned in the queue",
            s.calls.total,
            s.enquiries.total,
            s.abandoned_calls.len()
        );
    }
    println!("figures (stats::compute, last 30 days): {}", summary(times));

    // The real service, a manager signed in, the page over HTTP.
    let app = App::build(&config, clock.clone(), false).await?;
    let addr = app.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let mut user = match accounts::add(store.as_ref(), EMAIL, Role::Manager, None, now).await {
        Ok((created, _)) => created,
        Err(_) => store
            .user_by_email(EMAIL)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the benchmark manager could not be made"))?,
    };
    let secret = totp::new_secret();
    user.password_hash = Some(helpline::staff::password::hash(PASSWORD)?);
    user.totp_secret = Some(secret.clone());
    user.setup_token_hash = None;
    store.update_user(&user).await?;
    let mut session = Session {
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        base: format!("http://{addr}"),
        cookie: String::new(),
    };
    let csrf = session.csrf("/login").await?;
    session
        .post(
            "/login",
            &[("email", EMAIL), ("password", PASSWORD), ("csrf", &csrf)],
        )
        .await?;
    let csrf = session.csrf("/login/code").await?;
    let code =
        totp::code_at(&secret, clock.now()).ok_or_else(|| anyhow::anyhow!("no TOTP code"))?;
    let landed = session
        .post("/login/code", &[("code", &code), ("csrf", &csrf)])
        .await?;
    anyhow::ensure!(
        landed == "/",
        "the manager could not sign in (sent to {landed:?})"
    );

    for (name, path) in [
        ("page (/stats?period=30d)", "/stats?period=30d"),
        ("JSON (/api/stats?period=30d)", "/api/stats?period=30d"),
    ] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            let began = Instant::now();
            let res = session.get(path).await?;
            let status = res.status();
            let body = res.bytes().await?;
            times.push(began.elapsed());
            anyhow::ensure!(status.is_success(), "{path} answered {status}");
            size = body.len();
        }
        println!("{name}: {} — {} KiB", summary(times), size / 1024);
    }
    let _ = stop.send(());
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
