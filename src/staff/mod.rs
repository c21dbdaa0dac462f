//! Staff accounts: roles, password and second-factor checks, one-time set-up links,
//! recovery codes, server-side sessions and sign-in throttling. The HTTP side lives in
//! `dashboard`; this module holds the rules, so they are tested without a browser.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub mod accounts;
pub mod audit;
pub mod password;
pub mod totp;

/// What a member of staff may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Works the queue and the call-back list.
    Handler,
    /// Also statistics and the line's settings.
    Manager,
    /// Also staff accounts and the audit log.
    Admin,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Handler, Role::Manager, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Handler => "handler",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a role: use handler, manager or admin"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff account as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    /// The phone a handler takes calls on (E.164).
    pub phone: Option<String>,
    /// argon2id PHC string; `None` until the account is set up.
    pub password_hash: Option<String>,
    /// Base32 TOTP secret; `None` until the second factor is enrolled.
    pub totp_secret: Option<String>,
    pub disabled: bool,
    pub setup_token_hash: Option<String>,
    pub setup_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change: a change made from an older copy is refused.
    pub version: i64,
}

// Never print a hash or a secret by accident.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl User {
    /// A new account: no password and no second factor until its holder follows the
    /// one-time set-up link. There are no default accounts.
    pub fn new(
        email: &str,
        role: Role,
        phone: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(User, SetupToken), StaffError> {
        let email = normalise_email(email)?;
        let token = SetupToken::new(now);
        Ok((
            User {
                id: uuid::Uuid::new_v4().to_string(),
                email,
                role,
                phone,
                password_hash: None,
                totp_secret: None,
                disabled: false,
                setup_token_hash: Some(token.hash()),
                setup_expires_at: Some(token.expires_at),
                created_at: now,
                updated_at: now,
                version: 0,
            },
            token,
        ))
    }

    /// Starts a password reset: the password stops working and a new set-up link is issued.
    /// The second factor is kept, so a reset never bypasses it.
    pub fn reset_password(&mut self, now: DateTime<Utc>) -> SetupToken {
        let token = SetupToken::new(now);
        self.password_hash = None;
        self.setup_token_hash = Some(token.hash());
        self.setup_expires_at = Some(token.expires_at);
        self.updated_at = now;
        token
    }

    /// Whether a set-up link with this token hash is still good.
    pub fn setup_valid(&self, now: DateTime<Utc>) -> bool {
        !self.disabled
            && self.setup_token_hash.is_some()
            && self.setup_expires_at.is_some_and(|t| now < t)
    }
}

/// Lower-cased and checked for the shape of an address (delivery is not our concern).
pub fn normalise_email(email: &str) -> Result<String, StaffError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email)
    } else {
        Err(StaffError::BadEmail)
    }
}

/// A random secret, 256 bits, URL-safe.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 in hex: how tokens, session ids and recovery codes are stored (a stolen database
/// holds no usable token).
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A one-time set-up link's secret: shown once, stored only as a hash, good for 24 hours.
#[derive(Clone)]
pub struct SetupToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl SetupToken {
    pub const LIFETIME_HOURS: i64 = 24;

    fn new(now: DateTime<Utc>) -> Self {
        Self {
            token: random_token(),
            expires_at: now + Duration::hours(Self::LIFETIME_HOURS),
        }
    }

    pub fn hash(&self) -> String {
        token_hash(&self.token)
    }

    /// The link to give the new member of staff.
    pub fn link(&self, public_url: &str) -> String {
        format!("{public_url}/setup/{}", self.token)
    }
}

/// Ten one-time recovery codes, for a lost authenticator: `xxxxx-xxxxx`.
pub fn recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..10)
        .map(|_| {
            let mut code = String::with_capacity(11);
            for i in 0..10 {
                if i == 5 {
                    code.push('-');
                }
                let n: usize = rand::random_range(0..ALPHABET.len());
                code.push(char::from(ALPHABET[n]));
            }
            code
        })
        .collect()
}

/// How far a session has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Not signed in (holds the sign-in form's CSRF token).
    Anonymous,
    /// The password was right; the second factor is next.
    SecondFactor,
    /// The password was right and no second factor is enrolled yet: set it up now.
    Enrol,
    /// Fully signed in.
    SignedIn,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Anonymous => "anonymous",
            Stage::SecondFactor => "second-factor",
            Stage::Enrol => "enrol",
            Stage::SignedIn => "signed-in",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Stage::Anonymous,
            Stage::SecondFactor,
            Stage::Enrol,
            Stage::SignedIn,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// A server-side session. The browser holds only a random id; the store holds its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    pub user_id: Option<String>,
    pub stage: Stage,
    pub csrf: String,
    /// A second-factor secret being enrolled (not yet confirmed by a code).
    pub pending_secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end, however busy the session is.
    pub expires_at: DateTime<Utc>,
}

/// Session lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

impl SessionPolicy {
    /// A new session; returns it and the id for the cookie (a fresh one at every stage
    /// change, so an id seen before sign-in is worthless after it).
    pub fn start(
        &self,
        user_id: Option<String>,
        stage: Stage,
        now: DateTime<Utc>,
    ) -> (Session, String) {
        let id = random_token();
        (
            Session {
                id_hash: token_hash(&id),
                user_id,
                stage,
                csrf: random_token(),
                pending_secret: None,
                created_at: now,
                last_seen_at: now,
                expires_at: now + self.absolute,
            },
            id,
        )
    }

    /// Whether the session is still alive at `now`.
    pub fn alive(&self, s: &Session, now: DateTime<Utc>) -> bool {
        now < s.expires_at && now - s.last_seen_at < self.idle
    }
}

/// Sign-in throttling: failures counted per account and per source address in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub window: Duration,
    pub per_account: i64,
    pub per_address: i64,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            window: Duration::minutes(15),
            per_account: 5,
            per_address: 20,
        }
    }
}

impl Throttle {
    /// When sign-in may be tried again, given `count` failures in the window, the oldest at
    /// `oldest`; `None` when it may be tried now.
    pub fn retry_at(
        &self,
        count: i64,
        oldest: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Option<DateTime<Utc>> {
        (count >= limit)
            .then(|| oldest.map(|t| t + self.window))
            .flatten()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StaffError {
    #[error("that is not an e-mail address")]
    BadEmail,
    #[error("the password must be at least {0} characters long")]
    ShortPassword(usize),
    #[error("the password must be at most {0} characters long")]
    LongPassword(usize),
    #[error("the password could not be hashed")]
    Hash,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Admin.allows(Role::Manager));
        assert!(Role::Manager.allows(Role::Handler));
        assert!(!Role::Handler.allows(Role::Manager));
        assert_eq!("manager".parse::<Role>(), Ok(Role::Manager));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email(" Ann@Example.NHS.uk ").unwrap(),
            "ann@example.nhs.uk"
        );
        for bad in ["", "ann", "@x.uk", "ann@x", "a nn@x.uk", "ann@.uk"] {
            assert_eq!(normalise_email(bad), Err(StaffError::BadEmail), "{bad}");
        }
    }

    #[test]
    fn new_accounts_have_no_password_and_a_one_time_link() {
        let now = Utc::now();
        let (u, token) = User::new("a@b.uk", Role::Handler, None, now).unwrap();
        assert!(u.password_hash.is_none() && u.totp_secret.is_none());
        assert_eq!(
            u.setup_token_hash.as_deref(),
            Some(token_hash(&token.token).as_str())
        );
        assert!(u.setup_valid(now));
        assert!(!u.setup_valid(now + Duration::hours(25)));
        assert!(token
            .link("https://h.example")
            .starts_with("https://h.example/setup/"));
        assert!(token.token.len() >= 43, "256 bits");
    }

    #[test]
    fn a_password_reset_keeps_the_second_factor() {
        let now = Utc::now();
        let (mut u, _) = User::new("a@b.uk", Role::Handler, None, now).unwrap();
        u.password_hash = Some("x".into());
        u.totp_secret = Some("SECRET".into());
        u.reset_password(now);
        assert!(u.password_hash.is_none());
        assert_eq!(u.totp_secret.as_deref(), Some("SECRET"));
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let policy = SessionPolicy {
            idle: Duration::minutes(30),
            absolute: Duration::hours(10),
        };
        let now = Utc::now();
        let (mut s, id) = policy.start(None, Stage::Anonymous, now);
        assert_eq!(s.id_hash, token_hash(&id));
        assert!(policy.alive(&s, now + Duration::minutes(29)));
        assert!(!policy.alive(&s, now + Duration::minutes(30)));
        s.last_seen_at = now + Duration::hours(9) + Duration::minutes(59);
        assert!(policy.alive(&s, now + Duration::hours(9) + Duration::minutes(59)));
        assert!(!policy.alive(&s, now + Duration::hours(10)));
    }

    #[test]
    fn recovery_codes_are_distinct() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), 10);
        assert!(codes
            .iter()
            .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
    }

    #[test]
    fn throttle_says_when_to_try_again() {
        let t = Throttle::default();
        let at = Utc::now();
        assert_eq!(t.retry_at(4, Some(at), 5), None);
        assert_eq!(t.retry_at(5, Some(at), 5), Some(at + Duration::minutes(15)));
    }
}
