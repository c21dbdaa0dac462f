//! The call flow as a diagram: Graphviz DOT source, and SVG laid out in-process.

use std::collections::BTreeMap;

use super::Flow;

/// How many callers took each branch (from node, to node) and how many hung up at each
/// node, for the managers' journey map; `None` draws the flow alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub branches: BTreeMap<(String, String), u64>,
    pub hung_up: BTreeMap<String, u64>,
}

/// Graphviz DOT source for the flow.
pub fn dot(flow: &Flow, counts: Option<&Counts>) -> String {
    let _ = (flow, counts);
    String::from("digraph flow {}")
}

/// The flow laid out as an SVG document.
pub fn svg(flow: &Flow, counts: Option<&Counts>) -> String {
    let _ = (flow, counts);
    String::from("<svg xmlns=\"http://www.w3.org/2000/svg\"/>")
}
