//! Authenticated meshes in the C ABI: the keyring fields every options struct ends
//! with (`keys`, `keys_count`, `keyring_file`, `auth`, `mesh_label`), the
//! `gd_*_set_keyring` reloads' shared reading of keys, and `gd_key_id`.
//! See docs/PROTOCOL.md, "Authentication".
//!
//! Keys are read straight from the caller's buffers into a [`Keyring`], which
//! keeps only what it derives from them (and zeroes that when dropped): no copy
//! of a raw key is made here.

use std::ffi::c_char;

use super::{gd_result, opt_str, run, slice, Fail};
use crate::auth::{Auth, AuthMode, Keyring, KEY_LEN, MAX_KEYS};
use crate::error::Error;

/// What a handle does with signatures (`auth` of every options struct).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gd_auth {
    /// The default: `GD_AUTH_REQUIRED` when a keyring is given (`keys` or
    /// `keyring_file`), `GD_AUTH_OFF` without.
    GD_AUTH_DEFAULT = 0,
    /// Nothing is signed or checked.
    GD_AUTH_OFF = 1,
    /// Everything sent is signed; signed input must verify; unsigned input
    /// (peers without a key, legacy members) is accepted and counted
    /// (`auth_unsigned_accepted`). For rolling a key into a live mesh.
    GD_AUTH_PERMISSIVE = 2,
    /// Everything sent is signed; only input that verifies is accepted.
    GD_AUTH_REQUIRED = 3,
}

/// The sizes and limits of keys in C: integer constants, usable as array sizes
/// (`uint8_t key[GD_KEY_LEN]`, `char id[GD_KEY_ID_LEN]`).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum gd_keyring_limits {
    /// Bytes of one key (`keys`, `gd_*_set_keyring`, `gd_key_id`).
    GD_KEY_LEN = 32,
    /// Most keys in a keyring (`keys_count`).
    GD_MAX_KEYS = 64,
    /// Bytes `gd_key_id` writes: 8 lowercase hex digits and a NUL.
    GD_KEY_ID_LEN = 9,
}

const _: () = assert!(gd_keyring_limits::GD_KEY_LEN as usize == KEY_LEN);
const _: () = assert!(gd_keyring_limits::GD_MAX_KEYS as usize == MAX_KEYS);
const KEY_ID_LEN: usize = gd_keyring_limits::GD_KEY_ID_LEN as usize;

/// The authentication fields of an options struct, as the caller set them.
pub(crate) struct AuthFields {
    pub(crate) keys: *const *const u8,
    pub(crate) keys_count: usize,
    pub(crate) keyring_file: *const c_char,
    pub(crate) auth: i32,
    pub(crate) mesh_label: *const c_char,
}

impl AuthFields {
    /// True when none is set (all at their defaults): a watching client's
    /// subscriber then takes the client's settings.
    pub(crate) fn is_unset(&self) -> bool {
        self.keys_count == 0
            && self.keyring_file.is_null()
            && self.auth == gd_auth::GD_AUTH_DEFAULT as i32
            && self.mesh_label.is_null()
    }

    /// The settings: keyring (from `keys` or `keyring_file`), mode and label.
    /// Whether the mode fits the keyring is checked by the handle's builder
    /// (`GD_AUTH_REQUIRED` without a key: `invalid option auth`).
    ///
    /// # Safety
    /// `keys` is as for [`read_keys`]; `keyring_file` and `mesh_label` are NULL
    /// or NUL-terminated strings; all readable during the call.
    pub(crate) unsafe fn read(&self) -> Result<Auth, Fail> {
        let mode = match self.auth {
            0 => None,
            1 => Some(AuthMode::Off),
            2 => Some(AuthMode::Permissive),
            3 => Some(AuthMode::Required),
            other => {
                return Err(Fail::invalid(format!(
                    "auth is {other}: must be GD_AUTH_DEFAULT, GD_AUTH_OFF, GD_AUTH_PERMISSIVE \
                     or GD_AUTH_REQUIRED"
                )))
            }
        };
        let code = gd_result::GD_INVALID_OPTION;
        // SAFETY: our contract: NULL or NUL-terminated; copied below.
        let file = unsafe { opt_str(self.keyring_file, "keyring_file", code) }?;
        let keyring = match (self.keys_count, file) {
            (0, None) => None,
            (0, Some(path)) => Some(Keyring::from_file(path)?),
            (_, None) => {
                // SAFETY: our contract on `keys` and `keys_count` is `read_keys`'s.
                Some(unsafe { read_keys(self.keys, self.keys_count, "keys") }?)
            }
            (_, Some(_)) => {
                return Err(Fail::invalid(
                    "keys and keyring_file exclude each other (give the keyring one way)",
                ))
            }
        };
        // SAFETY: our contract: NULL or NUL-terminated; copied at once.
        let label = unsafe { opt_str(self.mesh_label, "mesh_label", code) }?.unwrap_or("");
        let mut auth = Auth::off().keyring(keyring).mesh_label(label);
        if let Some(m) = mode {
            auth = auth.mode(m);
        }
        auth.validate()?;
        Ok(auth)
    }
}

/// A keyring from `count` pointers to 32-byte keys, primary first. The error
/// names `what` (the option or argument): a NULL array or entry, no key, more
/// than 64 keys, a key given twice.
///
/// # Safety
/// When `count` is not 0, `keys` is NULL or points to `count` pointers, each
/// NULL or pointing to `GD_KEY_LEN` readable bytes, all readable during the call.
pub(crate) unsafe fn read_keys(
    keys: *const *const u8,
    count: usize,
    what: &str,
) -> Result<Keyring, Fail> {
    if count == 0 {
        return Err(Fail::invalid(format!(
            "{what}: no key ({what}_count is 0; a keyring has 1 to {MAX_KEYS} keys)"
        )));
    }
    if count > MAX_KEYS {
        return Err(Fail::invalid(format!(
            "{what}: {what}_count is {count}, more than {MAX_KEYS} keys"
        )));
    }
    // SAFETY: our contract on `keys` and `count` is `slice`'s.
    let ptrs = unsafe { slice(keys, count, what) }?;
    let mut raw: Vec<&[u8]> = Vec::with_capacity(count);
    for (i, &p) in ptrs.iter().enumerate() {
        if p.is_null() {
            return Err(Fail::invalid(format!("{what}[{i}] is NULL")));
        }
        // SAFETY: `p` is not NULL, so by our contract it points to `KEY_LEN`
        // readable bytes, unchanged during the call; `u8` has no alignment.
        raw.push(unsafe { std::slice::from_raw_parts(p, KEY_LEN) });
    }
    Keyring::new(raw).map_err(|e| match e {
        Error::InvalidOption { reason, .. } => Fail::invalid(format!("{what}: {reason}")),
        e => e.into(),
    })
}

/// Writes the key id of a 32-byte key into `out`: 8 lowercase hex digits and a
/// NUL (`GD_KEY_ID_LEN` bytes), e.g. `"03defadb"` for the key of bytes 0, 1, …,
/// 31. The id names a key in logs, metrics and `gopherdiscovery keyring list`
/// without revealing it. `key` is read and `out` written only during the call;
/// both stay the caller's. Any thread.
///
/// Errors: `GD_INVALID_OPTION` (`key` or `out` NULL); `out` is not written.
///
/// # Safety
/// `key` is NULL or points to `GD_KEY_LEN` readable bytes; `out` is NULL or
/// valid for writing `GD_KEY_ID_LEN` bytes.
#[no_mangle]
pub unsafe extern "C" fn gd_key_id(key: *const u8, out: *mut c_char) -> gd_result {
    run("gd_key_id", || {
        if key.is_null() || out.is_null() {
            return Err(Fail::invalid("key or out is NULL"));
        }
        // SAFETY: `key` is not NULL, so by our contract `KEY_LEN` bytes are
        // readable there during the call.
        let bytes = unsafe { std::slice::from_raw_parts(key, KEY_LEN) };
        let id = format!("{}\0", Keyring::key_id_of(bytes)?);
        assert_eq!(id.len(), KEY_ID_LEN, "a key id is 8 hex digits");
        // SAFETY: `out` is not NULL, so valid for `GD_KEY_ID_LEN` bytes by our
        // contract; `id` is exactly that long (asserted) and is ours, so no overlap.
        unsafe { std::ptr::copy_nonoverlapping(id.as_ptr(), out.cast::<u8>(), KEY_ID_LEN) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn fields(keys: &[*const u8], auth: i32) -> AuthFields {
        AuthFields {
            keys: keys.as_ptr(),
            keys_count: keys.len(),
            keyring_file: std::ptr::null(),
            auth,
            mesh_label: std::ptr::null(),
        }
    }

    fn message(f: Fail) -> String {
        f.message
    }

    #[test]
    fn key_id_is_the_documented_one() {
        let key: Vec<u8> = (0..32).collect();
        let mut out = [0x7f as c_char; KEY_ID_LEN];
        // SAFETY: 32 readable bytes, 9 writable ones.
        let rc = unsafe { gd_key_id(key.as_ptr(), out.as_mut_ptr()) };
        assert_eq!(rc, gd_result::GD_OK);
        // SAFETY: gd_key_id NUL-terminated `out`.
        let id = unsafe { CStr::from_ptr(out.as_ptr()) };
        assert_eq!(id.to_str().unwrap(), "03defadb");
        // SAFETY: NULLs are refused before any access.
        let rc = unsafe { gd_key_id(std::ptr::null(), out.as_mut_ptr()) };
        assert_eq!(rc, gd_result::GD_INVALID_OPTION);
    }

    #[test]
    fn keys_are_checked_with_messages_naming_the_option() {
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        let ok = fields(&[k1.as_ptr(), k2.as_ptr()], 0);
        // SAFETY: two pointers to 32 bytes each, NULL strings.
        let auth = unsafe { ok.read() }.map_err(message).unwrap();
        assert_eq!(auth.effective_mode(), AuthMode::Required);
        assert_eq!(auth.get_keyring().unwrap().key_ids().len(), 2);

        let cases: [(AuthFields, &str); 4] = [
            (
                fields(&[k1.as_ptr(), std::ptr::null()], 0),
                "keys[1] is NULL",
            ),
            (fields(&[k1.as_ptr(), k1.as_ptr()], 0), "given twice"),
            (fields(&[k1.as_ptr()], 9), "auth is 9"),
            (fields(&[], 3), "needs a keyring"),
        ];
        for (f, want) in cases {
            // SAFETY: as above.
            let e = unsafe { f.read() }
                .map(|_| ())
                .map_err(message)
                .unwrap_err();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
        let many = vec![k1.as_ptr(); 65];
        // SAFETY: the count is refused before the array is read.
        let e = unsafe { fields(&many, 0).read() }
            .map(|_| ())
            .map_err(message);
        assert!(e.unwrap_err().contains("more than 64"));
    }
}
