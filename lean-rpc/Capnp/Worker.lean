/-!
# Capnp.Worker — writing a capability that `capnp-lean-worker` runs

A worker child opens the capability's shared library and calls its command export with the
command's name, its input bytes and a `Sinks` value. The export's result is the command's
summary output; rows, progress reports and diagnostics go out through the sinks while it runs,
in the order the command emits them, with backpressure: an emitting call waits while the
parent is not keeping up. An `IO` error thrown by the command fails it, with its text.

```lean
open Capnp.Worker in
@[export capnp_lean_worker_run]
def run (command : String) (input : ByteArray) (sinks : Sinks) : IO ByteArray :=
  dispatch #[("count", count)] command input sinks
```

The export must take its three arguments explicitly (a `def run : Command := …` would be a
constant, not a function). `capnp_lean_worker_metadata : Unit → String` is optional. The
`Sinks` structure is built in Rust (`rust-bridge/capnp-lean-worker/src/child/closures.rs`): its
field order and types are part of the worker's ABI, see `docs/worker.md`.
-/

namespace Capnp.Worker

/-- How serious a diagnostic is (numbered as the worker protocol's `Severity`). -/
inductive Severity where
  | info
  | warning
  | error
  deriving Repr, BEq, Inhabited

/-- The protocol's number for a severity. -/
def Severity.toUInt8 : Severity → UInt8
  | .info => 0
  | .warning => 1
  | .error => 2

/-- A source position a diagnostic points at. -/
structure Position where
  file : String
  line : UInt32
  column : UInt32
  deriving Repr, BEq

/-- What a running command emits through. Built by the worker; field order and types are ABI. -/
structure Sinks where
  /-- Emits one row (the bytes are the capability's own encoding). -/
  row : ByteArray → IO Unit
  /-- Reports progress: done, total (0 when unknown), label. -/
  progress : UInt64 → UInt64 → String → IO Unit
  /-- Reports a diagnostic: severity, code, message, file ("" for none), line, column. -/
  diagnostic : UInt8 → String → String → String → UInt32 → UInt32 → IO Unit
  /-- True once the command's caller has cancelled it. -/
  cancelled : IO Bool

/-- The type of a capability's command export. -/
abbrev Command := String → ByteArray → Sinks → IO ByteArray

/-- One named command: input bytes and sinks to summary output. -/
abbrev Handler := ByteArray → Sinks → IO ByteArray

namespace Sinks

/-- Emits one row. -/
def emitRow (s : Sinks) (row : ByteArray) : IO Unit :=
  s.row row

/-- Emits rows in order. -/
def emitRows (s : Sinks) (rows : Array ByteArray) : IO Unit :=
  rows.forM s.row

/-- Reports that `done` of `total` units are done (`total = 0`: unknown). -/
def reportProgress (s : Sinks) (done total : Nat) (label : String := "") : IO Unit :=
  s.progress done.toUInt64 total.toUInt64 label

/-- Reports a diagnostic with an optional source position. -/
def report (s : Sinks) (severity : Severity) (code message : String)
    (position : Option Position := none) : IO Unit :=
  match position with
  | some p => s.diagnostic severity.toUInt8 code message p.file p.line p.column
  | none => s.diagnostic severity.toUInt8 code message "" 0 0

/-- Reports an informational diagnostic. -/
def info (s : Sinks) (code message : String) (position : Option Position := none) : IO Unit :=
  s.report .info code message position

/-- Reports a warning. -/
def warning (s : Sinks) (code message : String) (position : Option Position := none) : IO Unit :=
  s.report .warning code message position

/-- Reports an error diagnostic (the command goes on; throw to fail it). -/
def error (s : Sinks) (code message : String) (position : Option Position := none) : IO Unit :=
  s.report .error code message position

/-- Throws the worker's cancellation error once the caller has cancelled the command; long
computations that emit nothing call it now and then. -/
def checkCancelled (s : Sinks) : IO Unit := do
  if (← s.cancelled) then
    throw (IO.userError "[capnp:failed] the command was cancelled by its caller")

/-- Emits `f item` as a row for every item, reporting progress every `every` items (and at the
end) and stopping if the command is cancelled. Returns the number of rows emitted. -/
def emitEach {α : Type} (s : Sinks) (items : Array α) (f : α → ByteArray)
    (every : Nat := 1000) (label : String := "rows") : IO Nat := do
  let total := items.size
  let mut done := 0
  for item in items do
    s.row (f item)
    done := done + 1
    if every != 0 && done % every == 0 then
      s.checkCancelled
      s.reportProgress done total label
  if every == 0 || done % every != 0 then
    s.reportProgress done total label
  return done

end Sinks

/-- A command export that runs the handler named by the command, or fails naming the known
commands. -/
def dispatch (handlers : Array (String × Handler)) : Command := fun command input sinks =>
  match handlers.find? (·.1 == command) with
  | some (_, handler) => handler input sinks
  | none =>
    throw (IO.userError s!"no command {command}; this capability knows {handlers.toList.map (·.1)}")

/-- The summary output of a command that has nothing to return. -/
def noOutput : ByteArray := ByteArray.empty

end Capnp.Worker
