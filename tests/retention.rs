//! Data retention (issue 7): `helpline purge` and the daily purge, on both backends. A
//! closed enquiry past the period goes with its call, steps, answers, attempts, notes and
//! texts, and its recording is deleted at Twilio (a mock); open and recently closed
//! enquiries stay; a dry run changes nothing; the audit log is untouched.

mod support;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::SecretString;
use wiremock::matchers::{any, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use helpline::enquiries::{AfterAttempt, Category, NewEnquiry, Outcome, Recording, Status, Trust};
use helpline::flows::Answer;
use helpline::phone::UkNumber;
use helpline::purge::{self, PurgeReport};
use helpline::staff::audit::{Action, NewEntry, Query};
use helpline::staff::Role;
use helpline::store::retention::PurgeCounts;
use helpline::store::{NewCall, NewStep, Store};
use helpline::twilio::rest::{NotConfigured, TwilioRest};
use support::at;
use support::db::TestDb;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// The recording left with the old closed enquiry, and one left by a caller who hung up
/// before the enquiry was stored.
const RE_OLD: &str = "RE00000000000000000000000000000001";
const RE_ORPHAN: &str = "RE00000000000000000000000000000002";
const RE_OPEN: &str = "RE00000000000000000000000000000003";
const NOW: &str = "2027-06-01T12:00:00Z";

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let db = TestDb::sqlite();
                super::$name(helpline::store::connect(db.url()).await.unwrap()).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(db) = TestDb::postgres().await else { return };
                super::$name(helpline::store::connect(db.url()).await.unwrap()).await;
            }
        }
    )*};
}

on_both_backends!(
    old_closed_enquiries_and_calls_go_open_and_recent_ones_stay,
    a_dry_run_changes_nothing_and_asks_twilio_nothing,
    a_recording_twilio_could_not_delete_is_tried_again,
);

fn recording_url(sid: &str) -> String {
    format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}")
}

fn twilio(server: &MockServer) -> TwilioRest {
    TwilioRest::new(
        &server.uri(),
        ACCOUNT,
        SecretString::from(TOKEN.to_string()),
        std::time::Duration::from_secs(5),
    )
    .expect("client")
}

fn basic_auth() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    )
}

fn delete_path(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}.json")
}

/// A call with two steps and the answers of a call-back request (and a recorded message).
async fn call(store: &dyn Store, sid: &str, started: DateTime<Utc>, recording: Option<&str>) {
    store
        .record_call(&NewCall {
            call_sid: sid.into(),
            caller: Some("+447700900123".into()),
            started_at: started,
            in_hours: true,
            simulated: false,
            test_call: false,
        })
        .await
        .unwrap();
    for seq in 0..2 {
        store
            .record_step(&NewStep {
                call_sid: sid.into(),
                seq,
                node: "main".into(),
                input: "dtmf".into(),
                outcome: "option-2".into(),
                at: started,
                path: vec!["main".into()],
            })
            .await
            .unwrap();
    }
    store
        .save_answer(sid, &Answer::Trust(Trust::AlderHey))
        .await
        .unwrap();
    if let Some(re) = recording {
        store
            .save_answer(
                sid,
                &Answer::Message(Recording {
                    url: recording_url(re),
                    duration_seconds: 9,
                }),
            )
            .await
            .unwrap();
    }
}

/// An enquiry from `sid`; closed (resolved, by a handler, with a note and a text) at
/// `closed` when given. Returns its id.
async fn enquiry(
    store: &dyn Store,
    sid: &str,
    created: DateTime<Utc>,
    recording: Option<&str>,
    closed: Option<DateTime<Utc>>,
    handler: &str,
) -> String {
    let e = store
        .create_enquiry(&NewEnquiry {
            call_sid: sid.into(),
            callback_number: UkNumber::parse("07700900123").unwrap(),
            trust: Trust::AlderHey,
            category: Category::DataConcern,
            recording: recording.map(|re| Recording {
                url: recording_url(re),
                duration_seconds: 9,
            }),
            created_at: created,
            callback_due: NaiveDate::from_ymd_opt(2027, 1, 20).unwrap(),
            source: helpline::enquiries::Source::CallbackRequest,
            waiting_since: created,
        })
        .await
        .unwrap();
    store
        .add_note(&e.id, handler, "rang, spoke to the caller", created)
        .await
        .unwrap();
    store
        .record_text(&e.id, "reference", created, "sent", Some("SM1"))
        .await
        .unwrap();
    if let Some(closed) = closed {
        assert!(store
            .claim_enquiry(&e.id, handler, closed, closed)
            .await
            .unwrap());
        let effect = AfterAttempt {
            status: Status::Resolved,
            next_attempt_on: None,
            closed: true,
            unanswered: 0,
        };
        assert!(store
            .record_attempt(&e.id, handler, 0, Outcome::Resolved, &effect, closed)
            .await
            .unwrap());
    }
    e.id
}

struct Fixture {
    old: String,
    open: String,
    recent: String,
}

/// Now is 1 June 2027; 90 days back is 3 March.
async fn fixture(store: &dyn Store) -> Fixture {
    let (handler, _) = helpline::staff::accounts::add(
        store,
        "handler@example.nhs.uk",
        Role::Handler,
        None,
        at("2026-12-01T09:00:00Z"),
    )
    .await
    .unwrap();
    let h = handler.id.as_str();
    let long_ago = at("2027-01-10T10:00:00Z");
    call(store, "CAold", long_ago, Some(RE_OLD)).await;
    let old = enquiry(
        store,
        "CAold",
        long_ago,
        Some(RE_OLD),
        Some(at("2027-01-12T10:00:00Z")),
        h,
    )
    .await;
    call(store, "CAopen", long_ago, Some(RE_OPEN)).await;
    let open = enquiry(store, "CAopen", long_ago, Some(RE_OPEN), None, h).await;
    call(store, "CArecent", long_ago, None).await;
    let recent = enquiry(
        store,
        "CArecent",
        long_ago,
        None,
        Some(at("2027-05-01T10:00:00Z")),
        h,
    )
    .await;
    // Calls without an enquiry: one past the period (its caller hung up after recording),
    // one within it.
    call(
        store,
        "CAorphan",
        at("2027-02-01T10:00:00Z"),
        Some(RE_ORPHAN),
    )
    .await;
    call(store, "CAlately", at("2027-05-20T10:00:00Z"), None).await;
    store
        .append_audit(&NewEntry {
            at: at("2027-01-12T10:00:00Z"),
            actor_id: Some(handler.id.clone()),
            actor: handler.email.clone(),
            action: Action::EnquiryClosed,
            target: Some(old.clone()),
            address: Some("10.0.0.1".into()),
            detail: Some("resolved".into()),
        })
        .await
        .unwrap();
    Fixture { old, open, recent }
}

fn expected_counts() -> PurgeCounts {
    PurgeCounts {
        enquiries: 1,
        calls: 2,
        call_steps: 4,
        // trust + recording_url + recording_duration, on each call
        call_answers: 6,
        callback_attempts: 1,
        enquiry_notes: 1,
        texts_sent: 1,
        recordings: 2,
    }
}

async fn audit_log(store: &dyn Store) -> Vec<helpline::staff::audit::Entry> {
    store
        .audit_entries(&Query {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn old_closed_enquiries_and_calls_go_open_and_recent_ones_stay(store: Arc<dyn Store>) {
    let f = fixture(store.as_ref()).await;
    let audit_before = audit_log(store.as_ref()).await;

    let server = MockServer::start().await;
    for re in [RE_OLD, RE_ORPHAN] {
        Mock::given(method("DELETE"))
            .and(path(delete_path(re)))
            .and(header("authorization", basic_auth().as_str()))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
    }
    let report = purge::run(store.as_ref(), &twilio(&server), 90, at(NOW), false, None)
        .await
        .unwrap();
    assert_eq!(
        report,
        PurgeReport {
            dry_run: false,
            retention_days: 90,
            cutoff: at("2027-03-03T12:00:00Z"),
            removed: expected_counts(),
            recordings_deleted: 2,
            recordings_already_gone: 0,
            recordings_failed: 0,
            recordings_pending: 0,
        }
    );

    // Gone: the old enquiry with everything hanging off it, its call, the old orphan call.
    assert!(store.enquiry(&f.old).await.unwrap().is_none());
    assert!(store.attempts(&f.old).await.unwrap().is_empty());
    assert!(store.notes(&f.old).await.unwrap().is_empty());
    assert!(store.texts(&f.old).await.unwrap().is_empty());
    for sid in ["CAold", "CAorphan"] {
        assert!(store.call(sid).await.unwrap().is_none(), "{sid}");
        assert!(store.steps(sid).await.unwrap().is_empty(), "{sid}");
        assert!(store.answers(sid).await.unwrap().trust.is_none(), "{sid}");
    }
    // Kept: the open enquiry (though older), the recently closed one, their calls, the recent call.
    for id in [&f.open, &f.recent] {
        let e = store.enquiry(id).await.unwrap().expect("kept");
        assert_eq!(store.notes(id).await.unwrap().len(), 1);
        assert_eq!(store.texts(id).await.unwrap().len(), 1);
        assert!(store.call(&e.call_sid).await.unwrap().is_some());
        assert_eq!(store.steps(&e.call_sid).await.unwrap().len(), 2);
    }
    assert_eq!(store.attempts(&f.recent).await.unwrap().len(), 1);
    assert!(store.call("CAlately").await.unwrap().is_some());
    assert_eq!(store.list_enquiries().await.unwrap().len(), 2);

    // The audit log: every entry as it was, plus one for the purge (counts only).
    let audit_after = audit_log(store.as_ref()).await;
    assert_eq!(audit_after.len(), audit_before.len() + 1);
    assert_eq!(&audit_after[1..], &audit_before[..]);
    let purged = &audit_after[0];
    assert_eq!(purged.action, "retention.purged");
    let detail = purged.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("enquiries 1, calls 2"), "{detail}");
    assert!(
        !detail.contains("07700") && !detail.contains("RE0"),
        "{detail}"
    );

    // A second run finds nothing more and asks Twilio nothing more (the mocks expect one each).
    let again = purge::run(store.as_ref(), &twilio(&server), 90, at(NOW), false, None)
        .await
        .unwrap();
    assert!(again.removed.is_empty(), "{again:?}");
    assert_eq!(audit_log(store.as_ref()).await.len(), audit_after.len());
}

async fn a_dry_run_changes_nothing_and_asks_twilio_nothing(store: Arc<dyn Store>) {
    let f = fixture(store.as_ref()).await;
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&server)
        .await;
    let enquiries = store.list_enquiries().await.unwrap();
    let audit = audit_log(store.as_ref()).await;
    let preview = store
        .purge_preview(purge::cutoff(at(NOW), 90))
        .await
        .unwrap();
    let mut refs = preview.recordings.clone();
    refs.sort();
    assert_eq!(refs, vec![recording_url(RE_OLD), recording_url(RE_ORPHAN)]);
    assert_eq!(preview.oldest_call, Some(at("2027-01-10T10:00:00Z")));

    let report = purge::run(store.as_ref(), &twilio(&server), 90, at(NOW), true, None)
        .await
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.removed, expected_counts());
    assert_eq!(report.recordings_deleted, 0);
    assert_eq!(report.recordings_pending, 2);

    assert_eq!(store.list_enquiries().await.unwrap(), enquiries);
    assert_eq!(audit_log(store.as_ref()).await, audit);
    assert!(store.enquiry(&f.old).await.unwrap().is_some());
    assert_eq!(store.attempts(&f.old).await.unwrap().len(), 1);
    for sid in ["CAold", "CAorphan", "CAopen", "CArecent", "CAlately"] {
        assert!(store.call(sid).await.unwrap().is_some(), "{sid}");
    }
    assert!(store
        .pending_recording_deletions(100)
        .await
        .unwrap()
        .is_empty());
    // A longer period keeps everything.
    let longer = purge::run(store.as_ref(), &twilio(&server), 365, at(NOW), true, None)
        .await
        .unwrap();
    assert!(longer.removed.is_empty(), "{longer:?}");
}

async fn a_recording_twilio_could_not_delete_is_tried_again(store: Arc<dyn Store>) {
    fixture(store.as_ref()).await;
    // Twilio fails for one recording, and is not configured at all on another run.
    let failing = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(delete_path(RE_OLD)))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&failing)
        .await;
    Mock::given(method("DELETE"))
        .and(path(delete_path(RE_ORPHAN)))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&failing)
        .await;
    let first = purge::run(store.as_ref(), &twilio(&failing), 90, at(NOW), false, None)
        .await
        .unwrap();
    assert_eq!(first.removed, expected_counts());
    assert_eq!(
        (
            first.recordings_deleted,
            first.recordings_already_gone,
            first.recordings_failed,
            first.recordings_pending
        ),
        (1, 1, 1, 1)
    );
    let pending = store.pending_recording_deletions(100).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].recording_url, recording_url(RE_OLD));
    assert_eq!(pending[0].attempts, 1);

    // Without Twilio credentials the recording stays queued.
    let unconfigured = purge::run(store.as_ref(), &NotConfigured, 90, at(NOW), false, None)
        .await
        .unwrap();
    assert_eq!(
        (
            unconfigured.recordings_deleted,
            unconfigured.recordings_pending
        ),
        (0, 1)
    );

    // The next run deletes it.
    let working = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(delete_path(RE_OLD)))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&working)
        .await;
    let next = purge::run(store.as_ref(), &twilio(&working), 90, at(NOW), false, None)
        .await
        .unwrap();
    assert!(next.removed.is_empty());
    assert_eq!((next.recordings_deleted, next.recordings_pending), (1, 0));
    assert!(store
        .pending_recording_deletions(100)
        .await
        .unwrap()
        .is_empty());
}
