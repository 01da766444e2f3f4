//! Several servers in the C ABI: the (publish, snapshot) URL pairs a subscriber
//! merges (`gd_subscriber_options.servers`) and the per-server status
//! (`gd_subscriber_servers`). See docs/PROTOCOL.md, "Several servers".

use std::ffi::{c_char, CString};

use super::{run, to_cstring, Fail, Handle};
use crate::subscriber::State;

/// One server a subscriber merges: its publish and snapshot URLs (both
/// NUL-terminated, non-NULL). Read only during the call that takes the options.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_server_urls {
    /// The server's publish URL.
    pub publish: *const c_char,
    /// The server's snapshot URL.
    pub snapshot: *const c_char,
}

/// One configured server as a subscriber sees it (in a `gd_server_list`).
#[repr(C)]
#[derive(Debug)]
pub struct gd_server_status {
    /// Its publish URL.
    pub publish: *const c_char,
    /// Its snapshot URL; NULL for a legacy publisher.
    pub snapshot: *const c_char,
    /// Epoch of this server's replica (0 before its first snapshot).
    pub epoch: u64,
    /// Seq of this server's replica.
    pub seq: u64,
    /// A `gd_state` value: syncing (no snapshot yet), live, or stale.
    pub state: i32,
    /// Non-zero while the server says it is warming (it may add members, not
    /// remove them).
    pub warming: i32,
    /// Members in this server's replica.
    pub members: usize,
    /// Milliseconds since its last publication; -1 when none came yet.
    pub last_publication_age_ms: i64,
    /// Snapshots fetched from it after the first.
    pub resyncs: u64,
}

/// A copy of every configured server's status, in configuration order, from
/// `gd_subscriber_servers`. **Ownership:** the caller owns it (with every string
/// in it) and frees it with `gd_server_list_free`, exactly once; it does not
/// depend on the subscriber. Do not modify it.
#[repr(C)]
#[derive(Debug)]
pub struct gd_server_list {
    /// `count` servers.
    pub servers: *const gd_server_status,
    /// Number of servers (1 for a subscriber of one server).
    pub count: usize,
    /// Servers that are live now.
    pub live: usize,
}

/// The allocation behind a `gd_server_list`: the public part first.
#[repr(C)]
pub(crate) struct ServerListBox {
    list: gd_server_list,
    items: Vec<gd_server_status>,
    strings: Vec<CString>,
}

// SAFETY: `ServerListBox` is `repr(C)` and starts with its `gd_server_list`, so a
// pointer to the box is a pointer to the list and back.
unsafe impl Handle for gd_server_list {
    type Rust = ServerListBox;
    const WHAT: &'static str = "list";
}

/// Copies the per-server status of `sub` (a subscriber or a client's
/// subscriber): URLs, position, state, warming, members, last publication age,
/// resyncs. May be called from any thread, callbacks included.
///
/// On success `*out` receives a new list owned by the caller, to be freed with
/// `gd_server_list_free`; on failure `*out` is not written. Returns
/// `GD_INVALID_OPTION` when `sub` or `out` is NULL.
///
/// # Safety
/// `sub` is NULL or a subscriber from `gd_subscriber_open` or
/// `gd_client_subscriber` whose owner is not yet closed; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn gd_subscriber_servers(
    sub: *const super::gd_subscriber,
    out: *mut *mut gd_server_list,
) -> super::gd_result {
    run("gd_subscriber_servers", || {
        // SAFETY: our contract on `sub` is `borrow`'s.
        let s = unsafe { super::gd_subscriber::borrow(sub) }?;
        if out.is_null() {
            return Err(Fail::invalid("out is NULL"));
        }
        let servers = s.subscriber().servers();
        let mut strings = Vec::with_capacity(2 * servers.len());
        let mut items = Vec::with_capacity(servers.len());
        for v in &servers {
            let publish = to_cstring(&v.publish);
            let snapshot = v.snapshot.as_deref().map(to_cstring);
            items.push(gd_server_status {
                // The CString's heap buffer does not move when the CString does.
                publish: publish.as_ptr(),
                snapshot: snapshot.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                epoch: v.epoch,
                seq: v.seq,
                state: match v.state {
                    State::Syncing => super::gd_state::GD_STATE_SYNCING as i32,
                    State::Live => super::gd_state::GD_STATE_LIVE as i32,
                    State::Stale => super::gd_state::GD_STATE_STALE as i32,
                },
                warming: i32::from(v.warming),
                members: v.members,
                last_publication_age_ms: v
                    .last_publication_age
                    .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                resyncs: v.resyncs,
            });
            strings.push(publish);
            strings.extend(snapshot);
        }
        let live = servers.iter().filter(|v| v.state == State::Live).count();
        let b = ServerListBox {
            list: gd_server_list {
                // The Vec's heap buffer does not move when the Vec does.
                servers: items.as_ptr(),
                count: items.len(),
                live,
            },
            items,
            strings,
        };
        // SAFETY: `out` is not NULL (checked above), so writable by our contract.
        unsafe { gd_server_list::give(out, b) };
        Ok(())
    })
}

/// Frees a list from `gd_subscriber_servers`. NULL is accepted. Never call it
/// twice on the same list.
///
/// # Safety
/// `list` is NULL or a list from `gd_subscriber_servers` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn gd_server_list_free(list: *mut gd_server_list) {
    super::guard((), || {
        // SAFETY: our contract on `list` is `take`'s.
        drop(unsafe { gd_server_list::take(list) });
    })
}

/// Copies `count` URL pairs at `servers` (the `servers` option).
///
/// # Safety
/// `servers` is as for [`super::slice`], and each pair's strings are NULL or
/// NUL-terminated, readable during the call.
pub(crate) unsafe fn read_servers(
    servers: *const gd_server_urls,
    count: usize,
) -> Result<Vec<(String, String)>, Fail> {
    // SAFETY: our contract is `slice`'s.
    let pairs = unsafe { super::slice(servers, count, "servers") }?;
    let code = super::gd_result::GD_INVALID_URL;
    pairs
        .iter()
        .map(|p| {
            // SAFETY: our contract: NULL or NUL-terminated; copied at once.
            let publish = unsafe { super::req_str(p.publish, "servers[].publish", code) }?;
            // SAFETY: as for `publish`.
            let snapshot = unsafe { super::req_str(p.snapshot, "servers[].snapshot", code) }?;
            Ok((publish.to_owned(), snapshot.to_owned()))
        })
        .collect()
}
