//! Descriptor leaks, alone in their own test binary: the count of open descriptors
//! is per process, so no other test may open or close sockets meanwhile.

mod common;

use common::*;
use gopherdiscovery::{Client, Server};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A client closed right after it starts (while its connection is still being
/// made, handshaken or handed to its socket) must leave no descriptor behind.
/// NNG leaks one now and then on the dialling side without fix 3a
/// (vendor/nng-sys/PATCHES.md).
#[test]
fn clients_closed_right_after_start_leave_no_descriptor() {
    let server = Server::builder()
        .survey("tcp://127.0.0.1:0")
        .publish("tcp://127.0.0.1:0")
        .snapshot("tcp://127.0.0.1:0")
        .start()
        .unwrap();
    let url = server.urls().survey.clone();
    // Warm up: NNG's own threads and descriptors are created on first use.
    let warm_up = Client::builder("warm-up").survey(&url).start().unwrap();
    wait_until("the warm-up client joins", || server.members().len() == 1);
    drop(warm_up);
    wait_until("the warm-up client leaves", || server.members().is_empty());
    let baseline = open_fds();
    for i in 0..300 {
        let mut c = Client::builder(format!("http://m:{i}"))
            .survey(&url)
            .start()
            .unwrap();
        // Close at different moments of the connection's start.
        for _ in 0..(i % 4) * 50 {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        c.close();
    }
    // The server closes its side once it sees each close.
    wait_until("descriptors back to the baseline", || {
        open_fds() <= baseline
    });
}
