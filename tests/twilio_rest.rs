//! The requests helpline makes to Twilio's REST API, against a local mock of Twilio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::StreamExt;
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{any, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use helpline::twilio::rest::{Deletion, NotConfigured, RestError, TwilioApi, TwilioRest};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const OTHER_ACCOUNT: &str = "ACfedcba9876543210fedcba9876543210";
const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const CALL: &str = "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MEMBER_CALL: &str = "CA5f3c1d9e0b7a4c2e8f6d1b3a5c7e9f0b";
const MESSAGE: &str = "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const QUEUE: &str = "QU1234567890abcdef1234567890abcdef";
const RECORDING: &str = "RE9876543210fedcba9876543210fedcba";
const LINE: &str = "+441517063602";
const CALLER: &str = "+447700900123";

fn rest(server: &MockServer) -> TwilioRest {
    rest_with_timeout(&server.uri(), Duration::from_secs(5))
}

fn rest_with_timeout(base: &str, timeout: Duration) -> TwilioRest {
    TwilioRest::new(
        base,
        ACCOUNT,
        SecretString::from(TOKEN.to_string()),
        timeout,
    )
    .expect("client")
}

fn basic_auth() -> String {
    format!("Basic {}", STANDARD.encode(format!("{ACCOUNT}:{TOKEN}")))
}

fn account_path(rest: &str) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}{rest}")
}

/// The request's form body has each of these name=value pairs (once) and none of `absent`.
struct Form {
    has: Vec<(&'static str, String)>,
    absent: Vec<&'static str>,
}

fn form(has: &[(&'static str, &str)]) -> Form {
    Form {
        has: has.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        absent: Vec::new(),
    }
}

impl Form {
    fn without(mut self, names: &[&'static str]) -> Self {
        self.absent.extend_from_slice(names);
        self
    }
}

impl Match for Form {
    fn matches(&self, request: &Request) -> bool {
        let form_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        form_type
            && self.has.iter().all(|(k, v)| {
                pairs.iter().filter(|(pk, _)| pk == k).count() == 1
                    && pairs.iter().any(|(pk, pv)| pk == k && pv == v)
            })
            && self
                .absent
                .iter()
                .all(|k| pairs.iter().all(|(pk, _)| pk != k))
    }
}

/// Twilio's reply to creating a call, as sent (with the nulls and extra fields).
fn call_json() -> serde_json::Value {
    json!({
        "account_sid": ACCOUNT,
        "annotation": null,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": null,
        "date_updated": null,
        "direction": "outbound-api",
        "duration": null,
        "end_time": null,
        "forwarded_from": null,
        "from": LINE,
        "from_formatted": "+441517063602",
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": "PN0123456789abcdef0123456789abcdef",
        "price": null,
        "price_unit": "USD",
        "sid": CALL,
        "start_time": null,
        "status": "queued",
        "subresource_uris": {
            "notifications": format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}/Notifications.json"),
            "recordings": format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}/Recordings.json"),
        },
        "to": CALLER,
        "to_formatted": "+447700900123",
        "trunk_sid": null,
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"),
        "queue_time": "0"
    })
}

fn message_json() -> serde_json::Value {
    json!({
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": "Your reference is HL-1234.",
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
        "date_sent": null,
        "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": LINE,
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": "1",
        "price": null,
        "price_unit": "GBP",
        "sid": MESSAGE,
        "status": "queued",
        "subresource_uris": {
            "media": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{MESSAGE}/Media.json")
        },
        "to": CALLER,
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{MESSAGE}.json")
    })
}

fn queue_json(name: &str, sid: &str) -> serde_json::Value {
    json!({
        "account_sid": ACCOUNT,
        "average_wait_time": 42,
        "current_size": 1,
        "date_created": "Tue, 04 Aug 2015 18:39:09 +0000",
        "date_updated": "Tue, 04 Aug 2015 18:39:09 +0000",
        "friendly_name": name,
        "max_size": 100,
        "sid": sid,
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Queues/{sid}.json"),
        "subresource_uris": {
            "members": format!("/2010-04-01/Accounts/{ACCOUNT}/Queues/{sid}/Members.json")
        }
    })
}

fn queues_json(queues: Vec<serde_json::Value>) -> serde_json::Value {
    json!({
        "end": queues.len().saturating_sub(1),
        "first_page_uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Queues.json?PageSize=1000&Page=0"),
        "next_page_uri": null,
        "page": 0,
        "page_size": 1000,
        "previous_page_uri": null,
        "queues": queues,
        "start": 0,
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Queues.json?PageSize=1000&Page=0")
    })
}

fn member_json() -> serde_json::Value {
    json!({
        "call_sid": MEMBER_CALL,
        "date_enqueued": "Tue, 07 Aug 2012 22:57:41 +0000",
        "position": 1,
        "queue_sid": QUEUE,
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Queues/{QUEUE}/Members/{MEMBER_CALL}.json"),
        "wait_time": 143
    })
}

fn not_found_json() -> serde_json::Value {
    json!({
        "code": 20404,
        "message": "The requested resource was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404
    })
}

#[tokio::test]
async fn create_call_posts_to_calls_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(account_path("/Calls.json")))
        .and(header("authorization", basic_auth().as_str()))
        .and(
            form(&[
                ("To", CALLER),
                ("From", LINE),
                ("Url", "https://helpline.example.nhs.uk/twilio/callback/7"),
                ("Method", "POST"),
            ])
            .without(&["StatusCallback", "Twiml", "ApplicationSid"]),
        )
        .respond_with(ResponseTemplate::new(201).set_body_json(call_json()))
        .expect(1)
        .mount(&server)
        .await;

    let sid = rest(&server)
        .create_call(
            CALLER,
            LINE,
            "https://helpline.example.nhs.uk/twilio/callback/7",
            None,
        )
        .await
        .expect("call created");
    assert_eq!(sid, CALL);
}

#[tokio::test]
async fn create_call_with_a_status_callback() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(account_path("/Calls.json")))
        .and(header("authorization", basic_auth().as_str()))
        .and(form(&[
            ("To", CALLER),
            ("From", LINE),
            ("Url", "https://helpline.example.nhs.uk/twilio/callback/7"),
            (
                "StatusCallback",
                "https://helpline.example.nhs.uk/twilio/status?callback=7",
            ),
            ("StatusCallbackMethod", "POST"),
        ]))
        .respond_with(ResponseTemplate::new(201).set_body_json(call_json()))
        .expect(1)
        .mount(&server)
        .await;

    let sid = rest(&server)
        .create_call(
            CALLER,
            LINE,
            "https://helpline.example.nhs.uk/twilio/callback/7",
            Some("https://helpline.example.nhs.uk/twilio/status?callback=7"),
        )
        .await
        .expect("call created");
    assert_eq!(sid, CALL);
}

#[tokio::test]
async fn send_sms_posts_to_messages_json() {
    let server = MockServer::start().await;
    let body = "Your reference is HL-1234. We will call you back & text first: 50% of calls...";
    Mock::given(method("POST"))
        .and(path(account_path("/Messages.json")))
        .and(header("authorization", basic_auth().as_str()))
        .and(form(&[("To", CALLER), ("From", LINE), ("Body", body)]))
        .respond_with(ResponseTemplate::new(201).set_body_json(message_json()))
        .expect(1)
        .mount(&server)
        .await;

    let sid = rest(&server)
        .send_sms(CALLER, LINE, body)
        .await
        .expect("message sent");
    assert_eq!(sid, MESSAGE);
}

#[tokio::test]
async fn dequeue_front_finds_the_queue_once_then_uses_its_sid() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(account_path("/Queues.json")))
        .and(query_param("PageSize", "1000"))
        .and(header("authorization", basic_auth().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(queues_json(vec![
            queue_json("overflow", "QUffffffffffffffffffffffffffffffff"),
            queue_json("helpline", QUEUE),
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(account_path(&format!(
            "/Queues/{QUEUE}/Members/Front.json"
        ))))
        .and(header("authorization", basic_auth().as_str()))
        .and(form(&[
            (
                "Url",
                "https://helpline.example.nhs.uk/twilio/bridge?staff=3",
            ),
            ("Method", "POST"),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_json(member_json()))
        .expect(2)
        .mount(&server)
        .await;

    let twilio = rest(&server);
    for _ in 0..2 {
        let dequeued = twilio
            .dequeue_front(
                "helpline",
                "https://helpline.example.nhs.uk/twilio/bridge?staff=3",
            )
            .await
            .expect("dequeued");
        assert_eq!(dequeued.as_deref(), Some(MEMBER_CALL));
    }
}

#[tokio::test]
async fn dequeue_front_of_an_empty_queue_is_none_and_the_queue_is_looked_up_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(account_path("/Queues.json")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(queues_json(vec![queue_json("helpline", QUEUE)])),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(account_path(&format!(
            "/Queues/{QUEUE}/Members/Front.json"
        ))))
        .respond_with(ResponseTemplate::new(404).set_body_json(not_found_json()))
        .expect(2)
        .mount(&server)
        .await;

    let twilio = rest(&server);
    for _ in 0..2 {
        let dequeued = twilio
            .dequeue_front("helpline", "https://helpline.example.nhs.uk/twilio/bridge")
            .await
            .expect("no error");
        assert_eq!(dequeued, None);
    }
}

#[tokio::test]
async fn dequeue_front_of_a_queue_that_does_not_exist_is_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(account_path("/Queues.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(queues_json(vec![
            queue_json("helplines", QUEUE),
            queue_json("Helpline", "QUffffffffffffffffffffffffffffffff"),
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(member_json()))
        .expect(0)
        .mount(&server)
        .await;

    let dequeued = rest(&server)
        .dequeue_front("helpline", "https://helpline.example.nhs.uk/twilio/bridge")
        .await
        .expect("no error");
    assert_eq!(dequeued, None);
}

#[tokio::test]
async fn twilio_errors_are_rejected_with_twilios_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(account_path("/Calls.json")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21211,
            "message": "The 'To' number is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400
        })))
        .expect(1)
        .mount(&server)
        .await;

    let error = rest(&server)
        .create_call(CALLER, LINE, "https://helpline.example.nhs.uk/x", None)
        .await
        .expect_err("rejected");
    match &error {
        RestError::Rejected { status, message } => {
            assert_eq!(*status, 400);
            assert_eq!(message, "The 'To' number is not a valid phone number.");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!error.to_string().contains(CALLER));
}

#[tokio::test]
async fn numbers_in_twilios_messages_are_redacted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(account_path("/Messages.json")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21614,
            "message": format!("'To' number {CALLER} is not a valid mobile number"),
            "status": 400
        })))
        .mount(&server)
        .await;

    let error = rest(&server)
        .send_sms(CALLER, LINE, "hello")
        .await
        .expect_err("rejected");
    match &error {
        RestError::Rejected {
            status: 400,
            message,
        } => {
            assert_eq!(message, "'To' number [number] is not a valid mobile number");
        }
        other => panic!("expected Rejected 400, got {other:?}"),
    }
}

#[tokio::test]
async fn errors_that_are_not_twilio_json_use_the_status_reason() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(502).set_body_string("<html>Bad gateway from the proxy</html>"),
        )
        .mount(&server)
        .await;

    let error = rest(&server)
        .dequeue_front("helpline", "https://helpline.example.nhs.uk/x")
        .await
        .expect_err("rejected");
    match error {
        RestError::Rejected { status, message } => {
            assert_eq!(status, 502);
            assert_eq!(message, "Bad Gateway");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_credentials_are_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401
        })))
        .mount(&server)
        .await;

    let error = rest(&server)
        .send_sms(CALLER, LINE, "hello")
        .await
        .expect_err("rejected");
    assert!(
        matches!(&error, RestError::Rejected { status: 401, message } if message == "Authenticate"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_2xx_reply_the_generated_model_cannot_read_is_a_transport_error() {
    // twilio-openapi parses 2xx replies strictly (e.g. its status enums) and drops the text
    // when that fails, so the SID is lost; the error says the request may have worked.
    let server = MockServer::start().await;
    let mut reply = call_json();
    reply["status"] = json!("some-future-status");
    Mock::given(method("POST"))
        .and(path(account_path("/Calls.json")))
        .respond_with(ResponseTemplate::new(201).set_body_json(reply))
        .mount(&server)
        .await;

    let error = rest(&server)
        .create_call(CALLER, LINE, "https://helpline.example.nhs.uk/x", None)
        .await
        .expect_err("unreadable");
    match error {
        RestError::Transport(detail) => {
            assert!(detail.contains("may have taken effect"), "{detail}");
            assert!(!detail.contains(CALLER), "{detail}");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slow_twilio_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(call_json())
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let twilio = rest_with_timeout(&server.uri(), Duration::from_millis(200));

    let started = Instant::now();
    let error = twilio
        .create_call(CALLER, LINE, "https://helpline.example.nhs.uk/x", None)
        .await
        .expect_err("timed out");
    assert!(matches!(error, RestError::Timeout), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    let error = twilio
        .send_sms(CALLER, LINE, "hello")
        .await
        .expect_err("timed out");
    assert!(matches!(error, RestError::Timeout), "{error:?}");

    let error = twilio
        .dequeue_front("helpline", "https://helpline.example.nhs.uk/x")
        .await
        .expect_err("timed out");
    assert!(matches!(error, RestError::Timeout), "{error:?}");

    let started = Instant::now();
    let error = twilio
        .recording_audio(&format!(
            "https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"
        ))
        .await
        .expect_err("timed out");
    assert!(matches!(error, RestError::Timeout), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_unreachable_twilio_is_a_transport_error_without_secrets() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let twilio = rest_with_timeout(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));

    let call = twilio
        .create_call(CALLER, LINE, "https://helpline.example.nhs.uk/x", None)
        .await
        .expect_err("unreachable");
    let recording = twilio
        .recording_audio(&format!(
            "https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"
        ))
        .await
        .expect_err("unreachable");
    for error in [call, recording] {
        assert!(matches!(error, RestError::Transport(_)), "{error:?}");
        let text = format!("{error} {error:?}");
        for secret in [TOKEN, CALLER, LINE, ACCOUNT, "2010-04-01"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[tokio::test]
async fn debug_output_hides_the_token() {
    let twilio = rest_with_timeout("https://api.twilio.com", Duration::from_secs(10));
    let shown = format!("{twilio:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("https://api.twilio.com"), "{shown}");
}

#[tokio::test]
async fn recording_audio_streams_our_recording() {
    let server = MockServer::start().await;
    // Not a real MP3, but big enough to arrive in several chunks.
    let audio: Vec<u8> = b"ID3\x04\x00\x00\x00\x00\x00\x00"
        .iter()
        .copied()
        .chain((0..300_000u32).map(|i| (i % 251) as u8))
        .collect();
    Mock::given(method("GET"))
        .and(path(account_path(&format!("/Recordings/{RECORDING}.mp3"))))
        .and(header("authorization", basic_auth().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(audio.clone(), "audio/mpeg"))
        .expect(2)
        .mount(&server)
        .await;

    let twilio = rest(&server);
    for stored in [
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"),
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}.mp3"),
    ] {
        let recording = twilio.recording_audio(&stored).await.expect("audio");
        assert_eq!(recording.content_type, "audio/mpeg");
        assert_eq!(recording.content_length, Some(audio.len() as u64));
        let mut received = Vec::new();
        let mut stream = recording.stream;
        while let Some(chunk) = stream.next().await {
            received.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(received, audio);
    }
}

#[tokio::test]
async fn recording_audio_never_passes_on_a_non_audio_type() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(account_path(&format!("/Recordings/{RECORDING}.mp3"))))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(b"<script>alert(1)</script>".to_vec(), "text/html"),
        )
        .mount(&server)
        .await;

    let recording = rest(&server)
        .recording_audio(&format!(
            "https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"
        ))
        .await
        .expect("audio");
    assert_eq!(recording.content_type, "audio/mpeg");
}

#[tokio::test]
async fn a_missing_recording_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(account_path(&format!("/Recordings/{RECORDING}.mp3"))))
        .respond_with(ResponseTemplate::new(404).set_body_json(not_found_json()))
        .expect(1)
        .mount(&server)
        .await;

    let error = rest(&server)
        .recording_audio(&format!(
            "https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"
        ))
        .await
        .expect_err("missing");
    assert!(
        matches!(&error, RestError::Rejected { status: 404, message } if message == "The requested resource was not found"),
        "{error:?}"
    );
}

#[tokio::test]
async fn recording_urls_other_than_ours_are_refused_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"x".to_vec(), "audio/mpeg"))
        .expect(0)
        .mount(&server)
        .await;
    let twilio = rest(&server);
    let mock = server.uri();

    for stored in [
        // Another account's recording.
        format!("https://api.twilio.com/2010-04-01/Accounts/{OTHER_ACCOUNT}/Recordings/{RECORDING}"),
        // Not Twilio, with more path.
        format!("https://evil.example/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}/../../admin"),
        format!("http://169.254.169.254/latest/meta-data/{RECORDING}"),
        format!("{mock}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}/Transcriptions.json"),
        // Malformed SIDs.
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1234"),
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{}", "g".repeat(32)),
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{CALL}"),
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}%2F..%2F..%2FCalls"),
        // Twilio's host, but not plain https, or with extras.
        format!("http://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"),
        format!("https://{ACCOUNT}:{TOKEN}@api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"),
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}?Download=true"),
        format!("https://api.twilio.com.evil.example/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"),
        RECORDING.to_string(),
        String::new(),
    ] {
        let error = twilio.recording_audio(&stored).await.expect_err("refused");
        assert!(matches!(error, RestError::BadRecordingUrl), "{stored}: {error:?}");
    }
}

#[tokio::test]
async fn delete_recording_deletes_by_url_or_sid() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(account_path(&format!("/Recordings/{RECORDING}.json"))))
        .and(header("authorization", basic_auth().as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(3)
        .mount(&server)
        .await;
    let twilio = rest(&server);
    for stored in [
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"),
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}.mp3"),
        RECORDING.to_string(),
    ] {
        assert_eq!(
            twilio.delete_recording(&stored).await.expect("deleted"),
            Deletion::Deleted,
            "{stored}"
        );
    }
}

#[tokio::test]
async fn deleting_a_recording_twilio_no_longer_has_is_already_gone() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(account_path(&format!("/Recordings/{RECORDING}.json"))))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": 20404,
            "message": "The requested resource was not found",
            "status": 404
        })))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        rest(&server)
            .delete_recording(RECORDING)
            .await
            .expect("gone"),
        Deletion::AlreadyGone
    );
}

#[tokio::test]
async fn a_recording_delete_twilio_refuses_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let error = rest(&server)
        .delete_recording(RECORDING)
        .await
        .expect_err("refused");
    assert!(
        matches!(error, RestError::Rejected { status: 503, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn recordings_of_other_accounts_are_never_deleted() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&server)
        .await;
    let twilio = rest(&server);
    for stored in [
        format!(
            "https://api.twilio.com/2010-04-01/Accounts/{OTHER_ACCOUNT}/Recordings/{RECORDING}"
        ),
        format!("https://evil.example/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"),
        format!("CA{}", &RECORDING[2..]),
        "simulated://recording".to_string(),
        String::new(),
    ] {
        let error = twilio.delete_recording(&stored).await.expect_err("refused");
        assert!(
            matches!(error, RestError::BadRecordingUrl),
            "{stored}: {error:?}"
        );
    }
}

#[tokio::test]
async fn not_configured_refuses_everything() {
    let twilio: Arc<dyn TwilioApi> = Arc::new(NotConfigured);
    let errors = [
        twilio
            .create_call(CALLER, LINE, "https://x/", None)
            .await
            .expect_err("not configured"),
        twilio
            .dequeue_front("helpline", "https://x/")
            .await
            .expect_err("not configured"),
        twilio
            .send_sms(CALLER, LINE, "hello")
            .await
            .expect_err("not configured"),
        twilio
            .recording_audio(&format!(
                "https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"
            ))
            .await
            .expect_err("not configured"),
        twilio
            .delete_recording(RECORDING)
            .await
            .expect_err("not configured"),
    ];
    for error in errors {
        assert!(matches!(error, RestError::NotConfigured), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("TWILIO_ACCOUNT_SID"), "{text}");
        assert!(text.contains("TWILIO_AUTH_TOKEN"), "{text}");
    }
}

#[test]
fn missing_credentials_are_not_configured() {
    for (sid, token) in [("", TOKEN), (ACCOUNT, ""), (ACCOUNT, "  ")] {
        let result = TwilioRest::new(
            "https://api.twilio.com",
            sid,
            SecretString::from(token.to_string()),
            Duration::from_secs(10),
        );
        assert!(matches!(result, Err(RestError::NotConfigured)), "{sid:?}");
    }
}
