//! The call-flow file format (see `docs/call-flows.md`) and the validated model the
//! engine runs. The words live in `call_flows/*.toml`; this file only knows their shape.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::template::Template;
use crate::enquiries::{Category, Trust};

// ---------------------------------------------------------------------------
// The file format, exactly as written in TOML.

/// One `call_flows/*.toml` file. Exactly one file of a flow has the `[flow]` table;
/// nodes may be split across files (their ids must be unique).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub flow: Option<SettingsSpec>,
    #[serde(default)]
    pub phone_numbers: BTreeMap<String, String>,
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsSpec {
    pub start: String,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    pub give_up: String,
    pub no_input: String,
    pub invalid: String,
    #[serde(default = "default_callback_working_days")]
    pub callback_working_days: u32,
    /// Said when something inside the service fails mid-call, before the call ends.
    pub apology: String,
}

fn default_max_attempts() -> u32 {
    3
}

fn default_callback_working_days() -> u32 {
    2
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeSpec {
    Say {
        text: String,
        next: String,
    },
    Hangup {
        text: String,
    },
    Menu {
        text: String,
        reprompt: Option<String>,
        no_input: Option<String>,
        invalid: Option<String>,
        give_up: Option<String>,
        options: Vec<OptionSpec>,
    },
    Branch {
        when: Condition,
        then: String,
        #[serde(rename = "else")]
        otherwise: String,
    },
    AskNumber {
        text: String,
        no_input: Option<String>,
        invalid: Option<String>,
        give_up: Option<String>,
        next: String,
    },
    Record {
        text: String,
        #[serde(default = "default_record_seconds")]
        max_seconds: u32,
        next: String,
    },
    Enquiry {
        next: String,
    },
    Queue {
        text: String,
        queue: String,
        wait: String,
        wait_estimate: String,
        #[serde(default = "default_leave_key")]
        leave_key: String,
        on_leave: String,
        on_failure: String,
        after_call: String,
        closing: String,
    },
}

fn default_record_seconds() -> u32 {
    120
}

fn default_leave_key() -> String {
    "1".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    pub key: String,
    pub goto: String,
    #[serde(default)]
    pub speech: Vec<String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

/// What a `branch` node decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The line is within opening hours now (calendar, bank holidays and closures included).
    Open,
    /// The caller's own number is a UK number we could ring back.
    CallerNumberKnown,
}

// ---------------------------------------------------------------------------
// The validated model.

pub type NodeId = String;

#[derive(Debug, Clone)]
pub struct Settings {
    pub start: NodeId,
    pub max_attempts: u32,
    pub give_up: NodeId,
    pub no_input: Template,
    pub invalid: Template,
    pub callback_working_days: u32,
    pub apology: Template,
}

/// An answer a menu option records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetAnswer {
    Trust(Trust),
    Category(Category),
    /// Use the number the caller is calling from.
    CallbackNumberFromCaller,
}

#[derive(Debug, Clone)]
pub struct MenuOption {
    pub key: char,
    pub goto: NodeId,
    /// Phrases that choose this option by speech, normalised.
    pub speech: Vec<String>,
    pub set: Vec<SetAnswer>,
}

/// How a node that waits for the caller handles silence and wrong input.
#[derive(Debug, Clone)]
pub struct Retry {
    pub no_input: Template,
    pub invalid: Template,
    pub give_up: NodeId,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Say {
        text: Template,
        next: NodeId,
    },
    Hangup {
        text: Template,
    },
    Menu {
        text: Template,
        reprompt: Template,
        retry: Retry,
        options: Vec<MenuOption>,
    },
    Branch {
        when: Condition,
        then: NodeId,
        otherwise: NodeId,
    },
    AskNumber {
        text: Template,
        retry: Retry,
        next: NodeId,
    },
    Record {
        text: Template,
        max_seconds: u32,
        next: NodeId,
    },
    Enquiry {
        next: NodeId,
    },
    Queue {
        text: Template,
        queue: String,
        wait: Template,
        wait_estimate: Template,
        leave_key: char,
        on_leave: NodeId,
        on_failure: NodeId,
        after_call: Template,
        /// Said to a caller still waiting when the line closes, before they leave the queue
        /// (for `on_leave`: a request for a call back).
        closing: Template,
    },
}

impl NodeKind {
    /// Every node this one can lead to, with the field that names it.
    pub fn targets(&self) -> Vec<(&'static str, &NodeId)> {
        match self {
            NodeKind::Say { next, .. }
            | NodeKind::AskNumber { next, .. }
            | NodeKind::Record { next, .. }
            | NodeKind::Enquiry { next } => {
                let mut t = vec![("next", next)];
                if let NodeKind::AskNumber { retry, .. } = self {
                    t.push(("give_up", &retry.give_up));
                }
                t
            }
            NodeKind::Hangup { .. } => vec![],
            NodeKind::Menu { retry, options, .. } => {
                let mut t: Vec<_> = options.iter().map(|o| ("goto", &o.goto)).collect();
                t.push(("give_up", &retry.give_up));
                t
            }
            NodeKind::Branch {
                then, otherwise, ..
            } => vec![("then", then), ("else", otherwise)],
            NodeKind::Queue {
                on_leave,
                on_failure,
                ..
            } => vec![("on_leave", on_leave), ("on_failure", on_failure)],
        }
    }

    /// Nodes that hand the turn to the caller (or to Twilio) rather than running on.
    pub fn waits_for_caller(&self) -> bool {
        matches!(
            self,
            NodeKind::Menu { .. }
                | NodeKind::AskNumber { .. }
                | NodeKind::Record { .. }
                | NodeKind::Queue { .. }
                | NodeKind::Hangup { .. }
        )
    }

    /// Every prompt of the node with the field it came from.
    pub fn prompts(&self) -> Vec<(&'static str, &Template)> {
        match self {
            NodeKind::Say { text, .. }
            | NodeKind::Hangup { text }
            | NodeKind::Record { text, .. } => {
                vec![("text", text)]
            }
            NodeKind::Menu {
                text,
                reprompt,
                retry,
                ..
            } => vec![
                ("text", text),
                ("reprompt", reprompt),
                ("no_input", &retry.no_input),
                ("invalid", &retry.invalid),
            ],
            NodeKind::AskNumber { text, retry, .. } => {
                vec![
                    ("text", text),
                    ("no_input", &retry.no_input),
                    ("invalid", &retry.invalid),
                ]
            }
            NodeKind::Queue {
                text,
                wait,
                wait_estimate,
                after_call,
                closing,
                ..
            } => vec![
                ("text", text),
                ("wait", wait),
                ("wait_estimate", wait_estimate),
                ("after_call", after_call),
                ("closing", closing),
            ],
            NodeKind::Branch { .. } | NodeKind::Enquiry { .. } => vec![],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    /// The file the node was read from, for messages.
    pub file: String,
    pub kind: NodeKind,
}

/// A loaded, validated call flow.
#[derive(Debug, Clone)]
pub struct Flow {
    pub settings: Settings,
    pub nodes: BTreeMap<NodeId, Node>,
    /// Published numbers by name, already in their spoken, digit-by-digit form.
    pub phone_numbers: BTreeMap<String, String>,
    /// Where the flow came from (a directory, or "built-in").
    pub source: String,
}

impl Flow {
    /// The Twilio queue callers wait in for an adviser (the first queue node's; `helpline`
    /// when the flow has none).
    pub fn queue_name(&self) -> String {
        self.nodes
            .values()
            .find_map(|n| match &n.kind {
                NodeKind::Queue { queue, .. } => Some(queue.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "helpline".into())
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }
}
