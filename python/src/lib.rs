//! `gopherdiscovery._gopherdiscovery`: the Rust half of the Python package.
//!
//! ```text
//!  gd-subscriber (Rust thread)         Python threads
//!  core handler ──push──▶ Feed ──wait (GIL released, 50 ms steps)──▶ Cursor
//!                        (mutex + condvar,      dispatcher thread: callbacks
//!                         bounded events)       changes(), wait_for(), changes_async()
//! ```
//!
//! Rules this crate keeps:
//! - A thread the library starts (server, client, subscriber, NNG's) never calls
//!   Python and never takes the GIL: the subscriber's handler only pushes to a feed.
//! - Every wait and every join runs with the GIL released; waits that may be long
//!   (cursors) come back for the GIL every 50 ms to check for signals.
//! - `close()` takes the core object out under a short lock and drops it without
//!   the GIL, so it is idempotent and safe from any thread, including from inside a
//!   callback (the Python dispatcher is a Python thread, not the core's thread).
//!
//! Callbacks, iterators and `async for` live in `gopherdiscovery/__init__.py`.

use pyo3::prelude::*;

mod auth;
mod client;
mod convert;
mod errors;
mod feed;
mod handle;
mod objects;
mod server;
mod stats;
mod subscriber;

/// The version of the NNG library linked in, e.g. ``"1.11.0"``.
#[pyfunction]
fn nng_version() -> &'static str {
    gopherdiscovery::nng_version()
}

#[pymodule]
fn _gopherdiscovery(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<server::Server>()?;
    m.add_class::<objects::ServerUrls>()?;
    m.add_class::<objects::SubscribedServer>()?;
    m.add_class::<objects::Member>()?;
    m.add_class::<objects::Event>()?;
    m.add_class::<feed::Update>()?;
    m.add_class::<feed::Cursor>()?;
    m.add_class::<subscriber::SubscriberCore>()?;
    m.add_class::<client::ClientCore>()?;
    m.add_class::<stats::ServerStats>()?;
    m.add_class::<stats::Histogram>()?;
    m.add_class::<stats::SubscriberStats>()?;
    m.add_class::<stats::ClientStats>()?;
    m.add_class::<stats::SurveyUrlStats>()?;
    m.add_class::<stats::AuthStats>()?;
    m.add(
        "HISTOGRAM_BOUNDS_SECONDS",
        gopherdiscovery::HISTOGRAM_BOUNDS_SECONDS.to_vec(),
    )?;
    m.add("__version__", gopherdiscovery::VERSION)?;
    m.add("WIRE_VERSION", gopherdiscovery::WIRE_VERSION)?;
    m.add_function(wrap_pyfunction!(nng_version, m)?)?;
    m.add_function(wrap_pyfunction!(auth::generate_key, m)?)?;
    m.add_function(wrap_pyfunction!(auth::key_id, m)?)?;
    m.add("DEFAULT_SURVEY_URL", gopherdiscovery::DEFAULT_SURVEY_URL)?;
    m.add("DEFAULT_PUBLISH_URL", gopherdiscovery::DEFAULT_PUBLISH_URL)?;
    m.add(
        "DEFAULT_SNAPSHOT_URL",
        gopherdiscovery::DEFAULT_SNAPSHOT_URL,
    )?;
    m.add("STEP_SECONDS", feed::STEP.as_secs_f64())?;
    m.add("MAX_EVENTS", feed::MAX_EVENTS)?;
    m.add("MAX_KEYS", gopherdiscovery::auth::MAX_KEYS)?;
    Ok(())
}
