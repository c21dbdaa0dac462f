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
use crate::hours::feed::{Feed, FeedConfig, FeedError};
use crate::hours::live::{freshness_warning, LiveHours, LoadError};
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
    #[error("the opening hours cannot be loaded: {0}")]
    Hours(#[from] LoadError),
    #[error("{0}")]
    Events(#[from] crate::events::EventsError),
    #[error("the bank-holiday feed client cannot be set up: {0}")]
    Feed(#[from] FeedError),
    #[error("cannot listen on {addr}: {source}\n    fix: choose a free address with {setting}")]
    Bind {
        addr: SocketAddr,
        setting: &'static str,
        source: std::io::Error,
    },
    #[error("Twilio REST client: {0}")]
    Twilio(crate::twilio::rest::RestError),
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    #[error(
        "HELPLINE_PUBLIC_URL is not set, so no signed Twilio request could be checked against the URL Twilio calls \
         and every call would be refused\n    fix: set HELPLINE_PUBLIC_URL to the base URL configured on the Twilio number, \
         e.g. https://helpline.example.nhs.uk"
    )]
    MissingPublicUrl,
    #[error(
        "--insecure-dev accepts unsigned webhooks, so it only listens on a loopback address, not {0}\n    \
         fix: use HELPLINE_LISTEN=127.0.0.1:8080, or set TWILIO_AUTH_TOKEN and drop --insecure-dev"
    )]
    InsecureNotLoopback(SocketAddr),
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

/// The opening hours in force: the configured week, the stored (else embedded) bank
/// holidays and the closures in the database.
pub async fn live_hours(
    config: &Config,
    store: &dyn Store,
    clock: Arc<dyn Clock>,
) -> Result<LiveHours, AppError> {
    Ok(LiveHours::load(config.schedule.clone(), config.division, store, clock).await?)
}

/// The GOV.UK feed client, unless refreshing is switched off.
pub fn feed(config: &Config) -> Result<Option<Feed>, AppError> {
    config
        .bank_holidays_url
        .as_ref()
        .map(|url| Feed::new(FeedConfig::new(url.clone(), config.division)))
        .transpose()
        .map_err(AppError::from)
}

/// Twilio's REST API for this configuration (a stand-in that refuses every request when
/// the account SID or auth token is missing).
pub fn twilio_api(config: &Config) -> Result<Arc<dyn crate::twilio::rest::TwilioApi>, AppError> {
    use crate::twilio::rest::{NotConfigured, TwilioRest};
    match (&config.twilio_account_sid, &config.twilio_auth_token) {
        (Some(sid), Some(token)) => Ok(Arc::new(
            TwilioRest::new(
                &config.dashboard.twilio_api_base_url,
                sid,
                token.clone(),
                std::time::Duration::from_secs(10),
            )
            .map_err(AppError::Twilio)?,
        )),
        _ => Ok(Arc::new(NotConfigured)),
    }
}

/// The call service over an already-open store.
pub async fn calls(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    simulated: bool,
) -> Result<Calls, AppError> {
    let flow = load_flow(config)?;
    tracing::info!(source = %flow.source, nodes = flow.nodes.len(), "call flow loaded");
    let hours = live_hours(config, store.as_ref(), clock.clone()).await?;
    let events = if simulated {
        crate::events::Events::in_process()
    } else {
        crate::events::Events::for_database(&config.database_url).await?
    };
    let hours_words = hours.get().describe_schedule();
    let texts = crate::enquiries::texts::Texts::new(
        twilio_api(config)?,
        store.clone(),
        clock.clone(),
        &config.dashboard,
        hours_words,
    );
    let flow = Arc::new(flow);
    let metrics = Arc::new(crate::ops::Metrics::default());
    // Sealed with the store's data keys, like the database's columns.
    let outbox = (!simulated).then(|| {
        Arc::new(crate::enquiries::outbox::Outbox::new(
            &config.outbox_dir,
            config.outbox_max_records,
            store.data_keys(),
        ))
    });
    Ok(Calls {
        states: Arc::new(crate::calls::state::CallStates::default()),
        writer: Arc::new(crate::calls::writer::Writer::start(
            store.clone(),
            metrics.clone(),
        )),
        recheck: Arc::new(crate::calls::state::Recheck::every(
            std::time::Duration::from_millis(config.changes_check_ms),
        )),
        budget: std::time::Duration::from_millis(config.webhook_db_budget_ms),
        texts: Arc::new(texts),
        content: Arc::new(crate::messages::LiveContent::new(flow.clone())),
        flow,
        hours: Arc::new(hours),
        store,
        clock,
        events: Arc::new(events),
        metrics,
        simulated,
        test_numbers: Arc::new(config.test_numbers.clone()),
        missed_after_seconds: config.dashboard.missed_after_seconds,
        max_open_per_number: config.dashboard.max_open_per_number,
        outbox,
    })
}

/// A built service, bound to its port.
pub struct App {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    /// `/metrics` on its own address (HELPLINE_METRICS_LISTEN).
    metrics: Option<(tokio::net::TcpListener, axum::Router)>,
    /// Background work (the daily bank-holiday refresh), stopped with the server.
    background: Background,
    /// How long requests in flight may take after a stop signal.
    shutdown_grace: std::time::Duration,
    /// Call records queued for the database, written before the process ends.
    writer: Arc<crate::calls::writer::Writer>,
}

/// Background tasks that stop when dropped: with the server, or with an App never run.
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
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
        // Under the configured data keys; without one, PostgreSQL is refused unless in
        // development (docs/SECURITY.md, "Data keys").
        let store = store::open_with_replica(config, insecure_dev).await?;
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
            if !config.listen.ip().is_loopback() {
                return Err(AppError::InsecureNotLoopback(config.listen));
            }
            tracing::warn!("INSECURE development mode: Twilio signatures are NOT checked; never expose this to a network");
        } else if !config.public_url_configured {
            return Err(AppError::MissingPublicUrl);
        }
        let calls = calls(config, store.clone(), clock.clone(), false).await?;
        let hours = calls.hours.clone();
        if let Some(w) = freshness_warning(hours.get().holidays(), clock.now()) {
            tracing::warn!("{w}");
        }
        let calls = Arc::new(calls);
        let writer = calls.writer.clone();
        let outbox = calls.outbox.clone();
        let outbox_store = store.clone();
        // Statistics roll-ups, in the background from the start.
        let rollups = crate::stats::rollup::spawn_hourly(
            store.clone(),
            calls.flow.clone(),
            hours.clone(),
            clock.clone(),
        );
        // For the retention purge, started once the service is bound (below).
        let purge_with = (
            store.clone(),
            calls.flow.clone(),
            hours.clone(),
            clock.clone(),
        );
        let ops = crate::ops::OpsState {
            calls: calls.clone(),
            metrics: calls.metrics.clone(),
        };
        let metrics = match config.metrics_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| AppError::Bind {
                        addr,
                        setting: "HELPLINE_METRICS_LISTEN",
                        source,
                    })?;
                Some((listener, crate::ops::metrics_router(ops.clone())))
            }
            None => None,
        };
        let dashboard = crate::dashboard::Dashboard {
            store: store.clone(),
            clock: clock.clone(),
            settings: config.dashboard.clone(),
            policy: crate::staff::SessionPolicy {
                idle: chrono::Duration::minutes(
                    i64::try_from(config.dashboard.session_idle_minutes).unwrap_or(30),
                ),
                absolute: chrono::Duration::hours(
                    i64::try_from(config.dashboard.session_max_hours).unwrap_or(10),
                ),
            },
            throttle: crate::staff::Throttle::default(),
            https: config.public_url.starts_with("https://"),
            public_url: config.public_url.clone(),
            twilio: twilio_api(config)?,
            events: calls.events.clone(),
            hours: calls.hours.clone(),
            content: calls.content.clone(),
            queue_name: calls.flow.queue_name(),
            flow: calls.flow.clone(),
            texts: calls.texts.clone(),
            webhook_auth: WebhookAuth::new(config.twilio_auth_token.clone(), &config.public_url),
            voice: Voice {
                voice: config.voice.clone(),
                language: config.language.clone(),
            },
        };
        let state = WebhookState {
            calls,
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
                setting: "HELPLINE_LISTEN",
                source,
            })?;
        // The first refresh runs in the background: startup and calls never wait for the network.
        let mut background = match feed(config)? {
            Some(feed) => {
                // Names this process in the refresh lease.
                let instance = format!(
                    "instance-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                vec![crate::hours::refresh::spawn_daily(
                    feed, store, hours, clock, instance,
                )]
            }
            None => {
                tracing::info!("bank-holiday refresh is off (HELPLINE_BANK_HOLIDAYS_URL=off)");
                vec![]
            }
        };
        background.push(rollups);
        // Call-back requests kept while the database was away go in once it is back.
        if let Some(outbox) = &outbox {
            tracing::info!(file = %outbox.path().display(), "enquiry outbox for this instance");
            background.push(crate::enquiries::outbox::spawn_replay(
                outbox.clone(),
                outbox_store,
                std::time::Duration::from_secs(config.outbox_replay_seconds),
            ));
        }
        // The retention purge: daily, on whichever instance holds the day's lease.
        let (store, flow, hours, clock) = purge_with;
        background.push(crate::purge::spawn_daily(
            store,
            twilio_api(config)?,
            flow,
            hours,
            clock,
            format!(
                "instance-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            config.retention_days,
        ));
        Ok(Self {
            listener,
            router: crate::http::router(state, ops, dashboard, metrics.is_none()),
            metrics,
            background: Background(background),
            shutdown_grace: std::time::Duration::from_secs(config.shutdown_seconds),
            writer,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, AppError> {
        self.listener.local_addr().map_err(AppError::Serve)
    }

    /// Where `/metrics` is served when it has its own listener.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Self {
            listener,
            router,
            metrics,
            background,
            shutdown_grace,
            writer,
        } = self;
        // The metrics listener stops with the main one.
        let metrics_task =
            metrics.map(|(l, r)| tokio::spawn(async move { axum::serve(l, r).await }));
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        };
        let server = std::future::IntoFuture::into_future(
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(signal),
        );
        // Requests in flight get `shutdown_grace` to finish; then the process stops regardless.
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(shutdown_grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let served = tokio::select! {
            r = server => r,
            () = deadline => {
                tracing::warn!(seconds = shutdown_grace.as_secs(), "requests still in flight at the shutdown deadline; stopping");
                Ok(())
            }
        };
        if let Some(t) = metrics_task {
            t.abort();
        }
        // Call records still queued go in before the process ends (if the database takes them).
        if !writer.flush(shutdown_grace).await {
            tracing::error!(
                waiting = writer.waiting(),
                "call records not written at shutdown: the database did not take them in time"
            );
        }
        drop(background);
        served.map_err(AppError::Serve)
    }
}
