//! The generator's error type: every failure names where in the schema it happened.

use std::fmt;

/// Why generation failed.
#[derive(Debug)]
pub enum Error {
    /// The schema uses something the generator cannot express; `location` is
    /// `file.capnp:Path.To.Node` (plus the field or method name when relevant).
    Unsupported {
        /// Schema location (file and node, and field/method when relevant).
        location: String,
        /// What is unsupported and what to do instead.
        message: String,
    },
    /// The `CodeGeneratorRequest` is inconsistent (dangling id, layout outside its section…).
    Malformed {
        /// Schema location.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Reading the request failed.
    Capnp(capnp::Error),
    /// Running the compiler or writing output failed.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported { location, message } => {
                write!(f, "capnpc-lean: unsupported at {location}: {message}")
            }
            Error::Malformed { location, message } => {
                write!(f, "capnpc-lean: malformed schema at {location}: {message}")
            }
            Error::Capnp(error) => write!(f, "capnpc-lean: reading the request: {error}"),
            Error::Io(error) => write!(f, "capnpc-lean: {error}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<capnp::Error> for Error {
    fn from(error: capnp::Error) -> Self {
        Error::Capnp(error)
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Io(error)
    }
}

impl From<std::str::Utf8Error> for Error {
    fn from(error: std::str::Utf8Error) -> Self {
        Error::Capnp(error.into())
    }
}

/// Shorthand for results in this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn unsupported(location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Unsupported { location: location.into(), message: message.into() }
}

pub(crate) fn malformed(location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Malformed { location: location.into(), message: message.into() }
}

impl From<capnp::NotInSchema> for Error {
    fn from(error: capnp::NotInSchema) -> Self {
        Error::Capnp(error.into())
    }
}
