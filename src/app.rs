//! Building and running the service: `App::build(config)` binds the port and wires
//! the parts together; `run_until(shutdown)` serves until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::calls::twiml::Urls;
use crate::calls::webhooks::WebhookState;
use crate::calls::Calls;
use crate::clock::Clock;
use crate::config::Config;
use crate::flows::{self, Flow, FlowError};
use crate::hours::{BankHolidays, CalendarError, OpeningHours, WeeklySchedule};
use crate::store::{self, Store, StoreError};
use crate::twilio::extract::WebhookAuth;
use crate::twilio::twiml::Voice;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Flow(#[from] FlowError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("the bank-holiday calendar cannot be loaded: {0}")]
    Calendar(#[from] CalendarError),
    #[error(
        "cannot listen on {addr}: {source}\n    fix: choose a free address with HELPLINE_LISTEN"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    #[error(
        "TWILIO_AUTH_TOKEN is not set, so webhook signatures could not be checked\n    \
         fix: set TWILIO_AUTH_TOKEN (or TWILIO_AUTH_TOKEN_FILE) to the account's auth token, \
         or run `helpline serve --insecure-dev` on a development machine"
    )]
    MissingAuthToken,
}

/// Loads the call flow the configuration names: `HELPLINE_CALL_FLOWS`, else
/// `./call_flows` when present, else the flow built into the binary.
pub fn load_flow(config: &Config) -> Result<Flow, FlowError> {
    match &config.call_flows {
        Some(dir) => flows::load_dir(dir),
        None if Path::new("call_flows").is_dir() => flows::load_dir(Path::new("call_flows")),
        None => flows::builtin(),
    }
}

/// Opening hours from the embedded bank-holiday calendar and the default week.
pub fn opening_hours() -> Result<OpeningHours, CalendarError> {
    Ok(OpeningHours::new(
        WeeklySchedule::default(),
        Arc::new(BankHolidays::embedded()?),
    ))
}

/// The call service over an already-open store.
pub fn calls(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    simulated: bool,
) -> Result<Calls, AppError> {
    let flow = load_flow(config)?;
    tracing::info!(source = %flow.source, nodes = flow.nodes.len(), "call flow loaded");
    Ok(Calls {
        flow: Arc::new(flow),
        hours: Arc::new(opening_hours()?),
        store,
        clock,
        simulated,
    })
}

/// A built service, bound to its port.
pub struct App {
    listener: tokio::net::TcpListener,
    router: axum::Router,
}

impl App {
    /// Checks everything that could make a call fail (configuration, flow, calendar,
    /// database) before listening, so a bad deployment stops here with a clear message.
    pub async fn build(
        config: &Config,
        clock: Arc<dyn Clock>,
        insecure_dev: bool,
    ) -> Result<Self, AppError> {
        if config.twilio_auth_token.is_none() && !insecure_dev {
            return Err(AppError::MissingAuthToken);
        }
        let store = store::connect(&config.database_url).await?;
        Self::build_with_store(config, clock, store, insecure_dev).await
    }

    /// As [`App::build`], over a store the caller opened (tests use this to inject faults).
    pub async fn build_with_store(
        config: &Config,
        clock: Arc<dyn Clock>,
        store: Arc<dyn Store>,
        insecure_dev: bool,
    ) -> Result<Self, AppError> {
        if config.twilio_auth_token.is_none() {
            if !insecure_dev {
                return Err(AppError::MissingAuthToken);
            }
            tracing::warn!("INSECURE development mode: Twilio signatures are NOT checked; never expose this to a network");
        }
        let calls = calls(config, store, clock, false)?;
        let state = WebhookState {
            calls: Arc::new(calls),
            auth: WebhookAuth::new(config.twilio_auth_token.clone(), &config.public_url),
            voice: Voice {
                voice: config.voice.clone(),
                language: config.language.clone(),
            },
            urls: Urls::new(&config.public_url),
            hold_music_url: config.hold_music_url.clone(),
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.listen,
                source,
            })?;
        Ok(Self {
            listener,
            router: crate::http::router(state),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, AppError> {
        self.listener.local_addr().map_err(AppError::Serve)
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(AppError::Serve)
    }
}
