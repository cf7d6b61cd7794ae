//! `cargo:` directives for build scripts that link or load a Lean capability: where the runtime
//! is (link search + rpath), and what should make Cargo re-run the build script.

use std::path::{Path, PathBuf};

/// Collected directives; print them with [`CargoDirectives::emit`] or inspect them in tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CargoDirectives {
    lines: Vec<String>,
}

/// Environment variables that change the result of discovery or of a Lake build.
pub const DISCOVERY_ENV_VARS: &[&str] = &["LEAN_SYSROOT", "ELAN_HOME", "ELAN_TOOLCHAIN", "LEAN_PATH", "PATH"];

impl CargoDirectives {
    /// No directives yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Link search path plus an rpath entry, so the binary finds the library without
    /// `LD_LIBRARY_PATH`.
    pub fn link_and_rpath(mut self, dir: &Path) -> Self {
        self.lines.push(format!("cargo:rustc-link-search=native={}", dir.display()));
        self.lines.push(format!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display()));
        self
    }

    /// Re-run when the lakefile, the toolchain file or any `.lean` source of the package changes
    /// (Lake's own `.lake` folder is skipped).
    pub fn rerun_on_package(mut self, package_dir: &Path) -> Self {
        for name in ["lakefile.lean", "lakefile.toml", "lean-toolchain", "lake-manifest.json"] {
            let path = package_dir.join(name);
            if path.exists() {
                self.lines.push(format!("cargo:rerun-if-changed={}", path.display()));
            }
        }
        for source in lean_sources(package_dir) {
            self.lines.push(format!("cargo:rerun-if-changed={}", source.display()));
        }
        self
    }

    /// Re-run when any discovery-relevant variable changes.
    pub fn rerun_on_env(mut self) -> Self {
        for var in DISCOVERY_ENV_VARS {
            self.lines.push(format!("cargo:rerun-if-env-changed={var}"));
        }
        self
    }

    /// Exposes a value to the crate being built as `env!(name)`.
    pub fn rustc_env(mut self, name: &str, value: &str) -> Self {
        self.lines.push(format!("cargo:rustc-env={name}={value}"));
        self
    }

    /// The directive lines.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Prints every directive on standard output, where Cargo reads them.
    pub fn emit(&self) {
        for line in &self.lines {
            println!("{line}");
        }
    }
}

pub(crate) fn lean_sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if path.is_dir() && !hidden {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "lean") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
