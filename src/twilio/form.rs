//! The `application/x-www-form-urlencoded` body Twilio posts, parsed strictly: a body
//! that is not well-formed is refused (400) rather than guessed at.

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the body is not application/x-www-form-urlencoded text (it has non-ASCII bytes)")]
    NotUrlEncoded,
    #[error("the form field `{0}` is not valid UTF-8 once percent-decoded")]
    InvalidUtf8(String),
    #[error("the form has no `CallSid` field")]
    MissingCallSid,
    #[error("the form's `CallSid` is not 1 to 64 letters and digits")]
    BadCallSid,
}

/// A webhook's parameters, in body order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookForm {
    params: Vec<(String, String)>,
}

fn decode(part: &str) -> Option<String> {
    let spaced = part.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

impl WebhookForm {
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        let text = std::str::from_utf8(body)
            .ok()
            .filter(|t| t.is_ascii())
            .ok_or(FormError::NotUrlEncoded)?;
        let mut params = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(raw_name)
                .ok_or_else(|| FormError::InvalidUtf8(raw_name.chars().take(40).collect()))?;
            let value = decode(raw_value)
                .ok_or_else(|| FormError::InvalidUtf8(name.chars().take(40).collect()))?;
            params.push((name, value));
        }
        Ok(Self { params })
    }

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

    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The call this webhook is about.
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
    fn parses_twilio_forms() {
        let f = WebhookForm::parse(
            b"CallSid=CA123&From=%2B447700900123&SpeechResult=someone+phoned+me&Digits=",
        )
        .unwrap();
        assert_eq!(f.call_sid(), Ok("CA123"));
        assert_eq!(f.get("From"), Some("+447700900123"));
        assert_eq!(f.get("SpeechResult"), Some("someone phoned me"));
        assert_eq!(f.get("Digits"), Some(""));
        assert_eq!(f.get("Nope"), None);
        assert_eq!(f.params().len(), 4);
        let plus = WebhookForm::parse(b"CallSid=CA1&From=+447700900123").unwrap();
        assert_eq!(
            plus.get("From"),
            Some(" 447700900123"),
            "a raw + is a space, as in every form decoder"
        );
    }

    #[test]
    fn refuses_malformed_bodies() {
        assert_eq!(
            WebhookForm::parse(b"CallSid=CA1&From=%FF%FE"),
            Err(FormError::InvalidUtf8("From".into()))
        );
        assert_eq!(
            WebhookForm::parse("CallSid=CA1&Name=Zoë".as_bytes()),
            Err(FormError::NotUrlEncoded)
        );
        assert_eq!(
            WebhookForm::parse(&[0xff, 0xfe]),
            Err(FormError::NotUrlEncoded)
        );
        assert_eq!(
            WebhookForm::parse(b"From=x").unwrap().call_sid(),
            Err(FormError::MissingCallSid)
        );
        assert_eq!(
            WebhookForm::parse(b"CallSid=CA%3B1").unwrap().call_sid(),
            Err(FormError::BadCallSid)
        );
        assert_eq!(
            WebhookForm::parse(b"CallSid=").unwrap().call_sid(),
            Err(FormError::BadCallSid)
        );
    }

    #[test]
    fn utf8_percent_encoded_is_fine() {
        let f = WebhookForm::parse(b"CallSid=CA1&CallerName=Zo%C3%AB").unwrap();
        assert_eq!(f.get("CallerName"), Some("Zoë"));
    }
}
