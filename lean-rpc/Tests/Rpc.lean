import Capnp
import Tests.Gen.TestAll
import Tests.Gen.TestImport

/-!
RPC tests over the Loopback backend: generated clients calling generated servers, inherited
methods, `unimplemented`, promise pipelining, capabilities in params and results, streaming,
release, and the calculator schema end to end.
-/

namespace Tests.Rpc

open Capnp Capnp.Rpc Tests.Gen.TestAll Tests.Gen.TestImport

/-- Records a check's outcome; returns whether it passed. -/
def expect (failures : IO.Ref Nat) (what : String) (ok : Bool) : IO Unit := do
  if ok then IO.println s!"ok   {what}"
  else
    IO.eprintln s!"FAIL {what}"
    failures.modify (· + 1)

def awaitOk [StructReaderType R] (p : Pending R P) : RpcM R := do
  match ← p.await with
  | .ok r => return r
  | .error e => throw (IO.userError s!"call failed: {e}")

/-- A child capability: answers `ping` with value + 100. -/
def childServer : Derived.Server :=
  { ping := fun p => Reply.now fun r => r.setValue (p.getValue + 100)
    name := fun _ => Reply.now fun r => r.setName "child" }

def derivedServer (written : IO.Ref Nat) : Derived.Server :=
  { ping := fun p => Reply.now fun r => r.setValue (p.getValue + 1)
    name := fun _ => Reply.now fun r => r.setName "derived"
    write := fun p => do
      let chunk ← liftRead p.getChunk
      written.modify (· + chunk.size)
      StreamAck.done
    child := fun _ => do
      let c ← childServer.serve
      Reply.now fun r => do
        r.setChild c
        let pt ← r.initPoint
        pt.setX 1
        pt.setLabel "child point"
    give := fun p => do
      let cap ← liftRead p.getCap
      Reply.now fun r => r.setEchoed cap }

def derivedScenario (failures : IO.Ref Nat) : RpcM Unit := do
  let written ← IO.mkRef 0
  let d ← (derivedServer written).serve
  -- Inherited methods, dispatched through the derived server.
  let pong ← awaitOk (← d.asBase.ping (·.setValue 41))
  expect failures "inherited method (Base.ping) answers" (pong.getValue == 42)
  let named ← awaitOk (← d.asNamed.name)
  expect failures "method inherited across files (Named.name) answers" ((← liftRead named.getName) == "derived")
  -- Pipelining: call the child before the call that returns it has been awaited.
  let pending ← d.child
  let child ← pending.pipeline.getChild
  let childPong ← d.asBase.ping (·.setValue 0)
  let viaPipeline ← child.asBase.ping (·.setValue 1)
  expect failures "pipelined call reaches the promised capability" ((← awaitOk viaPipeline).getValue == 101)
  expect failures "other calls are unaffected" ((← awaitOk childPong).getValue == 1)
  let childResults ← awaitOk pending
  let pt ← liftRead childResults.getPoint
  expect failures "struct beside a capability in results" (pt.getX == 1 && (← liftRead pt.getLabel) == "child point")
  -- Capabilities in params and results.
  let echoed ← liftRead (← awaitOk (← d.give (·.setCap d.asBase))).getEchoed
  expect failures "capability passed in params comes back in results" ((← awaitOk (← echoed.ping (·.setValue 5))).getValue == 6)
  -- Streaming.
  let ack ← d.write fun b => b.setChunk (ByteArray.mk #[1, 2, 3])
  let acked ← IO.wait ack
  expect failures "stream call is acknowledged" (acked matches .ok ())
  expect failures "stream call reached the server" ((← written.get) == 3)
  -- Unimplemented: a method the server leaves out, and an unknown interface.
  match ← (← d.generic).await with
  | .error e => expect failures "missing method answers unimplemented" (e.kind == .unimplemented)
  | .ok _ => expect failures "missing method answers unimplemented" false
  let raw ← (← read).call d.cap 0x1234 0 Message.empty
  match ← IO.wait raw.result with
  | .error e => expect failures "unknown interface answers unimplemented" (e.kind == .unimplemented)
  | .ok _ => expect failures "unknown interface answers unimplemented" false
  -- Release.
  let childResolved ← liftRead childResults.getChild
  release childResolved.cap
  release childResolved.cap
  release child.cap
  match ← (← childResolved.asBase.ping (·.setValue 1)).await with
  | .error _ => expect failures "released capability no longer answers" true
  | .ok _ => expect failures "released capability no longer answers" false

open Capnp.Schemas.Calculator in
def valueServer (v : Float) : Calculator.Value.Server :=
  { read := fun _ => Reply.now fun r => r.setValue v }

open Capnp.Schemas.Calculator in
def calculatorServer : Calculator.Server :=
  { evaluate := fun p => do
      let e ← liftRead p.getExpression
      match ← liftRead e.which with
      | .literal v =>
        let value ← (valueServer v).serve
        Reply.now fun r => r.setValue value
      | _ => Reply.fail .failed "only literals" }

open Capnp.Schemas.Calculator in
def calculatorScenario (failures : IO.Ref Nat) : RpcM Unit := do
  let calculator ← calculatorServer.serve
  let pending ← calculator.evaluate fun p => do (← p.initExpression).setLiteral 2.5
  let value ← pending.pipeline.getValue
  let readResult ← awaitOk (← value.read)
  expect failures "calculator: evaluate, then read the pipelined Value" (readResult.getValue == 2.5)
  match ← (← calculator.operator (·.setOp Calculator.Operator.add)).await with
  | .error e => expect failures "calculator: unimplemented operator" (e.kind == .unimplemented)
  | .ok _ => expect failures "calculator: unimplemented operator" false

def run : IO Nat := do
  let failures ← IO.mkRef 0
  let backend ← Loopback.new
  try
    (derivedScenario failures).run backend
    (calculatorScenario failures).run backend
  catch e =>
    IO.eprintln s!"FAIL rpc scenario raised: {e}"
    failures.modify (· + 1)
  failures.get

end Tests.Rpc
