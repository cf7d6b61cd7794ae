//! Cross-checks the IR's ids and layouts against two references that do not share its code:
//! the capnp compiler's schema nodes (read here directly) and the Rust code capnpc-rust
//! generates for the same schemas (struct sizes, type ids, field offsets, union discriminants,
//! method ordinals are parsed out of it).

mod common;

use std::collections::HashMap;

use capnp::schema_capnp::{code_generator_request, field, node, type_};
use capnpc_lean::ir::{FieldKind, Location, Schema, Struct};

fn sets() -> Vec<common::SchemaSet> {
    vec![common::project_schemas(), common::test_schemas(), common::newcomer_schemas()]
}

/// Bits of one value of a slot type, written independently of `ir::Type::data_bits`.
fn slot_bits(ty: type_::Reader<'_>) -> Option<u32> {
    Some(match ty.which().unwrap() {
        type_::Void(()) => 0,
        type_::Bool(()) => 1,
        type_::Int8(()) | type_::Uint8(()) => 8,
        type_::Int16(()) | type_::Uint16(()) | type_::Enum(_) => 16,
        type_::Int32(()) | type_::Uint32(()) | type_::Float32(()) => 32,
        type_::Int64(()) | type_::Uint64(()) | type_::Float64(()) => 64,
        _ => return None,
    })
}

fn ir_structs(schema: &Schema) -> HashMap<u64, &Struct> {
    schema.modules.iter().flat_map(|m| m.structs.iter()).map(|s| (s.id, s)).collect()
}

#[test]
fn ir_layouts_agree_with_the_compilers_schema_nodes() {
    let mut checked_fields = 0;
    for set in sets() {
        let command = common::command(&set);
        let schema = command.lower().unwrap();
        let structs = ir_structs(&schema);
        let bytes = command.request().unwrap();
        let message = capnp::serialize::read_message_from_flat_slice(&mut bytes.as_slice(), Default::default()).unwrap();
        let request = message.get_root::<code_generator_request::Reader>().unwrap();
        let requested: Vec<u64> = request.get_requested_files().unwrap().iter().map(|f| f.get_id()).collect();
        for n in request.get_nodes().unwrap() {
            let in_requested = requested.iter().any(|id| {
                // Nodes of requested files: the IR must contain every struct among them.
                n.get_display_name().unwrap().to_str().unwrap().starts_with(
                    &request.get_nodes().unwrap().iter().find(|f| f.get_id() == *id).unwrap()
                        .get_display_name().unwrap().to_str().unwrap().to_string(),
                )
            });
            let node::Which::Struct(st) = n.which().unwrap() else { continue };
            if !in_requested || n.get_id() == 0x995f_9a33_77c0_b16e {
                continue;
            }
            let ir = structs.get(&n.get_id()).unwrap_or_else(|| panic!("IR lacks {:x}", n.get_id()));
            assert_eq!(ir.data_words, st.get_data_word_count(), "{}", ir.name);
            assert_eq!(ir.pointer_count, st.get_pointer_count(), "{}", ir.name);
            assert_eq!(ir.is_group, st.get_is_group(), "{}", ir.name);
            match &ir.union {
                Some(u) => assert_eq!(u.discriminant_byte, st.get_discriminant_offset() * 2),
                None => assert_eq!(st.get_discriminant_count(), 0),
            }
            for f in st.get_fields().unwrap() {
                let name = f.get_name().unwrap().to_str().unwrap();
                let irf = ir.fields.iter().find(|x| x.name == name).unwrap();
                let expected_disc = match f.get_discriminant_value() {
                    field::NO_DISCRIMINANT => None,
                    d => Some(d),
                };
                assert_eq!(irf.discriminant, expected_disc, "{}.{name}", ir.name);
                match (f.which().unwrap(), &irf.kind) {
                    (field::Slot(slot), FieldKind::Slot(s)) => {
                        let offset = slot.get_offset();
                        let expected = match slot_bits(slot.get_type().unwrap()) {
                            Some(0) => Location::None,
                            Some(1) => Location::Bit(offset),
                            Some(bits) => Location::Byte(offset * bits / 8),
                            None => Location::Pointer(offset as u16),
                        };
                        assert_eq!(s.location, expected, "{}.{name}", ir.name);
                    }
                    (field::Group(g), FieldKind::Group(r)) => assert_eq!(g.get_type_id(), r.id),
                    _ => panic!("{}.{name}: slot/group mismatch", ir.name),
                }
                checked_fields += 1;
            }
        }
    }
    assert!(checked_fields > 100, "only {checked_fields} fields checked");
}

/// What capnpc-rust's output says about one struct or interface.
#[derive(Default, Debug)]
struct RustModule {
    type_id: Option<u64>,
    size: Option<(u16, u16)>,
    /// getter name (snake_case) → (accessor kind, offset in elements)
    getters: HashMap<String, (String, u32)>,
    discriminant: Option<u32>,
    /// method name (snake_case) → (ordinal, streaming)
    methods: HashMap<String, (u16, bool)>,
}

fn number_after(line: &str, marker: &str) -> Option<u32> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = rest.split_once('(').map(|(_, r)| r).unwrap_or(rest);
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn parse_capnpc_rust(text: &str) -> HashMap<u64, RustModule> {
    let lines: Vec<&str> = text.lines().collect();
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut modules: HashMap<String, RustModule> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        // Generic modules carry a comment naming their parameters: `pub mod box_ { /* T */`.
        let opening = trimmed.split(" /*").next().unwrap_or(trimmed);
        let opening = if trimmed.contains(" /*") { format!("{opening} {{") } else { opening.to_string() };
        if let Some(name) = opening.strip_prefix("pub mod ").and_then(|r| r.strip_suffix(" {")) {
            stack.push((name.trim_end_matches(" {").to_string(), indent));
            continue;
        }
        if trimmed == "}" && stack.last().is_some_and(|(_, ind)| *ind == indent) {
            stack.pop();
            continue;
        }
        let path: Vec<&str> = stack.iter().map(|(n, _)| n.as_str()).filter(|n| *n != "_private").collect();
        let key = path.join("::");
        let entry = modules.entry(key).or_default();
        let next = lines.get(i + 1).copied().unwrap_or("");
        if let Some(hex) = trimmed.strip_prefix("pub(crate) const TYPE_ID: u64 = 0x") {
            entry.type_id = Some(u64::from_str_radix(&hex.trim_end_matches(';').replace('_', ""), 16).unwrap());
        } else if trimmed.contains("const STRUCT_SIZE") {
            let data = number_after(trimmed, "data: ").unwrap();
            let pointers = number_after(trimmed, "pointers: ").unwrap();
            entry.size = Some((data as u16, pointers as u16));
        } else if trimmed.starts_with("pub fn which(self)") && entry.discriminant.is_none() {
            entry.discriminant = number_after(next, "get_data_field::<u16>");
        } else if trimmed.starts_with("pub fn get_") && !trimmed.contains("_request(&self)") {
            let rest = &trimmed["pub fn get_".len()..];
            let name = rest.split('(').next().unwrap().to_string();
            if !trimmed.starts_with(&format!("pub fn get_{name}(self)")) || entry.getters.contains_key(&name) {
                continue;
            }
            for kind in ["get_data_field_mask", "get_data_field", "get_bool_field_mask", "get_bool_field", "get_pointer_field"] {
                if next.contains(&format!("{kind}(")) || next.contains(&format!("{kind}::<")) {
                    let offset = number_after(next, kind).unwrap();
                    let kind = if kind.contains("pointer") { "pointer" } else if kind.contains("bool") { "bit" } else { "data" };
                    entry.getters.insert(name.clone(), (kind.to_string(), offset));
                    break;
                }
            }
        } else if let Some(rest) = trimmed.strip_prefix("pub fn ") {
            if let Some(method) = rest.split('(').next().and_then(|n| n.strip_suffix("_request")) {
                if let Some(ordinal) = number_after(next, "new_call(_private::TYPE_ID, ") {
                    entry.methods.insert(method.to_string(), (ordinal as u16, false));
                } else if let Some(ordinal) = number_after(next, "new_streaming_call(_private::TYPE_ID, ") {
                    entry.methods.insert(method.to_string(), (ordinal as u16, true));
                }
            }
        }
    }
    modules.into_values().filter_map(|m| m.type_id.map(|id| (id, m))).collect()
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn capnpc_rust_output(set: &common::SchemaSet) -> HashMap<u64, RustModule> {
    let out = std::env::temp_dir().join(format!("capnpc-lean-layout-{}-{}", std::process::id(), set.files[0]));
    std::fs::create_dir_all(&out).unwrap();
    let mut command = capnpc::CompilerCommand::new();
    command.src_prefix(&set.dir).output_path(&out);
    for file in &set.files {
        command.file(set.dir.join(file));
    }
    command.run().expect("capnpc-rust");
    let mut modules = HashMap::new();
    for file in &set.files {
        let rs = out.join(file.replace(".capnp", "_capnp.rs"));
        modules.extend(parse_capnpc_rust(&std::fs::read_to_string(rs).unwrap()));
    }
    std::fs::remove_dir_all(&out).unwrap();
    modules
}

#[test]
fn ir_layouts_and_ids_agree_with_capnpc_rust_output() {
    let (mut sizes, mut getters, mut unions, mut methods) = (0, 0, 0, 0);
    for set in sets() {
        let rust = capnpc_rust_output(&set);
        let schema = common::command(&set).lower().unwrap();
        for st in schema.modules.iter().flat_map(|m| &m.structs) {
            let r = rust.get(&st.id).unwrap_or_else(|| panic!("capnpc-rust has no module for {}", st.name));
            if !st.is_group {
                assert_eq!(r.size, Some((st.data_words, st.pointer_count)), "{}", st.name);
                sizes += 1;
            }
            if let Some(u) = &st.union {
                assert_eq!(r.discriminant.map(|d| d * 2), Some(u.discriminant_byte), "{}", st.name);
                unions += 1;
            }
            for f in st.fields.iter().filter(|f| f.discriminant.is_none()) {
                let FieldKind::Slot(slot) = &f.kind else { continue };
                let Some((kind, offset)) = r.getters.get(&snake(&f.name)) else { continue };
                let expected = match slot.location {
                    Location::Bit(b) => ("bit", b),
                    Location::Byte(b) => ("data", b * 8 / slot.ty.data_bits().unwrap()),
                    Location::Pointer(p) => ("pointer", u32::from(p)),
                    Location::None => continue,
                };
                assert_eq!((kind.as_str(), *offset), expected, "{}.{}", st.name, f.name);
                getters += 1;
            }
        }
        for iface in schema.modules.iter().flat_map(|m| &m.interfaces) {
            let r = rust.get(&iface.id).unwrap_or_else(|| panic!("capnpc-rust has no module for {}", iface.name));
            for m in &iface.methods {
                assert_eq!(r.methods.get(&snake(&m.name)), Some(&(m.ordinal, m.streaming)), "{}.{}", iface.name, m.name);
                methods += 1;
            }
        }
    }
    assert!(sizes > 30 && getters > 60 && unions >= 3 && methods > 15, "{sizes} {getters} {unions} {methods}");
}
