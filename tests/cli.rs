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
    assert_usage_error(&["join"], "--service");
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
