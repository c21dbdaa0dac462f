//! A call's way through the line: builds the engine's context from the opening hours,
//! the call's answers and its enquiry; applies the engine's effects through the
//! [`Store`] (idempotently, so a retried webhook changes nothing); and hands back a
//! [`Reply`] that the webhooks render as TwiML and `helpline simulate` prints.

pub mod queue;
pub mod twiml;
pub mod webhooks;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::clock::Clock;
use crate::enquiries::{Enquiry, NewEnquiry};
use crate::flows::engine::{self, QueueExit};
use crate::flows::{Answers, Context, Flow, Input, QueueWait, Turn, Wait};
use crate::hours::live::LiveHours;
use crate::hours::{speech, LONDON};
use crate::phone::UkNumber;
use crate::store::{CallEnd, NewCall, NewStep, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the flow reached an enquiry without a callback number, hospital or category")]
    IncompleteEnquiry,
    #[error(transparent)]
    Outbox(#[from] crate::enquiries::outbox::OutboxError),
}

/// What the caller hears next, and what happens after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub says: Vec<String>,
    /// `says[ask_from..]` is the question; the rest is said in full before it.
    pub ask_from: usize,
    pub wait: Wait,
    /// The step number the caller's next answer will carry.
    pub next_seq: u32,
    /// The enquiry stored during this turn, if any.
    pub stored: Option<Enquiry>,
}

/// The step a turn answers: its number, when, and whether it is new (not a retry).
#[derive(Debug, Clone, Copy)]
struct StepDone {
    seq: u32,
    now: DateTime<Utc>,
    fresh: bool,
}

/// Who is calling, from the webhook.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub call_sid: String,
    /// Twilio's `From`: E.164, or `anonymous` / `unknown` / empty / `client:…` / `sip:…`;
    /// only an E.164 UK number is offered back to the caller ([`UkNumber::from_caller_id`]).
    pub from: Option<String>,
}

/// The call-handling service: shared by the webhooks and the simulator.
#[derive(Debug, Clone)]
pub struct Calls {
    pub flow: Arc<Flow>,
    /// The hours in force, synced with the database at each webhook.
    pub hours: Arc<LiveHours>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Queue and enquiry events for every instance.
    pub events: Arc<crate::events::Events>,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::ops::Metrics>,
    /// Calls from `helpline simulate`, never counted in statistics.
    pub simulated: bool,
    /// Staff test phones (`HELPLINE_TEST_NUMBERS`): their calls are served like any other
    /// (enquiries, texts, the queue) but stored as simulated, so never counted.
    pub test_numbers: Arc<crate::config::TestNumbers>,
    /// A caller who hangs up in the queue after this long is listed for a call back.
    pub missed_after_seconds: u64,
    /// Open enquiries a number may have; further requests are folded into the oldest.
    pub max_open_per_number: u32,
    /// Text messages to callers (the reference, when switched on).
    pub texts: Arc<crate::enquiries::texts::Texts>,
    /// The flow with the managers' published messages in place.
    pub content: Arc<crate::messages::LiveContent>,
    /// Where call-back requests wait when the database cannot take them (none for
    /// `helpline simulate`).
    pub outbox: Option<Arc<crate::enquiries::outbox::Outbox>>,
}

impl Calls {
    /// The call flow in force: `flow` with the managers' published messages in place.
    pub fn flow(&self) -> Arc<Flow> {
        self.content.flow()
    }

    /// Now, to the microsecond: what both databases store exactly.
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        self.clock.now().trunc_subsecs(6)
    }

    /// Whether the call counts in statistics and metrics: not from `helpline simulate`, nor
    /// from a test number.
    fn counted(&self, call: &CallInfo) -> bool {
        !self.simulated && !self.is_test_call(call)
    }

    fn is_test_call(&self, call: &CallInfo) -> bool {
        call.from
            .as_deref()
            .is_some_and(|from| self.test_numbers.contains(from))
    }

    /// Tells live pages on every instance, in the background: an event never delays or
    /// fails a call.
    async fn publish(&self, event: crate::events::Event) {
        let events = self.events.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(std::time::Duration::from_secs(5), events.publish(&event))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "event not published"),
                Err(_) => tracing::warn!("event not published: the database was too slow"),
            }
        });
    }

    /// The context at `now`, without touching the database (used for the apology too).
    pub fn base_context(&self, call: &CallInfo, now: DateTime<Utc>) -> Context {
        let hours = self.hours.get();
        let status = hours.status(now);
        let caller = call.from.as_deref().and_then(UkNumber::from_caller_id);
        let mut ctx = Context {
            open: status.open,
            caller,
            ..Default::default()
        };
        let next_open = status
            .next_open
            .or_else(|| hours.next_open(now))
            .map(|t| speech::spoken_next_open(now, t))
            .unwrap_or_else(|| "on the next working day".to_string());
        ctx.vars.insert("next_open", next_open);
        ctx.vars.insert("opening_hours", hours.describe_schedule());
        ctx.vars.insert("closed_reason", status.reason.spoken());
        ctx.vars.insert(
            "callback_working_days",
            self.flow.settings.callback_working_days.to_string(),
        );
        if let Some(n) = &ctx.caller {
            ctx.vars
                .insert("caller_last_digits", n.spoken_last_digits(4));
        }
        ctx
    }

    async fn context(
        &self,
        call: &CallInfo,
        now: DateTime<Utc>,
    ) -> Result<(Context, Answers), CallError> {
        let mut ctx = self.base_context(call, now);
        let answers = self.store.answers(&call.call_sid).await?;
        if let Some(n) = &answers.callback_number {
            ctx.vars.insert("callback_number", n.spoken());
        }
        if let Some(e) = self.store.enquiry_for_call(&call.call_sid).await? {
            add_reference_vars(&mut ctx, &e.reference, e.callback_due);
        }
        Ok((ctx, answers))
    }

    /// Makes sure the call is on record (a step may arrive for a call whose first
    /// webhook went to an instance that lost it, or after a restore).
    async fn ensure_call(&self, call: &CallInfo, now: DateTime<Utc>) -> Result<(), CallError> {
        // Closures and calendar changes from any instance apply at once (before the call is
        // recorded as in or out of hours); if the database cannot say, the hours already in
        // force still serve the caller.
        if let Err(e) = self.hours.sync(self.store.as_ref()).await {
            tracing::warn!(error = %e, "could not check for opening-hours changes; using the hours in force");
        }
        // A newly published "latest update" applies from the caller's next step.
        if let Err(e) = self.content.sync(self.store.as_ref()).await {
            tracing::warn!(error = %e, "could not check for new messages; using the words in force");
        }
        self.store
            .record_call(&NewCall {
                call_sid: call.call_sid.clone(),
                caller: call.from.clone(),
                started_at: now,
                in_hours: self.hours.get().is_open(now),
                // The column means "never counted in statistics".
                simulated: self.simulated,
                test_call: self.is_test_call(call),
            })
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_step(
        &self,
        call: &CallInfo,
        seq: u32,
        node: &str,
        input: &str,
        outcome: &str,
        path: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, CallError> {
        let fresh = self
            .store
            .record_step(&NewStep {
                call_sid: call.call_sid.clone(),
                seq,
                node: node.to_string(),
                input: input.to_string(),
                outcome: outcome.to_string(),
                at: now,
                path: path.to_vec(),
            })
            .await?;
        tracing::info!(call_sid = %call.call_sid, seq, node, outcome, retry = !fresh, "call step");
        // Counted once per step: a retried webhook changes no figure.
        if fresh && self.counted(call) {
            let counted = match outcome {
                "start-open" | "start-closed" => Some("started"),
                "gave-up" => Some("gave-up"),
                "bridged" => Some("answered"),
                "hung-up-in-queue" => Some("abandoned"),
                "left-queue" => Some("left-for-callback"),
                "queue-failed" => Some("queue-failed"),
                _ => None,
            };
            if let Some(c) = counted {
                self.metrics.call(c);
            }
        }
        Ok(fresh)
    }

    /// A new inbound call (`POST /twilio/voice`).
    pub async fn incoming(&self, call: &CallInfo) -> Result<Reply, CallError> {
        let now = self.now();
        self.ensure_call(call, now).await?;
        let (ctx, answers) = self.context(call, now).await?;
        let turn = engine::start(&self.flow(), &ctx, &answers);
        let fresh = self
            .record_step(
                call,
                0,
                &self.flow.settings.start,
                "start",
                if ctx.open {
                    "start-open"
                } else {
                    "start-closed"
                },
                &turn.path,
                now,
            )
            .await?;
        self.finish(call, turn, ctx, answers, StepDone { seq: 0, now, fresh })
            .await
    }

    /// The caller's answer at `node` (a Gather, Record or Redirect action).
    pub async fn answer(
        &self,
        call: &CallInfo,
        node: &str,
        seq: u32,
        attempt: u32,
        input: &Input,
    ) -> Result<Reply, CallError> {
        let now = self.now();
        self.ensure_call(call, now).await?;
        let (ctx, answers) = self.context(call, now).await?;
        let turn = engine::respond(&self.flow(), node, attempt, input, &ctx, &answers);
        let fresh = self
            .record_step(
                call,
                seq,
                node,
                input.kind(),
                &turn.outcome,
                &turn.path,
                now,
            )
            .await?;
        self.finish(call, turn, ctx, answers, StepDone { seq, now, fresh })
            .await
    }

    /// The caller left the adviser queue at `node` (the `<Enqueue action>`).
    pub async fn queue_done(
        &self,
        call: &CallInfo,
        node: &str,
        seq: u32,
        result: &str,
        wait_seconds: Option<i64>,
    ) -> Result<Reply, CallError> {
        let now = self.now();
        self.ensure_call(call, now).await?;
        self.store
            .queue_left(&call.call_sid, result, wait_seconds, now)
            .await?;
        let (ctx, answers) = self.context(call, now).await?;
        let turn = engine::queue_exit(
            &self.flow(),
            node,
            QueueExit::from_twilio(result),
            &ctx,
            &answers,
        );
        let fresh = self
            .record_step(call, seq, node, "queue", &turn.outcome, &turn.path, now)
            .await?;
        if fresh {
            self.publish(crate::events::Event::QueueLeft {
                call_sid: call.call_sid.clone(),
                result: result.to_string(),
            })
            .await;
            if result == "hangup" {
                self.missed_in_queue(call, &answers, wait_seconds, now)
                    .await?;
            }
        }
        self.finish(call, turn, ctx, answers, StepDone { seq, now, fresh })
            .await
    }

    /// A caller who hung up in the queue after waiting a while, from a number we can ring,
    /// is listed for a call back as "missed in queue": one entry per number, folded into
    /// an open enquiry from the same number when there is one.
    async fn missed_in_queue(
        &self,
        call: &CallInfo,
        answers: &Answers,
        wait_seconds: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<(), CallError> {
        let waited = wait_seconds.unwrap_or(0);
        if self.simulated || u64::try_from(waited).unwrap_or(0) < self.missed_after_seconds {
            return Ok(());
        }
        let Some(number) = call.from.as_deref().and_then(UkNumber::from_caller_id) else {
            return Ok(());
        };
        if let Some(open) = self.store.open_enquiry_for_number(number.e164()).await? {
            self.store.count_missed_call(&open.id).await?;
            return Ok(());
        }
        let joined = self
            .store
            .call(&call.call_sid)
            .await?
            .and_then(|c| c.queue_joined_at)
            .unwrap_or(now - chrono::Duration::seconds(waited));
        let enquiry = self
            .store
            .create_enquiry(&NewEnquiry {
                call_sid: call.call_sid.clone(),
                callback_number: number,
                trust: answers.trust.unwrap_or(crate::enquiries::Trust::NotSure),
                category: answers
                    .category
                    .unwrap_or(crate::enquiries::Category::Other),
                recording: None,
                created_at: now,
                callback_due: self.callback_due(now),
                source: crate::enquiries::Source::MissedInQueue,
                waiting_since: joined,
            })
            .await?;
        tracing::info!(call_sid = %call.call_sid, enquiry = %enquiry.id, "caller missed in the queue listed for a call back");
        self.publish(crate::events::Event::EnquiryCreated { id: enquiry.id })
            .await;
        Ok(())
    }

    /// The date promised for a call back asked for at `now`.
    fn callback_due(&self, now: DateTime<Utc>) -> chrono::NaiveDate {
        let today = now.with_timezone(&LONDON).date_naive();
        self.hours
            .get()
            .working_days_after(today, self.flow.settings.callback_working_days)
    }

    /// What a caller waiting in the queue hears now (`position` as Twilio gave it, if it did).
    pub async fn queue_wait(
        &self,
        call: &CallInfo,
        node: &str,
        position: Option<u32>,
    ) -> Result<Option<QueueWait>, CallError> {
        let now = self.now();
        // The line may have closed since the caller joined: know it now.
        if let Err(e) = self.hours.sync(self.store.as_ref()).await {
            tracing::warn!(error = %e, "could not check for opening-hours changes; using the hours in force");
        }
        let ctx = self.base_context(call, now);
        let estimate = match position {
            Some(p) if ctx.open => {
                let since = now - chrono::Duration::minutes(queue::HISTORY_MINUTES);
                queue::estimate(&self.store.answered_since(since).await?, p)
            }
            _ => None,
        };
        Ok(engine::queue_waiting(
            &self.flow(),
            node,
            position,
            estimate,
            &ctx,
        ))
    }

    /// Twilio's status callback: the call is over.
    pub async fn ended(
        &self,
        call_sid: &str,
        status: &str,
        duration_seconds: Option<i64>,
    ) -> Result<(), CallError> {
        self.store
            .call_ended(&CallEnd {
                call_sid: call_sid.to_string(),
                status: status.to_string(),
                duration_seconds,
                at: self.now(),
            })
            .await?;
        tracing::info!(call_sid, status, "call ended");
        Ok(())
    }

    /// Valid words for when something failed inside the service: never silence.
    pub fn apology(&self, call: &CallInfo) -> Reply {
        self.metrics.call("failed");
        let ctx = self.base_context(call, self.now());
        let turn = engine::apology(&self.flow(), &ctx);
        Reply {
            ask_from: turn.ask_from,
            says: turn.says,
            wait: turn.wait,
            next_seq: 0,
            stored: None,
        }
    }

    /// Applies a turn's effects, storing the enquiry before its reference is spoken.
    async fn finish(
        &self,
        call: &CallInfo,
        turn: Turn,
        mut ctx: Context,
        mut answers: Answers,
        step: StepDone,
    ) -> Result<Reply, CallError> {
        let StepDone { seq, now, fresh } = step;
        let saving = matches!(turn.wait, Wait::SaveEnquiry { .. }) && self.outbox.is_some();
        for a in &turn.answers {
            match self.store.save_answer(&call.call_sid, a).await {
                Ok(()) => {}
                // The answers that make the request are kept with it in the outbox.
                Err(e) if saving => {
                    tracing::warn!(call_sid = %call.call_sid, error = %e, "answer not stored; the request goes to the outbox if it must");
                }
                Err(e) => return Err(e.into()),
            }
            answers.apply(a);
        }
        let mut says = turn.says;
        let mut ask_from = turn.ask_from;
        let mut wait = turn.wait;
        let mut stored = None;
        if let Wait::SaveEnquiry { then } = &wait {
            // A retried webhook for a request already in the outbox hears its reference
            // again, even if the database is back before the replay.
            let waiting = match &self.outbox {
                Some(outbox) => outbox.pending(&call.call_sid).await,
                None => None,
            };
            let enquiry = if let Some(kept) = waiting {
                add_reference_vars(&mut ctx, &kept.reference, kept.callback_due);
                None
            } else {
                match self.save_enquiry(call, &answers, now).await {
                    Ok(enquiry) => Some(enquiry),
                    Err(CallError::Store(e)) if self.outbox.is_some() => {
                        tracing::error!(call_sid = %call.call_sid, error = %e, "the database cannot store the enquiry; keeping it in the outbox");
                        let kept = self.keep_in_outbox(call, &answers, now).await?;
                        add_reference_vars(&mut ctx, &kept.reference, kept.callback_due);
                        None
                    }
                    Err(e) => return Err(e),
                }
            };
            // Folded into an earlier open enquiry (too many from one number): the caller hears
            // that one's reference; nobody is told of a new one and no text goes again.
            // (Kept in the outbox: staff learn of it, and no text goes, when it is replayed.)
            let new = enquiry
                .as_ref()
                .is_some_and(|e| e.call_sid == call.call_sid);
            if let Some(enquiry) = &enquiry {
                add_reference_vars(&mut ctx, &enquiry.reference, enquiry.callback_due);
            }
            let next = engine::resume(&self.flow(), then, &ctx, &answers);
            ask_from = says.len() + next.ask_from;
            says.extend(next.says);
            wait = match next.wait {
                // Two enquiries in one turn cannot be valid; end politely.
                Wait::SaveEnquiry { .. } => Wait::Hangup,
                w => w,
            };
            if let Some(enquiry) = enquiry.as_ref().filter(|_| fresh && new) {
                self.publish(crate::events::Event::EnquiryCreated {
                    id: enquiry.id.clone(),
                })
                .await;
            }
            // Counted once: a retried webhook finds its step already recorded.
            if fresh && self.counted(call) {
                self.metrics.call("callback-requested");
            }
            // A test call gets its text like any caller; only `helpline simulate` sends none.
            if let Some(enquiry) = enquiry.as_ref().filter(|_| fresh && new && !self.simulated) {
                self.texts.send_later(
                    crate::enquiries::texts::TextKind::Reference,
                    enquiry.clone(),
                );
            }
            stored = enquiry;
        }
        if let Wait::Queue { .. } = &wait {
            self.store.queue_joined(&call.call_sid, now).await?;
            if fresh {
                self.publish(crate::events::Event::QueueJoined {
                    call_sid: call.call_sid.clone(),
                })
                .await;
            }
        }
        Ok(Reply {
            says,
            ask_from,
            wait,
            next_seq: seq.saturating_add(1),
            stored,
        })
    }

    /// The request written to the outbox (or found there, for a retried webhook) under a
    /// reference made here: on disk before the caller hears it.
    async fn keep_in_outbox(
        &self,
        call: &CallInfo,
        answers: &Answers,
        now: DateTime<Utc>,
    ) -> Result<crate::enquiries::outbox::OutboxRecord, CallError> {
        let (Some(outbox), Some(number), Some(trust), Some(category)) = (
            &self.outbox,
            &answers.callback_number,
            answers.trust,
            answers.category,
        ) else {
            return Err(CallError::IncompleteEnquiry);
        };
        let kept = outbox
            .keep(&NewEnquiry {
                call_sid: call.call_sid.clone(),
                callback_number: number.clone(),
                trust,
                category,
                recording: answers.message.clone(),
                created_at: now,
                callback_due: self.callback_due(now),
                source: crate::enquiries::Source::CallbackRequest,
                waiting_since: now,
            })
            .await?;
        self.metrics.outbox_records(outbox.len());
        tracing::warn!(call_sid = %call.call_sid, reference = %kept.reference, waiting = outbox.len(), "enquiry kept in the outbox");
        Ok(kept)
    }

    async fn save_enquiry(
        &self,
        call: &CallInfo,
        answers: &Answers,
        now: DateTime<Utc>,
    ) -> Result<Enquiry, CallError> {
        let (Some(number), Some(trust), Some(category)) =
            (&answers.callback_number, answers.trust, answers.category)
        else {
            return Err(CallError::IncompleteEnquiry);
        };
        // A retried webhook: the same answer as the first time.
        if let Some(done) = self.store.enquiry_for_call(&call.call_sid).await? {
            return Ok(done);
        }
        // Rate limit per number: a robocaller (or a worried caller ringing again and again)
        // cannot fill the call-back list; their request joins the oldest open one. (Two
        // requests from one number at the same instant may both pass: at most one over.)
        let limit = i64::from(self.max_open_per_number.max(1));
        if self.store.open_enquiry_count(number.e164()).await? >= limit {
            if let Some(open) = self.store.open_enquiry_for_number(number.e164()).await? {
                if self
                    .store
                    .fold_request(&call.call_sid, &open.id, now)
                    .await?
                {
                    tracing::warn!(call_sid = %call.call_sid, enquiry = %open.id, limit,
                        "call-back request folded into an open enquiry: the number has the most allowed");
                }
                return Ok(open);
            }
        }
        let due = self.callback_due(now);
        // A caller who left the queue to ask keeps the time they joined it.
        let waiting_since = self
            .store
            .call(&call.call_sid)
            .await?
            .and_then(|c| c.queue_joined_at)
            .map_or(now, |joined| joined.min(now));
        let enquiry = self
            .store
            .create_enquiry(&NewEnquiry {
                call_sid: call.call_sid.clone(),
                callback_number: number.clone(),
                trust,
                category,
                recording: answers.message.clone(),
                created_at: now,
                callback_due: due,
                source: crate::enquiries::Source::CallbackRequest,
                waiting_since,
            })
            .await?;
        tracing::info!(call_sid = %call.call_sid, reference = %enquiry.reference, "enquiry stored");

        Ok(enquiry)
    }
}

/// The reference the caller is given and the day we promise to call back by (of a stored
/// enquiry, or of a request kept in the outbox).
fn add_reference_vars(ctx: &mut Context, reference: &crate::enquiries::Reference, due: NaiveDate) {
    ctx.vars.insert("reference", reference.spoken());
    ctx.vars.insert("callback_by", speech::spoken_date(due));
}
