import Tests.Render

/-!
Vector tests: decode every vector in `capnp-schemas/testdata/` and compare with its manifest;
re-encode (single segment and tiny fragmented segments) and compare again; build `AllTypes` with
the generated builders and compare with the manifest the Rust writer produced.
-/

namespace Tests.Vectors

open Capnp Tests.Gen.TestAll Tests.Gen.TestImport

def testdata : System.FilePath := System.FilePath.mk ".." / "capnp-schemas" / "testdata"

def manifestLines (text : String) : Array String :=
  (text.splitOn "\n").filter (· ≠ "") |>.toArray

/-- Compares rendered lines with expected ones; returns a description of the first difference. -/
def compare (what : String) (got expected : Array String) : Except String Unit := do
  for i in [0:max got.size expected.size] do
    if got[i]? != expected[i]? then
      throw s!"{what}: line {i + 1}: got {repr got[i]?}, expected {repr expected[i]?}"

def check (what : String) (result : Except WireError (Array String)) (expected : Array String) : IO Bool := do
  match result with
  | .error e =>
    IO.eprintln s!"FAIL {what}: {e}"
    return false
  | .ok lines =>
    match compare what lines expected with
    | .error msg =>
      IO.eprintln s!"FAIL {msg}"
      return false
    | .ok () =>
      IO.println s!"ok   {what}"
      return true

/-- Runs every vector check; returns the number of failures. -/
def run : IO Nat := do
  let names := manifestLines (← IO.FS.readFile (testdata / "vectors.list"))
  let mut failures := 0
  for name in names do
    let bytes ← IO.FS.readBinFile (testdata / s!"{name}.bin")
    let expected := manifestLines (← IO.FS.readFile (testdata / s!"{name}.txt"))
    match Message.ofBytes bytes with
    | .error e =>
      IO.eprintln s!"FAIL {name}: framing: {e}"
      failures := failures + 1
    | .ok msg =>
      -- Framing round trip is byte-exact.
      if msg.toBytes.toList != bytes.toList then
        IO.eprintln s!"FAIL {name}: re-framing changed the bytes"
        failures := failures + 1
      if !(← check s!"{name} decode" (Render.byName name msg) expected) then
        failures := failures + 1
      let reencoded := msg.reencode >>= Render.byName name
      if !(← check s!"{name} re-encode" reencoded expected) then
        failures := failures + 1
      -- Re-encoding copies depth-first in pointer order, like capnp-rust: identical bytes.
      let rustCopy ← IO.FS.readBinFile (testdata / s!"{name}.copy.bin")
      match msg.reencode with
      | .ok m =>
        if m.toBytes.toList == rustCopy.toList then IO.println s!"ok   {name} re-encode is byte-identical to capnp-rust's copy"
        else
          IO.eprintln s!"FAIL {name}: re-encoded bytes differ from {name}.copy.bin"
          failures := failures + 1
      | .error e =>
        IO.eprintln s!"FAIL {name}: re-encode: {e}"
        failures := failures + 1
      let fragmented := msg.reencode (firstSegmentWords := 2) >>= fun m =>
        if m.segments.size < 2 then throw (WireError.malformed "expected several segments") else
        Message.ofBytes m.toBytes >>= Render.byName name
      if !(← check s!"{name} re-encode into tiny segments" fragmented expected) then
        failures := failures + 1
  return failures

/-- The values of `all_types` (see `codegen/capnpc-lean/tests/common/samples.rs`), set with generated builders. -/
def fillScalars (b : AllTypes.Builder) (pos : Bool) : BuildM Unit := do
  b.setBoolField pos
  b.setInt8Field (if pos then -100 else 100)
  b.setInt16Field (if pos then -30000 else 30000)
  b.setInt32Field (if pos then -2000000000 else 2000000000)
  b.setInt64Field (if pos then -9000000000000000000 else 9000000000000000000)
  b.setUint8Field (if pos then 250 else 1)
  b.setUint16Field (if pos then 65000 else 2)
  b.setUint32Field (if pos then 4000000000 else 3)
  b.setUint64Field (if pos then 18000000000000000000 else 4)
  b.setFloat32Field (Float32.ofBits (if pos then 0x449a5000 else 0xc49a5000))
  b.setFloat64Field (Float.ofBits (if pos then 0x81a56e1fc2f8f359 else 0x01a56e1fc2f8f359))

def buildAllTypes (b : AllTypes.Builder) : BuildM Unit := do
  fillScalars b true
  b.setTextField "hello \"lean\"\n\u00e9"
  b.setDataField (ByteArray.mk #[0, 1, 0xfe, 0xff])
  let nested ← b.initStructField
  fillScalars nested false
  nested.setTextField "nested"
  nested.setEnumField TestEnum.«end»
  b.setEnumField TestEnum.bar
  b.setImportedEnum Color.green
  let pt ← b.initImportedStruct
  pt.setX (-5); pt.setY 6; pt.setLabel "p"
  let bools ← b.initBoolList 3
  bools.set 0 true; bools.set 1 false; bools.set 2 true
  let i8s ← b.initInt8List 2
  i8s.set 0 (-128); i8s.set 1 127
  let i16s ← b.initInt16List 2
  i16s.set 0 (-32768); i16s.set 1 1
  let i32s ← b.initInt32List 3
  i32s.set 0 (-2147483648); i32s.set 1 0; i32s.set 2 2147483647
  let i64s ← b.initInt64List 2
  i64s.set 0 (-9223372036854775808); i64s.set 1 9223372036854775807
  let u8s ← b.initUint8List 2
  u8s.set 0 0; u8s.set 1 255
  let u16s ← b.initUint16List 1
  u16s.set 0 65535
  let u32s ← b.initUint32List 2
  u32s.set 0 1; u32s.set 1 4294967295
  let u64s ← b.initUint64List 1
  u64s.set 0 18446744073709551615
  let f32s ← b.initFloat32List 2
  f32s.set 0 (Float32.ofBits 0x3fc00000); f32s.set 1 (Float32.ofBits 0x80000000)
  let f64s ← b.initFloat64List 2
  f64s.set 0 (Float.ofBits 0x400921fb54442d18); f64s.set 1 (Float.ofBits 0x7ff0000000000000)
  let texts ← b.initTextList 3
  texts.setText 0 "one"; texts.setText 1 ""; texts.setText 2 "three"
  let datas ← b.initDataList 2
  datas.setData 0 (ByteArray.mk #[0xab]); datas.setData 1 ByteArray.empty
  let points ← b.initStructList 2
  for i in [0:2] do
    let p := points.get i
    p.setX (Int32.ofNat (i * 10)); p.setY (-(Int32.ofNat i)); p.setLabel s!"pt{i}"
  let enums ← b.initEnumList 2
  enums.set 0 TestEnum.qux; enums.set 1 TestEnum.foo
  let _ ← b.initVoidList 3
  let lists ← b.initListList 3
  let l0 ← lists.init 0 2
  l0.set 0 (1 : Int32); l0.set 1 2
  let _ ← lists.init 1 0
  let l2 ← lists.init 2 1
  l2.set 0 (-3 : Int32)
  let textLists ← b.initTextListList 2
  let t0 ← textLists.init 0 2
  t0.setText 0 "a"; t0.setText 1 "b"
  let t1 ← textLists.init 1 1
  t1.setText 0 "c"
  (← b.getAnyField).setText "any"

def runBuilders : IO Nat := do
  let expected := manifestLines (← IO.FS.readFile (testdata / "all_types.txt"))
  let mut failures := 0
  for (what, words, grow) in [("one segment", 1024, true), ("fixed 3-word segments", 3, false)] do
    let result := buildMessage buildAllTypes (firstSegmentWords := words) (growSegments := grow) >>= fun m =>
      Message.ofBytes m.toBytes >>= Render.byName "all_types"
    if !(← check s!"AllTypes built with generated builders ({what})" result expected) then
      failures := failures + 1
  return failures

/-- Constants and pointer-field defaults decode to their schema values. -/
def runConstants : IO Nat := do
  let checks : Except WireError (Array (String × Bool)) := Message.empty.read do
    let point ← constStruct
    let texts ← (← constList).toArray
    let dflt : Defaults.Reader := ⟨StructReader.empty⟩
    let dp ← dflt.getPoint
    let ints ← (← dflt.getInts).toArray
    return #[
      ("constant struct", point.getX == 1 && point.getY == 2 && (← point.getLabel) == "const"),
      ("constant list", texts == #["a", "b"]),
      ("constant scalars", constInt == -42 && constUInt64 == 18446744073709551615 && constBool
        && constFloat == 1.5 && constText == "hello" && constData.toList == [1, 2, 3]
        && constEnum == TestEnum.qux && Outer.Inner.innerConst == 99),
      ("struct field default", dp.getX == 7 && dp.getY == -9 && (← dp.getLabel) == "origin"),
      ("list field default", ints.map (·.toInt) == #[1, -2, 3]),
      ("text field default", (← dflt.getText) == "default \"text\"\n")]
  match checks with
  | .error e =>
    IO.eprintln s!"FAIL constants: {e}"
    return 1
  | .ok results =>
    let mut failures := 0
    for (what, ok) in results do
      if ok then IO.println s!"ok   {what}"
      else
        IO.eprintln s!"FAIL {what}"
        failures := failures + 1
    return failures

end Tests.Vectors
