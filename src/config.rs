//! Settings, in layers: built-in defaults < an optional TOML file (`--config` or
//! `HELPLINE_CONFIG`) < environment variables. Secrets come from the environment,
//! a `*_FILE` path or the config file, and are never printed. Every option is listed
//! in docs/configuration.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::hours::{division_key, parse_division, Division, WeeklySchedule};

/// Voices that speak British English on Twilio (`<Say voice=…>` with `language="en-GB"`).
/// An invalid voice/language pair makes every `<Say>` fail, so the pair is checked at startup.
const POLLY_EN_GB: &[&str] = &[
    "Polly.Amy",
    "Polly.Brian",
    "Polly.Emma",
    "Polly.Amy-Neural",
    "Polly.Brian-Neural",
    "Polly.Emma-Neural",
    "Polly.Arthur-Neural",
    "Polly.Amy-Generative",
];
pub const DEFAULT_VOICE: &str = "Polly.Amy-Neural";
pub const LANGUAGE: &str = "en-GB";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://helpline.db";
/// The enquiry line's public number, 0151 706 3602.
pub const DEFAULT_LINE_NUMBER: &str = "+441517063602";
pub const DEFAULT_TWILIO_API: &str = "https://api.twilio.com";
/// How long enquiries, calls and recordings are kept (issue 7): days after an enquiry's
/// closure, or after the start of a call without an enquiry.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
/// The shortest retention allowed: long enough that a mistyped value cannot delete this
/// week's calls, and that every day purged has had its statistics rolled up.
pub const MIN_RETENTION_DAYS: u32 = 7;
/// The longest (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;
/// Twilio's own public hold music.
pub const DEFAULT_HOLD_MUSIC: &str =
    "http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3";

#[derive(Debug, thiserror::Error)]
#[error("configuration: {place}: {message}\n    fix: {fix}")]
pub struct ConfigError {
    /// The environment variable or `file: key` that is wrong.
    pub place: String,
    pub message: String,
    pub fix: String,
}

fn err(
    place: impl Into<String>,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> ConfigError {
    ConfigError {
        place: place.into(),
        message: message.into(),
        fix: fix.into(),
    }
}

/// The optional TOML file: the same settings as the environment, lower-case names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    metrics_listen: Option<String>,
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
    database_read_url: Option<String>,
    database_read_url_file: Option<PathBuf>,
    shutdown_seconds: Option<u64>,
    public_url: Option<String>,
    voice: Option<String>,
    call_flows: Option<PathBuf>,
    hold_music_url: Option<String>,
    log_format: Option<String>,
    schedule: Option<String>,
    bank_holidays_url: Option<String>,
    bank_holidays_division: Option<String>,
    twilio_account_sid: Option<String>,
    twilio_auth_token: Option<String>,
    twilio_auth_token_file: Option<PathBuf>,
    twilio_api_base_url: Option<String>,
    session_idle_minutes: Option<u64>,
    session_max_hours: Option<u64>,
    claim_minutes: Option<u64>,
    missed_after_seconds: Option<u64>,
    max_open_per_number: Option<u64>,
    callback_attempts: Option<u64>,
    line_number: Option<String>,
    sms_from: Option<String>,
    sms_confirmation: Option<bool>,
    sms_unreachable: Option<bool>,
    service_level_seconds: Option<u64>,
    short_abandon_seconds: Option<u64>,
    api_requests_per_minute: Option<u64>,
    test_numbers: Option<String>,
    retention_days: Option<u64>,
    outbox_dir: Option<PathBuf>,
    outbox_max_records: Option<u64>,
    outbox_replay_seconds: Option<u64>,
    changes_check_ms: Option<u64>,
    webhook_db_budget_ms: Option<u64>,
    data_key: Option<String>,
    data_key_file: Option<PathBuf>,
    data_keys_old: Option<String>,
    data_keys_old_file: Option<PathBuf>,
}

/// The staff dashboard's settings (docs/configuration.md, "Dashboard").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardSettings {
    /// A session unused this long ends (default 30 minutes).
    pub session_idle_minutes: u64,
    /// A session ends this long after sign-in, however busy (default 10 hours).
    pub session_max_hours: u64,
    /// A claim on an enquiry not acted on for this long lapses (default 20 minutes).
    pub claim_minutes: u64,
    /// A caller who hangs up in the queue after waiting at least this long is listed for a
    /// call back as "missed in queue" (default 30 seconds).
    pub missed_after_seconds: u64,
    /// A number with this many open enquiries gets no more: a further request is folded
    /// into its oldest open one (default 3), so a robocaller cannot fill the call-back list.
    pub max_open_per_number: u32,
    /// Call-back attempts before an unanswered enquiry is closed as unreachable (default 3,
    /// each on a different working day).
    pub callback_attempts: u32,
    /// The helpline's own number (E.164), shown as caller ID on call-backs.
    pub line_number: String,
    /// The number SMS are sent from; `None` sends no SMS.
    pub sms_from: Option<String>,
    /// Text callers (UK mobiles only) their reference after a call-back request.
    pub sms_confirmation: bool,
    /// Text callers (UK mobiles only) the line's hours when they could not be reached.
    pub sms_unreachable: bool,
    /// Twilio's REST API (changed only by tests, to a local mock server).
    pub twilio_api_base_url: String,
    /// Statistics: answered within this many seconds counts for the service level (60).
    pub service_level_seconds: u64,
    /// Statistics: a hang-up in the queue sooner than this is a short abandon (5).
    pub short_abandon_seconds: u64,
    /// Requests a minute one client network may make to `/api/` (default 600).
    pub api_requests_per_minute: u32,
}

impl DashboardSettings {
    /// The statistics' thresholds.
    pub fn thresholds(&self) -> crate::stats::Thresholds {
        crate::stats::Thresholds {
            service_level_seconds: i64::try_from(self.service_level_seconds).unwrap_or(60),
            short_abandon_seconds: i64::try_from(self.short_abandon_seconds).unwrap_or(5),
        }
    }
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            session_idle_minutes: 30,
            session_max_hours: 10,
            claim_minutes: 20,
            missed_after_seconds: 30,
            max_open_per_number: 3,
            callback_attempts: 3,
            line_number: DEFAULT_LINE_NUMBER.into(),
            sms_from: None,
            sms_confirmation: false,
            sms_unreachable: false,
            twilio_api_base_url: DEFAULT_TWILIO_API.into(),
            service_level_seconds: 60,
            short_abandon_seconds: 5,
            api_requests_per_minute: 600,
        }
    }
}

/// The phones staff test the line from (`HELPLINE_TEST_NUMBERS`), as E.164. Their calls
/// are served like any other but stored as simulated: never counted in statistics or
/// metrics. `Debug` shows how many there are, not the numbers.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TestNumbers(std::collections::BTreeSet<String>);

impl TestNumbers {
    /// Reads a comma-separated list: E.164 numbers (`+447700900123`, `+15005550006`), or UK
    /// numbers as written nationally (`07700 900123`), which are kept as E.164. Empty
    /// entries are skipped; the error names the first entry that is not a number.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut numbers = std::collections::BTreeSet::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let compact: String = entry.chars().filter(|c| !c.is_whitespace()).collect();
            let number = match crate::phone::UkNumber::parse(entry) {
                Some(uk) => uk.e164().to_string(),
                None if is_e164(&compact) => compact,
                None => return Err(format!("`{entry}` is not a phone number in E.164 form")),
            };
            numbers.insert(number);
        }
        Ok(Self(numbers))
    }

    /// Whether Twilio's `From` (E.164, or `anonymous` and the like) is a test number.
    pub fn contains(&self, from: &str) -> bool {
        let from = from.trim();
        !from.is_empty()
            && (self.0.contains(from)
                || crate::phone::UkNumber::parse(from).is_some_and(|n| self.0.contains(n.e164())))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for TestNumbers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestNumbers({} numbers)", self.0.len())
    }
}

/// `+` and 8 to 15 digits, the first not 0.
fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// The data keys as configured (docs/configuration.md, docs/SECURITY.md "Data keys"):
/// validated at load, kept as secret text. `Debug` shows key ids only.
#[derive(Clone, Default)]
pub struct DataKeySettings {
    /// `HELPLINE_DATA_KEY(_FILE)`: the key that seals. `None`: the default, a key file beside
    /// a SQLite database (made at the first start), a random key for an in-memory one, and
    /// for PostgreSQL none (refused outside development).
    pub current: Option<SecretString>,
    /// Where `current` came from (a variable or `file: key`), for messages.
    pub current_place: String,
    /// `HELPLINE_DATA_KEYS_OLD(_FILE)`: earlier keys, still read until `helpline rekey` has
    /// moved every value to the current one.
    pub old: Vec<SecretString>,
}

impl DataKeySettings {
    /// The keys as a ring, when one is configured (they were checked at load).
    pub fn keyring(&self) -> Result<Option<crate::crypto::Keyring>, crate::crypto::CryptoError> {
        use crate::crypto::{setting_error, DataKey, Keyring, KEY_FIX};
        use secrecy::ExposeSecret;
        let Some(current) = &self.current else {
            return Ok(None);
        };
        let current = DataKey::parse(current.expose_secret())
            .map_err(|m| setting_error(&self.current_place, m, KEY_FIX))?;
        Ok(Some(Keyring::new(current, self.old_keys()?)))
    }

    /// The older keys, parsed.
    pub fn old_keys(&self) -> Result<Vec<crate::crypto::DataKey>, crate::crypto::CryptoError> {
        use crate::crypto::{setting_error, DataKey, KEY_FIX};
        use secrecy::ExposeSecret;
        self.old
            .iter()
            .map(|k| {
                DataKey::parse(k.expose_secret())
                    .map_err(|m| setting_error("HELPLINE_DATA_KEYS_OLD", m, KEY_FIX))
            })
            .collect()
    }
}

impl std::fmt::Debug for DataKeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use secrecy::ExposeSecret;
        let id = |s: &SecretString| {
            crate::crypto::DataKey::parse(s.expose_secret())
                .map(|k| k.id().to_string())
                .unwrap_or_else(|_| "invalid".into())
        };
        f.debug_struct("DataKeySettings")
            .field("current", &self.current.as_ref().map(id))
            .field("old", &self.old.iter().map(id).collect::<Vec<_>>())
            .finish()
    }
}

/// Checks one key's text, for a setting.
fn data_key_text(place: &str, text: &str) -> Result<SecretString, ConfigError> {
    crate::crypto::DataKey::parse(text)
        .map(|_| SecretString::from(text.trim().to_string()))
        .map_err(|m| err(place, m, crate::crypto::KEY_FIX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The service's settings. `Debug` hides every secret (the auth token, any password in a
/// database URL).
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// A separate address for `/metrics` (recommended in production, so metrics are never
    /// served to the internet); `None` serves them on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    pub database_url: String,
    /// An optional read-only replica (PostgreSQL standby) for list and statistics reads.
    pub database_read_url: Option<String>,
    /// How long `serve` waits for requests in flight after a stop signal.
    pub shutdown_seconds: u64,
    /// The base URL Twilio calls (scheme, host, optional port and path prefix; no trailing slash).
    pub public_url: String,
    /// Whether `public_url` was configured (rather than derived from the listen address).
    pub public_url_configured: bool,
    pub voice: String,
    pub language: String,
    /// Call-flow directory; `None` uses `./call_flows` when present, else the built-in flow.
    pub call_flows: Option<PathBuf>,
    /// Played to callers waiting for an adviser; empty for none.
    pub hold_music_url: String,
    pub log_format: LogFormat,
    /// The usual weekly opening hours (Europe/London).
    pub schedule: WeeklySchedule,
    /// Where bank holidays are refreshed from; `None` when refreshing is off.
    pub bank_holidays_url: Option<String>,
    pub division: Division,
    pub twilio_account_sid: Option<String>,
    /// `None` only in development mode (`serve --insecure-dev`): signatures are then not checked.
    pub twilio_auth_token: Option<SecretString>,
    pub dashboard: DashboardSettings,
    /// Calls from these numbers are served normally but never counted (stored as simulated).
    pub test_numbers: TestNumbers,
    /// Enquiries are deleted this many days after they close, calls without an enquiry this
    /// many days after they started, with their recordings at Twilio (`helpline purge`).
    pub retention_days: u32,
    /// Where call-back requests wait when the database cannot take them
    /// (`HELPLINE_OUTBOX_DIR`; default `outbox` next to the SQLite file, else `./outbox`).
    pub outbox_dir: PathBuf,
    /// The most requests the outbox holds; beyond, callers hear the apology.
    pub outbox_max_records: usize,
    /// How often a non-empty outbox is replayed into the database.
    pub outbox_replay_seconds: u64,
    /// Each instance looks for changes made elsewhere (closures, the bank-holiday calendar,
    /// published messages) at most this often; 0 at every webhook.
    pub changes_check_ms: u64,
    /// How long a webhook waits for the database before answering from memory and keeping
    /// a call-back request in the outbox.
    pub webhook_db_budget_ms: u64,
    /// The keys that seal callers' numbers and recording references at rest.
    pub data_keys: DataKeySettings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::store::redact_url;
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "database_read_url",
                &self.database_read_url.as_deref().map(redact_url),
            )
            .field("public_url", &self.public_url)
            .field("voice", &self.voice)
            .field("language", &self.language)
            .field("call_flows", &self.call_flows)
            .field("schedule", &self.schedule.to_string())
            .field("bank_holidays_url", &self.bank_holidays_url)
            .field("division", &self.division)
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("test_numbers", &self.test_numbers)
            .field("retention_days", &self.retention_days)
            .field("outbox_dir", &self.outbox_dir)
            .field("outbox_max_records", &self.outbox_max_records)
            .field("outbox_replay_seconds", &self.outbox_replay_seconds)
            .field("changes_check_ms", &self.changes_check_ms)
            .field("webhook_db_budget_ms", &self.webhook_db_budget_ms)
            .field("data_keys", &self.data_keys)
            .field(
                "twilio_auth_token",
                &self.twilio_auth_token.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Loads the layers; `env` looks up an environment variable (injected for tests).
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file_path = file
            .map(Path::to_path_buf)
            .or_else(|| env("HELPLINE_CONFIG").map(PathBuf::from));
        let (fc, fname) = match &file_path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    err(
                        p.display().to_string(),
                        format!("cannot read the config file: {e}"),
                        "check the path given to --config / HELPLINE_CONFIG",
                    )
                })?;
                let fc: FileConfig = toml::from_str(&text).map_err(|e| {
                    err(
                        p.display().to_string(),
                        e.to_string().trim_end().to_string(),
                        "see docs/configuration.md for the keys and their types",
                    )
                })?;
                (fc, p.display().to_string())
            }
            None => (FileConfig::default(), String::new()),
        };
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        // Where a value came from, for messages.
        let pick = |var: &str, key: &str, file_value: Option<String>| -> Option<(String, String)> {
            env(var)
                .map(|v| (var.to_string(), v))
                .or_else(|| file_value.map(|v| (format!("{fname}: {key}"), v)))
        };

        let (place, listen) = pick("HELPLINE_LISTEN", "listen", fc.listen)
            .unwrap_or(("default".into(), DEFAULT_LISTEN.into()));
        let listen: SocketAddr = listen.parse().map_err(|e| {
            err(
                place,
                format!("`{listen}` is not an address and port: {e}"),
                "write it as 127.0.0.1:8080 or [::1]:8080",
            )
        })?;

        let metrics_listen = match pick(
            "HELPLINE_METRICS_LISTEN",
            "metrics_listen",
            fc.metrics_listen,
        ) {
            None => None,
            Some((place, a)) => Some(a.parse::<SocketAddr>().map_err(|e| {
                err(
                    place,
                    format!("`{a}` is not an address and port: {e}"),
                    "write it as 127.0.0.1:9090",
                )
            })?),
        };
        // The URLs may hold a password: each can come from a file, like the auth token. The
        // environment wins over the config file, a value over a file of the same layer.
        let database_url = secret_setting(
            &env,
            ("DATABASE_URL", fc.database_url),
            (
                "DATABASE_URL_FILE",
                "database_url_file",
                fc.database_url_file,
            ),
            &fname,
        )?
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let database_read_url = secret_setting(
            &env,
            ("DATABASE_READ_URL", fc.database_read_url),
            (
                "DATABASE_READ_URL_FILE",
                "database_read_url_file",
                fc.database_read_url_file,
            ),
            &fname,
        )?;
        if database_read_url.is_some() && !database_url.starts_with("postgres") {
            return Err(err(
                "DATABASE_READ_URL",
                "a read replica needs PostgreSQL as the main database",
                "unset DATABASE_READ_URL, or use a postgres:// DATABASE_URL",
            ));
        }
        let shutdown_seconds = match pick(
            "HELPLINE_SHUTDOWN_SECONDS",
            "shutdown_seconds",
            fc.shutdown_seconds.map(|n| n.to_string()),
        ) {
            None => 20,
            Some((place, n)) => n
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=300).contains(n))
                .ok_or_else(|| {
                    err(
                        place,
                        format!("`{n}` is not a number of seconds from 1 to 300"),
                        "e.g. 20",
                    )
                })?,
        };

        let (public_url, public_url_configured) =
            match pick("HELPLINE_PUBLIC_URL", "public_url", fc.public_url) {
                Some((place, url)) => (
                    normalise_public_url(&url).map_err(|(m, f)| err(place, m, f))?,
                    true,
                ),
                None => (format!("http://{listen}"), false),
            };

        let (place, voice) = pick("HELPLINE_VOICE", "voice", fc.voice)
            .unwrap_or(("default".into(), DEFAULT_VOICE.into()));
        if !is_en_gb_voice(&voice) {
            return Err(err(
                place,
                format!("`{voice}` is not a British English (en-GB) Twilio voice"),
                format!(
                    "use one of {} or a Google.en-GB-… voice",
                    POLLY_EN_GB.join(", ")
                ),
            ));
        }

        let call_flows = pick(
            "HELPLINE_CALL_FLOWS",
            "call_flows",
            fc.call_flows.map(|p| p.display().to_string()),
        )
        .map(|(_, v)| PathBuf::from(v));
        let hold_music_url = pick(
            "HELPLINE_HOLD_MUSIC_URL",
            "hold_music_url",
            fc.hold_music_url,
        )
        .map(|(_, v)| v)
        .unwrap_or_else(|| DEFAULT_HOLD_MUSIC.into());
        let log_format = match pick("HELPLINE_LOG_FORMAT", "log_format", fc.log_format) {
            None => LogFormat::Text,
            Some((_, f)) if f == "text" => LogFormat::Text,
            Some((_, f)) if f == "json" => LogFormat::Json,
            Some((place, f)) => {
                return Err(err(
                    place,
                    format!("unknown log format `{f}`"),
                    "use text or json",
                ))
            }
        };
        let schedule = match pick("HELPLINE_SCHEDULE", "schedule", fc.schedule) {
            None => WeeklySchedule::default(),
            Some((place, spec)) => WeeklySchedule::parse(&spec).map_err(|e| {
                err(
                    place,
                    e.to_string(),
                    "write it as `Mon-Fri 09:00-16:00`, segments separated by `;`",
                )
            })?,
        };
        let bank_holidays_url = match pick(
            "HELPLINE_BANK_HOLIDAYS_URL",
            "bank_holidays_url",
            fc.bank_holidays_url,
        ) {
            None => Some(crate::hours::feed::DEFAULT_URL.to_string()),
            Some((_, off)) if off == "off" => None,
            Some((_, url)) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(url)
            }
            Some((place, url)) => return Err(err(
                place,
                format!("`{url}` is not an http(s) URL"),
                "use the GOV.UK feed URL, or `off` to use only the stored and embedded calendars",
            )),
        };
        let division = match pick(
            "HELPLINE_BANK_HOLIDAYS_DIVISION",
            "bank_holidays_division",
            fc.bank_holidays_division,
        ) {
            None => Division::EnglandAndWales,
            Some((place, key)) => parse_division(&key).ok_or_else(|| {
                err(
                    place,
                    format!("unknown division `{key}`"),
                    format!(
                        "use one of {}",
                        Division::all().map(division_key).join(", ")
                    ),
                )
            })?,
        };
        let twilio_account_sid = pick(
            "TWILIO_ACCOUNT_SID",
            "twilio_account_sid",
            fc.twilio_account_sid,
        )
        .map(|(_, v)| v);

        // Trimmed: a token pasted or mounted with a trailing newline would fail every signature.
        let token = secret_setting(
            &env,
            ("TWILIO_AUTH_TOKEN", fc.twilio_auth_token),
            (
                "TWILIO_AUTH_TOKEN_FILE",
                "twilio_auth_token_file",
                fc.twilio_auth_token_file,
            ),
            &fname,
        )?
        .map(|t| t.trim().to_string());

        let number = |var: &str,
                      key: &str,
                      value: Option<u64>,
                      range: std::ops::RangeInclusive<u64>,
                      default: u64,
                      unit: &str| {
            match pick(var, key, value.map(|n| n.to_string())) {
                None => Ok(default),
                Some((place, n)) => n
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        err(
                            place,
                            format!(
                                "`{n}` is not a number of {unit} from {} to {}",
                                range.start(),
                                range.end()
                            ),
                            format!("e.g. {default}"),
                        )
                    }),
            }
        };
        let flag = |var: &str, key: &str, value: Option<bool>| match pick(
            var,
            key,
            value.map(|b| b.to_string()),
        ) {
            None => Ok(false),
            Some((_, v)) if matches!(v.as_str(), "true" | "on" | "1" | "yes") => Ok(true),
            Some((_, v)) if matches!(v.as_str(), "false" | "off" | "0" | "no") => Ok(false),
            Some((place, v)) => Err(err(
                place,
                format!("`{v}` is not on or off"),
                "use true or false",
            )),
        };
        let e164 =
            |var: &str, key: &str, value: Option<String>| -> Result<Option<String>, ConfigError> {
                match pick(var, key, value) {
                    None => Ok(None),
                    Some((place, v)) => crate::phone::UkNumber::parse(&v)
                        .map(|n| Some(n.e164().to_string()))
                        .ok_or_else(|| {
                            err(
                                place,
                                format!("`{v}` is not a UK phone number"),
                                "write it as +441517063602 or 0151 706 3602",
                            )
                        }),
                }
            };
        let dashboard = DashboardSettings {
            session_idle_minutes: number(
                "HELPLINE_SESSION_IDLE_MINUTES",
                "session_idle_minutes",
                fc.session_idle_minutes,
                1..=480,
                30,
                "minutes",
            )?,
            session_max_hours: number(
                "HELPLINE_SESSION_MAX_HOURS",
                "session_max_hours",
                fc.session_max_hours,
                1..=24,
                10,
                "hours",
            )?,
            claim_minutes: number(
                "HELPLINE_CLAIM_MINUTES",
                "claim_minutes",
                fc.claim_minutes,
                1..=480,
                20,
                "minutes",
            )?,
            missed_after_seconds: number(
                "HELPLINE_MISSED_AFTER_SECONDS",
                "missed_after_seconds",
                fc.missed_after_seconds,
                0..=3600,
                30,
                "seconds",
            )?,
            max_open_per_number: u32::try_from(number(
                "HELPLINE_MAX_OPEN_PER_NUMBER",
                "max_open_per_number",
                fc.max_open_per_number,
                1..=50,
                3,
                "enquiries",
            )?)
            .unwrap_or(3),
            callback_attempts: u32::try_from(number(
                "HELPLINE_CALLBACK_ATTEMPTS",
                "callback_attempts",
                fc.callback_attempts,
                1..=10,
                3,
                "attempts",
            )?)
            .unwrap_or(3),
            line_number: e164("HELPLINE_LINE_NUMBER", "line_number", fc.line_number)?
                .unwrap_or_else(|| DEFAULT_LINE_NUMBER.into()),
            sms_from: e164("HELPLINE_SMS_FROM", "sms_from", fc.sms_from)?,
            sms_confirmation: flag(
                "HELPLINE_SMS_CONFIRMATION",
                "sms_confirmation",
                fc.sms_confirmation,
            )?,
            sms_unreachable: flag(
                "HELPLINE_SMS_UNREACHABLE",
                "sms_unreachable",
                fc.sms_unreachable,
            )?,
            service_level_seconds: number(
                "HELPLINE_SERVICE_LEVEL_SECONDS",
                "service_level_seconds",
                fc.service_level_seconds,
                1..=3600,
                60,
                "seconds",
            )?,
            short_abandon_seconds: number(
                "HELPLINE_SHORT_ABANDON_SECONDS",
                "short_abandon_seconds",
                fc.short_abandon_seconds,
                0..=120,
                5,
                "seconds",
            )?,
            api_requests_per_minute: u32::try_from(number(
                "HELPLINE_API_REQUESTS_PER_MINUTE",
                "api_requests_per_minute",
                fc.api_requests_per_minute,
                10..=100_000,
                600,
                "requests a minute",
            )?)
            .unwrap_or(600),
            twilio_api_base_url: match pick(
                "TWILIO_API_BASE_URL",
                "twilio_api_base_url",
                fc.twilio_api_base_url,
            ) {
                None => DEFAULT_TWILIO_API.into(),
                Some((place, url)) => {
                    normalise_public_url(&url).map_err(|(m, f)| err(place, m, f))?
                }
            },
        };
        if (dashboard.sms_confirmation || dashboard.sms_unreachable) && dashboard.sms_from.is_none()
        {
            return Err(err(
                if dashboard.sms_confirmation { "HELPLINE_SMS_CONFIRMATION" } else { "HELPLINE_SMS_UNREACHABLE" },
                "text messages are switched on but there is no number to send them from",
                "set HELPLINE_SMS_FROM to the Twilio number that sends SMS, or switch the option off",
            ));
        }

        let test_numbers = match pick("HELPLINE_TEST_NUMBERS", "test_numbers", fc.test_numbers) {
            None => TestNumbers::default(),
            Some((place, list)) => TestNumbers::parse(&list).map_err(|message| {
                err(
                    place,
                    message,
                    "list the test phones separated by commas, e.g. +447700900123,+447700900456",
                )
            })?,
        };

        let retention_days = u32::try_from(number(
            "HELPLINE_RETENTION_DAYS",
            "retention_days",
            fc.retention_days,
            u64::from(MIN_RETENTION_DAYS)..=u64::from(MAX_RETENTION_DAYS),
            u64::from(DEFAULT_RETENTION_DAYS),
            "days",
        )?)
        .unwrap_or(DEFAULT_RETENTION_DAYS);

        let outbox_dir = pick(
            "HELPLINE_OUTBOX_DIR",
            "outbox_dir",
            fc.outbox_dir.map(|p| p.display().to_string()),
        )
        .map_or_else(
            || default_outbox_dir(&database_url),
            |(_, v)| PathBuf::from(v),
        );
        let outbox_max_records = usize::try_from(number(
            "HELPLINE_OUTBOX_MAX_RECORDS",
            "outbox_max_records",
            fc.outbox_max_records,
            1..=1_000_000,
            10_000,
            "records",
        )?)
        .unwrap_or(10_000);
        let outbox_replay_seconds = number(
            "HELPLINE_OUTBOX_REPLAY_SECONDS",
            "outbox_replay_seconds",
            fc.outbox_replay_seconds,
            1..=3600,
            30,
            "seconds",
        )?;
        let changes_check_ms = number(
            "HELPLINE_CHANGES_CHECK_MS",
            "changes_check_ms",
            fc.changes_check_ms,
            0..=60_000,
            1000,
            "milliseconds",
        )?;
        let webhook_db_budget_ms = number(
            "HELPLINE_WEBHOOK_DB_BUDGET_MS",
            "webhook_db_budget_ms",
            fc.webhook_db_budget_ms,
            5..=10_000,
            25,
            "milliseconds",
        )?;

        // The data key seals callers' numbers: a malformed one stops startup here, naming it.
        let data_key = placed_secret_setting(
            &env,
            ("HELPLINE_DATA_KEY", fc.data_key),
            ("HELPLINE_DATA_KEY_FILE", "data_key_file", fc.data_key_file),
            &fname,
        )?;
        let old_list = placed_secret_setting(
            &env,
            ("HELPLINE_DATA_KEYS_OLD", fc.data_keys_old),
            (
                "HELPLINE_DATA_KEYS_OLD_FILE",
                "data_keys_old_file",
                fc.data_keys_old_file,
            ),
            &fname,
        )?;
        let (data_key_place, data_key) = match data_key {
            Some((place, text)) => {
                let key = data_key_text(&place, &text)?;
                (place, Some(key))
            }
            None => (String::new(), None),
        };
        let mut data_keys_old = Vec::new();
        if let Some((old_place, list)) = &old_list {
            // Separated by commas or lines; `#` starts a comment line.
            let entries: Vec<&str> = list
                .lines()
                .map(str::trim)
                .filter(|l| !l.starts_with('#'))
                .flat_map(|l| l.split(','))
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect();
            for (i, text) in entries.iter().enumerate() {
                data_keys_old.push(data_key_text(old_place, text).map_err(|mut e| {
                    e.message = format!("old key {} of {}: {}", i + 1, entries.len(), e.message);
                    e
                })?);
            }
        }
        if data_key.is_none() && !data_keys_old.is_empty() && sqlite_file(&database_url).is_none() {
            return Err(err(
                old_list.map(|(place, _)| place).unwrap_or_default(),
                "old data keys are listed but there is no current one to seal with",
                "set HELPLINE_DATA_KEY (or HELPLINE_DATA_KEY_FILE) to the new key",
            ));
        }
        let data_keys = DataKeySettings {
            current: data_key,
            current_place: data_key_place,
            old: data_keys_old,
        };

        Ok(Config {
            changes_check_ms,
            webhook_db_budget_ms,
            data_keys,
            outbox_dir,
            outbox_max_records,
            outbox_replay_seconds,
            retention_days,
            dashboard,
            test_numbers,
            listen,
            metrics_listen,
            database_read_url,
            shutdown_seconds,
            database_url,
            public_url,
            public_url_configured,
            voice,
            language: LANGUAGE.into(),
            call_flows,
            hold_music_url,
            log_format,
            schedule,
            bank_holidays_url,
            division,
            twilio_account_sid,
            twilio_auth_token: token.map(SecretString::from),
        })
    }

    /// Loads from the real environment.
    pub fn from_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(file, &|name| std::env::var(name).ok())
    }

    /// For tests and tools: defaults only, with an explicit map of overrides.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::load(None, &|name| map.get(name).cloned())
    }
}

/// A secret that may be given directly or as a file, in the environment or the config file:
/// environment value, environment file, config value, config file.
fn secret_setting(
    env: &dyn Fn(&str) -> Option<String>,
    value: (&str, Option<String>),
    file: (&str, &str, Option<PathBuf>),
    fname: &str,
) -> Result<Option<String>, ConfigError> {
    Ok(placed_secret_setting(env, value, file, fname)?.map(|(_, v)| v))
}

/// As [`secret_setting`], with where the value came from, for messages: the variable, or
/// `file: key` (`file_key` without its `_file` for a value written in the file itself).
fn placed_secret_setting(
    env: &dyn Fn(&str) -> Option<String>,
    (var, file_value): (&str, Option<String>),
    (file_var, file_key, file_path): (&str, &str, Option<PathBuf>),
    fname: &str,
) -> Result<Option<(String, String)>, ConfigError> {
    let read = |place: String, path: String| -> Result<Option<(String, String)>, ConfigError> {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            err(
                place.clone(),
                format!("cannot read {path}: {e}"),
                "check the path and its permissions",
            )
        })?;
        let value = text.trim();
        if value.is_empty() {
            return Err(err(
                place,
                format!("{path} is empty"),
                "put the value on the file's first line",
            ));
        }
        Ok(Some((place, value.to_string())))
    };
    if let Some(v) = env(var) {
        return Ok(Some((var.to_string(), v)));
    }
    if let Some(path) = env(file_var) {
        return read(file_var.to_string(), path);
    }
    if let Some(v) = file_value {
        let key = file_key.strip_suffix("_file").unwrap_or(file_key);
        return Ok(Some((format!("{fname}: {key}"), v)));
    }
    match file_path {
        Some(path) => read(format!("{fname}: {file_key}"), path.display().to_string()),
        None => Ok(None),
    }
}

fn is_en_gb_voice(voice: &str) -> bool {
    POLLY_EN_GB.contains(&voice)
        || voice.strip_prefix("Google.en-GB-").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Checks the public base URL and removes a trailing slash (Twilio signs the exact URL).
fn normalise_public_url(url: &str) -> Result<String, (String, String)> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| {
            (
                format!("`{url}` is not an http(s) URL"),
                "write the base URL Twilio calls, e.g. https://helpline.example.nhs.uk".to_string(),
            )
        })?;
    if rest.is_empty() || rest.starts_with('/') || trimmed.contains(['?', '#', ' ']) {
        return Err((
            format!("`{url}` must be a scheme, host, optional port and optional path prefix, without query or fragment"),
            "e.g. https://helpline.example.nhs.uk or https://example.nhs.uk/helpline".to_string(),
        ));
    }
    Ok(trimmed.to_string())
}

/// The file of a SQLite database URL (`sqlite://PATH`); `None` for PostgreSQL or memory.
pub fn sqlite_file(database_url: &str) -> Option<PathBuf> {
    database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .filter(|_| !database_url.contains("mode=memory"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|p| !p.is_empty() && !p.starts_with(":memory:") && *p != "memory:")
        .map(PathBuf::from)
}

/// The directory a SQLite database file is in (`.` for a bare file name).
fn sqlite_dir(database_url: &str) -> Option<PathBuf> {
    sqlite_file(database_url).map(|f| match f.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    })
}

/// Where the data key is kept when none is configured: `helpline-data.key` beside a SQLite
/// database file; `None` for PostgreSQL and in-memory databases.
pub fn default_key_file(database_url: &str) -> Option<PathBuf> {
    sqlite_dir(database_url).map(|d| d.join(crate::crypto::DEFAULT_KEY_FILE))
}

/// `outbox` next to a SQLite database file; `./outbox` otherwise (PostgreSQL, memory).
fn default_outbox_dir(database_url: &str) -> PathBuf {
    match sqlite_dir(database_url) {
        Some(dir) if dir != Path::new(".") => dir.join("outbox"),
        _ => PathBuf::from("outbox"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn dashboard_settings_have_defaults_and_are_checked() {
        let d = Config::from_pairs(&[]).unwrap().dashboard;
        assert_eq!(d, DashboardSettings::default());
        assert_eq!(d.thresholds(), crate::stats::Thresholds::default());
        let c = Config::from_pairs(&[
            ("HELPLINE_SERVICE_LEVEL_SECONDS", "30"),
            ("HELPLINE_SMS_FROM", "07700 900000"),
            ("HELPLINE_SMS_CONFIRMATION", "on"),
        ])
        .unwrap();
        assert_eq!(c.dashboard.thresholds().service_level_seconds, 30);
        assert_eq!(c.dashboard.sms_from.as_deref(), Some("+447700900000"));
        assert!(c.dashboard.sms_confirmation);
        let e = Config::from_pairs(&[("HELPLINE_SMS_CONFIRMATION", "on")]).unwrap_err();
        assert_eq!(e.place, "HELPLINE_SMS_CONFIRMATION");
        assert!(e.to_string().contains("HELPLINE_SMS_FROM"), "{e}");
        let e = Config::from_pairs(&[("HELPLINE_SESSION_IDLE_MINUTES", "0")]).unwrap_err();
        assert!(e.to_string().contains("from 1 to 480"), "{e}");
        let e = Config::from_pairs(&[("HELPLINE_LINE_NUMBER", "999")]).unwrap_err();
        assert!(e.to_string().contains("not a UK phone number"), "{e}");
    }

    #[test]
    fn retention_days_default_and_range() {
        assert_eq!(Config::from_pairs(&[]).unwrap().retention_days, 90);
        let c = Config::from_pairs(&[("HELPLINE_RETENTION_DAYS", "30")]).unwrap();
        assert_eq!(c.retention_days, 30);
        for bad in ["0", "6", "3651", "ninety", "-1"] {
            let e = Config::from_pairs(&[("HELPLINE_RETENTION_DAYS", bad)]).unwrap_err();
            assert_eq!(e.place, "HELPLINE_RETENTION_DAYS");
            assert!(e.message.contains("from 7 to 3650"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("helpline.toml");
        std::fs::write(&cfg, "retention_days = 180\n").unwrap();
        assert_eq!(
            Config::load(Some(&cfg), &|_| None).unwrap().retention_days,
            180
        );
    }

    #[test]
    fn test_numbers_are_e164_and_checked() {
        let c = Config::from_pairs(&[]).unwrap();
        assert!(c.test_numbers.is_empty());
        assert!(!c.test_numbers.contains("+447700900123"));
        let c = Config::from_pairs(&[(
            "HELPLINE_TEST_NUMBERS",
            " +447700900123, 0151 706 0000,+15005550006,",
        )])
        .unwrap();
        assert_eq!(c.test_numbers.len(), 3);
        assert!(c.test_numbers.contains("+447700900123"));
        assert!(c.test_numbers.contains("+441517060000"));
        assert!(c.test_numbers.contains("+15005550006"));
        assert!(!c.test_numbers.contains("+447700900124"));
        assert!(!c.test_numbers.contains("anonymous"));
        assert!(!c.test_numbers.contains(""));
        let shown = format!("{c:?}");
        assert!(
            shown.contains("TestNumbers(3 numbers)") && !shown.contains("900123"),
            "{shown}"
        );
        for bad in [
            "+447700900123;+447700900456",
            "12345",
            "+0123456789",
            "call me",
        ] {
            let e = Config::from_pairs(&[("HELPLINE_TEST_NUMBERS", bad)]).unwrap_err();
            assert_eq!(e.place, "HELPLINE_TEST_NUMBERS");
            assert!(e.message.contains("E.164"), "{e}");
            assert!(e.fix.contains("separated by commas"), "{e}");
        }
    }

    #[test]
    fn defaults_are_safe_and_local() {
        let c = Config::from_pairs(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://helpline.db");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(
            (c.voice.as_str(), c.language.as_str()),
            ("Polly.Amy-Neural", "en-GB")
        );
        assert!(c.twilio_auth_token.is_none());
    }

    #[test]
    fn environment_overrides_and_validates() {
        let c = Config::from_pairs(&[
            ("HELPLINE_PUBLIC_URL", "https://helpline.example.nhs.uk/"),
            ("TWILIO_AUTH_TOKEN", "abc"),
            ("HELPLINE_VOICE", "Google.en-GB-Neural2-A"),
        ])
        .unwrap();
        assert_eq!(c.public_url, "https://helpline.example.nhs.uk");
        assert_eq!(c.twilio_auth_token.unwrap().expose_secret(), "abc");
        let c = Config::from_pairs(&[("TWILIO_AUTH_TOKEN", "abc\n")]).unwrap();
        assert_eq!(
            c.twilio_auth_token.unwrap().expose_secret(),
            "abc",
            "a trailing newline is not part of the token"
        );
        let e = Config::from_pairs(&[("HELPLINE_VOICE", "Polly.Joanna")]).unwrap_err();
        assert_eq!(e.place, "HELPLINE_VOICE");
        assert!(e.to_string().contains("not a British English"), "{e}");
        let e = Config::from_pairs(&[("HELPLINE_LISTEN", "8080")]).unwrap_err();
        assert!(e.to_string().contains("HELPLINE_LISTEN"), "{e}");
        let e =
            Config::from_pairs(&[("HELPLINE_PUBLIC_URL", "helpline.example.nhs.uk")]).unwrap_err();
        assert!(e.to_string().contains("not an http(s) URL"), "{e}");
    }

    #[test]
    fn file_layer_and_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "from-file\n").unwrap();
        let cfg = dir.path().join("helpline.toml");
        std::fs::write(
            &cfg,
            format!(
                "listen = \"127.0.0.1:9000\"\ntwilio_auth_token_file = \"{}\"\n",
                token.display()
            ),
        )
        .unwrap();
        let c = Config::load(Some(&cfg), &|_| None).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.twilio_auth_token.unwrap().expose_secret(), "from-file");
        // The environment wins over the file.
        let c = Config::load(Some(&cfg), &|n| {
            (n == "HELPLINE_LISTEN").then(|| "127.0.0.1:9001".into())
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9001);
        std::fs::write(&cfg, "listne = \"x\"\n").unwrap();
        let e = Config::load(Some(&cfg), &|_| None).unwrap_err();
        assert!(e.to_string().contains("listne"), "{e}");
    }

    #[test]
    fn hours_settings() {
        let c = Config::from_pairs(&[]).unwrap();
        assert_eq!(c.schedule.to_string(), "Mon-Fri 09:00-16:00");
        assert_eq!(
            c.bank_holidays_url.as_deref(),
            Some("https://www.gov.uk/bank-holidays.json")
        );
        assert_eq!(c.division, Division::EnglandAndWales);
        let c = Config::from_pairs(&[
            ("HELPLINE_SCHEDULE", "Mon-Fri 08:30-17:00; Sat 10:00-12:00"),
            ("HELPLINE_BANK_HOLIDAYS_URL", "off"),
            ("HELPLINE_BANK_HOLIDAYS_DIVISION", "scotland"),
        ])
        .unwrap();
        assert_eq!(
            c.schedule.to_string(),
            "Mon-Fri 08:30-17:00; Sat 10:00-12:00"
        );
        assert_eq!(c.bank_holidays_url, None);
        assert_eq!(c.division, Division::Scotland);
        let e = Config::from_pairs(&[("HELPLINE_SCHEDULE", "weekdays 9-5")]).unwrap_err();
        assert_eq!(e.place, "HELPLINE_SCHEDULE");
        let e = Config::from_pairs(&[("HELPLINE_BANK_HOLIDAYS_DIVISION", "wales")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("england-and-wales, scotland, northern-ireland"),
            "{e}"
        );
        let e = Config::from_pairs(&[("HELPLINE_BANK_HOLIDAYS_URL", "gov.uk")]).unwrap_err();
        assert!(e.to_string().contains("off"), "{e}");
    }

    #[test]
    fn database_url_from_a_file_replica_and_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("db");
        std::fs::write(&f, "postgres://app:secret@db/helpline\n").unwrap();
        let path = f.display().to_string();
        let c = Config::from_pairs(&[
            ("DATABASE_URL_FILE", &path),
            (
                "DATABASE_READ_URL",
                "postgres://app:secret@standby/helpline",
            ),
            ("HELPLINE_SHUTDOWN_SECONDS", "5"),
        ])
        .unwrap();
        assert_eq!(c.database_url, "postgres://app:secret@db/helpline");
        assert_eq!(
            c.database_read_url.as_deref(),
            Some("postgres://app:secret@standby/helpline")
        );
        assert_eq!(c.shutdown_seconds, 5);
        assert_eq!(Config::from_pairs(&[]).unwrap().shutdown_seconds, 20);
        let e = Config::from_pairs(&[("DATABASE_READ_URL", "postgres://x/y")]).unwrap_err();
        assert!(e.to_string().contains("needs PostgreSQL"), "{e}");
        let e = Config::from_pairs(&[("HELPLINE_SHUTDOWN_SECONDS", "0")]).unwrap_err();
        assert_eq!(e.place, "HELPLINE_SHUTDOWN_SECONDS");
    }

    #[test]
    fn a_database_url_file_in_the_environment_beats_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("url");
        std::fs::write(&url_file, "postgres://from-env-file/db").unwrap();
        let cfg = dir.path().join("helpline.toml");
        std::fs::write(&cfg, "database_url = \"postgres://from-config/db\"\n").unwrap();
        let path = url_file.display().to_string();
        let c = Config::load(Some(&cfg), &|n| {
            (n == "DATABASE_URL_FILE").then(|| path.clone())
        })
        .unwrap();
        assert_eq!(c.database_url, "postgres://from-env-file/db");
        let c = Config::load(Some(&cfg), &|n| {
            (n == "DATABASE_READ_URL_FILE").then(|| path.clone())
        })
        .unwrap();
        assert_eq!(c.database_url, "postgres://from-config/db");
        assert_eq!(
            c.database_read_url.as_deref(),
            Some("postgres://from-env-file/db")
        );
    }

    #[test]
    fn secret_files_that_cannot_be_used_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("token");
        std::fs::write(&empty, "\n").unwrap();
        let path = empty.display().to_string();
        let e = Config::load(None, &|n| {
            (n == "TWILIO_AUTH_TOKEN_FILE").then(|| path.clone())
        })
        .unwrap_err();
        assert_eq!(e.place, "TWILIO_AUTH_TOKEN_FILE");
        assert!(e.message.contains("is empty"), "{e}");
        let e = Config::load(None, &|n| {
            (n == "TWILIO_AUTH_TOKEN_FILE").then(|| "/no/such/file".into())
        })
        .unwrap_err();
        assert!(
            e.message.contains("cannot read /no/such/file") && e.fix.contains("permissions"),
            "{e}"
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = Config::from_pairs(&[
            ("TWILIO_AUTH_TOKEN", "very-secret-token"),
            ("DATABASE_URL", "postgres://app:db-password@db/helpline"),
            (
                "DATABASE_READ_URL",
                "postgres://ro:ro-password@standby/helpline",
            ),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret-token"), "{shown}");
        assert!(
            !shown.contains("db-password") && !shown.contains("ro-password"),
            "{shown}"
        );
        assert!(shown.contains("postgres://app:***@db/helpline"), "{shown}");
    }

    #[test]
    fn data_keys_are_checked_at_load_and_never_shown() {
        let (key, text) = crate::crypto::DataKey::generate();
        let (old, old_text) = crate::crypto::DataKey::generate();
        let c = Config::from_pairs(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("HELPLINE_DATA_KEY", text.as_str()),
            ("HELPLINE_DATA_KEYS_OLD", old_text.as_str()),
        ])
        .unwrap();
        let ring = c.data_keys.keyring().unwrap().unwrap();
        assert_eq!(ring.current_id(), key.id());
        assert_eq!(ring.old_ids(), vec![old.id()]);
        let shown = format!("{c:?}");
        assert!(shown.contains(key.id()), "{shown}");
        assert!(
            !shown.contains(text.as_str()) && !shown.contains(old_text.as_str()),
            "{shown}"
        );
        // Nothing configured: the default (a key file beside a SQLite database).
        let c = Config::from_pairs(&[]).unwrap();
        assert!(c.data_keys.keyring().unwrap().is_none());
        assert_eq!(
            default_key_file(&c.database_url),
            Some(PathBuf::from("./helpline-data.key"))
        );
        assert_eq!(
            default_key_file("sqlite:///var/lib/helpline/helpline.db"),
            Some(PathBuf::from("/var/lib/helpline/helpline-data.key"))
        );
        assert_eq!(default_key_file("sqlite::memory:"), None);
        assert_eq!(default_key_file("postgres://u@h/db"), None);
        // A bad key stops the load, naming the setting and the fix, never the value.
        for (bad, why) in [
            ("c2hvcnQ=", "5 bytes"),
            ("not base64 at all!", "not base64"),
        ] {
            let e = Config::from_pairs(&[("HELPLINE_DATA_KEY", bad)]).unwrap_err();
            assert_eq!(e.place, "HELPLINE_DATA_KEY");
            assert!(e.message.contains(why), "{e}");
            assert!(e.fix.contains("helpline keys generate"), "{e}");
            assert!(!e.to_string().contains(bad), "{e}");
        }
        let list = format!("{}, c2hvcnQ=", old_text.as_str());
        let e = Config::from_pairs(&[
            ("HELPLINE_DATA_KEY", text.as_str()),
            ("HELPLINE_DATA_KEYS_OLD", &list),
        ])
        .unwrap_err();
        assert_eq!(e.place, "HELPLINE_DATA_KEYS_OLD");
        assert!(e.message.starts_with("old key 2 of 2"), "{e}");
        // Old keys without a current one, where there is no key file to be it.
        let e = Config::from_pairs(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("HELPLINE_DATA_KEYS_OLD", old_text.as_str()),
        ])
        .unwrap_err();
        assert!(e.fix.contains("HELPLINE_DATA_KEY"), "{e}");
        // From files, in the environment or the config file.
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("data.key");
        std::fs::write(&key_file, format!("# the key\n{}\n", text.as_str())).unwrap();
        let old_file = dir.path().join("old.keys");
        std::fs::write(&old_file, format!("# retired\n{}\n", old_text.as_str())).unwrap();
        let cfg = dir.path().join("helpline.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_key_file = \"{}\"\ndata_keys_old_file = \"{}\"\n",
                key_file.display(),
                old_file.display()
            ),
        )
        .unwrap();
        let c = Config::load(Some(&cfg), &|_| None).unwrap();
        let ring = c.data_keys.keyring().unwrap().unwrap();
        assert_eq!(ring.current_id(), key.id());
        assert_eq!(ring.old_ids(), vec![old.id()]);
        std::fs::write(&key_file, "short\n").unwrap();
        let e = Config::load(Some(&cfg), &|_| None).unwrap_err();
        assert!(e.place.ends_with("data_key_file"), "{e}");
        // Written in the config file itself: named by its key there.
        std::fs::write(&cfg, "data_key = \"short\"\n").unwrap();
        let e = Config::load(Some(&cfg), &|_| None).unwrap_err();
        assert!(e.place.ends_with("helpline.toml: data_key"), "{e}");
    }

    #[test]
    fn outbox_settings_and_defaults() {
        let c = Config::from_pairs(&[("DATABASE_URL", "sqlite:///var/lib/helpline/helpline.db")])
            .unwrap();
        assert_eq!(c.outbox_dir, PathBuf::from("/var/lib/helpline/outbox"));
        assert_eq!(c.outbox_max_records, 10_000);
        assert_eq!(c.outbox_replay_seconds, 30);
        let c = Config::from_pairs(&[("DATABASE_URL", "sqlite://helpline.db")]).unwrap();
        assert_eq!(c.outbox_dir, PathBuf::from("outbox"));
        let c = Config::from_pairs(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("HELPLINE_OUTBOX_DIR", "/srv/outbox"),
            ("HELPLINE_OUTBOX_MAX_RECORDS", "50"),
        ])
        .unwrap();
        assert_eq!(c.outbox_dir, PathBuf::from("/srv/outbox"));
        assert_eq!(c.outbox_max_records, 50);
        assert!(Config::from_pairs(&[("HELPLINE_OUTBOX_MAX_RECORDS", "0")]).is_err());
    }
}
