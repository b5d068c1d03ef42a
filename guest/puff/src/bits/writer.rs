//! Writing bits: the plain writer and the hot loops' [`FastWriter`].

use std::io::Write;

use super::CHUNK;
use crate::{Error, Result};

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

    /// Whether another code of up to 15 bits might not fit: a flush
    /// must leave the buffer under 64 bits (it shifts by whole bytes).
    #[inline(always)]
    pub fn full(&self) -> bool {
        self.n > 48
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
    fn the_fast_writer_writes_what_the_plain_one_does() {
        // Pseudo-random codes of 1-15 bits, in runs of up to twelve
        // flushed when full (as the hot loop does with literals), some
        // runs the plain way: a plain run can leave up to 31 bits waiting
        // for the fast one.
        let mut x: u32 = 7;
        let mut next = |m: u32| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 8) % m
        };
        let steps: Vec<(bool, Vec<(u32, u32)>)> = (0..5000)
            .map(|_| {
                let plain = next(4) == 0;
                let codes = (0..1 + next(12))
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
                if f.full() {
                    f.flush();
                }
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
