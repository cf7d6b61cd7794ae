@0xadd581b01c429d21;
# The worker protocol: what a `capnp-lean-worker` child serves to its parent over an inherited
# socketpair, and the sinks a command is handed. The parent is the client of `Worker` and
# `Commands`; the child is the client of the sinks (it streams rows, progress and diagnostics
# back while a command runs). See docs/worker.md.

const protocolVersion :UInt32 = 1;
# Bumped on any incompatible change; `hello` reports it and the parent refuses a mismatch.

interface Worker {
  # The bootstrap capability of a worker child: control, not commands.

  hello @0 () -> (protocol :UInt32, pid :UInt32, workerVersion :Text);
  # The handshake: answered before any capability is opened, so a parent can tell a broken
  # binary from a broken capability.

  open @1 (manifest :Text, export :Text, runtime :Text)
      -> (commands :Commands, metadata :Text, bootstrap :Capability);
  # Opens the capability described by the manifest at path `manifest` (the loader's preflight
  # first) and returns its commands. `export` names the capability's command export (empty:
  # `capnp_lean_worker_run`). `metadata` is the capability's optional `capnp_lean_worker_metadata`
  # export (empty when it has none). Opening twice returns the capability already open.
  # The loader's preflight record (beside the manifest) lets a replacement start without
  # re-reading every library's symbol tables. `runtime`: the Lean
  # runtime library to use when the manifest names none (lean-rs manifests never do); empty for
  # none. `bootstrap` is the
  # capability's own interface when it exports `capnp_lean_worker_bootstrap` (a Lean server over
  # the KJ backend, e.g. capnpc-lean generated), else null.

  health @2 () -> (ok :Bool, uptimeMs :UInt64, running :UInt32);
  # Answered on the loop thread, never behind a command: `running` commands are in progress.

  stats @3 () -> (stats :WorkerStats);

  shutdown @4 () -> ();
  # Stops taking commands; the child exits once the answer is sent and running commands end
  # (or at once, when the parent closes the connection).
}

struct WorkerStats {
  rssBytes @0 :UInt64;
  peakRssBytes @1 :UInt64;
  commandsStarted @2 :UInt64;
  commandsSucceeded @3 :UInt64;
  commandsFailed @4 :UInt64;
  commandsCancelled @5 :UInt64;
  rowsSent @6 :UInt64;
}

interface Commands {
  # The capability's interface as a worker serves it: named commands with a byte payload (the
  # capability's own encoding, e.g. a Cap'n Proto message of its schema) and sinks.

  run @0 (command :Text, input :Data, sink :Sink) -> (summary :Summary);
  # Runs one command. Rows, progress and diagnostics arrive on `sink` while it runs, in the
  # order the command emitted them; the summary is the terminal event. A command that fails
  # (a Lean `IO` error) fails this call with kind `failed` and Lean's error text. Cancelling
  # the call (Finish) makes the command's next sink operation fail, and `cancelled` report true.
}

interface Sink {
  # Where a running command's output goes. One capability, so that KJ delivers its streaming
  # calls one at a time and in order: rows, progress and diagnostics keep their emission order.
  # Flow-controlled: a child whose parent does not keep up waits (and so does the command
  # emitting), it does not buffer.

  rows @0 (rows :List(Data)) -> stream;
  # A batch of rows in emission order.

  progress @1 (done :UInt64, total :UInt64, label :Text) -> stream;

  diagnostic @2 (diagnostic :Diagnostic) -> stream;
}

struct Diagnostic {
  severity @0 :Severity;
  code @1 :Text;
  message @2 :Text;
  position @3 :SourcePosition;
  # Unset when the diagnostic has no source position.
}

enum Severity {
  info @0;
  warning @1;
  error @2;
}

struct SourcePosition {
  file @0 :Text;
  line @1 :UInt32;
  column @2 :UInt32;
}

struct Summary {
  output @0 :Data;
  # What the command's export returned.
  rows @1 :UInt64;
  diagnostics @2 :UInt64;
  elapsedMicros @3 :UInt64;
}
