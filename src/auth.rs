//! Authenticated meshes: the keyring, the signed envelope of every native message,
//! the modes, and the counters of what was refused (`docs/PROTOCOL.md` §
//! Authentication; design in `AUTHENTICATION.md` of the design notes).
//!
//! The primitive is HMAC-SHA256 with the tag cut to 16 bytes (RustCrypto `hmac` +
//! `sha2`). A [`Keyring`] holds 32-byte keys: the first (the primary) signs, every
//! one verifies, so a key is rolled in without downtime. A message carries the
//! 4-byte key id of the key that signed it; the tag covers a domain string, the
//! message's [`Role`] (which socket it belongs on), the mesh label and every byte
//! before the tag, so a message is not accepted on another socket or in another
//! mesh. What replay rules each message follows (echoed surveys, publication
//! counters, snapshot nonces) is the business of the server, client and
//! subscriber; this module only signs, verifies and counts.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::net::Every;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of the tag a signed message ends with.
pub const TAG_LEN: usize = 16;
/// Bytes a signed message carries after its body: key id (4) and tag.
pub const TRAILER_LEN: usize = 4 + TAG_LEN;
/// Suite byte of an unsigned message.
pub const SUITE_NONE: u8 = 0;
/// Suite byte of a message signed with HMAC-SHA256, tag cut to 16 bytes.
pub const SUITE_HMAC_SHA256: u8 = 1;
/// Longest mesh label, in bytes.
pub const MAX_LABEL: usize = 255;
/// Most keys in a keyring.
pub const MAX_KEYS: usize = 64;
/// First input of every tag: the protocol and what is signed.
const DOMAIN: &[u8] = b"gopherdiscovery v3 message";
/// The MAC key is HMAC-SHA256(key, this): never the raw key.
const MAC_KEY_LABEL: &[u8] = b"gopherdiscovery mac key";
/// The key id is the first 4 bytes of HMAC-SHA256(key, this).
const KEY_ID_LABEL: &[u8] = b"gopherdiscovery key id";
/// A warning per drop reason at most this often.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// The id of a key: 4 bytes derived from it, shown as 8 hex digits. Names a key
/// in messages, logs and metrics without revealing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length: new_from_slice cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// One key of a keyring: only what is derived from it is kept (the MAC key and
/// the id); the MAC key is zeroed when dropped.
struct Key {
    id: KeyId,
    mac: Zeroizing<[u8; 32]>,
    /// Messages verified with this key (the rotation's "is the old key still
    /// used?" counter).
    verified: AtomicU64,
}

impl Key {
    fn new(raw: &[u8]) -> Result<Key> {
        if raw.len() != KEY_LEN {
            return Err(Error::option(
                "keyring",
                format!("a key must be {KEY_LEN} bytes, not {}", raw.len()),
            ));
        }
        let id = hmac(raw, &[KEY_ID_LABEL]);
        Ok(Key {
            id: KeyId(u32::from_be_bytes([id[0], id[1], id[2], id[3]])),
            mac: Zeroizing::new(hmac(raw, &[MAC_KEY_LABEL])),
            verified: AtomicU64::new(0),
        })
    }

    fn mac(&self) -> HmacSha256 {
        // Any key length is valid for HMAC.
        <HmacSha256 as Mac>::new_from_slice(&self.mac[..]).unwrap_or_else(|_| unreachable!())
    }
}

/// The cluster's keys: the first (the primary) signs, every one verifies.
///
/// Cheap to clone (shared). Never prints a key: `Debug` shows key ids only. The
/// raw keys are not kept; what is derived from them is zeroed when the last clone
/// is dropped.
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<[Key]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

impl Keyring {
    /// A keyring of 32-byte keys, primary first. Refuses an empty list, a key of
    /// another length, a key given twice and more than [`MAX_KEYS`] keys.
    pub fn new<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> Result<Keyring> {
        let mut out: Vec<Key> = Vec::new();
        for (i, k) in keys.into_iter().enumerate() {
            let key = Key::new(k.as_ref()).map_err(|e| match e {
                Error::InvalidOption { option, reason } => Error::InvalidOption {
                    option,
                    reason: format!("key {}: {reason}", i + 1),
                },
                e => e,
            })?;
            if out.iter().any(|o| o.id == key.id) {
                return Err(Error::option(
                    "keyring",
                    format!("key {} (id {}) is given twice", i + 1, key.id),
                ));
            }
            out.push(key);
            if out.len() > MAX_KEYS {
                return Err(Error::option(
                    "keyring",
                    format!("more than {MAX_KEYS} keys"),
                ));
            }
        }
        if out.is_empty() {
            return Err(Error::option("keyring", "no key"));
        }
        Ok(Keyring { keys: out.into() })
    }

    /// Parses a keyring file's text: one base64 key per line, the first the
    /// primary; blank lines and lines starting with `#` are skipped. Errors name
    /// the line, never its content.
    pub fn parse(text: &str) -> Result<Keyring> {
        let mut keys: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = base64::engine::general_purpose::STANDARD
                .decode(line)
                .map_err(|_| {
                    Error::option("keyring", format!("line {}: not a base64 key", n + 1))
                })?;
            let key = Zeroizing::new(key);
            if key.len() != KEY_LEN {
                return Err(Error::option(
                    "keyring",
                    format!(
                        "line {}: a key must be {KEY_LEN} bytes, this one is {}",
                        n + 1,
                        key.len()
                    ),
                ));
            }
            keys.push(key);
        }
        Keyring::new(keys.iter().map(|k| &k[..]))
    }

    /// Reads and parses a keyring file (see [`Keyring::parse`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Keyring> {
        let path = path.as_ref();
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::option(
                "keyring_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?);
        Keyring::parse(&text).map_err(|e| match e {
            Error::InvalidOption { reason, .. } => Error::InvalidOption {
                option: "keyring_file",
                reason: format!("{}: {reason}", path.display()),
            },
            e => e,
        })
    }

    /// One base64 key (the `GOPHERDISCOVERY_KEY` form).
    pub fn from_base64(key: &str) -> Result<Keyring> {
        Keyring::parse(key)
    }

    /// A new random key from the operating system, base64 (what `gopherdiscovery
    /// keygen` prints).
    pub fn generate() -> Result<String> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        os_random(&mut key[..])?;
        Ok(base64::engine::general_purpose::STANDARD.encode(&key[..]))
    }

    /// The id of a raw 32-byte key.
    pub fn key_id_of(key: &[u8]) -> Result<KeyId> {
        Ok(Key::new(key)?.id)
    }

    /// The key ids, primary first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// The id of the key that signs.
    pub fn primary(&self) -> KeyId {
        self.keys[0].id
    }

    /// Per key id, the messages verified with it so far (primary first).
    pub fn verified(&self) -> Vec<(KeyId, u64)> {
        self.keys
            .iter()
            .map(|k| (k.id, k.verified.load(Relaxed)))
            .collect()
    }

    /// Carries the verified counts of keys also in `old` over (a reload keeps them).
    fn carry_counts(&self, old: &Keyring) {
        for k in self.keys.iter() {
            if let Some(o) = old.keys.iter().find(|o| o.id == k.id) {
                k.verified.store(o.verified.load(Relaxed), Relaxed);
            }
        }
    }

    fn get(&self, id: KeyId) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(Error::Io)
}

/// A random u64 for nonces (from the operating system).
pub(crate) fn nonce() -> u64 {
    let mut b = [0u8; 8];
    match os_random(&mut b) {
        Ok(()) => u64::from_ne_bytes(b),
        Err(_) => crate::member::random_u64(),
    }
}

/// What is done with signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Nothing is signed or checked (no keyring).
    #[default]
    Off,
    /// Everything sent is signed; signed input must verify; unsigned input
    /// (legacy members, peers without a key) is accepted and counted
    /// (`unsigned_accepted`). For rolling a key into a live mesh.
    Permissive,
    /// Everything sent is signed; only input that verifies is accepted.
    Required,
}

impl AuthMode {
    /// `off`, `permissive` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Off => "off",
            AuthMode::Permissive => "permissive",
            AuthMode::Required => "required",
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<AuthMode> {
        match s {
            "off" => Ok(AuthMode::Off),
            "permissive" => Ok(AuthMode::Permissive),
            "required" => Ok(AuthMode::Required),
            other => Err(Error::option(
                "auth",
                format!("{other:?}: must be off, permissive or required"),
            )),
        }
    }
}

/// Which socket a message belongs on; part of what the tag covers, so a message
/// signed for one socket is refused on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Server → member survey.
    Survey = 1,
    /// Member → server answer or announce.
    Answer = 2,
    /// Server → subscriber delta or heartbeat.
    Publication = 3,
    /// Subscriber → server snapshot request.
    SnapshotRequest = 4,
    /// Server → subscriber snapshot.
    Snapshot = 5,
}

/// Authentication settings: the keyring, the mode, the mesh label. Every builder
/// takes them; [`Auth::off`] is the default.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    keyring: Option<Keyring>,
    /// None: `required` with a keyring, `off` without.
    mode: Option<AuthMode>,
    label: String,
}

/// Why a message was refused by [`Auth::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The tag does not match (wrong key with a colliding id, altered bytes,
    /// another role or mesh label).
    BadMac,
    /// Signed with a key that is not in the keyring.
    UnknownKey(KeyId),
    /// Not signed (or a legacy raw string) while auth is `required`.
    Unsigned,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownKey(id) => write!(f, "signed with unknown key id {id}"),
            Refusal::BadMac => write!(f, "the tag does not verify"),
            Refusal::Unsigned => write!(f, "not signed"),
        }
    }
}

impl Refusal {
    /// The drop reason: `bad_mac`, `unknown_key` or `unsigned`.
    pub fn reason(self) -> Reason {
        match self {
            Refusal::BadMac => Reason::BadMac,
            Refusal::UnknownKey(_) => Reason::UnknownKey,
            Refusal::Unsigned => Reason::Unsigned,
        }
    }
}

/// What [`Auth::check`] found in a message it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Signed, and the tag verified with this key.
    Signed(KeyId),
    /// Not signed (or a legacy raw string), accepted: auth is `off` or `permissive`.
    Unsigned,
    /// Auth is `off`: not verified (signed or not).
    Unchecked,
}

impl Auth {
    /// No keyring: nothing signed or checked.
    pub fn off() -> Auth {
        Auth::default()
    }

    /// Sign and verify with `keyring` (mode `required` unless set otherwise).
    pub fn with_keyring(keyring: Keyring) -> Auth {
        Auth {
            keyring: Some(keyring),
            ..Auth::default()
        }
    }

    /// Sets or clears the keyring.
    pub fn keyring(mut self, keyring: Option<Keyring>) -> Auth {
        self.keyring = keyring;
        self
    }

    /// Sets the mode (default: `required` with a keyring, `off` without).
    pub fn mode(mut self, mode: AuthMode) -> Auth {
        self.mode = Some(mode);
        self
    }

    /// Sets the mesh label (default empty): covered by every tag, so two meshes
    /// that share a key by mistake refuse each other's messages.
    pub fn mesh_label(mut self, label: impl Into<String>) -> Auth {
        self.label = label.into();
        self
    }

    /// The mode in force.
    pub fn effective_mode(&self) -> AuthMode {
        self.mode.unwrap_or(if self.keyring.is_some() {
            AuthMode::Required
        } else {
            AuthMode::Off
        })
    }

    /// The keyring, if any.
    pub fn get_keyring(&self) -> Option<&Keyring> {
        self.keyring.as_ref()
    }

    /// The mesh label.
    pub fn get_mesh_label(&self) -> &str {
        &self.label
    }

    /// Checks the settings; the error names the option.
    pub fn validate(&self) -> Result<()> {
        if self.keyring.is_none() && self.effective_mode() != AuthMode::Off {
            return Err(Error::option(
                "auth",
                format!(
                    "{} needs a keyring (give a key, or use auth off)",
                    self.effective_mode()
                ),
            ));
        }
        if self.label.len() > MAX_LABEL {
            return Err(Error::option(
                "mesh_label",
                format!("longer than {MAX_LABEL} bytes"),
            ));
        }
        if crate::wire::has_control(&self.label) {
            return Err(Error::option("mesh_label", "has a control character"));
        }
        Ok(())
    }

    /// True when what is sent is signed.
    pub fn signs(&self) -> bool {
        self.keyring.is_some() && self.effective_mode() != AuthMode::Off
    }

    fn tag(&self, key: &Key, role: Role, signed: &[u8]) -> HmacSha256 {
        let mut m = key.mac();
        m.update(DOMAIN);
        m.update(&[role as u8]);
        m.update(&(self.label.len() as u16).to_be_bytes());
        m.update(self.label.as_bytes());
        m.update(signed);
        m
    }

    /// Signs a native message built by `wire::encode_*` (suite byte 0) for
    /// `role`: sets the suite byte and appends the primary's key id and the tag.
    /// Returns it unchanged when nothing is signed.
    pub fn seal(&self, role: Role, mut msg: Vec<u8>) -> Vec<u8> {
        let Some(ring) = self.keyring.as_ref().filter(|_| self.signs()) else {
            return msg;
        };
        if msg.len() < crate::wire::HEADER_LEN {
            return msg;
        }
        let key = &ring.keys[0];
        msg[3] = SUITE_HMAC_SHA256;
        msg.extend_from_slice(&key.id.0.to_be_bytes());
        let tag = self.tag(key, role, &msg).finalize().into_bytes();
        msg.extend_from_slice(&tag[..TAG_LEN]);
        msg
    }

    /// Checks a received message for `role` by the mode: a signed native message
    /// must verify (whatever the mode but `off`); an unsigned one, or a legacy raw
    /// string, is refused under `required`. Malformed envelopes (a signed message
    /// too short for its trailer) are refused as `bad_mac`. Does not decode the
    /// body (`wire::decode` does, after).
    pub fn check(&self, role: Role, bytes: &[u8]) -> Result<Checked, Refusal> {
        let mode = self.effective_mode();
        if mode == AuthMode::Off {
            return Ok(Checked::Unchecked);
        }
        let signed =
            crate::wire::is_native(bytes) && bytes.get(3).copied() == Some(SUITE_HMAC_SHA256);
        if !signed {
            return match mode {
                AuthMode::Required => Err(Refusal::Unsigned),
                _ => Ok(Checked::Unsigned),
            };
        }
        let Some(ring) = self.keyring.as_ref() else {
            return Ok(Checked::Unchecked);
        };
        if bytes.len() < crate::wire::HEADER_LEN + TRAILER_LEN {
            return Err(Refusal::BadMac);
        }
        let (signed_part, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let id_at = signed_part.len() - 4;
        let id = KeyId(u32::from_be_bytes([
            signed_part[id_at],
            signed_part[id_at + 1],
            signed_part[id_at + 2],
            signed_part[id_at + 3],
        ]));
        let Some(key) = ring.get(id) else {
            return Err(Refusal::UnknownKey(id));
        };
        // Constant-time comparison of the first 16 bytes of the tag.
        self.tag(key, role, signed_part)
            .verify_truncated_left(tag)
            .map_err(|_| Refusal::BadMac)?;
        key.verified.fetch_add(1, Relaxed);
        Ok(Checked::Signed(id))
    }
}

/// A reloadable [`Auth`]: the server, client and subscriber read it per message;
/// `set_keyring` swaps the keyring (SIGHUP in the CLI) without a restart.
pub(crate) struct AuthCell(RwLock<Arc<Auth>>);

impl AuthCell {
    pub(crate) fn new(auth: Auth) -> AuthCell {
        AuthCell(RwLock::new(Arc::new(auth)))
    }

    pub(crate) fn get(&self) -> Arc<Auth> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the keyring (the mode and label stay). Refuses to remove the
    /// keyring of a signing handle or to add one to an `off` handle.
    pub(crate) fn set_keyring(&self, keyring: Keyring) -> Result<()> {
        let mut w = self.0.write().unwrap_or_else(|p| p.into_inner());
        let Some(old) = w.keyring.as_ref() else {
            return Err(Error::option(
                "keyring",
                "this handle was started without a keyring (auth off): restart it with one",
            ));
        };
        keyring.carry_counts(old);
        let mut next = (**w).clone();
        next.keyring = Some(keyring);
        *w = Arc::new(next);
        Ok(())
    }
}

/// Why an authenticated message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The tag did not verify.
    BadMac,
    /// Signed with a key id not in the keyring.
    UnknownKey,
    /// Not signed while auth is `required`.
    Unsigned,
    /// A publication counter not above the last one of its epoch, or a snapshot
    /// that does not echo the outstanding nonce.
    Replayed,
    /// An answer echoing a survey this server did not send in the last 2
    /// intervals (or of another epoch).
    StaleSurvey,
    /// An answer echoing a survey that went to another connection.
    WrongConnection,
}

impl Reason {
    /// Every reason, in the order of [`AuthStats::reasons`].
    pub const ALL: [Reason; 6] = [
        Reason::BadMac,
        Reason::UnknownKey,
        Reason::Unsigned,
        Reason::Replayed,
        Reason::StaleSurvey,
        Reason::WrongConnection,
    ];

    /// `bad_mac`, `unknown_key`, `unsigned`, `replayed`, `stale_survey`,
    /// `wrong_connection`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadMac => "bad_mac",
            Reason::UnknownKey => "unknown_key",
            Reason::Unsigned => "unsigned",
            Reason::Replayed => "replayed",
            Reason::StaleSurvey => "stale_survey",
            Reason::WrongConnection => "wrong_connection",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Reason::BadMac => " — is the mesh label the same everywhere?",
            Reason::UnknownKey => " — is the keyring current?",
            Reason::Unsigned => {
                " — peers without a key, or legacy ones (auth permissive accepts them)"
            }
            Reason::Replayed => " — replayed or duplicated messages",
            Reason::StaleSurvey | Reason::WrongConnection => " — replayed answers",
        }
    }
}

/// Messages dropped by authentication, by reason, and unsigned input accepted
/// under `permissive`. The same in [`ServerStats`](crate::ServerStats),
/// [`SubscriberStats`](crate::SubscriberStats) and [`ClientStats`](crate::ClientStats).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuthStats {
    /// Dropped: the tag did not verify.
    pub bad_mac: u64,
    /// Dropped: signed with a key id not in the keyring.
    pub unknown_key: u64,
    /// Dropped: not signed while auth is `required`.
    pub unsigned: u64,
    /// Dropped: a publication counter not above the last, or a snapshot not
    /// echoing the outstanding nonce.
    pub replayed: u64,
    /// Dropped: an answer echoing a survey not sent in the last 2 intervals.
    pub stale_survey: u64,
    /// Dropped: an answer echoing a survey sent to another connection.
    pub wrong_connection: u64,
    /// Accepted: unsigned input under `permissive` (when it stops rising, the
    /// mesh can move to `required`).
    pub unsigned_accepted: u64,
}

impl AuthStats {
    /// `(reason, dropped)` for every reason, in [`Reason::ALL`]'s order.
    pub fn reasons(&self) -> [(&'static str, u64); 6] {
        [
            ("bad_mac", self.bad_mac),
            ("unknown_key", self.unknown_key),
            ("unsigned", self.unsigned),
            ("replayed", self.replayed),
            ("stale_survey", self.stale_survey),
            ("wrong_connection", self.wrong_connection),
        ]
    }
}

/// The live counters behind [`AuthStats`], with the once-a-minute warning per
/// reason.
pub(crate) struct AuthCounters {
    /// Messages dropped, by reason (in [`Reason::ALL`]'s order).
    dropped: [AtomicU64; 6],
    /// Unsigned input taken under `permissive`.
    unsigned_accepted: AtomicU64,
    /// One warning per reason per [`WARN_EVERY`].
    warn: [Every; 6],
    /// Drops per reason when the last warning went out.
    warned: [AtomicU64; 6],
}

impl Default for AuthCounters {
    fn default() -> Self {
        AuthCounters {
            dropped: Default::default(),
            unsigned_accepted: AtomicU64::new(0),
            warn: std::array::from_fn(|_| Every::new(WARN_EVERY)),
            warned: Default::default(),
        }
    }
}

fn index(r: Reason) -> usize {
    Reason::ALL.iter().position(|x| *x == r).unwrap_or(0)
}

impl AuthCounters {
    /// Counts one dropped message, logs it at debug, and at most once a minute
    /// per reason a warning with the count since the last one.
    pub(crate) fn dropped(&self, reason: Reason, what: &str, detail: &dyn fmt::Display) {
        let i = index(reason);
        let total = self.dropped[i].fetch_add(1, Relaxed) + 1;
        log::debug!("dropped {what} ({}): {detail}", reason.as_str());
        if self.warn[i].due().is_some() {
            let before = self.warned[i].swap(total, Relaxed);
            log::warn!(
                "{} {what} dropped ({}) since the last warning, the last: {detail}{}",
                total - before,
                reason.as_str(),
                reason.hint()
            );
        }
    }

    /// Counts a refusal of [`Auth::check`].
    pub(crate) fn refused(&self, r: Refusal, what: &str) {
        self.dropped(r.reason(), what, &r)
    }

    /// Counts the outcome of a check: unsigned input accepted is counted too.
    pub(crate) fn note(&self, c: &Checked) {
        if *c == Checked::Unsigned {
            self.unsigned_accepted.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn count(&self, r: Reason) -> u64 {
        self.dropped[index(r)].load(Relaxed)
    }

    pub(crate) fn stats(&self) -> AuthStats {
        let d = |r| self.count(r);
        AuthStats {
            bad_mac: d(Reason::BadMac),
            unknown_key: d(Reason::UnknownKey),
            unsigned: d(Reason::Unsigned),
            replayed: d(Reason::Replayed),
            stale_survey: d(Reason::StaleSurvey),
            wrong_connection: d(Reason::WrongConnection),
            unsigned_accepted: self.unsigned_accepted.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed test key of docs/PROTOCOL.md: bytes 0x00..0x1f.
    pub(crate) fn test_key() -> Vec<u8> {
        (0u8..32).collect()
    }

    fn msg() -> Vec<u8> {
        crate::wire::encode_survey(7, 42)
    }

    #[test]
    fn seal_then_check_round_trips_and_binds_role_label_and_bytes() {
        let ring = Keyring::new([test_key()]).unwrap();
        let a = Auth::with_keyring(ring.clone());
        let sealed = a.seal(Role::Survey, msg());
        assert_eq!(sealed.len(), msg().len() + TRAILER_LEN);
        assert_eq!(
            a.check(Role::Survey, &sealed),
            Ok(Checked::Signed(ring.primary()))
        );
        assert_eq!(a.check(Role::Answer, &sealed), Err(Refusal::BadMac));
        let other = a.clone().mesh_label("prod");
        assert_eq!(other.check(Role::Survey, &sealed), Err(Refusal::BadMac));
        let mut flipped = sealed.clone();
        flipped[6] ^= 1;
        assert_eq!(a.check(Role::Survey, &flipped), Err(Refusal::BadMac));
        let b = Auth::with_keyring(Keyring::new([[9u8; 32]]).unwrap());
        assert!(matches!(
            b.check(Role::Survey, &sealed),
            Err(Refusal::UnknownKey(_))
        ));
        assert_eq!(a.check(Role::Survey, &msg()), Err(Refusal::Unsigned));
        assert_eq!(a.check(Role::Survey, b"legacy"), Err(Refusal::Unsigned));
        let p = a.clone().mode(AuthMode::Permissive);
        assert_eq!(p.check(Role::Survey, &msg()), Ok(Checked::Unsigned));
        assert_eq!(p.check(Role::Answer, &sealed), Err(Refusal::BadMac));
        assert_eq!(
            Auth::off().check(Role::Survey, &sealed),
            Ok(Checked::Unchecked)
        );
        assert_eq!(Auth::off().seal(Role::Survey, msg()), msg());
        assert_eq!(ring.verified()[0].1, 1);
    }

    #[test]
    fn rotation_secondary_verifies_primary_signs() {
        let (k1, k2) = (test_key(), vec![0xAB; 32]);
        let old = Auth::with_keyring(Keyring::new([&k1]).unwrap());
        let both = Auth::with_keyring(Keyring::new([&k1, &k2]).unwrap());
        let next = Auth::with_keyring(Keyring::new([&k2, &k1]).unwrap());
        let only_new = Auth::with_keyring(Keyring::new([&k2]).unwrap());
        for (signer, verifier) in [
            (&old, &both),
            (&both, &old),
            (&next, &both),
            (&both, &next),
            (&next, &only_new),
        ] {
            let s = signer.seal(Role::Answer, msg());
            assert!(verifier.check(Role::Answer, &s).is_ok());
        }
        assert!(matches!(
            only_new.check(Role::Answer, &old.seal(Role::Answer, msg())),
            Err(Refusal::UnknownKey(_))
        ));
    }

    #[test]
    fn keyring_files_parse_with_clear_errors_and_debug_shows_no_key() {
        let k = base64::engine::general_purpose::STANDARD.encode(test_key());
        let ring = Keyring::parse(&format!("# primary\n{k}\n\n")).unwrap();
        assert_eq!(ring.key_ids().len(), 1);
        assert_eq!(format!("{}", ring.primary()).len(), 8);
        assert!(!format!("{ring:?}").contains(&k));
        let e = Keyring::parse("# nothing\n").unwrap_err().to_string();
        assert!(e.contains("no key"), "{e}");
        let e = Keyring::parse("not base64!\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("base64"), "{e}");
        let e = Keyring::parse("AAAA\n").unwrap_err().to_string();
        assert!(e.contains("32 bytes"), "{e}");
        let e = Keyring::parse(&format!("{k}\n{k}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
        let g = Keyring::generate().unwrap();
        assert_ne!(g, Keyring::generate().unwrap());
        assert!(Keyring::from_base64(&g).is_ok());
        assert!(Auth::off().mode(AuthMode::Required).validate().is_err());
        assert_eq!(
            "permissive".parse::<AuthMode>().unwrap(),
            AuthMode::Permissive
        );
        assert!("on".parse::<AuthMode>().is_err());
    }
}
