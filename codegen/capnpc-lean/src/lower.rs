//! Schema → IR: resolves every node to a Lean name, turns slot offsets into byte/bit positions
//! (checked against the struct's section sizes), and converts default values.
//!
//! Naming rules: a node nested in the schema keeps its path (`Calculator.Expression`); a group is
//! named after its field (`Expression.Apply`); a method's implicit parameter and result structs
//! are `<Interface>.<Method>Params` / `<Method>Results`. Generic parameters are erased to
//! `AnyPointer`.

use std::collections::{BTreeSet, HashMap, HashSet};

use capnp::schema_capnp::{code_generator_request, field, node, type_, value};

use crate::error::{malformed, unsupported, Result};
use crate::ir::{
    Const, ConstValue, Default, Enum, Enumerant, Field, FieldKind, IntType, Interface, Location,
    Method, Module, Schema, Slot, Struct, Type, TypeRef, Union,
};
use crate::names::{module_name, upper_first};

/// Id of `StreamResult` in `/capnp/stream.capnp`: the result type of `-> stream` methods.
pub const STREAM_RESULT_ID: u64 = 0x995f_9a33_77c0_b16e;

/// Names the generator itself declares inside every struct/interface namespace.
const RESERVED_NESTED: &[&str] = &[
    "Reader", "Builder", "Pipeline", "Which", "Client", "Server", "Methods", "typeId", "dataWords",
    "pointerCount", "interfaceId",
];

/// Lowers a whole request. `prefix` is the Lean module prefix (e.g. `Capnp.Gen`).
pub fn lower(request: code_generator_request::Reader<'_>, prefix: &str) -> Result<Schema> {
    let mut nodes = HashMap::new();
    for node in request.get_nodes()? {
        nodes.insert(node.get_id(), node);
    }
    let mut lowering =
        Lowering { nodes, names: HashMap::new(), order: HashMap::new(), file_modules: HashMap::new() };
    lowering.assign_names(prefix)?;
    let mut modules = Vec::new();
    for file in request.get_requested_files()? {
        modules.push(lowering.module(file.get_id())?);
    }
    Ok(Schema { modules })
}

struct Lowering<'a> {
    nodes: HashMap<u64, node::Reader<'a>>,
    /// Node id → (Lean module, name relative to the module).
    names: HashMap<u64, (String, String)>,
    /// File id → node ids declared in it, in the order they were named.
    order: HashMap<u64, Vec<u64>>,
    /// File id → Lean module.
    file_modules: HashMap<u64, String>,
}

impl<'a> Lowering<'a> {
    fn node(&self, id: u64, context: &str) -> Result<node::Reader<'a>> {
        self.nodes
            .get(&id)
            .copied()
            .ok_or_else(|| malformed(context, format!("refers to unknown node @0x{id:016x}")))
    }

    fn display(&self, id: u64) -> String {
        self.nodes
            .get(&id)
            .and_then(|n| n.get_display_name().ok())
            .and_then(|n| n.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| format!("@0x{id:016x}"))
    }

    fn type_ref(&self, id: u64, context: &str) -> Result<TypeRef> {
        let (module, name) = self
            .names
            .get(&id)
            .cloned()
            .ok_or_else(|| malformed(context, format!("refers to unnamed node @0x{id:016x}")))?;
        Ok(TypeRef { id, name, module })
    }

    /// Names every node reachable from a file node, then groups and method structs.
    fn assign_names(&mut self, prefix: &str) -> Result<()> {
        let mut files: Vec<(u64, String)> = Vec::new();
        for (id, node) in &self.nodes {
            if let node::Which::File(()) = node.which()? {
                files.push((*id, node.get_display_name()?.to_str()?.to_string()));
            }
        }
        files.sort();
        for (file_id, file_name) in files {
            let module = module_name(prefix, &file_name);
            let mut taken = HashSet::new();
            let mut order = Vec::new();
            self.name_nested(file_id, &module, "", &mut taken, &mut order)?;
            self.order.insert(file_id, order);
            self.file_modules.insert(file_id, module);
        }
        Ok(())
    }

    fn name_nested(
        &mut self,
        parent: u64,
        module: &str,
        path: &str,
        taken: &mut HashSet<String>,
        order: &mut Vec<u64>,
    ) -> Result<()> {
        let parent_node = self.node(parent, module)?;
        for nested in parent_node.get_nested_nodes()? {
            let name = nested.get_name()?.to_str()?.to_string();
            let full = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
            let id = nested.get_id();
            // The compiler only sends nodes of imported files that the requested files use.
            if !self.nodes.contains_key(&id) {
                continue;
            }
            if RESERVED_NESTED.contains(&name.as_str()) && !path.is_empty() {
                return Err(unsupported(
                    self.display(id),
                    format!("a nested declaration named `{name}` collides with the generated `{path}.{name}`; rename it"),
                ));
            }
            self.claim(id, module, &full, taken, order)?;
            self.name_nested(id, module, &full, taken, order)?;
            self.name_implicit(id, module, &full, taken, order)?;
        }
        Ok(())
    }

    fn claim(
        &mut self,
        id: u64,
        module: &str,
        full: &str,
        taken: &mut HashSet<String>,
        order: &mut Vec<u64>,
    ) -> Result<()> {
        if !taken.insert(full.to_string()) {
            return Err(unsupported(
                self.display(id),
                format!("the generated Lean name `{module}.{full}` is already used by another declaration; rename one of them"),
            ));
        }
        self.names.insert(id, (module.to_string(), full.to_string()));
        order.push(id);
        Ok(())
    }

    /// Names groups of a struct and implicit parameter/result structs of an interface.
    fn name_implicit(
        &mut self,
        id: u64,
        module: &str,
        path: &str,
        taken: &mut HashSet<String>,
        order: &mut Vec<u64>,
    ) -> Result<()> {
        let node = self.node(id, path)?;
        match node.which()? {
            node::Which::Struct(st) => {
                for field in st.get_fields()? {
                    if let field::Which::Group(group) = field.which()? {
                        let full = format!("{path}.{}", upper_first(field.get_name()?.to_str()?));
                        let group_id = group.get_type_id();
                        self.claim(group_id, module, &full, taken, order)?;
                        self.name_implicit(group_id, module, &full, taken, order)?;
                    }
                }
            }
            node::Which::Interface(iface) => {
                for method in iface.get_methods()? {
                    let method_name = upper_first(method.get_name()?.to_str()?);
                    for (struct_id, suffix) in [
                        (method.get_param_struct_type(), "Params"),
                        (method.get_result_struct_type(), "Results"),
                    ] {
                        let struct_node = self.node(struct_id, path)?;
                        if struct_node.get_scope_id() == 0 && !self.names.contains_key(&struct_id) {
                            let full = format!("{path}.{method_name}{suffix}");
                            self.claim(struct_id, module, &full, taken, order)?;
                            self.name_implicit(struct_id, module, &full, taken, order)?;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn module(&self, file_id: u64) -> Result<Module> {
        let file_node = self.node(file_id, "requested file")?;
        let source = file_node.get_display_name()?.to_str()?.to_string();
        let lean_module = self.file_modules[&file_id].clone();
        let mut module = Module {
            file_id,
            source,
            lean_module: lean_module.clone(),
            imports: Vec::new(),
            enums: Vec::new(),
            structs: Vec::new(),
            interfaces: Vec::new(),
            consts: Vec::new(),
        };
        let mut referenced = BTreeSet::new();
        for &id in self.order.get(&file_id).map(Vec::as_slice).unwrap_or(&[]) {
            let node = self.node(id, &module.source)?;
            let name = self.names[&id].1.clone();
            match node.which()? {
                node::Which::Struct(_) => {
                    let st = self.lower_struct(id, name)?;
                    collect_struct_refs(&st, &mut referenced);
                    module.structs.push(st);
                }
                node::Which::Enum(en) => {
                    let mut enumerants = Vec::new();
                    for (index, e) in en.get_enumerants()?.iter().enumerate() {
                        enumerants.push(Enumerant {
                            name: e.get_name()?.to_str()?.to_string(),
                            value: index as u16,
                        });
                    }
                    module.enums.push(Enum { id, name, enumerants });
                }
                node::Which::Interface(_) => {
                    let iface = self.lower_interface(id, name)?;
                    for (ancestor, _) in &iface.ancestors {
                        referenced.insert(ancestor.module.clone());
                    }
                    for method in iface.methods.iter().chain(iface.ancestors.iter().flat_map(|(_, m)| m)) {
                        referenced.insert(method.params.module.clone());
                        if !method.streaming {
                            referenced.insert(method.results.module.clone());
                        }
                    }
                    module.interfaces.push(iface);
                }
                node::Which::Const(c) => {
                    let location = self.display(id);
                    let ty = self.lower_type(c.get_type()?, &location)?;
                    collect_type_refs(&ty, &mut referenced);
                    let value = const_value(c.get_value()?, &location)?;
                    module.consts.push(Const { id, name, ty, value });
                }
                node::Which::Annotation(_) | node::Which::File(()) => {}
            }
        }
        referenced.remove(&lean_module);
        module.imports = referenced.into_iter().collect();
        Ok(module)
    }

    fn lower_struct(&self, id: u64, name: String) -> Result<Struct> {
        let node = self.node(id, &name)?;
        let source = self.display(id);
        let node::Which::Struct(st) = node.which()? else {
            return Err(malformed(source, "expected a struct node"));
        };
        let data_words = st.get_data_word_count();
        let pointer_count = st.get_pointer_count();
        let data_bits = u32::from(data_words) * 64;
        let union = if st.get_discriminant_count() > 0 {
            let byte = st.get_discriminant_offset() * 2;
            if (byte + 2) * 8 > data_bits {
                return Err(malformed(&source, "union discriminant lies outside the data section"));
            }
            Some(Union { discriminant_byte: byte })
        } else {
            None
        };
        let mut fields = Vec::new();
        for f in st.get_fields()? {
            let field_name = f.get_name()?.to_str()?.to_string();
            let location = format!("{source}.{field_name}");
            let discriminant = match f.get_discriminant_value() {
                field::NO_DISCRIMINANT => None,
                value => Some(value),
            };
            let kind = match f.which()? {
                field::Which::Group(group) => FieldKind::Group(self.type_ref(group.get_type_id(), &location)?),
                field::Which::Slot(slot) => {
                    let ty = self.lower_type(slot.get_type()?, &location)?;
                    let location_in_struct =
                        slot_location(&ty, slot.get_offset(), data_bits, pointer_count, &location)?;
                    let default = field_default(&ty, slot.get_default_value()?, &location)?;
                    FieldKind::Slot(Slot { ty, location: location_in_struct, default })
                }
            };
            fields.push(Field { name: field_name, code_order: f.get_code_order(), discriminant, kind });
        }
        fields.sort_by_key(|f| f.code_order);
        check_accessor_names(&fields, &source)?;
        Ok(Struct {
            id,
            name,
            source,
            data_words,
            pointer_count,
            is_group: st.get_is_group(),
            union,
            fields,
            generic: node.get_is_generic(),
        })
    }

    fn lower_interface(&self, id: u64, name: String) -> Result<Interface> {
        let node = self.node(id, &name)?;
        let source = self.display(id);
        let methods = self.methods_of(id)?;
        let node::Which::Interface(iface) = node.which()? else {
            return Err(malformed(source, "expected an interface node"));
        };
        let mut superclasses = Vec::new();
        for superclass in iface.get_superclasses()? {
            superclasses.push(self.type_ref(superclass.get_id(), &source)?);
        }
        // Breadth-first over the superclass graph, each ancestor once (diamonds are legal).
        let mut ancestors = Vec::new();
        let mut seen = HashSet::from([id]);
        let mut queue: Vec<TypeRef> = superclasses.clone();
        while !queue.is_empty() {
            let current = queue.remove(0);
            if !seen.insert(current.id) {
                continue;
            }
            let current_node = self.node(current.id, &source)?;
            if let node::Which::Interface(parent) = current_node.which()? {
                for s in parent.get_superclasses()? {
                    queue.push(self.type_ref(s.get_id(), &source)?);
                }
            }
            let parent_methods = self.methods_of(current.id)?;
            ancestors.push((current, parent_methods));
        }
        for method in methods.iter().chain(ancestors.iter().flat_map(|(_, m)| m)) {
            if ["cap", "dispatch", "serve"].contains(&method.name.as_str()) {
                return Err(unsupported(
                    format!("{source}.{}", method.name),
                    "this method name collides with a generated member of the client/server; rename the method",
                ));
            }
        }
        Ok(Interface { id, name, methods, superclasses, ancestors, generic: node.get_is_generic() })
    }

    fn methods_of(&self, id: u64) -> Result<Vec<Method>> {
        let node = self.node(id, "interface")?;
        let source = self.display(id);
        let node::Which::Interface(iface) = node.which()? else {
            return Err(malformed(source, "expected an interface node"));
        };
        let mut methods = Vec::new();
        for (ordinal, method) in iface.get_methods()?.iter().enumerate() {
            let method_name = method.get_name()?.to_str()?.to_string();
            let location = format!("{source}.{method_name}");
            let results_id = method.get_result_struct_type();
            let streaming = results_id == STREAM_RESULT_ID;
            let results = if streaming {
                TypeRef { id: results_id, name: "StreamResult".into(), module: "Capnp.Rpc".into() }
            } else {
                self.type_ref(results_id, &location)?
            };
            methods.push(Method {
                name: method_name,
                ordinal: ordinal as u16,
                params: self.type_ref(method.get_param_struct_type(), &location)?,
                results,
                streaming,
            });
        }
        Ok(methods)
    }

    fn lower_type(&self, ty: type_::Reader<'_>, location: &str) -> Result<Type> {
        let int = |bits, signed| Type::Int(IntType { bits, signed });
        Ok(match ty.which()? {
            type_::Void(()) => Type::Void,
            type_::Bool(()) => Type::Bool,
            type_::Int8(()) => int(8, true),
            type_::Int16(()) => int(16, true),
            type_::Int32(()) => int(32, true),
            type_::Int64(()) => int(64, true),
            type_::Uint8(()) => int(8, false),
            type_::Uint16(()) => int(16, false),
            type_::Uint32(()) => int(32, false),
            type_::Uint64(()) => int(64, false),
            type_::Float32(()) => Type::Float32,
            type_::Float64(()) => Type::Float64,
            type_::Text(()) => Type::Text,
            type_::Data(()) => Type::Data,
            type_::List(list) => Type::List(Box::new(self.lower_type(list.get_element_type()?, location)?)),
            type_::Enum(e) => Type::Enum(self.type_ref(e.get_type_id(), location)?),
            type_::Struct(s) => Type::Struct(self.type_ref(s.get_type_id(), location)?),
            type_::Interface(i) => Type::Interface(self.type_ref(i.get_type_id(), location)?),
            type_::AnyPointer(_) => Type::AnyPointer,
        })
    }
}

/// Converts a slot offset (in units of the field's size) into a checked position.
fn slot_location(ty: &Type, offset: u32, data_bits: u32, pointer_count: u16, location: &str) -> Result<Location> {
    match ty.data_bits() {
        Some(0) => Ok(Location::None),
        Some(bits) => {
            let start = u64::from(offset) * u64::from(bits);
            if start + u64::from(bits) > u64::from(data_bits) {
                return Err(malformed(location, format!(
                    "data field at bit {start} (width {bits}) lies outside the {data_bits}-bit data section"
                )));
            }
            Ok(if bits == 1 { Location::Bit(start as u32) } else { Location::Byte((start / 8) as u32) })
        }
        None => {
            if offset >= u32::from(pointer_count) {
                return Err(malformed(location, format!(
                    "pointer field {offset} lies outside the {pointer_count}-pointer section"
                )));
            }
            Ok(Location::Pointer(offset as u16))
        }
    }
}

fn field_default(ty: &Type, default: value::Reader<'_>, location: &str) -> Result<Default> {
    Ok(match const_value(default, location)? {
        ConstValue::Bits(0) => Default::None,
        ConstValue::Bits(bits) => Default::Bits(bits),
        ConstValue::Text(text) => Default::Text(text),
        ConstValue::Data(data) => Default::Data(data),
        ConstValue::Pointer(segment) if segment.iter().all(|b| *b == 0) => Default::None,
        ConstValue::Pointer(segment) => {
            debug_assert!(ty.data_bits().is_none());
            Default::Pointer(segment)
        }
    })
}

/// The value of a constant or default, as raw bits or pointer data.
fn const_value(value: value::Reader<'_>, location: &str) -> Result<ConstValue> {
    Ok(match value.which()? {
        value::Void(()) | value::Interface(()) => ConstValue::Bits(0),
        value::Bool(v) => ConstValue::Bits(u64::from(v)),
        value::Int8(v) => ConstValue::Bits(u64::from(v as u8)),
        value::Int16(v) => ConstValue::Bits(u64::from(v as u16)),
        value::Int32(v) => ConstValue::Bits(u64::from(v as u32)),
        value::Int64(v) => ConstValue::Bits(v as u64),
        value::Uint8(v) => ConstValue::Bits(u64::from(v)),
        value::Uint16(v) => ConstValue::Bits(u64::from(v)),
        value::Uint32(v) => ConstValue::Bits(u64::from(v)),
        value::Uint64(v) => ConstValue::Bits(v),
        value::Float32(v) => ConstValue::Bits(u64::from(v.to_bits())),
        value::Float64(v) => ConstValue::Bits(v.to_bits()),
        value::Enum(v) => ConstValue::Bits(u64::from(v)),
        value::Text(t) => {
            if !value.has_text() {
                return Ok(ConstValue::Bits(0));
            }
            ConstValue::Text(t?.to_str().map_err(|e| malformed(location, e.to_string()))?.to_string())
        }
        value::Data(d) => {
            if !value.has_data() {
                return Ok(ConstValue::Bits(0));
            }
            ConstValue::Data(d?.to_vec())
        }
        value::List(p) | value::Struct(p) | value::AnyPointer(p) => {
            if p.is_null() {
                return Ok(ConstValue::Bits(0));
            }
            let mut message = capnp::message::Builder::new_default();
            message.set_root_canonical(p)?;
            let segments = message.get_segments_for_output();
            if segments.len() != 1 {
                return Err(malformed(location, "canonical default value spans several segments"));
            }
            ConstValue::Pointer(segments[0].to_vec())
        }
    })
}

/// Two fields whose generated accessors would have the same name are rejected.
fn check_accessor_names(fields: &[Field], source: &str) -> Result<()> {
    let mut seen = HashSet::new();
    for field in fields {
        let accessor = upper_first(&field.name);
        if !seen.insert(accessor.clone()) {
            return Err(unsupported(
                format!("{source}.{}", field.name),
                format!("two fields map to the same Lean accessor `get{accessor}`"),
            ));
        }
        if field.name == "otherDiscriminant" && field.discriminant.is_some() {
            return Err(unsupported(
                format!("{source}.{}", field.name),
                "`otherDiscriminant` is the generated name for unknown union members; rename the field",
            ));
        }
    }
    Ok(())
}

fn collect_type_refs(ty: &Type, out: &mut BTreeSet<String>) {
    match ty {
        Type::List(inner) => collect_type_refs(inner, out),
        Type::Enum(r) | Type::Struct(r) | Type::Interface(r) => {
            out.insert(r.module.clone());
        }
        _ => {}
    }
}

fn collect_struct_refs(st: &Struct, out: &mut BTreeSet<String>) {
    for field in &st.fields {
        match &field.kind {
            FieldKind::Slot(slot) => collect_type_refs(&slot.ty, out),
            FieldKind::Group(r) => {
                out.insert(r.module.clone());
            }
        }
    }
}
