//! `helpline dev seed`: a database full of realistic made-up calls (see `seed`).

use chrono::{DateTime, Utc};

/// Fills `url` with `calls` made-up calls over the `days` before `now`; returns a summary.
pub async fn seed(
    url: &str,
    calls: u64,
    days: u32,
    now: DateTime<Utc>,
) -> Result<String, crate::store::StoreError> {
    let _ = (url, calls, days, now);
    Err(crate::store::StoreError::Corrupt("not written yet".into()))
}
