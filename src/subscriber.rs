//! The watching side: for each configured server, sub0 to its publish URL plus req0
//! to its snapshot URL — the Clone pattern. Subscribe first, fetch the snapshot,
//! skip the buffered deltas it already includes, then apply deltas as they come;
//! resync on a seq gap, a new epoch or a digest mismatch; `stale` when heartbeats
//! stop. Each server has its own replica and [`Driver`]; the application sees
//! their [`Merge`] (docs/PROTOCOL.md, "Several servers"): one event per real change, the
//! view frozen only when no server is live.
//!
//! Threads: two per server and one worker:
//! - `gd-subscriber-recv`: blocking receive on a server's sub0; forwards each
//!   publication to the worker.
//! - `gd-subscriber-snapshot`: on the worker's request, sends a snapshot request on
//!   a server's req0 and waits for the reply (req0 re-sends it every
//!   `snapshot_timeout` until the server answers); forwards it to the worker.
//! - `gd-subscriber`, the worker: steps the server's driver, which applies
//!   publications and snapshots to the merge under a lock (so getters are
//!   consistent), releases the lock, then calls the handler. The handler runs only
//!   on this thread and may call any method of the subscriber; a panic in it is
//!   caught and logged, and delivery goes on.
//!
//! The blocking receives have no timeout: they are stopped at close (an aio stopped
//! before its socket closes, see [`crate::nng::Inbox`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::auth::{Auth, AuthCell, AuthCounters, AuthMode, AuthStats, Keyring, Role};
use crate::error::{Error, Result};
use crate::member::{Event, Limits, Member, Reason};
use crate::merge::Merge;
use crate::net::{self, Every};
use crate::nng::{self as nng, lock, PipeEvent, Protocol, Socket};
use crate::sync::{Action, Driver, Input as SyncInput};
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
    /// Server epoch (0 for a legacy publisher); with several servers, the first
    /// live server's.
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
    /// Configured servers that are live now.
    pub live_servers: usize,
    /// Every configured server, in configuration order (its length is the number
    /// of configured servers).
    pub servers: Vec<SubscribedServer>,
}

type Handler = Box<dyn FnMut(&Update) + Send>;

/// Settings of a [`Subscriber`]; start it with [`SubscriberBuilder::start`].
pub struct SubscriberBuilder {
    publish: String,
    snapshot: Option<String>,
    servers: Vec<(String, Option<String>)>,
    limits: Limits,
    snapshot_timeout: Duration,
    first_view_timeout: Duration,
    stale_after: u32,
    recv_buffer: i32,
    handler: Option<Handler>,
    auth: Auth,
    /// False until a keyring, mode or label is set: a watching client's then
    /// applies.
    auth_set: bool,
}

impl SubscriberBuilder {
    /// Accepts only publications and snapshots that verify with the keyring and
    /// signs its snapshot requests (auth `required`, unless
    /// [`SubscriberBuilder::auth`] says otherwise).
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.auth = self.auth.keyring(Some(keyring));
        self.auth_set = true;
        self
    }
    /// `off`, `permissive` or `required` (default: `required` with a keyring,
    /// `off` without).
    pub fn auth(mut self, mode: AuthMode) -> Self {
        self.auth = self.auth.mode(mode);
        self.auth_set = true;
        self
    }
    /// The mesh label every tag covers (default empty).
    pub fn mesh_label(mut self, label: impl Into<String>) -> Self {
        self.auth = self.auth.mesh_label(label);
        self.auth_set = true;
        self
    }
    /// Keyring, mode and label at once.
    pub fn authentication(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self.auth_set = true;
        self
    }
    /// True when a keyring, mode or label was set on this builder.
    pub(crate) fn has_own_auth(&self) -> bool {
        self.auth_set
    }
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
    /// Adds a server to merge: its publish and snapshot URLs. Repeat it for each
    /// server (docs/PROTOCOL.md, "Several servers"); once used, `publish` and `snapshot`
    /// are ignored. The view is the merge of every server's: a member is in it
    /// while some live server holds it, and the state is `stale` only when no
    /// server is live.
    pub fn server(mut self, publish: impl Into<String>, snapshot: impl Into<String>) -> Self {
        self.servers.push((publish.into(), Some(snapshot.into())));
        self
    }
    /// With several servers, how long the first view waits for every server's
    /// snapshot before it is delivered with those that answered (default 2 s).
    pub fn first_view_timeout(mut self, d: Duration) -> Self {
        self.first_view_timeout = d;
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

/// One configured server: its URLs and what its sockets saw.
struct Link {
    publish: String,
    snapshot: Option<String>,
    /// The subscription has a connection.
    connected: AtomicBool,
    /// The snapshot socket has a connection (or there is none to have).
    req_connected: AtomicBool,
    /// Live connections of the publish and snapshot sockets.
    publish_pipes: AtomicU64,
    snapshot_pipes: AtomicU64,
    /// Publications received, and when the last one came.
    publications: AtomicU64,
    last_publication: Mutex<Option<Instant>>,
    /// Since when a snapshot request waits for its reply (None: none waits).
    awaiting: Mutex<Option<Instant>>,
}

struct Shared {
    view: Mutex<View>,
    links: Vec<Link>,
    stop: AtomicBool,
    dropped: AtomicU64,
    auth: AuthCell,
    auth_counters: AuthCounters,
    snapshot_timeout: Duration,
    /// "check the keyring", at most once a minute.
    warn_keyring: Every,
}

impl Shared {
    /// Verifies a publication of server `i`; false (counted, maybe warned) when refused.
    fn verify_publication(&self, i: usize, body: &[u8]) -> bool {
        match self.auth.get().check(Role::Publication, body) {
            Ok(c) => {
                self.auth_counters.note(&c);
                true
            }
            Err(r) => {
                self.auth_counters.refused(r, "publications");
                let l = &self.links[i];
                let waiting = lock(&l.awaiting).map(|t| t.elapsed());
                if waiting.is_some_and(|w| w >= self.snapshot_timeout)
                    && self.warn_keyring.due().is_some()
                {
                    log::warn!(
                        "{}: snapshot requests are not answered while publications arrive that \
                         fail authentication ({r}): check the keyring (and the mesh label)",
                        l.publish
                    );
                }
                false
            }
        }
    }
}

/// What a subscriber sees now ([`Subscriber::stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Syncing, live or stale.
    pub state: State,
    /// Members in the view.
    pub members: usize,
    /// Epoch of the view (see [`Subscriber::position`]).
    pub epoch: u64,
    /// Seq of the view.
    pub seq: u64,
    /// Live connections to the publish URLs.
    pub publish_connections: u64,
    /// Live connections to the snapshot URLs (0 for a legacy publisher).
    pub snapshot_connections: u64,
    /// Publications received (deltas, heartbeats, legacy lists).
    pub publications: u64,
    /// Time since the last publication from any server (None: none yet).
    pub last_publication_age: Option<Duration>,
    /// Snapshots fetched after the first, all servers together.
    pub resyncs: u64,
    /// Publications dropped as malformed.
    pub dropped: u64,
    /// Publications and snapshots dropped by authentication, by reason (and
    /// unsigned ones accepted under `permissive`).
    pub auth: AuthStats,
}

/// One configured server as a subscriber sees it ([`Subscriber::servers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribedServer {
    /// Its publish URL.
    pub publish: String,
    /// Its snapshot URL (None: a legacy publisher).
    pub snapshot: Option<String>,
    /// Epoch of this server's replica (0 before its first snapshot).
    pub epoch: u64,
    /// Seq of this server's replica.
    pub seq: u64,
    /// Syncing (no snapshot yet), live, or stale (no publication for
    /// `stale_after` of its intervals).
    pub state: State,
    /// The server says it is warming: it may add members, not remove them.
    pub warming: bool,
    /// Members in this server's replica.
    pub members: usize,
    /// Live connections to its publish URL.
    pub publish_connections: u64,
    /// Live connections to its snapshot URL (0 for a legacy publisher).
    pub snapshot_connections: u64,
    /// Time since this server's last publication (None: none yet).
    pub last_publication_age: Option<Duration>,
    /// Publications received from it.
    pub publications: u64,
    /// Snapshots fetched from it after the first.
    pub resyncs: u64,
}

struct View {
    merge: Merge,
    /// The merged state.
    state: State,
    /// Per server: snapshots after the first.
    resyncs: Vec<u64>,
}

impl View {
    /// `(epoch, seq)` shown: the first live server's (the first server's when none is).
    fn position(&self) -> (u64, u64) {
        let i = (0..self.merge.servers())
            .find(|&i| self.merge.state(i) == State::Live)
            .unwrap_or(0);
        self.merge.replica(i).position()
    }

    fn servers(&self, links: &[Link]) -> Vec<SubscribedServer> {
        links
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let r = self.merge.replica(i);
                let (epoch, seq) = r.position();
                SubscribedServer {
                    publish: l.publish.clone(),
                    snapshot: l.snapshot.clone(),
                    epoch,
                    seq,
                    state: self.merge.state(i),
                    warming: self.merge.warming(i),
                    members: r.len(),
                    publish_connections: l.publish_pipes.load(Relaxed),
                    snapshot_connections: l.snapshot_pipes.load(Relaxed),
                    last_publication_age: lock(&l.last_publication).map(|t| t.elapsed()),
                    publications: l.publications.load(Relaxed),
                    resyncs: self.resyncs[i],
                }
            })
            .collect()
    }

    /// What the application is told: this view now, with `events`.
    fn update(&self, links: &[Link], snapshot: bool, events: Vec<Event>) -> Update {
        let (epoch, seq) = self.position();
        Update {
            epoch,
            seq,
            state: self.state,
            snapshot,
            peers: self.merge.view().peers(),
            events,
            live_servers: self.merge.live(),
            servers: self.servers(links),
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
            servers: Vec::new(),
            limits: Limits::default(),
            snapshot_timeout: crate::DEFAULT_SNAPSHOT_TIMEOUT,
            first_view_timeout: crate::DEFAULT_SNAPSHOT_TIMEOUT,
            stale_after: crate::DEFAULT_STALE_AFTER,
            recv_buffer: 8192,
            handler: None,
            auth: Auth::off(),
            auth_set: false,
        }
    }

    fn start(mut cfg: SubscriberBuilder) -> Result<Subscriber> {
        cfg.validate()?;
        let urls = cfg.urls();
        let n = urls.len();
        let shared = Arc::new(Shared {
            view: Mutex::new(View {
                merge: Merge::new(n),
                state: State::Syncing,
                resyncs: vec![0; n],
            }),
            links: urls
                .iter()
                .map(|(p, s)| Link {
                    publish: p.clone(),
                    snapshot: s.clone(),
                    connected: AtomicBool::new(false),
                    req_connected: AtomicBool::new(s.is_none()),
                    publish_pipes: AtomicU64::new(0),
                    snapshot_pipes: AtomicU64::new(0),
                    publications: AtomicU64::new(0),
                    last_publication: Mutex::new(None),
                    awaiting: Mutex::new(None),
                })
                .collect(),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            auth: AuthCell::new(cfg.auth.clone()),
            auth_counters: AuthCounters::default(),
            snapshot_timeout: cfg.snapshot_timeout,
            warn_keyring: Every::new(crate::auth::WARN_EVERY),
        });
        let (tx, rx) = mpsc::channel::<Input>();
        // Everything made from here on is torn down by `workers` on any early return.
        let mut workers = net::Workers::default();
        let (s, stop_tx) = (shared.clone(), tx.clone());
        workers.on_stop(move || {
            s.stop.store(true, Relaxed);
            let _ = stop_tx.send(Input::Stop);
        });
        let mut fetch = Vec::with_capacity(n);
        for (i, (publish, snapshot)) in urls.iter().enumerate() {
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
                i,
                &tx,
                |l| &l.publish_pipes,
                |l| !l.connected.swap(true, Relaxed),
            )?;
            net::dial(&sub, publish)?;
            let (mut inbox, t, s) = (workers.inbox(&sub), tx.clone(), shared.clone());
            workers.spawn("gd-subscriber-recv", move || {
                recv_thread(&mut inbox, i, t, &s)
            })?;
            let Some(url) = snapshot else {
                fetch.push(None);
                continue;
            };
            let req = snapshot_socket(url, i, &cfg, &shared, &tx, &mut workers)?;
            let (fetch_tx, fetch_rx) = mpsc::channel::<Ask>();
            // The snapshot thread may be waiting for a request: wake it at shutdown
            // (the worker that holds the other sender may be the thread closing us).
            let stop_asks = fetch_tx.clone();
            workers.on_stop(move || {
                let _ = stop_asks.send(Ask::Stop);
            });
            fetch.push(Some(fetch_tx));
            let (mut inbox, t, s) = (workers.inbox(&req), tx.clone(), shared.clone());
            let limits = cfg.limits;
            workers.spawn("gd-subscriber-snapshot", move || {
                snapshot_thread(&req, &mut inbox, fetch_rx, (i, t), &s, limits)
            })?;
        }
        let now = Instant::now();
        let mut worker = Worker {
            shared: shared.clone(),
            syncs: urls
                .iter()
                .map(|(_, s)| Driver::new(now, s.is_none(), cfg.limits, cfg.stale_after))
                .collect(),
            fetch,
            handler: cfg.handler.take(),
            first_view_at: now + cfg.first_view_timeout,
            first_view: false,
        };
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

    /// The peer names now, sorted: the merge of every configured server's.
    pub fn peers(&self) -> Vec<String> {
        self.view(|v| v.merge.view().peers())
    }

    /// The members now, sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.view(|v| v.merge.view().members().cloned().collect())
    }

    /// Syncing, live or stale (stale only when no server is live).
    pub fn state(&self) -> State {
        self.view(|v| v.state)
    }

    /// `(epoch, seq)` of the view: the first live server's replica (with one
    /// server, its position).
    pub fn position(&self) -> (u64, u64) {
        self.view(View::position)
    }

    /// Digest of the view (with one server, equal to the server's when in step).
    pub fn digest(&self) -> u64 {
        self.view(|v| v.merge.view().digest())
    }

    /// Snapshots fetched after the first (gaps, epoch changes, digest
    /// mismatches), all servers together.
    pub fn resyncs(&self) -> u64 {
        self.view(|v| v.resyncs.iter().sum())
    }

    /// Publications dropped as malformed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }

    /// Each configured server, in configuration order: URLs, position, state,
    /// warming, members, last publication age, resyncs.
    pub fn servers(&self) -> Vec<SubscribedServer> {
        self.view(|v| v.servers(&self.shared.links))
    }

    /// State, view, connections and counters now.
    pub fn stats(&self) -> SubscriberStats {
        let sh = &self.shared;
        let (state, members, (epoch, seq), resyncs) = self.view(|v| {
            (
                v.state,
                v.merge.view().len(),
                v.position(),
                v.resyncs.iter().sum(),
            )
        });
        let sum = |f: fn(&Link) -> &AtomicU64| sh.links.iter().map(|l| f(l).load(Relaxed)).sum();
        SubscriberStats {
            state,
            members,
            epoch,
            seq,
            publish_connections: sum(|l| &l.publish_pipes),
            snapshot_connections: sum(|l| &l.snapshot_pipes),
            publications: sum(|l| &l.publications),
            last_publication_age: sh
                .links
                .iter()
                .filter_map(|l| lock(&l.last_publication).map(|t| t.elapsed()))
                .min(),
            resyncs,
            dropped: sh.dropped.load(Relaxed),
            auth: sh.auth_counters.stats(),
        }
    }

    /// Replaces the keyring (mode and mesh label stay). Fails on a subscriber
    /// started without one.
    pub fn set_keyring(&self, keyring: Keyring) -> Result<()> {
        self.shared.auth.set_keyring(keyring)
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
    /// The configured servers: those given with [`SubscriberBuilder::server`], or
    /// else the one named by `publish` and `snapshot`.
    fn urls(&self) -> Vec<(String, Option<String>)> {
        if self.servers.is_empty() {
            vec![(self.publish.clone(), self.snapshot.clone())]
        } else {
            self.servers.clone()
        }
    }

    fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        self.auth.validate()?;
        if self.auth.effective_mode() == AuthMode::Required
            && self.urls().iter().any(|(_, s)| s.is_none())
        {
            return Err(Error::option(
                "snapshot",
                "a legacy publisher (no snapshot URL) is unsigned: not with auth required \
                 (use auth permissive)",
            ));
        }
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
        let urls = self.urls();
        if urls.len() > 1 && urls.iter().any(|(_, s)| s.is_none()) {
            return Err(Error::option(
                "server",
                "a legacy publisher (no snapshot URL) can only be the single server",
            ));
        }
        for (i, (p, _)) in urls.iter().enumerate() {
            if urls[..i].iter().any(|(q, _)| q == p) {
                return Err(Error::option("server", format!("{p} is configured twice")));
            }
        }
        Ok(())
    }
}

/// Tells the worker `Input::Connected(i)` on a new connection of `socket` when
/// `first(link)` says so.
fn on_connect(
    socket: &Socket,
    shared: &Arc<Shared>,
    i: usize,
    tx: &Sender<Input>,
    count: fn(&Link) -> &AtomicU64,
    first: impl Fn(&Link) -> bool + Send + Sync + 'static,
) -> Result<()> {
    let (weak, tx) = (Arc::downgrade(shared), tx.clone());
    socket
        .pipe_notify(move |_, ev| {
            let Some(s) = weak.upgrade() else { return };
            let link = &s.links[i];
            match ev {
                PipeEvent::Added => {
                    count(link).fetch_add(1, Relaxed);
                    if first(link) {
                        let _ = tx.send(Input::Connected(i));
                    }
                }
                PipeEvent::Removed => {
                    let _ = count(link).fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
                }
            }
        })
        .map_err(|e| Error::nng("registering connection events", e))
}

/// The req0 socket for server `i`'s snapshots, dialled to `url`.
fn snapshot_socket(
    url: &str,
    i: usize,
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
        i,
        tx,
        |l| &l.snapshot_pipes,
        |l| {
            l.req_connected.store(true, Relaxed);
            true
        },
    )?;
    net::dial(&req, url)?;
    Ok(req)
}

/// Fetches one snapshot from `url`, unauthenticated (the `members` command
/// without a key). See [`fetch_snapshot_with`].
pub fn fetch_snapshot(url: &str, timeout: Duration, limits: &Limits) -> Result<Snapshot> {
    fetch_snapshot_with(url, timeout, limits, &Auth::off())
}

/// Fetches one snapshot from `url`: the request signed and the reply verified by
/// `auth`, and the reply must echo the request's nonce. A server that refuses
/// the request does not answer: the error is then [`Error::Timeout`].
pub fn fetch_snapshot_with(
    url: &str,
    timeout: Duration,
    limits: &Limits,
    auth: &Auth,
) -> Result<Snapshot> {
    auth.validate()?;
    let mut workers = net::Workers::default();
    let req = net::open(Protocol::Req0, false)?;
    workers.socket(&req);
    net::set_recv_max(&req, limits.max_snapshot)?;
    req.set_recv_timeout(Some(timeout))
        .and_then(|()| req.set_send_timeout(Some(timeout)))
        .map_err(|e| Error::nng("setting the timeouts", e))?;
    net::dial(&req, url)?;
    let nonce = crate::auth::nonce();
    let request = auth.seal(Role::SnapshotRequest, wire::encode_snapshot_request(nonce));
    req.send(nng::Message::new(&[], &request))
        .map_err(|(_, e)| Error::nng("sending a snapshot request", e))?;
    let msg = req
        .recv()
        .map_err(|e| Error::nng("receiving a snapshot", e))?;
    decode_snapshot(msg.body(), limits, auth, nonce).map_err(|(e, _)| e)
}

/// Verifies and decodes a snapshot reply; it must echo `nonce`. The error comes
/// with the authentication drop reason, if that is why.
fn decode_snapshot(
    bytes: &[u8],
    limits: &Limits,
    auth: &Auth,
    nonce: u64,
) -> Result<Snapshot, (Error, Option<crate::auth::Reason>)> {
    if let Err(r) = auth.check(Role::Snapshot, bytes) {
        let e = Error::Protocol(format!("snapshot refused: {r} (check the keyring)"));
        return Err((e, Some(r.reason())));
    }
    match wire::decode(bytes, limits) {
        Ok(Message::Snapshot(s)) if s.nonce != nonce => Err((
            Error::Protocol(format!(
                "snapshot refused: it echoes nonce {:016x}, not the request's (a replay)",
                s.nonce
            )),
            Some(crate::auth::Reason::Replayed),
        )),
        Ok(Message::Snapshot(s)) => Ok(s),
        Ok(_) => Err((
            Error::Protocol("the snapshot socket answered with another message type".into()),
            None,
        )),
        Err(e) => Err((Error::Protocol(format!("bad snapshot: {e}")), None)),
    }
}

/// What the worker thread is told; `usize` is the server's index.
enum Input {
    /// A connection of server `i`'s sockets came up.
    Connected(usize),
    /// A publication, in arrival order.
    Publication(usize, Vec<u8>),
    /// The outcome of a snapshot request.
    Snapshot(usize, Result<Snapshot>),
    Stop,
}

fn recv_thread(inbox: &mut nng::Inbox, i: usize, tx: Sender<Input>, shared: &Shared) {
    loop {
        match inbox.recv() {
            Ok(m) if !shared.verify_publication(i, m.body()) => {}
            Ok(m) => {
                if tx.send(Input::Publication(i, m.body().to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.is_closed() => return,
            Err(e) => log::warn!("publish socket receive failed: {e}"),
        }
    }
}

/// What the worker asks of a snapshot thread.
enum Ask {
    Snapshot,
    /// Shutdown: end the thread.
    Stop,
}

fn snapshot_thread(
    req: &Socket,
    inbox: &mut nng::Inbox,
    asks: Receiver<Ask>,
    (i, tx): (usize, Sender<Input>),
    shared: &Shared,
    limits: Limits,
) {
    let awaiting = &shared.links[i].awaiting;
    while let Ok(Ask::Snapshot) = asks.recv() {
        // Non-blocking: fails at once while no server is connected (the driver
        // retries with backoff); once sent, req0 re-sends it until a reply comes.
        // A fresh nonce per request: the reply must echo it.
        let auth = shared.auth.get();
        let nonce = crate::auth::nonce();
        let body = auth.seal(Role::SnapshotRequest, wire::encode_snapshot_request(nonce));
        let request = nng::Message::new(&[], &body);
        let r = match req.try_send(request) {
            Err((_, e)) => Err(Error::nng("sending a snapshot request", e)),
            Ok(()) => {
                *lock(awaiting) = Some(Instant::now());
                let r = match inbox.recv() {
                    Ok(m) => decode_snapshot(m.body(), &limits, &auth, nonce).map_err(|(e, r)| {
                        if let Some(r) = r {
                            shared.auth_counters.dropped(r, "snapshots", &e);
                        }
                        e
                    }),
                    Err(e) => Err(Error::nng("receiving a snapshot", e)),
                };
                *lock(awaiting) = None;
                r
            }
        };
        if matches!(r, Err(Error::Closed)) || tx.send(Input::Snapshot(i, r)).is_err() {
            return;
        }
    }
}

/// The handler's thread: feeds each server's [`Driver`], carries out its
/// actions, and tells the application when the merged view or state changed.
struct Worker {
    shared: Arc<Shared>,
    syncs: Vec<Driver>,
    /// Asks server `i`'s snapshot thread for a snapshot; None for a legacy publisher.
    fetch: Vec<Option<Sender<Ask>>>,
    handler: Option<Handler>,
    /// The first view waits for every server until then, at most.
    first_view_at: Instant,
    first_view: bool,
}

impl Worker {
    fn run(&mut self, rx: Receiver<Input>) {
        let shared = self.shared.clone();
        while !shared.stop.load(Relaxed) {
            let wake = self.wake_at(Instant::now(), &lock(&shared.view));
            let input = match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(i) => Some(i),
                Err(RecvTimeoutError::Timeout) => None,
            };
            let now = Instant::now();
            let update = {
                let mut v = lock(&shared.view);
                let status = |v: &View, i| (v.merge.state(i), v.merge.warming(i));
                let before: Vec<_> = (0..self.syncs.len()).map(|i| status(&v, i)).collect();
                let mut acts = Vec::new();
                match input {
                    None | Some(Input::Stop) => {}
                    Some(Input::Connected(i)) => {
                        let l = &shared.links[i];
                        if l.connected.load(Relaxed) && l.req_connected.load(Relaxed) {
                            self.step(&mut v, now, i, SyncInput::Connected, &mut acts);
                        }
                    }
                    Some(Input::Publication(i, m)) => {
                        let l = &shared.links[i];
                        l.publications.fetch_add(1, Relaxed);
                        *lock(&l.last_publication) = Some(now);
                        self.step(&mut v, now, i, SyncInput::Publication(m), &mut acts);
                    }
                    Some(Input::Snapshot(i, r)) => {
                        let r = r.map_err(|e| e.to_string());
                        if let Err(e) = &r {
                            log::debug!("snapshot from server {i} failed: {e}");
                        }
                        self.step(&mut v, now, i, SyncInput::Snapshot(r), &mut acts);
                    }
                }
                for i in 0..self.syncs.len() {
                    self.step(&mut v, now, i, SyncInput::Tick, &mut acts);
                }
                let moved = (0..self.syncs.len()).any(|i| status(&v, i) != before[i]);
                self.decide(&mut v, now, &acts, moved)
            };
            if let Some(u) = update {
                self.deliver(&u);
            }
        }
    }

    /// When to look again without an input: the earliest of the drivers' wakes
    /// and, before the first view, the first-view timeout.
    fn wake_at(&self, now: Instant, v: &View) -> Instant {
        let mut wake = self
            .syncs
            .iter()
            .enumerate()
            .map(|(i, s)| s.wake_at(now, v.merge.state(i)))
            .min()
            .unwrap_or_else(Instant::now);
        // Only while it is ahead: once passed with no server synced, waking for
        // it again would spin.
        if !self.first_view && self.first_view_at > now {
            wake = wake.min(self.first_view_at);
        }
        wake
    }

    /// Runs server `i`'s driver on one input and carries out its actions.
    fn step(
        &mut self,
        v: &mut View,
        now: Instant,
        i: usize,
        input: SyncInput,
        acts: &mut Vec<Action>,
    ) {
        for a in self.syncs[i].step(now, input, &mut v.merge.source(i)) {
            match &a {
                Action::RequestSnapshot => {
                    if let Some(f) = &self.fetch[i] {
                        let _ = f.send(Ask::Snapshot);
                    }
                }
                Action::Dropped(why) => {
                    self.shared.dropped.fetch_add(1, Relaxed);
                    log::debug!("dropped a publication from server {i}: {why}");
                }
                Action::Replayed(why) => {
                    let c = &self.shared.auth_counters;
                    c.dropped(crate::auth::Reason::Replayed, "publications", why);
                }
                Action::Resync(why) => log::debug!("server {i}: resync ({why:?})"),
                Action::Backoff(_) | Action::Deliver { .. } => {}
            }
            acts.push(a);
        }
        v.resyncs[i] = self.syncs[i].resyncs();
    }

    /// What to tell the application after a step, if anything: the first view
    /// once every server answered (or the first-view timeout passed with one
    /// live), then every change of the merged view or state (with one server,
    /// also every resync, as before several servers; with several, every change
    /// of a server's state or warming, so a degraded mesh is visible).
    fn decide(
        &mut self,
        v: &mut View,
        now: Instant,
        acts: &[Action],
        moved: bool,
    ) -> Option<Update> {
        let links = &self.shared.links;
        let n = self.syncs.len();
        let events = v.merge.take_events();
        let live = v.merge.live() > 0;
        if !self.first_view {
            let all = (0..n).all(|i| v.merge.replica(i).is_synced());
            if !(all || (live && now >= self.first_view_at)) {
                return None;
            }
            self.first_view = true;
            v.state = if live { State::Live } else { State::Stale };
            let joined = v
                .merge
                .view()
                .members()
                .map(|m| Event::joined(m.clone(), Reason::None))
                .collect();
            return Some(v.update(links, true, joined));
        }
        let state = if live { State::Live } else { State::Stale };
        let changed = state != v.state;
        v.state = state;
        let snapshot = acts.contains(&Action::Deliver { snapshot: true });
        let tell = !events.is_empty() || changed || if n == 1 { snapshot } else { moved };
        tell.then(|| v.update(links, snapshot, events))
    }

    fn deliver(&mut self, u: &Update) {
        if let Some(h) = self.handler.as_mut() {
            if catch_unwind(AssertUnwindSafe(|| h(u))).is_err() {
                log::error!("the update handler panicked; delivery goes on");
            }
        }
    }
}
