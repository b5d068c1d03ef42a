//! Deflate streams taken apart into a byte-aligned token form and put back
//! together bit for bit.
//!
//! Every choice a compressor makes that the tokens alone would not fix is
//! kept: block boundaries and types, dynamic block headers (verbatim bits:
//! how code lengths were run-length coded is the compressor's choice),
//! stored blocks' padding and length fields, the one ambiguous length
//! encoding (258 as code 284 plus 31), and the padding after the last
//! block. Given those, Huffman coding is canonical, so the bits follow.

use std::io::{Read, Write};

use crate::bits::{BitReader, BitWriter};
use crate::huffman::{fixed_distance_lengths, fixed_literal_lengths, Decoder, Encoder};
use crate::{Error, Result};

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order code length code lengths come in.
pub(crate) const CLEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

// Token form, inside a block: a control byte 0x00-0x7F is a run of 1-128
// literals (the bytes follow); MATCH and MATCH_258_AS_284 are followed by
// length - 3 (one byte) and distance - 1 (two bytes, little-endian);
// END_OF_BLOCK ends the block.
const MATCH: u8 = 0x80;
const MATCH_258_AS_284: u8 = 0x81;
const END_OF_BLOCK: u8 = 0xFF;

/// Block tags: stored, fixed, dynamic; upper case when it is the last.
pub const STORED: u8 = b's';
pub const FIXED: u8 = b'f';
pub const DYNAMIC: u8 = b'd';

/// The code of each length 3-258, at `len - 3` (a lookup: a search here
/// took a quarter of huffing's time).
const LENGTH_INDEX: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut len = 3usize;
    let mut i = 0;
    while len <= 258 {
        while i + 1 < LENGTH_BASE.len() && LENGTH_BASE[i + 1] as usize <= len {
            i += 1;
        }
        t[len - 3] = i as u8;
        len += 1;
    }
    t
};

/// The code of each distance: at `d - 1` below 256, else at
/// `256 + ((d - 1) >> 7)` (codes from 16 on start at multiples of 128).
const DIST_INDEX: [u8; 512] = {
    let mut t = [0u8; 512];
    let mut d = 1usize;
    let mut i = 0;
    while d <= 32768 {
        while i + 1 < DIST_BASE.len() && DIST_BASE[i + 1] as usize <= d {
            i += 1;
        }
        if d <= 256 {
            t[d - 1] = i as u8;
        } else {
            t[256 + ((d - 1) >> 7)] = i as u8;
        }
        d += 1;
    }
    t
};

/// The length code of `len` (3-258) and its extra bits' value.
fn length_code(len: u16) -> (usize, u16) {
    let i = usize::from(LENGTH_INDEX[usize::from(len - 3) & 0xff]);
    (i, len - LENGTH_BASE[i])
}

/// The distance code of `dist` (1-32768) and its extra bits' value.
fn distance_code(dist: u16) -> (usize, u16) {
    let d = usize::from(dist - 1);
    let i = usize::from(if d < 256 {
        DIST_INDEX[d]
    } else {
        DIST_INDEX[256 + ((d >> 7) & 0xff)]
    });
    (i, dist - DIST_BASE[i])
}

/// Token form is gathered into a buffer this large before it is written.
const OUT_CHUNK: usize = 64 * 1024;

/// That buffer, with room for a run or a match past the chunk; one per
/// stream (zeroing one per block cost more than some blocks' decoding).
type Scratch = [u8; OUT_CHUNK + 256];

/// A block's token form as it is made: literals gathered into runs of at
/// most 128, written out in chunks between runs. A fixed buffer: pushing
/// onto a `Vec` may call out to grow it, which costs the hot loop its
/// registers.
struct Tokens<'a, W: Write> {
    out: &'a mut W,
    buf: &'a mut Scratch,
    len: usize,
    /// Where the open run starts (its control byte); `usize::MAX`: none.
    run: usize,
}

impl<'a, W: Write> Tokens<'a, W> {
    fn new(out: &'a mut W, buf: &'a mut Scratch) -> Self {
        Tokens {
            out,
            buf,
            len: 0,
            run: usize::MAX,
        }
    }

    /// [`Tokens::literal`] for the hot loop: with room checked by the
    /// caller ([`Tokens::room`]), it cannot fail.
    #[inline(always)]
    fn push_literal(&mut self, b: u8) {
        if self.run == usize::MAX || self.len - self.run > 128 {
            self.run = self.len;
            self.len += 1;
        }
        self.buf[self.len] = b;
        self.len += 1;
        self.buf[self.run] = (self.len - self.run - 2) as u8;
    }

    /// Whether three literals or a match fit without writing out, and no
    /// run is open where the buffer would be written out.
    #[inline(always)]
    fn room(&self) -> bool {
        self.len < OUT_CHUNK
    }

    #[inline(always)]
    fn literal(&mut self, b: u8) -> Result<()> {
        if self.run == usize::MAX || self.len - self.run > 128 {
            // Below OUT_CHUNK before a run of at most 129 bytes or a match
            // of 4: the buffer never overflows.
            if self.len >= OUT_CHUNK {
                self.write_out()?;
            }
            self.run = self.len;
            self.len += 1;
        }
        self.buf[self.len] = b;
        self.len += 1;
        self.buf[self.run] = (self.len - self.run - 2) as u8;
        Ok(())
    }

    /// A match of `len` (3-258; `as_284`: coded as 284 plus 31) at
    /// `distance`.
    #[inline(always)]
    fn matched(&mut self, len: u16, as_284: bool, distance: u16) -> Result<()> {
        self.push_match(len, as_284, distance);
        if self.len >= OUT_CHUNK {
            self.write_out()?;
        }
        Ok(())
    }

    /// [`Tokens::matched`] for the hot loop (see [`Tokens::push_literal`]).
    #[inline(always)]
    fn push_match(&mut self, len: u16, as_284: bool, distance: u16) {
        self.run = usize::MAX;
        let tag = if as_284 { MATCH_258_AS_284 } else { MATCH };
        let dm = (distance - 1).to_le_bytes();
        self.buf[self.len..self.len + 4].copy_from_slice(&[tag, (len - 3) as u8, dm[0], dm[1]]);
        self.len += 4;
    }

    fn end(mut self) -> Result<()> {
        self.buf[self.len] = END_OF_BLOCK;
        self.len += 1;
        self.write_out()
    }

    #[cold]
    fn write_out(&mut self) -> Result<()> {
        self.out
            .write_all(&self.buf[..self.len])
            .map_err(Error::Io)?;
        self.len = 0;
        self.run = usize::MAX;
        Ok(())
    }
}

/// Reads a dynamic block's header (after BFINAL and BTYPE): its two codes'
/// lengths.
fn read_dynamic_header<R: Read>(r: &mut BitReader<R>) -> Result<(Vec<u8>, Vec<u8>)> {
    let hlit = r.bits(5)? as usize + 257;
    let hdist = r.bits(5)? as usize + 1;
    let hclen = r.bits(4)? as usize + 4;
    if hlit > 286 || hdist > 30 {
        return Err(Error::Invalid("too many length or distance codes"));
    }
    let mut clen = [0u8; 19];
    for &i in &CLEN_ORDER[..hclen] {
        clen[i] = r.bits(3)? as u8;
    }
    let clen_code = Decoder::new(&clen)?;
    let mut lengths = Vec::with_capacity(hlit + hdist);
    while lengths.len() < hlit + hdist {
        let sym = clen_code.decode(r)?;
        let (value, repeat) = match sym {
            0..=15 => (sym as u8, 1),
            16 => {
                let prev = *lengths
                    .last()
                    .ok_or(Error::Invalid("repeat with no previous length"))?;
                (prev, 3 + r.bits(2)? as usize)
            }
            17 => (0, 3 + r.bits(3)? as usize),
            _ => (0, 11 + r.bits(7)? as usize),
        };
        if lengths.len() + repeat > hlit + hdist {
            return Err(Error::Invalid("code lengths run past their count"));
        }
        lengths.extend(std::iter::repeat_n(value, repeat));
    }
    if lengths[256] == 0 {
        return Err(Error::Invalid("no end-of-block code"));
    }
    let dist = lengths.split_off(hlit);
    Ok((lengths, dist))
}

/// Decodes one Huffman-coded block's tokens into token form.
fn puff_tokens<R: Read, W: Write>(
    r: &mut BitReader<R>,
    out: &mut W,
    scratch: &mut Scratch,
    lit: &Decoder,
    dist: &Decoder,
) -> Result<()> {
    let mut t = Tokens::new(out, scratch);
    loop {
        // Most tokens: codes in the fast tables, the input chunk not near
        // its end, the reader's state in registers. Anything else leaves
        // the loop before consuming a bit, for the general path below.
        let mut f = r.fast();
        let mut ended = false;
        while f.room() && t.room() {
            // Now at least 56 bits: a whole token takes at most 48.
            f.refill();
            let (sym, len) = lit.lookup(f.buf);
            if len == 0 {
                break;
            }
            if sym < 256 {
                f.take(len);
                t.push_literal(sym as u8);
                // Two more literals fit in the bits held (15 bits each);
                // anything else waits for a refill.
                for _ in 0..2 {
                    let (sym, len) = lit.lookup(f.buf);
                    if len == 0 || sym >= 256 {
                        break;
                    }
                    f.take(len);
                    t.push_literal(sym as u8);
                }
                continue;
            }
            if sym == 256 {
                f.take(len);
                ended = true;
                break;
            }
            let i = usize::from(sym - 257);
            if i >= LENGTH_EXTRA.len() {
                break;
            }
            let extra = u32::from(LENGTH_EXTRA[i]);
            let (d, dlen) = dist.lookup(f.buf >> (len + extra));
            if dlen == 0 || d >= 30 {
                break;
            }
            f.take(len);
            let length = LENGTH_BASE[i] + f.take(extra) as u16;
            f.take(dlen);
            let d = usize::from(d);
            let distance = DIST_BASE[d] + f.take(u32::from(DIST_EXTRA[d])) as u16;
            t.push_match(length, i == 27 && length == 258, distance);
        }
        let (pos, buf, n) = (f.pos, f.buf, f.n);
        r.resume(pos, buf, n);
        if ended {
            return t.end();
        }
        // One token the general way.
        let sym = lit.decode(r)?;
        match sym {
            0..=255 => t.literal(sym as u8)?,
            256 => return t.end(),
            257..=285 => {
                let i = usize::from(sym - 257);
                let extra = r.bits(u32::from(LENGTH_EXTRA[i]))? as u16;
                let length = LENGTH_BASE[i] + extra;
                let d = dist.decode(r)?;
                if d >= 30 {
                    return Err(Error::Invalid("distance code 30 or 31"));
                }
                let d = usize::from(d);
                let distance = DIST_BASE[d] + r.bits(u32::from(DIST_EXTRA[d]))? as u16;
                t.matched(length, i == 27 && length == 258, distance)?;
            }
            _ => return Err(Error::Invalid("length code 286 or 287")),
        }
    }
}

/// What puffing blocks needs, made once per stream: the fixed codes'
/// decoders and the token buffer.
pub struct Puffing {
    fixed_lit: Decoder,
    fixed_dist: Decoder,
    scratch: Box<Scratch>,
}

impl Puffing {
    /// The fixed codes and a buffer.
    pub fn new() -> Result<Puffing> {
        Ok(Puffing {
            fixed_lit: Decoder::new(&fixed_literal_lengths())?,
            fixed_dist: Decoder::new(&fixed_distance_lengths())?,
            scratch: Box::new([0u8; OUT_CHUNK + 256]),
        })
    }
}

/// Takes one deflate block apart, from `r`'s position, writing it in
/// token form to `out`, and after the last block the padding bits that
/// follow it (one byte); whether it was the last.
pub fn puff_block<R: Read, W: Write>(
    r: &mut BitReader<R>,
    out: &mut W,
    p: &mut Puffing,
) -> Result<bool> {
    let last = r.bits(1)? == 1;
    let upper = |tag: u8| if last { tag.to_ascii_uppercase() } else { tag };
    match r.bits(2)? {
        0 => {
            let pad = r.align()?;
            let mut head = [0u8; 4];
            r.bytes(&mut head)?;
            let len = u16::from_le_bytes([head[0], head[1]]);
            out.write_all(&[upper(STORED), pad]).map_err(Error::Io)?;
            out.write_all(&head).map_err(Error::Io)?;
            let mut data = vec![0u8; usize::from(len)];
            r.bytes(&mut data)?;
            out.write_all(&data).map_err(Error::Io)?;
        }
        1 => {
            out.write_all(&[upper(FIXED)]).map_err(Error::Io)?;
            puff_tokens(r, out, &mut p.scratch, &p.fixed_lit, &p.fixed_dist)?;
        }
        2 => {
            r.start_recording();
            let header = read_dynamic_header(r);
            let (nbits, bits) = r.stop_recording()?;
            let (lit, dist) = header?;
            out.write_all(&[upper(DYNAMIC)]).map_err(Error::Io)?;
            out.write_all(&(nbits as u16).to_le_bytes())
                .map_err(Error::Io)?;
            out.write_all(&bits).map_err(Error::Io)?;
            let (lit, dist) = (Decoder::new(&lit)?, Decoder::new(&dist)?);
            puff_tokens(r, out, &mut p.scratch, &lit, &dist)?;
        }
        _ => return Err(Error::Invalid("block type 3")),
    }
    if last {
        let pad = r.align()?;
        out.write_all(&[pad]).map_err(Error::Io)?;
    }
    Ok(last)
}

mod huff;

pub use huff::{huff_block, BlockCodes};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_cover_their_ranges() {
        for len in 3..=258u16 {
            let (i, extra) = length_code(len);
            assert_eq!(LENGTH_BASE[i] + extra, len);
            assert!(extra < 1 << LENGTH_EXTRA[i] || (LENGTH_EXTRA[i] == 0 && extra == 0));
        }
        assert_eq!(length_code(258), (28, 0));
        for dist in 1..=32768u32 {
            let (i, extra) = distance_code(dist as u16);
            assert_eq!(u32::from(DIST_BASE[i]) + u32::from(extra), dist);
            assert!(u32::from(extra) < 1u32 << DIST_EXTRA[i]);
        }
    }
}
