@0xd1f3a6c2b4e59871;
# A nested declaration whose name the generator needs for itself.

struct Message {
  struct Reader {
    x @0 :UInt8;
  }
  reader @0 :Reader;
}
