//! `gd_client_*`: a member behind an opaque handle, optionally watching the member
//! set (the original's `ClientWithSub`).

use std::ffi::c_char;
use std::time::Duration;

use super::{
    gd_metadata_entry, gd_result, gd_subscriber, gd_subscriber_options, init_options,
    read_metadata, read_options, req_str, run, slice, Fail, SizedOptions,
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
            reconnect_max_ms: 1000,
            watch: std::ptr::null(),
        }
    }
}

/// A running member (opaque), perhaps watching the member set.
pub struct gd_client {
    /// Boxed so that `gd_client_subscriber` hands out a stable pointer. Declared
    /// first: it is closed before the client, as the Rust `Client` does.
    watch: Option<Box<gd_subscriber>>,
    client: Client,
}

unsafe fn handle<'a>(client: *const gd_client) -> Result<&'a gd_client, Fail> {
    client
        .as_ref()
        .ok_or_else(|| Fail::invalid("client is NULL"))
}

/// Writes the default settings into `*options` (and sets its `struct_size`).
/// Returns `GD_INVALID_OPTION` when `options` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gd_client_options_init(options: *mut gd_client_options) -> gd_result {
    init_options("gd_client_options_init", options)
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
        let o = read_options(options)?;
        let name = req_str(o.name, "name", gd_result::GD_INVALID_MEMBER)?;
        let mut b = Client::builder(name)
            .metadata(read_metadata(o.metadata, o.metadata_count)?)
            .reconnect_max(Duration::from_millis(o.reconnect_max_ms.into()));
        for (i, &u) in slice(o.surveys, o.survey_count, "surveys")?
            .iter()
            .enumerate()
        {
            b = b.survey(req_str(
                u,
                &format!("surveys[{i}]"),
                gd_result::GD_INVALID_URL,
            )?);
        }
        let client = b.start()?;
        // The subscriber starts last, as the last step that can fail, so that a
        // failure never has to stop a subscriber whose callbacks wait for the gate.
        let watch = if o.watch.is_null() {
            None
        } else {
            Some(Box::new(gd_subscriber::start(o.watch, true)?))
        };
        let ptr = Box::into_raw(Box::new(gd_client { watch, client }));
        *out = ptr;
        if let Some(w) = &(*ptr).watch {
            w.open_gate();
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
#[no_mangle]
pub unsafe extern "C" fn gd_client_set_metadata(
    client: *const gd_client,
    entries: *const gd_metadata_entry,
    count: usize,
) -> gd_result {
    run("gd_client_set_metadata", || {
        let c = handle(client)?;
        c.client.set_metadata(read_metadata(entries, count)?)?;
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
#[no_mangle]
pub unsafe extern "C" fn gd_client_subscriber(client: *mut gd_client) -> *mut gd_subscriber {
    super::guard(std::ptr::null_mut(), || match client.as_mut() {
        Some(gd_client { watch: Some(w), .. }) => &mut **w as *mut gd_subscriber,
        _ => std::ptr::null_mut(),
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
#[no_mangle]
pub unsafe extern "C" fn gd_client_close(client: *mut gd_client) -> gd_result {
    run("gd_client_close", || {
        let Some(c) = client.as_ref() else {
            return Ok(());
        };
        if let Some(w) = &c.watch {
            w.stop_callbacks("gd_client_close")?;
        }
        drop(Box::from_raw(client));
        Ok(())
    })
}
