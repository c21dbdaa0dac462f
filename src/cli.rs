//! The command line: `helpline serve | hours | flows check | simulate | enquiries list | purge | …`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::app::{self, App};
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::config::Config;
use crate::hours::live::freshness_warning;
use crate::hours::refresh::Outcome;
use crate::hours::{division_key, Closure, ClosureKind, LONDON};
use crate::store::NewClosure;
use chrono::Datelike;

#[derive(Debug, Parser)]
#[command(
    name = "helpline",
    version,
    about = "Backend of the cyber-incident enquiry line 0151 706 3602: Twilio voice webhooks, opening hours, callback requests",
    long_about = None
)]
pub struct Cli {
    /// TOML configuration file (also HELPLINE_CONFIG); environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook service (HELPLINE_LISTEN, DATABASE_URL, TWILIO_AUTH_TOKEN, HELPLINE_PUBLIC_URL,
    /// HELPLINE_DATA_KEY…).
    Serve {
        /// Development only: accept unsigned webhooks when TWILIO_AUTH_TOKEN is unset (warns on every
        /// request); on PostgreSQL without HELPLINE_DATA_KEY, encrypt with the published development key.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Create or upgrade the database schema (DATABASE_URL) and encrypt any callers' numbers
    /// still stored in plain text (needs the data key, HELPLINE_DATA_KEY); safe while other
    /// instances run.
    Migrate,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Is the line open at an instant, why, and when does it next open?
    Hours {
        /// The instant, RFC 3339 (e.g. 2026-12-24T15:59:59Z or 2026-06-17T09:00:00+01:00); default now.
        #[arg(long, value_parser = parse_instant)]
        at: Option<DateTime<Utc>>,
        /// Print JSON: {"open", "reason", "next_open"}.
        #[arg(long)]
        json: bool,
    },
    /// Call-flow tools.
    Flows {
        #[command(subcommand)]
        command: FlowsCommand,
    },
    /// Play a call against the real flow engine without Twilio.
    ///
    /// INPUTs are key presses (1, 07700900123#), say:<words> for speech (or a spoken
    /// message at the recording step), none for silence; at the queue, 1 leaves for a
    /// call back, bridged or hangup end the wait. Interactive when no INPUT is given.
    Simulate {
        /// The instant the call happens, RFC 3339.
        #[arg(long, value_parser = parse_instant)]
        at: DateTime<Utc>,
        /// The caller's number as Twilio would send it ("anonymous" for a withheld number).
        #[arg(long, default_value = "+447700900123")]
        from: String,
        /// Keep the simulated call in this database instead of a throwaway in-memory one.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        inputs: Vec<String>,
    },
    /// Callback requests.
    Enquiries {
        #[command(subcommand)]
        command: EnquiriesCommand,
    },
    /// Enquiry statistics for a period (the figures of the managers' statistics page).
    Stats {
        /// First day, YYYY-MM-DD (Europe/London).
        #[arg(long)]
        since: String,
        /// Last day, included, YYYY-MM-DD (Europe/London).
        #[arg(long)]
        until: String,
        /// Only one hospital: alder-hey, liverpool-heart-and-chest, royal-liverpool or not-sure.
        #[arg(long)]
        trust: Option<String>,
        /// JSON (the same as GET /api/stats); without it, a short summary.
        #[arg(long)]
        json: bool,
    },
    /// Developer tools (test data for benchmarks).
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Staff accounts for the dashboard (there are no default accounts).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The audit log of staff actions.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The bank-holiday calendar (GOV.UK feed, stored copy, embedded snapshot).
    Holidays {
        #[command(subcommand)]
        command: HolidaysCommand,
    },
    /// Closures and special openings (stored in DATABASE_URL; every instance applies them at once).
    Closures {
        #[command(subcommand)]
        command: ClosuresCommand,
    },
    /// Delete what is past the retention period (HELPLINE_RETENTION_DAYS, default 90):
    /// enquiries closed that long ago with their call, steps, answers, attempts, notes and
    /// texts; calls without an enquiry that started that long ago; and their recordings at
    /// Twilio. Open enquiries, the audit log and the statistics roll-ups stay. `serve` runs
    /// this daily. Prints counts only; exits 1 when a recording could not be deleted at
    /// Twilio (it is kept and tried again next time).
    Purge {
        /// Show what would go, changing nothing and asking Twilio nothing.
        #[arg(long)]
        dry_run: bool,
        /// JSON: {"dry_run", "retention_days", "cutoff", "removed": {…}, "recordings_deleted", …}.
        #[arg(long)]
        json: bool,
    },
    /// Re-encrypt every caller's number and recording reference under the current data key
    /// (HELPLINE_DATA_KEY), reading older ones with HELPLINE_DATA_KEYS_OLD: the step after
    /// a key rotation (docs/SECURITY.md, "Data keys"). Also encrypts anything still in plain
    /// text. Safe while the service runs; prints counts by key id only. Exits 1 when a value
    /// is sealed under a key that is not configured.
    Rekey {
        /// Count what would be re-encrypted, changing nothing.
        #[arg(long)]
        dry_run: bool,
        /// JSON: {"dry_run", "key", "old_keys", "resealed": {…}, "census": {…}}.
        #[arg(long)]
        json: bool,
    },
    /// Data keys (encryption of callers' numbers at rest).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random data key (32 bytes, base64) for HELPLINE_DATA_KEY(_FILE); its id
    /// goes to standard error.
    Generate,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and call flow without starting the service; prints the
    /// settings in force (secrets hidden). Exits 1 naming the setting and the fix.
    Check {
        /// Also connect to the database (and apply pending migrations).
        #[arg(long)]
        connect: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum HolidaysCommand {
    /// Fetch the feed now (HELPLINE_BANK_HOLIDAYS_URL) and print what changed.
    Refresh {
        /// Accept a feed that drops dates (after checking GOV.UK really changed them); it must
        /// still be well-formed and list the division.
        #[arg(long)]
        force: bool,
    },
    /// The bank holidays in force: dates, titles and where they came from.
    List {
        /// Only this year.
        #[arg(long)]
        year: Option<i32>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClosuresCommand {
    /// Close the line from --from (default: now, the emergency switch) until --until; callers hear --reason.
    Add {
        /// RFC 3339; default now.
        #[arg(long, value_parser = parse_instant)]
        from: Option<DateTime<Utc>>,
        /// RFC 3339.
        #[arg(long, value_parser = parse_instant)]
        until: DateTime<Utc>,
        /// What callers hear, e.g. "The line is closed today for staff training".
        #[arg(long)]
        reason: String,
    },
    /// A special opening outside the usual hours (opens even on a weekend or bank holiday).
    Open {
        #[arg(long, value_parser = parse_instant)]
        from: DateTime<Utc>,
        #[arg(long, value_parser = parse_instant)]
        until: DateTime<Utc>,
        /// A note for staff, e.g. "Open after the new announcement".
        #[arg(long)]
        reason: String,
    },
    /// Closures and special openings that have not ended (all with --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove a closure or special opening by its id.
    Remove { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Validate call flows; exits non-zero listing every problem.
    Check {
        /// Directory of flow files.
        #[arg(default_value = "call_flows")]
        dir: PathBuf,
    },
    /// Draws the call flow (nodes and branches) for reviewing a change, on standard output.
    Diagram {
        /// Directory of flow files.
        #[arg(default_value = "call_flows")]
        dir: PathBuf,
        /// svg (laid out, ready to open in a browser) or dot (Graphviz source).
        #[arg(long, default_value = "svg", value_parser = ["svg", "dot"])]
        format: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Fills a database with realistic made-up calls and enquiries, for the statistics
    /// benchmark: spread over the last DAYS days, with a realistic mix of options,
    /// hospitals, hours and outcomes. Never point it at a live database.
    Seed {
        /// How many calls.
        #[arg(long, default_value_t = 1_000_000)]
        calls: u64,
        /// Over how many days before now.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// The database to fill (default: DATABASE_URL).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EnquiriesCommand {
    /// Every enquiry, oldest first (from DATABASE_URL).
    List {
        /// JSON with reference, call_sid, callback_number, trust, category, status, created_at…
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Adds an account and prints its one-time set-up link (valid 24 hours): the person
    /// sets a password, then enrols a second factor at first sign-in.
    Add {
        #[arg(long)]
        email: String,
        /// handler, manager or admin.
        #[arg(long)]
        role: String,
        /// The phone a handler takes calls on (rung for call-backs).
        #[arg(long)]
        phone: Option<String>,
    },
    /// Every account.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disables an account (by e-mail or id) and ends its sessions.
    Disable { who: String },
    /// Enables a disabled account.
    Enable { who: String },
    /// Starts a password reset: prints a new set-up link (the second factor is kept).
    Reset { who: String },
    /// Changes an account's role and ends its sessions.
    Role { who: String, role: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Writes the audit log as CSV to standard output, oldest first.
    Export {
        /// From this date (YYYY-MM-DD, UTC) or instant (RFC 3339).
        #[arg(long, value_name = "DATE")]
        since: String,
        /// Up to (not including) this date or instant.
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
    },
}

/// A date (midnight UTC) or an RFC 3339 instant.
fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| format!("`{s}` is not a date"));
    }
    parse_instant(s).map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD) or an RFC 3339 instant"))
}

async fn users(
    config: &Config,
    command: UsersCommand,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    use crate::staff::accounts::{self, Change};
    let store = crate::store::open(config, false).await?;
    let now = Utc::now();
    let system = |action, target: &str, detail: Option<&str>| crate::staff::audit::NewEntry {
        at: now,
        actor_id: None,
        actor: "system (command line)".into(),
        action,
        target: Some(target.to_string()),
        address: None,
        detail: detail.map(str::to_string),
    };
    match command {
        UsersCommand::Add { email, role, phone } => {
            let role: crate::staff::Role = role.parse()?;
            let (user, token) =
                accounts::add(store.as_ref(), &email, role, phone.as_deref(), now).await?;
            store
                .append_audit(&system(
                    crate::staff::audit::Action::AccountCreated,
                    &user.id,
                    Some(role.as_str()),
                ))
                .await?;
            println!("added {} ({})", user.email, user.role);
            println!(
                "one-time set-up link (valid {} hours):",
                crate::staff::SetupToken::LIFETIME_HOURS
            );
            println!("{}", token.link(&config.public_url));
        }
        UsersCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                let list: Vec<_> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({"id": u.id, "email": u.email, "role": u.role, "disabled": u.disabled,
                            "set_up": u.password_hash.is_some(), "second_factor": u.totp_secret.is_some()})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if users.is_empty() {
                println!("no accounts: add one with `helpline users add --email … --role admin`");
            } else {
                for u in users {
                    let state = if u.disabled {
                        "disabled"
                    } else if u.password_hash.is_none() {
                        "waiting for set-up"
                    } else {
                        "active"
                    };
                    println!("{:<40} {:<8} {:<20} {}", u.email, u.role, state, u.id);
                }
            }
        }
        other => {
            let (who, change, action) = match other {
                UsersCommand::Disable { who } => (
                    who,
                    Change::Disable,
                    crate::staff::audit::Action::AccountDisabled,
                ),
                UsersCommand::Enable { who } => (
                    who,
                    Change::Enable,
                    crate::staff::audit::Action::AccountEnabled,
                ),
                UsersCommand::Reset { who } => (
                    who,
                    Change::ResetPassword,
                    crate::staff::audit::Action::PasswordReset,
                ),
                UsersCommand::Role { who, role } => (
                    who,
                    Change::Role(role.parse()?),
                    crate::staff::audit::Action::RoleChanged,
                ),
                UsersCommand::Add { .. } | UsersCommand::List { .. } => {
                    return Ok(ExitCode::FAILURE)
                }
            };
            let mut user = accounts::find(store.as_ref(), &who).await?;
            let token = accounts::change(store.as_ref(), &mut user, &change, now).await?;
            store.append_audit(&system(action, &user.id, None)).await?;
            println!("{}: {}", user.email, action.as_str());
            if let Some(t) = token {
                println!(
                    "one-time set-up link (valid {} hours):",
                    crate::staff::SetupToken::LIFETIME_HOURS
                );
                println!("{}", t.link(&config.public_url));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 instant ({e}); e.g. 2026-12-24T15:59:59Z"))
}

#[derive(Debug, Serialize)]
struct HoursJson {
    open: bool,
    reason: String,
    next_open: Option<String>,
}

/// Runs the parsed command; errors are printed here with their fix.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config = || Config::from_env(cli.config.as_deref());
    match cli.command {
        Command::Serve { insecure_dev } => {
            let config = config()?;
            let app = App::build(&config, Arc::new(SystemClock), insecure_dev).await?;
            tracing::info!(addr = %app.local_addr()?, public_url = %config.public_url, "helpline listening");
            app.run_until(shutdown_signal()).await?;
            tracing::info!("helpline stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let config = config()?;
            crate::store::open(&config, false).await?;
            println!(
                "database {} is up to date",
                crate::store::redact_url(&config.database_url)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check { connect },
        } => {
            let config = config()?;
            let flow = app::load_flow(&config)?;
            println!("configuration OK");
            println!("  listen              {}", config.listen);
            println!("  public URL          {}", config.public_url);
            println!(
                "  database            {}",
                crate::store::redact_url(&config.database_url)
            );
            println!(
                "  Twilio auth token   {}",
                if config.twilio_auth_token.is_some() {
                    "set (hidden)"
                } else {
                    "NOT SET: serve will refuse to start without --insecure-dev"
                }
            );
            println!(
                "  voice               {} ({})",
                config.voice, config.language
            );
            println!("  weekly hours        {}", config.schedule);
            println!("  retention           {} days", config.retention_days);
            println!("  data key            {}", describe_data_key(&config)?);
            println!(
                "  enquiry outbox      {} (at most {} records)",
                config.outbox_dir.display(),
                config.outbox_max_records
            );
            println!(
                "  bank holidays       {} from {}",
                division_key(config.division),
                config
                    .bank_holidays_url
                    .as_deref()
                    .unwrap_or("(refresh off)")
            );
            println!(
                "  call flow           {} ({} nodes)",
                flow.source,
                flow.nodes.len()
            );
            if connect {
                crate::store::open(&config, false).await?;
                println!("  database reachable and migrated");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Hours { at, json } => {
            let config = config()?;
            let at = at.unwrap_or_else(|| SystemClock.now());
            let store = crate::store::open(&config, false).await?;
            let hours = app::live_hours(&config, store.as_ref(), Arc::new(SystemClock))
                .await?
                .get();
            let status = hours.status(at);
            let next = status.next_open.map(|t| t.to_rfc3339());
            if json {
                let out = HoursJson {
                    open: status.open,
                    reason: status.reason.describe(),
                    next_open: next,
                };
                println!("{}", serde_json::to_string(&out)?);
            } else {
                let local = at.with_timezone(&LONDON).format("%A %-d %B %Y %H:%M:%S %Z");
                if status.open {
                    let closes = status
                        .closes_at
                        .map(|t| t.format("%A %H:%M %Z").to_string())
                        .unwrap_or_default();
                    println!(
                        "{local}: OPEN ({}); closes {closes}",
                        status.reason.describe()
                    );
                } else {
                    let next = status
                        .next_open
                        .map(|t| {
                            format!("{} ({})", t.format("%A %-d %B %Y %H:%M %Z"), t.to_rfc3339())
                        })
                        .unwrap_or_else(|| "not within the calendar".into());
                    println!(
                        "{local}: CLOSED ({}); next opens {next}",
                        status.reason.describe()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Flows {
            command: FlowsCommand::Check { dir },
        } => match crate::flows::load_dir(&dir) {
            Ok(flow) => {
                println!(
                    "{}: OK: {} nodes, starting at `{}`",
                    dir.display(),
                    flow.nodes.len(),
                    flow.settings.start
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprint!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Flows {
            command: FlowsCommand::Diagram { dir, format },
        } => match crate::flows::load_dir(&dir) {
            Ok(flow) => {
                let drawn = match format.as_str() {
                    "dot" => crate::flows::diagram::dot(&flow, None),
                    _ => crate::flows::diagram::svg(&flow, None),
                };
                println!("{drawn}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprint!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Stats {
            since,
            until,
            trust,
            json,
        } => {
            let config = config()?;
            let day = |s: &str| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| format!("`{s}` is not a date: write it as YYYY-MM-DD"))
            };
            let trust = trust
                .as_deref()
                .map(str::parse::<crate::enquiries::Trust>)
                .transpose()?;
            let period = crate::stats::Period::new(day(&since)?, day(&until)?, trust)?;
            let store = crate::store::open_with_replica(&config, false).await?;
            let flow = crate::app::load_flow(&config)?;
            let clock: Arc<dyn crate::clock::Clock> = Arc::new(SystemClock);
            let hours = crate::app::live_hours(&config, store.as_ref(), clock.clone()).await?;
            let stats = crate::stats::compute(
                store.as_ref(),
                &flow,
                &hours.get(),
                &period,
                config.dashboard.thresholds(),
                clock.now(),
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                let q = &stats.queue;
                let pct =
                    |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0));
                println!("{} to {}", period.since, period.until);
                println!(
                    "calls: {} ({} in hours, {} out of hours)",
                    stats.calls.total, stats.calls.in_hours, stats.calls.out_of_hours
                );
                for c in &stats.choices.options {
                    println!("  {:<20} {:>7} ({})", c.label, c.calls, pct(c.share));
                }
                println!(
                    "enquiries: {} ({} open, {} closed)",
                    stats.enquiries.total, stats.enquiries.open, stats.enquiries.closed
                );
                println!(
                    "called back within the promise: {}; first attempt median {} working minutes",
                    pct(stats.callbacks.within_promise_share),
                    stats
                        .callbacks
                        .first_attempt_minutes_median
                        .map_or("—".into(), |m| m.to_string())
                );
                println!(
                    "queue: {} offered, {} answered, abandonment {}, service level {}",
                    q.offered,
                    q.answered,
                    pct(q.abandonment_rate),
                    pct(q.service_level)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dev {
            command:
                DevCommand::Seed {
                    calls,
                    days,
                    database,
                },
        } => {
            let config = config()?;
            let url = database.unwrap_or_else(|| config.database_url.clone());
            // The configured keys (so that `serve` reads what was seeded); else the
            // development defaults.
            let keys = crate::store::key_options(&config, true);
            let now = Utc::now();
            let report = crate::dev::seed::seed_with_keys(&url, &keys, calls, days, now).await?;
            println!("{report}");
            // The daily roll-ups `serve` would make in the background, made now so that
            // the statistics are timed as a running service serves them.
            let began = std::time::Instant::now();
            let store = crate::store::connect_keyed(&url, None, &keys).await?;
            let flow = crate::app::load_flow(&config)?;
            let hours =
                crate::app::live_hours(&config, store.as_ref(), Arc::new(SystemClock)).await?;
            let covered = crate::stats::rollup::roll_up(
                store.as_ref(),
                &flow,
                &hours.get(),
                now,
                i64::from(days) + 1,
            )
            .await?;
            println!(
                "statistics rolled up for {covered} days in {:.1} s",
                began.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate {
            at,
            from,
            database,
            inputs,
        } => {
            let config = config()?;
            let store = crate::store::connect_keyed(
                database.as_deref().unwrap_or("sqlite::memory:"),
                None,
                &crate::store::key_options(&config, true),
            )
            .await?;
            let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(at));
            let calls = app::calls(&config, store, clock, true).await?;
            let status = calls.hours.get().status(at);
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "Simulated call from {from} at {} — the line is {} ({})",
                at.with_timezone(&LONDON).format("%A %-d %B %Y %H:%M %Z"),
                if status.open { "open" } else { "closed" },
                status.reason.describe()
            )?;
            let from = (!from.is_empty()).then_some(from);
            let mut stdin = std::io::stdin().lock();
            crate::simulate::run(&calls, from, inputs, &mut stdin, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Holidays { command } => holidays(config()?, command).await,
        Command::Closures { command } => closures(config()?, command).await,
        Command::Purge { dry_run, json } => purge(&config()?, dry_run, json).await,
        Command::Rekey { dry_run, json } => rekey(&config()?, dry_run, json).await,
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            let (key, text) = crate::crypto::DataKey::generate();
            eprintln!(
                "a new data key (id {}): keep it secret, e.g. in the file HELPLINE_DATA_KEY_FILE names",
                key.id()
            );
            println!("{}", text.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Users { command } => users(&config()?, command).await,
        Command::Audit {
            command: AuditCommand::Export { since, until },
        } => {
            let config = config()?;
            let store = crate::store::open(&config, false).await?;
            let query = crate::staff::audit::Query {
                since: Some(parse_since(&since)?),
                until: until.as_deref().map(parse_since).transpose()?,
                limit: i64::MAX,
                ..Default::default()
            };
            let mut entries = store.audit_entries(&query).await?;
            entries.reverse();
            crate::staff::audit::write_csv(&entries, std::io::stdout().lock())?;
            store
                .append_audit(&crate::staff::audit::NewEntry {
                    at: Utc::now(),
                    actor_id: None,
                    actor: "system (command line)".into(),
                    action: crate::staff::audit::Action::AuditExported,
                    target: None,
                    address: None,
                    detail: None,
                })
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Enquiries {
            command: EnquiriesCommand::List { json },
        } => {
            let config = config()?;
            let store = crate::store::open(&config, false).await?;
            let enquiries = store.list_enquiries().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&enquiries)?);
            } else if enquiries.is_empty() {
                println!("no enquiries");
            } else {
                println!(
                    "{:<9} {:<24} {:<14} {:<26} {:<22} status",
                    "reference", "created (UTC)", "number", "trust", "category"
                );
                for e in enquiries {
                    let masked = crate::phone::UkNumber::parse(&e.callback_number)
                        .map(|n| n.masked())
                        .unwrap_or_else(|| "(invalid)".into());
                    println!(
                        "{:<9} {:<24} {:<14} {:<26} {:<22} {}",
                        e.reference,
                        e.created_at.format("%Y-%m-%d %H:%M:%S"),
                        masked,
                        e.trust,
                        e.category,
                        e.status
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn purge(
    config: &Config,
    dry_run: bool,
    json: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let store = crate::store::open(config, false).await?;
    let twilio = app::twilio_api(config)?;
    let flow = app::load_flow(config)?;
    let hours = app::live_hours(config, store.as_ref(), Arc::new(SystemClock))
        .await?
        .get();
    let report = crate::purge::run(
        store.as_ref(),
        twilio.as_ref(),
        config.retention_days,
        SystemClock.now(),
        dry_run,
        Some(crate::purge::RollUp {
            flow: &flow,
            hours: &hours,
        }),
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let r = &report.removed;
        println!(
            "retention {} days: enquiries closed, and calls without an enquiry started, before {}",
            report.retention_days,
            report
                .cutoff
                .with_timezone(&LONDON)
                .format("%-d %B %Y %H:%M %Z")
        );
        println!(
            "{}",
            if report.dry_run {
                "would delete (dry run: nothing changed):"
            } else {
                "deleted:"
            }
        );
        for (what, n) in [
            ("enquiries", r.enquiries),
            ("calls", r.calls),
            ("call steps", r.call_steps),
            ("call answers", r.call_answers),
            ("call-back attempts", r.callback_attempts),
            ("notes", r.enquiry_notes),
            ("texts sent", r.texts_sent),
            ("recordings", r.recordings),
        ] {
            println!("  {what:<20} {n:>8}");
        }
        if !report.dry_run {
            println!(
                "recordings deleted at Twilio: {} ({} already gone), failed: {}",
                report.recordings_deleted, report.recordings_already_gone, report.recordings_failed
            );
        }
        println!(
            "recordings waiting for Twilio{}: {}",
            if report.dry_run { " after a purge" } else { "" },
            report.recordings_pending
        );
    }
    if report.recordings_failed > 0 {
        eprintln!(
            "warning: {} recording(s) could not be deleted at Twilio; they are kept and tried again at the next purge",
            report.recordings_failed
        );
        return Ok(ExitCode::FAILURE);
    }
    let twilio_set = config.twilio_account_sid.is_some() && config.twilio_auth_token.is_some();
    if !report.dry_run && report.recordings_pending > 0 && !twilio_set {
        eprintln!(
            "warning: {} recording(s) wait to be deleted at Twilio: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
            report.recordings_pending
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `helpline rekey`: every personal value re-sealed under the current data key.
async fn rekey(
    config: &Config,
    dry_run: bool,
    json: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let report = crate::store::rekey(
        &config.database_url,
        &crate::store::key_options(config, false),
        dry_run,
    )
    .await?;
    let r = &report.resealed;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let old = if report.old_keys.is_empty() {
            "none".to_string()
        } else {
            report.old_keys.join(", ")
        };
        println!("current data key {}; older keys: {old}", report.key);
        println!(
            "{} under {}: {} calls, {} enquiries, {} call answers, {} recordings queued for deletion",
            if report.dry_run {
                "would re-encrypt (dry run: nothing changed)"
            } else {
                "re-encrypted"
            },
            report.key,
            r.calls,
            r.enquiries,
            r.call_answers,
            r.recording_deletions
        );
        println!("stored values by key:");
        for (key, n) in report.census.totals() {
            let what = if key == report.key {
                "(current)"
            } else if key == "plaintext" {
                "(not encrypted)"
            } else if report.old_keys.contains(&key) {
                "(older key)"
            } else {
                "(NOT CONFIGURED)"
            };
            println!("  {key:<10} {what:<16} {n:>10}");
        }
    }
    if r.unreadable > 0 {
        eprintln!(
            "error: {} value(s) could not be decrypted{}: add the key(s) to HELPLINE_DATA_KEYS_OLD and run `helpline rekey` again",
            r.unreadable,
            if r.unknown_keys.is_empty() {
                String::new()
            } else {
                format!(" (sealed under key {})", r.unknown_keys.join(", "))
            }
        );
        return Ok(ExitCode::FAILURE);
    }
    let left: u64 = report
        .census
        .totals()
        .iter()
        .filter(|(k, _)| **k != report.key)
        .map(|(_, n)| n)
        .sum();
    if !report.dry_run && left == 0 && !report.old_keys.is_empty() && !json {
        println!(
            "nothing is left under an older key: remove {} from HELPLINE_DATA_KEYS_OLD and restart",
            report.old_keys.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How the data key is set, for `config check` (never the key: its id).
fn describe_data_key(config: &Config) -> Result<String, Box<dyn std::error::Error>> {
    let old = config.data_keys.old_keys()?;
    let old = if old.is_empty() {
        String::new()
    } else {
        format!(
            "; older keys {}",
            old.iter().map(|k| k.id()).collect::<Vec<_>>().join(", ")
        )
    };
    if let Some(ring) = config.data_keys.keyring()? {
        return Ok(format!(
            "{} (key {}){old}",
            config.data_keys.current_place,
            ring.current_id()
        ));
    }
    if let Some(file) = crate::config::default_key_file(&config.database_url) {
        let state = if file.exists() {
            crate::crypto::read_key_file(&file, "the data key file")
                .map(|k| format!("key {}", k.id()))?
        } else {
            "made at the first start".to_string()
        };
        return Ok(format!(
            "key file {} ({state}; no HELPLINE_DATA_KEY){old}",
            file.display()
        ));
    }
    if config.database_url.starts_with("sqlite:") {
        return Ok("a random key for the in-memory database".into());
    }
    Ok(
        "NOT SET: PostgreSQL needs HELPLINE_DATA_KEY; serve and the commands refuse to start \
        without it (serve --insecure-dev uses the published development key)"
            .into(),
    )
}

async fn holidays(
    config: Config,
    command: HolidaysCommand,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let store = crate::store::open(&config, false).await?;
    let live = app::live_hours(&config, store.as_ref(), Arc::new(SystemClock)).await?;
    match command {
        HolidaysCommand::Refresh { force } => {
            let Some(feed) = app::feed(&config)? else {
                eprintln!("error: bank-holiday refresh is off (HELPLINE_BANK_HOLIDAYS_URL=off)");
                return Ok(ExitCode::FAILURE);
            };
            println!("fetching {}", feed.shown_url());
            let checks = if force {
                crate::hours::feed::Checks::ShapeOnly
            } else {
                crate::hours::feed::Checks::All
            };
            match crate::hours::refresh::refresh_with(
                &feed,
                store.as_ref(),
                &live,
                SystemClock.now(),
                checks,
            )
            .await
            {
                Ok(Outcome::NotModified) => {
                    println!("not modified since the last fetch: the stored calendar is current")
                }
                Ok(Outcome::Unchanged) => println!("fetched: no change to the bank holidays"),
                Ok(Outcome::Updated(diff)) => println!("fetched and stored; changes:\n{diff}"),
                Err(e) => {
                    eprintln!("error: {e}\nthe calendar in force is unchanged");
                    return Ok(ExitCode::FAILURE);
                }
            }
            if let Some(w) = freshness_warning(live.get().holidays(), SystemClock.now()) {
                eprintln!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        HolidaysCommand::List { year, json } => {
            let hours = live.get();
            let holidays = hours.holidays();
            let stored = store.stored_calendar(division_key(live.division())).await?;
            let fetched_at = stored.as_ref().map(|s| s.fetched_at.to_rfc3339());
            let list: Vec<HolidayJson> = holidays
                .iter()
                .filter(|(d, _)| year.is_none_or(|y| d.year() == y))
                .map(|(date, title)| HolidayJson {
                    date: date.to_string(),
                    title: title.to_string(),
                })
                .collect();
            if json {
                let out = HolidaysJson {
                    division: division_key(live.division()).to_string(),
                    source: holidays.source().to_string(),
                    fetched_at,
                    holidays: list,
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "{} bank holidays from {}{}",
                    live.division(),
                    holidays.source(),
                    fetched_at
                        .map(|t| format!(" (fetched {t})"))
                        .unwrap_or_default()
                );
                for h in list {
                    println!("{}  {}", h.date, h.title);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn closures(
    config: Config,
    command: ClosuresCommand,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let store = crate::store::open(&config, false).await?;
    let now = SystemClock.now();
    let add = |kind: ClosureKind,
               from: DateTime<Utc>,
               until: DateTime<Utc>,
               reason: String|
     -> Result<NewClosure, String> {
        if let Some(problem) = crate::hours::closure_problem(from, until, &reason, now) {
            return Err(problem
                .replace(
                    "the end must be after the start",
                    "--until must be after --from",
                )
                .replace("the end", "--until")
                .replace("the reason", "--reason"));
        }
        let reason = reason.trim().to_string();
        Ok(NewClosure {
            kind,
            from,
            until,
            reason,
            created_at: now,
        })
    };
    let new = match command {
        ClosuresCommand::Add {
            from,
            until,
            reason,
        } => add(ClosureKind::Closed, from.unwrap_or(now), until, reason),
        ClosuresCommand::Open {
            from,
            until,
            reason,
        } => add(ClosureKind::Open, from, until, reason),
        ClosuresCommand::List { all, json } => {
            let list: Vec<ClosureJson> = store
                .list_closures()
                .await?
                .into_iter()
                .filter(|c| all || c.until > now)
                .map(ClosureJson::from)
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!(
                    "no closures or special openings{}",
                    if all { "" } else { " to come" }
                );
            } else {
                for c in list {
                    println!(
                        "{:>4}  {:<6}  {} → {}  {}",
                        c.id, c.kind, c.from, c.until, c.reason
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        ClosuresCommand::Remove { id } => {
            return Ok(if store.remove_closure(id).await? {
                println!("removed {id}");
                ExitCode::SUCCESS
            } else {
                eprintln!("error: there is no closure or special opening {id} (see `helpline closures list --all`)");
                ExitCode::FAILURE
            });
        }
    };
    match new {
        Ok(new) => {
            let c = store.add_closure(&new).await?;
            let j = ClosureJson::from(c);
            println!(
                "added {} {}: {} → {}: {}",
                j.kind, j.id, j.from, j.until, j.reason
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[derive(Debug, Serialize)]
struct HolidayJson {
    date: String,
    title: String,
}

#[derive(Debug, Serialize)]
struct HolidaysJson {
    division: String,
    source: String,
    fetched_at: Option<String>,
    holidays: Vec<HolidayJson>,
}

#[derive(Debug, Serialize)]
struct ClosureJson {
    id: i64,
    kind: &'static str,
    /// Europe/London RFC 3339.
    from: String,
    until: String,
    reason: String,
}

impl From<Closure> for ClosureJson {
    fn from(c: Closure) -> Self {
        Self {
            id: c.id,
            kind: c.kind.as_str(),
            from: c.from.with_timezone(&LONDON).to_rfc3339(),
            until: c.until.with_timezone(&LONDON).to_rfc3339(),
            reason: c.reason,
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing calls in progress");
}
