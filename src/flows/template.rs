//! Prompt templates: plain text with `{name}` placeholders filled in per call
//! (next opening time, reference number, published phone numbers…).

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

/// A parsed prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// A prompt with nothing in it (stands in for one that failed to parse).
    pub fn empty() -> Self {
        Self { parts: Vec::new() }
    }

    /// Parses `{name}` placeholders; `name` is lower-case letters, digits and `_`.
    /// Errors name the problem so the flow check can say how to fix it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err("has a `}` without a matching `{`".to_string());
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| "has a `{` that is never closed with `}`".to_string())?;
            let name = &after[..close];
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!(
                    "has a placeholder `{{{name}}}`: placeholder names are lower-case letters, digits and underscores"
                ));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// Names of the placeholders used.
    pub fn vars(&self) -> BTreeSet<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Var(v) => Some(v.as_str()),
                Part::Text(_) => None,
            })
            .collect()
    }

    pub fn uses(&self, var: &str) -> bool {
        self.vars().contains(var)
    }

    /// Fills the placeholders; a value the context lacks renders as nothing (the
    /// flow check makes that impossible for a valid flow).
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => {
                    if let Some(value) = lookup(v) {
                        out.push_str(&value);
                    } else {
                        tracing::warn!(placeholder = %v, "prompt placeholder had no value");
                    }
                }
            }
        }
        // Collapse the double spaces a missing value or a line break in TOML leaves behind.
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let t = Template::parse("We open again {next_open}. Call {action_fraud}.").unwrap();
        assert_eq!(
            t.vars().into_iter().collect::<Vec<_>>(),
            vec!["action_fraud", "next_open"]
        );
        let out = t.render(|v| Some(format!("<{v}>")));
        assert_eq!(out, "We open again <next_open>. Call <action_fraud>.");
    }

    #[test]
    fn rejects_broken_placeholders() {
        assert!(Template::parse("open {next_open")
            .unwrap_err()
            .contains("never closed"));
        assert!(Template::parse("oops }")
            .unwrap_err()
            .contains("without a matching"));
        assert!(Template::parse("{Next Open}")
            .unwrap_err()
            .contains("lower-case"));
        assert!(Template::parse("{}").is_err());
    }

    #[test]
    fn folds_whitespace_from_multiline_toml() {
        let t = Template::parse("Hello.\n   Press 1.\n").unwrap();
        assert_eq!(t.render(|_| None), "Hello. Press 1.");
    }
}
