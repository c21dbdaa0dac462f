//! The call-flow diagram (`helpline flows diagram`): DOT and SVG drawn from the real
//! `call_flows/` and from small flows, checked against the flow files themselves.

use std::collections::BTreeSet;
use std::path::Path;

use helpline::flows::diagram::{self, Counts};
use helpline::flows::{load_dir, Flow, NodeKind};

fn real_flow() -> Flow {
    load_dir(Path::new("call_flows")).expect("call_flows/ loads")
}

/// Every `(from, to)` reference in a flow directory, read straight from its TOML: `next`,
/// `then`, `else`, `on_leave`, `on_failure`, options' `goto`, and where menus and number
/// questions give up (their own `give_up`, or the `[flow]` one).
fn references_in_toml(dir: &Path) -> BTreeSet<(String, String)> {
    let files: Vec<toml::Table> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    let give_up = files
        .iter()
        .find_map(|f| f.get("flow")?.get("give_up")?.as_str())
        .unwrap()
        .to_string();
    let mut refs = BTreeSet::new();
    for file in &files {
        let Some(nodes) = file.get("nodes").and_then(|n| n.as_table()) else {
            continue;
        };
        for (id, node) in nodes {
            let mut to: Vec<String> = ["next", "then", "else", "on_leave", "on_failure"]
                .iter()
                .filter_map(|k| node.get(*k)?.as_str().map(str::to_string))
                .collect();
            for option in node
                .get("options")
                .and_then(|o| o.as_array())
                .into_iter()
                .flatten()
            {
                to.push(option["goto"].as_str().unwrap().to_string());
            }
            if matches!(node["type"].as_str(), Some("menu" | "ask_number")) {
                let own = node.get("give_up").and_then(|g| g.as_str());
                to.push(own.unwrap_or(&give_up).to_string());
            }
            refs.extend(to.into_iter().map(|t| (id.clone(), t)));
        }
    }
    refs
}

/// DOT statements, checked to be well quoted: `(node ids, edges, edge labels)`.
fn parse_dot(dot: &str) -> (Vec<String>, Vec<(String, String)>, Vec<String>) {
    assert!(dot.starts_with("digraph flow {\n  rankdir=TB;\n"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    let (mut nodes, mut edges, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for line in dot.lines() {
        // Every quoted string closes on its own line: quotes and backslashes are escaped
        // and there are no raw newlines inside one.
        let mut open = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if open => assert!(chars.next().is_some(), "dangling \\ in {line}"),
                '"' => open = !open,
                _ => {}
            }
        }
        assert!(!open, "unclosed quote in {line}");

        let Some((id, rest)) = quoted(line.trim()) else {
            continue;
        };
        match rest.strip_prefix(" -> ").and_then(quoted) {
            Some((to, rest)) => {
                edges.push((id, to));
                let label = rest.split_once("label=").unwrap().1;
                labels.push(quoted(label).unwrap().0);
            }
            None => nodes.push(id),
        }
    }
    (nodes, edges, labels)
}

/// The quoted string `s` starts with (as written, escapes and all), and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let rest = s.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' if !escaped => return Some((rest[..i].to_string(), &rest[i + 1..])),
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
    }
    None
}

fn sample_counts() -> Counts {
    let mut counts = Counts::default();
    counts
        .branches
        .insert(("main_menu".into(), "latest_update".into()), 1234);
    counts
        .branches
        .insert(("welcome".into(), "greeting_open".into()), 987);
    counts.hung_up.insert("main_menu".into(), 42);
    counts
}

/// The real flow with a speech phrase no loader would let through, to test escaping.
fn flow_with_nasty_phrase() -> (Flow, &'static str) {
    let nasty = "say \"hi\" \\ <script>alert('x')</script> & co";
    let mut flow = real_flow();
    let node = flow.nodes.get_mut("main_menu").unwrap();
    let NodeKind::Menu { options, .. } = &mut node.kind else {
        panic!("main_menu is a menu");
    };
    options[0].speech.insert(0, nasty.to_string());
    (flow, nasty)
}

#[test]
fn dot_has_every_node_once_and_every_reference_as_an_edge() {
    let flow = real_flow();
    let (nodes, edges, _) = parse_dot(&diagram::dot(&flow, None));

    let ids: Vec<&String> = flow.nodes.keys().collect();
    let mut drawn: Vec<&String> = nodes.iter().collect();
    drawn.sort();
    assert_eq!(drawn, ids, "every node exactly once");

    let unique: BTreeSet<_> = edges.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        edges.len(),
        "one arrow per pair of nodes: {edges:?}"
    );
    assert_eq!(unique, references_in_toml(Path::new("call_flows")));
}

#[test]
fn dot_labels_say_what_takes_each_branch() {
    let dot = diagram::dot(&real_flow(), None);
    for expected in [
        "\"welcome\" [label=\"start\\nwelcome — branch\"",
        "\"main_menu\" [label=\"main_menu — menu\"",
        "\"adviser_queue\" [label=\"adviser_queue — queue\"",
        "\"main_menu\" -> \"latest_update\" [label=\"1 · latest update\"",
        "\"welcome\" -> \"greeting_open\" [label=\"open\"",
        "\"welcome\" -> \"greeting_closed\" [label=\"closed\"",
        "\"adviser_queue\" -> \"callback_start\" [label=\"left for call back\"",
        "\"adviser_queue\" -> \"queue_unavailable\" [label=\"queue failed\"",
        "\"record_message\" -> \"save_enquiry\" [label=\"next\"",
        "\"main_menu\" -> \"goodbye_after_failures\" [label=\"no valid answer ×3\", style=dashed",
        // Options to the same place share an arrow, as callers are counted per pair.
        "\"choose_trust\" -> \"choose_category\" [label=\"1 · alder hey\\n2 · heart\\n3 · royal\\n4 · not sure\"",
    ] {
        assert!(dot.contains(expected), "{expected} in\n{dot}");
    }
    assert!(dot.contains("penwidth=3"), "the start node is bold");
}

#[test]
fn dot_escapes_quotes_backslashes_and_newlines() {
    let (mut flow, nasty) = flow_with_nasty_phrase();
    let (_, _, labels) = parse_dot(&diagram::dot(&flow, None));
    let escaped = "say \\\"hi\\\" \\\\ <script>alert('x')</script> & co";
    assert!(
        labels.contains(&format!("1 · {escaped}")),
        "{labels:?} has {nasty}"
    );

    let node = flow.nodes.get_mut("main_menu").unwrap();
    let NodeKind::Menu { options, .. } = &mut node.kind else {
        panic!("main_menu is a menu");
    };
    options[0].speech[0] = "two\nlines".into();
    let (_, _, labels) = parse_dot(&diagram::dot(&flow, None));
    assert!(
        labels.contains(&"1 · two\\nlines".to_string()),
        "{labels:?}"
    );
}

#[test]
fn dot_numbers_only_with_counts() {
    let flow = real_flow();
    let plain = diagram::dot(&flow, None);
    assert!(!plain.contains("callers"), "{plain}");
    assert!(!plain.contains("hung up here"));
    assert!(!plain.contains("penwidth=1."));

    let counted = diagram::dot(&flow, Some(&sample_counts()));
    assert!(counted.contains(
        "\"main_menu\" -> \"latest_update\" [label=\"1 · latest update — 1,234 callers\", penwidth=8.0]"
    ));
    assert!(counted.contains("[label=\"open — 987 callers\", penwidth=6.6]"));
    assert!(counted.contains(
        "\"main_menu\" -> \"adviser\" [label=\"0 · adviser — 0 callers\", penwidth=1.0]"
    ));
    assert!(counted.contains("[label=\"main_menu — menu\\nhung up here: 42\""));
    let (nodes, edges, _) = parse_dot(&counted);
    assert_eq!(nodes.len(), flow.nodes.len());
    assert_eq!(edges.len(), parse_dot(&plain).1.len());
}

/// The SVG parsed and checked as a standalone, script-free drawing; its texts.
fn check_svg(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}:\n{svg}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let view_box: Vec<f64> = root
        .attribute("viewBox")
        .expect("a viewBox")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(view_box.len(), 4);
    assert!(view_box.iter().all(|n| n.is_finite()) && view_box[2] > 0.0 && view_box[3] > 0.0);
    for size in ["width", "height"] {
        let n: f64 = root.attribute(size).unwrap().parse().unwrap();
        assert!(n.is_finite() && n > 0.0);
    }
    assert!(!svg.to_lowercase().contains("<script"), "{svg}");
    for node in doc.descendants().filter(|n| n.is_element()) {
        assert_ne!(node.tag_name().name(), "script");
        assert_ne!(node.tag_name().name(), "foreignObject");
        for attr in node.attributes() {
            assert!(
                !attr.name().starts_with("on"),
                "no event handlers: {attr:?}"
            );
            assert!(!attr.name().contains("href"), "no references: {attr:?}");
            let v = attr.value();
            assert!(
                !v.contains("NaN") && !v.contains("inf") && !v.contains("url("),
                "{attr:?}"
            );
        }
    }
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn svg_is_a_standalone_drawing_with_every_node() {
    let flow = real_flow();
    let svg = diagram::svg(&flow, None);
    let texts = check_svg(&svg);
    for id in flow.nodes.keys() {
        let prefix = format!("{id} — ");
        assert!(
            texts.iter().any(|t| t.starts_with(&prefix)),
            "{id} in {texts:?}"
        );
    }
    for label in [
        "1 · latest update",
        "open",
        "closed",
        "left for call back",
        "queue failed",
    ] {
        assert!(texts.iter().any(|t| t == label), "{label} in {texts:?}");
    }
    assert!(!texts.iter().any(|t| t.contains("callers")));
    assert!(!texts.iter().any(|t| t.contains("hung up here")));
}

#[test]
fn svg_with_counts_shows_them_and_thickens_busy_arrows() {
    let svg = diagram::svg(&real_flow(), Some(&sample_counts()));
    let texts = check_svg(&svg);
    for expected in [
        "1 · latest update — 1,234 callers",
        "open — 987 callers",
        "hung up here: 42",
    ] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected} in {texts:?}"
        );
    }
    assert!(
        svg.contains("stroke-width=\"8\""),
        "the busiest arrow is thickest"
    );
}

#[test]
fn svg_escapes_labels() {
    let (flow, nasty) = flow_with_nasty_phrase();
    let svg = diagram::svg(&flow, None);
    let texts = check_svg(&svg);
    assert!(texts.contains(&format!("1 · {nasty}")), "{texts:?}");
    assert!(svg.contains("&lt;script&gt;"));
}

#[test]
fn small_flows_draw_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flow.toml"),
        r#"
[flow]
start = "menu"
give_up = "bye"
no_input = "Sorry, I didn't hear anything."
invalid = "Sorry, I didn't catch that."
apology = "Sorry, something went wrong. Goodbye."

[nodes.menu]
type = "menu"
text = "Press 1 to hear this again, or 2 to leave."

[[nodes.menu.options]]
key = "1"
goto = "menu"
speech = ["again"]

[[nodes.menu.options]]
key = "2"
goto = "bye"

[nodes.bye]
type = "hangup"
text = "Goodbye."
"#,
    )
    .unwrap();
    let flow = load_dir(dir.path()).unwrap();

    let (nodes, edges, labels) = parse_dot(&diagram::dot(&flow, None));
    assert_eq!(nodes, ["menu", "bye"]);
    assert_eq!(
        edges.iter().cloned().collect::<BTreeSet<_>>(),
        references_in_toml(dir.path())
    );
    assert!(
        labels.contains(&"2\\nno valid answer ×3".to_string()),
        "{labels:?}"
    );

    let texts = check_svg(&diagram::svg(&flow, None));
    assert!(
        texts.iter().any(|t| t.starts_with("menu — menu")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("bye — hang up")),
        "{texts:?}"
    );
}
