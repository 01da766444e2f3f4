//! The discovery server: surveys members, keeps the member table, publishes changes
//! and serves snapshots.
//!
//! Threads (all named `gd-server-*`):
//! - `loop`: owns the timers; takes answers and connection events from one channel,
//!   folds them into the [`MemberTable`], publishes deltas and heartbeats.
//! - `answers`: blocking receive on the raw surveyor; forwards each answer to `loop`.
//! - `snapshot`: blocking receive on the rep socket; encodes the table under its lock.
//!
//! NNG's pipe-notify callback only records a closed connection and posts an event;
//! it never closes a socket (nanomsg/nng#1665).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::member::{random_u64, Event, EventKind, Limits, Member, Reason};
use crate::member_table::MemberTable;
use crate::net;
use crate::nng::{self as nng, PipeEvent, Protocol, Socket};
use crate::wire::{self, Message};

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
/// Events kept for [`Server::recent_events`] (the status page shows them).
pub const RECENT_EVENTS: usize = 200;
/// A member that left and is back within this long counts as a flap.
const FLAP_WINDOW: Duration = Duration::from_secs(60);
/// The server logs a one-line summary at `info` this often.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counters of what the server did and dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerStats {
    /// Native answers taken.
    pub answers: u64,
    /// Legacy raw-string answers taken.
    pub legacy_answers: u64,
    /// Answers dropped: not a valid answer (garbage, bad UTF-8, empty name, unknown version…).
    pub dropped_malformed: u64,
    /// Answers dropped: larger than name + metadata limits allow.
    pub dropped_oversize: u64,
    /// Answers dropped: the table holds `max_members` already.
    pub dropped_full: u64,
    /// Snapshot requests dropped: not a valid request.
    pub dropped_requests: u64,
    /// Surveys sent (regular and early).
    pub surveys: u64,
    /// Delta publications sent.
    pub deltas: u64,
    /// Heartbeat publications sent.
    pub heartbeats: u64,
    /// Snapshots served.
    pub snapshots: u64,
    /// Early surveys (to new connections only), a part of `surveys`.
    pub early_surveys: u64,
    /// Survey rounds completed (deadline reached and answers folded in).
    pub rounds: u64,
    /// Members that joined (restarts included).
    pub joined: u64,
    /// Members that left because their connection closed.
    pub left_closed: u64,
    /// Members that left after `evict_after` missed surveys.
    pub left_timeout: u64,
    /// Members that restarted (a new incarnation under the same name).
    pub restarted: u64,
    /// Members whose metadata changed.
    pub updated: u64,
    /// Members that left and came back within 60 s.
    pub flaps: u64,
    /// Bytes of delta publications sent.
    pub delta_bytes: u64,
    /// Bytes of heartbeat publications sent.
    pub heartbeat_bytes: u64,
    /// Bytes of snapshots served.
    pub snapshot_bytes: u64,
    /// Connections opened on the survey socket.
    pub survey_connections_opened: u64,
    /// Connections closed on the survey socket.
    pub survey_connections_closed: u64,
    /// Connections opened on the publish socket (subscribers).
    pub publish_connections_opened: u64,
    /// Connections closed on the publish socket.
    pub publish_connections_closed: u64,
}

/// One entry of the server's log of recent member events ([`Server::recent_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// When the server published it.
    pub time: SystemTime,
    /// Joined, left or updated.
    pub kind: EventKind,
    /// Why.
    pub reason: Reason,
    /// The member's name.
    pub name: String,
}

/// A member as the server sees it ([`Server::member_info`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Name, metadata, incarnation.
    pub member: Member,
    /// When it joined (this incarnation).
    pub joined: SystemTime,
    /// Time since its last answer.
    pub last_answer_age: Duration,
    /// Consecutive surveys missed so far.
    pub missed: u32,
    /// A legacy member (raw-string answers, incarnation 0).
    pub legacy: bool,
}

/// Where the server is now ([`Server::status`]): position, census and the health
/// of its survey loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// This run's epoch.
    pub epoch: u64,
    /// Sequence number of the last delta.
    pub seq: u64,
    /// Digest of the member set.
    pub digest: u64,
    /// Members now.
    pub members: usize,
    /// Legacy members among them.
    pub legacy_members: usize,
    /// Members that answered the last completed round.
    pub round_answered: usize,
    /// Members that missed the last completed round.
    pub round_missed: usize,
    /// When the server started.
    pub started: SystemTime,
    /// Time since the server started.
    pub uptime: Duration,
    /// Time since the last survey round completed (None: none yet).
    pub last_round_age: Option<Duration>,
    /// Survey interval.
    pub interval: Duration,
    /// Survey deadline.
    pub deadline: Duration,
    /// Missed surveys before eviction.
    pub evict_after: u32,
    /// Live connections on the survey socket.
    pub survey_connections: u64,
    /// Live connections on the publish socket (subscribers).
    pub publish_connections: u64,
}

impl ServerStatus {
    /// True while the survey loop has completed a round within 2 intervals (a
    /// server younger than that counts as healthy).
    pub fn healthy(&self) -> bool {
        self.last_round_age.unwrap_or(self.uptime) <= 2 * self.interval
    }
}

#[derive(Default)]
struct Counters {
    answers: AtomicU64,
    legacy_answers: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_oversize: AtomicU64,
    dropped_full: AtomicU64,
    dropped_requests: AtomicU64,
    surveys: AtomicU64,
    deltas: AtomicU64,
    heartbeats: AtomicU64,
    snapshots: AtomicU64,
    early_surveys: AtomicU64,
    rounds: AtomicU64,
    joined: AtomicU64,
    left_closed: AtomicU64,
    left_timeout: AtomicU64,
    restarted: AtomicU64,
    updated: AtomicU64,
    flaps: AtomicU64,
    delta_bytes: AtomicU64,
    heartbeat_bytes: AtomicU64,
    snapshot_bytes: AtomicU64,
    survey_opened: AtomicU64,
    survey_closed: AtomicU64,
    publish_opened: AtomicU64,
    publish_closed: AtomicU64,
}

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
    /// Size limits.
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

    /// Checks every setting; the error names the option.
    pub fn validate(&self) -> Result<()> {
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
    limits: Limits,
    core: Mutex<Core>,
    counters: Counters,
    /// Connections that closed, with when: their late answers are ignored.
    dead: Mutex<HashMap<u32, Instant>>,
    /// Connections that closed and that the loop has not handled yet. The loop
    /// checks `closed_waiting` before each input, so a closed member is published
    /// at once instead of after a survey round's answers queued ahead of it.
    closed: Mutex<Vec<u32>>,
    closed_waiting: AtomicBool,
    ops: Mutex<Ops>,
}

enum Input {
    Answer(nng::Message),
    PipeAdded(u32),
    /// A connection closed (it is in `Shared::closed`); wakes the loop.
    Closed,
    Stop,
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
    fn open(cfg: &ServerBuilder, max_answer: usize, w: &mut net::Workers) -> Result<Sockets> {
        let open = |w: &mut net::Workers, proto, raw| {
            let s = net::open(proto, raw)?;
            w.socket(&s);
            Ok::<_, Error>(s)
        };
        let surveyor = open(w, Protocol::Surveyor0, true)?;
        net::set_buffers(&surveyor, Some(8192), None)?;
        // Let NNG pass answers up to twice our limit, so we can count the oversize
        // ones; larger frames make NNG close the connection.
        net::set_recv_max(&surveyor, 2 * max_answer)?;
        let publisher = open(w, Protocol::Pub0, false)?;
        net::set_buffers(&publisher, None, Some(8192))?;
        let rep = open(w, Protocol::Rep0, false)?;
        net::set_recv_max(&rep, 1024)?;
        let legacy = match &cfg.legacy_publish {
            Some(_) => {
                let s = open(w, Protocol::Pub0, false)?;
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

impl Server {
    /// The default settings; chain setters, then `.start()`.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    fn start(cfg: ServerBuilder) -> Result<Server> {
        cfg.validate()?;
        if let Err(e) = net::raise_fd_limit() {
            log::warn!("could not raise the open-file limit: {e}");
        }
        let max_answer = wire::MAX_OVERHEAD + cfg.limits.max_name + cfg.limits.max_metadata;
        // Everything made from here on is torn down by `workers` on any early return.
        let mut workers = net::Workers::default();
        let sockets = Sockets::open(&cfg, max_answer, &mut workers)?;
        let shared = Arc::new(Shared {
            epoch: random_u64(),
            interval_ms: cfg.interval.as_millis() as u32,
            limits: cfg.limits,
            core: Mutex::new(Core {
                table: MemberTable::new(cfg.evict_after, cfg.limits.max_members),
                seq: 0,
                seen: HashMap::new(),
                left_at: HashMap::new(),
            }),
            counters: Counters::default(),
            dead: Mutex::new(HashMap::new()),
            closed: Mutex::new(Vec::new()),
            closed_waiting: AtomicBool::new(false),
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
        });
        let (tx, rx) = mpsc::channel::<Input>();
        let stop_tx = Mutex::new(tx.clone());
        workers.on_stop(move || {
            let _ = nng::lock(&stop_tx).send(Input::Stop);
        });
        watch_connections(&sockets.surveyor, &shared, tx.clone())?;
        count_subscribers(&sockets.publisher, &shared)?;
        let urls = sockets.listen(&cfg)?;

        let (mut answers, s, t) = (workers.inbox(&sockets.surveyor), shared.clone(), tx);
        workers.spawn("gd-server-answers", move || {
            answers_thread(&mut answers, t, s)
        })?;
        let (mut requests, s, rep) = (workers.inbox(&sockets.rep), shared.clone(), sockets.rep);
        workers.spawn("gd-server-snapshot", move || {
            snapshot_thread(&rep, &mut requests, s)
        })?;
        let mut lp = Loop {
            shared: shared.clone(),
            surveyor: sockets.surveyor,
            publisher: sockets.publisher,
            legacy: sockets.legacy,
            interval: cfg.interval,
            deadline: cfg.effective_deadline(),
            publication_bytes: cfg.publication_bytes,
            max_answer,
            round: 0,
            pending_new: HashMap::new(),
            events: Vec::new(),
            last_summary: Instant::now(),
        };
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
        let c = &self.shared.counters;
        ServerStats {
            answers: c.answers.load(Relaxed),
            legacy_answers: c.legacy_answers.load(Relaxed),
            dropped_malformed: c.dropped_malformed.load(Relaxed),
            dropped_oversize: c.dropped_oversize.load(Relaxed),
            dropped_full: c.dropped_full.load(Relaxed),
            dropped_requests: c.dropped_requests.load(Relaxed),
            surveys: c.surveys.load(Relaxed),
            deltas: c.deltas.load(Relaxed),
            heartbeats: c.heartbeats.load(Relaxed),
            snapshots: c.snapshots.load(Relaxed),
            early_surveys: c.early_surveys.load(Relaxed),
            rounds: c.rounds.load(Relaxed),
            joined: c.joined.load(Relaxed),
            left_closed: c.left_closed.load(Relaxed),
            left_timeout: c.left_timeout.load(Relaxed),
            restarted: c.restarted.load(Relaxed),
            updated: c.updated.load(Relaxed),
            flaps: c.flaps.load(Relaxed),
            delta_bytes: c.delta_bytes.load(Relaxed),
            heartbeat_bytes: c.heartbeat_bytes.load(Relaxed),
            snapshot_bytes: c.snapshot_bytes.load(Relaxed),
            survey_connections_opened: c.survey_opened.load(Relaxed),
            survey_connections_closed: c.survey_closed.load(Relaxed),
            publish_connections_opened: c.publish_opened.load(Relaxed),
            publish_connections_closed: c.publish_closed.load(Relaxed),
        }
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

/// Connection events: record closes synchronously (so late answers from a closed
/// connection are recognised), then hand the event to the loop.
fn watch_connections(surveyor: &Socket, shared: &Arc<Shared>, tx: Sender<Input>) -> Result<()> {
    let tx = Mutex::new(tx);
    let shared = Arc::downgrade(shared);
    surveyor
        .pipe_notify(move |id, ev| {
            let input = match ev {
                PipeEvent::Added => {
                    if let Some(s) = shared.upgrade() {
                        s.counters.survey_opened.fetch_add(1, Relaxed);
                    }
                    Input::PipeAdded(id)
                }
                PipeEvent::Removed => {
                    if let Some(s) = shared.upgrade() {
                        s.counters.survey_closed.fetch_add(1, Relaxed);
                        nng::lock(&s.dead).insert(id, Instant::now());
                        nng::lock(&s.closed).push(id);
                        s.closed_waiting.store(true, Release);
                    }
                    Input::Closed
                }
            };
            let _ = nng::lock(&tx).send(input);
        })
        .map_err(|e| Error::nng("registering connection events", e))
}

/// Counts the publish socket's connections (subscribers), for the status page.
fn count_subscribers(publisher: &Socket, shared: &Arc<Shared>) -> Result<()> {
    let shared = Arc::downgrade(shared);
    publisher
        .pipe_notify(move |_, ev| {
            if let Some(s) = shared.upgrade() {
                match ev {
                    PipeEvent::Added => &s.counters.publish_opened,
                    PipeEvent::Removed => &s.counters.publish_closed,
                }
                .fetch_add(1, Relaxed);
            }
        })
        .map_err(|e| Error::nng("registering connection events", e))
}

fn answers_thread(inbox: &mut nng::Inbox, tx: Sender<Input>, shared: Arc<Shared>) {
    loop {
        match inbox.recv() {
            Ok(msg) => {
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

fn snapshot_thread(rep: &Socket, inbox: &mut nng::Inbox, shared: Arc<Shared>) {
    loop {
        let msg = match inbox.recv() {
            Ok(m) => m,
            Err(e) if e.is_closed() => return,
            Err(e) => {
                log::warn!("snapshot socket receive failed: {e}");
                continue;
            }
        };
        match wire::decode(msg.body(), &shared.limits) {
            Ok(Message::SnapshotRequest) => {}
            other => {
                shared.counters.dropped_requests.fetch_add(1, Relaxed);
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => "not a snapshot request".into(),
                };
                log::debug!(
                    "dropped a snapshot request of {} bytes: {why}",
                    msg.body().len()
                );
                continue;
            }
        }
        let bytes = {
            let c = shared.core.lock().unwrap_or_else(|p| p.into_inner());
            wire::encode_snapshot(
                shared.epoch,
                c.seq,
                shared.interval_ms,
                c.table.digest(),
                c.table.len(),
                c.table.members(),
            )
        };
        shared.counters.snapshots.fetch_add(1, Relaxed);
        shared
            .counters
            .snapshot_bytes
            .fetch_add(bytes.len() as u64, Relaxed);
        // Never blocks; a reply that cannot go now is asked for again by the
        // requester (req0 re-sends).
        if let Err((_, e)) = rep.try_send(nng::Message::new(&[], &bytes)) {
            if e.is_closed() {
                return;
            }
            log::debug!("snapshot reply not sent: {e}");
        }
    }
}

struct Loop {
    shared: Arc<Shared>,
    surveyor: Socket,
    publisher: Socket,
    legacy: Option<Socket>,
    interval: Duration,
    deadline: Duration,
    publication_bytes: usize,
    max_answer: usize,
    round: u64,
    /// New connections that have not answered yet, with when they came.
    pending_new: HashMap<u32, Instant>,
    events: Vec<Event>,
    last_summary: Instant,
}

impl Loop {
    fn run(&mut self, rx: mpsc::Receiver<Input>) {
        let mut next_round = Instant::now();
        let mut round_end: Option<Instant> = None;
        let mut last_early: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if now >= next_round {
                self.survey(&[]);
                self.heartbeat();
                round_end = Some(now + self.deadline);
                next_round += self.interval;
                if next_round <= now {
                    next_round = now + self.interval;
                }
                self.pending_new.clear();
            }
            if round_end.is_some_and(|t| now >= t) {
                round_end = None;
                self.end_round(now);
            }
            let mut early_at = None;
            if let Some(first) = self.pending_new.values().min() {
                let at =
                    (*first + ANNOUNCE_GRACE).max(last_early.map_or(now, |t| t + EARLY_SURVEY_GAP));
                if at <= now {
                    let pipes: Vec<u32> = self.pending_new.drain().map(|(p, _)| p).collect();
                    self.survey(&pipes);
                    last_early = Some(now);
                } else {
                    early_at = Some(at);
                }
            }
            let wake = [Some(next_round), round_end, early_at]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_round);
            let input = match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(i) => i,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // Take everything that is already waiting, then publish once, all under
            // the table lock: a snapshot is always exactly "everything up to its seq".
            let shared = self.shared.clone();
            let mut core = shared.core.lock().unwrap_or_else(|e| e.into_inner());
            let mut next = Some(input);
            let mut taken = 0;
            while let Some(input) = next.take() {
                if self.shared.closed_waiting.swap(false, Acquire) {
                    self.closed_first(&mut core);
                }
                if !self.handle(&mut core, input) {
                    return;
                }
                taken += 1;
                if taken < 4096 {
                    next = rx.try_recv().ok();
                }
            }
            self.publish(&mut core);
        }
    }

    /// Handles the connections closed so far and publishes their members' leaving,
    /// ahead of the inputs still queued.
    fn closed_first(&mut self, core: &mut Core) {
        let closed =
            std::mem::take(&mut *self.shared.closed.lock().unwrap_or_else(|e| e.into_inner()));
        for p in closed {
            self.pending_new.remove(&p);
            core.table.pipe_closed(p, &mut self.events);
        }
        self.publish(core);
    }

    /// Returns false on Stop.
    fn handle(&mut self, core: &mut Core, input: Input) -> bool {
        match input {
            Input::Stop => return false,
            Input::PipeAdded(p) => {
                // Its announce may have overtaken this event: then it needs no survey.
                if !core.table.has_pipe(p) {
                    self.pending_new.insert(p, Instant::now());
                }
            }
            Input::Closed => self.closed_first(core),
            Input::Answer(msg) => {
                self.answer(core, msg.pipe(), msg.body());
            }
        }
        true
    }

    fn answer(&mut self, core: &mut Core, pipe: u32, body: &[u8]) {
        let c = &self.shared.counters;
        if self
            .shared
            .dead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&pipe)
        {
            return; // late answer from a closed connection
        }
        if body.len() > self.max_answer {
            c.dropped_oversize.fetch_add(1, Relaxed);
            log::debug!(
                "dropped an answer of {} bytes from connection {pipe}: over the limit of {}",
                body.len(),
                self.max_answer
            );
            return;
        }
        let native = wire::is_native(body);
        let member = if native {
            match wire::decode(body, &self.shared.limits) {
                Ok(Message::Answer(m)) => Ok(m),
                Ok(_) => Err("not an answer".to_string()),
                Err(e) => Err(e.to_string()),
            }
        } else {
            wire::decode_legacy_answer(body, &self.shared.limits)
                .map_err(|e| format!("legacy answer: {e}"))
        };
        let member = match member {
            Ok(m) => m,
            Err(why) => {
                c.dropped_malformed.fetch_add(1, Relaxed);
                log::debug!(
                    "dropped an answer of {} bytes from connection {pipe}: {why}",
                    body.len()
                );
                return;
            }
        };
        self.pending_new.remove(&pipe);
        let name = member.name.clone();
        match core.table.answer(pipe, member, &mut self.events) {
            Ok(()) => {
                let now = Instant::now();
                core.seen.entry(name).or_insert((SystemTime::now(), now)).1 = now;
                if native {
                    &c.answers
                } else {
                    &c.legacy_answers
                }
                .fetch_add(1, Relaxed);
            }
            Err(_) => {
                c.dropped_full.fetch_add(1, Relaxed);
                log::debug!("dropped an answer from connection {pipe}: member limit reached");
            }
        }
    }

    /// Sends a survey to every connection, or (early surveys) to `pipes` only.
    fn survey(&mut self, pipes: &[u32]) {
        self.round += 1;
        let mut id = 0x8000_0000 | (self.round as u32 & 0x7FFF_FFFF);
        if id == wire::ANNOUNCE_ID {
            self.round += 1;
            id += 1;
        }
        let body = wire::encode_survey(self.shared.epoch, self.round);
        let targets: Vec<Option<u32>> = if pipes.is_empty() {
            vec![None]
        } else {
            pipes.iter().copied().map(Some).collect()
        };
        for target in targets {
            let msg = nng::Message::new(&id.to_be_bytes(), &body);
            if let Some(pipe) = target {
                // The patched raw surveyor sends it to that pipe only (an unknown
                // one: nowhere).
                msg.set_pipe(pipe);
            }
            if let Err((_, e)) = self.surveyor.send(msg) {
                log::warn!("survey not sent: {e}");
                return;
            }
        }
        self.shared.counters.surveys.fetch_add(1, Relaxed);
        if !pipes.is_empty() {
            self.shared.counters.early_surveys.fetch_add(1, Relaxed);
        }
    }

    fn heartbeat(&mut self) {
        let hb = {
            let core = self.shared.core.lock().unwrap_or_else(|e| e.into_inner());
            wire::Heartbeat {
                epoch: self.shared.epoch,
                seq: core.seq,
                interval_ms: self.shared.interval_ms,
                count: core.table.len() as u32,
                digest: core.table.digest(),
            }
        };
        let bytes = wire::encode_heartbeat(&hb);
        if self.publisher.send(nng::Message::new(&[], &bytes)).is_ok() {
            self.shared.counters.heartbeats.fetch_add(1, Relaxed);
            self.shared
                .counters
                .heartbeat_bytes
                .fetch_add(bytes.len() as u64, Relaxed);
        }
    }

    fn end_round(&mut self, now: Instant) {
        {
            let shared = self.shared.clone();
            let mut core = shared.core.lock().unwrap_or_else(|e| e.into_inner());
            core.table.end_round(&mut self.events);
            self.publish(&mut core);
            core.left_at
                .retain(|_, t| now.saturating_duration_since(*t) < FLAP_WINDOW);
            self.round_done(&core, now);
        }
        self.shared
            .dead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, t| now.saturating_duration_since(*t) < DEAD_PIPE_MEMORY);
    }

    /// Publishes the pending events as one or more deltas (each ≤ publication_bytes,
    /// each with the next seq). The caller holds the table lock.
    fn publish(&mut self, core: &mut Core) {
        if self.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.events);
        let mut start = 0;
        while start < events.len() {
            let mut end = start;
            let mut size = 23;
            while end < events.len()
                && (end == start || size + wire::event_len(&events[end]) <= self.publication_bytes)
            {
                size += wire::event_len(&events[end]);
                end += 1;
            }
            core.seq += 1;
            let bytes = wire::encode_delta(self.shared.epoch, core.seq, &events[start..end]);
            if let Err((_, e)) = self.publisher.send(nng::Message::new(&[], &bytes)) {
                log::warn!("delta {} not sent: {e}", core.seq);
            }
            self.shared.counters.deltas.fetch_add(1, Relaxed);
            self.shared
                .counters
                .delta_bytes
                .fetch_add(bytes.len() as u64, Relaxed);
            for e in &events[start..end] {
                log::debug!("seq {}: {e}", core.seq);
                self.record(core, e);
            }
            start = end;
        }
        if let Some(legacy) = &self.legacy {
            let list = wire::encode_legacy_list(core.table.names());
            if let Err((_, e)) = legacy.send(nng::Message::new(&[], &list)) {
                log::warn!("legacy publication not sent: {e}");
            }
        }
        self.events = events;
        self.events.clear();
    }

    /// Counts, logs (at `info`) and keeps one published event for the operator.
    fn record(&self, core: &mut Core, e: &Event) {
        let c = &self.shared.counters;
        let name = &e.member.name;
        match (e.kind, e.reason) {
            (EventKind::Joined, reason) => {
                let now = Instant::now();
                core.seen.insert(name.clone(), (SystemTime::now(), now));
                if core.left_at.remove(name).is_some() && reason != Reason::Restarted {
                    c.flaps.fetch_add(1, Relaxed);
                }
                c.joined.fetch_add(1, Relaxed);
                if reason == Reason::Restarted {
                    c.restarted.fetch_add(1, Relaxed);
                    log::info!("restarted {name} incarnation={:016x}", e.member.incarnation);
                } else {
                    log::info!("joined {name} incarnation={:016x}", e.member.incarnation);
                }
            }
            (EventKind::Left, Reason::Restarted) => {}
            (EventKind::Left, reason) => {
                core.seen.remove(name);
                core.left_at.insert(name.clone(), Instant::now());
                if reason == Reason::Timeout {
                    &c.left_timeout
                } else {
                    &c.left_closed
                }
                .fetch_add(1, Relaxed);
                log::info!("left {name} ({})", reason.as_str().unwrap_or("none"));
            }
            (EventKind::Updated, _) => {
                c.updated.fetch_add(1, Relaxed);
            }
        }
        let mut ops = nng::lock(&self.shared.ops);
        if ops.recent.len() >= RECENT_EVENTS {
            ops.recent.pop_front();
        }
        ops.recent.push_back(LoggedEvent {
            time: SystemTime::now(),
            kind: e.kind,
            reason: e.reason,
            name: name.clone(),
        });
    }

    /// A round completed: note it for the health check, and log the summary
    /// once a minute.
    fn round_done(&mut self, core: &Core, now: Instant) {
        let (mut answered, mut missed, mut legacy) = (0, 0, 0);
        for m in core.table.members() {
            if core.table.missed(&m.name).unwrap_or(0) == 0 {
                answered += 1;
            } else {
                missed += 1;
            }
            legacy += usize::from(m.incarnation == 0);
        }
        self.shared.counters.rounds.fetch_add(1, Relaxed);
        {
            let mut ops = nng::lock(&self.shared.ops);
            ops.last_round = Some(now);
            ops.round_answered = answered;
            ops.round_missed = missed;
            ops.legacy_members = legacy;
        }
        if now.saturating_duration_since(self.last_summary) >= SUMMARY_EVERY {
            self.last_summary = now;
            let c = &self.shared.counters;
            let subscribers = c
                .publish_opened
                .load(Relaxed)
                .saturating_sub(c.publish_closed.load(Relaxed));
            let drops = c.dropped_malformed.load(Relaxed)
                + c.dropped_oversize.load(Relaxed)
                + c.dropped_full.load(Relaxed)
                + c.dropped_requests.load(Relaxed);
            log::info!(
                "summary: members={} legacy={legacy} answered={answered} missed={missed} subscribers={subscribers} seq={} dropped={drops}",
                core.table.len(),
                core.seq
            );
        }
    }
}
