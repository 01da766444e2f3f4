//! Wire version 2 against real servers and clients: the warming flag in HEARTBEAT
//! and SNAPSHOT, ordered incarnations, the metadata generation.

mod common;

use std::time::Duration;

use common::*;
use gopherdiscovery::nng::{Protocol, Socket};
use gopherdiscovery::wire::{self, Message};
use gopherdiscovery::{fetch_snapshot, Client, Limits, Metadata, Server};

fn server(dir: &Scratch, interval_ms: u64, evict_after: u32) -> Server {
    Server::builder()
        .survey(dir.url("survey"))
        .publish(dir.url("publish"))
        .snapshot(dir.url("snapshot"))
        .interval(Duration::from_millis(interval_ms))
        .evict_after(evict_after)
        .start()
        .unwrap()
}

/// The next HEARTBEAT on a raw subscription.
fn heartbeat(sub: &Socket) -> wire::Heartbeat {
    loop {
        let m = sub.recv().expect("a publication within the deadline");
        if let Ok(Message::Heartbeat(h)) = wire::decode(m.body(), &Limits::default()) {
            return h;
        }
    }
}

fn subscribe(dir: &Scratch) -> Socket {
    let sub = Socket::open(Protocol::Sub0, false).unwrap();
    sub.subscribe_all().unwrap();
    sub.set_recv_timeout(Some(DEADLINE)).unwrap();
    sub.dial(&dir.url("publish")).unwrap();
    sub
}

#[test]
fn a_new_server_says_it_is_warming_then_stops_saying_it() {
    // Warming lasts evict_after × interval + deadline: 30 × 1 s + 0.5 s here, far
    // longer than this test needs to look.
    let dir = Scratch::new("warm-long");
    let s = server(&dir, 1000, 30);
    assert!(s.warming());
    let snap = fetch_snapshot(&dir.url("snapshot"), DEADLINE, &Limits::default()).unwrap();
    assert!(
        snap.warming,
        "a snapshot of a young server is flagged warming"
    );
    let sub = subscribe(&dir);
    assert!(heartbeat(&sub).warming);

    // 1 × 50 ms + 25 ms: over soon; then neither message carries the flag.
    let dir = Scratch::new("warm-short");
    let s = server(&dir, 50, 1);
    wait_until("warming ends", || !s.warming());
    let snap = fetch_snapshot(&dir.url("snapshot"), DEADLINE, &Limits::default()).unwrap();
    assert!(!snap.warming);
    let sub = subscribe(&dir);
    assert!(!heartbeat(&sub).warming);
}

#[test]
fn a_restarted_client_has_a_greater_incarnation_and_updates_count_generations() {
    let dir = Scratch::new("versions");
    let _s = server(&dir, 100, 3);
    let survey = dir.url("survey");
    let first = Client::builder("m").survey(&survey).start().unwrap();
    let old = first.member();
    assert_eq!(old.generation, 0);
    let mut md = Metadata::new();
    md.insert("zone".into(), "a".into());
    first.set_metadata(md.clone()).unwrap();
    first.set_metadata(md.clone()).unwrap(); // no change, no new generation
    md.insert("zone".into(), "b".into());
    first.set_metadata(md).unwrap();
    assert_eq!(first.member().generation, 2);
    // The server's snapshot carries the generation.
    wait_until("the server holds generation 2", || {
        fetch_snapshot(&dir.url("snapshot"), DEADLINE, &Limits::default())
            .map(|s| s.members.iter().any(|m| m.generation == 2))
            .unwrap_or(false)
    });
    drop(first);
    let second = Client::builder("m").survey(&survey).start().unwrap();
    assert!(
        second.member().version() > old.version(),
        "{:x} after {:x}",
        second.member().incarnation,
        old.incarnation
    );
}
