import Capnp
import Tests.Gen.TestAll
import Tests.Gen.TestImport

/-!
Renders decoded messages in the manifest format of `capnp-schemas/testdata/README.md`, through
the generated readers only. The Rust side renders the same vectors from the IR's layouts; both
must equal the manifests.
-/

namespace Tests.Render

open Capnp Tests.Gen.TestAll Tests.Gen.TestImport

def hexDigits (n width : Nat) : String :=
  let digits := stringOfChars (Nat.toDigits 16 n)
  "".pushn '0' (width - digits.length) ++ digits

def quote (s : String) : String := Id.run do
  let mut out := "\""
  for b in s.toUTF8 do
    if b == 34 then out := out ++ "\\\""
    else if b == 92 then out := out ++ "\\\\"
    else if b == 10 then out := out ++ "\\n"
    else if b < 32 || b ≥ 127 then out := out ++ "\\x" ++ hexDigits b.toNat 2
    else out := out.push (Char.ofNat b.toNat)
  return out ++ "\""

def hex (d : ByteArray) : String := d.foldl (init := "0x") fun s b => s ++ hexDigits b.toNat 2

def bits32 (f : Float32) : String := "bits:0x" ++ hexDigits f.toBits.toNat 8
def bits64 (f : Float) : String := "bits:0x" ++ hexDigits f.toBits.toNat 16

def list (items : Array String) : String := "[" ++ ", ".intercalate items.toList ++ "]"

def listOf [ListElem α] (l : ListOf α) (f : α → String) : ReadM String := do
  return list ((← l.toArray).map f)

abbrev Lines := Array String

partial def allTypes (p : String) (r : AllTypes.Reader) : ReadM Lines := do
  let mut out : Lines := #[]
  out := out.push s!"{p}voidField = void"
  out := out.push s!"{p}boolField = {r.getBoolField}"
  out := out.push s!"{p}int8Field = {r.getInt8Field.toInt}"
  out := out.push s!"{p}int16Field = {r.getInt16Field.toInt}"
  out := out.push s!"{p}int32Field = {r.getInt32Field.toInt}"
  out := out.push s!"{p}int64Field = {r.getInt64Field.toInt}"
  out := out.push s!"{p}uint8Field = {r.getUint8Field}"
  out := out.push s!"{p}uint16Field = {r.getUint16Field}"
  out := out.push s!"{p}uint32Field = {r.getUint32Field}"
  out := out.push s!"{p}uint64Field = {r.getUint64Field}"
  out := out.push s!"{p}float32Field = {bits32 r.getFloat32Field}"
  out := out.push s!"{p}float64Field = {bits64 r.getFloat64Field}"
  out := out.push s!"{p}textField = {quote (← r.getTextField)}"
  out := out.push s!"{p}dataField = {hex (← r.getDataField)}"
  if r.hasStructField then
    out := out ++ (← allTypes s!"{p}structField." (← r.getStructField))
  else
    out := out.push s!"{p}structField = null"
  out := out.push s!"{p}enumField = {r.getEnumField.raw}"
  out := out.push s!"{p}importedEnum = {r.getImportedEnum.raw}"
  if r.hasImportedStruct then
    let pt ← r.getImportedStruct
    out := out.push s!"{p}importedStruct.x = {pt.getX.toInt}"
    out := out.push s!"{p}importedStruct.y = {pt.getY.toInt}"
    out := out.push s!"{p}importedStruct.label = {quote (← pt.getLabel)}"
  else
    out := out.push s!"{p}importedStruct = null"
  out := out.push s!"{p}boolList = {← listOf (← r.getBoolList) toString}"
  out := out.push s!"{p}int8List = {← listOf (← r.getInt8List) (toString ·.toInt)}"
  out := out.push s!"{p}int16List = {← listOf (← r.getInt16List) (toString ·.toInt)}"
  out := out.push s!"{p}int32List = {← listOf (← r.getInt32List) (toString ·.toInt)}"
  out := out.push s!"{p}int64List = {← listOf (← r.getInt64List) (toString ·.toInt)}"
  out := out.push s!"{p}uint8List = {← listOf (← r.getUint8List) toString}"
  out := out.push s!"{p}uint16List = {← listOf (← r.getUint16List) toString}"
  out := out.push s!"{p}uint32List = {← listOf (← r.getUint32List) toString}"
  out := out.push s!"{p}uint64List = {← listOf (← r.getUint64List) toString}"
  out := out.push s!"{p}float32List = {← listOf (← r.getFloat32List) bits32}"
  out := out.push s!"{p}float64List = {← listOf (← r.getFloat64List) bits64}"
  out := out.push s!"{p}textList = {← listOf (← r.getTextList) quote}"
  out := out.push s!"{p}dataList = {← listOf (← r.getDataList) hex}"
  let points ← r.getStructList
  if points.size == 0 && !r.hasStructList then
    out := out.push s!"{p}structList = []"
  else
    out := out.push s!"{p}structList.len = {points.size}"
    for i in [0:points.size] do
      let pt ← points.get i
      out := out.push s!"{p}structList[{i}].x = {pt.getX.toInt}"
      out := out.push s!"{p}structList[{i}].y = {pt.getY.toInt}"
      out := out.push s!"{p}structList[{i}].label = {quote (← pt.getLabel)}"
  out := out.push s!"{p}enumList = {← listOf (← r.getEnumList) (toString ·.raw)}"
  out := out.push s!"{p}voidList = {← listOf (← r.getVoidList) (fun _ => "void")}"
  let lists ← (← r.getListList).toArray
  let mut rendered := #[]
  for inner in lists do
    rendered := rendered.push (← listOf inner (toString ·.toInt))
  out := out.push s!"{p}listList = {list rendered}"
  let textLists ← (← r.getTextListList).toArray
  rendered := #[]
  for inner in textLists do
    rendered := rendered.push (← listOf inner quote)
  out := out.push s!"{p}textListList = {list rendered}"
  out := out.push s!"{p}interfaceField = {if r.hasInterfaceField then "cap:set" else "cap:null"}"
  out := out.push s!"{p}anyField = {if r.hasAnyField then "set" else "null"}"
  return out

def defaults (r : Defaults.Reader) : ReadM Lines := do
  let mut out : Lines := #[]
  out := out.push s!"boolTrue = {r.getBoolTrue}"
  out := out.push s!"int8Neg = {r.getInt8Neg.toInt}"
  out := out.push s!"int16Neg = {r.getInt16Neg.toInt}"
  out := out.push s!"int32Big = {r.getInt32Big.toInt}"
  out := out.push s!"int64Big = {r.getInt64Big.toInt}"
  out := out.push s!"uint8Max = {r.getUint8Max}"
  out := out.push s!"uint16Max = {r.getUint16Max}"
  out := out.push s!"uint32Max = {r.getUint32Max}"
  out := out.push s!"uint64Max = {r.getUint64Max}"
  out := out.push s!"float32Pi = {bits32 r.getFloat32Pi}"
  out := out.push s!"float64E = {bits64 r.getFloat64E}"
  out := out.push s!"text = {quote (← r.getText)}"
  out := out.push s!"data = {hex (← r.getData)}"
  if r.hasPoint then
    let pt ← r.getPoint
    out := out.push s!"point.x = {pt.getX.toInt}"
    out := out.push s!"point.y = {pt.getY.toInt}"
    out := out.push s!"point.label = {quote (← pt.getLabel)}"
  else
    out := out.push "point = default"
  if r.hasInts then
    out := out.push s!"ints = {← listOf (← r.getInts) (toString ·.toInt)}"
  else
    out := out.push "ints = default"
  out := out.push s!"color = {r.getColor.raw}"
  out := out.push s!"enumValue = {r.getEnumValue.raw}"
  return out

def shape (r : Shape.Reader) : ReadM Lines := do
  let mut out : Lines := #[s!"id = {r.getId}"]
  match ← r.which with
  | .circle v => out := out ++ #["which = circle", s!"circle = {bits64 v}"]
  | .square g => out := out ++ #["which = square", s!"square.side = {bits64 g.getSide}", s!"square.rounded = {g.getRounded}"]
  | .empty => out := out ++ #["which = empty", "empty = void"]
  | .name v => out := out ++ #["which = name", s!"name = {quote v}"]
  | .otherDiscriminant d => out := out.push s!"which = ?{d}"
  let pos := r.getPosition
  out := out ++ #[s!"position.x = {bits32 pos.getX}", s!"position.y = {bits32 pos.getY}"]
  match ← r.getFill.which with
  | .solid c => out := out ++ #["fill.which = solid", s!"fill.solid = {c.raw}"]
  | .pattern t => out := out ++ #["fill.which = pattern", s!"fill.pattern = {quote t}"]
  | .none => out := out ++ #["fill.which = none", "fill.none = void"]
  | .otherDiscriminant d => out := out.push s!"fill.which = ?{d}"
  return out

def outer (r : Outer.Reader) : ReadM Lines := do
  let mut out : Lines := #[s!"inner.level = {(← r.getInner).getLevel.raw}"]
  let inners ← r.getInners
  out := out.push s!"inners.len = {inners.size}"
  for i in [0:inners.size] do
    out := out.push s!"inners[{i}].level = {(← inners.get i).getLevel.raw}"
  return out

def generics (r : UsesGenerics.Reader) : ReadM Lines := do
  let b ← r.getTextBox
  let value ← b.getValue.readTextOr ""
  let mut out : Lines := #[s!"textBox.value = {if b.hasValue then "set" else "null"}", s!"textBox.count = {b.getCount}"]
  if value != "boxed" then out := out.push s!"textBox.value.text = {quote value}"
  out := out.push s!"pointBox = {if r.hasPointBox then "set" else "null"}"
  return out

open Capnp.Schemas.Calculator in
def expression (r : Calculator.Expression.Reader) : ReadM Lines := do
  match ← r.which with
  | .apply a =>
    let mut out : Lines := #["which = apply", s!"apply.function = {if a.hasFunction then "cap:set" else "cap:null"}"]
    let args ← a.getArguments
    out := out.push s!"apply.arguments.len = {args.size}"
    for i in [0:args.size] do
      match ← (← args.get i).which with
      | .literal v => out := out ++ #[s!"apply.arguments[{i}].which = literal", s!"apply.arguments[{i}].literal = {bits64 v}"]
      | .argument v => out := out ++ #[s!"apply.arguments[{i}].which = argument", s!"apply.arguments[{i}].argument = {v}"]
      | _ => out := out.push s!"apply.arguments[{i}].which = other"
    return out
  | _ => return #["which = other"]

/-- Renders a vector's root according to the vector's name. -/
def byName (name : String) (m : Message) : Except WireError Lines := m.read do
  let root := m.rootPointer
  if name.startsWith "all_types" then allTypes "" ⟨← root.readStructOr none⟩
  else if name.startsWith "defaults" then defaults ⟨← root.readStructOr none⟩
  else if name.startsWith "shape" then shape ⟨← root.readStructOr none⟩
  else if name.startsWith "outer" then outer ⟨← root.readStructOr none⟩
  else if name.startsWith "generics" then generics ⟨← root.readStructOr none⟩
  else if name.startsWith "calculator_expression" then expression ⟨← root.readStructOr none⟩
  else throw (WireError.malformed s!"no renderer for vector {name}")

end Tests.Render
