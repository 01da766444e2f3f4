//! `SubscriberCore`: a core subscriber whose updates go to a [`Feed`].
//!
//! The public `gopherdiscovery.Subscriber` (Python) wraps it with callbacks and
//! iterators; this class only holds the subscriber and hands out cursors.

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyList;

use gopherdiscovery as core;

use crate::errors;
use crate::feed::{Cursor, Feed};
use crate::objects::{Member, ServerStatus};

/// A running subscriber (the watching side). Its updates are read through
/// `cursor()`; `peers`, `members` and `state` read its view directly.
#[pyclass(module = "gopherdiscovery._gopherdiscovery", frozen)]
pub struct SubscriberCore {
    inner: Mutex<Option<core::Subscriber>>,
    feed: Arc<Feed>,
}

impl SubscriberCore {
    fn inner(&self) -> MutexGuard<'_, Option<core::Subscriber>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T>(&self, py: Python<'_>, f: impl FnOnce(&core::Subscriber) -> T) -> PyResult<T> {
        match self.inner().as_ref() {
            Some(s) => Ok(f(s)),
            None => Err(errors::closed(py, "the subscriber")),
        }
    }
}

#[pymethods]
impl SubscriberCore {
    /// Dials `publish` and, unless it is None (a legacy publisher), `snapshot`;
    /// or, with `servers`, every (publish, snapshot) pair, and merges them.
    #[new]
    #[pyo3(signature = (
        publish = core::DEFAULT_PUBLISH_URL.to_owned(),
        snapshot = Some(core::DEFAULT_SNAPSHOT_URL.to_owned()),
        servers = None,
    ))]
    fn new(
        py: Python<'_>,
        publish: String,
        snapshot: Option<String>,
        servers: Option<Vec<(String, String)>>,
    ) -> PyResult<Self> {
        let feed = Feed::new();
        let to_feed = feed.clone();
        let mut builder = core::Subscriber::builder()
            .publish(publish)
            .snapshot(snapshot)
            .on_update(move |u| to_feed.push(u));
        for (p, s) in servers.unwrap_or_default() {
            builder = builder.server(p, s);
        }
        let sub = py
            .detach(move || builder.start())
            .map_err(|e| errors::to_py(py, e))?;
        Ok(SubscriberCore {
            inner: Mutex::new(Some(sub)),
            feed,
        })
    }

    /// The peer names now, sorted.
    #[getter]
    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let peers = self.with(py, |s| s.peers())?;
        PyList::new(py, peers)
    }

    /// The members now, sorted by name.
    #[getter]
    fn members<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let members = self.with(py, |s| s.members())?;
        PyList::new(py, members.into_iter().map(Member))
    }

    /// "syncing" (no snapshot yet), "live" or "stale".
    #[getter]
    fn state(&self, py: Python<'_>) -> PyResult<&'static str> {
        self.with(py, |s| s.state().as_str())
    }

    /// (epoch, seq) of the view.
    #[getter]
    fn position(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        self.with(py, |s| s.position())
    }

    /// Every configured server's status, in configuration order.
    #[getter]
    fn servers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let servers = self.with(py, |s| s.servers())?;
        PyList::new(py, servers.iter().map(ServerStatus::from))
    }

    /// Snapshots fetched after the first one (gaps, new epochs, digest mismatches).
    #[getter]
    fn resyncs(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |s| s.resyncs())
    }

    /// A new reader of the updates from now on. With `replay`, its first wait
    /// returns at once with the current view (once there is one) and, unless
    /// `events` is false, a "joined" event for each member present now. Without
    /// `events`, its updates carry no events (for readers of peer lists).
    #[pyo3(signature = (replay = false, events = true))]
    fn cursor(&self, py: Python<'_>, replay: bool, events: bool) -> PyResult<Cursor> {
        if self.closed() {
            return Err(errors::closed(py, "the subscriber"));
        }
        Ok(Cursor::new(self.feed.clone(), replay, events))
    }

    /// Wakes every cursor with the current view and no events.
    fn poke(&self) {
        self.feed.poke();
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.inner().is_none()
    }

    /// Stops the subscriber and ends every cursor's waits. Idempotent; safe from
    /// any thread, including a thread that is delivering this subscriber's updates.
    fn close(&self, py: Python<'_>) {
        let taken = self.inner().take();
        self.feed.close();
        if let Some(sub) = taken {
            py.detach(move || drop(sub));
        }
    }
}

impl Drop for SubscriberCore {
    fn drop(&mut self) {
        self.feed.close();
        let taken = self.inner().take();
        if let Some(sub) = taken {
            Python::attach(|py| py.detach(move || drop(sub)));
        }
    }
}
