@0x9f1c4e2a7b3d5c81;
# A chat service schema written the way a newcomer would, without looking at the generator.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("chat");

annotation note(field, struct) :Text;

struct Timestamp {
  seconds @0 :Int64;
  nanos @1 :UInt32;
}

enum Status {
  online @0;
  away @1;
  busy @2;
  offline @3;
}

struct User $note("a person") {
  id @0 :UInt64;
  name @1 :Text;
  status @2 :Status = online;
  avatar @3 :Data;
  tags @4 :List(Text);
  type @5 :Kind;
  enum Kind {
    human @0;
    bot @1;
    system @2;
  }
  settings :group {
    notifications @6 :Bool = true;
    theme @7 :Text = "dark";
    volume @8 :Float32 = 0.8;
  }
}

struct Message {
  id @0 :UInt64;
  from @1 :User;
  sentAt @2 :Timestamp;
  body :union {
    text @3 :Text;
    image :group {
      bytes @4 :Data;
      width @5 :UInt16;
      height @6 :UInt16;
    }
    reaction :group {
      emoji @7 :Text;
      target @8 :UInt64;
    }
    deleted @9 :Void;
  }
  replies @10 :List(Message);
  mentions @11 :List(List(UInt64));
  match @12 :Bool;
  where @13 :Text $note("location");
}

struct Page(T) {
  items @0 :T;  # the compiler (0.9.2) rejects List(T) for a generic T
  nextCursor @1 :Text;
}

struct Error {
  code @0 :UInt16;
  message @1 :Text;
  retryable @2 :Bool;
}

const defaultUser :User = (id = 0, name = "anonymous", tags = ["guest"], type = system);
const maxMessageLength :UInt32 = 4096;
const greetings :List(Text) = ["hi", "hello", "hey"];

interface Closeable {
  close @0 () -> ();
}

interface Watchable {
  watch @0 (watcher :Watcher) -> (handle :Closeable);
  interface Watcher {
    changed @0 (message :Message) -> ();
  }
}

interface Room extends(Closeable, Watchable) {
  send @0 (text :Text) -> (message :Message);
  history @1 (cursor :Text, limit :UInt32 = 50) -> (page :Page(List(Message)));
  members @2 () -> (users :List(User));
  upload @3 (chunk :Data) -> stream;
  kick @4 User -> Error;
  end @5 () -> ();
}

interface ChatServer {
  login @0 (name :Text) -> (user :User, rooms :List(Room));
  join @1 (roomName :Text) -> (room :Room);
  create @2 (name :Text, private :Bool) -> (room :Room, error :Error);
  lookup @3 [T] (key :Text) -> (value :T);
}
