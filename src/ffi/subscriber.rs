//! `gd_subscriber_*`, `gd_on_peers`, `gd_on_event`: watching the member set.
//!
//! The core subscriber takes one handler at build time. The C face installs a
//! dispatcher ([`Watch::deliver`]) that reads callback slots the caller may change
//! later. Its rules, which the header promises:
//! - no callback runs before the constructor has stored the handle in `*out` (the
//!   *gate* opens after that);
//! - callbacks of one handle never run at the same time (`busy` names the thread
//!   running one);
//! - replacing a callback or closing from another thread waits until no callback
//!   of the handle runs; from inside a callback, replacing takes effect at once
//!   and closing is refused (it would wait for itself).

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use super::{age_ms, gd_auth, read_keys, write_stats, AuthFields, SizedStats};
use super::{
    cstr, gd_metadata_entry, gd_result, guard, init_options, name_in, read_options, run,
    to_cstring, url_or, CStrings, Fail, Handle, SizedOptions,
};
use crate::auth::Auth;
use crate::member::{Event, EventKind, Reason};
use crate::net::{DEFAULT_PUBLISH_URL, DEFAULT_SNAPSHOT_URL};
use crate::subscriber::{State, Subscriber, Update};

/// Called with the full sorted peer list: `peers` holds `count` NUL-terminated
/// names followed by a NULL entry. `peers` and the strings are owned by the
/// library and valid until the callback returns (copy what you keep). `user` is
/// the pointer given with the callback.
pub type gd_peers_cb =
    Option<unsafe extern "C" fn(user: *mut c_void, peers: *const *const c_char, count: usize)>;

/// Called once per member event. `event` and everything it points to are owned
/// by the library and valid until the callback returns. `user` is the pointer
/// given with the callback.
pub type gd_event_cb = Option<unsafe extern "C" fn(user: *mut c_void, event: *const gd_event)>;

/// What happened to a member.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gd_event_kind {
    /// It entered the member set.
    GD_EVENT_JOINED = 1,
    /// It left the member set.
    GD_EVENT_LEFT = 2,
    /// Its metadata changed.
    GD_EVENT_UPDATED = 3,
}

/// Why it happened.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gd_reason {
    /// No particular reason: a plain join, a metadata update, or a difference
    /// found by a resync.
    GD_REASON_NONE = 0,
    /// Its connection closed (the process exited or crashed).
    GD_REASON_CLOSED = 1,
    /// It missed `evict_after` consecutive surveys (hung or partitioned).
    GD_REASON_TIMEOUT = 2,
    /// It came back with a new incarnation (the process restarted).
    GD_REASON_RESTARTED = 3,
}

/// Whether a subscriber's view can be trusted.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gd_state {
    /// No snapshot yet.
    GD_STATE_SYNCING = 0,
    /// In step with the server.
    GD_STATE_LIVE = 1,
    /// No heartbeat for `stale_after` intervals: the view is the last one known.
    GD_STATE_STALE = 2,
}

/// One member event, as given to a `gd_event_cb`. Owned by the library; valid
/// until the callback returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_event {
    /// Joined, left or updated (a `gd_event_kind` value).
    pub kind: gd_event_kind,
    /// Why (a `gd_reason` value); `gd_reason_str` names it.
    pub reason: gd_reason,
    /// The member's name (its service address), NUL-terminated.
    pub name: *const c_char,
    /// The member's metadata after the change (for `left`: as it was),
    /// `metadata_count` entries sorted by key; NULL when the count is 0.
    pub metadata: *const gd_metadata_entry,
    /// Number of entries at `metadata`.
    pub metadata_count: usize,
    /// Random per member process start (0 for a legacy member).
    pub incarnation: u64,
    /// The server's epoch (random per server start; 0 for a legacy publisher).
    pub epoch: u64,
    /// The seq of the publication that carried the event.
    pub seq: u64,
    /// True when the event comes from a snapshot (the first view or a resync):
    /// the difference between the old view and the snapshot.
    pub snapshot: bool,
    /// +1 per metadata change of this incarnation, 0 at its start: with
    /// `incarnation`, the member's version (docs/PROTOCOL.md).
    pub generation: u32,
}

/// Settings of `gd_subscriber_open` (and of a client that also watches). Fill it
/// with `gd_subscriber_options_init`, then change what you need. Strings are read
/// only during the call that takes the options.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_subscriber_options {
    /// `sizeof(gd_subscriber_options)` as the caller was compiled; set by
    /// `gd_subscriber_options_init`.
    pub struct_size: usize,
    /// Publish URL of the server; NULL: `tcp://127.0.0.1:50007`.
    pub publish: *const c_char,
    /// Snapshot URL of the server; NULL: `tcp://127.0.0.1:50008` (or none when
    /// `legacy` is set).
    pub snapshot: *const c_char,
    /// Non-zero: the publisher is a legacy (Go) server whose every publication is
    /// the full list; there is no snapshot socket, so `snapshot` must be NULL.
    pub legacy: i32,
    /// How long one snapshot request may take before it is retried, in
    /// milliseconds (default 2000).
    pub snapshot_timeout_ms: u32,
    /// Missed heartbeats before the state turns stale (default 3).
    pub stale_after: u32,
    /// Peer-list callback installed before the subscriber starts, so it also sees
    /// the first view; NULL (the default): none. Same contract as `gd_on_peers`.
    pub on_peers: gd_peers_cb,
    /// Event callback installed before the subscriber starts, so it also sees the
    /// first view's `joined` events; NULL (the default): none. Same contract as
    /// `gd_on_event`.
    pub on_event: gd_event_cb,
    /// Passed to `on_peers` and `on_event`; the library never reads it.
    pub user: *mut c_void,
    /// Several servers to merge (docs/PROTOCOL.md, "Several servers"): `servers_count`
    /// (publish, snapshot) URL pairs, copied during the call; NULL with a count of
    /// 0 (the default): the one server of `publish` and `snapshot`. When set,
    /// `publish`, `snapshot` and `legacy` must be left unset. The view holds a
    /// member while some live server does; the state is stale only when no
    /// server is live. See `gd_subscriber_servers`.
    pub servers: *const super::gd_server_urls,
    /// Number of pairs at `servers`.
    pub servers_count: usize,
    /// The keyring, as `gd_server_options.keys`: `keys_count` pointers to
    /// `GD_KEY_LEN` bytes, primary first. **Copied during the call:** the caller
    /// keeps ownership and may free them when it returns. Under required (the
    /// default with a keyring) only publications and snapshots that verify are
    /// taken, and snapshot requests are signed. In a client's `watch`, leaving
    /// all five keyring fields at their defaults takes the client's keyring, auth
    /// and mesh label; setting any of them gives the subscriber its own. NULL / 0
    /// (the default): no keyring.
    pub keys: *const *const u8,
    /// Number of pointers at `keys`.
    pub keys_count: usize,
    /// The keyring as a file instead of `keys`, as `gd_server_options.keyring_file`.
    pub keyring_file: *const c_char,
    /// A `gd_auth` value, as `gd_server_options.auth` (default `GD_AUTH_DEFAULT`).
    pub auth: i32,
    /// The mesh label, as `gd_server_options.mesh_label` (NULL: empty).
    pub mesh_label: *const c_char,
}

// SAFETY: `repr(C)`, starts with `struct_size: usize`; the other fields are
// raw pointers, integers and nullable function pointers, valid for every bit
// pattern.
unsafe impl SizedOptions for gd_subscriber_options {
    const NAME: &'static str = "gd_subscriber_options";
    fn defaults() -> Self {
        gd_subscriber_options {
            struct_size: std::mem::size_of::<Self>(),
            publish: std::ptr::null(),
            snapshot: std::ptr::null(),
            legacy: 0,
            snapshot_timeout_ms: crate::DEFAULT_SNAPSHOT_TIMEOUT.as_millis() as u32,
            stale_after: crate::DEFAULT_STALE_AFTER,
            on_peers: None,
            on_event: None,
            user: std::ptr::null_mut(),
            servers: std::ptr::null(),
            servers_count: 0,
            keys: std::ptr::null(),
            keys_count: 0,
            keyring_file: std::ptr::null(),
            auth: gd_auth::GD_AUTH_DEFAULT as i32,
            mesh_label: std::ptr::null(),
        }
    }
    const EARLIER_SIZES: &'static [usize] = &[
        // Before authentication.
        std::mem::offset_of!(gd_subscriber_options, keys),
    ];
}

impl gd_subscriber_options {
    fn auth_fields(&self) -> AuthFields {
        AuthFields {
            keys: self.keys,
            keys_count: self.keys_count,
            keyring_file: self.keyring_file,
            auth: self.auth,
            mesh_label: self.mesh_label,
        }
    }
}

type PeersFn = unsafe extern "C" fn(*mut c_void, *const *const c_char, usize);
type EventFn = unsafe extern "C" fn(*mut c_void, *const gd_event);

#[derive(Clone, Copy)]
struct Slot<F> {
    f: F,
    user: *mut c_void,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// The constructor has not returned yet: callbacks wait.
    Pending,
    Open,
    /// Closing or closed: no callback runs any more.
    Closed,
}

struct WatchState {
    gate: Gate,
    peers: Option<Slot<PeersFn>>,
    event: Option<Slot<EventFn>>,
    /// The thread running a callback of this handle, if any.
    busy: Option<ThreadId>,
    /// The latest peer list the subscriber delivered (None before the first view).
    seen: Option<Vec<String>>,
    /// The peers callback was replaced from inside a callback: give the new one
    /// the current list before going idle.
    peers_replaced: bool,
}

// SAFETY: the raw pointers are the caller's `user` values, only handed back to the
// caller's callbacks; the header says they are called on a library thread.
unsafe impl Send for WatchState {}

/// The callback slots of one subscriber and the rules of calling them.
pub(crate) struct Watch {
    st: Mutex<WatchState>,
    idle: Condvar,
}

impl Watch {
    fn new(o: &gd_subscriber_options) -> Arc<Watch> {
        Arc::new(Watch {
            st: Mutex::new(WatchState {
                gate: Gate::Pending,
                peers: o.on_peers.map(|f| Slot { f, user: o.user }),
                event: o.on_event.map(|f| Slot { f, user: o.user }),
                busy: None,
                seen: None,
                peers_replaced: false,
            }),
            idle: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, WatchState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, WatchState>) -> MutexGuard<'a, WatchState> {
        self.idle.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    fn set_gate(&self, gate: Gate) {
        self.lock().gate = gate;
        self.idle.notify_all();
    }

    /// The subscriber's handler (on its thread): events, then the peer list if it
    /// changed.
    fn deliver(&self, u: &Update) {
        let mut st = self.lock();
        while st.gate == Gate::Pending || (st.gate == Gate::Open && st.busy.is_some()) {
            st = self.wait(st);
        }
        if st.gate == Gate::Closed {
            return;
        }
        st.busy = Some(std::thread::current().id());
        let changed = st.seen.as_deref() != Some(&u.peers[..]);
        if changed {
            st.seen = Some(u.peers.clone());
        }
        drop(st);
        for e in &u.events {
            // Read the slot per event: a callback may replace it, a close stop it.
            let slot = {
                let st = self.lock();
                if st.gate != Gate::Open {
                    break;
                }
                st.event
            };
            if let Some(s) = slot {
                call_event(s, e, u);
            }
        }
        let slot = {
            let st = self.lock();
            if changed && st.gate == Gate::Open {
                st.peers
            } else {
                None
            }
        };
        if let Some(s) = slot {
            call_peers(s, &u.peers);
        }
        self.finish();
    }

    /// Ends a callback run: first hands the current list to a peers callback
    /// installed from inside it, then marks the handle idle.
    fn finish(&self) {
        loop {
            let mut st = self.lock();
            if std::mem::take(&mut st.peers_replaced) && st.gate == Gate::Open {
                if let (Some(s), Some(list)) = (st.peers, st.seen.clone()) {
                    drop(st);
                    call_peers(s, &list);
                    continue;
                }
            }
            st.busy = None;
            drop(st);
            self.idle.notify_all();
            return;
        }
    }

    /// `gd_on_peers`: replace the slot, then give the new callback the current list.
    fn set_peers(&self, slot: Option<Slot<PeersFn>>) {
        let me = std::thread::current().id();
        let mut st = self.lock();
        if st.busy == Some(me) {
            st.peers = slot;
            st.peers_replaced = slot.is_some();
            return;
        }
        while st.busy.is_some() {
            st = self.wait(st);
        }
        st.peers = slot;
        let (Some(s), Some(list), Gate::Open) = (slot, st.seen.clone(), st.gate) else {
            return;
        };
        st.busy = Some(me);
        drop(st);
        call_peers(s, &list);
        self.finish();
    }

    /// `gd_on_event`: replace the slot once no callback of the handle runs.
    fn set_event(&self, slot: Option<Slot<EventFn>>) {
        let me = std::thread::current().id();
        let mut st = self.lock();
        while st.busy.is_some() && st.busy != Some(me) {
            st = self.wait(st);
        }
        st.event = slot;
    }

    /// Stops every callback: refused from inside one; otherwise waits for the one
    /// running (on any thread), after which none runs again.
    fn close(&self, what: &str) -> Result<(), Fail> {
        let me = std::thread::current().id();
        let mut st = self.lock();
        if st.busy == Some(me) {
            return Err(Fail::invalid(format!(
                "{what} was called from the handle's own callback, where it would wait for \
                 itself; close it from another thread (the handle stays open)"
            )));
        }
        st.gate = Gate::Closed;
        while st.busy.is_some() {
            st = self.wait(st);
        }
        Ok(())
    }
}

fn call_peers(s: Slot<PeersFn>, peers: &[String]) {
    let c = CStrings::new(peers.iter().map(String::as_str));
    // SAFETY: the caller registered `f` for exactly this signature; the array
    // and strings live until it returns.
    unsafe { (s.f)(s.user, c.as_ptr(), c.len()) };
}

fn call_event(s: Slot<EventFn>, e: &Event, u: &Update) {
    let name = to_cstring(&e.member.name);
    let strings: Vec<_> = e
        .member
        .metadata
        .iter()
        .map(|(k, v)| (to_cstring(k), to_cstring(v)))
        .collect();
    let entries: Vec<gd_metadata_entry> = strings
        .iter()
        .map(|(k, v)| gd_metadata_entry {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let ev = gd_event {
        kind: match e.kind {
            EventKind::Joined => gd_event_kind::GD_EVENT_JOINED,
            EventKind::Left => gd_event_kind::GD_EVENT_LEFT,
            EventKind::Updated => gd_event_kind::GD_EVENT_UPDATED,
        },
        reason: match e.reason {
            Reason::None => gd_reason::GD_REASON_NONE,
            Reason::Closed => gd_reason::GD_REASON_CLOSED,
            Reason::Timeout => gd_reason::GD_REASON_TIMEOUT,
            Reason::Restarted => gd_reason::GD_REASON_RESTARTED,
        },
        name: name.as_ptr(),
        metadata: if entries.is_empty() {
            std::ptr::null()
        } else {
            entries.as_ptr()
        },
        metadata_count: entries.len(),
        incarnation: e.member.incarnation,
        epoch: u.epoch,
        seq: u.seq,
        snapshot: u.snapshot,
        generation: e.member.generation,
    };
    // SAFETY: as in `call_peers`; `ev` and what it points to outlive the call.
    unsafe { (s.f)(s.user, &ev) };
}

/// A running subscriber (opaque): one of its own (`gd_subscriber_open`) or the
/// one inside a client that watches (`gd_client_subscriber`).
pub struct gd_subscriber {
    sub: Subscriber,
    watch: Arc<Watch>,
    /// Owned by a `gd_client`: `gd_subscriber_close` refuses it.
    in_client: bool,
    /// A client's subscriber that took the client's authentication settings:
    /// `gd_client_set_keyring` replaces its keyring too.
    client_auth: bool,
}

impl gd_subscriber {
    /// Builds and starts a subscriber from C options; `client` is the
    /// authentication of the client it watches for, if any, taken when the
    /// options set no keyring field. The gate stays shut until
    /// [`gd_subscriber::open_gate`].
    ///
    /// # Safety
    /// `options` is NULL or a `gd_subscriber_options` filled by its init call
    /// (see [`read_options`]) whose URL strings are NULL or NUL-terminated and
    /// whose keyring fields are as [`AuthFields::read`] needs them.
    pub(crate) unsafe fn start(
        options: *const gd_subscriber_options,
        client: Option<&Auth>,
    ) -> Result<gd_subscriber, Fail> {
        // SAFETY: our contract on `options` is `read_options`'s.
        let o = unsafe { read_options(options) }?;
        // SAFETY: our contract: the URL is NULL or NUL-terminated; copied.
        let publish = unsafe { url_or(o.publish, "publish", DEFAULT_PUBLISH_URL) }?;
        // SAFETY: as for `publish`; the borrow ends within this call.
        let snapshot =
            unsafe { super::opt_str(o.snapshot, "snapshot", gd_result::GD_INVALID_URL) }?;
        let snapshot = match (o.legacy != 0, snapshot) {
            (true, Some(_)) => {
                return Err(Fail::invalid(
                    "legacy and snapshot exclude each other (a legacy publisher has no snapshot socket)",
                ))
            }
            (true, None) => None,
            (false, s) => Some(s.unwrap_or(DEFAULT_SNAPSHOT_URL).to_owned()),
        };
        // SAFETY: our contract covers `servers` as `read_servers` needs it.
        let servers = unsafe { super::servers::read_servers(o.servers, o.servers_count) }?;
        if !servers.is_empty() && (!o.publish.is_null() || !o.snapshot.is_null() || o.legacy != 0) {
            return Err(Fail::invalid(
                "servers excludes publish, snapshot and legacy (a legacy publisher can only be the single server)",
            ));
        }
        let fields = o.auth_fields();
        let client_auth = client.is_some() && fields.is_unset();
        let auth = match client {
            Some(a) if client_auth => a.clone(),
            // SAFETY: our contract on the keyring fields is `AuthFields::read`'s.
            _ => unsafe { fields.read() }?,
        };
        let watch = Watch::new(&o);
        let w = watch.clone();
        let mut builder = Subscriber::builder()
            .authentication(auth)
            .publish(publish)
            .snapshot(snapshot)
            .snapshot_timeout(Duration::from_millis(o.snapshot_timeout_ms.into()))
            .stale_after(o.stale_after)
            .on_update(move |u| w.deliver(u));
        for (p, s) in servers {
            builder = builder.server(p, s);
        }
        let sub = builder.start()?;
        Ok(gd_subscriber {
            sub,
            watch,
            in_client: client.is_some(),
            client_auth,
        })
    }

    /// True for a client's subscriber that took the client's authentication.
    pub(crate) fn takes_client_auth(&self) -> bool {
        self.client_auth
    }

    /// The subscriber behind the handle.
    pub(crate) fn subscriber(&self) -> &Subscriber {
        &self.sub
    }

    /// Lets callbacks run: called once the handle is stored in the caller's `*out`.
    pub(crate) fn open_gate(&self) {
        self.watch.set_gate(Gate::Open);
    }

    /// The first half of closing from C, on a shared reference (a callback of
    /// this handle may still be using it): refused from inside one of its
    /// callbacks; otherwise waits for a running callback and lets none start.
    /// Dropping the handle afterwards stops the subscriber thread.
    pub(crate) fn stop_callbacks(&self, what: &str) -> Result<(), Fail> {
        if self.sub.on_own_thread() {
            return Err(Fail::invalid(format!(
                "{what} was called from the handle's own callback, where it would wait for \
                 itself; close it from another thread (the handle stays open)"
            )));
        }
        self.watch.close(what)
    }
}

// SAFETY: the C type is the Rust type.
unsafe impl Handle for gd_subscriber {
    type Rust = gd_subscriber;
    const WHAT: &'static str = "subscriber";
}

/// Writes the default settings into `*options` (and sets its `struct_size`).
/// Returns `GD_INVALID_OPTION` when `options` is NULL.
///
/// # Safety
/// `options` is NULL or points to a writable `gd_subscriber_options`.
#[no_mangle]
pub unsafe extern "C" fn gd_subscriber_options_init(
    options: *mut gd_subscriber_options,
) -> gd_result {
    // SAFETY: our contract is `init_options`'s.
    unsafe { init_options("gd_subscriber_options_init", options) }
}

/// Opens a subscriber: subscribes to the publish URL, fetches a snapshot, then
/// applies deltas, and calls the callbacks on every change.
///
/// `options` may be NULL (defaults, no callbacks); it is read only during the
/// call. On success `*out` receives a new subscriber. **Ownership:** the caller
/// owns it and frees it with `gd_subscriber_close`, exactly once. On failure
/// `*out` is not written. `out` must not be NULL (`GD_INVALID_OPTION`).
///
/// The URLs are dialled without waiting: a server that is not up yet is retried
/// in the background (state `GD_STATE_SYNCING` until the first snapshot).
/// No callback runs before this call has stored the handle in `*out`.
///
/// Errors: `GD_INVALID_URL`, `GD_INVALID_OPTION` (the message names the
/// option, keyring fields included), `GD_TRANSPORT`, `GD_IO`.
///
/// # Safety
/// `options` is NULL or a `gd_subscriber_options` filled by
/// `gd_subscriber_options_init` whose strings are NULL or NUL-terminated and
/// whose `keys` is NULL or holds `keys_count` pointers, each NULL or to
/// `GD_KEY_LEN` readable bytes; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn gd_subscriber_open(
    options: *const gd_subscriber_options,
    out: *mut *mut gd_subscriber,
) -> gd_result {
    run("gd_subscriber_open", || {
        if out.is_null() {
            return Err(Fail::invalid("out is NULL"));
        }
        // SAFETY: our contract on `options` is `start`'s.
        let sub = unsafe { gd_subscriber::start(options, None) }?;
        // SAFETY: `out` is not NULL (checked first), so writable by our contract.
        let ptr = unsafe { gd_subscriber::give(out, sub) };
        // SAFETY: `ptr` was just given out; the caller cannot close it before
        // this call returns.
        unsafe { gd_subscriber::borrow(ptr) }?.open_gate();
        Ok(())
    })
}

/// Stops a subscriber and frees it. Waits for a callback in progress (on any
/// thread); after it returns no callback of this subscriber runs.
///
/// **Ownership:** takes back a subscriber from `gd_subscriber_open`; afterwards
/// the pointer is invalid. NULL is accepted (returns `GD_OK`). Never call it
/// twice, nor while another thread uses the subscriber (except from its own
/// callbacks, which it waits for).
///
/// Refused with `GD_INVALID_OPTION`, the subscriber left open and working:
/// - from inside one of this subscriber's callbacks (it would wait for itself;
///   close it from another thread);
/// - on the subscriber of a client (`gd_client_subscriber`): `gd_client_close`
///   frees it.
///
/// # Safety
/// `sub` is NULL or a subscriber from `gd_subscriber_open` or
/// `gd_client_subscriber` whose owner is not yet closed, which no other call is
/// using (its own callbacks aside).
#[no_mangle]
pub unsafe extern "C" fn gd_subscriber_close(sub: *mut gd_subscriber) -> gd_result {
    run("gd_subscriber_close", || {
        if sub.is_null() {
            return Ok(());
        }
        // SAFETY: our contract on `sub` is `borrow`'s.
        let s = unsafe { gd_subscriber::borrow(sub) }?;
        if s.in_client {
            return Err(Fail::invalid(
                "this subscriber belongs to a client: gd_client_close frees it",
            ));
        }
        s.stop_callbacks("gd_subscriber_close")?;
        // SAFETY: our contract; it is one of `gd_subscriber_open` (`in_client`
        // is false), `s` is not used any more, and no callback uses it.
        drop(unsafe { gd_subscriber::take(sub) });
        Ok(())
    })
}

/// Replaces the keyring of a running subscriber (`keys_count` pointers, each to
/// `GD_KEY_LEN` bytes, primary first): publications and snapshots are verified
/// with the new keys, snapshot requests signed with the new primary; the mode
/// and mesh label stay. `sub` may be a client's subscriber
/// (`gd_client_subscriber`); one that took the client's keyring follows
/// `gd_client_set_keyring` anyway. **Copied during the call:** the caller keeps
/// ownership of `keys` and the keys, and may clear and free them when it
/// returns. Any thread, callbacks included.
///
/// Errors, the keyring left as it was: `GD_INVALID_OPTION` (`sub` NULL; no
/// key, more than `GD_MAX_KEYS`, a NULL entry, a key given twice; a subscriber
/// started without a keyring: reopen it with one).
///
/// # Safety
/// `sub` is NULL or a subscriber from `gd_subscriber_open` or
/// `gd_client_subscriber` whose owner is not yet closed; `keys` is NULL or holds
/// `keys_count` pointers, each NULL or to `GD_KEY_LEN` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn gd_subscriber_set_keyring(
    sub: *const gd_subscriber,
    keys: *const *const u8,
    keys_count: usize,
) -> gd_result {
    run("gd_subscriber_set_keyring", || {
        // SAFETY: our contract on `sub` is `borrow`'s.
        let s = unsafe { gd_subscriber::borrow(sub) }?;
        // SAFETY: our contract on `keys` and `keys_count` is `read_keys`'s.
        let keyring = unsafe { read_keys(keys, keys_count, "keys") }?;
        s.sub.set_keyring(keyring)?;
        Ok(())
    })
}

/// Sets (or, with `callback = NULL`, removes) the peer-list callback of `sub`,
/// replacing the one set before (by options or an earlier call). `sub` is a
/// subscriber or the subscriber of a client that watches (`gd_client_subscriber`).
///
/// The callback receives the full sorted peer list: with the first view, then
/// whenever the list of names changes (not for a metadata-only update), and once
/// right away with the current list when there is one. It replaces the whole
/// list of, for example, a groupcache pool.
///
/// **Threads:** the callback is called on the subscriber's library thread
/// (`gd-subscriber`), except that the first call with the current list is made
/// by this function, on the calling thread, before it returns. Calls for one
/// subscriber never overlap. From another thread, this function first waits for
/// a callback of `sub` in progress; once it returns the old callback is never
/// called again, so its `user` may be freed. From inside a callback of `sub` it
/// does not wait: the new callback gets the current list as soon as the running
/// callback returns.
///
/// **In the callback** you may call any function of this API, on this or any
/// other handle, except: closing `sub` or its client (refused with
/// `GD_INVALID_OPTION`), and closing or registering on another handle whose
/// callback may at that moment be waiting on `sub` (they would wait for each
/// other). The callback must return; it must not unwind (throw) into the
/// library. The arguments live until it returns; `user` is yours.
///
/// Returns `GD_INVALID_OPTION` when `sub` is NULL.
///
/// # Safety
/// `sub` is NULL or a subscriber from `gd_subscriber_open` or
/// `gd_client_subscriber` whose owner is not yet closed; `callback`, if set,
/// must be safe to call with `user` until it is replaced or `sub` is closed.
#[no_mangle]
pub unsafe extern "C" fn gd_on_peers(
    sub: *mut gd_subscriber,
    callback: gd_peers_cb,
    user: *mut c_void,
) -> gd_result {
    run("gd_on_peers", || {
        // SAFETY: our contract on `sub` is `borrow`'s.
        let w = unsafe { gd_subscriber::borrow(sub) }?.watch.clone();
        w.set_peers(callback.map(|f| Slot { f, user }));
        Ok(())
    })
}

/// Sets (or, with `callback = NULL`, removes) the event callback of `sub`:
/// called once per member event (joined, left, updated, each with its reason
/// and metadata), in order, before the peer-list callback of the same change.
/// Events of the first view (`snapshot` true) are seen only by a callback set
/// in `gd_subscriber_options`; one set later sees the changes after it.
///
/// Threads, waiting, what the callback may call, and lifetimes: as for
/// `gd_on_peers` (this function never calls the callback itself).
///
/// Returns `GD_INVALID_OPTION` when `sub` is NULL.
///
/// # Safety
/// `sub` is NULL or a subscriber from `gd_subscriber_open` or
/// `gd_client_subscriber` whose owner is not yet closed; `callback`, if set,
/// must be safe to call with `user` until it is replaced or `sub` is closed.
#[no_mangle]
pub unsafe extern "C" fn gd_on_event(
    sub: *mut gd_subscriber,
    callback: gd_event_cb,
    user: *mut c_void,
) -> gd_result {
    run("gd_on_event", || {
        // SAFETY: our contract on `sub` is `borrow`'s.
        let w = unsafe { gd_subscriber::borrow(sub) }?.watch.clone();
        w.set_event(callback.map(|f| Slot { f, user }));
        Ok(())
    })
}

/// A copy of a peer list, from `gd_subscriber_peers`: `names` holds `count`
/// NUL-terminated names, sorted, followed by a NULL entry. **Ownership:** the
/// caller owns the list and frees it (with every string in it) with
/// `gd_peer_list_free`, exactly once; it does not depend on the subscriber and
/// may outlive it. Do not modify it.
#[repr(C)]
#[derive(Debug)]
pub struct gd_peer_list {
    /// `count` names, then NULL.
    pub names: *const *const c_char,
    /// Number of names.
    pub count: usize,
}

/// The allocation behind a `gd_peer_list`: the public part first, so a pointer to
/// it is a pointer to the whole.
#[repr(C)]
pub(crate) struct PeerListBox {
    list: gd_peer_list,
    strings: CStrings,
}

// SAFETY: `PeerListBox` is `repr(C)` and starts with its `gd_peer_list`, so a
// pointer to the box is a pointer to the list and back.
unsafe impl Handle for gd_peer_list {
    type Rust = PeerListBox;
    const WHAT: &'static str = "list";
}

/// Copies the current sorted peer list of `sub` (a subscriber or a client's
/// subscriber), for a caller who polls instead of (or as well as) taking
/// callbacks. Empty until the first view (see `gd_subscriber_state`).
///
/// On success `*out` receives a new list owned by the caller, to be freed with
/// `gd_peer_list_free`; on failure `*out` is not written. May be called from
/// any thread, callbacks included. Returns `GD_INVALID_OPTION` when `sub` or
/// `out` is NULL.
///
/// # Safety
/// `sub` is NULL or a subscriber from `gd_subscriber_open` or
/// `gd_client_subscriber` whose owner is not yet closed; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn gd_subscriber_peers(
    sub: *const gd_subscriber,
    out: *mut *mut gd_peer_list,
) -> gd_result {
    run("gd_subscriber_peers", || {
        // SAFETY: our contract on `sub` is `borrow`'s.
        let s = unsafe { gd_subscriber::borrow(sub) }?;
        if out.is_null() {
            return Err(Fail::invalid("out is NULL"));
        }
        let peers = s.sub.peers();
        let strings = CStrings::new(peers.iter().map(String::as_str));
        let b = PeerListBox {
            list: gd_peer_list {
                names: strings.as_ptr(),
                count: strings.len(),
            },
            strings,
        };
        // SAFETY: `out` is not NULL (checked above), so writable by our contract.
        unsafe { gd_peer_list::give(out, b) };
        Ok(())
    })
}

/// Frees a list from `gd_subscriber_peers`. NULL is accepted. Never call it twice
/// on the same list.
///
/// # Safety
/// `list` is NULL or a list from `gd_subscriber_peers` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn gd_peer_list_free(list: *mut gd_peer_list) {
    guard((), || {
        // SAFETY: our contract on `list` is `take`'s.
        drop(unsafe { gd_peer_list::take(list) });
    })
}

/// Writes the state of `sub` (a `gd_state` value) into `*out`. Any thread.
/// Returns `GD_INVALID_OPTION` when `sub` or `out` is NULL.
///
/// # Safety
/// `sub` is NULL or a subscriber from `gd_subscriber_open` or
/// `gd_client_subscriber` whose owner is not yet closed; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn gd_subscriber_state(
    sub: *const gd_subscriber,
    out: *mut gd_state,
) -> gd_result {
    run("gd_subscriber_state", || {
        // SAFETY: our contract on `sub` is `borrow`'s.
        let s = unsafe { gd_subscriber::borrow(sub) }?;
        if out.is_null() {
            return Err(Fail::invalid("out is NULL"));
        }
        let state = c_state(s.sub.state());
        // SAFETY: `out` is not NULL (checked above), so writable by our contract.
        unsafe { out.write(state) };
        Ok(())
    })
}

fn c_state(s: State) -> gd_state {
    match s {
        State::Syncing => gd_state::GD_STATE_SYNCING,
        State::Live => gd_state::GD_STATE_LIVE,
        State::Stale => gd_state::GD_STATE_STALE,
    }
}

/// What a subscriber sees now (`gd_subscriber_stats`), under the names of the
/// Rust `SubscriberStats`. Set `struct_size = sizeof(gd_subscriber_statistics)`
/// before the call: the library fills only the fields that fit in it (so a
/// binary built against an older header keeps working) and sets it to the
/// bytes it wrote.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_subscriber_statistics {
    /// `sizeof(gd_subscriber_statistics)` as the caller was compiled, set by the
    /// caller; on return, the bytes the library wrote.
    pub struct_size: usize,
    /// Syncing, live or stale (a `gd_state` value).
    pub state: gd_state,
    /// Members in the view.
    pub members: u64,
    /// Epoch of the view (0 before the first view and for a legacy publisher).
    pub epoch: u64,
    /// Seq of the view.
    pub seq: u64,
    /// Live connections to the publish URL.
    pub publish_connections: u64,
    /// Live connections to the snapshot URL (0 for a legacy publisher).
    pub snapshot_connections: u64,
    /// Publications received (deltas, heartbeats, legacy lists).
    pub publications: u64,
    /// Milliseconds since the last publication; -1: none yet.
    pub last_publication_age_ms: i64,
    /// Snapshots fetched after the first.
    pub resyncs: u64,
    /// Publications dropped as malformed.
    pub dropped: u64,
    /// Publications and snapshots dropped by authentication (the Rust
    /// `AuthStats`, prefixed `auth_`): the tag did not verify (a wrong mesh
    /// label, altered bytes).
    pub auth_bad_mac: u64,
    /// Dropped: signed with a key id not in the keyring (the server has another key).
    pub auth_unknown_key: u64,
    /// Dropped: not signed while auth is required (a server without a key).
    pub auth_unsigned: u64,
    /// Dropped: a publication whose counter is not above the last of its epoch,
    /// or a snapshot not echoing the outstanding request's nonce.
    pub auth_replayed: u64,
    /// Dropped: stale survey (a server's reason: 0 on a subscriber, kept so
    /// every statistics struct has the same fields).
    pub auth_stale_survey: u64,
    /// Dropped: wrong connection (a server's reason: 0 on a subscriber).
    pub auth_wrong_connection: u64,
    /// Accepted: unsigned publications and snapshots under `GD_AUTH_PERMISSIVE`.
    pub auth_unsigned_accepted: u64,
}

// SAFETY: `repr(C)`, starts with `struct_size: usize`; an `i32` enum and plain
// integers after (the library writes only valid `gd_state` values).
unsafe impl SizedStats for gd_subscriber_statistics {
    const NAME: &'static str = "gd_subscriber_statistics";
}

/// Fills `*out` with what `sub` sees now. Set `out->struct_size =
/// sizeof(gd_subscriber_statistics)` first (see `gd_subscriber_statistics`). Any thread,
/// callbacks included. `out` is owned by the caller and written only during the
/// call.
///
/// Errors: `GD_INVALID_OPTION` (`sub` or `out` NULL, `struct_size` not set).
///
/// # Safety
/// `sub` is NULL or a subscriber from `gd_subscriber_open` or
/// `gd_client_subscriber` whose owner is not yet closed; `out` is NULL or a
/// `gd_subscriber_statistics` whose `struct_size` bytes are writable.
#[no_mangle]
pub unsafe extern "C" fn gd_subscriber_stats(
    sub: *const gd_subscriber,
    out: *mut gd_subscriber_statistics,
) -> gd_result {
    run("gd_subscriber_stats", || {
        // SAFETY: our contract on `sub` is `borrow`'s.
        let s = unsafe { gd_subscriber::borrow(sub) }?;
        let st = s.sub.stats();
        let stats = gd_subscriber_statistics {
            struct_size: std::mem::size_of::<gd_subscriber_statistics>(),
            state: c_state(st.state),
            members: st.members as u64,
            epoch: st.epoch,
            seq: st.seq,
            publish_connections: st.publish_connections,
            snapshot_connections: st.snapshot_connections,
            publications: st.publications,
            last_publication_age_ms: age_ms(st.last_publication_age),
            resyncs: st.resyncs,
            dropped: st.dropped,
            auth_bad_mac: st.auth.bad_mac,
            auth_unknown_key: st.auth.unknown_key,
            auth_unsigned: st.auth.unsigned,
            auth_replayed: st.auth.replayed,
            auth_stale_survey: st.auth.stale_survey,
            auth_wrong_connection: st.auth.wrong_connection,
            auth_unsigned_accepted: st.auth.unsigned_accepted,
        };
        // SAFETY: our contract on `out` is `write_stats`'s.
        unsafe { write_stats(out, stats) }
    })
}

/// Writes the position of the view of `sub`, `(epoch, seq)`, into `*epoch` and
/// `*seq`. Any thread. Returns `GD_INVALID_OPTION` when a pointer is NULL.
///
/// # Safety
/// `sub` is NULL or a subscriber from `gd_subscriber_open` or
/// `gd_client_subscriber` whose owner is not yet closed; `epoch` and `seq`
/// are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn gd_subscriber_position(
    sub: *const gd_subscriber,
    epoch: *mut u64,
    seq: *mut u64,
) -> gd_result {
    run("gd_subscriber_position", || {
        // SAFETY: our contract on `sub` is `borrow`'s.
        let s = unsafe { gd_subscriber::borrow(sub) }?;
        if epoch.is_null() || seq.is_null() {
            return Err(Fail::invalid("epoch or seq is NULL"));
        }
        let (e, q) = s.sub.position();
        // SAFETY: `epoch` is not NULL (checked above), so writable by our contract.
        unsafe { epoch.write(e) };
        // SAFETY: as for `epoch`.
        unsafe { seq.write(q) };
        Ok(())
    })
}

/// `"joined"`, `"left"` or `"updated"` for a `gd_event_kind` value, `"unknown"`
/// otherwise: a static string, never NULL, never freed.
#[no_mangle]
pub extern "C" fn gd_event_kind_str(kind: i32) -> *const c_char {
    name_in(EVENT_KIND_NAMES, kind, UNKNOWN)
}

/// `"none"`, `"closed"`, `"timeout"` or `"restarted"` for a `gd_reason` value,
/// `"unknown"` otherwise: a static string, never NULL, never freed.
#[no_mangle]
pub extern "C" fn gd_reason_str(reason: i32) -> *const c_char {
    name_in(REASON_NAMES, reason, UNKNOWN)
}

/// `"syncing"`, `"live"` or `"stale"` for a `gd_state` value, `"unknown"`
/// otherwise: a static string, never NULL, never freed.
#[no_mangle]
pub extern "C" fn gd_state_str(state: i32) -> *const c_char {
    name_in(STATE_NAMES, state, UNKNOWN)
}

const UNKNOWN: &std::ffi::CStr = cstr(b"unknown\0");

/// The names of `gd_event_kind`, for `gd_event_kind_str`.
const EVENT_KIND_NAMES: &[(i32, &std::ffi::CStr)] = &[
    (gd_event_kind::GD_EVENT_JOINED as i32, cstr(b"joined\0")),
    (gd_event_kind::GD_EVENT_LEFT as i32, cstr(b"left\0")),
    (gd_event_kind::GD_EVENT_UPDATED as i32, cstr(b"updated\0")),
];

/// The names of `gd_reason`, for `gd_reason_str`.
const REASON_NAMES: &[(i32, &std::ffi::CStr)] = &[
    (gd_reason::GD_REASON_NONE as i32, cstr(b"none\0")),
    (gd_reason::GD_REASON_CLOSED as i32, cstr(b"closed\0")),
    (gd_reason::GD_REASON_TIMEOUT as i32, cstr(b"timeout\0")),
    (gd_reason::GD_REASON_RESTARTED as i32, cstr(b"restarted\0")),
];

/// The names of `gd_state`, for `gd_state_str`.
const STATE_NAMES: &[(i32, &std::ffi::CStr)] = &[
    (gd_state::GD_STATE_SYNCING as i32, cstr(b"syncing\0")),
    (gd_state::GD_STATE_LIVE as i32, cstr(b"live\0")),
    (gd_state::GD_STATE_STALE as i32, cstr(b"stale\0")),
];
