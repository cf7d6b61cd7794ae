@0xe2a4b7d3c5f60982;
# A method whose name collides with the generated client's `cap` field.

interface Holder {
  cap @0 () -> (value :UInt32);
}
