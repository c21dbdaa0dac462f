//! Router assembly and the middleware every request passes through.

use axum::http::{header, HeaderValue, Request};
use axum::routing::get;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::calls::webhooks::{self, WebhookState};
use crate::twilio::extract::MAX_WEBHOOK_BODY;

/// The whole HTTP surface.
/// The whole HTTP surface; `/metrics` only when it has no listener of its own.
pub fn router(
    webhooks: WebhookState,
    ops: crate::ops::OpsState,
    dashboard: crate::dashboard::Dashboard,
    with_metrics: bool,
) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let metrics = ops.metrics.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .merge(webhooks::router(webhooks))
        .merge(crate::dashboard::router(dashboard))
        .merge(crate::ops::router(ops, with_metrics))
        // After routing, so requests are counted by route pattern, never by their values.
        .route_layer(axum::middleware::from_fn_with_state(metrics, crate::ops::track))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                // Only the method, the path and the request id: never the query or the body,
                // which can hold callers' numbers.
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri().path()), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                // Refuses an over-long body from its Content-Length before reading it (413).
                .layer(RequestBodyLimitLayer::new(MAX_WEBHOOK_BODY)),
        )
}

/// The path as logs may show it: a one-time set-up link's token is a secret.
fn loggable_path(path: &str) -> &str {
    if path.starts_with("/setup/") {
        "/setup/[token]"
    } else {
        path
    }
}

/// Alive: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}
