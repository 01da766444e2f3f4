//! Authenticated meshes with real sockets (loopback ipc): a keyring on every
//! side, the modes, and the replay rules (docs/PROTOCOL.md § Authentication).

mod common;

use std::time::Duration;

use common::{wait_until, Scratch};

use gopherdiscovery::{AuthMode, Client, Keyring, Server, Subscriber};

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
