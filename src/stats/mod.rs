//! Enquiry statistics for managers: what people called about, for which hospital, how
//! quickly they were called back (in working hours) and how long they waited in the queue.
//! The same figures feed `/api/stats`, the statistics page and `helpline stats --json`.
//! Definitions (also in docs/statistics.md) are written next to each figure.
//!
//! Simulated calls (`helpline simulate`) are never counted.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::enquiries::Trust;
use crate::flows::diagram::Counts;
use crate::flows::model::NodeKind;
use crate::flows::Flow;
use crate::hours::{OpeningHours, LONDON};
use crate::store::stats::{CallbackTotals, EnquiryGroup};
use crate::store::{Store, StoreError};

pub mod rollup;

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
    /// The caller journey map's figures: callers per branch of the flow, hang-ups per node
    /// (as JSON: `{"branches": [{"from", "to", "callers"}], "hung_up": {node: callers}}`).
    pub journey: Counts,
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

/// Computes every figure for `period`: the calls from the daily roll-ups (see [`rollup`]),
/// enquiries and call-backs counted in SQL.
pub async fn compute(
    store: &dyn Store,
    flow: &Flow,
    hours: &OpeningHours,
    period: &Period,
    thresholds: Thresholds,
    now: DateTime<Utc>,
) -> Result<Stats, StoreError> {
    let (from, to) = period.instants();
    let trust = period.trust.map(Trust::as_str);
    rollup::backfill_first_attempts(store, hours).await?;
    let today = now.with_timezone(&LONDON).date_naive();
    // Independent reads, at the same time (SQLite readers run side by side in WAL mode).
    let (days, groups, totals, minutes, outcomes, abandoned) = tokio::try_join!(
        rollup::days(store, flow, hours, period.since, period.until, now),
        store.enquiry_groups(from, to, trust),
        store.callback_totals(from, to, trust, today),
        store.first_attempt_minutes(from, to, trust),
        store.attempt_outcome_counts(from, to, trust),
        store.abandoned_calls(from, to),
    )?;
    let mut all = rollup::Part::default();
    let mut by_day = Vec::with_capacity(days.len());
    let mut heatmap = vec![vec![0u64; 24]; 7];
    for (date, figures) in &days {
        let part = figures.part(trust);
        by_day.push(Day {
            date: *date,
            total: part.calls,
            in_hours: part.in_hours,
            out_of_hours: part.calls - part.in_hours,
        });
        let row = &mut heatmap[date.weekday().num_days_from_monday() as usize];
        for (cell, n) in row.iter_mut().zip(&part.by_hour) {
            *cell += n;
        }
        all.add(&part);
    }
    let median = percentile(&minutes, 50);
    let p90 = percentile(&minutes, 90);
    let abandoned_calls = abandoned
        .into_iter()
        .filter(|a| trust.is_none() || a.trust.as_deref() == trust)
        .map(|a| {
            let waited = a.queue_wait_seconds.unwrap_or(0);
            Abandoned {
                at: a.queue_left_at.unwrap_or(a.started_at),
                waited_seconds: waited,
                short: waited < thresholds.short_abandon_seconds,
                listed_for_callback: a.listed_after,
                called_back: a.called_back_after,
            }
        })
        .collect();
    let menu = main_menu(flow);
    Ok(Stats {
        period: period.clone(),
        calls: Calls {
            total: all.calls,
            in_hours: all.in_hours,
            out_of_hours: all.calls - all.in_hours,
            by_day,
            by_hour: all.by_hour.clone(),
            heatmap,
        },
        choices: choice_figures(&all, menu),
        enquiries: enquiry_figures(&groups, &outcomes),
        callbacks: callback_figures(&totals, median, p90),
        queue: queue_figures(&all.queue, thresholds),
        abandoned_calls,
        out_of_hours: all
            .out_of_hours
            .iter()
            .map(|s| ClosedSpell {
                reopened_at: s.reopened_at,
                calls: s.calls,
                callback_requests: s.callback_requests,
            })
            .collect(),
        journey: all.journey.clone(),
    })
}

/// The nearest-rank percentile `p` (0–100) of values given as ascending (value, how many).
fn percentile(counted: &[(i64, i64)], p: u32) -> Option<i64> {
    let n: i64 = counted.iter().map(|(_, k)| k).sum();
    if n <= 0 {
        return None;
    }
    // The value at 1-based position ceil(p × n / 100).
    let rank = ((i64::from(p) * n + 99) / 100).max(1);
    let mut seen = 0;
    counted.iter().find_map(|(v, k)| {
        seen += k;
        (seen >= rank).then_some(*v)
    })
}

fn choice_figures(all: &rollup::Part, menu: Option<&crate::flows::model::Node>) -> Choices {
    let total = all.calls;
    let at_menu = menu.and_then(|m| all.menus.get(&m.id));
    let options = match menu.map(|m| &m.kind) {
        Some(NodeKind::Menu { options, .. }) => options
            .iter()
            .map(|o| {
                let n = at_menu
                    .and_then(|m| m.options.get(&o.key.to_string()))
                    .copied()
                    .unwrap_or(0);
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
    Choices {
        callers_choosing: at_menu.map_or(0, |m| m.choosing),
        options,
        hung_up_in_menu: all.ended - at_menu.map_or(0, |m| m.ended_choosing),
    }
}

fn enquiry_figures(groups: &[EnquiryGroup], outcomes: &[(String, i64)]) -> Enquiries {
    let mut e = Enquiries::default();
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    for g in groups.iter().filter(|g| g.status != "merged") {
        let n = count(g.enquiries);
        e.total += n;
        *e.by_trust.entry(g.trust.clone()).or_default() += n;
        *e.by_category.entry(g.category.clone()).or_default() += n;
        *e.by_source.entry(g.source.clone()).or_default() += n;
        *e.by_status.entry(g.status.clone()).or_default() += n;
        let open = g
            .status
            .parse::<crate::enquiries::Status>()
            .is_ok_and(|s| s.is_open());
        if open {
            e.open += n;
        } else {
            e.closed += n;
        }
    }
    for (outcome, n) in outcomes {
        *e.attempt_outcomes.entry(outcome.clone()).or_default() += count(*n);
    }
    e
}

fn callback_figures(t: &CallbackTotals, median: Option<i64>, p90: Option<i64>) -> Callbacks {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let (attempted, within) = (count(t.attempted), count(t.within_promise));
    let due = attempted + count(t.overdue_untried);
    let (unreachable, closed) = (count(t.unreachable), count(t.closed));
    Callbacks {
        attempted,
        first_attempt_minutes_median: median,
        first_attempt_minutes_p90: p90,
        within_promise: within,
        promise_due: due,
        within_promise_share: share(within, due),
        attempts_per_enquiry: (attempted > 0).then(|| round4(t.attempts as f64 / attempted as f64)),
        unreachable,
        unreachable_share: share(unreachable, closed),
    }
}

fn queue_figures(part: &rollup::QueuePart, t: Thresholds) -> Queue {
    let sum = |waits: &BTreeMap<i64, u64>, keep: &dyn Fn(i64) -> bool| -> u64 {
        waits
            .iter()
            .filter(|(w, _)| keep(**w))
            .map(|(_, n)| n)
            .sum()
    };
    let mut q = Queue {
        thresholds: t,
        formulas: FORMULAS.iter().copied().collect(),
        offered: part.offered,
        left_for_callback: part.left_for_callback,
        answered: sum(&part.answered_waits, &|_| true),
        answered_within_threshold: sum(&part.answered_waits, &|w| w <= t.service_level_seconds),
        abandoned: sum(&part.abandoned_waits, &|_| true),
        short_abandons: sum(&part.abandoned_waits, &|w| w < t.short_abandon_seconds),
        ..Queue::default()
    };
    let answered_wait: i64 = part
        .answered_waits
        .iter()
        .map(|(w, n)| w * i64::try_from(*n).unwrap_or(0))
        .sum();
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

/// The last `days` days up to and including `today` (Europe/London).
pub fn last_days(today: NaiveDate, days: i64) -> (NaiveDate, NaiveDate) {
    (today - Duration::days(days.max(1) - 1), today)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        // 1..=10 once each: the median is the 5th value and the 90th percentile the 9th.
        let ten: Vec<(i64, i64)> = (1..=10).map(|v| (v, 1)).collect();
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&[(7, 1)], 90), Some(7));
        // 3 × 10 and 1 × 40: positions 2 (median) and 4 (90th).
        assert_eq!(percentile(&[(10, 3), (40, 1)], 50), Some(10));
        assert_eq!(percentile(&[(10, 3), (40, 1)], 90), Some(40));
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
