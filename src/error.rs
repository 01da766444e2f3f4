//! The one error type of the crate.
//!
//! Every variant maps one to one onto a C result code ([`ErrorCode`]) and a Python
//! exception class, so a caller in any language can tell the same failures apart.

use std::fmt;

/// What went wrong, with enough detail to say it in one line.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A URL NNG cannot parse or has no transport for.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A listen URL whose address another socket already holds.
    AddressInUse {
        /// The URL as given.
        url: String,
    },
    /// A nonsense option value (deadline ≥ interval, zero limits, …).
    InvalidOption {
        /// The option's name as the API spells it.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A member name or metadata that breaks the limits (empty, too long, too large).
    InvalidMember(String),
    /// Nothing came back before the deadline.
    Timeout,
    /// The handle is closed.
    Closed,
    /// A peer sent bytes that are not a valid message of the expected kind.
    Protocol(String),
    /// Any other failure reported by NNG.
    Transport {
        /// What we were doing.
        context: String,
        /// NNG's error.
        source: crate::NngError,
    },
    /// An operating-system failure outside NNG (threads, resource limits).
    Io(std::io::Error),
}

/// Stable numeric codes; the C ABI returns exactly these (0 is success).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Success (never carried by an [`Error`]).
    Ok = 0,
    /// See [`Error::InvalidUrl`].
    InvalidUrl = 1,
    /// See [`Error::AddressInUse`].
    AddressInUse = 2,
    /// See [`Error::InvalidOption`].
    InvalidOption = 3,
    /// See [`Error::InvalidMember`].
    InvalidMember = 4,
    /// See [`Error::Timeout`].
    Timeout = 5,
    /// See [`Error::Closed`].
    Closed = 6,
    /// See [`Error::Protocol`].
    Protocol = 7,
    /// See [`Error::Transport`].
    Transport = 8,
    /// See [`Error::Io`].
    Io = 9,
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidUrl { .. } => ErrorCode::InvalidUrl,
            Error::AddressInUse { .. } => ErrorCode::AddressInUse,
            Error::InvalidOption { .. } => ErrorCode::InvalidOption,
            Error::InvalidMember(_) => ErrorCode::InvalidMember,
            Error::Timeout => ErrorCode::Timeout,
            Error::Closed => ErrorCode::Closed,
            Error::Protocol(_) => ErrorCode::Protocol,
            Error::Transport { .. } => ErrorCode::Transport,
            Error::Io(_) => ErrorCode::Io,
        }
    }

    pub(crate) fn option(option: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidOption {
            option,
            reason: reason.into(),
        }
    }

    /// Maps an NNG error from listening on or dialling `url`.
    pub(crate) fn from_nng_url(url: &str, e: crate::NngError) -> Error {
        if e.is_addr_in_use() {
            Error::AddressInUse {
                url: url.to_owned(),
            }
        } else if e.is_bad_url() {
            Error::InvalidUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            }
        } else {
            Error::nng(&format!("address {url}"), e)
        }
    }

    pub(crate) fn nng(context: &str, e: crate::NngError) -> Error {
        if e.is_timeout() {
            Error::Timeout
        } else if e.is_closed() {
            Error::Closed
        } else {
            Error::Transport {
                context: context.to_owned(),
                source: e,
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            Error::AddressInUse { url } => write!(f, "address in use: {url}"),
            Error::InvalidOption { option, reason } => {
                write!(f, "invalid option {option}: {reason}")
            }
            Error::InvalidMember(why) => write!(f, "invalid member: {why}"),
            Error::Timeout => write!(f, "timed out"),
            Error::Closed => write!(f, "closed"),
            Error::Protocol(why) => write!(f, "protocol error: {why}"),
            Error::Transport { context, source } => write!(f, "{context}: {source}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Transport { source, .. } => Some(source),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
