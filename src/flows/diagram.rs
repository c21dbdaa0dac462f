//! The call flow as a diagram: Graphviz DOT source, and SVG laid out in-process.
//!
//! The SVG is laid out by `layout-rs` (a layered, Graphviz-like layout in pure Rust, so no
//! Graphviz install is needed) and drawn by [`Canvas`] here, which controls the fonts,
//! escaping and line widths. Both formats draw the same boxes ([`node_lines`]) and arrows
//! ([`arrows`], built from [`references`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow as LayoutArrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::model::{Condition, Node, NodeKind, Retry};
use super::Flow;

/// How many callers took each branch (from node, to node) and how many hung up at each
/// node, for the managers' journey map; `None` draws the flow alone.
///
/// As JSON (serde), the branches are a list, since a map's keys must be strings there:
/// `{"branches": [{"from": "main_menu", "to": "latest_update", "callers": 12}],
/// "hung_up": {"main_menu": 3}}`, branches in (from, to) order. Reading one, a branch
/// listed twice counts the sum of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// (from node id, to node id) -> callers who took that branch in the period
    #[serde(with = "branch_list", default)]
    pub branches: BTreeMap<(String, String), u64>,
    /// node id -> callers whose call ended (hung up) while at that node
    #[serde(default)]
    pub hung_up: BTreeMap<String, u64>,
}

impl Counts {
    /// Adds `other`'s callers to these (e.g. one day's to a period's).
    pub fn add(&mut self, other: &Counts) {
        for (edge, n) in &other.branches {
            let sum = self.branches.entry(edge.clone()).or_default();
            *sum = sum.saturating_add(*n);
        }
        for (node, n) in &other.hung_up {
            let sum = self.hung_up.entry(node.clone()).or_default();
            *sum = sum.saturating_add(*n);
        }
    }
}

/// [`Counts::branches`] as a list of `{from, to, callers}`.
mod branch_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct BranchRef<'a> {
        from: &'a str,
        to: &'a str,
        callers: u64,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Branch {
        from: String,
        to: String,
        callers: u64,
    }

    pub fn serialize<S: Serializer>(
        branches: &BTreeMap<(String, String), u64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(branches.iter().map(|((from, to), callers)| BranchRef {
            from,
            to,
            callers: *callers,
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<(String, String), u64>, D::Error> {
        let mut branches = BTreeMap::new();
        for b in Vec::<Branch>::deserialize(deserializer)? {
            let sum: &mut u64 = branches.entry((b.from, b.to)).or_default();
            *sum = sum.saturating_add(b.callers);
        }
        Ok(branches)
    }
}

/// Graphviz DOT source for the flow.
pub fn dot(flow: &Flow, counts: Option<&Counts>) -> String {
    let mut out = String::from(
        "digraph flow {\n  rankdir=TB;\n  \
         node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n  \
         edge [fontname=\"Helvetica\", fontsize=11, color=\"#4a4a4a\"];\n",
    );
    for node in order(flow) {
        let border = if node.id == flow.settings.start { 3 } else { 1 };
        let _ = writeln!(
            out,
            "  {} [label={}, fillcolor=\"{}\", penwidth={border}];",
            quoted(&[&node.id]),
            quoted(&node_lines(flow, node, counts)),
            fill(&node.kind),
        );
    }
    let arrows = arrows(flow, counts);
    let busiest = busiest(&arrows);
    for arrow in &arrows {
        let mut attrs = format!("label={}", quoted(&arrow.lines()));
        if arrow.callers.is_some() {
            let _ = write!(attrs, ", penwidth={:.1}", arrow.weight(busiest));
        }
        if arrow.retry {
            attrs.push_str(", style=dashed, color=\"#9a9a9a\"");
        }
        let _ = writeln!(
            out,
            "  {} -> {} [{attrs}];",
            quoted(&[arrow.from]),
            quoted(&[arrow.to]),
        );
    }
    out.push_str("}\n");
    out
}

/// How a drawing put into a web page is named for screen readers: the `<svg>` gets `id`,
/// `class`, `role="img"` and `aria-labelledby` its `<title>` and `<desc>` (ids `{id}-title`
/// and `{id}-desc`), which come first inside it.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub id: &'a str,
    pub class: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
}

impl Named<'_> {
    /// The attributes for the `<svg>` tag (with a leading space) and the elements that
    /// open its content.
    fn parts(named: Option<&Named>) -> (String, String) {
        match named {
            None => (String::new(), String::new()),
            Some(n) => (
                format!(
                    " id=\"{id}\" class=\"{class}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\"",
                    id = xml(n.id),
                    class = xml(n.class)
                ),
                format!(
                    "<title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
                    xml(n.title),
                    xml(n.desc),
                    id = xml(n.id)
                ),
            ),
        }
    }
}

/// The flow laid out as an SVG document.
pub fn svg(flow: &Flow, counts: Option<&Counts>) -> String {
    svg_named(flow, counts, None)
}

/// The same, named for a web page.
pub fn svg_named(flow: &Flow, counts: Option<&Counts>, named: Option<&Named>) -> String {
    // layout-rs now and then nudges a label onto a box, and asserts its own invariants (a
    // failed one panics, and the panic hook still prints it): so the flow is laid out with
    // its boxes in a few orders, the drawing with the fewest overlaps is kept, and if none
    // could be drawn the flow is shown as a plain column of boxes.
    let call_order = order(flow);
    let alphabetical: Vec<&Node> = flow.nodes.values().collect();
    let orders = [
        call_order.iter().rev().copied().collect(),
        alphabetical.iter().rev().copied().collect(),
        call_order,
        alphabetical,
    ];
    orders
        .iter()
        .filter_map(|nodes| {
            catch_unwind(AssertUnwindSafe(|| laid_out(flow, nodes, counts)))
                .ok()
                .flatten()
        })
        .min_by(|a, b| {
            let (a, b) = (a.score(), b.score());
            a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))
        })
        .and_then(|canvas| canvas.finish(&legend(flow, counts), named))
        .unwrap_or_else(|| column(flow, counts, named))
}

// ---------------------------------------------------------------------------
// What is drawn, for both formats.

/// Where one node leads: `(target, what takes it, only after failed answers)` for every
/// reference in the model, in the model's order.
fn references<'a>(flow: &Flow, kind: &'a NodeKind) -> Vec<(&'a str, String, bool)> {
    let give_up = |retry: &'a Retry| {
        let label = format!("no valid answer ×{}", flow.settings.max_attempts);
        (retry.give_up.as_str(), label, true)
    };
    let plain = |to: &'a String, label: &str| (to.as_str(), label.to_string(), false);
    match kind {
        NodeKind::Say { next, .. } | NodeKind::Record { next, .. } | NodeKind::Enquiry { next } => {
            vec![plain(next, "next")]
        }
        NodeKind::AskNumber { next, retry, .. } => vec![plain(next, "next"), give_up(retry)],
        NodeKind::Hangup { .. } => vec![],
        NodeKind::Menu { options, retry, .. } => options
            .iter()
            .map(|o| {
                let label = match o.speech.first() {
                    Some(phrase) => format!("{} · {phrase}", o.key),
                    None => o.key.to_string(),
                };
                (o.goto.as_str(), label, false)
            })
            .chain([give_up(retry)])
            .collect(),
        NodeKind::Branch {
            when,
            then,
            otherwise,
        } => {
            let (yes, no) = match when {
                Condition::Open => ("open", "closed"),
                Condition::CallerNumberKnown => ("caller's number known", "number not known"),
            };
            vec![plain(then, yes), plain(otherwise, no)]
        }
        NodeKind::Queue {
            on_leave,
            on_failure,
            ..
        } => vec![
            plain(on_leave, "left for call back"),
            plain(on_failure, "queue failed"),
        ],
    }
}

/// One arrow: every reference from `from` to `to`, merged, as callers are counted per pair.
struct Arrow<'a> {
    from: &'a str,
    to: &'a str,
    /// What takes the branch, one per reference.
    labels: Vec<String>,
    /// Taken only after too many wrong or missing answers (drawn dashed and grey).
    retry: bool,
    /// Callers who took it, when there are counts.
    callers: Option<u64>,
}

impl Arrow<'_> {
    fn lines(&self) -> Vec<String> {
        let mut lines = self.labels.clone();
        if let Some(n) = self.callers {
            match lines.as_mut_slice() {
                [one] => *one = format!("{one} — {}", callers(n)),
                _ => lines.push(callers(n)),
            }
        }
        lines
    }

    /// Line width, 1 to 8, in proportion to the busiest arrow.
    fn weight(&self, busiest: u64) -> f64 {
        match self.callers {
            Some(n) if busiest > 0 => 1.0 + 7.0 * n as f64 / busiest as f64,
            _ => 1.0,
        }
    }
}

fn arrows<'a>(flow: &'a Flow, counts: Option<&Counts>) -> Vec<Arrow<'a>> {
    let mut arrows: Vec<Arrow> = Vec::new();
    for node in order(flow) {
        for (to, label, retry) in references(flow, &node.kind) {
            match arrows.iter_mut().find(|a| a.from == node.id && a.to == to) {
                Some(arrow) => {
                    arrow.labels.push(label);
                    arrow.retry &= retry;
                }
                None => arrows.push(Arrow {
                    from: &node.id,
                    to,
                    labels: vec![label],
                    retry,
                    callers: counts.map(|c| {
                        let key = (node.id.clone(), to.to_string());
                        c.branches.get(&key).copied().unwrap_or(0)
                    }),
                }),
            }
        }
    }
    arrows
}

fn busiest(arrows: &[Arrow]) -> u64 {
    arrows.iter().filter_map(|a| a.callers).max().unwrap_or(0)
}

/// The nodes in the order a caller meets them (breadth first from `start`), then any others.
fn order(flow: &Flow) -> Vec<&Node> {
    let mut seen = BTreeSet::new();
    let mut nodes = Vec::new();
    let mut todo = VecDeque::from([flow.settings.start.as_str()]);
    while let Some(id) = todo.pop_front() {
        if let Some(node) = flow.nodes.get(id).filter(|_| seen.insert(id)) {
            nodes.push(node);
            todo.extend(node.kind.targets().into_iter().map(|(_, t)| t.as_str()));
        }
    }
    nodes.extend(
        flow.nodes
            .values()
            .filter(|n| !seen.contains(n.id.as_str())),
    );
    nodes
}

/// A node's box: "start" on the start node, its id and kind, and its hang-ups.
fn node_lines(flow: &Flow, node: &Node, counts: Option<&Counts>) -> Vec<String> {
    let kind = match node.kind {
        NodeKind::Say { .. } => "say",
        NodeKind::Hangup { .. } => "hang up",
        NodeKind::Menu { .. } => "menu",
        NodeKind::Branch { .. } => "branch",
        NodeKind::AskNumber { .. } => "ask number",
        NodeKind::Record { .. } => "record message",
        NodeKind::Enquiry { .. } => "save enquiry",
        NodeKind::Queue { .. } => "queue",
    };
    let mut lines = Vec::new();
    if node.id == flow.settings.start {
        lines.push("start".to_string());
    }
    lines.push(format!("{} — {kind}", node.id));
    match counts.and_then(|c| c.hung_up.get(&node.id)) {
        Some(&n) if n > 0 => lines.push(format!("hung up here: {}", thousands(n))),
        _ => {}
    }
    lines
}

fn fill(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::Menu { .. } | NodeKind::AskNumber { .. } => "#fff4c2",
        NodeKind::Branch { .. } => "#efe3f7",
        NodeKind::Queue { .. } => "#d8eaff",
        NodeKind::Hangup { .. } => "#e8e8e8",
        _ => "#ffffff",
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn callers(n: u64) -> String {
    match n {
        1 => "1 caller".to_string(),
        _ => format!("{} callers", thousands(n)),
    }
}

/// A DOT string of the lines, quoted and escaped.
fn quoted(lines: &[impl AsRef<str>]) -> String {
    let mut out = String::from("\"");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("\\n");
        }
        for c in line.as_ref().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => {}
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// SVG.

/// Node text, in px (layout-rs is given the boxes' sizes).
const NODE_FONT: usize = 14;
const NODE_PX: f64 = NODE_FONT as f64;
/// Arrow labels are drawn at this size in px.
const LABEL_PX: f64 = 12.0;
/// layout-rs sizes a label one `font_size` wide per character and high per line (twice a
/// real character's width), so labels are laid out at this size and drawn at `LABEL_PX`.
const LABEL_LAYOUT_SIZE: usize = 7;
const LINE_HEIGHT: f64 = 1.3;
const ARROW_COLOUR: &str = "#4a4a4a";
const RETRY_COLOUR: &str = "#9a9a9a";

/// The flow laid out by layout-rs with its boxes added in the order given (which steers
/// the layout), or `None` if a coordinate came out not a number.
fn laid_out(flow: &Flow, nodes: &[&Node], counts: Option<&Counts>) -> Option<Canvas> {
    let mut graph = VisualGraph::new(Orientation::TopToBottom);
    let mut handles = BTreeMap::new();
    for node in nodes {
        let lines = node_lines(flow, node, counts);
        let border = if node.id == flow.settings.start { 3 } else { 1 };
        let fill = Color::from_name(fill(&node.kind));
        let look = StyleAttr::new(Color::fast("#333333"), border, fill, 8, NODE_FONT);
        let shape = ShapeKind::new_box(&lines.join("\n"));
        let element = Element::create(shape, look, Orientation::TopToBottom, box_size(&lines));
        handles.insert(node.id.as_str(), graph.add_node(element));
    }
    let arrows = arrows(flow, counts);
    let busiest = busiest(&arrows);
    for arrow in &arrows {
        // A validated flow has no reference to a missing node; one can't be drawn anyway.
        let (Some(&from), Some(&to)) = (handles.get(arrow.from), handles.get(arrow.to)) else {
            continue;
        };
        let (colour, style) = match arrow.retry {
            true => (RETRY_COLOUR, LineStyleKind::Dashed),
            false => (ARROW_COLOUR, LineStyleKind::Normal),
        };
        let width = arrow.weight(busiest).round() as usize;
        let look = StyleAttr::new(Color::fast(colour), width, None, 0, LABEL_LAYOUT_SIZE);
        let text = arrow.lines().join("\n");
        let edge = LayoutArrow::new(
            LineEndKind::None,
            LineEndKind::Arrow,
            style,
            &text,
            &look,
            &None,
            &None,
        );
        graph.add_edge(edge, from, to);
    }
    let mut canvas = Canvas::default();
    graph.do_it(false, false, false, &mut canvas);
    (!canvas.broken).then_some(canvas)
}

/// The fallback: a plain column of boxes in call order, each listing where it leads.
fn column(flow: &Flow, counts: Option<&Counts>, named: Option<&Named>) -> String {
    let arrows = arrows(flow, counts);
    let mut canvas = Canvas::default();
    let mut y = 0.0;
    for node in order(flow) {
        let mut lines = node_lines(flow, node, counts);
        for arrow in arrows.iter().filter(|a| a.from == node.id) {
            lines.push(format!("→ {}: {}", arrow.to, arrow.lines().join("; ")));
        }
        let size = box_size(&lines);
        let border = if node.id == flow.settings.start { 3 } else { 1 };
        let look = StyleAttr::new(
            Color::fast("#333333"),
            border,
            Color::from_name(fill(&node.kind)),
            8,
            NODE_FONT,
        );
        canvas.draw_rect(Point::new(0.0, y), size, &look, None, None);
        canvas.draw_text(
            Point::new(size.x / 2.0, y + size.y / 2.0),
            &lines.join("\n"),
            &look,
        );
        y += size.y + 24.0;
    }
    canvas
        .finish(&legend(flow, counts), named)
        .unwrap_or_else(|| {
            let (attributes, opening) = Named::parts(named);
            format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\"{attributes} width=\"1\" height=\"1\" \
                 viewBox=\"0 0 1 1\">{opening}</svg>"
            )
        })
}

/// The lines above the drawing that say how to read it.
fn legend(flow: &Flow, counts: Option<&Counts>) -> Vec<String> {
    let mut lines = vec![
        format!("Call flow from {}", flow.source),
        "Yellow: the caller chooses · purple: decided automatically · blue: waiting for an \
         adviser · grey: the call ends · bold: where every call starts"
            .to_string(),
        format!(
            "Dashed: after {} wrong or missing answers",
            flow.settings.max_attempts
        ),
    ];
    if counts.is_some() {
        lines.push("Numbers are callers; the more callers, the thicker the line".to_string());
    }
    lines
}

fn text_width(line: &str, px: f64) -> f64 {
    line.chars().count() as f64 * px * 0.58
}

fn box_size(lines: &[String]) -> Point {
    let widest = lines
        .iter()
        .map(|l| text_width(l, NODE_PX))
        .fold(0.0, f64::max);
    Point::new(
        widest + 28.0,
        lines.len() as f64 * NODE_PX * LINE_HEIGHT + 16.0,
    )
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Colours as `#rrggbb` (layout-rs gives `#rrggbbaa`).
fn web(colour: &Color) -> String {
    colour.to_web_color().chars().take(7).collect()
}

/// An SVG drawing surface for layout-rs: collects the elements and their extent.
#[derive(Default)]
struct Canvas {
    body: String,
    /// Arrows' labels, drawn last on white so that lines pass behind them.
    on_top: String,
    /// Top-left and bottom-right of everything drawn.
    extent: Option<(Point, Point)>,
    /// A coordinate was not a finite number.
    broken: bool,
    /// The boxes drawn, and the lines of the arrows' labels, as (top left, bottom right).
    boxes: Vec<(Point, Point)>,
    labels: Vec<(Point, Point)>,
}

impl Canvas {
    fn see(&mut self, p: Point) {
        if !(p.x.is_finite() && p.y.is_finite()) {
            self.broken = true;
            return;
        }
        self.extent = Some(match self.extent {
            None => (p, p),
            Some((a, b)) => (
                Point::new(a.x.min(p.x), a.y.min(p.y)),
                Point::new(b.x.max(p.x), b.y.max(p.y)),
            ),
        });
    }

    /// How bad the drawing is: labels overlapping boxes or each other, then its area.
    fn score(&self) -> (usize, f64) {
        let overlap = |(a, b): &(Point, Point), (c, d): &(Point, Point)| {
            a.x < d.x && c.x < b.x && a.y < d.y && c.y < b.y
        };
        let mut overlaps = 0;
        for (i, label) in self.labels.iter().enumerate() {
            overlaps += self.boxes.iter().filter(|b| overlap(label, b)).count();
            overlaps += self.labels[i + 1..]
                .iter()
                .filter(|l| overlap(label, l))
                .count();
        }
        let area = self.extent.map_or(0.0, |(a, b)| (b.x - a.x) * (b.y - a.y));
        (overlaps, area)
    }

    /// The standalone document with the legend above the drawing, or `None` if nothing
    /// was drawn or a coordinate was not a number.
    fn finish(self, legend: &[String], named: Option<&Named>) -> Option<String> {
        let (a, b) = self.extent?;
        if self.broken {
            return None;
        }
        let (margin, step) = (20.0, NODE_PX * LINE_HEIGHT);
        let widest = legend
            .iter()
            .map(|l| text_width(l, NODE_PX))
            .fold(0.0, f64::max);
        let (x, y) = (
            a.x - margin,
            a.y - margin - step * legend.len() as f64 - margin,
        );
        let w = (b.x - a.x).max(widest) + 2.0 * margin;
        let h = b.y - y + margin;
        let mut legend_text = String::new();
        for (i, line) in legend.iter().enumerate() {
            let _ = writeln!(
                legend_text,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{NODE_PX}\" fill=\"#333333\" \
                 dominant-baseline=\"central\"{}>{}</text>",
                a.x,
                y + margin + step * (i as f64 + 0.5),
                if i == 0 { " font-weight=\"bold\"" } else { "" },
                xml(line)
            );
        }
        let (attributes, opening) = Named::parts(named);
        Some(format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\"{attributes} width=\"{w:.0}\" height=\"{h:.0}\" \
             viewBox=\"{x:.1} {y:.1} {w:.1} {h:.1}\" \
             font-family=\"Helvetica, Arial, sans-serif\">{opening}\n\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"#ffffff\"/>\n\
             {legend_text}{}{}</svg>\n",
            self.body, self.on_top
        ))
    }

    /// An arrowhead at `tip`, pointing away from `from`.
    fn head(&mut self, from: Point, tip: Point, width: f64, colour: &str) {
        let (dx, dy) = (tip.x - from.x, tip.y - from.y);
        let len = (dx * dx + dy * dy).sqrt();
        if len < 1e-6 {
            return;
        }
        let (ux, uy) = (dx / len, dy / len);
        let (long, half) = (9.0 + 1.5 * width, 4.0 + width);
        let base = Point::new(tip.x - ux * long, tip.y - uy * long);
        let left = Point::new(base.x - uy * half, base.y + ux * half);
        let right = Point::new(base.x + uy * half, base.y - ux * half);
        for p in [tip, left, right] {
            self.see(p);
        }
        let _ = writeln!(
            self.body,
            "<polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"{colour}\"/>",
            tip.x, tip.y, left.x, left.y, right.x, right.y
        );
    }
}

impl RenderBackend for Canvas {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        _properties: Option<String>,
        _clip: Option<ClipHandle>,
    ) {
        let corner = Point::new(xy.x + size.x, xy.y + size.y);
        self.see(xy);
        self.see(corner);
        if look.font_size == NODE_FONT {
            self.boxes.push((xy, corner));
        }
        let fill = look.fill_color.as_ref().map_or("none".to_string(), web);
        let _ = writeln!(
            self.body,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{}\" \
             fill=\"{fill}\" stroke=\"{}\" stroke-width=\"{}\"/>",
            xy.x,
            xy.y,
            size.x,
            size.y,
            look.rounded,
            web(&look.line_color),
            look.line_width
        );
    }

    fn draw_line(&mut self, start: Point, stop: Point, look: &StyleAttr, _: Option<String>) {
        self.see(start);
        self.see(stop);
        let _ = writeln!(
            self.body,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"{}\"/>",
            start.x,
            start.y,
            stop.x,
            stop.y,
            web(&look.line_color),
            look.line_width
        );
    }

    fn draw_circle(&mut self, xy: Point, size: Point, look: &StyleAttr, _: Option<String>) {
        self.see(Point::new(xy.x - size.x / 2.0, xy.y - size.y / 2.0));
        self.see(Point::new(xy.x + size.x / 2.0, xy.y + size.y / 2.0));
        let _ = writeln!(
            self.body,
            "<ellipse cx=\"{:.1}\" cy=\"{:.1}\" rx=\"{:.1}\" ry=\"{:.1}\" fill=\"none\" stroke=\"{}\"/>",
            xy.x,
            xy.y,
            size.x / 2.0,
            size.y / 2.0,
            web(&look.line_color)
        );
    }

    /// Text centred on `xy`, a line at a time. Only boxes have `NODE_FONT`: layout-rs lays
    /// labels out in our `LABEL_LAYOUT_SIZE` but may move one onto a connector of its own.
    fn draw_text(&mut self, xy: Point, text: &str, look: &StyleAttr) {
        let label = look.font_size != NODE_FONT;
        let (px, colour) = match label {
            true => (LABEL_PX, "#333333"),
            false => (NODE_PX, "#111111"),
        };
        let lines: Vec<&str> = text.lines().collect();
        let step = px * LINE_HEIGHT;
        let top = xy.y - step * (lines.len() as f64 - 1.0) / 2.0;
        for (i, line) in lines.iter().enumerate() {
            let y = top + step * i as f64;
            let half = text_width(line, px) / 2.0;
            let (a, b) = (
                Point::new(xy.x - half, y - px / 2.0),
                Point::new(xy.x + half, y + px / 2.0),
            );
            self.see(a);
            self.see(b);
            let out = match label {
                true => {
                    self.labels.push((a, b));
                    let _ = writeln!(
                        self.on_top,
                        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{step:.1}\" \
                         rx=\"3\" fill=\"#ffffff\" fill-opacity=\"0.9\"/>",
                        a.x - 3.0,
                        y - step / 2.0,
                        b.x - a.x + 6.0
                    );
                    &mut self.on_top
                }
                false => &mut self.body,
            };
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"{px}\" fill=\"{colour}\" \
                 text-anchor=\"middle\" dominant-baseline=\"central\">{}</text>",
                xy.x,
                xml(line)
            );
        }
    }

    /// A cubic path as layout-rs gives it: `[(start, control), (control, point), …]`.
    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        look: &StyleAttr,
        _properties: Option<String>,
        _text: &str,
    ) {
        let (Some(first), Some(last)) = (path.first(), path.last()) else {
            return;
        };
        if path.len() < 2 {
            return;
        }
        let mut d = format!(
            "M {:.1} {:.1} C {:.1} {:.1}",
            first.0.x, first.0.y, first.1.x, first.1.y
        );
        for (i, (control, point)) in path.iter().skip(1).enumerate() {
            self.see(*control);
            self.see(*point);
            let join = if i == 0 { "," } else { " S" };
            let _ = write!(
                d,
                "{join} {:.1} {:.1}, {:.1} {:.1}",
                control.x, control.y, point.x, point.y
            );
        }
        self.see(first.0);
        self.see(first.1);
        let colour = web(&look.line_color);
        let width = look.line_width as f64;
        let dash = match dashed {
            true => format!(
                " stroke-dasharray=\"{},{}\"",
                6.0 + 2.0 * width,
                4.0 + width
            ),
            false => String::new(),
        };
        let _ = writeln!(
            self.body,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\"{dash}/>"
        );
        if head.0 {
            self.head(first.1, first.0, width, &colour);
        }
        if head.1 {
            self.head(last.0, last.1, width, &colour);
        }
    }

    fn create_clip(&mut self, _xy: Point, _size: Point, _rounded_px: usize) -> ClipHandle {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_drawing_is_an_image_named_by_its_title_and_description() {
        let flow = crate::flows::builtin().expect("the built-in flow loads");
        let named = Named {
            id: "map",
            class: "chart",
            title: "The callers' journey",
            desc: "3 < 4 callers",
        };
        let laid_out = svg_named(&flow, None, Some(&named));
        let fallback = column(&flow, None, Some(&named));
        for svg in [laid_out, fallback] {
            let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
            let root = doc.root_element();
            assert_eq!(root.attribute("id"), Some("map"));
            assert_eq!(root.attribute("role"), Some("img"));
            assert_eq!(
                root.attribute("aria-labelledby"),
                Some("map-title map-desc")
            );
            let first: Vec<_> = root.children().filter(|n| n.is_element()).take(2).collect();
            assert_eq!(first[0].attribute("id"), Some("map-title"));
            assert_eq!(first[0].text(), Some("The callers' journey"));
            assert_eq!(first[1].text(), Some("3 < 4 callers"));
        }
        assert!(
            !svg(&flow, None).contains("role=\"img\""),
            "unnamed by default"
        );
    }

    #[test]
    fn the_fallback_column_has_every_node_and_where_it_leads() {
        let flow = crate::flows::builtin().expect("the built-in flow loads");
        let svg = column(&flow, Some(&Counts::default()), None);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert!(doc.root_element().attribute("viewBox").is_some());
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        for id in flow.nodes.keys() {
            let prefix = format!("{id} — ");
            assert!(texts.iter().any(|t| t.starts_with(&prefix)), "{id}");
        }
        assert!(texts.contains(&"→ latest_update: 1 · latest update — 0 callers"));
    }

    #[test]
    fn counts_add_up_and_round_trip_as_json() {
        let mut a = Counts::default();
        a.branches
            .insert(("welcome".into(), "greeting_open".into()), 2);
        a.hung_up.insert("main_menu".into(), 1);
        let mut b = Counts::default();
        b.branches
            .insert(("welcome".into(), "greeting_open".into()), 3);
        b.branches.insert(("main_menu".into(), "adviser".into()), 1);
        b.hung_up.insert("main_menu".into(), 4);
        b.hung_up.insert("adviser_queue".into(), 1);
        a.add(&b);
        assert_eq!(
            a.branches
                .get(&("welcome".to_string(), "greeting_open".to_string())),
            Some(&5)
        );
        assert_eq!(a.branches.len(), 2);
        assert_eq!(a.hung_up.get("main_menu"), Some(&5));
        assert_eq!(a.hung_up.get("adviser_queue"), Some(&1));

        let json = serde_json::to_value(&a).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "branches": [
                    {"from": "main_menu", "to": "adviser", "callers": 1},
                    {"from": "welcome", "to": "greeting_open", "callers": 5},
                ],
                "hung_up": {"adviser_queue": 1, "main_menu": 5},
            })
        );
        let back: Counts = serde_json::from_value(json).expect("deserialises");
        assert_eq!(back, a);
        let empty: Counts = serde_json::from_str("{}").expect("both parts may be left out");
        assert_eq!(empty, Counts::default());
        let twice: Counts = serde_json::from_str(
            r#"{"branches": [{"from": "a", "to": "b", "callers": 1}, {"from": "a", "to": "b", "callers": 2}]}"#,
        )
        .expect("deserialises");
        assert_eq!(
            twice.branches.get(&("a".to_string(), "b".to_string())),
            Some(&3)
        );
    }

    #[test]
    fn numbers_are_grouped_in_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(callers(1), "1 caller");
        assert_eq!(callers(2), "2 callers");
    }
}
