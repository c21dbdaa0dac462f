//! Logs go to stderr, as text or JSON; `RUST_LOG` adjusts levels. What is logged is
//! chosen so that no phone number or spoken message ever appears (call SID and step only).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Starts logging at `default_level` (unless `RUST_LOG` says otherwise).
///
/// Lines go to stderr through a writer thread (`tracing_appender::non_blocking`), so a
/// webhook never waits on the write itself; it is not lossy (with the buffer full, the code
/// logging waits rather than a line being dropped). Keep the returned guard until the process
/// ends: it flushes what is buffered when dropped.
pub fn init(default_level: &str, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}
