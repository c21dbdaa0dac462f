//! The store contract, run on both backends: SQLite and PostgreSQL behave the same.

mod support;

use std::sync::Arc;

use chrono::NaiveDate;
use helpline::enquiries::{Category, NewEnquiry, Recording, Trust};
use helpline::flows::{Answer, Answers};
use helpline::hours::ClosureKind;
use helpline::phone::UkNumber;
use helpline::store::{CallEnd, NewCall, NewClosure, NewStep, Store, StoredCalendar};
use support::at;
use support::db::TestDb;

/// Runs `$name(store)` once on SQLite and once on PostgreSQL (skipped, with the reason
/// printed, when there is no PostgreSQL and HELPLINE_REQUIRE_ALL_TESTS is not set).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let db = TestDb::sqlite();
                super::$name(&db, helpline::store::connect(db.url()).await.unwrap()).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(db) = TestDb::postgres().await else { return };
                super::$name(&db, helpline::store::connect(db.url()).await.unwrap()).await;
            }
        }
    )*};
}

on_both_backends!(
    calls_and_steps_are_idempotent,
    answers_round_trip,
    one_enquiry_per_call,
    queue_and_end_of_call,
    queue_and_end_of_call_in_one_batch,
    closures_bump_the_revision,
    calendar_copy_round_trips,
    concurrent_enquiries_from_two_pools_make_one,
    migrations_are_safe_to_run_twice,
    claims_give_each_enquiry_one_owner,
    a_lease_lets_one_instance_run_a_daily_job,
    an_older_binary_works_on_a_newer_schema,
    callback_requests_in_one_batch,
);

fn new_call(sid: &str) -> NewCall {
    NewCall {
        call_sid: sid.into(),
        caller: Some("+447700900123".into()),
        started_at: at("2026-11-24T10:00:00Z"),
        in_hours: true,
        simulated: false,
        test_call: false,
    }
}

fn new_enquiry(sid: &str) -> NewEnquiry {
    NewEnquiry {
        call_sid: sid.into(),
        callback_number: UkNumber::parse("07700900123").unwrap(),
        trust: Trust::AlderHey,
        category: Category::DataConcern,
        recording: Some(Recording {
            url: "https://r/RE1".into(),
            duration_seconds: 12,
        }),
        created_at: at("2026-11-24T10:05:00Z"),
        callback_due: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        source: helpline::enquiries::Source::CallbackRequest,
        waiting_since: at("2026-11-24T10:05:00Z"),
    }
}

async fn calls_and_steps_are_idempotent(_: &TestDb, store: Arc<dyn Store>) {
    store.record_call(&new_call("CA1")).await.unwrap();
    let mut again = new_call("CA1");
    again.in_hours = false;
    store.record_call(&again).await.unwrap();
    let rec = store.call("CA1").await.unwrap().unwrap();
    assert!(rec.in_hours, "the first record stands");
    assert_eq!(rec.started_at, at("2026-11-24T10:00:00Z"));
    let step = |seq, outcome: &str| NewStep {
        call_sid: "CA1".into(),
        seq,
        node: "main_menu".into(),
        input: "dtmf".into(),
        outcome: outcome.into(),
        at: at("2026-11-24T10:00:10Z"),
        // The route the step took; none for an invalid answer's re-ask, here, to store NULL.
        path: match outcome {
            "option-2" => vec![
                "callback_start".into(),
                "callback_number".into(),
                "confirm_number".into(),
            ],
            _ => vec![],
        },
    };
    assert!(store.record_step(&step(1, "option-2")).await.unwrap());
    assert!(
        !store.record_step(&step(1, "option-2")).await.unwrap(),
        "a retried step is not recorded twice"
    );
    assert!(store.record_step(&step(2, "invalid")).await.unwrap());
    let steps = store.steps("CA1").await.unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.seq, s.outcome.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "option-2"), (2, "invalid")]
    );
    assert_eq!(
        steps[0].path,
        ["callback_start", "callback_number", "confirm_number"],
        "the route is kept in order"
    );
    assert!(steps[1].path.is_empty());
    assert!(store.call("CA-none").await.unwrap().is_none());
}

async fn answers_round_trip(_: &TestDb, store: Arc<dyn Store>) {
    store.record_call(&new_call("CA2")).await.unwrap();
    assert_eq!(store.answers("CA2").await.unwrap(), Answers::default());
    store
        .save_answer("CA2", &Answer::Trust(Trust::RoyalLiverpool))
        .await
        .unwrap();
    store
        .save_answer("CA2", &Answer::Trust(Trust::NotSure))
        .await
        .unwrap();
    store
        .save_answer("CA2", &Answer::Category(Category::Other))
        .await
        .unwrap();
    store
        .save_answer(
            "CA2",
            &Answer::CallbackNumber(UkNumber::parse("01517063602").unwrap()),
        )
        .await
        .unwrap();
    let rec = Recording {
        url: "https://r/RE2".into(),
        duration_seconds: 30,
    };
    store
        .save_answer("CA2", &Answer::Message(rec.clone()))
        .await
        .unwrap();
    let a = store.answers("CA2").await.unwrap();
    assert_eq!(a.trust, Some(Trust::NotSure), "the latest answer wins");
    assert_eq!(a.category, Some(Category::Other));
    assert_eq!(a.callback_number.unwrap().e164(), "+441517063602");
    assert_eq!(a.message, Some(rec));
}

async fn one_enquiry_per_call(_: &TestDb, store: Arc<dyn Store>) {
    let first = store.create_enquiry(&new_enquiry("CA3")).await.unwrap();
    let again = store.create_enquiry(&new_enquiry("CA3")).await.unwrap();
    assert_eq!(first, again, "a retry returns the stored enquiry");
    let other = store.create_enquiry(&new_enquiry("CA4")).await.unwrap();
    assert_ne!(first.reference, other.reference);
    assert_ne!(first.id, other.id);
    assert_eq!(first.recording_duration, Some(12));
    assert_eq!(first.status.as_str(), "new");
    assert_eq!(first.created_at, at("2026-11-24T10:05:00Z"));
    let all = store.list_enquiries().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        store
            .enquiry_for_call("CA4")
            .await
            .unwrap()
            .unwrap()
            .reference,
        other.reference
    );
}

async fn queue_and_end_of_call(_: &TestDb, store: Arc<dyn Store>) {
    for sid in ["CA5", "CA6", "CA7"] {
        store.record_call(&new_call(sid)).await.unwrap();
        store
            .queue_joined(sid, at("2026-11-24T10:01:00Z"))
            .await
            .unwrap();
        store
            .queue_joined(sid, at("2026-11-24T10:02:00Z"))
            .await
            .unwrap();
    }
    store
        .queue_left("CA5", "bridged", Some(95), at("2026-11-24T10:02:35Z"))
        .await
        .unwrap();
    store
        .queue_left("CA6", "hangup", Some(20), at("2026-11-24T10:01:20Z"))
        .await
        .unwrap();
    let end = |sid: &str| CallEnd {
        call_sid: sid.into(),
        status: "completed".into(),
        duration_seconds: Some(300),
        at: at("2026-11-24T10:06:00Z"),
    };
    for sid in ["CA5", "CA6", "CA7"] {
        store.call_ended(&end(sid)).await.unwrap();
    }
    let (c5, c6, c7) = (
        store.call("CA5").await.unwrap().unwrap(),
        store.call("CA6").await.unwrap().unwrap(),
        store.call("CA7").await.unwrap().unwrap(),
    );
    assert_eq!(
        c5.queue_joined_at,
        Some(at("2026-11-24T10:01:00Z")),
        "the first join counts"
    );
    assert!(!c5.hung_up_in_queue && c6.hung_up_in_queue && c7.hung_up_in_queue);
    assert_eq!(c5.duration_seconds, Some(300));
    assert_eq!(
        store
            .answered_since(at("2026-11-24T10:00:00Z"))
            .await
            .unwrap(),
        vec![95]
    );
    assert!(store
        .answered_since(at("2026-11-24T11:00:00Z"))
        .await
        .unwrap()
        .is_empty());
}

/// The same joins, leaves and ends as [`queue_and_end_of_call`], arriving in one batch (as
/// the batched writer applies them under a surge), with a retried join and a status
/// callback sent twice: recorded as if one by one.
async fn queue_and_end_of_call_in_one_batch(_: &TestDb, store: Arc<dyn Store>) {
    use helpline::store::CallWrite;
    let mut writes = Vec::new();
    for sid in ["CA5", "CA6", "CA7"] {
        writes.push(CallWrite::Call(new_call(sid)));
        for minute in ["01", "02"] {
            writes.push(CallWrite::QueueJoined {
                call_sid: sid.into(),
                at: at(&format!("2026-11-24T10:{minute}:00Z")),
            });
        }
    }
    for (sid, result, waited, when) in [
        ("CA5", "bridged", 95, "10:02:35"),
        ("CA6", "hangup", 20, "10:01:20"),
    ] {
        writes.push(CallWrite::QueueLeft {
            call_sid: sid.into(),
            result: result.into(),
            wait_seconds: Some(waited),
            at: at(&format!("2026-11-24T{when}Z")),
        });
    }
    for (sid, status) in [
        ("CA5", "completed"),
        ("CA6", "completed"),
        ("CA7", "in-progress"),
        ("CA7", "completed"),
    ] {
        writes.push(CallWrite::Ended(CallEnd {
            call_sid: sid.into(),
            status: status.into(),
            duration_seconds: Some(300),
            at: at("2026-11-24T10:06:00Z"),
        }));
    }
    store.apply_writes(&writes).await.unwrap();
    let c5 = store.call("CA5").await.unwrap().unwrap();
    let c6 = store.call("CA6").await.unwrap().unwrap();
    let c7 = store.call("CA7").await.unwrap().unwrap();
    assert_eq!(
        c5.queue_joined_at,
        Some(at("2026-11-24T10:01:00Z")),
        "the first join counts"
    );
    assert_eq!(c5.queue_result.as_deref(), Some("bridged"));
    assert_eq!(c6.queue_wait_seconds, Some(20));
    assert!(!c5.hung_up_in_queue && c6.hung_up_in_queue && c7.hung_up_in_queue);
    assert_eq!(
        c7.final_status.as_deref(),
        Some("completed"),
        "the last end counts"
    );
    assert_eq!(c7.ended_at, Some(at("2026-11-24T10:06:00Z")));
    assert_eq!(c5.duration_seconds, Some(300));
}

async fn closures_bump_the_revision(_: &TestDb, store: Arc<dyn Store>) {
    let r0 = store.hours_revision().await.unwrap();
    let c = store
        .add_closure(&NewClosure {
            kind: ClosureKind::Closed,
            from: at("2026-12-24T12:00:00Z"),
            until: at("2026-12-24T16:00:00Z"),
            reason: "Closing early".into(),
            created_at: at("2026-11-24T10:00:00Z"),
        })
        .await
        .unwrap();
    let o = store
        .add_closure(&NewClosure {
            kind: ClosureKind::Open,
            from: at("2026-11-28T10:00:00Z"),
            until: at("2026-11-28T13:00:00Z"),
            reason: "Saturday".into(),
            created_at: at("2026-11-24T10:00:00Z"),
        })
        .await
        .unwrap();
    assert_eq!(store.hours_revision().await.unwrap(), r0 + 2);
    let list = store.list_closures().await.unwrap();
    assert_eq!(list, vec![o.clone(), c.clone()], "soonest first");
    // The engine loads only what still matters: closures ending after a cut-off.
    assert_eq!(
        store
            .closures_ending_after(at("2026-12-01T00:00:00Z"))
            .await
            .unwrap(),
        vec![c.clone()]
    );
    assert_eq!(
        store
            .closures_ending_after(at("2026-11-01T00:00:00Z"))
            .await
            .unwrap(),
        vec![o.clone(), c.clone()]
    );
    assert!(
        store
            .closures_ending_after(at("2026-12-24T16:00:00Z"))
            .await
            .unwrap()
            .is_empty(),
        "ended exactly then"
    );
    assert!(store.remove_closure(c.id).await.unwrap());
    assert!(!store.remove_closure(c.id).await.unwrap());
    assert_eq!(
        store.hours_revision().await.unwrap(),
        r0 + 3,
        "a failed removal changes nothing"
    );
    assert_eq!(store.list_closures().await.unwrap(), vec![o]);
}

async fn calendar_copy_round_trips(_: &TestDb, store: Arc<dyn Store>) {
    assert!(store
        .stored_calendar("england-and-wales")
        .await
        .unwrap()
        .is_none());
    let r0 = store.hours_revision().await.unwrap();
    let copy = StoredCalendar {
        division: "england-and-wales".into(),
        document: "{\"england-and-wales\":{}}".into(),
        source: "https://example.test/bank-holidays.json".into(),
        fetched_at: at("2026-11-24T10:00:00Z"),
        checked_at: at("2026-11-24T10:00:00Z"),
        etag: Some("\"v1\"".into()),
        last_modified: None,
    };
    store.save_calendar(&copy).await.unwrap();
    assert_eq!(
        store.stored_calendar("england-and-wales").await.unwrap(),
        Some(copy.clone())
    );
    store
        .calendar_checked("england-and-wales", at("2026-11-25T10:00:00Z"))
        .await
        .unwrap();
    let checked = store
        .stored_calendar("england-and-wales")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(checked.checked_at, at("2026-11-25T10:00:00Z"));
    assert_eq!(checked.fetched_at, copy.fetched_at);
    assert_eq!(
        store.hours_revision().await.unwrap(),
        r0 + 1,
        "only a new copy bumps the revision"
    );
    let mut newer = copy.clone();
    newer.etag = Some("\"v2\"".into());
    store.save_calendar(&newer).await.unwrap();
    assert_eq!(
        store
            .stored_calendar("england-and-wales")
            .await
            .unwrap()
            .unwrap()
            .etag
            .as_deref(),
        Some("\"v2\"")
    );
}

/// Many simultaneous creations for one call, from two separate pools (as two instances
/// would): exactly one enquiry, and everyone gets its reference.
async fn concurrent_enquiries_from_two_pools_make_one(db: &TestDb, store: Arc<dyn Store>) {
    let other = helpline::store::connect(db.url()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            s.create_enquiry(&new_enquiry("CA-RACE")).await
        }));
    }
    let mut references = std::collections::BTreeSet::new();
    for t in tasks {
        references.insert(t.await.unwrap().unwrap().reference);
    }
    assert_eq!(references.len(), 1, "{references:?}");
    assert_eq!(store.list_enquiries().await.unwrap().len(), 1);
}

async fn migrations_are_safe_to_run_twice(db: &TestDb, _store: Arc<dyn Store>) {
    // Several instances starting together each run the migrations.
    let (a, b) = tokio::join!(
        helpline::store::connect(db.url()),
        helpline::store::connect(db.url())
    );
    a.unwrap().ping().await.unwrap();
    b.unwrap().ping().await.unwrap();
}

/// 50 handlers on two instances (two pools) race for 10 enquiries: each enquiry gets exactly
/// one owner, and 40 claims find nothing left.
async fn claims_give_each_enquiry_one_owner(db: &TestDb, store: Arc<dyn Store>) {
    let other = helpline::store::connect(db.url()).await.unwrap();
    let won = support::fifty_claims_for_ten(store.clone(), other.clone()).await;
    assert_eq!(won.len(), 10, "every enquiry claimed once: {won:?}");
    for (id, who) in &won {
        assert_eq!(
            store.enquiry_owner(id).await.unwrap().as_ref(),
            Some(who),
            "the stored owner is the winner"
        );
    }
    let first = won.keys().next().unwrap();
    assert!(!store
        .claim_enquiry(
            first,
            "late",
            at("2026-11-24T11:01:00Z"),
            at("2026-11-24T11:01:00Z") - chrono::Duration::minutes(20)
        )
        .await
        .unwrap());
    assert!(store
        .claim_next_enquiry(
            "late",
            at("2026-11-24T11:01:00Z"),
            at("2026-11-24T10:41:00Z"),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
        )
        .await
        .unwrap()
        .is_none());
    let fresh = store
        .create_enquiry(&new_enquiry("CA-CLAIM-X"))
        .await
        .unwrap();
    assert!(store
        .claim_enquiry(
            &fresh.id,
            "me",
            at("2026-11-24T11:02:00Z"),
            at("2026-11-24T11:02:00Z") - chrono::Duration::minutes(20)
        )
        .await
        .unwrap());
    assert!(!other
        .claim_enquiry(
            &fresh.id,
            "you",
            at("2026-11-24T11:02:00Z"),
            at("2026-11-24T11:02:00Z") - chrono::Duration::minutes(20)
        )
        .await
        .unwrap());
    assert_eq!(
        store.enquiry_owner(&fresh.id).await.unwrap().as_deref(),
        Some("me")
    );
}

async fn a_lease_lets_one_instance_run_a_daily_job(db: &TestDb, store: Arc<dyn Store>) {
    let other = helpline::store::connect(db.url()).await.unwrap();
    let now = at("2026-11-24T10:00:00Z");
    let day = now + chrono::Duration::hours(23);
    let (a, b) = tokio::join!(
        store.try_lease("bank-holiday-refresh", "instance-a", now, day),
        other.try_lease("bank-holiday-refresh", "instance-b", now, day)
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one instance runs the job");
    let holder = if store
        .try_lease("bank-holiday-refresh", "instance-a", now, day)
        .await
        .unwrap()
    {
        "instance-a"
    } else {
        "instance-b"
    };
    let loser = if holder == "instance-a" {
        "instance-b"
    } else {
        "instance-a"
    };
    assert!(
        store
            .try_lease("bank-holiday-refresh", holder, now, day)
            .await
            .unwrap(),
        "the holder renews"
    );
    assert!(!store
        .try_lease(
            "bank-holiday-refresh",
            loser,
            now + chrono::Duration::hours(1),
            day
        )
        .await
        .unwrap());
    let tomorrow = day + chrono::Duration::minutes(1);
    assert!(
        store
            .try_lease(
                "bank-holiday-refresh",
                loser,
                tomorrow,
                tomorrow + chrono::Duration::hours(23)
            )
            .await
            .unwrap(),
        "an expired lease passes on"
    );
    assert!(
        store
            .try_lease("another-job", "instance-a", now, day)
            .await
            .unwrap(),
        "leases are per job"
    );
}

/// Lists and figures can come from a standby (here the same server stands in for it).
#[tokio::test]
async fn a_read_replica_serves_lists() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = helpline::store::connect_with_replica(db.url(), Some(db.url()))
        .await
        .unwrap();
    store.create_enquiry(&new_enquiry("CA-R")).await.unwrap();
    assert_eq!(store.list_enquiries().await.unwrap().len(), 1);
    let g = store
        .gauges(
            at("2026-11-24T10:00:00Z"),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(g.enquiries_open, 1);
    // A replica that cannot be reached stops startup with the reason.
    let bad = helpline::store::connect_with_replica(
        db.url(),
        Some("postgres://postgres@127.0.0.1:9/nowhere"),
    )
    .await;
    assert!(bad.is_err());
}

/// During a rolling upgrade a newer instance migrates first; an older one restarting must
/// still start (migrations are additive).
async fn an_older_binary_works_on_a_newer_schema(db: &TestDb, store: Arc<dyn Store>) {
    let sql = "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
               VALUES (99999999999999, 'from a newer version', CURRENT_TIMESTAMP, TRUE, X'00', 0)";
    let sql = if db.is_postgres() {
        sql.replace("X'00'", "'\\x00'::bytea")
    } else {
        sql.to_string()
    };
    match db {
        TestDb::Sqlite { .. } => {
            let pool = sqlx::SqlitePool::connect(db.url()).await.unwrap();
            sqlx::query(&sql).execute(&pool).await.unwrap();
        }
        TestDb::Postgres { .. } => {
            let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
            sqlx::query(&sql).execute(&pool).await.unwrap();
        }
    }
    let again = helpline::store::connect(db.url())
        .await
        .expect("an older binary still starts");
    assert!(again.migrations_current().await.unwrap());
    store.ping().await.unwrap();
}

/// Many call-back requests in one batch (as the batched writer applies them under a surge):
/// one enquiry each under the reference given; a request repeated within the batch (a
/// retried webhook) makes none more; a number past its limit joins its oldest open enquiry;
/// a taken reference gets a new one; an open missed-in-queue entry is folded in.
async fn callback_requests_in_one_batch(_: &TestDb, store: Arc<dyn Store>) {
    use helpline::enquiries::{Reference, Source};
    use helpline::store::{Applied, CallWrite};
    // Earlier: a missed-in-queue entry for number A, waiting since 09:50.
    let mut missed = new_enquiry("CA-MISSED");
    missed.source = Source::MissedInQueue;
    missed.waiting_since = at("2026-11-24T09:50:00Z");
    missed.recording = None;
    store.record_call(&new_call("CA-MISSED")).await.unwrap();
    let missed = store.create_enquiry(&missed).await.unwrap();

    let request = |sid: &str, number: &str, minute: u32| {
        let mut e = new_enquiry(sid);
        e.callback_number = UkNumber::parse(number).unwrap();
        e.created_at = at(&format!("2026-11-24T10:{minute:02}:00Z"));
        e.waiting_since = e.created_at;
        e
    };
    let refs: Vec<Reference> = (0..6).map(|_| Reference::random()).collect();
    let mut writes = Vec::new();
    // Number A: three requests (limit 2: the third joins the oldest open, the missed entry
    // having been folded into the first).
    for (i, sid) in ["CA-A1", "CA-A2", "CA-A3"].iter().enumerate() {
        writes.push(CallWrite::Call(new_call(sid)));
        writes.push(CallWrite::CallbackRequest {
            enquiry: request(sid, "07700900123", 10 + i as u32),
            reference: refs[i].clone(),
            max_open: 2,
        });
    }
    // Number B: one request, sent twice in the batch.
    for _ in 0..2 {
        writes.push(CallWrite::CallbackRequest {
            enquiry: request("CA-B1", "07700900456", 11),
            reference: refs[3].clone(),
            max_open: 2,
        });
    }
    // Number C: under a reference already taken (the missed entry's).
    writes.push(CallWrite::CallbackRequest {
        enquiry: request("CA-C1", "07700900789", 12),
        reference: missed.reference.clone(),
        max_open: 2,
    });
    let applied = store.apply_writes(&writes).await.unwrap();
    let made: Vec<helpline::enquiries::Enquiry> = applied
        .into_iter()
        .filter_map(|a| match a {
            Applied::Enquiry(e) => Some(*e),
            _ => None,
        })
        .collect();
    assert_eq!(made.len(), 6, "an answer for every request");
    let (a1, a2, a3, b1, b1_again, c1) =
        (&made[0], &made[1], &made[2], &made[3], &made[4], &made[5]);
    assert_eq!((a1.call_sid.as_str(), &a1.reference), ("CA-A1", &refs[0]));
    assert_eq!((a2.call_sid.as_str(), &a2.reference), ("CA-A2", &refs[1]));
    assert_eq!(a3.id, a1.id, "past the limit: joins the oldest open");
    assert_eq!(
        a1.waiting_since,
        at("2026-11-24T09:50:00Z"),
        "keeps the missed call's earlier time"
    );
    assert_eq!(b1.id, b1_again.id, "a repeat in the batch makes none more");
    assert_eq!(b1.reference, refs[3]);
    assert_eq!(c1.call_sid, "CA-C1");
    assert_ne!(
        c1.reference, missed.reference,
        "a taken reference is replaced"
    );

    let all = store.list_enquiries().await.unwrap();
    assert_eq!(all.len(), 5, "missed, A1, A2, B1, C1: {all:?}");
    let missed_now = all.iter().find(|e| e.id == missed.id).unwrap();
    assert_eq!(missed_now.status.as_str(), "merged");
    assert_eq!(
        store.enquiry_for_call("CA-A3").await.unwrap().map(|e| e.id),
        Some(a1.id.clone()),
        "the joined request is found by its call"
    );
    // The same batch again (the writer retrying after a failure) changes nothing.
    let again = store.apply_writes(&writes).await.unwrap();
    assert_eq!(again.len(), writes.len());
    assert_eq!(store.list_enquiries().await.unwrap().len(), 5);
}

/// SQLite: the WAL is copied into the database file in the background, without the writer
/// checkpointing (it would only do so past thousands of pages): the file grows a second or
/// so after a batch of calls is written.
#[tokio::test]
async fn sqlite_checkpoints_in_the_background() {
    use helpline::store::CallWrite;
    let db = TestDb::sqlite();
    let store = helpline::store::connect(db.url()).await.unwrap();
    let file = std::path::PathBuf::from(db.url().trim_start_matches("sqlite://"));
    let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    // Let a first checkpoint take the migrations, then write well under a thousand pages.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let before = size();
    let writes: Vec<CallWrite> = (0..300)
        .map(|i| CallWrite::Call(new_call(&format!("CA{i:032}"))))
        .collect();
    store.apply_writes(&writes).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while size() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file never took the WAL's pages"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
