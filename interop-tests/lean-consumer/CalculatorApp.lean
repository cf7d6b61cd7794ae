import Capnp
import Capnp.Gen.Calculator

/-!
# CalculatorApp

A user's server for their own `Calculator` (from their `calculator.capnp`), next to lean-rpc's
demo calculator of the same file name: both are in scope, under different modules.
-/

namespace CalculatorApp

open Capnp Capnp.Rpc

/-- The user's calculator: `add` answers the sum. `history` is left out, so it answers
`unimplemented`. -/
def adder : Capnp.Gen.Calculator.Calculator.Server :=
  { add := fun params => Reply.now fun results => results.setSum (params.getA + params.getB) }

/-- Serves `adder` and asks it for 2 + 3.25. -/
def addOnce : RpcM Float := do
  let calculator ← adder.serve
  match ← (← calculator.add fun p => do p.setA 2; p.setB 3.25).await with
  | .ok r => return r.getSum
  | .error e => throw (IO.userError (toString e))

/-- The two schemas are distinct interfaces, although their files share a name. -/
theorem distinct_interfaces :
    Capnp.Gen.Calculator.Calculator.interfaceId ≠ Capnp.Schemas.Calculator.Calculator.interfaceId := by
  decide

end CalculatorApp
