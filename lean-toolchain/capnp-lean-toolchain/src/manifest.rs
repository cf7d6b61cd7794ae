//! The capability manifest: everything the loader needs to open a Lean shared library without
//! guessing — libraries in load order and whether each must be global, initializers, the
//! toolchain version, and the exported symbols checked against the built library.
//!
//! Paths are stored relative to the manifest's folder whenever the library lives below it, so a
//! bundle (manifest + libraries) can be moved as a whole. The schema version is explicit and an
//! unknown version is rejected rather than half-read.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::elf;
use crate::error::{ErrorCode, Result, ToolchainError};

/// The schema version this crate writes and the only one it reads.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// How the runtime must be initialized before the capability's own initializers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeInit {
    /// `lean_initialize_runtime_module` (what a compiled program that does not import `Lean`
    /// calls).
    #[default]
    RuntimeModule,
    /// `lean_initialize` (needed when the package imports the `Lean` compiler modules).
    Full,
}

/// One shared library of the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryEntry {
    /// Relative to the manifest folder, or absolute.
    pub path: PathBuf,
    /// Open with `RTLD_GLOBAL` because libraries opened later need its symbols.
    pub global: bool,
    /// Module initializer to run after opening (`initialize_<pkg>_<Module>`), if this library
    /// holds Lean modules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initializer: Option<String>,
}

/// An exported function of the primary library.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportEntry {
    /// The C symbol (the `@[export name]` of the Lean definition).
    pub symbol: String,
    /// The C prototype Lean emitted for it, when the build's IR was available, e.g.
    /// `uint32_t demo_add(uint32_t, uint32_t)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_signature: Option<String>,
}

/// The manifest as stored in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityManifest {
    /// Must equal [`MANIFEST_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Lake package name.
    pub package: String,
    /// Root module of the library (`Demo`).
    pub root_module: String,
    /// `major.minor.patch` of the toolchain that built it.
    pub toolchain_version: String,
    /// Runtime initialization flavour.
    #[serde(default)]
    pub runtime_init: RuntimeInit,
    /// Libraries opened before the primary, in this order.
    #[serde(default)]
    pub dependencies: Vec<LibraryEntry>,
    /// The library whose exports are called; opened last.
    pub primary: LibraryEntry,
    /// Exports of the primary library, checked against its symbol table when written.
    #[serde(default)]
    pub exports: Vec<ExportEntry>,
}

/// A manifest together with the folder its relative paths are resolved against.
#[derive(Clone, Debug)]
pub struct ManifestFile {
    /// The parsed manifest.
    pub manifest: CapabilityManifest,
    /// Where it was read from.
    pub path: PathBuf,
}

impl ManifestFile {
    /// Reads and validates a manifest.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ToolchainError::io(path, "cannot read manifest", e))?;
        let manifest = CapabilityManifest::parse(&text).map_err(|mut e| {
            e.message = format!("{}: {}", path.display(), e.message);
            e
        })?;
        Ok(Self { manifest, path: path.to_path_buf() })
    }

    /// The folder relative library paths start from.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Absolute (or base-relative) path of a library entry.
    pub fn library_path(&self, entry: &LibraryEntry) -> PathBuf {
        self.base_dir().join(&entry.path)
    }

    /// Dependencies in load order, then the primary.
    pub fn libraries_in_load_order(&self) -> impl Iterator<Item = &LibraryEntry> {
        self.manifest.dependencies.iter().chain(std::iter::once(&self.manifest.primary))
    }
}

impl ManifestFile {
    /// Copies the bundle into `dest` — every library under `dest/lib/`, plus the libraries they
    /// need that sit next to them (found through `$ORIGIN` rpaths) — and writes a manifest with
    /// relative paths there, so the folder can be moved or shipped as a whole. The runtime is
    /// copied only when `include_runtime` is set (it is large; otherwise its path is kept).
    pub fn copy_bundle(&self, dest: &Path, include_runtime: bool) -> Result<ManifestFile> {
        let lib_dir = dest.join("lib");
        std::fs::create_dir_all(&lib_dir).map_err(|e| ToolchainError::io(&lib_dir, "cannot create", e))?;
        let mut manifest = self.manifest.clone();
        let entries = manifest.dependencies.iter_mut().chain(std::iter::once(&mut manifest.primary));
        for entry in entries {
            let source = self.base_dir().join(&entry.path);
            let is_runtime = source.file_name().is_some_and(|n| n == "libleanshared.so");
            if is_runtime && !include_runtime {
                entry.path = std::path::absolute(&source).map_err(|e| ToolchainError::io(&source, "cannot resolve", e))?;
                continue;
            }
            let name = source.file_name().expect("library paths name a file").to_owned();
            copy_file(&source, &lib_dir.join(&name))?;
            for needed in elf::read_dynamic_info(&source)?.needed {
                let sibling = source.with_file_name(&needed);
                if sibling.is_file() && !lib_dir.join(&needed).exists() {
                    copy_file(&sibling, &lib_dir.join(&needed))?;
                }
            }
            entry.path = PathBuf::from("lib").join(name);
        }
        let path = dest.join(self.path.file_name().unwrap_or("capability.json".as_ref()));
        manifest.write(&path)?;
        Ok(ManifestFile { manifest, path })
    }
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).map(drop).map_err(|e| ToolchainError::io(from, "cannot copy", e))
}

impl CapabilityManifest {
    /// Parses JSON, rejecting unknown schema versions before looking at anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        match value.get("schema_version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == MANIFEST_SCHEMA_VERSION as u64 => {}
            Some(v) => {
                return Err(ToolchainError::new(
                    ErrorCode::ManifestSchemaUnsupported,
                    format!("manifest schema version {v} is not supported (this build reads {MANIFEST_SCHEMA_VERSION})"),
                    "regenerate the manifest with the lean-toolchain version that matches this loader",
                ))
            }
            None => return Err(invalid("missing numeric `schema_version`".into())),
        }
        let manifest: Self = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<()> {
        if self.package.is_empty() || self.root_module.is_empty() {
            return Err(invalid("`package` and `root_module` must be non-empty".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for lib in self.dependencies.iter().chain(std::iter::once(&self.primary)) {
            if !seen.insert(&lib.path) {
                return Err(invalid(format!("library {} is listed twice", lib.path.display())));
            }
        }
        Ok(())
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serializes")
    }

    /// Writes the manifest to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json() + "\n").map_err(|e| ToolchainError::io(path, "cannot write manifest", e))
    }
}

fn invalid(message: String) -> ToolchainError {
    ToolchainError::new(ErrorCode::ManifestInvalid, message, "regenerate the manifest with lean-toolchain (see docs/loader.md)")
}

/// Builds a manifest from built libraries, checking every requested export against the primary
/// library's dynamic symbol table.
#[derive(Clone, Debug)]
pub struct ManifestBuilder {
    package: String,
    root_module: String,
    toolchain_version: String,
    runtime_init: RuntimeInit,
    primary: PathBuf,
    primary_initializer: Option<String>,
    dependencies: Vec<(PathBuf, bool, Option<String>)>,
    exports: Option<Vec<String>>,
    ir_dir: Option<PathBuf>,
}

impl ManifestBuilder {
    /// Starts a manifest for `primary`, whose initializer defaults to
    /// [`crate::names::module_initializer`] of `package`/`root_module`.
    pub fn new(package: &str, root_module: &str, toolchain_version: &str, primary: impl Into<PathBuf>) -> Self {
        Self {
            package: package.into(),
            root_module: root_module.into(),
            toolchain_version: toolchain_version.into(),
            runtime_init: RuntimeInit::default(),
            primary: primary.into(),
            primary_initializer: Some(crate::names::module_initializer(package, root_module)),
            dependencies: Vec::new(),
            exports: None,
            ir_dir: None,
        }
    }

    /// Overrides (or, with `None`, removes) the primary's initializer.
    pub fn primary_initializer(mut self, symbol: Option<&str>) -> Self {
        self.primary_initializer = symbol.map(str::to_string);
        self
    }

    /// Appends a dependency; dependencies are opened in the order they are added.
    pub fn dependency(mut self, path: impl Into<PathBuf>, global: bool, initializer: Option<&str>) -> Self {
        self.dependencies.push((path.into(), global, initializer.map(str::to_string)));
        self
    }

    /// Adds, as global dependencies, every library the primary needs (`DT_NEEDED`, recursively)
    /// that is found in `dirs` — e.g. the `.lake/build/lib` folders of the package and of its
    /// Lake dependencies. Each comes before the libraries that need it.
    pub fn dependencies_from_needed(mut self, dirs: &[PathBuf]) -> Result<Self> {
        let mut ordered = Vec::new();
        let mut visiting = std::collections::BTreeSet::new();
        needed_closure(&self.primary, dirs, &mut visiting, &mut ordered)?;
        for path in ordered {
            if path != self.primary && !self.dependencies.iter().any(|(p, _, _)| *p == path) {
                self.dependencies.push((path, true, None));
            }
        }
        Ok(self)
    }

    /// Chooses the runtime initialization flavour.
    pub fn runtime_init(mut self, init: RuntimeInit) -> Self {
        self.runtime_init = init;
        self
    }

    /// Records exactly these exports (each must be defined by the primary library). Without
    /// this, every defined symbol that is not Lean-internal is recorded.
    pub fn exports<S: Into<String>>(mut self, symbols: impl IntoIterator<Item = S>) -> Self {
        self.exports = Some(symbols.into_iter().map(Into::into).collect());
        self
    }

    /// Folder of the C files Lake emitted (`.lake/build/ir`), used to record each export's C
    /// prototype so the loader can check typed calls against it.
    pub fn ir_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ir_dir = Some(dir.into());
        self
    }

    /// Checks the libraries and builds the manifest that will be stored in `manifest_dir`.
    pub fn build(self, manifest_dir: &Path) -> Result<CapabilityManifest> {
        let primary_info = elf::read_dynamic_info(&self.primary)?;
        let wanted = match self.exports {
            Some(list) => {
                let missing: Vec<_> = list.iter().filter(|s| !primary_info.defined.contains(*s)).cloned().collect();
                if !missing.is_empty() {
                    return Err(ToolchainError::new(
                        ErrorCode::ManifestInvalid,
                        format!("{} does not export {}", self.primary.display(), missing.join(", ")),
                        "check the `@[export name]` attributes in the Lean sources and rebuild",
                    ));
                }
                list
            }
            None => primary_info.defined.iter().filter(|s| !is_lean_internal(s)).cloned().collect(),
        };
        let prototypes = match &self.ir_dir {
            Some(dir) => crate::ir::export_prototypes(dir, &wanted),
            None => Default::default(),
        };
        if let Some(init) = &self.primary_initializer {
            if !primary_info.defined.contains(init) {
                return Err(ToolchainError::new(
                    ErrorCode::ManifestInvalid,
                    format!("{} does not define the initializer {init}", self.primary.display()),
                    "check the package and root module names (the initializer is initialize_<package>_<Module>)",
                ));
            }
        }
        let entry = |path: &Path, global, initializer| LibraryEntry { path: relative_to(path, manifest_dir), global, initializer };
        Ok(CapabilityManifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            package: self.package,
            root_module: self.root_module,
            toolchain_version: self.toolchain_version,
            runtime_init: self.runtime_init,
            dependencies: self.dependencies.iter().map(|(p, g, i)| entry(p, *g, i.clone())).collect(),
            primary: entry(&self.primary, false, self.primary_initializer),
            exports: wanted
                .into_iter()
                .map(|symbol| ExportEntry { c_signature: prototypes.get(&symbol).cloned(), symbol })
                .collect(),
        })
    }
}

fn needed_closure(
    lib: &Path,
    dirs: &[PathBuf],
    visiting: &mut std::collections::BTreeSet<PathBuf>,
    ordered: &mut Vec<PathBuf>,
) -> Result<()> {
    if !visiting.insert(lib.to_path_buf()) {
        return Ok(());
    }
    for name in elf::read_dynamic_info(lib)?.needed {
        if let Some(found) = dirs.iter().map(|d| d.join(&name)).find(|p| p.is_file()) {
            needed_closure(&found, dirs, visiting, ordered)?;
        }
    }
    ordered.push(lib.to_path_buf());
    Ok(())
}

/// Symbols every Lean library defines that are not meant to be called by a host.
fn is_lean_internal(symbol: &str) -> bool {
    ["l_", "_l_", "initialize_", "_init_l_", "lean_"].iter().any(|p| symbol.starts_with(p))
        || matches!(symbol, "_init" | "_fini" | "_edata" | "_end" | "__bss_start")
}

/// `path` relative to `base` when it lies below it (so the bundle can move), else unchanged.
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let normal = |p: &Path| p.components().filter(|c| !matches!(c, Component::CurDir)).collect::<PathBuf>();
    let (path_n, base_n) = (normal(path), normal(base));
    match path_n.strip_prefix(&base_n) {
        Ok(rel) if path.is_absolute() == base.is_absolute() => rel.to_path_buf(),
        _ => path.to_path_buf(),
    }
}
