//! Our thin safe layer over NNG (the vendored `gopherdiscovery-nng-sys`, NNG 1.11).
//!
//! Every NNG call of the crate is in this file, so the rest of the code is safe Rust
//! and a move to NNG 2.0 changes one file: calls renamed in 2.0 (`nng_socket_close`
//! vs `nng_close`, `nng_sock_recv`, `NNG_OPT_BOUND_PORT`) and 2.0's `NNG_ESTOPPED`
//! (handled like "closed") stay here.
//!
//! What it offers:
//! - [`Socket`]: the six protocols we use, cooked or raw; clones share one NNG
//!   socket, which is closed exactly once (by [`Socket::close`] or when the last
//!   clone drops). Typed option setters, dial (non-blocking) and listen with the
//!   bound port, send / try_send / recv of [`Message`]s, and pipe events through a
//!   trampoline that catches panics.
//! - [`Message`]: an owned NNG message (header, body, pipe), freed on drop.
//! - [`Inbox`] + [`Stopper`]: a blocking receive on an aio that another thread can
//!   stop without a race; stop first, then join the receiving thread, then close the
//!   socket (NNG's own rule for aios).
//! - [`Error`]: NNG's error code with NNG's text.
//! - [`init`]: the one-time setup (task threads), run before the first socket opens.
//!
//! Public only for the project's own tests and benchmarks (raw peers, attack
//! scripts); it is not part of the library's stable API.

use std::ffi::{c_char, c_void, CStr, CString};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use nng_sys as sys;

/// NNG 2.0's "operation stopped" (`NNG_ESTOPPED`); NNG 1.x never returns it.
const ESTOPPED: i32 = 999;

/// An NNG error code, shown with NNG's own text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error(i32);

impl Error {
    /// NNG's numeric code (`NNG_E…`).
    pub fn code(self) -> i32 {
        self.0
    }
    /// The socket or operation was closed or stopped.
    pub fn is_closed(self) -> bool {
        let c = self.0 as u32;
        c == sys::NNG_ECLOSED || c == sys::NNG_ECANCELED || self.0 == ESTOPPED
    }
    /// A deadline passed.
    pub fn is_timeout(self) -> bool {
        self.0 as u32 == sys::NNG_ETIMEDOUT
    }
    /// A non-blocking operation could not go now.
    pub fn is_again(self) -> bool {
        self.0 as u32 == sys::NNG_EAGAIN
    }
    /// Another socket holds the address.
    pub fn is_addr_in_use(self) -> bool {
        self.0 as u32 == sys::NNG_EADDRINUSE
    }
    /// NNG cannot parse the URL or has no transport for it.
    pub fn is_bad_url(self) -> bool {
        let c = self.0 as u32;
        c == sys::NNG_EADDRINVAL || c == sys::NNG_ENOTSUP || c == sys::NNG_EINVAL
    }
    fn check(rv: i32) -> Result<()> {
        if rv == 0 {
            Ok(())
        } else {
            Err(Error(rv))
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == ESTOPPED {
            return f.write_str("Operation stopped");
        }
        // SAFETY: nng_strerror returns a pointer to a static NUL-terminated string for
        // any code (a shared buffer only for unknown ones, never freed).
        let text = unsafe { CStr::from_ptr(sys::nng_strerror(self.0)) };
        f.write_str(&text.to_string_lossy())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nng::Error({}: {self})", self.0)
    }
}

impl std::error::Error for Error {}

/// Results of this layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The number of NNG task threads: one per CPU, at least two.
fn task_threads() -> u64 {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2) as u64)
}

/// One-time NNG setup; every constructor here calls it first. NNG reads its init
/// parameters when it initialises, at the first socket.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a plain setter of a global, called before any other NNG call (we
        // are the only NNG user in the process that goes through `init`, and every
        // constructor here calls it first).
        unsafe {
            sys::nng_init_set_parameter(
                sys::NNG_INIT_NUM_TASK_THREADS as sys::nng_init_parameter,
                task_threads(),
            )
        }
    });
}

/// The NNG version linked in, e.g. `1.11.0`.
pub fn version() -> &'static str {
    // SAFETY: nng_version returns a pointer to a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(sys::nng_version()) };
    v.to_str().unwrap_or("unknown")
}

/// The scalability protocols we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// surveyor0 (server's survey socket).
    Surveyor0,
    /// respondent0 (a member).
    Respondent0,
    /// pub0 (server's publish sockets).
    Pub0,
    /// sub0 (a subscriber).
    Sub0,
    /// req0 (snapshot requests).
    Req0,
    /// rep0 (server's snapshot socket).
    Rep0,
}

/// A connection event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeEvent {
    /// A connection was added (after the SP handshake).
    Added,
    /// A connection was removed.
    Removed,
}

type Notify = Arc<dyn Fn(u32, PipeEvent) + Send + Sync>;

struct Inner {
    id: sys::nng_socket,
    closed: AtomicBool,
    /// The pipe callback. Boxed so its address (given to NNG as the callback's
    /// argument) stays put; freed only when `Inner` drops, after the socket is
    /// closed, when NNG runs no more pipe callbacks (nng_close waits for every
    /// pipe to be removed, and pipe callbacks run before removal).
    notify: Box<Mutex<Option<Notify>>>,
}

impl Inner {
    fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // SAFETY: a socket we opened, closed once (the flag above).
            unsafe { sys::nng_socket_close(self.id) };
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

/// An NNG socket. Clones share it; it is closed once, by [`Socket::close`] or when
/// the last clone drops. Every operation on a closed socket fails with a closed error.
#[derive(Clone)]
pub struct Socket(Arc<Inner>);

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Socket({})", self.id())
    }
}

/// Sets a socket option of one type; the name is an NNG `NNG_OPT_*` byte string.
macro_rules! set_opt {
    ($self:ident, $setter:ident, $name:expr, $value:expr) => {{
        // SAFETY: a socket id (NNG checks it), a NUL-terminated option name from the
        // bindings, a plain value.
        let rv = unsafe { sys::$setter($self.0.id, $name.as_ptr().cast::<c_char>(), $value) };
        Error::check(rv)
    }};
}

fn ms(d: Option<Duration>) -> sys::nng_duration {
    match d {
        None => -1, // NNG_DURATION_INFINITE
        Some(d) => d.as_millis().min(i32::MAX as u128) as sys::nng_duration,
    }
}

impl Socket {
    /// Opens a socket of `proto`, raw when `raw`.
    pub fn open(proto: Protocol, raw: bool) -> Result<Socket> {
        init();
        let mut id = sys::nng_socket::default();
        type Open = unsafe extern "C" fn(*mut sys::nng_socket) -> i32;
        let (cooked, raw_open): (Open, Open) = match proto {
            Protocol::Surveyor0 => (sys::nng_surveyor0_open, sys::nng_surveyor0_open_raw),
            Protocol::Respondent0 => (sys::nng_respondent0_open, sys::nng_respondent0_open_raw),
            Protocol::Pub0 => (sys::nng_pub0_open, sys::nng_pub0_open_raw),
            Protocol::Sub0 => (sys::nng_sub0_open, sys::nng_sub0_open_raw),
            Protocol::Req0 => (sys::nng_req0_open, sys::nng_req0_open_raw),
            Protocol::Rep0 => (sys::nng_rep0_open, sys::nng_rep0_open_raw),
        };
        let open = if raw { raw_open } else { cooked };
        // SAFETY: a valid out-pointer; the function is one of NNG's open calls.
        Error::check(unsafe { open(&mut id) })?;
        Ok(Socket(Arc::new(Inner {
            id,
            closed: AtomicBool::new(false),
            notify: Box::new(Mutex::new(None)),
        })))
    }

    /// NNG's numeric id of the socket.
    pub fn id(&self) -> u32 {
        // SAFETY: reads the id out of the handle.
        unsafe { sys::nng_socket_id(self.0.id) as u32 }
    }

    /// Closes the socket (once; later calls do nothing). Blocked operations fail
    /// with a closed error; connections close.
    pub fn close(&self) {
        self.0.close();
    }

    /// Largest message accepted; a larger frame closes its connection.
    pub fn set_recv_max(&self, bytes: usize) -> Result<()> {
        set_opt!(self, nng_socket_set_size, sys::NNG_OPT_RECVMAXSZ, bytes)
    }

    /// Messages queued for the application to receive (0 to 8192).
    pub fn set_recv_buffer(&self, n: i32) -> Result<()> {
        set_opt!(self, nng_socket_set_int, sys::NNG_OPT_RECVBUF, n)
    }

    /// Messages queued for sending (0 to 8192).
    pub fn set_send_buffer(&self, n: i32) -> Result<()> {
        set_opt!(self, nng_socket_set_int, sys::NNG_OPT_SENDBUF, n)
    }

    /// Receive timeout (`None`: wait forever).
    pub fn set_recv_timeout(&self, t: Option<Duration>) -> Result<()> {
        set_opt!(self, nng_socket_set_ms, sys::NNG_OPT_RECVTIMEO, ms(t))
    }

    /// Send timeout (`None`: wait forever).
    pub fn set_send_timeout(&self, t: Option<Duration>) -> Result<()> {
        set_opt!(self, nng_socket_set_ms, sys::NNG_OPT_SENDTIMEO, ms(t))
    }

    /// Reconnect back-off of dialers made afterwards: from `min`, doubling to `max`.
    pub fn set_reconnect(&self, min: Duration, max: Duration) -> Result<()> {
        set_opt!(
            self,
            nng_socket_set_ms,
            sys::NNG_OPT_RECONNMINT,
            ms(Some(min))
        )?;
        set_opt!(
            self,
            nng_socket_set_ms,
            sys::NNG_OPT_RECONNMAXT,
            ms(Some(max))
        )
    }

    /// req0: re-send an unanswered request after this long.
    pub fn set_resend_time(&self, t: Duration) -> Result<()> {
        set_opt!(
            self,
            nng_socket_set_ms,
            sys::NNG_OPT_REQ_RESENDTIME,
            ms(Some(t))
        )
    }

    /// surveyor0 (cooked): how long a survey collects answers.
    pub fn set_survey_time(&self, t: Duration) -> Result<()> {
        set_opt!(
            self,
            nng_socket_set_ms,
            sys::NNG_OPT_SURVEYOR_SURVEYTIME,
            ms(Some(t))
        )
    }

    /// sub0: receive every publication (the empty prefix).
    pub fn subscribe_all(&self) -> Result<()> {
        // SAFETY: a socket id (NNG checks it and its protocol); an empty prefix with
        // a null pointer is allowed when the length is 0, but pass a valid one anyway.
        let rv =
            unsafe { sys::nng_sub0_socket_subscribe(self.0.id, b"".as_ptr().cast::<c_void>(), 0) };
        Error::check(rv)
    }

    /// Listens on `url`; returns the TCP port bound (the kernel's choice for port 0),
    /// or `None` for other transports.
    pub fn listen(&self, url: &str) -> Result<Option<u16>> {
        let url = c_url(url)?;
        let mut l = sys::nng_listener::default();
        // SAFETY: a NUL-terminated URL that outlives the call, a valid out-pointer.
        Error::check(unsafe { sys::nng_listen(self.0.id, url.as_ptr(), &mut l, 0) })?;
        let mut port: i32 = 0;
        // SAFETY: the listener just made, a NUL-terminated option name, a valid
        // out-pointer; non-TCP listeners answer with an error, which means "no port".
        let rv = unsafe {
            sys::nng_listener_get_int(
                l,
                sys::NNG_OPT_TCP_BOUND_PORT.as_ptr().cast::<c_char>(),
                &mut port,
            )
        };
        Ok((rv == 0).then_some(port as u16))
    }

    /// Dials `url` without waiting: the dialer keeps retrying in the background
    /// while the peer is down. Returns the dialer's id (what [`pipe_dialer`] gives
    /// for its connections).
    pub fn dial(&self, url: &str) -> Result<u32> {
        self.dial_noting(url, |_| {})
    }

    /// [`Socket::dial`], calling `note` with the dialer's id before the dialer
    /// starts: before any connection of it exists.
    pub fn dial_noting(&self, url: &str, note: impl FnOnce(u32)) -> Result<u32> {
        let url = c_url(url)?;
        let mut d = sys::nng_dialer::default();
        // SAFETY: a valid out-pointer, our open socket, a NUL-terminated URL that
        // outlives the call.
        Error::check(unsafe { sys::nng_dialer_create(&mut d, self.0.id, url.as_ptr()) })?;
        // SAFETY: reads the id out of the handle NNG just wrote.
        let id = unsafe { sys::nng_dialer_id(d) } as u32;
        note(id);
        // SAFETY: the dialer just made, not started yet.
        let rv = unsafe { sys::nng_dialer_start(d, sys::NNG_FLAG_NONBLOCK as i32) };
        if let Err(e) = Error::check(rv) {
            // SAFETY: the dialer just made; closed once, here.
            unsafe { sys::nng_dialer_close(d) };
            return Err(e);
        }
        Ok(id)
    }

    fn send_flags(&self, msg: Message, flags: i32) -> Result<(), (Message, Error)> {
        // SAFETY: a live message we own; on success NNG takes it (we forget ours),
        // on failure it stays ours.
        let rv = unsafe { sys::nng_sendmsg(self.0.id, msg.0.as_ptr(), flags) };
        if rv == 0 {
            std::mem::forget(msg);
            Ok(())
        } else {
            Err((msg, Error(rv)))
        }
    }

    /// Sends, waiting for room (up to the send timeout).
    pub fn send(&self, msg: Message) -> Result<(), (Message, Error)> {
        self.send_flags(msg, 0)
    }

    /// Sends if it can go now; never blocks.
    pub fn try_send(&self, msg: Message) -> Result<(), (Message, Error)> {
        self.send_flags(msg, sys::NNG_FLAG_NONBLOCK as i32)
    }

    /// Receives the next message (up to the receive timeout).
    pub fn recv(&self) -> Result<Message> {
        let mut m: *mut sys::nng_msg = std::ptr::null_mut();
        // SAFETY: a valid out-pointer; on success the message is ours.
        Error::check(unsafe { sys::nng_recvmsg(self.0.id, &mut m, 0) })?;
        Ok(Message(
            NonNull::new(m).ok_or(Error(sys::NNG_ENOMEM as i32))?,
        ))
    }

    /// Calls `f` with the connection id on every added and removed connection, on
    /// an NNG thread. `f` must not close this socket. A panic in `f` is caught and
    /// logged. Replaces an earlier callback.
    pub fn pipe_notify(&self, f: impl Fn(u32, PipeEvent) + Send + Sync + 'static) -> Result<()> {
        *lock(&self.0.notify) = Some(Arc::new(f));
        let arg: *const Mutex<Option<Notify>> = &*self.0.notify;
        for ev in [sys::NNG_PIPE_EV_ADD_POST, sys::NNG_PIPE_EV_REM_POST] {
            // SAFETY: `arg` points into `Inner`, which outlives every callback (see
            // `Inner::notify`); the trampoline only reads through it.
            let rv =
                unsafe { sys::nng_pipe_notify(self.0.id, ev, Some(on_pipe), arg as *mut c_void) };
            Error::check(rv)?;
        }
        Ok(())
    }

    /// Drops the pipe callback (and what it holds): breaks socket → callback →
    /// socket cycles at shutdown. Events after this are ignored.
    pub fn clear_pipe_notify(&self) {
        lock(&self.0.notify).take();
    }
}

unsafe extern "C" fn on_pipe(pipe: sys::nng_pipe, ev: sys::nng_pipe_ev, arg: *mut c_void) {
    // SAFETY: `arg` is the `Inner::notify` box registered in `pipe_notify`; it lives
    // until the socket is closed and NNG runs no more pipe callbacks.
    let slot = unsafe { &*(arg as *const Mutex<Option<Notify>>) };
    let Some(f) = lock(slot).clone() else {
        return;
    };
    let ev = match ev {
        sys::NNG_PIPE_EV_ADD_POST => PipeEvent::Added,
        sys::NNG_PIPE_EV_REM_POST => PipeEvent::Removed,
        _ => return,
    };
    // SAFETY: reads the id out of the handle NNG passed us.
    let id = unsafe { sys::nng_pipe_id(pipe) } as u32;
    // A panic must not unwind into NNG's thread.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(id, ev))).is_err() {
        log::error!("a connection event handler panicked (connection {id}, {ev:?})");
    }
}

/// Closes connection `pipe` (of any socket); an unknown or already closed one is
/// left alone. Safe to call from a pipe callback.
pub fn close_pipe(pipe: u32) {
    let p = sys::nng_pipe {
        _bindgen_opaque_blob: pipe,
    };
    // SAFETY: NNG looks the id up in its pipe table and fails with NNG_ENOENT for an
    // unknown one; a pipe id is plain data.
    let _ = unsafe { sys::nng_pipe_close(p) };
}

/// The id of the dialer that made connection `pipe`; None for a connection a
/// listener accepted, or an unknown one. Safe to call from a pipe callback.
pub fn pipe_dialer(pipe: u32) -> Option<u32> {
    let p = sys::nng_pipe {
        _bindgen_opaque_blob: pipe,
    };
    // SAFETY: NNG looks the id up in its pipe table (an unknown one gives an
    // invalid dialer, id -1); a pipe id is plain data.
    let d = unsafe { sys::nng_pipe_dialer(p) };
    // SAFETY: reads the id out of the handle NNG returned.
    let id = unsafe { sys::nng_dialer_id(d) };
    u32::try_from(id).ok().filter(|&i| i != 0)
}

fn c_url(url: &str) -> Result<CString> {
    CString::new(url).map_err(|_| Error(sys::NNG_EADDRINVAL as i32))
}

/// Locks, taking over a poisoned lock (a panicking holder left consistent data:
/// every critical section here is a plain read or write).
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An owned NNG message: SP header, body, and the connection it came through (or
/// goes to). Freed on drop unless sent.
pub struct Message(NonNull<sys::nng_msg>);

// SAFETY: an NNG message is plain memory owned by whoever holds the pointer; NNG
// does not touch it while we own it.
unsafe impl Send for Message {}

impl Message {
    /// A message with `header` (SP routing bytes) and `body`.
    pub fn new(header: &[u8], body: &[u8]) -> Message {
        init();
        let mut m: *mut sys::nng_msg = std::ptr::null_mut();
        // SAFETY: a valid out-pointer; NNG allocates `body.len()` bytes.
        let rv = unsafe { sys::nng_msg_alloc(&mut m, 0) };
        let m = match NonNull::new(m) {
            Some(m) if rv == 0 => Message(m),
            _ => std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>()),
        };
        m.append_header(header);
        m.append(body);
        m
    }

    /// Appends to the body.
    pub fn append(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // SAFETY: a message we own; `bytes` is valid for its length.
        let rv = unsafe {
            sys::nng_msg_append(
                self.0.as_ptr(),
                bytes.as_ptr().cast::<c_void>(),
                bytes.len(),
            )
        };
        if rv != 0 {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>());
        }
    }

    fn append_header(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // SAFETY: as in `append`.
        let rv = unsafe {
            sys::nng_msg_header_append(
                self.0.as_ptr(),
                bytes.as_ptr().cast::<c_void>(),
                bytes.len(),
            )
        };
        if rv != 0 {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>());
        }
    }

    /// Empties the body (keeps the header).
    pub fn clear_body(&self) {
        // SAFETY: a message we own.
        unsafe { sys::nng_msg_clear(self.0.as_ptr()) }
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        // SAFETY: a message we own; NNG's body pointer is valid for `len` bytes while
        // the message lives and is not changed (we hold `&self`).
        unsafe {
            let n = sys::nng_msg_len(self.0.as_ptr());
            if n == 0 {
                return &[];
            }
            std::slice::from_raw_parts(sys::nng_msg_body(self.0.as_ptr()).cast::<u8>(), n)
        }
    }

    /// The SP header (routing bytes of raw sockets).
    pub fn header(&self) -> &[u8] {
        // SAFETY: as in `body`, for the header.
        unsafe {
            let n = sys::nng_msg_header_len(self.0.as_ptr());
            if n == 0 {
                return &[];
            }
            std::slice::from_raw_parts(sys::nng_msg_header(self.0.as_ptr()).cast::<u8>(), n)
        }
    }

    /// The connection it came through (0 when none).
    pub fn pipe(&self) -> u32 {
        // SAFETY: a message we own; the pipe handle is a plain id.
        unsafe { sys::nng_pipe_id(sys::nng_msg_get_pipe(self.0.as_ptr())) as u32 }
    }

    /// Sends it through connection `pipe` only (raw surveyor: PATCHES.md, change 1;
    /// raw respondent: the header routes it anyway).
    pub fn set_pipe(&self, pipe: u32) {
        let p = sys::nng_pipe {
            _bindgen_opaque_blob: pipe,
        };
        // SAFETY: a message we own.
        unsafe { sys::nng_msg_set_pipe(self.0.as_ptr(), p) }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("header", &self.header())
            .field("body_len", &self.body().len())
            .finish()
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        // SAFETY: we own it and nobody else has it (a sent message is forgotten).
        unsafe { sys::nng_msg_free(self.0.as_ptr()) }
    }
}

/// An NNG aio, with or without a completion callback.
struct Aio(NonNull<sys::nng_aio>);

// SAFETY: an aio may be stopped from any thread (`nng_aio_stop` is thread-safe); the
// operations that start or complete it are only reached through one owner at a time
// (`Inbox::recv(&mut self)`, or the single callback of `Callback`).
unsafe impl Send for Aio {}
// SAFETY: through a shared reference only `stop` is reachable (see `Stopper`).
unsafe impl Sync for Aio {}

impl Aio {
    /// # Safety
    /// `arg` must stay valid for `cb` until the aio is stopped and freed.
    unsafe fn alloc(cb: Option<unsafe extern "C" fn(*mut c_void)>, arg: *mut c_void) -> Aio {
        init();
        let mut a: *mut sys::nng_aio = std::ptr::null_mut();
        // SAFETY: a valid out-pointer; the caller vouches for `arg`.
        let rv = unsafe { sys::nng_aio_alloc(&mut a, cb, arg) };
        match NonNull::new(a) {
            Some(a) if rv == 0 => Aio(a),
            _ => std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>()),
        }
    }

    /// Starts a receive on `socket`.
    fn recv(&self, socket: &Socket) {
        // SAFETY: a live aio; the caller is its one user.
        unsafe { sys::nng_recv_aio(socket.0.id, self.0.as_ptr()) }
    }

    /// The finished operation's result, with its message on success.
    fn take(&self) -> Result<Message> {
        // SAFETY: a live aio whose operation has completed.
        let rv = unsafe { sys::nng_aio_result(self.0.as_ptr()) };
        Error::check(rv)?;
        // SAFETY: as above; a completed receive leaves its message, now ours.
        let m = unsafe { sys::nng_aio_get_msg(self.0.as_ptr()) };
        NonNull::new(m)
            .map(Message)
            .ok_or(Error(sys::NNG_ECLOSED as i32))
    }

    /// Cancels the operation in progress, waits for its callback, and fails every
    /// later one at once.
    fn stop(&self) {
        // SAFETY: a live aio; nng_aio_stop is safe against a concurrent wait.
        unsafe { sys::nng_aio_stop(self.0.as_ptr()) }
    }
}

impl Drop for Aio {
    fn drop(&mut self) {
        // SAFETY: the last owner; nng_aio_free stops the aio first.
        unsafe { sys::nng_aio_free(self.0.as_ptr()) }
    }
}

/// A blocking receive that another thread can stop without a race: the receiving
/// thread owns the `Inbox`, the owner of the handle keeps its [`Stopper`].
///
/// Why not a blocking `recv` plus closing the socket to wake it: a receive that
/// starts while the socket is closing can wait on a queue that is gone. An aio that
/// is stopped first fails every later receive at once, so the owner stops the inbox,
/// joins its thread, and only then closes the socket.
pub struct Inbox {
    aio: Arc<Aio>,
    socket: Socket,
}

/// Stops an [`Inbox`] from another thread.
#[derive(Clone)]
pub struct Stopper(Arc<Aio>);

impl Stopper {
    /// Cancels a receive in progress and makes every later one fail at once.
    pub fn stop(&self) {
        self.0.stop()
    }
}

impl Inbox {
    /// An inbox on `socket`, and what stops it.
    pub fn new(socket: &Socket) -> (Inbox, Stopper) {
        // SAFETY: no callback, so no argument to keep alive.
        let aio = Arc::new(unsafe { Aio::alloc(None, std::ptr::null_mut()) });
        (
            Inbox {
                aio: aio.clone(),
                socket: socket.clone(),
            },
            Stopper(aio),
        )
    }

    /// Waits for the next message; a closed error once stopped or closed.
    pub fn recv(&mut self) -> Result<Message> {
        self.aio.recv(&self.socket);
        // SAFETY: a live aio with an operation started by us, its one user.
        unsafe { sys::nng_aio_wait(self.aio.0.as_ptr()) };
        self.aio.take()
    }
}

/// A receive whose every completion runs `f` on an NNG task thread, then starts
/// the next receive: no thread of ours waits. `f` gets the message or the error
/// (a closed error ends the loop).
pub struct Callback {
    ctx: NonNull<CallbackCtx>,
}

type Handler = Box<dyn Fn(&Socket, Message) + Send + Sync>;

struct CallbackCtx {
    aio: Option<Aio>,
    socket: Socket,
    f: Handler,
}

// SAFETY: the context is only touched by NNG's callback (one at a time: one aio)
// until `stop` returns; after that only by the owner, to free it.
unsafe impl Send for Callback {}
// SAFETY: through `&Callback` only `stop` is reachable, and nng_aio_stop is thread-safe.
unsafe impl Sync for Callback {}

impl Callback {
    /// Starts receiving on `socket`, calling `f` with each message.
    pub fn start(
        socket: &Socket,
        f: impl Fn(&Socket, Message) + Send + Sync + 'static,
    ) -> Callback {
        let ctx = NonNull::from(Box::leak(Box::new(CallbackCtx {
            aio: None,
            socket: socket.clone(),
            f: Box::new(f),
        })));
        // SAFETY: `ctx` is a live box that outlives the aio (freed in Drop after the
        // aio is stopped and freed).
        let aio = unsafe { Aio::alloc(Some(on_callback), ctx.as_ptr().cast::<c_void>()) };
        // SAFETY: no operation has started, so NNG does not read the context yet;
        // we are its only user.
        let c = unsafe { &mut *ctx.as_ptr() };
        c.aio = Some(aio);
        c.aio.as_ref().expect("just set").recv(&c.socket);
        Callback { ctx }
    }

    /// Cancels the pending receive and waits for a callback in progress; no
    /// callback runs after this returns.
    pub fn stop(&self) {
        // SAFETY: the context lives until drop; reading its aio field is a read of a
        // value set before the first operation and never changed after.
        if let Some(a) = unsafe { &(*self.ctx.as_ptr()).aio } {
            a.stop()
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.stop();
        // SAFETY: stopped, so NNG no longer uses the aio or the context; the box
        // came from Box::leak in `start`. The aio is freed with it.
        drop(unsafe { Box::from_raw(self.ctx.as_ptr()) });
    }
}

unsafe extern "C" fn on_callback(arg: *mut c_void) {
    // SAFETY: `arg` is the CallbackCtx given to nng_aio_alloc; it outlives the aio,
    // and callbacks of one aio never overlap.
    let ctx = unsafe { &*(arg as *const CallbackCtx) };
    let Some(aio) = &ctx.aio else { return };
    let msg = match aio.take() {
        Ok(m) => m,
        Err(e) if e.is_closed() => return,
        Err(e) => {
            log::warn!("receive failed: {e}");
            aio.recv(&ctx.socket);
            return;
        }
    };
    // A panic must not unwind into NNG's thread.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (ctx.f)(&ctx.socket, msg))).is_err()
    {
        log::error!("a receive handler panicked; waiting for the next message");
    }
    aio.recv(&ctx.socket);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn req_rep_round_trip_with_bound_port_and_pipe_events() {
        let rep = Socket::open(Protocol::Rep0, false).unwrap();
        let port = rep
            .listen("tcp://127.0.0.1:0")
            .unwrap()
            .expect("a tcp port");
        assert_ne!(port, 0);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let req = Socket::open(Protocol::Req0, false).unwrap();
        req.pipe_notify(move |_, ev| {
            lock(&s).push(ev);
            panic!("a panicking handler must not take the process down");
        })
        .unwrap();
        req.set_recv_timeout(Some(Duration::from_secs(10))).unwrap();
        rep.set_recv_timeout(Some(Duration::from_secs(10))).unwrap();
        req.dial(&format!("tcp://127.0.0.1:{port}")).unwrap();
        req.send(Message::new(&[], b"ping"))
            .map_err(|e| e.1)
            .unwrap();
        let m = rep.recv().unwrap();
        assert_eq!(m.body(), b"ping");
        rep.send(Message::new(&[], b"pong"))
            .map_err(|e| e.1)
            .unwrap();
        assert_eq!(req.recv().unwrap().body(), b"pong");
        // NNG runs the pipe callback on its own thread: it may trail the reply.
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while lock(&seen).is_empty() && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(lock(&seen).first(), Some(&PipeEvent::Added));
        req.close();
        req.close(); // once only
        assert!(req.recv().unwrap_err().is_closed());
    }

    #[test]
    fn a_stopped_inbox_fails_at_once_and_errors_have_text() {
        let sub = Socket::open(Protocol::Sub0, false).unwrap();
        sub.subscribe_all().unwrap();
        let (mut inbox, stop) = Inbox::new(&sub);
        let t = std::thread::spawn(move || inbox.recv().map(|_| ()));
        stop.stop();
        assert!(t.join().unwrap().unwrap_err().is_closed());
        let e = Socket::open(Protocol::Pub0, false)
            .unwrap()
            .listen("nope://x")
            .unwrap_err();
        assert!(e.is_bad_url(), "{e:?}");
        assert!(!e.to_string().is_empty());
        assert_eq!(version(), "1.11.0");
    }

    #[test]
    fn nng_runs_one_task_thread_per_cpu_and_at_least_two() {
        let _s = Socket::open(Protocol::Pub0, false).unwrap();
        let tasks = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "nng:task")
            .count();
        assert_eq!(tasks as u64, task_threads());
        assert!(tasks >= 2);
    }
}
