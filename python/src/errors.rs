//! The exception classes: one base class, `gopherdiscovery.Error`, and one subclass
//! per core error code, each also derived from the built-in exception a Python user
//! already catches for that kind of failure.
//!
//! The classes are made with `type(name, bases, namespace)` at import, because a class
//! with two built-in bases (`Error` and `ValueError`, say) cannot be declared with
//! `create_exception!`. They live in the extension module, so stubtest checks them.

use pyo3::exceptions::{PyException, PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use gopherdiscovery::{Error as CoreError, ErrorCode};

/// Every class, made once per interpreter.
struct Classes {
    base: Py<PyType>,
    /// Indexed by `ErrorCode as usize - 1`.
    by_code: Vec<Py<PyType>>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// Name, code, built-in bases (after `Error`) and docstring of each subclass.
fn table(
    py: Python<'_>,
) -> Vec<(
    &'static str,
    ErrorCode,
    Vec<Bound<'_, PyType>>,
    &'static str,
)> {
    let value = py.get_type::<PyValueError>();
    let os = py.get_type::<PyOSError>();
    let timeout = py.get_type::<PyTimeoutError>();
    vec![
        (
            "InvalidUrlError",
            ErrorCode::InvalidUrl,
            vec![os.clone(), value.clone()],
            "A URL that NNG cannot parse or has no transport for. Attribute `url`.",
        ),
        (
            "AddressInUseError",
            ErrorCode::AddressInUse,
            vec![os.clone()],
            "A listen URL whose address another socket holds (errno EADDRINUSE). Attribute `url`.",
        ),
        (
            "InvalidOptionError",
            ErrorCode::InvalidOption,
            vec![value.clone()],
            "A nonsense option value, such as deadline >= interval. Attribute `option`.",
        ),
        (
            "InvalidMemberError",
            ErrorCode::InvalidMember,
            vec![value],
            "A member name or metadata that breaks the limits or is not str to str.",
        ),
        (
            "TimeoutError",
            ErrorCode::Timeout,
            vec![timeout],
            "Nothing came before the deadline.",
        ),
        (
            "ClosedError",
            ErrorCode::Closed,
            vec![],
            "The handle is closed.",
        ),
        (
            "ProtocolError",
            ErrorCode::Protocol,
            vec![],
            "A peer sent bytes that are not a valid message.",
        ),
        (
            "TransportError",
            ErrorCode::Transport,
            vec![os.clone()],
            "Any other failure reported by NNG.",
        ),
        (
            "IoError",
            ErrorCode::Io,
            vec![os],
            "An operating-system failure outside NNG (threads, resource limits).",
        ),
    ]
}

fn make_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: Vec<Bound<'py, PyType>>,
    doc: &str,
    code: Option<i32>,
) -> PyResult<Bound<'py, PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", "gopherdiscovery")?;
    ns.set_item("__doc__", doc)?;
    ns.set_item("code", code)?;
    let bases = PyTuple::new(py, bases)?;
    Ok(py
        .get_type::<PyType>()
        .call1((name, bases, ns))?
        .cast_into::<PyType>()?)
}

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let base = make_class(
            py,
            "Error",
            vec![py.get_type::<PyException>()],
            "Base class of every gopherdiscovery error. `code` is the C ABI's error code \
             (None on this base class).",
            None,
        )?;
        let mut by_code = Vec::new();
        for (i, (name, code, builtins, doc)) in table(py).into_iter().enumerate() {
            debug_assert_eq!(code as usize, i + 1, "table order follows ErrorCode");
            let mut bases = vec![base.clone()];
            bases.extend(builtins);
            by_code.push(make_class(py, name, bases, doc, Some(code as i32))?.unbind());
        }
        Ok(Classes {
            base: base.unbind(),
            by_code,
        })
    })
}

/// Adds `Error` and every subclass to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let c = classes(py)?;
    m.add("Error", c.base.bind(py))?;
    for ty in &c.by_code {
        let ty = ty.bind(py);
        m.add(ty.name()?, ty)?;
    }
    Ok(())
}

fn class(py: Python<'_>, code: ErrorCode) -> PyResult<Bound<'_, PyType>> {
    Ok(classes(py)?.by_code[code as usize - 1].bind(py).clone())
}

/// Builds the exception for `code` with `message`; `attrs` are set on the instance.
pub fn new_error(
    py: Python<'_>,
    code: ErrorCode,
    message: String,
    attrs: &[(&str, &str)],
) -> PyErr {
    let made = (|| {
        let ty = class(py, code)?;
        // The OSError family takes (errno, strerror) and then prints "[Errno N] …";
        // the number comes from Python's errno module, right for every platform.
        let errno = match code {
            ErrorCode::AddressInUse => Some("EADDRINUSE"),
            ErrorCode::Timeout => Some("ETIMEDOUT"),
            _ => None,
        };
        let inst = match errno {
            Some(name) => ty.call1((py.import("errno")?.getattr(name)?, message))?,
            None => ty.call1((message,))?,
        };
        for (k, v) in attrs {
            inst.setattr(*k, *v)?;
        }
        Ok::<_, PyErr>(PyErr::from_value(inst))
    })();
    made.unwrap_or_else(|e| e)
}

/// Converts a core error into its Python exception.
pub fn to_py(py: Python<'_>, e: CoreError) -> PyErr {
    let code = e.code();
    let message = e.to_string();
    match &e {
        CoreError::InvalidUrl { url, .. } | CoreError::AddressInUse { url } => {
            new_error(py, code, message, &[("url", url.as_str())])
        }
        CoreError::InvalidOption { option, .. } => {
            new_error(py, code, message, &[("option", option)])
        }
        _ => new_error(py, code, message, &[]),
    }
}

/// `InvalidOptionError` naming `option`, worded like the core's.
pub fn invalid_option(
    py: Python<'_>,
    option: &'static str,
    reason: impl std::fmt::Display,
) -> PyErr {
    to_py(
        py,
        CoreError::InvalidOption {
            option,
            reason: reason.to_string(),
        },
    )
}

/// `InvalidMemberError` with `why`.
pub fn invalid_member(py: Python<'_>, why: impl Into<String>) -> PyErr {
    to_py(py, CoreError::InvalidMember(why.into()))
}

/// `ClosedError` saying what is closed.
pub fn closed(py: Python<'_>, what: &str) -> PyErr {
    new_error(py, ErrorCode::Closed, format!("{what} is closed"), &[])
}
