//! Loader errors and preflight findings: a stable code, what happened, and how to fix it.

use std::fmt;

/// Stable codes of everything the loader and its preflight report. The string form never
/// changes; new situations get new codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LoaderCode {
    /// The manifest is missing, unreadable, invalid or of an unknown schema.
    ManifestInvalid,
    /// A library listed in the manifest does not exist.
    LibraryMissing,
    /// A library is not an ELF shared object we can read.
    LibraryInvalid,
    /// A library was built for another architecture.
    ArchitectureMismatch,
    /// A `DT_NEEDED` library of the bundle cannot be found without `LD_LIBRARY_PATH`.
    NeededLibraryMissing,
    /// Undefined symbols that nothing in the bundle, the runtime or the system provides.
    UndefinedSymbols,
    /// The library has no initializer of the name in the manifest.
    InitializerMissing,
    /// A recorded export is not defined by the primary library.
    ExportMissing,
    /// No Lean runtime is listed in the manifest, given in the options, or present.
    RuntimeMissing,
    /// The runtime could not be loaded or initialized.
    RuntimeFailed,
    /// The runtime's version differs from the manifest's toolchain version.
    VersionMismatch,
    /// `dlopen` failed.
    OpenFailed,
    /// A module initializer returned an IO error.
    InitializerFailed,
    /// A requested export is not in the manifest or not in the library.
    UnknownExport,
    /// The Rust signature of a call disagrees with the prototype Lean emitted.
    SignatureMismatch,
    /// A call returned an IO error.
    LeanIoError,
    /// A global (nullary constant) was requested as a function, or a function as a global.
    SymbolKind,
    /// An object global is still `NULL`: the initializer that fills it has not run.
    GlobalUninitialized,
}

impl LoaderCode {
    /// The stable string form, e.g. `LOADER-UNDEFINED-SYMBOLS`.
    pub fn code(self) -> &'static str {
        match self {
            Self::ManifestInvalid => "LOADER-MANIFEST",
            Self::LibraryMissing => "LOADER-LIBRARY-MISSING",
            Self::LibraryInvalid => "LOADER-LIBRARY-INVALID",
            Self::ArchitectureMismatch => "LOADER-ARCH",
            Self::NeededLibraryMissing => "LOADER-NEEDED-MISSING",
            Self::UndefinedSymbols => "LOADER-UNDEFINED-SYMBOLS",
            Self::InitializerMissing => "LOADER-INITIALIZER-MISSING",
            Self::ExportMissing => "LOADER-EXPORT-MISSING",
            Self::RuntimeMissing => "LOADER-RUNTIME-MISSING",
            Self::RuntimeFailed => "LOADER-RUNTIME-FAILED",
            Self::VersionMismatch => "LOADER-VERSION",
            Self::OpenFailed => "LOADER-DLOPEN",
            Self::InitializerFailed => "LOADER-INITIALIZER-FAILED",
            Self::UnknownExport => "LOADER-UNKNOWN-EXPORT",
            Self::SignatureMismatch => "LOADER-SIGNATURE",
            Self::LeanIoError => "LOADER-LEAN-IO-ERROR",
            Self::SymbolKind => "LOADER-SYMBOL-KIND",
            Self::GlobalUninitialized => "LOADER-GLOBAL-UNINITIALIZED",
        }
    }
}

impl fmt::Display for LoaderCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A loader failure or a preflight finding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("[{code}] {message} (hint: {hint})")]
pub struct LoaderError {
    /// What kind of problem.
    pub code: LoaderCode,
    /// What happened, naming files and symbols.
    pub message: String,
    /// How to repair it.
    pub hint: String,
}

impl LoaderError {
    /// Builds an error from its parts.
    pub fn new(code: LoaderCode, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { code, message: message.into(), hint: hint.into() }
    }
}

/// Several findings at once (what [`crate::preflight`] returns when the bundle is not loadable).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct Findings(pub Vec<LoaderError>);

impl Findings {
    /// The findings with `code`.
    pub fn with_code(&self, code: LoaderCode) -> impl Iterator<Item = &LoaderError> {
        self.0.iter().filter(move |f| f.code == code)
    }
}

impl From<Findings> for LoaderError {
    fn from(f: Findings) -> Self {
        let first = f.0.first().cloned().unwrap_or_else(|| LoaderError::new(LoaderCode::ManifestInvalid, "no findings", ""));
        LoaderError::new(first.code, f.to_string(), first.hint)
    }
}
