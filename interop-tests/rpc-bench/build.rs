//! Builds the native C++ KJ benchmark client and server (`cxx/kj_bench_client.c++`,
//! `cxx/kj_bench_server.c++`) and the error tests' KJ client (`cxx/kj_fail_client.c++`) against the system's Cap'n Proto (Debian's 0.9.2): generates C++
//! for `interop.capnp` with `capnp compile -oc++`, compiles them into one static library and links the KJ/capnp shared libraries found by
//! pkg-config. Fails early, with the install command, when those are missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL_HINT: &str = "install Cap'n Proto's compiler and C++ libraries: sudo apt-get install -y capnproto libcapnp-dev pkg-config";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let schema_dir = manifest_dir.join("../../capnp-schemas");
    let sources = [
        manifest_dir.join("cxx/kj_bench_client.c++"),
        manifest_dir.join("cxx/kj_bench_server.c++"),
        manifest_dir.join("cxx/kj_fail_client.c++"),
    ];
    for source in &sources {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    println!("cargo:rerun-if-changed={}", schema_dir.join("interop.capnp").display());

    // Probe without emitting link flags: they must follow our static library on the link line.
    let libraries: Vec<pkg_config::Library> = ["capnp-rpc", "kj-async"]
        .iter()
        .map(|name| {
            pkg_config::Config::new().cargo_metadata(false).probe(name).unwrap_or_else(|e| {
                panic!("pkg-config cannot find `{name}` ({e}).\nTo fix, {INSTALL_HINT}")
            })
        })
        .collect();

    generate_cxx(&schema_dir, &out_dir);

    let mut build = cc::Build::new();
    build.cpp(true).std("c++17").include(&out_dir).files(&sources).file(out_dir.join("interop.capnp.c++"));
    for library in &libraries {
        build.includes(&library.include_paths);
    }
    build.compile("kj_bench");

    for library in &libraries {
        for path in &library.link_paths {
            println!("cargo:rustc-link-search=native={}", path.display());
        }
        for name in &library.libs {
            println!("cargo:rustc-link-lib={name}");
        }
    }
}

/// Runs `capnp compile -oc++` for interop.capnp into `out_dir`.
fn generate_cxx(schema_dir: &Path, out_dir: &Path) {
    let status = Command::new("capnp")
        .arg("compile")
        .arg(format!("-oc++:{}", out_dir.display()))
        .arg(format!("--src-prefix={}", schema_dir.display()))
        .arg(schema_dir.join("interop.capnp"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run the `capnp` schema compiler ({e}).\nTo fix, {INSTALL_HINT}"));
    assert!(status.success(), "`capnp compile -oc++` failed for interop.capnp ({status}).\nTo fix, {INSTALL_HINT}");
}
