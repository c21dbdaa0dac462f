//! Logs go to stderr, as text or JSON; `RUST_LOG` adjusts levels. What is logged is
//! chosen so that no phone number or spoken message ever appears (call SID and step only).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(default_level: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colours only for a person at a terminal: a log file or journal gets plain text, not
    // escape codes (which also cost a little formatting on every line).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
