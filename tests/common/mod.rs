//! Shared helpers of the process tests: CLI child processes that are killed on drop,
//! temporary ipc:// addresses, and condition waits with generous deadlines.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Generous: a loaded CI machine is slow, but a hang must still fail.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gopherdiscovery")
}

/// A temporary directory for ipc:// socket files, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "gd-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub fn url(&self, name: &str) -> String {
        format!("ipc://{}/{name}", self.0.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` until it holds or the deadline passes (then panics with `what`).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A CLI child process. Its stdout lines arrive on `lines`; stderr is kept in a
/// buffer. Killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub child: Child,
    pub lines: Receiver<String>,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
    pub seen: Vec<String>,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gopherdiscovery");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let keep = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = keep.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Proc {
            child,
            lines: rx,
            stderr,
            seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the next stdout line.
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(l) => {
                self.seen.push(l.clone());
                l
            }
            Err(_) => panic!(
                "no line from {:?} within the deadline; seen {:?}; stderr: {}",
                self.child.id(),
                self.seen,
                self.stderr.lock().unwrap()
            ),
        }
    }

    /// Reads lines until one satisfies `pred`; returns it.
    pub fn line_where(&mut self, what: &str, mut pred: impl FnMut(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "timed out waiting for {what}; seen {:#?}; stderr: {}",
                    self.seen,
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    /// Reads JSON lines until one satisfies `pred`.
    pub fn json_where(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let l = self.line_where(what, |l| {
            serde_json::from_str(l).map(|v| pred(&v)).unwrap_or(false)
        });
        serde_json::from_str(&l).unwrap()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Sends `sig` and waits for the exit status.
    pub fn stop_with(&mut self, sig: i32) -> std::process::ExitStatus {
        self.signal(sig);
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < end,
                "process {} did not exit after signal {sig}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` on three fresh ipc:// URLs in `dir`, with fast timings; waits for its
/// "serving" line.
pub fn serve(dir: &Scratch, extra: &[&str]) -> Proc {
    let (s, p, n) = (dir.url("survey"), dir.url("publish"), dir.url("snapshot"));
    let mut args = vec!["serve", "--survey", &s, "--publish", &p, "--snapshot", &n];
    args.extend_from_slice(extra);
    let mut proc = Proc::spawn(&args);
    let line = proc.next_line();
    assert!(
        line.starts_with("serving "),
        "unexpected first line {line:?}"
    );
    proc
}

pub fn join(dir: &Scratch, name: &str, extra: &[&str]) -> Proc {
    let s = dir.url("survey");
    let mut args = vec!["join", "--name", name, "--survey", &s];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&args);
    let line = p.next_line();
    assert!(
        line.starts_with(&format!("joined {name} ")),
        "unexpected first line {line:?}"
    );
    p
}

pub fn watch(dir: &Scratch) -> Proc {
    let (p, n) = (dir.url("publish"), dir.url("snapshot"));
    Proc::spawn(&["watch", "--publish", &p, "--snapshot", &n, "--json"])
}

pub fn peers(v: &serde_json::Value) -> Vec<String> {
    v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

/// True when `v` carries an event of `kind` for `name` with `reason`.
pub fn has_event(v: &serde_json::Value, kind: &str, name: &str, reason: Option<&str>) -> bool {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == kind && e["name"] == name && e["reason"].as_str() == reason)
}

/// A 64-bit identifier of the CLI's JSON: a 16-digit lowercase hex string.
pub fn hex_id(v: &serde_json::Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("{v} is not a string"));
    assert!(
        s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{s:?} is not 16 lowercase hex digits"
    );
    u64::from_str_radix(s, 16).unwrap()
}

/// Waits until the process's stderr holds `needle`; returns all of it.
pub fn stderr_with(p: &Proc, needle: &str) -> String {
    let mut text = String::new();
    wait_until(&format!("{needle:?} on stderr"), || {
        text = p.stderr.lock().unwrap().clone();
        text.contains(needle)
    });
    text
}
