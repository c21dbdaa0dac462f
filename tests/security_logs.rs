//! Failed sign-ins, refused requests and forged webhooks are security events in the log,
//! and the log holds no e-mail address, password or phone number.

mod support;

use support::spawn_app;

#[tokio::test]
async fn security_events_are_logged_without_personal_data() {
    let captured = support::Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let app = spawn_app("2026-11-24T10:00:00Z").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{}", app.addr);

    // A failed sign-in (with the form's token, so it reaches the password check).
    let page = client.get(format!("{base}/login")).send().await.unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body = page.text().await.unwrap();
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let form = format!("csrf={csrf}&email=victim%40example.nhs.uk&password=hunter2-secret-guess");
    let res = client
        .post(format!("{base}/login"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A write without its token.
    let res = client
        .post(format!("{base}/login"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=victim%40example.nhs.uk&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // A forged webhook.
    let res = client
        .post(format!("{base}/twilio/voice"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "forged")
        .body("CallSid=CA0123&From=%2B447700900123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // A set-up link's token is a secret: requests for it are logged without it.
    let res = client
        .get(format!("{base}/setup/secret-setup-token-abc123"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let logs = captured.text();
    assert!(logs.contains("/setup/[token]"), "{logs}");
    for event in ["login-failed", "csrf-refused", "signature check failed"] {
        assert!(logs.contains(event), "`{event}` missing:\n{logs}");
    }
    assert!(logs.matches("security=true").count() >= 3, "{logs}");
    for secret in [
        "victim",
        "hunter2",
        "7700900123",
        csrf,
        "secret-setup-token",
    ] {
        assert!(
            !logs.contains(secret),
            "`{secret}` leaked into the logs:\n{logs}"
        );
    }
}
