//! Authenticated meshes with real sockets (loopback ipc): a keyring on every
//! side, the modes, and the replay rules (docs/PROTOCOL.md § Authentication).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{keygen, wait_until, Proc, Scratch};
use gopherdiscovery::auth::{Checked, Role};
use gopherdiscovery::nng::{Message, PipeEvent, Protocol, Socket};
use gopherdiscovery::{wire, Auth, AuthMode, Client, Keyring, Server, State, Subscriber};

fn key(b: u8) -> Keyring {
    Keyring::new([[b; 32]]).unwrap()
}

#[test]
fn right_key_joins_wrong_or_no_key_never_appears() {
    let dir = Scratch::new("auth");
    let server = Server::builder()
        .survey(dir.url("survey"))
        .publish(dir.url("publish"))
        .snapshot(dir.url("snapshot"))
        .interval(Duration::from_millis(100))
        .keyring(key(1))
        .start()
        .unwrap();
    let good = Client::builder("good")
        .survey(dir.url("survey"))
        .keyring(key(1))
        .start()
        .unwrap();
    let wrong = Client::builder("wrong")
        .survey(dir.url("survey"))
        .keyring(key(2))
        .start()
        .unwrap();
    let none = Client::builder("none")
        .survey(dir.url("survey"))
        .start()
        .unwrap();
    let sub = Subscriber::builder()
        .publish(dir.url("publish"))
        .snapshot(Some(dir.url("snapshot")))
        .keyring(key(1))
        .start()
        .unwrap();
    wait_until("good joins the subscriber's view", || {
        sub.peers() == vec!["good".to_string()]
    });
    wait_until("drop counters rise", || {
        let a = server.stats().auth;
        a.unknown_key > 0 && a.unsigned > 0
    });
    // The clients with a wrong key or none never answered a survey they could
    // not verify; the server never admitted them.
    wait_until("the wrong key's client refuses surveys", || {
        wrong.stats().auth.unknown_key > 0 && none.stats().surveys_answered > 0
    });
    assert_eq!(server.members().len(), 1);
    assert_eq!(good.stats().auth.unknown_key, 0);
    let unkeyed = Subscriber::builder()
        .publish(dir.url("publish"))
        .snapshot(Some(dir.url("snapshot")))
        .keyring(key(3))
        .start()
        .unwrap();
    wait_until("a subscriber with another key drops publications", || {
        unkeyed.stats().auth.unknown_key > 0
    });
    assert!(unkeyed.peers().is_empty());
    assert_eq!(server.auth_mode(), AuthMode::Required);
    assert!(server.key_use()[0].1 > 0);
}

fn server(dir: &Scratch, auth: Option<AuthMode>) -> Server {
    let mut b = Server::builder()
        .survey(dir.url("survey"))
        .publish(dir.url("publish"))
        .snapshot(dir.url("snapshot"))
        .interval(Duration::from_millis(100))
        .keyring(key(1));
    if let Some(m) = auth {
        b = b.auth(m);
    }
    b.start().unwrap()
}

/// A raw respondent that answers every survey with its raw name, as the original
/// Go client does (legacy: nothing it sends can be signed).
struct Legacy {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Legacy {
    fn start(url: &str, name: &'static str) -> Legacy {
        let s = Socket::open(Protocol::Respondent0, true).unwrap();
        s.set_recv_timeout(Some(Duration::from_millis(50))).unwrap();
        s.dial(url).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Ok(m) = s.recv() {
                    let _ = s.send(Message::new(m.header(), name.as_bytes()));
                }
            }
            s.close();
        });
        Legacy {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Legacy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_legacy_member_is_refused_under_required_and_taken_under_permissive() {
    let dir = Scratch::new("auth-legacy");
    let srv = server(&dir, None);
    let keyed = Client::builder("keyed")
        .survey(dir.url("survey"))
        .keyring(key(1))
        .start()
        .unwrap();
    let legacy = Legacy::start(&dir.url("survey"), "legacy-1");
    wait_until("the legacy answers are dropped as unsigned", || {
        srv.stats().auth.unsigned >= 3
    });
    wait_until("the keyed member is in", || srv.members().len() == 1);
    assert_eq!(srv.members()[0].name, "keyed");
    drop((legacy, srv, keyed));

    let dir = Scratch::new("auth-legacy-permissive");
    let srv = server(&dir, Some(AuthMode::Permissive));
    let _legacy = Legacy::start(&dir.url("survey"), "legacy-1");
    wait_until("the legacy member joins", || {
        srv.members().iter().any(|m| m.name == "legacy-1")
    });
    let a = srv.stats().auth;
    assert!(a.unsigned_accepted > 0 && a.unsigned == 0, "{a:?}");
}

#[test]
fn another_mesh_label_with_the_same_key_is_refused() {
    let dir = Scratch::new("auth-label");
    let srv = Server::builder()
        .survey(dir.url("survey"))
        .publish(dir.url("publish"))
        .snapshot(dir.url("snapshot"))
        .interval(Duration::from_millis(100))
        .keyring(key(1))
        .mesh_label("prod")
        .start()
        .unwrap();
    let same = Client::builder("prod-member")
        .survey(dir.url("survey"))
        .keyring(key(1))
        .mesh_label("prod")
        .start()
        .unwrap();
    let other = Client::builder("staging-member")
        .survey(dir.url("survey"))
        .keyring(key(1))
        .mesh_label("staging")
        .start()
        .unwrap();
    wait_until("the prod member joins", || srv.members().len() == 1);
    wait_until("both sides count bad_mac", || {
        srv.stats().auth.bad_mac > 0 && other.stats().auth.bad_mac > 0
    });
    assert_eq!(srv.members()[0].name, "prod-member");
    assert_eq!(same.stats().auth.bad_mac, 0);
}

/// A survey relay between a member (dialling `front`) and the server: records
/// every answer the member sends. Closing it drops both sides, as a dead member's
/// connection would.
/// Answers captured by a [`Relay`]: (survey id, body).
type Captured = Arc<Mutex<Vec<(u32, Vec<u8>)>>>;

struct Relay {
    stop: Arc<AtomicBool>,
    answers: Captured,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(front_url: &str, server_url: &str) -> Relay {
        let front = Socket::open(Protocol::Surveyor0, true).unwrap();
        let back = Socket::open(Protocol::Respondent0, true).unwrap();
        for s in [&front, &back] {
            s.set_recv_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let back_pipe = Arc::new(AtomicU32::new(0));
        let bp = back_pipe.clone();
        back.pipe_notify(move |id, ev| {
            if ev == PipeEvent::Added {
                bp.store(id, Ordering::Relaxed);
            }
        })
        .unwrap();
        front.listen(front_url).unwrap();
        back.dial(server_url).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (f, b, st) = (front.clone(), back.clone(), stop.clone());
        let down = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Ok(m) = b.recv() {
                    let _ = f.send(Message::new(&m.header()[4..8], m.body()));
                }
            }
        });
        let (st, rec) = (stop.clone(), answers.clone());
        let up = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Ok(m) = front.recv() {
                    let id = u32::from_be_bytes(m.header().try_into().unwrap());
                    rec.lock().unwrap().push((id, m.body().to_vec()));
                    let mut h = back_pipe.load(Ordering::Relaxed).to_be_bytes().to_vec();
                    h.extend_from_slice(&id.to_be_bytes());
                    let _ = back.send(Message::new(&h, m.body()));
                }
            }
            front.close();
            back.close();
        });
        Relay {
            stop,
            answers,
            threads: vec![down, up],
        }
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs the replay scenario and says whether the dead member came back.
fn replayed_answers_bring_back(auth: bool) -> bool {
    let dir = Scratch::new("auth-replay");
    let mut b = Server::builder()
        .survey(dir.url("survey"))
        .publish(dir.url("publish"))
        .snapshot(dir.url("snapshot"))
        .interval(Duration::from_millis(100));
    let k = keygen();
    if auth {
        b = b.keyring(Keyring::from_base64(&k).unwrap());
    }
    let srv = b.start().unwrap();
    let mut relay = Relay::start(&dir.url("front"), &dir.url("survey"));
    // The member: a `join` process (the key from the environment).
    let front = dir.url("front");
    let env: &[(&str, &str)] = if auth {
        &[("GOPHERDISCOVERY_KEY", k.as_str())]
    } else {
        &[]
    };
    let mut member = Proc::spawn_env(&["join", "--name", "victim", "--survey", &front], env);
    wait_until("the member joins through the relay", || {
        srv.members().len() == 1
    });
    wait_until("a few answers are captured", || {
        relay.answers.lock().unwrap().len() >= 4
    });
    // The member is killed; the relay drops its server connection with it.
    member.stop_with(libc::SIGKILL);
    relay.close();
    wait_until("the member leaves", || srv.members().is_empty());
    let captured = relay.answers.lock().unwrap().clone();
    // The attacker replays every captured answer from a new connection, as
    // announces and under their own survey ids, for about 10 intervals.
    let evil = Socket::open(Protocol::Respondent0, true).unwrap();
    // Room for a whole batch: a send that finds the queue full is not made.
    evil.set_send_buffer(1024).unwrap();
    let pipe = Arc::new(AtomicU32::new(0));
    let p = pipe.clone();
    evil.pipe_notify(move |id, ev| {
        if ev == PipeEvent::Added {
            p.store(id, Ordering::Relaxed);
        }
    })
    .unwrap();
    evil.dial(&dir.url("survey")).unwrap();
    wait_until("the attacker connects", || {
        pipe.load(Ordering::Relaxed) != 0
    });
    let mut back = false;
    for round in 0..20 {
        for (id, body) in &captured {
            let sid = if round % 2 == 0 { *id } else { 0x8000_0000 };
            let mut h = pipe.load(Ordering::Relaxed).to_be_bytes().to_vec();
            h.extend_from_slice(&sid.to_be_bytes());
            let _ = evil.try_send(Message::new(&h, body));
        }
        // Paced by the server's own rounds (bounded: 20 × 50 ms).
        std::thread::sleep(Duration::from_millis(50));
        back |= !srv.members().is_empty();
    }
    if auth {
        let a = srv.stats();
        assert!(
            a.challenges > 0 && a.auth.stale_survey + a.auth.wrong_connection > 0,
            "{a:?}"
        );
    }
    evil.close();
    back
}

#[test]
fn a_captured_answer_replayed_from_a_new_connection_never_brings_a_dead_member_back() {
    assert!(
        !replayed_answers_bring_back(true),
        "with a keyring, the replay brought the member back"
    );
    // The control: without a keyring the same replay does bring it back, so the
    // scenario above really replays.
    assert!(replayed_answers_bring_back(false));
}

#[test]
fn a_proxy_replaying_the_last_heartbeat_does_not_keep_a_subscriber_live() {
    let dir = Scratch::new("auth-heartbeat-replay");
    let srv = server(&dir, None);
    let _member = Client::builder("m")
        .survey(dir.url("survey"))
        .keyring(key(1))
        .start()
        .unwrap();
    // The proxy: subscribes to the server, republishes everything, and once the
    // server is gone repeats the last heartbeat every 50 ms.
    let sub = Socket::open(Protocol::Sub0, false).unwrap();
    sub.subscribe_all().unwrap();
    sub.set_recv_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    sub.dial(&dir.url("publish")).unwrap();
    let publ = Socket::open(Protocol::Pub0, false).unwrap();
    publ.listen(&dir.url("proxy")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let gone = Arc::new(AtomicBool::new(false));
    // Heartbeats the proxy passed on: the test counts those after the watcher's
    // snapshot, so the replayed one is newer than the snapshot.
    let seen = Arc::new(AtomicU32::new(0));
    let (st, gn, sn) = (stop.clone(), gone.clone(), seen.clone());
    let proxy = std::thread::spawn(move || {
        let mut last: Option<Vec<u8>> = None;
        let mut replays = 0u32;
        while !st.load(Ordering::Relaxed) && replays < 2000 {
            match sub.recv() {
                Ok(m) => {
                    let heartbeat =
                        m.body().get(2) == Some(&gopherdiscovery::wire::kind::HEARTBEAT);
                    if heartbeat {
                        last = Some(m.body().to_vec());
                    }
                    let _ = publ.send(Message::new(&[], m.body()));
                    if heartbeat {
                        sn.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) if gn.load(Ordering::Relaxed) => {
                    if let Some(hb) = &last {
                        let _ = publ.send(Message::new(&[], hb));
                        replays += 1;
                    }
                }
                Err(_) => {}
            }
        }
        replays
    });
    let watcher = Subscriber::builder()
        .publish(dir.url("proxy"))
        .snapshot(Some(dir.url("snapshot")))
        .keyring(key(1))
        .start()
        .unwrap();
    wait_until("the watcher is live with the member", || {
        watcher.state() == State::Live && watcher.peers() == vec!["m".to_string()]
    });
    // Heartbeats went through the proxy (it keeps the last to replay).
    let before = seen.load(Ordering::Relaxed);
    wait_until("two more heartbeats pass the proxy", || {
        seen.load(Ordering::Relaxed) >= before + 2
    });
    assert_eq!(watcher.stats().auth.replayed, 0);
    drop(srv);
    gone.store(true, Ordering::Relaxed);
    wait_until("the watcher drops the replays", || {
        watcher.stats().auth.replayed >= 3
    });
    wait_until("the watcher turns stale despite the replays", || {
        watcher.state() == State::Stale
    });
    stop.store(true, Ordering::Relaxed);
    assert!(proxy.join().unwrap() >= 3);
}

#[test]
fn a_replayed_old_snapshot_is_refused() {
    let dir = Scratch::new("auth-snapshot-replay");
    let srv = server(&dir, None);
    let auth = Auth::with_keyring(key(1));
    let member = Client::builder("gone-later")
        .survey(dir.url("survey"))
        .keyring(key(1))
        .start()
        .unwrap();
    wait_until("the member joins", || srv.members().len() == 1);
    // Capture a valid, signed snapshot holding the member.
    let req = Socket::open(Protocol::Req0, false).unwrap();
    req.set_recv_timeout(Some(Duration::from_secs(10))).unwrap();
    req.dial(&dir.url("snapshot")).unwrap();
    let request = auth.seal(Role::SnapshotRequest, wire::encode_snapshot_request(7));
    req.send(Message::new(&[], &request)).unwrap();
    let old = req.recv().unwrap().body().to_vec();
    assert!(matches!(
        auth.check(Role::Snapshot, &old),
        Ok(Checked::Signed(_))
    ));
    drop(member);
    wait_until("the member leaves", || srv.members().is_empty());
    // A fake snapshot socket answers every request with the old snapshot.
    let rep = Socket::open(Protocol::Rep0, false).unwrap();
    rep.set_recv_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    rep.listen(&dir.url("fake-snapshot")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let fake = std::thread::spawn(move || {
        while !st.load(Ordering::Relaxed) {
            if rep.recv().is_ok() {
                let _ = rep.send(Message::new(&[], &old));
            }
        }
    });
    let watcher = Subscriber::builder()
        .publish(dir.url("publish"))
        .snapshot(Some(dir.url("fake-snapshot")))
        .keyring(key(1))
        .snapshot_timeout(Duration::from_millis(200))
        .start()
        .unwrap();
    wait_until("the old snapshot is refused as replayed", || {
        watcher.stats().auth.replayed >= 2
    });
    assert_eq!(watcher.state(), State::Syncing);
    assert!(watcher.peers().is_empty());
    stop.store(true, Ordering::Relaxed);
    fake.join().unwrap();
}

/// CPU time (user + system) of this process's threads named `name`, in seconds.
fn thread_cpu(name: &str) -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut ticks = 0u64;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis, from the state on:
        // utime is the 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        ticks += field(11) + field(12);
    }
    ticks as f64 / hz
}

#[test]
fn a_subscriber_whose_snapshots_are_refused_waits_without_spinning() {
    let dir = Scratch::new("auth-no-spin");
    let _srv = server(&dir, None);
    let start = std::time::Instant::now();
    let watcher = Subscriber::builder()
        .publish(dir.url("publish"))
        .snapshot(Some(dir.url("snapshot")))
        .keyring(key(9))
        .first_view_timeout(Duration::from_millis(100))
        .start()
        .unwrap();
    // About 2 s of heartbeats refused (the server ignores its snapshot requests).
    wait_until("20 publications refused", || {
        watcher.stats().auth.unknown_key >= 20
    });
    let wall = start.elapsed().as_secs_f64();
    let cpu = thread_cpu("gd-subscriber");
    assert_eq!(watcher.state(), State::Syncing);
    // A waiting worker uses next to nothing; a spinning one a whole core.
    assert!(
        cpu < 0.25 * wall,
        "the subscriber thread used {cpu:.2} s of CPU in {wall:.2} s"
    );
}
