//! Skips `lake build` when nothing it reads has changed. [`crate::build_capability`] hashes its
//! inputs — every `*.lean` of the package (hidden folders such as `.lake` excluded), `lakefile.*`,
//! `lean-toolchain`, `lake-manifest.json`, the toolchain (root, `lake`, runtime, version), the
//! [`CapabilitySpec`] and this crate's version — and stores the hash beside the manifest
//! (`<package>.capability.inputs.json`) together with a hash of every library the manifest lists
//! (the runtime excepted: the toolchain inputs cover it). When both still match, the manifest is
//! reused and Lake is not started.
//!
//! The hash (FNV-1a, 128 bits) detects changes, not tampering; a library rebuilt or replaced
//! behind the cache's back changes its hash and forces a rebuild.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::discovery::LeanInstall;
use crate::error::{Result, ToolchainError};
use crate::manifest::ManifestFile;
use crate::CapabilitySpec;

/// The files of a Lake package, besides its `*.lean` sources, that decide what Lake builds.
pub const PACKAGE_INPUT_FILES: [&str; 4] = ["lakefile.lean", "lakefile.toml", "lean-toolchain", "lake-manifest.json"];

/// FNV-1a over 128 bits.
struct Hasher(u128);

impl Hasher {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;

    fn new() -> Self {
        Hasher(Self::OFFSET)
    }

    fn bytes(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= b as u128;
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// A length-prefixed field, so that concatenations of different fields never collide.
    fn field(&mut self, data: &[u8]) {
        self.bytes(&(data.len() as u64).to_le_bytes());
        self.bytes(data);
    }

    fn finish(&self) -> String {
        format!("{:032x}", self.0)
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| ToolchainError::io(path, "cannot read", e))
}

/// The fingerprint of everything a `lake build` of `spec` with `install` depends on.
pub fn input_fingerprint(spec: &CapabilitySpec, install: &LeanInstall) -> Result<String> {
    let mut h = Hasher::new();
    h.field(env!("CARGO_PKG_VERSION").as_bytes());
    h.field(format!("{spec:?}").as_bytes());
    h.field(install.root.as_os_str().as_encoded_bytes());
    h.field(install.runtime_library.as_os_str().as_encoded_bytes());
    h.field(install.version.as_deref().unwrap_or("unknown").as_bytes());
    h.field(install.lake().unwrap_or_default().as_os_str().as_encoded_bytes());
    for name in PACKAGE_INPUT_FILES {
        let path = spec.package_dir.join(name);
        h.field(name.as_bytes());
        if path.is_file() {
            h.field(&read(&path)?);
        } else {
            h.field(b"<absent>");
        }
    }
    for source in crate::cargo::lean_sources(&spec.package_dir) {
        let relative = source.strip_prefix(&spec.package_dir).unwrap_or(&source);
        h.field(relative.as_os_str().as_encoded_bytes());
        h.field(&read(&source)?);
    }
    Ok(h.finish())
}

/// The fingerprint of the libraries a manifest lists (not the runtime).
fn libraries_fingerprint(manifest: &ManifestFile) -> Result<String> {
    let mut h = Hasher::new();
    for entry in manifest.libraries_in_load_order() {
        let path = manifest.library_path(entry);
        if path.file_name().is_some_and(|n| n == "libleanshared.so") {
            continue;
        }
        h.field(path.as_os_str().as_encoded_bytes());
        h.field(&read(&path)?);
    }
    Ok(h.finish())
}

#[derive(Serialize, Deserialize)]
struct CacheRecord {
    inputs: String,
    libraries: String,
}

/// Where the fingerprint of `package`'s build in `out_dir` is kept (beside its manifest).
pub fn record_path(out_dir: &Path, package: &str) -> PathBuf {
    out_dir.join(format!("{package}.capability.inputs.json"))
}

/// The manifest of an earlier build whose inputs fingerprint is `inputs` and whose libraries are
/// unchanged, or `None` (anything missing, unreadable or different means: build).
pub(crate) fn reusable(out_dir: &Path, package: &str, manifest_path: &Path, inputs: &str) -> Option<ManifestFile> {
    let record: CacheRecord = serde_json::from_slice(&std::fs::read(record_path(out_dir, package)).ok()?).ok()?;
    if record.inputs != inputs {
        return None;
    }
    let manifest = ManifestFile::read(manifest_path).ok()?;
    (libraries_fingerprint(&manifest).ok()? == record.libraries).then_some(manifest)
}

/// Records the fingerprints after a successful build.
pub(crate) fn remember(out_dir: &Path, package: &str, manifest: &ManifestFile, inputs: &str) -> Result<()> {
    let record = CacheRecord { inputs: inputs.to_string(), libraries: libraries_fingerprint(manifest)? };
    let path = record_path(out_dir, package);
    let text = serde_json::to_string_pretty(&record).expect("the record serializes");
    std::fs::write(&path, text + "\n").map_err(|e| ToolchainError::io(&path, "cannot write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_delimited_and_the_hash_is_stable() {
        let hash = |fields: &[&[u8]]| {
            let mut h = Hasher::new();
            fields.iter().for_each(|f| h.field(f));
            h.finish()
        };
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_eq!(hash(&[b"lean"]), hash(&[b"lean"]));
        assert_eq!(hash(&[]), format!("{:032x}", Hasher::OFFSET));
    }
}
