//! `X-Twilio-Signature`: HMAC-SHA1 of the URL Twilio called plus the POST parameters
//! sorted by name, base64-encoded, keyed by the account's auth token.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// The data Twilio signs: the URL, then each parameter name followed by its value, names
/// in byte order; a name given several times contributes each of its distinct values in
/// byte order, as twilio-python's `RequestValidator.compute_signature` does
/// (`sorted(set(names))`, then `sorted(set(values))` per name). Sorting `(name, value)`
/// pairs and dropping exact duplicates is the same thing; byte order of UTF-8 is code
/// point order, which is how Python compares strings.
fn signed_data(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut data = Vec::with_capacity(
        url.len() + params.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
    );
    data.extend_from_slice(url.as_bytes());
    for (k, v) in sorted {
        data.extend_from_slice(k.as_bytes());
        data.extend_from_slice(v.as_bytes());
    }
    data
}

/// The signature Twilio would send for this request.
pub fn compute(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    // HMAC takes keys of any length; the error branch cannot happen.
    let Ok(mut mac) = HmacSha1::new_from_slice(auth_token) else {
        return String::new();
    };
    mac.update(&signed_data(url, params));
    STANDARD.encode(mac.finalize().into_bytes())
}

/// True when `signature` matches the URL as given, or with the scheme's default port
/// added or removed (Twilio signs some URLs with `:443` and some without).
///
/// Unlike twilio-python's `remove_port`, which strips *any* port, only the scheme's
/// default port is toggled: a signature for `https://h/x` is not accepted for
/// `https://h:8443/x`. Compared in constant time; never panics.
pub fn is_valid(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let signature = signature.trim();
    if signature.is_empty() {
        return false;
    }
    let mut valid = false;
    for candidate in url_variants(url) {
        let expected = compute(auth_token, &candidate, params);
        // Constant time in the content; every variant is checked so timing does not tell which matched.
        valid |= bool::from(expected.as_bytes().ct_eq(signature.as_bytes()));
    }
    valid
}

/// The URL as given, plus the same URL with its default port toggled.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let (scheme, default_port) = if url.starts_with("https://") {
        ("https://", "443")
    } else if url.starts_with("http://") {
        ("http://", "80")
    } else {
        return out;
    };
    let rest = &url[scheme.len()..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The port, if any, follows the last ':' outside an IPv6 literal's brackets.
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    match authority[host_end..].rfind(':').map(|i| i + host_end) {
        Some(colon) if &authority[colon + 1..] == default_port => {
            out.push(format!("{scheme}{}{tail}", &authority[..colon]));
        }
        Some(_) => {}
        None => out.push(format!("{scheme}{authority}:{default_port}{tail}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const URL_443: &str = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    const SIG: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
    const SIG_443: &str = "EpDEmp1PyjDYp77YxYU3GILBWzE=";

    #[test]
    fn twilio_known_answers() {
        assert_eq!(compute(b"12345", URL, &vector()), SIG);
        assert_eq!(compute(b"12345", URL_443, &vector()), SIG_443);
    }

    #[test]
    fn either_signature_for_either_url_form() {
        for url in [URL, URL_443] {
            for sig in [SIG, SIG_443] {
                assert!(is_valid(b"12345", url, &vector(), sig), "{url} {sig}");
            }
        }
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let mut reversed = vector();
        reversed.reverse();
        assert!(is_valid(b"12345", URL, &reversed, SIG));
    }

    #[test]
    fn rejects_what_was_not_signed() {
        assert!(!is_valid(b"54321", URL, &vector(), SIG), "wrong token");
        let mut changed = vector();
        changed[2].1 = "1235".into();
        assert!(!is_valid(b"12345", URL, &changed, SIG), "changed parameter");
        let mut added = vector();
        added.push(("Extra".into(), "1".into()));
        assert!(!is_valid(b"12345", URL, &added, SIG), "added parameter");
        let other_port = "https://mycompany.com:8443/myapp.php?foo=1&bar=2";
        assert!(
            !is_valid(b"12345", other_port, &vector(), SIG),
            "different port"
        );
        assert!(
            !is_valid(
                b"12345",
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                &vector(),
                SIG
            ),
            "changed query"
        );
        assert!(!is_valid(b"12345", URL, &vector(), ""), "empty");
        assert!(
            !is_valid(b"12345", URL, &vector(), "not base64 at all!"),
            "garbage"
        );
        assert!(!is_valid(b"12345", URL, &vector(), &SIG[..10]), "truncated");
    }

    #[test]
    fn repeated_names_follow_twilio_python() {
        // Expected values from twilio-python's algorithm: names sorted, each name's
        // distinct values sorted.
        let p: Vec<(String, String)> = [
            ("CallSid", "CA1"),
            ("To", "b"),
            ("To", "a"),
            ("To", "b"),
            ("Zo\u{eb}", "\u{e9}"),
            ("Z", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            compute(b"12345", "https://h/x", &p),
            "vf1LtHwF0yngl1+9fPx/fjJxGdY="
        );
        assert_eq!(
            compute(b"12345", "https://h/x", &p),
            compute(b"12345", "https://h/xCallSidCA1ToaTobZxZo\u{eb}\u{e9}", &[]),
            "the signed string, spelled out"
        );
        assert_eq!(
            compute(b"12345", "https://h/x", &[]),
            "utCI9oBpf5ZWsSxu3sr/8Hwx/jg="
        );
    }

    #[test]
    fn garbage_never_panics_and_never_validates() {
        let urls = [
            "",
            "https://",
            "https://:",
            "http://[",
            "https://[::1",
            "https://\u{e9}:443",
            "https://h:\u{e9}/x",
            "ftp://h:21/x",
            "HTTPS://H/x",
            "https://user:pw@h/x",
        ];
        let sigs = ["", " ", "=", "====", "\u{0}", "\u{1f600}", SIG, SIG_443];
        for url in urls {
            for sig in sigs {
                assert!(!is_valid(b"12345", url, &vector(), sig), "{url:?} {sig:?}");
            }
        }
        assert!(!is_valid(b"", URL, &[], ""));
    }

    #[test]
    fn signature_whitespace_is_tolerated() {
        assert!(is_valid(b"12345", URL, &vector(), &format!(" {SIG}\t")));
    }

    #[test]
    fn url_variants_toggle_only_the_default_port() {
        assert_eq!(
            url_variants("http://h/x"),
            vec!["http://h/x", "http://h:80/x"]
        );
        assert_eq!(
            url_variants("http://h:80/x"),
            vec!["http://h:80/x", "http://h/x"]
        );
        assert_eq!(url_variants("https://h:8443/x"), vec!["https://h:8443/x"]);
        assert_eq!(
            url_variants("https://[::1]/x"),
            vec!["https://[::1]/x", "https://[::1]:443/x"]
        );
        assert_eq!(
            url_variants("https://h?x=1"),
            vec!["https://h?x=1", "https://h:443?x=1"]
        );
    }
}
