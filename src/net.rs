//! Thin helpers over NNG shared by the server, client and subscriber.
//!
//! Contract: nothing here blocks longer than the timeouts its caller sets, and every
//! NNG error is turned into a crate [`Error`] that names the URL involved.

use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::nng::{self, Inbox, Protocol, Socket, Stopper};

/// Default survey URL (`serve --survey`, `join --survey`).
pub const DEFAULT_SURVEY_URL: &str = "tcp://127.0.0.1:40007";
/// Default publish URL (`serve --publish`, `watch --publish`).
pub const DEFAULT_PUBLISH_URL: &str = "tcp://127.0.0.1:50007";
/// Default snapshot URL (`serve --snapshot`, `watch --snapshot`, `members --snapshot`).
pub const DEFAULT_SNAPSHOT_URL: &str = "tcp://127.0.0.1:50008";

/// Opens a socket, in raw mode when `raw`.
pub(crate) fn open(proto: Protocol, raw: bool) -> Result<Socket> {
    Socket::open(proto, raw).map_err(|e| Error::nng("opening a socket", e))
}

/// Listens on `url` and returns the URL as bound (a tcp port 0 is replaced by the
/// port the kernel chose), so callers can hand it to peers.
pub(crate) fn listen(socket: &Socket, url: &str) -> Result<String> {
    check_url(url)?;
    let port = socket
        .listen(url)
        .map_err(|e| Error::from_nng_url(url, e))?;
    match (url.strip_suffix(":0"), port) {
        (Some(host), Some(port)) if url.starts_with("tcp") => Ok(format!("{host}:{port}")),
        _ => Ok(url.to_owned()),
    }
}

/// Dials `url` without waiting: the dialer keeps retrying in the background
/// (reconnect backoff from 100 ms doubling to `max_backoff`) while the peer is down.
pub(crate) fn dial(socket: &Socket, url: &str) -> Result<()> {
    check_url(url)?;
    socket.dial(url).map_err(|e| Error::from_nng_url(url, e))
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
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("expected scheme://address, e.g. tcp://127.0.0.1:40007 or ipc:///tmp/gd.sock");
    };
    let needs_port = matches!(
        scheme,
        "tcp" | "tcp4" | "tcp6" | "tls+tcp" | "tls+tcp4" | "tls+tcp6" | "ws" | "wss"
    );
    if needs_port && !has_port(rest) {
        // NNG would listen on a random port nobody is told about.
        return bad(
            "no port: expected HOST:PORT, e.g. tcp://127.0.0.1:40007 (port 0 picks a free one)",
        );
    }
    Ok(())
}

/// True when `host:port[/path]` ends its host part with `:digits` (IPv6 in brackets).
fn has_port(addr: &str) -> bool {
    let host_port = addr.split('/').next().unwrap_or("");
    let after_host = match host_port.rfind(']') {
        Some(i) => &host_port[i + 1..],
        None => host_port,
    };
    match after_host.rsplit_once(':') {
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Sets the reconnect backoff of dialers made on this socket afterwards.
pub(crate) fn set_reconnect(socket: &Socket, max: Duration) -> Result<()> {
    socket
        .set_reconnect(Duration::from_millis(100).min(max), max)
        .map_err(|e| Error::nng("setting reconnect times", e))
}

pub(crate) fn set_recv_max(socket: &Socket, bytes: usize) -> Result<()> {
    socket
        .set_recv_max(bytes)
        .map_err(|e| Error::nng("setting the receive limit", e))
}

pub(crate) fn set_buffers(socket: &Socket, recv: Option<i32>, send: Option<i32>) -> Result<()> {
    if let Some(n) = recv {
        socket
            .set_recv_buffer(n)
            .map_err(|e| Error::nng("setting the receive buffer", e))?;
    }
    if let Some(n) = send {
        socket
            .set_send_buffer(n)
            .map_err(|e| Error::nng("setting the send buffer", e))?;
    }
    Ok(())
}

/// Raises the soft open-file limit to the hard limit: a server holds one
/// descriptor per member. Returns the new soft limit.
// rlim_t is u64 on most targets but not all (32-bit ones): keep the conversion.
#[allow(clippy::useless_conversion)]
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if rl.rlim_cur < rl.rlim_max {
        let want = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(u64::from(rl.rlim_max));
    }
    Ok(u64::from(rl.rlim_cur))
}

/// False when the process is at its open-file limit: NNG's listeners then fail
/// every accept (EMFILE) and back off, silently. Costs one `fcntl` and one `close`.
pub(crate) fn descriptor_free() -> bool {
    // SAFETY: duplicates stderr (or fails); the copy is closed at once.
    let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error() != Some(libc::EMFILE);
    }
    // SAFETY: a descriptor we just made and nobody else knows.
    unsafe { libc::close(fd) };
    true
}

/// A warning at most once per `gap`: repeated causes (a flood) log one line, with
/// how many were kept quiet.
pub(crate) struct Every {
    gap: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Every {
    pub(crate) fn new(gap: Duration) -> Every {
        Every {
            gap,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(quieted)` when a line is due now (with the number of calls kept quiet
    /// since the last one), `None` otherwise.
    pub(crate) fn due(&self) -> Option<u64> {
        let now = Instant::now();
        let mut s = nng::lock(&self.state);
        match s.0 {
            Some(t) if now.saturating_duration_since(t) < self.gap => {
                s.1 += 1;
                None
            }
            _ => {
                s.0 = Some(now);
                Some(std::mem::take(&mut s.1))
            }
        }
    }
}

/// Who stops what at shutdown: the one teardown path of the server, the client
/// and the subscriber, used on close, on drop and on a failed start.
///
/// Order (NNG's rule for aios, then ours for callbacks): signal the threads to
/// stop → stop every aio (pending receives fail at once) → join the threads (not
/// the calling one, when a handle is closed from its own callback thread) → close
/// the sockets → drop the pipe callbacks (breaking socket → callback → owner cycles).
/// Built step by step during start, so an early `?` tears down exactly what exists.
#[derive(Default)]
pub(crate) struct Workers {
    signal: Vec<Box<dyn Fn() + Send + Sync>>,
    stoppers: Vec<Stopper>,
    callbacks: Vec<nng::Callback>,
    threads: Vec<JoinHandle<()>>,
    sockets: Vec<Socket>,
    done: bool,
}

impl Workers {
    /// Runs `f` first at shutdown (e.g. tell a loop to stop).
    pub(crate) fn on_stop(&mut self, f: impl Fn() + Send + Sync + 'static) {
        self.signal.push(Box::new(f));
    }

    /// A socket to close at shutdown, after the threads ended.
    pub(crate) fn socket(&mut self, s: &Socket) {
        self.sockets.push(s.clone());
    }

    /// An inbox on `socket`; its receive fails at once from shutdown on.
    pub(crate) fn inbox(&mut self, socket: &Socket) -> Inbox {
        let (inbox, stop) = Inbox::new(socket);
        self.stoppers.push(stop);
        inbox
    }

    /// A receive answered in NNG's completion callback; stopped at shutdown.
    pub(crate) fn callback(&mut self, cb: nng::Callback) {
        self.callbacks.push(cb);
    }

    /// Starts a thread named `name`, joined at shutdown.
    pub(crate) fn spawn(
        &mut self,
        name: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<std::thread::ThreadId> {
        let t = std::thread::Builder::new().name(name.into()).spawn(f)?;
        let id = t.thread().id();
        self.threads.push(t);
        Ok(id)
    }

    /// Stops everything, in the order above. Idempotent; from one of its own
    /// threads it does not wait for that thread (which ends on its own).
    pub(crate) fn shutdown(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.signal.iter().for_each(|f| f());
        self.stoppers.iter().for_each(Stopper::stop);
        self.callbacks.iter().for_each(nng::Callback::stop);
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
        self.sockets.iter().for_each(Socket::close);
        self.sockets.iter().for_each(Socket::clear_pipe_notify);
        self.callbacks.clear();
        self.signal.clear();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_a_port_are_refused() {
        for ok in [
            "tcp://127.0.0.1:0",
            "tcp://[::1]:40007",
            "ws://h:80/path",
            "ipc:///tmp/x",
            "inproc://a",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "tcp://127.0.0.1",
            "tcp://127.0.0.1:",
            "tcp://[::1]",
            "tcp://h:x",
            "ws://h/p",
        ] {
            let e = check_url(bad).unwrap_err().to_string();
            assert!(e.contains("no port"), "{bad}: {e}");
        }
    }
}
