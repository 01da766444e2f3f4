//! Members, the events that change a member set, and the limits every size obeys.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};

/// A member's metadata: string keys to string values, kept sorted so that every
/// encoding (and so every digest) of the same metadata is the same.
pub type Metadata = BTreeMap<String, String>;

/// One live service in the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    /// The service address or name, e.g. `http://10.0.0.1:8080`. Unique in a mesh.
    pub name: String,
    /// Key/value metadata (may be empty).
    pub metadata: Metadata,
    /// Per client start, so a restarted client is told apart from the old one, and
    /// ordered: `(unix_ms_at_start << 16) | random16` ([`new_incarnation`]), so the
    /// later start is the greater. Legacy members (raw-string answers) have 0.
    pub incarnation: u64,
    /// +1 per metadata change of this incarnation (0 at the start).
    pub generation: u32,
}

impl Member {
    /// A member with no metadata.
    pub fn new(name: impl Into<String>, incarnation: u64) -> Member {
        Member {
            name: name.into(),
            metadata: Metadata::new(),
            incarnation,
            generation: 0,
        }
    }

    /// What orders two records of one name: `(incarnation, generation)`, compared
    /// lexicographically (a later start wins; then a later metadata change).
    pub fn version(&self) -> (u64, u32) {
        (self.incarnation, self.generation)
    }
}

/// What happened to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// It entered the member set.
    Joined = 1,
    /// It left the member set.
    Left = 2,
    /// Its metadata changed.
    Updated = 3,
}

impl EventKind {
    /// The word used in JSON, C, Python and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Joined => "joined",
            EventKind::Left => "left",
            EventKind::Updated => "updated",
        }
    }

    pub(crate) fn from_u8(b: u8) -> Option<EventKind> {
        match b {
            1 => Some(EventKind::Joined),
            2 => Some(EventKind::Left),
            3 => Some(EventKind::Updated),
            _ => None,
        }
    }
}

/// Why it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    /// No particular reason: a plain join, a metadata update, or a difference found
    /// by a resync (the subscriber cannot know why).
    None = 0,
    /// Its connection closed (process exited or crashed).
    Closed = 1,
    /// It missed `evict_after` consecutive surveys (hung or partitioned).
    Timeout = 2,
    /// It answered with a new incarnation: the process restarted. A restart is
    /// published as `left(restarted)` of the old incarnation followed, in the same
    /// publication, by `joined(restarted)` of the new one.
    Restarted = 3,
}

impl Reason {
    /// The word used in JSON, C, Python and the docs; `None` for no reason.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Reason::None => None,
            Reason::Closed => Some("closed"),
            Reason::Timeout => Some("timeout"),
            Reason::Restarted => Some("restarted"),
        }
    }

    pub(crate) fn from_u8(b: u8) -> Option<Reason> {
        match b {
            0 => Some(Reason::None),
            1 => Some(Reason::Closed),
            2 => Some(Reason::Timeout),
            3 => Some(Reason::Restarted),
            _ => None,
        }
    }
}

/// One change to the member set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Joined, left or updated.
    pub kind: EventKind,
    /// Why.
    pub reason: Reason,
    /// The member as it is after the change (for `left`: as it was).
    pub member: Member,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.member.name)?;
        if let Some(r) = self.reason.as_str() {
            write!(f, " ({r})")?;
        }
        Ok(())
    }
}

/// Size limits. Every size on the wire is bounded; over-limit input is dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest member name, in bytes (default 1024).
    pub max_name: usize,
    /// Largest encoded metadata, in bytes (default 4096).
    pub max_metadata: usize,
    /// Most members a server keeps or a subscriber accepts (default 100,000).
    pub max_members: usize,
    /// Largest message accepted on a publish/survey socket, in bytes (default 1 MiB).
    pub max_message: usize,
    /// Largest snapshot accepted, in bytes (default 64 MiB).
    pub max_snapshot: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_name: 1024,
            max_metadata: 4096,
            max_members: 100_000,
            max_message: 1 << 20,
            max_snapshot: 64 << 20,
        }
    }
}

impl Limits {
    /// Checks that the limits are usable (non-zero, message large enough for one member).
    pub fn validate(&self) -> Result<()> {
        if self.max_name == 0 || self.max_name > u16::MAX as usize {
            return Err(Error::option(
                "max_name",
                "must be between 1 and 65535 bytes",
            ));
        }
        if self.max_metadata > u16::MAX as usize * 4 {
            return Err(Error::option(
                "max_metadata",
                "must be at most 262140 bytes",
            ));
        }
        if self.max_members == 0 || self.max_members > u32::MAX as usize {
            return Err(Error::option("max_members", "must be at least 1"));
        }
        let one = crate::wire::MAX_OVERHEAD + self.max_name + self.max_metadata;
        if self.max_message < one {
            return Err(Error::option(
                "max_message",
                format!("must hold one member of the largest allowed size ({one} bytes)"),
            ));
        }
        if self.max_snapshot < self.max_message {
            return Err(Error::option(
                "max_snapshot",
                "must be at least max_message",
            ));
        }
        Ok(())
    }

    /// Checks a member against these limits; the error names the problem.
    pub fn check_member(&self, m: &Member) -> Result<()> {
        if m.name.is_empty() {
            return Err(Error::InvalidMember("empty name".into()));
        }
        if m.name.len() > self.max_name {
            return Err(Error::InvalidMember(format!(
                "name is {} bytes, the limit is {}",
                m.name.len(),
                self.max_name
            )));
        }
        if crate::wire::has_control(&m.name) {
            return Err(Error::InvalidMember(
                "name has a control character (NUL, newline, escape…)".into(),
            ));
        }
        for (k, v) in &m.metadata {
            if crate::wire::has_control(k) || crate::wire::has_control(v) {
                return Err(Error::InvalidMember(format!(
                    "metadata entry {k:?} has a control character"
                )));
            }
            if k.is_empty() {
                return Err(Error::InvalidMember("empty metadata key".into()));
            }
            if k.len() > u16::MAX as usize || v.len() > u16::MAX as usize {
                return Err(Error::InvalidMember(format!(
                    "metadata entry {k:?} is too long"
                )));
            }
        }
        let size = crate::wire::metadata_len(&m.metadata);
        if size > self.max_metadata {
            return Err(Error::InvalidMember(format!(
                "metadata is {size} bytes encoded, the limit is {}",
                self.max_metadata
            )));
        }
        Ok(())
    }
}

/// FNV-1a, 64 bit: tiny, stable, and the same in every language.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The splitmix64 finalizer: spreads FNV's weak low bits over the whole word, so a
/// sum of member hashes is a good set digest.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of one member: `mix64(fnv1a64(encoded member))` (see docs/PROTOCOL.md).
pub fn member_hash(m: &Member) -> u64 {
    let mut buf = Vec::with_capacity(16 + m.name.len());
    crate::wire::put_member(&mut buf, m);
    mix64(fnv1a64(&buf))
}

/// The digest of a member set: the wrapping sum of its member hashes. It does not
/// depend on order and is updated in O(1) per change.
pub fn digest<'a>(members: impl IntoIterator<Item = &'a Member>) -> u64 {
    members
        .into_iter()
        .fold(0u64, |d, m| d.wrapping_add(member_hash(m)))
}

/// A new incarnation: `(unix_ms_now << 16) | random16`, so a later start compares
/// greater (a restart within the same millisecond is told apart by the random
/// bits, unordered). Never 0 (that marks a legacy member).
pub fn new_incarnation() -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    ((ms << 16) | (random_u64() & 0xFFFF)).max(1)
}

/// A random, non-zero 64-bit value for epochs. Not for secrets:
/// it only has to differ between starts.
pub fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut from_os = [0u8; 8];
    let os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut from_os))
        .is_ok();
    let mut h = RandomState::new().build_hasher();
    h.write_u64(u64::from_ne_bytes(from_os));
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if !os {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        h.write_u64(t);
    }
    match mix64(h.finish()) {
        0 => 1,
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_order_free_and_changes_with_content() {
        let a = Member::new("a", 1);
        let mut b = Member::new("b", 2);
        let d1 = digest([&a, &b]);
        assert_eq!(d1, digest([&b, &a]));
        b.metadata.insert("zone".into(), "x".into());
        assert_ne!(d1, digest([&a, &b]));
        assert_eq!(digest([]), 0);
    }

    #[test]
    fn incarnations_carry_the_start_time_in_their_high_bits() {
        let ms = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        let before = ms();
        let inc = new_incarnation();
        let after = ms();
        assert!((before..=after).contains(&(inc >> 16)), "{inc:x}");
    }

    #[test]
    fn limits_name_problems() {
        let l = Limits::default();
        assert!(l.check_member(&Member::new("ok", 1)).is_ok());
        let e = l.check_member(&Member::new("", 1)).unwrap_err();
        assert!(e.to_string().contains("empty name"), "{e}");
        let e = l
            .check_member(&Member::new("x".repeat(1025), 1))
            .unwrap_err();
        assert!(e.to_string().contains("1025"), "{e}");
        let mut m = Member::new("m", 1);
        m.metadata.insert("k".into(), "v".repeat(5000));
        assert!(l
            .check_member(&m)
            .unwrap_err()
            .to_string()
            .contains("metadata"));
    }

    #[test]
    fn random_values_differ() {
        assert_ne!(random_u64(), random_u64());
    }
}
