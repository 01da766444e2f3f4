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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::auth::{
    self, Auth, AuthCell, AuthCounters, AuthMode, AuthStats, Checked, KeyId, Keyring, Role,
};
use crate::error::{Error, Result};
use crate::member::{random_u64, Event, EventKind, Limits, Member, Reason};
use crate::member_table::{MemberTable, Refused};
use crate::net::{self, Every};
use crate::nng::{self as nng, PipeEvent, Protocol, Socket};
use crate::wire::{self, DecodeError, Message};

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
/// The server logs a one-line summary at `info` this often.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counters of what the server did and dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerStats {
    /// Native answers to a survey taken.
    pub answers: u64,
    /// Native announces taken: answers a client sent unasked on a new connection
    /// or after a metadata change (not counted in `answers`).
    pub announces: u64,
    /// Legacy raw-string answers taken.
    pub legacy_answers: u64,
    /// Answers dropped: not a valid answer (garbage, bad UTF-8, empty name, unknown version…).
    pub dropped_malformed: u64,
    /// Answers dropped: larger than name + metadata limits allow.
    pub dropped_oversize: u64,
    /// Answers dropped: a name, metadata key or value with a control character
    /// (NUL, newline, escape…).
    pub dropped_control: u64,
    /// Answers dropped: a name with `|` while a legacy publish URL is configured
    /// (the legacy list could not represent it).
    pub dropped_legacy_name: u64,
    /// Answers dropped: their SP header is not a survey id (4 bytes, high bit set).
    pub dropped_survey_id: u64,
    /// Answers dropped: the table holds `max_members` already (the table is full).
    pub dropped_full: u64,
    /// Answers dropped: the members' encoded size (a snapshot) would exceed the
    /// snapshot budget, `limits.max_snapshot` (the table is full).
    pub dropped_budget: u64,
    /// Answers dropped: their connection carries `max_members_per_connection`
    /// members already.
    pub dropped_per_connection: u64,
    /// Snapshot requests dropped: not a valid request.
    pub dropped_requests: u64,
    /// Snapshot requests dropped: the same connection was sent the snapshot of
    /// the same seq less than an interval ago.
    pub dropped_repeat_requests: u64,
    /// Connections closed as they came: their socket had `max_connections` already.
    pub refused_connections: u64,
    /// Survey connections closed because no answer was taken from them for
    /// `evict_after` rounds (idle, garbage only, or refused answers only).
    pub closed_idle: u64,
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
    /// Challenge surveys sent: with a keyring, an announce (or an answer on a
    /// connection its member is not on) is admitted only when the survey sent to
    /// that one connection is answered there.
    pub challenges: u64,
    /// Messages dropped by authentication, by reason (and unsigned ones accepted
    /// under `permissive`), on the survey and snapshot sockets together.
    pub auth: AuthStats,
    /// Time from a survey sent to an answer to it taken (announces excluded).
    pub answer_latency: Histogram,
    /// How late each regular survey round started against its schedule.
    pub round_lag: Histogram,
}

/// Upper bounds, in seconds, of the buckets of a [`Histogram`] (the last bucket
/// has no bound: everything above the largest).
pub const HISTOGRAM_BOUNDS_SECONDS: [f64; HISTOGRAM_BUCKETS - 1] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Buckets of a [`Histogram`]: one per bound of [`HISTOGRAM_BOUNDS_SECONDS`] and
/// one for everything above.
pub const HISTOGRAM_BUCKETS: usize = 13;

/// A histogram of durations with fixed buckets (bounded memory).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative): `buckets[i]` counts those at most
    /// `HISTOGRAM_BOUNDS_SECONDS[i]` and above the bound before; the last bucket
    /// those above the largest bound.
    pub buckets: [u64; HISTOGRAM_BUCKETS],
    /// Observations in all.
    pub count: u64,
    /// Sum of the observations, in microseconds.
    pub sum_micros: u64,
}

impl Histogram {
    /// `(upper bound in seconds, observations at most that)`, cumulative, in
    /// Prometheus's order; the last bound is infinity.
    pub fn cumulative(&self) -> [(f64, u64); HISTOGRAM_BUCKETS] {
        let mut out = [(f64::INFINITY, 0); HISTOGRAM_BUCKETS];
        let mut total = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            total += n;
            out[i] = (
                HISTOGRAM_BOUNDS_SECONDS
                    .get(i)
                    .copied()
                    .unwrap_or(f64::INFINITY),
                total,
            );
        }
        out
    }
}

/// The live side of a [`Histogram`]: atomics, so observing never locks.
#[derive(Default)]
struct AtomicHistogram {
    buckets: [AtomicU64; HISTOGRAM_BUCKETS],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl AtomicHistogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = HISTOGRAM_BOUNDS_SECONDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(HISTOGRAM_BUCKETS - 1);
        self.buckets[i].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    fn get(&self) -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            count: self.count.load(Relaxed),
            sum_micros: self.sum_micros.load(Relaxed),
        }
    }
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

impl ServerStats {
    /// Every drop counter as `(socket, reason, count)`, in one fixed order: the
    /// one list that `/metrics`, the status page and the logs show.
    pub fn drops(&self) -> [(&'static str, &'static str, u64); 10] {
        [
            ("survey", "malformed", self.dropped_malformed),
            ("survey", "oversize", self.dropped_oversize),
            ("survey", "control_chars", self.dropped_control),
            ("survey", "legacy_name", self.dropped_legacy_name),
            ("survey", "survey_id", self.dropped_survey_id),
            ("survey", "full", self.dropped_full),
            ("survey", "budget", self.dropped_budget),
            ("survey", "per_connection", self.dropped_per_connection),
            ("snapshot", "malformed", self.dropped_requests),
            ("snapshot", "repeated", self.dropped_repeat_requests),
        ]
    }
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
    announces: AtomicU64,
    legacy_answers: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_oversize: AtomicU64,
    dropped_control: AtomicU64,
    dropped_legacy_name: AtomicU64,
    dropped_survey_id: AtomicU64,
    dropped_full: AtomicU64,
    dropped_budget: AtomicU64,
    dropped_per_connection: AtomicU64,
    dropped_requests: AtomicU64,
    dropped_repeat_requests: AtomicU64,
    refused_connections: AtomicU64,
    closed_idle: AtomicU64,
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
    challenges: AtomicU64,
    auth: AuthCounters,
    answer_latency: AtomicHistogram,
    round_lag: AtomicHistogram,
}

impl Counters {
    fn stats(&self) -> ServerStats {
        let c = self;
        ServerStats {
            answers: c.answers.load(Relaxed),
            announces: c.announces.load(Relaxed),
            legacy_answers: c.legacy_answers.load(Relaxed),
            dropped_malformed: c.dropped_malformed.load(Relaxed),
            dropped_oversize: c.dropped_oversize.load(Relaxed),
            dropped_control: c.dropped_control.load(Relaxed),
            dropped_legacy_name: c.dropped_legacy_name.load(Relaxed),
            dropped_survey_id: c.dropped_survey_id.load(Relaxed),
            dropped_full: c.dropped_full.load(Relaxed),
            dropped_budget: c.dropped_budget.load(Relaxed),
            dropped_per_connection: c.dropped_per_connection.load(Relaxed),
            dropped_requests: c.dropped_requests.load(Relaxed),
            dropped_repeat_requests: c.dropped_repeat_requests.load(Relaxed),
            refused_connections: c.refused_connections.load(Relaxed),
            closed_idle: c.closed_idle.load(Relaxed),
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
            challenges: c.challenges.load(Relaxed),
            auth: c.auth.stats(),
            answer_latency: c.answer_latency.get(),
            round_lag: c.round_lag.get(),
        }
    }
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

fn snapshot_thread(rep: &Socket, inbox: &mut nng::Inbox, shared: Arc<Shared>) {
    // The encoding of the latest seq: a request costs a copy, not an encoding.
    let mut cached: Option<((u64, bool), Vec<u8>)> = None;
    // Per connection: the seq last sent and when. The same connection asking again
    // within an interval, with nothing changed, is not answered (req0 resends).
    let mut served: HashMap<u32, (u64, Instant)> = HashMap::new();
    let every = Duration::from_millis(u64::from(shared.interval_ms));
    loop {
        let msg = match inbox.recv() {
            Ok(m) => m,
            Err(e) if e.is_closed() => return,
            Err(e) => {
                log::warn!("snapshot socket receive failed: {e}");
                continue;
            }
        };
        let auth = shared.auth.get();
        match auth.check(Role::SnapshotRequest, msg.body()) {
            Ok(c) => shared.counters.auth.note(&c),
            Err(r) => {
                // No reply: a reader without the key learns nothing.
                shared.counters.auth.refused(r, "snapshot requests");
                continue;
            }
        }
        let nonce = match wire::decode(msg.body(), &shared.limits) {
            Ok(Message::SnapshotRequest { nonce }) => nonce,
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
        };
        let now = Instant::now();
        let seq = {
            let c = shared.core.lock().unwrap_or_else(|p| p.into_inner());
            let warming = shared.warming();
            if cached.as_ref().map(|(k, _)| *k) != Some((c.seq, warming)) {
                let head = wire::SnapshotHead {
                    nonce: 0,
                    epoch: shared.epoch,
                    seq: c.seq,
                    counter: c.counter,
                    interval_ms: shared.interval_ms,
                    warming,
                    digest: c.table.digest(),
                };
                let bytes = wire::encode_snapshot(&head, c.table.len(), c.table.members());
                cached = Some(((c.seq, warming), bytes));
            }
            c.seq
        };
        let pipe = msg.pipe();
        if let Some((s, t)) = served.get(&pipe) {
            if *s == seq && now.saturating_duration_since(*t) < every {
                shared
                    .counters
                    .dropped_repeat_requests
                    .fetch_add(1, Relaxed);
                continue;
            }
        }
        if served.len() >= 2 * DEFAULT_MAX_CONNECTIONS.max(1024) {
            served.retain(|_, (_, t)| now.saturating_duration_since(*t) < every);
        }
        served.insert(pipe, (seq, now));
        let mut bytes = cached.as_ref().map_or(Vec::new(), |(_, b)| b.clone());
        if let Some(at) = bytes.get_mut(wire::SNAPSHOT_NONCE_AT..wire::SNAPSHOT_NONCE_AT + 8) {
            at.copy_from_slice(&nonce.to_be_bytes());
        }
        let bytes = auth.seal(Role::Snapshot, bytes);
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
    evict_after: u32,
    publication_bytes: usize,
    max_answer: usize,
    round: u64,
    /// The last [`SENT_REMEMBERED`] regular surveys' rounds with when they went
    /// out: for `answer_latency`, and (signed answers) the rounds an answer may echo.
    sent: VecDeque<(u64, Instant)>,
    /// Surveys sent to one connection (early surveys and challenges), by round:
    /// the connection and when. An answer echoing one counts only from that
    /// connection. Pruned after 2 intervals.
    targeted: HashMap<u64, (u32, Instant)>,
    /// Connections to challenge (a survey to that one connection) after this batch.
    to_challenge: Vec<u32>,
    /// When each connection was last challenged: at most one challenge per
    /// deadline per connection.
    challenged: HashMap<u32, Instant>,
    /// New connections that have not answered yet, with when they came.
    pending_new: HashMap<u32, Instant>,
    /// Every open survey connection: whether an answer from it was taken since the
    /// last round end, and how many rounds in a row ended without one (counted as
    /// a member's misses are). At `evict_after` the connection is closed.
    silent: HashMap<u32, (bool, u32)>,
    events: Vec<Event>,
    last_summary: Instant,
}

impl Loop {
    fn new(
        shared: Arc<Shared>,
        surveyor: Socket,
        publisher: Socket,
        legacy: Option<Socket>,
        cfg: &ServerBuilder,
        max_answer: usize,
    ) -> Loop {
        Loop {
            shared,
            surveyor,
            publisher,
            legacy,
            interval: cfg.interval,
            deadline: cfg.effective_deadline(),
            evict_after: cfg.evict_after,
            publication_bytes: cfg.publication_bytes,
            max_answer,
            round: 0,
            sent: VecDeque::new(),
            targeted: HashMap::new(),
            to_challenge: Vec::new(),
            challenged: HashMap::new(),
            pending_new: HashMap::new(),
            silent: HashMap::new(),
            events: Vec::new(),
            last_summary: Instant::now(),
        }
    }

    fn run(&mut self, rx: mpsc::Receiver<Input>) {
        let mut next_round = Instant::now();
        let mut round_end: Option<Instant> = None;
        let mut last_early: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if now >= next_round {
                let lag = now.saturating_duration_since(next_round);
                self.shared.counters.round_lag.observe(lag);
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
            // Take everything that is already waiting (at most one queue's worth,
            // so timers are never starved), then publish once, all under the table
            // lock: a snapshot is always exactly "everything up to its seq".
            let shared = self.shared.clone();
            let mut core = shared.core.lock().unwrap_or_else(|e| e.into_inner());
            let mut next = Some(input);
            let mut taken = 0;
            while let Some(input) = next.take() {
                if self.shared.stopping.load(Acquire) {
                    return;
                }
                if self.shared.conn_waiting.swap(false, Acquire) {
                    self.connections_first(&mut core);
                }
                if let Input::Answer(msg) = input {
                    self.answer(&mut core, &msg);
                }
                taken += 1;
                if taken < ANSWER_QUEUE {
                    next = rx.try_recv().ok();
                }
            }
            self.publish(&mut core);
            drop(core);
            if !self.to_challenge.is_empty() {
                let pipes = std::mem::take(&mut self.to_challenge);
                for p in &pipes {
                    self.pending_new.remove(p);
                }
                self.shared
                    .counters
                    .challenges
                    .fetch_add(pipes.len() as u64, Relaxed);
                self.survey(&pipes);
            }
        }
    }

    /// Handles the connections added and closed so far, and publishes their
    /// members' leaving, ahead of the inputs still queued.
    fn connections_first(&mut self, core: &mut Core) {
        let added = std::mem::take(&mut *nng::lock(&self.shared.added));
        let now = Instant::now();
        for p in added {
            self.silent.insert(p, (false, 0));
            // Its announce may have overtaken this event: then it needs no survey.
            if !core.table.has_pipe(p) {
                self.pending_new.insert(p, now);
            }
        }
        let closed = std::mem::take(&mut *nng::lock(&self.shared.closed));
        for p in closed {
            self.pending_new.remove(&p);
            self.silent.remove(&p);
            self.challenged.remove(&p);
            core.table.pipe_closed(p, &mut self.events);
        }
        self.publish(core);
    }

    fn answer(&mut self, core: &mut Core, msg: &nng::Message) {
        let (pipe, body) = (msg.pipe(), msg.body());
        let shared = self.shared.clone();
        let c = &shared.counters;
        if nng::lock(&self.shared.dead).contains_key(&pipe) {
            return; // late answer from a closed connection
        }
        let drop = |counter: &AtomicU64, why: &dyn std::fmt::Display| {
            counter.fetch_add(1, Relaxed);
            log::debug!(
                "dropped an answer of {} bytes from connection {pipe}: {why}",
                body.len()
            );
        };
        if !wire::is_survey_id(msg.header()) {
            return drop(&c.dropped_survey_id, &"its SP header is not a survey id");
        }
        if body.len() > self.max_answer {
            let why = format!("over the limit of {}", self.max_answer);
            return drop(&c.dropped_oversize, &why);
        }
        let checked = match self.shared.auth.get().check(Role::Answer, body) {
            Ok(checked) => checked,
            Err(r) => return c.auth.refused(r, "answers"),
        };
        c.auth.note(&checked);
        let native = wire::is_native(body);
        let mut echo = (0, 0);
        let member = if native {
            match wire::decode(body, &self.shared.limits) {
                Ok(Message::Answer {
                    epoch,
                    round,
                    member,
                }) => {
                    echo = (epoch, round);
                    Ok(member)
                }
                Ok(_) => Err(None),
                Err(e) => Err(Some(e)),
            }
        } else {
            wire::decode_legacy_answer(body, &self.shared.limits).map_err(Some)
        };
        let member = match member {
            Ok(m) => m,
            Err(Some(e @ DecodeError::ControlChar(_))) => return drop(&c.dropped_control, &e),
            Err(Some(e)) if native => return drop(&c.dropped_malformed, &e),
            Err(Some(e)) => return drop(&c.dropped_malformed, &format!("legacy answer: {e}")),
            Err(None) => return drop(&c.dropped_malformed, &"not an answer"),
        };
        if self.legacy.is_some() && member.name.contains('|') {
            let why = "a name with '|' cannot be on the legacy list";
            return drop(&c.dropped_legacy_name, &why);
        }
        let id = u32::from_be_bytes(msg.header().try_into().unwrap_or_default());
        if matches!(checked, Checked::Signed(_))
            && !self.admissible(core, pipe, id == wire::ANNOUNCE_ID, echo, &member.name)
        {
            return;
        }
        self.pending_new.remove(&pipe);
        let name = member.name.clone();
        match core.table.answer(pipe, member, &mut self.events) {
            Ok(()) => {
                if let Some(s) = self.silent.get_mut(&pipe) {
                    *s = (true, 0);
                }
                let now = Instant::now();
                core.seen.entry(name).or_insert((SystemTime::now(), now)).1 = now;
                if native && id == wire::ANNOUNCE_ID {
                    c.announces.fetch_add(1, Relaxed);
                } else {
                    if native {
                        &c.answers
                    } else {
                        &c.legacy_answers
                    }
                    .fetch_add(1, Relaxed);
                    let sent_at = match self.targeted.get(&echo.1) {
                        Some((_, at)) if native => Some(*at),
                        _ => (self.sent.iter())
                            .find(|(r, _)| wire::survey_id(*r) == id)
                            .map(|(_, at)| *at),
                    };
                    if let Some(at) = sent_at {
                        let latency = now.saturating_duration_since(at);
                        c.answer_latency.observe(latency);
                    }
                }
            }
            Err(Refused::PerConnection) => drop(
                &c.dropped_per_connection,
                &"its connection carries max_members_per_connection members already",
            ),
            Err(why) => {
                let (counter, limit) = match why {
                    Refused::Budget => (&c.dropped_budget, "the snapshot budget"),
                    _ => (&c.dropped_full, "max_members"),
                };
                drop(counter, &format!("the member table is full ({limit})"));
                if let Some(quiet) = self.shared.warn_full.due() {
                    log::warn!(
                        "member table full: {} members, {} bytes (limits: max_members {}, \
                         snapshot budget {} bytes); refusing new members ({quiet} more since \
                         the last warning)",
                        core.table.len(),
                        core.table.bytes(),
                        self.shared.limits.max_members,
                        self.shared.limits.max_snapshot,
                    );
                }
            }
        }
    }

    /// With a signed answer: whether it may move the table. An announce, or an
    /// answer to a regular survey from a connection its member is not on, only
    /// triggers a challenge (a survey to that one connection); an answer must
    /// echo a survey of this epoch sent in the last 2 intervals, and a survey
    /// sent to one connection counts only from that connection
    /// (`docs/PROTOCOL.md` § Replay rules).
    fn admissible(
        &mut self,
        core: &Core,
        pipe: u32,
        announce: bool,
        (epoch, round): (u64, u64),
        name: &str,
    ) -> bool {
        let now = Instant::now();
        let auth = &self.shared.counters.auth;
        if announce || round == 0 {
            self.shared.counters.announces.fetch_add(1, Relaxed);
            self.challenge(pipe, now);
            return false;
        }
        let window = 2 * self.interval;
        let fresh = |at: &Instant| now.saturating_duration_since(*at) <= window;
        if epoch != self.shared.epoch {
            let why = format_args!("echoes epoch {epoch:016x}, not this server's");
            auth.dropped(auth::Reason::StaleSurvey, "answers", &why);
            return false;
        }
        if let Some((to, at)) = self.targeted.get(&round) {
            if !fresh(at) {
                auth.dropped(
                    auth::Reason::StaleSurvey,
                    "answers",
                    &"echoes an old survey",
                );
                return false;
            }
            if *to != pipe {
                let why = format_args!("echoes a survey sent to connection {to}, came on {pipe}");
                auth.dropped(auth::Reason::WrongConnection, "answers", &why);
                self.challenge(pipe, now);
                return false;
            }
            return true;
        }
        if !self.sent.iter().any(|(r, at)| *r == round && fresh(at)) {
            auth.dropped(
                auth::Reason::StaleSurvey,
                "answers",
                &"echoes an old survey",
            );
            return false;
        }
        if core.table.pipe_of(name) == Some(pipe) {
            return true;
        }
        // A regular survey went to every connection: its answer proves nothing
        // about this one. Ask this connection alone.
        self.challenge(pipe, now);
        false
    }

    /// Queues a challenge survey to `pipe`, unless one went there within the deadline.
    fn challenge(&mut self, pipe: u32, now: Instant) {
        if let Some(at) = self.challenged.get(&pipe) {
            if now.saturating_duration_since(*at) < self.deadline {
                return;
            }
        }
        self.challenged.insert(pipe, now);
        self.to_challenge.push(pipe);
    }

    fn next_round(&mut self) -> u64 {
        self.round += 1;
        if wire::survey_id(self.round) == wire::ANNOUNCE_ID {
            self.round += 1;
        }
        self.round
    }

    /// Sends a survey to every connection, or (early surveys, challenges) one
    /// survey of its own round to each of `pipes`.
    fn survey(&mut self, pipes: &[u32]) {
        let auth = self.shared.auth.get();
        let now = Instant::now();
        let targets: Vec<Option<u32>> = if pipes.is_empty() {
            vec![None]
        } else {
            pipes.iter().copied().map(Some).collect()
        };
        for target in targets {
            let round = self.next_round();
            let id = wire::survey_id(round);
            let body = auth.seal(Role::Survey, wire::encode_survey(self.shared.epoch, round));
            let msg = nng::Message::new(&id.to_be_bytes(), &body);
            match target {
                Some(pipe) => {
                    // The patched raw surveyor sends it to that pipe only (an
                    // unknown one: nowhere).
                    msg.set_pipe(pipe);
                    self.targeted.insert(round, (pipe, now));
                }
                None => {
                    if self.sent.len() >= SENT_REMEMBERED {
                        self.sent.pop_front();
                    }
                    self.sent.push_back((round, now));
                }
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
            let mut core = self.shared.core.lock().unwrap_or_else(|e| e.into_inner());
            core.counter += 1;
            wire::Heartbeat {
                epoch: self.shared.epoch,
                seq: core.seq,
                counter: core.counter,
                interval_ms: self.shared.interval_ms,
                warming: self.shared.warming(),
                count: core.table.len() as u32,
                digest: core.table.digest(),
            }
        };
        let bytes = (self.shared.auth.get()).seal(Role::Publication, wire::encode_heartbeat(&hb));
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
        // A connection that brought no answer the table took for evict_after
        // rounds is closed: idle handshakes, half-sent frames, garbage and refused
        // answers cannot hold a descriptor for ever. Its pipe-removed event follows.
        let evict_after = self.evict_after;
        let mut idle = 0;
        for (pipe, (answered, missed)) in self.silent.iter_mut() {
            if std::mem::take(answered) {
                *missed = 0;
                continue;
            }
            *missed += 1;
            if *missed == evict_after {
                nng::close_pipe(*pipe);
                idle += 1;
            }
        }
        if idle > 0 {
            self.shared.counters.closed_idle.fetch_add(idle, Relaxed);
            log::debug!("closed {idle} survey connections idle for {evict_after} rounds");
        }
        if !net::descriptor_free() && self.shared.warn_fds.due().is_some() {
            log::warn!(
                "the open-file limit is reached: new connections fail until some close \
                 (lower max_connections or raise the limit)"
            );
        }
        nng::lock(&self.shared.dead)
            .retain(|_, t| now.saturating_duration_since(*t) < DEAD_PIPE_MEMORY);
        let window = 2 * self.interval;
        self.targeted
            .retain(|_, (_, at)| now.saturating_duration_since(*at) <= window);
        self.challenged
            .retain(|_, at| now.saturating_duration_since(*at) <= window);
    }

    /// Publishes the pending events as one or more deltas (each ≤ publication_bytes,
    /// each with the next seq). The caller holds the table lock.
    fn publish(&mut self, core: &mut Core) {
        if self.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.events);
        let auth = self.shared.auth.get();
        for run in wire::split_events(&events, self.publication_bytes) {
            core.seq += 1;
            core.counter += 1;
            let delta = wire::encode_delta(self.shared.epoch, core.seq, core.counter, run);
            let bytes = auth.seal(Role::Publication, delta);
            if let Err((_, e)) = self.publisher.send(nng::Message::new(&[], &bytes)) {
                log::warn!("delta {} not sent: {e}", core.seq);
            }
            self.shared.counters.deltas.fetch_add(1, Relaxed);
            self.shared
                .counters
                .delta_bytes
                .fetch_add(bytes.len() as u64, Relaxed);
            for e in run {
                log::debug!("seq {}: {e}", core.seq);
                self.record(core, e);
            }
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
            let drops: u64 = c.stats().drops().iter().map(|d| d.2).sum();
            log::info!(
                "summary: members={} legacy={legacy} answered={answered} missed={missed} subscribers={subscribers} seq={} dropped={drops}",
                core.table.len(),
                core.seq
            );
        }
    }
}
