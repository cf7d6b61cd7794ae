//! Generates Rust code for the project's schemas with capnpc-rust. Needs the `capnp` compiler
//! (Debian package `capnproto`).

fn main() {
    let schemas = ["calculator.capnp", "interop.capnp", "stream_test.capnp", "worker.capnp"];
    for schema in schemas {
        println!("cargo:rerun-if-changed={schema}");
    }
    let mut command = capnpc::CompilerCommand::new();
    for schema in schemas {
        command.file(schema);
    }
    if let Err(error) = command.run() {
        panic!(
            "compiling the Cap'n Proto schemas failed: {error}\n\
             hint: install the Cap'n Proto compiler: sudo apt-get install -y capnproto libcapnp-dev pkg-config"
        );
    }
}
