//! The call-flow loader (`load_files` in `src/flows/load.rs`, what `helpline` runs on the
//! `call_flows/*.toml` it is given) on any text.
//!
//! The text is split into files at each line `# --- next file ---`, so one input can be a
//! flow spread over several files (as a `call_flows/` directory can be). An input whose
//! first byte is 0xFF (never the start of UTF-8 text) is instead read as choices for
//! writing a flow file ([`generated`]): menus, branches, questions, enquiries and queues
//! linked at random with prompts from a palette of placeholders, which loads far more often
//! than mutated TOML and so puts the validator's promise, below, to the test.
//!
//! Beyond "never panics":
//! - a refused flow names at least one problem, each with its file and a message;
//! - loading is deterministic;
//! - a flow that loads keeps the validator's promise when the engine plays it: starting at
//!   open and closed hours, from a known and a withheld number, and answering every question
//!   with silence, `*`, a wrong key, each option's key and phrase, a good and a bad number,
//!   a recording or none, and leaving the queue every way, every turn says something (no
//!   empty prompt, no unfilled placeholder), is not the apology for a broken flow, walks
//!   along the flow's own links to where it waits, and stores an enquiry only when the
//!   callback number, hospital and subject are all known;
//! - the flow's diagram (dot) can be drawn.
#![no_main]

use std::collections::{HashSet, VecDeque};
use std::fmt::Write;
use std::sync::OnceLock;

use arbitrary::Unstructured;

use helpline::enquiries::Recording;
use helpline::flows::diagram;
use helpline::flows::engine::{queue_exit, queue_waiting, respond, resume, route, start};
use helpline::flows::load::load_files;
use helpline::flows::{Answers, Context, Flow, Input, NodeKind, QueueExit, QueueWait, Turn, Wait};
use helpline::phone::UkNumber;
use libfuzzer_sys::fuzz_target;

/// Separates files in one fuzz input.
const NEXT_FILE: &str = "\n# --- next file ---\n";

/// Turns played per way of starting a call: plenty for any flow a person writes, and a
/// bound on the time one input can take.
const MAX_TURNS: usize = 400;

fuzz_target!(|data: &[u8]| {
    let text = match data.split_first() {
        Some((0xFF, choices)) => match generated(&mut Unstructured::new(choices)) {
            Ok(text) => text,
            Err(_) => return,
        },
        // `load_dir` reads files with `read_to_string`: text that is not UTF-8 never gets here.
        _ => match std::str::from_utf8(data) {
            Ok(text) => text.to_string(),
            Err(_) => return,
        },
    };
    if show() {
        eprintln!("{text}");
    }
    let files: Vec<(String, String)> = text
        .split(NEXT_FILE)
        .enumerate()
        .map(|(i, part)| (format!("call_flows/part{i}.toml"), part.to_string()))
        .collect();
    let loaded = load_files(&files, "call_flows");
    match &loaded {
        Ok(flow) => {
            let again = load_files(&files, "call_flows").expect("loads the second time");
            assert_eq!(
                format!("{flow:?}"),
                format!("{again:?}"),
                "not deterministic"
            );
            assert!(!diagram::dot(flow, None).is_empty());
            for open in [true, false] {
                for caller in [Some("+447700900123"), None] {
                    play(flow, &context(open, caller));
                }
            }
        }
        Err(e) => {
            assert!(!e.problems.is_empty(), "refused without a problem");
            for p in &e.problems {
                assert!(
                    p.file == "call_flows" || files.iter().any(|(name, _)| *name == p.file),
                    "problem in an unknown file: {p:?}"
                );
                assert!(!p.message.trim().is_empty(), "a problem without a message");
            }
            assert!(!e.to_string().is_empty());
            let again = load_files(&files, "call_flows").expect_err("refused the second time");
            assert_eq!(e, &again, "not deterministic");
        }
    }
});

/// `HELPLINE_FUZZ_SHOW=1 cargo fuzz run call_flow <input>` prints the flow an input makes.
fn show() -> bool {
    static SHOW: OnceLock<bool> = OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("HELPLINE_FUZZ_SHOW").is_some())
}

/// The context the calls layer builds (`Calls::base_context`): every placeholder filled,
/// the caller's last digits only when the number is known.
fn context(open: bool, caller: Option<&str>) -> Context {
    let mut ctx = Context {
        open,
        caller: caller.and_then(UkNumber::from_caller_id),
        ..Default::default()
    };
    ctx.vars
        .insert("next_open", "on Monday the 30th of November at 9am".into());
    ctx.vars.insert(
        "opening_hours",
        "Monday to Friday, 9am to 4pm, except bank holidays".into(),
    );
    let reason = if open {
        "The line is open."
    } else {
        "The line is closed at weekends."
    };
    ctx.vars.insert("closed_reason", reason.into());
    ctx.vars.insert("callback_working_days", "2".into());
    if let Some(n) = &ctx.caller {
        ctx.vars
            .insert("caller_last_digits", n.spoken_last_digits(4));
    }
    ctx
}

/// Plays every answer to every question, breadth first, up to [`MAX_TURNS`] turns. Each
/// turn gets the context the calls layer gives it (`Calls::context`): the base context, plus
/// the callback number once given and the reference once the enquiry is stored.
fn play(flow: &Flow, base: &Context) {
    let context = |answers: &Answers, stored: bool| {
        let mut ctx = base.clone();
        if let Some(n) = &answers.callback_number {
            ctx.vars.insert("callback_number", n.spoken());
        }
        if stored {
            ctx.vars.insert("reference", "1 2 3, 4 5 6".into());
            ctx.vars.insert("callback_by", "Wednesday the 2nd".into());
        }
        ctx
    };
    let mut seen = HashSet::new();
    let mut queue = VecDeque::new();
    let first = start(flow, base, &Answers::default());
    check(flow, base, &first, true);
    queue.push_back((first, Answers::default(), false));
    let mut turns = 0;
    while let Some((turn, mut answers, stored)) = queue.pop_front() {
        for a in &turn.answers {
            answers.apply(a);
        }
        if !seen.insert(format!("{:?} {answers:?} {stored}", turn.wait)) {
            continue;
        }
        let ctx = &context(&answers, stored);
        let mut next: Vec<(Turn, bool)> = Vec::new();
        match &turn.wait {
            Wait::Menu { node, attempt, .. } => {
                assert!(*attempt < flow.settings.max_attempts, "{turn:?}");
                let Some(NodeKind::Menu { options, .. }) = flow.node(node).map(|n| &n.kind) else {
                    panic!("waits at {node}, which is not a menu");
                };
                let mut inputs = vec![
                    Input::Silence,
                    Input::Keys("*".into()),
                    Input::Keys("x".into()),
                    Input::Speech("mumble".into()),
                ];
                for o in options {
                    inputs.push(Input::Keys(o.key.to_string()));
                    inputs.extend(o.speech.first().cloned().map(Input::Speech));
                }
                for input in inputs {
                    next.push((respond(flow, node, *attempt, &input, ctx, &answers), true));
                }
            }
            Wait::Number { node, attempt } => {
                assert!(*attempt < flow.settings.max_attempts, "{turn:?}");
                assert!(
                    matches!(
                        flow.node(node).map(|n| &n.kind),
                        Some(NodeKind::AskNumber { .. })
                    ),
                    "waits for a number at {node}, which does not ask for one"
                );
                for input in [
                    Input::Silence,
                    Input::Keys("*".into()),
                    Input::Keys("12#".into()),
                    Input::Keys("07700900456#".into()),
                ] {
                    next.push((respond(flow, node, *attempt, &input, ctx, &answers), true));
                }
            }
            Wait::Record { node, .. } => {
                for input in [
                    Input::Silence,
                    Input::Recording(Recording {
                        url: "https://api.twilio.com/recording".into(),
                        duration_seconds: 12,
                    }),
                ] {
                    next.push((respond(flow, node, 0, &input, ctx, &answers), true));
                }
            }
            Wait::Queue { node, .. } => {
                let waiting = queue_waiting(flow, node, Some(3), Some("4 minutes".into()), ctx);
                match waiting.expect("waits in a queue node") {
                    QueueWait::Waiting { says, .. } | QueueWait::Closing { says } => {
                        assert!(!says.is_empty(), "silence in the queue");
                        says.iter().for_each(|s| spoken(s));
                    }
                }
                for exit in [QueueExit::Bridged, QueueExit::Left, QueueExit::Failed] {
                    next.push((queue_exit(flow, node, exit, ctx, &answers), true));
                }
                // A caller who hangs up in the queue is gone: nothing to say.
                next.push((
                    queue_exit(flow, node, QueueExit::HungUp, ctx, &answers),
                    false,
                ));
            }
            Wait::SaveEnquiry { then } => {
                assert!(
                    answers.callback_number.is_some()
                        && answers.trust.is_some()
                        && answers.category.is_some(),
                    "an enquiry stored without everything it needs: {answers:?}"
                );
                let after = context(&answers, true);
                let t = resume(flow, then, &after, &answers);
                check(flow, &after, &t, true);
                queue.push_back((t, answers.clone(), true));
            }
            Wait::Hangup => {}
        }
        for (t, speaks) in next {
            check(flow, ctx, &t, speaks);
            queue.push_back((t, answers.clone(), stored));
        }
        turns += 1;
        if turns >= MAX_TURNS {
            break;
        }
    }
}

/// One turn: speech (unless the caller has gone), not the apology, a path along the flow.
fn check(flow: &Flow, ctx: &Context, turn: &Turn, speaks: bool) {
    assert_ne!(
        turn.outcome, "apology",
        "a loaded flow fell back to the apology: {turn:?}"
    );
    if speaks && !matches!(turn.wait, Wait::SaveEnquiry { .. }) {
        assert!(!turn.says.is_empty(), "silence: {turn:?}");
    }
    for s in &turn.says {
        assert!(!s.trim().is_empty(), "an empty prompt is spoken: {turn:?}");
        assert!(!s.contains(['{', '}']), "an unfilled placeholder: {turn:?}");
    }
    assert!(turn.ask_from <= turn.says.len(), "{turn:?}");
    path_leads_where_it_waits(flow, ctx, turn);
}

/// Something to say, with every placeholder filled.
fn spoken(s: &str) {
    assert!(!s.trim().is_empty(), "an empty prompt is spoken");
    assert!(!s.contains(['{', '}']), "an unfilled placeholder in {s:?}");
}

/// Each step of the turn's path follows a link of the flow, and the path ends where the turn
/// waits (at the hangup node that ends the call; past an enquiry node, where the call goes
/// on once it is stored).
fn path_leads_where_it_waits(flow: &Flow, ctx: &Context, turn: &Turn) {
    for pair in turn.path.windows(2) {
        let from = flow
            .node(&pair[0])
            .expect("the path passes only through nodes");
        assert!(
            from.kind.targets().iter().any(|(_, t)| **t == pair[1]),
            "{} does not lead to {}: {turn:?}",
            pair[0],
            pair[1]
        );
    }
    let last = turn.path.last().map(String::as_str);
    let expected = match &turn.wait {
        Wait::Menu { node, .. }
        | Wait::Number { node, .. }
        | Wait::Record { node, .. }
        | Wait::Queue { node, .. } => Some(node.as_str()),
        Wait::SaveEnquiry { then } => {
            let on = route(flow, then, ctx);
            assert!(
                !on.is_empty() && turn.path.ends_with(&on),
                "the path does not go on from {then}: {turn:?}"
            );
            let before = turn.path.len() - on.len();
            let enquiry = before.checked_sub(1).and_then(|i| flow.node(&turn.path[i]));
            assert!(
                matches!(enquiry.map(|n| &n.kind), Some(NodeKind::Enquiry { .. })),
                "no enquiry node before {then}: {turn:?}"
            );
            last
        }
        Wait::Hangup => {
            if let Some(id) = last {
                assert!(
                    matches!(
                        flow.node(id).map(|n| &n.kind),
                        Some(NodeKind::Hangup { .. })
                    ),
                    "the call ends at {id}, not a hangup node: {turn:?}"
                );
            }
            last
        }
    };
    assert_eq!(last, expected, "the path ends elsewhere: {turn:?}");
}

/// Prompts any node may say.
const SAFE_PROMPTS: &[&str] = &[
    "Welcome to the enquiry line.",
    "Press 1 for news, 2 for a call back.",
    "{next_open}",
    "We open {next_open}. Our hours are {opening_hours}.",
    "{closed_reason}",
    "We will call you back within {callback_working_days} working days.",
    "Call Action Fraud on {action_fraud}.",
    "{action_fraud}",
];

/// Prompts that only fit some places (after a number is given, after the enquiry is stored,
/// when the caller's number is known, in a queue), an unknown placeholder, and a blank.
const RISKY_PROMPTS: &[&str] = &[
    "Ending {caller_last_digits}?",
    "{caller_last_digits}",
    "We will call you on {callback_number}.",
    "{callback_number}",
    "Your reference is {reference}. We will call by {callback_by}.",
    "{reference}",
    "You are number {queue_position} in the queue.",
    "{queue_wait}",
    "{no_such_thing}",
    " ",
];

/// Values for `set = { ... }` on a menu option, good and bad.
const SETS: &[&str] = &[
    "trust = \"alder-hey\"",
    "trust = \"royal-liverpool\"",
    "trust = \"not-sure\"",
    "category = \"data-concern\"",
    "category = \"other\"",
    "callback_number = \"caller\"",
    "trust = \"st-elsewhere\"",
];

/// A call-flow file written from `u`'s choices: two to twelve nodes of every type, each
/// mostly leading on to the next (so that most are reachable and many flows load) and
/// sometimes anywhere else, back, or to a node that does not exist; the last is a hangup.
fn generated(u: &mut Unstructured) -> arbitrary::Result<String> {
    let count = u.int_in_range(2..=12)?;
    let id = |i: usize| format!("n{i}");
    // Where node `i` leads besides the next node.
    let elsewhere = |u: &mut Unstructured, i: usize| -> arbitrary::Result<String> {
        Ok(match u.int_in_range(0..=19)? {
            0 => "nowhere".to_string(),
            1..=3 => id(u.choose_index(count)?),
            _ => id(u.int_in_range(i + 1..=count - 1)?),
        })
    };
    let prompt = |u: &mut Unstructured| -> arbitrary::Result<&str> {
        Ok(if u.ratio(1, 6)? {
            *u.choose(RISKY_PROMPTS)?
        } else {
            *u.choose(SAFE_PROMPTS)?
        })
    };

    let mut t = String::new();
    let w = &mut t;
    let last = id(count - 1);
    let give_up = if u.ratio(1, 8)? {
        elsewhere(u, 0)?
    } else {
        last.clone()
    };
    let _ = writeln!(w, "[flow]\nstart = \"n0\"\ngive_up = \"{give_up}\"");
    for field in ["no_input", "invalid", "apology"] {
        let _ = writeln!(w, "{field} = \"{}\"", prompt(u)?);
    }
    if u.ratio(1, 4)? {
        let _ = writeln!(w, "max_attempts = {}", u.int_in_range(0..=11)?);
    }
    if u.ratio(1, 4)? {
        let _ = writeln!(w, "callback_working_days = {}", u.int_in_range(0..=21)?);
    }
    let _ = writeln!(w, "[phone_numbers]\naction_fraud = \"0300 123 2040\"");
    for i in 0..count {
        let this = id(i);
        let _ = writeln!(w, "[nodes.{this}]");
        if i == count - 1 {
            let _ = writeln!(w, "type = \"hangup\"\ntext = \"{}\"", prompt(u)?);
            continue;
        }
        let next = if u.ratio(1, 10)? {
            elsewhere(u, i)?
        } else {
            id(i + 1)
        };
        match u.int_in_range(0..=15)? {
            0..=2 => {
                let _ = writeln!(
                    w,
                    "type = \"say\"\ntext = \"{}\"\nnext = \"{next}\"",
                    prompt(u)?
                );
            }
            3..=6 => {
                let _ = writeln!(w, "type = \"menu\"\ntext = \"{}\"", prompt(u)?);
                for field in ["reprompt", "no_input", "invalid"] {
                    if u.ratio(1, 3)? {
                        let _ = writeln!(w, "{field} = \"{}\"", prompt(u)?);
                    }
                }
                if u.ratio(1, 4)? {
                    let _ = writeln!(w, "give_up = \"{}\"", elsewhere(u, i)?);
                }
                for k in 0..u.int_in_range(1..=4)? {
                    let key = if u.ratio(1, 20)? {
                        u.choose(&["*", "12", "1"])?.to_string()
                    } else {
                        (k + 1).to_string()
                    };
                    let goto = if k == 0 {
                        next.clone()
                    } else {
                        elsewhere(u, i)?
                    };
                    let _ = writeln!(
                        w,
                        "[[nodes.{this}.options]]\nkey = \"{key}\"\ngoto = \"{goto}\""
                    );
                    if u.arbitrary()? {
                        let word = u.choose(&["news", "call back", "fraud", "adviser", "one"])?;
                        let _ = writeln!(w, "speech = [\"{word}\"]");
                    }
                    let sets: Vec<&str> = (0..u.int_in_range(0..=2)?)
                        .map(|_| u.choose(SETS).copied())
                        .collect::<arbitrary::Result<_>>()?;
                    if !sets.is_empty() {
                        let _ = writeln!(w, "set = {{ {} }}", sets.join(", "));
                    }
                }
            }
            7..=8 => {
                let when = u.choose(&["open", "caller_number_known"])?;
                let other = elsewhere(u, i)?;
                let _ = writeln!(
                    w,
                    "type = \"branch\"\nwhen = \"{when}\"\nthen = \"{next}\"\nelse = \"{other}\""
                );
            }
            9..=10 => {
                let _ = writeln!(
                    w,
                    "type = \"ask_number\"\ntext = \"{}\"\nnext = \"{next}\"",
                    prompt(u)?
                );
                for field in ["no_input", "invalid"] {
                    if u.ratio(1, 3)? {
                        let _ = writeln!(w, "{field} = \"{}\"", prompt(u)?);
                    }
                }
                if u.ratio(1, 4)? {
                    let _ = writeln!(w, "give_up = \"{}\"", elsewhere(u, i)?);
                }
            }
            11 => {
                let seconds = u.int_in_range(0..=600)?;
                let _ = writeln!(
                    w,
                    "type = \"record\"\ntext = \"{}\"\nmax_seconds = {seconds}\nnext = \"{next}\"",
                    prompt(u)?
                );
            }
            12..=13 => {
                let _ = writeln!(w, "type = \"enquiry\"\nnext = \"{next}\"");
            }
            14 => {
                let _ = writeln!(w, "type = \"queue\"\nqueue = \"advisers\"");
                for field in ["text", "after_call", "closing"] {
                    let _ = writeln!(w, "{field} = \"{}\"", prompt(u)?);
                }
                let _ = writeln!(
                    w,
                    "wait = \"You are number {{queue_position}}.\"\nwait_estimate = \"About {{queue_wait}}.\""
                );
                let leave = u.choose(&["1", "2", "*"])?;
                let on_failure = elsewhere(u, i)?;
                let _ = writeln!(
                    w,
                    "leave_key = \"{leave}\"\non_leave = \"{next}\"\non_failure = \"{on_failure}\""
                );
            }
            _ => {
                let _ = writeln!(w, "type = \"hangup\"\ntext = \"{}\"", prompt(u)?);
            }
        }
    }
    Ok(t)
}
