import Capnp.Wire.Reader
import Capnp.Wire.Builder
import Capnp.Wire.Typed

/-!
# Capnp.Wire

The Cap'n Proto wire runtime for Lean: messages over `ByteArray` segments, bounds-checked readers
(far pointers, multi-segment input, traversal and nesting limits), builders that spill into new
segments through far pointers and landing pads, typed lists, and stream framing. Nothing here
knows about RPC.
-/
