//! `ClientCore`: a member that answers surveys. The public `gopherdiscovery.Client`
//! (Python) adds the optional watching side.

use pyo3::prelude::*;

use gopherdiscovery as core;

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
    /// Joins as `service`, dialling `survey` (one URL or a list of them).
    #[new]
    #[pyo3(signature = (service, survey, metadata = None))]
    fn new(
        py: Python<'_>,
        service: String,
        survey: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut builder = core::Client::builder(service).metadata(convert::metadata(metadata)?);
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
