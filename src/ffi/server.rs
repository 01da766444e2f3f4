//! `gd_server_*`: a discovery server behind an opaque handle.

use std::ffi::{c_char, CString};
use std::time::Duration;

use super::{gd_auth, gd_result, guard, read_keys, AuthFields};
use super::{init_options, read_options, run, to_cstring, url_or, Fail, Handle, SizedOptions};
use super::{write_stats, SizedStats};
use crate::member::Limits;
use crate::net::{DEFAULT_PUBLISH_URL, DEFAULT_SNAPSHOT_URL, DEFAULT_SURVEY_URL};
use crate::server::{Histogram, Server, ServerStats, HISTOGRAM_BOUNDS_SECONDS, HISTOGRAM_BUCKETS};

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
    /// The keyring (docs/PROTOCOL.md, "Authentication"): `keys_count` pointers,
    /// each to `GD_KEY_LEN` (32) bytes of key, the first the primary (it signs;
    /// all verify). **Copied during the call:** the caller keeps ownership of the
    /// array and the keys and may clear and free them as soon as the call
    /// returns; the library keeps only what it derives from them, zeroed once
    /// unused (the handle closed or its keyring replaced). NULL / 0 (the
    /// default): no keyring. Refused with
    /// `GD_INVALID_OPTION`: a NULL entry, more than `GD_MAX_KEYS` (64) keys, a key
    /// given twice, and `keyring_file` set as well.
    pub keys: *const *const u8,
    /// Number of pointers at `keys`.
    pub keys_count: usize,
    /// The keyring as a file instead of `keys`: one base64 key per line, the
    /// first the primary, `#` comments (the CLI's `--keyring-file`). Read during
    /// the call (`GD_INVALID_OPTION` when it cannot be read or parsed); NULL (the
    /// default): none.
    pub keyring_file: *const c_char,
    /// A `gd_auth` value: `GD_AUTH_DEFAULT` (0, the default: required with a
    /// keyring, off without), `GD_AUTH_OFF`, `GD_AUTH_PERMISSIVE`,
    /// `GD_AUTH_REQUIRED`. Permissive or required without a keyring, or any
    /// other value: `GD_INVALID_OPTION`. Under required, `legacy_publish` is
    /// refused (`GD_INVALID_OPTION`), unsigned answers and snapshot requests are
    /// dropped and counted (`auth_unsigned`).
    pub auth: i32,
    /// The mesh label every tag covers, NUL-terminated UTF-8, at most 255 bytes,
    /// no control characters; copied during the call. NULL (the default): empty.
    pub mesh_label: *const c_char,
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
            keys: std::ptr::null(),
            keys_count: 0,
            keyring_file: std::ptr::null(),
            auth: gd_auth::GD_AUTH_DEFAULT as i32,
            mesh_label: std::ptr::null(),
        }
    }
    const EARLIER_SIZES: &'static [usize] = &[
        // Before authentication.
        std::mem::offset_of!(gd_server_options, keys),
    ];
}

impl gd_server_options {
    pub(crate) fn auth_fields(&self) -> AuthFields {
        AuthFields {
            keys: self.keys,
            keys_count: self.keys_count,
            keyring_file: self.keyring_file,
            auth: self.auth,
            mesh_label: self.mesh_label,
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
    /// The server (its `Drop` stops it).
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
/// `struct_size`, a keyring field refused: the message names it),
/// `GD_TRANSPORT`, `GD_IO`.
///
/// Threads: the server runs three library threads (`gd-server-loop`,
/// `gd-server-answers`, `gd-server-snapshot`); it calls no user code.
///
/// # Safety
/// `options` is NULL or a `gd_server_options` filled by `gd_server_options_init`
/// whose strings are NULL or NUL-terminated and whose `keys` is NULL or holds
/// `keys_count` pointers, each NULL or to `GD_KEY_LEN` readable bytes; `out` is
/// NULL or writable.
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
        // SAFETY: our contract on the keyring fields is `AuthFields::read`'s.
        let auth = unsafe { o.auth_fields().read() }?;
        let limits = Limits {
            max_members: o.max_members as usize,
            ..Limits::default()
        };
        let mut builder = Server::builder().authentication(auth);
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

/// Replaces the keyring of a running server (`keys_count` pointers, each to
/// `GD_KEY_LEN` bytes, primary first): what it sends next is signed with the new
/// primary, what comes next is verified with the new keys; the mode and mesh
/// label stay. Rolls a key without a restart: add the new key as secondary
/// everywhere, then make it primary everywhere, then remove the old one.
/// **Copied during the call:** the caller keeps ownership of `keys` and the
/// keys, and may clear and free them when it returns. Any thread.
///
/// Errors, the keyring left as it was: `GD_INVALID_OPTION` (`server` NULL; no
/// key, more than `GD_MAX_KEYS`, a NULL entry, a key given twice; a server
/// started without a keyring: restart it with one).
///
/// # Safety
/// `server` is NULL or a server from `gd_server_start` not yet closed; `keys`
/// is NULL or holds `keys_count` pointers, each NULL or to `GD_KEY_LEN`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn gd_server_set_keyring(
    server: *const gd_server,
    keys: *const *const u8,
    keys_count: usize,
) -> gd_result {
    run("gd_server_set_keyring", || {
        // SAFETY: our contract on `server` is `borrow`'s.
        let s = unsafe { gd_server::borrow(server) }?;
        // SAFETY: our contract on `keys` and `keys_count` is `read_keys`'s.
        let keyring = unsafe { read_keys(keys, keys_count, "keys") }?;
        s.server.set_keyring(keyring)?;
        Ok(())
    })
}

/// One key of a server's keyring and the messages verified with it
/// (`gd_server_key_use`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_key_use {
    /// The key id: 8 lowercase hex digits and a NUL (as `gd_key_id` writes it).
    pub key_id: [c_char; 9],
    /// Messages verified with this key since the server started (kept across
    /// `gd_server_set_keyring`). When an old key's count stops rising, nothing
    /// signs with it any more: step 3 of a key rotation can remove it.
    pub verified: u64,
}

/// Writes the server's keyring, primary first, with the messages verified with
/// each key: up to `capacity` entries into `out`, and the number of keys into
/// `*count` (more than `capacity` when `out` was too small: call again with a
/// larger array; 0 for a server without a keyring). `out` and `count` are the
/// caller's, written only during the call. Any thread.
///
/// Errors: `GD_INVALID_OPTION` (`server` or `count` NULL; `out` NULL with a
/// `capacity` above 0).
///
/// # Safety
/// `server` is NULL or a server from `gd_server_start` not yet closed; `out` is
/// NULL or valid for writing `capacity` `gd_key_use`s; `count` is NULL or valid
/// for writing one `size_t`.
#[no_mangle]
pub unsafe extern "C" fn gd_server_key_use(
    server: *const gd_server,
    out: *mut gd_key_use,
    capacity: usize,
    count: *mut usize,
) -> gd_result {
    run("gd_server_key_use", || {
        // SAFETY: our contract on `server` is `borrow`'s.
        let s = unsafe { gd_server::borrow(server) }?;
        if count.is_null() || (out.is_null() && capacity > 0) {
            return Err(Fail::invalid("count NULL, or out NULL with a capacity"));
        }
        let keys = s.server.key_use();
        for (i, (id, verified)) in keys.iter().take(capacity).enumerate() {
            let mut key_id = [0 as c_char; 9];
            for (d, b) in key_id.iter_mut().zip(id.to_string().bytes()) {
                *d = b as c_char;
            }
            // SAFETY: `i < capacity`, and `out` is valid for writing `capacity`
            // entries by our contract (not NULL: checked above when capacity > 0).
            unsafe {
                out.add(i).write(gd_key_use {
                    key_id,
                    verified: *verified,
                })
            };
        }
        // SAFETY: `count` is not NULL (checked), so valid for one write by our contract.
        unsafe { count.write(keys.len()) };
        Ok(())
    })
}

/// A histogram of durations with fixed buckets (in `gd_server_statistics`).
/// Bucket `i` counts the observations at most `gd_histogram_bounds()[i]` seconds
/// and above the bound before; the last bucket those above the largest bound
/// (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 s).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_histogram {
    /// Observations per bucket (not cumulative).
    pub buckets: [u64; 13],
    /// Observations in all.
    pub count: u64,
    /// Sum of the observations, in microseconds.
    pub sum_micros: u64,
}

impl From<Histogram> for gd_histogram {
    fn from(h: Histogram) -> gd_histogram {
        gd_histogram {
            buckets: h.buckets,
            count: h.count,
            sum_micros: h.sum_micros,
        }
    }
}

/// What a server took, dropped and sent so far (`gd_server_stats`): the same
/// numbers as the CLI's `/metrics`, under the names of the Rust `ServerStats`.
/// Set `struct_size = sizeof(gd_server_statistics)` before the call: the library
/// fills only the fields that fit in it (so a binary built against an older
/// header keeps working) and sets it to the bytes it wrote.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_server_statistics {
    /// `sizeof(gd_server_statistics)` as the caller was compiled, set by the caller;
    /// on return, the bytes the library wrote.
    pub struct_size: usize,
    /// Native answers to a survey taken.
    pub answers: u64,
    /// Native announces taken: answers a client sent unasked on a new connection
    /// or after a metadata change (not counted in `answers`).
    pub announces: u64,
    /// Legacy raw-string answers taken.
    pub legacy_answers: u64,
    /// Answers dropped: not a valid answer (garbage, bad UTF-8, empty name, unknown version…).
    pub dropped_malformed: u64,
    /// Answers dropped: larger than name + metadata limits allow.
    pub dropped_oversize: u64,
    /// Answers dropped: a name, metadata key or value with a control character
    /// (NUL, newline, escape…).
    pub dropped_control: u64,
    /// Answers dropped: a name with `|` while a legacy publish URL is configured
    /// (the legacy list could not represent it).
    pub dropped_legacy_name: u64,
    /// Answers dropped: their SP header is not a survey id (4 bytes, high bit set).
    pub dropped_survey_id: u64,
    /// Answers dropped: the table holds `max_members` already (the table is full).
    pub dropped_full: u64,
    /// Answers dropped: the members' encoded size (a snapshot) would exceed the
    /// snapshot budget, `limits.max_snapshot` (the table is full).
    pub dropped_budget: u64,
    /// Answers dropped: their connection carries `max_members_per_connection`
    /// members already.
    pub dropped_per_connection: u64,
    /// Snapshot requests dropped: not a valid request.
    pub dropped_requests: u64,
    /// Snapshot requests dropped: the same connection was sent the snapshot of
    /// the same seq less than an interval ago.
    pub dropped_repeat_requests: u64,
    /// Connections closed as they came: their socket had `max_connections` already.
    pub refused_connections: u64,
    /// Survey connections closed because no answer was taken from them for
    /// `evict_after` rounds (idle, garbage only, or refused answers only).
    pub closed_idle: u64,
    /// Surveys sent (regular and early).
    pub surveys: u64,
    /// Delta publications sent.
    pub deltas: u64,
    /// Heartbeat publications sent.
    pub heartbeats: u64,
    /// Snapshots served.
    pub snapshots: u64,
    /// Early surveys (to new connections only), a part of `surveys`.
    pub early_surveys: u64,
    /// Survey rounds completed (deadline reached and answers folded in).
    pub rounds: u64,
    /// Members that joined (restarts included).
    pub joined: u64,
    /// Members that left because their connection closed.
    pub left_closed: u64,
    /// Members that left after `evict_after` missed surveys.
    pub left_timeout: u64,
    /// Members that restarted (a new incarnation under the same name).
    pub restarted: u64,
    /// Members whose metadata changed.
    pub updated: u64,
    /// Members that left and came back within 60 s.
    pub flaps: u64,
    /// Bytes of delta publications sent.
    pub delta_bytes: u64,
    /// Bytes of heartbeat publications sent.
    pub heartbeat_bytes: u64,
    /// Bytes of snapshots served.
    pub snapshot_bytes: u64,
    /// Connections opened on the survey socket.
    pub survey_connections_opened: u64,
    /// Connections closed on the survey socket.
    pub survey_connections_closed: u64,
    /// Connections opened on the publish socket (subscribers).
    pub publish_connections_opened: u64,
    /// Connections closed on the publish socket.
    pub publish_connections_closed: u64,
    /// Time from a survey sent to an answer to it taken (announces excluded).
    pub answer_latency: gd_histogram,
    /// How late each regular survey round started against its schedule.
    pub round_lag: gd_histogram,
    /// Challenge surveys sent: with a keyring, an announce (or an answer on a
    /// connection its member is not on) is admitted only when the survey sent to
    /// that one connection is answered there.
    pub challenges: u64,
    /// Answers and snapshot requests dropped by authentication (the Rust
    /// `AuthStats`, prefixed `auth_`): the tag did not verify (a wrong mesh
    /// label, altered bytes).
    pub auth_bad_mac: u64,
    /// Dropped: signed with a key id not in the keyring (a wrong or retired key).
    pub auth_unknown_key: u64,
    /// Dropped: not signed while auth is required (peers without a key, legacy ones).
    pub auth_unsigned: u64,
    /// Dropped: replayed publications and snapshots (a subscriber's reason: 0
    /// on a server, kept so every statistics struct has the same fields).
    pub auth_replayed: u64,
    /// Dropped: an answer echoing a survey not sent in the last 2 intervals.
    pub auth_stale_survey: u64,
    /// Dropped: an answer echoing a survey sent to another connection.
    pub auth_wrong_connection: u64,
    /// Accepted: unsigned answers and requests under `GD_AUTH_PERMISSIVE` (when it
    /// stops rising, the mesh can move to required).
    pub auth_unsigned_accepted: u64,
}

// SAFETY: `repr(C)`, starts with `struct_size: usize`; plain integers after.
unsafe impl SizedStats for gd_server_statistics {
    const NAME: &'static str = "gd_server_statistics";
}

fn server_stats(s: ServerStats) -> gd_server_statistics {
    gd_server_statistics {
        struct_size: std::mem::size_of::<gd_server_statistics>(),
        answers: s.answers,
        announces: s.announces,
        legacy_answers: s.legacy_answers,
        dropped_malformed: s.dropped_malformed,
        dropped_oversize: s.dropped_oversize,
        dropped_control: s.dropped_control,
        dropped_legacy_name: s.dropped_legacy_name,
        dropped_survey_id: s.dropped_survey_id,
        dropped_full: s.dropped_full,
        dropped_budget: s.dropped_budget,
        dropped_per_connection: s.dropped_per_connection,
        dropped_requests: s.dropped_requests,
        dropped_repeat_requests: s.dropped_repeat_requests,
        refused_connections: s.refused_connections,
        closed_idle: s.closed_idle,
        surveys: s.surveys,
        deltas: s.deltas,
        heartbeats: s.heartbeats,
        snapshots: s.snapshots,
        early_surveys: s.early_surveys,
        rounds: s.rounds,
        joined: s.joined,
        left_closed: s.left_closed,
        left_timeout: s.left_timeout,
        restarted: s.restarted,
        updated: s.updated,
        flaps: s.flaps,
        delta_bytes: s.delta_bytes,
        heartbeat_bytes: s.heartbeat_bytes,
        snapshot_bytes: s.snapshot_bytes,
        survey_connections_opened: s.survey_connections_opened,
        survey_connections_closed: s.survey_connections_closed,
        publish_connections_opened: s.publish_connections_opened,
        publish_connections_closed: s.publish_connections_closed,
        answer_latency: s.answer_latency.into(),
        round_lag: s.round_lag.into(),
        challenges: s.challenges,
        auth_bad_mac: s.auth.bad_mac,
        auth_unknown_key: s.auth.unknown_key,
        auth_unsigned: s.auth.unsigned,
        auth_replayed: s.auth.replayed,
        auth_stale_survey: s.auth.stale_survey,
        auth_wrong_connection: s.auth.wrong_connection,
        auth_unsigned_accepted: s.auth.unsigned_accepted,
    }
}

/// Fills `*out` with what `server` took, dropped and sent so far. Set
/// `out->struct_size = sizeof(gd_server_statistics)` first (see `gd_server_statistics`).
/// Any thread. `out` is owned by the caller and written only during the call.
///
/// Errors: `GD_INVALID_OPTION` (`server` or `out` NULL, `struct_size` not set).
///
/// # Safety
/// `server` is NULL or a server from `gd_server_start` not yet closed; `out` is
/// NULL or a `gd_server_statistics` whose `struct_size` bytes are writable.
#[no_mangle]
pub unsafe extern "C" fn gd_server_stats(
    server: *const gd_server,
    out: *mut gd_server_statistics,
) -> gd_result {
    run("gd_server_stats", || {
        // SAFETY: our contract on `server` is `borrow`'s.
        let s = unsafe { gd_server::borrow(server) }?;
        let stats = server_stats(s.server.stats());
        // SAFETY: our contract on `out` is `write_stats`'s.
        unsafe { write_stats(out, stats) }
    })
}

/// The upper bounds, in seconds, of the buckets of a `gd_histogram` but the
/// last: 12 values in increasing order. A static array, never NULL, never freed.
#[no_mangle]
pub extern "C" fn gd_histogram_bounds() -> *const f64 {
    HISTOGRAM_BOUNDS_SECONDS.as_ptr()
}

const _: () = assert!(
    HISTOGRAM_BUCKETS == 13,
    "gd_histogram.buckets has 13 entries"
);
