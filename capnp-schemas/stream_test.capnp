@0xa140157104ada375;
# A streaming interface for the flow-control tests: `write` is declared `-> stream`, so senders
# use KJ's flow control (RequestHook::sendStreaming) and the receiving side sees one write at a
# time; `done` is the stream's final regular call, which fails if any write failed.

interface ByteSink {
  write @0 (chunk :Data) -> stream;
  # One item of the stream. A receiver that fails one write breaks the stream: later writes and
  # `done` fail with the same error.

  done @1 () -> (total :UInt64);
  # Ends the stream; `total` is the number of bytes the receiver accepted.
}
