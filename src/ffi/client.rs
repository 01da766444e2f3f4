//! `gd_client_*`: a member behind an opaque handle, optionally watching the member
//! set (the original's `ClientWithSub`).

use std::ffi::c_char;
use std::ptr::NonNull;
use std::time::Duration;

use super::{age_ms, gd_auth, read_keys, to_cstring, write_stats, AuthFields, SizedStats};
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
    /// The keyring, as `gd_server_options.keys`: `keys_count` pointers to
    /// `GD_KEY_LEN` bytes, primary first. **Copied during the call:** the caller
    /// keeps ownership and may free them when it returns. Under required (the
    /// default with a keyring) the client answers only surveys that verify and
    /// signs its answers with the primary. A watching client's subscriber takes
    /// the client's keyring, auth and mesh label unless its own options set one
    /// of them. NULL / 0 (the default): no keyring.
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
            keys: std::ptr::null(),
            keys_count: 0,
            keyring_file: std::ptr::null(),
            auth: gd_auth::GD_AUTH_DEFAULT as i32,
            mesh_label: std::ptr::null(),
        }
    }
    const EARLIER_SIZES: &'static [usize] = &[
        // Before authentication.
        std::mem::offset_of!(gd_client_options, keys),
    ];
}

impl gd_client_options {
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
    /// The survey URLs as given, for `gd_survey_url_statistics.url`.
    urls: Vec<std::ffi::CString>,
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
/// `GD_INVALID_OPTION` (the message names the option, keyring fields
/// included), `GD_TRANSPORT`, `GD_IO`.
///
/// Threads: the client answers on NNG's own threads (no thread of its own) and calls no
/// user code; a watching client's callbacks run as `gd_on_peers` says.
///
/// # Safety
/// `options` is NULL or a `gd_client_options` filled by `gd_client_options_init`
/// whose pointers and counts describe readable strings and arrays (`keys`: NULL
/// or `keys_count` pointers, each NULL or to `GD_KEY_LEN` readable bytes; and
/// `watch` is NULL or a `gd_subscriber_options` filled by its init call); `out`
/// is NULL or writable.
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
        // SAFETY: our contract on the keyring fields is `AuthFields::read`'s.
        let auth = unsafe { o.auth_fields().read() }?;
        let mut b = Client::builder(name)
            .authentication(auth.clone())
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
            let sub = unsafe { gd_subscriber::start(o.watch, Some(&auth)) }?;
            Some(NonNull::from(Box::leak(Box::new(sub))))
        };
        let urls = (client.stats().survey_urls.iter())
            .map(|u| to_cstring(&u.url))
            .collect();
        let c = gd_client {
            watch,
            client,
            urls,
        };
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

/// Replaces the keyring of a running client (`keys_count` pointers, each to
/// `GD_KEY_LEN` bytes, primary first), and that of its subscriber if it took
/// the client's (its own options set no keyring field): answers are signed with
/// the new primary from the next survey on; the mode and mesh label stay.
/// **Copied during the call:** the caller keeps ownership of `keys` and the
/// keys, and may clear and free them when it returns. Any thread, callbacks
/// included.
///
/// Errors, the keyring left as it was: `GD_INVALID_OPTION` (`client` NULL; no
/// key, more than `GD_MAX_KEYS`, a NULL entry, a key given twice; a client
/// started without a keyring: restart it with one).
///
/// # Safety
/// `client` is NULL or a client from `gd_client_join` not yet closed; `keys`
/// is NULL or holds `keys_count` pointers, each NULL or to `GD_KEY_LEN`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn gd_client_set_keyring(
    client: *const gd_client,
    keys: *const *const u8,
    keys_count: usize,
) -> gd_result {
    run("gd_client_set_keyring", || {
        // SAFETY: our contract on `client` is `borrow`'s.
        let c = unsafe { gd_client::borrow(client) }?;
        // SAFETY: our contract on `keys` and `keys_count` is `read_keys`'s.
        let keyring = unsafe { read_keys(keys, keys_count, "keys") }?;
        c.client.set_keyring(keyring.clone())?;
        if let Some(w) = c.subscriber().filter(|w| w.takes_client_auth()) {
            w.subscriber().set_keyring(keyring)?;
        }
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

/// What a client did so far, in all (`gd_client_stats`); per survey URL with
/// `gd_client_survey_url_stats`. Names as in the Rust `ClientStats`. Set
/// `struct_size = sizeof(gd_client_statistics)` before the call: the library fills
/// only the fields that fit in it (so a binary built against an older header
/// keeps working) and sets it to the bytes it wrote.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_client_statistics {
    /// `sizeof(gd_client_statistics)` as the caller was compiled, set by the caller;
    /// on return, the bytes the library wrote.
    pub struct_size: usize,
    /// Live connections to servers.
    pub connections: u64,
    /// Surveys answered (from every server).
    pub surveys_answered: u64,
    /// Announces sent (one per new connection and per metadata change).
    pub announces_sent: u64,
    /// Milliseconds since the last survey; -1: never surveyed.
    pub last_survey_age_ms: i64,
    /// Survey URLs the client dials: indexes for `gd_client_survey_url_stats`.
    pub survey_url_count: usize,
    /// Surveys dropped by authentication (the Rust `AuthStats`, prefixed
    /// `auth_`): the tag did not verify (a wrong mesh label, altered bytes).
    pub auth_bad_mac: u64,
    /// Dropped: signed with a key id not in the keyring (the server has another key).
    pub auth_unknown_key: u64,
    /// Dropped: not signed while auth is required (a server without a key).
    pub auth_unsigned: u64,
    /// Dropped: replayed (a subscriber's reason: 0 on a client, kept so every
    /// statistics struct has the same fields).
    pub auth_replayed: u64,
    /// Dropped: stale survey (a server's reason: 0 on a client).
    pub auth_stale_survey: u64,
    /// Dropped: wrong connection (a server's reason: 0 on a client).
    pub auth_wrong_connection: u64,
    /// Accepted: unsigned surveys answered under `GD_AUTH_PERMISSIVE`.
    pub auth_unsigned_accepted: u64,
}

// SAFETY: `repr(C)`, starts with `struct_size: usize`; plain integers after.
unsafe impl SizedStats for gd_client_statistics {
    const NAME: &'static str = "gd_client_statistics";
}

/// One survey URL's part of a client's statistics
/// (`gd_client_survey_url_stats`), so a member can see which server does not
/// survey it. Set `struct_size = sizeof(gd_survey_url_statistics)` before the call,
/// as for `gd_client_statistics`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_survey_url_statistics {
    /// `sizeof(gd_survey_url_statistics)` as the caller was compiled, set by the
    /// caller; on return, the bytes the library wrote.
    pub struct_size: usize,
    /// The URL as given, NUL-terminated. **Lifetime:** owned by the client,
    /// valid until `gd_client_close`; do not free it.
    pub url: *const c_char,
    /// A connection to it is up.
    pub connected: bool,
    /// Surveys answered on its connections.
    pub surveys_answered: u64,
    /// Announces sent on its connections.
    pub announces_sent: u64,
    /// Milliseconds since its last survey; -1: never surveyed.
    pub last_survey_age_ms: i64,
}

// SAFETY: `repr(C)`, starts with `struct_size: usize`; a pointer, a bool the
// library writes as 0 or 1, and integers after.
unsafe impl SizedStats for gd_survey_url_statistics {
    const NAME: &'static str = "gd_survey_url_statistics";
}

/// Fills `*out` with what `client` did so far, in all. Set `out->struct_size =
/// sizeof(gd_client_statistics)` first. Any thread, callbacks included. `out` is
/// owned by the caller and written only during the call.
///
/// Errors: `GD_INVALID_OPTION` (`client` or `out` NULL, `struct_size` not set).
///
/// # Safety
/// `client` is NULL or a client from `gd_client_join` not yet closed; `out` is
/// NULL or a `gd_client_statistics` whose `struct_size` bytes are writable.
#[no_mangle]
pub unsafe extern "C" fn gd_client_stats(
    client: *const gd_client,
    out: *mut gd_client_statistics,
) -> gd_result {
    run("gd_client_stats", || {
        // SAFETY: our contract on `client` is `borrow`'s.
        let c = unsafe { gd_client::borrow(client) }?;
        let st = c.client.stats();
        let stats = gd_client_statistics {
            struct_size: std::mem::size_of::<gd_client_statistics>(),
            connections: st.connections as u64,
            surveys_answered: st.surveys_answered,
            announces_sent: st.announces_sent,
            last_survey_age_ms: age_ms(st.last_survey_age),
            survey_url_count: st.survey_urls.len(),
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

/// Fills `*out` with the statistics of survey URL `index` of `client` (in the
/// order given to `gd_client_join`; `index < gd_client_statistics.survey_url_count`).
/// Set `out->struct_size = sizeof(gd_survey_url_statistics)` first. Any thread.
/// `out` is owned by the caller and written only during the call; `out->url`
/// is owned by the client (valid until `gd_client_close`).
///
/// Errors: `GD_INVALID_OPTION` (`client` or `out` NULL, `struct_size` not set,
/// `index` out of range).
///
/// # Safety
/// `client` is NULL or a client from `gd_client_join` not yet closed; `out` is
/// NULL or a `gd_survey_url_statistics` whose `struct_size` bytes are writable.
#[no_mangle]
pub unsafe extern "C" fn gd_client_survey_url_stats(
    client: *const gd_client,
    index: usize,
    out: *mut gd_survey_url_statistics,
) -> gd_result {
    run("gd_client_survey_url_stats", || {
        // SAFETY: our contract on `client` is `borrow`'s.
        let c = unsafe { gd_client::borrow(client) }?;
        let all = c.client.stats().survey_urls;
        let (Some(u), Some(url)) = (all.get(index), c.urls.get(index)) else {
            return Err(Fail::invalid(format!(
                "index {index} is out of range (the client has {} survey URLs)",
                all.len()
            )));
        };
        let stats = gd_survey_url_statistics {
            struct_size: std::mem::size_of::<gd_survey_url_statistics>(),
            url: url.as_ptr(),
            connected: u.connected,
            surveys_answered: u.surveys_answered,
            announces_sent: u.announces_sent,
            last_survey_age_ms: age_ms(u.last_survey_age),
        };
        // SAFETY: our contract on `out` is `write_stats`'s.
        unsafe { write_stats(out, stats) }
    })
}
