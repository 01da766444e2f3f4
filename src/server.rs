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

use std::collections::HashMap;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::member::{random_u64, Event, Limits};
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
}

/// Settings of a [`Server`]; start it with [`ServerBuilder::start`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    survey: String,
    publish: String,
    snapshot: String,
    legacy_publish: Option<String>,
    interval: Duration,
    deadline: Duration,
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
            interval: Duration::from_millis(1000),
            deadline: Duration::from_millis(500),
            evict_after: 3,
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
    /// (default 500 ms; must be shorter than the interval).
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
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
        if self.deadline.is_zero() {
            return Err(Error::option("deadline", "must be greater than zero"));
        }
        if self.deadline >= self.interval {
            return Err(Error::option(
                "deadline",
                format!(
                    "must be shorter than the interval ({} ms >= {} ms)",
                    self.deadline.as_millis(),
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
            }),
            counters: Counters::default(),
            dead: Mutex::new(HashMap::new()),
            closed: Mutex::new(Vec::new()),
            closed_waiting: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel::<Input>();
        let stop_tx = Mutex::new(tx.clone());
        workers.on_stop(move || {
            let _ = nng::lock(&stop_tx).send(Input::Stop);
        });
        watch_connections(&sockets.surveyor, &shared, tx.clone())?;
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
            deadline: cfg.deadline,
            publication_bytes: cfg.publication_bytes,
            max_answer,
            round: 0,
            pending_new: HashMap::new(),
            events: Vec::new(),
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
                PipeEvent::Added => Input::PipeAdded(id),
                PipeEvent::Removed => {
                    if let Some(s) = shared.upgrade() {
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
        match core.table.answer(pipe, member, &mut self.events) {
            Ok(()) => {
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
        if self
            .publisher
            .send(nng::Message::new(&[], &wire::encode_heartbeat(&hb)))
            .is_ok()
        {
            self.shared.counters.heartbeats.fetch_add(1, Relaxed);
        }
    }

    fn end_round(&mut self, now: Instant) {
        {
            let shared = self.shared.clone();
            let mut core = shared.core.lock().unwrap_or_else(|e| e.into_inner());
            core.table.end_round(&mut self.events);
            self.publish(&mut core);
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
            for e in &events[start..end] {
                log::debug!("seq {}: {e}", core.seq);
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
}
