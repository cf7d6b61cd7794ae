//! Renders a message as `path = value` lines using only the IR's layouts (offsets, defaults,
//! discriminants) and the independent decoder in `wire.rs`. The same format is what the manifests
//! in `capnp-schemas/testdata/` hold and what the Lean tests print; it is described in
//! `capnp-schemas/testdata/README.md`.

use std::collections::HashMap;

use capnpc_lean::ir::{Default, Field, FieldKind, Location, Schema, Struct, Type};

use super::wire::{ListRef, Message, PointerAt, StructRef, Target};

pub struct Renderer<'a> {
    structs: HashMap<u64, &'a Struct>,
    message: &'a Message,
    pub lines: Vec<String>,
}

pub fn render(schema: &Schema, message: &Message, root_struct: u64) -> Vec<String> {
    let structs = schema.modules.iter().flat_map(|m| m.structs.iter()).map(|s| (s.id, s)).collect();
    let mut renderer = Renderer { structs, message, lines: Vec::new() };
    renderer.pointer_struct("", root_struct, message.root());
    renderer.lines
}

pub fn quote(text: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in text {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0..=0x1f | 0x7f.. => out.push_str(&format!("\\x{b:02x}")),
            _ => out.push(b as char),
        }
    }
    out.push('"');
    out
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::from("0x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// A data value (already XORed with its default) in manifest syntax.
pub fn scalar(ty: &Type, raw: u64) -> String {
    match ty {
        Type::Void => "void".into(),
        Type::Bool => (raw != 0).to_string(),
        Type::Int(int) if int.signed => {
            let shift = 64 - u32::from(int.bits);
            (((raw << shift) as i64) >> shift).to_string()
        }
        Type::Int(_) | Type::Enum(_) => raw.to_string(),
        Type::Float32 => format!("bits:0x{raw:08x}"),
        Type::Float64 => format!("bits:0x{raw:016x}"),
        _ => unreachable!("not a data type"),
    }
}

impl Renderer<'_> {
    fn pointer_struct(&mut self, path: &str, id: u64, at: PointerAt) {
        match self.message.resolve(at) {
            Target::Struct(s) => self.fields(path, id, s),
            Target::Null => self.lines.push(format!("{path} = null")),
            _ => panic!("{path}: expected a struct pointer"),
        }
    }

    fn fields(&mut self, path: &str, id: u64, s: StructRef) {
        let st = self.structs[&id];
        let active = st.union.as_ref().map(|u| self.message.data(s, u.discriminant_byte as usize * 8, 16) as u16);
        for field in &st.fields {
            if let Some(d) = field.discriminant {
                if Some(d) != active {
                    continue;
                }
                self.lines.push(format!("{} = {}", join(path, "which"), field.name));
            }
            self.field(&join(path, &field.name), field, s);
        }
    }

    fn field(&mut self, path: &str, field: &Field, s: StructRef) {
        let slot = match &field.kind {
            FieldKind::Group(group) => return self.fields(path, group.id, s),
            FieldKind::Slot(slot) => slot,
        };
        let mask = match slot.default { Default::Bits(bits) => bits, _ => 0 };
        match slot.location {
            Location::None => self.lines.push(format!("{path} = void")),
            Location::Bit(bit) => {
                let raw = self.message.data(s, bit as usize, 1) ^ mask;
                self.lines.push(format!("{path} = {}", scalar(&slot.ty, raw)));
            }
            Location::Byte(byte) => {
                let bits = slot.ty.data_bits().unwrap() as usize;
                let raw = self.message.data(s, byte as usize * 8, bits) ^ mask;
                self.lines.push(format!("{path} = {}", scalar(&slot.ty, raw)));
            }
            Location::Pointer(index) => {
                let at = self.message.pointer(s, index as usize);
                self.pointer_value(path, &slot.ty, at, &slot.default);
            }
        }
    }

    fn pointer_value(&mut self, path: &str, ty: &Type, at: PointerAt, default: &Default) {
        let target = self.message.resolve(at);
        match ty {
            Type::Text | Type::Data => {
                let bytes = match (&target, default) {
                    (Target::List(l), _) => {
                        let mut b = self.message.bytes(*l);
                        if matches!(ty, Type::Text) {
                            b.pop(); // NUL terminator
                        }
                        b
                    }
                    (_, Default::Text(t)) => t.as_bytes().to_vec(),
                    (_, Default::Data(d)) => d.clone(),
                    _ => Vec::new(),
                };
                let value = if matches!(ty, Type::Text) { quote(&bytes) } else { hex(&bytes) };
                self.lines.push(format!("{path} = {value}"));
            }
            Type::Struct(r) => match target {
                Target::Struct(s) => self.fields(path, r.id, s),
                Target::Null if matches!(default, Default::Pointer(_)) => {
                    self.lines.push(format!("{path} = default"))
                }
                _ => self.lines.push(format!("{path} = null")),
            },
            Type::List(elem) => match target {
                Target::List(l) => self.list(path, elem, l),
                Target::Null if matches!(default, Default::Pointer(_)) => {
                    self.lines.push(format!("{path} = default"))
                }
                _ => self.lines.push(format!("{path} = []")),
            },
            Type::Interface(_) => match target {
                Target::Cap(index) => self.lines.push(format!("{path} = cap:{index}")),
                _ => self.lines.push(format!("{path} = cap:null")),
            },
            Type::AnyPointer => {
                let state = if matches!(target, Target::Null) { "null" } else { "set" };
                self.lines.push(format!("{path} = {state}"));
            }
            _ => unreachable!("data type behind a pointer"),
        }
    }

    /// Inline rendering of list elements that fit on one line; struct lists get one block each.
    fn list(&mut self, path: &str, elem: &Type, l: ListRef) {
        if let Type::Struct(r) = elem {
            self.lines.push(format!("{path}.len = {}", l.count));
            for i in 0..l.count {
                let s = self.message.list_struct(l, i);
                self.fields(&format!("{path}[{i}]"), r.id, s);
            }
            return;
        }
        let items: Vec<String> = (0..l.count).map(|i| self.inline(elem, l, i)).collect();
        self.lines.push(format!("{path} = [{}]", items.join(", ")));
    }

    fn inline(&self, elem: &Type, l: ListRef, i: usize) -> String {
        if let Some(bits) = elem.data_bits() {
            return scalar(elem, self.message.list_value(l, i, bits as usize));
        }
        let target = self.message.resolve(self.message.list_pointer(l, i));
        match (elem, target) {
            (Type::Text, Target::List(t)) => {
                let mut b = self.message.bytes(t);
                b.pop();
                quote(&b)
            }
            (Type::Data, Target::List(t)) => hex(&self.message.bytes(t)),
            (Type::Text, _) => quote(b""),
            (Type::Data, _) => hex(b""),
            (Type::List(inner), Target::List(t)) => {
                let items: Vec<String> = (0..t.count).map(|j| self.inline(inner, t, j)).collect();
                format!("[{}]", items.join(", "))
            }
            (Type::List(_), _) => "[]".into(),
            (Type::Interface(_), Target::Cap(index)) => format!("cap:{index}"),
            (Type::Interface(_), _) => "cap:null".into(),
            (Type::AnyPointer, Target::Null) => "null".into(),
            (Type::AnyPointer, _) => "set".into(),
            (other, _) => panic!("unsupported inline list element {other:?}"),
        }
    }
}
