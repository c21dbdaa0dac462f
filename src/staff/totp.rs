//! The second factor: RFC 6238 time-based codes (6 digits, 30-second steps, SHA-1: what
//! every authenticator app supports), checked against the injected clock, each code usable
//! once. Enrolment shows a QR code (SVG, drawn server-side) and the secret as text.

use chrono::{DateTime, Utc};
use totp_rs::{Builder, Secret, Totp};

/// The name authenticator apps show.
pub const ISSUER: &str = "Helpline";

/// A new random secret (160 bits), base32.
pub fn new_secret() -> String {
    Secret::generate().to_base32()
}

fn totp(secret: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret).ok()?;
    Builder::new()
        .with_secret(secret)
        .with_skew(1)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .ok()
}

fn unix(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

/// The time step `code` belongs to, if it is right at `now` (one step either side allowed
/// for clock drift) and later than `last_step` (so a code seen over a shoulder, or replayed,
/// is refused).
pub fn check(secret: &str, code: &str, now: DateTime<Utc>, last_step: Option<i64>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = totp(secret, "")?.check(&code, unix(now))?;
    let step = i64::try_from(step).ok()?;
    (last_step.is_none_or(|last| step > last)).then_some(step)
}

/// The code an authenticator would show at `at` (for tests and the simulator).
pub fn code_at(secret: &str, at: DateTime<Utc>) -> Option<String> {
    Some(totp(secret, "")?.generate(unix(at)).to_string())
}

/// The `otpauth://` URL an authenticator app reads from the QR code.
pub fn otpauth_url(secret: &str, account: &str) -> Option<String> {
    totp(secret, account)?.to_url().ok()
}

/// The QR code for enrolment, as an SVG document.
pub fn qr_svg(secret: &str, account: &str) -> Option<String> {
    let url = otpauth_url(secret, account)?;
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_work_once_within_the_window() {
        let secret = new_secret();
        let now: DateTime<Utc> = "2026-11-30T10:00:10Z".parse().unwrap();
        let code = code_at(&secret, now).unwrap();
        let step = check(&secret, &code, now, None).expect("right code");
        assert_eq!(check(&secret, &code, now, Some(step)), None, "replayed");
        let later = now + chrono::Duration::seconds(30);
        assert!(
            check(&secret, &code, later, None).is_some(),
            "one step of drift"
        );
        let much_later = now + chrono::Duration::seconds(120);
        assert_eq!(check(&secret, &code, much_later, None), None);
        assert_eq!(check(&secret, "12345", now, None), None);
        assert_eq!(check(&secret, "abcdef", now, None), None);
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); the last 6 are ours.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let at = DateTime::<Utc>::from_timestamp(59, 0).unwrap();
        assert_eq!(code_at(secret, at).unwrap(), "287082");
    }

    #[test]
    fn qr_and_url_name_the_issuer() {
        let s = new_secret();
        let url = otpauth_url(&s, "ann@example.nhs.uk").unwrap();
        assert!(url.starts_with("otpauth://totp/Helpline:ann"), "{url}");
        assert!(qr_svg(&s, "ann@example.nhs.uk").unwrap().contains("<svg"));
    }
}
