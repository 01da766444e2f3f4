//! The `loop` thread: surveys on a timer, folds answers and connection events into
//! the member table, challenges unproven connections, publishes deltas and
//! heartbeats.

use super::*;

pub(super) struct Loop {
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
    /// connection, for [`Loop::targeted_ttl`]; pruned after it, and bounded by
    /// [`TARGETED_MAX`].
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
    pub(super) fn new(
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

    pub(super) fn run(&mut self, rx: mpsc::Receiver<Input>) {
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
            if now.saturating_duration_since(*at) > self.targeted_ttl() {
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

    /// How long the answer to a survey sent to one connection is taken: 2
    /// intervals, and at least [`TARGETED_TTL`]. Such a survey's round went to
    /// that connection only and counts only from it, so a replay would have to
    /// come through that very connection: the time bound is there for memory,
    /// and a slow host (an overloaded machine, valgrind) still joins.
    fn targeted_ttl(&self) -> Duration {
        (2 * self.interval).max(TARGETED_TTL)
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
                    if self.targeted.len() >= TARGETED_MAX {
                        // A flood of new connections: keep the last 2 intervals'.
                        let window = 2 * self.interval;
                        self.targeted
                            .retain(|_, (_, at)| now.saturating_duration_since(*at) <= window);
                    }
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
        let ttl = self.targeted_ttl();
        self.targeted
            .retain(|_, (_, at)| now.saturating_duration_since(*at) <= ttl);
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
