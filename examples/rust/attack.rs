//! Runs one attack of `tests/attack_kit` against a `gopherdiscovery serve` child
//! process and prints one row of the "Hostile input" table of docs/BENCHMARKS.md:
//! the server's peak RSS, its CPU time, how long a real member joining during the
//! attack took to reach a watcher, and the watcher's state at the end.
//!
//! ```text
//! cargo run --release --example attack -- <frame|flood|names|idle|fat> [--server BIN]
//! ```
//!
//! BIN defaults to `target/release/gopherdiscovery`; point it at an older build to
//! compare. Everything is on 127.0.0.1 with ports chosen by the kernel; every
//! child is killed at the end.

#[path = "../../tests/attack_kit/mod.rs"]
mod attack_kit;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use attack_kit::*;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &str, args: &[&str]) -> (Kill, mpsc::Receiver<String>) {
    let mut c = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server binary");
    let out = c.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    (Kill(c), rx)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let attack = args.first().cloned().unwrap_or_default();
    let bin = args
        .iter()
        .position(|a| a == "--server")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "target/release/gopherdiscovery".into());
    let (server, lines) = spawn(
        &bin,
        &[
            "serve",
            "--survey",
            "tcp://127.0.0.1:0",
            "--publish",
            "tcp://127.0.0.1:0",
            "--snapshot",
            "tcp://127.0.0.1:0",
            "--log-level",
            "off",
        ],
    );
    let line = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("serving line");
    let url = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let (survey, publish, snapshot) = (url("survey"), url("publish"), url("snapshot"));
    let pid = server.0.id();
    let (_watcher, watch) = spawn(
        &bin,
        &[
            "watch",
            "--publish",
            &publish,
            "--snapshot",
            &snapshot,
            "--json",
        ],
    );
    watch
        .recv_timeout(Duration::from_secs(30))
        .expect("the watcher's first line");
    let cpu0 = cpu_time(pid);

    let s = survey.clone();
    let run: Box<dyn FnOnce() -> String + Send> = match attack.as_str() {
        // 4 connections on the publish socket each claim 1 GiB and send 256 MiB.
        "frame" => Box::new(move || {
            let t: Vec<_> = (0..4)
                .map(|_| {
                    let p = publish.clone();
                    std::thread::spawn(move || frame_bomb(&p, SUB, 1 << 30, 256 << 20))
                })
                .collect();
            let taken: usize = t.into_iter().map(|t| t.join().unwrap()).sum();
            format!("{} MiB taken", taken >> 20)
        }),
        // 4 connections answer distinct names for 20 s.
        "flood" => Box::new(move || {
            let n = answer_flood(&s, 4, usize::MAX, 0, Duration::from_secs(20));
            format!("{n} answers")
        }),
        // One connection announces 100,000 names and stays silent.
        "names" => Box::new(move || {
            let r = respondent(&s);
            let n = (0..100_000)
                .filter(|i| announce(&r, &gopherdiscovery::Member::new(format!("n-{i}"), 1)))
                .count();
            std::thread::sleep(Duration::from_secs(15)); // eviction happens meanwhile
            format!("{n} names")
        }),
        // 1,000 connections complete the handshake and say nothing, for 15 s.
        "idle" => Box::new(move || {
            let c = idle_connections(&s, 1000);
            let n = c.len();
            std::thread::sleep(Duration::from_secs(15));
            format!("{n} idle connections")
        }),
        // 16 connections announce 1,019 members each with 4 KiB of metadata.
        "fat" => Box::new(move || {
            let rs: Vec<_> = (0..16).map(|_| respondent(&s)).collect();
            let mut n = 0;
            for (c, r) in rs.iter().enumerate() {
                for i in 0..1019 {
                    let mut m = gopherdiscovery::Member::new(format!("fat-{c}-{i}"), 1);
                    m.metadata.insert("pad".into(), "x".repeat(4096));
                    n += announce(r, &m) as usize;
                }
            }
            std::thread::sleep(Duration::from_secs(15));
            format!("{n} fat answers")
        }),
        _ => {
            eprintln!("usage: attack <frame|flood|names|idle|fat> [--server BIN]");
            std::process::exit(2);
        }
    };
    let t = Instant::now();
    let attacker = std::thread::spawn(run);
    std::thread::sleep(Duration::from_secs(2)); // the attack is under way
    let _member = spawn(
        &bin,
        &["join", "--service", "real-member", "--survey", &survey],
    );
    let joined = Instant::now();
    let mut seen = None;
    let mut last = String::new();
    while joined.elapsed() < Duration::from_secs(60) {
        if let Ok(l) = watch.recv_timeout(Duration::from_millis(100)) {
            if seen.is_none() && l.contains("\"real-member\"") {
                seen = Some(joined.elapsed());
            }
            last = l;
        }
        if seen.is_some() {
            break;
        }
    }
    let what = attacker.join().unwrap();
    // The watcher's state after the attack: its latest line, or stale if silent.
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if let Ok(l) = watch.recv_timeout(Duration::from_millis(100)) {
            last = l;
        }
    }
    let state = ["live", "syncing", "stale"]
        .into_iter()
        .find(|s| last.contains(&format!("\"state\":\"{s}\"")))
        .unwrap_or("no update");
    let (peak, _) = rss_kib(pid);
    println!(
        "| {attack} ({what}, {:.0} s) | {} MiB | {:.1} s | {} | {state} |",
        t.elapsed().as_secs_f64(),
        peak / 1024,
        (cpu_time(pid) - cpu0).as_secs_f64(),
        seen.map_or("not within 60 s".into(), |d| format!(
            "{:.2} s",
            d.as_secs_f64()
        )),
    );
}
