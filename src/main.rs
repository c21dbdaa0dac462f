use std::process::ExitCode;

use clap::Parser;
use helpline::cli::{self, Cli, Command};
use helpline::config::LogFormat;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service logs at info; one-off commands only warn, so their output stays readable.
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    let json = std::env::var("HELPLINE_LOG_FORMAT").is_ok_and(|f| f == "json");
    helpline::logging::init(
        default_level,
        if json {
            LogFormat::Json
        } else {
            LogFormat::Text
        },
    );
    cli::run(cli).await
}
