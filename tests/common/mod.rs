//! Shared helpers of the process tests: CLI child processes that are killed on drop,
//! temporary ipc:// addresses, and condition waits with generous deadlines.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
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

/// The environment variables the CLI takes a key from: removed from every
/// child's environment unless a test sets them.
pub const KEY_ENV: [&str; 2] = ["GOPHERDISCOVERY_KEYRING_FILE", "GOPHERDISCOVERY_KEY"];

/// A command for the CLI with `args` and `env`, without any inherited key.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    for k in KEY_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        Proc::spawn_env(args, &[])
    }

    /// [`Proc::spawn`] with environment variables set.
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut child = command(args, env)
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

/// `serve --http 127.0.0.1:0` on the three URLs of [`serve`]; returns the process
/// and the bound HTTP address (read from the serving line).
pub fn serve_http(dir: &Scratch, extra: &[&str]) -> (Proc, String) {
    serve_http_env(dir, extra, &[])
}

/// [`serve_http`] with environment variables set.
pub fn serve_http_env(dir: &Scratch, extra: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
    let (s, p, n) = (dir.url("survey"), dir.url("publish"), dir.url("snapshot"));
    let mut args = vec!["serve", "--survey", &s, "--publish", &p, "--snapshot", &n];
    args.extend_from_slice(&["--http", "127.0.0.1:0"]);
    args.extend_from_slice(extra);
    let mut proc = Proc::spawn_env(&args, env);
    let line = proc.next_line();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .unwrap_or_else(|| panic!("no http= on {line:?}"))
        .to_string();
    assert!(!addr.ends_with(":0"), "{line}");
    eprintln!("http endpoint at {addr}");
    (proc, addr)
}

/// Sends a GET; returns the open stream (the answer is read by [`answer`]).
pub fn send_get(addr: &str, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s
}

/// Status code, headers (lowercased names) and body.
pub fn answer(mut s: TcpStream) -> (u16, String, String) {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, head.to_lowercase(), body.to_string())
}

pub fn get(addr: &str, path: &str) -> (u16, String, String) {
    answer(send_get(addr, path))
}

/// The value of one sample of a Prometheus text exposition, named with its
/// labels as printed (`gopherdiscovery_auth_dropped_total{reason="bad_mac"}`).
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// [`sample`] of the server's /metrics now; panics when the sample is absent.
pub fn scrape(addr: &str, name: &str) -> f64 {
    let (code, _, body) = get(addr, "/metrics");
    assert_eq!(code, 200, "{body}");
    sample(&body, name).unwrap_or_else(|| panic!("no sample {name} in {body}"))
}

/// Waits until the server at `addr` completed `n` more survey rounds.
pub fn wait_rounds(addr: &str, n: f64) {
    let start = scrape(addr, "gopherdiscovery_rounds_total");
    wait_until(&format!("{n} more survey rounds"), || {
        scrape(addr, "gopherdiscovery_rounds_total") >= start + n
    });
}

/// Writes a keyring file (one base64 key per line, primary first) with mode
/// 0600, as an operator would: to a temporary file renamed over the old one, so
/// a process reloading on SIGHUP never reads half a file.
pub fn write_keyring(path: &std::path::Path, keys: &[&str]) {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut text = String::from("# written by a test\n");
    for k in keys {
        text.push_str(k);
        text.push('\n');
    }
    std::fs::write(&tmp, text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A new key from `gopherdiscovery keygen` (base64, no newline).
pub fn keygen() -> String {
    let out = command(&["keygen"], &[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "{text:?}"
    );
    text.trim_end().to_string()
}

/// The key id (8 hex digits) of a base64 key, as the library computes it.
pub fn key_id(b64: &str) -> String {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    gopherdiscovery::Keyring::key_id_of(&raw)
        .unwrap()
        .to_string()
}
