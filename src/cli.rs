//! The command line: `helpline serve | hours | flows check | simulate | enquiries list`.

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
use crate::hours::LONDON;

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
    /// Run the webhook service (HELPLINE_LISTEN, DATABASE_URL, TWILIO_AUTH_TOKEN, HELPLINE_PUBLIC_URL…).
    Serve {
        /// Development only: accept unsigned webhooks when TWILIO_AUTH_TOKEN is unset (warns on every request).
        #[arg(long)]
        insecure_dev: bool,
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
}

#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Validate call flows; exits non-zero listing every problem.
    Check {
        /// Directory of flow files.
        #[arg(default_value = "call_flows")]
        dir: PathBuf,
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
        Command::Hours { at, json } => {
            let at = at.unwrap_or_else(|| SystemClock.now());
            let hours = app::opening_hours()?;
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
                        .map(|t| t.format("%H:%M %Z").to_string())
                        .unwrap_or_default();
                    println!(
                        "{local}: OPEN ({}); closes at {closes}",
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
        Command::Simulate {
            at,
            from,
            database,
            inputs,
        } => {
            let config = config()?;
            let store =
                crate::store::connect(database.as_deref().unwrap_or("sqlite::memory:")).await?;
            let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(at));
            let calls = app::calls(&config, store, clock, true)?;
            let status = calls.hours.status(at);
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
        Command::Enquiries {
            command: EnquiriesCommand::List { json },
        } => {
            let config = config()?;
            let store = crate::store::connect(&config.database_url).await?;
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
