import Capnp.Wire
import Capnp.Rpc.Backend
import Capnp.Rpc.Loopback
import Capnp.Gen.Calculator
import Capnp.Gen.Interop
import Capnp.Gen.TestImport
import Capnp.Gen.TestAll
import Capnp.Gen.Chat
