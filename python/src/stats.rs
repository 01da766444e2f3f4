//! Statistics handed to Python: frozen values with the field names of the Rust
//! structs (`ServerStats`, `Histogram`, `SubscriberStats`, `ClientStats`,
//! `SurveyUrlStats`, `AuthStats`). Ages are in seconds (float), None when there is none.

use pyo3::prelude::*;

use gopherdiscovery as core;

fn seconds(d: Option<std::time::Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

/// A histogram of durations with fixed buckets: ``buckets[i]`` counts the
/// observations at most ``HISTOGRAM_BOUNDS_SECONDS[i]`` and above the bound
/// before; the last bucket those above the largest bound.
#[pyclass(module = "gopherdiscovery", frozen, eq, get_all)]
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative).
    pub buckets: Vec<u64>,
    /// Observations in all.
    pub count: u64,
    /// Sum of the observations, in microseconds.
    pub sum_micros: u64,
}

impl From<core::Histogram> for Histogram {
    fn from(h: core::Histogram) -> Self {
        Histogram {
            buckets: h.buckets.to_vec(),
            count: h.count,
            sum_micros: h.sum_micros,
        }
    }
}

#[pymethods]
impl Histogram {
    fn __repr__(&self) -> String {
        format!(
            "Histogram(buckets={:?}, count={}, sum_micros={})",
            self.buckets, self.count, self.sum_micros
        )
    }
}

/// Messages dropped by authentication, by reason, and unsigned input accepted
/// under auth "permissive": ``stats().auth`` of a server, client or subscriber.
#[pyclass(module = "gopherdiscovery", frozen, eq, get_all)]
#[derive(Clone, PartialEq, Eq)]
pub struct AuthStats {
    /// Dropped: the tag did not verify (altered bytes, another mesh label or role).
    pub bad_mac: u64,
    /// Dropped: signed with a key id not in the keyring.
    pub unknown_key: u64,
    /// Dropped: not signed while auth is "required".
    pub unsigned: u64,
    /// Dropped: a publication counter not above the last one, or a snapshot not
    /// echoing the outstanding nonce.
    pub replayed: u64,
    /// Dropped: an answer echoing a survey not sent in the last 2 intervals.
    pub stale_survey: u64,
    /// Dropped: an answer echoing a survey sent to another connection.
    pub wrong_connection: u64,
    /// Accepted: unsigned input under "permissive" (when it stops rising, the
    /// mesh can move to "required").
    pub unsigned_accepted: u64,
}

impl From<core::AuthStats> for AuthStats {
    fn from(a: core::AuthStats) -> Self {
        AuthStats {
            bad_mac: a.bad_mac,
            unknown_key: a.unknown_key,
            unsigned: a.unsigned,
            replayed: a.replayed,
            stale_survey: a.stale_survey,
            wrong_connection: a.wrong_connection,
            unsigned_accepted: a.unsigned_accepted,
        }
    }
}

#[pymethods]
impl AuthStats {
    fn __repr__(&self) -> String {
        format!(
            "AuthStats(bad_mac={}, unknown_key={}, unsigned={}, replayed={}, stale_survey={}, \
             wrong_connection={}, unsigned_accepted={})",
            self.bad_mac,
            self.unknown_key,
            self.unsigned,
            self.replayed,
            self.stale_survey,
            self.wrong_connection,
            self.unsigned_accepted
        )
    }
}

/// What a server took, dropped and sent so far (``Server.stats()``): the same
/// numbers as ``/metrics``.
#[pyclass(module = "gopherdiscovery", frozen, eq, get_all)]
#[derive(Clone, PartialEq, Eq)]
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
    /// Messages dropped by authentication on the survey and snapshot sockets.
    pub auth: AuthStats,
    /// Time from a survey sent to an answer to it taken (announces excluded).
    pub answer_latency: Histogram,
    /// How late each regular survey round started against its schedule.
    pub round_lag: Histogram,
}

impl From<core::ServerStats> for ServerStats {
    fn from(s: core::ServerStats) -> Self {
        ServerStats {
            answers: s.answers,
            announces: s.announces,
            legacy_answers: s.legacy_answers,
            dropped_malformed: s.dropped_malformed,
            dropped_oversize: s.dropped_oversize,
            dropped_control: s.dropped_control,
            dropped_legacy_name: s.dropped_legacy_name,
            dropped_survey_id: s.dropped_survey_id,
            dropped_full: s.dropped_full,
            dropped_budget: s.dropped_budget,
            dropped_per_connection: s.dropped_per_connection,
            dropped_requests: s.dropped_requests,
            dropped_repeat_requests: s.dropped_repeat_requests,
            refused_connections: s.refused_connections,
            closed_idle: s.closed_idle,
            surveys: s.surveys,
            deltas: s.deltas,
            heartbeats: s.heartbeats,
            snapshots: s.snapshots,
            early_surveys: s.early_surveys,
            rounds: s.rounds,
            joined: s.joined,
            left_closed: s.left_closed,
            left_timeout: s.left_timeout,
            restarted: s.restarted,
            updated: s.updated,
            flaps: s.flaps,
            delta_bytes: s.delta_bytes,
            heartbeat_bytes: s.heartbeat_bytes,
            snapshot_bytes: s.snapshot_bytes,
            survey_connections_opened: s.survey_connections_opened,
            survey_connections_closed: s.survey_connections_closed,
            publish_connections_opened: s.publish_connections_opened,
            publish_connections_closed: s.publish_connections_closed,
            challenges: s.challenges,
            auth: s.auth.into(),
            answer_latency: s.answer_latency.into(),
            round_lag: s.round_lag.into(),
        }
    }
}

#[pymethods]
impl ServerStats {
    fn __repr__(&self) -> String {
        format!(
            "ServerStats(answers={}, announces={}, legacy_answers={}, rounds={}, joined={}, ...)",
            self.answers, self.announces, self.legacy_answers, self.rounds, self.joined
        )
    }
}

/// What a subscriber sees now (``Subscriber.stats()``).
#[pyclass(module = "gopherdiscovery", frozen, eq, get_all)]
#[derive(Clone, PartialEq)]
pub struct SubscriberStats {
    /// "syncing", "live" or "stale".
    pub state: &'static str,
    /// Members in the view.
    pub members: usize,
    /// Epoch of the view.
    pub epoch: u64,
    /// Seq of the view.
    pub seq: u64,
    /// Live connections to the publish URL.
    pub publish_connections: u64,
    /// Live connections to the snapshot URL (0 for a legacy publisher).
    pub snapshot_connections: u64,
    /// Publications received (deltas, heartbeats, legacy lists).
    pub publications: u64,
    /// Seconds since the last publication (None: none yet).
    pub last_publication_age: Option<f64>,
    /// Snapshots fetched after the first.
    pub resyncs: u64,
    /// Publications dropped as malformed.
    pub dropped: u64,
    /// Publications and snapshots dropped by authentication.
    pub auth: AuthStats,
}

impl From<core::SubscriberStats> for SubscriberStats {
    fn from(s: core::SubscriberStats) -> Self {
        SubscriberStats {
            state: s.state.as_str(),
            members: s.members,
            epoch: s.epoch,
            seq: s.seq,
            publish_connections: s.publish_connections,
            snapshot_connections: s.snapshot_connections,
            publications: s.publications,
            last_publication_age: seconds(s.last_publication_age),
            resyncs: s.resyncs,
            dropped: s.dropped,
            auth: s.auth.into(),
        }
    }
}

#[pymethods]
impl SubscriberStats {
    fn __repr__(&self) -> String {
        format!(
            "SubscriberStats(state={:?}, members={}, epoch={:#018x}, seq={}, publications={}, resyncs={})",
            self.state, self.members, self.epoch, self.seq, self.publications, self.resyncs
        )
    }
}

/// One survey URL's part of ``ClientStats``.
#[pyclass(module = "gopherdiscovery", frozen, eq, get_all)]
#[derive(Clone, PartialEq)]
pub struct SurveyUrlStats {
    /// The URL as given.
    pub url: String,
    /// A connection to it is up.
    pub connected: bool,
    /// Surveys answered on its connections.
    pub surveys_answered: u64,
    /// Announces sent on its connections.
    pub announces_sent: u64,
    /// Seconds since its last survey (None: never surveyed).
    pub last_survey_age: Option<f64>,
}

#[pymethods]
impl SurveyUrlStats {
    fn __repr__(&self) -> String {
        format!(
            "SurveyUrlStats(url={:?}, connected={}, surveys_answered={}, announces_sent={})",
            self.url, self.connected, self.surveys_answered, self.announces_sent
        )
    }
}

/// What a client did so far (``Client.stats()``), in all and per survey URL.
#[pyclass(module = "gopherdiscovery", frozen, eq, get_all)]
#[derive(Clone, PartialEq)]
pub struct ClientStats {
    /// Live connections to servers.
    pub connections: usize,
    /// Surveys answered (from every server).
    pub surveys_answered: u64,
    /// Announces sent (one per new connection and per metadata change).
    pub announces_sent: u64,
    /// Seconds since the last survey (None: never surveyed).
    pub last_survey_age: Option<f64>,
    /// The same per survey URL, in the order given.
    pub survey_urls: Vec<SurveyUrlStats>,
    /// Surveys dropped by authentication.
    pub auth: AuthStats,
}

impl From<core::ClientStats> for ClientStats {
    fn from(s: core::ClientStats) -> Self {
        ClientStats {
            connections: s.connections,
            surveys_answered: s.surveys_answered,
            announces_sent: s.announces_sent,
            last_survey_age: seconds(s.last_survey_age),
            survey_urls: (s.survey_urls.into_iter())
                .map(|u| SurveyUrlStats {
                    url: u.url,
                    connected: u.connected,
                    surveys_answered: u.surveys_answered,
                    announces_sent: u.announces_sent,
                    last_survey_age: seconds(u.last_survey_age),
                })
                .collect(),
            auth: s.auth.into(),
        }
    }
}

#[pymethods]
impl ClientStats {
    fn __repr__(&self) -> String {
        format!(
            "ClientStats(connections={}, surveys_answered={}, announces_sent={}, survey_urls={})",
            self.connections,
            self.surveys_answered,
            self.announces_sent,
            self.survey_urls.len()
        )
    }
}
