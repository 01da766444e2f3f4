//! `gd_client_*`: a member behind an opaque handle, optionally watching the member
//! set (the original's `ClientWithSub`).

use std::ffi::c_char;
use std::ptr::NonNull;
use std::time::Duration;

use super::{
    gd_metadata_entry, gd_result, gd_subscriber, gd_subscriber_options, guard, init_options,
    read_metadata, read_options, req_str, run, slice, Fail, Handle, SizedOptions,
};
use crate::client::Client;

/// Settings of `gd_client_join`. Fill it with `gd_client_options_init`, then set
/// at least `name`. Everything it points to is read only during the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_client_options {
    /// `sizeof(gd_client_options)` as the caller was compiled; set by
    /// `gd_client_options_init`.
    pub struct_size: usize,
    /// The member's name: its service address, e.g. `"http://10.0.0.1:8080"`.
    /// Required (NULL: `GD_INVALID_MEMBER`); unique in a mesh.
    pub name: *const c_char,
    /// Survey URLs of the servers to answer: `survey_count` non-NULL strings.
    /// NULL / 0 (the default): `tcp://127.0.0.1:40007`.
    pub surveys: *const *const c_char,
    /// Number of entries at `surveys`.
    pub survey_count: usize,
    /// Metadata announced with the name: `metadata_count` entries (a later equal
    /// key replaces an earlier one). NULL / 0 (the default): none.
    pub metadata: *const gd_metadata_entry,
    /// Number of entries at `metadata`.
    pub metadata_count: usize,
    /// Longest wait between reconnection attempts while a server is down, in
    /// milliseconds (default 1000).
    pub reconnect_max_ms: u32,
    /// Also watch the member set with these subscriber settings (their callbacks
    /// included); reach the subscriber with `gd_client_subscriber`. NULL (the
    /// default): the client does not watch.
    pub watch: *const gd_subscriber_options,
}

// SAFETY: `repr(C)`, starts with `struct_size: usize`; the other fields are
// raw pointers and integers, valid for every bit pattern.
unsafe impl SizedOptions for gd_client_options {
    const NAME: &'static str = "gd_client_options";
    fn defaults() -> Self {
        gd_client_options {
            struct_size: std::mem::size_of::<Self>(),
            name: std::ptr::null(),
            surveys: std::ptr::null(),
            survey_count: 0,
            metadata: std::ptr::null(),
            metadata_count: 0,
            reconnect_max_ms: crate::DEFAULT_RECONNECT_MAX.as_millis() as u32,
            watch: std::ptr::null(),
        }
    }
}

/// A running member (opaque), perhaps watching the member set.
pub struct gd_client {
    /// The subscriber of a client that watches: the raw pointer of a
    /// `Box<gd_subscriber>`, made once by `gd_client_join` and freed only by
    /// `Drop`. `gd_client_subscriber` hands out this very pointer from a shared
    /// borrow of the client, so no `&mut` is ever formed while C holds the
    /// client (other threads may be using it at the same time). Dropped before
    /// `client`, as the Rust `Client` does.
    watch: Option<NonNull<gd_subscriber>>,
    client: Client,
}

impl gd_client {
    /// The client's subscriber, if it watches.
    fn subscriber(&self) -> Option<&gd_subscriber> {
        // SAFETY: `watch` comes from `Box::into_raw` in `gd_client_join` and is
        // freed only when `self` is dropped, so it is live for the borrow of
        // `self`; only shared references are made from it.
        self.watch.map(|p| unsafe { p.as_ref() })
    }
}

impl Drop for gd_client {
    fn drop(&mut self) {
        if let Some(p) = self.watch.take() {
            // SAFETY: `p` comes from `Box::into_raw` in `gd_client_join` and is
            // freed only here, once; the pointers handed out by
            // `gd_client_subscriber` are invalid after `gd_client_close`.
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}

// SAFETY: the C type is the Rust type.
unsafe impl Handle for gd_client {
    type Rust = gd_client;
    const WHAT: &'static str = "client";
}

/// Writes the default settings into `*options` (and sets its `struct_size`).
/// Returns `GD_INVALID_OPTION` when `options` is NULL.
///
/// # Safety
/// `options` is NULL or points to a writable `gd_client_options`.
#[no_mangle]
pub unsafe extern "C" fn gd_client_options_init(options: *mut gd_client_options) -> gd_result {
    // SAFETY: our contract is `init_options`'s.
    unsafe { init_options("gd_client_options_init", options) }
}

/// Joins the mesh as a member: dials every survey URL and answers each survey
/// with the name and metadata. Servers that are not up yet are retried in the
/// background; the server sees the member within milliseconds of connecting.
///
/// `options` is required (its `name` is); it is read only during the call. On
/// success `*out` receives a new client. **Ownership:** the caller owns it and
/// frees it with `gd_client_close`, exactly once. On failure `*out` is not
/// written. `out` must not be NULL (`GD_INVALID_OPTION`).
///
/// With `options->watch` set, the client also watches (see
/// `gd_client_subscriber`); no callback runs before this call has stored the
/// handle in `*out`.
///
/// Errors: `GD_INVALID_MEMBER` (name or metadata), `GD_INVALID_URL`,
/// `GD_INVALID_OPTION`, `GD_TRANSPORT`, `GD_IO`.
///
/// Threads: the client answers on NNG's own threads (no thread of its own) and calls no
/// user code; a watching client's callbacks run as `gd_on_peers` says.
///
/// # Safety
/// `options` is NULL or a `gd_client_options` filled by `gd_client_options_init`
/// whose pointers and counts describe readable strings and arrays (and `watch`
/// is NULL or a `gd_subscriber_options` filled by its init call); `out` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn gd_client_join(
    options: *const gd_client_options,
    out: *mut *mut gd_client,
) -> gd_result {
    run("gd_client_join", || {
        if out.is_null() {
            return Err(Fail::invalid("out is NULL"));
        }
        if options.is_null() {
            return Err(Fail::invalid("options is NULL (the name is required)"));
        }
        // SAFETY: our contract on `options` is `read_options`'s.
        let o = unsafe { read_options(options) }?;
        // SAFETY: our contract: `name` is NULL or NUL-terminated; the builder
        // copies it.
        let name = unsafe { req_str(o.name, "name", gd_result::GD_INVALID_MEMBER) }?;
        // SAFETY: our contract on `metadata` and `metadata_count`.
        let metadata = unsafe { read_metadata(o.metadata, o.metadata_count) }?;
        let mut b = Client::builder(name)
            .metadata(metadata)
            .reconnect_max(Duration::from_millis(o.reconnect_max_ms.into()));
        // SAFETY: our contract on `surveys` and `survey_count`.
        let surveys = unsafe { slice(o.surveys, o.survey_count, "surveys") }?;
        for (i, &u) in surveys.iter().enumerate() {
            let what = format!("surveys[{i}]");
            // SAFETY: our contract: each survey URL is NULL or NUL-terminated;
            // the builder copies it.
            b = b.survey(unsafe { req_str(u, &what, gd_result::GD_INVALID_URL) }?);
        }
        let client = b.start()?;
        // The subscriber starts last, as the last step that can fail, so that a
        // failure never has to stop a subscriber whose callbacks wait for the gate.
        let watch = if o.watch.is_null() {
            None
        } else {
            // SAFETY: our contract on `watch` is `gd_subscriber::start`'s.
            let sub = unsafe { gd_subscriber::start(o.watch, true) }?;
            Some(NonNull::from(Box::leak(Box::new(sub))))
        };
        let c = gd_client { watch, client };
        // SAFETY: `out` is not NULL (checked first), so writable by our contract.
        unsafe { gd_client::give(out, c) };
        if let Some(w) = watch {
            // SAFETY: the box made above, now owned by the client just given
            // out; the caller cannot close it before this call returns.
            unsafe { w.as_ref() }.open_gate();
        }
        Ok(())
    })
}

/// Replaces the metadata of `client` (`count` entries at `entries`, read only
/// during the call; NULL is fine when `count` is 0). The server publishes an
/// `updated` event at once. Any thread, callbacks included.
///
/// Errors: `GD_INVALID_OPTION` (`client` NULL, or `entries` NULL with a count),
/// `GD_INVALID_MEMBER` (a NULL or non-UTF-8 key or value, over the size limit);
/// on error the metadata stays as it was.
///
/// # Safety
/// `client` is NULL or a client from `gd_client_join` not yet closed; `entries`
/// is NULL or points to `count` entries whose strings are NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn gd_client_set_metadata(
    client: *const gd_client,
    entries: *const gd_metadata_entry,
    count: usize,
) -> gd_result {
    run("gd_client_set_metadata", || {
        // SAFETY: our contract on `client` is `borrow`'s.
        let c = unsafe { gd_client::borrow(client) }?;
        // SAFETY: our contract on `entries` and `count` is `read_metadata`'s.
        let md = unsafe { read_metadata(entries, count) }?;
        c.client.set_metadata(md)?;
        Ok(())
    })
}

/// The subscriber of a client that watches (`gd_client_options.watch`), for
/// `gd_on_peers`, `gd_on_event`, `gd_subscriber_peers` and the other
/// `gd_subscriber_*` getters. NULL when `client` is NULL or does not watch.
///
/// **Ownership:** borrowed from the client, valid until `gd_client_close`
/// returns; never pass it to `gd_subscriber_close` (refused with
/// `GD_INVALID_OPTION`).
///
/// Like the other calls that do not close, it may run on several threads at
/// once, callbacks included; every call on a client returns the same pointer.
///
/// # Safety
/// `client` is NULL or a client from `gd_client_join` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn gd_client_subscriber(client: *mut gd_client) -> *mut gd_subscriber {
    guard(std::ptr::null_mut(), || {
        // SAFETY: our contract on `client` is `borrow`'s. Only a shared borrow:
        // other threads may be using the client at the same time.
        match unsafe { gd_client::borrow(client) } {
            Ok(c) => c.watch.map_or(std::ptr::null_mut(), NonNull::as_ptr),
            Err(_) => std::ptr::null_mut(),
        }
    })
}

/// Leaves the mesh: closes the client's connections (the server sees the member
/// leave at once, reason `closed`), stops its subscriber if it watches (waiting
/// for a callback in progress; none runs after this returns), then frees it.
///
/// **Ownership:** takes back a client from `gd_client_join`; afterwards the
/// pointer and its subscriber pointer are invalid. NULL is accepted (returns
/// `GD_OK`). Never call it twice, nor while another thread uses the client
/// (except from the client's own callbacks, which it waits for).
///
/// Refused with `GD_INVALID_OPTION` (the client left open and working) when
/// called from inside a callback of the client's own subscriber: it would wait
/// for itself; close it from another thread.
///
/// # Safety
/// `client` is NULL or a client from `gd_client_join` not yet closed, which no
/// other call is using (its own callbacks aside).
#[no_mangle]
pub unsafe extern "C" fn gd_client_close(client: *mut gd_client) -> gd_result {
    run("gd_client_close", || {
        if client.is_null() {
            return Ok(());
        }
        // SAFETY: our contract on `client` is `borrow`'s.
        let c = unsafe { gd_client::borrow(client) }?;
        if let Some(w) = c.subscriber() {
            w.stop_callbacks("gd_client_close")?;
        }
        // SAFETY: our contract; `c` is not used any more, and once
        // `stop_callbacks` returned no callback uses the client.
        drop(unsafe { gd_client::take(client) });
        Ok(())
    })
}
