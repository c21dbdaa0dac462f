//! No phone number, keyed digits, speech or recording reference ever reaches the logs,
//! even at the most verbose level.

mod support;

use support::spawn_app;

#[tokio::test]
async fn a_whole_callback_request_logs_no_personal_data() {
    let captured = support::Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let app = spawn_app("2026-11-24T10:00:00Z").await;
    let mut call = app.call_from("+447700900123").await;
    call.say("I am worried my son's records were taken").await;
    call.press("2").await; // another number
    call.press("07700900456#").await;
    call.press("1").await; // that's right
    call.say("alder hey please").await;
    call.press("2").await;
    call.leave_message(30).await;
    call.hang_up(200).await;
    assert_eq!(
        app.store.list_enquiries().await.unwrap()[0].callback_number,
        "+447700900456"
    );

    let logs = captured.text();
    assert!(
        logs.contains(&call.sid),
        "the logs were captured and name the call SID"
    );
    assert!(logs.contains("enquiry stored"), "{logs}");
    for secret in [
        "7700900123",
        "7700900456",
        "7700 900",
        "son's records",
        "alder hey please",
        "RE0123",
        "Recordings",
    ] {
        assert!(
            !logs.contains(secret),
            "`{secret}` leaked into the logs:\n{logs}"
        );
    }
}
