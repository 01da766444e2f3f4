//! A member that keeps a groupcache-style peer pool current.
//!
//! ```text
//! cargo run --example member -- SURVEY_URL PUBLISH_URL SNAPSHOT_URL NAME
//! ```
//!
//! It joins the mesh as NAME and, on every change, replaces its pool with the full
//! sorted peer list (what `groupcache.HTTPPool.Set(peers...)` wants). With
//! `GOPHERDISCOVERY_KEYRING_FILE` set, it signs and checks with that keyring (its
//! subscriber takes the client's).

use std::sync::{Arc, Mutex};

use gopherdiscovery::{Client, Keyring, Subscriber};

/// The application's view: which peers own which keys.
#[derive(Default)]
struct Pool {
    peers: Vec<String>,
}

impl Pool {
    fn set(&mut self, peers: &[String]) {
        self.peers = peers.to_vec();
        println!("pool: {}", self.peers.join(" "));
    }

    /// The peer that owns `key` (simple modulo sharding for the example).
    fn owner(&self, key: &str) -> Option<&str> {
        let h = key
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        self.peers
            .get((h % self.peers.len().max(1) as u64) as usize)
            .map(String::as_str)
    }
}

fn start(
    survey: &str,
    publish: &str,
    snapshot: &str,
    name: &str,
    keyring: Option<Keyring>,
) -> gopherdiscovery::Result<(Client, Arc<Mutex<Pool>>)> {
    let pool = Arc::new(Mutex::new(Pool::default()));
    let p = pool.clone();
    let mut client = Client::builder(name);
    if let Some(k) = keyring {
        client = client.keyring(k);
    }
    let client = client
        .survey(survey)
        .watch(
            Subscriber::builder()
                .publish(publish)
                .snapshot(Some(snapshot.to_string()))
                .on_update(move |u| p.lock().unwrap().set(&u.peers)),
        )
        .start()?;
    Ok((client, pool))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 {
        eprintln!("usage: member SURVEY_URL PUBLISH_URL SNAPSHOT_URL NAME");
        std::process::exit(2);
    }
    let fail = |e: gopherdiscovery::Error| -> ! {
        eprintln!("member: {e}");
        std::process::exit(1);
    };
    let keyring = std::env::var_os("GOPHERDISCOVERY_KEYRING_FILE")
        .map(|f| Keyring::from_file(f).unwrap_or_else(|e| fail(e)));
    let (_client, pool) =
        start(&args[0], &args[1], &args[2], &args[3], keyring).unwrap_or_else(|e| fail(e));
    loop {
        std::thread::park(); // runs until killed; the pool updates on the subscriber thread
        let _ = pool.lock().unwrap().owner("some-key");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn two_members_see_each_other_in_their_pools() {
        let dir = std::env::temp_dir().join(format!("gd-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = |n: &str| format!("ipc://{}/{n}", dir.display());
        // A keyed mesh: the server, both members and their subscribers.
        let key = Keyring::new([[5u8; 32]]).unwrap();
        let _server = gopherdiscovery::Server::builder()
            .survey(url("s"))
            .publish(url("p"))
            .snapshot(url("n"))
            .keyring(key.clone())
            .start()
            .unwrap();
        let k = || Some(key.clone());
        let (_a, pool_a) = start(&url("s"), &url("p"), &url("n"), "http://a:1", k()).unwrap();
        let (_b, _pool_b) = start(&url("s"), &url("p"), &url("n"), "http://b:1", k()).unwrap();
        // Without the key: never in the pools.
        let (_c, _pool_c) = start(&url("s"), &url("p"), &url("n"), "http://c:1", None).unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        while pool_a.lock().unwrap().peers != ["http://a:1", "http://b:1"] {
            assert!(Instant::now() < end, "pool never held both members");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(pool_a.lock().unwrap().owner("k").is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
