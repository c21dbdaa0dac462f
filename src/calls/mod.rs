//! A call's way through the line: builds the engine's context from the opening hours,
//! the call's answers and its enquiry; applies the engine's effects through the
//! [`Store`] (idempotently, so a retried webhook changes nothing); and hands back a
//! [`Reply`] that the webhooks render as TwiML and `helpline simulate` prints.

pub mod queue;
pub mod state;
pub mod twiml;
pub mod webhooks;
pub mod writer;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::clock::Clock;
use crate::enquiries::{Enquiry, NewEnquiry};
use crate::flows::engine::{self, QueueExit};
use crate::flows::{Answers, Context, Flow, Input, QueueWait, Turn, Wait};
use crate::hours::live::LiveHours;
use crate::hours::{speech, LONDON};
use crate::phone::UkNumber;
use crate::store::{Applied, CallEnd, CallWrite, NewCall, NewStep, Store, StoreError};
use state::CallState;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the flow reached an enquiry without a callback number, hospital or category")]
    IncompleteEnquiry,
    #[error(transparent)]
    Outbox(#[from] crate::enquiries::outbox::OutboxError),
    #[error("the database did not answer within the webhook's time budget")]
    TooSlow,
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

/// A request for a call back made in a turn ([`Calls::call_back`]).
enum CallBack {
    /// The call has its reference already.
    Known((crate::enquiries::Reference, NaiveDate)),
    /// A new request, written in the same batch as its step.
    New {
        enquiry: NewEnquiry,
        reference: crate::enquiries::Reference,
    },
}

/// The step a turn answers, for the record (never what the caller said or keyed).
#[derive(Debug, Clone)]
struct StepTaken<'a> {
    seq: u32,
    node: &'a str,
    input: &'a str,
    now: DateTime<Utc>,
    /// When the webhook stops waiting for the database.
    deadline: Instant,
    /// The caller left the adviser queue at this step (Twilio's result and wait).
    queue_left: Option<(&'a str, Option<i64>)>,
    /// Recorded in place of the turn's own outcome (the start records open or closed).
    outcome: Option<&'static str>,
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
    /// Calls in progress as this instance last left them (answers without a database read).
    pub states: Arc<state::CallStates>,
    /// Records calls, steps and answers in batches.
    pub writer: Arc<writer::Writer>,
    /// How often changes made elsewhere (closures, calendar, messages) are looked for.
    pub recheck: Arc<state::Recheck>,
    /// How long a webhook waits for the database before answering from memory (and keeping
    /// a call-back request in the outbox).
    pub budget: std::time::Duration,
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

    /// The call's state for step `seq`: from memory when current ([`state`]), else from the
    /// database within the webhook's budget.
    async fn state(
        &self,
        call: &CallInfo,
        seq: u32,
        deadline: Instant,
    ) -> Result<CallState, CallError> {
        // Nothing is known of a call before its first step.
        if seq == 0 {
            return Ok(CallState::default());
        }
        if let Some(known) = self.states.for_step(&call.call_sid, seq) {
            return Ok(known);
        }
        let read = async {
            let answers = self.store.answers(&call.call_sid).await?;
            let enquiry = self.store.enquiry_for_call(&call.call_sid).await?;
            let joined = self.store.call(&call.call_sid).await?;
            Ok::<_, StoreError>((answers, enquiry, joined))
        };
        let (answers, enquiry, joined) = tokio::time::timeout_at(deadline, read)
            .await
            .map_err(|_| CallError::TooSlow)??;
        let mut enquiry = enquiry.map(|e| (e.reference, e.callback_due));
        // A request kept in the outbox has its reference there.
        if enquiry.is_none() {
            if let Some(outbox) = &self.outbox {
                enquiry = outbox
                    .pending(&call.call_sid)
                    .await
                    .map(|r| (r.reference, r.callback_due));
            }
        }
        Ok(CallState {
            seq: seq.saturating_sub(1),
            answers,
            enquiry,
            queue_joined_at: joined.as_ref().and_then(|c| c.queue_joined_at),
            on_record: joined.is_some(),
        })
    }

    /// The context and answers for step `seq`.
    async fn context(
        &self,
        call: &CallInfo,
        seq: u32,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<(Context, CallState), CallError> {
        let state = self.state(call, seq, deadline).await?;
        let mut ctx = self.base_context(call, now);
        if let Some(n) = &state.answers.callback_number {
            ctx.vars.insert("callback_number", n.spoken());
        }
        if let Some((reference, due)) = &state.enquiry {
            add_reference_vars(&mut ctx, reference, *due);
        }
        Ok((ctx, state))
    }

    /// When this webhook stops waiting for the database.
    fn deadline(&self) -> Instant {
        Instant::now() + self.budget
    }

    /// Catches up with changes made elsewhere (closures, the calendar, published messages),
    /// at most once per [`Recheck`](state::Recheck) interval and within the budget; if the
    /// database cannot say in time, what is in force serves the caller.
    async fn catch_up(&self, deadline: Instant) {
        if !self.recheck.due() {
            return;
        }
        let check = async {
            if let Err(e) = self.hours.sync(self.store.as_ref()).await {
                tracing::warn!(error = %e, "could not check for opening-hours changes; using the hours in force");
            }
            if let Err(e) = self.content.sync(self.store.as_ref()).await {
                tracing::warn!(error = %e, "could not check for new messages; using the words in force");
            }
        };
        if tokio::time::timeout_at(deadline, check).await.is_err() {
            tracing::warn!(
                "the database was too slow to check for changes; using what is in force"
            );
        }
    }

    /// Hands `writes` to the batched writer and waits for them within the budget (not at
    /// all while the database is failing). `None`: not known to be written yet (they will
    /// be, once the database takes them).
    async fn write(&self, writes: Vec<CallWrite>, deadline: Instant) -> Option<Vec<Applied>> {
        let healthy = self.writer.healthy();
        let written = self.writer.submit(writes);
        if !healthy {
            return None;
        }
        match tokio::time::timeout_at(deadline, written).await {
            Ok(Ok(Ok(fresh))) => Some(fresh),
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "call records not written yet; answering from memory");
                None
            }
            Ok(Err(_)) => None,
            Err(_) => {
                tracing::warn!(
                    "the database was too slow to record the step; answering from memory"
                );
                None
            }
        }
    }

    fn new_call(&self, call: &CallInfo, now: DateTime<Utc>) -> NewCall {
        NewCall {
            call_sid: call.call_sid.clone(),
            caller: call.from.clone(),
            started_at: now,
            in_hours: self.hours.get().is_open(now),
            // The column means "never counted in statistics".
            simulated: self.simulated,
            test_call: self.is_test_call(call),
        }
    }

    /// Logs a recorded step and counts it once (a retried webhook changes no figure).
    fn stepped(&self, call: &CallInfo, seq: u32, node: &str, outcome: &str, fresh: bool) {
        tracing::info!(call_sid = %call.call_sid, seq, node, outcome, retry = !fresh, "call step");
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
    }

    /// A new inbound call (`POST /twilio/voice`).
    pub async fn incoming(&self, call: &CallInfo) -> Result<Reply, CallError> {
        let now = self.now();
        let deadline = self.deadline();
        self.catch_up(deadline).await;
        let (ctx, state) = self.context(call, 0, now, deadline).await?;
        let turn = engine::start(&self.flow(), &ctx, &state.answers);
        let step = StepTaken {
            seq: 0,
            node: &self.flow.settings.start,
            input: "start",
            now,
            deadline,
            queue_left: None,
            outcome: Some(if ctx.open {
                "start-open"
            } else {
                "start-closed"
            }),
        };
        self.finish(call, turn, ctx, state, step).await
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
        let deadline = self.deadline();
        self.catch_up(deadline).await;
        let (ctx, state) = self.context(call, seq, now, deadline).await?;
        let turn = engine::respond(&self.flow(), node, attempt, input, &ctx, &state.answers);
        let step = StepTaken {
            seq,
            node,
            input: input.kind(),
            now,
            deadline,
            queue_left: None,
            outcome: None,
        };
        self.finish(call, turn, ctx, state, step).await
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
        let deadline = self.deadline();
        self.catch_up(deadline).await;
        let (ctx, state) = self.context(call, seq, now, deadline).await?;
        let turn = engine::queue_exit(
            &self.flow(),
            node,
            QueueExit::from_twilio(result),
            &ctx,
            &state.answers,
        );
        let answers = state.answers.clone();
        let joined = state.queue_joined_at;
        let step = StepTaken {
            seq,
            node,
            input: "queue",
            now,
            deadline,
            queue_left: Some((result, wait_seconds)),
            outcome: None,
        };
        let (reply, fresh) = self.turn(call, turn, ctx, state, step).await?;
        if fresh {
            self.publish(crate::events::Event::QueueLeft {
                call_sid: call.call_sid.clone(),
                result: result.to_string(),
            })
            .await;
            if result == "hangup" {
                // The caller has gone: listed for a call back in a task of its own, waited
                // for within the budget (a slow database finishes it later).
                let calls = self.clone();
                let call = call.clone();
                let listing = tokio::spawn(async move {
                    if let Err(e) = calls
                        .missed_in_queue(&call, &answers, joined, wait_seconds, now)
                        .await
                    {
                        tracing::error!(call_sid = %call.call_sid, error = %e, "caller missed in the queue not listed for a call back");
                    }
                });
                let _ = tokio::time::timeout(self.budget, listing).await;
            }
        }
        Ok(reply)
    }

    /// A caller who hung up in the queue after waiting a while, from a number we can ring,
    /// is listed for a call back as "missed in queue": one entry per number, folded into
    /// an open enquiry from the same number when there is one.
    async fn missed_in_queue(
        &self,
        call: &CallInfo,
        answers: &Answers,
        joined: Option<DateTime<Utc>>,
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
        // When the caller joined the queue, as this call's state has it; else as Twilio
        // reports the wait.
        let joined = joined.unwrap_or(now - chrono::Duration::seconds(waited));
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
        let deadline = self.deadline();
        // The line may have closed since the caller joined.
        self.catch_up(deadline).await;
        let ctx = self.base_context(call, now);
        let estimate = match position {
            Some(p) if ctx.open => {
                let since = now - chrono::Duration::minutes(queue::HISTORY_MINUTES);
                // No estimate is better than a caller kept waiting for one.
                match tokio::time::timeout_at(deadline, self.store.answered_since(since)).await {
                    Ok(waits) => queue::estimate(&waits?, p),
                    Err(_) => None,
                }
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
        let end = CallEnd {
            call_sid: call_sid.to_string(),
            status: status.to_string(),
            duration_seconds,
            at: self.now(),
        };
        self.states.forget(call_sid);
        // Kept by the writer until the database takes it, whatever happens here.
        self.write(vec![CallWrite::Ended(end)], self.deadline())
            .await;
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
        ctx: Context,
        state: CallState,
        step: StepTaken<'_>,
    ) -> Result<Reply, CallError> {
        Ok(self.turn(call, turn, ctx, state, step).await?.0)
    }

    /// As [`Calls::finish`], and whether the step was new (not a retried webhook).
    async fn turn(
        &self,
        call: &CallInfo,
        turn: Turn,
        mut ctx: Context,
        state: CallState,
        step: StepTaken<'_>,
    ) -> Result<(Reply, bool), CallError> {
        let StepTaken {
            seq, now, deadline, ..
        } = step;
        let CallState {
            mut answers,
            mut enquiry,
            mut queue_joined_at,
            on_record,
            ..
        } = state;
        for a in &turn.answers {
            answers.apply(a);
        }
        // The call (if new), the step and its answers, in one batch; the step is new unless
        // the database already had it, or (not known in time) this instance handled it.
        let retried = self.states.handled(&call.call_sid, seq);
        let outcome = step.outcome.unwrap_or(&turn.outcome).to_string();
        // The call's row once (a step answered from memory follows one that sent it).
        let mut writes = Vec::with_capacity(4);
        if !on_record {
            writes.push(CallWrite::Call(self.new_call(call, now)));
        }
        let step_at = writes.len();
        writes.extend([CallWrite::Step(NewStep {
            call_sid: call.call_sid.clone(),
            seq,
            node: step.node.to_string(),
            input: step.input.to_string(),
            outcome: outcome.clone(),
            at: now,
            path: turn.path.clone(),
        })]);
        if let Some((result, wait_seconds)) = step.queue_left {
            writes.push(CallWrite::QueueLeft {
                call_sid: call.call_sid.clone(),
                result: result.to_string(),
                wait_seconds,
                at: now,
            });
        }
        writes.extend(turn.answers.iter().map(|a| CallWrite::Answer {
            call_sid: call.call_sid.clone(),
            answer: a.clone(),
        }));
        // A request for a call back goes in the same batch as its step: one wait.
        let call_back = match &turn.wait {
            Wait::SaveEnquiry { .. } => Some(
                self.call_back(call, &answers, enquiry.as_ref(), queue_joined_at, now)
                    .await,
            ),
            _ => None,
        };
        let request_at = writes.len();
        let new_request = match &call_back {
            Some(Ok(CallBack::New { enquiry, reference })) => {
                writes.push(CallWrite::CallbackRequest {
                    enquiry: enquiry.clone(),
                    reference: reference.clone(),
                    max_open: self.max_open_per_number,
                });
                true
            }
            _ => false,
        };
        let written = if new_request && self.outbox.is_none() {
            // `helpline simulate`: the database or nothing, however long it takes.
            self.writer.submit(writes).await.ok().and_then(Result::ok)
        } else {
            self.write(writes, deadline).await
        };
        let fresh = match &written {
            Some(fresh) => fresh.get(step_at).map_or(!retried, Applied::is_new),
            None => !retried,
        };
        self.stepped(call, seq, step.node, &outcome, fresh);

        let mut says = turn.says;
        let mut ask_from = turn.ask_from;
        let mut wait = turn.wait;
        let mut stored = None;
        if let (Wait::SaveEnquiry { then }, Some(call_back)) = (&wait, call_back) {
            let applied =
                written.and_then(|mut w| (request_at < w.len()).then(|| w.swap_remove(request_at)));
            let (spoken, saved) = self.call_back_stored(call, call_back?, applied).await?;
            add_reference_vars(&mut ctx, &spoken.0, spoken.1);
            enquiry = Some(spoken);
            // Folded into an earlier open enquiry (too many from one number): the caller hears
            // that one's reference; nobody is told of a new one and no text goes again.
            // (Kept in the outbox: staff learn of it, and no text goes, when it is replayed.)
            let new = saved.as_ref().is_some_and(|e| e.call_sid == call.call_sid);
            let next = engine::resume(&self.flow(), then, &ctx, &answers);
            ask_from = says.len() + next.ask_from;
            says.extend(next.says);
            wait = match next.wait {
                // Two enquiries in one turn cannot be valid; end politely.
                Wait::SaveEnquiry { .. } => Wait::Hangup,
                w => w,
            };
            if let Some(e) = saved.as_ref().filter(|_| fresh && new) {
                self.publish(crate::events::Event::EnquiryCreated { id: e.id.clone() })
                    .await;
            }
            // Counted once: a retried webhook finds its step already recorded.
            if fresh && self.counted(call) {
                self.metrics.call("callback-requested");
            }
            // A test call gets its text like any caller; only `helpline simulate` sends none.
            if let Some(e) = saved.as_ref().filter(|_| fresh && new && !self.simulated) {
                self.texts
                    .send_later(crate::enquiries::texts::TextKind::Reference, e.clone());
            }
            stored = saved;
        }
        if let Wait::Queue { .. } = &wait {
            queue_joined_at.get_or_insert(now);
            self.write(
                vec![CallWrite::QueueJoined {
                    call_sid: call.call_sid.clone(),
                    at: now,
                }],
                deadline,
            )
            .await;
            if fresh {
                self.publish(crate::events::Event::QueueJoined {
                    call_sid: call.call_sid.clone(),
                })
                .await;
            }
        }
        self.states.remember(
            &call.call_sid,
            CallState {
                seq,
                answers,
                enquiry,
                queue_joined_at,
                on_record: true,
            },
        );
        let reply = Reply {
            says,
            ask_from,
            wait,
            next_seq: seq.saturating_add(1),
            stored,
        };
        Ok((reply, fresh))
    }

    /// The caller's request for a call back, made before its reference is spoken: the
    /// reference the call already has (a retried webhook, a second request in one call, or
    /// a request kept in the outbox), or a new request under a new reference, to be written
    /// with its step.
    async fn call_back(
        &self,
        call: &CallInfo,
        answers: &Answers,
        known: Option<&(crate::enquiries::Reference, NaiveDate)>,
        queue_joined_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<CallBack, CallError> {
        if let Some(known) = known {
            return Ok(CallBack::Known(known.clone()));
        }
        // A retried webhook for a request already in the outbox hears its reference again,
        // even if the database is back before the replay.
        if let Some(outbox) = &self.outbox {
            if let Some(kept) = outbox.pending(&call.call_sid).await {
                return Ok(CallBack::Known((kept.reference, kept.callback_due)));
            }
        }
        Ok(CallBack::New {
            enquiry: self.new_request(call, answers, queue_joined_at, now)?,
            reference: crate::enquiries::Reference::random(),
        })
    }

    /// Where the request for a call back is kept, with `applied` what the batched writer
    /// made of it within the budget: the enquiry the database stored, else the outbox under
    /// the same reference (a late database write and the outbox's replay then agree, and the
    /// replay stores nothing twice). The reference and date the caller is to hear, and the
    /// enquiry when the database took it.
    async fn call_back_stored(
        &self,
        call: &CallInfo,
        call_back: CallBack,
        applied: Option<Applied>,
    ) -> Result<((crate::enquiries::Reference, NaiveDate), Option<Enquiry>), CallError> {
        let (enquiry, reference) = match call_back {
            CallBack::Known(known) => return Ok((known, None)),
            CallBack::New { enquiry, reference } => (enquiry, reference),
        };
        match (applied, &self.outbox) {
            (Some(Applied::Enquiry(e)), _) => {
                if e.call_sid == call.call_sid {
                    tracing::info!(call_sid = %call.call_sid, reference = %e.reference, "enquiry stored");
                }
                Ok(((e.reference.clone(), e.callback_due), Some(*e)))
            }
            // `helpline simulate`: the database or nothing.
            (Some(_), None) => Err(CallError::IncompleteEnquiry),
            (None, None) => Err(CallError::TooSlow),
            (_, Some(outbox)) => {
                tracing::error!(call_sid = %call.call_sid, "the database cannot store the enquiry now; keeping it in the outbox");
                let kept = outbox.keep_as(&enquiry, reference).await?;
                self.metrics.outbox_records(outbox.len());
                tracing::warn!(call_sid = %call.call_sid, reference = %kept.reference, waiting = outbox.len(), "enquiry kept in the outbox");
                Ok(((kept.reference, kept.callback_due), None))
            }
        }
    }

    /// The enquiry a call-back request makes, from the caller's answers.
    fn new_request(
        &self,
        call: &CallInfo,
        answers: &Answers,
        queue_joined_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<NewEnquiry, CallError> {
        let (Some(number), Some(trust), Some(category)) =
            (&answers.callback_number, answers.trust, answers.category)
        else {
            return Err(CallError::IncompleteEnquiry);
        };
        Ok(NewEnquiry {
            call_sid: call.call_sid.clone(),
            callback_number: number.clone(),
            trust,
            category,
            recording: answers.message.clone(),
            created_at: now,
            callback_due: self.callback_due(now),
            source: crate::enquiries::Source::CallbackRequest,
            // A caller who left the queue to ask keeps the time they joined it.
            waiting_since: queue_joined_at.map_or(now, |joined| joined.min(now)),
        })
    }
}

/// The reference the caller is given and the day we promise to call back by (of a stored
/// enquiry, or of a request kept in the outbox).
fn add_reference_vars(ctx: &mut Context, reference: &crate::enquiries::Reference, due: NaiveDate) {
    ctx.vars.insert("reference", reference.spoken());
    ctx.vars.insert("callback_by", speech::spoken_date(due));
}
