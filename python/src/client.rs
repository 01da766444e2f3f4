//! `ClientCore`: a member that answers surveys. The public `gopherdiscovery.Client`
//! (Python) adds the optional watching side.

use std::path::PathBuf;

use pyo3::prelude::*;

use gopherdiscovery as core;

use crate::auth;
use crate::convert;
use crate::errors;
use crate::handle::Handle;
use crate::objects::Member;

/// A running member: answers the surveys of every server it dials.
#[pyclass(module = "gopherdiscovery._gopherdiscovery", frozen)]
pub struct ClientCore {
    inner: Handle<core::Client>,
}

impl ClientCore {
    fn with<T>(&self, py: Python<'_>, f: impl FnOnce(&core::Client) -> T) -> PyResult<T> {
        self.inner.with(py, f)
    }
}

#[pymethods]
impl ClientCore {
    /// Joins as `service`, dialling `survey` (one URL or a list of them); answers
    /// only surveys that verify with the keyring, if one is given.
    #[new]
    #[pyo3(signature = (
        service,
        survey,
        metadata = None,
        *,
        keyring = None,
        keyring_file = None,
        auth = None,
        mesh_label = "",
    ))]
    #[allow(clippy::too_many_arguments)] // one per keyword argument of Client()
    fn new(
        py: Python<'_>,
        service: String,
        survey: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        keyring: Option<&Bound<'_, PyAny>>,
        keyring_file: Option<PathBuf>,
        auth: Option<&str>,
        mesh_label: &str,
    ) -> PyResult<Self> {
        let mut builder = core::Client::builder(service)
            .metadata(convert::metadata(metadata)?)
            .authentication(auth::settings(py, keyring, keyring_file, auth, mesh_label)?);
        for url in convert::urls("survey", survey)? {
            builder = builder.survey(url);
        }
        let client = py
            .detach(move || builder.start())
            .map_err(|e| errors::to_py(py, e))?;
        Ok(ClientCore {
            inner: Handle::new(client, "the client"),
        })
    }

    /// The member as announced: name, metadata, incarnation.
    #[getter]
    fn member(&self, py: Python<'_>) -> PyResult<Member> {
        self.with(py, |c| Member(c.member()))
    }

    /// Number of live connections to servers.
    #[getter]
    fn connections(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |c| c.connections())
    }

    /// Connections, surveys answered, announces sent, drops by authentication.
    fn stats(&self, py: Python<'_>) -> PyResult<crate::stats::ClientStats> {
        self.with(py, |c| c.stats().into())
    }

    /// Replaces the keyring (mode and mesh label stay): answers are signed with
    /// the new primary from the next survey on. Fails on a client started without one.
    #[pyo3(signature = (keyring = None, *, keyring_file = None))]
    fn set_keyring(
        &self,
        py: Python<'_>,
        keyring: Option<&Bound<'_, PyAny>>,
        keyring_file: Option<PathBuf>,
    ) -> PyResult<()> {
        let ring = auth::replacement(py, keyring, keyring_file)?;
        self.with(py, |c| c.set_keyring(ring))?
            .map_err(|e| errors::to_py(py, e))
    }

    /// Replaces the metadata; every server publishes "updated" at once.
    fn set_metadata(&self, py: Python<'_>, metadata: &Bound<'_, PyAny>) -> PyResult<()> {
        let md = convert::metadata(Some(metadata))?;
        self.with(py, |c| c.set_metadata(md))?
            .map_err(|e| errors::to_py(py, e))
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Closes the connections (servers see the member leave at once, reason
    /// "closed"). Idempotent; safe from any thread.
    fn close(&self, py: Python<'_>) {
        self.inner.close(py);
    }
}
