//! Reads the C prototypes Lean emitted for `@[export]` functions from Lake's IR folder, so the
//! manifest records what was built instead of what someone wrote by hand.
//!
//! A nullary `@[export]` definition (a constant) is not a function in C: Lean declares a global
//! (`LEAN_EXPORT lean_object* name;`, or a scalar type for unboxed results) that the module
//! initializer fills, or — for a value Lean can lay out at compile time — a statically
//! initialized `LEAN_EXPORT const lean_object* name = …;`. Those are recorded as
//! `<type> name`, without parentheses, which is how the loader tells globals from functions.

use std::collections::BTreeMap;
use std::path::Path;

/// Maps each wanted symbol to its prototype, e.g. `uint32_t demo_add(uint32_t, uint32_t)`, or
/// for a global its declaration, e.g. `lean_object* demo_banner`. Symbols without a declaration
/// in the IR are left out.
pub fn export_prototypes(ir_dir: &Path, wanted: &[String]) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![ir_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "c") {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    collect(&text, wanted, &mut found);
                }
            }
        }
    }
    found
}

fn collect(text: &str, wanted: &[String], found: &mut BTreeMap<String, String>) {
    for line in text.lines() {
        let Some(decl) = line.trim().strip_prefix("LEAN_EXPORT ").and_then(|d| d.strip_suffix(';')) else { continue };
        // A statically initialized global carries its value after ` = `; the prototype is the part
        // before it. A function's parameter list starts at its first `(`.
        let decl = decl.split_once(" = ").map_or(decl, |(head, _)| head);
        let end = decl.find('(').unwrap_or(decl.len());
        let name = decl[..end].rsplit([' ', '*']).next().unwrap_or_default();
        if wanted.iter().any(|w| w == name) {
            found.entry(name.to_string()).or_insert_with(|| decl.trim().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prototypes_come_from_lean_export_declarations_only() {
        let c = "LEAN_EXPORT uint32_t demo_add(uint32_t, uint32_t);\n\
                 LEAN_EXPORT lean_object* demo_greet(lean_object*);\n\
                 LEAN_EXPORT uint32_t demo_add(uint32_t x_1, uint32_t x_2) {\n\
                 lean_object* l_other(lean_object*);\n";
        let mut found = BTreeMap::new();
        collect(c, &["demo_add".into(), "demo_greet".into(), "l_other".into()], &mut found);
        assert_eq!(found.get("demo_add").map(String::as_str), Some("uint32_t demo_add(uint32_t, uint32_t)"));
        assert_eq!(found.get("demo_greet").map(String::as_str), Some("lean_object* demo_greet(lean_object*)"));
        assert!(!found.contains_key("l_other"));
    }

    #[test]
    fn nullary_constants_are_recorded_as_globals_without_parentheses() {
        let c = "LEAN_EXPORT lean_object* demo_banner;\n\
                 LEAN_EXPORT uint32_t demo_answer;\n\
                 LEAN_EXPORT const lean_object* demo_ground = (const lean_object*)&demo_ground_value;\n\
                 static lean_object* _init_demo_banner(void) {\n\
                 extern lean_object* demo_other;\n";
        let wanted = ["demo_banner", "demo_answer", "demo_ground", "demo_other"].map(String::from);
        let mut found = BTreeMap::new();
        collect(c, &wanted, &mut found);
        assert_eq!(found.get("demo_banner").map(String::as_str), Some("lean_object* demo_banner"));
        assert_eq!(found.get("demo_answer").map(String::as_str), Some("uint32_t demo_answer"));
        assert_eq!(found.get("demo_ground").map(String::as_str), Some("const lean_object* demo_ground"));
        assert!(!found.contains_key("demo_other"), "declarations of other modules' globals are not ours");
    }
}
