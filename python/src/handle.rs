//! The one lifecycle of every Python handle (`Server`, `SubscriberCore`,
//! `ClientCore`): a core object taken out exactly once — by `close()` or when the
//! Python object is collected — and dropped with the GIL released, since dropping
//! joins the core's threads.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;

use crate::errors;

/// Locks `m`, taking over a poisoned lock: every critical section here is a plain
/// read or swap, so a panicking holder left the data consistent.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A core object behind a Python handle; `what` names it in errors ("the server").
pub struct Handle<T: Send> {
    inner: Mutex<Option<T>>,
    what: &'static str,
}

impl<T: Send> Handle<T> {
    pub fn new(value: T, what: &'static str) -> Self {
        Handle {
            inner: Mutex::new(Some(value)),
            what,
        }
    }

    /// Runs `f` on the object, or raises `ClosedError` once it is closed.
    pub fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&T) -> R) -> PyResult<R> {
        match lock(&self.inner).as_ref() {
            Some(v) => Ok(f(v)),
            None => Err(errors::closed(py, self.what)),
        }
    }

    /// True after `close()`.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner).is_none()
    }

    /// Takes the object out (once) and drops it without the GIL. Idempotent; safe
    /// from any thread.
    pub fn close(&self, py: Python<'_>) {
        let taken = lock(&self.inner).take();
        if let Some(v) = taken {
            py.detach(move || drop(v));
        }
    }
}

impl<T: Send> Drop for Handle<T> {
    fn drop(&mut self) {
        let taken = lock(&self.inner).take();
        if let Some(v) = taken {
            // Garbage collection runs attached; the drop needs no Python, but let
            // other Python threads run meanwhile.
            Python::attach(|py| py.detach(move || drop(v)));
        }
    }
}
