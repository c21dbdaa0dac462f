//! Rate limit on the JSON API per client network (issue 7): a script on a stolen session,
//! or a runaway integration, cannot hammer `/api/` (and so the database) from one place.
//! Sign-in has its own, stricter throttling (`login`). A generic cell rate limiter
//! (the `governor` crate) per address prefix: IPv4 whole, IPv6 by /64.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Addresses remembered before the forgotten ones are dropped.
const TIDY_AFTER: usize = 10_000;

/// Requests per minute per client network on `/api/`.
pub struct ApiLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl ApiLimiter {
    /// `per_minute` requests a minute, all of which may come at once.
    pub fn new(per_minute: u32) -> Arc<Self> {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Arc::new(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            clock: DefaultClock::default(),
        })
    }

    /// `None` when the request may go ahead, or how many seconds to wait.
    fn check(&self, address: &str) -> Option<u64> {
        let key = super::login::address_prefix(address);
        if self.limiter.len() > TIDY_AFTER {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&key) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(self.clock.now()).as_secs().max(1)),
        }
    }
}

/// Answers 429 (with `Retry-After` and a reason) to an address over its limit on `/api/`.
pub async fn limit_api(
    State(limits): State<Arc<ApiLimiter>>,
    req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let address = super::client_address(&parts);
    if let Some(wait) = limits.check(&address) {
        tracing::warn!(
            security = true,
            event = "api-rate-limited",
            "API requests refused: too many from one address"
        );
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.to_string())],
            axum::Json(serde_json::json!({
                "error": format!("too many requests from this address: try again in {wait} s")
            })),
        )
            .into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
