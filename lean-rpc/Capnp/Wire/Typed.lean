import Capnp.Wire.Builder

/-!
# Capnp.Wire.Typed

The classes generated code plugs into: struct wrapper types (`StructReaderType`,
`StructBuilderType`), typed lists (`ListOf α` for reading, `BuildList α` for building) with
element classes, and the stream framing of whole messages.
-/

namespace Capnp

/-- A generated struct reader type. -/
class StructReaderType (R : Type) where
  dataWords : Nat
  pointerCount : Nat
  wrap : StructReader → R

/-- A generated struct builder type. -/
class StructBuilderType (B : Type) where
  dataWords : Nat
  pointerCount : Nat
  wrap : StructBuilder → B

/-- Values stored inline in a list (numbers, Bool, Void, enums). -/
class PrimElem (α : Type) where
  encoding : ListEncoding
  read : ListReader → Nat → α
  write : ListBuilder → Nat → α → BuildM Unit

/-- How a typed list reads its elements. -/
class ListElem (α : Type) where
  encoding : ListEncoding
  read : ListReader → Nat → ReadM α

/-- How a typed list is allocated when building. -/
class BuildElem (α : Type) where
  encoding : ListEncoding

/-- Enums are 16-bit list elements. -/
def PrimElem.viaUInt16 (toRaw : α → UInt16) (ofRaw : UInt16 → α) : PrimElem α :=
  { encoding := .twoBytes, read := fun l i => ofRaw (l.getU16 i), write := fun l i v => l.setU16 i (toRaw v) }

instance : PrimElem Unit := ⟨.void, fun _ _ => (), fun _ _ _ => pure ()⟩
instance : PrimElem Bool := ⟨.bit, fun l i => l.getBool i, fun l i v => l.setBool i v⟩
instance : PrimElem UInt8 := ⟨.byte, fun l i => l.getU8 i, fun l i v => l.setU8 i v⟩
instance : PrimElem UInt16 := ⟨.twoBytes, fun l i => l.getU16 i, fun l i v => l.setU16 i v⟩
instance : PrimElem UInt32 := ⟨.fourBytes, fun l i => l.getU32 i, fun l i v => l.setU32 i v⟩
instance : PrimElem UInt64 := ⟨.eightBytes, fun l i => l.getU64 i, fun l i v => l.setU64 i v⟩
instance : PrimElem Int8 := ⟨.byte, fun l i => (l.getU8 i).toInt8, fun l i v => l.setU8 i v.toUInt8⟩
instance : PrimElem Int16 := ⟨.twoBytes, fun l i => (l.getU16 i).toInt16, fun l i v => l.setU16 i v.toUInt16⟩
instance : PrimElem Int32 := ⟨.fourBytes, fun l i => (l.getU32 i).toInt32, fun l i v => l.setU32 i v.toUInt32⟩
instance : PrimElem Int64 := ⟨.eightBytes, fun l i => (l.getU64 i).toInt64, fun l i v => l.setU64 i v.toUInt64⟩
instance : PrimElem Float32 :=
  ⟨.fourBytes, fun l i => Float32.ofBits (l.getU32 i), fun l i v => l.setU32 i v.toBits⟩
instance : PrimElem Float := ⟨.eightBytes, fun l i => Float.ofBits (l.getU64 i), fun l i v => l.setU64 i v.toBits⟩

instance [PrimElem α] : ListElem α := ⟨PrimElem.encoding (α := α), fun l i => pure (PrimElem.read l i)⟩
instance [PrimElem α] : BuildElem α := ⟨PrimElem.encoding (α := α)⟩

instance [h : StructReaderType R] : ListElem R :=
  ⟨.composite h.dataWords h.pointerCount, fun l i => do return h.wrap (← l.getStruct i)⟩
instance [h : StructBuilderType B] : BuildElem B := ⟨.composite h.dataWords h.pointerCount⟩

instance : ListElem String := ⟨.pointer, fun l i => (l.ptr i).readTextOr ""⟩
instance : ListElem ByteArray := ⟨.pointer, fun l i => (l.ptr i).readDataOr ByteArray.empty⟩
instance : ListElem PointerReader := ⟨.pointer, fun l i => pure (l.ptr i)⟩
instance : BuildElem String := ⟨.pointer⟩
instance : BuildElem ByteArray := ⟨.pointer⟩
instance : BuildElem PointerSlot := ⟨.pointer⟩

/-- A list read from a message whose elements are `α`. -/
structure ListOf (α : Type) where
  list : ListReader
  deriving Inhabited

/-- Checks that a list's encoding can be read as elements encoded as `enc`. -/
def compatible (enc : ListEncoding) (l : ListReader) : Bool :=
  if l.count == 0 then true else
  match enc with
  | .pointer => l.elemSize == 6 || (l.elemSize == 7 && l.ptrCount > 0)
  | .composite .. => l.elemSize != 1
  | .bit => l.elemSize == 1
  | .void => true
  | other => l.elemSize != 1 && l.elemSize != 6 && l.dataBits ≥ elemBits other.code

/-- Reads a typed list from a pointer (null gives the default, else the empty list). -/
def ListOf.read [ListElem α] (p : PointerReader) (dflt : Option Message) : ReadM (ListOf α) := do
  let l ← p.readListOr dflt
  if !compatible (ListElem.encoding (α := α)) l then
    throw (WireError.malformed s!"list element size {l.elemSize} does not match the schema")
  return ⟨l⟩

instance [ListElem α] : ListElem (ListOf α) := ⟨.pointer, fun l i => ListOf.read (l.ptr i) none⟩

def ListOf.size (l : ListOf α) : Nat := l.list.count

def ListOf.get [ListElem α] (l : ListOf α) (i : Nat) : ReadM α :=
  if i < l.list.count then ListElem.read l.list i
  else throw (WireError.outOfBounds s!"list index {i} of {l.list.count}")

def ListOf.toArray [ListElem α] (l : ListOf α) : ReadM (Array α) := do
  let mut out := #[]
  for i in [0:l.list.count] do
    out := out.push (← l.get i)
  return out

/-- A list being built whose elements are `α` (builder types for structs, `BuildList` for
nested lists). -/
structure BuildList (α : Type) where
  list : ListBuilder
  deriving Inhabited

instance [BuildElem α] : BuildElem (BuildList α) := ⟨.pointer⟩

def BuildList.initAt [BuildElem α] (slot : PointerSlot) (n : Nat) : BuildM (BuildList α) := do
  return ⟨← slot.initList (BuildElem.encoding (α := α)) n⟩

def BuildList.size (l : BuildList α) : Nat := l.list.count
def BuildList.set [PrimElem α] (l : BuildList α) (i : Nat) (v : α) : BuildM Unit := PrimElem.write l.list i v
def BuildList.get [StructBuilderType B] (l : BuildList B) (i : Nat) : B := StructBuilderType.wrap (l.list.getStruct i)
def BuildList.setText (l : BuildList String) (i : Nat) (s : String) : BuildM Unit := (l.list.ptr i).setText s
def BuildList.setData (l : BuildList ByteArray) (i : Nat) (d : ByteArray) : BuildM Unit := (l.list.ptr i).setData d
def BuildList.setCap (l : BuildList α) (i : Nat) (h : CapHandle) : BuildM Unit := (l.list.ptr i).setCap h
def BuildList.slot (l : BuildList α) (i : Nat) : PointerSlot := l.list.ptr i
def BuildList.init [BuildElem α] (l : BuildList (BuildList α)) (i n : Nat) : BuildM (BuildList α) :=
  BuildList.initAt (l.list.ptr i) n

/-! ## Whole messages -/

/-- Reads the root struct of a message. -/
def Message.root [StructReaderType R] (m : Message) : Except WireError R :=
  m.read do return StructReaderType.wrap (← m.rootPointer.readStructOr none)

/-- Builds a message whose root is a `B`. -/
def buildMessage [h : StructBuilderType B] (fill : B → BuildM Unit) (firstSegmentWords : Nat := 1024)
    (growSegments := true) (caps : Array CapHandle := #[]) : Except WireError Message := do
  let act : BuildM Unit := do
    let root ← rootSlot.initStruct h.dataWords h.pointerCount
    fill (h.wrap root)
  let (_, mb) ← act.run { MessageBuilder.new firstSegmentWords growSegments with caps }
  return mb.finish

/-- Copies a message into a fresh builder (re-encoding it). -/
def Message.reencode (m : Message) (firstSegmentWords : Nat := 1024) : Except WireError Message := do
  let (_, mb) ← (rootSlot.copyFrom m.rootPointer).run (MessageBuilder.new firstSegmentWords)
  return mb.finish

private def putU32 (b : ByteArray) (v : UInt32) : ByteArray :=
  b.push v.toUInt8 |>.push (v >>> 8).toUInt8 |>.push (v >>> 16).toUInt8 |>.push (v >>> 24).toUInt8

/-- The standard stream framing: segment count − 1, segment sizes in words, padding, segments. -/
def Message.toBytes (m : Message) : ByteArray := Id.run do
  let mut out := putU32 ByteArray.empty (m.segments.size - 1).toUInt32
  for s in m.segments do
    out := putU32 out (s.size / 8).toUInt32
  if m.segments.size % 2 == 0 then
    out := putU32 out 0
  for s in m.segments do
    out := out ++ s
  return out

/-- Parses the standard stream framing. -/
def Message.ofBytes (bytes : ByteArray) (limits : ReadLimits := {}) : Except WireError Message := do
  if bytes.size < 4 then throw (.outOfBounds "message header")
  let count := (getU32 bytes 0).toNat + 1
  if count > 512 then throw (.limitExceeded "too many segments")
  let headerBytes := ((4 + 4 * count + 7) / 8) * 8
  if bytes.size < headerBytes then throw (.outOfBounds "segment table")
  let mut offset := headerBytes
  let mut segments := #[]
  for i in [0:count] do
    let words := (getU32 bytes (4 + 4 * i)).toNat
    if offset + words * 8 > bytes.size then throw (.outOfBounds s!"segment {i}")
    segments := segments.push (bytes.extract offset (offset + words * 8))
    offset := offset + words * 8
  return { segments, limits }

end Capnp
