//! The discovery server: surveys members, keeps the member table, publishes changes
//! and serves snapshots.
//!
//! Threads (all named `gd-server-*`):
//! - `loop`: owns the timers; takes answers from a bounded channel and connection
//!   events from two lists, folds them into the [`MemberTable`], publishes deltas
//!   and heartbeats.
//! - `answers`: blocking receive on the raw surveyor; forwards each answer to `loop`
//!   through the bounded channel. When the loop is behind, this thread blocks, NNG's
//!   receive queue fills, NNG stops reading the connections and TCP pushes back on
//!   the senders: memory does not grow with a flood.
//! - `snapshot`: blocking receive on the rep socket; encodes the table under its lock
//!   (once per seq: the encoding is cached).
//!
//! NNG's pipe-notify callbacks only record a connection event, close a connection
//! over the cap, and nudge the loop without blocking; they never close a socket
//! (nanomsg/nng#1665) and never wait on the bounded channel.
//!
//! Files: `stats.rs` (what the operator reads: statistics, status, histograms),
//! `survey_loop.rs` (the `loop` thread: surveys, answers, publications),
//! `snapshot.rs` (the `snapshot` thread).

mod snapshot;
mod stats;
mod survey_loop;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::auth::{self, Auth, AuthCell, AuthMode, Checked, KeyId, Keyring, Role};
use crate::error::{Error, Result};
use crate::member::{random_u64, Event, EventKind, Limits, Reason};
use crate::member_table::{MemberTable, Refused};
use crate::net::{self, Every};
use crate::nng::{self as nng, PipeEvent, Protocol, Socket};
use crate::wire::{self, DecodeError, Message};

use snapshot::snapshot_thread;
use stats::Counters;
pub use stats::{
    Histogram, LoggedEvent, MemberInfo, ServerStats, ServerStatus, HISTOGRAM_BOUNDS_SECONDS,
    HISTOGRAM_BUCKETS,
};
use survey_loop::Loop;

/// A connection that has not announced itself this long gets an early survey
/// (legacy clients never announce; ours do within a millisecond or so).
const ANNOUNCE_GRACE: Duration = Duration::from_millis(50);
/// Early surveys are coalesced, at most one batch per this gap. Each batch goes
/// only to the connections still waiting (a pipe-targeted survey, see
/// vendor/nng-sys/PATCHES.md), so a mass join costs one message per joiner, not
/// one per member.
const EARLY_SURVEY_GAP: Duration = Duration::from_millis(50);
/// A closed connection's late answers are ignored for this long.
const DEAD_PIPE_MEMORY: Duration = Duration::from_secs(60);
/// At most this many closed connections are remembered (a connect/close flood
/// must not grow the list): beyond it, only the last second's are kept.
const DEAD_PIPE_MAX: usize = 65_536;
/// Answers queued between the answers thread and the loop; and NNG's own receive
/// queue on the survey socket. Beyond both, NNG stops reading (back-pressure).
const ANSWER_QUEUE: usize = 1024;
/// One warning line per cause at most this often.
const WARN_GAP: Duration = Duration::from_secs(10);
/// Default cap on concurrent connections per socket: above the 10,000 members the
/// library is built for, below the usual descriptor limits (the server raises its
/// soft limit to the hard one, often 65,536 or more; it warns at start when the
/// limit is below this cap).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Default cap on members per survey connection: a native client is one member;
/// a legacy client answers one name. Raise it for a proxy answering for several.
pub const DEFAULT_MAX_MEMBERS_PER_CONNECTION: usize = 1;
/// Events kept for [`Server::recent_events`] (the status page shows them).
pub const RECENT_EVENTS: usize = 200;
/// A member that left and is back within this long counts as a flap.
const FLAP_WINDOW: Duration = Duration::from_secs(60);
/// Surveys whose send time is kept for `answer_latency`: early surveys go out at
/// most every 50 ms, so this covers a few seconds.
const SENT_REMEMBERED: usize = 64;
/// The answer to a survey sent to one connection (an early survey, a challenge)
/// is taken at least this long after it was sent (see `Loop::targeted_ttl`).
const TARGETED_TTL: Duration = Duration::from_secs(10);
/// At most this many surveys sent to one connection are remembered; beyond it,
/// only the last 2 intervals' are kept.
const TARGETED_MAX: usize = 65_536;
/// The server logs a one-line summary at `info` this often.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Settings of a [`Server`]; start it with [`ServerBuilder::start`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    survey: String,
    publish: String,
    snapshot: String,
    legacy_publish: Option<String>,
    interval: Duration,
    /// None: half the interval.
    deadline: Option<Duration>,
    evict_after: u32,
    limits: Limits,
    publication_bytes: usize,
    max_connections: usize,
    max_members_per_connection: usize,
    auth: Auth,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            survey: net::DEFAULT_SURVEY_URL.into(),
            publish: net::DEFAULT_PUBLISH_URL.into(),
            snapshot: net::DEFAULT_SNAPSHOT_URL.into(),
            legacy_publish: None,
            interval: crate::DEFAULT_INTERVAL,
            deadline: None,
            evict_after: crate::DEFAULT_EVICT_AFTER,
            limits: Limits::default(),
            publication_bytes: 64 * 1024,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_members_per_connection: DEFAULT_MAX_MEMBERS_PER_CONNECTION,
            auth: Auth::off(),
        }
    }
}

impl ServerBuilder {
    /// Survey URL (surveyor0), default `tcp://127.0.0.1:40007`.
    pub fn survey(mut self, url: impl Into<String>) -> Self {
        self.survey = url.into();
        self
    }
    /// Publish URL (pub0), default `tcp://127.0.0.1:50007`.
    pub fn publish(mut self, url: impl Into<String>) -> Self {
        self.publish = url.into();
        self
    }
    /// Snapshot URL (rep0), default `tcp://127.0.0.1:50008`.
    pub fn snapshot(mut self, url: impl Into<String>) -> Self {
        self.snapshot = url.into();
        self
    }
    /// Optional legacy publish URL (pub0): the full sorted list joined with `|`
    /// on every change, as the original Go server sends.
    pub fn legacy_publish(mut self, url: Option<String>) -> Self {
        self.legacy_publish = url;
        self
    }
    /// Time between regular surveys (default 1 s).
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }
    /// How long answers to a regular survey are awaited before the round ends
    /// (default: half the interval, so 500 ms with the default interval; must be
    /// shorter than the interval).
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// The deadline in force: the one set, or half the interval.
    pub fn effective_deadline(&self) -> Duration {
        self.deadline.unwrap_or(self.interval / 2)
    }
    /// Consecutive missed surveys before a member leaves with reason `timeout` (default 3).
    pub fn evict_after(mut self, n: u32) -> Self {
        self.evict_after = n;
        self
    }
    /// Size limits. `max_snapshot` is also the server's snapshot budget: the
    /// table refuses new members (counted `dropped_budget`) rather than grow a
    /// snapshot its subscribers, with the same limit, could not fetch.
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }
    /// Largest delta publication in bytes; larger batches are split, each part with
    /// its own seq (default 64 KiB).
    pub fn publication_bytes(mut self, n: usize) -> Self {
        self.publication_bytes = n;
        self
    }

    /// Most concurrent connections per socket (default 16,384); one more is closed
    /// as it comes, counted `refused_connections`, with a warning at most every 10 s.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    /// Most members per survey connection (default 1: a native client or a legacy
    /// one is one member per connection); raise it for a proxy answering for
    /// several. Over it, answers are dropped, counted `dropped_per_connection`.
    pub fn max_members_per_connection(mut self, n: usize) -> Self {
        self.max_members_per_connection = n;
        self
    }

    /// Signs every survey, publication and snapshot with the keyring's primary
    /// key and accepts only answers and snapshot requests that verify (auth
    /// `required`, unless [`ServerBuilder::auth`] says otherwise).
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.auth = self.auth.keyring(Some(keyring));
        self
    }
    /// `off`, `permissive` or `required` (default: `required` with a keyring,
    /// `off` without).
    pub fn auth(mut self, mode: AuthMode) -> Self {
        self.auth = self.auth.mode(mode);
        self
    }
    /// The mesh label every tag covers (default empty).
    pub fn mesh_label(mut self, label: impl Into<String>) -> Self {
        self.auth = self.auth.mesh_label(label);
        self
    }
    /// Keyring, mode and label at once.
    pub fn authentication(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Checks every setting; the error names the option.
    pub fn validate(&self) -> Result<()> {
        self.auth.validate()?;
        if self.legacy_publish.is_some() && self.auth.effective_mode() == AuthMode::Required {
            return Err(Error::option(
                "legacy_publish",
                "the legacy publication cannot be signed: not with auth required \
                 (use auth permissive while legacy subscribers remain)",
            ));
        }
        if self.interval.is_zero() {
            return Err(Error::option("interval", "must be greater than zero"));
        }
        if self.interval.as_millis() > u32::MAX as u128 {
            return Err(Error::option("interval", "must be at most 49 days"));
        }
        let deadline = self.effective_deadline();
        if deadline.is_zero() {
            return Err(Error::option("deadline", "must be greater than zero"));
        }
        if deadline >= self.interval {
            return Err(Error::option(
                "deadline",
                format!(
                    "must be shorter than the interval ({} ms >= {} ms)",
                    deadline.as_millis(),
                    self.interval.as_millis()
                ),
            ));
        }
        if self.evict_after == 0 {
            return Err(Error::option("evict_after", "must be at least 1"));
        }
        self.limits.validate()?;
        if self.max_connections == 0 {
            return Err(Error::option("max_connections", "must be at least 1"));
        }
        if self.max_members_per_connection == 0 {
            return Err(Error::option(
                "max_members_per_connection",
                "must be at least 1",
            ));
        }
        if self.publication_bytes < 1024 || self.publication_bytes > self.limits.max_message {
            return Err(Error::option(
                "publication_bytes",
                "must be between 1 KiB and max_message",
            ));
        }
        let mut urls = vec![&self.survey, &self.publish, &self.snapshot];
        urls.extend(self.legacy_publish.as_ref());
        for (i, a) in urls.iter().enumerate() {
            // Port 0 asks the kernel for a fresh port each time: not a clash.
            if !a.ends_with(":0") && urls[..i].contains(a) {
                return Err(Error::option(
                    "url",
                    format!("{a} is given for two sockets"),
                ));
            }
        }
        Ok(())
    }

    /// Listens on every URL and starts the heartbeat. Fails with
    /// [`Error::AddressInUse`] or [`Error::InvalidUrl`] naming the URL.
    pub fn start(self) -> Result<Server> {
        Server::start(self)
    }
}

struct Core {
    table: MemberTable,
    seq: u64,
    /// The publication counter: +1 per delta and per heartbeat (both sent by the
    /// loop, allocated under this lock so a snapshot's counter orders with them).
    counter: u64,
    /// Per member: when it joined and when it last answered (status page).
    seen: HashMap<String, (SystemTime, Instant)>,
    /// Members that left lately, with when (flap counting); pruned each round.
    left_at: HashMap<String, Instant>,
}

/// What the operator sees of the survey loop (status page, health, metrics).
struct Ops {
    started: SystemTime,
    started_at: Instant,
    deadline: Duration,
    evict_after: u32,
    last_round: Option<Instant>,
    round_answered: usize,
    round_missed: usize,
    legacy_members: usize,
    recent: VecDeque<LoggedEvent>,
}

struct Shared {
    epoch: u64,
    interval_ms: u32,
    /// Until then the server is warming: it may not have surveyed every connected
    /// member through one eviction cycle (`evict_after` × interval + deadline), so
    /// its HEARTBEAT and SNAPSHOT say so and merging subscribers let it add
    /// members, never remove them.
    warm_until: Instant,
    limits: Limits,
    auth: AuthCell,
    core: Mutex<Core>,
    counters: Counters,
    /// Connections that closed, with when: their late answers are ignored.
    dead: Mutex<HashMap<u32, Instant>>,
    /// Survey connections added and closed that the loop has not handled yet
    /// (never on the bounded channel: NNG's thread must not wait). The loop checks
    /// `conn_waiting` before each input, so a closed member is published at once
    /// instead of after a survey round's answers queued ahead of it.
    added: Mutex<Vec<u32>>,
    closed: Mutex<Vec<u32>>,
    conn_waiting: AtomicBool,
    stopping: AtomicBool,
    /// Rate limits of the warnings.
    warn_full: Every,
    warn_fds: Every,
    ops: Mutex<Ops>,
}

impl Shared {
    fn warming(&self) -> bool {
        Instant::now() < self.warm_until
    }
}

enum Input {
    Answer(nng::Message),
    /// Something is in `Shared::added`/`closed`, or `stopping` is set.
    Wake,
}

/// Nudges the loop without ever blocking (a full channel wakes it anyway).
fn wake(tx: &SyncSender<Input>) {
    let _ = tx.try_send(Input::Wake);
}

/// The URLs a server listens on, as bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrls {
    /// Survey socket.
    pub survey: String,
    /// Publish socket.
    pub publish: String,
    /// Snapshot socket.
    pub snapshot: String,
    /// Legacy publish socket, if any.
    pub legacy_publish: Option<String>,
}

/// A running discovery server. Dropping it (or [`Server::close`]) stops it; members
/// see their connections close and reconnect when a server comes back.
pub struct Server {
    shared: Arc<Shared>,
    workers: net::Workers,
    urls: ServerUrls,
}

/// The server's sockets, opened and set up.
struct Sockets {
    surveyor: Socket,
    publisher: Socket,
    rep: Socket,
    legacy: Option<Socket>,
}

impl Sockets {
    /// Opens the sockets, each with a receive limit (NNG checks a frame's length
    /// header against it before allocating, and closes the connection when over)
    /// and a connection cap (every socket but the surveyor is capped here; the
    /// surveyor's cap is in [`watch_connections`]).
    fn open(
        cfg: &ServerBuilder,
        max_answer: usize,
        shared: &Arc<Shared>,
        w: &mut net::Workers,
    ) -> Result<Sockets> {
        let open = |w: &mut net::Workers, proto, raw, recv_max| {
            let s = net::open(proto, raw)?;
            w.socket(&s);
            net::set_recv_max(&s, recv_max)?;
            Ok::<_, Error>(s)
        };
        let capped = |w: &mut net::Workers, proto, recv_max, what| {
            let s = open(w, proto, false, recv_max)?;
            let cap = Cap::new(cfg.max_connections, what, shared);
            s.pipe_notify(move |id, ev| {
                cap.event(id, ev);
            })
            .map_err(|e| Error::nng("registering connection events", e))?;
            Ok::<_, Error>(s)
        };
        // Let NNG pass answers up to twice our limit, so we can count the oversize
        // ones; larger frames make NNG close the connection.
        let surveyor = open(w, Protocol::Surveyor0, true, 2 * max_answer)?;
        net::set_buffers(&surveyor, Some(ANSWER_QUEUE as i32), None)?;
        // A publisher reads nothing: NNG's 0 means "no limit", so 1 byte is the
        // least; any frame longer closes the connection.
        let publisher = capped(w, Protocol::Pub0, 1, "publish")?;
        net::set_buffers(&publisher, None, Some(8192))?;
        let rep = capped(w, Protocol::Rep0, 1024, "snapshot")?;
        let legacy = match &cfg.legacy_publish {
            Some(_) => {
                let s = capped(w, Protocol::Pub0, 1, "legacy publish")?;
                net::set_buffers(&s, None, Some(8192))?;
                Some(s)
            }
            None => None,
        };
        Ok(Sockets {
            surveyor,
            publisher,
            rep,
            legacy,
        })
    }

    fn listen(&self, cfg: &ServerBuilder) -> Result<ServerUrls> {
        Ok(ServerUrls {
            survey: net::listen(&self.surveyor, &cfg.survey)?,
            publish: net::listen(&self.publisher, &cfg.publish)?,
            snapshot: net::listen(&self.rep, &cfg.snapshot)?,
            legacy_publish: match (&self.legacy, &cfg.legacy_publish) {
                (Some(s), Some(u)) => Some(net::listen(s, u)?),
                _ => None,
            },
        })
    }
}

impl Shared {
    fn new(cfg: &ServerBuilder) -> Shared {
        Shared {
            epoch: random_u64(),
            interval_ms: cfg.interval.as_millis() as u32,
            warm_until: Instant::now() + cfg.interval * cfg.evict_after + cfg.effective_deadline(),
            limits: cfg.limits,
            auth: AuthCell::new(cfg.auth.clone()),
            core: Mutex::new(Core {
                table: MemberTable::new(cfg.evict_after, cfg.limits.max_members)
                    .per_connection(cfg.max_members_per_connection)
                    .max_bytes(cfg.limits.max_snapshot - wire::SNAPSHOT_HEADER_LEN),
                seq: 0,
                counter: 0,
                seen: HashMap::new(),
                left_at: HashMap::new(),
            }),
            counters: Counters::default(),
            dead: Mutex::new(HashMap::new()),
            added: Mutex::new(Vec::new()),
            closed: Mutex::new(Vec::new()),
            conn_waiting: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            warn_full: Every::new(WARN_GAP),
            warn_fds: Every::new(WARN_GAP),
            ops: Mutex::new(Ops {
                started: SystemTime::now(),
                started_at: Instant::now(),
                deadline: cfg.effective_deadline(),
                evict_after: cfg.evict_after,
                last_round: None,
                round_answered: 0,
                round_missed: 0,
                legacy_members: 0,
                recent: VecDeque::new(),
            }),
        }
    }
}

impl Server {
    /// The default settings; chain setters, then `.start()`.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    fn start(cfg: ServerBuilder) -> Result<Server> {
        cfg.validate()?;
        if cfg.legacy_publish.is_some() && cfg.auth.signs() {
            log::warn!(
                "the legacy publish URL is unsigned: anyone who reaches it reads the member \
                 list, and a legacy subscriber cannot tell a forged list (auth permissive)"
            );
        }
        match net::raise_fd_limit() {
            Err(e) => log::warn!("could not raise the open-file limit: {e}"),
            Ok(limit) if limit < cfg.max_connections as u64 => log::warn!(
                "the open-file limit ({limit}) is below max_connections ({}): members \
                 beyond it cannot connect; raise the limit or lower max_connections",
                cfg.max_connections
            ),
            Ok(_) => {}
        }
        let max_answer = wire::MAX_OVERHEAD + cfg.limits.max_name + cfg.limits.max_metadata;
        // Everything made from here on is torn down by `workers` on any early return.
        let mut workers = net::Workers::default();
        let shared = Arc::new(Shared::new(&cfg));
        let sockets = Sockets::open(&cfg, max_answer, &shared, &mut workers)?;
        let (tx, rx) = mpsc::sync_channel::<Input>(ANSWER_QUEUE);
        let (stop_tx, s) = (tx.clone(), shared.clone());
        workers.on_stop(move || {
            s.stopping.store(true, Release);
            wake(&stop_tx);
        });
        let cap = Cap::new(cfg.max_connections, "survey", &shared);
        watch_connections(&sockets.surveyor, &shared, cap, tx.clone())?;
        let urls = sockets.listen(&cfg)?;

        let (mut answers, s, t) = (workers.inbox(&sockets.surveyor), shared.clone(), tx);
        workers.spawn("gd-server-answers", move || {
            answers_thread(&mut answers, t, s)
        })?;
        let (mut requests, s, rep) = (workers.inbox(&sockets.rep), shared.clone(), sockets.rep);
        workers.spawn("gd-server-snapshot", move || {
            snapshot_thread(&rep, &mut requests, s)
        })?;
        let mut lp = Loop::new(
            shared.clone(),
            sockets.surveyor,
            sockets.publisher,
            sockets.legacy,
            &cfg,
            max_answer,
        );
        workers.spawn("gd-server-loop", move || lp.run(rx))?;
        log::debug!(
            "serving survey={} publish={} snapshot={}{} epoch={:016x}",
            urls.survey,
            urls.publish,
            urls.snapshot,
            urls.legacy_publish
                .as_ref()
                .map(|u| format!(" legacy-publish={u}"))
                .unwrap_or_default(),
            shared.epoch
        );
        Ok(Server {
            shared,
            workers,
            urls,
        })
    }

    /// The URLs as bound (tcp port 0 replaced by the real port).
    pub fn urls(&self) -> &ServerUrls {
        &self.urls
    }

    /// This run's epoch (random per start).
    pub fn epoch(&self) -> u64 {
        self.shared.epoch
    }

    /// True while the server is warming: for `evict_after` × interval + deadline
    /// after its start (its HEARTBEAT and SNAPSHOT say so).
    pub fn warming(&self) -> bool {
        self.shared.warming()
    }

    /// `(seq, member count, digest)` now.
    pub fn position(&self) -> (u64, usize, u64) {
        let c = self.shared.core.lock().unwrap_or_else(|p| p.into_inner());
        (c.seq, c.table.len(), c.table.digest())
    }

    /// The members now, sorted by name.
    pub fn members(&self) -> Vec<crate::Member> {
        let c = self.shared.core.lock().unwrap_or_else(|p| p.into_inner());
        c.table.members().cloned().collect()
    }

    /// Position, census and survey-loop health now.
    pub fn status(&self) -> ServerStatus {
        let (seq, members, digest) = self.position();
        let c = &self.shared.counters;
        let o = nng::lock(&self.shared.ops);
        let open = |a: &AtomicU64, b: &AtomicU64| a.load(Relaxed).saturating_sub(b.load(Relaxed));
        ServerStatus {
            epoch: self.shared.epoch,
            seq,
            digest,
            members,
            legacy_members: o.legacy_members,
            round_answered: o.round_answered,
            round_missed: o.round_missed,
            started: o.started,
            uptime: o.started_at.elapsed(),
            last_round_age: o.last_round.map(|t| t.elapsed()),
            interval: Duration::from_millis(self.shared.interval_ms.into()),
            deadline: o.deadline,
            evict_after: o.evict_after,
            survey_connections: open(&c.survey_opened, &c.survey_closed),
            publish_connections: open(&c.publish_opened, &c.publish_closed),
        }
    }

    /// The last [`RECENT_EVENTS`] member events, oldest first.
    pub fn recent_events(&self) -> Vec<LoggedEvent> {
        nng::lock(&self.shared.ops).recent.iter().cloned().collect()
    }

    /// The members now with what the server knows of each, sorted by name.
    pub fn member_info(&self) -> Vec<MemberInfo> {
        let c = self.shared.core.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        c.table
            .members()
            .map(|m| {
                let (joined, last) = c
                    .seen
                    .get(&m.name)
                    .copied()
                    .unwrap_or((SystemTime::now(), now));
                MemberInfo {
                    member: m.clone(),
                    joined,
                    last_answer_age: now.saturating_duration_since(last),
                    missed: c.table.missed(&m.name).unwrap_or(0),
                    legacy: m.incarnation == 0,
                }
            })
            .collect()
    }

    /// What was taken and dropped so far.
    pub fn stats(&self) -> ServerStats {
        self.shared.counters.stats()
    }

    /// Replaces the keyring (the mode and mesh label stay): what is sent next is
    /// signed with its primary; what comes next is verified with its keys. The
    /// CLI calls it on SIGHUP. Fails on a server started without a keyring.
    pub fn set_keyring(&self, keyring: Keyring) -> Result<()> {
        self.shared.auth.set_keyring(keyring)
    }

    /// The authentication mode in force.
    pub fn auth_mode(&self) -> AuthMode {
        self.shared.auth.get().effective_mode()
    }

    /// Per key id of the keyring (primary first), the messages verified with it
    /// since the start (kept across [`Server::set_keyring`]): when the old key's
    /// count stops rising, no one signs with it any more. Empty without a keyring.
    pub fn key_use(&self) -> Vec<(KeyId, u64)> {
        let a = self.shared.auth.get();
        a.get_keyring().map(Keyring::verified).unwrap_or_default()
    }

    /// Stops the server: closes its sockets and joins its threads. Idempotent.
    pub fn close(&mut self) {
        self.workers.shutdown();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close();
    }
}

/// The connection cap of one socket: a connection over `max` is closed as it
/// comes (from NNG's pipe callback, which NNG allows), counted and warned about
/// at most every 10 s.
struct Cap {
    max: usize,
    what: &'static str,
    live: Mutex<HashSet<u32>>,
    shared: std::sync::Weak<Shared>,
    warn: Every,
}

impl Cap {
    fn new(max: usize, what: &'static str, shared: &Arc<Shared>) -> Cap {
        Cap {
            max,
            what,
            live: Mutex::new(HashSet::new()),
            shared: Arc::downgrade(shared),
            warn: Every::new(WARN_GAP),
        }
    }

    /// The opened/closed counters of this socket, if the operator sees them.
    fn counters<'a>(&self, s: &'a Shared) -> Option<(&'a AtomicU64, &'a AtomicU64)> {
        let c = &s.counters;
        match self.what {
            "survey" => Some((&c.survey_opened, &c.survey_closed)),
            "publish" => Some((&c.publish_opened, &c.publish_closed)),
            _ => None,
        }
    }

    /// Counts the connection in or out; false when it was refused (closed).
    fn event(&self, id: u32, ev: PipeEvent) -> bool {
        let mut live = nng::lock(&self.live);
        let count = |closed: bool| {
            if let Some(s) = self.shared.upgrade() {
                if let Some((opened, shut)) = self.counters(&s) {
                    if closed { shut } else { opened }.fetch_add(1, Relaxed);
                }
            }
        };
        if ev == PipeEvent::Removed {
            if live.remove(&id) {
                count(true);
            }
            return true;
        }
        if live.len() < self.max {
            live.insert(id);
            count(false);
            return true;
        }
        drop(live);
        nng::close_pipe(id);
        let Some(s) = self.shared.upgrade() else {
            return false;
        };
        let n = s.counters.refused_connections.fetch_add(1, Relaxed) + 1;
        if self.warn.due().is_some() {
            log::warn!(
                "{} socket: {} connections open, the cap (max_connections); \
                 refusing new ones ({n} refused so far)",
                self.what,
                self.max
            );
        }
        false
    }
}

/// Survey connection events: cap the count, record closes synchronously (so late
/// answers from a closed connection are recognised), list the event for the loop
/// and nudge it. Never blocks NNG's thread.
fn watch_connections(
    surveyor: &Socket,
    shared: &Arc<Shared>,
    cap: Cap,
    tx: SyncSender<Input>,
) -> Result<()> {
    let shared = Arc::downgrade(shared);
    surveyor
        .pipe_notify(move |id, ev| {
            if !cap.event(id, ev) {
                return;
            }
            let Some(s) = shared.upgrade() else { return };
            match ev {
                PipeEvent::Added => nng::lock(&s.added).push(id),
                PipeEvent::Removed => {
                    let now = Instant::now();
                    let mut dead = nng::lock(&s.dead);
                    if dead.len() >= DEAD_PIPE_MAX {
                        dead.retain(|_, t| {
                            now.saturating_duration_since(*t) < Duration::from_secs(1)
                        });
                    }
                    dead.insert(id, now);
                    drop(dead);
                    nng::lock(&s.closed).push(id);
                }
            }
            s.conn_waiting.store(true, Release);
            wake(&tx);
        })
        .map_err(|e| Error::nng("registering connection events", e))
}

fn answers_thread(inbox: &mut nng::Inbox, tx: SyncSender<Input>, shared: Arc<Shared>) {
    loop {
        match inbox.recv() {
            Ok(msg) => {
                // Blocks while the loop is behind: back-pressure down to TCP.
                if tx.send(Input::Answer(msg)).is_err() {
                    return;
                }
            }
            Err(e) if e.is_closed() => return,
            Err(e) => {
                log::warn!("survey socket receive failed: {e}");
                shared.counters.dropped_malformed.fetch_add(1, Relaxed);
            }
        }
    }
}
