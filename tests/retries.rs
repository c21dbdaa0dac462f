//! Twilio's retries and stray webhooks (issue 7): a step that arrives for a call the
//! service has never seen, or out of order, gets safe TwiML that carries the caller on
//! (never an error), and a retried step (byte for byte, with Twilio's
//! `I-Twilio-Idempotency-Token`) gets the same TwiML and records nothing twice.

mod support;

use support::{spawn_app, State};

const TUESDAY_10AM: &str = "2026-11-24T10:00:00Z";

fn action(state: &State) -> String {
    match state {
        State::Gathering { action, .. } | State::Recording { action, .. } => action.clone(),
        other => panic!("not waiting for an answer: {other:?}"),
    }
}

#[tokio::test]
async fn a_step_for_an_unknown_call_gets_safe_twiml() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut first = app.call_from("+447700900101").await;
    let menu = action(&first.state);
    first.press("1").await;
    // The same menu answer, for a call this service has never seen (its first webhook
    // went to an instance whose database was lost, or the URL was made by hand).
    let mut stranger = app.call_from("+447700900102").await;
    stranger.sid = "CA0123456789abcdef0123456789abcdef".into();
    stranger.request(&menu, vec![("Digits", "1".into())]).await;
    assert!(
        stranger.last().contains("latest") || stranger.last().contains("update"),
        "carried on from the menu: {}",
        stranger.last()
    );
    let call = app.store.call(&stranger.sid).await.unwrap();
    assert!(
        call.is_some(),
        "the call is on record from its first step seen"
    );
}

#[tokio::test]
async fn a_step_out_of_order_gets_safe_twiml_and_changes_no_earlier_step() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900103").await;
    let menu = action(&call.state);
    call.press("2").await; // a call back: now asked to confirm the number
    let steps_before = app.store.steps(&call.sid).await.unwrap();
    // A late copy of the first menu answer, after the call has moved on, with other keys.
    call.request(&menu, vec![("Digits", "3".into())]).await;
    assert!(!call.last().is_empty(), "the caller hears something");
    assert!(
        matches!(call.state, State::Gathering { .. } | State::Ended),
        "{:?}",
        call.state
    );
    let steps_after = app.store.steps(&call.sid).await.unwrap();
    assert_eq!(
        steps_after[..steps_before.len()]
            .iter()
            .map(|s| (&s.node, &s.outcome))
            .collect::<Vec<_>>(),
        steps_before
            .iter()
            .map(|s| (&s.node, &s.outcome))
            .collect::<Vec<_>>(),
        "what was recorded stays as it was"
    );
}

#[tokio::test]
async fn a_retried_step_gets_the_same_twiml_and_counts_once() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900104").await;
    call.press("1").await;
    let first = call.last_twiml.clone();
    let steps = app.store.steps(&call.sid).await.unwrap().len();
    for _ in 0..3 {
        assert_eq!(call.retry_last().await, first, "the same TwiML");
    }
    assert_eq!(
        app.store.steps(&call.sid).await.unwrap().len(),
        steps,
        "no step twice"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"helpline_calls_total{outcome="started"} 1"#),
        "{metrics}"
    );
}
