//! Lean naming: module names from file paths, identifier escaping, and derived names.

/// Words Lean reserves; identifiers equal to one are written `«word»`.
const LEAN_KEYWORDS: &[&str] = &[
    "abbrev", "at", "axiom", "by", "calc", "class", "def", "deriving", "do", "else", "end",
    "example", "export", "extends", "for", "from", "fun", "have", "if", "import", "in", "inductive",
    "infix", "infixl", "infixr", "instance", "let", "local", "macro", "match", "mut", "mutual",
    "namespace", "noncomputable", "notation", "open", "opaque", "partial", "postfix", "prefix",
    "private", "protected", "return", "section", "set_option", "show", "structure", "syntax",
    "then", "theorem", "try", "unless", "universe", "unsafe", "variable", "where", "with", "Type",
    "Prop", "Sort", "fun", "λ", "this", "break", "continue", "catch", "finally", "deriving",
    "termination_by", "decreasing_by", "omit", "include", "nomatch", "nofun", "sorry", "public",
    "meta", "module", "attribute", "scoped", "initialize", "builtin_initialize", "macro_rules",
    "elab", "elab_rules", "declare_syntax_cat", "suffices", "obtain", "Σ", "fun",
];

/// Escapes one identifier component if Lean would not accept it bare.
pub fn escape(ident: &str) -> String {
    if LEAN_KEYWORDS.contains(&ident) {
        format!("«{ident}»")
    } else {
        ident.to_string()
    }
}

/// Escapes every component of a dotted name.
pub fn escape_path(path: &str) -> String {
    path.split('.').map(escape).collect::<Vec<_>>().join(".")
}

/// `fooBar` → `FooBar`.
pub fn upper_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Lean module name for a schema file: `dir/foo_bar.capnp` under prefix `Capnp.Gen` becomes
/// `Capnp.Gen.Dir.FooBar`. Leading `/` and the `.capnp` suffix are dropped.
pub fn module_name(prefix: &str, file: &str) -> String {
    let trimmed = file.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix(".capnp").unwrap_or(trimmed);
    let mut parts: Vec<String> = Vec::new();
    if !prefix.is_empty() {
        parts.push(prefix.to_string());
    }
    for component in trimmed.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let camel: String = component
            .split(['_', '-', '.', ' '])
            .filter(|word| !word.is_empty())
            .map(upper_first)
            .collect();
        parts.push(camel);
    }
    parts.join(".")
}

/// Relative output path of a Lean module: `Capnp.Gen.Foo` → `Capnp/Gen/Foo.lean`.
pub fn module_path(module: &str) -> std::path::PathBuf {
    let mut path: std::path::PathBuf = module.split('.').collect();
    path.set_extension("lean");
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_upper_camel_path_components() {
        assert_eq!(module_name("Capnp.Gen", "calculator.capnp"), "Capnp.Gen.Calculator");
        assert_eq!(module_name("Capnp.Gen", "/test/broad_schema.capnp"), "Capnp.Gen.Test.BroadSchema");
        assert_eq!(module_name("", "a-b.capnp"), "AB");
    }

    #[test]
    fn keywords_are_escaped_and_other_names_are_not() {
        assert_eq!(escape("end"), "«end»");
        assert_eq!(escape("value"), "value");
        assert_eq!(escape_path("A.match.B"), "A.«match».B");
    }
}
