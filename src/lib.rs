//! Service discovery as a small embeddable library, on NNG's scalability protocols.
//!
//! ```
//! use std::sync::mpsc;
//! use std::time::Duration;
//! use gopherdiscovery::{Client, Server, Subscriber};
//!
//! # fn main() -> Result<(), gopherdiscovery::Error> {
//! let dir = std::env::temp_dir().join(format!("gd-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let url = |name: &str| format!("ipc://{}/{name}", dir.display());
//!
//! let _server = Server::builder()
//!     .survey(url("survey")).publish(url("publish")).snapshot(url("snapshot"))
//!     .start()?;
//! let _member = Client::builder("http://10.0.0.1:8080")
//!     .survey(url("survey"))
//!     .meta("zone", "a")
//!     .start()?;
//!
//! let (tx, rx) = mpsc::channel();
//! let _watcher = Subscriber::builder()
//!     .publish(url("publish")).snapshot(Some(url("snapshot")))
//!     .on_update(move |u| { let _ = tx.send(u.peers.clone()); })
//!     .start()?;
//! // The first update is the snapshot; wait until the member is in it.
//! let peers = rx.iter().find(|p| !p.is_empty()).unwrap();
//! assert_eq!(peers, vec!["http://10.0.0.1:8080"]);
//! # Ok(()) }
//! ```
//!
//! # Threads and shutdown
//!
//! ```text
//!  NNG task threads (one per CPU, at least two; NNG's own I/O threads besides)
//!    ├─ pipe events of every socket ──▶ a channel or a flag of the handle's owner
//!    └─ Client: each survey answered in the receive's completion callback
//!
//!  Server      gd-server-answers ──Answer──▶ gd-server-loop ◀──Added/Closed── pipe events
//!              (Inbox on surveyor)  bounded  (timers, table,    (two lists + a
//!              blocks when full:    channel   publications)      non-blocking nudge)
//!              back-pressure to TCP
//!              gd-server-snapshot: Inbox on rep0, encodes the table under its lock, replies
//!  Subscriber  gd-subscriber-recv ──Publication──▶ gd-subscriber ──▶ your handler
//!              gd-subscriber-snapshot ──Snapshot──▶ (replica, state)
//!              (asked by gd-subscriber; Inbox on req0)
//!  Client      no thread of its own (the callback above)
//!  Python      one dispatcher thread per subscriber calls Python callbacks; library
//!              threads never take the GIL (see the python/ crate)
//! ```
//!
//! Every handle tears down through one path (`net::Workers`), on `close`, on drop
//! and when `start` fails half-way, always in this order: tell its loop to stop →
//! stop every aio (a pending receive fails at once) → join its threads (not the
//! calling thread, when a subscriber is closed from its own handler) → close its
//! sockets → drop its pipe-event callbacks. Aios are stopped before their sockets
//! close because a receive that starts on a closing socket can wait on a queue that
//! is gone; the callbacks are dropped last because they hold the handle's shared
//! state (breaking the socket → callback → state cycle).
//!
//! # How it works
//!
//! ```text
//!  Client (raw respondent) --answers--> [survey ] SERVER [publish ] --deltas, heartbeats--> Subscriber
//!                          <--surveys--            table [snapshot] <--request / reply-->   (sub + req)
//! ```
//!
//! - The [`Server`] surveys every `interval` (default 1 s) and waits `deadline`
//!   (500 ms) for answers; a member missing `evict_after` (3) surveys in a row leaves
//!   with reason `timeout`. A closed connection removes its member at once (reason
//!   `closed`). Each change is published as a numbered delta `(epoch, seq)`; a
//!   heartbeat every interval carries the position, member count and set digest.
//! - A [`Client`] answers surveys with its name, metadata and incarnation, and
//!   announces itself on every new connection, so a joiner is seen in milliseconds.
//! - A [`Subscriber`] subscribes, fetches a snapshot, applies the deltas after it,
//!   and resyncs on a gap, a new epoch or a digest mismatch.
//! - Legacy: raw-string answers (the original Go client) are members without
//!   metadata; an optional legacy publish URL carries the `|`-joined full list.
//!
//! Pure parts have no sockets and are unit-tested alone: [`wire`] (the codec, see
//! `docs/PROTOCOL.md`), [`member_set`] (the member set with its digest, shared by
//! the next three), [`member_table`] (the server's table), [`replica`] (the
//! subscriber's copy of one server), [`merge`] (several servers' replicas merged
//! into one view) and [`sync`] (one server's snapshot-and-deltas driver, clock-free).
//!
//! # Limitations
//!
//! NNG 1.11 with a few fixes of ours is built in (`vendor/nng-sys`, see its
//! `PATCHES.md`); the crate's only unsafe NNG calls are in one private layer.
//! Several independent servers per mesh: members answer all of them and a
//! subscriber merges their views ([`SubscriberBuilder::server`],
//! docs/PROTOCOL.md, "Several servers"); the servers never talk to each other. With a
//! [`Keyring`] every message is signed (HMAC-SHA256) and replays are refused
//! ([`auth`], docs/PROTOCOL.md, "Authentication"); nothing is encrypted: the member
//! list travels in clear. Names are unique in a mesh: two processes announcing the
//! same name are seen as one member restarting (the later start wins a merge).

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod auth;
mod client;
mod error;
pub mod ffi;
mod member;
pub mod member_set;
pub mod member_table;
pub mod merge;
mod net;
#[doc(hidden)]
pub mod nng;
pub mod replica;
mod server;
mod subscriber;
pub mod sync;
pub mod wire;

pub use auth::{Auth, AuthMode, AuthStats, KeyId, Keyring};
pub use client::{Client, ClientBuilder, ClientStats, SurveyUrlStats};
pub use error::{Error, ErrorCode, Result};
pub use member::{
    digest, member_hash, new_incarnation, random_u64, Event, EventKind, Limits, Member, Metadata,
    Reason,
};
pub use net::{raise_fd_limit, DEFAULT_PUBLISH_URL, DEFAULT_SNAPSHOT_URL, DEFAULT_SURVEY_URL};
pub use nng::Error as NngError;
pub use server::{
    Histogram, LoggedEvent, MemberInfo, Server, ServerBuilder, ServerStats, ServerStatus,
    ServerUrls, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MEMBERS_PER_CONNECTION,
    HISTOGRAM_BOUNDS_SECONDS, HISTOGRAM_BUCKETS, RECENT_EVENTS,
};
pub use subscriber::{
    fetch_snapshot, fetch_snapshot_with, State, SubscribedServer, Subscriber, SubscriberBuilder,
    SubscriberStats, Update,
};

/// Default time between a server's regular surveys (1 s). Every face (Rust, C,
/// C++, Python, the CLI) takes its default from here.
pub const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1000);
/// Default survey deadline (500 ms): half of [`DEFAULT_INTERVAL`]. A server given
/// only an interval waits half of it ([`ServerBuilder::deadline`]).
pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_millis(500);
/// Default number of consecutive missed surveys before a member leaves (3).
pub const DEFAULT_EVICT_AFTER: u32 = 3;
/// Default time a subscriber waits for a snapshot before asking again (2 s).
pub const DEFAULT_SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2000);
/// Default number of heartbeat intervals without news before a subscriber is stale (3).
pub const DEFAULT_STALE_AFTER: u32 = 3;
/// Default longest wait between a client's reconnection attempts (1 s).
pub const DEFAULT_RECONNECT_MAX: std::time::Duration = std::time::Duration::from_millis(1000);

/// This library's version, e.g. `0.2.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The native wire protocol's version byte (`docs/PROTOCOL.md`).
pub const WIRE_VERSION: u8 = wire::VERSION;

/// The version of the NNG library linked in, e.g. `1.11.0`.
pub fn nng_version() -> &'static str {
    nng::version()
}
