//! Builds the C++ shim (cxx/*.c++) against Debian's Cap'n Proto, found with pkg-config.

use std::path::Path;

const SOURCES: &[&str] = &["runtime", "message", "calls", "server", "net", "stream", "received", "watch"];
const APT_HINT: &str = "sudo apt-get install -y capnproto libcapnp-dev pkg-config";

fn main() {
    println!("cargo:rerun-if-changed=include/capnp_lean.h");
    println!("cargo:rerun-if-changed=cxx/core.h");
    println!("cargo:rerun-if-changed=cxx/stream.h");
    println!("cargo:rerun-if-changed=cxx/received.h");
    println!("cargo:rerun-if-changed=cxx/watch.h");
    for source in SOURCES {
        println!("cargo:rerun-if-changed=cxx/{source}.c++");
    }
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    if std::env::var_os("DOCS_RS").is_some() {
        // Documentation only (docs.rs, scripts/check-docs.sh): nothing is linked, so the shim
        // and Cap'n Proto's C++ libraries are not needed.
        return;
    }
    let mut include_paths = Vec::new();
    for library in ["capnp-rpc", "kj-async"] {
        match pkg_config::Config::new().atleast_version("0.9").probe(library) {
            Ok(found) => include_paths.extend(found.include_paths),
            Err(error) => panic!(
                "capnp-lean needs Cap'n Proto's C++ libraries ({library} not found by pkg-config: \
                 {error}).\nInstall them with: {APT_HINT}"
            ),
        }
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .include("include")
        .includes(&include_paths)
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations");
    if std::env::var("CAPNP_LEAN_SANITIZE").as_deref() == Ok("1") {
        build.flag("-fsanitize=address,undefined").flag("-fno-omit-frame-pointer");
    }
    for source in SOURCES {
        build.file(Path::new("cxx").join(format!("{source}.c++")));
    }
    build.compile("capnp_lean");
    // The static shim depends on these; pkg-config already printed their link lines, but they
    // must come after the shim on the link line.
    for library in ["capnp-rpc", "capnp", "kj-async", "kj"] {
        println!("cargo:rustc-link-lib={library}");
    }
    println!("cargo:include={}", Path::new("include").canonicalize().unwrap().display());
}
