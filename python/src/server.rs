//! `Server`: the discovery server, complete in Rust (it runs no Python code).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyList;

use gopherdiscovery as core;

use crate::auth;
use crate::convert;
use crate::errors;
use crate::handle::Handle;
use crate::objects::{Member, ServerUrls};

/// A discovery server: surveys members on `survey`, publishes every change on
/// `publish` and serves snapshots on `snapshot`. Times are in seconds.
///
/// With `keyring=[key, …]` (32-byte keys, primary first) or `keyring_file=` (one
/// base64 key per line), it signs every survey, publication and snapshot and takes
/// only answers and snapshot requests that verify; `auth` ("off", "permissive",
/// "required"; default "required" with a keyring, else "off") and `mesh_label`
/// as for every handle.
///
/// `close()` (or leaving the `with` block, or garbage collection) stops it; its
/// members see their connections close and reconnect when a server comes back.
#[pyclass(module = "gopherdiscovery", frozen)]
pub struct Server {
    inner: Handle<core::Server>,
    urls: core::ServerUrls,
}

impl Server {
    fn with<T>(&self, py: Python<'_>, f: impl FnOnce(&core::Server) -> T) -> PyResult<T> {
        self.inner.with(py, f)
    }
}

/// The literal defaults of `Server()`'s signature are the core's (checked at compile time).
const _: () = assert!(
    same(core::DEFAULT_SURVEY_URL, "tcp://127.0.0.1:40007")
        && same(core::DEFAULT_PUBLISH_URL, "tcp://127.0.0.1:50007")
        && same(core::DEFAULT_SNAPSHOT_URL, "tcp://127.0.0.1:50008"),
    "Server()'s default URLs differ from gopherdiscovery::DEFAULT_*_URL"
);

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[pymethods]
impl Server {
    #[new]
    // Literal defaults, so that help(Server) shows the URLs (pyo3 writes `...` for any
    // other expression); a compile-time assertion keeps them equal to the core's constants.
    #[pyo3(signature = (
        survey = "tcp://127.0.0.1:40007",
        publish = "tcp://127.0.0.1:50007",
        snapshot = "tcp://127.0.0.1:50008",
        legacy_publish = None,
        interval = core::DEFAULT_INTERVAL.as_secs_f64(),
        deadline = None,
        evict_after = i64::from(core::DEFAULT_EVICT_AFTER),
        *,
        keyring = None,
        keyring_file = None,
        auth = None,
        mesh_label = "",
    ))]
    #[allow(clippy::too_many_arguments)] // one per keyword argument of Server()
    fn new(
        py: Python<'_>,
        survey: &str,
        publish: &str,
        snapshot: &str,
        legacy_publish: Option<String>,
        interval: f64,
        deadline: Option<f64>,
        evict_after: i64,
        keyring: Option<&Bound<'_, PyAny>>,
        keyring_file: Option<PathBuf>,
        auth: Option<&str>,
        mesh_label: &str,
    ) -> PyResult<Self> {
        let mut builder = core::Server::builder().authentication(auth::settings(
            py,
            keyring,
            keyring_file,
            auth,
            mesh_label,
        )?);
        if let Some(d) = deadline {
            // None: half the interval (the core's default).
            builder = builder.deadline(convert::seconds(py, "deadline", d)?);
        }
        let builder = builder
            .survey(survey)
            .publish(publish)
            .snapshot(snapshot)
            .legacy_publish(legacy_publish)
            .interval(convert::seconds(py, "interval", interval)?)
            .evict_after(convert::count(py, "evict_after", evict_after)?);
        let server = py
            .detach(move || builder.start())
            .map_err(|e| errors::to_py(py, e))?;
        Ok(Server {
            urls: server.urls().clone(),
            inner: Handle::new(server, "the server"),
        })
    }

    /// The URLs as bound; still readable after `close()`.
    #[getter]
    fn urls(&self) -> ServerUrls {
        ServerUrls::from(&self.urls)
    }

    /// The members now, sorted by name.
    #[getter]
    fn members<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let members = self.with(py, |s| s.members())?;
        PyList::new(py, members.into_iter().map(Member))
    }

    /// This run's epoch (random per start).
    #[getter]
    fn epoch(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |s| s.epoch())
    }

    /// What the server took, dropped and sent so far (the numbers of `/metrics`).
    fn stats(&self, py: Python<'_>) -> PyResult<crate::stats::ServerStats> {
        self.with(py, |s| s.stats().into())
    }

    /// "off", "permissive" or "required".
    #[getter]
    fn auth_mode(&self, py: Python<'_>) -> PyResult<&'static str> {
        self.with(py, |s| s.auth_mode().as_str())
    }

    /// Replaces the keyring (`keyring=[key, …]` or `keyring_file=`; the mode and
    /// mesh label stay): what is sent next is signed with the new primary, what
    /// comes next is verified with every new key. Rolling a key: add it as
    /// secondary everywhere, make it primary everywhere, drop the old one when
    /// `key_use()` shows its count no longer rising. Fails on a server started
    /// without a keyring.
    #[pyo3(signature = (keyring = None, *, keyring_file = None))]
    fn set_keyring(
        &self,
        py: Python<'_>,
        keyring: Option<&Bound<'_, PyAny>>,
        keyring_file: Option<PathBuf>,
    ) -> PyResult<()> {
        let ring = auth::replacement(py, keyring, keyring_file)?;
        self.with(py, |s| s.set_keyring(ring))?
            .map_err(|e| errors::to_py(py, e))
    }

    /// Per key of the keyring (primary first), ``(key_id, messages verified with
    /// it)`` since the start, kept across ``set_keyring``. Empty without a keyring.
    fn key_use(&self, py: Python<'_>) -> PyResult<Vec<(String, u64)>> {
        self.with(py, |s| {
            (s.key_use().into_iter())
                .map(|(id, n)| (id.to_string(), n))
                .collect()
        })
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Stops the server: closes its sockets and joins its threads (without the
    /// GIL). Idempotent; safe from any thread.
    fn close(&self, py: Python<'_>) {
        self.inner.close(py);
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<Server survey={} publish={} snapshot={}{}>",
            crate::objects::py_repr(py, &self.urls.survey)?,
            crate::objects::py_repr(py, &self.urls.publish)?,
            crate::objects::py_repr(py, &self.urls.snapshot)?,
            if self.closed() { " closed" } else { "" }
        ))
    }
}
