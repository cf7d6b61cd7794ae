//! The `Calculator` client scenario: literals, pipelined evaluation, defined functions, and
//! client-hosted functions the server calls back — every value checked.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use capnp::capability::Rc as CapRc;
use capnp::Error;
use capnp_schemas::calculator_capnp::calculator::{self, expression, function, value, Operator};

use super::interop::{step, STEP_TIMEOUT};
use crate::host::CapHost;
use crate::servers::calculator::call_function;

/// An expression to send, built in Rust before it is written into a request.
#[derive(Clone)]
pub enum Term {
    /// A constant.
    Literal(f64),
    /// An earlier (possibly pending) result.
    Value(value::Client),
    /// The n-th argument inside a `define` body.
    Argument(u32),
    /// A function applied to arguments.
    Apply(function::Client, Vec<Term>),
}

impl Term {
    /// Writes this term into `builder`.
    pub fn write(&self, mut builder: expression::Builder) {
        match self {
            Term::Literal(number) => builder.set_literal(*number),
            Term::Value(value) => builder.set_value(value.clone()),
            Term::Argument(index) => builder.set_argument(*index),
            Term::Apply(function, arguments) => {
                let mut apply = builder.init_apply();
                apply.set_function(function.clone());
                let mut list = apply.init_arguments(arguments.len() as u32);
                for (index, argument) in arguments.iter().enumerate() {
                    argument.write(list.reborrow().get(index as u32));
                }
            }
        }
    }
}

/// A client-hosted function computing `base ^ exponent`, counting the calls it receives.
#[derive(Clone, Default)]
pub struct LocalPower {
    calls: Arc<AtomicU32>,
}

impl LocalPower {
    /// How many calls reached this object.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl function::Server for LocalPower {
    async fn call(self: CapRc<Self>, params: function::CallParams, mut results: function::CallResults) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let arguments = params.get()?.get_arguments()?;
        if arguments.len() != 2 {
            return Err(Error::failed("power takes exactly 2 arguments".into()));
        }
        results.get().set_value(arguments.get(0).powf(arguments.get(1)));
        Ok(())
    }
}

/// Sends `evaluate(term)` and returns the (pipelined) value capability without waiting.
pub fn evaluate(calculator: &calculator::Client, term: &Term) -> value::Client {
    let mut request = calculator.evaluate_request();
    term.write(request.get().init_expression());
    request.send().pipeline.get_value()
}

/// Reads a value.
pub async fn read(value: &value::Client) -> Result<f64, Error> {
    Ok(value.read_request().send().promise.await?.get()?.get_value())
}

/// Sends `operator(op)` and returns the (pipelined) function without waiting.
pub fn operator(calculator: &calculator::Client, op: Operator) -> function::Client {
    let mut request = calculator.operator_request();
    request.get().set_op(op);
    request.send().pipeline.get_function()
}

/// Sends `define(arity, body)` and returns the (pipelined) function without waiting.
pub fn define(calculator: &calculator::Client, arity: u32, body: &Term) -> function::Client {
    let mut request = calculator.define_request();
    request.get().set_arity(arity);
    body.write(request.get().init_body());
    request.send().pipeline.get_function()
}

async fn expect_number(name: &str, work: impl Future<Output = Result<f64, Error>>, expected: f64) -> Result<(), String> {
    let got = step(name, work).await?;
    if got == expected {
        Ok(())
    } else {
        Err(format!("{name}: got {got}, expected {expected}"))
    }
}

/// Exercises every `Calculator` feature and checks each result; local functions are hosted
/// by `host`.
pub async fn run_calculator_scenario(host: &impl CapHost, calculator: &calculator::Client) -> Result<(), String> {
    use Term::{Apply, Argument, Literal};

    expect_number("literal", read(&evaluate(calculator, &Literal(123.5))), 123.5).await?;

    // (2 + 3) * 4, sent as three calls without waiting for any answer.
    let add = operator(calculator, Operator::Add);
    let multiply = operator(calculator, Operator::Multiply);
    let sum = evaluate(calculator, &Apply(add.clone(), vec![Literal(2.0), Literal(3.0)]));
    let product = evaluate(calculator, &Apply(multiply.clone(), vec![Term::Value(sum), Literal(4.0)]));
    expect_number("pipelined (2 + 3) * 4", read(&product), 20.0).await?;

    let divide = operator(calculator, Operator::Divide);
    let subtract = operator(calculator, Operator::Subtract);
    let quotient = Apply(divide, vec![Apply(subtract, vec![Literal(10.0), Literal(4.0)]), Literal(4.0)]);
    expect_number("(10 - 4) / 4", read(&evaluate(calculator, &quotient)), 1.5).await?;

    // f(x, y) = x * y + x, defined on the server.
    let body = Apply(add.clone(), vec![Apply(multiply, vec![Argument(0), Argument(1)]), Argument(0)]);
    let f = define(calculator, 2, &body);
    expect_number("f(3, 4) evaluated", read(&evaluate(calculator, &Apply(f.clone(), vec![Literal(3.0), Literal(4.0)]))), 15.0).await?;
    expect_number("f(5, 2) called", call_function(&f, &[5.0, 2.0]), 15.0).await?;
    match tokio::time::timeout(STEP_TIMEOUT, call_function(&f, &[1.0])).await {
        Ok(Err(e)) if e.kind == capnp::ErrorKind::Failed => {}
        other => return Err(format!("f called with one argument: expected failure, got {other:?}")),
    }

    // The server calls back into our own function.
    let power = LocalPower::default();
    let power_client: function::Client = host.serve(power.clone()).map_err(|e| format!("hosting our function: {e}"))?;
    let two_to_ten_plus_one = Apply(add, vec![Apply(power_client.clone(), vec![Literal(2.0), Literal(10.0)]), Literal(1.0)]);
    expect_number("2^10 + 1 via our function", read(&evaluate(calculator, &two_to_ten_plus_one)), 1025.0).await?;
    if power.calls() != 1 {
        return Err(format!("our power function was called {} times, not once", power.calls()));
    }

    // A pure forwarder resolves to our own function: the call must land on it.
    let forwarder = define(calculator, 2, &Apply(power_client, vec![Argument(0), Argument(1)]));
    expect_number("forwarder(3, 2)", call_function(&forwarder, &[3.0, 2.0]), 9.0).await?;
    if power.calls() != 2 {
        return Err(format!("the forwarder did not reach our function ({} calls, expected 2)", power.calls()));
    }

    let bad = define(calculator, 1, &Argument(1));
    match tokio::time::timeout(STEP_TIMEOUT, call_function(&bad, &[1.0])).await {
        Ok(Err(_)) => Ok(()),
        other => Err(format!("a body using a missing argument was accepted: {other:?}")),
    }
}
