//! A subscriber's copy of the member set: pure data, no sockets. It applies
//! snapshots, numbered deltas, heartbeats and legacy full lists, and says when the
//! copy can no longer be trusted (a gap, a new epoch, a digest mismatch).

use crate::member::{Event, Member};
use crate::member_set::MemberSet;
use crate::wire::{Heartbeat, Snapshot};

/// What applying a publication did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Applied; these events changed the copy (may be empty).
    Applied(Vec<Event>),
    /// Already included (older or equal seq): nothing to do.
    Ignored,
    /// The copy is out of step and must be replaced by a fresh snapshot.
    Resync(Resync),
}

/// Why a resync is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// No snapshot applied yet.
    NotSynced,
    /// The server restarted (a new epoch).
    EpochChanged,
    /// One or more deltas were lost.
    Gap,
    /// Same position, different content.
    DigestMismatch,
}

/// The subscriber's copy.
#[derive(Default)]
pub struct Replica {
    epoch: Option<u64>,
    seq: u64,
    members: MemberSet,
}

impl Replica {
    /// An empty, unsynced copy.
    pub fn new() -> Replica {
        Replica::default()
    }

    /// `(epoch, seq)` of the last applied publication; epoch 0 before any.
    pub fn position(&self) -> (u64, u64) {
        (self.epoch.unwrap_or(0), self.seq)
    }

    /// True once a snapshot (or a legacy list) has been applied.
    pub fn is_synced(&self) -> bool {
        self.epoch.is_some()
    }

    /// Forgets the position (keeps the members, so the next snapshot is applied as a diff).
    pub fn unsync(&mut self) {
        self.epoch = None;
    }

    /// The member set.
    pub fn set(&self) -> &MemberSet {
        &self.members
    }

    /// Members sorted by name.
    pub fn members(&self) -> impl Iterator<Item = &Member> + '_ {
        self.members.members()
    }

    /// The member called `name`.
    pub fn get(&self, name: &str) -> Option<&Member> {
        self.members.get(name)
    }

    /// Names, sorted.
    pub fn peers(&self) -> Vec<String> {
        self.members.peers()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Digest of the copy.
    pub fn digest(&self) -> u64 {
        self.members.digest()
    }

    /// Applies a snapshot: the copy becomes exactly the snapshot. Returns the
    /// difference, or `Err(DigestMismatch)` when the snapshot contradicts its own digest.
    pub fn apply_snapshot(&mut self, s: Snapshot) -> Result<Vec<Event>, Resync> {
        let events = self.members.replace_all(s.members);
        self.epoch = Some(s.epoch);
        self.seq = s.seq;
        if self.members.digest() != s.digest {
            self.epoch = None;
            return Err(Resync::DigestMismatch);
        }
        Ok(events)
    }

    /// Applies a legacy full list (no epoch, no seq: every message is the whole set).
    pub fn apply_legacy(&mut self, names: Vec<String>) -> Vec<Event> {
        let members = names.into_iter().map(|n| Member::new(n, 0)).collect();
        let events = self.members.replace_all(members);
        self.epoch = Some(0);
        self.seq += 1;
        events
    }

    /// Applies one delta publication.
    pub fn apply_delta(&mut self, epoch: u64, seq: u64, events: Vec<Event>) -> Step {
        match self.epoch {
            None => return Step::Resync(Resync::NotSynced),
            Some(e) if e != epoch => return Step::Resync(Resync::EpochChanged),
            _ => {}
        }
        if seq <= self.seq {
            return Step::Ignored;
        }
        if seq != self.seq + 1 {
            return Step::Resync(Resync::Gap);
        }
        for e in &events {
            self.members.apply(e);
        }
        self.seq = seq;
        Step::Applied(events)
    }

    /// Checks a heartbeat against the copy.
    pub fn check_heartbeat(&self, h: &Heartbeat) -> Result<(), Resync> {
        match self.epoch {
            None => Err(Resync::NotSynced),
            Some(e) if e != h.epoch => Err(Resync::EpochChanged),
            // The heartbeat left the server after every delta up to h.seq: a
            // larger seq than ours means we lost one.
            _ if h.seq > self.seq => Err(Resync::Gap),
            _ if h.seq == self.seq
                && (h.digest != self.members.digest()
                    || h.count as usize != self.members.len()) =>
            {
                Err(Resync::DigestMismatch)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::{digest, EventKind, Reason};

    fn joined(name: &str, inc: u64) -> Event {
        Event {
            kind: EventKind::Joined,
            reason: Reason::None,
            member: Member::new(name, inc),
        }
    }

    fn snap(epoch: u64, seq: u64, members: Vec<Member>) -> Snapshot {
        Snapshot {
            nonce: 0,
            epoch,
            seq,
            counter: 0,
            interval_ms: 1000,
            warming: false,
            digest: digest(&members),
            members,
        }
    }

    #[test]
    fn snapshot_then_deltas_skipping_the_buffered_ones_already_included() {
        let mut r = Replica::new();
        assert_eq!(
            r.apply_delta(7, 1, vec![joined("a", 1)]),
            Step::Resync(Resync::NotSynced)
        );
        let ev = r
            .apply_snapshot(snap(7, 2, vec![Member::new("a", 1), Member::new("b", 1)]))
            .unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(r.apply_delta(7, 2, vec![joined("b", 1)]), Step::Ignored);
        assert!(
            matches!(r.apply_delta(7, 3, vec![joined("c", 1)]), Step::Applied(v) if v.len() == 1)
        );
        assert_eq!(r.peers(), vec!["a", "b", "c"]);
        assert_eq!(r.position(), (7, 3));
        let hb = Heartbeat {
            epoch: 7,
            seq: 3,
            counter: 0,
            interval_ms: 1000,
            warming: false,
            count: 3,
            digest: r.digest(),
        };
        assert_eq!(r.check_heartbeat(&hb), Ok(()));
    }

    #[test]
    fn gaps_epochs_and_digests_ask_for_a_resync() {
        let mut r = Replica::new();
        r.apply_snapshot(snap(7, 2, vec![Member::new("a", 1)]))
            .unwrap();
        assert_eq!(r.apply_delta(7, 4, vec![]), Step::Resync(Resync::Gap));
        assert_eq!(
            r.apply_delta(8, 3, vec![]),
            Step::Resync(Resync::EpochChanged)
        );
        let hb = Heartbeat {
            epoch: 7,
            seq: 3,
            counter: 0,
            interval_ms: 1000,
            warming: false,
            count: 1,
            digest: r.digest(),
        };
        assert_eq!(r.check_heartbeat(&hb), Err(Resync::Gap));
        let hb = Heartbeat {
            epoch: 7,
            seq: 2,
            counter: 0,
            interval_ms: 1000,
            warming: false,
            count: 1,
            digest: 1,
        };
        assert_eq!(r.check_heartbeat(&hb), Err(Resync::DigestMismatch));
        let mut bad = snap(9, 1, vec![Member::new("x", 1)]);
        bad.digest ^= 1;
        assert_eq!(r.apply_snapshot(bad), Err(Resync::DigestMismatch));
        assert!(!r.is_synced());
    }

    #[test]
    fn resync_reports_the_difference() {
        let mut r = Replica::new();
        r.apply_snapshot(snap(1, 1, vec![Member::new("a", 1), Member::new("b", 1)]))
            .unwrap();
        let ev = r
            .apply_snapshot(snap(2, 0, vec![Member::new("b", 5), Member::new("c", 1)]))
            .unwrap();
        let got: Vec<_> = ev
            .iter()
            .map(|e| (e.kind, e.reason, e.member.name.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (EventKind::Left, Reason::None, "a"),
                (EventKind::Left, Reason::Restarted, "b"),
                (EventKind::Joined, Reason::Restarted, "b"),
                (EventKind::Joined, Reason::None, "c"),
            ]
        );
    }

    #[test]
    fn restart_delta_keeps_the_new_incarnation() {
        let mut r = Replica::new();
        r.apply_snapshot(snap(1, 0, vec![Member::new("a", 1)]))
            .unwrap();
        let ev = vec![
            Event {
                kind: EventKind::Left,
                reason: Reason::Restarted,
                member: Member::new("a", 1),
            },
            Event {
                kind: EventKind::Joined,
                reason: Reason::Restarted,
                member: Member::new("a", 2),
            },
        ];
        assert!(matches!(r.apply_delta(1, 1, ev), Step::Applied(_)));
        assert_eq!(r.members().next().unwrap().incarnation, 2);
    }

    #[test]
    fn legacy_lists_are_full_sets() {
        let mut r = Replica::new();
        let ev = r.apply_legacy(vec!["a".into(), "b".into()]);
        assert_eq!(ev.len(), 2);
        let ev = r.apply_legacy(vec!["b".into()]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, EventKind::Left);
        assert_eq!(r.peers(), vec!["b"]);
    }
}
