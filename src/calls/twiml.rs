//! Turns a [`Reply`] into TwiML verbs, with the action URLs that bring the caller's
//! next answer back to the right node. All state a call needs between webhooks is in
//! these URLs (node, step number, attempt) and the database, so any instance can
//! serve any step.

use super::Reply;
use crate::flows::Wait;
use crate::twilio::twiml::{Enqueue, Gather, GatherInput, Record, Response, Verb};

/// Seconds to wait for a key press after a menu's prompt ends.
const MENU_TIMEOUT: u32 = 6;
/// Seconds to wait while a caller keys a phone number.
const NUMBER_TIMEOUT: u32 = 10;
/// Seconds of silence that end a recorded message.
const RECORD_SILENCE: u32 = 5;

/// Builds the absolute URLs Twilio is sent to.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    pub fn new(public_base_url: &str) -> Self {
        Self {
            base: public_base_url.trim_end_matches('/').to_string(),
        }
    }

    pub fn step(&self, node: &str, seq: u32, attempt: u32) -> String {
        format!(
            "{}/twilio/step/{node}?seq={seq}&attempt={attempt}",
            self.base
        )
    }

    pub fn queue_wait(&self, node: &str) -> String {
        format!("{}/twilio/queue/{node}/wait", self.base)
    }

    pub fn queue_choice(&self, node: &str) -> String {
        format!("{}/twilio/queue/{node}/choice", self.base)
    }

    pub fn queue_done(&self, node: &str, seq: u32) -> String {
        format!("{}/twilio/queue/{node}/done?seq={seq}", self.base)
    }
}

fn says(texts: &[String]) -> Vec<Verb> {
    texts
        .iter()
        .filter(|t| !t.trim().is_empty())
        .cloned()
        .map(Verb::Say)
        .collect()
}

/// Essential words said in full, then the question, which an answer may interrupt (a
/// noisy line must not cut off the greeting, the hours or the fraud guidance).
fn split_question(reply: &Reply) -> (Vec<Verb>, Vec<Verb>) {
    let at = reply.ask_from.min(reply.says.len());
    (says(&reply.says[..at]), says(&reply.says[at..]))
}

/// A keypad-and-speech gather with nothing filled in yet.
fn listen() -> Gather {
    Gather {
        action: String::new(),
        input: GatherInput::DtmfSpeech,
        num_digits: None,
        timeout_seconds: MENU_TIMEOUT,
        finish_on_key: None,
        hints: vec![],
        speech_timeout: Some("auto".into()),
        prompts: vec![],
    }
}

/// The essentials in full, then the question inside `gather`; with no answer Twilio falls
/// through to the redirect, and the node hears silence.
fn ask(r: &mut Response, reply: &Reply, action: String, gather: Gather) {
    let (before, question) = split_question(reply);
    for v in before {
        r.push(v);
    }
    r.push(Verb::Gather(Gather {
        action: action.clone(),
        prompts: question,
        ..gather
    }));
    r.push(Verb::Redirect(action));
}

/// The TwiML for a turn.
pub fn reply(reply: &Reply, urls: &Urls) -> Response {
    let seq = reply.next_seq;
    let mut r = Response::new();
    match &reply.wait {
        Wait::Menu {
            node,
            attempt,
            hints,
        } => ask(
            &mut r,
            reply,
            urls.step(node, seq, *attempt),
            Gather {
                num_digits: Some(1),
                timeout_seconds: MENU_TIMEOUT,
                finish_on_key: None,
                hints: hints.clone(),
                ..listen()
            },
        ),
        Wait::Number { node, attempt } => ask(
            &mut r,
            reply,
            urls.step(node, seq, *attempt),
            Gather {
                num_digits: None,
                timeout_seconds: NUMBER_TIMEOUT,
                finish_on_key: Some("#".into()),
                ..listen()
            },
        ),
        Wait::Record { node, max_seconds } => {
            let action = urls.step(node, seq, 0);
            for v in says(&reply.says) {
                r.push(v);
            }
            r.push(Verb::Record(Record {
                action: action.clone(),
                max_length_seconds: *max_seconds,
                timeout_seconds: RECORD_SILENCE,
                finish_on_key: "#".into(),
                play_beep: true,
            }));
            // Twilio skips the action when nothing was recorded; continue without a message.
            r.push(Verb::Redirect(action));
        }
        Wait::Queue { node, queue } => {
            for v in says(&reply.says) {
                r.push(v);
            }
            r.push(Verb::Enqueue(Enqueue {
                queue: queue.clone(),
                wait_url: urls.queue_wait(node),
                action: urls.queue_done(node, seq),
            }));
        }
        Wait::Hangup | Wait::SaveEnquiry { .. } => {
            for v in says(&reply.says) {
                r.push(v);
            }
            r.push(Verb::Hangup);
        }
    }
    r
}

/// What a waiting caller hears: the position (and estimate) and hold music, all inside
/// a one-key gather so the leave key works at any moment. When it runs out, Twilio
/// asks the wait URL again.
pub fn queue_wait(node: &str, says_now: &[String], hold_music_url: &str, urls: &Urls) -> Response {
    let mut prompts = says(says_now);
    if hold_music_url.is_empty() {
        prompts.push(Verb::Pause(20));
    } else {
        prompts.push(Verb::Play(hold_music_url.to_string()));
    }
    let mut r = Response::new();
    r.push(Verb::Gather(Gather {
        action: urls.queue_choice(node),
        input: GatherInput::Dtmf,
        num_digits: Some(1),
        timeout_seconds: 1,
        finish_on_key: None,
        hints: vec![],
        speech_timeout: None,
        prompts,
    }));
    r
}

/// The line closed while the caller waited: say so, then leave the queue.
pub fn closing_queue(texts: &[String]) -> Response {
    let mut r = Response::new();
    for v in says(texts) {
        r.push(v);
    }
    r.push(Verb::Leave);
    r
}

/// Takes the caller out of the queue; the `<Enqueue action>` then continues the call.
pub fn leave_queue() -> Response {
    let mut r = Response::new();
    r.push(Verb::Leave);
    r
}
