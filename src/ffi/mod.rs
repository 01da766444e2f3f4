//! The C ABI: `include/gopherdiscovery.h` is generated from this module by cbindgen
//! (`make header`); `bindings/cpp/gopherdiscovery.hpp` wraps it for C++.
//!
//! Shape (after rustls-ffi and NNG):
//! - Every object is an opaque handle owned by a `Box`: created by one call
//!   (`gd_server_start`, `gd_client_join`, `gd_subscriber_open`,
//!   `gd_subscriber_peers`), freed by exactly one other (`gd_*_close`,
//!   `gd_peer_list_free`), NULL accepted by the freeing call. Every handle
//!   crosses the ABI through `Handle`: `give` hands it out, `borrow` lends it
//!   (shared only: other threads may use it at the same time), `take` frees it.
//! - Every fallible call returns a [`gd_result`] with the numbers of
//!   [`crate::ErrorCode`]; out-parameters are written only on success; the message
//!   goes to a thread-local slot that `gd_last_error_message` copies into a
//!   caller-owned buffer.
//! - Every exported body runs inside `run` or `guard`: a panic becomes
//!   `GD_IO` (or a documented neutral value), never an unwind into C.
//! - Options structs start with `struct_size` and are read up to that size, so a
//!   binary compiled against an older header keeps working when fields are added
//!   at the end (the fields it does not know take their defaults).
//!
//! The C-facing names (`gd_*`) are the product's names; they break Rust's naming
//! conventions on purpose.

#![allow(non_camel_case_types)]
// Every unsafe operation sits in its own narrow `unsafe { }` block with a
// `// SAFETY:` comment saying why it is sound, also inside `unsafe fn` bodies;
// every `unsafe fn` has a `# Safety` section (for an exported one it is the C
// caller's contract, and so it is in the header too).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod auth;
mod client;
mod server;
mod servers;
mod subscriber;

pub use auth::*;
pub use client::*;
pub use server::*;
pub use servers::*;
pub use subscriber::*;

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorCode};
use crate::member::Metadata;

/// The result of every call that can fail: `GD_OK` (0) or an error code. The
/// numbers are stable and the same as the Rust `ErrorCode` and the Python
/// exception classes. `gd_strerror` names a code; `gd_last_error_message` gives
/// the message of the last failure on the calling thread.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gd_result {
    /// Success.
    GD_OK = 0,
    /// A URL NNG cannot parse or has no transport for (also: a URL that is not
    /// valid UTF-8).
    GD_INVALID_URL = 1,
    /// A listen URL whose address another socket already holds.
    GD_ADDRESS_IN_USE = 2,
    /// An option or argument the call cannot accept: a nonsense value (a
    /// deadline >= interval, zero counts), a NULL where a pointer is required,
    /// an options struct whose `struct_size` was not set by its init call, a
    /// handle closed the wrong way (from its own callback, or a client's
    /// subscriber passed to `gd_subscriber_close`). The handle involved is left
    /// as it was.
    GD_INVALID_OPTION = 3,
    /// A member name or metadata that breaks the limits (empty, too long, too
    /// large, NULL, not UTF-8).
    GD_INVALID_MEMBER = 4,
    /// Nothing came back before the deadline.
    GD_TIMEOUT = 5,
    /// The handle is closed.
    GD_CLOSED = 6,
    /// A peer sent bytes that are not a valid message of the expected kind.
    GD_PROTOCOL = 7,
    /// Any other failure reported by NNG.
    GD_TRANSPORT = 8,
    /// An operating-system failure outside NNG (threads, resource limits), or an
    /// internal error of the library (a caught panic: please report it).
    GD_IO = 9,
}

impl From<ErrorCode> for gd_result {
    fn from(c: ErrorCode) -> gd_result {
        // Exhaustive on purpose: a new core code must get a C code too.
        match c {
            ErrorCode::Ok => gd_result::GD_OK,
            ErrorCode::InvalidUrl => gd_result::GD_INVALID_URL,
            ErrorCode::AddressInUse => gd_result::GD_ADDRESS_IN_USE,
            ErrorCode::InvalidOption => gd_result::GD_INVALID_OPTION,
            ErrorCode::InvalidMember => gd_result::GD_INVALID_MEMBER,
            ErrorCode::Timeout => gd_result::GD_TIMEOUT,
            ErrorCode::Closed => gd_result::GD_CLOSED,
            ErrorCode::Protocol => gd_result::GD_PROTOCOL,
            ErrorCode::Transport => gd_result::GD_TRANSPORT,
            ErrorCode::Io => gd_result::GD_IO,
        }
    }
}

/// One metadata entry: a key and its value, both NUL-terminated UTF-8.
///
/// As input (`gd_client_options.metadata`, `gd_client_set_metadata`): both
/// pointers non-NULL, read only during the call. As output (`gd_event.metadata`):
/// owned by the library, valid until the callback returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct gd_metadata_entry {
    /// The key, e.g. `"zone"`.
    pub key: *const c_char,
    /// The value, e.g. `"a"`.
    pub value: *const c_char,
}

/// A failure on its way to C: the code and the message for the last-error slot.
pub(crate) struct Fail {
    code: gd_result,
    message: String,
}

impl Fail {
    pub(crate) fn new(code: gd_result, message: impl Into<String>) -> Fail {
        Fail {
            code,
            message: message.into(),
        }
    }

    /// `GD_INVALID_OPTION`: an argument the call cannot accept.
    pub(crate) fn invalid(message: impl Into<String>) -> Fail {
        Fail::new(gd_result::GD_INVALID_OPTION, message)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::new(e.code().into(), e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: String) {
    // Ignore the (only) failure: the slot is gone while the thread exits.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = message);
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

/// Runs the body of an exported call that returns a [`gd_result`]: an error is
/// recorded for `gd_last_error_message`, a panic becomes `GD_IO`.
pub(crate) fn run(name: &str, body: impl FnOnce() -> Result<(), Fail>) -> gd_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => gd_result::GD_OK,
        Ok(Err(f)) => {
            set_last_error(format!("{name}: {}", f.message));
            f.code
        }
        Err(p) => {
            set_last_error(format!(
                "{name}: internal error ({}); please report it",
                panic_text(&*p)
            ));
            gd_result::GD_IO
        }
    }
}

/// Runs the body of an exported call that cannot report an error: a panic
/// returns `fallback`.
pub(crate) fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Borrows a NUL-terminated string; `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that is not written to and
/// outlives `'a`.
pub(crate) unsafe fn opt_str<'a>(
    p: *const c_char,
    what: &str,
    code: gd_result,
) -> Result<Option<&'a str>, Fail> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: `p` is not NULL, so by this function's contract it points to a
    // NUL-terminated string that lives for `'a` unchanged.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map(Some)
        .map_err(|_| Fail::new(code, format!("{what} is not valid UTF-8")))
}

/// Like [`opt_str`], but NULL is refused with `code`.
///
/// # Safety
/// As for [`opt_str`].
pub(crate) unsafe fn req_str<'a>(
    p: *const c_char,
    what: &str,
    code: gd_result,
) -> Result<&'a str, Fail> {
    // SAFETY: the same contract as ours, passed on.
    let s = unsafe { opt_str(p, what, code) }?;
    s.ok_or_else(|| Fail::new(code, format!("{what} is NULL")))
}

/// A URL option: NULL means `default`.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string, readable during the call.
pub(crate) unsafe fn url_or(p: *const c_char, what: &str, default: &str) -> Result<String, Fail> {
    // SAFETY: our contract; the borrowed string is copied before we return.
    let s = unsafe { opt_str(p, what, gd_result::GD_INVALID_URL) }?;
    Ok(s.unwrap_or(default).to_owned())
}

/// Borrows `count` items at `p` (NULL is fine when `count` is 0).
///
/// # Safety
/// When `count` is not 0, `p` is NULL or points to `count` initialised, properly
/// aligned values of `T` that are not written to and outlive `'a`.
pub(crate) unsafe fn slice<'a, T>(p: *const T, count: usize, what: &str) -> Result<&'a [T], Fail> {
    if count == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::invalid(format!(
            "{what} is NULL but its count is {count}"
        )));
    }
    if count > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Fail::invalid(format!("{what} count {count} is too large")));
    }
    // SAFETY: `p` is not NULL and `count * size_of::<T>()` fits in an `isize`
    // (checked above); the caller promises `count` live, aligned values at `p`.
    Ok(unsafe { std::slice::from_raw_parts(p, count) })
}

/// Reads `count` metadata entries (later keys replace earlier equal ones).
///
/// # Safety
/// `entries` is as for [`slice`] (`count` entries, or NULL with a count of 0),
/// and each entry's `key` and `value` is NULL or a NUL-terminated string, all
/// readable during the call.
pub(crate) unsafe fn read_metadata(
    entries: *const gd_metadata_entry,
    count: usize,
) -> Result<Metadata, Fail> {
    let code = gd_result::GD_INVALID_MEMBER;
    let mut md = Metadata::new();
    // SAFETY: our contract on `entries` and `count`; the slice is used only
    // during this call.
    let entries = unsafe { slice(entries, count, "metadata") }?;
    for (i, e) in entries.iter().enumerate() {
        // SAFETY: our contract on each entry's strings; both are copied below.
        let key = unsafe { req_str(e.key, &format!("metadata[{i}].key"), code) }?;
        // SAFETY: as for `key`.
        let value = unsafe { req_str(e.value, &format!("metadata[{i}].value"), code) }?;
        md.insert(key.to_owned(), value.to_owned());
    }
    Ok(md)
}

/// A C string for output; an interior NUL (valid UTF-8, impossible in C) becomes
/// U+FFFD so nothing is cut short silently.
pub(crate) fn to_cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| {
        CString::new(s.replace('\0', "\u{FFFD}")).expect("no NUL left after replacing")
    })
}

/// Owned C strings plus a NULL-terminated array of pointers to them.
pub(crate) struct CStrings {
    _owned: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CStrings {
    pub(crate) fn new<'a>(items: impl IntoIterator<Item = &'a str>) -> CStrings {
        let owned: Vec<CString> = items.into_iter().map(to_cstring).collect();
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStrings {
            _owned: owned,
            ptrs,
        }
    }
    /// The array: `len()` pointers, then NULL.
    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
    pub(crate) fn len(&self) -> usize {
        self.ptrs.len() - 1
    }
}

/// An opaque handle as it crosses the ABI (after rustls-ffi's `Castable`): the
/// C caller holds the raw pointer of a `Box<Self::Rust>`, typed `*mut Self`.
/// Every `gd_*` function goes through these three helpers: [`Handle::give`] to
/// hand a new handle out, [`Handle::borrow`] to use one, [`Handle::take`] to
/// free it. Only shared references are ever formed from a handle while C holds
/// it (other threads may be using it at the same time), and the only unique
/// ownership is the `Box` that `take` gives back.
///
/// # Safety
/// A pointer to `Self::Rust` cast to `*mut Self` and back is the same pointer:
/// `Self` is `Self::Rust`, or `Self::Rust` is `repr(C)` and starts with a `Self`.
pub(crate) unsafe trait Handle: Sized {
    /// The Rust value behind the pointer (`Self` for most handles).
    type Rust;
    /// The argument's name in the message of a NULL handle, e.g. `"client"`.
    const WHAT: &'static str;

    /// Moves `value` into a new box and writes its pointer into `*out`: from now
    /// on the C caller owns it, until it gives it back to [`Handle::take`].
    /// Returns the pointer written.
    ///
    /// # Safety
    /// `out` is non-NULL, aligned and valid for writing one pointer. (Callers
    /// check `out` for NULL before building `value`, so that a NULL is refused
    /// without starting and stopping anything.)
    unsafe fn give(out: *mut *mut Self, value: Self::Rust) -> *mut Self {
        let ptr = Box::into_raw(Box::new(value)).cast::<Self>();
        // SAFETY: the caller promises `out` is valid for one pointer write.
        unsafe { out.write(ptr) };
        ptr
    }

    /// Borrows a handle for the duration of a call; NULL is refused with
    /// `GD_INVALID_OPTION` ("client is NULL").
    ///
    /// # Safety
    /// `ptr` is NULL or a pointer from [`Handle::give`] of this type that has not
    /// been passed to [`Handle::take`], and it is not taken during `'a` (the
    /// header's rule: no `gd_*_close` runs at the same time as another call on
    /// the same handle).
    unsafe fn borrow<'a>(ptr: *const Self) -> Result<&'a Self::Rust, Fail> {
        // SAFETY: by our contract and the trait's, a non-NULL `ptr` is a live
        // `Box<Self::Rust>` that nobody holds a `&mut` to (only shared references
        // are made from a handle), valid for `'a`.
        let r = unsafe { ptr.cast::<Self::Rust>().as_ref() };
        r.ok_or_else(|| Fail::invalid(format!("{} is NULL", Self::WHAT)))
    }

    /// Takes back ownership of a handle to free it; `None` for NULL. The C
    /// pointer dangles afterwards.
    ///
    /// # Safety
    /// `ptr` is NULL or a pointer from [`Handle::give`] of this type that has not
    /// been passed to `take` before, and no reference made from it by
    /// [`Handle::borrow`] is used any more (no other call on it is in progress).
    unsafe fn take(ptr: *mut Self) -> Option<Box<Self::Rust>> {
        if ptr.is_null() {
            return None;
        }
        // SAFETY: by our contract `ptr` came from `Box::into_raw` of a
        // `Box<Self::Rust>` (cast back per the trait's contract), is taken once,
        // and is no longer borrowed.
        Some(unsafe { Box::from_raw(ptr.cast::<Self::Rust>()) })
    }
}

/// An options struct that starts with `size_t struct_size`.
///
/// # Safety
/// `Self` is `repr(C)`, starts with a `usize`, and every bit pattern of each field
/// is valid (integers, raw pointers, nullable function pointers).
pub(crate) unsafe trait SizedOptions: Copy {
    /// The defaults that `gd_*_options_init` writes.
    fn defaults() -> Self;
    /// The type's name in messages.
    const NAME: &'static str;
    /// The sizes of the struct in earlier versions of the header (each a prefix
    /// of this one): a caller compiled against one of them keeps working.
    const EARLIER_SIZES: &'static [usize];
}

/// Reads an options struct written by a caller compiled against this header or an
/// older or newer one: fields past the caller's `struct_size` keep their
/// defaults; fields this library does not know must be zero. NULL gives the
/// defaults.
///
/// # Safety
/// `p` is NULL or points to a readable options struct as the caller was
/// compiled: it starts with `struct_size`, and `struct_size` bytes (or, when
/// the struct is too small to be valid, at least one `usize`) are readable.
pub(crate) unsafe fn read_options<T: SizedOptions>(p: *const T) -> Result<T, Fail> {
    if p.is_null() {
        return Ok(T::defaults());
    }
    let ours = std::mem::size_of::<T>();
    // SAFETY: `p` is not NULL and, by our contract, starts with a readable
    // `usize` (unaligned read: the caller's struct may be packed differently).
    let size = unsafe { std::ptr::read_unaligned(p.cast::<usize>()) };
    const SLACK: usize = 4096;
    let newer = size > ours && size <= ours + SLACK && size % std::mem::align_of::<T>() == 0;
    if size != ours && !newer && !T::EARLIER_SIZES.contains(&size) {
        return Err(Fail::invalid(format!(
            "{}.struct_size is {size}, expected {ours}: call {}_init first",
            T::NAME,
            T::NAME
        )));
    }
    // SAFETY: our contract: `size` bytes at `p` are readable (and `size` is at
    // most `ours + SLACK`, far below `isize::MAX`); `u8` has no alignment.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), size) };
    if bytes.len() > ours && bytes[ours..].iter().any(|&b| b != 0) {
        return Err(Fail::invalid(format!(
            "{} sets fields this version of the library does not know ({})",
            T::NAME,
            crate::VERSION
        )));
    }
    let mut value = T::defaults();
    let n = size.min(ours);
    // SAFETY: `n` bytes are readable at `bytes` and writable in `value`
    // (`n <= size_of::<T>()`); a local and the caller's memory do not overlap;
    // every bit pattern of `T`'s fields is valid (the `SizedOptions` contract),
    // so a prefix of the caller's struct over the defaults is a valid `T`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (&mut value as *mut T).cast::<u8>(), n)
    };
    Ok(value)
}

/// Writes the defaults into `*p` (the shared body of `gd_*_options_init`).
///
/// # Safety
/// `p` is NULL or valid for writing a `T` (any alignment).
pub(crate) unsafe fn init_options<T: SizedOptions>(name: &str, p: *mut T) -> gd_result {
    run(name, || {
        if p.is_null() {
            return Err(Fail::invalid("options is NULL"));
        }
        // SAFETY: `p` is not NULL, so by our contract valid for an unaligned write.
        unsafe { std::ptr::write_unaligned(p, T::defaults()) };
        Ok(())
    })
}

/// A statistics struct the library fills: `repr(C)`, starting with
/// `size_t struct_size` that the caller sets to the size it was compiled with.
///
/// # Safety
/// `Self` is `repr(C)` and starts with a `usize`; every field is plain data
/// (integers, bools, enums, pointers).
pub(crate) unsafe trait SizedStats: Copy {
    /// The type's name in messages.
    const NAME: &'static str;
}

/// Writes `value` into the caller's statistics struct at `p`: only the first
/// `struct_size` bytes (the fields an older caller knows), then `struct_size`
/// set to the bytes written. A `struct_size` that is not a plausible size
/// (smaller than its own field, not a multiple of 8, or far beyond this
/// version's struct) is refused with `GD_INVALID_OPTION`, the struct untouched.
///
/// # Safety
/// `p` is NULL or points to a struct that starts with a readable `usize`
/// `struct_size`, and `struct_size` bytes at `p` are writable.
pub(crate) unsafe fn write_stats<T: SizedStats>(p: *mut T, value: T) -> Result<(), Fail> {
    if p.is_null() {
        return Err(Fail::invalid("out is NULL"));
    }
    let ours = std::mem::size_of::<T>();
    // SAFETY: `p` is not NULL and, by our contract, starts with a readable
    // `usize` (unaligned read: the caller's struct may be packed differently).
    let size = unsafe { std::ptr::read_unaligned(p.cast::<usize>()) };
    const SLACK: usize = 4096;
    let word = std::mem::size_of::<usize>();
    if size < word || size > ours + SLACK || size % std::mem::align_of::<T>() != 0 {
        return Err(Fail::invalid(format!(
            "{}.struct_size is {size}: set it to sizeof({})",
            T::NAME,
            T::NAME
        )));
    }
    let n = size.min(ours);
    let src = (&value as *const T).cast::<u8>();
    // SAFETY: `n` bytes are readable at `src` (`n <= size_of::<T>()`) and
    // writable at `p` (`n <= struct_size`, our contract); a local and the
    // caller's memory do not overlap; `u8` has no alignment.
    unsafe { std::ptr::copy_nonoverlapping(src, p.cast::<u8>(), n) };
    // SAFETY: `struct_size` is the first `usize` at `p`, writable by our
    // contract (any alignment).
    unsafe { std::ptr::write_unaligned(p.cast::<usize>(), n) };
    Ok(())
}

/// An age for C: milliseconds, -1 for none.
pub(crate) fn age_ms(d: Option<std::time::Duration>) -> i64 {
    d.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A `&'static CStr` from a byte literal ending in its NUL (checked at compile
/// time when used in a `const`).
pub(crate) const fn cstr(bytes: &'static [u8]) -> &'static CStr {
    match CStr::from_bytes_with_nul(bytes) {
        Ok(s) => s,
        Err(_) => panic!("a C string literal must end in its only NUL"),
    }
}

/// The static name of `value` in `table` (one table per C enum), or `fallback`.
pub(crate) fn name_in(
    table: &[(i32, &'static CStr)],
    value: i32,
    fallback: &'static CStr,
) -> *const c_char {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or(fallback, |&(_, name)| name)
        .as_ptr()
}

/// The names of the `gd_result` codes, for `gd_strerror`.
const RESULT_NAMES: &[(i32, &CStr)] = &[
    (gd_result::GD_OK as i32, cstr(b"success\0")),
    (gd_result::GD_INVALID_URL as i32, cstr(b"invalid URL\0")),
    (
        gd_result::GD_ADDRESS_IN_USE as i32,
        cstr(b"address in use\0"),
    ),
    (
        gd_result::GD_INVALID_OPTION as i32,
        cstr(b"invalid option or argument\0"),
    ),
    (
        gd_result::GD_INVALID_MEMBER as i32,
        cstr(b"invalid member\0"),
    ),
    (gd_result::GD_TIMEOUT as i32, cstr(b"timed out\0")),
    (gd_result::GD_CLOSED as i32, cstr(b"closed\0")),
    (gd_result::GD_PROTOCOL as i32, cstr(b"protocol error\0")),
    (gd_result::GD_TRANSPORT as i32, cstr(b"transport error\0")),
    (gd_result::GD_IO as i32, cstr(b"I/O or internal error\0")),
];

/// The library's version, e.g. `"0.2.0"`: a static string, never NULL, never freed.
#[no_mangle]
pub extern "C" fn gd_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The version of the NNG library built in, e.g. `"1.11.0"`: a static string,
/// never NULL, never freed.
#[no_mangle]
pub extern "C" fn gd_nng_version() -> *const c_char {
    static V: std::sync::OnceLock<std::ffi::CString> = std::sync::OnceLock::new();
    V.get_or_init(|| std::ffi::CString::new(crate::nng_version()).unwrap_or_default())
        .as_ptr()
}

/// The native wire protocol's version byte (`docs/PROTOCOL.md`), e.g. 3.
#[no_mangle]
pub extern "C" fn gd_wire_version() -> u8 {
    crate::WIRE_VERSION
}

/// The name of a result code, e.g. `"invalid URL"` for `GD_INVALID_URL`: a static
/// string, never NULL, never freed. Unknown codes give `"unknown error code"`.
#[no_mangle]
pub extern "C" fn gd_strerror(code: i32) -> *const c_char {
    name_in(RESULT_NAMES, code, cstr(b"unknown error code\0"))
}

/// Copies the message of the last call that failed on the calling thread into
/// `buf`, NUL-terminated, cut to `len - 1` bytes (at a UTF-8 character boundary).
/// Returns the message's full length in bytes without the NUL, so a return value
/// `>= len` means it was cut; call with `buf = NULL, len = 0` to learn the size.
/// The message is `""` when no call has failed on this thread; a successful call
/// does not clear it (read it right after the failing call, like `errno`).
/// `buf` is owned by the caller and written only during the call.
///
/// # Safety
/// `buf` is NULL or valid for writing `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn gd_last_error_message(buf: *mut c_char, len: usize) -> usize {
    guard(0, || {
        LAST_ERROR
            .try_with(|slot| {
                let msg = slot.borrow();
                if !buf.is_null() && len > 0 {
                    let mut n = msg.len().min(len - 1);
                    while !msg.is_char_boundary(n) {
                        n -= 1;
                    }
                    // SAFETY: `buf` is valid for `len > n` bytes (our contract)
                    // and cannot overlap the message, which the library owns.
                    unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n) };
                    // SAFETY: `n < len`, so `buf + n` is in the caller's buffer.
                    unsafe { buf.add(n).write(0) };
                }
                msg.len()
            })
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_numbers_are_the_core_codes() {
        let all = [
            ErrorCode::Ok,
            ErrorCode::InvalidUrl,
            ErrorCode::AddressInUse,
            ErrorCode::InvalidOption,
            ErrorCode::InvalidMember,
            ErrorCode::Timeout,
            ErrorCode::Closed,
            ErrorCode::Protocol,
            ErrorCode::Transport,
            ErrorCode::Io,
        ];
        for c in all {
            assert_eq!(gd_result::from(c) as i32, c as i32);
            // SAFETY: gd_strerror returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(gd_strerror(c as i32)) };
            assert_ne!(name.to_str().unwrap(), "unknown error code");
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(gd_strerror(10)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown error code");
        // SAFETY: as above.
        let io = unsafe { CStr::from_ptr(gd_strerror(gd_result::GD_IO as i32)) };
        assert_eq!(io.to_str().unwrap(), "I/O or internal error");
    }

    #[test]
    fn every_enum_value_has_its_name() {
        fn name(p: *const c_char) -> &'static str {
            // SAFETY: the *_str functions return static NUL-terminated strings.
            unsafe { CStr::from_ptr(p) }.to_str().unwrap()
        }
        use gd_event_kind::*;
        use gd_reason::*;
        use gd_state::*;
        for (k, n) in [(GD_EVENT_JOINED, "joined"), (GD_EVENT_LEFT, "left")] {
            assert_eq!(name(gd_event_kind_str(k as i32)), n);
        }
        assert_eq!(name(gd_event_kind_str(GD_EVENT_UPDATED as i32)), "updated");
        assert_eq!(name(gd_event_kind_str(0)), "unknown");
        let reasons = [
            (GD_REASON_NONE, "none"),
            (GD_REASON_CLOSED, "closed"),
            (GD_REASON_TIMEOUT, "timeout"),
            (GD_REASON_RESTARTED, "restarted"),
        ];
        for (r, n) in reasons {
            assert_eq!(name(gd_reason_str(r as i32)), n);
        }
        assert_eq!(name(gd_reason_str(-1)), "unknown");
        for (st, n) in [(GD_STATE_SYNCING, "syncing"), (GD_STATE_LIVE, "live")] {
            assert_eq!(name(gd_state_str(st as i32)), n);
        }
        assert_eq!(name(gd_state_str(GD_STATE_STALE as i32)), "stale");
        assert_eq!(name(gd_state_str(3)), "unknown");
    }

    #[test]
    fn a_panic_becomes_an_error_code() {
        let r = run("gd_test", || panic!("boom"));
        assert_eq!(r, gd_result::GD_IO);
        let mut buf = [0 as c_char; 64];
        // SAFETY: `buf` is writable for `buf.len()` bytes.
        let n = unsafe { gd_last_error_message(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: gd_last_error_message NUL-terminated `buf`.
        let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!(n, msg.len());
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn the_message_is_cut_at_a_character_boundary() {
        set_last_error("aé".into());
        let mut buf = [0x7f as c_char; 3];
        // SAFETY: `buf` is writable for `buf.len()` bytes.
        let n = unsafe { gd_last_error_message(buf.as_mut_ptr(), buf.len()) };
        assert_eq!(n, 3);
        assert_eq!(buf[..2], [b'a' as c_char, 0]);
    }
}
