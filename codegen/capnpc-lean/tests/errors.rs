//! Constructs the generator cannot express fail with an error naming the schema location
//! instead of producing Lean that would not compile or would behave differently.

mod common;

fn generate(file: &'static str) -> Result<Vec<capnpc_lean::GeneratedFile>, capnpc_lean::Error> {
    let set = common::SchemaSet {
        dir: common::repo_root().join("codegen/capnpc-lean/tests/schemas/unsupported"),
        files: vec![file],
        prefix: common::TESTS_PREFIX,
    };
    common::command(&set).generate()
}

#[test]
fn nested_declaration_named_like_a_generated_type_is_rejected_with_its_location() {
    let error = generate("reserved_nested_name.capnp").unwrap_err().to_string();
    assert!(error.contains("reserved_nested_name.capnp:Message.Reader"), "{error}");
    assert!(error.contains("unsupported"), "{error}");
}

#[test]
fn method_colliding_with_a_client_member_is_rejected_with_its_location() {
    let error = generate("method_named_cap.capnp").unwrap_err().to_string();
    assert!(error.contains("method_named_cap.capnp:Holder.cap"), "{error}");
}

#[test]
fn plugin_exits_nonzero_and_names_the_location() {
    let out = std::env::temp_dir().join(format!("capnpc-lean-err-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let output = std::process::Command::new("capnp")
        .current_dir(common::repo_root().join("codegen/capnpc-lean/tests/schemas/unsupported"))
        .arg("compile")
        .arg(format!("-o{}:{}", env!("CARGO_BIN_EXE_capnpc-lean"), out.display()))
        .arg("method_named_cap.capnp")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Holder.cap"));
    std::fs::remove_dir_all(&out).unwrap();
}
