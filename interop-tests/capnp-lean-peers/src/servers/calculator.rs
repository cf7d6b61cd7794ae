//! The `Calculator` server: evaluation on the server, values and functions as capabilities, and
//! calls back into client-hosted functions.

use std::rc::Rc;

use capnp::capability::Rc as CapRc;
use capnp::Error;
use capnp_schemas::calculator_capnp::calculator::{self, expression, function, value, Operator};
use futures::future::LocalBoxFuture;
use futures::FutureExt;

use crate::host::CapHost;

/// An expression copied out of its message, so evaluation can outlive the request.
#[derive(Clone)]
enum Expression {
    Literal(f64),
    Value(value::Client),
    Argument(u32),
    Apply { function: function::Client, arguments: Vec<Expression> },
}

impl Expression {
    fn read(reader: expression::Reader) -> capnp::Result<Expression> {
        Ok(match reader.which()? {
            expression::Literal(number) => Expression::Literal(number),
            expression::Value(value) => Expression::Value(value?),
            expression::Argument(index) => Expression::Argument(index),
            expression::Apply(apply) => Expression::Apply {
                function: apply.get_function()?,
                arguments: apply.get_arguments()?.iter().map(Expression::read).collect::<capnp::Result<_>>()?,
            },
        })
    }

    /// Fails if the expression refers to an argument a function of `arity` does not have.
    fn check_arguments(&self, arity: u32) -> capnp::Result<()> {
        match self {
            Expression::Argument(index) if *index >= arity => {
                Err(Error::failed(format!("argument {index} used in a function of arity {arity}")))
            }
            Expression::Apply { arguments, .. } => arguments.iter().try_for_each(|a| a.check_arguments(arity)),
            _ => Ok(()),
        }
    }

    /// The function this body merely forwards all `arity` arguments to, in order, if it does.
    fn forwarded_function(&self, arity: u32) -> Option<function::Client> {
        let Expression::Apply { function, arguments } = self else { return None };
        let in_order = arguments.len() == arity as usize
            && arguments.iter().enumerate().all(|(i, a)| matches!(a, Expression::Argument(n) if *n as usize == i));
        in_order.then(|| function.clone())
    }

    /// Evaluates with `arguments` bound; independent sub-expressions are evaluated concurrently,
    /// so calls to remote functions and values overlap.
    fn evaluate(self, arguments: Rc<[f64]>) -> LocalBoxFuture<'static, Result<f64, Error>> {
        async move {
            match self {
                Expression::Literal(number) => Ok(number),
                Expression::Value(value) => Ok(value.read_request().send().promise.await?.get()?.get_value()),
                Expression::Argument(index) => arguments
                    .get(index as usize)
                    .copied()
                    .ok_or_else(|| Error::failed(format!("argument {index} is not bound here"))),
                Expression::Apply { function, arguments: operands } => {
                    let values = futures::future::try_join_all(
                        operands.into_iter().map(|operand| operand.evaluate(arguments.clone())),
                    )
                    .await?;
                    call_function(&function, &values).await
                }
            }
        }
        .boxed_local()
    }
}

/// Calls `function` with `arguments` and returns its value.
pub async fn call_function(function: &function::Client, arguments: &[f64]) -> Result<f64, Error> {
    let mut request = function.call_request();
    let mut list = request.get().init_arguments(arguments.len() as u32);
    for (index, argument) in arguments.iter().enumerate() {
        list.set(index as u32, *argument);
    }
    Ok(request.send().promise.await?.get()?.get_value())
}

/// A computed number.
struct ValueServer(f64);

impl value::Server for ValueServer {
    async fn read(self: CapRc<Self>, _: value::ReadParams, mut results: value::ReadResults) -> Result<(), Error> {
        results.get().set_value(self.0);
        Ok(())
    }
}

/// A built-in binary operator.
struct OperatorFunction(Operator);

/// A function defined by the client with `define`.
struct DefinedFunction {
    arity: u32,
    body: Expression,
}

fn arguments_of(params: &function::CallParams) -> capnp::Result<Vec<f64>> {
    Ok(params.get()?.get_arguments()?.iter().collect())
}

impl function::Server for OperatorFunction {
    async fn call(self: CapRc<Self>, params: function::CallParams, mut results: function::CallResults) -> Result<(), Error> {
        let &[left, right] = &arguments_of(&params)?[..] else {
            return Err(Error::failed(format!("operator {:?} takes exactly 2 arguments", self.0)));
        };
        let value = match self.0 {
            Operator::Add => left + right,
            Operator::Subtract => left - right,
            Operator::Multiply => left * right,
            Operator::Divide => left / right,
        };
        results.get().set_value(value);
        Ok(())
    }
}

impl function::Server for DefinedFunction {
    async fn call(self: CapRc<Self>, params: function::CallParams, mut results: function::CallResults) -> Result<(), Error> {
        let arguments = arguments_of(&params)?;
        if arguments.len() != self.arity as usize {
            return Err(Error::failed(format!("function of arity {} called with {} arguments", self.arity, arguments.len())));
        }
        let value = self.body.clone().evaluate(arguments.into()).await?;
        results.get().set_value(value);
        Ok(())
    }
}

/// Serves `Calculator`; it is stateless, every capability it hands out carries its own state.
pub struct CalculatorServer<H> {
    host: H,
}

impl<H: CapHost + Send> CalculatorServer<H> {
    /// A new calculator, creating its capabilities through `host`, as a bootstrap capability.
    pub fn new_client(host: H) -> Result<calculator::Client, Error> {
        host.clone().serve(CalculatorServer { host })
    }
}

impl<H: CapHost + Send> calculator::Server for CalculatorServer<H> {
    async fn evaluate(
        self: CapRc<Self>,
        params: calculator::EvaluateParams,
        mut results: calculator::EvaluateResults,
    ) -> Result<(), Error> {
        let expression = Expression::read(params.get()?.get_expression()?)?;
        // Answer at once with a promise so callers can pipeline on the value before it exists.
        let host = self.host.clone();
        let value: value::Client = self.host.future_client(async move {
            let number = expression.evaluate(Rc::from([])).await?;
            host.serve::<value::Client, _>(ValueServer(number))
        })?;
        results.get().set_value(value);
        Ok(())
    }

    async fn operator(
        self: CapRc<Self>,
        params: calculator::OperatorParams,
        mut results: calculator::OperatorResults,
    ) -> Result<(), Error> {
        let op = params.get()?.get_op()?;
        results.get().set_function(self.host.serve(OperatorFunction(op))?);
        Ok(())
    }

    async fn define(
        self: CapRc<Self>,
        params: calculator::DefineParams,
        mut results: calculator::DefineResults,
    ) -> Result<(), Error> {
        let params = params.get()?;
        let arity = params.get_arity();
        let body = Expression::read(params.get_body()?)?;
        let host = self.host.clone();
        let later_turn = self.host.sleep(std::time::Duration::ZERO);
        let function: function::Client = self.host.future_client(async move {
            // The schema promises a promise resolved after checking; checking on a later turn
            // means the answer always leaves first and Resolve follows on the wire.
            later_turn.await;
            body.check_arguments(arity)?;
            match body.forwarded_function(arity) {
                Some(function) => Ok(function),
                None => host.serve_here(DefinedFunction { arity, body }),
            }
        })?;
        results.get().set_function(function);
        Ok(())
    }
}
