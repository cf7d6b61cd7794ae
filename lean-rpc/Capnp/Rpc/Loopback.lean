import Capnp.Rpc.Backend
import Std.Data.HashMap

/-!
# Capnp.Rpc.Loopback

A backend that dispatches calls to Lean servers in the same process, with no wire in between.
Messages are still built and read with `Capnp.Wire`, so generated clients and servers are tested
end to end. Capabilities are reference counted: every message delivered to a receiver takes a
reference to each capability in its table, and `release` drops one. Pipelined capabilities are
promises resolved when the call's results arrive; calls made on them wait for that.
-/

namespace Capnp.Rpc.Loopback

open Capnp Capnp.Rpc

/-- What a handle refers to. -/
inductive Entry where
  | server (dispatch : ServerDispatch)
  | promise (resolution : Task (Except RpcError CapHandle))

structure Slot where
  entry : Entry
  refs : Nat

structure State where
  nextId : UInt64 := 1
  caps : Std.HashMap UInt64 Slot := {}

private def retainAll (state : IO.Ref State) (caps : Array CapHandle) : BaseIO Unit :=
  state.modify fun s => caps.foldl (init := s) fun s h =>
    match s.caps[h.id]? with
    | some slot => { s with caps := s.caps.insert h.id { slot with refs := slot.refs + 1 } }
    | none => s

private def register (state : IO.Ref State) (entry : Entry) : BaseIO CapHandle :=
  state.modifyGet fun s =>
    (⟨s.nextId⟩, { s with nextId := s.nextId + 1, caps := s.caps.insert s.nextId ⟨entry, 1⟩ })

/-- Follows a pointer path from the results root to a capability. -/
def capAt (msg : Message) (path : Array UInt16) : Except WireError CapHandle := msg.read do
  let mut s ← msg.rootPointer.readStructOr none
  for i in [0:path.size] do
    let p := s.ptr path[i]!.toNat
    if i + 1 == path.size then
      return (← p.readCap)
    s ← p.readStructOr none
  return CapHandle.null

/-- The capability a pipelined call on `path` resolves to, once the results are known. -/
def resolveAt (path : Array UInt16) (results : Except RpcError Message) : Except RpcError CapHandle :=
  match results with
  | .error e => .error e
  | .ok msg => (capAt msg path).mapError fun e => ⟨.failed, toString e⟩

instance : Inhabited (BaseIO (Task (Except RpcError Message))) :=
  ⟨pure (Task.pure (.error ⟨.failed, "unreachable"⟩))⟩

/-- Starts a call; promise capabilities forward it once resolved. -/
partial def callOn (state : IO.Ref State) (target : CapHandle) (iface : UInt64) (method : UInt16)
    (params : Message) : BaseIO (Task (Except RpcError Message)) := do
  match (← state.get).caps[target.id]? with
  | none => return Task.pure (.error ⟨.failed, s!"call on released or null capability {target.id}"⟩)
  | some ⟨.server dispatch, _⟩ =>
    retainAll state params.caps
    match ← EIO.toBaseIO (dispatch iface method params) with
    | .error e => return Task.pure (.error ⟨.failed, toString e⟩)
    | .ok results =>
      -- The caller receives references to the capabilities in the results.
      BaseIO.bindTask results fun r => do
        if let .ok msg := r then retainAll state msg.caps
        return Task.pure r
  | some ⟨.promise resolution, _⟩ =>
    BaseIO.bindTask resolution fun
      | .error e => return Task.pure (.error e)
      | .ok resolved => callOn state resolved iface method params

/-- A new loopback backend with its own capability table. -/
def new : IO Backend := do
  let state ← IO.mkRef ({} : State)
  let nextCall ← IO.mkRef (1 : UInt64)
  return {
    call := fun target iface method params => do
      let result ← callOn state target iface method params
      let id ← nextCall.modifyGet fun n => (n, n + 1)
      return ⟨id, result⟩
    pipeline := fun pc path => do
      return (← register state (.promise (pc.result.map (resolveAt path))))
    release := fun h => state.modify fun s =>
      match s.caps[h.id]? with
      | some slot =>
        if slot.refs ≤ 1 then { s with caps := s.caps.erase h.id }
        else { s with caps := s.caps.insert h.id { slot with refs := slot.refs - 1 } }
      | none => s
    serve := fun dispatch => do return (← register state (.server dispatch))
  }

end Capnp.Rpc.Loopback
