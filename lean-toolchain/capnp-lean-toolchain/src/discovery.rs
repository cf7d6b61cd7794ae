//! The one toolchain discovery of the project. Build scripts, the loader's tests and the tools
//! all call [`Discovery::find`]; nothing else decides where Lean lives.
//!
//! Order (first hit wins):
//! 1. an explicit path given by the caller;
//! 2. `LEAN_SYSROOT`;
//! 3. a provisioned runtime folder (e.g. `<repo>/.lean-runtime`, written by
//!    `scripts/fetch-lean-runtime.sh`) — runtime only, skipped when a full toolchain is required;
//! 4. the package's `lean-toolchain` file, resolved through elan's directory naming
//!    (`$ELAN_HOME/toolchains/leanprover--lean4---v4.35.0`);
//! 5. `lean --print-prefix` with `lean` from `PATH`.
//!
//! An explicit path or `LEAN_SYSROOT` that does not hold Lean is an error, not a reason to keep
//! looking: the user asked for that location.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::Env;
use crate::error::{display_paths, ErrorCode, Result, ToolchainError};

/// What was found: a full toolchain (`lean`, `lake`, headers, runtime) or only the runtime
/// library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallKind {
    /// A toolchain prefix with `bin/lean`, `bin/lake` and `lib/lean/libleanshared.so`.
    Toolchain,
    /// A folder holding only `libleanshared.so` (enough to load and run compiled Lean code).
    RuntimeOnly,
}

/// Which discovery step produced the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoverySource {
    /// The caller's explicit path.
    Explicit,
    /// The `LEAN_SYSROOT` variable.
    LeanSysroot,
    /// The provisioned runtime folder.
    ProvisionedRuntime,
    /// The package's `lean-toolchain` file and elan's toolchain folder.
    ElanToolchainFile,
    /// `lean --print-prefix`.
    LeanOnPath,
}

/// A located Lean installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeanInstall {
    /// Toolchain or runtime only.
    pub kind: InstallKind,
    /// The toolchain prefix, or the folder holding the runtime library.
    pub root: PathBuf,
    /// Path of `libleanshared.so`.
    pub runtime_library: PathBuf,
    /// `major.minor.patch` when it could be read without running anything.
    pub version: Option<String>,
    /// How it was found.
    pub found_via: DiscoverySource,
}

impl LeanInstall {
    /// `bin/lake` of a toolchain; `None` for a runtime-only install.
    pub fn lake(&self) -> Option<PathBuf> {
        (self.kind == InstallKind::Toolchain).then(|| self.root.join("bin").join("lake"))
    }

    /// The folder holding the runtime library (for link search paths and rpaths).
    pub fn runtime_dir(&self) -> &Path {
        self.runtime_library.parent().unwrap_or(&self.root)
    }
}

/// Inputs of a discovery. Build with [`Discovery::new`] and the `with_*` methods.
#[derive(Clone, Debug)]
pub struct Discovery {
    explicit: Option<PathBuf>,
    package_dir: Option<PathBuf>,
    provisioned_runtime: Option<PathBuf>,
    require_toolchain: bool,
    env: Env,
}

impl Default for Discovery {
    fn default() -> Self {
        Self::new()
    }
}

impl Discovery {
    /// A discovery over the process environment with no explicit path.
    pub fn new() -> Self {
        Self { explicit: None, package_dir: None, provisioned_runtime: None, require_toolchain: false, env: Env::process() }
    }

    /// Use this path first (a toolchain prefix, a runtime folder, or `libleanshared.so` itself).
    pub fn with_explicit(mut self, path: impl Into<PathBuf>) -> Self {
        self.explicit = Some(path.into());
        self
    }

    /// The Lake package whose `lean-toolchain` file names the toolchain.
    pub fn with_package_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.package_dir = Some(dir.into());
        self
    }

    /// A folder provisioned with a runtime only (see `scripts/fetch-lean-runtime.sh`).
    pub fn with_provisioned_runtime(mut self, dir: impl Into<PathBuf>) -> Self {
        self.provisioned_runtime = Some(dir.into());
        self
    }

    /// Only accept full toolchains (needed to run `lake`).
    pub fn require_toolchain(mut self, yes: bool) -> Self {
        self.require_toolchain = yes;
        self
    }

    /// Use this environment instead of the process's.
    pub fn with_env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// The environment discovery reads (and that Lake runs should inherit).
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Runs the discovery steps in order; see the module documentation.
    pub fn find(&self) -> Result<LeanInstall> {
        let mut tried = Vec::new();
        if let Some(path) = &self.explicit {
            return self.accept(inspect(path, DiscoverySource::Explicit), path, "the explicit path");
        }
        if let Some(sysroot) = self.env.get("LEAN_SYSROOT") {
            let path = PathBuf::from(sysroot);
            return self.accept(inspect(&path, DiscoverySource::LeanSysroot), &path, "LEAN_SYSROOT");
        }
        if let (Some(dir), false) = (&self.provisioned_runtime, self.require_toolchain) {
            tried.push(dir.clone());
            if let Some(found) = inspect(dir, DiscoverySource::ProvisionedRuntime) {
                return Ok(found);
            }
        }
        if let Some(prefix) = self.elan_toolchain_dir() {
            tried.push(prefix.clone());
            if let Some(found) = inspect(&prefix, DiscoverySource::ElanToolchainFile) {
                return self.accept(Some(found), &prefix, "the package's lean-toolchain file");
            }
        }
        if let Some(prefix) = self.lean_print_prefix() {
            tried.push(prefix.clone());
            if let Some(found) = inspect(&prefix, DiscoverySource::LeanOnPath) {
                return self.accept(Some(found), &prefix, "`lean --print-prefix`");
            }
        }
        let what = if self.require_toolchain { "Lean toolchain (lean + lake)" } else { "Lean runtime" };
        Err(ToolchainError::new(
            ErrorCode::ToolchainNotFound,
            format!("no {what} found (looked at: {})", if tried.is_empty() { "nothing".into() } else { display_paths(&tried) }),
            if self.require_toolchain {
                "install Lean with elan, or set LEAN_SYSROOT to a toolchain prefix"
            } else {
                "run `bash scripts/fetch-lean-runtime.sh`, or set LEAN_SYSROOT to a Lean 4.35 toolchain prefix"
            },
        ))
    }

    fn accept(&self, found: Option<LeanInstall>, path: &Path, via: &str) -> Result<LeanInstall> {
        match found {
            Some(install) if self.require_toolchain && install.kind != InstallKind::Toolchain => Err(ToolchainError::new(
                ErrorCode::ToolchainInvalid,
                format!("{via} points at {}, which holds a Lean runtime but no toolchain", path.display()),
                "point it at a full toolchain prefix (with bin/lake), e.g. one installed by elan",
            )),
            Some(install) => Ok(install),
            None => Err(ToolchainError::new(
                ErrorCode::ToolchainInvalid,
                format!("{via} points at {}, which holds no libleanshared.so", path.display()),
                "set LEAN_SYSROOT to the output of `lean --print-prefix`, or unset it",
            )),
        }
    }

    fn elan_toolchain_dir(&self) -> Option<PathBuf> {
        let file = self.package_dir.as_ref()?.join("lean-toolchain");
        let spec = std::fs::read_to_string(file).ok()?;
        let elan_home = self.env.get("ELAN_HOME").map(PathBuf::from).or_else(|| Some(self.env.home()?.join(".elan")))?;
        Some(elan_home.join("toolchains").join(elan_dir_name(spec.trim())))
    }

    fn lean_print_prefix(&self) -> Option<PathBuf> {
        let lean = self.env.which("lean")?;
        let out = Command::new(lean).arg("--print-prefix").env_clear().envs(self.env.vars()).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !text.trim().is_empty()).then(|| PathBuf::from(text.trim()))
    }
}

/// elan's folder name for a toolchain spec: `leanprover/lean4:v4.35.0` becomes
/// `leanprover--lean4---v4.35.0`; a bare version gets elan's default origin.
pub fn elan_dir_name(spec: &str) -> String {
    let full = if spec.contains(':') { spec.to_string() } else { format!("leanprover/lean4:{spec}") };
    full.replace('/', "--").replace(':', "---")
}

/// Classifies `path` as a toolchain prefix, a runtime folder, or the runtime library itself.
fn inspect(path: &Path, via: DiscoverySource) -> Option<LeanInstall> {
    if path.is_file() && path.file_name().is_some_and(|n| n == "libleanshared.so") {
        let dir = path.parent()?.to_path_buf();
        return Some(LeanInstall {
            kind: InstallKind::RuntimeOnly,
            version: read_version_file(&dir),
            root: dir,
            runtime_library: path.to_path_buf(),
            found_via: via,
        });
    }
    for lib in [path.join("lib/lean/libleanshared.so"), path.join("lib/libleanshared.so")] {
        if lib.is_file() && path.join("bin").is_dir() {
            return Some(LeanInstall {
                kind: InstallKind::Toolchain,
                root: path.to_path_buf(),
                runtime_library: lib,
                version: read_version_header(path),
                found_via: via,
            });
        }
    }
    let lib = path.join("libleanshared.so");
    lib.is_file().then(|| LeanInstall {
        kind: InstallKind::RuntimeOnly,
        root: path.to_path_buf(),
        runtime_library: lib,
        version: read_version_file(path),
        found_via: via,
    })
}

/// `VERSION` written by the provisioning script after it checked the runtime.
fn read_version_file(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("VERSION")).ok()?;
    Some(text.trim().to_string()).filter(|v| !v.is_empty())
}

/// `include/lean/version.h` of a toolchain defines `LEAN_VERSION_{MAJOR,MINOR,PATCH}`.
fn read_version_header(prefix: &Path) -> Option<String> {
    let text = std::fs::read_to_string(prefix.join("include/lean/version.h")).ok()?;
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.trim().strip_prefix("#define")?.trim().strip_prefix(name)?;
            rest.trim().parse::<u32>().ok()
        })
    };
    Some(format!("{}.{}.{}", field("LEAN_VERSION_MAJOR ")?, field("LEAN_VERSION_MINOR ")?, field("LEAN_VERSION_PATCH ")?))
}
