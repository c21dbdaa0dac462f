//! Personal data at rest (issue 7): callers' numbers and recorded-message references are
//! stored sealed, and looked up by a keyed hash. Everything here is pure (no database);
//! the store layer (`store::sealing`) decides which columns hold what.
//!
//! - **Sealing** is XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`) with a random 192-bit
//!   nonce per value, so the same number sealed twice never looks the same. A sealed value
//!   is text, `v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`; the associated data names
//!   the kind of value ([`Kind`]), so a sealed number does not open as a recording.
//! - **Lookups** (open enquiries for a number, "was this caller called back?") compare an
//!   HMAC-SHA256 of the value under a separate derived key: equal values have equal hashes,
//!   and the hash reveals nothing without the key.
//! - **Keys**: one 32-byte data key (`HELPLINE_DATA_KEY`) from which the encryption key, the
//!   lookup key and an 8-hex-digit key id are derived (HKDF-SHA256, one label each). A
//!   [`Keyring`] holds the current key, which seals, and any older keys
//!   (`HELPLINE_DATA_KEYS_OLD`), which only open; `helpline rekey` re-seals everything under
//!   the current one. Key material is zeroed when dropped.
//!
//! A stored value without the `v1:` prefix is legacy plaintext (written before encryption, or
//! by an older instance): [`Keyring::open`] returns it as it is, and the next start or
//! `helpline rekey` seals it. A value with the prefix must authenticate, or reading fails.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// A data key is this many random bytes.
pub const KEY_BYTES: usize = 32;
/// The format version every sealed value starts with.
pub const SEALED_PREFIX: &str = "v1:";
/// `v1:` + the 8-hex-digit key id + `:`: the part of a sealed value that names its key.
pub const SEALED_HEAD_LEN: usize = 12;
/// The file a key is kept in when none is configured (beside the SQLite database).
pub const DEFAULT_KEY_FILE: &str = "helpline-data.key";

const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// HKDF salt: fixed, naming the scheme (the input key is already uniformly random).
const HKDF_SALT: &[u8] = b"helpline data key v1";

/// What a sealed value is: part of the associated data, and of the lookup hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A caller's number: `calls.caller` (Twilio's `From`), a callback number.
    PhoneNumber,
    /// A recorded message's reference at Twilio (its URL, or an `RE…` SID).
    Recording,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::PhoneNumber => "phone number",
            Kind::Recording => "recording reference",
        }
    }

    fn context(self) -> &'static [u8] {
        match self {
            Kind::PhoneNumber => b"helpline/v1/phone-number",
            Kind::Recording => b"helpline/v1/recording",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A key setting or key file that cannot be used.
    #[error("{place}: {message}\n    fix: {fix}")]
    Setting {
        place: String,
        message: String,
        fix: String,
    },
    #[error(
        "a stored {kind} is sealed under data key {id}, which is not configured\n    \
         fix: set HELPLINE_DATA_KEY to that key, or list it in HELPLINE_DATA_KEYS_OLD \
         (docs/SECURITY.md, \"Data keys\"); `helpline rekey` then moves everything to the current key"
    )]
    UnknownKey { kind: &'static str, id: String },
    /// Never carries the value.
    #[error(
        "a stored {kind} cannot be decrypted ({why}): tampered with, or sealed under another key"
    )]
    Unreadable {
        kind: &'static str,
        why: &'static str,
    },
}

pub fn setting_error(
    place: impl Into<String>,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> CryptoError {
    CryptoError::Setting {
        place: place.into(),
        message: message.into(),
        fix: fix.into(),
    }
}

/// The fix printed for a key that is missing or malformed.
pub const KEY_FIX: &str = "generate one with `helpline keys generate` (32 random bytes in base64; \
     `openssl rand -base64 32` also does) and give it as HELPLINE_DATA_KEY or, better, \
     HELPLINE_DATA_KEY_FILE (docs/configuration.md)";

/// One data key and what is derived from it.
pub struct DataKey {
    id: String,
    aead: XChaCha20Poly1305,
    lookup: Zeroizing<[u8; KEY_BYTES]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

impl DataKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(master: &[u8; KEY_BYTES]) -> Self {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(HKDF_SALT), master);
        let derive = |label: &[u8]| {
            let mut out = Zeroizing::new([0u8; KEY_BYTES]);
            // 32 bytes is far below HKDF-SHA256's limit of 8160: this cannot fail.
            let _ = hkdf.expand(label, out.as_mut());
            out
        };
        let encryption = derive(b"helpline/v1/encryption");
        let id = derive(b"helpline/v1/key-id");
        DataKey {
            id: id[..4].iter().map(|b| format!("{b:02x}")).collect(),
            aead: XChaCha20Poly1305::new(&Key::from(*encryption)),
            lookup: derive(b"helpline/v1/lookup"),
        }
    }

    /// A key as configured: 32 bytes in base64 (standard or URL-safe, padded or not).
    /// Lines starting with `#` and blank lines are ignored (a key file may explain itself).
    /// The error says what is wrong, never the value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text: Zeroizing<String> = Zeroizing::new(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect(),
        );
        if text.is_empty() {
            return Err("the key is empty".into());
        }
        let bytes = Zeroizing::new(
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text.as_bytes()).ok())
                .ok_or("the key is not base64")?,
        );
        let master: Zeroizing<[u8; KEY_BYTES]> =
            Zeroizing::new(bytes.as_slice().try_into().map_err(|_| {
                format!(
                    "the key is {} bytes; a data key is {KEY_BYTES} bytes ({} base64 characters)",
                    bytes.len(),
                    4 * KEY_BYTES.div_ceil(3)
                )
            })?);
        Ok(Self::from_bytes(&master))
    }

    /// A new random key and its text (base64), for `helpline keys generate` and key files.
    pub fn generate() -> (Self, Zeroizing<String>) {
        let master = Zeroizing::new(rand::random::<[u8; KEY_BYTES]>());
        (
            Self::from_bytes(&master),
            Zeroizing::new(STANDARD.encode(master.as_ref())),
        )
    }

    /// The key's id: 8 hex digits derived from it (naming it without revealing it).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn seal(&self, kind: Kind, plain: &str) -> String {
        let nonce_bytes = rand::random::<[u8; NONCE_BYTES]>();
        let nonce = XNonce::from(nonce_bytes);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: kind.context(),
        };
        // Encryption fails only for messages of gigabytes; a stored value never is one.
        let sealed = self.aead.encrypt(&nonce, payload).unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce_bytes);
        bytes.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{}:{}",
            self.id,
            URL_SAFE_NO_PAD.encode(&bytes)
        )
    }

    fn open(&self, kind: Kind, body: &str) -> Result<String, CryptoError> {
        let bad = |why| CryptoError::Unreadable {
            kind: kind.label(),
            why,
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(body.as_bytes())
            .map_err(|_| bad("not base64"))?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(bad("too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| bad("bad nonce"))?;
        let plain = self
            .aead
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: kind.context(),
                },
            )
            .map_err(|_| bad("authentication failed"))?;
        String::from_utf8(plain).map_err(|_| bad("not UTF-8"))
    }

    fn lookup(&self, kind: Kind, plain: &str) -> String {
        // HMAC takes a key of any length: this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.lookup.as_ref()) else {
            return String::new();
        };
        mac.update(kind.context());
        mac.update(&[0]);
        mac.update(plain.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// A value sealed for storage, with its lookup hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub value: String,
    pub hash: String,
}

/// The keys in force: the current one seals and hashes; every one opens.
pub struct Keyring {
    current: DataKey,
    old: Vec<DataKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field("old", &self.old.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// The current key and older ones still to be read (the current one, or a repeated
    /// one, among them is dropped).
    pub fn new(current: DataKey, old: Vec<DataKey>) -> Self {
        let mut seen = vec![current.id.clone()];
        let old = old
            .into_iter()
            .filter(|k| {
                let fresh = !seen.contains(&k.id);
                seen.push(k.id.clone());
                fresh
            })
            .collect();
        Self { current, old }
    }

    /// The same ring, reading `older` too (unless it is already in it).
    pub fn with_old(self, older: DataKey) -> Self {
        let Keyring { current, mut old } = self;
        old.push(older);
        Self::new(current, old)
    }

    /// A random key for the life of the process (an in-memory database).
    pub fn ephemeral() -> Self {
        Self::new(DataKey::generate().0, Vec::new())
    }

    /// The published development key (PostgreSQL in development and tests): no secret at all.
    pub fn development() -> Self {
        Self::new(development_key(), Vec::new())
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Every key's id, the current one first.
    pub fn ids(&self) -> Vec<&str> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .map(|k| k.id.as_str())
            .collect()
    }

    /// The ids of the older keys.
    pub fn old_ids(&self) -> Vec<&str> {
        self.old.iter().map(|k| k.id.as_str()).collect()
    }

    /// `plain` sealed under the current key (a new random nonce each time).
    pub fn seal(&self, kind: Kind, plain: &str) -> String {
        self.current.seal(kind, plain)
    }

    /// A stored value in plain text: opened with the key its id names, or returned as it is
    /// when it was never sealed (legacy plaintext, without the `v1:` prefix).
    pub fn open(&self, kind: Kind, stored: &str) -> Result<String, CryptoError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let Some((id, body)) = rest.split_once(':') else {
            return Err(CryptoError::Unreadable {
                kind: kind.label(),
                why: "no key id",
            });
        };
        let key = std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey {
                kind: kind.label(),
                id: id.chars().take(8).collect(),
            })?;
        key.open(kind, body)
    }

    /// [`Keyring::open`] for a column that may be NULL.
    pub fn open_opt(
        &self,
        kind: Kind,
        stored: Option<&str>,
    ) -> Result<Option<String>, CryptoError> {
        stored.map(|s| self.open(kind, s)).transpose()
    }

    /// The lookup hash of `plain` under the current key (what is stored beside a sealed value).
    pub fn lookup(&self, kind: Kind, plain: &str) -> String {
        self.current.lookup(kind, plain)
    }

    /// The lookup hashes of `plain` under every key, the current one first: a search finds
    /// rows hashed under an older key that `helpline rekey` has not reached yet.
    pub fn lookups(&self, kind: Kind, plain: &str) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .map(|k| k.lookup(kind, plain))
            .collect()
    }

    /// `plain` sealed, with its lookup hash.
    pub fn seal_indexed(&self, kind: Kind, plain: &str) -> Sealed {
        Sealed {
            value: self.seal(kind, plain),
            hash: self.lookup(kind, plain),
        }
    }

    /// For a column that may be NULL (`calls.caller`): the sealed value and its hash.
    pub fn seal_indexed_opt(
        &self,
        kind: Kind,
        plain: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        match plain {
            Some(p) => {
                let s = self.seal_indexed(kind, p);
                (Some(s.value), Some(s.hash))
            }
            None => (None, None),
        }
    }

    /// The start every value sealed under the current key has (`v1:<id>:`).
    pub fn current_head(&self) -> String {
        format!("{SEALED_PREFIX}{}:", self.current.id)
    }

    /// Whether a stored value is sealed under the current key.
    pub fn is_current(&self, stored: &str) -> bool {
        stored.len() > SEALED_HEAD_LEN && stored.starts_with(&self.current_head())
    }

    /// Whether the key an id names is in the ring.
    pub fn knows(&self, id: &str) -> bool {
        self.ids().contains(&id)
    }
}

/// The key id a stored value names (`None`: not sealed).
pub fn key_id_of(stored: &str) -> Option<&str> {
    stored
        .strip_prefix(SEALED_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .map(|(id, _)| id)
}

/// The published development key's text: used where no key is configured on PostgreSQL in
/// development (`serve --insecure-dev`, `simulate`, `dev seed`) and by the tests. It protects
/// nothing; its id is reported so that data sealed under it can be found and rekeyed.
pub fn development_key_text() -> String {
    use sha2::Digest;
    STANDARD.encode(Sha256::digest(
        b"helpline development data key: published, protects nothing, never for real callers",
    ))
}

fn development_key() -> DataKey {
    // The text is made above: it always parses.
    DataKey::parse(&development_key_text()).unwrap_or_else(|_| DataKey::generate().0)
}

/// The key in a key file (see [`DataKey::parse`]); warns when others may read the file.
pub fn read_key_file(path: &Path, place: &str) -> Result<DataKey, CryptoError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        setting_error(
            place,
            format!("cannot read the data key file {}: {e}", path.display()),
            "check the path and that the service's user may read it",
        )
    })?);
    warn_if_readable_by_others(path);
    DataKey::parse(&text)
        .map_err(|m| setting_error(place, format!("{}: {m}", path.display()), KEY_FIX))
}

/// Makes a key file holding a new random key, readable by its owner only (0600), unless
/// one appeared meanwhile (then that one is read). Returns the key and whether it is new.
pub fn create_key_file(path: &Path, place: &str) -> Result<(DataKey, bool), CryptoError> {
    let fail = |e: std::io::Error| {
        setting_error(
            place,
            format!("cannot write the data key file {}: {e}", path.display()),
            format!(
                "make the database's directory writable by the service, or {}",
                KEY_FIX
            ),
        )
    };
    let (key, text) = DataKey::generate();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        DEFAULT_KEY_FILE,
        uuid::Uuid::new_v4().simple()
    ));
    let contents = Zeroizing::new(format!(
        "# helpline's data key: it encrypts callers' numbers and recording references at rest.\n\
         # Keep a copy apart from the database's backups: without it they cannot be read.\n\
         # docs/SECURITY.md, \"Data keys\", says how to move to a new one.\n{}\n",
        text.as_str()
    ));
    write_private(&tmp, contents.as_bytes()).map_err(fail)?;
    // A hard link never replaces an existing file: two processes starting at once agree on
    // whichever key was linked first.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok((key, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key_file(path, place).map(|k| (k, false))
        }
        Err(e) => Err(fail(e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %path.display(),
                    "the data key file may be read by other users: chmod 600 it");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(DataKey::generate().0, Vec::new())
    }

    #[test]
    fn seal_then_open_gives_the_value_back_and_never_shows_it() {
        let keys = ring();
        let number = "+447700900123";
        let sealed = keys.seal(Kind::PhoneNumber, number);
        assert!(sealed.starts_with(&keys.current_head()), "{sealed}");
        assert!(!sealed.contains("7700900123"));
        assert_eq!(keys.open(Kind::PhoneNumber, &sealed).unwrap(), number);
        assert_ne!(
            sealed,
            keys.seal(Kind::PhoneNumber, number),
            "a new nonce every time"
        );
        assert!(keys.is_current(&sealed));
        assert_eq!(key_id_of(&sealed), Some(keys.current_id()));
        let empty = keys.seal(Kind::Recording, "");
        assert_eq!(keys.open(Kind::Recording, &empty).unwrap(), "");
    }

    #[test]
    fn a_flipped_byte_anywhere_in_the_sealed_part_fails() {
        let keys = ring();
        let sealed = keys.seal(
            Kind::Recording,
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        );
        let bytes = sealed.as_bytes();
        for i in SEALED_HEAD_LEN..bytes.len() {
            let mut tampered = bytes.to_vec();
            // Another base64url character, so only authentication can tell.
            tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert!(
                keys.open(Kind::Recording, &tampered).is_err(),
                "byte {i} flipped still opened"
            );
        }
        // The raw bytes too: every bit of nonce, ciphertext and tag counts.
        let body = URL_SAFE_NO_PAD.decode(&sealed[SEALED_HEAD_LEN..]).unwrap();
        for i in 0..body.len() {
            let mut flipped = body.clone();
            flipped[i] ^= 0x01;
            let text = format!(
                "{}{}",
                keys.current_head(),
                URL_SAFE_NO_PAD.encode(&flipped)
            );
            let e = keys.open(Kind::Recording, &text).unwrap_err();
            assert!(matches!(e, CryptoError::Unreadable { .. }), "{e}");
        }
        // A truncated value, a sealed number read as a recording, a key id changed.
        assert!(keys
            .open(Kind::Recording, &sealed[..sealed.len() - 4])
            .is_err());
        assert!(keys.open(Kind::PhoneNumber, &sealed).is_err());
        let other_id = sealed.replacen(keys.current_id(), "00000000", 1);
        assert!(matches!(
            keys.open(Kind::Recording, &other_id),
            Err(CryptoError::UnknownKey { .. })
        ));
    }

    #[test]
    fn errors_never_carry_the_value() {
        let keys = ring();
        let sealed = keys.seal(Kind::PhoneNumber, "+447700900123");
        let other = ring();
        let e = other.open(Kind::PhoneNumber, &sealed).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(shown.contains(keys.current_id()), "{shown}");
        assert!(!shown.contains("7700900123") && !shown.contains(&sealed[SEALED_HEAD_LEN..]));
        assert!(!format!("{keys:?}").contains("lookup"));
    }

    #[test]
    fn legacy_plaintext_is_read_as_it_is() {
        let keys = ring();
        assert_eq!(
            keys.open(Kind::PhoneNumber, "+447700900123").unwrap(),
            "+447700900123"
        );
        assert_eq!(
            keys.open(Kind::PhoneNumber, "anonymous").unwrap(),
            "anonymous"
        );
        assert!(!keys.is_current("+447700900123"));
        assert_eq!(key_id_of("+447700900123"), None);
        assert_eq!(keys.open_opt(Kind::Recording, None).unwrap(), None);
    }

    #[test]
    fn rotation_old_keys_open_the_current_one_seals_and_lookups_cover_both() {
        let (old, old_text) = DataKey::generate();
        let old_id = old.id().to_string();
        let before = Keyring::new(old, Vec::new());
        let sealed_before = before.seal(Kind::PhoneNumber, "+447700900123");
        let hash_before = before.lookup(Kind::PhoneNumber, "+447700900123");

        let (new, _) = DataKey::generate();
        let after = Keyring::new(new, vec![DataKey::parse(&old_text).unwrap()]);
        assert_eq!(after.old_ids(), vec![old_id.as_str()]);
        assert_eq!(
            after.open(Kind::PhoneNumber, &sealed_before).unwrap(),
            "+447700900123"
        );
        assert!(!after.is_current(&sealed_before));
        let resealed = after.seal(Kind::PhoneNumber, "+447700900123");
        assert!(after.is_current(&resealed));
        assert!(
            before.open(Kind::PhoneNumber, &resealed).is_err(),
            "the old key cannot read what the new one sealed"
        );
        let hashes = after.lookups(Kind::PhoneNumber, "+447700900123");
        assert_eq!(hashes.len(), 2);
        assert_eq!(hashes[0], after.lookup(Kind::PhoneNumber, "+447700900123"));
        assert_eq!(hashes[1], hash_before);
        assert_ne!(hashes[0], hashes[1]);
        // Without the old key, its values are named as such.
        let lost = Keyring::new(DataKey::generate().0, Vec::new());
        let e = lost.open(Kind::PhoneNumber, &sealed_before).unwrap_err();
        assert!(
            matches!(&e, CryptoError::UnknownKey { id, .. } if *id == old_id),
            "{e}"
        );
        // A repeated key is kept once.
        let (k, text) = DataKey::generate();
        let ring = Keyring::new(k, vec![DataKey::parse(&text).unwrap()]);
        assert!(ring.old_ids().is_empty());
    }

    #[test]
    fn lookups_are_keyed_deterministic_and_separate_by_kind() {
        let keys = ring();
        let a = keys.lookup(Kind::PhoneNumber, "+447700900123");
        assert_eq!(a, keys.lookup(Kind::PhoneNumber, "+447700900123"));
        assert_ne!(a, keys.lookup(Kind::PhoneNumber, "+447700900124"));
        assert_ne!(a, keys.lookup(Kind::Recording, "+447700900123"));
        assert_ne!(a, ring().lookup(Kind::PhoneNumber, "+447700900123"));
        assert!(!a.contains("7700900123"));
        let s = keys.seal_indexed(Kind::PhoneNumber, "+447700900123");
        assert_eq!(s.hash, a);
    }

    #[test]
    fn keys_parse_from_base64_and_bad_ones_say_why() {
        let (key, text) = DataKey::generate();
        let parsed = DataKey::parse(&format!("# a comment\n{}\n", text.as_str())).unwrap();
        assert_eq!(parsed.id(), key.id());
        let url_safe = URL_SAFE_NO_PAD.encode(STANDARD.decode(text.as_str()).unwrap());
        assert_eq!(DataKey::parse(&url_safe).unwrap().id(), key.id());
        assert!(DataKey::parse("").unwrap_err().contains("empty"));
        assert!(DataKey::parse("not base64!!")
            .unwrap_err()
            .contains("not base64"));
        let short = STANDARD.encode([7u8; 16]);
        let e = DataKey::parse(&short).unwrap_err();
        assert!(e.contains("16 bytes") && e.contains("32 bytes"), "{e}");
        assert!(!e.contains(&short));
        assert_eq!(key.id().len(), 8);
        assert!(key.id().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            Keyring::development().current_id(),
            DataKey::parse(&development_key_text()).unwrap().id()
        );
    }

    #[test]
    fn a_key_file_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_KEY_FILE);
        let (made, new) = create_key_file(&path, "key file").unwrap();
        assert!(new);
        let (again, new) = create_key_file(&path, "key file").unwrap();
        assert!(!new, "an existing file is never replaced");
        assert_eq!(made.id(), again.id());
        assert_eq!(read_key_file(&path, "key file").unwrap().id(), made.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        std::fs::write(&path, "short").unwrap();
        let e = read_key_file(&path, "HELPLINE_DATA_KEY_FILE").unwrap_err();
        assert!(e.to_string().starts_with("HELPLINE_DATA_KEY_FILE: "), "{e}");
        assert!(e.to_string().contains("helpline keys generate"), "{e}");
    }
}
