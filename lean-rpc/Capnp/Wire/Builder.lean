import Capnp.Wire.Reader

/-!
# Capnp.Wire.Builder

Building messages. Segments are allocated zeroed at full capacity; an object goes in the segment
of the pointer that refers to it when it fits, otherwise in another segment together with a
landing pad word just before it, and the pointer becomes a far pointer to that pad. Builders are
positions; all state lives in the `MessageBuilder` threaded by `BuildM`.
-/

namespace Capnp

/-- A message under construction. -/
structure MessageBuilder where
  segments : Array ByteArray
  used : Array Nat
  caps : Array CapHandle := #[]
  /-- Size of segments allocated when the current ones are full. -/
  nextSegmentWords : Nat
  /-- Whether later segments grow (doubling) or keep `nextSegmentWords` (useful in tests to force
  far pointers). -/
  growSegments : Bool := true

abbrev BuildM := StateT MessageBuilder (Except WireError)

private def zeroSegment (words : Nat) : ByteArray := ByteArray.mk (List.replicate (words * 8) 0).toArray

/-- An empty message; word 0 of segment 0 is the root pointer. -/
def MessageBuilder.new (firstSegmentWords : Nat := 1024) (growSegments := true) : MessageBuilder :=
  let first := max firstSegmentWords 1
  { segments := #[zeroSegment first], used := #[1], nextSegmentWords := first, growSegments }

/-- The finished message: each segment trimmed to the words in use. -/
def MessageBuilder.finish (mb : MessageBuilder) : Message := Id.run do
  let mut segments := #[]
  for i in [0:mb.segments.size] do
    segments := segments.push ((mb.segments[i]!).extract 0 (mb.used[i]! * 8))
  return { segments, caps := mb.caps }

private def trySegment (mb : MessageBuilder) (seg words : Nat) : Option (MessageBuilder × Nat) :=
  match mb.segments[seg]?, mb.used[seg]? with
  | some s, some used =>
    if used + words ≤ s.size / 8 then some ({ mb with used := mb.used.set! seg (used + words) }, used)
    else none
  | _, _ => none

/-- Allocates `words` zeroed words, preferring segment `prefer`, then the last segment, then a
new one. Returns (segment, first word). -/
def allocate (words : Nat) (prefer : Nat) : BuildM (Nat × Nat) := do
  let mb ← get
  if let some (mb', start) := trySegment mb prefer words then
    set mb'
    return (prefer, start)
  let last := mb.segments.size - 1
  if last != prefer then
    if let some (mb', start) := trySegment mb last words then
      set mb'
      return (last, start)
  let size := max words mb.nextSegmentWords
  let next := if mb.growSegments then mb.nextSegmentWords * 2 else mb.nextSegmentWords
  set { mb with segments := mb.segments.push (zeroSegment size), used := mb.used.push words,
                nextSegmentWords := next }
  return (mb.segments.size, 0)

def setByte (seg i : Nat) (v : UInt8) : BuildM Unit :=
  modify fun mb => { mb with segments := mb.segments.modify seg (·.set! i v) }

def setU16At (seg i : Nat) (v : UInt16) : BuildM Unit := do
  setByte seg i v.toUInt8; setByte seg (i + 1) (v >>> 8).toUInt8
def setU32At (seg i : Nat) (v : UInt32) : BuildM Unit := do
  setU16At seg i v.toUInt16; setU16At seg (i + 2) (v >>> 16).toUInt16
def setU64At (seg i : Nat) (v : UInt64) : BuildM Unit := do
  setU32At seg i v.toUInt32; setU32At seg (i + 4) (v >>> 32).toUInt32

def getU8At (seg i : Nat) : BuildM UInt8 := do
  return getU8 ((← get).segments[seg]?.getD ByteArray.empty) i

/-- A struct being built. -/
structure StructBuilder where
  seg : Nat
  dataByte : Nat
  dataSize : Nat
  ptrWord : Nat
  ptrCount : Nat
  deriving Inhabited

/-- A pointer slot being built (in a struct, a list, or the root). -/
structure PointerSlot where
  seg : Nat
  word : Nat
  deriving Inhabited

/-- A list being built; same layout fields as `ListReader`. -/
structure ListBuilder where
  seg : Nat
  startByte : Nat
  count : Nat
  elemSize : Nat
  stepBits : Nat
  dataBits : Nat
  ptrCount : Nat
  deriving Inhabited

private def checkData (b : StructBuilder) (off width : Nat) : BuildM Unit := do
  if off + width > b.dataSize then throw (WireError.outOfBounds s!"data offset {off} outside the struct")

def StructBuilder.setU8 (b : StructBuilder) (off : Nat) (v : UInt8) : BuildM Unit := do
  checkData b off 1; setByte b.seg (b.dataByte + off) v
def StructBuilder.setU16 (b : StructBuilder) (off : Nat) (v : UInt16) : BuildM Unit := do
  checkData b off 2; setU16At b.seg (b.dataByte + off) v
def StructBuilder.setU32 (b : StructBuilder) (off : Nat) (v : UInt32) : BuildM Unit := do
  checkData b off 4; setU32At b.seg (b.dataByte + off) v
def StructBuilder.setU64 (b : StructBuilder) (off : Nat) (v : UInt64) : BuildM Unit := do
  checkData b off 8; setU64At b.seg (b.dataByte + off) v
def StructBuilder.setBool (b : StructBuilder) (bit : Nat) (v : Bool) : BuildM Unit := do
  checkData b (bit / 8) 1
  let i := b.dataByte + bit / 8
  let old ← getU8At b.seg i
  let mask : UInt8 := 1 <<< (bit % 8).toUInt8
  setByte b.seg i (if v then old ||| mask else old &&& ~~~mask)

def StructBuilder.ptr (b : StructBuilder) (i : Nat) : PointerSlot := { seg := b.seg, word := b.ptrWord + i }

/-- The 30-bit signed offset field of a pointer, already shifted into place. -/
def offsetBits (off : Int) : UInt64 :=
  let n : Int := if off < 0 then 2 ^ 30 + off else off
  (n.toNat * 4).toUInt64

/-- Allocates `words` for the object of `slot` and points `slot` at it with `tag` (kind bits and
upper half; the offset is filled in here). Returns (segment, first word). -/
def PointerSlot.allocate (slot : PointerSlot) (words : Nat) (tag : UInt64) : BuildM (Nat × Nat) := do
  let mb ← get
  if let some (mb', start) := trySegment mb slot.seg words then
    set mb'
    setU64At slot.seg (slot.word * 8) (tag ||| offsetBits ((start : Int) - (slot.word + 1)))
    return (slot.seg, start)
  -- Elsewhere: landing pad first, then the object; the slot becomes a single far pointer.
  -- Qualified: inside `PointerSlot.allocate`, a bare `allocate` names this very function.
  let (seg, pad) ← Capnp.allocate (words + 1) (mb.segments.size - 1)
  if seg == slot.seg then
    setU64At seg (pad * 8) 0
    setU64At slot.seg (slot.word * 8) (tag ||| offsetBits ((pad + 1 : Int) - (slot.word + 1)))
    return (seg, pad + 1)
  setU64At seg (pad * 8) tag
  setU64At slot.seg (slot.word * 8) ((2 : UInt64) ||| (pad.toUInt64 <<< 3) ||| (seg.toUInt64 <<< 32))
  return (seg, pad + 1)

def structTag (dw pc : Nat) : UInt64 := (dw.toUInt64 <<< 32) ||| (pc.toUInt64 <<< 48)

/-- Points `slot` at a new zeroed struct. -/
def PointerSlot.initStruct (slot : PointerSlot) (dw pc : Nat) : BuildM StructBuilder := do
  let (seg, start) ← slot.allocate (dw + pc) (structTag dw pc)
  return { seg, dataByte := start * 8, dataSize := dw * 8, ptrWord := start + dw, ptrCount := pc }

/-- How a list's elements are encoded. -/
inductive ListEncoding where
  | void | bit | byte | twoBytes | fourBytes | eightBytes | pointer
  | composite (dataWords ptrCount : Nat)
  deriving Repr, BEq, Inhabited

def ListEncoding.code : ListEncoding → Nat
  | .void => 0 | .bit => 1 | .byte => 2 | .twoBytes => 3 | .fourBytes => 4 | .eightBytes => 5
  | .pointer => 6 | .composite .. => 7

/-- Points `slot` at a new zeroed list of `n` elements. -/
def PointerSlot.initList (slot : PointerSlot) (enc : ListEncoding) (n : Nat) : BuildM ListBuilder := do
  match enc with
  | .composite dw pc =>
    let words := n * (dw + pc)
    let (seg, start) ← slot.allocate (words + 1) ((1 : UInt64) ||| ((7 : UInt64) <<< 32) ||| (words.toUInt64 <<< 35))
    setU64At seg (start * 8) ((n.toUInt64 <<< 2) ||| structTag dw pc)
    return { seg, startByte := (start + 1) * 8, count := n, elemSize := 7, stepBits := (dw + pc) * 64,
             dataBits := dw * 64, ptrCount := pc }
  | _ =>
    let code := enc.code
    let bits := elemBits code
    let (seg, start) ← slot.allocate ((n * bits + 63) / 64)
      ((1 : UInt64) ||| (code.toUInt64 <<< 32) ||| (n.toUInt64 <<< 35))
    return { seg, startByte := start * 8, count := n, elemSize := code, stepBits := bits,
             dataBits := if code == 6 then 0 else bits, ptrCount := if code == 6 then 1 else 0 }

private def setBytes (slot : PointerSlot) (bytes : ByteArray) : BuildM Unit := do
  let l ← slot.initList .byte bytes.size
  for i in [0:bytes.size] do
    setByte l.seg (l.startByte + i) (bytes.get! i)

/-- Writes Text (UTF-8 plus the NUL terminator). -/
def PointerSlot.setText (slot : PointerSlot) (s : String) : BuildM Unit :=
  setBytes slot (s.toUTF8.push 0)

/-- Writes Data. -/
def PointerSlot.setData (slot : PointerSlot) (d : ByteArray) : BuildM Unit := setBytes slot d

/-- Appends `h` to the capability table and points `slot` at it. -/
def PointerSlot.setCap (slot : PointerSlot) (h : CapHandle) : BuildM Unit := do
  let mb ← get
  let index := mb.caps.size
  set { mb with caps := mb.caps.push h }
  setU64At slot.seg (slot.word * 8) ((3 : UInt64) ||| (index.toUInt64 <<< 32))

private def ListBuilder.elemByte (l : ListBuilder) (i : Nat) : Nat := l.startByte + i * l.stepBits / 8

private def checkIndex (l : ListBuilder) (i : Nat) : BuildM Unit := do
  if i ≥ l.count then throw (WireError.outOfBounds s!"list index {i} of {l.count}")

def ListBuilder.setU8 (l : ListBuilder) (i : Nat) (v : UInt8) : BuildM Unit := do
  checkIndex l i; setByte l.seg (l.elemByte i) v
def ListBuilder.setU16 (l : ListBuilder) (i : Nat) (v : UInt16) : BuildM Unit := do
  checkIndex l i; setU16At l.seg (l.elemByte i) v
def ListBuilder.setU32 (l : ListBuilder) (i : Nat) (v : UInt32) : BuildM Unit := do
  checkIndex l i; setU32At l.seg (l.elemByte i) v
def ListBuilder.setU64 (l : ListBuilder) (i : Nat) (v : UInt64) : BuildM Unit := do
  checkIndex l i; setU64At l.seg (l.elemByte i) v
def ListBuilder.setBool (l : ListBuilder) (i : Nat) (v : Bool) : BuildM Unit := do
  checkIndex l i
  let byte := l.startByte + i / 8
  let old ← getU8At l.seg byte
  let mask : UInt8 := 1 <<< (i % 8).toUInt8
  setByte l.seg byte (if v then old ||| mask else old &&& ~~~mask)

def ListBuilder.getStruct (l : ListBuilder) (i : Nat) : StructBuilder :=
  let start := l.elemByte i
  { seg := l.seg, dataByte := start, dataSize := l.dataBits / 8,
    ptrWord := (start + l.dataBits / 8) / 8, ptrCount := l.ptrCount }

def ListBuilder.ptr (l : ListBuilder) (i : Nat) : PointerSlot :=
  { seg := l.seg, word := (l.elemByte i + l.dataBits / 8) / 8 }

/-! ## Deep copy (for `set` of struct and list fields, and re-encoding) -/

/-- Runs a read inside a build, with a fresh traversal budget. -/
def readInBuild (r : ReadM α) (budget : Nat := 8 * 1024 * 1024) : BuildM α :=
  match r.run' budget with
  | .ok a => pure a
  | .error e => throw e

private def copyData (fromMsg : Message) (fromSeg fromByte : Nat) (toSeg toByte bytes : Nat) : BuildM Unit := do
  let src := fromMsg.segments[fromSeg]?.getD ByteArray.empty
  for i in [0:bytes] do
    setByte toSeg (toByte + i) (getU8 src (fromByte + i))

instance : Inhabited (BuildM α) := ⟨throw (WireError.malformed "unreachable")⟩

mutual
/-- Copies whatever `src` points to into `dst`, recursively; capabilities are re-added to the
builder's table. -/
partial def copyPointer (src : PointerReader) (dst : PointerSlot) : BuildM Unit := do
  match ← readInBuild src.target with
  | .null => pure ()
  | .cap i => dst.setCap (src.msg.caps[i]?.getD CapHandle.null)
  | .struct .. =>
    match ← readInBuild src.readStruct with
    | some s => copyStruct s dst
    | none => pure ()
  | .list .. =>
    match ← readInBuild src.readList with
    | some l => copyList l dst
    | none => pure ()

partial def copyStruct (s : StructReader) (dst : PointerSlot) : BuildM Unit := do
  let b ← dst.initStruct (s.dataSize / 8) s.ptrCount
  copyData s.msg s.seg s.dataByte b.seg b.dataByte s.dataSize
  for i in [0:s.ptrCount] do
    copyPointer (s.ptr i) (b.ptr i)

partial def copyList (l : ListReader) (dst : PointerSlot) : BuildM Unit := do
  let enc : ListEncoding := match l.elemSize with
    | 0 => .void | 1 => .bit | 2 => .byte | 3 => .twoBytes | 4 => .fourBytes | 5 => .eightBytes
    | 6 => .pointer | _ => .composite (l.dataBits / 64) l.ptrCount
  let b ← dst.initList enc l.count
  if l.elemSize == 7 then
    for i in [0:l.count] do
      let e ← readInBuild (l.getStruct i)
      let t := b.getStruct i
      copyData l.msg l.seg e.dataByte t.seg t.dataByte e.dataSize
      for p in [0:e.ptrCount] do
        copyPointer (e.ptr p) (t.ptr p)
  else if l.elemSize == 6 then
    for i in [0:l.count] do
      copyPointer (l.ptr i) (b.ptr i)
  else
    copyData l.msg l.seg l.startByte b.seg b.startByte ((l.count * l.stepBits + 7) / 8)
end

/-- Deep-copies a struct into `slot`. -/
def PointerSlot.setStruct (slot : PointerSlot) (s : StructReader) : BuildM Unit := copyStruct s slot

/-- Deep-copies a list into `slot`. -/
def PointerSlot.setList (slot : PointerSlot) (l : ListReader) : BuildM Unit := copyList l slot

/-- Deep-copies any pointer into `slot`. -/
def PointerSlot.copyFrom (slot : PointerSlot) (p : PointerReader) : BuildM Unit := copyPointer p slot

/-- The root pointer slot. -/
def rootSlot : PointerSlot := { seg := 0, word := 0 }

end Capnp
