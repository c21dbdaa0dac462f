//! Hostile input at the webhook edge (issue 7), sent the way Twilio would: signed, over
//! HTTP, to the real service. Bodies that are not well-formed forms are refused with a
//! reason; keys and words that are not an answer get a re-prompt; caller-controlled text
//! (speech, transcriptions, caller ID, URL segments) is never run, echoed as markup,
//! written raw to the logs or stored as a choice. The decisions are in
//! docs/architecture.md ("Hostile input").

mod support;

use support::{form_body, sign, spawn_app, Call, State, TestApp, PUBLIC};

const TUESDAY_10AM: &str = "2026-11-24T10:00:00Z";

/// Speech or transcription text an attacker might get Twilio to carry.
fn payloads() -> Vec<(&'static str, String)> {
    vec![
        ("sql", "'; DROP TABLE enquiries; --".into()),
        ("script", "<script>alert(1)</script>".into()),
        ("twiml", "</Say><Dial>+441234</Dial><Say>".into()),
        (
            "crlf",
            "hello\r\nINJECTED level=ERROR forged log line\r\n".into(),
        ),
        ("bidi", "\u{202E}3\u{200B} update\u{202C}".into()),
        // Large, yet three copies of it still fit the 64 KiB body limit (a megabyte is 413).
        (
            "large",
            format!("{}<Dial>+441234</Dial>", "words ".repeat(3_300)),
        ),
    ]
}

/// What a marker from each payload looks like, to look for it where it must not be.
const MARKERS: &[&str] = &["DROP TABLE", "<script", "alert(1)", "+441234", "INJECTED"];

fn params(sid: &str, from: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        (
            "AccountSid".into(),
            "AC00000000000000000000000000000000".into(),
        ),
        ("CallSid".into(), sid.into()),
        ("CallStatus".into(), "in-progress".into()),
        ("From".into(), from.into()),
        ("To".into(), "+441517063602".into()),
    ];
    p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    p
}

/// The TwiML is well-formed, uses only the verbs helpline writes, dials nobody, and
/// carries none of the hostile text in an element or attribute (spoken text is text).
fn assert_safe_twiml(twiml: &str) {
    let doc = roxmltree::Document::parse(twiml)
        .unwrap_or_else(|e| panic!("TwiML is not well-formed ({e}):\n{twiml}"));
    for node in doc.descendants().filter(|n| n.is_element()) {
        let name = node.tag_name().name();
        assert!(
            matches!(
                name,
                "Response"
                    | "Say"
                    | "Gather"
                    | "Redirect"
                    | "Record"
                    | "Enqueue"
                    | "Hangup"
                    | "Play"
                    | "Pause"
                    | "Leave"
            ),
            "unexpected <{name}> in\n{twiml}"
        );
        for a in node.attributes() {
            for m in MARKERS {
                assert!(!a.value().contains(m), "`{m}` in an attribute:\n{twiml}");
            }
        }
    }
    // Not even as text: the line never reads a caller's words back.
    for m in MARKERS {
        assert!(!twiml.contains(m), "`{m}` echoed in\n{twiml}");
    }
}

fn gather_node(call: &Call<'_>) -> String {
    match &call.state {
        State::Gathering { action, .. } => action
            .split("/twilio/step/")
            .nth(1)
            .and_then(|rest| rest.split('?').next())
            .unwrap_or("")
            .to_string(),
        other => panic!("not asking anything: {other:?}\n{}", call.last_twiml),
    }
}

async fn last_outcome(app: &TestApp, call: &Call<'_>) -> String {
    app.store
        .steps(&call.sid)
        .await
        .expect("steps")
        .last()
        .map(|s| s.outcome.clone())
        .unwrap_or_default()
}

// --- The body itself --------------------------------------------------------------------

#[tokio::test]
async fn a_webhook_that_is_not_a_form_is_415_with_a_reason() {
    let app = spawn_app(TUESDAY_10AM).await;
    let url = format!("{PUBLIC}/twilio/voice");
    let p = params("CA415", "+447700900123", &[]);
    let sig = sign(&url, &p);
    for ct in [
        Some("application/json"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        Some("application/x-www-form-urlencoded-evil"),
        Some("text/xml"),
        None,
    ] {
        let a = app
            .post_bytes(&url, form_body(&p).into_bytes(), ct, Some(&sig), &[])
            .await;
        assert_eq!(a.status, 415, "{ct:?}: {}", a.body);
        assert!(
            a.body.contains("application/x-www-form-urlencoded"),
            "{ct:?}: the reason names the type: {}",
            a.body
        );
    }
    assert!(app.store.call("CA415").await.unwrap().is_none());
}

#[tokio::test]
async fn malformed_escapes_and_non_utf8_are_400_with_a_reason() {
    let app = spawn_app(TUESDAY_10AM).await;
    let url = format!("{PUBLIC}/twilio/voice");
    let base = "AccountSid=AC0&CallSid=CA400&To=%2B441517063602";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (format!("{base}&From=%").into_bytes(), "percent-escape"),
        (format!("{base}&From=%2").into_bytes(), "percent-escape"),
        (
            format!("{base}&From=%zz447700900123").into_bytes(),
            "percent-escape",
        ),
        (format!("{base}&Digits=1%%").into_bytes(), "percent-escape"),
        (format!("{base}&From=%FF%FE").into_bytes(), "invalid UTF-8"),
        (
            format!("{base}&CallerName=Zo%C3").into_bytes(),
            "invalid UTF-8",
        ),
        (format!("{base}&%C3%28=1").into_bytes(), "invalid UTF-8"),
        (
            [base.as_bytes(), b"&From=\xff\xfe"].concat(),
            "non-ASCII bytes",
        ),
        (
            [base.as_bytes(), "&CallerName=Zoë".as_bytes()].concat(),
            "non-ASCII bytes",
        ),
    ];
    for (body, reason) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        // Signed over the fields as a lossy parser would see them: the refusal comes first.
        let a = app
            .post_bytes(
                &url,
                body,
                Some("application/x-www-form-urlencoded"),
                Some("c2lnbmF0dXJl"),
                &[],
            )
            .await;
        assert_eq!(a.status, 400, "{shown}: {}", a.body);
        assert!(a.content_type.starts_with("text/plain"), "{shown}");
        assert!(a.body.contains(reason), "{shown}: {}", a.body);
        assert!(!a.body.contains("447700"), "no value echoed: {}", a.body);
    }
    assert!(app.store.call("CA400").await.unwrap().is_none());
}

#[tokio::test]
async fn duplicate_fields_are_400_even_when_signed() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    let steps_before = app.store.steps(&call.sid).await.unwrap().len();
    let State::Gathering { action, .. } = call.state.clone() else {
        panic!("the menu is asked")
    };
    // Two CallSids: which call is this about?
    let mut two_sids = params(&call.sid, "+447700900123", &[("Digits", "3")]);
    two_sids.push(("CallSid".into(), "CAother0000000000000000000000000".into()));
    // Two Digits: which key was pressed?
    let two_digits = params(
        &call.sid,
        "+447700900123",
        &[("Digits", "3"), ("Digits", "0")],
    );
    // The same name spelt with an escape is still the same name.
    let mut escaped = form_body(&params(&call.sid, "+447700900123", &[("Digits", "3")]));
    escaped.push_str("&%44igits=0");
    for (body, sig, field) in [
        (form_body(&two_sids), sign(&action, &two_sids), "`CallSid`"),
        (
            form_body(&two_digits),
            sign(&action, &two_digits),
            "`Digits`",
        ),
        (escaped, sign(&action, &two_digits), "`Digits`"),
    ] {
        let a = app.post_raw(&action, body, Some(&sig), &[]).await;
        assert_eq!(a.status, 400, "{field}: {}", a.body);
        assert!(
            a.body.contains(field) && a.body.contains("more than once"),
            "{}",
            a.body
        );
    }
    // Nothing happened to the call: it still waits at the menu, and it still works.
    assert_eq!(
        app.store.steps(&call.sid).await.unwrap().len(),
        steps_before
    );
    assert!(app
        .store
        .call("CAother0000000000000000000000000")
        .await
        .unwrap()
        .is_none());
    call.press("3").await;
    assert!(call.heard("Action Fraud"), "{}", call.last());
}

#[tokio::test]
async fn a_megabyte_is_413_and_never_reaches_a_handler() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    let State::Gathering { action, .. } = call.state.clone() else {
        panic!("the menu is asked")
    };
    let huge = "<script>alert(1)</script>".repeat(1024 * 1024 / 25);
    let p = params(&call.sid, "+447700900123", &[("SpeechResult", &huge)]);
    let a = app
        .post_raw(&action, form_body(&p), Some(&sign(&action, &p)), &[])
        .await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(!a.body.trim().is_empty(), "413 with a reason");
    // The call carries on as if the request had never come.
    assert_eq!(app.store.steps(&call.sid).await.unwrap().len(), 1);
    call.press("1").await;
    assert!(call.heard("Here is the latest update"));
}

// --- Keys that are not an answer --------------------------------------------------------

fn bad_digits() -> Vec<String> {
    vec![
        "1".repeat(10_000),
        "70".repeat(5_000),
        "abc".into(),
        "A".into(),
        "*#*#".into(),
        "#".into(),
        "1#".into(),
        "٣".into(),         // ARABIC-INDIC DIGIT THREE
        "３".into(),        // FULLWIDTH DIGIT THREE
        "३".into(),         // DEVANAGARI DIGIT THREE
        "\u{200B}3".into(), // a zero-width space before a real key
        "3\u{202E}".into(), // a bidi override after one
        "'; DROP TABLE enquiries; --".into(),
    ]
}

#[tokio::test]
async fn digits_that_are_not_a_key_get_a_reprompt_and_choose_nothing() {
    let app = spawn_app(TUESDAY_10AM).await;
    for digits in bad_digits() {
        let shown: String = digits.chars().take(12).collect();
        let mut call = app.call_from("+447700900123").await;
        call.press(&digits).await;
        assert_safe_twiml(&call.last_twiml);
        assert!(
            call.last()
                .starts_with("Sorry, I didn't catch that. Press 1 for the latest update"),
            "{shown:?}: {}",
            call.last()
        );
        assert_eq!(gather_node(&call), "main_menu", "{shown:?}");
        assert_eq!(last_outcome(&app, &call).await, "invalid", "{shown:?}");
        assert_eq!(
            app.store.answers(&call.sid).await.unwrap(),
            Default::default(),
            "{shown:?}: nothing stored as a choice"
        );
    }
}

#[tokio::test]
async fn digits_that_are_not_a_number_get_a_reprompt_and_store_nothing() {
    let app = spawn_app(TUESDAY_10AM).await;
    for digits in bad_digits() {
        let shown: String = digits.chars().take(12).collect();
        let mut call = app.call_from("anonymous").await;
        call.press("2").await;
        assert_eq!(gather_node(&call), "enter_number");
        call.press(&digits).await;
        assert_safe_twiml(&call.last_twiml);
        assert!(
            call.last()
                .starts_with("Sorry, that doesn't look like a UK phone number."),
            "{shown:?}: {}",
            call.last()
        );
        assert_eq!(gather_node(&call), "enter_number", "{shown:?}");
        assert_eq!(
            app.store.answers(&call.sid).await.unwrap().callback_number,
            None,
            "{shown:?}"
        );
    }
    // Unicode digits spelling a real number are not a real number either.
    let mut call = app.call_from("anonymous").await;
    call.press("2").await;
    call.press("٠٧٧٠٠٩٠٠١٢٣#").await;
    assert_eq!(gather_node(&call), "enter_number");
    assert!(app.store.list_enquiries().await.unwrap().is_empty());
}

// --- Words --------------------------------------------------------------------------------

#[tokio::test]
async fn hostile_speech_at_menus_and_number_prompts_is_only_ever_data() {
    let app = spawn_app(TUESDAY_10AM).await;
    for (what, words) in payloads() {
        let mut call = app.call_from("+447700900123").await;
        call.say(&words).await;
        assert_safe_twiml(&call.last_twiml);
        // Either an option it happened to name, or a re-prompt; never an error.
        assert!(!call.ended(), "{what}: {}", call.last());

        let mut call = app.call_from("anonymous").await;
        call.press("2").await;
        call.say(&words).await;
        assert_safe_twiml(&call.last_twiml);
        assert_eq!(gather_node(&call), "enter_number", "{what}");
        assert_eq!(
            app.store.answers(&call.sid).await.unwrap().callback_number,
            None,
            "{what}"
        );
    }
    // The tables are all still there, and hold none of it.
    assert!(app.store.list_enquiries().await.unwrap().is_empty());
}

#[tokio::test]
async fn hostile_transcription_and_speech_with_a_message_store_only_the_enquiry() {
    let app = spawn_app(TUESDAY_10AM).await;
    // A number each: the per-number cap would fold a fourth request into the first.
    for (i, (what, words)) in payloads().into_iter().enumerate() {
        let mut call = app.call_from("anonymous").await;
        call.press("2").await;
        call.press(&format!("0770090045{i}#")).await;
        call.press("1").await; // that's right
        call.press("1").await; // Alder Hey
        call.press("1").await; // data concern
        let State::Recording { action, .. } = call.state.clone() else {
            panic!("{what}: the message is asked for: {}", call.last_twiml)
        };
        // helpline never asks Twilio for transcriptions; a body carrying one anyway (and
        // speech besides) is still only a recording.
        call.request(
            &action,
            vec![
                (
                    "RecordingUrl",
                    "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE0123".into(),
                ),
                ("RecordingDuration", "30".into()),
                ("RecordingSid", "RE0123".into()),
                ("TranscriptionText", words.clone()),
                ("TranscriptionStatus", "completed".into()),
                ("SpeechResult", words.clone()),
                ("CallerName", words.clone()),
            ],
        )
        .await;
        assert_safe_twiml(&call.last_twiml);
        assert!(call.heard("reference"), "{what}: {}", call.last());
        let e = app
            .store
            .enquiry_for_call(&call.sid)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: the enquiry is stored"));
        assert_eq!(e.callback_number, format!("+44770090045{i}"));
        assert_eq!(e.recording_duration, Some(30));
        let stored = format!("{e:?} {:?}", app.store.steps(&call.sid).await.unwrap());
        for m in MARKERS {
            assert!(!stored.contains(m), "{what}: `{m}` stored: {stored}");
        }
    }
    assert_eq!(
        app.store.list_enquiries().await.unwrap().len(),
        payloads().len()
    );
}

// --- Logs ---------------------------------------------------------------------------------

/// Hostile text in everything a request carries, including the one caller-reachable value
/// that is logged: the node in an action URL (signed, so only as Twilio would send it).
async fn hostile_requests(app: &TestApp) {
    for (_, words) in payloads() {
        let mut call = app.call_from("+447700900123").await;
        call.say(&words).await;
        call.press(&"7".repeat(10_000)).await;
        let url = format!(
            "{PUBLIC}/twilio/step/x%0D%0AINJECTED%20level%3DERROR%0A%E2%80%AE?seq=1&attempt=0"
        );
        call.request(&url, vec![("SpeechResult", words.clone())])
            .await;
        assert_safe_twiml(&call.last_twiml);
        // The node is only data: the caller is back at the main menu.
        assert_eq!(gather_node(&call), "main_menu");
    }
}

/// No raw CR, no line that starts with the injected text, none of the callers' words.
/// In text logs a bidi override is escaped too (`\u{202e}`); in JSON it may stay inside a
/// string, where it forges nothing.
fn assert_no_forged_lines(logs: &str, text: bool) {
    assert!(!logs.contains('\r'), "a raw CR in the logs:\n{logs}");
    for line in logs.lines() {
        assert!(
            !line.trim_start().starts_with("INJECTED"),
            "a forged log line:\n{logs}"
        );
        for m in ["DROP TABLE", "<script", "alert(1)", "+441234", "hello"] {
            assert!(!line.contains(m), "`{m}` in the logs: {line}");
        }
        if text {
            assert!(!line.contains('\u{202E}'), "a raw bidi override: {line}");
        }
    }
}

#[tokio::test]
async fn hostile_text_never_forges_a_log_line_in_text_or_json() {
    // The service's tasks run on this test's thread (a current-thread runtime), so a
    // subscriber set for the thread sees everything it logs.
    let app = spawn_app(TUESDAY_10AM).await;

    let text = support::Captured::default();
    let sink = text.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("helpline=trace,tower_http=trace")
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        hostile_requests(&app).await;
    }
    let logs = text.text();
    assert!(
        logs.contains("unknown node"),
        "the hostile node was logged (escaped):\n{logs}"
    );
    assert_no_forged_lines(&logs, true);

    let json = support::Captured::default();
    let sink = json.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("helpline=trace,tower_http=trace")
        .with_writer(move || sink.clone())
        .finish();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        hostile_requests(&app).await;
    }
    let logs = json.text();
    assert_no_forged_lines(&logs, false);
    let mut nodes = 0;
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "answer for an unknown node; restarting the flow" {
            assert_eq!(
                v["fields"]["node"], "x\r\nINJECTED level=ERROR\n\u{202E}",
                "the node is one JSON string, escaped"
            );
            nodes += 1;
        }
    }
    assert_eq!(nodes, payloads().len(), "{logs}");
}

// --- Exports -------------------------------------------------------------------------------

#[test]
fn csv_cells_that_a_spreadsheet_would_run_are_neutralised() {
    use helpline::staff::audit::{safe_cell, write_csv, Entry};
    for cell in [
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "+441234",
        "-2+3",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
    ] {
        assert!(safe_cell(cell).starts_with('\''), "{cell:?}");
    }
    for cell in [
        "07700 900123",
        "alder-hey",
        "</Say><Dial>",
        "'; DROP TABLE x; --",
    ] {
        assert_eq!(safe_cell(cell), cell);
    }
    // Through the writer every export uses (the statistics and enquiries exports call the
    // same `safe_cell` on every cell): quoted, and read back as text.
    let entry = Entry {
        id: 1,
        at: support::at("2026-11-24T10:00:00Z"),
        actor: "=cmd|' /C calc'!A0".into(),
        action: "login.failed".into(),
        target: Some("hello\r\nINJECTED,row".into()),
        address: Some("@SUM(1)".into()),
        detail: Some("\u{202E}=1+1".into()),
    };
    let mut out = Vec::new();
    write_csv(&[entry], &mut out).unwrap();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(out.as_slice())
        .records()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1, "CRLF inside a cell stays inside it");
    assert_eq!(&rows[0][2], "'=cmd|' /C calc'!A0");
    assert_eq!(&rows[0][4], "hello\r\nINJECTED,row");
    assert_eq!(&rows[0][5], "'@SUM(1)");
}

// --- Who is calling --------------------------------------------------------------------------

#[tokio::test]
async fn anonymous_and_odd_caller_ids_are_served_and_asked_for_a_number() {
    let app = spawn_app(TUESDAY_10AM).await;
    let odd = [
        "anonymous",
        "+266696687",
        "",
        "client:alice",
        "sip:x@y",
        "unknown",
        // Not E.164: never offered back, even when it would parse as a UK number.
        "07700900123",
        "447700900123",
        "+44 7700 900123",
        "+44(0)7700900123",
        "+12025550100",
        "<script>alert(1)</script>",
        "'; DROP TABLE calls; --",
    ];
    for from in odd {
        let mut call = app.call_from(from).await;
        assert_safe_twiml(&call.last_twiml);
        assert!(call.heard("thank you for calling"), "{from:?}");
        assert_eq!(gather_node(&call), "main_menu", "{from:?}");
        call.press("1").await;
        assert!(call.heard("Here is the latest update"), "{from:?}");

        let mut call = app.call_from(from).await;
        call.press("2").await;
        assert!(
            call.last().contains("key in the UK phone number"),
            "{from:?}: {}",
            call.last()
        );
        assert!(!call.last().contains("calling from"), "{from:?}");
        // Stored as it came, as data.
        let record = app.store.call(&call.sid).await.unwrap().unwrap();
        assert_eq!(record.caller.as_deref(), Some(from), "{from:?}");
    }
    // A full request for a call back from a withheld number.
    let mut call = app.call_from("+266696687").await;
    call.press("2").await;
    call.press("0151 706 3602#").await;
    call.press("1").await;
    call.press("4").await;
    call.press("3").await;
    call.silence().await;
    assert!(call.heard("reference"), "{}", call.last());
    let e = app
        .store
        .enquiry_for_call(&call.sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.callback_number, "+441517063602");
    // The control: a real E.164 UK caller ID is offered back.
    let mut call = app.call_from("+447700900123").await;
    call.press("2").await;
    assert!(
        call.last().contains("calling from, ending 0 1 2 3"),
        "{}",
        call.last()
    );
}

#[tokio::test]
async fn the_queue_serves_an_anonymous_caller_and_lists_no_number() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("anonymous").await;
    call.press("0").await;
    assert!(
        matches!(call.state, State::Queued { .. }),
        "{}",
        call.last_twiml
    );
    call.wait_in_queue(1).await;
    // Hanging up after a long wait would list a known number for a call back; there is none.
    call.queue_result("hangup", 900).await;
    assert!(app.store.list_enquiries().await.unwrap().is_empty());
}
