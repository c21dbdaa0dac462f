//! When the database fails mid-call, the caller still hears valid, useful words.

mod support;

use helpline::store::stats as st;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use helpline::app::App;
use helpline::clock::FixedClock;
use helpline::config::Config;
use helpline::enquiries::{AfterAttempt, Attempt, Filter, Note, Outcome};
use helpline::enquiries::{Enquiry, NewEnquiry};
use helpline::flows::{Answer, Answers};
use helpline::hours::Closure;
use helpline::staff::audit;
use helpline::staff::{Session, User};
use helpline::store::{
    CallEnd, CallRecord, NewCall, NewClosure, NewStep, StepRecord, Store, StoreError,
    StoredCalendar,
};
use support::{form_body, sign, PUBLIC};

/// A database that is down.
#[derive(Debug)]
struct DownStore {
    /// A database that hangs before failing (for the shutdown deadline).
    stall: Option<std::time::Duration>,
}

const DOWN: DownStore = DownStore { stall: None };

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::Database(sqlx::Error::PoolTimedOut))
}

#[async_trait]
impl helpline::store::DashboardStore for DownStore {
    async fn create_user(&self, _: &User) -> Result<(), StoreError> {
        down()
    }
    async fn user(&self, _: &str) -> Result<Option<User>, StoreError> {
        down()
    }
    async fn user_by_email(&self, _: &str) -> Result<Option<User>, StoreError> {
        down()
    }
    async fn user_by_setup_token(&self, _: &str) -> Result<Option<User>, StoreError> {
        down()
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        down()
    }
    async fn update_user(&self, _: &User) -> Result<bool, StoreError> {
        down()
    }
    async fn totp_last_step(&self, _: &str) -> Result<Option<i64>, StoreError> {
        down()
    }
    async fn use_totp_step(&self, _: &str, _: i64) -> Result<bool, StoreError> {
        down()
    }
    async fn replace_recovery_codes(&self, _: &str, _: &[String]) -> Result<(), StoreError> {
        down()
    }
    async fn use_recovery_code(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        down()
    }
    async fn create_session(&self, _: &Session) -> Result<(), StoreError> {
        down()
    }
    async fn session(&self, _: &str) -> Result<Option<Session>, StoreError> {
        down()
    }
    async fn touch_session(&self, _: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
        down()
    }
    async fn delete_session(&self, _: &str) -> Result<(), StoreError> {
        down()
    }
    async fn delete_user_sessions(&self, _: &str) -> Result<u64, StoreError> {
        down()
    }
    async fn delete_dead_sessions(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        down()
    }
    async fn record_login_failure(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
        _: &str,
    ) -> Result<(), StoreError> {
        down()
    }
    async fn forgive_login_attempt(&self, _: &str) -> Result<(), StoreError> {
        down()
    }
    async fn login_failures(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        down()
    }
    async fn clear_login_failures(&self, _: &str, _: &str) -> Result<(), StoreError> {
        down()
    }
    async fn append_audit(&self, _: &audit::NewEntry) -> Result<(), StoreError> {
        down()
    }
    async fn audit_entries(&self, _: &audit::Query) -> Result<Vec<audit::Entry>, StoreError> {
        down()
    }
    async fn enquiry(&self, _: &str) -> Result<Option<Enquiry>, StoreError> {
        down()
    }
    async fn open_enquiries(&self, _: &Filter) -> Result<Vec<Enquiry>, StoreError> {
        down()
    }
    async fn release_claim(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        down()
    }
    async fn record_attempt(
        &self,
        _: &str,
        _: &str,
        _: u32,
        _: Outcome,
        _: &AfterAttempt,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        down()
    }
    async fn attempts(&self, _: &str) -> Result<Vec<Attempt>, StoreError> {
        down()
    }
    async fn add_note(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        down()
    }
    async fn notes(&self, _: &str) -> Result<Vec<Note>, StoreError> {
        down()
    }
    async fn record_text(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
        _: &str,
        _: Option<&str>,
    ) -> Result<bool, StoreError> {
        down()
    }
    async fn texts(&self, _: &str) -> Result<Vec<(String, String)>, StoreError> {
        down()
    }
    async fn waiting_callers(
        &self,
        _: DateTime<Utc>,
    ) -> Result<Vec<helpline::store::WaitingCaller>, StoreError> {
        down()
    }
    async fn open_enquiry_for_number(&self, _: &str) -> Result<Option<Enquiry>, StoreError> {
        down()
    }
    async fn count_missed_call(&self, _: &str) -> Result<(), StoreError> {
        down()
    }
    async fn open_enquiry_count(&self, _: &str) -> Result<i64, StoreError> {
        down()
    }
}

#[async_trait]
impl helpline::store::stats::StatsStore for DownStore {
    async fn call_facts(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: st::Ended,
    ) -> Result<Vec<st::CallFacts>, StoreError> {
        down()
    }
    async fn step_facts(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: st::Ended,
    ) -> Result<Vec<st::StepFacts>, StoreError> {
        down()
    }
    async fn callback_requests(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        down()
    }
    async fn abandoned_calls(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<st::AbandonedFacts>, StoreError> {
        down()
    }
    async fn enquiry_facts(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<st::EnquiryFacts>, StoreError> {
        down()
    }
    async fn enquiry_groups(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: Option<&str>,
    ) -> Result<Vec<st::EnquiryGroup>, StoreError> {
        down()
    }
    async fn callback_totals(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: Option<&str>,
        _: chrono::NaiveDate,
    ) -> Result<st::CallbackTotals, StoreError> {
        down()
    }
    async fn first_attempt_minutes(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: Option<&str>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        down()
    }
    async fn attempt_outcome_counts(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: Option<&str>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        down()
    }
    async fn pending_first_attempts(
        &self,
        _: i64,
    ) -> Result<Vec<st::PendingFirstAttempt>, StoreError> {
        down()
    }
    async fn set_first_attempts(
        &self,
        _: &[(String, chrono::NaiveDate, i64)],
    ) -> Result<(), StoreError> {
        down()
    }
    async fn stored_days(
        &self,
        _: chrono::NaiveDate,
        _: chrono::NaiveDate,
    ) -> Result<Vec<st::StoredDay>, StoreError> {
        down()
    }
    async fn store_day(
        &self,
        _: chrono::NaiveDate,
        _: i64,
        _: Option<DateTime<Utc>>,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        down()
    }
}

#[async_trait]
impl helpline::store::messages::MessagesStore for DownStore {
    async fn save_draft(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        down()
    }
    async fn draft(
        &self,
        _: &str,
    ) -> Result<Option<helpline::store::messages::MessageVersion>, StoreError> {
        down()
    }
    async fn publish_message(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
        _: Option<&str>,
    ) -> Result<helpline::store::messages::MessageVersion, StoreError> {
        down()
    }
    async fn message_versions(
        &self,
        _: &str,
    ) -> Result<Vec<helpline::store::messages::MessageVersion>, StoreError> {
        down()
    }
    async fn current_message(
        &self,
        _: &str,
    ) -> Result<Option<helpline::store::messages::MessageVersion>, StoreError> {
        down()
    }
    async fn content_revision(&self) -> Result<i64, StoreError> {
        down()
    }
}

#[async_trait]
impl helpline::store::RetentionStore for DownStore {
    async fn purge_preview(
        &self,
        _: DateTime<Utc>,
    ) -> Result<helpline::store::retention::PurgePreview, StoreError> {
        down()
    }
    async fn purge_batch(
        &self,
        _: DateTime<Utc>,
        _: u32,
        _: DateTime<Utc>,
    ) -> Result<helpline::store::retention::PurgeBatch, StoreError> {
        down()
    }
    async fn pending_recording_deletions(
        &self,
        _: u32,
    ) -> Result<Vec<helpline::store::retention::PendingRecording>, StoreError> {
        down()
    }
    async fn recording_deletion_done(&self, _: &str) -> Result<(), StoreError> {
        down()
    }
    async fn recording_deletion_failed(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: &str,
    ) -> Result<(), StoreError> {
        down()
    }
}

#[async_trait]
impl Store for DownStore {
    async fn apply_writes(
        &self,
        _: &[helpline::store::CallWrite],
    ) -> Result<Vec<helpline::store::Applied>, StoreError> {
        if let Some(d) = self.stall {
            tokio::time::sleep(d).await;
        }
        down()
    }
    fn data_keys(&self) -> Arc<helpline::crypto::Keyring> {
        Arc::new(helpline::crypto::Keyring::ephemeral())
    }
    async fn record_call(&self, _: &NewCall) -> Result<(), StoreError> {
        if let Some(d) = self.stall {
            tokio::time::sleep(d).await;
        }
        down()
    }
    async fn record_step(&self, _: &NewStep) -> Result<bool, StoreError> {
        down()
    }
    async fn answers(&self, _: &str) -> Result<Answers, StoreError> {
        down()
    }
    async fn save_answer(&self, _: &str, _: &Answer) -> Result<(), StoreError> {
        down()
    }
    async fn create_enquiry_with(
        &self,
        _: &NewEnquiry,
        _: Option<&helpline::enquiries::Reference>,
    ) -> Result<Enquiry, StoreError> {
        down()
    }
    async fn enquiry_for_call(&self, _: &str) -> Result<Option<Enquiry>, StoreError> {
        down()
    }
    async fn list_enquiries(&self) -> Result<Vec<Enquiry>, StoreError> {
        down()
    }
    async fn queue_joined(&self, _: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
        down()
    }
    async fn queue_left(
        &self,
        _: &str,
        _: &str,
        _: Option<i64>,
        _: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        down()
    }
    async fn answered_since(&self, _: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        down()
    }
    async fn call_ended(&self, _: &CallEnd) -> Result<(), StoreError> {
        down()
    }
    async fn call(&self, _: &str) -> Result<Option<CallRecord>, StoreError> {
        down()
    }
    async fn steps(&self, _: &str) -> Result<Vec<StepRecord>, StoreError> {
        down()
    }
    async fn add_closure(&self, _: &NewClosure) -> Result<Closure, StoreError> {
        down()
    }
    async fn list_closures(&self) -> Result<Vec<Closure>, StoreError> {
        down()
    }
    async fn closures_ending_after(&self, _: DateTime<Utc>) -> Result<Vec<Closure>, StoreError> {
        down()
    }
    async fn remove_closure(&self, _: i64) -> Result<bool, StoreError> {
        down()
    }
    async fn hours_revision(&self) -> Result<i64, StoreError> {
        down()
    }
    async fn stored_calendar(&self, _: &str) -> Result<Option<StoredCalendar>, StoreError> {
        down()
    }
    async fn save_calendar(&self, _: &StoredCalendar) -> Result<(), StoreError> {
        down()
    }
    async fn calendar_checked(&self, _: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
        down()
    }
    async fn claim_enquiry(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        down()
    }
    async fn claim_next_enquiry(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: chrono::NaiveDate,
    ) -> Result<Option<Enquiry>, StoreError> {
        down()
    }
    async fn enquiry_owner(&self, _: &str) -> Result<Option<String>, StoreError> {
        down()
    }
    async fn try_lease(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        down()
    }
    async fn gauges(
        &self,
        _: DateTime<Utc>,
        _: chrono::NaiveDate,
    ) -> Result<helpline::store::Gauges, StoreError> {
        down()
    }
    fn pool_stats(&self) -> helpline::store::PoolStats {
        helpline::store::PoolStats::default()
    }
    async fn migrations_current(&self) -> Result<bool, StoreError> {
        down()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        down()
    }
}

/// A signed service (Tuesday 10am) over `store`, running until the test ends.
async fn serve_over(store: DownStore) -> std::net::SocketAddr {
    let config = Config::from_pairs(&[
        ("HELPLINE_LISTEN", "127.0.0.1:0"),
        ("TWILIO_AUTH_TOKEN", support::TOKEN),
        ("HELPLINE_PUBLIC_URL", PUBLIC),
        ("HELPLINE_BANK_HOLIDAYS_URL", "off"),
    ])
    .unwrap();
    let clock = FixedClock::new(support::at("2026-11-24T10:00:00Z"));
    let app = App::build_with_store(&config, Arc::new(clock), Arc::new(store), false)
        .await
        .unwrap();
    let addr = app.local_addr().unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    addr
}

/// What Twilio hears for one signed webhook to a service whose database is down.
async fn said_with_database_down(
    addr: std::net::SocketAddr,
    path: &str,
    call_sid: &str,
    digits: &str,
) -> (String, bool) {
    let url = format!("{PUBLIC}{path}");
    let params = vec![
        ("CallSid".to_string(), call_sid.to_string()),
        ("From".to_string(), "+447700900123".to_string()),
        ("Digits".to_string(), digits.to_string()),
    ];
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sign(&url, &params))
        .body(form_body(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "{path}: Twilio must get valid TwiML, not an error"
    );
    let body = resp.text().await.unwrap();
    let doc = roxmltree::Document::parse(&body).expect("well-formed");
    let said: String = doc
        .descendants()
        .filter(|n| n.has_tag_name("Say"))
        .filter_map(|n| n.text())
        .collect();
    let hangs_up = doc.descendants().any(|n| n.has_tag_name("Hangup"));
    (said, hangs_up)
}

#[tokio::test]
async fn database_down_still_gives_the_caller_guidance_not_an_error() {
    let addr = serve_over(DOWN).await;

    // A call this instance answers from the start goes on from memory: the greeting, then
    // the fraud guidance, as with the database up.
    let sid = "CA00000000000000000000000000000001";
    let (said, hangs_up) = said_with_database_down(addr, "/twilio/voice", sid, "").await;
    assert!(said.contains("thank you for calling"), "{said}");
    assert!(!hangs_up && !said.contains("gone wrong"), "{said}");
    let (said, _) =
        said_with_database_down(addr, "/twilio/step/main_menu?seq=1&attempt=0", sid, "3").await;
    assert!(said.contains("Action Fraud"), "{said}");
    assert!(!said.contains("gone wrong"), "{said}");

    // A call whose earlier steps another instance answered (so its answers are only in the
    // database) gets the apology, with the fraud line's number: still never an error.
    let (said, hangs_up) = said_with_database_down(
        addr,
        "/twilio/step/main_menu?seq=4&attempt=0",
        "CA00000000000000000000000000000002",
        "2",
    )
    .await;
    assert!(
        said.contains("something has gone wrong on our side"),
        "{said}"
    );
    assert!(said.contains("0 3 0 0, 1 2 3, 2 0 4 0"), "{said}");
    assert!(hangs_up);
}

/// A database that hangs does not hold the caller: the webhook answers from memory within
/// its budget (the stall is 60 s; the test's bound, 10 s, only catches a hang).
#[tokio::test]
async fn a_stalled_database_does_not_hold_the_caller() {
    let addr = serve_over(DownStore {
        stall: Some(std::time::Duration::from_secs(60)),
    })
    .await;
    let sid = "CA00000000000000000000000000000003";
    let answered = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let (said, _) = said_with_database_down(addr, "/twilio/voice", sid, "").await;
        assert!(said.contains("thank you for calling"), "{said}");
        let (said, _) =
            said_with_database_down(addr, "/twilio/step/main_menu?seq=1&attempt=0", sid, "1").await;
        assert!(!said.contains("gone wrong"), "{said}");
    })
    .await;
    assert!(
        answered.is_ok(),
        "the webhooks waited on the stalled database"
    );
}

#[tokio::test]
async fn serve_refuses_to_start_without_an_auth_token() {
    let config = Config::from_pairs(&[
        ("HELPLINE_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", "sqlite::memory:"),
        ("HELPLINE_BANK_HOLIDAYS_URL", "off"),
    ])
    .unwrap();
    let clock = Arc::new(FixedClock::new(support::at("2026-11-24T10:00:00Z")));
    let err = App::build(&config, clock.clone(), false)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("TWILIO_AUTH_TOKEN is not set"),
        "{err}"
    );
    assert!(
        App::build(&config, clock, true).await.is_ok(),
        "--insecure-dev allows it"
    );
}

#[tokio::test]
async fn a_signed_service_needs_its_public_url_and_dev_mode_stays_on_loopback() {
    let clock = Arc::new(FixedClock::new(support::at("2026-11-24T10:00:00Z")));
    let config = Config::from_pairs(&[
        ("HELPLINE_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", "sqlite::memory:"),
        ("TWILIO_AUTH_TOKEN", "t"),
        ("HELPLINE_BANK_HOLIDAYS_URL", "off"),
    ])
    .unwrap();
    let err = App::build(&config, clock.clone(), false)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("HELPLINE_PUBLIC_URL is not set"),
        "{err}"
    );

    let config = Config::from_pairs(&[
        ("HELPLINE_LISTEN", "0.0.0.0:0"),
        ("DATABASE_URL", "sqlite::memory:"),
        ("HELPLINE_BANK_HOLIDAYS_URL", "off"),
    ])
    .unwrap();
    let err = App::build(&config, clock, true)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("only listens on a loopback address"),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_stops_promptly_when_nothing_is_in_flight() {
    let config = Config::from_pairs(&[
        ("HELPLINE_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", "sqlite::memory:"),
        ("HELPLINE_BANK_HOLIDAYS_URL", "off"),
        ("HELPLINE_SHUTDOWN_SECONDS", "30"),
    ])
    .unwrap();
    let clock = Arc::new(FixedClock::new(support::at("2026-11-24T10:00:00Z")));
    let app = App::build(&config, clock, true).await.unwrap();
    let addr = app.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    assert_eq!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    tx.send(()).unwrap();
    // Bounded wait: the grace period is 30 s, an idle server must not use it.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    assert!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn shutdown_stops_at_the_deadline_even_with_a_request_stuck() {
    let config = Config::from_pairs(&[
        ("HELPLINE_LISTEN", "127.0.0.1:0"),
        ("TWILIO_AUTH_TOKEN", support::TOKEN),
        ("HELPLINE_PUBLIC_URL", PUBLIC),
        ("HELPLINE_BANK_HOLIDAYS_URL", "off"),
        ("HELPLINE_SHUTDOWN_SECONDS", "1"),
    ])
    .unwrap();
    let clock = Arc::new(FixedClock::new(support::at("2026-11-24T10:00:00Z")));
    let stuck = DownStore {
        stall: Some(std::time::Duration::from_secs(60)),
    };
    let app = App::build_with_store(&config, clock, Arc::new(stuck), false)
        .await
        .unwrap();
    let addr = app.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    // A webhook that will hang on the database.
    let url = format!("{PUBLIC}/twilio/voice");
    let params = vec![(
        "CallSid".to_string(),
        "CA00000000000000000000000000000009".to_string(),
    )];
    let request = tokio::spawn(
        reqwest::Client::new()
            .post(format!("http://{addr}/twilio/voice"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sign(&url, &params))
            .body(form_body(&params))
            .send(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tx.send(()).unwrap();
    // Bounded wait: the deadline is 1 s; the stuck request would take 60 s.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the server stopped at its deadline: {stopped:?}"
    );
    request.abort();
}
