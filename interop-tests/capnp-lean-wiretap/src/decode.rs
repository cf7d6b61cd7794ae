//! What one rpc.capnp `Message` says, reduced to the facts the interop tests assert on.

use capnp::message::ReaderOptions;
use capnp_rpc::rpc_capnp::{call, cap_descriptor, disembargo, message, message_target, resolve, return_};

/// The kind of an rpc.capnp `Message` (its union discriminant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    /// `unimplemented`: the peer echoing back a message it did not understand.
    Unimplemented,
    /// `abort`: the connection is being torn down with an exception.
    Abort,
    /// `bootstrap`: asking for the peer's bootstrap capability.
    Bootstrap,
    /// `call`: a method call.
    Call,
    /// `return`: the answer to a call or bootstrap.
    Return,
    /// `finish`: the caller is done with a question (or cancels it).
    Finish,
    /// `resolve`: a promise capability the sender exported has resolved.
    Resolve,
    /// `release`: dropping references to an imported capability.
    Release,
    /// `disembargo`: the embargo protocol keeping calls in order across a resolution.
    Disembargo,
    /// `provide`, `accept`, `join`, `obsoleteSave`, `obsoleteDelete`: level 3+ or obsolete.
    Other,
    /// Bytes that framed correctly but did not parse as a `Message`.
    Undecodable,
}

/// The seven kinds a two-party session exercising calls, pipelining, capabilities and
/// promises produces: what the demo and the interop suite must show on the wire.
pub const SEVEN_KINDS: [MessageKind; 7] = [
    MessageKind::Bootstrap,
    MessageKind::Call,
    MessageKind::Return,
    MessageKind::Finish,
    MessageKind::Resolve,
    MessageKind::Release,
    MessageKind::Disembargo,
];

/// Where a call's results go (`Call.sendResultsTo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendResultsTo {
    /// Back to the caller (the ordinary case).
    Caller,
    /// Kept by the callee, to be picked up with `Return.takeFromOtherQuestion`.
    Yourself,
    /// To a third party (level 3).
    ThirdParty,
}

/// What a call is addressed to (`Call.target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallTarget {
    /// A capability the receiver exported, by export id.
    ImportedCap(u32),
    /// A capability inside the (possibly pending) answer to a question: promise pipelining.
    PromisedAnswer {
        /// The question whose answer holds the target.
        question_id: u32,
        /// Pointer-field indexes leading from the answer's content to the capability.
        path: Vec<u16>,
    },
}

/// How a `Return` ends its question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnOutcome {
    /// Results, with this many capabilities in the cap table.
    Results {
        /// Entries in the results' capability table.
        cap_count: u32,
    },
    /// An exception of this type (`failed`, `overloaded`, `disconnected`, `unimplemented`).
    Exception {
        /// The exception type as written in rpc.capnp.
        kind: String,
        /// The human-readable reason.
        reason: String,
    },
    /// The call was canceled.
    Canceled,
    /// The results were sent elsewhere (`sendResultsTo` was not `caller`).
    ResultsSentElsewhere,
    /// The results are those of another question (the reflected call sent with `yourself`).
    TakeFromOtherQuestion(u32),
    /// Level 3.
    AcceptFromThirdParty,
}

/// How a `Resolve` resolves its promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// To a capability, described by its `CapDescriptor` kind (e.g. `senderHosted`).
    Cap(String),
    /// To an exception with this reason.
    Exception(String),
}

/// A decoded RPC message with the details tests look at.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcMessage {
    /// `bootstrap`.
    Bootstrap {
        /// The question id.
        question_id: u32,
    },
    /// `call`.
    Call {
        /// The question id.
        question_id: u32,
        /// The interface being called.
        interface_id: u64,
        /// The method ordinal.
        method_id: u16,
        /// What the call is addressed to.
        target: CallTarget,
        /// Where the results go.
        send_results_to: SendResultsTo,
    },
    /// `return`.
    Return {
        /// The question being answered.
        answer_id: u32,
        /// How it ended.
        outcome: ReturnOutcome,
        /// The callee already forgot the question, so no Finish will follow (rpc.capnp of
        /// Cap'n Proto ≥ 0.11; capnp-rpc sets it on results without capabilities, KJ 0.9.2 never).
        no_finish_needed: bool,
    },
    /// `finish`.
    Finish {
        /// The question being finished.
        question_id: u32,
    },
    /// `resolve`.
    Resolve {
        /// The export id of the promise that resolved.
        promise_id: u32,
        /// What it resolved to.
        resolution: Resolution,
    },
    /// `release`.
    Release {
        /// The import id being released.
        id: u32,
        /// How many references are dropped.
        reference_count: u32,
    },
    /// `disembargo`, with its context kind (`senderLoopback`, `receiverLoopback`, ...).
    Disembargo {
        /// The context kind, as named in rpc.capnp.
        context: String,
    },
    /// `abort`, with the exception reason.
    Abort {
        /// Why the connection is being aborted.
        reason: String,
    },
    /// `unimplemented`.
    Unimplemented,
    /// Any other kind, by rpc.capnp name.
    Other(String),
    /// A frame that did not parse; the error text.
    Undecodable(String),
}

impl RpcMessage {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            RpcMessage::Bootstrap { .. } => MessageKind::Bootstrap,
            RpcMessage::Call { .. } => MessageKind::Call,
            RpcMessage::Return { .. } => MessageKind::Return,
            RpcMessage::Finish { .. } => MessageKind::Finish,
            RpcMessage::Resolve { .. } => MessageKind::Resolve,
            RpcMessage::Release { .. } => MessageKind::Release,
            RpcMessage::Disembargo { .. } => MessageKind::Disembargo,
            RpcMessage::Abort { .. } => MessageKind::Abort,
            RpcMessage::Unimplemented => MessageKind::Unimplemented,
            RpcMessage::Other(_) => MessageKind::Other,
            RpcMessage::Undecodable(_) => MessageKind::Undecodable,
        }
    }

    /// Decodes one framed message (segment table included).
    pub fn decode(frame: &[u8]) -> RpcMessage {
        decode_frame(frame).unwrap_or_else(|e| RpcMessage::Undecodable(e.to_string()))
    }
}

fn decode_frame(mut frame: &[u8]) -> capnp::Result<RpcMessage> {
    let mut options = ReaderOptions::new();
    options.traversal_limit_in_words(None);
    let reader = capnp::serialize::read_message_from_flat_slice(&mut frame, options)?;
    let root: message::Reader = reader.get_root()?;
    Ok(match root.which()? {
        message::Bootstrap(b) => RpcMessage::Bootstrap { question_id: b?.get_question_id() },
        message::Call(c) => decode_call(c?)?,
        message::Return(r) => decode_return(r?)?,
        message::Finish(f) => RpcMessage::Finish { question_id: f?.get_question_id() },
        message::Resolve(r) => decode_resolve(r?)?,
        message::Release(r) => {
            let r = r?;
            RpcMessage::Release { id: r.get_id(), reference_count: r.get_reference_count() }
        }
        message::Disembargo(d) => RpcMessage::Disembargo { context: disembargo_context(d?)? },
        message::Abort(e) => RpcMessage::Abort { reason: text(e?.get_reason()?) },
        message::Unimplemented(_) => RpcMessage::Unimplemented,
        message::Provide(_) => RpcMessage::Other("provide".into()),
        message::Accept(_) => RpcMessage::Other("accept".into()),
        message::Join(_) => RpcMessage::Other("join".into()),
        message::ObsoleteSave(_) => RpcMessage::Other("obsoleteSave".into()),
        message::ObsoleteDelete(_) => RpcMessage::Other("obsoleteDelete".into()),
    })
}

fn text(reader: capnp::text::Reader) -> String {
    reader.to_string().unwrap_or_else(|_| "<invalid utf-8>".into())
}

fn decode_call(c: call::Reader) -> capnp::Result<RpcMessage> {
    let target = match c.get_target()?.which()? {
        message_target::ImportedCap(id) => CallTarget::ImportedCap(id),
        message_target::PromisedAnswer(answer) => {
            let answer = answer?;
            let mut path = Vec::new();
            for op in answer.get_transform()? {
                if let capnp_rpc::rpc_capnp::promised_answer::op::GetPointerField(field) = op.which()? {
                    path.push(field);
                }
            }
            CallTarget::PromisedAnswer { question_id: answer.get_question_id(), path }
        }
    };
    let send_results_to = match c.get_send_results_to().which()? {
        call::send_results_to::Caller(()) => SendResultsTo::Caller,
        call::send_results_to::Yourself(()) => SendResultsTo::Yourself,
        call::send_results_to::ThirdParty(_) => SendResultsTo::ThirdParty,
    };
    Ok(RpcMessage::Call {
        question_id: c.get_question_id(),
        interface_id: c.get_interface_id(),
        method_id: c.get_method_id(),
        target,
        send_results_to,
    })
}

fn decode_return(r: return_::Reader) -> capnp::Result<RpcMessage> {
    let outcome = match r.which()? {
        return_::Results(payload) => ReturnOutcome::Results { cap_count: payload?.get_cap_table()?.len() },
        return_::Exception(e) => {
            let e = e?;
            let kind = match e.get_type() {
                Ok(t) => format!("{t:?}").to_lowercase(),
                Err(_) => "unknown".into(),
            };
            ReturnOutcome::Exception { kind, reason: text(e.get_reason()?) }
        }
        return_::Canceled(()) => ReturnOutcome::Canceled,
        return_::ResultsSentElsewhere(()) => ReturnOutcome::ResultsSentElsewhere,
        return_::TakeFromOtherQuestion(id) => ReturnOutcome::TakeFromOtherQuestion(id),
        return_::AcceptFromThirdParty(_) => ReturnOutcome::AcceptFromThirdParty,
    };
    Ok(RpcMessage::Return { answer_id: r.get_answer_id(), outcome, no_finish_needed: r.get_no_finish_needed() })
}

fn decode_resolve(r: resolve::Reader) -> capnp::Result<RpcMessage> {
    let resolution = match r.which()? {
        resolve::Cap(cap) => Resolution::Cap(cap_descriptor_kind(cap?)?.into()),
        resolve::Exception(e) => Resolution::Exception(text(e?.get_reason()?)),
    };
    Ok(RpcMessage::Resolve { promise_id: r.get_promise_id(), resolution })
}

fn cap_descriptor_kind(cap: cap_descriptor::Reader) -> capnp::Result<&'static str> {
    Ok(match cap.which()? {
        cap_descriptor::None(()) => "none",
        cap_descriptor::SenderHosted(_) => "senderHosted",
        cap_descriptor::SenderPromise(_) => "senderPromise",
        cap_descriptor::ReceiverHosted(_) => "receiverHosted",
        cap_descriptor::ReceiverAnswer(_) => "receiverAnswer",
        cap_descriptor::ThirdPartyHosted(_) => "thirdPartyHosted",
    })
}

fn disembargo_context(d: disembargo::Reader) -> capnp::Result<String> {
    Ok(match d.get_context().which()? {
        disembargo::context::SenderLoopback(_) => "senderLoopback",
        disembargo::context::ReceiverLoopback(_) => "receiverLoopback",
        disembargo::context::Accept(()) => "accept",
        disembargo::context::Provide(_) => "provide",
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(build: impl FnOnce(message::Builder)) -> Vec<u8> {
        let mut builder = capnp::message::Builder::new_default();
        build(builder.init_root());
        capnp::serialize::write_message_to_words(&builder)
    }

    #[test]
    fn decodes_a_pipelined_call_sent_with_results_to_yourself() {
        let frame = framed(|root| {
            let mut call = root.init_call();
            call.set_question_id(7);
            call.set_interface_id(0xabcd);
            call.set_method_id(4);
            let mut answer = call.reborrow().init_target().init_promised_answer();
            answer.set_question_id(3);
            answer.init_transform(1).get(0).set_get_pointer_field(0);
            call.init_send_results_to().set_yourself(());
        });
        let expected = RpcMessage::Call {
            question_id: 7,
            interface_id: 0xabcd,
            method_id: 4,
            target: CallTarget::PromisedAnswer { question_id: 3, path: vec![0] },
            send_results_to: SendResultsTo::Yourself,
        };
        assert_eq!(RpcMessage::decode(&frame), expected);
    }

    #[test]
    fn decodes_a_return_taken_from_another_question() {
        let frame = framed(|root| {
            let mut ret = root.init_return();
            ret.set_answer_id(2);
            ret.set_take_from_other_question(9);
        });
        let decoded = RpcMessage::decode(&frame);
        assert!(matches!(decoded, RpcMessage::Return { answer_id: 2, outcome: ReturnOutcome::TakeFromOtherQuestion(9), .. }), "{decoded:?}");
    }

    #[test]
    fn decodes_a_resolve_to_a_sender_promise_and_a_disembargo() {
        let resolve = framed(|root| {
            let mut resolve = root.init_resolve();
            resolve.set_promise_id(5);
            resolve.init_cap().set_sender_promise(6);
        });
        assert_eq!(RpcMessage::decode(&resolve), RpcMessage::Resolve { promise_id: 5, resolution: Resolution::Cap("senderPromise".into()) });
        let disembargo = framed(|root| root.init_disembargo().init_context().set_receiver_loopback(1));
        assert_eq!(RpcMessage::decode(&disembargo), RpcMessage::Disembargo { context: "receiverLoopback".into() });
    }

    #[test]
    fn reports_bytes_that_are_not_a_message_as_undecodable() {
        let decoded = RpcMessage::decode(&[0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decoded.kind(), MessageKind::Undecodable, "{decoded:?}");
    }
}
