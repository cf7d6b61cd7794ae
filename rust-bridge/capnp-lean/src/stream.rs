//! [`StreamSink`]: a `futures::Sink` over a `-> stream` method.

use crate::error::Error;
use capnp::capability::{Promise, StreamingRequest};
use futures::Sink;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Feeds items into a method declared `-> stream`, one streaming call per item, with KJ's flow
/// control as the sink's readiness: [`Sink::poll_ready`] is pending until KJ admits the next
/// call, so `stream.forward(sink)` or `sink.send_all(..)` never runs ahead of the receiver by
/// more than the connection's window.
///
/// `make` turns an item into the generated streaming request (`client.write_request()` with
/// its params filled in). Once an item has failed at the receiver, a later send reports the
/// error; but flushing or closing the sink means only that every item was *admitted*, not that
/// it was processed. End the stream with the interface's regular call (e.g. `done()`), which
/// fails if any item failed.
///
/// ```no_run
/// # use capnp::capability::StreamingRequest;
/// # fn demo<P: capnp::traits::Owned>(write_request: impl Fn(u64) -> StreamingRequest<P> + Unpin) {
/// use futures::{SinkExt, StreamExt};
/// let sink = capnp_lean::StreamSink::new(write_request);
/// let items = futures::stream::iter(0..1000u64).map(Ok);
/// let sent = capnp_lean::block_on(items.forward(sink));
/// # let _ = sent; }
/// ```
pub struct StreamSink<T, P, F> {
    make: F,
    /// The last item's admission, while it is pending.
    admission: Option<Promise<(), capnp::Error>>,
    marker: PhantomData<fn(T) -> P>,
}

impl<T, P, F> StreamSink<T, P, F>
where
    P: capnp::traits::Owned,
    F: FnMut(T) -> StreamingRequest<P> + Unpin,
{
    /// A sink sending each item as the streaming request `make(item)`.
    pub fn new(make: F) -> Self {
        Self { make, admission: None, marker: PhantomData }
    }

    fn poll_admitted(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some(admission) = self.admission.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        match Pin::new(admission).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(outcome) => {
                self.admission = None;
                Poll::Ready(outcome.map_err(Error::from))
            }
        }
    }
}

impl<T, P, F> Sink<T> for StreamSink<T, P, F>
where
    P: capnp::traits::Owned,
    F: FnMut(T) -> StreamingRequest<P> + Unpin,
{
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_admitted(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Error> {
        let this = self.get_mut();
        this.admission = Some((this.make)(item).send());
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_admitted(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_admitted(cx)
    }
}
