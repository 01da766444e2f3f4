//! `SubscriberCore`: a core subscriber whose updates go to a [`Feed`].
//!
//! The public `gopherdiscovery.Subscriber` (Python) wraps it with callbacks and
//! iterators; this class only holds the subscriber and hands out cursors.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use gopherdiscovery as core;

use crate::auth;
use crate::errors;
use crate::feed::{Cursor, Feed};
use crate::handle::Handle;
use crate::objects::{Member, SubscribedServer};

/// A running subscriber (the watching side). Its updates are read through
/// `cursor()`; `peers`, `members` and `state` read its view directly.
#[pyclass(module = "gopherdiscovery._gopherdiscovery", frozen)]
pub struct SubscriberCore {
    inner: Handle<core::Subscriber>,
    feed: Arc<Feed>,
}

impl SubscriberCore {
    fn with<T>(&self, py: Python<'_>, f: impl FnOnce(&core::Subscriber) -> T) -> PyResult<T> {
        self.inner.with(py, f)
    }
}

#[pymethods]
impl SubscriberCore {
    /// Dials `publish` and, unless it is None (a legacy publisher), `snapshot`;
    /// or, with `servers`, every (publish, snapshot) pair, and merges them. With
    /// a keyring, takes only publications and snapshots that verify.
    #[new]
    #[pyo3(signature = (
        publish = core::DEFAULT_PUBLISH_URL.to_owned(),
        snapshot = Some(core::DEFAULT_SNAPSHOT_URL.to_owned()),
        servers = None,
        *,
        keyring = None,
        keyring_file = None,
        auth = None,
        mesh_label = "",
    ))]
    #[allow(clippy::too_many_arguments)] // one per keyword argument of Subscriber()
    fn new(
        py: Python<'_>,
        publish: String,
        snapshot: Option<String>,
        servers: Option<Vec<(String, String)>>,
        keyring: Option<&Bound<'_, PyAny>>,
        keyring_file: Option<PathBuf>,
        auth: Option<&str>,
        mesh_label: &str,
    ) -> PyResult<Self> {
        let feed = Feed::new();
        let to_feed = feed.clone();
        let mut builder = core::Subscriber::builder()
            .publish(publish)
            .snapshot(snapshot)
            .authentication(auth::settings(py, keyring, keyring_file, auth, mesh_label)?)
            .on_update(move |u| to_feed.push(u));
        for (p, s) in servers.unwrap_or_default() {
            builder = builder.server(p, s);
        }
        let sub = py
            .detach(move || builder.start())
            .map_err(|e| errors::to_py(py, e))?;
        Ok(SubscriberCore {
            inner: Handle::new(sub, "the subscriber"),
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

    /// State, view, connections and counters now.
    fn stats(&self, py: Python<'_>) -> PyResult<crate::stats::SubscriberStats> {
        self.with(py, |s| s.stats().into())
    }

    /// Replaces the keyring (mode and mesh label stay). Fails on a subscriber
    /// started without one.
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

    /// Every configured server's status, in configuration order.
    #[getter]
    fn servers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let servers = self.with(py, |s| s.servers())?;
        PyList::new(py, servers.iter().map(SubscribedServer::from))
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
        self.inner.is_closed()
    }

    /// Stops the subscriber and ends every cursor's waits. Idempotent; safe from
    /// any thread, including a thread that is delivering this subscriber's updates.
    fn close(&self, py: Python<'_>) {
        self.feed.close();
        self.inner.close(py);
    }
}

impl Drop for SubscriberCore {
    fn drop(&mut self) {
        // The handle drops the core (joining its threads) after this.
        self.feed.close();
    }
}
