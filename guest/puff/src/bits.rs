//! Bit-level reading and writing in deflate's order: least significant bit
//! first within each byte; Huffman codes go in most significant bit first,
//! which the callers handle by reversing them.

use std::io::{Read, Write};

use crate::{Error, Result};

const CHUNK: usize = 64 * 1024;

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
    pub fn peek(&mut self, count: u32) -> Result<u32> {
        if self.n < count {
            self.refill()?;
        }
        Ok((self.buf & ((1u64 << count) - 1)) as u32)
    }

    /// Consumes `count` bits (already peeked).
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

/// Writes bits, least significant first, to a byte stream.
pub struct BitWriter<W> {
    inner: W,
    buf: u64,
    n: u32,
    written: u64,
    out: Vec<u8>,
}

impl<W: Write> BitWriter<W> {
    /// A writer into `inner`.
    pub fn new(inner: W) -> Self {
        BitWriter {
            inner,
            buf: 0,
            n: 0,
            written: 0,
            out: Vec::with_capacity(CHUNK),
        }
    }

    /// Writes the low `count` (at most 32) bits of `value`.
    pub fn bits(&mut self, value: u32, count: u32) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        let value = u64::from(value) & ((1u64 << count) - 1);
        self.buf |= value << self.n;
        self.n += count;
        self.written += u64::from(count);
        // Four bytes at a time; fewer than 32 bits wait in `buf`.
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.buf as u32).to_le_bytes());
            self.buf >>= 32;
            self.n -= 32;
            if self.out.len() >= CHUNK {
                self.flush_out()?;
            }
        }
        Ok(())
    }

    /// Moves the whole bytes waiting in `buf` to `out`.
    fn drain(&mut self) {
        while self.n >= 8 {
            self.out.push(self.buf as u8);
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
        self.out.extend_from_slice(data);
        self.written += 8 * data.len() as u64;
        if self.out.len() >= CHUNK {
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
        self.inner.write_all(&self.out).map_err(Error::Io)?;
        self.out.clear();
        Ok(())
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Writes what is left (a partial last byte padded with zeros); the
    /// number of bits written, and the inner writer.
    pub fn finish(mut self) -> Result<(u64, W)> {
        self.drain();
        if self.n > 0 {
            self.out.push(self.buf as u8);
            self.n = 0;
        }
        self.flush_out()?;
        self.inner.flush().map_err(Error::Io)?;
        Ok((self.written, self.inner))
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
}
