@0xc5a3e0f1b2d49e67;
# The generator's broad test schema: every field kind, unions, groups, defaults, constants,
# nested declarations, generics, inheritance, streaming and imports.

using Imported = import "test_import.capnp";

struct AllTypes {
  voidField @0 :Void;
  boolField @1 :Bool;
  int8Field @2 :Int8;
  int16Field @3 :Int16;
  int32Field @4 :Int32;
  int64Field @5 :Int64;
  uint8Field @6 :UInt8;
  uint16Field @7 :UInt16;
  uint32Field @8 :UInt32;
  uint64Field @9 :UInt64;
  float32Field @10 :Float32;
  float64Field @11 :Float64;
  textField @12 :Text;
  dataField @13 :Data;
  structField @14 :AllTypes;
  enumField @15 :TestEnum;
  importedEnum @16 :Imported.Color;
  importedStruct @17 :Imported.Point;

  boolList @18 :List(Bool);
  int8List @19 :List(Int8);
  int16List @20 :List(Int16);
  int32List @21 :List(Int32);
  int64List @22 :List(Int64);
  uint8List @23 :List(UInt8);
  uint16List @24 :List(UInt16);
  uint32List @25 :List(UInt32);
  uint64List @26 :List(UInt64);
  float32List @27 :List(Float32);
  float64List @28 :List(Float64);
  textList @29 :List(Text);
  dataList @30 :List(Data);
  structList @31 :List(Imported.Point);
  enumList @32 :List(TestEnum);
  voidList @33 :List(Void);
  listList @34 :List(List(Int32));
  textListList @35 :List(List(Text));
  interfaceField @36 :Imported.Named;
  anyField @37 :AnyPointer;
}

enum TestEnum {
  foo @0;
  bar @1;
  baz @2;
  qux @3;
  # Lean keywords must be escaped.
  end @4;
}

struct Defaults {
  boolTrue @0 :Bool = true;
  int8Neg @1 :Int8 = -123;
  int16Neg @2 :Int16 = -12345;
  int32Big @3 :Int32 = -12345678;
  int64Big @4 :Int64 = -123456789012345;
  uint8Max @5 :UInt8 = 234;
  uint16Max @6 :UInt16 = 45678;
  uint32Max @7 :UInt32 = 3456789012;
  uint64Max @8 :UInt64 = 12345678901234567890;
  float32Pi @9 :Float32 = 3.25;
  float64E @10 :Float64 = -2.5e100;
  text @11 :Text = "default \"text\"\n";
  data @12 :Data = 0x"de ad be ef";
  point @13 :Imported.Point = (x = 7, y = -9, label = "origin");
  ints @14 :List(Int32) = [1, -2, 3];
  color @15 :Imported.Color = blue;
  enumValue @16 :TestEnum = baz;
}

struct Shape {
  # An unnamed union, a named union (a group with a union), and a plain group.
  id @0 :UInt32;
  union {
    circle @1 :Float64;
    square :group {
      side @2 :Float64;
      rounded @3 :Bool;
    }
    empty @4 :Void;
    name @5 :Text;
  }
  position :group {
    x @6 :Float32;
    y @7 :Float32;
  }
  fill :union {
    solid @8 :Imported.Color;
    pattern @9 :Text;
    none @10 :Void;
  }
}

struct Outer {
  struct Inner {
    enum Level {
      low @0;
      high @1;
    }
    level @0 :Level;
    const innerConst :UInt16 = 99;
  }
  inner @0 :Inner;
  inners @1 :List(Inner);
}

struct Box(T) {
  # Generic: `T` is erased to AnyPointer in the generated Lean.
  value @0 :T;
  count @1 :UInt16;
}

struct UsesGenerics {
  textBox @0 :Box(Text);
  pointBox @1 :Box(Imported.Point);
}

const constBool :Bool = true;
const constInt :Int32 = -42;
const constUInt64 :UInt64 = 18446744073709551615;
const constFloat :Float64 = 1.5;
const constText :Text = "hello";
const constData :Data = 0x"01 02 03";
const constEnum :TestEnum = qux;
const constStruct :Imported.Point = (x = 1, y = 2, label = "const");
const constList :List(Text) = ["a", "b"];

interface Base extends(Imported.Named) {
  ping @0 (value :UInt32) -> (value :UInt32);
}

interface Derived extends(Base) {
  # Inherits `ping` and `name`; adds a streaming method and capabilities in params and results.
  write @0 (chunk :Data) -> stream;
  child @1 () -> (child :Derived, point :Imported.Point);
  give @2 (cap :Base) -> (echoed :Base);
  generic @3 [U] (value :U) -> (value :U);
}

interface Store(Key) {
  get @0 (key :Key) -> (value :Data);
}
