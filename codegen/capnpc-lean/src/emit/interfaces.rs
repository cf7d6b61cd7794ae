//! Interfaces: ids, typed clients, pipelines, servers and their dispatchers.

use std::collections::HashMap;

use super::{accessor, ident, Lean};
use crate::ir::{Interface, Method, TypeRef};
use crate::names::escape_path;

/// `structure I.Client`: declared with the other wrapper types so struct fields can name it.
pub(crate) fn client_type(out: &mut Lean, iface: &Interface) {
    let name = escape_path(&iface.name);
    let erased = if iface.generic { " Generic parameters are erased to `AnyPointer`." } else { "" };
    out.line(&format!("/-- A capability implementing `{}`.{erased} -/", iface.name));
    out.line(&format!("structure {name}.Client where"));
    out.line("  cap : Capnp.CapHandle");
    out.line("deriving BEq, Inhabited");
    out.line(&format!(
        "instance : Capnp.ListElem {name}.Client := ⟨.pointer, fun l i => do return ⟨← (l.ptr i).readCap⟩⟩"
    ));
    out.line(&format!("instance : Capnp.BuildElem {name}.Client := ⟨.pointer⟩"));
    out.blank();
}

/// One server-structure field per method the dispatcher answers (own methods first, then each
/// ancestor's). Names are the method names; an inherited name that clashes gets the ancestor's
/// name as prefix.
fn server_fields(iface: &Interface, own: &TypeRef) -> Vec<(String, TypeRef, Method)> {
    let mut all: Vec<(TypeRef, Method)> = iface.methods.iter().map(|m| (own.clone(), m.clone())).collect();
    for (ancestor, methods) in &iface.ancestors {
        all.extend(methods.iter().map(|m| (ancestor.clone(), m.clone())));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (_, m) in &all {
        *counts.entry(m.name.clone()).or_default() += 1;
    }
    all.into_iter()
        .map(|(owner, m)| {
            let field = if counts[&m.name] > 1 && owner.id != own.id {
                let short = owner.name.rsplit('.').next().unwrap_or(&owner.name);
                let mut lower = short.to_string();
                if let Some(first) = lower.get_mut(0..1) {
                    first.make_ascii_lowercase();
                }
                format!("{lower}{}", accessor(&m.name))
            } else {
                m.name.clone()
            };
            (field, owner, m)
        })
        .collect()
}

pub(crate) fn interface(out: &mut Lean, iface: &Interface) {
    let name = escape_path(&iface.name);
    let own = TypeRef { id: iface.id, name: iface.name.clone(), module: String::new() };
    out.line(&format!("/-- Interface id of `{}`. -/", iface.name));
    out.line(&format!("def {name}.interfaceId : UInt64 := 0x{:016x}", iface.id));
    for method in &iface.methods {
        out.line(&format!("def {name}.Methods.{} : UInt16 := {}", ident(&method.name), method.ordinal));
    }
    out.blank();
    for method in &iface.methods {
        client_method(out, &name, iface, method);
    }
    for superclass in iface.superclasses.iter().chain(iface.ancestors.iter().map(|(a, _)| a)) {
        let target = out.name(superclass);
        let short = superclass.name.rsplit('.').next().unwrap_or(&superclass.name).to_string();
        let line = format!("def {name}.Client.as{short} (c : {name}.Client) : {target}.Client := ⟨c.cap⟩");
        if !out_contains(out, &line) {
            out.line(&line);
        }
    }
    out.blank();
    server(out, &name, iface, &own);
}

fn out_contains(out: &Lean, line: &str) -> bool {
    out.text.contains(line)
}

fn client_method(out: &mut Lean, name: &str, iface: &Interface, method: &Method) {
    let params = out.name(&method.params);
    let m = ident(&method.name);
    out.line(&format!("/-- Calls `{}.{}` (ordinal {}). -/", iface.name, method.name, method.ordinal));
    if method.streaming {
        out.line(&format!(
            "def {name}.Client.{m} (c : {name}.Client) (params : {params}.Builder → Capnp.BuildM Unit := fun _ => pure ()) :"
        ));
        out.line("    Capnp.Rpc.RpcM Capnp.Rpc.StreamAck :=");
        out.line(&format!("  Capnp.Rpc.callStreaming c.cap {name}.interfaceId {} params", method.ordinal));
    } else {
        let results = out.name(&method.results);
        out.line(&format!(
            "def {name}.Client.{m} (c : {name}.Client) (params : {params}.Builder → Capnp.BuildM Unit := fun _ => pure ()) :"
        ));
        out.line(&format!("    Capnp.Rpc.RpcM (Capnp.Rpc.Pending {results}.Reader {results}.Pipeline) :="));
        out.line(&format!(
            "  Capnp.Rpc.call c.cap {name}.interfaceId {} params (fun call => ⟨call, #[]⟩)",
            method.ordinal
        ));
    }
}

fn method_type(out: &Lean, method: &Method) -> String {
    let params = out.name(&method.params);
    if method.streaming {
        format!("{params}.Reader → Capnp.Rpc.RpcM Capnp.Rpc.StreamAck")
    } else {
        let results = out.name(&method.results);
        format!("{params}.Reader → Capnp.Rpc.RpcM (Capnp.Rpc.Reply {results}.Builder)")
    }
}

fn server(out: &mut Lean, name: &str, iface: &Interface, own: &TypeRef) {
    let fields = server_fields(iface, own);
    out.line(&format!(
        "/-- An implementation of `{}`; every method not given answers `unimplemented`. -/",
        iface.name
    ));
    out.line(&format!("structure {name}.Server where"));
    for (field, owner, method) in &fields {
        let unimplemented = if method.streaming { "Capnp.Rpc.StreamAck.unimplemented" } else { "Capnp.Rpc.Reply.unimplemented" };
        let owner_name = if owner.id == own.id { iface.name.clone() } else { owner.name.clone() };
        out.line(&format!("  {} : {} :=", ident(field), method_type(out, method)));
        out.line(&format!("    fun _ => {unimplemented} \"{owner_name}.{}\"", method.name));
    }
    if fields.is_empty() {
        out.line("  unit : Unit := ()");
    }
    out.blank();
    out.line(&format!("/-- Routes a call to `{}` or one of its superclasses to the implementation. -/", iface.name));
    out.line(&format!("def {name}.Server.dispatch (s : {name}.Server) : Capnp.Rpc.Dispatch := fun iface method params =>"));
    // Literal Nat patterns keep this a single flat match over (interface, method).
    out.line("  match iface.toNat, method.toNat with");
    for (field, owner, method) in &fields {
        let handler = if method.streaming { "Capnp.Rpc.handleStream" } else { "Capnp.Rpc.handle" };
        out.line(&format!(
            "  | 0x{:016x}, {} => {handler} params s.{}",
            owner.id,
            method.ordinal,
            ident(field)
        ));
    }
    out.line("  | _, _ => Capnp.Rpc.unimplementedCall iface method");
    out.blank();
    out.line("/-- Hosts `s` on the current backend and returns a client for it. -/");
    out.line(&format!(
        "def {name}.Server.serve (s : {name}.Server) : Capnp.Rpc.RpcM {name}.Client := do return ⟨← Capnp.Rpc.serveDispatch s.dispatch⟩"
    ));
    out.blank();
}
