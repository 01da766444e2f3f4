//! The hidden modes the bench re-executes itself in: a server process (measured
//! alone: its CPU, RSS and sockets are its own), member host processes (1 to 1,000
//! real clients each), a churn process and a CPU burner. Each reads commands on
//! stdin, answers on stdout, and exits when stdin closes (the bench is gone).

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use gopherdiscovery::{Client, Server};

use crate::util::now_ns;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| fail(&format!("child: bad or missing argument {what}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1)
}

fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

/// Member names look like real service addresses; the port makes them unique.
pub fn member_name(port: u32) -> String {
    format!("http://127.0.0.1:{port}")
}

/// `survey` may list several servers' survey URLs, comma-separated: the client
/// answers every one of them.
fn client(survey: &str, name: String) -> Client {
    survey
        .split(',')
        .fold(Client::builder(name), |b, url| b.survey(url))
        .meta("zone", "a")
        .authentication(crate::util::bench_auth())
        .start()
        .unwrap_or_else(|e| fail(&format!("child: client start failed: {e}")))
}

/// Blocks until stdin closes.
fn wait_stdin_closed() {
    let mut line = String::new();
    let stdin = std::io::stdin();
    while stdin.lock().read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
}

/// `--child-server INTERVAL_MS DEADLINE_MS EVICT_AFTER`: prints
/// `urls SURVEY PUBLISH SNAPSHOT`, then answers `pos` with `pos SEQ COUNT DIGEST`.
pub fn server(args: &[String]) -> ! {
    let _ = gopherdiscovery::raise_fd_limit();
    let interval: u64 = arg(args, 0, "interval");
    let deadline: u64 = arg(args, 1, "deadline");
    let evict: u32 = arg(args, 2, "evict_after");
    let server = Server::builder()
        .survey("tcp://127.0.0.1:0")
        .publish("tcp://127.0.0.1:0")
        .snapshot("tcp://127.0.0.1:0")
        .interval(Duration::from_millis(interval))
        .deadline(Duration::from_millis(deadline))
        .evict_after(evict)
        .authentication(crate::util::bench_auth())
        .start()
        .unwrap_or_else(|e| fail(&format!("child: server start failed: {e}")));
    let u = server.urls().clone();
    out(&format!("urls {} {} {}", u.survey, u.publish, u.snapshot));
    let stdin = std::io::stdin();
    let mut line = String::new();
    while stdin.lock().read_line(&mut line).is_ok_and(|n| n > 0) {
        match line.trim() {
            "pos" => {
                let (seq, count, digest) = server.position();
                out(&format!("pos {seq} {count} {digest}"));
            }
            "stats" => {
                let s = server.stats();
                out(&format!(
                    "stats {} {} {} {} {} {} {}",
                    s.answers,
                    s.surveys,
                    s.deltas,
                    s.heartbeats,
                    s.snapshots,
                    s.dropped_malformed + s.dropped_oversize + s.dropped_full,
                    s.legacy_answers
                ));
            }
            _ => out("error unknown command"),
        }
        line.clear();
    }
    std::process::exit(0)
}

/// Clients a member host starts at once.
const HOST_BATCH: u32 = 50;

/// `--child-host SURVEY[,SURVEY..] FIRST_PORT COUNT`: starts COUNT clients named after ports
/// FIRST_PORT.., prints `up T_BEFORE_FIRST_START T_ALL_CONNECTED` (monotonic ns).
pub fn host(args: &[String]) -> ! {
    let _ = gopherdiscovery::raise_fd_limit();
    let survey: String = arg(args, 0, "survey");
    let first: u32 = arg(args, 1, "first_port");
    let count: u32 = arg(args, 2, "count");
    let t0 = now_ns();
    // In batches, each connected before the next starts: NNG listens with a
    // backlog of 128 and accepts one connection at a time, so 10,000 dialers at once
    // overflow the accept queue and retry for minutes (see docs/BENCHMARKS.md).
    // When a batch does not connect within 5 s, the rest start without waiting.
    let mut clients: Vec<Client> = Vec::with_capacity(count as usize);
    let (mut i, mut pacing) = (0, true);
    while i < count {
        let k = (count - i).min(HOST_BATCH);
        let batch: Vec<Client> = (i..i + k)
            .map(|j| client(&survey, member_name(first + j)))
            .collect();
        let give_up = now_ns() + 5_000_000_000;
        while pacing && batch.iter().any(|c| c.connections() == 0) {
            if now_ns() > give_up {
                pacing = false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        clients.extend(batch);
        i += k;
    }
    let t1 = now_ns();
    out(&format!("up {t0} {t1}"));
    wait_stdin_closed();
    // The kernel closes every socket at exit; no need to close 1,000 clients one by one.
    std::mem::forget(clients);
    std::process::exit(0)
}

/// `--child-churn SURVEY PREFIX ACTIVE WORKERS`: keeps ACTIVE clients per worker;
/// on `run RATE SECONDS GRACE_MS` each worker closes its oldest client and starts a new one
/// (one leave + one join) at RATE/WORKERS events per second; prints
/// `done EVENTS ELAPSED_NS MAX_BEHIND_NS HUNG_CLOSES`.
pub fn churn(args: &[String]) -> ! {
    let _ = gopherdiscovery::raise_fd_limit();
    let survey: String = arg(args, 0, "survey");
    let prefix: String = arg(args, 1, "prefix");
    let active: usize = arg(args, 2, "active");
    let workers: usize = arg(args, 3, "workers");
    let mut gen = 0u64;
    let mut name = |w: usize| {
        gen += 1;
        format!("{prefix}-{w}-{gen}")
    };
    let mut pools: Vec<VecDeque<Client>> = (0..workers)
        .map(|w| (0..active).map(|_| client(&survey, name(w))).collect())
        .collect();
    out("ready");
    let stdin = std::io::stdin();
    let mut line = String::new();
    while stdin.lock().read_line(&mut line).is_ok_and(|n| n > 0) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"run") || words.len() != 4 {
            out("error expected: run RATE SECONDS GRACE_MS");
            line.clear();
            continue;
        }
        let rate: f64 = words[1].parse().unwrap_or(0.0);
        let secs: f64 = words[2].parse().unwrap_or(0.0);
        let grace: u64 = words[3].parse().unwrap_or(1000);
        let per_worker = rate / workers as f64 / 2.0; // pairs per second
        let names: Vec<Vec<String>> = (0..workers)
            .map(|w| {
                let n = (per_worker * secs).ceil() as usize + 1;
                (0..n).map(|_| name(w)).collect()
            })
            .collect();
        let t0 = now_ns();
        let results: Vec<(u64, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = pools
                .iter_mut()
                .zip(names)
                .map(|(pool, names)| {
                    let survey = survey.as_str();
                    s.spawn(move || {
                        let mut events = 0u64;
                        let mut behind = 0u64;
                        let step = (1e9 / per_worker) as u64;
                        let end = t0 + (secs * 1e9) as u64;
                        let mut names = names.into_iter();
                        let mut k = 0u64;
                        loop {
                            let at = t0 + k * step;
                            if at >= end {
                                break;
                            }
                            let now = now_ns();
                            if now < at {
                                std::thread::sleep(Duration::from_nanos(at - now));
                            } else {
                                behind = behind.max(now - at);
                            }
                            if let Some(c) = pool.pop_front() {
                                close_detached(c);
                            }
                            let n = names.next().unwrap_or_else(|| format!("extra-{k}"));
                            pool.push_back(client(survey, n));
                            events += 2;
                            k += 1;
                        }
                        (events, behind)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let elapsed = now_ns() - t0;
        let events: u64 = results.iter().map(|r| r.0).sum();
        let behind = results.iter().map(|r| r.1).max().unwrap_or(0);
        // Closes still running GRACE_MS later are hung (see close_detached).
        std::thread::sleep(Duration::from_millis(grace));
        let hung = CLOSES_STARTED.load(Relaxed) - CLOSES_DONE.load(Relaxed);
        out(&format!("done {events} {elapsed} {behind} {hung}"));
        line.clear();
    }
    std::mem::forget(pools);
    std::process::exit(0)
}

static CLOSES_STARTED: AtomicU64 = AtomicU64::new(0);
static CLOSES_DONE: AtomicU64 = AtomicU64::new(0);

/// Closes a client on a thread of its own, so a close that hangs (a bug: it waits
/// for NNG to stop the client's receive) cannot stall the churn; the socket is
/// closed either way, so the server sees the leave, and hung closes are counted.
fn close_detached(c: Client) {
    CLOSES_STARTED.fetch_add(1, Relaxed);
    let r = std::thread::Builder::new()
        .name("bench-close".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            drop(c);
            CLOSES_DONE.fetch_add(1, Relaxed);
        });
    if let Err(e) = r {
        fail(&format!("child: cannot spawn a closing thread: {e}"));
    }
}

/// `--child-burn THREADS`: an unrelated busy loop on THREADS threads until stdin closes.
pub fn burn(args: &[String]) -> ! {
    let threads: usize = arg(args, 0, "threads");
    for _ in 0..threads {
        std::thread::spawn(|| {
            let mut x = 1u64;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
    }
    out("burning");
    wait_stdin_closed();
    std::process::exit(0)
}
