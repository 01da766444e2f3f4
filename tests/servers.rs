//! Several servers (designs/SEVERAL-SERVERS.md) with real processes: two CLI
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
