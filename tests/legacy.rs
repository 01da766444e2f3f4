//! Interop with the original Go gopherdiscovery's wire behaviour (docs/PROTOCOL.md,
//! "Legacy interop"), played by plain NNG sockets speaking exactly what LEGACY.md
//! observed: raw-string answers, empty-body surveys, `|`-joined full lists.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gopherdiscovery::nng::{Message, Protocol, Socket};
use gopherdiscovery::{Client, Server, Subscriber};

#[test]
fn a_raw_string_answer_joins_and_the_legacy_url_carries_the_sorted_list() {
    let dir = Scratch::new("legacy-pub");
    let server = Server::builder()
        .survey(dir.url("survey"))
        .publish(dir.url("publish"))
        .snapshot(dir.url("snapshot"))
        .legacy_publish(Some(dir.url("legacy")))
        .interval(Duration::from_millis(200))
        .deadline(Duration::from_millis(100))
        .start()
        .unwrap();
    let legacy_sub = Socket::open(Protocol::Sub0, false).unwrap();
    legacy_sub.subscribe_all().unwrap();
    legacy_sub
        .set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    legacy_sub.dial(&dir.url("legacy")).unwrap();

    let _a = Client::builder("a")
        .survey(dir.url("survey"))
        .start()
        .unwrap();
    let _b = Client::builder("b")
        .survey(dir.url("survey"))
        .start()
        .unwrap();
    // The original client: a cooked respondent answering every survey with its raw string.
    let legacy = Socket::open(Protocol::Respondent0, false).unwrap();
    legacy
        .set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    legacy.dial(&dir.url("survey")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let answerer = std::thread::spawn(move || {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end && !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            match legacy.recv() {
                Ok(_) => {
                    let _ = legacy.send(Message::new(&[], b"legacy-1"));
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => return,
            }
        }
    });

    let end = Instant::now() + DEADLINE;
    let mut last = Vec::new();
    while last != b"a|b|legacy-1" {
        assert!(
            Instant::now() < end,
            "legacy list never became a|b|legacy-1, last {:?}",
            String::from_utf8_lossy(&last)
        );
        if let Ok(m) = legacy_sub.recv() {
            last = m.body().to_vec();
        }
    }
    let m = server
        .members()
        .into_iter()
        .find(|m| m.name == "legacy-1")
        .unwrap();
    assert_eq!(m.incarnation, 0);
    assert!(m.metadata.is_empty());
    assert!(server.stats().legacy_answers > 0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    answerer.join().unwrap();
}

#[test]
fn our_client_answers_a_legacy_survey_with_its_raw_name() {
    let dir = Scratch::new("legacy-survey");
    // The original server: a cooked surveyor sending empty-body surveys.
    let surveyor = Socket::open(Protocol::Surveyor0, false).unwrap();
    surveyor
        .set_survey_time(Duration::from_millis(500))
        .unwrap();
    surveyor.listen(&dir.url("survey")).unwrap();
    let _c = Client::builder("http://10.0.0.9:8080")
        .survey(dir.url("survey"))
        .meta("ignored", "by legacy")
        .start()
        .unwrap();
    let end = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < end, "no raw answer to a legacy survey");
        surveyor.send(Message::new(&[], &[])).unwrap();
        match surveyor.recv() {
            Ok(m) => {
                assert_eq!(m.body(), b"http://10.0.0.9:8080");
                break;
            }
            Err(e) if e.is_timeout() => {} // not connected yet: survey again
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_subscriber_on_a_legacy_publisher_takes_each_message_as_the_full_set() {
    let dir = Scratch::new("legacy-sub");
    let publisher = Socket::open(Protocol::Pub0, false).unwrap();
    publisher.listen(&dir.url("pub")).unwrap();
    let sub = Subscriber::builder()
        .publish(dir.url("pub"))
        .snapshot(None)
        .start()
        .unwrap();
    // Pub drops what it sends before the subscriber is connected: repeat until seen,
    // exactly as the original republishes on every change.
    wait_until("legacy list applied", || {
        publisher.send(Message::new(&[], b"web-2|web-1")).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        sub.peers() == ["web-1", "web-2"]
    });
    assert_eq!(sub.state(), gopherdiscovery::State::Live);
    wait_until("empty legacy list applied", || {
        publisher.send(Message::new(&[], &[])).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        sub.peers().is_empty()
    });
}

#[test]
fn watch_legacy_prints_the_legacy_publishers_list() {
    let dir = Scratch::new("legacy-watch");
    let publisher = Socket::open(Protocol::Pub0, false).unwrap();
    publisher.listen(&dir.url("pub")).unwrap();
    let url = dir.url("pub");
    let mut w = Proc::spawn(&["watch", "--publish", &url, "--legacy", "--json"]);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        while rx.recv_timeout(Duration::from_millis(50)).is_err() {
            let _ = publisher.send(Message::new(&[], b"x|y"));
        }
    });
    let v = w.json_where("x and y", |v| peers(v) == ["x", "y"]);
    assert_eq!(v["state"], "live");
    tx.send(()).unwrap();
    sender.join().unwrap();
}

/// Reads native surveys on a raw respondent that never announces (what a legacy
/// client looks like to the server) and returns their round numbers, until one
/// has a round above `until` (or, with `until` = None, the first one).
fn rounds_until(sock: &Socket, until: Option<u64>) -> Vec<u64> {
    let end = Instant::now() + DEADLINE;
    let mut rounds = Vec::new();
    loop {
        assert!(
            Instant::now() < end,
            "no survey past round {until:?}: saw {rounds:?}"
        );
        let Ok(m) = sock.recv() else { continue };
        let limits = gopherdiscovery::Limits::default();
        if let Ok(gopherdiscovery::wire::Message::Survey { round, .. }) =
            gopherdiscovery::wire::decode(m.body(), &limits)
        {
            rounds.push(round);
            if until.is_none_or(|u| round > u) {
                return rounds;
            }
        }
    }
}

#[test]
fn an_early_survey_goes_only_to_the_connection_that_has_not_announced() {
    let dir = Scratch::new("legacy-early");
    // A long interval: between the regular surveys (at the start, then 5 s later),
    // only early ones are sent.
    let server = Server::builder()
        .survey(dir.url("survey"))
        .publish(dir.url("publish"))
        .snapshot(dir.url("snapshot"))
        .interval(Duration::from_secs(5))
        .deadline(Duration::from_secs(1))
        .start()
        .unwrap();
    let connect = || {
        let s = Socket::open(Protocol::Respondent0, false).unwrap();
        s.set_recv_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        s.dial(&dir.url("survey")).unwrap();
        s
    };
    // The first regular survey (to nobody) goes out before A connects, so A's
    // connection is new to the loop and A is surveyed early, alone; without this
    // wait, A's connection could race that survey and A's early survey could come
    // late enough to be batched with B's.
    wait_until("the first regular survey", || server.stats().surveys >= 1);
    // A connects and is surveyed early.
    let a = connect();
    let first_a = rounds_until(&a, None)[0];
    // B connects later: its early survey has a round of its own...
    let b = connect();
    let round_b = *rounds_until(&b, Some(first_a)).last().unwrap();
    // ...which A never sees: everything A gets up to the next later survey skips it.
    let seen_by_a = rounds_until(&a, Some(round_b));
    let regular = seen_by_a.last().copied();
    assert!(
        !seen_by_a.contains(&round_b),
        "A was sent B's early survey (round {round_b}); A saw {seen_by_a:?}"
    );
    // And B gets the regular surveys as everyone does.
    let seen_by_b = rounds_until(&b, Some(round_b));
    assert_eq!(seen_by_b.last().copied(), regular);
    assert!(server.stats().surveys >= 3);
}
