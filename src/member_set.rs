//! One member set, shared by the server's [`crate::member_table::MemberTable`], the
//! subscriber's [`crate::replica::Replica`] and the [`crate::merge::Merge`]: members
//! by name, each with its hash, plus the set's digest kept up to date in O(1) per
//! change. Pure data, no sockets.
//!
//! The set may carry a value of type `X` beside each member (the table keeps a
//! member's connection and missed rounds there); replicas use `X = ()`.

use std::collections::BTreeMap;

use crate::member::{member_hash, Event, EventKind, Member, Reason};

struct Slot<X> {
    member: Member,
    hash: u64,
    extra: X,
}

/// Members by name with an incremental digest (`docs/PROTOCOL.md` § Digest).
pub struct MemberSet<X = ()> {
    members: BTreeMap<String, Slot<X>>,
    digest: u64,
}

impl<X> Default for MemberSet<X> {
    fn default() -> Self {
        MemberSet {
            members: BTreeMap::new(),
            digest: 0,
        }
    }
}

impl<X> MemberSet<X> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `m` with `extra`, replacing the member of that name (returned, with its
    /// extra value).
    pub fn put_with(&mut self, m: Member, extra: X) -> Option<(Member, X)> {
        let hash = member_hash(&m);
        self.digest = self.digest.wrapping_add(hash);
        let old = self.members.insert(
            m.name.clone(),
            Slot {
                member: m,
                hash,
                extra,
            },
        );
        old.map(|o| {
            self.digest = self.digest.wrapping_sub(o.hash);
            (o.member, o.extra)
        })
    }

    /// Replaces the member of `m`'s name by `m`, keeping its extra value. Returns the
    /// old member; does nothing (and returns `None`) when there is no such member.
    pub fn replace(&mut self, m: Member) -> Option<Member> {
        let slot = self.members.get_mut(&m.name)?;
        let hash = member_hash(&m);
        self.digest = self.digest.wrapping_sub(slot.hash).wrapping_add(hash);
        slot.hash = hash;
        Some(std::mem::replace(&mut slot.member, m))
    }

    /// Removes the member called `name`, with its extra value.
    pub fn take_with(&mut self, name: &str) -> Option<(Member, X)> {
        self.members.remove(name).map(|s| {
            self.digest = self.digest.wrapping_sub(s.hash);
            (s.member, s.extra)
        })
    }

    /// Removes the member called `name`.
    pub fn take(&mut self, name: &str) -> Option<Member> {
        self.take_with(name).map(|(m, _)| m)
    }

    /// The member called `name`.
    pub fn get(&self, name: &str) -> Option<&Member> {
        self.members.get(name).map(|s| &s.member)
    }

    /// True when a member is called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// The extra value of the member called `name`.
    pub fn extra(&self, name: &str) -> Option<&X> {
        self.members.get(name).map(|s| &s.extra)
    }

    /// The extra value of the member called `name`, to change it.
    pub fn extra_mut(&mut self, name: &str) -> Option<&mut X> {
        self.members.get_mut(name).map(|s| &mut s.extra)
    }

    /// Every name with its extra value, sorted by name.
    pub fn extras_mut(&mut self) -> impl Iterator<Item = (&str, &mut X)> + '_ {
        self.members
            .iter_mut()
            .map(|(n, s)| (n.as_str(), &mut s.extra))
    }

    /// Members sorted by name.
    pub fn members(&self) -> impl Iterator<Item = &Member> + '_ {
        self.members.values().map(|s| &s.member)
    }

    /// Names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.members.keys().map(String::as_str)
    }

    /// Names, sorted, as owned strings (the peer list).
    pub fn peers(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    /// Digest of the set: the wrapping sum of its member hashes.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl MemberSet<()> {
    /// Puts `m`, replacing the member of that name (returned).
    pub fn put(&mut self, m: Member) -> Option<Member> {
        self.put_with(m, ()).map(|(m, ())| m)
    }

    /// Applies one event as a replica does: `joined` and `updated` put the member;
    /// `left` removes it only when the incarnation matches (a restart's `left`
    /// names the old incarnation, the `joined` after it the new one). Returns true
    /// when the set changed.
    pub fn apply(&mut self, e: &Event) -> bool {
        match e.kind {
            EventKind::Joined | EventKind::Updated => {
                self.get(&e.member.name) != Some(&e.member) && {
                    self.put(e.member.clone());
                    true
                }
            }
            EventKind::Left => {
                self.get(&e.member.name).map(|m| m.incarnation) == Some(e.member.incarnation)
                    && self.take(&e.member.name).is_some()
            }
        }
    }

    /// Makes the set exactly `members` and returns the difference as events:
    /// first the `left` ones (reason none), then joins, restarts and updates, each
    /// group sorted by name.
    pub fn replace_all(&mut self, members: Vec<Member>) -> Vec<Event> {
        let incoming: BTreeMap<String, Member> =
            members.into_iter().map(|m| (m.name.clone(), m)).collect();
        let gone: Vec<String> = self
            .names()
            .filter(|n| !incoming.contains_key(*n))
            .map(str::to_owned)
            .collect();
        let mut events = Vec::new();
        for name in gone {
            if let Some(m) = self.take(&name) {
                events.push(Event::left(m, Reason::None));
            }
        }
        for (_, m) in incoming {
            let old = self.put(m.clone());
            Event::change(old, m, &mut events);
        }
        events
    }
}

impl Event {
    /// `joined` of `m` with `reason`.
    pub fn joined(m: Member, reason: Reason) -> Event {
        Event {
            kind: EventKind::Joined,
            reason,
            member: m,
        }
    }

    /// `left` of `m` with `reason`.
    pub fn left(m: Member, reason: Reason) -> Event {
        Event {
            kind: EventKind::Left,
            reason,
            member: m,
        }
    }

    /// `updated` of `m`.
    pub fn updated(m: Member) -> Event {
        Event {
            kind: EventKind::Updated,
            reason: Reason::None,
            member: m,
        }
    }

    /// A restart: `left(restarted)` of the old incarnation, then
    /// `joined(restarted)` of the new one.
    pub fn restart(old: Member, new: Member) -> [Event; 2] {
        [
            Event::left(old, Reason::Restarted),
            Event::joined(new, Reason::Restarted),
        ]
    }

    /// The events that turn `old` (None: absent) into `new`: a join, a restart
    /// pair, an update, or nothing when they are equal.
    pub fn change(old: Option<Member>, new: Member, out: &mut Vec<Event>) {
        match old {
            None => out.push(Event::joined(new, Reason::None)),
            Some(o) if o == new => {}
            Some(o) if o.incarnation != new.incarnation => out.extend(Event::restart(o, new)),
            Some(_) => out.push(Event::updated(new)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::digest;

    fn m(name: &str, inc: u64) -> Member {
        Member::new(name, inc)
    }

    #[test]
    fn digest_follows_every_change() {
        let mut s = MemberSet::new();
        assert_eq!(s.put(m("b", 1)), None);
        assert_eq!(s.put(m("a", 1)), None);
        assert_eq!(s.put(m("a", 2)), Some(m("a", 1)));
        assert_eq!(s.digest(), digest([&m("a", 2), &m("b", 1)]));
        assert_eq!(s.names().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(s.take("b"), Some(m("b", 1)));
        assert_eq!(s.take("b"), None);
        assert_eq!(s.replace(m("zz", 1)), None);
        assert_eq!((s.len(), s.digest()), (1, digest([&m("a", 2)])));
        s.take("a");
        assert!(s.is_empty() && s.digest() == 0);
    }

    #[test]
    fn extra_values_survive_replace() {
        let mut s: MemberSet<u32> = MemberSet::new();
        s.put_with(m("a", 1), 7);
        *s.extra_mut("a").unwrap() += 1;
        assert_eq!(s.replace(m("a", 2)), Some(m("a", 1)));
        assert_eq!(s.extra("a"), Some(&8));
        assert_eq!(s.take_with("a"), Some((m("a", 2), 8)));
    }

    #[test]
    fn apply_removes_only_the_incarnation_a_left_names() {
        let mut s = MemberSet::new();
        assert!(s.apply(&Event::joined(m("a", 2), Reason::None)));
        assert!(!s.apply(&Event::joined(m("a", 2), Reason::None)));
        assert!(!s.apply(&Event::left(m("a", 1), Reason::Restarted)));
        assert_eq!(s.get("a"), Some(&m("a", 2)));
        assert!(s.apply(&Event::left(m("a", 2), Reason::Closed)));
        assert!(s.is_empty());
    }

    #[test]
    fn replace_all_reports_the_difference_left_first() {
        let mut s = MemberSet::new();
        s.put(m("a", 1));
        s.put(m("b", 1));
        let mut c = m("c", 1);
        s.put(c.clone());
        c.metadata.insert("k".into(), "v".into());
        let ev = s.replace_all(vec![m("d", 1), c, m("b", 2)]);
        let got: Vec<_> = ev
            .iter()
            .map(|e| {
                (
                    e.kind,
                    e.reason,
                    e.member.name.as_str(),
                    e.member.incarnation,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (EventKind::Left, Reason::None, "a", 1),
                (EventKind::Left, Reason::Restarted, "b", 1),
                (EventKind::Joined, Reason::Restarted, "b", 2),
                (EventKind::Updated, Reason::None, "c", 1),
                (EventKind::Joined, Reason::None, "d", 1),
            ]
        );
        assert_eq!(s.digest(), digest(s.members()));
    }
}
