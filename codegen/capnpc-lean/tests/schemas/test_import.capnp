@0xe0b8a1c4d7f23a51;
# Declarations imported by test_all.capnp, to check cross-file references.

enum Color {
  red @0;
  green @1;
  blue @2;
}

struct Point {
  x @0 :Int32;
  y @1 :Int32;
  label @2 :Text;
}

interface Named {
  name @0 () -> (name :Text);
}
