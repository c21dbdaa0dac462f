//! Operations endpoints: `/readyz` (can this instance serve calls, and what needs
//! attention) and `/metrics` (Prometheus text format).

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::calls::Calls;
use crate::hours::live::{freshness_warning, future_days};
use crate::hours::{division_key, LONDON};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s: Twilio gives up at 15 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

type IntGauge = Gauge<i64, AtomicI64>;

/// The service's metrics (one registry per process; Prometheus adds instances up).
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: Family<HttpLabels, Histogram, fn() -> Histogram>,
    calls: Family<OutcomeLabels, Counter>,
    queue_size: IntGauge,
    enquiries_open: IntGauge,
    enquiries_overdue: IntGauge,
    db_connections: Family<StateLabels, IntGauge>,
    calendar_future_days: IntGauge,
    calendar_short: IntGauge,
    calendar_age_seconds: IntGauge,
    outbox_records: IntGauge,
    call_writes_waiting: IntGauge,
    call_writes_dropped: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("helpline");
        let m = Self {
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency_histogram),
            calls: Family::default(),
            queue_size: IntGauge::default(),
            enquiries_open: IntGauge::default(),
            enquiries_overdue: IntGauge::default(),
            db_connections: Family::default(),
            calendar_future_days: IntGauge::default(),
            calendar_short: IntGauge::default(),
            calendar_age_seconds: IntGauge::default(),
            outbox_records: IntGauge::default(),
            call_writes_waiting: IntGauge::default(),
            call_writes_dropped: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            m.http_latency.clone(),
        );
        registry.register(
            "calls",
            "Call events by outcome: started, callback-requested, answered, abandoned, left-for-callback, queue-failed, gave-up, failed",
            m.calls.clone(),
        );
        registry.register(
            "queue_size",
            "Callers waiting in the adviser queue",
            m.queue_size.clone(),
        );
        registry.register(
            "enquiries_open",
            "Requests for a call back not yet dealt with",
            m.enquiries_open.clone(),
        );
        registry.register(
            "enquiries_overdue",
            "Open requests past the promised call-back date",
            m.enquiries_overdue.clone(),
        );
        registry.register(
            "db_connections",
            "Database pool connections by state (idle, in_use)",
            m.db_connections.clone(),
        );
        registry.register(
            "calendar_future_days",
            "Days from today to the last known bank holiday",
            m.calendar_future_days.clone(),
        );
        registry.register(
            "calendar_short",
            "1 when fewer than 6 months of future bank holidays are known",
            m.calendar_short.clone(),
        );
        registry.register(
            "calendar_age_seconds",
            "Seconds since the bank-holiday feed was last checked successfully (-1: never; embedded snapshot only)",
            m.calendar_age_seconds.clone(),
        );
        registry.register(
            "outbox_records",
            "Call-back requests in this instance's outbox, waiting for the database",
            m.outbox_records.clone(),
        );
        registry.register(
            "call_writes_waiting",
            "Call records (calls, steps, answers) queued for the database on this instance",
            m.call_writes_waiting.clone(),
        );
        registry.register(
            "call_writes_dropped",
            "Call records dropped because the database failed too long or refused them",
            m.call_writes_dropped.clone(),
        );
        Self { registry, ..m }
    }
}

impl Metrics {
    /// Counts a call event (never anything about the caller).
    pub fn call(&self, outcome: &'static str) {
        self.calls.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Sets the outbox gauge (records waiting for the database).
    pub fn outbox_records(&self, records: usize) {
        self.outbox_records
            .set(i64::try_from(records).unwrap_or(i64::MAX));
    }

    /// Sets the gauge of call records waiting for the database.
    pub fn call_writes_waiting(&self, writes: usize) {
        self.call_writes_waiting
            .set(i64::try_from(writes).unwrap_or(i64::MAX));
    }

    /// Counts call records given up on.
    pub fn call_writes_dropped(&self, writes: usize) {
        self.call_writes_dropped
            .inc_by(u64::try_from(writes).unwrap_or(u64::MAX));
    }

    fn request(&self, route: String, status: u16, seconds: f64) {
        let labels = HttpLabels { route, status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_latency.get_or_create(&labels).observe(seconds);
    }
}

/// Middleware: requests and latency by matched route (never the path's values or query).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    metrics.request(
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[derive(Clone)]
pub struct OpsState {
    pub calls: Arc<Calls>,
    pub metrics: Arc<Metrics>,
}

/// `/readyz`, and `/metrics` unless it has a listener of its own.
pub fn router(state: OpsState, with_metrics: bool) -> Router {
    let r = Router::new().route("/readyz", get(readyz));
    let r = if with_metrics {
        r.route("/metrics", get(metrics))
    } else {
        r
    };
    r.with_state(state)
}

/// Only `/metrics` (for `HELPLINE_METRICS_LISTEN`).
pub fn metrics_router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

#[derive(Debug, Serialize)]
struct Readiness {
    /// ready, degraded (serving, but something needs attention) or unavailable.
    status: &'static str,
    database: Check,
    migrations: Check,
    call_flow: FlowCheck,
    calendar: CalendarCheck,
    outbox: OutboxCheck,
    call_records: CallRecordsCheck,
}

/// Calls, steps and answers queued for the database ([`crate::calls::writer`]).
#[derive(Debug, Serialize)]
struct CallRecordsCheck {
    /// False while the database refuses them (they wait in memory meanwhile).
    ok: bool,
    waiting: usize,
}

/// Call-back requests kept on this instance's disk until the database takes them.
#[derive(Debug, Serialize)]
struct OutboxCheck {
    /// False while any request waits (the database was away when it was made).
    ok: bool,
    records: usize,
    /// The outbox can take more requests (callers can be served without the database).
    room: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

fn outbox_check(calls: &Calls) -> OutboxCheck {
    let records = calls.outbox.as_ref().map_or(0, |o| o.len());
    calls.metrics.outbox_records(records);
    OutboxCheck {
        ok: records == 0,
        records,
        room: calls.outbox.as_ref().is_some_and(|o| o.has_room()),
        file: calls
            .outbox
            .as_ref()
            .map(|o| o.path().display().to_string()),
    }
}

#[derive(Debug, Serialize)]
struct Check {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct FlowCheck {
    ok: bool,
    source: String,
    nodes: usize,
}

#[derive(Debug, Serialize)]
struct CalendarCheck {
    ok: bool,
    division: &'static str,
    source: String,
    fetched_at: Option<String>,
    /// The last successful check of the feed (a 304 counts): the age alerts should watch.
    checked_at: Option<String>,
    last_bank_holiday: Option<String>,
    future_days: i64,
    warning: Option<String>,
}

async fn calendar_check(calls: &Calls) -> CalendarCheck {
    // Report what the next call would use (the database may hold a newer calendar).
    if let Err(e) = calls.hours.sync(calls.store.as_ref()).await {
        tracing::warn!(error = %e, "readiness: cannot sync the opening hours");
    }
    let now = calls.clock.now();
    let hours = calls.hours.get();
    let holidays = hours.holidays();
    let today = now.with_timezone(&LONDON).date_naive();
    let key = division_key(calls.hours.division());
    let (fetched_at, checked_at) = match calls.store.stored_calendar(key).await {
        Ok(Some(stored)) => (
            Some(stored.fetched_at.to_rfc3339()),
            Some(stored.checked_at.to_rfc3339()),
        ),
        _ => (None, None),
    };
    let warning = freshness_warning(holidays, now);
    CalendarCheck {
        ok: warning.is_none(),
        division: key,
        source: holidays.source().to_string(),
        fetched_at,
        checked_at,
        last_bank_holiday: holidays.last_date().map(|d| d.to_string()),
        future_days: future_days(holidays, today),
        warning,
    }
}

/// How long `/readyz` waits for the database (probes give up after a second or two).
const PROBE_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

async fn readyz(State(s): State<OpsState>) -> Response {
    let ping = tokio::time::timeout(PROBE_BUDGET, s.calls.store.ping())
        .await
        .unwrap_or(Err(crate::store::StoreError::Database(
            sqlx::Error::PoolTimedOut,
        )));
    let database = match ping {
        Ok(()) => Check {
            ok: true,
            error: None,
        },
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            Check {
                ok: false,
                error: Some("the database cannot be reached (details in the log)".into()),
            }
        }
    };
    let current = tokio::time::timeout(PROBE_BUDGET, s.calls.store.migrations_current())
        .await
        .unwrap_or(Err(crate::store::StoreError::Database(
            sqlx::Error::PoolTimedOut,
        )));
    let migrations = match current {
        Ok(true) => Check {
            ok: true,
            error: None,
        },
        Ok(false) => Check {
            ok: false,
            error: Some(
                "the database schema is behind this version: run `helpline migrate`".into(),
            ),
        },
        Err(e) => {
            tracing::warn!(error = %e, "readiness: cannot read the migrations");
            Check {
                ok: false,
                error: Some("the schema version cannot be read (details in the log)".into()),
            }
        }
    };
    let calendar = calendar_check(&s.calls).await;
    let outbox = outbox_check(&s.calls);
    let call_records = CallRecordsCheck {
        ok: s.calls.writer.healthy(),
        waiting: s.calls.writer.waiting(),
    };
    // Callers are still served with the database away (answers from memory, requests for a
    // call back kept in the outbox): stay in the load balancer while the outbox has room.
    // A schema behind this version is a deployment fault: out.
    let status = if (database.ok && !migrations.ok) || (!database.ok && !outbox.room) {
        "unavailable"
    } else if !database.ok || !calendar.ok || !outbox.ok || !call_records.ok {
        "degraded"
    } else {
        "ready"
    };
    let body = Readiness {
        status,
        database,
        migrations,
        call_flow: FlowCheck {
            ok: true,
            source: s.calls.flow.source.clone(),
            nodes: s.calls.flow.nodes.len(),
        },
        calendar,
        outbox,
        call_records,
    };
    let code = if status == "unavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(s): State<OpsState>) -> Response {
    let calendar = calendar_check(&s.calls).await;
    let m = &s.metrics;
    m.calendar_future_days.set(calendar.future_days);
    m.calendar_short.set(i64::from(!calendar.ok));
    let age = calendar
        .checked_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(-1, |t| {
            (s.calls.clock.now() - t.with_timezone(&chrono::Utc)).num_seconds()
        });
    m.calendar_age_seconds.set(age);
    outbox_check(&s.calls);
    let now = s.calls.clock.now();
    let today = now.with_timezone(&LONDON).date_naive();
    match s.calls.store.gauges(now, today).await {
        Ok(g) => {
            m.queue_size.set(g.queue_size);
            m.enquiries_open.set(g.enquiries_open);
            m.enquiries_overdue.set(g.enquiries_overdue);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: database figures unavailable"),
    }
    let pool = s.calls.store.pool_stats();
    m.db_connections
        .get_or_create(&StateLabels { state: "idle" })
        .set(i64::from(pool.idle));
    m.db_connections
        .get_or_create(&StateLabels { state: "in_use" })
        .set(i64::from(pool.size.saturating_sub(pool.idle)));
    let mut text = String::new();
    if encode(&mut text, &m.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
