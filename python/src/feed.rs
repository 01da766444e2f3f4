//! The hand-over between the subscriber's Rust thread and Python.
//!
//! The core calls the update handler on its own thread, `gd-subscriber`. That
//! thread never touches Python: the handler only appends the update to a [`Feed`]
//! (a mutex, a condition variable and a bounded queue of events) and returns.
//! Python threads read the feed through [`Cursor`]s, one per consumer (the
//! callback dispatcher, each `changes()` iterator, each `wait_for`). A cursor waits
//! with the GIL released, in steps of [`STEP`], checking for signals between steps
//! so that Ctrl-C interrupts a blocking wait on the main thread.
//!
//! A consumer gets everything since its last read as one [`Update`]: all the events
//! in order, and the newest peer list (intermediate lists are skipped, they are
//! stale anyway). Events are kept for at most [`MAX_EVENTS`]; a consumer that falls
//! further behind is told how many it lost, so nothing grows without bound.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::os::fd::{FromRawFd as _, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyList;

use gopherdiscovery as core;
use gopherdiscovery::member_set::MemberSet;

use crate::handle::lock;

use crate::convert;
use crate::errors;
use crate::objects::Event;

/// Longest time a waiting Python thread stays away from its signal check.
pub const STEP: Duration = Duration::from_millis(50);
/// Events kept for consumers that have not read them yet.
pub const MAX_EVENTS: usize = 65_536;

/// The newest view of the member set.
#[derive(Clone)]
struct View {
    peers: Arc<Vec<String>>,
    state: core::State,
    epoch: u64,
    seq: u64,
}

struct State {
    /// Number of the next item. An item is one core update, or a poke.
    next: u64,
    /// Number of the next event (events are numbered on their own, so a consumer
    /// knows exactly how many it lost).
    next_event: u64,
    /// Events with their numbers, oldest first; at most `MAX_EVENTS`.
    events: VecDeque<(u64, core::Event)>,
    view: Option<View>,
    /// The member set as the events built it, for replaying it to a new consumer
    /// as "joined" events (the core's member set: the same rule for a restart's
    /// `left` as every replica).
    members: MemberSet,
    closed: bool,
    /// File descriptors (pipe write ends) to write one byte to on every new item
    /// and on close, by cursor: how `changes_async()` waits on the event loop
    /// instead of in a pool thread.
    wakers: HashMap<u64, RawFd>,
}

impl State {
    /// Writes a byte to every registered waker; never blocks (the pipes are
    /// non-blocking, and a full pipe already holds a wake-up).
    fn wake(&self) {
        for fd in self.wakers.values() {
            // SAFETY: the fd is a pipe's write end that Python keeps open until it
            // has unregistered it (under this lock, which we hold); ManuallyDrop
            // keeps the File from closing it.
            let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(*fd) });
            let _ = f.write(&[1]);
        }
    }
}

/// The queue between one core subscriber and its Python consumers.
pub struct Feed {
    state: Mutex<State>,
    ready: Condvar,
}

impl Feed {
    pub fn new() -> Arc<Feed> {
        Arc::new(Feed {
            state: Mutex::new(State {
                next: 0,
                next_event: 0,
                events: VecDeque::new(),
                view: None,
                members: MemberSet::new(),
                closed: false,
                wakers: HashMap::new(),
            }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Called by the core on its subscriber thread: record and wake. Never blocks
    /// on anything but this feed's own lock, which no one holds for long.
    pub fn push(&self, u: &core::Update) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        for e in &u.events {
            st.members.apply(e);
            let n = st.next_event;
            st.events.push_back((n, e.clone()));
            st.next_event += 1;
        }
        let excess = st.events.len().saturating_sub(MAX_EVENTS);
        st.events.drain(..excess);
        if u.snapshot {
            // A snapshot is the whole set: forget anything the events missed.
            let gone: Vec<String> = (st.members.names())
                .filter(|name| u.peers.binary_search_by(|p| p.as_str().cmp(name)).is_err())
                .map(str::to_owned)
                .collect();
            for name in gone {
                st.members.take(&name);
            }
        }
        st.view = Some(View {
            peers: Arc::new(u.peers.clone()),
            state: u.state,
            epoch: u.epoch,
            seq: u.seq,
        });
        st.next += 1;
        st.wake();
        drop(st);
        self.ready.notify_all();
    }

    /// Wakes every consumer with the current view and no events (a newly added
    /// callback gets the current peer list this way). Nothing happens before the
    /// first view.
    pub fn poke(&self) {
        let mut st = self.lock();
        if st.view.is_none() || st.closed {
            return;
        }
        st.next += 1;
        st.wake();
        drop(st);
        self.ready.notify_all();
    }

    /// Ends every wait, now and later.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.wake();
        drop(st);
        self.ready.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// What one wait produced.
enum Woke {
    Items(Batch),
    TimedOut,
    Closed,
}

/// Everything after a cursor's position, taken under the lock.
struct Batch {
    events: Vec<core::Event>,
    lost: u64,
    view: Option<View>,
}

/// Everything that happened since the consumer's previous read: the events in
/// order and the newest view. `peers` is empty and `state` is "syncing" until the
/// first snapshot.
#[pyclass(module = "gopherdiscovery", frozen)]
pub struct Update {
    events: Vec<Py<Event>>,
    view: Option<View>,
    lost: u64,
}

#[pymethods]
impl Update {
    /// The newest peer list, sorted (a new list on each access).
    #[getter]
    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        match &self.view {
            Some(v) => PyList::new(py, v.peers.iter()),
            None => Ok(PyList::empty(py)),
        }
    }

    /// The events since the previous read, oldest first.
    #[getter]
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.events.iter().map(|e| e.clone_ref(py)))
    }

    /// "syncing" (no snapshot yet), "live" or "stale".
    #[getter]
    fn state(&self) -> &'static str {
        self.view
            .as_ref()
            .map_or(core::State::Syncing, |v| v.state)
            .as_str()
    }

    /// True once there is a view (a snapshot, or a legacy full list, arrived).
    #[getter]
    fn synced(&self) -> bool {
        self.view.is_some()
    }

    /// (epoch, seq) of the view; (0, 0) before the first snapshot.
    #[getter]
    fn position(&self) -> (u64, u64) {
        self.view.as_ref().map_or((0, 0), |v| (v.epoch, v.seq))
    }

    /// Events dropped because this consumer fell more than `MAX_EVENTS` behind.
    #[getter]
    fn lost(&self) -> u64 {
        self.lost
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Update(state='{}', peers={}, events={})",
            self.state(),
            self.peers(py)?.repr()?,
            self.events(py)?.repr()?
        ))
    }
}

/// One consumer's position in a feed. `wait()` blocks (GIL released) until there
/// is something after the position, the timeout passes, or the feed or this cursor
/// is closed.
#[pyclass(module = "gopherdiscovery", frozen)]
pub struct Cursor {
    feed: Arc<Feed>,
    /// Number of the next item this consumer has not seen.
    pos: AtomicU64,
    /// Number of the next event this consumer has not seen.
    event_pos: AtomicU64,
    /// The first wait returns at once with the current view, if there is one.
    primed: AtomicBool,
    /// "joined" events for the members present when the cursor was made (replay).
    replayed: Mutex<Vec<core::Event>>,
    /// Whether this consumer wants events at all (iterators only want peers).
    with_events: bool,
    cancelled: AtomicBool,
    /// This cursor's key among the feed's wakers.
    id: u64,
}

impl Cursor {
    /// A consumer from now on. With `replay`, its first wait returns at once with
    /// the current view and, when `with_events`, a "joined" event for each member
    /// present now (taken with the position, under the feed's lock, so nothing is
    /// missed or told twice).
    pub fn new(feed: Arc<Feed>, replay: bool, with_events: bool) -> Cursor {
        let (pos, event_pos, replayed) = {
            let st = feed.lock();
            let replayed = if replay && with_events {
                st.members
                    .members()
                    .map(|m| core::Event {
                        kind: core::EventKind::Joined,
                        reason: core::Reason::None,
                        member: m.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (st.next, st.next_event, replayed)
        };
        Cursor {
            feed,
            pos: AtomicU64::new(pos),
            event_pos: AtomicU64::new(event_pos),
            primed: AtomicBool::new(replay),
            replayed: Mutex::new(replayed),
            with_events,
            cancelled: AtomicBool::new(false),
            id: {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                NEXT.fetch_add(1, SeqCst)
            },
        }
    }

    /// Waits until `until` at most. Runs without the GIL.
    fn wait_until(&self, until: Instant) -> Woke {
        let feed = &self.feed;
        let mut st = feed.lock();
        loop {
            if st.closed || self.cancelled.load(SeqCst) {
                return Woke::Closed;
            }
            let pos = self.pos.load(SeqCst);
            let primed = self.primed.load(SeqCst) && st.view.is_some();
            if st.next > pos || primed {
                self.primed.store(false, SeqCst);
                self.pos.store(st.next, SeqCst);
                let seen = self.event_pos.swap(st.next_event, SeqCst);
                if !self.with_events {
                    return Woke::Items(Batch {
                        events: Vec::new(),
                        lost: 0,
                        view: st.view.clone(),
                    });
                }
                let kept_from = st.events.front().map_or(st.next_event, |(n, _)| *n);
                let lost = kept_from.saturating_sub(seen);
                // Numbers are contiguous, so the first unseen event is found by offset.
                let first = (seen.saturating_sub(kept_from) as usize).min(st.events.len());
                let mut events = std::mem::take(&mut *lock(&self.replayed));
                events.extend(st.events.range(first..).map(|(_, e)| e.clone()));
                return Woke::Items(Batch {
                    events,
                    lost,
                    view: st.view.clone(),
                });
            }
            let now = Instant::now();
            if now >= until {
                return Woke::TimedOut;
            }
            st = feed
                .ready
                .wait_timeout(st, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[pymethods]
impl Cursor {
    /// The next `Update`, or None when `timeout` seconds pass first (None: wait as
    /// long as it takes). Raises `ClosedError` once the subscriber or this cursor is
    /// closed, and `KeyboardInterrupt` (or whatever a signal handler raises) on a
    /// signal.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Update>> {
        let deadline = match timeout {
            Some(t) => Some(Instant::now() + convert::seconds(py, "timeout", t)?),
            None => None,
        };
        loop {
            let step = Instant::now() + STEP;
            let until = deadline.map_or(step, |d| d.min(step));
            match py.detach(|| self.wait_until(until)) {
                Woke::Items(b) => {
                    let events = b
                        .events
                        .into_iter()
                        .map(|e| Py::new(py, Event(e)))
                        .collect::<PyResult<_>>()?;
                    return Ok(Some(Update {
                        events,
                        view: b.view,
                        lost: b.lost,
                    }));
                }
                Woke::Closed => return Err(errors::closed(py, "the subscriber")),
                Woke::TimedOut => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                }
            }
            py.check_signals()?;
        }
    }

    /// Ends this cursor's waits (a wait in progress returns within microseconds)
    /// and forgets its wake-up fd.
    fn close(&self) {
        self.cancelled.store(true, SeqCst);
        // Take the lock so a waiter between its check and its sleep cannot miss this.
        self.feed.lock().wakers.remove(&self.id);
        self.feed.ready.notify_all();
    }

    /// Writes one byte to `fd` (a non-blocking pipe's write end) whenever there may
    /// be something new for this cursor, and once when the subscriber closes;
    /// None stops that. The caller keeps `fd` open until it has called this with
    /// None or closed the cursor. An event loop reads the other end, so no thread
    /// waits (`changes_async()`).
    #[pyo3(signature = (fd))]
    fn set_wakeup_fd(&self, fd: Option<i32>) {
        let mut st = self.feed.lock();
        match fd {
            Some(fd) if !self.cancelled.load(SeqCst) => {
                st.wakers.insert(self.id, fd);
                // Anything already there is worth a look.
                st.wake();
            }
            _ => {
                st.wakers.remove(&self.id);
            }
        }
    }

    /// True once the cursor or its subscriber is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.cancelled.load(SeqCst) || self.feed.is_closed()
    }
}
