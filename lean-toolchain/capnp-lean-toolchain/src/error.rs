//! Errors with a stable code and a repair hint, so build scripts and tools can print something a
//! person can act on and tests can match on the code instead of the prose.

use std::fmt;
use std::path::PathBuf;

/// Stable identifiers for every failure this crate reports. The string form (`code()`) never
/// changes once released; add variants instead of renaming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No Lean toolchain or runtime was found by any discovery step.
    ToolchainNotFound,
    /// A path given explicitly (argument or `LEAN_SYSROOT`) is not a toolchain or runtime.
    ToolchainInvalid,
    /// The toolchain's version differs from the one the caller requires.
    ToolchainVersionMismatch,
    /// `lake` could not be started.
    LakeNotRunnable,
    /// `lake build` ran and failed.
    LakeBuildFailed,
    /// `lake build` succeeded but the expected shared library is not where Lake puts it.
    SharedLibraryMissing,
    /// A file could not be read or written.
    Io,
    /// A file is not an ELF shared object this crate understands.
    ElfInvalid,
    /// A manifest could not be parsed or is inconsistent.
    ManifestInvalid,
    /// A manifest declares a schema version this crate does not know.
    ManifestSchemaUnsupported,
}

impl ErrorCode {
    /// The stable string form, e.g. `LT-TOOLCHAIN-NOT-FOUND`.
    pub fn code(self) -> &'static str {
        match self {
            Self::ToolchainNotFound => "LT-TOOLCHAIN-NOT-FOUND",
            Self::ToolchainInvalid => "LT-TOOLCHAIN-INVALID",
            Self::ToolchainVersionMismatch => "LT-TOOLCHAIN-VERSION",
            Self::LakeNotRunnable => "LT-LAKE-NOT-RUNNABLE",
            Self::LakeBuildFailed => "LT-LAKE-BUILD-FAILED",
            Self::SharedLibraryMissing => "LT-SHARED-LIB-MISSING",
            Self::Io => "LT-IO",
            Self::ElfInvalid => "LT-ELF-INVALID",
            Self::ManifestInvalid => "LT-MANIFEST-INVALID",
            Self::ManifestSchemaUnsupported => "LT-MANIFEST-SCHEMA",
        }
    }
}

/// A failure with its stable [`ErrorCode`], a message saying what happened and a hint saying
/// what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolchainError {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// What happened, with the paths and values involved.
    pub message: String,
    /// How to repair it.
    pub hint: String,
}

impl ToolchainError {
    /// Builds an error from its parts.
    pub fn new(code: ErrorCode, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { code, message: message.into(), hint: hint.into() }
    }

    pub(crate) fn io(path: &std::path::Path, what: &str, err: std::io::Error) -> Self {
        Self::new(
            ErrorCode::Io,
            format!("{what} {}: {err}", path.display()),
            "check that the path exists and is readable",
        )
    }
}

impl fmt::Display for ToolchainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {} (hint: {})", self.code.code(), self.message, self.hint)
    }
}

impl std::error::Error for ToolchainError {}

/// Convenience alias for this crate's results.
pub type Result<T, E = ToolchainError> = std::result::Result<T, E>;

pub(crate) fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
