//! Messages managers keep current without a deploy: today the "latest update" (the call
//! flow's `latest_update` node). A published version replaces that node's words on every
//! instance from the next call step; every version is kept, so any can be restored.
//!
//! What callers hear is the manager's text with phone numbers read digit by digit and
//! dates spoken in full ([`spoken`]); the preview shows exactly that.

use std::sync::{Arc, RwLock};

use chrono::NaiveDate;

use crate::flows::model::NodeKind;
use crate::flows::template::Template;
use crate::flows::Flow;
use crate::store::{Store, StoreError};

/// The messages managers may edit: (flow node, name shown).
pub const EDITABLE: &[(&str, &str)] = &[("latest_update", "Latest update")];

/// The longest message (about three minutes spoken).
pub const MAX_CHARS: usize = 3000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("the message is empty")]
    Empty,
    #[error("the message is longer than {MAX_CHARS} characters: callers would hang up first")]
    TooLong,
    #[error("the message cannot contain {{ or }}: write the words out instead")]
    Braces,
    #[error("`{0}` is not a message that can be edited")]
    Unknown(String),
}

/// The editable message called `name`.
pub fn editable(name: &str) -> Result<&'static str, MessageError> {
    EDITABLE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, _)| *n)
        .ok_or_else(|| MessageError::Unknown(name.to_string()))
}

/// The text, tidied (control characters and surrounding space removed) and checked.
pub fn check(text: &str) -> Result<String, MessageError> {
    let text: String = text
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !c.is_control())
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return Err(MessageError::Empty);
    }
    if text.chars().count() > MAX_CHARS {
        return Err(MessageError::TooLong);
    }
    if text.contains(['{', '}']) {
        return Err(MessageError::Braces);
    }
    Ok(text)
}

/// The words as a caller hears them: UK phone numbers (0…, 10 or 11 digits, written with or
/// without spaces) read digit by digit, and dates (25/12/2026 or 2026-12-25) spoken in full.
pub fn spoken(text: &str) -> String {
    let tokens: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if let Some((len, words)) = phone_at(&tokens[i..]) {
            out.push(words);
            i += len;
            continue;
        }
        out.push(date_in(tokens[i]).unwrap_or_else(|| tokens[i].to_string()));
        i += 1;
    }
    out.join(" ")
}

/// A phone number starting at the first token (digit groups), with trailing punctuation
/// kept: how many tokens it took and its spoken form.
fn phone_at(tokens: &[&str]) -> Option<(usize, String)> {
    let first = tokens.first()?;
    if !first.starts_with('0') {
        return None;
    }
    let mut digits = 0;
    let mut groups = Vec::new();
    for (n, t) in tokens.iter().enumerate() {
        let core = t.trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
        if core.is_empty() || !core.bytes().all(|b| b.is_ascii_digit()) {
            break;
        }
        digits += core.len();
        groups.push(core.to_string());
        if digits >= 10 {
            let tail = &t[core.len()..];
            return (digits <= 11).then(|| {
                (
                    n + 1,
                    format!(
                        "{}{tail}",
                        crate::phone::spoken_phone_number(&groups.join(" "))
                    ),
                )
            });
        }
        if core.len() != t.len() {
            break;
        }
    }
    None
}

fn date_in(token: &str) -> Option<String> {
    let core = token.trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
    let tail = &token[core.len()..];
    let date = NaiveDate::parse_from_str(core, "%d/%m/%Y")
        .or_else(|_| NaiveDate::parse_from_str(core, "%Y-%m-%d"))
        .ok()?;
    Some(format!("{}{tail}", crate::hours::speech::spoken_date(date)))
}

/// Puts `body` (checked) in place of node `name`'s words; false when the flow has no such
/// `say` node.
pub fn apply(flow: &mut Flow, name: &str, body: &str) -> bool {
    let Ok(template) = Template::parse(&spoken(body)) else {
        return false;
    };
    match flow.nodes.get_mut(name).map(|n| &mut n.kind) {
        Some(NodeKind::Say { text, .. }) => {
            *text = template;
            true
        }
        _ => false,
    }
}

/// The call flow with the published messages in place, re-read when the content revision
/// moves (one single-row query per call step).
#[derive(Debug)]
pub struct LiveContent {
    base: Arc<Flow>,
    state: RwLock<(Option<i64>, Arc<Flow>)>,
}

impl LiveContent {
    pub fn new(base: Arc<Flow>) -> Self {
        Self {
            state: RwLock::new((None, base.clone())),
            base,
        }
    }

    /// The flow in force.
    pub fn flow(&self) -> Arc<Flow> {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Catches up with the database; true when something changed.
    pub async fn sync(&self, store: &dyn Store) -> Result<bool, StoreError> {
        let revision = store.content_revision().await?;
        if self.state.read().unwrap_or_else(|p| p.into_inner()).0 == Some(revision) {
            return Ok(false);
        }
        let mut flow = (*self.base).clone();
        for (name, _) in EDITABLE {
            if let Some(v) = store.current_message(name).await? {
                if !apply(&mut flow, name, &v.body) {
                    tracing::warn!(
                        name,
                        "the call flow has no `say` node for this message; not used"
                    );
                }
            }
        }
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        if s.0.is_none_or(|r| r < revision) {
            *s = (Some(revision), Arc::new(flow));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates_are_spoken() {
        assert_eq!(
            spoken("Call 0151 706 3602, or Action Fraud on 03001232040."),
            "Call 0 1 5 1, 7 0 6, 3 6 0 2, or Action Fraud on 0 3 0 0 1 2 3 2 0 4 0."
        );
        assert_eq!(
            spoken("Updated on 01/12/2026 and 2026-12-25."),
            "Updated on Tuesday the 1st of December and Friday the 25th of December."
        );
        assert_eq!(spoken("Ward 12 has 40 beds"), "Ward 12 has 40 beds");
        assert_eq!(spoken("0 1 2"), "0 1 2", "too short to be a number");
    }

    #[test]
    fn messages_are_checked_and_tidied() {
        assert_eq!(check("  Hello\n\nworld\u{7} "), Ok("Hello world".into()));
        assert_eq!(check("   "), Err(MessageError::Empty));
        assert_eq!(check("Dear {name}"), Err(MessageError::Braces));
        assert_eq!(
            check(&"a".repeat(MAX_CHARS + 1)),
            Err(MessageError::TooLong)
        );
        assert!(editable("latest_update").is_ok());
        assert!(editable("main_menu").is_err());
    }
}
