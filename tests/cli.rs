//! The CLI's contract: exit codes, one-line reasons, clean shutdown on signals.

mod common;

use std::process::Command;

use common::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let (code, _, err) = run(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert_eq!(
        err.lines().count(),
        1,
        "{args:?}: one line expected, got {err:?}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: {err:?} should mention {needle:?}"
    );
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    assert_usage_error(&[], "missing command");
    assert_usage_error(&["frobnicate"], "unknown command");
    assert_usage_error(
        &["serve", "--interval", "abc"],
        "--interval expects a whole number",
    );
    assert_usage_error(
        &["serve", "--interval", "500", "--deadline", "500"],
        "deadline",
    );
    assert_usage_error(&["serve", "--evict-after", "0"], "evict_after");
    assert_usage_error(&["serve", "--bogus", "1"], "unknown option --bogus");
    assert_usage_error(&["serve", "--survey", "not-a-url"], "not-a-url");
    assert_usage_error(&["join"], "--name");
    assert_usage_error(&["join", "--name", "a", "--service", "b"], "same option");
    assert_usage_error(&["serve", "--log-format", "xml"], "--log-format");
    assert_usage_error(
        &["join", "--service", "x", "--meta", "novalue"],
        "KEY=VALUE",
    );
    assert_usage_error(&["join", "--service", ""], "empty name");
    assert_usage_error(&["watch", "--json=yes"], "takes no value");
    assert_usage_error(&["watch", "--log-level", "loud"], "--log-level");
    assert_usage_error(&["members", "--timeout"], "needs a value");
}

#[test]
fn help_exits_0() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("serve") && out.contains("members"));
}

#[test]
fn each_command_has_its_own_help_with_defaults() {
    let help = |cmd: &str| {
        let (code, out, err) = run(&[cmd, "--help"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.starts_with(&format!("usage: gopherdiscovery {cmd}")),
            "{out}"
        );
        out
    };
    let serve = help("serve");
    assert!(
        serve.contains("--interval MS") && serve.contains("(default 1000)"),
        "{serve}"
    );
    assert!(
        serve.contains("half the interval") && serve.contains("--http"),
        "{serve}"
    );
    assert!(!serve.contains("--meta"), "{serve}");
    let join = help("join");
    assert!(
        join.contains("--name NAME") && join.contains("--meta"),
        "{join}"
    );
    assert!(
        join.contains("alias") && !join.contains("--legacy-publish"),
        "{join}"
    );
    let watch = help("watch");
    assert!(
        watch.contains("--legacy") && !watch.contains("--timeout"),
        "{watch}"
    );
    let members = help("members");
    assert!(
        members.contains("(default 3000)") && members.contains("--json"),
        "{members}"
    );
    assert_ne!(serve, join);
    assert_ne!(watch, members);
}

#[test]
fn serve_with_only_an_interval_takes_half_of_it_as_deadline() {
    let dir = Scratch::new("halfdeadline");
    // 400 alone used to fail: the deadline default (500) stayed.
    let mut server = serve(&dir, &["--interval", "400"]);
    let _member = join(&dir, "m", &[]);
    let mut watcher = watch(&dir);
    watcher.json_where("m seen", |v| peers(v) == ["m"]);
    assert!(server.alive());
}

#[test]
fn members_prints_an_aligned_table_with_a_header() {
    let dir = Scratch::new("table");
    let _server = serve(&dir, &[]);
    let _a = join(&dir, "http://a:1", &["--meta", "zone=eu", "--meta", "w=3"]);
    let _b = join(&dir, "b", &[]);
    let snap = dir.url("snapshot");
    let mut out = String::new();
    wait_until("both members listed", || {
        let (code, o, err) = run(&["members", "--snapshot", &snap]);
        assert_eq!(code, 0, "{err}");
        out = o;
        out.lines().count() == 3
    });
    let lines: Vec<&str> = out.lines().collect();
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(cols, ["NAME", "INCARNATION", "STATUS", "METADATA"], "{out}");
    // Aligned: every column starts at the same offset on every line.
    let at = |line: &str, i: usize| {
        line.match_indices(char::is_whitespace)
            .map(|(p, _)| p)
            .filter(|p| line[p + 1..].starts_with(|c: char| !c.is_whitespace()))
            .nth(i)
    };
    for i in 0..2 {
        assert!(lines.iter().all(|l| at(l, i) == at(lines[0], i)), "{out}");
    }
    assert!(
        lines[1].starts_with("b ") && lines[1].contains("alive"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("http://a:1 ") && lines[2].ends_with("w=3,zone=eu"),
        "{out}"
    );
}

#[test]
fn json_ids_are_hex_strings() {
    let dir = Scratch::new("hexids");
    let _server = serve(&dir, &[]);
    let _m = join(&dir, "m", &[]);
    let mut watcher = watch(&dir);
    let v = watcher.json_where("m seen", |v| peers(v) == ["m"]);
    hex_id(&v["epoch"]);
    assert!(v["seq"].is_u64());
    let events = v["events"].as_array().unwrap();
    assert!(!events.is_empty());
    for e in events {
        assert_ne!(hex_id(&e["incarnation"]), 0);
    }
}

#[test]
fn join_warns_when_no_server_surveys_it_and_keeps_trying() {
    let dir = Scratch::new("nosurvey");
    // --service: the old word, still accepted.
    let mut member = Proc::spawn(&[
        "join",
        "--service",
        "m",
        "--survey",
        &dir.url("survey"),
        "--interval",
        "200",
    ]);
    assert!(member.next_line().starts_with("joined m "));
    let err = stderr_with(&member, "no server has surveyed this member");
    assert!(
        err.contains("WARN") && err.contains(&dir.url("survey")),
        "{err}"
    );
    assert!(member.alive());
    // It kept trying: a server started now gets it.
    let _server = serve(&dir, &["--interval", "200"]);
    let mut watcher = watch(&dir);
    watcher.json_where("m seen", |v| peers(v) == ["m"]);
    stderr_with(&member, "surveyed by a server again");
}

#[test]
fn watch_warns_when_it_cannot_reach_its_urls_and_keeps_trying() {
    let dir = Scratch::new("unreachable");
    let mut watcher = watch(&dir);
    let err = stderr_with(&watcher, "cannot reach");
    assert!(
        err.contains(&dir.url("publish")) && err.contains("still trying"),
        "{err}"
    );
    let _server = serve(&dir, &[]);
    let _m = join(&dir, "m", &[]);
    watcher.json_where("m seen", |v| peers(v) == ["m"]);
}

/// `2024-05-01T12:34:56.789Z` at the start of `line`.
fn starts_with_rfc3339(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 24
        && b[..24].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn serve_logs_joins_and_leaves_with_timestamps_at_info() {
    let dir = Scratch::new("logs");
    let server = serve(&dir, &[]);
    let mut m = join(&dir, "m", &[]);
    stderr_with(&server, "joined m");
    m.stop_with(libc::SIGTERM);
    let err = stderr_with(&server, "left m (closed)");
    for line in err.lines() {
        assert!(starts_with_rfc3339(line), "no timestamp: {line:?}");
        assert!(line[25..].starts_with("INFO"), "no level: {line:?}");
    }
}

#[test]
fn log_format_json_gives_one_object_per_line() {
    let dir = Scratch::new("jsonlogs");
    let server = serve(&dir, &["--log-format", "json"]);
    let _m = join(&dir, "m\"q", &[]);
    let err = stderr_with(&server, "joined m");
    for line in err.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(starts_with_rfc3339(v["ts"].as_str().unwrap()), "{line}");
        assert_eq!(v["level"], "info", "{line}");
    }
    assert!(err.contains(r#""msg":"joined m\"q incarnation="#), "{err}");
}

#[test]
fn an_address_in_use_exits_1_naming_it() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", held.local_addr().unwrap());
    let dir = Scratch::new("inuse");
    let (p, n) = (dir.url("p"), dir.url("n"));
    let (code, _, err) = run(&["serve", "--survey", &url, "--publish", &p, "--snapshot", &n]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err.trim(),
        format!("gopherdiscovery: address in use: {url}")
    );
}

#[test]
fn members_without_a_server_exits_1_naming_the_url() {
    let dir = Scratch::new("noserver");
    let url = dir.url("nothing-here");
    let (code, _, err) = run(&["members", "--snapshot", &url, "--timeout", "300"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&url) && err.lines().count() == 1, "{err}");
}

#[test]
fn sigint_and_sigterm_exit_0() {
    let dir = Scratch::new("signals");
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let mut server = serve(&dir, &[]);
        let mut member = join(&dir, "m", &[]);
        let mut watcher = watch(&dir);
        watcher.json_where("m seen", |v| peers(v) == ["m"]);
        for p in [&mut watcher, &mut member, &mut server] {
            let st = p.stop_with(sig);
            assert_eq!(
                st.code(),
                Some(0),
                "signal {sig}: {}",
                p.stderr.lock().unwrap()
            );
        }
    }
}

#[test]
fn version_names_the_library_the_wire_and_nng() {
    for flag in ["--version", "-V"] {
        let (code, out, _) = run(&[flag]);
        assert_eq!(code, 0);
        assert_eq!(
            out.trim_end(),
            format!(
                "gopherdiscovery {} (wire {}, NNG {})",
                gopherdiscovery::VERSION,
                gopherdiscovery::WIRE_VERSION,
                gopherdiscovery::nng_version()
            )
        );
    }
    assert_eq!(gopherdiscovery::nng_version(), "1.11.0");
    assert_eq!(gopherdiscovery::VERSION, env!("CARGO_PKG_VERSION"));
}
