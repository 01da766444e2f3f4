//! Bad input on every socket, lost publications, restarts and updates — against an
//! in-process server over real sockets.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gopherdiscovery::nng::{Message, Protocol, Socket};
use gopherdiscovery::{Client, EventKind, Metadata, Reason, Server, Subscriber, Update};

fn tcp_server() -> Server {
    Server::builder()
        .survey("tcp://127.0.0.1:0")
        .publish("tcp://127.0.0.1:0")
        .snapshot("tcp://127.0.0.1:0")
        .interval(Duration::from_millis(200))
        .deadline(Duration::from_millis(100))
        .start()
        .unwrap()
}

fn addr(url: &str) -> &str {
    url.strip_prefix("tcp://").unwrap()
}

/// Collects every update a subscriber delivers.
fn recording_subscriber(server: &Server) -> (Subscriber, Arc<Mutex<Vec<Update>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    let sub = Subscriber::builder()
        .publish(server.urls().publish.clone())
        .snapshot(Some(server.urls().snapshot.clone()))
        .on_update(move |u| l2.lock().unwrap().push(u.clone()))
        .start()
        .unwrap();
    (sub, log)
}

/// Sends raw SP answers (what a misbehaving respondent can put on the wire).
fn raw_respondent_answers(survey_url: &str, bodies: &[Vec<u8>]) -> Socket {
    let s = Socket::open(Protocol::Respondent0, true).unwrap();
    s.set_recv_timeout(Some(DEADLINE)).unwrap();
    s.dial(survey_url).unwrap();
    for body in bodies {
        // Wait for a survey, answer it with `body` under its header.
        let msg = s.recv().unwrap();
        msg.clear_body();
        msg.append(body);
        s.send(msg).unwrap();
    }
    s
}

#[test]
fn garbage_bytes_on_every_socket_are_dropped_and_the_server_keeps_serving() {
    let server = tcp_server();
    let u = server.urls().clone();
    // Not even SP: NNG refuses the handshake and closes the connection.
    for url in [&u.survey, &u.publish, &u.snapshot] {
        let mut t = TcpStream::connect(addr(url)).unwrap();
        let _ = t.write_all(b"\x00\x01GET / HTTP/1.1\r\n\r\n\xff\xfe garbage \x00\x00\x00");
    }
    // SP-framed but wrong answers.
    let oversized = {
        let mut m = gopherdiscovery::Member::new("big", 1);
        m.metadata.insert("k".into(), "v".repeat(6000));
        gopherdiscovery::wire::encode_answer(&m, 0, 0)
    };
    let bad = vec![
        vec![0xFF, 0x01, 0x02, 0x00], // truncated native answer
        vec![0xFF, 0x09, 0x02],       // unknown version
        vec![0xC3, 0x28],             // legacy answer, invalid UTF-8
        oversized,                    // over the answer size limit
        gopherdiscovery::wire::encode_answer(&gopherdiscovery::Member::new("", 3), 0, 0), // empty name
        vec![0xFF, 0x01, 0x01, 0, 0], // a survey sent back as an answer
    ];
    let _raw = raw_respondent_answers(&u.survey, &bad);
    wait_until("every bad answer counted", || {
        let s = server.stats();
        s.dropped_malformed >= 5 && s.dropped_oversize >= 1
    });
    // Garbage snapshot request.
    let req = Socket::open(Protocol::Req0, false).unwrap();
    req.dial(&u.snapshot).unwrap();
    req.send(Message::new(&[], b"\xff\x02\x07junk")).unwrap();
    wait_until("bad snapshot request counted", || {
        server.stats().dropped_requests >= 1
    });

    // Still serving: a member joins and a subscriber sees it.
    let _c = Client::builder("after-garbage")
        .survey(u.survey.clone())
        .start()
        .unwrap();
    let (sub, _) = recording_subscriber(&server);
    wait_until("member seen after the garbage", || {
        sub.peers() == ["after-garbage"]
    });
    assert_eq!(server.members().len(), 1, "no garbage became a member");
}

#[test]
fn the_server_says_what_it_dropped_at_debug_level() {
    let dir = Scratch::new("debuglog");
    let server = serve(&dir, &["--log-level", "debug"]);
    let _raw = raw_respondent_answers(&dir.url("survey"), &[vec![0xFF, 0x07, 0x02]]);
    wait_until("a debug line naming the dropped answer", || {
        let e = server.stderr.lock().unwrap();
        e.contains("dropped an answer") && e.contains("unsupported protocol version 7")
    });
}

#[test]
fn a_subscriber_that_loses_publications_ends_with_the_servers_view() {
    let server = Server::builder()
        .survey("tcp://127.0.0.1:0")
        .publish("tcp://127.0.0.1:0")
        .snapshot("tcp://127.0.0.1:0")
        .interval(Duration::from_millis(300))
        .deadline(Duration::from_millis(150))
        .publication_bytes(1024) // many small publications
        .start()
        .unwrap();
    let u = server.urls().clone();
    // A one-message queue and a slow handler: publications are lost under a burst.
    let sub = Subscriber::builder()
        .publish(u.publish.clone())
        .snapshot(Some(u.snapshot.clone()))
        .recv_buffer(1)
        .on_update(|_| std::thread::sleep(Duration::from_millis(2)))
        .start()
        .unwrap();
    wait_until("subscriber live", || {
        sub.state() == gopherdiscovery::State::Live
    });
    let clients: Vec<Client> = (0..1000)
        .map(|i| {
            Client::builder(format!("member-{i:04}"))
                .survey(u.survey.clone())
                .start()
                .unwrap()
        })
        .collect();
    wait_until("1000 members at the server", || server.position().1 == 1000);
    wait_until("subscriber digest equals the server's", || {
        let (seq, count, digest) = server.position();
        sub.position().1 == seq && sub.digest() == digest && sub.peers().len() == count
    });
    assert!(
        sub.resyncs() >= 1,
        "the burst was meant to lose publications and force a resync"
    );
    drop(clients);
    wait_until("all left, subscriber agrees", || {
        let (_, count, digest) = server.position();
        count == 0 && sub.digest() == digest && sub.peers().is_empty()
    });
}

#[test]
fn metadata_update_and_restart_are_published_as_such() {
    let server = tcp_server();
    let u = server.urls().clone();
    let (_sub, log) = recording_subscriber(&server);
    let c = Client::builder("svc")
        .survey(u.survey.clone())
        .meta("v", "1")
        .start()
        .unwrap();
    let find = |kind: EventKind, reason: Reason| {
        let log = log.clone();
        move || {
            log.lock()
                .unwrap()
                .iter()
                .flat_map(|u| u.events.clone())
                .find(|e| e.kind == kind && e.reason == reason)
        }
    };
    wait_until("joined", || {
        find(EventKind::Joined, Reason::None)().is_some()
    });
    let mut md = Metadata::new();
    md.insert("v".into(), "2".into());
    c.set_metadata(md).unwrap();
    wait_until("updated", || {
        find(EventKind::Updated, Reason::None)().is_some_and(|e| e.member.metadata["v"] == "2")
    });
    let old = c.member().incarnation;
    // A restart: same name, new process (new incarnation) on a new connection,
    // before the old connection is closed.
    let c2 = Client::builder("svc")
        .survey(u.survey.clone())
        .start()
        .unwrap();
    wait_until("restart pair", || {
        let left = find(EventKind::Left, Reason::Restarted)();
        let joined = find(EventKind::Joined, Reason::Restarted)();
        matches!((left, joined), (Some(l), Some(j)) if l.member.incarnation == old && j.member.incarnation == c2.member().incarnation)
    });
    // Closing the old process's connection must not remove the new incarnation.
    drop(c);
    let (tx, rx) = std::sync::mpsc::channel();
    let probe = Subscriber::builder()
        .publish(u.publish.clone())
        .snapshot(Some(u.snapshot.clone()))
        .on_update(move |u| {
            let _ = tx.send(u.clone());
        })
        .start()
        .unwrap();
    let first = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(first.peers, vec!["svc"]);
    wait_until("server still has the new incarnation", || {
        server
            .members()
            .iter()
            .any(|m| m.incarnation == c2.member().incarnation)
    });
    drop(probe);
}

#[test]
fn bad_options_and_addresses_get_specific_errors() {
    use gopherdiscovery::Error;
    let e = Server::builder()
        .interval(Duration::from_millis(500))
        .deadline(Duration::from_millis(500))
        .start()
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            Error::InvalidOption {
                option: "deadline",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("shorter than the interval"), "{e}");

    let e = Server::builder().survey("nonsense").start().err().unwrap();
    assert!(matches!(e, Error::InvalidUrl { .. }), "{e}");
    let e = Server::builder().survey("bogus://x").start().err().unwrap();
    assert!(matches!(e, Error::InvalidUrl { .. }), "{e}");

    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", held.local_addr().unwrap());
    let e = Server::builder()
        .survey(url.clone())
        .publish("tcp://127.0.0.1:0")
        .snapshot("tcp://127.0.0.1:0")
        .start()
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::AddressInUse { url: u } if *u == url),
        "{e}"
    );

    let e = Client::builder("")
        .survey("tcp://127.0.0.1:1")
        .start()
        .err()
        .unwrap();
    assert!(matches!(e, Error::InvalidMember(_)), "{e}");
    let e = Client::builder("x".repeat(2000)).start().err().unwrap();
    assert!(e.to_string().contains("2000"), "{e}");
}

#[test]
fn a_client_answers_only_real_surveys_and_keeps_answering_after_garbage() {
    use gopherdiscovery::wire;
    let dir = Scratch::new("client-garbage");
    let url = dir.url("survey");
    // A raw surveyor plays the server, so the test picks the survey ids and bodies.
    let surveyor = Socket::open(Protocol::Surveyor0, true).unwrap();
    surveyor
        .set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    surveyor.listen(&url).unwrap();
    let client = Client::builder("http://c:1").survey(&url).start().unwrap();
    wait_until("the client connects", || client.connections() == 1);

    let send = |id: u32, body: &[u8]| {
        surveyor
            .send(Message::new(&id.to_be_bytes(), body))
            .unwrap();
    };
    let heartbeat = wire::encode_heartbeat(&wire::Heartbeat {
        epoch: 1,
        seq: 0,
        counter: 1,
        interval_ms: 1000,
        warming: false,
        count: 0,
        digest: 0,
    });
    send(0x8000_0011, b"\xff\x03garbage");
    send(0x8000_0012, &[0xff, 0x03, 0x01, 0x00]); // a survey cut short
    send(0x8000_0013, &heartbeat); // well formed, but not a survey
    send(0x8000_0014, &wire::encode_survey(7, 1));
    send(0x8000_0015, b""); // the original Go server's survey

    // One connection keeps its order, so an answer to a bad survey would come first.
    let mut answered = Vec::new();
    let end = std::time::Instant::now() + DEADLINE;
    while !answered.iter().any(|(id, _)| *id == 0x8000_0015) {
        assert!(
            std::time::Instant::now() < end,
            "answers so far: {answered:?}"
        );
        let Ok(m) = surveyor.recv() else { continue };
        let id = u32::from_be_bytes(m.header()[..4].try_into().unwrap());
        if id != wire::ANNOUNCE_ID {
            answered.push((id, m.body().to_vec()));
        }
    }
    let ids: Vec<u32> = answered.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![0x8000_0014, 0x8000_0015]);
    let limits = gopherdiscovery::Limits::default();
    match wire::decode(&answered[0].1, &limits).unwrap() {
        wire::Message::Answer {
            epoch,
            round,
            member,
        } => assert_eq!((epoch, round, member.name.as_str()), (7, 1, "http://c:1")),
        other => panic!("not an answer: {other:?}"),
    }
    assert_eq!(answered[1].1, b"http://c:1");
}

#[test]
fn a_subscriber_closed_from_its_own_handler_returns_and_stops() {
    let server = tcp_server();
    let _m = Client::builder("m")
        .survey(server.urls().survey.clone())
        .start()
        .unwrap();
    let slot: Arc<Mutex<Option<Subscriber>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let (s2, tx2) = (slot.clone(), Mutex::new(tx));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    let sub = Subscriber::builder()
        .publish(server.urls().publish.clone())
        .snapshot(Some(server.urls().snapshot.clone()))
        .on_update(move |u| {
            let n = c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if u.peers == ["m"] {
                // Close from the handler's own thread: returns at once (it cannot
                // wait for itself), and the other threads end.
                if let Some(mut me) = s2.lock().unwrap().take() {
                    assert!(me.on_own_thread());
                    me.close();
                    let _ = tx2.lock().unwrap().send(n);
                }
            }
        })
        .start()
        .unwrap();
    *slot.lock().unwrap() = Some(sub);
    let n = rx
        .recv_timeout(DEADLINE)
        .expect("close from the handler did not return (it waited for its own threads)");
    assert!(n >= 1);
}
