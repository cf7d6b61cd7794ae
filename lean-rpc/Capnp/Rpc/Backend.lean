import Capnp.Wire

/-!
# Capnp.Rpc.Backend

The abstraction generated code targets. A `Backend` is a record of operations over capability
handles (`CapHandle`, plain data so they can sit in messages' capability tables): `call`,
`pipeline`, `release` and `serve`. Completion is asynchronous: a call returns at once with a
`Task` that the backend resolves (the KJ backend from its event-loop callback through an
`IO.Promise`; Loopback when the server's reply task finishes). What a handle refers to is the
backend's business (an `External` KJ capability, an in-process server); generated code never names
a concrete backend and runs in `RpcM`, which carries the backend.
-/

namespace Capnp.Rpc

open Capnp

/-- Failure kinds, as in KJ's `Exception::Type`. -/
inductive ErrorKind where
  | failed | overloaded | disconnected | unimplemented
  deriving Repr, BEq, Inhabited

/-- An RPC failure. -/
structure RpcError where
  kind : ErrorKind
  message : String
  deriving Repr, BEq, Inhabited

instance : ToString RpcError where
  toString e := s!"{repr e.kind}: {e.message}"

/-- A call in flight: its backend id (for pipelining and cancellation) and its eventual results. -/
structure PendingCall where
  id : UInt64
  result : Task (Except RpcError Message)

instance : Inhabited PendingCall := ⟨⟨0, Task.pure (.error ⟨.failed, "no call"⟩)⟩⟩

/-- A server as the backend sees it: interface id, method id, params → eventual results. -/
abbrev ServerDispatch := UInt64 → UInt16 → Message → IO (Task (Except RpcError Message))

/-- The operations every backend provides. -/
structure Backend where
  /-- Starts a call on `target`; returns immediately. -/
  call : (target : CapHandle) → (interfaceId : UInt64) → (methodId : UInt16) → Message → IO PendingCall
  /-- A promise capability for the capability at pointer `path` (pointer indices from the results
  root) in the results of a pending call; calls on it are queued until the results arrive. -/
  pipeline : PendingCall → Array UInt16 → IO CapHandle
  /-- Drops this reference to a capability. -/
  release : CapHandle → IO Unit
  /-- Hosts a server and returns a capability for it. -/
  serve : ServerDispatch → IO CapHandle
  /-- Cancels a call whose results are no longer wanted (Finish). -/
  cancel : PendingCall → IO Unit := fun _ => pure ()

/-- Generated clients and servers run here. -/
abbrev RpcM := ReaderT Backend IO

/-- Server methods in generated code: params in, results builder out, backend available. -/
abbrev Dispatch := UInt64 → UInt16 → Message → RpcM (Task (Except RpcError Message))

/-- A typed pending call: awaited for `R`, pipelined through `P`. -/
structure Pending (R P : Type) where
  call : PendingCall
  pipeline : P

/-- Waits for the results and reads their root. -/
def Pending.await [StructReaderType R] (p : Pending R P) : IO (Except RpcError R) := do
  match ← IO.wait p.call.result with
  | .error e => return .error e
  | .ok msg =>
    match msg.root (R := R) with
    | .ok r => return .ok r
    | .error e => return .error ⟨.failed, toString e⟩

/-- Flow-control acknowledgement of a `-> stream` call. -/
abbrev StreamAck := Task (Except RpcError Unit)

/-- What a server method answers: eventually, a function filling the results. -/
abbrev Reply (B : Type) := Task (Except RpcError (B → BuildM Unit))

def Reply.now (fill : B → BuildM Unit) : RpcM (Reply B) := pure (Task.pure (.ok fill))
def Reply.fail (kind : ErrorKind) (message : String) : RpcM (Reply B) := pure (Task.pure (.error ⟨kind, message⟩))
def Reply.unimplemented (method : String) : RpcM (Reply B) :=
  Reply.fail .unimplemented s!"method not implemented: {method}"
def StreamAck.done : RpcM StreamAck := pure (Task.pure (.ok ()))
def StreamAck.unimplemented (method : String) : RpcM StreamAck :=
  pure (Task.pure (.error ⟨.unimplemented, s!"method not implemented: {method}"⟩))

private def toRpc (e : WireError) : RpcError := ⟨.failed, toString e⟩

/-- Builds params and starts a typed call. -/
def call [StructBuilderType PB] (target : CapHandle) (interfaceId : UInt64) (methodId : UInt16)
    (params : PB → BuildM Unit) (pipeline : PendingCall → P) : RpcM (Pending R P) := do
  match buildMessage params with
  | .error e => throw (IO.userError (toString e))
  | .ok msg =>
    let pc ← (← read).call target interfaceId methodId msg
    return ⟨pc, pipeline pc⟩

/-- Starts a `-> stream` call; the task completes when the callee acknowledges it. -/
def callStreaming [StructBuilderType PB] (target : CapHandle) (interfaceId : UInt64) (methodId : UInt16)
    (params : PB → BuildM Unit) : RpcM StreamAck := do
  match buildMessage params with
  | .error e => throw (IO.userError (toString e))
  | .ok msg =>
    let pc ← (← read).call target interfaceId methodId msg
    return pc.result.map fun r => r.map fun _ => ()

/-- The capability at `path` in a pending call's results. -/
def pipelineCap (pc : PendingCall) (path : Array UInt16) : RpcM CapHandle := do
  (← read).pipeline pc path

/-- Answers a call with `unimplemented`. -/
def unimplementedCall (interfaceId : UInt64) (methodId : UInt16) : RpcM (Task (Except RpcError Message)) :=
  pure (Task.pure (.error ⟨.unimplemented, s!"method {methodId} of interface 0x{stringOfChars (Nat.toDigits 16 interfaceId.toNat)} not implemented"⟩))

/-- Reads typed params, runs the method, builds its results (capabilities included). -/
def handle [StructReaderType PR] [StructBuilderType RB] (params : Message)
    (method : PR → RpcM (Reply RB)) : RpcM (Task (Except RpcError Message)) := do
  match params.root (R := PR) with
  | .error e => return Task.pure (.error (toRpc e))
  | .ok p =>
    let reply ← method p
    return reply.map fun
      | .error e => .error e
      | .ok fill => (buildMessage fill).mapError toRpc

/-- Like `handle` for `-> stream` methods, whose results are empty. -/
def handleStream [StructReaderType PR] (params : Message) (method : PR → RpcM StreamAck) :
    RpcM (Task (Except RpcError Message)) := do
  match params.root (R := PR) with
  | .error e => return Task.pure (.error (toRpc e))
  | .ok p =>
    let ack ← method p
    return ack.map fun r => r.map fun _ => Message.empty

/-- Hosts a generated dispatcher on the current backend. -/
def serveDispatch (d : Dispatch) : RpcM CapHandle := do
  let backend ← read
  backend.serve fun iface method params => (d iface method params).run backend

/-- Runs a read (e.g. of params or results) in `RpcM`; malformed input becomes an IO error. -/
def liftRead (r : ReadM α) : RpcM α :=
  match r.run' (8 * 1024 * 1024) with
  | .ok a => pure a
  | .error e => throw (IO.userError (toString e))

/-- Drops a capability reference. -/
def release (h : CapHandle) : RpcM Unit := do (← read).release h

end Capnp.Rpc
