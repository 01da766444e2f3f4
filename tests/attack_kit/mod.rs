//! Attacks on a server, from outside, on loopback: raw TCP and raw NNG sockets
//! doing what a hostile peer can. Shared by `tests/attacks.rs` (which asserts the
//! server's promises) and `examples/rust/attack.rs` (by hand, and the table in
//! docs/BENCHMARKS.md). Every attack is bounded in count and time and stops by
//! itself; sockets close when the attack returns.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopherdiscovery::nng::{Message, Protocol, Socket};
use gopherdiscovery::wire;
use gopherdiscovery::Member;

/// SP protocol numbers of the peers we pretend to be.
pub const RESPONDENT: u16 = 99;
pub const SUB: u16 = 33;
pub const REQ: u16 = 48;

/// `tcp://host:port` → `host:port`.
pub fn addr(url: &str) -> &str {
    url.strip_prefix("tcp://").expect("a tcp:// URL")
}

/// A TCP connection that completed the SP handshake as protocol `peer`.
pub fn sp_connect(url: &str, peer: u16) -> std::io::Result<TcpStream> {
    let mut t = TcpStream::connect(addr(url))?;
    t.set_read_timeout(Some(Duration::from_secs(10)))?;
    t.set_write_timeout(Some(Duration::from_secs(10)))?;
    let p = peer.to_be_bytes();
    t.write_all(&[0, b'S', b'P', 0, p[0], p[1], 0, 0])?;
    let mut theirs = [0u8; 8];
    t.read_exact(&mut theirs)?;
    Ok(t)
}

/// One connection as `peer` sends a frame header claiming `claim` bytes, then up
/// to `send` bytes of it. Returns how many bytes the server took before closing
/// the connection (all of `send` when it never did).
pub fn frame_bomb(url: &str, peer: u16, claim: u64, send: usize) -> usize {
    let Ok(mut t) = sp_connect(url, peer) else {
        return 0;
    };
    if t.write_all(&claim.to_be_bytes()).is_err() {
        return 0;
    }
    let chunk = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < send {
        match t.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    sent
}

/// True when the server closed `t` (a read sees EOF or a reset) within 60 s.
pub fn closed_by_server(t: &mut TcpStream) -> bool {
    let _ = t.set_read_timeout(Some(Duration::from_secs(60)));
    let mut b = [0u8; 4096];
    loop {
        match t.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // surveys: keep reading
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// A raw respondent dialled to `url`, with its connection's id (a raw respondent
/// routes what it sends by the pipe id at the start of the header).
pub struct Respondent {
    pub socket: Socket,
    pipe: Arc<AtomicU32>,
}

impl Respondent {
    /// Waits (up to 60 s) for the connection; `None` if it never came.
    pub fn pipe(&self) -> Option<u32> {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            match self.pipe.load(Ordering::Acquire) {
                0 if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
                0 => return None,
                p => return Some(p),
            }
        }
    }

    /// Sends `body` under SP header `id`; false when it could not go.
    pub fn send(&self, id: [u8; 4], body: &[u8]) -> bool {
        let Some(pipe) = self.pipe() else {
            return false;
        };
        let mut header = pipe.to_be_bytes().to_vec();
        header.extend_from_slice(&id);
        self.socket.send(Message::new(&header, body)).is_ok()
    }

    /// Receives a survey (waits up to the receive timeout).
    pub fn recv(&self) -> bool {
        self.socket.recv().is_ok()
    }
}

/// A raw respondent dialled to `url`.
pub fn respondent(url: &str) -> Respondent {
    let s = Socket::open(Protocol::Respondent0, true).unwrap();
    s.set_send_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.set_recv_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let pipe = Arc::new(AtomicU32::new(0));
    let p = pipe.clone();
    s.pipe_notify(move |id, ev| {
        if ev == gopherdiscovery::nng::PipeEvent::Added {
            p.store(id, Ordering::Release);
        }
    })
    .unwrap();
    s.dial(url).unwrap();
    Respondent { socket: s, pipe }
}

/// Sends a native answer of `m` unasked (the announce header).
pub fn announce(s: &Respondent, m: &Member) -> bool {
    s.send(
        wire::ANNOUNCE_ID.to_be_bytes(),
        &wire::encode_answer(m, 0, 0),
    )
}

/// `conns` connections each announce distinct names (with `meta` bytes of
/// metadata) as fast as the server takes them, until `total` answers are sent or
/// `dur` passes. Returns the answers sent.
pub fn answer_flood(url: &str, conns: usize, total: usize, meta: usize, dur: Duration) -> usize {
    let end = Instant::now() + dur;
    let per = total / conns.max(1);
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let url = url.to_string();
            std::thread::spawn(move || {
                let s = respondent(&url);
                let mut sent = 0;
                let mut i = 0;
                while sent < per && Instant::now() < end {
                    let mut m = Member::new(format!("flood-{c}-{i}"), 1);
                    if meta > 0 {
                        m.metadata.insert("pad".into(), "x".repeat(meta));
                    }
                    i += 1;
                    if announce(&s, &m) {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap_or(0)).sum()
}

/// `n` TCP connections that complete the SP handshake as respondents and then
/// say nothing. Dropped, they close.
pub fn idle_connections(url: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| sp_connect(url, RESPONDENT).ok())
        .collect()
}

/// `conns` raw req sockets send snapshot requests (each with its own request id)
/// as fast as they go, for `dur` or `total` requests; replies are read and
/// discarded. Returns the requests sent.
pub fn snapshot_hammer(url: &str, conns: usize, total: usize, dur: Duration) -> usize {
    let end = Instant::now() + dur;
    let per = total / conns.max(1);
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let url = url.to_string();
            std::thread::spawn(move || {
                let s = Socket::open(Protocol::Req0, true).unwrap();
                s.set_send_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                s.set_recv_timeout(Some(Duration::from_millis(1))).unwrap();
                s.set_recv_max(1 << 30).unwrap();
                s.dial(&url).unwrap();
                let mut sent = 0u32;
                while (sent as usize) < per && Instant::now() < end {
                    let id = 0x8000_0000u32 | sent;
                    let m = Message::new(&id.to_be_bytes(), &wire::encode_snapshot_request(1));
                    if s.send(m).is_ok() {
                        sent += 1;
                    }
                    while s.recv().is_ok() {}
                }
                sent as usize
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap_or(0)).sum()
}

/// The server process's peak and current resident memory, in KiB (VmHWM, VmRSS).
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time the process used so far (user + system), from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that ends the command name; utime and stime are 14 and 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 1000 / hz)
}
