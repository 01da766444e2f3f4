//! The member side: a raw respondent dialled to one or more survey URLs that answers
//! every survey with the member (native) or its raw name (legacy survey).
//!
//! Threads: none of its own. Surveys are answered in the completion callback of
//! one NNG receive (on NNG's task threads): no thread wakes per survey, and a
//! process with many clients does not hold a thread for each. On every new
//! connection the client also announces itself unasked (a response with survey id
//! [`wire::ANNOUNCE_ID`]), so the server sees it join without waiting for a survey.
//!
//! The raw respondent is used on purpose: NNG 1.4's cooked respondent can crash when
//! the surveyor disconnects while a survey is queued (nanomsg/nng#1959).

use std::collections::HashSet;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nng::{PipeEvent, Protocol};

use crate::error::{Error, Result};
use crate::member::{random_u64, Limits, Member, Metadata};
use crate::net;
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

struct Shared {
    /// Native and legacy answer bodies, re-encoded on every metadata change.
    answers: Mutex<(Member, Vec<u8>, Vec<u8>)>,
    /// Live connections (numeric pipe ids), for re-announcing after a change.
    pipes: Mutex<HashSet<u32>>,
    /// The socket, for the announce in the connection callback. Taken at close to
    /// break the socket → callback → socket cycle.
    socket: Mutex<Option<nng::Socket>>,
    limits: Limits,
}

impl Shared {
    fn announce(&self, socket: &nng::Socket, pipe: u32) {
        let body = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone();
        let mut msg = nng::Message::new();
        msg.as_mut_header().push_back(&pipe.to_be_bytes());
        msg.as_mut_header()
            .push_back(&wire::ANNOUNCE_ID.to_be_bytes());
        msg.push_back(&body);
        // Never blocks: the raw respondent queues it or drops it (the next survey
        // is answered anyway).
        if let Err((_, e)) = socket.try_send(msg) {
            log::debug!("announce on connection {pipe} not sent: {e}");
        }
    }
}

/// A running member. Dropping it (or [`Client::close`]) closes its connections,
/// which the server sees at once (reason `closed`).
pub struct Client {
    shared: Arc<Shared>,
    socket: nng::Socket,
    answerer: Option<Answerer>,
    subscriber: Option<Subscriber>,
}

impl Client {
    /// A client for service `name` (e.g. `http://10.0.0.1:8080`).
    pub fn builder(name: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            name: name.into(),
            metadata: Metadata::new(),
            surveys: Vec::new(),
            limits: Limits::default(),
            reconnect_max: Duration::from_secs(1),
            watch: None,
        }
    }

    fn start(cfg: ClientBuilder) -> Result<Client> {
        cfg.limits.validate()?;
        let member = Member {
            name: cfg.name,
            metadata: cfg.metadata,
            incarnation: random_u64(),
        };
        cfg.limits.check_member(&member)?;
        if cfg.reconnect_max.is_zero() {
            return Err(Error::option("reconnect_max", "must be greater than zero"));
        }
        let mut surveys = cfg.surveys;
        if surveys.is_empty() {
            surveys.push(net::DEFAULT_SURVEY_URL.into());
        }
        let socket = net::open(Protocol::Respondent0, true)?;
        net::set_recv_max(&socket, 64 * 1024)?;
        net::set_reconnect(&socket, cfg.reconnect_max)?;
        // No timeouts on this socket, ever: NNG 1.4 can touch a freed queue when an
        // operation's timeout expires while the socket closes. Sends are
        // non-blocking instead, with room for a burst.
        net::set_buffers(&socket, None, Some(128))?;
        let native = wire::encode_answer(&member);
        let legacy = member.name.as_bytes().to_vec();
        let shared = Arc::new(Shared {
            answers: Mutex::new((member, native, legacy)),
            pipes: Mutex::new(HashSet::new()),
            socket: Mutex::new(Some(socket.clone())),
            limits: cfg.limits,
        });
        let cb = shared.clone();
        socket
            .pipe_notify(move |pipe, ev| {
                let id = net::pipe_id(pipe);
                match ev {
                    PipeEvent::AddPost => {
                        cb.pipes
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(id);
                        let sock = cb.socket.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        if let Some(s) = sock {
                            cb.announce(&s, id);
                        }
                    }
                    PipeEvent::RemovePost => {
                        cb.pipes
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&id);
                    }
                    _ => {}
                }
            })
            .map_err(|e| Error::nng("registering connection events", e))?;
        let fail = |e: Error| {
            shared
                .socket
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            socket.close();
            let _ = socket.pipe_notify(|_, _| {});
            e
        };
        for url in &surveys {
            net::dial(&socket, url).map_err(fail)?;
        }
        let subscriber = match cfg.watch {
            Some(b) => Some(b.start().map_err(fail)?),
            None => None,
        };
        let answerer = Answerer::start(&socket, shared.clone()).map_err(fail)?;
        Ok(Client {
            shared,
            socket,
            answerer: Some(answerer),
            subscriber,
        })
    }

    /// The member as announced (name, metadata, incarnation).
    pub fn member(&self) -> Member {
        self.shared
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Replaces the metadata. The server publishes `updated` at once: the client
    /// re-announces itself on every connection.
    pub fn set_metadata(&self, md: Metadata) -> Result<()> {
        let mut member = self.member();
        member.metadata = md;
        self.shared.limits.check_member(&member)?;
        {
            let mut a = self
                .shared
                .answers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            a.1 = wire::encode_answer(&member);
            a.0 = member;
        }
        let pipes: Vec<u32> = self
            .shared
            .pipes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
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
        self.shared
            .pipes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Closes the connections and stops answering. Idempotent.
    pub fn close(&mut self) {
        if let Some(sub) = self.subscriber.as_mut() {
            sub.close();
        }
        let Some(answerer) = self.answerer.take() else {
            return;
        };
        self.shared
            .socket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // Stop the receive (waits for a running callback), and only then close
        // (see net::Inbox for why not the other way round).
        answerer.stop();
        self.socket.close();
        drop(answerer);
        let _ = self.socket.pipe_notify(|_, _| {});
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.close();
    }
}

/// What the answer callback needs; boxed, so its address is stable while NNG holds it.
struct AnswerCtx {
    aio: *mut nng_sys::nng_aio,
    socket: nng_sys::nng_socket,
    shared: Arc<Shared>,
}

/// The one receive a client keeps pending: each survey is answered in its
/// completion callback, which then starts the next receive.
struct Answerer {
    ctx: *mut AnswerCtx,
}

// SAFETY: the context is only touched by NNG's callback (one at a time: one aio)
// until `stop` returns; after that only by the owner, to free it.
unsafe impl Send for Answerer {}
unsafe impl Sync for Answerer {}

impl Answerer {
    fn start(socket: &nng::Socket, shared: Arc<Shared>) -> Result<Answerer> {
        let ctx = Box::into_raw(Box::new(AnswerCtx {
            aio: std::ptr::null_mut(),
            socket: socket.nng_socket(),
            shared,
        }));
        // SAFETY: `ctx` is a live box; the aio is stored in it before the first
        // receive starts, so the callback always sees it.
        unsafe {
            let rv = nng_sys::nng_aio_alloc(&mut (*ctx).aio, Some(on_survey), ctx as *mut c_void);
            if rv != 0 || (*ctx).aio.is_null() {
                drop(Box::from_raw(ctx));
                return Err(Error::Io(std::io::Error::from(
                    std::io::ErrorKind::OutOfMemory,
                )));
            }
            nng_sys::nng_recv_aio((*ctx).socket, (*ctx).aio);
        }
        Ok(Answerer { ctx })
    }

    /// Cancels the pending receive and waits for a callback in progress; no
    /// callback runs after this returns.
    fn stop(&self) {
        // SAFETY: the context and its aio live until drop.
        unsafe { nng_sys::nng_aio_stop((*self.ctx).aio) }
    }
}

impl Drop for Answerer {
    fn drop(&mut self) {
        self.stop();
        // SAFETY: stopped, so NNG no longer uses the aio or the context.
        unsafe {
            let ctx = Box::from_raw(self.ctx);
            nng_sys::nng_aio_free(ctx.aio);
        }
    }
}

extern "C" fn on_survey(arg: *mut c_void) {
    // SAFETY: `arg` is the AnswerCtx given to nng_aio_alloc; it outlives the aio.
    let ctx = unsafe { &*(arg as *const AnswerCtx) };
    // A panic must not unwind into NNG's thread.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx.on_survey())).is_err() {
        // (A bug; the receive is started last, so it is not pending now.)
        log::error!("answering a survey panicked; waiting for the next one");
        // SAFETY: as in on_survey.
        unsafe { nng_sys::nng_recv_aio(ctx.socket, ctx.aio) }
    }
}

impl AnswerCtx {
    fn on_survey(&self) {
        // SAFETY: called by NNG for our aio's completed receive; the message taken
        // from it is ours until sent (NNG takes it) or freed.
        unsafe {
            let rv = nng_sys::nng_aio_result(self.aio) as u32;
            if rv == nng_sys::NNG_ECLOSED || rv == nng_sys::NNG_ECANCELED {
                return;
            }
            if rv == 0 {
                let msg = nng_sys::nng_aio_get_msg(self.aio);
                let n = nng_sys::nng_msg_len(msg);
                let body = if n == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(nng_sys::nng_msg_body(msg) as *const u8, n)
                };
                match self.shared.answer_to(body) {
                    Some(answer) => {
                        // Same header (pipe id + survey id backtrace), the answer as
                        // body. Never blocks: if the queue is full the next survey is
                        // answered instead.
                        nng_sys::nng_msg_clear(msg);
                        let mut rv = nng_sys::nng_msg_append(
                            msg,
                            answer.as_ptr() as *const c_void,
                            answer.len(),
                        );
                        if rv == 0 {
                            rv = nng_sys::nng_sendmsg(
                                self.socket,
                                msg,
                                nng_sys::NNG_FLAG_NONBLOCK as i32,
                            );
                        }
                        if rv != 0 {
                            nng_sys::nng_msg_free(msg);
                            log::debug!("answer not sent: NNG error {rv}");
                        }
                    }
                    None => nng_sys::nng_msg_free(msg),
                }
            } else {
                log::warn!("survey receive failed: NNG error {rv}");
            }
            nng_sys::nng_recv_aio(self.socket, self.aio);
        }
    }
}

impl Shared {
    /// The answer to a survey body: the member, or the raw name for the original
    /// Go server's empty survey; None for anything that is not a survey.
    fn answer_to(&self, survey: &[u8]) -> Option<Vec<u8>> {
        let a = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if survey.is_empty() {
            return Some(a.2.clone());
        }
        match wire::decode(survey, &self.limits) {
            Ok(Message::Survey { .. }) => Some(a.1.clone()),
            Ok(_) => None,
            Err(e) => {
                log::debug!("ignored a survey of {} bytes: {e}", survey.len());
                None
            }
        }
    }
}
