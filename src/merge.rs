//! The merge of several servers' replicas into the one view an application sees:
//! pure data, no sockets, no clock (docs/PROTOCOL.md, "Several servers", rules 1–10).
//!
//! Each configured server `i` has a [`Replica`], a state (syncing, live, stale) and
//! a `warming` flag. Per-server steps go in through [`Merge::source`] (a snapshot,
//! a delta, a legacy list, a heartbeat, a state change, the end of warming); the
//! merged events come out of [`Merge::take_events`]. Only the names a step touched
//! are evaluated, except when a server's state or warming changes (then every name
//! of the view and of that server is).
//!
//! The rules, for a name `n`: `V(n)` = the live servers whose replica holds `n`;
//! `A` = the live servers that are not warming.
//! 1. `n` joins the view when it is not in it and `V(n)` is not empty.
//! 2. `n` leaves only when `V(n)` is empty and `A` is not (fail static: with no live
//!    server, or only warming ones, nothing is removed). One refinement: a live
//!    server's own `left` with reason `closed` or `timeout` counts even while that
//!    server warms — it saw the member go; warming only guards against absences.
//! 3. A `left` carries the reason of the per-server `left` that emptied `V(n)`;
//!    none when a server went stale, resynced or finished warming.
//! 4. The shown record is the greatest version `(incarnation, generation)` among
//!    `V(n)`, ties to the lowest server index; it never goes back while shown.
//! 5. A new shown incarnation is one restart pair; a newer generation one `updated`.
//!    A per-server event that does not change the view yields nothing.
//! 6. A per-server resync yields no event by itself, only changes of the view do.

use std::collections::{BTreeMap, BTreeSet};

use crate::member::{Event, EventKind, Member, Reason};
use crate::member_set::MemberSet;
use crate::replica::{Replica, Resync, Step};
use crate::subscriber::State;
use crate::wire::{Heartbeat, Snapshot};

struct Server {
    replica: Replica,
    state: State,
    warming: bool,
}

/// The merged view of several servers' replicas.
pub struct Merge {
    servers: Vec<Server>,
    view: MemberSet,
    events: Vec<Event>,
}

impl Merge {
    /// A merge of `n` servers (at least one), all syncing, nothing in the view.
    pub fn new(n: usize) -> Merge {
        Merge {
            servers: (0..n.max(1))
                .map(|_| Server {
                    replica: Replica::new(),
                    state: State::Syncing,
                    warming: false,
                })
                .collect(),
            view: MemberSet::new(),
            events: Vec::new(),
        }
    }

    /// Number of configured servers.
    pub fn servers(&self) -> usize {
        self.servers.len()
    }

    /// Server `i`'s replica.
    pub fn replica(&self, i: usize) -> &Replica {
        &self.servers[i].replica
    }

    /// Server `i`'s state.
    pub fn state(&self, i: usize) -> State {
        self.servers[i].state
    }

    /// Whether server `i` said it is warming (it may add members, not remove them).
    pub fn warming(&self, i: usize) -> bool {
        self.servers[i].warming
    }

    /// Number of live servers.
    pub fn live(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| s.state == State::Live)
            .count()
    }

    /// The merged view.
    pub fn view(&self) -> &MemberSet {
        &self.view
    }

    /// The merged events since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// A handle that applies server `i`'s steps and merges their effect.
    pub fn source(&mut self, i: usize) -> Source<'_> {
        Source { merge: self, i }
    }

    /// True when some live server is not warming (removals are allowed).
    fn may_remove(&self) -> bool {
        self.servers
            .iter()
            .any(|s| s.state == State::Live && !s.warming)
    }

    /// The record to show for `name`: greatest version among the live servers that
    /// hold it, ties to the lowest index.
    fn best(&self, name: &str) -> Option<&Member> {
        let mut best: Option<&Member> = None;
        for s in self.servers.iter().filter(|s| s.state == State::Live) {
            if let Some(m) = s.replica.get(name) {
                if best.is_none_or(|b| m.version() > b.version()) {
                    best = Some(m);
                }
            }
        }
        best
    }

    /// Applies rules 1–5 to `name`; `cause` is the reason of the per-server `left`
    /// that touched it in this step, if one did.
    fn evaluate(&mut self, name: &str, cause: Option<Reason>) {
        let best = self.best(name).cloned();
        match (self.view.get(name), best) {
            (None, None) => {}
            (None, Some(b)) => {
                self.view.put(b.clone());
                self.events.push(Event::joined(b, Reason::None));
            }
            (Some(_), None) => {
                // A per-server `left` with a reason (closed, timeout) is what that
                // server saw happen, warming or not; only an absence (a snapshot
                // without the name, a server gone stale) waits for a server that
                // has surveyed everyone.
                let seen_leaving = matches!(cause, Some(Reason::Closed | Reason::Timeout));
                if self.may_remove() || (seen_leaving && self.live() > 0) {
                    let m = self.view.take(name).expect("shown");
                    let reason = match cause {
                        Some(r @ (Reason::Closed | Reason::Timeout)) => r,
                        _ => Reason::None,
                    };
                    self.events.push(Event::left(m, reason));
                }
            }
            (Some(shown), Some(b)) => {
                if b != *shown && b.version() >= shown.version() {
                    let old = self.view.put(b.clone());
                    Event::change(old, b, &mut self.events);
                }
            }
        }
    }

    /// Evaluates every name of the view and of server `i` (after a change of its
    /// state or warming).
    fn evaluate_all(&mut self, i: usize) {
        let names: BTreeSet<String> = self
            .view
            .names()
            .chain(self.servers[i].replica.set().names())
            .map(str::to_owned)
            .collect();
        for n in names {
            self.evaluate(&n, None);
        }
    }

    /// Evaluates the names that per-server `events` touched.
    fn evaluate_events(&mut self, events: &[Event]) {
        let mut touched: BTreeMap<&str, Option<Reason>> = BTreeMap::new();
        for e in events {
            let cause = touched.entry(e.member.name.as_str()).or_default();
            if e.kind == EventKind::Left {
                *cause = Some(e.reason);
            }
        }
        for (name, cause) in touched {
            self.evaluate(name, cause);
        }
    }
}

/// Server `i`'s side of a [`Merge`]: what a per-server sync driver
/// ([`crate::sync::Driver`]) applies its publications and snapshots to.
pub struct Source<'a> {
    merge: &'a mut Merge,
    i: usize,
}

impl Source<'_> {
    fn server(&mut self) -> &mut Server {
        &mut self.merge.servers[self.i]
    }

    /// The replica of this server.
    pub fn replica(&self) -> &Replica {
        &self.merge.servers[self.i].replica
    }

    /// Applies a snapshot to the replica (rule 6: only changes of the view yield events).
    pub fn apply_snapshot(&mut self, s: Snapshot) -> Result<(), Resync> {
        match self.server().replica.apply_snapshot(s) {
            Ok(diff) => {
                self.merge.evaluate_events(&diff);
                Ok(())
            }
            Err(r) => {
                // A refused snapshot changed the replica too.
                self.merge.evaluate_all(self.i);
                Err(r)
            }
        }
    }

    /// Applies one delta to the replica; `Applied` carries the per-server events.
    pub fn apply_delta(&mut self, epoch: u64, seq: u64, events: Vec<Event>) -> Step {
        let step = self.server().replica.apply_delta(epoch, seq, events);
        if let Step::Applied(ev) = &step {
            let ev = ev.clone();
            self.merge.evaluate_events(&ev);
        }
        step
    }

    /// Applies a legacy full list (a legacy publisher is only ever the single source).
    pub fn apply_legacy(&mut self, names: Vec<String>) -> Vec<Event> {
        let ev = self.server().replica.apply_legacy(names);
        self.merge.evaluate_events(&ev);
        ev
    }

    /// Checks a heartbeat against the replica.
    pub fn check_heartbeat(&self, h: &Heartbeat) -> Result<(), Resync> {
        self.replica().check_heartbeat(h)
    }

    /// Forgets the replica's position (it will be replaced by the next snapshot).
    pub fn unsync(&mut self) {
        self.server().replica.unsync();
    }

    /// The server's state now.
    pub fn state(&self) -> State {
        self.merge.servers[self.i].state
    }

    /// Sets the server's state (rule 2 and 8: a stale server vouches for nothing).
    pub fn set_state(&mut self, state: State) {
        if self.server().state != state {
            self.server().state = state;
            self.merge.evaluate_all(self.i);
        }
    }

    /// Sets whether the server is warming (rule 7: when it ends, rule 2 runs for
    /// every name).
    pub fn set_warming(&mut self, warming: bool) {
        if self.server().warming != warming {
            self.server().warming = warming;
            self.merge.evaluate_all(self.i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::digest;
    use proptest::prelude::*;

    fn m(name: &str, inc: u64) -> Member {
        Member::new(name, inc)
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

    fn kinds(ev: &[Event]) -> Vec<(EventKind, Reason, &str, u64)> {
        ev.iter()
            .map(|e| {
                (
                    e.kind,
                    e.reason,
                    e.member.name.as_str(),
                    e.member.incarnation,
                )
            })
            .collect()
    }

    /// Two live servers, both holding `names` at seq 1.
    fn two(names: &[&str]) -> Merge {
        let mut g = Merge::new(2);
        for i in 0..2 {
            let mut s = g.source(i);
            s.apply_snapshot(snap(
                10 + i as u64,
                1,
                names.iter().map(|n| m(n, 1)).collect(),
            ))
            .unwrap();
            s.set_state(State::Live);
        }
        g
    }

    fn delta(g: &mut Merge, i: usize, seq: u64, events: Vec<Event>) -> Vec<Event> {
        let epoch = 10 + i as u64;
        assert!(matches!(
            g.source(i).apply_delta(epoch, seq, events),
            Step::Applied(_)
        ));
        g.take_events()
    }

    #[test]
    fn two_servers_reporting_one_change_give_one_event() {
        let mut g = two(&["a"]);
        assert_eq!(
            kinds(&g.take_events()),
            vec![(EventKind::Joined, Reason::None, "a", 1)]
        );
        let j = vec![Event::joined(m("b", 1), Reason::None)];
        assert_eq!(delta(&mut g, 1, 2, j.clone()).len(), 1);
        assert!(delta(&mut g, 0, 2, j).is_empty());
        let l = vec![Event::left(m("b", 1), Reason::Closed)];
        assert!(
            delta(&mut g, 0, 3, l.clone()).is_empty(),
            "server 1 still vouches"
        );
        assert_eq!(
            kinds(&delta(&mut g, 1, 3, l)),
            vec![(EventKind::Left, Reason::Closed, "b", 1)]
        );
        let r = Event::restart(m("a", 1), m("a", 2)).to_vec();
        assert_eq!(
            kinds(&delta(&mut g, 0, 4, r.clone())),
            vec![
                (EventKind::Left, Reason::Restarted, "a", 1),
                (EventKind::Joined, Reason::Restarted, "a", 2)
            ]
        );
        assert!(delta(&mut g, 1, 4, r).is_empty());
        // The lagging server's old record never shows again (rule 4).
        assert_eq!(g.view().get("a"), Some(&m("a", 2)));
    }

    #[test]
    fn a_stale_server_vouches_for_nothing_but_the_last_one_freezes_the_view() {
        let mut g = two(&["a", "b"]);
        g.take_events();
        // "b" cut off from server 1 only: nothing.
        assert!(delta(&mut g, 1, 2, vec![Event::left(m("b", 1), Reason::Timeout)]).is_empty());
        // Then server 0 dies: "b" has no live server left; its left has no reason.
        g.source(0).set_state(State::Stale);
        assert_eq!(
            kinds(&g.take_events()),
            vec![(EventKind::Left, Reason::None, "b", 1)]
        );
        assert_eq!(g.live(), 1);
        // Both dead: the view freezes.
        g.source(1).set_state(State::Stale);
        assert!(g.take_events().is_empty());
        assert_eq!(g.view().peers(), vec!["a"]);
    }

    #[test]
    fn a_warming_server_adds_but_never_removes_until_warming_ends() {
        let mut g = two(&["a", "b"]);
        g.take_events();
        g.source(0).set_state(State::Stale);
        g.source(1).set_state(State::Stale);
        // Server 0 comes back, restarted, warming: it has seen only "a" so far.
        let mut s = g.source(0);
        s.set_warming(true);
        s.apply_snapshot(snap(20, 0, vec![m("a", 1), m("c", 1)]))
            .unwrap();
        s.set_state(State::Live);
        assert_eq!(
            kinds(&g.take_events()),
            vec![(EventKind::Joined, Reason::None, "c", 1)]
        );
        assert_eq!(g.view().peers(), vec!["a", "b", "c"]);
        g.source(0).set_warming(false);
        assert_eq!(
            kinds(&g.take_events()),
            vec![(EventKind::Left, Reason::None, "b", 1)]
        );
    }

    #[test]
    fn a_warming_server_still_reports_a_member_it_saw_leave() {
        let mut g = Merge::new(1);
        let mut s = g.source(0);
        s.set_warming(true);
        s.apply_snapshot(snap(10, 1, vec![m("a", 1), m("b", 1)]))
            .unwrap();
        s.set_state(State::Live);
        g.take_events();
        // Its connection closed: the server saw it go.
        let l = vec![Event::left(m("a", 1), Reason::Closed)];
        assert_eq!(
            kinds(&delta(&mut g, 0, 2, l)),
            vec![(EventKind::Left, Reason::Closed, "a", 1)]
        );
        // Absent from a resync of the still-warming server: kept.
        g.source(0).apply_snapshot(snap(10, 3, vec![])).unwrap();
        assert!(g.take_events().is_empty());
        g.source(0).set_warming(false);
        assert_eq!(
            kinds(&g.take_events()),
            vec![(EventKind::Left, Reason::None, "b", 1)]
        );
    }

    #[test]
    fn a_resync_yields_only_the_changes_of_the_view() {
        let mut g = two(&["a", "b"]);
        g.take_events();
        // Server 1 resyncs to a new epoch without "b"; server 0 still has it.
        g.source(1)
            .apply_snapshot(snap(30, 0, vec![m("a", 1)]))
            .unwrap();
        assert!(g.take_events().is_empty());
        assert_eq!(g.replica(1).position(), (30, 0));
    }

    /// A change of the world: (name index, what).
    #[derive(Debug, Clone, Copy)]
    enum Change {
        Join,
        Leave(Reason),
        Restart,
        Update,
    }

    /// The per-change events, from a world that starts empty; each turns an
    /// invalid change (leave an absent name…) into a join.
    fn world(changes: &[(usize, u8)]) -> (Vec<Vec<Event>>, Vec<Vec<Member>>, usize) {
        let names = ["a", "b", "c"];
        let mut now: BTreeMap<&str, Member> = BTreeMap::new();
        let (mut evs, mut states, mut expected) = (Vec::new(), Vec::new(), 0);
        for (k, &(ni, what)) in changes.iter().enumerate() {
            let name = names[ni % 3];
            let inc = k as u64 + 1;
            let ch = match (now.get(name), what % 5) {
                (None, _) => Change::Join,
                (Some(_), 0) => Change::Leave(Reason::Closed),
                (Some(_), 1) => Change::Leave(Reason::Timeout),
                (Some(_), 2) => Change::Restart,
                _ => Change::Update,
            };
            let ev = match ch {
                Change::Join => vec![Event::joined(m(name, inc), Reason::None)],
                Change::Leave(r) => vec![Event::left(now[name].clone(), r)],
                Change::Restart => Event::restart(now[name].clone(), m(name, inc)).to_vec(),
                Change::Update => {
                    let mut u = now[name].clone();
                    u.metadata.insert("k".into(), k.to_string());
                    u.generation += 1;
                    vec![Event::updated(u)]
                }
            };
            for e in &ev {
                match e.kind {
                    EventKind::Left => now.remove(name),
                    _ => now.insert(name, e.member.clone()),
                };
            }
            expected += ev.len();
            evs.push(ev);
            states.push(now.values().cloned().collect());
        }
        (evs, states, expected)
    }

    /// Runs every server through every change, in an order picked by `picks`.
    /// A server may not apply a change of a name before every server has applied
    /// the previous change of that name. `resync[k]`: server `k % n` gets change
    /// `k` as a snapshot instead of a delta. `blips`: (pick, server) — that server
    /// goes stale and comes back live at that point.
    fn run(
        n: usize,
        changes: &[(usize, u8)],
        picks: &[u8],
        resync: &[bool],
        blips: &[(u8, u8)],
    ) -> (Merge, Vec<Event>) {
        let (evs, states, _) = world(changes);
        let mut g = Merge::new(n);
        for i in 0..n {
            let mut s = g.source(i);
            s.apply_snapshot(snap(i as u64 + 1, 0, vec![])).unwrap();
            s.set_state(State::Live);
        }
        let mut done = vec![0usize; n];
        let mut out = Vec::new();
        let mut step = 0usize;
        while done.iter().any(|&d| d < evs.len()) {
            let enabled: Vec<usize> = (0..n)
                .filter(|&i| {
                    let k = done[i];
                    k < evs.len()
                        && (0..k).all(|j| {
                            changes[j].0 % 3 != changes[k].0 % 3 || done.iter().all(|&d| d > j)
                        })
                })
                .collect();
            let i = enabled[picks.get(step).copied().unwrap_or(0) as usize % enabled.len()];
            for &(at, who) in blips {
                if at as usize == step {
                    let s = who as usize % n;
                    g.source(s).set_state(State::Stale);
                    g.source(s).set_state(State::Live);
                }
            }
            let k = done[i];
            let epoch = i as u64 + 1;
            if resync.get(k).copied().unwrap_or(false) && k % n == i {
                g.source(i)
                    .apply_snapshot(snap(epoch, k as u64 + 1, states[k].clone()))
                    .unwrap();
            } else {
                let st = g.source(i).apply_delta(epoch, k as u64 + 1, evs[k].clone());
                assert!(matches!(st, Step::Applied(_)), "{st:?}");
            }
            out.extend(g.take_events());
            done[i] += 1;
            step += 1;
        }
        (g, out)
    }

    /// Servers, changes, two pick lists, resync flags, stale blips.
    type Case = (
        usize,
        Vec<(usize, u8)>,
        Vec<u8>,
        Vec<u8>,
        Vec<bool>,
        Vec<(u8, u8)>,
    );

    fn arb() -> impl Strategy<Value = Case> {
        (
            2usize..=3,
            prop::collection::vec((0usize..3, any::<u8>()), 0..30),
            prop::collection::vec(any::<u8>(), 0..90),
            prop::collection::vec(any::<u8>(), 0..90),
            prop::collection::vec(any::<bool>(), 0..30),
            prop::collection::vec((any::<u8>(), any::<u8>()), 0..4),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Any interleaving that ends in the same per-server states (with
        /// resyncs and stale blips on the way) gives the same merged view: the world's.
        #[test]
        fn interleavings_end_in_the_same_view((n, changes, p1, p2, resync, blips) in arb()) {
            let (_, states, _) = world(&changes);
            let want: Vec<Member> = states.last().cloned().unwrap_or_default();
            let (g1, _) = run(n, &changes, &p1, &resync, &blips);
            let (g2, _) = run(n, &changes, &p2, &[], &[]);
            let v1: Vec<Member> = g1.view().members().cloned().collect();
            let v2: Vec<Member> = g2.view().members().cloned().collect();
            prop_assert_eq!(&v1, &want);
            prop_assert_eq!(&v2, &want);
            prop_assert_eq!(g1.view().digest(), digest(&want));
        }

        /// Each real change gives exactly one merged event (a restart: one pair),
        /// of the same kind, in the same order per name, whatever the interleaving
        /// and the resyncs.
        #[test]
        fn each_change_gives_one_merged_event((n, changes, picks, _, resync, _) in arb()) {
            let (evs, _, expected) = world(&changes);
            let (_, out) = run(n, &changes, &picks, &resync, &[]);
            prop_assert_eq!(out.len(), expected, "{:?}", out);
            for name in ["a", "b", "c"] {
                let want: Vec<(EventKind, u64)> = evs.iter().flatten()
                    .filter(|e| e.member.name == name)
                    .map(|e| (e.kind, e.member.incarnation)).collect();
                let got: Vec<(EventKind, u64)> = out.iter()
                    .filter(|e| e.member.name == name)
                    .map(|e| (e.kind, e.member.incarnation)).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
