//! The member side: a raw respondent dialled to one or more survey URLs that answers
//! every survey with the member (native) or its raw name (legacy survey).
//!
//! Threads: none of its own. Surveys are answered in the completion callback of
//! one NNG receive (on NNG's task threads): no thread wakes per survey, and a
//! process with many clients does not hold a thread for each. On every new
//! connection the client also announces itself unasked (a response with survey id
//! [`wire::ANNOUNCE_ID`]), so the server sees it join without waiting for a survey.
//!
//! The raw respondent is used on purpose: it answers a survey through the header
//! it came with (no per-survey state to keep), and an announce is a response with
//! a header we build ourselves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::{Auth, AuthCell, AuthCounters, AuthMode, AuthStats, Keyring, Role};
use crate::error::{Error, Result};
use crate::member::{new_incarnation, Limits, Member, Metadata};
use crate::net;
use crate::nng::{self as nng, lock, PipeEvent, Protocol, Socket};
use crate::subscriber::{Subscriber, SubscriberBuilder};
use crate::wire::{self, Message};

/// Settings of a [`Client`]; start it with [`ClientBuilder::start`].
pub struct ClientBuilder {
    name: String,
    metadata: Metadata,
    surveys: Vec<String>,
    limits: Limits,
    reconnect_max: Duration,
    watch: Option<SubscriberBuilder>,
    auth: Auth,
}

impl ClientBuilder {
    /// Adds a survey URL to answer (repeatable; default `tcp://127.0.0.1:40007`).
    pub fn survey(mut self, url: impl Into<String>) -> Self {
        self.surveys.push(url.into());
        self
    }
    /// Sets one metadata entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
    /// Replaces the metadata.
    pub fn metadata(mut self, md: Metadata) -> Self {
        self.metadata = md;
        self
    }
    /// Size limits (names and metadata are checked against them at start).
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }
    /// Longest wait between reconnection attempts while a server is down (default 1 s).
    pub fn reconnect_max(mut self, d: Duration) -> Self {
        self.reconnect_max = d;
        self
    }
    /// Answers only surveys that verify with the keyring and signs every answer
    /// with its primary key (auth `required`, unless [`ClientBuilder::auth`] says
    /// otherwise). A watching subscriber without a keyring of its own takes this one.
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
    /// Also watch the member set (the original's `ClientWithSub`): the client owns a
    /// [`Subscriber`] built from `sub`, reachable through [`Client::subscriber`].
    pub fn watch(mut self, sub: SubscriberBuilder) -> Self {
        self.watch = Some(sub);
        self
    }
    /// Dials every survey URL (without waiting: the dialers retry while a server is
    /// down) and starts answering.
    pub fn start(self) -> Result<Client> {
        Client::start(self)
    }
}

/// Surveys answered and announces sent, and when the last survey came: of the
/// whole client, and of each survey URL.
#[derive(Default)]
struct Tally {
    surveys: AtomicU64,
    announces: AtomicU64,
    last_survey: Mutex<Option<Instant>>,
}

impl Tally {
    fn surveyed(&self) {
        *lock(&self.last_survey) = Some(Instant::now());
    }
    fn last_survey_age(&self) -> Option<Duration> {
        lock(&self.last_survey).map(|t| t.elapsed())
    }
}

/// One survey URL the client dials.
struct Link {
    url: String,
    /// Its dialer's id (0 until dialled): connections map to their URL through it.
    dialer: AtomicU32,
    /// Live connections of this URL's dialer (0 or 1).
    connections: AtomicU64,
    tally: Tally,
}

struct Shared {
    /// The member as announced.
    member: Mutex<Member>,
    auth: AuthCell,
    auth_counters: AuthCounters,
    /// Live connections (numeric pipe ids), for re-announcing after a change,
    /// each with the index in `links` of the URL it was dialled to.
    pipes: Mutex<HashMap<u32, Option<usize>>>,
    links: Vec<Link>,
    /// The socket, for the announce in the connection callback. Taken at close to
    /// break the socket → callback → socket cycle.
    socket: Mutex<Option<Socket>>,
    limits: Limits,
    total: Tally,
}

/// What a client did so far ([`Client::stats`]): whether any server surveys it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStats {
    /// Live connections to servers.
    pub connections: usize,
    /// Surveys answered (from every server).
    pub surveys_answered: u64,
    /// Announces sent (one per new connection and per metadata change).
    pub announces_sent: u64,
    /// Time since the last survey (None: never surveyed).
    pub last_survey_age: Option<Duration>,
    /// The same per survey URL, in the order given: a member can see which
    /// server does not survey it.
    pub survey_urls: Vec<SurveyUrlStats>,
    /// Surveys dropped by authentication, by reason (and unsigned ones answered
    /// under `permissive`).
    pub auth: AuthStats,
}

/// One survey URL's part of [`ClientStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyUrlStats {
    /// The URL as given.
    pub url: String,
    /// A connection to it is up.
    pub connected: bool,
    /// Surveys answered on its connections.
    pub surveys_answered: u64,
    /// Announces sent on its connections.
    pub announces_sent: u64,
    /// Time since its last survey (None: never surveyed).
    pub last_survey_age: Option<Duration>,
}

impl Shared {
    fn announce(&self, socket: &Socket, pipe: u32) {
        let member = lock(&self.member).clone();
        let body = (self.auth.get()).seal(Role::Answer, wire::encode_answer(&member, 0, 0));
        let mut header = pipe.to_be_bytes().to_vec();
        header.extend_from_slice(&wire::ANNOUNCE_ID.to_be_bytes());
        let msg = nng::Message::new(&header, &body);
        // Never blocks: the raw respondent queues it or drops it (the next survey
        // is answered anyway).
        match socket.try_send(msg) {
            Ok(()) => {
                for t in self.tallies(pipe) {
                    t.announces.fetch_add(1, Relaxed);
                }
            }
            Err((_, e)) => log::debug!("announce on connection {pipe} not sent: {e}"),
        }
    }

    /// The tallies a connection counts in: the client's, and its URL's if known.
    fn tallies(&self, pipe: u32) -> impl Iterator<Item = &Tally> {
        let link = lock(&self.pipes).get(&pipe).copied().flatten();
        std::iter::once(&self.total).chain(link.map(|i| &self.links[i].tally))
    }

    fn connection(&self, pipe: u32, ev: PipeEvent) {
        let mut pipes = lock(&self.pipes);
        let link = match ev {
            PipeEvent::Added => {
                let link = nng::pipe_dialer(pipe)
                    .and_then(|d| self.links.iter().position(|l| l.dialer.load(Relaxed) == d));
                pipes.insert(pipe, link);
                link
            }
            PipeEvent::Removed => pipes.remove(&pipe).flatten(),
        };
        if let Some(l) = link.map(|i| &self.links[i].connections) {
            match ev {
                PipeEvent::Added => l.fetch_add(1, Relaxed),
                PipeEvent::Removed => l.fetch_sub(1, Relaxed),
            };
        }
    }
}

/// A running member. Dropping it (or [`Client::close`]) closes its connections,
/// which the server sees at once (reason `closed`).
pub struct Client {
    shared: Arc<Shared>,
    socket: Socket,
    workers: net::Workers,
    subscriber: Option<Subscriber>,
    /// The watching subscriber took this client's keyring (it was given none).
    subscriber_inherits: bool,
}

impl Client {
    /// A client for service `name` (e.g. `http://10.0.0.1:8080`).
    pub fn builder(name: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            name: name.into(),
            metadata: Metadata::new(),
            surveys: Vec::new(),
            limits: Limits::default(),
            reconnect_max: crate::DEFAULT_RECONNECT_MAX,
            watch: None,
            auth: Auth::off(),
        }
    }

    fn start(cfg: ClientBuilder) -> Result<Client> {
        cfg.limits.validate()?;
        cfg.auth.validate()?;
        let member = Member {
            name: cfg.name,
            metadata: cfg.metadata,
            incarnation: new_incarnation(),
            generation: 0,
        };
        cfg.limits.check_member(&member)?;
        if cfg.reconnect_max.is_zero() {
            return Err(Error::option("reconnect_max", "must be greater than zero"));
        }
        let mut surveys = cfg.surveys;
        if surveys.is_empty() {
            surveys.push(net::DEFAULT_SURVEY_URL.into());
        }
        let mut workers = net::Workers::default();
        let socket = net::open(Protocol::Respondent0, true)?;
        workers.socket(&socket);
        net::set_recv_max(&socket, 64 * 1024)?;
        net::set_reconnect(&socket, cfg.reconnect_max)?;
        // Sends never block (the answer goes now or the next survey is answered
        // instead), with room for a burst.
        net::set_buffers(&socket, None, Some(128))?;
        let links = (surveys.iter())
            .map(|url| Link {
                url: url.clone(),
                dialer: AtomicU32::new(0),
                connections: AtomicU64::new(0),
                tally: Tally::default(),
            })
            .collect();
        let shared = Arc::new(Shared {
            member: Mutex::new(member),
            auth: AuthCell::new(cfg.auth.clone()),
            auth_counters: AuthCounters::default(),
            pipes: Mutex::new(HashMap::new()),
            links,
            socket: Mutex::new(Some(socket.clone())),
            limits: cfg.limits,
            total: Tally::default(),
        });
        let s = shared.clone();
        workers.on_stop(move || drop(lock(&s.socket).take()));
        let cb = shared.clone();
        socket
            .pipe_notify(move |id, ev| {
                cb.connection(id, ev);
                if ev == PipeEvent::Added {
                    let sock = lock(&cb.socket).clone();
                    if let Some(s) = sock {
                        cb.announce(&s, id);
                    }
                }
            })
            .map_err(|e| Error::nng("registering connection events", e))?;
        for (url, link) in surveys.iter().zip(&shared.links) {
            // The id is noted before the dialer starts, so its first connection
            // already maps to its URL.
            net::dial_noting(&socket, url, |id| link.dialer.store(id, Relaxed))?;
        }
        let auth = cfg.auth;
        // A watching subscriber given no keyring, mode or label of its own takes
        // the client's (and later its set_keyring).
        let inherits = cfg.watch.as_ref().is_some_and(|sub| !sub.has_own_auth());
        let subscriber = (cfg.watch)
            .map(|sub| match inherits {
                true => sub.authentication(auth.clone()).start(),
                false => sub.start(),
            })
            .transpose()?;
        let answers = shared.clone();
        workers.callback(nng::Callback::start(&socket, move |socket, msg| {
            answers.answer(socket, msg)
        }));
        Ok(Client {
            shared,
            socket,
            workers,
            subscriber,
            subscriber_inherits: inherits,
        })
    }

    /// The member as announced (name, metadata, incarnation).
    pub fn member(&self) -> Member {
        lock(&self.shared.member).clone()
    }

    /// Replaces the keyring (mode and mesh label stay), and the watching
    /// subscriber's if it took this client's: answers are signed with the new
    /// primary from the next survey on. Fails on a client started without one.
    pub fn set_keyring(&self, keyring: Keyring) -> Result<()> {
        self.shared.auth.set_keyring(keyring.clone())?;
        if let Some(sub) = self
            .subscriber
            .as_ref()
            .filter(|_| self.subscriber_inherits)
        {
            sub.set_keyring(keyring)?;
        }
        Ok(())
    }

    /// Replaces the metadata. The server publishes `updated` at once: the client
    /// re-announces itself on every connection. Each change adds 1 to the member's
    /// generation (subscribers merging several servers show the greatest).
    pub fn set_metadata(&self, md: Metadata) -> Result<()> {
        {
            let mut a = lock(&self.shared.member);
            if a.metadata != md {
                let mut member = a.clone();
                member.metadata = md;
                member.generation = member.generation.wrapping_add(1);
                self.shared.limits.check_member(&member)?;
                *a = member;
            }
        }
        let pipes: Vec<u32> = lock(&self.shared.pipes).keys().copied().collect();
        for p in pipes {
            self.shared.announce(&self.socket, p);
        }
        Ok(())
    }

    /// The embedded subscriber, when built with [`ClientBuilder::watch`].
    pub fn subscriber(&self) -> Option<&Subscriber> {
        self.subscriber.as_ref()
    }

    /// Number of live connections to servers.
    pub fn connections(&self) -> usize {
        lock(&self.shared.pipes).len()
    }

    /// Connections, surveys answered, announces sent, time since the last
    /// survey: in all and per survey URL.
    pub fn stats(&self) -> ClientStats {
        let sh = &self.shared;
        ClientStats {
            connections: self.connections(),
            surveys_answered: sh.total.surveys.load(Relaxed),
            announces_sent: sh.total.announces.load(Relaxed),
            last_survey_age: sh.total.last_survey_age(),
            survey_urls: (sh.links.iter())
                .map(|l| SurveyUrlStats {
                    url: l.url.clone(),
                    connected: l.connections.load(Relaxed) > 0,
                    surveys_answered: l.tally.surveys.load(Relaxed),
                    announces_sent: l.tally.announces.load(Relaxed),
                    last_survey_age: l.tally.last_survey_age(),
                })
                .collect(),
            auth: sh.auth_counters.stats(),
        }
    }

    /// Closes the connections and stops answering. Idempotent.
    pub fn close(&mut self) {
        if let Some(sub) = self.subscriber.as_mut() {
            sub.close();
        }
        self.workers.shutdown();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// Answers one survey (on an NNG task thread): the same header (pipe id +
    /// survey id backtrace), the answer as body. Never blocks: if the send queue
    /// is full, the next survey is answered instead.
    fn answer(&self, socket: &Socket, msg: nng::Message) {
        let Some(answer) = self.answer_to(msg.body()) else {
            return;
        };
        let pipe = msg.pipe();
        for t in self.tallies(pipe) {
            t.surveyed();
        }
        msg.clear_body();
        msg.append(&answer);
        match socket.try_send(msg) {
            Ok(()) => {
                for t in self.tallies(pipe) {
                    t.surveys.fetch_add(1, Relaxed);
                }
            }
            Err((_, e)) => log::debug!("answer not sent: {e}"),
        }
    }
}

impl Shared {
    /// The answer to a survey body: the member echoing the survey, or the raw
    /// name for the original Go server's empty survey; None for anything that is
    /// not a survey, or a survey the keyring refuses.
    fn answer_to(&self, survey: &[u8]) -> Option<Vec<u8>> {
        let auth = self.auth.get();
        match auth.check(Role::Survey, survey) {
            Ok(c) => self.auth_counters.note(&c),
            Err(r) => {
                self.auth_counters.refused(r, "surveys");
                return None;
            }
        }
        let member = lock(&self.member);
        if survey.is_empty() {
            return Some(member.name.as_bytes().to_vec());
        }
        match wire::decode(survey, &self.limits) {
            Ok(Message::Survey { epoch, round }) => {
                Some(auth.seal(Role::Answer, wire::encode_answer(&member, epoch, round)))
            }
            Ok(_) => None,
            Err(e) => {
                log::debug!("ignored a survey of {} bytes: {e}", survey.len());
                None
            }
        }
    }
}
