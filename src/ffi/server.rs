//! `gd_server_*`: a discovery server behind an opaque handle.

use std::ffi::{c_char, CString};
use std::time::Duration;

use super::{gd_result, guard};
use super::{init_options, read_options, run, to_cstring, url_or, Fail, Handle, SizedOptions};
use crate::member::Limits;
use crate::net::{DEFAULT_PUBLISH_URL, DEFAULT_SNAPSHOT_URL, DEFAULT_SURVEY_URL};
use crate::server::Server;

/// Settings of `gd_server_start`. Fill it with `gd_server_options_init`, then
/// change what you need. Strings are read only during `gd_server_start`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_server_options {
    /// `sizeof(gd_server_options)` as the caller was compiled; set by
    /// `gd_server_options_init`. Lets the struct grow without breaking binaries
    /// built against an older header.
    pub struct_size: usize,
    /// Survey URL (surveyor); NULL: `tcp://127.0.0.1:40007`. A tcp port 0 picks a
    /// free port: read it back with `gd_server_url`.
    pub survey: *const c_char,
    /// Publish URL (publisher); NULL: `tcp://127.0.0.1:50007`.
    pub publish: *const c_char,
    /// Snapshot URL (reply socket); NULL: `tcp://127.0.0.1:50008`.
    pub snapshot: *const c_char,
    /// Optional legacy publish URL: the full sorted list joined with `|` on every
    /// change, as the original Go server sends. NULL (the default): none.
    pub legacy_publish: *const c_char,
    /// Time between surveys in milliseconds (default 1000).
    pub interval_ms: u32,
    /// How long answers to a survey are awaited, in milliseconds; must be shorter
    /// than the interval. 0 (the default): half the interval (500 with the
    /// default interval).
    pub deadline_ms: u32,
    /// Consecutive missed surveys before a member leaves with reason `timeout`
    /// (default 3).
    pub evict_after: u32,
    /// Most members kept; answers beyond are dropped and counted (default 100000).
    pub max_members: u32,
}

// SAFETY: `repr(C)`, starts with `struct_size: usize`; the other fields are
// raw pointers and integers, valid for every bit pattern.
unsafe impl SizedOptions for gd_server_options {
    const NAME: &'static str = "gd_server_options";
    fn defaults() -> Self {
        gd_server_options {
            struct_size: std::mem::size_of::<Self>(),
            survey: std::ptr::null(),
            publish: std::ptr::null(),
            snapshot: std::ptr::null(),
            legacy_publish: std::ptr::null(),
            interval_ms: crate::DEFAULT_INTERVAL.as_millis() as u32,
            deadline_ms: 0,
            evict_after: crate::DEFAULT_EVICT_AFTER,
            max_members: Limits::default().max_members as u32,
        }
    }
}

/// Which socket of a server, for `gd_server_url`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gd_socket {
    /// The survey socket members answer.
    GD_SOCKET_SURVEY = 1,
    /// The publish socket subscribers receive deltas and heartbeats from.
    GD_SOCKET_PUBLISH = 2,
    /// The snapshot socket subscribers fetch the member set from.
    GD_SOCKET_SNAPSHOT = 3,
    /// The legacy publish socket, if one was asked for.
    GD_SOCKET_LEGACY_PUBLISH = 4,
}

/// A running discovery server (opaque).
pub struct gd_server {
    /// Held for its `Drop`, which stops the server.
    #[allow(dead_code)]
    server: Server,
    /// The bound URLs, indexed by `gd_socket - 1`, kept as C strings for `gd_server_url`.
    urls: [Option<CString>; 4],
}

// SAFETY: the C type is the Rust type.
unsafe impl Handle for gd_server {
    type Rust = gd_server;
    const WHAT: &'static str = "server";
}

/// Writes the default settings into `*options` (and sets its `struct_size`).
/// Returns `GD_INVALID_OPTION` when `options` is NULL.
///
/// # Safety
/// `options` is NULL or points to a writable `gd_server_options`.
#[no_mangle]
pub unsafe extern "C" fn gd_server_options_init(options: *mut gd_server_options) -> gd_result {
    // SAFETY: our contract is `init_options`'s.
    unsafe { init_options("gd_server_options_init", options) }
}

/// Starts a discovery server: listens on the survey, publish and snapshot URLs
/// and starts surveying.
///
/// `options` may be NULL (all defaults); it is read only during the call. On
/// success `*out` receives a new server. **Ownership:** the caller owns the
/// server and frees it with `gd_server_close`, exactly once. On failure `*out` is
/// not written. `out` must not be NULL (`GD_INVALID_OPTION`).
///
/// Errors: `GD_INVALID_URL`, `GD_ADDRESS_IN_USE` (the message names the URL),
/// `GD_INVALID_OPTION` (nonsense timings, two sockets on one URL, bad
/// `struct_size`), `GD_TRANSPORT`, `GD_IO`.
///
/// Threads: the server runs three library threads (`gd-server-loop`,
/// `gd-server-answers`, `gd-server-snapshot`); it calls no user code.
///
/// # Safety
/// `options` is NULL or a `gd_server_options` filled by `gd_server_options_init`
/// whose strings are NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn gd_server_start(
    options: *const gd_server_options,
    out: *mut *mut gd_server,
) -> gd_result {
    run("gd_server_start", || {
        if out.is_null() {
            return Err(Fail::invalid("out is NULL"));
        }
        // SAFETY: our contract on `options` is `read_options`'s.
        let o = unsafe { read_options(options) }?;
        // SAFETY: our contract: each URL string is NULL or NUL-terminated;
        // `url_or` copies it.
        let survey = unsafe { url_or(o.survey, "survey", DEFAULT_SURVEY_URL) }?;
        // SAFETY: as for `survey`.
        let publish = unsafe { url_or(o.publish, "publish", DEFAULT_PUBLISH_URL) }?;
        // SAFETY: as for `survey`.
        let snapshot = unsafe { url_or(o.snapshot, "snapshot", DEFAULT_SNAPSHOT_URL) }?;
        // SAFETY: as for `survey`; the borrowed string is copied at once.
        let legacy = unsafe {
            super::opt_str(
                o.legacy_publish,
                "legacy_publish",
                gd_result::GD_INVALID_URL,
            )
        }?
        .map(str::to_owned);
        let limits = Limits {
            max_members: o.max_members as usize,
            ..Limits::default()
        };
        let mut builder = Server::builder();
        if o.deadline_ms != 0 {
            builder = builder.deadline(Duration::from_millis(o.deadline_ms.into()));
        }
        let server = builder
            .survey(survey)
            .publish(publish)
            .snapshot(snapshot)
            .legacy_publish(legacy)
            .interval(Duration::from_millis(o.interval_ms.into()))
            .evict_after(o.evict_after)
            .limits(limits)
            .start()?;
        let u = server.urls();
        let urls = [
            Some(to_cstring(&u.survey)),
            Some(to_cstring(&u.publish)),
            Some(to_cstring(&u.snapshot)),
            u.legacy_publish.as_deref().map(to_cstring),
        ];
        // SAFETY: `out` is not NULL (checked first), so writable by our contract.
        unsafe { gd_server::give(out, gd_server { server, urls }) };
        Ok(())
    })
}

/// The URL a server listens on for `which` (a `gd_socket` value), as bound: a tcp
/// port 0 is replaced by the real port. **Lifetime:** owned by the server, valid
/// until `gd_server_close`; do not free it. Returns NULL when `server` is NULL,
/// `which` is not a `gd_socket` value, or the server has no such socket.
///
/// # Safety
/// `server` is NULL or a server from `gd_server_start` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn gd_server_url(server: *const gd_server, which: i32) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: our contract on `server` is `borrow`'s.
        let Ok(s) = (unsafe { gd_server::borrow(server) }) else {
            return std::ptr::null();
        };
        match usize::try_from(which - 1).ok().and_then(|i| s.urls.get(i)) {
            Some(Some(u)) => u.as_ptr(),
            _ => std::ptr::null(),
        }
    })
}

/// Stops a server: closes its sockets (members see their connections close and
/// reconnect when a server comes back) and joins its threads, then frees it.
///
/// **Ownership:** takes back the server from `gd_server_start`; afterwards the
/// pointer and every URL string from `gd_server_url` are invalid. NULL is
/// accepted (returns `GD_OK`). Never call it twice on the same server, nor while
/// another thread uses the server.
///
/// # Safety
/// `server` is NULL or a server from `gd_server_start` not yet closed, which no
/// other call is using.
#[no_mangle]
pub unsafe extern "C" fn gd_server_close(server: *mut gd_server) -> gd_result {
    run("gd_server_close", || {
        // SAFETY: our contract on `server` is `take`'s.
        drop(unsafe { gd_server::take(server) });
        Ok(())
    })
}
