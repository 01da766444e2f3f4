//! Python values to core values, with errors that name the argument at fault.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use gopherdiscovery::Metadata;

use crate::errors::{invalid_member, invalid_option};

/// Seconds as a float to a `Duration`; NaN, infinities and negatives are refused
/// here (zero goes on to the core, whose message says "must be greater than zero").
pub fn seconds(py: Python<'_>, option: &'static str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid_option(
            py,
            option,
            format!("must be a finite, non-negative number of seconds, got {value}"),
        )
    })
}

/// A whole number that must fit a `u32` (counts such as `evict_after`).
pub fn count(py: Python<'_>, option: &'static str, value: i64) -> PyResult<u32> {
    u32::try_from(value).map_err(|_| {
        invalid_option(
            py,
            option,
            format!("must be between 0 and {}, got {value}", u32::MAX),
        )
    })
}

/// The name of `v`'s type, for error messages.
pub fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A mapping of str to str (or None) to metadata; anything else is an
/// `InvalidMemberError` naming the key or the type at fault.
pub fn metadata(md: Option<&Bound<'_, PyAny>>) -> PyResult<Metadata> {
    let mut out = Metadata::new();
    let Some(md) = md.filter(|m| !m.is_none()) else {
        return Ok(out);
    };
    let py = md.py();
    let items = match md.cast::<PyDict>() {
        Ok(d) => d.items().into_any(),
        Err(_) if md.hasattr("keys")? && md.hasattr("items")? => md.call_method0("items")?,
        Err(_) => {
            return Err(invalid_member(
                py,
                format!(
                    "metadata must be a mapping of str to str, got {}",
                    type_name(md)
                ),
            ))
        }
    };
    for item in items.try_iter()? {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        let Ok(key) = k.cast::<PyString>() else {
            return Err(invalid_member(
                py,
                format!(
                    "metadata key {} must be str, not {}",
                    k.repr()?,
                    type_name(&k)
                ),
            ));
        };
        let Ok(value) = v.cast::<PyString>() else {
            return Err(invalid_member(
                py,
                format!(
                    "metadata value for key {} must be str, not {}",
                    key.repr()?,
                    type_name(&v)
                ),
            ));
        };
        out.insert(key.to_cow()?.into_owned(), value.to_cow()?.into_owned());
    }
    Ok(out)
}

/// One URL or an iterable of URLs.
pub fn urls(option: &'static str, value: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let py = value.py();
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(vec![s.to_cow()?.into_owned()]);
    }
    let not_urls = || invalid_option(py, option, "expected a URL or a list of URLs");
    let mut out = Vec::new();
    for item in value.try_iter().map_err(|_| not_urls())? {
        let item = item?;
        let s = item.cast::<PyString>().map_err(|_| not_urls())?;
        out.push(s.to_cow()?.into_owned());
    }
    if out.is_empty() {
        return Err(invalid_option(py, option, "needs at least one URL"));
    }
    Ok(out)
}
