//! Passwords: argon2id (the `argon2` crate's defaults, OWASP's recommended parameters).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use super::StaffError;

/// The shortest password accepted (NCSC guidance favours length over complexity rules).
pub const MIN_LENGTH: usize = 12;
/// Longer input is refused before hashing (argon2 work is per byte of memory, not input,
/// but nobody needs more).
pub const MAX_LENGTH: usize = 256;

/// The PHC string for a new password.
pub fn hash(password: &str) -> Result<String, StaffError> {
    check_rules(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| StaffError::Hash)
}

/// Whether `password` matches the stored hash. With no hash (an unknown or unset account)
/// a dummy hash is checked instead, so a wrong e-mail costs the same time as a wrong
/// password and does not reveal which accounts exist.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let dummy = dummy_hash();
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    if password.len() > MAX_LENGTH * 4 {
        return false;
    }
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok();
    ok && real
}

/// At most this many hashes at once: each takes ~19 MiB and a core for a moment, and runs
/// on the blocking pool, never on the threads that answer Twilio's webhooks.
const CONCURRENT_HASHES: usize = 4;

fn permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(CONCURRENT_HASHES))
}

/// [`hash`] off the async threads.
pub async fn hash_off_thread(password: String) -> Result<String, StaffError> {
    let _permit = permits().acquire().await.map_err(|_| StaffError::Hash)?;
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|_| StaffError::Hash)?
}

/// [`verify`] off the async threads.
pub async fn verify_off_thread(password: String, stored: Option<String>) -> bool {
    let Ok(_permit) = permits().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify(&password, stored.as_deref()))
        .await
        .unwrap_or(false)
}

/// Whether a new password meets the rules (checked before any hashing).
pub fn check_rules(password: &str) -> Result<(), StaffError> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        Err(StaffError::ShortPassword(MIN_LENGTH))
    } else if len > MAX_LENGTH {
        Err(StaffError::LongPassword(MAX_LENGTH))
    } else {
        Ok(())
    }
}

/// A hash of a random password, made once per process.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            Argon2::default()
                .hash_password(super::random_token().as_bytes())
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("correct horse batterY", Some(&h)));
        assert!(!verify("correct horse battery", None));
        assert_eq!(hash("short"), Err(StaffError::ShortPassword(MIN_LENGTH)));
        assert!(!verify("x", Some("not a hash")));
    }
}
