//! Sample messages written with capnpc-rust generated builders. Each sample records, next to
//! every value it sets, the manifest line a correct reader must produce for it.

use capnp::message::{Builder, HeapAllocator};

use super::test_all_capnp::{all_types, defaults, outer, shape, uses_generics, TestEnum};
use super::test_import_capnp::Color;

/// A vector: name, root struct id, message, expected manifest lines.
pub struct Sample {
    pub name: &'static str,
    pub root_struct: u64,
    pub message: Builder<HeapAllocator>,
    pub manifest: Vec<String>,
}

#[derive(Default)]
struct Manifest(Vec<String>);

impl Manifest {
    fn add(&mut self, path: &str, value: impl std::fmt::Display) {
        self.0.push(format!("{path} = {value}"));
    }
}

fn f32_bits(v: f32) -> String {
    format!("bits:0x{:08x}", v.to_bits())
}

fn f64_bits(v: f64) -> String {
    format!("bits:0x{:016x}", v.to_bits())
}

/// A builder whose first segment is tiny and which never grows segments, so most pointers
/// cross segments: far pointers and landing pads.
pub fn fragmented_builder() -> Builder<HeapAllocator> {
    Builder::new(
        HeapAllocator::new()
            .first_segment_words(4)
            .allocation_strategy(capnp::message::AllocationStrategy::FixedSize),
    )
}

pub fn all_samples() -> Vec<Sample> {
    let mut samples = vec![
        all_types_sample("all_types", Builder::new_default()),
        all_types_sample("all_types_fragmented", fragmented_builder()),
        defaults_unset(),
        defaults_set(),
        outer_sample(),
        generics_sample(),
        calculator_sample(),
    ];
    samples.extend(shape_samples());
    samples
}

fn all_types_sample(name: &'static str, mut message: Builder<HeapAllocator>) -> Sample {
    let mut m = Manifest::default();
    let mut root = message.init_root::<all_types::Builder>();
    fill_scalars(&mut root, &mut m, "", 1);
    root.set_text_field("hello \"lean\"\n\u{e9}");
    m.add("textField", "\"hello \\\"lean\\\"\\n\\xc3\\xa9\"");
    root.set_data_field(&[0, 1, 0xfe, 0xff]);
    m.add("dataField", "0x0001feff");
    {
        let mut nested = root.reborrow().init_struct_field();
        fill_scalars(&mut nested, &mut m, "structField.", -1);
        nested.set_text_field("nested");
        m.add("structField.textField", "\"nested\"");
        m.add("structField.dataField", "0x");
        m.add("structField.structField", "null");
        nested.set_enum_field(TestEnum::End);
        m.add("structField.enumField", 4);
        m.add("structField.importedEnum", 0);
        m.add("structField.importedStruct", "null");
        for list in [
            "boolList", "int8List", "int16List", "int32List", "int64List", "uint8List", "uint16List",
            "uint32List", "uint64List", "float32List", "float64List", "textList", "dataList",
        ] {
            m.add(&format!("structField.{list}"), "[]");
        }
        m.add("structField.structList", "[]");
        for list in ["enumList", "voidList", "listList", "textListList"] {
            m.add(&format!("structField.{list}"), "[]");
        }
        m.add("structField.interfaceField", "cap:null");
        m.add("structField.anyField", "null");
    }
    root.set_enum_field(TestEnum::Bar);
    m.add("enumField", 1);
    root.set_imported_enum(Color::Green);
    m.add("importedEnum", 1);
    {
        let mut point = root.reborrow().init_imported_struct();
        point.set_x(-5);
        point.set_y(6);
        point.set_label("p");
        m.add("importedStruct.x", -5);
        m.add("importedStruct.y", 6);
        m.add("importedStruct.label", "\"p\"");
    }
    root.set_bool_list(&[true, false, true][..]).unwrap();
    m.add("boolList", "[true, false, true]");
    root.set_int8_list(&[-128, 127][..]).unwrap();
    m.add("int8List", "[-128, 127]");
    root.set_int16_list(&[-32768, 1][..]).unwrap();
    m.add("int16List", "[-32768, 1]");
    root.set_int32_list(&[i32::MIN, 0, i32::MAX][..]).unwrap();
    m.add("int32List", format!("[{}, 0, {}]", i32::MIN, i32::MAX));
    root.set_int64_list(&[i64::MIN, i64::MAX][..]).unwrap();
    m.add("int64List", format!("[{}, {}]", i64::MIN, i64::MAX));
    root.set_uint8_list(&[0, 255][..]).unwrap();
    m.add("uint8List", "[0, 255]");
    root.set_uint16_list(&[65535][..]).unwrap();
    m.add("uint16List", "[65535]");
    root.set_uint32_list(&[1, 4294967295][..]).unwrap();
    m.add("uint32List", "[1, 4294967295]");
    root.set_uint64_list(&[u64::MAX][..]).unwrap();
    m.add("uint64List", format!("[{}]", u64::MAX));
    root.set_float32_list(&[1.5f32, -0.0][..]).unwrap();
    m.add("float32List", format!("[{}, {}]", f32_bits(1.5), f32_bits(-0.0)));
    root.set_float64_list(&[std::f64::consts::PI, f64::INFINITY][..]).unwrap();
    m.add("float64List", format!("[{}, {}]", f64_bits(std::f64::consts::PI), f64_bits(f64::INFINITY)));
    root.set_text_list(&["one", "", "three"][..]).unwrap();
    m.add("textList", "[\"one\", \"\", \"three\"]");
    {
        let mut data = root.reborrow().init_data_list(2);
        data.set(0, &[0xab]);
        data.set(1, &[]);
        m.add("dataList", "[0xab, 0x]");
    }
    {
        let mut points = root.reborrow().init_struct_list(2);
        m.add("structList.len", 2);
        for i in 0..2u32 {
            let mut p = points.reborrow().get(i);
            p.set_x(i as i32 * 10);
            p.set_y(-(i as i32));
            p.set_label(format!("pt{i}").as_str());
            m.add(&format!("structList[{i}].x"), i * 10);
            m.add(&format!("structList[{i}].y"), -(i as i32));
            m.add(&format!("structList[{i}].label"), format!("\"pt{i}\""));
        }
    }
    root.set_enum_list(&[TestEnum::Qux, TestEnum::Foo][..]).unwrap();
    m.add("enumList", "[3, 0]");
    root.reborrow().init_void_list(3);
    m.add("voidList", "[void, void, void]");
    {
        let mut lists = root.reborrow().init_list_list(3);
        { let mut first = lists.reborrow().init(0, 2); first.set(0, 1); first.set(1, 2); }
        lists.reborrow().init(1, 0);
        lists.reborrow().init(2, 1).set(0, -3);
        m.add("listList", "[[1, 2], [], [-3]]");
    }
    {
        let mut lists = root.reborrow().init_text_list_list(2);
        let mut first = lists.reborrow().init(0, 2);
        first.set(0, "a");
        first.set(1, "b");
        lists.reborrow().init(1, 1).set(0, "c");
        m.add("textListList", "[[\"a\", \"b\"], [\"c\"]]");
    }
    m.add("interfaceField", "cap:null");
    root.reborrow().init_any_field().set_as("any").unwrap();
    m.add("anyField", "set");
    // The manifest follows declaration order, which the samples above did not.
    let manifest = order_like_declaration(m.0);
    Sample { name, root_struct: id_of::<all_types::Reader<'static>>(), message, manifest }
}

/// Every scalar field of AllTypes, with values that differ in sign/size per `sign`.
fn fill_scalars(root: &mut all_types::Builder<'_>, m: &mut Manifest, prefix: &str, sign: i64) {
    let p = |name: &str| format!("{prefix}{name}");
    root.set_void_field(());
    m.add(&p("voidField"), "void");
    root.set_bool_field(sign > 0);
    m.add(&p("boolField"), sign > 0);
    root.set_int8_field((-100 * sign) as i8);
    m.add(&p("int8Field"), -100 * sign);
    root.set_int16_field((-30000 * sign) as i16);
    m.add(&p("int16Field"), -30000 * sign);
    root.set_int32_field((-2_000_000_000 * sign) as i32);
    m.add(&p("int32Field"), -2_000_000_000 * sign);
    root.set_int64_field(-9_000_000_000_000_000_000 * sign);
    m.add(&p("int64Field"), -9_000_000_000_000_000_000 * sign);
    root.set_uint8_field(if sign > 0 { 250 } else { 1 });
    m.add(&p("uint8Field"), if sign > 0 { 250 } else { 1 });
    root.set_uint16_field(if sign > 0 { 65000 } else { 2 });
    m.add(&p("uint16Field"), if sign > 0 { 65000 } else { 2 });
    root.set_uint32_field(if sign > 0 { 4_000_000_000 } else { 3 });
    m.add(&p("uint32Field"), if sign > 0 { 4_000_000_000u32 } else { 3 });
    root.set_uint64_field(if sign > 0 { 18_000_000_000_000_000_000 } else { 4 });
    m.add(&p("uint64Field"), if sign > 0 { 18_000_000_000_000_000_000u64 } else { 4 });
    let f = 1234.5f32 * sign as f32;
    root.set_float32_field(f);
    m.add(&p("float32Field"), f32_bits(f));
    let d = -1.0e-300 * sign as f64;
    root.set_float64_field(d);
    m.add(&p("float64Field"), f64_bits(d));
}

fn order_like_declaration(lines: Vec<String>) -> Vec<String> {
    const ORDER: &[&str] = &[
        "voidField", "boolField", "int8Field", "int16Field", "int32Field", "int64Field", "uint8Field",
        "uint16Field", "uint32Field", "uint64Field", "float32Field", "float64Field", "textField",
        "dataField", "structField", "enumField", "importedEnum", "importedStruct", "boolList",
        "int8List", "int16List", "int32List", "int64List", "uint8List", "uint16List", "uint32List",
        "uint64List", "float32List", "float64List", "textList", "dataList", "structList", "enumList",
        "voidList", "listList", "textListList", "interfaceField", "anyField",
    ];
    let rank = |line: &str| {
        let mut key = Vec::new();
        for part in line.split(" = ").next().unwrap().split('.') {
            let name = part.split('[').next().unwrap();
            key.push(ORDER.iter().position(|o| *o == name).unwrap_or(usize::MAX));
        }
        key
    };
    let mut indexed: Vec<(Vec<usize>, usize, String)> =
        lines.into_iter().enumerate().map(|(i, l)| (rank(&l), i, l)).collect();
    indexed.sort();
    indexed.into_iter().map(|(_, _, l)| l).collect()
}

fn id_of<T: capnp::traits::HasTypeId>() -> u64 {
    T::TYPE_ID
}

fn defaults_unset() -> Sample {
    let mut message = Builder::new_default();
    message.init_root::<defaults::Builder>();
    let manifest = vec![
        "boolTrue = true".to_string(),
        "int8Neg = -123".into(),
        "int16Neg = -12345".into(),
        "int32Big = -12345678".into(),
        "int64Big = -123456789012345".into(),
        "uint8Max = 234".into(),
        "uint16Max = 45678".into(),
        "uint32Max = 3456789012".into(),
        "uint64Max = 12345678901234567890".into(),
        format!("float32Pi = {}", f32_bits(3.25)),
        format!("float64E = {}", f64_bits(-2.5e100)),
        "text = \"default \\\"text\\\"\\n\"".into(),
        "data = 0xdeadbeef".into(),
        "point = default".into(),
        "ints = default".into(),
        "color = 2".into(),
        "enumValue = 2".into(),
    ];
    Sample { name: "defaults_unset", root_struct: id_of::<defaults::Reader<'static>>(), message, manifest }
}

fn defaults_set() -> Sample {
    let mut message = Builder::new_default();
    let mut m = Manifest::default();
    let mut root = message.init_root::<defaults::Builder>();
    // Zeros and other non-default values: the XOR encoding must not turn them into defaults.
    root.set_bool_true(false);
    m.add("boolTrue", false);
    root.set_int8_neg(0);
    m.add("int8Neg", 0);
    root.set_int16_neg(1);
    m.add("int16Neg", 1);
    root.set_int32_big(0);
    m.add("int32Big", 0);
    root.set_int64_big(-1);
    m.add("int64Big", -1);
    root.set_uint8_max(0);
    m.add("uint8Max", 0);
    root.set_uint16_max(7);
    m.add("uint16Max", 7);
    root.set_uint32_max(0);
    m.add("uint32Max", 0);
    root.set_uint64_max(0);
    m.add("uint64Max", 0);
    root.set_float32_pi(0.0);
    m.add("float32Pi", f32_bits(0.0));
    root.set_float64_e(2.5e100);
    m.add("float64E", f64_bits(2.5e100));
    root.set_text("");
    m.add("text", "\"\"");
    root.set_data(&[]);
    m.add("data", "0x");
    {
        let mut point = root.reborrow().init_point();
        point.set_x(0);
        m.add("point.x", 0);
        m.add("point.y", 0);
        m.add("point.label", "\"\"");
    }
    root.set_ints(&[][..]).unwrap();
    m.add("ints", "[]");
    root.set_color(Color::Red);
    m.add("color", 0);
    root.set_enum_value(TestEnum::Foo);
    m.add("enumValue", 0);
    Sample { name: "defaults_set", root_struct: id_of::<defaults::Reader<'static>>(), message, manifest: m.0 }
}

fn shape_samples() -> Vec<Sample> {
    let mut out = Vec::new();
    for variant in ["circle", "square", "empty", "name"] {
        let mut message = Builder::new_default();
        let mut m = Manifest::default();
        let mut root = message.init_root::<shape::Builder>();
        root.set_id(7);
        m.add("id", 7);
        m.add("which", variant);
        match variant {
            "circle" => {
                root.set_circle(2.0);
                m.add("circle", f64_bits(2.0));
            }
            "square" => {
                let mut square = root.reborrow().init_square();
                square.set_side(3.5);
                square.set_rounded(true);
                m.add("square.side", f64_bits(3.5));
                m.add("square.rounded", true);
            }
            "empty" => {
                root.set_empty(());
                m.add("empty", "void");
            }
            _ => {
                root.set_name("hexagon");
                m.add("name", "\"hexagon\"");
            }
        }
        let mut position = root.reborrow().init_position();
        position.set_x(1.0);
        position.set_y(-1.0);
        m.add("position.x", f32_bits(1.0));
        m.add("position.y", f32_bits(-1.0));
        let mut fill = root.reborrow().init_fill();
        match variant {
            "circle" => {
                fill.set_solid(Color::Blue);
                m.add("fill.which", "solid");
                m.add("fill.solid", 2);
            }
            "square" => {
                fill.set_pattern("stripes");
                m.add("fill.which", "pattern");
                m.add("fill.pattern", "\"stripes\"");
            }
            _ => {
                fill.set_none(());
                m.add("fill.which", "none");
                m.add("fill.none", "void");
            }
        }
        let name = match variant {
            "circle" => "shape_circle",
            "square" => "shape_square",
            "empty" => "shape_empty",
            _ => "shape_name",
        };
        // Union members print where the union's first field is declared.
        let mut lines = m.0;
        let id = lines.remove(0);
        lines.insert(0, id);
        out.push(Sample { name, root_struct: id_of::<shape::Reader<'static>>(), message, manifest: lines });
    }
    out
}

fn outer_sample() -> Sample {
    let mut message = fragmented_builder();
    let mut m = Manifest::default();
    let mut root = message.init_root::<outer::Builder>();
    root.reborrow().init_inner().set_level(outer::inner::Level::High);
    m.add("inner.level", 1);
    let mut inners = root.init_inners(3);
    m.add("inners.len", 3);
    for i in 0..3u32 {
        let level = if i % 2 == 0 { outer::inner::Level::Low } else { outer::inner::Level::High };
        inners.reborrow().get(i).set_level(level);
        m.add(&format!("inners[{i}].level"), i % 2);
    }
    Sample { name: "outer_fragmented", root_struct: id_of::<outer::Reader<'static>>(), message, manifest: m.0 }
}

fn generics_sample() -> Sample {
    let mut message = Builder::new_default();
    let mut m = Manifest::default();
    let mut root = message.init_root::<uses_generics::Builder>();
    {
        let mut text_box = root.reborrow().init_text_box();
        text_box.set_value("boxed").unwrap();
        text_box.set_count(1);
        m.add("textBox.value", "set");
        m.add("textBox.count", 1);
    }
    m.add("pointBox", "null");
    Sample { name: "generics", root_struct: id_of::<uses_generics::Reader<'static>>(), message, manifest: m.0 }
}

fn calculator_sample() -> Sample {
    use capnp_schemas::calculator_capnp::calculator::expression;
    let mut message = fragmented_builder();
    let mut m = Manifest::default();
    let root = message.init_root::<expression::Builder>();
    let apply = root.init_apply();
    m.add("which", "apply");
    m.add("apply.function", "cap:null");
    let mut args = apply.init_arguments(2);
    m.add("apply.arguments.len", 2);
    args.reborrow().get(0).set_literal(1.25);
    m.add("apply.arguments[0].which", "literal");
    m.add("apply.arguments[0].literal", f64_bits(1.25));
    args.reborrow().get(1).set_argument(3);
    m.add("apply.arguments[1].which", "argument");
    m.add("apply.arguments[1].argument", 3);
    Sample {
        name: "calculator_expression_fragmented",
        root_struct: id_of::<expression::Reader<'static>>(),
        message,
        manifest: m.0,
    }
}
