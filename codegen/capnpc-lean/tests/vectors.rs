//! Binary test vectors in `capnp-schemas/testdata/`: written by capnpc-rust builders, decoded
//! here with the generator's IR layouts by an independent decoder, and compared with the
//! manifests. The committed files must equal what the samples produce now
//! (`CAPNPC_LEAN_BLESS=1 cargo test -p capnpc-lean --test vectors` rewrites them).

mod common;

use common::render::render;
use common::samples::{all_samples, Sample};
use common::wire::Message;

fn schema() -> capnpc_lean::ir::Schema {
    let mut modules = Vec::new();
    for set in [common::project_schemas(), common::test_schemas()] {
        modules.extend(common::command(&set).lower().expect("lowering").modules);
    }
    capnpc_lean::ir::Schema { modules }
}

fn bytes_of(sample: &Sample) -> Vec<u8> {
    let mut bytes = Vec::new();
    capnp::serialize::write_message(&mut bytes, &sample.message).unwrap();
    bytes
}

/// capnp-rust's deep copy of the message into a fresh single-segment builder: what the Lean
/// runtime's re-encoding must reproduce byte for byte.
fn copy_bytes(sample: &Sample) -> Vec<u8> {
    let bytes = bytes_of(sample);
    let reader = capnp::serialize::read_message(&mut bytes.as_slice(), Default::default()).unwrap();
    let mut copy = capnp::message::Builder::new_default();
    copy.set_root(reader.get_root::<capnp::any_pointer::Reader>().unwrap()).unwrap();
    let mut out = Vec::new();
    capnp::serialize::write_message(&mut out, &copy).unwrap();
    out
}

fn manifest_text(sample: &Sample) -> String {
    let mut text = String::new();
    for line in &sample.manifest {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[test]
fn ir_layouts_decode_every_vector_to_its_manifest() {
    let schema = schema();
    for sample in all_samples() {
        let message = Message::from_bytes(&bytes_of(&sample));
        let rendered = render(&schema, &message, sample.root_struct);
        assert_eq!(rendered, sample.manifest, "vector {} decoded with IR layouts", sample.name);
    }
}

#[test]
fn fragmented_vectors_span_segments_through_far_pointers() {
    let mut seen = 0;
    for sample in all_samples().iter().filter(|s| s.name.ends_with("fragmented")) {
        let message = Message::from_bytes(&bytes_of(sample));
        assert!(message.segments.len() > 1, "{}: {} segments", sample.name, message.segments.len());
        assert!(message.has_far_pointer(), "{}: no far pointer", sample.name);
        seen += 1;
    }
    assert!(seen >= 3);
}

#[test]
fn committed_vectors_match_the_samples() {
    let dir = common::repo_root().join("capnp-schemas/testdata");
    let mut index = String::new();
    let mut stale = Vec::new();
    for sample in all_samples() {
        index.push_str(sample.name);
        index.push('\n');
        let files = [
            ("bin", bytes_of(&sample)),
            ("copy.bin", copy_bytes(&sample)),
            ("txt", manifest_text(&sample).into_bytes()),
        ];
        for (ext, contents) in files {
            let path = dir.join(format!("{}.{ext}", sample.name));
            if common::blessing() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &contents).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(contents.as_slice()) {
                stale.push(path.display().to_string());
            }
        }
    }
    let index_path = dir.join("vectors.list");
    if common::blessing() {
        std::fs::write(&index_path, &index).unwrap();
    } else if std::fs::read_to_string(&index_path).ok().as_deref() != Some(index.as_str()) {
        stale.push(index_path.display().to_string());
    }
    assert!(
        stale.is_empty(),
        "test vectors differ from the samples: {stale:?}\n\
         regenerate with: CAPNPC_LEAN_BLESS=1 cargo test -p capnpc-lean --test vectors"
    );
}

#[test]
fn lean_reencoding_order_matches_capnp_rust_copies() {
    for sample in all_samples() {
        let bytes = bytes_of(&sample);
        let ours = common::wire::reencode_like_lean(&Message::from_bytes(&bytes));
        let theirs = Message::from_bytes(&copy_bytes(&sample));
        assert_eq!(theirs.segments.len(), 1);
        assert_eq!(ours, theirs.segments[0], "{}", sample.name);
    }
}
