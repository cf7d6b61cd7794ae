import Capnp.Wire
import Capnp.Rpc.Backend
import Capnp.Rpc.Loopback
import Capnp.Schemas.Calculator
import Capnp.Schemas.Interop
import Capnp.Worker
