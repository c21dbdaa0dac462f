//! `helpline simulate`: plays a call through the real call service (flow engine,
//! opening hours, store) without Twilio, printing what the caller hears.

use std::io::{BufRead, Write};

use crate::calls::{CallInfo, Calls, Reply};
use crate::enquiries::Recording;
use crate::flows::{Input, NodeKind, QueueWait, Wait};

/// One thing the simulated caller does.
fn parse_input(raw: &str, wait: &Wait) -> Input {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("none") || raw.eq_ignore_ascii_case("silence") {
        return Input::Silence;
    }
    if let Some(words) = raw.strip_prefix("say:") {
        if let Wait::Record { .. } = wait {
            // A spoken message: about two words a second.
            let n = words.split_whitespace().count() as u32;
            return Input::Recording(Recording {
                url: "simulated://recording".into(),
                duration_seconds: n.div_ceil(2).max(1),
            });
        }
        return Input::Speech(words.trim().to_string());
    }
    Input::Keys(raw.to_string())
}

fn describe_wait(calls: &Calls, wait: &Wait) -> String {
    match wait {
        Wait::Menu { node, .. } => {
            let keys = match calls.flow.node(node).map(|n| &n.kind) {
                Some(NodeKind::Menu { options, .. }) => options
                    .iter()
                    .map(|o| o.key.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            };
            format!("waiting at `{node}` for a key ({keys}, * repeats) or speech (say:…)")
        }
        Wait::Number { node, .. } => {
            format!("waiting at `{node}` for a phone number (keys ending #, or say:…)")
        }
        Wait::Record { node, .. } => {
            format!("recording a message at `{node}` (say:… to leave one, none to skip)")
        }
        Wait::Queue { node, queue } => format!(
            "in the `{queue}` queue at `{node}` (1 leaves for a call back, bridged, hangup)"
        ),
        Wait::Hangup | Wait::SaveEnquiry { .. } => "call ends".into(),
    }
}

fn print_reply(
    out: &mut impl Write,
    calls: &Calls,
    step: u32,
    reply: &Reply,
) -> std::io::Result<()> {
    writeln!(out, "\n── step {step}")?;
    for s in &reply.says {
        writeln!(out, "  caller hears: {s}")?;
    }
    if let Some(e) = &reply.stored {
        writeln!(
            out,
            "  [enquiry stored: reference {}, call back by {}]",
            e.reference, e.callback_due
        )?;
    }
    writeln!(out, "  [{}]", describe_wait(calls, &reply.wait))
}

/// Plays the call. `inputs` are used in order; with none, they are read from `input`
/// interactively. Returns when the call ends or the inputs run out.
pub async fn run(
    calls: &Calls,
    from: Option<String>,
    inputs: Vec<String>,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), SimulateError> {
    let interactive = inputs.is_empty();
    let mut scripted = inputs.into_iter();
    // Twilio gives a phone caller's number in E.164: `--from 07700 900123` is one too.
    let from = from.map(|f| crate::phone::UkNumber::parse(&f).map_or(f, |n| n.e164().to_string()));
    let call = CallInfo {
        call_sid: format!("SM{}", uuid::Uuid::new_v4().simple()),
        from,
    };
    let mut reply = calls.incoming(&call).await?;
    let mut step = 1;
    print_reply(out, calls, step, &reply)?;
    while !matches!(reply.wait, Wait::Hangup | Wait::SaveEnquiry { .. }) {
        let raw = if interactive {
            write!(out, "> ")?;
            out.flush()?;
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                writeln!(out, "\n[end of input: the caller hangs up]")?;
                return Ok(());
            }
            line
        } else {
            match scripted.next() {
                Some(i) => {
                    writeln!(out, "> {i}")?;
                    i
                }
                None => {
                    writeln!(out, "[no more input: the caller hangs up]")?;
                    return Ok(());
                }
            }
        };
        step += 1;
        reply = match &reply.wait {
            Wait::Queue { node, .. } => {
                let node = node.clone();
                if let Some(QueueWait::Waiting { says, .. } | QueueWait::Closing { says }) =
                    calls.queue_wait(&call, &node, Some(1)).await?
                {
                    for s in says {
                        writeln!(out, "  caller hears while waiting: {s}")?;
                    }
                }
                let result = match raw.trim() {
                    "1" => "leave",
                    "hangup" => "hangup",
                    _ => "bridged",
                };
                calls
                    .queue_done(&call, &node, reply.next_seq, result, Some(30))
                    .await?
            }
            Wait::Menu { node, attempt, .. } | Wait::Number { node, attempt } => {
                let input = parse_input(&raw, &reply.wait);
                calls
                    .answer(&call, &node.clone(), reply.next_seq, *attempt, &input)
                    .await?
            }
            Wait::Record { node, .. } => {
                let input = parse_input(&raw, &reply.wait);
                calls
                    .answer(&call, &node.clone(), reply.next_seq, 0, &input)
                    .await?
            }
            Wait::Hangup | Wait::SaveEnquiry { .. } => break,
        };
        print_reply(out, calls, step, &reply)?;
    }
    writeln!(out, "[call ended]")?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Call(#[from] crate::calls::CallError),
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
}
