//! Several servers (docs/PROTOCOL.md, "Several servers") with real processes: two CLI
//! `serve` processes, CLI members answering both, and a Rust subscriber merging
//! them. Servers and members are killed for real.

mod common;

use std::sync::mpsc::{self, Receiver};

use common::*;
use gopherdiscovery::{Event, EventKind, Reason, State, Subscriber, Update};

const FAST: &[&str] = &[
    "--interval",
    "200",
    "--deadline",
    "100",
    "--evict-after",
    "3",
];

/// A member answering the servers of `dirs`.
fn member(dirs: &[&Scratch], name: &str) -> Proc {
    let extra: Vec<String> = dirs[1..]
        .iter()
        .flat_map(|d| ["--survey".to_string(), d.url("survey")])
        .collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    join(dirs[0], name, &extra)
}

fn subscriber(dirs: &[&Scratch]) -> (Subscriber, Receiver<Update>) {
    let (tx, rx) = mpsc::channel();
    let mut b = Subscriber::builder().on_update(move |u| {
        let _ = tx.send(u.clone());
    });
    for d in dirs {
        b = b.server(d.url("publish"), d.url("snapshot"));
    }
    (b.start().unwrap(), rx)
}

/// Updates until one satisfies `pred`; every update seen on the way is kept in `seen`.
fn until(
    rx: &Receiver<Update>,
    seen: &mut Vec<Update>,
    what: &str,
    pred: impl Fn(&Update) -> bool,
) {
    loop {
        let u = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; seen {seen:#?}"));
        let done = pred(&u);
        seen.push(u);
        if done {
            return;
        }
    }
}

fn events(seen: &[Update]) -> Vec<&Event> {
    seen.iter().flat_map(|u| &u.events).collect()
}

#[test]
fn a_member_vouched_for_by_one_server_leaves_once_when_that_server_dies() {
    let (d1, d2) = (Scratch::new("srv-a"), Scratch::new("srv-b"));
    let s1 = serve(&d1, FAST);
    let _s2 = serve(&d2, FAST);
    let _both = member(&[&d1, &d2], "both");
    let _only = member(&[&d1], "only-1");
    let (sub, rx) = subscriber(&[&d1, &d2]);
    let mut seen = Vec::new();
    until(&rx, &mut seen, "both members", |u| {
        u.peers == ["both", "only-1"]
    });
    let first = &seen[0];
    assert!(first.snapshot, "the first view is a snapshot");
    assert_eq!(first.servers.len(), 2);
    wait_until("both servers live", || {
        sub.servers().iter().all(|s| s.state == State::Live)
    });
    let servers = sub.servers();
    assert_eq!(servers[0].publish, d1.url("publish"));
    assert_eq!(
        servers[1].snapshot.as_deref(),
        Some(d2.url("snapshot").as_str())
    );
    assert_eq!((servers[0].members, servers[1].members), (2, 1));
    assert!(servers.iter().all(|s| s.epoch != 0));

    let mark = seen.len();
    s1.signal(libc::SIGKILL);
    // No live server vouches for "only-1": it leaves, with no reason.
    until(&rx, &mut seen, "only-1 leaving", |u| {
        u.events.iter().any(|e| e.member.name == "only-1")
    });
    wait_until("server 1 stale", || sub.servers()[0].state == State::Stale);
    let after = events(&seen[mark..]);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (after[0].kind, after[0].reason),
        (EventKind::Left, Reason::None)
    );
    assert_eq!(sub.peers(), ["both"]);
    assert_eq!(sub.state(), State::Live, "one server is still live");
    assert_eq!(sub.servers()[1].state, State::Live);
}

/// `watch --server P,S --server P,S --json`.
fn watch_both(dirs: &[&Scratch]) -> Proc {
    let specs: Vec<String> = dirs
        .iter()
        .map(|d| format!("{},{}", d.url("publish"), d.url("snapshot")))
        .collect();
    let mut args = vec!["watch", "--json"];
    for s in &specs {
        args.extend(["--server", s.as_str()]);
    }
    Proc::spawn(&args)
}

fn server_states(v: &serde_json::Value) -> Vec<String> {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

fn no_events(lines: &[serde_json::Value]) -> bool {
    lines
        .iter()
        .all(|v| v["events"].as_array().unwrap().is_empty())
}

/// Lines printed within `ms` (a negative check can only be a bounded listen).
fn lines_within(w: &mut Proc, ms: u64) -> Vec<serde_json::Value> {
    let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    let mut out = Vec::new();
    while let Ok(l) = w
        .lines
        .recv_timeout(end.saturating_duration_since(std::time::Instant::now()))
    {
        out.push(serde_json::from_str(&l).unwrap());
    }
    out
}

#[test]
fn cli_two_servers_one_killed_then_a_member_killed_then_a_late_watcher() {
    let (d1, d2) = (Scratch::new("cli-a"), Scratch::new("cli-b"));
    let _s1 = serve(&d1, FAST);
    let s2 = serve(&d2, FAST);
    let _a = member(&[&d1, &d2], "a");
    let b = member(&[&d1, &d2], "b");
    let _c = member(&[&d1, &d2], "c");
    let mut w = watch_both(&[&d1, &d2]);
    let all = w.json_where("a, b, c at both servers", |v| {
        peers(v) == ["a", "b", "c"] && v["live_servers"] == 2
    });
    assert_eq!(all["configured_servers"], 2);
    let srv = &all["servers"][1];
    assert_eq!(srv["publish"], d2.url("publish"));
    assert_eq!(srv["snapshot"], d2.url("snapshot"));
    hex_id(&srv["epoch"]);
    assert!(srv["warming"].is_boolean() && srv["seq"].is_u64());

    // kill -9 one server: it turns stale in the status, and nothing else moves.
    s2.signal(libc::SIGKILL);
    let v = w.json_where("server 2 stale", |v| server_states(v) == ["live", "stale"]);
    assert_eq!(
        (peers(&v), &v["state"]),
        (vec!["a".into(), "b".into(), "c".into()], &"live".into())
    );
    assert_eq!(v["live_servers"], 1);
    let seen: Vec<serde_json::Value> = w
        .seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let since = seen.iter().position(|x| x["live_servers"] == 2).unwrap();
    assert!(no_events(&seen[since + 1..]), "{seen:#?}");
    let quiet = lines_within(&mut w, 5 * 200);
    assert!(no_events(&quiet), "events after a server died: {quiet:#?}");

    // kill -9 a member: exactly one `left`, reason closed.
    b.signal(libc::SIGKILL);
    let v = w.json_where("b leaving", |v| has_event(v, "left", "b", Some("closed")));
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    assert_eq!(peers(&v), ["a", "c"]);
    let quiet = lines_within(&mut w, 5 * 200);
    assert!(no_events(&quiet), "more events after b left: {quiet:#?}");

    // A late watcher: its first line is the whole union, and nothing joins after it.
    let mut late = watch_both(&[&d1, &d2]);
    let first: serde_json::Value = serde_json::from_str(&late.next_line()).unwrap();
    assert_eq!(first["snapshot"], true);
    assert_eq!(peers(&first), ["a", "c"]);
    let more = lines_within(&mut late, 5 * 200);
    assert!(no_events(&more), "{more:#?}");

    // members --json merges what answers and prints the same servers block.
    let specs: Vec<String> = [&d1, &d2]
        .iter()
        .map(|d| format!("{},{}", d.url("publish"), d.url("snapshot")))
        .collect();
    let out = std::process::Command::new(bin())
        .args([
            "members",
            "--json",
            "--timeout",
            "500",
            "--server",
            &specs[0],
            "--server",
            &specs[1],
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(peers(&v), ["a", "c"]);
    assert_eq!(
        (&v["live_servers"], &v["configured_servers"]),
        (&1.into(), &2.into())
    );
    assert_eq!(server_states(&v), ["live", "stale"]);
}

#[test]
fn cli_server_option_is_checked() {
    for bad in [
        vec!["watch", "--server", "ipc:///tmp/x"],
        vec!["watch", "--server", "a,b", "--publish", "c"],
        vec!["members", "--server", ",b"],
    ] {
        let out = std::process::Command::new(bin())
            .args(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--server"),
            "{bad:?}"
        );
    }
}

#[test]
fn cli_a_restarted_server_moves_nothing_and_with_both_dead_the_view_freezes() {
    let (d1, d2) = (Scratch::new("re-a"), Scratch::new("re-b"));
    let s1 = serve(&d1, FAST);
    let s2 = serve(&d2, FAST);
    let _a = member(&[&d1, &d2], "a");
    let _b = member(&[&d1, &d2], "b");
    let mut w = watch_both(&[&d1, &d2]);
    w.json_where("a and b at both servers", |v| {
        peers(v) == ["a", "b"] && v["live_servers"] == 2
    });
    let mark = w.seen.len();

    // Server 2 killed and started again on the same URLs: a new epoch, warming,
    // members coming back to it one by one. The merged view does not move.
    s2.signal(libc::SIGKILL);
    w.json_where("server 2 stale", |v| server_states(v) == ["live", "stale"]);
    drop(s2);
    let _s2 = serve(&d2, FAST);
    w.json_where("server 2 live again, warming over, holding both", |v| {
        let s = &v["servers"][1];
        s["state"] == "live" && s["warming"] == false && v["live_servers"] == 2
    });
    let seen: Vec<serde_json::Value> = w.seen[mark..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        no_events(&seen),
        "a server restart moved the view: {seen:#?}"
    );
    assert!(seen
        .iter()
        .all(|v| peers(v) == ["a", "b"] && v["state"] == "live"));

    // Both servers die: stale, and the view freezes (nothing leaves).
    let mark = w.seen.len();
    s1.signal(libc::SIGKILL);
    _s2.signal(libc::SIGKILL);
    let v = w.json_where("stale", |v| v["state"] == "stale");
    assert_eq!(peers(&v), ["a", "b"]);
    assert_eq!(v["live_servers"], 0);
    let more = lines_within(&mut w, 5 * 200);
    let seen: Vec<serde_json::Value> = w.seen[mark..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .chain(more)
        .collect();
    assert!(no_events(&seen), "{seen:#?}");
}

/// The events of the JSON lines `lines`, as (kind, name, reason).
fn json_events(lines: &[serde_json::Value]) -> Vec<(String, String, Option<String>)> {
    lines
        .iter()
        .flat_map(|v| v["events"].as_array().unwrap().iter())
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["name"].as_str().unwrap().to_string(),
                e["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn ev(kind: &str, name: &str, reason: Option<&str>) -> (String, String, Option<String>) {
    (kind.into(), name.into(), reason.map(str::to_string))
}

/// The watcher's lines from `mark` on, parsed.
fn seen_since(w: &Proc, mark: usize) -> Vec<serde_json::Value> {
    w.seen[mark..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Two servers, members `names` answering both, a watcher merging both that has
/// seen all of them at both servers.
fn two_servers_with(
    tag: &str,
    extra: &[&str],
    names: &[&str],
) -> (Scratch, Scratch, Proc, Proc, Vec<Proc>, Proc) {
    let (d1, d2) = (
        Scratch::new(&format!("{tag}-a")),
        Scratch::new(&format!("{tag}-b")),
    );
    // `extra` replaces FAST's --evict-after when it names one.
    let args: Vec<&str> = if extra.is_empty() {
        FAST.to_vec()
    } else {
        FAST[..4].iter().chain(extra).copied().collect()
    };
    let s1 = serve(&d1, &args);
    let s2 = serve(&d2, &args);
    let members = names.iter().map(|n| member(&[&d1, &d2], n)).collect();
    let mut w = watch_both(&[&d1, &d2]);
    let want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    w.json_where("every member at both servers", |v| {
        peers(v) == want && v["live_servers"] == 2
    });
    (d1, d2, s1, s2, members, w)
}

#[test]
fn cli_a_stopped_member_leaves_once_by_timeout_and_joins_once_when_continued() {
    let (_d1, _d2, _s1, _s2, m, mut w) = two_servers_with("stop", &[], &["a", "b"]);
    let mark = w.seen.len();
    // Both servers evict it (each on its own rounds): one merged `left timeout`.
    m[1].signal(libc::SIGSTOP);
    let v = w.json_where("b leaving", |v| has_event(v, "left", "b", Some("timeout")));
    assert_eq!(peers(&v), ["a"]);
    let quiet = lines_within(&mut w, 5 * 200);
    assert!(no_events(&quiet), "more events after b left: {quiet:#?}");
    // Both servers take it back: one merged `joined`.
    let mark2 = w.seen.len();
    m[1].signal(libc::SIGCONT);
    let v = w.json_where("b back", |v| has_event(v, "joined", "b", None));
    assert_eq!(peers(&v), ["a", "b"]);
    let quiet = lines_within(&mut w, 5 * 200);
    assert!(
        no_events(&quiet),
        "more events after b came back: {quiet:#?}"
    );
    assert_eq!(
        json_events(&seen_since(&w, mark)),
        [ev("left", "b", Some("timeout")), ev("joined", "b", None)],
        "{:#?}",
        &w.seen[mark2..]
    );
}

#[test]
fn cli_a_restarted_member_is_one_restarted_pair() {
    // A slow eviction, so the old process (stopped, its connections open) is still
    // a member at both servers when the new one, same name, answers them: the
    // restart is seen as a new incarnation, not as a leave and a join.
    let (d1, d2, _s1, _s2, mut m, mut w) =
        two_servers_with("restart", &["--evict-after", "50"], &["a", "b"]);
    let mark = w.seen.len();
    m[1].signal(libc::SIGSTOP);
    let fresh = member(&[&d1, &d2], "b");
    let v = w.json_where("b restarted", |v| {
        has_event(v, "joined", "b", Some("restarted"))
    });
    assert_eq!(peers(&v), ["a", "b"]);
    // The old process dies: its connections were not the latest of "b" anywhere.
    m[1].signal(libc::SIGKILL);
    let quiet = lines_within(&mut w, 5 * 200);
    assert!(
        no_events(&quiet),
        "more events after the restart: {quiet:#?}"
    );
    assert_eq!(
        json_events(&seen_since(&w, mark)),
        [
            ev("left", "b", Some("restarted")),
            ev("joined", "b", Some("restarted"))
        ]
    );
    let joined = seen_since(&w, mark)
        .into_iter()
        .find(|v| has_event(v, "joined", "b", Some("restarted")))
        .unwrap();
    let ids: Vec<u64> = joined["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| hex_id(&e["incarnation"]))
        .collect();
    assert!(
        ids[0] < ids[1],
        "the new incarnation is the greater: {ids:?}"
    );
    m.push(fresh);
}

#[test]
fn cli_a_metadata_change_is_one_updated() {
    let (d1, d2, _s1, _s2, _m, mut w) = two_servers_with("meta", &[], &["a"]);
    // A Rust client answering both CLI servers; the CLI `join` cannot change its
    // metadata while running.
    let client = gopherdiscovery::Client::builder("z")
        .survey(d1.url("survey"))
        .survey(d2.url("survey"))
        .meta("v", "1")
        .start()
        .unwrap();
    w.json_where("z at both servers", |v| {
        peers(v) == ["a", "z"]
            && v["servers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["state"] == "live")
    });
    let quiet = lines_within(&mut w, 5 * 200);
    assert!(no_events(&quiet), "{quiet:#?}");
    let mark = w.seen.len();
    let mut md = gopherdiscovery::Metadata::new();
    md.insert("v".into(), "2".into());
    client.set_metadata(md).unwrap();
    let v = w.json_where("z updated", |v| has_event(v, "updated", "z", None));
    let e = &v["events"][0];
    assert_eq!(e["metadata"]["v"], "2", "{v}");
    let quiet = lines_within(&mut w, 5 * 200);
    assert!(
        no_events(&quiet),
        "more events after the update: {quiet:#?}"
    );
    assert_eq!(
        json_events(&seen_since(&w, mark)),
        [ev("updated", "z", None)]
    );
}

#[test]
fn cli_both_servers_dead_then_one_back_nothing_leaves_before_its_warming_ends() {
    let (d1, _d2, s1, s2, mut m, mut w) = two_servers_with("warm", &[], &["a", "b"]);
    s1.signal(libc::SIGKILL);
    s2.signal(libc::SIGKILL);
    let v = w.json_where("stale", |v| v["state"] == "stale");
    assert_eq!(peers(&v), ["a", "b"]);
    // b dies while no server sees it; server 1 comes back on the same URLs.
    m[1].signal(libc::SIGKILL);
    let _ = m[1].child.wait();
    let mark = w.seen.len();
    drop(s1);
    // A long warming (20 × 200 ms + 100 ms): the watcher's dialers, whose back-off
    // grew while both servers were down (up to 1 s), reconnect well within it, so
    // the watcher sees server 1 live and warming before it stops warming.
    let _s1 = serve(
        &d1,
        &[
            "--interval",
            "200",
            "--deadline",
            "100",
            "--evict-after",
            "20",
        ],
    );
    // Warming, server 1 knows only a: b stays in the view until the warming ends,
    // then leaves once.
    let v = w.json_where("b leaving", |v| {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "left" && e["name"] == "b")
    });
    assert_eq!(peers(&v), ["a"]);
    assert_eq!(v["servers"][0]["warming"], false, "{v}");
    let quiet = lines_within(&mut w, 5 * 200);
    let seen = seen_since(&w, mark);
    for l in &seen {
        if l["servers"][0]["warming"] == true {
            assert!(
                no_events(std::slice::from_ref(l)),
                "an event during warming: {l}"
            );
        }
    }
    assert!(no_events(&quiet), "{quiet:#?}");
    assert_eq!(json_events(&seen), [ev("left", "b", None)], "{seen:#?}");
    assert!(seen
        .iter()
        .any(|l| l["servers"][0]["warming"] == true && l["servers"][0]["state"] == "live"));
}

#[test]
fn cli_one_server_restarted_under_live_members_is_no_leave_join_burst() {
    let d = Scratch::new("single");
    // Warming (evict_after x interval + deadline) must outlast the members'
    // reconnection back-off (up to 1 s after the server was down for a while):
    // a member that reconnects after warming ended is absent from a snapshot
    // that may remove it. 8 x 200 + 100 = 1.7 s.
    const SLOW_EVICT: &[&str] = &[
        "--interval",
        "200",
        "--deadline",
        "100",
        "--evict-after",
        "8",
    ];
    let s = serve(&d, SLOW_EVICT);
    let _m: Vec<Proc> = ["a", "b", "c"].iter().map(|n| member(&[&d], n)).collect();
    let mut w = watch(&d);
    w.json_where("a, b, c", |v| peers(v) == ["a", "b", "c"]);
    let mark = w.seen.len();
    s.signal(libc::SIGKILL);
    w.json_where("stale", |v| v["state"] == "stale");
    drop(s);
    let _s = serve(&d, SLOW_EVICT);
    let epoch = w.json_where("live again", |v| v["state"] == "live")["epoch"].clone();
    // A warming end moves nothing, so it prints no line: listen past it (warming is
    // evict_after x interval + deadline = 1,700 ms) and 5 intervals more.
    let quiet = lines_within(&mut w, 1700 + 5 * 200);
    let seen = seen_since(&w, mark);
    assert!(
        no_events(&seen),
        "a server restart moved the view: {seen:#?}"
    );
    assert!(no_events(&quiet), "{quiet:#?}");
    assert!(seen.iter().all(|v| peers(v) == ["a", "b", "c"]));
    assert!(quiet.iter().all(|v| v["epoch"] == epoch), "{quiet:#?}");
}
