//! Operations endpoints: `/readyz` (can this instance serve calls, and what needs
//! attention) and `/metrics` (Prometheus text format).

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::calls::Calls;
use crate::hours::live::{freshness_warning, future_days};
use crate::hours::{division_key, LONDON};

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    calendar_future_days: Gauge<i64, AtomicI64>,
    calendar_short: Gauge<i64, AtomicI64>,
    calendar_age_seconds: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("helpline");
        let calendar_future_days = Gauge::<i64, AtomicI64>::default();
        let calendar_short = Gauge::<i64, AtomicI64>::default();
        let calendar_age_seconds = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "calendar_future_days",
            "Days from today to the last known bank holiday",
            calendar_future_days.clone(),
        );
        registry.register(
            "calendar_short",
            "1 when fewer than 6 months of future bank holidays are known",
            calendar_short.clone(),
        );
        registry.register(
            "calendar_age_seconds",
            "Seconds since the stored bank-holiday calendar was fetched (-1: embedded snapshot only)",
            calendar_age_seconds.clone(),
        );
        Self {
            registry,
            calendar_future_days,
            calendar_short,
            calendar_age_seconds,
        }
    }
}

#[derive(Clone)]
pub struct OpsState {
    pub calls: Arc<Calls>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

#[derive(Debug, Serialize)]
struct Readiness {
    /// ready, degraded (serving, but something needs attention) or unavailable.
    status: &'static str,
    database: Check,
    call_flow: FlowCheck,
    calendar: CalendarCheck,
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
    let fetched_at = match calls.store.stored_calendar(key).await {
        Ok(stored) => stored.map(|s| s.fetched_at.to_rfc3339()),
        Err(_) => None,
    };
    let warning = freshness_warning(holidays, now);
    CalendarCheck {
        ok: warning.is_none(),
        division: key,
        source: holidays.source().to_string(),
        fetched_at,
        last_bank_holiday: holidays.last_date().map(|d| d.to_string()),
        future_days: future_days(holidays, today),
        warning,
    }
}

async fn readyz(State(s): State<OpsState>) -> Response {
    let database = match s.calls.store.ping().await {
        Ok(()) => Check {
            ok: true,
            error: None,
        },
        Err(e) => Check {
            ok: false,
            error: Some(e.to_string()),
        },
    };
    let calendar = calendar_check(&s.calls).await;
    let status = if !database.ok {
        "unavailable"
    } else if !calendar.ok {
        "degraded"
    } else {
        "ready"
    };
    let body = Readiness {
        status,
        database,
        call_flow: FlowCheck {
            ok: true,
            source: s.calls.flow.source.clone(),
            nodes: s.calls.flow.nodes.len(),
        },
        calendar,
    };
    let code = if body.database.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(s): State<OpsState>) -> Response {
    let calendar = calendar_check(&s.calls).await;
    let m = &s.metrics;
    m.calendar_future_days.set(calendar.future_days);
    m.calendar_short.set(i64::from(!calendar.ok));
    let age = calendar
        .fetched_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(-1, |t| {
            (s.calls.clock.now() - t.with_timezone(&chrono::Utc)).num_seconds()
        });
    m.calendar_age_seconds.set(age);
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
