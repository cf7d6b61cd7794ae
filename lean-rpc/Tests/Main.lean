import Tests.Vectors
import Tests.Rpc
import Tests.Wire

/-- `lake test`: vector, builder and RPC tests; exit code 1 when any fails. -/
def main : IO UInt32 := do
  let failures := (← Tests.Vectors.run) + (← Tests.Vectors.runBuilders) + (← Tests.Vectors.runConstants) +
    (← Tests.Wire.run) + (← Tests.Rpc.run)
  if failures == 0 then
    IO.println "all Lean tests passed"
    return 0
  else
    IO.eprintln s!"{failures} Lean test(s) failed"
    return 1
