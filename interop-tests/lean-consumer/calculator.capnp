@0xd4c3a9b1e2f07a65;
# A user's own calculator.capnp: the same file name as lean-rpc's demo schema, a different
# schema. Its generated module is `Capnp.Gen.Calculator` (the generator's default prefix), which
# must never collide with anything lean-rpc ships.

interface Calculator {
  add @0 (a :Float64, b :Float64) -> (sum :Float64);
  history @1 () -> (sums :List(Float64));
}
