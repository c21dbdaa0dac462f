//! The call-flow engine: a pure function from (flow, where the caller is, what they
//! did, context) to what they hear next, what to remember, and what happens next.
//! No I/O: the webhooks, `helpline simulate` and the tests all drive this one code.

use std::collections::BTreeMap;

use super::model::*;
use super::speech::{digits_from_speech, match_speech, Heard};
use super::template::Template;
use crate::enquiries::{Category, Recording, Trust};
use crate::phone::UkNumber;

/// The most nodes one turn may pass through before the engine gives up (a valid flow
/// never comes close: loops without a waiting node are rejected at load).
const MAX_HOPS: usize = 64;

/// What the engine knows about the call and the line at this moment.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Within opening hours now.
    pub open: bool,
    /// The caller's own number, when it is a UK number we could ring back.
    pub caller: Option<UkNumber>,
    /// Placeholder values: next_open, opening_hours, closed_reason, callback_working_days,
    /// caller_last_digits, and reference / callback_by once the enquiry exists.
    pub vars: BTreeMap<&'static str, String>,
}

/// What the caller has told us so far in this call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    pub callback_number: Option<UkNumber>,
    pub trust: Option<Trust>,
    pub category: Option<Category>,
    pub message: Option<Recording>,
}

/// One answer to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    CallbackNumber(UkNumber),
    Trust(Trust),
    Category(Category),
    Message(Recording),
}

impl Answers {
    pub fn apply(&mut self, answer: &Answer) {
        match answer {
            Answer::CallbackNumber(n) => self.callback_number = Some(n.clone()),
            Answer::Trust(t) => self.trust = Some(*t),
            Answer::Category(c) => self.category = Some(*c),
            Answer::Message(r) => self.message = Some(r.clone()),
        }
    }
}

/// What the caller did at a node that waited for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Nothing (the gather timed out).
    Silence,
    Keys(String),
    Speech(String),
    Recording(Recording),
}

impl Input {
    /// How the caller answered, for statistics (never the answer itself).
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Silence => "none",
            Input::Keys(_) => "dtmf",
            Input::Speech(_) => "speech",
            Input::Recording(_) => "recording",
        }
    }
}

/// What happens after the caller has heard this turn's prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Listen for one key or a spoken choice; answers go to `node` with `attempt`.
    Menu {
        node: NodeId,
        attempt: u32,
        hints: Vec<String>,
    },
    /// Listen for a phone number keyed (ending with #) or spoken.
    Number { node: NodeId, attempt: u32 },
    /// Record an optional message.
    Record { node: NodeId, max_seconds: u32 },
    /// Put the caller in the queue for an adviser.
    Queue { node: NodeId, queue: String },
    /// Store the enquiry now (before anything else is said), then continue at `then`.
    SaveEnquiry { then: NodeId },
    /// End the call.
    Hangup,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// What the caller hears, in order.
    pub says: Vec<String>,
    /// `says[ask_from..]` is the question being asked (and may be interrupted by an
    /// answer); what comes before it (a greeting, the line's hours, fraud guidance) is
    /// essential and is said in full first.
    pub ask_from: usize,
    /// Answers to remember for this call.
    pub answers: Vec<Answer>,
    pub wait: Wait,
    /// How the input was taken, for the step record: `start`, `option-3`, `repeat`,
    /// `no-input`, `invalid`, `gave-up`, `number-given`, `message`, `no-message`…
    pub outcome: String,
    /// The ids of the nodes this turn took the caller through, in order (for the step
    /// record and the managers' journey map): from the first node walked to (for
    /// [`start`], the start node) through `say` and `branch` nodes to the node that now
    /// waits for the caller (menu, ask number, record, queue) or ends the call (hangup).
    /// Past an `enquiry` node ([`Wait::SaveEnquiry`]) it goes on with the [`route`] from
    /// its `next`, where the calls layer resumes once the enquiry is stored. A re-ask of
    /// the same question (repeat, invalid, no input) is just that node; the apology, a
    /// hang-up in the queue and the goodbye after an adviser call pass through no node
    /// and are empty.
    pub path: Vec<String>,
}

/// Why a caller left the queue (Twilio's `QueueResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueExit {
    /// Talked to an adviser.
    Bridged,
    /// Chose to leave (for a call back).
    Left,
    /// Hung up while waiting.
    HungUp,
    /// The queue was full or Twilio failed.
    Failed,
}

impl QueueExit {
    pub fn from_twilio(result: &str) -> Self {
        match result {
            "bridged" | "redirected" => QueueExit::Bridged,
            "leave" => QueueExit::Left,
            "hangup" => QueueExit::HungUp,
            _ => QueueExit::Failed,
        }
    }
}

/// Fills a prompt's placeholders from `extra`, the context and the flow's phone numbers.
pub fn render(flow: &Flow, template: &Template, ctx: &Context, extra: &[(&str, String)]) -> String {
    template.render(|name| {
        extra
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| ctx.vars.get(name).cloned())
            .or_else(|| flow.phone_numbers.get(name).cloned())
    })
}

/// The first turn of a new call.
pub fn start(flow: &Flow, ctx: &Context, answers: &Answers) -> Turn {
    walk(
        flow,
        &flow.settings.start,
        ctx,
        answers,
        Vec::new(),
        Vec::new(),
        "start",
    )
}

/// Continues at `node` without input (after an enquiry is stored, or the queue is left).
pub fn resume(flow: &Flow, node: &str, ctx: &Context, answers: &Answers) -> Turn {
    walk(flow, node, ctx, answers, Vec::new(), Vec::new(), "resume")
}

/// The turn after the caller answered at `node` (a menu, number or record node).
pub fn respond(
    flow: &Flow,
    node: &str,
    attempt: u32,
    input: &Input,
    ctx: &Context,
    answers: &Answers,
) -> Turn {
    let Some(n) = flow.node(node) else {
        // A stale or hand-made URL: start the menu afresh rather than fail.
        tracing::warn!(node, "answer for an unknown node; restarting the flow");
        return start(flow, ctx, answers);
    };
    match &n.kind {
        NodeKind::Menu {
            text,
            reprompt,
            retry,
            options,
        } => {
            let heard = match input {
                // Exactly one key: `*` repeats, an option's key chooses it; anything else
                // (`*#*#`, letters, `٣`, ten thousand digits) is not a key press we offered.
                Input::Keys(k) => {
                    let mut pressed = k.trim().chars();
                    match (pressed.next(), pressed.next()) {
                        (Some('*'), None) => Heard::Repeat,
                        (Some(c), None) if options.iter().any(|o| o.key == c) => Heard::Key(c),
                        _ => Heard::Unclear,
                    }
                }
                Input::Speech(s) => {
                    match_speech(s, options.iter().map(|o| (o.key, o.speech.as_slice())))
                }
                Input::Silence | Input::Recording(_) => {
                    return fail(flow, n, retry, reprompt, attempt, true, ctx, answers)
                }
            };
            match heard {
                Heard::Repeat => Turn {
                    ask_from: 0,
                    says: vec![render(flow, text, ctx, &[])],
                    answers: vec![],
                    wait: menu_wait(n, attempt, options),
                    outcome: "repeat".into(),
                    path: vec![n.id.clone()],
                },
                Heard::Key(k) => match options.iter().find(|o| o.key == k) {
                    Some(option) => {
                        let mut chosen = Vec::new();
                        for set in &option.set {
                            match set {
                                SetAnswer::Trust(t) => chosen.push(Answer::Trust(*t)),
                                SetAnswer::Category(c) => chosen.push(Answer::Category(*c)),
                                SetAnswer::CallbackNumberFromCaller => {
                                    if let Some(n) = &ctx.caller {
                                        chosen.push(Answer::CallbackNumber(n.clone()));
                                    }
                                }
                            }
                        }
                        walk(
                            flow,
                            &option.goto,
                            ctx,
                            answers,
                            Vec::new(),
                            chosen,
                            &format!("option-{k}"),
                        )
                    }
                    None => fail(flow, n, retry, reprompt, attempt, false, ctx, answers),
                },
                Heard::Unclear => fail(flow, n, retry, reprompt, attempt, false, ctx, answers),
            }
        }
        NodeKind::AskNumber { text, retry, next } => {
            let raw = match input {
                Input::Keys(k) if k.trim() == "*" => {
                    return Turn {
                        ask_from: 0,
                        says: vec![render(flow, text, ctx, &[])],
                        answers: vec![],
                        wait: Wait::Number {
                            node: n.id.clone(),
                            attempt,
                        },
                        outcome: "repeat".into(),
                        path: vec![n.id.clone()],
                    }
                }
                Input::Keys(k) => k.trim_end_matches('#').to_string(),
                Input::Speech(s) => digits_from_speech(s),
                Input::Silence | Input::Recording(_) => {
                    return fail(flow, n, retry, text, attempt, true, ctx, answers)
                }
            };
            match UkNumber::parse(&raw) {
                Some(number) => walk(
                    flow,
                    next,
                    ctx,
                    answers,
                    Vec::new(),
                    vec![Answer::CallbackNumber(number)],
                    "number-given",
                ),
                None => fail(flow, n, retry, text, attempt, false, ctx, answers),
            }
        }
        NodeKind::Record { next, .. } => {
            let (chosen, outcome) = match input {
                Input::Recording(r) if r.duration_seconds > 0 && !r.url.is_empty() => {
                    (vec![Answer::Message(r.clone())], "message")
                }
                _ => (vec![], "no-message"),
            };
            walk(flow, next, ctx, answers, Vec::new(), chosen, outcome)
        }
        // Nodes that never take input: an answer here is a replay or a hand-made URL;
        // carry on from the node rather than fail.
        _ => walk(
            flow,
            node,
            ctx,
            answers,
            Vec::new(),
            Vec::new(),
            "unexpected-input",
        ),
    }
}

/// The turn after the caller left the queue at `node`.
pub fn queue_exit(
    flow: &Flow,
    node: &str,
    exit: QueueExit,
    ctx: &Context,
    answers: &Answers,
) -> Turn {
    let Some(NodeKind::Queue {
        on_leave,
        on_failure,
        after_call,
        ..
    }) = flow.node(node).map(|n| &n.kind)
    else {
        return start(flow, ctx, answers);
    };
    let outcome = match exit {
        QueueExit::Bridged => "bridged",
        QueueExit::Left => "left-queue",
        QueueExit::HungUp => "hung-up-in-queue",
        QueueExit::Failed => "queue-failed",
    };
    match exit {
        QueueExit::Bridged => Turn {
            ask_from: 0,
            says: vec![render(flow, after_call, ctx, &[])],
            answers: vec![],
            wait: Wait::Hangup,
            outcome: outcome.into(),
            path: vec![],
        },
        QueueExit::HungUp => Turn {
            ask_from: 0,
            says: vec![],
            answers: vec![],
            wait: Wait::Hangup,
            outcome: outcome.into(),
            path: vec![],
        },
        QueueExit::Left => walk(
            flow,
            on_leave,
            ctx,
            answers,
            Vec::new(),
            Vec::new(),
            outcome,
        ),
        QueueExit::Failed => walk(
            flow,
            on_failure,
            ctx,
            answers,
            Vec::new(),
            Vec::new(),
            outcome,
        ),
    }
}

/// What a caller in the queue hears when Twilio asks the wait URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueWait {
    /// Still waiting: their position (when Twilio gave it) and an estimate (when there is
    /// enough history); `leave_key` leaves for a call back.
    Waiting { says: Vec<String>, leave_key: char },
    /// The line has closed: say why and take them out of the queue, to `on_leave`.
    Closing { says: Vec<String> },
}

/// What a waiting caller hears now. `None` when `node` is not a queue.
pub fn queue_waiting(
    flow: &Flow,
    node: &str,
    position: Option<u32>,
    estimate: Option<String>,
    ctx: &Context,
) -> Option<QueueWait> {
    let NodeKind::Queue {
        wait,
        wait_estimate,
        leave_key,
        closing,
        ..
    } = &flow.node(node)?.kind
    else {
        return None;
    };
    if !ctx.open {
        return Some(QueueWait::Closing {
            says: vec![render(flow, closing, ctx, &[])],
        });
    }
    let mut says = Vec::new();
    // Never guess a position: a wrong one is worse than none.
    if let Some(p) = position {
        says.push(render(
            flow,
            wait,
            ctx,
            &[("queue_position", p.to_string())],
        ));
    }
    if let Some(e) = estimate {
        says.push(render(flow, wait_estimate, ctx, &[("queue_wait", e)]));
    }
    Some(QueueWait::Waiting {
        says,
        leave_key: *leave_key,
    })
}

/// The key that takes a waiting caller out of the queue at `node` (None if not a queue).
pub fn queue_leave_key(flow: &Flow, node: &str) -> Option<char> {
    match &flow.node(node)?.kind {
        NodeKind::Queue { leave_key, .. } => Some(*leave_key),
        _ => None,
    }
}

/// The apology for a failure inside the service: valid speech, essential guidance, goodbye.
pub fn apology(flow: &Flow, ctx: &Context) -> Turn {
    Turn {
        ask_from: 0,
        says: vec![render(flow, &flow.settings.apology, ctx, &[])],
        answers: vec![],
        wait: Wait::Hangup,
        outcome: "apology".into(),
        path: vec![],
    }
}

fn menu_wait(n: &Node, attempt: u32, options: &[MenuOption]) -> Wait {
    Wait::Menu {
        node: n.id.clone(),
        attempt,
        hints: options
            .iter()
            .flat_map(|o| o.speech.iter().cloned())
            .collect(),
    }
}

#[allow(clippy::too_many_arguments)]
fn fail(
    flow: &Flow,
    n: &Node,
    retry: &Retry,
    reprompt: &Template,
    attempt: u32,
    silence: bool,
    ctx: &Context,
    answers: &Answers,
) -> Turn {
    let (prefix, outcome) = if silence {
        (&retry.no_input, "no-input")
    } else {
        (&retry.invalid, "invalid")
    };
    let says = vec![render(flow, prefix, ctx, &[])];
    let attempt = attempt.saturating_add(1);
    if attempt >= flow.settings.max_attempts {
        return walk(
            flow,
            &retry.give_up,
            ctx,
            answers,
            says,
            Vec::new(),
            "gave-up",
        );
    }
    let mut says = says;
    says.push(render(flow, reprompt, ctx, &[]));
    let wait = match &n.kind {
        NodeKind::Menu { options, .. } => menu_wait(n, attempt, options),
        _ => Wait::Number {
            node: n.id.clone(),
            attempt,
        },
    };
    Turn {
        ask_from: 0,
        says,
        answers: vec![],
        wait,
        outcome: outcome.into(),
        path: vec![n.id.clone()],
    }
}

/// Placeholders that come from the answers given so far in this very turn.
fn answer_vars(answers: &Answers) -> Vec<(&'static str, String)> {
    answers
        .callback_number
        .as_ref()
        .map(|n| ("callback_number", n.spoken()))
        .into_iter()
        .collect()
}

/// Runs from `from` through nodes that do not wait (say, branch) to the next one that does.
fn walk(
    flow: &Flow,
    from: &str,
    ctx: &Context,
    answers: &Answers,
    mut says: Vec<String>,
    chosen: Vec<Answer>,
    outcome: &str,
) -> Turn {
    let mut so_far = answers.clone();
    for a in &chosen {
        so_far.apply(a);
    }
    let extra = answer_vars(&so_far);
    let mut id = from.to_string();
    let mut path = Vec::new();
    for _ in 0..MAX_HOPS {
        let Some(n) = flow.node(&id) else { break };
        path.push(n.id.clone());
        // The waiting node's own words are the question; everything said before it is not.
        let ask_from = says.len();
        let wait = match &n.kind {
            NodeKind::Say { text, next } => {
                says.push(render(flow, text, ctx, &extra));
                id = next.clone();
                continue;
            }
            NodeKind::Branch {
                when,
                then,
                otherwise,
            } => {
                id = if decide(*when, ctx) {
                    then.clone()
                } else {
                    otherwise.clone()
                };
                continue;
            }
            NodeKind::Enquiry { next } => {
                if so_far.callback_number.is_none()
                    || so_far.trust.is_none()
                    || so_far.category.is_none()
                {
                    // Only a flow edited around the checks gets here; never lose the caller in silence.
                    tracing::error!(node = %n.id, "enquiry node reached without all answers");
                    break;
                }
                // The calls layer resumes at `next` once the enquiry is stored; the way on
                // from there depends only on the hours and the caller, so it is known now.
                path.extend(route(flow, next, ctx));
                Wait::SaveEnquiry { then: next.clone() }
            }
            NodeKind::Menu { text, options, .. } => {
                says.push(render(flow, text, ctx, &extra));
                menu_wait(n, 0, options)
            }
            NodeKind::AskNumber { text, .. } => {
                says.push(render(flow, text, ctx, &extra));
                Wait::Number {
                    node: n.id.clone(),
                    attempt: 0,
                }
            }
            NodeKind::Record {
                text, max_seconds, ..
            } => {
                says.push(render(flow, text, ctx, &extra));
                Wait::Record {
                    node: n.id.clone(),
                    max_seconds: *max_seconds,
                }
            }
            NodeKind::Queue { text, queue, .. } => {
                says.push(render(flow, text, ctx, &extra));
                Wait::Queue {
                    node: n.id.clone(),
                    queue: queue.clone(),
                }
            }
            NodeKind::Hangup { text } => {
                says.push(render(flow, text, ctx, &extra));
                Wait::Hangup
            }
        };
        return Turn {
            ask_from,
            says,
            answers: chosen,
            wait,
            outcome: outcome.to_string(),
            path,
        };
    }
    // The apology (a broken flow): like every apology, no path.
    let mut turn = apology(flow, ctx);
    turn.answers = chosen;
    turn
}

/// The nodes a caller passes through from `from` without answering anything, in order:
/// `from` itself, then on through `say` and `branch` nodes (branches decided by `ctx.open`
/// and `ctx.caller`) and `enquiry` nodes (on to their `next`, as the calls layer does once
/// the enquiry is stored), up to and including the first node that waits for the caller
/// (menu, ask number, record, queue) or ends the call (hangup). Pure: nothing is rendered.
/// Stops before an unknown id, and after `MAX_HOPS` (64) nodes (a valid flow never loops
/// without waiting). Empty when `from` is not a node.
pub fn route(flow: &Flow, from: &str, ctx: &Context) -> Vec<String> {
    let mut path = Vec::new();
    let mut id = from;
    while path.len() < MAX_HOPS {
        let Some(n) = flow.node(id) else { break };
        path.push(n.id.clone());
        id = match &n.kind {
            NodeKind::Say { next, .. } | NodeKind::Enquiry { next } => next,
            NodeKind::Branch {
                when,
                then,
                otherwise,
            } => {
                if decide(*when, ctx) {
                    then
                } else {
                    otherwise
                }
            }
            NodeKind::Menu { .. }
            | NodeKind::AskNumber { .. }
            | NodeKind::Record { .. }
            | NodeKind::Queue { .. }
            | NodeKind::Hangup { .. } => break,
        };
    }
    path
}

/// A `branch` node's decision.
fn decide(when: Condition, ctx: &Context) -> bool {
    match when {
        Condition::Open => ctx.open,
        Condition::CallerNumberKnown => ctx.caller.is_some(),
    }
}
