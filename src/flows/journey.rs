//! The managers' journey map: the way each call took through the flow, from its recorded
//! steps, as caller counts for [`diagram`](super::diagram). Pure: the statistics read the
//! steps and add up the calls.

use std::collections::BTreeSet;

use super::diagram::Counts;
use super::model::{Flow, NodeKind};

/// One recorded step of a call, as the journey map needs it: the node that took the
/// input, the outcome, and the route the call then took (`call_steps.path`, split on
/// spaces; empty for steps recorded before routes were kept, and for steps that pass
/// through no node: a hang-up in the queue, the goodbye after an adviser, the apology).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRoute {
    pub node: String,
    pub outcome: String,
    pub path: Vec<String>,
}

/// A stored route (`call_steps.path`: node ids separated by spaces; NULL for none) as ids.
pub fn split_path(stored: Option<&str>) -> Vec<String> {
    stored
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Adds one call to `into`.
///
/// **Branches**: every branch of the flow the call took, once per call however often it
/// was taken. Within each step, consecutive pairs of `[step.node] ++ step.path` that are a
/// branch of `flow` (the `from` node leads to the `to` node); a pair of the same node
/// twice, and a pair the flow does not have (an edited flow, or a step recorded before
/// routes were kept), are skipped. Pairs never span two steps: each step's path starts
/// where the previous one ended.
///
/// **Hung up**: only for a call that has `ended`, and only from its last step (in `steps`
/// order, which must be `seq` order): with the outcome `hung-up-in-queue`, the step's own
/// node (the queue); otherwise the last node of its path when that node waits for the
/// caller (menu, ask number, record, queue). Nothing when that node ends the call itself
/// (`hangup`: we said goodbye), when the path is empty, or when the node is not in `flow`.
pub fn call_counts(flow: &Flow, ended: bool, steps: &[StepRoute], into: &mut Counts) {
    let mut taken: BTreeSet<(&str, &str)> = BTreeSet::new();
    for step in steps {
        let route = std::iter::once(&step.node).chain(&step.path);
        let mut from: Option<&str> = None;
        for to in route {
            if let Some(from) = from.filter(|f| *f != to && is_branch(flow, f, to)) {
                taken.insert((from, to));
            }
            from = Some(to);
        }
    }
    for (from, to) in taken {
        let n = into
            .branches
            .entry((from.to_string(), to.to_string()))
            .or_default();
        *n = n.saturating_add(1);
    }
    if !ended {
        return;
    }
    if let Some(node) = steps.last().and_then(|last| hung_up_at(flow, last)) {
        let n = into.hung_up.entry(node.to_string()).or_default();
        *n = n.saturating_add(1);
    }
}

/// `from` leads to `to` in the flow.
fn is_branch(flow: &Flow, from: &str, to: &str) -> bool {
    flow.node(from)
        .is_some_and(|n| n.kind.targets().iter().any(|(_, t)| t.as_str() == to))
}

/// Where a call whose last step was `last` left us, if the caller hung up.
fn hung_up_at<'a>(flow: &Flow, last: &'a StepRoute) -> Option<&'a str> {
    if last.outcome == "hung-up-in-queue" {
        return Some(last.node.as_str());
    }
    let node = last.path.last()?;
    let waits = flow
        .node(node)
        .is_some_and(|n| n.kind.waits_for_caller() && !matches!(n.kind, NodeKind::Hangup { .. }));
    waits.then_some(node.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::builtin;

    fn step(node: &str, outcome: &str, path: &[&str]) -> StepRoute {
        StepRoute {
            node: node.into(),
            outcome: outcome.into(),
            path: path.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn branches(counts: &Counts) -> Vec<(&str, &str, u64)> {
        counts
            .branches
            .iter()
            .map(|((f, t), n)| (f.as_str(), t.as_str(), *n))
            .collect()
    }

    fn hung_up(counts: &Counts) -> Vec<(&str, u64)> {
        counts
            .hung_up
            .iter()
            .map(|(node, n)| (node.as_str(), *n))
            .collect()
    }

    #[test]
    fn a_caller_who_hears_the_update_twice_counts_each_branch_once() {
        let flow = builtin().unwrap();
        let steps = [
            step(
                "welcome",
                "start-open",
                &["welcome", "greeting_open", "main_menu"],
            ),
            step("main_menu", "option-1", &["latest_update", "main_menu"]),
            step("main_menu", "option-1", &["latest_update", "main_menu"]),
        ];
        let mut counts = Counts::default();
        call_counts(&flow, true, &steps, &mut counts);
        assert_eq!(
            branches(&counts),
            vec![
                ("greeting_open", "main_menu", 1),
                ("latest_update", "main_menu", 1),
                ("main_menu", "latest_update", 1),
                ("welcome", "greeting_open", 1),
            ]
        );
        assert_eq!(hung_up(&counts), vec![("main_menu", 1)]);

        // A second call adds to the first.
        call_counts(&flow, true, &steps[..1], &mut counts);
        assert_eq!(
            counts.branches[&("welcome".into(), "greeting_open".into())],
            2
        );
        assert_eq!(
            counts.branches[&("main_menu".into(), "latest_update".into())],
            1
        );
        assert_eq!(hung_up(&counts), vec![("main_menu", 2)]);
    }

    #[test]
    fn a_call_still_going_on_has_branches_but_no_hang_up() {
        let flow = builtin().unwrap();
        let steps = [step(
            "welcome",
            "start-closed",
            &["welcome", "greeting_closed", "main_menu"],
        )];
        let mut counts = Counts::default();
        call_counts(&flow, false, &steps, &mut counts);
        assert_eq!(branches(&counts).len(), 2);
        assert!(counts.hung_up.is_empty());
    }

    #[test]
    fn a_completed_request_ends_with_us_not_a_hang_up() {
        let flow = builtin().unwrap();
        let steps = [
            step(
                "welcome",
                "start-open",
                &["welcome", "greeting_open", "main_menu"],
            ),
            step(
                "main_menu",
                "option-2",
                &["callback_start", "callback_number", "confirm_number"],
            ),
            step("confirm_number", "option-1", &["choose_trust"]),
            step("choose_trust", "option-3", &["choose_category"]),
            step("choose_category", "option-1", &["record_message"]),
            step(
                "record_message",
                "no-message",
                &["save_enquiry", "callback_confirmed"],
            ),
        ];
        let mut counts = Counts::default();
        call_counts(&flow, true, &steps, &mut counts);
        let taken = branches(&counts);
        for edge in [
            ("main_menu", "callback_start", 1),
            ("callback_number", "confirm_number", 1),
            ("confirm_number", "choose_trust", 1),
            ("record_message", "save_enquiry", 1),
            ("save_enquiry", "callback_confirmed", 1),
        ] {
            assert!(taken.contains(&edge), "{edge:?} in {taken:?}");
        }
        assert_eq!(taken.len(), 10, "{taken:?}");
        assert!(counts.hung_up.is_empty(), "the hangup node is our goodbye");

        // Hanging up at the hospital question instead.
        let mut counts = Counts::default();
        call_counts(&flow, true, &steps[..3], &mut counts);
        assert_eq!(hung_up(&counts), vec![("choose_trust", 1)]);
    }

    #[test]
    fn queue_hang_ups_are_at_the_queue_and_answered_callers_are_not_hang_ups() {
        let flow = builtin().unwrap();
        let to_queue = [
            step(
                "welcome",
                "start-open",
                &["welcome", "greeting_open", "main_menu"],
            ),
            step("main_menu", "option-0", &["adviser", "adviser_queue"]),
        ];
        let mut abandoned = to_queue.to_vec();
        abandoned.push(step("adviser_queue", "hung-up-in-queue", &[]));
        let mut counts = Counts::default();
        call_counts(&flow, true, &abandoned, &mut counts);
        assert_eq!(hung_up(&counts), vec![("adviser_queue", 1)]);
        assert!(branches(&counts).contains(&("adviser", "adviser_queue", 1)));

        let mut answered = to_queue.to_vec();
        answered.push(step("adviser_queue", "bridged", &[]));
        let mut counts = Counts::default();
        call_counts(&flow, true, &answered, &mut counts);
        assert!(counts.hung_up.is_empty());

        // Gone before the queue's own callback came: hung up while queued.
        let mut counts = Counts::default();
        call_counts(&flow, true, &to_queue, &mut counts);
        assert_eq!(hung_up(&counts), vec![("adviser_queue", 1)]);

        // Left the queue for a call back: the queue's branch to the request.
        let mut left = to_queue.to_vec();
        left.push(step(
            "adviser_queue",
            "left-queue",
            &["callback_start", "callback_number", "enter_number"],
        ));
        let mut counts = Counts::default();
        call_counts(&flow, true, &left, &mut counts);
        assert!(branches(&counts).contains(&("adviser_queue", "callback_start", 1)));
        assert_eq!(hung_up(&counts), vec![("enter_number", 1)]);
    }

    #[test]
    fn re_asks_give_up_and_old_steps() {
        let flow = builtin().unwrap();
        let steps = [
            step(
                "welcome",
                "start-closed",
                &["welcome", "greeting_closed", "main_menu"],
            ),
            step("main_menu", "no-input", &["main_menu"]),
            step("main_menu", "invalid", &["main_menu"]),
            step("main_menu", "gave-up", &["goodbye_after_failures"]),
        ];
        let mut counts = Counts::default();
        call_counts(&flow, true, &steps, &mut counts);
        assert!(branches(&counts).contains(&("main_menu", "goodbye_after_failures", 1)));
        assert!(!counts
            .branches
            .contains_key(&("main_menu".into(), "main_menu".into())));
        assert!(counts.hung_up.is_empty(), "we ended the call");

        // Steps recorded before paths were kept: nothing to draw, no guess.
        let old = [
            step("welcome", "start-open", &[]),
            step("main_menu", "option-1", &[]),
        ];
        let mut counts = Counts::default();
        call_counts(&flow, true, &old, &mut counts);
        assert_eq!(counts, Counts::default());

        // Pairs the flow does not have are skipped; the rest still count.
        let edited = [step(
            "welcome",
            "start-open",
            &["welcome", "greeting_open", "old_menu", "main_menu"],
        )];
        let mut counts = Counts::default();
        call_counts(&flow, true, &edited, &mut counts);
        assert_eq!(branches(&counts), vec![("welcome", "greeting_open", 1)]);
        assert_eq!(hung_up(&counts), vec![("main_menu", 1)]);

        // No steps at all.
        let mut counts = Counts::default();
        call_counts(&flow, true, &[], &mut counts);
        assert_eq!(counts, Counts::default());
    }
}
