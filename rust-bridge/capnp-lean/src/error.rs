//! The one error type of the bridge: an RPC error kind (as KJ and rpc.capnp define them) or a
//! local misuse, always with a message.

use capnp_lean_sys as sys;

/// The four kinds of RPC error, shared by KJ, rpc.capnp and the `capnp` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Something went wrong; retrying will not help.
    Failed,
    /// The peer is temporarily out of resources; retrying later may work.
    Overloaded,
    /// The connection broke (or was never made); reconnecting may work.
    Disconnected,
    /// The peer does not implement the method or interface.
    Unimplemented,
}

impl ErrorKind {
    pub(crate) fn from_raw(raw: sys::capnp_lean_error_kind) -> Self {
        match raw {
            sys::CAPNP_LEAN_ERROR_OVERLOADED => Self::Overloaded,
            sys::CAPNP_LEAN_ERROR_DISCONNECTED => Self::Disconnected,
            sys::CAPNP_LEAN_ERROR_UNIMPLEMENTED => Self::Unimplemented,
            _ => Self::Failed,
        }
    }

    pub(crate) fn to_raw(self) -> sys::capnp_lean_error_kind {
        match self {
            Self::Failed => sys::CAPNP_LEAN_ERROR_FAILED,
            Self::Overloaded => sys::CAPNP_LEAN_ERROR_OVERLOADED,
            Self::Disconnected => sys::CAPNP_LEAN_ERROR_DISCONNECTED,
            Self::Unimplemented => sys::CAPNP_LEAN_ERROR_UNIMPLEMENTED,
        }
    }
}

/// Every failure of the bridge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An RPC error: from the peer, the connection or the local RPC system.
    #[error("{kind:?}: {message}")]
    Rpc {
        /// What kind of failure.
        kind: ErrorKind,
        /// The message as the failing side wrote it.
        message: String,
    },
    /// An argument was rejected before anything was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A blocking operation was attempted on the runtime's loop thread, where it would deadlock.
    #[error("{0}")]
    OnLoopThread(String),
    /// The runtime was shut down; the handle no longer does anything.
    #[error("the capnp-lean runtime was shut down")]
    ShutDown,
}

impl Error {
    /// An RPC error of this kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Rpc { kind, message: message.into() }
    }

    /// A `Failed` error.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// The RPC kind of this error (local misuse counts as `Failed`, shutdown as `Disconnected`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Rpc { kind, .. } => *kind,
            Self::ShutDown => ErrorKind::Disconnected,
            Self::InvalidArgument(_) | Self::OnLoopThread(_) => ErrorKind::Failed,
        }
    }

    /// The message without the kind.
    pub fn message(&self) -> String {
        match self {
            Self::Rpc { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub(crate) fn from_status(status: sys::capnp_lean_status, kind: sys::capnp_lean_error_kind, message: String) -> Self {
        match status {
            sys::CAPNP_LEAN_ERR_INVALID_ARGUMENT => Self::InvalidArgument(message),
            sys::CAPNP_LEAN_ERR_ON_LOOP_THREAD => Self::OnLoopThread(message),
            sys::CAPNP_LEAN_ERR_SHUT_DOWN => Self::ShutDown,
            _ => Self::new(ErrorKind::from_raw(kind), message),
        }
    }
}

impl From<capnp::Error> for Error {
    fn from(error: capnp::Error) -> Self {
        let kind = match error.kind {
            capnp::ErrorKind::Failed => ErrorKind::Failed,
            capnp::ErrorKind::Overloaded => ErrorKind::Overloaded,
            capnp::ErrorKind::Disconnected => ErrorKind::Disconnected,
            capnp::ErrorKind::Unimplemented => ErrorKind::Unimplemented,
            // Encoding errors keep their description, which names what was wrong.
            _ => return Self::failed(error.to_string()),
        };
        Self::new(kind, error.extra)
    }
}

impl From<Error> for capnp::Error {
    fn from(error: Error) -> Self {
        let message = error.message();
        match error.kind() {
            ErrorKind::Failed => capnp::Error::failed(message),
            ErrorKind::Overloaded => capnp::Error::overloaded(message),
            ErrorKind::Disconnected => capnp::Error::disconnected(message),
            ErrorKind::Unimplemented => capnp::Error::unimplemented(message),
        }
    }
}
