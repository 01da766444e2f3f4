//! The server's member table: pure data, no sockets. It takes answers, closed
//! connections and round ends, and returns the events they cause. Every operation
//! costs O(log N) per member it changes, whatever the table size (each connection
//! keeps a hash set of its members, so unlinking one is O(1)); `end_round` visits
//! each member once.
//!
//! Three caps bound what any peer can make it hold: members in all, members per
//! connection, and the encoded size of all members (the snapshot's size, so the
//! table never outgrows what subscribers accept).

use std::collections::{HashMap, HashSet};

use crate::member::{Event, Member, Reason};
use crate::member_set::MemberSet;
use crate::wire::member_len;

/// What the table keeps beside each member.
struct Liveness {
    /// The connection its latest answer came through.
    pipe: u32,
    /// Answered since the last round ended.
    seen: bool,
    /// Consecutive rounds without an answer.
    missed: u32,
}

/// Why an answer was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The table holds `max_members` already.
    Full,
    /// Taking it would make the members' encoded size exceed the byte budget.
    Budget,
    /// Its connection already carries `per_connection` members.
    PerConnection,
}

/// The live member set of one server.
pub struct MemberTable {
    members: MemberSet<Liveness>,
    by_pipe: HashMap<u32, HashSet<String>>,
    /// Encoded size of all members (as in a snapshot).
    bytes: usize,
    evict_after: u32,
    max_members: usize,
    per_connection: usize,
    max_bytes: usize,
}

impl MemberTable {
    /// An empty table that evicts after `evict_after` consecutive missed rounds and
    /// holds at most `max_members`. No other cap until set below.
    pub fn new(evict_after: u32, max_members: usize) -> MemberTable {
        MemberTable {
            members: MemberSet::new(),
            by_pipe: HashMap::new(),
            bytes: 0,
            evict_after: evict_after.max(1),
            max_members,
            per_connection: usize::MAX,
            max_bytes: usize::MAX,
        }
    }

    /// At most `n` members per connection (a member counts on the connection its
    /// latest answer came through).
    pub fn per_connection(mut self, n: usize) -> MemberTable {
        self.per_connection = n.max(1);
        self
    }

    /// At most `n` bytes of encoded members (the snapshot's body).
    pub fn max_bytes(mut self, n: usize) -> MemberTable {
        self.max_bytes = n;
        self
    }

    /// Encoded size of all members, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Members whose latest answer came through connection `pipe`.
    pub fn pipe_members(&self, pipe: u32) -> usize {
        self.by_pipe.get(&pipe).map_or(0, HashSet::len)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Digest of the member set (kept up to date in O(1) per change).
    pub fn digest(&self) -> u64 {
        self.members.digest()
    }

    /// True when some member's latest answer came through connection `pipe`.
    pub fn has_pipe(&self, pipe: u32) -> bool {
        self.by_pipe.contains_key(&pipe)
    }

    /// The connection member `name` answers on, if it is here.
    pub fn pipe_of(&self, name: &str) -> Option<u32> {
        self.members.extra(name).map(|l| l.pipe)
    }

    /// Members sorted by name.
    pub fn members(&self) -> impl Iterator<Item = &Member> + '_ {
        self.members.members()
    }

    /// Member names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.members.names()
    }

    /// Consecutive rounds `name` has missed so far (None: not a member).
    pub fn missed(&self, name: &str) -> Option<u32> {
        self.members.extra(name).map(|e| e.missed)
    }

    fn unlink_pipe(&mut self, pipe: u32, name: &str) {
        if let Some(names) = self.by_pipe.get_mut(&pipe) {
            names.remove(name);
            if names.is_empty() {
                self.by_pipe.remove(&pipe);
            }
        }
    }

    /// Whether connection `pipe` may carry one more member.
    fn pipe_has_room(&self, pipe: u32) -> bool {
        self.pipe_members(pipe) < self.per_connection
    }

    /// An answer from `member` through connection `pipe`: a join, an update, a
    /// restart (new incarnation), or just a sign of life.
    pub fn answer(
        &mut self,
        pipe: u32,
        member: Member,
        out: &mut Vec<Event>,
    ) -> Result<(), Refused> {
        let size = member_len(&member);
        if let Some(old) = self.members.get(&member.name) {
            let old_size = member_len(old);
            let old_pipe = self.members.extra(&member.name).map_or(pipe, |l| l.pipe);
            if old_pipe != pipe && !self.pipe_has_room(pipe) {
                return Err(Refused::PerConnection);
            }
            let live = self.members.extra_mut(&member.name).expect("present");
            // Alive, whatever happens to the change.
            live.seen = true;
            live.missed = 0;
            if self.bytes - old_size + size > self.max_bytes {
                // The change does not fit: keep the old form.
                return Err(Refused::Budget);
            }
            self.bytes = self.bytes - old_size + size;
            live.pipe = pipe;
            let name = member.name.clone();
            if self.members.get(&name) != Some(&member) {
                let old = self.members.replace(member.clone());
                Event::change(old, member, out);
            }
            if old_pipe != pipe {
                self.unlink_pipe(old_pipe, &name);
                self.by_pipe.entry(pipe).or_default().insert(name);
            }
            return Ok(());
        }
        if !self.pipe_has_room(pipe) {
            return Err(Refused::PerConnection);
        }
        if self.members.len() >= self.max_members {
            return Err(Refused::Full);
        }
        if self.bytes + size > self.max_bytes {
            return Err(Refused::Budget);
        }
        self.bytes += size;
        self.by_pipe
            .entry(pipe)
            .or_default()
            .insert(member.name.clone());
        out.push(Event::joined(member.clone(), Reason::None));
        self.members.put_with(
            member,
            Liveness {
                pipe,
                seen: true,
                missed: 0,
            },
        );
        Ok(())
    }

    fn remove(&mut self, name: &str, reason: Reason, out: &mut Vec<Event>) {
        if let Some((m, live)) = self.members.take_with(name) {
            self.bytes -= member_len(&m);
            self.unlink_pipe(live.pipe, name);
            out.push(Event::left(m, reason));
        }
    }

    /// Connection `pipe` closed: every member whose latest answer came through it
    /// leaves with reason `closed`, at once.
    pub fn pipe_closed(&mut self, pipe: u32, out: &mut Vec<Event>) {
        if let Some(names) = self.by_pipe.remove(&pipe) {
            for name in names {
                if let Some(m) = self.members.take(&name) {
                    self.bytes -= member_len(&m);
                    out.push(Event::left(m, Reason::Closed));
                }
            }
        }
    }

    /// A regular survey round ended: members that did not answer since the last
    /// round end miss one more; at `evict_after` misses they leave with reason `timeout`.
    pub fn end_round(&mut self, out: &mut Vec<Event>) {
        let mut evict = Vec::new();
        for (name, e) in self.members.extras_mut() {
            if e.seen {
                e.seen = false;
                e.missed = 0;
            } else {
                e.missed += 1;
                if e.missed >= self.evict_after {
                    evict.push(name.to_owned());
                }
            }
        }
        for name in evict {
            self.remove(&name, Reason::Timeout, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::{digest, EventKind};

    fn m(name: &str, inc: u64) -> Member {
        Member::new(name, inc)
    }

    fn kinds(ev: &[Event]) -> Vec<(EventKind, Reason, &str)> {
        ev.iter()
            .map(|e| (e.kind, e.reason, e.member.name.as_str()))
            .collect()
    }

    #[test]
    fn join_update_restart_and_digest() {
        let mut t = MemberTable::new(3, 10);
        let mut out = Vec::new();
        t.answer(1, m("b", 1), &mut out).unwrap();
        t.answer(2, m("a", 1), &mut out).unwrap();
        t.answer(2, m("a", 1), &mut out).unwrap(); // sign of life only
        assert_eq!(
            kinds(&out),
            vec![
                (EventKind::Joined, Reason::None, "b"),
                (EventKind::Joined, Reason::None, "a")
            ]
        );
        assert_eq!(t.names().collect::<Vec<_>>(), vec!["a", "b"]);
        out.clear();
        let mut a2 = m("a", 1);
        a2.metadata.insert("k".into(), "v".into());
        t.answer(2, a2, &mut out).unwrap();
        assert_eq!(kinds(&out), vec![(EventKind::Updated, Reason::None, "a")]);
        out.clear();
        t.answer(3, m("a", 9), &mut out).unwrap();
        assert_eq!(
            kinds(&out),
            vec![
                (EventKind::Left, Reason::Restarted, "a"),
                (EventKind::Joined, Reason::Restarted, "a")
            ]
        );
        assert_eq!(out[0].member.incarnation, 1);
        assert_eq!(out[1].member.incarnation, 9);
        assert_eq!(t.digest(), digest(t.members()));
    }

    #[test]
    fn closed_connection_removes_only_members_last_seen_on_it() {
        let mut t = MemberTable::new(3, 10);
        let mut out = Vec::new();
        t.answer(1, m("a", 1), &mut out).unwrap();
        t.answer(2, m("b", 1), &mut out).unwrap();
        // "b" restarts on a new connection before the old one is noticed closed.
        t.answer(3, m("b", 2), &mut out).unwrap();
        out.clear();
        t.pipe_closed(2, &mut out);
        assert!(
            out.is_empty(),
            "old connection of b must not remove the new b"
        );
        t.pipe_closed(1, &mut out);
        assert_eq!(kinds(&out), vec![(EventKind::Left, Reason::Closed, "a")]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.digest(), digest(t.members()));
    }

    #[test]
    fn eviction_after_k_missed_rounds_not_before() {
        let mut t = MemberTable::new(3, 10);
        let mut out = Vec::new();
        t.answer(1, m("quiet", 1), &mut out).unwrap();
        t.answer(2, m("chatty", 1), &mut out).unwrap();
        out.clear();
        t.end_round(&mut out); // both seen in round 1
        for _ in 0..2 {
            t.answer(2, m("chatty", 1), &mut out).unwrap();
            t.end_round(&mut out);
        }
        assert!(out.is_empty(), "two misses are not enough: {out:?}");
        t.answer(2, m("chatty", 1), &mut out).unwrap();
        t.end_round(&mut out);
        assert_eq!(
            kinds(&out),
            vec![(EventKind::Left, Reason::Timeout, "quiet")]
        );
        assert_eq!(t.names().collect::<Vec<_>>(), vec!["chatty"]);
        // One answer resets the count: no flapping on a single miss.
        out.clear();
        t.end_round(&mut out);
        t.answer(2, m("chatty", 1), &mut out).unwrap();
        t.end_round(&mut out);
        t.end_round(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn full_table_refuses_new_members_but_keeps_old_ones() {
        let mut t = MemberTable::new(3, 2);
        let mut out = Vec::new();
        t.answer(1, m("a", 1), &mut out).unwrap();
        t.answer(2, m("b", 1), &mut out).unwrap();
        assert_eq!(t.answer(3, m("c", 1), &mut out), Err(Refused::Full));
        assert!(t.answer(1, m("a", 1), &mut out).is_ok());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn per_connection_cap_and_byte_budget() {
        let one = member_len(&m("a", 1));
        let mut t = MemberTable::new(3, 100)
            .per_connection(2)
            .max_bytes(3 * one);
        let mut out = Vec::new();
        t.answer(1, m("a", 1), &mut out).unwrap();
        t.answer(1, m("b", 1), &mut out).unwrap();
        assert_eq!(
            t.answer(1, m("c", 1), &mut out),
            Err(Refused::PerConnection)
        );
        // "a" may not move onto connection 1 again (it is there) — a sign of life.
        assert!(t.answer(1, m("a", 1), &mut out).is_ok());
        t.answer(2, m("c", 1), &mut out).unwrap();
        assert_eq!(t.bytes(), 3 * one);
        assert_eq!(t.answer(3, m("d", 1), &mut out), Err(Refused::Budget));
        // An update that does not fit keeps the old form.
        let mut big = m("c", 1);
        big.metadata.insert("k".into(), "v".into());
        assert_eq!(t.answer(2, big, &mut out), Err(Refused::Budget));
        assert!(t.members().all(|x| x.metadata.is_empty()));
        // Moving onto a full connection is refused too.
        assert_eq!(
            t.answer(1, m("c", 1), &mut out),
            Err(Refused::PerConnection)
        );
        t.pipe_closed(1, &mut out);
        assert_eq!((t.len(), t.bytes(), t.pipe_members(1)), (1, one, 0));
        t.answer(3, m("d", 1), &mut out).unwrap();
        assert_eq!(t.digest(), digest(t.members()));
    }

    #[test]
    fn evicting_many_members_of_one_connection_is_linear() {
        // 100,000 names on one connection, then silence: the eviction unlinks each
        // in O(1) (a Vec scan here took 13.8 s; see docs/BENCHMARKS.md).
        let n = 100_000;
        let mut t = MemberTable::new(1, n);
        let mut out = Vec::new();
        for i in 0..n {
            t.answer(7, m(&format!("name-{i}"), 1), &mut out).unwrap();
        }
        t.end_round(&mut out);
        out.clear();
        t.end_round(&mut out);
        assert_eq!(out.len(), n);
        assert!(t.is_empty() && !t.has_pipe(7) && t.bytes() == 0);
    }
}
