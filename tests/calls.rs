//! Whole calls, played the way Twilio plays them, against the real service.

mod support;

use support::{spawn_app, spawn_app_with, State, PUBLIC};

const TUESDAY_10AM: &str = "2026-11-24T10:00:00Z";
const SATURDAY: &str = "2026-11-28T11:00:00Z";
const CHRISTMAS_EVE_AFTER_CLOSE: &str = "2026-12-24T16:30:00Z";
const ACTION_FRAUD_SPOKEN: &str = "0 3 0 0, 1 2 3, 2 0 4 0";

#[tokio::test]
async fn in_hours_greeting_names_the_line_and_offers_the_menu() {
    let app = spawn_app(TUESDAY_10AM).await;
    let call = app.call_from("+447700900123").await;
    let s = call.last();
    assert!(s.contains("Alder Hey Children's Hospital, Liverpool Heart and Chest Hospital, and Royal Liverpool University Hospital"), "{s}");
    assert!(s.contains("For the latest update on the incident, press 1"));
    assert!(!s.contains("closed"));
    match &call.state {
        State::Gathering {
            input, num_digits, ..
        } => {
            assert_eq!(input, "dtmf speech");
            assert_eq!(num_digits.as_deref(), Some("1"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        call.last_twiml.contains("hints=\""),
        "speech hints are given"
    );
}

#[tokio::test]
async fn out_of_hours_greeting_says_closed_and_when_it_reopens() {
    let app = spawn_app(SATURDAY).await;
    let call = app.call_from("+447700900123").await;
    let s = call.last();
    assert!(
        s.contains("The line is closed at weekends. It is usually open"),
        "{s}"
    );
    assert!(
        s.contains("Monday to Friday, 9am to 4pm, except bank holidays"),
        "{s}"
    );
    assert!(
        s.contains("we open again on Monday the 30th of November at 9am"),
        "{s}"
    );
    assert!(s.contains("press 1"), "same menu out of hours");
}

#[tokio::test]
async fn latest_update_then_back_to_the_menu() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("1").await;
    assert!(
        call.last().contains("Here is the latest update"),
        "{}",
        call.last()
    );
    assert!(call.last().contains("National Crime Agency"));
    assert!(call.last().contains("press 1"), "menu offered again");
}

#[tokio::test]
async fn fraud_guidance_at_any_hour() {
    for when in [TUESDAY_10AM, SATURDAY, "2026-12-25T03:00:00Z"] {
        let app = spawn_app(when).await;
        let mut call = app.call_from("+447700900123").await;
        call.press("3").await;
        let s = call.last();
        assert!(s.contains(&format!("Action Fraud, the national reporting centre for fraud and cyber crime, on {ACTION_FRAUD_SPOKEN}")), "{when}: {s}");
        assert!(s.contains("The NHS will never contact you out of the blue"));
        assert!(s.contains("official website"));
        assert!(s.contains("forward suspicious emails"));
        assert!(s.contains(
            "To hear this advice again, press 1. To leave a request for a call back, press 2"
        ));
        call.press("1").await;
        assert!(call.last().contains(ACTION_FRAUD_SPOKEN), "repeat works");
    }
}

#[tokio::test]
async fn appointments_are_running_normally() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("4").await;
    assert!(call.last().contains(
        "Hospital services are running as normal. Please keep coming to your appointments"
    ));
}

#[tokio::test]
async fn star_repeats_the_menu() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("*").await;
    assert!(
        call.last()
            .starts_with("For the latest update on the incident, press 1"),
        "{}",
        call.last()
    );
}

#[tokio::test]
async fn speech_reaches_fraud_guidance() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.say("someone phoned me saying they had my records")
        .await;
    assert!(
        call.last().contains("report it to Action Fraud"),
        "{}",
        call.last()
    );
}

#[tokio::test]
async fn adviser_in_hours_queues_with_position_and_callback_offer() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("0").await;
    assert!(call.last().contains("Putting you through to an adviser"));
    let State::Queued { wait_url, action } = call.state.clone() else {
        panic!("{:?}", call.state)
    };
    assert_eq!(
        wait_url,
        format!("{PUBLIC}/twilio/queue/adviser_queue/wait")
    );
    assert!(action.starts_with(&format!("{PUBLIC}/twilio/queue/adviser_queue/done?seq=")));
    assert!(
        call.last_twiml.contains(">helpline</Enqueue>"),
        "{}",
        call.last_twiml
    );

    let wait = call.wait_in_queue(3).await;
    assert!(
        call.last().contains("You are number 3 in the queue"),
        "{}",
        call.last()
    );
    assert!(call.last().contains("press 1 at any time"));
    assert!(
        !call.last().contains("about"),
        "no estimate without history: {}",
        call.last()
    );
    assert!(wait.contains("<Play>"), "hold music while waiting");

    // Pressing 1 leaves the queue; Twilio then posts the Enqueue action with QueueResult=leave.
    let leave = call.press_while_waiting("1").await;
    assert!(
        leave.contains("<Leave/>") || leave.contains("<Leave></Leave>"),
        "{leave}"
    );
    call.queue_result("leave", 40).await;
    assert!(
        call.last().contains("only to return your call"),
        "{}",
        call.last()
    );
    assert!(call.last().contains("ending 0 1 2 3"));
}

#[tokio::test]
async fn wait_estimate_only_with_enough_history() {
    let app = spawn_app(TUESDAY_10AM).await;
    // Five callers answered after about four minutes each.
    for wait in [200, 230, 240, 250, 260] {
        let mut c = app.call_from("+447700900999").await;
        c.press("0").await;
        c.queue_result("bridged", wait).await;
        assert!(c.last().contains("Thank you for calling. Goodbye."));
        assert!(c.ended());
    }
    let mut call = app.call_from("+447700900123").await;
    call.press("0").await;
    call.wait_in_queue(1).await;
    assert!(call.last().contains("about 4 minutes"), "{}", call.last());
}

#[tokio::test]
async fn adviser_out_of_hours_explains_when_the_line_reopens() {
    let app = spawn_app(CHRISTMAS_EVE_AFTER_CLOSE).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("0").await;
    let s = call.last();
    assert!(
        s.contains("our advisers are not available right now"),
        "{s}"
    );
    assert!(
        s.contains("we open again on Tuesday the 29th of December at 9am"),
        "{s}"
    );
    assert!(
        matches!(call.state, State::Gathering { .. }),
        "menu offered again"
    );
}

#[tokio::test]
async fn bank_holiday_is_closed() {
    let app = spawn_app("2026-12-28T11:00:00Z").await;
    let call = app.call_from("+447700900123").await;
    assert!(
        call.last().contains("The line is closed"),
        "{}",
        call.last()
    );
    assert!(
        call.last()
            .contains("we open again tomorrow, Tuesday the 29th of December, at 9am"),
        "{}",
        call.last()
    );
}

#[tokio::test]
async fn callback_request_end_to_end_survives_a_retried_webhook() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("2").await;
    assert!(call
        .last()
        .contains("only to return your call, and we keep them for a limited time"));
    assert!(call.last().contains("ending 0 1 2 3"));
    call.press("1").await; // use this number
    assert!(call.last().contains("Which hospital"));
    call.press("2").await; // Liverpool Heart and Chest
    assert!(call.last().contains("What is your enquiry about"));
    call.press("1").await; // data concern
    let State::Recording { max_length, .. } = &call.state else {
        panic!("{:?}", call.state)
    };
    assert_eq!(max_length, "120");
    call.leave_message(14).await;
    let s = call.last();
    assert!(call.ended(), "the call ends after the reference");

    let stored = app.store.list_enquiries().await.unwrap();
    assert_eq!(stored.len(), 1);
    let e = &stored[0];
    assert_eq!(e.call_sid, call.sid);
    assert_eq!(e.callback_number, "+447700900123");
    assert_eq!(e.trust.as_str(), "liverpool-heart-and-chest");
    assert_eq!(e.category.as_str(), "data-concern");
    assert_eq!(e.status.as_str(), "new");
    assert_eq!(e.recording_duration, Some(14));
    assert!(e.recording_url.as_deref().unwrap().contains("RE0123"));
    assert_eq!(e.callback_due.to_string(), "2026-11-26");
    assert!(
        s.contains(&format!(
            "Your reference number is {}",
            e.reference.spoken()
        )),
        "{s}"
    );
    assert!(
        s.contains("by the end of Thursday the 26th of November"),
        "{s}"
    );

    // Twilio retries the last webhook: same words, same reference, still one enquiry.
    let again = call.retry_last().await;
    assert_eq!(again, call.last_twiml);
    assert_eq!(app.store.list_enquiries().await.unwrap().len(), 1);
}

#[tokio::test]
async fn callback_out_of_hours_with_a_different_number_and_no_message() {
    let app = spawn_app(SATURDAY).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("2").await;
    call.press("2").await; // a different number
    assert!(
        call.last().contains("key in the UK phone number"),
        "{}",
        call.last()
    );
    call.press("0800123456#").await;
    assert!(
        call.last().contains("doesn't look like a UK phone number"),
        "{}",
        call.last()
    );
    assert!(
        call.last().contains("key in the UK phone number"),
        "re-prompted with the question"
    );
    call.press("01517063602#").await;
    assert!(
        call.last()
            .contains("We'll call you back on 0 1 5 1 7, 0 6 3, 6 0 2"),
        "read back: {}",
        call.last()
    );
    call.press("2").await; // not right: give it again
    assert!(
        call.last().contains("key in the UK phone number"),
        "{}",
        call.last()
    );
    call.say("oh one five one seven oh six three six oh two")
        .await;
    assert!(
        call.last().contains("0 1 5 1 7, 0 6 3, 6 0 2"),
        "spoken numbers are read back too: {}",
        call.last()
    );
    call.press("1").await;
    call.say("royal liverpool").await;
    call.press("3").await;
    call.silence().await; // no message
    assert!(call.ended());
    let e = &app.store.list_enquiries().await.unwrap()[0];
    assert_eq!(e.callback_number, "+441517063602");
    assert_eq!(e.trust.as_str(), "royal-liverpool");
    assert_eq!(e.category.as_str(), "other");
    assert_eq!(e.recording_url, None);
    // Saturday: two working days on is Tuesday.
    assert_eq!(e.callback_due.to_string(), "2026-12-01");
}

#[tokio::test]
async fn withheld_number_goes_straight_to_keying_one() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("anonymous").await;
    call.press("2").await;
    assert!(
        call.last().contains("key in the UK phone number"),
        "{}",
        call.last()
    );
    assert!(!call.last().contains("ending"));
}

#[tokio::test]
async fn three_silences_give_the_essentials_and_end_politely() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.silence().await;
    assert!(
        call.last().starts_with("Sorry, I didn't hear anything."),
        "{}",
        call.last()
    );
    assert!(call
        .last()
        .contains("Press 1 for the latest update, 2 to ask for a call back"));
    call.silence().await;
    call.silence().await;
    assert!(call.ended());
    let s = call.last();
    assert!(s.contains("Monday to Friday, 9am to 4pm"), "{s}");
    assert!(s.contains(ACTION_FRAUD_SPOKEN), "{s}");
    assert!(s.ends_with("Goodbye."));
}

#[tokio::test]
async fn wrong_keys_are_reprompted_with_the_choices() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("9").await;
    assert!(
        call.last()
            .starts_with("Sorry, I didn't catch that. Press 1 for the latest update"),
        "{}",
        call.last()
    );
    call.say("bananas").await;
    assert!(call.last().contains("Press 1 for the latest update"));
    call.press("7").await;
    assert!(call.ended(), "third failure ends the call politely");
}

#[tokio::test]
async fn status_callback_records_the_end_and_queue_hang_ups() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("0").await;
    call.hang_up(95).await;
    let rec = app
        .store
        .call(&call.sid)
        .await
        .unwrap()
        .expect("call recorded");
    assert_eq!(rec.caller.as_deref(), Some("+447700900123"));
    assert!(rec.in_hours);
    assert!(!rec.simulated);
    assert_eq!(rec.final_status.as_deref(), Some("completed"));
    assert_eq!(rec.duration_seconds, Some(95));
    assert!(rec.ended_at.is_some());
    assert!(rec.queue_joined_at.is_some());
    assert!(rec.hung_up_in_queue, "joined the queue and never left it");

    // A caller who was answered did not hang up in the queue.
    let mut answered = app.call_from("+447700900124").await;
    answered.press("0").await;
    answered.queue_result("bridged", 30).await;
    answered.hang_up(300).await;
    let rec = app.store.call(&answered.sid).await.unwrap().unwrap();
    assert!(!rec.hung_up_in_queue);
    assert_eq!(
        (rec.queue_result.as_deref(), rec.queue_wait_seconds),
        (Some("bridged"), Some(30))
    );
}

#[tokio::test]
async fn out_of_hours_calls_are_marked_and_steps_recorded_once() {
    let app = spawn_app(SATURDAY).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("9").await;
    call.press("3").await;
    // Twilio retries the last webhook twice: no extra steps.
    let first = call.last_twiml.clone();
    assert_eq!(call.retry_last().await, first);
    assert_eq!(call.retry_last().await, first);
    let rec = app.store.call(&call.sid).await.unwrap().unwrap();
    assert!(!rec.in_hours);
    let steps = app.store.steps(&call.sid).await.unwrap();
    let summary: Vec<_> = steps
        .iter()
        .map(|s| (s.seq, s.node.as_str(), s.input.as_str(), s.outcome.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, "welcome", "start", "start-closed"),
            (1, "main_menu", "dtmf", "invalid"),
            (2, "main_menu", "dtmf", "option-3"),
        ]
    );
}

#[tokio::test]
async fn essential_words_are_said_in_full_before_the_question() {
    let app = spawn_app(SATURDAY).await;
    let mut call = app.call_from("+447700900123").await;
    let doc = roxmltree::Document::parse(&call.last_twiml).unwrap();
    let verbs: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.is_element())
        .collect();
    assert_eq!(
        verbs[0].tag_name().name(),
        "Say",
        "the greeting is not inside the <Gather>"
    );
    assert!(verbs[0]
        .text()
        .unwrap()
        .contains("The line is closed at weekends"));
    let gather = verbs.iter().find(|v| v.has_tag_name("Gather")).unwrap();
    let asked: String = gather.children().filter_map(|c| c.text()).collect();
    assert!(
        asked.starts_with("For the latest update on the incident, press 1"),
        "{asked}"
    );
    call.press("3").await;
    let doc = roxmltree::Document::parse(&call.last_twiml).unwrap();
    let first = doc.root_element().first_element_child().unwrap();
    assert!(
        first.has_tag_name("Say") && first.text().unwrap().contains("Action Fraud"),
        "fraud guidance in full first"
    );
}

#[tokio::test]
async fn another_key_while_waiting_never_invents_a_position() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("0").await;
    let again = call.press_while_waiting("5").await;
    assert!(
        !again.contains("You are number"),
        "no position was given by Twilio: {again}"
    );
    assert!(
        again.contains("<Play>"),
        "still waiting with music: {again}"
    );
    assert!(!again.contains("<Leave"), "{again}");
}

#[tokio::test]
async fn callers_still_waiting_at_closing_time_are_offered_a_call_back() {
    let app = spawn_app("2026-11-24T15:59:00Z").await;
    let mut call = app.call_from("+447700900123").await;
    call.press("0").await;
    call.wait_in_queue(4).await;
    assert!(call.last().contains("You are number 4"), "{}", call.last());
    app.clock.set(support::at("2026-11-24T16:00:30Z"));
    let twiml = call.wait_in_queue(4).await;
    assert!(
        call.last().contains("the line has now closed"),
        "{}",
        call.last()
    );
    assert!(twiml.contains("<Leave/>"), "{twiml}");
    call.queue_result("leave", 90).await;
    assert!(
        call.last().contains("only to return your call"),
        "straight into a call-back request: {}",
        call.last()
    );
}

#[tokio::test]
async fn every_way_out_of_the_queue_is_handled() {
    let app = spawn_app(TUESDAY_10AM).await;
    for (result, expect_words, ends) in [
        ("hangup", None, true),
        (
            "queue-full",
            Some("can't put you through to an adviser just now"),
            false,
        ),
        (
            "error",
            Some("can't put you through to an adviser just now"),
            false,
        ),
        (
            "system-error",
            Some("can't put you through to an adviser just now"),
            false,
        ),
        ("bridged", Some("Thank you for calling. Goodbye."), true),
    ] {
        let mut call = app.call_from("+447700900123").await;
        call.press("0").await;
        call.queue_result(result, 10).await;
        if let Some(words) = expect_words {
            assert!(call.last().contains(words), "{result}: {}", call.last());
        }
        assert_eq!(call.ended(), ends, "{result}");
        let rec = app.store.call(&call.sid).await.unwrap().unwrap();
        assert_eq!(rec.queue_result.as_deref(), Some(result));
        assert_eq!(rec.hung_up_in_queue, result == "hangup", "{result}");
    }
}

#[tokio::test]
async fn status_callback_before_the_queue_result_still_counts_an_answered_call() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("0").await;
    // After an adviser call the status callback can arrive before the Enqueue action.
    let action = match call.state.clone() {
        State::Queued { action, .. } => action,
        other => panic!("{other:?}"),
    };
    call.hang_up(400).await;
    call.state = State::Queued {
        wait_url: String::new(),
        action,
    };
    call.queue_result("bridged", 35).await;
    let rec = app.store.call(&call.sid).await.unwrap().unwrap();
    assert!(!rec.hung_up_in_queue, "answered, not abandoned");
}

#[tokio::test]
async fn calls_from_test_numbers_are_served_normally_but_never_counted() {
    let app = spawn_app_with(
        TUESDAY_10AM,
        &[("HELPLINE_TEST_NUMBERS", "+447700900999, 0151 706 0000")],
    )
    .await;
    // A test phone asks for a call back, as a caller would.
    let mut test = app.call_from("+447700900999").await;
    assert!(test
        .last()
        .contains("For the latest update on the incident, press 1"));
    for key in ["2", "1", "3", "1"] {
        test.press(key).await;
    }
    test.silence().await; // no message
    assert!(test.ended());
    assert!(
        test.last().contains("Your reference number is"),
        "{}",
        test.last()
    );
    let enquiries = app.store.list_enquiries().await.unwrap();
    assert_eq!(enquiries.len(), 1, "handlers still get the request");
    assert_eq!(enquiries[0].call_sid, test.sid);
    // An ordinary caller, and the other test phone (written nationally in the setting).
    let ordinary = app.call_from("+447700900123").await;
    let landline = app.call_from("+441517060000").await;

    for sid in [&test.sid, &landline.sid, &ordinary.sid] {
        let call = app.store.call(sid).await.unwrap().expect("call stored");
        assert!(!call.simulated, "a real call, not a simulation");
    }
    // The day's statistics count only the ordinary caller, and not the test phone's request.
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let hours = helpline::hours::OpeningHours::new(
        helpline::hours::WeeklySchedule::default(),
        std::sync::Arc::new(helpline::hours::BankHolidays::embedded().unwrap()),
    );
    let stats = helpline::stats::compute(
        app.store.as_ref(),
        &helpline::flows::load_dir(std::path::Path::new("call_flows")).unwrap(),
        &hours,
        &helpline::stats::Period::new(day, day, None).unwrap(),
        helpline::stats::Thresholds::default(),
        support::at("2026-11-24T12:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(stats.calls.total, 1, "only the ordinary caller is counted");
    assert_eq!(
        stats.enquiries.total, 0,
        "the test phone's request is not counted"
    );

    // Nor in the metrics: only the ordinary call started.
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"helpline_calls_total{outcome="started"} 1"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"helpline_calls_total{outcome="callback-requested"} 1"#),
        "the test phone's request is not counted: {metrics}"
    );

    // Each step keeps the route it took through the flow, on past the stored enquiry.
    let steps = app.store.steps(&test.sid).await.unwrap();
    let routes: Vec<(&str, &str, String)> = steps
        .iter()
        .map(|s| (s.node.as_str(), s.outcome.as_str(), s.path.join(" ")))
        .collect();
    assert_eq!(
        routes,
        vec![
            (
                "welcome",
                "start-open",
                "welcome greeting_open main_menu".into()
            ),
            (
                "main_menu",
                "option-2",
                "callback_start callback_number confirm_number".into()
            ),
            ("confirm_number", "option-1", "choose_trust".into()),
            ("choose_trust", "option-3", "choose_category".into()),
            ("choose_category", "option-1", "record_message".into()),
            (
                "record_message",
                "no-message",
                "save_enquiry callback_confirmed".into()
            ),
        ]
    );
}

#[tokio::test]
async fn queue_steps_keep_their_routes() {
    let app = spawn_app(TUESDAY_10AM).await;
    let mut call = app.call_from("+447700900123").await;
    call.press("0").await;
    call.queue_result("leave", 40).await;
    assert!(call.last().contains("ending 0 1 2 3"), "{}", call.last());
    let mut gone = app.call_from("+447700900124").await;
    gone.press("0").await;
    gone.queue_result("hangup", 40).await;

    let routes = |steps: Vec<helpline::store::StepRecord>| -> Vec<(String, String)> {
        steps
            .into_iter()
            .map(|s| (s.outcome, s.path.join(" ")))
            .collect()
    };
    assert_eq!(
        routes(app.store.steps(&call.sid).await.unwrap()),
        vec![
            (
                "start-open".into(),
                "welcome greeting_open main_menu".into()
            ),
            ("option-0".into(), "adviser adviser_queue".into()),
            (
                "left-queue".into(),
                "callback_start callback_number confirm_number".into()
            ),
        ]
    );
    let gone_steps = routes(app.store.steps(&gone.sid).await.unwrap());
    assert_eq!(
        gone_steps.last(),
        Some(&("hung-up-in-queue".to_string(), String::new())),
        "a hang-up in the queue passes through no node"
    );
}

/// A robocaller (or a caller ringing again and again) cannot fill the call-back list: a
/// number with the most open enquiries allowed gets no new one; the request joins the
/// oldest open enquiry, whose reference the caller hears, counted once however often
/// Twilio retries the webhook.
#[tokio::test]
async fn one_number_cannot_fill_the_call_back_list() {
    let app = spawn_app_with(TUESDAY_10AM, &[("HELPLINE_MAX_OPEN_PER_NUMBER", "2")]).await;
    let mut heard = Vec::new();
    for _ in 0..4 {
        app.clock.advance(chrono::Duration::minutes(1));
        let mut call = app.call_from("+447700900555").await;
        for key in ["2", "1", "3", "1"] {
            call.press(key).await;
        }
        call.silence().await;
        assert!(call.ended(), "{}", call.last());
        // Twilio retries the last webhook: the same reference again.
        let said = call.last();
        let start = said.find("Your reference number is").expect("a reference");
        let reference = said[start..].split('.').next().unwrap().to_string();
        let again = call.retry_last().await.replace("&apos;", "'");
        assert!(again.contains(&reference), "{again}");
        heard.push(said);
    }
    let enquiries = app.store.list_enquiries().await.unwrap();
    assert_eq!(enquiries.len(), 2, "two open enquiries at most");
    let said = |e: &helpline::enquiries::Enquiry| {
        format!("Your reference number is {}", e.reference.spoken())
    };
    assert!(heard[0].contains(&said(&enquiries[0])), "{}", heard[0]);
    assert!(heard[1].contains(&said(&enquiries[1])), "{}", heard[1]);
    for later in &heard[2..] {
        assert!(later.contains(&said(&enquiries[0])), "the oldest: {later}");
    }
    assert_eq!(
        app.store.open_enquiry_count("+447700900555").await.unwrap(),
        2
    );
    // Another number is not held back.
    let mut other = app.call_from("+447700900556").await;
    for key in ["2", "1", "3", "1"] {
        other.press(key).await;
    }
    other.silence().await;
    assert_eq!(app.store.list_enquiries().await.unwrap().len(), 3);
}
