//! Bit-level reading and writing in deflate's order: least significant bit
//! first within each byte; Huffman codes go in most significant bit first,
//! which the callers handle by reversing them.

use std::io::{Read, Write};

use crate::{Error, Result};

pub(crate) const CHUNK: usize = 64 * 1024;

/// Reads bits from a byte stream, buffered; can record the bits it
/// consumes (a dynamic block header is kept verbatim).
pub struct BitReader<R> {
    inner: R,
    chunk: Box<[u8]>,
    pos: usize,
    len: usize,
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
            self.len = loop {
                match self.inner.read(&mut self.chunk) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Io(e)),
                }
            };
            self.pos = 0;
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

/// Writes bits, least significant first, to a byte stream.
pub struct BitWriter<W> {
    inner: W,
    buf: u64,
    n: u32,
    written: u64,
    /// Whole bytes waiting for `inner`: a fixed buffer (see [`FastWriter`]).
    out: Box<[u8; OUT_SIZE]>,
    len: usize,
}

/// The writer's buffer: a chunk and room for the most one step of a
/// [`FastWriter`] adds past it.
const OUT_SIZE: usize = CHUNK + FAST_ROOM;
/// The most bytes a [`FastWriter`] may add between checks of
/// [`FastWriter::room`]: a run of 128 literals of up to 15 bits.
pub(crate) const FAST_ROOM: usize = 512;

impl<W: Write> BitWriter<W> {
    /// A writer into `inner`.
    pub fn new(inner: W) -> Self {
        BitWriter {
            inner,
            buf: 0,
            n: 0,
            written: 0,
            out: Box::new([0; OUT_SIZE]),
            len: 0,
        }
    }

    /// Writes the low `count` (at most 32) bits of `value`.
    #[inline]
    pub fn bits(&mut self, value: u32, count: u32) -> Result<()> {
        let value = u64::from(value) & ((1u64 << count) - 1);
        self.buf |= value << self.n;
        self.n += count;
        self.written += u64::from(count);
        // Four bytes at a time; fewer than 32 bits wait in `buf`.
        if self.n >= 32 {
            self.out[self.len..self.len + 4].copy_from_slice(&(self.buf as u32).to_le_bytes());
            self.len += 4;
            self.buf >>= 32;
            self.n -= 32;
            if self.len >= CHUNK {
                self.flush_out()?;
            }
        }
        Ok(())
    }

    /// Moves the whole bytes waiting in `buf` to `out`.
    fn drain(&mut self) {
        while self.n >= 8 {
            self.out[self.len] = self.buf as u8;
            self.len += 1;
            self.buf >>= 8;
            self.n -= 8;
        }
    }

    /// Writes whole bytes (the writer must be aligned).
    pub fn bytes(&mut self, data: &[u8]) -> Result<()> {
        self.drain();
        if self.n != 0 {
            return Err(Error::Invalid("bytes written off a byte boundary"));
        }
        self.written += 8 * data.len() as u64;
        for piece in data.chunks(CHUNK) {
            if self.len + piece.len() > OUT_SIZE {
                self.flush_out()?;
            }
            self.out[self.len..self.len + piece.len()].copy_from_slice(piece);
            self.len += piece.len();
        }
        if self.len >= CHUNK {
            self.flush_out()?;
        }
        Ok(())
    }

    /// How many bits short of a byte boundary the writer is (0 to 7).
    pub fn misalignment(&self) -> u32 {
        (8 - self.n % 8) % 8
    }

    /// Hands the whole bytes written so far to the inner writer.
    pub fn flush_out(&mut self) -> Result<()> {
        self.drain();
        self.inner
            .write_all(&self.out[..self.len])
            .map_err(Error::Io)?;
        self.len = 0;
        Ok(())
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The state for a hot loop, in locals; given back with
    /// [`BitWriter::resume`]. Flushes first if the buffer is near full.
    pub(crate) fn fast(&mut self) -> Result<FastWriter<'_>> {
        if self.len >= CHUNK {
            self.flush_out()?;
        }
        // Fewer than eight bits held: room for 56 more.
        self.drain();
        Ok(FastWriter {
            out: &mut self.out[..],
            len: self.len,
            buf: self.buf,
            n: self.n,
        })
    }

    /// Takes back the state a [`FastWriter`] left.
    pub(crate) fn resume(&mut self, (len, buf, n): (usize, u64, u32)) {
        let before = 8 * self.len as u64 + u64::from(self.n);
        self.written += 8 * len as u64 + u64::from(n) - before;
        self.len = len;
        self.buf = buf;
        self.n = n;
    }

    /// Writes what is left (a partial last byte padded with zeros); the
    /// number of bits written, and the inner writer.
    pub fn finish(mut self) -> Result<(u64, W)> {
        self.drain();
        if self.n > 0 {
            self.out[self.len] = self.buf as u8;
            self.len += 1;
            self.n = 0;
        }
        self.flush_out()?;
        self.inner.flush().map_err(Error::Io)?;
        Ok((self.written, self.inner))
    }
}

/// A [`BitWriter`]'s state in locals, for loops where every cycle counts:
/// codes are added ([`FastWriter::add`], at most 56 bits in all) and then
/// written eight bytes at once ([`FastWriter::flush`]), no branch.
pub(crate) struct FastWriter<'a> {
    out: &'a mut [u8],
    len: usize,
    buf: u64,
    n: u32,
}

impl FastWriter<'_> {
    /// Whether [`FAST_ROOM`] more bytes fit without a flush.
    #[inline(always)]
    pub fn room(&self) -> bool {
        self.len < CHUNK
    }

    /// Adds `count` bits: `value`, which has no bits above.
    #[inline(always)]
    pub fn add(&mut self, value: u32, count: u32) {
        self.buf |= u64::from(value) << self.n;
        self.n += count;
    }

    /// Moves the whole bytes added to the buffer; fewer than eight bits
    /// stay.
    #[inline(always)]
    pub fn flush(&mut self) {
        self.out[self.len..self.len + 8].copy_from_slice(&self.buf.to_le_bytes());
        let bytes = self.n >> 3;
        self.len += bytes as usize;
        self.buf >>= bytes * 8;
        self.n &= 7;
    }

    /// The state to give back.
    pub fn state(&self) -> (usize, u64, u32) {
        (self.len, self.buf, self.n)
    }
}

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

    #[test]
    fn the_fast_writer_writes_what_the_plain_one_does() {
        // Pseudo-random codes of 1-15 bits, in steps of up to three (what
        // the hot loop adds between flushes), some steps the plain way: a
        // plain step can leave up to 31 bits waiting for the fast one.
        let mut x: u32 = 7;
        let mut next = |m: u32| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 8) % m
        };
        let steps: Vec<(bool, Vec<(u32, u32)>)> = (0..5000)
            .map(|_| {
                let plain = next(4) == 0;
                let codes = (0..1 + next(3))
                    .map(|_| {
                        let count = 1 + next(15);
                        (next(1 << count), count)
                    })
                    .collect();
                (plain, codes)
            })
            .collect();
        let mut reference = BitWriter::new(Vec::new());
        let mut mixed = BitWriter::new(Vec::new());
        for (plain, codes) in &steps {
            for &(v, c) in codes {
                reference.bits(v, c).unwrap();
            }
            if *plain {
                for &(v, c) in codes {
                    mixed.bits(v, c).unwrap();
                }
                continue;
            }
            let mut f = mixed.fast().unwrap();
            for &(v, c) in codes {
                f.add(v, c);
            }
            f.flush();
            let state = f.state();
            mixed.resume(state);
        }
        let (a, ra) = reference.finish().unwrap();
        let (b, rb) = mixed.finish().unwrap();
        assert_eq!(a, b);
        assert!(ra == rb, "the bytes differ");
    }
}
