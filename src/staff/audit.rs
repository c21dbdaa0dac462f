//! The audit log: who did what to which record, when and from where. Append-only (the
//! database refuses updates and deletes), and never holds a caller's details: the target
//! is an enquiry or account id, the detail a fixed word such as an outcome.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What happened. The names are stable: they are what admins filter and export by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    SecondFactorFailed,
    RecoveryCodeUsed,
    Logout,
    SetupCompleted,
    AccountCreated,
    AccountDisabled,
    AccountEnabled,
    RoleChanged,
    PasswordReset,
    PhoneChanged,
    AccessDenied,
    NumberRevealed,
    RecordingPlayed,
    EnquiryViewed,
    EnquiryClaimed,
    ClaimReleased,
    CallBackStarted,
    CallerTaken,
    OutcomeRecorded,
    EnquiryClosed,
    NoteAdded,
    TextSent,
    AuditExported,
    MessageDraftSaved,
    MessagePublished,
    MessageRestored,
    ClosureAdded,
    ClosureRemoved,
    /// The retention purge deleted enquiries and calls (detail: counts only).
    RetentionPurged,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::LoginSucceeded,
        Action::LoginFailed,
        Action::LoginThrottled,
        Action::SecondFactorFailed,
        Action::RecoveryCodeUsed,
        Action::Logout,
        Action::SetupCompleted,
        Action::AccountCreated,
        Action::AccountDisabled,
        Action::AccountEnabled,
        Action::RoleChanged,
        Action::PasswordReset,
        Action::PhoneChanged,
        Action::AccessDenied,
        Action::NumberRevealed,
        Action::RecordingPlayed,
        Action::EnquiryViewed,
        Action::EnquiryClaimed,
        Action::ClaimReleased,
        Action::CallBackStarted,
        Action::CallerTaken,
        Action::OutcomeRecorded,
        Action::EnquiryClosed,
        Action::NoteAdded,
        Action::TextSent,
        Action::AuditExported,
        Action::MessageDraftSaved,
        Action::MessagePublished,
        Action::MessageRestored,
        Action::ClosureAdded,
        Action::ClosureRemoved,
        Action::RetentionPurged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::LoginSucceeded => "login.succeeded",
            Action::LoginFailed => "login.failed",
            Action::LoginThrottled => "login.throttled",
            Action::SecondFactorFailed => "login.second-factor-failed",
            Action::RecoveryCodeUsed => "login.recovery-code-used",
            Action::Logout => "logout",
            Action::SetupCompleted => "account.set-up",
            Action::AccountCreated => "account.created",
            Action::AccountDisabled => "account.disabled",
            Action::AccountEnabled => "account.enabled",
            Action::RoleChanged => "account.role-changed",
            Action::PasswordReset => "account.password-reset",
            Action::PhoneChanged => "account.phone-changed",
            Action::AccessDenied => "access.denied",
            Action::NumberRevealed => "enquiry.number-revealed",
            Action::RecordingPlayed => "enquiry.recording-played",
            Action::EnquiryViewed => "enquiry.viewed",
            Action::EnquiryClaimed => "enquiry.claimed",
            Action::ClaimReleased => "enquiry.claim-released",
            Action::CallBackStarted => "enquiry.call-back-started",
            Action::CallerTaken => "queue.caller-taken",
            Action::OutcomeRecorded => "enquiry.outcome-recorded",
            Action::EnquiryClosed => "enquiry.closed",
            Action::NoteAdded => "enquiry.note-added",
            Action::TextSent => "enquiry.text-sent",
            Action::AuditExported => "audit.exported",
            Action::MessageDraftSaved => "message.draft-saved",
            Action::MessagePublished => "message.published",
            Action::MessageRestored => "message.restored",
            Action::ClosureAdded => "hours.closure-added",
            Action::ClosureRemoved => "hours.closure-removed",
            Action::RetentionPurged => "retention.purged",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub at: DateTime<Utc>,
    pub actor_id: Option<String>,
    /// The staff member's e-mail, or `system` / `unknown`.
    pub actor: String,
    pub action: Action,
    pub target: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
}

/// Which entries to read, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub limit: i64,
}

/// Writes entries as CSV (oldest first). Cells that a spreadsheet would run as a formula
/// (starting `=`, `+`, `-`, `@`, tab or CR) are prefixed with `'`.
pub fn write_csv<W: std::io::Write>(entries: &[Entry], out: W) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["id", "at", "actor", "action", "target", "address", "detail"])?;
    for e in entries {
        w.write_record([
            e.id.to_string(),
            e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            safe_cell(&e.actor),
            safe_cell(&e.action),
            safe_cell(e.target.as_deref().unwrap_or("")),
            safe_cell(e.address.as_deref().unwrap_or("")),
            safe_cell(e.detail.as_deref().unwrap_or("")),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// A CSV cell that is never run as a formula.
pub fn safe_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
    }

    #[test]
    fn csv_cells_are_never_formulas() {
        let e = Entry {
            id: 1,
            at: "2026-11-30T10:00:00Z".parse().unwrap(),
            actor: "=cmd|' /C calc'!A0".into(),
            action: "login.failed".into(),
            target: None,
            address: Some("127.0.0.1".into()),
            detail: Some("@SUM(1)".into()),
        };
        let mut out = Vec::new();
        write_csv(&[e], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("'=cmd"), "{text}");
        assert!(text.contains("'@SUM"), "{text}");
        assert!(text.starts_with("id,at,actor,action,target,address,detail\n"));
    }
}
