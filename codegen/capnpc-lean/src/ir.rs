//! The intermediate representation between the compiler's schema nodes and the Lean emitter.
//!
//! Everything here is resolved: every type reference carries the Lean name of its target, every
//! field carries its byte/bit/pointer position, and default values are already in the form the
//! emitter writes (XOR masks for data fields, literal text, canonical segments for pointers). The
//! emitter therefore never looks at a schema node.

/// All modules generated from one `CodeGeneratorRequest`, in the order the files were requested.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// One entry per requested `.capnp` file.
    pub modules: Vec<Module>,
}

/// One `.capnp` file, which becomes one Lean module.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// The file node's id.
    pub file_id: u64,
    /// The file name as the compiler reported it (e.g. `calculator.capnp`).
    pub source: String,
    /// Lean module name, e.g. `Capnp.Gen.Calculator`; also the namespace of every declaration.
    pub lean_module: String,
    /// Lean modules this one imports (other generated files), sorted and deduplicated.
    pub imports: Vec<String>,
    /// Enums declared anywhere in the file (nested ones included), in declaration order.
    pub enums: Vec<Enum>,
    /// Structs (including groups and method parameter/result structs) in declaration order.
    pub structs: Vec<Struct>,
    /// Interfaces in declaration order.
    pub interfaces: Vec<Interface>,
    /// Constants in declaration order.
    pub consts: Vec<Const>,
}

/// A reference to a named declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    /// Node id of the target.
    pub id: u64,
    /// Lean name of the target relative to its module's namespace, e.g. `Calculator.Expression`.
    pub name: String,
    /// The Lean module declaring it.
    pub module: String,
}

impl TypeRef {
    /// The name to use from inside `from_module`: relative when local, fully qualified otherwise.
    pub fn name_from(&self, from_module: &str) -> String {
        if self.module == from_module {
            self.name.clone()
        } else {
            format!("{}.{}", self.module, self.name)
        }
    }
}

/// Width and signedness of an integer field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntType {
    /// Bits: 8, 16, 32 or 64.
    pub bits: u8,
    /// Two's complement signed (`Int8`…) or unsigned (`UInt8`…).
    pub signed: bool,
}

/// A field or element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// `Void`: no storage.
    Void,
    /// `Bool`: one bit.
    Bool,
    /// Any integer type.
    Int(IntType),
    /// `Float32`.
    Float32,
    /// `Float64`.
    Float64,
    /// `Text`.
    Text,
    /// `Data`.
    Data,
    /// `List(T)`.
    List(Box<Type>),
    /// An enum.
    Enum(TypeRef),
    /// A struct (generic brands erased: its parameter-typed fields are `AnyPointer`).
    Struct(TypeRef),
    /// An interface (generic brands erased).
    Interface(TypeRef),
    /// `AnyPointer`, and every generic type parameter (erased).
    AnyPointer,
}

impl Type {
    /// Size of one value in a struct's data section, in bits; `None` for pointer types.
    pub fn data_bits(&self) -> Option<u32> {
        match self {
            Type::Void => Some(0),
            Type::Bool => Some(1),
            Type::Int(int) => Some(u32::from(int.bits)),
            Type::Float32 => Some(32),
            Type::Float64 => Some(64),
            Type::Enum(_) => Some(16),
            _ => None,
        }
    }
}

/// Where a field lives inside its struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// No storage (Void).
    None,
    /// A bit in the data section (Bool): absolute bit offset.
    Bit(u32),
    /// A value in the data section: absolute byte offset.
    Byte(u32),
    /// A pointer slot: index in the pointer section.
    Pointer(u16),
}

/// A default value in emitter-ready form.
#[derive(Debug, Clone, PartialEq)]
pub enum Default {
    /// No default beyond the zero value.
    None,
    /// XOR mask for a data field (the stored bits are `value ^ mask`).
    Bits(u64),
    /// Default for a Text field.
    Text(String),
    /// Default for a Data field.
    Data(Vec<u8>),
    /// Default for a struct, list or AnyPointer field: one canonical segment whose root pointer
    /// holds the value.
    Pointer(Vec<u8>),
}

/// A struct field that occupies a slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Field type.
    pub ty: Type,
    /// Where the value is stored.
    pub location: Location,
    /// Default value.
    pub default: Default,
}

/// What a field is.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// A value stored in the struct.
    Slot(Slot),
    /// A group: its fields share this struct's sections.
    Group(TypeRef),
}

/// A field of a struct or group.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Schema name (camelCase).
    pub name: String,
    /// Position in declaration order.
    pub code_order: u16,
    /// `Some(value)` when the field is a union member.
    pub discriminant: Option<u16>,
    /// Storage or group.
    pub kind: FieldKind,
}

/// A struct's unnamed union (or a named union, which is a group with a union).
#[derive(Debug, Clone, PartialEq)]
pub struct Union {
    /// Byte offset of the 16-bit discriminant in the data section.
    pub discriminant_byte: u32,
}

/// A struct, a group, or a method's implicit parameter/result struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    /// Node id.
    pub id: u64,
    /// Lean name relative to the module namespace.
    pub name: String,
    /// Where it was declared (`file:Path.To.Node`), for messages.
    pub source: String,
    /// Data section size in words.
    pub data_words: u16,
    /// Pointer section size.
    pub pointer_count: u16,
    /// True for groups (they have no wire identity of their own).
    pub is_group: bool,
    /// The union, if any.
    pub union: Option<Union>,
    /// Fields in declaration (code) order.
    pub fields: Vec<Field>,
    /// True when the struct has generic parameters (erased to AnyPointer).
    pub generic: bool,
}

/// One enumerant.
#[derive(Debug, Clone, PartialEq)]
pub struct Enumerant {
    /// Schema name.
    pub name: String,
    /// Wire value.
    pub value: u16,
}

/// An enum.
#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    /// Node id.
    pub id: u64,
    /// Lean name relative to the module namespace.
    pub name: String,
    /// Enumerants in value order.
    pub enumerants: Vec<Enumerant>,
}

/// A method of an interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    /// Schema name.
    pub name: String,
    /// Method ordinal (its id on the wire).
    pub ordinal: u16,
    /// Parameter struct.
    pub params: TypeRef,
    /// Result struct; for streaming methods this is `StreamResult`.
    pub results: TypeRef,
    /// True for `-> stream` methods.
    pub streaming: bool,
}

/// An interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Node id: the interface id on the wire.
    pub id: u64,
    /// Lean name relative to the module namespace.
    pub name: String,
    /// Own methods in ordinal order.
    pub methods: Vec<Method>,
    /// Direct superclasses.
    pub superclasses: Vec<TypeRef>,
    /// Every ancestor (transitively, each once, nearest first), with its methods: what the
    /// server dispatcher must answer besides the interface's own methods.
    pub ancestors: Vec<(TypeRef, Vec<Method>)>,
    /// True when the interface has generic parameters (erased to AnyPointer).
    pub generic: bool,
}

/// A constant's value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstValue {
    /// Void, Bool, numbers and enums: raw bits of the value.
    Bits(u64),
    /// A Text constant.
    Text(String),
    /// A Data constant.
    Data(Vec<u8>),
    /// A struct, list or AnyPointer constant: canonical segment with the value at the root.
    Pointer(Vec<u8>),
}

/// A constant.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// Node id.
    pub id: u64,
    /// Lean name relative to the module namespace.
    pub name: String,
    /// Type of the constant.
    pub ty: Type,
    /// Its value.
    pub value: ConstValue,
}
