//! A real cluster of processes on loopback: the CLI server, CLI members and a CLI
//! watcher. Members are killed and stopped for real.

mod common;

use common::*;

const FAST: &[&str] = &[
    "--interval",
    "200",
    "--deadline",
    "100",
    "--evict-after",
    "3",
];

#[test]
fn three_members_join_then_crash_hang_and_resume() {
    let dir = Scratch::new("cluster");
    let _server = serve(&dir, FAST);
    let _a = join(&dir, "http://a:1", &["--meta", "zone=x"]);
    let b = join(&dir, "http://b:1", &[]);
    let mut c = join(&dir, "http://c:1", &[]);
    let mut w = watch(&dir);

    let all = w.json_where("all three members", |v| peers(v).len() == 3);
    assert_eq!(
        peers(&all),
        vec!["http://a:1", "http://b:1", "http://c:1"],
        "sorted peer list"
    );
    assert_eq!(all["state"], "live");

    // kill -9: the connection closes, the member leaves at once with reason closed.
    b.signal(libc::SIGKILL);
    let v = w.json_where("b leaving", |v| {
        has_event(v, "left", "http://b:1", Some("closed"))
    });
    assert_eq!(peers(&v), vec!["http://a:1", "http://c:1"]);

    // SIGSTOP: the connection stays open but nothing answers: evicted by timeout.
    c.signal(libc::SIGSTOP);
    let v = w.json_where("c evicted", |v| {
        has_event(v, "left", "http://c:1", Some("timeout"))
    });
    assert_eq!(peers(&v), vec!["http://a:1"]);

    // SIGCONT: it answers again and comes back, same incarnation: a plain join.
    c.signal(libc::SIGCONT);
    let v = w.json_where("c back", |v| has_event(v, "joined", "http://c:1", None));
    assert_eq!(peers(&v), vec!["http://a:1", "http://c:1"]);
    assert!(c.alive());
}

#[test]
fn a_late_watcher_prints_the_full_list_first_and_nothing_more_while_stable() {
    let dir = Scratch::new("late");
    let _server = serve(&dir, FAST);
    let _members: Vec<Proc> = ["m1", "m2", "m3"]
        .iter()
        .map(|n| join(&dir, n, &[]))
        .collect();
    let snap = dir.url("snapshot");
    wait_until("three members at the server", || {
        let out = std::process::Command::new(bin())
            .args(["members", "--snapshot", &snap])
            .output()
            .unwrap();
        // A header line, then one row per member.
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count()
            == 3
    });

    let mut w = watch(&dir);
    let first: serde_json::Value = serde_json::from_str(&w.next_line()).unwrap();
    assert_eq!(first["snapshot"], true);
    assert_eq!(peers(&first), vec!["m1", "m2", "m3"]);
    assert_eq!(
        first["events"].as_array().unwrap().len(),
        3,
        "the snapshot lists each member as joined"
    );

    // Nothing changes, so nothing more is printed: listen for ten heartbeat
    // intervals (a negative check can only be a bounded listen).
    let more = w.lines.recv_timeout(std::time::Duration::from_millis(2000));
    assert!(more.is_err(), "unexpected line while stable: {more:?}");
}

#[test]
fn metadata_from_the_command_line_reaches_members_json() {
    let dir = Scratch::new("meta");
    let _server = serve(&dir, FAST);
    let _m = join(&dir, "svc", &["--meta", "zone=eu", "--meta", "weight=3"]);
    let snap = dir.url("snapshot");
    let mut v = serde_json::Value::Null;
    wait_until("svc listed", || {
        let out = std::process::Command::new(bin())
            .args(["members", "--snapshot", &snap, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        v = serde_json::from_slice(&out.stdout).unwrap();
        peers(&v) == ["svc"]
    });
    let m = &v["members"][0];
    assert_eq!(m["name"], "svc");
    assert_eq!(m["metadata"]["zone"], "eu");
    assert_eq!(m["metadata"]["weight"], "3");
    // 64-bit identifiers are 16-digit hex strings (exact in JavaScript and jq).
    assert_ne!(hex_id(&m["incarnation"]), 0);
    hex_id(&v["epoch"]);
    hex_id(&v["digest"]);
    assert!(v["seq"].as_u64().unwrap() >= 1);
    // One server has the servers block of several: that one, live.
    assert_eq!(v["configured_servers"], 1);
    assert_eq!(v["live_servers"], 1);
    let s = &v["servers"][0];
    assert_eq!(
        (s["snapshot"].as_str(), s["state"].as_str()),
        (Some(snap.as_str()), Some("live"))
    );
    assert_eq!(hex_id(&s["epoch"]), hex_id(&v["epoch"]));
}

#[test]
fn server_killed_and_restarted_15_times_members_survive_and_subscribers_follow() {
    use std::sync::{Arc, Mutex};
    let dir = Scratch::new("restart");
    let mut members: Vec<Proc> = ["r1", "r2", "r3"]
        .iter()
        .map(|n| join(&dir, n, &[]))
        .collect();
    // An in-process subscriber follows every epoch.
    let seen = Arc::new(Mutex::new((0u64, Vec::<String>::new())));
    let s2 = seen.clone();
    let sub = gopherdiscovery::Subscriber::builder()
        .publish(dir.url("publish"))
        .snapshot(Some(dir.url("snapshot")))
        .on_update(move |u| *s2.lock().unwrap() = (u.epoch, u.peers.clone()))
        .start()
        .unwrap();
    let mut epochs = std::collections::HashSet::new();
    for round in 0..15 {
        let mut server = serve(&dir, FAST);
        let line = server.seen[0].clone();
        let epoch = u64::from_str_radix(line.rsplit("epoch=").next().unwrap(), 16).unwrap();
        assert!(epochs.insert(epoch), "epochs differ per start");
        wait_until(
            &format!("round {round}: subscriber on the new epoch with all members"),
            || {
                let s = seen.lock().unwrap();
                s.0 == epoch && s.1 == ["r1", "r2", "r3"]
            },
        );
        server.signal(libc::SIGKILL);
        let _ = server.child.wait();
        for m in members.iter_mut() {
            assert!(
                m.alive(),
                "round {round}: member process died: {}",
                m.stderr.lock().unwrap()
            );
        }
    }
    assert!(
        sub.resyncs() >= 14,
        "one resync per new epoch, got {}",
        sub.resyncs()
    );
}

#[test]
fn a_watcher_turns_stale_when_the_server_stops_and_live_when_it_resumes() {
    let dir = Scratch::new("stale");
    let server = serve(&dir, FAST);
    let _m = join(&dir, "m", &[]);
    let mut w = watch(&dir);
    w.json_where("m seen", |v| peers(v) == ["m"]);
    server.signal(libc::SIGSTOP);
    let v = w.json_where("stale after 3 missed heartbeats", |v| v["state"] == "stale");
    assert_eq!(
        peers(&v),
        vec!["m"],
        "the last known view is kept while stale"
    );
    assert!(v["events"].as_array().unwrap().is_empty());
    server.signal(libc::SIGCONT);
    w.json_where("live again", |v| v["state"] == "live");
}
