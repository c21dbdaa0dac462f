//! The managers' statistics page (`GET /stats`): for any period, how many people called
//! about what, how quickly they were called back and how long they waited. The figures are
//! `crate::stats::compute`'s (the same as `/api/stats` and `helpline stats`); this module
//! only lays them out, draws the charts and writes the CSV exports.
//!
//! Charts are SVG drawn here, on the server, and put straight into the page: no script,
//! no inline `style` (the CSP forbids both; SVG presentation attributes such as `fill` are
//! markup, not style). Each chart has a `<title>` and `<desc>`, axis labels, and the same
//! numbers in a table beside it.
//!
//! Exports: `GET /stats.csv?table=<name>&<period>` for each table, and
//! `GET /stats/enquiries.csv?<period>[&include_numbers=on]` with one row per enquiry
//! (numbers masked unless asked for; asking is recorded in the audit log first).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::api::StatsQuery;
use super::views::{self, render, Choice, Nav};
use super::{Dashboard, Staff, WebError};
use crate::enquiries::{Category, Outcome, Status, Trust};
use crate::hours::LONDON;
use crate::staff::audit::{safe_cell, Action};
use crate::staff::Role;
use crate::stats::{Period, Stats};

pub fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/stats", get(page))
        .route("/stats.csv", get(table_csv))
        .route("/stats/enquiries.csv", get(enquiries_csv))
}

/// The tables that `/stats.csv?table=` exports.
pub const TABLES: &[&str] = &[
    "summary",
    "by_day",
    "by_hour",
    "heatmap",
    "choices",
    "enquiries_by_trust",
    "enquiries_by_category",
    "enquiries_by_status",
    "attempt_outcomes",
    "abandoned",
    "out_of_hours",
    "journey",
];

/// The page lists this many of the most recent abandoned calls; the CSV has them all.
pub const ABANDONED_SHOWN: usize = 100;

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const PERIODS: &[(&str, &str)] = &[
    ("", "The dates below"),
    ("today", "Today"),
    ("week", "This week (Monday to today)"),
    ("7d", "The last 7 days"),
    ("30d", "The last 30 days"),
];

// ---------------------------------------------------------------------------------------
// Figures, shared by the page and the `summary` export.

/// One headline figure: its name in the export, its words on the page, its value as a
/// number (the export) and for people (the page), and how it is worked out.
pub struct Figure {
    pub key: &'static str,
    pub label: String,
    pub raw: String,
    pub shown: String,
    pub how: String,
    /// Shown on the page (some are only there for the export, their numbers already shown
    /// inside another figure's words).
    pub on_page: bool,
}

fn fig(key: &'static str, label: &str, raw: String, shown: String, how: &str) -> Figure {
    Figure {
        key,
        label: label.to_string(),
        raw,
        shown,
        how: how.to_string(),
        on_page: true,
    }
}

fn count(key: &'static str, label: &str, n: u64, how: &str) -> Figure {
    fig(key, label, n.to_string(), n.to_string(), how)
}

fn hidden(mut f: Figure) -> Figure {
    f.on_page = false;
    f
}

fn raw_f64(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn raw_i64(v: Option<i64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// A share for people: "66.7%", "50%", "—" when there is nothing to divide by.
pub fn percent(share: Option<f64>) -> String {
    match share {
        None => "—".into(),
        Some(s) => {
            let p = s * 100.0;
            if (p - p.round()).abs() < 1e-9 {
                format!("{p:.0}%")
            } else {
                format!("{p:.1}%")
            }
        }
    }
}

fn share_words(share: Option<f64>, part: u64, whole: u64) -> String {
    match share {
        None => "— (none to count)".into(),
        Some(_) => format!("{} ({part} of {whole})", percent(share)),
    }
}

fn minutes_words(m: Option<i64>) -> String {
    match m {
        None => "—".into(),
        Some(m) => format!("{} working", views::duration_words(m * 60)),
    }
}

fn calls_figures(s: &Stats) -> Vec<Figure> {
    vec![
        count(
            "calls_total",
            "Calls",
            s.calls.total,
            "calls that started in the period (simulated calls never count)",
        ),
        count(
            "calls_in_hours",
            "In hours",
            s.calls.in_hours,
            "the line was open when the call started",
        ),
        count(
            "calls_out_of_hours",
            "Out of hours",
            s.calls.out_of_hours,
            "the line was closed when the call started (evenings, weekends, bank holidays, closures)",
        ),
        count(
            "choices_callers_choosing",
            "Chose something in the main menu",
            s.choices.callers_choosing,
            "callers who chose at least one option of the first menu",
        ),
        count(
            "hung_up_in_menu",
            "Hung up in the menu",
            s.choices.hung_up_in_menu,
            "calls that ended without choosing anything in the main menu",
        ),
    ]
}

fn enquiry_figures(s: &Stats) -> Vec<Figure> {
    let e = &s.enquiries;
    let c = &s.callbacks;
    let source = |k: &str| e.by_source.get(k).copied().unwrap_or(0);
    vec![
        count(
            "enquiries_total",
            "Enquiries",
            e.total,
            "enquiries made in the period; one folded into a later request from the same number counts once",
        ),
        count(
            "enquiries_open",
            "Open",
            e.open,
            "new, try again or follow-up",
        ),
        count("enquiries_closed", "Closed", e.closed, "resolved, unreachable or wrong number"),
        count(
            "enquiries_callback_request",
            "Asked for a call back",
            source("callback-request"),
            "the caller asked for a call back in the menu",
        ),
        count(
            "enquiries_missed_in_queue",
            "Missed in the queue",
            source("missed-in-queue"),
            "the caller hung up while waiting for an adviser, and was listed for a call back",
        ),
        count(
            "callbacks_attempted",
            "Called back at least once",
            c.attempted,
            "enquiries made in the period with at least one call-back attempt",
        ),
        fig(
            "called_back_within_promise_share",
            "Called back within the promise",
            raw_f64(c.within_promise_share),
            share_words(c.within_promise_share, c.within_promise, c.promise_due),
            "first attempt on or before the promised day ÷ enquiries that were attempted or are already past their promised day",
        ),
        hidden(count(
            "called_back_within_promise",
            "Called back within the promise (count)",
            c.within_promise,
            "first attempt on or before the promised day",
        )),
        hidden(count(
            "promise_due",
            "Attempted or past the promised day",
            c.promise_due,
            "enquiries that were attempted or are already past their promised day",
        )),
        fig(
            "first_attempt_minutes_median",
            "Time to first attempt: median",
            raw_i64(c.first_attempt_minutes_median),
            minutes_words(c.first_attempt_minutes_median),
            "working-hours minutes (weekly hours on working days) from when the caller first asked to the first attempt; nearest rank",
        ),
        fig(
            "first_attempt_minutes_p90",
            "Time to first attempt: 90th percentile",
            raw_i64(c.first_attempt_minutes_p90),
            minutes_words(c.first_attempt_minutes_p90),
            "nine in ten first attempts came within this many working minutes; nearest rank",
        ),
        fig(
            "attempts_per_enquiry",
            "Attempts per enquiry",
            raw_f64(c.attempts_per_enquiry),
            c.attempts_per_enquiry
                .map_or_else(|| "—".into(), |a| format!("{a:.2}")),
            "attempts ÷ enquiries with at least one attempt",
        ),
        fig(
            "unreachable_share",
            "Closed as unreachable",
            raw_f64(c.unreachable_share),
            match c.unreachable_share {
                None => "— (none closed)".into(),
                Some(_) => format!("{} ({} enquiries)", percent(c.unreachable_share), c.unreachable),
            },
            "enquiries closed as unreachable ÷ all closed enquiries",
        ),
        hidden(count(
            "unreachable",
            "Closed as unreachable (count)",
            c.unreachable,
            "enquiries closed as unreachable",
        )),
    ]
}

fn queue_figures(s: &Stats) -> Vec<Figure> {
    let q = &s.queue;
    let t = q.thresholds;
    let formula = |k: &str| q.formulas.get(k).copied().unwrap_or("");
    let abandon_part = q.abandoned.saturating_sub(q.short_abandons);
    let abandon_whole = q
        .offered
        .saturating_sub(q.left_for_callback + q.short_abandons);
    let level_whole = (q.answered + q.abandoned).saturating_sub(q.short_abandons);
    vec![
        count(
            "queue_offered",
            "Offered",
            q.offered,
            "callers who joined the adviser queue",
        ),
        count(
            "queue_answered",
            "Answered",
            q.answered,
            "callers connected to an adviser",
        ),
        count(
            "queue_abandoned",
            "Abandoned",
            q.abandoned,
            "callers who hung up while queued",
        ),
        fig(
            "queue_short_abandons",
            &format!("Short abandons (under {} s)", t.short_abandon_seconds),
            q.short_abandons.to_string(),
            q.short_abandons.to_string(),
            formula("short_abandon"),
        ),
        count(
            "queue_left_for_callback",
            "Left for a call back",
            q.left_for_callback,
            "callers who pressed 1 while waiting, to leave a request instead",
        ),
        count(
            "queue_answered_within_threshold",
            &format!("Answered within {} s", t.service_level_seconds),
            q.answered_within_threshold,
            "answered callers whose wait was at most the service-level threshold",
        ),
        fig(
            "average_speed_of_answer_seconds",
            "Average speed of answer",
            raw_f64(q.average_speed_of_answer_seconds),
            q.average_speed_of_answer_seconds
                .map_or_else(|| "—".into(), |a| format!("{a} s")),
            formula("average_speed_of_answer"),
        ),
        fig(
            "abandonment_rate",
            "Abandonment rate",
            raw_f64(q.abandonment_rate),
            share_words(q.abandonment_rate, abandon_part, abandon_whole),
            formula("abandonment_rate"),
        ),
        fig(
            "service_level",
            &format!("Service level ({} s)", t.service_level_seconds),
            raw_f64(q.service_level),
            share_words(q.service_level, q.answered_within_threshold, level_whole),
            formula("service_level"),
        ),
        hidden(count(
            "service_level_seconds",
            "Service-level threshold (seconds)",
            t.service_level_seconds.max(0).unsigned_abs(),
            "answered within this many seconds counts for the service level",
        )),
        hidden(count(
            "short_abandon_seconds",
            "Short-abandon threshold (seconds)",
            t.short_abandon_seconds.max(0).unsigned_abs(),
            "hanging up in the queue sooner than this is a short abandon",
        )),
    ]
}

fn all_figures(s: &Stats) -> Vec<Figure> {
    let mut all = calls_figures(s);
    all.extend(enquiry_figures(s));
    all.extend(queue_figures(s));
    all
}

// ---------------------------------------------------------------------------------------
// Tables: the rows the page shows and the exports write.

/// A count with its key (as in the API), its words and its share of the whole.
pub struct CountRow {
    pub key: String,
    pub label: String,
    pub count: u64,
    pub share: String,
}

/// Every known value (even at 0), then any other the figures hold.
fn count_rows(map: &BTreeMap<String, u64>, known: &[(&str, String)]) -> Vec<CountRow> {
    let total: u64 = map.values().sum();
    let row = |key: &str, label: String, n: u64| CountRow {
        key: key.to_string(),
        label,
        count: n,
        share: if total == 0 {
            "—".into()
        } else {
            percent(Some(n as f64 / total as f64))
        },
    };
    let mut rows: Vec<CountRow> = known
        .iter()
        .map(|(k, label)| row(k, label.clone(), map.get(*k).copied().unwrap_or(0)))
        .collect();
    for (k, n) in map {
        if !known.iter().any(|(known_key, _)| known_key == k) {
            rows.push(row(k, k.clone(), *n));
        }
    }
    rows
}

fn trust_rows(s: &Stats) -> Vec<CountRow> {
    let known: Vec<(&str, String)> = Trust::ALL
        .iter()
        .map(|t| (t.as_str(), views::trust_label(t.as_str())))
        .collect();
    count_rows(&s.enquiries.by_trust, &known)
}

fn category_rows(s: &Stats) -> Vec<CountRow> {
    let known: Vec<(&str, String)> = Category::ALL
        .iter()
        .map(|c| (c.as_str(), views::category_label(c.as_str())))
        .collect();
    count_rows(&s.enquiries.by_category, &known)
}

fn status_rows(s: &Stats) -> Vec<CountRow> {
    // Merged enquiries are counted as the later request, so never listed here.
    let known: Vec<(&str, String)> = Status::ALL
        .iter()
        .filter(|st| **st != Status::Merged)
        .map(|st| (st.as_str(), st.label().to_string()))
        .collect();
    count_rows(&s.enquiries.by_status, &known)
}

fn outcome_rows(s: &Stats) -> Vec<CountRow> {
    let known: Vec<(&str, String)> = Outcome::ALL
        .iter()
        .map(|o| (o.as_str(), o.label().to_string()))
        .collect();
    count_rows(&s.enquiries.attempt_outcomes, &known)
}

fn london(at: DateTime<Utc>, format: &str) -> String {
    at.with_timezone(&LONDON).format(format).to_string()
}

/// A queue wait to the second: "40 s", "3 min 05 s".
fn wait_words(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A table for the export: its header and rows, every cell as written.
type CsvTable = (Vec<&'static str>, Vec<Vec<String>>);

/// The export of table `name`, `None` for an unknown name.
pub fn csv_table(s: &Stats, name: &str) -> Option<CsvTable> {
    let counts = |rows: Vec<CountRow>, what: &'static str, n: &'static str| -> CsvTable {
        (
            vec![what, "label", n],
            rows.into_iter()
                .map(|r| vec![r.key, r.label, r.count.to_string()])
                .collect(),
        )
    };
    Some(match name {
        "summary" => (
            vec!["figure", "label", "value", "definition"],
            all_figures(s)
                .into_iter()
                .map(|f| vec![f.key.to_string(), f.label, f.raw, f.how])
                .collect(),
        ),
        "by_day" => (
            vec!["date", "in_hours", "out_of_hours", "total"],
            s.calls
                .by_day
                .iter()
                .map(|d| {
                    vec![
                        d.date.format("%Y-%m-%d").to_string(),
                        d.in_hours.to_string(),
                        d.out_of_hours.to_string(),
                        d.total.to_string(),
                    ]
                })
                .collect(),
        ),
        "by_hour" => (
            vec!["hour", "calls"],
            s.calls
                .by_hour
                .iter()
                .enumerate()
                .map(|(h, n)| vec![format!("{h:02}:00"), n.to_string()])
                .collect(),
        ),
        "heatmap" => {
            const HOURS: [&str; 24] = [
                "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13",
                "14", "15", "16", "17", "18", "19", "20", "21", "22", "23",
            ];
            let mut header = vec!["weekday"];
            header.extend(HOURS);
            (
                header,
                s.calls
                    .heatmap
                    .iter()
                    .zip(WEEKDAYS)
                    .map(|(row, day)| {
                        let mut r = vec![day.to_string()];
                        r.extend(row.iter().map(u64::to_string));
                        r
                    })
                    .collect(),
            )
        }
        "choices" => {
            let mut rows: Vec<Vec<String>> = s
                .choices
                .options
                .iter()
                .map(|o| {
                    vec![
                        o.key.clone(),
                        o.label.clone(),
                        o.calls.to_string(),
                        raw_f64(o.share),
                    ]
                })
                .collect();
            rows.push(vec![
                "none".into(),
                "Hung up in the menu".into(),
                s.choices.hung_up_in_menu.to_string(),
                String::new(),
            ]);
            (vec!["key", "option", "callers", "share"], rows)
        }
        "enquiries_by_trust" => counts(trust_rows(s), "trust", "enquiries"),
        "enquiries_by_category" => counts(category_rows(s), "category", "enquiries"),
        "enquiries_by_status" => counts(status_rows(s), "status", "enquiries"),
        "attempt_outcomes" => counts(outcome_rows(s), "outcome", "attempts"),
        "abandoned" => (
            vec![
                "at_london",
                "waited_seconds",
                "short_abandon",
                "listed_for_call_back",
                "called_back",
            ],
            s.abandoned_calls
                .iter()
                .map(|a| {
                    vec![
                        london(a.at, "%Y-%m-%d %H:%M:%S"),
                        a.waited_seconds.to_string(),
                        yes_no(a.short).into(),
                        yes_no(a.listed_for_callback).into(),
                        yes_no(a.called_back).into(),
                    ]
                })
                .collect(),
        ),
        "out_of_hours" => (
            vec!["reopened_at_london", "calls", "callback_requests"],
            s.out_of_hours
                .iter()
                .map(|o| {
                    vec![
                        o.reopened_at
                            .map(|t| london(t, "%Y-%m-%d %H:%M"))
                            .unwrap_or_default(),
                        o.calls.to_string(),
                        o.callback_requests.to_string(),
                    ]
                })
                .collect(),
        ),
        "journey" => {
            let mut rows: Vec<Vec<String>> = s
                .journey
                .branches
                .iter()
                .map(|((from, to), n)| {
                    vec!["branch".into(), from.clone(), to.clone(), n.to_string()]
                })
                .collect();
            rows.extend(s.journey.hung_up.iter().map(|(node, n)| {
                vec!["hung-up".into(), node.clone(), String::new(), n.to_string()]
            }));
            (vec!["kind", "from", "to", "callers"], rows)
        }
        _ => return None,
    })
}

/// Writes a CSV with every cell made safe for spreadsheets (none starts a formula).
pub fn write_csv(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>, WebError> {
    let fail = |e: csv::Error| {
        tracing::error!(error = %e, "statistics export failed");
        WebError::Render
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header.iter().map(|h| safe_cell(h)))
        .map_err(fail)?;
    for r in rows {
        w.write_record(r.iter().map(|c| safe_cell(c)))
            .map_err(fail)?;
    }
    w.into_inner().map_err(|e| {
        tracing::error!(error = %e, "statistics export failed");
        WebError::Render
    })
}

fn csv_response(name: &str, period: &Period, body: Vec<u8>) -> Response {
    // `name` is one of ours (checked against a fixed list), the dates are dates.
    let disposition = format!(
        "attachment; filename=\"helpline-{name}-{}-{}.csv\"",
        period.since.format("%Y-%m-%d"),
        period.until.format("%Y-%m-%d")
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// The query string of a resolved period (so links give the same days even with `today`).
fn period_query(p: &Period) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("since", &p.since.format("%Y-%m-%d").to_string());
    q.append_pair("until", &p.until.format("%Y-%m-%d").to_string());
    if let Some(t) = p.trust {
        q.append_pair("trust", t.as_str());
    }
    q.finish()
}

// ---------------------------------------------------------------------------------------
// Handlers.

#[derive(Debug, Deserialize, Default)]
struct ExportQuery {
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    include_numbers: Option<String>,
}

fn today(d: &Dashboard) -> NaiveDate {
    d.now().with_timezone(&LONDON).date_naive()
}

async fn table_csv(
    State(d): State<Dashboard>,
    staff: Staff,
    Query(q): Query<StatsQuery>,
    Query(x): Query<ExportQuery>,
) -> Result<Response, WebError> {
    staff.require(&d, Role::Manager, "statistics").await?;
    let name = x.table.as_deref().unwrap_or_default();
    if !TABLES.contains(&name) {
        return Err(WebError::BadRequest(format!(
            "`{name}` is not a statistics table: use one of {}",
            TABLES.join(", ")
        )));
    }
    let stats = d.stats(&q).await?;
    let (header, rows) = csv_table(&stats, name).ok_or(WebError::NotFound)?;
    let body = write_csv(&header, &rows)?;
    Ok(csv_response(name, &stats.period, body))
}

/// One row per enquiry made in the period, numbers masked unless `include_numbers=on`.
async fn enquiries_csv(
    State(d): State<Dashboard>,
    staff: Staff,
    Query(q): Query<StatsQuery>,
    Query(x): Query<ExportQuery>,
) -> Result<Response, WebError> {
    staff.require(&d, Role::Manager, "statistics").await?;
    let period = q.period(today(&d))?;
    let with_numbers = matches!(
        x.include_numbers.as_deref(),
        Some("on" | "true" | "1" | "yes")
    );
    let (from, to) = period.instants();
    let trust = period.trust.map(Trust::as_str);
    let facts: Vec<_> = d
        .store
        .enquiry_facts(from, to)
        .await?
        .into_iter()
        .filter(|e| trust.is_none_or(|t| e.trust == t))
        .collect();
    if with_numbers {
        // Personal data leaves the dashboard: recorded first, or not at all.
        let detail = format!(
            "statistics export with numbers ({} to {}, {} enquiries)",
            period.since.format("%Y-%m-%d"),
            period.until.format("%Y-%m-%d"),
            facts.len()
        );
        d.audit_first(
            Some(&staff.user),
            Action::NumberRevealed,
            None,
            &staff.address,
            Some(&detail),
        )
        .await?;
        tracing::info!(
            security = true,
            event = "numbers-exported",
            user = %staff.user.id,
            enquiries = facts.len(),
            "statistics export with full phone numbers"
        );
    }
    let time = |t: DateTime<Utc>| london(t, "%Y-%m-%d %H:%M");
    let mut rows = Vec::with_capacity(facts.len());
    for f in &facts {
        // Gone since the facts were read (cannot happen today: enquiries are never deleted).
        let Some(e) = d.store.enquiry(&f.id).await? else {
            continue;
        };
        let parsed = crate::phone::UkNumber::parse(&e.callback_number);
        let number = match (&parsed, with_numbers) {
            (Some(n), true) => n.national(),
            (Some(n), false) => n.masked(),
            (None, _) => "hidden".into(),
        };
        rows.push(vec![
            e.reference.to_string(),
            time(f.created_at),
            f.trust.clone(),
            f.category.clone(),
            f.status.clone(),
            f.source.clone(),
            f.attempts.to_string(),
            f.callback_due.format("%Y-%m-%d").to_string(),
            f.first_attempt_at.map(time).unwrap_or_default(),
            number,
        ]);
    }
    let header = [
        "reference",
        "created_at_london",
        "trust",
        "category",
        "status",
        "source",
        "attempts",
        "callback_due",
        "first_attempt_at_london",
        "number",
    ];
    let body = write_csv(&header, &rows)?;
    Ok(csv_response("enquiries", &period, body))
}

// ---------------------------------------------------------------------------------------
// The page.

pub struct Card {
    pub label: &'static str,
    pub value: String,
    pub note: String,
}

pub struct DayRow {
    pub label: String,
    pub in_hours: u64,
    pub out_of_hours: u64,
    pub total: u64,
}

pub struct HeatRow {
    pub day: &'static str,
    pub cells: Vec<u64>,
    pub total: u64,
}

pub struct ChoiceRow {
    pub key: String,
    pub label: String,
    pub calls: u64,
    pub share: String,
}

pub struct AbandonedRow {
    pub at: String,
    pub waited: String,
    pub short: &'static str,
    pub listed: &'static str,
    pub called_back: &'static str,
}

pub struct SpellRow {
    pub reopened: String,
    pub calls: u64,
    pub requests: u64,
}

/// Everything shown for a period.
pub struct Report {
    pub heading: String,
    pub scope: String,
    pub query: String,
    pub cards: Vec<Card>,
    pub calls: Vec<Figure>,
    pub enquiries: Vec<Figure>,
    pub queue: Vec<Figure>,
    pub day_chart: String,
    pub days: Vec<DayRow>,
    pub calls_total: u64,
    pub in_hours_total: u64,
    pub out_of_hours_total: u64,
    pub hour_chart: String,
    pub hours: Vec<(String, u64)>,
    pub heat_chart: String,
    pub heat: Vec<HeatRow>,
    pub hour_labels: Vec<String>,
    pub choice_chart: String,
    pub choices: Vec<ChoiceRow>,
    pub hung_up: u64,
    pub hung_up_share: String,
    pub by_trust: Vec<CountRow>,
    pub by_category: Vec<CountRow>,
    pub by_status: Vec<CountRow>,
    pub outcomes: Vec<CountRow>,
    pub enquiries_total: u64,
    pub attempts_total: u64,
    /// The most recent abandoned calls, newest first (at most [`ABANDONED_SHOWN`]).
    pub abandoned: Vec<AbandonedRow>,
    pub abandoned_total: usize,
    pub short_abandon_seconds: i64,
    /// The call flow with callers per branch and hang-ups per node (SVG).
    pub journey_chart: String,
    /// The same figures as a table: the busiest first.
    pub journey: Vec<JourneyRow>,
    pub spells: Vec<SpellRow>,
}

impl Report {
    /// The link to one table's export.
    pub fn csv(&self, table: &str) -> String {
        format!("/stats.csv?table={table}&{}", self.query)
    }

    /// The per-enquiry export's fields (as hidden inputs).
    pub fn period_fields(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

#[derive(Template)]
#[template(path = "stats.html")]
pub struct StatsPage {
    pub nav: Nav,
    pub periods: Vec<Choice>,
    pub since: String,
    pub until: String,
    pub trusts: Vec<Choice>,
    pub error: Option<String>,
    pub report: Option<Report>,
}

fn period_choices(selected: &str) -> Vec<Choice> {
    PERIODS
        .iter()
        .map(|(v, l)| Choice {
            value: (*v).to_string(),
            label: (*l).to_string(),
            selected: *v == selected,
        })
        .collect()
}

fn trust_choices(selected: Option<&str>) -> Vec<Choice> {
    Trust::ALL
        .iter()
        .map(|t| Choice {
            value: t.as_str().to_string(),
            label: views::trust_label(t.as_str()),
            selected: selected == Some(t.as_str()),
        })
        .collect()
}

async fn page(
    State(d): State<Dashboard>,
    staff: Staff,
    Query(q): Query<StatsQuery>,
) -> Result<Response, WebError> {
    staff.require(&d, Role::Manager, "statistics").await?;
    let nav = Nav::new(&staff.user, &staff.session.csrf, "stats");
    let chosen = q.period.as_deref().unwrap_or_default();
    match d.stats(&q).await {
        Ok(stats) => {
            let p = &stats.period;
            let page = StatsPage {
                nav,
                periods: period_choices(if PERIODS.iter().any(|(v, _)| *v == chosen) {
                    chosen
                } else {
                    ""
                }),
                since: p.since.format("%Y-%m-%d").to_string(),
                until: p.until.format("%Y-%m-%d").to_string(),
                trusts: trust_choices(p.trust.map(Trust::as_str)),
                error: None,
                report: Some(report(&stats, &d.flow)),
            };
            Ok(Html(render(&page)?).into_response())
        }
        Err(WebError::BadRequest(message)) => {
            // The form again, as it was sent, with what is wrong.
            let page = StatsPage {
                nav,
                periods: period_choices(chosen),
                since: q.since.clone().unwrap_or_default(),
                until: q.until.clone().unwrap_or_default(),
                trusts: trust_choices(q.trust.as_deref()),
                error: Some(message),
                report: None,
            };
            Ok((StatusCode::BAD_REQUEST, Html(render(&page)?)).into_response())
        }
        Err(e) => Err(e),
    }
}

/// One line of the journey map's table.
pub struct JourneyRow {
    pub what: String,
    pub callers: u64,
}

/// The journey map's figures, busiest first: each branch taken, then where callers hung up.
fn journey_rows(s: &Stats) -> Vec<JourneyRow> {
    let mut branches: Vec<JourneyRow> = s
        .journey
        .branches
        .iter()
        .map(|((from, to), n)| JourneyRow {
            what: format!("{from} → {to}"),
            callers: *n,
        })
        .collect();
    branches.sort_by(|a, b| b.callers.cmp(&a.callers).then(a.what.cmp(&b.what)));
    let mut hung_up: Vec<JourneyRow> = s
        .journey
        .hung_up
        .iter()
        .map(|(node, n)| JourneyRow {
            what: format!("hung up at {node}"),
            callers: *n,
        })
        .collect();
    hung_up.sort_by(|a, b| b.callers.cmp(&a.callers).then(a.what.cmp(&b.what)));
    branches.extend(hung_up);
    branches
}

/// The flow drawn with the period's callers (flows::diagram), named for screen readers
/// like the other charts, with its figures in the table below it.
fn journey_chart(flow: &crate::flows::Flow, s: &Stats) -> String {
    let callers: u64 = s
        .journey
        .branches
        .iter()
        .filter(|((from, _), _)| *from == flow.settings.start)
        .map(|(_, n)| n)
        .sum();
    let hung_up: u64 = s.journey.hung_up.values().sum();
    let desc = format!(
        "{callers} callers began the call flow and {hung_up} hung up while we waited for them. \
         The table below lists every branch taken and where callers hung up."
    );
    let named = crate::flows::diagram::Named {
        id: "chart-journey",
        class: "chart journey",
        title: "The callers' journey through the call flow",
        desc: &desc,
    };
    crate::flows::diagram::svg_named(flow, Some(&s.journey), Some(&named))
}

fn report(s: &Stats, flow: &crate::flows::Flow) -> Report {
    let p = &s.period;
    let heading = if p.since == p.until {
        p.since.format("%A %-d %B %Y").to_string()
    } else {
        format!(
            "{} to {}",
            p.since.format("%A %-d %B %Y"),
            p.until.format("%A %-d %B %Y")
        )
    };
    let scope = match p.trust {
        Some(t) => format!(
            "{} only: calls where the caller chose it, and enquiries about it",
            views::trust_label(t.as_str())
        ),
        None => "All hospitals".into(),
    };
    let figures = |list: Vec<Figure>| list.into_iter().filter(|f| f.on_page).collect();
    let c = &s.callbacks;
    let q = &s.queue;
    let cards = vec![
        Card {
            label: "Calls",
            value: s.calls.total.to_string(),
            note: format!(
                "{} in hours, {} out of hours",
                s.calls.in_hours, s.calls.out_of_hours
            ),
        },
        Card {
            label: "Enquiries",
            value: s.enquiries.total.to_string(),
            note: format!("{} still open", s.enquiries.open),
        },
        Card {
            label: "Called back within the promise",
            value: percent(c.within_promise_share),
            note: format!("{} of {}", c.within_promise, c.promise_due),
        },
        Card {
            label: "First attempt (median)",
            value: c
                .first_attempt_minutes_median
                .map_or_else(|| "—".into(), |m| views::duration_words(m * 60)),
            note: format!(
                "working time; 90th percentile {}",
                c.first_attempt_minutes_p90
                    .map_or_else(|| "—".into(), |m| views::duration_words(m * 60))
            ),
        },
        Card {
            label: "Average speed of answer",
            value: q
                .average_speed_of_answer_seconds
                .map_or_else(|| "—".into(), |a| format!("{a} s")),
            note: format!("{} answered of {} queued", q.answered, q.offered),
        },
        Card {
            label: "Service level",
            value: percent(q.service_level),
            note: format!(
                "answered within {} s; abandonment rate {}",
                q.thresholds.service_level_seconds,
                percent(q.abandonment_rate)
            ),
        },
    ];
    let days: Vec<DayRow> = s
        .calls
        .by_day
        .iter()
        .map(|d| DayRow {
            label: d.date.format("%a %-d %b").to_string(),
            in_hours: d.in_hours,
            out_of_hours: d.out_of_hours,
            total: d.total,
        })
        .collect();
    let hour_labels: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let hours: Vec<(String, u64)> = s
        .calls
        .by_hour
        .iter()
        .enumerate()
        .map(|(h, n)| (format!("{h:02}"), *n))
        .collect();
    let heat: Vec<HeatRow> = s
        .calls
        .heatmap
        .iter()
        .zip(WEEKDAYS)
        .map(|(row, day)| HeatRow {
            day,
            cells: row.clone(),
            total: row.iter().sum(),
        })
        .collect();
    let choices: Vec<ChoiceRow> = s
        .choices
        .options
        .iter()
        .map(|o| ChoiceRow {
            key: o.key.clone(),
            label: o.label.clone(),
            calls: o.calls,
            share: percent(o.share),
        })
        .collect();
    let share_of_calls = |n: u64| {
        if s.calls.total == 0 {
            None
        } else {
            Some(n as f64 / s.calls.total as f64)
        }
    };
    Report {
        heading,
        scope,
        query: period_query(p),
        cards,
        calls: figures(calls_figures(s)),
        enquiries: figures(enquiry_figures(s)),
        queue: figures(queue_figures(s)),
        day_chart: chart::day_columns(&s.calls.by_day),
        days,
        calls_total: s.calls.total,
        in_hours_total: s.calls.in_hours,
        out_of_hours_total: s.calls.out_of_hours,
        hour_chart: chart::hour_columns(&s.calls.by_hour),
        hours,
        heat_chart: chart::heatmap(&s.calls.heatmap),
        heat,
        hour_labels,
        choice_chart: chart::choice_bars(&s.choices, s.calls.total),
        choices,
        hung_up: s.choices.hung_up_in_menu,
        hung_up_share: percent(share_of_calls(s.choices.hung_up_in_menu)),
        by_trust: trust_rows(s),
        by_category: category_rows(s),
        by_status: status_rows(s),
        outcomes: outcome_rows(s),
        enquiries_total: s.enquiries.total,
        attempts_total: s.enquiries.attempt_outcomes.values().sum(),
        abandoned_total: s.abandoned_calls.len(),
        journey_chart: journey_chart(flow, s),
        journey: journey_rows(s),
        abandoned: s
            .abandoned_calls
            .iter()
            .rev()
            .take(ABANDONED_SHOWN)
            .map(|a| AbandonedRow {
                at: london(a.at, "%a %-d %b %Y, %H:%M:%S"),
                waited: wait_words(a.waited_seconds),
                short: yes_no(a.short),
                listed: yes_no(a.listed_for_callback),
                called_back: yes_no(a.called_back),
            })
            .collect(),
        short_abandon_seconds: q.thresholds.short_abandon_seconds,
        spells: s
            .out_of_hours
            .iter()
            .map(|o| SpellRow {
                reopened: o.reopened_at.map_or_else(
                    || "not yet known".into(),
                    |t| london(t, "%a %-d %b %Y, %H:%M"),
                ),
                calls: o.calls,
                requests: o.callback_requests,
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Charts.

/// Simple SVG charts, drawn by hand: bars, stacked bars and a shaded grid. Every chart has
/// a `<title>` and `<desc>` (named by `aria-labelledby`, with `role="img"`), a visible title
/// and axis labels, numbers written on the marks, and patterns as well as colours, so it
/// reads in black and white. Only presentation attributes: no `style`.
mod chart {
    use std::fmt::Write as _;

    use crate::stats::{Choices, Day};

    const INK: &str = "#1d1d1b";
    const MUTED: &str = "#595959";
    const GRID: &str = "#d8d8d8";
    const BAR: &str = "#005eb8";
    const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Arial, sans-serif";

    /// Text for XML: `&`, `<`, `>`, quotes escaped.
    pub fn esc(s: &str) -> String {
        quick_xml::escape::escape(s).into_owned()
    }

    /// A "nice" axis: a step of 1, 2 or 5 × 10ⁿ giving at most about five ticks, and the top.
    pub fn scale(max: u64) -> (u64, u64) {
        if max == 0 {
            return (1, 1);
        }
        let target = max.div_ceil(5).max(1);
        let mut magnitude = 1u64;
        while magnitude.saturating_mul(10) <= target {
            magnitude = magnitude.saturating_mul(10);
        }
        let step = [1u64, 2, 5, 10]
            .iter()
            .map(|m| m.saturating_mul(magnitude))
            .find(|s| *s >= target)
            .unwrap_or(magnitude.saturating_mul(10));
        (step, max.div_ceil(step).saturating_mul(step))
    }

    /// The opening of a chart: `<svg>`, title, description, patterns, visible title.
    fn open(out: &mut String, id: &str, width: u32, height: u32, title: &str, desc: &str) {
        let _ = write!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{id}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{id}-title {id}-desc" font-family="{font}"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>"##,
            font = esc(FONT),
            title = esc(title),
            desc = esc(desc),
        );
        let _ = write!(
            out,
            r##"<defs><pattern id="{id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/><line x1="0" y1="0" x2="0" y2="6" stroke="{MUTED}" stroke-width="3"/></pattern></defs>"##
        );
        let _ = write!(
            out,
            r##"<text x="0" y="18" font-size="16" font-weight="bold" fill="{INK}">{}</text>"##,
            esc(title)
        );
    }

    fn text(out: &mut String, x: f64, y: f64, anchor: &str, size: u32, fill: &str, s: &str) {
        let _ = write!(
            out,
            r##"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" fill="{fill}">{}</text>"##,
            esc(s)
        );
    }

    /// One series of a column chart: its name and how its marks are filled.
    struct Series {
        name: &'static str,
        fill: String,
    }

    /// A column chart; each column has one value per series, stacked from the bottom.
    #[allow(clippy::too_many_arguments)] // one chart, described in full
    fn columns(
        id: &str,
        title: &str,
        desc: &str,
        x_label: &str,
        y_label: &str,
        labels: &[String],
        values: &[Vec<u64>],
        series: &[Series],
    ) -> String {
        let (width, height) = (960.0_f64, 340.0_f64);
        let (left, right, top, bottom) = (64.0, 16.0, 56.0, 64.0);
        let plot_w = width - left - right;
        let plot_h = height - top - bottom;
        let totals: Vec<u64> = values.iter().map(|v| v.iter().sum()).collect();
        let (step, top_value) = scale(totals.iter().copied().max().unwrap_or(0));
        let y = |v: u64| top + plot_h - (v as f64 / top_value as f64) * plot_h;
        let mut out = String::new();
        open(&mut out, id, width as u32, height as u32, title, desc);
        // Legend (when there is more than one series), top right.
        if series.len() > 1 {
            let mut x = width - right;
            for s in series.iter().rev() {
                let w = 24.0 + 7.5 * s.name.chars().count() as f64;
                x -= w + 12.0;
                let _ = write!(
                    out,
                    r##"<rect x="{x:.1}" y="28" width="16" height="16" fill="{}" stroke="{INK}" stroke-width="1"/>"##,
                    s.fill
                );
                text(&mut out, x + 22.0, 41.0, "start", 13, INK, s.name);
            }
        }
        // Grid lines and the value axis.
        let mut v = 0;
        while v <= top_value {
            let yy = y(v);
            let _ = write!(
                out,
                r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{GRID}" stroke-width="1"/>"##,
                width - right
            );
            text(
                &mut out,
                left - 8.0,
                yy + 4.0,
                "end",
                12,
                INK,
                &v.to_string(),
            );
            v += step;
        }
        let _ = write!(
            out,
            r##"<text transform="rotate(-90)" x="{:.1}" y="16" text-anchor="middle" font-size="13" fill="{INK}">{}</text>"##,
            -(top + plot_h / 2.0),
            esc(y_label)
        );
        // Columns.
        let n = labels.len().max(1);
        let slot = plot_w / n as f64;
        let bar_w = (slot * 0.7).clamp(1.0, 64.0);
        // Label every column if the labels fit (about 7.5 px a character), else every k-th.
        let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
        let every = (n as f64 / (plot_w / (widest * 7.5 + 12.0)))
            .ceil()
            .max(1.0) as usize;
        for (i, (label, parts)) in labels.iter().zip(values).enumerate() {
            let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
            let total: u64 = parts.iter().sum();
            let detail = if series.len() > 1 {
                let words: Vec<String> = series
                    .iter()
                    .zip(parts)
                    .map(|(s, v)| format!("{v} {}", s.name.to_lowercase()))
                    .collect();
                format!("{label}: {total} ({})", words.join(", "))
            } else {
                format!("{label}: {total}")
            };
            let _ = write!(out, "<g><title>{}</title>", esc(&detail));
            let mut base = 0u64;
            for (s, v) in series.iter().zip(parts) {
                if *v > 0 {
                    let (y0, y1) = (y(base + v), y(base));
                    let _ = write!(
                        out,
                        r##"<rect x="{x:.1}" y="{y0:.1}" width="{bar_w:.1}" height="{:.1}" fill="{}" stroke="{INK}" stroke-width="0.5"/>"##,
                        y1 - y0,
                        s.fill
                    );
                }
                base += v;
            }
            if total > 0 && n <= 40 {
                text(
                    &mut out,
                    x + bar_w / 2.0,
                    y(total) - 4.0,
                    "middle",
                    12,
                    INK,
                    &total.to_string(),
                );
            }
            out.push_str("</g>");
            if i % every == 0 {
                text(
                    &mut out,
                    x + bar_w / 2.0,
                    top + plot_h + 18.0,
                    "middle",
                    12,
                    INK,
                    label,
                );
            }
        }
        // The baseline and the category axis label.
        let _ = write!(
            out,
            r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{INK}" stroke-width="1"/>"##,
            top + plot_h,
            width - right,
            top + plot_h
        );
        text(
            &mut out,
            left + plot_w / 2.0,
            height - 12.0,
            "middle",
            13,
            INK,
            x_label,
        );
        out.push_str("</svg>");
        out
    }

    /// Calls by day, in hours (solid) and out of hours (hatched) stacked.
    pub fn day_columns(days: &[Day]) -> String {
        let id = "chart-days";
        let long = days.len() > 14;
        let labels: Vec<String> = days
            .iter()
            .map(|d| {
                if long {
                    d.date.format("%-d %b").to_string()
                } else {
                    d.date.format("%a %-d").to_string()
                }
            })
            .collect();
        let values: Vec<Vec<u64>> = days
            .iter()
            .map(|d| vec![d.in_hours, d.out_of_hours])
            .collect();
        let total: u64 = days.iter().map(|d| d.total).sum();
        let busiest = days
            .iter()
            .max_by_key(|d| d.total)
            .filter(|d| d.total > 0)
            .map(|d| {
                format!(
                    " The busiest day was {} with {} calls.",
                    d.date.format("%A %-d %B"),
                    d.total
                )
            })
            .unwrap_or_default();
        columns(
            id,
            "Calls each day, in hours and out of hours",
            &format!(
                "Stacked columns, one per day: calls in hours (solid) and out of hours (hatched). {total} calls in all.{busiest} The table below gives every number."
            ),
            "Day (Europe/London)",
            "Calls",
            &labels,
            &values,
            &[
                Series {
                    name: "In hours",
                    fill: BAR.into(),
                },
                Series {
                    name: "Out of hours",
                    fill: format!("url(#{id}-hatch)"),
                },
            ],
        )
    }

    /// Calls by hour of the day.
    pub fn hour_columns(by_hour: &[u64]) -> String {
        let labels: Vec<String> = (0..by_hour.len()).map(|h| format!("{h:02}")).collect();
        let values: Vec<Vec<u64>> = by_hour.iter().map(|n| vec![*n]).collect();
        let busiest = by_hour
            .iter()
            .enumerate()
            .max_by_key(|(_, n)| **n)
            .filter(|(_, n)| **n > 0)
            .map(|(h, n)| format!(" The busiest hour was {h:02}:00 to {h:02}:59 with {n} calls."))
            .unwrap_or_default();
        columns(
            "chart-hours",
            "Calls in each hour of the day, all days of the period together",
            &format!(
                "Columns, one per hour from 00 (midnight) to 23, of calls that started in that hour.{busiest} The table below gives every number."
            ),
            "Hour the call started (Europe/London)",
            "Calls",
            &labels,
            &values,
            &[Series {
                name: "Calls",
                fill: BAR.into(),
            }],
        )
    }

    /// A shade between white and the bar colour for a share 0–1 of the busiest cell.
    fn shade(t: f64) -> String {
        let (r, g, b) = (0x00 as f64, 0x5e as f64, 0xb8 as f64);
        let mix = |c: f64| (255.0 + (c - 255.0) * t).round().clamp(0.0, 255.0) as u8;
        format!("#{:02x}{:02x}{:02x}", mix(r), mix(g), mix(b))
    }

    /// Weekday × hour: a grid shaded by the number of calls, with the number in each cell.
    pub fn heatmap(grid: &[Vec<u64>]) -> String {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let id = "chart-heatmap";
        let (left, top, cell_w, cell_h) = (48.0_f64, 56.0_f64, 37.0_f64, 30.0_f64);
        let width = left + cell_w * 24.0 + 8.0;
        let height = top + cell_h * 7.0 + 44.0;
        let max = grid.iter().flatten().copied().max().unwrap_or(0);
        let busiest = grid
            .iter()
            .enumerate()
            .flat_map(|(d, row)| row.iter().enumerate().map(move |(h, n)| (d, h, *n)))
            .max_by_key(|(_, _, n)| *n)
            .filter(|(_, _, n)| *n > 0)
            .map(|(d, h, n)| {
                format!(
                    " The busiest was {} {h:02}:00 to {h:02}:59 with {n} calls.",
                    super::WEEKDAYS.get(d).copied().unwrap_or("")
                )
            })
            .unwrap_or_default();
        let mut out = String::new();
        open(
            &mut out,
            id,
            width.round() as u32,
            height.round() as u32,
            "Calls by weekday and hour of the day",
            &format!(
                "A grid of 7 rows (Monday to Sunday) by 24 columns (hours 00 to 23); each square shows the number of calls that started then, darker for more.{busiest} The table below gives every number."
            ),
        );
        for h in 0..24 {
            text(
                &mut out,
                left + cell_w * (f64::from(h) + 0.5),
                top - 8.0,
                "middle",
                12,
                INK,
                &format!("{h:02}"),
            );
        }
        for (d, row) in grid.iter().enumerate().take(7) {
            let day = DAYS.get(d).copied().unwrap_or("");
            let yy = top + cell_h * d as f64;
            text(
                &mut out,
                left - 8.0,
                yy + cell_h / 2.0 + 4.0,
                "end",
                12,
                INK,
                day,
            );
            for (h, n) in row.iter().enumerate().take(24) {
                let xx = left + cell_w * h as f64;
                let t = if max == 0 || *n == 0 {
                    0.0
                } else {
                    0.15 + 0.85 * (*n as f64 / max as f64)
                };
                let _ = write!(
                    out,
                    r##"<g><title>{day} {h:02}:00–{h:02}:59: {n} calls</title><rect x="{xx:.1}" y="{yy:.1}" width="{cell_w}" height="{cell_h}" fill="{}" stroke="{GRID}" stroke-width="1"/>"##,
                    shade(t)
                );
                let (fill, weight) = if t >= 0.8 {
                    ("#ffffff", "bold")
                } else if *n == 0 {
                    (MUTED, "normal")
                } else {
                    (INK, "bold")
                };
                let _ = write!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" font-weight="{weight}" fill="{fill}">{}</text></g>"##,
                    xx + cell_w / 2.0,
                    yy + cell_h / 2.0 + 4.0,
                    if *n == 0 {
                        "·".to_string()
                    } else {
                        n.to_string()
                    }
                );
            }
        }
        text(
            &mut out,
            left + cell_w * 12.0,
            height - 12.0,
            "middle",
            13,
            INK,
            "Hour the call started (Europe/London); rows are weekdays; “·” is none",
        );
        out.push_str("</svg>");
        out
    }

    /// What callers chose in the main menu, and those who hung up there: horizontal bars.
    pub fn choice_bars(choices: &Choices, calls: u64) -> String {
        let id = "chart-choices";
        let mut rows: Vec<(String, u64, bool)> = choices
            .options
            .iter()
            .map(|o| (format!("{} (key {})", o.label, o.key), o.calls, false))
            .collect();
        rows.push(("Hung up in the menu".into(), choices.hung_up_in_menu, true));
        let (left, right, top, row_h) = (230.0_f64, 110.0_f64, 40.0_f64, 32.0_f64);
        let width = 960.0_f64;
        let plot_w = width - left - right;
        let height = top + row_h * rows.len() as f64 + 48.0;
        let (step, top_value) = scale(rows.iter().map(|r| r.1).max().unwrap_or(0));
        let x = |v: u64| left + (v as f64 / top_value as f64) * plot_w;
        let mut out = String::new();
        open(
            &mut out,
            id,
            width as u32,
            height.round() as u32,
            "What callers chose in the main menu",
            &format!(
                "Horizontal bars: callers who chose each option at least once, and calls that ended in the menu without a choice (hatched), out of {calls} calls. The table below gives every number."
            ),
        );
        let bottom = top + row_h * rows.len() as f64;
        let mut v = 0;
        while v <= top_value {
            let xx = x(v);
            let _ = write!(
                out,
                r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{bottom:.1}" stroke="{GRID}" stroke-width="1"/>"##
            );
            text(
                &mut out,
                xx,
                bottom + 16.0,
                "middle",
                12,
                INK,
                &v.to_string(),
            );
            v += step;
        }
        for (i, (label, n, hatched)) in rows.iter().enumerate() {
            let yy = top + row_h * i as f64;
            let share = if calls == 0 {
                String::new()
            } else {
                format!(" ({})", super::percent(Some(*n as f64 / calls as f64)))
            };
            let _ = write!(out, "<g><title>{}: {n}{}</title>", esc(label), esc(&share));
            text(
                &mut out,
                left - 8.0,
                yy + row_h / 2.0 + 4.0,
                "end",
                13,
                INK,
                label,
            );
            let fill = if *hatched {
                format!("url(#{id}-hatch)")
            } else {
                BAR.to_string()
            };
            if *n > 0 {
                let _ = write!(
                    out,
                    r##"<rect x="{left}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="{INK}" stroke-width="0.5"/>"##,
                    yy + 6.0,
                    x(*n) - left,
                    row_h - 12.0
                );
            }
            text(
                &mut out,
                x(*n) + 6.0,
                yy + row_h / 2.0 + 4.0,
                "start",
                12,
                INK,
                &format!("{n}{share}"),
            );
            out.push_str("</g>");
        }
        let _ = write!(
            out,
            r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom:.1}" stroke="{INK}" stroke-width="1"/>"##
        );
        text(
            &mut out,
            left + plot_w / 2.0,
            height - 8.0,
            "middle",
            13,
            INK,
            "Callers (share of all calls)",
        );
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_never_start_a_formula() {
        let body = write_csv(
            &["label", "value"],
            &[
                vec!["=HYPERLINK(\"http://x\")".into(), "+1".into()],
                vec!["@SUM(A1)".into(), "-2".into()],
                vec!["plain".into(), "3".into()],
            ],
        )
        .unwrap();
        let mut r = csv::Reader::from_reader(body.as_slice());
        let rows: Vec<Vec<String>> = r
            .records()
            .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
            .collect();
        assert_eq!(rows[0], ["'=HYPERLINK(\"http://x\")", "'+1"]);
        assert_eq!(rows[1], ["'@SUM(A1)", "'-2"]);
        assert_eq!(rows[2], ["plain", "3"]);
    }

    #[test]
    fn axes_have_round_steps() {
        assert_eq!(chart::scale(0), (1, 1));
        assert_eq!(chart::scale(1), (1, 1));
        assert_eq!(chart::scale(8), (2, 8));
        assert_eq!(chart::scale(9), (2, 10));
        assert_eq!(chart::scale(23), (5, 25));
        assert_eq!(chart::scale(480), (100, 500));
    }

    #[test]
    fn percentages_read_naturally() {
        assert_eq!(percent(Some(0.5)), "50%");
        assert_eq!(percent(Some(0.6667)), "66.7%");
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(percent(None), "—");
        assert_eq!(wait_words(40), "40 s");
        assert_eq!(wait_words(185), "3 min 05 s");
    }

    #[test]
    fn chart_text_is_escaped_and_never_styled() {
        let choices = crate::stats::Choices {
            callers_choosing: 1,
            options: vec![crate::stats::Choice {
                key: "1".into(),
                label: "<script>alert(1)</script> & \"x\"".into(),
                calls: 1,
                share: Some(1.0),
            }],
            hung_up_in_menu: 0,
        };
        let svg = chart::choice_bars(&choices, 1);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
        assert!(!svg.contains("style="), "{svg}");
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"chart-choices-title\">"));
    }
}
