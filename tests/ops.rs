//! Operations: what an IT team watches in Prometheus, and where.

mod support;

use support::{spawn_app, spawn_app_with};

async fn scrape(app: &support::TestApp, addr: std::net::SocketAddr) -> String {
    let r = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{metrics}"))
}

#[tokio::test]
async fn metrics_count_calls_requests_and_enquiries_once() {
    let app = spawn_app("2026-11-24T10:00:00Z").await;
    let mut call = app.call_from("+447700900123").await;
    for key in ["2", "1", "1", "1"] {
        call.press(key).await;
    }
    call.leave_message(5).await;
    call.retry_last().await; // a retry counts nothing
    let mut queued = app.call_from("+447700900124").await;
    queued.press("0").await;

    let m = scrape(&app, app.addr).await;
    assert_eq!(value(&m, r#"helpline_calls_total{outcome="started"}"#), 2.0);
    assert_eq!(
        value(&m, r#"helpline_calls_total{outcome="callback-requested"}"#),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"helpline_http_requests_total{route="/twilio/voice",status="200"}"#
        ),
        2.0
    );
    // Every HTTP request counts, the retry included: 4 keys, the message, the retry, and the
    // second caller's key.
    assert_eq!(
        value(
            &m,
            r#"helpline_http_requests_total{route="/twilio/step/{node}",status="200"}"#
        ),
        7.0
    );
    assert!(
        m.contains(
            r#"helpline_http_request_duration_seconds_count{route="/twilio/voice",status="200"} 2"#
        ),
        "{m}"
    );
    assert_eq!(value(&m, "helpline_enquiries_open"), 1.0);
    assert_eq!(value(&m, "helpline_enquiries_overdue"), 0.0);
    assert_eq!(value(&m, "helpline_queue_size"), 1.0);
    assert!(value(&m, r#"helpline_db_connections{state="idle"}"#) >= 0.0);
    assert!(!m.contains("7700900"), "no numbers in metrics");

    queued.queue_result("hangup", 40).await;
    let m = scrape(&app, app.addr).await;
    assert_eq!(
        value(&m, r#"helpline_calls_total{outcome="abandoned"}"#),
        1.0
    );
    assert_eq!(value(&m, "helpline_queue_size"), 0.0);

    // The caller who gave up after 40 s in the queue is listed for a call back too.
    assert_eq!(value(&m, "helpline_enquiries_open"), 2.0);
    // Two working days later both are overdue.
    app.clock.set(support::at("2026-11-27T10:00:00Z"));
    let m = scrape(&app, app.addr).await;
    assert_eq!(value(&m, "helpline_enquiries_overdue"), 2.0);
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let app = spawn_app_with(
        "2026-11-24T10:00:00Z",
        &[("HELPLINE_METRICS_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let main = app
        .client
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404, "not on the public listener");
    let m = scrape(&app, app.metrics_addr.expect("metrics listener")).await;
    assert!(m.contains("helpline_calendar_future_days"), "{m}");
}
