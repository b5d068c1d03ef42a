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
const CLEN_ORDER: [usize; 19] = [
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

/// Literals gathered into runs before they are written.
struct Tokens<'a, W: Write> {
    out: &'a mut W,
    run: Vec<u8>,
}

impl<W: Write> Tokens<'_, W> {
    fn literal(&mut self, b: u8) -> Result<()> {
        self.run.push(b);
        if self.run.len() == 128 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.run.is_empty() {
            let head = [(self.run.len() - 1) as u8];
            self.out.write_all(&head).map_err(Error::Io)?;
            self.out.write_all(&self.run).map_err(Error::Io)?;
            self.run.clear();
        }
        Ok(())
    }

    fn control(&mut self, bytes: &[u8]) -> Result<()> {
        self.flush()?;
        self.out.write_all(bytes).map_err(Error::Io)
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
    lit: &Decoder,
    dist: &Decoder,
) -> Result<()> {
    let mut t = Tokens {
        out,
        run: Vec::with_capacity(128),
    };
    loop {
        let sym = lit.decode(r)?;
        match sym {
            0..=255 => t.literal(sym as u8)?,
            256 => return t.control(&[END_OF_BLOCK]),
            257..=285 => {
                let i = usize::from(sym - 257);
                let extra = r.bits(u32::from(LENGTH_EXTRA[i]))? as u16;
                let len = LENGTH_BASE[i] + extra;
                let tag = if i == 27 && len == 258 {
                    MATCH_258_AS_284
                } else {
                    MATCH
                };
                let d = dist.decode(r)?;
                if d >= 30 {
                    return Err(Error::Invalid("distance code 30 or 31"));
                }
                let d = usize::from(d);
                let distance = DIST_BASE[d] + r.bits(u32::from(DIST_EXTRA[d]))? as u16;
                let dm = (distance - 1).to_le_bytes();
                t.control(&[tag, (len - 3) as u8, dm[0], dm[1]])?;
            }
            _ => return Err(Error::Invalid("length code 286 or 287")),
        }
    }
}

/// Takes one deflate stream apart, from `r`'s position, writing its blocks
/// in token form to `out`, and then the padding bits after the last block
/// (one byte).
pub fn puff_stream<R: Read, W: Write>(r: &mut BitReader<R>, out: &mut W) -> Result<()> {
    let fixed_lit = Decoder::new(&fixed_literal_lengths())?;
    let fixed_dist = Decoder::new(&fixed_distance_lengths())?;
    loop {
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
                puff_tokens(r, out, &fixed_lit, &fixed_dist)?;
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
                puff_tokens(r, out, &Decoder::new(&lit)?, &Decoder::new(&dist)?)?;
            }
            _ => return Err(Error::Invalid("block type 3")),
        }
        if last {
            let pad = r.align()?;
            return out.write_all(&[pad]).map_err(Error::Io);
        }
    }
}

fn read_byte<R: Read>(r: &mut R) -> Result<u8> {
    let mut b = [0u8];
    r.read_exact(&mut b).map_err(|_| Error::Truncated)?;
    Ok(b[0])
}

fn read_array<const N: usize, R: Read>(r: &mut R) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|_| Error::Truncated)?;
    Ok(b)
}

/// Writes one Huffman-coded block's tokens back as bits.
fn huff_tokens<R: Read, W: Write>(
    r: &mut R,
    w: &mut BitWriter<W>,
    lit: &Encoder,
    dist: &Encoder,
) -> Result<()> {
    let mut run = [0u8; 128];
    loop {
        let control = read_byte(r)?;
        match control {
            0x00..=0x7F => {
                let n = usize::from(control) + 1;
                r.read_exact(&mut run[..n]).map_err(|_| Error::Truncated)?;
                for &b in &run[..n] {
                    let (c, l) = lit.code(u16::from(b))?;
                    w.bits(c, l)?;
                }
            }
            MATCH | MATCH_258_AS_284 => {
                let [l, d0, d1] = read_array::<3, _>(r)?;
                let len = u16::from(l) + 3;
                let distance = u32::from(u16::from_le_bytes([d0, d1])) + 1;
                let (i, extra) = if control == MATCH_258_AS_284 {
                    if len != 258 {
                        return Err(Error::Invalid("the 284 form is only for length 258"));
                    }
                    (27, 31)
                } else {
                    length_code(len)
                };
                let (c, cl) = lit.code(257 + i as u16)?;
                w.bits(c, cl)?;
                w.bits(u32::from(extra), u32::from(LENGTH_EXTRA[i]))?;
                if distance > 32768 {
                    return Err(Error::Invalid("distance over 32768"));
                }
                let (di, dextra) = distance_code(distance as u16);
                let (c, cl) = dist.code(di as u16)?;
                w.bits(c, cl)?;
                w.bits(u32::from(dextra), u32::from(DIST_EXTRA[di]))?;
            }
            END_OF_BLOCK => {
                let (c, l) = lit.code(256)?;
                return w.bits(c, l);
            }
            _ => return Err(Error::Invalid("unknown token")),
        }
    }
}

/// The fixed Huffman codes, made once per stream.
pub struct FixedCodes {
    lit: Encoder,
    dist: Encoder,
}

impl FixedCodes {
    /// The codes of fixed blocks.
    pub fn new() -> Result<FixedCodes> {
        Ok(FixedCodes {
            lit: Encoder::new(&fixed_literal_lengths())?,
            dist: Encoder::new(&fixed_distance_lengths())?,
        })
    }
}

/// Puts one deflate block back together from token form, and after the
/// last block its padding; whether it was the last.
pub fn huff_block<R: Read, W: Write>(
    r: &mut R,
    w: &mut BitWriter<W>,
    fixed: &FixedCodes,
) -> Result<bool> {
    let tag = read_byte(r)?;
    let last = tag.is_ascii_uppercase();
    w.bits(u32::from(last), 1)?;
    match tag.to_ascii_lowercase() {
        STORED => {
            w.bits(0, 2)?;
            let pad = read_byte(r)?;
            let count = w.misalignment();
            if u32::from(pad) >> count != 0 {
                return Err(Error::Invalid("padding wider than the gap"));
            }
            w.bits(u32::from(pad), count)?;
            let head = read_array::<4, _>(r)?;
            w.bytes(&head)?;
            let len = usize::from(u16::from_le_bytes([head[0], head[1]]));
            let mut data = vec![0u8; len];
            r.read_exact(&mut data).map_err(|_| Error::Truncated)?;
            w.bytes(&data)?;
        }
        FIXED => {
            w.bits(1, 2)?;
            huff_tokens(r, w, &fixed.lit, &fixed.dist)?;
        }
        DYNAMIC => {
            w.bits(2, 2)?;
            let nbits = u64::from(u16::from_le_bytes(read_array::<2, _>(r)?));
            let mut bits = vec![0u8; nbits.div_ceil(8) as usize];
            r.read_exact(&mut bits).map_err(|_| Error::Truncated)?;
            // The header's own bits tell the codes.
            let mut header = BitReader::new(&bits[..]);
            header.start_recording();
            let (lit, dist) = read_dynamic_header(&mut header)?;
            let (used, _) = header.stop_recording()?;
            if used != nbits {
                return Err(Error::Invalid("dynamic header length does not match"));
            }
            let mut hr = BitReader::new(&bits[..]);
            let mut left = nbits;
            while left > 0 {
                let n = left.min(16) as u32;
                w.bits(hr.bits(n)?, n)?;
                left -= u64::from(n);
            }
            huff_tokens(r, w, &Encoder::new(&lit)?, &Encoder::new(&dist)?)?;
        }
        _ => return Err(Error::Invalid("unknown block tag")),
    }
    if last {
        let pad = read_byte(r)?;
        let count = w.misalignment();
        if u32::from(pad) >> count != 0 {
            return Err(Error::Invalid("padding wider than the gap"));
        }
        w.bits(u32::from(pad), count)?;
    }
    Ok(last)
}

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
