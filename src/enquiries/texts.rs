//! Text messages to callers, sent through Twilio only to UK mobiles and only when switched
//! on: the reference after a call-back request (HELPLINE_SMS_CONFIRMATION) and, after the
//! last unanswered attempt, how to reach the line (HELPLINE_SMS_UNREACHABLE). Each kind is
//! sent at most once per enquiry and logged (kind and status, never the text or number).

use std::sync::Arc;

use super::Enquiry;
use crate::clock::Clock;
use crate::phone::UkNumber;
use crate::store::Store;
use crate::twilio::rest::TwilioApi;

/// Which message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// "We have your request; your reference is …".
    Reference,
    /// "We could not reach you; call us on …".
    Unreachable,
}

impl TextKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TextKind::Reference => "reference",
            TextKind::Unreachable => "unreachable",
        }
    }
}

/// What happened to a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Sent,
    /// Switched off, not a mobile, or already sent.
    Skipped,
    Failed,
}

#[derive(Debug)]
pub struct Texts {
    api: Arc<dyn TwilioApi>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    from: Option<String>,
    confirmation: bool,
    unreachable: bool,
    /// The line's number as callers dial it, e.g. 0151 706 3602.
    line: String,
    /// The opening hours in words, e.g. "Monday to Friday, 9am to 4pm".
    hours: String,
}

impl Texts {
    pub fn new(
        api: Arc<dyn TwilioApi>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: &crate::config::DashboardSettings,
        hours: String,
    ) -> Self {
        let line = UkNumber::parse(&settings.line_number)
            .map(|n| n.national())
            .unwrap_or_else(|| settings.line_number.clone());
        Self {
            api,
            store,
            clock,
            from: settings.sms_from.clone(),
            confirmation: settings.sms_confirmation,
            unreachable: settings.sms_unreachable,
            line,
            hours,
        }
    }

    fn enabled(&self, kind: TextKind) -> bool {
        self.from.is_some()
            && match kind {
                TextKind::Reference => self.confirmation,
                TextKind::Unreachable => self.unreachable,
            }
    }

    /// The message, in plain words (no links: a text with a link is what fraudsters send).
    pub fn body(&self, kind: TextKind, e: &Enquiry) -> String {
        match kind {
            TextKind::Reference => format!(
                "Liverpool hospitals enquiry line: we have your request for a call back. Your reference is {}. \
                 We will call you from {} by {}. We will never ask for bank details or passwords.",
                e.reference,
                self.line,
                e.callback_due.format("%A %-d %B"),
            ),
            TextKind::Unreachable => format!(
                "Liverpool hospitals enquiry line: we tried to call you back about reference {} but could not reach you. \
                 Please call us on {}, {}.",
                e.reference, self.line, self.hours,
            ),
        }
    }

    /// Sends `kind` for `e` if it is switched on, the number is a UK mobile and it was not
    /// sent before.
    pub async fn send(&self, kind: TextKind, e: &Enquiry) -> Sent {
        let Some(from) = self.from.as_deref().filter(|_| self.enabled(kind)) else {
            return Sent::Skipped;
        };
        let Some(number) = UkNumber::parse(&e.callback_number).filter(UkNumber::is_mobile) else {
            return Sent::Skipped;
        };
        match self.store.texts(&e.id).await {
            Ok(sent) if sent.iter().any(|(k, _)| k == kind.as_str()) => return Sent::Skipped,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "could not check the texts already sent; not sending");
                return Sent::Failed;
            }
        }
        let result = self
            .api
            .send_sms(number.e164(), from, &self.body(kind, e))
            .await;
        let (status, sid, outcome) = match &result {
            Ok(sid) => ("sent", Some(sid.as_str()), Sent::Sent),
            Err(err) => {
                tracing::warn!(error = %err, kind = kind.as_str(), enquiry = %e.id, "text message not sent");
                ("failed", None, Sent::Failed)
            }
        };
        if let Err(err) = self
            .store
            .record_text(&e.id, kind.as_str(), self.clock.now(), status, sid)
            .await
        {
            tracing::warn!(error = %err, "could not log a text message");
        }
        let entry = crate::staff::audit::NewEntry {
            at: self.clock.now(),
            actor_id: None,
            actor: "system".into(),
            action: crate::staff::audit::Action::TextSent,
            target: Some(e.id.clone()),
            address: None,
            detail: Some(format!("{} {status}", kind.as_str())),
        };
        if let Err(err) = self.store.append_audit(&entry).await {
            tracing::warn!(error = %err, "could not audit a text message");
        }
        tracing::info!(kind = kind.as_str(), enquiry = %e.id, status, "text message");
        outcome
    }

    /// As [`Self::send`], in the background (never delays a call or a page).
    pub fn send_later(self: &Arc<Self>, kind: TextKind, e: Enquiry) {
        if !self.enabled(kind) {
            return;
        }
        let texts = self.clone();
        tokio::spawn(async move {
            texts.send(kind, &e).await;
        });
    }
}
