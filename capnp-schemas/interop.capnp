@0xa7aa8986bd14fa17;
# Interfaces for cross-implementation tests. Each method exists to make particular RPC message
# kinds appear on the wire, so a test can decode the frames and see them.

enum ErrorKind {
  failed @0;
  overloaded @1;
  disconnected @2;
  unimplemented @3;
}

interface Counter {
  increment @0 (by :Int64) -> (value :Int64);
  # Adds `by` and returns the new total.
}

interface Interop {
  echo @0 (payload :Data) -> (payload :Data);
  # Call, Return, Finish. Also the benchmark's unit of work.

  fail @1 (kind :ErrorKind, message :Text) -> ();
  # Fails with exactly this kind and message.

  newCounter @2 () -> (counter :Counter);
  # A capability in the results; dropping it sends Release.

  counterLater @3 (delayMs :UInt32) -> (counter :Counter);
  # Returns at once with a promise capability that the server resolves to a new server-hosted
  # Counter after `delayMs`: Resolve on the wire.

  reflect @4 (counter :Counter, delayMs :UInt32) -> (counter :Counter);
  # Returns at once with a promise capability that resolves, after `delayMs`, to the capability
  # the caller passed in. Calls the caller made on the promise meanwhile must come back to the
  # caller in order: Disembargo on the wire (and, from KJ, calls sent with
  # `sendResultsTo.yourself`).

  callBack @5 (counter :Counter, times :UInt32) -> (total :Int64);
  # The server calls `counter.increment(1)` `times` times and returns the last total.

  hang @6 () -> ();
  # Never completes by itself: used for cancellation (Finish) and peer-death tests.

  releasedCounters @7 () -> (count :UInt32);
  # How many server-hosted Counters have been released by clients so far.

  notImplemented @8 () -> ();
  # No server implements this: calls answer `unimplemented`.
}
