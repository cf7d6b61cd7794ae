//! Helpers shared by this crate's integration tests: scratch folders and fake toolchains.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fresh folder under Cargo's per-target temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lean-toolchain-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes an executable shell script.
pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Compiles C source into a shared object with the system C compiler.
pub fn shared_object(c_source: &str, out: &Path, extra: &[&str]) {
    let src = out.with_extension("c");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&src, c_source).unwrap();
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(out)
        .arg(&src)
        .args(extra)
        .status()
        .expect("cc runs");
    assert!(status.success(), "cc failed for {}", out.display());
}

/// A fake toolchain prefix: `bin/lean`, `bin/lake` (given body), a stand-in runtime library and
/// `include/lean/version.h` saying 4.35.0.
pub fn fake_toolchain(root: &Path, lake_body: &str) -> PathBuf {
    let prefix = root.join("toolchain");
    script(&prefix.join("bin/lean"), &format!("echo {}\n", prefix.display()));
    script(&prefix.join("bin/lake"), lake_body);
    shared_object("int lean_main(void) { return 0; }\n", &prefix.join("lib/lean/libleanshared.so"), &[]);
    std::fs::create_dir_all(prefix.join("include/lean")).unwrap();
    std::fs::write(
        prefix.join("include/lean/version.h"),
        "#define LEAN_VERSION_MAJOR 4\n#define LEAN_VERSION_MINOR 35\n#define LEAN_VERSION_PATCH 0\n",
    )
    .unwrap();
    prefix
}
