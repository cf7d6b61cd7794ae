//! Splits a byte stream into Cap'n Proto stream-framed messages.
//!
//! Framing: a u32 LE "segment count - 1", one u32 LE size (in words) per segment, padding to a
//! multiple of 8 bytes, then the segments. Bytes arrive in arbitrary chunks, so this buffers until
//! a whole frame is present.

/// Refuse absurd segment tables instead of buffering forever on garbage.
const MAX_SEGMENTS: usize = 512;

/// Accumulates bytes and yields complete frames.
#[derive(Default)]
pub struct FrameSplitter {
    pending: Vec<u8>,
    broken: bool,
}

impl FrameSplitter {
    /// Adds bytes and returns every frame now complete (header included), in order.
    /// After a malformed header the stream cannot be re-synchronised, so nothing more is returned.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        if self.broken {
            return Vec::new();
        }
        self.pending.extend_from_slice(bytes);
        let mut frames = Vec::new();
        loop {
            match frame_length(&self.pending) {
                Ok(Some(length)) if self.pending.len() >= length => {
                    frames.push(self.pending.drain(..length).collect());
                }
                Ok(_) => break,
                Err(()) => {
                    self.broken = true;
                    self.pending.clear();
                    break;
                }
            }
        }
        frames
    }

    /// Whether a malformed segment table was seen.
    pub fn is_broken(&self) -> bool {
        self.broken
    }
}

fn read_u32(bytes: &[u8], index: usize) -> Option<usize> {
    let word = bytes.get(index * 4..index * 4 + 4)?;
    Some(u32::from_le_bytes(word.try_into().ok()?) as usize)
}

/// The total frame length if the segment table is complete, `Ok(None)` if more bytes are needed.
fn frame_length(bytes: &[u8]) -> Result<Option<usize>, ()> {
    let Some(count_minus_one) = read_u32(bytes, 0) else { return Ok(None) };
    let segments = count_minus_one + 1;
    if segments > MAX_SEGMENTS {
        return Err(());
    }
    let table_words = (1 + segments).div_ceil(2) * 2;
    if bytes.len() < table_words * 4 {
        return Ok(None);
    }
    let mut body_words = 0usize;
    for index in 1..=segments {
        body_words += read_u32(bytes, index).ok_or(())?;
    }
    Ok(Some(table_words * 4 + body_words * 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(segments: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(segments.len() as u32 - 1).to_le_bytes());
        for s in segments {
            out.extend_from_slice(&(s.len() as u32 / 8).to_le_bytes());
        }
        if out.len() % 8 != 0 {
            out.extend_from_slice(&[0; 4]);
        }
        for s in segments {
            out.extend_from_slice(s);
        }
        out
    }

    #[test]
    fn splits_frames_delivered_one_byte_at_a_time() {
        let one = framed(&[&[1; 16]]);
        let two = framed(&[&[2; 8], &[3; 24]]);
        let stream: Vec<u8> = one.iter().chain(two.iter()).copied().collect();
        let mut splitter = FrameSplitter::default();
        let mut frames = Vec::new();
        for byte in &stream {
            frames.extend(splitter.push(std::slice::from_ref(byte)));
        }
        assert_eq!(frames, vec![one, two]);
    }

    #[test]
    fn splits_several_frames_arriving_in_one_chunk() {
        let one = framed(&[&[1; 8]]);
        let two = framed(&[&[2; 8], &[3; 8], &[4; 8]]);
        let stream: Vec<u8> = one.iter().chain(two.iter()).copied().collect();
        assert_eq!(FrameSplitter::default().push(&stream), vec![one, two]);
    }

    #[test]
    fn gives_up_on_an_absurd_segment_table() {
        let mut splitter = FrameSplitter::default();
        assert!(splitter.push(&u32::MAX.to_le_bytes()).is_empty());
        assert!(splitter.is_broken());
    }
}
