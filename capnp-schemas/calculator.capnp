@0xd9b3c274f41649fa;
# A remote calculator. Expressions are evaluated on the server; every result comes back as a
# `Value` capability, so a client can feed one call's result into the next without waiting
# (promise pipelining). Functions are capabilities too: the client may define its own and pass
# them in, and the server calls back into the client to apply them.

interface Calculator {
  evaluate @0 (expression :Expression) -> (value :Value);
  # Evaluates `expression`. The returned `Value` is a promise capability: it resolves once the
  # evaluation has finished (which may need calls back to client-hosted functions).

  operator @1 (op :Operator) -> (function :Function);
  # A built-in binary arithmetic function.

  define @2 (arity :UInt32, body :Expression) -> (function :Function);
  # A new function of `arity` arguments whose body may refer to them with `argument`.
  # The result is a promise that resolves once the body has been checked. A body that only
  # forwards its arguments, in order, to another function resolves to that function itself —
  # which may be a capability the caller hosts.

  struct Expression {
    union {
      literal @0 :Float64;
      # A constant.

      value @1 :Value;
      # The result of an earlier evaluation (possibly still pending).

      argument @2 :UInt32;
      # Inside a `define` body: the n-th argument of the function being defined.

      apply :group {
        # `function` applied to the values of `arguments`.
        function @3 :Function;
        arguments @4 :List(Expression);
      }
    }
  }

  interface Value {
    read @0 () -> (value :Float64);
  }

  interface Function {
    call @0 (arguments :List(Float64)) -> (value :Float64);
  }

  enum Operator {
    add @0;
    subtract @1;
    multiply @2;
    divide @3;
  }
}
