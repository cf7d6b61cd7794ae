//! Build-script helpers for Lean capabilities: find the toolchain (one discovery for the whole
//! project), run `lake build <lib>:shared` with typed diagnostics, know Lake's and Lean's naming,
//! print Cargo directives, and write the JSON manifest the `capnp_lean_loader` opens.
//!
//! The normal path in a `build.rs`:
//!
//! ```no_run
//! use capnp_lean_toolchain::{build_capability, CapabilitySpec, Discovery};
//! let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
//! let spec = CapabilitySpec::new("lean/demo", "demo", "Demo", "Demo");
//! let built = build_capability(&spec, &Discovery::new(), &out_dir).unwrap();
//! built.directives.emit(); // link search, rpath, rerun-if-changed, rerun-if-env-changed
//! // the manifest is at built.manifest_path; pass it to the loader at run time
//! ```
//!
//! No unsafe code: this crate never loads what it builds.

pub mod build_cache;
pub mod cargo;
pub mod discovery;
pub mod elf;
pub mod env;
pub mod error;
pub mod ir;
pub mod lake;
pub mod manifest;
pub mod names;
pub mod test_support;

use std::path::{Path, PathBuf};

pub use cargo::CargoDirectives;
pub use discovery::{Discovery, DiscoverySource, InstallKind, LeanInstall};
pub use env::Env;
pub use error::{ErrorCode, Result, ToolchainError};
pub use lake::{Diagnostic, LakeBuild, LakeOutput, Severity};
pub use manifest::{CapabilityManifest, ExportEntry, LibraryEntry, ManifestBuilder, ManifestFile, RuntimeInit};

/// The Lean version this project's runtime port and loader are written against.
pub const SUPPORTED_LEAN_VERSION: &str = "4.35.0";

/// What to build: a `lean_lib` of a Lake package and the exports the host will call.
#[derive(Clone, Debug)]
pub struct CapabilitySpec {
    /// The Lake package folder (holding the lakefile).
    pub package_dir: PathBuf,
    /// Package name as in the lakefile.
    pub package: String,
    /// The `lean_lib` target to build as a shared library.
    pub lib: String,
    /// Root module of that library (its initializer is run by the loader).
    pub root_module: String,
    /// Exports to record; `None` records every non-internal symbol.
    pub exports: Option<Vec<String>>,
    /// Runtime initialization flavour.
    pub runtime_init: RuntimeInit,
}

impl CapabilitySpec {
    /// A spec with every export recorded and the light runtime initialization.
    pub fn new(package_dir: impl Into<PathBuf>, package: &str, lib: &str, root_module: &str) -> Self {
        Self {
            package_dir: package_dir.into(),
            package: package.into(),
            lib: lib.into(),
            root_module: root_module.into(),
            exports: None,
            runtime_init: RuntimeInit::RuntimeModule,
        }
    }
}

/// The result of [`build_capability`].
#[derive(Clone, Debug)]
pub struct BuiltCapability {
    /// Where the manifest was written.
    pub manifest_path: PathBuf,
    /// Its content.
    pub manifest: CapabilityManifest,
    /// The toolchain used.
    pub install: LeanInstall,
    /// Lake's output (warnings included).
    pub lake_output: LakeOutput,
    /// Directives for the calling build script.
    pub directives: CargoDirectives,
    /// `true` when Lake was not run because the inputs and the built libraries were unchanged
    /// since the build that wrote the manifest (see [`build_cache`]); `lake_output` is then empty.
    pub reused: bool,
}

/// Discovers a toolchain, builds the library with Lake, and writes `<package>.capability.json`
/// into `out_dir`, listing the runtime first (global), then the package's needed libraries,
/// then the primary. When the inputs (sources, Lake files, toolchain, spec) and the built
/// libraries are unchanged since the last build into `out_dir`, Lake is not run and the manifest
/// is reused ([`build_cache`]).
pub fn build_capability(spec: &CapabilitySpec, discovery: &Discovery, out_dir: &Path) -> Result<BuiltCapability> {
    let install = discovery.clone().with_package_dir(&spec.package_dir).require_toolchain(true).find()?;
    let lake = install.lake().expect("a toolchain has lake");
    let manifest_path = out_dir.join(format!("{}.capability.json", spec.package));
    let directives = CargoDirectives::new()
        .link_and_rpath(install.runtime_dir())
        .rerun_on_package(&spec.package_dir)
        .rerun_on_env()
        .rustc_env(&format!("{}_CAPABILITY_MANIFEST", spec.package.to_uppercase()), &manifest_path.display().to_string());
    // Hashed before Lake runs: an edit made during the build then forces the next one.
    let inputs = build_cache::input_fingerprint(spec, &install)?;
    if let Some(previous) = build_cache::reusable(out_dir, &spec.package, &manifest_path, &inputs) {
        let lake_output = LakeOutput { success: true, diagnostics: Vec::new(), stdout: String::new(), stderr: String::new() };
        return Ok(BuiltCapability { manifest_path, manifest: previous.manifest, install, lake_output, directives, reused: true });
    }
    let build = LakeBuild::new(lake, &spec.package_dir, &spec.lib).with_env(discovery.env().clone());
    let lake_output = build.build()?;
    let primary = build.shared_library(&spec.package, &spec.lib)?;
    let version = install.version.clone().unwrap_or_else(|| "unknown".into());
    let lib_dirs = vec![spec.package_dir.join(".lake/build/lib")];
    let mut builder = ManifestBuilder::new(&spec.package, &spec.root_module, &version, &primary)
        .runtime_init(spec.runtime_init)
        .dependency(&install.runtime_library, true, None)
        .ir_dir(spec.package_dir.join(".lake/build/ir"))
        .dependencies_from_needed(&lib_dirs)?;
    if let Some(exports) = &spec.exports {
        builder = builder.exports(exports.clone());
    }
    let manifest = builder.build(out_dir)?;
    manifest.write(&manifest_path)?;
    build_cache::remember(out_dir, &spec.package, &ManifestFile { manifest: manifest.clone(), path: manifest_path.clone() }, &inputs)?;
    Ok(BuiltCapability { manifest_path, manifest, install, lake_output, directives, reused: false })
}
