//! Lean's symbol naming, reproduced so callers never spell initializer names or Lake file names
//! by hand.

/// Mangles one name component the way the Lean compiler does for C symbols: ASCII letters and
/// digits stay, `_` doubles, anything else becomes `_xHH`, `_uHHHH` or `_UHHHHHHHH`.
pub fn mangle_component(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    for c in component.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(c),
            '_' => out.push_str("__"),
            c if (c as u32) < 0x100 => out.push_str(&format!("_x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("_u{:04x}", c as u32)),
            c => out.push_str(&format!("_U{:08x}", c as u32)),
        }
    }
    out
}

/// Mangles a dotted module name (`Demo.Rpc_Util` → `Demo_Rpc__Util`).
pub fn mangle_module(module: &str) -> String {
    module.split('.').map(mangle_component).collect::<Vec<_>>().join("_")
}

/// The initializer of `module` in `package` as Lean ≥ 4.27 names it:
/// `initialize_<package>_<Module_Path>`, each component mangled.
pub fn module_initializer(package: &str, module: &str) -> String {
    format!("initialize_{}_{}", mangle_component(package), mangle_module(module))
}

/// File names Lake may give the shared library of library target `lib` in `package`, most
/// likely first. Lake has changed this between releases, so the build step looks for each.
pub fn shared_library_candidates(package: &str, lib: &str) -> Vec<String> {
    let lib_mangled = mangle_module(lib);
    vec![
        format!("lib{}_{}.so", mangle_component(package), lib_mangled),
        format!("lib{lib_mangled}.so"),
        format!("lib{lib}.so"),
    ]
}
