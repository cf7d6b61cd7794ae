//! `build_capability` skips `lake build` when its inputs and the built library are unchanged:
//! a fake `lake` counts its runs, and every kind of input change must make it run again.

mod common;

use std::path::{Path, PathBuf};

use capnp_lean_toolchain::{build_capability, build_cache, BuiltCapability, CapabilitySpec, Discovery, Env};
use common::{fake_toolchain, scratch};

/// A fake lake that records each run in `runs` and builds the library like Lake would.
fn counting_lake(runs: &Path) -> String {
    format!(
        r#"
echo run >> '{}'
mkdir -p .lake/build/lib .lake/build/ir
echo 'LEAN_EXPORT uint32_t demo_add(uint32_t, uint32_t);' > .lake/build/ir/Demo.c
cat > .lake/build/demo.c <<'C'
#include <stdint.h>
void* initialize_demo_Demo(uint8_t builtin) {{ return 0; }}
uint32_t demo_add(uint32_t a, uint32_t b) {{ return a + b; }}
C
cc -shared -fPIC -o .lake/build/lib/libdemo_Demo.so .lake/build/demo.c || exit 1
echo "Build completed successfully."
"#,
        runs.display()
    )
}

struct Setup {
    root: PathBuf,
    pkg: PathBuf,
    out: PathBuf,
    runs: PathBuf,
    toolchain: PathBuf,
    spec: CapabilitySpec,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let root = scratch(name);
        let runs = root.join("lake-runs.log");
        let toolchain = fake_toolchain(&root, &counting_lake(&runs));
        let pkg = root.join("pkg");
        std::fs::create_dir_all(pkg.join("Demo")).unwrap();
        std::fs::write(pkg.join("lakefile.toml"), "name = \"demo\"\n[[lean_lib]]\nname = \"Demo\"\n").unwrap();
        std::fs::write(pkg.join("Demo.lean"), "@[export demo_add] def add (a b : UInt32) : UInt32 := a + b\n").unwrap();
        std::fs::write(pkg.join("Demo/Util.lean"), "def x := 1\n").unwrap();
        let out = root.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let mut spec = CapabilitySpec::new(&pkg, "demo", "Demo", "Demo");
        spec.exports = Some(vec!["demo_add".into()]);
        Setup { root, pkg, out, runs, toolchain, spec }
    }

    fn build_with(&self, toolchain: &Path) -> BuiltCapability {
        let env = Env::from_pairs([("LEAN_SYSROOT", toolchain.as_os_str().to_owned()), ("PATH", "/usr/bin:/bin".into())]);
        build_capability(&self.spec, &Discovery::new().with_env(env), &self.out).unwrap()
    }

    fn build(&self) -> BuiltCapability {
        self.build_with(&self.toolchain)
    }

    fn lake_runs(&self) -> usize {
        std::fs::read_to_string(&self.runs).map(|s| s.lines().count()).unwrap_or(0)
    }
}

#[test]
fn an_unchanged_package_reuses_the_manifest_without_running_lake() {
    let s = Setup::new("cache-unchanged");
    let first = s.build();
    assert!(!first.reused);
    assert_eq!(s.lake_runs(), 1);
    assert!(build_cache::record_path(&s.out, "demo").is_file(), "the fingerprint is stored beside the manifest");

    let second = s.build();
    assert_eq!(s.lake_runs(), 1, "lake must not run again");
    assert!(second.reused && second.lake_output.diagnostics.is_empty());
    assert_eq!(second.manifest, first.manifest);
    assert_eq!(second.manifest_path, first.manifest_path);
    assert_eq!(second.directives.lines(), first.directives.lines(), "the build script still gets its directives");
}

/// An edit of the package.
type Change = Box<dyn Fn(&Path)>;

#[test]
fn every_kind_of_input_change_runs_lake_again() {
    let mut s = Setup::new("cache-inputs");
    s.build();
    let mut expected = 1;
    let changes: Vec<(&str, Change)> = vec![
        ("a source edited", Box::new(|p: &Path| std::fs::write(p.join("Demo/Util.lean"), "def x := 2\n").unwrap())),
        ("a source added", Box::new(|p: &Path| std::fs::write(p.join("Demo/New.lean"), "def y := 3\n").unwrap())),
        ("a source renamed", Box::new(|p: &Path| std::fs::rename(p.join("Demo/New.lean"), p.join("Demo/Newer.lean")).unwrap())),
        ("the lakefile", Box::new(|p: &Path| std::fs::write(p.join("lakefile.toml"), "name = \"demo\"\n[[lean_lib]]\nname = \"Demo\"\n# x\n").unwrap())),
        ("lean-toolchain", Box::new(|p: &Path| std::fs::write(p.join("lean-toolchain"), "leanprover/lean4:v4.35.0\n").unwrap())),
        ("lake-manifest.json", Box::new(|p: &Path| std::fs::write(p.join("lake-manifest.json"), "{\"packages\": []}\n").unwrap())),
    ];
    for (what, change) in &changes {
        change(&s.pkg);
        let built = s.build();
        expected += 1;
        assert_eq!(s.lake_runs(), expected, "{what} must rebuild");
        assert!(!built.reused, "{what}");
        s.build();
        assert_eq!(s.lake_runs(), expected, "after {what}, an unchanged package is not rebuilt");
    }

    s.spec.exports = Some(vec!["demo_add".into(), "initialize_demo_Demo".into()]);
    s.build();
    assert_eq!(s.lake_runs(), expected + 1, "a different spec must rebuild");

    let other = fake_toolchain(&s.root.join("other"), &counting_lake(&s.runs));
    s.build_with(&other);
    assert_eq!(s.lake_runs(), expected + 2, "another toolchain must rebuild");
}

#[test]
fn a_changed_or_missing_library_or_record_runs_lake_again() {
    let s = Setup::new("cache-library");
    let built = s.build();
    let library = s.pkg.join(".lake/build/lib/libdemo_Demo.so");
    assert!(library.is_file());
    let mut bytes = std::fs::read(&library).unwrap();
    bytes.push(0);
    std::fs::write(&library, bytes).unwrap();
    s.build();
    assert_eq!(s.lake_runs(), 2, "a library changed behind the cache's back must rebuild");

    std::fs::remove_file(&library).unwrap();
    s.build();
    assert_eq!(s.lake_runs(), 3, "a deleted library must rebuild");

    std::fs::remove_file(build_cache::record_path(&s.out, "demo")).unwrap();
    s.build();
    assert_eq!(s.lake_runs(), 4, "without a record, build");

    std::fs::remove_file(&built.manifest_path).unwrap();
    s.build();
    assert_eq!(s.lake_runs(), 5, "without the manifest, build");
    s.build();
    assert_eq!(s.lake_runs(), 5);
}
