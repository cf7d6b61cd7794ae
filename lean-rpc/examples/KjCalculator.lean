import Capnp
import Capnp.Rpc.Kj

/-!
# KjCalculator — a Lean client of the demo calculator over the KJ backend

Run the demo server, then this example with its address:

    cargo run -p interop-tests --bin bridge-peer -- serve-calculator --listen 127.0.0.1:4000
    lake exe kj-calculator 127.0.0.1:4000

Everything goes through code generated from `calculator.capnp` (`Capnp.Schemas.Calculator`): a
pipelined `evaluate` → `read`, `operator(add)` → `call`, and an expression that makes the server
call back into a `Function` implemented here in Lean. Exits 0 when every answer is right.
-/

open Capnp Capnp.Rpc Capnp.Schemas.Calculator

def awaitOk [StructReaderType R] (p : Pending R P) : IO R := do
  match ← p.await with
  | .ok r => return r
  | .error e => throw (IO.userError s!"call failed: {e}")

def check (what : String) (ok : Bool) : IO Unit := do
  if ok then IO.println s!"ok   {what}"
  else throw (IO.userError s!"FAIL {what}")

/-- A Lean `Function` the remote calculator calls back: the product of its arguments. -/
def product : Calculator.Function.Server :=
  { call := fun p => do
      let args ← liftRead (do (← p.getArguments).toArray)
      Reply.now fun r => r.setValue (args.foldl (· * ·) 1.0) }

def scenario (calculator : Calculator.Client) : RpcM Unit := do
  -- Pipelining: read the Value before evaluate's results arrive.
  let pending ← calculator.evaluate fun p => do (← p.initExpression).setLiteral 123.5
  let value ← pending.pipeline.getValue
  let read ← awaitOk (← value.read)
  check "evaluate(123.5), then read() on the pipelined Value" (read.getValue == 123.5)
  release value.cap
  -- A function capability from the server.
  let add ← (← calculator.operator (·.setOp Calculator.Operator.add)).pipeline.getFunction
  let sum ← awaitOk (← add.call fun p => do
    let l ← p.initArguments 2
    l.set 0 2.0
    l.set 1 3.25)
  check "operator(add).call(2, 3.25)" (sum.getValue == 5.25)
  release add.cap
  -- The server calls back into a capability served by this program.
  let mine ← product.serve
  let applied ← calculator.evaluate fun p => do
    let e ← p.initExpression
    let apply ← e.initApply
    apply.setFunction mine
    let args ← apply.initArguments 2
    (args.get 0).setLiteral 4.0
    (args.get 1).setLiteral 2.5
  let result ← awaitOk (← (← applied.pipeline.getValue).read)
  check "evaluate(apply(product served by Lean, 4, 2.5))" (result.getValue == 10.0)

def run (address : String) : IO UInt32 := do
  let rt ← Kj.Runtime.new
  let session ← Kj.connect rt address
  try
    (scenario ⟨session.bootstrap⟩).run session.context.backend
    IO.println s!"stats: {repr (← rt.stats)}"
    return (0 : UInt32)
  catch e =>
    IO.eprintln e
    return (1 : UInt32)
  finally
    session.connection.close
    rt.shutdown

def main (args : List String) : IO UInt32 :=
  match args with
  | [address] => run address
  | _ => do
    IO.eprintln "usage: kj-calculator HOST:PORT"
    return 2
