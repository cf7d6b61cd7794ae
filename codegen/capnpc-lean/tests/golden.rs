//! The generated Lean committed in `lean-rpc/` must be exactly what the generator produces now,
//! for the project's schemas and for the generator's own test schemas.
//! Regenerate with `CAPNPC_LEAN_BLESS=1 cargo test -p capnpc-lean --test golden`.

mod common;

use capnpc_lean::GeneratedFile;

fn check(files: &[GeneratedFile]) {
    let root = common::repo_root().join("lean-rpc");
    let mut stale = Vec::new();
    for file in files {
        let path = root.join(&file.path);
        if common::blessing() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &file.contents).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(file.contents.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "committed generated Lean differs from the generator's output: {stale:?}\n\
         regenerate with: CAPNPC_LEAN_BLESS=1 cargo test -p capnpc-lean --test golden"
    );
}

#[test]
fn committed_lean_for_project_schemas_is_current() {
    let files = common::command(&common::project_schemas()).generate().expect("generation");
    let modules: Vec<&str> = files.iter().map(|f| f.module.as_str()).collect();
    assert_eq!(modules, ["Capnp.Schemas.Calculator", "Capnp.Schemas.Interop"]);
    check(&files);
}

#[test]
fn committed_lean_for_test_schemas_is_current() {
    let files = common::command(&common::test_schemas()).generate().expect("generation");
    check(&files);
}

#[test]
fn committed_lean_for_the_newcomer_schema_is_current() {
    let files = common::command(&common::newcomer_schemas()).generate().expect("generation");
    assert_eq!(files.len(), 1, "annotation-only imports must not produce modules");
    assert!(!files[0].contents.contains("import Tests.Gen.Capnp"), "c++.capnp is only used for annotations");
    check(&files);
}

#[test]
fn output_is_deterministic_across_runs() {
    let first = common::command(&common::test_schemas()).generate().unwrap();
    let second = common::command(&common::test_schemas()).generate().unwrap();
    assert_eq!(first, second);
}

#[test]
fn imports_across_files_are_resolved_to_generated_modules() {
    let files = common::command(&common::test_schemas()).generate().unwrap();
    let all = files.iter().find(|f| f.module == "Tests.Gen.TestAll").unwrap();
    assert!(all.contents.contains("\nimport Tests.Gen.TestImport\n"));
    assert!(all.contents.contains("Tests.Gen.TestImport.Point.Reader"));
    let import = files.iter().find(|f| f.module == "Tests.Gen.TestImport").unwrap();
    assert!(!import.contents.contains("import Tests.Gen.TestAll"));
}

#[test]
fn plugin_binary_writes_one_module_per_file() {
    let out = std::env::temp_dir().join(format!("capnpc-lean-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let status = std::process::Command::new("capnp")
        .current_dir(common::repo_root().join("capnp-schemas"))
        .env("CAPNPC_LEAN_MODULE_PREFIX", common::LIBRARY_PREFIX)
        .arg("compile")
        .arg(format!("-o{}:{}", env!("CARGO_BIN_EXE_capnpc-lean"), out.display()))
        .args(["calculator.capnp", "interop.capnp"])
        .status()
        .expect("running capnp");
    assert!(status.success());
    let expected = common::command(&common::project_schemas()).generate().unwrap();
    for file in expected {
        let written = std::fs::read_to_string(out.join(&file.path)).unwrap();
        assert_eq!(written, file.contents, "{}", file.path.display());
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn emitted_readers_use_the_ir_positions() {
    use capnpc_lean::ir::{FieldKind, Location};
    let mut checked = 0;
    for set in [common::project_schemas(), common::test_schemas(), common::newcomer_schemas()] {
        let command = common::command(&set);
        let schema = command.lower().unwrap();
        let files = capnpc_lean::emit(&schema);
        for (module, file) in schema.modules.iter().zip(&files) {
            for st in &module.structs {
                for field in &st.fields {
                    let FieldKind::Slot(slot) = &field.kind else { continue };
                    let expected = match slot.location {
                        Location::Byte(b) => format!("getU{} {b}", slot.ty.data_bits().unwrap()),
                        Location::Bit(b) => format!("getBool {b}"),
                        Location::Pointer(p) => format!("ptr {p})"),
                        Location::None => continue,
                    };
                    let name = capnpc_lean::names::escape_path(&st.name);
                    let prefix = format!("def {name}.Reader.get{} ", capnpc_lean::names::upper_first(&field.name));
                    let start = file.contents.find(&prefix).unwrap_or_else(|| panic!("no reader {prefix}"));
                    let definition: String = file.contents[start..].lines().take(2).collect();
                    assert!(definition.contains(&expected), "{prefix}: expected `{expected}` in {definition}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 150, "{checked}");
}
