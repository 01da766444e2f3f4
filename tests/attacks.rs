//! Hostile input, from outside, on loopback: each test starts a server (a real
//! `gopherdiscovery serve` process where memory is the promise, an in-process one
//! where its counters are), runs one attack from raw sockets, and asserts what the
//! server promises: memory stays bounded, a real member joining during the attack
//! appears, watchers stay live with the server's view, surveys keep coming.
//! Every attack is bounded in count and time; children are killed on drop.
//!
//! By hand, against any server binary (the numbers of docs/BENCHMARKS.md):
//! `cargo run --example attack -- <frame|flood|names|idle|fat|snapshot> [--server BIN]`.

mod attack_kit;
mod common;

use std::time::Duration;

use attack_kit::*;
use common::*;
use gopherdiscovery::{Client, Limits, Member, Server, Subscriber};

/// `serve` on tcp port 0 with fast timings; returns it with its survey, publish
/// and snapshot URLs as bound.
fn serve_tcp(extra: &[&str]) -> (Proc, [String; 3]) {
    let mut args = vec![
        "serve",
        "--survey",
        "tcp://127.0.0.1:0",
        "--publish",
        "tcp://127.0.0.1:0",
        "--snapshot",
        "tcp://127.0.0.1:0",
        "--interval",
        "200",
        "--deadline",
        "100",
    ];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&args);
    let line = p.next_line();
    let url = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {line:?}"))
            .to_string()
    };
    let urls = [url("survey"), url("publish"), url("snapshot")];
    (p, urls)
}

fn watch_tcp(urls: &[String; 3]) -> Proc {
    Proc::spawn(&[
        "watch",
        "--publish",
        &urls[1],
        "--snapshot",
        &urls[2],
        "--json",
    ])
}

fn join_tcp(urls: &[String; 3], name: &str) -> Proc {
    let mut p = Proc::spawn(&["join", "--service", name, "--survey", &urls[0]]);
    p.next_line();
    p
}

/// True when the process's main thread blocks SIGINT and SIGTERM (to take them
/// with sigwait): from then on a signal is handled, not fatal.
fn signals_blocked(pid: u32) -> bool {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mask = s
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let bit = |sig: i32| 1u64 << (sig - 1);
    mask & bit(libc::SIGINT) != 0 && mask & bit(libc::SIGTERM) != 0
}

/// Peak resident memory of the server, in MiB.
fn peak_mib(p: &Proc) -> u64 {
    rss_kib(p.child.id()).0 / 1024
}

/// Waits until a raw respondent on `survey` has received `n` more surveys.
fn surveys_keep_coming(survey: &str, n: usize) {
    let s = respondent(survey);
    let mut seen = 0;
    wait_until("surveys keep coming", || {
        while s.recv() {
            seen += 1;
        }
        seen >= n
    });
}

#[test]
fn frame_headers_claiming_gigabytes_close_the_connection_on_every_socket() {
    let (server, urls) = serve_tcp(&[]);
    // Four connections per socket each claim 16 GiB and try to send 32 MiB of it.
    for (url, peer) in [(&urls[0], RESPONDENT), (&urls[1], SUB), (&urls[2], REQ)] {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || frame_bomb(&url, peer, 16 << 30, 32 << 20))
            })
            .collect();
        for t in threads {
            let taken = t.join().unwrap();
            assert!(
                taken < 32 << 20,
                "{url}: the server read all {taken} bytes of a 16 GiB frame"
            );
        }
    }
    let peak = peak_mib(&server);
    assert!(peak < 100, "server peak RSS {peak} MiB after frame bombs");
    // Still serving.
    let _m = join_tcp(&urls, "after-bombs");
    let mut w = watch_tcp(&urls);
    w.json_where("member seen after the bombs", |v| {
        v["state"] == "live" && peers(v) == ["after-bombs"]
    });
}

#[test]
fn an_answer_flood_keeps_memory_bounded_and_a_real_join_is_seen_during_it() {
    let (server, urls) = serve_tcp(&[]);
    let survey = urls[0].clone();
    // 4 connections, distinct names, at most 400,000 answers or 20 s.
    let flood =
        std::thread::spawn(move || answer_flood(&survey, 4, 400_000, 0, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(500)); // let the flood get going
    let mut w = watch_tcp(&urls);
    let _m = join_tcp(&urls, "real-member");
    let v = w.json_where("the real member, during the flood", |v| {
        v["state"] == "live" && peers(v).contains(&"real-member".to_string())
    });
    assert!(
        !flood.is_finished(),
        "the flood ended before the real member was seen; make it longer: {v}"
    );
    surveys_keep_coming(&urls[0], 3);
    let sent = flood.join().unwrap();
    let peak = peak_mib(&server);
    assert!(
        peak < 150,
        "server peak RSS {peak} MiB after {sent} answers"
    );
    // One member per connection: 4 flood names at most, plus the real one.
    let out = std::process::Command::new(bin())
        .args(["members", "--snapshot", &urls[2]])
        .output()
        .unwrap();
    // The table's header line, then one row per member.
    let n = String::from_utf8_lossy(&out.stdout)
        .lines()
        .count()
        .saturating_sub(1);
    assert!((1..=5).contains(&n), "{n} members after the flood");
}

#[test]
fn idle_connections_are_closed_and_the_connection_cap_leaves_room_for_real_members() {
    let (mut server, urls) = serve_tcp(&["--max-connections", "16", "--log-level", "warn"]);
    let mut idle = idle_connections(&urls[0], 16);
    assert_eq!(idle.len(), 16);
    // The 17th is closed as it comes (after its handshake), with a warning.
    let mut extra = sp_connect(&urls[0], RESPONDENT).unwrap();
    assert!(
        closed_by_server(&mut extra),
        "the connection over the cap stays open"
    );
    wait_until("a warning about the cap", || {
        server.stderr.lock().unwrap().contains("max_connections")
    });
    // A real member joins while the squatters hold the cap: it gets in once they
    // are closed for answering nothing during evict_after rounds.
    let _m = join_tcp(&urls, "real-member");
    for t in idle.iter_mut() {
        assert!(closed_by_server(t), "an idle connection stays open");
    }
    let mut w = watch_tcp(&urls);
    w.json_where("the real member after the squatters", |v| {
        v["state"] == "live" && peers(v) == ["real-member"]
    });
    assert!(server.alive());
}

fn in_process(limits: Limits, per_connection: usize, legacy: bool) -> Server {
    in_process_every(Duration::from_millis(200), limits, per_connection, legacy)
}

fn in_process_every(
    interval: Duration,
    limits: Limits,
    per_connection: usize,
    legacy: bool,
) -> Server {
    Server::builder()
        .survey("tcp://127.0.0.1:0")
        .publish("tcp://127.0.0.1:0")
        .snapshot("tcp://127.0.0.1:0")
        .legacy_publish(legacy.then(|| "tcp://127.0.0.1:0".to_string()))
        .interval(interval)
        .deadline(interval / 2)
        .limits(limits)
        .max_members_per_connection(per_connection)
        .start()
        .unwrap()
}

#[test]
fn one_connection_announcing_many_names_holds_its_cap_and_leaves_in_one_step() {
    // Slow rounds: this proxy does not answer surveys, and must not be evicted
    // while it floods.
    let server = in_process_every(Duration::from_secs(5), Limits::default(), 8, false);
    let survey = server.urls().survey.clone();
    let proxy = respondent(&survey);
    let sent = (0..20_000)
        .filter(|i| announce(&proxy, &Member::new(format!("name-{i}"), 1)))
        .count();
    // (A raw respondent drops what its connection cannot take: not all are sent.)
    wait_until("the proxy at its cap, the rest dropped", || {
        server.stats().dropped_per_connection > 0 && server.members().len() == 8
    });
    assert!(server.stats().answers <= sent as u64);
    // The connection goes away: its members leave at once, and the server keeps
    // surveying.
    drop(proxy);
    wait_until("the proxy's members gone", || server.members().is_empty());
    let before = server.stats().surveys;
    wait_until("surveys advance", || server.stats().surveys > before);
}

#[test]
fn the_table_stops_at_the_snapshot_budget_and_a_watcher_stays_live_with_its_view() {
    let limits = Limits {
        max_snapshot: 1 << 20,
        ..Limits::default()
    };
    let server = in_process(limits, 10_000, false);
    let survey = server.urls().survey.clone();
    // 4 KiB of metadata each: 600 members would be 2.4 MiB, over the 1 MiB budget.
    // The connections stay open while the watcher syncs.
    let sockets: Vec<_> = (0..4).map(|_| respondent(&survey)).collect();
    for (c, s) in sockets.iter().enumerate() {
        for i in 0..150 {
            let mut m = Member::new(format!("fat-{c}-{i}"), 1);
            m.metadata.insert("pad".into(), "x".repeat(4000));
            while !announce(s, &m) {}
        }
    }
    wait_until("the budget refuses members", || {
        server.stats().dropped_budget > 0
    });
    let n = server.members().len();
    assert!(n > 100 && n < 600, "{n} members under a 1 MiB budget");
    let sub = Subscriber::builder()
        .publish(server.urls().publish.clone())
        .snapshot(Some(server.urls().snapshot.clone()))
        .limits(limits)
        .start()
        .unwrap();
    wait_until("the watcher live with the server's view", || {
        sub.state() == gopherdiscovery::State::Live && sub.peers().len() == server.members().len()
    });
    drop(sockets);
}

#[test]
fn hostile_names_and_headers_are_dropped_and_counted() {
    let server = in_process(Limits::default(), 1, true);
    let survey = server.urls().survey.clone();
    // Kept open until counted: answers of a closed connection are ignored.
    let mut open = Vec::new();
    for name in ["nul\0byte", "two\nlines", "esc\u{1b}[2J", "a|b"] {
        let s = respondent(&survey);
        while !announce(&s, &Member::new(name, 1)) {}
        open.push(s);
    }
    // An answer whose SP header starts with a word lacking the high bit: NNG's raw
    // surveyor reads words until one has it, so the header is 8 bytes, not a
    // survey id (the old server took the rest as a legacy name).
    let s = respondent(&survey);
    while !s.send([0, 0, 0, 1], b"\x80\x00\x00\x02forged-legacy-name") {}
    open.push(s);
    wait_until("every hostile answer counted", || {
        let s = server.stats();
        s.dropped_control == 3 && s.dropped_legacy_name == 1 && s.dropped_survey_id == 1
    });
    let _c = Client::builder("clean").survey(survey).start().unwrap();
    wait_until("a clean member still joins", || {
        server
            .members()
            .iter()
            .map(|m| m.name.as_str())
            .eq(["clean"])
    });
    // And our own client refuses such a name up front.
    let e = Client::builder("bad\nname")
        .survey("tcp://127.0.0.1:1")
        .start();
    let e = e.err().expect("a name with a newline refused");
    assert!(e.to_string().contains("control character"), "{e}");
}

#[test]
fn snapshot_requests_from_one_connection_are_not_amplified() {
    let server = in_process(Limits::default(), 1, false);
    let _c = Client::builder("m")
        .survey(server.urls().survey.clone())
        .start()
        .unwrap();
    wait_until("a member", || server.members().len() == 1);
    let t0 = std::time::Instant::now();
    let sent = snapshot_hammer(&server.urls().snapshot, 1, 2_000, Duration::from_secs(10));
    wait_until("every request handled", || {
        let s = server.stats();
        s.snapshots + s.dropped_repeat_requests >= sent as u64
    });
    // At most one snapshot per interval (200 ms) per connection while nothing changes.
    let intervals = t0.elapsed().as_millis() as u64 / 200 + 2;
    let s = server.stats();
    assert!(
        s.snapshots <= intervals,
        "{} snapshots for {sent} requests over {intervals} intervals",
        s.snapshots
    );
}

#[test]
fn bad_arguments_exit_2_with_one_line_and_members_stops_on_a_signal() {
    use std::os::unix::ffi::OsStrExt;
    for args in [
        vec![
            std::ffi::OsStr::new("serve"),
            "--survey".as_ref(),
            "tcp://127.0.0.1".as_ref(),
        ],
        vec![
            "members".as_ref(),
            "--snapshot".as_ref(),
            std::ffi::OsStr::from_bytes(b"\xff\xfe"),
        ],
    ] {
        let out = std::process::Command::new(bin())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // Nobody serves there; the timeout is far away: only the signal ends it.
        let mut p = Proc::spawn(&[
            "members",
            "--snapshot",
            "tcp://127.0.0.1:9",
            "--timeout",
            "3600000",
        ]);
        wait_until("members blocks SIGINT and SIGTERM", || {
            signals_blocked(p.child.id())
        });
        let st = p.stop_with(sig);
        assert_eq!(st.code(), Some(0), "members after signal {sig}");
    }
}
