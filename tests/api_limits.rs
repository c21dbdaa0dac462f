//! The JSON API's rate limit per client network (issue 7): past the limit an address gets
//! 429 with `Retry-After` and a reason; the pages and other addresses are not held back.

mod support;

use support::spawn_app_with;

#[tokio::test]
async fn too_many_api_requests_from_one_address_get_429_with_a_reason() {
    let app = spawn_app_with(
        "2026-11-24T10:00:00Z",
        &[("HELPLINE_API_REQUESTS_PER_MINUTE", "10")],
    )
    .await;
    let get = |path: &str| app.client.get(format!("http://{}{path}", app.addr)).send();
    for _ in 0..10 {
        let res = get("/api/me").await.unwrap();
        assert_eq!(res.status(), 401, "signed out, but within the limit");
    }
    let res = get("/api/me").await.unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "retry after {wait} s");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many requests"),
        "{body}"
    );
    // The sign-in page is not the API: it has its own throttling.
    assert_eq!(get("/login").await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_bad_limit_stops_startup_with_the_setting_named() {
    let err = helpline::config::Config::from_pairs(&[
        ("DATABASE_URL", "sqlite::memory:"),
        ("TWILIO_AUTH_TOKEN", "t"),
        ("HELPLINE_PUBLIC_URL", "https://helpline.example.nhs.uk"),
        ("HELPLINE_API_REQUESTS_PER_MINUTE", "0"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("HELPLINE_API_REQUESTS_PER_MINUTE"), "{err}");
}
