//! The watching side: sub0 to the publish URL plus req0 to the snapshot URL — the
//! Clone pattern. Subscribe first, fetch the snapshot, skip the buffered deltas it
//! already includes, then apply deltas as they come; resync on a seq gap, a new
//! epoch or a digest mismatch; `stale` when heartbeats stop.
//!
//! Threads, three per subscriber:
//! - `gd-sub-recv`: blocking receive on sub0; forwards each publication to the worker.
//! - `gd-sub-snapshot`: on the worker's request, sends a snapshot request on req0 and
//!   waits for the reply (req0 re-sends it every `snapshot_timeout` until a server
//!   answers); forwards the snapshot to the worker.
//! - `gd-subscriber`, the worker: applies publications and snapshots to the
//!   [`Replica`] under a lock (so getters are consistent), releases the lock, then
//!   calls the handler. Publications that arrive while a snapshot is awaited are kept
//!   and applied after it. The handler runs only on this thread and may call any
//!   method of the subscriber; a panic in it is caught and logged, and delivery goes on.
//!
//! The blocking receives have no timeout: they are stopped at close (an aio stopped
//! before its socket closes, see [`crate::nng::Inbox`]).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::member::{Event, Limits, Member};
use crate::net;
use crate::nng::{self as nng, lock, PipeEvent, Protocol, Socket};
use crate::replica::{Replica, Resync, Step};
use crate::wire::{self, Message, Snapshot};

/// Whether the subscriber's view can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No snapshot yet.
    Syncing,
    /// In step with the server.
    Live,
    /// No heartbeat for `stale_after` intervals: the server may be gone; the view is
    /// the last one known.
    Stale,
}

impl State {
    /// `"syncing"`, `"live"` or `"stale"`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Syncing => "syncing",
            State::Live => "live",
            State::Stale => "stale",
        }
    }
}

/// One change as delivered to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Server epoch (0 for a legacy publisher).
    pub epoch: u64,
    /// Seq of the last applied publication.
    pub seq: u64,
    /// Live or stale.
    pub state: State,
    /// True for the first view and for every resync (the events are then the
    /// difference between the old view and the snapshot).
    pub snapshot: bool,
    /// The full peer list, sorted.
    pub peers: Vec<String>,
    /// What changed (empty for a pure state change).
    pub events: Vec<Event>,
}

type Handler = Box<dyn FnMut(&Update) + Send>;

/// Settings of a [`Subscriber`]; start it with [`SubscriberBuilder::start`].
pub struct SubscriberBuilder {
    publish: String,
    snapshot: Option<String>,
    limits: Limits,
    snapshot_timeout: Duration,
    stale_after: u32,
    recv_buffer: i32,
    handler: Option<Handler>,
}

impl SubscriberBuilder {
    /// Publish URL (default `tcp://127.0.0.1:50007`).
    pub fn publish(mut self, url: impl Into<String>) -> Self {
        self.publish = url.into();
        self
    }
    /// Snapshot URL (default `tcp://127.0.0.1:50008`); `None` for a legacy publisher,
    /// whose every message is the full list.
    pub fn snapshot(mut self, url: Option<String>) -> Self {
        self.snapshot = url;
        self
    }
    /// Size limits.
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }
    /// How long a snapshot request waits for its reply before it is sent again
    /// (default 2 s).
    pub fn snapshot_timeout(mut self, d: Duration) -> Self {
        self.snapshot_timeout = d;
        self
    }
    /// Missed heartbeats before the state turns `stale` (default 3).
    pub fn stale_after(mut self, n: u32) -> Self {
        self.stale_after = n;
        self
    }
    /// Publications NNG queues for this subscriber before dropping the oldest
    /// (1 to 8192, default 8192). A lost publication is repaired by a resync.
    pub fn recv_buffer(mut self, n: i32) -> Self {
        self.recv_buffer = n;
        self
    }
    /// Called on the subscriber thread with every change: the first view, each
    /// delta, each resync, each state change.
    pub fn on_update(mut self, f: impl FnMut(&Update) + Send + 'static) -> Self {
        self.handler = Some(Box::new(f));
        self
    }
    /// Dials both URLs (without waiting) and starts the subscriber thread.
    pub fn start(self) -> Result<Subscriber> {
        Subscriber::start(self)
    }
}

struct Shared {
    view: Mutex<View>,
    connected: AtomicBool,
    /// The snapshot socket has a connection (or there is none to have).
    req_connected: AtomicBool,
    stop: AtomicBool,
    resyncs: AtomicU64,
    dropped: AtomicU64,
    /// Live connections of the publish and snapshot sockets.
    publish_pipes: AtomicU64,
    snapshot_pipes: AtomicU64,
    /// Publications received, and when the last one came.
    publications: AtomicU64,
    last_publication: Mutex<Option<Instant>>,
}

/// What a subscriber sees now ([`Subscriber::stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Syncing, live or stale.
    pub state: State,
    /// Members in the view.
    pub members: usize,
    /// `(epoch, seq)` of the view.
    pub epoch: u64,
    /// Seq of the view.
    pub seq: u64,
    /// Live connections to the publish URL.
    pub publish_connections: u64,
    /// Live connections to the snapshot URL (0 for a legacy publisher).
    pub snapshot_connections: u64,
    /// Publications received (deltas, heartbeats, legacy lists).
    pub publications: u64,
    /// Time since the last publication (None: none yet).
    pub last_publication_age: Option<Duration>,
    /// Snapshots fetched after the first.
    pub resyncs: u64,
    /// Publications dropped as malformed.
    pub dropped: u64,
}

struct View {
    replica: Replica,
    state: State,
}

impl View {
    /// What the application is told: this view now, with `events`.
    fn update(&self, snapshot: bool, events: Vec<Event>) -> Update {
        let (epoch, seq) = self.replica.position();
        Update {
            epoch,
            seq,
            state: self.state,
            snapshot,
            peers: self.replica.peers(),
            events,
        }
    }
}

/// A running subscriber. Dropping it (or [`Subscriber::close`]) stops it; after
/// `close` returns no handler call runs (unless `close` was called from the handler
/// itself, which returns at once and lets the thread finish on its own).
pub struct Subscriber {
    shared: Arc<Shared>,
    workers: net::Workers,
    /// The worker (the handler's thread).
    thread_id: Option<ThreadId>,
}

impl Subscriber {
    /// Default URLs; chain setters, then `.start()`.
    pub fn builder() -> SubscriberBuilder {
        SubscriberBuilder {
            publish: net::DEFAULT_PUBLISH_URL.into(),
            snapshot: Some(net::DEFAULT_SNAPSHOT_URL.into()),
            limits: Limits::default(),
            snapshot_timeout: crate::DEFAULT_SNAPSHOT_TIMEOUT,
            stale_after: crate::DEFAULT_STALE_AFTER,
            recv_buffer: 8192,
            handler: None,
        }
    }

    fn start(cfg: SubscriberBuilder) -> Result<Subscriber> {
        cfg.validate()?;
        let shared = Arc::new(Shared {
            view: Mutex::new(View {
                replica: Replica::new(),
                state: State::Syncing,
            }),
            connected: AtomicBool::new(false),
            req_connected: AtomicBool::new(cfg.snapshot.is_none()),
            stop: AtomicBool::new(false),
            resyncs: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            publish_pipes: AtomicU64::new(0),
            snapshot_pipes: AtomicU64::new(0),
            publications: AtomicU64::new(0),
            last_publication: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel::<Input>();
        // Everything made from here on is torn down by `workers` on any early return.
        let mut workers = net::Workers::default();
        let (s, stop_tx) = (shared.clone(), tx.clone());
        workers.on_stop(move || {
            s.stop.store(true, Relaxed);
            let _ = stop_tx.send(Input::Stop);
        });
        let sub = net::open(Protocol::Sub0, false)?;
        workers.socket(&sub);
        net::set_buffers(&sub, Some(cfg.recv_buffer), None)?;
        net::set_recv_max(&sub, cfg.limits.max_message)?;
        net::set_reconnect(&sub, Duration::from_secs(1))?;
        sub.subscribe_all()
            .map_err(|e| Error::nng("subscribing", e))?;
        on_connect(
            &sub,
            &shared,
            &tx,
            |s| &s.publish_pipes,
            |s| !s.connected.swap(true, Relaxed),
        )?;
        net::dial(&sub, &cfg.publish)?;
        let req = match &cfg.snapshot {
            Some(url) => Some(snapshot_socket(url, &cfg, &shared, &tx, &mut workers)?),
            None => None,
        };
        let (fetch_tx, fetch_rx) = mpsc::channel::<Ask>();
        // The snapshot thread may be waiting for a request: wake it at shutdown
        // (the worker that holds the other sender may be the thread closing us).
        let stop_asks = fetch_tx.clone();
        workers.on_stop(move || {
            let _ = stop_asks.send(Ask::Stop);
        });
        let mut worker = Worker {
            shared: shared.clone(),
            fetch: req.as_ref().map(|_| fetch_tx),
            limits: cfg.limits,
            stale_after: cfg.stale_after,
            handler: cfg.handler,
            interval: Duration::from_secs(1),
            last_heard: Instant::now(),
            heartbeats_seen: false,
            pending: VecDeque::new(),
        };
        let (mut inbox, t) = (workers.inbox(&sub), tx.clone());
        workers.spawn("gd-subscriber-recv", move || recv_thread(&mut inbox, t))?;
        if let Some(req) = req {
            let (mut inbox, t, limits) = (workers.inbox(&req), tx, cfg.limits);
            workers.spawn("gd-subscriber-snapshot", move || {
                snapshot_thread(&req, &mut inbox, fetch_rx, t, limits)
            })?;
        }
        let thread_id = workers.spawn("gd-subscriber", move || worker.run(rx))?;
        Ok(Subscriber {
            shared,
            workers,
            thread_id: Some(thread_id),
        })
    }

    fn view<T>(&self, f: impl FnOnce(&View) -> T) -> T {
        f(&lock(&self.shared.view))
    }

    /// The peer names now, sorted.
    pub fn peers(&self) -> Vec<String> {
        self.view(|v| v.replica.peers())
    }

    /// The members now, sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.view(|v| v.replica.members().cloned().collect())
    }

    /// Syncing, live or stale.
    pub fn state(&self) -> State {
        self.view(|v| v.state)
    }

    /// `(epoch, seq)` of the view.
    pub fn position(&self) -> (u64, u64) {
        self.view(|v| v.replica.position())
    }

    /// Digest of the view (equal to the server's when in step).
    pub fn digest(&self) -> u64 {
        self.view(|v| v.replica.digest())
    }

    /// Snapshots fetched after the first (gaps, epoch changes, digest mismatches).
    pub fn resyncs(&self) -> u64 {
        self.shared.resyncs.load(Relaxed)
    }

    /// Publications dropped as malformed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }

    /// State, view, connections and counters now.
    pub fn stats(&self) -> SubscriberStats {
        let sh = &self.shared;
        let (state, members, (epoch, seq)) =
            self.view(|v| (v.state, v.replica.len(), v.replica.position()));
        SubscriberStats {
            state,
            members,
            epoch,
            seq,
            publish_connections: sh.publish_pipes.load(Relaxed),
            snapshot_connections: sh.snapshot_pipes.load(Relaxed),
            publications: sh.publications.load(Relaxed),
            last_publication_age: lock(&sh.last_publication).map(|t| t.elapsed()),
            resyncs: sh.resyncs.load(Relaxed),
            dropped: sh.dropped.load(Relaxed),
        }
    }

    /// True when called from this subscriber's own handler thread.
    pub fn on_own_thread(&self) -> bool {
        self.thread_id == Some(std::thread::current().id())
    }

    /// Stops the subscriber. Waits for a handler call in progress, unless called
    /// from the handler itself. Idempotent.
    pub fn close(&mut self) {
        self.workers.shutdown();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.close();
    }
}

impl SubscriberBuilder {
    fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        if self.snapshot_timeout.is_zero() {
            return Err(Error::option(
                "snapshot_timeout",
                "must be greater than zero",
            ));
        }
        if self.stale_after == 0 {
            return Err(Error::option("stale_after", "must be at least 1"));
        }
        if !(1..=8192).contains(&self.recv_buffer) {
            return Err(Error::option(
                "recv_buffer",
                "must be between 1 and 8192 messages",
            ));
        }
        Ok(())
    }
}

/// Tells the worker `Input::Connected` on a new connection of `socket` when
/// `first(shared)` says so.
fn on_connect(
    socket: &Socket,
    shared: &Arc<Shared>,
    tx: &Sender<Input>,
    count: fn(&Shared) -> &AtomicU64,
    first: impl Fn(&Shared) -> bool + Send + Sync + 'static,
) -> Result<()> {
    let (weak, tx) = (Arc::downgrade(shared), tx.clone());
    socket
        .pipe_notify(move |_, ev| {
            let Some(s) = weak.upgrade() else { return };
            match ev {
                PipeEvent::Added => {
                    count(&s).fetch_add(1, Relaxed);
                    if first(&s) {
                        let _ = tx.send(Input::Connected);
                    }
                }
                PipeEvent::Removed => {
                    let _ = count(&s).fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
                }
            }
        })
        .map_err(|e| Error::nng("registering connection events", e))
}

/// The req0 socket for snapshots, dialled to `url`.
fn snapshot_socket(
    url: &str,
    cfg: &SubscriberBuilder,
    shared: &Arc<Shared>,
    tx: &Sender<Input>,
    workers: &mut net::Workers,
) -> Result<Socket> {
    let req = net::open(Protocol::Req0, false)?;
    workers.socket(&req);
    net::set_recv_max(&req, cfg.limits.max_snapshot)?;
    net::set_reconnect(&req, Duration::from_secs(1))?;
    req.set_resend_time(cfg.snapshot_timeout)
        .map_err(|e| Error::nng("setting the request resend time", e))?;
    // Every new snapshot connection wakes the worker: a request that failed for
    // want of one is retried at once.
    on_connect(
        &req,
        shared,
        tx,
        |s| &s.snapshot_pipes,
        |s| {
            s.req_connected.store(true, Relaxed);
            true
        },
    )?;
    net::dial(&req, url)?;
    Ok(req)
}

/// Fetches one snapshot from `url` (the `members` command).
pub fn fetch_snapshot(url: &str, timeout: Duration, limits: &Limits) -> Result<Snapshot> {
    let mut workers = net::Workers::default();
    let req = net::open(Protocol::Req0, false)?;
    workers.socket(&req);
    net::set_recv_max(&req, limits.max_snapshot)?;
    req.set_recv_timeout(Some(timeout))
        .and_then(|()| req.set_send_timeout(Some(timeout)))
        .map_err(|e| Error::nng("setting the timeouts", e))?;
    net::dial(&req, url)?;
    req.send(nng::Message::new(&[], &wire::encode_snapshot_request()))
        .map_err(|(_, e)| Error::nng("sending a snapshot request", e))?;
    let msg = req
        .recv()
        .map_err(|e| Error::nng("receiving a snapshot", e))?;
    decode_snapshot(msg.body(), limits)
}

fn decode_snapshot(bytes: &[u8], limits: &Limits) -> Result<Snapshot> {
    match wire::decode(bytes, limits) {
        Ok(Message::Snapshot(s)) => Ok(s),
        Ok(_) => Err(Error::Protocol(
            "the snapshot socket answered with another message type".into(),
        )),
        Err(e) => Err(Error::Protocol(format!("bad snapshot: {e}"))),
    }
}

/// What the worker thread is told.
enum Input {
    /// The subscription connected for the first time.
    Connected,
    /// A publication, in arrival order.
    Publication(Vec<u8>),
    /// The outcome of a snapshot request.
    Snapshot(Result<Snapshot>),
    Stop,
}

fn recv_thread(inbox: &mut nng::Inbox, tx: Sender<Input>) {
    loop {
        match inbox.recv() {
            Ok(m) => {
                if tx.send(Input::Publication(m.body().to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.is_closed() => return,
            Err(e) => log::warn!("publish socket receive failed: {e}"),
        }
    }
}

/// What the worker asks of the snapshot thread.
enum Ask {
    Snapshot,
    /// Shutdown: end the thread.
    Stop,
}

fn snapshot_thread(
    req: &Socket,
    inbox: &mut nng::Inbox,
    asks: Receiver<Ask>,
    tx: Sender<Input>,
    limits: Limits,
) {
    while let Ok(Ask::Snapshot) = asks.recv() {
        // Non-blocking: fails at once while no server is connected (the worker
        // retries with backoff); once sent, req0 re-sends it until a reply comes.
        let request = nng::Message::new(&[], &wire::encode_snapshot_request());
        let r = match req.try_send(request) {
            Err((_, e)) => Err(Error::nng("sending a snapshot request", e)),
            Ok(()) => match inbox.recv() {
                Ok(m) => decode_snapshot(m.body(), &limits),
                Err(e) => Err(Error::nng("receiving a snapshot", e)),
            },
        };
        if matches!(r, Err(Error::Closed)) || tx.send(Input::Snapshot(r)).is_err() {
            return;
        }
    }
}

/// Publications kept while a snapshot is awaited; past this many, the oldest are
/// dropped (the gap then forces another snapshot).
const MAX_PENDING: usize = 100_000;

struct Worker {
    shared: Arc<Shared>,
    /// Asks the snapshot thread for a snapshot; None for a legacy publisher.
    fetch: Option<Sender<Ask>>,
    limits: Limits,
    stale_after: u32,
    handler: Option<Handler>,
    interval: Duration,
    last_heard: Instant,
    heartbeats_seen: bool,
    /// Publications received while a snapshot is awaited.
    pending: VecDeque<Vec<u8>>,
}

impl Worker {
    fn run(&mut self, rx: Receiver<Input>) {
        let started = Instant::now();
        let mut need_sync = self.fetch.is_some();
        let mut in_flight = false;
        let mut first = true;
        let mut next_try = started;
        let mut backoff = Duration::from_millis(50);
        while !self.shared.stop.load(Relaxed) {
            let now = Instant::now();
            // Ask for the snapshot once the subscription is up (so no delta after
            // the snapshot is missed; a heartbeat repairs it if one is), or after 1 s.
            let ready = (self.shared.connected.load(Relaxed)
                && self.shared.req_connected.load(Relaxed))
                || now >= started + Duration::from_secs(1);
            if need_sync && !in_flight && ready && now >= next_try {
                if let Some(f) = &self.fetch {
                    in_flight = f.send(Ask::Snapshot).is_ok();
                }
            }
            let mut wake = now + self.interval;
            if need_sync && !in_flight {
                wake = wake.min(next_try.max(started + Duration::from_secs(1)));
            }
            if lock(&self.shared.view).state == State::Live {
                wake = wake.min(
                    self.last_heard + self.interval * self.stale_after + Duration::from_millis(1),
                );
            }
            let input = match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(i) => Some(i),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match input {
                None => {}
                Some(Input::Connected) => {
                    next_try = Instant::now();
                    backoff = Duration::from_millis(50);
                }
                Some(Input::Stop) => return,
                Some(Input::Publication(m)) => {
                    self.shared.publications.fetch_add(1, Relaxed);
                    *lock(&self.shared.last_publication) = Some(Instant::now());
                    if need_sync && wire::is_native(&m) {
                        if self.pending.len() >= MAX_PENDING {
                            self.pending.pop_front();
                        }
                        self.pending.push_back(m);
                    } else if let Some(why) = self.handle(&m) {
                        log::debug!("resync: {why:?}");
                        need_sync = self.fetch.is_some();
                        next_try = Instant::now();
                    }
                }
                Some(Input::Snapshot(Ok(snap))) => {
                    in_flight = false;
                    match self.apply_snapshot(snap, first) {
                        Ok(()) => {
                            need_sync = false;
                            first = false;
                            backoff = Duration::from_millis(50);
                            // Apply what came meanwhile; those the snapshot includes are skipped.
                            for m in std::mem::take(&mut self.pending) {
                                if need_sync {
                                    self.pending.push_back(m);
                                } else if let Some(why) = self.handle(&m) {
                                    log::debug!("resync: {why:?}");
                                    need_sync = true;
                                    next_try = Instant::now();
                                }
                            }
                        }
                        Err(e) => {
                            log::debug!("snapshot refused: {e}");
                            next_try = back_off(&mut backoff);
                        }
                    }
                }
                Some(Input::Snapshot(Err(e))) => {
                    in_flight = false;
                    log::debug!("snapshot failed: {e}");
                    next_try = back_off(&mut backoff);
                }
            }
            self.check_stale();
        }
    }

    fn apply_snapshot(&mut self, snap: Snapshot, first: bool) -> Result<()> {
        self.interval = Duration::from_millis(snap.interval_ms.max(1) as u64);
        let update = {
            let mut v = lock(&self.shared.view);
            let events = v
                .replica
                .apply_snapshot(snap)
                .map_err(|r| Error::Protocol(format!("{r:?}")))?;
            v.state = State::Live;
            v.update(true, events)
        };
        if !first {
            self.shared.resyncs.fetch_add(1, Relaxed);
        }
        self.last_heard = Instant::now();
        self.deliver(&update);
        Ok(())
    }

    /// Applies one publication; returns why a resync is needed, if it is.
    fn handle(&mut self, bytes: &[u8]) -> Option<Resync> {
        if !wire::is_native(bytes) {
            return match wire::decode_legacy_list(bytes, &self.limits) {
                Ok(names) => {
                    self.last_heard = Instant::now();
                    let update = {
                        let mut v = lock(&self.shared.view);
                        let first = !v.replica.is_synced();
                        let events = v.replica.apply_legacy(names);
                        v.state = State::Live;
                        v.update(first, events)
                    };
                    self.deliver(&update);
                    None
                }
                Err(e) => {
                    self.drop_msg(bytes, &e.to_string());
                    None
                }
            };
        }
        match wire::decode(bytes, &self.limits) {
            Ok(Message::Delta { epoch, seq, events }) => {
                self.last_heard = Instant::now();
                let update = {
                    let mut v = lock(&self.shared.view);
                    match v.replica.apply_delta(epoch, seq, events) {
                        Step::Applied(events) => {
                            let revived = v.state == State::Stale;
                            v.state = State::Live;
                            if events.is_empty() && !revived {
                                return None;
                            }
                            v.update(false, events)
                        }
                        Step::Ignored => return None,
                        Step::Resync(r) => {
                            v.replica.unsync();
                            return Some(r);
                        }
                    }
                };
                self.deliver(&update);
                None
            }
            Ok(Message::Heartbeat(hb)) => {
                self.last_heard = Instant::now();
                self.heartbeats_seen = true;
                self.interval = Duration::from_millis(hb.interval_ms.max(1) as u64);
                let (check, revived) = {
                    let mut v = lock(&self.shared.view);
                    let check = v.replica.check_heartbeat(&hb);
                    let revived = v.state == State::Stale && check.is_ok();
                    if revived {
                        v.state = State::Live;
                    }
                    if check.is_err() {
                        v.replica.unsync();
                    }
                    (check, revived.then(|| v.update(false, Vec::new())))
                };
                if let Some(u) = revived {
                    self.deliver(&u);
                }
                check.err()
            }
            Ok(_) => {
                self.drop_msg(bytes, "not a publication");
                None
            }
            Err(e) => {
                self.drop_msg(bytes, &e.to_string());
                None
            }
        }
    }

    fn drop_msg(&self, bytes: &[u8], why: &str) {
        self.shared.dropped.fetch_add(1, Relaxed);
        log::debug!("dropped a publication of {} bytes: {why}", bytes.len());
    }

    fn check_stale(&mut self) {
        if !self.heartbeats_seen && self.fetch.is_none() {
            return; // a legacy publisher sends no heartbeats
        }
        if self.last_heard.elapsed() <= self.interval * self.stale_after {
            return;
        }
        let update = {
            let mut v = lock(&self.shared.view);
            if v.state != State::Live {
                return;
            }
            v.state = State::Stale;
            v.update(false, Vec::new())
        };
        self.deliver(&update);
    }

    fn deliver(&mut self, u: &Update) {
        if let Some(h) = self.handler.as_mut() {
            if catch_unwind(AssertUnwindSafe(|| h(u))).is_err() {
                log::error!("the update handler panicked; delivery goes on");
            }
        }
    }
}

/// When to retry a failed snapshot request; doubles the wait, up to 1 s.
fn back_off(backoff: &mut Duration) -> Instant {
    let at = Instant::now() + *backoff;
    *backoff = (*backoff * 2).min(Duration::from_secs(1));
    at
}
