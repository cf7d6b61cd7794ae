//! capnp-rust's capability hooks implemented over the bridge, so capnpc-rust generated clients
//! (`foo::Client`, `foo_request()`, `.send().promise`, `.pipeline.get_bar()`) and servers
//! (`foo::Server`) run on KJ's RPC system unchanged.
//!
//! A [`BridgeClient`] owns a capability handle; requests serialize their params with the
//! `capnp` crate and hand the segments plus capability table to the ABI; responses read the
//! results in place from the completed call; pipelines ask the ABI for pipelined capabilities.

#![allow(unsafe_code)]

use crate::error::Error;
use crate::ffi::{CallHandle, CallResults, CapHandle, LentMessage, Lendable, ServerCallHandle};
use capnp::any_pointer;
use capnp::capability::{Promise, RemotePromise, Request, Response};
use capnp::message::{self, HeapAllocator, ReaderOptions};
use capnp::private::capability::{ClientHook, ParamsHook, PipelineHook, PipelineOp, RequestHook, ResponseHook, ResultsHook};
use capnp::traits::{Imbue, ImbueMut};
use capnp::MessageSize;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

pub(crate) type CapTable = Vec<Option<Box<dyn ClientHook>>>;

/// First segment of a request without a size hint (words).
const DEFAULT_FIRST_SEGMENT_WORDS: u32 = 64;

/// Identifies hooks created by this module (compared by address, like KJ's brands).
static BRAND: u8 = 0;

fn brand() -> usize {
    &BRAND as *const u8 as usize
}

/// A capability reached through the bridge (or a broken one).
pub(crate) struct BridgeClient {
    cap: Result<Arc<CapHandle>, capnp::Error>,
}

impl BridgeClient {
    pub fn new(cap: CapHandle) -> Self {
        Self { cap: Ok(Arc::new(cap)) }
    }

    pub fn broken(error: capnp::Error) -> Self {
        Self { cap: Err(error) }
    }

    pub fn boxed(cap: Result<CapHandle, Error>) -> Box<dyn ClientHook> {
        Box::new(match cap {
            Ok(cap) => Self::new(cap),
            Err(e) => Self::broken(e.into()),
        })
    }
}

/// The bridge capability behind a capnp-rust client hook, or an error naming the problem.
pub(crate) fn cap_of(hook: &dyn ClientHook) -> Result<&CapHandle, Error> {
    if hook.get_brand() != brand() {
        return Err(Error::InvalidArgument(
            "this capability was not created through capnp_lean (a capnp-rpc local client?); \
             host servers with Runtime::serve so the bridge can pass them on"
                .into(),
        ));
    }
    // SAFETY: only BridgeClient reports BRAND's address as its brand, so the data pointer of
    // this trait object points to a BridgeClient.
    let client = unsafe { &*(hook as *const dyn ClientHook as *const BridgeClient) };
    match &client.cap {
        Ok(cap) => Ok(cap),
        Err(e) => Err(Error::from(e.clone())),
    }
}

/// Converts a capability table into the ABI's borrowed form.
fn table_caps(table: &CapTable) -> Result<Vec<Option<&CapHandle>>, Error> {
    table.iter().map(|entry| entry.as_deref().map(cap_of).transpose()).collect()
}

impl ClientHook for BridgeClient {
    fn add_ref(&self) -> Box<dyn ClientHook> {
        Box::new(Self { cap: self.cap.clone() })
    }

    fn new_call(&self, interface_id: u64, method_id: u16, size_hint: Option<MessageSize>) -> Request<any_pointer::Owned, any_pointer::Owned> {
        // capnp's default first segment (1024 words) is zeroed for every request; most params
        // are small and the message grows on demand, so start small unless told otherwise.
        let first_words = size_hint.map_or(DEFAULT_FIRST_SEGMENT_WORDS, |hint| hint.word_count.clamp(16, 1 << 20) as u32 + 1);
        let allocator = HeapAllocator::new().first_segment_words(first_words);
        Request::new(Box::new(BridgeRequest {
            target: self.cap.clone(),
            interface_id,
            method_id,
            message: message::Builder::new(allocator),
            cap_table: Vec::new(),
        }))
    }

    fn call(&self, interface_id: u64, method_id: u16, params: Box<dyn ParamsHook>, mut results: Box<dyn ResultsHook>) -> Promise<(), capnp::Error> {
        let mut request = self.new_call(interface_id, method_id, None);
        let copied = params.get().and_then(|p| request.get().set_as(p));
        if let Err(e) = copied {
            return Promise::err(e);
        }
        Promise::from_future(async move {
            let response = request.send().promise.await?;
            results.get()?.set_as(response.get()?)
        })
    }

    fn get_brand(&self) -> usize {
        brand()
    }

    fn get_ptr(&self) -> usize {
        self.cap.as_ref().map_or(0, |cap| cap.address())
    }

    fn get_resolved(&self) -> Option<Box<dyn ClientHook>> {
        None // KJ resolves promises below the ABI; the handle stays the same
    }

    fn when_more_resolved(&self) -> Option<Promise<Box<dyn ClientHook>, capnp::Error>> {
        None
    }

    fn when_resolved(&self) -> Promise<(), capnp::Error> {
        Promise::ok(())
    }
}

struct BridgeRequest {
    target: Result<Arc<CapHandle>, capnp::Error>,
    interface_id: u64,
    method_id: u16,
    message: message::Builder<HeapAllocator>,
    cap_table: CapTable,
}

impl RequestHook for BridgeRequest {
    fn get(&mut self) -> any_pointer::Builder<'_> {
        let mut root: any_pointer::Builder = self.message.get_root().expect("a fresh message has a root");
        root.imbue_mut(&mut self.cap_table);
        root
    }

    fn get_brand(&self) -> usize {
        brand()
    }

    fn send(self: Box<Self>) -> RemotePromise<any_pointer::Owned> {
        match start(*self) {
            Ok(call) => RemotePromise {
                promise: Promise::from_future(response_of(call.clone())),
                pipeline: any_pointer::Pipeline::new(Box::new(BridgePipeline { call: Ok(call) })),
            },
            Err(e) => RemotePromise {
                promise: Promise::err(e.clone()),
                pipeline: any_pointer::Pipeline::new(Box::new(BridgePipeline { call: Err(e) })),
            },
        }
    }

    fn send_streaming(self: Box<Self>) -> Promise<(), capnp::Error> {
        // KJ's flow control: the call leaves at once; the promise resolves when the window of
        // unacknowledged streaming calls on this capability has room for the next one, or fails
        // once an earlier streaming call on it has failed.
        match start_with(*self, true) {
            Ok(call) => Promise::from_future(async move {
                (&*call).await;
                call.handle.results().map(|_| ()).map_err(capnp::Error::from)
            }),
            Err(e) => Promise::err(e),
        }
    }

    fn tail_send(self: Box<Self>) -> Option<(u32, Promise<(), capnp::Error>, Box<dyn PipelineHook>)> {
        None
    }
}

/// Completion state shared between a call's future and its `on_done` callback.
#[derive(Default)]
struct Completion {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// A started call whose completion can be awaited.
pub(crate) struct StartedCall {
    handle: Arc<CallHandle>,
    completion: Arc<Completion>,
}

/// A finished message builder lends its segments to the ABI in place (no copy before KJ's).
impl Lendable for message::Builder<HeapAllocator> {
    fn segments(&self) -> Vec<&[u8]> {
        self.get_segments_for_output().to_vec()
    }
}

fn start(request: BridgeRequest) -> Result<Arc<StartedCall>, capnp::Error> {
    start_with(request, false)
}

/// Starts an ordinary call, or a streaming one (which completes on flow-control admission).
fn start_with(request: BridgeRequest, streaming: bool) -> Result<Arc<StartedCall>, capnp::Error> {
    let target = request.target?;
    let caps = table_caps(&request.cap_table)?;
    let completion = Arc::new(Completion::default());
    let signal = completion.clone();
    let start = if streaming { CapHandle::start_streaming_lent::<message::Builder<HeapAllocator>> } else { CapHandle::start_call_lent::<message::Builder<HeapAllocator>> };
    let handle = start(
        &target,
        request.interface_id,
        request.method_id,
        LentMessage { owner: Box::new(request.message), caps: &caps },
        Box::new(move |_completed| {
            signal.done.store(true, Ordering::Release);
            if let Some(waker) = signal.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                waker.wake();
            }
        }),
    )?;
    Ok(Arc::new(StartedCall { handle: Arc::new(handle), completion }))
}

impl Future for &StartedCall {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.completion.done.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.completion.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        // Completion may have landed between the check and storing the waker.
        if self.completion.done.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
    }
}

async fn response_of(call: Arc<StartedCall>) -> Result<Response<any_pointer::Owned>, capnp::Error> {
    (&*call).await;
    let results = CallResults::new(call.handle.clone())?;
    let cap_table = (0..results.cap_count as u32)
        .map(|i| Some(BridgeClient::boxed(results.call().result_cap(i))))
        .collect();
    let reader = message::Reader::new(results, ReaderOptions::new());
    Ok(Response::new(Box::new(BridgeResponse { reader, cap_table })))
}

struct BridgeResponse {
    reader: message::Reader<CallResults>,
    cap_table: CapTable,
}

impl ResponseHook for BridgeResponse {
    fn get(&self) -> capnp::Result<any_pointer::Reader<'_>> {
        let mut root: any_pointer::Reader = self.reader.get_root()?;
        root.imbue(&self.cap_table);
        Ok(root)
    }
}

struct BridgePipeline {
    call: Result<Arc<StartedCall>, capnp::Error>,
}

impl PipelineHook for BridgePipeline {
    fn add_ref(&self) -> Box<dyn PipelineHook> {
        Box::new(Self { call: self.call.clone() })
    }

    fn get_pipelined_cap(&self, ops: &[PipelineOp]) -> Box<dyn ClientHook> {
        let path: Vec<u16> = ops
            .iter()
            .filter_map(|op| match op {
                PipelineOp::Noop => None,
                PipelineOp::GetPointerField(field) => Some(*field),
            })
            .collect();
        match &self.call {
            Ok(call) => BridgeClient::boxed(call.handle.pipeline(&path)),
            Err(e) => Box::new(BridgeClient::broken(e.clone())),
        }
    }
}

/// Params of an incoming call, copied out of the ABI (word-aligned).
pub(crate) struct BridgeParams {
    reader: message::Reader<WordSegments>,
    cap_table: CapTable,
}

impl BridgeParams {
    pub fn new(segments: Vec<Vec<capnp::Word>>, cap_table: CapTable) -> Self {
        Self { reader: message::Reader::new(WordSegments(segments), ReaderOptions::new()), cap_table }
    }
}

/// Word vectors as the byte slices `ReaderSegments` wants (8-byte aligned by construction).
struct WordSegments(Vec<Vec<capnp::Word>>);

impl message::ReaderSegments for WordSegments {
    fn get_segment(&self, idx: u32) -> Option<&[u8]> {
        self.0.get(idx as usize).map(|words| capnp::Word::words_to_bytes(words))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl ParamsHook for BridgeParams {
    fn get(&self) -> capnp::Result<any_pointer::Reader<'_>> {
        let mut root: any_pointer::Reader = self.reader.get_root()?;
        root.imbue(&self.cap_table);
        Ok(root)
    }
}

/// Where a server's results land once the method is done with them.
pub(crate) type ResultsSlot = std::rc::Rc<std::cell::RefCell<Option<(message::Builder<HeapAllocator>, CapTable)>>>;

/// Results of an incoming call; on drop the message moves into the slot for the answer.
pub(crate) struct BridgeResults {
    message: Option<message::Builder<HeapAllocator>>,
    cap_table: CapTable,
    slot: ResultsSlot,
}

impl BridgeResults {
    pub fn new(slot: ResultsSlot) -> Self {
        let allocator = HeapAllocator::new().first_segment_words(DEFAULT_FIRST_SEGMENT_WORDS);
        Self { message: Some(message::Builder::new(allocator)), cap_table: Vec::new(), slot }
    }
}

impl Drop for BridgeResults {
    fn drop(&mut self) {
        if let Some(message) = self.message.take() {
            *self.slot.borrow_mut() = Some((message, std::mem::take(&mut self.cap_table)));
        }
    }
}

impl ResultsHook for BridgeResults {
    fn get(&mut self) -> capnp::Result<any_pointer::Builder<'_>> {
        let message = self.message.as_mut().ok_or_else(|| capnp::Error::failed("results already taken".into()))?;
        let mut root: any_pointer::Builder = message.get_root()?;
        root.imbue_mut(&mut self.cap_table);
        Ok(root)
    }

    fn set_pipeline(&mut self) -> capnp::Result<()> {
        Err(capnp::Error::unimplemented(
            "capnp-lean servers cannot publish a pipeline before returning (set_pipeline)".into(),
        ))
    }

    fn allow_cancellation(&self) {
        // The bridge always lets callers cancel: the method's future is dropped.
    }

    fn tail_call(self: Box<Self>, _request: Box<dyn RequestHook>) -> Promise<(), capnp::Error> {
        Promise::err(capnp::Error::unimplemented("capnp-lean servers do not support tail calls yet".into()))
    }

    fn direct_tail_call(self: Box<Self>, _request: Box<dyn RequestHook>) -> (Promise<(), capnp::Error>, Box<dyn PipelineHook>) {
        let error = capnp::Error::unimplemented("capnp-lean servers do not support tail calls yet".into());
        (Promise::err(error.clone()), Box::new(BridgePipeline { call: Err(error) }))
    }
}

/// Answers `call` with a server's results message, lent to the ABI (no copy before KJ's). A
/// capability the bridge cannot pass on fails the call instead.
pub(crate) fn respond_lent(call: ServerCallHandle, message: message::Builder<HeapAllocator>, cap_table: &CapTable) -> Result<(), Error> {
    match table_caps(cap_table) {
        Ok(caps) => call.respond_lent(LentMessage { owner: Box::new(message), caps: &caps }),
        Err(e) => call.fail(&e).and(Err(e)),
    }
}
