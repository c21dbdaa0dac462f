//! The `application/x-www-form-urlencoded` body Twilio posts, parsed strictly: a body
//! that is not well-formed is refused (400) rather than guessed at.
//!
//! `form_urlencoded::parse` is lossy (invalid UTF-8 becomes U+FFFD and a stray `%` is
//! kept literally), which would let a damaged body through with values that differ from
//! the bytes Twilio signed, so the decoding is done here, byte by byte.

/// Why a webhook body was refused. The messages are safe to send back and to log: they
/// name at most a (sanitised) field name, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the body is not application/x-www-form-urlencoded: it has raw non-ASCII bytes")]
    NotUrlEncoded,
    #[error(
        "form field {field} has a malformed percent-escape (a `%` not followed by two hex digits)"
    )]
    BadPercentEscape { field: String },
    #[error("form field {field} is invalid UTF-8 after percent-decoding")]
    InvalidUtf8 { field: String },
    #[error("form field {field} appears more than once: Twilio sends each field once")]
    DuplicateField { field: String },
    #[error("missing required field `CallSid`")]
    MissingCallSid,
    #[error("bad `CallSid`: it must be 1 to 64 ASCII letters and digits")]
    BadCallSid,
}

/// A webhook's parameters, in body order. From a body, each name appears once: Twilio
/// never repeats a field, and two `CallSid`s or `Digits` would leave the handler and the
/// signature check to disagree about which one counts, so [`WebhookForm::parse`] refuses
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookForm {
    params: Vec<(String, String)>,
}

/// Why one component failed to decode.
enum DecodeError {
    BadEscape,
    InvalidUtf8,
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One name or value: `+` is a space, `%XX` a byte; the bytes must be UTF-8.
fn decode(raw: &str) -> Result<String, DecodeError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                    _ => return Err(DecodeError::BadEscape),
                }
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::InvalidUtf8)
}

/// A field name fit for an error message: echoed only when it is short and plain.
fn describe_field(name: Option<&str>) -> String {
    match name {
        Some(n)
            if !n.is_empty()
                && n.len() <= 40
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') =>
        {
            format!("`{n}`")
        }
        _ => "(a field name)".to_string(),
    }
}

fn decode_error(e: DecodeError, field: Option<&str>) -> FormError {
    let field = describe_field(field);
    match e {
        DecodeError::BadEscape => FormError::BadPercentEscape { field },
        DecodeError::InvalidUtf8 => FormError::InvalidUtf8 { field },
    }
}

impl WebhookForm {
    /// Parses an `application/x-www-form-urlencoded` body. Empty `&&` segments are
    /// skipped and a segment without `=` is a name with an empty value, as in the WHATWG
    /// form parser; anything that parser would have to guess at is refused, and so is a
    /// name that appears twice (decoded: `Digits` and `%44igits` are the same name).
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        if !body.is_ascii() {
            return Err(FormError::NotUrlEncoded);
        }
        let text = std::str::from_utf8(body).map_err(|_| FormError::NotUrlEncoded)?;
        let mut params = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for segment in text.split('&').filter(|s| !s.is_empty()) {
            let (raw_name, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
            let name = decode(raw_name).map_err(|e| decode_error(e, None))?;
            let value = decode(raw_value).map_err(|e| decode_error(e, Some(&name)))?;
            if !seen.insert(name.clone()) {
                return Err(FormError::DuplicateField {
                    field: describe_field(Some(&name)),
                });
            }
            params.push((name, value));
        }
        Ok(Self { params })
    }

    /// A form from already-decoded pairs (tests and the simulator).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { params: pairs }
    }

    /// The first value of `name` (an empty value counts as present).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter, in body order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The call this webhook is about: 1 to 64 ASCII letters and digits.
    pub fn call_sid(&self) -> Result<&str, FormError> {
        let sid = self.get("CallSid").ok_or(FormError::MissingCallSid)?;
        if sid.is_empty() || sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(FormError::BadCallSid);
        }
        Ok(sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_twilio_form_in_body_order() {
        let f = WebhookForm::parse(
            b"CallSid=CA1234567890ABCDE&From=%2B447700900123&SpeechResult=someone+phoned+me&Digits=",
        )
        .unwrap();
        assert_eq!(f.call_sid(), Ok("CA1234567890ABCDE"));
        assert_eq!(f.get("From"), Some("+447700900123"));
        assert_eq!(f.get("SpeechResult"), Some("someone phoned me"));
        assert_eq!(f.get("Digits"), Some(""), "an empty value is present");
        assert_eq!(f.get("Nope"), None);
        let names: Vec<_> = f.params().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["CallSid", "From", "SpeechResult", "Digits"]);
    }

    #[test]
    fn plus_is_a_space_and_percent_2b_is_a_plus() {
        let f =
            WebhookForm::parse(b"CallSid=CA1&A=+447700900123&B=%2B447700900123&C=a%20b+c").unwrap();
        assert_eq!(f.get("A"), Some(" 447700900123"));
        assert_eq!(f.get("B"), Some("+447700900123"));
        assert_eq!(f.get("C"), Some("a b c"));
    }

    #[test]
    fn empty_segments_and_bare_names() {
        let f = WebhookForm::parse(b"&CallSid=CA1&&X=1&Flag&=v&").unwrap();
        assert_eq!(f.get("X"), Some("1"));
        assert_eq!(f.get("Flag"), Some(""));
        assert_eq!(f.get(""), Some("v"));
        assert_eq!(f.params().len(), 4);
        assert_eq!(WebhookForm::parse(b"").unwrap(), WebhookForm::default());
    }

    #[test]
    fn repeated_names_are_refused() {
        for (body, field) in [
            (&b"CallSid=CA1&CallSid=CA2"[..], "`CallSid`"),
            (b"CallSid=CA1&Digits=1&Digits=2", "`Digits`"),
            (b"CallSid=CA1&Digits=1&%44igits=2", "`Digits`"),
            (b"CallSid=CA1&X=1&X=1", "`X`"),
            (b"CallSid=CA1&Flag&Flag=", "`Flag`"),
        ] {
            assert_eq!(
                WebhookForm::parse(body),
                Err(FormError::DuplicateField {
                    field: field.into()
                }),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let msg = WebhookForm::parse(b"Digits=1&Digits=2")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`Digits`") && msg.contains("more than once"),
            "{msg}"
        );
    }

    #[test]
    fn percent_encoded_utf8_is_decoded() {
        let f = WebhookForm::parse(b"CallSid=CA1&CallerName=Zo%C3%AB&Q=%e2%82%ac").unwrap();
        assert_eq!(f.get("CallerName"), Some("Zoë"));
        assert_eq!(f.get("Q"), Some("€"));
    }

    #[test]
    fn invalid_percent_encoded_utf8_is_refused() {
        assert_eq!(
            WebhookForm::parse(b"CallSid=CA1&From=%FF%FE"),
            Err(FormError::InvalidUtf8 {
                field: "`From`".into()
            })
        );
        // A truncated multi-byte sequence.
        assert!(matches!(
            WebhookForm::parse(b"CallSid=CA1&Name=Zo%C3"),
            Err(FormError::InvalidUtf8 { .. })
        ));
        // In a name: the name is not echoed.
        assert_eq!(
            WebhookForm::parse(b"%C3%28=1"),
            Err(FormError::InvalidUtf8 {
                field: "(a field name)".into()
            })
        );
        let msg = WebhookForm::parse(b"CallSid=CA1&From=%FF")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("invalid UTF-8") && msg.contains("From"),
            "{msg}"
        );
    }

    #[test]
    fn raw_non_ascii_and_bad_escapes_are_refused() {
        assert_eq!(
            WebhookForm::parse("CallSid=CA1&Name=Zoë".as_bytes()),
            Err(FormError::NotUrlEncoded)
        );
        assert_eq!(
            WebhookForm::parse(&[0xff, 0xfe]),
            Err(FormError::NotUrlEncoded)
        );
        for body in [&b"CallSid=CA1&D=100%"[..], b"D=%4", b"D=%zz", b"D=%%41"] {
            assert!(
                matches!(
                    WebhookForm::parse(body),
                    Err(FormError::BadPercentEscape { .. })
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn error_messages_never_carry_values() {
        let e = WebhookForm::parse(b"CallSid=CA1&From=%2B4477009001%FF").unwrap_err();
        assert!(!e.to_string().contains("447700"), "{e}");
        let long_name = format!("{}=%FF", "N".repeat(60));
        let e = WebhookForm::parse(long_name.as_bytes()).unwrap_err();
        assert!(!e.to_string().contains("NNNN"), "{e}");
    }

    #[test]
    fn call_sid_is_required_and_checked() {
        assert_eq!(
            WebhookForm::parse(b"From=x").unwrap().call_sid(),
            Err(FormError::MissingCallSid)
        );
        assert_eq!(
            FormError::MissingCallSid.to_string(),
            "missing required field `CallSid`"
        );
        for bad in [
            "CallSid=",
            "CallSid=CA%3B1",
            "CallSid=CA+1",
            "CallSid=CA%C3%AB",
        ] {
            assert_eq!(
                WebhookForm::parse(bad.as_bytes()).unwrap().call_sid(),
                Err(FormError::BadCallSid),
                "{bad}"
            );
        }
        let max = format!("CallSid={}", "a".repeat(64));
        assert!(WebhookForm::parse(max.as_bytes())
            .unwrap()
            .call_sid()
            .is_ok());
        let over = format!("CallSid={}", "a".repeat(65));
        assert_eq!(
            WebhookForm::parse(over.as_bytes()).unwrap().call_sid(),
            Err(FormError::BadCallSid)
        );
        let real = "CallSid=CA0123456789abcdef0123456789abcdef";
        assert!(WebhookForm::parse(real.as_bytes())
            .unwrap()
            .call_sid()
            .is_ok());
    }

    #[test]
    fn from_pairs_keeps_order_and_duplicates() {
        let f = WebhookForm::from_pairs(vec![
            ("CallSid".into(), "CA1".into()),
            ("X".into(), "b".into()),
            ("X".into(), "a".into()),
        ]);
        assert_eq!(f.get("X"), Some("b"));
        assert_eq!(f.params().len(), 3);
        assert_eq!(f.call_sid(), Ok("CA1"));
    }
}
