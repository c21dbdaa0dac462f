//! The `X-Twilio-Signature` check (`src/twilio/signature.rs`) and the extractor's use of it
//! (`WebhookAuth::verify` in `src/twilio/extract.rs`), on any token, URL, body and header.
//!
//! Beyond "never panics":
//! - the signature Twilio would compute for a URL and parameters is accepted, also with
//!   whitespace around it;
//! - changing one byte of the signature, the URL, the auth token, or any parameter's name or
//!   value, adding a parameter or removing one, makes it fail;
//! - through `WebhookAuth`, a signature over the configured public URL plus the path is
//!   accepted with or without the default port `:443`, and refused for another port, for a
//!   missing header and for an empty one.
#![no_main]

use std::collections::HashSet;

use arbitrary::Unstructured;
use helpline::twilio::extract::{SignatureError, WebhookAuth};
use helpline::twilio::form::WebhookForm;
use helpline::twilio::signature::{compute, is_valid};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

/// One fuzz input: four lines (auth token, URL Twilio called, webhook body, a header value
/// that may or may not be the signature), then bytes that choose the changes.
#[derive(Debug)]
struct Input {
    token: Vec<u8>,
    url: String,
    /// Parameters: the body parsed strictly, or (when it does not parse) leniently.
    params: Vec<(String, String)>,
    junk: String,
    /// Which byte to change, and into what (an ASCII byte, so the text stays UTF-8).
    at: usize,
    byte: u8,
    /// An extra parameter.
    extra: (String, String),
    /// `WebhookAuth`'s public host and the request's path.
    host: String,
    path: String,
}

impl Input {
    fn read(data: &[u8]) -> arbitrary::Result<Self> {
        let mut lines = data.splitn(5, |b| *b == b'\n');
        let mut line = || lines.next().unwrap_or_default();
        let token = line().to_vec();
        let url = String::from_utf8_lossy(line()).into_owned();
        let body = line();
        let junk = String::from_utf8_lossy(line()).into_owned();
        let mut u = Unstructured::new(line());
        let params = match WebhookForm::parse(body) {
            Ok(form) => form.params().to_vec(),
            // Exact duplicate pairs are signed once, so changing one copy into another pair
            // already present could leave the signed text alone: keep each pair once.
            Err(_) => {
                let mut seen = HashSet::new();
                form_urlencoded::parse(body)
                    .into_owned()
                    .filter(|p| seen.insert(p.clone()))
                    .collect()
            }
        };
        Ok(Self {
            token,
            url,
            params,
            junk,
            at: u.arbitrary()?,
            byte: u.arbitrary()?,
            extra: u.arbitrary()?,
            host: u.arbitrary()?,
            path: u.arbitrary()?,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::read(data) else {
        return;
    };
    let token = input.token.as_slice();
    let params = input.params.clone();
    let url = input.url.as_str();

    let good = compute(token, url, &params);
    assert!(
        is_valid(token, url, &params, &good),
        "Twilio's own signature refused"
    );
    assert!(is_valid(token, url, &params, &format!(" {good}\t")));
    assert!(!is_valid(token, url, &params, ""));
    if input.junk.trim() != good {
        assert!(
            !is_valid(token, url, &params, &input.junk)
                || is_port_variant_signature(&input, &params)
        );
    }

    // One byte of the signature.
    let changed = change_one_byte(&good, input.at, input.byte).expect("a signature is ASCII");
    assert!(
        !is_valid(token, url, &params, &changed),
        "a changed signature accepted"
    );

    // One byte of the URL: the signed text changes, and no default-port variant of the new
    // URL has the old one's length.
    if let Some(other) = change_one_byte(url, input.at, input.byte) {
        assert!(
            !is_valid(token, &other, &params, &good),
            "signature accepted for {other:?}"
        );
    }

    // One byte of the token (a different key of the same length).
    if !token.is_empty() {
        let mut other = token.to_vec();
        let i = input.at % other.len();
        other[i] ^= input.byte.max(1);
        assert!(
            !is_valid(&other, url, &params, &good),
            "signature accepted for another token"
        );
    }

    // One byte of one parameter's name or value: the pairs are distinct, so the signed text
    // keeps its length but not its bytes (or loses a whole pair), whatever the new order.
    if !params.is_empty() {
        let i = input.at % params.len();
        let mut other = params.clone();
        let (name, value) = &mut other[i];
        let in_name = input.byte & 0x80 != 0;
        let target = if in_name { name } else { value };
        if let Some(c) = change_one_byte(target, input.at / params.len(), input.byte) {
            *target = c;
            assert!(
                !is_valid(token, url, &other, &good),
                "a changed field accepted"
            );
        }
    }

    // A parameter added, one taken away (each pair is signed as name then value, so only
    // an empty name with an empty value adds or takes away nothing).
    let signs_nothing = |(name, value): &(String, String)| name.is_empty() && value.is_empty();
    if !signs_nothing(&input.extra) && !params.contains(&input.extra) {
        let mut more = params.clone();
        more.push(input.extra.clone());
        assert!(
            !is_valid(token, url, &more, &good),
            "an added field accepted"
        );
    }
    if let Some(i) = (!params.is_empty()).then(|| input.at % params.len()) {
        if !signs_nothing(&params[i]) {
            let mut fewer = params.clone();
            fewer.remove(i);
            assert!(
                !is_valid(token, url, &fewer, &good),
                "a removed field accepted"
            );
        }
    }

    through_webhook_auth(&input, &params);
});

/// `WebhookAuth` with the public URL `https://<host>` and a request to `/<path>`.
fn through_webhook_auth(input: &Input, params: &[(String, String)]) {
    let host: String = input
        .host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    if host.is_empty() {
        return;
    }
    let path_and_query = format!("/{}", input.path);
    let token = String::from_utf8_lossy(&input.token).into_owned();
    let form = WebhookForm::from_pairs(params.to_vec());
    let signed = |base: &str| compute(token.as_bytes(), &format!("{base}{path_and_query}"), params);

    for configured in [format!("https://{host}"), format!("https://{host}/")] {
        let auth = WebhookAuth::new(Some(SecretString::from(token.clone())), &configured);
        let verify = |signature: Option<&str>| auth.verify(&path_and_query, &form, signature);
        assert_eq!(verify(Some(&signed(&format!("https://{host}")))), Ok(()));
        assert_eq!(
            verify(Some(&signed(&format!("https://{host}:443")))),
            Ok(())
        );
        assert_eq!(
            verify(Some(&signed(&format!("https://{host}:8443")))),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(None), Err(SignatureError::Missing));
        assert_eq!(verify(Some("")), Err(SignatureError::Mismatch));
    }
}

/// Whether `input.junk` is, after all, the signature for a default-port variant of the URL
/// (`https://h/x` and `https://h:443/x` are the same address). Not something a fuzzer finds
/// by chance; here so the property above is exact.
fn is_port_variant_signature(input: &Input, params: &[(String, String)]) -> bool {
    let url = input.url.as_str();
    let junk = input.junk.trim();
    [("https://", "443"), ("http://", "80")]
        .iter()
        .filter_map(|(scheme, port)| Some((*scheme, *port, url.strip_prefix(scheme)?)))
        .any(|(scheme, port, rest)| {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            let variants = [
                format!("{scheme}{authority}:{port}{tail}"),
                authority
                    .strip_suffix(&format!(":{port}"))
                    .map(|a| format!("{scheme}{a}{tail}"))
                    .unwrap_or_default(),
            ];
            variants
                .iter()
                .any(|v| !v.is_empty() && compute(&input.token, v, params) == junk)
        })
}

/// `text` with the ASCII byte at (about) `at` replaced by another ASCII byte; `None` when
/// `text` has no ASCII byte.
fn change_one_byte(text: &str, at: usize, byte: u8) -> Option<String> {
    let ascii: Vec<usize> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| b.is_ascii())
        .map(|(i, _)| i)
        .collect();
    let i = *ascii.get(at % ascii.len().max(1))?;
    let mut bytes = text.as_bytes().to_vec();
    let old = bytes[i];
    let mut new = byte & 0x7f;
    if new == old {
        new = (old + 1) & 0x7f;
    }
    bytes[i] = new;
    // Replacing one ASCII byte by another keeps the text UTF-8.
    Some(String::from_utf8(bytes).expect("still UTF-8"))
}
