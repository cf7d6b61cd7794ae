//! `libcapnp_lean_glue.a` linked into a program the way Lake links a Lean executable: the
//! program links the Lean runtime itself (here `libleanshared.so` from `.lean-runtime/`),
//! initializes it, and calls the glue's externs by their C names. The glue must find the
//! runtime in the process (no `LeanRuntime::open`), attach its KJ loop thread, and return
//! Lean 4.35 IO results. This is the link path of `docs/lean-kj.md`, minus Lake.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use capnp_lean_peers::process::{run_to_completion, PeerProcess};

const BRIDGE_PEER: &str = env!("CARGO_BIN_EXE_bridge-peer");

/// A C stand-in for a compiled Lean `main`: initializes the runtime, then connects, bootstraps,
/// releases and shuts down through the glue, checking each IO result's tag.
const PROGRAM: &str = r#"
#include <stdint.h>
#include <stdio.h>
#include <string.h>
typedef struct lean_object lean_object;
void lean_initialize_runtime_module(void);
lean_object* initialize_Init(uint8_t builtin);
void lean_io_mark_end_initialization(void);
lean_object* lean_mk_string(const char* s);
lean_object* capnp_lean_kj_runtime_new(void);
lean_object* capnp_lean_kj_connect(lean_object* rt, lean_object* address);
lean_object* capnp_lean_kj_connection_bootstrap(lean_object* conn);
lean_object* capnp_lean_kj_cap_release(lean_object* cap);
lean_object* capnp_lean_kj_runtime_stats(lean_object* rt);
lean_object* capnp_lean_kj_runtime_shutdown(lean_object* rt);

static unsigned tag(lean_object* o) { return ((unsigned char*)o)[7]; }
static lean_object* field(lean_object* o, int i) { return ((lean_object**)((char*)o + 8))[i]; }
static uintptr_t unbox(lean_object* o) { return ((uintptr_t)o) >> 1; }
static lean_object* expect_ok(lean_object* r, const char* what) {
  if (tag(r) != 0) { printf("%s failed\n", what); fflush(stdout); _Exit(1); }
  return field(r, 0);
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  lean_initialize_runtime_module();
  expect_ok(initialize_Init(1), "initialize_Init");
  lean_io_mark_end_initialization();
  lean_object* rt = expect_ok(capnp_lean_kj_runtime_new(), "runtime_new");
  lean_object* conn = expect_ok(capnp_lean_kj_connect(rt, lean_mk_string(argv[1])), "connect");
  lean_object* cap = expect_ok(capnp_lean_kj_connection_bootstrap(conn), "bootstrap");
  lean_object* stats = expect_ok(capnp_lean_kj_runtime_stats(rt), "stats");
  printf("connections=%lu caps=%lu\n", (unsigned long)unbox(field(stats, 0)), (unsigned long)unbox(field(stats, 1)));
  expect_ok(capnp_lean_kj_cap_release(cap), "cap_release");
  expect_ok(capnp_lean_kj_runtime_shutdown(rt), "runtime_shutdown");
  lean_object* refused = capnp_lean_kj_connection_bootstrap(conn);
  printf("after shutdown: tag %u\n", tag(refused));
  puts("glue ok");
  return 0;
}
"#;

fn target_dir() -> PathBuf {
    // tests run from <target>/<profile>/deps/
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

fn repo() -> PathBuf {
    capnp_lean_toolchain::test_support::repo_root(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_static_glue_library_works_in_a_program_that_links_the_lean_runtime_itself() {
    let Some(install) = capnp_lean_toolchain::test_support::runtime_or_skip(env!("CARGO_MANIFEST_DIR")) else { return };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = target_dir().file_name().unwrap().to_string_lossy().to_string();
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "capnp-lean-glue"]).current_dir(repo());
    if profile == "release" {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "cargo build -p capnp-lean-glue failed");
    let archive = target_dir().join("libcapnp_lean_glue.a");
    assert!(archive.is_file(), "{} was not built", archive.display());

    let dir = std::env::temp_dir().join(format!("capnp-lean-glue-staticlib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.c"), PROGRAM).unwrap();
    let exe = dir.join("glue-host");
    let runtime_dir = install.runtime_dir().to_path_buf();
    let compiled = Command::new("cc")
        .arg(dir.join("main.c"))
        .arg("-o")
        .arg(&exe)
        .arg(&archive)
        .arg(format!("-L{}", runtime_dir.display()))
        .arg(format!("-Wl,-rpath,{}", runtime_dir.display()))
        .args(["-lleanshared", "-lstdc++", "-lcapnp-rpc", "-lcapnp", "-lkj-async", "-lkj", "-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"])
        .output()
        .unwrap();
    assert!(compiled.status.success(), "linking against the glue archive failed:\n{}", String::from_utf8_lossy(&compiled.stderr));

    let server = PeerProcess::spawn_listening(BRIDGE_PEER, &["serve-calculator", "--listen", "127.0.0.1:0"], Duration::from_secs(20)).unwrap();
    let run = run_to_completion(&exe, &[server.address()], Duration::from_secs(60)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(run.status.success(), "the glue host failed:\n{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("connections=1 caps=1"), "{}", run.stdout);
    assert!(run.stdout.contains("after shutdown: tag 1"), "calls after shutdown are IO errors: {}", run.stdout);
    assert!(run.stdout.contains("glue ok"), "{}", run.stdout);
}
