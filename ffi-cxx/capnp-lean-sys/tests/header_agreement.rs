//! The Rust declarations must agree with `include/capnp_lean.h`: same functions, callbacks,
//! constants and struct fields with the same C types, and the same struct layouts as a C
//! compiler computes them. Edit one side only and this fails.

use capnp_lean_sys::{
    rust_struct_layouts, DeclaredSignature, DECLARED_CALLBACKS, DECLARED_CONSTANTS,
    DECLARED_FUNCTIONS, DECLARED_STRUCTS, HEADER_PATH,
};
use std::collections::BTreeMap;
use std::process::Command;

#[derive(Default)]
struct Header {
    constants: BTreeMap<String, i64>,
    structs: BTreeMap<String, Vec<(String, String)>>,
    callbacks: BTreeMap<String, (Vec<String>, String)>,
    functions: BTreeMap<String, (Vec<String>, String)>,
}

fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("unterminated comment") + start + 2;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Translates a C type (as written in the header) into the Rust spelling our declarations use.
fn rust_type_of(c_type: &str) -> String {
    let spaced = c_type.replace('*', " * ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut base_const = false;
    let mut base = None;
    let mut pointers: Vec<bool> = Vec::new(); // for each `*`: is the pointee const?
    let mut pending_const = false;
    for token in tokens {
        match token {
            "const" if base.is_none() => base_const = true,
            "const" => pending_const = true,
            "*" => {
                let pointee_const = if pointers.is_empty() { base_const } else { pending_const };
                pointers.push(pointee_const);
                pending_const = false;
            }
            name => base = Some(name.to_string()),
        }
    }
    let base = base.expect("a type names a base type");
    let mut rust = match base.as_str() {
        "uint8_t" => "u8".to_string(),
        "uint16_t" => "u16".to_string(),
        "uint32_t" => "u32".to_string(),
        "uint64_t" => "u64".to_string(),
        "int32_t" => "i32".to_string(),
        "int" => "c_int".to_string(),
        "size_t" => "usize".to_string(),
        "void" if !pointers.is_empty() => "c_void".to_string(),
        "void" => "()".to_string(),
        other => other.to_string(),
    };
    for pointee_const in pointers {
        rust = format!("*{} {}", if pointee_const { "const" } else { "mut" }, rust);
    }
    rust
}

fn normalize(rust_type: &str) -> String {
    rust_type.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Splits `T name` into its type (all but the last identifier).
fn param_type(param: &str) -> String {
    let param = param.trim();
    let cut = param
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .expect("a parameter has a type and a name");
    rust_type_of(&param[..=cut])
}

fn params_of(list: &str) -> Vec<String> {
    let list = list.trim();
    if list == "void" || list.is_empty() {
        return Vec::new();
    }
    list.split(',').map(param_type).collect()
}

/// A C integer literal: decimal or `0x` hex, with an optional `u` suffix.
fn parse_integer(literal: &str) -> i64 {
    let digits = literal.trim_end_matches(['u', 'U']);
    // Unsigned 64-bit values compare as their bit pattern, as the Rust side's `as i64` does.
    match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).map(|v| v as i64),
        None => digits.parse(),
    }
    .unwrap_or_else(|e| panic!("integer constant {literal:?}: {e}"))
}

fn parse_header(text: &str) -> Header {
    let text = strip_comments(text);
    let mut header = Header::default();
    let mut code = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(define) = line.strip_prefix("#define ") {
            let mut parts = define.split_whitespace();
            let name = parts.next().unwrap();
            if let Some(value) = parts.next() {
                header.constants.insert(name.to_string(), parse_integer(value));
            }
        } else if !line.starts_with('#') && line != "extern \"C\" {" && line != "}" {
            code.push_str(line);
            code.push(' ');
        }
    }
    // Struct definitions first: their bodies contain ';'.
    while let Some(start) = code.find("typedef struct ") {
        let semicolon = code[start..].find(';').unwrap() + start;
        match code[start..semicolon].find('{') {
            Some(open) => {
                let open = open + start;
                let close = code[start..].find('}').unwrap() + start;
                let end = code[close..].find(';').unwrap() + close;
                let name = code[close + 1..end].trim().to_string();
                let fields = code[open + 1..close]
                    .split(';')
                    .filter(|f| !f.trim().is_empty())
                    .map(|field| {
                        let field = field.trim();
                        let name = field.rsplit([' ', '*']).next().unwrap();
                        (name.to_string(), param_type(field))
                    })
                    .collect();
                header.structs.insert(name, fields);
                code.replace_range(start..=end, "");
            }
            None => code.replace_range(start..=semicolon, ""), // opaque handle typedef
        }
    }
    for statement in code.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(callback) = statement.strip_prefix("typedef ") {
            if let Some(star) = callback.find("(*") {
                let ret = rust_type_of(&callback[..star]);
                let name_end = callback[star..].find(')').unwrap() + star;
                let name = callback[star + 2..name_end].trim().to_string();
                let params = &callback[name_end + 2..callback.rfind(')').unwrap()];
                header.callbacks.insert(name, (params_of(params), ret));
            }
            continue;
        }
        let open = statement.find('(').unwrap_or_else(|| panic!("not a function declaration: {statement}"));
        let head = &statement[..open];
        let name_start = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap() + 1;
        let ret = rust_type_of(&head[..name_start]);
        let params = &statement[open + 1..statement.rfind(')').unwrap()];
        header.functions.insert(head[name_start..].to_string(), (params_of(params), ret));
    }
    header
}

fn header() -> Header {
    parse_header(&std::fs::read_to_string(HEADER_PATH).expect("read the header"))
}

fn compare_signatures(kind: &str, header: &BTreeMap<String, (Vec<String>, String)>,
                      rust: &[DeclaredSignature]) {
    let mut problems = Vec::new();
    for (name, params, ret) in rust {
        match header.get(*name) {
            None => problems.push(format!("{kind} {name} is declared in Rust but not in the header")),
            Some((c_params, c_ret)) => {
                let rust_params: Vec<String> = params.iter().map(|p| normalize(p)).collect();
                let c_params: Vec<String> = c_params.iter().map(|p| normalize(p)).collect();
                if rust_params != c_params || normalize(ret) != normalize(c_ret) {
                    problems.push(format!(
                        "{kind} {name}: header has ({}) -> {c_ret}, Rust has ({}) -> {ret}",
                        c_params.join(", "), rust_params.join(", ")));
                }
            }
        }
    }
    for name in header.keys() {
        if !rust.iter().any(|(n, _, _)| n == name) {
            problems.push(format!("{kind} {name} is in the header but not declared in Rust"));
        }
    }
    assert!(problems.is_empty(), "the Rust ABI declarations drifted from the header:\n{}",
            problems.join("\n"));
}

#[test]
fn every_header_function_is_declared_in_rust_with_the_same_types() {
    let header = header();
    assert!(header.functions.len() >= 30, "parsed only {} functions", header.functions.len());
    compare_signatures("function", &header.functions, DECLARED_FUNCTIONS);
}

#[test]
fn every_callback_typedef_matches() {
    compare_signatures("callback", &header().callbacks, DECLARED_CALLBACKS);
}

#[test]
fn constants_match_the_header() {
    let header = header();
    let rust: BTreeMap<String, i64> =
        DECLARED_CONSTANTS.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    assert_eq!(header.constants, rust);
}

#[test]
fn struct_fields_match_the_header() {
    let header = header();
    let rust: BTreeMap<String, Vec<(String, String)>> = DECLARED_STRUCTS
        .iter()
        .map(|(name, fields)| {
            (name.to_string(),
             fields.iter().map(|(f, t)| (f.to_string(), normalize(t))).collect())
        })
        .collect();
    let c: BTreeMap<String, Vec<(String, String)>> = header
        .structs
        .into_iter()
        .map(|(name, fields)| (name, fields.into_iter().map(|(f, t)| (f, normalize(&t))).collect()))
        .collect();
    assert_eq!(c, rust);
}

#[test]
fn struct_layouts_match_what_a_c_compiler_computes() {
    let dir = std::env::temp_dir().join(format!("capnp-lean-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut source = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"capnp_lean.h\"\nint main(void) {\n");
    for (name, _, fields) in rust_struct_layouts() {
        source.push_str(&format!("  printf(\"{name} %zu\\n\", sizeof({name}));\n"));
        for (field, _) in fields {
            source.push_str(&format!(
                "  printf(\"{name}.{field} %zu\\n\", offsetof({name}, {field}));\n"));
        }
    }
    source.push_str("  return 0;\n}\n");
    let c_file = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&c_file, source).unwrap();
    let include = std::path::Path::new(HEADER_PATH).parent().unwrap();
    let status = Command::new("cc")
        .arg("-I").arg(include).arg(&c_file).arg("-o").arg(&exe)
        .status()
        .expect("run the C compiler (cc)");
    assert!(status.success(), "the header does not compile as C");
    let output = Command::new(&exe).output().unwrap();
    let c_layout = String::from_utf8(output.stdout).unwrap();
    let mut rust_layout = String::new();
    for (name, size, fields) in rust_struct_layouts() {
        rust_layout.push_str(&format!("{name} {size}\n"));
        for (field, offset) in fields {
            rust_layout.push_str(&format!("{name}.{field} {offset}\n"));
        }
    }
    assert_eq!(c_layout, rust_layout);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_linked_library_reports_the_declared_abi_version() {
    // SAFETY: a plain function without arguments, implemented by the linked shim.
    #[allow(unsafe_code)]
    let version = unsafe { capnp_lean_sys::capnp_lean_abi_version() };
    assert_eq!(version, capnp_lean_sys::CAPNP_LEAN_ABI_VERSION);
}

#[test]
fn the_translation_of_c_types_is_what_the_check_relies_on() {
    assert_eq!(rust_type_of("capnp_lean_cap* const*"), "*const *mut capnp_lean_cap");
    assert_eq!(rust_type_of("const uint8_t**"), "*mut *const u8");
    assert_eq!(rust_type_of("void*"), "*mut c_void");
    assert_eq!(rust_type_of("void "), "()");
}
