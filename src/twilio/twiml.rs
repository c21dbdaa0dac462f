//! TwiML: the only place that knows XML. Everything is written through quick-xml's
//! writer, which escapes text and attribute values, so no prompt or URL can break the
//! document (Twilio error 12100).

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

type W = Writer<Vec<u8>>;
type Io = std::io::Result<()>;

fn text_element(w: &mut W, name: &str, attrs: &[(&str, &str)], text: &str) -> Io {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

fn empty_element(w: &mut W, name: &str, attrs: &[(&str, &str)]) -> Io {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
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
        Verb::Gather(g) => {
            let timeout = g.timeout_seconds.to_string();
            let num_digits = g.num_digits.map(|n| n.to_string());
            let hints = g
                .hints
                .iter()
                .map(|h| h.replace(',', " ").trim().to_string())
                .filter(|h| !h.is_empty())
                .take(MAX_HINTS)
                .collect::<Vec<_>>()
                .join(",");
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
            w.create_element("Gather")
                .with_attributes(attrs)
                .write_inner_content(|w| {
                    for p in &g.prompts {
                        match p {
                            Verb::Say(_) | Verb::Pause(_) | Verb::Play(_) => write_verb(w, p, voice)?,
                            other => {
                                tracing::error!(verb = ?other, "only Say, Pause and Play can be nested in <Gather>; left out");
                            }
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
            voice: "Polly.Amy-Neural".into(),
            language: "en-GB".into(),
        }
    }

    fn parse(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn escapes_text_and_attributes() {
        let mut r = Response::new();
        r.push(Verb::Say("Fish & chips <now> \"quoted\" it's".into()));
        r.push(Verb::Redirect("https://h/x?a=1&b=2".into()));
        let xml = parse(&render(&r, &voice()));
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let say = doc.descendants().find(|n| n.has_tag_name("Say")).unwrap();
        assert_eq!(say.text(), Some("Fish & chips <now> \"quoted\" it's"));
        assert_eq!(say.attribute("voice"), Some("Polly.Amy-Neural"));
        assert_eq!(say.attribute("language"), Some("en-GB"));
        let redirect = doc
            .descendants()
            .find(|n| n.has_tag_name("Redirect"))
            .unwrap();
        assert_eq!(redirect.text(), Some("https://h/x?a=1&b=2"));
        assert_eq!(redirect.attribute("method"), Some("POST"));
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    }

    #[test]
    fn gather_nests_prompts_with_twilio_attribute_names() {
        let mut r = Response::new();
        r.push(Verb::Gather(Gather {
            action: "https://h/step?seq=1&attempt=0".into(),
            input: GatherInput::DtmfSpeech,
            num_digits: Some(1),
            timeout_seconds: 6,
            finish_on_key: None,
            hints: vec!["call back".into(), "a, b".into(), " ".into()],
            speech_timeout: Some("auto".into()),
            prompts: vec![Verb::Say("Press 1.".into()), Verb::Pause(1), Verb::Hangup],
        }));
        let xml = parse(&render(&r, &voice()));
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let g = doc
            .descendants()
            .find(|n| n.has_tag_name("Gather"))
            .unwrap();
        assert_eq!(
            g.attribute("action"),
            Some("https://h/step?seq=1&attempt=0")
        );
        assert_eq!(g.attribute("input"), Some("dtmf speech"));
        assert_eq!(g.attribute("numDigits"), Some("1"));
        assert_eq!(g.attribute("timeout"), Some("6"));
        assert_eq!(g.attribute("language"), Some("en-GB"));
        assert_eq!(g.attribute("hints"), Some("call back,a  b"));
        assert_eq!(g.attribute("speechTimeout"), Some("auto"));
        assert_eq!(g.attribute("actionOnEmptyResult"), None);
        let children: Vec<_> = g
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        assert_eq!(children, vec!["Say", "Pause"], "only Say/Pause/Play nest");
    }

    #[test]
    fn record_and_enqueue_attributes() {
        let mut r = Response::new();
        r.push(Verb::Record(Record {
            action: "https://h/rec".into(),
            max_length_seconds: 120,
            timeout_seconds: 5,
            finish_on_key: "#".into(),
            play_beep: true,
        }));
        r.push(Verb::Enqueue(Enqueue {
            queue: "helpline".into(),
            wait_url: "https://h/wait".into(),
            action: "https://h/done?seq=3".into(),
        }));
        r.push(Verb::Leave);
        r.push(Verb::Hangup);
        let xml = parse(&render(&r, &voice()));
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let rec = doc
            .descendants()
            .find(|n| n.has_tag_name("Record"))
            .unwrap();
        assert_eq!(rec.attribute("maxLength"), Some("120"));
        assert_eq!(rec.attribute("finishOnKey"), Some("#"));
        assert_eq!(rec.attribute("playBeep"), Some("true"));
        assert_eq!(rec.attribute("timeout"), Some("5"));
        let q = doc
            .descendants()
            .find(|n| n.has_tag_name("Enqueue"))
            .unwrap();
        assert_eq!(q.text(), Some("helpline"));
        assert_eq!(q.attribute("waitUrl"), Some("https://h/wait"));
        assert_eq!(q.attribute("waitUrlMethod"), Some("POST"));
        assert_eq!(q.attribute("action"), Some("https://h/done?seq=3"));
        assert!(doc.descendants().any(|n| n.has_tag_name("Leave")));
        assert!(doc.descendants().any(|n| n.has_tag_name("Hangup")));
    }

    #[test]
    fn dtmf_only_gather_has_no_speech_attributes() {
        let mut r = Response::new();
        r.push(Verb::Gather(Gather {
            action: "a".into(),
            input: GatherInput::Dtmf,
            num_digits: Some(1),
            timeout_seconds: 1,
            finish_on_key: None,
            hints: vec!["x".into()],
            speech_timeout: Some("auto".into()),
            prompts: vec![],
        }));
        let xml = parse(&render(&r, &voice()));
        assert!(
            !xml.contains("hints") && !xml.contains("language") && !xml.contains("speechTimeout"),
            "{xml}"
        );
    }
}
