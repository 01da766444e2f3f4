//! Plain immutable values handed to Python: `Member`, `Event`, `ServerUrls`.

use std::hash::{Hash, Hasher};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;

use gopherdiscovery as core;

use crate::convert;

/// Python's `repr()` of a Rust value, so reprs quote the way Python users expect.
pub fn py_repr<'py, T>(py: Python<'py>, value: T) -> PyResult<String>
where
    T: IntoPyObject<'py>,
{
    let obj = value.into_bound_py_any(py)?;
    Ok(obj.repr()?.to_string())
}

/// One live service in the mesh: `name`, `metadata` (a fresh dict on each access),
/// `incarnation` (random per client start; 0 for a legacy member) and `generation`
/// (+1 per metadata change of this incarnation).
#[pyclass(module = "gopherdiscovery", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Member(pub core::Member);

#[pymethods]
impl Member {
    #[new]
    #[pyo3(signature = (name, metadata = None, incarnation = 0, generation = 0))]
    fn new(
        name: String,
        metadata: Option<&Bound<'_, PyAny>>,
        incarnation: u64,
        generation: u32,
    ) -> PyResult<Self> {
        Ok(Member(core::Member {
            name,
            metadata: convert::metadata(metadata)?,
            incarnation,
            generation,
        }))
    }

    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }

    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.0.metadata {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    #[getter]
    fn incarnation(&self) -> u64 {
        self.0.incarnation
    }

    #[getter]
    fn generation(&self) -> u32 {
        self.0.generation
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Member(name={}, metadata={}, incarnation={:#018x}, generation={})",
            py_repr(py, &self.0.name)?,
            self.metadata(py)?.repr()?,
            self.0.incarnation,
            self.0.generation
        ))
    }
}

/// One change to the member set: `kind` ("joined", "left" or "updated"), `member`
/// (as it is after the change; for "left", as it was) and `reason` ("closed",
/// "timeout", "restarted" or None).
#[pyclass(module = "gopherdiscovery", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq)]
pub struct Event(pub core::Event);

impl Hash for Event {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.kind.hash(state);
        self.0.reason.hash(state);
        self.0.member.hash(state);
    }
}

#[pymethods]
impl Event {
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind.as_str()
    }

    #[getter]
    fn member(&self) -> Member {
        Member(self.0.member.clone())
    }

    #[getter]
    fn reason(&self) -> Option<&'static str> {
        self.0.reason.as_str()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Event(kind={}, member={}, reason={})",
            py_repr(py, self.kind())?,
            self.member().__repr__(py)?,
            py_repr(py, self.reason())?,
        ))
    }

    fn __str__(&self) -> String {
        self.0.to_string()
    }
}

/// The URLs a server listens on, as bound (a tcp port 0 replaced by the real port).
#[pyclass(module = "gopherdiscovery", frozen, eq, get_all)]
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrls {
    /// Survey socket (clients dial it).
    pub survey: String,
    /// Publish socket (subscribers dial it).
    pub publish: String,
    /// Snapshot socket (subscribers dial it).
    pub snapshot: String,
    /// Legacy publish socket, if any.
    pub legacy_publish: Option<String>,
}

impl From<&core::ServerUrls> for ServerUrls {
    fn from(u: &core::ServerUrls) -> Self {
        ServerUrls {
            survey: u.survey.clone(),
            publish: u.publish.clone(),
            snapshot: u.snapshot.clone(),
            legacy_publish: u.legacy_publish.clone(),
        }
    }
}

#[pymethods]
impl ServerUrls {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ServerUrls(survey={}, publish={}, snapshot={}, legacy_publish={})",
            py_repr(py, &self.survey)?,
            py_repr(py, &self.publish)?,
            py_repr(py, &self.snapshot)?,
            py_repr(py, &self.legacy_publish)?,
        ))
    }
}

/// One configured server as a subscriber sees it (`Subscriber.servers`).
#[pyclass(module = "gopherdiscovery", frozen, eq, get_all)]
#[derive(Clone, PartialEq)]
pub struct SubscribedServer {
    /// Its publish URL.
    pub publish: String,
    /// Its snapshot URL (None: a legacy publisher).
    pub snapshot: Option<String>,
    /// Epoch of this server's replica (0 before its first snapshot).
    pub epoch: u64,
    /// Seq of this server's replica.
    pub seq: u64,
    /// "syncing", "live" or "stale".
    pub state: &'static str,
    /// The server says it is warming: it may add members, not remove them.
    pub warming: bool,
    /// Members in this server's replica.
    pub members: usize,
    /// Seconds since its last publication (None: none yet).
    pub last_publication_age: Option<f64>,
    /// Snapshots fetched from it after the first.
    pub resyncs: u64,
}

impl From<&core::SubscribedServer> for SubscribedServer {
    fn from(s: &core::SubscribedServer) -> Self {
        SubscribedServer {
            publish: s.publish.clone(),
            snapshot: s.snapshot.clone(),
            epoch: s.epoch,
            seq: s.seq,
            state: s.state.as_str(),
            warming: s.warming,
            members: s.members,
            last_publication_age: s.last_publication_age.map(|d| d.as_secs_f64()),
            resyncs: s.resyncs,
        }
    }
}

#[pymethods]
impl SubscribedServer {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "SubscribedServer(publish={}, state={}, warming={}, epoch=0x{:016x}, seq={}, members={})",
            py_repr(py, self.publish.as_str())?,
            py_repr(py, self.state)?,
            if self.warming { "True" } else { "False" },
            self.epoch,
            self.seq,
            self.members,
        ))
    }
}
