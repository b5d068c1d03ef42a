//! Bit-level reading and writing in deflate's order: least significant bit
//! first within each byte; Huffman codes go in most significant bit first,
//! which the callers handle by reversing them.

use std::io::Read;

use crate::{Error, Result};

pub(crate) const CHUNK: usize = 64 * 1024;

/// Reads bits from a byte stream, buffered; can record the bits it
/// consumes (a dynamic block header is kept verbatim).
pub struct BitReader<R> {
    inner: R,
    chunk: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Bytes of the input in chunks before this one.
    before: u64,
    eof: bool,
    /// Bits held, lowest first; `n` of them valid.
    buf: u64,
    n: u32,
    record: Option<BitWriter<Vec<u8>>>,
}

impl<R: Read> BitReader<R> {
    /// A reader of `inner`.
    pub fn new(inner: R) -> Self {
        BitReader {
            inner,
            chunk: vec![0; CHUNK].into_boxed_slice(),
            pos: 0,
            len: 0,
            before: 0,
            eof: false,
            buf: 0,
            n: 0,
            record: None,
        }
    }

    fn next_byte(&mut self) -> Result<Option<u8>> {
        if self.pos == self.len {
            if self.eof {
                return Ok(None);
            }
            self.before += self.len as u64;
            (self.pos, self.len) = (0, 0);
            self.len = loop {
                match self.inner.read(&mut self.chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Io(e)),
                }
            };
            if self.len == 0 {
                self.eof = true;
                return Ok(None);
            }
        }
        let b = self.chunk[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }

    #[inline]
    fn refill(&mut self) -> Result<()> {
        // Fast path: eight bytes at once from the chunk, as many kept as fit.
        if self.len - self.pos >= 8 {
            let word = u64::from_le_bytes(
                self.chunk[self.pos..self.pos + 8]
                    .try_into()
                    .map_err(|_| Error::Truncated)?,
            );
            let take = (63 - self.n) / 8;
            self.buf |= word << self.n;
            if take < 8 {
                // Bits past the ones kept would spill into the next refill.
                self.buf &= (1u64 << (self.n + take * 8)) - 1;
            }
            self.pos += take as usize;
            self.n += take * 8;
            return Ok(());
        }
        while self.n <= 56 {
            match self.next_byte()? {
                Some(b) => {
                    self.buf |= u64::from(b) << self.n;
                    self.n += 8;
                }
                None => break,
            }
        }
        Ok(())
    }

    /// The next `count` (at most 32) bits without consuming them; missing
    /// ones past the end read as zero.
    #[inline]
    pub fn peek(&mut self, count: u32) -> Result<u32> {
        if self.n < count {
            self.refill()?;
        }
        Ok((self.buf & ((1u64 << count) - 1)) as u32)
    }

    /// Consumes `count` bits (already peeked).
    #[inline]
    pub fn consume(&mut self, count: u32) -> Result<()> {
        if count > self.n {
            return Err(Error::Truncated);
        }
        if let Some(r) = self.record.as_mut() {
            r.bits((self.buf & ((1u64 << count) - 1)) as u32, count)?;
        }
        self.buf >>= count;
        self.n -= count;
        Ok(())
    }

    /// The next `count` (at most 32) bits as a number, first bit lowest.
    #[inline]
    pub fn bits(&mut self, count: u32) -> Result<u32> {
        if count == 0 {
            return Ok(0);
        }
        let v = self.peek(count)?;
        self.consume(count)?;
        Ok(v)
    }

    /// Skips to the next byte boundary; the skipped bits' value.
    pub fn align(&mut self) -> Result<u8> {
        let count = self.n % 8;
        Ok(self.bits(count)? as u8)
    }

    /// The input, for reading it past the bits taken (see
    /// [`crate::Puffer::get_mut`]).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// How many bits of the input have been consumed.
    pub fn position(&self) -> u64 {
        (self.before + self.pos as u64) * 8 - u64::from(self.n)
    }

    /// How many bits short of a byte boundary the reader is (0 to 7).
    pub fn misalignment(&self) -> u32 {
        self.n % 8
    }

    /// Reads one whole byte (the reader must be aligned); `None` at the end.
    #[inline]
    pub fn byte(&mut self) -> Result<Option<u8>> {
        debug_assert_eq!(self.n % 8, 0);
        if self.n >= 8 {
            let b = self.buf as u8;
            self.buf >>= 8;
            self.n -= 8;
            return Ok(Some(b));
        }
        self.next_byte()
    }

    /// Reads exactly `out.len()` bytes (the reader must be aligned).
    pub fn bytes(&mut self, out: &mut [u8]) -> Result<()> {
        for b in out.iter_mut() {
            *b = self.byte()?.ok_or(Error::Truncated)?;
        }
        Ok(())
    }

    /// Reads the rest of the input to its end, unused: a reader that
    /// checks what it passes (a digest) then has seen all of it.
    pub fn read_rest(&mut self) -> Result<()> {
        if !self.eof {
            std::io::copy(&mut self.inner, &mut std::io::sink()).map_err(Error::Io)?;
            self.eof = true;
        }
        Ok(())
    }

    /// The state for a hot loop ([`Fast`]): the bits held and the chunk's
    /// unread bytes. Not while recording.
    pub(crate) fn fast(&self) -> Fast<'_> {
        debug_assert!(self.record.is_none());
        Fast {
            chunk: &self.chunk[..self.len],
            pos: self.pos,
            buf: self.buf,
            n: self.n,
        }
    }

    /// Takes back the state a [`Fast`] loop left (bits past the count
    /// cleared: the slow paths keep them zero).
    pub(crate) fn resume(&mut self, pos: usize, buf: u64, n: u32) {
        self.pos = pos;
        self.buf = buf & ((1u64 << n) - 1);
        self.n = n;
    }

    /// Starts keeping every bit consumed.
    pub fn start_recording(&mut self) {
        self.record = Some(BitWriter::new(Vec::new()));
    }

    /// The bits consumed since `start_recording`: their count and bytes.
    pub fn stop_recording(&mut self) -> Result<(u64, Vec<u8>)> {
        match self.record.take() {
            Some(w) => w.finish(),
            None => Ok((0, Vec::new())),
        }
    }
}

/// A [`BitReader`]'s state in locals, for loops where every cycle counts:
/// refilling needs no check of the input while [`Fast::room`] holds.
pub(crate) struct Fast<'a> {
    pub chunk: &'a [u8],
    pub pos: usize,
    /// Bits held, lowest first; `n` of them valid (bits above may be set:
    /// they are the stream's next bits, cleared on [`BitReader::resume`]).
    pub buf: u64,
    pub n: u32,
}

impl Fast<'_> {
    /// Whether a refill can read eight bytes at once.
    #[inline(always)]
    pub fn room(&self) -> bool {
        self.pos + 8 <= self.chunk.len()
    }

    /// Tops the bits held up to at least 56 (needs [`Fast::room`]).
    #[inline(always)]
    pub fn refill(&mut self) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.chunk[self.pos..self.pos + 8]);
        self.buf |= u64::from_le_bytes(word) << self.n;
        self.pos += ((63 - self.n) >> 3) as usize;
        self.n |= 56;
    }

    /// Consumes `count` bits (at most the count held).
    #[inline(always)]
    pub fn take(&mut self, count: u32) -> u32 {
        let v = (self.buf & ((1u64 << count) - 1)) as u32;
        self.buf >>= count;
        self.n -= count;
        v
    }
}

mod writer;

pub use writer::BitWriter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_and_record() {
        let mut w = BitWriter::new(Vec::new());
        w.bits(0b101, 3).unwrap();
        w.bits(0x1234, 16).unwrap();
        w.bits(1, 1).unwrap();
        assert_eq!(w.misalignment(), 4);
        w.bits(0, 4).unwrap();
        w.bytes(&[0xAB]).unwrap();
        let (n, bytes) = w.finish().unwrap();
        assert_eq!(n, 32);
        let mut r = BitReader::new(&bytes[..]);
        r.start_recording();
        assert_eq!(r.bits(3).unwrap(), 0b101);
        assert_eq!(r.bits(16).unwrap(), 0x1234);
        let (count, rec) = r.stop_recording().unwrap();
        assert_eq!(count, 19);
        let mut again = BitReader::new(&rec[..]);
        assert_eq!(again.bits(3).unwrap(), 0b101);
        assert_eq!(again.bits(16).unwrap(), 0x1234);
        assert_eq!(r.bits(1).unwrap(), 1);
        assert_eq!(r.align().unwrap(), 0);
        assert_eq!(r.byte().unwrap(), Some(0xAB));
        assert_eq!(r.byte().unwrap(), None);
        assert!(matches!(r.bits(1), Err(Error::Truncated)));
    }
}
