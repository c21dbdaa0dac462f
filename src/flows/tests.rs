//! Tests of the shipped flow and of the checks that keep a broken flow from loading.

use super::engine::*;
use super::load::{builtin, load_files};
use crate::enquiries::{Category, Recording, Trust};
use crate::phone::UkNumber;

fn ctx(open: bool, caller: Option<&str>) -> Context {
    let mut c = Context {
        open,
        caller: caller.and_then(UkNumber::parse),
        ..Default::default()
    };
    c.vars
        .insert("next_open", "on Monday the 30th of November at 9am".into());
    c.vars.insert(
        "opening_hours",
        "Monday to Friday, 9am to 4pm, except bank holidays".into(),
    );
    c.vars
        .insert("closed_reason", "The line is closed at weekends.".into());
    c.vars.insert("callback_working_days", "2".into());
    if let Some(n) = &c.caller {
        c.vars.insert("caller_last_digits", n.spoken_last_digits(4));
    }
    c
}

fn said(turn: &Turn) -> String {
    turn.says.join(" ")
}

fn node_of(turn: &Turn) -> (String, u32) {
    match &turn.wait {
        Wait::Menu { node, attempt, .. } | Wait::Number { node, attempt } => {
            (node.clone(), *attempt)
        }
        other => panic!("not waiting for an answer: {other:?}"),
    }
}

fn keys(k: &str) -> Input {
    Input::Keys(k.into())
}

#[test]
fn shipped_flow_is_valid() {
    let flow = builtin().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(flow.settings.start, "welcome");
    assert_eq!(
        flow.phone_numbers["action_fraud"],
        "0 3 0 0, 1 2 3, 2 0 4 0"
    );
}

#[test]
fn greeting_names_the_line_and_differs_only_by_hours() {
    let flow = builtin().unwrap();
    let open = start(&flow, &ctx(true, None), &Answers::default());
    let closed = start(&flow, &ctx(false, None), &Answers::default());
    for t in [&open, &closed] {
        let s = said(t);
        assert!(s.contains("Alder Hey Children's Hospital"), "{s}");
        assert!(s.contains("Liverpool Heart and Chest Hospital"));
        assert!(s.contains("Royal Liverpool University Hospital"));
        assert_eq!(node_of(t), ("main_menu".into(), 0));
    }
    assert!(!said(&open).contains("closed"));
    assert!(said(&closed).contains("The line is closed at weekends. It is usually open"));
    assert!(said(&closed).contains("we open again on Monday the 30th of November at 9am"));
}

#[test]
fn fraud_guidance_at_any_hour_reads_the_number_digit_by_digit() {
    let flow = builtin().unwrap();
    for open in [true, false] {
        let t = respond(
            &flow,
            "main_menu",
            0,
            &keys("3"),
            &ctx(open, None),
            &Answers::default(),
        );
        let s = said(&t);
        assert!(s.contains("Action Fraud"), "{s}");
        assert!(s.contains("0 3 0 0, 1 2 3, 2 0 4 0"), "{s}");
        assert!(s.contains("never contact you out of the blue"));
        assert_eq!(t.outcome, "option-3");
        assert_eq!(node_of(&t).0, "fraud_menu");
    }
}

#[test]
fn speech_reaches_the_same_options() {
    let flow = builtin().unwrap();
    let c = ctx(true, None);
    let t = respond(
        &flow,
        "main_menu",
        0,
        &Input::Speech("Someone phoned me saying they had my records".into()),
        &c,
        &Answers::default(),
    );
    assert_eq!(t.outcome, "option-3");
    let t = respond(
        &flow,
        "main_menu",
        0,
        &Input::Speech("is my appointment still on".into()),
        &c,
        &Answers::default(),
    );
    assert_eq!(t.outcome, "option-4");
    let t = respond(
        &flow,
        "fraud_menu",
        0,
        &Input::Speech("call me back please".into()),
        &c,
        &Answers::default(),
    );
    assert_eq!(t.outcome, "option-2");
}

#[test]
fn adviser_queues_in_hours_and_explains_when_closed() {
    let flow = builtin().unwrap();
    let t = respond(
        &flow,
        "main_menu",
        0,
        &keys("0"),
        &ctx(true, None),
        &Answers::default(),
    );
    assert_eq!(
        t.wait,
        Wait::Queue {
            node: "adviser_queue".into(),
            queue: "helpline".into()
        }
    );
    let t = respond(
        &flow,
        "main_menu",
        0,
        &keys("0"),
        &ctx(false, None),
        &Answers::default(),
    );
    assert!(
        said(&t).contains("we open again on Monday the 30th of November at 9am"),
        "{}",
        said(&t)
    );
    assert_eq!(node_of(&t), ("main_menu".into(), 0));
}

#[test]
fn three_failures_give_the_essentials_and_end_politely() {
    let flow = builtin().unwrap();
    let c = ctx(true, None);
    let a = Answers::default();
    let t1 = respond(&flow, "main_menu", 0, &Input::Silence, &c, &a);
    assert_eq!(
        (t1.outcome.as_str(), node_of(&t1)),
        ("no-input", ("main_menu".into(), 1))
    );
    assert!(
        said(&t1).contains("Press 1 for the latest update"),
        "re-prompt lists the choices"
    );
    let t2 = respond(&flow, "main_menu", 1, &keys("9"), &c, &a);
    assert_eq!(
        (t2.outcome.as_str(), node_of(&t2)),
        ("invalid", ("main_menu".into(), 2))
    );
    let t3 = respond(
        &flow,
        "main_menu",
        2,
        &Input::Speech("bananas".into()),
        &c,
        &a,
    );
    assert_eq!(t3.outcome, "gave-up");
    assert_eq!(t3.wait, Wait::Hangup);
    let s = said(&t3);
    assert!(
        s.contains("0 3 0 0, 1 2 3, 2 0 4 0") && s.contains("Monday to Friday"),
        "{s}"
    );
}

#[test]
fn star_repeats_without_counting_a_failure() {
    let flow = builtin().unwrap();
    let t = respond(
        &flow,
        "main_menu",
        1,
        &keys("*"),
        &ctx(true, None),
        &Answers::default(),
    );
    assert_eq!(
        (t.outcome.as_str(), node_of(&t)),
        ("repeat", ("main_menu".into(), 1))
    );
}

#[test]
fn callback_request_asks_four_questions_then_saves() {
    let flow = builtin().unwrap();
    let c = ctx(false, Some("+447700900123"));
    let mut answers = Answers::default();
    let mut t = respond(&flow, "main_menu", 0, &keys("2"), &c, &answers);
    assert!(said(&t).contains("only to return your call"));
    assert!(said(&t).contains("ending 0 1 2 3"), "{}", said(&t));
    for (key, node) in [
        ("1", "confirm_number"),
        ("1", "choose_trust"),
        ("2", "choose_category"),
    ] {
        assert_eq!(node_of(&t).0, node);
        t = respond(&flow, node, 0, &keys(key), &c, &answers);
        for a in &t.answers {
            answers.apply(a);
        }
    }
    assert!(matches!(
        t.wait,
        Wait::Record {
            max_seconds: 120,
            ..
        }
    ));
    let rec = Recording {
        url: "https://api.twilio.com/rec/RE1".into(),
        duration_seconds: 7,
    };
    t = respond(
        &flow,
        "record_message",
        0,
        &Input::Recording(rec.clone()),
        &c,
        &answers,
    );
    for a in &t.answers {
        answers.apply(a);
    }
    assert_eq!(
        t.wait,
        Wait::SaveEnquiry {
            then: "callback_confirmed".into()
        }
    );
    assert_eq!(answers.callback_number, UkNumber::parse("07700900123"));
    assert_eq!(answers.trust, Some(Trust::AlderHey));
    assert_eq!(answers.category, Some(Category::ContactedByClaimant));
    assert_eq!(answers.message, Some(rec));

    let mut after = c.clone();
    after.vars.insert("reference", "4 8 2, 9 1 5".into());
    after
        .vars
        .insert("callback_by", "Tuesday the 1st of December".into());
    let done = resume(&flow, "callback_confirmed", &after, &answers);
    assert!(
        said(&done).contains("Your reference number is 4 8 2, 9 1 5"),
        "{}",
        said(&done)
    );
    assert!(said(&done).contains("by the end of Tuesday the 1st of December"));
    assert_eq!(done.wait, Wait::Hangup);
}

#[test]
fn a_different_number_is_validated_and_reprompted() {
    let flow = builtin().unwrap();
    let c = ctx(true, None);
    let t = respond(&flow, "main_menu", 0, &keys("2"), &c, &Answers::default());
    assert_eq!(
        node_of(&t).0,
        "enter_number",
        "withheld caller goes straight to keying a number"
    );
    let bad = respond(
        &flow,
        "enter_number",
        0,
        &keys("0800123456#"),
        &c,
        &Answers::default(),
    );
    assert_eq!(bad.outcome, "invalid");
    assert!(said(&bad).contains("should start with 0 1, 0 2, 0 3 or 0 7"));
    let good = respond(
        &flow,
        "enter_number",
        1,
        &keys("07700900456#"),
        &c,
        &Answers::default(),
    );
    assert_eq!(
        good.answers,
        vec![Answer::CallbackNumber(
            UkNumber::parse("07700900456").unwrap()
        )]
    );
    let spoken = respond(
        &flow,
        "enter_number",
        0,
        &Input::Speech("oh seven seven double oh nine oh oh four five six".into()),
        &c,
        &Answers::default(),
    );
    assert_eq!(spoken.outcome, "number-given");
}

#[test]
fn no_message_is_fine() {
    let flow = builtin().unwrap();
    let answers = Answers {
        callback_number: UkNumber::parse("07700900123"),
        trust: Some(Trust::NotSure),
        category: Some(Category::Other),
        message: None,
    };
    let t = respond(
        &flow,
        "record_message",
        0,
        &Input::Silence,
        &ctx(true, None),
        &answers,
    );
    assert_eq!(t.outcome, "no-message");
    assert!(matches!(t.wait, Wait::SaveEnquiry { .. }));
}

#[test]
fn unknown_node_restarts_instead_of_failing() {
    let flow = builtin().unwrap();
    let t = respond(
        &flow,
        "no_such_node",
        0,
        &keys("1"),
        &ctx(true, None),
        &Answers::default(),
    );
    assert_eq!(node_of(&t), ("main_menu".into(), 0));
}

// ---- validation ----------------------------------------------------------------

const MINIMAL: &str = r#"
[flow]
start = "menu"
give_up = "bye"
no_input = "Sorry?"
invalid = "Pardon?"
apology = "Sorry, goodbye."
[nodes.menu]
type = "menu"
text = "Press 1."
[[nodes.menu.options]]
key = "1"
goto = "bye"
[nodes.bye]
type = "hangup"
text = "Bye."
"#;

fn problems(text: &str) -> Vec<String> {
    match load_files(&[("test.toml".into(), text.into())], "test") {
        Ok(_) => vec![],
        Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn minimal_flow_loads() {
    assert_eq!(problems(MINIMAL), Vec::<String>::new());
}

#[test]
fn missing_target_names_file_node_and_fix() {
    let p = problems(&MINIMAL.replace("goto = \"bye\"", "goto = \"nowhere\""));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "test.toml, node `menu`: `options[0].goto` goes to `nowhere`, which does not exist"
        ),
        "{}",
        p[0]
    );
    assert!(p[0].contains("fix: add a [nodes.nowhere] table"));
}

#[test]
fn unreachable_node_is_reported() {
    let p = problems(&format!(
        "{MINIMAL}\n[nodes.orphan]\ntype = \"hangup\"\ntext = \"x\"\n"
    ));
    assert!(
        p.iter()
            .any(|p| p.contains("node `orphan`: is never reached")),
        "{p:?}"
    );
}

#[test]
fn empty_prompt_is_reported() {
    let p = problems(&MINIMAL.replace("text = \"Press 1.\"", "text = \"  \""));
    assert!(
        p.iter().any(|p| p.contains("node `menu`: `text` is empty")),
        "{p:?}"
    );
}

#[test]
fn missing_no_input_path_is_reported() {
    let p = problems(&MINIMAL.replace("no_input = \"Sorry?\"\n", ""));
    assert!(
        p.iter().any(|p| p.contains("missing field `no_input`")),
        "{p:?}"
    );
}

#[test]
fn toml_errors_say_where() {
    let p = problems(&MINIMAL.replace("type = \"menu\"", "type = \"menuu\""));
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("line"), "{}", p[0]);
    assert!(p[0].contains("menuu"), "{}", p[0]);
    let p = problems(&MINIMAL.replace("text = \"Bye.\"", "text = \"Bye.\"\ncolour = \"red\""));
    assert!(p[0].contains("colour"), "{}", p[0]);
}

#[test]
fn unknown_placeholder_is_reported() {
    let p = problems(&MINIMAL.replace("Press 1.", "Call {frauds}."));
    assert!(
        p.iter().any(|p| p.contains("unknown placeholder {frauds}")),
        "{p:?}"
    );
}

#[test]
fn loop_that_never_waits_is_reported() {
    let text = MINIMAL.replace("goto = \"bye\"", "goto = \"a\"")
        + "[nodes.a]\ntype = \"say\"\ntext = \"a\"\nnext = \"b\"\n[nodes.b]\ntype = \"say\"\ntext = \"b\"\nnext = \"a\"\n";
    let p = problems(&text);
    assert!(
        p.iter().any(|p| p.contains("loop that never waits")),
        "{p:?}"
    );
}

#[test]
fn enquiry_without_a_number_is_reported() {
    let text = MINIMAL.replace("goto = \"bye\"", "goto = \"save\"\nset = { trust = \"alder-hey\", category = \"other\" }")
        + "[nodes.save]\ntype = \"enquiry\"\nnext = \"done\"\n[nodes.done]\ntype = \"hangup\"\ntext = \"Ref {reference}\"\n";
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("node `save`: can be reached without asking the callback number"),
        "{}",
        p[0]
    );
}

#[test]
fn reference_before_enquiry_is_reported() {
    let p = problems(&MINIMAL.replace(
        "text = \"Bye.\"",
        "text = \"Your reference is {reference}.\"",
    ));
    assert!(
        p.iter().any(|p| p.contains("node `bye`: says {reference}")),
        "{p:?}"
    );
}

#[test]
fn reserved_and_duplicate_keys_are_reported() {
    let text = MINIMAL.replace("key = \"1\"", "key = \"*\"");
    assert!(problems(&text)
        .iter()
        .any(|p| p.contains("`*`, which always repeats")));
    let text = MINIMAL.replace(
        "[nodes.bye]",
        "[[nodes.menu.options]]\nkey = \"1\"\ngoto = \"bye\"\n[nodes.bye]",
    );
    assert!(problems(&text)
        .iter()
        .any(|p| p.contains("key 1 is used by two options")));
}

#[test]
fn bad_answer_values_are_reported() {
    let text = MINIMAL.replace(
        "goto = \"bye\"",
        "goto = \"bye\"\nset = { trust = \"alderhey\" }",
    );
    let p = problems(&text);
    assert!(
        p.iter().any(|p| p.contains("`alderhey` is not a valid")),
        "{p:?}"
    );
}

// ---- properties ----------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_input() -> impl Strategy<Value = Input> {
        prop_oneof![
            Just(Input::Silence),
            "[0-9*#]{1,3}".prop_map(Input::Keys),
            "07[0-9]{9}#".prop_map(Input::Keys),
            "[a-z ]{0,30}".prop_map(Input::Speech),
            prop_oneof![
                Just("someone phoned me"),
                Just("call me back"),
                Just("alder hey"),
                Just("yes")
            ]
            .prop_map(|s| Input::Speech(s.to_string())),
            (0u32..200).prop_map(|d| Input::Recording(Recording {
                url: "https://r".into(),
                duration_seconds: d
            })),
        ]
    }

    proptest! {
        /// Whatever a caller does, they hear something, the engine never panics, and the
        /// call either waits for them at a real node or ends; a stored enquiry always has
        /// everything it needs.
        #[test]
        fn every_turn_speaks_and_leads_somewhere(open: bool, withheld: bool, inputs in proptest::collection::vec(any_input(), 1..40)) {
            let flow = builtin().unwrap();
            let c = ctx(open, if withheld { None } else { Some("+447700900123") });
            let mut answers = Answers::default();
            let mut turn = start(&flow, &c, &answers);
            for input in inputs {
                prop_assert!(!turn.says.is_empty() || matches!(turn.wait, Wait::SaveEnquiry { .. }), "silence after {:?}", turn);
                for a in &turn.answers { answers.apply(a); }
                turn = match &turn.wait {
                    Wait::Menu { node, attempt, .. } | Wait::Number { node, attempt } => {
                        prop_assert!(flow.node(node).is_some());
                        prop_assert!(*attempt < flow.settings.max_attempts);
                        respond(&flow, node, *attempt, &input, &c, &answers)
                    }
                    Wait::Record { node, .. } => respond(&flow, node, 0, &input, &c, &answers),
                    Wait::Queue { node, .. } => queue_exit(&flow, node, QueueExit::Left, &c, &answers),
                    Wait::SaveEnquiry { then } => {
                        prop_assert!(answers.callback_number.is_some() && answers.trust.is_some() && answers.category.is_some());
                        let mut after = c.clone();
                        after.vars.insert("reference", "1 2 3, 4 5 6".into());
                        after.vars.insert("callback_by", "Monday".into());
                        resume(&flow, then, &after, &answers)
                    }
                    Wait::Hangup => break,
                };
                for s in &turn.says {
                    prop_assert!(!s.trim().is_empty());
                    prop_assert!(!s.contains('{'), "unfilled placeholder in {s}");
                }
                if let Err(e) = path_leads_where_it_waits(&flow, &turn, &c) {
                    prop_assert!(false, "{}", e);
                }
            }
        }
    }
}

/// A turn's path follows branches of the flow, one after another, and ends where the turn
/// waits (or at the hangup node that ends the call; after an enquiry, where the call goes on).
fn path_leads_where_it_waits(flow: &super::Flow, turn: &Turn, c: &Context) -> Result<(), String> {
    for pair in turn.path.windows(2) {
        let from = flow
            .node(&pair[0])
            .ok_or_else(|| format!("{} is not a node: {turn:?}", pair[0]))?;
        if !from.kind.targets().iter().any(|(_, t)| **t == pair[1]) {
            return Err(format!(
                "{} does not lead to {}: {turn:?}",
                pair[0], pair[1]
            ));
        }
    }
    let last = turn.path.last().map(String::as_str);
    let expected = match &turn.wait {
        Wait::Menu { node, .. }
        | Wait::Number { node, .. }
        | Wait::Record { node, .. }
        | Wait::Queue { node, .. } => Some(node.as_str()),
        Wait::SaveEnquiry { then } => {
            let on = route(flow, then, c);
            if on.is_empty() || !turn.path.ends_with(&on) {
                return Err(format!("the path does not go on from {then}: {turn:?}"));
            }
            // The enquiry node itself is just before.
            let before = turn.path.len() - on.len();
            match before.checked_sub(1).and_then(|i| flow.node(&turn.path[i])) {
                Some(n) if matches!(n.kind, super::NodeKind::Enquiry { .. }) => {}
                _ => return Err(format!("no enquiry node before {then}: {turn:?}")),
            }
            last
        }
        Wait::Hangup => match last {
            None => None,
            Some(id) => match flow.node(id).map(|n| &n.kind) {
                Some(super::NodeKind::Hangup { .. }) => Some(id),
                _ => {
                    return Err(format!(
                        "the call ends at {id}, not a hangup node: {turn:?}"
                    ))
                }
            },
        },
    };
    if last != expected {
        return Err(format!(
            "the path ends at {last:?}, not {expected:?}: {turn:?}"
        ));
    }
    Ok(())
}

fn path(turn: &Turn) -> Vec<&str> {
    turn.path.iter().map(String::as_str).collect()
}

#[test]
fn each_turn_records_the_nodes_it_passed_through() {
    let flow = builtin().unwrap();
    let none = Answers::default();
    let (open, closed) = (ctx(true, None), ctx(false, None));
    let known = ctx(true, Some("+447700900123"));

    let t = start(&flow, &open, &none);
    assert_eq!(path(&t), ["welcome", "greeting_open", "main_menu"]);
    let t = start(&flow, &closed, &none);
    assert_eq!(path(&t), ["welcome", "greeting_closed", "main_menu"]);

    let choose = |key: &str, c: &Context| respond(&flow, "main_menu", 0, &keys(key), c, &none);
    assert_eq!(path(&choose("1", &open)), ["latest_update", "main_menu"]);
    assert_eq!(path(&choose("3", &closed)), ["fraud_advice", "fraud_menu"]);
    assert_eq!(path(&choose("4", &open)), ["appointments", "main_menu"]);
    assert_eq!(path(&choose("0", &open)), ["adviser", "adviser_queue"]);
    assert_eq!(
        path(&choose("0", &closed)),
        ["adviser", "adviser_closed", "main_menu"]
    );
    assert_eq!(
        path(&choose("2", &known)),
        ["callback_start", "callback_number", "confirm_number"]
    );
    assert_eq!(
        path(&choose("2", &open)),
        ["callback_start", "callback_number", "enter_number"]
    );
    let t = respond(
        &flow,
        "main_menu",
        0,
        &Input::Speech("someone phoned me saying they had my records".into()),
        &open,
        &none,
    );
    assert_eq!(path(&t), ["fraud_advice", "fraud_menu"]);

    // Re-asks are the question itself; giving up is the way to the goodbye.
    let t = respond(&flow, "main_menu", 0, &keys("*"), &open, &none);
    assert_eq!(
        (t.outcome.as_str(), path(&t)),
        ("repeat", vec!["main_menu"])
    );
    let t = respond(&flow, "main_menu", 0, &Input::Silence, &open, &none);
    assert_eq!(
        (t.outcome.as_str(), path(&t)),
        ("no-input", vec!["main_menu"])
    );
    let t = respond(&flow, "main_menu", 1, &keys("9"), &open, &none);
    assert_eq!(
        (t.outcome.as_str(), path(&t)),
        ("invalid", vec!["main_menu"])
    );
    let t = respond(&flow, "main_menu", 2, &keys("9"), &open, &none);
    assert_eq!(
        (t.outcome.as_str(), path(&t)),
        ("gave-up", vec!["goodbye_after_failures"])
    );
    let t = respond(&flow, "enter_number", 0, &keys("*"), &open, &none);
    assert_eq!(
        (t.outcome.as_str(), path(&t)),
        ("repeat", vec!["enter_number"])
    );
    let t = respond(&flow, "enter_number", 0, &keys("12#"), &open, &none);
    assert_eq!(
        (t.outcome.as_str(), path(&t)),
        ("invalid", vec!["enter_number"])
    );
    let t = respond(
        &flow,
        "enter_number",
        0,
        &keys("07700900456#"),
        &open,
        &none,
    );
    assert_eq!(
        (t.outcome.as_str(), path(&t)),
        ("number-given", vec!["confirm_entered_number"])
    );

    // The request: up to the record node, then past the enquiry to the goodbye that
    // follows once it is stored.
    let t = respond(&flow, "confirm_number", 0, &keys("1"), &known, &none);
    assert_eq!(path(&t), ["choose_trust"]);
    let answers = Answers {
        callback_number: UkNumber::parse("07700900123"),
        trust: Some(Trust::RoyalLiverpool),
        category: Some(Category::Other),
        message: None,
    };
    let t = respond(
        &flow,
        "record_message",
        0,
        &Input::Silence,
        &known,
        &answers,
    );
    assert_eq!(
        t.wait,
        Wait::SaveEnquiry {
            then: "callback_confirmed".into()
        }
    );
    assert_eq!(
        (t.outcome.as_str(), path(&t)),
        ("no-message", vec!["save_enquiry", "callback_confirmed"])
    );
    let t = resume(&flow, "callback_confirmed", &known, &answers);
    assert_eq!(path(&t), ["callback_confirmed"]);

    // The queue: leaving or a failure go on; a hang-up or an adviser's goodbye go nowhere.
    let exit = |how, c: &Context| queue_exit(&flow, "adviser_queue", how, c, &none);
    assert_eq!(
        path(&exit(QueueExit::Left, &known)),
        ["callback_start", "callback_number", "confirm_number"]
    );
    assert_eq!(
        path(&exit(QueueExit::Failed, &open)),
        [
            "queue_unavailable",
            "callback_start",
            "callback_number",
            "enter_number"
        ]
    );
    assert!(exit(QueueExit::HungUp, &open).path.is_empty());
    assert!(exit(QueueExit::Bridged, &open).path.is_empty());
    assert!(apology(&flow, &open).path.is_empty());

    // A stale URL starts again, from the start node.
    let t = respond(&flow, "no_such_node", 0, &keys("1"), &open, &none);
    assert_eq!(path(&t), ["welcome", "greeting_open", "main_menu"]);
}

#[test]
fn routes_run_to_where_the_caller_is_asked_next() {
    let flow = builtin().unwrap();
    let open = ctx(true, None);
    let route_of = |from: &str, c: &Context| route(&flow, from, c);
    assert_eq!(
        route_of("welcome", &ctx(false, Some("+447700900123"))),
        ["welcome", "greeting_closed", "main_menu"]
    );
    // Through an enquiry without storing anything: a route is only where the call goes.
    assert_eq!(
        route_of("save_enquiry", &open),
        ["save_enquiry", "callback_confirmed"]
    );
    assert_eq!(route_of("main_menu", &open), ["main_menu"]);
    assert_eq!(
        route_of("goodbye_after_failures", &open),
        ["goodbye_after_failures"]
    );
    assert!(route_of("no_such_node", &open).is_empty());
}

#[test]
fn a_route_that_never_waits_stops_after_the_hop_limit() {
    // Only a flow built around the checks can loop; the route is still bounded.
    let mut flow = builtin().unwrap();
    if let Some(node) = flow.nodes.get_mut("latest_update") {
        if let super::NodeKind::Say { next, .. } = &mut node.kind {
            *next = "latest_update".into();
        }
    }
    let r = route(&flow, "latest_update", &ctx(true, None));
    assert_eq!(r.len(), 64);
    assert!(r.iter().all(|id| id == "latest_update"));
    let t = respond(
        &flow,
        "main_menu",
        0,
        &keys("1"),
        &ctx(true, None),
        &Answers::default(),
    );
    assert_eq!(t.outcome, "apology");
    assert!(t.path.is_empty(), "the apology passes through no node");
}

#[test]
fn using_the_callers_number_needs_the_caller_known_branch() {
    let text = MINIMAL.replace(
        "goto = \"bye\"",
        "goto = \"save\"\nset = { callback_number = \"caller\", trust = \"alder-hey\", category = \"other\" }",
    ) + "[nodes.save]\ntype = \"enquiry\"\nnext = \"done\"\n[nodes.done]\ntype = \"hangup\"\ntext = \"Ref {reference}\"\n";
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|p| p.contains("node `menu`: an option sets callback_number = \"caller\"")),
        "{p:?}"
    );
}

#[test]
fn the_callers_last_digits_need_the_caller_known_branch() {
    // Found by fuzzing (fuzz/fuzz_targets/call_flow.rs): for a withheld number the
    // placeholder is empty, so this menu asked nothing at all.
    let p = problems(&MINIMAL.replace("text = \"Press 1.\"", "text = \"{caller_last_digits}\""));
    assert!(
        p.iter().any(|p| p.contains(
            "node `menu`: says {caller_last_digits} but can be reached when the caller's number is withheld"
        )),
        "{p:?}"
    );
    let known = MINIMAL.replace("start = \"menu\"", "start = \"known\"")
        + "[nodes.known]\ntype = \"branch\"\nwhen = \"caller_number_known\"\nthen = \"ending\"\nelse = \"menu\"\n\
           [nodes.ending]\ntype = \"say\"\ntext = \"Your number ends {caller_last_digits}.\"\nnext = \"menu\"\n";
    assert_eq!(problems(&known), Vec::<String>::new());
}

#[test]
fn the_number_is_only_read_back_once_given() {
    let p = problems(&MINIMAL.replace(
        "text = \"Bye.\"",
        "text = \"We'll call {callback_number}.\"",
    ));
    assert!(
        p.iter()
            .any(|p| p.contains("node `bye`: says {callback_number}")),
        "{p:?}"
    );
}
