//! placeholder: the version-pinned port of lean.h (Lean 4.35).
