//! A downstream project's check that gopherdiscovery leaks no connection.
//!
//! This crate depends on gopherdiscovery by path and has no `[patch]` section, so it
//! builds against exactly the NNG that gopherdiscovery's `[dependencies]` name. The
//! root Cargo.toml's `[patch.crates-io] nng-sys = { path = "vendor/nng-sys" }` does
//! not apply here (a `[patch]` only applies inside its own workspace): while the
//! fixed NNG is only a patch, a project like this one gets the crates.io nng-sys
//! (NNG 1.4.0 without vendor/nng-sys/PATCHES.md's fixes), and clients closed
//! while their connections are being made leave sockets open.
//!
//! What it does, in one process: starts a live server on loopback (port 0), lets one
//! client join and leave (so NNG's threads exist and the survey socket is known to
//! accept), counts this process's socket descriptors, starts 900 clients at once
//! against the survey URL and drops them all right away, then polls (deadline 30 s)
//! until the count of socket descriptors is back where it was. Prints
//! `ok - ...` and exits 0, or `FAIL: N socket descriptors left ...` and exits 1.
//!
//! Run it with `bash tests/downstream/run.sh` from the repository root.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use gopherdiscovery::{Client, Server};

const CLIENTS: usize = 900;
const DEADLINE: Duration = Duration::from_secs(30);

/// Socket descriptors of this process: entries of /proc/self/fd whose link
/// target is `socket:[inode]` (NNG's epoll and eventfd descriptors are not).
fn sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|t| t.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Polls `cond` every 10 ms until it holds (true) or `deadline` passes (false).
fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn main() -> ExitCode {
    // 900 clients and the server's side of their connections: well over the
    // usual soft limit of 1,024 descriptors.
    match gopherdiscovery::raise_fd_limit() {
        Ok(n) if n < (3 * CLIENTS) as u64 => {
            eprintln!("FAIL: the open-file limit is {n}; {CLIENTS} clients need more");
            return ExitCode::FAILURE;
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("FAIL: could not raise the open-file limit: {e}");
            return ExitCode::FAILURE;
        }
    }
    let server = match Server::builder()
        .survey("tcp://127.0.0.1:0")
        .publish("tcp://127.0.0.1:0")
        .snapshot("tcp://127.0.0.1:0")
        .start()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("FAIL: the server did not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = server.urls().survey.clone();
    // The server's own listening sockets (3), and nothing else.
    let baseline = sockets();

    // The survey socket listens once start() returns; a member that joins and
    // leaves proves it accepts, and creates NNG's own threads first.
    let warm_up = Client::builder("warm-up").survey(&url).start().unwrap();
    if !wait_until(DEADLINE, || server.members().len() == 1) {
        eprintln!("FAIL: a first client never joined the server at {url}");
        return ExitCode::FAILURE;
    }
    drop(warm_up);
    if !wait_until(DEADLINE, || server.members().is_empty()) {
        eprintln!("FAIL: a first client never left the server at {url}");
        return ExitCode::FAILURE;
    }

    let started = Instant::now();
    // One burst: each client is dropped right after its own start, at different
    // moments of its connection's start (dialling, handshaking, being handed to
    // its socket) by a short and varying spin, as tests/leaks.rs does. The server
    // accepts and handshakes the burst meanwhile.
    for i in 0..CLIENTS {
        let client = Client::builder(format!("http://10.0.0.1:{}", 10_000 + i))
            .survey(&url)
            .start()
            .expect("start a client");
        for _ in 0..(i % 4) * 50 {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        drop(client);
    }
    let dropped = started.elapsed();

    // The server closes its side as it sees each close; every dialling side is
    // closed by the drop. Wait for both, with a deadline.
    let mut left = 0;
    let waited = Instant::now();
    let clean = wait_until(DEADLINE, || {
        left = sockets().saturating_sub(baseline);
        left == 0
    });
    eprintln!(
        "{baseline} sockets before; {CLIENTS} clients started and dropped in {} ms; \
         waited {} ms for their sockets to close",
        dropped.as_millis(),
        waited.elapsed().as_millis()
    );
    drop(server);
    if clean {
        println!("ok - {CLIENTS} clients started and dropped: 0 sockets left");
        ExitCode::SUCCESS
    } else {
        println!(
            "FAIL: {left} socket descriptors left after {CLIENTS} clients were dropped \
             (after {} s)",
            DEADLINE.as_secs()
        );
        ExitCode::FAILURE
    }
}
