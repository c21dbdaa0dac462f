//! TwiML: the only place that knows XML. Everything is written through quick-xml's
//! writer, which escapes text and attribute values, so no prompt or URL can break the
//! document (Twilio error 12100).

use std::borrow::Cow;

use axum::http::header;
use axum::response::IntoResponse;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

/// Twilio accepts at most this many speech hints.
const MAX_HINTS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    pub voice: String,
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Say(String),
    Pause(u32),
    Play(String),
    Gather(Gather),
    Record(Record),
    Redirect(String),
    Enqueue(Enqueue),
    Dial(Dial),
    Leave,
    Hangup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatherInput {
    Dtmf,
    Speech,
    DtmfSpeech,
}

impl GatherInput {
    fn as_str(self) -> &'static str {
        match self {
            GatherInput::Dtmf => "dtmf",
            GatherInput::Speech => "speech",
            GatherInput::DtmfSpeech => "dtmf speech",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    pub action: String,
    pub input: GatherInput,
    pub num_digits: Option<u32>,
    pub timeout_seconds: u32,
    pub finish_on_key: Option<String>,
    pub hints: Vec<String>,
    pub speech_timeout: Option<String>,
    /// Only `Say`, `Pause` and `Play` may be nested; anything else is left out.
    pub prompts: Vec<Verb>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub action: String,
    pub max_length_seconds: u32,
    pub timeout_seconds: u32,
    pub finish_on_key: String,
    pub play_beep: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueue {
    pub queue: String,
    pub wait_url: String,
    pub action: String,
}

/// Connects the call to one phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    pub number: String,
    /// Shown to the person rung (the helpline's own number).
    pub caller_id: String,
    pub timeout_seconds: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub verbs: Vec<Verb>,
}

impl Response {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, v: Verb) -> &mut Self {
        self.verbs.push(v);
        self
    }
}

impl Verb {
    /// The TwiML element name (for diagnostics: never the verb's content).
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Say(_) => "Say",
            Verb::Pause(_) => "Pause",
            Verb::Play(_) => "Play",
            Verb::Gather(_) => "Gather",
            Verb::Record(_) => "Record",
            Verb::Redirect(_) => "Redirect",
            Verb::Enqueue(_) => "Enqueue",
            Verb::Dial(_) => "Dial",
            Verb::Leave => "Leave",
            Verb::Hangup => "Hangup",
        }
    }
}

/// Whether Twilio allows `verb` inside `<Gather>`.
fn nestable(verb: &Verb) -> bool {
    matches!(verb, Verb::Say(_) | Verb::Pause(_) | Verb::Play(_))
}

/// Twilio's `hints`: phrases separated by commas, so a comma inside a phrase is
/// removed; each phrase is trimmed, empty ones dropped, at most [`MAX_HINTS`] kept.
fn hints_attribute(hints: &[String]) -> String {
    hints
        .iter()
        .map(|h| h.replace(',', ""))
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .take(MAX_HINTS)
        .collect::<Vec<_>>()
        .join(",")
}

/// Characters XML 1.0 cannot carry at all, even escaped (most C0 controls, U+FFFE,
/// U+FFFF). The writer escapes markup but passes these through, and Twilio would then
/// refuse the whole document, so they are dropped.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn xml_safe(s: &str) -> Cow<'_, str> {
    if s.chars().all(xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|&c| xml_char(c)).collect())
    }
}

type W = Writer<Vec<u8>>;
type Io = std::io::Result<()>;

fn safe_attributes<'a>(attrs: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, Cow<'a, str>)> {
    attrs.iter().map(|&(k, v)| (k, xml_safe(v))).collect()
}

fn text_element(w: &mut W, name: &str, attrs: &[(&str, &str)], text: &str) -> Io {
    let attrs = safe_attributes(attrs);
    w.create_element(name)
        .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_ref())))
        .write_text_content(BytesText::new(&xml_safe(text)))?;
    Ok(())
}

fn empty_element(w: &mut W, name: &str, attrs: &[(&str, &str)]) -> Io {
    let attrs = safe_attributes(attrs);
    w.create_element(name)
        .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_ref())))
        .write_empty()?;
    Ok(())
}

fn write_verb(w: &mut W, verb: &Verb, voice: &Voice) -> Io {
    match verb {
        Verb::Say(text) => text_element(
            w,
            "Say",
            &[("voice", &voice.voice), ("language", &voice.language)],
            text,
        ),
        Verb::Pause(seconds) => empty_element(w, "Pause", &[("length", &seconds.to_string())]),
        Verb::Play(url) => text_element(w, "Play", &[], url),
        Verb::Redirect(url) => text_element(w, "Redirect", &[("method", "POST")], url),
        Verb::Leave => empty_element(w, "Leave", &[]),
        Verb::Hangup => empty_element(w, "Hangup", &[]),
        Verb::Record(r) => empty_element(
            w,
            "Record",
            &[
                ("action", &r.action),
                ("method", "POST"),
                ("maxLength", &r.max_length_seconds.to_string()),
                ("timeout", &r.timeout_seconds.to_string()),
                ("finishOnKey", &r.finish_on_key),
                ("playBeep", if r.play_beep { "true" } else { "false" }),
            ],
        ),
        Verb::Enqueue(e) => text_element(
            w,
            "Enqueue",
            &[
                ("action", &e.action),
                ("method", "POST"),
                ("waitUrl", &e.wait_url),
                ("waitUrlMethod", "POST"),
            ],
            &e.queue,
        ),
        Verb::Dial(d) => {
            let timeout = d.timeout_seconds.to_string();
            let raw: [(&str, &str); 2] = [("callerId", &d.caller_id), ("timeout", &timeout)];
            let attrs = safe_attributes(&raw);
            w.create_element("Dial")
                .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_ref())))
                .write_inner_content(|w| text_element(w, "Number", &[], &d.number))?;
            Ok(())
        }
        Verb::Gather(g) => {
            let timeout = g.timeout_seconds.to_string();
            let num_digits = g.num_digits.map(|n| n.to_string());
            let hints = hints_attribute(&g.hints);
            let mut attrs: Vec<(&str, &str)> = vec![
                ("action", &g.action),
                ("method", "POST"),
                ("input", g.input.as_str()),
                ("timeout", &timeout),
            ];
            if let Some(n) = &num_digits {
                attrs.push(("numDigits", n));
            }
            if let Some(k) = &g.finish_on_key {
                attrs.push(("finishOnKey", k));
            }
            if g.input != GatherInput::Dtmf {
                attrs.push(("language", &voice.language));
                if !hints.is_empty() {
                    attrs.push(("hints", &hints));
                }
                if let Some(t) = &g.speech_timeout {
                    attrs.push(("speechTimeout", t));
                }
            }
            let attrs = safe_attributes(&attrs);
            w.create_element("Gather")
                .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_ref())))
                .write_inner_content(|w| {
                    for p in &g.prompts {
                        debug_assert!(
                            nestable(p),
                            "only Say, Pause and Play can be nested in <Gather>, not {}",
                            p.name()
                        );
                        if nestable(p) {
                            write_verb(w, p, voice)?;
                        } else {
                            tracing::error!(
                                verb = p.name(),
                                "only Say, Pause and Play can be nested in <Gather>; left out"
                            );
                        }
                    }
                    Ok::<(), std::io::Error>(())
                })?;
            Ok(())
        }
    }
}

fn try_render(response: &Response, voice: &Voice) -> std::io::Result<Vec<u8>> {
    let mut w = Writer::new(Vec::with_capacity(1024));
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("Response").write_inner_content(|w| {
        for v in &response.verbs {
            write_verb(w, v, voice)?;
        }
        Ok::<(), std::io::Error>(())
    })?;
    Ok(w.into_inner())
}

/// The TwiML document. Writing to memory cannot fail; should it ever, the caller still
/// gets a valid document that ends the call rather than an error.
pub fn render(response: &Response, voice: &Voice) -> Vec<u8> {
    try_render(response, voice).unwrap_or_else(|e| {
        tracing::error!(error = %e, "TwiML could not be written");
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup/></Response>".to_vec()
    })
}

/// A `text/xml` response of the document.
pub fn into_http(response: &Response, voice: &Voice) -> axum::response::Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        render(response, voice),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice() -> Voice {
        Voice {
            voice: "Polly.Amy".into(),
            language: "en-GB".into(),
        }
    }

    fn xml(r: &Response) -> String {
        String::from_utf8(render(r, &voice())).expect("UTF-8")
    }

    fn one(verb: Verb) -> String {
        let mut r = Response::new();
        r.push(verb);
        xml(&r)
    }

    fn find<'a, 'i>(doc: &'a roxmltree::Document<'i>, tag: &str) -> roxmltree::Node<'a, 'i> {
        doc.descendants()
            .find(|n| n.has_tag_name(tag))
            .unwrap_or_else(|| panic!("no <{tag}>"))
    }

    /// The element's attributes, sorted by name.
    fn attrs(node: roxmltree::Node) -> Vec<(String, String)> {
        let mut a: Vec<_> = node
            .attributes()
            .map(|a| (a.name().to_string(), a.value().to_string()))
            .collect();
        a.sort();
        a
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    fn gather(input: GatherInput, prompts: Vec<Verb>) -> Gather {
        Gather {
            action: "https://h/twilio/step/menu?seq=1&attempt=0".into(),
            input,
            num_digits: Some(1),
            timeout_seconds: 6,
            finish_on_key: None,
            hints: vec![],
            speech_timeout: None,
            prompts,
        }
    }

    #[test]
    fn declaration_and_root() {
        let s = xml(&Response::new());
        assert!(
            s.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
            "{s}"
        );
        let doc = roxmltree::Document::parse(&s).unwrap();
        assert!(doc.root_element().has_tag_name("Response"));
        assert_eq!(doc.root_element().children().count(), 0);
    }

    #[test]
    fn special_characters_round_trip_in_text_and_attributes() {
        let nasty = "Fish & chips <now> \"quoted\" it's ]]> done";
        let url = "https://h/x?a=1&b=2";
        let mut r = Response::new();
        r.push(Verb::Say(nasty.into()))
            .push(Verb::Play(url.into()))
            .push(Verb::Gather(Gather {
                action: url.into(),
                ..gather(GatherInput::Dtmf, vec![Verb::Say(nasty.into())])
            }))
            .push(Verb::Redirect(url.into()));
        let s = xml(&r);
        let doc = roxmltree::Document::parse(&s).expect("well-formed");
        let says: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("Say"))
            .collect();
        assert_eq!(says.len(), 2);
        for say in says {
            assert_eq!(say.text(), Some(nasty));
        }
        assert_eq!(find(&doc, "Play").text(), Some(url));
        assert_eq!(find(&doc, "Gather").attribute("action"), Some(url));
        assert_eq!(find(&doc, "Redirect").text(), Some(url));
        assert!(!s.contains("a=1&b"), "an unescaped ampersand: {s}");
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped() {
        let mut r = Response::new();
        r.push(Verb::Say("a\u{0}b\u{1b}c\u{fffe}\td\u{1F600}".into()))
            .push(Verb::Redirect("https://h/\u{7}x".into()))
            .push(Verb::Gather(Gather {
                action: "https://h/\u{8}g".into(),
                ..gather(GatherInput::Speech, vec![])
            }));
        let s = xml(&r);
        let doc = roxmltree::Document::parse(&s).expect("well-formed");
        assert_eq!(find(&doc, "Say").text(), Some("abc\td\u{1F600}"));
        assert_eq!(find(&doc, "Redirect").text(), Some("https://h/x"));
        assert_eq!(
            find(&doc, "Gather").attribute("action"),
            Some("https://h/g")
        );
        assert_eq!(xml_safe("plain"), Cow::Borrowed("plain"));
    }

    #[test]
    fn every_say_carries_voice_and_language() {
        let mut r = Response::new();
        r.push(Verb::Say("Hello.".into())).push(Verb::Gather(gather(
            GatherInput::Dtmf,
            vec![Verb::Say("Press 1.".into())],
        )));
        let s = xml(&r);
        let doc = roxmltree::Document::parse(&s).unwrap();
        let says: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("Say"))
            .collect();
        assert_eq!(says.len(), 2);
        for say in says {
            assert_eq!(
                attrs(say),
                pairs(&[("voice", "Polly.Amy"), ("language", "en-GB")])
            );
        }
    }

    #[test]
    fn gather_nests_prompts_with_twilio_attribute_names() {
        let s = one(Verb::Gather(Gather {
            finish_on_key: Some("#".into()),
            hints: vec!["call back".into(), " ward, 5 ".into(), " , ".into()],
            speech_timeout: Some("auto".into()),
            ..gather(
                GatherInput::DtmfSpeech,
                vec![
                    Verb::Say("Press 1.".into()),
                    Verb::Pause(1),
                    Verb::Play("https://h/beep.mp3".into()),
                ],
            )
        }));
        let doc = roxmltree::Document::parse(&s).unwrap();
        let g = find(&doc, "Gather");
        assert_eq!(g.parent().map(|p| p.tag_name().name()), Some("Response"));
        assert_eq!(
            attrs(g),
            pairs(&[
                ("action", "https://h/twilio/step/menu?seq=1&attempt=0"),
                ("method", "POST"),
                ("input", "dtmf speech"),
                ("numDigits", "1"),
                ("timeout", "6"),
                ("finishOnKey", "#"),
                ("language", "en-GB"),
                ("hints", "call back,ward 5"),
                ("speechTimeout", "auto"),
            ])
        );
        let children: Vec<_> = g
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        assert_eq!(children, ["Say", "Pause", "Play"]);
        assert_eq!(find(&doc, "Pause").attribute("length"), Some("1"));
    }

    #[test]
    fn speech_gather_without_optional_attributes() {
        let s = one(Verb::Gather(Gather {
            num_digits: None,
            ..gather(GatherInput::Speech, vec![])
        }));
        let doc = roxmltree::Document::parse(&s).unwrap();
        assert_eq!(
            attrs(find(&doc, "Gather")),
            pairs(&[
                ("action", "https://h/twilio/step/menu?seq=1&attempt=0"),
                ("method", "POST"),
                ("input", "speech"),
                ("timeout", "6"),
                ("language", "en-GB"),
            ]),
            "no numDigits, finishOnKey, hints, speechTimeout or actionOnEmptyResult"
        );
    }

    #[test]
    fn dtmf_only_gather_has_no_speech_attributes() {
        let s = one(Verb::Gather(Gather {
            hints: vec!["x".into()],
            speech_timeout: Some("auto".into()),
            ..gather(GatherInput::Dtmf, vec![])
        }));
        let doc = roxmltree::Document::parse(&s).unwrap();
        let g = find(&doc, "Gather");
        assert_eq!(g.attribute("input"), Some("dtmf"));
        for absent in ["hints", "language", "speechTimeout", "actionOnEmptyResult"] {
            assert_eq!(g.attribute(absent), None, "{absent}");
        }
    }

    #[test]
    fn hints_are_capped_at_500_phrases() {
        let many: Vec<String> = (0..600).map(|i| format!(" p{i} ")).collect();
        let joined = hints_attribute(&many);
        let phrases: Vec<_> = joined.split(',').collect();
        assert_eq!(phrases.len(), MAX_HINTS);
        assert_eq!(phrases[0], "p0");
        assert_eq!(phrases[499], "p499");
        assert_eq!(hints_attribute(&[",".into(), "  ".into()]), "");
    }

    #[test]
    fn record_attributes() {
        let s = one(Verb::Record(Record {
            action: "https://h/rec?seq=2&x=y".into(),
            max_length_seconds: 120,
            timeout_seconds: 5,
            finish_on_key: "#".into(),
            play_beep: true,
        }));
        let doc = roxmltree::Document::parse(&s).unwrap();
        assert_eq!(
            attrs(find(&doc, "Record")),
            pairs(&[
                ("action", "https://h/rec?seq=2&x=y"),
                ("method", "POST"),
                ("maxLength", "120"),
                ("timeout", "5"),
                ("finishOnKey", "#"),
                ("playBeep", "true"),
            ])
        );
        let s = one(Verb::Record(Record {
            action: "a".into(),
            max_length_seconds: 1,
            timeout_seconds: 1,
            finish_on_key: "".into(),
            play_beep: false,
        }));
        let doc = roxmltree::Document::parse(&s).unwrap();
        assert_eq!(find(&doc, "Record").attribute("playBeep"), Some("false"));
    }

    #[test]
    fn enqueue_redirect_leave_hangup() {
        let mut r = Response::new();
        r.push(Verb::Enqueue(Enqueue {
            queue: "helpline & co".into(),
            wait_url: "https://h/wait?a=1&b=2".into(),
            action: "https://h/done?seq=3".into(),
        }))
        .push(Verb::Leave)
        .push(Verb::Redirect("https://h/next".into()))
        .push(Verb::Hangup);
        let s = xml(&r);
        let doc = roxmltree::Document::parse(&s).unwrap();
        let q = find(&doc, "Enqueue");
        assert_eq!(q.text(), Some("helpline & co"));
        assert_eq!(
            attrs(q),
            pairs(&[
                ("action", "https://h/done?seq=3"),
                ("method", "POST"),
                ("waitUrl", "https://h/wait?a=1&b=2"),
                ("waitUrlMethod", "POST"),
            ])
        );
        assert_eq!(attrs(find(&doc, "Redirect")), pairs(&[("method", "POST")]));
        let order: Vec<_> = doc
            .root_element()
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        assert_eq!(order, ["Enqueue", "Leave", "Redirect", "Hangup"]);
        for empty in ["Leave", "Hangup"] {
            let n = find(&doc, empty);
            assert!(n.attributes().len() == 0 && n.children().count() == 0);
        }
    }

    fn with_illegal_prompt() -> String {
        one(Verb::Gather(gather(
            GatherInput::Dtmf,
            vec![Verb::Say("Press 1.".into()), Verb::Hangup],
        )))
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "only Say, Pause and Play can be nested in <Gather>, not Hangup")]
    fn illegal_nested_verb_trips_the_debug_assertion() {
        with_illegal_prompt();
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn illegal_nested_verb_is_left_out() {
        let s = with_illegal_prompt();
        let doc = roxmltree::Document::parse(&s).unwrap();
        let kids: Vec<_> = find(&doc, "Gather")
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        assert_eq!(kids, ["Say"]);
        assert!(!doc.descendants().any(|n| n.has_tag_name("Hangup")));
    }

    #[test]
    fn nestable_verbs() {
        assert!(nestable(&Verb::Say(String::new())));
        assert!(nestable(&Verb::Pause(1)));
        assert!(nestable(&Verb::Play(String::new())));
        assert!(!nestable(&Verb::Hangup));
        assert!(!nestable(&Verb::Redirect(String::new())));
        assert!(!nestable(&Verb::Gather(gather(GatherInput::Dtmf, vec![]))));
    }

    #[tokio::test]
    async fn into_http_is_200_text_xml() {
        let mut r = Response::new();
        r.push(Verb::Say("Goodbye.".into())).push(Verb::Hangup);
        let resp = into_http(&r, &voice());
        assert_eq!(resp.status(), axum::http::StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/xml; charset=utf-8")
        );
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body.as_ref(), render(&r, &voice()).as_slice());
    }
}
