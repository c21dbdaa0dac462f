//! Signatures, sizes and malformed requests at the webhook edge.

mod support;

use support::{form_body, sign, spawn_app, PUBLIC};

fn params() -> Vec<(String, String)> {
    vec![
        ("CallSid".into(), "CA1234567890ABCDE".into()),
        ("From".into(), "+447700900123".into()),
        ("To".into(), "+441517063602".into()),
        ("CallStatus".into(), "ringing".into()),
    ]
}

#[tokio::test]
async fn a_signed_request_is_answered_with_twiml() {
    let app = spawn_app("2026-11-24T10:00:00Z").await;
    let url = format!("{PUBLIC}/twilio/voice");
    let a = app.post_signed(&url, &params()).await;
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with("text/xml"));
    assert!(a.body.starts_with("<?xml"));
}

#[tokio::test]
async fn forged_or_missing_signatures_get_403_and_no_twiml() {
    let app = spawn_app("2026-11-24T10:00:00Z").await;
    let url = format!("{PUBLIC}/twilio/voice");
    // Missing.
    let a = app.post_raw(&url, form_body(&params()), None, &[]).await;
    assert_eq!(a.status, 403);
    assert!(a.body.is_empty(), "{}", a.body);
    // Signed with another token.
    let forged = helpline::twilio::signature::compute(b"not-the-token", &url, &params());
    let a = app
        .post_raw(&url, form_body(&params()), Some(&forged), &[])
        .await;
    assert_eq!(a.status, 403);
    assert!(a.body.is_empty());
    // A parameter changed after signing.
    let sig = sign(&url, &params());
    let mut changed = params();
    changed[1].1 = "+447700900999".into();
    let a = app
        .post_raw(&url, form_body(&changed), Some(&sig), &[])
        .await;
    assert_eq!(a.status, 403);
    // Signed for another path.
    let other = sign(&format!("{PUBLIC}/twilio/status"), &params());
    let a = app
        .post_raw(&url, form_body(&params()), Some(&other), &[])
        .await;
    assert_eq!(a.status, 403);
    // Nothing was recorded for the forged calls.
    assert!(app.store.list_enquiries().await.unwrap().is_empty());
}

#[tokio::test]
async fn every_webhook_path_checks_the_signature() {
    let app = spawn_app("2026-11-24T10:00:00Z").await;
    for path in [
        "/twilio/voice",
        "/twilio/status",
        "/twilio/step/main_menu?seq=1&attempt=0",
        "/twilio/queue/adviser_queue/wait",
        "/twilio/queue/adviser_queue/choice",
        "/twilio/queue/adviser_queue/done?seq=2",
    ] {
        let a = app
            .post_raw(
                &format!("{PUBLIC}{path}"),
                form_body(&params()),
                Some("AAAA"),
                &[],
            )
            .await;
        assert_eq!(a.status, 403, "{path}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = spawn_app("2026-11-24T10:00:00Z").await;
    let mut p = params();
    p.push(("Padding".into(), "x".repeat(70 * 1024)));
    let a = app.post_signed(&format!("{PUBLIC}/twilio/voice"), &p).await;
    assert_eq!(a.status, 413);
}

#[tokio::test]
async fn malformed_forms_get_400_with_a_reason() {
    let app = spawn_app("2026-11-24T10:00:00Z").await;
    let url = format!("{PUBLIC}/twilio/voice");
    // Invalid UTF-8 after percent-decoding.
    let a = app
        .post_raw(&url, "CallSid=CA1&From=%FF%FE".into(), Some("x"), &[])
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(!a.body.is_empty());
    // No CallSid (correctly signed, so only the form is at fault).
    let p = vec![("From".to_string(), "+447700900123".to_string())];
    let a = app.post_signed(&url, &p).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("CallSid"), "{}", a.body);
}

#[tokio::test]
async fn healthz_answers() {
    let app = spawn_app("2026-11-24T10:00:00Z").await;
    let r = app
        .client
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
