//! Scenario benchmarks (`make bench`, `make bench-quick`): a server, N members and S
//! subscribers on loopback; prints one JSON line per measurement and markdown tables.
//!
//! Processes: the server runs alone in a child process (so its CPU, RSS and sockets
//! are its own); members run in child processes, up to 1,000 real clients each; the
//! member that is joined, killed (`kill -9`) or stopped (SIGSTOP) in a sample is a
//! process of its own. Subscribers run in this process. Every child is a re-exec of
//! this binary in a hidden mode (see `child.rs`) and dies with it.
//!
//! Times are CLOCK_MONOTONIC, which every process on the machine shares: a member
//! process stamps "client started", this process stamps "kill sent", and each
//! subscriber's update handler stamps when it saw the change.
//!
//! Usage: `scenarios [quick|full] [--ns 10,100,1000,10000] [--subs S] [--samples K]
//!         [--duration SOAK_SECONDS] [--skip churn,twoservers,soak,...] [--out DIR]
//!         [--keyring]`

mod child;
mod util;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use gopherdiscovery::{EventKind, Limits, Reason, State, Subscriber, Update};

use child::member_name;
use util::*;

/// Port numbers (in member names) of the bulk members, the join/kill victims, the
/// stopped members.
const BULK_PORT: u32 = 10_000;
const VICTIM_PORT: u32 = 40_000;
const STOP_PORT: u32 = 50_000;
const TWO_VICTIM_PORT: u32 = 60_000;
const MEMBERS_PER_HOST: usize = 1_000;
/// A kill this soon after a regular survey lands in the burst of N answers.
const ROUND_WINDOW_NS: u64 = 100_000_000;

struct Cfg {
    mode: &'static str,
    ns: Vec<usize>,
    subs: usize,
    samples: usize,
    stop_samples: usize,
    late_samples: usize,
    interval_ms: u64,
    deadline_ms: u64,
    evict: u32,
    settle: Duration,
    /// How long N members may take to connect.
    setup_budget: Duration,
    steady: Box<dyn Fn(usize) -> Duration>,
    churn_rates: Vec<f64>,
    churn_secs: f64,
    soak_n: usize,
    soak_secs: f64,
    skip: HashSet<String>,
    out: Option<PathBuf>,
}

impl Cfg {
    fn parse() -> Result<Cfg, String> {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        args.retain(|a| a != "--bench"); // `cargo bench` adds it
        let quick = match args.first().map(String::as_str) {
            Some("quick") => {
                args.remove(0);
                true
            }
            Some("full") => {
                args.remove(0);
                false
            }
            _ => false,
        };
        let mut c = if quick {
            Cfg {
                mode: "quick",
                ns: vec![10, 100],
                subs: 2,
                samples: 10,
                stop_samples: 2,
                late_samples: 3,
                interval_ms: 100,
                deadline_ms: 50,
                evict: 3,
                settle: Duration::from_millis(200),
                setup_budget: Duration::from_secs(60),
                steady: Box::new(|_| Duration::from_millis(500)),
                churn_rates: vec![100.0],
                churn_secs: 0.5,
                soak_n: 100,
                soak_secs: 1.0,
                skip: HashSet::new(),
                out: None,
            }
        } else {
            Cfg {
                mode: "full",
                ns: vec![10, 100, 1_000, 10_000],
                subs: 4,
                samples: 200,
                stop_samples: 5,
                late_samples: 20,
                interval_ms: 1000,
                deadline_ms: 500,
                evict: 3,
                settle: Duration::from_secs(3),
                setup_budget: Duration::from_secs(150),
                steady: Box::new(|n| Duration::from_secs(if n >= 1000 { 10 } else { 5 })),
                churn_rates: vec![100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0],
                churn_secs: 3.0,
                soak_n: 1_000,
                soak_secs: 600.0,
                skip: HashSet::new(),
                out: None,
            }
        };
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
            let num = |v: String, name: &str| -> Result<f64, String> {
                v.parse::<f64>()
                    .map_err(|_| format!("{name}: not a number: {v}"))
            };
            match a.as_str() {
                "--ns" => {
                    c.ns = val("--ns")?
                        .split(',')
                        .map(|s| s.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .map_err(|_| "--ns: expected e.g. 10,100,1000".to_string())?;
                    if c.ns.iter().any(|&n| n < 2) {
                        return Err("--ns: every N must be at least 2".into());
                    }
                }
                "--subs" => c.subs = num(val(&a)?, &a)?.max(1.0) as usize,
                "--samples" => c.samples = num(val(&a)?, &a)?.max(1.0) as usize,
                "--duration" => c.soak_secs = num(val(&a)?, &a)?.max(0.0),
                "--soak-n" => c.soak_n = num(val(&a)?, &a)?.max(2.0) as usize,
                "--churn-secs" => c.churn_secs = num(val(&a)?, &a)?.max(0.1),
                "--skip" => c.skip = val(&a)?.split(',').map(str::to_string).collect(),
                "--out" => c.out = Some(PathBuf::from(val(&a)?)),
                // Every server, member and subscriber (children inherit it) signs
                // and verifies with one fixed key: the cost of authentication.
                "--keyring" => std::env::set_var(util::KEYRING_ENV, "1"),
                "-h" | "--help" => {
                    println!("usage: scenarios [quick|full] [--ns 10,100,1000,10000] [--subs S] [--samples K] [--duration SOAK_SECONDS] [--soak-n N] [--churn-secs S] [--skip steady,late,joinkill,stop,churn,twoservers,soak] [--out DIR] [--keyring]");
                    std::process::exit(0);
                }
                _ => return Err(format!("unknown argument {a:?} (try --help)")),
            }
        }
        Ok(c)
    }

    fn interval_ns(&self) -> u64 {
        self.interval_ms * 1_000_000
    }
}

// ------------------------------------------------------------------ subscribers

/// What every subscriber saw, with times: fed by the update handlers.
#[derive(Default)]
struct Track {
    joined: HashMap<String, Vec<u64>>,
    left: HashMap<String, Vec<u64>>,
    left_reason: HashMap<String, Reason>,
    count: Vec<usize>,
    snapshots: Vec<u64>,
    lefts: u64,
    stale: u64,
    /// During churn: (seq, digest, time) of every update, per subscriber.
    log: Option<Vec<Vec<(u64, u64, u64)>>>,
}

struct Tracker {
    subs: usize,
    m: Mutex<Track>,
    cv: Condvar,
    logging: AtomicBool,
}

impl Tracker {
    fn new(subs: usize) -> Arc<Tracker> {
        Arc::new(Tracker {
            subs,
            m: Mutex::new(Track {
                count: vec![0; subs],
                snapshots: vec![0; subs],
                ..Track::default()
            }),
            cv: Condvar::new(),
            logging: AtomicBool::new(false),
        })
    }

    fn record(&self, i: usize, u: &Update, t: u64, digest: Option<u64>) {
        let mut g = self.m.lock().unwrap();
        let s = self.subs;
        for e in &u.events {
            let name = &e.member.name;
            match e.kind {
                EventKind::Joined => {
                    g.joined.entry(name.clone()).or_insert_with(|| vec![0; s])[i] = t;
                }
                EventKind::Left => {
                    g.left.entry(name.clone()).or_insert_with(|| vec![0; s])[i] = t;
                    g.left_reason.insert(name.clone(), e.reason);
                    g.lefts += 1;
                }
                EventKind::Updated => {}
            }
        }
        g.count[i] = u.peers.len();
        if u.snapshot {
            g.snapshots[i] += 1;
        }
        if u.state == State::Stale {
            g.stale += 1;
        }
        if let (Some(log), Some(d)) = (g.log.as_mut(), digest) {
            log[i].push((u.seq, d, t));
        }
        drop(g);
        self.cv.notify_all();
    }

    /// Waits until `f` holds; false on timeout.
    fn wait(&self, timeout: Duration, mut f: impl FnMut(&Track) -> bool) -> bool {
        let end = now_ns() + timeout.as_nanos() as u64;
        let mut g = self.m.lock().unwrap();
        loop {
            if f(&g) {
                return true;
            }
            let now = now_ns();
            if now >= end {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, Duration::from_nanos((end - now).min(50_000_000)))
                .unwrap()
                .0;
        }
    }

    fn all_joined(t: &Track, name: &str) -> Option<u64> {
        let v = t.joined.get(name)?;
        v.iter().all(|&x| x > 0).then(|| *v.iter().max().unwrap())
    }

    fn all_left(t: &Track, name: &str) -> Option<u64> {
        let v = t.left.get(name)?;
        v.iter().all(|&x| x > 0).then(|| *v.iter().max().unwrap())
    }

    fn forget_names(&self) {
        let mut g = self.m.lock().unwrap();
        g.joined.clear();
        g.left.clear();
        g.left_reason.clear();
    }
}

struct Subs {
    subs: Vec<Arc<Subscriber>>,
    t: Arc<Tracker>,
}

impl Subs {
    fn start(srv: &Srv, s: usize) -> Result<Subs, String> {
        Subs::start_merged(&[srv], s)
    }

    /// Subscribers that merge every server of `srvs` (one server: its publish and
    /// snapshot URLs as such; several: `SubscriberBuilder::server` for each).
    fn start_merged(srvs: &[&Srv], s: usize) -> Result<Subs, String> {
        let t = Tracker::new(s);
        let mut subs = Vec::new();
        for i in 0..s {
            let cell: Arc<OnceLock<Weak<Subscriber>>> = Arc::new(OnceLock::new());
            let (c2, t2) = (cell.clone(), t.clone());
            let mut b = Subscriber::builder();
            if let [srv] = srvs {
                b = b
                    .publish(srv.publish.clone())
                    .snapshot(Some(srv.snapshot.clone()));
            } else {
                for srv in srvs {
                    b = b.server(srv.publish.clone(), srv.snapshot.clone());
                }
            }
            let sub = b
                .authentication(util::bench_auth())
                .on_update(move |u| {
                    let now = now_ns();
                    let digest = if t2.logging.load(Relaxed) {
                        c2.get().and_then(Weak::upgrade).map(|s| s.digest())
                    } else {
                        None
                    };
                    t2.record(i, u, now, digest);
                })
                .start()
                .map_err(|e| format!("subscriber start: {e}"))?;
            let sub = Arc::new(sub);
            let _ = cell.set(Arc::downgrade(&sub));
            subs.push(sub);
        }
        if !t.wait(Duration::from_secs(30), |g| {
            g.snapshots.iter().all(|&c| c > 0)
        }) {
            return Err("subscribers got no snapshot within 30 s".into());
        }
        Ok(Subs { subs, t })
    }

    fn resyncs(&self) -> u64 {
        self.subs.iter().map(|s| s.resyncs()).sum()
    }

    fn wait_count(&self, n: usize, timeout: Duration) -> bool {
        self.t.wait(timeout, |g| g.count.iter().all(|&c| c == n))
    }
}

// ------------------------------------------------------------------ raw tap

/// A raw sub0 socket on the publish URL that counts what NNG delivers: message
/// sizes by type. On TCP each message also carries NNG's 8-byte length prefix.
#[derive(Default, Clone, Copy)]
struct TapCounts {
    delta_msgs: u64,
    delta_bytes: u64,
    delta_events: u64,
    hb_msgs: u64,
    hb_bytes: u64,
    max_msg: u64,
    /// When the last heartbeat arrived: the server sends it right after each
    /// regular survey, so it marks the start of a survey round.
    last_hb_ns: u64,
}

struct Tap {
    sock: gopherdiscovery::nng::Socket,
    c: Arc<Mutex<TapCounts>>,
    thread: Option<JoinHandle<()>>,
}

impl Tap {
    fn start(url: &str) -> Result<Tap, String> {
        use gopherdiscovery::nng::{Protocol, Socket};
        let sock = Socket::open(Protocol::Sub0, false).map_err(|e| format!("tap: {e}"))?;
        sock.subscribe_all()
            .and_then(|_| sock.set_recv_timeout(Some(Duration::from_millis(100))))
            .and_then(|_| sock.set_recv_buffer(8192))
            .map_err(|e| format!("tap: {e}"))?;
        sock.dial(url).map_err(|e| format!("tap dial {url}: {e}"))?;
        let c = Arc::new(Mutex::new(TapCounts::default()));
        let (s2, c2) = (sock.clone(), c.clone());
        let thread = std::thread::Builder::new()
            .name("bench-tap".into())
            .spawn(move || loop {
                match s2.recv() {
                    Ok(m) => {
                        let b = m.body();
                        let mut g = c2.lock().unwrap();
                        g.max_msg = g.max_msg.max(b.len() as u64);
                        match (b.first(), b.get(2)) {
                            (Some(0xFF), Some(3)) => {
                                // Decoded, not read at an offset: the tap follows
                                // the wire version (a signed delta's tag is skipped).
                                let limits = Limits::default();
                                if let Ok(gopherdiscovery::wire::Message::Delta {
                                    events, ..
                                }) = gopherdiscovery::wire::decode(b, &limits)
                                {
                                    g.delta_msgs += 1;
                                    g.delta_bytes += b.len() as u64;
                                    g.delta_events += events.len() as u64;
                                }
                            }
                            (Some(0xFF), Some(4)) => {
                                g.hb_msgs += 1;
                                g.hb_bytes += b.len() as u64;
                                g.last_hb_ns = now_ns();
                            }
                            _ => {}
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(_) => return,
                }
            })
            .map_err(|e| format!("tap thread: {e}"))?;
        Ok(Tap {
            sock,
            c,
            thread: Some(thread),
        })
    }

    fn get(&self) -> TapCounts {
        *self.c.lock().unwrap()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.sock.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------ server process

struct Srv {
    p: Proc,
    survey: String,
    publish: String,
    snapshot: String,
}

impl Srv {
    fn start(cfg: &Cfg) -> Result<Srv, String> {
        let mut p = Proc::spawn(
            "server",
            &[
                "--child-server".into(),
                cfg.interval_ms.to_string(),
                cfg.deadline_ms.to_string(),
                cfg.evict.to_string(),
            ],
        )
        .map_err(|e| format!("spawn server: {e}"))?;
        let l = p.line(Duration::from_secs(20))?;
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() != 4 || w[0] != "urls" {
            return Err(format!("server said {l:?}"));
        }
        Ok(Srv {
            survey: w[1].into(),
            publish: w[2].into(),
            snapshot: w[3].into(),
            p,
        })
    }

    /// `(seq, count, digest)`.
    fn pos(&mut self) -> Result<(u64, usize, u64), String> {
        let l = self.p.ask("pos", Duration::from_secs(10))?;
        let w: Vec<&str> = l.split_whitespace().collect();
        let parse = || -> Option<(u64, usize, u64)> {
            Some((
                w.get(1)?.parse().ok()?,
                w.get(2)?.parse().ok()?,
                w.get(3)?.parse().ok()?,
            ))
        };
        parse().ok_or(format!("server said {l:?}"))
    }

    /// Surveys sent so far (regular and early).
    fn surveys(&mut self) -> Result<u64, String> {
        let l = self.p.ask("stats", Duration::from_secs(10))?;
        l.split_whitespace()
            .nth(2)
            .and_then(|w| w.parse().ok())
            .ok_or(format!("server said {l:?}"))
    }

    fn wait_count(&mut self, n: usize, timeout: Duration) -> Result<bool, String> {
        let end = now_ns() + timeout.as_nanos() as u64;
        loop {
            if self.pos()?.1 == n {
                return Ok(true);
            }
            if now_ns() > end {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Member host processes for `n` members named after ports `first`..; no new host
/// is started after `deadline` (monotonic ns).
fn start_hosts(survey: &str, first: u32, n: usize, deadline: u64) -> Result<Vec<Proc>, String> {
    // One host after the other, each connecting its members in batches: see child::host.
    let mut hosts: Vec<Proc> = Vec::new();
    let mut started = 0;
    while started < n && now_ns() < deadline {
        let k = (n - started).min(MEMBERS_PER_HOST);
        hosts.push(
            Proc::spawn(
                format!("member host {}", hosts.len()),
                &[
                    "--child-host".into(),
                    survey.into(),
                    (first + started as u32).to_string(),
                    k.to_string(),
                ],
            )
            .map_err(|e| format!("spawn member host: {e}"))?,
        );
        started += k;
        let h = hosts.last_mut().unwrap();
        let l = h.line(Duration::from_secs(600))?;
        if !l.starts_with("up ") {
            return Err(format!("{} said {l:?}", h.what));
        }
    }
    Ok(hosts)
}

fn parse_up(l: &str) -> Option<u64> {
    let w: Vec<&str> = l.split_whitespace().collect();
    (w.first() == Some(&"up")).then(|| w.get(1)?.parse().ok())?
}

// ------------------------------------------------------------------ the bench

struct Bench {
    cfg: Cfg,
    results: Vec<Json>,
    raw: Raw,
    rng: Rng,
    failures: Vec<String>,
    /// Survey URL of the server of the current N.
    cur_survey: String,
}

fn summary(j: Json, v: &[f64]) -> Json {
    let s = sorted(v.to_vec());
    j.n("samples", s.len() as f64)
        .n("p50_ms", pct(&s, 50.0))
        .n("p99_ms", pct(&s, 99.0))
        .n("max_ms", s.last().copied().unwrap_or(f64::NAN))
        .n("min_ms", s.first().copied().unwrap_or(f64::NAN))
}

impl Bench {
    fn emit(&mut self, j: Json) {
        println!("{}", j.line());
        self.results.push(j);
    }

    fn note(&self, msg: &str) {
        eprintln!(
            "[bench {:>7.1}s] {msg}",
            ms(now_ns() - *START.get().unwrap()) / 1e3
        );
    }

    fn run_n(&mut self, n: usize) -> Result<(), String> {
        let cfg_subs = self.cfg.subs;
        let mut srv = Srv::start(&self.cfg)?;
        self.cur_survey = srv.survey.clone();
        let subs = Subs::start(&srv, cfg_subs)?;
        let tap = Tap::start(&srv.publish)?;
        let bulk = n - 1;
        self.note(&format!("N={n}: starting {bulk} members"));
        let t0 = now_ns();
        let surveys0 = srv.surveys()?;
        let give_up = t0 + self.cfg.setup_budget.as_nanos() as u64;
        let hosts = start_hosts(&srv.survey, BULK_PORT, bulk, give_up)?;
        let t_up = now_ns();
        let mut complete = true;
        while !subs.wait_count(bulk, Duration::from_secs(10)) {
            let (seq, count, _) = srv.pos()?;
            let seen = subs.t.m.lock().unwrap().count.clone();
            self.note(&format!(
                "N={n}: server has {count} members (seq {seq}), subscribers see {seen:?}"
            ));
            if now_ns() > give_up {
                complete = false;
                break;
            }
        }
        let t_full = now_ns();
        let bulk = if complete {
            bulk
        } else {
            // Measure with the members that did connect, labelled as such.
            let (_, count, _) = srv.pos()?;
            let msg = format!(
                "N={n}: only {count} of {bulk} members connected within {:?}",
                self.cfg.setup_budget
            );
            self.note(&msg);
            self.failures.push(msg);
            if count < 1 || !subs.wait_count(count, Duration::from_secs(30)) {
                return Err(format!("N={n}: subscribers do not agree with the server"));
            }
            count
        };
        let surveys = srv.surveys()? - surveys0;
        let regular = ((t_full - t0) / self.cfg.interval_ns()) as f64;
        self.emit(
            Json::new("setup")
                .n("n", n as f64)
                .b("complete", complete)
                .n("members", bulk as f64)
                .n("hosts", hosts.len() as f64)
                .n("surveys", surveys as f64)
                .n("early_surveys", (surveys as f64 - regular).max(0.0))
                .n("clients_started_ms", ms(t_up - t0))
                .n("all_seen_ms", ms(t_full - t0)),
        );
        let skip = self.cfg.skip.clone();
        if !skip.contains("steady") {
            self.steady(n, bulk, &mut srv, &hosts, &tap)?;
        }
        if !skip.contains("late") {
            self.late(n, bulk, &srv)?;
        }
        if !skip.contains("joinkill") {
            self.join_kill(n, &mut srv, &subs, &tap)?;
        }
        if !complete {
            self.note(&format!(
                "N={n}: no SIGSTOP and churn samples (setup incomplete)"
            ));
            return Ok(());
        }
        if !skip.contains("stop") {
            self.stop(n, &subs)?;
        }
        if !skip.contains("churn") {
            self.churn(n, bulk, &mut srv, &subs)?;
        }
        drop(hosts);
        drop(tap);
        drop(subs);
        drop(srv);
        Ok(())
    }

    /// Scenarios 6 and 4b: server CPU and RSS, member cost, bytes per survey round.
    fn steady(
        &mut self,
        n: usize,
        bulk: usize,
        srv: &mut Srv,
        hosts: &[Proc],
        tap: &Tap,
    ) -> Result<(), String> {
        std::thread::sleep(self.cfg.settle);
        let window = (self.cfg.steady)(n);
        self.note(&format!("N={n}: steady state for {window:?}"));
        let pid = srv.p.pid();
        let sport = port_of(&srv.survey).unwrap_or(0);
        let pport = port_of(&srv.publish).unwrap_or(0);
        let host_cpu = || {
            hosts
                .iter()
                .filter_map(|h| cpu_seconds(h.pid()))
                .sum::<f64>()
        };
        let (c0, h0, hb0, s0, p0, t0) = (
            cpu_seconds(pid),
            host_cpu(),
            tap.get(),
            tcp_bytes(sport),
            tcp_bytes(pport),
            now_ns(),
        );
        let seq0 = srv.pos()?.0;
        std::thread::sleep(window);
        let (c1, h1, hb1, s1, p1, t1) = (
            cpu_seconds(pid),
            host_cpu(),
            tap.get(),
            tcp_bytes(sport),
            tcp_bytes(pport),
            now_ns(),
        );
        let seq1 = srv.pos()?.0;
        let secs = (t1 - t0) as f64 / 1e9;
        let rounds = (hb1.hb_msgs - hb0.hb_msgs) as f64;
        let cpu = match (c0, c1) {
            (Some(a), Some(b)) => Some((b - a) / secs * 100.0),
            _ => None,
        };
        let rss = status_field(pid, "VmRSS").map(|k| k as f64 / 1024.0);
        let hwm = status_field(pid, "VmHWM").map(|k| k as f64 / 1024.0);
        let threads = status_field(pid, "Threads").map(|k| k as f64);
        let host_rss: u64 = hosts
            .iter()
            .filter_map(|h| status_field(h.pid(), "VmRSS"))
            .sum();
        let per_round = |a: Option<(u64, u64, usize)>, b: Option<(u64, u64, usize)>| match (a, b) {
            (Some(a), Some(b)) if rounds > 0.0 => Some((
                (b.0.saturating_sub(a.0)) as f64 / rounds,
                (b.1.saturating_sub(a.1)) as f64 / rounds,
                b.2,
            )),
            _ => None,
        };
        let sv = per_round(s0, s1);
        let pb = per_round(p0, p1);
        self.emit(
            Json::new("steady")
                .n("n", n as f64)
                .n("interval_ms", self.cfg.interval_ms as f64)
                .n("window_s", secs)
                .n("rounds", rounds)
                .n("changes_in_window", (seq1 - seq0) as f64)
                .opt("server_cpu_pct", cpu)
                .opt("server_rss_mb", rss)
                .opt("server_hwm_mb", hwm)
                .opt("server_threads", threads)
                .n(
                    "member_cpu_us_per_s",
                    (h1 - h0) / secs / bulk.max(1) as f64 * 1e6,
                )
                .n("member_rss_kb", host_rss as f64 / bulk.max(1) as f64)
                .opt("survey_round_bytes_out", sv.map(|v| v.0))
                .opt("survey_round_bytes_in", sv.map(|v| v.1))
                .opt("survey_round_bytes", sv.map(|v| v.0 + v.1))
                .opt("survey_connections", sv.map(|v| v.2 as f64))
                .opt(
                    "publish_bytes_per_round_per_sub",
                    pb.map(|v| v.0 / v.2.max(1) as f64),
                )
                .n(
                    "heartbeat_bytes",
                    if rounds > 0.0 {
                        (hb1.hb_bytes - hb0.hb_bytes) as f64 / rounds
                    } else {
                        f64::NAN
                    },
                ),
        );
        Ok(())
    }

    /// Scenario 5: a late subscriber's time from start to the full view.
    fn late(&mut self, n: usize, bulk: usize, srv: &Srv) -> Result<(), String> {
        self.note(&format!("N={n}: late subscribers"));
        let snap_bytes = gopherdiscovery::fetch_snapshot_with(
            &srv.snapshot,
            Duration::from_secs(10),
            &Limits::default(),
            &util::bench_auth(),
        )
        .ok()
        .map(|s| {
            let head = gopherdiscovery::wire::SnapshotHead {
                nonce: s.nonce,
                epoch: s.epoch,
                seq: s.seq,
                counter: s.counter,
                interval_ms: s.interval_ms,
                warming: s.warming,
                digest: s.digest,
            };
            gopherdiscovery::wire::encode_snapshot(&head, s.members.len(), &s.members).len() as f64
        });
        let mut lat = Vec::new();
        let mut timeouts = 0;
        for _ in 0..self.cfg.late_samples {
            let (tx, rx) = std::sync::mpsc::channel();
            let t0 = now_ns();
            let sub = Subscriber::builder()
                .authentication(util::bench_auth())
                .publish(srv.publish.clone())
                .snapshot(Some(srv.snapshot.clone()))
                .on_update(move |u| {
                    if u.peers.len() >= bulk {
                        let _ = tx.send(now_ns());
                    }
                })
                .start()
                .map_err(|e| format!("late subscriber: {e}"))?;
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(t) => lat.push(ms(t - t0)),
                Err(_) => timeouts += 1,
            }
            drop(sub);
            std::thread::sleep(Duration::from_millis(self.rng.range(10, 60)));
        }
        self.raw.put("late_ms", n, lat.clone());
        let j = summary(Json::new("late_subscriber").n("n", n as f64), &lat)
            .n("timeouts", timeouts as f64)
            .opt("snapshot_bytes", snap_bytes);
        self.emit(j);
        Ok(())
    }

    /// Scenarios 1, 2 and 4a: a member process joins, then is killed with SIGKILL.
    fn join_kill(&mut self, n: usize, srv: &mut Srv, subs: &Subs, tap: &Tap) -> Result<(), String> {
        self.note(&format!(
            "N={n}: {} join + kill -9 samples",
            self.cfg.samples
        ));
        let (mut join, mut kill) = (Vec::new(), Vec::new());
        let (mut join_to, mut kill_to) = (0, 0);
        // Kill latencies [between rounds, within ROUND_WINDOW_NS after a survey].
        let mut kill_by_phase: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut reasons: HashMap<&'static str, u64> = HashMap::new();
        let tap0 = tap.get();
        let (surveys0, t0) = (srv.surveys()?, now_ns());
        for k in 0..self.cfg.samples {
            let name = member_name(VICTIM_PORT + k as u32);
            let mut p = Proc::spawn(
                format!("victim {k}"),
                &[
                    "--child-host".into(),
                    srv.survey.clone(),
                    (VICTIM_PORT + k as u32).to_string(),
                    "1".into(),
                ],
            )
            .map_err(|e| format!("spawn victim: {e}"))?;
            let t_start = parse_up(&p.line(Duration::from_secs(20))?)
                .ok_or_else(|| format!("victim {k} said something odd"))?;
            let mut seen = 0;
            if subs.t.wait(Duration::from_secs(10), |g| {
                Tracker::all_joined(g, &name).map(|t| seen = t).is_some()
            }) {
                join.push(ms(seen.saturating_sub(t_start)));
            } else {
                join_to += 1;
                if join.is_empty() && join_to >= 3 {
                    // The server accepts no new connection (see the setup line).
                    self.failures
                        .push(format!("N={n}: new members cannot connect"));
                    break;
                }
                continue; // never joined: nothing to see leave (Drop kills it)
            }
            std::thread::sleep(Duration::from_millis(self.rng.range(5, 30)));
            let t_kill = now_ns();
            p.signal(libc::SIGKILL);
            let phase = t_kill.saturating_sub(tap.get().last_hb_ns) % self.cfg.interval_ns();
            if subs.t.wait(Duration::from_secs(10), |g| {
                Tracker::all_left(g, &name).map(|t| seen = t).is_some()
            }) {
                kill.push(ms(seen.saturating_sub(t_kill)));
                let in_round = phase < ROUND_WINDOW_NS;
                kill_by_phase[in_round as usize].push(ms(seen.saturating_sub(t_kill)));
                let r = subs.t.m.lock().unwrap().left_reason.get(&name).copied();
                *reasons
                    .entry(r.and_then(Reason::as_str).unwrap_or("none"))
                    .or_default() += 1;
            } else {
                kill_to += 1;
            }
            p.reap();
        }
        let tap1 = tap.get();
        subs.t.forget_names();
        let surveys = srv.surveys()? - surveys0;
        let regular = ((now_ns() - t0) / self.cfg.interval_ns()) as f64;
        let early_per_join = (surveys as f64 - regular).max(0.0) / self.cfg.samples as f64;
        self.raw.put("join_ms", n, join.clone());
        self.raw.put("kill_ms", n, kill.clone());
        let j = summary(Json::new("join").n("n", n as f64), &join)
            .n("timeouts", join_to as f64)
            .n("early_surveys_per_join", early_per_join);
        self.emit(j);
        let mut j =
            summary(Json::new("kill9").n("n", n as f64), &kill).n("timeouts", kill_to as f64);
        let [between, within] = kill_by_phase.map(sorted);
        j = j
            .n("in_round_samples", within.len() as f64)
            .n("in_round_p99_ms", pct(&within, 99.0))
            .n("between_rounds_p99_ms", pct(&between, 99.0));
        for (r, c) in reasons {
            j = j.n(&format!("reason_{r}"), c as f64);
        }
        self.emit(j);
        // Bytes per change per subscriber: delta messages as NNG delivered them,
        // plus the TCP transport's 8-byte length prefix per message.
        let msgs = tap1.delta_msgs - tap0.delta_msgs;
        let events = tap1.delta_events - tap0.delta_events;
        let bytes = tap1.delta_bytes - tap0.delta_bytes + 8 * msgs;
        let name = member_name(VICTIM_PORT);
        let mut md = gopherdiscovery::Metadata::new();
        md.insert("zone".into(), "a".into());
        let own = name.len() + gopherdiscovery::wire::metadata_len(&md);
        let per = if events > 0 {
            bytes as f64 / events as f64
        } else {
            f64::NAN // no change measured
        };
        self.emit(
            Json::new("bytes_per_change")
                .n("n", n as f64)
                .n("delta_messages", msgs as f64)
                .n("changes", events as f64)
                .n("bytes_per_change_per_sub", per)
                .n("name_and_metadata_bytes", own as f64)
                .n("overhead_bytes", per - own as f64),
        );
        Ok(())
    }

    /// Several servers: N members answer every one of `servers` servers (each in its
    /// own process) and S subscribers merge them all. A member process joins, then
    /// is killed with SIGKILL: the time until every subscriber has seen it leave,
    /// and the delta bytes each subscriber receives per change, per server (one
    /// tap on each server's publish URL). Run with 1 and with 2 servers to compare.
    fn two_servers(&mut self, n: usize, servers: usize) -> Result<(), String> {
        let quick = self.cfg.mode == "quick";
        let samples = if quick { 3 } else { self.cfg.samples };
        let mut srvs = Vec::new();
        for _ in 0..servers {
            srvs.push(Srv::start(&self.cfg)?);
        }
        let refs: Vec<&Srv> = srvs.iter().collect();
        let subs = Subs::start_merged(&refs, self.cfg.subs)?;
        let taps = srvs
            .iter()
            .map(|s| Tap::start(&s.publish))
            .collect::<Result<Vec<_>, _>>()?;
        let survey = srvs
            .iter()
            .map(|s| s.survey.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let bulk = n - 1;
        self.note(&format!(
            "twoservers N={n}: {bulk} members answering {servers} server(s)"
        ));
        let t0 = now_ns();
        let give_up = t0 + self.cfg.setup_budget.as_nanos() as u64;
        let hosts = start_hosts(&survey, BULK_PORT, bulk, give_up)?;
        for s in &mut srvs {
            if !s.wait_count(bulk, Duration::from_secs(60))? {
                return Err(format!("a server has {} of {bulk} members", s.pos()?.1));
            }
        }
        if !subs.wait_count(bulk, Duration::from_secs(60)) {
            return Err("subscribers do not see every member".into());
        }
        let setup_ms = ms(now_ns() - t0);
        std::thread::sleep(self.cfg.settle);
        self.note(&format!(
            "twoservers N={n} servers={servers}: {samples} join + kill -9 samples"
        ));
        let tap0: Vec<TapCounts> = taps.iter().map(Tap::get).collect();
        let lefts0 = subs.t.m.lock().unwrap().lefts;
        let (mut join, mut kill) = (Vec::new(), Vec::new());
        let (mut join_to, mut kill_to, mut joined) = (0, 0, 0u64);
        for k in 0..samples {
            let port = TWO_VICTIM_PORT + k as u32;
            let name = member_name(port);
            let mut p = Proc::spawn(
                format!("victim {k}"),
                &[
                    "--child-host".into(),
                    survey.clone(),
                    port.to_string(),
                    "1".into(),
                ],
            )
            .map_err(|e| format!("spawn victim: {e}"))?;
            let t_start = parse_up(&p.line(Duration::from_secs(20))?)
                .ok_or_else(|| format!("victim {k} said something odd"))?;
            let mut seen = 0;
            if !subs.t.wait(Duration::from_secs(10), |g| {
                Tracker::all_joined(g, &name).map(|t| seen = t).is_some()
            }) {
                join_to += 1;
                continue;
            }
            joined += 1;
            join.push(ms(seen.saturating_sub(t_start)));
            // Both servers hold it before the kill: else a kill could race the
            // second server's join and be seen as a leave of one server only.
            let end = now_ns() + 5_000_000_000;
            for s in &mut srvs {
                while s.pos()?.1 != bulk + 1 && now_ns() < end {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            std::thread::sleep(Duration::from_millis(self.rng.range(5, 30)));
            let t_kill = now_ns();
            p.signal(libc::SIGKILL);
            if subs.t.wait(Duration::from_secs(10), |g| {
                Tracker::all_left(g, &name).map(|t| seen = t).is_some()
            }) {
                kill.push(ms(seen.saturating_sub(t_kill)));
            } else {
                kill_to += 1;
            }
            p.reap();
            for s in &mut srvs {
                s.wait_count(bulk, Duration::from_secs(10))?;
            }
        }
        // The merged view must say each leave once, per subscriber.
        std::thread::sleep(Duration::from_millis(2 * self.cfg.interval_ms));
        let lefts = subs.t.m.lock().unwrap().lefts - lefts0;
        let expected_lefts = (joined - kill_to) * self.cfg.subs as u64;
        let tap1: Vec<TapCounts> = taps.iter().map(Tap::get).collect();
        subs.t.forget_names();
        let series = format!("twoservers_{servers}_kill_ms");
        self.raw.put(&series, n, kill.clone());
        let mut j = summary(
            Json::new("twoservers_kill9")
                .n("n", n as f64)
                .n("servers", servers as f64),
            &kill,
        )
        .n("timeouts", kill_to as f64)
        .n("join_timeouts", join_to as f64)
        .n("join_p50_ms", pct(&sorted(join.clone()), 50.0))
        .n("join_p99_ms", pct(&sorted(join), 99.0))
        .n("lefts_per_sub", lefts as f64 / self.cfg.subs as f64)
        .n(
            "expected_lefts_per_sub",
            expected_lefts as f64 / self.cfg.subs as f64,
        )
        .n("setup_ms", setup_ms);
        // Bytes per change per subscriber: what each server's publish socket
        // delivered (NNG's 8-byte TCP length prefix included), over the changes of
        // one server; a merging subscriber receives the sum.
        let (mut total, mut changes) = (0u64, 0u64);
        for (i, (a, b)) in tap0.iter().zip(&tap1).enumerate() {
            let msgs = b.delta_msgs - a.delta_msgs;
            let bytes = b.delta_bytes - a.delta_bytes + 8 * msgs;
            let events = b.delta_events - a.delta_events;
            changes = changes.max(events);
            total += bytes;
            j = j
                .n(&format!("server{i}_delta_bytes"), bytes as f64)
                .n(&format!("server{i}_changes"), events as f64)
                .n(
                    &format!("server{i}_bytes_per_change_per_sub"),
                    if events > 0 {
                        bytes as f64 / events as f64
                    } else {
                        f64::NAN
                    },
                );
        }
        j = j.n("changes", changes as f64).n(
            "bytes_per_change_per_sub",
            if changes > 0 {
                total as f64 / changes as f64
            } else {
                f64::NAN
            },
        );
        self.emit(j);
        if kill_to > 0 || join_to > 0 || lefts != expected_lefts {
            self.failures.push(format!(
                "twoservers N={n} servers={servers}: {join_to} join and {kill_to} leave timeouts, {lefts} lefts seen for {expected_lefts} expected"
            ));
        }
        drop(hosts);
        drop(taps);
        drop(subs);
        drop(srvs);
        Ok(())
    }

    /// Scenario 3: SIGSTOP a member process; time until every subscriber saw it
    /// evicted, against interval × evict_after + deadline.
    fn stop(&mut self, n: usize, subs: &Subs) -> Result<(), String> {
        let m = self.cfg.stop_samples;
        self.note(&format!("N={n}: {m} SIGSTOP samples"));
        let survey = {
            // Any host would do; the stopped members dial the same survey URL.
            self.cur_survey.clone()
        };
        let mut procs = Vec::new();
        for j in 0..m {
            procs.push(
                Proc::spawn(
                    format!("stopped {j}"),
                    &[
                        "--child-host".into(),
                        survey.clone(),
                        (STOP_PORT + j as u32).to_string(),
                        "1".into(),
                    ],
                )
                .map_err(|e| format!("spawn: {e}"))?,
            );
        }
        for p in &mut procs {
            parse_up(&p.line(Duration::from_secs(20))?).ok_or("odd member output")?;
        }
        let names: Vec<String> = (0..m).map(|j| member_name(STOP_PORT + j as u32)).collect();
        if !subs.t.wait(Duration::from_secs(20), |g| {
            names.iter().all(|nm| Tracker::all_joined(g, nm).is_some())
        }) {
            return Err("stopped members never joined".into());
        }
        let mut t_stop = Vec::new();
        for p in &procs {
            std::thread::sleep(Duration::from_millis(
                self.rng.range(0, self.cfg.interval_ms / 2 + 1),
            ));
            t_stop.push(now_ns());
            p.signal(libc::SIGSTOP);
        }
        let bound_ms = (self.cfg.interval_ms * self.cfg.evict as u64 + self.cfg.deadline_ms) as f64;
        let ok = subs
            .t
            .wait(Duration::from_millis(bound_ms as u64 * 2 + 2000), |g| {
                names.iter().all(|nm| Tracker::all_left(g, nm).is_some())
            });
        let (mut delays, mut reasons) = (Vec::new(), HashMap::<&str, u64>::new());
        {
            let g = subs.t.m.lock().unwrap();
            for (nm, t0) in names.iter().zip(&t_stop) {
                if let Some(t) = Tracker::all_left(&g, nm) {
                    delays.push(ms(t.saturating_sub(*t0)));
                    let r = g
                        .left_reason
                        .get(nm)
                        .and_then(|r| r.as_str())
                        .unwrap_or("none");
                    *reasons.entry(r).or_default() += 1;
                }
            }
        }
        drop(procs); // SIGKILL works on stopped processes
        subs.t.forget_names();
        self.raw.put("stop_ms", n, delays.clone());
        let mut j = summary(Json::new("sigstop").n("n", n as f64), &delays)
            .n("bound_ms", bound_ms)
            .n("interval_ms", self.cfg.interval_ms as f64)
            .n("evict_after", self.cfg.evict as f64)
            .n("deadline_ms", self.cfg.deadline_ms as f64)
            .b("all_evicted", ok);
        for (r, c) in reasons {
            j = j.n(&format!("reason_{r}"), c as f64);
        }
        self.emit(j);
        Ok(())
    }

    /// Scenario 7: the highest rate of joins + leaves per second at which every
    /// subscriber reaches each server position within one interval, with the same digest.
    fn churn(&mut self, n: usize, bulk: usize, srv: &mut Srv, subs: &Subs) -> Result<(), String> {
        let (workers, active) = (2usize, 10usize);
        let mut ch = Proc::spawn(
            "churn",
            &[
                "--child-churn".into(),
                srv.survey.clone(),
                format!("churn{n}"),
                active.to_string(),
                workers.to_string(),
            ],
        )
        .map_err(|e| format!("spawn churn: {e}"))?;
        if ch.line(Duration::from_secs(30))? != "ready" {
            return Err("churn process did not start".into());
        }
        let base = bulk + workers * active;
        if !srv.wait_count(base, Duration::from_secs(30))?
            || !subs.wait_count(base, Duration::from_secs(30))
        {
            return Err("churn members never joined".into());
        }
        let interval = self.cfg.interval_ns();
        let mut best: Option<Json> = None;
        let mut stopped_by = String::from("ladder exhausted");
        for &rate in &self.cfg.churn_rates.clone() {
            self.note(&format!("N={n}: churn at {rate} joins+leaves/s"));
            let seq0: Vec<u64> = subs.subs.iter().map(|s| s.position().1).collect();
            let resync0 = subs.resyncs();
            {
                let mut g = subs.t.m.lock().unwrap();
                g.log = Some(vec![Vec::new(); subs.subs.len()]);
            }
            subs.t.logging.store(true, Relaxed);
            let mut samples: Vec<(u64, u64, u64)> = Vec::new();
            let grace = if self.cfg.mode == "quick" { 100 } else { 1000 };
            ch.send(&format!("run {rate} {} {grace}", self.cfg.churn_secs))?;
            let deadline = now_ns() + ((self.cfg.churn_secs + 60.0) * 1e9) as u64;
            let done = loop {
                let ts = now_ns();
                let (seq, _, dig) = srv.pos()?;
                samples.push((seq, dig, ts));
                match ch.try_line(Duration::from_millis(10)) {
                    Ok(Some(l)) => break Some(l),
                    Ok(None) => {}
                    Err(e) => {
                        self.note(&format!("N={n}: the churn member process died: {e}"));
                        break None;
                    }
                }
                if now_ns() > deadline {
                    return Err("churn process hangs".into());
                }
            };
            let end = now_ns() + interval;
            while now_ns() < end {
                let ts = now_ns();
                let (seq, _, dig) = srv.pos()?;
                samples.push((seq, dig, ts));
                std::thread::sleep(Duration::from_millis(10));
            }
            let Some(done) = done else {
                // A crash of the member process is a result, not a bench failure:
                // it is recorded, the ladder ends (see docs/BENCHMARKS.md).
                subs.t.logging.store(false, Relaxed);
                subs.t.m.lock().unwrap().log = None;
                self.emit(
                    Json::new("churn")
                        .n("n", n as f64)
                        .n("rate_target", rate)
                        .b("member_process_crashed", true)
                        .b("pass", false),
                );
                stopped_by = format!("member process crashed at {rate}/s");
                break;
            };
            let w: Vec<&str> = done.split_whitespace().collect();
            let events: f64 = w.get(1).and_then(|x| x.parse().ok()).unwrap_or(0.0);
            let elapsed: f64 = w.get(2).and_then(|x| x.parse().ok()).unwrap_or(1.0);
            let behind: f64 = w.get(3).and_then(|x| x.parse().ok()).unwrap_or(0.0);
            let hung: f64 = w.get(4).and_then(|x| x.parse().ok()).unwrap_or(0.0);
            let achieved = events / (elapsed / 1e9).max(self.cfg.churn_secs);
            subs.t.logging.store(false, Relaxed);
            let log = subs.t.m.lock().unwrap().log.take().unwrap_or_default();
            let (mut lags, mut compared, mut mismatches, mut unreached) =
                (Vec::new(), 0u64, 0u64, 0u64);
            for (i, li) in log.iter().enumerate() {
                for &(seq_s, dig_s, t_s) in &samples {
                    if seq_s <= seq0[i] {
                        continue;
                    }
                    let idx = li.partition_point(|e| e.0 < seq_s);
                    match li.get(idx) {
                        Some(&(seq, dig, t)) => {
                            lags.push(ms(t.saturating_sub(t_s)));
                            if seq == seq_s {
                                compared += 1;
                                if dig != dig_s {
                                    mismatches += 1;
                                }
                            }
                        }
                        None => unreached += 1,
                    }
                }
            }
            let (_, _, final_digest) = srv.pos()?;
            let final_ok = subs.subs.iter().all(|s| s.digest() == final_digest);
            let lags = sorted(lags);
            let max_lag = lags.last().copied().unwrap_or(0.0);
            let pass = unreached == 0 && mismatches == 0 && final_ok && max_lag <= ms(interval);
            let generator_bound = achieved < 0.9 * rate;
            let j = Json::new("churn")
                .n("n", n as f64)
                .n("rate_target", rate)
                .n("rate_achieved", achieved)
                .n("generator_behind_ms", ms(behind as u64))
                .n("hung_client_closes", hung)
                .n("server_samples", samples.len() as f64)
                .n("lag_p50_ms", pct(&lags, 50.0))
                .n("lag_p99_ms", pct(&lags, 99.0))
                .n("lag_max_ms", max_lag)
                .n("digests_compared", compared as f64)
                .n("digest_mismatches", mismatches as f64)
                .n("unreached", unreached as f64)
                .n("resyncs", (subs.resyncs() - resync0) as f64)
                .b("final_digest_equal", final_ok)
                .b("pass", pass);
            self.emit(j.clone());
            subs.t.forget_names();
            if pass {
                best = Some(j);
            }
            if !pass {
                stopped_by = format!("fails at {rate}/s");
                break;
            }
            if generator_bound {
                stopped_by = format!("load generator reached only {achieved:.0}/s of {rate}/s");
                break;
            }
            // Let the server's table settle back to the base count.
            let _ = srv.wait_count(base, Duration::from_secs(10))?;
        }
        let mut j = Json::new("churn_summary")
            .n("n", n as f64)
            .s("stopped_by", &stopped_by);
        if let Some(b) = best {
            j = j
                .opt("sustained_rate", b.num("rate_achieved"))
                .opt("lag_max_ms", b.num("lag_max_ms"));
        } else {
            j = j.raw("sustained_rate", "null");
        }
        self.emit(j);
        Ok(())
    }

    /// Scenario 8: members under a CPU-saturating busy loop; any member that leaves is
    /// a false eviction (none is stopped or killed).
    fn soak(&mut self) -> Result<(), String> {
        let n = self.cfg.soak_n;
        let secs = self.cfg.soak_secs;
        let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
        self.note(&format!(
            "soak: N={n} for {secs} s with {cores} busy-loop threads"
        ));
        let mut srv = Srv::start(&self.cfg)?;
        self.cur_survey = srv.survey.clone();
        let subs = Subs::start(&srv, self.cfg.subs)?;
        let hosts = start_hosts(
            &srv.survey,
            BULK_PORT,
            n,
            now_ns() + self.cfg.setup_budget.as_nanos() as u64,
        )?;
        if !subs.wait_count(n, Duration::from_secs(120)) {
            return Err("soak: subscribers never saw every member".into());
        }
        let mut burn = Proc::spawn("burner", &["--child-burn".into(), cores.to_string()])
            .map_err(|e| format!("spawn burner: {e}"))?;
        burn.line(Duration::from_secs(10))?;
        let (l0, s0, r0) = {
            let g = subs.t.m.lock().unwrap();
            (g.lefts, g.stale, subs.resyncs())
        };
        let load0 = loadavg();
        let t0 = now_ns();
        let end = t0 + (secs * 1e9) as u64;
        let mut next_note = t0 + 60_000_000_000;
        let mut min_count = usize::MAX;
        while now_ns() < end {
            std::thread::sleep(
                Duration::from_millis(200).min(Duration::from_nanos(end.saturating_sub(now_ns()))),
            );
            let (_, c, _) = srv.pos()?;
            min_count = min_count.min(c);
            if now_ns() >= next_note {
                next_note += 60_000_000_000;
                let g = subs.t.m.lock().unwrap();
                self.note(&format!(
                    "soak: {:.0} s, server count {c}, leaves seen {}",
                    ms(now_ns() - t0) / 1e3,
                    g.lefts - l0
                ));
            }
        }
        let load1 = loadavg();
        let burner_cpu = cpu_seconds(burn.pid()).unwrap_or(f64::NAN);
        drop(burn);
        let (lefts, stale, names, timeouts) = {
            let g = subs.t.m.lock().unwrap();
            let timeouts = g
                .left_reason
                .values()
                .filter(|r| **r == Reason::Timeout)
                .count();
            (g.lefts - l0, g.stale - s0, g.left.len(), timeouts)
        };
        let (_, final_count, _) = srv.pos()?;
        self.emit(
            Json::new("soak")
                .n("n", n as f64)
                .n("duration_s", ms(now_ns() - t0) / 1e3)
                .n("busy_threads", cores as f64)
                .n("burner_cpu_pct", burner_cpu / secs.max(1e-9) * 100.0)
                .opt("loadavg_start", load0)
                .opt("loadavg_end", load1)
                .n("false_evictions", names as f64)
                .n("evictions_timeout", timeouts as f64)
                .n("leave_events_seen", lefts as f64)
                .n("stale_updates", stale as f64)
                .n("resyncs", (subs.resyncs() - r0) as f64)
                .n(
                    "server_min_count",
                    if min_count == usize::MAX {
                        n
                    } else {
                        min_count
                    } as f64,
                )
                .n("server_final_count", final_count as f64),
        );
        drop(hosts);
        Ok(())
    }
}

fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

static START: OnceLock<u64> = OnceLock::new();

fn machine(cfg: &Cfg) -> Json {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map(|kb| kb / 1024.0 / 1024.0);
    let cmd = |c: &str, a: &[&str]| {
        std::process::Command::new(c)
            .args(a)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    Json::new("machine")
        .s("mode", cfg.mode)
        .s("cpu", &cpu)
        .n(
            "cpus",
            std::thread::available_parallelism().map_or(0, |c| c.get()) as f64,
        )
        .opt("mem_gib", mem_gib)
        .s("kernel", &cmd("uname", &["-r"]))
        .s("library", gopherdiscovery::VERSION)
        .s("commit", &cmd("git", &["rev-parse", "--short", "HEAD"]))
        .opt("loadavg", loadavg())
        .n("subscribers", cfg.subs as f64)
        .n("interval_ms", cfg.interval_ms as f64)
        .n("deadline_ms", cfg.deadline_ms as f64)
        .n("evict_after", cfg.evict as f64)
}

// ------------------------------------------------------------------ tables

fn f(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => {
            if v == v.trunc() && v.abs() < 1e12 {
                format!("{}", v as i64)
            } else if v.abs() >= 100.0 {
                format!("{v:.0}")
            } else if v.abs() >= 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.2}")
            }
        }
        _ => "–".into(),
    }
}

fn tables(results: &[Json]) -> String {
    let of = |s: &str| -> Vec<&Json> {
        results
            .iter()
            .filter(|j| j.get("scenario") == Some(&json_str(s)))
            .collect()
    };
    // N as asked, and how many members were really there when not all connected.
    let incomplete: HashMap<String, String> = of("setup")
        .iter()
        .filter(|j| j.get("complete") == Some("false"))
        .map(|j| {
            (
                f(j.num("n")),
                format!("{} ({} connected)", f(j.num("n")), f(j.num("members"))),
            )
        })
        .collect();
    let nl = |j: &Json| -> String {
        let n = f(j.num("n"));
        incomplete.get(&n).cloned().unwrap_or(n)
    };
    let mut o = String::new();
    let lat = |o: &mut String, title: &str, s: &str| {
        o.push_str(&format!(
            "\n**{title}** (ms)\n\n| N | samples | p50 | p99 | max |\n| ---: | ---: | ---: | ---: | ---: |\n"
        ));
        for j in of(s) {
            o.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                nl(j),
                f(j.num("samples")),
                f(j.num("p50_ms")),
                f(j.num("p99_ms")),
                f(j.num("max_ms"))
            ));
        }
    };
    lat(
        &mut o,
        "1. Join → every subscriber has the new member",
        "join",
    );
    lat(
        &mut o,
        "2. `kill -9` of a member process → every subscriber has seen it leave",
        "kill9",
    );
    o.push_str("\n`kill -9` p99 by when the kill landed: within 100 ms after a regular survey (while N answers arrive) or between rounds (ms)\n\n| N | kills within a round | p99 within a round | p99 between rounds |\n| ---: | ---: | ---: | ---: |\n");
    for j in of("kill9") {
        o.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            nl(j),
            f(j.num("in_round_samples")),
            f(j.num("in_round_p99_ms")),
            f(j.num("between_rounds_p99_ms"))
        ));
    }
    o.push_str("\n**3. SIGSTOP of a member → evicted, every subscriber notified** (ms)\n\n| N | samples | min | p50 | max | bound: interval × evict_after + deadline |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for j in of("sigstop") {
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            nl(j),
            f(j.num("samples")),
            f(j.num("min_ms")),
            f(j.num("p50_ms")),
            f(j.num("max_ms")),
            f(j.num("bound_ms"))
        ));
    }
    o.push_str("\n**4. Bytes on the wire** (TCP payload: NNG's framing included, TCP/IP headers not)\n\n| N | per change per subscriber | of which name + metadata | overhead | heartbeat per interval per subscriber | per survey round at the server (out + in) |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let steady = of("steady");
    for j in of("bytes_per_change") {
        let st = steady.iter().find(|s| s.num("n") == j.num("n"));
        o.push_str(&format!(
            "| {} | {} B | {} B | {} B | {} B | {} |\n",
            nl(j),
            f(j.num("bytes_per_change_per_sub")),
            f(j.num("name_and_metadata_bytes")),
            f(j.num("overhead_bytes")),
            f(st.and_then(|s| s.num("publish_bytes_per_round_per_sub"))),
            match st {
                Some(s) => format!(
                    "{} B ({} + {})",
                    f(s.num("survey_round_bytes")),
                    f(s.num("survey_round_bytes_out")),
                    f(s.num("survey_round_bytes_in"))
                ),
                None => "–".into(),
            }
        ));
    }
    o.push_str("\n**5. Late subscriber: start → full view** (ms)\n\n| N | samples | snapshot bytes | p50 | p99 | max |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for j in of("late_subscriber") {
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            nl(j),
            f(j.num("samples")),
            f(j.num("snapshot_bytes")),
            f(j.num("p50_ms")),
            f(j.num("p99_ms")),
            f(j.num("max_ms"))
        ));
    }
    o.push_str("\n**6. Steady state** (no changes; server alone in its process)\n\n| N | interval | server CPU (% of one core) | server RSS (MB) | server threads | member CPU (µs/s each) | member RSS (kB each) |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for j in &steady {
        o.push_str(&format!(
            "| {} | {} ms | {} | {} | {} | {} | {} |\n",
            nl(j),
            f(j.num("interval_ms")),
            f(j.num("server_cpu_pct")),
            f(j.num("server_rss_mb")),
            f(j.num("server_threads")),
            f(j.num("member_cpu_us_per_s")),
            f(j.num("member_rss_kb"))
        ));
    }
    o.push_str("\n**7. Churn: highest sustained joins + leaves per second** (every subscriber reaches each sampled server position within one interval, same digest)\n\n| N | sustained rate (/s) | max lag at that rate (ms) | ladder stopped by |\n| ---: | ---: | ---: | --- |\n");
    for j in of("churn_summary") {
        o.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            nl(j),
            f(j.num("sustained_rate")),
            f(j.num("lag_max_ms")),
            j.get("stopped_by").unwrap_or("").trim_matches('"')
        ));
    }
    o.push_str("\n**8. False evictions with every core saturated by a busy loop**\n\n| N | duration (s) | busy threads | false evictions | stale updates | resyncs |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for j in of("soak") {
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            nl(j),
            f(j.num("duration_s")),
            f(j.num("busy_threads")),
            f(j.num("false_evictions")),
            f(j.num("stale_updates")),
            f(j.num("resyncs"))
        ));
    }
    let two = of("twoservers_kill9");
    if !two.is_empty() {
        o.push_str("\n**Several servers: members answer every server, subscribers merge them** (`kill -9` of a member process → every subscriber has seen it leave, ms; bytes per change per subscriber: what it receives from all servers together)\n\n| N | servers | samples | p50 | p99 | max | bytes per change per subscriber | per server |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for j in two {
            let k = j.num("servers").unwrap_or(0.0) as usize;
            let per: Vec<String> = (0..k)
                .map(|i| {
                    format!(
                        "{} B",
                        f(j.num(&format!("server{i}_bytes_per_change_per_sub")))
                    )
                })
                .collect();
            o.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} B | {} |\n",
                nl(j),
                f(j.num("servers")),
                f(j.num("samples")),
                f(j.num("p50_ms")),
                f(j.num("p99_ms")),
                f(j.num("max_ms")),
                f(j.num("bytes_per_change_per_sub")),
                per.join(" + ")
            ));
        }
    }
    // Targets.
    let at = |s: &str, n: f64, k: &str| -> Option<f64> {
        if incomplete.contains_key(&f(Some(n))) {
            return None; // not measured at that N
        }
        of(s)
            .iter()
            .find(|j| j.num("n") == Some(n))
            .and_then(|j| j.num(k))
    };
    let mut rows: Vec<(String, String, Option<bool>)> = Vec::new();
    let mut le = |what: &str, v: Option<f64>, limit: f64, unit: &str| {
        rows.push((
            format!("{what} ≤ {limit} {unit}"),
            format!("{} {unit}", f(v)),
            v.map(|v| v <= limit),
        ));
    };
    le(
        "kill -9 → all subscribers notified, p99, N = 1,000",
        at("kill9", 1000.0, "p99_ms"),
        5.0,
        "ms",
    );
    le(
        "join → all subscribers notified, p99, N = 1,000",
        at("join", 1000.0, "p99_ms"),
        20.0,
        "ms",
    );
    le(
        "bytes per change per subscriber, N = 10,000, beyond name + metadata",
        at("bytes_per_change", 10000.0, "overhead_bytes"),
        256.0,
        "B",
    );
    le(
        "late subscriber full view, N = 10,000 (p50)",
        at("late_subscriber", 10000.0, "p50_ms"),
        50.0,
        "ms",
    );
    le(
        "server CPU, N = 10,000, 1 s interval",
        at("steady", 10000.0, "server_cpu_pct"),
        10.0,
        "% of one core",
    );
    le(
        "server RSS, N = 10,000",
        at("steady", 10000.0, "server_rss_mb"),
        200.0,
        "MB",
    );
    let fe = of("soak")
        .first()
        .map(|j| (j.num("false_evictions"), j.num("duration_s"), j.num("n")));
    if let Some((v, d, n)) = fe {
        rows.push((
            format!(
                "false evictions, N = {}, {} s, cores saturated = 0",
                f(n),
                f(d)
            ),
            f(v),
            v.map(|v| v == 0.0),
        ));
    }
    o.push_str("\n**Targets**\n\n| target | measured | |\n| --- | ---: | --- |\n");
    for (t, m, ok) in rows {
        let verdict = match ok {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        o.push_str(&format!("| {t} | {m} | {verdict} |\n"));
    }
    o
}

// ------------------------------------------------------------------ main

impl Bench {
    fn run(&mut self) -> Result<(), String> {
        for n in self.cfg.ns.clone() {
            if let Err(e) = self.run_n(n) {
                self.note(&format!("N={n} failed: {e}"));
                self.failures.push(format!("N={n}: {e}"));
            }
        }
        if !self.cfg.skip.contains("twoservers") {
            // One N only: 20 in quick mode (a few samples, a few seconds), else the
            // largest asked N up to 1,000 (two servers double every member's sockets).
            let n = if self.cfg.mode == "quick" {
                Some(20)
            } else {
                self.cfg.ns.iter().copied().filter(|&n| n <= 1000).max()
            };
            if let Some(n) = n {
                for servers in [1, 2] {
                    if let Err(e) = self.two_servers(n, servers) {
                        self.note(&format!("twoservers N={n} servers={servers} failed: {e}"));
                        self.failures
                            .push(format!("twoservers N={n} servers={servers}: {e}"));
                    }
                }
            }
        }
        if !self.cfg.skip.contains("soak") && self.cfg.soak_secs > 0.0 {
            if let Err(e) = self.soak() {
                self.note(&format!("soak failed: {e}"));
                self.failures.push(format!("soak: {e}"));
            }
        }
        Ok(())
    }
}

fn main() {
    START.get_or_init(now_ns);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--child-server") => child::server(&args[1..]),
        Some("--child-host") => child::host(&args[1..]),
        Some("--child-churn") => child::churn(&args[1..]),
        Some("--child-burn") => child::burn(&args[1..]),
        _ => {}
    }
    let cfg = match Cfg::parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("scenarios: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = gopherdiscovery::raise_fd_limit() {
        eprintln!("scenarios: could not raise the open-file limit: {e}");
    }
    let m = machine(&cfg);
    println!("{}", m.line());
    let (seal, check, bytes) = util::auth_cost(200_000);
    println!(
        "auth: {} — HMAC-SHA256 of a {bytes}-byte signed ANSWER: seal {seal:.0} ns, check {check:.0} ns",
        if std::env::var_os(util::KEYRING_ENV).is_some() {
            "keyring on (every message signed and checked)"
        } else {
            "off (--keyring signs every message)"
        }
    );
    let out = cfg.out.clone();
    let mut b = Bench {
        cfg,
        results: Vec::new(),
        raw: Raw::default(),
        rng: Rng::new(),
        failures: Vec::new(),
        cur_survey: String::new(),
    };
    let _ = b.run();
    let table = tables(&b.results);
    println!("{table}");
    if let Some(dir) = out {
        let mut lines = vec![m
            .clone()
            .raw("loadavg_end", &json_num(loadavg().unwrap_or(f64::NAN)))
            .line()];
        lines.extend(b.results.iter().map(Json::line));
        let w = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(dir.join("results.jsonl"), lines.join("\n") + "\n"))
            .and_then(|_| std::fs::write(dir.join("raw.json"), b.raw.to_json(&m)))
            .and_then(|_| std::fs::write(dir.join("tables.md"), &table));
        if let Err(e) = w {
            eprintln!("scenarios: writing {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
    if !b.failures.is_empty() {
        for f in &b.failures {
            eprintln!("scenarios: FAILED {f}");
        }
        std::process::exit(1);
    }
    b.note("done");
}
