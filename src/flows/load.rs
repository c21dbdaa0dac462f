//! Loading and validating call flows. A flow that could leave a caller stuck, in
//! silence or at a dead end never loads: every problem is reported with its file,
//! node and how to fix it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::Path;

use super::model::*;
use super::speech::normalise;
use super::template::Template;
use crate::enquiries::{Category, Trust};

/// The flow shipped with the binary, used when no `call_flows/` directory is configured or present.
pub const BUILTIN_NAME: &str = "built-in call_flows/helpline.toml";
const BUILTIN: &str = include_str!("../../call_flows/helpline.toml");

/// Placeholders every prompt may use.
pub const CONTEXT_VARS: &[&str] = &[
    "next_open",
    "opening_hours",
    "closed_reason",
    "callback_working_days",
    "caller_last_digits",
];
/// Placeholders that need the caller's enquiry to exist.
pub const ENQUIRY_VARS: &[&str] = &["reference", "callback_by"];
/// Placeholders that need a callback number to have been given.
pub const NUMBER_VARS: &[&str] = &["callback_number"];

/// One thing wrong with a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub node: Option<String>,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(node) = &self.node {
            write!(f, ", node `{node}`")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.fix.is_empty() {
            write!(f, "\n    fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Every problem found in a flow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FlowError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the call flow is invalid ({} problem{}):",
            self.problems.len(),
            plural(self.problems.len())
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Loads every `*.toml` file in `dir` as one flow.
pub fn load_dir(dir: &Path) -> Result<Flow, FlowError> {
    let shown = dir.display().to_string();
    let fail = |message: String, fix: &str| FlowError {
        problems: vec![Problem {
            file: shown.clone(),
            node: None,
            message,
            fix: fix.to_string(),
        }],
    };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        fail(
            format!("cannot read the call-flow directory: {e}"),
            "point HELPLINE_CALL_FLOWS (or the command's DIR argument) at the directory holding the flow's .toml files",
        )
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(fail(
            "holds no .toml call-flow file".to_string(),
            "add the flow file (see docs/call-flows.md), e.g. copy call_flows/helpline.toml from the repository",
        ));
    }
    let mut files = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            fail(
                format!("cannot read {}: {e}", path.display()),
                "check the file's permissions and that it is UTF-8",
            )
        })?;
        files.push((path.display().to_string(), text));
    }
    load_files(&files, &shown)
}

/// The flow built into the binary.
pub fn builtin() -> Result<Flow, FlowError> {
    load_files(
        &[(BUILTIN_NAME.to_string(), BUILTIN.to_string())],
        "built-in",
    )
}

/// Loads a flow from `(file name, TOML text)` pairs.
pub fn load_files(files: &[(String, String)], source: &str) -> Result<Flow, FlowError> {
    let mut problems = Vec::new();
    let mut settings: Option<(String, SettingsSpec)> = None;
    let mut phone_numbers = BTreeMap::new();
    let mut specs: BTreeMap<String, (String, NodeSpec)> = BTreeMap::new();

    for (file, text) in files {
        let spec: FileSpec = match toml::from_str(text) {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem {
                    file: file.clone(),
                    node: None,
                    message: format!(
                        "is not a valid call-flow file: {}",
                        e.to_string().trim_end()
                    ),
                    fix:
                        "correct the TOML at the place shown (the format is in docs/call-flows.md)"
                            .into(),
                });
                continue;
            }
        };
        if let Some(s) = spec.flow {
            if let Some((first, _)) = &settings {
                problems.push(Problem {
                    file: file.clone(),
                    node: None,
                    message: format!("has a second [flow] table (the first is in {first})"),
                    fix: "keep exactly one [flow] table across the flow's files".into(),
                });
            } else {
                settings = Some((file.clone(), s));
            }
        }
        for (name, number) in spec.phone_numbers {
            phone_numbers.insert(name, (file.clone(), number));
        }
        for (id, node) in spec.nodes {
            if let Some((other, _)) = specs.get(&id) {
                problems.push(Problem {
                    file: file.clone(),
                    node: Some(id.clone()),
                    message: format!("is defined again (it is also in {other})"),
                    fix: "give each node a unique id".into(),
                });
            } else {
                specs.insert(id, (file.clone(), node));
            }
        }
    }
    if !problems.is_empty() {
        return Err(FlowError { problems });
    }
    let Some((settings_file, settings)) = settings else {
        return Err(FlowError {
            problems: vec![Problem {
                file: source.to_string(),
                node: None,
                message: "has no [flow] table".into(),
                fix: "add [flow] with start, give_up, no_input, invalid and apology (docs/call-flows.md)".into(),
            }],
        });
    };

    let mut v = Validator {
        problems: Vec::new(),
        ids: specs.keys().cloned().collect(),
    };
    let spoken_numbers = v.phone_numbers(&phone_numbers);
    let settings = v.settings(&settings_file, settings);
    let mut nodes = BTreeMap::new();
    if let Some(settings) = &settings {
        for (id, (file, spec)) in specs {
            if let Some(kind) = v.node(&file, &id, spec, settings) {
                nodes.insert(id.clone(), Node { id, file, kind });
            }
        }
    }
    // The graph checks run even when some nodes have problems: a misspelt target also
    // orphans the node it meant, and saying so at once saves a second round.
    if let Some(settings) = settings {
        let flow = Flow {
            settings,
            nodes,
            phone_numbers: spoken_numbers,
            source: source.to_string(),
        };
        v.graph(&flow, &settings_file);
        if v.problems.is_empty() {
            return Ok(flow);
        }
    }
    Err(FlowError {
        problems: v.problems,
    })
}

struct Validator {
    problems: Vec<Problem>,
    ids: BTreeSet<String>,
}

fn valid_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && s.len() <= 64
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Validator {
    fn problem(
        &mut self,
        file: &str,
        node: Option<&str>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem {
            file: file.to_string(),
            node: node.map(str::to_string),
            message: message.into(),
            fix: fix.into(),
        });
    }

    fn template(&mut self, file: &str, node: Option<&str>, field: &str, text: &str) -> Template {
        if text.trim().is_empty() {
            self.problem(
                file,
                node,
                format!("`{field}` is empty"),
                "write what the caller should hear",
            );
        }
        match Template::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.problem(
                    file,
                    node,
                    format!("`{field}` {e}"),
                    "write placeholders as {name}, e.g. {next_open}",
                );
                Template::empty()
            }
        }
    }

    fn target(&mut self, file: &str, node: Option<&str>, field: &str, target: &str) -> NodeId {
        if !self.ids.contains(target) {
            self.problem(
                file,
                node,
                format!("`{field}` goes to `{target}`, which does not exist"),
                format!("add a [nodes.{target}] table or correct the name"),
            );
        }
        target.to_string()
    }

    fn phone_numbers(
        &mut self,
        numbers: &BTreeMap<String, (String, String)>,
    ) -> BTreeMap<String, String> {
        let mut spoken = BTreeMap::new();
        for (name, (file, number)) in numbers {
            if !valid_name(name)
                || CONTEXT_VARS.contains(&name.as_str())
                || ENQUIRY_VARS.contains(&name.as_str())
            {
                self.problem(
                    file,
                    None,
                    format!("phone number name `{name}` is not usable as a placeholder"),
                    "use lower-case letters, digits and underscores, not a built-in placeholder name",
                );
            }
            if number.trim().is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == ' ') {
                self.problem(
                    file,
                    None,
                    format!("phone number `{name}` = \"{number}\" must be digits in groups separated by spaces"),
                    "write it as it is published, e.g. \"0300 123 2040\"",
                );
            }
            spoken.insert(name.clone(), crate::phone::spoken_phone_number(number));
        }
        spoken
    }

    fn settings(&mut self, file: &str, s: SettingsSpec) -> Option<Settings> {
        let start = self.target(file, None, "[flow] start", &s.start);
        let give_up = self.target(file, None, "[flow] give_up", &s.give_up);
        if !(1..=10).contains(&s.max_attempts) {
            self.problem(
                file,
                None,
                "[flow] max_attempts must be from 1 to 10",
                "the usual value is 3",
            );
        }
        if !(1..=20).contains(&s.callback_working_days) {
            self.problem(
                file,
                None,
                "[flow] callback_working_days must be from 1 to 20",
                "e.g. 2",
            );
        }
        Some(Settings {
            start,
            give_up,
            max_attempts: s.max_attempts,
            no_input: self.template(file, None, "[flow] no_input", &s.no_input),
            invalid: self.template(file, None, "[flow] invalid", &s.invalid),
            callback_working_days: s.callback_working_days,
            apology: self.template(file, None, "[flow] apology", &s.apology),
        })
    }

    fn retry(
        &mut self,
        file: &str,
        id: &str,
        settings: &Settings,
        no_input: Option<String>,
        invalid: Option<String>,
        give_up: Option<String>,
    ) -> Retry {
        Retry {
            no_input: match no_input {
                Some(t) => self.template(file, Some(id), "no_input", &t),
                None => settings.no_input.clone(),
            },
            invalid: match invalid {
                Some(t) => self.template(file, Some(id), "invalid", &t),
                None => settings.invalid.clone(),
            },
            give_up: match give_up {
                Some(t) => self.target(file, Some(id), "give_up", &t),
                None => settings.give_up.clone(),
            },
        }
    }

    fn key(&mut self, file: &str, id: &str, field: &str, key: &str) -> char {
        let mut chars = key.chars();
        match (chars.next(), chars.next()) {
            (Some('*'), None) => {
                self.problem(
                    file,
                    Some(id),
                    format!("`{field}` uses `*`, which always repeats the menu"),
                    "choose a digit 0-9",
                );
                '*'
            }
            (Some(c @ '0'..='9'), None) => c,
            _ => {
                self.problem(
                    file,
                    Some(id),
                    format!("`{field}` = \"{key}\" is not a single key 0-9"),
                    "use one digit, e.g. \"1\"",
                );
                '?'
            }
        }
    }

    fn node(
        &mut self,
        file: &str,
        id: &str,
        spec: NodeSpec,
        settings: &Settings,
    ) -> Option<NodeKind> {
        if !valid_name(id) {
            self.problem(
                file,
                Some(id),
                "node ids must start with a lower-case letter and use only a-z, 0-9 and _ (at most 64)",
                "rename the node and the places that go to it",
            );
        }
        let node = Some(id);
        Some(match spec {
            NodeSpec::Say { text, next } => NodeKind::Say {
                text: self.template(file, node, "text", &text),
                next: self.target(file, node, "next", &next),
            },
            NodeSpec::Hangup { text } => NodeKind::Hangup {
                text: self.template(file, node, "text", &text),
            },
            NodeSpec::Menu {
                text,
                reprompt,
                no_input,
                invalid,
                give_up,
                options,
            } => {
                let text = self.template(file, node, "text", &text);
                let reprompt = match reprompt {
                    Some(r) => self.template(file, node, "reprompt", &r),
                    None => text.clone(),
                };
                let retry = self.retry(file, id, settings, no_input, invalid, give_up);
                if options.is_empty() {
                    self.problem(
                        file,
                        node,
                        "menu has no options",
                        "add at least one [[nodes.ID.options]]",
                    );
                }
                let mut keys = BTreeSet::new();
                let mut phrases: HashMap<String, char> = HashMap::new();
                let mut parsed = Vec::new();
                for (i, o) in options.into_iter().enumerate() {
                    let field = format!("options[{i}].key");
                    let key = self.key(file, id, &field, &o.key);
                    if !keys.insert(key) {
                        self.problem(
                            file,
                            node,
                            format!("key {key} is used by two options"),
                            "give each option its own key",
                        );
                    }
                    let goto = self.target(file, node, &format!("options[{i}].goto"), &o.goto);
                    let mut speech = Vec::new();
                    for phrase in &o.speech {
                        let n = normalise(phrase);
                        if n.is_empty() {
                            self.problem(
                                file,
                                node,
                                format!("option {key} has an empty speech phrase"),
                                "remove it or write words",
                            );
                            continue;
                        }
                        if let Some(other) = phrases.insert(n.clone(), key) {
                            if other != key {
                                self.problem(
                                    file,
                                    node,
                                    format!("speech phrase \"{phrase}\" is given for options {other} and {key}"),
                                    "a phrase must lead to one option only",
                                );
                            }
                        }
                        speech.push(n);
                    }
                    let set = self.sets(file, id, key, &o.set);
                    parsed.push(MenuOption {
                        key,
                        goto,
                        speech,
                        set,
                    });
                }
                NodeKind::Menu {
                    text,
                    reprompt,
                    retry,
                    options: parsed,
                }
            }
            NodeSpec::Branch {
                when,
                then,
                otherwise,
            } => NodeKind::Branch {
                when,
                then: self.target(file, node, "then", &then),
                otherwise: self.target(file, node, "else", &otherwise),
            },
            NodeSpec::AskNumber {
                text,
                no_input,
                invalid,
                give_up,
                next,
            } => NodeKind::AskNumber {
                text: self.template(file, node, "text", &text),
                retry: self.retry(file, id, settings, no_input, invalid, give_up),
                next: self.target(file, node, "next", &next),
            },
            NodeSpec::Record {
                text,
                max_seconds,
                next,
            } => {
                if !(1..=120).contains(&max_seconds) {
                    self.problem(
                        file,
                        node,
                        "max_seconds must be from 1 to 120",
                        "messages are at most 2 minutes",
                    );
                }
                NodeKind::Record {
                    text: self.template(file, node, "text", &text),
                    max_seconds,
                    next: self.target(file, node, "next", &next),
                }
            }
            NodeSpec::Enquiry { next } => NodeKind::Enquiry {
                next: self.target(file, node, "next", &next),
            },
            NodeSpec::Queue {
                text,
                queue,
                wait,
                wait_estimate,
                leave_key,
                on_leave,
                on_failure,
                after_call,
                closing,
            } => {
                if queue.is_empty()
                    || queue.len() > 64
                    || !queue
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    self.problem(
                        file,
                        node,
                        format!("queue name \"{queue}\" is not usable"),
                        "use 1-64 letters, digits, - or _",
                    );
                }
                let wait = self.template(file, node, "wait", &wait);
                let wait_estimate = self.template(file, node, "wait_estimate", &wait_estimate);
                if !wait_estimate.uses("queue_wait") {
                    self.problem(
                        file,
                        node,
                        "`wait_estimate` does not say {queue_wait}",
                        "include {queue_wait} where the estimate is spoken",
                    );
                }
                NodeKind::Queue {
                    text: self.template(file, node, "text", &text),
                    queue,
                    wait,
                    wait_estimate,
                    leave_key: self.key(file, id, "leave_key", &leave_key),
                    on_leave: self.target(file, node, "on_leave", &on_leave),
                    on_failure: self.target(file, node, "on_failure", &on_failure),
                    after_call: self.template(file, node, "after_call", &after_call),
                    closing: self.template(file, node, "closing", &closing),
                }
            }
        })
    }

    fn sets(
        &mut self,
        file: &str,
        id: &str,
        key: char,
        set: &BTreeMap<String, String>,
    ) -> Vec<SetAnswer> {
        let mut out = Vec::new();
        for (name, value) in set {
            let parsed = match name.as_str() {
                "trust" => value.parse::<Trust>().map(SetAnswer::Trust).map_err(|e| e.to_string()),
                "category" => value.parse::<Category>().map(SetAnswer::Category).map_err(|e| e.to_string()),
                "callback_number" if value == "caller" => Ok(SetAnswer::CallbackNumberFromCaller),
                "callback_number" => Err("callback_number can only be set to \"caller\" by a menu; use an ask_number node to key one in".into()),
                other => Err(format!("`{other}` is not an answer a menu can set (trust, category, callback_number)")),
            };
            match parsed {
                Ok(a) => out.push(a),
                Err(e) => self.problem(
                    file,
                    Some(id),
                    format!("option {key}: {e}"),
                    "correct the option's `set` table",
                ),
            }
        }
        out
    }

    /// Checks that need the whole graph: reachability, loops that never wait for the
    /// caller, placeholders, and that an enquiry always has what it needs.
    fn graph(&mut self, flow: &Flow, settings_file: &str) {
        let start = &flow.settings.start;
        // Reachability from the start (and the flow-wide give-up node).
        let mut seen = BTreeSet::new();
        let mut todo = VecDeque::from([start.clone(), flow.settings.give_up.clone()]);
        while let Some(id) = todo.pop_front() {
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Some(n) = flow.node(&id) {
                todo.extend(n.kind.targets().into_iter().map(|(_, t)| t.clone()));
            }
        }
        for n in flow.nodes.values() {
            if !seen.contains(&n.id) {
                self.problem(
                    &n.file,
                    Some(&n.id),
                    format!("is never reached from the start node `{start}`"),
                    "link to it from another node, or delete it",
                );
            }
        }

        // A loop of nodes that never wait for the caller would never answer Twilio.
        for n in flow.nodes.values() {
            if n.kind.waits_for_caller() {
                continue;
            }
            let mut stack: Vec<(&str, usize)> = vec![(&n.id, 0)];
            let mut visited = BTreeSet::new();
            while let Some((id, depth)) = stack.pop() {
                let Some(node) = flow.node(id) else { continue };
                for (_, t) in node.kind.targets() {
                    if t == &n.id {
                        self.problem(
                            &n.file,
                            Some(&n.id),
                            "is part of a loop that never waits for the caller (only say, branch and enquiry nodes)",
                            "put a menu, ask_number, record, queue or hangup node in the loop",
                        );
                        stack.clear();
                        break;
                    }
                    let waits = flow.node(t).is_none_or(|tn| tn.kind.waits_for_caller());
                    if !waits && visited.insert(t.as_str()) && depth < flow.nodes.len() {
                        stack.push((t, depth + 1));
                    }
                }
            }
        }

        // Placeholders.
        let mut known: BTreeSet<&str> = CONTEXT_VARS.iter().copied().collect();
        known.extend(ENQUIRY_VARS.iter().copied());
        known.extend(NUMBER_VARS.iter().copied());
        known.extend(flow.phone_numbers.keys().map(String::as_str));
        let settings_prompts = [
            ("[flow] no_input", &flow.settings.no_input),
            ("[flow] invalid", &flow.settings.invalid),
            ("[flow] apology", &flow.settings.apology),
        ];
        for (field, t) in settings_prompts {
            for v in t.vars() {
                if !known.contains(v) || ENQUIRY_VARS.contains(&v) || NUMBER_VARS.contains(&v) {
                    self.problem(
                        settings_file,
                        None,
                        format!("`{field}` uses an unknown placeholder {{{v}}}"),
                        placeholder_fix(&known),
                    );
                }
            }
        }
        for n in flow.nodes.values() {
            for (field, t) in n.kind.prompts() {
                for v in t.vars() {
                    let queue_var = match (field, v) {
                        ("wait", "queue_position") | ("wait_estimate", "queue_wait") => true,
                        (_, "queue_position" | "queue_wait") => {
                            self.problem(
                                &n.file,
                                Some(&n.id),
                                format!("`{field}` uses {{{v}}}, which only a queue node's wait/wait_estimate can say"),
                                "remove it from this prompt",
                            );
                            true
                        }
                        _ => false,
                    };
                    if !queue_var && !known.contains(v) {
                        self.problem(
                            &n.file,
                            Some(&n.id),
                            format!("`{field}` uses an unknown placeholder {{{v}}}"),
                            placeholder_fix(&known),
                        );
                    }
                }
            }
        }

        // What every path guarantees has been asked before each node.
        self.definite_answers(flow, &seen);
    }

    fn definite_answers(&mut self, flow: &Flow, reachable: &BTreeSet<String>) {
        const NUMBER: u8 = 1;
        const TRUST: u8 = 2;
        const CATEGORY: u8 = 4;
        const ENQUIRY: u8 = 8;
        /// The caller's own number is known (a `caller_number_known` branch said yes).
        const CALLER: u8 = 16;
        const ALL: u8 = 31;
        // Edges with the facts they add.
        let mut edges: Vec<(&str, &str, u8)> = Vec::new();
        for n in flow.nodes.values() {
            match &n.kind {
                NodeKind::Menu { options, retry, .. } => {
                    for o in options {
                        let facts = o.set.iter().fold(0, |acc, s| {
                            acc | match s {
                                SetAnswer::Trust(_) => TRUST,
                                SetAnswer::Category(_) => CATEGORY,
                                SetAnswer::CallbackNumberFromCaller => NUMBER,
                            }
                        });
                        edges.push((&n.id, &o.goto, facts));
                    }
                    edges.push((&n.id, &retry.give_up, 0));
                }
                NodeKind::AskNumber { next, retry, .. } => {
                    edges.push((&n.id, next, NUMBER));
                    edges.push((&n.id, &retry.give_up, 0));
                }
                NodeKind::Enquiry { next } => edges.push((&n.id, next, ENQUIRY)),
                NodeKind::Branch {
                    when: Condition::CallerNumberKnown,
                    then,
                    otherwise,
                } => {
                    edges.push((&n.id, then, CALLER));
                    edges.push((&n.id, otherwise, 0));
                }
                other => {
                    for (_, t) in other.targets() {
                        edges.push((&n.id, t, 0));
                    }
                }
            }
        }
        let mut facts: BTreeMap<&str, u8> = reachable.iter().map(|id| (id.as_str(), ALL)).collect();
        facts.insert(&flow.settings.start, 0);
        facts.insert(&flow.settings.give_up, 0);
        // Monotone descent on a 4-bit lattice: at most 4 × nodes rounds.
        for _ in 0..=(4 * flow.nodes.len() + 1) {
            let mut changed = false;
            for (from, to, add) in &edges {
                let Some(&f) = facts.get(from) else { continue };
                if let Some(t) = facts.get_mut(to) {
                    let next = *t & (f | add);
                    if next != *t {
                        *t = next;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for n in flow.nodes.values() {
            let Some(&have) = facts.get(n.id.as_str()) else {
                continue;
            };
            if matches!(n.kind, NodeKind::Enquiry { .. }) {
                for (bit, what, how) in [
                    (NUMBER, "the callback number", "an ask_number node or an option with set = { callback_number = \"caller\" }"),
                    (TRUST, "which hospital", "an option with set = { trust = \"…\" }"),
                    (CATEGORY, "what the enquiry is about", "an option with set = { category = \"…\" }"),
                ] {
                    if have & bit == 0 {
                        self.problem(
                            &n.file,
                            Some(&n.id),
                            format!("can be reached without asking {what}"),
                            format!("ask it on every path to this node with {how}"),
                        );
                    }
                }
            }
            if let NodeKind::Menu { options, .. } = &n.kind {
                let uses_caller = options
                    .iter()
                    .any(|o| o.set.contains(&SetAnswer::CallbackNumberFromCaller));
                if uses_caller && have & CALLER == 0 {
                    self.problem(
                        &n.file,
                        Some(&n.id),
                        "an option sets callback_number = \"caller\", but some path reaches this menu without \
                         knowing the caller's number (it may be withheld)",
                        "reach this menu only through a branch with when = \"caller_number_known\"",
                    );
                }
            }
            let uses_number = n
                .kind
                .prompts()
                .iter()
                .any(|(_, t)| NUMBER_VARS.iter().any(|v| t.uses(v)));
            if uses_number && have & NUMBER == 0 {
                self.problem(
                    &n.file,
                    Some(&n.id),
                    "says {callback_number} but can be reached before the caller has given one",
                    "only use it after an ask_number node or an option that sets the callback number",
                );
            }
            // Rendered as nothing for a withheld number: "ending ?", or silence.
            let uses_caller_digits = n
                .kind
                .prompts()
                .iter()
                .any(|(_, t)| t.uses("caller_last_digits"));
            if uses_caller_digits && have & CALLER == 0 {
                self.problem(
                    &n.file,
                    Some(&n.id),
                    "says {caller_last_digits} but can be reached when the caller's number is withheld",
                    "only use it after a branch with when = \"caller_number_known\"",
                );
            }
            let uses_enquiry = n
                .kind
                .prompts()
                .iter()
                .any(|(_, t)| ENQUIRY_VARS.iter().any(|v| t.uses(v)));
            if uses_enquiry && have & ENQUIRY == 0 {
                self.problem(
                    &n.file,
                    Some(&n.id),
                    "says {reference} or {callback_by} but can be reached before an enquiry node has stored the request",
                    "only use them in nodes after an enquiry node",
                );
            }
        }
    }
}

fn placeholder_fix(known: &BTreeSet<&str>) -> String {
    format!(
        "use one of {} (or add the name under [phone_numbers])",
        known
            .iter()
            .map(|k| format!("{{{k}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
