//! The native wire format: pure encode/decode, no sockets. Byte-by-byte description
//! and test vectors in `docs/PROTOCOL.md`.
//!
//! Every native message starts with `0xFF` (a byte no UTF-8 string starts with, so a
//! native payload is never mistaken for a legacy raw string), the version byte, the
//! type byte and the suite byte (0: unsigned; 1: signed, the body is followed by a
//! key id and a 16-byte tag, see [`crate::auth`]).
//! All integers are big-endian; strings are a `u16` length and UTF-8 bytes.
//! The decoder checks every length against the input and the [`Limits`] before it
//! allocates, and never panics (property-tested).

use std::fmt;

use crate::member::{Event, EventKind, Limits, Member, Metadata, Reason};

/// First byte of every native message.
pub const MAGIC: u8 = 0xFF;
/// The only version this build speaks.
pub const VERSION: u8 = 3;
/// Bytes before the body: magic, version, type, suite.
pub const HEADER_LEN: usize = 4;
/// Survey id (SP header) a client uses to announce itself unasked on a new connection.
pub const ANNOUNCE_ID: u32 = 0x8000_0000;
/// Bytes of framing around one member in the largest single-member message
/// (header, echo, member framing, signature trailer), with room to spare.
pub const MAX_OVERHEAD: usize = 96;
/// Bytes of a signed DELTA before its events, with its trailer: header, epoch,
/// seq, counter, count; key id and tag.
pub const DELTA_HEADER_LEN: usize = HEADER_LEN + 8 + 8 + 8 + 4 + crate::auth::TRAILER_LEN;
/// Bytes of a signed SNAPSHOT without its members, with its trailer.
pub const SNAPSHOT_HEADER_LEN: usize =
    HEADER_LEN + 8 + 8 + 8 + 8 + 4 + 1 + 8 + 4 + crate::auth::TRAILER_LEN;
/// Offset of the nonce in a SNAPSHOT (right after the header): a server encodes
/// a snapshot once per seq and writes each request's nonce here.
pub const SNAPSHOT_NONCE_AT: usize = HEADER_LEN;
/// Bit 0 of the flags byte of HEARTBEAT and SNAPSHOT: the server is warming (it
/// started less than `evict_after` × interval + deadline ago, so it may not have
/// surveyed every member yet: subscribers let it add members, never remove them).
pub const FLAG_WARMING: u8 = 1;

/// The survey id (SP header) of survey `round`: the high bit set, the round's low
/// 31 bits. The server skips the rounds whose id is [`ANNOUNCE_ID`].
pub fn survey_id(round: u64) -> u32 {
    0x8000_0000 | (round as u32 & 0x7FFF_FFFF)
}

/// True when an answer's SP header is a survey id (4 bytes, high bit set): what
/// every respondent echoes or announces with. Anything else is not an answer.
pub fn is_survey_id(header: &[u8]) -> bool {
    header.len() == 4 && header[0] & 0x80 != 0
}

/// True when `s` has a control character (U+0000–U+001F, U+007F–U+009F: NUL,
/// newline, escape…). Names and metadata refuse them: they would forge lines in
/// text output and logs.
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Splits `events` into runs whose DELTA encoding stays within `max_bytes` (a
/// single event larger than that is a run of its own).
pub fn split_events(events: &[Event], max_bytes: usize) -> impl Iterator<Item = &[Event]> + '_ {
    let mut rest = events;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        let mut size = DELTA_HEADER_LEN;
        while end < rest.len() && (end == 0 || size + event_len(&rest[end]) <= max_bytes) {
            size += event_len(&rest[end]);
            end += 1;
        }
        let (run, tail) = rest.split_at(end);
        rest = tail;
        Some(run)
    })
}

/// Message type codes (third byte).
pub mod kind {
    /// Server → client: "who is there?"
    pub const SURVEY: u8 = 1;
    /// Client → server: the member.
    pub const ANSWER: u8 = 2;
    /// Server → subscribers: numbered changes.
    pub const DELTA: u8 = 3;
    /// Server → subscribers: position, count and digest, every interval.
    pub const HEARTBEAT: u8 = 4;
    /// Subscriber → server: please send the snapshot.
    pub const SNAPSHOT_REQUEST: u8 = 5;
    /// Server → subscriber: the whole member set at a position.
    pub const SNAPSHOT: u8 = 6;
}

/// The periodic heartbeat publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Random per server start.
    pub epoch: u64,
    /// Seq of the last delta published.
    pub seq: u64,
    /// The publication counter: +1 per publication (delta or heartbeat) of this
    /// epoch; a subscriber drops one not above the last (a replay).
    pub counter: u64,
    /// The server's survey interval in milliseconds (subscribers derive staleness from it).
    pub interval_ms: u32,
    /// The server is warming ([`FLAG_WARMING`]).
    pub warming: bool,
    /// Number of members.
    pub count: u32,
    /// Digest of the member set (see [`crate::member::digest`]).
    pub digest: u64,
}

/// The whole member set at `(epoch, seq)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The nonce of the request it answers.
    pub nonce: u64,
    /// Random per server start.
    pub epoch: u64,
    /// Seq of the last delta included.
    pub seq: u64,
    /// The publication counter when it was taken: publications of this epoch
    /// not above it are replays or already included.
    pub counter: u64,
    /// The server's survey interval in milliseconds.
    pub interval_ms: u32,
    /// The server is warming ([`FLAG_WARMING`]).
    pub warming: bool,
    /// Digest of `members`.
    pub digest: u64,
    /// Sorted by name.
    pub members: Vec<Member>,
}

/// A decoded native message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `(epoch, round)` of the asking server.
    Survey {
        /// Server epoch.
        epoch: u64,
        /// Survey number.
        round: u64,
    },
    /// A client's answer: the survey it answers (both 0 in an announce), and
    /// the member.
    Answer {
        /// Epoch of the survey answered (0: an announce).
        epoch: u64,
        /// Round of the survey answered (0: an announce).
        round: u64,
        /// The member.
        member: Member,
    },
    /// Numbered changes.
    Delta {
        /// Server epoch.
        epoch: u64,
        /// +1 per delta publication.
        seq: u64,
        /// The publication counter (see [`Heartbeat::counter`]).
        counter: u64,
        /// In order.
        events: Vec<Event>,
    },
    /// See [`Heartbeat`].
    Heartbeat(Heartbeat),
    /// Asks for a snapshot.
    SnapshotRequest {
        /// Random; the snapshot echoes it.
        nonce: u64,
    },
    /// See [`Snapshot`].
    Snapshot(Snapshot),
}

/// Why bytes were not a valid native message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its fields say.
    Truncated,
    /// Does not start with 0xFF.
    NotNative,
    /// A version this build does not speak.
    UnsupportedVersion(u8),
    /// An unknown type byte.
    UnknownKind(u8),
    /// A suite byte this build does not know.
    UnknownSuite(u8),
    /// A length over a limit.
    TooLarge(&'static str),
    /// A string that is not UTF-8.
    InvalidUtf8(&'static str),
    /// A name, key or value with a control character (NUL, newline, escape…).
    ControlChar(&'static str),
    /// An empty member name or metadata key.
    Empty(&'static str),
    /// A metadata key given twice.
    DuplicateKey,
    /// An unknown event kind or reason byte.
    BadEvent,
    /// Bytes left over after the message.
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "truncated message"),
            DecodeError::NotNative => write!(f, "not a native message (first byte is not 0xFF)"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            DecodeError::UnknownKind(k) => write!(f, "unknown message type {k}"),
            DecodeError::UnknownSuite(k) => write!(f, "unknown signature suite {k}"),
            DecodeError::TooLarge(what) => write!(f, "{what} over its limit"),
            DecodeError::InvalidUtf8(what) => write!(f, "{what} is not valid UTF-8"),
            DecodeError::ControlChar(what) => write!(f, "{what} has a control character"),
            DecodeError::Empty(what) => write!(f, "empty {what}"),
            DecodeError::DuplicateKey => write!(f, "metadata key given twice"),
            DecodeError::BadEvent => write!(f, "unknown event kind or reason"),
            DecodeError::TrailingBytes => write!(f, "trailing bytes after the message"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// True when `bytes` claims to be a native message (first byte 0xFF). Anything else
/// on a survey or publish socket is a legacy raw string or list.
pub fn is_native(bytes: &[u8]) -> bool {
    bytes.first() == Some(&MAGIC)
}

// ---------------------------------------------------------------- encoding

fn header(kind: u8, cap: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + cap + crate::auth::TRAILER_LEN);
    b.extend_from_slice(&[MAGIC, VERSION, kind, crate::auth::SUITE_NONE]);
    b
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    debug_assert!(s.len() <= u16::MAX as usize);
    buf.extend_from_slice(&(s.len() as u16).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// Encoded size of a metadata section (the figure `max_metadata` limits).
pub fn metadata_len(md: &Metadata) -> usize {
    2 + md.iter().map(|(k, v)| 4 + k.len() + v.len()).sum::<usize>()
}

/// Appends the member encoding: incarnation u64, generation u32, name, metadata.
pub fn put_member(buf: &mut Vec<u8>, m: &Member) {
    buf.extend_from_slice(&m.incarnation.to_be_bytes());
    buf.extend_from_slice(&m.generation.to_be_bytes());
    put_str(buf, &m.name);
    buf.extend_from_slice(&(m.metadata.len() as u16).to_be_bytes());
    for (k, v) in &m.metadata {
        put_str(buf, k);
        put_str(buf, v);
    }
}

/// Encoded size of one member.
pub fn member_len(m: &Member) -> usize {
    8 + 4 + 2 + m.name.len() + metadata_len(&m.metadata)
}

/// Encoded size of one event inside a delta.
pub fn event_len(e: &Event) -> usize {
    2 + member_len(&e.member)
}

/// `FF 03 01 00 | epoch u64 | round u64` (unsigned; [`crate::Auth::seal`] signs it)
pub fn encode_survey(epoch: u64, round: u64) -> Vec<u8> {
    let mut b = header(kind::SURVEY, 16);
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&round.to_be_bytes());
    b
}

/// `FF 03 02 00 | epoch u64 | round u64 | member`: the answer to survey
/// `(epoch, round)`, or an announce with both 0.
pub fn encode_answer(m: &Member, epoch: u64, round: u64) -> Vec<u8> {
    let mut b = header(kind::ANSWER, 16 + member_len(m));
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&round.to_be_bytes());
    put_member(&mut b, m);
    b
}

/// `FF 03 03 00 | epoch u64 | seq u64 | counter u64 | count u32 | (kind u8, reason u8, member)*`
pub fn encode_delta(epoch: u64, seq: u64, counter: u64, events: &[Event]) -> Vec<u8> {
    let body: usize = events.iter().map(event_len).sum();
    let mut b = header(kind::DELTA, 28 + body);
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&counter.to_be_bytes());
    b.extend_from_slice(&(events.len() as u32).to_be_bytes());
    for e in events {
        b.push(e.kind as u8);
        b.push(e.reason as u8);
        put_member(&mut b, &e.member);
    }
    b
}

/// `FF 03 04 00 | epoch u64 | seq u64 | counter u64 | interval_ms u32 | flags u8 | count u32 | digest u64`
pub fn encode_heartbeat(h: &Heartbeat) -> Vec<u8> {
    let mut b = header(kind::HEARTBEAT, 41);
    b.extend_from_slice(&h.epoch.to_be_bytes());
    b.extend_from_slice(&h.seq.to_be_bytes());
    b.extend_from_slice(&h.counter.to_be_bytes());
    b.extend_from_slice(&h.interval_ms.to_be_bytes());
    b.push(flags(h.warming));
    b.extend_from_slice(&h.count.to_be_bytes());
    b.extend_from_slice(&h.digest.to_be_bytes());
    b
}

/// `FF 03 05 00 | nonce u64`
pub fn encode_snapshot_request(nonce: u64) -> Vec<u8> {
    let mut b = header(kind::SNAPSHOT_REQUEST, 8);
    b.extend_from_slice(&nonce.to_be_bytes());
    b
}

/// Everything of a SNAPSHOT but its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHead {
    /// The nonce of the request answered.
    pub nonce: u64,
    /// Server epoch.
    pub epoch: u64,
    /// Seq of the last delta included.
    pub seq: u64,
    /// Publication counter when taken.
    pub counter: u64,
    /// Survey interval in milliseconds.
    pub interval_ms: u32,
    /// Warming flag.
    pub warming: bool,
    /// Digest of the members.
    pub digest: u64,
}

/// `FF 03 06 00 | nonce u64 | epoch u64 | seq u64 | counter u64 | interval_ms u32 | flags u8 | digest u64 | count u32 | member*`
///
/// Takes the members as an iterator so a server can encode straight from its table.
pub fn encode_snapshot<'a>(
    head: &SnapshotHead,
    count: usize,
    members: impl IntoIterator<Item = &'a Member>,
) -> Vec<u8> {
    let mut b = header(kind::SNAPSHOT, 49 + count * 28);
    b.extend_from_slice(&head.nonce.to_be_bytes());
    b.extend_from_slice(&head.epoch.to_be_bytes());
    b.extend_from_slice(&head.seq.to_be_bytes());
    b.extend_from_slice(&head.counter.to_be_bytes());
    b.extend_from_slice(&head.interval_ms.to_be_bytes());
    b.push(flags(head.warming));
    b.extend_from_slice(&head.digest.to_be_bytes());
    b.extend_from_slice(&(count as u32).to_be_bytes());
    let mut n = 0;
    for m in members {
        put_member(&mut b, m);
        n += 1;
    }
    debug_assert_eq!(n, count);
    b
}

/// The legacy publication: names sorted and joined with `|`; the empty set is empty.
pub fn encode_legacy_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, n) in names.into_iter().enumerate() {
        if i > 0 {
            b.push(b'|');
        }
        b.extend_from_slice(n.as_bytes());
    }
    b
}

// ---------------------------------------------------------------- decoding

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    fn str(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        self.text(what, max).map(str::to_owned)
    }
    fn text(&mut self, what: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(DecodeError::TooLarge(what));
        }
        let bytes = self.take(n)?;
        text(bytes, what)
    }
    fn member(&mut self, limits: &Limits) -> Result<Member, DecodeError> {
        let incarnation = self.u64()?;
        let generation = self.u32()?;
        let name = self.str("name", limits.max_name)?;
        if name.is_empty() {
            return Err(DecodeError::Empty("name"));
        }
        let start = self.pos;
        let count = self.u16()? as usize;
        let mut metadata = Metadata::new();
        for _ in 0..count {
            let k = self.str("metadata key", limits.max_metadata)?;
            let v = self.str("metadata value", limits.max_metadata)?;
            if k.is_empty() {
                return Err(DecodeError::Empty("metadata key"));
            }
            if self.pos - start > limits.max_metadata {
                return Err(DecodeError::TooLarge("metadata"));
            }
            if metadata.insert(k, v).is_some() {
                return Err(DecodeError::DuplicateKey);
            }
        }
        Ok(Member {
            name,
            metadata,
            incarnation,
            generation,
        })
    }
    /// Reads a count and refuses one that the remaining bytes cannot hold.
    fn count(
        &mut self,
        min_item: usize,
        max: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError::TooLarge(what));
        }
        if n.saturating_mul(min_item) > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
}

/// UTF-8 without control characters.
fn text<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, DecodeError> {
    let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8(what))?;
    if has_control(s) {
        return Err(DecodeError::ControlChar(what));
    }
    Ok(s)
}

/// Smallest encoded member: incarnation, generation, name length, 1 name byte,
/// metadata count.
const MIN_MEMBER: usize = 8 + 4 + 2 + 1 + 2;

/// The flags byte of HEARTBEAT and SNAPSHOT.
fn flags(warming: bool) -> u8 {
    if warming {
        FLAG_WARMING
    } else {
        0
    }
}

/// Reads a flags byte; bits this version does not know are ignored.
fn warming(flags: u8) -> bool {
    flags & FLAG_WARMING != 0
}

/// Decodes one native message, checking every size against `limits`. A signed
/// message's trailer (key id and tag) is skipped, not verified: verify it first
/// with [`crate::Auth::check`].
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Message, DecodeError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.u8()? != MAGIC {
        return Err(DecodeError::NotNative);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let kind = r.u8()?;
    let end = match r.u8()? {
        crate::auth::SUITE_NONE => bytes.len(),
        crate::auth::SUITE_HMAC_SHA256 => bytes
            .len()
            .checked_sub(crate::auth::TRAILER_LEN)
            .filter(|e| *e >= HEADER_LEN)
            .ok_or(DecodeError::Truncated)?,
        other => return Err(DecodeError::UnknownSuite(other)),
    };
    let mut r = Reader {
        buf: &bytes[..end],
        pos: HEADER_LEN,
    };
    let msg = match kind {
        kind::SURVEY => Message::Survey {
            epoch: r.u64()?,
            round: r.u64()?,
        },
        kind::ANSWER => Message::Answer {
            epoch: r.u64()?,
            round: r.u64()?,
            member: r.member(limits)?,
        },
        kind::DELTA => {
            let epoch = r.u64()?;
            let seq = r.u64()?;
            let counter = r.u64()?;
            let n = r.count(2 + MIN_MEMBER, limits.max_members, "event count")?;
            let mut events = Vec::with_capacity(n);
            for _ in 0..n {
                let kind = EventKind::from_u8(r.u8()?).ok_or(DecodeError::BadEvent)?;
                let reason = Reason::from_u8(r.u8()?).ok_or(DecodeError::BadEvent)?;
                events.push(Event {
                    kind,
                    reason,
                    member: r.member(limits)?,
                });
            }
            Message::Delta {
                epoch,
                seq,
                counter,
                events,
            }
        }
        kind::HEARTBEAT => Message::Heartbeat(Heartbeat {
            epoch: r.u64()?,
            seq: r.u64()?,
            counter: r.u64()?,
            interval_ms: r.u32()?,
            warming: warming(r.u8()?),
            count: r.u32()?,
            digest: r.u64()?,
        }),
        kind::SNAPSHOT_REQUEST => Message::SnapshotRequest { nonce: r.u64()? },
        kind::SNAPSHOT => {
            let nonce = r.u64()?;
            let epoch = r.u64()?;
            let seq = r.u64()?;
            let counter = r.u64()?;
            let interval_ms = r.u32()?;
            let warming = warming(r.u8()?);
            let digest = r.u64()?;
            let n = r.count(MIN_MEMBER, limits.max_members, "member count")?;
            let mut members = Vec::with_capacity(n);
            for _ in 0..n {
                members.push(r.member(limits)?);
            }
            Message::Snapshot(Snapshot {
                nonce,
                epoch,
                seq,
                counter,
                interval_ms,
                warming,
                digest,
                members,
            })
        }
        other => return Err(DecodeError::UnknownKind(other)),
    };
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(msg)
}

/// A legacy answer: the raw service string is the member name (no metadata,
/// incarnation 0). Refuses empty, non-UTF-8 and over-long names.
pub fn decode_legacy_answer(bytes: &[u8], limits: &Limits) -> Result<Member, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty("name"));
    }
    if bytes.len() > limits.max_name {
        return Err(DecodeError::TooLarge("name"));
    }
    Ok(Member::new(text(bytes, "name")?, 0))
}

/// A legacy publication: the full set, names joined with `|`. A zero-length message
/// is the empty set (not one empty name, as the original's subscriber reads it).
pub fn decode_legacy_list(bytes: &[u8], limits: &Limits) -> Result<Vec<String>, DecodeError> {
    let mut names: Vec<String> = text(bytes, "legacy list")?
        .split('|')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if names.len() > limits.max_members {
        return Err(DecodeError::TooLarge("legacy list"));
    }
    if names.iter().any(|n| n.len() > limits.max_name) {
        return Err(DecodeError::TooLarge("name"));
    }
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(name: &str, inc: u64, md: &[(&str, &str)]) -> Member {
        Member {
            name: name.into(),
            incarnation: inc,
            generation: 0,
            metadata: md
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Pulls every ```hex block that follows a `vector: NAME` line out of PROTOCOL.md.
    fn protocol_vectors() -> Vec<(String, Vec<u8>)> {
        let doc = include_str!("../docs/PROTOCOL.md");
        let mut out = Vec::new();
        let mut lines = doc.lines();
        while let Some(line) = lines.next() {
            if let Some(name) = line.trim().strip_prefix("<!-- vector: ") {
                let name = name.trim_end_matches("-->").trim().to_string();
                assert_eq!(lines.next().map(str::trim), Some("```hex"), "vector {name}");
                let mut text = String::new();
                for l in lines.by_ref() {
                    if l.trim() == "```" {
                        break;
                    }
                    text.push_str(l.split('#').next().unwrap());
                }
                out.push((name, hex(&text)));
            }
        }
        out
    }

    /// The messages of PROTOCOL.md's vectors, by name; `signed-*` ones are sealed
    /// with the fixed test key (bytes 0x00..0x1f) and mesh label `test`.
    fn documented() -> Vec<(&'static str, Message)> {
        let a1 = || member("a", 1, &[]);
        vec![
            (
                "survey",
                Message::Survey {
                    epoch: 0x0102030405060708,
                    round: 42,
                },
            ),
            (
                "answer",
                Message::Answer {
                    epoch: 0x0102030405060708,
                    round: 42,
                    member: Member {
                        generation: 3,
                        ..member("web-1", 7, &[("zone", "a")])
                    },
                },
            ),
            (
                "delta",
                Message::Delta {
                    epoch: 0x0102030405060708,
                    seq: 5,
                    counter: 9,
                    events: vec![
                        Event {
                            kind: EventKind::Joined,
                            reason: Reason::None,
                            member: member("a", 1, &[]),
                        },
                        Event {
                            kind: EventKind::Left,
                            reason: Reason::Closed,
                            member: member("b", 2, &[]),
                        },
                    ],
                },
            ),
            (
                "heartbeat",
                Message::Heartbeat(Heartbeat {
                    epoch: 0x0102030405060708,
                    seq: 5,
                    counter: 10,
                    interval_ms: 1000,
                    warming: true,
                    count: 1,
                    digest: crate::member::digest([&a1()]),
                }),
            ),
            (
                "snapshot-request",
                Message::SnapshotRequest {
                    nonce: 0x1122334455667788,
                },
            ),
            (
                "snapshot",
                Message::Snapshot(Snapshot {
                    nonce: 0x1122334455667788,
                    epoch: 0x0102030405060708,
                    seq: 5,
                    counter: 10,
                    interval_ms: 1000,
                    warming: false,
                    digest: crate::member::digest([&a1()]),
                    members: vec![a1()],
                }),
            ),
            (
                "signed-survey",
                Message::Survey {
                    epoch: 0x0102030405060708,
                    round: 42,
                },
            ),
            (
                "signed-answer",
                Message::Answer {
                    epoch: 0x0102030405060708,
                    round: 42,
                    member: a1(),
                },
            ),
        ]
    }

    fn encode(msg: &Message) -> Vec<u8> {
        match msg {
            Message::Survey { epoch, round } => encode_survey(*epoch, *round),
            Message::Answer {
                epoch,
                round,
                member,
            } => encode_answer(member, *epoch, *round),
            Message::Delta {
                epoch,
                seq,
                counter,
                events,
            } => encode_delta(*epoch, *seq, *counter, events),
            Message::Heartbeat(h) => encode_heartbeat(h),
            Message::SnapshotRequest { nonce } => encode_snapshot_request(*nonce),
            Message::Snapshot(s) => encode_snapshot(
                &SnapshotHead {
                    nonce: s.nonce,
                    epoch: s.epoch,
                    seq: s.seq,
                    counter: s.counter,
                    interval_ms: s.interval_ms,
                    warming: s.warming,
                    digest: s.digest,
                },
                s.members.len(),
                &s.members,
            ),
        }
    }

    fn role(msg: &Message) -> crate::auth::Role {
        use crate::auth::Role;
        match msg {
            Message::Survey { .. } => Role::Survey,
            Message::Answer { .. } => Role::Answer,
            Message::Delta { .. } | Message::Heartbeat(_) => Role::Publication,
            Message::SnapshotRequest { .. } => Role::SnapshotRequest,
            Message::Snapshot(_) => Role::Snapshot,
        }
    }

    fn test_auth() -> crate::Auth {
        let key: Vec<u8> = (0u8..32).collect();
        crate::Auth::with_keyring(crate::Keyring::new([key]).unwrap()).mesh_label("test")
    }

    /// Prints the vectors (`cargo test --lib print_vectors -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn print_vectors() {
        for (name, msg) in documented() {
            let mut b = encode(&msg);
            if name.starts_with("signed-") {
                b = test_auth().seal(role(&msg), b);
            }
            let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
            println!("{name}: {}", hex.join(" "));
        }
        let key: Vec<u8> = (0u8..32).collect();
        println!("key id: {}", crate::Keyring::key_id_of(&key).unwrap());
    }

    #[test]
    fn protocol_md_vectors_decode_to_the_documented_messages() {
        let l = Limits::default();
        let vectors = protocol_vectors();
        let expect = documented();
        assert_eq!(
            vectors.len(),
            expect.len(),
            "PROTOCOL.md vectors: {:?}",
            vectors.iter().map(|v| &v.0).collect::<Vec<_>>()
        );
        let auth = test_auth();
        for ((name, bytes), (ename, msg)) in vectors.iter().zip(expect) {
            assert_eq!(name, ename);
            assert_eq!(decode(bytes, &l).as_ref(), Ok(&msg), "vector {name}");
            // And our encoder (and signer) writes exactly the documented bytes.
            let mut again = encode(&msg);
            if name.starts_with("signed-") {
                let id = crate::Keyring::key_id_of(&(0u8..32).collect::<Vec<u8>>()).unwrap();
                assert_eq!(
                    auth.check(role(&msg), bytes),
                    Ok(crate::auth::Checked::Signed(id)),
                    "vector {name} verifies with the test key and label"
                );
                again = auth.seal(role(&msg), again);
            }
            assert_eq!(&again, bytes, "encoding of vector {name}");
        }
    }

    #[test]
    fn the_digest_figures_in_protocol_md_hold() {
        // docs/PROTOCOL.md states these numbers; they pin member_hash across languages.
        let a = member("a", 1, &[]);
        let b = member("b", 2, &[]);
        assert_eq!(crate::member::member_hash(&a), 0xd5f4_d827_303b_c5c3);
        assert_eq!(crate::member::digest([&a, &b]), 0xf772_eb96_011d_2b96);
    }

    #[test]
    fn rejects_with_specific_errors() {
        let l = Limits::default();
        assert_eq!(decode(b"", &l), Err(DecodeError::Truncated));
        assert_eq!(decode(b"hello", &l), Err(DecodeError::NotNative));
        assert_eq!(
            decode(&[0xFF, 1, 1, 0], &l),
            Err(DecodeError::UnsupportedVersion(1))
        );
        assert_eq!(
            decode(&[0xFF, 3, 99, 0], &l),
            Err(DecodeError::UnknownKind(99))
        );
        let mut a = encode_answer(&member("x", 1, &[]), 1, 2);
        a.push(0);
        assert_eq!(decode(&a, &l), Err(DecodeError::TrailingBytes));
        let empty = encode_answer(&Member::new("", 1), 1, 2);
        assert_eq!(decode(&empty, &l), Err(DecodeError::Empty("name")));
        let mut bad = encode_answer(&member("ab", 1, &[]), 1, 2);
        bad[HEADER_LEN + 16 + 8 + 4 + 2] = 0xC3; // lone lead byte: not UTF-8
        assert_eq!(decode(&bad, &l), Err(DecodeError::InvalidUtf8("name")));
        let long = encode_answer(&Member::new("n".repeat(2000), 1), 1, 2);
        assert_eq!(decode(&long, &l), Err(DecodeError::TooLarge("name")));
        // A count that the remaining bytes cannot hold is refused before allocating.
        let mut huge = encode_delta(1, 1, 1, &[]);
        let n = huge.len();
        huge[n - 4..].copy_from_slice(&50_000u32.to_be_bytes());
        assert_eq!(decode(&huge, &l), Err(DecodeError::Truncated));
        for (md, what) in [
            (&[][..], "name"),
            (&[("k\u{1b}[2J", "v")][..], "metadata key"),
            (&[("k", "a\u{0}b")][..], "metadata value"),
        ] {
            let name = if what == "name" { "web\nforged" } else { "web" };
            let a = encode_answer(&member(name, 1, md), 1, 2);
            assert_eq!(decode(&a, &l), Err(DecodeError::ControlChar(what)));
        }
        assert_eq!(
            decode_legacy_answer(b"a\r\nb", &l),
            Err(DecodeError::ControlChar("name"))
        );
    }

    #[test]
    fn survey_ids_and_delta_splitting() {
        assert_eq!(survey_id(42), 0x8000_002a);
        assert_eq!(survey_id(1 << 31), ANNOUNCE_ID);
        assert!(is_survey_id(&survey_id(7).to_be_bytes()));
        assert!(!is_survey_id(&[0x00, 0, 0, 7]), "high bit clear");
        assert!(!is_survey_id(&[0x80, 0, 0]), "short");
        let trailer = crate::auth::TRAILER_LEN;
        assert_eq!(DELTA_HEADER_LEN, encode_delta(1, 1, 1, &[]).len() + trailer);
        let head = SnapshotHead {
            nonce: 1,
            epoch: 1,
            seq: 1,
            counter: 1,
            interval_ms: 1,
            warming: false,
            digest: 0,
        };
        assert_eq!(
            SNAPSHOT_HEADER_LEN,
            encode_snapshot(&head, 0, []).len() + trailer
        );
        let ev = |n: &str| Event {
            kind: EventKind::Joined,
            reason: Reason::None,
            member: Member::new(n, 1),
        };
        let events: Vec<Event> = (0..10).map(|i| ev(&format!("m{i}"))).collect();
        let one = event_len(&events[0]);
        let runs: Vec<&[Event]> = split_events(&events, DELTA_HEADER_LEN + 3 * one).collect();
        assert_eq!(
            runs.iter().map(|r| r.len()).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        for r in &runs {
            assert!(encode_delta(1, 1, 1, r).len() <= DELTA_HEADER_LEN + 3 * one);
        }
        // One event over the limit still goes, alone.
        assert_eq!(split_events(&events[..2], 1).count(), 2);
        assert_eq!(split_events(&[], 1).count(), 0);
    }

    #[test]
    fn legacy_forms() {
        let l = Limits::default();
        assert_eq!(
            decode_legacy_answer(b"legacy-1", &l).unwrap(),
            Member::new("legacy-1", 0)
        );
        assert!(decode_legacy_answer(b"", &l).is_err());
        assert!(decode_legacy_answer(&[0xC3], &l).is_err());
        assert_eq!(
            decode_legacy_list(b"b|a|c", &l).unwrap(),
            vec!["a", "b", "c"]
        );
        assert!(decode_legacy_list(b"", &l).unwrap().is_empty());
        assert_eq!(encode_legacy_list(["a", "b", "legacy-1"]), b"a|b|legacy-1");
        assert!(encode_legacy_list(std::iter::empty::<&str>()).is_empty());
        assert!(!is_native(b"a|b"));
    }

    fn arb_member() -> impl Strategy<Value = Member> {
        (
            "[a-z0-9:/._-]{1,40}",
            any::<u64>(),
            any::<u32>(),
            proptest::collection::btree_map("[a-z]{1,8}", "\\PC{0,20}", 0..4),
        )
            .prop_map(|(name, incarnation, generation, metadata)| Member {
                name,
                incarnation,
                generation,
                metadata,
            })
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        (1u8..=3, 0u8..=3, arb_member()).prop_map(|(k, r, member)| Event {
            kind: EventKind::from_u8(k).unwrap(),
            reason: Reason::from_u8(r).unwrap(),
            member,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes, &Limits::default());
            let _ = decode_legacy_answer(&bytes, &Limits::default());
            let _ = decode_legacy_list(&bytes, &Limits::default());
        }

        #[test]
        fn decode_never_panics_on_mutated_messages(
            events in proptest::collection::vec(arb_event(), 0..5),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
            signed in any::<bool>(),
        ) {
            let mut b = encode_delta(9, 9, 9, &events);
            if signed {
                b = test_auth().seal(crate::auth::Role::Publication, b);
            }
            for (i, v) in flips { let n = b.len(); b[i % n] = v; }
            let n = b.len();
            b.truncate(cut % (n + 1));
            let _ = decode(&b, &Limits::default());
            // A signed envelope's checker never panics on garbage or truncation,
            // and a mutated message never verifies.
            let checked = test_auth().check(crate::auth::Role::Publication, &b);
            if signed && checked.is_ok() {
                prop_assert_eq!(decode(&b, &Limits::default()).is_ok(), true);
            }
        }

        #[test]
        fn the_envelope_checker_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256),
                                             prefix in any::<bool>()) {
            let mut b = bytes;
            if prefix && b.len() >= 4 {
                b[0] = MAGIC; b[1] = VERSION; b[3] = crate::auth::SUITE_HMAC_SHA256;
            }
            for mode in [crate::AuthMode::Permissive, crate::AuthMode::Required] {
                let a = test_auth().mode(mode);
                prop_assert!(!matches!(a.check(crate::auth::Role::Answer, &b),
                                       Ok(crate::auth::Checked::Signed(_))));
            }
            let _ = decode(&b, &Limits::default());
        }

        #[test]
        fn round_trip(events in proptest::collection::vec(arb_event(), 0..8), m in arb_member(),
                      epoch in any::<u64>(), seq in any::<u64>(), counter in any::<u64>()) {
            let l = Limits::default();
            prop_assert_eq!(decode(&encode_answer(&m, epoch, seq), &l),
                            Ok(Message::Answer { epoch, round: seq, member: m.clone() }));
            let signed = test_auth().seal(crate::auth::Role::Answer, encode_answer(&m, epoch, seq));
            prop_assert_eq!(decode(&signed, &l),
                            Ok(Message::Answer { epoch, round: seq, member: m.clone() }));
            prop_assert_eq!(decode(&encode_delta(epoch, seq, counter, &events), &l),
                            Ok(Message::Delta { epoch, seq, counter, events: events.clone() }));
            let members: Vec<Member> = events.iter().map(|e| e.member.clone()).collect();
            let head = SnapshotHead { nonce: counter, epoch, seq, counter, interval_ms: 1000,
                                      warming: seq % 2 == 0, digest: 7 };
            let snap = encode_snapshot(&head, members.len(), &members);
            prop_assert_eq!(decode(&snap, &l), Ok(Message::Snapshot(Snapshot {
                nonce: counter, epoch, seq, counter, interval_ms: 1000, warming: seq % 2 == 0,
                digest: 7, members })));
            let one = events.first().cloned().unwrap_or(Event {
                kind: EventKind::Joined, reason: Reason::None, member: m.clone() });
            prop_assert_eq!(event_len(&one) + DELTA_HEADER_LEN,
                encode_delta(1, 1, 1, &[one]).len() + crate::auth::TRAILER_LEN);
        }
    }
}
