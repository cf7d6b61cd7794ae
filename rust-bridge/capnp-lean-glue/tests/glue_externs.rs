//! The two sides of the Lean glue cannot drift: every `@[extern "capnp_lean_…"]` declaration in
//! lean-rpc's Lean sources must be exported by `capnp_lean_glue` with the same arity and the
//! same parameter kinds (borrowed `@&` object, owned object, unboxed `UInt64`/`UInt32`/`UInt16`),
//! every export must be declared in Lean, and every extern must be an `IO` function (the glue
//! always returns an IO result). No Lean toolchain or runtime is needed: this reads the sources.

use std::path::{Path, PathBuf};

use capnp_lean_glue::{externs, ExternSignature, ParamKind};

/// One `@[extern]` declaration as read from Lean.
#[derive(Debug, Clone, PartialEq)]
struct LeanExtern {
    symbol: String,
    name: String,
    params: Vec<Result<ParamKind, String>>,
    returns: String,
    file: String,
}

fn lean_rpc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lean-rpc")
}

fn lean_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() && !name.starts_with('.') {
            lean_sources(&path, out);
        } else if name.ends_with(".lean") {
            out.push(path);
        }
    }
}

/// How a binder's type is passed in C by Lean 4.35.
fn kind_of(ty: &str) -> Result<ParamKind, String> {
    let ty = ty.trim();
    if ty.starts_with("@&") {
        return Ok(ParamKind::Borrowed);
    }
    match ty {
        "UInt64" => Ok(ParamKind::U64),
        "UInt32" => Ok(ParamKind::U32),
        "UInt16" => Ok(ParamKind::U16),
        "UInt8" | "Bool" | "USize" | "Float" | "Float32" | "Char" => Err(format!("unboxed type {ty} has no ParamKind yet")),
        _ => Ok(ParamKind::Owned),
    }
}

/// Reads the `@[extern "capnp_lean_…"]` declarations of one Lean file: the attribute, then
/// `opaque`/`def` Name, explicit binders `(a b : T)` at depth 0, then `: ReturnType`.
fn parse_externs(text: &str, file: &str) -> Vec<LeanExtern> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("@[extern \"") {
        rest = &rest[at + "@[extern \"".len()..];
        let Some(end) = rest.find('"') else { break };
        let symbol = rest[..end].to_string();
        let body = &rest[rest[end..].find(']').map_or(end, |i| end + i + 1)..];
        // The declaration ends at a blank line or the next doc comment / attribute.
        let stop = ["\n\n", "\n/--", "\n@["].iter().filter_map(|s| body.find(s)).min().unwrap_or(body.len());
        let decl = body[..stop].split_whitespace().collect::<Vec<_>>().join(" ");
        if !symbol.starts_with("capnp_lean_") {
            continue;
        }
        found.push(parse_declaration(&symbol, &decl, file));
    }
    found
}

fn parse_declaration(symbol: &str, decl: &str, file: &str) -> LeanExtern {
    let decl = decl.trim();
    let after_keyword = decl.strip_prefix("opaque ").or_else(|| decl.strip_prefix("def ")).unwrap_or(decl);
    let name_end = after_keyword.find([' ', '(', ':']).unwrap_or(after_keyword.len());
    let name = after_keyword[..name_end].to_string();
    let mut params = Vec::new();
    let mut returns = String::new();
    let chars: Vec<char> = after_keyword[name_end..].chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '(' | '{' | '[' | '⦃' => {
                let open = chars[i];
                let close = match open { '(' => ')', '{' => '}', '[' => ']', _ => '⦄' };
                let mut depth = 0;
                let start = i;
                while i < chars.len() {
                    if chars[i] == open {
                        depth += 1;
                    } else if chars[i] == close {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
                let group: String = chars[start + 1..i].iter().collect();
                if open == '(' {
                    let (names, ty) = group.split_once(" : ").unwrap_or(("_", group.as_str()));
                    for _ in names.split_whitespace() {
                        params.push(kind_of(ty));
                    }
                }
                i += 1;
            }
            ':' => {
                returns = chars[i + 1..].iter().collect::<String>().trim().to_string();
                break;
            }
            _ => i += 1,
        }
    }
    LeanExtern { symbol: symbol.to_string(), name, params, returns, file: file.to_string() }
}

/// Every disagreement between the Lean declarations and the glue's exports.
fn disagreements(lean: &[LeanExtern], glue: &[ExternSignature]) -> Vec<String> {
    let mut problems = Vec::new();
    for decl in lean {
        if !decl.returns.starts_with("IO ") && decl.returns != "IO" {
            problems.push(format!("{} ({}) returns `{}`; the glue returns IO results only", decl.symbol, decl.file, decl.returns));
        }
        for (i, p) in decl.params.iter().enumerate() {
            if let Err(e) = p {
                problems.push(format!("{} parameter {i}: {e}", decl.symbol));
            }
        }
        let Some(export) = glue.iter().find(|g| g.symbol == decl.symbol) else {
            problems.push(format!("{} ({}, `{}`) is not exported by capnp_lean_glue", decl.symbol, decl.file, decl.name));
            continue;
        };
        let lean_kinds: Vec<ParamKind> = decl.params.iter().filter_map(|p| p.clone().ok()).collect();
        if lean_kinds != export.params {
            problems.push(format!("{}: Lean passes {:?} but the glue takes {:?}", decl.symbol, lean_kinds, export.params));
        }
    }
    for export in glue {
        if !lean.iter().any(|d| d.symbol == export.symbol) {
            problems.push(format!("{} is exported by the glue but declared nowhere in lean-rpc", export.symbol));
        }
    }
    problems
}

fn real_lean_externs() -> Vec<LeanExtern> {
    let mut files = Vec::new();
    lean_sources(&lean_rpc_dir(), &mut files);
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let rel = f.strip_prefix(lean_rpc_dir()).unwrap_or(f).display().to_string();
            parse_externs(&text, &rel)
        })
        .collect()
}

fn kj_source() -> String {
    std::fs::read_to_string(lean_rpc_dir().join("Capnp/Rpc/Kj.lean")).expect("lean-rpc/Capnp/Rpc/Kj.lean exists")
}

#[test]
fn every_lean_extern_is_exported_by_the_glue_with_the_same_parameter_kinds() {
    let lean = real_lean_externs();
    let glue = externs();
    assert!(lean.len() >= 20, "expected the Kj externs, found {}: {lean:#?}", lean.len());
    assert_eq!(lean.len(), glue.len(), "one export per declaration");
    let problems = disagreements(&lean, &glue);
    assert!(problems.is_empty(), "the Lean declarations and the glue disagree:\n{}", problems.join("\n"));
}

#[test]
fn every_export_has_a_distinct_symbol_and_address() {
    let glue = externs();
    let mut symbols: Vec<_> = glue.iter().map(|g| g.symbol).collect();
    symbols.sort();
    symbols.dedup();
    assert_eq!(symbols.len(), glue.len());
    let mut addresses: Vec<_> = glue.iter().map(|g| g.address).collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), glue.len(), "each symbol is its own function");
    assert!(glue.iter().all(|g| g.address != 0));
}

#[test]
fn a_parameter_type_changed_on_the_lean_side_only_is_reported() {
    let changed = kj_source().replace("(methodId : UInt16)", "(methodId : UInt32)");
    let lean = parse_externs(&changed, "Kj.lean");
    let problems = disagreements(&lean, &externs());
    assert!(problems.iter().any(|p| p.starts_with("capnp_lean_kj_cap_call:")), "{problems:#?}");
}

#[test]
fn a_dropped_borrow_annotation_is_reported() {
    let changed = kj_source().replace("opaque Cap.release (c : @& Cap)", "opaque Cap.release (c : Cap)");
    let problems = disagreements(&parse_externs(&changed, "Kj.lean"), &externs());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("capnp_lean_kj_cap_release"));
}

#[test]
fn an_added_parameter_and_an_undeclared_export_are_reported() {
    let changed = kj_source()
        .replace("opaque Listener.address (l : @& Listener)", "opaque Listener.address (l : @& Listener) (n : UInt64)")
        .replace("@[extern \"capnp_lean_kj_cap_clone\"]", "@[extern \"capnp_lean_kj_cap_duplicate\"]");
    let problems = disagreements(&parse_externs(&changed, "Kj.lean"), &externs());
    assert!(problems.iter().any(|p| p.starts_with("capnp_lean_kj_listener_address:")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("capnp_lean_kj_cap_duplicate") && p.contains("not exported")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("capnp_lean_kj_cap_clone is exported by the glue but declared nowhere")), "{problems:#?}");
}

#[test]
fn a_non_io_extern_is_reported() {
    let changed = kj_source().replace("opaque Listener.address (l : @& Listener) : IO String", "opaque Listener.address (l : @& Listener) : String");
    let problems = disagreements(&parse_externs(&changed, "Kj.lean"), &externs());
    assert!(problems.iter().any(|p| p.contains("returns `String`")), "{problems:#?}");
}

#[test]
fn multi_line_declarations_and_function_typed_parameters_are_read_whole() {
    let lean = parse_externs(&kj_source(), "Kj.lean");
    let call = lean.iter().find(|d| d.symbol == "capnp_lean_kj_cap_call").expect("Cap.call is declared");
    use ParamKind::*;
    assert_eq!(call.name, "Cap.call");
    assert_eq!(call.params, vec![Ok(Borrowed), Ok(U64), Ok(U16), Ok(Borrowed), Ok(Borrowed), Ok(Owned)]);
    assert_eq!(call.returns, "IO Call");
    let serve = lean.iter().find(|d| d.symbol == "capnp_lean_kj_serve").expect("Runtime.serve is declared");
    assert_eq!(serve.params, vec![Ok(Borrowed), Ok(Owned)]);
    let new = lean.iter().find(|d| d.symbol == "capnp_lean_kj_runtime_new").expect("Runtime.new is declared");
    assert!(new.params.is_empty(), "IO functions take no world argument in Lean 4.35");
}
