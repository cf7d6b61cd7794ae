import Capnp.Rpc.Backend
import Capnp.Rpc.Loopback
import Std.Data.HashMap

/-!
# Capnp.Rpc.Kj

The KJ backend: Cap'n Proto RPC over KJ's C++ `RpcSystem`, reached through the Rust glue
(`rust-bridge/capnp-lean-glue`, linked as the static library `capnp_lean_glue`) and the capnp-lean C ABI.

Part one declares the externs. Their handles (`Runtime`, `Connection`, `Listener`, `Cap`, `Call`,
`ServerCall`, `Resolver`) are `External` objects: when Lean drops the last reference, the
finalizer releases the handle (for a `Cap`: Release on the wire once no other handle refers to
the capability). The explicit `release`/`cancel`/`close` externs do the same at a chosen moment.
Failures are `IO.userError "[capnp:<kind>] <message>"`; `RpcError.ofIOError` reads them back.

Threads: closures given to the glue (`onDone` of `Cap.call`, the handler of `Runtime.serve`,
`onEnd` of `Connection.onDisconnect`) run on the runtime's KJ loop thread, which the glue
registers with the Lean runtime. They must not block; they may start tasks, resolve promises and
answer a `ServerCall` later from any thread. `Runtime.connect`, `Runtime.listen` (and their
`…With` forms) and `Runtime.stats` block and fail on the loop thread.

Capabilities hosted by the Rust program in the same process (capnpc-rust generated servers,
handed over by `capnp_lean_glue::serve`) arrive as ordinary `Cap`s: call them with `Cap.call`,
or `Context.register` them for typed clients. A panic in such a server fails only that call
(`failed`, "panic in a server method: …").

Part two is the `Backend` over those externs: `CapHandle` ids index a table of `Cap`s, calls
complete through an `IO.Promise` resolved by `onDone`, servers run generated dispatchers.
The `@[extern]` declarations below are checked against the glue's exports by
`rust-bridge/capnp-lean-glue/tests/glue_externs.rs`: change both sides together.
-/

namespace Capnp.Rpc.Kj

open Capnp Capnp.Rpc

opaque RuntimeImpl : NonemptyType
/-- A KJ runtime: one thread running a KJ event loop. -/
def Runtime : Type := RuntimeImpl.type
instance : Nonempty Runtime := RuntimeImpl.property

opaque ConnectionImpl : NonemptyType
/-- A two-party connection; closing it (or dropping it) breaks the capabilities obtained over it. -/
def Connection : Type := ConnectionImpl.type
instance : Nonempty Connection := ConnectionImpl.property

opaque ListenerImpl : NonemptyType
/-- A listening socket serving one bootstrap capability to every accepted connection. -/
def Listener : Type := ListenerImpl.type
instance : Nonempty Listener := ListenerImpl.property

opaque CapImpl : NonemptyType
/-- One reference to a capability (remote, promised, or served by Lean). -/
def Cap : Type := CapImpl.type
instance : Nonempty Cap := CapImpl.property

opaque CallImpl : NonemptyType
/-- An outgoing call; dropping or cancelling it before completion sends Finish. -/
def Call : Type := CallImpl.type
instance : Nonempty Call := CallImpl.property

opaque ServerCallImpl : NonemptyType
/-- An incoming call to a Lean-served capability, answered once (`respond`/`fail`) from any
thread; dropped unanswered, the caller receives a `failed` error. -/
def ServerCall : Type := ServerCallImpl.type
instance : Nonempty ServerCall := ServerCallImpl.property

opaque ResolverImpl : NonemptyType
/-- The resolving end of a promise capability; dropped unused, the promise is rejected. -/
def Resolver : Type := ResolverImpl.type
instance : Nonempty Resolver := ResolverImpl.property

/-- A received message: segments and a capability table of new references. -/
structure Payload where
  segments : Array ByteArray
  caps : Array Cap

instance : Inhabited Payload := ⟨⟨#[], #[]⟩⟩

/-- Live objects of the C ABI, for leak checks. -/
structure Stats where
  connections : Nat
  caps : Nat
  calls : Nat
  serverCalls : Nat
  hostServers : Nat
  resolvers : Nat
  deriving Repr, Inhabited, BEq

/-- How a connection moves messages; both speak the standard stream framing. -/
inductive Transport where
  /-- Buffered reads (one read yields every message that has arrived) and one write for all
  messages queued during an event-loop turn. -/
  | coalescing
  /-- KJ 0.9.2's stock message stream: two reads and one write per message. -/
  | stock
  deriving Repr, BEq, Inhabited

/-- The C ABI's numbering (`CAPNP_LEAN_TRANSPORT_*`), as the glue expects it. -/
def Transport.toUInt32 : Transport → UInt32
  | .coalescing => 2
  | .stock => 1

/-- Per-connection limits on what the peer may send, as the Rust API's `ConnectionOptions`
(same defaults, safe for untrusted peers). A field set to 0 means its default. -/
structure ConnectionOptions where
  /-- Maximum pointer nesting depth of a received message. -/
  nestingLimit : UInt32 := 64
  /-- Maximum words traversed per received message (8 Mi words = 64 MiB); a larger message is
  refused before allocation and the connection closes. -/
  traversalLimitWords : UInt64 := 8388608
  /-- Over this many words of unanswered incoming calls' params, the connection stops reading
  (returns included) until some are answered. Too tight can deadlock calls that wait on calls
  the other way. -/
  flowLimitWords : UInt64 := 8388608
  /-- TCP only: a peer that acknowledges nothing for this long is declared dead and the
  connection fails with `disconnected`; 0 keeps the operating system's timeouts. -/
  deadPeerTimeoutMs : UInt32 := 0
  /-- How messages are read and written. -/
  transport : Transport := .coalescing
  deriving Repr, BEq, Inhabited

/-! ## Externs (implemented in rust-bridge/capnp-lean-glue/src/externs.rs, same order) -/

/-- Starts a runtime. -/
@[extern "capnp_lean_kj_runtime_new"]
opaque Runtime.new : IO Runtime

/-- Stops the loop: pending calls fail with `disconnected`. -/
@[extern "capnp_lean_kj_runtime_shutdown"]
opaque Runtime.shutdown (rt : @& Runtime) : IO Unit

/-- Live C ABI objects (blocks; not on the loop thread). -/
@[extern "capnp_lean_kj_runtime_stats"]
opaque Runtime.stats (rt : @& Runtime) : IO Stats

/-- Connects to `host:port` or `unix:/path` (blocks; not on the loop thread). -/
@[extern "capnp_lean_kj_connect"]
opaque Runtime.connect (rt : @& Runtime) (address : @& String) : IO Connection

/-- `Runtime.connect` with limits, unpacked into scalars (0 = default); `Runtime.connectWith`
takes a `ConnectionOptions`. `transport` is `Transport.toUInt32`. -/
@[extern "capnp_lean_kj_connect_with_options"]
opaque Runtime.connectUnpacked (rt : @& Runtime) (address : @& String) (nestingLimit : UInt32)
    (traversalLimitWords : UInt64) (flowLimitWords : UInt64) (deadPeerTimeoutMs : UInt32)
    (transport : UInt32) : IO Connection

/-- The peer's bootstrap capability. -/
@[extern "capnp_lean_kj_connection_bootstrap"]
opaque Connection.bootstrap (c : @& Connection) : IO Cap

/-- Closes the connection now. -/
@[extern "capnp_lean_kj_connection_close"]
opaque Connection.close (c : @& Connection) : IO Unit

/-- Applies `onEnd` once (on the loop thread) when the connection ends, with the reason:
`[capnp:disconnected] the connection to <address> was closed` (or `… failed: <why>`) when the
peer goes away, `[capnp:disconnected] the connection was closed locally` after `close` or
finalization, `… the capnp-lean runtime was shut down` at shutdown. Any number may wait; one
added after the end is applied at once. `Connection.disconnected` is the `Task` form. -/
@[extern "capnp_lean_kj_connection_on_disconnect"]
opaque Connection.onDisconnect (c : @& Connection) (onEnd : IO.Error → BaseIO Unit) : IO Unit

/-- Listens on `host:port` (port 0 picks one) or `unix:/path`, serving `bootstrap`. -/
@[extern "capnp_lean_kj_listen"]
opaque Runtime.listen (rt : @& Runtime) (address : @& String) (bootstrap : @& Cap) : IO Listener

/-- `Runtime.listen` with limits for every accepted connection, unpacked into scalars
(0 = default); `Runtime.listenWith` takes a `ConnectionOptions`. -/
@[extern "capnp_lean_kj_listen_with_options"]
opaque Runtime.listenUnpacked (rt : @& Runtime) (address : @& String) (bootstrap : @& Cap)
    (nestingLimit : UInt32) (traversalLimitWords : UInt64) (flowLimitWords : UInt64)
    (deadPeerTimeoutMs : UInt32) (transport : UInt32) : IO Listener

/-- The bound address. -/
@[extern "capnp_lean_kj_listener_address"]
opaque Listener.address (l : @& Listener) : IO String

/-- Starts a call. `onDone` runs once, on the loop thread, with the results (their capabilities
are new references) or the error — also `failed "the call was cancelled"` after `Call.cancel`. -/
@[extern "capnp_lean_kj_cap_call"]
opaque Cap.call (target : @& Cap) (interfaceId : UInt64) (methodId : UInt16)
    (segments : @& Array ByteArray) (caps : @& Array (Option Cap))
    (onDone : Except IO.Error Payload → BaseIO Unit) : IO Call

/-- `Cap.call` with a deadline: if no answer has come `timeoutMs` milliseconds after the call
started (KJ's timer), the call is cancelled (Finish on the wire) and `onDone` receives
`[capnp:overloaded] timed out after <limit>` (e.g. `timed out after 250ms`), the kind and text
of the Rust API's `RuntimeRef::timeout`. An answer first wins; the timer then does nothing. -/
@[extern "capnp_lean_kj_cap_call_timeout"]
opaque Cap.callWithTimeout (target : @& Cap) (interfaceId : UInt64) (methodId : UInt16)
    (segments : @& Array ByteArray) (caps : @& Array (Option Cap)) (timeoutMs : UInt64)
    (onDone : Except IO.Error Payload → BaseIO Unit) : IO Call

/-- The capability at pointer `path` of the call's future results, usable at once. -/
@[extern "capnp_lean_kj_call_pipeline"]
opaque Call.pipeline (c : @& Call) (path : @& Array UInt16) : IO Cap

/-- Cancels the call if still pending (Finish) and drops its results. -/
@[extern "capnp_lean_kj_call_cancel"]
opaque Call.cancel (c : @& Call) : IO Unit

/-- Drops this reference now (Release on the wire when it was the last). -/
@[extern "capnp_lean_kj_cap_release"]
opaque Cap.release (c : @& Cap) : IO Unit

/-- A new reference to the same capability. -/
@[extern "capnp_lean_kj_cap_clone"]
opaque Cap.clone (c : @& Cap) : IO Cap

/-- A capability whose every call fails with this error (`kind` as `ErrorKind.toUInt32`). -/
@[extern "capnp_lean_kj_cap_new_broken"]
opaque Runtime.brokenCap (rt : @& Runtime) (kind : UInt32) (message : @& String) : IO Cap

/-- A promise capability and its resolver. -/
@[extern "capnp_lean_kj_promise_cap_new"]
opaque Runtime.promiseCap (rt : @& Runtime) : IO (Cap × Resolver)

/-- Resolves the promise to `cap` (Resolve on the wire). -/
@[extern "capnp_lean_kj_resolver_fulfill"]
opaque Resolver.fulfill (r : @& Resolver) (cap : @& Cap) : IO Unit

/-- Rejects the promise. -/
@[extern "capnp_lean_kj_resolver_reject"]
opaque Resolver.reject (r : @& Resolver) (kind : UInt32) (message : @& String) : IO Unit

/-- A capability served by `handler`, which runs on the loop thread for each call. -/
@[extern "capnp_lean_kj_serve"]
opaque Runtime.serve (rt : @& Runtime)
    (handler : UInt64 → UInt16 → ServerCall → BaseIO Unit) : IO Cap

/-- The params of a server call. -/
@[extern "capnp_lean_kj_server_call_params"]
opaque ServerCall.params (c : @& ServerCall) : IO Payload

/-- Answers with results. -/
@[extern "capnp_lean_kj_server_call_return"]
opaque ServerCall.respond (c : @& ServerCall) (segments : @& Array ByteArray)
    (caps : @& Array (Option Cap)) : IO Unit

/-- Answers with an error. -/
@[extern "capnp_lean_kj_server_call_fail"]
opaque ServerCall.fail (c : @& ServerCall) (kind : UInt32) (message : @& String) : IO Unit

/-! ## Errors -/

/-- The numbering the glue and the C ABI use. -/
def _root_.Capnp.Rpc.ErrorKind.toUInt32 : ErrorKind → UInt32
  | .failed => 0
  | .overloaded => 1
  | .disconnected => 2
  | .unimplemented => 3

private def kindOfName : String → Option ErrorKind
  | "failed" => some .failed
  | "overloaded" => some .overloaded
  | "disconnected" => some .disconnected
  | "unimplemented" => some .unimplemented
  | _ => none

/-- Reads `[capnp:<kind>] <message>` (the glue's error text); any other error is `failed`. -/
def _root_.Capnp.Rpc.RpcError.ofIOError (e : IO.Error) : RpcError := Id.run do
  let text := toString e
  let chars := text.toList
  let pre := "[capnp:".toList
  if chars.take pre.length != pre then return ⟨.failed, text⟩
  let rest := chars.drop pre.length
  let name := rest.takeWhile (· != ']')
  match kindOfName (stringOfChars name) with
  | some kind => return ⟨kind, stringOfChars (rest.drop (name.length + 2))⟩
  | none => return ⟨.failed, text⟩

/-- The glue's error text for an `RpcError`. -/
def _root_.Capnp.Rpc.RpcError.toIOError (e : RpcError) : IO.Error :=
  let name := match e.kind with
    | .failed => "failed" | .overloaded => "overloaded"
    | .disconnected => "disconnected" | .unimplemented => "unimplemented"
  IO.userError s!"[capnp:{name}] {e.message}"

/-! ## Connection options and ends -/

/-- Connects to `address` with these limits (blocks; not on the loop thread). -/
def Runtime.connectWith (rt : Runtime) (address : String) (options : ConnectionOptions) :
    IO Connection :=
  rt.connectUnpacked address options.nestingLimit options.traversalLimitWords
    options.flowLimitWords options.deadPeerTimeoutMs options.transport.toUInt32

/-- Listens on `address`, serving `bootstrap` with these limits on every accepted connection
(blocks; not on the loop thread). -/
def Runtime.listenWith (rt : Runtime) (address : String) (bootstrap : Cap)
    (options : ConnectionOptions) : IO Listener :=
  rt.listenUnpacked address bootstrap options.nestingLimit options.traversalLimitWords
    options.flowLimitWords options.deadPeerTimeoutMs options.transport.toUInt32

/-- A task resolved once, when the connection ends, with the reason (kind `disconnected`; the
messages are listed at `Connection.onDisconnect`). Each call adds a watcher; all resolve. -/
def Connection.disconnected (c : Connection) : IO (Task RpcError) := do
  let promise ← IO.Promise.new (α := RpcError)
  c.onDisconnect fun e => promise.resolve (RpcError.ofIOError e)
  -- The glue applies every watcher exactly once; a dropped promise would mean it could not.
  return promise.result?.map (·.getD ⟨.disconnected, "the disconnect watch was dropped"⟩)

/-! ## The backend -/

/-- Which `Cap` each `CapHandle` id stands for, and calls still open to pipelining. -/
structure State where
  nextId : UInt64 := 1
  caps : Std.HashMap UInt64 Cap := {}
  calls : Std.HashMap UInt64 Call := {}

/-- One backend instance: its runtime and handle table. With `callTimeoutMs`, every call
started through it carries that deadline (`Cap.callWithTimeout`); see `withCallTimeout`. -/
structure Context where
  runtime : Runtime
  state : IO.Ref State
  callTimeoutMs : Option UInt64 := none

def Context.new (rt : Runtime) : BaseIO Context := do
  let state ← IO.mkRef ({} : State)
  return { runtime := rt, state }

/-- Registers a reference; the table now owns it. -/
def Context.register (ctx : Context) (cap : Cap) : BaseIO CapHandle :=
  ctx.state.modifyGet fun s =>
    (⟨s.nextId⟩, { s with nextId := s.nextId + 1, caps := s.caps.insert s.nextId cap })

def Context.lookup (ctx : Context) (h : CapHandle) : IO Cap := do
  match (← ctx.state.get).caps[h.id]? with
  | some c => return c
  | none => throw (RpcError.toIOError ⟨.failed, s!"unknown or released capability {h.id}"⟩)

/-- A message's capability table for the glue (`CapHandle.null` is a null capability). -/
def Context.capTable (ctx : Context) (caps : Array CapHandle) : IO (Array (Option Cap)) :=
  caps.mapM fun h => if h == CapHandle.null then pure none else some <$> ctx.lookup h

/-- A received payload as a `Message`; each capability becomes a new table entry that the
receiver releases (as with Loopback). -/
def Context.toMessage (ctx : Context) (p : Payload) : BaseIO Message := do
  let caps ← p.caps.mapM ctx.register
  return { segments := p.segments, caps }

/-- The same context (same handle table) whose calls time out after `timeoutMs` milliseconds:
past it a call is cancelled (Finish) and its result is `overloaded` "timed out after …".
Generated clients get the deadline by running on its backend:
`(calc.evaluate …).run (ctx.withCallTimeout 500).backend`. -/
def Context.withCallTimeout (ctx : Context) (timeoutMs : UInt64) : Context :=
  { ctx with callTimeoutMs := some timeoutMs }

def Context.call (ctx : Context) (target : CapHandle) (iface : UInt64) (method : UInt16)
    (msg : Message) : IO PendingCall := do
  let cap ← ctx.lookup target
  let caps ← ctx.capTable msg.caps
  let promise ← IO.Promise.new (α := Except RpcError Message)
  let callId ← ctx.state.modifyGet fun s => (s.nextId, { s with nextId := s.nextId + 1 })
  -- Resolve first, then forget the call: with the check below, no entry outlives its call.
  let onDone : Except IO.Error Payload → BaseIO Unit := fun r => do
    match r with
    | .error e => promise.resolve (.error (RpcError.ofIOError e))
    | .ok p => promise.resolve (.ok (← ctx.toMessage p))
    ctx.state.modify fun s => { s with calls := s.calls.erase callId }
  let call ← match ctx.callTimeoutMs with
    | some ms => cap.callWithTimeout iface method msg.segments caps ms onDone
    | none => cap.call iface method msg.segments caps onDone
  let result := promise.result?.map (·.getD (.error ⟨.disconnected, "the call was dropped"⟩))
  ctx.state.modify fun s => { s with calls := s.calls.insert callId call }
  -- `onDone` may already have run on the loop thread (before the insert): drop the entry here.
  if ← IO.hasFinished result then
    ctx.state.modify fun s => { s with calls := s.calls.erase callId }
  return ⟨callId, result⟩

def Context.broken (ctx : Context) (e : RpcError) : IO CapHandle := do
  ctx.register (← ctx.runtime.brokenCap e.kind.toUInt32 e.message)

def Context.pipeline (ctx : Context) (pc : PendingCall) (path : Array UInt16) : IO CapHandle := do
  match (← ctx.state.get).calls[pc.id]? with
  | some call => ctx.register (← call.pipeline path)
  | none =>
    -- Completed (or cancelled): the capability is in the results already.
    match ← IO.wait pc.result with
    | .error e => ctx.broken e
    | .ok msg =>
      match Loopback.capAt msg path with
      | .error e => ctx.broken ⟨.failed, toString e⟩
      | .ok h =>
        if h == CapHandle.null then ctx.broken ⟨.failed, "no capability at the pipelined path"⟩
        else ctx.register (← (← ctx.lookup h).clone)

def Context.release (ctx : Context) (h : CapHandle) : IO Unit := do
  let cap? ← ctx.state.modifyGet fun s => (s.caps[h.id]?, { s with caps := s.caps.erase h.id })
  if let some cap := cap? then cap.release

def Context.cancel (ctx : Context) (pc : PendingCall) : IO Unit := do
  if let some call := (← ctx.state.get).calls[pc.id]? then call.cancel

/-- Answers a server call with a dispatcher's outcome. -/
def Context.answer (ctx : Context) (sc : ServerCall) : Except RpcError Message → IO Unit
  | .error e => sc.fail e.kind.toUInt32 e.message
  | .ok msg => do sc.respond msg.segments (← ctx.capTable msg.caps)

/-- Hosts a dispatcher. It runs on the loop thread; its reply task is awaited off it. -/
def Context.serve (ctx : Context) (dispatch : ServerDispatch) : IO CapHandle := do
  let handler : UInt64 → UInt16 → ServerCall → BaseIO Unit := fun iface method sc => do
    match ← EIO.toBaseIO sc.params with
    | .error e => discard <| EIO.toBaseIO (sc.fail 0 (toString e))
    | .ok p =>
      let msg ← ctx.toMessage p
      match ← EIO.toBaseIO (dispatch iface method msg) with
      | .error e => discard <| EIO.toBaseIO (sc.fail 0 (toString e))
      | .ok reply =>
        discard <| BaseIO.mapTask (fun r => do discard <| EIO.toBaseIO (ctx.answer sc r)) reply
  ctx.register (← ctx.runtime.serve handler)

/-- The `Backend` of a context. -/
def Context.backend (ctx : Context) : Backend where
  call := ctx.call
  pipeline := ctx.pipeline
  release := ctx.release
  serve := ctx.serve
  cancel := ctx.cancel

/-- A client session: the backend, the peer's bootstrap capability and the connection (keep it;
dropping it closes the connection). -/
structure Session where
  context : Context
  connection : Connection
  bootstrap : CapHandle

/-- Bootstraps over an open connection. -/
def Session.ofConnection (rt : Runtime) (connection : Connection) : IO Session := do
  let context ← Context.new rt
  let bootstrap ← context.register (← connection.bootstrap)
  return { context, connection, bootstrap }

/-- Connects to `address` and bootstraps. -/
def connect (rt : Runtime) (address : String) : IO Session := do
  Session.ofConnection rt (← rt.connect address)

/-- Connects to `address` with these limits and bootstraps. -/
def connectWith (rt : Runtime) (address : String) (options : ConnectionOptions) : IO Session := do
  Session.ofConnection rt (← rt.connectWith address options)

/-- Resolved once, with the reason, when the session's connection ends. -/
def Session.disconnected (s : Session) : IO (Task RpcError) :=
  s.connection.disconnected

/-- Serves the capability `bootstrap` of this context on `address`. -/
def Context.listen (ctx : Context) (address : String) (bootstrap : CapHandle) : IO Listener := do
  ctx.runtime.listen address (← ctx.lookup bootstrap)

/-- Serves `bootstrap` on `address` with these limits on every accepted connection. -/
def Context.listenWith (ctx : Context) (address : String) (bootstrap : CapHandle)
    (options : ConnectionOptions) : IO Listener := do
  ctx.runtime.listenWith address (← ctx.lookup bootstrap) options

end Capnp.Rpc.Kj
