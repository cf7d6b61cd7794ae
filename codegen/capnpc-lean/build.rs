//! Generates capnpc-rust code for the generator's own test schemas (`tests/schemas/`), which the
//! vector tests use to write sample messages independently of capnpc-lean.

fn main() {
    let schemas = ["tests/schemas/test_all.capnp", "tests/schemas/test_import.capnp"];
    for schema in schemas {
        println!("cargo:rerun-if-changed={schema}");
    }
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    if std::env::var_os("DOCS_RS").is_some() {
        return; // documentation only: the generated modules serve the tests, not the docs
    }
    let mut command = capnpc::CompilerCommand::new();
    command.src_prefix("tests/schemas");
    // The tests include the generated modules under `mod common`.
    command.default_parent_module(vec!["common".into()]);
    for schema in schemas {
        command.file(schema);
    }
    if let Err(error) = command.run() {
        panic!(
            "compiling the test schemas with capnpc-rust failed: {error}\n\
             hint: install the Cap'n Proto compiler: apt-get install -y capnproto"
        );
    }
}
