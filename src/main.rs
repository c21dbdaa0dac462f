use std::process::ExitCode;

/// mimalloc: under a surge most of the service's own time went to glibc's allocator
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use helpline::cli::{self, Cli, Command};
use helpline::config::{Config, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service logs at info; one-off commands only warn, so their output stays readable.
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    // A configuration error is reported by the command itself; logging just falls back to text.
    let format = Config::from_env(cli.config.as_deref())
        .map(|c| c.log_format)
        .unwrap_or(LogFormat::Text);
    helpline::logging::init(default_level, format);
    cli::run(cli).await
}
