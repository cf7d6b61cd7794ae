import Capnp
import Tests.Gen.TestAll

/-!
Runtime tests that need hand-made messages: double-far pointers, traversal and nesting limits,
bounds checks and malformed input.
-/

namespace Tests.Wire

open Capnp Tests.Gen.TestAll

/-- A little-endian word. -/
def word (v : UInt64) : ByteArray := Id.run do
  let mut b := ByteArray.empty
  for i in [0:8] do
    b := b.push (v >>> (8 * i).toUInt64).toUInt8
  return b

def segment (words : List UInt64) : ByteArray := words.foldl (fun acc w => acc ++ word w) ByteArray.empty

/-- Root (segment 0) is a double-far pointer to a pad in segment 1, whose far pointer leads to a
one-word struct in segment 2 holding 42. -/
def doubleFar : Message :=
  { segments := #[
      segment [(2 : UInt64) ||| (4 : UInt64) ||| ((0 : UInt64) <<< 3) ||| ((1 : UInt64) <<< 32)],
      segment [(2 : UInt64) ||| ((0 : UInt64) <<< 3) ||| ((2 : UInt64) <<< 32), ((1 : UInt64) <<< 32)],
      segment [42]] }

def expectError (what : String) (r : Except WireError α) (ok : WireError → Bool) : IO Bool := do
  match r with
  | .error e =>
    if ok e then
      IO.println s!"ok   {what} ({e})"
      return true
    IO.eprintln s!"FAIL {what}: wrong error {e}"
    return false
  | .ok _ =>
    IO.eprintln s!"FAIL {what}: no error"
    return false

def isLimit : WireError → Bool | .limitExceeded _ => true | _ => false
def isBounds : WireError → Bool | .outOfBounds _ => true | _ => false
def isMalformed : WireError → Bool | .malformed _ => true | _ => false

def run : IO Nat := do
  let mut failures := 0
  let viaDoubleFar : Except WireError UInt64 :=
    doubleFar.read do return (← doubleFar.rootPointer.readStructOr none).getU64 0
  match viaDoubleFar with
  | .ok v =>
    if v == 42 then IO.println "ok   double-far pointer is followed"
    else
      IO.eprintln s!"FAIL double-far pointer: read {v}"
      failures := failures + 1
  | .error e =>
    IO.eprintln s!"FAIL double-far pointer: {e}"
    failures := failures + 1
  let bytes ← IO.FS.readBinFile (System.FilePath.mk "../capnp-schemas/testdata/all_types.bin")
  let render (m : Message) : Except WireError (Array String) := m.read do
    let r : AllTypes.Reader := ⟨← m.rootPointer.readStructOr none⟩
    let _ ← (← r.getStructField).getTextField
    let _ ← (← r.getTextListList).toArray
    return #[]
  match Message.ofBytes bytes with
  | .error e =>
    IO.eprintln s!"FAIL all_types.bin: {e}"
    failures := failures + 1
  | .ok msg =>
    if !(← expectError "traversal limit stops reading" (render { msg with limits := { traversalWords := 20 } }) isLimit) then
      failures := failures + 1
    if !(← expectError "nesting limit stops reading" (render { msg with limits := { nestingDepth := 1 } }) isLimit) then
      failures := failures + 1
    let truncated := { msg with segments := msg.segments.map fun s => s.extract 0 (s.size / 2) }
    if !(← expectError "truncated segment is out of bounds" (render truncated) isBounds) then
      failures := failures + 1
  if !(← expectError "truncated framing is rejected" (Message.ofBytes (bytes.extract 0 12)) isBounds) then
    failures := failures + 1
  -- A byte list of "ab" without its NUL terminator, read as Text.
  let noNul : Message := { segments := #[segment [(1 : UInt64) ||| ((2 : UInt64) <<< 32) ||| ((2 : UInt64) <<< 35), 0x6261]] }
  if !(← expectError "text without NUL is malformed" (noNul.read (noNul.rootPointer.readTextOr "")) isMalformed) then
    failures := failures + 1
  let listOfThree : Message := { segments := #[segment [(1 : UInt64) ||| ((4 : UInt64) <<< 32) ||| ((3 : UInt64) <<< 35), 0, 0]] }
  let outOfRange := listOfThree.read do
    let l : ListOf UInt32 ← ListOf.read listOfThree.rootPointer none
    l.get 3
  if !(← expectError "list index past the end is out of bounds" outOfRange isBounds) then
    failures := failures + 1
  let wrongKind := listOfThree.read (listOfThree.rootPointer.readStructOr none)
  if !(← expectError "a list where a struct is expected is malformed" wrongKind isMalformed) then
    failures := failures + 1
  return failures

end Tests.Wire
