//! Thin helpers over NNG shared by the server, client and subscriber.
//!
//! Contract: nothing here blocks longer than the timeouts its caller sets, and every
//! NNG error is turned into a crate [`Error`] that names the URL involved.

use std::time::Duration;

use nng::options::{Options, ReconnectMaxTime, ReconnectMinTime, RecvMaxSize, RecvTimeout};

use crate::error::{Error, Result};

/// Default survey URL (`serve --survey`, `join --survey`).
pub const DEFAULT_SURVEY_URL: &str = "tcp://127.0.0.1:40007";
/// Default publish URL (`serve --publish`, `watch --publish`).
pub const DEFAULT_PUBLISH_URL: &str = "tcp://127.0.0.1:50007";
/// Default snapshot URL (`serve --snapshot`, `watch --snapshot`, `members --snapshot`).
pub const DEFAULT_SNAPSHOT_URL: &str = "tcp://127.0.0.1:50008";

/// NNG's numeric id of a pipe (connection).
pub(crate) fn pipe_id(p: nng::Pipe) -> u32 {
    // SAFETY: nng_pipe_id only reads the handle; an invalid handle yields -1.
    unsafe { nng_sys::nng_pipe_id(p.nng_pipe()) as u32 }
}

/// Opens a socket, in raw mode when `raw`.
pub(crate) fn open(proto: nng::Protocol, raw: bool) -> Result<nng::Socket> {
    let s = if raw {
        nng::RawSocket::new(proto).map(|r| r.socket)
    } else {
        nng::Socket::new(proto)
    };
    s.map_err(|e| Error::nng("opening a socket", e))
}

/// Listens on `url` and returns the URL as bound (a tcp port 0 is replaced by the
/// port the kernel chose), so callers can hand it to peers.
pub(crate) fn listen(socket: &nng::Socket, url: &str) -> Result<String> {
    check_url(url)?;
    let l = nng::Listener::new(socket, url).map_err(|e| Error::from_nng_url(url, e))?;
    Ok(bound_url(url, &l))
}

fn bound_url(url: &str, l: &nng::Listener) -> String {
    let Some(host) = url.strip_suffix(":0").filter(|_| url.starts_with("tcp")) else {
        return url.to_owned();
    };
    // Asked directly: nng 1.0.1's LocalAddr reports the port byte-swapped.
    let mut port: std::os::raw::c_int = 0;
    // SAFETY: a live listener handle, a NUL-terminated option name, a valid out-pointer.
    let rv = unsafe {
        nng_sys::nng_listener_get_int(
            l.nng_listener(),
            nng_sys::NNG_OPT_TCP_BOUND_PORT.as_ptr() as *const _,
            &mut port,
        )
    };
    if rv == 0 && port > 0 {
        format!("{host}:{port}")
    } else {
        url.to_owned()
    }
}

/// Dials `url` without waiting: the dialer keeps retrying in the background
/// (reconnect backoff from 100 ms doubling to `max_backoff`) while the peer is down.
pub(crate) fn dial(socket: &nng::Socket, url: &str) -> Result<()> {
    check_url(url)?;
    nng::Dialer::new(socket, url, true)
        .map(|_| ())
        .map_err(|e| Error::from_nng_url(url, e))
}

/// Refuses what NNG would accept silently but can never work for us.
fn check_url(url: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.into(),
        })
    };
    if url.is_empty() {
        return bad("empty URL");
    }
    if url.contains('\0') {
        return bad("contains a NUL byte");
    }
    if !url.contains("://") {
        return bad("expected scheme://address, e.g. tcp://127.0.0.1:40007 or ipc:///tmp/gd.sock");
    }
    Ok(())
}

/// Sets the reconnect backoff of dialers made on this socket afterwards.
pub(crate) fn set_reconnect(socket: &nng::Socket, max: Duration) -> Result<()> {
    socket
        .set_opt::<ReconnectMinTime>(Some(Duration::from_millis(100).min(max)))
        .and_then(|_| socket.set_opt::<ReconnectMaxTime>(Some(max)))
        .map_err(|e| Error::nng("setting reconnect times", e))
}

pub(crate) fn set_recv_max(socket: &nng::Socket, bytes: usize) -> Result<()> {
    socket
        .set_opt::<RecvMaxSize>(bytes)
        .map_err(|e| Error::nng("setting the receive limit", e))
}

pub(crate) fn set_recv_timeout(socket: &nng::Socket, t: Option<Duration>) -> Result<()> {
    socket
        .set_opt::<RecvTimeout>(t)
        .map_err(|e| Error::nng("setting the receive timeout", e))
}

pub(crate) fn set_buffers(
    socket: &nng::Socket,
    recv: Option<i32>,
    send: Option<i32>,
) -> Result<()> {
    use nng::options::{RecvBufferSize, SendBufferSize};
    if let Some(n) = recv {
        socket
            .set_opt::<RecvBufferSize>(n)
            .map_err(|e| Error::nng("setting the receive buffer", e))?;
    }
    if let Some(n) = send {
        socket
            .set_opt::<SendBufferSize>(n)
            .map_err(|e| Error::nng("setting the send buffer", e))?;
    }
    Ok(())
}

/// Raises the soft open-file limit to the hard limit: a server holds one
/// descriptor per member. Returns the new soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            return Ok(rl.rlim_max as u64);
        }
        Ok(rl.rlim_cur as u64)
    }
}

/// One message as received: its body and the connection it came through.
pub(crate) struct Received {
    pub body: Vec<u8>,
    pub pipe: u32,
}

/// A blocking receive that another thread can stop without a race.
///
/// Why not `Socket::recv` plus closing the socket to wake it: in NNG 1.4 a receive
/// that starts while the socket is closing can wait forever (the closed queue takes
/// it), and one with a timeout can touch freed memory when the timeout expires during
/// the close. An aio that is stopped first (`nng_aio_stop`) fails every later receive
/// at once, so the owner stops the inbox, joins its thread, and only then closes.
pub(crate) struct Inbox {
    aio: std::ptr::NonNull<nng_sys::nng_aio>,
    socket: nng_sys::nng_socket,
}

// SAFETY: NNG aios may be waited on by one thread and stopped from another; `recv`
// is only ever called by the one thread that owns the receive loop.
unsafe impl Send for Inbox {}
unsafe impl Sync for Inbox {}

impl Inbox {
    pub(crate) fn new(socket: &nng::Socket) -> Result<std::sync::Arc<Inbox>> {
        let mut aio: *mut nng_sys::nng_aio = std::ptr::null_mut();
        // SAFETY: a valid out-pointer; no callback.
        let rv = unsafe { nng_sys::nng_aio_alloc(&mut aio, None, std::ptr::null_mut()) };
        match std::ptr::NonNull::new(aio) {
            Some(aio) if rv == 0 => Ok(std::sync::Arc::new(Inbox {
                aio,
                socket: socket.nng_socket(),
            })),
            _ => Err(Error::Io(std::io::Error::from(
                std::io::ErrorKind::OutOfMemory,
            ))),
        }
    }

    /// Waits for the next message; `Err(Closed)` once stopped or closed.
    pub(crate) fn recv(&self) -> std::result::Result<Received, nng::Error> {
        let aio = self.aio.as_ptr();
        // SAFETY: the aio is alive (we hold &self) and only this thread starts
        // operations on it; the message is owned by us once taken from the aio.
        unsafe {
            nng_sys::nng_recv_aio(self.socket, aio);
            nng_sys::nng_aio_wait(aio);
            let rv = nng_sys::nng_aio_result(aio);
            if rv != 0 {
                return Err(match rv as u32 {
                    nng_sys::NNG_ECANCELED | nng_sys::NNG_ECLOSED => nng::Error::Closed,
                    code => nng::Error::from(std::num::NonZeroU32::new(code).expect("non-zero")),
                });
            }
            let msg = nng_sys::nng_aio_get_msg(aio);
            let copy = |p: *mut std::ffi::c_void, n: usize| {
                if n == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(p as *const u8, n).to_vec()
                }
            };
            let r = Received {
                body: copy(nng_sys::nng_msg_body(msg), nng_sys::nng_msg_len(msg)),
                pipe: nng_sys::nng_pipe_id(nng_sys::nng_msg_get_pipe(msg)) as u32,
            };
            nng_sys::nng_msg_free(msg);
            Ok(r)
        }
    }

    /// Cancels a receive in progress and makes every later one fail at once.
    pub(crate) fn stop(&self) {
        // SAFETY: the aio is alive; nng_aio_stop is safe against a concurrent wait.
        unsafe { nng_sys::nng_aio_stop(self.aio.as_ptr()) }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // SAFETY: last owner; no operation can be in flight (the thread that used it
        // has ended or holds no reference).
        unsafe { nng_sys::nng_aio_free(self.aio.as_ptr()) }
    }
}

/// Builds a message from an SP header and a body.
pub(crate) fn message(header: &[u8], body: &[u8]) -> nng::Message {
    let mut m = nng::Message::with_capacity(body.len());
    if !header.is_empty() {
        m.as_mut_header().push_back(header);
    }
    m.push_back(body);
    m
}
