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
