//! Reads the C prototypes Lean emitted for `@[export]` functions from Lake's IR folder, so the
//! manifest records what was built instead of what someone wrote by hand.

use std::collections::BTreeMap;
use std::path::Path;

/// Maps each wanted symbol to its prototype, e.g. `uint32_t demo_add(uint32_t, uint32_t)`.
/// Symbols without a declaration in the IR are left out.
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
        let Some(open) = decl.find('(') else { continue };
        let name = decl[..open].rsplit([' ', '*']).next().unwrap_or_default();
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
}
