//! Hostile frames for a Cap'n Proto RPC server, each drawn deterministically from a seed and an
//! index: random bytes, truncated frames, absurd segment counts and sizes, out-of-bounds
//! pointers, deep nesting, unknown message kinds, forged ids and bit flips. Structured ones
//! start as real rpc.capnp messages (built with `capnp` and `capnp_rpc::rpc_capnp`) and are then
//! corrupted, so they get past the framing and reach the RPC layer.

use capnp::message::{Builder, HeapAllocator};
use capnp::traits::HasTypeId;
use capnp_rpc::rpc_capnp::{message, payload};
use capnp_schemas::interop_capnp::interop;

use crate::reliability::Rng;

/// What a frame does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hostility {
    /// Bytes from nowhere, header included.
    RandomBytes,
    /// A sane one-segment header followed by random content.
    RandomContent,
    /// A real message cut short (the rest never comes).
    Truncated,
    /// A segment table claiming 512 to 2^32 segments.
    AbsurdSegmentCount,
    /// A segment claiming more than the server's traversal limit, up to 32 GiB (2 GiB included).
    AbsurdSegmentSize,
    /// A real message with a pointer aimed outside its segment (or at a missing segment).
    OutOfBoundsPointer,
    /// A call whose parameters nest structs far deeper than any nesting limit.
    DeepNesting,
    /// A real message whose union tag names a kind the server does not implement.
    UnknownKind,
    /// Finish, Release, Return, Resolve, Disembargo and calls naming ids that were never issued.
    ForgedIds,
    /// A real message with a few bits flipped.
    BitFlips,
}

/// Every hostility, in the order frames cycle through them.
pub const HOSTILITIES: [Hostility; 10] = [
    Hostility::RandomBytes,
    Hostility::RandomContent,
    Hostility::Truncated,
    Hostility::AbsurdSegmentCount,
    Hostility::AbsurdSegmentSize,
    Hostility::OutOfBoundsPointer,
    Hostility::DeepNesting,
    Hostility::UnknownKind,
    Hostility::ForgedIds,
    Hostility::BitFlips,
];

impl Hostility {
    /// How a frame of this kind leaves the stream.
    pub fn ending(self) -> Ending {
        match self {
            Hostility::RandomBytes | Hostility::Truncated => Ending::Unfinished,
            Hostility::AbsurdSegmentCount | Hostility::AbsurdSegmentSize => Ending::RefusedOnSight,
            _ => Ending::Complete,
        }
    }
}

/// How the stream is left after the frame, which decides what a correct server can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The frame is complete: the server reads all of it and must either close the connection
    /// or go on serving it.
    Complete,
    /// The header alone is unacceptable: the server must close without waiting for more bytes.
    RefusedOnSight,
    /// The frame may be incomplete: the sender half-closes, and the server must then close.
    Unfinished,
}

/// One hostile frame (possibly after a legitimate prelude it needs, such as a Bootstrap).
#[derive(Debug, Clone)]
pub struct HostileFrame {
    /// What it does wrong.
    pub hostility: Hostility,
    /// The bytes to send.
    pub bytes: Vec<u8>,
    /// How the stream is left.
    pub ending: Ending,
}

/// What frame number `index` of any run does wrong (frames cycle through [`HOSTILITIES`]).
pub fn hostility_of(index: u64) -> Hostility {
    HOSTILITIES[(index % HOSTILITIES.len() as u64) as usize]
}

/// Frame number `index` of the run seeded with `seed`. Question ids it uses legitimately start
/// at `first_question` (the caller's next unused id on that connection); it uses at most two.
pub fn hostile_frame(seed: u64, index: u64, first_question: u32) -> HostileFrame {
    let hostility = hostility_of(index);
    let mut rng = Rng::for_item(seed, index);
    let bytes = match hostility {
        Hostility::RandomBytes => {
            let len = rng.between(1, 4096) as usize;
            rng.bytes(len)
        }
        Hostility::RandomContent => {
            let words = rng.between(1, 256) as usize;
            let mut bytes = segment_table(&[words as u32]);
            bytes.extend(rng.bytes(words * 8));
            bytes
        }
        Hostility::Truncated => {
            let whole = plausible_message(&mut rng, first_question);
            let cut = rng.between(1, whole.len() as u64 - 1) as usize;
            whole[..cut].to_vec()
        }
        Hostility::AbsurdSegmentCount => {
            let count_minus_one = rng.between(511, u64::from(u32::MAX)) as u32;
            let mut bytes = count_minus_one.to_le_bytes().to_vec();
            bytes.extend((rng.between(0, 1 << 20) as u32).to_le_bytes());
            let tail = rng.between(0, 64) as usize;
            bytes.extend(rng.bytes(tail));
            bytes
        }
        Hostility::AbsurdSegmentSize => {
            let segments = rng.between(1, 4) as usize;
            let mut sizes: Vec<u32> = (0..segments).map(|_| rng.between(0, 64) as u32).collect();
            let huge = match rng.between(0, 2) {
                0 => 1 << 28, // exactly 2 GiB
                1 => u32::MAX,
                _ => rng.between((8 << 20) + 1, u64::from(u32::MAX)) as u32, // beyond 64 MiB
            };
            let which = rng.between(0, segments as u64 - 1) as usize;
            sizes[which] = huge;
            let mut bytes = segment_table(&sizes);
            let tail = rng.between(0, 256) as usize;
            bytes.extend(rng.bytes(tail));
            bytes
        }
        Hostility::OutOfBoundsPointer => {
            let mut frame = plausible_message(&mut rng, first_question);
            let words = (frame.len() - 8) / 8;
            // The root pointer half the time, any word otherwise.
            let word = if rng.percent(50) { 0 } else { rng.between(0, words as u64 - 1) as usize };
            let pointer = match rng.between(0, 2) {
                // struct or list pointer with a far-out offset
                0 | 1 => {
                    let offset = rng.between(words as u64, (1 << 29) - 1) as u32;
                    let negative = rng.percent(30);
                    let offset = if negative { (offset as i32).wrapping_neg() as u32 } else { offset };
                    u64::from((offset << 2) | rng.between(0, 1) as u32) | (rng.next_u64() & 0xFFFF_FFFF_0000_0000)
                }
                // a far pointer into a segment that does not exist
                _ => 2 | (rng.next_u64() & 0xFFFF_FFF8) | (rng.between(1, u64::from(u32::MAX)) << 32),
            };
            frame[8 + word * 8..16 + word * 8].copy_from_slice(&pointer.to_le_bytes());
            frame
        }
        Hostility::DeepNesting => {
            let depth = rng.between(65, 3000) as usize;
            let mut bytes = bootstrap(first_question);
            bytes.extend(deeply_nested_call(first_question + 1, first_question, depth));
            bytes
        }
        Hostility::UnknownKind => {
            let mut frame = plausible_message(&mut rng, first_question);
            // rpc.capnp's Message has 14 kinds (0..=13); 7 and 9..=12 are obsolete or level-3/4
            // features a two-party KJ peer does not implement either.
            let tag = match rng.between(0, 3) {
                0 => [7u16, 9, 10, 11, 12][rng.between(0, 4) as usize],
                _ => rng.between(14, u64::from(u16::MAX)) as u16,
            };
            let at = 8 + root_struct_word(&frame) * 8;
            frame[at..at + 2].copy_from_slice(&tag.to_le_bytes());
            frame
        }
        Hostility::ForgedIds => forged_ids(&mut rng),
        Hostility::BitFlips => {
            let mut frame = plausible_message(&mut rng, first_question);
            for _ in 0..rng.between(1, 8) {
                let bit = rng.between(64, frame.len() as u64 * 8 - 1) as usize; // never the header
                frame[bit / 8] ^= 1 << (bit % 8);
            }
            frame
        }
    };
    HostileFrame { hostility, bytes, ending: hostility.ending() }
}

/// A stream-framing segment table for segments of `sizes` words (padded to a whole word).
pub fn segment_table(sizes: &[u32]) -> Vec<u8> {
    let mut bytes = ((sizes.len() as u32).wrapping_sub(1)).to_le_bytes().to_vec();
    for size in sizes {
        bytes.extend(size.to_le_bytes());
    }
    bytes.resize(bytes.len().next_multiple_of(8), 0);
    bytes
}

/// Serializes a message built by `build` into one frame (a single segment).
pub fn frame_of(build: impl FnOnce(message::Builder)) -> Vec<u8> {
    let mut builder = Builder::new(HeapAllocator::new().first_segment_words(4096));
    build(builder.init_root());
    capnp::serialize::write_message_to_words(&builder)
}

/// An `Interop.echo` call of `payload` asking question `question_id`, on the bootstrap
/// capability of question 0 (a frame for peers that write raw calls and never read).
pub fn echo_call(question_id: u32, payload: &[u8]) -> Vec<u8> {
    frame_of(|m| {
        let mut call = m.init_call();
        call.set_question_id(question_id);
        call.set_interface_id(interop::Client::TYPE_ID);
        call.set_method_id(0);
        call.reborrow().init_target().init_promised_answer().set_question_id(0);
        let mut params: interop::echo_params::Builder = call.init_params().init_content().init_as();
        params.set_payload(payload);
    })
}

/// A Bootstrap asking question `question_id`.
pub fn bootstrap(question_id: u32) -> Vec<u8> {
    frame_of(|m| m.init_bootstrap().set_question_id(question_id))
}

/// A Finish for question `question_id`, releasing the capabilities in its results.
pub fn finish(question_id: u32) -> Vec<u8> {
    frame_of(|m| {
        let mut finish = m.init_finish();
        finish.set_question_id(question_id);
        finish.set_release_result_caps(true);
    })
}

/// Where the root struct of a one-segment frame starts (in words from the segment start).
fn root_struct_word(frame: &[u8]) -> usize {
    let root = u64::from_le_bytes(frame[8..16].try_into().expect("a frame has a root pointer"));
    let offset = ((root as u32) as i32) >> 2;
    (1 + offset) as usize
}

/// A well-formed message of a random kind, asking question `question_id` if it asks one.
fn plausible_message(rng: &mut Rng, question_id: u32) -> Vec<u8> {
    match rng.between(0, 4) {
        0 => bootstrap(question_id),
        1 | 2 => {
            let len = rng.between(0, 200) as usize;
            let payload = rng.bytes(len);
            frame_of(|m| {
                let mut call = m.init_call();
                call.set_question_id(question_id);
                call.set_interface_id(interop::Client::TYPE_ID);
                call.set_method_id(0);
                call.reborrow().init_target().set_imported_cap(0);
                let mut params: interop::echo_params::Builder = call.init_params().init_content().init_as();
                params.set_payload(&payload[..]);
            })
        }
        _ => forged_ids(rng),
    }
}

/// A message naming an id the server never issued (or a capability it never exported).
fn forged_ids(rng: &mut Rng) -> Vec<u8> {
    let id = if rng.percent(20) { rng.between(0, 3) as u32 } else { rng.next_u64() as u32 };
    match rng.between(0, 6) {
        0 => frame_of(|m| m.init_finish().set_question_id(id)),
        1 => frame_of(|m| {
            let mut release = m.init_release();
            release.set_id(id);
            release.set_reference_count(rng.between(1, u64::from(u32::MAX)) as u32);
        }),
        2 => frame_of(|m| {
            let mut answer = m.init_return();
            answer.set_answer_id(id);
            answer.set_canceled(());
        }),
        3 => frame_of(|m| {
            let mut resolve = m.init_resolve();
            resolve.set_promise_id(id);
            resolve.init_exception().set_reason("forged");
        }),
        4 => frame_of(|m| {
            let mut disembargo = m.init_disembargo();
            disembargo.reborrow().init_target().set_imported_cap(id);
            disembargo.init_context().set_receiver_loopback(id);
        }),
        5 => frame_of(|m| {
            let mut call = m.init_call();
            call.set_question_id(id);
            call.set_interface_id(interop::Client::TYPE_ID);
            call.reborrow().init_target().init_promised_answer().set_question_id(id ^ 0x5555);
            call.init_params();
        }),
        _ => frame_of(|m| {
            let mut call = m.init_call();
            call.set_question_id(id);
            call.set_interface_id(interop::Client::TYPE_ID);
            call.reborrow().init_target().set_imported_cap(id);
            let mut caps = call.init_params().init_cap_table(1);
            caps.reborrow().get(0).set_receiver_hosted(id.wrapping_add(1));
        }),
    }
}

/// An `echo` call on the bootstrap capability asked for by `bootstrap_question`, whose params'
/// content nests `depth` structs, each holding the next in its one pointer.
fn deeply_nested_call(question_id: u32, bootstrap_question: u32, depth: usize) -> Vec<u8> {
    frame_of(|m| {
        let mut call = m.init_call();
        call.set_question_id(question_id);
        call.set_interface_id(interop::Client::TYPE_ID);
        call.set_method_id(0);
        call.reborrow().init_target().init_promised_answer().set_question_id(bootstrap_question);
        let mut nested: payload::Builder = call.init_params().init_content().init_as();
        for _ in 0..depth {
            nested = nested.init_content().init_as();
        }
    })
}
