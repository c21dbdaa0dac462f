//! The pages, as askama templates (`templates/`, escaped for HTML by default). Values are
//! prepared in Rust; the templates only lay them out.

use askama::Template;
use axum::http::StatusCode;

use super::work::ListedEnquiry;
use super::WebError;
use crate::staff::{Role, User};

pub fn render<T: Template>(t: &T) -> Result<String, WebError> {
    t.render().map_err(|e| {
        tracing::error!(error = %e, "template failed");
        WebError::Render
    })
}

/// The header every signed-in page shares.
pub struct Nav {
    pub email: String,
    pub role: String,
    pub csrf: String,
    pub manager: bool,
    pub admin: bool,
    /// Which tab is current.
    pub current: &'static str,
}

impl Nav {
    pub fn new(user: &User, csrf: &str, current: &'static str) -> Self {
        Self {
            email: user.email.clone(),
            role: user.role.to_string(),
            csrf: csrf.to_string(),
            manager: user.role.allows(Role::Manager),
            admin: user.role.allows(Role::Admin),
            current,
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

/// A plain page with one message (errors, refusals).
pub fn message_page(status: StatusCode, message: &str) -> String {
    let title = status.canonical_reason().unwrap_or("Helpline");
    MessagePage { title, message }
        .render()
        .unwrap_or_else(|_| "Something went wrong.".to_string())
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub csrf: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub email: &'a str,
}

#[derive(Template)]
#[template(path = "code.html")]
pub struct CodePage<'a> {
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "enrol.html")]
pub struct EnrolPage<'a> {
    pub csrf: &'a str,
    pub secret: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery.html")]
pub struct RecoveryPage<'a> {
    pub codes: &'a [String],
}

#[derive(Template)]
#[template(path = "setup.html")]
pub struct SetupPage<'a> {
    pub csrf: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub min: usize,
}

/// One caller waiting, for the queue page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueRow {
    pub position: usize,
    pub waited: String,
    pub waited_seconds: i64,
    pub trust: String,
    pub category: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
pub struct QueuePage<'a> {
    pub nav: Nav,
    pub rows: &'a [QueueRow],
    pub longest: String,
    pub notice: Option<&'a str>,
}

/// A choice in a filter.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "callbacks.html")]
pub struct CallbacksPage<'a> {
    pub nav: Nav,
    pub rows: &'a [ListedRow],
    pub trusts: Vec<Choice>,
    pub categories: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub notice: Option<&'a str>,
}

/// An enquiry row with its words ready.
pub struct ListedRow {
    pub e: ListedEnquiry,
    pub trust: String,
    pub category: String,
    pub status: String,
    pub waited: String,
    pub due: String,
    pub source: String,
}

pub struct StepView {
    pub node: String,
    pub outcome: String,
}

pub struct LineView {
    pub at: String,
    pub who: String,
    pub what: String,
}

#[derive(Template)]
#[template(path = "enquiry.html")]
pub struct EnquiryPage<'a> {
    pub nav: Nav,
    pub id: &'a str,
    pub reference: &'a str,
    pub number: String,
    pub revealed: bool,
    pub trust: String,
    pub category: String,
    pub status: String,
    pub open: bool,
    pub source: String,
    pub waited: String,
    pub due: String,
    pub overdue: bool,
    pub next_attempt: Option<String>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub missed_calls: u32,
    pub has_recording: bool,
    pub holder: Option<String>,
    pub mine: bool,
    pub steps: Vec<StepView>,
    pub history: Vec<LineView>,
    pub notes: Vec<LineView>,
    pub outcomes: Vec<Choice>,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub nav: Nav,
    pub phone: String,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub state: String,
    pub disabled: bool,
    pub roles: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage<'a> {
    pub nav: Nav,
    pub users: Vec<UserRow>,
    pub link: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub address: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage<'a> {
    pub nav: Nav,
    pub rows: Vec<AuditRow>,
    pub actor: &'a str,
    pub since: &'a str,
    pub actions: Vec<Choice>,
}

pub struct ClosureRow {
    pub id: i64,
    pub kind: String,
    pub from: String,
    pub until: String,
    pub reason: String,
    /// In force now.
    pub now: bool,
}

#[derive(Template)]
#[template(path = "closures.html")]
pub struct ClosuresPage<'a> {
    pub nav: Nav,
    pub rows: Vec<ClosureRow>,
    pub current: String,
    pub preview: Option<String>,
    pub kind: String,
    pub from: String,
    pub until: String,
    pub reason: String,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub struct VersionRow {
    pub id: i64,
    pub at: String,
    pub author: String,
    pub note: String,
    pub body: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "message_edit.html")]
pub struct MessageEditPage<'a> {
    pub nav: Nav,
    pub name: &'a str,
    pub label: &'a str,
    pub text: String,
    pub in_force: String,
    pub draft_saved: Option<String>,
    pub preview: Option<String>,
    pub versions: Vec<VersionRow>,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub nav: Nav,
    pub waiting: usize,
    pub open: i64,
    pub overdue: i64,
    pub by_trust: Vec<(String, usize)>,
}

/// A message as a sentence for a page: capital first letter (the messages themselves are
/// written lower-case, to sit inside others).
pub fn capitalised(message: &str) -> String {
    let mut m = message.to_string();
    if let Some(first) = m.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    m
}

/// "3 h 05 min", "4 min", "40 s".
pub fn duration_words(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

/// A time in Europe/London for people.
pub fn local_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&crate::hours::LONDON)
        .format("%a %-d %b %H:%M")
        .to_string()
}

pub fn trust_label(t: &str) -> String {
    match t {
        "alder-hey" => "Alder Hey",
        "liverpool-heart-and-chest" => "Liverpool Heart and Chest",
        "royal-liverpool" => "Royal Liverpool",
        "not-sure" => "Not sure",
        "" => "—",
        other => other,
    }
    .to_string()
}

pub fn category_label(c: &str) -> String {
    match c {
        "data-concern" => "Worried about their data",
        "contacted-by-claimant" => "Contacted by someone claiming to have data",
        "other" => "Something else",
        "" => "—",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_words(40), "40 s");
        assert_eq!(duration_words(240), "4 min");
        assert_eq!(duration_words(3 * 3600 + 5 * 60), "3 h 05 min");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let html = message_page(StatusCode::BAD_REQUEST, "<script>alert(1)</script>");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("alert(1)"),
            "the message is still shown, escaped: {html}"
        );
    }
}
