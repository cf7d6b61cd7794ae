import Capnp.Worker

/-!
# WorkerCount — a capability for `capnp-lean-worker`

Built as a shared library (`lake build WorkerCount:shared`, a manifest from
`capnp_lean_toolchain::build_capability` with exports `capnp_lean_worker_run` and
`capnp_lean_worker_metadata`), it runs in a worker child:

- `count` with input `"N"` emits the rows `0 … N-1` (decimal text), progress every 1000 rows,
  and returns `"N"`;
- `check` reports a warning with a source position and an error without one;
- anything else fails with the list of known commands.
-/

open Capnp.Worker

namespace WorkerCount

/-- The decimal number in `input`, or an error naming it. -/
def parseCount (input : ByteArray) : IO Nat := do
  let text := String.fromUTF8? input |>.getD ""
  match text.toNat? with
  | some n => return n
  | none => throw (IO.userError s!"count wants a decimal number, got {repr text}")

/-- Emits `0 … n-1` as rows. -/
def count : Handler := fun input sinks => do
  let n ← parseCount input
  let rows := (Array.range n).map fun i => (toString i).toUTF8
  let emitted ← sinks.emitEach rows id (every := 1000) (label := "counting")
  return (toString emitted).toUTF8

/-- Reports two diagnostics and a row between them. -/
def check : Handler := fun _ sinks => do
  sinks.warning "WC001" "a warning with a position" (some { file := "WorkerCount.lean", line := 12, column := 4 })
  sinks.emitRow "between".toUTF8
  sinks.error "WC002" "an error without one"
  return "checked".toUTF8

@[export capnp_lean_worker_run]
def run (command : String) (input : ByteArray) (sinks : Sinks) : IO ByteArray :=
  dispatch #[("count", count), ("check", check)] command input sinks

@[export capnp_lean_worker_metadata]
def metadata (_ : Unit) : String :=
  "worker-count 1.0"

end WorkerCount
