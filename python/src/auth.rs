//! Authentication from Python: the keyword arguments every constructor takes
//! (`keyring`, `keyring_file`, `auth`, `mesh_label`) to a core [`core::Auth`],
//! `set_keyring`'s arguments to a [`core::Keyring`], and the module functions
//! `generate_key` and `key_id`.
//!
//! Keys come from Python as `bytes`; each is copied into a buffer that is zeroed
//! when dropped, right after the core keyring (which keeps only keys derived from
//! them, zeroed in turn) is built. The caller's own `bytes` objects are Python's to
//! free: Python offers no way to clear them.

use std::path::PathBuf;

use base64::Engine as _;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};
use zeroize::Zeroizing;

use gopherdiscovery as core;

use crate::convert::type_name;
use crate::errors;

/// A key copied out of a `bytes` or `bytearray`, zeroed when dropped; `which`
/// names it in the error ("key 2").
fn copy_key(py: Python<'_>, which: &str, item: &Bound<'_, PyAny>) -> PyResult<Zeroizing<Vec<u8>>> {
    if let Ok(b) = item.cast::<PyBytes>() {
        Ok(Zeroizing::new(b.as_bytes().to_vec()))
    } else if let Ok(b) = item.cast::<PyByteArray>() {
        Ok(Zeroizing::new(b.to_vec()))
    } else {
        Err(errors::invalid_option(
            py,
            "keyring",
            format!(
                "{which}: must be bytes ({} raw bytes), not {}",
                core::auth::KEY_LEN,
                type_name(item)
            ),
        ))
    }
}

/// `keyring=[key, …]` (primary first) to a core keyring. A single `bytes` or `str`
/// is refused rather than read as a list of ints or characters.
fn keyring(keys: &Bound<'_, PyAny>) -> PyResult<core::Keyring> {
    let py = keys.py();
    if keys.is_instance_of::<PyBytes>()
        || keys.is_instance_of::<PyByteArray>()
        || keys.is_instance_of::<PyString>()
    {
        return Err(errors::invalid_option(
            py,
            "keyring",
            format!(
                "must be a list of keys, primary first (keyring=[key]), not one {}",
                type_name(keys)
            ),
        ));
    }
    let items = keys.try_iter().map_err(|_| {
        errors::invalid_option(
            py,
            "keyring",
            format!("must be a list of keys, not {}", type_name(keys)),
        )
    })?;
    let mut copies = Vec::new();
    for (i, item) in items.enumerate() {
        copies.push(copy_key(py, &format!("key {}", i + 1), &item?)?);
        if copies.len() > core::auth::MAX_KEYS {
            break; // the core refuses it: no need to read an endless iterator on
        }
    }
    core::Keyring::new(copies.iter().map(|k| &k[..])).map_err(|e| errors::to_py(py, e))
}

/// The keyring from `keyring=` or `keyring_file=` (at most one of them); None when
/// neither is given.
fn load(
    py: Python<'_>,
    keys: Option<&Bound<'_, PyAny>>,
    file: Option<PathBuf>,
) -> PyResult<Option<core::Keyring>> {
    match (keys, file) {
        (Some(_), Some(_)) => Err(errors::invalid_option(
            py,
            "keyring",
            "give keyring or keyring_file, not both",
        )),
        (Some(keys), None) => keyring(keys).map(Some),
        (None, Some(path)) => core::Keyring::from_file(path)
            .map(Some)
            .map_err(|e| errors::to_py(py, e)),
        (None, None) => Ok(None),
    }
}

/// The settings of a constructor's `keyring`, `keyring_file`, `auth` and
/// `mesh_label` (the builder validates them as a whole when it starts: a mode
/// other than "off" without a keyring, a label too long).
pub fn settings(
    py: Python<'_>,
    keys: Option<&Bound<'_, PyAny>>,
    file: Option<PathBuf>,
    mode: Option<&str>,
    mesh_label: &str,
) -> PyResult<core::Auth> {
    let mut auth = core::Auth::off()
        .keyring(load(py, keys, file)?)
        .mesh_label(mesh_label);
    if let Some(mode) = mode {
        auth = auth.mode(mode.parse().map_err(|e| errors::to_py(py, e))?);
    }
    Ok(auth)
}

/// The new keyring of `set_keyring(keyring)` or `set_keyring(keyring_file=…)`:
/// exactly one of them.
pub fn replacement(
    py: Python<'_>,
    keys: Option<&Bound<'_, PyAny>>,
    file: Option<PathBuf>,
) -> PyResult<core::Keyring> {
    load(py, keys, file)?.ok_or_else(|| {
        errors::invalid_option(py, "keyring", "give the new keyring or keyring_file")
    })
}

/// A new random 32-byte key from the operating system, for ``keyring=[key]``
/// (what ``gopherdiscovery keygen`` prints, as raw bytes instead of base64). Keep it
/// secret: whoever holds it joins the mesh.
#[pyfunction]
pub fn generate_key(py: Python<'_>) -> PyResult<Py<PyBytes>> {
    let text = Zeroizing::new(core::Keyring::generate().map_err(|e| errors::to_py(py, e))?);
    let key = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| errors::invalid_option(py, "keyring", format!("generated key: {e}")))?,
    );
    Ok(PyBytes::new(py, &key).unbind())
}

/// The id of a 32-byte key: 8 lowercase hex digits, as in logs, metrics,
/// ``Server.key_use()`` and ``gopherdiscovery keyring list``. It names the key
/// without revealing it.
#[pyfunction]
pub fn key_id(key: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = key.py();
    let copy = copy_key(py, "the key", key)?;
    core::Keyring::key_id_of(&copy)
        .map(|id| id.to_string())
        .map_err(|e| errors::to_py(py, e))
}
