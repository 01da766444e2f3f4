//! Helpers of the scenario benchmark: a clock shared by processes, child processes
//! that always die with us, /proc and `ss` readers, percentiles and JSON lines.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on this machine, so
/// a time taken in a member process compares with one taken in the bench.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The environment variable that makes every server, member and subscriber of the
/// bench (children included) use the bench's keyring (`--keyring`).
pub const KEYRING_ENV: &str = "GD_BENCH_KEYRING";

/// The bench's authentication: a fixed 32-byte key when `--keyring` was given
/// (auth `required`), else off.
pub fn bench_auth() -> gopherdiscovery::Auth {
    if std::env::var_os(KEYRING_ENV).is_some() {
        let ring = gopherdiscovery::Keyring::new([[7u8; 32]]).expect("a 32-byte key");
        gopherdiscovery::Auth::with_keyring(ring)
    } else {
        gopherdiscovery::Auth::off()
    }
}

/// Nanoseconds per seal and per check of a signed ANSWER of a typical member
/// (name `http://127.0.0.1:40000`, metadata `zone=a`), over `n` messages each.
pub fn auth_cost(n: u32) -> (f64, f64, usize) {
    use gopherdiscovery::auth::Role;
    let auth = gopherdiscovery::Auth::with_keyring(
        gopherdiscovery::Keyring::new([[7u8; 32]]).expect("a 32-byte key"),
    );
    let mut m = gopherdiscovery::Member::new("http://127.0.0.1:40000", 1);
    m.metadata.insert("zone".into(), "a".into());
    let body = gopherdiscovery::wire::encode_answer(&m, 1, 2);
    let t0 = now_ns();
    let mut sealed = Vec::new();
    for _ in 0..n {
        sealed = auth.seal(Role::Answer, std::hint::black_box(body.clone()));
        std::hint::black_box(&sealed);
    }
    let t1 = now_ns();
    let mut ok = 0;
    for _ in 0..n {
        ok += usize::from(
            auth.check(Role::Answer, std::hint::black_box(&sealed))
                .is_ok(),
        );
    }
    let t2 = now_ns();
    assert_eq!(ok, n as usize);
    (
        (t1 - t0) as f64 / f64::from(n),
        (t2 - t1) as f64 / f64::from(n),
        sealed.len(),
    )
}

pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// xorshift64*: random pauses between samples, so they land at every phase of the
/// survey round. Not for anything else.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        Rng(gopherdiscovery::random_u64() | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// A child process of this bench (a re-exec of this binary in a hidden mode). It
/// gets SIGKILL when the bench dies for any reason (PR_SET_PDEATHSIG; children are
/// spawned from the main thread only, which lives as long as the process), and
/// Drop kills and reaps it, also while unwinding from a panic.
pub struct Proc {
    pub what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Proc {
    pub fn spawn(what: impl Into<String>, args: &[String]) -> std::io::Result<Proc> {
        let what = what.into();
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // A session of its own is a scheduling group of its own (Linux
                // autogroup): the server is not starved by 10,000 member threads
                // that a survey makes runnable at once, as on separate machines.
                libc::setsid();
                if libc::getppid() != parent {
                    libc::_exit(1); // the bench died before prctl took effect
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("bench-read-{}", child.id()))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    match line {
                        Ok(l) => {
                            if tx.send(l).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            })?;
        Ok(Proc {
            what,
            child,
            stdin,
            lines: rx,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line the child printed, or an error naming the child.
    pub fn line(&mut self, timeout: Duration) -> Result<String, String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Ok(l),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "{} (pid {}) printed nothing for {:?}",
                self.what,
                self.pid(),
                timeout
            )),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.try_wait().ok().flatten();
                Err(format!(
                    "{} (pid {}) closed its output (exit status {:?})",
                    self.what,
                    self.pid(),
                    status
                ))
            }
        }
    }

    /// The next line if one comes within `timeout`; an error when the child is gone.
    pub fn try_line(&mut self, timeout: Duration) -> Result<Option<String>, String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Ok(Some(l)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(format!(
                "{} (pid {}) closed its output",
                self.what,
                self.pid()
            )),
        }
    }

    /// Sends a command line to the child.
    pub fn send(&mut self, cmd: &str) -> Result<(), String> {
        let what = self.what.clone();
        let w = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{what}: stdin closed"))?;
        writeln!(w, "{cmd}")
            .and_then(|_| w.flush())
            .map_err(|e| format!("{what}: {e}"))
    }

    /// One request line, one reply line.
    pub fn ask(&mut self, cmd: &str, timeout: Duration) -> Result<String, String> {
        self.send(cmd)?;
        self.line(timeout)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Kills (SIGKILL) and reaps the child.
    pub fn kill(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Reaps an already killed child.
    pub fn reap(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// CPU time (user + system, in seconds) of a process, threads that ended included.
pub fn cpu_seconds(pid: i32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((utime + stime) as f64 / hz)
}

/// A field of /proc/PID/status in kB (VmRSS, VmHWM, Threads…).
pub fn status_field(pid: i32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l[field.len() + 1..].split_whitespace().next()?.parse().ok())
}

/// TCP payload bytes (sent, received) over every established connection whose
/// local port is `port`, from the kernel's tcp_info (`ss -ti`). This counts exactly
/// what NNG handed to TCP (its 8-byte length prefixes and SP headers included),
/// without TCP/IP headers. None when `ss` is missing or too old.
pub fn tcp_bytes(port: u16) -> Option<(u64, u64, usize)> {
    let out = Command::new("ss")
        .args(["-Htin", "state", "established"])
        .arg(format!("( sport = :{port} )"))
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut sent, mut recv, mut conns, mut seen_field) = (0u64, 0u64, 0usize, false);
    for tok in text.split_whitespace() {
        if let Some(v) = tok.strip_prefix("bytes_sent:") {
            sent += v.parse::<u64>().unwrap_or(0);
            seen_field = true;
            conns += 1;
        } else if let Some(v) = tok.strip_prefix("bytes_received:") {
            recv += v.parse::<u64>().unwrap_or(0);
        }
    }
    if !seen_field && !text.trim().is_empty() {
        return None;
    }
    Some((sent, recv, conns))
}

pub fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.parse().ok()
}

/// Nearest-rank percentile of sorted values.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// One JSON object, built field by field, printed as one line.
#[derive(Default, Clone)]
pub struct Json {
    fields: Vec<(String, String)>,
}

pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

pub fn json_num(x: f64) -> String {
    if x.is_finite() {
        let r = (x * 1000.0).round() / 1000.0;
        if r == r.trunc() && r.abs() < 1e15 {
            format!("{}", r as i64)
        } else {
            format!("{r}")
        }
    } else {
        "null".into()
    }
}

impl Json {
    pub fn new(scenario: &str) -> Json {
        Json::default().s("scenario", scenario)
    }
    pub fn s(mut self, k: &str, v: &str) -> Json {
        self.fields.push((k.into(), json_str(v)));
        self
    }
    pub fn n(mut self, k: &str, v: f64) -> Json {
        self.fields.push((k.into(), json_num(v)));
        self
    }
    pub fn opt(self, k: &str, v: Option<f64>) -> Json {
        match v {
            Some(x) => self.n(k, x),
            None => self.raw(k, "null"),
        }
    }
    pub fn b(self, k: &str, v: bool) -> Json {
        self.raw(k, if v { "true" } else { "false" })
    }
    pub fn raw(mut self, k: &str, v: &str) -> Json {
        self.fields.push((k.into(), v.into()));
        self
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn num(&self, k: &str) -> Option<f64> {
        self.get(k)?.parse().ok()
    }
    pub fn line(&self) -> String {
        let body: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), v))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

/// Raw samples per series and N, written as one JSON object (for the plot).
#[derive(Default)]
pub struct Raw {
    pub series: BTreeMap<String, BTreeMap<usize, Vec<f64>>>,
}

impl Raw {
    pub fn put(&mut self, series: &str, n: usize, v: Vec<f64>) {
        self.series.entry(series.into()).or_default().insert(n, v);
    }
    pub fn to_json(&self, machine: &Json) -> String {
        let mut o = String::from("{\"machine\":");
        o.push_str(&machine.line());
        for (name, per_n) in &self.series {
            o.push_str(&format!(",\n{}:{{", json_str(name)));
            let parts: Vec<String> = per_n
                .iter()
                .map(|(n, v)| {
                    let xs: Vec<String> = v.iter().map(|x| json_num(*x)).collect();
                    format!("\"{n}\":[{}]", xs.join(","))
                })
                .collect();
            o.push_str(&parts.join(","));
            o.push('}');
        }
        o.push_str("\n}\n");
        o
    }
}
