//! Enums, structs (readers, builders, pipelines, unions) and constants.

use super::{accessor, bytes_literal, const_parts, ident, string_literal, Lean};
use crate::ir::{Const, ConstValue, Default, Enum, Field, FieldKind, Location, Slot, Struct, Type};
use crate::names::escape_path;

pub(crate) fn enum_decl(out: &mut Lean, en: &Enum) {
    let name = escape_path(&en.name);
    out.line(&format!("/-- Enum `{}` (id 0x{:016x}). Unknown wire values are kept in `raw`. -/", en.name, en.id));
    out.line(&format!("structure {name} where"));
    out.line("  raw : UInt16");
    out.line("deriving BEq, Repr, Inhabited");
    out.blank();
    for e in &en.enumerants {
        out.line(&format!("def {name}.{} : {name} := ⟨{}⟩", ident(&e.name), e.value));
    }
    out.line("/-- The schema name of a known enumerant. -/");
    out.line(&format!("def {name}.name? (e : {name}) : Option String :="));
    out.line("  match e.raw.toNat with");
    for e in &en.enumerants {
        out.line(&format!("  | {} => some {}", e.value, string_literal(&e.name)));
    }
    out.line("  | _ => none");
    out.line(&format!("instance : Capnp.PrimElem {name} := Capnp.PrimElem.viaUInt16 (·.raw) (⟨·⟩)"));
    out.blank();
}

/// Reader, Builder and Pipeline wrappers, plus layout constants.
pub(crate) fn wrapper_types(out: &mut Lean, st: &Struct) {
    let name = escape_path(&st.name);
    let what = if st.is_group { "group" } else { "struct" };
    let erased = if st.generic { " Generic parameters are erased to `AnyPointer`." } else { "" };
    out.line(&format!("/-- Reads {what} `{}`.{erased} -/", st.source));
    out.line(&format!("structure {name}.Reader where"));
    out.line("  struct : Capnp.StructReader");
    out.line(&format!("/-- Builds {what} `{}`. -/", st.source));
    out.line(&format!("structure {name}.Builder where"));
    out.line("  struct : Capnp.StructBuilder");
    out.line(&format!("/-- A promised `{}` inside the results of a pending call. -/", st.name));
    out.line(&format!("structure {name}.Pipeline where"));
    out.line("  call : Capnp.Rpc.PendingCall");
    out.line("  path : Array UInt16");
    if !st.is_group {
        out.line(&format!("def {name}.typeId : UInt64 := 0x{:016x}", st.id));
        out.line(&format!("def {name}.dataWords : Nat := {}", st.data_words));
        out.line(&format!("def {name}.pointerCount : Nat := {}", st.pointer_count));
        out.line(&format!(
            "instance : Capnp.StructReaderType {name}.Reader := ⟨{}, {}, (⟨·⟩)⟩",
            st.data_words, st.pointer_count
        ));
        out.line(&format!(
            "instance : Capnp.StructBuilderType {name}.Builder := ⟨{}, {}, (⟨·⟩)⟩",
            st.data_words, st.pointer_count
        ));
    }
    out.blank();
}

/// The `Which` inductive of a struct with a union.
pub(crate) fn which_type(out: &mut Lean, st: &Struct) {
    if st.union.is_none() {
        return;
    }
    let name = escape_path(&st.name);
    out.line(&format!("/-- Which member of the union of `{}` is set. -/", st.name));
    out.line(&format!("inductive {name}.Which where"));
    for field in st.fields.iter().filter(|f| f.discriminant.is_some()) {
        let payload = match &field.kind {
            FieldKind::Slot(Slot { ty: Type::Void, .. }) => None,
            FieldKind::Slot(slot) => Some(out.reader_type(&slot.ty)),
            FieldKind::Group(r) => Some(format!("{}.Reader", out.name(r))),
        };
        match payload {
            None => out.line(&format!("  | {}", ident(&field.name))),
            Some(ty) => out.line(&format!("  | {} (value : {ty})", ident(&field.name))),
        }
    }
    out.line("  | otherDiscriminant (value : UInt16)");
    out.blank();
}

pub(crate) fn accessors(out: &mut Lean, st: &Struct) {
    let name = escape_path(&st.name);
    for field in &st.fields {
        reader_accessor(out, &name, field);
        builder_accessor(out, st, &name, field);
        pipeline_accessor(out, &name, field);
    }
    if let Some(union) = &st.union {
        out.line(&format!("/-- The union member currently set in `{}`. -/", st.name));
        out.line(&format!("def {name}.Reader.which (r : {name}.Reader) : Capnp.ReadM {name}.Which := do"));
        out.line(&format!("  match (r.struct.getU16 {}).toNat with", union.discriminant_byte));
        for field in st.fields.iter().filter(|f| f.discriminant.is_some()) {
            let d = field.discriminant.unwrap_or_default();
            let ctor = ident(&field.name);
            let get = format!("r.get{}", accessor(&field.name));
            let line = match &field.kind {
                FieldKind::Slot(Slot { ty: Type::Void, .. }) => format!("return .{ctor}"),
                FieldKind::Slot(slot) if reads_in_monad(&slot.ty) => format!("return .{ctor} (← {get})"),
                _ => format!("return .{ctor} {get}"),
            };
            out.line(&format!("  | {d} => {line}"));
        }
        out.line("  | d => return .otherDiscriminant d.toUInt16");
    }
    out.blank();
}

/// Pointer reads can fail (bounds, limits) so they live in `ReadM`; data reads cannot.
fn reads_in_monad(ty: &Type) -> bool {
    matches!(ty, Type::Text | Type::Data | Type::List(_) | Type::Struct(_) | Type::Interface(_))
}

fn default_name(struct_name: &str, field: &Field) -> String {
    format!("{struct_name}.{}Default", ident(&field.name))
}

fn reader_accessor(out: &mut Lean, name: &str, field: &Field) {
    let get = format!("{name}.Reader.get{}", accessor(&field.name));
    let slot = match &field.kind {
        FieldKind::Group(r) => {
            let group = out.name(r);
            out.line(&format!("def {get} (r : {name}.Reader) : {group}.Reader := ⟨r.struct⟩"));
            return;
        }
        FieldKind::Slot(slot) => slot,
    };
    let ty = out.reader_type(&slot.ty);
    match (&slot.ty, slot.location) {
        (_, Location::None) => {}
        (Type::Bool, Location::Bit(bit)) => {
            let flip = if slot.default == Default::Bits(1) { "!" } else { "" };
            out.line(&format!("def {get} (r : {name}.Reader) : Bool := {flip}(r.struct.getBool {bit})"));
        }
        (_, Location::Byte(byte)) => {
            let bits = slot.ty.data_bits().unwrap_or(64);
            let raw = format!("(r.struct.getU{bits} {byte}{})", xor_mask(&slot.default));
            let value = from_raw(&slot.ty, &raw, out);
            out.line(&format!("def {get} (r : {name}.Reader) : {ty} := {value}"));
        }
        (_, Location::Pointer(index)) => {
            let ptr = format!("(r.struct.ptr {index})");
            let pointer_default = match &slot.default {
                Default::Pointer(segment) => {
                    let default = default_name(name, field);
                    out.line(&format!(
                        "def {default} : Capnp.Message := Capnp.Message.ofSegment ({})",
                        bytes_literal(segment)
                    ));
                    format!("(some {default})")
                }
                _ => "none".into(),
            };
            let body = match &slot.ty {
                Type::Text => {
                    let d = match &slot.default { Default::Text(t) => string_literal(t), _ => "\"\"".into() };
                    format!("{ptr}.readTextOr {d}")
                }
                Type::Data => {
                    let d = match &slot.default { Default::Data(b) => bytes_literal(b), _ => "ByteArray.empty".into() };
                    format!("{ptr}.readDataOr ({d})")
                }
                Type::Struct(_) => format!("do return ⟨← {ptr}.readStructOr {pointer_default}⟩"),
                Type::List(_) => format!("Capnp.ListOf.read {ptr} {pointer_default}"),
                Type::Interface(_) => format!("do return ⟨← {ptr}.readCap⟩"),
                _ => {
                    out.line(&format!("def {get} (r : {name}.Reader) : Capnp.PointerReader := {ptr}"));
                    out.line(&format!("def {name}.Reader.has{} (r : {name}.Reader) : Bool := !{ptr}.isNull", accessor(&field.name)));
                    return;
                }
            };
            out.line(&format!("def {get} (r : {name}.Reader) : Capnp.ReadM ({ty}) :="));
            out.line(&format!("  {body}"));
            out.line(&format!("def {name}.Reader.has{} (r : {name}.Reader) : Bool := !{ptr}.isNull", accessor(&field.name)));
        }
        _ => {}
    }
}

fn xor_mask(default: &Default) -> String {
    match default {
        Default::Bits(bits) => format!(" ^^^ 0x{bits:x}"),
        _ => String::new(),
    }
}

/// Converts raw unsigned bits into the field's Lean type.
fn from_raw(ty: &Type, raw: &str, out: &Lean) -> String {
    match ty {
        Type::Int(int) if int.signed => format!("{raw}.to{}", super::int_type(*int)),
        Type::Float32 => format!("Float32.ofBits {raw}"),
        Type::Float64 => format!("Float.ofBits {raw}"),
        Type::Enum(r) => format!("({{ raw := {raw} }} : {})", out.name(r)),
        _ => raw.to_string(),
    }
}

/// Converts a Lean value `v` into raw unsigned bits.
fn to_raw(ty: &Type) -> String {
    match ty {
        Type::Int(int) if int.signed => format!("v.toUInt{}", int.bits),
        Type::Float32 | Type::Float64 => "v.toBits".into(),
        Type::Enum(_) => "v.raw".into(),
        _ => "v".into(),
    }
}

fn builder_accessor(out: &mut Lean, st: &Struct, name: &str, field: &Field) {
    let acc = accessor(&field.name);
    let b = format!("(b : {name}.Builder)");
    // Union members first record which member is set.
    let disc = match (field.discriminant, &st.union) {
        (Some(d), Some(u)) => format!("b.struct.setU16 {} {d}; ", u.discriminant_byte),
        _ => String::new(),
    };
    let slot = match &field.kind {
        FieldKind::Group(r) => {
            let group = out.name(r);
            if disc.is_empty() {
                out.line(&format!("def {name}.Builder.get{acc} {b} : {group}.Builder := ⟨b.struct⟩"));
            } else {
                out.line(&format!(
                    "def {name}.Builder.init{acc} {b} : Capnp.BuildM {group}.Builder := do {disc}return ⟨b.struct⟩"
                ));
            }
            return;
        }
        FieldKind::Slot(slot) => slot,
    };
    match (&slot.ty, slot.location) {
        (_, Location::None) if !disc.is_empty() => {
            out.line(&format!("def {name}.Builder.set{acc} {b} : Capnp.BuildM Unit := do {disc}pure ()"));
        }
        (_, Location::None) => {}
        (Type::Bool, Location::Bit(bit)) => {
            let flip = if slot.default == Default::Bits(1) { "!" } else { "" };
            out.line(&format!(
                "def {name}.Builder.set{acc} {b} (v : Bool) : Capnp.BuildM Unit := do {disc}b.struct.setBool {bit} ({flip}v)"
            ));
        }
        (_, Location::Byte(byte)) => {
            let bits = slot.ty.data_bits().unwrap_or(64);
            let ty = out.reader_type(&slot.ty);
            let raw = format!("({}{})", to_raw(&slot.ty), xor_mask(&slot.default));
            out.line(&format!(
                "def {name}.Builder.set{acc} {b} (v : {ty}) : Capnp.BuildM Unit := do {disc}b.struct.setU{bits} {byte} {raw}"
            ));
        }
        (_, Location::Pointer(index)) => {
            let ptr = format!("(b.struct.ptr {index})");
            match &slot.ty {
                Type::Text => out.line(&format!(
                    "def {name}.Builder.set{acc} {b} (v : String) : Capnp.BuildM Unit := do {disc}{ptr}.setText v"
                )),
                Type::Data => out.line(&format!(
                    "def {name}.Builder.set{acc} {b} (v : ByteArray) : Capnp.BuildM Unit := do {disc}{ptr}.setData v"
                )),
                Type::Struct(r) => {
                    let target = out.name(r);
                    out.line(&format!(
                        "def {name}.Builder.init{acc} {b} : Capnp.BuildM {target}.Builder := do {disc}return ⟨← {ptr}.initStruct {target}.dataWords {target}.pointerCount⟩"
                    ));
                    out.line(&format!(
                        "def {name}.Builder.set{acc} {b} (v : {target}.Reader) : Capnp.BuildM Unit := do {disc}{ptr}.setStruct v.struct"
                    ));
                }
                Type::List(inner) => {
                    let elem = out.builder_elem_type(inner);
                    let reader = out.reader_type(&slot.ty);
                    out.line(&format!(
                        "def {name}.Builder.init{acc} {b} (n : Nat) : Capnp.BuildM (Capnp.BuildList ({elem})) := do {disc}Capnp.BuildList.initAt {ptr} n"
                    ));
                    out.line(&format!(
                        "def {name}.Builder.set{acc} {b} (v : {reader}) : Capnp.BuildM Unit := do {disc}{ptr}.setList v.list"
                    ));
                }
                Type::Interface(r) => {
                    let client = out.name(r);
                    out.line(&format!(
                        "def {name}.Builder.set{acc} {b} (v : {client}.Client) : Capnp.BuildM Unit := do {disc}{ptr}.setCap v.cap"
                    ));
                }
                _ => out.line(&format!(
                    "def {name}.Builder.get{acc} {b} : Capnp.BuildM Capnp.PointerSlot := do {disc}return {ptr}"
                )),
            }
        }
        _ => {}
    }
}

fn pipeline_accessor(out: &mut Lean, name: &str, field: &Field) {
    let acc = accessor(&field.name);
    let p = format!("(p : {name}.Pipeline)");
    match &field.kind {
        FieldKind::Group(r) => {
            let group = out.name(r);
            out.line(&format!("def {name}.Pipeline.get{acc} {p} : {group}.Pipeline := ⟨p.call, p.path⟩"));
        }
        FieldKind::Slot(Slot { ty: Type::Struct(r), location: Location::Pointer(i), .. }) => {
            let target = out.name(r);
            out.line(&format!(
                "def {name}.Pipeline.get{acc} {p} : {target}.Pipeline := ⟨p.call, p.path.push {i}⟩"
            ));
        }
        FieldKind::Slot(Slot { ty: Type::Interface(r), location: Location::Pointer(i), .. }) => {
            let client = out.name(r);
            out.line(&format!(
                "def {name}.Pipeline.get{acc} {p} : Capnp.Rpc.RpcM {client}.Client := do return ⟨← Capnp.Rpc.pipelineCap p.call (p.path.push {i})⟩"
            ));
        }
        _ => {}
    }
}

pub(crate) fn constant(out: &mut Lean, constant: &Const) {
    let name = escape_path(&constant.name);
    let segment_name = format!("{}Segment", escape_path(&constant.name));
    if let ConstValue::Pointer(segment) = &constant.value {
        out.line(&format!("/-- The encoded value of constant `{}`. -/", constant.name));
        out.line(&format!("def {segment_name} : ByteArray := {}", bytes_literal(segment)));
    }
    let (ty, value) = const_parts(&constant.ty, &constant.value, &segment_name, out);
    out.line(&format!("/-- Constant `{}` (id 0x{:016x}). -/", constant.name, constant.id));
    out.line(&format!("def {name} : {ty} :="));
    out.line(&format!("  {value}"));
    out.blank();
}
