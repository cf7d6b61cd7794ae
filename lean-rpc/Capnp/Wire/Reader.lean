/-!
# Capnp.Wire.Reader

Reading Cap'n Proto messages held as `ByteArray` segments. Hides the pointer encoding (struct,
list, far and capability pointers); promises that every read is bounds-checked against its
segment, that following pointers is limited in depth (`nestingDepth`) and in total words
(`traversalWords`, threaded through `ReadM`), and that data beyond a struct's data section reads as
zero (schema evolution). Knows nothing about RPC: capability pointers resolve to entries of the
message's capability table, whose meaning belongs to a backend.
-/

namespace Capnp

/-- A `String` from its characters. `List.asString` is deprecated on 4.28 in favour of
`String.ofList`; folding `String.push` means the same on 4.28 and on our 4.35 pin. -/
def stringOfChars (cs : List Char) : String := cs.foldl String.push ""

/-- Why reading or building a message failed. -/
inductive WireError where
  | outOfBounds (what : String)
  | malformed (what : String)
  | limitExceeded (what : String)
  deriving Repr, BEq, Inhabited

instance : ToString WireError where
  toString
    | .outOfBounds w => s!"capnp: out of bounds: {w}"
    | .malformed w => s!"capnp: malformed message: {w}"
    | .limitExceeded w => s!"capnp: limit exceeded: {w}"

/-- An entry of a message's capability table. Opaque to the wire layer; `null` (id 0) is the
null/broken capability. -/
structure CapHandle where
  id : UInt64
  deriving BEq, Hashable, Repr, Inhabited

def CapHandle.null : CapHandle := ⟨0⟩

/-- Limits applied while reading a message. -/
structure ReadLimits where
  traversalWords : Nat := 8 * 1024 * 1024
  nestingDepth : Nat := 64
  deriving Inhabited

/-- A message: segments of little-endian words and its capability table. -/
structure Message where
  segments : Array ByteArray
  caps : Array CapHandle := #[]
  limits : ReadLimits := {}
  deriving Inhabited

/-- Reading state: the traversal budget left, in words. -/
abbrev ReadM := StateT Nat (Except WireError)

instance : Inhabited (ReadM α) := ⟨throw (WireError.malformed "unreachable")⟩

/-- Runs a read against a message's traversal limit. -/
def Message.read (m : Message) (r : ReadM α) : Except WireError α :=
  r.run' m.limits.traversalWords

/-- A message of one segment (e.g. a schema default value). -/
def Message.ofSegment (segment : ByteArray) : Message := { segments := #[segment] }

/-- A message whose root pointer is null. -/
def Message.empty : Message := Message.ofSegment (ByteArray.mk #[0, 0, 0, 0, 0, 0, 0, 0])

/-! ## Little-endian access -/

@[inline] def getU8 (b : ByteArray) (i : Nat) : UInt8 := b[i]!

def getU16 (b : ByteArray) (i : Nat) : UInt16 :=
  (getU8 b i).toUInt16 ||| ((getU8 b (i + 1)).toUInt16 <<< 8)

def getU32 (b : ByteArray) (i : Nat) : UInt32 :=
  (getU16 b i).toUInt32 ||| ((getU16 b (i + 2)).toUInt32 <<< 16)

def getU64 (b : ByteArray) (i : Nat) : UInt64 :=
  (getU32 b i).toUInt64 ||| ((getU32 b (i + 4)).toUInt64 <<< 32)

private def segmentOf (m : Message) (seg : Nat) : Except WireError ByteArray :=
  match m.segments[seg]? with
  | some s => pure s
  | none => throw (.outOfBounds s!"segment {seg} of {m.segments.size}")

/-- The word at `word` in segment `seg`, bounds-checked. -/
def wordAt (m : Message) (seg word : Nat) : ReadM UInt64 := do
  let s ← segmentOf m seg
  if (word + 1) * 8 > s.size then throw (.outOfBounds s!"word {word} of segment {seg}")
  return getU64 s (word * 8)

/-- Checks that `words` words starting at `start` lie inside segment `seg`. -/
def checkRange (m : Message) (seg start words : Nat) : ReadM Unit := do
  let s ← segmentOf m seg
  if (start + words) * 8 > s.size then
    throw (.outOfBounds s!"object of {words} words at {start} overruns segment {seg}")

/-- Spends traversal budget; every object is charged at least one word so that empty structs
and lists of zero-sized elements cannot be used to amplify work. -/
def charge (words : Nat) : ReadM Unit := do
  let left ← get
  let cost := max words 1
  if cost > left then throw (.limitExceeded "traversal limit")
  set (left - cost)

/-! ## Readers -/

/-- A struct inside a message. Data beyond `dataSize` and pointers beyond `ptrCount` read as
zero/null. -/
structure StructReader where
  msg : Message
  seg : Nat
  dataByte : Nat
  dataSize : Nat
  ptrWord : Nat
  ptrCount : Nat
  depth : Nat
  deriving Inhabited

/-- The struct every field of which has its default value. -/
def StructReader.empty : StructReader :=
  { msg := Message.empty, seg := 0, dataByte := 0, dataSize := 0, ptrWord := 0, ptrCount := 0, depth := 0 }

/-- A pointer slot inside a message (in a struct's pointer section or a list). -/
structure PointerReader where
  msg : Message
  seg : Nat
  word : Nat
  present : Bool
  depth : Nat
  deriving Inhabited

/-- A list inside a message. `stepBits` is the distance between elements; each element has
`dataBits` of data followed by `ptrCount` pointers (composite lists), or is a single value. -/
structure ListReader where
  msg : Message
  seg : Nat
  startByte : Nat
  count : Nat
  elemSize : Nat
  stepBits : Nat
  dataBits : Nat
  ptrCount : Nat
  depth : Nat
  deriving Inhabited

def ListReader.empty : ListReader :=
  { msg := Message.empty, seg := 0, startByte := 0, count := 0, elemSize := 0, stepBits := 0,
    dataBits := 0, ptrCount := 0, depth := 0 }

def Message.rootPointer (m : Message) : PointerReader :=
  { msg := m, seg := 0, word := 0, present := m.segments.size > 0, depth := m.limits.nestingDepth }

private def segBytes (m : Message) (seg : Nat) : ByteArray := m.segments[seg]?.getD ByteArray.empty

def StructReader.getU8 (r : StructReader) (off : Nat) : UInt8 :=
  if off + 1 ≤ r.dataSize then Capnp.getU8 (segBytes r.msg r.seg) (r.dataByte + off) else 0
def StructReader.getU16 (r : StructReader) (off : Nat) : UInt16 :=
  if off + 2 ≤ r.dataSize then Capnp.getU16 (segBytes r.msg r.seg) (r.dataByte + off) else 0
def StructReader.getU32 (r : StructReader) (off : Nat) : UInt32 :=
  if off + 4 ≤ r.dataSize then Capnp.getU32 (segBytes r.msg r.seg) (r.dataByte + off) else 0
def StructReader.getU64 (r : StructReader) (off : Nat) : UInt64 :=
  if off + 8 ≤ r.dataSize then Capnp.getU64 (segBytes r.msg r.seg) (r.dataByte + off) else 0
def StructReader.getBool (r : StructReader) (bit : Nat) : Bool :=
  ((r.getU8 (bit / 8) >>> (bit % 8).toUInt8) &&& 1) == 1

def StructReader.ptr (r : StructReader) (i : Nat) : PointerReader :=
  { msg := r.msg, seg := r.seg, word := r.ptrWord + i, present := i < r.ptrCount, depth := r.depth }

def StructReader.dataWords (r : StructReader) : Nat := r.dataSize / 8

/-- What a pointer refers to, after following far pointers. -/
inductive Target where
  | null
  | struct (seg start dataWords ptrCount : Nat)
  | list (seg start elemSize count : Nat)
  | cap (index : Nat)

/-- The signed 30-bit offset of a struct or list pointer, in words. -/
def pointerOffset (w : UInt64) : Int :=
  let raw := ((w &&& 0xffffffff) >>> 2).toNat
  if raw ≥ 2 ^ 29 then (raw : Int) - 2 ^ 30 else raw

/-- The word a struct or list pointer at `word` points to. -/
private def targetStart (word : Nat) (tag : UInt64) : ReadM Nat := do
  let t : Int := (word : Int) + 1 + pointerOffset tag
  if t < 0 then throw (WireError.outOfBounds "pointer before segment start")
  return t.toNat

private def decodeAt (seg word : Nat) (tag : UInt64) (fixedStart : Option Nat) : ReadM Target := do
  let start ← match fixedStart with
    | some s => pure s
    | none => targetStart word tag
  match (tag &&& 3).toNat with
  | 0 => return .struct seg start ((tag >>> 32) &&& 0xffff).toNat (tag >>> 48).toNat
  | 1 => return .list seg start ((tag >>> 32) &&& 7).toNat (tag >>> 35).toNat
  | 3 => return .cap (tag >>> 32).toNat
  | _ => throw (WireError.malformed "far pointer where a landing pad was expected")

/-- Follows a pointer, including single and double far pointers. -/
def PointerReader.target (p : PointerReader) : ReadM Target := do
  if !p.present then return .null
  let w ← wordAt p.msg p.seg p.word
  if w == 0 then return .null
  if (w &&& 3) != 2 then return (← decodeAt p.seg p.word w none)
  let padSeg := (w >>> 32).toNat
  let pad := ((w &&& 0xffffffff) >>> 3).toNat
  if (w &&& 4) == 0 then
    -- Single far: the landing pad is an ordinary pointer relative to itself.
    let landing ← wordAt p.msg padSeg pad
    decodeAt padSeg pad landing none
  else
    -- Double far: a far pointer to the object's start, then a tag with offset 0.
    let far ← wordAt p.msg padSeg pad
    let tag ← wordAt p.msg padSeg (pad + 1)
    if (far &&& 7) != 2 then throw (WireError.malformed "double-far landing pad is not a far pointer")
    decodeAt (far >>> 32).toNat 0 tag (some ((far &&& 0xffffffff) >>> 3).toNat)

def PointerReader.isNull (p : PointerReader) : Bool :=
  !p.present || (match p.msg.segments[p.seg]? with
    | some s => (p.word + 1) * 8 > s.size || getU64 s (p.word * 8) == 0
    | none => true)

private def enter (p : PointerReader) : ReadM Nat := do
  if p.depth == 0 then throw (WireError.limitExceeded "nesting depth")
  return p.depth - 1

/-- The struct a pointer refers to; `none` when null. -/
def PointerReader.readStruct (p : PointerReader) : ReadM (Option StructReader) := do
  match ← p.target with
  | .null => return none
  | .struct seg start dw pc =>
    let depth ← enter p
    checkRange p.msg seg start (dw + pc)
    charge (dw + pc)
    return some { msg := p.msg, seg, dataByte := start * 8, dataSize := dw * 8,
                  ptrWord := start + dw, ptrCount := pc, depth }
  | _ => throw (WireError.malformed "expected a struct pointer")

/-- Bits per element for list element size codes 0‥6. -/
def elemBits (code : Nat) : Nat :=
  match code with
  | 0 => 0 | 1 => 1 | 2 => 8 | 3 => 16 | 4 => 32 | _ => 64

/-- The list a pointer refers to; `none` when null. -/
def PointerReader.readList (p : PointerReader) : ReadM (Option ListReader) := do
  match ← p.target with
  | .null => return none
  | .list seg start code count =>
    let depth ← enter p
    if code == 7 then
      checkRange p.msg seg start (count + 1)
      let tag ← wordAt p.msg seg start
      if (tag &&& 3) != 0 then throw (WireError.malformed "composite list tag is not a struct tag")
      let elements := ((tag &&& 0xffffffff) >>> 2).toNat
      let dw := ((tag >>> 32) &&& 0xffff).toNat
      let pc := (tag >>> 48).toNat
      if elements * (dw + pc) > count then throw (WireError.malformed "composite list overruns its word count")
      charge (max count elements)
      return some { msg := p.msg, seg, startByte := (start + 1) * 8, count := elements, elemSize := 7,
                    stepBits := (dw + pc) * 64, dataBits := dw * 64, ptrCount := pc, depth }
    else
      let bits := elemBits code
      let words := (count * bits + 63) / 64
      checkRange p.msg seg start words
      charge (max words count)
      let ptrs := if code == 6 then 1 else 0
      let dataBits := if code == 6 then 0 else bits
      return some { msg := p.msg, seg, startByte := start * 8, count, elemSize := code,
                    stepBits := bits, dataBits, ptrCount := ptrs, depth }
  | _ => throw (WireError.malformed "expected a list pointer")

private def byteList (p : PointerReader) : ReadM (Option ByteArray) := do
  match ← p.readList with
  | none => return none
  | some l =>
    if l.elemSize != 2 then throw (WireError.malformed "expected a byte list")
    let s := segBytes l.msg l.seg
    return some (s.extract l.startByte (l.startByte + l.count))

/-- Reads Text, or `dflt` when the pointer is null. -/
def PointerReader.readTextOr (p : PointerReader) (dflt : String) : ReadM String := do
  match ← byteList p with
  | none => return dflt
  | some bytes =>
    if bytes.size == 0 || bytes[bytes.size - 1]! != 0 then throw (WireError.malformed "text without NUL terminator")
    match String.fromUTF8? (bytes.extract 0 (bytes.size - 1)) with
    | some s => return s
    | none => throw (WireError.malformed "text is not UTF-8")

/-- Reads Data, or `dflt` when the pointer is null. -/
def PointerReader.readDataOr (p : PointerReader) (dflt : ByteArray) : ReadM ByteArray := do
  return (← byteList p).getD dflt

/-- Reads a capability; null pointers and indices outside the table give `CapHandle.null`. -/
def PointerReader.readCap (p : PointerReader) : ReadM CapHandle := do
  match ← p.target with
  | .null => return CapHandle.null
  | .cap i => return p.msg.caps[i]?.getD CapHandle.null
  | _ => throw (WireError.malformed "expected a capability pointer")

/-- Reads a struct, falling back to the root of `dflt` (a schema default) or to the empty struct. -/
def PointerReader.readStructOr (p : PointerReader) (dflt : Option Message) : ReadM StructReader := do
  match ← p.readStruct with
  | some s => return s
  | none =>
    match dflt with
    | some m => return (← m.rootPointer.readStruct).getD StructReader.empty
    | none => return StructReader.empty

/-- Reads a list, falling back to the root of `dflt` or to the empty list. -/
def PointerReader.readListOr (p : PointerReader) (dflt : Option Message) : ReadM ListReader := do
  match ← p.readList with
  | some l => return l
  | none =>
    match dflt with
    | some m => return (← m.rootPointer.readList).getD ListReader.empty
    | none => return ListReader.empty

/-! ## List elements -/

private def elemByte (l : ListReader) (i : Nat) : Nat := l.startByte + i * l.stepBits / 8

def ListReader.getU8 (l : ListReader) (i : Nat) : UInt8 :=
  if l.dataBits ≥ 8 then Capnp.getU8 (segBytes l.msg l.seg) (elemByte l i) else 0
def ListReader.getU16 (l : ListReader) (i : Nat) : UInt16 :=
  if l.dataBits ≥ 16 then Capnp.getU16 (segBytes l.msg l.seg) (elemByte l i) else 0
def ListReader.getU32 (l : ListReader) (i : Nat) : UInt32 :=
  if l.dataBits ≥ 32 then Capnp.getU32 (segBytes l.msg l.seg) (elemByte l i) else 0
def ListReader.getU64 (l : ListReader) (i : Nat) : UInt64 :=
  if l.dataBits ≥ 64 then Capnp.getU64 (segBytes l.msg l.seg) (elemByte l i) else 0
def ListReader.getBool (l : ListReader) (i : Nat) : Bool :=
  if l.elemSize == 1 then
    let byte := Capnp.getU8 (segBytes l.msg l.seg) (l.startByte + i / 8)
    ((byte >>> (i % 8).toUInt8) &&& 1) == 1
  else l.getU8 i &&& 1 == 1

/-- Element `i` as a struct (composite lists, or the data/pointer of a primitive list). -/
def ListReader.getStruct (l : ListReader) (i : Nat) : ReadM StructReader := do
  if i ≥ l.count then throw (WireError.outOfBounds s!"list index {i} of {l.count}")
  if l.elemSize == 1 then throw (WireError.malformed "a bit list cannot hold structs")
  let start := elemByte l i
  if l.depth == 0 then throw (WireError.limitExceeded "nesting depth")
  return { msg := l.msg, seg := l.seg, dataByte := start, dataSize := l.dataBits / 8,
           ptrWord := (start + l.dataBits / 8) / 8, ptrCount := l.ptrCount, depth := l.depth - 1 }

/-- Element `i`'s (first) pointer. -/
def ListReader.ptr (l : ListReader) (i : Nat) : PointerReader :=
  let start := elemByte l i
  { msg := l.msg, seg := l.seg, word := (start + l.dataBits / 8) / 8,
    present := i < l.count && l.ptrCount > 0, depth := l.depth }

end Capnp
