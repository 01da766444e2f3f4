//! Authenticated meshes through the CLI: real processes, loopback only (ipc://
//! sockets in a temporary directory, HTTP on 127.0.0.1). Keys from a keyring
//! file and from the environment, never on the command line; `keygen` and
//! `keyring list`; bad keyrings; a key rolled in three steps with SIGHUP under
//! live traffic; a mesh moved from `permissive` to `required`.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::*;

/// Runs the CLI to completion: exit code, stdout, stderr.
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = command(args, env).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every remaining stdout line the process printed so far, without waiting.
fn drain(p: &Proc) -> Vec<String> {
    p.lines.try_iter().collect()
}

/// `ps -ww -o args=` of a process: its whole command line as anyone on the host sees it.
fn ps_args(pid: i32) -> String {
    let out = std::process::Command::new("ps")
        .args(["-ww", "-o", "args=", "-p", &pid.to_string()])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// `watch --json` with the given options added (e.g. the keyring file).
fn watch_with(dir: &Scratch, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let (p, n) = (dir.url("publish"), dir.url("snapshot"));
    let mut args = vec!["watch", "--publish", &p, "--snapshot", &n, "--json"];
    args.extend_from_slice(extra);
    Proc::spawn_env(&args, env)
}

/// `join` with environment variables; waits for its `joined` line.
fn join_env(dir: &Scratch, name: &str, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let s = dir.url("survey");
    let mut args = vec!["join", "--name", name, "--survey", &s];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn_env(&args, env);
    let line = p.next_line();
    assert!(line.starts_with(&format!("joined {name} ")), "{line:?}");
    p
}

fn dropped(reason: &str) -> String {
    format!("gopherdiscovery_auth_dropped_total{{reason=\"{reason}\"}}")
}

fn verified_by(id: &str) -> String {
    format!("gopherdiscovery_auth_messages_total{{key_id=\"{id}\"}}")
}

/// The member names of /members.json.
fn served_members(addr: &str) -> Vec<String> {
    let (code, _, body) = get(addr, "/members.json");
    assert_eq!(code, 200, "{body}");
    peers(&serde_json::from_str(&body).unwrap())
}

#[test]
fn keygen_prints_a_new_base64_key_of_32_bytes() {
    let (a, b) = (keygen(), keygen());
    for k in [&a, &b] {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(k)
            .unwrap_or_else(|e| panic!("{k:?} is not base64: {e}"));
        assert_eq!(raw.len(), 32, "{k:?}");
    }
    assert_ne!(a, b, "two keys alike");
}

#[test]
fn keyring_list_prints_key_ids_primary_first_from_each_source() {
    let dir = Scratch::new("keyringlist");
    let (k1, k2, k3) = (keygen(), keygen(), keygen());
    let (id1, id2, id3) = (key_id(&k1), key_id(&k2), key_id(&k3));
    let file = dir.0.join("mesh.keys");
    write_keyring(&file, &[&k1, &k2]);
    let other = dir.0.join("other.keys");
    write_keyring(&other, &[&k3]);
    let f = path(&file);
    let list = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["keyring", "list"];
        all.extend_from_slice(args);
        let (code, out, err) = run(&all, env);
        assert_eq!(code, 0, "{args:?} {env:?}: {err}");
        assert_eq!(err, "", "a 0600 file gives no warning");
        for k in [&k1, &k2, &k3] {
            assert!(!out.contains(k.as_str()), "a key printed: {out}");
        }
        out.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(
        list(&["--keyring-file", f], &[]),
        [id1.as_str(), id2.as_str()]
    );
    assert_eq!(
        list(&[], &[("GOPHERDISCOVERY_KEYRING_FILE", f)]),
        [id1.as_str(), id2.as_str()]
    );
    assert_eq!(list(&[], &[("GOPHERDISCOVERY_KEY", &k3)]), [id3.as_str()]);
    // Precedence: the flag, then the file in the environment, then the key.
    let both = [
        ("GOPHERDISCOVERY_KEYRING_FILE", path(&other)),
        ("GOPHERDISCOVERY_KEY", &k2),
    ];
    assert_eq!(
        list(&["--keyring-file", f], &both),
        [id1.as_str(), id2.as_str()]
    );
    assert_eq!(list(&[], &both), [id3.as_str()]);
    // The primary is the first line of the file.
    write_keyring(&file, &[&k2, &k1]);
    assert_eq!(
        list(&["--keyring-file", f], &[]),
        [id2.as_str(), id1.as_str()]
    );

    let (code, out, err) = run(&["keyring", "list"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty() && err.contains("no keyring"), "{err}");
}

#[test]
fn a_keyring_file_others_can_read_is_warned_about() {
    let dir = Scratch::new("keymode");
    let k = keygen();
    let file = dir.0.join("mesh.keys");
    write_keyring(&file, &[&k]);
    let f = path(&file);
    set_mode(&file, 0o644);
    let (code, out, err) = run(&["keyring", "list", "--keyring-file", f], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end(), key_id(&k));
    assert!(
        err.contains("WARN") && err.contains(f) && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!err.contains(&k), "{err}");
    // The same from the environment and for a long-running command.
    let sv = dir.url("survey");
    let mut member = Proc::spawn_env(
        &["join", "--name", "m", "--survey", &sv],
        &[("GOPHERDISCOVERY_KEYRING_FILE", f)],
    );
    member.next_line();
    stderr_with(&member, "chmod 600");
    set_mode(&file, 0o600);
    let (code, _, err) = run(&["keyring", "list", "--keyring-file", f], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "no warning for a 0600 file");
}

#[test]
fn a_bad_keyring_exits_2_naming_file_and_line_never_its_text() {
    let dir = Scratch::new("badkeys");
    let good = keygen();
    let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
    let secret = "c2VjcmV0IHRoYXQgaXMgbm90IGEga2V5!!";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        // (file name, content, the line named, text that must not show)
        (
            "notbase64.keys",
            format!("# primary\n{good}\n{secret}\n"),
            "line 3",
            secret,
        ),
        (
            "short.keys",
            format!("{good}\n\n{short}\n"),
            "line 3",
            &short,
        ),
    ];
    let (s, p, n) = (dir.url("survey"), dir.url("publish"), dir.url("snapshot"));
    for (name, content, line, hidden) in &cases {
        let file = dir.0.join(name);
        std::fs::write(&file, content).unwrap();
        set_mode(&file, 0o600);
        let f = path(&file);
        let commands: [Vec<&str>; 5] = [
            vec!["keyring", "list"],
            vec!["serve", "--survey", &s, "--publish", &p, "--snapshot", &n],
            vec!["join", "--name", "m", "--survey", &s],
            vec!["watch", "--publish", &p, "--snapshot", &n],
            vec!["members", "--snapshot", &n],
        ];
        for cmd in commands {
            for (args, env) in [
                ([&cmd[..], &["--keyring-file", f]].concat(), vec![]),
                (cmd.clone(), vec![("GOPHERDISCOVERY_KEYRING_FILE", f)]),
            ] {
                let (code, out, err) = run(&args, &env);
                assert_eq!(code, 2, "{args:?}: {err}");
                assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
                assert!(err.contains(f) && err.contains(line), "{args:?}: {err}");
                assert!(
                    !err.contains(hidden) && !out.contains(hidden),
                    "{args:?}: the bad line shown: {err}"
                );
                assert!(!err.contains(&good), "{args:?}: a key shown: {err}");
            }
        }
    }
    let missing = dir.0.join("missing.keys");
    let (code, _, err) = run(&["keyring", "list", "--keyring-file", path(&missing)], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(path(&missing)), "{err}");
    // One key in the environment that is not one.
    let (code, _, err) = run(
        &["join", "--name", "m", "--survey", &s],
        &[("GOPHERDISCOVERY_KEY", secret)],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("GOPHERDISCOVERY_KEY") && !err.contains(secret),
        "{err}"
    );
    let (code, _, err) = run(&["keyring", "list"], &[("GOPHERDISCOVERY_KEY", &short)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("32 bytes") && !err.contains(&short), "{err}");
}

#[test]
fn auth_options_are_checked_and_keys_never_taken_as_arguments() {
    let dir = Scratch::new("authopts");
    let (s, p, n) = (dir.url("survey"), dir.url("publish"), dir.url("snapshot"));
    let commands: [Vec<&str>; 4] = [
        vec!["serve", "--survey", &s, "--publish", &p, "--snapshot", &n],
        vec!["join", "--name", "m", "--survey", &s],
        vec!["watch", "--publish", &p, "--snapshot", &n],
        vec!["members", "--snapshot", &n, "--timeout", "300"],
    ];
    let key = keygen();
    for cmd in &commands {
        for (extra, needle) in [
            (&["--auth", "required"][..], "--auth required needs a key"),
            (
                &["--auth", "permissive"][..],
                "--auth permissive needs a key",
            ),
            (
                &["--auth", "on"][..],
                "--auth expects off, permissive or required",
            ),
            (&["--key", &key][..], "never given on the command line"),
        ] {
            let args = [&cmd[..], extra].concat();
            let (code, out, err) = run(&args, &[]);
            assert_eq!(code, 2, "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?}: {err}");
            assert!(!err.contains(&key) && !out.contains(&key), "{err}");
        }
        // A key from the environment satisfies --auth required; a mesh label
        // longer than 255 bytes does not pass.
        let long = "x".repeat(256);
        let args = [&cmd[..], &["--mesh-label", &long]].concat();
        let (code, _, err) = run(&args, &[("GOPHERDISCOVERY_KEY", &key)]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("--mesh-label"), "{err}");
    }
    // Every command's help lists the key options with their defaults.
    for cmd in ["serve", "join", "watch", "members"] {
        let (code, out, _) = run(&[cmd, "--help"], &[]);
        assert_eq!(code, 0);
        for needle in [
            "--keyring-file PATH",
            "GOPHERDISCOVERY_KEYRING_FILE",
            "GOPHERDISCOVERY_KEY",
            "--auth MODE",
            "default: required with a key, off without",
            "--mesh-label TEXT",
        ] {
            assert!(out.contains(needle), "{cmd} --help lacks {needle:?}: {out}");
        }
    }
    let (_, top, _) = run(&["--help"], &[]);
    assert!(top.contains("keygen") && top.contains("keyring"), "{top}");
    let (code, out, _) = run(&["keyring", "list", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("usage: gopherdiscovery keyring list"),
        "{out}"
    );
}

#[cfg(feature = "http")]
#[test]
fn keyed_members_join_wrong_or_no_key_never_appear_and_no_key_in_ps() {
    let dir = Scratch::new("mesh");
    let (key, wrong) = (keygen(), keygen());
    let file = dir.0.join("mesh.keys");
    write_keyring(&file, &[&key]);
    let wrong_file = dir.0.join("wrong.keys");
    write_keyring(&wrong_file, &[&wrong]);
    let (f, wf) = (path(&file), path(&wrong_file));
    let (mut server, addr) = serve_http(&dir, &["--interval", "200", "--keyring-file", f]);
    let a = join(&dir, "a", &["--keyring-file", f]);
    let b = join(&dir, "b", &["--keyring-file", f]);
    let c = join_env(&dir, "c", &[], &[("GOPHERDISCOVERY_KEY", &key)]);
    let bad = join(
        &dir,
        "wrong-key",
        &["--keyring-file", wf, "--interval", "200"],
    );
    let none = join(&dir, "no-key", &[]);
    let mut w = watch_with(&dir, &["--keyring-file", f], &[]);
    w.json_where("a, b and c in the view", |v| peers(v) == ["a", "b", "c"]);
    // The refused members answered and were dropped, several rounds over.
    wait_until("unknown_key and unsigned drops on the server", || {
        scrape(&addr, &dropped("unknown_key")) >= 3.0 && scrape(&addr, &dropped("unsigned")) >= 3.0
    });
    wait_rounds(&addr, 3.0);
    for line in drain(&w).iter().chain(&w.seen) {
        assert!(
            !line.contains("wrong-key") && !line.contains("no-key"),
            "a member without the key appeared: {line}"
        );
    }
    assert_eq!(served_members(&addr), ["a", "b", "c"]);
    assert_eq!(scrape(&addr, &dropped("bad_mac")), 0.0);
    assert!(scrape(&addr, &verified_by(&key_id(&key))) > 0.0);
    // The member with the wrong key says so.
    let err = stderr_with(&bad, "check the keyring");
    assert!(err.contains("unknown_key"), "{err}");
    // So does a watcher with the wrong key: its snapshot requests go unanswered
    // while the publications it gets fail authentication.
    let wrong_watch = watch_with(&dir, &["--keyring-file", wf], &[]);
    let err = stderr_with(&wrong_watch, "check the keyring");
    assert!(err.contains("unknown key id"), "{err}");
    assert!(
        !err.contains(&wrong) && !err.contains(&key),
        "a key logged: {err}"
    );

    // members: with the keyring it reads the set; without it, or with another
    // key, the server does not answer, and the message says what to check.
    let snap = dir.url("snapshot");
    let (code, out, err) = run(
        &[
            "members",
            "--snapshot",
            &snap,
            "--json",
            "--keyring-file",
            f,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(peers(&v), ["a", "b", "c"]);
    let (code, _, err) = run(&["members", "--snapshot", &snap, "--timeout", "500"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&snap) && err.contains("keyring"), "{err}");
    let (code, _, err) = run(
        &[
            "members",
            "--snapshot",
            &snap,
            "--timeout",
            "500",
            "--keyring-file",
            wf,
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("does it have this keyring") && err.lines().count() == 1,
        "{err}"
    );

    // No key in the command line of any process, nor in what it printed.
    let procs: [&Proc; 7] = [&server, &a, &b, &c, &bad, &none, &w];
    for p in procs {
        let args = ps_args(p.pid());
        assert!(args.contains("gopherdiscovery"), "ps output {args:?}");
        assert!(
            !args.contains(&key) && !args.contains(&wrong),
            "a key in ps: {args}"
        );
        let err = p.stderr.lock().unwrap().clone();
        assert!(!err.contains(&key) && !err.contains(&wrong), "{err}");
        assert!(p
            .seen
            .iter()
            .all(|l| !l.contains(&key) && !l.contains(&wrong)));
    }
    assert!(server.alive());
}

/// Rewrites every keyring file, sends SIGHUP to every process, and waits for
/// each one's "keyring reloaded" line naming its file and `what` ("2 keys,
/// primary …").
fn roll(procs: &[(&Proc, &PathBuf)], keys: &[&str], what: &str) {
    for (_, file) in procs {
        write_keyring(file, keys);
    }
    for (p, _) in procs {
        p.signal(libc::SIGHUP);
    }
    for (p, file) in procs {
        stderr_with(
            p,
            &format!("keyring reloaded from {}: {what}", file.display()),
        );
    }
}

#[cfg(feature = "http")]
#[test]
fn a_key_rolled_in_three_steps_moves_no_member() {
    let dir = Scratch::new("rotation");
    let (k1, k2) = (keygen(), keygen());
    let (id1, id2) = (key_id(&k1), key_id(&k2));
    // Each process has its own copy of the keyring, as on separate hosts.
    let files: Vec<PathBuf> = ["server", "a", "b", "watch"]
        .iter()
        .map(|n| dir.0.join(format!("{n}.keys")))
        .collect();
    for f in &files {
        write_keyring(f, &[&k1]);
    }
    let info = ["--log-level", "info"];
    // Members leave after 3 missed surveys: 1.5 s of slack on a loaded machine.
    let (server, addr) = serve_http(
        &dir,
        &["--interval", "500", "--keyring-file", path(&files[0])],
    );
    let a = join(
        &dir,
        "a",
        &[&["--keyring-file", path(&files[1])][..], &info].concat(),
    );
    let b = join(
        &dir,
        "b",
        &[&["--keyring-file", path(&files[2])][..], &info].concat(),
    );
    wait_until("a and b served", || served_members(&addr) == ["a", "b"]);
    let mut w = watch_with(
        &dir,
        &[&["--keyring-file", path(&files[3])][..], &info].concat(),
        &[],
    );
    let first: serde_json::Value = serde_json::from_str(&w.next_line()).unwrap();
    assert_eq!(peers(&first), ["a", "b"], "{first}");
    let (_, _, before) = get(&addr, "/members.json");
    let procs = [
        (&server, &files[0]),
        (&a, &files[1]),
        (&b, &files[2]),
        (&w, &files[3]),
    ];

    // 1. The new key as secondary everywhere.
    roll(&procs, &[&k1, &k2], &format!("2 keys, primary {id1}"));
    // 2. The new key as primary everywhere; then wait until the old key is unused:
    //    K2's count rises while K1's stays put over two intervals.
    roll(&procs, &[&k2, &k1], &format!("2 keys, primary {id2}"));
    wait_until("K1 unused, K2 in use", || {
        let (old, new) = (
            scrape(&addr, &verified_by(&id1)),
            scrape(&addr, &verified_by(&id2)),
        );
        wait_rounds(&addr, 2.0);
        scrape(&addr, &verified_by(&id1)) == old && scrape(&addr, &verified_by(&id2)) > new
    });
    // 3. The old key removed everywhere.
    roll(&procs, &[&k2], &format!("1 key, primary {id2}"));
    let (_, _, metrics) = get(&addr, "/metrics");
    assert!(
        !metrics.contains(&id1),
        "K1 still in the keyring: {metrics}"
    );
    let now = scrape(&addr, &verified_by(&id2));
    wait_until("answers verified with K2 alone", || {
        scrape(&addr, &verified_by(&id2)) > now + 4.0
    });
    wait_rounds(&addr, 3.0);

    // No membership event after the first view, and nothing refused.
    let lines = drain(&w);
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["events"].as_array().unwrap().len(), 0, "an event: {line}");
        assert_eq!(peers(&v), ["a", "b"], "{line}");
    }
    let (_, _, after) = get(&addr, "/members.json");
    assert_eq!(before, after, "the member set changed");
    assert_eq!(scrape(&addr, &dropped("bad_mac")), 0.0);
    assert_eq!(scrape(&addr, &dropped("unknown_key")), 0.0);
    for (p, _) in &procs {
        let err = p.stderr.lock().unwrap().clone();
        for needle in [
            "(bad_mac)",
            "(unknown_key)",
            "check the keyring",
            "not reloaded",
        ] {
            assert!(!err.contains(needle), "{needle}: {err}");
        }
        for k in [&k1, &k2] {
            assert!(!err.contains(k.as_str()), "a key logged: {err}");
        }
    }
}

#[cfg(feature = "http")]
#[test]
fn sighup_with_a_bad_file_keeps_the_old_keyring_and_without_a_file_reloads_nothing() {
    let dir = Scratch::new("badreload");
    let k = keygen();
    let file = dir.0.join("server.keys");
    write_keyring(&file, &[&k]);
    let (server, addr) = serve_http(&dir, &["--interval", "200", "--keyring-file", path(&file)]);
    let mut m = join_env(&dir, "m", &[], &[("GOPHERDISCOVERY_KEY", &k)]);
    wait_until("m served", || served_members(&addr) == ["m"]);
    std::fs::write(&file, "not a key at all\n").unwrap();
    server.signal(libc::SIGHUP);
    let err = stderr_with(&server, "keyring not reloaded");
    assert!(err.contains("ERROR") && err.contains("line 1"), "{err}");
    assert!(!err.contains("not a key at all"), "{err}");
    // The old keyring is still in force: m keeps answering with it.
    let n = scrape(&addr, &verified_by(&key_id(&k)));
    wait_until("m still verified", || {
        scrape(&addr, &verified_by(&key_id(&k))) > n
    });
    assert_eq!(served_members(&addr), ["m"]);
    // A member whose key came from the environment has nothing to reload.
    m.signal(libc::SIGHUP);
    stderr_with(&m, "nothing to reload");
    assert!(m.alive());
}

#[cfg(feature = "http")]
#[test]
fn permissive_then_required_keeps_keyed_members_and_shuts_out_keyless_ones() {
    let dir = Scratch::new("migrate");
    let key = keygen();
    let file = dir.0.join("mesh.keys");
    write_keyring(&file, &[&key]);
    let f = path(&file);
    let (mut server, addr) = serve_http(
        &dir,
        &[
            "--interval",
            "200",
            "--keyring-file",
            f,
            "--auth",
            "permissive",
        ],
    );
    let _keyed = join(&dir, "keyed", &["--keyring-file", f]);
    let mut keyless = join(&dir, "keyless", &[]);
    let mut w = watch_with(&dir, &["--keyring-file", f], &[]);
    w.json_where("both in the view", |v| peers(v) == ["keyed", "keyless"]);
    wait_until("unsigned answers accepted", || {
        scrape(&addr, "gopherdiscovery_auth_unsigned_accepted_total") > 0.0
    });
    // The keyless member gets the key: restarted with the file.
    assert_eq!(keyless.stop_with(libc::SIGTERM).code(), Some(0));
    let _keyless = join(&dir, "keyless", &["--keyring-file", f]);
    w.json_where("keyless back", |v| {
        has_event(v, "joined", "keyless", None) && peers(v) == ["keyed", "keyless"]
    });
    // Unsigned input stopped: the mesh can move to required.
    wait_until("no more unsigned answers", || {
        let n = scrape(&addr, "gopherdiscovery_auth_unsigned_accepted_total");
        wait_rounds(&addr, 2.0);
        scrape(&addr, "gopherdiscovery_auth_unsigned_accepted_total") == n
    });
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    let (server, addr) = serve_http(
        &dir,
        &[
            "--interval",
            "200",
            "--keyring-file",
            f,
            "--auth",
            "required",
        ],
    );
    let serving = server.seen[0].clone();
    let epoch = serving
        .split_whitespace()
        .find_map(|w| w.strip_prefix("epoch="))
        .unwrap()
        .to_string();
    w.json_where("both back under the new server", |v| {
        v["epoch"] == epoch.as_str() && v["state"] == "live" && peers(v) == ["keyed", "keyless"]
    });
    // A member without the key, started now, never appears.
    let _late = join(&dir, "late", &[]);
    wait_until("the late member's answers dropped", || {
        scrape(&addr, &dropped("unsigned")) >= 3.0
    });
    wait_rounds(&addr, 3.0);
    assert_eq!(served_members(&addr), ["keyed", "keyless"]);
    for line in drain(&w) {
        assert!(
            !line.contains("late"),
            "the keyless member appeared: {line}"
        );
    }
    assert_eq!(
        scrape(&addr, "gopherdiscovery_auth_unsigned_accepted_total"),
        0.0
    );
}
