//! What the operator reads of a server: statistics, status, histograms, and the
//! live counters behind them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

#[cfg(doc)]
use super::Server;
use crate::auth::{AuthCounters, AuthStats};
use crate::member::{EventKind, Member, Reason};

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
pub(super) struct AtomicHistogram {
    buckets: [AtomicU64; HISTOGRAM_BUCKETS],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl AtomicHistogram {
    pub(super) fn observe(&self, d: Duration) {
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
pub(super) struct Counters {
    pub(super) answers: AtomicU64,
    pub(super) announces: AtomicU64,
    pub(super) legacy_answers: AtomicU64,
    pub(super) dropped_malformed: AtomicU64,
    pub(super) dropped_oversize: AtomicU64,
    pub(super) dropped_control: AtomicU64,
    pub(super) dropped_legacy_name: AtomicU64,
    pub(super) dropped_survey_id: AtomicU64,
    pub(super) dropped_full: AtomicU64,
    pub(super) dropped_budget: AtomicU64,
    pub(super) dropped_per_connection: AtomicU64,
    pub(super) dropped_requests: AtomicU64,
    pub(super) dropped_repeat_requests: AtomicU64,
    pub(super) refused_connections: AtomicU64,
    pub(super) closed_idle: AtomicU64,
    pub(super) surveys: AtomicU64,
    pub(super) deltas: AtomicU64,
    pub(super) heartbeats: AtomicU64,
    pub(super) snapshots: AtomicU64,
    pub(super) early_surveys: AtomicU64,
    pub(super) rounds: AtomicU64,
    pub(super) joined: AtomicU64,
    pub(super) left_closed: AtomicU64,
    pub(super) left_timeout: AtomicU64,
    pub(super) restarted: AtomicU64,
    pub(super) updated: AtomicU64,
    pub(super) flaps: AtomicU64,
    pub(super) delta_bytes: AtomicU64,
    pub(super) heartbeat_bytes: AtomicU64,
    pub(super) snapshot_bytes: AtomicU64,
    pub(super) survey_opened: AtomicU64,
    pub(super) survey_closed: AtomicU64,
    pub(super) publish_opened: AtomicU64,
    pub(super) publish_closed: AtomicU64,
    pub(super) challenges: AtomicU64,
    pub(super) auth: AuthCounters,
    pub(super) answer_latency: AtomicHistogram,
    pub(super) round_lag: AtomicHistogram,
}

impl Counters {
    pub(super) fn stats(&self) -> ServerStats {
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
