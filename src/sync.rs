//! One server's sync driver, the Clone pattern as a pure type: no sockets, no clock
//! (the time is an argument). Inputs — the subscription connected, a publication, a
//! snapshot reply (or its failure), time passing — go in with [`Driver::step`]; it
//! applies them to that server's side of a [`Merge`](crate::merge::Merge) and returns the actions the
//! caller carries out: request a snapshot, deliver a change, back off.
//!
//! It owns what the subscriber's loop used to: whether a snapshot is needed or in
//! flight, the publications kept while one is awaited, the back-off of failed
//! requests and the staleness timer (`docs/PROTOCOL.md` § Subscriber algorithm).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::member::Limits;
use crate::merge::Source;
use crate::replica::{Resync, Step};
use crate::subscriber::State;
use crate::wire::{self, Message, Snapshot};

/// Publications kept while a snapshot is awaited; past this many, the oldest are
/// dropped (the gap then forces another snapshot).
pub const MAX_PENDING: usize = 100_000;

/// First wait after a failed snapshot request; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between snapshot requests.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// A snapshot is requested at the latest this long after the start, connected or not.
pub const CONNECT_WAIT: Duration = Duration::from_secs(1);

/// What happened.
#[derive(Debug)]
pub enum Input {
    /// The subscription and the snapshot socket are connected (a new snapshot
    /// connection also retries a failed request at once).
    Connected,
    /// A publication, in arrival order.
    Publication(Vec<u8>),
    /// A snapshot reply, or why there is none.
    Snapshot(Result<Snapshot, String>),
    /// Time passed (see [`Driver::wake_at`]).
    Tick,
}

/// What the caller does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a snapshot request; its outcome comes back as [`Input::Snapshot`].
    RequestSnapshot,
    /// The server's replica or state changed: tell the application (`snapshot`:
    /// the change came from a snapshot, the first one or a resync).
    Deliver {
        /// From a snapshot.
        snapshot: bool,
    },
    /// The next snapshot request waits until then.
    Backoff(Instant),
    /// The replica is out of step; a snapshot will replace it.
    Resync(Resync),
    /// A publication was dropped as malformed (why).
    Dropped(String),
    /// A publication was dropped as a replay (why): its counter is not above
    /// the last of its epoch, or its epoch is not confirmed and a resync for an
    /// epoch went out less than an interval ago.
    Replayed(String),
}

/// See `Driver::confirmed`.
#[derive(Debug, Clone, Copy)]
struct Confirmed {
    epoch: u64,
    snapshot: u64,
    last: u64,
}

/// One server's sync driver.
pub struct Driver {
    /// A legacy publisher: no snapshots, no heartbeats; every message is the full set.
    legacy: bool,
    limits: Limits,
    stale_after: u32,
    started: Instant,
    connected: bool,
    need_sync: bool,
    in_flight: bool,
    synced_once: bool,
    next_try: Instant,
    backoff: Duration,
    interval: Duration,
    last_heard: Instant,
    heartbeats_seen: bool,
    pending: VecDeque<Vec<u8>>,
    resyncs: u64,
    /// The epoch a snapshot confirmed, with the counter of that snapshot and the
    /// highest counter taken from a publication since: a publication of that
    /// epoch at or below the snapshot's counter is already in the snapshot
    /// (skipped quietly: the publish and snapshot paths race); one at or below
    /// the last taken, above the snapshot's, is a replay. Another epoch is
    /// believed only once a snapshot confirms it.
    confirmed: Option<Confirmed>,
    /// When the last resync for an unconfirmed epoch was asked (at most one per
    /// interval: replayed foreign epochs cannot force a resync storm).
    epoch_resync: Option<Instant>,
    /// True while the publications kept during a snapshot are applied: those the
    /// snapshot already includes are skipped quietly, not counted as replays.
    replaying: bool,
}

impl Driver {
    /// A driver started at `now`. `legacy`: the server is a legacy publisher (no
    /// snapshot URL). `stale_after`: heartbeat intervals without a publication
    /// before the server is stale.
    pub fn new(now: Instant, legacy: bool, limits: Limits, stale_after: u32) -> Driver {
        Driver {
            legacy,
            limits,
            stale_after: stale_after.max(1),
            started: now,
            connected: false,
            need_sync: !legacy,
            in_flight: false,
            synced_once: false,
            next_try: now,
            backoff: MIN_BACKOFF,
            interval: crate::DEFAULT_INTERVAL,
            last_heard: now,
            heartbeats_seen: false,
            pending: VecDeque::new(),
            resyncs: 0,
            confirmed: None,
            epoch_resync: None,
            replaying: false,
        }
    }

    /// The server's interval, as its last heartbeat or snapshot said.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Snapshots applied after the first.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// Publications kept while a snapshot is awaited.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// True while a snapshot is needed (none applied yet, or a resync).
    pub fn needs_snapshot(&self) -> bool {
        self.need_sync
    }

    /// When the caller should send [`Input::Tick`] at the latest (never at or
    /// before `now` unless something is due: a silent server must not make the
    /// caller spin).
    pub fn wake_at(&self, now: Instant, state: State) -> Instant {
        let mut wake = self.last_heard.max(self.started) + self.interval;
        if wake <= now {
            wake = now + self.interval;
        }
        if self.need_sync && !self.in_flight {
            wake = wake.min(self.next_try.max(self.started + CONNECT_WAIT));
        }
        if state == State::Live {
            wake = wake.min(self.stale_at());
        }
        wake
    }

    fn stale_at(&self) -> Instant {
        self.last_heard + self.interval * self.stale_after + Duration::from_millis(1)
    }

    /// Takes one input at time `now`, applies it to `src`, and says what to do.
    pub fn step(&mut self, now: Instant, input: Input, src: &mut Source<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Tick => {}
            Input::Connected => {
                self.connected = true;
                self.next_try = now;
                self.backoff = MIN_BACKOFF;
            }
            Input::Publication(m) => {
                if self.need_sync && wire::is_native(&m) {
                    if self.pending.len() >= MAX_PENDING {
                        self.pending.pop_front();
                    }
                    self.pending.push_back(m);
                } else {
                    self.publication(now, &m, src, &mut out);
                }
            }
            Input::Snapshot(Ok(s)) => {
                self.in_flight = false;
                self.interval = Duration::from_millis(u64::from(s.interval_ms.max(1)));
                let (epoch, counter) = (s.epoch, s.counter);
                // Before the members: a warming server's snapshot removes nothing.
                src.set_warming(s.warming);
                match src.apply_snapshot(s) {
                    Ok(()) => {
                        let last = match self.confirmed {
                            Some(c) if c.epoch == epoch => c.last.max(counter),
                            _ => counter,
                        };
                        self.confirmed = Some(Confirmed {
                            epoch,
                            snapshot: counter,
                            last,
                        });
                        self.need_sync = false;
                        if self.synced_once {
                            self.resyncs += 1;
                        }
                        self.synced_once = true;
                        self.backoff = MIN_BACKOFF;
                        self.last_heard = now;
                        src.set_state(State::Live);
                        out.push(Action::Deliver { snapshot: true });
                        // Apply what came meanwhile; those the snapshot includes are skipped.
                        self.replaying = true;
                        for m in std::mem::take(&mut self.pending) {
                            if self.need_sync {
                                self.pending.push_back(m);
                            } else {
                                self.publication(now, &m, src, &mut out);
                            }
                        }
                        self.replaying = false;
                    }
                    Err(r) => {
                        out.push(Action::Resync(r));
                        self.back_off(now, &mut out);
                    }
                }
            }
            Input::Snapshot(Err(_)) => {
                self.in_flight = false;
                self.back_off(now, &mut out);
            }
        }
        let ready = self.connected || now >= self.started + CONNECT_WAIT;
        if self.need_sync && !self.in_flight && ready && now >= self.next_try {
            self.in_flight = true;
            out.push(Action::RequestSnapshot);
        }
        self.check_stale(now, src, &mut out);
        out
    }

    fn back_off(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.next_try = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        out.push(Action::Backoff(self.next_try));
    }

    fn resync(&mut self, now: Instant, why: Resync, src: &mut Source<'_>, out: &mut Vec<Action>) {
        src.unsync();
        out.push(Action::Resync(why));
        if !self.legacy {
            self.need_sync = true;
            self.next_try = now;
        }
    }

    /// A publication is news from the server: a stale server is live again.
    fn heard(&mut self, now: Instant, src: &mut Source<'_>, out: &mut Vec<Action>) {
        self.last_heard = now;
        if src.state() == State::Stale {
            src.set_state(State::Live);
            out.push(Action::Deliver { snapshot: false });
        }
    }

    fn publication(&mut self, now: Instant, m: &[u8], src: &mut Source<'_>, out: &mut Vec<Action>) {
        if !wire::is_native(m) {
            match wire::decode_legacy_list(m, &self.limits) {
                Ok(names) => {
                    self.last_heard = now;
                    let first = !src.replica().is_synced();
                    src.apply_legacy(names);
                    src.set_state(State::Live);
                    out.push(Action::Deliver { snapshot: first });
                }
                Err(e) => out.push(Action::Dropped(e.to_string())),
            }
            return;
        }
        let msg = match wire::decode(m, &self.limits) {
            Ok(msg) => msg,
            Err(e) => return out.push(Action::Dropped(e.to_string())),
        };
        let (epoch, counter) = match &msg {
            Message::Delta { epoch, counter, .. } => (*epoch, *counter),
            Message::Heartbeat(hb) => (hb.epoch, hb.counter),
            _ => return out.push(Action::Dropped("not a publication".into())),
        };
        match self.confirmed.as_mut() {
            Some(c) if c.epoch == epoch => {
                if counter <= c.last {
                    if !self.replaying && counter > c.snapshot {
                        let why = format!(
                            "counter {counter} not above {} in epoch {epoch:016x}",
                            c.last
                        );
                        out.push(Action::Replayed(why));
                    }
                    return;
                }
                c.last = counter;
            }
            _ => {
                // Not news until a snapshot confirms this epoch: no liveness, and
                // at most one resync per interval for it.
                if self.epoch_resync.is_some_and(|t| now < t + self.interval) {
                    let why = format!("epoch {epoch:016x} is not confirmed by a snapshot yet");
                    return out.push(Action::Replayed(why));
                }
                self.epoch_resync = Some(now);
                self.pending.push_back(m.to_vec());
                return self.resync(now, Resync::EpochChanged, src, out);
            }
        }
        match msg {
            Message::Delta {
                epoch, seq, events, ..
            } => match src.apply_delta(epoch, seq, events) {
                Step::Applied(ev) => {
                    let was_stale = src.state() == State::Stale;
                    self.heard(now, src, out);
                    if !ev.is_empty() && !was_stale {
                        out.push(Action::Deliver { snapshot: false });
                    }
                }
                Step::Ignored => self.last_heard = now,
                Step::Resync(r) => {
                    self.last_heard = now;
                    self.resync(now, r, src, out);
                }
            },
            Message::Heartbeat(hb) => {
                self.heartbeats_seen = true;
                self.interval = Duration::from_millis(u64::from(hb.interval_ms.max(1)));
                src.set_warming(hb.warming);
                match src.check_heartbeat(&hb) {
                    Ok(()) => self.heard(now, src, out),
                    Err(r) => {
                        self.last_heard = now;
                        self.resync(now, r, src, out);
                    }
                }
            }
            _ => {}
        }
    }

    fn check_stale(&mut self, now: Instant, src: &mut Source<'_>, out: &mut Vec<Action>) {
        if self.legacy && !self.heartbeats_seen {
            return; // a legacy publisher sends no heartbeats
        }
        if src.state() == State::Live && now >= self.stale_at() {
            src.set_state(State::Stale);
            out.push(Action::Deliver { snapshot: false });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::{digest, Event, Member, Reason};
    use crate::merge::Merge;
    use crate::wire::Heartbeat;

    fn snap(epoch: u64, seq: u64, members: Vec<Member>) -> Snapshot {
        Snapshot {
            nonce: 0,
            epoch,
            seq,
            counter: 0,
            interval_ms: 100,
            warming: false,
            digest: digest(&members),
            members,
        }
    }

    /// Publication counters for the tests: always rising, as a server's do.
    fn next_counter() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static C: AtomicU64 = AtomicU64::new(1);
        C.fetch_add(1, Ordering::Relaxed)
    }

    fn delta(epoch: u64, seq: u64, events: &[Event]) -> Vec<u8> {
        wire::encode_delta(epoch, seq, next_counter(), events)
    }

    fn heartbeat(epoch: u64, seq: u64, members: &[Member]) -> Vec<u8> {
        wire::encode_heartbeat(&Heartbeat {
            epoch,
            seq,
            counter: next_counter(),
            interval_ms: 100,
            warming: false,
            count: members.len() as u32,
            digest: digest(members),
        })
    }

    struct Rig {
        t0: Instant,
        merge: Merge,
        sync: Driver,
    }

    impl Rig {
        fn new() -> Rig {
            let t0 = Instant::now();
            Rig {
                t0,
                merge: Merge::new(1),
                sync: Driver::new(t0, false, Limits::default(), 3),
            }
        }
        fn at(&mut self, ms: u64, input: Input) -> Vec<Action> {
            let now = self.t0 + Duration::from_millis(ms);
            self.sync.step(now, input, &mut self.merge.source(0))
        }
    }

    fn a(inc: u64) -> Member {
        Member::new("a", inc)
    }

    #[test]
    fn waits_for_the_connection_then_asks_and_applies_the_kept_deltas() {
        let mut r = Rig::new();
        assert_eq!(r.at(0, Input::Tick), vec![]);
        // Deltas before the snapshot are kept, not applied.
        let ja = Event::joined(a(1), Reason::None);
        let jb = Event::joined(Member::new("b", 1), Reason::None);
        assert_eq!(r.at(5, Input::Publication(delta(7, 1, &[ja]))), vec![]);
        assert_eq!(r.at(6, Input::Publication(delta(7, 2, &[jb]))), vec![]);
        assert_eq!(r.sync.pending(), 2);
        assert_eq!(r.at(10, Input::Connected), vec![Action::RequestSnapshot]);
        // No second request while one is in flight.
        assert_eq!(r.at(20, Input::Tick), vec![]);
        // The snapshot is at seq 1: delta 1 is skipped, delta 2 (b again) applied.
        let acts = r.at(30, Input::Snapshot(Ok(snap(7, 1, vec![a(1)]))));
        assert_eq!(
            acts,
            vec![
                Action::Deliver { snapshot: true },
                Action::Deliver { snapshot: false }
            ]
        );
        assert_eq!(r.merge.view().peers(), vec!["a", "b"]);
        assert_eq!(r.merge.replica(0).position(), (7, 2));
        assert_eq!((r.merge.state(0), r.sync.resyncs()), (State::Live, 0));
    }

    #[test]
    fn asks_after_a_second_even_unconnected_and_backs_off_on_failure() {
        let mut r = Rig::new();
        assert_eq!(r.at(999, Input::Tick), vec![]);
        assert_eq!(
            r.sync
                .wake_at(r.t0 + Duration::from_millis(999), State::Syncing),
            r.t0 + CONNECT_WAIT
        );
        assert_eq!(r.at(1000, Input::Tick), vec![Action::RequestSnapshot]);
        let t = r.t0 + Duration::from_millis(1010);
        assert_eq!(
            r.at(1010, Input::Snapshot(Err("no server".into()))),
            vec![Action::Backoff(t + MIN_BACKOFF)]
        );
        assert_eq!(r.at(1059, Input::Tick), vec![]);
        assert_eq!(r.at(1060, Input::Tick), vec![Action::RequestSnapshot]);
        let acts = r.at(1070, Input::Snapshot(Err("no server".into())));
        assert_eq!(
            acts,
            vec![Action::Backoff(t + Duration::from_millis(60 + 100))]
        );
        // A request in flight and nothing heard for long: the next wake is an
        // interval ahead, never in the past (the caller would spin).
        assert_eq!(r.at(1170, Input::Tick), vec![Action::RequestSnapshot]);
        let later = r.t0 + Duration::from_secs(30);
        assert!(r.sync.wake_at(later, State::Syncing) > later);
    }

    #[test]
    fn gap_resyncs_then_stale_then_live_again() {
        let mut r = Rig::new();
        r.at(0, Input::Connected);
        r.at(1, Input::Snapshot(Ok(snap(7, 1, vec![a(1)]))));
        // A gap: seq 3 after 1.
        let acts = r.at(10, Input::Publication(delta(7, 3, &[])));
        assert_eq!(
            acts,
            vec![Action::Resync(Resync::Gap), Action::RequestSnapshot]
        );
        let acts = r.at(20, Input::Snapshot(Ok(snap(7, 3, vec![a(1)]))));
        assert_eq!(acts, vec![Action::Deliver { snapshot: true }]);
        assert_eq!(r.sync.resyncs(), 1);
        // Heartbeats keep it live; their silence for 3 intervals (300 ms) makes it stale.
        assert_eq!(
            r.at(100, Input::Publication(heartbeat(7, 3, &[a(1)]))),
            vec![]
        );
        assert_eq!(r.at(400, Input::Tick), vec![]);
        assert_eq!(
            r.at(401, Input::Tick),
            vec![Action::Deliver { snapshot: false }]
        );
        assert_eq!(r.merge.state(0), State::Stale);
        // Stale alone removes nothing (no live server).
        assert_eq!(r.merge.view().peers(), vec!["a"]);
        assert!(r.merge.take_events().iter().all(|e| e.member.name == "a"));
        let acts = r.at(500, Input::Publication(heartbeat(7, 3, &[a(1)])));
        assert_eq!(acts, vec![Action::Deliver { snapshot: false }]);
        assert_eq!(r.merge.state(0), State::Live);
        // Garbage is dropped (the caller counts it).
        let acts = r.at(505, Input::Publication(vec![0xFF, 9]));
        assert!(matches!(acts.as_slice(), [Action::Dropped(_)]), "{acts:?}");
        // A heartbeat with another digest at the same seq: resync.
        let acts = r.at(510, Input::Publication(heartbeat(7, 3, &[a(2)])));
        assert_eq!(
            acts,
            vec![
                Action::Resync(Resync::DigestMismatch),
                Action::RequestSnapshot
            ]
        );
    }

    #[test]
    fn publications_the_snapshot_includes_are_skipped_repeats_are_replays() {
        let hb = |counter| {
            wire::encode_heartbeat(&Heartbeat {
                epoch: 7,
                seq: 1,
                counter,
                interval_ms: 100,
                warming: false,
                count: 1,
                digest: digest(&[a(1)]),
            })
        };
        let mut r = Rig::new();
        r.at(0, Input::Connected);
        let mut s = snap(7, 1, vec![a(1)]);
        s.counter = 10;
        r.at(1, Input::Snapshot(Ok(s)));
        // Sent before the snapshot was taken, arriving after it (the publish and
        // snapshot paths race): quietly skipped.
        assert_eq!(r.at(2, Input::Publication(hb(9))), vec![]);
        assert_eq!(r.at(3, Input::Publication(hb(10))), vec![]);
        assert_eq!(r.at(4, Input::Publication(hb(11))), vec![]);
        // The same heartbeat again, or an older one after it: a replay.
        let acts = r.at(5, Input::Publication(hb(11)));
        assert!(matches!(acts.as_slice(), [Action::Replayed(_)]), "{acts:?}");
        // A replay is not news: silence after the last real one makes it stale.
        for t in (100..=400).step_by(50) {
            r.at(t, Input::Publication(hb(11)));
        }
        assert_eq!(r.merge.state(0), State::Stale);
        // Another epoch is not news either until a snapshot confirms it; it asks
        // for one, at most once per interval.
        let other = wire::encode_heartbeat(&Heartbeat {
            epoch: 8,
            seq: 0,
            counter: 1,
            interval_ms: 100,
            warming: false,
            count: 0,
            digest: 0,
        });
        let acts = r.at(410, Input::Publication(other.clone()));
        assert_eq!(
            acts,
            vec![
                Action::Resync(Resync::EpochChanged),
                Action::RequestSnapshot
            ]
        );
        assert_eq!(r.merge.state(0), State::Stale);
    }

    #[test]
    fn legacy_lists_need_no_snapshot_and_never_go_stale() {
        let t0 = Instant::now();
        let mut merge = Merge::new(1);
        let mut s = Driver::new(t0, true, Limits::default(), 3);
        let acts = s.step(
            t0,
            Input::Publication(b"x|y".to_vec()),
            &mut merge.source(0),
        );
        assert_eq!(acts, vec![Action::Deliver { snapshot: true }]);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(s.step(later, Input::Tick, &mut merge.source(0)), vec![]);
        assert_eq!(
            (merge.state(0), merge.view().peers()),
            (State::Live, vec!["x".to_string(), "y".into()])
        );
    }
}
