//! The raw TCP ping-pong floor for `rpc-bench`: an echo server and a sequential client over plain
//! `std::net::TcpStream`s, no framing and no RPC, with the benchmark's payload sizes. What an RPC
//! round trip costs beyond this is the RPC stack's.
//!
//! The client measures like [`rust_peer::bench`](capnp_lean_peers::rust_peer::bench): `WARMUP_CALLS`
//! unmeasured round trips, then `calls` measured ones, reported as one sequential
//! [`Measurement`].

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use capnp_lean_peers::cpu::CpuClock;
use capnp_lean_peers::rust_peer::bench::{mark, percentile, Measurement, WARMUP_CALLS};

/// The client name in the floor's measurements.
pub const CLIENT: &str = "tcp-floor";

/// Echoes every byte back on each accepted connection (a thread per connection), forever.
pub fn serve_echo(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept()?;
        thread::spawn(move || {
            // A client that goes away ends its thread; nothing to report.
            let _ = echo_until_closed(stream);
        });
    }
}

fn echo_until_closed(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        stream.write_all(&buffer[..read])?;
    }
}

/// One round trip: sends `payload` and reads as many bytes back into `back`.
fn round_trip(stream: &mut TcpStream, payload: &[u8], back: &mut [u8]) -> io::Result<()> {
    stream.write_all(payload)?;
    stream.read_exact(back)
}

/// Connects to an echo server at `address` (`host:port`) and measures `calls` sequential round
/// trips of `payload` bytes; with `marks`, prints a mark before and after (see
/// [`mark`]).
pub fn bench(address: &str, calls: u32, payload: usize, marks: bool) -> Result<Measurement, String> {
    let failed = |e: io::Error| format!("tcp round trip to {address}: {e}");
    let mut stream = TcpStream::connect(address).map_err(failed)?;
    stream.set_nodelay(true).map_err(failed)?;
    let sent = vec![0x5a; payload];
    let mut back = vec![0u8; payload];
    for _ in 0..WARMUP_CALLS {
        round_trip(&mut stream, &sent, &mut back).map_err(failed)?;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(calls as usize);
    mark(marks)?;
    let cpu = CpuClock::start();
    let start = Instant::now();
    for _ in 0..calls {
        let call = Instant::now();
        round_trip(&mut stream, &sent, &mut back).map_err(failed)?;
        samples.push(call.elapsed());
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_us = cpu.elapsed_us();
    mark(marks)?;
    if back != sent {
        return Err("the echo server returned different bytes".into());
    }
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(Measurement {
        client: CLIENT.into(),
        window: None,
        calls,
        payload,
        seconds,
        latency_us: Some((micros(percentile(&mut samples, 50.0)), micros(percentile(&mut samples, 99.0)))),
        cpu_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_client_measures_round_trips_through_the_echo_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        thread::spawn(move || serve_echo(listener));
        let measurement = bench(&address, 50, 70_000, false).unwrap();
        assert_eq!((measurement.client.as_str(), measurement.window, measurement.calls), (CLIENT, None, 50));
        let (p50, p99) = measurement.latency_us.unwrap();
        assert!(p50 > 0.0 && p99 >= p50 && measurement.seconds > 0.0);
    }
}
