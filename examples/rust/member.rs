//! A member that keeps a groupcache-style peer pool current.
//!
//! ```text
//! cargo run --example member -- SURVEY_URL PUBLISH_URL SNAPSHOT_URL NAME
//! ```
//!
//! It joins the mesh as NAME and, on every change, replaces its pool with the full
//! sorted peer list (what `groupcache.HTTPPool.Set(peers...)` wants).

use std::sync::{Arc, Mutex};

use gopherdiscovery::{Client, Subscriber};

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
) -> gopherdiscovery::Result<(Client, Arc<Mutex<Pool>>)> {
    let pool = Arc::new(Mutex::new(Pool::default()));
    let p = pool.clone();
    let client = Client::builder(name)
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
    let (_client, pool) = start(&args[0], &args[1], &args[2], &args[3]).unwrap_or_else(|e| {
        eprintln!("member: {e}");
        std::process::exit(1);
    });
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
        let _server = gopherdiscovery::Server::builder()
            .survey(url("s"))
            .publish(url("p"))
            .snapshot(url("n"))
            .start()
            .unwrap();
        let (_a, pool_a) = start(&url("s"), &url("p"), &url("n"), "http://a:1").unwrap();
        let (_b, _pool_b) = start(&url("s"), &url("p"), &url("n"), "http://b:1").unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        while pool_a.lock().unwrap().peers != ["http://a:1", "http://b:1"] {
            assert!(Instant::now() < end, "pool never held both members");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(pool_a.lock().unwrap().owner("k").is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
