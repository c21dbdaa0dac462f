//! With HELPLINE_LOG_FORMAT=json, each log line is JSON with the request id and the call
//! SID (and still no personal data).

mod support;

#[tokio::test]
async fn json_logs_carry_request_id_and_call_sid() {
    let captured = support::Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("helpline=info,tower_http=info")
        .with_writer(move || sink.clone())
        .init();
    let app = support::spawn_app("2026-11-24T10:00:00Z").await;
    let mut call = app.call_from("+447700900123").await;
    call.press("3").await;

    let text = captured.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let step = lines
        .iter()
        .find(|l| l["fields"]["message"] == "call step" && l["fields"]["outcome"] == "option-3")
        .unwrap_or_else(|| panic!("no step line in {text}"));
    assert_eq!(step["fields"]["call_sid"], call.sid.as_str());
    let request_id = step["span"]["request_id"].as_str().unwrap_or("");
    assert_eq!(
        request_id.len(),
        36,
        "a request id (UUID) on the step's span: {step}"
    );
    assert!(!text.contains("7700900123"), "no caller number in the logs");
}
