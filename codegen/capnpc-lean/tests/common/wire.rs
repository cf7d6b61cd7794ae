//! A deliberately small, independent Cap'n Proto decoder used to check the generator's layouts:
//! it knows the encoding (pointers, far pointers, lists) but nothing about any schema, so field
//! positions must come from the IR under test.

/// A message as segments of words.
pub struct Message {
    pub segments: Vec<Vec<u64>>,
}

/// A struct located in a message.
#[derive(Clone, Copy)]
pub struct StructRef {
    pub seg: usize,
    pub data: usize,
    pub data_words: usize,
    pub pointers: usize,
    pub pointer_count: usize,
}

/// A list located in a message.
#[derive(Clone, Copy)]
pub struct ListRef {
    pub seg: usize,
    /// First element's word.
    pub start: usize,
    /// Element size code (0..=7) from the pointer.
    pub size: u8,
    pub count: usize,
    /// For composite lists: words per element and their sections.
    pub data_words: usize,
    pub pointer_count: usize,
}

/// Where a pointer lives.
#[derive(Clone, Copy)]
pub struct PointerAt {
    pub seg: usize,
    pub word: usize,
    /// False for pointers beyond the struct's section (read as null).
    pub present: bool,
}

/// What a pointer resolves to.
pub enum Target {
    Null,
    Struct(StructRef),
    List(ListRef),
    Cap(u32),
}

impl Message {
    /// Parses the standard stream framing.
    pub fn from_bytes(bytes: &[u8]) -> Message {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap()) as usize;
        let count = u32_at(0) + 1;
        let mut offset_words = (4 + 4 * count).div_ceil(8);
        let mut segments = Vec::new();
        for i in 0..count {
            let size = u32_at(1 + i);
            let words = (0..size)
                .map(|w| {
                    let at = (offset_words + w) * 8;
                    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
                })
                .collect();
            segments.push(words);
            offset_words += size;
        }
        Message { segments }
    }

    pub fn root(&self) -> PointerAt {
        PointerAt { seg: 0, word: 0, present: true }
    }

    pub fn has_far_pointer(&self) -> bool {
        self.segments.iter().flatten().any(|w| *w & 3 == 2 && *w != 2)
    }

    /// Follows a pointer, including single and double far pointers.
    pub fn resolve(&self, at: PointerAt) -> Target {
        if !at.present {
            return Target::Null;
        }
        let word = self.segments[at.seg][at.word];
        if word == 0 {
            return Target::Null;
        }
        let (seg, tag, target_word) = match word & 3 {
            2 => {
                let double = word & 4 != 0;
                let pad_seg = (word >> 32) as usize;
                let pad = ((word as u32) >> 3) as usize;
                if double {
                    let far = self.segments[pad_seg][pad];
                    let tag = self.segments[pad_seg][pad + 1];
                    ((far >> 32) as usize, tag, Some(((far as u32) >> 3) as usize))
                } else {
                    let landing = self.segments[pad_seg][pad];
                    return self.resolve_local(pad_seg, pad, landing, None);
                }
            }
            _ => (at.seg, word, None),
        };
        self.resolve_local(seg, at.word, tag, target_word)
    }

    fn resolve_local(&self, seg: usize, at_word: usize, tag: u64, fixed_start: Option<usize>) -> Target {
        let offset = ((tag as u32 as i32) >> 2) as isize;
        let start = fixed_start.unwrap_or_else(|| (at_word as isize + 1 + offset) as usize);
        match tag & 3 {
            0 => {
                let data_words = ((tag >> 32) & 0xffff) as usize;
                let pointer_count = (tag >> 48) as usize;
                Target::Struct(StructRef { seg, data: start, data_words, pointers: start + data_words, pointer_count })
            }
            1 => {
                let size = ((tag >> 32) & 7) as u8;
                let count = (tag >> 35) as usize;
                if size == 7 {
                    let header = self.segments[seg][start];
                    let data_words = ((header >> 32) & 0xffff) as usize;
                    let pointer_count = (header >> 48) as usize;
                    let elements = ((header as u32) >> 2) as usize;
                    Target::List(ListRef { seg, start: start + 1, size, count: elements, data_words, pointer_count })
                } else {
                    Target::List(ListRef { seg, start, size, count, data_words: 0, pointer_count: 0 })
                }
            }
            3 => Target::Cap((tag >> 32) as u32),
            _ => panic!("unexpected far pointer in landing pad"),
        }
    }

    /// Reads `bits` bits at `bit_offset` from the data section of a struct (0 outside it).
    pub fn data(&self, s: StructRef, bit_offset: usize, bits: usize) -> u64 {
        if bit_offset + bits > s.data_words * 64 {
            return 0;
        }
        self.bits_at(s.seg, s.data, bit_offset, bits)
    }

    pub fn bits_at(&self, seg: usize, word: usize, bit_offset: usize, bits: usize) -> u64 {
        if bits == 0 {
            // Void elements occupy no storage: an empty list may sit at the end of a segment.
            return 0;
        }
        let w = self.segments[seg][word + bit_offset / 64];
        let shifted = w >> (bit_offset % 64);
        if bits == 64 { shifted } else { shifted & ((1u64 << bits) - 1) }
    }

    pub fn pointer(&self, s: StructRef, index: usize) -> PointerAt {
        PointerAt { seg: s.seg, word: s.pointers + index, present: index < s.pointer_count }
    }

    pub fn bytes(&self, l: ListRef) -> Vec<u8> {
        let words = &self.segments[l.seg];
        (0..l.count).map(|i| (words[l.start + i / 8] >> ((i % 8) * 8)) as u8).collect()
    }

    /// Bits per element of a non-composite list.
    pub fn step_bits(l: ListRef) -> usize {
        match l.size {
            0 => 0,
            1 => 1,
            2 => 8,
            3 => 16,
            4 => 32,
            5 | 6 => 64,
            _ => (l.data_words + l.pointer_count) * 64,
        }
    }

    pub fn list_struct(&self, l: ListRef, i: usize) -> StructRef {
        if l.size == 7 {
            let start = l.start + i * (l.data_words + l.pointer_count);
            StructRef { seg: l.seg, data: start, data_words: l.data_words, pointers: start + l.data_words, pointer_count: l.pointer_count }
        } else {
            panic!("non-composite struct lists are not produced by capnpc-rust")
        }
    }

    pub fn list_pointer(&self, l: ListRef, i: usize) -> PointerAt {
        PointerAt { seg: l.seg, word: l.start + i, present: true }
    }

    pub fn list_value(&self, l: ListRef, i: usize, bits: usize) -> u64 {
        let bit = i * Self::step_bits(l);
        self.bits_at(l.seg, l.start, bit, bits)
    }
}

/// Re-encodes a message into one segment the way the Lean runtime's `Message.reencode` does
/// (depth-first: allocate an object, copy its data, then copy each pointer in order). Used to
/// check that this order is also capnp-rust's, so the Lean test can compare bytes.
pub fn reencode_like_lean(message: &Message) -> Vec<u64> {
    let mut out = vec![0u64];
    copy_pointer(message, message.root(), &mut out, 0);
    out
}

fn offset_bits(from_word: usize, start: usize) -> u64 {
    let offset = start as i64 - (from_word as i64 + 1);
    ((offset as u64) << 2) & 0xffff_fffc
}

fn copy_pointer(m: &Message, src: PointerAt, out: &mut Vec<u64>, dst: usize) {
    match m.resolve(src) {
        Target::Null => {}
        Target::Cap(index) => out[dst] = 3 | (u64::from(index) << 32),
        Target::Struct(s) => {
            let start = out.len();
            out.resize(start + s.data_words + s.pointer_count, 0);
            out[dst] = offset_bits(dst, start) | ((s.data_words as u64) << 32) | ((s.pointer_count as u64) << 48);
            out[start..start + s.data_words].copy_from_slice(&m.segments[s.seg][s.data..s.data + s.data_words]);
            for i in 0..s.pointer_count {
                copy_pointer(m, m.pointer(s, i), out, start + s.data_words + i);
            }
        }
        Target::List(l) if l.size == 7 => {
            let per = l.data_words + l.pointer_count;
            let words = l.count * per;
            let start = out.len();
            out.resize(start + 1 + words, 0);
            out[dst] = 1 | offset_bits(dst, start) | (7 << 32) | ((words as u64) << 35);
            out[start] = ((l.count as u64) << 2) | ((l.data_words as u64) << 32) | ((l.pointer_count as u64) << 48);
            for i in 0..l.count {
                let e = m.list_struct(l, i);
                let at = start + 1 + i * per;
                out[at..at + l.data_words].copy_from_slice(&m.segments[e.seg][e.data..e.data + e.data_words]);
                for p in 0..l.pointer_count {
                    copy_pointer(m, m.pointer(e, p), out, at + l.data_words + p);
                }
            }
        }
        Target::List(l) => {
            let words = (l.count * Message::step_bits(l)).div_ceil(64);
            let start = out.len();
            out.resize(start + words, 0);
            out[dst] = 1 | offset_bits(dst, start) | (u64::from(l.size) << 32) | ((l.count as u64) << 35);
            if l.size == 6 {
                for i in 0..l.count {
                    copy_pointer(m, m.list_pointer(l, i), out, start + i);
                }
            } else {
                out[start..start + words].copy_from_slice(&m.segments[l.seg][l.start..l.start + words]);
            }
        }
    }
}
