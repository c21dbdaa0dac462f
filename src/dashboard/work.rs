//! What handlers do to enquiries and the queue, shared by the pages and the JSON API:
//! each action checks who may do it, does it, audits it and tells other screens.

use chrono::Duration;

use super::{Dashboard, Staff, WebError};
use crate::enquiries::{after_attempt, AfterAttempt, Enquiry, Filter, Outcome, Status};
use crate::events::Event;
use crate::staff::audit::Action;
use crate::staff::Role;
use crate::twilio::rest::RecordingAudio;

pub use crate::enquiries::texts::{TextKind, Texts};

/// The longest note kept.
pub const MAX_NOTE: usize = 2000;

/// An open enquiry as a list shows it: no full number.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedEnquiry {
    pub id: String,
    pub reference: String,
    pub number: String,
    pub trust: String,
    pub category: String,
    pub status: String,
    pub source: String,
    pub waiting_since: chrono::DateTime<chrono::Utc>,
    /// Minutes waited within the line's opening hours.
    pub working_minutes_waited: i64,
    pub callback_due: chrono::NaiveDate,
    pub overdue: bool,
    pub next_attempt_on: Option<chrono::NaiveDate>,
    pub attempts: u32,
    pub missed_calls: u32,
    /// Who holds it (e-mail), when claimed and not lapsed.
    pub claimed_by: Option<String>,
    pub claimed_by_me: bool,
    pub has_recording: bool,
}

impl Dashboard {
    fn stale_before(&self) -> chrono::DateTime<chrono::Utc> {
        let minutes = i64::try_from(self.settings.claim_minutes).unwrap_or(20);
        self.now() - Duration::minutes(minutes)
    }

    fn today(&self) -> chrono::NaiveDate {
        self.now().with_timezone(&crate::hours::LONDON).date_naive()
    }

    /// Whether an enquiry's claim is held (and not lapsed) by someone; returns their id.
    pub fn holder<'a>(&self, e: &'a Enquiry) -> Option<&'a str> {
        let at = e.claimed_at?;
        (at >= self.stale_before())
            .then_some(e.claimed_by.as_deref())
            .flatten()
    }

    /// The enquiry `id`, if this member of staff may see it (404 otherwise: an id that is
    /// not theirs to see looks exactly like one that does not exist).
    pub async fn visible(&self, staff: &Staff, id: &str) -> Result<Enquiry, WebError> {
        if !staff.user.role.allows(Role::Handler) || id.len() > 64 {
            return Err(WebError::NotFound);
        }
        self.store.enquiry(id).await?.ok_or(WebError::NotFound)
    }

    /// Open enquiries, the longest waiting first, for a list.
    pub async fn callback_list(
        &self,
        staff: &Staff,
        filter: &Filter,
    ) -> Result<Vec<ListedEnquiry>, WebError> {
        let enquiries = self.store.open_enquiries(filter).await?;
        let hours = self.hours.get();
        let now = self.now();
        let today = self.today();
        let mut emails = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(enquiries.len());
        for e in enquiries {
            let holder = match self.holder(&e) {
                Some(id) => {
                    if !emails.contains_key(id) {
                        let email = self
                            .store
                            .user(id)
                            .await?
                            .map(|u| u.email)
                            .unwrap_or_default();
                        emails.insert(id.to_string(), email);
                    }
                    emails.get(id).cloned()
                }
                None => None,
            };
            out.push(ListedEnquiry {
                claimed_by_me: self.holder(&e) == Some(staff.user.id.as_str()),
                working_minutes_waited: hours
                    .working_time_between(e.waiting_since, now)
                    .num_minutes(),
                overdue: e.callback_due < today,
                number: e.masked_number(),
                id: e.id,
                reference: e.reference.to_string(),
                trust: e.trust.to_string(),
                category: e.category.to_string(),
                status: e.status.to_string(),
                source: e.source.to_string(),
                waiting_since: e.waiting_since,
                callback_due: e.callback_due,
                next_attempt_on: e.next_attempt_on,
                attempts: e.attempts,
                missed_calls: e.missed_calls,
                claimed_by: holder,
                has_recording: e.recording_url.is_some(),
            });
        }
        Ok(out)
    }

    pub async fn claim(&self, staff: &Staff, id: &str) -> Result<Enquiry, WebError> {
        let e = self.visible(staff, id).await?;
        if !e.status.is_open() {
            return Err(WebError::Conflict("This enquiry is closed.".into()));
        }
        let won = self
            .store
            .claim_enquiry(&e.id, &staff.user.id, self.now(), self.stale_before())
            .await?;
        if !won {
            return Err(WebError::Conflict(
                "Another handler is working on this enquiry. Choose a different one.".into(),
            ));
        }
        self.claimed(staff, &e.id).await;
        self.visible(staff, id).await
    }

    async fn claimed(&self, staff: &Staff, id: &str) {
        self.audit(
            Some(&staff.user),
            Action::EnquiryClaimed,
            Some(id),
            &staff.address,
            None,
        )
        .await;
        self.publish(Event::EnquiryClaimed {
            id: id.to_string(),
            by: staff.user.id.clone(),
        })
        .await;
    }

    /// Claims the longest-waiting enquiry that is due today and free.
    pub async fn claim_next(&self, staff: &Staff) -> Result<Option<Enquiry>, WebError> {
        // On PostgreSQL the row chosen can be taken by another handler between the choice and
        // the update, which then finds nothing: try again before saying none is due.
        let mut e = None;
        for _ in 0..3 {
            e = self
                .store
                .claim_next_enquiry(
                    &staff.user.id,
                    self.now(),
                    self.stale_before(),
                    self.today(),
                )
                .await?;
            if e.is_some() {
                break;
            }
        }
        if let Some(e) = &e {
            self.claimed(staff, &e.id).await;
        }
        Ok(e)
    }

    pub async fn release(&self, staff: &Staff, id: &str) -> Result<(), WebError> {
        let e = self.visible(staff, id).await?;
        if self.store.release_claim(&e.id, &staff.user.id).await? {
            self.audit(
                Some(&staff.user),
                Action::ClaimReleased,
                Some(&e.id),
                &staff.address,
                None,
            )
            .await;
            self.publish(Event::EnquiryClaimed {
                id: e.id,
                by: String::new(),
            })
            .await;
        }
        Ok(())
    }

    /// The full number (audited).
    pub async fn reveal(&self, staff: &Staff, id: &str) -> Result<String, WebError> {
        let e = self.visible(staff, id).await?;
        self.audit_first(
            Some(&staff.user),
            Action::NumberRevealed,
            Some(&e.id),
            &staff.address,
            None,
        )
        .await?;
        Ok(crate::phone::UkNumber::parse(&e.callback_number)
            .map(|n| n.national())
            .unwrap_or(e.callback_number))
    }

    /// The caller's recorded message, streamed from Twilio (audited).
    pub async fn recording(&self, staff: &Staff, id: &str) -> Result<RecordingAudio, WebError> {
        let e = self.visible(staff, id).await?;
        let url = e.recording_url.as_deref().ok_or(WebError::NotFound)?;
        self.audit_first(
            Some(&staff.user),
            Action::RecordingPlayed,
            Some(&e.id),
            &staff.address,
            None,
        )
        .await?;
        Ok(self.twilio.recording_audio(url).await?)
    }

    fn handler_phone(staff: &Staff) -> Result<&str, WebError> {
        staff.user.phone.as_deref().ok_or_else(|| {
            WebError::BadRequest(
                "There is no phone number on your account to ring. Add it on the Account page first.".into(),
            )
        })
    }

    /// Rings the handler's phone; when they answer, Twilio connects them to the caller with
    /// the line's number as caller ID. The handler must hold the claim.
    pub async fn call_back(&self, staff: &Staff, id: &str) -> Result<(), WebError> {
        let e = self.visible(staff, id).await?;
        if self.holder(&e) != Some(staff.user.id.as_str()) {
            return Err(WebError::Conflict(
                "Claim this enquiry before calling back.".into(),
            ));
        }
        let phone = Self::handler_phone(staff)?;
        let url = format!(
            "{}/twilio/connect/enquiry/{}?handler={}",
            self.public_url, e.id, staff.user.id
        );
        self.twilio
            .create_call(phone, &self.settings.line_number, &url, None)
            .await?;
        self.audit(
            Some(&staff.user),
            Action::CallBackStarted,
            Some(&e.id),
            &staff.address,
            None,
        )
        .await;
        Ok(())
    }

    /// Connects the longest-waiting caller in the queue to the handler's phone. Returns
    /// false when nobody is waiting.
    pub async fn take_next_caller(&self, staff: &Staff) -> Result<bool, WebError> {
        let _ = Self::handler_phone(staff)?;
        let url = format!(
            "{}/twilio/connect/handler/{}",
            self.public_url, staff.user.id
        );
        let taken = self.twilio.dequeue_front(&self.queue_name, &url).await?;
        if let Some(call_sid) = &taken {
            // Out of the queue now (Twilio's own report, `redirected`, may follow): the live
            // queue drops them at once, and the wait counts for the estimate callers hear.
            let now = self.now();
            let waited = self
                .store
                .call(call_sid)
                .await?
                .and_then(|c| c.queue_joined_at)
                .map(|joined| (now - joined).num_seconds().max(0));
            self.store
                .queue_left(call_sid, "redirected", waited, now)
                .await?;
            self.publish(Event::QueueLeft {
                call_sid: call_sid.clone(),
                result: "redirected".into(),
            })
            .await;
            self.audit(
                Some(&staff.user),
                Action::CallerTaken,
                Some(call_sid),
                &staff.address,
                None,
            )
            .await;
        }
        Ok(taken.is_some())
    }

    /// Records how a call-back attempt went and applies the rule (retry on the next
    /// working day, close after the last attempt). The handler must hold the claim.
    pub async fn record_outcome(
        &self,
        staff: &Staff,
        id: &str,
        outcome: Outcome,
    ) -> Result<AfterAttempt, WebError> {
        let e = self.visible(staff, id).await?;
        if !e.status.is_open() {
            return Err(WebError::Conflict("This enquiry is already closed.".into()));
        }
        if self.holder(&e) != Some(staff.user.id.as_str()) {
            return Err(WebError::Conflict(
                "Claim this enquiry before recording an outcome (your claim may have lapsed)."
                    .into(),
            ));
        }
        let today = self.today();
        if matches!(outcome, Outcome::NoAnswer | Outcome::Voicemail) {
            if let Some(due) = e.next_attempt_on.filter(|due| *due > today) {
                return Err(WebError::Conflict(format!(
                    "The next attempt is due on {}: unanswered attempts are made on different working days.",
                    due.format("%A %-d %B")
                )));
            }
        }
        let effect = after_attempt(
            outcome,
            e.unanswered,
            self.settings.callback_attempts,
            self.today(),
            &self.hours.get(),
        );
        let done = self
            .store
            .record_attempt(
                &e.id,
                &staff.user.id,
                e.attempts,
                outcome,
                &effect,
                self.now(),
            )
            .await?;
        if !done {
            return Err(WebError::Conflict(
                "The enquiry changed while you were working on it. Reload and try again.".into(),
            ));
        }
        self.audit(
            Some(&staff.user),
            Action::OutcomeRecorded,
            Some(&e.id),
            &staff.address,
            Some(outcome.as_str()),
        )
        .await;
        if effect.closed {
            self.audit(
                Some(&staff.user),
                Action::EnquiryClosed,
                Some(&e.id),
                &staff.address,
                Some(effect.status.as_str()),
            )
            .await;
        }
        if effect.status == Status::Unreachable {
            self.texts.send_later(TextKind::Unreachable, e.clone());
        }
        self.publish(Event::EnquiryClaimed {
            id: e.id,
            by: String::new(),
        })
        .await;
        Ok(effect)
    }

    pub async fn add_note(&self, staff: &Staff, id: &str, body: &str) -> Result<(), WebError> {
        let e = self.visible(staff, id).await?;
        let body: String = body
            .trim()
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .take(MAX_NOTE)
            .collect();
        if body.is_empty() {
            return Err(WebError::BadRequest("The note is empty.".into()));
        }
        self.store
            .add_note(&e.id, &staff.user.id, &body, self.now())
            .await?;
        self.audit(
            Some(&staff.user),
            Action::NoteAdded,
            Some(&e.id),
            &staff.address,
            None,
        )
        .await;
        Ok(())
    }

    /// Tells every screen, in the background.
    pub async fn publish(&self, event: Event) {
        let events = self.events.clone();
        tokio::spawn(async move {
            if let Err(e) = events.publish(&event).await {
                tracing::warn!(error = %e, "event not published");
            }
        });
    }
}
