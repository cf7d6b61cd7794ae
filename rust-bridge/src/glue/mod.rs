//! placeholder: the Lean-facing extern glue (issue 4).
