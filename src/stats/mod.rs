//! Enquiry statistics for managers: what people called about, for which hospital, how
//! quickly they were called back (in working hours) and how long they waited in the queue.
//! The same figures feed `/api/stats`, the statistics page and `helpline stats --json`.
//! Definitions (also in docs/statistics.md) are written next to each figure.
//!
//! Simulated calls (`helpline simulate`) are never counted.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use serde::Serialize;

use crate::enquiries::Trust;
use crate::flows::model::NodeKind;
use crate::flows::Flow;
use crate::hours::{OpeningHours, LONDON};
use crate::store::stats::{CallFacts, EnquiryFacts};
use crate::store::{Store, StoreError};

/// Which days, and optionally which hospital.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// First day (Europe/London), included.
    pub since: NaiveDate,
    /// Last day (Europe/London), included.
    pub until: NaiveDate,
    pub trust: Option<Trust>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeriodError {
    #[error("the period ends ({until}) before it starts ({since})")]
    Backwards { since: NaiveDate, until: NaiveDate },
    #[error("the period is longer than {0} days: choose a shorter one")]
    TooLong(i64),
}

impl Period {
    pub const MAX_DAYS: i64 = 400;

    pub fn new(
        since: NaiveDate,
        until: NaiveDate,
        trust: Option<Trust>,
    ) -> Result<Self, PeriodError> {
        if until < since {
            return Err(PeriodError::Backwards { since, until });
        }
        if (until - since).num_days() >= Self::MAX_DAYS {
            return Err(PeriodError::TooLong(Self::MAX_DAYS));
        }
        Ok(Self {
            since,
            until,
            trust,
        })
    }

    /// The instants it covers: from the first day's London midnight to the one after the last day.
    pub fn instants(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let midnight = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(LONDON).earliest())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| d.and_time(chrono::NaiveTime::MIN).and_utc())
        };
        let after = self.until.succ_opt().unwrap_or(self.until);
        (midnight(self.since), midnight(after))
    }
}

/// The thresholds in the queue figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    /// Answered within this many seconds counts for the service level (default 60).
    pub service_level_seconds: i64,
    /// Hanging up in the queue sooner than this is a short abandon, left out (default 5).
    pub short_abandon_seconds: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            service_level_seconds: 60,
            short_abandon_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub period: Period,
    pub calls: Calls,
    pub choices: Choices,
    pub enquiries: Enquiries,
    pub callbacks: Callbacks,
    pub queue: Queue,
    /// Callers who hung up while queued, oldest first.
    pub abandoned_calls: Vec<Abandoned>,
    /// Out-of-hours demand, one row per closed spell (named by when the line reopened).
    pub out_of_hours: Vec<ClosedSpell>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Calls {
    pub total: u64,
    pub in_hours: u64,
    pub out_of_hours: u64,
    pub by_day: Vec<Day>,
    /// Calls by hour of day (Europe/London), 0–23.
    pub by_hour: Vec<u64>,
    /// Calls by weekday (Monday first) × hour of day.
    pub heatmap: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    pub total: u64,
    pub in_hours: u64,
    pub out_of_hours: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Choices {
    /// Callers who chose anything in the main menu.
    pub callers_choosing: u64,
    /// Each option of the main menu: callers who chose it at least once, and their share of
    /// all calls received.
    pub options: Vec<Choice>,
    /// Calls that ended without choosing anything in the main menu.
    pub hung_up_in_menu: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Choice {
    pub key: String,
    pub label: String,
    pub calls: u64,
    pub share: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Enquiries {
    /// Enquiries made in the period (folded-in duplicates left out).
    pub total: u64,
    pub by_trust: BTreeMap<String, u64>,
    pub by_category: BTreeMap<String, u64>,
    pub by_source: BTreeMap<String, u64>,
    pub open: u64,
    pub closed: u64,
    pub by_status: BTreeMap<String, u64>,
    /// Call-back attempts made in the period, by outcome.
    pub attempt_outcomes: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Callbacks {
    /// Enquiries (made in the period) with at least one attempt.
    pub attempted: u64,
    /// Working-hours minutes from the caller's first asking to the first attempt.
    pub first_attempt_minutes_median: Option<i64>,
    pub first_attempt_minutes_p90: Option<i64>,
    /// First attempt on or before the promised day ÷ enquiries attempted or already past it.
    pub within_promise: u64,
    pub promise_due: u64,
    pub within_promise_share: Option<f64>,
    /// Attempts ÷ enquiries attempted.
    pub attempts_per_enquiry: Option<f64>,
    /// Closed as unreachable ÷ all closed.
    pub unreachable: u64,
    pub unreachable_share: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Queue {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub short_abandons: u64,
    pub left_for_callback: u64,
    pub answered_within_threshold: u64,
    pub average_speed_of_answer_seconds: Option<f64>,
    pub abandonment_rate: Option<f64>,
    pub service_level: Option<f64>,
    pub thresholds: Thresholds,
    /// Each figure's definition, as shown beside it.
    pub formulas: BTreeMap<&'static str, &'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Abandoned {
    pub at: DateTime<Utc>,
    pub waited_seconds: i64,
    pub short: bool,
    /// An enquiry from the same number followed (a call-back request, or listed as missed).
    pub listed_for_callback: bool,
    /// … and it has been called back at least once.
    pub called_back: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClosedSpell {
    /// When the line opened again (Europe/London), naming the spell.
    pub reopened_at: Option<DateTime<Utc>>,
    pub calls: u64,
    pub callback_requests: u64,
}

pub const FORMULAS: &[(&str, &str)] = &[
    ("average_speed_of_answer", "total queue wait of answered callers ÷ answered callers"),
    (
        "abandonment_rate",
        "callers who hung up while queued (short abandons left out) ÷ (callers queued − callers who chose a call back instead − short abandons)",
    ),
    (
        "service_level",
        "callers answered within the threshold ÷ (answered + abandoned − short abandons)",
    ),
    ("short_abandon", "a caller who hung up in the queue within the short-abandon threshold"),
];

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round4(part as f64 / whole as f64))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The nearest-rank percentile `p` (0–100) of sorted values.
fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1);
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// The first menu a caller reaches from the start (through greetings and branches).
pub fn main_menu(flow: &Flow) -> Option<&crate::flows::model::Node> {
    let mut seen = std::collections::BTreeSet::new();
    let mut queue = std::collections::VecDeque::from([flow.settings.start.clone()]);
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let node = flow.node(&id)?;
        match &node.kind {
            NodeKind::Menu { .. } => return Some(node),
            NodeKind::Say { next, .. } => queue.push_back(next.clone()),
            NodeKind::Branch {
                then, otherwise, ..
            } => {
                queue.push_back(then.clone());
                queue.push_back(otherwise.clone());
            }
            _ => {}
        }
    }
    None
}

/// What managers call a menu option, from where it leads.
fn option_label(goto: &str) -> String {
    match goto {
        "latest_update" => "Latest update".into(),
        "callback_start" => "Call-back request".into(),
        "fraud_advice" => "Fraud guidance".into(),
        "appointments" => "Appointments".into(),
        "adviser" => "Adviser".into(),
        other => {
            let words = other.replace('_', " ");
            let mut c = words.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

/// Computes every figure for `period`.
pub async fn compute(
    store: &dyn Store,
    flow: &Flow,
    hours: &OpeningHours,
    period: &Period,
    thresholds: Thresholds,
    now: DateTime<Utc>,
) -> Result<Stats, StoreError> {
    let (from, to) = period.instants();
    let trust = period.trust.map(|t| t.as_str().to_string());
    let calls: Vec<CallFacts> = store
        .call_facts(from, to)
        .await?
        .into_iter()
        .filter(|c| trust.is_none() || c.trust == trust)
        .collect();
    let menu = main_menu(flow);
    let steps = match menu {
        Some(m) => store.step_outcomes(&m.id, from, to).await?,
        None => Vec::new(),
    };
    let enquiries: Vec<EnquiryFacts> = store
        .enquiry_facts(from, to)
        .await?
        .into_iter()
        .filter(|e| trust.as_deref().is_none_or(|t| e.trust == t))
        .filter(|e| e.status != "merged")
        .collect();
    let attempts: Vec<(String, String)> = store
        .attempt_outcomes(from, to)
        .await?
        .into_iter()
        .filter(|(_, t)| trust.as_deref().is_none_or(|want| t == want))
        .collect();
    Ok(Stats {
        period: period.clone(),
        calls: call_figures(&calls, period),
        choices: choice_figures(&calls, &steps, menu),
        enquiries: enquiry_figures(&enquiries, &attempts),
        callbacks: callback_figures(&enquiries, hours, now),
        queue: queue_figures(&calls, thresholds),
        abandoned_calls: abandoned(&calls, thresholds),
        out_of_hours: out_of_hours(&calls, &enquiries, hours),
    })
}

fn call_figures(calls: &[CallFacts], period: &Period) -> Calls {
    let mut days: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    let mut d = period.since;
    while d <= period.until {
        days.insert(
            d,
            Day {
                date: d,
                ..Day::default()
            },
        );
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    let mut by_hour = vec![0u64; 24];
    let mut heatmap = vec![vec![0u64; 24]; 7];
    let (mut in_hours, mut out) = (0, 0);
    for c in calls {
        let local = c.started_at.with_timezone(&LONDON);
        let hour = local.hour() as usize;
        by_hour[hour] += 1;
        heatmap[local.weekday().num_days_from_monday() as usize][hour] += 1;
        let day = days.entry(local.date_naive()).or_insert_with(|| Day {
            date: local.date_naive(),
            ..Day::default()
        });
        day.total += 1;
        if c.in_hours {
            in_hours += 1;
            day.in_hours += 1;
        } else {
            out += 1;
            day.out_of_hours += 1;
        }
    }
    Calls {
        total: calls.len() as u64,
        in_hours,
        out_of_hours: out,
        by_day: days.into_values().collect(),
        by_hour,
        heatmap,
    }
}

fn choice_figures(
    calls: &[CallFacts],
    steps: &[(String, String)],
    menu: Option<&crate::flows::model::Node>,
) -> Choices {
    let counted: std::collections::HashSet<&str> =
        calls.iter().map(|c| c.call_sid.as_str()).collect();
    let mut chose: BTreeMap<String, std::collections::HashSet<&str>> = BTreeMap::new();
    let mut anyone: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (sid, outcome) in steps {
        if !counted.contains(sid.as_str()) {
            continue;
        }
        if let Some(key) = outcome.strip_prefix("option-") {
            chose
                .entry(key.to_string())
                .or_default()
                .insert(sid.as_str());
            anyone.insert(sid.as_str());
        }
    }
    let total = calls.len() as u64;
    let options = match menu.map(|m| &m.kind) {
        Some(NodeKind::Menu { options, .. }) => options
            .iter()
            .map(|o| {
                let n = chose.get(&o.key.to_string()).map_or(0, |s| s.len() as u64);
                Choice {
                    key: o.key.to_string(),
                    label: option_label(&o.goto),
                    calls: n,
                    share: share(n, total),
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let hung_up_in_menu = calls
        .iter()
        .filter(|c| c.ended && !anyone.contains(c.call_sid.as_str()))
        .count() as u64;
    Choices {
        callers_choosing: anyone.len() as u64,
        options,
        hung_up_in_menu,
    }
}

fn enquiry_figures(enquiries: &[EnquiryFacts], attempts: &[(String, String)]) -> Enquiries {
    let mut e = Enquiries {
        total: enquiries.len() as u64,
        ..Enquiries::default()
    };
    for q in enquiries {
        *e.by_trust.entry(q.trust.clone()).or_default() += 1;
        *e.by_category.entry(q.category.clone()).or_default() += 1;
        *e.by_source.entry(q.source.clone()).or_default() += 1;
        *e.by_status.entry(q.status.clone()).or_default() += 1;
        let open = q
            .status
            .parse::<crate::enquiries::Status>()
            .is_ok_and(|s| s.is_open());
        if open {
            e.open += 1;
        } else {
            e.closed += 1;
        }
    }
    for (outcome, _) in attempts {
        *e.attempt_outcomes.entry(outcome.clone()).or_default() += 1;
    }
    e
}

fn callback_figures(
    enquiries: &[EnquiryFacts],
    hours: &OpeningHours,
    now: DateTime<Utc>,
) -> Callbacks {
    let today = now.with_timezone(&LONDON).date_naive();
    let mut minutes = Vec::new();
    let (mut within, mut due, mut attempts_total, mut attempted) = (0u64, 0u64, 0i64, 0u64);
    let (mut unreachable, mut closed) = (0u64, 0u64);
    for e in enquiries {
        if let Some(first) = e.first_attempt_at {
            attempted += 1;
            attempts_total += e.attempts;
            minutes.push(
                hours
                    .working_time_between(e.waiting_since, first)
                    .num_minutes(),
            );
            due += 1;
            if first.with_timezone(&LONDON).date_naive() <= e.callback_due {
                within += 1;
            }
        } else if e.callback_due < today {
            // Not tried and already past the promised day: a broken promise.
            due += 1;
        }
        match e.status.as_str() {
            "unreachable" => {
                unreachable += 1;
                closed += 1;
            }
            "resolved" | "wrong-number" => closed += 1,
            _ => {}
        }
    }
    minutes.sort_unstable();
    Callbacks {
        attempted,
        first_attempt_minutes_median: percentile(&minutes, 50),
        first_attempt_minutes_p90: percentile(&minutes, 90),
        within_promise: within,
        promise_due: due,
        within_promise_share: share(within, due),
        attempts_per_enquiry: (attempted > 0)
            .then(|| round4(attempts_total as f64 / attempted as f64)),
        unreachable,
        unreachable_share: share(unreachable, closed),
    }
}

fn is_answered(result: Option<&str>) -> bool {
    matches!(result, Some("bridged" | "redirected"))
}

fn queue_figures(calls: &[CallFacts], t: Thresholds) -> Queue {
    let mut q = Queue {
        thresholds: t,
        formulas: FORMULAS.iter().copied().collect(),
        ..Queue::default()
    };
    let mut answered_wait = 0i64;
    for c in calls.iter().filter(|c| c.queue_joined_at.is_some()) {
        q.offered += 1;
        let wait = c.queue_wait_seconds.unwrap_or(0);
        match c.queue_result.as_deref() {
            r if is_answered(r) => {
                q.answered += 1;
                answered_wait += wait;
                if wait <= t.service_level_seconds {
                    q.answered_within_threshold += 1;
                }
            }
            Some("hangup") => {
                q.abandoned += 1;
                if wait < t.short_abandon_seconds {
                    q.short_abandons += 1;
                }
            }
            Some("leave") => q.left_for_callback += 1,
            _ => {}
        }
    }
    q.average_speed_of_answer_seconds =
        (q.answered > 0).then(|| (answered_wait as f64 / q.answered as f64 * 10.0).round() / 10.0);
    q.abandonment_rate = share(
        q.abandoned - q.short_abandons,
        q.offered
            .saturating_sub(q.left_for_callback + q.short_abandons),
    );
    q.service_level = share(
        q.answered_within_threshold,
        (q.answered + q.abandoned).saturating_sub(q.short_abandons),
    );
    q
}

fn abandoned(calls: &[CallFacts], t: Thresholds) -> Vec<Abandoned> {
    let mut list: Vec<Abandoned> = calls
        .iter()
        .filter(|c| c.queue_result.as_deref() == Some("hangup"))
        .map(|c| {
            let waited = c.queue_wait_seconds.unwrap_or(0);
            Abandoned {
                at: c.queue_left_at.unwrap_or(c.started_at),
                waited_seconds: waited,
                short: waited < t.short_abandon_seconds,
                listed_for_callback: c.listed_after,
                called_back: c.called_back_after,
            }
        })
        .collect();
    list.sort_by_key(|a| a.at);
    list
}

fn out_of_hours(
    calls: &[CallFacts],
    enquiries: &[EnquiryFacts],
    hours: &OpeningHours,
) -> Vec<ClosedSpell> {
    let mut spells: BTreeMap<Option<DateTime<Utc>>, ClosedSpell> = BTreeMap::new();
    let key = |at: DateTime<Utc>| hours.next_open(at).map(|t| t.with_timezone(&Utc));
    for c in calls.iter().filter(|c| !c.in_hours) {
        let k = key(c.started_at);
        spells
            .entry(k)
            .or_insert(ClosedSpell {
                reopened_at: k,
                calls: 0,
                callback_requests: 0,
            })
            .calls += 1;
    }
    for e in enquiries
        .iter()
        .filter(|e| e.source == "callback-request" && !hours.is_open(e.created_at))
    {
        let k = key(e.created_at);
        spells
            .entry(k)
            .or_insert(ClosedSpell {
                reopened_at: k,
                calls: 0,
                callback_requests: 0,
            })
            .callback_requests += 1;
    }
    spells.into_values().collect()
}

/// The last `days` days up to and including `today` (Europe/London).
pub fn last_days(today: NaiveDate, days: i64) -> (NaiveDate, NaiveDate) {
    (today - Duration::days(days.max(1) - 1), today)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn periods_are_london_days() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // Summer: London is UTC+1, so the day starts at 23:00 UTC the day before.
        let p = Period::new(d("2026-07-01"), d("2026-07-01"), None).unwrap();
        let (from, to) = p.instants();
        assert_eq!(from.to_rfc3339(), "2026-06-30T23:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-07-01T23:00:00+00:00");
        assert!(Period::new(d("2026-07-02"), d("2026-07-01"), None).is_err());
        assert!(Period::new(d("2025-01-01"), d("2026-07-01"), None).is_err());
    }
}
