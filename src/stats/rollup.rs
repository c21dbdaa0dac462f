//! Daily roll-ups of the call figures, so that a month's statistics over a million calls
//! read thirty small rows rather than every call and step.
//!
//! A day's calls, menu choices, queue waits, out-of-hours demand and journey through the
//! flow are summed per hospital (the one the caller chose; `""` when none) into
//! [`DayFigures`]. Once a Europe/London day is over, and every call that began on it has
//! ended ([`SETTLE`] after midnight: Twilio ends a call after four hours at most), its
//! figures no longer change: they are computed once from the calls and kept in
//! `stats_days` (JSON, no personal data). A day not yet over keeps the figures of its calls
//! that had ended by a watermark (a call's facts no longer change once it has ended),
//! brought up to date every [`REFRESH`]; its other calls are read live on each request. A
//! roll-up in another [`VERSION`] is computed afresh.
//! `serve` rolls up the days it finds missing at start and every hour after.
//!
//! What is not rolled up, because it changes after the day: everything about enquiries
//! (their status, attempts and call-backs, counted in SQL on each request) and the list of
//! abandoned calls (whether a call back followed).
//!
//! Decided: a settled day's figures are kept even when the calendar is changed afterwards
//! (a closure added later does not move its out-of-hours calls into another spell), and
//! they outlive the calls themselves when those are deleted after the retention period.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::flows::diagram::Counts;
use crate::flows::journey::{call_counts, split_path, StepRoute};
use crate::flows::Flow;
use crate::hours::{OpeningHours, LONDON};
use crate::store::stats::{CallFacts, Ended, StepFacts};
use crate::store::{Store, StoreError};

/// The format of the stored figures; change it whenever [`DayFigures`] or its meaning changes.
///
/// Days of another version are worked out again from their calls, so a day whose calls the
/// retention purge has deleted would come back empty: prefer additive changes (new fields
/// with `#[serde(default)]`, read from old rows as they are) and bump this only for a change
/// that old figures cannot be read into, accepting that days older than the retention
/// period then lose their call figures.
pub const VERSION: i64 = 1;

/// How long after a day's London midnight its calls are certain to have ended.
pub const SETTLE: Duration = Duration::hours(4);

/// How many days `serve` keeps rolled up behind today.
pub const KEEP_DAYS: i64 = 400;

/// The call figures of one Europe/London day, per hospital chosen (`""`: none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayFigures {
    pub by_trust: BTreeMap<String, Part>,
}

/// The call figures of one day and one hospital.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub calls: u64,
    pub in_hours: u64,
    /// Calls by hour of day (Europe/London), 0–23.
    pub by_hour: Vec<u64>,
    /// Calls that have ended.
    pub ended: u64,
    /// Per menu node: callers who chose there.
    pub menus: BTreeMap<String, MenuPart>,
    pub queue: QueuePart,
    /// Out-of-hours calls and call-back requests, by when the line next opened.
    pub out_of_hours: Vec<SpellPart>,
    /// Which branches callers took and where they hung up.
    pub journey: Counts,
}

impl Default for Part {
    fn default() -> Self {
        Self {
            calls: 0,
            in_hours: 0,
            by_hour: vec![0; 24],
            ended: 0,
            menus: BTreeMap::new(),
            queue: QueuePart::default(),
            out_of_hours: Vec::new(),
            journey: Counts::default(),
        }
    }
}

/// Callers' choices at one menu.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuPart {
    /// Callers who chose anything here.
    pub choosing: u64,
    /// … of whom the call has ended.
    pub ended_choosing: u64,
    /// Option key → callers who chose it (at least once).
    pub options: BTreeMap<String, u64>,
}

/// The adviser queue: waits kept as counts per second, so any threshold can be applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePart {
    pub offered: u64,
    pub left_for_callback: u64,
    /// Seconds waited → answered callers.
    pub answered_waits: BTreeMap<i64, u64>,
    /// Seconds waited → callers who hung up while queued.
    pub abandoned_waits: BTreeMap<i64, u64>,
}

/// Out-of-hours demand in one closed spell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpellPart {
    pub reopened_at: Option<DateTime<Utc>>,
    pub calls: u64,
    pub callback_requests: u64,
}

impl Part {
    fn spell(&mut self, reopened_at: Option<DateTime<Utc>>) -> &mut SpellPart {
        let i = match self
            .out_of_hours
            .iter()
            .position(|s| s.reopened_at == reopened_at)
        {
            Some(i) => i,
            None => {
                self.out_of_hours.push(SpellPart {
                    reopened_at,
                    calls: 0,
                    callback_requests: 0,
                });
                self.out_of_hours.len() - 1
            }
        };
        &mut self.out_of_hours[i]
    }

    /// Adds `other` into this part.
    pub fn add(&mut self, other: &Part) {
        self.calls += other.calls;
        self.in_hours += other.in_hours;
        for (a, b) in self.by_hour.iter_mut().zip(&other.by_hour) {
            *a += b;
        }
        self.ended += other.ended;
        for (node, m) in &other.menus {
            let mine = self.menus.entry(node.clone()).or_default();
            mine.choosing += m.choosing;
            mine.ended_choosing += m.ended_choosing;
            for (k, n) in &m.options {
                *mine.options.entry(k.clone()).or_default() += n;
            }
        }
        let q = &mut self.queue;
        q.offered += other.queue.offered;
        q.left_for_callback += other.queue.left_for_callback;
        for (w, n) in &other.queue.answered_waits {
            *q.answered_waits.entry(*w).or_default() += n;
        }
        for (w, n) in &other.queue.abandoned_waits {
            *q.abandoned_waits.entry(*w).or_default() += n;
        }
        for s in &other.out_of_hours {
            let mine = self.spell(s.reopened_at);
            mine.calls += s.calls;
            mine.callback_requests += s.callback_requests;
        }
        self.journey.add(&other.journey);
    }
}

impl DayFigures {
    /// Adds `other` (more calls of the same day) into these.
    pub fn add(&mut self, other: &DayFigures) {
        for (trust, part) in &other.by_trust {
            self.by_trust.entry(trust.clone()).or_default().add(part);
        }
    }

    /// The day's figures for one hospital, or for all.
    pub fn part(&self, trust: Option<&str>) -> Part {
        let mut sum = Part::default();
        for (t, p) in &self.by_trust {
            if trust.is_none_or(|want| want == t) {
                sum.add(p);
            }
        }
        sum
    }
}

/// The figures of one day's calls (started that day), their steps (each call's in order,
/// calls together) and the call-back requests made that day (trust, when).
pub fn day_figures(
    flow: &Flow,
    hours: &OpeningHours,
    calls: &[CallFacts],
    steps: &[StepFacts],
    requests: &[(String, DateTime<Utc>)],
) -> DayFigures {
    let mut by_call: HashMap<&str, Vec<&StepFacts>> = HashMap::new();
    for s in steps {
        by_call.entry(s.call_sid.as_str()).or_default().push(s);
    }
    let reopens = |at: DateTime<Utc>| hours.next_open(at).map(|t| t.with_timezone(&Utc));
    let mut day = DayFigures::default();
    for c in calls {
        let part = day
            .by_trust
            .entry(c.trust.clone().unwrap_or_default())
            .or_default();
        part.calls += 1;
        let hour = c.started_at.with_timezone(&LONDON).hour() as usize;
        if let Some(h) = part.by_hour.get_mut(hour) {
            *h += 1;
        }
        if c.in_hours {
            part.in_hours += 1;
        } else {
            part.spell(reopens(c.started_at)).calls += 1;
        }
        if c.ended {
            part.ended += 1;
        }
        let steps = by_call
            .get(c.call_sid.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        // Each menu's options this caller chose, once each.
        let mut chose: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for s in steps {
            if let Some(key) = s.outcome.strip_prefix("option-") {
                chose.entry(s.node.as_str()).or_default().insert(key);
            }
        }
        for (node, keys) in chose {
            let m = part.menus.entry(node.to_string()).or_default();
            m.choosing += 1;
            if c.ended {
                m.ended_choosing += 1;
            }
            for k in keys {
                *m.options.entry(k.to_string()).or_default() += 1;
            }
        }
        if c.queue_joined_at.is_some() {
            let q = &mut part.queue;
            q.offered += 1;
            let wait = c.queue_wait_seconds.unwrap_or(0);
            match c.queue_result.as_deref() {
                Some("bridged" | "redirected") => *q.answered_waits.entry(wait).or_default() += 1,
                Some("hangup") => *q.abandoned_waits.entry(wait).or_default() += 1,
                Some("leave") => q.left_for_callback += 1,
                _ => {}
            }
        }
        let routes: Vec<StepRoute> = steps
            .iter()
            .map(|s| StepRoute {
                node: s.node.clone(),
                outcome: s.outcome.clone(),
                path: split_path(s.path.as_deref()),
            })
            .collect();
        call_counts(flow, c.ended, &routes, &mut part.journey);
    }
    for (trust, at) in requests {
        if !hours.is_open(*at) {
            day.by_trust
                .entry(trust.clone())
                .or_default()
                .spell(reopens(*at))
                .callback_requests += 1;
        }
    }
    for part in day.by_trust.values_mut() {
        part.out_of_hours.sort_by_key(|s| s.reopened_at);
    }
    day
}

/// The instants of a London day: its midnight and the next.
pub fn day_instants(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    super::Period {
        since: day,
        until: day,
        trust: None,
    }
    .instants()
}

/// Whether every call that began on `day` has surely ended by `now`.
pub fn settled(day: NaiveDate, now: DateTime<Utc>) -> bool {
    now >= day_instants(day).1 + SETTLE
}

/// How stale a day's partial roll-up may be before a request brings it up to date.
pub const REFRESH: Duration = Duration::minutes(5);

/// The figures of the calls of `day` that ended as `ended` says, with the call-back
/// requests made in `[requests_from, requests_to)` (within the day).
async fn figures_of(
    store: &dyn Store,
    flow: &Flow,
    hours: &OpeningHours,
    day: NaiveDate,
    ended: Ended,
    requests: (DateTime<Utc>, DateTime<Utc>),
) -> Result<DayFigures, StoreError> {
    let (from, to) = day_instants(day);
    let calls = store.call_facts(from, to, ended).await?;
    let steps = store.step_facts(from, to, ended).await?;
    let (r_from, r_to) = (requests.0.max(from), requests.1.min(to));
    let requests = if r_from < r_to {
        store.callback_requests(r_from, r_to).await?
    } else {
        Vec::new()
    };
    Ok(day_figures(flow, hours, &calls, &steps, &requests))
}

/// Computes a whole day's figures from its calls.
pub async fn compute_day(
    store: &dyn Store,
    flow: &Flow,
    hours: &OpeningHours,
    day: NaiveDate,
) -> Result<DayFigures, StoreError> {
    let (from, to) = day_instants(day);
    figures_of(store, flow, hours, day, Ended::ALL, (from, to)).await
}

/// The figures of every day in `[since, until]`.
///
/// A settled day: its stored roll-up, or (missing, or of another version) computed from
/// its calls and stored. A day not yet over: the stored figures of its calls that ended
/// before the watermark (brought up to date, adding the calls that ended since, when older
/// than [`REFRESH`]), plus the calls still going on or ended since, read live. Either way
/// each call is counted once: before the watermark if it had ended by then, live if not.
pub async fn days(
    store: &dyn Store,
    flow: &Flow,
    hours: &OpeningHours,
    since: NaiveDate,
    until: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<(NaiveDate, DayFigures)>, StoreError> {
    let mut stored: BTreeMap<NaiveDate, (Option<DateTime<Utc>>, DayFigures)> = BTreeMap::new();
    for row in store.stored_days(since, until).await? {
        if row.version != VERSION {
            continue;
        }
        match serde_json::from_str(&row.figures) {
            Ok(f) => {
                stored.insert(row.day, (row.watermark, f));
            }
            Err(e) => {
                tracing::warn!(day = %row.day, error = %e, "a stored roll-up is unreadable; computing it again")
            }
        }
    }
    let mut out = Vec::new();
    let mut day = since;
    while day <= until {
        let kept = stored.remove(&day);
        let (start, end) = day_instants(day);
        let figures = if settled(day, now) {
            match kept {
                Some((None, f)) => f,
                _ => {
                    let f = compute_day(store, flow, hours, day).await?;
                    keep(store, day, None, &f, now).await;
                    f
                }
            }
        } else if start > now {
            DayFigures::default()
        } else {
            let (mut base, mut mark) = match kept {
                Some((Some(w), f)) if w <= now => (f, w),
                _ => (DayFigures::default(), start),
            };
            if now - mark >= REFRESH {
                let ended = Ended {
                    from: Some(mark),
                    to: Some(now),
                    or_unended: false,
                };
                base.add(&figures_of(store, flow, hours, day, ended, (mark, now)).await?);
                mark = now;
                keep(store, day, Some(mark), &base, now).await;
            }
            let live = Ended {
                from: Some(mark),
                to: None,
                or_unended: true,
            };
            base.add(&figures_of(store, flow, hours, day, live, (mark, end)).await?);
            base
        };
        out.push((day, figures));
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    Ok(out)
}

/// Stores a day's figures; a failure only costs the next request the work again.
async fn keep(
    store: &dyn Store,
    day: NaiveDate,
    watermark: Option<DateTime<Utc>>,
    figures: &DayFigures,
    now: DateTime<Utc>,
) {
    let stored = match serde_json::to_string(figures) {
        Ok(json) => store.store_day(day, VERSION, watermark, &json, now).await,
        Err(e) => Err(StoreError::Corrupt(format!("roll-up of {day}: {e}"))),
    };
    if let Err(e) = stored {
        tracing::warn!(%day, error = %e, "could not store a day's statistics roll-up");
    }
}

/// Rolls up every settled day of the last `days` that is missing; returns how many days
/// are now covered. For `serve`'s background task and `helpline dev seed`.
pub async fn roll_up(
    store: &dyn Store,
    flow: &Flow,
    hours: &OpeningHours,
    now: DateTime<Utc>,
    days_back: i64,
) -> Result<usize, StoreError> {
    let today = now.with_timezone(&LONDON).date_naive();
    let since = today - Duration::days(days_back.max(1));
    backfill_first_attempts(store, hours).await?;
    Ok(days(store, flow, hours, since, today, now).await?.len())
}

/// How many first attempts to work out a transaction.
const FIRST_ATTEMPT_BATCH: i64 = 2_000;

/// Works out the first attempt's London date and the working minutes the caller waited for
/// it, for every enquiry whose first attempt has none yet (recorded since the last
/// statistics, or before this was kept); the calendar is the one in force now.
pub async fn backfill_first_attempts(
    store: &dyn Store,
    hours: &OpeningHours,
) -> Result<u64, StoreError> {
    let mut done = 0u64;
    loop {
        let pending = store.pending_first_attempts(FIRST_ATTEMPT_BATCH).await?;
        if pending.is_empty() {
            return Ok(done);
        }
        let rows: Vec<(String, NaiveDate, i64)> = pending
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    p.first_attempt_at.with_timezone(&LONDON).date_naive(),
                    hours
                        .working_time_between(p.waiting_since, p.first_attempt_at)
                        .num_minutes(),
                )
            })
            .collect();
        store.set_first_attempts(&rows).await?;
        done += rows.len() as u64;
        if (pending.len() as i64) < FIRST_ATTEMPT_BATCH {
            return Ok(done);
        }
    }
}

/// How often `serve` looks for days to roll up.
const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// How long after start the first look is, so that it does not compete with startup (the
/// statistics page rolls up what it needs by itself meanwhile).
const FIRST_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// Rolls up missing days in the background: five minutes after start, then hourly.
/// Failures are logged and only cost the statistics page the work on its next request.
/// Several instances may do the same day at once; the result is the same.
pub fn spawn_hourly(
    store: std::sync::Arc<dyn Store>,
    flow: std::sync::Arc<Flow>,
    hours: std::sync::Arc<crate::hours::live::LiveHours>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_AFTER).await;
        loop {
            let began = std::time::Instant::now();
            match roll_up(store.as_ref(), &flow, &hours.get(), clock.now(), KEEP_DAYS).await {
                Ok(days) => tracing::debug!(
                    days,
                    ms = began.elapsed().as_millis() as u64,
                    "statistics roll-ups checked"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "statistics roll-up failed; retrying within the hour")
                }
            }
            tokio::time::sleep(EVERY).await;
        }
    })
}
